"""Secrets never reach a log line: link tokens, sign-in codes and states, callback signatures and
bearer tokens are replaced by `[redacted]` in the access log, in error lines and in tracebacks,
in both the text and the JSON format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from approvals.clock import ManualClock
from bot.app import create_app
from bot.logs import REDACTED, configure_logging, redact_secrets
from checkins.links import LinkClaims, sign_link
from org.signed_links import LinkTarget
from org.signed_links import sign as sign_personal
from storage.db import Database
from tests.conftest import settings_for

SECRET = "link-secret-for-tests-0123456789"
API_TOKEN = "test-token-0123456789"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def secrets_in_play(clock: ManualClock) -> dict[str, str]:
    expires = clock.now() + timedelta(hours=2)
    checkin = sign_link(
        SECRET.encode(), LinkClaims(user="u_wu", trip="trip-1", kind="arrival", expires_at=expires)
    )
    team = sign_link(SECRET.encode(), LinkClaims(user="u_sun", trip="*", kind="team", expires_at=expires))
    personal = sign_personal(SECRET.encode(), LinkTarget(user="u_wu", path="/m/todo", expires_at=expires))
    return {
        "checkin": checkin,
        "team": team,
        "personal": personal,
        "code": "wecomcodeSECRET42",
        "state": "statenonceSECRET43",
        "signature": "0123456789abcdef0123456789abcdefSIG",
        "bearer": API_TOKEN,
    }


async def drive_requests(client: Any, s: dict[str, str]) -> None:
    """Requests a probe would make: matched, unmatched, wrong method, failing, signed callbacks."""
    await client.get(f"/checkin/{s['checkin']}")
    await client.post(f"/checkin/{s['checkin']}", data=b"not json")
    await client.get(f"/checkin/{s['checkin']}/extra")  # unmatched: 404
    await client.put(f"/checkin/{s['checkin']}")  # 405
    await client.get(f"/checkins/team/{s['team']}?date=2026-11-23")
    await client.get(f"/m/l/{s['personal']}", allow_redirects=False)
    await client.get(f"/m/sign-in/wecom?code={s['code']}&state={s['state']}")
    await client.post(
        f"/callbacks/wecom?msg_signature={s['signature']}&timestamp=1&nonce=2", data=b"<xml></xml>"
    )
    await client.get("/api/v1/templates", headers={"Authorization": f"Bearer {s['bearer']}"})
    await client.get(f"/boom?code={s['code']}&sign={s['signature']}&checkin=/checkin/{s['checkin']}")


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_token_code_signature_or_bearer_reaches_the_log(
    org_db: Database, aiohttp_client: Any, clock: ManualClock, restore_logging: None, fmt: str
) -> None:
    settings = settings_for(org_db, checkins={"link_secret": SECRET}, log_format=fmt)
    app = create_app(settings, clock=clock)

    async def boom(request: web.Request) -> web.Response:
        # An unexpected error whose message (and traceback) carries the full request URL.
        raise RuntimeError(f"could not handle {request.url}")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    stream = io.StringIO()
    configure_logging("DEBUG", fmt, stream=stream)
    s = secrets_in_play(clock)

    await drive_requests(client, s)

    out = stream.getvalue()
    for name, secret in s.items():
        assert secret not in out, f"the {name} reached the {fmt} log"
    if fmt == "json":
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        access = [e["msg"] for e in lines if e["logger"] == "oabot.access"]
        assert any("exc" in e and REDACTED in e["exc"] for e in lines)  # the traceback, redacted
    else:
        access = [line for line in out.splitlines() if "oabot.access" in line]
    assert len(access) == 10
    assert any(f"/checkin/{REDACTED} -> 404" in line for line in access)  # unmatched route
    assert any(f"/checkins/team/{REDACTED}" in line for line in access)
    assert any(f"/m/l/{REDACTED}" in line for line in access)
    assert f"could not handle http://127.0.0.1:{client.port}/boom?code={REDACTED}" in out


def test_redaction_keeps_what_is_not_secret() -> None:
    line = "/callbacks/wecom?msg_signature=abc&timestamp=1700000000&nonce=n1 Bearer xyz-0123456789"
    assert (
        redact_secrets(line)
        == f"/callbacks/wecom?msg_signature={REDACTED}&timestamp=1700000000&nonce=n1 Bearer {REDACTED}"
    )
    assert redact_secrets("the bearer token is missing") == "the bearer token is missing"
    assert (
        redact_secrets("gettoken?corpid=ww1&corpsecret=abc") == f"gettoken?corpid=ww1&corpsecret={REDACTED}"
    )
    # file names under templates/checkin/ in a traceback stay readable
    assert redact_secrets("templates/checkin/base.html") == "templates/checkin/base.html"
    stamp = datetime(2026, 11, 23, tzinfo=UTC).isoformat()
    assert redact_secrets(stamp) == stamp
