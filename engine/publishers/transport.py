"""The publishers' HTTP transport: httpx's API on aiohttp's connection pool.

Why: a publication's own HTTP request was the largest CPU cost of a publish burst. Measured on
this 2-core machine (loopback mock platform, 20,000 POSTs, 64 in flight, client CPU per request):
httpx on httpcore 0.63 ms (httpcore's pool re-examines every connection, one readability poll per
idle socket, each time a request starts or ends; sharding the pool only bounded that), httpx on
this transport 0.18-0.24 ms, aiohttp alone 0.10 ms. Publishers keep httpx's API (requests,
`client.stream`, respx in their tests); only the connection pool and the wire are aiohttp's.

Invariant, the one that matters for "never twice": an error maps to the httpx error that says
whether the request can have left (engine.resilience.retry.classify_exception reads those):
- connecting failed or timed out (nothing was written) -> `httpx.ConnectError` / `ConnectTimeout`:
  safe to send again;
- anything after the connection was had (a dropped connection, a read timeout, a bad response)
  -> `httpx.ReadError` / `ReadTimeout` / `RemoteProtocolError`: the outcome is unknown.
(httpx-aiohttp, the package, maps every `ClientConnectionError` — a server that drops the
connection after reading the request included — to `ConnectTimeout`, which would let a post be
sent twice: that is why this is ours.)

Timeouts: httpx's per-request `connect` (pool wait + connect) and `read` (between reads) become
aiohttp's `connect` and `sock_read`. Bodies stream both ways, so a large download or upload
never sits whole in memory. The aiohttp session is made on first use, inside the running loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp's errors as the httpx errors that say whether the request can have left."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:  # the connection was had: it broke after
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as httpx's stream; closing it gives the connection back."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent on one aiohttp `ClientSession` (keep-alive, HTTP/1.1)."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limit = limits.max_connections or 0  # 0: aiohttp's "no limit"
        self._keepalive_s = limits.keepalive_expiry or 15.0
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive_s)
        # httpx already sets every header it means to send, and decodes bodies itself.
        return aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            body: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:  # an upload streamed through: aiohttp does the chunking
            body = request.stream  # type: ignore[assignment]
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        with _as_httpx_errors(request):
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=_add(timeout.get("connect"), timeout.get("pool")),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _add(a: float | None, b: float | None) -> float | None:
    """Two optional timeouts in a row; None (no limit) when either is unlimited."""
    return None if a is None or b is None else a + b
