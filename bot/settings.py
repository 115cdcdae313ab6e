"""One typed settings object, read from the environment (optionally a `.env` file).

Every variable is documented in config.example.env. `load_settings` collects every problem
before failing so the operator sees them all at once; it never raises anything but
`ConfigError`, whose `problems` are one human line each naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEMO_DATABASE_URL = "sqlite+aiosqlite:///./var/demo.db"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/oabot.db"


class ConfigError(Exception):
    """Configuration is unusable; `problems` has one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WorkingPeriod:
    start: time
    end: time


@dataclass(frozen=True)
class WeComSettings:
    """企业微信 self-built app. Configured when every field is set."""

    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_base: str = "https://qyapi.weixin.qq.com"


@dataclass(frozen=True)
class DingTalkSettings:
    """钉钉 internal app (robot + interactive cards)."""

    app_key: str
    app_secret: str
    agent_id: str | None = None
    token: str | None = None  # HTTP mode event subscription
    aes_key: str | None = None  # HTTP mode event subscription
    mode: str = "stream"  # stream | http
    card_template_id: str = "oabot.approval.schema"
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"


@dataclass(frozen=True)
class CheckinSettings:
    """Field check-ins 外勤签到 (see docs/checkins.md)."""

    link_secret: str | None = None  # signs check-in links; None: generated once per database
    link_ttl_min: int = 120  # links work until this long after the trip's end
    grace_min: int = 30  # missing arrival/departure: reminder after one grace, manager after two
    fix_quota: int = 3  # 补卡 per person per month
    free_roles: tuple[str, ...] = ("field_staff",)  # may check in without a trip; "*" = everyone
    summary_at: time | None = time(18, 30)  # the managers' daily summary (org timezone); None: off


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "oabot:"
    timezone: str = "Asia/Shanghai"
    working_hours: tuple[WorkingPeriod, ...] = (
        WorkingPeriod(time(9, 0), time(12, 0)),
        WorkingPeriod(time(13, 30), time(18, 0)),
    )
    api_token: str | None = None
    org_file: str | None = None
    log_format: str = "text"
    log_level: str = "INFO"
    auto_migrate: bool = False
    templates_dir: str | None = None
    demo: bool = False
    # The browser chat simulator at /console: on in demo mode, off otherwise unless OABOT_CONSOLE=1.
    console: bool = False
    # Background loops (outbox dispatcher, timers); tests switch them off to drive them by hand.
    run_background: bool = True
    dispatch_interval_s: float = 1.0
    # Deadlines: digest times (local, working days) and how often the timer scan runs.
    digest_times: tuple[time, ...] = (time(10, 0), time(15, 30))
    timer_scan_interval_s: float = 1.0
    wecom: WeComSettings | None = None
    dingtalk: DingTalkSettings | None = None
    # Statistics and backups (reports/): who gets the office's weekly summary, when SQLite is
    # backed up (org timezone), where to, and how many backups are kept.
    office_role: str = "hr_manager"
    backup_times: tuple[time, ...] = (time(7, 0), time(12, 0), time(19, 0))
    backup_dir: str = "./var/backups"
    backup_keep: int = 21
    checkins: CheckinSettings = field(default_factory=CheckinSettings)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **kwargs: Any) -> Settings:
        return replace(self, **kwargs)


_WORKING_HOURS_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def parse_working_hours(value: str) -> tuple[WorkingPeriod, ...]:
    """Parse `09:00-12:00,13:30-18:00`; raise ValueError with what is wrong."""
    periods: list[WorkingPeriod] = []
    for part in value.split(","):
        m = _WORKING_HOURS_RE.match(part.strip())
        if not m:
            raise ValueError(f"'{part.strip()}' is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"'{part.strip()}' has an impossible time")
        start = time(h1, m1)
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"'{part.strip()}' ends before it starts")
        if periods and start < periods[-1].end:
            raise ValueError(f"'{part.strip()}' overlaps or precedes the period before it")
        periods.append(WorkingPeriod(start, end))
    if not periods:
        raise ValueError("no working period given")
    return tuple(periods)


