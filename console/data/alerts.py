"""The console's read model for alerts: the conditions of `engine.alerts`, judged here.

One `AlertMonitor` per console app (`monitor_for(app)`) reads the facts from Postgres and Redis
(`engine.alerts.facts`, the same read the engine exports to Prometheus), judges them with an
`AlertTracker` (which remembers since when each condition holds), and adds the silences from
Postgres. The header's alerts line and the `:alerts` screen share it, so a console runs one
facts read per `EVAL_S` however many screens ask (a read is a few indexed queries and a handful
of Redis round trips), and a new read happens at once when the console's clock has moved on by
`EVAL_S` (tests move it). Silencing writes an `alert_silence` row and an audit row in one
transaction.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from console.data.acting import acting
from console.data.common import STORE_ERRORS
from engine.alerts.conditions import BY_NAME, with_for_cap
from engine.alerts.evaluate import AlertStatus, AlertTracker, State
from engine.alerts.facts import FactReader, Facts
from storage.queries import alerts as queries
from storage.queries.alerts import Silence
from storage.queries.operators import Identity
from storage.user_error import UserError

if TYPE_CHECKING:
    from console.deck import Deck

EVAL_S = 10.0
MAX_SILENCE = timedelta(days=7)
UNITS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class AlertsView:
    statuses: tuple[AlertStatus, ...]
    evaluated_at: datetime
    facts: Facts
    silence_error: str | None = None  # silences could not be read (shown, alerts still judged)

    def count(self, state: State) -> int:
        return sum(1 for s in self.statuses if s.state == state and not s.silenced)

    @property
    def silenced(self) -> int:
        return sum(1 for s in self.statuses if s.silenced and s.state != State.OK)


class AlertMonitor:
    def __init__(self, deck: Deck) -> None:
        self.deck = deck
        self.reader = FactReader(deck.db, deck.settings)
        self.tracker = AlertTracker(with_for_cap(deck.settings.alerts.for_max_s))
        self.view: AlertsView | None = None
        self._lock = asyncio.Lock()
        self._read_mono = 0.0

    def _fresh(self, now: datetime) -> bool:
        view = self.view
        if view is None:
            return False
        moved = abs((now - view.evaluated_at).total_seconds())
        return moved < EVAL_S and time.monotonic() - self._read_mono < EVAL_S

    async def current(self, force: bool = False) -> AlertsView:
        """The latest judgement, read again when older than EVAL_S (or when forced)."""
        async with self._lock:
            now = self.deck.now()
            if self.view is not None and not force and self._fresh(now):
                return self.view
            redis: Redis | None = None
            why = ""
            try:
                redis = await self.deck.queue_pool()
            except STORE_ERRORS as exc:  # Redis down: judged as unreachable, the rest still read
                why = f"{type(exc).__name__}: {exc}"[:200]
            facts = await self.reader.read(now, redis, why)
            silences: dict[str, Silence] = {}
            error = None
            if facts.postgres_error is None:
                try:
                    async with self.deck.db.session() as session:
                        silences = await queries.active_silences(session, now)
                except STORE_ERRORS as exc:
                    error = f"{type(exc).__name__}: {exc}"[:200]
            statuses, _changes = self.tracker.evaluate(facts, silences)
            self.view = AlertsView(tuple(statuses), now, facts, error)
            self._read_mono = time.monotonic()
            return self.view


_monitors: weakref.WeakKeyDictionary[Deck, AlertMonitor] = weakref.WeakKeyDictionary()


def monitor_for(deck: Deck) -> AlertMonitor:
    monitor = _monitors.get(deck)
    if monitor is None:
        monitor = _monitors[deck] = AlertMonitor(deck)
    return monitor


class SilenceError(ValueError, UserError):
    """A silence that cannot be saved, with the reason a person can act on."""

    title = "silence refused"


def parse_duration(text: str) -> timedelta:
    """ "30m", "2h", "1d" → a timedelta of at most MAX_SILENCE."""
    raw = text.strip().lower()
    if len(raw) < 2 or raw[-1] not in UNITS or not raw[:-1].isdigit():
        raise SilenceError("duration: a number and m, h or d, e.g. 30m, 2h, 1d")
    duration = timedelta(seconds=int(raw[:-1]) * UNITS[raw[-1]])
    if duration <= timedelta(0):
        raise SilenceError("duration: must be more than 0")
    if duration > MAX_SILENCE:
        raise SilenceError("duration: at most 7d (silence again if it still must be quiet)")
    return duration


def check_reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise SilenceError("reason: say why (the audit log keeps it)")
    if len(reason) > 500:
        raise SilenceError(f"reason: {len(reason)} characters, at most 500")
    return reason


async def silence(
    deck: Deck, condition: str, duration: timedelta, reason: str, actor: Identity
) -> datetime:
    """Silence `condition` for `duration` from the console's now; returns the end."""
    if condition not in BY_NAME:
        raise SilenceError(f"no alert condition {condition!r}")
    until = deck.now() + duration
    async with deck.db.transaction() as session:
        await queries.add_silence(
            session,
            condition=condition,
            until=until,
            reason=check_reason(reason),
            actor=await acting(session, actor),
        )
    return until


async def unsilence(deck: Deck, condition: str, actor: Identity) -> int:
    async with deck.db.transaction() as session:
        return await queries.end_silences(
            session, condition=condition, now=deck.now(), actor=await acting(session, actor)
        )
