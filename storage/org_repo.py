"""Stores the organisation directory: an `org.model.Org` in, rows out, and back.

`import_org` makes the tables match a validated org file inside the caller's transaction:
new people are added, changed ones updated, people missing from the file deactivated (never
deleted, so trails keep their names; their platform accounts stay theirs, locked, unless the
file gives the account to someone else). Departments and sites follow the same rule.
`load_org` returns the current snapshot, inactive people included. Validation is the loader's
job; this module decides nothing about approvals.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from org.model import Department, Org, Site, User
from storage.org_models import (
    ORG_META_ID,
    DepartmentRow,
    OrgMetaRow,
    OrgSyncRow,
    OrgUserRow,
    SiteRow,
    UserAccountRow,
)

# Two imports at once on PostgreSQL would race on the same rows; this lock (held until the
# caller's transaction ends) makes them take turns. SQLite's BEGIN IMMEDIATE already does.
_IMPORT_LOCK_KEY = zlib.crc32(b"oabot:org-import")


class OrgNotImported(LookupError):
    """No organisation has been imported into this database yet."""


@dataclass
class Changes:
    """Ids added, updated and deactivated by one import."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deactivated)


@dataclass
class ImportReport:
    """What an import changed. `added`/`updated`/`deactivated` are user ids, in file order;
    a person who comes back after being deactivated counts as updated."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0
    names: dict[str, str] = field(default_factory=dict)  # user id -> name, for everyone listed
    departments: Changes = field(default_factory=Changes)
    sites: Changes = field(default_factory=Changes)
    version: int = 1  # org_meta.version after the import

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deactivated) or (
            self.departments.changed or self.sites.changed
        )


async def import_org(session: AsyncSession, org: Org, *, now: datetime) -> ImportReport:
    """Make the directory tables match `org` (already validated). The caller owns the transaction."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK_KEY})

    report = ImportReport()
    report.departments = await _sync_departments(session, org, now=now)
    report.sites = await _sync_sites(session, org, now=now)
    people, names = await _sync_users(session, org, now=now)
    await session.flush()  # accounts point at users: the users must exist first
    accounts_changed = await _sync_accounts(session, org)
    updated = set(people.updated) | (accounts_changed - set(people.added) - set(people.deactivated))
    report.added = people.added
    report.updated = [user_id for user_id in org.users if user_id in updated]
    report.deactivated = people.deactivated
    report.unchanged = len(set(org.users) - set(report.added) - updated - set(report.deactivated))
    listed = [*report.added, *report.updated, *report.deactivated]
    report.names = {user_id: names[user_id] for user_id in listed}

    meta = await session.get(OrgMetaRow, ORG_META_ID)
    if meta is None:
        meta = OrgMetaRow(id=ORG_META_ID, name=org.name, timezone=org.timezone, imported_at=now, version=1)
        session.add(meta)
    else:
        if report.changed or (meta.name, meta.timezone) != (org.name, org.timezone):
            meta.version += 1
        meta.name = org.name
        meta.timezone = org.timezone
        meta.imported_at = now
    report.version = meta.version
    await session.flush()
    return report


async def load_org(session: AsyncSession) -> Org:
    """The current directory, inactive people, departments and sites included (active=False).

    Raises OrgNotImported when nothing has been imported yet.
    """
    meta = await session.get(OrgMetaRow, ORG_META_ID)
    if meta is None:
        raise OrgNotImported("no organisation has been imported; run `oabot org import FILE`")
    dept_rows = (await session.execute(select(DepartmentRow))).scalars().all()
    user_rows = (await session.execute(select(OrgUserRow))).scalars().all()
    account_rows = (await session.execute(select(UserAccountRow))).scalars().all()
    site_rows = (await session.execute(select(SiteRow))).scalars().all()

    accounts: dict[str, dict[str, str]] = {}
    for a in sorted(account_rows, key=lambda a: (a.platform, a.account)):
        accounts.setdefault(a.user_id, {})[a.platform] = a.account

    def listing_order(row: DepartmentRow | OrgUserRow | SiteRow) -> tuple[bool, int, str]:
        return (not row.active, row.position, row.id)

    departments = {
        d.id: Department(
            id=d.id,
            name=d.name,
            parent=d.parent_id,
            leader=d.leader_id,
            deputies=tuple(d.deputy_ids),
            active=d.active,
        )
        for d in sorted(dept_rows, key=listing_order)
    }
    users = {
        u.id: User(
            id=u.id,
            name=u.name,
            department=u.department_id,
            title=u.title,
            manager=u.manager_id,
            roles=tuple(u.roles),
            accounts=accounts.get(u.id, {}),
            level=u.level,
            active=u.active,
        )
        for u in sorted(user_rows, key=listing_order)
    }
    sites = {
        s.id: Site(
            id=s.id,
            name=s.name,
            lat=s.lat,
            lng=s.lng,
            radius_m=s.radius_m,
            coord_system=s.coord_system,
            active=s.active,
        )
        for s in sorted(site_rows, key=listing_order)
    }
    return Org(name=meta.name, timezone=meta.timezone, departments=departments, users=users, sites=sites)


async def get_org_meta(session: AsyncSession) -> OrgMetaRow | None:
    """The org_meta row (name, timezone, imported_at, version), or None before the first import."""
    return await session.get(OrgMetaRow, ORG_META_ID)


# -- one table at a time ------------------------------------------------------------------


