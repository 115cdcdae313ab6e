"""The rules of directory sync: a platform's contact directory (WeCom 通讯录, DingTalk 通讯录)
plus a small overlay in, a validated `Org` and the difference from the stored one out.

- `PlatformDirectory` is what a fetcher (bot.platforms.*.directory) read: departments with
  parent and leaders, members with departments, title, leader flags, manager and active state,
  in the platform's own ids. Fetchers fill it; nothing here knows a URL or a field name.
- `Overlay` is what the platform does not know (roles such as seal_keeper, levels, sites,
  managers where the platform has none, the org ids to keep), read by `parse_overlay`.
- `directory_document` maps both onto an org-file document (the same shape as an
  `oabot org import` file) and `validate_document` runs the org loader over it, so a sync is
  checked by exactly the rules of an import and reports every problem at once.
- `diff_orgs` says what a sync changes: people added, changed, moved, deactivated, reactivated,
  departments added, renamed, moved, removed.

Mapping rules: a person keeps the org id that already owns their platform account (so a company
that imported a YAML file first keeps its ids), else the overlay's `id`, else the account. A
department is `<platform>-<id>` unless the overlay names its org id. The first leader of a
department is its leader, the others its deputies. A person's manager is the platform's (WeCom
`direct_leader`, DingTalk `manager_userid`), else the overlay's, else the head of their
department (or of the nearest department above it) who is not themself.
Pure: no I/O; the caller reads files and calls the platforms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from org.loader import OrgFileError, OrgProblem, check_org_data
from org.model import Org, User
from org.yaml_lines import LinedList, LinedMap, Scalar

OVERLAY_USER_KEYS = ("id", "roles", "level", "manager", "title")
OVERLAY_DEPARTMENT_KEYS = ("id",)


@dataclass(frozen=True)
class PlatformDepartment:
    id: str  # the platform's department id, as text
    name: str
    parent: str | None = None  # None for the top department
    leaders: tuple[str, ...] = ()  # platform accounts, leader first


@dataclass(frozen=True)
class PlatformMember:
    account: str  # WeCom / DingTalk userid
    name: str
    departments: tuple[str, ...]  # platform department ids, main department first
    title: str = ""
    leader_of: tuple[str, ...] = ()  # departments this person leads (is_leader_in_dept / leader)
    manager: str | None = None  # platform account of the direct manager, when the platform has one
    active: bool = True  # False: disabled on the platform (WeCom status 2/5)


@dataclass(frozen=True)
class PlatformDirectory:
    platform: str  # wecom | dingtalk
    departments: tuple[PlatformDepartment, ...]
    members: tuple[PlatformMember, ...]


@dataclass(frozen=True)
class Overlay:
    """What the platform does not know, keyed by platform account / platform department id."""

    organization: str | None = None
    timezone: str | None = None
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    departments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sites: tuple[Mapping[str, Any], ...] | None = None  # None: keep the stored sites


def parse_overlay(text: str, source: str = "<overlay>") -> Overlay:
    """The overlay YAML, or OrgFileError naming every problem of its shape (values are checked
    with the org when merged)."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise OrgFileError(source, [OrgProblem(line, f"malformed YAML: {exc}")]) from exc
    problems: list[OrgProblem] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OrgFileError(source, [OrgProblem(1, "expected a mapping with users, departments and sites")])
    known = ("organization", "timezone", "users", "departments", "sites")
    for key in data:
        if key not in known:
            problems.append(
                OrgProblem(None, f"unknown top-level key {key!r}; expected one of {', '.join(known)}")
            )
    users = _keyed(data.get("users"), "users", OVERLAY_USER_KEYS, problems)
    departments = _keyed(data.get("departments"), "departments", OVERLAY_DEPARTMENT_KEYS, problems)
    sites = data.get("sites")
    if sites is not None and not (isinstance(sites, list) and all(isinstance(s, dict) for s in sites)):
        problems.append(OrgProblem(None, "sites: expected a list of sites (id, name, lat, lng, radius_m)"))
        sites = None
    if problems:
        raise OrgFileError(source, problems)
    return Overlay(
        organization=str(data["organization"]) if data.get("organization") else None,
        timezone=str(data["timezone"]) if data.get("timezone") else None,
        users=users,
        departments=departments,
        sites=tuple(sites) if sites is not None else None,
    )


