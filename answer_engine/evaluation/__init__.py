"""Evaluation and benchmarks: `answer-engine eval qa|extraction|judge` and `answer-engine bench`."""
