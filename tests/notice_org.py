"""The demo organisation with what the notice tests need besides: job levels, a sub-department
under 市场部 (华东组, one person) and a person who left 市场部 (inactive)."""

from __future__ import annotations

from dataclasses import replace

from org.model import Department, Org, User
from tests.helpers import demo_org

LEVELS = {
    "u_zhang": 10,
    "u_li": 9,
    "u_wang": 7,
    "u_zhao": 7,
    "u_qian": 7,
    "u_sun": 7,
    "u_zhou": 7,
}


def notice_org() -> Org:
    base = demo_org()
    users = {uid: replace(u, level=LEVELS.get(uid, 3)) for uid, u in base.users.items()}
    users["u_feng"] = User(id="u_feng", name="冯晓", department="marketing_east", manager="u_sun", level=3)
    users["u_gone"] = User(
        id="u_gone", name="郭离", department="marketing", manager="u_sun", level=3, active=False
    )
    departments = {
        **base.departments,
        "marketing_east": Department(id="marketing_east", name="华东组", parent="marketing", leader="u_feng"),
    }
    return replace(base, users=users, departments=departments)
