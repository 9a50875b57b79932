"""Does a passage support a sentence? A lexical judge, calibrated on ExpertQA's human labels.

The score is the share of the sentence's content terms (stemmed, stop words out, citation markers
out) that the passage contains; "supported" means score >= threshold. It is the same measure the
citation checker uses while streaming (citations.support), so calibrating it here calibrates both.
`answer-engine eval judge` reports its agreement with the experts.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from answer_engine.citations import MARKER_RE, support
from answer_engine.text import terms

_EVIDENCE_HEAD = re.compile(r"^\[\d+\]\s+\S+\s*\n*")


def support_score(sentence: str, passage: str) -> float:
    return support(set(terms(MARKER_RE.sub(" ", sentence))), set(terms(passage)))


def load_claims(path: Path) -> list[dict[str, Any]]:
    """Claims with evidence and a support label; label 1 = the experts found it completely supported."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("evidence") or row.get("support") not in (
            "Complete",
            "Partial",
            "Incomplete",
            "Missing",
        ):
            continue
        passages = [_EVIDENCE_HEAD.sub("", e) for e in row["evidence"]]
        out.append(
            {
                "claim": row["claim_string"],
                "passages": passages,
                "label": int(row["support"] == "Complete"),
                "support": row["support"],
            }
        )
    return out


def _agreement(scores: list[float], labels: list[int], threshold: float) -> dict[str, float]:
    pred = [int(s >= threshold) for s in scores]
    tp = sum(p and y for p, y in zip(pred, labels))
    tn = sum((not p) and (not y) for p, y in zip(pred, labels))
    pos = sum(labels) or 1
    neg = (len(labels) - sum(labels)) or 1
    fp = sum(p and not y for p, y in zip(pred, labels))
    return {
        "agreement": round((tp + tn) / max(1, len(labels)), 4),
        "balanced_agreement": round((tp / pos + tn / neg) / 2, 4),
        "precision": round(tp / max(1, tp + fp), 4),
        "recall": round(tp / pos, 4),
    }


def calibrate(path: Path, *, seed: int = 20251123) -> dict[str, Any]:
    """Pick the threshold with the best balanced agreement on half the claims; report on the other half."""
    claims = load_claims(path)
    random.Random(seed).shuffle(claims)
    half = len(claims) // 2
    fit, held = claims[:half], claims[half:]

    def scored(rows: list[dict[str, Any]]) -> tuple[list[float], list[int]]:
        return [max(support_score(r["claim"], p) for p in r["passages"]) for r in rows], [
            r["label"] for r in rows
        ]

    fit_scores, fit_labels = scored(fit)
    grid = [round(x * 0.05, 2) for x in range(1, 20)]
    best = max(grid, key=lambda t: _agreement(fit_scores, fit_labels, t)["balanced_agreement"])
    held_scores, held_labels = scored(held)
    # (Claims labelled "Missing" come without evidence: the contrast is Complete vs Partial/Incomplete.)
    return {
        "claims": len(claims),
        "positives": sum(r["label"] for r in claims),
        "threshold": best,
        "held_out": _agreement(held_scores, held_labels, best),
        "at_default_0.5": _agreement(held_scores, held_labels, 0.5),
    }
