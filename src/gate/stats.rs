//! Confidence intervals for the gate's per-variant regression tests, from sufficient statistics.
//!
//! The gate asks, for each variant, whether the current period is worse than the baseline: is
//! the mean cost per session higher, is the share of failed runs or failed tool calls higher?
//! It answers with a two-sided confidence interval for the difference current − baseline, and
//! the caller compares the interval with its thresholds. Every input here is a *sufficient
//! statistic* (a count, a sum, a sum of squares), so the intervals can be computed from server
//! aggregates (PromQL, LogQL) just as well as from local logs, without per-session data.
//!
//! Two tests, chosen because each needs nothing more than those aggregates and behaves well at
//! the sample sizes a gate sees:
//!
//! * **Welch's t interval** ([`welch_difference`]) for a difference of means. Costs per session
//!   have different spreads in different periods (a new model, a new prompt), so the test must
//!   not assume equal variances as Student's pooled t does; Welch's degrees of freedom
//!   (Welch–Satterthwaite) handle that, and the t quantile keeps the interval honest at small n.
//! * **Newcombe's hybrid score interval** ([`proportion_difference`]; method 10 of Newcombe,
//!   "Interval estimation for the difference between independent proportions", Statistics in
//!   Medicine 17, 1998) for a difference of rates. Failures are rare, so rates near 0 (and
//!   sometimes at exactly 0 or 1) are the normal case; there the Wald interval collapses to a
//!   point or leaves [−1, 1], while Newcombe's interval, built from the two Wilson score
//!   intervals, stays inside and keeps close to its nominal coverage.
//!
//! All functions are total: bad input (NaN or infinite sums, more events than trials, a
//! confidence outside (0, 1), too few observations) gives `None`, never a panic.
//!
//! The normal quantile is `statrs`' `inverse_cdf`. The Student's t quantile is not: `statrs`
//! 0.18 computes it through `inv_beta_reg`, whose incomplete beta gives up after 140 steps,
//! and so for a 95 % interval it is off by 10⁻⁶ relative at 3·10⁴ degrees of freedom and by
//! 6·10⁻⁵ at 10⁶, never returns near 10⁸ (nor for some tails below 10⁻³⁹ at a few hundred), and
//! panics for tails below about 10⁻¹⁵⁴. Here,
//! below `CORNISH_FISHER_DF` (1000) degrees of freedom, the t quantile is found by Newton's method
//! on `statrs`' survival function (which is accurate there), and from there up it is the
//! Cornish–Fisher expansion around the normal quantile. `fixtures/gate/intervals.json`, written
//! by `scripts/variant-intervals.py` with scipy and statsmodels, checks both intervals and the
//! t quantiles.

use statrs::distribution::{Continuous, ContinuousCDF, Normal, StudentsT};

/// A two-sided confidence interval around an estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The point estimate (here always a difference current − baseline).
    pub estimate: f64,
    /// The lower end of the interval; `low <= estimate`.
    pub low: f64,
    /// The upper end of the interval; `estimate <= high`.
    pub high: f64,
}

/// Per-session costs of one variant, as sufficient statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStats {
    /// The number of sessions.
    pub n: u64,
    /// Σ x over the sessions.
    pub sum: f64,
    /// Σ x² over the sessions.
    pub sum_squares: f64,
}

impl MeanStats {
    /// The mean, Σx / n; `None` when `n == 0` or the mean is not finite.
    pub fn mean(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let mean = self.sum / self.n as f64;
        mean.is_finite().then_some(mean)
    }

    /// The sample variance (divisor n − 1), (Σx² − Σx·mean) / (n − 1); `None` when `n < 2`, when
    /// Σx² is negative or NaN, or when the result is not finite. A slightly negative value,
    /// which rounding gives for sessions that all cost the same, is clamped to 0.
    pub fn variance(&self) -> Option<f64> {
        if self.n < 2 || self.sum_squares.is_nan() || self.sum_squares < 0.0 {
            return None;
        }
        let centered = self.sum_squares - self.sum * self.mean()?;
        if !centered.is_finite() {
            return None;
        }
        Some((centered / (self.n - 1) as f64).max(0.0))
    }
}

