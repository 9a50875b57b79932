"""engine-build: turn new fine-tuned weights into a served TensorRT-LLM engine (or a packaged
checkpoint/GGUF), verify it, promote it to the running service, roll it back.

    engine-build plan CKPT [--quantization none|fp8|int4_awq] [--max-batch-size N] ... [--json]
    engine-build merge-lora BASE ADAPTER OUT
    engine-build finetune BASE DATA.jsonl OUT [--max-steps N ...]  (LoRA; an HF checkpoint or a .gguf)
    engine-build lora-to-gguf ADAPTER BASE.gguf OUT.gguf             (a PEFT adapter llama.cpp applies)
    engine-build build CKPT --output ROOT [target options]          (GPU + tensorrt_llm)
    engine-build package MODEL --output ROOT [--lora ADAPTER.gguf]   (a .gguf or an HF checkpoint)
    engine-build verify ARTIFACT [--reference CKPT]
    engine-build promote ARTIFACT --output ROOT [--service URL --admin-key KEY] [--force]
    engine-build rollback --output ROOT [--service URL --admin-key KEY]
    engine-build list --output ROOT [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_ERROR = 1


class CommandError(Exception):
    pass


def _target(args: argparse.Namespace) -> Any:
    from engine_build.plan import Target

    return Target(
        quantization=args.quantization,
        max_batch_size=args.max_batch_size,
        max_input_len=args.max_input_len,
        max_seq_len=args.max_seq_len,
        max_num_tokens=args.max_num_tokens,
        tp_size=args.tp_size,
    )


def cmd_plan(args: argparse.Namespace) -> int:
    from engine_build.plan import make_plan

    plan = make_plan(Path(args.checkpoint), _target(args), Path(args.output))
    if args.json:
        print(json.dumps(plan, indent=2))
    else:
        c, m = plan["checkpoint"], plan["memory"]
        print(
            f"checkpoint  {c['path']}: {c['architecture']}, {c['dtype']}, {c['parameters']:,} parameters, "
            f"{c['num_layers']} layers, {c['num_heads']}/{c['num_kv_heads']} heads × {c['head_dim']}, "
            f"vocab {c['vocab_size']}"
        )
        print(
            f"memory      weights {m['weights_gib']} GiB + KV cache {m['kv_cache_gib']} GiB "
            f"({m['kv_cache_per_token_bytes']} B/token) + activations {m['activations_gib']} GiB + runtime "
            f"{m['runtime_overhead_gib']} GiB = {m['per_gpu_gib']} GiB per GPU"
        )
        print(f"artifact    {plan['artifact']}")
        print("build (Python API):\n  " + "\n  ".join(plan["commands"]["python"]))
        print("equivalent command lines:\n  " + "\n  ".join(plan["commands"]["cli"]))
        for p in plan["problems"]:
            print(f"problem     {p}", file=sys.stderr)
    return 0 if plan["ok"] else EXIT_ERROR


def cmd_merge(args: argparse.Namespace) -> int:
    from engine_build.merge import merge_lora

    manifest = merge_lora(Path(args.base), Path(args.adapter), Path(args.output))
    print(json.dumps(manifest, indent=2, default=list))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from engine_build.finetune import finetune

    base = Path(args.base)
    gguf_file = None
    if base.suffix == ".gguf":  # a GGUF file: transformers loads (dequantizes) it from its folder
        base, gguf_file = base.parent, base.name
    summary = finetune(
        base,
        Path(args.data),
        Path(args.output),
        gguf_file=gguf_file,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        rank=args.rank,
        alpha=args.alpha,
        targets=args.targets,
        max_len=args.max_len,
        grad_accum=args.grad_accum,
        save_steps=args.save_steps,
        seed=args.seed,
        resume=args.resume,
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_lora_to_gguf(args: argparse.Namespace) -> int:
    from engine_build.gguf_lora import lora_to_gguf

    print(json.dumps(lora_to_gguf(Path(args.adapter), Path(args.base), Path(args.output)), indent=2))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from engine_build.build import BuildUnavailable, build

    try:
        path = build(Path(args.checkpoint), _target(args), Path(args.output))
    except BuildUnavailable as exc:
        raise CommandError(f"cannot build here: {exc}. Nothing was written.") from exc
    print(path)
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from engine_build.build import package

    print(package(Path(args.model), Path(args.output), lora=Path(args.lora) if args.lora else None))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from engine_build.verify import verify

    result = verify(
        Path(args.artifact),
        reference=Path(args.reference) if args.reference else None,
        max_tokens=args.max_tokens,
    )
    print(
        json.dumps(result, indent=2)
        if args.json
        else f"verify {'passed' if result['passed'] else 'FAILED'}: "
        f"{len(result['prompts'])} golden prompts, load {result['load_s']} s"
    )
    return 0 if result["passed"] else EXIT_ERROR


def _notify(args: argparse.Namespace, artifact: Path) -> None:
    if not args.service:
        return
    import httpx

    key = args.admin_key or os.environ.get("AE_ADMIN_KEY", "")
    if not key:
        raise CommandError("--service needs --admin-key (or AE_ADMIN_KEY)")
    try:
        r = httpx.post(
            f"{args.service.rstrip('/')}/admin/reload",
            json={"artifact": str(artifact)},
            headers={"Authorization": f"Bearer {key}"},
            timeout=args.reload_timeout,
        )
    except httpx.HTTPError as exc:
        raise CommandError(
            f"`current` was moved, but the service at {args.service} could not be told: {exc}"
        ) from exc
    if r.status_code != 200:
        raise CommandError(
            f"`current` was moved, but the service refused the reload (HTTP {r.status_code}): {r.text[:300]}"
        )
    print(f"service reloaded: {r.json()}")


def cmd_promote(args: argparse.Namespace) -> int:
    from engine_build import artifacts

    artifact = Path(args.artifact).resolve()
    manifest = artifacts.read_manifest(artifact)
    if artifact.parent != (Path(args.output) / "artifacts").resolve():
        raise CommandError(f"{artifact} is not an artifact of {args.output}")
    if not (manifest.get("verify") or {}).get("passed") and not args.force:
        raise CommandError(
            f"{artifact.name} has not passed `engine-build verify` (use --force to promote anyway)"
        )
    artifacts.point_current(Path(args.output), artifact, "promote")
    print(f"current -> {artifact.name}")
    _notify(args, artifact)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from engine_build import artifacts

    previous = artifacts.previous_artifact(Path(args.output))
    artifacts.point_current(Path(args.output), previous, "rollback")
    print(f"current -> {previous.name}")
    _notify(args, previous)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from engine_build import artifacts

    rows = artifacts.list_artifacts(Path(args.output))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{'*' if r['current'] else ' '} {r['id']}  {r['kind']:<14} created {r['created']}  "
                f"verified {r['verified']}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engine-build",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--quantization", choices=["none", "fp8", "int4_awq"], default="none")
    target.add_argument("--max-batch-size", type=int, default=16)
    target.add_argument("--max-input-len", type=int, default=3072)
    target.add_argument("--max-seq-len", type=int, default=4096)
    target.add_argument("--max-num-tokens", type=int, default=8192)
    target.add_argument("--tp-size", type=int, default=1, help="tensor-parallel GPUs")
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--output", required=True, metavar="ROOT", help="the output root (artifacts/, current)")
    service = argparse.ArgumentParser(add_help=False)
    service.add_argument(
        "--service", metavar="URL", help="a running answer-engine to tell (POST /admin/reload)"
    )
    service.add_argument("--admin-key", help="its admin key (or AE_ADMIN_KEY)")
    service.add_argument(
        "--reload-timeout", type=float, default=600, help="seconds to wait for load + warm-up"
    )

    p = sub.add_parser(
        "plan", parents=[target], help="validate a checkpoint, estimate GPU memory, print the build"
    )
    p.add_argument("checkpoint")
    p.add_argument("--output", default="engines", metavar="ROOT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("merge-lora", help="merge a LoRA adapter into its base checkpoint (CPU)")
    p.add_argument("base")
    p.add_argument("adapter")
    p.add_argument("output")
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser(
        "finetune",
        help="train a LoRA adapter on `answer-engine distill` data (CPU or GPU)",
        description="LoRA (PEFT) through transformers' Trainer on an HF checkpoint or a .gguf file; the "
        "chat template applied, loss on the answer tokens only, seeded, resumable; writes adapter/, "
        "log.jsonl, loss.png and summary.json into OUTPUT. Fold the adapter in with merge-lora.",
    )
    p.add_argument("base", help="an HF checkpoint directory, or a .gguf file (dequantized by transformers)")
    p.add_argument("data", help="train.jsonl from `answer-engine distill`")
    p.add_argument("output")
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj", help="modules LoRA adapts")
    p.add_argument("--max-len", type=int, default=1536, help="longer examples are left out")
    p.add_argument("--grad-accum", type=int, default=4, help="examples per optimizer step")
    p.add_argument("--save-steps", type=int, default=25, help="a checkpoint every this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT")
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser(
        "lora-to-gguf",
        help="a LoRA adapter as a GGUF adapter llama.cpp applies at load (generation.lora)",
    )
    p.add_argument("adapter", help="the adapter folder finetune wrote (OUTPUT/adapter)")
    p.add_argument("base", help="the GGUF file it was tuned from")
    p.add_argument("output", help="the adapter's .gguf")
    p.set_defaults(func=cmd_lora_to_gguf)
    p = sub.add_parser("build", parents=[target, root], help="build a TensorRT engine artifact (GPU)")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser(
        "package", parents=[root], help="wrap a .gguf or HF checkpoint as an artifact (no GPU)"
    )
    p.add_argument("model")
    p.add_argument(
        "--lora",
        metavar="ADAPTER.gguf",
        help="a GGUF LoRA adapter (engine-build lora-to-gguf) to package beside a .gguf base; "
        "llama.cpp applies it at load",
    )
    p.set_defaults(func=cmd_package)
    p = sub.add_parser("verify", help="run golden prompts through an artifact; results go into its manifest")
    p.add_argument("artifact")
    p.add_argument("--reference", metavar="CKPT", help="a HF checkpoint whose greedy first words must match")
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("promote", parents=[root, service], help="point `current` at a verified artifact")
    p.add_argument("artifact")
    p.add_argument("--force", action="store_true", help="promote even if not verified")
    p.set_defaults(func=cmd_promote)
    p = sub.add_parser(
        "rollback", parents=[root, service], help="point `current` back at the previous artifact"
    )
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("list", parents=[root], help="artifacts, and which is current")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine_build.artifacts import ArtifactError
    from engine_build.checkpoint import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CommandError, CheckpointError, ArtifactError) as exc:
        print(f"engine-build: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
