"""How a table's columns fit a narrow terminal: hidden by priority, then narrowed, last first."""

from __future__ import annotations

from console.widgets.virtual_table import CELL_PADDING, Column, fit_columns

COLUMNS = (
    Column("Code", "code", 10),
    Column("Next", "next", 40, shrink_to=12),
    Column("Name", "name", 20, shrink_to=8, hide_below=70),
    Column("TZ", "tz", 16, hide_below=100),
)
PAD = 2 * CELL_PADDING


def total(layout: list[tuple[int, int]]) -> int:
    return sum(width + PAD for _, width in layout)


def test_wide_enough_keeps_every_column_at_its_width() -> None:
    assert fit_columns(COLUMNS, 200) == [(0, 10), (1, 40), (2, 20), (3, 16)]


def test_not_laid_out_yet_shows_every_column() -> None:
    assert fit_columns(COLUMNS, 0) == [(0, 10), (1, 40), (2, 20), (3, 16)]


def test_narrower_hides_by_priority_then_narrows_the_last_shrinkable_first() -> None:
    layout = fit_columns(COLUMNS, 72)  # TZ hidden below 100; Name narrows before Next
    assert layout == [(0, 10), (1, 40), (2, 16)]
    assert total(layout) == 72


def test_columns_never_narrow_below_their_floor_and_the_rest_scrolls() -> None:
    layout = fit_columns(COLUMNS, 20)  # Name hidden; Next at its floor; still too wide
    assert layout == [(0, 10), (1, 12)]
    assert total(layout) > 20
