"""Benchmark: claiming due timers among many pending ones, against a bare SQL claim in the same run.

    python benchmarks/deadlines.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python benchmarks/deadlines.py --url ... --rows 100000 --rounds 40     # a quick run
    python benchmarks/deadlines.py --url sqlite+aiosqlite:///var/bench-timers.db --rows 200000
    python benchmarks/deadlines.py --url ... --profile var/claim.prof     # cProfile of oabot's claims

Seeds `--rows` pending timers once (PostgreSQL: its own schema, one INSERT ... SELECT over
generate_series; SQLite: a fresh file, one INSERT ... SELECT over a recursive count). Half of them
are due (strictly before the benchmark's `now`), spread over a day; the other half fall due in
the next day. Then `--runs` runs (default 3), each of `--rounds` claims of `--claim` timers each
way, interleaved (the side that goes first alternates):

- oabot's claim (`deadlines.timers.claim_due`: SQLAlchemy Core, FOR UPDATE SKIP LOCKED on
  PostgreSQL, lease, claim token, the rows as `Timer`s earliest first, data left undecoded);
- a bare SQL claim on the same table with the driver itself (asyncpg / aiosqlite):
  `UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED] LIMIT n) RETURNING id`, the
  baseline of the ratio;
- the same bare SQL returning the columns oabot's claim returns (a reference: how much of the
  gap is the columns, how much the Python around them).

Every claim must get exactly `--claim` distinct timers. Between runs the claimed timers go back
to pending (and PostgreSQL vacuums), so each run starts from the same table. It prints each run's
medians and their ratio, then the median over the runs of each and the ratio of those, and drops
the schema (deletes the SQLite file) at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite  # noqa: E402
import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from deadlines import timers  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.timer_models import TimerRow  # noqa: E402

DAY_S = 24 * 3600
PG_SEED = """
INSERT INTO timers (kind, status, due_at, request_id, task_id, data, attempts, created_at)
SELECT 'remind', 'pending', $1::timestamptz + make_interval(secs => (g - $2::bigint - 0.5) * $3::float8),
       'bench-' || g, 'bench-' || g || '-1', '{"point": 0.5, "level": 0, "quiet": true}'::json, 0, $1
FROM generate_series(1, $4::bigint) AS g
"""
SQLITE_SEED = """
WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < ?)
INSERT INTO timers (kind, status, due_at, request_id, task_id, data, attempts, created_at)
SELECT 'remind', 'pending', strftime('%Y-%m-%d %H:%M:%f000', ?, ((g - ? - 0.5) * ?) || ' seconds'),
       'bench-' || g, 'bench-' || g || '-1', '{"point": 0.5, "level": 0, "quiet": true}', 0, ?
FROM n
"""
PG_BARE = """
UPDATE timers SET status = 'firing', claim_token = $3, claimed_until = $1::timestamptz + interval '60 seconds',
       attempts = attempts + 1
WHERE id IN (
    SELECT id FROM timers WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING {columns}
"""
SQLITE_BARE = """
UPDATE timers SET status = 'firing', claim_token = ?, claimed_until = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM timers WHERE status = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?)
RETURNING {columns}
"""
# What oabot's claim returns (the columns firing needs), for the "same columns" reference.
WIDE = "id, kind, due_at, attempts, request_id, task_id, ref, CAST(data AS TEXT)"
RESET = "UPDATE timers SET status = 'pending', claim_token = NULL, claimed_until = NULL, attempts = 0 WHERE status = 'firing'"


def say(text: str) -> None:
    print(text, flush=True)


def sqlite_time(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (what `UTCDateTime` writes)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def remove_sqlite_files(url: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{make_url(url).database}{suffix}").unlink(missing_ok=True)


class Bare:
    """The same claim with the driver alone, on one connection of its own."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema
        self.pg: Any = None
        self.lite: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self.schema is not None:
            dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
            self.pg = await asyncpg.connect(dsn, server_settings={"search_path": self.schema})
        else:
            self.lite = await aiosqlite.connect(make_url(self.url).database or "", isolation_level=None)
            await self.lite.execute("PRAGMA journal_mode=WAL")
            await self.lite.execute("PRAGMA busy_timeout=30000")

    async def execute(self, sql: str, *args: Any) -> None:
        if self.pg is not None:
            await self.pg.execute(sql, *args)
        else:
            assert self.lite is not None
            await self.lite.execute(sql, args)
            await self.lite.commit()

    async def claim(self, now: datetime, limit: int, columns: str = "id") -> list[int]:
        token = uuid.uuid4().hex
        if self.pg is not None:
            return [r[0] for r in await self.pg.fetch(PG_BARE.format(columns=columns), now, limit, token)]
        assert self.lite is not None
        await self.lite.execute("BEGIN IMMEDIATE")
        cur = await self.lite.execute(
            SQLITE_BARE.format(columns=columns),
            (token, sqlite_time(now + timers.LEASE), sqlite_time(now), limit),
        )
        ids = [int(r[0]) for r in await cur.fetchall()]
        await self.lite.execute("COMMIT")
        return ids

    async def close(self) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self.lite is not None:
            await self.lite.close()


async def seed(bare: Bare, rows: int, now: datetime) -> int:
    """`rows` pending timers, the first half due before `now`, spread evenly over two days."""
    due = rows // 2
    step = 2 * DAY_S / rows
    if bare.pg is not None:
        await bare.pg.execute(PG_SEED, now, due, step, rows)
        await bare.pg.execute("VACUUM ANALYZE timers")
        count = await bare.pg.fetchval(
            "SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= $1", now
        )
    else:
        assert bare.lite is not None
        created = sqlite_time(now)
        await bare.execute(SQLITE_SEED, rows, created, due, step, created)
        await bare.execute("ANALYZE")
        cur = await bare.lite.execute(
            "SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= ?", (created,)
        )
        count = (await cur.fetchone() or (0,))[0]
    return int(count)


