"""Operating the dead-letter queue: send letters back to the fetch queue, or drop them.

The console calls these (it has no SQL or Redis of its own). A requeued fetch letter makes
its creator active again and enqueues a fetch for the current sampling slot; success deletes
the letter, a new failure makes it pending again with one more attempt.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from arq.connections import ArqRedis

from engine import fetch_queue
from storage.database import Database
from storage.models import CreatorStatus
from storage.permissions import Actor
from storage.queries import creators, dead_letters
from storage.settings import Settings


async def requeue(
    db: Database, redis: ArqRedis, settings: Settings, ids: list[int] | None, *, actor: Actor
) -> int:
    """Requeue these letters (every pending one when `ids` is None); returns how many."""
    async with db.transaction() as session:
        letters = await dead_letters.mark_requeued(session, ids, actor=actor)
    if not letters:
        return 0
    per_platform: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for letter in letters:
        creator_id = letter.creator_id
        platform = str(letter.payload.get("platform", ""))
        if letter.kind == dead_letters.FETCH and creator_id is not None and platform:
            per_platform[platform].append((letter.id, creator_id))
    all_creators = [cid for pairs in per_platform.values() for _, cid in pairs]
    async with db.transaction() as session:
        await creators.set_status(session, all_creators, CreatorStatus.ACTIVE, actor=actor)
    tracking = settings.tracking
    slot = creators.slot_start(datetime.now(UTC), tracking.sample_slot_s)
    stamp = int(time.time() * 1000)
    jobs = []
    for platform, pairs in sorted(per_platform.items()):
        size = tracking.fetch_batch_size
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            jobs.append(
                fetch_queue.FetchRequest(
                    job_id=fetch_queue.requeue_job_id(settings, chunk[0][0], stamp),
                    run_id=0,
                    batch_no=0,
                    platform=platform,
                    slot_ts=int(slot.timestamp()),
                    creator_ids=[cid for _, cid in chunk],
                )
            )
    await fetch_queue.enqueue_fetches(redis, settings, jobs)
    return len(letters)


async def drop(db: Database, ids: list[int] | None, *, actor: Actor) -> int:
    """Drop these letters (all when `ids` is None); the audit log keeps a copy."""
    async with db.transaction() as session:
        return await dead_letters.drop(session, ids, actor=actor)
