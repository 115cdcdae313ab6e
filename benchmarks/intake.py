"""Benchmark: WeCom callback intake, oabot against a naive reference server, side by side.

    python benchmarks/intake.py                         # PG+Redis and SQLite, 3 interleaved rounds
    python benchmarks/intake.py --requests 1000 --rounds 1 --skip-sqlite   # a quick look

The naive server (this file with --naive) is aiohttp + oabot's own WeCom crypto + Redis SET NX +
one asyncpg INSERT per callback, nothing else: no logging, no refusal bookkeeping. oabot runs
as `python -m bot serve` (role all, so its worker runs in the same process) on PostgreSQL +
Redis, then on SQLite + the in-process store. A fake WeCom API answers the worker's calls.

oabot runs on uvloop when it is installed (`OABOT_EVENT_LOOP=auto`); `BENCH_EVENT_LOOP=asyncio`
in this benchmark's environment runs it on the standard loop instead (also for benchmarks/acks.py).

Every round drives each server with the same number of distinct, freshly signed text callbacks
from people of the demo org (each one a dedupe miss), 32 concurrent keep-alive connections
(`--connections`), and prints req/s, p50/p99/max of the acks and the ratio to the naive server's
same-round numbers. The driver (`--driver auto|wrk|python`, default auto: wrk when installed) is
either wrk (`-t1`, `--wrk-threads`) with benchmarks/intake_wrk.lua, which sends each pre-signed
callback once and stops wrk when all are answered, or a Python load generator (a separate process;
on a 2-core box it is itself the ceiling, see `--ceiling`). Answers that are not 2xx and requests
without an answer are counted and shown as `NOT 2xx N`.
Afterwards it checks that every acknowledged callback has exactly one inbox row, that every row
was processed (status done, never retried) and how long the backlog took to drain after the
last ack. Prints `uptime` before and after: the machine is shared.
"""

# The benchmark runs servers and load as subprocesses; its own loop blocking on them is harmless.
# ruff: noqa: ASYNC110, ASYNC220, ASYNC221, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402

from bot.platforms.wecom.crypto import WeComCrypto  # noqa: E402

CORP_ID = "wwbench0001"
TOKEN = "bench-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AGENT_ID = 1000002
ACCOUNTS = ("zhangwei", "lina", "wangfang")
NAIVE_TABLE = (
    "CREATE TABLE IF NOT EXISTS naive_inbox (id bigserial primary key, event_id text unique, payload text)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def callbacks(n: int, tag: str) -> list[tuple[str, str]]:
    """(query string, body) of `n` distinct signed text callbacks."""
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    ts = str(int(time.time()))
    out = []
    for i in range(n):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        msg_id = int(tag, 16) % 10**9 * 10**6 + i
        inner = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{account}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
        )
        nonce = f"{tag}{i}"
        sealed = crypto.seal(inner, ts, nonce)
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
            f"<Encrypt><![CDATA[{sealed.encrypted}]]></Encrypt></xml>"
        )
        out.append((f"msg_signature={sealed.signature}&timestamp={ts}&nonce={nonce}", body))
    return out


# -- the naive reference server ---------------------------------------------------------------


async def naive_server(port: int, dsn: str, redis_url: str, schema: str) -> None:
    from redis.asyncio import Redis

    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10, server_settings={"search_path": schema})
    async with pool.acquire() as conn:
        await conn.execute(NAIVE_TABLE)
    redis = Redis.from_url(redis_url)

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        encrypted = ET.fromstring(await request.read()).findtext("Encrypt") or ""
        try:
            plain = crypto.open(q["msg_signature"], q["timestamp"], q["nonce"], encrypted)
        except Exception:
            return web.Response(status=403)
        msg_id = ET.fromstring(plain).findtext("MsgId") or q["nonce"]
        if await redis.set(f"naive:{msg_id}", "1", nx=True, ex=900):
            await pool.execute(
                "INSERT INTO naive_inbox (event_id, payload) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                msg_id,
                plain,
            )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/callbacks/wecom", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("naive ready", flush=True)
    await asyncio.Event().wait()


async def bare_server(port: int) -> None:
    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/callbacks/wecom", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("bare ready", flush=True)
    await asyncio.Event().wait()


# -- the load generator -------------------------------------------------------------------------


