//! The PromQL obsctl sends, built from configurable metric and label names.
//!
//! # Exact increases
//! `increase()` extrapolates at the window's edges and drops the first value of a series
//! born inside the window. obsctl instead sums, per evaluation step `τ` (every `S`
//! seconds, 60 by default), the reset-aware gain of each counter since the step before.
//! With `Y = last_over_time(m[1h])`, the per-step terms of a window asked as one piece, a
//! week at 60 s, are:
//!
//! ```promql
//! sum by (…) (
//!     label_replace(60 * sum_over_time(irate(Y[119999ms:60s])[604799999ms:60s]),
//!                   "obsctl_part", "delta", "", "")
//!   or
//!     label_replace(sum_over_time((Y unless last_over_time(m[1h] offset 60s))[604799999ms:60s]),
//!                   "obsctl_part", "birth", "", ""))
//! ```
//!
//! - `Y` at `τ` is the counter's last sample in `(τ − 1h, τ]`: `last_over_time` over a range
//!   ignores staleness markers, so a scrape gap of under an hour does not lose the series.
//! - `irate(Y[2S − 1ms:S])` sees exactly two points, `Y` at `τ − S` and at `τ`, and
//!   returns `(Y(τ) − Y(τ − S)) / S`, or `Y(τ) / S` when the counter went down (a reset:
//!   all it holds after the reset is new). Times `S`, that is the step's gain.
//! - A series born at `τ` (no `Y` at `τ − S`: no sample in the hour before) has no such
//!   pair: its whole value at `τ` is new, and the `unless` term adds it.
//! - The two terms are kept apart by `label_replace` (an `or` would drop one of them for a
//!   series that has both) and added by the `sum`. Summed over the steps, the gains
//!   telescope to exactly `last sample − first sample`, with every reset accounted for.
//!
//! The per-step terms lose a series silent for over an hour: when it comes back, `Y` at the
//! step before is empty and the `unless` term counts its whole value again (a Prometheus
//! outage would add each series' lifetime spend). So a series without a reset in the window
//! is taken whole, with no steps at all, exact across a gap of any length inside the window:
//! its last value in the window minus the last value before it (looked for up to 7 days, or
//! the window's length, before the window's start), or all of its last value
//! when it has none (born) or when that one is above the window's least value (restarted
//! across the start, silent until its next event, as a counter is after a restart: the
//! per-step terms would count all of it too). Only a series with a reset in the window is
//! counted by the per-step terms, which see each reset. The terms are kept apart by
//! `label_replace`, and the per-step ones join by `or ignoring(obsctl_part)`, which adds them
//! only for a series without a whole term. What stays inexact: in a series with a reset, a
//! silence of over an hour not caused by the restart (counted as a birth, as before), and a
//! restart hidden in a silence, after which the counter is back above its old value at its
//! first sample (no drop to see: taken whole, the counts before the restart are subtracted).
//!
//! The source asks for the cheap whole term alone first, piece by piece (about a day each,
//! [`PromQl::whole_or_unknown_by`]), then for the full form only for the pieces where some
//! series has a reset, and for the whole term with the long lookback ([`PromQl::whole_by`])
//! for those where one has no value in the piece before: the per-step terms are most of the
//! server's work.
//!
//! Why this shape: Prometheus evaluates a binary operator inside a subquery once per step
//! and series, hashing label sets each time, while range functions over a selector or a
//! subquery (`last_over_time`, `irate`, `sum_over_time`) run in a cheap per-series loop.
//! The former formula, `((m - last_over_time(m[1h] offset 60s)) >= 0 or (m + 0))`, had four
//! operators per step; this one has one (`unless`), and costs about a third of the server
//! time for the same figures.
//!
//! The outer subquery range is the window length minus 1 ms, evaluated at the window's
//! end: its steps fall in `(start, end]` on Prometheus 2.x (ranges closed at both ends) and
//! 3.x (left-open) alike; `2S − 1ms` likewise holds exactly two inner steps on both. A step
//! at `τ` holds the samples in `(τ − S, τ]`, so the result is exact when the window's edges
//! fall on the step grid and otherwise off by at most the events of one step at each edge.
//! Subquery steps are aligned to multiples of `S` since the epoch, whatever the evaluation
//! time, so the increases over adjacent windows (the days of a week) add up exactly to the
//! increase over their union where they meet on that grid.

use anyhow::{bail, Context, Result};

use crate::config::PrometheusNames;

/// `ceil(time() / 86400)` as a scalar (`ceil` takes only vectors): the evaluation time's
/// UTC day since the epoch, plus one unless it is exactly midnight.
const DAY: &str = "scalar(ceil(vector(time() / 86400)))";

