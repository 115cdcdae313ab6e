"""Hostile text stays text on every page: script tags, attribute breakouts and template syntax
stored in every name (organisation, departments, people, titles, sites), every free-text form
field, comments, a delegation reason and check-in addresses come back escaped and inert from
the console (home, chats, card feeds, template list, forms, request pages with their trail)
and from the check-in and team pages."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import pytest
import yaml

from bot.app import create_app
from bot.keys import CHECKINS, CONSOLE, DB
from bot.web.templating import static_text
from checkins.links import LinkClaims, sign_link
from org.loader import parse_org_yaml
from services.console import ConsoleMessage
from storage.db import Database
from storage.org_repo import import_org
from tests.conftest import DEMO_ORG, Api, settings_for

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
TEMPLATE_SYNTAX = "{{7*7}}"
PAYLOADS = (SCRIPT, BREAKOUT, TEMPLATE_SYNTAX)
ALL = "".join(PAYLOADS)

# A template whose every free-text kind (text, textarea, list, a location's address) is filled
# with the payloads, and whose own wording carries them too.
PROBE = {
    "key": "probe",
    "name": f"探针{SCRIPT}",
    "category": f"测试{TEMPLATE_SYNTAX}",
    "description": f"说明{BREAKOUT}",
    "title": "探针 · {subject}",
    "summary_fields": ["subject", "details", "items", "kind", "place"],
    "fields": [
        {"key": "subject", "label": f"主题{SCRIPT}", "type": "text", "required": True, "help": ALL},
        {"key": "details", "label": f"说明{BREAKOUT}", "type": "textarea", "required": True},
        {"key": "items", "label": f"清单{TEMPLATE_SYNTAX}", "type": "list"},
        {"key": "kind", "label": "类别", "type": "select", "options": list(PAYLOADS)},
        {"key": "place", "label": "地点", "type": "location"},
        {"key": "amount", "label": "金额", "type": "money"},
        {"key": "watchers", "label": "知会", "type": "users"},
        {"key": "owner", "label": "负责人", "type": "user"},
        {"key": "dept", "label": "部门", "type": "department"},
    ],
    "steps": [{"key": "manager", "name": f"领导审批{TEMPLATE_SYNTAX}", "approvers": [{"manager": 1}]}],
}
PROBE_FORM = {
    "subject": f"主题值{SCRIPT}",
    "details": f"详情{ALL}",
    "items": "\n".join(f"文件{p}" for p in PAYLOADS),
    "kind": TEMPLATE_SYNTAX,
    "place.address": f"地址{ALL}",
    "place.lat": "31.2215",
    "place.lng": "121.5440",
    "amount": "12",
}
OUTING = {
    "destination": {"address": f"外出地址{ALL}", "lat": 31.2215, "lng": 121.5440},
    "start": "2026-11-23T10:30:00+08:00",
    "end": "2026-11-23T16:00:00+08:00",
    "reason": f"外出事由{ALL}",
}


def hostile_org_yaml() -> str:
    """The demo org with a payload after every name, title and site name."""
    data = yaml.safe_load(DEMO_ORG.read_text(encoding="utf-8"))
    data["organization"] += SCRIPT
    for i, part in enumerate(data["departments"] + data["users"] + data["sites"]):
        part["name"] += PAYLOADS[i % len(PAYLOADS)]
        if "title" in part:
            part["title"] += PAYLOADS[(i + 1) % len(PAYLOADS)]
    return yaml.safe_dump(data, allow_unicode=True)


ORG = parse_org_yaml(hostile_org_yaml())
PEOPLE = [u.name for u in ORG.users.values()] + [d.name for d in ORG.departments.values()]


class Tags(HTMLParser):
    """Every element and attribute the browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


OUR_SCRIPTS = {"", static_text("checkin.js")}


