"""The batch path's breaker tally: many outcomes in one Redis call, as if recorded one by one."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from engine.resilience import BreakerConfig, BreakerState, CircuitBreaker
from engine.resilience.tally import BreakerTally
from storage.settings import Settings
from tests.support.clock import ManualClock

FAST = BreakerConfig(
    window_s=10,
    min_calls=4,
    failure_ratio=0.5,
    consecutive_failures=3,
    open_s=0.3,
    probe_timeout_s=0.5,
)


def _breaker(redis: Redis, settings: Settings, clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(redis, settings, "mock", FAST, clock=clock)


async def test_a_tally_counts_calls_failures_and_failures_in_a_row(
    redis: Redis, test_settings: Settings
) -> None:
    clock = ManualClock(datetime.now(UTC))
    breaker = _breaker(redis, test_settings, clock)
    tally = BreakerTally(breaker)
    for _ in range(3):
        tally.success()
    tally.failure("HTTP 503")
    await tally.flush()
    status = await breaker.status()
    assert (status.state, status.calls, status.failures) == (BreakerState.CLOSED, 4, 1)
    await tally.flush()  # nothing tallied since: no call, nothing changes
    assert (await breaker.status()).calls == 4
    # Two more failures, no success between: three in a row (one before the last flush).
    tally.failure("HTTP 503")
    tally.failure("HTTP 500")
    await tally.flush()
    status = await breaker.status()
    assert status.state == BreakerState.OPEN
    assert status.reason is not None and "3 failures in a row" in status.reason


async def test_a_tally_opens_on_the_failure_ratio_like_one_by_one_records(
    redis: Redis, test_settings: Settings
) -> None:
    clock = ManualClock(datetime.now(UTC))
    one_by_one = CircuitBreaker(redis, test_settings, "x", FAST, clock=clock)
    for ok in (True, False, True, False):
        await (one_by_one.record_success() if ok else one_by_one.record_failure(reason="503"))
    tallied = _breaker(redis, test_settings, clock)
    tally = BreakerTally(tallied)
    for ok in (True, False, True, False):
        if ok:
            tally.success()
        else:
            tally.failure("503")
    await tally.flush()
    a, b = await one_by_one.status(), await tallied.status()
    assert a.state == b.state == BreakerState.OPEN
    assert (a.calls, a.failures) == (b.calls, b.failures) == (4, 2)


async def test_a_tally_reaching_a_half_open_breaker_closes_or_reopens_it(
    redis: Redis, test_settings: Settings
) -> None:
    clock = ManualClock(datetime.now(UTC))
    breaker = _breaker(redis, test_settings, clock)
    tally = BreakerTally(breaker)
    await breaker.force_open(0.3, "test")
    clock.advance(1)
    assert (await breaker.allow()).probe
    tally.success()
    await tally.flush()
    assert (await breaker.status()).state == BreakerState.CLOSED
    await breaker.force_open(0.3, "test")
    clock.advance(1)
    assert (await breaker.allow()).probe
    tally.success()
    tally.failure("HTTP 503")
    await tally.flush()
    assert (await breaker.status()).state == BreakerState.OPEN
