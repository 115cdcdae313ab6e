"""`oabot templates validate [DIR]` and `oabot templates list [DIR]`.

Without DIR both use the built-in templates plus OABOT_TEMPLATES_DIR when it is set (later
files override built-ins by key), exactly what the server loads. With DIR they use only DIR
(a directory or one file). Problems are printed one per line as `FILE:LINE: message`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from approvals.definitions import Template
from approvals.template_loader import (
    TemplateError,
    builtin_templates_dir,
    load_template_file,
    load_templates,
    validate_dir,
)
from bot.settings import ConfigError, load_settings
from notifications.conditions_wording import describe

EXIT_PROBLEMS = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "templates",
        help="check and list approval templates",
        description="Check and list approval templates (built-ins plus OABOT_TEMPLATES_DIR).",
    )
    actions = parser.add_subparsers(dest="templates_action", metavar="ACTION")
    validate = actions.add_parser(
        "validate",
        help="check template files; print FILE:LINE: message per problem",
        description="Check template files. Exit 2 when there is any problem.",
    )
    validate.add_argument(
        "dir", nargs="?", type=Path, help="a directory or file (default: built-ins + OABOT_TEMPLATES_DIR)"
    )
    validate.set_defaults(func=run_validate)
    listing = actions.add_parser("list", help="list templates: key, name, steps")
    listing.add_argument(
        "dir", nargs="?", type=Path, help="a directory or file (default: built-ins + OABOT_TEMPLATES_DIR)"
    )
    listing.set_defaults(func=run_list)

    def usage(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_PROBLEMS

    parser.set_defaults(func=usage)


def _sources(target: Path | None) -> list[Path] | None:
    """The directories (or one file) to read, or None after telling the user why not."""
    if target is not None:
        return [target]
    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    extra = [Path(settings.templates_dir)] if settings.templates_dir else []
    return [builtin_templates_dir(), *extra]


def _load(sources: list[Path]) -> dict[str, Template]:
    """Templates by key, later sources overriding earlier ones; raises TemplateError."""
    if len(sources) == 1 and sources[0].is_file():
        template = load_template_file(sources[0])
        return {template.key: template}
    return load_templates(sources, include_builtin=False)


def run_validate(args: argparse.Namespace) -> int:
    sources = _sources(args.dir)
    if sources is None:
        return EXIT_PROBLEMS
    problems = [p for source in sources for p in validate_dir(source)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{len(_load(sources))} templates OK")
    return 0


def run_list(args: argparse.Namespace) -> int:
    sources = _sources(args.dir)
    if sources is None:
        return EXIT_PROBLEMS
    try:
        templates = _load(sources)
    except TemplateError as exc:
        for problem in exc.problems:
            print(problem)
        return EXIT_PROBLEMS
    for key in sorted(templates):
        template = templates[key]
        labels = {f.key: f.label for f in template.fields}
        steps = " → ".join(
            step.name if step.when is None else f"{step.name} (当 {describe(step.when, labels=labels)})"
            for step in template.steps
        )
        print(f"{key}\t{template.name}\t{steps}")
    return 0
