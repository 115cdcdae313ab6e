"""Benchmark: the desk's request list with a search, and its CSV / XLSX exports.

    python benchmarks/admin_export.py                       # SQLite in a temporary directory
    python benchmarks/admin_export.py --requests 5000
    python benchmarks/admin_export.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Fills the database like `audit_verify.py` (`--requests` seal requests, half approved once), then
times one filtered page (a search in the form values, newest first) and a full export to CSV and
to XLSX, printing seconds and rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from approvals.template_loader import load_templates  # noqa: E402
from benchmarks.audit_verify import fill  # noqa: E402
from services.admin_export import DeskExport, write_csv, write_xlsx  # noqa: E402
from storage import admin_queries  # noqa: E402
from storage.admin_queries import DeskFilter  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.org_repo import load_org  # noqa: E402
from tests.helpers import T0  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")


def wall(a: datetime, b: datetime) -> timedelta:
    return b - a


async def measure(db: Database, count: int, tmp: str) -> None:
    start = time.perf_counter()
    async with db.session() as s:
        rows, total = await admin_queries.requests(
            s, where=DeskFilter(text="公章"), sort="created", descending=True, limit=25, offset=0
        )
    page = time.perf_counter() - start
    print(f"list page with a form search: {total} matches, {len(rows)} shown in {page * 1000:.0f} ms")
    async with db.session() as s:
        org = await load_org(s)
    exporter = DeskExport(db, org=org, templates=load_templates([]), tz=TZ, working_time=wall, now=lambda: T0)
    for kind in ("csv", "xlsx"):
        sheet = await exporter.sheet(DeskFilter())
        start = time.perf_counter()
        if kind == "csv":
            done = await write_csv(sheet, io.StringIO())
        else:
            done = await write_xlsx(sheet, f"{tmp}/bench.xlsx")
        took = time.perf_counter() - start
        print(f"export {kind}: {done} rows in {took:.2f} s ({done / took:.0f} rows/s)")


async def run(url: str | None, count: int) -> None:
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
            print(f"{db.engine.dialect.name}: {count} requests")
            await measure(db, count, tmp)
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
    args = parser.parse_args()
    asyncio.run(run(args.url, args.requests))


if __name__ == "__main__":
    main()
