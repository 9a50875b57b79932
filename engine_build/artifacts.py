"""The output root: immutable artifacts, a `current` pointer, and the promotion history.

    <root>/artifacts/<kind>-<hash>/   manifest.json, model/ (engine, checkpoint or GGUF), tokenizer/
    <root>/current                    symlink to the artifact being served (swapped atomically)
    <root>/history.jsonl              one line per promote/rollback

An artifact is written into a temporary folder beside its final place and renamed in one step,
so a half-written artifact never carries the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class ArtifactError(Exception):
    """An artifact or output root that cannot be used."""


def artifacts_dir(root: Path) -> Path:
    return Path(root) / "artifacts"


def read_manifest(artifact: Path) -> dict[str, Any]:
    path = Path(artifact) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{artifact} is not an artifact (no {MANIFEST})")
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(artifact: Path, manifest: dict[str, Any]) -> None:
    """Manifests change only by whole-file replacement (verify adds its results)."""
    tmp = Path(artifact) / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, Path(artifact) / MANIFEST)


def create_artifact(root: Path, artifact_id: str, fill: Callable[[Path], dict[str, Any]]) -> Path:
    """``fill(tmp_dir)`` writes the files and returns the manifest; the folder is renamed into place
    only when it succeeded. An existing artifact of the same id is the same content: returned as is."""
    final = artifacts_dir(root) / artifact_id
    if final.exists():
        return final
    artifacts_dir(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{artifact_id}-", dir=artifacts_dir(root)))
    try:
        manifest = fill(tmp)
        manifest.setdefault("id", artifact_id)
        manifest.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_manifest(tmp, manifest)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def current(root: Path) -> Path | None:
    link = Path(root) / "current"
    return link.resolve() if link.is_symlink() else None


def history(root: Path) -> list[dict[str, Any]]:
    path = Path(root) / "history.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def point_current(root: Path, artifact: Path, action: str) -> None:
    """Atomically repoint `current` (a new symlink renamed over the old one) and log it."""
    root = Path(root)
    link = root / "current"
    tmp = root / f".current.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(artifact, root), tmp)
    os.replace(tmp, link)
    with (root / "history.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "action": action,
                    "artifact": Path(artifact).name,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            + "\n"
        )


def list_artifacts(root: Path) -> list[dict[str, Any]]:
    cur = current(root)
    rows = []
    for path in sorted(artifacts_dir(root).glob("*")):
        if path.name.startswith(".") or not (path / MANIFEST).is_file():
            continue
        m = read_manifest(path)
        rows.append(
            {
                "id": path.name,
                "kind": m.get("kind"),
                "created": m.get("created"),
                "verified": (m.get("verify") or {}).get("passed"),
                "current": cur == path.resolve(),
            }
        )
    return rows


def previous_artifact(root: Path) -> Path:
    """The artifact served before the current one. The history is a stack: promote pushes,
    rollback pops, so rolling back twice goes two promotions back, never forward again."""
    if current(root) is None:
        raise ArtifactError("nothing is current: promote an artifact first")
    stack: list[str] = []
    for entry in history(root):
        if entry["action"] == "promote":
            stack.append(entry["artifact"])
        elif entry["action"] == "rollback" and stack:
            stack.pop()
    if len(stack) < 2:
        raise ArtifactError("no earlier artifact to roll back to")
    previous = artifacts_dir(root) / stack[-2]
    if not previous.is_dir():
        raise ArtifactError(f"the previous artifact {stack[-2]} is gone from {artifacts_dir(root)}")
    return previous
