"""What a region tick does once it owns its fire time: refresh the region's creators.

1. The sampling slot is the run's fire time floored to `SAMPLE_SLOT_S`, so a re-run of the
   tick (a worker died) works on the same slot and skips creators already written.
2. Due creators (active, not yet checked in this slot) are split per platform into batches of
   `FETCH_BATCH_SIZE` and enqueued as fetch jobs on the fetch queue (engine.fetch_queue).
   A platform whose breaker is open gets its batches deferred to the end of the cool-down,
   and the ledger says why. A platform without credentials is skipped, and counted.
3. The tick waits (up to 80% of its time limit) until each of its batches is done or has
   reported that it waits to try again (breaker, quota, transient errors), and does not wait
   for batches enqueued behind an open breaker. Then it returns the ledger counts:
   creators_due, fetched, not_modified, failed (gone, needs_auth), api_calls,
   batches / batches_done, and the first errors. Batches that end later still add their
   counts to the run row (engine.jobs.fetch).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from engine import fetch_queue, logs
from engine.platforms.config import get_tracking_settings
from engine.platforms.registry import build_adapters
from engine.resilience import BreakerState, CircuitBreaker
from engine.runtime import Runtime
from storage.models import JobRun, Region
from storage.queries import creators

log = logs.get("engine.refresh")
POLL_S = 0.2
WAIT_SHARE = 0.8
# Batch numbers of a tick's n-th attempt start at n * ATTEMPT_STRIDE: job ids stay unique.
ATTEMPT_STRIDE = 1_000_000


def plan_batches(due: list[tuple[int, str]], batch_size: int) -> list[tuple[str, list[int]]]:
    """(platform, creator ids) batches, each at most `batch_size` long."""
    per_platform: dict[str, list[int]] = defaultdict(list)
    for creator_id, platform in due:
        per_platform[platform].append(creator_id)
    batches: list[tuple[str, list[int]]] = []
    for platform in sorted(per_platform):
        ids = per_platform[platform]
        batches.extend((platform, ids[i : i + batch_size]) for i in range(0, len(ids), batch_size))
    return batches


async def refresh_region(rt: Runtime, region: Region, run_id: int) -> dict[str, Any]:
    tracking = get_tracking_settings()
    async with rt.db.autocommit() as session:  # two reads: no transaction round trips
        run = await session.get(JobRun, run_id)
        if run is None:
            return {"creators_due": 0}
        slot = creators.slot_start(run.scheduled_for, tracking.sample_slot_s)
        attempt = run.attempt
        due = await creators.due_creators(session, region.code, slot)
    if not due:
        return {"creators_due": 0}
    counts: dict[str, Any] = {"creators_due": len(due)}
    configured = set(build_adapters(tracking))
    skipped: dict[str, int] = defaultdict(int)
    owed = []
    for creator_id, platform in due:
        if platform in configured:
            owed.append((creator_id, platform))
        else:
            skipped[platform] += 1
    if skipped:
        counts["not_configured"] = dict(skipped)
    batches = plan_batches(owed, tracking.fetch_batch_size)
    breakers = await _open_breakers(rt, {platform for platform, _ in batches})
    if breakers:
        counts["breaker"] = {name: why for name, (why, _) in breakers.items()}
        # Batches of a platform whose breaker is open go last: the tick waits for the others
        # only (the deferred ones add their counts to this run when they end).
        batches.sort(key=lambda batch: batch[0] in breakers)
    waiting_for = sum(1 for platform, _ in batches if platform not in breakers)
    first = attempt * ATTEMPT_STRIDE if attempt > 1 else 0
    slot_ts = int(slot.timestamp())
    requests = [
        fetch_queue.FetchRequest(
            job_id=fetch_queue.fetch_job_id(rt.settings, run_id, first + n),
            run_id=run_id,
            batch_no=first + n,
            platform=platform,
            slot_ts=slot_ts,
            creator_ids=ids,
            defer_until_ms=breakers[platform][1] if platform in breakers else None,
        )
        for n, (platform, ids) in enumerate(batches)
    ]
    await fetch_queue.enqueue_fetches(rt.redis, rt.settings, requests)
    counts["batches"] = len(requests)
    log.info(
        "refresh.enqueued",
        region=region.code,
        run_id=run_id,
        due=len(due),
        batches=len(requests),
        slot=slot.isoformat(),
    )
    await _wait_for_batches(rt, run_id, first, waiting_for)
    async with rt.db.session() as session:
        totals = await creators.batch_totals(session, run_id)
    counts.update(totals.counts)
    counts["batches_done"] = totals.done
    if totals.errors:
        counts["errors"] = totals.errors
    return counts


async def _open_breakers(rt: Runtime, platforms: set[str]) -> dict[str, tuple[str, int]]:
    """Platforms whose breaker is open now: why, and until when (ms since the epoch)."""
    found = {}
    for platform in sorted(platforms):
        status = await CircuitBreaker(rt.redis, rt.settings, platform).status()
        if status.state == BreakerState.OPEN and status.open_until is not None:
            until = status.open_until
            if until > datetime.now(UTC):
                why = f"open until {until.isoformat(timespec='seconds')}: {status.reason}"
                found[platform] = (why, int(until.timestamp() * 1000))
    return found


async def _wait_for_batches(rt: Runtime, run_id: int, first: int, count: int) -> None:
    """Until batches first..first+count-1 are done, or every one of them has reported and the
    rest wait to try again later, or 80% of the tick's time is spent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.tick_timeout_s * WAIT_SHARE
    while count > 0 and loop.time() < deadline:
        async with rt.db.session() as session:
            done, deferred = await creators.finished_batches(
                session, run_id, first, first + count - 1
            )
        if done + deferred >= count:
            return
        await asyncio.sleep(POLL_S)
