"""Directory sync: the platform's contact directory becomes the org, and people who leave hand
their work over (离职交接).

One sync is: read everything from the platform first (a `DirectorySource`, in
`bot.platforms.*.directory`; a failure on any page raises `DirectoryReadFailed` before anything
is written), read the overlay, map and validate with `org.directory_sync` (the rules of
`oabot org import`; every problem at once, `OrgFileError`, nothing written), then in ONE
transaction: make the directory tables match, move each leaver's open tasks to their successor
through the engine (`Workflow.hand_over_in`, trail "离职交接", a card for the new assignee), end
their delegations and personal API tokens, and record the sync in `org_syncs`. After the commit
their sessions end on every replica. A lost race with someone acting on a request retries the
whole unit. `dry_run` stops before writing and reports what would change.

Contact events (WeCom `change_contact`, DingTalk `user_*_org` / `org_dept_*`) never apply what
the event says: they schedule an `org_refresh` timer that re-reads that one person or
department from the platform and applies it the same way. The nightly sync is the `org_sync`
timer kind, registered only when OABOT_ORG_SYNC names a platform.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from deadlines import timers
from deadlines.slots import next_daily, slot_key
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind
from org.directory_sync import (
    OrgDiff,
    Overlay,
    PlatformDepartment,
    PlatformDirectory,
    PlatformMember,
    department_document,
    diff_orgs,
    directory_document,
    member_document,
    parse_overlay,
    successor_for,
    unused_overlay,
    validate_document,
)
from org.loader import OrgFileError, OrgProblem
from org.model import Org
from services.api_tokens import end_personal_tokens
from services.approvals import Busy, Workflow
from services.directory import Directory
from services.identity import Sessions
from services.optimistic import retry_on_conflict
from storage import approval_store
from storage.db import Database
from storage.org_models import OrgSyncRow
from storage.org_repo import OrgNotImported, import_org, list_syncs, load_org, record_sync

logger = logging.getLogger(__name__)

PLATFORMS = ("wecom", "dingtalk")


class DirectoryReadFailed(Exception):
    """The platform's directory could not be read completely; nothing was changed."""

    def __init__(self, platform: str, detail: str) -> None:
        super().__init__(f"{platform}: {detail}")
        self.platform = platform
        self.detail = detail


class SyncNotConfigured(Exception):
    """No credentials for the platform asked for."""


class DirectorySource(Protocol):
    """A platform's contact directory, read-only (bot.platforms.wecom/dingtalk.directory)."""

    platform: str

    async def read_all(self) -> PlatformDirectory: ...

    async def read_member(self, account: str) -> PlatformMember | None: ...

    async def read_department(self, dept_id: str) -> PlatformDepartment | None: ...


@dataclass(frozen=True)
class SyncConfig:
    timezone: str = "Asia/Shanghai"
    overlay: str | None = None  # path of the overlay YAML (OABOT_ORG_OVERLAY)
    handover_to: str | None = None  # OABOT_ORG_HANDOVER_TO: takes leavers' tasks before managers
    scheduled: str | None = None  # OABOT_ORG_SYNC: the platform synced nightly and on events
    at: time | None = time(2, 30)  # OABOT_ORG_SYNC_AT, organisation time; None: no nightly sync


@dataclass(frozen=True)
class Handover:
    user: str
    name: str
    successor: str | None
    successor_name: str
    tasks: int  # open tasks that move (or, in a dry run, would move)


@dataclass
class SyncReport:
    platform: str
    scope: str  # all | person | department
    dry_run: bool
    diff: OrgDiff
    handovers: list[Handover] = field(default_factory=list)
    sync_id: int | None = None
    moved: int = 0
    tokens_ended: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # department id -> name (new, else old)
    person_names: dict[str, str] = field(default_factory=dict)  # user id -> name (new, else old)
    overlay_unused: list[str] = field(default_factory=list)  # overlay accounts not in the directory
    people: int = 0  # active people in the org the sync leads to
    departments: int = 0

    @property
    def status(self) -> str:
        return "unchanged" if self.diff.empty else "applied"


