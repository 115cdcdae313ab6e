"""Hostile input at the HTTP edge (issue 16, items 1 and 2), on SQLite and PostgreSQL.

Every case answers a 4xx JSON error that names the problem, and nothing is written: no request,
no delegation, no check-in, no outbox row. Texts have documented maxima (`approvals/forms.py`
for form fields, `bot/web/routes.py` for the API's own texts); longer ones are refused with a
422 naming the field.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from approvals.clock import ManualClock
from approvals.definitions import FieldSpec, FieldType
from approvals.forms import MAX_ITEMS, MAX_LENGTH, ValueRefused, max_length, normalise_value
from approvals.template_loader import validate_dir
from bot.keys import SESSIONS, WORKFLOW
from bot.platforms.dingtalk.cards import open_card_params
from bot.platforms.wecom.cards import text_body as wecom_text_body
from bot.web.routes import COMMENT_MAX, REASON_MAX
from notifications.delivery import Delivery, OutgoingMessage
from notifications.dispatcher import OutboxDispatcher
from notifications.fit import BUDGETS, budget_for, fit_payload, fit_text
from org.model import User
from storage.approval_models import DelegationRow, IdempotencyRow, OutboxRow, RequestRow
from storage.calendar_models import CalendarOverrideRow
from storage.checkin_models import CheckinRow
from storage.db import Database
from tests.conftest import Api

SEAL_FORM: dict[str, Any] = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}
OUTING = {
    "destination": {"site": "site_pudong"},
    "start": "2026-11-23T10:30:00+08:00",
    "end": "2026-11-23T16:00:00+08:00",
    "reason": "现场巡检",
}
NUL = "a\u0000b"
SURROGATE = "a\ud800b"
EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:59:59-12:00"
MEGA = "x" * 900_000  # just under the 1 MB a body may be


async def rows(db: Database, model: Any) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def nothing_written(db: Database) -> None:
    for model in (RequestRow, DelegationRow, CheckinRow, IdempotencyRow, CalendarOverrideRow):
        assert await rows(db, model) == 0, model.__name__


def refused(status: int, body: Any, *names: str, code: int = 422) -> None:
    """A 4xx JSON error whose details or message name each of `names`."""
    assert status == code, (status, str(body)[:300])
    assert isinstance(body, dict) and body["error"] and body["message"]
    said = str(body.get("details")) + body["message"]
    for name in names:
        assert name in said, (name, said[:300])


# -- item 1: characters PostgreSQL cannot store, and text Python cannot encode ---------------------
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_a_form_text_with_nul_or_a_lone_surrogate_is_refused(
    api: Api, org_db: Database, bad: str
) -> None:
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "seal_use", "initiator": "u_wu", "form": {**SEAL_FORM, "reason": bad}},
    )
    refused(status, body, "reason")
    await nothing_written(org_db)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_nul_or_surrogate_anywhere_in_a_body_is_refused(api: Api, org_db: Database, bad: str) -> None:
    # in a key of the form, in the idempotency key, in a delegation reason, in a comment
    status, body = await api.call(
        "POST", "/requests", {"template": "seal_use", "initiator": "u_wu", "form": {**SEAL_FORM, bad: 1}}
    )
    assert status in (400, 422), body
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "seal_use", "initiator": "u_wu", "form": SEAL_FORM, "idempotency_key": bad},
    )
    refused(status, body, "idempotency_key")
    status, body = await api.call(
        "POST",
        "/delegations",
        {"delegator": "u_sun", "delegate": "u_li", "ends_at": "2026-11-30T18:00:00+08:00", "reason": bad},
    )
    refused(status, body, "reason")
    status, body = await api.call(
        "POST", "/checkins", {"user": "u_wu", "lat": 31.2, "lng": 121.5, "label": bad}
    )
    refused(status, body, "label")
    status, body = await api.call(
        "POST", "/calendar/overrides", {"date": "2026-12-01", "kind": "holiday", "reason": bad}
    )
    refused(status, body, "reason")
    await nothing_written(org_db)


async def test_a_comment_with_nul_is_refused_and_the_task_stays_pending(api: Api, org_db: Database) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    task = (await api.pending("u_sun"))[0]
    status, body = await api.call(
        "POST",
        f"/requests/{req['id']}/actions",
        {
            "action": "approve",
            "actor": "u_sun",
            "task_id": task["task_id"],
            "version": task["version"],
            "comment": NUL,
        },
    )
    refused(status, body, "comment")
    assert (await api.pending("u_sun"))[0]["version"] == task["version"]


async def test_nul_in_a_query_is_refused(api: Api, org_db: Database) -> None:
    for path in ("/requests?initiator=u_wu%00", "/tasks?assignee=u%00x", "/delegations?user=%00"):
        status, body = await api.call("GET", path)
        assert status in (400, 422), (path, status, body)
        assert "NUL" in str(body) or "\\u0000" in str(body) or "控制字符" in body["message"], body


# -- item 1: times that overflow, numbers that do not fit ------------------------------------------
@pytest.mark.parametrize("moment", [EARLY, LATE], ids=["early", "late"])
async def test_a_time_that_overflows_in_utc_is_refused(api: Api, org_db: Database, moment: str) -> None:
    status, body = await api.call(
        "POST",
        "/delegations",
        {"delegator": "u_sun", "delegate": "u_li", "starts_at": moment, "ends_at": moment},
    )
    refused(status, body, "starts_at", "ends_at")
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "seal_use", "initiator": "u_wu", "form": {**SEAL_FORM, "needed_at": moment}},
    )
    refused(status, body, "needed_at")
    status, body = await api.call(
        "POST", "/checkins", {"user": "u_wu", "lat": 31.2, "lng": 121.5, "device_at": moment}
    )
    refused(status, body, "device_at")
    await nothing_written(org_db)


@pytest.mark.parametrize("offset", ["1" + "0" * 30, "²", "-1", "1e3"])
async def test_an_offset_that_is_no_small_whole_number_is_refused(api: Api, offset: str) -> None:
    status, body = await api.call("GET", f"/requests?offset={offset}")
    refused(status, body, "offset")
    status, body = await api.call("GET", f"/requests?limit={offset}")
    refused(status, body, "limit")


async def test_an_idempotency_key_over_200_characters_is_refused(api: Api, org_db: Database) -> None:
    key = "k" * 201
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "seal_use", "initiator": "u_wu", "form": SEAL_FORM, "idempotency_key": key},
    )
    refused(status, body, "idempotency_key", "200")
    status, body = await api.call(
        "POST", "/checkins", {"user": "u_wu", "lat": 31.2, "lng": 121.5, "idempotency_key": key}
    )
    refused(status, body, "idempotency_key", "200")
    await nothing_written(org_db)
    # 200 is still fine
    await api.submit("seal_use", "u_wu", SEAL_FORM, idempotency_key="k" * 200)


@pytest.mark.parametrize("where", ["top", "form"])
async def test_json_nested_100000_levels_is_refused(api: Api, org_db: Database, where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    raw = (
        deep
        if where == "top"
        else '{"template":"seal_use","initiator":"u_wu","form":{"reason":' + deep + "}}"
    )
    resp = await api.client.post(
        "/api/v1/requests", data=raw, headers={**api.headers, "Content-Type": "application/json"}
    )
    body = await resp.json()
    refused(resp.status, body, "nest", code=400)
    await nothing_written(org_db)


async def test_ids_longer_than_any_id_are_refused_by_name(api: Api, org_db: Database) -> None:
    long_id = "u" * 65
    status, body = await api.call(
        "POST", "/requests", {"template": "t" * 65, "initiator": "u_wu", "form": {}}
    )
    refused(status, body, "template", "64")
    status, body = await api.call("GET", f"/tasks?assignee={long_id}")
    refused(status, body, "assignee", "64")
    await nothing_written(org_db)


# -- item 1: the check-in page's POST ---------------------------------------------------------------
async def _checkin_link(api: Api, db: Database) -> str:
    await api.submit("outing", "u_wu", OUTING)
    await api.decide("u_sun")
    async with db.session() as s:
        row = (
            (
                await s.execute(
                    select(OutboxRow).where(OutboxRow.kind == "checkin_card").order_by(OutboxRow.id)
                )  # type: ignore[arg-type]
            )
            .scalars()
            .first()
        )
    assert row is not None
    buttons = {b["label"]: urlsplit(b["url"]).path for b in row.payload["card"]["buttons"]}
    return buttons["到达打卡"]


@pytest.mark.parametrize(
    "extra",
    [
        {"nonce": "n\u0000" + uuid.uuid4().hex},
        {"nonce": "n\ud800"},
        {"coord_system": "wgs\u000084"},
        {"device_at": EARLY},
        {"device_at": LATE},
    ],
    ids=["nonce-nul", "nonce-surrogate", "coord-nul", "early", "late"],
)
async def test_the_checkin_page_post_refuses_hostile_fields(
    api: Api, org_db: Database, extra: dict[str, Any]
) -> None:
    path = await _checkin_link(api, org_db)
    body = {
        "lat": 31.2215,
        "lng": 121.5440,
        "accuracy_m": 15,
        "coord_system": "wgs84",
        "nonce": uuid.uuid4().hex,
    }
    resp = await api.client.post(path, json={**body, **extra})
    answer = await resp.json()
    refused(resp.status, answer, next(iter(extra)))
    assert await rows(org_db, CheckinRow) == 0


async def test_the_checkin_page_post_refuses_deep_json(api: Api, org_db: Database) -> None:
    path = await _checkin_link(api, org_db)
    resp = await api.client.post(path, data="[" * 100_000, headers={"Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]


# -- item 1: pages ------------------------------------------------------------------------------------
async def _signed_in(api: Api, user: str = "u_sun") -> tuple[dict[str, str], str]:
    session = await api.app[SESSIONS].start(user, via="test")  # type: ignore[index]
    return {"Cookie": f"oabot_session={session.id}"}, session.csrf


@pytest.mark.parametrize(
    "query", ["page=²", "page=" + "9" * 40, "q=%00", "from=%00", "template=%00", "from=0001-01-01"]
)
async def test_list_pages_survive_hostile_queries(api: Api, query: str) -> None:
    headers, _ = await _signed_in(api)
    for path in ("/m/done", "/m/mine", "/m/todo"):
        resp = await api.client.get(f"{path}?{query}", headers=headers)
        assert resp.status < 500, (path, resp.status, (await resp.text())[:300])


async def test_batch_approval_with_hostile_boxes_changes_nothing(api: Api, org_db: Database) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    task = (await api.pending("u_sun"))[0]
    headers, csrf = await _signed_in(api)
    for box in (f"{task['task_id']}:²", f"{task['task_id']}:{'9' * 40}", f"{task['task_id']}\x00:1"):
        resp = await api.client.post(
            "/m/batch", data={"csrf": csrf, "t": box, "opinion": NUL}, headers=headers, allow_redirects=False
        )
        assert resp.status < 500, (box, resp.status, (await resp.text())[:300])
    assert (await api.pending("u_sun"))[0]["version"] == task["version"]
    assert req["status"] == "running"


async def test_a_page_form_with_nul_is_refused_and_creates_nothing(api: Api, org_db: Database) -> None:
    headers, csrf = await _signed_in(api, "u_wu")
    form = {**SEAL_FORM, "reason": NUL, "files": "合同.pdf", "take_out": "false", "copies": "2", "csrf": csrf}
    form["needed_at"] = "2026-11-24T10:00"
    resp = await api.client.post(
        "/m/new/seal_use", data={**form, "do": "submit"}, headers=headers, allow_redirects=False
    )
    assert 400 <= resp.status < 500, (resp.status, (await resp.text())[:300])
    await nothing_written(org_db)


# -- item 2: every text has a documented maximum -----------------------------------------------------
async def test_a_megabyte_comment_is_refused_naming_the_field(api: Api, org_db: Database) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    task = (await api.pending("u_sun"))[0]
    act = {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]}
    status, body = await api.call("POST", f"/requests/{req['id']}/actions", {**act, "comment": MEGA})
    refused(status, body, "comment", str(COMMENT_MAX))
    assert (await api.pending("u_sun"))[0]["version"] == task["version"]
    # the longest comment allowed goes through
    await api.call(
        "POST", f"/requests/{req['id']}/actions", {**act, "comment": "好" * COMMENT_MAX}, expect=200
    )


async def test_a_megabyte_reason_or_label_elsewhere_is_refused(api: Api, org_db: Database) -> None:
    status, body = await api.call(
        "POST",
        "/delegations",
        {"delegator": "u_sun", "delegate": "u_li", "ends_at": "2026-11-30T18:00:00+08:00", "reason": MEGA},
    )
    refused(status, body, "reason", str(REASON_MAX))
    status, body = await api.call(
        "POST", "/calendar/overrides", {"date": "2026-12-01", "kind": "holiday", "reason": MEGA}
    )
    refused(status, body, "reason")
    status, body = await api.call(
        "POST", "/checkins", {"user": "u_wu", "lat": 31.2, "lng": 121.5, "label": MEGA}
    )
    refused(status, body, "label")
    await nothing_written(org_db)


@pytest.mark.parametrize(
    ("template", "form", "field", "limit"),
    [
        ("seal_use", {**SEAL_FORM, "files": ["合同" * 101 + ".pdf"]}, "files", "200"),
        (
            "seal_use",
            {**SEAL_FORM, "files": [f"{i}.pdf" for i in range(MAX_ITEMS + 1)]},
            "files",
            str(MAX_ITEMS),
        ),
        (
            "outing",
            {**OUTING, "destination": {"address": MEGA, "lat": 31.2, "lng": 121.5}},
            "destination",
            "200",
        ),
    ],
    ids=["file-name", "file-count", "address"],
)
async def test_a_form_text_over_its_maximum_is_refused_naming_the_field(
    api: Api, org_db: Database, template: str, form: dict[str, Any], field: str, limit: str
) -> None:
    status, body = await api.call(
        "POST", "/requests", {"template": template, "initiator": "u_wu", "form": form}
    )
    assert status == 422, (status, str(body)[:300])
    problem = next(f for f in body["details"]["fields"] if f["key"] == field)
    assert limit in problem["message"], problem
    assert len(str(body)) < 10_000  # the refusal does not echo the megabyte back
    await nothing_written(org_db)


def test_a_template_field_can_set_its_own_max_length() -> None:
    short = FieldSpec(key="title", label="标题", type=FieldType.TEXT, max_length=10)
    assert normalise_value(short, "十个字十个字十个字十", tz=UTC) == "十个字十个字十个字十"
    with pytest.raises(ValueRefused, match="不能超过 10 个字"):
        normalise_value(short, "十一个字十一个字十一个", tz=UTC)
    longer = FieldSpec(key="notes", label="备注", type=FieldType.TEXTAREA, max_length=5000)
    assert len(normalise_value(longer, "长" * 5000, tz=UTC)) == 5000
    assert (
        max_length(FieldSpec(key="t", label="t", type=FieldType.TEXTAREA)) == MAX_LENGTH[FieldType.TEXTAREA]
    )


def test_the_loader_takes_max_length_on_text_kinds_only(tmp_path: Path) -> None:
    head = (
        "key: trip\nname: 出差\nfields:\n"
        "  - {key: city, label: 城市, type: text, max_length: 20}\n"
        "  - {key: days, label: 天数, type: number, max_length: 20}\n"
        "  - {key: note, label: 备注, type: textarea, max_length: 0}\n"
        "steps:\n  - {key: a, name: A, approvers: [{manager: 1}]}\n"
    )
    (tmp_path / "t.yaml").write_text(head, encoding="utf-8")
    problems = [str(p) for p in validate_dir(tmp_path)]
    assert any("days.max_length" in p and "only text, textarea, list, location" in p for p in problems), (
        problems
    )
    assert any("note.max_length" in p and "between 1 and" in p for p in problems), problems
    assert not any("city" in p for p in problems), problems


# -- item 2: cards and texts fit each platform, the link kept ----------------------------------------
class Recording(Delivery):
    """A channel that keeps what it was handed (named like the platform whose budget applies)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[OutgoingMessage] = []

    def reaches(self, user: User) -> bool:
        return True

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        self.got.append(message)


