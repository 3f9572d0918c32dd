//! The Loki ruler's rule file: sessions over their budget, and the failed-run and
//! tool-failure rates of each experiment variant.
//!
//! Every expression is made of the Loki source's own pipelines (`LogQl::rule_cost`,
//! `rule_outcomes`), so a line counts here exactly when it counts in
//! `obsctl digest --source loki` and in the JSONL files: the same shapes, the same lines
//! skipped. The source asks one query per shape and cost field and adds the answers itself;
//! a rule is one expression, so the pieces are added in LogQL, kept apart by a label until
//! the `sum` adds them (an `or` alone would drop one of two series with the same labels, as
//! a shape-B session with and without `estimatedCostUsd` has):
//!
//! ```logql
//! sum by (agent, sessionId, sessionKey) (
//!     label_replace(<shape A cost>, "obsctl_part", "a.costUsd", "", "")
//!   or label_replace(<shape B cost>, "obsctl_part", "b.estimatedCostUsd", "", "")
//!   or …) > 2
//! ```
//!
//! A range `[R]` at the ruler's evaluation time `t` holds `(t − R, t]`. Grouping by session
//! is bounded by Loki's `max_query_series` (500, per split of the query): a ruler query
//! cannot be split by obsctl, so the session budget is checked over the last hour (few
//! sessions) and, as its own rule, since the session started within a lookback (default
//! 24 h); if the longer one is refused, the hourly one still alerts.

use super::{number, Group, Kind, RateLimit, Rule, RuleFile, Span};
use crate::source::logql::{Class, Expr, LogQl, Shape, Value, EXPERIMENT_LABELS};

/// The labels a session's series carries: the stream's agent, and both spellings of a
/// session (shape A and C `sessionId`, shape B `sessionKey`).
pub const SESSION_BY: [&str; 3] = ["agent", "sessionId", "sessionKey"];

/// What the Loki file holds.
#[derive(Clone, Debug)]
pub struct LokiRules {
    pub logql: LogQl,
    /// USD per session (`--session-budget`).
    pub session_budget: Option<f64>,
    /// How far back "since the session started" looks (`--session-lookback`, default 24h).
    pub session_lookback: Span,
    pub failed_run_rate: Option<RateLimit>,
    pub tool_failure_rate: Option<RateLimit>,
    /// Runs (or tool calls) a variant needs in the window before its rate alerts.
    pub min_runs: u64,
    /// Flags the runbooks' `obsctl` commands need (`--loki-selector …`), as template text,
    /// starting with a space when not empty.
    pub digest_flags: String,
}

pub fn generate(r: &LokiRules) -> RuleFile {
    let mut groups = Vec::new();
    if let Some(usd) = r.session_budget {
        let hour = Span { ms: 3_600_000, text: "1h".into() };
        let mut rules = vec![session_budget(r, usd, &r.session_lookback, true)];
        if r.session_lookback != hour {
            rules.push(session_budget(r, usd, &hour, false));
        }
        groups.push(Group { name: "obsctl-loki-sessions".into(), interval: "1m".into(), rules });
    }
    let mut variants = Vec::new();
    if let Some(limit) = &r.failed_run_rate {
        variants.push(variant_rate(r, limit, Outcome::Runs));
    }
    if let Some(limit) = &r.tool_failure_rate {
        variants.push(variant_rate(r, limit, Outcome::ToolCalls));
    }
    if !variants.is_empty() {
        groups.push(Group { name: "obsctl-loki-variants".into(), interval: "1m".into(), rules: variants });
    }
    RuleFile {
        header: vec![
            format!("Loki ruler rules written by obsctl {} (`obsctl rules --target loki`).", env!("CARGO_PKG_VERSION")),
            "Regenerate rather than edit: the expressions are the Loki source's own queries.".into(),
        ],
        groups,
    }
}

