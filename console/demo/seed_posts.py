"""Demo publishing: one mock-platform account and a few posts due in the next minutes, so the
Posts screen shows work going out. Idempotent: an account that exists is reused and posts are
only added while the demo has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine import publish_queue
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.models.publishing import Platform
from storage.queries import publishing
from storage.settings import Settings

DEMO_POSTS = [
    "New week, new local faces: meet this week's creators to watch.",
    "Behind the scenes at the Eastern Market shoot.",
    "Thank you, Detroit! 10k followers across our creator network.",
]


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
        for n, body in enumerate(DEMO_POSTS):
            data = publishing.PostInput(
                body=body,
                connection_ids=[account.id],
                scheduled_at=now + timedelta(minutes=1 + n),
            )
            async with rt.db.transaction() as session:
                _, change = await publishing.create_post(session, data, actor="demo")
            await publish_queue.apply(rt.redis, settings, change)
        return len(DEMO_POSTS)
    finally:
        await rt.close()
