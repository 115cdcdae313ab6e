"""Tables of the approval engine: requests, tasks, the hash-chained trail, the outbox,
idempotency keys and delegations. Rows only; the meaning lives in approvals.model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, UniqueConstraint, event, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from storage.base import UTCDateTime


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class RequestRow(SQLModel, table=True):
    __tablename__ = "approval_requests"

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    template_key: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    template_version: int = Field(sa_column=Column(Integer, nullable=False))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    initiator: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    urgency: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    form: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # steps, round, urge times: {"schema_version": 1, ...}
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    last_seq: int = Field(sa_column=Column(Integer, nullable=False))
    last_hash: str = Field(sa_column=Column(String(64), nullable=False))
    # The keyed chain head (`approvals.trail.head_mac`) and its key id; None on legacy rows.
    head_key_id: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    head_mac: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = _ts(index=True)
    updated_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    # 归档: set once by an archive action; the active lists leave archived requests out
    archived_at: datetime | None = _ts(nullable=True, index=True)
    archived_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


class ReaderRow(SQLModel, table=True):
    """Someone who may read a request without acting on it: the template's CC 抄送, or a person
    picked by 知会他人. Rows are only ever added (one per person and request)."""

    __tablename__ = "approval_readers"
    __table_args__ = (Index("ix_approval_readers_user_at", "user_id", "added_at"),)

    request_id: str = Field(sa_column=Column(String(40), primary_key=True))
    user_id: str = Field(sa_column=Column(String(64), primary_key=True))
    reason: str = Field(sa_column=Column(String(16), nullable=False))  # cc | notified
    added_at: datetime = _ts()
    added_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


class TaskRow(SQLModel, table=True):
    __tablename__ = "approval_tasks"
    __table_args__ = (Index("ix_approval_tasks_assignee_status", "assignee", "status"),)

    id: str = Field(sa_column=Column(String(48), primary_key=True))
    request_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    step_index: int = Field(sa_column=Column(Integer, nullable=False))
    assignee: str = Field(sa_column=Column(String(64), nullable=False))
    acting_for: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    permission: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    after_task: str | None = Field(default=None, sa_column=Column(String(48), nullable=True))
    origin: str = Field(sa_column=Column(String(16), nullable=False))
    added_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = _ts()
    activated_at: datetime | None = _ts(nullable=True)
    decided_at: datetime | None = _ts(nullable=True)
    decided_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    close_reason: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))
    due_at: datetime | None = _ts(nullable=True, index=True)


class TrailRow(SQLModel, table=True):
    """Append-only: rows are inserted, never updated or deleted (a trigger refuses both, see
    `TRAIL_APPEND_ONLY`)."""

    __tablename__ = "trail_events"
    __table_args__ = (UniqueConstraint("request_id", "seq", name="uq_trail_request_seq"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    request_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    at: datetime = _ts()
    actor: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, index=True))
    acting_for: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    task_id: str | None = Field(default=None, sa_column=Column(String(48), nullable=True))
    step_index: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    before: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))
    after: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    # The keyed seal (`approvals.trail.event_mac`) and its key id; None on legacy rows.
    key_id: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    mac: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


# The trail table refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) by a trigger, per
# dialect. The migration `trail_keyed_and_append_only` creates the same triggers; tables made
# by `create_all` (tests) get them through the `after_create` listener below.
TRAIL_APPEND_ONLY: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER trail_events_no_update BEFORE UPDATE ON trail_events "
        "BEGIN SELECT RAISE(ABORT, 'trail_events is append-only: UPDATE refused'); END",
        "CREATE TRIGGER trail_events_no_delete BEFORE DELETE ON trail_events "
        "BEGIN SELECT RAISE(ABORT, 'trail_events is append-only: DELETE refused'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION trail_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'trail_events is append-only: % refused', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER trail_events_no_change BEFORE UPDATE OR DELETE ON trail_events "
        "FOR EACH ROW EXECUTE FUNCTION trail_events_append_only()",
        "CREATE TRIGGER trail_events_no_truncate BEFORE TRUNCATE ON trail_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION trail_events_append_only()",
    ),
}


def _append_only(target: Table, connection: Connection, **_: Any) -> None:
    for statement in TRAIL_APPEND_ONLY.get(connection.dialect.name, ()):
        connection.execute(text(statement))


event.listen(TrailRow.__table__, "after_create", _append_only)  # type: ignore[attr-defined]


class OutboxRow(SQLModel, table=True):
    """A message to deliver. Written with the state change; sent by the dispatcher."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    recipient: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True, index=True))
    task_id: str | None = Field(default=None, sa_column=Column(String(48), nullable=True))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # pending | sending | sent | dead
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = _ts()
    claimed_until: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    @classmethod
    def due_now(
        cls,
        *,
        kind: str,
        recipient: str,
        payload: dict[str, Any],
        now: datetime,
        request_id: str | None = None,
        task_id: str | None = None,
    ) -> OutboxRow:
        """A new pending row the dispatcher may send at once."""
        return cls(
            kind=kind,
            recipient=recipient[:64],
            request_id=request_id,
            task_id=task_id,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    request_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class DelegationRow(SQLModel, table=True):
    __tablename__ = "delegations"

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    delegator: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    delegate: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    starts_at: datetime = _ts()
    ends_at: datetime = _ts(index=True)
    templates: list[str] = Field(sa_column=Column(JSON, nullable=False))
    move_pending: bool = Field(default=False)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    source_request: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    created_at: datetime = _ts()
    cancelled_at: datetime | None = _ts(nullable=True)
