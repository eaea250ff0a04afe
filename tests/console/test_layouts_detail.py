"""The detail views at 80x24 (SSH, as a new user) and 120x40, on fixed data and a frozen clock:
a queued job's detail (Queues, `enter`), the dead-letter confirmations (requeue, drop) and a
creator's follower chart (Creators, `enter`).

Every time these views show derives from FROZEN: the job's enqueue time and run-at score, the
letter's failure times, the creator's fetch time and its four weeks of follower samples.

The job detail prints the whole job id, and ours start with REDIS_PREFIX, which is random per
test run (tests/conftest.py). The job therefore lives under a fixed id outside the run's prefix
(SNAP_PREFIX) while its queue stays inside it. Its key is written with identical bytes by every
run and only expires (never deleted), so two runs of this test at once on the shared Redis see
the same job.

Update after a deliberate change of the look:
    pytest tests/console/test_layouts_detail.py --snapshot-update
and review the SVGs (pytest writes snapshot_report.html on a mismatch).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from arq.jobs import serialize_job
from redis.asyncio import Redis
from textual.pilot import Pilot

from console.app import CreatordeckApp
from console.screens.creators import CreatorDetailScreen
from console.screens.dialogs import ConfirmModal
from console.screens.queues import JobDetailModal
from console.widgets.status_header import StatusHeader
from engine import redis_keys, tick_queue
from storage.database import Database
from storage.models import Creator, DeadLetter, FollowerSample
from storage.settings import Settings
from tests.console.screens.test_snapshots import _seed, _until, laid_out
from tests.console.test_app import FROZEN, frozen_clock
from tests.console.test_layouts import SIZES, on_screen

SNAP_PREFIX = "cdsnap"  # the fixed job's id prefix (see the module docstring)
JOB_TTL_MS = 600_000  # the fixed job outlives a test run, then goes
FIRE = FROZEN + timedelta(minutes=15)  # the job's run-at score: deferred by the frozen clock
ENQUEUED = FROZEN - timedelta(minutes=2)
SAMPLE_DAYS = 28
SAMPLES_PER_DAY = 4


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


async def _seed_job(settings: Settings) -> None:
    """A manual tick of DETROIT_METRO, written as arq writes a job (its serializer), with a
    fixed enqueue time and run-at score."""
    fixed = settings.model_copy(update={"redis_prefix": SNAP_PREFIX})
    job_id = tick_queue.tick_job_id(fixed, "DETROIT_METRO", FIRE, manual=True)
    shard = tick_queue.shard_of(settings, "DETROIT_METRO")
    payload = serialize_job(
        "tick", (int(FIRE.timestamp()), shard, None, True), {}, None, _ms(ENQUEUED)
    )
    client = Redis.from_url(settings.redis_url or "")
    try:
        await client.psetex(redis_keys.job_key(job_id), JOB_TTL_MS, payload)
        await client.zadd(tick_queue.queue_name(settings), {job_id: _ms(FIRE)})
    finally:
        await client.aclose()


async def _seed_creator(settings: Settings) -> None:
    """A creator with four weeks of follower samples (a dip in week three) and a pending dead
    letter of a fetch of it."""
    db = Database(settings)
    try:
        async with db.transaction() as session:
            creator = Creator(
                platform="mock",
                external_id="acct7",
                handle="studio_nine",
                display_name="Studio Nine",
                region_code="DETROIT_METRO",
                status="active",
                etag='W/"5f2c"',
                last_fetched_at=FROZEN - timedelta(minutes=40),
                last_slot_at=FROZEN - timedelta(hours=1),
                followers=48_210,
                following=312,
                posts=1_204,
                views=2_950_000,
                created_at=FROZEN - timedelta(days=60),
                updated_at=FROZEN - timedelta(minutes=40),
            )
            session.add(creator)
            await session.flush()
            steps = SAMPLE_DAYS * SAMPLES_PER_DAY
            for step in range(steps + 1):
                at = FROZEN - timedelta(hours=(steps - step) * 24 // SAMPLES_PER_DAY)
                dip = -900 if 14 * SAMPLES_PER_DAY <= step < 18 * SAMPLES_PER_DAY else 0
                session.add(
                    FollowerSample(
                        creator_id=creator.id,
                        observed_at=at,
                        followers=41_000 + step * 64 + dip + (step % 3) * 25,
                    )
                )
            session.add(
                DeadLetter(
                    kind="fetch",
                    dedupe_key="fetch:mock:acct7",
                    creator_id=creator.id,
                    payload={"platform": "mock", "external_id": "acct7"},
                    error="HTTPStatusError: 503 Service Unavailable from mockstagram (3 tries)",
                    attempts=3,
                    status="pending",
                    first_failed_at=FROZEN - timedelta(days=2, hours=3),
                    last_failed_at=FROZEN - timedelta(hours=3, minutes=12),
                )
            )
    finally:
        await db.dispose()


def detail_app(settings: Settings) -> CreatordeckApp:
    async def seed() -> None:
        await _seed(settings)
        await _seed_job(settings)
        await _seed_creator(settings)

    asyncio.run(seed())
    return CreatordeckApp(settings, clock=frozen_clock, landing="regions")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_job_detail(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def open_detail(pilot: Pilot[Any]) -> None:
        await on_screen("queues")(pilot)
        await _until(pilot, lambda: bool(pilot.app.screen.jobs), "the fixed job")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(pilot.app.screen, JobDetailModal), "job detail")
        await pilot.pause(0.2)

    assert snap_compare(detail_app(test_settings), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", ["r", "d"], ids=["requeue", "drop"])
def test_dead_letter_confirm(
    snap_compare: Any, test_settings: Settings, key: str, size: Any
) -> None:
    async def open_confirm(pilot: Pilot[Any]) -> None:
        await on_screen("deadletters")(pilot)
        await _until(pilot, lambda: bool(pilot.app.screen.letters), "the fixed letter")  # type: ignore[attr-defined]
        await pilot.press(key)
        await _until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), "the confirm")
        await pilot.pause(0.2)

    assert snap_compare(detail_app(test_settings), terminal_size=size, run_before=open_confirm)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_creator_detail(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def open_creator(pilot: Pilot[Any]) -> None:
        await on_screen("creators")(pilot)
        await _until(pilot, lambda: bool(pilot.app.screen.table.row_count), "the creator")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await _until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, CreatorDetailScreen)
                and pilot.app.screen.loads >= 1
                and pilot.app.screen.query_one(StatusHeader).engine is not None
                and pilot.app.screen.query_one(StatusHeader).alerts is not None
            ),
            "the creator detail",
        )
        await laid_out(pilot)

    assert snap_compare(detail_app(test_settings), terminal_size=size, run_before=open_creator)
