"""`creatordeck seed`: the starting regions, and fast-firing ones for the demo."""

from __future__ import annotations

from datetime import UTC, datetime

from console.demo.seed_regions import seed_regions
from storage.database import Database
from storage.queries.regions import upsert_seed_regions
from storage.settings import Settings

DEMO_REGIONS = [
    {"code": "DEMO_EVERY_MINUTE", "name": "Demo: every minute", "cron": "* * * * *"},
    {"code": "DEMO_EVERY_2_MIN", "name": "Demo: every 2 minutes", "cron": "*/2 * * * *"},
    {
        "code": "CHICAGO_METRO",
        "name": "Chicago Metro",
        "cron": "30 6 * * *",
        "timezone": "America/Chicago",
    },
]


async def run_seed(settings: Settings, demo: bool = False) -> int:
    db = Database(settings)
    try:
        async with db.transaction() as session:
            inserted = await seed_regions(session)
        if demo:
            now = datetime.now(UTC)
            async with db.transaction() as session:
                inserted += await upsert_seed_regions(
                    session,
                    [{"timezone": "UTC", **row, "schedule_since": now} for row in DEMO_REGIONS],
                )
            from console.demo.seed_creators import seed_demo_creators

            await seed_demo_creators(db, now)
            from console.demo.seed_posts import seed_demo_posts

            await seed_demo_posts(settings, now)
            from console.demo.seed_experiments import seed_demo as seed_demo_experiments

            await seed_demo_experiments(db)
        return inserted
    finally:
        await db.dispose()
