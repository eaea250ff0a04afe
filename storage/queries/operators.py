"""Operators and teams: who they are, and who is acting now (`resolve`).

`resolve` turns an `Identity` (what the process knows: its OS user, or the SSH key's name and
its `operator=` option, and whether the key is read-only) into the `Operator` the edit queries
check, reading the database in the edit's own transaction (a role change applies at once).

Bootstrap, documented and deliberate: while the `operator` table is empty, nobody is mapped and
the deployment works as before roles existed: the local OS user and every SSH key act as admin
(read-only keys as viewer). Once one operator exists it fails closed: an OS user or SSH key
that maps to no operator is a viewer. The first operator must be an admin (`add_operator`), and
the last admin cannot be demoted, so a deployment cannot lock itself out.

Every edit here is admins' only (`require`, checked before anything is read or written), is
validated before it writes (`check_name`: names are what the audit log and the SSH keys file
show), and writes one audit row naming the acting operator. Reads cost one query each, grouped
in Postgres (operators with their teams, teams with members and accounts).
Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.models import Connection, Role, Team, TeamMember
from storage.permissions import Actor, Operator, parse_role, require
from storage.queries import audit
from storage.user_error import UserError


class OperatorError(UserError, ValueError):
    title = "operators"


# What each edit's refusal says (`require`): the console asks the same words before it opens
# a form, so a non-admin reads one message whether refused early or at the write.
ADD_OPERATORS = "add operators"
CHANGE_ROLES = "change roles"
ADD_TEAMS = "add teams"
CHANGE_TEAMS = "change teams"
ASSIGN_ACCOUNTS = "assign accounts to teams"

NAME_MAX = 64  # the columns' length
# Letters, digits and . _ - @ (no spaces, quotes or commas): a name is typed on the command
# line, quoted in the SSH keys file (`operator="NAME"`) and read in the audit log.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def check_name(kind: str, name: str) -> str:
    """`name` if it is a usable operator, team or OS user name, else an OperatorError saying
    what is wrong (the console shows it as you type; the write checks it again)."""
    if not name:
        raise OperatorError(f"{kind}: required")
    if len(name) > NAME_MAX:
        raise OperatorError(f"{kind}: at most {NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise OperatorError(
            f"{kind}: letters, digits and . _ - @ only, starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is at the keyboard, before the database says what they may do."""

    login: str  # the audit name while unmapped: the OS user, or "ssh:<key name>"
    os_user: str | None = None  # a local console or CLI
    operator: str | None = None  # an SSH key's `operator="..."` option
    read_only: bool = False  # a read-only SSH key: never more than a viewer


@dataclass(frozen=True, slots=True)
class OperatorRow:
    name: str
    role: str
    os_user: str | None
    teams: tuple[str, ...]


async def _team_ids(session: AsyncSession, operator_id: int) -> frozenset[int]:
    ids = await session.scalars(
        select(TeamMember.team_id).where(TeamMember.operator_id == operator_id)
    )
    return frozenset(ids.all())


async def resolve(session: AsyncSession, who: Identity) -> Operator:
    """The operator acting as `who` (see the module docstring for the unmapped cases)."""
    if who.operator is not None:
        row = await session.scalar(
            select(models.Operator).where(models.Operator.name == who.operator)
        )
    elif who.os_user is not None:
        row = await session.scalar(
            select(models.Operator).where(models.Operator.os_user == who.os_user)
        )
    else:
        row = None
    if row is None:
        any_operator = await session.scalar(select(models.Operator.id).limit(1))
        role = Role.VIEWER if who.read_only or any_operator is not None else Role.ADMIN
        return Operator(who.login, role)
    role = parse_role(row.role, who=row.name)
    if who.read_only:
        role = Role.VIEWER
    return Operator(row.name, role, await _team_ids(session, row.id))


