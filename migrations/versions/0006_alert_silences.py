"""Alert silences: an operator hides one alert condition for a while (audited in audit_log).

Revision ID: 0006_alert_silences
Revises: 0004_experiments
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_alert_silences"
down_revision = "0004_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_silence",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("condition", sa.String(100), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_silence"),
    )
    op.create_index(
        "ix_alert_silence_condition_until", "alert_silence", ["condition", "until"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alert_silence_condition_until", table_name="alert_silence")
    op.drop_table("alert_silence")
