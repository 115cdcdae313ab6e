"""Documents 公文: numbers 文号 at the registrar's step (gap-free and unique when registrations
race, shown on the request page, the cards and the export, void and never reused when a document
ends), 密级 refused from the configured level at submission, and recall 收回 of a 发文 while
nobody it went to has opened it. SQLite and PostgreSQL (the `api` and `org_db` fixtures run both).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from approvals.confidentiality import Confidentiality, level_of, refused
from approvals.doc_numbers import PatternInvalid, parse_pattern
from approvals.engine import Action
from approvals.model import ActionKind
from approvals.template_loader import load_templates
from bot.keys import SESSIONS, WORKFLOW
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.documents import Documents
from services.links import PersonalLinks
from services.sheets import Sheets
from services.workspace import Workspace
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.document_models import DocNumberCounterRow, DocNumberRow
from tests.conftest import Api, settings_for
from tests.helpers import TZ
from tests.test_builtin_flows import act, cards, doc_issue, fetch, inbox, on_request, walk

YEAR = 2026  # the test clock's year in Shanghai
CHAIN = ("u_sun", "u_zhao", "u_zhang")  # 下行: review, office check, sign; then u_zhao registers
OPINION = "拟同意"


# -- the pure rule --------------------------------------------------------------------------------
def test_patterns_format_prefix_year_and_padded_sequence() -> None:
    assert (
        parse_pattern("{prefix}〔{year}〕{seq}号").format(prefix="办发", year=2026, seq=7)
        == "办发〔2026〕7号"
    )
    assert (
        parse_pattern("{prefix}-{year}-{seq:03}").format(prefix="人发", year=2026, seq=7) == "人发-2026-007"
    )
    assert parse_pattern("{year}{prefix}{seq:04}").format(prefix="X", year=2027, seq=12345) == "2027X12345"


@pytest.mark.parametrize(
    "pattern, says",
    [
        ("", "empty"),
        ("{prefix}〔{year}〕号", "{seq} exactly once"),
        ("{prefix}{prefix}{year}{seq}", "{prefix} exactly once"),
        ("{prefix}{year}{seq}{dept}", "unknown slot {dept}"),
        ("{prefix}{year:4}{seq}", "only {seq} takes a width"),
        ("{prefix}{year}{seq:3}", "only {seq} takes a width"),
        ("{prefix}{year}{seq}}", "a brace"),
        ("{prefix}{year}{seq}" + "号" * 60, "longer than"),
    ],
)
def test_unusable_patterns_are_refused_saying_why(pattern: str, says: str) -> None:
    with pytest.raises(PatternInvalid) as refused_pattern:
        parse_pattern(pattern)
    assert says in str(refused_pattern.value)


def test_confidentiality_levels_by_name_or_code_and_the_threshold() -> None:
    assert level_of("机密") == level_of("confidential") == Confidentiality.CONFIDENTIAL
    assert level_of("特级") is None
    assert refused(Confidentiality.TOP_SECRET, Confidentiality.CONFIDENTIAL)
    assert refused(Confidentiality.CONFIDENTIAL, Confidentiality.CONFIDENTIAL)
    assert not refused(Confidentiality.SECRET, Confidentiality.CONFIDENTIAL)
    assert refused(Confidentiality.SECRET, Confidentiality.SECRET)
    assert not refused(Confidentiality.TOP_SECRET, None)


# -- numbers -----------------------------------------------------------------------------------------
async def to_registration(api: Api) -> str:
    """A 下行 发文 by u_wu, walked to the registrar's step (u_zhao holds 登记编号)."""
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))
    await walk(api, req["id"], *CHAIN, opinion=OPINION)
    return str(req["id"])