async def _operator(session: AsyncSession, name: str) -> models.Operator:
    row = await session.scalar(
        select(models.Operator).where(models.Operator.name == name).with_for_update()
    )
    if row is None:
        raise OperatorError(f"no operator {name!r}")
    return row


async def _team(session: AsyncSession, name: str) -> Team:
    row = await session.scalar(select(Team).where(Team.name == name))
    if row is None:
        raise OperatorError(f"no team {name!r}")
    return row


async def add_operator(
    session: AsyncSession, actor: Actor, name: str, role: str, os_user: str | None = None
) -> None:
    require(actor, Role.ADMIN, ADD_OPERATORS)
    check_name("name", name)
    if os_user is not None:
        check_name("OS user", os_user)
    parsed = parse_role(role, who=name)
    count = await session.scalar(select(func.count()).select_from(models.Operator))
    if not count and parsed is not Role.ADMIN:
        raise OperatorError("the first operator must be an admin (or nobody could add more)")
    inserted = await session.scalar(
        insert(models.Operator)
        .values(name=name, role=parsed.value, os_user=os_user)
        .on_conflict_do_nothing()
        .returning(models.Operator.id)
    )
    if inserted is None:
        raise OperatorError(f"operator {name!r} or OS user {os_user!r} already exists")
    after = {"role": parsed.value, "os_user": os_user}
    audit.record(
        session,
        actor=actor,
        action="add",
        entity="operator",
        entity_id=name,
        before=None,
        after=after,
    )


async def set_role(session: AsyncSession, actor: Actor, name: str, role: str) -> None:
    require(actor, Role.ADMIN, CHANGE_ROLES)
    parsed = parse_role(role, who=name)
    row = await _operator(session, name)
    if row.role == Role.ADMIN and parsed is not Role.ADMIN:
        admins = await session.scalar(
            select(func.count()).where(models.Operator.role == Role.ADMIN.value)
        )
        if (admins or 0) <= 1:
            raise OperatorError(f"{name} is the last admin: add another admin first")
    before = {"role": row.role}
    row.role = parsed.value
    audit.record(
        session,
        actor=actor,
        action="set_role",
        entity="operator",
        entity_id=name,
        before=before,
        after={"role": parsed.value},
    )


async def add_team(session: AsyncSession, actor: Actor, name: str) -> None:
    require(actor, Role.ADMIN, ADD_TEAMS)
    check_name("team", name)
    inserted = await session.scalar(
        insert(Team).values(name=name).on_conflict_do_nothing().returning(Team.id)
    )
    if inserted is None:
        raise OperatorError(f"team {name!r} already exists")
    audit.record(
        session,
        actor=actor,
        action="add",
        entity="team",
        entity_id=name,
        before=None,
        after={},
    )


async def add_member(session: AsyncSession, actor: Actor, team: str, operator: str) -> None:
    require(actor, Role.ADMIN, CHANGE_TEAMS)
    team_row = await _team(session, team)
    op_row = await _operator(session, operator)
    added = await session.scalar(
        insert(TeamMember)
        .values(team_id=team_row.id, operator_id=op_row.id)
        .on_conflict_do_nothing()
        .returning(TeamMember.team_id)
    )
    if added is None:
        raise OperatorError(f"{operator} is already in {team}")
    audit.record(
        session,
        actor=actor,
        action="add_member",
        entity="team",
        entity_id=team,
        before=None,
        after={"operator": operator},
    )


async def remove_member(session: AsyncSession, actor: Actor, team: str, operator: str) -> None:
    """Take `operator` out of `team`: they keep their role, and lose that team's accounts at
    their very next edit (`resolve` reads the teams in each edit's transaction)."""
    require(actor, Role.ADMIN, CHANGE_TEAMS)
    team_row = await _team(session, team)
    op_row = await _operator(session, operator)
    removed = await session.scalar(
        delete(TeamMember)
        .where(TeamMember.team_id == team_row.id, TeamMember.operator_id == op_row.id)
        .returning(TeamMember.team_id)
    )
    if removed is None:
        raise OperatorError(f"{operator} is not in {team}")
    audit.record(
        session,
        actor=actor,
        action="remove_member",
        entity="team",
        entity_id=team,
        before={"operator": operator},
        after=None,
    )


