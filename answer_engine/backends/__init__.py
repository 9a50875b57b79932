"""Generation backends behind one Protocol; heavy libraries are imported lazily."""

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams

__all__ = ["Backend", "BackendError", "ChatMessage", "GenerationParams", "create_backend"]


def create_backend(settings):  # type: ignore[no-untyped-def]
    """Build the backend the configuration names. Raises BackendError/ModelError with a clear message."""
    from answer_engine.models import resolve_model_path

    gen = settings.generation
    if gen.backend == "extractive":
        from answer_engine.backends.extractive import ExtractiveBackend

        return ExtractiveBackend()
    if gen.backend == "llamacpp":
        from answer_engine.backends.llamacpp import LlamaCppBackend

        path = resolve_model_path(settings.data_dir, gen.model)
        return LlamaCppBackend(path, n_ctx=gen.n_ctx, n_threads=gen.n_threads or None)
    raise BackendError(f"unknown generation backend {gen.backend!r}")
