"""Resilience for calls to platform APIs: circuit breaker, shared quotas, retry with backoff.

Every piece keeps its state in Redis under `settings.redis_prefix`, so all workers of all engine
processes see one breaker and one quota per platform (and per token).

The three parts, and how a caller combines them (fetches and publishes do the same)::

    from engine.resilience import BreakerOpen, CircuitBreaker, Quota, RateLimiter, RetryPolicy
    from engine.resilience import classify_exception, classify_response, retrying

    breaker = CircuitBreaker(redis, settings, "x")             # breaker.py
    limiter = RateLimiter(redis, settings)                     # ratelimit.py
    quota = Quota("x", calls=300, per_s=900)                   # per platform (and token)

    async for attempt in retrying(RetryPolicy()):              # retry.py (tenacity)
        with attempt:
            permit = await breaker.allow()                     # raises BreakerOpen (defer!)
            await limiter.acquire(quota, token_id)             # waits for the shared quota
            try:
                response = await client.get(...)
            except httpx.HTTPError as exc:
                failure = classify_exception(exc)              # transient / outcome unknown
                await breaker.record_failure(permit)
                raise failure from exc
            failure = classify_response(response)              # 429/5xx/401/404/4xx or None
            if failure is not None:
                if failure.retry_after_s:                      # 429 + Retry-After: everyone waits
                    await limiter.pause(quota, token_id, failure.retry_after_s)
                if failure.counts_against_platform:
                    await breaker.record_failure(permit)
                else:
                    await breaker.record_success(permit)
                raise failure
            await breaker.record_success(permit)

Choices (and why):
- **Retry/backoff: tenacity** (`retry.py`): well kept, async-native, composable stop/wait
  strategies; we add one wait strategy that honours a platform's Retry-After and otherwise
  uses tenacity's exponential backoff with full jitter.
- **Rate limiter: limits** (`ratelimit.py`): well kept (Flask-Limiter/SlowAPI use it), an
  asyncio Redis storage with atomic Lua scripts and a key prefix, and a sliding-window counter
  costing one round trip per call. We add waiting and a shared pause for Retry-After.
- **Circuit breaker: our own ~60 lines of Lua** (`breaker.py`). purgatory (the best-kept
  asyncio breaker with Redis state) stores state with read-modify-write round trips (two
  workers can both probe a half-open platform, and a failure count update can be lost), keeps
  its keys outside our namespace and makes 2-4 round trips per call; aiobreaker/pybreaker share
  state through a synchronous Redis client. A breaker shared by many processes needs atomic
  transitions and a single half-open probe, which one Lua script per call gives.
"""

from engine.resilience.breaker import (
    BreakerConfig,
    BreakerOpen,
    BreakerState,
    BreakerStatus,
    CircuitBreaker,
    Permit,
)
from engine.resilience.ratelimit import Quota, QuotaUsage, RateLimited, RateLimiter
from engine.resilience.retry import (
    AuthFailure,
    Failure,
    FailureKind,
    NotFound,
    OutcomeUnknown,
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    classify_exception,
    classify_response,
    classify_status,
    parse_retry_after,
    retrying,
)

__all__ = [
    "AuthFailure",
    "BreakerConfig",
    "BreakerOpen",
    "BreakerState",
    "BreakerStatus",
    "CircuitBreaker",
    "Failure",
    "FailureKind",
    "NotFound",
    "OutcomeUnknown",
    "PermanentFailure",
    "Permit",
    "Quota",
    "QuotaUsage",
    "RateLimited",
    "RateLimiter",
    "RetryPolicy",
    "TransientFailure",
    "classify_exception",
    "classify_response",
    "classify_status",
    "parse_retry_after",
    "retrying",
]