async def load(url: str, path: str, concurrency: int) -> None:
    items = [tuple(x) for x in json.loads(Path(path).read_text())]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    todo = iter(items)

    async def worker(session: ClientSession) -> None:
        for query, body in todo:
            started = time.perf_counter()
            async with session.post(f"{url}?{query}", data=body.encode()) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        took = time.perf_counter() - started
    print(json.dumps({"took": took, "latencies": latencies, "statuses": statuses}), flush=True)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = Path(__file__).resolve().parent / "intake_wrk.lua"


def run_python_load(url: str, items: list[tuple[str, str]], concurrency: int) -> dict[str, Any]:
    """The Python load generator (one process, `concurrency` keep-alive connections)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(items, f)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--load", url, f.name, str(concurrency)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    lat = sorted(result.pop("latencies"))
    result["n"] = len(lat)
    result["p50"] = lat[len(lat) // 2] * 1000
    result["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    result["max"] = lat[-1] * 1000
    result["errors"] = 0
    return result


def run_wrk(url: str, items: list[tuple[str, str]], concurrency: int, threads: int) -> dict[str, Any]:
    """wrk with benchmarks/intake_wrk.lua: each item sent once, then wrk stops; percentiles and
    the time from the first request to the last answer come from the script's JSON line."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for query, body in items:
            assert "\n" not in query and "\n" not in body
            f.write(f"/{path}?{query}\n{body}\n")
    duration = 60 + len(items) // 100  # generous: the script ends wrk once every item is answered
    try:
        proc = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{max(threads, min(concurrency, len(items)))}",
                f"-d{duration}s",
                "--timeout",
                "30s",
                "-s",
                str(WRK_SCRIPT),
                url,
                "--",
                f.name,
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["unfinished_threads"] or out["sent_items"] != len(items):
        print(f"      wrk did not finish cleanly: {proc.stdout.strip()} {proc.stderr.strip()}")
    return {
        "took": out["took"],
        "n": out["sent_items"],
        "statuses": out["statuses"],
        "p50": out["p50"],
        "p99": out["p99"],
        "max": out["max"],
        "errors": sum(v for k, v in out["errors"].items() if k != "status"),
    }


def drive(
    url: str, items: list[tuple[str, str]], opts: argparse.Namespace, pid: int | None = None
) -> dict[str, Any]:
    """Send `items` with the chosen driver; with `pid`, also the server's CPU per request while it
    was driven (much less sensitive to a busy machine than req/s: time spent waiting for a core is
    not counted)."""
    before = cpu_s(pid) if pid else 0.0
    if opts.driver == "wrk":
        result = run_wrk(url, items, opts.connections, opts.wrk_threads)
    else:
        result = run_python_load(url, items, opts.connections)
    n = max(1, result["n"])
    result["rps"] = n / result["took"]
    result["ok"] = result["statuses"].get("200", 0)
    # answers that are not 2xx, plus requests wrk got no answer to (socket errors, timeouts)
    result["bad"] = sum(v for k, v in result["statuses"].items() if not k.startswith("2")) + result["errors"]
    result["cpu_us"] = (cpu_s(pid) - before) / n * 1e6 if pid else float("nan")
    return result


# -- servers --------------------------------------------------------------------------------------


def wait_ready(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"server did not start ({needle!r})")


