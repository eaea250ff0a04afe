"""The Operators screen: it lists operators, teams and the SSH keys that act as them; an admin's
edit lands and is audited under their name; a viewer is refused with storage's own message and
nothing is written; a `--read-only` console is a viewer in storage, as a read-only SSH key is.
Snapshots of the screen and its modals at 80x24 and 120x40.

Update the snapshots after a deliberate change of the look:
    pytest tests/console/test_operators_screen.py --snapshot-update
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from console.app import CreatordeckApp
from console.data import operators as data
from console.data.acting import acting
from console.screens.operator_modals import KeysModal, OperatorFormModal
from console.screens.operators import OperatorsScreen
from console.ssh.authorized_keys import load_authorized_keys, match_key
from storage.database import Database
from storage.models import AuditEntry, Role
from storage.queries import audit, operators
from storage.settings import Settings
from tests.console.screens.test_snapshots import _until, settled
from tests.console.test_app import (
    SIZE,
    add_region,
    get_region,
    make_app,
    notifications,
    type_text,
    wait_until,
)
from tests.support.publishing import add_connection

SIZES = [(80, 24), (120, 40)]
SYSTEM = "test"  # a process acting on its own: seeds the operators

# Fixed public keys (their private halves were thrown away): snapshots show their fingerprints.
KEYS = (
    'operator="ada" ssh-ed25519 '
    "AAAAC3NzaC1lZDI1NTE5AAAAIKgfBfrEB6urt8UwccyYOvVRMB9pg1xcAg7jWYIZg4n/ ada@laptop\n"
    'operator="bob",read-only ssh-ed25519 '
    "AAAAC3NzaC1lZDI1NTE5AAAAIOIX2YUTRFMKOLBDdkOTljdnHyselQ3LE+yT9Gh3XlLr bob@phone\n"
    "# the wall screen in the office\n"
    'read-only,from="10.0.0.*" ssh-ed25519 '
    "AAAAC3NzaC1lZDI1NTE5AAAAIFkQEX4Hp98IgQAJu13kDcp+jP1Gb0i2Dux9iHinkHnJ wallboard\n"
    'operator="gone",command="/bin/sh" ssh-ed25519 '
    "AAAAC3NzaC1lZDI1NTE5AAAAIPWS3QAcZ4pEFnSbrSh6Pvn8gPYWJ7Gg6SU/BfzgIW2C old-laptop\n"
)


@pytest.fixture(autouse=True)
def keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "authorized_keys"
    path.write_text(KEYS)
    # The OS user at the keyboard (getpass reads LOGNAME first): the same on every machine.
    monkeypatch.setenv("LOGNAME", "pat")
    monkeypatch.chdir(tmp_path)  # a relative path: the keys modal shows it the same every run
    monkeypatch.setenv(data.AUTHORIZED_KEYS_ENV, path.name)
    return path


async def seed(db: Database, me_role: str = "admin") -> None:
    """ada (admin), bob (editor, detroit), the OS user running the tests as `me` (`me_role`);
    detroit owns one account, another has no team."""
    detroit = await add_connection(db, "detroit-news")
    await add_connection(db, "loose")
    async with db.transaction() as session:
        await operators.add_operator(session, SYSTEM, "ada", "admin", os_user="ada-os")
        await operators.add_operator(session, SYSTEM, "bob", "editor")
        await operators.add_operator(session, SYSTEM, "me", me_role, os_user=audit.current_actor())
        await operators.add_team(session, SYSTEM, "chicago")
        await operators.add_team(session, SYSTEM, "detroit")
        await operators.add_member(session, SYSTEM, "detroit", "bob")
        await operators.set_connection_team(session, SYSTEM, detroit.id, "detroit")


async def audit_rows(db: Database) -> list[tuple[str, str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(
                AuditEntry.actor, AuditEntry.action, AuditEntry.entity, AuditEntry.entity_id
            ).order_by(AuditEntry.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all()]


async def opened(pilot: Pilot[Any]) -> OperatorsScreen:
    await pilot.app.open_screen("operators")  # type: ignore[attr-defined]
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, OperatorsScreen) and pilot.app.screen.loads >= 1,
        "the Operators screen",
    )
    screen = pilot.app.screen
    assert isinstance(screen, OperatorsScreen)
    return screen


def cells(screen: OperatorsScreen, table: str) -> list[list[str]]:
    widget = screen.query_one(f"#{table}", DataTable)
    return [[str(c) for c in widget.get_row_at(i)] for i in range(widget.row_count)]


async def test_it_lists_operators_teams_and_the_keys_that_act_as_them(
    test_settings: Settings, db: Database
) -> None:
    await seed(db)
    async with make_app(test_settings).run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        assert cells(screen, "operators") == [
            ["ada", "admin", "-", "ada-os", "ada@laptop"],
            ["bob", "editor", "detroit", "-", "bob@phone"],
            ["me", "admin", "-", audit.current_actor(), "-"],
        ]
        assert cells(screen, "teams") == [
            ["chicago", "-", "no accounts"],
            ["detroit", "bob", "#1 @detroit-news"],
        ]
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, KeysModal), "the keys")
        keys = pilot.app.screen.query_one("#keys", DataTable)
        rows = [[str(c) for c in keys.get_row_at(i)] for i in range(keys.row_count)]
        assert [r[:4] for r in rows] == [
            ["1", "ada@laptop", "ada", "edits by role"],
            ["2", "bob@phone", "bob", "read-only"],
            ["4", "wallboard", "(none: viewer)", "read-only, from 10.0.0.*"],
            ["5", "old-laptop", "gone", "refused: option 'command' is not supported"],
        ]
        detail = str(pilot.app.screen.query_one("#key-detail").render())
        assert detail.startswith("line 1 · SHA256:")


async def test_an_admin_adds_an_operator_changes_roles_and_teams_all_audited(
    test_settings: Settings, db: Database
) -> None:
    await seed(db)
    before = await audit_rows(db)
    async with make_app(test_settings).run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, OperatorFormModal), "form")
        await type_text(pilot, "bad name")
        await pilot.press("enter", "enter", "enter")  # refused as typed: the form stays open
        assert isinstance(pilot.app.screen, OperatorFormModal)
        assert any("name: letters" in m for m in notifications(pilot.app))  # type: ignore[arg-type]
        pilot.app.screen.query_one("#name", Input).value = "cleo"
        pilot.app.screen.query_one("#role", Input).value = "editor"
        await pilot.press("ctrl+s")
        screen = await wait_for_rows(pilot, 4)
        # cleo (row 3, by name) joins detroit, then becomes an admin.
        screen.query_one("#operators", DataTable).move_cursor(row=2)
        await pilot.press("m")
        await pilot.pause(0.05)
        await type_text(pilot, "detroit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: cells(screen, "operators")[2][2] == "detroit", "joined")
        await pilot.press("r")
        await pilot.pause(0.05)
        await pilot.press("a")
        await wait_until(pilot, lambda: cells(screen, "operators")[2][1] == "admin", "the role")
        await pilot.press("x")
        await pilot.pause(0.05)
        await type_text(pilot, "detroit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: cells(screen, "operators")[2][2] == "-", "left")
        await pilot.press("c")  # account 1 (the first listed) to chicago
        await pilot.pause(0.05)
        await pilot.press("tab")
        await type_text(pilot, "chicago")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "#1" in cells(screen, "teams")[0][2], "the account")
    assert (await audit_rows(db))[len(before) :] == [
        ("me", "add", "operator", "cleo"),
        ("me", "add_member", "team", "detroit"),
        ("me", "set_role", "operator", "cleo"),
        ("me", "remove_member", "team", "detroit"),
        ("me", "set_team", "connection", "1"),
    ]


async def wait_for_rows(pilot: Pilot[Any], count: int) -> OperatorsScreen:
    await wait_until(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, OperatorsScreen)
            and pilot.app.screen.query_one("#operators", DataTable).row_count == count
        ),
        f"{count} operators",
    )
    screen = pilot.app.screen
    assert isinstance(screen, OperatorsScreen)
    return screen


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_a_non_admin_is_refused_with_storages_message_and_nothing_is_written(
    test_settings: Settings, db: Database, role: str
) -> None:
    await seed(db, me_role=role)
    before = await audit_rows(db)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        assert "read-only: only admins edit" in str(screen.query_one("#status-line").render())
        for key, what in (("a", "add operators"), ("r", "change roles"), ("c", "assign")):
            await pilot.press(key)
            message = f"refused: me is {role}: cannot {what}"
            await wait_until(
                pilot, lambda m=message: any(m in n for n in notifications(app)), message
            )
            assert app.screen is screen  # no form opened
        # A screen that let the form through would meet the same refusal at the write.
        screen.view = screen.view and _as_admin(screen.view)
        await pilot.press("t")
        await pilot.pause(0.05)
        await type_text(pilot, "sneaky")
        await pilot.press("enter")
        message = f"not added: me is {role}: cannot add teams (needs admin)"
        await wait_until(pilot, lambda: any(message in n for n in notifications(app)), message)
    assert await audit_rows(db) == before
    async with db.session() as session:
        assert [t.name for t in await operators.list_team_details(session)] == [
            "chicago",
            "detroit",
        ]


def _as_admin(view: data.OperatorsView) -> data.OperatorsView:
    from dataclasses import replace

    return replace(view, is_admin=True)


@pytest.mark.parametrize("with_operators", [True, False])
async def test_a_read_only_console_is_a_viewer_in_storage(
    test_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, with_operators: bool
) -> None:
    """`--read-only` maps to the viewer role as a read-only SSH key does: even where a screen
    forgot to refuse (here: the refusal switched off), storage refuses the edit."""
    if with_operators:
        await seed(db, me_role="admin")
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings, read_only=True)
    monkeypatch.setattr(app, "refuse_read_only", lambda verb: False)
    async with app.run_test(size=SIZE) as pilot:
        if with_operators:
            await wait_until(pilot, lambda: app.sub_title.endswith("· me (viewer)"), "header")
        await wait_until(pilot, lambda: getattr(app.screen, "loads", 0) >= 1, "the Regions screen")
        await pilot.press("space")  # pause DETROIT_METRO
        who = "me" if with_operators else audit.current_actor()
        message = f"{who} is viewer: cannot edit regions"
        await wait_until(pilot, lambda: any(message in n for n in notifications(app)), message)
    region = await get_region(db, "DETROIT_METRO")
    assert region is not None and region.active
    # The same OS user without --read-only is the admin it maps to (nothing leaked out of the
    # read-only app's task).
    async with db.transaction() as session:
        assert (await acting(session)).role is Role.ADMIN


def test_the_screen_reads_keys_as_the_ssh_server_judges_them(keys_file: Path) -> None:
    rows, error = data.read_keys(keys_file)
    assert error is None
    lines = load_authorized_keys(keys_file)
    for row in rows:
        public = next(line for line in KEYS.splitlines() if line.endswith(row.name))
        blob = public.split()[-3:-1]
        key = asyncssh.import_public_key(" ".join(blob))
        entry = match_key(lines, key, "", "10.0.0.7")  # inside the wallboard's from=
        if row.problem is not None:
            assert entry is None or entry.line_no != row.line_no
            continue
        assert entry is not None and entry.line_no == row.line_no
        assert (entry.operator, entry.read_only) == (row.operator, row.read_only)
    assert data.read_keys(keys_file.with_name("absent")) == ((), None)


# Snapshots.


def snapshot_app(settings: Settings) -> CreatordeckApp:
    from tests.console.test_app import frozen_clock

    async def go() -> None:
        db = Database(settings)
        try:
            await seed(db)
        finally:
            await db.dispose()

    asyncio.run(go())
    return CreatordeckApp(settings, clock=frozen_clock, landing="operators")


MODALS = {  # keys from the screen (the third operator, "me", selected), a widget it shows
    "add_operator": (("a",), "#operatorform-dialog"),
    "role": (("r",), "#role-dialog"),
    "add_team": (("t",), "#teamform-dialog"),
    "join": (("m",), "#pickteam-dialog"),
    "assign": (("c",), "#assign-dialog"),
    "keys": (("k",), "#keys-dialog"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_screen_snapshot(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(test_settings), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("modal", list(MODALS))
def test_modal_snapshot(snap_compare: Any, test_settings: Settings, modal: str, size: Any) -> None:
    keys, shows = MODALS[modal]

    async def open_modal(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("down", "down", *keys)
        await _until(pilot, lambda: bool(pilot.app.screen.query(shows)), modal)
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app(test_settings), terminal_size=size, run_before=open_modal)
