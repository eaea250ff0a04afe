"""The Posts and Connections screens, driven by keyboard with Pilot (real Postgres and Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from textual.pilot import Pilot
from textual.widgets import Input, SelectionList, Static, TextArea

from console.screens.connections import ConnectionsScreen
from console.screens.dialogs import ConfirmModal
from console.screens.post_modals import ComposeModal, DetailModal, ResolveModal
from console.screens.posts import PostsScreen
from engine import publish_queue, queues
from storage.database import Database
from storage.models import Connection, Post, Publication
from storage.queries import publishing
from storage.settings import Settings
from tests.console.test_app import (
    FROZEN,
    SIZE,
    make_app,
    notifications,
    type_text,
    wait_for_db,
    wait_until,
)
from tests.support.publishing import add_connection


async def open_screen(pilot: Pilot[Any], name: str, kind: type[Any]) -> Any:
    await pilot.app.open_screen(name)  # type: ignore[attr-defined]
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, kind) and pilot.app.screen.loads >= 1,
        f"{name} loaded",
    )
    return pilot.app.screen


async def make_post(db: Database, conn_ids: list[int], when: datetime | None, body: str) -> int:
    async with db.transaction() as session:
        post, _ = await publishing.create_post(
            session,
            publishing.PostInput(
                body=body, connection_ids=conn_ids, scheduled_at=when, timezone="Europe/Paris"
            ),
            actor="t",
            now=FROZEN,  # the console's clock in these tests
        )
    return post.id


def paris(moment: datetime) -> str:
    """How a person in Paris types `moment`."""
    return f"{moment.astimezone(ZoneInfo('Europe/Paris')):%Y-%m-%d %H:%M}"


async def test_compose_and_schedule_a_post_from_the_keyboard(
    test_settings: Settings, db: Database
) -> None:
    conn = await add_connection(db, "alice")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "posts", PostsScreen)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ComposeModal), "compose modal")
        modal = app.screen
        await type_text(pilot, "Big news")
        await pilot.press("enter")
        await type_text(pilot, "second line")
        assert modal.query_one("#body", TextArea).text == "Big news\nsecond line"
        preview = modal.query_one("#preview", Static)
        assert "pick at least one account" in str(preview.render())
        await pilot.press("tab")  # to the accounts
        await pilot.press("space")
        assert list(modal.query_one("#accounts", SelectionList).selected) == [conn.id]
        await pilot.press("tab", "tab")  # media, then when
        # Tomorrow 09:30 in Paris by the console's clock, whatever the real date is.
        when = (FROZEN + timedelta(days=1)).astimezone(ZoneInfo("Europe/Paris"))
        when = when.replace(hour=9, minute=30).astimezone(UTC)
        await type_text(pilot, paris(when))
        await pilot.press("tab", "ctrl+a", "ctrl+k")
        tz = modal.query_one("#tz", Input)
        tz.value = ""
        await type_text(pilot, "Europe/Paris")
        assert f"{when:%H:%M} UTC" in str(preview.render())
        await pilot.press("ctrl+s")

        async def saved() -> bool:
            async with db.session() as session:
                post = await session.scalar(select(Post))
            return post is not None and post.status == "scheduled"

        await wait_for_db(pilot, saved, "the post saved and scheduled")
    async with db.session() as session:
        post = await session.scalar(select(Post))
        assert post is not None
        assert post.scheduled_at == when
        assert post.timezone == "Europe/Paris" and post.body == "Big news\nsecond line"
    redis = await queues.connect(test_settings)
    try:
        jobs = await publish_queue.queued_jobs(redis, test_settings)
    finally:
        await redis.aclose()
    assert len(jobs) == 1


async def test_compose_refuses_a_time_in_the_past(test_settings: Settings, db: Database) -> None:
    await add_connection(db, "alice")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "posts", PostsScreen)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ComposeModal), "compose modal")
        modal = app.screen
        modal.query_one("#body", TextArea).text = "late"
        modal.query_one("#accounts", SelectionList).select_all()
        modal.query_one("#when", Input).value = f"{FROZEN - timedelta(days=1):%Y-%m-%d %H:%M}"
        await pilot.pause()
        assert "in the past" in str(modal.query_one("#preview", Static).render())
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ComposeModal)  # still open, nothing saved
    async with db.session() as session:
        assert await session.scalar(select(Post)) is None


async def test_cancel_resolve_detail_and_week_view(test_settings: Settings, db: Database) -> None:
    a = await add_connection(db, "alice")
    b = await add_connection(db, "bob", "tok-bob")
    future = FROZEN + timedelta(days=2)
    keep = await make_post(db, [a.id], future, "to cancel")
    unsure = await make_post(db, [a.id, b.id], future, "unsure one")
    async with db.session() as session:
        await session.execute(
            update(Publication)
            .where(Publication.post_id == unsure, Publication.connection_id == a.id)
            .values(status="unknown", outcome_unknown=True, last_error="ReadTimeout: no answer")
        )
        await session.commit()
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "posts", PostsScreen)
        ids = [p.id for p in screen.shown]
        assert set(ids) == {keep, unsure}
        # Resolve the unknown one: it is not there, send it again.
        screen.table.move_cursor(row=ids.index(unsure))
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, ResolveModal), "resolve modal")
        await pilot.press("n")

        async def resent() -> bool:
            async with db.session() as session:
                status = await session.scalar(
                    select(Publication.status).where(
                        Publication.post_id == unsure, Publication.connection_id == a.id
                    )
                )
            return status == "scheduled"

        await wait_for_db(pilot, resent, "the unknown publication rescheduled")
        # Detail: every publication of the post.
        await wait_until(pilot, lambda: screen.selected() is not None, "a selection")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailModal), "detail modal")
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "@alice" in text and "@bob" in text
        await pilot.press("escape")
        # Cancel the other, with confirmation.
        await wait_until(pilot, lambda: isinstance(app.screen, PostsScreen), "back on posts")
        ids = [p.id for p in screen.shown]
        screen.table.move_cursor(row=ids.index(keep))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("y")

        async def cancelled() -> bool:
            async with db.session() as session:
                post = await session.get(Post, keep)
            return post is not None and post.status == "cancelled"

        await wait_for_db(pilot, cancelled, "post cancelled")
        # Week view of the week holding the posts.
        screen.week_of = future
        await pilot.press("w")
        await wait_until(pilot, lambda: screen.calendar and screen.table.row_count >= 1, "week")
        assert len(screen.table.columns) == 7
        assert any("post(s)" in m or "cancelled" in m for m in notifications(app))


async def test_connections_screen_shows_reauth_and_expiry(
    test_settings: Settings, db: Database
) -> None:
    # Token expiry relative to the console's clock: one in a month, one since yesterday.
    ok = await add_connection(db, "alice", expires_at=FROZEN + timedelta(days=30))
    bad = await add_connection(db, "bob", "tok-bob", expires_at=FROZEN - timedelta(days=1))
    async with db.transaction() as session:
        await publishing.mark_needs_reauth(session, bad.id, "HTTP 401 token revoked")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "connections", ConnectionsScreen)
        rows = {r.id: r for r in screen.rows}
        assert rows[ok.id].status == "ok" and rows[bad.id].status == "needs_reauth"
        assert rows[ok.id].breaker == "closed"
        status = str(screen.query_one("#status-line", Static).render())
        assert "1 needs re-authorisation" in status  # one: singular
        assert str(screen.table.get_row_at(1)[4]) == "expired"
        async with db.session() as session:
            assert (await session.get(Connection, ok.id)) is not None


async def test_every_post_is_reachable_and_the_list_filter_runs_in_the_query(
    test_settings: Settings, db: Database
) -> None:
    # More posts than the old list's cap of 500; the list reads a window around the screen.
    count = 600
    async with db.session() as session:
        await session.execute(
            insert(Post),
            [
                {
                    "body": f"post number {n}",
                    "scheduled_at": FROZEN + timedelta(minutes=count - n),  # newest first: 0
                    "timezone": "UTC",
                    "status": "scheduled",
                }
                for n in range(count)
            ],
        )
        await session.commit()
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "posts", PostsScreen)
        table = screen.list_table
        await wait_until(pilot, lambda: table.row_count == count, "every post")
        assert str(table.get_row_at(0)[-1]) == "post number 0"
        assert table.rows[count - 1] is None  # far off screen: not read
        await pilot.press("end")
        await wait_until(pilot, lambda: screen.selected() is not None, "the last posts")
        assert screen.selected().body == f"post number {count - 1}"
        await pilot.press("slash")
        await type_text(pilot, "number 59")  # 59 and 590-599
        await wait_until(pilot, lambda: table.row_count == 11, "the filter")
        assert str(table.get_row_at(0)[-1]) == "post number 59"
        assert "11 posts" in str(screen.query_one("#status-line", Static).render())
