//! The Prometheus rule file: hourly recording rules and the cost and error alerts.
//!
//! # Hourly figures that add up to the digest's
//! A recording rule is one instant query, evaluated by its group at times Prometheus
//! chooses (every `interval`, at an offset of its own). The digest's exact increase over a
//! window of `R` ending at `T` sums the step gains of the steps `τ ∈ (T − R, T]`, and the
//! steps are multiples of the step since the epoch, whatever `T` is. The hourly rules wrap
//! the one-hour increase in a subquery of one point per hour,
//!
//! ```promql
//! last_over_time((sum by (agent, model, provider) (INC_1h(cost)))[3599999ms:1h])
//! ```
//!
//! whose only point is the last whole hour `H ≤ T` (subquery points are multiples of their
//! step since the epoch; `(T − 1h + 1 ms, T]` holds exactly one, on Prometheus 2.x and 3.x).
//! So the series `obsctl:cost_usd:hourly` recorded at any time in `[H, H + 1h)` holds the
//! cost of the clock hour `(H − 1h, H]`, the same steps a digest of that hour adds, and
//! the hours of a window add up to the digest's figure for it. (The group evaluates once an
//! hour, so each hour is recorded once, stamped with its evaluation time in the hour after.)
//!
//! # Alerts
//! Evaluated every minute over a rolling window ending at the evaluation time, with the
//! same exact increase: a series born in the window counts its first value, a counter reset
//! counts only what came after it (`increase()` would lose the first and extrapolate).
//! The daily budget counts the steps of the current UTC day (`PromQl::increase_today_by`).

use anyhow::{bail, Result};

use super::{number, shell_quoted_label, CostLimit, Group, Kind, RateLimit, Rule, RuleFile};
use crate::source::promql::PromQl;

/// Recorded series names: fixed, whatever the metrics are called, so dashboards keep them.
pub const HOURLY_COST: &str = "obsctl:cost_usd:hourly";
pub const HOURLY_SESSIONS: &str = "obsctl:sessions:hourly";
pub const HOURLY_TOKENS: &str = "obsctl:tokens:hourly";

/// The most points Prometheus evaluates in one subquery (its limit is 11,000).
const MAX_POINTS: i64 = 11_000;

/// What the Prometheus file holds.
#[derive(Clone, Debug)]
pub struct PrometheusRules {
    /// Metric and label names, and the step of the exact increase.
    pub promql: PromQl,
    /// The total cost over a window (`--spike`).
    pub spike: Option<CostLimit>,
    /// One label's cost over a window (`--spike-per agent=2/1h`): the label (validated), its limit.
    pub spike_per: Vec<(String, CostLimit)>,
    /// The cost of the current UTC day (`--daily-budget`).
    pub daily_budget: Option<f64>,
    /// Model errors per costed session, per model (`--error-rate`), when at least `min_errors`.
    pub error_rate: Option<RateLimit>,
    pub min_errors: u64,
    /// Flags the runbooks' `obsctl digest` commands need to read the same series
    /// (`--config FILE`), as template text, starting with a space when not empty.
    pub digest_flags: String,
}

pub fn generate(r: &PrometheusRules) -> Result<RuleFile> {
    let q = &r.promql;
    for limit in r.spike.iter().chain(r.spike_per.iter().map(|(_, l)| l)) {
        check_points(q, limit.span.ms, "spike window")?;
    }
    if let Some(e) = &r.error_rate {
        check_points(q, e.span.ms, "error-rate window")?;
    }
    check_points(q, 86_400_000, "daily budget")?;
    let mut alerts = Vec::new();
    if let Some(limit) = &r.spike {
        alerts.push(spike(r, None, limit));
    }
    for (label, limit) in &r.spike_per {
        alerts.push(spike(r, Some(label), limit));
    }
    if let Some(usd) = r.daily_budget {
        alerts.push(daily_budget(r, usd));
    }
    if let Some(limit) = &r.error_rate {
        alerts.push(error_rate(r, limit));
    }
    let mut groups = vec![hourly(q)];
    if !alerts.is_empty() {
        groups.push(Group { name: "obsctl-alerts".into(), interval: "1m".into(), rules: alerts });
    }
    Ok(RuleFile {
        header: vec![
            format!(
                "Prometheus rules written by obsctl {} (`obsctl rules --target prometheus`).",
                env!("CARGO_PKG_VERSION")
            ),
            "Regenerate rather than edit: the expressions are the digest's exact increases.".into(),
        ],
        groups,
    })
}

fn check_points(q: &PromQl, ms: i64, what: &str) -> Result<()> {
    let step_ms = q.step_seconds() as i64 * 1000;
    if ms / step_ms > MAX_POINTS {
        bail!(
            "the {what} of {} s needs {} steps of {} s, more than the {MAX_POINTS} Prometheus evaluates in a subquery: \
             give a larger --prometheus-step",
            ms / 1000,
            ms / step_ms,
            step_ms / 1000
        );
    }
    Ok(())
}

