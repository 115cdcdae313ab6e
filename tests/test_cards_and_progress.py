"""Cards and messages of issue 11: every link is the recipient's own link to the request page,
cards offer 同意/驳回 plus 更多操作, a decided card says its outcome instead of 等待您处理, the
initiator hears of each step as the template says (`progress`), and a step with
`opinion_required` refuses an approval without an opinion (REST and card tap alike)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from approvals import engine
from approvals.definitions import Progress, Template
from approvals.engine import Action, Context
from approvals.errors import OpinionRequired
from approvals.model import ActionKind, Notice, NoticeKind, Request, TaskStatus
from approvals.template_loader import TemplateError, load_template_file, load_templates
from bot.app import create_app
from bot.keys import DISPATCHER, LINKS, WORKFLOW
from bot.platforms.dingtalk.cards import closed_card_params, open_card_params
from bot.platforms.wecom.cards import close_card_body, task_card
from notifications.compose import compose
from notifications.delivery import OutgoingMessage
from notifications.messages import message_for
from notifications.wording import phrase
from storage.approval_models import OutboxRow
from storage.console_models import ConsoleMessageRow
from storage.db import Database
from tests.conftest import settings_for
from tests.helpers import T0, TZ, demo_org, step, template, who

ORG = demo_org()
LINK = "https://oa.example.com/m/l/token-of-the-recipient"
SEAL = {
    "department": "",
    "seal": "公章",
    "reason": "签署框架合同",
    "needed_at": "2026-11-24T10:00",
    "files": "框架合同.pdf\n补充协议.pdf",
    "copies": "2",
    "take_out": "false",
}
DOC = {
    "title": "关于年度安全检查的通知",
    "direction": "下行",
    "secrecy": "内部",
    "doc_urgency": "一般",
    "main_recipients": "各部门",
    "files": ["通知.docx"],
}


def chain(progress: Progress) -> Any:
    return template(
        step("leader", who("manager", 1), name="直接领导"),
        step("gm", who("role", "gm"), name="总经理"),
        progress=progress,
    )


def builtin_opinion_steps() -> dict[str, list[str]]:
    """The built-in templates' steps that ask for an opinion, by template."""
    found = {key: [s.key for s in t.steps if s.opinion_required] for key, t in load_templates([]).items()}
    return {key: steps for key, steps in found.items() if steps}


def ctx(tpl: Any) -> Context:
    return Context(template=tpl, org=ORG, now=T0, tz=TZ, delegations=[], words=phrase)


def approve(tpl: Any, req: Request, actor: str, comment: str | None = None) -> list[Notice]:
    task = next(t for t in req.tasks if t.assignee == actor and t.status == TaskStatus.PENDING)
    action = Action(
        kind=ActionKind.APPROVE, actor=actor, task_id=task.id, version=task.version, comment=comment
    )
    return engine.act(ctx(tpl), req, action).notices


def kinds_to(notices: list[Notice], user: str) -> list[NoticeKind]:
    return [n.kind for n in notices if n.recipient == user]


# -- progress --------------------------------------------------------------------------------
def test_each_step_tells_the_initiator_which_step_is_done_and_what_comes_next() -> None:
    tpl = chain(Progress.EACH_STEP)
    req = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"}).request

    first = approve(tpl, req, "u_sun")
    last = approve(tpl, req, "u_zhang")

    [progress] = [n for n in first if n.kind == NoticeKind.PROGRESS]
    assert progress.recipient == "u_wu"
    assert progress.data == {"step": "直接领导", "label": "同意", "by": ["u_sun"], "next_step": "总经理"}
    assert kinds_to(last, "u_wu") == [NoticeKind.RESULT]  # the last step's news is the result
    text = compose(progress, req, template=tpl, org=ORG, tz=TZ, link=LINK)["text"]
    assert text == "【进度】您的「测试审批」：测试审批，「直接领导」已同意（孙丽），下一步「总经理」"


def test_final_only_tells_the_initiator_the_result_and_nothing_before() -> None:
    tpl = chain(Progress.FINAL_ONLY)
    req = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"}).request

    assert kinds_to(approve(tpl, req, "u_sun"), "u_wu") == []
    assert kinds_to(approve(tpl, req, "u_zhang"), "u_wu") == [NoticeKind.RESULT]


def test_off_tells_the_initiator_only_what_they_must_act_on() -> None:
    tpl = chain(Progress.OFF)
    req = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"}).request

    assert kinds_to(approve(tpl, req, "u_sun"), "u_wu") == []
    task = next(t for t in req.tasks if t.assignee == "u_zhang" and t.status == TaskStatus.PENDING)
    returned = engine.act(
        ctx(tpl),
        req,
        Action(
            kind=ActionKind.RETURN,
            actor="u_zhang",
            task_id=task.id,
            version=task.version,
            comment="请补充",
            target="initiator",
        ),
    ).notices
    assert kinds_to(returned, "u_wu") == [NoticeKind.RESULT]  # returned: they must resubmit


