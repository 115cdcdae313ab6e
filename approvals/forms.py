"""Typed validation of a filled-in approval form against its template.

`validate_form` checks every field, fills defaults from the initiator and returns the
normalised form the engine stores; otherwise it raises `FormInvalid` listing every problem at
once, in Chinese (people read them in chat). `normalise_value` checks one value; the template
loader also uses it, without an org, to check defaults. Pure: no I/O, no clock.

Normalised values (what the engine, conditions and cards see):
- text, textarea, select, user, department, site: the stripped string
- number: int for `integer` fields and for whole numbers given as int or "3"; float otherwise
- money: a float rounded to cents. At most two decimals are accepted and |amount| < 10^12,
  so every accepted amount is exactly the decimal the user typed; conditions compare it as a
  number. "1,234.50", "¥1234.5" and 1234.5 all become 1234.5.
- date: "YYYY-MM-DD"; datetime: ISO 8601 in the organisation's timezone with its offset
  ("2026-11-23T10:00:00+08:00"); a time without an offset is taken in that timezone
- daterange: {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}, start <= end
- bool: True / False (also "true" / "false"; nothing else)
- users, multiselect: list of strings, duplicates dropped, order kept; list: list of strings
- location: {"site": id} or {"address": str, "lat": float, "lng": float}
An optional field left empty with no default is absent from the result.

Every text has a maximum (`MAX_LENGTH` per field kind, a template field's `max_length` instead;
for text and textarea a smaller `max` also applies), every list, users and multiselect field at
most `MAX_ITEMS` items unless its `max` says otherwise, and dates and times lie between the years
`EARLIEST_YEAR` and `LATEST_YEAR`. Text holding NUL or a lone surrogate is refused (it cannot be
stored or sent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from approvals.conditions import evaluate
from approvals.definitions import FieldSpec, FieldType, Template
from approvals.form_errors import FieldProblem, FormInvalid
from approvals.routing import initiator_context
from org.model import Org

# The working days from one date to another, both included, on the organisation's calendar.
WorkingDays = Callable[[date, date], int]

INITIATOR = "$initiator"
INITIATOR_DEPARTMENT = "$initiator.department"
# Which default placeholders make sense for which field types (the loader checks this).
DEFAULT_PLACEHOLDERS: dict[str, tuple[FieldType, ...]] = {
    INITIATOR: (FieldType.USER, FieldType.USERS),
    INITIATOR_DEPARTMENT: (FieldType.DEPARTMENT,),
}

# The longest text each field kind takes when its template sets no `max_length` (characters):
# text and textarea their value, list each item (a file name), location its address.
MAX_LENGTH: Mapping[FieldType, int] = {
    FieldType.TEXT: 200,
    FieldType.TEXTAREA: 2000,
    FieldType.LIST: 200,
    FieldType.LOCATION: 200,
}
TEXT_KINDS = tuple(MAX_LENGTH)  # the kinds a template may give a `max_length`
MAX_LENGTH_LIMIT = 20_000  # the largest `max_length` a template may set
# list, users, multiselect: the most items a field takes when its template sets no `max`.
MAX_ITEMS = 50
# Dates and times outside these years are refused (far from where the calendar overflows).
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999
# NUL (PostgreSQL cannot store it) and the UTF-16 surrogate halves (not text at all).
_UNSTORABLE = re.compile("[\u0000\ud800-\udfff]")
SHOWN_MAX = 40  # how much of a refused value a problem message repeats

MONEY_LIMIT = Decimal("1000000000000")
_CENT = Decimal("0.01")
_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
_MONEY_RE = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

BAD_DATE = "不是有效的日期 (YYYY-MM-DD)"
BAD_DATETIME = "不是有效的时间 (YYYY-MM-DD HH:MM)"
OUT_OF_RANGE = f"超出可填写的年份范围 ({EARLIEST_YEAR}–{LATEST_YEAR})"
UNSTORABLE = "含有无法保存的字符"


class ValueRefused(ValueError):
    """One value does not fit its field; the message is what the user is told."""


def is_empty(value: Any) -> bool:
    """Nothing filled in: None, blank text, an empty list or mapping (False and 0 are values)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return len(value) == 0
    return False


