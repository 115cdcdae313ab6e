"""REST API identity: named tokens stored hashed, scopes per route, personal tokens acting only as
their person, admin integrations acting on behalf of someone (recorded on the trail), revocation,
`as_admin` for real admins only, and `oabot tokens` as an operator runs it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.cli import main
from bot.keys import API_TOKENS, WORKFLOW
from bot.web import api, api_calendar, api_checkins, api_notices, api_stats, openapi
from org.loader import load_org_file
from services.api_tokens import Scope
from storage.api_token_models import ApiTokenRow
from storage.db import Database
from storage.org_repo import import_org
from tests.conftest import DEMO_ORG, Api, create_tables, settings_for

SEAL_FORM = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}
ROUTES = [
    r for t in (api, api_calendar, api_checkins, api_stats, api_notices, openapi) for r in t.ROUTES.routes
]


async def token(api: Api, name: str, scopes: str, user: str | None = None) -> dict[str, str]:
    """Create a token through the service; answer the header that sends it."""
    _, secret = await api.app[API_TOKENS].create(name=name, scopes=scopes.split(","), user=user)  # type: ignore[index]
    return {"Authorization": f"Bearer {secret}"}


async def call(
    api: Api, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    resp = await api.client.request(method, "/api/v1" + path, json=body, headers=headers)  # type: ignore[attr-defined]
    return resp.status, await resp.json()


async def event(api: Api, request_id: str, kind: str) -> dict[str, Any]:
    """The request's first trail event of `kind`, read back with the bootstrap token."""
    _, request = await api.call("GET", f"/requests/{request_id}", expect=200)
    return next(e for e in request["trail"] if e["kind"] == kind)  # type: ignore[index]


# -- tokens ----------------------------------------------------------------------------------------


async def test_a_token_is_stored_as_its_sha256_and_never_as_the_secret(api: Api, org_db: Database) -> None:
    info, secret = await api.app[API_TOKENS].create(name="erp", scopes=["read", "act"])  # type: ignore[index]

    async with org_db.session() as s:
        row = (await s.execute(select(ApiTokenRow))).scalar_one()
    assert secret.startswith("oat_") and len(secret) > 40
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(row.model_dump())
    assert info.scopes == (Scope.READ, Scope.ACT) and row.scopes == "read,act"


async def test_a_new_token_works_and_its_last_use_is_recorded(api: Api) -> None:
    headers = await token(api, "reader", "read")

    status, _ = await call(api, "GET", "/templates", headers)

    assert status == 200
    (info,) = await api.app[API_TOKENS].list_tokens()  # type: ignore[index]
    assert info.last_used_at is not None


async def test_a_revoked_token_is_a_401_that_says_so(api: Api) -> None:
    headers = await token(api, "old", "read,act")
    assert (await call(api, "GET", "/templates", headers))[0] == 200

    await api.app[API_TOKENS].revoke("old")  # type: ignore[index]
    status, body = await call(api, "GET", "/templates", headers)

    assert status == 401
    assert body["error"] == "unauthorized" and "old" in body["message"] and "吊销" in body["message"]
    assert body["details"] == {"token": "revoked"}


async def test_an_unknown_token_is_a_401(api: Api) -> None:
    status, body = await call(api, "GET", "/templates", {"Authorization": "Bearer oat_nothing-like-this"})

    assert status == 401 and body["details"] == {"token": "unknown"}


