"""Operators (the people who edit), their roles and the teams that own connections.

Invariant: `operator.role` is checked by the database to be one of `Role`; a row that still
holds something else (edited by hand) is refused by storage.permissions, never read as a role.
A connection with no team (`connection.team_id IS NULL`) is editable by admins only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything, edits nothing
    EDITOR = "editor"  # edits posts and connections of their teams
    ADMIN = "admin"  # edits everything, manages operators and teams


class Operator(Base):
    __tablename__ = "operator"
    __table_args__ = (
        CheckConstraint("role in (" + ", ".join(f"'{r.value}'" for r in Role) + ")", name="role"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    os_user: Mapped[str | None] = mapped_column(String(64), unique=True)  # local login
    created_at: Mapped[datetime] = created_at_column()


class Team(Base):
    __tablename__ = "team"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class TeamMember(Base):
    __tablename__ = "team_member"

    team_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("operator.id", ondelete="CASCADE"), primary_key=True
    )
