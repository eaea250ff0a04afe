"""The real platforms' publishers against recorded responses (tests/fixtures/publish), via respx."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from engine.jobs.publish import PublishContext
from engine.publishers.base import PublishRequest
from engine.publishers.facebook import FacebookPublisher
from engine.publishers.instagram import InstagramPublisher
from engine.publishers.x import XPublisher
from engine.publishers.youtube import YouTubePublisher, title_of
from engine.resilience import FailureKind
from storage.database import Database
from storage.models import Platform
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import (
    FAST,
    add_connection,
    add_post,
    drain,
    publications,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "publish"
GRAPH = "https://graph.facebook.com/v21.0"


def recorded(name: str, **replace: str) -> httpx.Response:
    raw = (FIXTURES / f"{name}.json").read_text()
    for old, new in replace.items():
        raw = raw.replace(old, new)
    data = json.loads(raw)
    body = data.get("json")
    return httpx.Response(
        data["status"],
        headers=data.get("headers") or {},
        content=b"" if body is None else json.dumps(body).encode(),
    )


def request(**overrides: Any) -> PublishRequest:
    values: dict[str, Any] = {
        "publication_id": 1,
        "idempotency_key": "k1",
        "account_id": "1116692661689527",
        "access_token": "tok",
        "body": "Are you excited for the weekend?",
        "media": [],
    }
    values.update(overrides)
    return PublishRequest(**values)


saved: list[dict[str, Any]] = []


async def checkpoint(data: dict[str, Any]) -> None:
    saved.append(data)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    saved.clear()
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
def pc(respx_pc: PublishContext) -> PublishContext:
    return respx_pc  # the job's context on httpx's own transport, for respx


# --- X ---------------------------------------------------------------------------------------


@respx.mock
async def test_x_publish_sends_text_with_bearer_and_reads_the_id(
    client: httpx.AsyncClient,
) -> None:
    route = respx.post("https://api.x.com/2/tweets").mock(return_value=recorded("x_create_201"))
    published = await XPublisher(client).publish(request(), checkpoint)
    assert published.external_id == "1445880548472328192"
    assert published.url == "https://x.com/i/web/status/1445880548472328192"
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer tok"
    assert json.loads(sent.content) == {"text": "Are you excited for the weekend?"}


@pytest.mark.parametrize(
    ("fixture", "kind", "words"),
    [
        ("x_duplicate_403", FailureKind.PERMANENT, "duplicate content"),
        ("x_unauthorized_401", FailureKind.UNAUTHORIZED, "Unauthorized"),
        ("x_too_many_429", FailureKind.RATE_LIMITED, "Too Many Requests"),
        ("x_service_unavailable_503", FailureKind.TRANSIENT, "Service Unavailable"),
    ],
)
@respx.mock
async def test_x_errors_are_classified(
    client: httpx.AsyncClient, fixture: str, kind: FailureKind, words: str
) -> None:
    reset = str(int(time.time()) + 120)
    respx.post("https://api.x.com/2/tweets").mock(return_value=recorded(fixture, RESET=reset))
    with pytest.raises(Exception) as caught:
        await XPublisher(client).publish(request(), checkpoint)
    failure = caught.value
    assert getattr(failure, "kind", None) == kind and words in str(failure)
    if kind == FailureKind.RATE_LIMITED:
        assert 100 < (failure.retry_after_s or 0) <= 120  # type: ignore[attr-defined]


@respx.mock
async def test_x_timeout_after_sending_is_outcome_unknown(client: httpx.AsyncClient) -> None:
    respx.post("https://api.x.com/2/tweets").mock(side_effect=httpx.ReadTimeout("late"))
    with pytest.raises(Exception) as caught:
        await XPublisher(client).publish(request(), checkpoint)
    assert getattr(caught.value, "kind", None) == FailureKind.OUTCOME_UNKNOWN
    respx.post("https://api.x.com/2/tweets").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(Exception) as caught:
        await XPublisher(client).publish(request(), checkpoint)
    assert getattr(caught.value, "kind", None) == FailureKind.TRANSIENT


# --- Facebook --------------------------------------------------------------------------------


@respx.mock
async def test_facebook_text_goes_to_feed_and_images_to_photos(
    client: httpx.AsyncClient,
) -> None:
    feed = respx.post(f"{GRAPH}/1116692661689527/feed").mock(return_value=recorded("fb_feed_200"))
    photos = respx.post(f"{GRAPH}/1116692661689527/photos").mock(
        return_value=recorded("fb_photos_200")
    )
    publisher = FacebookPublisher(client)
    text = await publisher.publish(request(), checkpoint)
    assert text.external_id == "1116692661689527_2153345208024262"
    assert text.url == "https://www.facebook.com/1116692661689527_2153345208024262"
    assert b"message=Are+you+excited" in feed.calls.last.request.content
    photo = await publisher.publish(request(media=["https://cdn.example/a.jpg"]), checkpoint)
    assert photo.external_id == "1116692661689527_2153345314690918"
    assert b"url=https%3A%2F%2Fcdn.example%2Fa.jpg" in photos.calls.last.request.content
    # The token travels in the Authorization header, never in the URL.
    assert "access_token" not in str(feed.calls.last.request.url)


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("fb_token_expired_400", FailureKind.UNAUTHORIZED),
        ("fb_rate_limited_400", FailureKind.RATE_LIMITED),
        ("fb_duplicate_400", FailureKind.PERMANENT),
        ("fb_unknown_error_500", FailureKind.TRANSIENT),
    ],
)
@respx.mock
async def test_facebook_graph_error_codes_are_classified(
    client: httpx.AsyncClient, fixture: str, kind: FailureKind
) -> None:
    respx.post(f"{GRAPH}/1116692661689527/feed").mock(return_value=recorded(fixture))
    with pytest.raises(Exception) as caught:
        await FacebookPublisher(client).publish(request(), checkpoint)
    assert getattr(caught.value, "kind", None) == kind
    assert "(code " in str(caught.value)


# --- Instagram -------------------------------------------------------------------------------


@respx.mock
async def test_instagram_container_then_publish_then_permalink(
    client: httpx.AsyncClient,
) -> None:
    media = respx.post(f"{GRAPH}/1784/media").mock(return_value=recorded("ig_container_200"))
    publish = respx.post(f"{GRAPH}/1784/media_publish").mock(
        return_value=recorded("ig_media_publish_200")
    )
    respx.get(f"{GRAPH}/17920238422030506").mock(return_value=recorded("ig_permalink_200"))
    status = respx.get(f"{GRAPH}/17889615691921648").mock(
        return_value=recorded("ig_container_status_finished")
    )
    published = await InstagramPublisher(client).publish(
        request(account_id="1784", media=["https://cdn.example/a.jpg"]), checkpoint
    )
    assert published.external_id == "17920238422030506"
    assert published.url == "https://www.instagram.com/p/C0abcDEFghi/"
    assert saved == [{"container_id": "17889615691921648"}]  # saved before publishing
    assert b"image_url=" in media.calls.last.request.content
    assert b"creation_id=17889615691921648" in publish.calls.last.request.content
    assert status.called  # polled until FINISHED before media_publish


async def test_instagram_refuses_a_post_without_media(client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception, match="needs an image or a video"):
        await InstagramPublisher(client).publish(request(), checkpoint)


@respx.mock
async def test_instagram_lookup_reads_the_container_status(client: httpx.AsyncClient) -> None:
    publisher = InstagramPublisher(client)
    assert await publisher.lookup(request(account_id="1784")) is None  # no container yet
    status = respx.get(f"{GRAPH}/17889615691921648").mock(
        return_value=recorded("ig_container_status_finished")
    )
    with_container = request(
        account_id="1784", checkpoint={"container_id": "17889615691921648"}, body="CAPTION"
    )
    assert await publisher.lookup(with_container) is None  # made but not published
    status.mock(return_value=recorded("ig_container_status_published"))
    respx.get(f"{GRAPH}/1784/media").mock(return_value=recorded("ig_media_list_200"))
    found = await publisher.lookup(with_container)
    assert found is not None and found.external_id == "17920238422030506"


@respx.mock
async def test_instagram_lost_container_answer_is_safe_to_repeat(
    client: httpx.AsyncClient,
) -> None:
    respx.post(f"{GRAPH}/1784/media").mock(side_effect=httpx.ReadTimeout("late"))
    with pytest.raises(Exception) as caught:
        await InstagramPublisher(client).publish(
            request(account_id="1784", media=["https://cdn.example/a.jpg"]), checkpoint
        )
    assert getattr(caught.value, "kind", None) == FailureKind.TRANSIENT
    respx.post(f"{GRAPH}/1784/media").mock(return_value=recorded("ig_limit_reached_400"))
    with pytest.raises(Exception) as caught:
        await InstagramPublisher(client).publish(
            request(account_id="1784", media=["https://cdn.example/a.jpg"]), checkpoint
        )
    assert getattr(caught.value, "kind", None) == FailureKind.RATE_LIMITED


# --- YouTube ---------------------------------------------------------------------------------

UPLOAD = "https://www.googleapis.com/upload/youtube/v3/videos"


@respx.mock
async def test_youtube_resumable_upload_with_metadata(client: httpx.AsyncClient) -> None:
    session = respx.post(UPLOAD).mock(return_value=recorded("yt_session_200"))
    respx.head("https://cdn.example/v.mp4").mock(
        return_value=httpx.Response(
            200, headers={"content-length": "1000", "content-type": "video/mp4"}
        )
    )
    respx.get("https://cdn.example/v.mp4").mock(
        return_value=httpx.Response(200, content=b"\x00" * 1000)
    )
    upload = respx.put(url__startswith=UPLOAD).mock(return_value=recorded("yt_video_200"))
    body = "Launch <day>\nEverything about the launch."
    published = await YouTubePublisher(client).publish(
        request(body=body, media=["https://cdn.example/v.mp4"]), checkpoint
    )
    assert published.external_id == "dQw4w9WgXcQ"
    assert published.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    metadata = json.loads(session.calls.last.request.content)
    assert metadata["snippet"]["title"] == "Launch day"
    assert metadata["snippet"]["description"] == body
    assert metadata["status"]["privacyStatus"] == "public"
    assert session.calls.last.request.url.params["uploadType"] == "resumable"
    assert saved and "upload_id=xa298sd_f" in saved[0]["upload_url"]
    assert upload.calls.last.request.content == b"\x00" * 1000
    assert upload.calls.last.request.headers["content-range"] == "bytes 0-999/1000"
    assert session.calls.last.request.headers["x-upload-content-length"] == "1000"


@respx.mock
async def test_youtube_lookup_asks_the_upload_session(client: httpx.AsyncClient) -> None:
    publisher = YouTubePublisher(client)
    url = f"{UPLOAD}?uploadType=resumable&upload_id=xa298sd_f&part=snippet,status"
    status = respx.put(url__startswith=UPLOAD).mock(return_value=recorded("yt_incomplete_308"))
    assert await publisher.lookup(request(checkpoint={"upload_url": url})) is None
    assert status.calls.last.request.headers["content-range"] == "bytes */*"
    status.mock(return_value=recorded("yt_video_200"))
    found = await publisher.lookup(request(checkpoint={"upload_url": url}))
    assert found is not None and found.external_id == "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [("yt_quota_403", FailureKind.RATE_LIMITED), ("yt_auth_401", FailureKind.UNAUTHORIZED)],
)
@respx.mock
async def test_youtube_errors_are_classified(
    client: httpx.AsyncClient, fixture: str, kind: FailureKind
) -> None:
    respx.post(UPLOAD).mock(return_value=recorded(fixture))
    respx.head("https://cdn.example/v.mp4").mock(
        return_value=httpx.Response(200, headers={"content-length": "10"})
    )
    with pytest.raises(Exception) as caught:
        await YouTubePublisher(client).publish(
            request(media=["https://cdn.example/v.mp4"]), checkpoint
        )
    assert getattr(caught.value, "kind", None) == kind


def test_youtube_title_is_the_first_line_trimmed() -> None:
    assert title_of("  First line  \nsecond") == "First line"
    assert title_of("") == "Untitled"
    assert len(title_of("x" * 300)) == 100


# --- through the job -------------------------------------------------------------------------


async def test_x_timeout_in_the_job_waits_for_a_person_and_never_resends(
    pc: PublishContext, db: Database
) -> None:
    conn = await add_connection(db, "2244994945", platform=Platform.X)
    post, _ = await add_post(pc.rt, [conn.id], body="hello from the job")
    with respx.mock() as router:
        route = router.post("https://api.x.com/2/tweets").mock(
            side_effect=httpx.ReadTimeout("late")
        )
        assert await drain(pc) == ["unknown"]
        assert route.call_count == 1
    (pub,) = await publications(db, post.id)
    assert pub.status == "unknown" and pub.outcome_unknown
    assert pub.last_error and "no answer after the request was sent" in pub.last_error


async def test_x_503_in_the_job_retries_then_publishes(pc: PublishContext, db: Database) -> None:
    conn = await add_connection(db, "2244994945", platform=Platform.X)
    post, _ = await add_post(pc.rt, [conn.id], body="retry me")
    with respx.mock() as router:
        router.post("https://api.x.com/2/tweets").mock(
            side_effect=[recorded("x_service_unavailable_503"), recorded("x_create_201")]
        )
        assert await drain(pc) == ["retry", "published"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "published" and pub.external_id == "1445880548472328192"
    assert pub.attempts == 2 and FAST.max_attempts > 2
