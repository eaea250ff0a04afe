"""How many batch sends one worker process has in flight: a counter that hands out up to n.

A batch job claims rows only as slots free up, so a claimed row's request leaves at once
(claim-to-send stays short, and a job's claims never outrun what the process can send within
the job's time limit). A job asks for `least` slots (up to GATHER_S after the first is free), so
claims stay several rows per statement when slots free up one send at a time. Sized below the
HTTP client's connection pool, so a send never waits for a connection. Single publish jobs do
not take slots (they are one request each).
"""

from __future__ import annotations

import asyncio
import contextlib

SEND_SLOTS = 64  # per process; the client's pool holds 200 connections
# A job that wants several slots waits this long for them after the first is free (at ~300
# sends/s per process, 10 slots free up in ~30 ms): a few idle ms per slot buy claims of many
# rows per statement instead of one (measured ~3.7 rows per claim without it).
GATHER_S = 0.03


class SendSlots:
    def __init__(self, total: int = SEND_SLOTS) -> None:
        self.free = total
        self._changed = asyncio.Condition()

    async def take(self, most: int, timeout: float, least: int = 1) -> int:
        """Wait (at most `timeout` s) until a slot is free, then take as many as are free, at
        most `most`; 0 when none came free in time. With `least`, wait up to GATHER_S more for
        that many to be free: one claim statement for several rows instead of one per row."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        least = max(1, min(least, most))
        async with self._changed:
            while True:
                left = end - loop.time()
                if left <= 0:
                    return 0
                if self.free == 0:
                    try:
                        await asyncio.wait_for(self._changed.wait_for(self._any), left)
                    except TimeoutError:
                        return 0
                if self.free < least:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._changed.wait_for(lambda: self.free >= least),
                            max(min(GATHER_S, end - loop.time()), 0),
                        )
                if self.free > 0:
                    taken = min(self.free, most)
                    self.free -= taken
                    return taken
                # Another job took them while this one gathered: wait again.

    def _any(self) -> bool:
        return self.free > 0

    async def give(self, count: int = 1) -> None:
        if count <= 0:
            return
        async with self._changed:
            self.free += count
            self._changed.notify_all()
