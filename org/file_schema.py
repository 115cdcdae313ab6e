"""The organisation file format as pydantic models, validated over scalars as written.

`org.loader` reads the file with `org.yaml_lines` in its `scalars=True` form, so every value a
validator sees is a `Scalar` (with its text, YAML tag and line), a `LinedMap` or a `LinedList`,
and an absent key is `None`. Each validator says what is wrong the way someone editing org.yaml
reads it: `'level' is the text 'high'; expected a whole number 0 or more`. Messages name the key,
not the entry: the loader adds `user u_li: ` from where the error is. Text is judged by its
tag, so `name: 12345` is a number (put it in quotes), not the text "12345".

Pure: no I/O. Rules across entries (unique ids, references, cycles) live in `org.loader`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from org.model import (
    ACCOUNT_MAX_LEN,
    COORD_SYSTEMS,
    ID_MAX_LEN,
    NAME_MAX_LEN,
    PLATFORM_MAX_LEN,
    ROLE_MAX_LEN,
    TIMEZONE_MAX_LEN,
    Department,
    Org,
    Site,
    User,
)
from org.yaml_lines import LinedList, LinedMap, Scalar

STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
PLATFORM_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_LEVEL_MAX = 2**31 - 1  # fits an INTEGER column
ACCOUNT_EXAMPLE = '{wecom: zhangwei, dingtalk: "010001"}'


@dataclass(frozen=True)
class Ref:
    """An id as written in the file, with the line it is on."""

    value: str
    line: int


def describe(value: Any) -> str:
    """How a value reads to the person who wrote it, for "... is <this>" in messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if not isinstance(value, Scalar) or value.tag == _NULL:
        return "empty"
    if value.tag in (_INT, _FLOAT):
        return f"the number {value.text}"
    if value.tag == _BOOL:
        return f"the boolean {value.text}"
    if value.tag == STR:
        return f"the text {value.text!r}"
    return f"{value.text!r} tagged {value.tag}"


def line_of(value: Any) -> int | None:
    return value.line if isinstance(value, Scalar | LinedMap | LinedList) else None


def problem(message: str, at: Any = None, **ctx: Any) -> PydanticCustomError:
    """A problem on the line of `at` (the mapping's own line when None)."""
    return PydanticCustomError("org", message, {"line": line_of(at), **ctx})


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, Scalar) and value.tag == _NULL)


def text(value: Any, what: str, expected: str, max_len: int) -> str:
    """The text of a scalar written as text, trimmed; `what` names it (`'name'`)."""
    if not isinstance(value, Scalar) or value.tag != STR:
        hint = ""
        if isinstance(value, Scalar) and value.tag in (_INT, _FLOAT, _BOOL):
            # YAML reads 010001 as the number 4097 and no as false; quoting keeps the text.
            hint = f' (put it in quotes: "{value.text}")'
        raise problem(f"{what} is {describe(value)}; expected {expected}{hint}", value)
    found = value.text.strip()
    if not found:
        raise problem(f"{what} is empty; expected {expected}", value)
    if len(found) > max_len:
        raise problem(f"{what} is {len(found)} characters long; expected at most {max_len}", value)
    return found


def _present(value: Any, key: str, expected: str, *, required: bool) -> bool:
    """Whether there is a value to check; a required key absent or empty is a problem."""
    if value is None and required:
        raise problem(f"missing required key {key!r}; expected {expected}")
    if _is_empty(value) and required:
        raise problem(f"{key!r} is empty; expected {expected}", value)
    return not _is_empty(value)


def _text_key(expected: str, max_len: int, *, required: bool) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> str | None:
        key = str(info.field_name)
        if not _present(value, key, expected, required=required):
            return None
        return text(value, repr(key), expected, max_len)

    return BeforeValidator(check)


def _ref_key(expected: str, *, required: bool = False) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Ref | None:
        key = str(info.field_name)
        if not _present(value, key, expected, required=required):
            return None
        return Ref(text(value, repr(key), expected, ID_MAX_LEN), value.line)

    return BeforeValidator(check)


