//! The PromQL obsctl sends, built from configurable metric and label names.
//!
//! # Exact increases
//! `increase()` extrapolates at the window's edges and drops the first value of a series
//! born inside the window. obsctl instead sums, per evaluation step, the reset-aware delta
//! of each counter since the step before:
//!
//! ```promql
//! sum_over_time(((m - last_over_time(m[1h] offset 60s)) >= 0 or (m + 0))[604799999ms:60s])
//! ```
//!
//! - `m - last_over_time(m[1h] offset 60s)` is what the counter gained since the step
//!   before (`last_over_time` over a range ignores staleness markers, so a scrape gap of
//!   under an hour does not lose the series);
//! - `>= 0` drops negative deltas (a counter reset), and `or (m + 0)` puts back the value
//!   after the reset — which is also the whole value of a series born in that step (`+ 0`
//!   drops the metric name as the subtraction does, so one series never shows up twice);
//! - summed over steps the deltas telescope to exactly `last sample − first sample`, with
//!   every reset accounted for.
//!
//! The subquery range is the window length minus 1 ms, evaluated at the window's end: its
//! steps fall in `(start, end]` on Prometheus 2.x (ranges closed at both ends) and 3.x
//! (left-open) alike. A step at `τ` holds the samples in `(τ − step, τ]`, so the result is
//! exact when the window's edges fall on the scrape grid and otherwise off by at most the
//! events of one scrape interval at each edge.

use anyhow::{bail, Result};

use crate::config::PrometheusNames;

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
        for metric in [
            &names.session_cost,
            &names.session_tokens,
            &names.tool_calls,
            &names.model_errors,
            &names.session_duration,
        ] {
            if !is_metric_name(metric) {
                bail!("invalid metric name {metric:?} in the configuration");
            }
        }
        for label in [&names.agent, &names.model, &names.provider, &names.token_type, &names.status] {
            if !is_label_name(label) {
                bail!("invalid label name {label:?} in the configuration");
            }
        }
        if step_seconds == 0 {
            bail!("the Prometheus step must be at least 1 second");
        }
        let matchers = agent.map(|a| format!("{}={}", names.agent, quote(a))).into_iter().collect();
        Ok(PromQl { names, step_seconds, matchers })
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

    /// `count by (__name__) (last_over_time({__name__=~"a|b"}[R]))`: which series exist.
    pub fn presence(&self, range_ms: i64) -> String {
        let names: Vec<String> = self.expected_series().iter().map(|n| regex_escape(n)).collect();
        let mut matchers = vec![format!("__name__=~\"{}\"", names.join("|"))];
        matchers.extend(self.matchers.iter().cloned());
        format!("count by (__name__) (last_over_time({{{}}}[{range_ms}ms]))", matchers.join(","))
    }

    /// The exact increase of `metric` over a window of `range_ms` ending at the evaluation
    /// time, summed `by` the given labels.
    pub fn increase_by(&self, metric: &str, by: &[&str], range_ms: i64) -> String {
        let m = self.selector(metric);
        let step = self.step_seconds;
        let delta = format!("(({m} - last_over_time({m}[1h] offset {step}s)) >= 0 or ({m} + 0))");
        let inner = format!("sum_over_time({delta}[{}ms:{step}s])", range_ms - 1);
        format!("sum by ({}) ({inner})", by.join(", "))
    }

    fn selector(&self, metric: &str) -> String {
        if self.matchers.is_empty() {
            metric.to_string()
        } else {
            format!("{metric}{{{}}}", self.matchers.join(","))
        }
    }
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

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
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
        assert_eq!(
            q.increase_by(&q.cost_sum(), &["agent", "model"], 604_800_000),
            "sum by (agent, model) (sum_over_time(((openclaw_session_cost_usd_sum - \
             last_over_time(openclaw_session_cost_usd_sum[1h] offset 60s)) >= 0 or (openclaw_session_cost_usd_sum + 0))\
             [604799999ms:60s]))"
        );
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
            q.presence(1000),
            "count by (__name__) (last_over_time({__name__=~\"openclaw_session_cost_usd_sum|openclaw_session_cost_usd_count|\
             openclaw_session_tokens_total|openclaw_tool_calls_total|openclaw_model_errors_total|\
             openclaw_session_duration_seconds_bucket\",agent=\"ops\"}[1000ms]))"
        );
    }
}
