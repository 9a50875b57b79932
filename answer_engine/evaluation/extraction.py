"""`answer-engine eval extraction`: our extractor on the Zyte article-extraction benchmark format.

Scoring follows the benchmark: tokens are \\w+ matches; per page, 4-token shingles of truth and
prediction are compared as multisets; precision and recall are means over pages (a page with
fp = fn = 0 scores 1, empty denominators are skipped); F1 from the two means.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from answer_engine.extract import ExtractionError, extract_page
from answer_engine.fetch import FetchedPage

WORD_RE = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = WORD_RE.findall(text)
    return Counter(tuple(tokens[i : i + SHINGLE]) for i in range(max(1, len(tokens) - SHINGLE + 1)) if tokens)


def page_scores(truth: str, pred: str) -> tuple[float | None, float | None]:
    t, p = shingles(truth), shingles(pred)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def evaluate(data: Path, *, progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    precisions: list[float] = []
    recalls: list[float] = []
    elapsed = 0.0
    failures = 0
    for page_id in tqdm(
        sorted(truth), desc="eval extraction", unit="page", file=sys.stderr, disable=not progress
    ):
        html = gzip.decompress((data / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        t0 = time.perf_counter()
        try:
            text = extract_page(
                FetchedPage(url=truth[page_id]["url"], content_type="text/html", text=html)
            ).text
        except ExtractionError:
            text, failures = "", failures + 1
        elapsed += time.perf_counter() - t0
        p, r = page_scores(truth[page_id]["articleBody"], text)
        if p is not None:
            precisions.append(p)
        if r is not None:
            recalls.append(r)
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    return {
        "pages": len(truth),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "ms_per_page": round(elapsed * 1000 / max(1, len(truth)), 1),
        "failures": failures,
    }
