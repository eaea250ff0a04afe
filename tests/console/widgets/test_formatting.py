"""The console's shared figures: one plural rule for every "N thing(s)"."""

from __future__ import annotations

from console.widgets.formatting import count


def test_count_says_one_thing_and_many_things() -> None:
    assert count(0, "run") == "0 runs"
    assert count(1, "account") == "1 account"
    assert count(2, "account") == "2 accounts"
    assert count(1, "replica") == "1 replica"
    assert count(3, "replica") == "3 replicas"
    assert count(2, "entry", "entries") == "2 entries"


def test_count_separates_thousands_for_the_reader() -> None:
    assert count(12_000, "region") == "12,000 regions"
    assert count(1_000_000, "entry", "entries") == "1,000,000 entries"
    assert count(999, "run") == "999 runs"
