"""Reads the DingTalk contact directory (通讯录) for `oabot org sync --from dingtalk` and for the
contact events (`user_add_org`, `user_modify_org`, `user_leave_org`, `org_dept_*`).

- departments: `POST /topapi/v2/department/get` for the top department (id 1), then
  `POST /topapi/v2/department/listsub` department by department (each answers only the
  direct children: `dept_id`, `name`, `parent_id`);
- members: `POST /topapi/v2/user/list` per department, paged by `cursor` while `has_more`
  (`next_cursor`), each with `userid`, `name`, `title`, `dept_id_list`, `leader` (leads the
  department being listed) and, where given, `manager_userid`;
- one member: `POST /topapi/v2/user/get` (`leader_in_dept`, `manager_userid`).

DingTalk lists only people who are in the organisation (`active` there means "has activated
the DingTalk account", not employment), so everyone listed is active and anyone missing has
left. The client is built with `SYNC_RETRY` so the frequency-limit codes get a long back-off;
what still fails raises `DirectoryReadFailed` and, since `read_all` returns only once every
page is in, changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient
from bot.platforms.http_retry import RetryPolicy
from org.directory_sync import PlatformDepartment, PlatformDirectory, PlatformMember
from services.org_sync import DirectoryReadFailed

logger = logging.getLogger(__name__)

PLATFORM = "dingtalk"
ROOT = "1"
PAGE_SIZE = 100  # the most topapi/v2/user/list gives per page
NOT_FOUND_CODES = frozenset({"60003", "60121", "50004"})  # no such department / user
SYNC_RETRY = RetryPolicy(attempts=6, base_delay_s=1.0, max_delay_s=30.0, jitter=0.5)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def department_of(item: dict[str, Any]) -> PlatformDepartment:
    parent = item.get("parent_id")
    return PlatformDepartment(
        id=_text(item.get("dept_id")),
        name=_text(item.get("name")),
        parent=_text(parent) if parent not in (None, 0, "0") and _text(item.get("dept_id")) != ROOT else None,
        leaders=tuple(_text(a) for a in item.get("dept_manager_userid_list") or ()),
    )


def member_of(item: dict[str, Any], *, leads: tuple[str, ...] = ()) -> PlatformMember:
    in_dept = item.get("leader_in_dept") or ()
    flagged = tuple(_text(x.get("dept_id")) for x in in_dept if isinstance(x, dict) and x.get("leader"))
    manager = item.get("manager_userid")
    return PlatformMember(
        account=_text(item.get("userid")),
        name=_text(item.get("name")) or _text(item.get("userid")),
        departments=tuple(_text(d) for d in item.get("dept_id_list") or ()),
        title=_text(item.get("title")),
        leader_of=tuple(dict.fromkeys((*leads, *flagged))),
        manager=_text(manager) if manager else None,
    )


class DingTalkDirectory:
    platform = PLATFORM

    def __init__(self, client: DingTalkClient) -> None:
        self._client = client

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._client.oapi("POST", path, body=body)
        result = data.get("result")
        return result if isinstance(result, dict) else {"list": result or []}

    async def read_all(self) -> PlatformDirectory:
        """Every department and member, or DirectoryReadFailed (nothing half-read is returned)."""
        try:
            root = department_of(await self._post("/topapi/v2/department/get", {"dept_id": int(ROOT)}))
            departments = [PlatformDepartment(ROOT, root.name, None, root.leaders)]
            frontier = [ROOT]
            while frontier:
                parent = frontier.pop(0)
                children = await self._post("/topapi/v2/department/listsub", {"dept_id": int(parent)})
                for item in children.get("list") or ():
                    d = department_of(item)
                    departments.append(d)
                    frontier.append(d.id)
            members: dict[str, PlatformMember] = {}
            leads: dict[str, list[str]] = {}
            for d in departments:
                for item in await self._members_of(d.id):
                    account = _text(item.get("userid"))
                    if item.get("leader"):
                        leads.setdefault(account, []).append(d.id)
                    members.setdefault(account, member_of(item))
        except DingTalkApiError as exc:
            raise DirectoryReadFailed(PLATFORM, str(exc)) from exc
        people = tuple(member_of_with_leads(m, tuple(leads.get(m.account, ()))) for m in members.values())
        logger.info(
            "dingtalk directory read", extra={"departments": len(departments), "members": len(people)}
        )
        return PlatformDirectory(PLATFORM, tuple(departments), people)

    async def _members_of(self, dept_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = 0
        for _ in range(100_000):
            page = await self._post(
                "/topapi/v2/user/list", {"dept_id": int(dept_id), "cursor": cursor, "size": PAGE_SIZE}
            )
            found.extend(x for x in page.get("list") or () if isinstance(x, dict))
            if not page.get("has_more"):
                return found
            cursor = int(page.get("next_cursor") or 0)
        raise DirectoryReadFailed(PLATFORM, "user/list kept answering has_more")

    async def read_member(self, account: str) -> PlatformMember | None:
        """One member as DingTalk has them now; None when they are no longer in the organisation."""
        try:
            data = await self._post("/topapi/v2/user/get", {"userid": account})
        except DingTalkApiError as exc:
            if exc.code in NOT_FOUND_CODES:
                return None
            raise DirectoryReadFailed(PLATFORM, str(exc)) from exc
        return member_of(data)

    async def read_department(self, dept_id: str) -> PlatformDepartment | None:
        try:
            data = await self._post("/topapi/v2/department/get", {"dept_id": int(dept_id)})
        except DingTalkApiError as exc:
            if exc.code in NOT_FOUND_CODES:
                return None
            raise DirectoryReadFailed(PLATFORM, str(exc)) from exc
        return department_of(data)


def member_of_with_leads(m: PlatformMember, leads: tuple[str, ...]) -> PlatformMember:
    return PlatformMember(
        account=m.account,
        name=m.name,
        departments=m.departments,
        title=m.title,
        leader_of=tuple(dict.fromkeys((*m.leader_of, *leads))),
        manager=m.manager,
        active=m.active,
    )
