"""The `:alerts` screen and the header's alerts line, with Pilot against the real test servers.

Each condition is driven into its firing state with real rows and keys (ledger rows, a forced
breaker, quota use, a stale heartbeat, a server that does not answer, ...), the console's
clock is moved past the condition's `for`, and the screen must say `firing`; then the data is
put right (or the window passes) and it must say `ok`. "Now" is the test's own clock, started
at the real time (breakers and quotas use the Redis server's clock).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from textual.pilot import Pilot
from textual.widgets import Static

from console.app import CreatordeckApp
from console.data.alerts import monitor_for
from console.demo.ports import DemoPorts
from console.demo.supervisor import DEMO_ALERT_FOR_MAX_S, child_env, demo_alert_timing
from console.screens.alerts import (
    CELL_PADDING,
    SCROLLBAR,
    AlertsScreen,
    SilenceModal,
    columns_for,
)
from console.widgets.status_header import StatusHeader
from engine import redis_keys
from engine.alerts import event_counts
from engine.alerts.conditions import BY_NAME
from engine.alerts.evaluate import AlertStatus, State
from engine.resilience import CircuitBreaker, RateLimiter
from engine.resilience.ratelimit import Quota
from storage.database import Database
from storage.models import (
    AlertSilence,
    AuditEntry,
    Connection,
    DeadLetter,
    JobRun,
    Post,
    Publication,
    Region,
)
from storage.settings import Settings
from tests.console.test_app import wait_until

WIDE = (140, 30)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Deck:
    db: Database
    redis: Redis
    settings: Settings
    clock: Clock
    pilot: Pilot[Any]
    engine_alive: bool = True

    @property
    def app(self) -> CreatordeckApp:
        app = self.pilot.app
        assert isinstance(app, CreatordeckApp)
        return app

    async def statuses(self) -> dict[str, AlertStatus]:
        """A fresh judgement, as the screen shows it."""
        screen = self.app.screen
        assert isinstance(screen, AlertsScreen)
        # A load already running may have read before the last write: let it end first.
        await wait_until(self.pilot, lambda: not screen._loading, "the running load to end")
        before = screen.loads
        screen.request_reload()
        await wait_until(self.pilot, lambda: screen.loads > before, "the alerts to load")
        return {s.condition.name: s for s in screen.statuses}

    async def state(self, name: str) -> State:
        return (await self.statuses())[name].state

    async def beat(self) -> None:
        """A live engine replica beats, as the console's clock sees it (unless it was killed)."""
        if not self.engine_alive:
            return
        ms = int(self.clock.now.timestamp() * 1000)
        await self.redis.zadd(redis_keys.replicas_key(self.settings), {"engine-test:1": ms})

    async def add(self, *rows: Any) -> None:
        async with self.db.session() as session:
            session.add_all(rows)
            await session.commit()

    async def execute(self, statement: Any) -> None:
        async with self.db.session() as session:
            await session.execute(statement)
            await session.commit()


def run(
    settings: Settings, db: Database, redis: Redis, **kwargs: Any
) -> Callable[[Callable[[Deck], Awaitable[None]]], Awaitable[None]]:
    size = kwargs.pop("size", WIDE)

    async def go(body: Callable[[Deck], Awaitable[None]]) -> None:
        clock = Clock()
        app = CreatordeckApp(settings, clock=clock, landing="alerts", **kwargs)
        async with app.run_test(size=size) as pilot:
            deck = Deck(db, redis, settings, clock, pilot)
            await deck.beat()
            await body(deck)

    return go


REGION_NUMBERS = iter(range(1_000_000))


def tick(region: str, at: datetime, status: str, lag_ms: int = 100, **extra: Any) -> JobRun:
    """A ledger row; "R…" regions get a fresh code each (the ledger is unique per fire time)."""
    return JobRun(
        kind="tick",
        region_code=f"{region}_{next(REGION_NUMBERS)}" if region.startswith("R") else region,
        scheduled_for=at - timedelta(milliseconds=lag_ms),
        started_at=at,
        finished_at=None if status == "running" else at,
        status=status,
        lag_ms=lag_ms,
        duration_ms=None if status == "running" else 10,
        attempt=1,
        **extra,
    )


async def publication(deck: Deck, status: str) -> int:
    connection = Connection(
        platform="mock", account_id=uuid.uuid4().hex, display_name="@t", token_encrypted="x"
    )
    post = Post(body="hello", status="failed")
    await deck.add(connection, post)
    pub = Publication(
        post_id=post.id,
        connection_id=connection.id,
        status=status,
        idempotency_key=uuid.uuid4().hex,
        updated_at=deck.clock.now,
    )
    await deck.add(pub)
    return pub.id