/// Each clock hour's cost, costed sessions and tokens (see the module doc).
fn hourly(q: &PromQl) -> Group {
    let n = q.names();
    let aligned = |inner: String| format!("last_over_time(({inner})[3599999ms:1h])");
    let hour = 3_600_000;
    let by_model: [&str; 3] = [&n.agent, &n.model, &n.provider];
    let by_type: [&str; 4] = [&n.agent, &n.model, &n.provider, &n.token_type];
    let record = |name: &str, expr: String| Rule {
        kind: Kind::Record(name.into()),
        expr: aligned(expr),
        labels: vec![],
        annotations: vec![],
    };
    Group {
        name: "obsctl-hourly".into(),
        interval: "1h".into(),
        rules: vec![
            record(HOURLY_COST, q.increase_by(&q.cost_sum(), &by_model, hour)),
            record(HOURLY_SESSIONS, q.increase_by(&q.cost_count(), &by_model, hour)),
            record(HOURLY_TOKENS, q.increase_by(&n.session_tokens, &by_type, hour)),
        ],
    }
}

const VALUE_USD: &str = "${{ printf \"%.2f\" $value }}";

fn digest_cmd(r: &PrometheusRules, window: &str) -> String {
    format!("obsctl digest {window} --source prometheus{}", r.digest_flags)
}

/// The cost over a window, in total or per value of `label`.
fn spike(r: &PrometheusRules, label: Option<&str>, limit: &CostLimit) -> Rule {
    let q = &r.promql;
    let by: Vec<&str> = label.into_iter().collect();
    let expr = format!("{} > {}", q.increase_by(&q.cost_sum(), &by, limit.span.ms), number(limit.usd));
    let (w, usd) = (&limit.span.text, number(limit.usd));
    let last = format!("--last {w}");
    let (name, summary, description, runbook) = match label {
        None => (
            "AgentCostSpike".to_string(),
            format!("Agents spent {VALUE_USD} in {w} (limit ${usd})"),
            format!(
                "The agents' cost over the last {w} is {VALUE_USD}, over the limit of ${usd}. The figure is the exact, \
                 reset-aware increase of {} that obsctl digest reports.",
                q.cost_sum()
            ),
            digest_cmd(r, &last),
        ),
        Some(l) => {
            // The digest filters by agent and by model; other labels have no filter.
            let filter = if *l == q.names().agent {
                format!(" --agent {}", shell_quoted_label(l))
            } else if *l == q.names().model {
                format!(" --model {}", shell_quoted_label(l))
            } else {
                String::new()
            };
            (
                format!("AgentCostSpikeBy{}", camel(l)),
                format!("{l} {{{{ $labels.{l} }}}} spent {VALUE_USD} in {w} (limit ${usd})"),
                format!(
                    "The cost of {l} {{{{ $labels.{l} }}}} over the last {w} is {VALUE_USD}, over the limit of ${usd} \
                     per {l}. The figure is the exact, reset-aware increase of {} that obsctl digest reports.",
                    q.cost_sum()
                ),
                digest_cmd(r, &format!("{last}{filter}")),
            )
        }
    };
    alert(name, expr, "warning", Some(w), [summary, description, runbook])
}

/// The cost of the current UTC day.
fn daily_budget(r: &PrometheusRules, usd: f64) -> Rule {
    let q = &r.promql;
    let usd = number(usd);
    let expr = format!("{} > {usd}", q.increase_today_by(&q.cost_sum(), &[]));
    alert(
        "AgentDailyBudgetExceeded".into(),
        expr,
        "critical",
        None,
        [
            format!("Agents spent {VALUE_USD} today (UTC), over the daily budget of ${usd}"),
            format!(
                "The agents' cost since 00:00 UTC is {VALUE_USD}, over the daily budget of ${usd}. The figure is the \
                 exact, reset-aware increase of {} over the steps of the UTC day, as obsctl digest --tz UTC reports \
                 the day.",
                q.cost_sum()
            ),
            digest_cmd(r, "--since \"$(date -u +%F)\" --tz UTC"),
        ],
    )
}

/// Model errors per costed session of each model, when there are enough errors to mean it.
fn error_rate(r: &PrometheusRules, limit: &RateLimit) -> Rule {
    let q = &r.promql;
    let n = q.names();
    let model = n.model.as_str();
    let errors = q.increase_by(&n.model_errors, &[model], limit.span.ms);
    let sessions = q.increase_by(&q.cost_count(), &[model], limit.span.ms);
    // A model with errors and no costed session at all divides by zero: +Inf, over any limit.
    let expr = format!(
        "({errors} / ({sessions} or ({errors} * 0))) > {} and ({errors}) >= {}",
        number(limit.rate),
        r.min_errors
    );
    let (w, pct) = (&limit.span.text, limit.percent());
    alert(
        "ModelErrorRateHigh".into(),
        expr,
        "warning",
        Some(w),
        [
            format!("Model {{{{ $labels.{model} }}}}: {{{{ $value | humanizePercentage }}}} errors per costed session in {w} (limit {pct})"),
            format!(
                "Model {{{{ $labels.{model} }}}} had {{{{ $value | humanizePercentage }}}} model errors ({}) per costed \
                 session ({}) over the last {w}, over the limit of {pct}, with at least {} errors. Exact, reset-aware \
                 increases, as obsctl digest reports errors and sessions.",
                n.model_errors,
                q.cost_count(),
                r.min_errors
            ),
            digest_cmd(r, &format!("--last {w}")),
        ],
    )
}

