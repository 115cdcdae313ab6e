"""How the text of one OABOT_* variable becomes a typed value, and what it says when it cannot.

Each parser is a pydantic before-validator built with `text_parser`: it takes the (stripped) text of
one variable and returns the value, or raises `expected(...)` saying what the variable should hold.
Text is parsed the same whether it comes from the environment or from code; other values (a port
given as an int, a tuple of times) go to pydantic's own type checks.
`bot.settings.environment` turns the errors into the operator's one line per problem. Nothing here
reads the environment or knows a variable's name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError, PydanticUseDefault

from approvals.confidentiality import level_of
from approvals.doc_numbers import PatternInvalid, parse_pattern
from org.model import ROLE_MAX_LEN

T = TypeVar("T")

EXPECTED = "config_expected"


def expected(what: str, *, shown: str | None = None) -> PydanticCustomError:
    """The error for unusable text; `shown` stands in for the value in the message (secrets)."""
    return PydanticCustomError(EXPECTED, "expected {what}", {"what": what, "shown": shown})


def text_parser(parse: Callable[[str], Any]) -> BeforeValidator:
    """A validator that parses text with `parse` and leaves any other value to the field's type."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def empty_means_default(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An empty variable counts as unset: the field keeps its default."""

    def parse_unless_empty(text: str) -> T:
        if not text:
            raise PydanticUseDefault()
        return parse(text)

    return parse_unless_empty


# -- times -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingPeriod:
    """One stretch of a working day, in the organisation's timezone."""

    start: time
    end: time


_PERIOD_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_working_hours(value: str) -> tuple[WorkingPeriod, ...]:
    """Parse `09:00-12:00,13:30-18:00` (24:00 ends a day); raise ValueError with what is wrong."""
    periods: list[WorkingPeriod] = []
    for part in (p.strip() for p in value.split(",")):
        m = _PERIOD_RE.match(part)
        if not m:
            raise ValueError(f"'{part}' is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"'{part}' has an impossible time")
        start = time(h1, m1)
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"'{part}' ends before it starts")
        if periods and start < periods[-1].end:
            raise ValueError(f"'{part}' overlaps or precedes the period before it")
        periods.append(WorkingPeriod(start, end))
    return tuple(periods)


def parse_time(part: str) -> time:
    """Parse `HH:MM`; raise ValueError with what is wrong."""
    m = _TIME_RE.match(part)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"'{part}' is not a time HH:MM")
    return time(int(m.group(1)), int(m.group(2)))


def parse_digest_times(value: str) -> tuple[time, ...]:
    """Parse `10:00,15:30` (sorted, duplicates dropped); raise ValueError with what is wrong."""
    return tuple(sorted({parse_time(part.strip()) for part in value.split(",")}))


def parse_backup_times(value: str) -> tuple[time, ...]:
    """Parse `07:00,12:00,19:00` (empty: none), sorted; raise ValueError with what is wrong."""
    times: list[time] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        at = parse_time(part)
        if at in times:
            raise ValueError(f"'{part}' is listed twice")
        times.append(at)
    return tuple(sorted(times))


@text_parser
def working_hours(text: str) -> tuple[WorkingPeriod, ...]:
    try:
        return parse_working_hours(text)
    except ValueError as exc:
        raise expected(f"comma-separated HH:MM-HH:MM periods in order ({exc})") from None


@text_parser
def digest_times(text: str) -> tuple[time, ...]:
    try:
        return parse_digest_times(text)
    except ValueError as exc:
        raise expected(f"comma-separated HH:MM times such as 10:00,15:30 ({exc})") from None


@text_parser
def backup_times(text: str) -> tuple[time, ...]:
    try:
        return parse_backup_times(text)
    except ValueError as exc:
        raise expected(
            f"comma-separated HH:MM times, e.g. 07:00,12:00,19:00, or empty for none ({exc})"
        ) from None


