//! The verdict as JSON: schema `obsctl.gate/v1` (documented in the README). Field names are
//! a promise; new fields may be added, none renamed or removed.

use serde::Serialize;

use crate::gate::Verdict;

pub const SCHEMA: &str = "obsctl.gate/v1";

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    status: &'static str,
    exit_code: u8,
    headline: String,
    window: WindowJson<'a>,
    baseline: BaselineJson<'a>,
    checks: Vec<CheckJson<'a>>,
    movers: Vec<MoverJson<'a>>,
    over_budget: Vec<SessionJson<'a>>,
    notes: &'a [String],
    warnings: &'a [String],
    allow_missing: bool,
}

#[derive(Serialize)]
struct WindowJson<'a> {
    start: &'a str,
    end: &'a str,
}

#[derive(Serialize)]
struct BaselineJson<'a> {
    kind: &'static str,
    description: &'a str,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    id: &'a str,
    name: &'a str,
    subject: Option<&'a str>,
    unit: &'static str,
    baseline: Option<f64>,
    current: Option<f64>,
    change: Option<f64>,
    threshold: &'a str,
    outcome: &'static str,
    detail: Option<&'a str>,
    interval: Option<IntervalJson<'a>>,
}

#[derive(Serialize)]
struct IntervalJson<'a> {
    low: f64,
    high: f64,
    margin: f64,
    test: &'a str,
}

#[derive(Serialize)]
struct MoverJson<'a> {
    dim: &'static str,
    name: &'a str,
    baseline_cost_usd: f64,
    current_cost_usd: f64,
}

#[derive(Serialize)]
struct SessionJson<'a> {
    session: &'a str,
    agent: &'a str,
    cost_usd: f64,
}

pub fn render(v: &Verdict) -> Vec<u8> {
    let report = Report {
        schema: SCHEMA,
        status: v.status().name(),
        exit_code: v.exit_code(),
        headline: v.headline(),
        window: WindowJson { start: &v.window_start, end: &v.window_end },
        baseline: BaselineJson { kind: v.baseline.kind, description: &v.baseline.description },
        checks: v
            .checks
            .iter()
            .map(|c| CheckJson {
                id: &c.id,
                name: &c.name,
                subject: c.subject.as_deref(),
                unit: c.unit.name(),
                baseline: c.baseline,
                current: c.current,
                change: c.change,
                threshold: &c.threshold,
                outcome: c.outcome.name(),
                detail: c.detail.as_deref(),
                interval: c.interval.as_ref().map(|i| IntervalJson {
                    low: i.low,
                    high: i.high,
                    margin: i.margin,
                    test: &i.test,
                }),
            })
            .collect(),
        movers: v
            .movers
            .iter()
            .map(|m| MoverJson {
                dim: m.dim,
                name: &m.name,
                baseline_cost_usd: m.baseline,
                current_cost_usd: m.current,
            })
            .collect(),
        over_budget: v
            .over_budget
            .iter()
            .map(|s| SessionJson { session: &s.session, agent: &s.agent, cost_usd: s.cost })
            .collect(),
        notes: &v.notes,
        warnings: &v.warnings,
        allow_missing: v.allow_missing,
    };
    // Plain data with string keys: serialising it cannot fail.
    let mut out = serde_json::to_vec_pretty(&report).unwrap_or_default();
    out.push(b'\n');
    out
}
