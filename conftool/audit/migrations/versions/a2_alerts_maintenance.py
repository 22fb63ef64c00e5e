"""alert state, alert outbox and maintenance windows

Revision ID: a2_alerts_maintenance
Revises: a1_audit_initial
Create Date: 2026-11-22

These tables were first created with ``metadata.create_all`` by the alert and maintenance modules; a database that
already has them (made by that code) keeps them as they are, so the upgrade is safe on both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a2_alerts_maintenance"
down_revision = "a1_audit_initial"
branch_labels = None
depends_on = None


def _exists(name: str) -> bool:
    return name in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if not _exists("audit_alert_state"):
        op.create_table(
            "audit_alert_state",
            sa.Column("site_id", sa.String(10), primary_key=True),
            sa.Column("device", sa.String(100), primary_key=True),
            sa.Column("check", sa.String(50), primary_key=True),
            sa.Column("kind", sa.String(100), primary_key=True),
            sa.Column("observed", sa.String(10), nullable=False),
            sa.Column("streak", sa.Integer(), nullable=False),
            sa.Column("alerted", sa.String(10), nullable=False),
            sa.Column("run_id", sa.Integer(), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    if not _exists("audit_alert_outbox"):
        op.create_table(
            "audit_alert_outbox",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.Integer(), nullable=True),
            sa.Column("channel", sa.String(500), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        )
        op.create_index("ix_audit_alert_outbox_channel", "audit_alert_outbox", ["channel"])
    if not _exists("audit_maint_windows"):
        op.create_table(
            "audit_maint_windows",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("site_id", sa.String(10), nullable=False),
            sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_audit_maint_windows_site_id", "audit_maint_windows", ["site_id"])


def downgrade() -> None:
    op.drop_table("audit_maint_windows")
    op.drop_table("audit_alert_outbox")
    op.drop_table("audit_alert_state")
