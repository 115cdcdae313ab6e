"""The notice rules, pure: audiences, receipt moves, approval before publishing,
confidentiality, recall, the access password and the default deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from notices import rules
from notices.errors import (
    AudienceInvalid,
    ConfidentialityRefused,
    IllegalReceiptMove,
    RecallRefused,
    RestrictedAudience,
)
from notices.model import (
    Audience,
    Confidentiality,
    DeptPick,
    Notice,
    NoticeKind,
    NoticeStatus,
    Receipt,
    ReceiptState,
    card_task_id,
    parse_card_task_id,
)
from tests.helpers import TZ
from tests.notice_org import notice_org

ORG = notice_org()
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
RULES = rules.DEFAULT_RULES


def resolve(**kw: object) -> set[str]:
    return set(rules.resolve_audience(ORG, Audience(**kw)))  # type: ignore[arg-type]


def test_a_department_with_its_sub_departments_reaches_their_members_and_no_one_who_left() -> None:
    assert resolve(departments=(DeptPick("marketing", with_sub=True),)) == {"u_sun", "u_wu", "u_feng"}
    assert resolve(departments=(DeptPick("marketing", with_sub=False),)) == {"u_sun", "u_wu"}
    assert "u_gone" not in resolve(everyone=True)


def test_everyone_levels_roles_people_and_a_mix() -> None:
    assert resolve(everyone=True) == {u.id for u in ORG.users.values() if u.active}
    assert resolve(levels=(7,)) == {"u_wang", "u_zhao", "u_qian", "u_sun", "u_zhou"}
    assert resolve(roles=("seal_keeper",)) == {"u_chen"}
    mixed = resolve(
        departments=(DeptPick("finance"),),
        levels=(10,),
        roles=("fleet_dispatcher",),
        people=("u_wu", "u_gone"),
    )
    assert mixed == {"u_qian", "u_zhang", "u_liu", "u_wu"}


def test_the_author_is_not_addressed_and_each_person_once_in_name_order() -> None:
    people = rules.resolve_audience(
        ORG, Audience(departments=(DeptPick("marketing"),), people=("u_sun",)), exclude=("u_sun",)
    )
    assert people == tuple(sorted(["u_wu", "u_feng"], key=lambda p: ORG.users[p].name))


@pytest.mark.parametrize(
    ("audience", "reason"),
    [
        (Audience(), "audience_invalid.empty"),
        (Audience(departments=(DeptPick("nowhere"),)), "audience_invalid.department"),
        (Audience(people=("u_nobody",)), "audience_invalid.person"),
        (Audience(people=("u_gone",)), "audience_invalid.nobody"),
    ],
)
def test_an_audience_that_reaches_nobody_is_refused(audience: Audience, reason: str) -> None:
    with pytest.raises(AudienceInvalid) as caught:
        rules.resolve_audience(ORG, audience)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("kind", "audience", "needed"),
    [
        (NoticeKind.NOTICE, Audience(departments=(DeptPick("engineering"),)), False),  # own department
        (NoticeKind.NOTICE, Audience(people=("u_wu", "u_li")), False),
        (NoticeKind.NOTICE, Audience(everyone=True), True),
        (NoticeKind.NOTICE, Audience(departments=(DeptPick("engineering"), DeptPick("finance"))), True),
        (NoticeKind.NOTICE, Audience(departments=(DeptPick("finance"),)), True),  # not the author's own
        (NoticeKind.NOTICE, Audience(levels=(3,)), True),
        (NoticeKind.ANNOUNCEMENT, Audience(people=("u_wu",)), True),
        (NoticeKind.MEETING, Audience(departments=(DeptPick("engineering"),), people=("u_li",)), False),
    ],
)
def test_which_notices_the_office_approves_first(kind: NoticeKind, audience: Audience, needed: bool) -> None:
    assert rules.needs_approval(ORG, author="u_zhou", kind=kind, audience=audience, rules=RULES) is needed


def test_direct_publishing_is_configurable() -> None:
    strict = rules.NoticeRules(direct_own_department=False, direct_named_people=False)
    own = Audience(departments=(DeptPick("engineering"),))
    assert rules.needs_approval(ORG, author="u_zhou", kind=NoticeKind.NOTICE, audience=own, rules=strict)
    named = Audience(people=("u_wu",))
    assert rules.needs_approval(ORG, author="u_zhou", kind=NoticeKind.NOTICE, audience=named, rules=strict)
    assert rules.needs_approval(
        ORG,
        author="u_zhou",
        kind=NoticeKind.NOTICE,
        audience=named,
        rules=rules.NoticeRules(approval_always=True),
    )


def test_confidential_and_above_are_refused_and_secret_is_configurable() -> None:
    people = Audience(people=("u_wu",))
    for level in (Confidentiality.CONFIDENTIAL, Confidentiality.TOP_SECRET):
        with pytest.raises(ConfidentialityRefused):
            rules.check_confidentiality(level, named_only=False, audience=people, rules=RULES)
    rules.check_confidentiality(Confidentiality.SECRET, named_only=False, audience=people, rules=RULES)
    with pytest.raises(ConfidentialityRefused):
        rules.check_confidentiality(
            Confidentiality.SECRET,
            named_only=False,
            audience=people,
            rules=rules.NoticeRules(refuse_from=Confidentiality.SECRET),
        )


def test_restricted_items_go_to_named_people_only() -> None:
    for audience in (
        Audience(everyone=True),
        Audience(departments=(DeptPick("finance"),)),
        Audience(levels=(3,)),
        Audience(roles=("gm",)),
        Audience(departments=(DeptPick("finance"),), people=("u_wu",)),
    ):
        with pytest.raises(RestrictedAudience):
            rules.check_confidentiality(
                Confidentiality.SECRET, named_only=False, audience=audience, rules=RULES
            )
        with pytest.raises(RestrictedAudience) as caught:
            rules.check_confidentiality(
                Confidentiality.INTERNAL, named_only=True, audience=audience, rules=RULES
            )
        assert caught.value.reason == "restricted_audience.named_only"
    rules.check_confidentiality(
        Confidentiality.INTERNAL, named_only=False, audience=Audience(everyone=True), rules=RULES
    )


def _receipt(state: ReceiptState, **kw: object) -> Receipt:
    return Receipt(notice_id="n20261123-0a1b2c3d", person="u_wu", state=state, card_no=1, **kw)  # type: ignore[arg-type]


def test_receipt_moves_follow_the_table() -> None:
    opened = rules.move_receipt(_receipt(ReceiptState.SENT), ReceiptState.OPENED, now=NOW, channel="wecom")
    assert (opened.state, opened.opened_at, opened.opened_via) == (ReceiptState.OPENED, NOW, "wecom")
    later = NOW + timedelta(hours=1)
    acked = rules.move_receipt(opened, ReceiptState.ACKNOWLEDGED, now=later, channel="web")
    assert (acked.state, acked.opened_at, acked.acknowledged_at) == (ReceiptState.ACKNOWLEDGED, NOW, later)
    tapped = rules.move_receipt(
        _receipt(ReceiptState.SENT), ReceiptState.ACKNOWLEDGED, now=NOW, channel="dingtalk"
    )
    assert tapped.opened_via == "dingtalk"  # a tap on the card counts as opening it
    assert (
        rules.move_receipt(opened, ReceiptState.DEFAULTED, now=later, channel="system").defaulted_at == later
    )
    for state, target, reason in [
        (ReceiptState.ACKNOWLEDGED, ReceiptState.ACKNOWLEDGED, "receipt_move.acknowledged"),
        (ReceiptState.DEFAULTED, ReceiptState.ACKNOWLEDGED, "receipt_move.defaulted"),
        (ReceiptState.ACKNOWLEDGED, ReceiptState.DEFAULTED, "receipt_move.acknowledged"),
        (ReceiptState.OPENED, ReceiptState.OPENED, "receipt_move"),
        (ReceiptState.OPENED, ReceiptState.SENT, "receipt_move"),
    ]:
        with pytest.raises(IllegalReceiptMove) as caught:
            rules.move_receipt(_receipt(state), target, now=NOW, channel="web")
        assert caught.value.reason == reason


def _notice() -> Notice:
    return Notice(
        id="n20261123-0a1b2c3d",
        kind=NoticeKind.NOTICE,
        title="t",
        body="",
        author="u_sun",
        audience=Audience(people=("u_wu", "u_feng")),
        recipients=("u_wu", "u_feng"),
        confidentiality=Confidentiality.INTERNAL,
        named_only=False,
        has_password=False,
        status=NoticeStatus.PUBLISHED,
        created_at=NOW,
    )


def test_recall_is_refused_once_someone_opened_it_naming_who_and_when() -> None:
    rules.check_recall(_notice(), [_receipt(ReceiptState.SENT), _receipt(ReceiptState.DEFAULTED)])
    first = NOW + timedelta(minutes=5)
    with pytest.raises(RecallRefused) as caught:
        rules.check_recall(
            _notice(),
            [
                _receipt(ReceiptState.OPENED, opened_at=first + timedelta(minutes=3)),
                Receipt("n", "u_feng", ReceiptState.ACKNOWLEDGED, 2, opened_at=first),
            ],
        )
    assert caught.value.context["openers"] == [("u_feng", first), ("u_wu", first + timedelta(minutes=3))]


def test_the_fifth_wrong_password_locks_for_fifteen_minutes() -> None:
    failures, locked = 0, None
    for _ in range(4):
        failures, locked = rules.after_wrong_password(failures, NOW, RULES)
        assert locked is None
    failures, locked = rules.after_wrong_password(failures, NOW, RULES)
    assert (failures, locked) == (0, NOW + timedelta(minutes=15))
    assert rules.is_locked(locked, NOW + timedelta(minutes=14)) and not rules.is_locked(
        locked, NOW + timedelta(minutes=15)
    )


def _working(d: date) -> bool:
    return d.weekday() < 5 and d != date(2026, 11, 30) or d == date(2026, 11, 28)


def test_the_default_deadline_is_the_end_of_the_next_working_day_on_the_calendar() -> None:
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=TZ)
    plain = rules.ack_deadline(friday, tz=TZ, is_working_day=lambda d: d.weekday() < 5, day_end=time(18, 0))
    assert plain == datetime(2026, 11, 30, 18, 0, tzinfo=TZ)  # over the weekend
    # Saturday a 调休 working day, Monday a holiday
    adjusted = rules.ack_deadline(friday, tz=TZ, is_working_day=_working, day_end=time(18, 0))
    assert adjusted == datetime(2026, 11, 28, 18, 0, tzinfo=TZ)
    two = rules.ack_deadline(friday, tz=TZ, is_working_day=_working, day_end=time(18, 0), working_days=2)
    assert two == datetime(2026, 12, 1, 18, 0, tzinfo=TZ)


def test_urging_waits_thirty_minutes() -> None:
    assert rules.urge_retry_at(None, NOW, RULES) is None
    assert rules.urge_retry_at(NOW, NOW + timedelta(minutes=10), RULES) == NOW + timedelta(minutes=30)
    assert rules.urge_retry_at(NOW, NOW + timedelta(minutes=30), RULES) is None


def test_card_task_ids_round_trip_and_fit_the_platforms() -> None:
    task_id = card_task_id("n20261123-0a1b2c3d", 12)
    assert task_id == "ntn20261123-0a1b2c3d-12"
    assert parse_card_task_id(task_id) == ("n20261123-0a1b2c3d", 12)
    assert parse_card_task_id("20261123-0a1b2c3d-1") is None  # an approval task id
    from bot.platforms.dingtalk.cards import out_track_id, parse_out_track_id
    from bot.platforms.wecom.cards import card_task_id as wecom_id
    from bot.platforms.wecom.cards import parse_card_task_id as wecom_parse

    key = wecom_parse(wecom_id(task_id, 1, "u_wu"))
    assert key is not None and (key.task_id, key.version) == (task_id, 1)
    assert parse_out_track_id(out_track_id(task_id, 1)) == (task_id, 1)
