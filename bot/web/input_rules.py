"""What the HTTP edge accepts of untrusted text, once for every route: JSON bodies, query
strings and browser form posts.

- A string anywhere (a value, a key, a query parameter, a form field) may not hold the NUL
  character U+0000 (PostgreSQL cannot store it) or a lone surrogate U+D800..U+DFFF (it cannot be
  encoded as UTF-8, so it can be neither stored nor sent on). Refused with 422 naming the field.
- JSON may nest at most `MAX_DEPTH` levels (no form needs more than three); deeper, or so deep
  that Python's parser gives up, is refused with 400 before anything looks at it.

`read_json` is the one reader of JSON bodies (REST API and the check-in page);
`input_middleware` checks query strings and form posts of every route (platform callbacks
excepted: they verify signatures and acknowledge their own way). The limits on lengths
and numbers are the models' business (`bot.web.routes`) and the forms' (`approvals.forms`).
Nothing here knows a business rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from bot.web.api_errors import InvalidJson, ValidationFailed

MAX_DEPTH = 32
# NUL and the UTF-16 surrogate halves: nothing that may be stored or sent on.
_UNSTORABLE = re.compile("[\u0000\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Signed platform callbacks answer bad input their own way (verify, ack, record the refusal).
CALLBACKS_PREFIX = "/callbacks/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def unstorable(text: str) -> str | None:
    """Why `text` cannot be accepted (it holds NUL or a lone surrogate), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\u0000":
        return "contains the NUL character (U+0000), which cannot be stored"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not valid text"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every key and string in a parsed JSON value; refuses deep nesting.

    Iterative, so a deep value cannot exhaust the stack here either."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidJson(
                f"The request body is nested more than {MAX_DEPTH} levels deep.",
                details={"nesting": f"at most {MAX_DEPTH} levels"},
            )
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                inner_path = f"{where}.{key}" if where else str(key)
                yield inner_path, str(key)
                stack.append((inner, inner_path, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))


def check_value(value: Any, path: str = "") -> None:
    """Refuse a parsed JSON value nested too deep (400) or holding unstorable text (422)."""
    problems: dict[str, str] = {}
    for where, text in _strings(value, path):
        reason = unstorable(text)
        if reason is not None:
            problems.setdefault(_shown_path(where), reason)
    if problems:
        raise ValidationFailed(
            "请求中含有无法保存的字符：" + "；".join(f"{k}: {v}" for k, v in problems.items()), problems
        )


def _shown_path(path: str) -> str:
    """A path safe to echo back: its own bad characters shown as escapes, and kept short."""
    shown = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", path)
    return shown if len(shown) <= 120 else shown[:119] + "…"


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, checked: InvalidJson (400) saying where it broke or that it nests
    too deep; ValidationFailed (422) naming each field with unstorable text."""
    try:
        raw = await request.text()
    except (UnicodeDecodeError, LookupError) as exc:  # LookupError: a charset Python does not know
        raise InvalidJson("The request body is not UTF-8 text.") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidJson(details={"line": exc.lineno, "column": exc.colno, "reason": exc.msg}) from exc
    except RecursionError:
        raise InvalidJson(
            f"The request body is nested more than {MAX_DEPTH} levels deep.",
            details={"nesting": f"at most {MAX_DEPTH} levels"},
        ) from None
    check_value(data)
    return data


def _check_pairs(pairs: Iterator[tuple[str, Any]], where: str) -> None:
    problems: dict[str, str] = {}
    for key, value in pairs:
        for text in (key, value if isinstance(value, str) else ""):
            reason = unstorable(text)
            if reason is not None:
                problems.setdefault(_shown_path(key), reason)
    if problems:
        raise ValidationFailed(
            f"{where}中含有无法保存的字符：" + "；".join(f"{k}: {v}" for k, v in problems.items()), problems
        )


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (422) a query string or a browser form post holding NUL or a lone surrogate, on
    every route but the platform callbacks, before any handler reads it."""
    if request.path.startswith(CALLBACKS_PREFIX):
        return await handler(request)
    _check_pairs(iter(request.query.items()), "查询参数")
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        try:
            form = await request.post()
        except (UnicodeDecodeError, LookupError, ValueError) as exc:
            raise ValidationFailed("表单不是有效的 UTF-8 文本", {"body": "not a readable form"}) from exc
        _check_pairs(iter(form.items()), "表单")
    return await handler(request)