async def set_connection_team(
    session: AsyncSession, actor: Actor, connection_id: int, team: str | None
) -> None:
    """Give an account to a team (None: to nobody, admins only)."""
    require(actor, Role.ADMIN, ASSIGN_ACCOUNTS)
    team_id = None if team is None else (await _team(session, team)).id
    conn = await session.get(Connection, connection_id, with_for_update=True)
    if conn is None:
        raise OperatorError(f"no connection {connection_id}")
    before = {"team_id": conn.team_id}
    conn.team_id = team_id
    audit.record(
        session,
        actor=actor,
        action="set_team",
        entity="connection",
        entity_id=str(connection_id),
        before=before,
        after={"team_id": team_id},
    )


async def list_operators(session: AsyncSession) -> list[OperatorRow]:
    rows = await session.execute(
        select(
            models.Operator.name,
            models.Operator.role,
            models.Operator.os_user,
            func.array_remove(func.array_agg(Team.name), None),
        )
        .outerjoin(TeamMember, TeamMember.operator_id == models.Operator.id)
        .outerjoin(Team, Team.id == TeamMember.team_id)
        .group_by(models.Operator.id)
        .order_by(models.Operator.name)
    )
    return [OperatorRow(n, r, u, tuple(sorted(t))) for n, r, u, t in rows.all()]


async def list_teams(session: AsyncSession) -> list[tuple[str, int]]:
    """Each team and its member count."""
    rows = await session.execute(
        select(Team.name, func.count(TeamMember.operator_id))
        .outerjoin(TeamMember, TeamMember.team_id == Team.id)
        .group_by(Team.id)
        .order_by(Team.name)
    )
    return [(name, count) for name, count in rows.all()]


@dataclass(frozen=True, slots=True)
class TeamRow:
    name: str
    members: tuple[str, ...]  # operator names, sorted
    connection_ids: tuple[int, ...]  # the accounts the team owns, by id


@dataclass(frozen=True, slots=True)
class AccountRow:
    """A connection and the team that owns it (None: no team, admins only)."""

    id: int
    platform: str
    display_name: str
    team: str | None


async def list_team_details(session: AsyncSession) -> list[TeamRow]:
    """Each team with its members and accounts (two grouped subqueries, one round trip)."""
    members = (
        select(
            TeamMember.team_id,
            func.array_agg(aggregate_order_by(models.Operator.name, models.Operator.name)).label(
                "names"
            ),
        )
        .join(models.Operator, models.Operator.id == TeamMember.operator_id)
        .group_by(TeamMember.team_id)
        .subquery()
    )
    accounts = (
        select(
            Connection.team_id,
            func.array_agg(aggregate_order_by(Connection.id, Connection.id)).label("ids"),
        )
        .where(Connection.team_id.is_not(None))
        .group_by(Connection.team_id)
        .subquery()
    )
    rows = await session.execute(
        select(Team.name, members.c.names, accounts.c.ids)
        .outerjoin(members, members.c.team_id == Team.id)
        .outerjoin(accounts, accounts.c.team_id == Team.id)
        .order_by(Team.name)
    )
    return [TeamRow(name, tuple(names or ()), tuple(ids or ())) for name, names, ids in rows.all()]


async def list_accounts(session: AsyncSession) -> list[AccountRow]:
    """Every connection with its owning team's name, by id."""
    rows = await session.execute(
        select(Connection.id, Connection.platform, Connection.display_name, Team.name)
        .outerjoin(Team, Team.id == Connection.team_id)
        .order_by(Connection.id)
    )
    return [AccountRow(i, p, d, t) for i, p, d, t in rows.all()]
