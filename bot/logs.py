"""Logging setup: text for people, JSON lines for log collectors, the request id on every line.

`configure_logging` is called once by a CLI entry point, never at import time. The request id
travels in a context variable set by the request middleware, so every line logged while a request
is handled carries it without anyone passing it along.

Secrets never reach a log line: both formats pass their finished line through `redact_secrets`,
which replaces link tokens in paths (/checkin/, /checkins/team/, /m/l/), signed tokens wherever
they appear (tracebacks, SQL parameters), sign-in codes and states, callback signatures, platform
secrets and access tokens in query strings, and bearer tokens, with `[redacted]`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

request_id_var: ContextVar[str | None] = ContextVar("oabot_request_id", default=None)

REDACTED = "[redacted]"
# Path segments that are bearer secrets themselves: check-in links, team links, personal links
# (tokens are long; a short segment such as a template's file name stays readable).
_SECRET_PATH = re.compile(r"(/(?:checkin|checkins/team|m/l)/)[^/?#\s\"'\\]{16,}")
# Query parameters that carry codes, states, signatures or credentials (`timestamp` and `nonce`
# are not secret and stay, so a replay can still be traced).
_SECRET_PARAM = re.compile(
    r"([?&;](?:code|auth_?code|state|msg_signature|signature|sign|token|access_token|"
    r"corpsecret|appsecret|app_secret|secret|ticket|jsapi_ticket)=)[^&#\s\"'\\]+",
    re.IGNORECASE,
)
# A signed token (personal link, check-in link) anywhere: base64url of a JSON array ("Wy..."),
# a dot, and a base64url HMAC-SHA256.
_SIGNED_TOKEN = re.compile(r"Wy[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{43}")
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Adds `request_id` from the current context to records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # The patterns stop at quotes and backslashes, so redacting the JSON text keeps it JSON.
        return redact_secrets(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` with the extra fields at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = extra_fields(record)
        if not extras:
            return redact_secrets(line)
        first, sep, rest = line.partition("\n")
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        return redact_secrets(f"{first} [{tail}]{sep}{rest}")


class OabotHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs; calling it again replaces this one only."""


def configure_logging(level: str = "INFO", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Send every log record to one handler on the root logger (replacing the one set before)."""
    handler = OabotHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, OabotHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Our middleware writes one line per request; aiohttp's access log would repeat it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # APScheduler announces every job run at INFO; Alembic every context it opens (each /readyz).
    # Our own lines say what matters: "database migrated from X to Y".
    # httpx logs every request URL at INFO, and platform URLs carry access tokens and app secrets.
    for noisy in ("apscheduler", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def redact_secrets(text: str) -> str:
    """`text` with link tokens, signed tokens, codes, signatures and bearer tokens replaced."""
    text = _SECRET_PATH.sub(rf"\g<1>{REDACTED}", text)
    text = _SECRET_PARAM.sub(rf"\g<1>{REDACTED}", text)
    text = _SIGNED_TOKEN.sub(REDACTED, text)
    return _BEARER.sub(rf"\g<1>{REDACTED}", text)


def redact_url(url: str | None) -> str:
    """A connection URL without its password, fit for logs, probes and error lines."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