async def test_a_personal_token_of_someone_who_left_stops_working(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    headers = await token(api, "phone", "read", user="u_wu")
    org = load_org_file(DEMO_ORG)
    org.users["u_wu"] = replace(org.users["u_wu"], active=False)
    async with org_db.transaction() as session:
        await import_org(session, org, now=clock.now())
    clock.advance(timedelta(minutes=1))  # past the directory's cache

    status, body = await call(api, "GET", "/templates", headers)

    assert status == 401 and body["details"] == {"token": "inactive"}


# -- scopes ----------------------------------------------------------------------------------------


def test_every_route_declares_its_scope_reads_read_and_calendar_writes_are_admin() -> None:
    scopes = {(r.method, r.path): r.scope for r in ROUTES}

    assert all(s == Scope.READ for (m, _), s in scopes.items() if m == "GET")
    assert scopes[("POST", "/api/v1/requests")] == Scope.ACT
    assert scopes[("POST", "/api/v1/requests/{id}/actions")] == Scope.ACT
    assert scopes[("POST", "/api/v1/preview")] == Scope.READ
    assert scopes[("POST", "/api/v1/calendar/overrides")] == Scope.ADMIN
    assert scopes[("DELETE", "/api/v1/calendar/overrides/{date}")] == Scope.ADMIN


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_route_refuses_a_token_without_its_scope(api: Api, route: Any) -> None:
    others = ",".join(s.value for s in Scope if s != route.scope)
    headers = await token(api, "narrow", others)
    path = re.sub(r"\{\w+\}", "2026-12-01", route.path).removeprefix("/api/v1")

    status, body = await call(api, route.method, path, headers, {} if route.method != "GET" else None)

    assert status == 403, body
    assert body["error"] == "forbidden"
    assert body["details"]["missing"] == f"scope {route.scope.value}"


async def test_a_read_token_reads_but_cannot_submit(api: Api) -> None:
    headers = await token(api, "dashboard", "read")

    assert (await call(api, "GET", "/requests", headers))[0] == 200
    status, body = await call(
        api, "POST", "/requests", headers, {"template": "seal_use", "initiator": "u_wu", "form": SEAL_FORM}
    )
    assert status == 403 and body["details"]["missing"] == "scope act"
    assert (await call(api, "GET", "/requests", api.headers))[1]["items"] == []


# -- personal tokens -------------------------------------------------------------------------------


async def test_a_personal_token_acts_as_its_person_and_the_trail_says_so(api: Api) -> None:
    headers = await token(api, "wu-phone", "read,act", user="u_wu")

    status, created = await call(
        api, "POST", "/requests", headers, {"template": "seal_use", "form": SEAL_FORM}
    )

    assert status == 201, created
    assert created["initiator"] == "u_wu"
    submitted = await event(api, created["id"], "submitted")
    assert submitted["actor"] == "u_wu" and submitted["data"]["via"] == "personal token wu-phone"

    sun = await token(api, "sun-phone", "act", user="u_sun")
    (task,) = await api.pending("u_sun")
    status, acted = await call(
        api,
        "POST",
        f"/requests/{created['id']}/actions",
        sun,
        {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
    )
    assert status == 200, acted
    approved = await event(api, created["id"], "approved")
    assert approved["actor"] == "u_sun" and approved["data"]["via"] == "personal token sun-phone"
    assert "via" not in (await event(api, created["id"], "step_started"))["data"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/requests", {"template": "seal_use", "initiator": "u_sun", "form": SEAL_FORM}, "initiator"),
        ("/requests", {"template": "seal_use", "on_behalf_of": "u_sun", "form": SEAL_FORM}, "on_behalf_of"),
        (
            "/delegations",
            {"delegator": "u_sun", "delegate": "u_wu", "ends_at": "2026-12-01T00:00:00+08:00"},
            "delegator",
        ),
        ("/checkins", {"user": "u_sun", "lat": 31.23, "lng": 121.47}, "user"),
    ],
)
async def test_a_personal_token_naming_someone_else_is_a_403_naming_its_person(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    headers = await token(api, "wu-phone", "read,act,admin", user="u_wu")

    status, answer = await call(api, "POST", path, headers, body)

    assert status == 403, answer
    assert answer["error"] == "forbidden"
    assert "只能以 u_wu 的身份操作" in answer["message"]
    assert answer["details"]["field"] == field
    assert (await call(api, "GET", "/requests", api.headers))[1]["items"] == []


async def test_a_personal_token_cannot_act_on_someone_elses_task(api: Api) -> None:
    created = await api.submit("seal_use", "u_wu", SEAL_FORM)
    (task,) = await api.pending("u_sun")
    wu = await token(api, "wu-phone", "act", user="u_wu")

    status, body = await call(
        api,
        "POST",
        f"/requests/{created['id']}/actions",
        wu,
        {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
    )

    assert status == 403 and "u_wu" in body["message"]
    assert (await api.pending("u_sun"))[0]["version"] == task["version"]


async def test_a_personal_token_reads_only_what_its_person_may_see(api: Api) -> None:
    created = await api.submit("seal_use", "u_wu", SEAL_FORM)
    wu = await token(api, "wu-phone", "read", user="u_wu")
    sun = await token(api, "sun-phone", "read", user="u_sun")
    zheng = await token(api, "zheng-phone", "read", user="u_zheng")

    assert (await call(api, "GET", f"/requests/{created['id']}", wu))[0] == 200  # the initiator
    assert (await call(api, "GET", f"/requests/{created['id']}", sun))[0] == 200  # the approver
    status, body = await call(api, "GET", f"/requests/{created['id']}", zheng)  # no part in it
    assert status == 403 and body["error"] == "request_hidden"
    assert [r["id"] for r in (await call(api, "GET", "/requests", wu))[1]["items"]] == [created["id"]]
    assert (await call(api, "GET", "/requests", zheng))[1]["items"] == []  # his own: none
    for path in ("/requests?initiator=u_wu", "/tasks?assignee=u_sun", "/delegations?user=u_sun"):
        status, body = await call(api, "GET", path, zheng)
        assert status == 403 and "只能以 u_zheng 的身份操作" in body["message"], path
    assert len((await call(api, "GET", "/tasks?assignee=u_sun", sun))[1]["items"]) == 1


async def test_a_personal_token_cancels_only_its_own_delegations(api: Api) -> None:
    _, theirs = await api.call(
        "POST",
        "/delegations",
        {"delegator": "u_sun", "delegate": "u_wu", "ends_at": "2026-12-01T00:00:00+08:00"},
        expect=201,
    )
    wu = await token(api, "wu-phone", "act", user="u_wu")
    _, mine = await call(
        api, "POST", "/delegations", wu, {"delegate": "u_zheng", "ends_at": "2026-12-01T00:00:00+08:00"}
    )
    assert mine["delegator"] == "u_wu"

    assert (await call(api, "DELETE", f"/delegations/{theirs['id']}", wu))[0] == 403  # type: ignore[index]
    status, cancelled = await call(api, "DELETE", f"/delegations/{mine['id']}", wu)
    assert status == 200 and cancelled["cancelled_at"]


# -- integrations ----------------------------------------------------------------------------------


async def test_an_admin_integration_acts_on_behalf_of_someone_and_the_trail_records_both(
    api: Api, org_db: Database
) -> None:
    erp = await token(api, "erp", "read,act,admin")

    status, created = await call(
        api, "POST", "/requests", erp, {"template": "seal_use", "on_behalf_of": "u_wu", "form": SEAL_FORM}
    )
    assert status == 201, created
    (task,) = await api.pending("u_sun")
    status, acted = await call(
        api,
        "POST",
        f"/requests/{created['id']}/actions",
        erp,
        {
            "action": "approve",
            "on_behalf_of": "u_sun",
            "task_id": task["task_id"],
            "version": task["version"],
        },
    )

    assert status == 200, acted
    submitted = await event(api, created["id"], "submitted")
    approved = await event(api, created["id"], "approved")
    assert (submitted["actor"], submitted["data"]["via"]) == ("u_wu", "integration erp")
    assert (approved["actor"], approved["data"]["via"]) == ("u_sun", "integration erp")
    assert await api.app[WORKFLOW].verify_trail(created["id"]) == {}  # type: ignore[attr-defined]


async def test_an_integration_without_admin_cannot_act_for_anyone(api: Api) -> None:
    erp = await token(api, "erp", "read,act")

    status, body = await call(
        api, "POST", "/requests", erp, {"template": "seal_use", "on_behalf_of": "u_wu", "form": SEAL_FORM}
    )

    assert status == 403 and body["details"]["missing"] == "scope admin"


async def test_an_integration_must_say_whom_it_acts_for(api: Api) -> None:
    erp = await token(api, "erp", "act,admin")

    status, body = await call(api, "POST", "/requests", erp, {"template": "seal_use", "form": SEAL_FORM})

    assert status == 422 and body["details"]["missing"] == "on_behalf_of"


async def test_the_bootstrap_token_keeps_taking_the_actor_from_the_body(api: Api) -> None:
    created = await api.submit("seal_use", "u_wu", SEAL_FORM)

    assert (await event(api, created["id"], "submitted"))["data"]["via"] == "integration bootstrap"


# -- as_admin --------------------------------------------------------------------------------------


async def test_as_admin_is_refused_to_someone_without_the_admin_role(api: Api) -> None:
    created = await api.submit("seal_use", "u_wu", SEAL_FORM)

    status, body = await api.call(
        "POST",
        f"/requests/{created['id']}/actions",
        {"action": "terminate", "actor": "u_zheng", "as_admin": True},
    )

    assert status == 403 and body["details"]["missing"] == "role admin or hr_manager"  # type: ignore[index]


async def test_as_admin_lets_an_active_admin_terminate_any_request(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db, admin_role="gm"), clock=clock)
    client = Api(await aiohttp_client(app), app)
    created = await client.submit("seal_use", "u_wu", SEAL_FORM)

    _, ended = await client.call(
        "POST",
        f"/requests/{created['id']}/actions",
        {"action": "terminate", "actor": "u_zhang", "as_admin": True, "comment": "作废"},
        expect=200,
    )

    assert ended["status"] == "terminated"  # type: ignore[index]


# -- oabot tokens ----------------------------------------------------------------------------------


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("OABOT_") and not name.startswith("OABOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/oabot.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)

    async def make() -> None:
        db = Database(url)
        try:
            await create_tables(db)
        finally:
            await db.dispose()

    asyncio.run(make())
    yield url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_creates_lists_and_revokes_and_never_lists_a_secret(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "tokens", "create", "--name", "erp", "--scope", "read,act")
    assert code == 0, err
    first, secret = out.splitlines()
    assert first == "created erp [read,act] integration" and secret.startswith("oat_")
    assert "only now" in err

    code, out, _ = run(capsys, "tokens", "list")
    assert code == 0 and out.startswith("erp [read,act] integration") and "never used" in out
    assert secret not in out and "oat_" not in out

    code, out, _ = run(capsys, "tokens", "revoke", "erp")
    assert code == 0 and "revoked erp" in out
    code, out, _ = run(capsys, "tokens", "list")
    assert "revoked 20" in out and secret not in out


def test_cli_refuses_a_taken_name_an_unknown_scope_and_an_unknown_token(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "tokens", "create", "--name", "erp", "--scope", "read")[0] == 0

    assert run(capsys, "tokens", "create", "--name", "erp", "--scope", "read")[0] == 2
    code, _, err = run(capsys, "tokens", "create", "--name", "x", "--scope", "read,write")
    assert code == 2 and "write" in err
    code, _, err = run(capsys, "tokens", "revoke", "nope")
    assert code == 1 and "nope" in err


def test_cli_on_a_database_without_tables_says_run_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/empty.db")

    code, _, err = run(capsys, "tokens", "list")

    assert code == 1 and "oabot migrate" in err
