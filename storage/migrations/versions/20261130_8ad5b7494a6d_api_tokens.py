"""api tokens

Named REST API tokens (`oabot tokens`): the SHA-256 digest of each secret, its scopes, the person
a personal token acts as, and when it was created, last used and revoked.

Revision ID: 8ad5b7494a6d
Revises: 48ec760b0417
Create Date: 2026-11-30 08:37:28.785870
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8ad5b7494a6d"
down_revision: str | Sequence[str] | None = "48ec760b0417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