/// Events out of trials (failed runs of runs, failed tool calls of tool calls).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proportion {
    /// How many trials had the event (failed).
    pub events: u64,
    /// How many trials there were.
    pub trials: u64,
}

impl Proportion {
    /// events / trials; `None` when `trials == 0` or `events > trials`.
    pub fn rate(&self) -> Option<f64> {
        (self.trials > 0 && self.events <= self.trials).then(|| self.events as f64 / self.trials as f64)
    }
}

/// Welch's t interval for mean(current) − mean(baseline) at `confidence` (e.g. 0.95),
/// with Welch–Satterthwaite degrees of freedom. None when either side has n < 2.
/// When both variances are 0 the interval is the point difference (low == high == estimate).
///
/// With `a = s₁²/n₁` and `b = s₂²/n₂` the interval is `estimate ± t(df) · √(a + b)`, where
/// `df = (a + b)² / (a²/(n₁ − 1) + b²/(n₂ − 1))` and `t(df)` is the upper (1 − confidence)/2
/// quantile of Student's t. Also `None` for a confidence outside (0, 1) and for input whose mean,
/// variance or interval is not finite (see [`MeanStats::mean`] and [`MeanStats::variance`]).
pub fn welch_difference(current: MeanStats, baseline: MeanStats, confidence: f64) -> Option<Interval> {
    let tail = upper_tail(confidence)?;
    let estimate = current.mean()? - baseline.mean()?;
    let a = current.variance()? / current.n as f64;
    let b = baseline.variance()? / baseline.n as f64;
    let se2 = a + b;
    if !(estimate.is_finite() && se2.is_finite()) {
        return None;
    }
    if se2 <= 0.0 {
        return Some(Interval { estimate, low: estimate, high: estimate });
    }
    // Welch–Satterthwaite, written with the shares of a and b in a + b so that nothing
    // overflows. Mathematically min(n₁, n₂) − 1 <= df <= n₁ + n₂ − 2; the clamp only catches
    // rounding (and keeps df >= 1, where the t quantile below is checked).
    let (k1, k2) = ((current.n - 1) as f64, (baseline.n - 1) as f64);
    let (wa, wb) = (a / se2, b / se2);
    let df = (1.0 / (wa * wa / k1 + wb * wb / k2)).clamp(k1.min(k2), k1 + k2);
    let half = t_quantile(tail, df)? * se2.sqrt();
    interval(estimate, estimate - half, estimate + half)
}

/// Newcombe's hybrid score interval (method 10 of Newcombe 1998, built from the two Wilson
/// score intervals) for rate(current) − rate(baseline). None when either side has 0 trials.
///
/// With Wilson intervals `(l₁, u₁)` around `p₁` and `(l₂, u₂)` around `p₂` (no continuity
/// correction) the interval is `[d − √((p₁ − l₁)² + (u₂ − p₂)²), d + √((u₁ − p₁)² + (p₂ − l₂)²)]`
/// for `d = p₁ − p₂`. Also `None` for a confidence outside (0, 1) and for more events than
/// trials on either side.
pub fn proportion_difference(current: Proportion, baseline: Proportion, confidence: f64) -> Option<Interval> {
    let z = normal_quantile(upper_tail(confidence)?)?;
    let (p1, l1, u1) = wilson(current, z)?;
    let (p2, l2, u2) = wilson(baseline, z)?;
    let estimate = p1 - p2;
    interval(estimate, estimate - (p1 - l1).hypot(u2 - p2), estimate + (u1 - p1).hypot(p2 - l2))
}

/// The name of the Welch test, for reports: `welch_name(0.95)` is `"Welch's t (95 %)"`.
pub fn welch_name(confidence: f64) -> String {
    format!("Welch's t ({} %)", percent(confidence))
}

/// The name of the Newcombe test, for reports: `newcombe_name(0.95)` is
/// `"Newcombe hybrid score (95 %)"`.
pub fn newcombe_name(confidence: f64) -> String {
    format!("Newcombe hybrid score ({} %)", percent(confidence))
}

/// From this many degrees of freedom up, the t quantile is the Cornish–Fisher expansion: with
/// terms to 1/df⁵ its error here is below 10⁻¹² relative even at a confidence of 1 − 10⁻¹⁵,
/// while `statrs`' incomplete beta, which the survival function below needs, loses accuracy as
/// df grows (its continued fraction stops after 140 steps).
const CORNISH_FISHER_DF: f64 = 1000.0;

