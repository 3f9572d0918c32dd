#!/usr/bin/env python3
"""Expected confidence intervals for the CI gate's per-variant tests (src/gate/stats.rs).

Run from the repository root (needs scipy and statsmodels, e.g. `pip install scipy statsmodels`):

    python3 scripts/variant-intervals.py

It (re)writes fixtures/gate/intervals.json. CI does not run this script: the JSON is committed
and the unit tests in src/gate/stats.rs read it. Run it again only if you change the cases
below, and commit the new JSON with the change.

The point is an independent check: obsctl computes the intervals from sufficient statistics
only (n, sum, sum of squares; events, trials) with its own code, and this script computes the
expected values with other people's code from the raw data:

* Welch's t interval for mean(current) - mean(baseline): from the raw per-session samples with
  `scipy.stats.ttest_ind(current, baseline, equal_var=False).confidence_interval(...)`, checked
  against a by-hand Welch-Satterthwaite df and `scipy.stats.t.ppf`.
* Newcombe's hybrid score interval for rate(current) - rate(baseline) (method 10 of Newcombe
  1998, from two Wilson score intervals): `statsmodels.stats.proportion.
  confint_proportions_2indep(..., method="newcomb", compare="diff")`, checked against the
  formula written out by hand.
* Student's t quantiles (`scipy.stats.t.isf`) for obsctl's own t quantile function (statrs'
  `StudentsT::inverse_cdf` is not accurate enough at large df; see src/gate/stats.rs).

For each case the JSON holds the INPUT as obsctl will see it (n, sum, sum_squares computed
from the samples with math.fsum; events, trials) and the expected estimate, low and high.

Deterministic: samples are literal or drawn from numpy's default_rng with a fixed seed per
case, rounded to 6 decimals like per-session costs in USD; nothing reads the clock.
"""

import json
import math
import os
import warnings

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

OUT = os.path.join("fixtures", "gate", "intervals.json")


def costs(seed, n, mean, sd):
    """n per-session costs (USD, 6 decimals) from a gamma distribution with this mean and sd."""
    rng = np.random.default_rng(seed)
    shape = (mean / sd) ** 2
    scale = sd * sd / mean
    return [round(float(x), 6) for x in rng.gamma(shape, scale, n)]


# (name, current samples, baseline samples, confidence)
WELCH = [
    ("clear regression", costs(1, 40, 0.12, 0.03), costs(2, 40, 0.08, 0.03), 0.95),
    ("clear win", costs(3, 50, 0.05, 0.02), costs(4, 45, 0.09, 0.025), 0.95),
    ("overlapping", costs(5, 30, 0.100, 0.04), costs(6, 30, 0.098, 0.04), 0.95),
    ("n = 2 on both sides", [0.5, 0.7], [0.4, 0.45], 0.95),
    ("n = 2 against n = 3", [0.12, 0.31], [0.10, 0.15, 0.22], 0.95),
    ("few noisy current, many steady baseline", costs(7, 5, 0.3, 0.2), costs(8, 2000, 0.1, 0.01), 0.95),
    ("many noisy current, few steady baseline", costs(9, 1500, 0.6, 0.5), costs(10, 8, 0.5, 0.02), 0.95),
    ("current without spread", [0.2, 0.2, 0.2, 0.2], costs(11, 10, 0.25, 0.05), 0.95),
    ("large n (df above 1000)", costs(12, 20000, 0.051, 0.03), costs(13, 30000, 0.05, 0.03), 0.95),
    ("90 % interval", costs(14, 25, 0.2, 0.1), costs(15, 35, 0.17, 0.08), 0.90),
    ("99 % interval", costs(16, 12, 1.5, 0.9), costs(17, 9, 1.1, 0.4), 0.99),
]

