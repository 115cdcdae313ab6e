"""Benchmark: how fast callbacks are acknowledged while work is going on.

    python benchmarks/acks.py                 # both parts, 3 interleaved rounds of part 1
    python benchmarks/acks.py --rounds 1      # a quick look

Part 1 (PostgreSQL + Redis, role all): the fake WeCom API answers every call after 3 s. Each
round submits `--flows` approval requests through the API (their cards go out through the slow
API) and, while they run, sends `--callbacks` distinct signed text callbacks at 20 concurrent
connections (each one's reply also goes through the slow API). It prints the acks' p50/p99/max
next to the naive reference server's (benchmarks/intake.py --naive) for the same callbacks in the
same round.

Part 2 (SQLite + in-process, role all): each round submits `--clicks` requests (default 200)
from 20 people with 20 different managers (the demo org plus bench staff, so that no approver
gets over the 30 cards a minute that would be coalesced), the fake API (fast this time) records
their cards, and each card gets one 同意 click, 20 at a time. It prints the clicks' ack
p50/p99/max next to the naive server's for the same bodies (medians of `--rounds`), and how long
the worker took to decide them all (the decision happens after the ack).
"""

# The benchmark runs servers and load as subprocesses; its own loop blocking on them is harmless.
# ruff: noqa: ASYNC110, ASYNC220, ASYNC221, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import yaml  # noqa: E402
from aiohttp import web  # noqa: E402
from intake import (  # noqa: E402
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    ROOT,
    TOKEN,
    Spy,
    callbacks,
    drive,
    free_port,
    start_oabot,
    wait_ready,
)

from bot.platforms.wecom.crypto import WeComCrypto  # noqa: E402

API_TOKEN = "bench-api-token-0123456789"
SEAL_FORM = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2027-01-15T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


class FakeApi:
    """Answers every WeCom call after `delay_s`; keeps the cards sent."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.cards: list[dict[str, Any]] = []

    async def answer(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.method == "POST" and request.path.endswith("/message/send"):
            try:
                body = await request.json()
            except ConnectionResetError:  # oabot stopped while waiting for the slow answer
                return web.Response(status=499)
            if "template_card" in body:
                self.cards.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": "t", "expires_in": 7200})

    async def start(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner


async def submit(base: str, n: int, initiator: str = "u_wu") -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        sem = asyncio.Semaphore(4)

        async def one() -> None:
            async with sem:
                r = await client.post(
                    "/api/v1/requests",
                    json={"template": "seal_use", "initiator": initiator, "form": SEAL_FORM},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"submit: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one() for _ in range(n)))


def clicks(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(query, body) of one 同意 click on each card."""
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    ts = str(int(time.time()))
    out = []
    for i, card in enumerate(cards):
        tc = card["template_card"]
        key = next(b["key"] for b in tc["button_list"] if "key" in b)
        inner = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{card['touser']}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
            f"<TaskId><![CDATA[{tc['task_id']}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
            f"<ResponseCode><![CDATA[rc{uuid.uuid4().hex}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID></xml>"
        )
        nonce = f"c{i}{uuid.uuid4().hex[:6]}"
        sealed = crypto.seal(inner, ts, nonce)
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
            f"<Encrypt><![CDATA[{sealed.encrypted}]]></Encrypt></xml>"
        )
        out.append((f"msg_signature={sealed.signature}&timestamp={ts}&nonce={nonce}", body))
    return out


def show(name: str, r: dict[str, Any]) -> str:
    return (
        f"  {name:<34} p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  max {r['max']:6.0f} ms  ok {r['ok']}"
    )


def drive_at(url: str, items: list[tuple[str, str]], connections: int) -> dict[str, Any]:
    """`intake.drive` with the Python load generator at `connections` (this benchmark measures
    acks while work runs, not the driver's ceiling, so it keeps the one driver every run used)."""
    opts = argparse.Namespace(driver="python", connections=connections, wrk_threads=1)
    return drive(url, items, opts)


