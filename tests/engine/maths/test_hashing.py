"""Assignment hashing reproduces GrowthBook's published SDK test vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.maths import hashing

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "growthbook_cases.json").read_text()
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968)],
)
def test_fnv1a32_reference_values(value: str, expected: int) -> None:
    assert hashing.fnv1a32(value) == expected


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_hash_matches_growthbook(seed: str, value: str, version: int, expected: float) -> None:
    assert hashing.bucket(seed, value, version) == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_bucket_ranges_match_growthbook(name: str, args: list[Any], expected: list[Any]) -> None:
    count, coverage, weights = args
    got = hashing.bucket_ranges(count, coverage, weights)
    assert len(got) == len(expected), name
    for (start, end), (want_start, want_end) in zip(got, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-9), name
        assert end == pytest.approx(want_end, abs=1e-9), name


@pytest.mark.parametrize("case", CASES["experiments"], ids=lambda c: c["name"])
def test_experiment_cases_pick_growthbooks_variant(case: dict[str, Any]) -> None:
    count = case["variants"]
    definition = hashing.Definition(
        key=case["key"],
        variant_keys=tuple(str(i) for i in range(count)),
        weights=tuple(case["weights"] or hashing.equal_weights(count)),
        coverage=case["coverage"],
        seed=case["seed"],
        hash_version=case["hash_version"],
    )
    got = hashing.assign(definition, case["unit"])
    assert got is not None
    assert got.bucket == case["bucket"]
    assert got.variant_index == case["variation"]


def test_outside_coverage_is_not_assigned() -> None:
    definition = hashing.Definition("exp", ("a", "b"), (0.5, 0.5), coverage=0.0)
    assert all(hashing.assign(definition, f"unit-{i}") is None for i in range(200))


def test_weights_split_traffic_in_proportion() -> None:
    definition = hashing.Definition("split", ("a", "b", "c"), (0.2, 0.3, 0.5))
    counts = {"a": 0, "b": 0, "c": 0}
    for i in range(20_000):
        got = hashing.assign(definition, f"device-{i}")
        assert got is not None
        counts[got.variant_key] += 1
    assert counts["a"] / 20_000 == pytest.approx(0.2, abs=0.015)
    assert counts["b"] / 20_000 == pytest.approx(0.3, abs=0.015)
    assert counts["c"] / 20_000 == pytest.approx(0.5, abs=0.015)


def test_choose_variation_edges() -> None:
    ranges = [(0.0, 0.25), (0.5, 0.75)]
    assert hashing.choose_variation(0.0, ranges) == 0
    assert hashing.choose_variation(0.25, ranges) == -1
    assert hashing.choose_variation(0.5, ranges) == 1
    assert hashing.choose_variation(0.8, ranges) == -1
