"""document numbers and request opens

Documents 公文: the counter of document numbers 文号 per (prefix, year), the numbers issued (void
once the document is withdrawn or ended), and the first open of a request per person (a recall
收回 is refused once someone it went to has opened it).

Revision ID: e4b7c2d9a613
Revises: d5f1a3b8c270
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4b7c2d9a613"
down_revision: str | Sequence[str] | None = "d5f1a3b8c270"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "doc_number_counters",
        sa.Column("prefix", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name="pk_doc_number_counters"),
    )
    op.create_table(
        "doc_numbers",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
        sa.UniqueConstraint("prefix", "year", "seq", name="uq_doc_number_seq"),
    )
    op.create_index("ix_doc_numbers_number", "doc_numbers", ["number"])
    op.create_table(
        "request_opens",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "person", name="pk_request_opens"),
    )


def downgrade() -> None:
    op.drop_table("request_opens")
    op.drop_index("ix_doc_numbers_number", table_name="doc_numbers")
    op.drop_table("doc_numbers")
    op.drop_table("doc_number_counters")