def _bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


async def test_the_longest_accepted_texts_still_fit_every_platform_with_the_link(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    longest = {
        **SEAL_FORM,
        "reason": "长" * 500,
        "files": [f"{i:02d}" + "文" * 198 for i in range(MAX_ITEMS)],
    }
    req = await api.submit("seal_use", "u_wu", longest)
    task = (await api.pending("u_sun"))[0]
    await api.call(
        "POST",
        f"/requests/{req['id']}/actions",
        {
            "action": "reject",
            "actor": "u_sun",
            "task_id": task["task_id"],
            "version": task["version"],
            "comment": "否" * COMMENT_MAX,
        },
        expect=200,
    )
    channels = {name: Recording(name) for name in ("wecom", "dingtalk", "console")}
    workflow = api.app[WORKFLOW]  # type: ignore[index]
    await OutboxDispatcher(org_db, list(channels.values()), org=workflow.org, now=clock.now).drain()

    def card_of(name: str) -> dict[str, Any]:
        return next(m.payload["card"] for m in channels[name].got if m.kind == "task_card")

    def result_of(name: str) -> OutgoingMessage:
        return next(m for m in channels[name].got if m.kind == "result")

    # the console shows everything; the platforms get cards cut with "…" and the link whole
    assert any(len(f["value"]) >= 500 for f in card_of("console")["fields"])
    for name in ("wecom", "dingtalk"):
        card, budget = card_of(name), BUDGETS[name]
        assert card["link"] == card_of("console")["link"] and card["link"].startswith("http")
        assert any(b.get("url") == card["link"] for b in card["buttons"])
        assert _bytes(card) <= budget.card_bytes
        assert all(len(f["value"]) <= budget.value_chars for f in card["fields"])
        assert any(f["value"].endswith("…") for f in card["fields"])
        text = result_of(name).text()
        assert len(text.encode("utf-8")) <= budget.text_bytes
        assert text.endswith(result_of("console").payload["link"])
        assert ("…" in text) == (name == "wecom")  # 500 characters of opinion fit DingTalk's text
    # what DingTalk's card API is sent stays under its 15,000-byte parameter limit
    ding = card_of("dingtalk")
    params = open_card_params(ding, task_id=task["task_id"], version=task["version"])
    assert _bytes(params) < 15_000
    assert wecom_text_body(result_of("wecom").text(), account="a", agent_id=1)["text"]["content"].endswith(
        result_of("console").payload["link"]
    )


def test_fitting_cuts_words_never_the_link() -> None:
    budget = BUDGETS["wecom"]
    link = "http://oabot.test/m/l/" + "t" * 80
    words = "意见：" + "长" * 2000
    fitted = fit_text(words, link, budget)
    shown = OutgoingMessage(1, "result", "u", None, None, {"text": fitted, "link": link}).text()
    assert len(shown.encode("utf-8")) <= budget.text_bytes and shown.endswith(link) and "…" in shown
    # a short text is left alone, and so is a payload for the console
    assert fit_text("好", link, budget) == "好"
    assert fit_payload({"text": words}, budget_for("console")) == {"text": words}


async def test_clients_and_pages_are_told_each_fields_maximum(api: Api) -> None:
    _, seal = await api.call("GET", "/templates/seal_use", expect=200)
    limits = {f["key"]: f["max_length"] for f in seal["fields"]}
    assert limits["reason"] == 500 and limits["files"] == 200 and limits["copies"] is None
    headers, _ = await _signed_in(api, "u_wu")
    page = await (await api.client.get("/m/new/seal_use", headers=headers)).text()
    assert 'name="reason" rows=3 maxlength=500' in page and 'name="files" rows=3' in page


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
async def test_a_day_at_the_ends_of_the_calendar_is_refused(api: Api, day: str) -> None:
    status, body = await api.call("GET", f"/checkins?date={day}")
    refused(status, body, "date", "1900")
    status, body = await api.call("GET", f"/calendar/overrides?from={day}&to={day}")
    refused(status, body, "from", "1900")


async def test_an_over_long_opinion_on_the_request_page_is_refused_and_nothing_decided(
    api: Api, org_db: Database
) -> None:
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    task = (await api.pending("u_sun"))[0]
    headers, csrf = await _signed_in(api)
    form = {"csrf": csrf, "action": "approve", "task_id": task["task_id"], "version": str(task["version"])}
    resp = await api.client.post(
        f"/m/r/{req['id']}/act", data={**form, "comment": "长" * (COMMENT_MAX + 1)}, headers=headers
    )
    assert resp.status == 200 and f"意见最多 {COMMENT_MAX} 个字" in await resp.text()
    assert (await api.pending("u_sun"))[0]["version"] == task["version"]
