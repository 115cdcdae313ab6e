"""The template file format as pydantic models, converted to `approvals.definitions` once valid.

docs/templates.md describes the format; these models are its executable form. A field is one of
a union keyed by its `type` (what `min`, `options`, `not_before` mean depends on it), an approver
one of a union keyed by which kind it names (`{role: ...}`, `{manager: 1}`...), a condition a
comparison or a group. Every rule says what is wrong in the words an operator reads
(`unknown mode 'parallel' (allowed: ...)`); `approvals.template_loader` adds the file and line.

Rules that look across the template (a step naming a field, `admin` needing an admin role) read
a `Vocabulary` passed as the validation context; the fields are validated before the steps, and
each valid field and the policies are entered into it as they pass.

Pure: no I/O. The engine never sees these models, only the dataclasses they convert to.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from approvals.conditions import INITIATOR_ATTRIBUTES
from approvals.confidentiality import level_of
from approvals.definitions import (
    AllOf,
    AnyOf,
    ApproverKind,
    ApproverSpec,
    CcMoment,
    Compare,
    CompareOp,
    Condition,
    ConsecutivePolicy,
    FieldSpec,
    FieldType,
    InitiatorPolicy,
    NoApproverPolicy,
    Not,
    Numbering,
    Permission,
    Policies,
    Progress,
    StepKind,
    StepMode,
    StepSpec,
    Template,
    WithdrawPolicy,
)
from approvals.doc_numbers import PatternInvalid, check_prefix, parse_pattern
from approvals.forms import (
    DEFAULT_PLACEHOLDERS,
    MAX_LENGTH_LIMIT,
    TEXT_KINDS,
    ValueRefused,
    normalise_value,
)
from org.yaml_lines import LinedMap, describe

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
APPROVER_KINDS = tuple(k.value for k in ApproverKind)
COMPARE_OPS = tuple(op.value for op in CompareOp)
GROUP_KEYS = ("all", "any", "not")

# Error types the loader orders by within one mapping: unknown keys first, rules between keys last.
UNKNOWN_KEY = "unknown_key"
RELATION = "relation"
_BUILTIN_ERRORS = frozenset(get_args(ErrorType))

E = TypeVar("E", bound=StrEnum)


# -- the context the cross-template rules read ----------------------------------------------
@dataclass
class Vocabulary:
    """What the rest of a template is checked against while it is being validated."""

    declared: set[str]  # every field key written, valid or not: no cascade of problems
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # the valid fields so far
    policies: Policies = field(default_factory=Policies)
    seen: dict[tuple[str, str], LinedMap] = field(default_factory=dict)  # (section, key) -> first one

    @classmethod
    def of(cls, data: Any) -> Vocabulary:
        """The field keys written in a template document (any items, valid or not)."""
        items = data.get("fields") if isinstance(data, Mapping) else None
        declared = {
            str(item["key"])
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping) and isinstance(item.get("key"), str | int | float)
        }
        return cls(declared=declared)


def _vocabulary(info: ValidationInfo) -> Vocabulary:
    if not isinstance(info.context, Vocabulary):
        raise TypeError("template models are validated with a Vocabulary as context")
    return info.context


# -- errors ----------------------------------------------------------------------------------
def _error(message: str, kind: str = "template", **ctx: Any) -> PydanticCustomError:
    # `message` is final text; pydantic only fills in `{name}` for the names in `ctx`.
    return PydanticCustomError(kind, message, ctx or None)


def _again(error: ErrorDetails) -> InitErrorDetails:
    """An error caught from a nested validation, ready to be raised again with others."""
    ctx = error.get("ctx")
    if error["type"] in _BUILTIN_ERRORS:
        details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
        if ctx is not None:
            details["ctx"] = ctx
        return details
    return InitErrorDetails(
        type=_error(error["msg"], error["type"], **(ctx or {})), loc=error["loc"], input=None
    )


def _raise(title: str, errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _entry(key: str | int, message: str, kind: str = RELATION) -> InitErrorDetails:
    """A problem named by the mapping (or list) it is in, placed on the line of `key`."""
    return InitErrorDetails(type=_error(message, kind, entry=True), loc=(key,), input=None)


# -- scalars -----------------------------------------------------------------------------------
def _expected(what: str, value: Any) -> PydanticCustomError:
    hint = " (put it in quotes)" if what == "text" and isinstance(value, int | float | bool) else ""
    return _error(f"expected {what}, got {describe(value)}{hint}")


def _any_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _expected("text", value)
    return value.strip()


def _text(value: Any) -> str:
    text = _any_text(value)
    if not text:
        raise _error("must not be empty")
    return text


def _key(value: Any) -> str:
    key = _text(value)
    if not KEY_RE.match(key):
        raise _error(f"'{key}' must be lower-case letters, digits and _ starting with a letter")
    return key


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected("true or false", value)
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    raise _expected("a number", value)


def _whole(at_least: int, message: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        n = _number(value)
        if n != int(n) or n < at_least:
            raise _error(message)
        return int(n)

    return check


def _positive(value: Any) -> float:
    if _number(value) <= 0:
        raise _error("expected more than 0")
    return float(value)


def _count(value: Any) -> int | float:
    n = _number(value)
    if n < 0 or n != int(n):
        raise _error("expected a whole number of at least 0")
    return n


def _choice(enum: type[E], what: str) -> Callable[[Any], E]:
    def check(value: Any) -> E:
        text = _text(value)
        try:
            return enum(text)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            raise _error(f"unknown {what} '{text}' (allowed: {allowed})") from None

    return check


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _expected("a list", value)
    return value


def _mapping(value: Any) -> dict[str, Any]:
    """A free mapping (the ladder's `deadlines`, checked by `deadlines.ladder`)."""
    if not isinstance(value, Mapping):
        raise _expected("a mapping", value)
    return {str(k): plain(v) for k, v in value.items()}


def plain(value: Any) -> Any:
    """YAML data as plain dicts and lists, as definitions hold it."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


Text = Annotated[str, BeforeValidator(_text)]
AnyText = Annotated[str, BeforeValidator(_any_text)]
Key = Annotated[str, BeforeValidator(_key)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Number = Annotated[int | float, BeforeValidator(_number)]  # as written: `min: 1` stays 1
FreeMapping = Annotated[dict[str, Any], BeforeValidator(_mapping)]


def _nonempty(message: str) -> BeforeValidator:
    def check(value: Any) -> list[Any]:
        items = _list(value)
        if not items:
            raise _error(message)
        return items

    return BeforeValidator(check)


# -- sections: mappings with a fixed set of keys ------------------------------------------------
class Section(BaseModel):
    """A mapping of the file: refuses other values and unknown keys, remembers its line."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False)

    expected: ClassVar[str] = "a mapping"
    keys: ClassVar[tuple[str, ...]] = ()  # allowed keys in messages; default: the fields, in order
    _line: int | None = PrivateAttr(None)

    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        return cls.keys or tuple(f.alias or name for name, f in cls.model_fields.items())

    @model_validator(mode="wrap")
    @classmethod
    def _section(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            raise _error(f"expected {cls.expected}, got {describe(data)}")
        allowed = cls.allowed()
        unknown = [_unknown(key, allowed) for key in data if key not in allowed]
        rules = cls._rules(data, info)
        stop = cls._before(data, info)
        if stop:
            _raise(cls.__name__, unknown + stop + rules)
        try:
            result = handler(data)
        except ValidationError as exc:
            _raise(cls.__name__, unknown + [_again(e) for e in exc.errors()] + rules)
        result._line = data.line if isinstance(data, LinedMap) else None
        result._accepted(info)  # its known keys are fine: later rules may rely on them
        _raise(cls.__name__, unknown + rules)
        return result

    @classmethod
    def _before(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        """Problems that make validating the rest of this mapping pointless."""
        return []

    @classmethod
    def _rules(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        """Rules between keys, checked on what was written even where a value is wrong."""
        return []

    def _accepted(self, info: ValidationInfo) -> None:
        """Called once this mapping is valid (fields and policies enter the vocabulary)."""

    @property
    def line(self) -> int | None:
        return self._line


def _unknown(key: str, allowed: tuple[str, ...]) -> InitErrorDetails:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return _entry(key, f"unknown key '{key}' ({hint}allowed: {', '.join(allowed)})", UNKNOWN_KEY)


def _first_use(
    section: str, noun: str, data: Mapping[str, Any], info: ValidationInfo
) -> list[InitErrorDetails]:
    """A duplicate `key` of a field or step, naming the line of the first one."""
    key = data.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key.strip()) or not isinstance(data, LinedMap):
        return []
    first = _vocabulary(info).seen.setdefault((section, key.strip()), data)
    if first is data:
        return []
    line = first.value_lines["key"]
    return [_entry("key", f"duplicate {noun} key '{key.strip()}' (first on line {line})")]


# -- fields ---------------------------------------------------------------------------------------
def _no_bound(value: Any, info: ValidationInfo) -> None:
    _number(value)
    kind = info.data.get("type")
    raise _error(f"a {kind} field has no {info.field_name}")


def _no_integer(value: Any) -> bool:
    if _flag(value):
        raise _error("only a number field can be integer")
    return False


def _no_options(value: Any) -> tuple[str, ...]:
    raise _error("only select and multiselect fields have options")


def _no_order(value: Any) -> None:
    _key(value)
    raise _error("only date and datetime fields have it")


def _options(value: Any) -> tuple[str, ...]:
    items = _list(value)
    if not items:
        raise _error("the list of options is empty")
    out: list[str] = []
    errors: list[InitErrorDetails] = []
    for i, item in enumerate(items):
        try:
            option = _text(item)
        except PydanticCustomError as exc:
            errors.append(InitErrorDetails(type=exc, loc=(i,), input=item))
            continue
        if option in out:
            errors.append(_entry(i, f"duplicate option '{option}'"))
            continue
        out.append(option)
    _raise("options", errors)
    return tuple(out)


NoBound = Annotated[float | None, BeforeValidator(_no_bound)]
NoInteger = Annotated[bool, BeforeValidator(_no_integer)]
NoOptions = Annotated[tuple[str, ...], BeforeValidator(_no_options)]
NoOrder = Annotated[str | None, BeforeValidator(_no_order)]
Count = Annotated[int | float | None, BeforeValidator(_count)]
Options = Annotated[tuple[str, ...], BeforeValidator(_options)]


class FieldModel(Section):
    """What every field has; the kinds below say which of the other keys mean something."""

    key: Key
    label: Text
    type: Annotated[FieldType, BeforeValidator(_choice(FieldType, "field type"))]
    required: Flag = False
    min: Number | None = None
    max: Number | None = None
    integer: Flag = False
    options: Options = ()
    default: Any = None
    help: AnyText = ""
    not_before: Key | None = None
    required_if: AnyCondition | None = None
    not_initiator: Flag = False
    working_days_of: Key | None = None
    max_length: Count = None

    @classmethod
    def _before(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        return _first_use("fields", "field", data, info)

    @field_validator("not_initiator")
    @classmethod
    def _people_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("type") not in (FieldType.USER, FieldType.USERS):
            raise _error("only a user or users field can be not_initiator")
        return value

    @field_validator("max_length")
    @classmethod
    def _texts_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return value
        if info.data.get("type") not in TEXT_KINDS:
            kinds = ", ".join(t.value for t in TEXT_KINDS)
            raise _error(f"only {kinds} fields have a max_length")
        if not 1 <= value <= MAX_LENGTH_LIMIT:
            raise _error(f"max_length must be between 1 and {MAX_LENGTH_LIMIT}")
        return value

    @field_validator("working_days_of")
    @classmethod
    def _numbers_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type") != FieldType.NUMBER:
            raise _error("only a number field can count working days")
        return value

    @field_validator("default")
    @classmethod
    def _default(cls, value: Any, info: ValidationInfo) -> Any:
        value = plain(value)
        draft = _draft(info.data)
        if value is None or draft is None:
            return value
        if isinstance(value, str) and value.startswith("$"):
            types = DEFAULT_PLACEHOLDERS.get(value)
            if types is None:
                allowed = ", ".join(DEFAULT_PLACEHOLDERS)
                raise _error(f"unknown placeholder '{value}' (allowed: {allowed})")
            if draft.type not in types:
                raise _error(f"'{value}' does not fit a {draft.type.value} field")
            return value
        try:
            normalise_value(draft, value, tz=UTC)
        except ValueRefused as exc:
            raise _error(f"{describe(value)} does not fit a {draft.type.value} field ({exc})") from None
        return value

    @field_validator("max")
    @classmethod
    def _bounds(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min")
        if value is not None and low is not None and low > value:
            raise _error(f"min {low:g} is greater than max {value:g}", entry=True)
        return value

    def _accepted(self, info: ValidationInfo) -> None:
        spec = self.to_spec()
        _vocabulary(info).fields.setdefault(spec.key, spec)

    def to_spec(self) -> FieldSpec:
        return FieldSpec(
            key=self.key,
            label=self.label,
            type=self.type,
            required=self.required,
            min=self.min,
            max=self.max,
            integer=self.integer,
            options=self.options,
            default=self.default,
            help=self.help,
            line=self.line,
            not_before=self.not_before,
            required_if=self.required_if.to_condition() if self.required_if is not None else None,
            not_initiator=self.not_initiator,
            working_days_of=self.working_days_of,
            max_length=int(self.max_length) if self.max_length is not None else None,
        )


def _draft(values: Mapping[str, Any]) -> FieldSpec | None:
    """The field as validated so far, to try its default on; None when its basics are wrong."""
    if not {"key", "label", "type", "min", "max", "integer", "options"} <= set(values):
        return None
    return FieldSpec(
        key=values["key"],
        label=values["label"],
        type=values["type"],
        min=values["min"],
        max=values["max"],
        integer=values["integer"],
        options=values["options"],
    )


class ValueField(FieldModel):
    """number, money: `min`/`max` bound the value; `integer` for numbers only."""

    options: NoOptions = ()
    not_before: NoOrder = None

    @field_validator("integer")
    @classmethod
    def _integer(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("type") != FieldType.NUMBER:
            raise _error("only a number field can be integer")
        return value


class CountedField(FieldModel):
    """text, textarea, list, users: `min`/`max` count characters or items."""

    min: Count = None
    max: Count = None
    integer: NoInteger = False
    options: NoOptions = ()
    not_before: NoOrder = None


class ChoiceField(FieldModel):
    """select: one of `options`, which it needs."""

    min: NoBound = None
    max: NoBound = None
    integer: NoInteger = False
    not_before: NoOrder = None

    @model_validator(mode="after")
    def _has_options(self) -> Self:
        if not self.options and "options" not in self.model_fields_set:
            _raise("field", [_entry("type", f"a {self.type.value} field needs options")])
        return self


class MultiChoiceField(ChoiceField):
    """multiselect: some of `options`; `min`/`max` count the chosen ones."""

    min: Count = None
    max: Count = None


class DateField(FieldModel):
    """date, datetime: `not_before` names another field of the same type."""

    min: NoBound = None
    max: NoBound = None
    integer: NoInteger = False
    options: NoOptions = ()


class PlainField(FieldModel):
    """bool, user, department, daterange, site, location: nothing but the value itself."""

    min: NoBound = None
    max: NoBound = None
    integer: NoInteger = False
    options: NoOptions = ()
    not_before: NoOrder = None


_FIELD_KINDS: dict[FieldType, str] = {
    **dict.fromkeys((FieldType.NUMBER, FieldType.MONEY), "value field"),
    **dict.fromkeys((FieldType.TEXT, FieldType.TEXTAREA, FieldType.LIST, FieldType.USERS), "counted field"),
    FieldType.SELECT: "choice field",
    FieldType.MULTISELECT: "multichoice field",
    **dict.fromkeys((FieldType.DATE, FieldType.DATETIME), "date field"),
    **dict.fromkeys(
        (
            FieldType.BOOL,
            FieldType.USER,
            FieldType.DEPARTMENT,
            FieldType.DATERANGE,
            FieldType.SITE,
            FieldType.LOCATION,
        ),
        "plain field",
    ),
}


def _field_kind(data: Any) -> str:
    """The union member for a field: by its type; an unknown type is reported by the base."""
    raw = data.get("type") if isinstance(data, Mapping) else None
    try:
        return _FIELD_KINDS[FieldType(raw.strip())] if isinstance(raw, str) else "untyped field"
    except ValueError:
        return "untyped field"


AnyField = Annotated[
    Annotated[ValueField, Tag("value field")]
    | Annotated[CountedField, Tag("counted field")]
    | Annotated[ChoiceField, Tag("choice field")]
    | Annotated[MultiChoiceField, Tag("multichoice field")]
    | Annotated[DateField, Tag("date field")]
    | Annotated[PlainField, Tag("plain field")]
    | Annotated[FieldModel, Tag("untyped field")],
    Discriminator(_field_kind),
]


def _reference_problem(spec: FieldSpec, other_key: str, known: Vocabulary, wanted: FieldType) -> str | None:
    """What is wrong with `spec` naming field `other_key`, which must be a `wanted` field."""
    if other_key == spec.key:
        return "a field cannot refer to itself"
    if other_key not in known.declared:
        return f"field '{other_key}' does not exist"
    other = known.fields.get(other_key)
    if other is not None and other.type != wanted:
        return f"field '{other_key}' is a {other.type.value}, not a {wanted.value}"
    return None


def _reference_problems(
    specs: Iterable[FieldSpec], items: list[Any], known: Vocabulary
) -> list[InitErrorDetails]:
    """Fields that name another field: `not_before` an existing other field of the same type (any
    field, before or after); `working_days_of` an existing daterange field."""
    keys = [item.get("key") if isinstance(item, Mapping) else None for item in items]
    index = {key.strip(): i for i, key in reversed(list(enumerate(keys))) if isinstance(key, str)}
    errors: list[InitErrorDetails] = []
    for spec in specs:
        for attr, wanted in (("not_before", spec.type), ("working_days_of", FieldType.DATERANGE)):
            other_key = getattr(spec, attr)
            message = None if other_key is None else _reference_problem(spec, other_key, known, wanted)
            if message is not None:
                errors.append(InitErrorDetails(type=_error(message), loc=(index[spec.key], attr), input=None))
    return errors


# -- approvers -------------------------------------------------------------------------------------
def _field_ref(key: str, types: tuple[FieldType, ...], info: ValidationInfo) -> str:
    known = _vocabulary(info)
    if key not in known.declared:
        raise _error(f"field '{key}' does not exist")
    spec = known.fields.get(key)
    if spec is not None and spec.type not in types:
        wanted = " or ".join(t.value for t in types)
        raise _error(f"field '{key}' is a {spec.type.value} field, expected {wanted}")
    return key


class ApproverModel(Section):
    """One approver: exactly one kind key, and optionally a `fallback` approver."""

    keys: ClassVar[tuple[str, ...]] = (*APPROVER_KINDS, "fallback")
    kind: ClassVar[ApproverKind]
    fallback: AnyApprover | None = None

    @property
    def value(self) -> str | int | None:
        value = getattr(self, self.kind.value)
        return value if isinstance(value, str | int) else None

    def to_spec(self) -> ApproverSpec:
        fallback = self.fallback.to_spec() if isinstance(self.fallback, ApproverModel) else None
        return ApproverSpec(kind=self.kind, value=self.value, fallback=fallback, line=self.line)


class UserApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.USER
    user: Text


class RoleApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.ROLE
    role: Text


class RoleAllApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.ROLE_ALL
    role_all: Text


class ManagerApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.MANAGER
    manager: Annotated[int, BeforeValidator(_whole(1, "expected a whole number of levels, at least 1"))]


class DeptHeadApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.DEPT_HEAD
    dept_head: Text  # "initiator" | a department id | "field:<a department field>"

    @field_validator("dept_head")
    @classmethod
    def _department_field(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("field:"):
            _field_ref(value.removeprefix("field:"), (FieldType.DEPARTMENT,), info)
        return value


def _initiator_only(value: Any) -> str:
    text = _text(value)
    if text != "initiator":
        raise _error(f"expected 'initiator', got text '{text}'")
    return text


class DeptHeadOtherApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.DEPT_HEAD_OTHER
    dept_head_other: Annotated[str, BeforeValidator(_initiator_only)]


class FormUserApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.FORM_USER
    form_user: Text

    @field_validator("form_user")
    @classmethod
    def _user_field(cls, value: str, info: ValidationInfo) -> str:
        return _field_ref(value, (FieldType.USER, FieldType.USERS), info)


def _true(value: Any) -> bool:
    if not _flag(value):
        raise _error("only 'initiator: true' means something")
    return True


class InitiatorApprover(ApproverModel):
    kind: ClassVar[ApproverKind] = ApproverKind.INITIATOR
    initiator: Annotated[bool, BeforeValidator(_true)]

    @property
    def value(self) -> None:
        return None


class UnclearApprover(Section):
    """A mapping naming no approver kind, or several: only ever a problem."""

    model_config = ConfigDict(extra="allow")
    keys: ClassVar[tuple[str, ...]] = (*APPROVER_KINDS, "fallback")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        kinds = [k for k in self.model_extra or {} if k in APPROVER_KINDS]
        if not kinds and set(self.model_extra or {}) - set(APPROVER_KINDS):
            return self  # an unknown key was reported already; saying more would only repeat it
        given = f" (got {', '.join(kinds)})" if kinds else ""
        raise _error(f"give exactly one of {', '.join(APPROVER_KINDS)}{given}")


def _approver_kind(data: Any) -> str:
    kinds = [k for k in data if k in APPROVER_KINDS] if isinstance(data, Mapping) else []
    return f"{kinds[0]} approver" if len(kinds) == 1 else "unclear approver"


AnyApprover = Annotated[
    Annotated[UserApprover, Tag("user approver")]
    | Annotated[RoleApprover, Tag("role approver")]
    | Annotated[RoleAllApprover, Tag("role_all approver")]
    | Annotated[ManagerApprover, Tag("manager approver")]
    | Annotated[DeptHeadApprover, Tag("dept_head approver")]
    | Annotated[DeptHeadOtherApprover, Tag("dept_head_other approver")]
    | Annotated[FormUserApprover, Tag("form_user approver")]
    | Annotated[InitiatorApprover, Tag("initiator approver")]
    | Annotated[UnclearApprover, Tag("unclear approver")],
    Discriminator(_approver_kind),
]
Approvers = Annotated[tuple[AnyApprover, ...], BeforeValidator(_list)]


def approver_specs(models: Iterable[ApproverModel | UnclearApprover]) -> tuple[ApproverSpec, ...]:
    return tuple(m.to_spec() for m in models if isinstance(m, ApproverModel))


# -- conditions -----------------------------------------------------------------------------------
# Which operators make sense on which kind of value; catches `gt` on a bool and the like.
_EQUALITY = {CompareOp.EQ, CompareOp.NE, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY}
_ORDERING = {CompareOp.GT, CompareOp.GTE, CompareOp.LT, CompareOp.LTE}
_MEMBERSHIP = {CompareOp.CONTAINS, CompareOp.IN, CompareOp.NOT_IN, CompareOp.EMPTY}
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
    FieldType.LIST: set(_MEMBERSHIP),
    FieldType.USERS: set(_MEMBERSHIP),
    FieldType.MULTISELECT: set(_MEMBERSHIP),
    FieldType.DATERANGE: {CompareOp.EMPTY},
    FieldType.LOCATION: {CompareOp.EMPTY},
}
# initiator attribute -> (kind of value, operators)
_INITIATOR_OPS: dict[str, tuple[str, set[CompareOp]]] = {
    "is_department_head": ("bool", {CompareOp.EQ, CompareOp.NE}),
    "is_sole_department_head": ("bool", {CompareOp.EQ, CompareOp.NE}),
    "department": ("text", set(_EQUALITY)),
    "level": ("number", _EQUALITY | _ORDERING),
    "roles": ("text", set(_MEMBERSHIP)),
}
_KIND_WORDS = {"bool": "true or false", "text": "text", "number": "a number"}
_NUMERIC_TYPES = {FieldType.NUMBER, FieldType.MONEY}
_OPTION_TYPES = {FieldType.SELECT, FieldType.MULTISELECT}


class GroupCondition(Section):
    """`all: [...]`, `any: [...]` or `not: {...}`; they nest."""

    all_of: Annotated[tuple[AnyCondition, ...], _nonempty("the list of conditions is empty")] | None = Field(
        None, alias="all"
    )
    any_of: Annotated[tuple[AnyCondition, ...], _nonempty("the list of conditions is empty")] | None = Field(
        None, alias="any"
    )
    negated: AnyCondition | None = Field(None, alias="not")

    @classmethod
    def _before(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        if sum(key in GROUP_KEYS for key in data) == 1:
            return []
        return [InitErrorDetails(type=_error("give exactly one of all, any, not"), loc=(), input=None)]

    def to_condition(self) -> Condition:
        if self.negated is not None:
            return Not(self.negated.to_condition())
        if self.all_of is not None:
            return AllOf(tuple(c.to_condition() for c in self.all_of))
        return AnyOf(tuple(c.to_condition() for c in self.any_of or ()))


class CompareCondition(Section):
    """A form `field` (or an `initiator` attribute) and exactly one operator with its value."""

    model_config = ConfigDict(extra="allow")
    expected: ClassVar[str] = "a condition mapping"
    keys: ClassVar[tuple[str, ...]] = ("field", "initiator", *COMPARE_OPS)

    field: Text | None = None
    initiator: Text | None = None

    @model_validator(mode="after")
    def _meaningful(self, info: ValidationInfo) -> Self:
        extra = self.model_extra or {}
        subjects = [k for k in ("field", "initiator") if k in self.model_fields_set]
        ops = [k for k in extra if k in COMPARE_OPS]
        if (not subjects or not ops) and set(extra) - set(COMPARE_OPS):
            return self  # an unknown key was reported already
        if len(subjects) != 1:
            raise _error("give exactly one of field, initiator (or all, any, not)")
        if len(ops) != 1:
            got = f" (got {', '.join(ops)})" if ops else ""
            raise _error(f"give exactly one operator: {', '.join(COMPARE_OPS)}{got}")
        name = self.field if self.field is not None else self.initiator
        problem = _compare_problem(subjects[0], str(name), CompareOp(ops[0]), plain(extra[ops[0]]), info)
        if problem is not None:
            _raise("condition", [_entry(subjects[0] if problem[0] == "subject" else ops[0], problem[1])])
        return self

    def to_condition(self) -> Condition:
        (op, value), *_ = ((k, v) for k, v in (self.model_extra or {}).items() if k in COMPARE_OPS)
        return Compare(
            op=CompareOp(op), value=plain(value), field=self.field, initiator=self.initiator, line=self.line
        )


def _condition_kind(data: Any) -> str:
    grouped = isinstance(data, Mapping) and any(k in GROUP_KEYS for k in data)
    return "group condition" if grouped else "compare condition"


AnyCondition = Annotated[
    Annotated[GroupCondition, Tag("group condition")] | Annotated[CompareCondition, Tag("compare condition")],
    Discriminator(_condition_kind),
]

# Fields come before conditions in this module; `required_if` takes a condition.
for _kind in (FieldModel, ValueField, CountedField, ChoiceField, MultiChoiceField, DateField, PlainField):
    _kind.model_rebuild()


def _compare_problem(
    subject: str, name: str, op: CompareOp, value: Any, info: ValidationInfo
) -> tuple[str, str] | None:
    """("subject"|"op", message) when the comparison cannot make sense, else None."""
    known = _vocabulary(info)
    if subject == "initiator" and name not in _INITIATOR_OPS:
        allowed = ", ".join(INITIATOR_ATTRIBUTES)
        return ("subject", f"unknown initiator attribute '{name}' (allowed: {allowed})")
    if subject == "field" and name not in known.declared:
        return ("subject", f"field '{name}' does not exist")
    if op == CompareOp.EMPTY:
        return (
            None
            if isinstance(value, bool)
            else ("op", f"empty: expected true or false, got {describe(value)}")
        )
    if op in (CompareOp.IN, CompareOp.NOT_IN) and not isinstance(value, list):
        return ("op", f"{op.value}: expected a list of values, got {describe(value)}")
    items = value if op in (CompareOp.IN, CompareOp.NOT_IN) else [value]
    if subject == "initiator":
        return _initiator_problem(name, op, items)
    spec = known.fields.get(name)
    if spec is None:
        return None  # the field itself has problems, already reported
    if op not in _OPS_BY_TYPE[spec.type]:
        return ("op", f"operator '{op.value}' does not apply to the {spec.type.value} field '{name}'")
    for item in items:
        message = _value_problem(spec, item)
        if message is not None:
            return ("op", f"{op.value}: {message}")
    return None


def _initiator_problem(name: str, op: CompareOp, items: list[Any]) -> tuple[str, str] | None:
    kind, allowed_ops = _INITIATOR_OPS[name]
    if op not in allowed_ops:
        return ("op", f"operator '{op.value}' does not apply to the initiator's {name}")
    for item in items:
        if not _fits_kind(kind, item):
            return ("op", f"{op.value}: {describe(item)} is not {_KIND_WORDS[kind]}")
    return None


def _fits_kind(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _value_problem(spec: FieldSpec, value: Any) -> str | None:
    """Why `value` can never match field `spec`, else None."""
    t = spec.type
    if t in _NUMERIC_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{describe(value)} is not a number ('{spec.key}' is a {t.value} field)"
    if t == FieldType.BOOL:
        ok = isinstance(value, bool)
        return None if ok else f"{describe(value)} is not true or false ('{spec.key}' is a bool field)"
    if t == FieldType.DATE:
        return None if _iso_date(value) else f"{describe(value)} is not a date YYYY-MM-DD"
    if t == FieldType.DATETIME:
        moment = _iso_datetime(value)
        if moment is None:
            return f"{describe(value)} is not a datetime such as 2026-01-05T09:00+08:00"
        return None if moment.tzinfo is not None else f"{describe(value)} needs a UTC offset such as +08:00"
    if not isinstance(value, str):
        return f"{describe(value)} is not text ('{spec.key}' is a {t.value} field)"
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


# -- steps ------------------------------------------------------------------------------------------
_INITIATOR_POLICY = _choice(InitiatorPolicy, "initiator_is_approver policy")


def _admin_needs_role(value: NoApproverPolicy | None, admin_role: str | None) -> None:
    if value == NoApproverPolicy.ADMIN and not admin_role:
        raise _error("'admin' needs policies.admin_role", RELATION)


class StepModel(Section):
    key: Key
    name: Text
    approvers: Annotated[tuple[AnyApprover, ...], _nonempty("a step needs at least one approver")]
    mode: Annotated[StepMode, BeforeValidator(_choice(StepMode, "mode"))] = StepMode.SEQUENTIAL
    permission: Annotated[Permission, BeforeValidator(_choice(Permission, "permission"))] = Permission.APPROVE
    kind: Annotated[StepKind, BeforeValidator(_choice(StepKind, "step kind"))] = StepKind.APPROVE
    action_label: Text | None = None
    can_reject: Flag | None = None
    time_limit_hours: Annotated[float, BeforeValidator(_positive)] = 4.0
    when: AnyCondition | None = None
    no_approver: (
        Annotated[NoApproverPolicy, BeforeValidator(_choice(NoApproverPolicy, "no_approver policy"))] | None
    ) = None
    initiator_is_approver: Annotated[InitiatorPolicy, BeforeValidator(_INITIATOR_POLICY)] | None = None
    deadlines: FreeMapping = Field(default_factory=dict)
    opinion_required: Flag = False

    @classmethod
    def _before(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        return _first_use("steps", "step", data, info)

    @field_validator("no_approver")
    @classmethod
    def _admin(cls, value: NoApproverPolicy | None, info: ValidationInfo) -> NoApproverPolicy | None:
        _admin_needs_role(value, _vocabulary(info).policies.admin_role)
        return value

    @classmethod
    def _rules(cls, data: Mapping[str, Any], info: ValidationInfo) -> list[InitErrorDetails]:
        approvers = data.get("approvers")
        itself = isinstance(approvers, list) and any(
            _approver_kind(a) == "initiator approver" and a.get("initiator") is True for a in approvers
        )
        try:
            own = (
                _INITIATOR_POLICY(data["initiator_is_approver"]) if "initiator_is_approver" in data else None
            )
        except PydanticCustomError:
            return []  # the policy itself is wrong, and reported
        if (
            itself
            and (own or _vocabulary(info).policies.initiator_is_approver) == InitiatorPolicy.AUTO_APPROVE
        ):
            message = "an {initiator: true} step approves itself unless it has initiator_is_approver: keep"
            return [_entry("approvers", message)]
        return []

    def to_spec(self) -> StepSpec:
        return StepSpec(
            key=self.key,
            name=self.name,
            approvers=approver_specs(self.approvers),
            mode=self.mode,
            permission=self.permission,
            kind=self.kind,
            action_label=self.action_label,
            can_reject=self.can_reject,
            time_limit_hours=self.time_limit_hours,
            when=self.when.to_condition() if self.when is not None else None,
            no_approver=self.no_approver,
            initiator_is_approver=self.initiator_is_approver,
            deadlines=self.deadlines,
            opinion_required=self.opinion_required,
            line=self.line,
        )


# -- the template -------------------------------------------------------------------------------------
class PoliciesModel(Section):
    keys: ClassVar[tuple[str, ...]] = (
        "no_approver", "admin_role", "initiator_is_approver", "consecutive_same_approver", "withdraw",
        "manager_may_act",
    )  # fmt: skip

    # admin_role comes first so that no_approver can check it is there.
    admin_role: Text | None = None
    no_approver: Annotated[
        NoApproverPolicy, BeforeValidator(_choice(NoApproverPolicy, "no_approver policy"))
    ] = NoApproverPolicy.SKIP
    initiator_is_approver: Annotated[InitiatorPolicy, BeforeValidator(_INITIATOR_POLICY)] = (
        InitiatorPolicy.AUTO_APPROVE
    )
    consecutive_same_approver: Annotated[
        ConsecutivePolicy, BeforeValidator(_choice(ConsecutivePolicy, "consecutive_same_approver policy"))
    ] = ConsecutivePolicy.MERGE
    withdraw: Annotated[WithdrawPolicy, BeforeValidator(_choice(WithdrawPolicy, "withdraw policy"))] = (
        WithdrawPolicy.ANY_TIME
    )
    manager_may_act: Flag = False

    @field_validator("no_approver")
    @classmethod
    def _admin(cls, value: NoApproverPolicy, info: ValidationInfo) -> NoApproverPolicy:
        _admin_needs_role(value, info.data.get("admin_role"))
        return value

    def _accepted(self, info: ValidationInfo) -> None:
        _vocabulary(info).policies = self.to_policies()

    def to_policies(self) -> Policies:
        return Policies(
            no_approver=self.no_approver,
            admin_role=self.admin_role,
            initiator_is_approver=self.initiator_is_approver,
            consecutive_same_approver=self.consecutive_same_approver,
            withdraw=self.withdraw,
            manager_may_act=self.manager_may_act,
        )


def _pattern(value: Any) -> str:
    text = _text(value)
    try:
        parse_pattern(text)
    except PatternInvalid as exc:
        raise _error(str(exc)) from None
    return text


def _prefix(value: Any) -> str:
    text = _any_text(value)
    if text and check_prefix(text) is not None:
        raise _error("a prefix is at most 20 characters, without braces or line breaks")
    return text


class NumberingModel(Section):
    """`numbering:` the document number 文号 a step gives (see approvals.doc_numbers)."""

    step: Key
    prefix: Annotated[str, BeforeValidator(_prefix)] = ""
    prefix_field: Key | None = None
    pattern: Annotated[str | None, BeforeValidator(_pattern)] = None

    @field_validator("prefix_field")
    @classmethod
    def _declared(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value not in _vocabulary(info).declared:
            raise _error(f"field '{value}' does not exist")
        return value

    @model_validator(mode="after")
    def _some_prefix(self) -> Self:
        if not self.prefix and self.prefix_field is None:
            _raise("numbering", [_entry("step", "numbering needs a prefix or a prefix_field")])
        return self

    def to_numbering(self) -> Numbering:
        return Numbering(
            step=self.step, prefix=self.prefix, prefix_field=self.prefix_field, pattern=self.pattern
        )


def _progress(value: Any) -> Progress:
    # YAML reads a bare `off` as false: take it as the word the author wrote.
    return _choice(Progress, "progress setting")("off" if value is False else value)


def _cc_on(value: Any) -> tuple[CcMoment, ...]:
    """`cc_on: [submit, finish]` (either, both, or an empty list: never told, still readers)."""
    moment = _choice(CcMoment, "cc_on moment")
    return tuple(dict.fromkeys(moment(v) for v in _list(value)))


class TemplateModel(Section):
    """A whole template file. The order of the keys is the order they are checked in."""

    key: Key
    name: Text
    description: AnyText = ""
    category: AnyText = ""
    version: Annotated[int, BeforeValidator(_whole(1, "expected a whole number of at least 1"))] = 1
    title: Text | None = None
    summary_fields: Annotated[tuple[str, ...], BeforeValidator(_list)] = ()
    policies: PoliciesModel | None = None
    fields: tuple[AnyField, ...] = ()
    steps: Annotated[tuple[StepModel, ...], _nonempty("a template needs at least one step")]
    cc: Approvers = ()
    cc_on: Annotated[tuple[CcMoment, ...], BeforeValidator(_cc_on)] = (CcMoment.SUBMIT, CcMoment.FINISH)
    on_approved: Approvers = ()
    deadlines: FreeMapping = Field(default_factory=dict)
    progress: Annotated[Progress, BeforeValidator(_progress)] = Progress.EACH_STEP
    numbering: NumberingModel | None = None
    confidentiality_field: Key | None = None

    @field_validator("numbering")
    @classmethod
    def _numbering_step(cls, value: NumberingModel | None, info: ValidationInfo) -> NumberingModel | None:
        steps = info.data.get("steps")
        if value is not None and steps is not None and value.step not in {s.key for s in steps}:
            raise _error(f"numbering step '{value.step}' is not a step of this template")
        return value

    @field_validator("confidentiality_field")
    @classmethod
    def _levels(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        spec = _vocabulary(info).fields.get(value)
        if spec is None:
            raise _error(f"field '{value}' does not exist")
        unknown = [o for o in spec.options if level_of(o) is None]
        if spec.type != FieldType.SELECT or unknown:
            raise _error("the confidentiality field must be a select of 公开, 内部, 秘密, 机密, 绝密")
        return value

    @field_validator("title")
    @classmethod
    def _title_fields(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise _error(f"{exc} (write {{field_key}} for a field, {{{{ for a brace)") from None
        keys = [re.split(r"[.\[!:]", name, maxsplit=1)[0] for name in names]
        missing = [key for key in keys if key not in _vocabulary(info).declared]
        _raise(
            "title",
            [
                InitErrorDetails(type=_error(f"field '{k}' does not exist"), loc=(), input=value)
                for k in missing
            ],
        )
        return value

    @field_validator("summary_fields", mode="wrap")
    @classmethod
    def _summary_fields(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        errors: list[InitErrorDetails] = []
        keys: list[str] = []
        for i, item in enumerate(_list(value)):
            try:
                keys.append(_text(item))
            except PydanticCustomError as exc:
                errors.append(InitErrorDetails(type=exc, loc=(i,), input=item))
                continue
            if keys[-1] not in _vocabulary(info).declared:
                errors.append(_entry(i, f"field '{keys[-1]}' does not exist", "template"))
        _raise("summary_fields", errors)
        return handler(keys)

    @field_validator("fields", mode="wrap")
    @classmethod
    def _field_order(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        errors: list[InitErrorDetails] = []
        result = None
        try:
            result = handler(_list(value))
        except ValidationError as exc:
            errors = [_again(e) for e in exc.errors()]
        known = _vocabulary(info)
        errors += _reference_problems(known.fields.values(), value, known)
        _raise("fields", errors)
        return result

    def to_template(self, source: str) -> Template:
        return Template(
            key=self.key,
            name=self.name,
            fields=tuple(f.to_spec() for f in self.fields),
            steps=tuple(s.to_spec() for s in self.steps),
            description=self.description,
            category=self.category,
            version=self.version,
            policies=self.policies.to_policies() if self.policies is not None else Policies(),
            cc=approver_specs(self.cc),
            cc_on=self.cc_on,
            on_approved=approver_specs(self.on_approved),
            summary_fields=self.summary_fields,
            title=self.title,
            deadlines=self.deadlines,
            progress=self.progress,
            numbering=self.numbering.to_numbering() if self.numbering is not None else None,
            confidentiality_field=self.confidentiality_field,
            source=source,
        )