/// How far before a window a series' last value is looked for (7 days, or the window's length
/// if longer, before its start): a series silent for longer across the window's start is
/// counted as born in it, with its whole value.
const FAR_LOOKBACK_MS: i64 = 7 * 86_400_000;

/// The label that keeps an increase's two terms apart until they are summed.
const PART: &str = "obsctl_part";

/// Builds the queries for one set of names, step and filters.
#[derive(Clone, Debug)]
pub struct PromQl {
    names: PrometheusNames,
    step_seconds: u64,
    /// Label matchers from `--agent` filters, already escaped: `agent="main"`.
    matchers: Vec<String>,
}

impl PromQl {
    pub fn new(names: PrometheusNames, step_seconds: u64, agent: Option<&str>) -> Result<PromQl> {
        names.check().context("in the configuration")?;
        if step_seconds == 0 {
            bail!("the Prometheus step must be at least 1 second");
        }
        let matchers = agent.map(|a| format!("{}={}", names.agent, quote(a))).into_iter().collect();
        Ok(PromQl { names, step_seconds, matchers })
    }

    /// Adds the `--agent` and `--model` filters as label matchers of every series read. No
    /// metric carries an experiment: `--experiment` is refused.
    pub fn with_filters(mut self, filters: &super::filter::Filters) -> Result<PromQl> {
        if !filters.experiments.is_empty() {
            bail!(
                "--experiment needs Loki or the local files: no Prometheus metric carries an experiment label \
                 (use --source auto, loki or jsonl)"
            );
        }
        self.matchers.extend(filters.promql_matchers(&self.names.agent, &self.names.model));
        Ok(self)
    }

    pub fn names(&self) -> &PrometheusNames {
        &self.names
    }

    pub fn cost_sum(&self) -> String {
        format!("{}_sum", self.names.session_cost)
    }

    pub fn cost_count(&self) -> String {
        format!("{}_count", self.names.session_cost)
    }

    pub fn duration_bucket(&self) -> String {
        format!("{}_bucket", self.names.session_duration)
    }

    /// Every series a digest reads, for the check that they exist at all.
    pub fn expected_series(&self) -> Vec<String> {
        vec![
            self.cost_sum(),
            self.cost_count(),
            self.names.session_tokens.clone(),
            self.names.tool_calls.clone(),
            self.names.model_errors.clone(),
            self.duration_bucket(),
        ]
    }

    /// The selector for the series API that tells which of [`Self::expected_series`] exist
    /// (an index lookup, unlike a query that reads their samples).
    /// Without the filters' matchers: a filter that selects nothing is an empty report,
    /// not a missing series.
    pub fn presence_selector(&self) -> String {
        let names: Vec<String> = self.expected_series().iter().map(|n| regex_escape(n)).collect();
        format!("{{__name__=~\"{}\"}}", names.join("|"))
    }

    /// The exact increase of `metric` over a window of `range_ms` ending at the evaluation
    /// time, summed `by` the given labels (see the module doc).
    pub fn increase_by(&self, metric: &str, by: &[&str], range_ms: i64) -> String {
        self.piece_increase_by(metric, by, range_ms, range_ms)
    }

    /// [`Self::increase_by`] over one piece (`range_ms` long, ending at the evaluation time)
    /// of a window `window_ms` long: a series silent since before the piece is looked for as
    /// far back as it would be from the window's start (a Prometheus outage inside a long
    /// window is no birth either), wherever the piece lies in the window.
    pub fn piece_increase_by(&self, metric: &str, by: &[&str], range_ms: i64, window_ms: i64) -> String {
        let (gain, birth) = self.step_terms(metric);
        let step = self.step_seconds;
        let window = format!("[{}ms:{step}s]", range_ms - 1);
        let delta = format!("{step} * sum_over_time({gain}{window})");
        let birth = format!("sum_over_time({birth}{window})");
        parts(by, Some(&self.whole_increase(metric, range_ms, far_ms(range_ms, window_ms))), &delta, &birth)
    }

