"""Attendance (điểm danh): one row per uninterrupted presence of a site in a meeting.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=8), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meeting_meetings.id"],
                                name=op.f("fk_meeting_attendance_meeting_id_meeting_meetings")),
        sa.ForeignKeyConstraint(["site_id"], ["meeting_sites.id"],
                                name=op.f("fk_meeting_attendance_site_id_meeting_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_attendance")),
    )
    op.create_index("ix_meeting_attendance_meeting_site", "meeting_attendance",
                    ["meeting_id", "site_id", "joined_at"])


def downgrade() -> None:
    op.drop_index("ix_meeting_attendance_meeting_site", table_name="meeting_attendance")
    op.drop_table("meeting_attendance")