/// The pieces of one figure (one per shape, or per shape and cost field), added up by
/// `by` over the last `span`.
pub fn total(pieces: &[(String, Expr)], by: &[&str], span: &Span) -> String {
    let parts: Vec<String> = pieces
        .iter()
        .map(|(part, e)| {
            // A span is whole milliseconds (`Span::parse`), which LogQL can write.
            let text = e.render(0, span.nanos(), Class::ALL).unwrap_or_default();
            format!("label_replace({text}, \"obsctl_part\", \"{part}\", \"\", \"\")")
        })
        .collect();
    format!("sum by ({}) ({})", by.join(", "), parts.join(" or "))
}

/// The known cost of model calls, every shape and cost field.
pub fn cost_pieces(q: &LogQl, by: &[&str]) -> Vec<(String, Expr)> {
    Shape::ALL
        .iter()
        .flat_map(|&shape| {
            shape
                .legs(Value::Cost)
                .iter()
                .map(move |&leg| (format!("{}.{}", shape_name(shape), leg.field), q.rule_cost(leg, by)))
        })
        .collect()
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::A => "a",
        Shape::B => "b",
        Shape::C => "c",
    }
}

fn each_shape(f: impl Fn(Shape) -> Expr) -> Vec<(String, Expr)> {
    Shape::ALL.iter().map(|&s| (shape_name(s).to_string(), f(s))).collect()
}

const SESSION: &str = "{{ or $labels.sessionId $labels.sessionKey }}{{ with $labels.agent }} (agent {{ . }}){{ end }}";
const VARIANT: &str = "experiment {{ or $labels.experimentId $labels.experiment_id $labels.experiment \"(none)\" }} \
                       variant {{ or $labels.variant $labels.experiment_variant \"(none)\" }}";

