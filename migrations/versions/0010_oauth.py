"""OAuth connections: granted scopes, a token generation per refresh, and the refresh index.

`token_generation` counts the token writes of a connection (connect, refresh): a refresher
that re-reads the row under its lock sees whether another one already wrote. The partial index
serves the refresh loop's one query (connections that can be refreshed, by expiry).
`tracking_credential` keeps tracking credentials (YouTube API key, X bearer, Instagram token)
encrypted like the tokens, for deployments that do not put them in the environment.

Revision ID: 0010_oauth
Revises: 0009_rollup_firsts (depends on 0003_publishing)
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_oauth"
down_revision = "0009_rollup_firsts"
branch_labels = None
depends_on = "0003_publishing"  # the connection table (a branch 0008 does not include)


def upgrade() -> None:
    op.add_column("connection", sa.Column("scopes", sa.Text(), nullable=True))
    op.add_column(
        "connection",
        sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "connection", sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_connection_refresh_due",
        "connection",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("refresh_token_encrypted IS NOT NULL AND status = 'ok'"),
    )

    op.create_table(
        "tracking_credential",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name="pk_tracking_credential"),
        sa.CheckConstraint(
            "name in ('youtube_api_key', 'x_bearer_token', 'instagram_access_token', "
            "'instagram_user_id')",
            name="ck_tracking_credential_name",
        ),
    )


def downgrade() -> None:
    op.drop_table("tracking_credential")
    op.drop_index("ix_connection_refresh_due", table_name="connection")
    op.drop_column("connection", "refreshed_at")
    op.drop_column("connection", "token_generation")
    op.drop_column("connection", "scopes")
