"""`creatordeck operators keys` lists which SSH key acts as which operator, as the server judges
each line; `teams remove-member` takes an operator out of a team (admins only, audited)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.database import Database
from storage.models import AuditEntry
from storage.queries import operators
from storage.settings import Settings
from tests.console.cli.test_operators import cli
from tests.console.test_operators_screen import KEYS


async def test_keys_list_each_line_and_its_operator(
    test_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text(KEYS)
    listed = await cli(test_settings, "anyone", "operators", "keys", "--authorized-keys", str(path))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "1\tada@laptop\tada\tedits by role",
        "2\tbob@phone\tbob\tread-only",
        "4\twallboard\t-\tread-only, from 10.0.0.*",
        "5\told-laptop\tgone\trefused: option 'command' is not supported",
    ]
    absent = await cli(test_settings, "x", "operators", "keys", "--authorized-keys", "/nonexistent")
    assert absent.returncode == 0 and "no keys" in absent.stderr


async def test_remove_member_is_admins_only_and_audited(
    test_settings: Settings, db: Database
) -> None:
    async with db.transaction() as session:
        await operators.add_operator(session, "test", "ada", "admin", os_user="ada")
        await operators.add_operator(session, "test", "ed", "editor", os_user="ed")
        await operators.add_team(session, "test", "detroit")
        await operators.add_member(session, "test", "detroit", "ed")
    refused = await cli(test_settings, "ed", "teams", "remove-member", "detroit", "ed")
    assert refused.returncode == 1
    assert "ed is editor: cannot change teams (needs admin)" in refused.stderr
    done = await cli(test_settings, "ada", "teams", "remove-member", "detroit", "ed")
    assert done.returncode == 0, done.stderr
    again = await cli(test_settings, "ada", "teams", "remove-member", "detroit", "ed")
    assert again.returncode == 1 and "ed is not in detroit" in again.stderr
    async with db.session() as session:
        last = (
            await session.execute(
                select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id.desc()).limit(1)
            )
        ).one()
    assert tuple(last) == ("ada", "remove_member")
