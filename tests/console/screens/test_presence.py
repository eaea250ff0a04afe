"""Presence: every console beats into one sorted set with its actor and whether it is local or
SSH; the Overview lists the consoles attached now, and forgets those that stopped beating."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from console.data.presence import identity, load_consoles
from console.ssh.session import Session
from engine import console_presence
from engine.console_presence import ConsoleIdentity
from engine.redis_keys import consoles_key
from storage.settings import Settings
from tests.console.screens.test_overview import landing_app, overview, text_of
from tests.console.test_app import SIZE


def ssh_console(actor: str, started_ms: int) -> ConsoleIdentity:
    return ConsoleIdentity(
        id=f"bastion:4242:{started_ms}",
        actor=actor,
        kind="ssh",
        host="bastion",
        pid=4242,
        started_ms=started_ms,
    )


async def test_a_read_is_one_sorted_set_and_stale_or_foreign_members_are_not_listed(
    test_settings: Settings, redis: Redis
) -> None:
    now_ms = int(time.time() * 1000)
    alive = ssh_console("alice", now_ms - 60_000)
    await console_presence.beat_once(redis, test_settings, alive)
    stale = ssh_console("bob", now_ms - 120_000)
    gone_ms = now_ms - int(console_presence.STALE_S * 1000) - 1000
    await redis.zadd(consoles_key(test_settings), {stale.member(): gone_ms, "not json": now_ms})
    found = await console_presence.attached(redis, test_settings)
    assert [c.identity for c in found] == [alive]
    assert 0 < await redis.pttl(consoles_key(test_settings)) <= console_presence.FORGET_S * 1000
    # A member that has not beaten for FORGET_S is removed by the next beat of anyone.
    forgotten_ms = now_ms - int(console_presence.FORGET_S * 1000) - 1000
    await redis.zadd(consoles_key(test_settings), {stale.member(): forgotten_ms})
    await console_presence.beat_once(redis, test_settings, alive)
    assert await redis.zscore(consoles_key(test_settings), stale.member()) is None
    await console_presence.leave(redis, test_settings, alive)
    assert await console_presence.attached(redis, test_settings) == ()


async def test_this_console_is_in_its_own_list_with_its_actor_and_kind(
    test_settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "carol")
    me = identity(Session(ssh_key="carol"))
    assert (me.actor, me.kind) == ("carol", "ssh")
    lines = await load_consoles(redis, test_settings, me)  # not beaten yet: listed anyway
    assert [(line.actor, line.kind, line.me) for line in lines] == [("carol", "ssh", True)]


async def test_the_overview_lists_the_consoles_attached_now(
    test_settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "operator")
    other = ssh_console("alice", int(time.time() * 1000) - 60_000)
    await console_presence.beat_once(redis, test_settings, other)
    app = landing_app(test_settings, session=Session())
    async with app.run_test(size=SIZE) as pilot:
        screen = await overview(pilot)
        line = text_of(screen, "#ov-consoles")
        assert line.startswith("Consoles 2 attached")
        assert "alice (ssh@bastion)" in line and "operator (local, you)" in line
        assert line.index("alice") < line.index("operator")  # oldest first
        # This console's own beat reaches Redis (what other consoles read).
        deadline = time.monotonic() + 15
        while len(await console_presence.attached(redis, test_settings)) < 2:
            assert time.monotonic() < deadline, "no beat from the console"
            await pilot.pause(0.05)
        found = await console_presence.attached(redis, test_settings)
        assert [(c.identity.actor, c.identity.kind) for c in found] == [
            ("alice", "ssh"),
            ("operator", "local"),
        ]
    # Quitting leaves the list at once.
    after = await console_presence.attached(redis, test_settings)
    assert [c.identity.actor for c in after] == ["alice"]
