"""What metrics read is due, as a pure function of rows and a clock (tested without I/O).

A publication is due for the largest step `s` with `published_at + s <= now` that is larger
than the last step already read; the steps it skipped (the engine was down) are not read late,
since the numbers would be today's anyway. Due publications are grouped per connection (one
account's token) into batches of the platform's `max_batch` ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.queries.post_metrics import MetricCandidate


@dataclass(frozen=True, slots=True)
class DueRead:
    candidate: MetricCandidate
    step_s: int


@dataclass(frozen=True, slots=True)
class MetricsBatch:
    """One API call's worth of due reads: one platform, one account, at most max_batch ids."""

    platform: str
    connection_id: int
    reads: tuple[DueRead, ...]


def due_step(
    published_at: datetime, last_step_s: int | None, steps_s: Sequence[int], now: datetime
) -> int | None:
    """The step to read now, or None (not yet due, or already read)."""
    age_s = (now - published_at).total_seconds()
    reached = [s for s in steps_s if s <= age_s]
    if not reached:
        return None
    step = reached[-1]
    if last_step_s is not None and step <= last_step_s:
        return None
    return step


def plan_batches(
    candidates: Sequence[MetricCandidate],
    steps_s: Sequence[int],
    now: datetime,
    max_batch: Mapping[str, int],
) -> list[MetricsBatch]:
    """Due reads grouped per connection and cut to each platform's batch size."""
    by_connection: dict[tuple[str, int], list[DueRead]] = {}
    for cand in candidates:
        step = due_step(cand.published_at, cand.last_step_s, steps_s, now)
        if step is not None:
            by_connection.setdefault((cand.platform, cand.connection_id), []).append(
                DueRead(cand, step)
            )
    batches: list[MetricsBatch] = []
    for (platform, connection_id), reads in by_connection.items():
        size = max(1, max_batch.get(platform, 1))
        for i in range(0, len(reads), size):
            batches.append(MetricsBatch(platform, connection_id, tuple(reads[i : i + size])))
    return batches


def scan_window(steps_s: Sequence[int], now: datetime) -> tuple[datetime, datetime]:
    """Published-at bounds of publications that can be due: old enough for the first step,
    young enough that the final step is at most one final step late."""
    return now - timedelta(seconds=2 * steps_s[-1]), now - timedelta(seconds=steps_s[0])
