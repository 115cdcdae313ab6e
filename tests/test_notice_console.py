"""Notice cards in the console (the demo's chat simulator): the card reads as a notice (kind, title,
who published it, the deadline; a restricted item its title only), 已收到 works from the card and
updates it in place, a second tap changes nothing, and 查看 opens the notice page."""

from __future__ import annotations

import re
from typing import Any

from bot.app import create_app
from bot.keys import DISPATCHER, NOTICES
from notices.model import Audience, Confidentiality, NoticeKind
from services.notices import NoticeDraft
from storage.db import Database
from tests.conftest import settings_for

FORM = re.compile(r'<form method=post action="/console/u/(\w+)/tap">(.*?)</form>', re.S)


async def _publish(app: Any, **changes: Any) -> Any:
    draft = NoticeDraft(
        kind=NoticeKind.NOTICE,
        title=changes.pop("title", "关于年底安全检查的通知"),
        audience=Audience(people=("u_wu", "u_chen")),
        body=changes.pop("body", "请各位于本周五前完成办公区域的安全自查。"),
        **changes,
    )
    return await app[NOTICES].create(author="u_sun", draft=draft, channel="web")


def _card(html: str, notice_id: str) -> str:
    """The notice's card in the chat: from its marker to the next message."""
    found = re.search(rf'data-kind=notice_card><div class=card data-task="nt{notice_id}-\d+"', html)
    assert found, html[-3000:]
    rest = html[found.start() :]
    following = rest.find('<div class="msg', 1)
    return rest if following < 0 else rest[:following]


async def test_a_notice_card_in_the_console_reads_well_and_its_button_acknowledges(
    org_db: Database, aiohttp_client: Any, clock: Any
) -> None:
    app = create_app(settings_for(org_db, console=True), clock=clock)
    client = await aiohttp_client(app)
    notice = await _publish(app)
    await app[DISPATCHER].drain()

    html = await (await client.get("/console/u/u_wu")).text()
    card = _card(html, notice.id)
    assert "通知" in card and "关于年底安全检查的通知" in card and "孙丽" in card
    assert "确认期限" in card and "当前步骤" not in card and "None" not in card
    assert re.search(r'href="[^"]*/m/l/[^"]+"', card)  # 查看: the person's own link to the page
    (uid, form), *_ = FORM.findall(card)
    fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', form))
    assert uid == "u_wu" and fields["action"] == "notice_ack"

    resp = await client.post("/console/u/u_wu/tap", data=fields, allow_redirects=False)
    assert resp.status == 303
    await client.post("/console/u/u_wu/tap", data=fields, allow_redirects=False)  # WeCom-style retry
    await client.post("/console/u/u_wu/tap", data={**fields, "event_id": "again"}, allow_redirects=False)
    await app[DISPATCHER].drain()

    progress = await app[NOTICES].receipts(viewer="u_sun", notice_id=notice.id)
    assert progress.acknowledged == 1
    mine = next(r for r in progress.receipts if r.person == "u_wu")
    assert mine.acknowledged_via == "console"
    html = await (await client.get("/console/u/u_wu")).text()
    card = _card(html, notice.id)
    assert 'data-closed="1"' in card and "已收到" in card and "<form" not in card


async def test_a_restricted_notice_card_shows_the_title_only(
    org_db: Database, aiohttp_client: Any, clock: Any
) -> None:
    app = create_app(settings_for(org_db, console=True), clock=clock)
    client = await aiohttp_client(app)
    notice = await _publish(
        app, title="薪酬调整方案", body="明年起调整绩效系数。", confidentiality=Confidentiality.SECRET
    )
    await app[DISPATCHER].drain()

    card = _card(await (await client.get("/console/u/u_chen")).text(), notice.id)
    assert "薪酬调整方案" in card and "秘密" in card and "绩效系数" not in card
