"""The batch publish job: many publications due together, one claim, concurrent sends.

A batch job carries (publication, generation) pairs (engine.publish_queue makes it for the
publications due at one instant, mostly one account's). Every guarantee of `engine.jobs.publish`
holds per row, because a batch is its rows' single paths with the round trips shared:

1. the generation check: `claim_batch` claims a row only if its generation is the one the job
   carries; a row rescheduled, cancelled or retried since is skipped, the others go on;
2. claim before send: ONE conditional UPDATE moves every claimable row SCHEDULED -> PUBLISHING
   and commits before any request leaves; two runs of the same batch (a redelivery, a replica)
   split the rows, never share one;
3. a row the claim did not get is looked at on its own (`publish._not_claimed`): gone, stale,
   or still PUBLISHING after a worker died mid-batch, then taken over verify-first once its
   attempt is older than the job time limit (if it is not yet, the whole batch job is retried
   then: its other rows are stale by that time and cost one claim);
4. each send runs the single path's `_attempt`: verify-first for a row flagged so, and an error
   after the request may have left is never retried blindly. Only one row's outcome is
   affected by its own failure.

Claiming follows capacity: the job takes send slots from its process (engine.jobs.send_slots)
and claims at most that many rows per statement (CLAIM_CHUNK), so a claimed row's request leaves
at once; it stops claiming half-way through what its time limit leaves after one request's
timeout, and the rows left go to a follow-up batch job (same pairs, nothing changed in Postgres).

Shared per account and chunk: the token is decrypted once, the breaker asked once per platform
(a half-open breaker lets one row probe, the rest wait), and the rate limiter asked for as many
permits as there are rows in ONE call (halving until it grants; the rest are released, due when
the limiter says). Released rows (nothing sent) go back to SCHEDULED in one statement. Confirmed
publications are recorded by the process's recorder (engine.jobs.publish_recorder: one
statement every FLUSH_S for all the batch jobs running, and the job's own pending rows as it
ends); failures, retries and unknowns are written one by one (the rare case). A worker killed
(or a job cut at its time limit) between a send and that statement leaves its rows PUBLISHING:
the re-delivered job or the scheduler's reconcile takes them over, verify-first.

The breaker's counts of normal sends go to the process's tally (engine.resilience.tally), flushed
with the confirmed rows: one Redis call per platform per flush, not one per send.

Cost: per chunk one claim, one limiter call and a share of one record statement and one breaker
call, against ~9 round trips per publication on the single path.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.worker import Retry

from engine import logs, metrics, publish_queue
from engine.jobs.publish import (
    PublishContext,
    _attempt,
    _not_claimed,
    _read_token,
)
from engine.publishers.base import Publisher
from engine.resilience import BreakerOpen
from engine.resilience.breaker import Permit
from storage.errors import DB_DOWN_ERRORS
from storage.models import AttemptOutcome, Platform
from storage.queries import publishing
from storage.queries.publishing import AttemptResult, Claimed, Done, JobRef

log = logs.get("engine.publish_batch")
PROBE_WAIT_S = 1.0  # rows held back while one row probes a half-open breaker
CLAIM_CHUNK = 50  # rows claimed in one statement at most (fewer when fewer slots are free)
CLAIM_LEAST = 10  # ... and at least this many when they free up within send_slots.GATHER_S
CLAIM_WINDOW_MIN_S = 0.5  # a batch job claims for at least this long


async def publish_batch(ctx: dict[str, Any], pairs: Sequence[Sequence[int]]) -> str:
    """arq entry point; the result says how many rows ended which way."""
    pc: PublishContext = ctx["publishing"]
    try:
        outcomes = await run_batch(pc, [(int(pub), int(gen)) for pub, gen in pairs])
    except DB_DOWN_ERRORS as exc:
        log.warning("publish_batch.db_unavailable", rows=len(pairs), error=str(exc))
        raise Retry(defer=min(5 * ctx.get("job_try", 1), 60)) from exc
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        metrics.PUBLISH_RESULTS.labels(outcome).inc()
        counts[outcome] += 1
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


async def run_batch(pc: PublishContext, pairs: list[tuple[int, int]]) -> list[str]:
    """Claim rows as send slots free up, send each at once, record; one outcome word per row
    handled (rows left over when the claiming window closes go to a follow-up batch job)."""
    loop = asyncio.get_running_loop()
    # Claim only while a send started now ends well within the job's time limit: half of what
    # the limit leaves after one request's timeout (the rest covers a slow claim and recording).
    window = (pc.policy.timeout_s - pc.policy.request_timeout_s) / 2
    stop_at = loop.time() + max(window, CLAIM_WINDOW_MIN_S)
    job = pc.recorder.start()
    tasks: list[asyncio.Task[str]] = []
    rest = list(pairs)
    try:
        while rest:
            slots = await pc.slots.take(CLAIM_CHUNK, stop_at - loop.time(), CLAIM_LEAST)
            if slots == 0:
                break
            chunk, rest = rest[:slots], rest[slots:]
            tasks.extend(await _claim_and_send(pc, chunk, slots, pc.recorder.rows))
        if rest:
            await _follow_up(pc, rest)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await pc.recorder.finish(job)
    outcomes: list[str] = []
    busy: list[Retry] = []
    for result in results:
        if isinstance(result, Retry):
            busy.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            outcomes.append(result)
    if busy:  # a row still PUBLISHING elsewhere: come back when it can be taken over
        raise Retry(defer=max(float(r.defer_score or 0) / 1000 for r in busy))
    return outcomes


async def _claim_and_send(
    pc: PublishContext, chunk: list[tuple[int, int]], slots: int, done: list[Done]
) -> list[asyncio.Task[str]]:
    """Claim `chunk` in one statement and start its sends (each holds one of `slots` until it
    ends; slots not used are given back)."""
    rt = pc.rt
    try:
        async with publishing.autocommit(rt.db.engine) as conn:
            claimed = await publishing.claim_batch(conn, chunk, rt.name)
    except BaseException:
        await pc.slots.give(slots)
        raise
    got = {c.work.publication.id for c in claimed}
    tasks = [
        asyncio.create_task(_not_claimed(pc, pub, gen)) for pub, gen in chunk if pub not in got
    ]
    by_account: dict[int, list[Claimed]] = defaultdict(list)
    for item in claimed:
        by_account[item.work.connection.id].append(item)
    sending = 0
    try:
        for items in by_account.values():
            sends, held = await _account(pc, items, done)
            sending += len(sends)
            tasks.extend(asyncio.create_task(_holding_slot(pc, send)) for send in sends)
            tasks.extend(asyncio.create_task(_word("deferred")) for _ in range(held))
    finally:
        await pc.slots.give(slots - sending)
    return tasks


async def _holding_slot(pc: PublishContext, send: Coroutine[Any, Any, str]) -> str:
    try:
        return await send
    finally:
        await pc.slots.give(1)


async def _follow_up(pc: PublishContext, rest: list[tuple[int, int]]) -> None:
    """Rows this job had no time to claim: a new batch job for them, due now."""
    now = datetime.now(UTC)
    refs = [JobRef(pub, gen, now) for pub, gen in rest]
    try:
        await publish_queue.enqueue_publications(pc.rt.redis, pc.rt.settings, refs, batch_min=1)
    except Exception as exc:  # Postgres has them; the scheduler's reconcile enqueues them later.
        log.warning("publish_batch.enqueue_failed", rows=len(refs), error=repr(exc))
    log.info("publish_batch.follow_up", rows=len(rest))


async def _account(
    pc: PublishContext, items: list[Claimed], done: list[Done]
) -> tuple[list[Coroutine[Any, Any, str]], int]:
    """The sends of one account's claimed rows (coroutines, not started) and how many rows its
    gates held back (those are released at once, nothing sent)."""
    work = items[0].work
    publisher = pc.publishers.get(Platform(work.connection.platform))
    if publisher is None:
        return [_no_publisher(pc, item) for item in items], 0
    token = _read_token(pc, work)
    if isinstance(token, tuple):
        await _release(pc, items, *token)
        return [], len(items)
    try:
        permit = await pc.breaker(publisher.platform.value).allow()
    except BreakerOpen as exc:
        await _release(
            pc, items, max(exc.retry_in_s, 0.5), f"{publisher.platform} circuit breaker open"
        )
        return [], len(items)
    go, held = items, []
    if permit.probe:
        go, held = items[:1], items[1:]
        await _release(pc, held, PROBE_WAIT_S, f"{publisher.platform} circuit breaker probing")
    granted, wait = await _budget(pc, publisher, work.connection.id, len(go))
    if granted < len(go):
        why = f"{publisher.platform} publishing limit reached for this account"
        await _release(pc, go[granted:], wait, why)
        held = [*held, *go[granted:]]
        go = go[:granted]
    sends = [_send(pc, item, publisher, permit, token, done) for item in go]
    return sends, len(held)


async def _budget(
    pc: PublishContext, publisher: Publisher, connection_id: int, wanted: int
) -> tuple[int, float]:
    """(permits granted, seconds to wait for more): ask for all in one call, halve if refused."""
    ask, wait = wanted, 0.0
    while ask > 0:
        wait = await pc.limiter.try_acquire(publisher.publish_limit, str(connection_id), ask)
        if wait == 0.0:
            return ask, 0.0
        ask //= 2
    return 0, wait


async def _send(
    pc: PublishContext,
    item: Claimed,
    publisher: Publisher,
    permit: Permit,
    token: str,
    done: list[Done],
) -> str:
    work = item.work
    return await _attempt(
        pc, work, publisher, item.attempt_id, work.publication.verify_first, permit, token, done
    )


async def _release(pc: PublishContext, items: list[Claimed], wait_s: float, why: str) -> None:
    """Nothing was sent: give the claims back in one statement, due later (with jitter)."""
    if not items:
        return
    due = datetime.now(UTC) + timedelta(seconds=wait_s * (1 + random.random() * 0.2))
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        released = await publishing.release_many(
            conn, [(i.work, i.attempt_id) for i in items], due, why
        )
    refs = [JobRef(pub, gen, due, items[0].work.connection.id) for pub, gen in released.items()]
    try:
        await publish_queue.enqueue_publications(pc.rt.redis, pc.rt.settings, refs)
    except Exception as exc:  # Postgres has them; the scheduler's reconcile enqueues them later.
        log.warning("publish_batch.enqueue_failed", rows=len(refs), error=repr(exc))
    log.info("publish_batch.deferred", rows=len(refs), reason=why, wait_s=wait_s)


async def _no_publisher(pc: PublishContext, item: Claimed) -> str:
    result = AttemptResult(
        AttemptOutcome.PERMANENT, f"no publisher for platform {item.work.connection.platform!r}"
    )
    async with publishing.autocommit(pc.rt.db.engine) as conn:
        await publishing.mark_failed(conn, item.work, item.attempt_id, result)
    return "failed"


async def _word(word: str) -> str:
    return word
