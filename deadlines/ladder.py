"""The reminder ladder of a task: which rungs it gets, when each fires, and what a fired rung says.

A task that becomes pending gets a due time (its step's limit in working hours, capped by the
request's urgency) and, from it, a few rungs:

- remind 催办: a reminder to the assignee before the due time (default at half the time);
- due: at the due time a reminder to the assignee and a supervision ping 督办 to the
  assignee's manager;
- escalate: later, the next manager up, one level higher per rung;
- auto (off by default): an automatic decision (approve, transfer to the manager, reject).

Rung times are *points* on the task's clock, so one number works for every step length:
a point p <= 1 is that fraction of the working time between the task's activation and its due
time (0.5 = half the step time, 1 = the due time); a point p > 1 is the due time plus (p - 1)
times the step's limit in working hours (2 = one more step limit after the due time).

Quiet hours: outside working time a rung waits for the next working start, except on 紧急
requests. A rung at the very end of a working period (12:00, 18:00, where working-time
arithmetic puts deadlines) still counts as inside it.

Templates override the defaults with a `deadlines:` mapping, at template level and per step
(the step wins, key by key):

    deadlines:
      remind: 0.5            # a point, or false to send no early reminder
      supervise: 1           # a point, or false
      escalate: [2, 3]       # one point per manager level above the direct manager, or false
      auto: {action: approve, at: 3, reason: 超时自动通过}   # approve | transfer | reject, or false
      quiet_hours: true      # false: rungs fire at any hour

Pure: no I/O and no clock; every instant and the calendar come in as arguments. A fired rung's
trail events are written by the engine (`approvals.engine.system_note`) and its texts by
`notifications.wording`; nothing here appends to a trail or words a message itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from approvals.definitions import Template
from approvals.engine import SystemNote, may_take_over, system_note
from approvals.model import Request, Task, TrailEvent, Urgency
from notifications import wording
from notifications.compose import supervise_card, task_card
from notifications.wording import (
    SUPERVISE_CARD_TITLE,
    URGENCY_LABEL,
    Chase,
    chase_text,
    lateness,
    office_escalation_text,
)
from org.model import Org

# The very end of a working period still counts as working time for pings (see the docstring).
_PERIOD_END_GRACE = timedelta(microseconds=1)


class WorkingTime(Protocol):
    """What the ladder needs of a calendar (`deadlines.calendar.WorkingCalendar` has it)."""

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime: ...

    def working_time_between(self, a: datetime, b: datetime) -> timedelta: ...

    def next_working_start(self, at: datetime) -> datetime: ...

    def is_working_time(self, at: datetime) -> bool: ...


class RungKind(StrEnum):
    REMIND = "remind"  # 催办 to the assignee before the due time
    DUE = "due"  # at the due time: reminder to the assignee + 督办 to the manager
    ESCALATE = "escalate"  # the next manager up
    AUTO = "auto"  # an automatic decision


class AutoActionKind(StrEnum):
    APPROVE = "approve"
    TRANSFER = "transfer"  # to the assignee's manager
    REJECT = "reject"


@dataclass(frozen=True)
class AutoAction:
    action: AutoActionKind
    at: float
    reason: str | None = None


@dataclass(frozen=True)
class Ladder:
    remind: float | None = 0.5
    supervise: float | None = 1.0
    escalate: tuple[float, ...] = (2.0,)
    auto: AutoAction | None = None
    quiet_hours: bool = True


DEFAULT_LADDER = Ladder()


class LadderConfigError(ValueError):
    """A template's `deadlines` mapping is wrong; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# -- configuration ----------------------------------------------------------------------------
def _off(value: Any) -> bool:
    """`false` and `null` switch a rung off."""
    return value is None or value is False


