"""Load approval templates from YAML into `approvals.definitions`, reporting every problem.

The YAML format maps one to one onto `Template` / `FieldSpec` / `StepSpec` / `ApproverSpec` /
conditions (docs/templates.md is the reference). The file is composed into PyYAML nodes and
walked node by node, so each problem carries the line it is on, and the walk goes on after a
problem: an operator fixing a template sees them all at once, as `FILE:LINE: message`.

This module reads template files and nothing else: no network, database or clock.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from approvals.conditions import INITIATOR_ATTRIBUTES
from approvals.definitions import (
    AllOf,
    AnyOf,
    ApproverKind,
    ApproverSpec,
    Compare,
    CompareOp,
    Condition,
    ConsecutivePolicy,
    FieldSpec,
    FieldType,
    InitiatorPolicy,
    NoApproverPolicy,
    Not,
    Permission,
    Policies,
    StepKind,
    StepMode,
    StepSpec,
    Template,
    WithdrawPolicy,
)
from approvals.forms import DEFAULT_PLACEHOLDERS, ValueRefused, normalise_value

TEMPLATE_SUFFIXES = (".yaml", ".yml")

TEMPLATE_KEYS = (
    "key", "name", "description", "category", "version", "title", "summary_fields",
    "policies", "fields", "steps", "cc", "on_approved", "deadlines",
)  # fmt: skip
POLICY_KEYS = ("no_approver", "admin_role", "initiator_is_approver", "consecutive_same_approver", "withdraw")
FIELD_KEYS = (
    "key", "label", "type", "required", "min", "max", "integer", "options", "default", "help",
    "not_before",
)  # fmt: skip
STEP_KEYS = (
    "key", "name", "approvers", "mode", "permission", "kind", "action_label", "can_reject",
    "time_limit_hours", "when", "no_approver", "initiator_is_approver", "deadlines",
)  # fmt: skip
APPROVER_KEYS = tuple(k.value for k in ApproverKind) + ("fallback",)
COMPARE_OPS = tuple(op.value for op in CompareOp)
GROUP_KEYS = ("all", "any", "not")

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_BOUNDED_TYPES = {
    FieldType.NUMBER, FieldType.MONEY, FieldType.TEXT, FieldType.TEXTAREA,
    FieldType.LIST, FieldType.USERS, FieldType.MULTISELECT,
}  # fmt: skip
_COUNTED_TYPES = {FieldType.TEXT, FieldType.TEXTAREA, FieldType.LIST, FieldType.USERS, FieldType.MULTISELECT}
_OPTION_TYPES = {FieldType.SELECT, FieldType.MULTISELECT}
_LIST_TYPES = {FieldType.LIST, FieldType.USERS, FieldType.MULTISELECT}
_ORDERED_TYPES = {FieldType.NUMBER, FieldType.MONEY, FieldType.DATE, FieldType.DATETIME}
_NUMERIC_TYPES = {FieldType.NUMBER, FieldType.MONEY}

# Which operators make sense on which kind of value; catches `gt` on a bool and the like.
_EQUALITY = {CompareOp.EQ, CompareOp.NE, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY}
_ORDERING = {CompareOp.GT, CompareOp.GTE, CompareOp.LT, CompareOp.LTE}
_OPS_BY_TYPE: dict[FieldType, set[CompareOp]] = {
    FieldType.BOOL: {CompareOp.EQ, CompareOp.NE, CompareOp.EMPTY},
    FieldType.NUMBER: _EQUALITY | _ORDERING,
    FieldType.MONEY: _EQUALITY | _ORDERING,
    FieldType.DATE: _EQUALITY | _ORDERING,
    FieldType.DATETIME: _EQUALITY | _ORDERING,
    FieldType.TEXT: _EQUALITY | {CompareOp.CONTAINS},
    FieldType.TEXTAREA: _EQUALITY | {CompareOp.CONTAINS},
    FieldType.SELECT: set(_EQUALITY),
    FieldType.USER: set(_EQUALITY),
    FieldType.DEPARTMENT: set(_EQUALITY),
    FieldType.SITE: set(_EQUALITY),
    FieldType.LIST: {CompareOp.CONTAINS, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY},
    FieldType.USERS: {CompareOp.CONTAINS, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY},
    FieldType.MULTISELECT: {CompareOp.CONTAINS, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY},
    FieldType.DATERANGE: {CompareOp.EMPTY},
    FieldType.LOCATION: {CompareOp.EMPTY},
}
# initiator attribute -> (kind of value, operators)
_INITIATOR_OPS: dict[str, tuple[str, set[CompareOp]]] = {
    "is_department_head": ("bool", {CompareOp.EQ, CompareOp.NE}),
    "is_sole_department_head": ("bool", {CompareOp.EQ, CompareOp.NE}),
    "department": ("text", set(_EQUALITY)),
    "level": ("number", _EQUALITY | _ORDERING),
    "roles": ("text", {CompareOp.CONTAINS, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY}),
}

E = TypeVar("E", bound=StrEnum)


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
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid syntax"
        if exc.problem and exc.context and exc.context_mark is not None:
            context_line = exc.context_mark.line + 1
            if context_line != line:  # say where the unclosed thing began, often the real mistake
                reason += f" ({exc.context} on line {context_line})"
        return None, [TemplateProblem(file, line, f"not valid YAML: {reason}")], None
    except yaml.YAMLError as exc:
        return None, [TemplateProblem(file, None, f"not valid YAML: {exc}")], None
    if root is None:
        return None, [TemplateProblem(file, 1, "the file is empty; expected a template mapping")], None
    reader = _Reader(file)
    template = reader.template(root, source=file)
    if reader.problems:
        return None, sorted(reader.problems, key=lambda p: p.line or 0), reader.key_line
    return template, [], reader.key_line


# -- the walk -------------------------------------------------------------------------------------
def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _label(section: str, index: int, node: Node) -> str:
    """`steps.boss` when the item has a usable key, else `steps[1]` (for messages)."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == "key" and isinstance(v, ScalarNode):
                if _KEY_RE.match(str(v.value)):
                    return f"{section}.{v.value}"
    return f"{section}[{index}]"