def parse_digest_times(value: str) -> tuple[time, ...]:
    """Parse `10:00,15:30` (sorted, duplicates dropped); raise ValueError with what is wrong."""
    times: set[time] = set()
    for part in value.split(","):
        m = re.match(r"^(\d{1,2}):(\d{2})$", part.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"'{part.strip()}' is not a time HH:MM")
        times.add(time(int(m.group(1)), int(m.group(2))))
    return tuple(sorted(times))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    demo: bool = False,
) -> Settings:
    """Build Settings from `env` (default: os.environ plus `.env`), or raise ConfigError."""
    if env is None:
        merged: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            from dotenv import dotenv_values

            merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        merged.update(os.environ)
        env = merged
    problems: list[str] = []
    values: dict[str, Any] = {"demo": demo, "console": demo}

    def get(name: str) -> str | None:
        raw = env.get(name)
        return raw.strip() if raw is not None else None

    def bad(name: str, value: str, expected: str) -> None:
        problems.append(f"{name}={value!r}: expected {expected}")

    if (v := get("OABOT_HOST")) is not None:
        if not v:
            bad("OABOT_HOST", v, "a host name or IP address")
        values["host"] = v
    if (v := get("OABOT_PORT")) is not None:
        if v.isdigit() and 0 < int(v) < 65536:
            values["port"] = int(v)
        else:
            bad("OABOT_PORT", v, "a port number between 1 and 65535")
    if (v := get("OABOT_PUBLIC_URL")) is not None:
        parts = urlsplit(v)
        if parts.scheme in ("http", "https") and parts.netloc:
            values["public_url"] = v.rstrip("/")
        else:
            bad("OABOT_PUBLIC_URL", v, "an http:// or https:// URL such as https://oa.example.com")
    if demo:
        values["database_url"] = DEMO_DATABASE_URL
    elif (v := get("OABOT_DATABASE_URL")) is not None:
        if _valid_database_url(v):
            values["database_url"] = v
        else:
            bad(
                "OABOT_DATABASE_URL",
                v,
                "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DB",
            )
    if (v := get("OABOT_REDIS_URL")) is not None and v != "" and not demo:
        parts = urlsplit(v)
        if parts.scheme in ("redis", "rediss", "unix") and (parts.netloc or parts.path):
            values["redis_url"] = v
        else:
            bad("OABOT_REDIS_URL", v, "redis://HOST:PORT/DB (or leave unset for the in-process store)")
    if (v := get("OABOT_REDIS_PREFIX")) is not None and v:
        values["redis_prefix"] = v
    if (v := get("OABOT_TIMEZONE")) is not None:
        try:
            ZoneInfo(v)
            values["timezone"] = v
        except (ZoneInfoNotFoundError, ValueError):
            bad("OABOT_TIMEZONE", v, "an IANA time zone such as Asia/Shanghai")
    if (v := get("OABOT_WORKING_HOURS")) is not None:
        try:
            values["working_hours"] = parse_working_hours(v)
        except ValueError as exc:
            bad("OABOT_WORKING_HOURS", v, f"comma-separated HH:MM-HH:MM periods in order ({exc})")
    if (v := get("OABOT_API_TOKEN")) is not None and v != "":
        if len(v) < 16:
            bad("OABOT_API_TOKEN", "***", "at least 16 characters")
        else:
            values["api_token"] = v
    if (v := get("OABOT_ORG_FILE")) is not None and v != "":
        if Path(v).is_file():
            values["org_file"] = v
        else:
            bad("OABOT_ORG_FILE", v, "the path of an existing org YAML file")
    if (v := get("OABOT_TEMPLATES_DIR")) is not None and v != "":
        if Path(v).is_dir():
            values["templates_dir"] = v
        else:
            bad("OABOT_TEMPLATES_DIR", v, "an existing directory of template YAML files")
    if (v := get("OABOT_LOG_FORMAT")) is not None:
        if v.lower() in ("text", "json"):
            values["log_format"] = v.lower()
        else:
            bad("OABOT_LOG_FORMAT", v, "text or json")
    if (v := get("OABOT_LOG_LEVEL")) is not None:
        if v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"):
            values["log_level"] = v.upper()
        else:
            bad("OABOT_LOG_LEVEL", v, "DEBUG, INFO, WARNING or ERROR")
    if (v := get("OABOT_AUTO_MIGRATE")) is not None:
        if v.lower() in _TRUE | _FALSE:
            values["auto_migrate"] = v.lower() in _TRUE
        else:
            bad("OABOT_AUTO_MIGRATE", v, "1 or 0")
    if (v := get("OABOT_CONSOLE")) is not None and v != "":
        if v.lower() in _TRUE | _FALSE:
            values["console"] = v.lower() in _TRUE
        else:
            bad("OABOT_CONSOLE", v, "1 or 0")
    _reports(get, bad, values)
    _checkins(get, bad, values)
    if (v := get("OABOT_DIGEST_TIMES")) is not None:
        try:
            values["digest_times"] = parse_digest_times(v)
        except ValueError as exc:
            bad("OABOT_DIGEST_TIMES", v, f"comma-separated HH:MM times such as 10:00,15:30 ({exc})")
    if (v := get("OABOT_TIMER_SCAN_INTERVAL_S")) is not None:
        try:
            interval = float(v)
        except ValueError:
            interval = 0.0
        if 0.1 <= interval <= 60:
            values["timer_scan_interval_s"] = interval
        else:
            bad(
                "OABOT_TIMER_SCAN_INTERVAL_S",
                v,
                "seconds between timer scans, from 0.1 to 60 (reminders drift by up to this)",
            )
    _platforms(get, bad, values, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


_BACKUP_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_backup_times(value: str) -> tuple[time, ...]:
    """Parse `07:00,12:00,19:00` (empty: no automatic backups); raise ValueError with what is wrong."""
    times: list[time] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        m = _BACKUP_TIME_RE.match(part)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"'{part}' is not a time HH:MM")
        t = time(int(m.group(1)), int(m.group(2)))
        if t in times:
            raise ValueError(f"'{part}' is listed twice")
        times.append(t)
    return tuple(sorted(times))


