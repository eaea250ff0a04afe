"""Refresh tokens before they expire: exactly one refresh per token across replicas.

When: a token is due `margin` before it expires (OAUTH_REFRESH_MARGIN_S, at most a quarter of
its lifetime) plus a per-connection jitter (OAUTH_REFRESH_JITTER_S, at most a tenth of the
lifetime), so tokens issued together are not refreshed in one burst. Every engine looks every
OAUTH_REFRESH_EVERY_S (`run`, one indexed query); a publish that finds its token due refreshes
it first (engine.oauth.publish_gate).

Exactly once: the refresher takes the connection's row lock (`SELECT … FOR UPDATE`) and holds
it across the refresh request and the write of the new tokens, in ONE transaction. Under the
lock it re-reads the row: if another refresher wrote meanwhile, the token is no longer due and
nothing is sent. The loop uses SKIP LOCKED (a busy row is someone else's); a publish waits for
the lock (it needs the new token) with a lock timeout. So a rotated refresh token is always
written by the one transaction that received it, and the old one is never sent again.

Why a row lock and not a Redis lease: a lease can run out while its holder still waits for the
platform (a slow answer, a paused process), and a second refresher would then send the old,
already rotated refresh token, which the platform refuses (and may take as token theft,
revoking the whole family). A row lock lasts exactly as long as its holder's transaction; a
holder that dies has its transaction aborted and its lock released by Postgres. Cost: one
pooled database connection per refresh in flight, for at most OAUTH_TIMEOUT_S; refreshes are
rare (an hour-long token: one per hour per account).

The one loss left: the platform rotates and the process dies before its commit. The new
refresh token is then gone with it and the next refresh is refused: the connection shows
needs-reauth with the reason, and its posts wait, deferred.

A refusal (`invalid_grant` and kin) marks the connection needs-reauth with the platform's words;
any other failure (network, 5xx) changes nothing and is tried again on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from engine import logs
from engine.oauth import tokens as oauth
from engine.oauth.providers import OAuthConfigError, client_for, provider_for
from engine.runtime import Runtime
from storage.clock import Clock, utc_now
from storage.crypto import EncryptionKeyError, TokenCipher, TokenUnreadable, cipher
from storage.database import Database
from storage.models import Connection, ConnectionStatus, Platform
from storage.queries import oauth_tokens
from storage.queries.oauth_tokens import NewTokens
from storage.settings import Settings

log = logs.get("engine.oauth.refresh")
GOLDEN = 0.6180339887498949  # spreads consecutive connection ids evenly over [0, 1)


class Outcome(StrEnum):
    REFRESHED = "refreshed"
    FRESH = "fresh"  # not due (another refresher just wrote, or it never was)
    BUSY = "busy"  # another transaction holds the row: its refresher is at work
    REFUSED = "refused"  # the platform refused the refresh token: needs-reauth
    NEEDS_REAUTH = "needs_reauth"  # it already did
    FAILED = "failed"  # nothing changed; try again later
    NOT_REFRESHABLE = "not_refreshable"  # no refresh token
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    outcome: Outcome
    connection_id: int
    reason: str = ""
    # The connection's token as read (or written) under the lock: what a publish should use.
    access_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    generation: int | None = None


def due_at(
    expires_at: datetime, issued_at: datetime, connection_id: int, margin_s: float, jitter_s: float
) -> datetime:
    """When this token should be refreshed (pure): margin and jitter, capped by its lifetime."""
    lifetime = max((expires_at - issued_at).total_seconds(), 0.0)
    margin = min(margin_s, lifetime / 4)
    jitter = min(jitter_s, lifetime / 10) * ((connection_id * GOLDEN) % 1.0)
    return expires_at - timedelta(seconds=margin + jitter)


class TokenRefresher:
    """Refreshes connections' tokens; stateless apart from what it is handed."""

    def __init__(
        self,
        db: Database,
        box: TokenCipher,
        http: httpx.AsyncClient,
        settings: Settings,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.box = box
        self.http = http
        self.settings = settings
        self.oauth = settings.oauth
        self.clock = clock

    def is_due(self, conn: Connection, now: datetime) -> bool:
        if conn.expires_at is None:
            return False
        issued = conn.refreshed_at or conn.updated_at or conn.created_at or now
        when = due_at(
            conn.expires_at,
            issued,
            conn.id,
            self.oauth.refresh_margin_s,
            self.oauth.refresh_jitter_s,
        )
        return now >= when

    async def refresh(
        self, connection_id: int, *, wait: bool = False, force: bool = False
    ) -> RefreshResult:
        """Refresh one connection's token if it is due (or `force`), under its row lock.

        `wait`: wait for another refresher's lock (then usually find the token fresh) instead
        of skipping the row."""
        try:
            async with self.db.transaction() as session:
                if wait:
                    timeout_ms = int((self.oauth.timeout_s + 5) * 1000)
                    await session.execute(text(f"SET LOCAL lock_timeout = {timeout_ms}"))
                conn = await oauth_tokens.lock_for_refresh(
                    session, connection_id, skip_locked=not wait
                )
                if conn is None:
                    return RefreshResult(Outcome.BUSY if not wait else Outcome.GONE, connection_id)
                # FAILED wrote nothing; REFUSED wrote needs-reauth: both commit as they are.
                return await self._refresh_locked(session, conn, force)
        except DBAPIError as exc:
            if "lock" in str(exc.orig).lower():  # lock_timeout: the holder is slow
                return RefreshResult(Outcome.BUSY, connection_id, "the row stayed locked")
            raise

    async def _refresh_locked(
        self, session: AsyncSession, conn: Connection, force: bool
    ) -> RefreshResult:
        now = self.clock()
        current = RefreshResult(
            Outcome.FRESH,
            conn.id,
            access_token=self.box.decrypt(conn.token_encrypted),
            expires_at=conn.expires_at,
            generation=conn.token_generation,
        )
        if conn.status != ConnectionStatus.OK.value:
            return RefreshResult(Outcome.NEEDS_REAUTH, conn.id, conn.status_reason or "")
        if conn.refresh_token_encrypted is None:
            return RefreshResult(
                Outcome.NOT_REFRESHABLE, conn.id, access_token=current.access_token
            )
        if not force and not self.is_due(conn, now):
            return current
        try:
            platform = Platform(conn.platform)
            provider = provider_for(platform, self.settings)
            app = client_for(platform, self.oauth)
            refresh_token = self.box.decrypt(conn.refresh_token_encrypted)
        except (OAuthConfigError, ValueError) as exc:
            log.error("oauth.refresh_unconfigured", connection=conn.id, error=str(exc))
            return RefreshResult(Outcome.FAILED, conn.id, str(exc))
        try:
            fresh = await oauth.refresh(self.http, provider, app, refresh_token, now)
        except oauth.GrantRefused as exc:
            reason = f"{conn.platform} refused the token refresh ({exc}): connect again"
            await oauth_tokens.set_needs_reauth(session, conn.id, reason)
            log.warning("oauth.refresh_refused", connection=conn.id, error=exc.error)
            return RefreshResult(Outcome.REFUSED, conn.id, reason)
        except (oauth.OAuthError, oauth.OAuthUnavailable) as exc:
            log.warning("oauth.refresh_failed", connection=conn.id, error=str(exc))
            return RefreshResult(Outcome.FAILED, conn.id, str(exc))
        generation = await oauth_tokens.write_tokens(
            session,
            self.box,
            conn.id,
            NewTokens(fresh.access_token, fresh.refresh_token, fresh.expires_at, fresh.scopes),
        )
        log.info(
            "oauth.refreshed",
            connection=conn.id,
            platform=conn.platform,
            expires_at=fresh.expires_at.isoformat() if fresh.expires_at else None,
            rotated=fresh.refresh_token != refresh_token,
        )
        return RefreshResult(
            Outcome.REFRESHED,
            conn.id,
            access_token=fresh.access_token,
            expires_at=fresh.expires_at,
            generation=generation,
        )

    async def refresh_due(self) -> dict[str, int]:
        """One pass: every connection whose token is due, skipping rows another holds."""
        now = self.clock()
        horizon = now + timedelta(seconds=self.oauth.refresh_margin_s + self.oauth.refresh_jitter_s)
        async with self.db.session() as session:
            candidates = await oauth_tokens.refresh_candidates(session, horizon)
        counts: dict[str, int] = {}
        for item in candidates:
            when = due_at(
                item.expires_at,
                item.issued_at,
                item.connection_id,
                self.oauth.refresh_margin_s,
                self.oauth.refresh_jitter_s,
            )
            if now < when:
                continue
            result = await self.refresh(item.connection_id)
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        return counts


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    """The engine's refresh loop: a pass every OAUTH_REFRESH_EVERY_S (jittered) until `stop`."""
    oauth = rt.settings.oauth
    async with httpx.AsyncClient(timeout=oauth.timeout_s) as http:
        while not stop.is_set():
            try:
                refresher = TokenRefresher(rt.db, cipher(rt.settings), http, rt.settings)
                counts = await refresher.refresh_due()
                if counts:
                    log.info("oauth.refresh_pass", **counts)
            except (EncryptionKeyError, TokenUnreadable) as exc:
                log.error("oauth.refresh_no_key", error=str(exc))
            except Exception as exc:  # Postgres down, say: the next pass tries again
                log.warning("oauth.refresh_pass_failed", error=repr(exc))
            pause = oauth.refresh_every_s * random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
