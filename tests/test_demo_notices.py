"""`oabot serve --demo` publishes the demo's notices through the notice service: a 通知 to a
department, a 会议通知 on the next working day and a 调查, written by the office (赵敏), once
whatever the number of starts; the console and the API show them at once."""

from __future__ import annotations

import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from approvals.clock import ManualClock
from bot.keys import NOTICES
from bot.notice_demo import DEMO_MEETING_TITLE, DEMO_NOTICE_TITLE, DEMO_POLL_TITLE, ready_demo_notices
from notices.model import NoticeKind, NoticeStatus
from tests.conftest import Api
from tests.test_cli_serve import Server, clean_env, free_port

SH = ZoneInfo("Asia/Shanghai")
TITLES = {DEMO_NOTICE_TITLE: "notice", DEMO_MEETING_TITLE: "meeting", DEMO_POLL_TITLE: "poll"}


def test_the_demo_shows_its_three_notices_once_after_two_starts(tmp_path: Path) -> None:
    for start in (1, 2):
        port = free_port()
        server = Server(["--demo", "--port", str(port)], tmp_path, clean_env())
        try:
            line = server.wait_for_line("oabot is ready")
            if start == 2:
                token = line.rsplit("API token: ", 1)[1].rstrip(")")
                base = f"http://127.0.0.1:{port}"
                headers = {"Authorization": f"Bearer {token}"}
                sent = httpx.get(
                    f"{base}/api/v1/notices", params={"person": "u_zhao", "box": "sent"}, headers=headers
                ).json()
                assert sorted((i["title"], i["kind"]) for i in sent["items"]) == sorted(TITLES.items())
                assert {i["status"] for i in sent["items"]} == {"published"}
                inbox = httpx.get(
                    f"{base}/api/v1/notices", params={"person": "u_wang"}, headers=headers
                ).json()
                assert sorted(i["title"] for i in inbox["items"]) == sorted(TITLES)
                # the leader of 行政服务部 has all three cards in the console's chat
                deadline = time.monotonic() + 15
                while True:
                    chat = httpx.get(f"{base}/console/u/u_wang", timeout=5).text
                    if all(t in chat for t in TITLES) or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                assert all(chat.count(f"nt{i['id']}-") >= 1 for i in sent["items"]), chat[-2000:]
            assert server.stop(signal.SIGTERM)[0] == 0
        finally:
            server.close()
        assert "Traceback" not in server.logs()
    with sqlite3.connect(tmp_path / "var" / "demo.db") as conn:
        rows = conn.execute("SELECT title, COUNT(*) FROM notices GROUP BY title").fetchall()
    assert sorted(rows) == sorted((t, 1) for t in TITLES)


async def test_demo_notices_go_out_through_the_service_once(api: Api, clock: ManualClock) -> None:
    first = await ready_demo_notices(api.app)  # type: ignore[arg-type]
    again = await ready_demo_notices(api.app)  # type: ignore[arg-type]

    assert len(first) == 3 and again == []
    service = api.app[NOTICES]  # type: ignore[index]
    sent = await service.list_authored(author="u_zhao")
    assert sorted(s.title for s in sent) == sorted(TITLES)
    views = {s.kind: await service.get(viewer="u_zhao", notice_id=s.id) for s in sent}
    assert all(v.status == NoticeStatus.PUBLISHED and v.author_name == "赵敏" for v in views.values())
    notice, meeting, poll = views[NoticeKind.NOTICE], views[NoticeKind.MEETING], views[NoticeKind.POLL]
    assert notice.audience_text.startswith("行政服务部") and notice.total == 3
    assert meeting.meeting is not None and meeting.total == 5  # every other department's leader
    # the clock says Monday 2026-11-23 10:00: the meeting is on Tuesday, the poll closes Thursday
    assert meeting.meeting.starts_at.astimezone(SH) == datetime(2026, 11, 24, 10, 0, tzinfo=SH)
    assert poll.poll is not None and poll.poll.closes_at is not None
    assert poll.poll.closes_at.astimezone(SH).date() == datetime(2026, 11, 26, tzinfo=SH).date()
    assert poll.total == 10  # everyone but the author
    inbox = await service.list_for(person="u_chen")
    assert sorted(s.title for s in inbox) == sorted([DEMO_NOTICE_TITLE, DEMO_POLL_TITLE])
