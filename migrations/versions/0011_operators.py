"""Operators, roles and teams: who edits, with which role, for which accounts.

`operator` (role checked to be viewer/editor/admin), `team`, `team_member`, and
`connection.team_id` (NULL: no team, admins only). No rows are created: a deployment without
operators keeps working as before (storage.permissions: the local OS user acts as admin until
the first operator exists).

Revision ID: 0011_operators
Revises: 0010_oauth
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_operators"
down_revision = "0010_oauth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("os_user", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("role in ('viewer', 'editor', 'admin')", name=op.f("ck_operator_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator")),
        sa.UniqueConstraint("name", name=op.f("uq_operator_name")),
        sa.UniqueConstraint("os_user", name=op.f("uq_operator_os_user")),
    )
    op.create_table(
        "team",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("name", name=op.f("uq_team_name")),
    )
    op.create_table(
        "team_member",
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_member_team_id_team"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operator.id"],
            name=op.f("fk_team_member_operator_id_operator"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "operator_id", name=op.f("pk_team_member")),
    )
    op.add_column("connection", sa.Column("team_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_connection_team_id_team"),
        "connection",
        "team",
        ["team_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_connection_team_id_team"), "connection", type_="foreignkey")
    op.drop_column("connection", "team_id")
    op.drop_table("team_member")
    op.drop_table("team")
    op.drop_table("operator")
