"""Who may edit what: roles checked where edits are written, not only in the screens.

Every edit query in storage/queries takes an `actor`: an `Operator` (a person, resolved by
storage.queries.operators.resolve from the database in the edit's own transaction) or a bare
string, which names a process acting on its own behalf (the engine's jobs, migrations, tests),
never a person: the console and the CLI always pass an `Operator`.

Rules:
- viewer: edits nothing (`PermissionDenied` for every edit);
- editor: operational edits that no team owns (regions, creators, experiments, dead letters,
  alert silences), and posts and connections of their teams only. A post is owned through its
  publications' connections: an editor may touch it only if every one of them belongs to one
  of their teams. A connection with no team is admins' only;
- admin: everything, plus operators, teams, keys (token rotation, tracking credentials).

Invariant, fail closed: a role that does not parse (a row edited by hand) is a refusal, never
a guess; an unknown connection or post is refused by the caller's own lookup (no check here
lets it through). Cost: a post or connection check is one indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Connection, Publication, Role
from storage.user_error import UserError

RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class PermissionDenied(UserError, PermissionError):
    """An operator's role does not allow this edit; the message names who, the role and what."""

    title = "not allowed"


def parse_role(text: str, *, who: str) -> Role:
    """The role `text` names; anything else refuses (fail closed)."""
    try:
        return Role(text)
    except ValueError:
        raise PermissionDenied(
            f"operator {who!r} has an unknown role {text!r}: every edit is refused"
        ) from None


@dataclass(frozen=True, slots=True)
class Operator:
    """A person acting, as the database says at the time of the edit."""

    name: str  # what the audit log shows
    role: Role
    team_ids: frozenset[int] = frozenset()


Actor: TypeAlias = Operator | str  # str: a process acting on its own (see the module docstring)


def actor_name(actor: Actor) -> str:
    return actor if isinstance(actor, str) else actor.name


def require(actor: Actor, role: Role, what: str) -> None:
    """Refuse unless `actor` is a process or an operator with at least `role`."""
    if isinstance(actor, str):
        return
    rank = RANK.get(actor.role)  # a role that is not one of ours refuses (fail closed)
    if rank is None or rank < RANK[role]:
        raise PermissionDenied(f"{actor.name} is {actor.role}: cannot {what} (needs {role})")


def require_teams(actor: Actor, team_ids: Iterable[int | None], what: str) -> None:
    """Refuse an editor unless every owner in `team_ids` is one of their teams (None: no team,
    admins only); viewers are refused whatever the owners."""
    require(actor, Role.EDITOR, what)
    if isinstance(actor, str) or actor.role is Role.ADMIN:
        return
    foreign = [t for t in team_ids if t is None or t not in actor.team_ids]
    if foreign:
        owner = "no team" if None in foreign else "another team"
        raise PermissionDenied(f"{actor.name} cannot {what}: the account belongs to {owner}")


async def require_connections(
    session: AsyncSession, actor: Actor, connection_ids: Iterable[int], what: str
) -> None:
    """`require_teams` for the owners of these connections (unknown ids: no team)."""
    require(actor, Role.EDITOR, what)
    if isinstance(actor, str) or actor.role is Role.ADMIN:
        return
    ids = set(connection_ids)
    rows = await session.execute(
        select(Connection.id, Connection.team_id).where(Connection.id.in_(ids))
    )
    owners = {row.id: row.team_id for row in rows}
    require_teams(actor, [owners.get(i) for i in ids], what)


async def require_post(session: AsyncSession, actor: Actor, post_id: int, what: str) -> None:
    """`require_teams` for the accounts a post is published to."""
    require(actor, Role.EDITOR, what)
    if isinstance(actor, str) or actor.role is Role.ADMIN:
        return
    ids = await session.scalars(
        select(Publication.connection_id).where(Publication.post_id == post_id)
    )
    await require_connections(session, actor, ids.all(), what)


async def require_publication(
    session: AsyncSession, actor: Actor, publication_id: int, what: str
) -> None:
    require(actor, Role.EDITOR, what)
    if isinstance(actor, str) or actor.role is Role.ADMIN:
        return
    ids = await session.scalars(
        select(Publication.connection_id).where(Publication.id == publication_id)
    )
    await require_connections(session, actor, ids.all(), what)


async def require_account(
    session: AsyncSession, actor: Actor, platform: str, account_id: str, what: str
) -> None:
    """`require_teams` for an account about to be saved: a new one has no team (admins only);
    an editor may reconnect an account of their team."""
    require(actor, Role.EDITOR, what)
    if isinstance(actor, str) or actor.role is Role.ADMIN:
        return
    owner = await session.scalar(
        select(Connection.team_id).where(
            Connection.platform == platform, Connection.account_id == account_id
        )
    )
    require_teams(actor, [owner], what)
