"""Replay a request's trail 留痕 and say where the stored state disagrees with it.

The trail is the record of what happened; the request and task rows are what the engine made of
it. `replay` folds the events the engine writes (see `approvals.engine`) into what they imply:
the request's status, its current step, who holds each pending task, and how each task was
decided and by whom. `differences` compares that with a `Request` as loaded from the tables,
so a status edited in the database (rejected -> approved), a task marked approved that nobody
approved, or a pending task moved to someone else shows up by request and by field.

What the trail does not record, the fold takes from the request's own route: a step's mode
(any-sign 或签 closes the siblings of the approved task without an event) and permission (知会
tasks stay open after approval). Beyond the tasks it checks the request's archive mark 归档 and
who may read it (CC 抄送 and 知会他人 people, from `cc_sent` / `others_notified`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from approvals.definitions import Permission, StepMode
from approvals.model import Request, RequestStatus, StepStatus, TaskStatus, TrailEvent

# Events that decide a task for good: the task's status afterwards is the event's `after`.
_DECIDING = frozenset(
    {
        "approved",
        "rejected",
        "returned",
        "acknowledged",
        "transferred",
        "auto_approved",
        "auto_rejected",
        "auto_transferred",
        "acknowledged_by_default",
    }
)
_STATUS_OF = {"transferred": TaskStatus.TRANSFERRED.value, "auto_transferred": TaskStatus.TRANSFERRED.value}
_DECIDED_STATUSES = frozenset(
    {
        TaskStatus.APPROVED,
        TaskStatus.REJECTED,
        TaskStatus.RETURNED,
        TaskStatus.TRANSFERRED,
        TaskStatus.ACKNOWLEDGED,
    }
)


@dataclass(frozen=True)
class StepShape:
    mode: StepMode
    permission: Permission


@dataclass
class Replayed:
    """What a trail says the request is now."""

    status: str | None = None  # a RequestStatus value (kept as written, even if not one)
    current_step: int | None = None
    pending: dict[str, str] = field(default_factory=dict)  # task id -> who holds it
    pending_step: dict[str, int] = field(default_factory=dict)  # task id -> its step
    decided: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # -> (status, by)
    archived: bool = False  # 归档
    readers: set[str] = field(default_factory=set)  # CC 抄送 and 知会他人 people


def _notify(steps: Mapping[int, StepShape], step: int | None) -> bool:
    shape = steps.get(step) if step is not None else None
    return shape is not None and shape.permission == Permission.NOTIFY


def _close_pending(r: Replayed, keep: Iterable[str] = ()) -> None:
    kept = set(keep)
    for tid in [t for t in r.pending if t not in kept]:
        del r.pending[tid]
        r.pending_step.pop(tid, None)


def _drop(r: Replayed, tid: str) -> None:
    r.pending.pop(tid, None)
    r.pending_step.pop(tid, None)


def _decide(r: Replayed, e: TrailEvent, steps: Mapping[int, StepShape]) -> None:
    tid = e.task_id
    if tid is None:
        return
    status = _STATUS_OF.get(e.kind) or str(e.after)
    r.decided[tid] = (status, e.actor)
    _drop(r, tid)
    step = e.step_index
    shape = steps.get(step) if step is not None else None
    if (
        status == TaskStatus.APPROVED.value
        and shape is not None
        and shape.mode == StepMode.ANY
        and not _notify(steps, step)
    ):
        # an any-sign step: the first approval closes the other open tasks of the step
        _close_pending(r, keep=[t for t, s in r.pending_step.items() if s != step])
    if e.kind == "returned":
        _close_pending(r)  # a return closes every open task of the round


def _finish(r: Replayed, e: TrailEvent, steps: Mapping[int, StepShape]) -> None:
    r.status = str(e.after)
    r.current_step = None
    if r.status == RequestStatus.APPROVED.value:  # 知会 tasks may still be acknowledged
        _close_pending(r, keep=[t for t, s in r.pending_step.items() if _notify(steps, s)])
    else:
        _close_pending(r)


def replay(events: Iterable[TrailEvent], steps: Mapping[int, StepShape]) -> Replayed:
    """Fold a request's events (in order) into what they say the request is now."""
    r = Replayed()
    for e in events:
        if e.kind in ("submitted", "resubmitted"):
            r.status = RequestStatus.RUNNING.value
        elif e.kind.startswith("request_"):
            _finish(r, e, steps)
        elif e.kind == "step_started":
            r.current_step = e.step_index
        elif e.kind == "step_approved":
            r.current_step = None
        elif e.kind == "task_assigned" and e.task_id is not None:
            r.pending[e.task_id] = e.after or ""
            r.pending_step[e.task_id] = e.step_index if e.step_index is not None else -1
        elif e.kind == "delegated" and e.task_id in r.pending:
            r.pending[e.task_id] = e.after or ""
        elif e.kind == "signer_added" and e.data.get("position") == "before" and e.task_id is not None:
            _drop(r, e.task_id)  # it waits for the new signer, then is assigned again
        elif e.kind in _DECIDING:
            _decide(r, e, steps)
        elif e.kind in ("cc_sent", "others_notified"):
            r.readers.update(str(p) for p in e.data.get("recipients", []))
        elif e.kind == "archived":
            r.archived = True
            _close_pending(r)  # archiving closes the 知会 tasks still open
    return r


def shapes_of(req: Request) -> dict[int, StepShape]:
    return {s.index: StepShape(mode=s.mode, permission=s.permission) for s in req.steps}


def differences(events: Iterable[TrailEvent], req: Request) -> list[str]:
    """Where the stored request disagrees with its replayed trail, one line per difference."""
    r = replay(events, shapes_of(req))
    found: list[str] = []
    if r.status != req.status.value:
        found.append(f"status: the trail says {r.status}, the table says {req.status.value}")
    active = [s.index for s in req.steps if s.status == StepStatus.ACTIVE]
    current = active[0] if len(active) == 1 else (None if not active else tuple(active))
    if r.current_step != current:
        found.append(f"current step: the trail says {r.current_step}, the table says {current}")
    stored_pending = {t.id: t.assignee for t in req.tasks if t.status == TaskStatus.PENDING}
    for tid in sorted(set(r.pending) | set(stored_pending)):
        said, stored = r.pending.get(tid), stored_pending.get(tid)
        if said != stored:
            found.append(f"task {tid} pending with: the trail says {said}, the table says {stored}")
    stored_decided = {
        t.id: (t.status.value, t.decided_by) for t in req.tasks if t.status in _DECIDED_STATUSES
    }
    for tid in sorted(set(r.decided) | set(stored_decided)):
        said_d, stored_d = r.decided.get(tid), stored_decided.get(tid)
        if said_d != stored_d:
            found.append(
                f"task {tid} decided: the trail says {_decision(said_d)}, the table says {_decision(stored_d)}"
            )
    if r.archived != req.is_archived:
        found.append(f"archived: the trail says {r.archived}, the table says {req.is_archived}")
    stored_readers = req.reader_ids()
    if r.readers != stored_readers:
        found.append(f"readers: the trail says {sorted(r.readers)}, the table says {sorted(stored_readers)}")
    return found


def _decision(d: tuple[str, str | None] | None) -> str:
    return "undecided" if d is None else f"{d[0]} by {d[1]}"
