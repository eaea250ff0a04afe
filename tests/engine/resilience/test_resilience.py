"""Breaker, quota and retry classification against real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from redis.asyncio import Redis

from engine.resilience import (
    BreakerConfig,
    BreakerOpen,
    BreakerState,
    CircuitBreaker,
    FailureKind,
    Quota,
    RateLimited,
    RateLimiter,
    RetryPolicy,
    TransientFailure,
    classify_exception,
    classify_status,
    parse_retry_after,
    retrying,
)
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


@pytest.fixture
async def two_workers(test_settings: Settings) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two separate Redis connections: two workers (or processes) sharing one breaker."""
    a = Redis.from_url(test_settings.redis_url or "")
    b = Redis.from_url(test_settings.redis_url or "")
    yield a, b
    await a.aclose()
    await b.aclose()


def manual_clock() -> ManualClock:
    """Breaker time moved by hand (the breaker reads Redis server time when given none)."""
    return ManualClock(datetime(2026, 1, 1, tzinfo=UTC))


async def test_breaker_opens_half_opens_and_closes_across_two_workers(
    two_workers: tuple[Redis, Redis], test_settings: Settings
) -> None:
    clock = manual_clock()
    a = CircuitBreaker(two_workers[0], test_settings, "mock", FAST, clock=clock)
    b = CircuitBreaker(two_workers[1], test_settings, "mock", FAST, clock=clock)
    # Worker A sees three failures in a row: open for everyone.
    for _ in range(3):
        await a.record_failure(await a.allow(), reason="HTTP 503")
    clock.advance(0.1)
    with pytest.raises(BreakerOpen) as refused:
        await b.allow()
    assert refused.value.state == BreakerState.OPEN
    assert refused.value.retry_in_s == pytest.approx(0.2)
    status = await b.status()
    assert status.state == BreakerState.OPEN and "HTTP 503" in (status.reason or "")

    # After the cool-down exactly one worker gets the probe.
    clock.advance(refused.value.retry_in_s)
    probe = await b.allow()
    assert probe.probe
    clock.advance(FAST.probe_timeout_s - 0.001)  # the probe's lease still holds
    with pytest.raises(BreakerOpen) as second:
        await a.allow()
    assert second.value.state == BreakerState.HALF_OPEN

    # The probe fails: open again. Next probe succeeds: closed for both.
    assert await b.record_failure(probe, reason="HTTP 500") == BreakerState.OPEN
    clock.advance(FAST.open_s - 0.001)
    with pytest.raises(BreakerOpen) as again:
        await a.allow()
    clock.advance(again.value.retry_in_s)
    probe = await a.allow()
    assert probe.probe
    assert await a.record_success(probe) == BreakerState.CLOSED
    assert (await b.allow()).state == BreakerState.CLOSED


async def test_breaker_ratio_and_lost_probe(redis: Redis, test_settings: Settings) -> None:
    clock = manual_clock()
    breaker = CircuitBreaker(redis, test_settings, "x", FAST, clock=clock)
    # Alternating outcomes never make three in a row, but 2 of 4 reach the ratio.
    outcomes = [True, False, True, False]
    states = []
    for ok in outcomes:
        permit = await breaker.allow()
        states.append(
            await (breaker.record_success(permit) if ok else breaker.record_failure(permit))
        )
    assert states[-1] == BreakerState.OPEN
    clock.advance(FAST.open_s)
    await breaker.allow()  # the probe's worker "dies": it never reports
    clock.advance(FAST.probe_timeout_s - 0.001)
    with pytest.raises(BreakerOpen):
        await breaker.allow()
    clock.advance(0.001)
    assert (await breaker.allow()).probe  # the lease expired: someone else probes


async def test_breaker_without_a_clock_runs_on_redis_time(
    redis: Redis, test_settings: Settings
) -> None:
    breaker = CircuitBreaker(redis, test_settings, "redis-time", FAST)
    await breaker.force_open(60, "test")
    with pytest.raises(BreakerOpen) as refused:
        await breaker.allow()
    assert 50 < refused.value.retry_in_s <= 60
    status = await breaker.status()
    server_s, _ = await redis.time()
    assert status.open_until is not None
    assert 50 < status.open_until.timestamp() - server_s <= 61


async def test_breaker_keys_live_under_the_prefix(redis: Redis, test_settings: Settings) -> None:
    breaker = CircuitBreaker(redis, test_settings, "youtube", FAST)
    await breaker.record_failure(await breaker.allow())
    assert breaker.key.startswith(test_settings.redis_prefix + ":")
    assert await redis.exists(breaker.key)