async def _sync_departments(session: AsyncSession, org: Org, *, now: datetime) -> Changes:
    changes = Changes()
    rows = {r.id: r for r in (await session.execute(select(DepartmentRow))).scalars().all()}
    for position, d in enumerate(org.departments.values()):
        values: dict[str, Any] = {
            "name": d.name,
            "parent_id": d.parent,
            "leader_id": d.leader,
            "deputy_ids": list(d.deputies),
            "active": d.active,
        }
        row = rows.get(d.id)
        if row is None:
            session.add(DepartmentRow(id=d.id, position=position, updated_at=now, **values))
            changes.added.append(d.id)
            continue
        row.position = position
        was_active = row.active
        if _apply(row, values):
            row.updated_at = now
            _record(changes, d.id, was_active=was_active, now_active=d.active)
    for row in rows.values():
        if row.id not in org.departments and row.active:
            row.active = False
            row.updated_at = now
            changes.deactivated.append(row.id)
    return changes


async def _sync_sites(session: AsyncSession, org: Org, *, now: datetime) -> Changes:
    changes = Changes()
    rows = {r.id: r for r in (await session.execute(select(SiteRow))).scalars().all()}
    for position, s in enumerate(org.sites.values()):
        values: dict[str, Any] = {
            "name": s.name,
            "lat": s.lat,
            "lng": s.lng,
            "radius_m": s.radius_m,
            "coord_system": s.coord_system,
            "active": s.active,
        }
        row = rows.get(s.id)
        if row is None:
            session.add(SiteRow(id=s.id, position=position, updated_at=now, **values))
            changes.added.append(s.id)
            continue
        row.position = position
        was_active = row.active
        if _apply(row, values):
            row.updated_at = now
            _record(changes, s.id, was_active=was_active, now_active=s.active)
    for row in rows.values():
        if row.id not in org.sites and row.active:
            row.active = False
            row.updated_at = now
            changes.deactivated.append(row.id)
    return changes


async def _sync_users(session: AsyncSession, org: Org, *, now: datetime) -> tuple[Changes, dict[str, str]]:
    """Upsert people; return the changes and every person's name (stored ones for leavers)."""
    rows = {r.id: r for r in (await session.execute(select(OrgUserRow))).scalars().all()}
    names = {row.id: row.name for row in rows.values()} | {u.id: u.name for u in org.users.values()}
    changes = Changes()
    for position, u in enumerate(org.users.values()):
        values: dict[str, Any] = {
            "name": u.name,
            "department_id": u.department,
            "title": u.title,
            "manager_id": u.manager,
            "roles": list(u.roles),
            "level": u.level,
            "active": u.active,
        }
        row = rows.get(u.id)
        if row is None:
            session.add(
                OrgUserRow(
                    id=u.id,
                    position=position,
                    created_at=now,
                    updated_at=now,
                    deactivated_at=None if u.active else now,
                    **values,
                )
            )
            changes.added.append(u.id)
            continue
        row.position = position
        was_active = row.active
        if _apply(row, values):
            row.updated_at = now
            if was_active != u.active:
                row.deactivated_at = None if u.active else now
            _record(changes, u.id, was_active=was_active, now_active=u.active)
    for row in rows.values():
        if row.id not in org.users and row.active:
            row.active = False
            row.updated_at = now
            row.deactivated_at = now
            changes.deactivated.append(row.id)
    return changes, names


async def _sync_accounts(session: AsyncSession, org: Org) -> set[str]:
    """Make user_accounts match the file; return ids of people whose accounts changed.

    Accounts of people no longer in the file stay theirs (so a message from them is recognised
    and refused), unless the file now gives that account to someone else.
    """
    wanted = {
        (platform, account): u.id for u in org.users.values() for platform, account in u.accounts.items()
    }
    changed: set[str] = set()
    rows = (await session.execute(select(UserAccountRow))).scalars().all()
    for row in rows:
        key = (row.platform, row.account)
        owner = wanted.pop(key, None)
        if owner is None:
            if row.user_id in org.users:  # still in the file, but without this account
                changed.add(row.user_id)
                await session.delete(row)
        elif owner != row.user_id:
            changed.update((owner, row.user_id) if row.user_id in org.users else (owner,))
            row.user_id = owner
    for (platform, account), user_id in wanted.items():
        session.add(UserAccountRow(platform=platform, account=account, user_id=user_id))
        changed.add(user_id)
    return changed


def _apply(row: DepartmentRow | OrgUserRow | SiteRow, values: dict[str, Any]) -> bool:
    """Set the differing attributes; True if any differed."""
    differs = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            differs = True
    return differs


def _record(changes: Changes, item_id: str, *, was_active: bool, now_active: bool) -> None:
    if was_active and not now_active:
        changes.deactivated.append(item_id)
    else:
        changes.updated.append(item_id)


# -- the record of directory syncs --------------------------------------------------------


async def record_sync(session: AsyncSession, row: OrgSyncRow) -> OrgSyncRow:
    """Add one sync to `org_syncs` (in the caller's transaction); the row with its id."""
    session.add(row)
    await session.flush()
    return row


async def list_syncs(session: AsyncSession, *, limit: int = 20) -> list[OrgSyncRow]:
    """The latest syncs, newest first."""
    q = select(OrgSyncRow).order_by(OrgSyncRow.started_at.desc(), OrgSyncRow.id.desc()).limit(limit)  # type: ignore[union-attr,attr-defined]
    return list((await session.execute(q)).scalars().all())
