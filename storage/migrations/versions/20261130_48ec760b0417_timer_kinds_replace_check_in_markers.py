"""timer kinds replace check-in markers

The missing-check-in ladder and the daily summary are kinds of timer now. Rungs already sent
(their markers) become done `checkin_missing` timers under the same key, so the ladder written
for open trips at the next start does not send them again; summary markers go (the next summary
timer is written for the next slot after the start).

Revision ID: 48ec760b0417
Revises: c15094976fcd
Create Date: 2026-11-30 07:54:33.650045
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "48ec760b0417"
down_revision: str | Sequence[str] | None = "c15094976fcd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_KINDS = ("checkin_missing", "checkin_summary", "stats_weekly", "backup")
RUNG_PREFIX = "rung_"  # the markers' kind of a ladder rung: rung_remind, rung_escalate
KEY_PREFIX = "checkin:"

markers = sa.table(
    "checkin_markers",
    sa.column("key", sa.String),
    sa.column("kind", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
timers = sa.table(
    "timers",
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("ref", sa.String),
    sa.column("key", sa.String),
    sa.column("data", sa.JSON),
    sa.column("attempts", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("fired_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(markers.c.key, markers.c.created_at).where(markers.c.kind.like(f"{RUNG_PREFIX}%"))
    ).all()
    done = []
    for key, at in rows:
        trip_id, kind, rung = key.rsplit(":", 2)
        done.append(
            {
                "kind": "checkin_missing",
                "status": "done",
                "due_at": at,
                "ref": trip_id,
                "key": f"{KEY_PREFIX}{key}",
                "data": {"kind": kind, "rung": rung},
                "attempts": 1,
                "created_at": at,
                "fired_at": at,
            }
        )
    if done:
        op.bulk_insert(timers, done)
    op.drop_table("checkin_markers")


def downgrade() -> None:
    op.create_table(
        "checkin_markers",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    bind = op.get_bind()
    sent = bind.execute(
        sa.select(timers.c.key, timers.c.data, timers.c.fired_at)
        .where(timers.c.kind == "checkin_missing")
        .where(timers.c.status == "done")
    ).all()
    back = [
        {"key": key[len(KEY_PREFIX) :], "kind": f"{RUNG_PREFIX}{data['rung']}", "created_at": at}
        for key, data, at in sent
    ]
    if back:
        op.bulk_insert(markers, back)
    bind.execute(sa.delete(timers).where(timers.c.kind.in_(NEW_KINDS)))