def _point(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise PydanticCustomError(
        "ladder_point", "expected a positive number (a point of the ladder), got {got}", {"got": repr(value)}
    )


def _optional_point(value: Any) -> float | None:
    return None if _off(value) else _point(value)


def _points(value: Any) -> Any:
    """`escalate` takes one point, a list of points, or false for none."""
    return [] if _off(value) else value if isinstance(value, list) else [value]


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise PydanticCustomError("ladder_bool", "expected true or false, got {got}", {"got": repr(value)})


def _action(value: Any) -> AutoActionKind:
    try:
        return AutoActionKind(str(value))
    except ValueError:
        raise PydanticCustomError(
            "ladder_action", "expected one of approve, transfer, reject, got {got}", {"got": repr(value)}
        ) from None


def _reason(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise PydanticCustomError("ladder_text", "expected text, got {got}", {"got": repr(value)})


Point = Annotated[float, BeforeValidator(_point)]


class _AutoOverride(BaseModel):
    """`auto: {action: approve|transfer|reject, at: POINT, reason: text}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A missing action reads as `None`, which `_action` refuses with the list of actions.
    action: Annotated[AutoActionKind, BeforeValidator(_action)] = Field(None, validate_default=True)
    at: Point = Field(description="the point at which to act, e.g. 3")
    reason: Annotated[str | None, BeforeValidator(_reason)] = None

    def to_action(self) -> AutoAction:
        return AutoAction(action=self.action, at=self.at, reason=self.reason)


def _auto(value: Any) -> Any:
    if _off(value):
        return None
    if isinstance(value, Mapping):
        return value
    raise PydanticCustomError(
        "ladder_auto",
        "expected {action: approve|transfer|reject, at: POINT} or false, got {got}",
        {"got": repr(value)},
    )


class LadderOverrides(BaseModel):
    """One `deadlines:` mapping (a template's or a step's); only the keys it sets override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    remind: Annotated[float | None, BeforeValidator(_optional_point)] = None
    supervise: Annotated[float | None, BeforeValidator(_optional_point)] = None
    escalate: Annotated[tuple[Point, ...], BeforeValidator(_points)] = ()
    auto: Annotated[_AutoOverride | None, BeforeValidator(_auto)] = None
    quiet_hours: Annotated[bool, BeforeValidator(_switch)] = True

    def values(self) -> dict[str, Any]:
        """The keys this mapping sets, as `Ladder` field values."""
        values = {key: getattr(self, key) for key in self.model_fields_set}
        if self.auto is not None:
            values["auto"] = self.auto.to_action()
        return values


LADDER_KEYS = tuple(LadderOverrides.model_fields)


def _problem(error: ErrorDetails, where: str) -> str:
    """One pydantic error as `where.key: message`; list indices are left out of the name."""
    path = "".join(f".{part}" for part in error["loc"] if isinstance(part, str))
    if error["type"] == "extra_forbidden":
        allowed = LADDER_KEYS if len(error["loc"]) == 1 else tuple(_AutoOverride.model_fields)
        return f"{where}{path}: unknown key; allowed: {', '.join(allowed)}"
    if error["type"] == "missing":
        description = _AutoOverride.model_fields[str(error["loc"][-1])].description
        return f"{where}{path}: required ({description})"
    if error["type"] == "model_type":
        return f"{where}{path}: expected a mapping, got {error['input']!r}"
    return f"{where}{path}: {error['msg']}"


def _overrides(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    """The keys one `deadlines` mapping sets, as Ladder field values; problems are appended."""
    try:
        return LadderOverrides.model_validate(raw).values()
    except ValidationError as exc:
        # Unknown keys first: a misspelt key is the likeliest cause of what follows.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems.extend(_problem(e, where) for e in errors)
        return {}


def ladder_for(template: Template, step_key: str | None = None) -> Ladder:
    """The ladder of a step: the defaults, then the template's `deadlines`, then the step's."""
    problems: list[str] = []
    values = _overrides(template.deadlines, f"template {template.key}: deadlines", problems)
    spec = next((s for s in template.steps if s.key == step_key), None)
    if spec is not None:
        values.update(
            _overrides(spec.deadlines, f"template {template.key}: steps.{spec.key}.deadlines", problems)
        )
    if problems:
        raise LadderConfigError(problems)
    return replace(DEFAULT_LADDER, **values)


def template_problems(template: Template) -> list[str]:
    """Every problem in a template's `deadlines` mappings (empty when they are fine)."""
    problems: list[str] = []
    _overrides(template.deadlines, f"template {template.key}: deadlines", problems)
    for spec in template.steps:
        _overrides(spec.deadlines, f"template {template.key}: steps.{spec.key}.deadlines", problems)
    return problems


# -- planning ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedRung:
    kind: RungKind
    at: datetime
    point: float
    level: int = 0  # manager level: 1 = direct manager (due), 2 = the one above (first escalation)...
    action: AutoActionKind | None = None
    reason: str | None = None
    quiet: bool = True  # waits for working time (re-checked when it fires)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"point": self.point, "level": self.level, "quiet": self.quiet}
        if self.action is not None:
            data["action"] = self.action.value
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_data(cls, kind: str, at: datetime, data: Mapping[str, Any]) -> PlannedRung:
        action = data.get("action")
        return cls(
            kind=RungKind(kind),
            at=at,
            point=float(data.get("point", 0)),
            level=int(data.get("level", 0)),
            action=AutoActionKind(action) if action else None,
            reason=data.get("reason"),
            quiet=bool(data.get("quiet", True)),
        )


def in_quiet_hours(calendar: WorkingTime, at: datetime) -> bool:
    """Whether a ping at `at` would be outside working time (a period's last instant is inside)."""
    return not (calendar.is_working_time(at) or calendar.is_working_time(at - _PERIOD_END_GRACE))


def after_quiet_hours(calendar: WorkingTime, at: datetime) -> datetime:
    """`at` itself inside working time, else the next working start."""
    return at if not in_quiet_hours(calendar, at) else calendar.next_working_start(at)


def point_time(
    point: float, *, activated_at: datetime, due_at: datetime, step_limit: timedelta, calendar: WorkingTime
) -> datetime:
    """The instant of a ladder point (see the module docstring)."""
    if point == 1:
        return due_at
    if point < 1:
        window = calendar.working_time_between(activated_at, due_at)
        if window > timedelta(0):
            return calendar.add_working_time(activated_at, window * point)
        # No working time in the window (an urgent request sent at night): real time instead.
        return activated_at + (due_at - activated_at) * point
    return calendar.add_working_time(due_at, step_limit * (point - 1))


def plan_rungs(
    ladder: Ladder,
    *,
    activated_at: datetime,
    due_at: datetime,
    step_limit: timedelta,
    urgency: Urgency,
    calendar: WorkingTime,
) -> list[PlannedRung]:
    """The rungs of one task, in time order. Reminders that would come after the due time, or
    not after the activation, are dropped; the others never fire before the activation."""
    quiet = ladder.quiet_hours and urgency != Urgency.URGENT
    wanted: list[tuple[RungKind, float, int, AutoAction | None]] = []
    if ladder.remind is not None:
        wanted.append((RungKind.REMIND, ladder.remind, 0, None))
    if ladder.supervise is not None:
        wanted.append((RungKind.DUE, ladder.supervise, 1, None))
    for n, point in enumerate(ladder.escalate):
        wanted.append((RungKind.ESCALATE, point, 2 + n, None))
    if ladder.auto is not None:
        wanted.append((RungKind.AUTO, ladder.auto.at, 0, ladder.auto))
    rungs: list[PlannedRung] = []
    for kind, point, level, auto in wanted:
        at = point_time(
            point, activated_at=activated_at, due_at=due_at, step_limit=step_limit, calendar=calendar
        )
        if kind == RungKind.REMIND and (at <= activated_at or at >= due_at):
            continue
        at = max(at, activated_at)
        if quiet:
            at = after_quiet_hours(calendar, at)
        rungs.append(
            PlannedRung(
                kind=kind,
                at=at,
                point=point,
                level=level,
                action=auto.action if auto else None,
                reason=auto.reason if auto else None,
                quiet=quiet,
            )
        )
    return sorted(rungs, key=lambda r: (r.at, r.point))


# -- what a fired rung says -------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """One outbox row to write: `kind` is remind | supervise | escalate | digest."""

    kind: str
    recipient: str
    request_id: str | None
    task_id: str | None
    payload: dict[str, Any]


@dataclass
class Ping:
    events: list[TrailEvent] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def compose_ping(
    rung: PlannedRung,
    *,
    request: Request,
    task: Task,
    template: Template,
    org: Org,
    tz: ZoneInfo,
    now: datetime,
    public_url: str,
    office: Sequence[str] = (),
) -> Ping:
    """The messages and trail events of a reminder rung (remind, due, escalate) firing now.

    Recipients are worked out now, from the task's current assignee: a task moved to a
    delegate is chased with the delegate and the delegate's managers. The rung that finds the
    manager chain has run out (no direct manager for the due rung, or the first escalation
    past the top) goes to `office` instead (the office role's holders, or the configured
    person), recorded as an escalation to them; later rungs past the top say nothing. Managers
    get a 督办 card with 催办 / 转交 / 代为处理 (when the template allows it) / 查看. The trail
    events are the engine's system notes (refused if the task is no longer pending); the texts
    are `notifications.wording`'s.
    """
    step = request.steps[task.step_index]
    link = f"{public_url}/m/r/{request.id}"  # the service swaps in each recipient's own link
    chase = Chase(
        template_name=template.name,
        title=request.title,
        urgency=request.urgency,
        step_name=step.name,
        action_label=step.action_label,
        holder=org.display_name(task.assignee),
        initiator=org.display_name(request.initiator),
        due_at=task.due_at,
        now=now,
        tz=tz,
    )
    base: dict[str, Any] = {
        "request_id": request.id,
        "task_id": task.id,
        "version": task.version,
        "template": template.key,
        "title": request.title,
        "urgency": URGENCY_LABEL[request.urgency],
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "step": step.name,
        "assignee": task.assignee,
        "assignee_name": chase.holder,
        "rung": rung.kind.value,
        "link": link,
    }
    overdue_s = max(0, int((now - task.due_at).total_seconds())) if task.due_at else 0
    ping = Ping()

    def tell_assignee(text: str) -> None:
        card = task_card(request, task, template=template, org=org, tz=tz, link=link)
        ping.messages.append(
            Message("remind", task.assignee, request.id, task.id, {**base, "text": text, "card": card})
        )
        ping.events.append(
            system_note(
                request,
                now,
                SystemNote.REMINDED,
                task_id=task.id,
                after=task.assignee,
                rung=rung.kind.value,
                due_at=base["due_at"],
            )
        )

    def tell_manager(kind: str, manager: str, text: str, *, to_office: bool = False) -> None:
        card = supervise_card(
            request,
            task,
            template=template,
            org=org,
            tz=tz,
            link=link,
            text=text,
            late=lateness(task.due_at, now),
            heading=SUPERVISE_CARD_TITLE["office" if to_office else kind],
            may_take_over=may_take_over(template),
        )
        payload = {**base, "text": text, "overdue_s": overdue_s, "buttons": card["buttons"], "card": card}
        ping.messages.append(Message(kind, manager, request.id, task.id, payload))
        extra: dict[str, Any] = {"to_office": True} if to_office else {}
        ping.events.append(
            system_note(
                request,
                now,
                SystemNote.SUPERVISED if kind == "supervise" else SystemNote.ESCALATED,
                task_id=task.id,
                after=manager,
                rung=rung.kind.value,
                level=rung.level,
                assignee=task.assignee,
                overdue_s=overdue_s,
                **extra,
            )
        )

    def tell_office(top: str) -> None:
        holders = {task.assignee, task.acting_for}
        for person in [p for p in office if p not in holders]:
            text = office_escalation_text(chase, top=org.display_name(top))
            tell_manager("escalate", person, text, to_office=True)

    if rung.kind == RungKind.REMIND:
        tell_assignee(chase_text("remind", chase))
    elif rung.kind == RungKind.DUE:
        tell_assignee(chase_text("due", chase))
        manager = org.manager_of(task.assignee)
        if manager is not None and manager != task.assignee:
            tell_manager("supervise", manager, chase_text("supervise", chase))
        elif manager is None:
            tell_office(task.assignee)
    elif rung.kind == RungKind.ESCALATE:
        level = max(rung.level, 2)
        manager = org.manager_of(task.assignee, level)
        below = org.manager_of(task.assignee, level - 1)
        if manager is not None and manager != task.assignee:
            tell_manager(
                "escalate", manager, chase_text("escalate", chase, supervised=org.display_name(below))
            )
        elif manager is None and below is not None:
            tell_office(below)  # the chain ends just below this level: the office takes over
    return ping


def auto_reason(rung: PlannedRung, *, task: Task, now: datetime) -> str:
    """The reason written to the trail for an automatic decision: the template's, or the default."""
    if rung.reason:
        return rung.reason
    action = rung.action or AutoActionKind.APPROVE
    return wording.auto_reason(action.value, due_at=task.due_at, now=now)
