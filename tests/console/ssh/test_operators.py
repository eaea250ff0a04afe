"""SSH keys map to operators (`operator="name"` in the authorised keys file); a read-only key
acts as a viewer whatever its operator, checked where edits are written."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from console.data import acting
from console.ssh import server as ssh
from console.ssh.authorized_keys import load_authorized_keys, match_key
from console.ssh.session import Session
from storage.database import Database
from storage.models import Role
from storage.permissions import Operator, PermissionDenied
from storage.queries import operators, regions
from storage.settings import Settings


def _entry(tmp_path: Path, options: str) -> object:
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode().strip()
    path = tmp_path / "authorized_keys"
    path.write_text(f"{options}{public} pat@ops\n")
    return match_key(load_authorized_keys(path), key.convert_to_public(), "127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("options", "operator", "read_only"),
    [
        ("", None, False),
        ('operator="alice" ', "alice", False),
        ('OPERATOR="alice",read-only ', "alice", True),
        ('operator="alice",operator="bob" ', "refused", False),  # which one? refused
    ],
)
def test_the_operator_option_maps_a_key_and_is_never_ambiguous(
    tmp_path: Path, options: str, operator: str, read_only: bool
) -> None:
    entry = _entry(tmp_path, options)
    if operator == "refused":
        assert entry is None
        return
    assert entry is not None
    assert (entry.operator, entry.read_only) == (operator, read_only)  # type: ignore[attr-defined]


def test_the_console_process_learns_its_key_operator_and_read_only_from_its_environment(
    test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ssh.console_env(test_settings, "xterm", "ssh:pat@ops", "this SSH key is marked", "ada")
    session = Session.from_env(env)
    assert (session.ssh_key, session.operator, session.ssh_read_only) == (
        "ssh:pat@ops",
        "ada",
        True,
    )
    for name in ("CREATORDECK_SSH_KEY", "CREATORDECK_SSH_OPERATOR", "USER"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("CREATORDECK_READ_ONLY_REASON", "this SSH key is marked")
    assert acting.current_actor() == operators.Identity(
        "ssh:pat@ops", operator="ada", read_only=True
    )
    # A local console never claims an operator from the environment.
    assert Session.from_env({"CREATORDECK_SSH_OPERATOR": "ada"}).operator is None


async def test_a_read_only_key_of_an_admin_acts_as_viewer_in_storage(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction() as session:
        await operators.add_operator(session, "test", "ada", "admin")
    monkeypatch.setenv("CREATORDECK_SSH_KEY", "ssh:phone")
    monkeypatch.setenv("CREATORDECK_SSH_OPERATOR", "ada")
    monkeypatch.setenv("CREATORDECK_READ_ONLY_REASON", "this SSH key is marked read-only")
    with pytest.raises(PermissionDenied, match="ada is viewer: cannot edit regions"):
        async with db.transaction() as session:
            await regions.delete_region(session, "R1", actor=await acting.acting(session))
    monkeypatch.delenv("CREATORDECK_READ_ONLY_REASON")
    async with db.transaction() as session:
        assert await acting.acting(session) == Operator("ada", Role.ADMIN)
