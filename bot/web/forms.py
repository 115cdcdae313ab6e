"""Browser forms of approval templates, shared by the console and the workspace: how each field
kind comes back from an HTML form (`form_from_post`), and what a page shows per field (`FieldView`).

Types are checked by the engine, which answers with FormInvalid naming the fields; nothing here
decides whether a value is acceptable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiDictProxy

from approvals.definitions import FieldSpec, FieldType, Template

FormData = MultiDictProxy[Any]


def _number(raw: Any) -> Any:
    try:
        text = str(raw)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except (TypeError, ValueError):
        return raw


def whole_number(raw: Any, *, most: int = 2**31 - 1) -> int | None:
    """A page's whole number (a page, a version) from the browser: ASCII digits only (`²` passes
    str.isdigit() and then breaks int()), at most `most`; None for anything else."""
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    number = int(text)
    return number if number <= most else None


def _several(data: FormData, key: str) -> list[str] | None:
    return [str(x) for x in data.getall(key, []) if str(x)] or None


def _one(data: FormData, key: str) -> str | None:
    return str(data.get(key, "")).strip() or None


def _date_range(data: FormData, key: str) -> dict[str, str] | None:
    start, end = str(data.get(f"{key}.start", "")), str(data.get(f"{key}.end", ""))
    return {"start": start, "end": end} if start or end else None


def _place(data: FormData, key: str) -> dict[str, Any] | None:
    site = str(data.get(key, ""))
    if site:
        return {"site": site}
    address = str(data.get(f"{key}.address", "")).strip()
    if not address:
        return None
    return {
        "address": address,
        "lat": _number(data.get(f"{key}.lat")),
        "lng": _number(data.get(f"{key}.lng")),
    }


def _then(convert: Callable[[str], Any]) -> Callable[[FormData, str], Any]:
    """A single-input kind: its trimmed text, converted when there is any."""

    def parse(data: FormData, key: str) -> Any:
        raw = _one(data, key)
        return None if raw is None else convert(raw)

    return parse


def _bool(raw: str) -> Any:
    return raw == "true" if raw in ("true", "false") else raw


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _local_minutes(raw: str) -> str:
    # <input type=datetime-local> sends minutes; the engine wants seconds too
    return raw if len(raw) > 16 else raw + ":00"


# How each field kind comes back from the browser (None: the field was left empty). Types are
# checked by the engine, which answers with FormInvalid naming the fields.
PARSE: Mapping[FieldType, Callable[[FormData, str], Any]] = {
    FieldType.MULTISELECT: _several,
    FieldType.USERS: _several,
    FieldType.DATERANGE: _date_range,
    FieldType.LOCATION: _place,
    FieldType.NUMBER: _then(_number),
    FieldType.MONEY: _then(_number),
    FieldType.BOOL: _then(_bool),
    FieldType.LIST: _then(_lines),
    FieldType.DATETIME: _then(_local_minutes),
}


def form_from_post(template: Template, data: FormData) -> dict[str, Any]:
    """Browser form fields → the JSON form the engine validates."""
    form: dict[str, Any] = {}
    for f in template.fields:
        value = PARSE.get(f.type, _one)(data, f.key)
        if value is not None:
            form[f.key] = value
    return form


@dataclass(frozen=True)
class FieldView:
    """One field of the form as the page shows it: its spec, the value to fill in, its problem."""

    spec: FieldSpec
    value: Any
    error: str | None


def shown_value(f: FieldSpec, values: dict[str, Any]) -> Any:
    if f.key in values:
        return values[f.key]
    # "$initiator..." defaults are filled in by the engine, not shown as text
    default = None if str(f.default or "").startswith("$") else f.default
    return "" if default is None else default
