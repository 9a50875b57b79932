"""What every answer-engine subcommand shares: its error type, exit code and settings."""

from __future__ import annotations

import argparse

from answer_engine.config import Settings, load_settings

EXIT_ERROR = 1


class CommandError(Exception):
    """A one-line message for the user, and a non-zero exit."""


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "model", None):  # a flag on the command line beats the environment and the file
        settings.generation.model = args.model
    return settings
