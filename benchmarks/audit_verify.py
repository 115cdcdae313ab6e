"""Benchmark: `oabot audit verify` over many requests (chain, keyed seals, anchor, replay).

    python benchmarks/audit_verify.py                       # SQLite in a temporary directory
    python benchmarks/audit_verify.py --requests 5000
    python benchmarks/audit_verify.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Submits `--requests` seal requests through the workflow (half of them approved by the first
approver, so trails have 5 to 8 events), then times `services.approvals.verify_trails` over all
of them `--rounds` times and prints the median and best, in requests per second. On PostgreSQL
it works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from approvals.engine import Action  # noqa: E402
from approvals.model import ActionKind  # noqa: E402
from approvals.template_loader import load_templates  # noqa: E402
from approvals.trail import TrailKey, TrailKeys  # noqa: E402
from org.loader import load_org_file  # noqa: E402
from services.approvals import Workflow, WorkflowDeps, verify_trails  # noqa: E402
from services.directory import Directory  # noqa: E402
from services.links import PersonalLinks  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import metadata  # noqa: E402
from storage.org_repo import import_org  # noqa: E402
from tests.helpers import T0  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = TrailKeys(TrailKey.of(b"benchmark-trail-key-0123456789abcdef"))
FORM = {
    "seal": "公章",
    "reason": "合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["a.pdf"],
    "copies": 1,
    "take_out": False,
}


async def fill(db: Database, count: int) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with db.transaction() as s:
        await import_org(s, load_org_file(ROOT / "bot" / "data" / "demo_org.yaml"), now=T0)
    wf = Workflow(
        WorkflowDeps(
            db=db,
            templates=load_templates([]),
            tz=ZoneInfo("Asia/Shanghai"),
            now=lambda: T0,
            links=PersonalLinks(
                db, secret="benchmark-link-secret-0123", public_url="http://x", now=lambda: T0
            ),
            directory=Directory(db, lambda: T0),
            trail_keys=KEYS,
        )
    )
    for n in range(count):
        req = await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)
        if n % 2:
            task = req.steps[0].tasks[0]
            await wf.act(
                request_id=req.id,
                action=Action(ActionKind.APPROVE, actor="u_sun", task_id=task.id, version=task.version),
            )
        if (n + 1) % 200 == 0:
            print(f"\rsubmitted {n + 1}/{count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


async def run(url: str | None, count: int, rounds: int) -> None:
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        else:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            admin = Database(url)
            async with admin.engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            db = Database(url, schema=schema)
        try:
            await fill(db, count)
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                problems = await verify_trails(db, keys=KEYS)
                times.append(time.perf_counter() - start)
                assert problems == {}, problems
            best, median = min(times), statistics.median(times)
            print(f"{db.engine.dialect.name}: verified {count} requests, {rounds} rounds")
            print(f"median {median:.2f} s ({count / median:.0f} requests/s), best {best:.2f} s")
        finally:
            await db.dispose()
            if schema is not None:
                async with admin.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.url, args.requests, args.rounds))


if __name__ == "__main__":
    main()