@text_parser
def summary_at(text: str) -> time | None:
    """One time of day, or empty for none."""
    if not text:
        return None
    try:
        (at,) = parse_backup_times(text)
    except ValueError:
        raise expected("one time HH:MM such as 18:30 (empty: no daily summary)") from None
    return at


@text_parser
def sync_at(text: str) -> time | None:
    """The nightly directory sync's time, or empty for none."""
    if not text:
        return None
    try:
        (at,) = parse_backup_times(text)
    except ValueError:
        raise expected("one time HH:MM such as 02:30 (empty: no nightly sync)") from None
    return at


@text_parser
def time_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise expected("an IANA time zone such as Asia/Shanghai") from None
    return text


# -- numbers and switches ------------------------------------------------------------------------------


@text_parser
def port(text: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise expected("a port number between 1 and 65535")


def whole_number(low: int, high: int, what: str) -> BeforeValidator:
    """A whole number from `low` to `high`; `what` says what it counts."""

    def parse(text: str) -> int:
        if text.isdigit() and low <= int(text) <= high:
            return int(text)
        raise expected(f"{what}, a whole number from {low} to {high}")

    return text_parser(parse)


@text_parser
def scan_interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if 0.1 <= seconds <= 60:
        return seconds
    raise expected("seconds between timer scans, from 0.1 to 60 (reminders drift by up to this)")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@text_parser
def switch(text: str) -> bool:
    """1/0, true/false, yes/no, on/off; empty is off."""
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise expected("1 or 0")


def one_of(*choices: str, what: str) -> BeforeValidator:
    """One of `choices`, in any letter case (`choices` are all lower or all upper case)."""
    fold = str.upper if choices[0].isupper() else str.lower

    def parse(text: str) -> str:
        if fold(text) in choices:
            return fold(text)
        raise expected(what)

    return text_parser(parse)


# -- addresses and paths -------------------------------------------------------------------------------


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@text_parser
def host(text: str) -> str:
    if not text:
        raise expected("a host name or IP address")
    return text


@text_parser
def public_url(text: str) -> str:
    if _is_http_url(text):
        return text.rstrip("/")
    raise expected("an http:// or https:// URL such as https://oa.example.com")


@text_parser
def base_url(text: str) -> str:
    """A platform API's base URL."""
    if _is_http_url(text):
        return text.rstrip("/")
    raise expected("an http:// or https:// base URL")


@text_parser
def database_url(text: str) -> str:
    if text.startswith("sqlite+aiosqlite:///") and len(text) > len("sqlite+aiosqlite:///"):
        return text
    if text.startswith("postgresql+asyncpg://"):
        parts = urlsplit(text)
        if parts.hostname and len(parts.path) > 1:
            return text
    raise expected("sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DB")


@text_parser
@empty_means_default
def redis_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme in ("redis", "rediss", "unix") and (parts.netloc or parts.path):
        return text
    raise expected("redis://HOST:PORT/DB (or leave unset for the in-process store)")


@text_parser
@empty_means_default
def org_file(text: str) -> str:
    if Path(text).is_file():
        return text
    raise expected("the path of an existing org YAML file")


@text_parser
@empty_means_default
def templates_dir(text: str) -> str:
    if Path(text).is_dir():
        return text
    raise expected("an existing directory of template YAML files")


@text_parser
def backup_dir(text: str) -> str:
    if text:
        return text
    raise expected("a directory for backups, e.g. ./var/backups")


# -- names and secrets ---------------------------------------------------------------------------------


@text_parser
@empty_means_default
def any_text(text: str) -> str:
    """Any text; empty counts as unset."""
    return text


@text_parser
def office_role(text: str) -> str:
    if text and len(text) <= ROLE_MAX_LEN and not any(c.isspace() or c == "," for c in text):
        return text
    raise expected(f"one role name from the org file (up to {ROLE_MAX_LEN} characters), e.g. hr_manager")


@text_parser
def person_id(text: str) -> str:
    """One person's id from the org file; empty is nobody."""
    if not text or (len(text) <= ROLE_MAX_LEN and not any(c.isspace() or c == "," for c in text)):
        return text
    raise expected("one person's id from the org file, e.g. u_zhao; empty: the office role's holders")


@text_parser
def free_roles(text: str) -> tuple[str, ...]:
    """Comma-separated role names; `*` is everyone, empty is nobody."""
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    if all(len(r) <= ROLE_MAX_LEN and not any(c.isspace() for c in r) for r in roles):
        return roles
    raise expected("comma-separated role names (or * for everyone, empty for nobody)")


def secret(*, min_length: int, what: str) -> BeforeValidator:
    """A secret of at least `min_length` characters (empty: unset); never shown in a message."""

    def parse(text: str) -> str:
        if len(text) < min_length:
            raise expected(what, shown="***")
        return text

    return text_parser(empty_means_default(parse))


def secrets(*, min_length: int, what: str) -> BeforeValidator:
    """Comma-separated secrets, each of at least `min_length` characters (empty: none)."""

    def parse(text: str) -> tuple[str, ...]:
        found = tuple(part.strip() for part in text.split(",") if part.strip())
        if any(len(part) < min_length for part in found):
            raise expected(what, shown="***")
        return found

    return text_parser(parse)


_AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")


def aes_key(what: str) -> BeforeValidator:
    """A platform's 43-character message encryption key; never shown in a message."""

    def parse(text: str) -> str:
        if _AES_KEY_RE.match(text):
            return text
        raise expected(what, shown="***")

    return text_parser(parse)


@text_parser
def agent_id(text: str) -> int:
    """WeCom's numeric AgentId."""
    if text.isdigit():
        return int(text)
    raise expected("the app's numeric AgentId, e.g. 1000002")


# -- the HTTP edge: rate limits, proxies, framing ------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests in each window of `window_s` seconds."""

    count: int
    window_s: int

    def __str__(self) -> str:
        return f"{self.count}/{self.window_s}"


_RATE_RE = re.compile(r"^(\d{1,9})\s*/\s*(\d{1,6})$")


@text_parser
def rate_limit(text: str) -> RateLimit | None:
    if text.lower() == "off":
        return None
    m = _RATE_RE.match(text)
    if not m or int(m.group(1)) < 1 or not 1 <= int(m.group(2)) <= 86400:
        raise expected("COUNT/SECONDS, e.g. 600/60 (at most 600 requests a minute), or off")
    return RateLimit(int(m.group(1)), int(m.group(2)))


@text_parser
def networks(text: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (CIDR); empty for none."""
    found: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            found.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise expected(
                f"comma-separated IP addresses or networks such as 10.0.0.0/8 ('{part}' is not one)"
            ) from None
    return tuple(found)


_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


@text_parser
def origins(text: str) -> tuple[str, ...]:
    """Space- or comma-separated origins (`https://host[:port]`); empty for none."""
    found = [part for part in re.split(r"[\s,]+", text) if part]
    for part in found:
        if not _ORIGIN_RE.match(part):
            raise expected(f"origins such as https://oa.example.com ('{part}' is not one)")
    return tuple(found)


# -- documents 公文 -------------------------------------------------------------------------------------
@text_parser
def doc_number_pattern(text: str) -> str:
    """A document number pattern (`approvals.doc_numbers`); empty: the default."""
    if not text:
        raise PydanticUseDefault()
    try:
        parse_pattern(text)
    except PatternInvalid as exc:
        raise expected(f"a pattern with {{prefix}}, {{year}} and {{seq}} once each ({exc})") from None
    return text


@text_parser
def confidentiality_level(text: str) -> str:
    """The lowest confidentiality level refused at submission, by code or name; `off`: none."""
    if text.lower() in ("off", "none"):
        return ""
    level = level_of(text)
    if level is None:
        raise expected("public, internal, secret, confidential, top_secret (or 公开 … 绝密), or off")
    return level.value