def assert_inert(page: str, where: str) -> None:
    """No payload turned into markup: no injected element, handler or script."""
    assert "<script>alert" not in page, where
    assert "<img src=x" not in page and '"><img' not in page, where
    parsed = Tags()
    parsed.feed(page)
    assert not [t for t, _ in parsed.tags if t in ("img", "iframe", "svg")], where
    handlers = [name for _, attrs in parsed.tags for name, _ in attrs if name.startswith("on")]
    assert not handlers, (where, handlers)
    srcs = {dict(a).get("src") for t, a in parsed.tags if t == "script"}
    assert srcs <= {None, "/console/static/console.js"}, (where, srcs)
    assert all(s in OUR_SCRIPTS for s in parsed.scripts), where


def assert_shows(page: str, where: str, *texts: str) -> None:
    """Each text is on the page as text: escaped in the markup, and not evaluated as a template."""
    shown = html.unescape(page)
    for text in texts:
        assert text in shown, (where, text)
        if TEMPLATE_SYNTAX in text and text != TEMPLATE_SYNTAX:  # "49" alone may be in any id
            assert text.replace(TEMPLATE_SYNTAX, "49") not in shown, (where, text)
    if SCRIPT in "".join(texts):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, where
    if BREAKOUT in "".join(texts):
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page, where


@pytest.fixture
async def hostile_db(db: Database) -> Database:
    async with db.transaction() as session:
        await import_org(session, ORG, now=datetime.now(UTC))
    return db


@pytest.fixture
async def hostile(hostile_db: Database, aiohttp_client: Any, clock: Any, tmp_path: Path) -> Api:
    (tmp_path / "probe.yaml").write_text(yaml.safe_dump(PROBE, allow_unicode=True), encoding="utf-8")
    settings = settings_for(hostile_db, console=True, templates_dir=str(tmp_path))
    app = create_app(settings, clock=clock)
    return Api(await aiohttp_client(app), app)


async def get(api: Api, path: str) -> str:
    resp = await api.client.get(path)  # type: ignore[attr-defined]
    assert resp.status == 200, (path, resp.status)
    text: str = await resp.text()
    return text


def texts_of(message: ConsoleMessage) -> list[str]:
    """What a console message shows: a bubble's text, a card's title and field values."""
    card = message.payload.get("card") or {}
    if message.kind == "task_card":
        return [card.get("title", "")] + [str(f["value"]) for f in card.get("fields", [])]
    if message.kind == "checkin_card":
        return [str(f["value"]) for f in card.get("fields", [])]
    return [message.text]


