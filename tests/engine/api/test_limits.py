"""What a client can make the api hold and say back: bounded bodies, short and safe echoes,
a 4xx (never a 500) for every malformed body, and an OpenAPI document that states all of it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest

from engine.api.app import BODY_LIMITS, create_app
from engine.api.context import ApiContext
from engine.api.limits import MAX_ERRORS, PREVIEW_CHARS, preview
from engine.api.schemas import (
    MAX_ASSIGNMENT_BODY_BYTES,
    MAX_BODY_BYTES,
    MAX_EXPERIMENT_KEYS,
)
from tests.support.experiments import api_ctx, client, event

__all__ = ["api_ctx", "client"]

JSON = {"content-type": "application/json"}
# Generous for any short error answer; the unbounded ones were the size of their input.
SHORT = 1024


async def _post(client: httpx.AsyncClient, path: str, raw: bytes) -> httpx.Response:
    return await client.post(path, content=raw, headers=JSON)


class Recorder:
    """A bare ASGI exchange: counts what the app reads of the body, keeps what it sends."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.read >= len(self.chunks):
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.read]
        self.read += 1
        return {"type": "http.request", "body": chunk, "more_body": self.read < len(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


@pytest.fixture
def app(api_ctx: ApiContext) -> Any:
    return create_app(api_ctx.settings, ctx=api_ctx)


# --- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/assignment", "/v1/events"])
async def test_a_declared_oversized_body_is_refused_before_a_byte_is_read(
    app: Any, path: str
) -> None:
    limit = MAX_ASSIGNMENT_BODY_BYTES if path == "/v1/assignment" else MAX_BODY_BYTES
    declared = str(100 * 1024 * 1024).encode()
    exchange = Recorder([b"x" * 65536] * 4)
    scope = _scope(path, [(b"content-type", b"application/json"), (b"content-length", declared)])
    await app(scope, exchange.receive, exchange.send)
    assert exchange.status == 413
    assert exchange.read == 0
    detail = orjson.loads(exchange.body)["detail"]
    assert f"larger than {limit} bytes" in detail and len(exchange.body) < SHORT


async def test_a_chunked_assignment_body_is_cut_off_at_the_limit(app: Any) -> None:
    # 5 MB without a Content-Length, in 64 KiB chunks: reading stops at the first one past
    # the limit (before: all 80 chunks were read, then echoed back in a 5 MB 422).
    chunk = 65536
    first = b'{"unit_id": "'
    exchange = Recorder([first + b"x" * (chunk - len(first))] + [b"x" * chunk] * 79)
    scope = _scope("/v1/assignment", [(b"content-type", b"application/json")])
    await app(scope, exchange.receive, exchange.send)
    assert exchange.status == 413
    assert exchange.read == MAX_ASSIGNMENT_BODY_BYTES // chunk + 1
    assert len(exchange.body) < SHORT


async def test_a_5_mb_assignment_body_answers_a_short_413(client: httpx.AsyncClient) -> None:
    raw = b'{"unit_id": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = await _post(client, "/v1/assignment", raw)
    assert response.status_code == 413, response.text[:200]
    assert len(response.content) < SHORT
    assert "ask for fewer experiments" in response.json()["detail"]


async def test_a_body_within_the_limit_still_reaches_the_route(
    client: httpx.AsyncClient,
) -> None:
    # Padding up to the limit (whitespace is valid JSON) is accepted: the bound is the bytes.
    start = b'{"unit_id": "padded"}'
    raw = start + b" " * (MAX_ASSIGNMENT_BODY_BYTES - len(start))
    response = await _post(client, "/v1/assignment", raw)
    assert response.status_code == 200, response.text
    assert response.json()["unit_id"] == "padded"


async def test_every_route_with_a_body_is_bounded(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    with_body = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if "requestBody" in operation
    }
    assert with_body == {"/v1/events", *BODY_LIMITS}


# --- echoes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"unit_id": "\ud800"}',
        rb'{"unit_id": "a\udfffb"}',
        rb'{"unit_id": "a", "experiments": ["\ud800"]}',
        rb'{"unit_id": "a", "experiments": ["ok", "\udc00x"]}',
        rb'{"unit_id": "a", "\ud800": 1}',
    ],
)
async def test_lone_surrogates_answer_a_short_422(client: httpx.AsyncClient, raw: bytes) -> None:
    # Before: 500, the error body repeated the surrogate and could not be encoded.
    response = await _post(client, "/v1/assignment", raw)
    assert response.status_code == 422, response.text
    assert len(response.content) < SHORT
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_a_huge_invalid_input_is_echoed_as_a_short_prefix(
    client: httpx.AsyncClient,
) -> None:
    unit = "u" * (MAX_ASSIGNMENT_BODY_BYTES - 100)
    extra = "k" * 30000
    raw = orjson.dumps({"unit_id": unit[:30000], extra: 1})
    response = await _post(client, "/v1/assignment", raw)
    assert response.status_code == 422
    assert len(response.content) < SHORT  # before: 60 KB, both inputs in full
    by_type = {e["type"]: e for e in response.json()["detail"]}
    assert by_type["string_too_long"]["input"] == "u" * PREVIEW_CHARS + "…"
    assert by_type["extra_forbidden"]["loc"] == ["body", "k" * PREVIEW_CHARS + "…"]


