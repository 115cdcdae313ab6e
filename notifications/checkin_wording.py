"""What field check-ins say: the reply to a check-in, the notices, reminders, the trip card and
the daily report, and the labels of the check-in codes.

The check-in core (`checkins.core`, `checkins.trust`) decides and returns check-ins, trips and
problems as codes and numbers; this module alone says them in Chinese. Pure: no I/O; times are
shown in the time zone passed in. It decides nothing about check-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from checkins.core import Checkin, CheckinKind, Problem, Trip, Verdict
from checkins.geo import format_distance
from checkins.trust import Source, TrustLevel

KIND_LABEL = {CheckinKind.ARRIVAL: "到达", CheckinKind.DEPARTURE: "离开", CheckinKind.FREE: "外勤"}
VERDICT_LABEL = {
    Verdict.ON_SITE: "在范围内",
    Verdict.OFF_SITE: "不在范围内",
    Verdict.NO_DESTINATION: "无目的地坐标",
}
SOURCE_LABEL = {
    Source.PLATFORM: "聊天定位",
    Source.BROWSER: "网页定位",
    Source.API: "接口上报",
    Source.FIX: "补卡",
}
TRUST_LEVEL_LABEL = {TrustLevel.HIGH: "可信", TrustLevel.MEDIUM: "存疑", TrustLevel.LOW: "可疑"}


def _hm(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M")


def checkin_reply(c: Checkin, tz: tzinfo, *, manager_told: bool = False) -> str:
    """The confirmation the person gets (trust reasons are for the manager, not the traveller)."""
    when = _hm(c.at, tz)
    if c.kind == CheckinKind.FREE:
        if c.verdict == Verdict.NO_DESTINATION or c.distance_m is None:
            return f"已记录外勤签到（{when}）。"
        state = "在范围内" if c.verdict == Verdict.ON_SITE else "不在其范围内"
        return f"已记录外勤签到（{when}）：距最近的签到点「{c.target_name}」{format_distance(c.distance_m)}，{state}。"
    head = f"已记录{KIND_LABEL[c.kind]}打卡（{when}）"
    if c.verdict == Verdict.NO_DESTINATION:
        name = f"「{c.target_name}」" if c.target_name else ""
        return f"{head}。目的地{name}没有坐标，只记录了您的位置。"
    assert c.distance_m is not None
    if c.verdict == Verdict.ON_SITE:
        return f"{head}：{c.target_name}，在范围内（距中心 {format_distance(c.distance_m)}）。"
    told = "，已告知您的直属领导" if manager_told else ""
    return f"{head}：不在目的地范围内，距「{c.target_name}」{format_distance(c.distance_m)}{told}。"


def off_site_notice(c: Checkin, traveller_name: str, tz: tzinfo) -> str:
    accuracy = f"，定位精度 ±{format_distance(c.accuracy_m)}" if c.accuracy_m is not None else ""
    return (
        f"【外勤提醒】{traveller_name} 于 {_hm(c.at, tz)} 的{KIND_LABEL[c.kind]}打卡不在目的地范围内："
        f"距「{c.target_name}」{format_distance(c.distance_m or 0)}{accuracy}，可信度 {c.trust.score}。"
    )


def reminder_text(trip: Trip, kind: CheckinKind, tz: tzinfo) -> str:
    anchor = trip.starts_at if kind == CheckinKind.ARRIVAL else trip.ends_at
    where = trip.destination.name or trip.title
    return f"【外勤提醒】您的行程「{where}」应于 {_hm(anchor, tz)} {KIND_LABEL[kind]}，还没有{KIND_LABEL[kind]}打卡。请点下方按钮打卡，或在聊天中发送位置。"


def escalation_text(trip: Trip, kind: CheckinKind, traveller_name: str, tz: tzinfo, grace: timedelta) -> str:
    anchor = trip.starts_at if kind == CheckinKind.ARRIVAL else trip.ends_at
    where = trip.destination.name or trip.title
    minutes = round((grace * 2).total_seconds() / 60)
    return (
        f"【外勤督办】{traveller_name} 的行程「{where}」应于 {_hm(anchor, tz)} {KIND_LABEL[kind]}，"
        f"已超过 {minutes} 分钟仍未{KIND_LABEL[kind]}打卡（已提醒本人）。"
    )


def trip_card_text(trip: Trip, tz: tzinfo) -> str:
    where = trip.destination.name or "—"
    return (
        f"【外勤行程】{trip.title or '外出'}\n目的地：{where}\n"
        f"时间：{_hm(trip.starts_at, tz)} 至 {_hm(trip.ends_at, tz)}\n到达和离开时请点按钮打卡，或在聊天中发送位置。"
    )


def problem_detail(p: Problem, tz: tzinfo) -> str:
    """One problem of a day: a missing check-in, or one made off site."""
    local = p.at.astimezone(tz) if p.at else None
    when = f"{local:%H:%M}" if local else "—"
    if p.problem == "missing":
        return f"未{KIND_LABEL[p.kind]}打卡（应于 {when} 前后，{p.place}）"
    where = f"距{p.place or '目的地'} {format_distance(p.distance_m or 0)}"
    return f"{KIND_LABEL[p.kind]}打卡不在范围内（{when}，{where}）"


def summary_text(day: date, problems: Sequence[Problem], names: Mapping[str, str], tz: tzinfo) -> str:
    lines = [f"【外勤日报】{day:%m月%d日} 团队外勤签到异常 {len(problems)} 项："]
    for i, p in enumerate(problems, 1):
        lines.append(f"{i}. {names.get(p.user, p.user)}：{problem_detail(p, tz)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class CardButton:
    label: str
    url: str
    style: str = ""


@dataclass(frozen=True)
class TripCard:
    text: str
    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[CardButton] = field(default_factory=list)


def trip_card(
    trip: Trip, tz: tzinfo, *, arrival_url: str, departure_url: str, heading: str | None = None
) -> TripCard:
    """The card sent to the traveller: the trip, and 到达打卡 / 离开打卡 buttons opening the check-in
    page. The text carries no address: every channel shows the buttons (WeCom and DingTalk as
    native card buttons, the console as links)."""
    text = heading or trip_card_text(trip, tz)
    buttons = [CardButton("到达打卡", arrival_url, "primary"), CardButton("离开打卡", departure_url)]
    return TripCard(
        text=text,
        title="外勤打卡",
        fields=[
            ("行程", trip.title or "外出"),
            ("目的地", trip.destination.name or "—"),
            ("开始", _hm(trip.starts_at, tz)),
            ("结束", _hm(trip.ends_at, tz)),
        ],
        buttons=buttons,
    )


def made_up_text(checkin: Checkin, trip: Trip | None, tz: tzinfo) -> str:
    """What the initiator is told when an approved 补卡 has been recorded."""
    where = f"（行程「{trip.destination.name or trip.title}」）" if trip else ""
    return f"补卡已批准：已补记 {checkin.at.astimezone(tz):%m-%d %H:%M} 的{KIND_LABEL[checkin.kind]}打卡{where}，标记为补卡。"


TRIP_CANCELLED = "已取消"
ENDED_HOW = {"withdrawn": "已撤销", "terminated": "已终止"}


def trip_cancelled_text(trip: Trip, tz: tzinfo, *, how: str, companions: Sequence[str] = ()) -> str:
    """What each traveller is told when the outing or vehicle dispatch behind their trip ends
    (withdrawn, revoked or terminated): the trip is cancelled and nobody needs to check in."""
    where = trip.destination.name or "—"
    others = f"\n同行人员（{'、'.join(companions)}）的行程也已一并取消。" if companions else ""
    return (
        f"【外勤行程已取消】{trip.title or '外出'}\n目的地：{where}\n"
        f"时间：{_hm(trip.starts_at, tz)} 至 {_hm(trip.ends_at, tz)}\n"
        f"申请{ENDED_HOW.get(how, '已结束')}，行程已取消，无需再打卡，也不会再收到打卡提醒。{others}"
    )


@dataclass(frozen=True)
class PersonCard:
    """One person on the managers' team page: their check-ins of the day and what is missing,
    under one state line (the worst news first)."""

    user: str
    name: str
    state: str
    state_class: str  # ok | bad | "" (for the page's colour)
    items: list[Mapping[str, object]]
    missing: list[Mapping[str, object]]


def _state(items: Sequence[Mapping[str, object]], missing: Sequence[Mapping[str, object]]) -> tuple[str, str]:
    if missing:
        return "有未打卡", "bad"
    if any(i.get("verdict") == Verdict.OFF_SITE.value for i in items):
        return "有不在范围内的打卡", "bad"
    kinds = {i.get("kind") for i in items}
    if CheckinKind.DEPARTURE.value in kinds:
        return "已离开", "ok"
    if CheckinKind.ARRIVAL.value in kinds:
        return "已到达", "ok"
    return "已外勤签到", "ok"


def team_cards(view: Mapping[str, Sequence[Mapping[str, object]]]) -> list[PersonCard]:
    """The day view (`CheckinService.day_view`) as one card per person, by name."""
    people: dict[str, tuple[str, list[Mapping[str, object]], list[Mapping[str, object]]]] = {}
    for item in view.get("items", ()):
        people.setdefault(str(item["user"]), (str(item["user_name"]), [], []))[1].append(item)
    for m in view.get("missing", ()):
        people.setdefault(str(m["user"]), (str(m["user_name"]), [], []))[2].append(m)
    cards = [
        PersonCard(user, name, *_state(items, missing), items=items, missing=missing)
        for user, (name, items, missing) in people.items()
    ]
    return sorted(cards, key=lambda c: (c.state_class != "bad", c.name))
