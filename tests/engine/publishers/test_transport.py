"""The publishers' aiohttp transport on real loopback sockets: what it sends and reads, and that
every failure maps to the httpx error that says whether the request can have left (the base of
"never twice": engine.resilience.retry.classify_exception reads those errors)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from engine.publishers.transport import AiohttpTransport, LeanClient
from engine.resilience import OutcomeUnknown, TransientFailure, classify_exception

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """(request line, headers, body) of one HTTP/1.1 request, chunked or sized."""
    head = await reader.readuntil(b"\r\n\r\n")
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line.encode(), headers, body


def answer(status: int, body: bytes, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


def make_client(kind: str, max_connections: int, timeout: float) -> httpx.AsyncClient:
    """httpx's own client on the transport, or the engine's LeanClient (its plain requests
    skip httpx's request path): every test here holds for both."""
    transport = AiohttpTransport(httpx.Limits(max_connections=max_connections))
    if kind == "lean":
        return LeanClient(transport, httpx.Timeout(timeout))
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout))


@pytest.fixture(params=["httpx", "lean"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(kind: str) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(kind, 10, 2.0) as c:
        yield c


async def test_a_request_and_its_answer_go_through_whole(
    serve: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # two requests on one kept-alive connection
            seen.append(await read_request(reader))
            writer.write(answer(201, b'{"id": "p1"}', "content-type: application/json", "x-a: 1"))
            await writer.drain()
        writer.close()

    url = await serve(echo)
    for _ in range(2):
        response = await client.post(
            f"{url}/v1/posts?x=1", json={"text": "hé"}, headers={"authorization": "Bearer t"}
        )
        assert response.status_code == 201 and response.json() == {"id": "p1"}
        assert response.headers["x-a"] == "1"
    line, headers, body = seen[0]
    assert line == b"POST /v1/posts?x=1 HTTP/1.1"
    assert headers["authorization"] == "Bearer t"
    assert headers["host"] == url.removeprefix("http://")
    assert body == '{"text":"hé"}'.encode()
    assert len(seen) == 2  # the second request reused the connection


async def test_a_compressed_answer_is_decoded_once(
    serve: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, gzip.compress(b"hello " * 100), "content-encoding: gzip"))
        await writer.drain()
        writer.close()

    response = await client.get(await serve(gzipped))
    assert response.text == "hello " * 100


async def test_uploads_and_downloads_stream(
    serve: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    async def sizes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, _, body = await read_request(reader)
        writer.write(answer(200, b"x" * (len(body) * 2)))
        await writer.drain()
        writer.close()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"y" * 4096

    url = await serve(sizes)
    async with client.stream("PUT", url, content=chunks()) as response:
        got = [len(part) async for part in response.aiter_bytes()]
    assert sum(got) == 2 * 64 * 4096


async def test_a_refused_connection_was_not_sent(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as caught:
        await client.post(f"http://127.0.0.1:{port}/v1/posts", json={})
    assert isinstance(classify_exception(caught.value), TransientFailure)


async def test_a_connection_dropped_after_the_request_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # the platform had the post, then the line died
        writer.close()

    with pytest.raises(httpx.TransportError) as caught:
        await client.post(await serve(drop), json={"text": "once"})
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert isinstance(classify_exception(caught.value), OutcomeUnknown)


async def test_no_answer_in_time_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[str]], kind: str
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with make_client(kind, 1, 0.2) as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.post(await serve(silent), json={"text": "once"})
    assert isinstance(classify_exception(caught.value), OutcomeUnknown)


async def test_a_garbled_answer_is_an_unknown_outcome(
    serve: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    async def garbled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await client.post(await serve(garbled), json={})
    assert isinstance(classify_exception(caught.value), OutcomeUnknown)


async def test_the_lean_path_sends_what_httpx_sends(
    serve: Callable[[Handler], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(answer(200, b'{"data": []}', "set-cookie: session=acct1; Path=/"))
            await writer.drain()
        writer.close()

    # A host name, not an address: aiohttp's own cookie jar ignores cookies from addresses.
    url = (await serve(record)).replace("127.0.0.1", "localhost")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{url}/v1/a/posts", {"json": {"text": "hé", "media": []}}),
        ("GET", f"{url}/v1/a/posts?idempotency_key=k1", {}),
        ("POST", f"{url}/v1/a/media", {"content": b"\x89PNG"}),
    ]
    for kind in ("httpx", "lean"):
        async with make_client(kind, 10, 2.0) as client:
            if kind == "lean":  # every call here must take the lean path, not httpx's send
                monkeypatch.setattr(httpx.AsyncClient, "send", None)
            for method, target, kwargs in calls:
                headers = {"Authorization": "Bearer t", "Content-Type": "image/png"}
                if "json" in kwargs:
                    del headers["Content-Type"]
                response = await client.request(method, target, headers=headers, **kwargs)
                assert response.status_code == 200 and response.json() == {"data": []}
                assert response.request.method == method
    half = len(calls)
    assert len(seen) == 2 * half
    assert "cookie" in seen[half - 1][1]  # httpx's own client keeps the answers' cookies
    for ours, theirs in zip(seen[half:], seen[:half], strict=True):
        assert "cookie" not in ours[1]  # the engine's client keeps none
        theirs[1].pop("cookie", None)
        assert ours == theirs  # request line, every other header, body
