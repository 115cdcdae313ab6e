"""What the approval service answers: typed views of requests, tasks, trail events and delegations.

Pydantic models the REST layer returns as they are (their JSON is the API's) and the console and
chat read by attribute. Times serialise as ISO 8601 with their offset, as the API always has.
Building a view decides nothing; the functions that fill them are in `services.approvals`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer, SerializerFunctionWrapHandler, model_serializer

from approvals.definitions import Permission, StepKind, StepMode
from approvals.model import Delegation, RequestStatus, StepStatus, TaskStatus, Urgency

# datetime.isoformat(): "+00:00" rather than pydantic's "Z", as the API has always written it.
IsoTime = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str)]


class TaskView(BaseModel):
    id: str
    step_index: int
    assignee: str
    assignee_name: str
    acting_for: str | None
    permission: Permission
    status: TaskStatus
    version: int
    origin: str
    activated_at: IsoTime | None
    decided_at: IsoTime | None
    decided_by: str | None
    comment: str | None
    close_reason: str | None
    due_at: IsoTime | None


class StepView(BaseModel):
    index: int
    key: str
    name: str
    mode: StepMode
    kind: StepKind
    status: StepStatus
    round: int
    action_label: str
    notes: list[str]
    tasks: list[TaskView]


class TrailEventView(BaseModel):
    seq: int
    kind: str
    at: IsoTime
    actor: str | None
    actor_name: str | None
    acting_for: str | None
    channel: str
    task_id: str | None
    step_index: int | None
    before: str | None
    after: str | None
    comment: str | None
    data: dict[str, Any]
    hash: str


class DocNumberView(BaseModel):
    """A document's number 文号: `issued`, or `void` once the document was withdrawn or ended."""

    number: str
    status: str
    issued_at: IsoTime
    voided_at: IsoTime | None = None

    @classmethod
    def of(cls, n: Any) -> DocNumberView:
        return cls(number=n.number, status=n.status, issued_at=n.issued_at, voided_at=n.voided_at)


# Keys a request view carries only when they apply (absent, not null, otherwise).
_OPTIONAL_PARTS = ("trail", "acted_task", "info", "doc_number")


class RequestView(BaseModel):
    """A request with its steps and tasks; `trail` when asked for, `acted_task`/`info` after an action."""

    id: str
    template: str
    title: str
    status: RequestStatus
    urgency: Urgency
    initiator: str
    initiator_name: str
    form: dict[str, Any]
    round: int
    version: int
    created_at: IsoTime
    finished_at: IsoTime | None
    deadline: IsoTime
    steps: list[StepView]
    archived_at: IsoTime | None = None  # 归档: read-only from then on
    archived_by: str | None = None
    readers: list[str] = []  # may read it and never act: CC 抄送 and 知会他人 people
    trail: list[TrailEventView] | None = None
    acted_task: TaskView | None = None
    info: dict[str, Any] | None = None
    doc_number: DocNumberView | None = None  # documents 发文, once registered

    @model_serializer(mode="wrap")
    def _omit_absent_parts(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _OPTIONAL_PARTS:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class RequestSummary(BaseModel):
    """One line of a request list."""

    id: str
    template: str
    title: str
    initiator: str
    status: RequestStatus
    urgency: Urgency
    created_at: IsoTime
    finished_at: IsoTime | None


class PendingTaskView(BaseModel):
    """A task waiting for someone, with what they need to act on it."""

    task_id: str
    version: int
    request_id: str
    template: str
    template_name: str
    title: str
    initiator: str
    initiator_name: str
    urgency: Urgency
    assignee: str
    acting_for: str | None
    activated_at: IsoTime | None
    due_at: IsoTime | None
    permission: Permission


class DelegationView(BaseModel):
    """A delegation 代理: who acts for whom, when, for which templates."""

    id: str
    delegator: str
    delegate: str
    starts_at: IsoTime
    ends_at: IsoTime
    templates: list[str]
    move_pending: bool
    reason: str
    cancelled_at: IsoTime | None
    source_request: str | None

    @classmethod
    def of(cls, d: Delegation) -> DelegationView:
        return cls(
            id=d.id,
            delegator=d.delegator,
            delegate=d.delegate,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            templates=list(d.templates),
            move_pending=d.move_pending,
            reason=d.reason,
            cancelled_at=d.cancelled_at,
            source_request=d.source_request,
        )
