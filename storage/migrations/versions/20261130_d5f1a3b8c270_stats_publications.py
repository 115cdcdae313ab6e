"""stats publications

Published statistics (the office's desk, /admin/stats): one row per version of a period's
publication, holding the numbers as they were when published.

Revision ID: d5f1a3b8c270
Revises: 3f9c2a7d51e8
Create Date: 2026-11-30 12:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5f1a3b8c270"
down_revision: str | Sequence[str] | None = "3f9c2a7d51e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_publications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_from", "period_to", "version", name="uq_stats_publication"),
    )
    op.create_index("ix_stats_publications_published_at", "stats_publications", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_stats_publications_published_at", table_name="stats_publications")
    op.drop_table("stats_publications")
