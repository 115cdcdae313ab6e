"""Reads the WeCom contact directory (通讯录) for `oabot org sync --from wecom` and for
`change_contact` events.

- departments: `GET /cgi-bin/department/list` (all departments the app may see, each with
  `parentid` and `department_leader`);
- member ids: `POST /cgi-bin/user/list_id`, paged by `cursor` until `next_cursor` is empty
  (apps created since 2022 may not call `user/list`);
- each member: `GET /cgi-bin/user/get` (`name`, `department`, `main_department`, `position`,
  `is_leader_in_dept`, `direct_leader`, `status`: 1 active, 4 not yet joined, 2 disabled,
  5 left).

The client is built with `SYNC_RETRY`: the frequency limits (45009 over the limit, 45033 too
many at once) and "busy" are retried with a longer back-off than a message send gets. Anything
that still fails raises `DirectoryReadFailed`, and since `read_all` returns only once every page
is in, a failure on any page changes nothing. Translation only: the mapping onto the org is
`org.directory_sync`.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.platforms.http_retry import RetryPolicy
from bot.platforms.wecom.client import WeComApiError, WeComClient
from org.directory_sync import PlatformDepartment, PlatformDirectory, PlatformMember
from services.org_sync import DirectoryReadFailed

logger = logging.getLogger(__name__)

PLATFORM = "wecom"
PAGE_LIMIT = 1000
NOT_FOUND_ERRCODES = frozenset({60111, 60123})  # userid not found, department not found
LEFT_STATUSES = frozenset({2, 5})  # disabled, left the company
SYNC_RETRY = RetryPolicy(attempts=6, base_delay_s=1.0, max_delay_s=30.0, jitter=0.5)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def department_of(item: dict[str, Any]) -> PlatformDepartment:
    parent = item.get("parentid")
    return PlatformDepartment(
        id=_text(item.get("id")),
        name=_text(item.get("name")),
        parent=_text(parent) if parent not in (None, 0, "0") else None,
        leaders=tuple(_text(a) for a in item.get("department_leader") or ()),
    )


def member_of(data: dict[str, Any]) -> PlatformMember:
    departments = [_text(d) for d in data.get("department") or ()]
    main = _text(data.get("main_department") or "")
    if main and main in departments:
        departments.remove(main)
        departments.insert(0, main)
    flags = list(data.get("is_leader_in_dept") or ())
    raw = [_text(d) for d in data.get("department") or ()]
    leads = tuple(d for d, flag in zip(raw, flags, strict=False) if flag == 1)
    direct = data.get("direct_leader") or ()
    return PlatformMember(
        account=_text(data.get("userid")),
        name=_text(data.get("name")) or _text(data.get("userid")),
        departments=tuple(departments),
        title=_text(data.get("position")),
        leader_of=leads,
        manager=_text(direct[0]) if direct else None,
        active=data.get("status", 1) not in LEFT_STATUSES,
    )


class WeComDirectory:
    platform = PLATFORM

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    async def read_all(self) -> PlatformDirectory:
        """Every department and member, or DirectoryReadFailed (nothing half-read is returned)."""
        try:
            data = await self._client.call("GET", "/cgi-bin/department/list")
            departments = tuple(department_of(d) for d in data.get("department") or ())
            accounts = await self._member_ids()
            members = []
            for account in accounts:
                found = await self._member(account)
                if found is not None:
                    members.append(found)
        except WeComApiError as exc:
            raise DirectoryReadFailed(PLATFORM, f"{exc.path}: {exc}") from exc
        logger.info("wecom directory read", extra={"departments": len(departments), "members": len(members)})
        return PlatformDirectory(PLATFORM, departments, tuple(members))

    async def _member_ids(self) -> list[str]:
        accounts: list[str] = []
        cursor = ""
        pages = 0
        while True:
            body: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                body["cursor"] = cursor
            page = await self._client.call("POST", "/cgi-bin/user/list_id", json=body)
            pages += 1
            for item in page.get("dept_user") or ():
                account = _text(item.get("userid") or item.get("open_userid"))
                if account and account not in accounts:
                    accounts.append(account)
            cursor = _text(page.get("next_cursor"))
            if not cursor:
                break
            if pages > 10_000:
                raise DirectoryReadFailed(PLATFORM, "user/list_id kept answering with a next_cursor")
        return accounts

    async def _member(self, account: str) -> PlatformMember | None:
        try:
            data = await self._client.call("GET", "/cgi-bin/user/get", params={"userid": account})
        except WeComApiError as exc:
            if exc.errcode in NOT_FOUND_ERRCODES:
                return None
            raise
        return member_of(data)

    async def read_member(self, account: str) -> PlatformMember | None:
        """One member as WeCom has them now; None when WeCom no longer knows them."""
        try:
            return await self._member(account)
        except WeComApiError as exc:
            raise DirectoryReadFailed(PLATFORM, f"{exc.path}: {exc}") from exc

    async def read_department(self, dept_id: str) -> PlatformDepartment | None:
        """One department as WeCom has it now (`department/get`); None when it is gone."""
        try:
            data = await self._client.call("GET", "/cgi-bin/department/get", params={"id": dept_id})
        except WeComApiError as exc:
            if exc.errcode in NOT_FOUND_ERRCODES:
                return None
            raise DirectoryReadFailed(PLATFORM, f"{exc.path}: {exc}") from exc
        return department_of(data.get("department") or {})
