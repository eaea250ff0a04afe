"""Edit versions for posts and experiments, as 0012_versions gave regions.

`post.version` counts the changes people make to a post through
storage.queries.publishing.lifecycle (1 on insert; +1 on a schedule, reschedule, cancel, retry or
resolve); the engine's own status updates do not count, so a publish in progress never refuses an
operator's edit (the lifecycle checks of what is still movable refuse what cannot be done).
`experiment.version` counts every edit through storage.queries.experiments.definitions (status,
weights, variants). An edit carries the version it was made against and is refused when the row has
moved on: two operators, one post or one experiment, no silent last-writer-wins.

Cost: two `ADD COLUMN … DEFAULT 1 NOT NULL`, metadata-only on Postgres 11+ (no table rewrite).

Revision ID: 0015_post_experiment_versions
Revises: 0014_post_metrics
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_post_experiment_versions"
down_revision = "0014_post_metrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.add_column(
        "experiment", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("experiment", "version")
    op.drop_column("post", "version")
