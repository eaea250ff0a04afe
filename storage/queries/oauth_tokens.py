"""Connections' OAuth tokens: save a connected account, find tokens due for a refresh, lock one
connection for its refresh, write the refreshed tokens, mark needs-reauth. Never commits.

The refresh rule (engine.oauth.refresh): the connection's row lock (`lock_for_refresh`) is held
from before the refresh request until the new tokens are written, in one transaction the caller
owns. Tokens are Fernet ciphertext (storage.crypto); plaintext never reaches a statement's
logged parameters because it is encrypted before the statement is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.crypto import TokenCipher
from storage.models import Connection, ConnectionStatus
from storage.permissions import Actor
from storage.queries import audit


@dataclass(frozen=True, slots=True)
class RefreshCandidate:
    connection_id: int
    platform: str
    expires_at: datetime
    issued_at: datetime  # when the current access token was written


@dataclass(frozen=True, slots=True)
class NewTokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scopes: str | None

    def __repr__(self) -> str:  # never the tokens
        return f"NewTokens(expires_at={self.expires_at!r}, scopes={self.scopes!r})"


async def save_connected(
    session: AsyncSession,
    cipher: TokenCipher,
    *,
    platform: str,
    account_id: str,
    display_name: str,
    tokens: NewTokens,
    actor: Actor,
) -> int:
    """Add the account or replace its tokens (a reconnect clears needs-reauth). Audited."""
    await permissions.require_account(session, actor, platform, account_id, "connect accounts")
    values = {
        "platform": platform,
        "account_id": account_id,
        "display_name": display_name,
        "token_encrypted": cipher.encrypt(tokens.access_token),
        "refresh_token_encrypted": (
            cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None
        ),
        "expires_at": tokens.expires_at,
        "scopes": tokens.scopes,
        "status": ConnectionStatus.OK.value,
        "status_reason": None,
    }
    stmt = insert(Connection).values(**values, refreshed_at=func.now())
    upsert = stmt.on_conflict_do_update(
        constraint="uq_connection_account",
        set_={
            **{k: stmt.excluded[k] for k in values if k != "platform"},
            "token_generation": Connection.token_generation + 1,
            "refreshed_at": func.now(),
            "updated_at": func.now(),
        },
    ).returning(Connection.id)
    connection_id = int((await session.execute(upsert)).scalar_one())
    audit.record(
        session,
        actor=actor,
        action="connection.connect",
        entity="connection",
        entity_id=str(connection_id),
        before=None,
        after={
            "platform": platform,
            "account_id": account_id,
            "scopes": tokens.scopes,
            "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
            "refreshable": tokens.refresh_token is not None,
        },
    )
    return connection_id


async def refresh_candidates(
    session: AsyncSession, horizon: datetime, limit: int = 500
) -> list[RefreshCandidate]:
    """Refreshable connections (ok, with a refresh token) whose token expires before `horizon`,
    soonest first (the partial index ix_connection_refresh_due)."""
    rows = await session.execute(
        select(
            Connection.id,
            Connection.platform,
            Connection.expires_at,
            func.coalesce(Connection.refreshed_at, Connection.updated_at),
        )
        .where(
            Connection.refresh_token_encrypted.is_not(None),
            Connection.status == ConnectionStatus.OK.value,
            Connection.expires_at <= horizon,
        )
        .order_by(Connection.expires_at)
        .limit(limit)
    )
    return [RefreshCandidate(int(i), str(p), e or horizon, t) for i, p, e, t in rows.all()]


async def lock_for_refresh(
    session: AsyncSession, connection_id: int, *, skip_locked: bool
) -> Connection | None:
    """The connection, row-locked until the caller's transaction ends; None when it is gone or
    (with `skip_locked`) another transaction holds it: another refresher is at work."""
    stmt = select(Connection).where(Connection.id == connection_id)
    stmt = stmt.with_for_update(skip_locked=skip_locked)
    found: Connection | None = await session.scalar(stmt.execution_options(populate_existing=True))
    return found


async def write_tokens(
    session: AsyncSession, cipher: TokenCipher, connection_id: int, tokens: NewTokens
) -> int:
    """Store refreshed tokens (the refresh token as given: the rotated one, or the same);
    returns the connection's new token generation."""
    generation = await session.scalar(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(
            token_encrypted=cipher.encrypt(tokens.access_token),
            refresh_token_encrypted=(
                cipher.encrypt(tokens.refresh_token)
                if tokens.refresh_token
                else Connection.refresh_token_encrypted
            ),
            expires_at=tokens.expires_at,
            scopes=func.coalesce(tokens.scopes, Connection.scopes),
            status=ConnectionStatus.OK.value,
            status_reason=None,
            token_generation=Connection.token_generation + 1,
            refreshed_at=func.now(),
        )
        .returning(Connection.token_generation)
    )
    return int(generation or 0)


async def set_needs_reauth(session: AsyncSession, connection_id: int, reason: str) -> None:
    """The account must be connected again; `reason` is what the console shows."""
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(status=ConnectionStatus.NEEDS_REAUTH.value, status_reason=reason[:500])
    )
