"""cc readers and archive

Who may read a request without acting on it (the template's CC 抄送 and people picked by
知会他人), and the archive mark 归档 on requests.

Revision ID: e7a2c5d9f143
Revises: e6a1c2d3f4b5
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7a2c5d9f143"
down_revision: str | Sequence[str] | None = "e6a1c2d3f4b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_readers",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("request_id", "user_id"),
    )
    op.create_index("ix_approval_readers_user_at", "approval_readers", ["user_id", "added_at"])
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("archived_by", sa.String(length=64), nullable=True))
        batch.create_index("ix_approval_requests_archived_at", ["archived_at"])


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_index("ix_approval_requests_archived_at")
        batch.drop_column("archived_by")
        batch.drop_column("archived_at")
    op.drop_index("ix_approval_readers_user_at", table_name="approval_readers")
    op.drop_table("approval_readers")
