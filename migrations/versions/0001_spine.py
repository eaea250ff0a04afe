"""The spine: regions, the run ledger, the audit log, and region change notifications.

Revision ID: 0001_spine
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_spine"
down_revision = None
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE FUNCTION creatordeck_notify_region() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('creatordeck_regions', COALESCE(NEW.code, OLD.code));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.create_table(
        "region",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("bbox", postgresql.JSONB(), nullable=True),
        sa.Column("overlap_policy", sa.String(16), nullable=False, server_default="skip"),
        sa.Column("catchup_policy", sa.String(16), nullable=False, server_default="run_once"),
        sa.Column("catchup_window_s", sa.Integer(), nullable=False, server_default="86400"),
        sa.Column("misfire_grace_s", sa.Integer(), nullable=False, server_default="60"),
        sa.Column(
            "schedule_since",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("overlap_policy in ('skip', 'buffer')", name="ck_region_overlap_policy"),
        sa.CheckConstraint(
            "catchup_policy in ('run_once', 'missed')", name="ck_region_catchup_policy"
        ),
        sa.PrimaryKeyConstraint("code", name="pk_region"),
    )
    op.create_table(
        "job_run",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("region_code", sa.String(64), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lag_ms", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("job_id", sa.String(300), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("counts", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_job_run"),
        sa.UniqueConstraint("kind", "region_code", "scheduled_for", name="uq_job_run_fire"),
    )
    op.create_index("ix_job_run_region_scheduled", "job_run", ["region_code", "scheduled_for"])
    op.create_index("ix_job_run_scheduled", "job_run", ["scheduled_for"])
    op.create_index(
        "ix_job_run_status", "job_run", ["status"], postgresql_where=sa.text("status = 'running'")
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    # Any change to a region, from the console or from psql, wakes the scheduler at once.
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER region_notify AFTER INSERT OR UPDATE OR DELETE ON region "
        "FOR EACH ROW EXECUTE FUNCTION creatordeck_notify_region()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS region_notify ON region")
    op.execute("DROP FUNCTION IF EXISTS creatordeck_notify_region()")
    op.drop_table("audit_log")
    op.drop_table("job_run")
    op.drop_table("region")
