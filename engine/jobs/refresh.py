"""What a tick shard does once it owns its runs: enqueue fetch batches for their creators.

1. The sampling slot is the fire time floored to `SAMPLE_SLOT_S`, so a re-run of a shard (its
   worker died) works on the same slot and skips creators already written.
2. The due creators (active, not yet checked in this slot) of every claimed region are read in
   ONE query, split per run and platform into batches of `FETCH_BATCH_SIZE`, and enqueued on the
   fetch queue in one script call per 2,000 batches (engine.fetch_queue). A platform whose
   breaker is open gets its batches deferred to the end of the cool-down, and the ledger says
   why. A platform without credentials is skipped, and counted.
3. Nothing waits: each run row records how many batches it waits for (`batches_expected`: not
   those behind an open breaker); each batch reports in its own transaction and the last one
   completes the run (storage.queries.ticks). The ledger counts (creators_due, batches, then
   fetched, not_modified, failed, gone, needs_auth, api_calls, batches_done, errors) are merged
   in as batches report, late ones too.

Order, for a shard killed at any point: batches are enqueued before the fan-out is recorded, so
a recorded fan-out always has its batches; a run claimed and not fanned out is taken over by the
shard's re-run (a new attempt, whose batch numbers differ; batches of the old attempt still add
their counts but do not complete the run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine import fetch_queue, logs
from engine.platforms.registry import build_adapters
from engine.resilience import BreakerState, CircuitBreaker
from engine.runtime import Runtime
from storage.queries import creators, ticks
from storage.queries.ticks import ClaimedRun, FanOut
from storage.settings import TrackingSettings

log = logs.get("engine.refresh")
ATTEMPT_STRIDE = ticks.ATTEMPT_STRIDE
NOTHING_DUE: dict[str, Any] = {"creators_due": 0, "batches": 0}


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


@dataclass
class ShardPlan:
    """Every fetch batch of a shard's runs, and each run's fan-out record (pure data)."""

    requests: list[fetch_queue.FetchRequest] = field(default_factory=list)
    fan_outs: list[FanOut] = field(default_factory=list)


def plan_shard(
    settings: Any,
    tracking: TrackingSettings,
    claimed: Sequence[ClaimedRun],
    due: dict[str, list[tuple[int, str]]],
    slot: datetime,
    configured: set[str],
    breakers: dict[str, tuple[str, int]],
) -> ShardPlan:
    """Batches and fan-out counts for each claimed run (pure: no I/O)."""
    plan = ShardPlan()
    slot_ts = int(slot.timestamp())
    for run in claimed:
        owed = due.get(run.region_code)
        if not owed:  # most regions of a big burst, in the bench at least: no work, no batches
            plan.fan_outs.append(FanOut(run.run_id, run.attempt, 0, NOTHING_DUE))
            continue
        counts: dict[str, Any] = {"creators_due": len(owed)}
        skipped: dict[str, int] = defaultdict(int)
        fetchable = []
        for creator_id, platform in owed:
            if platform in configured:
                fetchable.append((creator_id, platform))
            else:
                skipped[platform] += 1
        if skipped:
            counts["not_configured"] = dict(skipped)
        batches = plan_batches(fetchable, tracking.fetch_batch_size)
        behind = {platform for platform, _ in batches if platform in breakers}
        if behind:
            counts["breaker"] = {name: breakers[name][0] for name in sorted(behind)}
        first = ticks.first_batch_no(run.attempt)
        for n, (platform, ids) in enumerate(batches):
            plan.requests.append(
                fetch_queue.FetchRequest(
                    job_id=fetch_queue.fetch_job_id(settings, run.run_id, first + n),
                    run_id=run.run_id,
                    batch_no=first + n,
                    platform=platform,
                    slot_ts=slot_ts,
                    creator_ids=ids,
                    defer_until_ms=breakers[platform][1] if platform in breakers else None,
                )
            )
        counts["batches"] = len(batches)
        # Batches behind an open breaker report when it closes: the run does not wait for them.
        expected = sum(1 for platform, _ in batches if platform not in breakers)
        plan.fan_outs.append(FanOut(run.run_id, run.attempt, expected, counts))
    return plan


async def fan_out(
    rt: Runtime, claimed: Sequence[ClaimedRun], fire: datetime
) -> tuple[dict[int, str], int]:
    """Enqueue the fetch batches of these runs, then record each run's fan-out.

    Returns (run id -> status after the fan-out, batches enqueued).
    """
    if not claimed:
        return {}, 0
    tracking = rt.settings.tracking
    slot = creators.slot_start(fire, tracking.sample_slot_s)
    async with rt.db.autocommit() as session:
        due = await creators.due_creators_of(session, [run.region_code for run in claimed], slot)
    configured = set(build_adapters(tracking)) if due else set()
    platforms = {platform for owed in due.values() for _, platform in owed} & configured
    breakers = await _open_breakers(rt, platforms)
    plan = plan_shard(rt.settings, tracking, claimed, due, slot, configured, breakers)
    if plan.requests:
        await fetch_queue.enqueue_fetches(rt.redis, rt.settings, plan.requests)
    async with rt.db.autocommit() as session:
        statuses = await ticks.fan_out(session, plan.fan_outs)
    if plan.requests:
        log.info(
            "refresh.enqueued",
            runs=len(claimed),
            due=sum(len(owed) for owed in due.values()),
            batches=len(plan.requests),
            slot=slot.isoformat(),
        )
    return statuses, len(plan.requests)


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