async def test_a_healthy_deck_shows_every_condition_ok(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    async def body(deck: Deck) -> None:
        statuses = await deck.statuses()
        assert set(statuses) == set(BY_NAME)
        assert {n: s.state for n, s in statuses.items() if s.state != State.OK} == {}
        header = deck.app.screen.query_one(StatusHeader)
        await wait_until(deck.pilot, lambda: header.alerts is not None, "the header's alerts")
        assert header.alerts is not None and header.alerts.full.plain == "  alerts: ok"

    await run(test_settings, db, redis)(body)


# Each case: make it hold, how long to wait (past its `for`), and put it right.
Step = Callable[[Deck], Awaitable[None]]


async def _missed_fire(deck: Deck) -> None:
    since = deck.clock.now - timedelta(hours=1)
    await deck.add(Region(code="ALERT_R", name="r", cron="*/5 * * * *", schedule_since=since))


async def _missed_fire_fix(deck: Deck) -> None:
    latest = deck.clock.now.replace(second=0) - timedelta(minutes=deck.clock.now.minute % 5)
    await deck.add(tick("ALERT_R", latest, "ok", lag_ms=0))


async def _failures(deck: Deck) -> None:
    now = deck.clock.now
    await deck.add(*(tick("R1", now, s) for s in ("failed", "failed", "failed", "ok", "ok")))


async def _many_ok(deck: Deck) -> None:
    await deck.add(*(tick("R1", deck.clock.now - timedelta(seconds=n), "ok") for n in range(30)))


async def _late(deck: Deck) -> None:
    await deck.add(*(tick("R1", deck.clock.now, "ok", lag_ms=120_000) for _ in range(3)))


async def _window_passes(deck: Deck) -> None:
    deck.clock.advance(31 * 60)
    await deck.beat()


async def _long_tick(deck: Deck) -> None:
    await deck.add(tick("R1", deck.clock.now - timedelta(minutes=20), "running"))


async def _finish_ticks(deck: Deck) -> None:
    await deck.execute(update(JobRun).values(status="ok", finished_at=deck.clock.now))


async def _failed_publication(deck: Deck) -> None:
    await publication(deck, "failed")


async def _unknown_publication(deck: Deck) -> None:
    await publication(deck, "unknown")


async def _resolve_publications(deck: Deck) -> None:
    await deck.execute(update(Publication).values(status="published"))


async def _open_breaker(deck: Deck) -> None:
    await CircuitBreaker(deck.redis, deck.settings, "mock").force_open(3600, "HTTP 503")


async def _close_breaker(deck: Deck) -> None:
    await CircuitBreaker(deck.redis, deck.settings, "mock").reset()


QUOTA = Quota("mock", calls=10, per_s=3600)


async def _use_quota(deck: Deck) -> None:
    limiter = RateLimiter(deck.redis, deck.settings)
    try:
        for _ in range(10):
            await limiter.try_acquire(QUOTA)
    finally:
        await limiter.close()


async def _free_quota(deck: Deck) -> None:
    async for found in deck.redis.scan_iter(match=f"{deck.settings.redis_prefix}:quota*"):
        await deck.redis.delete(found)


async def _dead_letter(deck: Deck) -> None:
    await deck.add(
        DeadLetter(
            kind="fetch",
            dedupe_key="fetch:mock:1",
            error="HTTP 500",
            payload={},
            last_failed_at=deck.clock.now,
        )
    )


async def _drop_letters(deck: Deck) -> None:
    async with deck.db.session() as session:
        for letter in await session.scalars(select(DeadLetter)):
            await session.delete(letter)
        await session.commit()


async def _engine_gone(deck: Deck) -> None:
    deck.engine_alive = False  # stopped: it beats no more, and its entry is gone
    await deck.redis.delete(redis_keys.replicas_key(deck.settings))


async def _engine_back(deck: Deck) -> None:
    deck.engine_alive = True
    await deck.beat()


async def _refused_events(deck: Deck) -> None:
    await event_counts.record(deck.redis, deck.settings, accepted=10, refused=5, now=deck.clock.now)


async def _accepted_events(deck: Deck) -> None:
    await event_counts.record(
        deck.redis, deck.settings, accepted=1000, refused=0, now=deck.clock.now
    )


async def _expiring_token(deck: Deck) -> None:
    await deck.add(
        Connection(
            platform="x",
            account_id="42",
            display_name="@team",
            token_encrypted="x",
            expires_at=deck.clock.now + timedelta(days=1),
        )
    )


async def _renewed_token(deck: Deck) -> None:
    await deck.execute(update(Connection).values(expires_at=deck.clock.now + timedelta(days=60)))


CASES: dict[str, tuple[Step, Step]] = {
    "RegionFireTimeMissed": (_missed_fire, _missed_fire_fix),
    "TickFailureRate": (_failures, _many_ok),
    "TickLagHigh": (_late, _window_passes),
    "TickRunningLong": (_long_tick, _finish_ticks),
    "PublishFailures": (_failed_publication, _window_passes),
    "PublishOutcomeUnknown": (_unknown_publication, _resolve_publications),
    "BreakerOpenLong": (_open_breaker, _close_breaker),
    "QuotaNearlyUsed": (_use_quota, _free_quota),
    "DeadLettersGrowing": (_dead_letter, _drop_letters),
    "EngineReplicaGone": (_engine_gone, _engine_back),
    "EventRejectionRate": (_refused_events, _accepted_events),
    "TokenExpiring": (_expiring_token, _renewed_token),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_each_condition_fires_and_clears_in_the_console(
    name: str,
    test_settings: Settings,
    db: Database,
    redis: Redis,
) -> None:
    quota = test_settings.tracking.model_copy(
        update={"mockstagram_quota": f"{QUOTA.calls}/{QUOTA.per_s}"}
    )
    settings = test_settings.model_copy(update={"tracking": quota})
    condition = BY_NAME[name]
    make, fix = CASES[name]

    async def body(deck: Deck) -> None:
        assert await deck.state(name) == State.OK
        await make(deck)
        first = await deck.state(name)
        if condition.for_s:
            assert first == State.PENDING, "holds, but not yet for its `for` duration"
            deck.clock.advance(condition.for_s + 1)
            await deck.beat()
        statuses = await deck.statuses()
        assert statuses[name].state == State.FIRING, statuses[name]
        assert statuses[name].since is not None and statuses[name].since <= deck.clock.now
        others = {n for n, s in statuses.items() if s.state == State.FIRING and n != name}
        assert not others, f"only {name} should fire, not {others}"
        await fix(deck)
        await deck.beat()
        assert await deck.state(name) == State.OK

    await run(settings, db, redis)(body)


@pytest.mark.parametrize("dependency", ["PostgresUnreachable", "RedisUnreachable"])
async def test_an_unreachable_server_fires_and_clears(
    dependency: str, test_settings: Settings, db: Database, redis: Redis
) -> None:
    # A loopback port nothing listens on stands for the server that went away.
    field = "database_url" if dependency == "PostgresUnreachable" else "redis_url"
    dead = (
        "postgresql://postgres@127.0.0.1:9/x"
        if field == "database_url"
        else "redis://127.0.0.1:9/0"
    )

    async def body(deck: Deck) -> None:
        monitor = monitor_for(deck.app)
        good = Database(test_settings)
        try:
            assert await deck.state(dependency) == State.OK
            if field == "database_url":
                monitor.reader.db = Database(test_settings.model_copy(update={field: dead}))
            else:
                deck.app.settings = test_settings.model_copy(update={field: dead})
                deck.app._redis = None
            assert await deck.state(dependency) == State.PENDING
            deck.clock.advance(BY_NAME[dependency].for_s + 1)
            statuses = await deck.statuses()
            assert statuses[dependency].state == State.FIRING
            assert "9" in statuses[dependency].detail or statuses[dependency].detail
            # Facts that need the missing server are unknown, not "ok".
            assert State.UNKNOWN in {s.state for s in statuses.values()}
            monitor.reader.db = good
            deck.app.settings = test_settings
            deck.app._redis = None
            await deck.beat()
            assert await deck.state(dependency) == State.OK
        finally:
            await good.dispose()

    await run(test_settings, db, redis)(body)


async def test_silence_is_audited_and_hides_the_alert_from_the_header(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    async def body(deck: Deck) -> None:
        await _unknown_publication(deck)
        assert await deck.state("PublishOutcomeUnknown") == State.FIRING
        header = deck.app.screen.query_one(StatusHeader)
        await wait_until(
            deck.pilot,
            lambda: header.alerts is not None and "1 firing" in header.alerts.full.plain,
            "the header to count the firing alert",
        )
        screen = deck.app.screen
        assert isinstance(screen, AlertsScreen)
        names = [s.condition.name for s in screen.statuses]
        screen.table.move_cursor(row=names.index("PublishOutcomeUnknown"))
        await deck.pilot.press("s")
        await deck.pilot.press(*"checking with the platform", "enter")
        await wait_until(deck.pilot, lambda: deck.app.screen is screen, "the dialog to close")
        statuses = await deck.statuses()
        silenced = statuses["PublishOutcomeUnknown"]
        assert silenced.state == State.FIRING and silenced.silence is not None
        assert silenced.silence.reason == "checking with the platform"
        assert silenced.silence.until == deck.clock.now + timedelta(hours=1)
        async with deck.db.session() as session:
            audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
            rows = list(await session.scalars(select(AlertSilence)))
        assert [(a.action, a.entity_id) for a in audit] == [
            ("alert.silence", "PublishOutcomeUnknown")
        ]
        assert len(rows) == 1
        monitor_for(deck.app).view = None  # the header reads again at once
        await wait_until(
            deck.pilot,
            lambda: (
                header.alerts is not None and "alerts: ok (1 silenced)" in header.alerts.full.plain
            ),
            "the header to leave the silenced alert out",
        )
        await deck.pilot.press("u")
        await wait_until(deck.pilot, lambda: len(screen.statuses) > 0, "reload")
        statuses = await deck.statuses()
        assert statuses["PublishOutcomeUnknown"].silence is None
        async with deck.db.session() as session:
            actions = [a.action for a in await session.scalars(select(AuditEntry))]
        assert sorted(actions) == ["alert.silence", "alert.unsilence"]

    await run(test_settings, db, redis)(body)


async def test_a_read_only_console_cannot_silence(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    async def body(deck: Deck) -> None:
        await deck.statuses()
        await deck.pilot.press("s")
        await deck.pilot.pause(0.1)
        assert isinstance(deck.app.screen, AlertsScreen)
        async with deck.db.session() as session:
            assert list(await session.scalars(select(AlertSilence))) == []

    await run(test_settings, db, redis, read_only=True)(body)


async def test_the_header_keeps_engine_and_firing_count_at_80_columns(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    async def body(deck: Deck) -> None:
        await _unknown_publication(deck)
        await deck.statuses()
        header = deck.app.screen.query_one(StatusHeader)
        await wait_until(
            deck.pilot,
            lambda: header.alerts is not None and "firing" in header.alerts.full.plain,
            "the header to read the alerts",
        )
        await wait_until(deck.pilot, lambda: header.engine is not None, "the header to load")
        shown = header.render().plain
        # The queue gives way (to its short form) before the engine and the alerts do.
        assert "engine: no report  alerts: 1 firing  0 ready, 0 running" in shown, shown
        assert "…" not in shown and shown.rstrip().endswith("UTC"), shown

    await run(test_settings, db, redis, size=(80, 24))(body)


async def test_the_demo_cap_fires_a_long_condition_after_the_cap(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    """The demo caps every `for` (ALERT_FOR_MAX_S): the breaker fires in 30 s, not 5 min."""
    settings = demo_alert_timing(test_settings)
    assert settings.alerts.for_max_s == DEMO_ALERT_FOR_MAX_S == 30
    assert BY_NAME["BreakerOpenLong"].for_s == 300

    async def body(deck: Deck) -> None:
        await _open_breaker(deck)
        assert await deck.state("BreakerOpenLong") == State.PENDING
        deck.clock.advance(DEMO_ALERT_FOR_MAX_S + 1)
        await deck.beat()
        status = (await deck.statuses())["BreakerOpenLong"]
        assert status.state == State.FIRING and status.condition.for_s == DEMO_ALERT_FOR_MAX_S

    await run(settings, db, redis)(body)


def test_the_demo_cap_reaches_the_engine_and_an_explicit_one_wins(test_settings: Settings) -> None:
    ports = DemoPorts(api=8000, mock=8765, metrics=0)
    assert child_env(demo_alert_timing(test_settings), ports)["ALERT_FOR_MAX_S"] == "30"
    mine = test_settings.replace(alerts={"for_max_s": 120})
    assert demo_alert_timing(mine).alerts.for_max_s == 120


@pytest.mark.parametrize("width", [80, 120])
def test_the_columns_fit_and_sev_gives_way_at_80(width: int) -> None:
    columns = columns_for(width)
    assert sum(w + CELL_PADDING for _, _, w in columns) + SCROLLBAR <= width
    assert ("severity" in [key for _, key, _ in columns]) == (width >= 120)


async def test_the_silence_dialog_says_why_only_after_an_edit_or_a_submit(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    async def body(deck: Deck) -> None:
        await deck.statuses()
        screen = deck.app.screen
        assert isinstance(screen, AlertsScreen)
        # No "-0s" or bare "0s": the "s" conditions say it in words.
        cells = [str(screen.table.get_row_at(i)[-1]) for i in range(screen.table.row_count)]
        assert not [c for c in cells if c.startswith(("-0s", "0s"))], cells
        await deck.pilot.press("s")
        await wait_until(deck.pilot, lambda: isinstance(deck.app.screen, SilenceModal), "dialog")
        modal = deck.app.screen

        def error() -> str:
            return str(modal.query_one("#silence-error", Static).render())

        await deck.pilot.pause(0.1)
        assert error() == "", error()  # nothing typed yet: no error
        await deck.pilot.press("enter")  # save without a reason: refused, and now it says why
        await wait_until(deck.pilot, lambda: "cannot save" in error(), "the reason's error")
        assert deck.app.screen is modal
        await deck.pilot.press(*"checking")
        await wait_until(deck.pilot, lambda: "ok" in error(), "ok once a reason is typed")
        await deck.pilot.press("escape")

    await run(test_settings, db, redis, size=(80, 24))(body)