def _reports(get: Any, bad: Any, values: dict[str, Any]) -> None:
    """Statistics and backups: the office role, the backup times, directory and retention."""
    from org.model import ROLE_MAX_LEN

    if (v := get("OABOT_OFFICE_ROLE")) is not None:
        if v and len(v) <= ROLE_MAX_LEN and not any(c.isspace() or c == "," for c in v):
            values["office_role"] = v
        else:
            bad(
                "OABOT_OFFICE_ROLE",
                v,
                f"one role name from the org file (up to {ROLE_MAX_LEN} characters), e.g. hr_manager",
            )
    if (v := get("OABOT_BACKUP_TIMES")) is not None:
        try:
            values["backup_times"] = parse_backup_times(v)
        except ValueError as exc:
            bad(
                "OABOT_BACKUP_TIMES",
                v,
                f"comma-separated HH:MM times, e.g. 07:00,12:00,19:00, or empty for none ({exc})",
            )
    if (v := get("OABOT_BACKUP_DIR")) is not None:
        if v:
            values["backup_dir"] = v
        else:
            bad("OABOT_BACKUP_DIR", v, "a directory for backups, e.g. ./var/backups")
    if (v := get("OABOT_BACKUP_KEEP")) is not None:
        if v.isdigit() and 1 <= int(v) <= 10000:
            values["backup_keep"] = int(v)
        else:
            bad("OABOT_BACKUP_KEEP", v, "how many backups to keep, a whole number from 1 to 10000")


def _checkins(get: Any, bad: Any, values: dict[str, Any]) -> None:
    """Field check-ins: the link secret and lifetime, the ladder's grace, the 补卡 quota, who may
    check in without a trip, and when managers get the daily summary."""
    from org.model import ROLE_MAX_LEN

    found: dict[str, Any] = {}
    if (v := get("OABOT_LINK_SECRET")) is not None and v != "":
        if len(v) >= 16:
            found["link_secret"] = v
        else:
            bad(
                "OABOT_LINK_SECRET",
                "***",
                "at least 16 characters (or unset: one is generated and kept in the database)",
            )
    for name, key, low, high, what in (
        (
            "OABOT_CHECKIN_LINK_TTL_MIN",
            "link_ttl_min",
            5,
            7 * 24 * 60,
            "minutes a check-in link works after the trip's end",
        ),
        (
            "OABOT_CHECKIN_GRACE_MIN",
            "grace_min",
            1,
            24 * 60,
            "minutes of grace before a missing check-in is chased",
        ),
        ("OABOT_CHECKIN_FIX_QUOTA", "fix_quota", 0, 100, "补卡 requests allowed per person per month"),
    ):
        if (v := get(name)) is not None:
            if v.isdigit() and low <= int(v) <= high:
                found[key] = int(v)
            else:
                bad(name, v, f"{what}, a whole number from {low} to {high}")
    if (v := get("OABOT_CHECKIN_FREE_ROLES")) is not None:
        roles = tuple(r.strip() for r in v.split(",") if r.strip())
        if all(len(r) <= ROLE_MAX_LEN and not any(c.isspace() for c in r) for r in roles):
            found["free_roles"] = roles
        else:
            bad(
                "OABOT_CHECKIN_FREE_ROLES",
                v,
                "comma-separated role names (or * for everyone, empty for nobody)",
            )
    if (v := get("OABOT_CHECKIN_SUMMARY_AT")) is not None:
        if v == "":
            found["summary_at"] = None
        else:
            try:
                (at,) = parse_backup_times(v)
                found["summary_at"] = at
            except ValueError:
                bad("OABOT_CHECKIN_SUMMARY_AT", v, "one time HH:MM such as 18:30 (empty: no daily summary)")
    if found:
        values["checkins"] = CheckinSettings(**found)


_AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")


def _url(get: Any, bad: Any, name: str, default: str) -> str:
    v = get(name)
    if v is None or v == "":
        return default
    parts = urlsplit(v)
    if parts.scheme in ("http", "https") and parts.netloc:
        return str(v).rstrip("/")
    bad(name, v, "an http:// or https:// base URL")
    return default


def _platforms(get: Any, bad: Any, values: dict[str, Any], problems: list[str]) -> None:
    """WeCom and DingTalk: all-or-nothing groups of variables, each value checked."""
    wecom_names = [
        "OABOT_WECOM_CORP_ID",
        "OABOT_WECOM_AGENT_ID",
        "OABOT_WECOM_SECRET",
        "OABOT_WECOM_TOKEN",
        "OABOT_WECOM_AES_KEY",
    ]
    given = {n: get(n) for n in wecom_names if get(n)}
    api_base = _url(get, bad, "OABOT_WECOM_API_BASE", "https://qyapi.weixin.qq.com")
    if given:
        missing = [n for n in wecom_names if n not in given]
        for n in missing:
            problems.append(f"{n} is not set: WeCom needs all of {', '.join(wecom_names)}")
        agent = given.get("OABOT_WECOM_AGENT_ID")
        if agent is not None and not agent.isdigit():
            bad("OABOT_WECOM_AGENT_ID", agent, "the app's numeric AgentId, e.g. 1000002")
        aes = given.get("OABOT_WECOM_AES_KEY")
        if aes is not None and not _AES_KEY_RE.match(aes):
            bad(
                "OABOT_WECOM_AES_KEY",
                "***",
                "the 43-character EncodingAESKey from the app's callback settings",
            )
        if not missing and (agent or "").isdigit() and _AES_KEY_RE.match(aes or ""):
            values["wecom"] = WeComSettings(
                corp_id=given["OABOT_WECOM_CORP_ID"],
                agent_id=int(given["OABOT_WECOM_AGENT_ID"]),
                secret=given["OABOT_WECOM_SECRET"],
                token=given["OABOT_WECOM_TOKEN"],
                aes_key=given["OABOT_WECOM_AES_KEY"],
                api_base=api_base,
            )
    key, secret = get("OABOT_DINGTALK_APP_KEY"), get("OABOT_DINGTALK_APP_SECRET")
    api = _url(get, bad, "OABOT_DINGTALK_API_BASE", "https://api.dingtalk.com")
    oapi = _url(get, bad, "OABOT_DINGTALK_OAPI_BASE", "https://oapi.dingtalk.com")
    if key or secret:
        if not key:
            problems.append(
                "OABOT_DINGTALK_APP_KEY is not set: DingTalk needs the app's AppKey and AppSecret"
            )
        if not secret:
            problems.append(
                "OABOT_DINGTALK_APP_SECRET is not set: DingTalk needs the app's AppKey and AppSecret"
            )
        mode = (get("OABOT_DINGTALK_MODE") or "stream").lower()
        if mode not in ("stream", "http"):
            bad("OABOT_DINGTALK_MODE", mode, "stream (no public URL needed) or http")
        token, aes = get("OABOT_DINGTALK_TOKEN") or None, get("OABOT_DINGTALK_AES_KEY") or None
        if mode == "http" and not (token and aes):
            problems.append(
                "OABOT_DINGTALK_MODE=http needs OABOT_DINGTALK_TOKEN and OABOT_DINGTALK_AES_KEY (event subscription)"
            )
        if aes is not None and not _AES_KEY_RE.match(aes):
            bad(
                "OABOT_DINGTALK_AES_KEY",
                "***",
                "the 43-character aes_key from the event subscription settings",
            )
        if key and secret and mode in ("stream", "http"):
            values["dingtalk"] = DingTalkSettings(
                app_key=key,
                app_secret=secret,
                agent_id=get("OABOT_DINGTALK_AGENT_ID") or None,
                token=token,
                aes_key=aes,
                mode=mode,
                card_template_id=get("OABOT_DINGTALK_CARD_TEMPLATE_ID") or "oabot.approval.schema",
                api_base=api,
                oapi_base=oapi,
            )


def _valid_database_url(url: str) -> bool:
    if url.startswith("sqlite+aiosqlite:///"):
        return len(url) > len("sqlite+aiosqlite:///")
    if url.startswith("postgresql+asyncpg://"):
        parts = urlsplit(url)
        return bool(parts.hostname) and len(parts.path) > 1
    return False