async def test_registration_numbers_the_document_and_every_view_shows_it(api: Api, org_db: Database) -> None:
    rid = await to_registration(api)
    assert "doc_number" not in await fetch(api, rid)

    registered = await act(api, rid, "u_zhao")

    assert registered["doc_number"]["number"] == f"办发〔{YEAR}〕1号"
    view = await fetch(api, rid)
    assert (view["doc_number"]["number"], view["doc_number"]["status"]) == (f"办发〔{YEAR}〕1号", "issued")
    assert [(e["kind"], e["after"]) for e in view["trail"] if e["kind"].startswith("doc_number")] == [
        ("doc_number_assigned", f"办发〔{YEAR}〕1号")
    ]
    # the dispatch card (the next step) shows the number first
    dispatch = [r for r in await inbox(api, org_db, "u_zhao", rid) if r.kind == "task_card"][-1]
    assert dispatch.payload["card"]["fields"][0] == {"label": "文号", "value": f"办发〔{YEAR}〕1号"}
    # the request page
    session = await api.app[SESSIONS].start("u_wu", via="test")  # type: ignore[index]
    client: Any = api.client
    page = await (await client.get(f"/m/r/{rid}", headers={"Cookie": f"oabot_session={session.id}"})).text()
    assert f"<dt>文号</dt><dd class=ws-docno>办发〔{YEAR}〕1号</dd>" in page
    assert "登记文号：办发" in page
    done = await walk(api, rid, "u_zhao")
    assert done["status"] == "approved" and done["doc_number"]["status"] == "issued"
    assert await verified(api, rid)
    sheet = await Sheets(Workspace(api.app[WORKFLOW])).for_office(rid)  # type: ignore[index]
    assert sheet.doc_number == f"办发〔{YEAR}〕1号"


async def verified(api: Api, rid: str) -> bool:
    """The trail with its number notes still checks out (hash chain, seal and replay)."""
    return await api.app[WORKFLOW].verify_trail(rid) == {}  # type: ignore[index,no-any-return]


async def test_the_export_has_a_document_number_column(api: Api) -> None:
    rid = await to_registration(api)
    await act(api, rid, "u_zhao")
    other = await api.submit("doc_issue", "u_wu", doc_issue("平行"))  # not registered yet
    office = await api.app[SESSIONS].start("u_zhao", via="test")  # type: ignore[index]
    client: Any = api.client
    resp = await client.get(
        "/admin/requests.csv?template=doc_issue&sort=created&order=asc",
        headers={"Cookie": f"oabot_session={office.id}"},
    )
    lines = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    header, rows = lines[0], lines[1:]
    by_id = {r[0]: r[header.index("文号")] for r in rows}
    assert by_id == {rid: f"办发〔{YEAR}〕1号", other["id"]: ""}


async def test_a_terminated_document_keeps_its_number_void_and_it_is_never_reused(
    api: Api, org_db: Database
) -> None:
    first = await to_registration(api)
    await act(api, first, "u_zhao")
    ended = await on_request(api, first, "terminate", "u_zhao", as_admin=True, comment="撤回重拟")

    assert ended["status"] == "terminated"
    view = await fetch(api, first)
    assert (view["doc_number"]["number"], view["doc_number"]["status"]) == (f"办发〔{YEAR}〕1号", "void")
    assert [e["kind"] for e in view["trail"] if e["kind"].startswith("doc_number")] == [
        "doc_number_assigned",
        "doc_number_voided",
    ]
    second = await to_registration(api)
    assert (await act(api, second, "u_zhao"))["doc_number"]["number"] == f"办发〔{YEAR}〕2号"
    async with org_db.session() as s:
        rows = (await s.execute(select(DocNumberRow).order_by(DocNumberRow.seq))).scalars().all()  # type: ignore[arg-type]
    assert [(r.seq, r.status) for r in rows] == [(1, "void"), (2, "issued")]


async def test_the_organisation_pattern_applies_and_a_bad_one_is_refused_at_start() -> None:
    documents = Documents(tz=TZ, pattern="{prefix}字〔{year}〕第{seq:03}号")
    assert documents.pattern.format(prefix="办发", year=2026, seq=4) == "办发字〔2026〕第004号"
    with pytest.raises(PatternInvalid):
        Documents(tz=TZ, pattern="{prefix}{seq}")