def validate_form(
    template: Template,
    form: dict[str, Any],
    *,
    org: Org,
    initiator: str,
    tz: tzinfo,
    working_days: WorkingDays | None = None,
) -> dict[str, Any]:
    """The normalised form, or FormInvalid listing every field's problem.

    `working_days` counts the working days of a date range on the organisation's calendar; without
    it, `working_days_of` fields are checked like any other number."""
    if not isinstance(form, Mapping):
        raise FormInvalid([FieldProblem("", None, "表单格式不正确")])
    problems: list[FieldProblem] = []
    out: dict[str, Any] = {}
    for spec in template.fields:
        raw = form.get(spec.key)
        if is_empty(raw) and spec.default is not None:
            raw = resolve_default(spec, org=org, initiator=initiator)
        if is_empty(raw):
            if spec.required and not (spec.working_days_of and working_days):
                problems.append(FieldProblem(spec.key, spec.label, "必填"))
            continue
        try:
            out[spec.key] = normalise_value(spec, raw, tz=tz, org=org)
        except ValueRefused as exc:
            problems.append(FieldProblem(spec.key, spec.label, str(exc)))
    problems.extend(_order_problems(template, out))
    refused = {p.key for p in problems}
    problems.extend(_rule_problems(template, out, refused, org=org, initiator=initiator))
    if working_days is not None:
        problems.extend(_working_day_problems(template, out, refused, working_days))
    order = {f.key: i for i, f in enumerate(template.fields)}
    problems.sort(key=lambda p: order.get(p.key, len(order)))
    problems.extend(FieldProblem(str(k), None, "未知字段") for k in form if k not in order)
    if problems:
        raise FormInvalid(problems)
    return out


def resolve_default(spec: FieldSpec, *, org: Org, initiator: str) -> Any:
    """The field's default with `$initiator` / `$initiator.department` filled in."""
    if spec.default == INITIATOR_DEPARTMENT:
        user = org.user(initiator)
        return user.department if user else None
    if spec.default == INITIATOR:
        return [initiator] if spec.type == FieldType.USERS else initiator
    return spec.default


def normalise_value(spec: FieldSpec, value: Any, *, tz: tzinfo, org: Org | None = None) -> Any:
    """One non-empty value made canonical, or ValueRefused saying what is wrong.

    Without `org`, users, departments and sites are checked for shape only.
    """
    t = spec.type
    if t in (FieldType.TEXT, FieldType.TEXTAREA):
        return _text(spec, value)
    if t == FieldType.NUMBER:
        return _number(spec, value)
    if t == FieldType.MONEY:
        return _money(spec, value)
    if t == FieldType.DATE:
        return _date(value, BAD_DATE)
    if t == FieldType.DATETIME:
        return _datetime(value, tz)
    if t == FieldType.DATERANGE:
        return _daterange(value)
    if t == FieldType.SELECT:
        return _select(spec, value)
    if t == FieldType.MULTISELECT:
        items = [_select(spec, v) for v in _items(spec, value, "应为列表")]
        return _counted(spec, _unique(items), "项")
    if t == FieldType.BOOL:
        return _bool(value)
    if t == FieldType.USER:
        return _users([value], org, single=True)[0]
    if t == FieldType.USERS:
        return _counted(spec, _users(_items(spec, value, "应为人员列表"), org, single=False), "人")
    if t == FieldType.DEPARTMENT:
        return _department(value, org)
    if t == FieldType.LIST:
        return _counted(spec, _text_list(spec, value), "项")
    if t == FieldType.SITE:
        return _site(value, org)
    if t == FieldType.LOCATION:
        return _location(spec, value, org)
    raise ValueRefused(f"不支持的字段类型: {t}")  # pragma: no cover - FieldType is exhaustive


# -- one type each ----------------------------------------------------------------------
def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bounded(spec: FieldSpec, n: float, unit: str = "") -> None:
    if spec.min is not None and n < spec.min:
        raise ValueRefused(f"不能少于 {_fmt(spec.min)}{unit}")
    if spec.max is not None and n > spec.max:
        raise ValueRefused(f"不能超过 {_fmt(spec.max)}{unit}")


def max_length(spec: FieldSpec) -> int | None:
    """The longest text the field takes: its template's `max_length`, else its kind's default
    (text, textarea: also no more than its `max`); None for kinds without free text."""
    most = spec.max_length or MAX_LENGTH.get(spec.type)
    if most is not None and spec.type in (FieldType.TEXT, FieldType.TEXTAREA) and spec.max is not None:
        return min(most, int(spec.max))
    return most


def _shown(value: Any) -> str:
    """A refused value as a problem message repeats it: short, its unstorable characters gone."""
    text = _UNSTORABLE.sub("", str(value))
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def _words(spec: FieldSpec, text: str, what: str = "") -> str:
    """`text` trimmed, or refused: unstorable characters, longer than the field takes."""
    if _UNSTORABLE.search(text):
        raise ValueRefused(f"{what}{UNSTORABLE}")
    text = text.strip()
    most = max_length(spec)
    if most is not None and len(text) > most:
        raise ValueRefused(f"{what}不能超过 {most} 个字")
    return text


def _text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueRefused("应为文本")
    text = _words(spec, value)
    if spec.min is not None and len(text) < spec.min:
        raise ValueRefused(f"不能少于 {_fmt(spec.min)} 个字")
    return text


