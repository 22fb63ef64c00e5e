"""Live-control events of meetings (issue 11): start/stop/rehearsal, joins, hands, floor, mute, removal.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=8), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meeting_meetings.id"],
                                name=op.f("fk_meeting_events_meeting_id_meeting_meetings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_events")),
    )
    op.create_index("ix_meeting_events_meeting_occurrence", "meeting_events", ["meeting_id", "occurrence_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_meeting_events_meeting_occurrence", table_name="meeting_events")
    op.drop_table("meeting_events")
