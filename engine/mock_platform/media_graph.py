"""The mock's Graph API media paths (Instagram containers, Facebook Page photos and videos).

    POST /graph/{ig-user}/media           image_url | video_url + media_type, caption -> container
    GET  /graph/{id}?fields=status_code   IN_PROGRESS -> FINISHED (or ERROR); PUBLISHED once used
    POST /graph/{ig-user}/media_publish   creation_id -> the media id (a container publishes once)
    GET  /graph/{ig-user}/media           the account's latest media (id, caption, permalink)
    POST /graph/{page}/photos             url, or multipart `source`; caption
    POST /graph/{page}/videos             file_url, or multipart `source`; description
    POST /graph/{page}/feed               message, link

Faults as in media.py (`media_processing_polls`, `media_container_error`, and `inject`'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from engine.mock_platform.faults import inject, state_of
from engine.mock_platform.media import error, form_of, media_of, new_id

PERMALINK = "https://mockstagram.local/p/"


@dataclass
class Container:
    account: str
    caption: str
    url: str
    status: str
    polls_left: int
    fails: bool
    media_id: str | None = None


def graph_error(status: int, message: str, code: int = 100) -> JSONResponse:
    return error(status, message, code=code, type="OAuthException")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/graph")
    containers: dict[str, Container] = {}

    @router.post("/{account}/media")
    async def create_container(request: Request, account: str) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        config = state_of(request).config
        fields, _ = await form_of(request)
        url = fields.get("image_url") or fields.get("video_url") or ""
        if not url:
            return graph_error(400, "image_url or video_url is required")
        if fields.get("video_url") and fields.get("media_type") not in ("REELS", "VIDEO"):
            return graph_error(400, "video_url needs media_type=REELS")
        container_id = new_id()
        polls = config.media_processing_polls
        status = "IN_PROGRESS" if polls or config.media_container_error else "FINISHED"
        containers[container_id] = Container(
            account, fields.get("caption", ""), url, status, polls, config.media_container_error
        )
        media_of(request).counters["instagram_containers"] += 1
        return JSONResponse({"id": container_id})

    @router.post("/{account}/media_publish")
    async def media_publish(request: Request, account: str) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        fields, _ = await form_of(request)
        container = containers.get(fields.get("creation_id", ""))
        if container is None or container.account != account:
            return graph_error(400, "unknown creation_id")
        if container.status != "FINISHED":
            message = f"the media is not ready to publish ({container.status})"
            return graph_error(400, message, code=9007)
        media_id = new_id()
        container.status, container.media_id = "PUBLISHED", media_id
        post = {"id": media_id, "account": account, "text": container.caption, "url": container.url}
        media_of(request).add_post("instagram", post)
        return JSONResponse({"id": media_id})

    @router.get("/{account}/media")
    async def list_media(request: Request, account: str) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        posts = [p for p in media_of(request).posts.get("instagram", []) if p["account"] == account]
        data = [
            {"id": p["id"], "caption": p["text"], "permalink": PERMALINK + p["id"]}
            for p in reversed(posts[-25:])
        ]
        return JSONResponse({"data": data})

    @router.get("/{object_id}")
    async def read_object(request: Request, object_id: str) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        container = containers.get(object_id)
        if container is not None:
            if container.status == "IN_PROGRESS":
                if container.polls_left > 0:
                    container.polls_left -= 1
                else:
                    container.status = "ERROR" if container.fails else "FINISHED"
            return JSONResponse({"id": object_id, "status_code": container.status})
        return JSONResponse({"id": object_id, "permalink": PERMALINK + object_id})

    async def page_post(request: Request, account: str, kind: str) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        fields, files = await form_of(request)
        source = files.get("source")
        url = fields.get("url") or fields.get("file_url")
        if kind != "feed" and not source and not url:
            return graph_error(400, f"{kind} needs a url or a source file")
        media = media_of(request)
        if source:
            media.counters["bytes"] += len(source)
        text = fields.get("caption") or fields.get("description") or fields.get("message") or ""
        object_id = new_id()
        answer: dict[str, Any] = {"id": object_id}
        if kind == "photos":
            answer["post_id"] = f"{account}_{object_id}"
        post: dict[str, Any] = {"id": object_id, "account": account, "text": text, "kind": kind}
        post["bytes"] = len(source or b"")
        media.add_post("facebook", post)
        return JSONResponse(answer)

    @router.post("/{account}/photos")
    async def photos(request: Request, account: str) -> Response:
        return await page_post(request, account, "photos")

    @router.post("/{account}/videos")
    async def videos(request: Request, account: str) -> Response:
        return await page_post(request, account, "videos")

    @router.post("/{account}/feed")
    async def feed(request: Request, account: str) -> Response:
        return await page_post(request, account, "feed")

    return router
