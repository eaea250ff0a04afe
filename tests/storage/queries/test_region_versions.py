"""Two operators, one region: an edit carries the version it was made against, and a stale one
is refused with who changed the region, when, and what it is now (never last-writer-wins)."""

from __future__ import annotations

import asyncio

import pytest

from storage.database import Database
from storage.queries.regions import (
    RegionChanged,
    RegionError,
    delete_region,
    get_region,
    update_region,
)
from tests.console.test_app import FROZEN, add_region, audit_rows


async def version_of(db: Database, code: str) -> int:
    async with db.session() as session:
        region = await get_region(session, code)
        assert region is not None
        return region.version


async def test_every_write_bumps_the_version_and_a_no_op_does_not(db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    assert await version_of(db, "DETROIT_METRO") == 1
    async with db.transaction() as session:
        await update_region(session, "DETROIT_METRO", actor="alice", version=1, active=False)
    assert await version_of(db, "DETROIT_METRO") == 2
    async with db.transaction() as session:  # the same value again: nothing written
        await update_region(session, "DETROIT_METRO", actor="alice", version=2, active=False)
    assert await version_of(db, "DETROIT_METRO") == 2
    async with db.transaction() as session:  # no version given: no check (scripts, CLI)
        await update_region(session, "DETROIT_METRO", actor="cli", active=True, now=FROZEN)
    assert await version_of(db, "DETROIT_METRO") == 3


async def test_two_edits_racing_from_the_same_version_one_wins_one_is_refused(
    db: Database,
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    first_wrote = asyncio.Event()
    release_first = asyncio.Event()

    async def alice() -> None:
        async with db.transaction() as session:
            await update_region(
                session, "DETROIT_METRO", actor="ALICE", version=1, cron="0 4 * * *", now=FROZEN
            )
            first_wrote.set()
            await release_first.wait()  # holds the row lock while bob tries

    async def bob() -> None:
        await first_wrote.wait()
        async with db.transaction() as session:
            await update_region(
                session, "DETROIT_METRO", actor="BOB", version=1, cron="0 5 * * *", now=FROZEN
            )

    alice_task = asyncio.create_task(alice())
    bob_task = asyncio.create_task(bob())
    await first_wrote.wait()
    await asyncio.sleep(0.2)  # bob queues on the row lock (or arrives after: same outcome)
    release_first.set()
    await alice_task
    with pytest.raises(RegionChanged) as refused:
        await bob_task
    message = str(refused.value)
    assert "changed by ALICE at " in message and "now `0 4 * * *`" in message
    assert "version 1 → 2" in message
    async with db.session() as session:
        region = await get_region(session, "DETROIT_METRO")
    assert region is not None and region.cron == "0 4 * * *" and region.version == 2
    assert [(r.actor, r.after and r.after["cron"]) for r in await audit_rows(db)] == [
        ("ALICE", "0 4 * * *")
    ]  # bob's refused edit wrote nothing, not even an audit row


async def test_a_stale_delete_is_refused_and_a_deleted_region_says_so(db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    async with db.transaction() as session:
        await update_region(session, "DETROIT_METRO", actor="ALICE", version=1, active=False)
    with pytest.raises(RegionChanged, match="changed by ALICE"):
        async with db.transaction() as session:
            await delete_region(session, "DETROIT_METRO", actor="BOB", version=1)
    async with db.transaction() as session:
        await delete_region(session, "DETROIT_METRO", actor="ALICE", version=2)
    with pytest.raises(RegionChanged, match="was deleted by ALICE"):
        async with db.transaction() as session:
            await update_region(session, "DETROIT_METRO", actor="BOB", version=2, active=True)
    with pytest.raises(RegionError, match="does not exist"):  # no version: a plain refusal
        async with db.transaction() as session:
            await update_region(session, "DETROIT_METRO", actor="BOB", active=True)
