"""outbox sends

Which outbox message was delivered on which channel, in the database itself (it was a marker in
the key-value store keyed by outbox id alone, which outlived a restore of the database).

Revision ID: 3f9c2a7d51e8
Revises: c4e2a9d17b35
Create Date: 2026-11-30 11:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f9c2a7d51e8"
down_revision: str | Sequence[str] | None = "c4e2a9d17b35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("outbox_id", "channel", name="uq_outbox_sends_row_channel"),
    )


def downgrade() -> None:
    op.drop_table("outbox_sends")
