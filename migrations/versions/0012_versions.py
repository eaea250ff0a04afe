"""Edit versions for regions, and indexes for reading the audit log by who and by what.

`region.version` counts the writes of a region (1 on insert, +1 on every change made through
storage.queries.regions): an edit carries the version it was made against and is refused when
the row has moved on (two operators, one region: no silent last-writer-wins). `updated_at`
was not reused: it is the transaction's start time, so two writes can carry the same value,
and an equality test of timestamps across the console and Postgres is fragile.

The audit screen reads newest first, filtered by actor or by entity (kind and id): two indexes
make each filter a backwards index scan instead of a scan of the whole log.

Revision ID: 0012_versions
Revises: 0011_operators
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_versions"
down_revision = "0011_operators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("region", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_column("region", "version")
