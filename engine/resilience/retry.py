"""Retry classification and backoff: what a failed platform call means, and when to try again.

`classify_response(response)` and `classify_exception(exc)` turn an HTTP outcome into a
`Failure` (an exception) of one `FailureKind`:

| kind            | from                                   | retry?            | breaker counts it |
| --------------- | -------------------------------------- | ----------------- | ----------------- |
| TRANSIENT       | 5xx, 408, connect errors/timeouts      | yes               | yes               |
| RATE_LIMITED    | 429 (Retry-After honoured)             | yes               | no                |
| OUTCOME_UNKNOWN | read/write timeout, dropped connection | only if idempotent| yes               |
| UNAUTHORIZED    | 401, 403                               | no                | no                |
| NOT_FOUND       | 404, 410                               | no                | no                |
| PERMANENT       | other 4xx                              | no                | no                |

OUTCOME_UNKNOWN means the request may have reached the platform: a read (a fetch) may repeat
it, a publish must not (look the post up by its idempotency key instead). `RetryPolicy(
retry_outcome_unknown=...)` says which.

`retrying(policy)` is a tenacity `AsyncRetrying`: exponential backoff with full jitter
(`wait_random_exponential`), except that a failure carrying Retry-After waits exactly that long
(plus a little jitter). A Retry-After longer than `max_retry_after_s` stops retrying at once:
the caller should defer the job rather than hold a worker. Usage::

    async for attempt in retrying(RetryPolicy(attempts=4)):
        with attempt:
            response = await client.get(url)
            failure = classify_response(response)
            if failure is not None:
                raise failure
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    OUTCOME_UNKNOWN = "outcome_unknown"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    PERMANENT = "permanent"


_PLATFORM_FAULTS = (FailureKind.TRANSIENT, FailureKind.OUTCOME_UNKNOWN)


class Failure(Exception):
    """A failed platform call, classified."""

    kind: FailureKind = FailureKind.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def counts_against_platform(self) -> bool:
        """Whether the platform's circuit breaker should count this as the platform failing."""
        return self.kind in _PLATFORM_FAULTS

    def retryable(self, retry_outcome_unknown: bool = False) -> bool:
        if self.kind in (FailureKind.TRANSIENT, FailureKind.RATE_LIMITED):
            return True
        return self.kind == FailureKind.OUTCOME_UNKNOWN and retry_outcome_unknown


class TransientFailure(Failure):
    kind = FailureKind.TRANSIENT

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message, status=status, retry_after_s=retry_after_s)
        if rate_limited:
            self.kind = FailureKind.RATE_LIMITED


class OutcomeUnknown(Failure):
    kind = FailureKind.OUTCOME_UNKNOWN


class AuthFailure(Failure):
    kind = FailureKind.UNAUTHORIZED


class NotFound(Failure):
    kind = FailureKind.NOT_FOUND


class PermanentFailure(Failure):
    kind = FailureKind.PERMANENT


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _brief(response: httpx.Response) -> str:
    try:
        body = response.text[:200]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        body = ""
    return f"HTTP {response.status_code} {body}".strip()


def classify_status(
    status: int, retry_after: str | None = None, detail: str = ""
) -> Failure | None:
    """The failure an HTTP status means (None for success and 304 Not Modified)."""
    message = detail or f"HTTP {status}"
    if status < 400:
        return None
    wait = parse_retry_after(retry_after)
    if status == 429:
        return TransientFailure(message, status=status, retry_after_s=wait, rate_limited=True)
    if status >= 500 or status == 408:
        return TransientFailure(message, status=status, retry_after_s=wait)
    if status in (401, 403):
        return AuthFailure(message, status=status)
    if status in (404, 410):
        return NotFound(message, status=status)
    return PermanentFailure(message, status=status)


def classify_response(response: httpx.Response) -> Failure | None:
    if response.status_code < 400:
        return None
    return classify_status(
        response.status_code, response.headers.get("retry-after"), _brief(response)
    )


def classify_exception(exc: BaseException) -> Failure:
    """A transport error: safe to repeat when the request never left, unknown otherwise."""
    if isinstance(exc, Failure):
        return exc
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientFailure(f"{name}: request not sent ({exc})")
    if isinstance(exc, httpx.TimeoutException | httpx.TransportError | TimeoutError | OSError):
        return OutcomeUnknown(f"{name}: no answer after the request was sent ({exc})")
    return PermanentFailure(f"{name}: {exc}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    initial_s: float = 0.2
    max_backoff_s: float = 10.0
    max_elapsed_s: float = 60.0
    max_retry_after_s: float = 30.0
    retry_outcome_unknown: bool = False


class _WaitRetryAfter(wait_base):
    """Retry-After when the platform sent one, else the fallback (exponential, jittered)."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, Failure) and exc.retry_after_s is not None:
            return exc.retry_after_s + random.uniform(0, 0.1)
        return float(self.fallback(retry_state))


class _StopOnLongRetryAfter(stop_base):
    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return (
            isinstance(exc, Failure)
            and exc.retry_after_s is not None
            and exc.retry_after_s > self.limit_s
        )


def retrying(policy: RetryPolicy | None = None) -> AsyncRetrying:
    """A tenacity retry loop for one platform call, per `policy`. Re-raises the last failure."""
    p = policy or RetryPolicy()

    def _should_retry(exc: BaseException) -> bool:
        return isinstance(exc, Failure) and exc.retryable(p.retry_outcome_unknown)

    return AsyncRetrying(
        stop=stop_after_attempt(p.attempts)
        | stop_after_delay(p.max_elapsed_s)
        | _StopOnLongRetryAfter(p.max_retry_after_s),
        wait=_WaitRetryAfter(wait_random_exponential(multiplier=p.initial_s, max=p.max_backoff_s)),
        retry=retry_if_exception(_should_retry),
        reraise=True,
    )