def _number(spec: FieldSpec, value: Any) -> int | float:
    n: int | float
    if isinstance(value, bool):
        raise ValueRefused("不是有效的数字")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and math.isfinite(value):
        n = value
    elif isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        s = value.strip()
        n = float(s) if "." in s else int(s)
    else:
        raise ValueRefused("不是有效的数字")
    if spec.integer:
        if isinstance(n, float) and not n.is_integer():
            raise ValueRefused("应为整数")
        n = int(n)
    _bounded(spec, n)
    return n


def _money(spec: FieldSpec, value: Any) -> float:
    amount: Decimal
    if isinstance(value, bool):
        raise ValueRefused("不是有效的金额")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        amount = Decimal(repr(value))
    elif isinstance(value, str) and _MONEY_RE.match(s := value.strip().lstrip("¥￥").strip()):
        try:
            amount = Decimal(s.replace(",", ""))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
            raise ValueRefused("不是有效的金额") from exc
    else:
        raise ValueRefused("不是有效的金额")
    if amount != amount.quantize(_CENT):
        raise ValueRefused("金额最多两位小数")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueRefused("金额过大")
    result = float(amount.quantize(_CENT))
    _bounded(spec, result)
    return result


def _in_years(day: date) -> None:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueRefused(OUT_OF_RANGE)


def _date(value: Any, message: str) -> str:
    day: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            day = None
    if day is None:
        raise ValueRefused(message)
    _in_years(day)
    return day.isoformat()


