"""notices

Notices 通知/公告/会议通知/调查 (issue 12): the notice, one receipt per recipient, meeting 回执,
poll votes, the record of views of restricted items, and the append-only notice trail (triggers
refuse UPDATE and DELETE of its rows, as on `trail_events`).

Revision ID: e6a1c2d3f4b5
Revises: d5f1a3b8c270
Create Date: 2026-11-30 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e6a1c2d3f4b5"
down_revision: str | Sequence[str] | None = "d5f1a3b8c270"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    "CREATE TRIGGER notice_events_no_update BEFORE UPDATE ON notice_events "
    "BEGIN SELECT RAISE(ABORT, 'notice_events is append-only: UPDATE refused'); END",
    "CREATE TRIGGER notice_events_no_delete BEFORE DELETE ON notice_events "
    "BEGIN SELECT RAISE(ABORT, 'notice_events is append-only: DELETE refused'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION notice_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'notice_events is append-only: % refused', TG_OP "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER notice_events_no_change BEFORE UPDATE OR DELETE ON notice_events "
    "FOR EACH ROW EXECUTE FUNCTION notice_events_append_only()",
)


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("confidentiality", sa.String(length=16), nullable=False),
        sa.Column("named_only", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at"),
        _ts("published_at"),
        _ts("ack_deadline"),
        _ts("pinned_until"),
        _ts("recalled_at"),
        _ts("urged_at"),
        sa.Column("approval_request", sa.String(length=40), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("meeting", sa.JSON(), nullable=True),
        sa.Column("poll", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notices_author", "notices", ["author"])
    op.create_index("ix_notices_status", "notices", ["status"])
    op.create_index("ix_notices_created_at", "notices", ["created_at"])
    op.create_index("ix_notices_published_at", "notices", ["published_at"])
    op.create_index("ix_notices_approval_request", "notices", ["approval_request"])
    op.create_index("ix_notices_status_deadline", "notices", ["status", "ack_deadline"])

    op.create_table(
        "notice_receipts",
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("card_no", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("opened_at"),
        sa.Column("opened_via", sa.String(length=16), nullable=True),
        _ts("acknowledged_at"),
        sa.Column("acknowledged_via", sa.String(length=16), nullable=True),
        _ts("defaulted_at"),
        sa.Column("added_by", sa.String(length=64), nullable=True),
        sa.Column("password_failures", sa.Integer(), nullable=False),
        _ts("locked_until"),
        sa.PrimaryKeyConstraint("notice_id", "person"),
        sa.UniqueConstraint("notice_id", "card_no", name="uq_notice_receipts_card"),
    )
    op.create_index("ix_notice_receipts_person_state", "notice_receipts", ["person", "state"])

    op.create_table(
        "notice_rsvps",
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("delegate", sa.String(length=64), nullable=True),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("notice_id", "person"),
    )

    op.create_table(
        "notice_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notice_id", "person", "question_id", name="uq_notice_votes_answer"),
    )
    op.create_index("ix_notice_votes_notice_id", "notice_votes", ["notice_id"])

    op.create_table(
        "notice_views",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        _ts("at", nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notice_views_notice_id", "notice_views", ["notice_id"])

    op.create_table(
        "notice_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        _ts("at", nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notice_events_notice_id", "notice_events", ["notice_id"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS notice_events_no_change ON notice_events")
        op.execute("DROP FUNCTION IF EXISTS notice_events_append_only()")
    op.drop_index("ix_notice_events_notice_id", table_name="notice_events")
    op.drop_table("notice_events")
    op.drop_index("ix_notice_views_notice_id", table_name="notice_views")
    op.drop_table("notice_views")
    op.drop_index("ix_notice_votes_notice_id", table_name="notice_votes")
    op.drop_table("notice_votes")
    op.drop_table("notice_rsvps")
    op.drop_index("ix_notice_receipts_person_state", table_name="notice_receipts")
    op.drop_table("notice_receipts")
    for name in ("status_deadline", "approval_request", "published_at", "created_at", "status", "author"):
        op.drop_index(f"ix_notices_{name}", table_name="notices")
    op.drop_table("notices")
