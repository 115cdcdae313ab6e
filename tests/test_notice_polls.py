"""Polls 调查, pure rules and the chart: a ballot fits its poll or is refused, a changed vote
counts once, anonymous polls never say who chose what, and the chart escapes what it draws."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from notices.model import Poll, Question
from notices.polls import (
    TEXT_MAX,
    Answer,
    PollAnonymous,
    PollClosed,
    PollRefused,
    Vote,
    check_ballot,
    choices_by_person,
    tally,
)
from notifications.messages import message_for
from reports.poll_chart import ChartBar, poll_bar_chart, wrap

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


Q = Question
P = Poll


LUNCH = Q("q1", "午餐地点", False, ("食堂", "外卖", "自带"))
TOPICS = Q("q2", "培训主题", True, ("安全", "财务", "公文写作"), free_text=True)
POLL = P((LUNCH, TOPICS), closes_at=NOW + timedelta(days=1))


def _vote(person: str, qid: str, choices: tuple[int, ...], minutes: int = 0, text: str | None = None) -> Vote:
    return Vote(person, qid, choices, text, NOW + timedelta(minutes=minutes))


def test_a_fitting_ballot_is_normalised() -> None:
    ballot = {"q1": Answer((1,)), "q2": Answer((2, 0), "  希望有案例  ")}
    checked = check_ballot(POLL, ballot, now=NOW)
    assert checked["q2"] == Answer((0, 2), "希望有案例")


@pytest.mark.parametrize(
    ("ballot", "reason"),
    [
        ({"q1": Answer((0, 1)), "q2": Answer((0,))}, "poll_refused.single_choice"),
        ({"q1": Answer((3,)), "q2": Answer((0,))}, "poll_refused.unknown_option"),
        ({"q1": Answer((-1,)), "q2": Answer((0,))}, "poll_refused.unknown_option"),
        ({"q1": Answer((0,), "我想说"), "q2": Answer((0,))}, "poll_refused.no_free_text"),
        ({"q1": Answer((0,)), "q2": Answer((), "x" * (TEXT_MAX + 1))}, "poll_refused.text_too_long"),
        ({"q1": Answer((0,))}, "poll_refused.unanswered"),
        ({"q1": Answer(()), "q2": Answer((0,))}, "poll_refused.unanswered"),
        ({"q1": Answer((0,)), "q2": Answer((0, 0))}, "poll_refused.repeated_option"),
        ({"q1": Answer((0,)), "q2": Answer((0,)), "q9": Answer((0,))}, "poll_refused.unknown_question"),
    ],
)
def test_a_ballot_that_does_not_fit_is_refused_in_chinese(ballot: dict[str, Answer], reason: str) -> None:
    with pytest.raises(PollRefused) as info:
        check_ballot(POLL, ballot, now=NOW)
    assert info.value.reason == reason
    words = message_for(info.value)
    assert words != "操作未能完成" and not any(c.isascii() and c.isalpha() for c in words.replace("q9", ""))


def test_no_ballot_after_the_closing_time() -> None:
    with pytest.raises(PollClosed) as info:
        check_ballot(POLL, {"q1": Answer((0,)), "q2": Answer((0,))}, now=NOW + timedelta(days=1))
    assert "已截止" in message_for(info.value)


def test_a_changed_vote_counts_once_and_the_last_one_wins() -> None:
    votes = [
        _vote("u_a", "q1", (0,), 0),
        _vote("u_b", "q1", (0,), 1),
        _vote("u_c", "q1", (1,), 2),
        _vote("u_a", "q1", (2,), 3),  # u_a changes 食堂 -> 自带
        _vote("u_a", "q2", (0, 1), 3),
        _vote("u_b", "q2", (1,), 4, "多讲报销"),
    ]
    results = tally(POLL, votes)
    lunch, topics = results.questions
    assert results.voters == 3
    assert lunch.voters == 3
    assert [(o.label, o.count) for o in lunch.options] == [("食堂", 1), ("外卖", 1), ("自带", 1)]
    assert [o.percent for o in lunch.options] == [33.3, 33.3, 33.3]
    assert [(o.count, o.percent) for o in topics.options] == [(1, 50.0), (2, 100.0), (0, 0.0)]
    assert topics.texts == ("多讲报销",)


def test_named_polls_say_who_chose_what() -> None:
    votes = [_vote("u_a", "q1", (0,), 0), _vote("u_a", "q1", (1,), 5), _vote("u_b", "q2", (0, 2), 1, "好")]
    chosen = choices_by_person(POLL, votes)
    assert [(c.person, c.question_id, c.labels, c.text) for c in chosen] == [
        ("u_a", "q1", ("外卖",), None),
        ("u_b", "q2", ("安全", "公文写作"), "好"),
    ]


def test_anonymous_polls_never_say_who_chose_what() -> None:
    anonymous = P(POLL.questions, anonymous=True)
    with pytest.raises(PollAnonymous):
        choices_by_person(anonymous, [_vote("u_a", "q1", (0,))])
    assert tally(anonymous, [_vote("u_a", "q1", (0,))]).questions[0].options[0].count == 1


def test_chart_shows_counts_and_percentages_and_escapes_labels() -> None:
    svg = poll_bar_chart(
        "午餐<地点>",
        [ChartBar("<script>alert(1)</script>", 2, 66.7), ChartBar("外卖 & 快餐", 1, 33.3)],
        voters=3,
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "外卖 &amp; 快餐" in svg
    assert "2 票 66.7%" in svg and "1 票 33.3%" in svg and "共 3 人作答" in svg
    assert 'viewBox="0 0 360 ' in svg


def test_long_labels_wrap_to_two_lines() -> None:
    lines = wrap("关于二〇二七年度全体员工安全生产培训的时间安排和地点选择以及交通方式的意见征集", 200)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert wrap("食堂", 300) == ["食堂"]


def test_an_anonymous_polls_free_texts_do_not_follow_the_order_of_voting() -> None:
    """The author's trail says who voted when: in voting order, the free texts of an anonymous
    poll would name their writers. They are listed in an order of their own."""
    anonymous = P((TOPICS,), anonymous=True)
    votes = [
        _vote("u_wu", "q2", (0,), minutes=1, text="乙：多讲案例"),
        _vote("u_chen", "q2", (1,), minutes=2, text="甲：时间太长"),
        _vote("u_sun", "q2", (2,), minutes=3, text="丙：无"),
    ]
    shown = tally(anonymous, votes).questions[0].texts
    assert sorted(shown) == sorted(v.text for v in votes if v.text)
    # the same texts written in another order of voting are listed the same way
    later_first = [replace(v, at=NOW + timedelta(minutes=10 - i)) for i, v in enumerate(votes)]
    assert tally(anonymous, later_first).questions[0].texts == shown
