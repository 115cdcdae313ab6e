"""The `oabot` command line. Each subcommand lives in `bot.cli.<name>`.

`--demo` is accepted by every command, before or after its name (`oabot --demo org show`,
`oabot org show --demo`): it points the command at the demo's database, the one `make demo` /
`oabot serve --demo` fills, so what the README shows after `make demo` reads the demo's data.
"""

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
    "bot.cli.link",
    "bot.cli.sheet",
    "bot.cli.export",
    "bot.cli.notices",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oabot", description="Approvals, check-ins and reminders for WeCom and DingTalk."
    )
    parser.add_argument("--version", action="version", version=f"oabot {__version__}")
    parser.add_argument("--demo", action="store_true", help=DEMO_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():
        _accept_demo(command)
    return parser


DEMO_HELP = "use the demo's database ./var/demo.db (what `make demo` / `oabot serve --demo` use)"


def _accept_demo(parser: argparse.ArgumentParser) -> None:
    """Give `parser` and every subcommand under it a `--demo` flag. Its default is left out of
    the namespace (SUPPRESS), so a `--demo` given before the command name is not undone."""
    if "--demo" not in parser._option_string_actions:
        parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help=DEMO_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _accept_demo(child)


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
