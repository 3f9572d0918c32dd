//! Turns doctor's [`Report`] into bytes: a terminal table, Markdown or JSON
//! (`obsctl.doctor/v1`). Like every renderer, these read the report and nothing else; what
//! the two human formats share (labels, the sources line, the figures' cells) is here.

mod json;
mod markdown;
mod table;

use crate::cli::DoctorFormat;
use crate::doctor::{Figures, Report, Severity};
use crate::report::text::thousands;

pub use json::SCHEMA;

pub fn render(r: &Report, format: DoctorFormat, color: bool) -> Vec<u8> {
    match format {
        DoctorFormat::Table => table::render(r, color).into_bytes(),
        DoctorFormat::Markdown => markdown::render(r).into_bytes(),
        DoctorFormat::Json => json::render(r),
    }
}

/// `ok`, `WARNING`, `ERROR`: problems stand out.
pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "ok",
        Severity::Warning => "WARNING",
        Severity::Error => "ERROR",
    }
}

/// `prometheus http://…/ (answered); loki http://…/ (no answer); jsonl ~/… (answered)`.
pub fn sources_line(r: &Report) -> String {
    if r.sources.is_empty() {
        return "none".into();
    }
    r.sources
        .iter()
        .map(|s| format!("{} {} ({})", s.source, s.location, if s.answered { "answered" } else { "no answer" }))
        .collect::<Vec<_>>()
        .join("; ")
}

pub const FIGURE_HEADERS: [&str; 5] = ["Source", "Cost", "Input tokens", "Output tokens", "Sessions"];

/// One source's row of the side-by-side figures.
pub fn figure_cells(f: &Figures) -> [String; 5] {
    let sessions = thousands(f.sessions);
    [
        f.source.to_string(),
        format!("${:.6}", f.cost.as_f64()),
        thousands(f.input_tokens),
        thousands(f.output_tokens),
        if f.source == "prometheus" { format!("{sessions} (costed)") } else { sessions },
    ]
}

/// What the figures table needs said under it.
pub const FIGURES_NOTE: &str =
    "The window's digest from each source, as obsctl digest --source SOURCE --no-compare computes it. \
    Prometheus's sessions are costed-session observations (one per session and model), compared with no other source.";

/// The findings that need doing something about, worst first (stable within a severity).
pub fn problems(r: &Report) -> Vec<&crate::doctor::Finding> {
    let mut p: Vec<_> = r.findings.iter().filter(|f| f.severity != Severity::Ok).collect();
    p.sort_by_key(|f| std::cmp::Reverse(f.severity));
    p
}
