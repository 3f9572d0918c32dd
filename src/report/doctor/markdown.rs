//! Doctor's findings as GitHub-flavoured Markdown: for an issue, a PR comment or a wiki page.

use super::{figure_cells, problems, severity_label, sources_line, FIGURES_NOTE, FIGURE_HEADERS};
use crate::doctor::{Report, Severity, Status};
use crate::report::markdown::escape;

pub fn render(r: &Report) -> String {
    let icon = match r.status() {
        Status::Ok => "✅",
        Status::Warning | Status::Unavailable => "⚠️",
        Status::Error => "❌",
    };
    let mut out = format!("## {icon} obsctl doctor: {}\n\n", escape(&r.headline()));
    out.push_str(&format!("- Window: {}\n- Sources: {}\n\n", escape(&r.window.describe()), escape(&sources_line(r))));
    out.push_str("| Severity | Check | Subject | Finding |\n| --- | --- | --- | --- |\n");
    for f in &r.findings {
        let severity = match f.severity {
            Severity::Ok => severity_label(f.severity).to_string(),
            s => format!("**{}**", severity_label(s)),
        };
        out.push_str(&format!(
            "| {severity} | {} | {} | {} |\n",
            escape(f.check),
            escape(f.subject.as_deref().unwrap_or("")),
            escape(&f.message)
        ));
    }
    if !r.figures.is_empty() {
        out.push_str(&format!(
            "\n### Reconciliation\n\n| {} |\n| --- | ---: | ---: | ---: | ---: |\n",
            FIGURE_HEADERS.join(" | ")
        ));
        for f in &r.figures {
            out.push_str(&format!("| {} |\n", figure_cells(f).map(|c| escape(&c)).join(" | ")));
        }
        out.push_str(&format!("\n{}\n", escape(FIGURES_NOTE)));
    }
    let problems = problems(r);
    if !problems.is_empty() {
        out.push_str("\n### What to do\n\n");
        for f in problems {
            let subject = f.subject.as_deref().map(|s| format!(" ({})", escape(s))).unwrap_or_default();
            out.push_str(&format!(
                "- **{}** {}{subject}: {}\n  - Impact: {}\n",
                severity_label(f.severity),
                escape(f.check),
                escape(&f.message),
                escape(&f.impact)
            ));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("  - Fix: {}\n", escape(fix)));
            }
        }
    }
    out
}
