"""The one small interface every platform adapter implements, and what it returns.

An adapter turns ONE API call for up to `max_batch` creators into a `BatchResult`:
stats per creator, creators not modified since their ETag, and per-creator permanent failures
(404 gone, 401 needs-auth). A failure of the whole call is raised as an
`engine.resilience.Failure` (classified), so the caller (`engine.platforms.caller`) can retry
it with backoff, count it in the breaker and honour Retry-After. Adapters do no retries, no
rate limiting and no breaker bookkeeping themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from engine.resilience import Failure, Quota
from engine.resilience.ratelimit import APP
from storage.queries.creators import FetchTarget


@dataclass(frozen=True, slots=True)
class Observed:
    followers: int | None
    following: int | None
    posts: int | None
    views: int | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class BatchResult:
    observed: dict[int, Observed] = field(default_factory=dict)
    not_modified: list[int] = field(default_factory=list)
    failures: dict[int, Failure] = field(default_factory=dict)


class Adapter(ABC):
    """A platform's public-stats lookup."""

    platform: str
    max_batch: int
    token_id: str = APP  # the quota's scope: per application key by default

    def __init__(self, quota: Quota) -> None:
        self.quota = quota

    @abstractmethod
    async def fetch(self, client: httpx.AsyncClient, targets: Sequence[FetchTarget]) -> BatchResult:
        """One API call for `targets` (at most `max_batch`); raises Failure for the call."""


def as_int(value: object) -> int | None:
    """Platforms send counts as numbers or as strings (YouTube); None when absent."""
    if type(value) is int:  # the common case first: this runs for every count of every creator
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None
