"""The console's read model for connecting a platform account (engine.oauth.flow does the work).

The Connections screen's modal shows the flow's steps; what it needs of storage (the clock type,
the platform names, the token cipher, the write of the connected account) comes through here, so
screens import no storage module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from console.data.acting import acting_now
from console.data.common import KNOWN_ERRORS
from storage.clock import Clock as Clock
from storage.crypto import cipher
from storage.database import Database as Database
from storage.models import Platform as Platform
from storage.queries.operators import Identity
from storage.settings import Settings as Settings

if TYPE_CHECKING:
    from engine.oauth.flow import ConnectFlow
    from engine.oauth.tokens import TokenSet

PLATFORMS = ", ".join(p.value for p in Platform)
# What a connect attempt is expected to raise: a refusal or a missing setting (UserError: the
# OAuth errors subclass it), the platform or a store away. Anything else is a bug.
CONNECT_ERRORS: tuple[type[Exception], ...] = (*KNOWN_ERRORS, httpx.HTTPError)


async def save_connected(
    settings: Settings,
    db: Database,
    flow: ConnectFlow,
    tokens: TokenSet,
    account_id: str | None,
    actor: Identity,
) -> str:
    """Store the connected account's tokens (encrypted) and say so in one line."""
    account = await flow.account(tokens, account_id)
    connection_id = await flow.save(db, cipher(settings), account, await acting_now(db, actor))
    return f"connection {connection_id} saved ({flow.platform} {account.display_name})"