# -- racing registrations ------------------------------------------------------------------------------
@pytest.fixture
async def registrars(org_db: Database, clock: ManualClock) -> AsyncIterator[list[Workflow]]:
    """Four workflows, each on its own Database on the same store, as four app replicas."""
    opened: list[Database] = []
    templates = load_templates([])
    made = []
    for _ in range(4):
        database = Database(org_db.url, schema=org_db.schema)
        opened.append(database)
        made.append(
            Workflow(
                WorkflowDeps(
                    db=database,
                    templates=templates,
                    tz=TZ,
                    now=clock.now,
                    links=PersonalLinks(
                        database,
                        secret="test-link-secret-0123456789",
                        public_url="http://oabot.test",
                        now=clock.now,
                    ),
                    directory=Directory(database, clock.now),
                    documents=Documents(tz=TZ),
                )
            )
        )
    yield made
    for database in opened:
        await database.dispose()


async def _walk_to_register(wf: Workflow) -> tuple[str, Action]:
    view = await wf.submit(template_key="doc_issue", initiator="u_wu", form=doc_issue("下行"))
    for person in CHAIN:
        task = next(t for s in view.steps for t in s.tasks if t.status == "pending")
        assert task.assignee == person
        view = await wf.act(
            request_id=view.id,
            action=Action(ActionKind.APPROVE, person, task.id, task.version, comment=OPINION),
        )
    task = next(t for s in view.steps for t in s.tasks if t.status == "pending")
    return view.id, Action(ActionKind.APPROVE, "u_zhao", task.id, task.version)


async def test_racing_registrations_get_consecutive_unique_numbers(
    registrars: list[Workflow], org_db: Database
) -> None:
    n = 12
    waiting = [await _walk_to_register(registrars[0]) for _ in range(n)]

    done = await asyncio.gather(
        *(registrars[i % len(registrars)].act(request_id=rid, action=a) for i, (rid, a) in enumerate(waiting))
    )

    numbers = sorted(int(v.doc_number.number.split("〕")[1][:-1]) for v in done if v.doc_number)
    assert numbers == list(range(1, n + 1))
    async with org_db.session() as s:
        counter = (await s.execute(select(DocNumberCounterRow))).scalars().one()
        rows = (await s.execute(select(DocNumberRow))).scalars().all()
    assert (counter.prefix, counter.year, counter.last_seq) == ("办发", YEAR, n)
    assert sorted(r.seq for r in rows) == list(range(1, n + 1))
    assert len({r.number for r in rows}) == n


# -- confidentiality ------------------------------------------------------------------------------------
async def test_confidential_documents_are_refused_and_secret_ones_go_through(api: Api) -> None:
    for level in ("机密", "绝密"):
        status, body = await api.call(
            "POST",
            "/requests",
            {"template": "doc_issue", "initiator": "u_wu", "form": {**doc_issue("下行"), "secrecy": level}},
        )
        assert status == 422, body
        (problem,) = body["details"]["fields"]  # type: ignore[index]
        assert problem["key"] == "secrecy" and "不通过本系统流转" in problem["message"]
        assert f"本件为{level}" in body["message"]  # type: ignore[index]
    secret = await api.submit("doc_issue", "u_wu", {**doc_issue("下行"), "secrecy": "秘密"})
    assert secret["status"] == "running"
    incoming = {
        "title": "关于安全检查的通知",
        "source_org": "区应急管理局",
        "received_at": "2026-11-20",
        "handling_department": "admin_service",
        "files": ["通知.pdf"],
    }
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "doc_receive", "initiator": "u_zhao", "form": {**incoming, "secrecy": "机密"}},
    )
    assert status == 422 and "不通过本系统流转" in body["message"]  # type: ignore[index]
    received = await api.submit("doc_receive", "u_zhao", {**incoming, "secrecy": "秘密"})
    assert received["status"] == "running"
    _, listed = await api.call("GET", "/requests?template=doc_issue", expect=200)
    assert len(listed["items"]) == 1  # type: ignore[index]


async def test_the_threshold_is_configurable_down_to_secret(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    from bot.app import create_app

    app = create_app(settings_for(org_db, confidentiality_refused_from="secret"), clock=clock)
    api = Api(await aiohttp_client(app), app)
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "doc_issue", "initiator": "u_wu", "form": {**doc_issue("下行"), "secrecy": "秘密"}},
    )
    assert status == 422 and "秘密及以上密级" in body["message"]  # type: ignore[index]
    assert (await api.submit("doc_issue", "u_wu", {**doc_issue("下行"), "secrecy": "内部"}))[
        "status"
    ] == "running"


