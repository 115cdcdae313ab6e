"""trail keyed and append-only

The tamper-evident trail (`approvals.trail`): each trail event's keyed seal (`key_id`, `mac`),
each request's anchored chain head (`head_key_id`, `head_mac`), and triggers that refuse UPDATE
and DELETE of trail events (and TRUNCATE on PostgreSQL). Existing rows keep NULL seals: they
are legacy until `oabot audit rekey` anchors them.

Revision ID: b7e3c1f0a924
Revises: 8ad5b7494a6d
Create Date: 2026-11-30 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e3c1f0a924"
down_revision: str | Sequence[str] | None = "8ad5b7494a6d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    "CREATE TRIGGER trail_events_no_update BEFORE UPDATE ON trail_events "
    "BEGIN SELECT RAISE(ABORT, 'trail_events is append-only: UPDATE refused'); END",
    "CREATE TRIGGER trail_events_no_delete BEFORE DELETE ON trail_events "
    "BEGIN SELECT RAISE(ABORT, 'trail_events is append-only: DELETE refused'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION trail_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'trail_events is append-only: % refused', TG_OP "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER trail_events_no_change BEFORE UPDATE OR DELETE ON trail_events "
    "FOR EACH ROW EXECUTE FUNCTION trail_events_append_only()",
    "CREATE TRIGGER trail_events_no_truncate BEFORE TRUNCATE ON trail_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION trail_events_append_only()",
)


def upgrade() -> None:
    # the columns first: were SQLite's batch mode ever to copy the table, its triggers would go
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("head_key_id", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("head_mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("trail_events") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS trail_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS trail_events_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trail_events_no_change ON trail_events")
        op.execute("DROP TRIGGER IF EXISTS trail_events_no_truncate ON trail_events")
        op.execute("DROP FUNCTION IF EXISTS trail_events_append_only()")
    with op.batch_alter_table("trail_events") as batch:
        batch.drop_column("mac")
        batch.drop_column("key_id")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("head_mac")
        batch.drop_column("head_key_id")