# (name, current events, current trials, baseline events, baseline trials, confidence)
PROPORTIONS = [
    ("clear regression", 30, 200, 10, 200, 0.95),
    ("clear win", 5, 300, 25, 280, 0.95),
    ("overlapping", 12, 150, 10, 140, 0.95),
    ("3 trials against 2", 1, 3, 0, 2, 0.95),
    ("rate 0 on both sides", 0, 50, 0, 40, 0.95),
    ("rate 1 against 0.9", 20, 20, 18, 20, 0.95),
    ("rate 1 on both sides", 10, 10, 25, 25, 0.95),
    ("zero events in current", 0, 120, 7, 130, 0.95),
    ("zero events in baseline", 4, 90, 0, 4000, 0.95),
    ("very unequal trials", 3, 10, 500, 10000, 0.95),
    ("large counts", 1234, 56789, 1100, 60000, 0.95),
    ("90 % interval", 9, 80, 4, 75, 0.90),
    ("99 % interval", 40, 500, 22, 480, 0.99),
]

# (df, confidence): two-sided quantiles t with P(T > t) = (1 - confidence) / 2 (scipy.stats.t.isf).
T_QUANTILES = [
    (df, c)
    for c in (0.90, 0.95, 0.99)
    for df in (1.0, 1.7, 2.0, 4.9, 37.25, 250.5, 999.5, 1000.0, 1500.0, 1e5, 1e8, 1e12)
] + [(1.0, 0.999999), (3.5, 0.9999999999), (40.0, 0.5), (2e6, 0.999999)]


def close(a, b, rel=1e-12, abs_=1e-15):
    return abs(a - b) <= max(abs_, rel * abs(b))


def welch_case(name, cur, base, confidence):
    x, y = np.array(cur), np.array(base)
    estimate = float(np.mean(x) - np.mean(y))
    with warnings.catch_warnings():
        # "current without spread": scipy warns about a sample with no variance; the interval is fine.
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence_level=confidence)
    low, high = float(ci.low), float(ci.high)
    # by hand: Welch-Satterthwaite df and the t quantile
    a, b = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    df = (a + b) ** 2 / (a * a / (len(x) - 1) + b * b / (len(y) - 1))
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * math.sqrt(a + b)
    assert close(low, estimate - half, 1e-10) and close(high, estimate + half, 1e-10), name
    return {
        "name": name,
        "confidence": confidence,
        "current": {"n": len(cur), "sum": math.fsum(cur), "sum_squares": math.fsum(v * v for v in cur)},
        "baseline": {"n": len(base), "sum": math.fsum(base), "sum_squares": math.fsum(v * v for v in base)},
        "df": float(df),
        "estimate": estimate,
        "low": low,
        "high": high,
    }


def wilson(events, trials, z):
    p = events / trials
    denom = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def proportion_case(name, e1, n1, e2, n2, confidence):
    alpha = 1 - confidence
    low, high = confint_proportions_2indep(e1, n1, e2, n2, method="newcomb", compare="diff", alpha=alpha)
    low, high = float(low), float(high)
    # by hand: Newcombe (1998) method 10 from the two Wilson intervals
    z = stats.norm.isf(alpha / 2)
    p1, p2 = e1 / n1, e2 / n2
    l1, u1 = wilson(e1, n1, z)
    l2, u2 = wilson(e2, n2, z)
    d = p1 - p2
    assert close(low, d - math.hypot(p1 - l1, u2 - p2)), name
    assert close(high, d + math.hypot(u1 - p1, p2 - l2)), name
    return {
        "name": name,
        "confidence": confidence,
        "current": {"events": e1, "trials": n1},
        "baseline": {"events": e2, "trials": n2},
        "estimate": d,
        "low": low,
        "high": high,
    }


def main():
    doc = {
        "about": "Expected intervals for src/gate/stats.rs; written by scripts/variant-intervals.py, do not edit.",
        "generated_with": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
        "welch": [welch_case(*c) for c in WELCH],
        "newcombe": [proportion_case(*c) for c in PROPORTIONS],
        "t_quantiles": [
            # isf of the tail, not ppf(1 - tail): 1 - tail would round the tail first.
            {"df": df, "confidence": c, "t": float(stats.t.isf((1 - c) / 2, df))} for df, c in T_QUANTILES
        ],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT}: {len(doc['welch'])} Welch cases, {len(doc['newcombe'])} Newcombe cases, "
          f"{len(doc['t_quantiles'])} t quantiles")


if __name__ == "__main__":
    main()
