"""Fault injection shared by every mock endpoint: latency, hangs, 401, 429 + Retry-After, 503.

An endpoint calls `await inject(request)` first and returns its answer when it is not None
(publish endpoints can do the same, so one `PUT /admin/faults` steers the whole mock).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.mock_platform.config import MockConfig


@dataclass
class MockState:
    """Everything the running mock holds (one process: in memory is right for a mock)."""

    config: MockConfig
    clock: Callable[[], float]
    rng: random.Random
    counters: Counter[str] = field(default_factory=Counter)
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)


def state_of(request: Request) -> MockState:
    state: MockState = request.app.state.mock
    return state


def token_of(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else "anonymous"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"status": status, "message": message}}, status, headers)


async def inject(request: Request) -> Response | None:
    """The fault this request meets, or None to let the endpoint answer."""
    mock = state_of(request)
    config = mock.config
    mock.counters["requests"] += 1
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000)
    if config.timeout_rate and mock.rng.random() < config.timeout_rate:
        mock.counters["hung"] += 1
        await asyncio.sleep(config.hang_s)
    token = token_of(request)
    if token in config.revoked_tokens:
        mock.counters["401"] += 1
        return _error(401, "token revoked or expired")
    if config.rate_limit:
        now = mock.clock()
        start, used = mock.windows.get(token, (now, 0))
        if now - start >= config.rate_window_s:
            start, used = now, 0
        if used >= config.rate_limit:
            retry_after = max(1, math.ceil(start + config.rate_window_s - now))
            mock.counters["429"] += 1
            return _error(429, "rate limit exceeded", {"Retry-After": str(retry_after)})
        mock.windows[token] = (start, used + 1)
    if config.error_rate and mock.rng.random() < config.error_rate:
        mock.counters["503"] += 1
        return _error(503, "injected fault")
    return None
