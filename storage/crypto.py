"""Platform tokens at rest: Fernet ciphertext, with the key(s) from ENCRYPTION_KEY.

ENCRYPTION_KEY holds one Fernet key, or several separated by commas to rotate: the first
encrypts, any of them decrypts. Generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from storage.settings import Settings
from storage.user_error import UserError

GENERATE_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


UNREADABLE = (
    "a stored token does not decrypt with ENCRYPTION_KEY (was the key changed? keep the old key "
    "after the new one, comma-separated, and run `creatordeck connections rotate-key`)"
)


class EncryptionKeyError(RuntimeError, UserError):
    """ENCRYPTION_KEY is missing or is not a Fernet key."""

    title = "bad encryption key"


class TokenUnreadable(RuntimeError, UserError):
    """A stored token does not decrypt with any configured key (wrong or rotated-away key)."""

    title = "token unreadable"


class TokenCipher:
    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise EncryptionKeyError(f"ENCRYPTION_KEY is empty; {GENERATE_HINT}")
        fernets = []
        for number, part in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(part.encode()))
            except ValueError as exc:
                raise EncryptionKeyError(
                    f"ENCRYPTION_KEY part {number} is not a Fernet key (32 url-safe base64 "
                    f"bytes); {GENERATE_HINT}"
                ) from exc
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenUnreadable(UNREADABLE) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first key (TokenUnreadable when no key decrypts it)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenUnreadable(UNREADABLE) from exc


def cipher(settings: Settings) -> TokenCipher:
    """The cipher of this deployment; a clear error when ENCRYPTION_KEY is not set."""
    if settings.encryption_key is None:
        raise EncryptionKeyError(
            f"ENCRYPTION_KEY is not set: platform tokens cannot be stored or read; {GENERATE_HINT}"
        )
    return TokenCipher(settings.encryption_key.get_secret_value())
