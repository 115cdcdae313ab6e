"""What a newcomer tripped over in the forms and the REST API: a leave's days are the working days
of its dates (and decide the route), nobody is their own stand-in, a seal taken out needs its
return time, a vehicle destination naming a site is that site, the JSON keeps Chinese readable
and the route preview takes the urgency."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from approvals.clock import ManualClock
from approvals.form_errors import FieldProblem, FormInvalid
from approvals.forms import validate_form
from approvals.template_loader import load_templates, validate_dir
from checkins.core import trips_for_request
from tests.helpers import T0, demo_org

TZ = ZoneInfo("Asia/Shanghai")
ORG = demo_org()
TEMPLATES = load_templates([])
SEAL = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 1,
    "take_out": True,
}


def weekdays(first: date, last: date) -> int:
    """Working days with no public holiday in the range (true for late November 2026)."""
    return sum((first + timedelta(days=i)).weekday() < 5 for i in range((last - first).days + 1))


def leave(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"leave_type": "事假", "period": {"start": start, "end": end}, "reason": "家中有事", **extra}


def clean(template: str, form: dict[str, Any], initiator: str = "u_wu") -> dict[str, Any]:
    return validate_form(
        TEMPLATES[template], form, org=ORG, initiator=initiator, tz=TZ, working_days=weekdays
    )


def refused(template: str, form: dict[str, Any], initiator: str = "u_wu") -> list[FieldProblem]:
    with pytest.raises(FormInvalid) as caught:
        clean(template, form, initiator)
    return caught.value.fields


# -- leave -------------------------------------------------------------------------------------------
def test_leave_days_left_empty_are_the_working_days_of_the_dates() -> None:
    # Monday 23 to Sunday 29 November: five working days, the weekend not counted.
    assert clean("leave", leave("2026-11-23", "2026-11-29"))["days"] == 5


def test_leave_days_that_match_the_dates_are_accepted_also_with_a_half_day_off() -> None:
    assert clean("leave", leave("2026-11-23", "2026-11-27", days=5))["days"] == 5
    assert clean("leave", leave("2026-11-23", "2026-11-27", days=4.5))["days"] == 4.5


def test_leave_days_that_do_not_match_the_dates_are_refused_naming_the_right_count() -> None:
    assert refused("leave", leave("2026-11-23", "2026-12-18", days=1)) == [
        FieldProblem("days", "请假天数", "应为 20 个工作日 (首尾请半天可填 19.5)")
    ]


def test_a_leave_over_a_weekend_only_is_refused() -> None:
    assert refused("leave", leave("2026-11-28", "2026-11-29")) == [
        FieldProblem("days", "请假天数", "所选日期内没有工作日")
    ]


def test_the_applicant_cannot_be_their_own_stand_in() -> None:
    assert refused("leave", leave("2026-11-23", "2026-11-24", delegate="u_wu")) == [
        FieldProblem("delegate", "工作代理人", "不能选择申请人本人")
    ]
    assert clean("leave", leave("2026-11-23", "2026-11-24", delegate="u_sun"))["delegate"] == "u_sun"


def test_without_a_calendar_the_typed_days_are_only_checked_as_a_number() -> None:
    form = leave("2026-11-23", "2026-11-24", days=1)
    assert validate_form(TEMPLATES["leave"], form, org=ORG, initiator="u_wu", tz=TZ)["days"] == 1


# -- seal use -----------------------------------------------------------------------------------------
def test_a_seal_taken_out_needs_its_return_time() -> None:
    assert refused("seal_use", SEAL) == [FieldProblem("return_at", "预计归还时间", "必填")]
    back = clean("seal_use", {**SEAL, "return_at": "2026-11-24T17:00"})
    assert back["return_at"] == "2026-11-24T17:00:00+08:00"


def test_a_seal_kept_on_the_premises_needs_no_return_time() -> None:
    assert "return_at" not in clean("seal_use", {**SEAL, "take_out": False})


def test_the_new_field_rules_are_checked_when_templates_load(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "key: t\nname: T\nfields:\n"
        "  - {key: a, label: A, type: bool}\n"
        "  - {key: b, label: B, type: text, required_if: {field: nope, eq: true}}\n"
        "  - {key: c, label: C, type: text, working_days_of: a}\n"
        "  - {key: d, label: D, type: text, not_initiator: true}\n"
        "steps:\n  - {key: s, name: S, approvers: [{manager: 1}]}\n",
        encoding="utf-8",
    )
    problems = "\n".join(str(p) for p in validate_dir(tmp_path))
    assert "field 'nope' does not exist" in problems
    assert "only a number field can count working days" in problems
    assert "only a user or users field can be not_initiator" in problems


# -- vehicle dispatch ---------------------------------------------------------------------------------
def trip_destination(destination: str) -> Any:
    form = {
        "destination": destination,
        "depart_at": "2026-11-24T09:00:00+08:00",
        "return_at": "2026-11-24T17:00:00+08:00",
    }
    (trip,) = trips_for_request(
        request_id="r1",
        template_key="vehicle_dispatch",
        title="派车",
        form=form,
        initiator="u_wu",
        sites=ORG.sites,
        now=T0,
    )
    return trip.destination


def test_a_vehicle_destination_naming_a_site_is_judged_against_that_site() -> None:
    destination = trip_destination("浦东项目现场")
    assert destination.site_id == "site_pudong"
    assert destination.point is not None and destination.radius_m == 500


def test_a_vehicle_destination_that_only_mentions_a_site_stays_plain_text() -> None:
    destination = trip_destination("浦东项目现场附近的供应商")
    assert destination.site_id is None and destination.point is None


# -- REST -------------------------------------------------------------------------------------------------
async def test_a_long_leave_typed_as_one_day_is_refused_in_readable_chinese(api: Any) -> None:
    body = {"template": "leave", "initiator": "u_wu", "form": leave("2026-11-23", "2026-12-18", days=1)}
    resp = await api.client.post("/api/v1/requests", json=body, headers=api.headers)

    text = await resp.text()
    assert resp.status == 422
    assert "请假天数" in text and "应为 20 个工作日" in text, "Chinese as itself, not \\u escapes"
    assert "\\u" not in text


async def test_a_long_leave_with_its_working_days_goes_to_the_department_head_and_deputy_gm(
    api: Any,
) -> None:
    req = await api.submit("leave", "u_wu", leave("2026-11-23", "2026-12-18", days=20))

    assert [s["key"] for s in req["steps"]] == ["manager", "dept_head", "deputy_gm"]
    assert req["form"]["days"] == 20


async def test_preview_fills_in_the_days_and_takes_the_urgency(api: Any, clock: ManualClock) -> None:
    body = {
        "template": "leave",
        "initiator": "u_wu",
        "form": leave("2026-11-23", "2026-11-27"),
        "urgency": "urgent",
    }
    _, route = await api.call("POST", "/preview", body, expect=200)

    assert route["form"]["days"] == 5
    assert route["urgency"] == "urgent"
    assert datetime.fromisoformat(route["deadline"]) == clock.now() + timedelta(hours=6)
    assert [s["key"] for s in route["steps"] if not s["skipped"]] == ["manager", "dept_head"]
