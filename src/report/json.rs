//! The JSON format: schema `obsctl.digest/v1` (CONTRACT.md §2, documented in the README).
//! Field names are a promise; new fields may be added, none renamed or removed. Lists are
//! always present (empty rather than missing); an unknown cost is `null`, never 0.

use anyhow::Result;
use serde::Serialize;

use crate::digest::{Digest, Totals};
use crate::usd::Usd;
use crate::window::Window;

pub const SCHEMA: &str = "obsctl.digest/v1";

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    window: WindowJson,
    previous_window: Option<WindowJson>,
    sources: Vec<SourceJson<'a>>,
    totals: TotalsJson,
    previous: Option<TotalsJson>,
    by_model: Vec<ModelJson<'a>>,
    by_agent: Vec<AgentJson<'a>>,
    by_variant: Vec<VariantJson<'a>>,
    by_session: Vec<SessionJson<'a>>,
    daily: Vec<DayJson>,
    durations: Option<DurationsJson>,
    movers: Vec<MoverJson<'a>>,
    /// `--agent`, `--model`, `--experiment` as given (empty: every event).
    filters: std::collections::BTreeMap<&'static str, &'a [String]>,
    warnings: &'a [String],
    skipped_lines: u64,
}

#[derive(Serialize)]
struct MoverJson<'a> {
    dim: &'static str,
    name: &'a str,
    previous_cost_usd: f64,
    cost_usd: f64,
    change_usd: f64,
    /// Relative to the previous cost; `null` when that was 0.
    change: Option<f64>,
}

#[derive(Serialize)]
pub(super) struct WindowJson {
    start: String,
    end: String,
    tz: &'static str,
    partial: bool,
}

#[derive(Serialize)]
struct SourceJson<'a> {
    section: &'static str,
    source: &'static str,
    fallback_reason: Option<&'a str>,
    counts_from: Option<&'static str>,
}

#[derive(Serialize)]
struct TotalsJson {
    cost_usd: f64,
    input_tokens: u64,
    output_tokens: u64,
    sessions: u64,
    model_calls: Option<u64>,
    errors: Option<u64>,
    runs: Option<u64>,
    tool_calls: Option<u64>,
    tool_failures: Option<u64>,
    uncosted_events: Option<u64>,
    events: Option<u64>,
    model_errors: Option<u64>,
    costed_sessions: Option<u64>,
}

#[derive(Serialize)]
struct ModelJson<'a> {
    model: &'a str,
    provider: &'a str,
    cost_usd: Option<f64>,
    input_tokens: u64,
    output_tokens: u64,
    calls: Option<u64>,
}

#[derive(Serialize)]
struct AgentJson<'a> {
    agent: &'a str,
    cost_usd: Option<f64>,
    sessions: u64,
    errors: Option<u64>,
}

#[derive(Serialize)]
struct VariantJson<'a> {
    experiment: Option<&'a str>,
    variant: Option<&'a str>,
    sessions: u64,
    cost_usd: Option<f64>,
    cost_per_session_usd: Option<f64>,
    errors: u64,
    runs: Option<u64>,
    tool_calls: Option<u64>,
    tool_failures: Option<u64>,
    /// Σ (session cost)² over the variant's sessions, USD²: with `sessions` and
    /// `cost_usd`, the spread of cost per session that `obsctl gate` tests.
    cost_sum_squares_usd2: Option<f64>,
}

#[derive(Serialize)]
struct SessionJson<'a> {
    session: &'a str,
    agent: &'a str,
    cost_usd: Option<f64>,
    input_tokens: u64,
    output_tokens: u64,
    model_calls: u64,
}

#[derive(Serialize)]
struct DurationsJson {
    p50_seconds: f64,
    p95_seconds: f64,
}

#[derive(Serialize)]
struct DayJson {
    date: String,
    cost_usd: f64,
}

pub fn render(d: &Digest) -> Result<Vec<u8>> {
    let report = Report {
        schema: SCHEMA,
        window: window(&d.window),
        previous_window: d.previous_window.as_ref().map(window),
        sources: d
            .sources
            .iter()
            .map(|p| SourceJson {
                section: p.section.name(),
                source: p.source,
                fallback_reason: p.fallback_reason.as_deref(),
                counts_from: p.counts_from,
            })
            .collect(),
        totals: totals(&d.totals),
        previous: d.previous.as_ref().map(totals),
        by_model: d
            .by_model
            .iter()
            .map(|m| ModelJson {
                model: &m.model,
                provider: &m.provider,
                cost_usd: usd(m.cost),
                input_tokens: m.input_tokens,
                output_tokens: m.output_tokens,
                calls: m.calls,
            })
            .collect(),
        by_agent: d
            .by_agent
            .iter()
            .map(|a| AgentJson { agent: &a.agent, cost_usd: usd(a.cost), sessions: a.sessions, errors: a.errors })
            .collect(),
        by_variant: d
            .by_variant
            .iter()
            .map(|v| VariantJson {
                experiment: v.experiment.as_deref(),
                variant: v.variant.as_deref(),
                sessions: v.sessions,
                cost_usd: usd(v.cost),
                cost_per_session_usd: v.cost_per_session(),
                errors: v.errors,
                runs: v.spread.runs,
                tool_calls: v.spread.tool_calls,
                tool_failures: v.spread.tool_failures,
                cost_sum_squares_usd2: v.spread.cost_sum_squares,
            })
            .collect(),
        by_session: d
            .by_session
            .iter()
            .map(|s| SessionJson {
                session: &s.session,
                agent: &s.agent,
                cost_usd: usd(s.cost),
                input_tokens: s.input_tokens,
                output_tokens: s.output_tokens,
                model_calls: s.model_calls,
            })
            .collect(),
        daily: d.daily.iter().map(|day| DayJson { date: day.date.to_string(), cost_usd: day.cost.as_f64() }).collect(),
        durations: d
            .durations
            .as_ref()
            .map(|x| DurationsJson { p50_seconds: x.p50_seconds, p95_seconds: x.p95_seconds }),
        movers: d
            .movers
            .iter()
            .map(|m| MoverJson {
                dim: m.dim,
                name: &m.name,
                previous_cost_usd: m.previous.as_f64(),
                cost_usd: m.current.as_f64(),
                change_usd: (m.current - m.previous).as_f64(),
                change: crate::digest::change(m.current.as_f64(), m.previous.as_f64()),
            })
            .collect(),
        filters: d.filters.iter().map(|(k, v)| (*k, &v[..])).collect(),
        warnings: &d.warnings,
        skipped_lines: d.skipped_lines,
    };
    let mut out = serde_json::to_vec_pretty(&report)?;
    out.push(b'\n');
    Ok(out)
}

pub(super) fn window(w: &Window) -> WindowJson {
    WindowJson { start: w.start_rfc3339(), end: w.end_rfc3339(), tz: w.tz.name(), partial: w.partial }
}

fn totals(t: &Totals) -> TotalsJson {
    TotalsJson {
        cost_usd: t.cost.as_f64(),
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        sessions: t.sessions,
        model_calls: t.model_calls,
        errors: t.errors,
        runs: t.runs,
        tool_calls: t.tool_calls,
        tool_failures: t.tool_failures,
        uncosted_events: t.uncosted_events,
        events: t.events,
        model_errors: t.model_errors,
        costed_sessions: t.costed_sessions,
    }
}

fn usd(cost: Option<Usd>) -> Option<f64> {
    cost.map(Usd::as_f64)
}
