"""The desk's door: org admins in, everyone else 403, anonymous visitors to sign in; an admin API
token can be traded for a desk session, other tokens cannot."""

from __future__ import annotations

from typing import Any

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import API_TOKENS, SESSIONS
from storage.db import Database
from tests.conftest import settings_for

OFFICE = "u_zhao"  # hr_manager: the office role in the demo org
STAFF = "u_chen"  # the seal keeper: not an org admin


async def _client(db: Database, aiohttp_client: Any, clock: ManualClock) -> Any:
    return await aiohttp_client(create_app(settings_for(db), clock=clock))


async def _cookie(client: Any, user: str) -> dict[str, str]:
    session = await client.app[SESSIONS].start(user, via="test")
    return {"Cookie": f"oabot_session={session.id}"}


async def test_the_office_gets_the_desk_and_staff_get_403(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    client = await _client(org_db, aiohttp_client, clock)
    resp = await client.get("/admin/", headers=await _cookie(client, OFFICE))
    assert resp.status == 200 and "办公室工作台" in await resp.text()
    resp = await client.get("/admin/", headers=await _cookie(client, STAFF))
    assert resp.status == 403 and "仅对办公室" in await resp.text()
    resp = await client.get("/admin/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/m/sign-in?next=/admin/")


async def test_an_admin_token_is_traded_for_a_desk_session(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    client = await _client(org_db, aiohttp_client, clock)
    tokens = client.app[API_TOKENS]
    _, admin = await tokens.create(name="office", scopes=["read", "act", "admin"], user=OFFICE)
    _, staff_admin = await tokens.create(name="chen", scopes=["read", "act", "admin"], user=STAFF)
    _, reader = await tokens.create(name="erp", scopes=["read"])
    _, integration = await tokens.create(name="ops", scopes=["read", "act", "admin"])

    async def trade(secret: str, **form: str) -> Any:
        return await client.post(
            "/admin/session", data=form, headers={"Authorization": f"Bearer {secret}"}, allow_redirects=False
        )

    resp = await trade(admin)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/"
    page = await client.get("/admin/")  # the cookie jar now holds the desk session
    assert page.status == 200 and "办公室工作台" in await page.text()
    client.session.cookie_jar.clear()

    assert (await trade(reader)).status == 403  # no admin scope
    assert (await trade("not-a-token")).status == 401
    assert (await trade(staff_admin)).status == 403  # admin scope, but the person is not the office
    assert (await trade(integration)).status == 422  # an integration token must name the person
    assert (await trade(integration, **{"as": STAFF})).status == 403
    resp = await trade(integration, **{"as": OFFICE, "next": "//evil.example/x"})
    assert resp.status == 303 and resp.headers["Location"] == "/m/"  # never an open redirect
