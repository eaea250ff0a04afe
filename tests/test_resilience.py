"""Breaker, quota and retry classification against real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

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


async def test_breaker_opens_half_opens_and_closes_across_two_workers(
    two_workers: tuple[Redis, Redis], test_settings: Settings
) -> None:
    a = CircuitBreaker(two_workers[0], test_settings, "mock", FAST)
    b = CircuitBreaker(two_workers[1], test_settings, "mock", FAST)
    # Worker A sees three failures in a row: open for everyone.
    for _ in range(3):
        await a.record_failure(await a.allow(), reason="HTTP 503")
    with pytest.raises(BreakerOpen) as refused:
        await b.allow()
    assert refused.value.state == BreakerState.OPEN
    assert 0 < refused.value.retry_in_s <= 0.3
    status = await b.status()
    assert status.state == BreakerState.OPEN and "HTTP 503" in (status.reason or "")

    # After the cool-down exactly one worker gets the probe.
    await asyncio.sleep(refused.value.retry_in_s + 0.02)
    probe = await b.allow()
    assert probe.probe
    with pytest.raises(BreakerOpen) as second:
        await a.allow()
    assert second.value.state == BreakerState.HALF_OPEN

    # The probe fails: open again. Next probe succeeds: closed for both.
    assert await b.record_failure(probe, reason="HTTP 500") == BreakerState.OPEN
    with pytest.raises(BreakerOpen):
        await a.allow()
    deadline = time.monotonic() + 2
    while True:
        try:
            probe = await a.allow()
            break
        except BreakerOpen as exc:
            assert time.monotonic() < deadline
            await asyncio.sleep(exc.retry_in_s)
    assert await a.record_success(probe) == BreakerState.CLOSED
    assert (await b.allow()).state == BreakerState.CLOSED


async def test_breaker_ratio_and_lost_probe(redis: Redis, test_settings: Settings) -> None:
    breaker = CircuitBreaker(redis, test_settings, "x", FAST)
    # Alternating outcomes never make three in a row, but 2 of 4 reach the ratio.
    outcomes = [True, False, True, False]
    states = []
    for ok in outcomes:
        permit = await breaker.allow()
        states.append(
            await (breaker.record_success(permit) if ok else breaker.record_failure(permit))
        )
    assert states[-1] == BreakerState.OPEN
    await asyncio.sleep(0.35)
    await breaker.allow()  # the probe's worker "dies": it never reports
    with pytest.raises(BreakerOpen):
        await breaker.allow()
    await asyncio.sleep(0.55)
    assert (await breaker.allow()).probe  # the lease expired: someone else probes


async def test_breaker_keys_live_under_the_prefix(redis: Redis, test_settings: Settings) -> None:
    breaker = CircuitBreaker(redis, test_settings, "youtube", FAST)
    await breaker.record_failure(await breaker.allow())
    assert breaker.key.startswith(test_settings.redis_prefix + ":")
    assert await redis.exists(breaker.key)


async def test_quota_is_shared_and_waits(
    two_workers: tuple[Redis, Redis], test_settings: Settings
) -> None:
    quota = Quota("mock", calls=5, per_s=1)
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
        started = time.monotonic()
        await one.acquire(quota, "tok", max_wait_s=3.0)
        assert time.monotonic() - started > 0.05
        usage = await one.usage(quota, "tok")
        assert usage.limit == 5 and usage.used >= 1
    finally:
        await one.close()
        await two.close()


async def test_retry_after_pause_holds_every_worker(redis: Redis, test_settings: Settings) -> None:
    quota = Quota("mock", calls=1000, per_s=1)
    limiter = RateLimiter(redis, test_settings)
    try:
        await limiter.pause(quota, "app", 0.4)
        wait = await limiter.try_acquire(quota, "app")
        assert 0.2 < wait <= 0.4
        with pytest.raises(RateLimited):
            await limiter.acquire(quota, "app", max_wait_s=0.1)
        started = time.monotonic()
        await limiter.acquire(quota, "app", max_wait_s=2)
        assert time.monotonic() - started >= 0.2
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

    policy = RetryPolicy(attempts=4, initial_s=0.01, max_backoff_s=0.05)
    async for attempt in retrying(policy):
        with attempt:
            result = await flaky()
    assert result == "ok" and len(calls) == 3
    assert calls[1] - calls[0] >= 0.3  # Retry-After honoured
    assert calls[2] - calls[1] < 0.2  # jittered exponential backoff otherwise

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
