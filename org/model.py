"""Immutable snapshot of the organisation with the lookups the approval engine needs.

Pure: no I/O. Built by `org.loader` from YAML or by `storage.org_repo` from rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

# Longest values the loader accepts; storage sizes its columns from the same numbers so an
# import that passed validation never fails half-way on a too-long value.
ID_MAX_LEN = 64
NAME_MAX_LEN = 128
ROLE_MAX_LEN = 64
PLATFORM_MAX_LEN = 32
ACCOUNT_MAX_LEN = 128
TIMEZONE_MAX_LEN = 64
COORD_SYSTEMS = ("gcj02", "wgs84")  # gcj02 (国测局) is what Chinese map SDKs report


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    parent: str | None = None
    leader: str | None = None
    deputies: tuple[str, ...] = ()
    active: bool = True  # False once the department is gone from the org file

    @property
    def heads(self) -> tuple[str, ...]:
        """Leader first, then deputies (a department's heads 部门负责人)."""
        return ((self.leader,) if self.leader else ()) + tuple(d for d in self.deputies if d != self.leader)


@dataclass(frozen=True)
class User:
    id: str
    name: str
    department: str
    title: str = ""
    manager: str | None = None
    roles: tuple[str, ...] = ()
    accounts: dict[str, str] = field(default_factory=dict)  # platform -> account id
    level: int | None = None
    active: bool = True


def is_org_admin(user: User | None, admin_roles: Collection[str]) -> bool:
    """The one rule for org admins 管理员: an active person holding any of `admin_roles`
    (OABOT_ADMIN_ROLE and OABOT_OFFICE_ROLE, `Settings.admin_roles`)."""
    return user is not None and user.active and any(role in user.roles for role in admin_roles)


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    lat: float
    lng: float
    radius_m: float
    coord_system: str = "gcj02"  # "wgs84" or "gcj02"
    active: bool = True  # False once the site is gone from the org file


@dataclass(frozen=True)
class Org:
    name: str
    timezone: str
    departments: dict[str, Department]
    users: dict[str, User]
    sites: dict[str, Site] = field(default_factory=dict)

    # -- people -------------------------------------------------------------------------
    def user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def is_active(self, user_id: str) -> bool:
        u = self.users.get(user_id)
        return bool(u and u.active)

    def display_name(self, user_id: str | None) -> str:
        if user_id is None:
            return ""
        u = self.users.get(user_id)
        return u.name if u else user_id

    def manager_of(self, user_id: str, levels: int = 1) -> str | None:
        """The manager `levels` steps up the manager chain (1 = direct manager), or None."""
        if levels < 1:
            raise ValueError(f"levels must be 1 or more, got {levels}")
        current: str | None = user_id
        for _ in range(levels):
            u = self.users.get(current) if current else None
            if u is None or u.manager is None:
                return None
            current = u.manager
        return current

    def manager_chain(self, user_id: str) -> list[str]:
        """Managers from the direct one upwards (cycle-safe)."""
        chain: list[str] = []
        seen = {user_id}
        current = self.users.get(user_id)
        while current and current.manager and current.manager not in seen:
            chain.append(current.manager)
            seen.add(current.manager)
            current = self.users.get(current.manager)
        return chain

    def team_of(self, manager: str) -> list[str]:
        """The active people `manager` manages, directly or further down, by name order."""
        team = [u for u in self.users.values() if u.active and manager in self.manager_chain(u.id)]
        return [u.id for u in sorted(team, key=lambda u: (u.name, u.id))]

    def role_holders(self, role: str, *, active_only: bool = True) -> list[str]:
        return [u.id for u in self.users.values() if role in u.roles and (u.active or not active_only)]

    def user_by_account(self, platform: str, account: str) -> User | None:
        """The person holding a platform account; an active holder wins over one who left."""
        found: User | None = None
        for u in self.users.values():
            if u.accounts.get(platform) == account:
                if u.active:
                    return u
                found = found or u
        return found

    def level_of(self, user_id: str) -> int | None:
        u = self.users.get(user_id)
        return u.level if u else None

    # -- departments --------------------------------------------------------------------
    def department(self, dept_id: str) -> Department | None:
        return self.departments.get(dept_id)

    def heads_of(self, dept_id: str, *, active_only: bool = True) -> list[str]:
        d = self.departments.get(dept_id)
        if d is None:
            return []
        return [h for h in d.heads if not active_only or self.is_active(h)]

    def heads_of_user_department(self, user_id: str) -> list[str]:
        u = self.users.get(user_id)
        return self.heads_of(u.department) if u else []

    def is_department_head(self, user_id: str, dept_id: str | None = None) -> bool:
        u = self.users.get(user_id)
        if u is None:
            return False
        return user_id in self.heads_of(dept_id or u.department, active_only=False)

    def members_of(self, dept_id: str, *, include_sub: bool = False) -> list[str]:
        depts = {dept_id}
        if include_sub:
            depts |= set(self.sub_departments(dept_id))
        return [u.id for u in self.users.values() if u.department in depts and u.active]

    def sub_departments(self, dept_id: str) -> list[str]:
        out: list[str] = []
        frontier = [dept_id]
        while frontier:
            cur = frontier.pop()
            for d in self.departments.values():
                if d.parent == cur and d.id not in out and d.id != dept_id:
                    out.append(d.id)
                    frontier.append(d.id)
        return out
