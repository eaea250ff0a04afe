"""The mock platform's publishing API: posts with idempotency keys, lookup, and injected faults.

    POST /publishing/v1/{account}/posts          Idempotency-Key header; 201 new, 200 replay
    GET  /publishing/v1/{account}/posts          ?idempotency_key=K finds the post made with K
    POST /publishing/v1/{account}/media          raw bytes + Content-Type -> {"id": "mock-media:…"}
    POST /publishing/_control/faults             {"rate": 0.1, "kinds": [...], "script": [...]}
    GET  /publishing/_control/stats              requests, posts created, replays, duplicates
    POST /publishing/_control/reset

Fault kinds: `unavailable` (503, nothing stored), `rate_limited` (429 + Retry-After, nothing
stored), `server_error` (500 after storing: the post exists), `unauthorized` (401), `rejected`
(400 with a reason, nothing stored), `lost` (the
post is stored, then the answer is held back `lost_delay_s`: the client times out — "accepted
but the response is lost"). `script` faults are served first, in order ("ok" for none); then
each request draws a fault with probability `rate`. Tokens in `revoked` get 401.
`honour_idempotency: false` makes the mock behave like a platform without keys (a repeated
request makes a second post), so callers' own duplicate guards can be tested.

State is in memory: one mock process is one platform.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

FAULT_KINDS = ("unavailable", "rate_limited", "server_error", "unauthorized", "rejected", "lost")


class FaultConfig(BaseModel):
    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    kinds: list[str] = Field(default_factory=lambda: ["unavailable", "server_error", "lost"])
    script: list[str] = Field(default_factory=list)
    lost_delay_s: float = Field(default=2.0, ge=0.0, le=120.0)
    retry_after_s: int = Field(default=1, ge=0)
    honour_idempotency: bool = True
    revoked: list[str] = Field(default_factory=list)
    seed: int | None = None
    latency_s: float = Field(default=0.0, ge=0.0, le=10.0)


class PostIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)
    media: list[str] = Field(default_factory=list)


@dataclass
class MockPost:
    id: str
    account: str
    text: str
    media: list[str]
    idempotency_key: str | None
    created_at: str

    def public(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "text": self.text,
            "media": self.media,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
            "url": f"{base_url}publishing/p/{self.id}",
        }


@dataclass
class PublishState:
    config: FaultConfig = field(default_factory=FaultConfig)
    posts: list[MockPost] = field(default_factory=list)
    by_key: dict[tuple[str, str], MockPost] = field(default_factory=dict)
    requests: int = 0
    replayed: int = 0
    uploads: dict[str, int] = field(default_factory=dict)  # media id -> bytes
    faults: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    # The OAuth mock's verdict on a token it issued (expired or revoked: 401); None: no check.
    refuses: Callable[[str], bool] | None = None

    def draw_fault(self) -> str | None:
        if self.config.script:
            kind = self.config.script.pop(0)
            return None if kind == "ok" else kind
        if self.config.rate and self.rng.random() < self.config.rate and self.config.kinds:
            return self.rng.choice(self.config.kinds)
        return None

    def stats(self) -> dict[str, Any]:
        texts = Counter((p.account, p.text) for p in self.posts)
        keys = Counter((p.account, p.idempotency_key) for p in self.posts if p.idempotency_key)
        return {
            "requests": self.requests,
            "created": len(self.posts),
            "replayed": self.replayed,
            "uploads": len(self.uploads),
            # The same text posted twice to one account, or one key that made two posts.
            "duplicate_texts": sum(n - 1 for n in texts.values() if n > 1),
            "duplicate_keys": sum(n - 1 for n in keys.values() if n > 1),
            "faults": dict(self.faults),
        }


def _token(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer ") or len(authorization) < 8:
        raise HTTPException(401, detail="missing bearer token")
    return authorization[len("Bearer ") :]


def _check_token(state: PublishState, authorization: str | None) -> None:
    token = _token(authorization)
    if state.refuses is not None and state.refuses(token):
        raise HTTPException(401, detail="token expired or revoked")
    for revoked in state.config.revoked:
        if hmac.compare_digest(token.encode(), revoked.encode()):
            raise HTTPException(401, detail="token revoked or expired")


Answer = tuple[int, Any, dict[str, str]]  # status, JSON body, extra headers


async def answer_post(
    st: PublishState,
    account: str,
    raw_body: bytes,
    authorization: str | None,
    idempotency_key: str | None,
    base: str,
) -> Answer:
    """POST /publishing/v1/{account}/posts, the one implementation: FastAPI's route and the
    mock server's fast path (engine.mock_platform.fast_posts) both answer with it."""
    try:
        body = PostIn.model_validate_json(raw_body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        detail = [{**e, "loc": ["body", *e["loc"]]} for e in errors]  # as FastAPI says it
        return 422, {"detail": detail}, {}
    st.requests += 1
    if st.config.latency_s:
        await asyncio.sleep(st.config.latency_s)
    try:
        _check_token(st, authorization)
    except HTTPException as exc:
        return exc.status_code, {"detail": exc.detail}, {}
    if idempotency_key and st.config.honour_idempotency:
        seen = st.by_key.get((account, idempotency_key))
        if seen is not None:
            st.replayed += 1
            return 200, seen.public(base), {"Idempotent-Replayed": "true"}
    fault = st.draw_fault()
    if fault:
        st.faults[fault] += 1
    if fault == "unavailable":
        return 503, {"error": "service unavailable"}, {}
    if fault == "rate_limited":
        return 429, {"error": "too many requests"}, {"Retry-After": str(st.config.retry_after_s)}
    if fault == "unauthorized":
        return 401, {"error": "token expired"}, {}
    if fault == "rejected":
        return 400, {"error": "media type not supported: use JPEG, PNG or MP4"}, {}
    post = MockPost(
        id=uuid.uuid4().hex[:16],
        account=account,
        text=body.text,
        media=body.media,
        idempotency_key=idempotency_key,
        created_at=datetime.now(UTC).isoformat(),
    )
    st.posts.append(post)
    if idempotency_key:
        st.by_key.setdefault((account, idempotency_key), post)
    if fault == "server_error":
        return 500, {"error": "internal error"}, {}
    if fault == "lost":
        await asyncio.sleep(st.config.lost_delay_s)
    return 201, post.public(base), {}


def build_router(state: PublishState | None = None) -> APIRouter:
    """The publishing routes; one `PublishState` per mock platform (tests pass their own)."""
    st = state or PublishState()
    router = APIRouter(prefix="/publishing", tags=["publishing"])

    async def create_post(request: Request) -> JSONResponse:
        status, payload, headers = await answer_post(
            st,
            request.path_params["account"],
            await request.body(),
            request.headers.get("authorization"),
            request.headers.get("idempotency-key"),
            str(request.base_url),
        )
        return JSONResponse(payload, status_code=status, headers=headers)

    router.add_route(f"{router.prefix}/v1/{{account}}/posts", create_post, methods=["POST"])

    async def upload_media(request: Request) -> JSONResponse:
        """One image or video as the raw body; the id goes in a post's `media`."""
        _check_token(st, request.headers.get("authorization"))
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith(("image/", "video/")):
            return JSONResponse({"error": "Content-Type must be image/* or video/*"}, 415)
        data = await request.body()
        if not data:
            return JSONResponse({"error": "empty upload"}, 400)
        media_id = f"mock-media:{uuid.uuid4().hex[:16]}"
        st.uploads[media_id] = len(data)
        return JSONResponse({"id": media_id, "bytes": len(data)}, status_code=201)

    router.add_route(f"{router.prefix}/v1/{{account}}/media", upload_media, methods=["POST"])

    @router.get("/v1/{account}/posts")
    async def list_posts(
        account: str,
        request: Request,
        idempotency_key: str | None = None,
        authorization: str | None = Header(default=None),
    ) -> dict[str, Any]:
        _check_token(st, authorization)
        base = str(request.base_url)
        found = [
            p.public(base)
            for p in st.posts
            if p.account == account
            and (idempotency_key is None or p.idempotency_key == idempotency_key)
        ]
        return {"data": found[:1] if idempotency_key else found[-100:]}

    @router.post("/_control/faults")
    async def set_faults(config: FaultConfig) -> dict[str, Any]:
        unknown = [k for k in (*config.kinds, *config.script) if k not in (*FAULT_KINDS, "ok")]
        if unknown:
            raise HTTPException(422, detail=f"unknown fault kinds {unknown}; use {FAULT_KINDS}")
        st.config = config
        st.rng = random.Random(config.seed)
        return {"ok": True}

    @router.get("/_control/stats")
    async def stats() -> dict[str, Any]:
        return st.stats()

    @router.post("/_control/reset")
    async def reset() -> dict[str, Any]:
        st.config = FaultConfig()
        st.posts.clear()
        st.by_key.clear()
        st.uploads.clear()
        st.requests = st.replayed = 0
        st.faults.clear()
        return {"ok": True}

    return router
