"""Keep CPython's full garbage collections off the console's UI loop.

A full (generation 2) collection walks every container object the process holds. Once the
console has started (Textual, SQLAlchemy, asyncpg, the screens: ~180,000 objects), one walk
costs ~100-130 ms on this machine, and the allocations of a refresh (10,000 rows read, a page
of jobs decoded) trigger one every few refreshes: a 100+ ms stall of every key press, at
random. That was the Queues screen's "unexplained" ~120 ms stall per page.

`freeze_startup_heap()` runs a full collection once (nothing collectable is left behind) and
then `gc.freeze()`s what exists: those objects move to the permanent generation and later
collections skip them (a full collection then costs ~2 ms). Objects created afterwards (the
rows a refresh loads) are collected as usual; frozen objects still die by reference counting,
only frozen *cycles* that become garbage would wait. So `release()` unfreezes when an app
ends (an SSH server runs many consoles in one process: a closed session's widgets, frozen by
a later session's start, are collected at the next full collection).

Costs: one ~100 ms collection at start-up (before anyone presses a key), O(1) freeze.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()
    gc.freeze()


def release() -> None:
    gc.unfreeze()
