//! The same window's figures from every source that answered, side by side: the cost,
//! input and output tokens from each, and the sessions from Loki and the files.
//!
//! Each source computes its own digest exactly as `obsctl digest --source <it>
//! --no-compare` would. Sources that see the same events must agree; a difference over
//! [`MAX_DIFFERENCE`] is an error naming both sources and the figure. Prometheus's sessions
//! are costed-session observations (its cost histogram's count: one per session and model),
//! not distinct sessions, so they are compared with neither.

use super::{Checkup, Figures, Finding, Severity};
use crate::error::describe;
use crate::source::{self, Query, SourceChoice};
use crate::usd::Usd;

/// The largest relative difference (of the larger figure) that still agrees: 0.5 %.
pub const MAX_DIFFERENCE: f64 = 0.005;

/// The figures of every source in `answered` that could compute its digest, and what
/// comparing them found. A single source is not asked for its figures: there is nothing
/// to compare them with.
pub fn check(c: &Checkup, answered: &[&'static str]) -> (Vec<Figures>, Vec<Finding>) {
    let mut findings = Vec::new();
    if let [only] = answered {
        let finding = Finding::ok(
            "reconcile",
            Some(only.to_string()),
            format!("only {only} answered: nothing to compare it with"),
            "no cross-check of the figures",
        );
        return (Vec::new(), vec![finding]);
    }
    let results: Vec<(&'static str, anyhow::Result<Figures>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = answered
            .iter()
            .filter_map(|&name| choice(name).map(|choice| (name, choice)))
            .map(|(name, choice)| (name, scope.spawn(move || figures(c, name, choice))))
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| (name, h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))))
            .collect()
    });
    let mut all = Vec::new();
    for (name, result) in results {
        match result {
            Ok(f) => all.push(f),
            Err(e) => findings.push(Finding::problem(
                "reconcile.source",
                Severity::Warning,
                Some(name.to_string()),
                format!("{name} could not compute the window's digest: {}", describe(&e)),
                "its figures are not compared with the others'",
                &format!("see the other {name} findings; obsctl digest --source {name} --verbose shows the queries"),
            )),
        }
    }
    match all.len() {
        0 => {}
        1 => findings.push(Finding::ok(
            "reconcile",
            Some(all[0].source.to_string()),
            format!("only {} computed the window's figures: nothing to compare them with", all[0].source),
            "no cross-check of the figures",
        )),
        _ => {
            for (i, a) in all.iter().enumerate() {
                for b in &all[i + 1..] {
                    findings.extend(compare(a, b));
                }
            }
        }
    }
    (all, findings)
}

fn choice(source: &str) -> Option<SourceChoice> {
    match source {
        "prometheus" => Some(SourceChoice::Prometheus),
        "loki" => Some(SourceChoice::Loki),
        "jsonl" => Some(SourceChoice::Jsonl),
        _ => None,
    }
}

/// One source's totals for the window, as `obsctl digest --source <it> --no-compare` has them.
fn figures(c: &Checkup, name: &'static str, choice: SourceChoice) -> anyhow::Result<Figures> {
    let mut sources = c.sources.clone();
    sources.choice = choice;
    let query = Query { window: c.window.clone(), previous: None, top: 1, variant_spread: false };
    let t = source::digest(&query, &sources)?.totals;
    Ok(Figures {
        source: name,
        cost: t.cost,
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        sessions: t.sessions,
    })
}

/// The relative difference of two figures, of the larger one; 0 when both are 0.
pub fn difference(a: f64, b: f64) -> f64 {
    let larger = a.abs().max(b.abs());
    if larger == 0.0 {
        0.0
    } else {
        (a - b).abs() / larger
    }
}

fn usd(u: Usd) -> String {
    format!("${:.6}", u.as_f64())
}

/// The findings of one pair: an error per figure that differs, or one finding that they agree.
fn compare(a: &Figures, b: &Figures) -> Vec<Finding> {
    let sessions_too = a.source != "prometheus" && b.source != "prometheus";
    let count = |check, what, x: u64, y: u64| (check, what, x as f64, y as f64, x.to_string(), y.to_string());
    let mut rows: Vec<(&'static str, &str, f64, f64, String, String)> = vec![
        ("reconcile.cost", "cost", a.cost.as_f64(), b.cost.as_f64(), usd(a.cost), usd(b.cost)),
        count("reconcile.input_tokens", "input tokens", a.input_tokens, b.input_tokens),
        count("reconcile.output_tokens", "output tokens", a.output_tokens, b.output_tokens),
    ];
    if sessions_too {
        rows.push(count("reconcile.sessions", "sessions", a.sessions, b.sessions));
    }
    let pair = format!("{} vs {}", a.source, b.source);
    let mut findings = Vec::new();
    let mut agreed = Vec::new();
    for (check, what, x, y, shown_x, shown_y) in rows {
        let d = difference(x, y);
        let figures = format!("{} {shown_x}, {} {shown_y}", a.source, b.source);
        if d > MAX_DIFFERENCE {
            findings.push(Finding::problem(
                check,
                Severity::Error,
                Some(pair.clone()),
                format!("{what} {} by {:.2} %: {figures}", if what == "cost" { "differs" } else { "differ" }, d * 100.0),
                &format!("{} and {} disagree on the window's {what}: at most one of them is right", a.source, b.source),
                "find which one misses events: lines not shipped or shipped twice (Loki), a target not scraped or a gap in scraping (Prometheus), malformed lines or files from only one of several hosts (the files); see the other findings",
            ));
        } else {
            agreed.push(format!("{what} {figures}"));
        }
    }
    if findings.is_empty() {
        let note = if sessions_too {
            ""
        } else {
            "; sessions not compared (Prometheus counts costed-session observations, one per session and model)"
        };
        findings.push(Finding::ok(
            "reconcile",
            Some(pair),
            format!("agree within {:.1} %: {}{note}", MAX_DIFFERENCE * 100.0, agreed.join("; ")),
            "the sources see the same events",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(source: &'static str, cost: f64, tokens: u64, sessions: u64) -> Figures {
        Figures {
            source,
            cost: Usd::from_f64(cost).unwrap(),
            input_tokens: tokens,
            output_tokens: tokens / 10,
            sessions,
        }
    }

    #[test]
    fn differences_over_half_a_percent_are_errors() {
        let agree = compare(&figures("prometheus", 100.0, 1000, 5), &figures("jsonl", 100.4, 1000, 9));
        assert_eq!(agree.len(), 1);
        assert_eq!(agree[0].severity, Severity::Ok, "0.4 % and sessions not compared: {agree:?}");
        assert!(agree[0].message.contains("sessions not compared"));
        let differ = compare(&figures("loki", 100.0, 1000, 5), &figures("jsonl", 100.6, 1000, 6));
        let checks: Vec<_> = differ.iter().map(|f| (f.check, f.severity)).collect();
        assert_eq!(checks, [("reconcile.cost", Severity::Error), ("reconcile.sessions", Severity::Error)]);
        assert_eq!(differ[0].subject.as_deref(), Some("loki vs jsonl"));
        assert!(differ[0].message.contains("loki $100.000000, jsonl $100.600000"), "{}", differ[0].message);
        assert_eq!(difference(0.0, 0.0), 0.0);
    }
}
