"""Demo creators: a few hundred mock-platform accounts spread over the demo regions, with a
week of hourly history (from the mock platform's own deterministic growth) so the Creators
screen shows change, growth and charts at once. Idempotent: re-seeding changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.mock_platform import growth
from engine.mock_platform.config import MockConfig
from storage.database import Database
from storage.models import TrackedPlatform
from storage.queries import creators
from storage.queries.creators import CreatorInput

DEMO_CREATORS = 300
HISTORY_DAYS = 7
REGIONS = (
    "DEMO_EVERY_MINUTE",
    "DEMO_EVERY_2_MIN",
    "CHICAGO_METRO",
    "DETROIT_METRO",
    "LOSANGELES_METRO",
)
FIRST_NAMES = ("ava", "liam", "mia", "noah", "zoe", "eli", "ivy", "leo", "ruby", "max", "nia")
TOPICS = ("eats", "fits", "beats", "skate", "garden", "vintage", "coffee", "murals", "vlogs")


def demo_rows(count: int = DEMO_CREATORS) -> list[CreatorInput]:
    rows = []
    for n in range(count):
        name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]}_{TOPICS[n % len(TOPICS)]}{n}"
        rows.append(
            CreatorInput(
                platform=TrackedPlatform.MOCK,
                external_id=f"demo{n:04d}",
                handle=name,
                display_name=name.replace("_", " ").title(),
                region_code=REGIONS[n % len(REGIONS)],
                contact_url=f"https://linktr.ee/{name}",
            )
        )
    return rows


async def seed_demo_creators(db: Database, now: datetime | None = None) -> int:
    """Insert the demo creators (existing ones are left alone) and back-fill their history."""
    now = now or datetime.now(UTC)
    rows = demo_rows()
    async with db.session() as session:
        existing = await creators.count_external_ids(session, "mock", [r.external_id for r in rows])
    new = [r for r in rows if r.external_id not in existing]
    if not new:
        return 0
    async with db.transaction() as session:
        await creators.upsert_creators(session, new)
        ids = await creators.ids_by_external(session, "mock", [r.external_id for r in new])
    config = MockConfig()
    hours = [
        now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=h)
        for h in range(HISTORY_DAYS * 24, 0, -1)
    ]
    samples = []
    for external_id, creator_id in ids.items():
        for moment in hours:
            slot = growth.slot_of(moment.timestamp(), config.slot_s)
            stats = growth.stats_at(config.seed, external_id, slot, config.slot_s)
            samples.append(
                (
                    creator_id,
                    moment,
                    stats["followers"],
                    stats["following"],
                    stats["posts"],
                    stats["views"],
                )
            )
    async with db.transaction() as session:
        await creators.insert_history(session, samples)
    return len(new)
