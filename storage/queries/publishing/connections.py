"""Connected platform accounts: save (add or re-authorise), list, mark needs-reauth.

Nothing here commits: the caller opens the transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.crypto import TokenCipher
from storage.models import (
    Connection,
    ConnectionStatus,
)
from storage.permissions import Actor
from storage.queries import audit
from storage.queries.publishing.inputs import ConnectionInput


async def save_connection(
    session: AsyncSession, cipher: TokenCipher, data: ConnectionInput, actor: Actor
) -> Connection:
    """Add an account, or replace its tokens (a re-authorisation clears needs-reauth)."""
    await permissions.require_account(
        session, actor, data.platform.value, data.account_id, "connect accounts"
    )
    values = {
        "platform": data.platform.value,
        "account_id": data.account_id,
        "display_name": data.display_name,
        "token_encrypted": cipher.encrypt(data.token),
        "refresh_token_encrypted": (
            cipher.encrypt(data.refresh_token) if data.refresh_token else None
        ),
        "expires_at": data.expires_at,
        "status": ConnectionStatus.OK.value,
        "status_reason": None,
    }
    stmt = insert(Connection).values(**values)
    upsert = stmt.on_conflict_do_update(
        constraint="uq_connection_account",
        set_={**{k: stmt.excluded[k] for k in values if k != "platform"}, "updated_at": func.now()},
    ).returning(Connection)
    conn: Connection = (await session.scalars(upsert)).one()
    audit.record(
        session,
        actor=actor,
        action="connection.save",
        entity="connection",
        entity_id=str(conn.id),
        before=None,
        after={"platform": conn.platform, "account_id": conn.account_id, "status": conn.status},
    )
    return conn


async def list_connections(session: AsyncSession) -> list[Connection]:
    return list(
        await session.scalars(select(Connection).order_by(Connection.platform, Connection.id))
    )


async def get_connection(session: AsyncSession, connection_id: int) -> Connection | None:
    return await session.get(Connection, connection_id)


async def mark_needs_reauth(session: AsyncSession, connection_id: int, reason: str) -> None:
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(status=ConnectionStatus.NEEDS_REAUTH.value, status_reason=reason)
    )
