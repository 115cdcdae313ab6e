"""Template files: the built-ins load, and every mistake in a file is reported as FILE:LINE."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from approvals.conditions import evaluate
from approvals.definitions import (
    AnyOf,
    ApproverKind,
    ApproverSpec,
    Compare,
    CompareOp,
    FieldType,
    InitiatorPolicy,
    StepKind,
    StepMode,
    StepSpec,
    Template,
    WithdrawPolicy,
)
from approvals.template_loader import (
    TemplateError,
    builtin_templates_dir,
    load_template_file,
    load_templates,
    validate_dir,
)
from bot.cli import main
from notifications.conditions_wording import describe

DATA = Path(__file__).parent / "data" / "templates"
GOOD, BAD = DATA / "good", DATA / "bad"

# Keys other parts of oabot rely on: template key -> field keys.
STABLE_FIELDS = {
    "seal_use": {"department", "seal", "reason", "needed_at", "files", "copies", "take_out", "companions"},
    "vehicle_dispatch": {
        "department", "destination", "depart_at", "return_at", "self_drive", "overnight", "passengers", "reason",
    },
    "repair": {"item", "location", "urgency_level", "photos", "description"},
    "leave": {"leave_type", "period", "days", "reason", "delegate"},
    "outing": {"destination", "start", "end", "reason", "companions"},
    "expense": {"category", "amount", "items", "reason", "invoice_count"},
    "contract": {"title", "counterparty", "contract_type", "amount", "period", "files"},
    "doc_issue": {"title", "direction", "secrecy", "doc_urgency", "main_recipients", "files"},
    "doc_receive": {"title", "source_org", "received_at", "doc_number", "handling_department", "files"},
    "report_signoff": {"title", "summary", "files", "forward_department"},
    "checkin_fix": {"reason", "missed_at", "location", "kind"},
    "notice_publish": {"notice_id", "kind", "subject", "audience", "confidentiality", "office"},
}  # fmt: skip


@pytest.fixture(scope="module")
def builtins() -> dict[str, Template]:
    return load_templates([])


def step(template: Template, key: str) -> StepSpec:
    return next(s for s in template.steps if s.key == key)


def problems_of(tmp_path: Path, text: str, name: str = "t.yaml") -> list[str]:
    (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return [str(p).removeprefix(f"{tmp_path}/") for p in validate_dir(tmp_path)]


# -- built-ins ----------------------------------------------------------------------------------
def test_every_builtin_template_loads_without_problems(builtins: dict[str, Template]) -> None:
    assert validate_dir(builtin_templates_dir()) == []
    assert set(builtins) == set(STABLE_FIELDS)
    for key, template in builtins.items():
        assert {f.key for f in template.fields} >= STABLE_FIELDS[key], key
        assert template.steps, key
        assert Path(template.source or "").name == f"{key}.yaml"


def test_builtin_templates_dir_is_found_through_the_package() -> None:
    directory = builtin_templates_dir()
    assert directory.is_dir()
    assert (directory / "seal_use.yaml").is_file()


def test_seal_use_goes_up_the_chain_then_the_keeper_hands_over(builtins: dict[str, Template]) -> None:
    t = builtins["seal_use"]
    assert [s.approvers[0] for s in t.steps] == [
        ApproverSpec(ApproverKind.MANAGER, 1, line=t.steps[0].approvers[0].line),
        ApproverSpec(ApproverKind.ROLE, "seal_dept_head", line=t.steps[1].approvers[0].line),
        ApproverSpec(ApproverKind.ROLE, "deputy_gm", line=t.steps[2].approvers[0].line),
        ApproverSpec(ApproverKind.ROLE, "gm", line=t.steps[3].approvers[0].line),
        ApproverSpec(ApproverKind.ROLE, "seal_keeper", line=t.steps[4].approvers[0].line),
    ]
    keeper = t.steps[-1]
    assert keeper.kind == StepKind.HANDLE and keeper.positive_label == "已交付" and not keeper.rejectable
    assert all(s.rejectable for s in t.steps[:-1])
    assert [a.kind for a in t.cc] == [ApproverKind.INITIATOR]
    assert t.field("seal") is not None and t.field("seal").type == FieldType.SELECT  # type: ignore[union-attr]
    assert t.field("companions").type == FieldType.USERS  # type: ignore[union-attr]
    assert t.field("copies").integer and t.field("copies").min == 1  # type: ignore[union-attr]


def test_vehicle_dispatch_needs_leaders_only_for_self_drive_or_overnight(
    builtins: dict[str, Template],
) -> None:
    t = builtins["vehicle_dispatch"]
    assert [s.key for s in t.steps] == ["admin", "deputy_gm", "gm"]
    assert step(t, "admin").when is None
    for key in ("deputy_gm", "gm"):
        when = step(t, key).when
        assert when is not None
        assert describe(when) == "self_drive = 是 或 overnight = 是"
        assert not evaluate(when, {"self_drive": False, "overnight": False}, initiator_ctx={})
        assert evaluate(when, {"self_drive": True, "overnight": False}, initiator_ctx={})
        assert evaluate(when, {"self_drive": False, "overnight": True}, initiator_ctx={})
    assert t.field("overnight").default is False  # type: ignore[union-attr]
    assert [(a.kind, a.value) for a in t.on_approved] == [(ApproverKind.ROLE, "fleet_dispatcher")]


def test_repair_handler_falls_back_and_the_requester_confirms(builtins: dict[str, Template]) -> None:
    t = builtins["repair"]
    fix, confirm = step(t, "fix"), step(t, "confirm")
    assert fix.approvers[0].kind == ApproverKind.ROLE and fix.approvers[0].value == "repair_handler"
    assert (
        fix.approvers[0].fallback is not None and fix.approvers[0].fallback.value == "admin_service_manager"
    )
    assert (fix.kind, fix.positive_label) == (StepKind.HANDLE, "已修复")
    assert [a.kind for a in confirm.approvers] == [ApproverKind.INITIATOR]
    assert (confirm.kind, confirm.positive_label) == (StepKind.HANDLE, "确认完成")
    assert confirm.initiator_is_approver == InitiatorPolicy.KEEP
    assert t.field("urgency_level").options == ("一般", "紧急")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("template", "step_key", "below", "above"),
    [
        ("leave", "dept_head", {"days": 3}, {"days": 3.5}),
        ("leave", "deputy_gm", {"days": 7}, {"days": 8}),
        ("expense", "deputy_gm", {"amount": 5000.0}, {"amount": 5000.01}),
        ("expense", "gm", {"amount": 20000.0}, {"amount": 20000.01}),
        ("contract", "deputy_gm", {"amount": 100000.0}, {"amount": 100000.5}),
        ("doc_issue", "leader_review", {"direction": "下行"}, {"direction": "上行"}),
    ],
)
def test_thresholds_add_higher_approvers(
    builtins: dict[str, Template], template: str, step_key: str, below: dict, above: dict
) -> None:
    when = step(builtins[template], step_key).when
    assert when is not None
    assert not evaluate(when, below, initiator_ctx={})
    assert evaluate(when, above, initiator_ctx={})


def test_leave_tells_hr_and_can_be_revoked_after_approval(builtins: dict[str, Template]) -> None:
    t = builtins["leave"]
    assert [(a.kind, a.value) for a in t.cc] == [
        (ApproverKind.ROLE, "hr_manager"),
        (ApproverKind.INITIATOR, None),
    ]
    assert t.policies.withdraw == WithdrawPolicy.AFTER_APPROVAL  # 销假: an approved leave can be revoked
    assert [s.approvers[0].kind for s in t.steps] == [
        ApproverKind.MANAGER,
        ApproverKind.DEPT_HEAD,
        ApproverKind.ROLE,
    ]


def test_expense_pays_after_approval_as_its_own_step(builtins: dict[str, Template]) -> None:
    t = builtins["expense"]
    assert [s.key for s in t.steps] == ["manager", "finance", "deputy_gm", "gm", "pay"]
    assert (t.steps[-1].kind, t.steps[-1].positive_label) == (StepKind.HANDLE, "已付款")
    assert t.field("amount").type == FieldType.MONEY  # type: ignore[union-attr]


def test_doc_issue_follows_the_outgoing_document_rules(builtins: dict[str, Template]) -> None:
    t = builtins["doc_issue"]
    assert [s.key for s in t.steps] == [
        "review",
        "office_check",
        "leader_review",
        "sign",
        "register",
        "dispatch",
    ]
    review = step(t, "review")
    assert review.approvers == (
        ApproverSpec(ApproverKind.DEPT_HEAD_OTHER, "initiator", line=review.approvers[0].line),
    )
    assert review.initiator_is_approver == InitiatorPolicy.KEEP and review.when is None
    assert step(t, "office_check").approvers[0].value == "hr_admin"
    assert step(t, "sign").positive_label == "签发"
    assert (step(t, "register").kind, step(t, "register").positive_label) == (StepKind.HANDLE, "已登记")
    dispatch = step(t, "dispatch").approvers[0]
    assert (dispatch.value, dispatch.fallback.value if dispatch.fallback else None) == (
        "secretary",
        "doc_registrar",
    )
    assert t.field("secrecy").options == ("公开", "内部", "秘密")  # type: ignore[union-attr]
    assert t.field("direction").options == ("上行", "下行", "平行")  # type: ignore[union-attr]


def test_doc_receive_is_read_by_every_leader_in_turn(builtins: dict[str, Template]) -> None:
    t = builtins["doc_receive"]
    assert [s.key for s in t.steps] == ["register", "propose", "leaders_read", "forward", "handle"]
    read = step(t, "leaders_read")
    assert [(a.kind, a.value) for a in read.approvers] == [
        (ApproverKind.ROLE_ALL, "gm"),
        (ApproverKind.ROLE_ALL, "deputy_gm"),
    ]
    assert (read.mode, read.kind, read.positive_label) == (StepMode.SEQUENTIAL, StepKind.READ, "已阅")
    assert step(t, "propose").positive_label == "已拟办"
    assert step(t, "forward").positive_label == "已转办"
    handle = step(t, "handle")
    assert handle.approvers[0].value == "field:handling_department" and handle.positive_label == "已办结"


def test_report_signoff_ends_with_a_receipt_to_the_drafter(builtins: dict[str, Template]) -> None:
    t = builtins["report_signoff"]
    assert [s.key for s in t.steps] == ["dept_leader", "deputy_gm", "sign", "forward", "receipt"]
    assert step(t, "sign").positive_label == "签批"
    assert step(t, "forward").approvers[0].value == "field:forward_department"
    receipt = step(t, "receipt")
    assert (receipt.kind, receipt.positive_label) == (StepKind.READ, "已收到回执")
    assert receipt.initiator_is_approver == InitiatorPolicy.KEEP


# -- directories and overrides -----------------------------------------------------------------
def test_a_custom_directory_adds_templates_and_overrides_builtins_by_key() -> None:
    templates = load_templates([GOOD])
    assert templates["leave"].name == "请假申请（本公司）"
    assert templates["leave"].source == str(GOOD / "leave.yaml")
    assert "every_type" in templates and "seal_use" in templates
    assert len(templates) == len(STABLE_FIELDS) + 1


def test_loading_a_bad_directory_raises_with_every_problem() -> None:
    with pytest.raises(TemplateError) as caught:
        load_templates([GOOD, BAD])
    files = {Path(p.file).name for p in caught.value.problems}
    assert files == {"not_yaml.yaml", "several_problems.yaml"}
    assert len(caught.value.problems) == 9


def test_several_problems_in_one_file_are_all_reported_in_line_order() -> None:
    problems = [str(p).removeprefix(f"{BAD}/") for p in validate_dir(BAD / "several_problems.yaml")]
    assert problems == [
        "several_problems.yaml:4: fields.city.type: unknown field type 'txt' (allowed: text, textarea, number, "
        "money, date, datetime, daterange, select, multiselect, bool, user, users, department, list, site, location)",
        "several_problems.yaml:5: fields.days: min 5 is greater than max 1",
        "several_problems.yaml:6: fields.days: duplicate field key 'days' (first on line 5)",
        "several_problems.yaml:7: fields.class: a select field needs options",
        "several_problems.yaml:12: steps.boss.mode: unknown mode 'parallel' (allowed: sequential, all, any)",
        "several_problems.yaml:13: steps.boss.when: field 'budget' does not exist",
        "several_problems.yaml:14: steps.pay: missing 'approvers'",
        "several_problems.yaml:16: steps.pay: unknown key 'aprovers' (did you mean 'approvers'? allowed: key, name, "
        "approvers, mode, permission, kind, action_label, can_reject, time_limit_hours, when, no_approver, "
        "initiator_is_approver, deadlines, opinion_required)",
    ]


def test_load_template_file_raises_template_error() -> None:
    with pytest.raises(TemplateError) as caught:
        load_template_file(BAD / "not_yaml.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"{BAD}/not_yaml.yaml:3: not valid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence on line 2)"
    ]
    assert load_template_file(GOOD / "leave.yaml").key == "leave"


def test_two_files_with_the_same_key_in_one_directory(tmp_path: Path) -> None:
    body = "key: trip\nname: 出差\nsteps: [{key: a, name: A, approvers: [{manager: 1}]}]\n"
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yml").write_text(body, encoding="utf-8")
    assert [str(p) for p in validate_dir(tmp_path)] == [
        f"{tmp_path}/b.yml:1: template key 'trip' is already used in {tmp_path}/a.yaml"
    ]


def test_a_missing_directory_is_a_problem(tmp_path: Path) -> None:
    assert [str(p) for p in validate_dir(tmp_path / "nope")] == [f"{tmp_path}/nope: not a directory"]


# -- one mistake each ---------------------------------------------------------------------------
HEAD = """
key: trip
name: 出差
fields:
  - {key: city, label: 城市, type: text, required: true}
  - {key: days, label: 天数, type: number}
  - {key: own_car, label: 自驾, type: bool}
  - {key: level, label: 级别, type: select, options: [普通, 重要]}
  - {key: buddy, label: 同行人, type: user}
  - {key: dept, label: 部门, type: department}