def _keyed(
    value: Any, name: str, allowed: tuple[str, ...], problems: list[OrgProblem]
) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(OrgProblem(None, f"{name}: expected a mapping of platform id: settings"))
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, entry in value.items():
        if not isinstance(entry, dict):
            problems.append(OrgProblem(None, f"{name} {key}: expected a mapping with {', '.join(allowed)}"))
            continue
        for k in entry:
            if k not in allowed:
                problems.append(
                    OrgProblem(None, f"{name} {key}: unknown key {k!r}; expected one of {', '.join(allowed)}")
                )
        out[str(key)] = dict(entry)
    return out


# -- platform + overlay -> an org-file document ----------------------------------------------


class _Ids:
    """Org ids for platform accounts and departments."""

    def __init__(self, platform: str, overlay: Overlay, current: Org | None, accounts: Iterable[str]) -> None:
        self.platform = platform
        self.overlay = overlay
        self.users: dict[str, str] = {}
        taken: set[str] = set()
        owners = {}
        if current is not None:
            for u in current.users.values():
                account = u.accounts.get(platform)
                if account is not None and (account not in owners or u.active):
                    owners[account] = u.id
        for account in accounts:
            wanted = overlay.users.get(account, {}).get("id")
            org_id = owners.get(account) or (str(wanted) if wanted else None) or account
            if org_id in taken:
                org_id = f"{platform}_{account}"
            taken.add(org_id)
            self.users[account] = org_id

    def user(self, account: str | None) -> str | None:
        return self.users.get(account) if account else None

    def department(self, dept_id: str) -> str:
        wanted = self.overlay.departments.get(dept_id, {}).get("id")
        return str(wanted) if wanted else f"{self.platform}-{dept_id}"


def directory_document(
    directory: PlatformDirectory,
    overlay: Overlay,
    *,
    current: Org | None,
    timezone: str,
) -> dict[str, Any]:
    """The org-file document (as `oabot org import` reads) for a platform directory and overlay.

    People disabled on the platform are listed inactive; people the platform no longer lists are
    left out (the import deactivates them)."""
    ids = _Ids(directory.platform, overlay, current, (m.account for m in directory.members))
    members = {m.account: m for m in directory.members}
    active = {m.account for m in directory.members if m.active}
    leaders = _leaders(directory)
    parents = {d.id: d.parent for d in directory.departments}
    users = []
    for m in directory.members:
        # Departments outside what the app may see are skipped; none left: validation names it.
        seen = tuple(d for d in m.departments if d in parents)
        m = replace(m, departments=seen or m.departments)
        manager = _manager(m, overlay.users.get(m.account, {}), members, leaders, parents, active)
        users.append(_user_entry(m, ids, overlay, current, ids.user(manager)))
    document: dict[str, Any] = {
        "organization": overlay.organization or (current.name if current else None),
        "timezone": overlay.timezone or (current.timezone if current else timezone),
        "departments": _department_entries(directory, ids, leaders, active),
        "users": users,
        "sites": _sites(overlay, current),
    }
    document["_unknown_overlay_accounts"] = sorted(set(overlay.users) - set(members))
    return document


def _department_entries(
    directory: PlatformDirectory, ids: _Ids, leaders: Mapping[str, tuple[str, ...]], active: set[str]
) -> list[dict[str, Any]]:
    known = {d.id for d in directory.departments}
    entries = []
    for d in directory.departments:
        heads = [ids.user(a) for a in leaders.get(d.id, ()) if a in active]
        entry: dict[str, Any] = {"id": ids.department(d.id), "name": d.name}
        if d.parent is not None and d.parent in known:
            entry["parent"] = ids.department(d.parent)
        if heads:
            entry["leader"] = heads[0]
            if heads[1:]:
                entry["deputies"] = heads[1:]
        entries.append(entry)
    return entries


def _user_entry(
    m: PlatformMember, ids: _Ids, overlay: Overlay, current: Org | None, manager: str | None
) -> dict[str, Any]:
    """One person's org-file entry. Roles and level come from the overlay when it names the
    person, else stay as stored (so a company that imported a YAML file first keeps them)."""
    extra = overlay.users.get(m.account, {})
    org_id = ids.user(m.account)
    stored = current.users.get(org_id) if current is not None and org_id else None
    named = m.account in overlay.users
    entry: dict[str, Any] = {
        "id": org_id,
        "name": m.name,
        "department": ids.department(m.departments[0]) if m.departments else None,
        "title": str(extra.get("title") or m.title or ""),
        "manager": manager,
        "roles": extra.get("roles") if named else list(stored.roles if stored else ()),
        "accounts": {**_other_accounts(current, org_id, ids.platform), ids.platform: m.account},
        "level": extra.get("level") if named else (stored.level if stored else None),
        "active": m.active,
    }
    return {k: v for k, v in entry.items() if v is not None and v != ""}


