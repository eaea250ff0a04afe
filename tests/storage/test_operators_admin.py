"""Managing operators and teams is admins' only, in storage: a viewer and an editor (even one of
the team concerned) are refused every such edit and nothing is written; an admin's edits land
with an audit row naming them; names are checked before anything is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.models import AuditEntry, Role
from storage.permissions import Operator, PermissionDenied
from storage.queries import operators
from tests.support.publishing import add_connection

ADMIN = Operator("ada", Role.ADMIN)

Edit = Callable[[AsyncSession, Operator], Awaitable[Any]]
ADMIN_EDITS: dict[str, Edit] = {
    "add operator": lambda s, a: operators.add_operator(s, a, "newbie", "viewer"),
    "set role": lambda s, a: operators.set_role(s, a, "ed", "admin"),
    "add team": lambda s, a: operators.add_team(s, a, "chicago"),
    "add member": lambda s, a: operators.add_member(s, a, "detroit", "vera"),
    "remove member": lambda s, a: operators.remove_member(s, a, "detroit", "ed"),
    "assign connection": lambda s, a: operators.set_connection_team(s, a, 1, None),
}


async def _audit(db: Database) -> list[tuple[str, str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(
                AuditEntry.actor, AuditEntry.action, AuditEntry.entity, AuditEntry.entity_id
            ).order_by(AuditEntry.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all()]


async def _world(db: Database) -> tuple[Operator, Operator]:
    """ada (admin), ed (editor in detroit, which owns connection 1), vera (viewer)."""
    conn = await add_connection(db, "detroit-news")
    async with db.transaction() as session:
        await operators.add_operator(session, ADMIN, "ada", "admin", os_user="ada")
        await operators.add_operator(session, ADMIN, "ed", "editor", os_user="ed")
        await operators.add_operator(session, ADMIN, "vera", "viewer")
        await operators.add_team(session, ADMIN, "detroit")
        await operators.add_member(session, ADMIN, "detroit", "ed")
        await operators.set_connection_team(session, ADMIN, conn.id, "detroit")
    async with db.transaction() as session:
        editor = await operators.resolve(session, operators.Identity("ed", os_user="ed"))
        viewer = await operators.resolve(session, operators.Identity("x", operator="vera"))
    assert editor.role is Role.EDITOR and editor.team_ids and viewer.role is Role.VIEWER
    return editor, viewer


@pytest.mark.parametrize("family", sorted(ADMIN_EDITS))
async def test_a_viewer_and_an_editor_of_the_team_are_refused_and_nothing_is_written(
    db: Database, family: str
) -> None:
    editor, viewer = await _world(db)
    before = await _audit(db)
    for who, role in ((viewer, "viewer"), (editor, "editor")):
        with pytest.raises(PermissionDenied, match=rf"{who.name} is {role}: cannot .*needs admin"):
            async with db.transaction() as session:
                await ADMIN_EDITS[family](session, who)
    assert await _audit(db) == before
    async with db.session() as session:
        listed = {o.name: (o.role, o.teams) for o in await operators.list_operators(session)}
        teams = await operators.list_team_details(session)
    assert listed == {
        "ada": ("admin", ()),
        "ed": ("editor", ("detroit",)),
        "vera": ("viewer", ()),
    }
    assert [(t.name, t.members, t.connection_ids) for t in teams] == [("detroit", ("ed",), (1,))]


async def test_an_admin_removes_a_member_and_the_audit_names_them(db: Database) -> None:
    await _world(db)
    async with db.transaction() as session:
        await operators.remove_member(session, ADMIN, "detroit", "ed")
    async with db.transaction() as session:
        ed = await operators.resolve(session, operators.Identity("ed", os_user="ed"))
    assert ed.team_ids == frozenset()  # at the very next edit
    assert (await _audit(db))[-1] == ("ada", "remove_member", "team", "detroit")
    with pytest.raises(operators.OperatorError, match="ed is not in detroit"):
        async with db.transaction() as session:
            await operators.remove_member(session, ADMIN, "detroit", "ed")
    with pytest.raises(operators.OperatorError, match="no team 'nowhere'"):
        async with db.transaction() as session:
            await operators.remove_member(session, ADMIN, "nowhere", "ed")


async def test_joining_a_team_twice_is_refused_and_audited_once(db: Database) -> None:
    await _world(db)
    before = await _audit(db)
    with pytest.raises(operators.OperatorError, match="ed is already in detroit"):
        async with db.transaction() as session:
            await operators.add_member(session, ADMIN, "detroit", "ed")
    assert await _audit(db) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: operators.add_operator(s, ADMIN, "", "admin"), "name: required"),
        (lambda s: operators.add_operator(s, ADMIN, "bob smith", "admin"), "name: letters"),
        (lambda s: operators.add_operator(s, ADMIN, 'b"ob', "admin"), "name: letters"),
        (lambda s: operators.add_operator(s, ADMIN, "x" * 65, "admin"), "at most 64"),
        (lambda s: operators.add_operator(s, ADMIN, "bob", "admin", os_user=" b"), "OS user"),
        (lambda s: operators.add_team(s, ADMIN, "-team"), "team: letters"),
    ],
)
async def test_a_bad_name_is_refused_before_anything_is_written(
    db: Database, edit: Callable[[AsyncSession], Awaitable[Any]], message: str
) -> None:
    with pytest.raises(operators.OperatorError, match=message):
        async with db.transaction() as session:
            await edit(session)
    assert await _audit(db) == []
    async with db.session() as session:
        assert await operators.list_operators(session) == []


async def test_accounts_list_their_owning_team(db: Database) -> None:
    await _world(db)
    loose = await add_connection(db, "loose")
    async with db.session() as session:
        accounts = await operators.list_accounts(session)
    assert [(a.id, a.display_name, a.team) for a in accounts] == [
        (1, "@detroit-news", "detroit"),
        (loose.id, "@loose", None),
    ]
