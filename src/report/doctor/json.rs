//! Doctor's findings as JSON: schema `obsctl.doctor/v1` (documented in the README). Field
//! names are a promise; new fields may be added, none renamed or removed.

use serde::Serialize;

use crate::doctor::{Report, Severity};
use crate::report::json::{window, WindowJson};

pub const SCHEMA: &str = "obsctl.doctor/v1";

#[derive(Serialize)]
struct Json<'a> {
    schema: &'static str,
    status: &'static str,
    exit_code: u8,
    headline: String,
    window: WindowJson,
    generated_at: String,
    summary: Summary,
    sources: Vec<SourceJson<'a>>,
    findings: Vec<FindingJson<'a>>,
    reconciliation: Vec<FiguresJson>,
}

#[derive(Serialize)]
struct Summary {
    ok: usize,
    warning: usize,
    error: usize,
}

#[derive(Serialize)]
struct SourceJson<'a> {
    source: &'static str,
    location: &'a str,
    answered: bool,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    check: &'static str,
    severity: &'static str,
    subject: Option<&'a str>,
    message: &'a str,
    impact: &'a str,
    fix: Option<&'a str>,
}

#[derive(Serialize)]
struct FiguresJson {
    source: &'static str,
    cost_usd: f64,
    input_tokens: u64,
    output_tokens: u64,
    sessions: u64,
    /// What `sessions` counts: `distinct` or `costed_observations` (Prometheus).
    sessions_kind: &'static str,
}

pub fn render(r: &Report) -> Vec<u8> {
    let json = Json {
        schema: SCHEMA,
        status: r.status().name(),
        exit_code: r.exit_code(),
        headline: r.headline(),
        window: window(&r.window),
        generated_at: crate::window::format_rfc3339(r.now),
        summary: Summary {
            ok: r.count(Severity::Ok),
            warning: r.count(Severity::Warning),
            error: r.count(Severity::Error),
        },
        sources: r
            .sources
            .iter()
            .map(|s| SourceJson { source: s.source, location: &s.location, answered: s.answered })
            .collect(),
        findings: r
            .findings
            .iter()
            .map(|f| FindingJson {
                check: f.check,
                severity: f.severity.name(),
                subject: f.subject.as_deref(),
                message: &f.message,
                impact: &f.impact,
                fix: f.fix.as_deref(),
            })
            .collect(),
        reconciliation: r
            .figures
            .iter()
            .map(|f| FiguresJson {
                source: f.source,
                cost_usd: f.cost.as_f64(),
                input_tokens: f.input_tokens,
                output_tokens: f.output_tokens,
                sessions: f.sessions,
                sessions_kind: if f.source == "prometheus" { "costed_observations" } else { "distinct" },
            })
            .collect(),
    };
    // Plain data with string keys: serialising it cannot fail.
    let mut out = serde_json::to_vec_pretty(&json).unwrap_or_default();
    out.push(b'\n');
    out
}
