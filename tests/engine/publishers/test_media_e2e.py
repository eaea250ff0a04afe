"""Media end to end: the real publishers, through the publish job, against the whole mock
platform (engine.mock_platform.app) on a loopback port — X's chunked upload, YouTube's
resumable upload (resumed after a dropped chunk, and after a killed attempt), Instagram's
container polling, Facebook's photo upload, the mock's own upload, and a vanished file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engine import publish_queue
from engine.jobs.publish import PublishContext, run_publication
from engine.mock_platform.app import create_app
from engine.mock_platform.config import MockConfig
from engine.mock_platform.media import MediaState
from engine.publishers.instagram import InstagramPublisher
from engine.publishers.x import XPublisher
from engine.publishers.youtube import YouTubePublisher
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Platform, Post, Publication
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import (
    FAST,
    add_connection,
    add_post,
    drain,
    publications,
    run_queued,
    start_server,
)

KB = 1024
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12
MP4 = b"\x00\x00\x00\x18ftypmp42"


class Mock:
    def __init__(self, app: Any, url: str) -> None:
        self.app, self.url = app, url

    def configure(self, **changes: Any) -> None:
        self.app.state.mock.config = MockConfig(**changes)

    @property
    def media(self) -> MediaState:
        state: MediaState = self.app.state.media
        return state

    def posts(self, platform: str) -> list[dict[str, Any]]:
        return self.media.posts.get(platform, [])


@pytest.fixture(scope="module")
async def mock_app() -> AsyncIterator[Mock]:
    app = create_app(MockConfig())
    server, task, url = await start_server(app)
    yield Mock(app, url)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def mock(mock_app: Mock) -> Iterator[Mock]:
    mock_app.configure()
    mock_app.app.state.media = MediaState()
    publishing_state = mock_app.app.state.publishing
    publishing_state.posts.clear()
    publishing_state.by_key.clear()
    publishing_state.uploads.clear()
    yield mock_app
    mock_app.configure()


@pytest.fixture
async def mpc(rt: Runtime, mock: Mock) -> AsyncIterator[PublishContext]:
    urls = {
        Platform.MOCK: mock.url,
        Platform.X: f"{mock.url}/x",
        Platform.YOUTUBE: f"{mock.url}/youtube",
        Platform.INSTAGRAM: f"{mock.url}/graph",
        Platform.FACEBOOK: f"{mock.url}/graph",
    }
    context = PublishContext(rt, policy=FAST, base_urls=urls)
    x = context.publishers[Platform.X]
    assert isinstance(x, XPublisher)
    x.chunk_bytes, x.max_poll_s = 100 * KB, 0.01
    yt = context.publishers[Platform.YOUTUBE]
    assert isinstance(yt, YouTubePublisher)
    yt.chunk_bytes = 256 * KB
    ig = context.publishers[Platform.INSTAGRAM]
    assert isinstance(ig, InstagramPublisher)
    ig.poll_s = 0.01
    yield context
    await context.close()


def media_file(folder: Path, name: str, head: bytes, size: int) -> Path:
    path = folder / name
    path.write_bytes(head + bytes(range(256)) * ((size - len(head)) // 256 + 1))
    with path.open("r+b") as handle:
        handle.truncate(size)
    return path


async def add_media_post(
    rt: Runtime, connection_id: int, media: list[str], body: str = "with media"
) -> Post:
    post, _ = await add_post(rt, [connection_id], body=body, media=media)
    return post


async def only(db: Database, post: Post) -> Publication:
    (pub,) = await publications(db, post.id)
    return pub


async def test_x_uploads_in_chunks_waits_for_processing_then_posts_with_media_ids(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    mock.configure(media_processing_polls=2)
    image = media_file(tmp_path, "a.jpg", JPEG, 250 * KB)
    conn = await add_connection(db, "x-team", platform=Platform.X)
    post = await add_media_post(mpc.rt, conn.id, [str(image)])
    assert await drain(mpc) == ["published"]
    (tweet,) = mock.posts("x")
    assert len(tweet["media"]) == 1
    upload = mock.media.uploads[tweet["media"][0]]
    assert upload.received == 250 * KB and sorted(upload.segments) == [0, 1, 2]
    pub = await only(db, post)
    assert pub.status == "published" and pub.external_id == tweet["id"]
    assert pub.checkpoint["x_media"][str(image)]["ready"] is True


async def test_x_append_whose_connection_drops_is_sent_again(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    mock.configure(media_drop_every=2)
    image = media_file(tmp_path, "b.png", b"\x89PNG\r\n\x1a\n", 350 * KB)
    conn = await add_connection(db, "x-drop", platform=Platform.X)
    await add_media_post(mpc.rt, conn.id, [str(image)])
    assert await drain(mpc) == ["published"]
    assert mock.media.counters["dropped"] >= 1
    assert len(mock.posts("x")) == 1
    assert mock.media.counters["x_uploads"] == 1  # the same upload, a segment sent again


async def test_youtube_resumes_after_dropped_chunks_in_one_session(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    mock.configure(media_drop_every=2)
    size = 1024 * KB + 123
    video = media_file(tmp_path, "v.mp4", MP4, size)
    conn = await add_connection(db, "yt-chan", platform=Platform.YOUTUBE)
    post = await add_media_post(mpc.rt, conn.id, [str(video)], body="Launch\nall about it")
    assert await drain(mpc) == ["published"]
    assert mock.media.counters["dropped"] >= 2
    assert mock.media.counters["youtube_sessions"] == 1
    assert mock.media.counters["bytes"] == size  # resumed where it stopped, nothing sent twice
    (video_post,) = mock.posts("youtube")
    assert (await only(db, post)).external_id == video_post["id"]


async def test_youtube_upload_killed_midway_is_resumed_by_the_next_attempt(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    mock.configure(media_chunk_delay_s=0.05)
    size = 2048 * KB
    video = media_file(tmp_path, "kill.mp4", MP4, size)
    conn = await add_connection(db, "yt-kill", platform=Platform.YOUTUBE)
    post = await add_media_post(mpc.rt, conn.id, [str(video)])
    pub = await only(db, post)
    await publish_queue.remove_publish_jobs(
        mpc.rt.redis, mpc.rt.settings, [(pub.id, pub.generation)]
    )
    first = asyncio.create_task(run_publication(mpc, pub.id, pub.generation))
    while mock.media.counters["bytes"] < 512 * KB:  # killed with a quarter or more sent
        assert not first.done(), first
        await asyncio.sleep(0.01)
    first.cancel()  # the worker dies mid-upload: no answer, no bookkeeping
    with pytest.raises(asyncio.CancelledError):
        await first
    killed = await only(db, post)
    assert killed.status == "publishing" and "upload_url" in killed.checkpoint
    sent_before = mock.media.counters["bytes"]
    assert sent_before < size
    async with db.transaction() as session:  # the job time limit has passed (no sleeping)
        await session.execute(
            text("update publication set started_at = now() - interval '1 hour' where id = :id"),
            {"id": pub.id},
        )
    mock.configure()
    assert await run_publication(mpc, pub.id, pub.generation) == "published"
    done = await only(db, post)
    assert done.status == "published"
    assert mock.media.counters["youtube_sessions"] == 1  # the same session, resumed
    assert mock.media.counters["bytes"] == size
    # Not started over: at most the one chunk in flight at the kill was sent twice.
    assert mock.media.counters["youtube_bytes_sent"] <= size + 256 * KB
    (video_post,) = mock.posts("youtube")  # one video
    assert done.external_id == video_post["id"]


async def test_instagram_polls_the_container_until_finished(
    mpc: PublishContext, db: Database, mock: Mock
) -> None:
    mock.configure(media_processing_polls=3)
    conn = await add_connection(db, "1784", platform=Platform.INSTAGRAM)
    post = await add_media_post(mpc.rt, conn.id, ["https://cdn.example/a.jpg"], body="caption")
    assert await drain(mpc) == ["published"]
    (media,) = mock.posts("instagram")
    pub = await only(db, post)
    assert pub.external_id == media["id"] and "container_id" in pub.checkpoint


async def test_instagram_container_in_error_fails_permanently(
    mpc: PublishContext, db: Database, mock: Mock
) -> None:
    mock.configure(media_container_error=True, media_processing_polls=1)
    conn = await add_connection(db, "1785", platform=Platform.INSTAGRAM)
    post = await add_media_post(mpc.rt, conn.id, ["https://cdn.example/v.mp4"])
    assert await drain(mpc) == ["failed"]
    pub = await only(db, post)
    assert pub.last_error is not None and "could not process" in pub.last_error
    assert mock.posts("instagram") == []


async def test_facebook_uploads_a_photo_file_to_the_page(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    image = media_file(tmp_path, "p.jpg", JPEG, 40 * KB)
    conn = await add_connection(db, "page-1", platform=Platform.FACEBOOK)
    await add_media_post(mpc.rt, conn.id, [str(image)], body="a photo")
    assert await drain(mpc) == ["published"]
    (photo,) = mock.posts("facebook")
    assert photo["kind"] == "photos" and photo["bytes"] == 40 * KB and photo["text"] == "a photo"


async def test_mock_platform_post_with_an_image_file_uploads_it_first(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    image = media_file(tmp_path, "m.jpg", JPEG, 10 * KB)
    conn = await add_connection(db, "demo-like")
    post = await add_media_post(mpc.rt, conn.id, [str(image), "https://cdn.example/b.png"])
    assert await drain(mpc) == ["published"]
    pub = await only(db, post)
    assert set(pub.checkpoint["mock_media"]) == {str(image)}


async def test_a_file_that_vanished_after_compose_fails_permanently_saying_so(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    image = media_file(tmp_path, "gone.jpg", JPEG, 10 * KB)
    conn = await add_connection(db, "x-gone", platform=Platform.X)
    post = await add_media_post(mpc.rt, conn.id, [str(image)])
    image.unlink()
    assert await drain(mpc) == ["failed"]
    pub = await only(db, post)
    assert pub.last_error is not None
    assert str(image) in pub.last_error and "vanished" in pub.last_error
    assert mock.posts("x") == []


async def test_the_demo_seeds_a_post_with_an_image_that_its_engine_publishes(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    from console.demo.seed_posts import DEMO_POSTS, seed_demo_posts

    settings = mpc.rt.settings.model_copy(update={"data_dir": str(tmp_path)})
    assert await seed_demo_posts(settings) == len(DEMO_POSTS)
    assert await run_queued(mpc) == ["published"] * len(DEMO_POSTS)  # due in minutes: run now
    with_image = [p for p in mock.app.state.publishing.posts if p.media]
    assert len(with_image) == 1 and with_image[0].media[0].startswith("mock-media:")
    assert (tmp_path / "demo-media" / "behind-the-scenes.png").stat().st_size > 1000


async def test_facebook_video_by_url_and_a_plain_link(
    mpc: PublishContext, db: Database, mock: Mock
) -> None:
    conn = await add_connection(db, "page-2", platform=Platform.FACEBOOK)
    await add_media_post(mpc.rt, conn.id, ["https://cdn.example/clip.mp4"], body="a clip")
    await add_media_post(mpc.rt, conn.id, ["https://news.example/story"], body="a story")
    assert await drain(mpc) == ["published", "published"]
    kinds = sorted(p["kind"] for p in mock.posts("facebook"))
    assert kinds == ["feed", "videos"]


async def test_x_media_that_fails_processing_fails_the_post_and_posts_nothing(
    mpc: PublishContext, db: Database, mock: Mock, tmp_path: Path
) -> None:
    mock.configure(media_container_error=True)
    video = media_file(tmp_path, "bad.mp4", MP4, 150 * KB)
    conn = await add_connection(db, "x-bad", platform=Platform.X)
    post = await add_media_post(mpc.rt, conn.id, [str(video)])
    assert await drain(mpc) == ["failed"]
    pub = await only(db, post)
    assert pub.last_error is not None and "could not process media" in pub.last_error
    assert mock.posts("x") == []
