"""The stored key check and `connections rotate-key`: a wrong ENCRYPTION_KEY is refused at start
under ENV=prod (engine and console exit non-zero and say why), logged loudly elsewhere; rotation
re-encrypts every token under the new key in one transaction, or writes nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, text

from storage.crypto import TokenCipher, TokenUnreadable
from storage.database import Database
from storage.models import AuditEntry, Connection, KeyCheck
from storage.queries.key_check import (
    CANARY,
    KeyCheckFailed,
    KeyState,
    Rotation,
    RotationRefused,
    check_key,
    rotate_tokens,
    startup_check,
)
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.process import EngineProcess
from tests.support.publishing import KEY, add_connection


def new_key() -> str:
    return Fernet.generate_key().decode()


async def _check(db: Database, keys: str | None) -> KeyState:
    async with db.transaction() as session:
        status = await check_key(session, TokenCipher(keys) if keys else None)
    return status.state


async def _canary(db: Database) -> str | None:
    async with db.session() as session:
        return await session.scalar(select(KeyCheck.canary))


async def _stored(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, token_encrypted, refresh_token_encrypted, status, updated_at "
                "FROM connection ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=engine_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, settings, *args, **env)


# --- the check ------------------------------------------------------------------------------


async def test_canary_is_written_at_first_use_and_read_after(db: Database) -> None:
    assert await _check(db, None) == KeyState.UNUSED  # no key, nothing stored: nothing to check
    assert await _canary(db) is None
    assert await _check(db, KEY) == KeyState.FIRST_USE
    canary = await _canary(db)
    assert canary and CANARY not in canary and TokenCipher(KEY).decrypt(canary) == CANARY
    assert await _check(db, KEY) == KeyState.OK
    assert await _check(db, f"{new_key()},{KEY}") == KeyState.OK  # rotating: old key still reads
    assert await _check(db, new_key()) == KeyState.WRONG
    assert await _check(db, None) == KeyState.NOT_SET
    assert await _canary(db) == canary


async def test_first_use_with_tokens_stored_trusts_only_a_key_that_reads_them(
    db: Database,
) -> None:
    """A deployment from before the check: its tokens decide which key may write the canary."""
    await add_connection(db, "alice")
    assert await _check(db, new_key()) == KeyState.WRONG
    assert await _canary(db) is None  # a wrong key never writes the canary
    assert await _check(db, None) == KeyState.NOT_SET
    assert await _check(db, KEY) == KeyState.FIRST_USE
    assert await _check(db, KEY) == KeyState.OK


async def test_prod_refuses_a_wrong_missing_or_malformed_key_dev_only_reports_it(
    db: Database, test_settings: Settings
) -> None:
    assert await _check(db, KEY) == KeyState.FIRST_USE
    prod = test_settings.model_copy(update={"env": "prod"})
    for key, words in [
        (new_key(), "ENCRYPTION_KEY cannot read the stored key check"),
        (None, "ENCRYPTION_KEY is not set"),
        ("not-a-key", "ENCRYPTION_KEY part 1 is not a Fernet key"),
    ]:
        secret = SecretStr(key) if key else None
        with pytest.raises(KeyCheckFailed, match="Refusing to start under ENV=prod") as refused:
            await startup_check(db, prod.model_copy(update={"encryption_key": secret}))
        assert words in str(refused.value)
        dev = test_settings.model_copy(update={"encryption_key": secret})
        status = await startup_check(db, dev)
        assert not status.ok and words in status.message
    ok = await startup_check(db, prod.model_copy(update={"encryption_key": SecretStr(KEY)}))
    assert ok.state == KeyState.OK


async def test_prod_engine_and_console_refuse_to_start_with_the_wrong_key(
    db: Database, test_settings: Settings
) -> None:
    assert await _check(db, KEY) == KeyState.FIRST_USE
    wrong = new_key()
    for command in (["engine"], ["console"]):
        done = await cli(test_settings, *command, ENV="prod", ENCRYPTION_KEY=wrong)
        assert done.returncode == 1, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert "ENCRYPTION_KEY cannot read the stored key check" in done.stderr
        assert "ENCRYPTION_KEY=new,old" in done.stderr and "ENV=prod" in done.stderr
        assert wrong not in done.stdout + done.stderr


async def test_dev_engine_starts_with_the_wrong_key_and_says_so_loudly(
    db: Database, test_settings: Settings, tmp_path: Path
) -> None:
    assert await _check(db, KEY) == KeyState.FIRST_USE
    engine = EngineProcess(test_settings, tmp_path / "engine.log", ENCRYPTION_KEY=new_key())
    try:
        await engine.wait_for("scheduler.reconciled", 60)
        (event,) = [e for e in engine.events() if e["event"] == "engine.encryption_key_unusable"]
        assert event["level"] == "error" and "ENCRYPTION_KEY cannot read" in event["error"]
    finally:
        engine.stop()


async def test_connections_add_refuses_to_save_a_token_under_the_wrong_key(
    db: Database, test_settings: Settings
) -> None:
    await add_connection(db, "alice")
    done = await cli(
        test_settings,
        *("connections", "add", "--platform", "mock", "--account-id", "bob", "--name", "@bob"),
        ENCRYPTION_KEY=new_key(),
        CREATORDECK_TOKEN="tok-bob",
    )
    assert done.returncode == 1 and "token not saved: ENCRYPTION_KEY cannot read" in done.stderr
    assert [row[0] for row in await _stored(db)] == [1]


# --- rotation -------------------------------------------------------------------------------


async def test_rotate_key_round_trip_new_key_alone_reads_everything(
    db: Database, test_settings: Settings
) -> None:
    alice = await add_connection(db, "alice", token="tok-alice", refresh_token="rf-alice")
    bob = await add_connection(db, "bob", token="tok-bob")
    assert await _check(db, KEY) == KeyState.FIRST_USE
    new = new_key()

    done = await cli(test_settings, "connections", "rotate-key", ENCRYPTION_KEY=f"{new},{KEY}")

    assert done.returncode == 0, done.stderr
    assert "rotated 3 token(s) of 2 connection(s)" in done.stderr
    fresh = TokenCipher(new)
    rows = {row[0]: row for row in await _stored(db)}
    assert fresh.decrypt(rows[alice.id][1]) == "tok-alice"
    assert fresh.decrypt(rows[alice.id][2]) == "rf-alice"
    assert fresh.decrypt(rows[bob.id][1]) == "tok-bob" and rows[bob.id][2] is None
    with pytest.raises(TokenUnreadable):
        TokenCipher(KEY).decrypt(rows[alice.id][1])
    assert await _check(db, new) == KeyState.OK  # the canary moved too
    assert await _check(db, KEY) == KeyState.WRONG
    prod = test_settings.model_copy(update={"env": "prod", "encryption_key": SecretStr(new)})
    assert (await startup_check(db, prod)).state == KeyState.OK


async def test_rotate_key_refuses_when_a_token_is_unreadable_and_changes_nothing(
    db: Database, test_settings: Settings
) -> None:
    await add_connection(db, "alice", refresh_token="rf-alice")
    stranger = Fernet.generate_key().decode()
    async with db.transaction() as session:
        from storage.queries import publishing

        mallory = await publishing.save_connection(
            session,
            TokenCipher(stranger),
            publishing.ConnectionInput(
                platform="mock", account_id="mallory", display_name="@mallory", token="tok-m"
            ),
            actor="test",
        )
    assert await _check(db, KEY) == KeyState.FIRST_USE
    before, canary = await _stored(db), await _canary(db)

    done = await cli(
        test_settings, "connections", "rotate-key", ENCRYPTION_KEY=f"{new_key()},{KEY}"
    )

    assert done.returncode == 1
    assert f"nothing rotated: the tokens of connection(s) {mallory.id} decrypt" in done.stderr
    assert await _stored(db) == before and await _canary(db) == canary
    async with db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert "connection.rotate_key" not in actions


async def test_rotate_with_a_lost_key_can_forget_the_unreadable_accounts(db: Database) -> None:
    alice = await add_connection(db, "alice", token="tok-alice")
    await add_connection(db, "mallory")
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE connection SET token_encrypted = :t WHERE account_id = 'mallory'"),
            {"t": TokenCipher(new_key()).encrypt("tok-lost")},
        )
    new = new_key()
    both = TokenCipher(f"{new},{KEY}")
    with pytest.raises(RotationRefused, match="--forget-unreadable"):
        async with db.transaction() as session:
            await rotate_tokens(session, both, "test")
    async with db.transaction() as session:
        done = await rotate_tokens(session, both, "test", forget_unreadable=True)
    assert done == Rotation(connections=1, tokens=1, forgotten=1)
    async with db.session() as session:
        rows = {c.account_id: c for c in await session.scalars(select(Connection))}
    assert rows["alice"].status == "ok" and rows["alice"].id == alice.id
    assert TokenCipher(new).decrypt(rows["alice"].token_encrypted) == "tok-alice"
    assert rows["mallory"].status == "needs_reauth"
    assert rows["mallory"].status_reason and "lost ENCRYPTION_KEY" in rows["mallory"].status_reason
    assert await _check(db, new) == KeyState.OK
