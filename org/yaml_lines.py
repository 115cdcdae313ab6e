"""YAML that remembers where each value was written, for messages of the form `FILE:LINE: ...`.

`load_lined` turns YAML text into plain dicts, lists and scalars, but every mapping is a
`LinedMap` and every list a `LinedList`: ordinary `dict`/`list` objects (a model validates them
as usual) that also know the line of the mapping or list itself, of each key and of each value.
`line_of` follows an error location (keys and list indices) back to a line.

What plain loading would hide is reported instead of silently resolved: a key written twice, a
key that is not text, a value PyYAML cannot build. Dates become ISO strings, so the data is
plain JSON-like values. This module parses text and nothing else: it reads no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Location = tuple[str | int, ...]


class LinedMap(dict[str, Any]):
    """A mapping from YAML; `line` is where it starts, `key_lines`/`value_lines` per key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}


class LinedList(list[Any]):
    """A list from YAML; `line` is where it starts, `item_lines` where each item starts."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@dataclass(frozen=True)
class Scalar:
    """A scalar as written, for messages that quote it (`the number 010001`, not 4097)."""

    value: Any  # as PyYAML builds it; None when its explicit tag does not fit (`!!int abc`)
    text: str  # the characters written, without quotes
    tag: str  # e.g. tag:yaml.org,2002:str
    line: int


@dataclass(frozen=True)
class YamlProblem:
    """Something in the text that plain loading would hide; `path` is the mapping it is in.

    `kind` is "duplicate" (`key` written twice, first on `first_line`), "key" (a key that is not
    text: `found`) or "value" (a value or merge PyYAML cannot build: `detail`).
    """

    path: Location
    line: int
    kind: str
    key: str | None = None
    first_line: int | None = None
    found: Any = None
    detail: str = ""


@dataclass(frozen=True)
class YamlSyntaxError(Exception):
    """The text is not YAML; `context` says what was open, from `context_line`, when known."""

    line: int | None
    problem: str
    context: str | None = None
    context_line: int | None = None


@dataclass(frozen=True)
class LinedDocument:
    data: Any  # None for an empty document
    problems: list[YamlProblem]


def describe(value: Any) -> str:
    """How a value reads to the person who wrote it: `text 'x'`, `the number 3`, `a list`..."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "nothing (null)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text '{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def load_lined(text: str, *, scalars: bool = False, later_wins: bool = False) -> LinedDocument:
    """The document in `text` with its lines; raises YamlSyntaxError when it is not YAML.

    With `scalars=True` every scalar is a `Scalar` (value, text as written, tag, line) and no
    value problem is reported: the caller judges values by their tag. Otherwise scalars are
    plain values and dates ISO strings. A key written twice is reported; the first value stays,
    or the last with `later_wins=True`.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(
            line=mark.line + 1 if mark is not None else None,
            problem=str(exc.problem or exc.context or "invalid syntax"),
            context=exc.context if exc.problem else None,
            context_line=exc.context_mark.line + 1 if exc.context_mark is not None else None,
        ) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlSyntaxError(line=line, problem=f"unacceptable character #x{exc.character:04X}") from exc
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises only the two above
        raise YamlSyntaxError(line=None, problem=str(exc)) from exc
    if root is None:
        return LinedDocument(None, [])
    builder = _Builder(scalars, later_wins)
    return LinedDocument(builder.build(root, ()), builder.problems)


def line_of(data: Any, loc: Sequence[str | int], *, key: bool = False) -> int | None:
    """The line of the value at `loc` (or of its key, with `key=True`), as deep as it exists.

    Parts of `loc` that are not keys or indices of the data are skipped: a model names the
    branch of a union it tried there.
    """
    line = data.line if isinstance(data, LinedMap | LinedList) else None
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, LinedMap) and isinstance(part, str) and part in node:
            line = node.key_lines[part] if key and i == len(loc) - 1 else node.value_lines[part]
            node = node[part]
        elif isinstance(node, LinedList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.item_lines[part], node[part]
    return line


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


class _Builder:
    def __init__(self, scalars: bool, later_wins: bool) -> None:
        self.problems: list[YamlProblem] = []
        self._scalars = scalars
        self._later_wins = later_wins
        self._constructor = SafeConstructor()

    def build(self, node: Node, path: Location) -> Any:
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            items = LinedList(_line(node))
            for i, item in enumerate(node.value):
                items.append(self.build(item, (*path, i)))
                items.item_lines.append(_line(item))
            return items
        return self._scalar(node, path)

    def _scalar(self, node: Node, path: Location) -> Any:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            if not self._scalars:
                detail = str(getattr(exc, "problem", None) or exc)
                self.problems.append(YamlProblem(path, _line(node), "value", detail=detail))
            value = None
        if self._scalars:
            return Scalar(value, str(node.value), str(node.tag), _line(node))
        return _plain(value)

    def _key(self, node: Node, path: Location) -> str | None:
        """The key's text, or None after reporting a key that is not text."""
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return str(node.value)
        found = self.build(node, path)
        self.problems.append(YamlProblem(path, _line(node), "key", found=found))
        return None

    def _mapping(self, node: MappingNode, path: Location) -> LinedMap:
        out = LinedMap(_line(node))
        explicit = {id(k) for k, _ in node.value if k.tag != _MERGE}
        try:
            self._constructor.flatten_mapping(node)  # `<<: *anchor` merges come first, then the keys written
        except yaml.YAMLError as exc:
            detail = str(getattr(exc, "problem", None) or exc)
            self.problems.append(YamlProblem(path, _line(node), "value", detail=detail))
            return out
        written: dict[str, int] = {}  # keys written in this mapping (not merged) -> first line
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in written:
                self.problems.append(
                    YamlProblem(path, _line(key_node), "duplicate", key=key, first_line=written[key])
                )
                if not self._later_wins:
                    continue
            elif id(key_node) in explicit:
                written[key] = _line(key_node)
            out[key] = self.build(value_node, (*path, key))
            out.key_lines[key] = _line(key_node)
            out.value_lines[key] = _line(value_node)
        return out