/// Newton steps allowed for a t quantile below [`CORNISH_FISHER_DF`]; it takes 3 to 10 for any
/// confidence a gate would use.
const MAX_NEWTON_STEPS: usize = 100;

/// Newton stops once a step changes ln t by less than this: the step before was about 10⁻⁶, so
/// the error left is far below what `statrs`' survival function resolves (about 10⁻¹³).
const NEWTON_TOLERANCE: f64 = 1e-12;

/// The probability in each tail of a two-sided interval, (1 − confidence)/2, for a confidence
/// in (0, 1); `None` otherwise (NaN included).
fn upper_tail(confidence: f64) -> Option<f64> {
    (confidence > 0.0 && confidence < 1.0).then(|| (1.0 - confidence) / 2.0)
}

/// An interval whose three numbers are all finite.
fn interval(estimate: f64, low: f64, high: f64) -> Option<Interval> {
    (estimate.is_finite() && low.is_finite() && high.is_finite()).then_some(Interval { estimate, low, high })
}

/// The rate and its Wilson score interval (clamped to [0, 1] against rounding, as statsmodels
/// does) for the standard normal quantile `z`.
fn wilson(x: Proportion, z: f64) -> Option<(f64, f64, f64)> {
    let p = x.rate()?;
    let n = x.trials as f64;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some((p, (center - half).max(0.0), (center + half).min(1.0)))
}

/// z with P(Z > z) = `tail` for a standard normal Z; `tail` in (0, 0.5].
fn normal_quantile(tail: f64) -> Option<f64> {
    if !(tail > 0.0 && tail <= 0.5) {
        return None;
    }
    let z = -Normal::new(0.0, 1.0).ok()?.inverse_cdf(tail);
    z.is_finite().then_some(z)
}

/// t with P(T > t) = `tail` for Student's T with `df` degrees of freedom; `tail` in (0, 0.5],
/// `df > 0` (checked against scipy for `df >= 1`, which is all Welch's test asks for).
fn t_quantile(tail: f64, df: f64) -> Option<f64> {
    if !(tail > 0.0 && tail <= 0.5) || df.is_nan() || df <= 0.0 {
        return None;
    }
    if tail >= 0.5 {
        return Some(0.0);
    }
    let z = normal_quantile(tail)?;
    if z <= 0.0 {
        return Some(0.0); // a tail a rounding error below 0.5
    }
    if df >= CORNISH_FISHER_DF {
        return cornish_fisher(z, df);
    }
    // Newton's method on g(u) = ln P(T > eᵘ) − ln tail, in u = ln t: there the tails are close
    // to straight lines (exactly so for the power-law tails of small df), so it converges in a
    // few steps from the normal quantile, which is always below t. [below, above] brackets
    // the root; a step that would leave it is replaced by bisection (or a step of e).
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let target = tail.ln();
    let (mut below, mut above) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut u = z.ln();
    for _ in 0..MAX_NEWTON_STEPS {
        let t = u.exp();
        let sf = dist.sf(t);
        let gap = sf.ln() - target;
        if gap.is_nan() {
            break;
        }
        if gap > 0.0 {
            below = u;
        } else {
            above = u;
        }
        let newton = u + gap * sf / (t * dist.pdf(t));
        if (newton - u).abs() <= NEWTON_TOLERANCE {
            u = newton;
            break;
        }
        if above - below <= NEWTON_TOLERANCE {
            break;
        }
        u = if newton > below && newton < above {
            newton
        } else {
            match (below.is_finite(), above.is_finite()) {
                (true, true) => 0.5 * (below + above),
                (true, false) => below + 1.0,
                _ => above - 1.0,
            }
        };
    }
    let t = u.exp();
    (t.is_finite() && t > 0.0).then_some(t)
}

