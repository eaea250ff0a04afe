"""The fetch job: refresh one batch of one platform's creators for one sampling slot.

Idempotent under arq's at-least-once delivery: the job first loads only the creators still
owed in its slot (`last_slot_at < slot`), and writes samples (ON CONFLICT DO NOTHING on
creator + slot), latest stats, dead letters, its batch counts and its report to the tick's run
row (the last batch to report completes the run: storage.queries.ticks) in ONE transaction. A job
killed mid-batch and run again therefore writes each sample once and counts each creator once.

Outcomes per creator: new stats (a sample), not modified (ETag: no sample, the check time
moves), gone (404: status gone + dead letter), needs-auth (401/403: status needs_auth + dead
letter), other permanent errors (dead letter), or deferred (breaker open, quota exhausted,
transient errors after in-call retries): the job re-runs later for those creators only, and
after `FETCH_MAX_TRIES` they become dead letters too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.worker import Retry

from engine import logs, metrics
from engine.platforms.caller import FetchOutcome, PlatformCaller
from engine.resilience import AuthFailure, Failure, NotFound
from engine.runtime import Runtime
from storage.errors import DB_DOWN_ERRORS
from storage.models import CreatorStatus
from storage.queries import creators, dead_letters, ticks
from storage.queries.creators import FetchTarget, SampleRow, StatusChange
from storage.settings import TrackingSettings

log = logs.get("engine.fetch")
TRACKER = "tracker"


@dataclass
class Tracker:
    """What fetch jobs of one worker share: settings and the resilient platform caller."""

    tracking: TrackingSettings
    caller: PlatformCaller


async def on_startup(ctx: dict[str, Any]) -> None:
    rt: Runtime = ctx["runtime"]
    tracking = rt.settings.tracking
    ctx[TRACKER] = Tracker(tracking, PlatformCaller(rt.redis, rt.settings, tracking))


async def on_shutdown(ctx: dict[str, Any]) -> None:
    tracker: Tracker | None = ctx.pop(TRACKER, None)
    if tracker is not None:
        await tracker.caller.close()


async def fetch_batch(
    ctx: dict[str, Any],
    run_id: int,
    batch_no: int,
    platform: str,
    slot_ts: int,
    creator_ids: list[int],
) -> str:
    """arq entry point."""
    rt: Runtime = ctx["runtime"]
    tracker: Tracker = ctx[TRACKER]
    job_try = int(ctx.get("job_try", 1))
    final = job_try >= tracker.tracking.fetch_max_tries
    try:
        report = await run_fetch(
            rt, tracker.caller, run_id, batch_no, platform, slot_ts, creator_ids, final
        )
    except DB_DOWN_ERRORS as exc:
        log.warning("fetch.db_unavailable", run_id=run_id, batch=batch_no, error=str(exc))
        raise Retry(defer=min(5 * job_try, 60)) from exc
    if report.retry_in_s is not None:
        # Creators left (breaker open, quota, transient errors): this job runs again for them.
        raise Retry(defer=report.retry_in_s * (1 + random.random() / 5))
    return "ok"


@dataclass
class FetchReport:
    counts: dict[str, int]
    retry_in_s: float | None = None


def _status_for(failure: Failure) -> CreatorStatus | None:
    if isinstance(failure, NotFound):
        return CreatorStatus.GONE
    if isinstance(failure, AuthFailure):
        return CreatorStatus.NEEDS_AUTH
    return None


def _letter(target: FetchTarget, error: str, slot_ts: int) -> dead_letters.Letter:
    return dead_letters.Letter(
        kind=dead_letters.FETCH,
        dedupe_key=dead_letters.fetch_key(target.creator_id),
        error=error,
        creator_id=target.creator_id,
        payload={
            "creator_id": target.creator_id,
            "platform": target.platform,
            "external_id": target.external_id,
            "slot_ts": slot_ts,
        },
    )


async def run_fetch(
    rt: Runtime,
    caller: PlatformCaller,
    run_id: int,
    batch_no: int,
    platform: str,
    slot_ts: int,
    creator_ids: list[int],
    final: bool,
) -> FetchReport:
    slot = datetime.fromtimestamp(slot_ts, UTC)
    async with rt.db.session() as session:
        targets = await creators.load_for_fetch(session, creator_ids, slot)
    outcome = await caller.fetch(platform, targets) if targets else FetchOutcome()
    by_id = {t.creator_id: t for t in targets}
    result = outcome.result
    samples = [
        SampleRow(cid, o.followers, o.following, o.posts, o.views, o.etag, o.last_modified)
        for cid, o in result.observed.items()
    ]
    changes: list[StatusChange] = []
    letters: list[dead_letters.Letter] = []
    gone = needs_auth = 0
    for cid, failure in result.failures.items():
        status = _status_for(failure)
        if status is not None:
            changes.append(StatusChange(cid, status, str(failure)))
            gone += status == CreatorStatus.GONE
            needs_auth += status == CreatorStatus.NEEDS_AUTH
        letters.append(_letter(by_id[cid], f"{failure.kind.value}: {failure}", slot_ts))
    gave_up = 0
    if outcome.deferred and final:
        for cid, why in outcome.deferred.items():
            letters.append(_letter(by_id[cid], f"gave up after the last try: {why}", slot_ts))
        gave_up = len(outcome.deferred)
    for outcome_name, count in (
        ("fetched", len(samples)),
        ("not_modified", len(result.not_modified)),
        ("failed", len(result.failures) + gave_up),
    ):
        metrics.FETCH_RESULTS.labels(platform, outcome_name).inc(count)
    counts = {
        "fetched": len(samples),
        "not_modified": len(result.not_modified),
        "failed": len(result.failures) + gave_up,
        "gone": gone,
        "needs_auth": needs_auth,
        "api_calls": outcome.calls,
        "retried_later": 0 if final else len(outcome.deferred),
    }
    waiting = bool(outcome.deferred) and not final
    error = None
    if outcome.deferred:
        error = next(iter(outcome.deferred.values()))
    now = datetime.now(UTC)
    async with rt.db.transaction() as session:
        written = await creators.write_fetch_results(
            session,
            slot=slot,
            fetched_at=now,
            samples=samples,
            not_modified=result.not_modified,
            status_changes=changes,
        )
        fine = [s.creator_id for s in samples] + list(result.not_modified)
        await dead_letters.resolve_creators(session, fine)
        await dead_letters.record(session, letters)
        if run_id:
            first = await creators.add_batch_counts(
                session,
                run_id=run_id,
                batch_no=batch_no,
                platform=platform,
                size=len(creator_ids),
                status="deferred" if waiting else "done",
                counts=counts,
                error=error,
            )
            # The run's ledger row, in this same transaction: completion and counts.
            await ticks.report_batch(session, run_id=run_id, batch_no=batch_no, first_report=first)
    log.info(
        "fetch.batch",
        run_id=run_id,
        batch=batch_no,
        platform=platform,
        owed=len(targets),
        samples=written.samples_written,
        breaker=outcome.breaker_open,
        **counts,
    )
    return FetchReport(counts, outcome.retry_in_s if waiting else None)
