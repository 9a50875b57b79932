"""The data subcommands of answer-engine: distill (training data from the pipeline and a teacher)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from answer_engine.cli_base import CommandError, _settings


def cmd_distill(args: argparse.Namespace) -> int:
    from answer_engine.backends.base import BackendError
    from answer_engine.backends.openai_compat import OpenAIBackend
    from answer_engine.distill import DistillError, distill

    settings = _settings(args)
    if not 1 <= args.n <= 100_000 or not 0 <= args.unanswerable <= 100_000:
        raise CommandError("--n must be 1..100000 and --unanswerable 0..100000")
    try:
        teacher = OpenAIBackend(
            args.teacher_url,
            args.teacher_model,
            api_key=args.teacher_key or os.environ.get("OPENAI_API_KEY", ""),
            timeout_s=args.timeout,
        )
    except BackendError as exc:
        raise CommandError(str(exc)) from exc

    async def run() -> dict:
        try:
            return await distill(
                settings,
                Path(args.questions),
                Path(args.out),
                teacher=teacher,
                teacher_name=args.teacher_model,
                n=args.n,
                unanswerable=args.unanswerable,
                max_tokens=args.max_tokens,
            )
        finally:
            await teacher.aclose()

    try:
        summary = asyncio.run(run())
    except (DistillError, BackendError) as exc:
        raise CommandError(str(exc)) from exc
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    print(f"data: {args.out}", file=sys.stderr)
    return 0


def add_distill(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "distill",
        parents=[common],
        help="training data: the pipeline's passages and a teacher model's checked, cited answers",
        description="For SQuAD training questions (articles split train/eval with a seed), the engine's "
        "own retrieval picks the passages and a teacher (any OpenAI-compatible server) answers from "
        "the engine's prompt; answers without a reference answer or with a citation that does not hold "
        "it are dropped; abstention examples leave the answer's article out. Writes train.jsonl, "
        "rejected.jsonl, split.json, summary.json and a dataset card (CARD.md).",
    )
    p.add_argument(
        "--teacher-url",
        required=True,
        help="the teacher's OpenAI-compatible base URL, e.g. http://127.0.0.1:8011/v1",
    )
    p.add_argument("--teacher-model", required=True, help="the model id the teacher serves")
    p.add_argument("--teacher-key", default="", help="its API key (default: OPENAI_API_KEY)")
    p.add_argument("--questions", default="../shared/evaldata/squad/questions.jsonl", metavar="FILE.jsonl")
    p.add_argument("--n", type=int, default=200, help="checked answers to collect (default 200)")
    p.add_argument("--unanswerable", type=int, default=50, help="abstention examples (default 50)")
    p.add_argument("--max-tokens", type=int, default=160, help="teacher answer length (default 160)")
    p.add_argument("--timeout", type=float, default=120.0, help="per teacher call, seconds (default 120)")
    p.add_argument("--out", default="bench/distill", metavar="DIR", help="where the data goes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_distill)
