"""Filled-in forms: every field type accepted and refused as a user would type it."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from approvals.definitions import Template
from approvals.form_errors import FieldProblem, FormInvalid
from approvals.forms import validate_form
from approvals.template_loader import load_template_file, load_templates
from org.model import Department, Org, Site, User

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
EVERY_TYPE = Path(__file__).parent / "data" / "templates" / "good" / "every_type.yaml"


def demo_org() -> Org:
    """The demo organisation, built straight from bot/data/demo_org.yaml, plus one leaver."""
    data = yaml.safe_load((ROOT / "bot" / "data" / "demo_org.yaml").read_text(encoding="utf-8"))
    departments = {
        d["id"]: Department(
            id=d["id"], name=d["name"], parent=d.get("parent"), leader=d.get("leader"),
            deputies=tuple(d.get("deputies", ())),
        )
        for d in data["departments"]
    }  # fmt: skip
    users = {
        u["id"]: User(
            id=u["id"], name=u["name"], department=u["department"], title=u.get("title", ""),
            manager=u.get("manager"), roles=tuple(u.get("roles", ())), accounts=u.get("accounts", {}),
            level=u.get("level"), active=u.get("active", True),
        )
        for u in data["users"]
    }  # fmt: skip
    users["u_left"] = User(id="u_left", name="离职者", department="marketing", active=False)
    sites = {
        s["id"]: Site(id=s["id"], name=s["name"], lat=s["lat"], lng=s["lng"], radius_m=s["radius_m"])
        for s in data["sites"]
    }
    return Org(
        name=data["organization"],
        timezone=data["timezone"],
        departments=departments,
        users=users,
        sites=sites,
    )


ORG = demo_org()


@pytest.fixture(scope="module")
def every_type() -> Template:
    return load_template_file(EVERY_TYPE)


@pytest.fixture(scope="module")
def builtins() -> dict[str, Template]:
    return load_templates([])


def submit(template: Template, form: dict[str, Any], initiator: str = "u_wu") -> dict[str, Any]:
    return validate_form(template, form, org=ORG, initiator=initiator, tz=TZ)


def refusals(template: Template, form: dict[str, Any], initiator: str = "u_wu") -> list[FieldProblem]:
    with pytest.raises(FormInvalid) as caught:
        submit(template, form, initiator)
    return caught.value.fields


def one(template: Template, key: str, value: Any) -> Any:
    """The normalised value of one field, or the message refusing it."""
    try:
        return submit(template, {"files": ["a.pdf"], key: value}).get(key)
    except FormInvalid as exc:
        assert len(exc.fields) == 1 and exc.fields[0].key == key, exc.fields
        return exc.fields[0].message


def test_a_good_form_comes_back_normalised(every_type: Template) -> None:
    form = {
        "title": " 周报 ",
        "note": "无",
        "count": "3",
        "ratio": 2.5,
        "amount": "1,234.50",
        "day": "2026-11-23",
        "at": "2026-11-23 09:30",
        "until": "2026-11-23T02:00:00Z",
        "span": {"start": "2026-11-23", "end": "2026-11-25"},
        "color": "红",
        "tags": ["a", "b", "a"],
        "urgent": "true",
        "owner": "u_sun",
        "team": ["u_wu", "u_zheng"],
        "dept": "finance",
        "files": ["a.pdf", " b.pdf "],
        "site": "hq",
        "place": {"address": "浦东大道 1 号", "lat": 31.2, "lng": "121.5"},
    }
    assert submit(every_type, form) == {
        "title": "周报",
        "note": "无",
        "count": 3,
        "ratio": 2.5,
        "amount": 1234.5,
        "day": "2026-11-23",
        "at": "2026-11-23T09:30:00+08:00",
        "until": "2026-11-23T10:00:00+08:00",
        "span": {"start": "2026-11-23", "end": "2026-11-25"},
        "color": "红",
        "tags": ["a", "b"],
        "urgent": True,
        "owner": "u_sun",
        "team": ["u_wu", "u_zheng"],
        "dept": "finance",
        "files": ["a.pdf", "b.pdf"],
        "site": "hq",
        "place": {"address": "浦东大道 1 号", "lat": 31.2, "lng": 121.5},
    }


def test_defaults_are_filled_from_the_initiator(every_type: Template) -> None:
    assert submit(every_type, {"files": ["a.pdf"]}, initiator="u_zheng") == {
        "urgent": False,
        "owner": "u_zheng",
        "dept": "engineering",
        "files": ["a.pdf"],
    }


def test_every_problem_is_listed_together_in_field_order(every_type: Template) -> None:
    form = {
        "extra": "hi",
        "title": "x" * 11,
        "note": 5,
        "count": 0,
        "ratio": "abc",
        "amount": "1.234",
        "day": "2026-13-01",
        "at": "明天",
        "until": "2026-11-23",
        "span": {"start": "2026-11-25", "end": "2026-11-23"},
        "color": "蓝",
        "tags": ["a", "b", "c"],
        "urgent": "yes",
        "owner": "u_nobody",
        "team": ["u_wu", "老王"],
        "dept": "sales",
        "site": "moon",
        "place": {"address": "某地", "lat": math.nan, "lng": 200},
    }
    assert refusals(every_type, form) == [
        FieldProblem("title", "标题", "不能超过 10 个字"),
        FieldProblem("note", "备注", "应为文本"),
        FieldProblem("count", "数量", "不能少于 1"),
        FieldProblem("ratio", "比例", "不是有效的数字"),
        FieldProblem("amount", "金额", "金额最多两位小数"),
        FieldProblem("day", "日期", "不是有效的日期 (YYYY-MM-DD)"),
        FieldProblem("at", "开始时间", "不是有效的时间 (YYYY-MM-DD HH:MM)"),
        FieldProblem("until", "结束时间", "不是有效的时间 (YYYY-MM-DD HH:MM)"),
        FieldProblem("span", "期间", "开始日期不能晚于结束日期"),
        FieldProblem("color", "颜色", "不在可选项中: 蓝 (可选: 红、绿)"),
        FieldProblem("tags", "标签", "最多 2 项"),
        FieldProblem("urgent", "加急", "应为 是/否 (true/false)"),
        FieldProblem("owner", "负责人", "不是本单位在职人员: u_nobody"),
        FieldProblem("team", "成员", "不是本单位在职人员: 老王"),
        FieldProblem("dept", "部门", "部门不存在: sales"),
        FieldProblem("files", "文件", "必填"),
        FieldProblem("site", "签到点", "地点不存在: moon"),
        FieldProblem("place", "地点", "纬度应为 -90 到 90 之间的数字; 经度应为 -180 到 180 之间的数字"),
        FieldProblem("extra", None, "未知字段"),
    ]


def test_the_error_reads_as_one_line_for_chat(every_type: Template) -> None:
    with pytest.raises(FormInvalid) as caught:
        submit(every_type, {"files": [], "colour": "红"})
    assert str(caught.value) == "文件: 必填; colour: 未知字段"


def test_an_unknown_field_is_refused_even_when_everything_else_is_right(every_type: Template) -> None:
    assert refusals(every_type, {"files": ["a.pdf"], "cost": 5}) == [FieldProblem("cost", None, "未知字段")]


def test_a_form_that_is_not_a_mapping_is_refused(every_type: Template) -> None:
    assert refusals(every_type, ["files"]) == [FieldProblem("", None, "表单格式不正确")]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("title", "  ", None),  # blank optional text is left out
        ("title", "x" * 10, "x" * 10),
        ("note", "  多行\n备注  ", "多行\n备注"),
        ("count", 4, 4),
        ("count", 4.0, 4),
        ("count", "10", 10),
        ("count", 11, "不能超过 10"),
        ("count", 2.5, "应为整数"),
        ("count", True, "不是有效的数字"),
        ("ratio", "-0.25", -0.25),
        ("ratio", math.inf, "不是有效的数字"),
        ("ratio", "1e3", "不是有效的数字"),
        ("amount", 100, 100.0),
        ("amount", "¥88.8", 88.8),
        ("amount", 0.1, 0.1),
        ("amount", "0", "不能少于 0.01"),
        ("amount", "12,34", "不是有效的金额"),
        ("amount", False, "不是有效的金额"),
        ("amount", "1000000000000", "金额过大"),
        ("day", "2026-02-29", "不是有效的日期 (YYYY-MM-DD)"),
        ("day", "2028-02-29", "2028-02-29"),
        ("day", "2026/11/23", "不是有效的日期 (YYYY-MM-DD)"),
        ("at", "2026-11-23T09:30:00+09:00", "2026-11-23T08:30:00+08:00"),
        ("at", "2026-11-23T09:30", "2026-11-23T09:30:00+08:00"),
        ("at", 1732000000, "不是有效的时间 (YYYY-MM-DD HH:MM)"),
        ("span", ["2026-11-23", "2026-11-23"], {"start": "2026-11-23", "end": "2026-11-23"}),
        ("span", {"start": "2026-11-23"}, "缺少结束日期"),
        ("span", {"start": "2026-11-31", "end": "2026-12-01"}, "开始日期不是有效的日期 (YYYY-MM-DD)"),
        ("span", {"start": "2026-11-23", "end": "2026-11-24", "days": 2}, "应为日期范围 {start, end}"),
        ("span", "2026-11-23", "应为日期范围 {start, end}"),
        ("color", "绿", "绿"),
        ("color", ["红"], "不在可选项中: ['红'] (可选: 红、绿)"),
        ("tags", ["c"], ["c"]),
        ("tags", "a", "应为列表"),
        ("tags", ["a", "d"], "不在可选项中: d (可选: a、b、c)"),
        ("urgent", False, False),
        ("urgent", "FALSE", False),
        ("urgent", 1, "应为 是/否 (true/false)"),
        ("urgent", "是", "应为 是/否 (true/false)"),
        ("owner", "u_left", "不是本单位在职人员: u_left"),
        ("owner", 7, "应为人员"),
        ("team", "u_wu", "应为人员列表"),
        ("team", ["u_wu", "u_wu", "u_sun"], ["u_wu", "u_sun"]),
        ("team", ["u_wu", ""], "第 2 项不是有效的人员"),
        ("team", ["老王", "u_left"], "不是本单位在职人员: 老王、u_left"),
        ("dept", "hr_admin", "hr_admin"),
        ("site", "site_pudong", "site_pudong"),
        ("place", "hq", {"site": "hq"}),
        ("place", {"site": "site_pudong"}, {"site": "site_pudong"}),
        ("place", {"site": "hq", "address": "x"}, "签到点和地址只能填一种"),
        ("place", {"site": "nowhere"}, "地点不存在: nowhere"),
        ("place", {"address": "某地", "lat": 31.2}, "经度应为 -180 到 180 之间的数字"),
        ("place", {"address": "", "lat": 31.2, "lng": 121.5}, "缺少地址"),
        ("place", {"address": "某地", "lat": True, "lng": 121.5}, "纬度应为 -90 到 90 之间的数字"),
        ("place", {"address": "某地", "lat": 31.2, "lng": 121.5, "alt": 3}, "应为签到点, 或 地址 + 经纬度"),
        ("place", 31.2, "应为签到点, 或 地址 + 经纬度"),
    ],
)
def test_each_field_type(every_type: Template, key: str, value: Any, expected: Any) -> None:
    assert one(every_type, key, value) == expected


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["a.pdf", "b.pdf", "c.pdf"], ["a.pdf", "b.pdf", "c.pdf"]),
        (["a.pdf", "b.pdf", "c.pdf", "d.pdf"], "最多 3 项"),
        (["a.pdf", "  "], "第 2 项不能为空"),
        (["a.pdf", 3], "第 2 项应为文本"),
        ("a.pdf", "应为列表"),
    ],
)
def test_list_items_are_non_empty_text(every_type: Template, files: Any, expected: Any) -> None:
    try:
        assert submit(every_type, {"files": files})["files"] == expected
    except FormInvalid as exc:
        assert exc.fields == [FieldProblem("files", "文件", expected)]


def test_an_end_before_its_start_is_refused(every_type: Template) -> None:
    form = {"files": ["a.pdf"], "at": "2026-11-23T10:00", "until": "2026-11-23T09:59"}
    assert refusals(every_type, form) == [FieldProblem("until", "结束时间", "不能早于开始时间")]
    # the same instant written in another offset is not earlier
    form["until"] = "2026-11-23T02:00:00+00:00"
    assert submit(every_type, form)["until"] == "2026-11-23T10:00:00+08:00"


# -- the built-in forms --------------------------------------------------------------------------
SEAL_FORM = {
    "seal": "合同专用章",
    "reason": "与供应商签订采购合同",
    "needed_at": "2026-11-24 14:00",
    "files": ["采购合同.pdf", "补充协议.pdf"],
    "copies": 2,
    "take_out": True,
    "return_at": "2026-11-24 18:00",
    "companions": ["u_zheng"],
}


def test_seal_use_accepts_staff_companions_and_fills_the_department(builtins: dict[str, Template]) -> None:
    clean = submit(builtins["seal_use"], SEAL_FORM)
    assert clean["department"] == "marketing"
    assert clean["companions"] == ["u_zheng"]
    assert clean["needed_at"] == "2026-11-24T14:00:00+08:00"


def test_seal_use_refuses_a_companion_who_is_not_staff(builtins: dict[str, Template]) -> None:
    form = {**SEAL_FORM, "companions": ["u_zheng", "供应商老王"]}
    assert refusals(builtins["seal_use"], form) == [
        FieldProblem("companions", "同行人员", "不是本单位在职人员: 供应商老王")
    ]


def test_seal_use_refuses_a_colleague_who_has_left(builtins: dict[str, Template]) -> None:
    form = {**SEAL_FORM, "companions": ["u_left"]}
    assert refusals(builtins["seal_use"], form) == [
        FieldProblem("companions", "同行人员", "不是本单位在职人员: u_left")
    ]


def test_seal_use_needs_at_least_one_copy_and_one_file(builtins: dict[str, Template]) -> None:
    form = {**SEAL_FORM, "copies": 0, "files": []}
    assert refusals(builtins["seal_use"], form) == [
        FieldProblem("files", "用印文件", "必填"),
        FieldProblem("copies", "用印份数", "不能少于 1"),
    ]


def test_vehicle_dispatch_defaults_to_a_same_day_trip(builtins: dict[str, Template]) -> None:
    form = {
        "destination": "浦东机场",
        "depart_at": "2026-11-24T08:00",
        "return_at": "2026-11-24T12:00",
        "self_drive": "false",
        "passengers": 3,
        "reason": "接客户",
    }
    clean = submit(builtins["vehicle_dispatch"], form)
    assert (clean["overnight"], clean["self_drive"], clean["department"]) == (False, False, "marketing")
    form["return_at"] = "2026-11-24T07:00"
    assert refusals(builtins["vehicle_dispatch"], form) == [
        FieldProblem("return_at", "返回时间", "不能早于出发时间")
    ]


def test_leave_checks_type_period_and_days(builtins: dict[str, Template]) -> None:
    form = {
        "leave_type": "旅游假",
        "period": {"start": "2026-11-25", "end": "2026-11-24"},
        "days": 0,
        "reason": "x",
    }
    assert refusals(builtins["leave"], form) == [
        FieldProblem(
            "leave_type", "请假类型", "不在可选项中: 旅游假 (可选: 事假、病假、年假、调休、婚假、产假、丧假)"
        ),
        FieldProblem("period", "请假日期", "开始日期不能晚于结束日期"),
        FieldProblem("days", "请假天数", "不能少于 0.5"),
    ]
    form.update(
        leave_type="年假", period={"start": "2026-11-24", "end": "2026-11-25"}, days="1.5", delegate="u_sun"
    )
    assert submit(builtins["leave"], form)["days"] == 1.5


def test_outing_destination_is_a_site_or_an_address(builtins: dict[str, Template]) -> None:
    base = {"start": "2026-11-24T09:00", "end": "2026-11-24T17:00", "reason": "现场巡检"}
    assert submit(builtins["outing"], {**base, "destination": {"site": "site_pudong"}})["destination"] == {
        "site": "site_pudong"
    }
    address = {"address": "世纪大道 100 号", "lat": 31.235, "lng": 121.506}
    assert submit(builtins["outing"], {**base, "destination": address})["destination"] == address
    assert refusals(builtins["outing"], {**base, "destination": {"address": "世纪大道"}}) == [
        FieldProblem(
            "destination", "外出地点", "纬度应为 -90 到 90 之间的数字; 经度应为 -180 到 180 之间的数字"
        )
    ]


def test_expense_amount_is_money_above_zero(builtins: dict[str, Template]) -> None:
    form = {"category": "差旅费", "amount": "5,000.00", "reason": "出差", "invoice_count": 3}
    assert submit(builtins["expense"], form)["amount"] == 5000.0
    assert refusals(builtins["expense"], {**form, "amount": "0.00", "invoice_count": -1}) == [
        FieldProblem("amount", "报销金额", "不能少于 0.01"),
        FieldProblem("invoice_count", "发票张数", "不能少于 0"),
    ]


def test_doc_issue_offers_every_confidentiality_level(builtins: dict[str, Template]) -> None:
    """The form takes any 密级; which are refused is the organisation's setting, checked at
    submission (tests/test_documents.py)."""
    form = {
        "title": "关于年终考核的通知",
        "direction": "下行",
        "secrecy": "机密",
        "main_recipients": "各部门",
        "files": ["通知.docx"],
    }
    assert refusals(builtins["doc_issue"], {**form, "secrecy": "特级"}) == [
        FieldProblem("secrecy", "密级", "不在可选项中: 特级 (可选: 公开、内部、秘密、机密、绝密)")
    ]
    clean = submit(builtins["doc_issue"], {**form, "secrecy": "秘密"})
    assert (clean["doc_urgency"], clean["secrecy"]) == ("一般", "秘密")


def test_doc_receive_handling_department_must_exist(builtins: dict[str, Template]) -> None:
    form = {
        "title": "关于安全检查的通知",
        "source_org": "区应急管理局",
        "received_at": "2026-11-20",
        "handling_department": "security",
        "files": ["通知.pdf"],
    }
    assert refusals(builtins["doc_receive"], form, initiator="u_zhao") == [
        FieldProblem("handling_department", "承办部门", "部门不存在: security")
    ]


def test_org_without_the_initiator_leaves_the_default_department_empty(builtins: dict[str, Template]) -> None:
    org = replace(ORG, users={k: v for k, v in ORG.users.items() if k != "u_wu"})
    with pytest.raises(FormInvalid) as caught:
        validate_form(builtins["seal_use"], SEAL_FORM, org=org, initiator="u_wu", tz=TZ)
    assert caught.value.fields == [FieldProblem("department", "用章部门", "必填")]
