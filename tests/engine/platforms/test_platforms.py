"""Platform adapters against recorded responses (respx) and the mock platform's API."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import respx

from engine.mock_platform import growth
from engine.platforms.instagram import InstagramAdapter
from engine.platforms.x import XAdapter
from engine.platforms.youtube import YouTubeAdapter
from engine.resilience import AuthFailure, FailureKind, NotFound, Quota, TransientFailure
from storage.queries.creators import FetchTarget
from tests.support.creators import mock_platform

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tracking"
QUOTA = Quota("test", calls=100, per_s=1)


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def target(creator_id: int, external_id: str, etag: str | None = None) -> FetchTarget:
    return FetchTarget(creator_id, "x", external_id, etag, None)


@respx.mock
async def test_youtube_channels_list_batch_with_item_etags() -> None:
    route = respx.get("https://www.googleapis.com/youtube/v3/channels").mock(
        return_value=httpx.Response(200, json=fixture("youtube_channels_200.json"))
    )
    adapter = YouTubeAdapter(QUOTA, "key-123")
    targets = [
        target(1, "UC_x5XG1OV2P6uZZ5FSM9Ttw"),
        target(2, "UCVHFbqXqoYvEWM1Ddxl0QDg", etag="b7Q1cV9oRzJ1Jm3XWf0eYvE2aGk"),
        target(3, "UCgoneGoneGone"),
    ]
    async with httpx.AsyncClient() as client:
        result = await adapter.fetch(client, targets)
    sent = route.calls.last.request
    params = sent.url.params
    # The key travels in a header: a URL ends up in logs.
    assert sent.headers["x-goog-api-key"] == "key-123" and "key" not in params
    assert params["part"] == "statistics"
    assert params["id"] == "UC_x5XG1OV2P6uZZ5FSM9Ttw,UCVHFbqXqoYvEWM1Ddxl0QDg,UCgoneGoneGone"
    one = result.observed[1]
    assert (one.followers, one.posts, one.views) == (2_480_000, 6932, 3_064_981_267)
    assert one.etag == "oTjFWt4Pp3fZ3GzW5mKQaJqW1zQ"
    assert result.not_modified == [2]  # same item ETag: no sample
    assert isinstance(result.failures[3], NotFound)  # missing from items: gone


@respx.mock
async def test_youtube_single_id_conditional_304_and_errors() -> None:
    route = respx.get("https://www.googleapis.com/youtube/v3/channels")
    route.side_effect = [
        httpx.Response(304),
        httpx.Response(403, json=fixture("youtube_quota_403.json")),
        httpx.Response(400, json=fixture("youtube_key_invalid_400.json")),
    ]
    adapter = YouTubeAdapter(QUOTA, "key-123")
    async with httpx.AsyncClient() as client:
        result = await adapter.fetch(client, [target(7, "UCabc", etag="etag-7")])
        assert result.not_modified == [7]
        assert route.calls.last.request.headers["if-none-match"] == "etag-7"
        with pytest.raises(TransientFailure) as quota:
            await adapter.fetch(client, [target(7, "UCabc")])
        assert quota.value.kind == FailureKind.RATE_LIMITED and quota.value.retry_after_s
        with pytest.raises(AuthFailure):
            await adapter.fetch(client, [target(7, "UCabc")])


@respx.mock
async def test_x_user_lookup_public_metrics_and_per_user_errors() -> None:
    route = respx.get("https://api.x.com/2/users").mock(
        return_value=httpx.Response(200, json=fixture("x_users_200.json"))
    )
    adapter = XAdapter(QUOTA, "bearer-abc")
    targets = [
        target(1, "2244994945"),
        target(2, "783214"),
        target(3, "1111111111"),
        target(4, "2222222222"),
    ]
    async with httpx.AsyncClient() as client:
        result = await adapter.fetch(client, targets)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer bearer-abc"
    assert request.url.params["user.fields"] == "public_metrics"
    assert result.observed[1].followers == 570_842 and result.observed[1].posts == 14_052
    assert result.observed[2].following == 3 and result.observed[2].views is None
    assert isinstance(result.failures[3], NotFound)
    assert isinstance(result.failures[4], NotFound)  # suspended: gone for us


@respx.mock
async def test_x_rate_limit_reset_header_and_401() -> None:
    route = respx.get("https://api.x.com/2/users")
    reset = str(int(time.time()) + 120)
    route.side_effect = [
        httpx.Response(
            429, json=fixture("x_rate_limited_429.json"), headers={"x-rate-limit-reset": reset}
        ),
        httpx.Response(401, json=fixture("x_unauthorized_401.json")),
    ]
    adapter = XAdapter(QUOTA, "bearer-abc")
    async with httpx.AsyncClient() as client:
        with pytest.raises(TransientFailure) as limited:
            await adapter.fetch(client, [target(1, "1")])
        assert 100 < (limited.value.retry_after_s or 0) <= 120
        with pytest.raises(AuthFailure):
            await adapter.fetch(client, [target(1, "1")])


@respx.mock
async def test_instagram_business_discovery() -> None:
    route = respx.get("https://graph.facebook.com/v21.0/17841405309211844")
    route.side_effect = [
        httpx.Response(200, json=fixture("instagram_business_discovery_200.json")),
        httpx.Response(400, json=fixture("instagram_not_found_400.json")),
        httpx.Response(400, json=fixture("instagram_rate_limited_400.json")),
        httpx.Response(400, json=fixture("instagram_token_expired_400.json")),
    ]
    adapter = InstagramAdapter(QUOTA, "token-xyz", "17841405309211844")
    async with httpx.AsyncClient() as client:
        result = await adapter.fetch(client, [target(1, "bluebottle"), target(2, "nosuchaccount")])
        sent = route.calls[0].request
        assert sent.url.params["fields"].startswith("business_discovery.username(bluebottle)")
        # The token travels in a header: a URL ends up in logs.
        assert sent.headers["authorization"] == "Bearer token-xyz"
        assert "access_token" not in sent.url.params
        assert result.observed[1].followers == 267_793 and result.observed[1].posts == 1205
        assert isinstance(result.failures[2], NotFound)
        with pytest.raises(TransientFailure):
            await adapter.fetch(client, [target(3, "busy")])
        with pytest.raises(AuthFailure):
            await adapter.fetch(client, [target(4, "expired")])


async def test_mock_platform_api_etag_batch_faults_and_admin() -> None:
    mock = mock_platform(max_batch=3)
    transport = httpx.ASGITransport(app=mock.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        first = await client.get("/v1/users/abc")
        assert first.status_code == 200 and first.json()["followers"] > 0
        etag = first.headers["etag"]
        again = await client.get("/v1/users/abc", headers={"If-None-Match": etag})
        assert again.status_code == 304
        mock.clock.now += 60  # next slot: new numbers, new ETag
        moved = await client.get("/v1/users/abc", headers={"If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag

        batch = await client.post(
            "/v1/users/batch",
            json={"ids": ["abc", "def", "ghi"], "etags": {"abc": moved.headers["etag"]}},
        )
        body = batch.json()
        assert body["not_modified"] == ["abc"] and len(body["data"]) == 2
        too_many = await client.post("/v1/users/batch", json={"ids": ["a", "b", "c", "d"]})
        assert too_many.status_code == 400 and "at most 3" in too_many.text

        await client.put("/admin/faults", json={"rate_limit": 1, "rate_window_s": 30})
        await client.get("/v1/users/x1")
        limited = await client.get("/v1/users/x1")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        other = await client.get("/v1/users/x1", headers={"Authorization": "Bearer other"})
        assert other.status_code == 200  # limits are per token
        await client.put("/admin/faults", json={"rate_limit": 0, "error_rate": 1.0})
        assert (await client.get("/v1/users/x1")).status_code == 503
        await client.put("/admin/faults", json={"error_rate": 0.0})
        await client.post("/admin/accounts/x1/gone")
        assert (await client.get("/v1/users/x1")).status_code == 404
        await client.post("/admin/accounts/x1/restore")
        assert (await client.get("/v1/users/x1")).status_code == 200
        bad = await client.put("/admin/faults", json={"error_rate": 7})
        assert bad.status_code == 400
        stats = (await client.get("/admin/stats")).json()
        assert stats["429"] == 1 and stats["503"] == 1 and stats["404"] == 1


def test_growth_is_deterministic_per_account_and_slot() -> None:
    a = growth.stats_at(0, "acct1", 29_833_333, 60)
    assert a == growth.stats_at(0, "acct1", 29_833_333, 60)
    later = growth.stats_at(0, "acct1", 29_833_333 + 1440 * 30, 60)  # 30 days on
    assert later["followers"] != a["followers"]
    assert growth.etag_of(0, "acct1", 1) != growth.etag_of(0, "acct1", 2)
    gone = sum(growth.is_gone(0, f"a{n}", 0.1) for n in range(10_000))
    assert 800 < gone < 1200
