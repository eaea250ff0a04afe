"""The Regions table's columns: rows made on demand, lookups, the filter, unknown last runs."""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

from console.data.common import NextRunCache
from console.data.region_columns import RegionColumns, RegionSelection, select
from storage.queries.runs import LastRun
from tests.console.test_app import FROZEN

REGIONS = [  # (code, name, cron, timezone, active, version), in code order
    ("AUSTIN_METRO", "Austin", "0 3 * * *", "UTC", True, 1),
    ("BOSTON_METRO", "Boston İstanbul", "*/5 * * * *", "America/Detroit", False, 3),
    ("DALLAS_METRO", "Dallas", "0 3 * * *", "UTC", True, 2),
    ("ERIE_METRO", "Erie", "nonsense", "UTC", True, 1),
]


def packed(numbers: list[int]) -> bytes:
    return b"".join(n.to_bytes(4, "big", signed=True) for n in numbers)


def record(regions: list[tuple[Any, ...]]) -> dict[str, Any]:
    """What storage.queries.regions.region_columns returns for these regions."""
    pairs = sorted({(r[2], r[3]) for r in regions})
    if not regions:
        return {"count": 0} | dict.fromkeys(
            ("crons", "timezones", "codes", "code_ends", "names", "name_ends", "active",
             "versions", "schedule_ids")
        )  # fmt: skip
    codes = "\n".join(r[0] for r in regions)
    names = "".join(r[1] for r in regions)
    return {
        "count": len(regions),
        "crons": [cron for cron, _ in pairs],
        "timezones": [tz for _, tz in pairs],
        "codes": codes,
        "code_ends": packed([codes.index(r[0]) + len(r[0]) for r in regions]),
        "names": names,
        "name_ends": packed([names.index(r[1]) + len(r[1]) for r in regions]),
        "active": bytes(r[4] for r in regions),
        "versions": packed([r[5] for r in regions]),
        "schedule_ids": packed([pairs.index((r[2], r[3])) for r in regions]),
    }


def columns(regions: list[tuple[Any, ...]] = REGIONS) -> RegionColumns:
    return RegionColumns.from_record(record(regions), FROZEN, NextRunCache())


def test_rows_are_made_on_demand_with_every_field() -> None:
    table = columns()
    assert len(table) == 4 and len(table[1:3]) == 2
    boston = table[1]
    assert (boston.code, boston.name, boston.cron, boston.timezone) == REGIONS[1][:4]
    assert not boston.active and boston.version == 3 and boston.invalid is None
    assert table[0].next_runs[0] == FROZEN.replace(hour=3, minute=0, second=0) + timedelta(
        days=1 if FROZEN.hour >= 3 else 0
    )
    assert table[3].invalid and table[3].next_runs == ()
    assert table[-1].code == "ERIE_METRO"
    assert [row.code for row in table] == [r[0] for r in REGIONS]
    assert (table.active_count, table.invalid_count) == (3, 1)
    # Nothing per region: flat objects whose contents the garbage collector never walks.
    parts = (table.codes, table.names, table.active, table.code_ends, table.schedule_ids)
    assert all(len(gc.get_referents(part)) <= 1 for part in parts)  # (its type at most)


def test_index_of_finds_whole_codes_only() -> None:
    table = columns()
    assert table.index_of("DALLAS_METRO") == 2 and table.index_of("AUSTIN_METRO") == 0
    assert table.index_of("ERIE_METRO") == 3
    for absent in ("DALLAS", "METRO", "", "AUSTIN_METRO\nBOSTON_METRO", 7):
        assert table.index_of(absent) is None


def test_the_filter_matches_each_field_never_across_two_regions() -> None:
    table = columns()
    assert list(table.matching("boston")) == [1]
    assert list(table.matching("METRO")) == [0, 1, 2, 3]
    assert list(table.matching("detroit")) == [1]  # the timezone
    assert list(table.matching("0 3 *")) == [0, 2]  # the cron
    assert list(table.matching("austinboston")) == []  # names are back to back: no straddling
    assert list(table.matching("nbos")) == []
    assert list(table.matching("i̇stanbul")) == [1]  # İ lowers to two characters
    chosen = select(table, "a")
    assert isinstance(chosen, RegionSelection)
    assert [row.code for row in chosen] == ["AUSTIN_METRO", "BOSTON_METRO", "DALLAS_METRO"]
    assert chosen.index_of("DALLAS_METRO") == 2 and chosen.index_of("ERIE_METRO") is None
    assert chosen.codes_between(1, 10) == ["BOSTON_METRO", "DALLAS_METRO"]
    assert select(table, "") is table


def test_a_last_run_not_read_is_unknown_not_never() -> None:
    run = LastRun("ok", 12, FROZEN)
    table = columns().with_last_runs({"AUSTIN_METRO": run, "BOSTON_METRO": None})
    assert table[0].last_known and table[0].last_status == "ok" and table[0].last_lag_ms == 12
    assert table[1].last_known and table[1].last_status is None  # read: never ran
    assert not table[2].last_known and table[2].last_status is None  # not read


def test_no_regions() -> None:
    table = columns([])
    assert len(table) == 0 and table.index_of("AUSTIN_METRO") is None
    assert list(table.matching("a")) == [] and table.valid_until() is None


def test_the_repr_stays_short() -> None:
    # Textual names a worker after its arguments' reprs: never a repr of every region.
    table = columns()
    assert repr(table) == "<RegionColumns: 4 regions>"
    assert repr(select(table, "boston")) == "<RegionSelection: 1 of 4 regions>"


def test_first_fires_are_the_active_regions_earliest_by_time_then_code() -> None:
    table = columns()
    hourly = table[0].next_runs[0]  # AUSTIN and DALLAS: 03:00; BOSTON (every 5 min) is paused
    assert table.first_fires(5) == [(hourly, "AUSTIN_METRO"), (hourly, "DALLAS_METRO")]
    assert table.first_fires(1) == [(hourly, "AUSTIN_METRO")]
    assert table.first_fires(0) == []
    resumed = columns([(*REGIONS[1][:4], True, 3), *REGIONS[2:3]])
    assert [code for _, code in resumed.first_fires(1)] == ["BOSTON_METRO"]
