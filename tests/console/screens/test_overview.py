"""The Overview (landing) screen with Pilot against the real test servers, plus snapshots."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from console.app import CreatordeckApp
from console.data import ops as data_ops
from console.screens.help import HelpModal
from console.screens.overview import OverviewScreen, events_label, size_text
from console.screens.queues import QueuesScreen
from engine import heartbeat, queues, redis_keys, tick_queue
from engine.tick_queue import TickRequest, enqueue_ticks
from storage.database import Database
from storage.models import DeadLetter, Event, JobRun
from storage.queries import partitions
from storage.queries.partitions import TableSize
from storage.settings import Settings
from tests.console.screens.test_snapshots import _seed, settled
from tests.console.test_app import FROZEN, SIZE, add_region, frozen_clock, wait_until

HEALTH = "Nov-23 12:00:00 j_complete={} j_failed=2 j_retried=3 j_ongoing=1 queued=4"


def landing_app(settings: Settings, **kwargs: Any) -> CreatordeckApp:
    return CreatordeckApp(settings, clock=frozen_clock, **kwargs)


async def overview(pilot: Pilot[Any], loads: int = 1) -> OverviewScreen:
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, OverviewScreen) and pilot.app.screen.loads >= loads,
        "the Overview to load",
    )
    screen = pilot.app.screen
    assert isinstance(screen, OverviewScreen)
    return screen


def text_of(screen: OverviewScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def seed_activity(db: Database, settings: Settings, redis: Redis) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    await add_region(db, "CHICAGO_METRO", "30 6 * * *")
    await add_region(db, "PAUSED_REGION", "* * * * *", active=False)
    async with db.session() as session:
        for minutes, status, lag in ((10, "failed", 900), (20, "ok", 120), (300, "failed", 50)):
            session.add(
                JobRun(
                    kind="tick",
                    region_code="DETROIT_METRO",
                    scheduled_for=FROZEN - timedelta(minutes=minutes),
                    started_at=FROZEN - timedelta(minutes=minutes),
                    finished_at=FROZEN - timedelta(minutes=minutes),
                    status=status,
                    lag_ms=lag,
                    duration_ms=10,
                    attempt=1,
                )
            )
        session.add(
            DeadLetter(
                kind="fetch", dedupe_key="fetch:1", error="gone", payload={}, status="pending"
            )
        )
        for n in range(5):
            session.add(
                Event(
                    event_id=uuid.uuid4(),
                    unit_id="u1",
                    name="open",
                    occurred_at=FROZEN - timedelta(minutes=1 + n % 2),
                    client_ts=FROZEN - timedelta(minutes=1 + n % 2),
                    received_at=FROZEN - timedelta(minutes=1 + n % 2),
                    properties={},
                    assignments={},
                )
            )
        await session.commit()
    arq = await queues.connect(settings)
    try:
        # Deferred and ready by the console's clock (the real one plays no part).
        await enqueue_ticks(arq, settings, [TickRequest("DETROIT_METRO", FROZEN + timedelta(1))])
        await enqueue_ticks(arq, settings, [TickRequest("CHICAGO_METRO", FROZEN, manual=True)])
    finally:
        await arq.aclose()
    await redis.set(tick_queue.health_check_key(settings), HEALTH.format(12), ex=60)
    # A replica's liveness is a Redis TTL in real time; its uptime is read on the console's clock.
    started = FROZEN - timedelta(minutes=5)
    await heartbeat.beat_once(redis, settings, "host-a:101", "all", int(started.timestamp() * 1000))


async def test_overview_is_the_landing_screen_and_shows_the_figures(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    await seed_activity(db, test_settings, redis)
    app = landing_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await overview(pilot)
        engine = text_of(screen, "#ov-engine")
        assert "1 replica alive" in engine and "host-a:101 (all, up 5m00s)" in engine
        ticks = next(line for line in engine.splitlines() if line.startswith("ticks"))
        # ready 1 (the manual tick), deferred 1, running 0; then arq's health-check figures
        assert ticks.split()[:9] == ["ticks", "1", "1", "0", "12", "2", "3", "1", "alive"]
        fetch = next(line for line in engine.splitlines() if line.startswith("fetch"))
        assert fetch.split()[-1] == "none"

        next_runs = text_of(screen, "#ov-next")
        assert "11-24 03:00  DETROIT_METRO" in next_runs
        assert "11-24 06:30  CHICAGO_METRO" in next_runs
        assert "PAUSED_REGION" not in next_runs

        health = text_of(screen, "#ov-health")
        assert "Failures 1h 1" in health  # the one 10 minutes ago; not the one 5 hours ago
        assert "Dead letters 1" in health
        assert "(30 min: 5)" in text_of(screen, "#ov-events-label")  # the chart's own title
        assert "mock" in health and "closed" in health
        # Each partitioned table's size and oldest partition, read from the catalog.
        async with db.session() as session:
            sizes = {t.table: t for t in await partitions.table_sizes(session)}
        events, samples = sizes["event_log"], sizes["follower_sample"]
        assert events.oldest is not None and samples.oldest is not None
        assert f"{'events':<8}{size_text(events.bytes):>9} from {events.oldest:%Y-%m-%d}" in health
        assert (
            f"{'samples':<8}{size_text(samples.bytes):>9} from {samples.oldest:%Y-%m-%d}" in health
        )

        assert screen.query_one("#ov-lag", Sparkline).data == [50.0, 120.0, 900.0]
        assert sum(screen.query_one("#ov-events", Sparkline).data or []) == 5

        # Throughput is the growth of arq's complete counter between refreshes.
        await redis.set(tick_queue.health_check_key(test_settings), HEALTH.format(20), ex=60)
        await wait_until(pilot, lambda: 8.0 in screen.throughput, "the throughput sample")
        assert screen.query_one("#ov-throughput", Sparkline).data == list(screen.throughput)

        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")


async def test_overview_does_not_refresh_behind_a_modal_and_backs_off_on_errors(
    test_settings: Settings,
) -> None:
    app = landing_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await overview(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")
        await wait_until(pilot, lambda: not screen._loading, "any load in flight")
        loads = screen.loads
        for _ in range(100):
            screen._tick()
            assert not screen._loading
        assert screen.loads == loads
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.loads > loads, "a load once on top again")

    broken = test_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = landing_app(broken)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, OverviewScreen) and app.screen.backoff.failures >= 1,
            "a failed load",
        )
        failing = app.screen
        assert isinstance(failing, OverviewScreen)
        status = str(failing.query_one("#status-line", Static).render())
        assert "refresh failed" in status and failing.loads == 0
        # The wait chosen at the failure (the countdown itself moves every tick, and a busy
        # machine may run a tick before this line): at least twice the refresh interval.
        retry = re.search(r"retrying in (\d+)s", status)
        assert retry is not None and int(retry[1]) >= failing.refresh_s * 2


def seeded_landing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CreatordeckApp:
    asyncio.run(_seed(settings))
    monkeypatch.setenv("LOGNAME", "operator")  # the console's actor in its list of consoles

    # Partitions are named by real dates: the snapshots show fixed sizes on the frozen clock.
    async def sizes(_session: object) -> tuple[TableSize, ...]:
        return (
            TableSize("event_log", 5 * 1024**3, 91, FROZEN - timedelta(days=90), 0),
            TableSize("follower_sample", 310 * 1024**2, 26, FROZEN - timedelta(days=700), 0),
        )

    monkeypatch.setattr(data_ops, "table_sizes", sizes)
    return landing_app(settings)


def test_overview_snapshot_80x24(
    snap_compare: Any, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = seeded_landing(test_settings, monkeypatch)
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_overview_snapshot_200x60(
    snap_compare: Any, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = seeded_landing(test_settings, monkeypatch)
    assert snap_compare(app, terminal_size=(200, 60), run_before=settled)


async def test_heartbeat_lists_live_replicas_and_forgets_stopped_ones(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    from engine.runtime import Runtime

    arq = await queues.connect(test_settings)
    rt = Runtime(settings=test_settings, db=db, redis=arq, name="host-b:202")
    stop = asyncio.Event()
    task = asyncio.create_task(heartbeat.beat(rt, stop, "worker"))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not (found := await heartbeat.replicas(redis, test_settings)):
            assert asyncio.get_running_loop().time() < deadline, "no heartbeat"
            await asyncio.sleep(0.02)
        assert [(r.name, r.role) for r in found] == [("host-b:202", "worker")]
        # A replica that stopped beating (SIGKILL) drops out once its beat is stale.
        old = int((datetime.now(UTC).timestamp() - heartbeat.STALE_S - 1) * 1000)
        await redis.zadd(redis_keys.replicas_key(test_settings), {"host-dead:1": old})
        assert [r.name for r in await heartbeat.replicas(redis, test_settings)] == ["host-b:202"]
    finally:
        stop.set()
        await task
        await arq.aclose()
    # A clean stop says goodbye at once.
    assert await heartbeat.replicas(redis, test_settings) == ()


def test_the_events_title_fits_a_third_of_80_columns_and_says_unknown() -> None:
    busy = (1200,) * 29 + (1234, 50)  # the last whole minute is the one before the current
    assert events_label(busy, 80) == "events/min: 1234 (30 min: 36084)"
    assert events_label(busy, 26) == "events/min: 1234 (36k/30m)"
    assert events_label((12,) * 30, 24) == "events/min: 12 (360/30m)"  # a third of 80 columns
    assert events_label(busy, 16) == "events/min: 1234"
    assert events_label(None, 24) == "events/min: unknown"