def _datetime(value: Any, tz: tzinfo) -> str:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _DATETIME_RE.match(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ValueRefused(BAD_DATETIME)
    _in_years(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        local = moment.astimezone(tz)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the calendar starts in UTC
        raise ValueRefused(OUT_OF_RANGE) from None
    _in_years(local)
    return local.isoformat(timespec="seconds")


def _daterange(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping) and set(value) <= {"start", "end"}:
        start, end = value.get("start"), value.get("end")
    elif isinstance(value, list | tuple) and len(value) == 2:
        start, end = value
    else:
        raise ValueRefused("应为日期范围 {start, end}")
    problems: list[str] = []
    out: dict[str, str] = {}
    for name, part, which in (("start", start, "开始日期"), ("end", end, "结束日期")):
        if is_empty(part):
            problems.append(f"缺少{which}")
            continue
        try:
            out[name] = _date(part, f"{which}{BAD_DATE}")
        except ValueRefused as exc:
            problems.append(str(exc))
    if problems:
        raise ValueRefused("; ".join(problems))
    if out["start"] > out["end"]:
        raise ValueRefused("开始日期不能晚于结束日期")
    return out


def _select(spec: FieldSpec, value: Any) -> str:
    choice = value.strip() if isinstance(value, str) else value
    if choice not in spec.options:
        raise ValueRefused(f"不在可选项中: {_shown(choice)} (可选: {'、'.join(spec.options)})")
    return str(choice)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueRefused("应为 是/否 (true/false)")


def _items(spec: FieldSpec, value: Any, message: str) -> list[Any]:
    """The items of a list value; more than the field can take are refused before any is read."""
    if not isinstance(value, list | tuple):
        raise ValueRefused(message)
    if spec.max is None and len(value) > MAX_ITEMS:
        raise ValueRefused(f"最多 {MAX_ITEMS} 项")
    return list(value)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _counted(spec: FieldSpec, items: list[str], unit: str) -> list[str]:
    if spec.min is not None and len(items) < spec.min:
        raise ValueRefused(f"至少 {_fmt(spec.min)} {unit}")
    if spec.max is not None and len(items) > spec.max:
        raise ValueRefused(f"最多 {_fmt(spec.max)} {unit}")
    return items


def _users(values: list[Any], org: Org | None, *, single: bool) -> list[str]:
    ids: list[str] = []
    strangers: list[str] = []
    for i, v in enumerate(values, start=1):
        if not isinstance(v, str) or not v.strip() or _UNSTORABLE.search(v):
            raise ValueRefused("应为人员" if single else f"第 {i} 项不是有效的人员")
        uid = v.strip()
        if org is not None and not org.is_active(uid):
            strangers.append(uid)
        ids.append(uid)
    if strangers:
        raise ValueRefused(f"不是本单位在职人员: {'、'.join(_shown(s) for s in strangers[:10])}")
    return _unique(ids)


def _department(value: Any, org: Org | None) -> str:
    if not isinstance(value, str):
        raise ValueRefused("应为部门")
    dept = value.strip()
    if org is not None and org.department(dept) is None:
        raise ValueRefused(f"部门不存在: {_shown(dept)}")
    return dept


def _site(value: Any, org: Org | None) -> str:
    if not isinstance(value, str):
        raise ValueRefused("应为地点")
    site = value.strip()
    if org is not None and site not in org.sites:
        raise ValueRefused(f"地点不存在: {_shown(site)}")
    return site


def _text_list(spec: FieldSpec, value: Any) -> list[str]:
    items: list[str] = []
    for i, v in enumerate(_items(spec, value, "应为列表"), start=1):
        if not isinstance(v, str):
            raise ValueRefused(f"第 {i} 项应为文本")
        if not v.strip():
            raise ValueRefused(f"第 {i} 项不能为空")
        items.append(_words(spec, v, f"第 {i} 项"))
    return items


def _coordinate(value: Any, limit: float, message: str) -> float:
    if isinstance(value, bool):
        raise ValueRefused(message)
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        value = float(value.strip())
    if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
        raise ValueRefused(message)
    return float(value)


def _location(spec: FieldSpec, value: Any, org: Org | None) -> dict[str, Any]:
    shape = "应为签到点, 或 地址 + 经纬度"
    if isinstance(value, str):
        return {"site": _site(value, org)}
    if not isinstance(value, Mapping):
        raise ValueRefused(shape)
    keys = set(value)
    if "site" in keys:
        if keys != {"site"}:
            raise ValueRefused("签到点和地址只能填一种")
        return {"site": _site(value["site"], org)}
    if not keys <= {"address", "lat", "lng"}:
        raise ValueRefused(shape)
    address = value.get("address")
    problems: list[str] = []
    if not isinstance(address, str) or not address.strip():
        problems.append("缺少地址")
    else:
        try:
            address = _words(spec, address, "地址")
        except ValueRefused as exc:
            problems.append(str(exc))
    lat = lng = 0.0
    try:
        lat = _coordinate(value.get("lat"), 90, "纬度应为 -90 到 90 之间的数字")
    except ValueRefused as exc:
        problems.append(str(exc))
    try:
        lng = _coordinate(value.get("lng"), 180, "经度应为 -180 到 180 之间的数字")
    except ValueRefused as exc:
        problems.append(str(exc))
    if problems:
        raise ValueRefused("; ".join(problems))
    assert isinstance(address, str)
    return {"address": address.strip(), "lat": lat, "lng": lng}


# -- across fields ----------------------------------------------------------------------
def _order_problems(template: Template, out: dict[str, Any]) -> list[FieldProblem]:
    """`not_before`: a return time before the departure, an end before the start."""
    problems: list[FieldProblem] = []
    for spec in template.fields:
        other = template.field(spec.not_before) if spec.not_before else None
        if other is None or spec.key not in out or other.key not in out:
            continue
        if spec.type == FieldType.DATETIME:
            late = datetime.fromisoformat(out[spec.key]) < datetime.fromisoformat(out[other.key])
        else:
            late = out[spec.key] < out[other.key]  # ISO dates order as text
        if late:
            problems.append(FieldProblem(spec.key, spec.label, f"不能早于{other.label}"))
    return problems


def _rule_problems(
    template: Template, out: dict[str, Any], refused: set[str], *, org: Org, initiator: str
) -> list[FieldProblem]:
    """`required_if` (a seal taken out needs its return time) and `not_initiator` (nobody is
    their own stand-in), on the values that passed."""
    problems: list[FieldProblem] = []
    who = None
    for spec in template.fields:
        if spec.key in refused:
            continue
        if spec.required_if is not None and spec.key not in out:
            who = who if who is not None else initiator_context(org, initiator)
            if evaluate(spec.required_if, out, initiator_ctx=who):
                problems.append(FieldProblem(spec.key, spec.label, "必填"))
        picked = out.get(spec.key)
        if spec.not_initiator and (picked == initiator or (isinstance(picked, list) and initiator in picked)):
            problems.append(FieldProblem(spec.key, spec.label, "不能选择申请人本人"))
    return problems


def _working_day_problems(
    template: Template, out: dict[str, Any], refused: set[str], working_days: WorkingDays
) -> list[FieldProblem]:
    """`working_days_of`: fill the count in when it was left empty, refuse one that does not match
    the dates (a half day off at either end, N - 0.5, is accepted)."""
    problems: list[FieldProblem] = []
    for spec in template.fields:
        period = out.get(spec.working_days_of or "")
        if spec.key in refused or not isinstance(period, dict):
            continue
        count = working_days(date.fromisoformat(period["start"]), date.fromisoformat(period["end"]))
        if count == 0:
            problems.append(FieldProblem(spec.key, spec.label, "所选日期内没有工作日"))
        elif spec.key not in out:
            out[spec.key] = count
        elif out[spec.key] not in (count, count - 0.5):
            message = f"应为 {count} 个工作日 (首尾请半天可填 {_fmt(count - 0.5)})"
            problems.append(FieldProblem(spec.key, spec.label, message))
    return problems
