"""The answer-engine command: serve, ask, index, models."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from answer_engine import __version__
from answer_engine.cli_base import EXIT_ERROR, CommandError, _settings
from answer_engine.cli_data import add_distill
from answer_engine.cli_measure import cmd_bench, cmd_eval, cmd_load
from answer_engine.config import ConfigError, Settings

__all__ = ["CommandError", "main"]


# ----------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from answer_engine.api.app import create_app

    settings = _settings(args)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    from answer_engine import logs

    print(
        f"answer-engine {__version__}: open http://{host}:{port}/ (API: POST /api/ask, /v1/chat/completions)",
        flush=True,
    )
    logs.configure(logging.INFO)
    # uvicorn stops accepting, then waits for streams: ours end by themselves within the grace period
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s) + 5,
    )
    return 0


# ----------------------------------------------------------------------------- ask


async def _ask(settings: Settings, question: str, as_json: bool, mode: str | None = None) -> int:
    from answer_engine.components import build_pipeline
    from answer_engine.request import AskOptions, AskRequest

    try:
        request = AskRequest(query=question, options=AskOptions(search_type=mode))
    except ValueError as exc:  # pydantic's ValidationError: too long, blank
        raise CommandError(
            f"invalid question: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}"
        ) from exc
    try:
        pipeline = build_pipeline(settings)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    try:
        if not as_json:
            print("… Loading the index and the models", file=sys.stderr, flush=True)
        try:
            await pipeline.start()  # in parallel, before the question: not one after another on its path
        except Exception as exc:  # a missing index or model: the one-line error the CLI gives
            raise CommandError(str(exc) or type(exc).__name__) from exc
        return await _print_answer(pipeline, request, as_json)
    finally:
        await pipeline.aclose()


async def _print_answer(pipeline: Any, request: Any, as_json: bool) -> int:
    sources: list[dict[str, Any]] = []
    citations: list[dict[str, Any]] = []
    answer: list[str] = []
    final = ""
    checked: dict[str, Any] = {"answer_support": None, "sentences": []}
    timings: dict[str, Any] = {}
    searched: dict[str, Any] = {"search_type": None, "queries": []}
    out = sys.stdout
    async with contextlib.aclosing(pipeline.run(request)) as events:
        async for event in events:
            if event.type == "status":
                if not as_json:
                    print(f"… {event.message}", file=sys.stderr, flush=True)
            elif event.type == "sources":
                sources = [s.model_dump(include={"n", "url", "title", "snippet"}) for s in event.sources]
                if not as_json:
                    print("Sources:", file=out)
                    for s in event.sources:
                        print(f"  [{s.n}] {s.title} — {s.url}", file=out)
                    print(file=out, flush=True)
            elif event.type == "delta":
                answer.append(event.text)
                if not as_json:
                    out.write(event.text)
                    out.flush()
            elif event.type == "citations":
                citations = [c.model_dump() for c in event.citations]
                final = event.answer
                checked = {
                    "answer_support": event.answer_support,
                    "sentences": [s.model_dump() for s in event.sentences],
                }
                if not as_json:
                    print("\n", file=out)
                    if event.answer != "".join(
                        answer
                    ):  # verification dropped sentences: the answer as it stands
                        print(f"Checked against the sources, the answer is:\n{event.answer}\n", file=out)
                    print(f"Support: {(event.answer_support or 'not checked').replace('_', ' ')}", file=out)
                    print("Cited:" if citations else "Cited: none", file=out)
                    for c in event.citations:
                        print(f"  [{c.n}] {c.title} — {c.url}", file=out)
            elif event.type == "done":
                timings = event.timings.model_dump()
                searched = {"search_type": event.search_type, "queries": event.queries}
                if not as_json:
                    t = event.timings
                    plan = f"plan {t.plan_ms:.0f} ms ({t.plan_calls} calls) · " if t.plan_calls else ""
                    print(
                        f"\n({event.search_type or 'no'} search, {event.search_queries} quer"
                        f"{'y' if event.search_queries == 1 else 'ies'} · {plan}"
                        f"search {t.search_ms:.0f} ms · fetch {t.fetch_ms:.0f} ms · "
                        f"extract {t.extract_ms:.0f} ms · select {t.select_ms:.0f} ms · "
                        f"prompt {t.prompt_tokens} tokens · first token {t.ttft_ms:.0f} ms · "
                        f"{t.completion_tokens} tokens at {t.tokens_per_s:.1f}/s · "
                        f"total {t.total_ms / 1000:.1f} s)",
                        file=sys.stderr,
                    )
            elif event.type == "error":
                raise CommandError(f"{event.stage}: {event.message}")
    if as_json:
        json.dump(
            {
                "answer": final,
                "citations": citations,
                "sources": sources,
                "timings": timings,
                **checked,
                **searched,
            },
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question).strip()
    if not question:
        raise CommandError('give a question, e.g. answer-engine ask "What is a prime number?"')
    return asyncio.run(_ask(_settings(args), question, args.json, args.mode))


# ----------------------------------------------------------------------------- providers


def cmd_providers(args: argparse.Namespace) -> int:
    from answer_engine.components import provider_statuses

    statuses = provider_statuses(_settings(args))
    if args.json:
        json.dump([{"name": s.name, "enabled": s.enabled, "why": s.why} for s in statuses], sys.stdout)
        print()
    else:
        for s in statuses:
            print(f"{'on ' if s.enabled else 'off'}  {s.name:<8} {s.why}")
    return 0 if any(s.enabled for s in statuses) else EXIT_ERROR


# ----------------------------------------------------------------------------- index


def cmd_index(args: argparse.Namespace) -> int:
    from answer_engine.components import build_embedder, build_ingestor
    from answer_engine.ingest import register_source, unregister_source
    from search_adapters.base import SearchError

    settings = _settings(args)
    if args.to == "postgres":
        return _index_postgres(args, settings)
    try:
        if args.remove:
            if not unregister_source(settings.data_dir, Path(args.remove)):
                raise CommandError(f"not registered: {Path(args.remove).resolve()}")
        for path in args.paths:
            register_source(settings.data_dir, Path(path))
        info = build_ingestor(settings, build_embedder(settings)).ensure(force=args.rebuild)
    except SearchError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(info.model_dump_json())
    else:
        print(
            f"indexed {info.pages} pages ({info.passages} passages) from {len(info.sources)} source(s) "
            f"into {info.path}"
        )
        for s in info.sources:
            print(f"  {s}")
    return 0


def _index_postgres(args: argparse.Namespace, settings: Any) -> int:
    """The shared index: only new or changed files re-indexed, in one transaction."""
    from answer_engine.components import build_embedder, build_pg_writer
    from search_adapters.base import SearchError

    writer = build_pg_writer(settings, build_embedder(settings))
    try:
        if args.remove:
            report = writer.remove([str(Path(args.remove).resolve())])
        else:
            report = writer.sync([Path(p) for p in args.paths])
    except SearchError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(report.model_dump_json())
    else:
        print(
            f"postgres schema {report.schema_name}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed; wrote {report.pages} pages "
            f"({report.passages} passages)"
        )
    return 0


# ----------------------------------------------------------------------------- models


def cmd_models(args: argparse.Namespace) -> int:
    from answer_engine import models

    settings = _settings(args)
    action = args.action or "list"
    if action == "list":
        for spec in models.MODELS.values():
            installed = models.is_installed(settings.data_dir, spec.name)
            mark = "*" if spec.name == settings.generation.model else " "
            state = "installed" if installed else "not installed"
            print(f"{mark} {spec.name:38} {state:14} {spec.description}")
        print(f"\n* = configured model; files under {models.models_dir(settings.data_dir)}")
        return 0
    name = args.name or settings.generation.model
    try:
        if action == "pull":
            print(f"pulling {name} …", file=sys.stderr, flush=True)
            path = models.pull(settings.data_dir, name, force=args.force)
            print(f"{name}: {path} (sha256 verified)")
        elif action == "path":
            print(models.resolve_model_path(settings.data_dir, name))
        elif action == "embedder":
            from answer_engine.embeddings import ONNX_FILE, EmbedderError, export_onnx, onnx_ready

            dest = models.models_dir(settings.data_dir) / ONNX_FILE
            fresh = args.force or not onnx_ready(dest)
            if fresh:
                print("exporting the embedding model to ONNX …", file=sys.stderr, flush=True)
            try:
                export_onnx(dest, force=args.force)
            except EmbedderError as exc:
                raise CommandError(str(exc)) from exc
            print(f"embedding model: {dest} ({'exported and ' if fresh else ''}verified)")
    except models.ModelError as exc:
        raise CommandError(str(exc)) from exc
    return 0


# ----------------------------------------------------------------------------- keys


def cmd_keys(args: argparse.Namespace) -> int:
    from answer_engine.api.access import hash_key, new_key

    key = new_key()
    print(f"key:  {key}")
    print(f"hash: {hash_key(key)}")
    print("Give the key to the client; put only the hash in the config:", file=sys.stderr)
    print(f'  [server]\n  api_key_hashes = ["{hash_key(key)}"]', file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (default: configs/default.toml)")

    parser = argparse.ArgumentParser(
        prog="answer-engine", description="Search, read, and answer with citations."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the web service (UI at /, SSE at POST /api/ask)")
    p.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from config: 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", parents=[common], help="answer one question from the terminal")
    p.add_argument("question", nargs="+", help="the question")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object: answer, citations, sources, timings"
    )
    p.add_argument("--model", help="model name or GGUF path (overrides the config)")
    p.add_argument(
        "--mode",
        choices=["fast", "pro", "auto"],
        help="fast: one search; pro: several, the model asking for the missing fact (multi-hop questions); "
        "auto: pro when the question looks multi-hop (default: the config's plan.search_type)",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "providers", parents=[common], help="list the search providers: which are enabled, and why not"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_providers)

    p = sub.add_parser(
        "index",
        parents=[common],
        help="add a folder (.html/.md/.txt/.pdf) or a JSONL {url,title,text} to the local index, "
        "or (--to postgres) to the shared index in PostgreSQL",
    )
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument(
        "--to",
        choices=["local", "postgres"],
        default="local",
        help="local: the on-disk index (default); postgres: the shared index at search.postgres_url or "
        "DATABASE_URL (no PATH: the shipped corpus; only changed files are re-indexed)",
    )
    p.add_argument("--remove", metavar="PATH", help="stop indexing a registered path")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if nothing changed")
    p.add_argument("--json", action="store_true", help="print the index summary as JSON")
    p.set_defaults(func=cmd_index)

    add_distill(sub, common)

    p = sub.add_parser(
        "eval", help="measure answer quality, extraction, or the citation judge; writes a report"
    )
    eval_sub = p.add_subparsers(dest="kind", required=True)
    shared = "../shared/evaldata"
    e = eval_sub.add_parser("qa", parents=[common], help="questions through the real pipeline")
    e.add_argument(
        "--questions",
        default=f"{shared}/squad/questions.jsonl",
        metavar="FILE.jsonl",
        help="SQuAD or HotpotQA format: question, answers",
    )
    e.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    e.add_argument("--sample", type=int, metavar="N", help="N questions drawn at random (fixed seed) instead")
    e.add_argument(
        "--unanswerable",
        action="store_true",
        help="the unanswerable set instead: SQuAD questions (from --questions) with their article left out "
        "of the index, and questions on topics no shipped page covers; reports abstention",
    )
    e.add_argument("--no-generate", action="store_true", help="stop after passage selection (retrieval only)")
    e.add_argument(
        "--provider",
        choices=["local", "postgres"],
        default="local",
        help="the index searched: local (default), or postgres (the shared index at search.postgres_url, "
        "written first by `answer-engine index --to postgres`)",
    )
    e.add_argument(
        "--mode",
        "--search-type",
        dest="mode",
        choices=["fast", "pro", "auto"],
        help="search type of every question (default: the config's plan.search_type)",
    )
    e.add_argument("--model", help="model name or GGUF path (overrides the config)")
    e = eval_sub.add_parser(
        "extraction", help="main-text extraction on the article-extraction benchmark format"
    )
    e.add_argument(
        "--data", default=f"{shared}/extraction", metavar="DIR", help="gzipped HTML + ground-truth.json"
    )
    e = eval_sub.add_parser(
        "judge", help="agreement of the citation-support judge with ExpertQA's human labels"
    )
    e.add_argument("--claims", default=f"{shared}/expertqa/claims.jsonl", metavar="FILE.jsonl")
    for e in eval_sub.choices.values():
        e.add_argument("--json", action="store_true", help="print one JSON object")
        e.add_argument("--report", metavar="DIR", help="report folder (default bench/reports/<kind>-<time>)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "bench", parents=[common], help="per-stage latency, overhead vs raw llama.cpp, concurrency, models"
    )
    p.add_argument("--questions", default=f"{shared}/squad/questions.jsonl", metavar="FILE.jsonl")
    p.add_argument("--n", type=int, default=8, help="questions for the latency/overhead part (default 8)")
    p.add_argument("--concurrency", default="1,2,4,8", help="simultaneous streams per level; empty to skip")
    p.add_argument("--models", help="compare models on quality and speed: names, or 'all' installed ones")
    p.add_argument(
        "--quality-n", type=int, default=20, help="questions per model in the comparison (default 20)"
    )
    p.add_argument("--max-tokens", type=int, help="cap the answer length for the run")
    p.add_argument(
        "--web",
        action="store_true",
        help="only: per-stage time of questions answered from web pages (a local SearXNG-format server)",
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="only: each time-to-first-token lever off and on, side by side (focused passages, saved "
        "prompt states, weight repacking, the CLI's cold start)",
    )
    p.add_argument(
        "--cli-runs",
        type=int,
        default=3,
        help="--levers: fresh `answer-engine ask` runs timed, run i asking question i of --n (0: skip)",
    )
    p.add_argument(
        "--lever",
        action="append",
        choices=["passages", "prefix", "repack", "cli"],
        help="--levers: only this lever (repeatable; default: all)",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="only: the shared PostgreSQL index (search.postgres_url or DATABASE_URL) at --scales times "
        "the shipped corpus beside the on-disk index: search latency, recall, two replicas at once",
    )
    p.add_argument("--scales", default="1,10,100", help="--postgres: index sizes, in shipped corpora")
    p.add_argument("--keep", action="store_true", help="--postgres: keep the benchmark's schemas")
    p.add_argument("--model", help="model name or GGUF path (overrides the config)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", metavar="DIR", help="report folder (default bench/reports/bench-<time>)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "load",
        parents=[common],
        help="bounded load test on 127.0.0.1 (fast backend); fails if a stream is lost",
    )
    p.add_argument("--streams", type=int, default=32, help="concurrent streams (default 32)")
    p.add_argument("--duration", type=float, default=60, help="seconds of soak (default 60)")
    p.add_argument(
        "--backend", default="extractive", choices=["extractive", "llamacpp"], help="default: extractive"
    )
    p.add_argument("--questions", default=f"{shared}/squad/questions.jsonl", metavar="FILE.jsonl")
    p.add_argument("--json", action="store_true")
    p.add_argument("--report", metavar="DIR")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("keys", help="make a new API key and the hash to configure (server.api_key_hashes)")
    p.add_argument("action", choices=["new"])
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser(
        "models", parents=[common], help="list, pull (download from the registry and verify) models"
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "pull", "path", "embedder"],
        help="default: list; embedder: export the embedding model to ONNX once (fast start-up)",
    )
    p.add_argument("name", nargs="?", help="model name (default: the configured model)")
    p.add_argument("--force", action="store_true", help="pull again even if installed")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (CommandError, ConfigError) as exc:
        print(f"answer-engine: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a stage that raised outside the pipeline (model load, index build)
        from answer_engine.backends.base import BackendError
        from answer_engine.models import ModelError
        from search_adapters.base import SearchError

        if isinstance(exc, BackendError | ModelError | SearchError):
            print(f"answer-engine: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
