"""Roles enforced where edits are written (storage.permissions): a viewer is refused by every
edit family, an editor of another team cannot compose, schedule or cancel on an account that is
not theirs, an admin can, nothing is written by a refusal, and the audit names the operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import AuditEntry, Connection, CreatorStatus, ExperimentStatus, Role
from storage.permissions import Operator, PermissionDenied, parse_role
from storage.queries import (
    alerts,
    creators,
    dead_letters,
    key_check,
    operators,
    publishing,
    regions,
    tracking_credentials,
)
from storage.queries import experiments as exp
from storage.queries.operators import Identity
from tests.support.publishing import KEY, add_connection

NOW = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=1)  # fixed: no test reads the clock
VIEWER = Operator("vera", Role.VIEWER)
ADMIN = Operator("ada", Role.ADMIN)

Edit = Callable[[AsyncSession, Operator], Awaitable[Any]]


def _experiment() -> exp.ExperimentInput:
    return exp.ExperimentInput.model_validate(
        {
            "key": "exp_a",
            "name": "A",
            "primary_metric": "signup",
            "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        }
    )


def _post(connection_id: int) -> publishing.PostInput:
    return publishing.PostInput(body="hello", connection_ids=[connection_id])


EDITS: dict[str, Edit] = {
    "create region": lambda s, a: regions.create_region(
        s, regions.RegionInput(code="NEW_R", name="n", cron="0 * * * *"), actor=a, now=NOW
    ),
    "update region": lambda s, a: regions.update_region(s, "R1", actor=a, now=NOW, active=False),
    "delete region": lambda s, a: regions.delete_region(s, "R1", actor=a),
    "silence": lambda s, a: alerts.add_silence(
        s, condition="tick", until=NOW, reason="why", actor=a
    ),
    "unsilence": lambda s, a: alerts.end_silences(s, condition="tick", now=NOW, actor=a),
    "requeue letters": lambda s, a: dead_letters.mark_requeued(s, None, actor=a),
    "drop letters": lambda s, a: dead_letters.drop(s, None, actor=a),
    "creator status": lambda s, a: creators.set_status(s, [1], CreatorStatus.PAUSED, actor=a),
    "create experiment": lambda s, a: exp.create_experiment(s, _experiment(), actor=a),
    "experiment status": lambda s, a: exp.set_status(s, "x", ExperimentStatus.RUNNING, actor=a),
    "experiment weights": lambda s, a: exp.set_weights(s, "x", {"a": 1}, actor=a),
    "experiment variant": lambda s, a: exp.add_variant(s, "x", "c", actor=a),
    "rotate keys": lambda s, a: key_check.rotate_tokens(s, TokenCipher(KEY), a),
    "set credential": lambda s, a: tracking_credentials.set_credential(
        s, TokenCipher(KEY), "youtube_api_key", "v", a
    ),
    "delete credential": lambda s, a: tracking_credentials.delete_credential(
        s, "youtube_api_key", a
    ),
    "save connection": lambda s, a: publishing.save_connection(
        s,
        TokenCipher(KEY),
        publishing.ConnectionInput(platform="mock", account_id="z", display_name="z", token="t"),
        a,
    ),
    "compose post": lambda s, a: publishing.create_post(s, _post(1), a, NOW),
    "schedule post": lambda s, a: publishing.schedule_post(
        s, 1, NOW + timedelta(hours=1), "UTC", a, NOW
    ),
    "cancel post": lambda s, a: publishing.cancel_post(s, 1, a),
    "retry publication": lambda s, a: publishing.retry_publication(s, 1, a, NOW),
    "resolve publication": lambda s, a: publishing.resolve_unknown(
        s, 1, published=True, actor=a, now=NOW
    ),
    "add operator": lambda s, a: operators.add_operator(s, a, "x", "viewer"),
    "set role": lambda s, a: operators.set_role(s, a, "ada", "viewer"),
    "add team": lambda s, a: operators.add_team(s, a, "t"),
    "add member": lambda s, a: operators.add_member(s, a, "t", "ada"),
    "assign connection": lambda s, a: operators.set_connection_team(s, a, 1, None),
}


async def _audit_rows(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.entity).order_by(AuditEntry.id)
        )
        return [(r[0], r[1], r[2]) for r in rows.all()]


async def _team_account(db: Database, team: str, account: str) -> tuple[int, int]:
    """A team and a connection it owns: (team id, connection id)."""
    conn = await add_connection(db, account)
    async with db.transaction() as session:
        await operators.add_team(session, ADMIN, team)
        await operators.set_connection_team(session, ADMIN, conn.id, team)
        team_id = await session.scalar(select(Connection.team_id).where(Connection.id == conn.id))
    assert team_id is not None
    return team_id, conn.id


@pytest.mark.parametrize("family", sorted(EDITS))
async def test_a_viewer_is_refused_every_edit_and_nothing_is_written(
    db: Database, family: str
) -> None:
    before = await _audit_rows(db)
    with pytest.raises(PermissionDenied, match=r"vera is viewer: cannot .* \(needs "):
        async with db.transaction() as session:
            await EDITS[family](session, VIEWER)
    assert await _audit_rows(db) == before


async def test_an_editor_edits_only_their_teams_accounts(db: Database) -> None:
    ours, our_conn = await _team_account(db, "detroit", "ours")
    _, their_conn = await _team_account(db, "chicago", "theirs")
    loose = await add_connection(db, "nobody")  # no team: admins only
    editor = Operator("ed", Role.EDITOR, frozenset({ours}))

    async with db.transaction() as session:
        post, _ = await publishing.create_post(session, _post(their_conn), ADMIN, NOW)
        their_post = post.id

    refused: list[Edit] = [
        lambda s, a: publishing.create_post(s, _post(their_conn), a, NOW),
        lambda s, a: publishing.create_post(
            s, publishing.PostInput(body="x", connection_ids=[our_conn, their_conn]), a, NOW
        ),
        lambda s, a: publishing.schedule_post(
            s, their_post, NOW + timedelta(hours=1), "UTC", a, NOW
        ),
        lambda s, a: publishing.cancel_post(s, their_post, a),
    ]
    before = await _audit_rows(db)
    for edit in refused:
        with pytest.raises(PermissionDenied, match=r"ed cannot .*: the account belongs to another"):
            async with db.transaction() as session:
                await edit(session, editor)
    with pytest.raises(PermissionDenied, match="belongs to no team"):
        async with db.transaction() as session:
            await publishing.create_post(session, _post(loose.id), editor, NOW)
    assert await _audit_rows(db) == before

    # Their own account: compose, schedule, cancel, all audited under their name.
    async with db.transaction() as session:
        post, _ = await publishing.create_post(session, _post(our_conn), editor, NOW)
    async with db.transaction() as session:
        await publishing.schedule_post(
            session, post.id, NOW + timedelta(hours=1), "UTC", editor, NOW
        )
    async with db.transaction() as session:
        await publishing.cancel_post(session, post.id, editor)
    mine = [row for row in await _audit_rows(db) if row not in before]
    assert mine and all(actor == "ed" for actor, _, _ in mine)


async def test_an_admin_edits_any_account_and_the_audit_names_them(db: Database) -> None:
    _, their_conn = await _team_account(db, "chicago", "theirs")
    loose = await add_connection(db, "nobody")
    async with db.transaction() as session:
        for conn in (their_conn, loose.id):
            post, _ = await publishing.create_post(session, _post(conn), ADMIN, NOW)
            await publishing.schedule_post(
                session, post.id, NOW + timedelta(hours=1), "UTC", ADMIN, NOW
            )
            await publishing.cancel_post(session, post.id, ADMIN)
        await regions.create_region(
            session, regions.RegionInput(code="NEW_R", name="n", cron="0 * * * *"), actor=ADMIN
        )
    rows = await _audit_rows(db)
    assert ("ada", "create", "region") in rows
    assert sum(1 for actor, _, entity in rows if actor == "ada" and entity == "post") >= 6


async def test_operators_and_their_identities_resolve_fail_closed(db: Database) -> None:
    local = Identity("carol", os_user="carol")
    ssh = Identity("ssh:laptop", operator="ada")
    async with db.transaction() as session:
        # No operators yet: the deployment works as before roles (read-only keys still view).
        assert (await operators.resolve(session, local)).role is Role.ADMIN
        ro = Identity("ssh:wall", read_only=True)
        assert (await operators.resolve(session, ro)).role is Role.VIEWER
        with pytest.raises(operators.OperatorError, match="first operator must be an admin"):
            me = await operators.resolve(session, local)
            await operators.add_operator(session, me, "ed", "editor")
    async with db.transaction() as session:
        await operators.add_operator(session, ADMIN, "ada", "admin", os_user="ada")
        await operators.add_team(session, ADMIN, "detroit")
        await operators.add_operator(session, ADMIN, "ed", "editor", os_user="ed")
        await operators.add_member(session, ADMIN, "detroit", "ed")
    async with db.transaction() as session:
        assert await operators.resolve(session, local) == Operator("carol", Role.VIEWER)
        assert (await operators.resolve(session, ssh)).role is Role.ADMIN
        ro_admin = Identity("ssh:phone", operator="ada", read_only=True)
        assert (await operators.resolve(session, ro_admin)) == Operator("ada", Role.VIEWER)
        unknown = Identity("ssh:x", operator="nobody")
        assert (await operators.resolve(session, unknown)).role is Role.VIEWER
        ed = await operators.resolve(session, Identity("ed", os_user="ed"))
        assert ed.role is Role.EDITOR and len(ed.team_ids) == 1
        with pytest.raises(operators.OperatorError, match="last admin"):
            await operators.set_role(session, ADMIN, "ada", "editor")
    async with db.session() as session:
        listed = await operators.list_operators(session)
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
    assert [(o.name, o.role, o.teams) for o in listed] == [
        ("ada", "admin", ()),
        ("ed", "editor", ("detroit",)),
    ]
    assert count == 4


def test_a_role_that_does_not_parse_is_a_refusal() -> None:
    assert parse_role("editor", who="x") is Role.EDITOR
    for bad in ("Admin", "", "root", "editor "):
        with pytest.raises(PermissionDenied, match="unknown role"):
            parse_role(bad, who="x")


def test_an_operator_value_with_a_role_that_is_not_ours_is_refused() -> None:
    forged = Operator("x", "root")  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="x is root: cannot edit regions"):
        permissions.require(forged, Role.VIEWER, "edit regions")
