"""The one clock seam: what "now" is, for code that lets its caller decide.

A `Clock` is any zero-argument callable returning an aware UTC `datetime`. Production passes
`utc_now` (or nothing, and the default is `utc_now`); a test passes a frozen or hand-moved clock
so that the data it writes, the screens it drives and the engine code it calls agree on one
"now" whatever the real date and second are. It lives in `storage` because storage imports
nothing of ours, so the console and the engine can both take it from here.

Time that belongs to another server stays with that server: arq runs a job when the *real*
clock passes its score, Redis expires keys in real time, and the circuit breaker reads Redis
server time unless it is handed a clock (engine.resilience.breaker).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock, in UTC."""
    return datetime.now(UTC)