def ref_id(value: Any, expected: str) -> Ref:
    """An entry's `id`: text without spaces."""
    _present(value, "id", expected, required=True)
    found = text(value, "'id'", expected, ID_MAX_LEN)
    if any(c.isspace() for c in found):
        raise problem(f"id {found!r} contains spaces; expected {expected}", value)
    return Ref(found, value.line)


def _id_key(expected: str) -> BeforeValidator:
    def check(value: Any) -> Ref:
        return ref_id(value, expected)

    return BeforeValidator(check)


def _raise(errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data("org", errors)


def _items(value: Any, what: str, expected: str, max_len: int) -> list[tuple[str, Any]]:
    """(text, item) for each valid item of a list; the others are problems raised together."""
    out: list[tuple[str, Any]] = []
    errors: list[InitErrorDetails] = []
    for item in value:
        try:
            out.append((text(item, what, expected, max_len), item))
        except PydanticCustomError as exc:
            errors.append(InitErrorDetails(type=exc, loc=(), input=None))
    _raise(errors)
    return out


def deputy_refs(value: Any, leader: Ref | None) -> tuple[list[Ref], list[InitErrorDetails]]:
    """The deputies besides the leader, each once, and the problems with the other items."""
    out: list[Ref] = []
    errors: list[InitErrorDetails] = []
    for item in value if isinstance(value, list) else []:
        try:
            found = text(item, "'deputies' item", "a user id", ID_MAX_LEN)
        except PydanticCustomError as exc:
            errors.append(InitErrorDetails(type=exc, loc=(), input=None))
            continue
        if leader is not None and found == leader.value:
            message = f"deputy {found!r} is also the leader; expected deputies besides the leader"
            errors.append(InitErrorDetails(type=problem(message, item), loc=(), input=None))
        elif found in (d.value for d in out):
            message = f"deputy {found!r} is listed twice; expected each deputy once"
            errors.append(InitErrorDetails(type=problem(message, item), loc=(), input=None))
        else:
            out.append(Ref(found, item.line))
    return out, errors


def _deputies(value: Any, info: ValidationInfo) -> tuple[Ref, ...]:
    if _is_empty(value):
        return ()
    if not isinstance(value, list):
        raise problem(f"'deputies' is {describe(value)}; expected a list of user ids such as [u_li]", value)
    found, errors = deputy_refs(value, info.data.get("leader"))
    _raise(errors)
    return tuple(found)


def _roles(value: Any) -> tuple[str, ...]:
    if _is_empty(value):
        return ()
    if not isinstance(value, list):
        raise problem(f"'roles' is {describe(value)}; expected a list such as [seal_keeper]", value)
    roles: list[str] = []
    for role, _ in _items(value, "'roles' item", "a role name", ROLE_MAX_LEN):
        if role not in roles:
            roles.append(role)
    return tuple(roles)


def account_refs(value: Any) -> tuple[list[tuple[str, Ref]], list[InitErrorDetails]]:
    """(platform, account) pairs and the problems with the others; `dingtalk:` left empty is
    no account on that platform yet."""
    out: list[tuple[str, Ref]] = []
    errors: list[InitErrorDetails] = []
    for platform, account in value.items() if isinstance(value, LinedMap) else ():
        try:
            if not PLATFORM_RE.match(platform) or len(platform) > PLATFORM_MAX_LEN:
                message = f"{platform!r} is not a platform name; expected lower-case letters such as wecom"
                raise problem(message, account)
            if not _is_empty(account):
                found = text(account, f"{platform} account", f"the {platform} account id", ACCOUNT_MAX_LEN)
                out.append((platform, Ref(found, account.line)))
        except PydanticCustomError as exc:
            errors.append(InitErrorDetails(type=exc, loc=(), input=None))
    return out, errors


def _accounts(value: Any) -> tuple[tuple[str, Ref], ...]:
    if _is_empty(value):
        return ()
    if not isinstance(value, LinedMap):
        message = (
            f"'accounts' is {describe(value)}; expected platform: account pairs such as {ACCOUNT_EXAMPLE}"
        )
        raise problem(message, value)
    found, errors = account_refs(value)
    _raise(errors)
    return tuple(found)


def _level(value: Any) -> int | None:
    if _is_empty(value):
        return None
    number = value.value if isinstance(value, Scalar) and value.tag == _INT else None
    if not isinstance(number, int) or not 0 <= number <= _LEVEL_MAX:
        raise problem(f"'level' is {describe(value)}; expected a whole number 0 or more", value)
    return number


def _active(value: Any) -> bool:
    if _is_empty(value):
        return True
    flag = value.value if isinstance(value, Scalar) and value.tag == _BOOL else None
    if not isinstance(flag, bool):
        raise problem(f"'active' is {describe(value)}; expected true or false", value)
    return flag


def _number(expected: str, low: float, high: float | None = None) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> float:
        key = str(info.field_name)
        _present(value, key, expected, required=True)
        found = value.value if isinstance(value, Scalar) and value.tag in (_INT, _FLOAT) else None
        if not isinstance(found, int | float) or isinstance(found, bool):
            raise problem(f"{key!r} is {describe(value)}; expected {expected}", value)
        number = float(found)
        if math.isnan(number):
            raise problem(f"{key!r} is not a number (NaN); expected {expected}", value)
        in_range = low < number if high is None else low <= number <= high
        if not in_range or math.isinf(number):
            raise problem(f"{key!r} is {value.text}, out of range; expected {expected}", value)
        return number

    return BeforeValidator(check)


def _coord_system(value: Any) -> str:
    expected = " or ".join(COORD_SYSTEMS)
    if _is_empty(value):
        return COORD_SYSTEMS[0]
    found = text(value, "'coord_system'", expected, 16).lower()
    if found not in COORD_SYSTEMS:
        raise problem(f"'coord_system' is {value.text.strip()!r}; expected {expected}", value)
    return found


def _timezone(value: Any) -> str:
    expected = "an IANA time zone such as Asia/Shanghai"
    _present(value, "timezone", expected, required=True)
    found = text(value, "'timezone'", expected, TIMEZONE_MAX_LEN)
    try:
        ZoneInfo(found)
    except (ZoneInfoNotFoundError, ValueError):
        raise problem(f"'timezone' {found!r} is not a known time zone; expected {expected}", value) from None
    return found


def _entries(plural: str, singular: str, *, required: bool) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value is None and required:
            raise problem(f"missing required key {plural!r}; expected a list of {plural}")
        if _is_empty(value) or (isinstance(value, list) and not value):
            if required:
                raise problem(f"{plural!r} is empty; expected at least one {singular}", value)
            return []
        if not isinstance(value, list):
            raise problem(f"{plural!r} is {describe(value)}; expected a list of {plural} (- id: ...)", value)
        return value

    return BeforeValidator(check)


# -- the entries -----------------------------------------------------------------------------------
class Entry(BaseModel):
    """One mapping of the file; refuses other values and unknown keys."""

    model_config = ConfigDict(extra="ignore")

    unknown: ClassVar[str] = "key"  # what an unknown key is called

    @model_validator(mode="wrap")
    @classmethod
    def _mapping(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, LinedMap):
            raise problem(f"is {describe(data)}; expected a mapping of key: value", data, whole=True)
        allowed = tuple(cls.model_fields)
        unknown = [
            InitErrorDetails(
                type=problem(
                    f"unknown {cls.unknown} {key!r}; expected one of {', '.join(allowed)}",
                    line=data.key_lines[key],
                ),
                loc=(),
                input=None,
            )
            for key in data
            if key not in allowed
        ]
        # Absent keys come in as None, so each validator says what a missing key means.
        complete = {key: data.get(key) for key in allowed}
        try:
            result = handler(complete)
        except ValidationError as exc:
            errors = [
                InitErrorDetails(type=problem(e["msg"], **(e.get("ctx") or {})), loc=e["loc"], input=None)
                for e in exc.errors()
            ]
            _raise(unknown + errors)
        _raise(unknown)
        return result


class DepartmentEntry(Entry):
    id: Annotated[Ref, _id_key("a unique department id such as finance")]
    name: Annotated[str, _text_key("the department's name", NAME_MAX_LEN, required=True)]
    parent: Annotated[Ref | None, _ref_key("the id of the parent department")]
    leader: Annotated[Ref | None, _ref_key("the user id of the department's leader")]
    deputies: Annotated[tuple[Ref, ...], BeforeValidator(_deputies)]

    def to_department(self) -> Department:
        return Department(
            id=self.id.value,
            name=self.name,
            parent=self.parent.value if self.parent else None,
            leader=self.leader.value if self.leader else None,
            deputies=tuple(d.value for d in self.deputies),
        )


class UserEntry(Entry):
    id: Annotated[Ref, _id_key("a unique user id such as u_zhang")]
    name: Annotated[str, _text_key("the person's name", NAME_MAX_LEN, required=True)]
    department: Annotated[Ref, _ref_key("the id of the person's department", required=True)]
    title: Annotated[str | None, _text_key("the job title", NAME_MAX_LEN, required=False)]
    manager: Annotated[Ref | None, _ref_key("the user id of the direct manager")]
    roles: Annotated[tuple[str, ...], BeforeValidator(_roles)]
    accounts: Annotated[tuple[tuple[str, Ref], ...], BeforeValidator(_accounts)]
    level: Annotated[int | None, BeforeValidator(_level)]
    active: Annotated[bool, BeforeValidator(_active)]

    def to_user(self) -> User:
        return User(
            id=self.id.value,
            name=self.name,
            department=self.department.value,
            title=self.title or "",
            manager=self.manager.value if self.manager else None,
            roles=self.roles,
            accounts={platform: ref.value for platform, ref in self.accounts},
            level=self.level,
            active=self.active,
        )


class SiteEntry(Entry):
    id: Annotated[Ref, _id_key("a unique site id such as hq")]
    name: Annotated[str, _text_key("the site's name", NAME_MAX_LEN, required=True)]
    lat: Annotated[float, _number("a latitude from -90 to 90", low=-90.0, high=90.0)]
    lng: Annotated[float, _number("a longitude from -180 to 180", low=-180.0, high=180.0)]
    radius_m: Annotated[float, _number("a radius in metres greater than 0", low=0.0)]
    coord_system: Annotated[str, BeforeValidator(_coord_system)]

    def to_site(self) -> Site:
        return Site(
            self.id.value,
            self.name,
            lat=self.lat,
            lng=self.lng,
            radius_m=self.radius_m,
            coord_system=self.coord_system,
        )


class OrgFile(Entry):
    """The whole file."""

    unknown: ClassVar[str] = "top-level key"

    organization: Annotated[str, _text_key("the organisation's name", NAME_MAX_LEN, required=True)]
    timezone: Annotated[str, BeforeValidator(_timezone)]
    departments: Annotated[list[DepartmentEntry], _entries("departments", "department", required=True)]
    users: Annotated[list[UserEntry], _entries("users", "user", required=True)]
    sites: Annotated[list[SiteEntry], _entries("sites", "site", required=False)] = Field(default_factory=list)

    def to_org(self) -> Org:
        return Org(
            name=self.organization,
            timezone=self.timezone,
            departments={d.id.value: d.to_department() for d in self.departments},
            users={u.id.value: u.to_user() for u in self.users},
            sites={s.id.value: s.to_site() for s in self.sites},
        )


def written_ref(value: Any) -> Ref | None:
    """An id or reference as written, when it is usable text (else the models report it)."""
    if _is_empty(value):
        return None
    try:
        return Ref(text(value, "", "", ID_MAX_LEN), value.line)
    except PydanticCustomError:
        return None
