"""The server processes' garbage-collector policy: fewer, cheaper collections in a burst.

A publish burst allocates heavily and briefly: each publication's claim rows, ORM objects,
request and response, most of them freed by reference counting the moment a send ends. With
CPython's default thresholds (700, 10, 10) those allocations start a young collection every
700 net container allocations, and each full collection walks the whole start-up heap (the
imports of SQLAlchemy, pydantic, aiohttp, arq: ~200,000 objects) though none of it is garbage.

`apply()` runs once, when a process becomes an engine (`creatordeck engine`, after its imports,
before its event loop starts) or an api worker (`creatordeck api`, once its app is built);
never in a test process or the console (console.heap holds the console's own policy). It runs
one full collection, `gc.freeze()`s what is left (full collections skip the permanent
generation), and raises the young threshold to 10,000.

Measured with `python -m bench.publish_burst --faults none` (10,000 publications, 2 engines,
this 2-core machine; the mock's CPU, the same work in every run, as the yardstick of the
machine's speed): the engines spent 2.5x the mock's CPU with the defaults and 2.1-2.3x with
this policy, about 10-15% less engine CPU per publication.

Cost: cyclic garbage made in a burst waits for a larger young generation (kilobytes, not
megabytes: the work's objects are acyclic and die by reference counting); frozen start-up
objects that become cyclic garbage later are never collected (start-up objects live as long
as the process).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700
OLDER_THRESHOLDS = (10, 10)  # CPython's defaults: a full collection every 100 young ones


def apply() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
