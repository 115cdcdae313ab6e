"""Fake WeCom and DingTalk contact APIs (respx) over one made-up company: 6 departments on 3
levels and 250 members, served a few at a time so every listing takes several pages.

`Company` holds the directory as the platforms would (and can be changed between syncs);
`wecom_routes` / `dingtalk_routes` answer the contact APIs from it and count the calls;
`fail_page` makes the n-th page of the member listing answer an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

WECOM_BASE = "https://qyapi.weixin.qq.com"
DINGTALK_OAPI = "https://oapi.dingtalk.com"
DINGTALK_API = "https://api.dingtalk.com"

# id -> (name, parent, leader account)
DEPARTMENTS: dict[str, tuple[str, str | None, str]] = {
    "1": ("总公司", None, "u000"),
    "2": ("研发中心", "1", "u001"),
    "3": ("市场中心", "1", "u002"),
    "4": ("平台组", "2", "u003"),
    "5": ("应用组", "2", "u004"),
    "6": ("华东销售", "3", "u005"),
}
PEOPLE = 250
WECOM_PAGE = 100  # user/list_id answers at most this many per page: 3 pages
DINGTALK_PAGE = 20  # user/list answers at most this many per page: several pages per department


@dataclass
class Member:
    account: str
    name: str
    dept: str
    title: str = "工程师"


@dataclass
class Company:
    departments: dict[str, tuple[str, str | None, str]] = field(default_factory=lambda: dict(DEPARTMENTS))
    members: dict[str, Member] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_page: int | None = None  # the n-th member-listing page fails (1-based)
    fail_errcode: int = 45009
    fail_for_good: bool = False  # from the failing page on, every page fails (retries too)
    pages_served: int = 0

    @classmethod
    def made_up(cls, people: int = PEOPLE) -> Company:
        company = cls()
        leaders = {leader: dept for dept, (_, _, leader) in DEPARTMENTS.items()}
        for i in range(people):
            account = f"u{i:03d}"
            dept = leaders.get(account) or str(i % 5 + 2)
            company.members[account] = Member(
                account, f"员工{i:03d}", dept, "负责人" if account in leaders else "工程师"
            )
        return company

    def leaders_of(self, dept: str) -> list[str]:
        leader = self.departments[dept][2]
        return [leader] if leader in self.members else []

    def page_fails(self) -> bool:
        self.pages_served += 1
        if self.fail_page is None:
            return False
        if self.fail_for_good:
            return self.pages_served >= self.fail_page
        return self.pages_served == self.fail_page


def _json(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", **data})


# -- WeCom's answers (shared by the respx routes and the e2e fake server) ---------------------


def wecom_department_list(company: Company) -> dict[str, Any]:
    company.calls.append("department/list")
    return {
        "errcode": 0,
        "errmsg": "ok",
        "department": [
            {
                "id": int(d),
                "name": name,
                "parentid": int(parent) if parent else 0,
                "department_leader": company.leaders_of(d),
            }
            for d, (name, parent, _) in company.departments.items()
        ],
    }


def wecom_list_id(company: Company, body: dict[str, Any]) -> dict[str, Any]:
    company.calls.append(f"user/list_id:{body.get('cursor', '')}")
    if company.page_fails():
        return {"errcode": company.fail_errcode, "errmsg": "api freq out of limit"}
    start = int(body.get("cursor") or 0)
    accounts = sorted(company.members)
    nxt = start + WECOM_PAGE
    return {
        "errcode": 0,
        "errmsg": "ok",
        "next_cursor": str(nxt) if nxt < len(accounts) else "",
        "dept_user": [{"userid": a, "department": int(company.members[a].dept)} for a in accounts[start:nxt]],
    }


def wecom_user_get(company: Company, account: str) -> dict[str, Any]:
    company.calls.append(f"user/get:{account}")
    m = company.members.get(account)
    if m is None:
        return {"errcode": 60111, "errmsg": "userid not found"}
    return {
        "errcode": 0,
        "errmsg": "ok",
        "userid": m.account,
        "name": m.name,
        "department": [int(m.dept)],
        "main_department": int(m.dept),
        "position": m.title,
        "is_leader_in_dept": [1 if company.departments[m.dept][2] == m.account else 0],
        "direct_leader": [],
        "status": 1,
    }


def wecom_department_get(company: Company, dept: str) -> dict[str, Any]:
    company.calls.append(f"department/get:{dept}")
    if dept not in company.departments:
        return {"errcode": 60123, "errmsg": "invalid party id"}
    name, parent, _ = company.departments[dept]
    return {
        "errcode": 0,
        "errmsg": "ok",
        "department": {
            "id": int(dept),
            "name": name,
            "parentid": int(parent) if parent else 0,
            "department_leader": company.leaders_of(dept),
        },
    }


def wecom_routes(router: respx.MockRouter, company: Company) -> None:
    def answer(data: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=data)

    router.get(f"{WECOM_BASE}/cgi-bin/gettoken").mock(
        side_effect=lambda r: _json({"access_token": "TOKEN", "expires_in": 7200})
    )
    router.get(f"{WECOM_BASE}/cgi-bin/department/list").mock(
        side_effect=lambda r: answer(wecom_department_list(company))
    )
    router.get(f"{WECOM_BASE}/cgi-bin/department/get").mock(
        side_effect=lambda r: answer(wecom_department_get(company, r.url.params.get("id", "")))
    )
    router.post(f"{WECOM_BASE}/cgi-bin/user/list_id").mock(
        side_effect=lambda r: answer(wecom_list_id(company, json.loads(r.content or b"{}")))
    )
    router.get(f"{WECOM_BASE}/cgi-bin/user/get").mock(
        side_effect=lambda r: answer(wecom_user_get(company, r.url.params.get("userid", "")))
    )


# -- DingTalk's answers (shared by the respx routes and the e2e fake server) ------------------


def _dingtalk_dept(company: Company, dept: str) -> dict[str, Any]:
    name, parent, _ = company.departments[dept]
    return {
        "dept_id": int(dept),
        "name": name,
        "parent_id": int(parent) if parent else 0,
        "dept_manager_userid_list": company.leaders_of(dept),
    }


def dingtalk_department_get(company: Company, body: dict[str, Any]) -> dict[str, Any]:
    dept = str(body.get("dept_id"))
    company.calls.append(f"department/get:{dept}")
    if dept not in company.departments:
        return {"errcode": 60003, "errmsg": "部门不存在"}
    return {"errcode": 0, "errmsg": "ok", "result": _dingtalk_dept(company, dept)}


def dingtalk_listsub(company: Company, body: dict[str, Any]) -> dict[str, Any]:
    dept = str(body.get("dept_id"))
    company.calls.append(f"department/listsub:{dept}")
    children = [
        _dingtalk_dept(company, d) for d, (_, parent, _) in company.departments.items() if parent == dept
    ]
    return {"errcode": 0, "errmsg": "ok", "result": children}


def dingtalk_user_list(company: Company, body: dict[str, Any]) -> dict[str, Any]:
    dept = str(body.get("dept_id"))
    cursor = int(body.get("cursor") or 0)
    company.calls.append(f"user/list:{dept}:{cursor}")
    if company.page_fails():
        return {"errcode": company.fail_errcode, "errmsg": "over the limit"}
    people = sorted(a for a, m in company.members.items() if m.dept == dept)
    size = min(int(body.get("size") or 100), DINGTALK_PAGE)
    page = people[cursor : cursor + size]
    more = cursor + size < len(people)
    items = [
        {
            "userid": a,
            "name": company.members[a].name,
            "title": company.members[a].title,
            "dept_id_list": [int(dept)],
            "leader": company.departments[dept][2] == a,
            "active": True,
        }
        for a in page
    ]
    result = {"has_more": more, "next_cursor": cursor + size if more else None, "list": items}
    return {"errcode": 0, "errmsg": "ok", "result": result}


def dingtalk_user_get(company: Company, body: dict[str, Any]) -> dict[str, Any]:
    account = str(body.get("userid"))
    company.calls.append(f"user/get:{account}")
    m = company.members.get(account)
    if m is None:
        return {"errcode": 60121, "errmsg": "找不到该用户"}
    leads = company.departments[m.dept][2] == m.account
    result = {
        "userid": m.account,
        "name": m.name,
        "title": m.title,
        "dept_id_list": [int(m.dept)],
        "leader_in_dept": [{"dept_id": int(m.dept), "leader": leads}],
    }
    return {"errcode": 0, "errmsg": "ok", "result": result}


DINGTALK_CONTACT_APIS = {
    "/topapi/v2/department/get": dingtalk_department_get,
    "/topapi/v2/department/listsub": dingtalk_listsub,
    "/topapi/v2/user/list": dingtalk_user_list,
    "/topapi/v2/user/get": dingtalk_user_get,
}


def dingtalk_routes(router: respx.MockRouter, company: Company) -> None:
    router.post(f"{DINGTALK_API}/v1.0/oauth2/accessToken").mock(
        return_value=httpx.Response(200, json={"accessToken": "TOKEN", "expireIn": 7200})
    )
    for path, answer in DINGTALK_CONTACT_APIS.items():
        router.post(f"{DINGTALK_OAPI}{path}").mock(
            side_effect=lambda r, answer=answer: httpx.Response(
                200, json=answer(company, json.loads(r.content))
            )
        )
