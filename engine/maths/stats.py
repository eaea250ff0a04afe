"""Per-variant statistics of a conversion experiment, in plain Python (tests compare to scipy).

- rate, absolute uplift (Wald interval, unpooled) and relative uplift (delta method) vs control;
- a two-sided p-value of the pooled two-proportion z-test;
- the Bayesian chance to beat control with Beta(1 + conversions, 1 + failures) posteriors
  (exact sum for small counts, a normal approximation of the posteriors past that);
- a sample-ratio-mismatch chi-squared test of units against the configured weights;
- a minimum-sample guard: no verdict until every variant has enough units and conversions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

CONFIDENCE = 0.95
SRM_ALPHA = 0.001
MIN_UNITS = 100
MIN_CONVERSIONS = 10
EXACT_BAYES_LIMIT = 5000  # terms of the exact sum; past it the normal approximation is exact enough


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """Inverse of the standard normal CDF (Acklam's rational approximation, one Newton step)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p > 0.5:
        return -normal_ppf(1.0 - p)  # the lower tail keeps the precision of small p
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687,
         138.3577518672690, -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866,
         66.80131188771972, -13.28068155288572)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838,
         -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    # One Halley step brings the approximation to full double precision.
    e = normal_cdf(x) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)


def _gamma_q(s: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(s, x) (series below s+1, continued fraction above)."""
    if x <= 0:
        return 1.0
    log_front = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1:
        term = total = 1.0 / s
        n = s
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def chi2_sf(statistic: float, dof: int) -> float:
    return _gamma_q(dof / 2.0, statistic / 2.0)


@dataclass(frozen=True, slots=True)
class SrmCheck:
    statistic: float
    p_value: float
    flagged: bool


def srm_check(units: Sequence[int], weights: Sequence[float]) -> SrmCheck | None:
    """Chi-squared goodness of fit of observed units to the expected split."""
    total = sum(units)
    weight_sum = sum(weights)
    if total == 0 or len(units) < 2 or weight_sum <= 0:
        return None
    statistic = 0.0
    for observed, weight in zip(units, weights, strict=True):
        expected = total * weight / weight_sum
        if expected <= 0:
            if observed > 0:
                return SrmCheck(math.inf, 0.0, True)
            continue
        statistic += (observed - expected) ** 2 / expected
    p_value = chi2_sf(statistic, len(units) - 1)
    return SrmCheck(statistic, p_value, p_value < SRM_ALPHA)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def chance_to_beat(control_conv: int, control_units: int, test_conv: int, test_units: int) -> float:
    """P(rate_test > rate_control) under Beta(1 + conversions, 1 + failures) posteriors."""
    a_a, b_a = 1 + control_conv, 1 + control_units - control_conv
    a_b, b_b = 1 + test_conv, 1 + test_units - test_conv
    if a_b <= EXACT_BAYES_LIMIT:
        # Closed form for integer a_b (Evan Miller): sum over i < a_b.
        total = 0.0
        for i in range(a_b):
            total += math.exp(
                _log_beta(a_a + i, b_a + b_b)
                - math.log(b_b + i)
                - _log_beta(1 + i, b_b)
                - _log_beta(a_a, b_a)
            )
        return min(max(total, 0.0), 1.0)
    mean_a = a_a / (a_a + b_a)
    mean_b = a_b / (a_b + b_b)
    var_a = a_a * b_a / ((a_a + b_a) ** 2 * (a_a + b_a + 1))
    var_b = a_b * b_b / ((a_b + b_b) ** 2 * (a_b + b_b + 1))
    return normal_cdf((mean_b - mean_a) / math.sqrt(var_a + var_b))


class Verdict(StrEnum):
    CONTROL = "control"
    NOT_ENOUGH_DATA = "not enough data"
    SRM = "sample ratio mismatch"
    BETTER = "better"
    WORSE = "worse"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class VariantInput:
    key: str
    units: int
    conversions: int
    weight: float


@dataclass(slots=True)
class VariantStats:
    key: str
    units: int
    conversions: int
    weight: float
    rate: float | None
    abs_uplift: float | None = None
    abs_ci: tuple[float, float] | None = None
    rel_uplift: float | None = None
    rel_ci: tuple[float, float] | None = None
    p_value: float | None = None
    chance_to_beat_control: float | None = None
    verdict: Verdict = Verdict.NOT_ENOUGH_DATA


@dataclass(slots=True)
class ExperimentStats:
    variants: list[VariantStats]
    srm: SrmCheck | None
    enough_data: bool
    leader: str | None
    notes: list[str] = field(default_factory=list)


def _two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (x2 / n2 - x1 / n1) / se
    return 2 * (1 - normal_cdf(abs(z)))


def compare(
    variants: Sequence[VariantInput],
    *,
    confidence: float = CONFIDENCE,
    min_units: int = MIN_UNITS,
    min_conversions: int = MIN_CONVERSIONS,
) -> ExperimentStats:
    """Statistics of every variant against the first (the control)."""
    if not variants:
        return ExperimentStats([], None, False, None, ["no variants"])
    z = normal_ppf(0.5 + confidence / 2)
    srm = srm_check([v.units for v in variants], [v.weight for v in variants])
    enough = all(v.units >= min_units and v.conversions >= min_conversions for v in variants)
    control = variants[0]
    results: list[VariantStats] = []
    for index, v in enumerate(variants):
        rate = v.conversions / v.units if v.units else None
        stats = VariantStats(v.key, v.units, v.conversions, v.weight, rate)
        results.append(stats)
        if index == 0:
            stats.verdict = Verdict.CONTROL
            continue
        if rate is None or not control.units:
            continue
        p_c = control.conversions / control.units
        var_t = rate * (1 - rate) / v.units
        var_c = p_c * (1 - p_c) / control.units
        diff = rate - p_c
        half = z * math.sqrt(var_t + var_c)
        stats.abs_uplift = diff
        stats.abs_ci = (diff - half, diff + half)
        if p_c > 0:
            ratio = rate / p_c
            stats.rel_uplift = ratio - 1
            se_ratio = ratio * math.sqrt((var_t / rate**2 if rate > 0 else 0.0) + var_c / p_c**2)
            stats.rel_ci = (ratio - 1 - z * se_ratio, ratio - 1 + z * se_ratio)
        stats.p_value = _two_proportion_p(
            control.conversions, control.units, v.conversions, v.units
        )
        stats.chance_to_beat_control = chance_to_beat(
            control.conversions, control.units, v.conversions, v.units
        )
        if srm is not None and srm.flagged:
            stats.verdict = Verdict.SRM
        elif not enough:
            stats.verdict = Verdict.NOT_ENOUGH_DATA
        elif stats.chance_to_beat_control >= confidence and stats.abs_ci[0] > 0:
            stats.verdict = Verdict.BETTER
        elif stats.chance_to_beat_control <= 1 - confidence and stats.abs_ci[1] < 0:
            stats.verdict = Verdict.WORSE
        else:
            stats.verdict = Verdict.INCONCLUSIVE
    notes = []
    if srm is not None and srm.flagged:
        notes.append(f"sample ratio mismatch (p={srm.p_value:.2g} < {SRM_ALPHA}): check assignment")
    if not enough:
        notes.append(
            f"not enough data: every variant needs {min_units} units and {min_conversions} "
            "conversions before a verdict"
        )
    leader = _leader(results) if enough and not (srm and srm.flagged) else None
    return ExperimentStats(results, srm, enough, leader, notes)


def _leader(results: Sequence[VariantStats]) -> str | None:
    rated = [r for r in results if r.rate is not None]
    if not rated:
        return None
    return max(rated, key=lambda r: (r.rate or 0.0, -results.index(r))).key
