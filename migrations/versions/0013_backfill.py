"""Backfill: ledger rows that say who asked for them and why.

`trigger` is NULL for a scheduled or "run now" tick and 'backfill' for a fire time an operator
asked to run again; `requested_by` is the actor who asked. A backfill row is written `queued`
when it is asked for (the ledger's unique key skips fire times that already have a row), the
tick claims it (`running`), and a cancel turns what has not started into `cancelled`.

Revision ID: 0013_backfill
Revises: 0012_versions
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_backfill"
down_revision = "0012_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_run", sa.Column("trigger", sa.String(16), nullable=True))
    op.add_column("job_run", sa.Column("requested_by", sa.String(200), nullable=True))
    op.create_index(
        "ix_job_run_queued",
        "job_run",
        ["region_code", "scheduled_for"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_job_run_queued", table_name="job_run")
    op.drop_column("job_run", "requested_by")
    op.drop_column("job_run", "trigger")
