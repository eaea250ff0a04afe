"""Judging the alert conditions on `Facts`, as Prometheus judges the rules on the gauges.

Pure: a function of the facts, the silences and what the tracker remembers, tested without
I/O. `observe(condition, facts)` says whether a condition holds now, its value, and, where the
data says it, when it began (a breaker's opening, the first overdue fire time, a token's expiry
minus the threshold). `AlertTracker` turns observations into states over time the way
Prometheus does: a condition that holds is `pending` until it has held for its `for` duration,
then `firing`; where the data cannot say when it began (a failure ratio, an unreachable
server), the tracker remembers when it first saw it hold. A condition whose facts could not be
read is `unknown` (the unreachable dependency's own condition fires instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from engine.alerts.conditions import CONDITIONS, Condition
from engine.alerts.facts import Facts
from storage.queries.alerts import Counted, Silence


class State(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Observation:
    active: bool | None  # None: the facts it needs could not be read
    value: float | None = None
    began: datetime | None = None  # when it began to hold, when the data says so
    detail: str = ""


UNREAD = Observation(None, detail="not read")


def _hhmm(when: datetime) -> str:
    return when.strftime("%m-%d %H:%M")


def _seconds(value: float) -> str:
    # A healthy lag is tens of milliseconds: "0.0 s" would read as "no lag measured".
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _ratio(part: int, whole: int, what: str) -> tuple[float | None, str]:
    if not whole:
        return None, f"no {what} in 15 min"
    return part / whole, f"{part} of {whole} {what} in 15 min"


def _fire_missed(c: Condition, f: Facts) -> Observation:
    if f.overdue is None:
        return UNREAD
    if not f.overdue:
        return Observation(False, 0)
    first = min(f.overdue, key=lambda o: o.fire)
    more = f" and {len(f.overdue) - 1} more" if len(f.overdue) > 1 else ""
    return Observation(
        True,
        len(f.overdue),
        first.fire + timedelta(seconds=c.threshold),
        f"{first.region} {_hhmm(first.fire)}{more}",
    )


def _tick_failures(c: Condition, f: Facts) -> Observation:
    if f.ticks is None:
        return UNREAD
    ratio, detail = _ratio(f.ticks.failed, f.ticks.ok + f.ticks.failed, "ticks failed")
    return Observation(ratio is not None and ratio > c.threshold, ratio, None, detail)


def _tick_lag(c: Condition, f: Facts) -> Observation:
    if f.ticks is None:
        return UNREAD
    if f.ticks.lag_p99_ms is None:
        return Observation(False, None, None, "no tick in 15 min")
    p99 = f.ticks.lag_p99_ms / 1000
    return Observation(p99 > c.threshold, p99, None, f"p99 {_seconds(p99)}")


def _tick_long(c: Condition, f: Facts) -> Observation:
    if f.ticks is None:
        return UNREAD
    started = f.ticks.oldest_running_started
    if started is None:
        return Observation(False, 0, None, "no tick running")
    age = (f.now - started).total_seconds()
    return Observation(
        age > c.threshold,
        age,
        started + timedelta(seconds=c.threshold),
        f"running since {_hhmm(started)}",
    )


def _counted(counted: Counted | None, c: Condition, what: str) -> Observation:
    if counted is None:
        return UNREAD
    return Observation(counted.count > c.threshold, counted.count, counted.since, what)


def _publish_failed(c: Condition, f: Facts) -> Observation:
    n = f.publish_failed.count if f.publish_failed else 0
    return _counted(f.publish_failed, c, f"{n} failed in 15 min")


def _publish_unknown(c: Condition, f: Facts) -> Observation:
    n = f.publish_unknown.count if f.publish_unknown else 0
    return _counted(f.publish_unknown, c, f"{n} waiting")


def _dead_letters(c: Condition, f: Facts) -> Observation:
    if f.dead_letters is None:
        return UNREAD
    recent = f.dead_letters.recent
    detail = f"{recent.count} new in 30 min, {f.dead_letters.pending} pending"
    return _counted(recent, c, detail)


def _breaker(c: Condition, f: Facts) -> Observation:
    if f.platforms is None:
        return UNREAD
    opened = [p for p in f.platforms if p.breaker != "closed"]
    if not opened:
        return Observation(False, 0)
    began = [p.breaker_since for p in opened if p.breaker_since is not None]
    detail = ", ".join(f"{p.platform} {p.breaker} ({p.breaker_reason or '?'})" for p in opened)
    value = max(1.0 if p.breaker == "open" else 0.5 for p in opened)
    return Observation(value > c.threshold, value, min(began) if began else None, detail)


def _quota(c: Condition, f: Facts) -> Observation:
    if f.platforms is None:
        return UNREAD
    used = [(p.quota_ratio, p) for p in f.platforms if p.quota_ratio is not None]
    if not used:
        return Observation(False, None, None, "no quota tracked")
    ratio, worst = max(used, key=lambda pair: pair[0] or 0.0)
    assert ratio is not None
    detail = f"{worst.platform} {worst.quota_used}/{worst.quota_limit}"
    return Observation(ratio > c.threshold, ratio, None, detail)


def _replicas(c: Condition, f: Facts) -> Observation:
    if f.replicas_alive is None:
        return UNREAD
    alive = f.replicas_alive
    return Observation(alive < c.threshold, alive, None, f"{alive} alive")


def _postgres(c: Condition, f: Facts) -> Observation:
    return Observation(f.postgres_error is not None, None, None, f.postgres_error or "answers")


def _redis(c: Condition, f: Facts) -> Observation:
    return Observation(f.redis_error is not None, None, None, f.redis_error or "answers")


def _events(c: Condition, f: Facts) -> Observation:
    if f.events is None:
        return UNREAD
    ratio, detail = _ratio(f.events.refused, f.events.accepted + f.events.refused, "refused")
    return Observation(ratio is not None and ratio > c.threshold, ratio, None, detail)


def _tokens(c: Condition, f: Facts) -> Observation:
    if f.token_expiry is None:
        return UNREAD
    if not f.token_expiry:
        return Observation(False, None, None, "no token with an expiry")
    platform, expires = min(f.token_expiry.items(), key=lambda item: item[1])
    left = (expires - f.now).total_seconds()
    return Observation(
        left < c.threshold,
        left,
        expires - timedelta(seconds=c.threshold),
        f"{platform} expires {_hhmm(expires)}",
    )


CHECKS: dict[str, Callable[[Condition, Facts], Observation]] = {
    "RegionFireTimeMissed": _fire_missed,
    "TickFailureRate": _tick_failures,
    "TickLagHigh": _tick_lag,
    "TickRunningLong": _tick_long,
    "PublishFailures": _publish_failed,
    "PublishOutcomeUnknown": _publish_unknown,
    "BreakerOpenLong": _breaker,
    "QuotaNearlyUsed": _quota,
    "DeadLettersGrowing": _dead_letters,
    "EngineReplicaGone": _replicas,
    "PostgresUnreachable": _postgres,
    "RedisUnreachable": _redis,
    "EventRejectionRate": _events,
    "TokenExpiring": _tokens,
}


def observe(condition: Condition, facts: Facts) -> Observation:
    return CHECKS[condition.name](condition, facts)


@dataclass(frozen=True, slots=True)
class AlertStatus:
    condition: Condition
    state: State
    since: datetime | None  # when it began to hold (pending/firing), or when it cleared (ok)
    value: float | None
    detail: str
    silence: Silence | None = None

    @property
    def silenced(self) -> bool:
        return self.silence is not None


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    old: State
    new: State
    status: AlertStatus


class AlertTracker:
    """States over time: remembers when each condition was first seen holding, and its state."""

    def __init__(self, conditions: tuple[Condition, ...] = CONDITIONS) -> None:
        self.conditions = conditions
        self._seen_since: dict[str, datetime] = {}
        self._state: dict[str, tuple[State, datetime | None]] = {}

    def evaluate(
        self, facts: Facts, silences: Mapping[str, Silence] | None = None
    ) -> tuple[list[AlertStatus], list[Change]]:
        now = facts.now
        statuses, changes = [], []
        for condition in self.conditions:
            seen = observe(condition, facts)
            old, old_since = self._state.get(condition.name, (State.OK, None))
            if seen.active is None:
                state, since = State.UNKNOWN, old_since
            elif seen.active:
                first = self._seen_since.setdefault(condition.name, now)
                began = min(seen.began, first) if seen.began is not None else first
                began = min(began, now)
                held = (now - began).total_seconds()
                state = State.FIRING if held >= condition.for_s else State.PENDING
                since = began
            else:
                self._seen_since.pop(condition.name, None)
                state = State.OK
                since = now if old in (State.PENDING, State.FIRING) else old_since
            self._state[condition.name] = (state, since)
            status = AlertStatus(
                condition,
                state,
                since,
                seen.value,
                seen.detail,
                (silences or {}).get(condition.name),
            )
            statuses.append(status)
            if state != old:
                changes.append(Change(condition.name, old, state, status))
        return statuses, changes
