"""The Runs screen's columns fit the width: the error column takes the rest and ends in "…"
(the line under the table shows the whole error)."""

from __future__ import annotations

import pytest

from console.screens.runs import SCROLLBAR, columns_for


@pytest.mark.parametrize("width", [80, 120])
def test_the_columns_fit_the_width(width: int) -> None:
    columns = columns_for(width)
    assert sum(w + 2 for _, _, w in columns) + SCROLLBAR == width
    assert columns[-1][1] == "error" and columns[-1][2] >= 7
