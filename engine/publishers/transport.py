"""The publishers' HTTP transport: several small connection pools behind one httpx transport.

Why: httpcore's pool re-examines every connection it holds each time a request starts or ends
(an O(connections x idle) scan, plus one readability poll per idle socket). With 64 batch sends
in flight against one origin the pool holds ~64-100 connections, and that scan was the largest
single CPU cost of a publication in bench.publish_burst (cProfile: 13.6 of 60.8 s for 10,000
publications, more than the requests' own I/O). Spreading requests round-robin over SHARDS
pools keeps each pool at a few connections, so the scan costs ~SHARDS^2 times less.

Behaviour is otherwise httpx's own: each shard is an `httpx.AsyncHTTPTransport` with the
caller's limits (a shard grows to what its share of the traffic needs), keep-alive and HTTP/1.1.
"""

from __future__ import annotations

from itertools import cycle

import httpx

SHARDS = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Round-robin over `shards` connection pools, each an `httpx.AsyncHTTPTransport`."""

    def __init__(self, limits: httpx.Limits, shards: int = SHARDS) -> None:
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(max(shards, 1))]
        self._next = cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