async def fake_wecom(port: int) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": "t", "expires_in": 7200})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def start_oabot(
    db_url: str,
    redis_url: str,
    api_port: int,
    tmp: Path,
    api_token: str = "",
    role: str = "all",
    org_file: Path | None = None,
    root: Path = ROOT,
) -> tuple[subprocess.Popen[str], int]:
    """`python -m bot serve` in `role` (all, web or worker; a worker opens no port)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OABOT_")}
    env.update(
        PYTHONPATH=str(root),
        OABOT_DATABASE_URL=db_url,
        OABOT_REDIS_URL=redis_url,
        OABOT_REDIS_PREFIX=f"bench{uuid.uuid4().hex[:6]}:",
        OABOT_AUTO_MIGRATE="1",
        OABOT_ORG_FILE=str(org_file or ROOT / "bot" / "data" / "demo_org.yaml"),
        OABOT_LOG_LEVEL="WARNING",
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET="bench-secret",
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=f"http://127.0.0.1:{api_port}",
        OABOT_CONSOLE="0",
        OABOT_BACKUP_TIMES="",
    )
    if not redis_url:
        del env["OABOT_REDIS_URL"]
    if api_token:
        env["OABOT_API_TOKEN"] = api_token
    if os.environ.get("BENCH_EVENT_LOOP") and root == ROOT:
        env["OABOT_EVENT_LOOP"] = os.environ["BENCH_EVENT_LOOP"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port), "--role", role],
        cwd=root if root != ROOT else tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp / f"oabot-{role}-{port}.log", "w"),  # noqa: SIM115
        text=True,
    )
    wait_ready(proc, "oabot worker is running" if role == "worker" else "oabot is ready")
    return proc, port


class Spy:
    """py-spy sampling one process while it is driven (`--profile DIR`); raw collapsed stacks
    go to DIR/<name>.txt, summarised with benchmarks/pyspy_top.py."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, pid: int) -> None:
        if self.out_dir is None:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{name.replace(' ', '_').replace('+', '_')}.txt"
        self.procs.append(
            subprocess.Popen(
                [exe, "record", "--pid", str(pid), "-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()


async def inbox_state(count) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(rows, rows done, rows ever retried)."""
    return await count()


def pg_counter(dsn: str, schema: str):  # type: ignore[no-untyped-def]
    async def count() -> tuple[int, int, int]:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            row = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE attempts > 0) FROM inbox"
            )
            return int(row[0]), int(row[1]), int(row[2])
        finally:
            await conn.close()

    return count


def sqlite_counter(path: Path):  # type: ignore[no-untyped-def]
    async def count() -> tuple[int, int, int]:
        with sqlite3.connect(path, timeout=30) as conn:
            row = conn.execute(
                "SELECT count(*), sum(status = 'done'), sum(attempts > 0) FROM inbox"
            ).fetchone()
        return int(row[0]), int(row[1] or 0), int(row[2] or 0)

    return count


async def backlog(count, acked: int, before: int) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    rows, done, retried = await count()
    while done < rows and time.perf_counter() - started < 300:
        await asyncio.sleep(0.2)
        rows, done, retried = await count()
    took = time.perf_counter() - started
    new = rows - before
    verdict = "exactly once" if new >= acked and done == rows and retried == 0 else "PROBLEM"
    return f"{verdict}: {acked} acked, {new} new rows, {done}/{rows} done, {retried} retried", took


def line(name: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    ratio = f"  {r['rps'] / base['rps']:.2f}x naive" if base else ""
    cpu = "" if r.get("cpu_us", float("nan")) != r.get("cpu_us") else f"  cpu {r['cpu_us']:4.0f} us/req"
    bad = f"  NOT 2xx {r['bad']}" if r.get("bad") else ""
    return (
        f"  {name:<22} {r['rps']:7.0f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
        f"max {r['max']:6.0f} ms  ok {r['ok']}{ratio}{cpu}{bad}"
    )


def driver_name(args: argparse.Namespace) -> str:
    if args.driver == "wrk":
        return f"wrk -t{args.wrk_threads} -c{args.connections}"
    return "Python load generator"


async def main(args: argparse.Namespace) -> None:
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("driver:", driver_name(args))
    tmp = Path(tempfile.mkdtemp(prefix="oabot-intake-"))
    api_port = free_port()
    api = await fake_wecom(api_port)
    dsn = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    schemas = [schema]
    naive_port = free_port()
    naive = subprocess.Popen(
        [sys.executable, __file__, "--naive", str(naive_port), dsn, args.redis, schema],
        stdout=subprocess.PIPE,
        text=True,
    )
    pg_url = f"{args.pg}?options=-csearch_path%3D{schema}"
    spy = Spy(Path(args.profile) if args.profile else None)
    procs = [naive]
    if args.role == "split":  # one web process answers, one worker process works the backlog
        pg_proc, pg_port = start_oabot(pg_url, args.redis, api_port, tmp, role="web")
        pg_worker, _ = start_oabot(pg_url, args.redis, api_port, tmp, role="worker")
        procs += [pg_proc, pg_worker]
        spy.start("pg_worker", pg_worker.pid)
    else:
        pg_proc, pg_port = start_oabot(pg_url, args.redis, api_port, tmp)
        procs.append(pg_proc)
    spy.start(f"pg_{args.role}", pg_proc.pid)
    servers = {"oabot PG+Redis": (pg_port, pg_counter(dsn, schema), pg_proc.pid)}
    if args.compare:  # another checkout's oabot (e.g. main) on its own schema, same rounds
        other = Path(args.compare).resolve()
        cmp_schema = f"bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE SCHEMA "{cmp_schema}"')
        schemas.append(cmp_schema)
        cmp_proc, cmp_port = start_oabot(
            f"{args.pg}?options=-csearch_path%3D{cmp_schema}", args.redis, api_port, tmp, root=other
        )
        procs.append(cmp_proc)
        servers[f"{other.name} PG+Redis"] = (cmp_port, pg_counter(dsn, cmp_schema), cmp_proc.pid)
    if not args.skip_sqlite:
        sq_proc, sq_port = start_oabot(f"sqlite+aiosqlite:///{tmp}/oabot.db", "", api_port, tmp)
        servers["oabot SQLite"] = (sq_port, sqlite_counter(tmp / "oabot.db"), sq_proc.pid)
        procs.append(sq_proc)
        spy.start("sqlite_all", sq_proc.pid)
    if args.ceiling:  # what the load generator itself can drive: a server that only says 200
        bare_port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--bare", str(bare_port)], stdout=subprocess.PIPE, text=True
            )
        )
        wait_ready(procs[-1], "bare ready")
    wait_ready(naive, "naive ready")
    results: dict[str, list[dict[str, Any]]] = {"naive": [], **{k: [] for k in servers}}
    if args.ceiling:
        results["bare aiohttp (ceiling)"] = []
    try:
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}")
            if args.ceiling:
                bare = drive(
                    f"http://127.0.0.1:{bare_port}/callbacks/wecom",
                    callbacks(args.requests, uuid.uuid4().hex[:6]),
                    args,
                )
                results["bare aiohttp (ceiling)"].append(bare)
                print(line("bare aiohttp (ceiling)", bare, None))
            base = drive(
                f"http://127.0.0.1:{naive_port}/callbacks/wecom",
                callbacks(args.requests, uuid.uuid4().hex[:6]),
                args,
                naive.pid,
            )
            results["naive"].append(base)
            print(line("naive", base, None))
            for name, (port, count, pid) in servers.items():
                before = (await count())[0]
                r = drive(
                    f"http://127.0.0.1:{port}/callbacks/wecom",
                    callbacks(args.requests, uuid.uuid4().hex[:6]),
                    args,
                    pid,
                )
                verdict, took = await backlog(count, r["ok"], before)
                r["verdict"], r["backlog"] = verdict, took
                results[name].append(r)
                print(line(name, r, base))
                print(f"      {verdict}; backlog drained {took:.1f} s after the last ack")
        print(
            f"\nmedians of {args.rounds} interleaved rounds ({args.requests} callbacks each, "
            f"{args.connections} connections, driver {driver_name(args)}):"
        )
        med = {
            k: {m: statistics.median(x[m] for x in v) for m in ("rps", "p50", "p99", "max", "cpu_us")}
            for k, v in results.items()
        }
        for k, v in med.items():
            v["ok"] = sum(x["ok"] for x in results[k])
            v["bad"] = sum(x["bad"] for x in results[k])
            print(line(k, v, None if k in ("naive", "bare aiohttp (ceiling)") else med["naive"]))
        print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        spy.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        await api.cleanup()
        for name in schemas:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


def cli() -> None:
    if sys.argv[1:2] == ["--naive"]:
        asyncio.run(naive_server(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
        return
    if sys.argv[1:2] == ["--bare"]:
        asyncio.run(bare_server(int(sys.argv[2])))
        return
    if sys.argv[1:2] == ["--load"]:
        asyncio.run(load(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--role",
        choices=("all", "split"),
        default="all",
        help="PG+Redis oabot as one `--role all` process, or a `--role web` plus a `--role worker` process",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy each oabot process into DIR (raw stacks)")
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="also run another checkout's oabot (e.g. `git archive main`) on PG+Redis in the same rounds",
    )
    parser.add_argument(
        "--ceiling", action="store_true", help="also drive a bare aiohttp server that only answers 200"
    )
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (with benchmarks/intake_wrk.lua), the Python one, or wrk when installed",
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1, like issue 15)")
    args = parser.parse_args()
    if args.driver == "auto":
        args.driver = "wrk" if shutil.which("wrk") else "python"
    elif args.driver == "wrk" and not shutil.which("wrk"):
        parser.error("--driver wrk: wrk is not installed (apt-get install wrk)")
    if not (1 <= args.connections <= 1000 and 1 <= args.wrk_threads <= 16):
        parser.error("--connections from 1 to 1000, --wrk-threads from 1 to 16")
    if not (1 <= args.requests <= 100_000 and 1 <= args.rounds <= 20):
        parser.error("--requests from 1 to 100000, --rounds from 1 to 20")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
