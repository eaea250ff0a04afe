"""The post detail shows the latest metrics and a sparkline per metric (Pilot, real Postgres)."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import Static

from console.data.creators import SPARK
from console.screens.post_list import compact, post_cells
from console.screens.post_modals import DetailModal
from console.screens.posts import PostsScreen
from storage.database import Database
from storage.models import PostMetric
from storage.settings import Settings
from tests.console.screens.test_posts import open_screen
from tests.console.test_app import FROZEN, SIZE, make_app, wait_until
from tests.support.post_metrics import seed_published
from tests.support.publishing import add_connection


async def test_detail_shows_latest_metrics_and_a_chart(
    test_settings: Settings, db: Database
) -> None:
    conn = await add_connection(db, "alice")
    published = FROZEN - timedelta(days=2)
    [pub_id] = await seed_published(db, conn, ["ext1"], published)
    async with db.transaction() as session:
        for step, views in ((3600, 120), (21_600, 900), (86_400, 4321)):
            session.add(
                PostMetric(
                    publication_id=pub_id,
                    step_s=step,
                    fetched_at=published + timedelta(seconds=step),
                    views=views,
                    likes=views // 10,
                    comments=views // 100,
                    shares=None,  # not reported by this platform
                )
            )
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "posts", PostsScreen)
        # The list's Views column: the latest read.
        assert [p.views for p in screen.shown] == [4321]
        assert post_cells(screen.shown[0])[3] == "4321"
        await wait_until(pilot, lambda: screen.selected() is not None, "a selection")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailModal), "detail modal")
        text = str(app.screen.query_one("#detail-text", Static).render())
    assert "metrics @1d: views 4,321  likes 432  comments 43" in text
    assert "shares" not in text
    views_line = next(line for line in text.splitlines() if line.strip().startswith("views "))
    assert f"{SPARK[0]}" in views_line and SPARK[7] in views_line
    assert "120 → 4,321" in views_line


def test_views_fit_their_column() -> None:
    assert [compact(n) for n in (None, 0, 9999, 12_345, 99_999, 123_456, 4_500_000)] == [
        "?",  # not read yet: unknown, never 0
        "0",
        "9999",
        "12.3k",
        "99k",
        "123k",
        "4.5M",
    ]