# -- recall 收回 --------------------------------------------------------------------------------------------
async def test_recall_before_anyone_opened_it_ends_the_document_and_closes_the_cards(
    api: Api, org_db: Database
) -> None:
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))
    rid = req["id"]
    assert len(await inbox(api, org_db, "u_sun", rid)) == 1  # u_sun has the card, not yet opened

    recalled = await on_request(api, rid, "withdraw", "u_wu", comment="内容需调整")

    assert recalled["status"] == "withdrawn"
    assert cards(await inbox(api, org_db, "u_sun", rid)) == [(True, "已收回")]
    result = [r.text for r in await inbox(api, org_db, "u_wu", rid) if r.kind == "result"][-1]
    assert result == "您的「发文审批」：发文 · 关于年终考核的通知已收回（吴昊），意见：内容需调整"


async def test_recall_at_a_later_step_while_its_holder_has_not_opened_it(api: Api, org_db: Database) -> None:
    """孙丽 is the only head of her department: she reviews her own draft (her own open does not
    count); at the office check, unopened by 赵敏, she may still recall it."""
    req = await api.submit("doc_issue", "u_sun", doc_issue("下行"))
    await act(api, req["id"], "u_sun", comment=OPINION)
    assert [t["assignee"] for t in await api.pending("u_zhao") if t["request_id"] == req["id"]] == ["u_zhao"]

    recalled = await on_request(api, req["id"], "withdraw", "u_sun")

    assert recalled["status"] == "withdrawn"
    assert cards(await inbox(api, org_db, "u_zhao", req["id"])) == [(True, "已收回")]


async def test_a_decision_from_the_card_counts_as_opening_it(api: Api) -> None:
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))
    await act(api, req["id"], "u_sun", comment=OPINION)

    refused_recall = await on_request(api, req["id"], "withdraw", "u_wu", expect=403)

    assert refused_recall["message"] == "文件已被打开，不能收回：孙丽（11-23 10:00 已打开）"


async def test_recall_after_a_recipient_opened_the_page_is_refused_naming_them(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))
    rid = req["id"]
    client: Any = api.client
    drafter = await api.app[SESSIONS].start("u_wu", via="test")  # type: ignore[index]
    page = await (await client.get(f"/m/r/{rid}", headers={"Cookie": f"oabot_session={drafter.id}"})).text()
    assert "收回文件" in page  # the drafter's own view is no open
    clock.advance(timedelta(minutes=5))
    reader = await api.app[SESSIONS].start("u_sun", via="wecom")  # type: ignore[index]
    assert (await client.get(f"/m/r/{rid}", headers={"Cookie": f"oabot_session={reader.id}"})).status == 200

    refused_recall = await on_request(api, rid, "withdraw", "u_wu", expect=403)

    assert refused_recall["error"] == "action_not_allowed"
    assert refused_recall["message"] == "文件已被打开，不能收回：孙丽（11-23 10:05 已打开）"
    assert (await fetch(api, rid))["status"] == "running"
    page = await (await client.get(f"/m/r/{rid}", headers={"Cookie": f"oabot_session={drafter.id}"})).text()
    assert "收回文件" not in page
    async with org_db.session() as s:
        closed = (await s.execute(select(OutboxRow).where(OutboxRow.kind == "card_closed"))).scalars().all()  # type: ignore[arg-type]
    assert closed == []


async def test_a_returned_document_resubmitted_as_confidential_is_refused(api: Api) -> None:
    """The 密级 refusal holds on resubmission too: a returned 发文 corrected to 机密 stays out."""
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))
    await act(api, req["id"], "u_sun", "return", comment="请修改密级")
    refused_again = await on_request(
        api, req["id"], "resubmit", "u_wu", form={**doc_issue("下行"), "secrecy": "机密"}, expect=422
    )
    assert "不通过本系统流转" in refused_again["message"]
    view = await fetch(api, req["id"])
    assert view["status"] == "returned" and view["form"]["secrecy"] != "机密"
    again = await on_request(
        api, req["id"], "resubmit", "u_wu", form={**doc_issue("下行"), "secrecy": "秘密"}
    )
    assert again["status"] == "running"
