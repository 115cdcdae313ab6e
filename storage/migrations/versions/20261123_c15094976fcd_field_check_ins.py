"""field check-ins: trips, check-ins, once-only markers (ladder rungs, daily summaries), link secret

Revision ID: c15094976fcd
Revises: 5b2d8e41c7a9
Create Date: 2026-11-23 12:00:12.023013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c15094976fcd"
down_revision: str | Sequence[str] | None = "5b2d8e41c7a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin_link_secrets",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "checkin_markers",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "checkin_trips",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=False),
        sa.Column("traveller", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("dest_name", sa.String(length=200), nullable=False),
        sa.Column("dest_site", sa.String(length=64), nullable=True),
        sa.Column("dest_lat", sa.Float(), nullable=True),
        sa.Column("dest_lng", sa.Float(), nullable=True),
        sa.Column("dest_radius_m", sa.Float(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkin_trips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_trips_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkin_trips_request_id"), ["request_id"], unique=False)
        batch_op.create_index("ix_checkin_trips_traveller_starts", ["traveller", "starts_at"], unique=False)

    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("coord_system", sa.String(length=8), nullable=False),
        sa.Column("wgs_lat", sa.Float(), nullable=False),
        sa.Column("wgs_lng", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("target_site", sa.String(length=64), nullable=True),
        sa.Column("target_name", sa.String(length=200), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("trip_id", sa.String(length=48), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column("trust_score", sa.Integer(), nullable=False),
        sa.Column("trust", sa.JSON(), nullable=False),
        sa.Column("made_up", sa.Boolean(), nullable=False),
        sa.Column("fix_request_id", sa.String(length=40), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkins_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkins_trip_id"), ["trip_id"], unique=False)
        batch_op.create_index("ix_checkins_user_at", ["user_id", "at"], unique=False)
        batch_op.create_index("ix_checkins_user_spot", ["user_id", "lat", "lng"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_index("ix_checkins_user_spot")
        batch_op.drop_index("ix_checkins_user_at")
        batch_op.drop_index(batch_op.f("ix_checkins_trip_id"))
        batch_op.drop_index(batch_op.f("ix_checkins_at"))

    op.drop_table("checkins")
    with op.batch_alter_table("checkin_trips", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_trips_traveller_starts")
        batch_op.drop_index(batch_op.f("ix_checkin_trips_request_id"))
        batch_op.drop_index(batch_op.f("ix_checkin_trips_ends_at"))

    op.drop_table("checkin_trips")
    op.drop_table("checkin_markers")
    op.drop_table("checkin_link_secrets")