def _leaders(directory: PlatformDirectory) -> dict[str, tuple[str, ...]]:
    """Department id -> leader accounts: the department's own list, then members' leader flags."""
    out: dict[str, list[str]] = {d.id: list(d.leaders) for d in directory.departments}
    for m in directory.members:
        for dept in m.leader_of:
            found = out.setdefault(dept, [])
            if m.account not in found:
                found.append(m.account)
    return {k: tuple(v) for k, v in out.items()}


def _manager(
    m: PlatformMember,
    extra: Mapping[str, Any],
    members: Mapping[str, PlatformMember],
    leaders: Mapping[str, tuple[str, ...]],
    parents: Mapping[str, str | None],
    active: set[str],
) -> str | None:
    """The platform's manager, else the overlay's, else the nearest department head above."""
    for candidate in (m.manager, extra.get("manager")):
        if (
            candidate
            and str(candidate) in members
            and str(candidate) in active
            and str(candidate) != m.account
        ):
            return str(candidate)
    if extra.get("manager"):
        return str(extra["manager"])  # unknown: the org validation names it
    dept: str | None = m.departments[0] if m.departments else None
    seen: set[str] = set()
    while dept is not None and dept not in seen:
        seen.add(dept)
        own = leaders.get(dept, ())
        # A deputy answers to the heads listed before them; a leader to the department above.
        above = own[: own.index(m.account)] if m.account in own else own
        heads = [a for a in above if a in active and a != m.account]
        if heads:
            return heads[0]
        dept = parents.get(dept)
    return None


def _other_accounts(current: Org | None, user_id: str | None, platform: str) -> dict[str, str]:
    """Accounts on other platforms the stored org already gives this person (kept as they are)."""
    if current is None or user_id is None:
        return {}
    u = current.users.get(user_id)
    return {p: a for p, a in (u.accounts.items() if u else ()) if p != platform}


def _sites(overlay: Overlay, current: Org | None) -> list[dict[str, Any]]:
    if overlay.sites is not None:
        return [dict(s) for s in overlay.sites]
    if current is None:
        return []
    return [
        {
            "id": s.id,
            "name": s.name,
            "lat": s.lat,
            "lng": s.lng,
            "radius_m": s.radius_m,
            "coord_system": s.coord_system,
        }
        for s in current.sites.values()
        if s.active
    ]


def org_document(org: Org) -> dict[str, Any]:
    """An org as an org-file document: its active departments and sites, and the people in
    them with their state. People left in a department that is gone are left out (they are
    inactive already), and so are references to them."""
    active_depts = {d.id for d in org.departments.values() if d.active}
    people = {u.id for u in org.users.values() if u.department in active_depts}
    users = []
    for u in org.users.values():
        if u.id in people:
            entry = user_entry(u)
            if entry.get("manager") not in people:
                entry.pop("manager", None)
            users.append(entry)
    departments = []
    for d in org.departments.values():
        if d.id not in active_depts:
            continue
        heads = [h for h in d.heads if h in people]
        dept: dict[str, Any] = {"id": d.id, "name": d.name}
        if d.parent in active_depts:
            dept["parent"] = d.parent
        if heads:
            dept["leader"] = heads[0]
            if heads[1:]:
                dept["deputies"] = heads[1:]
        departments.append(dept)
    return {
        "organization": org.name,
        "timezone": org.timezone,
        "departments": departments,
        "users": users,
        "sites": _sites(Overlay(), org),
    }


def user_entry(u: User) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": u.id,
        "name": u.name,
        "department": u.department,
        "title": u.title,
        "manager": u.manager,
        "roles": list(u.roles),
        "accounts": dict(u.accounts),
        "level": u.level,
        "active": u.active,
    }
    return {k: v for k, v in entry.items() if v is not None and v != ""}


def validate_document(document: Mapping[str, Any], source: str) -> Org:
    """The org a document describes, checked by the org loader's rules; OrgFileError (every
    problem, without line numbers: the document was built, not written) otherwise."""
    clean = {k: v for k, v in document.items() if not k.startswith("_") and v is not None}
    try:
        return check_org_data(_lined(clean, _Lines()), source)
    except OrgFileError as exc:
        raise OrgFileError(source, [OrgProblem(None, p.message) for p in exc.problems]) from None


