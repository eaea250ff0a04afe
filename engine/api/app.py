"""The ASGI app: `create_app(settings)`; uvicorn runs it (see `engine.api.serve`).

Every route that reads a body is bounded before its body is read (`/v1/events` in its own
handler, the others through BODY_LIMITS), and every invalid request is answered by one handler
that never echoes more than a short prefix of the input (`engine.api.limits`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from engine import logs, metrics
from engine.api import limits, routes_assignment, routes_events, routes_health, routes_metrics
from engine.api.context import ApiContext
from engine.api.schemas import (
    MAX_AGE_DAYS,
    MAX_ASSIGNMENT_BODY_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    MAX_EXPERIMENT_KEYS,
    MAX_FUTURE_S,
    PROPERTIES_SCHEMA,
    PROPERTY_VALUE_SCHEMA,
    EventBatch,
    EventIn,
)
from storage.errors import DB_DOWN_DETAIL, DB_DOWN_ERRORS
from storage.settings import Settings

log = logs.get("engine.api")

DESCRIPTION = f"""
The creatordeck API for the mobile app and the dashboard.

- `POST /v1/assignment`: sticky A/B variants (GrowthBook hashing, FNV-1a 32-bit, v2); at most
  {MAX_EXPERIMENT_KEYS} experiment keys, a body at most {MAX_ASSIGNMENT_BODY_BYTES} bytes.
- `POST /v1/events`: batches of 1 to {MAX_BATCH_EVENTS} events, each event's properties at most
  {MAX_EVENT_BYTES} bytes as JSON, a body at most {MAX_BODY_BYTES} bytes. Deduplicated by
  event id; clock skew corrected from `sent_at`; an event more than {MAX_AGE_DAYS} days old or
  more than {MAX_FUTURE_S} s ahead (after the correction) is refused; invalid events are
  refused one by one.

A body over its limit answers 413; a body that is not JSON 400; invalid fields 422, where each
input is echoed as a short prefix at most.
- `GET /v1/metrics/*`: reads from the rollup tables; all but `summary` need the
  `x-dashboard-token` header (the DASHBOARD_TOKEN of the api's environment).
"""


RETRY_SOON = ((b"retry-after", b"1"),)
# Route labels for metrics: known paths as they are, anything else as "other" (bounded labels).
ROUTES = frozenset(
    {
        "/health",
        "/metrics",
        "/openapi.json",
        "/v1/assignment",
        "/v1/events",
        "/v1/metrics/summary",
        "/v1/metrics/daily",
        "/v1/metrics/experiments",
        "/v1/metrics/funnels",
    }
)
# FastAPI routes that read a body: the most each may send, and the 413's explanation.
# (POST /v1/events bounds its own.)
BODY_LIMITS = {"/v1/assignment": (MAX_ASSIGNMENT_BODY_BYTES, routes_assignment.TOO_LARGE)}


class FastPath:
    """`POST /v1/events` straight to its ASGI handler, `/metrics` to Prometheus' exposition,
    everything else to FastAPI (bodies of BODY_LIMITS' routes read, bounded, first); every
    request counted and timed."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        status = 500
        started = time.perf_counter()

        async def counting_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if path == "/v1/events" and scope["method"] == "POST":
                await routes_events.asgi_events(self.app.state.ctx, scope, receive, counting_send)
            elif path == "/metrics":
                await _metrics(counting_send)
            elif path in BODY_LIMITS and scope["method"] == "POST":
                await self._bounded(scope, receive, counting_send, path)
            else:
                await self.app(scope, receive, counting_send)
        finally:
            metrics.API_REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.API_LATENCY.labels(route).observe(time.perf_counter() - started)

    async def _bounded(self, scope: Any, receive: Any, send: Any, path: str) -> None:
        """FastAPI's route, given the body read in full if it is within the route's limit."""
        limit, too_large = BODY_LIMITS[path]
        try:
            body = await limits.read_body(scope, receive, limit)
        except ClientDisconnect:
            return
        if body is None:
            await limits.send_json(send, 413, orjson.dumps({"detail": too_large}))
            return
        if path == "/v1/assignment" and await self._fast_assignment(scope, body, send):
            return
        await self.app(scope, limits.replay(body, receive), send)

    async def _fast_assignment(self, scope: Any, body: bytes, send: Any) -> bool:
        """Answer a valid JSON assignment request (routes_assignment.fast_answer); False when
        it is not one and FastAPI must answer it. Errors are answered as the app's handlers
        answer them on the FastAPI path."""
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
        if not routes_assignment.is_json(content_type):
            return False
        extra: tuple[tuple[bytes, bytes], ...] = ()
        try:
            answer = await routes_assignment.fast_answer(self.app.state.ctx, body)
        except DB_DOWN_ERRORS as exc:
            log.warning("api.database_unavailable", path=scope["path"], error=repr(exc))
            status, answer, extra = 503, orjson.dumps({"detail": DB_DOWN_DETAIL}), RETRY_SOON
        except Exception as exc:
            log.error("api.unexpected", path=scope["path"], error=repr(exc), exc_info=exc)
            status, answer = 500, orjson.dumps({"detail": "internal error; see the api's log"})
        else:
            if answer is None:
                return False
            status = 200
        await limits.send_json(send, status, answer, extra)
        return True


async def _metrics(send: Any) -> None:
    body = metrics.exposition()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings, ctx: ApiContext | None = None) -> FastPath:
    """The ASGI app (FastAPI behind the events fast path) as `fastapi_app` builds it."""
    return FastPath(fastapi_app(settings, ctx))


def fastapi_app(settings: Settings, ctx: ApiContext | None = None) -> FastAPI:
    """The app; `ctx` given (tests), it is used as is and left open at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = ctx is None
        app.state.ctx = ctx if ctx is not None else await ApiContext.open(settings)
        log.info("api.start", prefix=settings.redis_prefix)
        try:
            yield
        finally:
            if own:
                await app.state.ctx.close()
            log.info("api.stopped")

    app = FastAPI(
        title="creatordeck",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    if ctx is not None:
        app.state.ctx = ctx
    for module in (routes_health, routes_assignment, routes_events, routes_metrics):
        app.include_router(module.router)

    # One answer to invalid input for the whole app: short, safe echoes (engine.api.limits).
    app.add_exception_handler(RequestValidationError, limits.validation_failed)
    app.add_exception_handler(HTTPException, limits.http_error)

    async def database_down(request: Request, exc: Exception) -> Response:
        # Postgres restarting or unreachable is not our bug: say so, and when to come back.
        log.warning("api.database_unavailable", path=request.url.path, error=repr(exc))
        return JSONResponse(
            {"detail": DB_DOWN_DETAIL}, status_code=503, headers={"retry-after": "1"}
        )

    for error in DB_DOWN_ERRORS:
        app.add_exception_handler(error, database_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Log the failure with its path; the client learns nothing of our internals.
        log.error("api.unexpected", path=request.url.path, error=repr(exc), exc_info=exc)
        return JSONResponse({"detail": "internal error; see the api's log"}, status_code=500)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # /v1/events reads its body by hand (per-event refusals); document it here.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            ref = "#/components/schemas/{model}"
            event = EventIn.model_json_schema(ref_template=ref)
            event["properties"]["properties"].update(PROPERTIES_SCHEMA)
            components["EventIn"] = event
            components["PropertyValue"] = PROPERTY_VALUE_SCHEMA
            batch = EventBatch.model_json_schema(ref_template=ref)
            batch["properties"]["events"]["items"] = {"$ref": "#/components/schemas/EventIn"}
            components["EventBatch"] = batch
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
