"""Media checked when a post is composed: the rules table, and create_post refusing with a
message that names the file, the platform and the limit (nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.database import Database
from storage.models import Platform, Post
from storage.queries import publishing
from storage.queries.publishing.media_rules import (
    MB,
    MediaError,
    check,
    human,
    inspect,
    sniff,
)
from storage.user_error import UserError
from tests.support.publishing import add_connection

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4


def sparse(folder: Path, name: str, head: bytes, size: int) -> Path:
    """A file of `size` bytes that costs no disk: the head, then a hole."""
    path = folder / name
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def test_types_come_from_the_content_not_the_name(tmp_path: Path) -> None:
    assert sniff(JPEG) == "image/jpeg" and sniff(PNG) == "image/png"
    assert sniff(MP4) == "video/mp4" and sniff(b"\x00\x00\x00\x14ftypqt  ") == "video/quicktime"
    disguised = sparse(tmp_path, "photo.jpg", b"just some text..", 20)
    with pytest.raises(MediaError, match=r"photo\.jpg is not an image or video"):
        inspect(str(disguised))
    png_named_jpg = inspect(str(sparse(tmp_path, "x.jpg", PNG, 100)))
    assert png_named_jpg.content_type == "image/png" and png_named_jpg.size == 100


def test_references_must_be_absolute_files_or_http_urls(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="absolute path"):
        inspect("pics/a.jpg")
    with pytest.raises(MediaError, match="http"):
        inspect("ftp://host/a.jpg")
    with pytest.raises(MediaError, match="does not exist"):
        inspect(str(tmp_path / "missing.jpg"))
    assert inspect(f"file://{sparse(tmp_path, 'f.jpg', JPEG, 50)}").size == 50
    url = inspect("https://cdn.example/v.MP4?sig=1")
    assert url.content_type == "video/mp4" and url.size is None


def test_each_platform_judges_types_sizes_and_counts(tmp_path: Path) -> None:
    big = inspect(str(sparse(tmp_path, "big.jpg", JPEG, 6 * MB)))
    small = inspect(str(sparse(tmp_path, "small.jpg", JPEG, 1 * MB)))
    video = inspect(str(sparse(tmp_path, "v.mp4", MP4, 2 * MB)))
    with pytest.raises(MediaError, match=r"big\.jpg is 6 MB; X \(@t\) takes image/jpeg up to 5 MB"):
        check(Platform.X, "@t", [big])
    check(Platform.FACEBOOK, "@t", [big])  # Facebook photos go to 10 MB
    with pytest.raises(MediaError, match="at most 4"):
        check(Platform.X, "@t", [small] * 5)
    with pytest.raises(MediaError, match="alone"):
        check(Platform.X, "@t", [small, video])
    with pytest.raises(MediaError, match="image/jpeg; YouTube"):
        check(Platform.YOUTUBE, "@t", [small])
    with pytest.raises(MediaError, match=r"YouTube .* needs a video"):
        check(Platform.YOUTUBE, "@t", [])
    with pytest.raises(MediaError, match=r"Instagram .* public URL"):
        check(Platform.INSTAGRAM, "@t", [small])
    check(Platform.INSTAGRAM, "@t", [inspect("https://cdn.example/a.jpg")])
    check(Platform.FACEBOOK, "@t", [inspect("https://news.example/article")])  # a link
    with pytest.raises(MediaError, match="type is unknown"):
        check(Platform.X, "@t", [inspect("https://news.example/article")])
    assert human(5 * MB) == "5 MB" and human(1536) == "1.5 KB"


async def _count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Post)) or 0)


@pytest.mark.parametrize(
    ("platform", "name", "head", "size", "message"),
    [
        (Platform.X, "huge.jpg", JPEG, 6 * MB, r"huge\.jpg is 6 MB; X \(@acct\) takes image/jpeg"),
        (Platform.YOUTUBE, "still.png", PNG, 1000, r"still\.png is image/png; YouTube \(@acct\)"),
        (Platform.INSTAGRAM, "a.jpg", JPEG, 1000, r"a\.jpg: Instagram \(@acct\) fetches media"),
    ],
)
async def test_compose_refuses_media_a_platform_will_not_take(
    db: Database,
    tmp_path: Path,
    platform: Platform,
    name: str,
    head: bytes,
    size: int,
    message: str,
) -> None:
    conn = await add_connection(db, "acct", platform=platform)
    path = sparse(tmp_path, name, head, size)
    before = await _count(db)
    with pytest.raises(UserError, match=message):
        async with db.transaction() as session:
            await publishing.create_post(
                session,
                publishing.PostInput(body="hi", media=[str(path)], connection_ids=[conn.id]),
                actor="test",
            )
    assert await _count(db) == before  # nothing written


async def test_compose_accepts_media_that_fits_and_keeps_the_reference(
    db: Database, tmp_path: Path
) -> None:
    conn = await add_connection(db, "ok", platform=Platform.X)
    path = sparse(tmp_path, "ok.jpg", JPEG, 100_000)
    async with db.transaction() as session:
        post, _ = await publishing.create_post(
            session,
            publishing.PostInput(body="hi", media=[f" {path} ", ""], connection_ids=[conn.id]),
            actor="test",
        )
    assert post.media == [str(path)]
