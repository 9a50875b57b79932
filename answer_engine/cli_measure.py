"""The measuring subcommands of answer-engine: eval, bench, load (parsers in cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from answer_engine.cli_base import EXIT_ERROR, CommandError, _settings

# ----------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    from answer_engine.evaluation import commands
    from answer_engine.evaluation.qa import EvalError

    try:
        if args.kind == "qa":
            settings = _settings(args)
            summary, out = commands.eval_qa(
                settings,
                Path(args.questions),
                limit=args.limit,
                generate=not args.no_generate,
                report_to=args.report,
                unanswerable=args.unanswerable,
                sample=args.sample,
                search_type=args.mode,
                provider=args.provider,
            )
        elif args.kind == "extraction":
            summary, out = commands.eval_extraction(Path(args.data), report_to=args.report)
        else:
            summary, out = commands.eval_judge(Path(args.claims), report_to=args.report)
    except EvalError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:22} {value}")
    print(f"report: {out}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    from answer_engine.evaluation import bench
    from answer_engine.evaluation.qa import EvalError

    settings = _settings(args)
    if args.max_tokens:
        settings.generation.max_tokens = args.max_tokens
    if args.web:
        from answer_engine.evaluation import webstages

        summary, out = asyncio.run(webstages.run(settings, report_to=args.report))
        print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
        print(f"report: {out}", file=sys.stderr)
        return 0
    if args.postgres:
        from answer_engine.evaluation import pgscale

        try:
            scales = sorted({int(x) for x in args.scales.split(",") if x.strip()})
        except ValueError as exc:
            raise CommandError("--scales takes numbers like 1,10,100") from exc
        if not scales or any(not 1 <= s <= 1000 for s in scales):
            raise CommandError("--scales must be between 1 and 1000")
        try:
            summary, out = pgscale.run(
                settings, Path(args.questions), scales=scales, n=args.n, keep=args.keep, report_to=args.report
            )
        except EvalError as exc:
            raise CommandError(str(exc)) from exc
        print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
        print(f"report: {out}", file=sys.stderr)
        return 0
    if args.levers:
        from answer_engine.evaluation import levers

        if not 0 <= args.cli_runs <= 20:
            raise CommandError("--cli-runs must be between 0 and 20")
        try:
            summary, out = levers.run(
                settings,
                bench.sample_questions(Path(args.questions), args.n),
                cli_runs=args.cli_runs,
                config=args.config,
                model=args.model,
                report_to=args.report,
                only=tuple(args.lever or levers.LEVERS),
            )
        except EvalError as exc:
            raise CommandError(str(exc)) from exc
        print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
        print(f"report: {out}", file=sys.stderr)
        return 0
    try:
        levels = [int(x) for x in args.concurrency.split(",") if x.strip()] if args.concurrency else []
    except ValueError as exc:
        raise CommandError("--concurrency takes numbers like 1,2,4,8") from exc
    if any(not 1 <= x <= 32 for x in levels):
        raise CommandError("--concurrency levels must be between 1 and 32")
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    try:
        summary, out = bench.run(
            settings,
            questions_file=Path(args.questions),
            n=args.n,
            levels=levels,
            models=models,
            quality_n=args.quality_n,
            report_to=args.report,
        )
    except EvalError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary))
    else:
        for key in (
            "overhead_ratio",
            "decode_ratio",
            "ttft_ms_p50",
            "raw_ttft_ms_p50",
            "tokens_per_s",
            "raw_tokens_per_s",
        ):
            print(f"{key:18} {summary[key]}")
        for row in summary.get("concurrency", []):
            print(f"streams={row['streams']}: {row}")
        if "recommended_default" in summary:
            print(f"recommended default model: {summary['recommended_default']}")
    print(f"report: {out}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- load


def cmd_load(args: argparse.Namespace) -> int:
    from answer_engine.evaluation import load
    from answer_engine.evaluation.qa import EvalError

    settings = _settings(args)
    settings.generation.backend = args.backend
    if not 1 <= args.streams <= 256 or not 1 <= args.duration <= 3600:
        raise CommandError("--streams must be 1..256 and --duration 1..3600 seconds")
    try:
        summary, out = load.run(
            settings,
            questions_file=Path(args.questions),
            streams=args.streams,
            duration_s=args.duration,
            report_to=args.report,
        )
    except EvalError as exc:
        raise CommandError(str(exc)) from exc
    print(json.dumps(summary) if args.json else "\n".join(f"{k:16} {v}" for k, v in summary.items()))
    print(f"report: {out}", file=sys.stderr)
    lost = summary["lost"] + summary["truncated"] + summary["error"] + summary["error_event"]
    return 0 if lost == 0 else EXIT_ERROR