steps:
"""


def with_step(*lines: str) -> str:
    return HEAD + "\n".join(lines) + "\n"


def with_when(when: str) -> str:
    """A one-step template whose step (on line 11) has `when: <when>` on line 14."""
    return with_step("  - key: a", "    name: A", "    approvers: [{manager: 1}]", f"    when: {when}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "key: trip\nname: 出差\ntitel: x\nsteps: [{key: a, name: A, approvers: [{manager: 1}]}]\n",
            [
                "t.yaml:3: template: unknown key 'titel' (did you mean 'title'? allowed: key, name, description, "
                "category, version, title, summary_fields, policies, fields, steps, cc, on_approved, deadlines, progress)"
            ],
            id="unknown top-level key",
        ),
        pytest.param(
            "- key: trip\n",
            ["t.yaml:1: template: expected a mapping, got a list"],
            id="not a mapping",
        ),
        pytest.param(
            "key: trip\nname: 出差\n",
            ["t.yaml:1: template: missing 'steps'"],
            id="missing steps",
        ),
        pytest.param(
            "key: trip\nname: 出差\nname: 又一个\nsteps: [{key: a, name: A, approvers: [{manager: 1}]}]\n",
            ["t.yaml:3: template: duplicate key 'name' (first on line 2)"],
            id="duplicate mapping key",
        ),
        pytest.param(
            "key: Trip-1\nname: 出差\nsteps: [{key: a, name: A, approvers: [{manager: 1}]}]\n",
            ["t.yaml:1: key: 'Trip-1' must be lower-case letters, digits and _ starting with a letter"],
            id="bad template key",
        ),
        pytest.param(
            HEAD.replace("type: text, required: true}", 'type: text, required: "yes"}')
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:4: fields.city.required: expected true or false, got text 'yes'"],
            id="wrong type",
        ),
        pytest.param(
            HEAD.replace("label: 天数", "lable: 天数") + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            [
                "t.yaml:5: fields.days: unknown key 'lable' (did you mean 'label'? allowed: key, label, type, "
                "required, min, max, integer, options, default, help, not_before, "
                "required_if, not_initiator, working_days_of, max_length)",
                "t.yaml:5: fields.days: missing 'label'",
            ],
            id="unknown field key",
        ),
        pytest.param(
            HEAD.replace("type: number}", "type: integer}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            [
                "t.yaml:5: fields.days.type: unknown field type 'integer' (allowed: text, textarea, number, money, "
                "date, datetime, daterange, select, multiselect, bool, user, users, department, list, site, location)"
            ],
            id="unknown field type",
        ),
        pytest.param(
            HEAD.replace("options: [普通, 重要]", "options: []")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:7: fields.level.options: the list of options is empty"],
            id="empty options",
        ),
        pytest.param(
            HEAD.replace(", options: [普通, 重要]", "")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:7: fields.level: a select field needs options"],
            id="select without options",
        ),
        pytest.param(
            HEAD.replace("type: number}", "type: number, min: 10, max: 2}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:5: fields.days: min 10 is greater than max 2"],
            id="min greater than max",
        ),
        pytest.param(
            HEAD.replace("type: bool}", "type: bool, default: 是}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            [
                "t.yaml:6: fields.own_car.default: text '是' does not fit a bool field (应为 是/否 (true/false))"
            ],
            id="default of the wrong type",
        ),
        pytest.param(
            HEAD.replace("options: [普通, 重要]}", "options: [普通, 重要], default: 特急}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            [
                "t.yaml:7: fields.level.default: text '特急' does not fit a select field (不在可选项中: 特急 (可选: 普通、重要))"
            ],
            id="default not an option",
        ),
        pytest.param(
            HEAD.replace("type: department}", "type: department, default: $initiator}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:9: fields.dept.default: '$initiator' does not fit a department field"],
            id="placeholder on the wrong type",
        ),
        pytest.param(
            HEAD.replace("type: text, required: true}", "type: text, integer: true}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:4: fields.city.integer: only a number field can be integer"],
            id="integer on text",
        ),
        pytest.param(
            with_step(
                "  - {key: a, name: A, approvers: [{manager: 1}]}",
                "  - {key: a, name: B, approvers: [{manager: 2}]}",
            ),
            ["t.yaml:12: steps.a: duplicate step key 'a' (first on line 11)"],
            id="duplicate step key",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{manager: 1}], mode: parallel}"),
            ["t.yaml:11: steps.a.mode: unknown mode 'parallel' (allowed: sequential, all, any)"],
            id="unknown mode",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{manager: 1}], kind: sign}"),
            ["t.yaml:11: steps.a.kind: unknown step kind 'sign' (allowed: approve, handle, read, notify)"],
            id="unknown step kind",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{manager: 1}], permission: admin}"),
            [
                "t.yaml:11: steps.a.permission: unknown permission 'admin' (allowed: approve, collaborate, notify)"
            ],
            id="unknown permission",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{boss: 1}]}"),
            [
                "t.yaml:11: steps.a.approvers[0]: unknown key 'boss' (allowed: user, role, role_all, manager, "
                "dept_head, dept_head_other, form_user, initiator, fallback)"
            ],
            id="unknown approver kind",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{role: gm, user: u_zhang}]}"),
            [
                "t.yaml:11: steps.a.approvers[0]: give exactly one of user, role, role_all, manager, dept_head, "
                "dept_head_other, form_user, initiator (got role, user)"
            ],
            id="two approver kinds",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{manager: 0}]}"),
            ["t.yaml:11: steps.a.approvers[0].manager: expected a whole number of levels, at least 1"],
            id="manager zero",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: []}"),
            ["t.yaml:11: steps.a.approvers: a step needs at least one approver"],
            id="no approvers",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{form_user: leader}]}"),
            ["t.yaml:11: steps.a.approvers[0].form_user: field 'leader' does not exist"],
            id="form_user on a missing field",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{form_user: city}]}"),
            [
                "t.yaml:11: steps.a.approvers[0].form_user: field 'city' is a text field, expected user or users"
            ],
            id="form_user on a text field",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{dept_head: 'field:office'}]}"),
            ["t.yaml:11: steps.a.approvers[0].dept_head: field 'office' does not exist"],
            id="dept_head on a missing field",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{dept_head: 'field:buddy'}]}"),
            ["t.yaml:11: steps.a.approvers[0].dept_head: field 'buddy' is a user field, expected department"],
            id="dept_head on a user field",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{role: x, fallback: {rol: y}}]}"),
            [
                "t.yaml:11: steps.a.approvers[0].fallback: unknown key 'rol' (did you mean 'role'? allowed: user, "
                "role, role_all, manager, dept_head, dept_head_other, form_user, initiator, fallback)"
            ],
            id="bad fallback",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{initiator: true}]}"),
            [
                "t.yaml:11: steps.a: an {initiator: true} step approves itself unless it has "
                "initiator_is_approver: keep"
            ],
            id="initiator step without keep",
        ),
        pytest.param(
            with_when("{field: budget, gt: 1}"),
            ["t.yaml:14: steps.a.when: field 'budget' does not exist"],
            id="condition on a missing field",
        ),
        pytest.param(
            with_when("{field: days, above: 3}"),
            [
                "t.yaml:14: steps.a.when: unknown key 'above' (allowed: field, initiator, eq, ne, gt, gte, lt, lte, "
                "in, not_in, contains, empty)"
            ],
            id="unknown operator",
        ),
        pytest.param(
            with_when("{field: days, gt: 3, lt: 9}"),
            [
                "t.yaml:14: steps.a.when: give exactly one operator: eq, ne, gt, gte, lt, lte, in, not_in, contains, "
                "empty (got gt, lt)"
            ],
            id="two operators",
        ),
        pytest.param(
            with_when("{field: own_car, gt: 1}"),
            ["t.yaml:14: steps.a.when: operator 'gt' does not apply to the bool field 'own_car'"],
            id="operator that does not fit the field",
        ),
        pytest.param(
            with_when("{field: own_car, eq: 是}"),
            ["t.yaml:14: steps.a.when: eq: text '是' is not true or false ('own_car' is a bool field)"],
            id="value that cannot match a bool",
        ),
        pytest.param(
            with_when("{field: level, in: [普通, 特急]}"),
            ["t.yaml:14: steps.a.when: in: '特急' is not one of the options of 'level' (普通, 重要)"],
            id="value that is not an option",
        ),
        pytest.param(
            with_when("{field: days, in: 3}"),
            ["t.yaml:14: steps.a.when: in: expected a list of values, got the number 3"],
            id="in without a list",
        ),
        pytest.param(
            with_step(
                "  - key: a",
                "    name: A",
                "    approvers: [{manager: 1}]",
                "    when:",
                "      any:",
                "        - {field: days, gt: 3}",
                "        - not: {field: nope, empty: true}",
            ),
            ["t.yaml:17: steps.a.when.any[1].not: field 'nope' does not exist"],
            id="nested condition",
        ),
        pytest.param(
            with_when("{all: []}"),
            ["t.yaml:14: steps.a.when.all: the list of conditions is empty"],
            id="empty group",
        ),
        pytest.param(
            with_when("{initiator: rank, eq: 3}"),
            [
                "t.yaml:14: steps.a.when: unknown initiator attribute 'rank' (allowed: is_department_head, "
                "is_sole_department_head, department, level, roles)"
            ],
            id="unknown initiator attribute",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{manager: 1}], time_limit_hours: 0}"),
            ["t.yaml:11: steps.a.time_limit_hours: expected more than 0"],
            id="time limit zero",
        ),
        pytest.param(
            "key: trip\nname: 出差\npolicies: {no_approver: admin, withdraw: sometimes}\n"
            "steps: [{key: a, name: A, approvers: [{manager: 1}]}]\n",
            [
                "t.yaml:3: policies.withdraw: unknown withdraw policy 'sometimes' (allowed: any_time, "
                "before_first_decision, after_approval, never)",
                "t.yaml:3: policies.no_approver: 'admin' needs policies.admin_role",
            ],
            id="policies",
        ),
        pytest.param(
            HEAD.replace("steps:\n", "title: '{city} {budget}'\nsummary_fields: [city, cost]\nsteps:\n")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            [
                "t.yaml:10: title: field 'budget' does not exist",
                "t.yaml:11: summary_fields: field 'cost' does not exist",
            ],
            id="title and summary fields",
        ),
        pytest.param(
            HEAD.replace("type: user}", "type: datetime, not_before: when}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:8: fields.buddy.not_before: field 'when' does not exist"],
            id="not_before on a missing field",
        ),
        pytest.param(
            "key: trip\nname: [出差\n",
            [
                "t.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>' "
                "(while parsing a flow sequence on line 2)"
            ],
            id="not YAML",
        ),
        pytest.param(
            HEAD.replace("type: bool}", "type: bool, min: 1}")
            + "  - {key: a, name: A, approvers: [{manager: 1}]}\n",
            ["t.yaml:6: fields.own_car.min: a bool field has no min"],
            id="a key the field's type does not have",
        ),
        pytest.param(
            with_step("  - {key: a, name: A, approvers: [{role: x, fallback: {manager: 0}}]}"),
            [
                "t.yaml:11: steps.a.approvers[0].fallback.manager: expected a whole number of levels, at least 1"
            ],
            id="a wrong fallback approver",
        ),
        pytest.param(
            with_step(
                "  - key: a",
                "    name: A",
                "    approvers:",
                "      - role: x",
                "      - manager: 1",
                "        dept_head: initiator",
            ),
            [
                "t.yaml:15: steps.a.approvers[1]: give exactly one of user, role, role_all, manager, dept_head, "
                "dept_head_other, form_user, initiator (got manager, dept_head)"
            ],
            id="block style: the line of the approver",
        ),
        pytest.param(
            with_when("{any: [{field: days, gt: 3}], not: {field: days, lt: 1}}"),
            ["t.yaml:14: steps.a.when: give exactly one of all, any, not"],
            id="two groups in one condition",
        ),
        pytest.param("", ["t.yaml:1: the file is empty; expected a template mapping"], id="empty file"),
    ],
)
def test_each_mistake_is_reported_with_file_and_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text) == expected


def test_a_file_that_is_not_text_is_reported(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_bytes(b"key: trip\nname: \xff\xfe\n")
    assert [str(p).removeprefix(f"{tmp_path}/") for p in validate_dir(tmp_path)] == [
        "t.yaml:2: not a YAML file: it is not UTF-8 text"
    ]


def test_conditions_and_lines_are_kept_on_the_definitions(tmp_path: Path) -> None:
    text = with_step(
        "  - key: a",
        "    name: A",
        "    approvers: [{manager: 1}]",
        "    when: {any: [{field: days, gte: 3}, {initiator: is_department_head, eq: true}]}",
    )
    (tmp_path / "t.yaml").write_text(text.lstrip("\n"), encoding="utf-8")
    t = load_template_file(tmp_path / "t.yaml")
    assert t.steps[0].when == AnyOf(
        (
            Compare(CompareOp.GTE, 3, field="days", line=14),
            Compare(CompareOp.EQ, True, initiator="is_department_head", line=14),
        )
    )
    assert t.steps[0].line == 11 and t.field("days").line == 5  # type: ignore[union-attr]


# -- the command line ---------------------------------------------------------------------------
def test_cli_validate_prints_file_line_message_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "validate", str(BAD)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9
    assert out[0].startswith(f"{BAD}/not_yaml.yaml:3: not valid YAML")
    assert f"{BAD}/several_problems.yaml:13: steps.boss.when: field 'budget' does not exist" in out


def test_cli_validate_counts_builtins_and_the_configured_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("OABOT_TEMPLATES_DIR", raising=False)
    assert main(["templates", "validate"]) == 0
    assert capsys.readouterr().out == f"{len(STABLE_FIELDS)} templates OK\n"
    monkeypatch.setenv("OABOT_TEMPLATES_DIR", str(GOOD))
    assert main(["templates", "validate"]) == 0
    assert capsys.readouterr().out == f"{len(STABLE_FIELDS) + 1} templates OK\n"
    assert main(["templates", "validate", str(GOOD / "leave.yaml")]) == 0
    assert capsys.readouterr().out == "1 templates OK\n"


def test_cli_list_shows_key_name_and_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OABOT_TEMPLATES_DIR", raising=False)
    assert main(["templates", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(STABLE_FIELDS)
    assert (
        "vehicle_dispatch\t派车申请\t行政服务部经理审批 → 分管副总审批 (当 自驾 = 是 或 过夜 = 是) → "
        "总经理审批 (当 自驾 = 是 或 过夜 = 是)"
    ) in lines
    assert main(["templates", "list", str(BAD)]) == 2
