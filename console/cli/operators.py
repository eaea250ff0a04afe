"""`creatordeck operators …` and `creatordeck teams …`: who may edit what (storage.permissions).

The person running a command is the operator their OS user maps to (`--os-user`); while no
operator exists anyone who can reach the database acts as admin, so the first command is
`operators add NAME --role admin --os-user $USER` (the first operator must be an admin). Every
change is audited under the acting operator's name; a refusal is one line, exit 1.
SSH keys map to operators in the authorised keys file (`operator="NAME"`, console.ssh), edited
by hand; `operators keys` shows which key acts as whom, as the SSH server judges each line.
The console's Operators screen (`:operators`) does the same edits through the same queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from console.cli.preflight import database, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.permissions import Operator

T = TypeVar("T")
ROLES = click.Choice(["viewer", "editor", "admin"])


def _run(edit: Callable[[AsyncSession, Operator], Awaitable[T]]) -> T:
    """Run `edit` in one transaction as the operator at this keyboard."""
    from console.data.acting import acting

    settings = settings_or_exit()

    async def go() -> T:
        async with database(settings) as db, db.transaction() as session:
            return await edit(session, await acting(session))

    return asyncio.run(go())


@click.group()
def operators() -> None:
    """The people who edit, and their roles (viewer, editor, admin)."""


@operators.command("add")
@click.argument("name")
@click.option("--role", type=ROLES, required=True)
@click.option("--os-user", default=None, help="the local login that acts as this operator")
@click.option("--team", "teams", multiple=True, help="a team to join (repeatable)")
def operators_add(name: str, role: str, os_user: str | None, teams: tuple[str, ...]) -> None:
    """Add an operator (admins only; the very first one must be an admin)."""
    from storage.queries import operators as q

    async def add(session: AsyncSession, actor: Operator) -> None:
        await q.add_operator(session, actor, name, role, os_user)
        for team in teams:
            await q.add_member(session, actor, team, name)

    _run(add)
    click.echo(f"operator {name} added as {role}", err=True)


@operators.command("list")
def operators_list() -> None:
    """Every operator: name, role, OS user, teams."""
    from storage.queries import operators as q

    async def rows(session: AsyncSession, actor: Operator) -> list[q.OperatorRow]:
        return await q.list_operators(session)

    for row in _run(rows):
        click.echo(f"{row.name}\t{row.role}\t{row.os_user or '-'}\t{','.join(row.teams) or '-'}")


@operators.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLES)
def operators_set_role(name: str, role: str) -> None:
    """Change an operator's role (admins only; the last admin stays an admin)."""
    from storage.queries import operators as q

    _run(lambda session, actor: q.set_role(session, actor, name, role))
    click.echo(f"operator {name} is now {role}", err=True)


@operators.command("keys")
@click.option(
    "--authorized-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the SSH server's keys file [default: $CREATORDECK_AUTHORIZED_KEYS, else "
    "~/.config/creatordeck/authorized_keys]",
)
def operators_keys(authorized_keys: Path | None) -> None:
    """Which SSH key acts as which operator: line, key, operator, access (or why refused)."""
    from console.data import operators as data

    path = authorized_keys or data.authorized_keys_path()
    rows, error = data.read_keys(path)
    if error is not None:
        raise click.ClickException(error)
    if not rows:
        click.echo(f"{path}: no keys (nobody can log in over SSH)", err=True)
    for row in rows:
        access = row.problem or ("read-only" if row.read_only else "edits by role")
        if row.origin and row.problem is None:
            access += f", from {row.origin}"
        click.echo(f"{row.line_no}\t{row.name}\t{row.operator or '-'}\t{access}")


@click.group()
def teams() -> None:
    """Teams own connections (and through them, posts): editors edit their teams' only."""


@teams.command("add")
@click.argument("name")
def teams_add(name: str) -> None:
    from storage.queries import operators as q

    _run(lambda session, actor: q.add_team(session, actor, name))
    click.echo(f"team {name} added", err=True)


@teams.command("list")
def teams_list() -> None:
    from storage.queries import operators as q

    async def rows(session: AsyncSession, actor: Operator) -> list[tuple[str, int]]:
        return await q.list_teams(session)

    for name, members in _run(rows):
        click.echo(f"{name}\t{members} member(s)")


@teams.command("add-member")
@click.argument("team")
@click.argument("operator")
def teams_add_member(team: str, operator: str) -> None:
    from storage.queries import operators as q

    _run(lambda session, actor: q.add_member(session, actor, team, operator))
    click.echo(f"{operator} joined {team}", err=True)


@teams.command("remove-member")
@click.argument("team")
@click.argument("operator")
def teams_remove_member(team: str, operator: str) -> None:
    """Take OPERATOR out of TEAM (admins only; they keep their role)."""
    from storage.queries import operators as q

    _run(lambda session, actor: q.remove_member(session, actor, team, operator))
    click.echo(f"{operator} left {team}", err=True)


@teams.command("assign")
@click.argument("connection_id", type=int)
@click.argument("team", required=False)
def teams_assign(connection_id: int, team: str | None) -> None:
    """Give a connection (an account) to TEAM; no TEAM: to nobody (admins only)."""
    from storage.queries import operators as q

    _run(lambda session, actor: q.set_connection_team(session, actor, connection_id, team))
    click.echo(f"connection {connection_id} belongs to {team or 'no team'}", err=True)
