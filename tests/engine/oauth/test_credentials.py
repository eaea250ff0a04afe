"""Tracking credentials from the encrypted store as well as from the environment: stored by the
CLI (never as an argument), adopted by the engine at start where the environment is silent,
rotated with the tokens, refused by name when unknown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from engine.platforms import stored_credentials
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import AuditEntry, TrackingCredential
from storage.queries import tracking_credentials
from storage.queries.key_check import rotate_tokens
from storage.settings import Settings
from tests.engine.oauth.test_cli import start_cli
from tests.support.publishing import KEY, pub_settings, rt

__all__ = ["pub_settings", "rt"]
NAMES = ("YOUTUBE_API_KEY", "X_BEARER_TOKEN", "INSTAGRAM_ACCESS_TOKEN", "INSTAGRAM_USER_ID")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)  # restored (removed) after the test
    yield monkeypatch


async def stored(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = await session.scalars(select(TrackingCredential))
        return {row.name: row.value_encrypted for row in rows}


async def test_the_cli_stores_a_credential_encrypted_and_lists_names_only(
    db: Database, test_settings: Settings
) -> None:
    proc = await start_cli(
        test_settings,
        "connections",
        "credential",
        "set",
        "youtube_api_key",
        CREATORDECK_SECRET="AIza-secret-value",
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert "YOUTUBE_API_KEY stored encrypted" in err.decode()
    values = await stored(db)
    assert "AIza-secret-value" not in values["youtube_api_key"]
    assert TokenCipher(KEY).decrypt(values["youtube_api_key"]) == "AIza-secret-value"
    proc = await start_cli(test_settings, "connections", "credential", "list")
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert out.decode().split() == ["YOUTUBE_API_KEY"]
    async with db.session() as session:
        (entry,) = (await session.scalars(select(AuditEntry))).all()
    assert entry.action == "tracking_credential.set" and entry.after is None
    proc = await start_cli(test_settings, "connections", "credential", "set", "password")
    _, err = await asyncio.wait_for(proc.communicate(b"x\n"), timeout=120)
    assert proc.returncode == 1 and "'password' is not a tracking credential" in err.decode()


async def test_the_engine_adopts_stored_credentials_the_environment_leaves_unset(
    rt: Runtime, clean_env: pytest.MonkeyPatch
) -> None:
    box = TokenCipher(KEY)
    async with rt.db.transaction() as session:
        for name, value in [("youtube_api_key", "yt-stored"), ("x_bearer_token", "x-stored")]:
            await tracking_credentials.set_credential(session, box, name, value, "test")
    clean_env.setenv("X_BEARER_TOKEN", "x-from-env")
    rt.settings = rt.settings.replace(tracking={"x_bearer_token": SecretStr("x-from-env")})
    assert await stored_credentials.adopt(rt) == ["youtube_api_key"]
    tracking = rt.settings.tracking
    assert tracking.youtube_api_key is not None
    assert tracking.youtube_api_key.get_secret_value() == "yt-stored"
    assert tracking.x_bearer_token is not None
    assert tracking.x_bearer_token.get_secret_value() == "x-from-env"  # the environment wins


async def test_rotate_key_rotates_stored_credentials_too(db: Database) -> None:
    old, new = TokenCipher(KEY), Fernet.generate_key().decode()
    async with db.transaction() as session:
        await tracking_credentials.set_credential(session, old, "x_bearer_token", "bearer", "t")
    async with db.transaction() as session:
        await rotate_tokens(session, TokenCipher(f"{new},{KEY}"), "t")
    assert TokenCipher(new).decrypt((await stored(db))["x_bearer_token"]) == "bearer"
