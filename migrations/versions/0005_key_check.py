"""The stored encryption key check: one canary, Fernet-encrypted like the platform tokens.

Revision ID: 0005_key_check
Revises: 0003_publishing
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_key_check"
down_revision = "0003_publishing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_check",
        sa.Column("id", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("canary", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_key_check"),
        sa.CheckConstraint("id = 1", name="ck_key_check_single_row"),
    )


def downgrade() -> None:
    op.drop_table("key_check")
