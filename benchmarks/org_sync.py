"""Benchmark: a directory sync from WeCom of a large company, against the fake contact API.

    python benchmarks/org_sync.py                       # 5000 people, SQLite in a temp dir
    python benchmarks/org_sync.py --people 20000 --url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Serves `--people` members in 6 departments through respx (tests/directory_fakes.py: member ids
100 a page, then one user/get each), and times, with oabot's own service and the real database:
the first sync (everyone added), a sync with nothing changed, and one where a person left
(with their open tasks handed over), each split into reading the platform and the rest
(mapping, validation, diff, the one transaction). PostgreSQL runs in its own schema, dropped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import respx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from approvals.clock import ManualClock  # noqa: E402
from bot.platforms.wecom.client import WeComClient  # noqa: E402
from bot.platforms.wecom.directory import SYNC_RETRY, WeComDirectory  # noqa: E402
from bot.settings import WeComSettings  # noqa: E402
from services.approvals import Workflow, WorkflowDeps  # noqa: E402
from services.directory import Directory  # noqa: E402
from services.links import PersonalLinks  # noqa: E402
from services.org_sync import OrgSync, SyncConfig  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.kv_memory import MemoryStore  # noqa: E402
from tests.conftest import create_pg_schema, create_tables, drop_pg_schema  # noqa: E402
from tests.directory_fakes import Company, wecom_routes  # noqa: E402
from tests.helpers import step, template, who  # noqa: E402


class TimedSource(WeComDirectory):
    """The WeCom reader, remembering how long the last full read took."""

    read_s = 0.0

    async def read_all(self):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await super().read_all()
        finally:
            self.read_s = time.perf_counter() - started


async def run(url: str | None, people: int) -> None:
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        else:
            schema = await create_pg_schema(url)
            db = Database(url, schema=schema)
        overlay = Path(tmp) / "overlay.yaml"
        overlay.write_text("organization: 基准公司\nusers:\n  u000: {roles: [gm]}\n", encoding="utf-8")
        try:
            await create_tables(db)
            await bench(db, people, overlay)
        finally:
            await db.dispose()
            if schema is not None and url is not None:
                await drop_pg_schema(url, schema)


async def bench(db: Database, people: int, overlay: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    company = Company.made_up(people)
    kv = MemoryStore()
    directory = Directory(db, clock.now)
    workflow = Workflow(
        WorkflowDeps(
            db=db,
            templates={"t": template(step("review", who("user", "u020")))},
            tz=clock.now().tzinfo,  # type: ignore[arg-type]
            now=clock.now,
            directory=directory,
            links=PersonalLinks(
                db, secret="bench-link-secret-0123456789", public_url="http://x", now=clock.now
            ),
        )
    )
    async with httpx.AsyncClient() as http:
        settings = WeComSettings(corp_id="corp", agent_id=1, secret="s", token="t", aes_key="a" * 43)
        source = TimedSource(WeComClient(http, settings, kv, retry=SYNC_RETRY))
        sync = OrgSync(
            db=db,
            workflow=workflow,
            sources={"wecom": source},
            config=SyncConfig(overlay=str(overlay)),
            now=clock.now,
        )
        with respx.mock(assert_all_called=False) as router:
            wecom_routes(router, company)

            async def timed(label: str) -> None:
                started = time.perf_counter()
                report = await sync.sync("wecom")
                total = time.perf_counter() - started
                print(
                    f"{label:<28} total {total:6.2f} s   platform read {source.read_s:6.2f} s   "
                    f"map+validate+apply {total - source.read_s:6.2f} s   "
                    f"({len(report.diff.added)} added, {len(report.diff.deactivated)} deactivated, "
                    f"{report.moved} tasks handed over)"
                )

            print(f"{people} people in {len(company.departments)} departments, {db.url.split(':')[0]}")
            await timed("first sync")
            await timed("nothing changed")
            for initiator in ("u030", "u031"):
                await workflow.submit(template_key="t", initiator=initiator, form={"reason": "基准"})
            del company.members["u020"]
            await timed("one person left")
    await kv.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--people", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(run(args.url, args.people))


if __name__ == "__main__":
    main()
