"""Platform tokens at rest: Fernet with the key from ENCRYPTION_KEY, unreadable without it."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text

from storage.crypto import EncryptionKeyError, TokenCipher, TokenUnreadable, cipher
from storage.database import Database
from storage.queries import publishing
from storage.settings import Settings
from tests.support.publishing import KEY, add_connection


def test_round_trip_and_fresh_ciphertext_each_time() -> None:
    box = TokenCipher(KEY)
    first, second = box.encrypt("secret-token"), box.encrypt("secret-token")
    assert first != second and "secret-token" not in first
    assert box.decrypt(first) == box.decrypt(second) == "secret-token"


def test_missing_key_is_a_clear_error(test_settings: Settings) -> None:
    bare = test_settings.model_copy(update={"encryption_key": None})
    with pytest.raises(EncryptionKeyError, match=r"ENCRYPTION_KEY is not set.*generate one"):
        cipher(bare)


def test_malformed_key_is_a_clear_error() -> None:
    with pytest.raises(EncryptionKeyError, match="part 1 is not a Fernet key"):
        TokenCipher("not-a-key")
    with pytest.raises(EncryptionKeyError, match="empty"):
        TokenCipher(" , ")


def test_wrong_key_cannot_read_and_says_what_to_do() -> None:
    stored = TokenCipher(KEY).encrypt("secret-token")
    with pytest.raises(TokenUnreadable, match="keep the old key after the new one"):
        TokenCipher(Fernet.generate_key().decode()).decrypt(stored)


def test_rotation_new_key_first_old_key_still_reads() -> None:
    old = TokenCipher(KEY)
    stored = old.encrypt("secret-token")
    new_key = Fernet.generate_key().decode()
    both = TokenCipher(f"{new_key},{KEY}")
    assert both.decrypt(stored) == "secret-token"
    rotated = both.rotate(stored)
    assert TokenCipher(new_key).decrypt(rotated) == "secret-token"


async def test_tokens_in_the_database_are_unreadable_without_the_key(
    db: Database, test_settings: Settings
) -> None:
    conn = await add_connection(db, "carol", token="tok-PLAINTEXT-123", refresh_token="rf-SECRET")
    async with db.engine.connect() as raw:
        row = (
            await raw.execute(
                text(
                    "SELECT token_encrypted, refresh_token_encrypted FROM connection WHERE id = :id"
                ),
                {"id": conn.id},
            )
        ).one()
        dump = await raw.execute(text("SELECT row_to_json(c)::text FROM connection c"))
        everything = " ".join(r[0] for r in dump)
    assert "PLAINTEXT" not in everything and "SECRET" not in everything
    with pytest.raises(TokenUnreadable):
        TokenCipher(Fernet.generate_key().decode()).decrypt(row.token_encrypted)
    keyed = test_settings.model_copy(update={"encryption_key": SecretStr(KEY)})
    assert cipher(keyed).decrypt(row.token_encrypted) == "tok-PLAINTEXT-123"
    assert cipher(keyed).decrypt(row.refresh_token_encrypted) == "rf-SECRET"


def test_connection_input_never_shows_the_token() -> None:
    data = publishing.ConnectionInput(
        platform="x", account_id="1", display_name="@a", token="tok-SHOW-ME"
    )
    assert "tok-SHOW-ME" not in repr(data) and "tok-SHOW-ME" not in str(data)
