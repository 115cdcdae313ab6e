"""org syncs

The record of directory syncs from WeCom and DingTalk (`oabot org sync`, the nightly sync and
contact events; `oabot org history`): who or what ran each, when, how it ended, the difference.

Revision ID: c4e2a9d17b35
Revises: b7e3c1f0a924
Create Date: 2026-11-30 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e2a9d17b35"
down_revision: str | Sequence[str] | None = "b7e3c1f0a924"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_syncs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(length=512), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("handed_over", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_org_syncs_started_at", "org_syncs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_org_syncs_started_at", table_name="org_syncs")
    op.drop_table("org_syncs")
