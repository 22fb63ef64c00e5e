"""audit store: runs and results

Revision ID: a1_audit_initial
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a1_audit_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("province", sa.String(100), nullable=False),
        sa.Column("selector", sa.String(500), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_runs_started_at", "audit_runs", ["started_at"])
    op.create_table(
        "audit_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("audit_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("site_id", sa.String(10), nullable=False),
        sa.Column("device", sa.String(100), nullable=True),
        sa.Column("check", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_results_run_id", "audit_results", ["run_id"])
    op.create_index("ix_audit_results_site_run", "audit_results", ["site_id", "run_id"])


def downgrade() -> None:
    op.drop_table("audit_results")
    op.drop_table("audit_runs")