async def test_quota_is_shared_and_waits(
    two_workers: tuple[Redis, Redis], test_settings: Settings
) -> None:
    # A minute-long window: the six calls below cannot straddle enough of it to free a slot,
    # however slowly a busy machine makes them.
    quota = Quota("mock", calls=5, per_s=60)
    one = RateLimiter(two_workers[0], test_settings)
    two = RateLimiter(two_workers[1], test_settings)
    try:
        granted = [await one.try_acquire(quota, "tok") == 0.0 for _ in range(3)]
        granted += [await two.try_acquire(quota, "tok") == 0.0 for _ in range(3)]
        assert granted == [True, True, True, True, True, False]
        # Another token has its own quota.
        assert await two.try_acquire(quota, "other") == 0.0
        with pytest.raises(RateLimited):
            await one.acquire(quota, "tok", max_wait_s=0.0)
        usage = await one.usage(quota, "tok")
        assert usage.limit == 5 and usage.used == 5
        # A full quota makes acquire wait for room, then grant (only lower bounds on time).
        fast = Quota("mock-wait", calls=1, per_s=1)
        started = time.monotonic()
        assert await one.try_acquire(fast, "tok") == 0.0
        await one.acquire(fast, "tok", max_wait_s=10.0)
        assert time.monotonic() - started > 0.05
    finally:
        await one.close()
        await two.close()


async def test_retry_after_pause_holds_every_worker(redis: Redis, test_settings: Settings) -> None:
    quota = Quota("mock", calls=1000, per_s=1)
    limiter = RateLimiter(redis, test_settings)
    try:
        await limiter.pause(quota, "app", 60)
        wait = await limiter.try_acquire(quota, "app")
        assert 50 < wait <= 60
        with pytest.raises(RateLimited):
            await limiter.acquire(quota, "app", max_wait_s=0.1)
        # A short pause is waited out: measured from before it was set, so only a lower bound.
        started = time.monotonic()
        await limiter.pause(quota, "other", 0.3)
        await limiter.acquire(quota, "other", max_wait_s=10)
        assert time.monotonic() - started >= 0.25
    finally:
        await limiter.close()


@pytest.mark.parametrize(
    ("status", "kind", "platform_fault"),
    [
        (500, FailureKind.TRANSIENT, True),
        (503, FailureKind.TRANSIENT, True),
        (429, FailureKind.RATE_LIMITED, False),
        (401, FailureKind.UNAUTHORIZED, False),
        (403, FailureKind.UNAUTHORIZED, False),
        (404, FailureKind.NOT_FOUND, False),
        (410, FailureKind.NOT_FOUND, False),
        (400, FailureKind.PERMANENT, False),
    ],
)
def test_status_classification(status: int, kind: FailureKind, platform_fault: bool) -> None:
    failure = classify_status(status)
    assert failure is not None
    assert failure.kind == kind
    assert failure.counts_against_platform is platform_fault
    assert failure.retryable() is (kind in (FailureKind.TRANSIENT, FailureKind.RATE_LIMITED))
    assert classify_status(304) is None and classify_status(200) is None


def test_transport_classification() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    not_sent = classify_exception(httpx.ConnectError("refused", request=request))
    assert not_sent.kind == FailureKind.TRANSIENT and not_sent.retryable()
    unknown = classify_exception(httpx.ReadTimeout("slow", request=request))
    assert unknown.kind == FailureKind.OUTCOME_UNKNOWN
    assert not unknown.retryable()  # a publish must not repeat it
    assert unknown.retryable(retry_outcome_unknown=True)  # a read may


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert (parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") or 0) > 0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_retrying_honours_retry_after_and_gives_up_on_permanent() -> None:
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise TransientFailure("busy", status=429, retry_after_s=0.3, rate_limited=True)
        if len(calls) == 2:
            raise TransientFailure("HTTP 503", status=503)
        return "ok"

    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # the waits chosen, not how long a busy loop took
        waits.append(seconds)

    policy = RetryPolicy(attempts=4, initial_s=0.01, max_backoff_s=0.05)
    async for attempt in retrying(policy).copy(sleep=sleep):
        with attempt:
            result = await flaky()
    assert result == "ok" and len(calls) == 3
    assert len(waits) == 2
    assert waits[0] >= 0.3  # Retry-After honoured
    assert waits[1] <= 0.05  # jittered exponential backoff otherwise

    permanent: list[int] = []
    with pytest.raises(Exception) as raised:
        async for attempt in retrying(policy):
            with attempt:
                permanent.append(1)
                failure = classify_status(404)
                assert failure is not None
                raise failure
    assert len(permanent) == 1 and "404" in str(raised.value)

    # A Retry-After beyond the policy's limit stops at once: the job defers instead.
    long_wait: list[int] = []
    with pytest.raises(TransientFailure):
        async for attempt in retrying(RetryPolicy(max_retry_after_s=1)):
            with attempt:
                long_wait.append(1)
                raise TransientFailure("slow down", status=429, retry_after_s=120)
    assert len(long_wait) == 1


async def test_breaker_state_is_exported_to_prometheus(
    redis: Redis, test_settings: Settings
) -> None:
    from engine import metrics

    def exported() -> float | None:
        return metrics.REGISTRY.get_sample_value(
            "creatordeck_breaker_open", {"platform": "instagram"}
        )

    breaker = CircuitBreaker(redis, test_settings, "instagram", FAST)
    await breaker.record_success(await breaker.allow())
    assert exported() == 0.0
    for _ in range(4):
        await breaker.record_failure(await breaker.allow())
        if exported() == 1.0:
            break
    assert exported() == 1.0
    await breaker.reset()
    await breaker.status()
    assert exported() == 0.0
