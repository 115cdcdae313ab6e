"""What meeting RSVPs 回执, meeting reminders and poll results say, in Chinese, and the labels of
their codes (`attend`, `working_hours` are never shown).

`notices.meetings` and `notices.polls` decide and return codes; this module alone says them in
words. Pure: no I/O; times are shown in the time zone passed in. It decides nothing.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from notices.model import OffsetUnit, RemindOffset, RsvpAnswer
from notices.polls import PollResults

RSVP_LABEL = {
    RsvpAnswer.ATTEND: "参加",
    RsvpAnswer.DECLINE: "不参加",
    RsvpAnswer.LEAVE: "请假",
    RsvpAnswer.DELEGATE: "委派他人参加",
}
UNANSWERED = "未回执"
WEEKDAYS = "一二三四五六日"


def when(moment: datetime, tz: tzinfo) -> str:
    """`11-25（周三）14:00`."""
    local = moment.astimezone(tz)
    return f"{local:%m-%d}（周{WEEKDAYS[local.weekday()]}）{local:%H:%M}"


def lead_time(r: RemindOffset) -> str:
    """`1 个工作小时`, `15 分钟`."""
    return f"{r.amount} 个工作小时" if r.unit == OffsetUnit.WORKING_HOURS else f"{r.amount} 分钟"


def rsvp_recorded(answer: RsvpAnswer, *, delegate_name: str | None = None) -> str:
    """The one-line confirmation after an RSVP."""
    if answer == RsvpAnswer.DELEGATE and delegate_name:
        return f"已回执：委派 {delegate_name} 参加，已通知对方"
    return f"已回执：{RSVP_LABEL[answer]}"


def _place(place: str | None) -> str:
    """The 地点 line; None (a restricted or password-protected meeting): left out of chat."""
    return "" if place is None else f"地点：{place or '（未填写）'}\n"


def delegate_told(
    *, by_name: str, title: str, starts_at: datetime, place: str | None, tz: tzinfo, link: str
) -> str:
    """What a delegate is told when someone hands a meeting to them."""
    return f"{by_name} 委派您参加会议「{title}」\n时间：{when(starts_at, tz)}\n{_place(place)}请回执：{link}"


def reminder(*, title: str, starts_at: datetime, place: str | None, tz: tzinfo, link: str) -> str:
    """A reminder before the meeting."""
    return f"会议提醒：「{title}」将于 {when(starts_at, tz)} 开始\n{_place(place)}详情：{link}"


def rsvp_page_needed(link: str) -> str:
    """A card's 不参加 tap: a reason is needed, given on the 回执 page."""
    return f"不参加需要填写原因，请在回执页面填写：{link}"


def percent(value: float) -> str:
    """`50%`, `33.3%`."""
    return f"{value:.1f}".removesuffix(".0") + "%"


def poll_closed(*, title: str, results: PollResults, invited: int, link: str) -> str:
    """What the author of a poll is told when it closes: the final counts and the results page."""
    lines = [f"调查「{title}」已截止，共 {results.voters} 人作答（发送 {invited} 人）。"]
    many = len(results.questions) > 1
    for n, q in enumerate(results.questions, start=1):
        counts = "、".join(f"{o.label} {o.count} 票（{percent(o.percent)}）" for o in q.options)
        if q.texts:
            counts = f"{counts}；文字意见 {len(q.texts)} 条" if counts else f"文字意见 {len(q.texts)} 条"
        lines.append(f"{f'{n}. ' if many else ''}{q.text}：{counts or '无人作答'}")
    lines.append(f"查看结果：{link}")
    return "\n".join(lines)
