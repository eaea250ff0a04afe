"""What the judged conditions say: values in the unit they are named in, details in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.alerts.conditions import BY_NAME
from engine.alerts.evaluate import AlertStatus, State, observe
from engine.alerts.facts import Facts, Overdue
from engine.alerts.notify import Notice
from storage.queries.alerts import TickStats

# Any instant will do: the facts carry their own now and the judging reads no clock.
NOW = datetime.now(UTC).replace(microsecond=0)


def _ticks(p99_ms: float | None) -> Facts:
    return Facts(
        now=NOW, ticks=TickStats(ok=3, failed=0, lag_p99_ms=p99_ms, oldest_running_started=None)
    )


def test_tick_lag_says_milliseconds_under_a_second_and_seconds_above() -> None:
    lag = BY_NAME["TickLagHigh"]
    assert observe(lag, _ticks(42)).detail == "p99 42 ms"
    assert observe(lag, _ticks(1500)).detail == "p99 1.5 s"
    quiet = observe(lag, _ticks(None))
    assert quiet.value is None and quiet.detail == "no tick in 15 min"


def test_missed_fire_times_are_counted_in_regions_not_seconds() -> None:
    missed = BY_NAME["RegionFireTimeMissed"]
    facts = Facts(
        now=NOW,
        overdue=(
            Overdue("north", NOW - timedelta(minutes=5)),
            Overdue("south", NOW - timedelta(minutes=3)),
        ),
    )
    seen = observe(missed, facts)
    assert seen.active and seen.value == 2
    assert (missed.unit, missed.observed_unit) == ("s", "count")
    payload = Notice(
        AlertStatus(missed, State.FIRING, seen.began, seen.value, seen.detail), "firing"
    ).payload()
    assert payload["value"] == 2 and payload["value_unit"] == "count"
    assert payload["threshold"] == 120 and payload["unit"] == "s"
    assert payload["detail"].startswith("north ") and payload["detail"].endswith(" and 1 more")
