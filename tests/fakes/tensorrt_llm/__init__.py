"""A contract fake of tensorrt_llm 1.2 (see tests/fakes/README.md). Not NVIDIA's code."""

from tensorrt_llm.llmapi import LLM, SamplingParams  # noqa: F401

__version__ = "1.2.0-fake"
