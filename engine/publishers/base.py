"""The one interface every platform publisher implements.

A publisher turns a `PublishRequest` into the platform's calls and answers `Published`, or raises
an `engine.resilience.Failure` saying what went wrong:

- `TransientFailure` — the platform did not act (connect error, 503, 429): safe to send again;
- `OutcomeUnknown` — the request may have been acted on (timeout after sending, dropped
  connection, an ambiguous 500/502/504): never sent again blindly;
- `AuthFailure` — the token is expired or revoked: the connection needs re-authorisation;
- `PermanentFailure` / `NotFound` — the platform refused the post: the message says why.

After an unknown outcome the job calls `lookup()` (when `can_lookup`), which finds the post an
earlier attempt made — by idempotency key, or through progress saved with `checkpoint()` such as
an Instagram container id or a YouTube upload session — or answers None when it is not there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine.resilience import (
    Failure,
    OutcomeUnknown,
    Quota,
    classify_exception,
    classify_response,
)
from storage.models import Platform

Checkpoint = Callable[[dict[str, Any]], Awaitable[None]]
# Statuses after which the platform may or may not have acted on the request.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


@dataclass(frozen=True, slots=True)
class PublishRequest:
    publication_id: int
    idempotency_key: str
    account_id: str
    access_token: str = field(repr=False)
    body: str
    media: list[str]
    checkpoint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Published:
    external_id: str
    url: str | None


class Publisher(ABC):
    platform: Platform
    can_lookup: bool = False
    # Posts per account per window the platform allows (its documented publishing limit).
    publish_limit: Quota
    default_base_url: str = ""

    def __init__(self, client: httpx.AsyncClient, base_url: str | None = None) -> None:
        self.client = client
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    @abstractmethod
    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        """Publish once; raise a classified Failure."""

    async def lookup(self, request: PublishRequest) -> Published | None:
        """The post an earlier attempt made, or None. Only called when `can_lookup`."""
        raise NotImplementedError(f"{self.platform} offers no lookup")

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call; transport errors become classified failures."""
        try:
            return await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise classify_exception(exc) from exc

    def failure(self, response: httpx.Response, message: str | None = None) -> Failure | None:
        """The generic classification, with ambiguous 5xx treated as outcome unknown."""
        failure = classify_response(response)
        if failure is None:
            return None
        text = message or failure.message
        if response.status_code in AMBIGUOUS_STATUSES:
            return OutcomeUnknown(
                f"{self.platform} answered {response.status_code}: it may have published ({text})",
                status=response.status_code,
            )
        failure.message = text
        failure.args = (text,)
        return failure


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
