"""Paired pre/post statistics, computed with SciPy: n, mean and SD of the change, Cohen's d_z with its confidence
interval, and the paired t-test.

d_z = mean(change) / SD(change) (SD with n - 1). Its confidence interval is the exact one from the noncentral t
distribution (Cumming & Finch 2001; Algina & Keselman): with t = d_z * sqrt(n) and df = n - 1, the limits are the
noncentrality parameters under which the observed t sits at the upper and lower (1 - confidence) / 2 tails, divided
by sqrt(n). Each is found with Brent's method on ``scipy.stats.nct.cdf`` to 1e-13, so the limits match any other
solver of the same equations to far better than 1e-9. The p-value is the two-sided paired t-test
(``scipy.stats.ttest_rel(second, first)``); both need n >= 2 and a change that is not constant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
CI_METHOD = "noncentral t (exact)"
_XTOL = 1e-13


@dataclass(frozen=True)
class PairedSummary:
    n: int
    mean_change: float | None
    sd_change: float | None
    d_z: float | None
    ci_low: float | None
    ci_high: float | None
    t: float | None
    p_value: float | None


class _Unsolvable(ArithmeticError):
    """The noncentral t could not be evaluated where the limit lies (a tiny n with an extreme t)."""


def _ncp_at(t: float, df: int, tail: float) -> float:
    """The noncentrality parameter under which P(T <= t) = ``tail`` (nct.cdf falls as the parameter grows)."""

    def f(ncp: float) -> float:
        value = float(stats.nct.cdf(t, df, ncp)) - tail
        if not math.isfinite(value):
            raise _Unsolvable(f"nct.cdf({t}, {df}, {ncp}) is not finite")
        return value

    # Widen a bracket around t until the function changes sign; give up far beyond any sensible interval.
    low, high, step = t - 1.0, t + 1.0, 1.0
    while f(low) < 0:
        step *= 2
        if step > 2.0**20:
            raise _Unsolvable("no lower bracket")
        low = t - step
    step = 1.0
    while f(high) > 0:
        step *= 2
        if step > 2.0**20:
            raise _Unsolvable("no upper bracket")
        high = t + step
    try:
        return float(optimize.brentq(f, low, high, xtol=_XTOL, maxiter=500))
    except (ValueError, RuntimeError) as exc:
        raise _Unsolvable(str(exc)) from exc


def dz_confidence_interval(d_z: float, n: int, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """The exact (noncentral t) confidence interval of d_z for ``n`` pairs; (None, None) in the rare case that the
    distribution cannot be evaluated at a limit (then the API leaves the interval empty rather than guess)."""
    t = d_z * math.sqrt(n)
    alpha = 1.0 - confidence
    try:
        low = _ncp_at(t, n - 1, 1.0 - alpha / 2)
        high = _ncp_at(t, n - 1, alpha / 2)
    except _Unsolvable:
        return None, None
    return low / math.sqrt(n), high / math.sqrt(n)


def paired_summary(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE) -> PairedSummary:
    """Change from ``first`` to ``second`` (second minus first) over complete pairs."""
    before = np.asarray(first, dtype="float64")
    after = np.asarray(second, dtype="float64")
    change = after - before
    n = int(change.size)
    if n == 0:
        return PairedSummary(0, None, None, None, None, None, None, None)
    mean = float(change.mean())
    if n < 2:
        return PairedSummary(n, mean, None, None, None, None, None, None)
    sd = float(change.std(ddof=1))
    if not sd > 0:
        return PairedSummary(n, mean, sd, None, None, None, None, None)
    d_z = mean / sd
    test = stats.ttest_rel(after, before)
    low, high = dz_confidence_interval(d_z, n, confidence)
    return PairedSummary(n, mean, sd, d_z, low, high, float(test.statistic), float(test.pvalue))
