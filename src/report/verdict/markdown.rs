//! The verdict as a PR comment: GitHub-flavoured Markdown, under GitHub's 65,536-character
//! comment limit. Rows that do not fit are cut, failed checks first kept, and a line
//! says how many were left out.

use super::{cells, outcome_label, HEADERS};
use crate::gate::{show, Outcome, Status, Unit, Verdict};
use crate::report::markdown::escape;
use crate::report::text::percent;

/// Under GitHub's limit, with room for what a CI job adds around the comment.
pub const MAX_CHARS: usize = 65_000;

pub fn render(v: &Verdict) -> String {
    let icon = match v.status() {
        Status::Pass => "✅",
        Status::Regression => "❌",
        Status::Insufficient => "⚠️",
    };
    let mut head = format!("## {icon} obsctl gate: {}\n\n", escape(&v.headline()));
    head.push_str(&format!("- Window: {}\n- Baseline: {}\n", escape(&v.window), escape(&v.baseline.description)));
    for note in &v.notes {
        head.push_str(&format!("- Note: {}\n", escape(note)));
    }
    head.push('\n');

    // Failed and undecided checks first: if the comment must be cut, they stay.
    let mut order: Vec<usize> = (0..v.checks.len()).collect();
    order.sort_by_key(|&i| match v.checks[i].outcome {
        Outcome::Fail => 0,
        o if o.is_undecided() => 1,
        _ => 2,
    });
    let mut rows =
        vec![format!("| {} |\n", HEADERS.join(" | ")), "| --- | --- | ---: | ---: | ---: | ---: | --- |\n".to_string()];
    for &i in &order {
        let c = &v.checks[i];
        let mut cell = cells(c, v.allow_missing).map(|s| escape(&s));
        if c.outcome != Outcome::Pass {
            cell[6] = format!("**{}**", escape(outcome_label(c.outcome, v.allow_missing)));
        }
        rows.push(format!("| {} |\n", cell.join(" | ")));
    }
    let details: Vec<String> = order
        .iter()
        .map(|&i| &v.checks[i])
        .filter(|c| c.outcome != Outcome::Pass || c.interval.is_some())
        .map(|c| format!("- {}\n", escape(&super::sentence(c))))
        .collect();
    let mut tail = String::new();
    if !v.movers.is_empty() {
        tail.push_str(
            "\n### Top movers\n\n| | Name | Baseline | Current | Change |\n| --- | --- | ---: | ---: | ---: |\n",
        );
        for m in &v.movers {
            let change = if m.baseline != 0.0 { percent((m.current - m.baseline) / m.baseline) } else { "new".into() };
            tail.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                m.dim,
                escape(&m.name),
                show(m.baseline, Unit::Usd),
                show(m.current, Unit::Usd),
                change
            ));
        }
    }
    if !v.warnings.is_empty() {
        tail.push_str("\n### Warnings\n\n");
        for w in &v.warnings {
            tail.push_str(&format!("- {}\n", escape(w)));
        }
    }
    let mut budget = Vec::new();
    if !v.over_budget.is_empty() {
        budget.push("\n### Sessions over budget\n\n| Session | Agent | Cost |\n| --- | --- | ---: |\n".to_string());
        for s in &v.over_budget {
            budget.push(format!("| {} | {} | {} |\n", escape(&s.session), escape(&s.agent), show(s.cost, Unit::Usd)));
        }
    }
    fit(head, rows, details, budget, tail)
}

/// Puts the parts together, cutting rows (then details, then the budget list) from the end
/// until the whole fits in [`MAX_CHARS`], with a line that says what was cut.
fn fit(head: String, rows: Vec<String>, details: Vec<String>, budget: Vec<String>, tail: String) -> String {
    let len = |parts: &[String]| parts.iter().map(|s| s.chars().count()).sum::<usize>();
    let truncated_line = |n: usize| {
        format!(
            "\n_… truncated: {n} more lines not shown (over {MAX_CHARS} characters); see the JSON or JUnit report._\n"
        )
    };
    let fixed = head.chars().count() + tail.chars().count() + truncated_line(usize::MAX).chars().count() + 2;
    let mut budget_left = MAX_CHARS.saturating_sub(fixed);
    let mut cut = 0;
    let mut keep = |part: Vec<String>, header_rows: usize| -> Vec<String> {
        let mut kept = Vec::new();
        for (i, line) in part.into_iter().enumerate() {
            let n = line.chars().count();
            if n <= budget_left {
                budget_left -= n;
                kept.push(line);
            } else if i < header_rows {
                // A table header that does not fit drops its table.
                cut += 1;
                return Vec::new();
            } else {
                cut += 1;
            }
        }
        kept
    };
    let rows = keep(rows, 2);
    let details = keep(details, 0);
    let budget = keep(budget, 1);
    let mut out = head;
    out.push_str(&rows.concat());
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details.concat());
    }
    out.push_str(&budget.concat());
    out.push_str(&tail);
    if cut > 0 {
        out.push_str(&truncated_line(cut));
    }
    debug_assert!(out.chars().count() <= MAX_CHARS || len(&[out.clone()]) <= MAX_CHARS);
    out
}
