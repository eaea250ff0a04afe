"""Calls adapters the resilient way: breaker, shared quota, bounded concurrency, retries.

`PlatformCaller.fetch(platform, targets)` splits targets into API calls of the adapter's
`max_batch`, runs at most `fetch_concurrency` calls per platform at once in this process,
and for each call: asks the platform's breaker (BreakerOpen → the call's creators are
deferred), takes one unit of the shared quota (waits up to `MAX_QUOTA_WAIT_S`, then defers),
calls the adapter, retries transient failures with jittered exponential backoff honouring
Retry-After (tenacity), and reports the outcome to the breaker. A read may be repeated, so
an "outcome unknown" timeout is retried too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from engine import metrics
from engine.platforms.base import Adapter, BatchResult
from engine.platforms.registry import MISSING_CREDENTIALS, build_adapters
from engine.resilience import (
    BreakerConfig,
    BreakerOpen,
    CircuitBreaker,
    Failure,
    FailureKind,
    PermanentFailure,
    RateLimited,
    RateLimiter,
    RetryPolicy,
    classify_exception,
    retrying,
)
from storage.queries.creators import FetchTarget
from storage.settings import Settings, TrackingSettings

MAX_QUOTA_WAIT_S = 5.0
FETCH_RETRY = RetryPolicy(
    attempts=4,
    initial_s=0.05,
    max_backoff_s=2.0,
    max_elapsed_s=20.0,
    max_retry_after_s=5.0,
    retry_outcome_unknown=True,
)


@dataclass
class FetchOutcome:
    """What became of a job's targets on one platform."""

    result: BatchResult = field(default_factory=BatchResult)
    deferred: dict[int, str] = field(default_factory=dict)  # creator id → why
    retry_in_s: float = 0.0
    calls: int = 0
    breaker_open: str | None = None


class PlatformCaller:
    """One per worker process: an HTTP connection pool, breakers, limiter, semaphores."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        tracking: TrackingSettings,
        adapters: dict[str, Adapter] | None = None,
        client: httpx.AsyncClient | None = None,
        breaker_config: BreakerConfig | None = None,
        retry_policy: RetryPolicy = FETCH_RETRY,
    ) -> None:
        self.tracking = tracking
        self.adapters = adapters if adapters is not None else build_adapters(tracking)
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                tracking.fetch_timeout_s, connect=min(5.0, tracking.fetch_timeout_s)
            ),
            limits=httpx.Limits(
                max_connections=tracking.fetch_concurrency * max(len(self.adapters), 1),
                max_keepalive_connections=tracking.fetch_concurrency * max(len(self.adapters), 1),
            ),
        )
        self.limiter = RateLimiter(redis, settings)
        self.breakers = {
            name: CircuitBreaker(redis, settings, name, breaker_config) for name in self.adapters
        }
        self.gates = {name: asyncio.Semaphore(tracking.fetch_concurrency) for name in self.adapters}
        self.retry_policy = retry_policy

    async def close(self) -> None:
        await self.client.aclose()
        await self.limiter.close()

    async def fetch(self, platform: str, targets: Sequence[FetchTarget]) -> FetchOutcome:
        outcome = FetchOutcome()
        adapter = self.adapters.get(platform)
        if adapter is None:
            need = MISSING_CREDENTIALS.get(platform, "an adapter")
            failure = PermanentFailure(f"{platform} is not configured: set {need}")
            outcome.result.failures.update({t.creator_id: failure for t in targets})
            return outcome
        size = adapter.max_batch
        chunks = [targets[i : i + size] for i in range(0, len(targets), size)]
        await asyncio.gather(*(self._chunk(adapter, chunk, outcome) for chunk in chunks))
        return outcome

    async def _chunk(
        self, adapter: Adapter, chunk: Sequence[FetchTarget], outcome: FetchOutcome
    ) -> None:
        async with self.gates[adapter.platform]:
            try:
                result = await self._call(adapter, chunk, outcome)
            except BreakerOpen as exc:
                self._defer(outcome, chunk, str(exc), exc.retry_in_s)
                outcome.breaker_open = str(exc)
                return
            except RateLimited as exc:
                self._defer(outcome, chunk, str(exc), exc.retry_in_s)
                return
            except Failure as failure:
                if failure.retryable(retry_outcome_unknown=True):
                    wait = failure.retry_after_s or 5.0
                    self._defer(outcome, chunk, f"{failure.kind.value}: {failure}", wait)
                else:
                    # The whole call was refused (e.g. 401 for our token): every creator in it.
                    outcome.result.failures.update({t.creator_id: failure for t in chunk})
                return
        outcome.result.observed.update(result.observed)
        outcome.result.not_modified.extend(result.not_modified)
        outcome.result.failures.update(result.failures)

    @staticmethod
    def _defer(outcome: FetchOutcome, chunk: Sequence[FetchTarget], why: str, wait: float) -> None:
        outcome.deferred.update({t.creator_id: why for t in chunk})
        outcome.retry_in_s = max(outcome.retry_in_s, wait)

    async def _call(
        self, adapter: Adapter, chunk: Sequence[FetchTarget], outcome: FetchOutcome
    ) -> BatchResult:
        breaker = self.breakers[adapter.platform]
        async for attempt in retrying(self.retry_policy):
            with attempt:
                permit = await breaker.allow()
                await self.limiter.acquire(
                    adapter.quota, adapter.token_id, max_wait_s=MAX_QUOTA_WAIT_S
                )
                outcome.calls += 1
                metrics.PLATFORM_CALLS.labels(adapter.platform).inc()
                try:
                    result = await adapter.fetch(self.client, chunk)
                except Failure as failure:
                    await self._report(adapter, permit, failure)
                    raise
                except (httpx.HTTPError, OSError) as exc:
                    transport = classify_exception(exc)
                    await breaker.record_failure(permit, reason=str(transport))
                    raise transport from exc
                await breaker.record_success(permit)
                return result
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _report(self, adapter: Adapter, permit: object, failure: Failure) -> None:
        breaker = self.breakers[adapter.platform]
        if failure.kind == FailureKind.RATE_LIMITED and failure.retry_after_s:
            await self.limiter.pause(adapter.quota, adapter.token_id, failure.retry_after_s)
        if failure.counts_against_platform:
            await breaker.record_failure(reason=str(failure))
        else:
            await breaker.record_success()
