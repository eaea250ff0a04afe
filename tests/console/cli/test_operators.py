"""`creatordeck operators …` / `teams …`: the first operator must be an admin, then only admins
manage operators and teams, an unmapped OS user is a viewer (refused in one line, exit 1), and
the audit names the operator who acted."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from sqlalchemy import select

from storage.database import Database
from storage.models import AuditEntry
from storage.settings import Settings
from tests.conftest import engine_env


def _cli(settings: Settings, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=engine_env(settings, USER=user, LOGNAME=user),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def cli(settings: Settings, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, settings, user, *args)


async def test_operators_and_teams_from_the_cli(test_settings: Settings, db: Database) -> None:
    first = await cli(test_settings, "root", "operators", "add", "ed", "--role", "editor")
    assert first.returncode == 1 and "first operator must be an admin" in first.stderr
    added = await cli(
        test_settings, "root", "operators", "add", "ada", "--role", "admin", "--os-user", "ada"
    )
    assert added.returncode == 0, added.stderr

    # root maps to no operator now: a viewer, refused with the reason.
    refused = await cli(test_settings, "root", "teams", "add", "detroit")
    assert refused.returncode == 1
    assert "root is viewer: cannot add teams (needs admin)" in refused.stderr
    assert "Traceback" not in refused.stderr

    for args in (
        ("teams", "add", "detroit"),
        ("operators", "add", "ed", "--role", "editor", "--os-user", "ed", "--team", "detroit"),
        ("operators", "set-role", "ed", "viewer"),
    ):
        done = await cli(test_settings, "ada", *args)
        assert done.returncode == 0, done.stderr
    bad_role = await cli(test_settings, "ada", "operators", "set-role", "ed", "root")
    assert bad_role.returncode == 2  # click refuses a role that is not one

    listed = await cli(test_settings, "ed", "operators", "list")  # reading needs no role
    assert listed.stdout.splitlines() == ["ada\tadmin\tada\t-", "ed\tviewer\ted\tdetroit"]
    teams = await cli(test_settings, "ed", "teams", "list")
    assert teams.stdout.splitlines() == ["detroit\t1 member(s)"]

    async with db.session() as session:
        actors = (await session.scalars(select(AuditEntry.actor).order_by(AuditEntry.id))).all()
    assert actors == ["root", "ada", "ada", "ada", "ada"]  # bootstrap, then ada's four edits
