"""Every screen, modal and filter bar at 80x24 (SSH, as a new user) and 120x40, with fixed data
and a frozen clock: snapshots, plus what must show at any size: `q quit` in the footer and the
clock (and READ-ONLY) in the header. The work screens' modals (posts, experiments, connections,
alerts) open on `_seed_work`'s fixed posts, accounts and experiments.

Update after a deliberate change of the look:
    pytest tests/console/test_layouts.py --snapshot-update
and review the SVGs (pytest writes snapshot_report.html on a mismatch).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from console.app import CreatordeckApp
from console.widgets.deck_footer import DeckFooter
from console.widgets.status_header import StatusHeader
from storage.database import Database
from storage.models import ExperimentStatus, Publication
from storage.queries import publishing
from storage.settings import Settings
from tests.console.screens.test_overview import seeded_landing
from tests.console.screens.test_snapshots import _seed, _until, laid_out, settled
from tests.console.test_app import FROZEN, frozen_clock
from tests.support.experiments import make_experiment
from tests.support.publishing import add_connection

SIZES = [(80, 24), (120, 40)]
SCREENS = [
    "regions",
    "runs",
    "timeline",
    "creators",
    "deadletters",
    "queues",
    "posts",
    "connections",
    "experiments",
    "alerts",
    "audit",
]


def app_for(settings: Settings, read_only: bool = False) -> CreatordeckApp:
    asyncio.run(_seed(settings))
    return CreatordeckApp(settings, clock=frozen_clock, landing="regions", read_only=read_only)


def footer_actions(pilot: Pilot[Any]) -> list[str]:
    return [key.action for key in pilot.app.screen.query_one(DeckFooter).query(FooterKey)]


async def assert_essentials(pilot: Pilot[Any]) -> None:
    """`q quit` is in the footer and the clock at the header's right end, whatever the width.

    Waited for, then asserted: the footer recomposes (all its keys removed, then mounted
    again) when the screen's bindings change, say as its table takes the focus on first data;
    a look in that moment sees no keys at all. A footer that never shows `quit` still fails."""
    await _until(
        pilot,
        lambda: "quit" in footer_actions(pilot),
        "q quit in the footer",
        state=lambda: f"footer keys {footer_actions(pilot)}",
    )
    await laid_out(pilot)  # the keys mounted again are fitted to the width
    screen = pilot.app.screen
    header = screen.query_one(StatusHeader).render().plain
    assert header.rstrip().endswith("UTC"), header
    if pilot.app.read_only:  # type: ignore[attr-defined]
        assert "READ-ONLY" in header, header


def on_screen(name: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.app.open_screen(name)  # type: ignore[attr-defined]
        await settled(pilot)
        await assert_essentials(pilot)  # waits for the footer to be laid out

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", SCREENS)
def test_screen(snap_compare: Any, test_settings: Settings, name: str, size: Any) -> None:
    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=on_screen(name))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_read_only_header_keeps_the_clock(
    snap_compare: Any, test_settings: Settings, size: Any
) -> None:
    app = app_for(test_settings, read_only=True)
    assert snap_compare(app, terminal_size=size, run_before=on_screen("queues"))


def test_overview_120x40(
    snap_compare: Any, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = seeded_landing(test_settings, monkeypatch)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled)


def test_overview_80x24(
    snap_compare: Any, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = seeded_landing(test_settings, monkeypatch)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_posts_week(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def week(pilot: Pilot[Any]) -> None:
        await on_screen("posts")(pilot)
        await pilot.press("w")
        await pilot.pause(0.2)
        await settled(pilot)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=week)


MODALS = {  # what opens it from Regions, and a widget id it shows
    "command": ((":",), "#command"),
    "help": (("question_mark",), "#help-dialog"),
    "edit_cron": (("down", "e"), "#cron"),
    "new_region": (("n",), "#code"),
    "confirm_delete": (("down", "d"), "#question"),
    "backfill": (("down", "b"), "#backfill-dialog"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("modal", list(MODALS))
def test_modal(snap_compare: Any, test_settings: Settings, modal: str, size: Any) -> None:
    keys, shows = MODALS[modal]

    async def open_modal(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press(*keys)
        await _until(pilot, lambda: bool(pilot.app.screen.query(shows)), modal)
        await pilot.pause(0.1)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=open_modal)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_timeline_offset_modal(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def open_modal(pilot: Pilot[Any]) -> None:
        await on_screen("timeline")(pilot)
        await pilot.press("o")
        await _until(pilot, lambda: bool(pilot.app.screen.query("#offset-dialog")), "offset")
        await pilot.pause(0.1)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=open_modal)


async def _seed_work(settings: Settings) -> None:
    """Fixed regions and runs, plus an account, a scheduled post, one with an outcome-unknown
    publication, a running and a draft experiment: what the work screens' modals open on."""
    await _seed(settings)
    db = Database(settings)
    try:
        conn = await add_connection(db, "alice")
        posts: list[int] = []
        for body in ("Launch day: the new studio opens at 9", "Behind the scenes, part 2"):
            async with db.transaction() as session:
                post, _ = await publishing.create_post(
                    session,
                    publishing.PostInput(
                        body=body,
                        connection_ids=[conn.id],
                        scheduled_at=FROZEN + timedelta(days=1, hours=len(posts)),
                        timezone="Europe/Paris",
                    ),
                    actor="ops",
                    now=FROZEN,
                )
                posts.append(post.id)
        async with db.transaction() as session:
            await session.execute(
                update(Publication)
                .where(Publication.post_id == posts[1])
                .values(status="unknown", outcome_unknown=True, last_error="ReadTimeout: no answer")
            )
            await publishing.refresh_post_status(session, posts[1])
        await make_experiment(db, "onboarding_copy", weights=(0.5, 0.5))
        await make_experiment(db, "paywall_price", status=ExperimentStatus.DRAFT)
        async with db.transaction() as session:  # audit times by the frozen clock, not the real one
            await session.execute(
                text(
                    "UPDATE audit_log "
                    "SET at = CAST(:start AS timestamptz) + id * interval '1 minute'"
                ),
                {"start": FROZEN - timedelta(hours=1)},
            )
    finally:
        await db.dispose()


