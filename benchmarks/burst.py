"""Benchmark: a burst of 100 new tasks for one person, and what reaches their phone.

    python benchmarks/burst.py                                   # SQLite + in-process store
    python benchmarks/burst.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/15                        # PostgreSQL + Redis
    python benchmarks/burst.py --crash-window                    # also DingTalk's at-least-once window

Starts the fake WeCom (which, like WeCom, delivers at most 30 messages a minute to one member and
silently drops the rest) and the real `oabot serve`, submits 100 vehicle requests within about a
second (all go to 王芳 first), watches for `--watch` seconds (default 75, so the coalesced
digest, due once the first minute has passed, is included) and prints: messages to her in the
first minute and in any 60 s window, cards sent, digests and how many tasks they list, the
coalesced count from /metrics, and how many messages WeCom would have dropped (the goal is 0).

`--crash-window`: DingTalk has no duplicate check for robot texts, so a crash after DingTalk
accepted a text and before its send marker is committed sends it again. The window is the time
from DingTalk's answer to the marker's commit; measured here over 300 texts on the database.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bot.app import open_database  # noqa: E402
from bot.platforms.dingtalk.delivery import DingTalkDelivery  # noqa: E402
from bot.settings import DingTalkSettings  # noqa: E402
from notifications.delivery import OutgoingMessage  # noqa: E402
from org.model import User  # noqa: E402
from storage.kv_memory import MemoryStore  # noqa: E402
from tests.conftest import create_pg_schema, create_tables, drop_pg_schema  # noqa: E402
from tests.e2e_harness import ServerProcess, base_env  # noqa: E402
from tests.fake_wecom import FakeWeCom  # noqa: E402

CORP_ID, AGENT_ID, SECRET = "ww0bench0123456789", 1000002, "bench-secret"
TOKEN, AES_KEY = "benchToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
API_TOKEN = "e2e-token-0123456789"
VEHICLE = {
    "destination": "浦东项目现场",
    "depart_at": "2026-11-24T09:00:00+08:00",
    "return_at": "2026-11-24T17:00:00+08:00",
    "passengers": 3,
    "reason": "现场勘查",
}


def most_in_a_minute(times: list[float]) -> int:
    return max((sum(1 for u in times if t <= u < t + 60.0) for t in times), default=0)


async def submit_all(base_url: str, n: int) -> float:
    started = time.perf_counter()
    sem = asyncio.Semaphore(10)
    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> None:
            async with sem:
                resp = await http.post(
                    f"{base_url}/api/v1/requests",
                    json={"template": "vehicle_dispatch", "initiator": "u_wu", "form": VEHICLE},
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                )
                assert resp.status_code == 201, resp.text

        await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - started


async def coalesced_metric(base_url: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{base_url}/metrics")).text
    found = re.findall(
        r'^oabot_outbox_send_limited_total\{channel="wecom",event="coalesced"\} (\S+)$', text, re.M
    )
    return float(found[0]) if found else 0.0


async def burst(args: argparse.Namespace) -> None:
    wecom = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    tmp = Path(tempfile.mkdtemp(prefix="oabot-burst-"))
    schema = None
    if args.url:
        schema = await create_pg_schema(args.url)
        url = f"{args.url}?options=-csearch_path%3D{schema}"
        extra = {"OABOT_REDIS_URL": args.redis, "OABOT_REDIS_PREFIX": f"burst:{uuid.uuid4().hex[:8]}:"}
        extra = {k: v for k, v in extra.items() if v and args.redis}
    else:
        url, extra = f"sqlite+aiosqlite:///{tmp / 'burst.db'}", {}
    env = base_env(
        url,
        **extra,
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
    )
    server = await ServerProcess(env, tmp).start()
    try:
        took = await submit_all(server.base_url, args.tasks)
        print(
            f"store: {'PostgreSQL' if args.url else 'SQLite'}; {args.tasks} tasks submitted in {took:.2f} s"
        )
        await asyncio.sleep(args.watch)
        coalesced = await coalesced_metric(server.base_url)
    finally:
        await server.stop()
        await wecom.stop()
        if schema and args.url:
            await drop_pg_schema(args.url, schema)
    mine = [
        (b, at)
        for b, at in zip(wecom.delivered, wecom.delivered_at, strict=True)
        if b["touser"] == "wangfang"
    ]
    times = [at for _, at in mine]
    first = [t for t in times if times and t < times[0] + 60.0]
    cards = [b for b, _ in mine if b["msgtype"] == "template_card"]
    digests = [
        b["text"]["content"]
        for b, _ in mine
        if b["msgtype"] == "text" and b["text"]["content"].startswith("您有")
    ]
    listed = sum(int(re.match(r"您有 (\d+) 条新待办", d).group(1)) for d in digests)  # type: ignore[union-attr]
    print(f"messages to 王芳 in the first minute:   {len(first)}")
    print(f"most in any 60 s window:               {most_in_a_minute(times)} (WeCom's limit: 30)")
    print(f"cards sent:                            {len(cards)}")
    print(f"digests sent / tasks listed in them:   {len(digests)} / {listed}")
    print(f"coalesced (oabot_outbox_send_limited): {coalesced:.0f}")
    print(f"cards + listed:                        {len(cards) + listed} of {args.tasks}")
    print(f"dropped by WeCom over its limit:       {len(wecom.dropped_over_limit)}")
    print(f"dropped by WeCom as duplicates:        {len(wecom.duplicates_dropped)}")
    if digests:
        print(f"last message {times[-1] - times[0]:.1f} s after the first")


class AnsweringClient:
    """Stands in for the DingTalk client: answers at once and notes when."""

    robot_code = "dingbench"

    def __init__(self) -> None:
        self.answered_at = 0.0

    async def api(self, method: str, path: str, body: Any) -> dict[str, Any]:
        self.answered_at = time.perf_counter()
        return {"processQueryKey": "k", "invalidStaffIdList": [], "flowControlledStaffIdList": []}


async def crash_window(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="oabot-window-"))
    schema = await create_pg_schema(args.url) if args.url else None
    url = (
        f"{args.url}?options=-csearch_path%3D{schema}" if args.url else f"sqlite+aiosqlite:///{tmp / 'w.db'}"
    )
    db = open_database(url)
    try:
        await create_tables(db)
        client = AnsweringClient()
        settings = DingTalkSettings(app_key="k", app_secret="s")
        delivery = DingTalkDelivery(client, db, MemoryStore(), settings, lambda: datetime.now(UTC))  # type: ignore[arg-type]
        user = User(id="u_wang", name="王芳", department="d", accounts={"dingtalk": "010003"})
        windows = []
        for i in range(300):
            message = OutgoingMessage(i + 1, "result", "u_wang", None, None, {"text": f"您的申请已通过 {i}"})
            await delivery.deliver(message, user)
            windows.append((time.perf_counter() - client.answered_at) * 1000)
    finally:
        await db.dispose()
        if schema and args.url:
            await drop_pg_schema(args.url, schema)
    windows.sort()
    print(
        f"DingTalk at-least-once window ({'PostgreSQL' if args.url else 'SQLite'}, 300 texts): "
        f"p50 {statistics.median(windows):.2f} ms, p99 {windows[int(len(windows) * 0.99) - 1]:.2f} ms, "
        f"max {windows[-1]:.2f} ms (a kill -9 inside it sends that text twice)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="PostgreSQL URL (default: SQLite in a temporary directory)")
    parser.add_argument("--redis", help="Redis URL for the key-value store (with --url)")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--watch", type=float, default=75.0, help="seconds to watch after submitting")
    parser.add_argument("--crash-window", action="store_true", help="also measure DingTalk's window")
    parser.add_argument("--skip-burst", action="store_true", help="only the crash window")
    args = parser.parse_args()
    if not 1 <= args.tasks <= 1000 or not 5 <= args.watch <= 600:
        parser.error("--tasks must be 1-1000 and --watch 5-600 seconds")
    if not args.skip_burst:
        asyncio.run(burst(args))
    if args.crash_window or args.skip_burst:
        asyncio.run(crash_window(args))


if __name__ == "__main__":
    main()
