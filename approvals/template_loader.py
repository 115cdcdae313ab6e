"""Load approval templates from YAML into `approvals.definitions`, reporting every problem.

A file is read with `org.yaml_lines` (plain data that remembers the line of each value) and
validated against the models of `approvals.template_schema` (docs/templates.md is the
reference). Every problem pydantic finds is mapped back to the line it is on and reported
together, as `FILE:LINE: where: message`, so an operator fixing a template sees them all at once.

This module reads template files and nothing else: no network, database or clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from approvals.definitions import Template
from approvals.template_schema import KEY_RE, RELATION, UNKNOWN_KEY, TemplateModel, Vocabulary
from org.yaml_lines import (
    LinedDocument,
    LinedList,
    LinedMap,
    YamlProblem,
    YamlSyntaxError,
    describe,
    line_of,
    load_lined,
)

TEMPLATE_SUFFIXES = (".yaml", ".yml")
# Within one mapping: unknown keys first (a typo explains what follows), rules between keys last.
_RANK = {UNKNOWN_KEY: 0, "missing": 2, RELATION: 3}


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong in a template file; `str()` gives `FILE:LINE: message`."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class TemplateError(Exception):
    """Templates could not be loaded; `problems` lists every one found."""

    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# -- public API -----------------------------------------------------------------------------
def builtin_templates_dir() -> Path:
    """The directory of the templates shipped with oabot (works from an installed package)."""
    found = resources.files("approvals").joinpath("builtin_templates")
    if not isinstance(found, Path):  # e.g. imported from a zip file
        raise RuntimeError("oabot must be installed as files on disk to read its built-in templates")
    return found


def load_template_file(path: str | Path) -> Template:
    """One template file, or TemplateError with every problem in it."""
    template, problems, _ = _read_file(Path(path))
    if problems or template is None:
        raise TemplateError(problems)
    return template


def load_templates(dirs: Iterable[str | Path], *, include_builtin: bool = True) -> dict[str, Template]:
    """Templates by key: the built-ins, then each directory in turn adding or overriding by key.

    Raises TemplateError listing the problems of every file in every directory.
    """
    all_dirs = ([builtin_templates_dir()] if include_builtin else []) + [Path(d) for d in dirs]
    templates: dict[str, Template] = {}
    problems: list[TemplateProblem] = []
    for directory in all_dirs:
        found, found_problems = _read_dir(directory)
        templates.update(found)
        problems.extend(found_problems)
    if problems:
        raise TemplateError(problems)
    return templates


def validate_dir(path: str | Path) -> list[TemplateProblem]:
    """Every problem in the template files of `path` (or in the one file `path`)."""
    target = Path(path)
    if target.is_file():
        return _read_file(target)[1]
    return _read_dir(target)[1]


# -- files and directories ----------------------------------------------------------------------
def _template_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in TEMPLATE_SUFFIXES and p.is_file())


def _read_dir(directory: Path) -> tuple[dict[str, Template], list[TemplateProblem]]:
    if not directory.is_dir():
        return {}, [TemplateProblem(str(directory), None, "not a directory")]
    templates: dict[str, Template] = {}
    problems: list[TemplateProblem] = []
    for path in _template_files(directory):
        template, file_problems, key_line = _read_file(path)
        problems.extend(file_problems)
        if template is None:
            continue
        if template.key in templates:
            first = templates[template.key].source
            problems.append(
                TemplateProblem(
                    str(path), key_line, f"template key '{template.key}' is already used in {first}"
                )
            )
            continue
        templates[template.key] = template
    return templates, problems


def _read_file(path: Path) -> tuple[Template | None, list[TemplateProblem], int | None]:
    """(template or None, problems, line of its `key`)."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [TemplateProblem(file, None, f"cannot read the file: {exc.strerror or exc}")], None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw.count(b"\n", 0, exc.start) + 1
        return None, [TemplateProblem(file, bad_line, "not a YAML file: it is not UTF-8 text")], None
    try:
        document = load_lined(text)
    except YamlSyntaxError as exc:
        reason = exc.problem
        if exc.context and exc.context_line is not None and exc.context_line != exc.line:
            reason += f" ({exc.context} on line {exc.context_line})"  # where the unclosed thing began
        return None, [TemplateProblem(file, exc.line, f"not valid YAML: {reason}")], None
    if document.data is None:
        return None, [TemplateProblem(file, 1, "the file is empty; expected a template mapping")], None
    data = document.data
    key_line = data.value_lines.get("key") if isinstance(data, LinedMap) else None
    problems = _yaml_problems(file, document)
    try:
        template = TemplateModel.model_validate(data, context=Vocabulary.of(data)).to_template(file)
    except ValidationError as exc:
        problems += [_problem(file, data, e) for e in _ranked(exc.errors())]
        template = None
    if problems:
        return None, sorted(problems, key=lambda p: p.line or 0), key_line
    return template, [], key_line


# -- from errors to lines ------------------------------------------------------------------------
def _yaml_problems(file: str, document: LinedDocument) -> list[TemplateProblem]:
    return [
        TemplateProblem(file, p.line, f"{_where(document.data, p.path)}: {_yaml_message(p)}")
        for p in document.problems
    ]


def _yaml_message(problem: YamlProblem) -> str:
    if problem.kind == "duplicate":
        return f"duplicate key '{problem.key}' (first on line {problem.first_line})"
    if problem.kind == "key":
        return f"a key must be text, got {describe(problem.found)}"
    return problem.detail


def _ranked(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """The errors of each mapping together, unknown keys first and rules between keys last."""
    first: dict[tuple[str | int, ...], int] = {}
    for i, error in enumerate(errors):
        first.setdefault(error["loc"][:-1], i)
    return sorted(errors, key=lambda e: (first[e["loc"][:-1]], _RANK.get(e["type"], 1)))


def _problem(file: str, data: Any, error: ErrorDetails) -> TemplateProblem:
    """One pydantic error as a problem on the line its location points at."""
    loc = error["loc"]
    if error["type"] == "missing":  # named by the mapping it is missing from
        return TemplateProblem(
            file, line_of(data, loc[:-1]), f"{_where(data, loc[:-1])}: missing '{loc[-1]}'"
        )
    if (error.get("ctx") or {}).get("entry"):  # named by its mapping, on the line of its key or item
        return TemplateProblem(
            file, line_of(data, loc, key=True), f"{_where(data, loc[:-1])}: {error['msg']}"
        )
    return TemplateProblem(file, line_of(data, loc), f"{_where(data, loc)}: {error['msg']}")


def _where(data: Any, loc: Sequence[str | int]) -> str:
    """`steps.boss.approvers[0].manager` for a location (union branch names left out).

    An item of the top-level `fields` and `steps` lists is named by its `key` when it is usable,
    else by its position: `steps[1]`.
    """
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, LinedList) and isinstance(part, int) and 0 <= part < len(node):
            item = node[part]
            key = item.get("key") if isinstance(item, dict) else None
            named = len(parts) == 1 and parts[0] in ("fields", "steps") and isinstance(key, str)
            parts.append(f".{key}" if named and KEY_RE.match(str(key)) else f"[{part}]")
            node = item
        elif isinstance(node, LinedMap) and isinstance(part, str) and part in node:
            parts.append(f".{part}" if parts else part)
            node = node[part]
        elif isinstance(part, str) and " " not in part:  # a key that is not there (union tags have a space)
            parts.append(f".{part}" if parts else part)
    return "".join(parts) or "template"
