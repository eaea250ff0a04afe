"""The region table's fingerprint: the Regions screen skips its full read while it holds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from console.data.regions import RegionColumns, RegionTable, load_region_window
from storage.database import Database
from storage.queries import regions
from storage.queries.regions import RegionInput, regions_fingerprint
from tests.console.test_app import FROZEN, add_region


async def fingerprint(db: Database) -> tuple[int, object]:
    async with db.session() as session:
        return await regions_fingerprint(session)


async def test_every_kind_of_write_changes_the_fingerprint(db: Database) -> None:
    await add_region(db, "AUSTIN_METRO")
    await add_region(db, "BOSTON_METRO")
    first = await fingerprint(db)
    assert first[0] == 2 and await fingerprint(db) == first  # stable while nothing is written

    # An edit in a transaction that began before another edit committed: its updated_at (the
    # start of its transaction) is older than the newest one already seen, so a max() of
    # updated_at would miss it; the sum does not.
    async with db.transaction() as slow:
        await slow.execute(text("SELECT 1"))  # its transaction begins: its now() is fixed
        async with db.transaction() as quick:
            await regions.update_region(quick, "BOSTON_METRO", actor="t", cron="0 4 * * *")
        seen = await fingerprint(db)
        assert seen != first
        await regions.update_region(slow, "AUSTIN_METRO", actor="t", cron="0 5 * * *")
    assert await fingerprint(db) != seen

    before = await fingerprint(db)
    async with db.transaction() as session:
        await regions.create_region(
            session,
            RegionInput(code="CHICAGO_METRO", name="Chicago", cron="0 3 * * *"),
            actor="t",
            now=FROZEN - timedelta(days=1),
        )
    after_insert = await fingerprint(db)
    assert after_insert[0] == before[0] + 1
    async with db.transaction() as session:
        await regions.delete_region(session, "CHICAGO_METRO", actor="t")
    assert (await fingerprint(db))[0] == before[0]


async def test_the_regions_read_model_follows_edits_inserts_and_deletes(db: Database) -> None:
    for code in ("AUSTIN_METRO", "BOSTON_METRO", "DALLAS_METRO"):
        await add_region(db, code)
    table = RegionTable()

    async def load() -> RegionColumns:
        return (await load_region_window(db, FROZEN, table, lambda: None)).rows

    first = await load()
    assert [r.code for r in first] == ["AUSTIN_METRO", "BOSTON_METRO", "DALLAS_METRO"]
    assert await load() is first  # nothing written: the same list, no redraw

    async with db.transaction() as session:
        await regions.update_region(session, "BOSTON_METRO", actor="t", name="Boston edited")
    edited = await load()
    assert [r.name for r in edited][1] == "Boston edited"
    assert [r.name for r in edited] == ["Austin Metro", "Boston edited", "Dallas Metro"]
    assert [r.name for r in first][1] == "Boston Metro"  # a snapshot never changes

    async with db.transaction() as session:
        await regions.create_region(
            session,
            RegionInput(code="CHICAGO_METRO", name="Chicago", cron="0 3 * * *"),
            actor="t",
            now=FROZEN,
        )
        await regions.delete_region(session, "AUSTIN_METRO", actor="t")
    # Same count (one in, one out): the new code forces a full read, in the database's order.
    assert [r.code for r in await load()] == ["BOSTON_METRO", "CHICAGO_METRO", "DALLAS_METRO"]
