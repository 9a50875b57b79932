"""Generation backends behind one Protocol; heavy libraries are imported lazily."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "GenerationParams",
    "create_backend",
    "backend_for_artifact",
]

MANIFEST = "manifest.json"


def prompt_state_dir(settings: Any) -> Path | None:
    """Where llama.cpp keeps the warmed answer-prompt start between processes (None: off)."""
    return (
        Path(settings.data_dir) / "cache" / "prompt-states" if settings.generation.disk_prefix_state else None
    )


def llamacpp_options(settings: Any) -> dict[str, Any]:
    """The LlamaCppBackend arguments the generation settings give (both ways of building one)."""
    from answer_engine.backends import llamacpp

    gen = settings.generation
    repack = llamacpp.resolve_repack(gen.weight_repack)
    chunk = gen.prefill_chunk or (
        llamacpp.PREFILL_CHUNK_AVX512 if llamacpp.has_avx512() and not repack else llamacpp.PREFILL_CHUNK
    )
    return {
        "n_ctx": gen.n_ctx,
        "n_threads": gen.n_threads or None,
        "prefix_states": gen.prefix_states,
        "state_dir": prompt_state_dir(settings),
        "weight_repack": repack,
        "prefill_chunk": chunk,
    }


def backend_for_artifact(artifact: Path, settings: Any) -> Any:
    """The backend an engine-build artifact calls for (its manifest's ``kind``)."""
    manifest_path = Path(artifact) / MANIFEST
    if not manifest_path.is_file():
        raise BackendError(f"{artifact} is not an engine-build artifact (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    kind = manifest.get("kind")
    model = Path(artifact) / manifest.get("model", "model")
    gen = settings.generation
    if kind == "gguf":
        from answer_engine.backends.llamacpp import LlamaCppBackend

        lora = manifest.get("lora")  # a tuned model: the base's GGUF and its adapter
        return LlamaCppBackend(
            model, lora_path=Path(artifact) / lora if lora else None, **llamacpp_options(settings)
        )
    if kind == "hf":
        from answer_engine.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model)
    if kind in ("trtllm-engine", "trtllm-checkpoint"):
        from answer_engine.backends.trtllm import TrtLlmBackend

        return TrtLlmBackend(
            model,
            tokenizer_dir=Path(artifact) / manifest.get("tokenizer", "tokenizer"),
            max_batch_size=gen.max_batch_size,
            max_seq_len=gen.n_ctx,
            tensor_parallel_size=gen.tensor_parallel_size,
        )
    raise BackendError(f"{artifact}: unknown artifact kind {kind!r}")


def create_backend(settings: Any) -> Any:
    """Build the backend the configuration names. Raises BackendError/ModelError with a clear message."""
    from answer_engine.models import resolve_model_path

    gen = settings.generation
    if gen.artifacts_root:
        current = Path(gen.artifacts_root) / "current"
        if not current.exists():
            raise BackendError(
                f"generation.artifacts_root {gen.artifacts_root} has no current artifact "
                "(engine-build promote one)"
            )
        return backend_for_artifact(current.resolve(), settings)
    if gen.backend == "router":
        from answer_engine.backends.router import RouterBackend

        def side(overrides: dict[str, Any], which: str) -> Any:
            if overrides.get("backend", gen.backend) == "router":
                raise BackendError(f"router.{which} needs a backend of its own (not router)")
            part = settings.model_copy(deep=True)
            try:
                part.generation = gen.model_validate({**gen.model_dump(), **overrides})
            except ValueError as exc:
                raise BackendError(f"router.{which}: {exc}") from exc
            return create_backend(part)

        if not settings.router.strong:
            raise BackendError('the router backend needs router.strong (e.g. {backend = "openai", ...})')
        strong = side(settings.router.strong, "strong")
        return RouterBackend(side(settings.router.local, "local"), strong)
    if gen.backend == "extractive":
        from answer_engine.backends.extractive import ExtractiveBackend

        return ExtractiveBackend()
    if gen.backend == "llamacpp":
        from answer_engine.backends.llamacpp import LlamaCppBackend

        path = resolve_model_path(settings.data_dir, gen.model)
        lora = Path(gen.lora).expanduser() if gen.lora else None
        if lora is not None and not lora.is_file():
            raise BackendError(f"generation.lora: no such GGUF adapter: {lora}")
        return LlamaCppBackend(path, lora_path=lora, **llamacpp_options(settings))
    if gen.backend == "openai":
        from answer_engine.backends.openai_compat import OpenAIBackend

        if not gen.base_url:
            raise BackendError("the openai backend needs generation.base_url (e.g. http://127.0.0.1:8001/v1)")
        return OpenAIBackend(
            gen.base_url,
            gen.model,
            api_key=gen.api_key or os.environ.get("OPENAI_API_KEY", ""),
            timeout_s=gen.timeout_s,
        )
    if gen.backend == "transformers":
        from answer_engine.backends.transformers_backend import TransformersBackend

        path = Path(gen.model).expanduser()
        if not path.is_dir():
            raise BackendError(f"transformers backend: checkpoint directory not found: {path}")
        return TransformersBackend(path)
    if gen.backend == "trtllm":
        from answer_engine.backends.trtllm import TrtLlmBackend

        return TrtLlmBackend(
            Path(gen.model).expanduser(),
            tokenizer_dir=Path(gen.tokenizer_dir) if gen.tokenizer_dir else None,
            max_batch_size=gen.max_batch_size,
            max_seq_len=gen.n_ctx,
            tensor_parallel_size=gen.tensor_parallel_size,
        )
    raise BackendError(f"unknown generation backend {gen.backend!r}")
