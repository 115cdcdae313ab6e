"""`oabot audit verify` finds a trail that was edited or cut short after the fact."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from approvals.engine import Action
from approvals.model import ActionKind
from approvals.template_loader import load_templates
from bot.cli import main
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from storage.db import Database
from tests.conftest import create_tables, import_demo_org
from tests.helpers import T0

FORM = {
    "seal": "公章",
    "reason": "合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["a.pdf"],
    "copies": 1,
    "take_out": False,
}


def _setup(url: str) -> str:
    async def go() -> str:
        db = Database(url)
        await create_tables(db)
        await import_demo_org(db)
        wf = Workflow(
            WorkflowDeps(
                db=db,
                templates=load_templates([]),
                tz=ZoneInfo("Asia/Shanghai"),
                now=lambda: T0,
                links=PersonalLinks(
                    db, secret="test-link-secret-0123456789", public_url="http://x", now=lambda: T0
                ),
                directory=Directory(db, lambda: T0),
            )
        )
        req = await wf.submit(template_key="seal_use", initiator="u_wu", form=FORM)
        task = req.steps[0].tasks[0]
        await wf.act(
            request_id=req.id,
            action=Action(
                kind=ActionKind.APPROVE,
                actor="u_sun",
                task_id=task.id,
                version=task.version,
                comment="同意",
            ),
        )
        await wf.submit(template_key="seal_use", initiator="u_zheng", form=FORM)
        await db.dispose()
        return req.id

    return asyncio.run(go())


def _sql(url: str, statement: str) -> None:
    async def go() -> None:
        db = Database(url)
        async with db.transaction() as s:
            await s.execute(text(statement))
        await db.dispose()

    asyncio.run(go())


def test_audit_verify_passes_then_reports_an_edited_comment(tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    rid = _setup(url)
    assert main(["audit", "verify"]) == 0
    assert "trail intact" in capsys.readouterr().out
    _sql(url, "UPDATE trail_events SET comment = '不同意' WHERE kind = 'approved'")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"request {rid}" in out and "edited" in out
    assert out.count("request ") == 1, "only the tampered request is reported"


def test_audit_verify_reports_removed_events(tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    rid = _setup(url)
    _sql(
        url,
        f"DELETE FROM trail_events WHERE request_id = '{rid}' AND seq = (SELECT MAX(seq) FROM trail_events WHERE request_id = '{rid}')",
    )
    assert main(["audit", "verify", rid]) == 1
    assert "events removed" in capsys.readouterr().out
