"""The wait between tries of a loop that outlives outages (Redis or Postgres down, a crash).

Every long-running loop of the engine (connecting at start, supervising a worker, restarting a
crashed loop, the scheduler's pass and its LISTEN, a worker's wake subscription) waits 0.5 s
after its first failure, doubling up to 30 s, and starts again from 0.5 s once it succeeds: a
dead dependency costs a few log lines a minute, and a short blip is retried at once.
"""

from __future__ import annotations

FIRST_S = 0.5
MAX_S = 30.0


class Backoff:
    """Doubling delays, capped: `next()` is the wait now, `reset()` after a success."""

    def __init__(self, first_s: float = FIRST_S, max_s: float = MAX_S) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._delay = first_s

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long (up to `max_s`)."""
        delay = self._delay
        self._delay = min(delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._delay = self.first_s
