"""engine-build: turn new fine-tuned weights into a served TensorRT-LLM engine.

Only the command's shell exists so far; plan, merge-lora, build, verify, promote, rollback and
list arrive with the production-generation issue.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="engine-build",
        description=(
            "Build, verify, promote and roll back TensorRT-LLM engines for the answer engine. "
            "Subcommands (plan, merge-lora, build, verify, promote, rollback, list) are not implemented yet."
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help(sys.stderr)
    print("\nengine-build: no subcommands are implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