def _plain(value: Any) -> Any:
    """Dates YAML found become ISO strings so definitions hold plain JSON-like data."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text '{value}'"
    return f"a {type(value).__name__}"


class _Reader:
    """Walks one composed YAML document, building definitions and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[TemplateProblem] = []
        self.key_line: int | None = None
        self._constructor = SafeConstructor()
        self._fields: dict[str, FieldSpec] = {}
        self._declared: set[str] = set()  # field keys seen, valid or not: no cascade of problems

    # -- primitives ----------------------------------------------------------------------
    def problem(self, node: Node | None, message: str) -> None:
        self.problems.append(TemplateProblem(self.file, _line(node) if node is not None else None, message))

    def value(self, node: Node, where: str) -> Any:
        """The Python value of any node (mappings and lists included); None after a problem."""
        try:
            return _plain(self._constructor.construct_object(node, deep=True))
        except yaml.YAMLError as exc:
            self.problem(node, f"{where}: {getattr(exc, 'problem', None) or exc}")
            return None

    def describe_node(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return _what(self.value(node, "value"))

    def mapping(
        self, node: Node, where: str, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a mapping, got {self.describe_node(node)}")
            return None
        try:
            self._constructor.flatten_mapping(node)  # `<<: *anchor` merges
        except yaml.YAMLError as exc:
            self.problem(node, f"{where}: {getattr(exc, 'problem', None) or exc}")
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node, where) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{where}: a key must be text, got {self.describe_node(key_node)}")
                continue
            if key in out:
                first = _line(out[key][0])
                self.problem(key_node, f"{where}: duplicate key '{key}' (first on line {first})")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.problem(key_node, f"{where}: unknown key '{key}' ({hint}allowed: {', '.join(allowed)})")
                continue
            out[key] = (key_node, value_node)
        for key in required:
            if key not in out:
                self.problem(node, f"{where}: missing '{key}'")
        return out

    def sequence(self, node: Node, where: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{where}: expected a list, got {self.describe_node(node)}")
            return None
        return list(node.value)

    def scalar(self, node: Node, where: str, check: Callable[[Any], bool], expected: str) -> Any:
        if not isinstance(node, ScalarNode):
            self.problem(node, f"{where}: expected {expected}, got {self.describe_node(node)}")
            return None
        value = self.value(node, where)
        if not check(value):
            quote = expected == "text" and isinstance(value, int | float | bool)
            hint = " (put it in quotes)" if quote else ""
            self.problem(node, f"{where}: expected {expected}, got {_what(value)}{hint}")
            return None
        return value

    def text(self, node: Node, where: str) -> str | None:
        value = self.scalar(node, where, lambda v: isinstance(v, str), "text")
        if isinstance(value, str) and not value.strip():
            self.problem(node, f"{where}: must not be empty")
            return None
        return value.strip() if isinstance(value, str) else None

    def key(self, node: Node, where: str) -> str | None:
        value = self.text(node, where)
        if value is not None and not _KEY_RE.match(value):
            self.problem(
                node, f"{where}: '{value}' must be lower-case letters, digits and _ starting with a letter"
            )
            return None
        return value

    def boolean(self, node: Node, where: str) -> bool | None:
        value = self.scalar(node, where, lambda v: isinstance(v, bool), "true or false")
        return value if isinstance(value, bool) else None

    def number(self, node: Node, where: str) -> float | None:
        def ok(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        value = self.scalar(node, where, ok, "a number")
        return value if ok(value) else None

    def choice(self, node: Node, where: str, enum: type[E], what: str) -> E | None:
        value = self.text(node, where)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.problem(node, f"{where}: unknown {what} '{value}' (allowed: {allowed})")
            return None

    # -- the template ----------------------------------------------------------------------
    def template(self, root: Node, *, source: str) -> Template | None:
        top = self.mapping(root, "template", TEMPLATE_KEYS, required=("key", "name", "steps"))
        if top is None:
            return None
        key = name = None
        if "key" in top:
            self.key_line = _line(top["key"][1])
            key = self.key(top["key"][1], "key")
        if "name" in top:
            name = self.text(top["name"][1], "name")
        description = self.optional_text(top, "description")
        category = self.optional_text(top, "category")
        version = 1
        if "version" in top:
            n = self.number(top["version"][1], "version")
            if n is not None and (n != int(n) or n < 1):
                self.problem(top["version"][1], "version: expected a whole number of at least 1")
            elif n is not None:
                version = int(n)
        policies = self.policies(top["policies"][1]) if "policies" in top else Policies()
        fields = self.fields(top["fields"][1]) if "fields" in top else ()
        steps = self.steps(top["steps"][1], policies) if "steps" in top else ()
        cc = self.approver_list(top["cc"][1], "cc") if "cc" in top else ()
        on_approved = self.approver_list(top["on_approved"][1], "on_approved") if "on_approved" in top else ()
        summary = self.summary_fields(top["summary_fields"][1]) if "summary_fields" in top else ()
        title = self.title(top["title"][1]) if "title" in top else None
        deadlines = self.deadlines(top["deadlines"][1], "deadlines") if "deadlines" in top else {}
        if key is None or name is None:
            return None
        return Template(
            key=key,
            name=name,
            fields=fields,
            steps=steps,
            description=description,
            category=category,
            version=version,
            policies=policies,
            cc=cc,
            on_approved=on_approved,
            summary_fields=summary,
            title=title,
            deadlines=deadlines,
            source=source,
        )

    def optional_text(self, m: dict[str, tuple[Node, Node]], key: str) -> str:
        if key not in m:
            return ""
        node = m[key][1]
        value = self.scalar(node, key, lambda v: isinstance(v, str), "text")
        return value.strip() if isinstance(value, str) else ""

    def deadlines(self, node: Node, where: str) -> dict[str, Any]:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a mapping, got {self.describe_node(node)}")
            return {}
        value = self.value(node, where)
        return value if isinstance(value, dict) else {}

    def policies(self, node: Node) -> Policies:
        m = self.mapping(node, "policies", POLICY_KEYS)
        if m is None:
            return Policies()
        values: dict[str, Any] = {}
        enums: dict[str, tuple[type[StrEnum], str]] = {
            "no_approver": (NoApproverPolicy, "no_approver policy"),
            "initiator_is_approver": (InitiatorPolicy, "initiator_is_approver policy"),
            "consecutive_same_approver": (ConsecutivePolicy, "consecutive_same_approver policy"),
            "withdraw": (WithdrawPolicy, "withdraw policy"),
        }
        for key, (enum, what) in enums.items():
            if key in m:
                choice = self.choice(m[key][1], f"policies.{key}", enum, what)
                if choice is not None:
                    values[key] = choice
        if "admin_role" in m:
            values["admin_role"] = self.text(m["admin_role"][1], "policies.admin_role")
        if values.get("no_approver") == NoApproverPolicy.ADMIN and not values.get("admin_role"):
            self.problem(m["no_approver"][1], "policies.no_approver: 'admin' needs policies.admin_role")
        return Policies(**values)

    def summary_fields(self, node: Node) -> tuple[str, ...]:
        items = self.sequence(node, "summary_fields")
        out: list[str] = []
        for i, item in enumerate(items or []):
            key = self.text(item, f"summary_fields[{i}]")
            if key is None:
                continue
            if key not in self._declared:
                self.problem(item, f"summary_fields: field '{key}' does not exist")
            out.append(key)
        return tuple(out)

    def title(self, node: Node) -> str | None:
        title = self.text(node, "title")
        if title is None:
            return None
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(title) if name is not None]
        except ValueError as exc:
            self.problem(node, f"title: {exc} (write {{field_key}} for a field, {{{{ for a brace)")
            return None
        for name in names:
            key = re.split(r"[.\[!:]", name, maxsplit=1)[0]
            if key not in self._declared:
                self.problem(node, f"title: field '{key}' does not exist")
        return title

    # -- fields ------------------------------------------------------------------------------
    def fields(self, node: Node) -> tuple[FieldSpec, ...]:
        items = self.sequence(node, "fields")
        if items is None:
            return ()
        # Keys first, so not_before and conditions can refer to any field, before or after.
        first_line: dict[str, int] = {}
        for item in items:
            if isinstance(item, MappingNode):
                for k, v in item.value:
                    if isinstance(k, ScalarNode) and k.value == "key" and isinstance(v, ScalarNode):
                        self._declared.add(str(v.value))
        specs: list[FieldSpec] = []
        pending_order: list[tuple[FieldSpec, Node]] = []
        for i, item in enumerate(items):
            spec, order_node = self.field(item, i, first_line)
            if spec is None:
                continue
            specs.append(spec)
            self._fields[spec.key] = spec
            if order_node is not None:
                pending_order.append((spec, order_node))
        for spec, order_node in pending_order:
            self.check_not_before(spec, order_node)
        return tuple(specs)

    def field(
        self, node: Node, index: int, first_line: dict[str, int]
    ) -> tuple[FieldSpec | None, Node | None]:
        where = _label("fields", index, node)
        m = self.mapping(node, where, FIELD_KEYS, required=("key", "label", "type"))
        if m is None:
            return None, None
        key = self.key(m["key"][1], f"{where}.key") if "key" in m else None
        if key is not None:
            if key in first_line:
                self.problem(
                    m["key"][1], f"{where}: duplicate field key '{key}' (first on line {first_line[key]})"
                )
                key = None
            else:
                first_line[key] = _line(m["key"][1])
        label = self.text(m["label"][1], f"{where}.label") if "label" in m else None
        ftype = self.choice(m["type"][1], f"{where}.type", FieldType, "field type") if "type" in m else None
        required = self.boolean(m["required"][1], f"{where}.required") if "required" in m else False
        integer = self.boolean(m["integer"][1], f"{where}.integer") if "integer" in m else False
        help_text = self.optional_text(m, "help")
        bounds: dict[str, float | None] = {"min": None, "max": None}
        for bound in ("min", "max"):
            if bound in m:
                bounds[bound] = self.number(m[bound][1], f"{where}.{bound}")
        options: tuple[str, ...] = ()
        if "options" in m:
            options = self.options(m["options"][1], f"{where}.options")
        not_before = self.key(m["not_before"][1], f"{where}.not_before") if "not_before" in m else None
        if key is None or label is None or ftype is None or required is None or integer is None:
            return None, None
        ok = True
        lo, hi = bounds["min"], bounds["max"]
        for bound in ("min", "max"):
            value = bounds[bound]
            if bound not in m or value is None:
                continue
            node_b = m[bound][0]
            if ftype not in _BOUNDED_TYPES:
                self.problem(node_b, f"{where}.{bound}: a {ftype.value} field has no {bound}")
                ok = False
            elif ftype in _COUNTED_TYPES and (value < 0 or value != int(value)):
                self.problem(m[bound][1], f"{where}.{bound}: expected a whole number of at least 0")
                ok = False
        if ok and lo is not None and hi is not None and lo > hi:
            self.problem(m["max"][0], f"{where}: min {lo:g} is greater than max {hi:g}")
            ok = False
        if integer and ftype != FieldType.NUMBER:
            self.problem(m["integer"][0], f"{where}.integer: only a number field can be integer")
            ok = False
        if ftype in _OPTION_TYPES and not options:
            if "options" not in m:
                self.problem(m["type"][1], f"{where}: a {ftype.value} field needs options")
            ok = False
        if ftype not in _OPTION_TYPES and "options" in m:
            self.problem(m["options"][0], f"{where}.options: only select and multiselect fields have options")
            ok = False
        if not_before is not None and ftype not in (FieldType.DATE, FieldType.DATETIME):
            self.problem(m["not_before"][0], f"{where}.not_before: only date and datetime fields have it")
            ok = False
        spec = FieldSpec(
            key=key,
            label=label,
            type=ftype,
            required=required,
            min=lo,
            max=hi,
            integer=integer,
            options=options,
            help=help_text,
            line=_line(node),
            not_before=not_before,
        )
        if "default" in m and ok:
            default = self.default(spec, m["default"][1], where)
            if default is None:
                ok = False
            else:
                spec = replace(spec, default=default)
        if not ok:
            return None, None
        return spec, (m["not_before"][1] if not_before is not None else None)

    def options(self, node: Node, where: str) -> tuple[str, ...]:
        items = self.sequence(node, where)
        if items is None:
            return ()
        if not items:
            self.problem(node, f"{where}: the list of options is empty")
        out: list[str] = []
        for i, item in enumerate(items):
            option = self.text(item, f"{where}[{i}]")
            if option is None:
                continue
            if option in out:
                self.problem(item, f"{where}: duplicate option '{option}'")
                continue
            out.append(option)
        return tuple(out)

    def default(self, spec: FieldSpec, node: Node, where: str) -> Any:
        value = self.value(node, f"{where}.default")
        if value is None:
            return None
        if isinstance(value, str) and value.startswith("$"):
            types = DEFAULT_PLACEHOLDERS.get(value)
            if types is None:
                allowed = ", ".join(DEFAULT_PLACEHOLDERS)
                self.problem(node, f"{where}.default: unknown placeholder '{value}' (allowed: {allowed})")
                return None
            if spec.type not in types:
                self.problem(node, f"{where}.default: '{value}' does not fit a {spec.type.value} field")
                return None
            return value
        try:
            normalise_value(spec, value, tz=UTC)
        except ValueRefused as exc:
            self.problem(
                node, f"{where}.default: {_what(value)} does not fit a {spec.type.value} field ({exc})"
            )
            return None
        return value

    def check_not_before(self, spec: FieldSpec, node: Node) -> None:
        other_key = spec.not_before
        where = f"fields.{spec.key}.not_before"
        if other_key == spec.key:
            self.problem(node, f"{where}: a field cannot refer to itself")
        elif other_key not in self._declared:
            self.problem(node, f"{where}: field '{other_key}' does not exist")
        elif (other := self._fields.get(other_key)) is not None and other.type != spec.type:
            self.problem(
                node, f"{where}: field '{other_key}' is a {other.type.value}, not a {spec.type.value}"
            )

    # -- steps -------------------------------------------------------------------------------
    def steps(self, node: Node, policies: Policies) -> tuple[StepSpec, ...]:
        items = self.sequence(node, "steps")
        if items is None:
            return ()
        if not items:
            self.problem(node, "steps: a template needs at least one step")
        first_line: dict[str, int] = {}
        out: list[StepSpec] = []
        for i, item in enumerate(items):
            step = self.step(item, i, first_line, policies)
            if step is not None:
                out.append(step)
        return tuple(out)

    def step(self, node: Node, index: int, first_line: dict[str, int], policies: Policies) -> StepSpec | None:
        where = _label("steps", index, node)
        m = self.mapping(node, where, STEP_KEYS, required=("key", "name", "approvers"))
        if m is None:
            return None
        key = self.key(m["key"][1], f"{where}.key") if "key" in m else None
        if key is not None:
            if key in first_line:
                self.problem(
                    m["key"][1], f"{where}: duplicate step key '{key}' (first on line {first_line[key]})"
                )
                key = None
            else:
                first_line[key] = _line(m["key"][1])
        name = self.text(m["name"][1], f"{where}.name") if "name" in m else None
        approvers = (
            self.approver_list(m["approvers"][1], f"{where}.approvers", allow_empty=False)
            if "approvers" in m
            else ()
        )
        values: dict[str, Any] = {}
        enums: dict[str, tuple[type[StrEnum], str]] = {
            "mode": (StepMode, "mode"),
            "permission": (Permission, "permission"),
            "kind": (StepKind, "step kind"),
            "no_approver": (NoApproverPolicy, "no_approver policy"),
            "initiator_is_approver": (InitiatorPolicy, "initiator_is_approver policy"),
        }
        ok = key is not None and name is not None and "approvers" in m
        for field_name, (enum, what) in enums.items():
            if field_name in m:
                choice = self.choice(m[field_name][1], f"{where}.{field_name}", enum, what)
                ok = ok and choice is not None
                values[field_name] = choice
        if "action_label" in m:
            values["action_label"] = self.text(m["action_label"][1], f"{where}.action_label")
            ok = ok and values["action_label"] is not None
        if "can_reject" in m:
            values["can_reject"] = self.boolean(m["can_reject"][1], f"{where}.can_reject")
            ok = ok and values["can_reject"] is not None
        if "time_limit_hours" in m:
            hours = self.number(m["time_limit_hours"][1], f"{where}.time_limit_hours")
            if hours is not None and hours <= 0:
                self.problem(m["time_limit_hours"][1], f"{where}.time_limit_hours: expected more than 0")
                hours = None
            ok = ok and hours is not None
            values["time_limit_hours"] = float(hours) if hours is not None else None
        if "when" in m:
            values["when"] = self.condition(m["when"][1], f"{where}.when")
            ok = ok and values["when"] is not None
        if "deadlines" in m:
            values["deadlines"] = self.deadlines(m["deadlines"][1], f"{where}.deadlines")
        if values.get("no_approver") == NoApproverPolicy.ADMIN and not policies.admin_role:
            self.problem(m["no_approver"][1], f"{where}.no_approver: 'admin' needs policies.admin_role")
            ok = False
        own = values.get("initiator_is_approver") or policies.initiator_is_approver
        if own == InitiatorPolicy.AUTO_APPROVE and any(a.kind == ApproverKind.INITIATOR for a in approvers):
            self.problem(
                m["approvers"][1],
                f"{where}: an {{initiator: true}} step approves itself unless it has initiator_is_approver: keep",
            )
            ok = False
        if not ok or key is None or name is None:
            return None
        return StepSpec(key=key, name=name, approvers=approvers, line=_line(node), **values)

    # -- approvers ---------------------------------------------------------------------------
    def approver_list(self, node: Node, where: str, *, allow_empty: bool = True) -> tuple[ApproverSpec, ...]:
        items = self.sequence(node, where)
        if items is None:
            return ()
        if not items and not allow_empty:
            self.problem(node, f"{where}: a step needs at least one approver")
        out = [self.approver(item, f"{where}[{i}]") for i, item in enumerate(items)]
        return tuple(a for a in out if a is not None)

    def approver(self, node: Node, where: str) -> ApproverSpec | None:
        before = len(self.problems)
        m = self.mapping(node, where, APPROVER_KEYS)
        if m is None:
            return None
        kinds = [k for k in m if k != "fallback"]
        if not kinds and len(self.problems) > before:
            return None  # an unknown key was reported already; saying more would only repeat it
        if len(kinds) != 1:
            given = f" (got {', '.join(kinds)})" if kinds else ""
            allowed = ", ".join(k.value for k in ApproverKind)
            self.problem(node, f"{where}: give exactly one of {allowed}{given}")
            return None
        kind = ApproverKind(kinds[0])
        value_node = m[kind.value][1]
        value = self.approver_value(kind, value_node, f"{where}.{kind.value}")
        fallback = None
        if "fallback" in m:
            fallback = self.approver(m["fallback"][1], f"{where}.fallback")
            if fallback is None:
                return None
        if value is _INVALID:
            return None
        return ApproverSpec(kind=kind, value=value, fallback=fallback, line=_line(node))

    def approver_value(self, kind: ApproverKind, node: Node, where: str) -> Any:
        if kind in (ApproverKind.USER, ApproverKind.ROLE, ApproverKind.ROLE_ALL):
            return self.text(node, where) or _INVALID
        if kind == ApproverKind.MANAGER:
            n = self.number(node, where)
            if n is None or n != int(n) or n < 1:
                if n is not None:
                    self.problem(node, f"{where}: expected a whole number of levels, at least 1")
                return _INVALID
            return int(n)
        if kind == ApproverKind.INITIATOR:
            flag = self.boolean(node, where)
            if flag is False:
                self.problem(node, f"{where}: only 'initiator: true' means something")
            return None if flag else _INVALID
        if kind == ApproverKind.DEPT_HEAD_OTHER:
            text = self.text(node, where)
            if text is not None and text != "initiator":
                self.problem(node, f"{where}: expected 'initiator', got text '{text}'")
                return _INVALID
            return text or _INVALID
        if kind == ApproverKind.DEPT_HEAD:
            text = self.text(node, where)
            if text is None:
                return _INVALID
            if text.startswith("field:"):
                fkey = text.removeprefix("field:")
                if not self.field_ref(node, where, fkey, (FieldType.DEPARTMENT,)):
                    return _INVALID
            return text
        # FORM_USER
        text = self.text(node, where)
        if text is None or not self.field_ref(node, where, text, (FieldType.USER, FieldType.USERS)):
            return _INVALID
        return text

    def field_ref(self, node: Node, where: str, key: str, types: tuple[FieldType, ...]) -> bool:
        if key not in self._declared:
            self.problem(node, f"{where}: field '{key}' does not exist")
            return False
        spec = self._fields.get(key)
        if spec is not None and spec.type not in types:
            wanted = " or ".join(t.value for t in types)
            self.problem(node, f"{where}: field '{key}' is a {spec.type.value} field, expected {wanted}")
            return False
        return True

    # -- conditions ------------------------------------------------------------------------
    def condition(self, node: Node, where: str) -> Condition | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: expected a condition mapping, got {self.describe_node(node)}")
            return None
        names = [str(k.value) for k, _ in node.value if isinstance(k, ScalarNode)]
        if any(n in GROUP_KEYS for n in names):
            return self.group(node, where)
        return self.compare(node, where)

    def group(self, node: Node, where: str) -> Condition | None:
        m = self.mapping(node, where, GROUP_KEYS)
        if m is None:
            return None
        if len(m) != 1:
            self.problem(node, f"{where}: give exactly one of all, any, not")
            return None
        name, (_, value) = next(iter(m.items()))
        if name == "not":
            inner = self.condition(value, f"{where}.not")
            return Not(inner) if inner is not None else None
        items = self.sequence(value, f"{where}.{name}")
        if items is None:
            return None
        if not items:
            self.problem(value, f"{where}.{name}: the list of conditions is empty")
            return None
        parsed = [self.condition(item, f"{where}.{name}[{i}]") for i, item in enumerate(items)]
        if any(c is None for c in parsed):
            return None
        conditions = tuple(c for c in parsed if c is not None)
        return AllOf(conditions) if name == "all" else AnyOf(conditions)

    def compare(self, node: Node, where: str) -> Condition | None:
        before = len(self.problems)
        m = self.mapping(node, where, ("field", "initiator") + COMPARE_OPS)
        if m is None:
            return None
        subjects = [k for k in ("field", "initiator") if k in m]
        ops = [k for k in m if k in COMPARE_OPS]
        if (not subjects or not ops) and len(self.problems) > before:
            return None  # an unknown key was reported already
        if len(subjects) != 1:
            self.problem(node, f"{where}: give exactly one of field, initiator (or all, any, not)")
            return None
        if len(ops) != 1:
            got = f" (got {', '.join(ops)})" if ops else ""
            self.problem(node, f"{where}: give exactly one operator: {', '.join(COMPARE_OPS)}{got}")
            return None
        subject, op_name = subjects[0], ops[0]
        op = CompareOp(op_name)
        subject_node, (op_key_node, value_node) = m[subject][1], m[op_name]
        name = self.text(subject_node, f"{where}.{subject}")
        value = self.value(value_node, f"{where}.{op_name}")
        if name is None:
            return None
        problem = self.compare_problem(subject, name, op, value)
        if problem is not None:
            self.problem(subject_node if problem[0] == "subject" else op_key_node, f"{where}: {problem[1]}")
            return None
        return Compare(
            op=op,
            value=value,
            field=name if subject == "field" else None,
            initiator=name if subject == "initiator" else None,
            line=_line(node),
        )

    def compare_problem(self, subject: str, name: str, op: CompareOp, value: Any) -> tuple[str, str] | None:
        """("subject"|"op", message) when the comparison cannot make sense, else None."""
        if subject == "initiator" and name not in _INITIATOR_OPS:
            allowed = ", ".join(INITIATOR_ATTRIBUTES)
            return ("subject", f"unknown initiator attribute '{name}' (allowed: {allowed})")
        if subject == "field" and name not in self._declared:
            return ("subject", f"field '{name}' does not exist")
        if op == CompareOp.EMPTY:
            ok = isinstance(value, bool)
            return None if ok else ("op", f"empty: expected true or false, got {_what(value)}")
        if op in (CompareOp.IN, CompareOp.NOT_IN) and not isinstance(value, list):
            return ("op", f"{op.value}: expected a list of values, got {_what(value)}")
        items = value if op in (CompareOp.IN, CompareOp.NOT_IN) else [value]
        if subject == "initiator":
            kind, allowed_ops = _INITIATOR_OPS[name]
            if op not in allowed_ops:
                return ("op", f"operator '{op.value}' does not apply to the initiator's {name}")
            for item in items:
                if not _fits_kind(kind, item):
                    return ("op", f"{op.value}: {_what(item)} is not {_KIND_WORDS[kind]}")
            return None
        spec = self._fields.get(name)
        if spec is None:
            return None  # the field itself has problems, already reported
        if op not in _OPS_BY_TYPE[spec.type]:
            return ("op", f"operator '{op.value}' does not apply to the {spec.type.value} field '{name}'")
        for item in items:
            message = _value_problem(spec, op, item)
            if message is not None:
                return ("op", f"{op.value}: {message}")
        return None


class _Invalid:
    pass


_INVALID: Any = _Invalid()

_KIND_WORDS = {"bool": "true or false", "text": "text", "number": "a number"}


def _fits_kind(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _value_problem(spec: FieldSpec, op: CompareOp, value: Any) -> str | None:
    """Why `value` can never match field `spec` under `op`, else None."""
    t = spec.type
    if t in _NUMERIC_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{_what(value)} is not a number ('{spec.key}' is a {t.value} field)"
    if t == FieldType.BOOL:
        return (
            None
            if isinstance(value, bool)
            else f"{_what(value)} is not true or false ('{spec.key}' is a bool field)"
        )
    if t == FieldType.DATE:
        return None if _iso_date(value) else f"{_what(value)} is not a date YYYY-MM-DD"
    if t == FieldType.DATETIME:
        moment = _iso_datetime(value)
        if moment is None:
            return f"{_what(value)} is not a datetime such as 2026-01-05T09:00+08:00"
        return None if moment.tzinfo is not None else f"{_what(value)} needs a UTC offset such as +08:00"
    if not isinstance(value, str):
        return f"{_what(value)} is not text ('{spec.key}' is a {t.value} field)"
    if t in _OPTION_TYPES and value not in spec.options:
        return f"'{value}' is not one of the options of '{spec.key}' ({', '.join(spec.options)})"
    return None


def _iso_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) <= 10:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