async def test_many_invalid_keys_list_a_bounded_number_of_errors(
    client: httpx.AsyncClient,
) -> None:
    keys = [f"bad key {i} " + "!" * 90 for i in range(MAX_EXPERIMENT_KEYS)]
    response = await _post(
        client, "/v1/assignment", orjson.dumps({"unit_id": "a", "experiments": keys})
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert detail[-1]["msg"] == f"{MAX_EXPERIMENT_KEYS - MAX_ERRORS} more errors not shown"
    assert len(response.content) < 8 * SHORT


async def test_experiment_keys_are_bounded(client: httpx.AsyncClient) -> None:
    # Before: a 3000-character key was accepted and echoed back under `skipped`.
    too_long = {"unit_id": "a", "experiments": ["k" * 101]}
    assert (await client.post("/v1/assignment", json=too_long)).status_code == 422
    too_many = {"unit_id": "a", "experiments": [f"k{i}" for i in range(MAX_EXPERIMENT_KEYS + 1)]}
    assert (await client.post("/v1/assignment", json=too_many)).status_code == 422
    fine = {"unit_id": "a", "experiments": ["k" * 100]}
    body = (await client.post("/v1/assignment", json=fine)).json()
    assert body["skipped"] == [
        {"experiment": "k" * 100, "reason": "no running experiment with this key"}
    ]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "fragment"),
    [
        (b'{"unit_id": "a"', "application/json", 400, "not valid JSON: Expecting ','"),
        (b"\xff\xfe{", "application/json", 400, "not valid JSON: not UTF-8"),
        (b"[" * 60000, "application/json", 400, "not valid JSON: nested too deeply"),
        (b'{"unit_id": ' + b"9" * 5000 + b"}", "application/json", 400, "integer"),
        (b'{"unit_id": "a"}', "text/plain", 415, "content-type: application/json"),
        (b'{"unit_id": "a"}', "", 415, "content-type: application/json"),
        (b'{"unit_id": NaN}', "application/json", 422, "valid string"),
        (b'{"unit_id": Infinity}', "application/json", 422, "valid string"),
        (b"[]", "application/json", 422, "valid dictionary"),
    ],
)
async def test_malformed_assignment_bodies_answer_4xx(
    client: httpx.AsyncClient, raw: bytes, content_type: str, status: int, fragment: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/v1/assignment", content=raw, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert fragment in response.text
    assert len(response.content) < SHORT


async def test_event_refusals_quote_a_short_prefix(client: httpx.AsyncClient) -> None:
    long_id = "i" * 100_000
    bad = {**event("u", "open"), "event_id": long_id, "x" * 100_000: 1}
    response = await client.post("/v1/events", json={"events": [bad]})
    assert response.status_code == 422
    assert len(response.content) < SHORT  # before: 200 KB, the id and the field name in full
    [refused] = response.json()["refused"]
    assert refused["event_id"] == "i" * PREVIEW_CHARS + "…"
    unknown = await client.post("/v1/events", json={"events": [{}], "y" * 100_000: 1})
    assert unknown.status_code == 400 and len(unknown.content) < SHORT


def test_previews_are_short_and_encodable() -> None:
    cases = [
        ("\ud800" * 1000, "\\ud800" * PREVIEW_CHARS + "…"),
        (float("nan"), "nan"),
        (10**100, "1" + "0" * (PREVIEW_CHARS - 1) + "…"),
        (b"\xff" * 3, "\\xff\\xff\\xff"),
        ({"a": "\udfff"}, '{"a": "\\udfff"}'),
        (5, 5),
        (None, None),
    ]
    for value, expected in cases:
        shown = preview(value)
        assert shown == expected, value
        json.dumps(shown, allow_nan=False).encode("utf-8")


# --- the document -------------------------------------------------------------------------


async def test_openapi_states_the_answers_and_the_window(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in ("/v1/assignment", "/v1/events"):
        answers = schema["paths"][path]["post"]["responses"]
        assert {"200", "400", "413", "422"} <= set(answers), path
    assignment = schema["paths"]["/v1/assignment"]["post"]
    assert str(MAX_ASSIGNMENT_BODY_BYTES) in assignment["requestBody"]["description"]
    assert "415" in assignment["responses"]
    timestamp = schema["components"]["schemas"]["EventIn"]["properties"]["timestamp"]
    assert "30 days" in timestamp["description"] and "300 s" in timestamp["description"]
    request = schema["components"]["schemas"]["AssignmentRequest"]["properties"]
    keys = request["experiments"]["anyOf"][0]
    assert keys["maxItems"] == MAX_EXPERIMENT_KEYS and keys["items"]["pattern"]


async def test_openapi_refuses_nul_where_the_api_does(client: httpx.AsyncClient) -> None:
    # Before, a fuzzer's schema-valid NUL in unit_id or in properties was refused: the
    # document now says what the api enforces. (jsonschema_rs: schemathesis' own validator.)
    schema = (await client.get("/openapi.json")).json()

    def valid(component: str, value: Any) -> bool:
        document = {"$ref": f"#/components/schemas/{component}", **schema}
        return bool(jsonschema_rs.Draft202012Validator(document).is_valid(value))

    good = {**event("u", "open"), "properties": {"a": [1, None, {"b": "c"}], "d": {}}}
    assert valid("EventIn", good)
    for props in ({"n": "a\u0000b"}, {"a\u0000": 1}, {"a": [{"b": ["\u0000"]}]}):
        assert not valid("EventIn", {**good, "properties": props}), props
        batch = {"events": [{**good, "event_id": str(uuid.uuid4()), "properties": props}]}
        response = await client.post("/v1/events", json=batch)
        assert "NUL" in response.json()["refused"][0]["reason"]
    assert valid("AssignmentRequest", {"unit_id": "a"})
    assert not valid("AssignmentRequest", {"unit_id": "a\u0000"})
