"""Overdue fire times: regions are read grouped by schedule and latest fire, then expanded."""

from __future__ import annotations

from datetime import timedelta

from engine.alerts.facts import Overdue, overdue_regions
from storage.database import Database
from storage.queries.alerts import region_fires
from tests.console.test_app import FROZEN, add_region, add_run


async def test_regions_sharing_a_schedule_and_a_last_fire_come_back_as_one_row(
    db: Database,
) -> None:
    # Three hourly regions ticked at the same fire time, one ticked an hour later, one on
    # another schedule, one paused: three groups, the paused region in none.
    for code in ("C_METRO", "A_METRO", "B_METRO", "D_METRO"):
        await add_region(db, code, "0 * * * *")
    await add_region(db, "E_METRO", "30 * * * *")
    await add_region(db, "F_METRO", "0 * * * *", active=False)
    last = FROZEN.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    for code in ("A_METRO", "B_METRO", "C_METRO"):
        await add_run(db, code, int((FROZEN - last).total_seconds() // 60), "ok")
    await add_run(db, "D_METRO", int((FROZEN - last).total_seconds() // 60) - 60, "ok")

    async with db.session() as session:
        groups = await region_fires(session)
    assert [group.codes for group in groups] == ["A_METRO\nB_METRO\nC_METRO", "D_METRO", "E_METRO"]
    assert groups[0].after == groups[1].after - timedelta(hours=1)

    overdue = overdue_regions(groups, FROZEN, timedelta(minutes=5))
    first = last + timedelta(hours=1)  # the first fire time after the last ledger row
    assert overdue[:4] == (
        Overdue("A_METRO", first),
        Overdue("B_METRO", first),
        Overdue("C_METRO", first),
        Overdue("D_METRO", first + timedelta(hours=1)),
    )
