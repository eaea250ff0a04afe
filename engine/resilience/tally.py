"""Breaker outcomes of many calls, recorded in one Redis call (the batch publish path).

A batch job sends many requests at once; recording each outcome with its own Lua call cost one
Redis round trip per publication. The batch path adds the outcome of every normal (non-probe)
send here and flushes the tally with `CircuitBreaker.record_many` every few tens of ms (its
recorder's interval) and when the job ends: the breaker sees the same counts, in the same
order's effect (calls, failures, failures in a row since the last success), a few ms later.
A half-open probe is never tallied: its outcome is recorded at once, as on the single path.

`flush` takes the counts and resets them before its one await, so concurrent flushes never
count an outcome twice. If Redis fails, the counts of that flush are dropped (and logged): the
breaker then under-counts, as it would have for those calls' own failed record calls.
"""

from __future__ import annotations

from engine import logs
from engine.resilience.breaker import CircuitBreaker

log = logs.get("engine.breaker_tally")


class BreakerTally:
    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self._reset()

    def _reset(self) -> None:
        self.calls = 0
        self.failures = 0
        self.trailing = 0  # failures since the last success
        self.any_success = False
        self.reason = ""

    def success(self) -> None:
        self.calls += 1
        self.trailing = 0
        self.any_success = True

    def failure(self, reason: str) -> None:
        self.calls += 1
        self.failures += 1
        self.trailing += 1
        self.reason = reason

    async def flush(self) -> None:
        if not self.calls:
            return
        counts = (self.calls, self.failures, self.trailing, self.any_success, self.reason)
        self._reset()  # no await between reading the counts and this
        try:
            await self.breaker.record_many(*counts)
        except Exception as exc:
            log.warning(
                "breaker.tally_lost",
                platform=self.breaker.platform,
                calls=counts[0],
                error=repr(exc),
            )
