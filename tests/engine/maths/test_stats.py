"""Experiment statistics checked against scipy."""

from __future__ import annotations

import math

import pytest
from scipy import integrate
from scipy import stats as ss

from engine.maths import stats


@pytest.mark.parametrize("p", [1e-6, 0.001, 0.02, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999999])
def test_normal_ppf_matches_scipy(p: float) -> None:
    assert stats.normal_ppf(p) == pytest.approx(ss.norm.ppf(p), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("x", "dof"), [(0.01, 1), (0.5, 1), (3.84, 1), (12.0, 2), (30.0, 3), (100.0, 4), (7.0, 9)]
)
def test_chi2_sf_matches_scipy(x: float, dof: int) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(ss.chi2.sf(x, dof), rel=1e-10)


@pytest.mark.parametrize(
    ("units", "weights"),
    [([5000, 5000], [0.5, 0.5]), ([5000, 5400], [0.5, 0.5]), ([1000, 2100, 2900], [0.2, 0.4, 0.4])],
)
def test_srm_matches_scipy_chisquare(units: list[int], weights: list[float]) -> None:
    total = sum(units)
    expected = [total * w for w in weights]
    reference = ss.chisquare(units, expected)
    got = stats.srm_check(units, weights)
    assert got is not None
    assert got.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert got.flagged == (reference.pvalue < stats.SRM_ALPHA)


def test_srm_flags_a_broken_split() -> None:
    flagged = stats.srm_check([5000, 5400], [0.5, 0.5])
    fine = stats.srm_check([5000, 5040], [0.5, 0.5])
    assert flagged is not None and flagged.flagged
    assert fine is not None and not fine.flagged


def _beta_reference(xa: int, na: int, xb: int, nb: int) -> float:
    a = ss.beta(1 + xa, 1 + na - xa)
    b = ss.beta(1 + xb, 1 + nb - xb)
    value, _ = integrate.quad(
        lambda x: b.pdf(x) * a.cdf(x), 0, 1, points=[xa / na, xb / nb], limit=500
    )
    return float(value)


@pytest.mark.parametrize(
    "counts",
    [
        (10, 100, 15, 100),
        (120, 1000, 150, 1000),
        (50, 1000, 45, 1000),
        (0, 50, 3, 50),
        (6000, 60000, 6200, 60000),
    ],
)
def test_chance_to_beat_matches_scipy_integration(counts: tuple[int, int, int, int]) -> None:
    tolerance = 1e-6 if counts[2] < stats.EXACT_BAYES_LIMIT else 1e-4
    assert stats.chance_to_beat(*counts) == pytest.approx(_beta_reference(*counts), abs=tolerance)


def test_uplift_intervals_and_p_value_match_scipy() -> None:
    result = stats.compare(
        [
            stats.VariantInput("control", 10_000, 1_000, 0.5),
            stats.VariantInput("v1", 10_000, 1_100, 0.5),
        ]
    )
    control, test = result.variants
    assert control.verdict == stats.Verdict.CONTROL
    p_c, p_t = 0.1, 0.11
    z = ss.norm.ppf(0.975)
    se = math.sqrt(p_t * (1 - p_t) / 10_000 + p_c * (1 - p_c) / 10_000)
    assert test.abs_uplift == pytest.approx(0.01)
    assert test.abs_ci == pytest.approx((0.01 - z * se, 0.01 + z * se), rel=1e-12)
    # Relative uplift: delta method on the ratio of rates.
    ratio = p_t / p_c
    se_ratio = ratio * math.sqrt(
        (p_t * (1 - p_t) / 10_000) / p_t**2 + (p_c * (1 - p_c) / 10_000) / p_c**2
    )
    assert test.rel_uplift == pytest.approx(0.1)
    assert test.rel_ci == pytest.approx((0.1 - z * se_ratio, 0.1 + z * se_ratio), rel=1e-12)
    # The pooled z-test equals the chi-squared test of the 2x2 table without correction.
    table = [[1_000, 9_000], [1_100, 8_900]]
    reference = ss.chi2_contingency(table, correction=False)
    assert test.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert test.chance_to_beat_control == pytest.approx(
        _beta_reference(1_000, 10_000, 1_100, 10_000), abs=1e-4
    )
    assert test.verdict == stats.Verdict.BETTER
    assert result.leader == "v1"


def test_minimum_sample_guard_withholds_the_verdict() -> None:
    result = stats.compare(
        [stats.VariantInput("control", 50, 2, 0.5), stats.VariantInput("v1", 50, 20, 0.5)]
    )
    assert not result.enough_data
    assert result.leader is None
    assert result.variants[1].verdict == stats.Verdict.NOT_ENOUGH_DATA
    assert result.variants[1].chance_to_beat_control is not None  # numbers shown, no verdict


def test_srm_withholds_the_verdict() -> None:
    result = stats.compare(
        [
            stats.VariantInput("control", 5_000, 500, 0.5),
            stats.VariantInput("v1", 5_600, 800, 0.5),
        ]
    )
    assert result.srm is not None and result.srm.flagged
    assert result.variants[1].verdict == stats.Verdict.SRM
    assert result.leader is None
