"""The engine's alert sampler: the facts Prometheus cannot count itself, exported as gauges.

Every `SAMPLE_S` each engine replica reads `engine.alerts.facts` (the same read the console
judges alerts on) and sets the gauges of `engine.metrics` that the rules of
`deploy/prometheus/alerts.yml` compare with their thresholds. Every replica exports the same
figures, so rules take their max (or min). A dependency that does not answer sets its
`creatordeck_dependency_up` to 0 and leaves the gauges it feeds at their last values.

With a `Notifier` (an ALERT_WEBHOOK_* is set) the same read is also judged, with the console's
`AlertTracker` and the silences from Postgres, and the notifier sends what changed
(`engine.alerts.notify`: one send per change however many replicas judge).

The engine starts it next to its heartbeat when it serves metrics (METRICS_PORT not 0) or
notifies. Cost: one facts read (a few indexed queries and a handful of Redis round trips) per
15 s; notifying adds one silences query and one Redis script call.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from engine import logs, metrics
from engine.alerts.conditions import with_for_cap
from engine.alerts.evaluate import AlertTracker
from engine.alerts.facts import FactReader, Facts
from engine.alerts.notify import Notifier
from engine.runtime import Runtime
from storage.queries import alerts as queries
from storage.queries.alerts import Silence

SAMPLE_S = 15.0

log = logs.get("engine.alerts")


def export(facts: Facts) -> None:
    """Set the gauges from one read of the facts."""
    metrics.DEPENDENCY_UP.labels("postgres").set(0 if facts.postgres_error else 1)
    metrics.DEPENDENCY_UP.labels("redis").set(0 if facts.redis_error else 1)
    if facts.overdue is not None:
        metrics.REGIONS_OVERDUE.set(len(facts.overdue))
    if facts.ticks is not None:
        started = facts.ticks.oldest_running_started
        age = (facts.now - started).total_seconds() if started else 0.0
        metrics.TICK_OLDEST_RUNNING.set(max(age, 0.0))
    if facts.publish_unknown is not None:
        metrics.PUBLICATIONS_UNKNOWN.set(facts.publish_unknown.count)
    if facts.dead_letters is not None:
        metrics.DEAD_LETTERS_PENDING.set(facts.dead_letters.pending)
        metrics.DEAD_LETTERS_RECENT.set(facts.dead_letters.recent.count)
    if facts.token_expiry is not None:
        metrics.TOKEN_EXPIRES_IN.clear()  # a reconnected or removed account leaves no series
        for platform, expires in facts.token_expiry.items():
            left = (expires - facts.now).total_seconds()
            metrics.TOKEN_EXPIRES_IN.labels(platform).set(left)
    if facts.replicas_alive is not None:
        metrics.ENGINE_REPLICAS.set(facts.replicas_alive)
    for seen in facts.platforms or ():
        ratio = seen.quota_ratio
        if ratio is not None:
            metrics.QUOTA_USED.labels(seen.platform).set(ratio)
        # CircuitBreaker.status() has already exported creatordeck_breaker_open.


async def judge(rt: Runtime, facts: Facts, tracker: AlertTracker, notifier: Notifier) -> None:
    """Judge one read of the facts and let the notifier send what changed."""
    silences: dict[str, Silence] = {}
    if facts.postgres_error is None:
        try:
            async with rt.db.session() as session:
                silences = await queries.active_silences(session, facts.now)
        except Exception as exc:  # unsilenced is the safe side: a page too many, not too few
            log.warning("alerts.silences_unread", error=repr(exc))
    statuses, _changes = tracker.evaluate(facts, silences)
    await notifier.observe(statuses)


async def run(rt: Runtime, stop: asyncio.Event, notifier: Notifier | None = None) -> None:
    """Sample until `stop`; a failed read is logged and tried again at the next interval."""
    reader = FactReader(rt.db, rt.settings)
    tracker = AlertTracker(with_for_cap(rt.settings.alerts.for_max_s))
    try:
        while not stop.is_set():
            try:
                facts = await reader.read(datetime.now(UTC), rt.redis)
                export(facts)
                if notifier is not None:
                    await judge(rt, facts, tracker, notifier)
            except Exception as exc:
                log.warning("alerts.sample_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SAMPLE_S)
    finally:
        with contextlib.suppress(Exception):
            await reader.close()
        if notifier is not None:
            await notifier.close()
