"""Two operators, one post / one experiment, in the console: a save made against what the screen
showed is refused when someone else changed it meanwhile, the refusal names their change, the
screen shows it, and the same edit made again against what is now on screen goes through."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import Input

from console.screens.dialogs import ConfirmModal
from console.screens.experiment_modals import WeightsModal
from console.screens.experiments import ExperimentsScreen
from console.screens.post_modals import ScheduleModal
from console.screens.posts import PostsScreen
from storage.database import Database
from storage.models import ExperimentStatus, Post
from storage.queries import experiments as q
from storage.queries import publishing
from storage.settings import Settings
from tests.console.screens.test_posts import make_post, open_screen, paris
from tests.console.test_app import (
    FROZEN,
    loaded,
    make_app,
    notifications,
    type_text,
    wait_for_db,
    wait_until,
)
from tests.support.experiments import make_experiment
from tests.support.publishing import add_connection

SIZE = (100, 30)


def refusal(app: object, needle: str) -> str | None:
    return next((n for n in notifications(app) if needle in n), None)  # type: ignore[arg-type]


async def test_a_stale_reschedule_and_cancel_are_refused_on_the_posts_screen(
    test_settings: Settings, db: Database
) -> None:
    conn = await add_connection(db, "alice")
    first = FROZEN + timedelta(days=1)
    post_id = await make_post(db, [conn.id], first, "launch day")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "posts", PostsScreen)
        shown = screen.selected()
        assert shown is not None and shown.id == post_id
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ScheduleModal), "schedule modal")
        # Meanwhile, another operator moves the post a day later.
        moved = first + timedelta(days=1)
        async with db.transaction() as session:
            await publishing.schedule_post(
                session, post_id, moved, "Europe/Paris", "ALICE", FROZEN, version=shown.version
            )
        app.screen.query_one("#when", Input).value = ""
        await type_text(pilot, paris(first + timedelta(hours=3)))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: refusal(app, "changed by ALICE") is not None, "refusal")
        text = refusal(app, "changed by ALICE")
        assert text is not None and text.startswith(f"not scheduled: post {post_id} changed by")
        local = moved.astimezone(publishing.zone("Europe/Paris"))
        assert text.endswith(f"now scheduled for {local:%a %m-%d %H:%M} Europe/Paris")
        async with db.session() as session:
            post = await session.get(Post, post_id)
            assert post is not None and post.scheduled_at == moved  # not overwritten
        await wait_until(
            pilot,
            lambda: (row := screen.selected()) is not None and row.version == shown.version + 1,
            "the other operator's change on screen",
        )
        # A cancel made against a version before another change is refused too...
        async with db.transaction() as session:
            await publishing.schedule_post(session, post_id, first, "UTC", "BOB", FROZEN)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: refusal(app, "changed by BOB") is not None, "refusal")
        assert (refusal(app, "changed by BOB") or "").startswith("not cancelled: ")
        # ...and goes through once made against what the screen shows now.
        await wait_until(
            pilot,
            lambda: (row := screen.selected()) is not None and row.version == shown.version + 2,
            "BOB's change on screen",
        )
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("y")

        async def cancelled() -> bool:
            async with db.session() as session:
                post = await session.get(Post, post_id)
            return post is not None and post.status == "cancelled"

        await wait_for_db(pilot, cancelled, "cancelled against the current version")


async def test_a_stale_weights_edit_is_refused_on_the_experiments_screen(
    test_settings: Settings, db: Database
) -> None:
    await make_experiment(db, "hero")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_screen("experiments")
        screen: ExperimentsScreen = await loaded(pilot, ExperimentsScreen)
        version = screen.rows[0].version
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WeightsModal), "weights modal")
        async with db.transaction() as session:  # another operator, meanwhile
            await q.set_weights(
                session, "hero", {"control": 0.9, "v1": 0.1}, actor="ALICE", version=version
            )
        await pilot.press("ctrl+a", "ctrl+k")
        await type_text(pilot, "0.7 0.3")
        await pilot.press("enter")
        await wait_until(pilot, lambda: refusal(app, "changed by ALICE") is not None, "refusal")
        text = refusal(app, "changed by ALICE") or ""
        assert text.startswith("weights not saved: hero changed by ALICE at ")
        assert text.endswith("now running, weights control=0.9 v1=0.1")
        await wait_until(
            pilot,
            lambda: screen.rows[0].variants == (("control", 0.9), ("v1", 0.1)),
            "the other operator's weights on screen",
        )
        # Stop, made against the version on screen now: goes through.
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("y")

        async def stopped() -> bool:
            async with db.session() as session:
                found = await q.get_experiment(session, "hero")
            return found is not None and found.status == ExperimentStatus.STOPPED

        await wait_for_db(pilot, stopped, "stopped against the current version")
