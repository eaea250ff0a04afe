"""The stored key check: is ENCRYPTION_KEY the key the platform tokens were saved with?

A wrong key must be caught where it is configured, not discovered by publishing (which would
blame the accounts). So the database keeps one canary, a known text Fernet-encrypted like the
tokens (`key_check`, at most one row). Invariants:

- The canary is written at first use only by a key that is known to be right: no token stored
  yet, or at least one stored token decrypts with it (Fernet is authenticated, so a token that
  decrypts was encrypted with that key). A wrong key never writes the canary.
- `rotate_tokens` re-encrypts every access and refresh token and the canary under the first key
  of ENCRYPTION_KEY in the caller's transaction, after every one of them decrypted: it writes
  all or nothing. It locks `connection` and `key_check` against writers (readers go on) for as
  long as it runs: a decrypt + encrypt per token and a batched UPDATE per 1,000 connections,
  about 2.5 s for 10,000 connections (20,000 tokens) on a loaded 2-core machine.

Costs: `check_key` is one primary-key read and one decrypt; at first use it also reads up to
`SAMPLE` tokens. No function here commits; `startup_check` opens its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.crypto import EncryptionKeyError, TokenCipher, TokenUnreadable, cipher
from storage.database import Database
from storage.models import Connection, ConnectionStatus, KeyCheck, Role
from storage.permissions import Actor
from storage.queries import audit, tracking_credentials
from storage.settings import EnvMode, Settings
from storage.user_error import UserError

CANARY = "creatordeck ENCRYPTION_KEY check, v1"
SAMPLE = 20  # tokens tried at first use: one that decrypts proves the key
ROTATE_BATCH = 1000

WRONG_KEY = (
    "ENCRYPTION_KEY cannot read the stored key check: it is not the key the platform tokens in "
    "this database were encrypted with. Set ENCRYPTION_KEY to that key; to change keys, set "
    "ENCRYPTION_KEY=new,old and run `creatordeck connections rotate-key`."
)
NO_KEY = (
    "ENCRYPTION_KEY is not set, but this database holds encrypted platform tokens: set "
    "ENCRYPTION_KEY to the key they were saved with."
)
REFUSED = " Refusing to start under ENV=prod."


class KeyState(StrEnum):
    OK = "ok"  # the key reads the canary
    FIRST_USE = "first_use"  # the canary was written now, under the first key
    UNUSED = "unused"  # no key, and nothing stored needs one
    NOT_SET = "not_set"  # no key, but tokens or a canary are stored
    WRONG = "wrong"  # the key cannot read the canary (or any sampled token), or is malformed
    UNCHECKED = "unchecked"  # the database could not be asked


@dataclass(frozen=True, slots=True)
class KeyStatus:
    state: KeyState
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state in (KeyState.OK, KeyState.FIRST_USE, KeyState.UNUSED)


class KeyCheckFailed(RuntimeError, UserError):
    """ENV=prod and ENCRYPTION_KEY cannot read what is stored: the process must not start."""

    title = "encryption key check failed"


class RotationRefused(RuntimeError, UserError):
    """Some stored token or the canary decrypts with none of the given keys; nothing written."""

    title = "key rotation refused"


@dataclass(frozen=True, slots=True)
class Rotation:
    connections: int
    tokens: int  # access + refresh tokens re-encrypted (the canary not counted)
    forgotten: int = 0  # accounts marked for reconnection (--forget-unreadable only)


def _reads(box: TokenCipher, ciphertext: str) -> bool:
    try:
        box.decrypt(ciphertext)
    except TokenUnreadable:
        return False
    return True


def _canary_reads(box: TokenCipher, canary: str) -> bool:
    try:
        return box.decrypt(canary) == CANARY
    except TokenUnreadable:
        return False


async def check_key(session: AsyncSession, box: TokenCipher | None) -> KeyStatus:
    """Whether `box` reads the stored canary; writes the canary at first use. Never commits."""
    canary = await session.scalar(select(KeyCheck.canary).where(KeyCheck.id == 1))
    if canary is None:
        sample = list(
            await session.scalars(
                select(Connection.token_encrypted)
                .order_by(Connection.updated_at.desc(), Connection.id.desc())
                .limit(SAMPLE)
            )
        )
        if box is None:
            return KeyStatus(KeyState.NOT_SET, NO_KEY) if sample else KeyStatus(KeyState.UNUSED)
        if sample and not any(_reads(box, token) for token in sample):
            return KeyStatus(KeyState.WRONG, WRONG_KEY)
        written = await session.scalar(
            insert(KeyCheck)
            .values(id=1, canary=box.encrypt(CANARY))
            .on_conflict_do_nothing()
            .returning(KeyCheck.id)
        )
        if written is not None:
            return KeyStatus(KeyState.FIRST_USE)
        # Another process wrote it between our read and our insert: check against theirs.
        canary = await session.scalar(select(KeyCheck.canary).where(KeyCheck.id == 1))
        assert canary is not None
    if box is None:
        return KeyStatus(KeyState.NOT_SET, NO_KEY)
    if _canary_reads(box, canary):
        return KeyStatus(KeyState.OK)
    return KeyStatus(KeyState.WRONG, WRONG_KEY)


async def startup_check(db: Database, settings: Settings) -> KeyStatus:
    """The check a process runs before it starts: under ENV=prod, a key that cannot read what
    is stored (or a malformed key) raises KeyCheckFailed and the caller exits non-zero; in
    dev and test the caller logs the status's message and publishing defers."""
    status: KeyStatus | None = None
    box: TokenCipher | None = None
    try:
        box = cipher(settings)
    except EncryptionKeyError as exc:
        if settings.encryption_key is not None:  # set, but not a Fernet key
            status = KeyStatus(KeyState.WRONG, str(exc))
    if status is None:
        try:
            async with db.transaction() as session:
                status = await check_key(session, box)
        except (OSError, SQLAlchemyError) as exc:
            status = KeyStatus(
                KeyState.UNCHECKED,
                "could not check ENCRYPTION_KEY against the database "
                f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}); "
                "is it reachable and migrated (`creatordeck migrate`)?",
            )
    if not status.ok and settings.env == EnvMode.PROD:
        raise KeyCheckFailed(status.message + REFUSED)
    return status