class _Lines:
    """Made-up line numbers, one per value, for data that was built rather than written."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


_TAGS = {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}


def _lined(value: Any, lines: _Lines) -> Any:
    """`value` as the org loader reads a file (`org.yaml_lines` with scalars as written), without
    going through YAML text: a large directory validates in a fraction of the time."""
    if isinstance(value, Mapping):
        out = LinedMap(lines.next())
        for key, item in value.items():
            out.key_lines[str(key)] = out.value_lines[str(key)] = lines.n
            out[str(key)] = _lined(item, lines)
        return out
    if isinstance(value, list | tuple):
        items = LinedList(lines.next())
        for item in value:
            items.item_lines.append(lines.n + 1)
            items.append(_lined(item, lines))
        return items
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return Scalar(value, text, f"tag:yaml.org,2002:{_TAGS.get(type(value), 'str')}", lines.n)


def unused_overlay(document: Mapping[str, Any]) -> list[str]:
    """Overlay entries for accounts the directory does not list (people who left, typos):
    ignored, so that someone leaving never blocks a sync, and reported."""
    return list(document.get("_unknown_overlay_accounts", []))


def member_document(
    current: Org,
    platform: str,
    member: PlatformMember | None,
    account: str,
    overlay: Overlay,
) -> dict[str, Any]:
    """The stored org with one person re-read from the platform: replaced, added, or (None:
    the platform no longer has them) left out so the import deactivates them."""
    document = org_document(current)
    owner = current.user_by_account(platform, account)
    users = [e for e in document["users"] if owner is None or e["id"] != owner.id]
    if member is not None:
        users.append(_member_entry(current, platform, member, overlay, owner))
    document["users"] = users
    return document


def _member_entry(
    current: Org, platform: str, member: PlatformMember, overlay: Overlay, owner: User | None
) -> dict[str, Any]:
    extra = overlay.users.get(member.account, {})
    department = (
        _stored_department(current, platform, overlay, member.departments[0]) if member.departments else None
    )
    if department is None and owner is not None:
        # A department this org does not have yet (its own event or the nightly sync brings it):
        # they stay where they were until then.
        department = owner.department
    org_id = owner.id if owner else (str(extra.get("id")) if extra.get("id") else member.account)
    roles = extra.get("roles") if extra.get("roles") is not None else (owner.roles if owner else ())
    level = extra.get("level") if extra.get("level") is not None else (owner.level if owner else None)
    entry: dict[str, Any] = {
        "id": org_id,
        "name": member.name,
        "department": department,
        "title": str(extra.get("title") or member.title or ""),
        "manager": _member_manager(current, platform, member, extra, org_id, department, owner),
        "roles": list(roles or []),
        "accounts": {**(dict(owner.accounts) if owner else {}), platform: member.account},
        "level": level,
        "active": member.active,
    }
    return {k: v for k, v in entry.items() if v is not None and v != ""}


def _member_manager(
    current: Org,
    platform: str,
    member: PlatformMember,
    extra: Mapping[str, Any],
    org_id: str,
    department: str | None,
    owner: User | None,
) -> str | None:
    """The platform's manager, else the overlay's, else a head of their department, else the
    one they had."""
    for account in (member.manager, extra.get("manager")):
        holder = current.user_by_account(platform, str(account)) if account else None
        if holder is not None and holder.active and holder.id != org_id:
            return holder.id
    dept = current.departments.get(department or "")
    heads = [h for h in (dept.heads if dept else ()) if h != org_id and current.is_active(h)]
    if heads:
        return heads[0]
    return owner.manager if owner else None


def _stored_department(current: Org, platform: str, overlay: Overlay, dept_id: str) -> str | None:
    wanted = overlay.departments.get(dept_id, {}).get("id")
    org_id = str(wanted) if wanted else f"{platform}-{dept_id}"
    return org_id if org_id in current.departments else None


def department_document(
    current: Org, platform: str, department: PlatformDepartment | None, dept_id: str, overlay: Overlay
) -> dict[str, Any]:
    """The stored org with one department re-read: renamed, moved, its heads set, or removed."""
    document = org_document(current)
    wanted = overlay.departments.get(dept_id, {}).get("id")
    org_id = str(wanted) if wanted else f"{platform}-{dept_id}"
    entries = [d for d in document["departments"] if d["id"] != org_id]
    if department is not None:
        by_account = {
            u.accounts[platform]: u.id for u in current.users.values() if platform in u.accounts and u.active
        }
        heads = [by_account[a] for a in department.leaders if a in by_account]
        entry: dict[str, Any] = {"id": org_id, "name": department.name}
        if department.parent is not None:
            entry["parent"] = _stored_department(current, platform, overlay, department.parent)
        if heads:
            entry["leader"] = heads[0]
            if heads[1:]:
                entry["deputies"] = heads[1:]
        entries.append({k: v for k, v in entry.items() if v is not None})
    document["departments"] = entries
    return document


def successor_for(old: Org | None, new: Org, user_id: str, handover_to: str | None) -> str | None:
    """Who takes over a leaver's open tasks: the configured hand-over person when set and
    active, else the first manager up their chain (as it was) who is still active."""
    if handover_to and handover_to != user_id and new.is_active(handover_to):
        return handover_to
    for manager in old.manager_chain(user_id) if old else []:
        if new.is_active(manager):
            return manager
    return None


# -- what a sync changes ---------------------------------------------------------------------


@dataclass
class PersonChange:
    id: str
    name: str
    fields: tuple[str, ...] = ()  # name, title, department, manager, roles, level, accounts
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class OrgDiff:
    added: list[PersonChange] = field(default_factory=list)
    changed: list[PersonChange] = field(default_factory=list)
    moved: list[PersonChange] = field(default_factory=list)  # department changed (also in changed)
    deactivated: list[PersonChange] = field(default_factory=list)
    reactivated: list[PersonChange] = field(default_factory=list)
    departments_added: list[str] = field(default_factory=list)
    departments_renamed: list[tuple[str, str, str]] = field(default_factory=list)  # id, before, after
    departments_moved: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    departments_removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.changed
            or self.deactivated
            or self.reactivated
            or self.departments_added
            or self.departments_renamed
            or self.departments_moved
            or self.departments_removed
        )

    def to_json(self) -> dict[str, Any]:
        def people(items: list[PersonChange]) -> list[dict[str, Any]]:
            return [
                {
                    "id": p.id,
                    "name": p.name,
                    "fields": list(p.fields),
                    "before": dict(p.before),
                    "after": dict(p.after),
                }
                for p in items
            ]

        return {
            "added": people(self.added),
            "changed": people(self.changed),
            "moved": people(self.moved),
            "deactivated": people(self.deactivated),
            "reactivated": people(self.reactivated),
            "departments_added": self.departments_added,
            "departments_renamed": [list(x) for x in self.departments_renamed],
            "departments_moved": [list(x) for x in self.departments_moved],
            "departments_removed": self.departments_removed,
        }


_FIELDS = ("name", "title", "department", "manager", "roles", "level", "accounts")


def _value(u: User, name: str) -> Any:
    value = getattr(u, name)
    return list(value) if isinstance(value, tuple) else value


def diff_orgs(old: Org | None, new: Org) -> OrgDiff:
    """What making the stored `old` match `new` changes (new lists who should be in it; anyone
    active in old and missing from new is deactivated, as the import does)."""
    diff = OrgDiff()
    before_users = old.users if old else {}
    for u in new.users.values():
        _diff_person(diff, before_users.get(u.id), u)
    diff.deactivated += [
        PersonChange(u.id, u.name) for u in before_users.values() if u.id not in new.users and u.active
    ]
    before_depts = old.departments if old else {}
    for d in new.departments.values():
        was = before_depts.get(d.id)
        if was is None or not was.active:
            diff.departments_added.append(d.id)
            continue
        if was.name != d.name:
            diff.departments_renamed.append((d.id, was.name, d.name))
        if was.parent != d.parent:
            diff.departments_moved.append((d.id, was.parent, d.parent))
    diff.departments_removed = [
        d.id for d in before_depts.values() if d.active and d.id not in new.departments
    ]
    return diff


def _diff_person(diff: OrgDiff, was: User | None, u: User) -> None:
    if was is None:
        if u.active:
            diff.added.append(PersonChange(u.id, u.name))
        return
    if was.active and not u.active:
        diff.deactivated.append(PersonChange(u.id, was.name))
        return
    if not was.active and u.active:
        diff.reactivated.append(PersonChange(u.id, u.name))
    changed = tuple(f for f in _FIELDS if _value(was, f) != _value(u, f))
    if not changed or not u.active:
        return
    change = PersonChange(
        u.id, u.name, changed, {f: _value(was, f) for f in changed}, {f: _value(u, f) for f in changed}
    )
    diff.changed.append(change)
    if "department" in changed:
        diff.moved.append(change)
