"""`oabot audit verify` finds a trail that was edited or cut short after the fact, and a table
that disagrees with its trail; `oabot audit rekey` anchors legacy trails. The trail key comes
from ./var/trail.key, generated on first use (zero configuration)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from approvals.engine import Action
from approvals.model import ActionKind
from approvals.template_loader import load_templates
from approvals.trail import TrailKeys
from bot.cli import main
from bot.settings import load_settings
from bot.trail_key import load_trail_keys
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


def _setup(url: str, *, keyed: bool = True) -> str:
    """A request approved by u_sun and one still running, sealed with the key in ./var/trail.key
    (generated now, as `oabot serve` would), or unkeyed as before the upgrade."""
    keys: TrailKeys | None = load_trail_keys(load_settings()) if keyed else None

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
                trail_keys=keys,
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
    """Run `statement` as the database owner could: past the append-only triggers."""

    async def go() -> None:
        db = Database(url)
        async with db.transaction() as s:
            await s.execute(text("DROP TRIGGER IF EXISTS trail_events_no_update"))
            await s.execute(text("DROP TRIGGER IF EXISTS trail_events_no_delete"))
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
    assert f"request {rid}: #4: content does not match its hash (edited?)" in out
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


def test_audit_verify_reports_a_running_request_marked_approved_in_the_database(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    rid = _setup(url)
    _sql(url, f"UPDATE approval_requests SET status = 'approved' WHERE id = '{rid}'")

    assert main(["audit", "verify"]) == 1

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"request {rid}: replay: status: the trail says running, the table says approved"
    ]
    assert "checked 2/2 requests" in captured.err


def test_the_trail_key_file_is_generated_once_readable_by_its_owner_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OABOT_TRAIL_KEY", raising=False)
    monkeypatch.chdir(tmp_path)

    first = load_trail_keys(load_settings())
    again = load_trail_keys(load_settings())

    key_file = tmp_path / "var" / "trail.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.current == again.current and len(key_file.read_text().strip()) == 64


def test_audit_rekey_anchors_legacy_trails_once(tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    _setup(url, keyed=False)

    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "2 of them legacy (written before the trail key): see `oabot audit rekey`" in err

    assert main(["audit", "rekey"]) == 0
    assert "anchored 2 legacy trail(s) with the trail key" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "rekey"]) == 0
    assert "anchored 0 legacy trail(s)" in capsys.readouterr().out