async def part1(args: argparse.Namespace, api: FakeApi, api_port: int, tmp: Path, naive_port: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    dsn = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    proc, port = start_oabot(
        f"{args.pg}?options=-csearch_path%3D{schema}", args.redis, api_port, tmp, API_TOKEN
    )
    base = f"http://127.0.0.1:{port}"
    rows: dict[str, list[dict[str, Any]]] = {"naive": [], "oabot": []}
    spy = Spy(Path(args.profile) if args.profile else None)
    spy.start("acks_pg", proc.pid)
    try:
        api.delay_s = 3.0
        for rnd in range(args.rounds):
            flows = asyncio.create_task(submit(base, args.flows))
            await asyncio.sleep(0.5)  # the first cards are on their way to the slow API
            naive = await asyncio.to_thread(
                drive_at,
                f"http://127.0.0.1:{naive_port}/callbacks/wecom",
                callbacks(args.callbacks, uuid.uuid4().hex[:6]),
                20,
            )
            ours = await asyncio.to_thread(
                drive_at, f"{base}/callbacks/wecom", callbacks(args.callbacks, uuid.uuid4().hex[:6]), 20
            )
            await flows
            rows["naive"].append(naive)
            rows["oabot"].append(ours)
            print(f" round {rnd + 1}: naive p99 {naive['p99']:.1f} ms, oabot p99 {ours['p99']:.1f} ms")
        print(
            f"part 1: acks while {args.flows} flows run per round and the platform answers in 3 s (PG+Redis), "
            f"medians of {args.rounds}:"
        )
        for name, rs in rows.items():
            med = {m: statistics.median(r[m] for r in rs) for m in ("p50", "p99", "max")} | {
                "ok": sum(r["ok"] for r in rs)
            }
            print(show(f"{name} ({args.callbacks} callbacks x20)", med))
    finally:
        spy.stop()
        api.delay_s = 0.0
        proc.terminate()
        proc.wait(timeout=15)
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


MANAGERS = 20  # part 2's approvers: 10 cards each per round stays under 30 per person per minute


def bench_org(tmp: Path) -> Path:
    """The demo org plus MANAGERS managers, each with one member of staff who submits: the cards
    of a round are spread so that no approver's cards are coalesced by the per-person limit."""
    org = yaml.safe_load((ROOT / "bot" / "data" / "demo_org.yaml").read_text())
    for n in range(MANAGERS):
        org["users"].append(
            {
                "id": f"u_m{n}",
                "name": f"经理{n}",
                "department": "marketing",
                "manager": "u_li",
                "accounts": {"wecom": f"benchm{n}"},
            }
        )
        org["users"].append(
            {
                "id": f"u_b{n}",
                "name": f"专员{n}",
                "department": "marketing",
                "manager": f"u_m{n}",
                "accounts": {"wecom": f"benchb{n}"},
            }
        )
    path = tmp / "bench_org.yaml"
    path.write_text(yaml.safe_dump(org, allow_unicode=True))
    return path


def decided(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(
            conn.execute("SELECT count(*) FROM inbox WHERE kind != 'refused' AND status = 'done'").fetchone()[
                0
            ]
        )


async def part2(args: argparse.Namespace, api: FakeApi, api_port: int, tmp: Path, naive_port: int) -> None:
    db = tmp / "clicks.db"
    proc, port = start_oabot(
        f"sqlite+aiosqlite:///{db}", "", api_port, tmp, API_TOKEN, org_file=bench_org(tmp)
    )
    base = f"http://127.0.0.1:{port}"
    per = max(1, args.clicks // MANAGERS)
    rows: dict[str, list[dict[str, Any]]] = {"naive": [], "oabot": []}
    spy = Spy(Path(args.profile) if args.profile else None)
    spy.start("clicks_sqlite", proc.pid)
    try:
        for rnd in range(args.rounds):
            api.cards.clear()
            await asyncio.gather(*(submit(base, per, f"u_b{n}") for n in range(MANAGERS)))
            deadline = time.monotonic() + 120
            mine = []
            while len(mine) < per * MANAGERS and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                mine = [c for c in api.cards if str(c.get("touser", "")).startswith("benchm")]
            taps = clicks(mine)
            before = decided(db)
            naive = await asyncio.to_thread(
                drive_at, f"http://127.0.0.1:{naive_port}/callbacks/wecom", taps, 20
            )
            started = time.perf_counter()
            ours = await asyncio.to_thread(drive_at, f"{base}/callbacks/wecom", taps, 20)
            done = 0
            while time.perf_counter() - started < 120:
                done = decided(db) - before
                if done >= len(taps):
                    break
                await asyncio.sleep(0.2)
            took = time.perf_counter() - started
            rows["naive"].append(naive)
            rows["oabot"].append(ours)
            print(
                f" round {rnd + 1}: {len(taps)} clicks; naive p99 {naive['p99']:.1f} ms, oabot p99 {ours['p99']:.1f} ms; "
                f"the worker decided {done}/{len(taps)} {took:.1f} s after the first click was sent"
            )
        print(
            f"part 2: {per * MANAGERS} card clicks per round at concurrency 20 (SQLite + in-process), medians of {args.rounds}:"
        )
        for name, rs in rows.items():
            med = {m: statistics.median(r[m] for r in rs) for m in ("p50", "p99", "max")} | {
                "ok": sum(r["ok"] for r in rs)
            }
            print(show(f"{name} (same bodies)" if name == "naive" else name, med))
    finally:
        spy.stop()
        proc.terminate()
        proc.wait(timeout=15)


async def main(args: argparse.Namespace) -> None:
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    tmp = Path(tempfile.mkdtemp(prefix="oabot-acks-"))
    api, api_port = FakeApi(), free_port()
    runner = await api.start(api_port)
    naive_schema = f"bench_{uuid.uuid4().hex[:8]}"
    dsn = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{naive_schema}"')
    naive_port = free_port()
    naive = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "intake.py"),
            "--naive",
            str(naive_port),
            dsn,
            args.redis,
            naive_schema,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(naive, "naive ready")
        if not args.skip_pg:
            await part1(args, api, api_port, tmp, naive_port)
        if not args.skip_sqlite:
            await part2(args, api, api_port, tmp, naive_port)
        print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        naive.terminate()
        naive.wait(timeout=10)
        await runner.cleanup()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{naive_schema}" CASCADE')
        await admin.close()


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--callbacks", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-pg", action="store_true", help="only part 2 (card clicks on SQLite)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only part 1 (acks under flows, PG)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the oabot processes into DIR (raw stacks)")
    parser.add_argument("--clicks", type=int, default=200, help="card clicks per round in part 2")
    args = parser.parse_args()
    if not (
        1 <= args.flows <= 1000
        and 1 <= args.callbacks <= 20_000
        and 1 <= args.rounds <= 20
        and MANAGERS <= args.clicks <= 10 * MANAGERS
    ):
        parser.error(
            f"--flows 1..1000, --callbacks 1..20000, --rounds 1..20, --clicks {MANAGERS}..{10 * MANAGERS}"
        )
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
