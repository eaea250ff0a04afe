"""Demo publishing: one mock-platform account and a few posts due in the next minutes, so the
Posts screen shows work going out; one of them carries an image (a small PNG generated into
DATA_DIR/demo-media/), which the demo's engine uploads to the mock platform before posting.
Idempotent: an account that exists is reused and posts are only added while the demo has none."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import publish_queue
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.embedded.servers import data_dir
from storage.models.publishing import Platform
from storage.queries import publishing
from storage.settings import Settings

DEMO_POSTS = [
    "New week, new local faces: meet this week's creators to watch.",
    "Behind the scenes at the Eastern Market shoot.",
    "Thank you, Detroit! 10k followers across our creator network.",
]
IMAGE_POST = 1  # "Behind the scenes…" carries the image


def demo_image(folder: Path, width: int = 96, height: int = 64) -> Path:
    """A small gradient PNG (96x64, about 12 KB), written once into `folder`."""
    path = folder / "behind-the-scenes.png"
    if path.exists():
        return path

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, 90, y * 255 // height))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


async def seed_demo_posts(settings: Settings, now: datetime | None = None) -> int:
    if settings.encryption_key is None:
        return 0
    now = now or datetime.now(UTC)
    cipher = TokenCipher(settings.encryption_key.get_secret_value())
    rt = await Runtime.connect(settings)
    try:
        async with rt.db.transaction() as session:
            account = await publishing.save_connection(
                session,
                cipher,
                publishing.ConnectionInput(
                    platform=Platform.MOCK,
                    account_id="demo_team",
                    display_name="@demo_team",
                    token="demo-token",  # noqa: S106 - the local mock platform's token
                ),
                actor="demo",
            )
            if await publishing.count_posts(session):
                return 0
        image = demo_image(data_dir(settings.data_dir) / "demo-media")
        for n, body in enumerate(DEMO_POSTS):
            data = publishing.PostInput(
                body=body,
                media=[str(image)] if n == IMAGE_POST else [],
                connection_ids=[account.id],
                scheduled_at=now + timedelta(minutes=1 + n),
            )
            async with rt.db.transaction() as session:
                _, change = await publishing.create_post(session, data, actor="demo")
            await publish_queue.apply(rt.redis, settings, change)
        return len(DEMO_POSTS)
    finally:
        await rt.close()
