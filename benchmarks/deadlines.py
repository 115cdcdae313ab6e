"""Benchmark: claiming due timers among a million pending ones on PostgreSQL.

    python benchmarks/deadlines.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python benchmarks/deadlines.py --url ... --rows 100000      # a quick run

Creates its own schema with the `timers` table, fills it with `--rows` pending timers (one
INSERT ... SELECT generate_series per chunk; half of them already due, spread over a day), then
claims `--claim` due timers at a time, `--rounds` times each way, alternating:

- through oabot's claim code (`deadlines.timers.claim_due`: SQLAlchemy, FOR UPDATE SKIP LOCKED,
  lease and claim token, rows turned into `Timer` objects);
- with a bare SQL claim on the same table (asyncpg, `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
  SKIP LOCKED LIMIT n) RETURNING id`).

It prints progress, the timings (median and best) and the process memory (RSS) before and after
the claims, and drops the schema at the end (also on Ctrl-C or an error).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deadlines import timers  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.timer_models import TimerRow  # noqa: E402

CHUNK = 100_000
BARE_CLAIM = """
UPDATE timers SET status = 'firing', claim_token = $3, claimed_until = $1::timestamptz + interval '60 seconds',
       attempts = attempts + 1
WHERE id IN (
    SELECT id FROM timers WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


def rss_mib() -> float:
    """Resident set size of this process, in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(text: str) -> None:
    print(text, flush=True)


async def fill(conn: object, rows: int, now: datetime) -> None:
    """`rows` pending timers, due from a day ago to a day ahead, evenly spread."""
    span_s = 2 * 24 * 3600
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        await conn.execute(  # type: ignore[attr-defined]
            """
            INSERT INTO timers (kind, status, due_at, request_id, task_id, data, attempts, created_at)
            SELECT 'remind', 'pending',
                   $1::timestamptz - interval '1 day' + make_interval(secs => (g::float8 * $4 / $5)),
                   'bench-' || g, 'bench-' || g || '-1', '{"point": 0.5, "level": 0, "quiet": true}'::json, 0, $1
            FROM generate_series($2::bigint, $3::bigint) AS g
            """,
            now,
            done + 1,
            done + n,
            float(span_s),
            float(rows),
        )
        done += n
        say(f"  inserted {done:,}/{rows:,} timers")


async def run(url: str, rows: int, claim: int, rounds: int) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    say(f"schema {schema} created")
    db = Database(url, schema=schema)
    raw = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: TimerRow.__table__.create(sync))  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        started = time.perf_counter()
        say(f"filling {rows:,} pending timers ...")
        await fill(raw, rows, now)
        await raw.execute("ANALYZE timers")
        say(f"filled in {time.perf_counter() - started:.1f} s; {rows // 2:,} of them are due")

        # Warm both paths (connection pool, statement caches) before measuring.
        await timers.claim_due(db, now=now, limit=1)
        await raw.fetch(BARE_CLAIM, now, 1, uuid.uuid4().hex)

        rss_before = rss_mib()
        ours: list[float] = []
        bare: list[float] = []
        for n in range(rounds):
            t0 = time.perf_counter()
            claimed = await timers.claim_due(db, now=now, limit=claim)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = await raw.fetch(BARE_CLAIM, now, claim, uuid.uuid4().hex)
            bare.append(time.perf_counter() - t0)
            assert len(claimed) == claim and len(got) == claim, (len(claimed), len(got))
            say(
                f"  round {n + 1}/{rounds}: claim_due {ours[-1] * 1000:.1f} ms, bare SQL {bare[-1] * 1000:.1f} ms"
            )
        rss_after = rss_mib()
        left = await raw.fetchval("SELECT count(*) FROM timers WHERE status = 'pending'")

        say("")
        say(
            f"rows: {rows:,} pending timers ({left:,} still pending); claims of {claim:,} due timers, {rounds} rounds each"
        )
        say(
            f"  oabot claim_due:  median {statistics.median(ours) * 1000:8.1f} ms   best {min(ours) * 1000:8.1f} ms"
        )
        say(
            f"  bare SQL claim:   median {statistics.median(bare) * 1000:8.1f} ms   best {min(bare) * 1000:8.1f} ms"
        )
        say(f"  process RSS: {rss_before:.1f} MiB before the claims, {rss_after:.1f} MiB after")
    finally:
        await raw.close()
        await db.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
        say(f"schema {schema} dropped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="postgresql+asyncpg://USER@HOST:PORT/DB")
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="pending timers to create (default 1,000,000)"
    )
    parser.add_argument("--claim", type=int, default=1000, help="timers per claim (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="claims measured each way (default 5)")
    args = parser.parse_args()
    if not args.url.startswith("postgresql+asyncpg://"):
        parser.error(
            "--url must be a postgresql+asyncpg:// URL: the benchmark measures FOR UPDATE SKIP LOCKED"
        )
    if args.rows < 2 * args.claim * (args.rounds + 1):
        parser.error(
            f"--rows must be at least {2 * args.claim * (args.rounds + 1):,} so every claim finds due timers"
        )
    asyncio.run(run(args.url, args.rows, args.claim, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