def test_a_step_the_policy_approved_by_itself_is_no_news() -> None:
    tpl = template(
        step("self", who("user", "u_wu"), name="本人确认"),
        step("gm", who("role", "gm"), name="总经理"),
        progress=Progress.EACH_STEP,
    )
    out = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"})

    assert out.request.steps[0].status.value == "approved"  # the initiator is the approver
    assert [n for n in out.notices if n.kind == NoticeKind.PROGRESS] == []


def test_progress_and_opinion_required_are_read_from_the_template_file_and_checked(tmp_path: Path) -> None:
    def load(progress: str, opinion: str = "true") -> Template:
        path = tmp_path / "p.yaml"
        path.write_text(
            f"key: p\nname: P\nprogress: {progress}\nsteps:\n"
            f"  - {{key: a, name: A, approvers: [{{role: gm}}], opinion_required: {opinion}}}\n",
            encoding="utf-8",
        )
        return load_template_file(path)

    assert load("final_only").progress == Progress.FINAL_ONLY and load("off").progress == Progress.OFF
    assert load("each_step").steps[0].opinion_required is True
    assert load("each_step", "false").steps[0].opinion_required is False
    assert builtin_opinion_steps() == {
        "doc_issue": ["review", "office_check", "leader_review"],
        "doc_receive": ["propose"],
    }
    with pytest.raises(TemplateError, match="progress"):
        load("sometimes")


# -- opinion_required ------------------------------------------------------------------------
def test_an_approval_without_an_opinion_is_refused_on_a_step_that_requires_one() -> None:
    tpl = template(step("review", who("manager", 1), name="核稿", opinion_required=True))
    req = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"}).request

    with pytest.raises(OpinionRequired) as refused:
        approve(tpl, req, "u_sun")
    with pytest.raises(OpinionRequired):
        approve(tpl, req, "u_sun", comment="   ")

    assert refused.value.code == "opinion_required" and "核稿" in message_for(refused.value)
    assert approve(tpl, req, "u_sun", comment="同意，文字已核")  # with an opinion it goes through


# -- platform card shapes ----------------------------------------------------------------------
def composed_card() -> tuple[dict[str, Any], dict[str, Any]]:
    """An open task card and the decided one, as notifications.compose makes them."""
    tpl = template(step("leader", who("manager", 1), name="直接领导"))
    out = engine.submit(ctx(tpl), request_id="r1", initiator="u_wu", form={"reason": "测试"})
    [card_notice] = [n for n in out.notices if n.kind == NoticeKind.TASK_CARD]
    open_card = compose(card_notice, out.request, template=tpl, org=ORG, tz=TZ, link=LINK)["card"]
    closing = [n for n in approve(tpl, out.request, "u_sun") if n.kind == NoticeKind.CARD_CLOSED]
    closed = compose(closing[0], out.request, template=tpl, org=ORG, tz=TZ, link=LINK)
    return open_card, closed


def test_a_card_offers_approve_reject_and_more_actions_opening_the_request_page() -> None:
    card, _ = composed_card()

    assert [(b["action"], b["label"]) for b in card["buttons"]] == [
        ("approve", "同意"),
        ("reject", "驳回"),
        ("open", "更多操作"),
    ]
    assert card["buttons"][-1]["url"] == card["link"] == LINK
    assert "等待您处理" in card["waiting"]


def test_a_decided_card_says_its_outcome_instead_of_waiting_for_you() -> None:
    _, closed = composed_card()

    assert closed["outcome"].startswith("已同意 · 孙丽 · ")
    assert "等待您处理" not in closed["card"]["waiting"] and closed["outcome"] in closed["card"]["waiting"]
    assert [b["action"] for b in closed["card"]["buttons"]] == ["open"]  # the page is still one tap away


def test_wecom_card_has_two_callback_buttons_and_a_jump_to_the_request_page() -> None:
    card, closed = composed_card()

    body = task_card(card, card_id="oa_r1-1_1_0123abcd")

    assert [(b["type"], b.get("key"), b["text"]) for b in body["button_list"]] == [
        (0, "approve", "同意"),
        (0, "reject", "驳回"),
        (1, None, "更多操作"),
    ]
    assert body["button_list"][-1]["url"] == LINK and body["card_action"] == {"type": 1, "url": LINK}
    update = close_card_body(
        account="sunli", agent_id=1, response_code="rc", outcome=closed["outcome"], card=closed["card"]
    )
    decided = update["template_card"]
    assert decided["card_type"] == "text_notice" and decided["card_action"]["url"] == LINK
    assert "等待您处理" not in decided["sub_title_text"] and "已同意 · 孙丽" in decided["sub_title_text"]
    assert "button" not in update


