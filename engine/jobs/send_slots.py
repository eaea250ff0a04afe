"""How many batch sends one worker process has in flight: a counter that hands out up to n.

A batch job claims rows only as slots free up, so a claimed row's request leaves at once
(claim-to-send stays short, and a job's claims never outrun what the process can send within
the job's time limit). Sized below the HTTP client's connection pool, so a send never waits
for a connection. Single publish jobs do not take slots (they are one request each).
"""

from __future__ import annotations

import asyncio

SEND_SLOTS = 64  # per process; the client's pool holds 200 connections


class SendSlots:
    def __init__(self, total: int = SEND_SLOTS) -> None:
        self.free = total
        self._changed = asyncio.Condition()

    async def take(self, most: int, timeout: float) -> int:
        """Wait (at most `timeout` s) until a slot is free, then take as many as are free, at
        most `most`; 0 when none came free in time."""
        if timeout <= 0:
            return 0
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.free > 0), timeout)
            except TimeoutError:
                return 0
            taken = min(self.free, most)
            self.free -= taken
            return taken

    async def give(self, count: int = 1) -> None:
        if count <= 0:
            return
        async with self._changed:
            self.free += count
            self._changed.notify_all()
