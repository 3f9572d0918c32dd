//! Doctor's findings on a terminal: the headline, one row per finding, the figures side by
//! side, then what to do about each problem (its impact and fix), worst first.

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement};

use super::{figure_cells, problems, severity_label, sources_line, FIGURES_NOTE, FIGURE_HEADERS};
use crate::doctor::{Report, Severity};
use crate::report::verdict::inert;
use crate::report::verdict::table::table;

/// Columns wrap to this width when the output is not a terminal.
const WIDTH: u16 = 120;

pub fn render(r: &Report, color: bool) -> String {
    let mut out = format!("obsctl doctor: {}\n", r.headline());
    out.push_str(&format!("Window:  {}\nSources: {}\n\n", r.window.describe(), inert(&sources_line(r))));
    let mut findings = table(color);
    findings.set_content_arrangement(ContentArrangement::Dynamic);
    if !color {
        findings.set_width(WIDTH);
    }
    findings.set_header(["Severity", "Check", "Subject", "Finding"]);
    for f in &r.findings {
        let tone = match f.severity {
            Severity::Error => Some(Color::Red),
            Severity::Warning => Some(Color::Yellow),
            Severity::Ok => None,
        };
        let row = [severity_label(f.severity), f.check, f.subject.as_deref().unwrap_or(""), &f.message].map(inert);
        findings.add_row(row.into_iter().enumerate().map(|(i, s)| match (color, tone) {
            (true, Some(t)) if i == 0 => Cell::new(s).fg(t).add_attribute(Attribute::Bold),
            _ => Cell::new(s),
        }));
    }
    out.push_str(&format!("{findings}\n"));
    if !r.figures.is_empty() {
        let mut figures = table(color);
        figures.set_header(FIGURE_HEADERS);
        for f in &r.figures {
            figures.add_row(figure_cells(f).into_iter().enumerate().map(|(i, s)| {
                let cell = Cell::new(s);
                if i == 0 {
                    cell
                } else {
                    cell.set_alignment(CellAlignment::Right)
                }
            }));
        }
        out.push_str(&format!("\nReconciliation\n{figures}\n{FIGURES_NOTE}\n"));
    }
    let problems = problems(r);
    if !problems.is_empty() {
        out.push_str("\nWhat to do\n");
        for f in problems {
            let subject = f.subject.as_deref().map(|s| format!(" ({})", inert(s))).unwrap_or_default();
            out.push_str(&format!("\n{} {}{subject}: {}\n", severity_label(f.severity), f.check, inert(&f.message)));
            out.push_str(&format!("  Impact: {}\n", inert(&f.impact)));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("  Fix:    {}\n", inert(fix)));
            }
        }
    }
    out
}