def test_dingtalk_card_has_two_callback_buttons_and_a_link_button() -> None:
    card, closed = composed_card()

    params = open_card_params(card, task_id="r1-1", version=1)
    after = closed_card_params(closed["outcome"], closed["card"])

    assert (params["show_approve"], params["show_reject"], params["show_more"]) == ("true", "true", "true")
    assert params["more_label"] == "更多操作" and params["more_url"] == params["link"] == LINK
    assert (after["show_approve"], after["show_reject"], after["show_more"]) == ("false", "false", "true")
    assert "等待您处理" not in after["waiting"] and after["outcome"] in after["waiting"]


# -- links, end to end through the outbox ------------------------------------------------------
async def _app(org_db: Database, aiohttp_client: Any, clock: Any) -> tuple[Any, Any]:
    app = create_app(settings_for(org_db, console=True), clock=clock)
    return app, await aiohttp_client(app)


async def _outbox(db: Database) -> list[OutboxRow]:
    async with db.session() as s:
        return list((await s.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars().all())  # type: ignore[arg-type]


async def _opens(app: Any, url: str) -> tuple[str, str]:
    """Who a personal link signs in and which page it opens."""
    assert re.fullmatch(r"http://oabot\.test/m/l/[\w.-]+", url), url
    target = await app[LINKS].read(url.rsplit("/", 1)[1])
    return target.user, target.path


async def test_every_card_and_message_links_to_the_request_page_as_its_recipient(
    org_db: Database, aiohttp_client: Any, clock: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    workflow = app[WORKFLOW]
    [summary] = await workflow.list_requests()
    rid = summary.id
    task = (await workflow.pending_tasks("u_sun"))[0]
    await workflow.act(
        request_id=rid,
        action=Action(kind=ActionKind.APPROVE, actor="u_sun", task_id=task.task_id, version=task.version),
    )

    rows = await _outbox(org_db)
    assert {r.kind for r in rows} >= {"task_card", "card_closed", "progress"}
    for row in rows:
        payload = row.payload
        assert await _opens(app, payload.get("link", f"no link in a {row.kind}")) == (
            row.recipient,
            f"/m/r/{rid}",
        )
        if "card" in payload:
            assert payload["card"]["link"] == payload["link"]
            assert [b["url"] for b in payload["card"]["buttons"] if b.get("url")] == [payload["link"]]
    assert "/console/" not in str([r.payload for r in rows])


async def test_the_console_card_shows_more_actions_and_drops_waiting_once_decided(
    org_db: Database, aiohttp_client: Any, clock: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    await app[DISPATCHER].drain()
    html = await (await client.get("/console/u/u_sun")).text()
    assert re.search(r'data-action="approve".*data-action="reject".*data-action="open"', html, re.S)
    assert "更多操作" in html and "等待您处理" in html
    form = re.findall(r'<form method=post action="/console/u/u_sun/tap">(.*?)</form>', html, re.S)[0]
    fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', form))

    await client.post("/console/u/u_sun/tap", data=fields, allow_redirects=False)
    await app[DISPATCHER].drain()
    await app[DISPATCHER].drain()

    html = await (await client.get("/console/u/u_sun")).text()
    assert "等待您处理" not in html and "已同意 · 孙丽" in html and "更多操作" in html
    assert 'data-action="approve"' not in html


async def test_a_card_tap_on_a_step_needing_an_opinion_answers_with_a_link_to_the_page(
    org_db: Database, aiohttp_client: Any, clock: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await app[WORKFLOW].submit(template_key="doc_issue", initiator="u_wu", form=DOC)
    await app[DISPATCHER].drain()
    html = await (await client.get("/console/u/u_sun")).text()
    form = re.findall(r'<form method=post action="/console/u/u_sun/tap">(.*?)</form>', html, re.S)[0]
    fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', form))
    assert fields["action"] == "approve"

    await client.post("/console/u/u_sun/tap", data=fields, allow_redirects=False)
    await app[DISPATCHER].drain()

    async with org_db.session() as s:
        texts = [
            m.text
            for m in (
                await s.execute(select(ConsoleMessageRow).where(ConsoleMessageRow.user_id == "u_sun"))  # type: ignore[arg-type]
            ).scalars()
            if m.kind == "text"
        ]
    [answer] = [t for t in texts if "意见" in t]
    assert answer.startswith("「部门负责人核稿」需要填写意见")
    assert await _opens(app, answer.rsplit("：", 1)[1]) == ("u_sun", f"/m/r/{view.id}")
    assert (await app[WORKFLOW].get(view.id)).steps[0].status.value == "active"  # nothing changed


def test_a_plain_text_message_ends_with_the_recipients_own_link_once() -> None:
    def message(payload: dict[str, object]) -> OutgoingMessage:
        return OutgoingMessage(1, "result", "u_wu", "r1", None, payload)

    link = "https://oa.example.com/m/l/abc.def"
    assert (
        message({"text": "您的用章申请已通过", "link": link}).text()
        == f"您的用章申请已通过\n查看详情：{link}"
    )
    assert message({"text": f"已通过，查看：{link}", "link": link}).text() == f"已通过，查看：{link}"
    assert message({"text": "帮助"}).text() == "帮助"