fn session_budget(r: &LokiRules, usd: f64, span: &Span, since_start: bool) -> Rule {
    let usd = number(usd);
    let expr = format!("{} > {usd}", total(&cost_pieces(&r.logql, &SESSION_BY), &SESSION_BY, span));
    let w = &span.text;
    let scope = if since_start { format!("since it started (within {w})") } else { format!("in the last {w}") };
    Rule {
        kind: Kind::Alert("AgentSessionOverBudget".into()),
        expr,
        labels: vec![
            ("severity".into(), "critical".into()),
            ("scope".into(), if since_start { "session".into() } else { format!("last {w}") }),
        ],
        annotations: vec![
            ("summary".into(), format!("Session {SESSION} cost ${{{{ printf \"%.2f\" $value }}}} {scope}, over its budget of ${usd}")),
            (
                "description".into(),
                format!(
                    "The known cost of session {SESSION}'s model calls {scope} is ${{{{ printf \"%.2f\" $value }}}}, over \
                     the per-session budget of ${usd}: consider pausing it. The figure adds the telemetry stream's model \
                     calls of every shape, as obsctl digest --source loki does."
                ),
            ),
            ("runbook".into(), format!("obsctl gate --last {w} --source loki --max-session-cost {usd}{}", r.digest_flags)),
        ],
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Runs,
    ToolCalls,
}

fn variant_rate(r: &LokiRules, limit: &RateLimit, what: Outcome) -> Rule {
    let q = &r.logql;
    let by = EXPERIMENT_LABELS;
    let (failed, all) = match what {
        Outcome::Runs => (
            each_shape(|s| q.rule_outcomes(s, false, true, &by)),
            each_shape(|s| q.rule_outcomes(s, false, false, &by)),
        ),
        Outcome::ToolCalls => {
            (each_shape(|s| q.rule_outcomes(s, true, true, &by)), each_shape(|s| q.rule_outcomes(s, true, false, &by)))
        }
    };
    let (failed, all) = (total(&failed, &by, &limit.span), total(&all, &by, &limit.span));
    let expr = format!("({failed} / {all}) > {} and {all} >= {}", number(limit.rate), r.min_runs);
    let (name, figure, counted) = match what {
        Outcome::Runs => ("VariantFailedRunRateHigh", "failed runs", "runs"),
        Outcome::ToolCalls => ("VariantToolFailureRateHigh", "failed tool calls", "tool calls"),
    };
    let (w, pct) = (&limit.span.text, limit.percent());
    Rule {
        kind: Kind::Alert(name.into()),
        expr,
        labels: vec![("severity".into(), "warning".into()), ("window".into(), w.clone())],
        annotations: vec![
            ("summary".into(), format!("{VARIANT}: {{{{ $value | humanizePercentage }}}} {figure} in {w} (limit {pct})")),
            (
                "description".into(),
                format!(
                    "In {VARIANT}, {{{{ $value | humanizePercentage }}}} of the {counted} of the last {w} failed, over the \
                     limit of {pct} (alerting from {} {counted} on). Counted as obsctl digest --source loki counts them, \
                     every event shape.",
                    r.min_runs
                ),
            ),
            ("runbook".into(), format!("obsctl digest --last {w} --source loki --format json{}", r.digest_flags)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LokiRules {
        LokiRules {
            logql: LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap(),
            session_budget: Some(2.0),
            session_lookback: Span::parse("24h").unwrap(),
            failed_run_rate: Some(RateLimit::parse("20%/1h").unwrap()),
            tool_failure_rate: Some(RateLimit::parse("10%/1h").unwrap()),
            min_runs: 10,
            digest_flags: String::new(),
        }
    }

    #[test]
    fn session_cost_adds_every_shape_and_cost_field() {
        let file = generate(&rules());
        let names: Vec<(&str, &str)> = file.rules().map(|(g, r)| (g.name.as_str(), r.name())).collect();
        assert_eq!(
            names,
            [
                ("obsctl-loki-sessions", "AgentSessionOverBudget"),
                ("obsctl-loki-sessions", "AgentSessionOverBudget"),
                ("obsctl-loki-variants", "VariantFailedRunRateHigh"),
                ("obsctl-loki-variants", "VariantToolFailureRateHigh"),
            ]
        );
        let (_, since) = file.rules().next().unwrap();
        let q = LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap();
        let b2 = q
            .rule_cost(Shape::B.legs(Value::Cost)[1], &SESSION_BY)
            .render(0, 86_400 * crate::window::NANOS_PER_SEC, Class::ALL)
            .unwrap();
        assert!(since.expr.contains(&format!("label_replace({b2}, \"obsctl_part\", \"b.costUsd\", \"\", \"\")")));
        assert!(since.expr.starts_with("sum by (agent, sessionId, sessionKey) (label_replace(sum by (agent, sessionId, sessionKey) (sum_over_time("));
        assert!(
            since.expr.ends_with("[86400s])), \"obsctl_part\", \"c.data_costUsd\", \"\", \"\")) > 2"),
            "{}",
            since.expr
        );
        assert_eq!(since.expr.matches(" or label_replace(").count(), 3);
        assert!(!since.expr.contains("ns]"), "LogQL ranges never take ns");
    }

    #[test]
    fn variant_rates_guard_on_volume() {
        let file = generate(&rules());
        let runs = file.rules().nth(2).unwrap().1;
        assert!(
            runs.expr.ends_with(") >= 10")
                || runs.expr.ends_with("[3600s])), \"obsctl_part\", \"c\", \"\", \"\")) >= 10"),
            "{}",
            runs.expr
        );
        assert!(runs.expr.starts_with(
            "(sum by (experimentId, experiment_id, experiment, variant, experiment_variant) (label_replace("
        ));
        assert!(runs.expr.contains(") > 0.2 and sum by ("), "{}", runs.expr);
        let mut one = rules();
        one.session_lookback = Span::parse("1h").unwrap();
        one.failed_run_rate = None;
        assert_eq!(generate(&one).rules().count(), 2);
    }
}
