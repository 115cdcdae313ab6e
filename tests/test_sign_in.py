"""Signing in from a phone, against fake WeCom and DingTalk servers on real HTTP.

The app runs under aiohttp's test client; the fakes (tests/fake_wecom.py, tests/fake_dingtalk.py)
are real servers the app's HTTP client calls. The browser's hops between the app and WeCom's
OAuth page are followed here by hand, so each one can be looked at (and replayed).
Demo accounts: u_zhao→zhaomin / 010006 (hr_manager, the office role: an org admin),
u_sun→sunli / 010011 (not an admin).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from approvals.clock import ManualClock
from bot.app import create_app
from bot.cli.serve import console_warning
from bot.keys import LINKS, SESSIONS, WORKFLOW
from bot.settings import DingTalkSettings, Settings, WeComSettings
from org.loader import load_org_file
from storage.db import Database
from storage.org_repo import import_org
from tests import fake_dingtalk
from tests.conftest import DEMO_ORG, settings_for
from tests.fake_dingtalk import FakeDingTalk
from tests.fake_wecom import FakeWeCom

CORP_ID = "ww0signin0123456789"
AGENT_ID = 1000002
SECRET = "fake-app-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
LINK_SECRET = "link-secret-0123456789abcdef"


@dataclass
class Site:
    client: TestClient
    app: web.Application
    clock: ManualClock


async def _site(aiohttp_client: Any, org_db: Database, clock: ManualClock, **overrides: object) -> Site:
    values: dict[str, object] = {"demo": False, "console": True, "checkins": {"link_secret": LINK_SECRET}}
    values.update(overrides)
    app = create_app(settings_for(org_db, **values), clock=clock)
    return Site(await aiohttp_client(app), app, clock)


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    fake = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def dingtalk() -> AsyncIterator[FakeDingTalk]:
    fake = await FakeDingTalk().start()
    try:
        yield fake
    finally:
        await fake.stop()


def wecom_settings(fake: FakeWeCom) -> WeComSettings:
    return WeComSettings(
        corp_id=CORP_ID,
        agent_id=AGENT_ID,
        secret=SECRET,
        token="signInCallbackToken",
        aes_key=AES_KEY,
        api_base=fake.base_url,
        oauth_base=fake.base_url,
    )


def dingtalk_settings(fake: FakeDingTalk) -> DingTalkSettings:
    return DingTalkSettings.model_validate(
        fake_dingtalk.dingtalk_env(fake)
        | {
            "OABOT_DINGTALK_CORP_ID": fake_dingtalk.CORP_ID,
            "OABOT_DINGTALK_JSAPI_URL": f"{fake.base_url}{fake_dingtalk.JSAPI}",
        }
    )


@pytest.fixture
async def on_wecom(aiohttp_client: Any, org_db: Database, clock: ManualClock, wecom: FakeWeCom) -> Site:
    return await _site(aiohttp_client, org_db, clock, wecom=wecom_settings(wecom))


@pytest.fixture
async def on_dingtalk(
    aiohttp_client: Any, org_db: Database, clock: ManualClock, dingtalk: FakeDingTalk
) -> Site:
    return await _site(aiohttp_client, org_db, clock, dingtalk=dingtalk_settings(dingtalk))


def local(location: str) -> str:
    """The path and query of an address on the app (its public URL is not the test server's)."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def begin_wecom(site: Site, next_path: str) -> str:
    """Open the sign-in page; follow WeCom's silent OAuth; the callback address it sends back."""
    resp = await site.client.get("/m/sign-in", params={"next": next_path}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    authorize = resp.headers["Location"]
    assert authorize.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(authorize).query)
    assert (
        query["scope"] == ["snsapi_base"] and query["appid"] == [CORP_ID] and query["agentid"] == ["1000002"]
    )
    assert query["redirect_uri"] == ["http://oabot.test/m/sign-in/wecom"]
    assert len(query["state"][0]) < 128 and query["state"][0].isalnum()
    async with httpx.AsyncClient() as browser:
        back = await browser.get(authorize.split("#")[0])
    assert back.status_code == 302
    return local(back.headers["Location"])


async def finish(site: Site, callback: str) -> Any:
    return await site.client.get(callback, allow_redirects=False)


# -- WeCom ------------------------------------------------------------------------------------
async def test_wecom_sign_in_is_silent_and_opens_the_page_asked_for(on_wecom: Site, wecom: FakeWeCom):
    wecom.signed_in_account = "zhaomin"
    done = await finish(on_wecom, await begin_wecom(on_wecom, "/console?tab=1"))
    assert done.status == 303 and done.headers["Location"] == "/console?tab=1"
    cookie = done.cookies["oabot_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert len(wecom.calls("/cgi-bin/auth/getuserinfo")) == 1
    page = await on_wecom.client.get("/console", allow_redirects=False)
    assert page.status == 200  # 赵敏 holds the office role: an org admin
    # signed in already: the sign-in page goes straight on
    again = await on_wecom.client.get("/m/sign-in?next=/m/todo", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/m/todo"


async def test_a_replayed_callback_or_code_is_refused(on_wecom: Site, wecom: FakeWeCom):
    wecom.signed_in_account = "sunli"
    callback = await begin_wecom(on_wecom, "/m/")
    assert (await finish(on_wecom, callback)).status == 303
    replayed = await finish(on_wecom, callback)  # the same state a second time
    assert replayed.status == 403 and "用过" in await replayed.text()
    on_wecom.client.session.cookie_jar.clear()
    fresh = await begin_wecom(on_wecom, "/m/")
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    state = parse_qs(urlsplit(fresh).query)["state"][0]
    reused = await finish(on_wecom, f"/m/sign-in/wecom?code={old_code}&state={state}")
    assert reused.status == 401 and "登录码" in await reused.text()
    assert "oabot_session" not in reused.cookies


async def test_an_expired_code_is_refused(on_wecom: Site, wecom: FakeWeCom):
    wecom.signed_in_account = "sunli"
    callback = await begin_wecom(on_wecom, "/m/")
    wecom.expire_codes()
    refused = await finish(on_wecom, callback)
    assert refused.status == 401 and "过期" in await refused.text()


@pytest.mark.parametrize("change", ["forged", "truncated", "other-browser", "missing"])
async def test_a_bad_state_is_refused(on_wecom: Site, wecom: FakeWeCom, change: str):
    wecom.signed_in_account = "sunli"
    callback = await begin_wecom(on_wecom, "/m/")
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    state = query["state"]
    if change == "forged":
        query["state"] = state[:-1] + ("0" if state[-1] != "0" else "1")
    elif change == "truncated":
        query["state"] = state[:40]
    elif change == "other-browser":
        on_wecom.client.session.cookie_jar.clear()
    else:
        del query["state"]
    refused = await on_wecom.client.get("/m/sign-in/wecom", params=query, allow_redirects=False)
    assert refused.status == 403, await refused.text()
    assert "oabot_session" not in refused.cookies
    assert "重新登录" in await refused.text()


async def test_an_expired_state_is_refused(on_wecom: Site, wecom: FakeWeCom):
    wecom.signed_in_account = "sunli"
    callback = await begin_wecom(on_wecom, "/m/")
    on_wecom.clock.advance(timedelta(minutes=11))
    refused = await finish(on_wecom, callback)
    assert refused.status == 410 and "过期" in await refused.text()


@pytest.mark.parametrize("evil", ["//evil.example", "https://evil.example/x", "/\\evil.example", "evil"])
async def test_sign_in_never_leaves_the_site(on_wecom: Site, wecom: FakeWeCom, evil: str):
    wecom.signed_in_account = "sunli"
    done = await finish(on_wecom, await begin_wecom(on_wecom, evil))
    assert done.status == 303 and done.headers["Location"] == "/m/"


@pytest.mark.parametrize("account", ["nobody", None])
async def test_someone_not_in_the_directory_is_told_so(on_wecom: Site, wecom: FakeWeCom, account: str | None):
    wecom.signed_in_account = account
    refused = await finish(on_wecom, await begin_wecom(on_wecom, "/m/"))
    assert refused.status == 403 and "通讯录" in await refused.text()
    assert "oabot_session" not in refused.cookies


# -- DingTalk ---------------------------------------------------------------------------------
async def dingtalk_state(site: Site) -> str:
    page = await site.client.get(
        "/m/sign-in?next=/console", headers={"User-Agent": "Mozilla/5.0 DingTalk/7.0"}
    )
    assert page.status == 200
    html = await page.text()
    assert (
        'src="http://127.0.0.1:' in html
        and "dingtalk.open.js" in html
        and 'data-corp-id="dingcorpfake"' in html
    )
    return html.split('data-state="')[1].split('"')[0]


async def test_dingtalk_code_signs_in_once(on_dingtalk: Site, dingtalk: FakeDingTalk):
    code = dingtalk.auth_code("010006")
    answer = await on_dingtalk.client.post(
        "/m/sign-in/dingtalk", json={"code": code, "state": await dingtalk_state(on_dingtalk)}
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["next"] == "/console"
    assert (await on_dingtalk.client.get("/console", allow_redirects=False)).status == 200
    call = dingtalk.api.calls(fake_dingtalk.GETUSERINFO)[0]
    assert call.method == "POST" and call.json() == {"code": code} and call.query["access_token"]
    on_dingtalk.client.session.cookie_jar.clear()
    reused = await on_dingtalk.client.post(
        "/m/sign-in/dingtalk", json={"code": code, "state": await dingtalk_state(on_dingtalk)}
    )
    assert reused.status == 401 and (await reused.json())["error"] == "sign_in_code_used"
    assert len(dingtalk.api.calls(fake_dingtalk.GETUSERINFO)) == 1  # refused before DingTalk is asked


async def test_dingtalk_expired_or_unknown_code_is_refused(on_dingtalk: Site, dingtalk: FakeDingTalk):
    code = dingtalk.auth_code("010006")
    dingtalk.expire_codes()
    for offered in (code, "never-issued"):
        refused = await on_dingtalk.client.post(
            "/m/sign-in/dingtalk", json={"code": offered, "state": await dingtalk_state(on_dingtalk)}
        )
        assert refused.status == 401 and "过期" in (await refused.json())["message"]


async def test_dingtalk_code_without_a_good_state_is_refused(on_dingtalk: Site, dingtalk: FakeDingTalk):
    await dingtalk_state(on_dingtalk)
    refused = await on_dingtalk.client.post(
        "/m/sign-in/dingtalk", json={"code": dingtalk.auth_code("010006"), "state": "x" * 20}
    )
    assert refused.status == 403
    missing = await on_dingtalk.client.post("/m/sign-in/dingtalk", json={"state": "x"})
    assert missing.status == 401


# -- personal links ---------------------------------------------------------------------------
async def test_a_personal_link_signs_its_person_in(
    aiohttp_client: Any, org_db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
):
    site = await _site(aiohttp_client, org_db, clock)
    token = await site.app[LINKS].token("u_zhao", "/console")
    with caplog.at_level(logging.INFO):
        opened = await site.client.get(f"/m/l/{token}", allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/console"
    assert (await site.client.get("/console", allow_redirects=False)).status == 200
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]  # the test server's own log
    assert all(token not in r.getMessage() and token not in str(r.__dict__) for r in ours)
    assert any(getattr(r, "token_digest", None) for r in caplog.records)


async def test_a_tampered_or_expired_personal_link_says_what_to_do(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    site = await _site(aiohttp_client, org_db, clock)
    token = await site.app[LINKS].token("u_zhao", "/console")
    payload, signature = token.split(".")
    tampered = await site.client.get(f"/m/l/{payload}.{signature[::-1]}", allow_redirects=False)
    assert tampered.status == 403 and "消息卡片" in await tampered.text()
    clock.advance(timedelta(days=8))
    expired = await site.client.get(f"/m/l/{token}", allow_redirects=False)
    assert expired.status == 410 and "过期" in await expired.text()
    assert "oabot_session" not in expired.cookies


# -- the console outside demo mode, sign-out, deactivation ----------------------------------------
async def test_the_console_outside_demo_mode_asks_for_an_admin(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    site = await _site(aiohttp_client, org_db, clock)
    anonymous = await site.client.get("/console/u/u_zhang", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/m/sign-in?next=/console/u/u_zhang"
    page = await site.client.get("/m/sign-in?next=/console", allow_redirects=False)
    assert page.status == 200 and "企业微信或钉钉" in await page.text()
    sun = await site.app[LINKS].token("u_sun", "/console")
    assert (await site.client.get(f"/m/l/{sun}", allow_redirects=False)).status == 303
    refused = await site.client.get("/console", allow_redirects=False)
    assert refused.status == 403 and "管理员" in await refused.text()


async def test_the_console_outside_demo_mode_refuses_a_post_without_the_sessions_token(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    site = await _site(aiohttp_client, org_db, clock)
    session = await site.app[SESSIONS].start("u_zhao", via="test")
    site.client.session.cookie_jar.update_cookies({"oabot_session": session.id})
    page = await (await site.client.get("/console/u/u_zhao")).text()
    assert f'name=csrf value="{session.csrf}"' in page  # every console form carries it
    forged = await site.client.post("/console/u/u_zhao/say", data={"text": "待办"}, allow_redirects=False)
    assert forged.status == 403
    said = await site.client.post(
        "/console/u/u_zhao/say", data={"text": "待办", "csrf": session.csrf}, allow_redirects=False
    )
    assert said.status == 303


async def test_a_deactivated_persons_session_stops_working(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    site = await _site(aiohttp_client, org_db, clock)
    token = await site.app[LINKS].token("u_zhao", "/console")
    await site.client.get(f"/m/l/{token}", allow_redirects=False)
    assert (await site.client.get("/console", allow_redirects=False)).status == 200
    org = load_org_file(DEMO_ORG)
    del org.users["u_zhao"]
    async with org_db.transaction() as s:
        await import_org(s, org, now=clock.now())
    clock.advance(timedelta(seconds=11))  # the directory's cache
    gone = await site.client.get("/console", allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"].startswith("/m/sign-in")
    again = await site.client.get(f"/m/l/{token}", allow_redirects=False)
    assert again.status == 403 and "通讯录" in await again.text()


async def test_sign_out_needs_the_forms_token_and_ends_the_session(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    site = await _site(aiohttp_client, org_db, clock)
    session = await site.app[SESSIONS].start("u_zhao", via="test")
    site.client.session.cookie_jar.update_cookies({"oabot_session": session.id})
    forged = await site.client.post("/m/sign-out", data={"csrf": "nope"}, allow_redirects=False)
    assert forged.status == 403
    out = await site.client.post("/m/sign-out", data={"csrf": session.csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/m/sign-in?out=1"
    assert await site.app[SESSIONS].get(session.id) is None
    page = await site.client.get("/m/sign-in?out=1")
    assert "已退出" in await page.text()


async def test_the_root_opens_the_workspace_or_the_demo_console(
    aiohttp_client: Any, org_db: Database, clock: ManualClock
):
    real = await _site(aiohttp_client, org_db, clock)
    assert (await real.client.get("/", allow_redirects=False)).headers["Location"] == "/m/"
    demo = await _site(aiohttp_client, org_db, clock, demo=True)
    assert (await demo.client.get("/", allow_redirects=False)).headers["Location"] == "/console"


async def test_the_demo_picks_a_person(aiohttp_client: Any, org_db: Database, clock: ManualClock):
    site = await _site(aiohttp_client, org_db, clock, demo=True)
    page = await (await site.client.get("/m/sign-in?next=/m/r/1")).text()
    assert "孙丽" in page and 'name=next value="/m/r/1"' in page
    picked = await site.client.post(
        "/m/sign-in", data={"user": "u_sun", "next": "//evil.example"}, allow_redirects=False
    )
    assert picked.status == 303 and picked.headers["Location"] == "/m/"
    found = await site.app[SESSIONS].get(picked.cookies["oabot_session"].value)
    assert found is not None and found[1].id == "u_sun" and found[0].via == "demo"
    assert (await site.client.get("/console", allow_redirects=False)).status == 200  # picker unchanged


async def test_the_picker_is_only_for_the_demo(aiohttp_client: Any, org_db: Database, clock: ManualClock):
    site = await _site(aiohttp_client, org_db, clock)
    assert (await site.client.post("/m/sign-in", data={"user": "u_zhao"})).status == 404
    assert await site.app[WORKFLOW].org()  # the org is there; only the picker is off


def test_serve_warns_when_the_console_is_on_in_a_real_deployment():
    warning = console_warning(Settings(console=True))
    assert warning is not None and "org admin" in warning and "admin or hr_manager" in warning
    assert console_warning(Settings(console=True, demo=True)) is None
    assert console_warning(Settings()) is None
