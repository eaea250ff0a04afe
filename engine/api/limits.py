"""What a client can make the api hold in memory, and what it can make the api say back.

Invariants, and what they cost:

- Bodies. A route that reads a body (`/v1/events`, and every path in `app.BODY_LIMITS`) never
  holds more of it than its limit: a declared Content-Length above the limit is refused (413)
  before a byte is read, and a chunked body is counted while it streams and refused at the first
  chunk past the limit. Cost: one buffer of at most the limit (plus one chunk) per request.
- Echoes. An error answer repeats at most PREVIEW_CHARS characters of any one piece of client
  input (a value or a field name) and at most MAX_ERRORS errors, and what it repeats always
  encodes as JSON in UTF-8: lone surrogates are shown as `\\udXXX` escapes, non-finite numbers and
  bytes as text. FastAPI's own 422 handler echoes whole inputs (a 100 MB body came back as a
  100 MB answer; a lone surrogate could not be encoded and became a 500): `validation_failed`
  replaces it for the whole app.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

PREVIEW_CHARS = 64
MSG_CHARS = 200
MAX_ERRORS = 20
_JSON_HEADERS = [(b"content-type", b"application/json")]


def too_large(limit: int, advice: str) -> str:
    """The 413 explanation: the limit and what to do instead."""
    return f"body is larger than {limit} bytes; {advice}"


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, None when absent (chunked) or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit` bytes (the rest is
    never read). Raises `ClientDisconnect` when the client leaves mid-body."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over `body` (already read, in full) and then the connection's own
    messages (a later disconnect still reaches the app)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def send_json(
    send: Send, status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A complete JSON answer on a bare ASGI `send` (`extra`: more headers)."""
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def safe_text(text: str, limit: int = PREVIEW_CHARS) -> str:
    """At most `limit` characters of `text` ("…" marks a cut), encodable as UTF-8."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    # Lone surrogates (valid in JSON escapes, not in UTF-8) become visible \udXXX escapes.
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def preview(value: Any) -> Any:
    """A short stand-in for a client's input that JSON-encodes: small scalars as they are,
    anything else as a prefix of its text (see the module's echo invariant)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        text = str(value)
        return value if len(text) <= PREVIEW_CHARS else safe_text(text)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bytes | bytearray):
        return safe_text(bytes(value[: PREVIEW_CHARS * 4]).decode("utf-8", "backslashreplace"))
    try:
        # Bounded by the route's body limit; rendered whole, then cut.
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        text = f"<{type(value).__name__}>"
    return safe_text(text)


def error_entries(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI validation errors as FastAPI lists them (type, loc, msg, input), each
    part cut short and made safe; `ctx` (which may hold exception objects) is left out."""
    shown: list[dict[str, Any]] = []
    for error in errors[:MAX_ERRORS]:
        entry: dict[str, Any] = {
            "type": safe_text(str(error.get("type", "invalid")), MSG_CHARS),
            # Field names come from the client too (an unknown key is reported by its name).
            "loc": [p if isinstance(p, int) else safe_text(str(p)) for p in error.get("loc", ())],
            "msg": safe_text(str(error.get("msg", "")), MSG_CHARS),
        }
        if "input" in error:
            entry["input"] = preview(error["input"])
        shown.append(entry)
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        shown.append({"type": "too_many_errors", "loc": [], "msg": f"{more} more errors not shown"})
    return shown


def _body_error(errors: Sequence[Any]) -> tuple[int, str] | None:
    """(status, explanation) when the body as a whole is unusable, else None."""
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = error.get("loc", ())
            where = f" (char {loc[-1]})" if len(loc) > 1 else ""
            reason = (error.get("ctx") or {}).get("error", "JSON decode error")
            return 400, f"body is not valid JSON: {safe_text(str(reason), MSG_CHARS)}{where}"
        if tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes):
            # FastAPI hands the raw bytes over when the content type is not JSON.
            return 415, "body must be JSON, sent with content-type: application/json"
    return None


async def validation_failed(request: Request, exc: Exception) -> Response:
    """The app's one answer to invalid requests: 400 (not JSON), 415 (not sent as JSON) or 422
    (the errors, each with a short, safe preview of the input)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    whole = _body_error(errors)
    if whole is not None:
        status, detail = whole
        return JSONResponse({"detail": detail}, status_code=status)
    return JSONResponse({"detail": error_entries(errors)}, status_code=422)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's HTTP errors as FastAPI answers them, with a precise reason in place of "There
    was an error parsing the body" (FastAPI raises it from the parser's own exception)."""
    assert isinstance(exc, HTTPException)
    cause = exc.__cause__
    if exc.status_code != 400 or not isinstance(cause, ValueError | RecursionError):
        return await http_exception_handler(request, exc)
    if isinstance(cause, UnicodeDecodeError):
        reason = f"not UTF-8 ({cause.reason})"
    elif isinstance(cause, RecursionError):
        reason = "nested too deeply"
    else:  # an integer past Python's 4300-digit conversion limit: the message, not its advice
        reason = str(cause).split(":")[0]
    detail = f"body is not valid JSON: {safe_text(reason, MSG_CHARS)}"
    return JSONResponse({"detail": detail}, status_code=400)