async def timed(work: Callable[[], Awaitable[list[int]]], limit: int, seen: set[int]) -> float:
    t0 = time.perf_counter()
    ids = await work()
    took = time.perf_counter() - t0
    if len(ids) != limit or len(set(ids)) != limit or seen.intersection(ids):
        raise SystemExit(f"a claim got {len(ids)} timers ({len(set(ids) - seen)} new), expected {limit}")
    seen.update(ids)
    return took


WAYS = ("oabot claim_due", "bare SQL, ids", "bare SQL, same columns")


async def one_run(
    db: Database, bare: Bare, now: datetime, claim: int, rounds: int, profile: cProfile.Profile | None
) -> list[float]:
    """The median time of each way (in `WAYS` order) over `rounds` claims each, interleaved."""

    async def oabot() -> list[int]:
        if profile is not None:
            profile.enable()
        try:
            return [t.id for t in await timers.claim_due(db, now=now, limit=claim)]
        finally:
            if profile is not None:
                profile.disable()

    async def ids() -> list[int]:
        return await bare.claim(now, claim)

    async def wide() -> list[int]:
        return await bare.claim(now, claim, WIDE)

    ways = (oabot, ids, wide)
    took: list[list[float]] = [[] for _ in ways]
    seen: set[int] = set()
    for n in range(rounds):
        for k in range(len(ways)):  # who goes first rotates
            w = (n + k) % len(ways)
            took[w].append(await timed(ways[w], claim, seen))
    return [statistics.median(t) for t in took]


async def run(url: str, rows: int, claim: int, rounds: int, runs: int, profile_to: str | None) -> None:
    is_pg = url.startswith("postgresql+asyncpg://")
    schema = f"bench_{uuid.uuid4().hex[:10]}" if is_pg else None
    admin: Any = None
    if is_pg:
        admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        say(f"schema {schema} created")
    db = Database(url, schema=schema)
    bare = Bare(url, schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: TimerRow.__table__.create(sync))  # type: ignore[attr-defined]
        await bare.open()
        now = datetime.now(UTC)
        started = time.perf_counter()
        say(f"seeding {rows:,} pending timers ...")
        due = await seed(bare, rows, now)
        say(f"seeded in {time.perf_counter() - started:.1f} s; {due:,} of them are due")
        need = len(WAYS) * (claim * rounds + 1)
        if due < need:
            raise SystemExit(f"only {due:,} due timers; a run needs {need:,}")
        profile = cProfile.Profile() if profile_to else None
        results: list[list[float]] = []
        for r in range(runs):
            await bare.execute(RESET)
            if is_pg:
                await bare.execute("VACUUM timers")
            # Warm every path (pool, statement caches) before measuring.
            await timers.claim_due(db, now=now, limit=1)
            await bare.claim(now, 1)
            await bare.claim(now, 1, WIDE)
            medians = await one_run(db, bare, now, claim, rounds, profile)
            results.append(medians)
            ours, theirs, wide = medians
            say(
                f"  run {r + 1}/{runs}: claim_due {ours * 1000:.1f} ms, bare SQL {theirs * 1000:.1f} ms "
                f"(same columns {wide * 1000:.1f} ms), ratio {ours / theirs:.2f}x "
                f"(medians of {rounds} claims each, interleaved)"
            )
        overall = [statistics.median(m[w] for m in results) for w in range(len(WAYS))]
        say("")
        say(f"{'PostgreSQL' if is_pg else 'SQLite'}: claims of {claim:,} due timers among {rows:,} pending")
        for name, value in zip(WAYS, overall, strict=True):
            say(f"  {name + ':':25s} {value * 1000:7.1f} ms (median of {runs} run medians)")
        say(f"  ratio to bare SQL, ids:   {overall[0] / overall[1]:7.2f}x")
        say(f"  load average:             {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if profile is not None and profile_to:
            profile.dump_stats(profile_to)
            say(f"  cProfile of oabot's claims written to {profile_to}")
    finally:
        await bare.close()
        await db.dispose()
        if admin is not None:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()
            say(f"schema {schema} dropped")
        else:
            remove_sqlite_files(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--url", required=True, help="postgresql+asyncpg://USER@HOST:PORT/DB or sqlite+aiosqlite:///FILE"
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="pending timers to seed (default 1,000,000)"
    )
    parser.add_argument("--claim", type=int, default=1000, help="timers per claim (default 1000)")
    parser.add_argument("--rounds", type=int, default=15, help="claims each way per run (default 15)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of oabot's claims to FILE")
    args = parser.parse_args()
    if not args.url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        parser.error("--url must be a postgresql+asyncpg:// or sqlite+aiosqlite:/// URL")
    if min(args.rows, args.claim, args.rounds, args.runs) < 1:
        parser.error("--rows, --claim, --rounds and --runs must be at least 1")
    # Half the rows are due; a run claims `claim` timers `rounds` times each way, plus one each to warm up.
    need = len(WAYS) * (args.claim * args.rounds + 1)
    if args.rows // 2 < need:
        parser.error(f"--rows must be at least {2 * need:,}: half of them are due and a run claims {need:,}")
    if args.url.startswith("sqlite") and Path(make_url(args.url).database or "").exists():
        parser.error(f"{make_url(args.url).database} exists: give the benchmark a file of its own")
    asyncio.run(run(args.url, args.rows, args.claim, args.rounds, args.runs, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
