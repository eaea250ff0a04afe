"""Tokens stay alive: refreshed before expiry, exactly once across racing refreshers (the mock
rotates refresh tokens and refuses a reused one), a refused refresh marks needs-reauth and
defers the account's posts, and a publish racing a refresh publishes with the new token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from engine.jobs.publish import PublishContext
from engine.oauth import tokens as oauth
from engine.oauth.flow import ConnectFlow
from engine.oauth.providers import Client
from engine.oauth.refresh import Outcome, TokenRefresher, due_at
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Connection, Platform
from tests.support.oauth import OAuthMock, Sleeps, http, oauth_mock, oauth_server
from tests.support.process import free_port
from tests.support.publishing import (
    FAST,
    KEY,
    add_post,
    pub_settings,
    publications,
    rt,
    run_queued,
)

__all__ = ["http", "oauth_mock", "oauth_server", "pub_settings", "rt"]
BOX = TokenCipher(KEY)
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_due_at_keeps_a_margin_with_jitter_capped_by_the_lifetime() -> None:
    hour = T0 + timedelta(hours=1)
    assert due_at(hour, T0, 0, margin_s=600, jitter_s=120) == hour - timedelta(seconds=600)
    spread = {due_at(hour, T0, i, 600, 120) for i in range(1, 50)}
    assert len(spread) == 49
    assert all(hour - timedelta(seconds=720) <= d < hour - timedelta(seconds=600) for d in spread)
    # A one-minute token: margin at most a quarter, jitter at most a tenth of its life.
    minute = T0 + timedelta(minutes=1)
    assert minute - timedelta(seconds=21) <= due_at(minute, T0, 7, 600, 120) <= minute
    assert due_at(T0, T0, 3, 600, 120) == T0  # no lifetime known: at expiry


@pytest.fixture
def env_oauth(oauth_mock: OAuthMock, rt: Runtime) -> Iterator[None]:
    """The engine's own settings (what the publish job reads) point at the mock."""
    before = rt.settings
    rt.settings = rt.settings.replace(oauth={"base_url": oauth_mock.url})
    yield
    rt.settings = before


@pytest.fixture
async def pc(rt: Runtime, oauth_mock: OAuthMock) -> AsyncIterator[PublishContext]:
    context = PublishContext(rt, policy=FAST, base_urls={Platform.MOCK: oauth_mock.url})
    yield context
    await context.close()


async def connect(mock: OAuthMock, http: httpx.AsyncClient, db: Database) -> int:
    """Connect the mock account with the device flow; its token is then due for a refresh."""
    flow = ConnectFlow.for_platform(Platform.MOCK, http, mock.settings())
    grant = await flow.start_device()
    tokens = await flow.finish_device(grant, sleep=Sleeps(mock, approve_after=1))
    connection_id = await flow.save(db, BOX, await flow.account(tokens), "tester")
    await make_due(db, connection_id)
    return connection_id


async def make_due(db: Database, connection_id: int) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(expires_at=now + timedelta(seconds=60), refreshed_at=now - timedelta(hours=1))
        )


async def row(db: Database, connection_id: int) -> Connection:
    async with db.session() as session:
        conn = await session.get(Connection, connection_id)
    assert conn is not None
    return conn


def refreshers(
    db: Database, mock: OAuthMock, clients: list[httpx.AsyncClient]
) -> list[TokenRefresher]:
    return [TokenRefresher(db, BOX, client, mock.settings()) for client in clients]


async def test_three_racing_refreshers_refresh_once_and_keep_the_rotated_token(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, db: Database
) -> None:
    connection_id = await connect(oauth_mock, http, db)
    first = await row(db, connection_id)
    assert first.refresh_token_encrypted is not None
    original_refresh = BOX.decrypt(first.refresh_token_encrypted)
    # The platform holds its answer: the three passes overlap while the first one waits.
    oauth_mock.configure(refresh_latency_s=0.5)
    clients = [httpx.AsyncClient(timeout=10) for _ in range(3)]
    try:
        passes = await asyncio.gather(
            *(r.refresh_due() for r in refreshers(db, oauth_mock, clients))
        )
        assert oauth_mock.state.counters["refreshes"] == 1
        assert sum(p.get("refreshed", 0) for p in passes) == 1
        assert all(set(p) <= {"refreshed", "busy", "fresh"} for p in passes), passes
        # Publishes waiting for the lock instead of skipping: still one refresh in all.
        await make_due(db, connection_id)
        results = await asyncio.gather(
            *(r.refresh(connection_id, wait=True) for r in refreshers(db, oauth_mock, clients))
        )
    finally:
        for client in clients:
            await client.aclose()
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["fresh", "fresh", "refreshed"]
    assert oauth_mock.state.counters["refreshes"] == 2
    assert oauth_mock.state.counters["refresh_reused"] == 0
    tokens = {r.access_token for r in results}
    assert len(tokens) == 1  # the two that waited publish with the token the first one got
    stored = await row(db, connection_id)
    assert stored.token_generation == 2 and stored.status == "ok"
    assert stored.expires_at is not None and stored.expires_at > datetime.now(UTC)
    assert BOX.decrypt(stored.token_encrypted) == tokens.pop()
    # The stored refresh token is the platform's current one: it refreshes again...
    again = await refreshers(db, oauth_mock, [http])[0].refresh(connection_id, force=True)
    assert again.outcome is Outcome.REFRESHED
    # ...while the first one was rotated away: the platform refuses it as reused.
    provider = oauth_mock.provider()
    with pytest.raises(oauth.GrantRefused, match="invalid_grant"):
        await oauth.refresh(http, provider, Client("c"), original_refresh, T0)


