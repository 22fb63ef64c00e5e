"""Recordings of meetings' floor streams (issue 11): one row per WebM file, purged after the retention period.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:47:52.279770
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("purged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
            name=op.f("fk_meeting_recordings_meeting_id_meeting_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_recordings")),
    )
    with op.batch_alter_table("meeting_recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_recordings_meeting_id"), ["meeting_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("meeting_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_recordings_meeting_id"))
    op.drop_table("meeting_recordings")
