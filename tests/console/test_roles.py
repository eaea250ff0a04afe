"""The console with operators: the header says who you are and your role, and an edit your
role does not allow is refused by storage with its reason (through run_edit), writing nothing."""

from __future__ import annotations

from sqlalchemy import select

from storage.database import Database
from storage.models import AuditEntry
from storage.queries import audit, operators
from storage.settings import Settings
from tests.console.test_app import (
    SIZE,
    add_region,
    get_region,
    loaded,
    make_app,
    notifications,
    wait_until,
)


async def test_a_viewer_sees_their_role_and_is_refused_by_storage(
    test_settings: Settings, db: Database
) -> None:
    me = audit.current_actor()  # the OS user running the tests
    async with db.transaction() as session:
        await operators.add_operator(session, "test", "ada", "admin")
        await operators.add_operator(session, "test", "vic", "viewer", os_user=me)
    await add_region(db, "DETROIT_METRO")
    before = len(await db_audit(db))
    app = make_app(test_settings)  # not --read-only: the screens would let the edit through
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_until(pilot, lambda: app.sub_title.endswith("· vic (viewer)"), "the header")
        await pilot.press("space")
        await wait_until(
            pilot,
            lambda: any("vic is viewer: cannot edit regions" in m for m in notifications(app)),
            "the refusal",
        )
    region = await get_region(db, "DETROIT_METRO")
    assert region is not None and region.active
    assert len(await db_audit(db)) == before


async def db_audit(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(AuditEntry.actor)))