    /// The increase of `metric` over one piece of a window (`piece_ms` long, ending at the
    /// evaluation time), summed `by` the labels, when every series in it can be taken whole
    /// against its value in the piece before: the cheap first try of [`Self::increase_by`],
    /// a few reads of each series' samples and no subquery. A series that cannot be makes its
    /// group's sum `-Inf` when it has a reset in the piece (the piece needs the per-step
    /// terms), `+Inf` when it has no value in the piece before (born, or back from a longer
    /// silence: [`Self::whole_by`] will do), NaN when the group holds both.
    pub fn whole_or_unknown_by(&self, metric: &str, by: &[&str], piece_ms: i64) -> String {
        let m = self.selector(metric);
        let before = format!("last_over_time({m}[{piece_ms}ms] offset {piece_ms}ms)");
        let last = format!("last_over_time({m}[{piece_ms}ms])");
        let whole = self.taken_whole(metric, piece_ms, &before, &format!("{before} * 0"));
        format!(
            "sum by ({}) ({whole} or ((resets({m}[{piece_ms}ms]) > 0) * 0 - Inf) or ({last} * 0 + Inf))",
            by.join(", ")
        )
    }

    /// The whole term alone over one piece of a window `window_ms` long, summed `by` the
    /// labels: exact for a piece where no series has a reset (births and silences are whole),
    /// at a fraction of the full form's cost.
    pub fn whole_by(&self, metric: &str, by: &[&str], piece_ms: i64, window_ms: i64) -> String {
        format!("sum by ({}) ({})", by.join(", "), self.whole_increase(metric, piece_ms, far_ms(piece_ms, window_ms)))
    }

    /// The increase of every series without a reset in the window, taken whole: exact across
    /// a scrape gap of any length, where the per-step terms count a series that comes back
    /// after more than an hour as born again, with its whole value. A series with a reset is
    /// left out here and taken from the per-step terms, which count each one.
    ///
    /// The value before the window is looked for as far back as `far_ms`: [`FAR_LOOKBACK_MS`]
    /// (or the window's length, if longer) before the window the piece is part of. A series
    /// silent across the start (a Prometheus outage over a weekend) is not taken as born.
    fn whole_increase(&self, metric: &str, range_ms: i64, far_ms: i64) -> String {
        let before = format!("last_over_time({}[{far_ms}ms] offset {range_ms}ms)", self.selector(metric));
        let last = format!("last_over_time({}[{range_ms}ms])", self.selector(metric));
        self.taken_whole(metric, range_ms, &before, &format!("{last} * 0"))
    }

    /// `LAST − BEFORE` for each series without a reset in the window, with `LAST` its last
    /// value in the window and `BEFORE` the given last value before it. Where `BEFORE` is above
    /// the window's least value, the counter restarted across the start (silent, as a counter
    /// is after a restart until its next event) and all of `LAST` is new: `BEFORE` counts as 0,
    /// as the per-step terms would count it. Where there is no `BEFORE`, `unknown` stands for
    /// it: zero (born: all of it is new) or nothing (the series is left out).
    fn taken_whole(&self, metric: &str, range_ms: i64, before: &str, unknown: &str) -> String {
        let m = self.selector(metric);
        let last = format!("last_over_time({m}[{range_ms}ms])");
        let least = format!("min_over_time({m}[{range_ms}ms])");
        format!("(({last} - (({before} <= {least}) or ({unknown}))) unless resets({m}[{range_ms}ms]) > 0)")
    }

    /// PromQL's own `increase()` of `metric` over `range_ms`, summed `by` the labels: it
    /// extrapolates at the window's edges and misses the first value of a series born in
    /// the window, so it is used only where a ratio is wanted, not a sum — the quantiles
    /// of the duration histogram, whose buckets all scale alike. It costs a fraction of
    /// the exact form (one range function per series, no subquery).
    pub fn plain_increase_by(&self, metric: &str, by: &[&str], range_ms: i64) -> String {
        format!("sum by ({}) (increase({}[{range_ms}ms]))", by.join(", "), self.selector(metric))
    }

    /// The exact increase of `metric` since the last midnight UTC at or before the
    /// evaluation time `T`, summed `by` the given labels: the steps of the last day
    /// `τ ∈ (T − 1d, T]` that close the same UTC day as `T`. A step closes the day
    /// `D(τ) = ceil(τ / 86400) − 1` (a step at midnight holds the minute before it), and the
    /// last day's steps close `D(T) − 1` or `D(T)`, so with `g(τ)` a step's gain,
    ///
    /// `Σ g(τ)·[D(τ) = D(T)] = Σ g(τ)·D(τ) − (D(T) − 1)·Σ g(τ)`,
    ///
    /// which PromQL can evaluate: `time()` is `τ` inside a subquery and `T` outside. Both
    /// sums are exact; their difference is off by float rounding only (about 10⁻¹¹ of the
    /// day's figure, since `D` is about 2·10⁴).
    pub fn increase_today_by(&self, metric: &str, by: &[&str]) -> String {
        let (gain, birth) = self.step_terms(metric);
        let step = self.step_seconds;
        let window = format!("[{}ms:{step}s]", 86_400_000 - 1);
        let today = |term: &str, scale: &str| {
            format!(
                "({scale}sum_over_time(({term} * ({DAY} - 1)){window}) - ({DAY} - 2) * {scale}sum_over_time({term}{window}))"
            )
        };
        // No whole increase here: "since midnight" moves with the evaluation time, and an
        // `offset` cannot, so a series back from a gap of over an hour is counted again.
        parts(by, None, &today(&gain, &format!("{step} * ")), &today(&birth, ""))
    }