async def test_a_refused_refresh_marks_needs_reauth_and_defers_due_posts(
    oauth_mock: OAuthMock,
    http: httpx.AsyncClient,
    db: Database,
    pc: PublishContext,
    env_oauth: None,
) -> None:
    connection_id = await connect(oauth_mock, http, db)
    for _, grant in oauth_mock.state.refresh.values():
        grant.revoked = True  # the person removed the app's access on the platform
    result = await refreshers(db, oauth_mock, [http])[0].refresh(connection_id)
    assert result.outcome is Outcome.REFUSED
    conn = await row(db, connection_id)
    assert conn.status == "needs_reauth"
    assert conn.status_reason and "invalid_grant" in conn.status_reason
    assert "connect again" in conn.status_reason
    post, _ = await add_post(pc.rt, [connection_id])
    assert await run_queued(pc) == ["deferred"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "scheduled" and pub.attempts == 0
    assert pub.last_error and "needs re-authorisation" in pub.last_error
    assert pub.due_at is not None and pub.due_at > datetime.now(UTC) + timedelta(minutes=4)
    assert oauth_mock.publishing.requests == 0
    # Connect again: the same row is ok, with new tokens.
    assert await connect(oauth_mock, http, db) == connection_id
    conn = await row(db, connection_id)
    assert conn.status == "ok" and conn.status_reason is None


async def test_a_publish_racing_a_refresh_waits_and_publishes_with_the_new_token(
    oauth_mock: OAuthMock,
    http: httpx.AsyncClient,
    db: Database,
    pc: PublishContext,
    env_oauth: None,
) -> None:
    connection_id = await connect(oauth_mock, http, db)
    old = BOX.decrypt((await row(db, connection_id)).token_encrypted)
    # The old access token no longer works at the platform: only the refreshed one publishes.
    oauth_mock.state.access[old] = (0.0, oauth_mock.state.access[old][1])
    oauth_mock.configure(refresh_latency_s=1.0)
    post, _ = await add_post(pc.rt, [connection_id])
    loop_pass = asyncio.create_task(refreshers(db, oauth_mock, [http])[0].refresh_due())
    # The loop's refresher holds the row (its request is at the platform) when the publish runs.
    while oauth_mock.state.counters["token:refresh_token"] == 0:
        await asyncio.sleep(0.01)
    assert await run_queued(pc) == ["published"]
    assert await loop_pass == {"refreshed": 1}
    assert oauth_mock.state.counters["refreshes"] == 1
    (pub,) = await publications(db, post.id)
    assert pub.status == "published"
    assert len(oauth_mock.publishing.posts) == 1


async def test_a_publish_refreshes_a_due_token_itself(
    oauth_mock: OAuthMock,
    http: httpx.AsyncClient,
    db: Database,
    pc: PublishContext,
    env_oauth: None,
) -> None:
    connection_id = await connect(oauth_mock, http, db)
    old = BOX.decrypt((await row(db, connection_id)).token_encrypted)
    oauth_mock.state.access[old] = (0.0, oauth_mock.state.access[old][1])
    await add_post(pc.rt, [connection_id])
    assert await run_queued(pc) == ["published"]
    assert oauth_mock.state.counters["refreshes"] == 1
    assert (await row(db, connection_id)).token_generation == 1


async def test_a_refresh_that_cannot_reach_the_platform_changes_nothing(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, db: Database
) -> None:
    connection_id = await connect(oauth_mock, http, db)
    before = await row(db, connection_id)
    away = oauth_mock.settings(base_url=f"http://127.0.0.1:{free_port()}")
    result = await TokenRefresher(db, BOX, http, away).refresh(connection_id)
    assert result.outcome is Outcome.FAILED and "talking to the platform" in result.reason
    after = await row(db, connection_id)
    assert (after.status, after.token_generation, after.token_encrypted) == (
        "ok",
        before.token_generation,
        before.token_encrypted,
    )
    # The next pass, with the platform back, refreshes it.
    assert await refreshers(db, oauth_mock, [http])[0].refresh_due() == {"refreshed": 1}


async def test_the_expiry_alert_counts_only_tokens_nobody_refreshes(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, db: Database
) -> None:
    from storage.queries.alerts import token_expiry_per_platform
    from tests.support.publishing import add_connection

    await connect(oauth_mock, http, db)  # refreshable, expires within a minute
    async with db.session() as session:
        assert await token_expiry_per_platform(session) == {}
    soon = datetime.now(UTC) + timedelta(hours=1)
    await add_connection(db, "bob", "tok-bob", expires_at=soon)  # pasted token: it will lapse
    async with db.session() as session:
        assert await token_expiry_per_platform(session) == {"mock": soon}
