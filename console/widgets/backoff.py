"""When a refresh loop loads next: every `every_s` while loads succeed; after failures, twice as
long each time up to `max_s`, so a console left open does not hammer a store that is down.

Shared by LiveScreen (a screen's body) and StatusHeader (the header line): both tick it from a
Textual interval and ask `due()`. Pure arithmetic, no clock of its own: the caller says how much
time a tick is worth.
"""

from __future__ import annotations

MAX_BACKOFF_S = 30.0


class Backoff:
    def __init__(self, every_s: float, max_s: float = MAX_BACKOFF_S) -> None:
        self.every_s = every_s
        self.max_s = max_s
        self.failures = 0  # consecutive failed loads
        self.wait_s = 0.0  # until the next load; <= 0: due now

    def tick(self, elapsed_s: float) -> bool:
        """Count `elapsed_s` down; True when the next load is due."""
        self.wait_s -= elapsed_s
        return self.wait_s <= 0

    def now(self) -> None:
        """Make the next load due at once (an edit asked for fresh data)."""
        self.wait_s = 0.0

    def succeeded(self) -> None:
        self.failures = 0
        self.wait_s = self.every_s

    def failed(self) -> float:
        """Record a failure; returns the seconds until the next try."""
        self.failures += 1
        self.wait_s = min(self.every_s * 2**self.failures, self.max_s)
        return self.wait_s
