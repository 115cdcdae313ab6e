"""The `oabot` command line. Each subcommand lives in `bot.cli.<name>`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot import __version__

COMMAND_MODULES = (
    "bot.cli.serve",
    "bot.cli.migrate",
    "bot.cli.config",
    "bot.cli.org",
    "bot.cli.templates",
    "bot.cli.audit",
    "bot.cli.stats",
    "bot.cli.backup",
    "bot.cli.calendar",
    "bot.cli.tokens",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oabot", description="Approvals, check-ins and reminders for WeCom and DingTalk."
    )
    parser.add_argument("--version", action="version", version=f"oabot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
