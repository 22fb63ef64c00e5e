"""Initial meeting tables: sites, users, sessions, tokens, meetings, occurrences, history, heartbeats.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:47:41.571075
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "meeting_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_login_failures")),
    )
    with op.batch_alter_table("meeting_login_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_login_failures_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_meeting_login_failures_key"), ["key"], unique=False)

    op.create_table(
        "meeting_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_meeting_secrets")),
    )
    op.create_table(
        "meeting_sites",
        sa.Column("id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_ascii", sa.String(length=200), nullable=False),
        sa.Column("full_name", sa.String(length=250), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=8), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_sites")),
    )
    with op.batch_alter_table("meeting_sites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_sites_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "meeting_heartbeats",
        sa.Column("site_id", sa.String(length=8), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["meeting_sites.id"], name=op.f("fk_meeting_heartbeats_site_id_meeting_sites")
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_meeting_heartbeats")),
    )
    op.create_table(
        "meeting_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("rrule", sa.String(length=500), nullable=True),
        sa.Column("host_site_id", sa.String(length=8), nullable=False),
        sa.Column("selectors", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_site_id"],
            ["meeting_sites.id"],
            name=op.f("fk_meeting_meetings_host_site_id_meeting_sites"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_meetings")),
    )
    op.create_table(
        "meeting_site_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["meeting_sites.id"], name=op.f("fk_meeting_site_tokens_site_id_meeting_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_site_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_meeting_site_tokens_token_hash")),
    )
    with op.batch_alter_table("meeting_site_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_site_tokens_site_id"), ["site_id"], unique=False)

    op.create_table(
        "meeting_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.String(length=8), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["meeting_sites.id"], name=op.f("fk_meeting_users_site_id_meeting_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_users")),
        sa.UniqueConstraint("username", name=op.f("uq_meeting_users_username")),
    )
    op.create_table(
        "meeting_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["meeting_users.id"], name=op.f("fk_meeting_api_tokens_user_id_meeting_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_meeting_api_tokens_token_hash")),
    )
    with op.batch_alter_table("meeting_api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "meeting_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
            name=op.f("fk_meeting_history_meeting_id_meeting_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_history")),
    )
    with op.batch_alter_table("meeting_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_history_meeting_id"), ["meeting_id"], unique=False)

    op.create_table(
        "meeting_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("original_start", sa.DateTime(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("modified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
            name=op.f("fk_meeting_occurrences_meeting_id_meeting_meetings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_occurrences")),
        sa.UniqueConstraint("meeting_id", "original_start", name="uq_meeting_occurrences_meeting_original"),
    )
    with op.batch_alter_table("meeting_occurrences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_occurrences_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index("ix_meeting_occurrences_time", ["start_at", "end_at"], unique=False)

    op.create_table(
        "meeting_participants",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=8), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
            name=op.f("fk_meeting_participants_meeting_id_meeting_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["meeting_sites.id"], name=op.f("fk_meeting_participants_site_id_meeting_sites")
        ),
        sa.PrimaryKeyConstraint("meeting_id", "site_id", name=op.f("pk_meeting_participants")),
    )
    with op.batch_alter_table("meeting_participants", schema=None) as batch_op:
        batch_op.create_index("ix_meeting_participants_site", ["site_id", "meeting_id"], unique=False)

    op.create_table(
        "meeting_user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["meeting_users.id"], name=op.f("fk_meeting_user_sessions_user_id_meeting_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_user_sessions")),
    )
    with op.batch_alter_table("meeting_user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_user_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "meeting_reminders_sent",
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["occurrence_id"],
            ["meeting_occurrences.id"],
            name=op.f("fk_meeting_reminders_sent_occurrence_id_meeting_occurrences"),
        ),
        sa.PrimaryKeyConstraint("occurrence_id", "channel", name=op.f("pk_meeting_reminders_sent")),
    )


def downgrade() -> None:

    op.drop_table("meeting_reminders_sent")
    with op.batch_alter_table("meeting_user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_user_sessions_user_id"))

    op.drop_table("meeting_user_sessions")
    with op.batch_alter_table("meeting_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_participants_site")

    op.drop_table("meeting_participants")
    with op.batch_alter_table("meeting_occurrences", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_occurrences_time")
        batch_op.drop_index(batch_op.f("ix_meeting_occurrences_meeting_id"))

    op.drop_table("meeting_occurrences")
    with op.batch_alter_table("meeting_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_history_meeting_id"))

    op.drop_table("meeting_history")
    with op.batch_alter_table("meeting_api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_api_tokens_user_id"))

    op.drop_table("meeting_api_tokens")
    op.drop_table("meeting_users")
    with op.batch_alter_table("meeting_site_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_site_tokens_site_id"))

    op.drop_table("meeting_site_tokens")
    op.drop_table("meeting_meetings")
    op.drop_table("meeting_heartbeats")
    with op.batch_alter_table("meeting_sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_sites_parent_id"))

    op.drop_table("meeting_sites")
    op.drop_table("meeting_secrets")
    with op.batch_alter_table("meeting_login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_login_failures_key"))
        batch_op.drop_index(batch_op.f("ix_meeting_login_failures_at"))

    op.drop_table("meeting_login_failures")