fn alert(
    name: String,
    expr: String,
    severity: &str,
    window: Option<&str>,
    [summary, description, runbook]: [String; 3],
) -> Rule {
    let mut labels = vec![("severity".to_string(), severity.to_string())];
    if let Some(w) = window {
        labels.push(("window".into(), w.to_string()));
    }
    Rule {
        kind: Kind::Alert(name),
        expr,
        labels,
        annotations: vec![
            ("summary".into(), summary),
            ("description".into(), description),
            ("runbook".into(), runbook),
        ],
    }
}

/// `agent` → `Agent`, `experiment_id` → `ExperimentId`: a label name in an alert name.
pub fn camel(label: &str) -> String {
    label
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrometheusNames;

    fn rules(names: PrometheusNames) -> PrometheusRules {
        PrometheusRules {
            promql: PromQl::new(names, 60, None).unwrap(),
            spike: Some(CostLimit::parse("5/1h").unwrap()),
            spike_per: vec![("agent".into(), CostLimit::parse("2/1h").unwrap())],
            daily_budget: Some(100.0),
            error_rate: Some(RateLimit::parse("10%/1h").unwrap()),
            min_errors: 3,
            digest_flags: String::new(),
        }
    }

    #[test]
    fn hourly_rules_take_the_last_whole_hour() {
        let file = generate(&rules(PrometheusNames::default())).unwrap();
        let (group, rule) = file.rules().next().unwrap();
        assert_eq!((group.name.as_str(), group.interval.as_str(), rule.name()), ("obsctl-hourly", "1h", HOURLY_COST));
        let q = PromQl::new(PrometheusNames::default(), 60, None).unwrap();
        let inc = q.increase_by("openclaw_session_cost_usd_sum", &["agent", "model", "provider"], 3_600_000);
        assert_eq!(rule.expr, format!("last_over_time(({inc})[3599999ms:1h])"));
        assert!(inc.contains("[3599999ms:60s]"), "{inc}");
    }

    #[test]
    fn renamed_metrics_and_labels_are_used() {
        let names = PrometheusNames {
            session_cost: "gw_cost_usd".into(),
            model_errors: "gw_errors_total".into(),
            agent: "agent_id".into(),
            model: "llm".into(),
            ..Default::default()
        };
        let mut r = rules(names);
        r.spike_per = vec![
            ("agent_id".into(), CostLimit::parse("2/1h").unwrap()),
            ("llm".into(), CostLimit::parse("3/6h").unwrap()),
        ];
        let file = generate(&r).unwrap();
        let text = file.render();
        assert!(!text.contains("openclaw_session_cost_usd"), "{text}");
        assert!(!text.contains("openclaw_model_errors"), "{text}");
        let spike = file.rules().find(|(_, r)| r.name() == "AgentCostSpikeByAgentId").unwrap().1;
        assert!(spike.expr.starts_with("sum by (agent_id) ("), "{}", spike.expr);
        assert!(spike.annotations[2].1.contains("--agent '{{ reReplaceAll \"'\" \"'\\\\''\" $labels.agent_id }}'"));
        let by_model = file.rules().find(|(_, r)| r.name() == "AgentCostSpikeByLlm").unwrap().1;
        assert!(
            by_model.annotations[2].1.contains("--last 6h --model '{{ reReplaceAll"),
            "{}",
            by_model.annotations[2].1
        );
        let errors = file.rules().find(|(_, r)| r.name() == "ModelErrorRateHigh").unwrap().1;
        assert!(errors.expr.contains("sum by (llm) (") && errors.expr.contains("gw_errors_total"), "{}", errors.expr);
        assert!(errors.annotations[0].1.starts_with("Model {{ $labels.llm }}:"));
    }

    #[test]
    fn long_windows_need_a_longer_step() {
        let mut r = rules(PrometheusNames::default());
        r.spike = Some(CostLimit::parse("500/2w").unwrap());
        assert!(generate(&r).unwrap_err().to_string().contains("--prometheus-step"));
    }

    #[test]
    fn alert_names() {
        assert_eq!(camel("agent"), "Agent");
        assert_eq!(camel("experiment_id"), "ExperimentId");
        assert_eq!(camel("_x__y"), "XY");
    }
}