/// The Cornish–Fisher expansion of the t quantile around the normal quantile `z`, to 1/df⁵:
/// t = z + g₁/df + g₂/df² + g₃/df³ + g₄/df⁴ + g₅/df⁵ (Abramowitz & Stegun 26.7.5 gives g₁…g₄;
/// g₅ is the next term of the same series).
fn cornish_fisher(z: f64, df: f64) -> Option<f64> {
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    let g5 = (((((27.0 * z2 + 339.0) * z2 + 930.0) * z2 - 1782.0) * z2 - 765.0) * z2 + 17955.0) * z / 368640.0;
    let v = 1.0 / df;
    let t = z + v * (g1 + v * (g2 + v * (g3 + v * (g4 + v * g5))));
    t.is_finite().then_some(t)
}

/// A confidence as a percentage with at most 4 decimals and no trailing zeros: 0.95 → "95",
/// 0.999 → "99.9".
fn percent(confidence: f64) -> String {
    let text = format!("{:.4}", confidence * 100.0);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gate/intervals.json");

    fn fixture() -> Value {
        let text = std::fs::read_to_string(FIXTURE).expect("read fixtures/gate/intervals.json");
        serde_json::from_str(&text).expect("parse fixtures/gate/intervals.json")
    }

    fn num(v: &Value, key: &str) -> f64 {
        v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
    }

    fn count(v: &Value, key: &str) -> u64 {
        v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a count in {v}"))
    }

    fn cases<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
        doc[key].as_array().unwrap_or_else(|| panic!("no {key} array in the fixture"))
    }

    /// Within 1e-9 relative or 1e-12 absolute.
    fn assert_close(actual: f64, expected: f64, what: &str) {
        let diff = (actual - expected).abs();
        assert!(diff <= 1e-12 || diff <= 1e-9 * expected.abs(), "{what}: got {actual:e}, expected {expected:e}");
    }

    fn assert_interval(got: Interval, case: &Value) {
        let name = case["name"].as_str().unwrap_or("?");
        assert_close(got.estimate, num(case, "estimate"), &format!("{name}: estimate"));
        assert_close(got.low, num(case, "low"), &format!("{name}: low"));
        assert_close(got.high, num(case, "high"), &format!("{name}: high"));
    }

    fn mean_stats(v: &Value) -> MeanStats {
        MeanStats { n: count(v, "n"), sum: num(v, "sum"), sum_squares: num(v, "sum_squares") }
    }

    fn proportion(v: &Value) -> Proportion {
        Proportion { events: count(v, "events"), trials: count(v, "trials") }
    }

    #[test]
    fn welch_matches_scipy() {
        let doc = fixture();
        let cases = cases(&doc, "welch");
        assert!(cases.len() >= 8);
        for case in cases {
            let got =
                welch_difference(mean_stats(&case["current"]), mean_stats(&case["baseline"]), num(case, "confidence"))
                    .unwrap_or_else(|| panic!("no interval for {case}"));
            assert_interval(got, case);
        }
    }

    #[test]
    fn newcombe_matches_statsmodels() {
        let doc = fixture();
        let cases = cases(&doc, "newcombe");
        assert!(cases.len() >= 8);
        for case in cases {
            let got = proportion_difference(
                proportion(&case["current"]),
                proportion(&case["baseline"]),
                num(case, "confidence"),
            )
            .unwrap_or_else(|| panic!("no interval for {case}"));
            assert_interval(got, case);
        }
    }

    #[test]
    fn t_quantiles_match_scipy() {
        let doc = fixture();
        for case in cases(&doc, "t_quantiles") {
            let (df, confidence) = (num(case, "df"), num(case, "confidence"));
            let got = t_quantile((1.0 - confidence) / 2.0, df).unwrap_or_else(|| panic!("no quantile for {case}"));
            assert_close(got, num(case, "t"), &format!("t quantile at df {df}, confidence {confidence}"));
        }
    }

    #[test]
    fn fewer_than_two_sessions_gives_none() {
        let two = MeanStats { n: 2, sum: 1.0, sum_squares: 0.625 };
        for n in [0, 1] {
            let short = MeanStats { n, sum: 0.5 * n as f64, sum_squares: 0.25 * n as f64 };
            assert_eq!(short.variance(), None);
            assert_eq!(welch_difference(short, two, 0.95), None);
            assert_eq!(welch_difference(two, short, 0.95), None);
        }
        assert_eq!(MeanStats { n: 0, sum: 0.0, sum_squares: 0.0 }.mean(), None);
        assert_eq!(MeanStats { n: 1, sum: 0.5, sum_squares: 0.25 }.mean(), Some(0.5));
        assert!(welch_difference(two, two, 0.95).is_some());
    }

    #[test]
    fn zero_trials_gives_none() {
        let some = Proportion { events: 1, trials: 10 };
        let none = Proportion { events: 0, trials: 0 };
        assert_eq!(none.rate(), None);
        assert_eq!(proportion_difference(none, some, 0.95), None);
        assert_eq!(proportion_difference(some, none, 0.95), None);
        assert_eq!(proportion_difference(none, none, 0.95), None);
    }

    #[test]
    fn both_variances_zero_gives_the_point_difference() {
        // 3 sessions of 0.5 against 4 of 0.25 (exact in binary, so the variances are exactly 0).
        let current = MeanStats { n: 3, sum: 1.5, sum_squares: 0.75 };
        let baseline = MeanStats { n: 4, sum: 1.0, sum_squares: 0.25 };
        assert_eq!(current.variance(), Some(0.0));
        let got = welch_difference(current, baseline, 0.95);
        assert_eq!(got, Some(Interval { estimate: 0.25, low: 0.25, high: 0.25 }));
        // One side with no spread is an ordinary interval (df = n − 1 of the other side).
        let spread = MeanStats { n: 4, sum: 1.0, sum_squares: 0.375 };
        let got = welch_difference(current, spread, 0.95).expect("interval");
        assert!(got.low < got.estimate && got.estimate < got.high);
    }

    #[test]
    fn rounding_below_zero_variance_is_clamped() {
        // Σx² slightly below (Σx)²/n, as rounding gives for equal sessions.
        let stats = MeanStats { n: 3, sum: 0.6000000000000001, sum_squares: 0.12 };
        assert_eq!(stats.variance(), Some(0.0));
        assert_eq!(MeanStats { n: 3, sum: 0.6, sum_squares: -1.0 }.variance(), None);
    }

    #[test]
    fn bad_confidence_gives_none() {
        let a = MeanStats { n: 5, sum: 1.0, sum_squares: 0.5 };
        let b = MeanStats { n: 6, sum: 1.5, sum_squares: 0.6 };
        let p = Proportion { events: 3, trials: 40 };
        let q = Proportion { events: 1, trials: 50 };
        for confidence in [0.0, 1.0, -0.5, 1.5, 95.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(welch_difference(a, b, confidence), None, "{confidence}");
            assert_eq!(proportion_difference(p, q, confidence), None, "{confidence}");
        }
        // The open interval's edges still work.
        for confidence in [1e-300, 0.5, 1.0 - f64::EPSILON] {
            assert!(welch_difference(a, b, confidence).is_some(), "{confidence}");
            assert!(proportion_difference(p, q, confidence).is_some(), "{confidence}");
        }
    }

    #[test]
    fn nan_and_infinite_input_gives_none() {
        let good = MeanStats { n: 5, sum: 1.0, sum_squares: 0.5 };
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let sum = MeanStats { sum: bad, ..good };
            let squares = MeanStats { sum_squares: bad, ..good };
            for stats in [sum, squares] {
                assert_eq!(welch_difference(stats, good, 0.95), None, "{stats:?}");
                assert_eq!(welch_difference(good, stats, 0.95), None, "{stats:?}");
            }
        }
        // Σx² overflowing against Σx: not finite, not a zero variance.
        let huge = MeanStats { n: 2, sum: 1e300, sum_squares: 1e300 };
        assert_eq!(huge.variance(), None);
        assert_eq!(welch_difference(huge, good, 0.95), None);
    }

    #[test]
    fn more_events_than_trials_gives_none() {
        let bad = Proportion { events: 11, trials: 10 };
        let good = Proportion { events: 1, trials: 10 };
        assert_eq!(bad.rate(), None);
        assert_eq!(proportion_difference(bad, good, 0.95), None);
        assert_eq!(proportion_difference(good, bad, 0.95), None);
    }

    #[test]
    fn no_input_panics_and_every_interval_is_ordered() {
        let counts = [0, 1, 2, 3, 1000, u64::MAX];
        let floats = [0.0, -0.0, 1.0, -1.0, 1e-308, 5e-324, 1e154, 1e300, -1e300, f64::MAX, f64::NAN, f64::INFINITY];
        let confidences = [1e-300, 0.5, 0.95, 1.0 - f64::EPSILON, f64::NAN];
        let baseline = MeanStats { n: 7, sum: 0.7, sum_squares: 0.1 };
        for n in counts {
            for sum in floats {
                for sum_squares in floats {
                    for confidence in confidences {
                        let current = MeanStats { n, sum, sum_squares };
                        for got in [
                            welch_difference(current, baseline, confidence),
                            welch_difference(current, current, confidence),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            assert!(got.low <= got.estimate && got.estimate <= got.high, "{current:?}: {got:?}");
                        }
                    }
                }
            }
        }
        for events in counts {
            for trials in counts {
                for confidence in confidences {
                    let current = Proportion { events, trials };
                    let baseline = Proportion { events: trials / 2, trials };
                    if let Some(got) = proportion_difference(current, baseline, confidence) {
                        assert!(got.low <= got.estimate && got.estimate <= got.high, "{current:?}: {got:?}");
                        assert!(got.low >= -1.0 && got.high <= 1.0, "{current:?}: {got:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn huge_samples_use_the_expansion_and_return() {
        // df ≈ 2·10⁹: statrs' StudentsT::inverse_cdf would not return here.
        let a = MeanStats { n: 1_000_000_000, sum: 5e7, sum_squares: 3.5e6 };
        let b = MeanStats { n: 1_000_000_000, sum: 4.9e7, sum_squares: 3.4e6 };
        let got = welch_difference(a, b, 0.95).expect("interval");
        let se = (a.variance().unwrap() / 1e9 + b.variance().unwrap() / 1e9).sqrt();
        let width = (got.high - got.estimate) / se;
        assert!((width - 1.959963984540054).abs() < 1e-8, "half width {width} standard errors");
    }

    #[test]
    fn t_quantile_survives_its_whole_domain() {
        for df in [1.0, 1.5, 2.0, 7.3, 999.999, 1000.0, 1e6, 1e9, 1e15, 1e300, f64::MAX, f64::INFINITY] {
            let mut last = 0.0;
            for tail in [0.5, 0.5 - f64::EPSILON / 4.0, 0.4999999, 0.25, 0.05, 0.025, 0.005, 1e-6, 1e-10, 1e-16, 1e-300]
            {
                let t = t_quantile(tail, df).unwrap_or_else(|| panic!("no quantile at df {df}, tail {tail}"));
                assert!(t >= last, "not increasing at df {df}, tail {tail}: {t} < {last}");
                last = t;
            }
        }
        assert_eq!(t_quantile(0.0, 3.0), None);
        assert_eq!(t_quantile(0.6, 3.0), None);
        assert_eq!(t_quantile(0.025, 0.0), None);
        assert_eq!(t_quantile(0.025, f64::NAN), None);
    }

    #[test]
    fn swapping_the_sides_negates_the_interval() {
        let a = MeanStats { n: 12, sum: 3.0, sum_squares: 1.1 };
        let b = MeanStats { n: 30, sum: 6.0, sum_squares: 1.9 };
        let (ab, ba) = (welch_difference(a, b, 0.9).unwrap(), welch_difference(b, a, 0.9).unwrap());
        assert_eq!((ab.estimate, ab.low, ab.high), (-ba.estimate, -ba.high, -ba.low));
        let p = Proportion { events: 4, trials: 70 };
        let q = Proportion { events: 9, trials: 65 };
        let (pq, qp) = (proportion_difference(p, q, 0.9).unwrap(), proportion_difference(q, p, 0.9).unwrap());
        assert_eq!((pq.estimate, pq.low, pq.high), (-qp.estimate, -qp.high, -qp.low));
    }

    #[test]
    fn names() {
        assert_eq!(welch_name(0.95), "Welch's t (95 %)");
        assert_eq!(newcombe_name(0.95), "Newcombe hybrid score (95 %)");
        assert_eq!(welch_name(0.9), "Welch's t (90 %)");
        assert_eq!(newcombe_name(0.999), "Newcombe hybrid score (99.9 %)");
        assert_eq!(welch_name(0.975), "Welch's t (97.5 %)");
    }
}
