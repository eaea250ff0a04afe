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

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from json import dumps as json_dumps
from typing import Any, cast

import aiohttp
import httpx
from httpx._client import USE_CLIENT_DEFAULT, UseClientDefault
from httpx._types import (
    AuthTypes,
    CookieTypes,
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
)
from multidict import CIMultiDict


@contextmanager
def _as_httpx_errors(request: httpx.Request | Callable[[], httpx.Request]) -> Iterator[None]:
    """aiohttp's errors as the httpx errors that say whether the request can have left
    (`request` may be a factory: the lean path builds an httpx.Request only for an error)."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _httpx_error(
            exc, request if isinstance(request, httpx.Request) else request()
        ) from exc


def _httpx_error(
    exc: aiohttp.ClientError | TimeoutError, request: httpx.Request
) -> httpx.HTTPError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(exc), request=request)
    # The connection was had: it broke after.
    return httpx.ReadError(str(exc) or type(exc).__name__, request=request)


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
        # httpx already sets every header it means to send (cookies included: aiohttp's jar
        # stays empty), and decodes bodies itself.
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use (inside the running loop)."""
        if self._session is None:
            self._session = self._open()
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self.session()
        timeout = request.extensions.get("timeout", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            body: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:  # an upload streamed through: aiohttp does the chunking
            body = request.stream  # type: ignore[assignment]
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        with _as_httpx_errors(request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=_timeout(timeout.get("connect"), timeout.get("pool"), timeout.get("read")),
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


def _timeout(
    connect: float | None, pool: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    """httpx's connect and pool waits are aiohttp's connect; httpx's read is its sock_read."""
    return aiohttp.ClientTimeout(total=None, connect=_add(connect, pool), sock_read=read)


def _add(a: float | None, b: float | None) -> float | None:
    """Two optional timeouts in a row; None (no limit) when either is unlimited."""
    return None if a is None or b is None else a + b


class LeanClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` on `AiohttpTransport` whose plain requests skip httpx's own
    request path.

    Why: with the pool and the wire aiohttp's, httpx's building of a Request (URL parsing,
    Headers rebuilt twice), its cookie extraction (a urllib Request and an email Message per
    response) and its hooks were ~17% of an engine's CPU in a publish burst. A plain request —
    absolute URL, JSON or bytes body, string headers; no query parameters (httpx encodes them its
    own way), per-request auth, cookies, redirects or extensions — goes straight to the aiohttp
    session and comes back as an `httpx.Response` with its body read (as `client.request`
    does); anything else (streams, forms, files, a base URL, mounts from proxy settings) takes
    httpx's path unchanged.

    Invariants: both paths send the same headers (the client's defaults, then the request's)
    and map every error to the same httpx error (`_as_httpx_errors`), so whether a request can
    have left is told exactly as before. The client keeps no cookies on either path: one client
    serves every account, so a cookie one account's answer set must never ride along with
    another's request. A lean response builds its `httpx.Request` only when asked for it, and
    has no `elapsed`.
    """

    def __init__(self, transport: AiohttpTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout, cookies=_no_cookies())
        self._aiohttp = transport

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> httpx.Response:
        if (
            isinstance(url, str)
            and url.startswith(("http://", "https://"))
            and (content is None or isinstance(content, bytes))
            and data is None
            and files is None
            and cookies is None
            and extensions is None
            and auth is USE_CLIENT_DEFAULT
            and follow_redirects is USE_CLIENT_DEFAULT
            and timeout is USE_CLIENT_DEFAULT
            and params is None
            and (headers is None or _str_dict(headers))
            and self._lean_client()
        ):
            return await self._lean(method, url, content, json, cast(dict[str, str], headers))
        return await super().request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    def _lean_client(self) -> bool:
        """Nothing configured on the client that only httpx's path applies."""
        return (
            self._transport is self._aiohttp
            and not self._mounts
            and not self.base_url.raw_path.strip(b"/")
            and not self.base_url.host
            and not self.params
            and self.auth is None
            and not self.follow_redirects
            and not self.event_hooks["request"]
            and not self.event_hooks["response"]
        )

    async def _lean(
        self,
        method: str,
        url: str,
        content: bytes | None,
        json: Any,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        sent = CIMultiDict(self.headers.multi_items())
        body = content
        if content is None and json is not None:
            # httpx's JSON encoding, byte for byte.
            text = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body = text.encode("utf-8")
            sent["Content-Type"] = "application/json"
        if headers:
            sent.update(headers)
        t = self.timeout

        def request() -> httpx.Request:
            return httpx.Request(method, url, headers=list(sent.items()))

        with _as_httpx_errors(request):
            async with self._aiohttp.session().request(
                method,
                url,
                headers=sent,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=_timeout(t.connect, t.pool, t.read),
            ) as answer:
                read = await answer.read()
        response = _LeanResponse(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(read),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("latin-1"),
            },
        )
        if "content-encoding" in response.headers:
            response.read()  # httpx's decoders (gzip & co) make the content
        else:
            # The body as read is the content. Set as httpx's own `read()` sets it: its chunker
            # and decoder pipeline cost ~8% of an engine's CPU in a publish burst.
            response._content = read
        response.make_request = request
        return response


class _LeanResponse(httpx.Response):
    """An `httpx.Response` whose request is built only if someone asks for it."""

    make_request: Callable[[], httpx.Request] | None = None

    @property
    def request(self) -> httpx.Request:
        if self._request is None and self.make_request is not None:
            self._request = self.make_request()
        return super().request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def _str_dict(value: object) -> bool:
    """A dict of strings to strings: headers the lean path passes on as they are."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _no_cookies() -> CookieJar:
    """A cookie jar that stores nothing (its policy accepts no domain)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