@dataclass(frozen=True)
class SyncRecord:
    id: int
    platform: str
    trigger: str
    scope: str
    status: str
    started_at: datetime
    finished_at: datetime
    summary: str
    handed_over: int
    problems: list[str]


Build = Callable[[Org | None], Mapping[str, Any]]


class OrgSync:
    def __init__(
        self,
        *,
        db: Database,
        workflow: Workflow,
        sources: Mapping[str, DirectorySource],
        config: SyncConfig,
        now: Callable[[], datetime],
        sessions: Sessions | None = None,
        directory: Directory | None = None,
        kinds: TimerKinds | None = None,
    ) -> None:
        self.db = db
        self.workflow = workflow
        self.sources = dict(sources)
        self.config = config
        self.now = now
        self.sessions = sessions
        self.directory = directory
        if kinds is not None:
            kinds.register(TimerKind.ORG_REFRESH, self.fire_refresh)
            if config.scheduled in self.sources and config.at is not None:
                kinds.register(TimerKind.ORG_SYNC, self.fire_nightly, next_slot=self.schedule_next)

    # -- the use cases ----------------------------------------------------------------------
    async def sync(self, platform: str, *, dry_run: bool = False, trigger: str = "cli") -> SyncReport:
        """Read the whole directory, then apply it (or, `dry_run`, say what it would change).

        Raises DirectoryReadFailed (recorded as failed) or OrgFileError (recorded as refused);
        in both cases nothing changed."""
        source = self._source(platform)
        overlay = self._overlay()
        started = self.now()
        try:
            directory = await source.read_all()
        except DirectoryReadFailed as exc:
            await self._record_problem(platform, trigger, "all", started, "failed", [str(exc)])
            raise

        def build(current: Org | None) -> Mapping[str, Any]:
            return directory_document(directory, overlay, current=current, timezone=self.config.timezone)

        return await self._apply(platform, "all", trigger, started, build, dry_run=dry_run)

    async def refresh_member(self, platform: str, account: str, *, trigger: str) -> SyncReport | None:
        """Re-read one person (after a contact event) and apply just that; None before any import."""
        source = self._source(platform)
        overlay = self._overlay()
        started = self.now()
        member = await source.read_member(account)

        def build(current: Org | None) -> Mapping[str, Any]:
            assert current is not None
            return member_document(current, platform, member, account, overlay)

        return await self._apply_to_existing(platform, "person", trigger, started, build)

    async def refresh_department(self, platform: str, dept_id: str, *, trigger: str) -> SyncReport | None:
        """Re-read one department (after a contact event) and apply just that."""
        source = self._source(platform)
        overlay = self._overlay()
        started = self.now()
        department = await source.read_department(dept_id)

        def build(current: Org | None) -> Mapping[str, Any]:
            assert current is not None
            return department_document(current, platform, department, dept_id, overlay)

        return await self._apply_to_existing(platform, "department", trigger, started, build)

    async def history(self, limit: int = 20) -> list[SyncRecord]:
        return await sync_history(self.db, limit=limit)

    # -- events and the nightly sync -----------------------------------------------------------
    async def schedule_refresh(
        self, platform: str, scope: str, ident: str, *, event: str, event_key: str
    ) -> bool:
        """Remember to re-read one person (`scope` "person") or department after a contact event;
        False when this event was already seen (a platform retry) or sync is off for it."""
        if self.config.scheduled != platform or scope not in ("person", "department") or not ident:
            logger.info(
                "contact event ignored: directory sync is off for this platform",
                extra={"platform": platform, "event": event, "ident": ident},
            )
            return False
        now = self.now()
        # One timer per delivery of one event: a platform's retry finds it there already.
        digest = hashlib.sha256(f"{platform}\n{scope}\n{ident}\n{event_key}".encode()).hexdigest()[:48]
        key = f"org_refresh:{digest}"
        async with self.db.transaction() as s:
            added = await timers.schedule_once(
                s,
                kind=TimerKind.ORG_REFRESH,
                key=key,
                due_at=now,
                now=now,
                ref=ident[:64],
                data={"platform": platform, "scope": scope, "id": ident, "event": event},
            )
        logger.info(
            "contact event: re-read scheduled" if added else "contact event repeated",
            extra={"platform": platform, "scope": scope, "ident": ident, "event": event},
        )
        return added

    async def fire_refresh(self, timer: Timer) -> FireResult:
        data = timer.data
        platform, scope, ident = str(data["platform"]), str(data["scope"]), str(data["id"])
        trigger = f"event:{data.get('event', '')}:{ident}"[:128]
        try:
            if scope == "person":
                await self.refresh_member(platform, ident, trigger=trigger)
            else:
                await self.refresh_department(platform, ident, trigger=trigger)
        except OrgFileError as exc:
            logger.warning("contact event not applied: %s", exc, extra={"platform": platform, "ident": ident})
        return await self._finish(timer)

    async def schedule_next(self, session: AsyncSession, *, after: datetime, now: datetime) -> datetime:
        slot = next_daily((self.config.at or time(2, 30),), after=after, tz=ZoneInfo(self.config.timezone))
        await timers.schedule_once(
            session, kind=TimerKind.ORG_SYNC, key=slot_key("org_sync", slot), due_at=slot, now=now
        )
        return slot

    async def fire_nightly(self, timer: Timer) -> FireResult:
        platform = self.config.scheduled or ""
        result = FireResult.FIRED
        try:
            await self.sync(platform, trigger="schedule")
        except (DirectoryReadFailed, OrgFileError) as exc:
            logger.error("nightly directory sync not applied: %s", exc, extra={"platform": platform})
            result = FireResult.SKIPPED
        now = self.now()
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            await self.schedule_next(s, after=max(now, timer.due_at), now=now)
        return result

    async def _finish(self, timer: Timer) -> FireResult:
        async with self.db.transaction() as s:
            if not await timers.finish(s, timer, now=self.now()):
                return FireResult.LOST
        return FireResult.FIRED

    # -- applying ------------------------------------------------------------------------------
    def _source(self, platform: str) -> DirectorySource:
        source = self.sources.get(platform)
        if source is None:
            raise SyncNotConfigured(platform)
        return source

    def _overlay(self) -> Overlay:
        if not self.config.overlay:
            return Overlay()
        path = Path(self.config.overlay)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise OrgFileError(
                str(path), [OrgProblem(None, f"cannot be read ({exc.strerror or exc})")]
            ) from exc
        return parse_overlay(text, str(path))

    async def _apply_to_existing(
        self, platform: str, scope: str, trigger: str, started: datetime, build: Build
    ) -> SyncReport | None:
        async with self.db.session() as s:
            try:
                await load_org(s)
            except OrgNotImported:
                logger.info(
                    "contact event before any org import: nothing to update", extra={"platform": platform}
                )
                return None
        return await self._apply(platform, scope, trigger, started, build, dry_run=False)

    async def _apply(
        self, platform: str, scope: str, trigger: str, started: datetime, build: Build, *, dry_run: bool
    ) -> SyncReport:
        async def attempt() -> SyncReport:
            return await self._apply_once(platform, scope, trigger, started, build, dry_run=dry_run)

        try:
            report = await retry_on_conflict(attempt, busy=Busy(platform=platform))
        except OrgFileError as exc:
            await self._record_problem(
                platform, trigger, scope, started, "refused", [p.message for p in exc.problems]
            )
            raise
        if not dry_run:
            leavers = [p.id for p in report.diff.deactivated]
            if self.sessions is not None and leavers:
                await self.sessions.end_all_of(leavers)
            if self.directory is not None:
                await self.directory.org(fresh=True)
        return report

    async def _apply_once(
        self, platform: str, scope: str, trigger: str, started: datetime, build: Build, *, dry_run: bool
    ) -> SyncReport:
        now = self.now()
        async with self.db.transaction() as s:
            try:
                current: Org | None = await load_org(s)
            except OrgNotImported:
                current = None
            document = build(current)
            new = validate_document(document, f"{platform} directory")
            diff = diff_orgs(current, new)
            report = SyncReport(platform, scope, dry_run, diff, overlay_unused=unused_overlay(document))
            report.names = {d.id: d.name for d in (current.departments.values() if current else ())}
            report.names |= {d.id: d.name for d in new.departments.values()}
            report.person_names = {u.id: u.name for u in (current.users.values() if current else ())}
            report.person_names |= {u.id: u.name for u in new.users.values()}
            report.people = sum(1 for u in new.users.values() if u.active)
            report.departments = len(new.departments)
            for gone in diff.deactivated:
                successor = successor_for(current, new, gone.id, self.config.handover_to)
                count = await approval_store.open_task_count(s, user=gone.id)
                report.handovers.append(
                    Handover(gone.id, gone.name, successor, new.display_name(successor), count)
                )
            if dry_run:
                await s.rollback()
                return report
            await import_org(s, new, now=now)
            stored = await load_org(s)
            for h in report.handovers:
                if h.successor is not None and h.tasks:
                    report.moved += await self.workflow.hand_over_in(
                        s, leaver=h.user, successor=h.successor, org=stored
                    )
                elif h.tasks:
                    logger.warning(
                        "a leaver's tasks stay with them: no active manager or hand-over person",
                        extra={"user": h.user, "tasks": h.tasks},
                    )
            report.tokens_ended = await end_personal_tokens(
                s, user_ids=[h.user for h in report.handovers], now=now
            )
            row = await record_sync(
                s,
                OrgSyncRow(
                    platform=platform,
                    trigger=trigger[:128],
                    scope=scope,
                    status=report.status,
                    started_at=started,
                    finished_at=now,
                    summary=summary(report)[:512],
                    diff=diff.to_json(),
                    problems=[],
                    handed_over=report.moved,
                ),
            )
            report.sync_id = row.id
        logger.info(
            "directory sync applied",
            extra={"platform": platform, "scope": scope, "sync_id": report.sync_id, "moved": report.moved},
        )
        return report

    async def _record_problem(
        self, platform: str, trigger: str, scope: str, started: datetime, status: str, problems: list[str]
    ) -> None:
        async with self.db.transaction() as s:
            await record_sync(
                s,
                OrgSyncRow(
                    platform=platform,
                    trigger=trigger[:128],
                    scope=scope,
                    status=status,
                    started_at=started,
                    finished_at=self.now(),
                    summary=(problems[0] if problems else status)[:512],
                    diff={},
                    problems=problems[:200],
                    handed_over=0,
                ),
            )


async def sync_history(db: Database, *, limit: int = 20) -> list[SyncRecord]:
    """The latest syncs, newest first (`oabot org history`)."""
    async with db.session() as s:
        rows = await list_syncs(s, limit=limit)
    return [
        SyncRecord(
            id=r.id or 0,
            platform=r.platform,
            trigger=r.trigger,
            scope=r.scope,
            status=r.status,
            started_at=r.started_at,
            finished_at=r.finished_at,
            summary=r.summary,
            handed_over=r.handed_over,
            problems=list(r.problems),
        )
        for r in rows
    ]


def summary(report: SyncReport) -> str:
    d = report.diff
    return (
        f"{len(d.added)} added, {len(d.changed)} changed ({len(d.moved)} moved), "
        f"{len(d.deactivated)} deactivated, {len(d.reactivated)} reactivated; departments: "
        f"{len(d.departments_added)} added, {len(d.departments_renamed)} renamed, "
        f"{len(d.departments_moved)} moved, {len(d.departments_removed)} removed; "
        f"{report.moved} tasks handed over"
    )
