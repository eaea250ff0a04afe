"""The mock platform's ASGI app: `create_app(config)`; endpoints are listed in the package doc.

Other mock endpoints (publishing) live in their own modules as routers and are included here.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from engine.mock_platform import growth, media, media_graph, metrics, oauth, publish
from engine.mock_platform.config import MockConfig
from engine.mock_platform.fast_posts import FastPosts
from engine.mock_platform.faults import MockState, inject, state_of


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # json.dumps straight to bytes: no per-item encoder pass on large batches.
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def _slot(mock: MockState) -> int:
    return growth.slot_of(mock.clock(), mock.config.slot_s)


def _gone(mock: MockState, account_id: str) -> bool:
    config = mock.config
    return account_id in config.gone_ids or growth.is_gone(
        config.seed, account_id, config.gone_rate
    )


async def get_user(request: Request, user_id: str) -> Response:
    fault = await inject(request)
    if fault is not None:
        return fault
    mock = state_of(request)
    if _gone(mock, user_id):
        mock.counters["404"] += 1
        return _json({"error": {"status": 404, "message": "account not found"}}, 404)
    slot = _slot(mock)
    etag = growth.etag_of(mock.config.seed, user_id, slot)
    if request.headers.get("if-none-match") == etag:
        mock.counters["304"] += 1
        return Response(status_code=304, headers={"ETag": etag})
    mock.counters["ids"] += 1
    stats = growth.stats_at(mock.config.seed, user_id, slot, mock.config.slot_s)
    return _json({**stats, "etag": etag}, headers={"ETag": etag})


async def batch_users(request: Request) -> Response:
    fault = await inject(request)
    if fault is not None:
        return fault
    mock = state_of(request)
    try:
        body = await request.json()
        ids = body["ids"]
        etags = body.get("etags") or {}
        if not isinstance(ids, list) or not isinstance(etags, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _json({"error": {"status": 400, "message": "body: {ids: [...], etags: {}}"}}, 400)
    if len(ids) > mock.config.max_batch:
        message = f"at most {mock.config.max_batch} ids per call"
        return _json({"error": {"status": 400, "message": message}}, 400)
    seed, slot_s = mock.config.seed, mock.config.slot_s
    slot = _slot(mock)
    data: list[dict[str, Any]] = []
    not_modified: list[str] = []
    errors: list[dict[str, Any]] = []
    for raw in ids:
        account_id = str(raw)
        if _gone(mock, account_id):
            errors.append({"id": account_id, "status": 404, "message": "account not found"})
            continue
        etag = growth.etag_of(seed, account_id, slot)
        if etags.get(account_id) == etag:
            not_modified.append(account_id)
            continue
        data.append({**growth.stats_at(seed, account_id, slot, slot_s), "etag": etag})
    mock.counters["ids"] += len(ids)
    mock.counters["304"] += len(not_modified)
    mock.counters["404"] += len(errors)
    return _json({"data": data, "not_modified": not_modified, "errors": errors})


async def health(request: Request) -> Response:
    return _json({"ok": True})


async def get_stats(request: Request) -> Response:
    return _json(dict(state_of(request).counters))


async def get_faults(request: Request) -> Response:
    return _json(state_of(request).config.model_dump(mode="json"))


async def put_faults(request: Request) -> Response:
    """Change fault injection at run time: the body's fields replace the current ones."""
    mock = state_of(request)
    try:
        changes = await request.json()
        mock.config = MockConfig.model_validate({**mock.config.model_dump(), **changes})
    except ValueError as exc:
        return JSONResponse({"error": {"status": 400, "message": str(exc)[:500]}}, 400)
    return _json(mock.config.model_dump(mode="json"))


async def mark_gone(request: Request, user_id: str) -> Response:
    mock = state_of(request)
    mock.config.gone_ids.add(user_id)
    return _json({"id": user_id, "gone": True})


async def restore(request: Request, user_id: str) -> Response:
    mock = state_of(request)
    mock.config.gone_ids.discard(user_id)
    return _json({"id": user_id, "gone": False})


def create_app(config: MockConfig | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    """The mock platform as an ASGI app. `clock` lets tests move time (and slots) by hand."""
    cfg = config or MockConfig()
    app = FastAPI(title="mockstagram", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.mock = MockState(config=cfg, clock=clock, rng=random.Random(cfg.seed))
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/users/batch", batch_users, methods=["POST"])
    app.add_api_route("/v1/users/{user_id}", get_user, methods=["GET"])
    app.add_api_route("/admin/stats", get_stats, methods=["GET"])
    app.add_api_route("/admin/faults", get_faults, methods=["GET"])
    app.add_api_route("/admin/faults", put_faults, methods=["PUT"])
    app.add_api_route("/admin/accounts/{user_id}/gone", mark_gone, methods=["POST"])
    app.add_api_route("/admin/accounts/{user_id}/restore", restore, methods=["POST"])
    # Routers of other mock features are included below, one line each.
    app.state.oauth = oauth.OAuthState(config=oauth.config_from_env(), clock=clock)
    app.include_router(oauth.build_router(app.state.oauth))
    publishing = publish.PublishState(refuses=app.state.oauth.refuses)
    app.state.publishing = publishing
    app.include_router(publish.build_router(publishing))
    app.add_middleware(FastPosts, state=publishing)  # the posts route, before the router
    app.include_router(metrics.build_router(metrics.MetricsState(publishing, clock=clock)))
    app.state.media = media.MediaState()
    app.include_router(media.build_router())
    app.include_router(media_graph.build_router())
    return app
