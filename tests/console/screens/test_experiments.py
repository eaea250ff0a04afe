"""The Experiments screen driven with Textual's Pilot: list, detail, and audited edits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select
from textual.widgets import DataTable

from console.data.experiments import parse_weights
from console.screens.experiments import (
    ExperimentDetail,
    ExperimentsScreen,
    VariantModal,
    WeightsModal,
)
from engine.experiments.rollups import run_rollups, window_for
from storage.database import Database
from storage.models import AuditEntry, Experiment, ExperimentStatus
from storage.queries import experiments as q
from storage.settings import Settings
from tests.conftest import engine_env
from tests.console.test_app import loaded, make_app, type_text, wait_for_db, wait_until
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]
SIZE = (100, 30)


async def _status(db: Database, key: str) -> str | None:
    async with db.session() as session:
        found = await q.get_experiment(session, key)
        return found.status if found else None


async def test_list_detail_and_edits(
    test_settings: Settings, db: Database, client: httpx.AsyncClient
) -> None:
    await make_experiment(db, "hero", funnels=[{"name": "buy", "steps": ["open", "purchase"]}])
    await make_experiment(db, "sketch", status=ExperimentStatus.DRAFT)
    events = []
    for i in range(30):
        await client.post("/v1/assignment", json={"unit_id": f"c{i}"})
        events.append(event(f"c{i}", "open"))
        if i % 3 == 0:
            events.append(event(f"c{i}", "purchase"))
    await client.post("/v1/events", json={"events": events})
    await run_rollups(db, window_for(14))

    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_screen("experiments")
        screen: ExperimentsScreen = await loaded(pilot, ExperimentsScreen)
        table = screen.query_one("#experiments", DataTable)
        assert table.row_count == 2
        hero = screen.rows[0]
        assert hero.key == "hero" and hero.traffic == 30
        assert hero.computed is not None and not hero.srm_flagged
        assert hero.funnels[0].steps == ("open", "purchase")

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ExperimentDetail), "detail")
        detail = app.screen.query_one("#variants", DataTable)
        assert detail.row_count == 2
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to the list")

        await pilot.press("p")  # pause the running one
        await wait_for_db(pilot, lambda: _is(db, "hero", "paused"), "hero paused")

        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WeightsModal), "weights modal")
        await pilot.press("ctrl+a", "ctrl+k")  # the field starts with the current weights
        await type_text(pilot, "control=0.7 v1=0.2")
        await pilot.press("enter")  # refused: sums to 0.9, the modal stays
        assert isinstance(app.screen, WeightsModal)
        await pilot.press("ctrl+a", "ctrl+k")
        await type_text(pilot, "0.7 0.3")
        await pilot.press("enter")
        await wait_for_db(pilot, lambda: _weights(db, "hero", [0.7, 0.3]), "new weights")

        await pilot.press("down", "a")  # add a variant to the draft
        await wait_until(pilot, lambda: isinstance(app.screen, VariantModal), "variant modal")
        await type_text(pilot, "v2")
        await pilot.press("enter")
        await wait_for_db(
            pilot, lambda: _weights(db, "sketch", [1 / 3] * 3), "a third variant, equal split"
        )
        await pilot.press("s")  # start the draft
        await wait_for_db(pilot, lambda: _is(db, "sketch", "running"), "sketch running")

    async with db.session() as session:
        actions = [
            (a.entity_id, a.action)
            for a in await session.scalars(
                select(AuditEntry).where(AuditEntry.actor != "test").order_by(AuditEntry.id)
            )
        ]
    assert actions == [
        ("hero", "status:paused"),
        ("hero", "weights"),
        ("sketch", "add_variant"),
        ("sketch", "status:running"),
    ]


async def _is(db: Database, key: str, status: str) -> bool:
    return await _status(db, key) == status


async def _weights(db: Database, key: str, expected: list[float]) -> bool:
    async with db.session() as session:
        found: Experiment | None = await q.get_experiment(session, key)
        if found is None:
            return False
        got = [v.weight for v in found.variants]
    return len(got) == len(expected) and all(
        abs(a - b) < 1e-9 for a, b in zip(got, expected, strict=True)
    )


def test_parse_weights() -> None:
    keys = ["control", "v1"]
    assert parse_weights("control=0.25 v1=0.75", keys) == {"control": 0.25, "v1": 0.75}
    assert parse_weights("0.5, 0.5", keys) == {"control": 0.5, "v1": 0.5}
    for bad, fragment in (
        ("0.5 0.6", "sum to 1"),
        ("x=1", "no variant"),
        ("0.5", "give 2"),
        ("a b", "not a number"),
        ("control=1", "missing"),
    ):
        try:
            parse_weights(bad, keys)
        except q.ExperimentError as exc:
            assert fragment in str(exc), (bad, exc)
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_cli_creates_a_draft_from_a_file(test_settings: Settings, tmp_path: Path) -> None:
    definition = {
        "key": "from-file",
        "name": "From a file",
        "primary_metric": "purchase",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "funnels": [{"name": "buy", "steps": ["open", "purchase"]}],
    }
    good = tmp_path / "good.json"
    good.write_text(json.dumps(definition))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                **definition,
                "key": "other",
                "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.6}],
            }
        )
    )
    root = Path(__file__).resolve().parents[3]

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console.cli", "experiments", "create", str(path)],
            env=engine_env(test_settings),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = run(good)
    assert created.returncode == 0, created.stderr
    refused = run(bad)
    assert refused.returncode != 0
    assert "sum to 1" in refused.stderr
    again = run(good)
    assert again.returncode != 0 and "already exists" in again.stderr