async def rotate_tokens(
    session: AsyncSession, box: TokenCipher, actor: Actor, forget_unreadable: bool = False
) -> Rotation:
    """Re-encrypt every stored token and the canary under `box`'s first key. Never commits.

    RotationRefused (nothing written) when a token or the canary decrypts with no key of `box`.
    With `forget_unreadable` (the old key is lost), such accounts are marked needs-reauth
    instead, their tokens replaced by an empty one, and the canary is written anew.
    """
    permissions.require(actor, Role.ADMIN, "rotate keys")
    # Writers wait (a token saved under the old key mid-rotation would be lost); readers go on.
    await session.execute(text("LOCK TABLE connection, key_check IN SHARE ROW EXCLUSIVE MODE"))
    rows = (
        await session.execute(
            select(
                Connection.id, Connection.token_encrypted, Connection.refresh_token_encrypted
            ).order_by(Connection.id)
        )
    ).all()
    rotated: list[dict[str, object]] = []
    unreadable: list[int] = []
    tokens = 0
    for row in rows:
        try:
            values: dict[str, object] = {
                "id": row.id,
                "token_encrypted": box.rotate(row.token_encrypted),
                "refresh_token_encrypted": (
                    box.rotate(row.refresh_token_encrypted)
                    if row.refresh_token_encrypted is not None
                    else None
                ),
            }
        except TokenUnreadable:
            unreadable.append(row.id)
            continue
        tokens += 1 + (row.refresh_token_encrypted is not None)
        rotated.append(values)
    canary = await session.scalar(select(KeyCheck.canary).where(KeyCheck.id == 1))
    canary_lost = canary is not None and not _canary_reads(box, canary)
    stored = await tracking_credentials.rotation(session, box)  # YOUTUBE_API_KEY & co
    if (unreadable or canary_lost or stored.unreadable) and not forget_unreadable:
        raise RotationRefused(_refusal(unreadable, canary_lost, stored.unreadable))
    tokens += await tracking_credentials.write_rotation(session, stored)
    for start in range(0, len(rotated), ROTATE_BATCH):
        await session.execute(update(Connection), rotated[start : start + ROTATE_BATCH])
    if unreadable:
        await session.execute(
            update(Connection)
            .where(Connection.id.in_(unreadable))
            .values(
                token_encrypted=box.encrypt(""),
                refresh_token_encrypted=None,
                status=ConnectionStatus.NEEDS_REAUTH.value,
                status_reason="its token was encrypted with a lost ENCRYPTION_KEY; reconnect it",
            )
        )
    fresh = box.encrypt(CANARY)
    await session.execute(
        insert(KeyCheck)
        .values(id=1, canary=fresh, rotated_at=func.now())
        .on_conflict_do_update(
            index_elements=[KeyCheck.id], set_={"canary": fresh, "rotated_at": func.now()}
        )
    )
    audit.record(
        session,
        actor=actor,
        action="connection.rotate_key",
        entity="connection",
        entity_id="*",
        before=None,
        after={"rotated": len(rotated), "tokens": tokens, "forgotten": unreadable},
    )
    return Rotation(connections=len(rotated), tokens=tokens, forgotten=len(unreadable))


def _refusal(unreadable: list[int], canary_lost: bool, credentials: Sequence[str] = ()) -> str:
    what = [f"the tracking credential(s) {', '.join(credentials)}"] if credentials else []
    if unreadable:
        shown = ", ".join(str(i) for i in unreadable[:20])
        more = f" and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        what.append(f"the tokens of connection(s) {shown}{more}")
    if canary_lost:
        what.append("the stored key check")
    return (
        f"nothing rotated: {' and '.join(what)} decrypt with no key in ENCRYPTION_KEY. Give the "
        "key they were saved with as well (ENCRYPTION_KEY=new,old); if that key is lost, "
        "--forget-unreadable marks those accounts for reconnection and keeps the rest."
    )
