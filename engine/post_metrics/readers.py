"""Each platform's metrics read: post ids in, counts out, or a classified Failure for the call.

| platform  | call                                              | ids per call | counts            |
| --------- | ------------------------------------------------- | ------------ | ----------------- |
| mock      | GET /publishing/v1/{account}/metrics?ids=a,b      | 50           | all four          |
| youtube   | GET /youtube/v3/videos?part=statistics&id=a,b     | 50 (1 unit)  | no shares         |
| x         | GET /2/tweets?ids=a,b&tweet.fields=public_metrics | 100          | all four          |
| facebook  | GET /{post}?fields=shares,comments,reactions      | 1            | no views          |
| instagram | GET /{media}/insights?metric=views,likes,...      | 1            | as the media has  |

A post the platform does not return (deleted, or not visible to the token) is absent from the
answer; the scan writes that step with no counts and reads it again at its next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from engine.resilience import Failure, PermanentFailure, classify_exception, classify_response
from storage.models import Platform


@dataclass(frozen=True, slots=True)
class Counts:
    views: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None


GRAPH_URL = "https://graph.facebook.com/v21.0"  # as engine.publishers.facebook
MAX_BATCH: dict[str, int] = {
    Platform.MOCK: 50,
    Platform.YOUTUBE: 50,
    Platform.X: 100,
    Platform.FACEBOOK: 1,
    Platform.INSTAGRAM: 1,
}
DEFAULT_BASE_URLS: dict[str, str] = {
    Platform.YOUTUBE: "https://www.googleapis.com",
    Platform.X: "https://api.x.com",
    Platform.FACEBOOK: GRAPH_URL,
    Platform.INSTAGRAM: GRAPH_URL,
}


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


async def _get(
    client: httpx.AsyncClient, url: str, token: str, params: dict[str, str]
) -> dict[str, Any]:
    try:
        response = await client.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise classify_exception(exc) from exc
    failure: Failure | None = classify_response(response)
    if failure is not None:
        raise failure
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentFailure(f"metrics answer is not JSON: {response.text[:200]}") from exc
    if not isinstance(body, dict):
        raise PermanentFailure(f"metrics answer is not an object: {response.text[:200]}")
    return body


async def read_mock(
    client: httpx.AsyncClient, base: str, token: str, account: str, ids: Sequence[str]
) -> dict[str, Counts]:
    body = await _get(
        client, f"{base}/publishing/v1/{account}/metrics", token, {"ids": ",".join(ids)}
    )
    return {
        str(d["id"]): Counts(
            _int(d.get("views")),
            _int(d.get("likes")),
            _int(d.get("comments")),
            _int(d.get("shares")),
        )
        for d in body.get("data") or []
        if isinstance(d, dict) and "id" in d
    }


async def read_youtube(
    client: httpx.AsyncClient, base: str, token: str, account: str, ids: Sequence[str]
) -> dict[str, Counts]:
    params = {"part": "statistics", "id": ",".join(ids), "maxResults": str(len(ids))}
    body = await _get(client, f"{base}/youtube/v3/videos", token, params)
    out: dict[str, Counts] = {}
    for item in body.get("items") or []:
        stats = item.get("statistics") or {}
        out[str(item["id"])] = Counts(
            views=_int(stats.get("viewCount")),
            likes=_int(stats.get("likeCount")),
            comments=_int(stats.get("commentCount")),
        )
    return out


async def read_x(
    client: httpx.AsyncClient, base: str, token: str, account: str, ids: Sequence[str]
) -> dict[str, Counts]:
    params = {"ids": ",".join(ids), "tweet.fields": "public_metrics"}
    body = await _get(client, f"{base}/2/tweets", token, params)
    out: dict[str, Counts] = {}
    for item in body.get("data") or []:
        m = item.get("public_metrics") or {}
        out[str(item["id"])] = Counts(
            views=_int(m.get("impression_count")),
            likes=_int(m.get("like_count")),
            comments=_int(m.get("reply_count")),
            shares=_int(m.get("retweet_count")),
        )
    return out


async def read_facebook(
    client: httpx.AsyncClient, base: str, token: str, account: str, ids: Sequence[str]
) -> dict[str, Counts]:
    out: dict[str, Counts] = {}
    fields = "shares,comments.summary(true).limit(0),reactions.summary(true).limit(0)"
    for post_id in ids:
        body = await _get(client, f"{base}/{post_id}", token, {"fields": fields})
        out[post_id] = Counts(
            likes=_int(((body.get("reactions") or {}).get("summary") or {}).get("total_count")),
            comments=_int(((body.get("comments") or {}).get("summary") or {}).get("total_count")),
            shares=_int((body.get("shares") or {}).get("count")),
        )
    return out


async def read_instagram(
    client: httpx.AsyncClient, base: str, token: str, account: str, ids: Sequence[str]
) -> dict[str, Counts]:
    out: dict[str, Counts] = {}
    for media_id in ids:
        params = {"metric": "views,likes,comments,shares"}
        body = await _get(client, f"{base}/{media_id}/insights", token, params)
        values: dict[str, int | None] = {}
        for metric in body.get("data") or []:
            first = (metric.get("values") or [{}])[0]
            values[str(metric.get("name"))] = _int(first.get("value"))
        out[media_id] = Counts(
            values.get("views"), values.get("likes"), values.get("comments"), values.get("shares")
        )
    return out


READERS = {
    Platform.MOCK: read_mock,
    Platform.YOUTUBE: read_youtube,
    Platform.X: read_x,
    Platform.FACEBOOK: read_facebook,
    Platform.INSTAGRAM: read_instagram,
}