async def fill_everything(api: Api) -> dict[str, str]:
    """Requests, comments, a delegation, typed text and check-ins, all carrying the payloads."""
    client: Any = api.client
    resp = await client.post("/console/u/u_wu/new/probe", data=PROBE_FORM, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    (probe,) = [r for r in (await api.call("GET", "/requests?initiator=u_wu"))[1]["items"]]  # type: ignore[index]
    await api.call(
        "POST",
        f"/requests/{probe['id']}/actions",
        {"action": "comment", "actor": "u_wu", "comment": f"评论{ALL}"},
        expect=200,
    )
    await api.decide("u_sun", comment=f"同意意见{ALL}")
    outing = await api.submit("outing", "u_wu", OUTING)
    await api.decide("u_sun", comment=f"外出意见{ALL}")
    await api.call(
        "POST",
        "/delegations",
        {
            "delegator": "u_zhou",
            "delegate": "u_zheng",
            "ends_at": "2026-11-30T18:00:00+08:00",
            "reason": f"出差{ALL}",
        },
        expect=201,
    )
    await api.call(
        "POST",
        "/checkins",
        {"user": "u_wu", "lat": 31.2215, "lng": 121.5440, "coord_system": "gcj02", "label": f"签到地址{ALL}"},
        expect=201,
    )
    await client.post("/console/u/u_wu/say", data={"text": f"你好{ALL}"}, allow_redirects=False)
    await api.drain()
    return {"probe": probe["id"], "outing": outing["id"]}


async def test_every_page_shows_hostile_text_escaped_and_inert(hostile: Api) -> None:
    app: Any = hostile.app
    ids = await fill_everything(hostile)
    pages: dict[str, str] = {}

    home = pages["/console"] = await get(hostile, "/console")
    assert_shows(home, "/console", ORG.name, *PEOPLE)

    # every chat: bubbles, task cards and trip cards as the console delivery wrote them
    shown_messages = 0
    for uid in ORG.users:
        for path in (f"/console/u/{uid}", f"/console/u/{uid}/feed"):
            pages[path] = await get(hostile, path)
        for message in await app[CONSOLE].history(uid):
            hostile_texts = [t for t in texts_of(message) if any(p in t for p in PAYLOADS)]
            assert_shows(pages[f"/console/u/{uid}"], f"{uid}: {message.kind}", *hostile_texts)
            shown_messages += bool(hostile_texts)
    assert shown_messages >= 5

    pages["templates"] = await get(hostile, "/console/u/u_wu/new")
    assert_shows(pages["templates"], "templates", PROBE["name"], PROBE["category"], PROBE["description"])
    form = pages["form"] = await get(hostile, "/console/u/u_wu/new/probe")
    assert_shows(form, "form", ALL, f"主题{SCRIPT}", f"说明{BREAKOUT}", f"清单{TEMPLATE_SYNTAX}", *PEOPLE)
    refused = await hostile.client.post(  # type: ignore[attr-defined]
        "/console/u/u_wu/new/probe", data={**PROBE_FORM, "amount": "很多"}
    )
    pages["refused form"] = await refused.text()
    assert "表单有误" in pages["refused form"]
    assert_shows(pages["refused form"], "refused form", PROBE_FORM["subject"], PROBE_FORM["details"])
    assert_shows(pages["refused form"], "refused form", *PROBE_FORM["items"].split("\n"))

    for key, request_id in ids.items():
        page = pages[key] = await get(hostile, f"/console/requests/{request_id}?as=u_wu")
        assert_shows(page, key, ORG.users["u_wu"].name, ORG.users["u_sun"].name)
    assert_shows(pages["probe"], "probe", f"评论{ALL}", f"同意意见{ALL}", f"领导审批{TEMPLATE_SYNTAX}")
    assert_shows(pages["outing"], "outing", f"外出意见{ALL}", f"外出事由{ALL}")

    # the trip card's link opens the check-in page; the manager's team page lists the check-in
    (trip_card,) = [m for m in await app[CONSOLE].history("u_wu") if m.kind == "checkin_card"]
    link = urlsplit(trip_card.payload["card"]["buttons"][0]["url"]).path
    pages["checkin"] = await get(hostile, f"{link}?as=u_wu")
    assert_shows(pages["checkin"], "checkin", ORG.users["u_wu"].name, f"外出地址{ALL}")
    service = app[CHECKINS]
    async with app[DB].transaction() as session:
        secret = await service.secret(session)
    team_link = sign_link(
        secret,
        LinkClaims(user="u_sun", trip="*", kind="team", expires_at=service.now() + timedelta(hours=1)),
    )
    pages["team"] = await get(hostile, f"/checkins/team/{team_link}?date=2026-11-23")
    pages["console team"] = await get(hostile, "/console/u/u_sun/checkins")
    for key in ("team", "console team"):
        assert_shows(pages[key], key, ORG.users["u_wu"].name, ORG.users["u_sun"].name)
        assert f"签到地址{ALL}" in html.unescape(pages[key]) or f"外出地址{ALL}" in html.unescape(pages[key])

    for where, page in pages.items():
        assert_inert(page, where)


async def test_the_escaping_check_catches_a_page_without_autoescape(hostile: Api) -> None:
    """The guard above can fail: with autoescape off, the hostile home page is caught."""
    aiohttp_jinja2.get_env(hostile.app).autoescape = False  # type: ignore[arg-type]
    page = await get(hostile, "/console")
    with pytest.raises(AssertionError):
        assert_inert(page, "/console without autoescape")
