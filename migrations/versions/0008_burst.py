"""Ticks at burst scale: a shard key per region; a run ledger row counts its fetch batches.

`region.shard_key` is the first 32 bits of md5(code), computed by Postgres so every writer
(console, seed, psql) gets it; the engine computes the same number in Python
(engine.queue.shard_key). `job_run.batches_expected` is set when a tick has enqueued its fetch
batches (NULL: claimed, not yet fanned out); `batches_reported` counts batches that reported in
their own transaction, and the last one to report completes the run.

Revision ID: 0008_burst
Revises: 0007_partitions
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_burst"
down_revision = "0007_partitions"
branch_labels = None
depends_on = None

SHARD_KEY = "(('x' || substr(md5(code), 1, 8))::bit(32)::bigint)"


def upgrade() -> None:
    op.add_column(
        "region",
        sa.Column("shard_key", sa.BigInteger(), sa.Computed(SHARD_KEY, persisted=True)),
    )
    op.add_column("job_run", sa.Column("batches_expected", sa.Integer(), nullable=True))
    op.add_column(
        "job_run",
        sa.Column("batches_reported", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("job_run", "batches_reported")
    op.drop_column("job_run", "batches_expected")
    op.drop_column("region", "shard_key")
