"""Demo and first-run data, inserted idempotently."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.queries import regions

SEED_REGIONS = [
    {"code": "DETROIT_METRO", "name": "Detroit Metro", "cron": "0 3 * * *", "timezone": "UTC"},
    {
        "code": "LOSANGELES_METRO",
        "name": "Los Angeles Metro",
        "cron": "0 */12 * * *",
        "timezone": "UTC",
    },
]


async def seed_regions(session: AsyncSession) -> int:
    now = datetime.now(UTC)
    return await regions.upsert_seed_regions(
        session, [{**row, "schedule_since": now} for row in SEED_REGIONS]
    )