    pub fn step_seconds(&self) -> u64 {
        self.step_seconds
    }

    /// What one step `τ` adds, in two terms: `irate` over the pair of steps `τ − step`, `τ`
    /// (the gain divided by the step), and the whole value of a series born at `τ`.
    fn step_terms(&self, metric: &str) -> (String, String) {
        let m = self.selector(metric);
        let step = self.step_seconds;
        let last = format!("last_over_time({m}[1h])");
        // Two inner steps, `τ − step` and `τ`, on Prometheus 2.x and 3.x alike.
        let pair_ms = 2 * step * 1000 - 1;
        let gain = format!("irate({last}[{pair_ms}ms:{step}s])");
        let birth = format!("({last} unless last_over_time({m}[1h] offset {step}s))");
        (gain, birth)
    }

    fn selector(&self, metric: &str) -> String {
        if self.matchers.is_empty() {
            metric.to_string()
        } else {
            format!("{metric}{{{}}}", self.matchers.join(","))
        }
    }
}

/// How far before a piece (`range_ms` long, the last of a window `window_ms` long) its
/// series' last value is looked for: as far as [`FAR_LOOKBACK_MS`] (or the window's length,
/// if longer) before the window's start.
fn far_ms(range_ms: i64, window_ms: i64) -> i64 {
    window_ms - range_ms + window_ms.max(FAR_LOOKBACK_MS)
}

/// `sum by (…)` of an increase's terms: the whole increase of each series that has one, else
/// its two per-step terms, kept apart by a label until the sum adds them (`or ignoring` adds
/// a series' per-step terms only when it has no whole increase).
fn parts(by: &[&str], whole: Option<&str>, delta: &str, birth: &str) -> String {
    let steps = format!(
        "label_replace({delta}, \"{PART}\", \"delta\", \"\", \"\") or \
         label_replace({birth}, \"{PART}\", \"birth\", \"\", \"\")"
    );
    let terms = match whole {
        Some(whole) => {
            format!("label_replace({whole}, \"{PART}\", \"whole\", \"\", \"\") or ignoring({PART}) ({steps})")
        }
        None => steps,
    };
    format!("sum by ({}) ({terms})", by.join(", "))
}

/// A PromQL string literal: no value can end the string or change the query.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn regex_escape(name: &str) -> String {
    // Metric names hold only [a-zA-Z0-9_:], none of which is special in a regex.
    name.to_string()
}

pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_query_shape() {
        let q = PromQl::new(PrometheusNames::default(), 60, None).unwrap();
        let m = "openclaw_session_cost_usd_sum";
        let week = q.increase_by(&q.cost_sum(), &["agent", "model"], 604_800_000);
        let last = format!("last_over_time({m}[604800000ms])");
        let least = format!("min_over_time({m}[604800000ms])");
        let before = format!("last_over_time({m}[604800000ms] offset 604800000ms)");
        let whole = format!("(({last} - (({before} <= {least}) or ({last} * 0))) unless resets({m}[604800000ms]) > 0)");
        assert_eq!(
            week,
            format!(
                "sum by (agent, model) (label_replace({whole}, \"obsctl_part\", \"whole\", \"\", \"\") or \
                 ignoring(obsctl_part) (label_replace(60 * sum_over_time(irate(last_over_time({m}[1h])\
                 [119999ms:60s])[604799999ms:60s]), \"obsctl_part\", \"delta\", \"\", \"\") or label_replace(\
                 sum_over_time((last_over_time({m}[1h]) unless last_over_time({m}[1h] offset 60s))\
                 [604799999ms:60s]), \"obsctl_part\", \"birth\", \"\", \"\")))"
            )
        );
        // The pair of inner steps follows the step.
        let q = PromQl::new(PrometheusNames::default(), 240, None).unwrap();
        let query = q.increase_by("m", &[], 86_400_000);
        assert!(query.contains("240 * sum_over_time(irate(last_over_time(m[1h])[479999ms:240s])[86399999ms:240s])"));
        assert!(query.contains("unless last_over_time(m[1h] offset 240s))[86399999ms:240s]"), "{query}");
        // A day looks 7 days back for a value before it; a window longer than that, as far as
        // its own length.
        assert!(query.contains("last_over_time(m[604800000ms] offset 86400000ms)"), "{query}");
        // The last day of a week looks back to 7 days before the week: 6 + 7 days.
        let piece = q.piece_increase_by("m", &[], 86_400_000, 604_800_000);
        assert!(piece.contains("last_over_time(m[1123200000ms] offset 86400000ms)"), "{piece}");
        let month = q.increase_by("m", &[], 30 * 86_400_000);
        assert!(month.contains("last_over_time(m[2592000000ms] offset 2592000000ms)"), "{month}");
    }

    #[test]
    fn whole_or_unknown_shape() {
        let q = PromQl::new(PrometheusNames::default(), 60, Some("ops")).unwrap();
        let m = r#"m{agent="ops"}"#;
        let (last, least) = (format!("last_over_time({m}[86400000ms])"), format!("min_over_time({m}[86400000ms])"));
        let before = format!("last_over_time({m}[86400000ms] offset 86400000ms)");
        assert_eq!(
            q.whole_or_unknown_by("m", &["model"], 86_400_000),
            format!(
                "sum by (model) ((({last} - (({before} <= {least}) or ({before} * 0))) unless resets({m}[86400000ms]) > 0) \
                 or ((resets({m}[86400000ms]) > 0) * 0 - Inf) or ({last} * 0 + Inf))"
            )
        );
    }

    #[test]
    fn whole_alone_looks_back_from_the_window() {
        let q = PromQl::new(PrometheusNames::default(), 60, None).unwrap();
        let (l, least) = ("last_over_time(m[86400000ms])", "min_over_time(m[86400000ms])");
        // The last day of a week: 6 days of the window and 7 before it.
        let before = "last_over_time(m[1123200000ms] offset 86400000ms)";
        assert_eq!(
            q.whole_by("m", &["type"], 86_400_000, 604_800_000),
            format!("sum by (type) ((({l} - (({before} <= {least}) or ({l} * 0))) unless resets(m[86400000ms]) > 0))")
        );
    }

    #[test]
    fn today_weights_each_step_by_its_day() {
        let q = PromQl::new(PrometheusNames::default(), 60, None).unwrap();
        let query = q.increase_today_by("m", &["agent"]);
        let gain = "irate(last_over_time(m[1h])[119999ms:60s])";
        assert!(query.starts_with(&format!(
            "sum by (agent) (label_replace((60 * sum_over_time(({gain} * ({DAY} - 1))[86399999ms:60s]) \
             - ({DAY} - 2) * 60 * sum_over_time({gain}[86399999ms:60s])), \"obsctl_part\", \"delta\""
        )));
        assert!(query.contains(
            "label_replace((sum_over_time(((last_over_time(m[1h]) unless last_over_time(m[1h] offset 60s)) * \
             (scalar(ceil(vector(time() / 86400))) - 1))[86399999ms:60s]) - (scalar(ceil(vector(time() / 86400))) - 2) \
             * sum_over_time("
        ));
    }

    #[test]
    fn user_values_cannot_change_the_query() {
        let evil = "main\"} or vector(1e9) or x{a=\"";
        let q = PromQl::new(PrometheusNames::default(), 60, Some(evil)).unwrap();
        let query = q.increase_by("m", &["agent"], 1000);
        assert!(query.contains(r#"m{agent="main\"} or vector(1e9) or x{a=\""}"#), "{query}");
        assert_eq!(quote("a\\b\n"), r#""a\\b\n""#);
        assert_eq!(quote("\u{7}"), r#""\u0007""#);
    }

    #[test]
    fn configured_names_are_checked() {
        let bad = PrometheusNames { session_cost: "cost{job=\"x\"}".into(), ..Default::default() };
        assert!(PromQl::new(bad, 60, None).is_err());
        let bad = PrometheusNames { agent: "agent-id".into(), ..Default::default() };
        assert!(PromQl::new(bad, 60, None).is_err());
        assert!(PromQl::new(PrometheusNames::default(), 0, None).is_err());
    }

    #[test]
    fn presence_lists_every_series() {
        let q = PromQl::new(PrometheusNames::default(), 60, Some("ops")).unwrap();
        assert_eq!(
            q.presence_selector(),
            "{__name__=~\"openclaw_session_cost_usd_sum|openclaw_session_cost_usd_count|openclaw_session_tokens_total|\
             openclaw_tool_calls_total|openclaw_model_errors_total|openclaw_session_duration_seconds_bucket\"}"
        );
    }
}
