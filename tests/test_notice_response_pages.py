"""The RSVP, poll and attendance pages over HTTP: signed-in people only, a form without this
session's CSRF token changes nothing, bad input is refused in words (never a 500), the CSV
downloads with a BOM and a Chinese file name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from bot.app import create_app
from bot.keys import DB, NOTICE_RESPONSES, NOTICES, SESSIONS
from notices.model import Audience, Meeting, NoticeKind, Poll, Question, RsvpAnswer
from services.notices import NoticeDraft
from tests.conftest import settings_for

PEOPLE = ("u_zhang", "u_li", "u_wang")


async def _setup(org_db: Any, aiohttp_client: Any, clock: Any) -> tuple[Any, Any, str, str]:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    starts = clock.now() + timedelta(days=1)
    meeting = await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.MEETING,
            title="安全例会",
            audience=Audience(people=PEOPLE),
            meeting=Meeting(
                starts_at=starts, ends_at=starts + timedelta(hours=1), place="一楼", organiser="u_sun"
            ),
        ),
    )
    poll = await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.POLL,
            title="班车调查",
            audience=Audience(people=PEOPLE),
            poll=Poll(questions=(Question("q1", "是否乘坐班车", False, ("是", "否")),)),
        ),
    )
    return app, client, meeting.id, poll.id


async def _sign_in(app: Any, client: Any, person: str) -> str:
    session = await app[SESSIONS].start(person, via="test")
    client.session.cookie_jar.update_cookies({"oabot_session": session.id})
    return str(session.csrf)


async def test_pages_need_a_signed_in_person(org_db: Any, aiohttp_client: Any, clock: Any) -> None:
    app, client, meeting_id, poll_id = await _setup(org_db, aiohttp_client, clock)
    for path in (f"/m/n/{meeting_id}/rsvp", f"/m/n/{poll_id}/poll", f"/m/n/{meeting_id}/attendance.csv"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/m/sign-in")


async def test_forms_without_the_csrf_token_change_nothing(
    org_db: Any, aiohttp_client: Any, clock: Any
) -> None:
    app, client, meeting_id, poll_id = await _setup(org_db, aiohttp_client, clock)
    await _sign_in(app, client, "u_li")
    resp = await client.post(f"/m/n/{meeting_id}/rsvp", data={"answer": "attend"})
    assert resp.status == 403
    resp = await client.post(f"/m/n/{poll_id}/poll", data={"q-q1": "0", "csrf": "forged"})
    assert resp.status == 403
    att = await app[NOTICE_RESPONSES].attendance("u_sun", meeting_id)
    assert att.attending == [] and (await app[NOTICE_RESPONSES].results("u_sun", poll_id)).voters == 0


async def test_bad_input_is_refused_in_words(org_db: Any, aiohttp_client: Any, clock: Any) -> None:
    app, client, meeting_id, poll_id = await _setup(org_db, aiohttp_client, clock)
    csrf = await _sign_in(app, client, "u_li")
    resp = await client.post(f"/m/n/{meeting_id}/rsvp", data={"csrf": csrf, "answer": "maybe"})
    assert resp.status == 200 and "请选择参加、不参加、请假或委派他人参加" in await resp.text()
    resp = await client.post(
        f"/m/n/{meeting_id}/rsvp", data={"csrf": csrf, "answer": "delegate", "delegate": "<x>"}
    )
    body = await resp.text()
    assert resp.status == 200 and "委派的人必须是本单位在职人员" in body and "<x>" not in body
    resp = await client.post(f"/m/n/{poll_id}/poll", data={"csrf": csrf, "q-q1": ["abc", "99999999"]})
    assert resp.status == 200 and "请回答「是否乘坐班车」" in await resp.text()
    resp = await client.post(f"/m/n/{poll_id}/poll", data={"csrf": csrf, "q-q1": "7"})
    assert resp.status == 200 and "没有这个选项" in await resp.text()
    # digits that are not 0-9 (superscript two, Arabic-Indic three) are dropped, never a 500
    resp = await client.post(f"/m/n/{poll_id}/poll", data={"csrf": csrf, "q-q1": ["²", "\u0663"]})
    assert resp.status == 200 and "请回答「是否乘坐班车」" in await resp.text()
    for path in (f"/m/n/{poll_id}/rsvp", f"/m/n/{meeting_id}/poll", "/m/n/n20991231-00000000/poll"):
        resp = await client.get(path)
        assert resp.status in (404, 409) and "<h1>无法查看</h1>" in await resp.text()
    resp = await client.get(f"/m/n/{meeting_id}/attendance")
    assert resp.status == 403 and "只有会议组织人" in await resp.text()
    assert (await app[NOTICE_RESPONSES].results("u_sun", poll_id)).voters == 0


async def test_the_attendance_csv_downloads_for_excel(org_db: Any, aiohttp_client: Any, clock: Any) -> None:
    app, client, meeting_id, _ = await _setup(org_db, aiohttp_client, clock)
    await app[NOTICE_RESPONSES].rsvp("u_li", meeting_id, RsvpAnswer.LEAVE, reason="年假")
    await _sign_in(app, client, "u_sun")
    resp = await client.get(f"/m/n/{meeting_id}/attendance.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert unquote(resp.headers["Content-Disposition"]).endswith("参会名单-安全例会.csv")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.splitlines()[0] == "姓名,部门,回执,原因,委派给,受谁委派,回执时间"
    assert "李娜,总经理办公室,请假,年假" in text


async def test_a_poll_with_an_access_password_asks_for_it(
    org_db: Any, aiohttp_client: Any, clock: Any
) -> None:
    app = create_app(settings_for(org_db), clock=clock)
    client = await aiohttp_client(app)
    notice = await app[NOTICES].create(
        author="u_sun",
        draft=NoticeDraft(
            kind=NoticeKind.POLL,
            title="薪酬意见调查",
            audience=Audience(people=PEOPLE),
            poll=Poll(questions=(Question("q1", "是否满意", False, ("满意", "不满意")),)),
            password="pw-2026-safe",
        ),
    )
    path = f"/m/n/{notice.id}/poll"
    csrf = await _sign_in(app, client, "u_li")
    resp = await client.get(path)
    body = await resp.text()
    assert resp.status == 200 and "请输入密码" in body and "是否满意" not in body
    resp = await client.post(path, data={"csrf": csrf, "q-q1": "0"})  # a ballot without it
    assert "是否满意" not in await resp.text()
    resp = await client.post(path, data={"csrf": csrf, "do": "unlock", "password": "wrong"})
    assert "访问密码不正确" in await resp.text()
    resp = await client.post(path, data={"csrf": csrf, "do": "unlock", "password": "pw-2026-safe"})
    assert "是否满意" in await resp.text()
    resp = await client.post(path, data={"csrf": csrf, "password": "pw-2026-safe", "q-q1": "1"})
    body = await resp.text()
    assert "已提交，结果如下" in body and "1 票 100%" in body
    assert (await app[NOTICE_RESPONSES].results("u_sun", notice.id)).voters == 1


async def test_a_delegate_joins_through_the_notice_service(
    org_db: Any, aiohttp_client: Any, clock: Any
) -> None:
    from storage import notice_store

    app, client, meeting_id, _ = await _setup(org_db, aiohttp_client, clock)
    csrf = await _sign_in(app, client, "u_li")
    resp = await client.post(
        f"/m/n/{meeting_id}/rsvp", data={"csrf": csrf, "answer": "delegate", "delegate": "u_zhao"}
    )
    assert resp.status == 200 and "已回执：委派 赵敏 参加，已通知对方" in await resp.text()
    async with app[DB].session() as s:
        receipts = {r.person: r for r in await notice_store.receipts_of(s, notice_id=meeting_id)}
        trail = [
            e for e in await notice_store.events_of(s, notice_id=meeting_id) if e.kind.value == "delegated"
        ]
    assert receipts["u_zhao"].added_by == "u_li" and len(trail) == 1
