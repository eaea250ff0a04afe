"""What a publish asks of the token store before it sends: a current access token, or a wait.

- needs-reauth: defer (`REAUTH_RECHECK_S`), never fail: the posts go out once the account is
  connected again.
- token due for a refresh (engine.oauth.refresh): refresh it now, waiting for a refresher that
  holds the row, and publish with the new token; a refusal marks needs-reauth and defers.
- expired and not refreshable: mark needs-reauth, defer.

The claimed `Connection` is updated in place with what was read under the lock, so the rest of
the job sees the token it publishes with.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from engine.oauth.refresh import Outcome, TokenRefresher
from storage.clock import Clock, utc_now
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Connection, ConnectionStatus
from storage.queries import oauth_tokens
from storage.settings import Settings

REAUTH_RECHECK_S = 300.0  # a deferred post looks again this often until the account is back
BUSY_RETRY_S = 30.0  # the refresh failed for now (platform down) and the token expired


def _why(conn: Connection, reason: str) -> str:
    return f"{conn.platform} account {conn.display_name} needs re-authorisation ({reason})"


async def token_for_publish(
    db: Database,
    http: httpx.AsyncClient,
    box: TokenCipher,
    conn: Connection,
    token: str,
    settings: Settings,
    clock: Clock = utc_now,
) -> str | tuple[float, str]:
    """The access token to publish with, or (seconds, why) to defer the publication."""
    if conn.status == ConnectionStatus.NEEDS_REAUTH.value:
        return REAUTH_RECHECK_S, _why(conn, conn.status_reason or "marked by an earlier call")
    now = clock()
    refresher = TokenRefresher(db, box, http, settings, clock=clock)
    if conn.expires_at is None or not refresher.is_due(conn, now):
        return token
    if conn.refresh_token_encrypted is None:
        if conn.expires_at > now:
            return token  # not refreshable, still valid: use it while it lasts
        reason = "the token expired and the platform gave no refresh token"
        async with db.transaction() as session:
            await oauth_tokens.set_needs_reauth(session, conn.id, reason)
        return REAUTH_RECHECK_S, _why(conn, reason)
    result = await refresher.refresh(conn.id, wait=True)
    if result.outcome in (Outcome.REFRESHED, Outcome.FRESH) and result.access_token:
        _update(conn, result.access_token, result.expires_at, box, now)
        return result.access_token
    if result.outcome in (Outcome.REFUSED, Outcome.NEEDS_REAUTH):
        return REAUTH_RECHECK_S, _why(conn, result.reason)
    if conn.expires_at > now:
        return token  # the refresh failed for now; the current token still works
    return (
        BUSY_RETRY_S,
        f"the token of {conn.platform} account {conn.display_name} is being "
        f"refreshed ({result.outcome.value}: {result.reason or 'try again'})",
    )


def _update(
    conn: Connection, access: str, expires_at: datetime | None, box: TokenCipher, now: datetime
) -> None:
    conn.token_encrypted = box.encrypt(access)
    conn.expires_at = expires_at
    conn.refreshed_at = now