def work_app(settings: Settings) -> CreatordeckApp:
    asyncio.run(_seed_work(settings))
    return CreatordeckApp(settings, clock=frozen_clock, landing="regions")


# Modals and bars opened from a screen: (screen, keys that open it, what is then on top or
# focused: a modal's class, or FilterBar).
WORK_MODALS = {
    "post_compose": ("posts", ("n",), "ComposeModal"),
    "post_schedule": ("posts", ("s",), "ScheduleModal"),
    "post_cancel": ("posts", ("c",), "ConfirmModal"),
    "post_resolve": ("posts", ("u",), "ResolveModal"),
    "post_detail": ("posts", ("enter",), "DetailModal"),
    "post_filter": ("posts", ("slash",), "FilterBar"),
    "post_help": ("posts", ("question_mark",), "HelpModal"),
    "post_week_help": ("posts", ("w", "question_mark"), "HelpModal"),
    "regions_filter": ("regions", ("slash",), "FilterBar"),
    "experiment_weights": ("experiments", ("w",), "WeightsModal"),
    "experiment_variant": ("experiments", ("down", "a"), "VariantModal"),
    "experiment_stop": ("experiments", ("x",), "ConfirmModal"),
    "experiment_detail": ("experiments", ("enter",), "ExperimentDetail"),
    "connect": ("connections", ("c",), "ConnectModal"),
    "silence": ("alerts", ("s",), "SilenceModal"),
    "creators_filter": ("creators", ("slash",), "FilterBar"),
    "audit_filter": ("audit", ("slash",), "FilterBar"),
}


def _on_top(pilot: Pilot[Any], name: str) -> bool:
    app = pilot.app
    if name == "FilterBar":
        return type(app.focused).__name__ == name
    return type(app.screen).__name__ == name


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("modal", list(WORK_MODALS))
def test_work_modal(snap_compare: Any, test_settings: Settings, modal: str, size: Any) -> None:
    screen, keys, shows = WORK_MODALS[modal]

    async def open_modal(pilot: Pilot[Any]) -> None:
        await on_screen(screen)(pilot)
        await pilot.press(*keys)
        await _until(pilot, lambda: _on_top(pilot, shows), modal)
        await pilot.pause(0.2)

    assert snap_compare(work_app(test_settings), terminal_size=size, run_before=open_modal)
