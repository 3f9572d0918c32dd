#!/usr/bin/env python3
"""Writes fixtures/gate/variants.json: per-session costs of a control and a treatment
variant, and the 95 % Welch interval of mean(treatment) - mean(control) as scipy computes
it from the raw samples. tests/gate.rs writes the samples as sessions, runs
`obsctl gate --control control --max-increase-per variant=10%` and compares its interval
(computed from sufficient statistics only) with these. Independent of obsctl's code.

    pip install scipy && python3 scripts/gate-variant-cases.py

CI does not run this script: its output is committed.
"""
import json
import os
import random

from scipy import stats


def samples(rng, n, mean, spread):
    return [round(max(0.01, rng.gauss(mean, spread)), 2) for _ in range(n)]


def welch(treatment, control, confidence=0.95):
    res = stats.ttest_ind(treatment, control, equal_var=False)
    ci = res.confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def main():
    rng = random.Random(20261125)
    threshold = 10.0  # percent of the control's mean
    cases = []
    specs = [
        ("clear regression", 12, 1.00, 0.08, 12, 1.50, 0.10),
        ("clear win", 12, 1.00, 0.08, 12, 0.70, 0.08),
        ("overlapping the threshold", 8, 1.00, 0.30, 8, 1.12, 0.35),
        ("small increase within the threshold", 40, 1.00, 0.05, 40, 1.03, 0.05),
        ("unequal sizes and spreads", 30, 0.40, 0.02, 5, 0.80, 0.20),
        ("too few sessions", 10, 1.00, 0.10, 2, 3.00, 0.10),
    ]
    for name, nc, mc, sc, nt, mt, st in specs:
        control = samples(rng, nc, mc, sc)
        treatment = samples(rng, nt, mt, st)
        case = {"name": name, "threshold_pct": threshold, "control": control, "treatment": treatment}
        if nt < 3:
            case["expected"] = "insufficient data"
        else:
            low, high = welch(treatment, control)
            margin = sum(control) / len(control) * threshold / 100
            case.update(low=low, high=high, margin=margin, expected="fail" if low > margin else "pass")
        cases.append(case)
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "gate", "variants.json")
    with open(out, "w") as f:
        json.dump({"made_by": "scripts/gate-variant-cases.py (scipy " + __import__("scipy").__version__ + ")",
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
