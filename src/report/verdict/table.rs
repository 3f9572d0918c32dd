//! The verdict on a terminal: the verdict first, then the checks, the top movers and the
//! sessions over budget.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{modifiers::UTF8_ROUND_CORNERS, Attribute, Cell, Color, Table};

use super::{cells, inert, HEADERS};
use crate::gate::{show, Outcome, Status, Unit, Verdict};
use crate::report::text::percent;

pub fn render(v: &Verdict, color: bool) -> String {
    let mut out = format!("{}\n", v.headline());
    // Quiet when all is well: one line.
    if v.status() == Status::Pass && v.checks.iter().all(|c| c.outcome == Outcome::Pass) && v.notes.is_empty() {
        return out;
    }
    out.push_str(&format!("Window:   {}\nBaseline: {}\n", inert(&v.window), inert(&v.baseline.description)));
    for note in &v.notes {
        out.push_str(&format!("Note:     {}\n", inert(note)));
    }
    out.push('\n');
    let mut checks = table(color);
    checks.set_header(HEADERS);
    for c in &v.checks {
        let row = cells(c, v.allow_missing).map(|s| inert(&s));
        let tone = match c.outcome {
            Outcome::Fail => Some(Color::Red),
            o if o.is_undecided() => Some(Color::Yellow),
            _ => None,
        };
        checks.add_row(row.into_iter().map(|s| match (color, tone) {
            (true, Some(t)) => Cell::new(s).fg(t).add_attribute(Attribute::Bold),
            _ => Cell::new(s),
        }));
    }
    out.push_str(&format!("{checks}\n"));
    let explained: Vec<String> = v
        .checks
        .iter()
        .filter(|c| c.outcome != Outcome::Pass || c.interval.is_some())
        .map(|c| format!("  - {}", inert(&super::sentence(c))))
        .collect();
    if !explained.is_empty() {
        out.push_str(&format!("\n{}\n", explained.join("\n")));
    }
    if !v.movers.is_empty() {
        let mut movers = table(color);
        movers.set_header(["Top movers", "", "Baseline", "Current", "Change"]);
        for m in &v.movers {
            let change = if m.baseline != 0.0 { percent((m.current - m.baseline) / m.baseline) } else { "new".into() };
            movers.add_row([
                m.dim.to_string(),
                inert(&m.name),
                show(m.baseline, Unit::Usd),
                show(m.current, Unit::Usd),
                change,
            ]);
        }
        out.push_str(&format!("\n{movers}\n"));
    }
    if !v.over_budget.is_empty() {
        let mut sessions = table(color);
        sessions.set_header(["Session over budget", "Agent", "Cost"]);
        for s in &v.over_budget {
            sessions.add_row([inert(&s.session), inert(&s.agent), show(s.cost, Unit::Usd)]);
        }
        out.push_str(&format!("\n{sessions}\n"));
    }
    out
}

pub(in crate::report) fn table(color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).apply_modifier(UTF8_ROUND_CORNERS);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t
}
