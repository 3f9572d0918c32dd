//! Turns a gate's [`Verdict`] into bytes: a terminal table, a Markdown PR comment, JSON
//! (`obsctl.gate/v1`) or JUnit XML. Like the digest's renderers, these read the verdict and
//! nothing else; what the human formats share (the cells of a check) is here.

mod json;
mod junit;
mod markdown;
pub(in crate::report) mod table;

use crate::cli::GateFormat;
use crate::gate::{show, Check, Outcome, Unit, Verdict};
use crate::report::text::percent;

pub use markdown::MAX_CHARS as MARKDOWN_MAX_CHARS;

pub fn render(v: &Verdict, format: GateFormat, color: bool) -> Vec<u8> {
    match format {
        GateFormat::Table => table::render(v, color).into_bytes(),
        GateFormat::Markdown => markdown::render(v).into_bytes(),
        GateFormat::Json => json::render(v),
        GateFormat::Junit => junit::render(v),
    }
}

/// The cells of one check's row: check, subject, baseline, current, change, threshold,
/// verdict.
pub fn cells(c: &Check, allow_missing: bool) -> [String; 7] {
    let figure = |x: Option<f64>| x.map(|x| show(x, c.unit)).unwrap_or_else(|| "—".into());
    let change = match (c.change, c.baseline, c.current) {
        (Some(ch), ..) => percent(ch),
        (None, Some(b), Some(n)) if b == 0.0 && n != 0.0 => "undefined".into(),
        _ => "—".into(),
    };
    [
        c.name.clone(),
        c.subject.clone().unwrap_or_default(),
        figure(c.baseline),
        figure(c.current),
        change,
        c.threshold.clone(),
        outcome_label(c.outcome, allow_missing).into(),
    ]
}

pub const HEADERS: [&str; 7] = ["Check", "Subject", "Baseline", "Current", "Change", "Threshold", "Verdict"];

pub fn outcome_label(o: Outcome, allow_missing: bool) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Insufficient if allow_missing => "insufficient (allowed)",
        Outcome::Insufficient => "INSUFFICIENT DATA",
        Outcome::Undefined if allow_missing => "undefined (allowed)",
        Outcome::Undefined => "UNDEFINED",
    }
}

/// What a check found, in one sentence (annotations, JUnit messages, details).
pub fn sentence(c: &Check) -> String {
    let subject = c.subject.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
    let figures = match (c.baseline, c.current) {
        (Some(b), Some(n)) => format!("{} → {}", show(b, c.unit), show(n, c.unit)),
        // One side only: the window's figure, or the baseline's own (its session count).
        (None, Some(x)) | (Some(x), None) => show(x, c.unit),
        _ => String::new(),
    };
    let change = c.change.map(|ch| format!(" ({})", percent(ch))).unwrap_or_default();
    // Clauses left empty (a check undecided before any figure) are left out, not shown blank.
    let mut head = vec![format!("{figures}{change}")];
    if !c.threshold.is_empty() {
        head.push(format!("threshold {}", c.threshold));
    }
    let head: Vec<String> = head.into_iter().filter(|h| !h.is_empty()).collect();
    let mut clauses = vec![head.join(", ")];
    clauses.extend(c.interval.as_ref().map(|i| interval(i, c.unit)));
    clauses.extend(c.detail.clone());
    clauses.retain(|x| !x.is_empty());
    let mut s = format!("{}{subject}", c.name);
    if !clauses.is_empty() {
        s.push_str(&format!(": {}", clauses.join("; ")));
    }
    s.push_str(&format!(": {}", c.outcome.name()));
    s
}

/// `95 % CI of the difference [+$0.01, +$0.05] (Welch's t), allowed +$0.02`.
pub fn interval(i: &crate::gate::IntervalNote, unit: Unit) -> String {
    let signed = |x: f64| {
        let sign = if x < 0.0 { "-" } else { "+" };
        format!("{sign}{}", show(x.abs(), unit))
    };
    format!("difference {} to {} by {}, allowed {}", signed(i.low), signed(i.high), i.test, signed(i.margin))
}

/// Characters a terminal or a one-line field must not see (ANSI escapes, line breaks).
pub fn inert(s: &str) -> String {
    crate::report::visible(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{Check, Outcome, Unit};

    fn check(baseline: Option<f64>, current: Option<f64>, threshold: &str, detail: Option<&str>) -> Check {
        Check {
            id: "x".into(),
            name: "Variant cost per session".into(),
            subject: Some("prompt-v7/B".into()),
            unit: Unit::Count,
            baseline,
            current,
            change: None,
            threshold: threshold.into(),
            outcome: Outcome::Insufficient,
            detail: detail.map(String::from),
            interval: None,
        }
    }

    #[test]
    fn a_sentence_leaves_out_what_a_check_does_not_have() {
        let none = check(None, None, "", Some("experiment has no variant \"control\" in this window"));
        assert_eq!(
            sentence(&none),
            "Variant cost per session (prompt-v7/B): experiment has no variant \"control\" in this window: insufficient data"
        );
        assert_eq!(
            sentence(&check(Some(9.0), None, "≥ 30", None)),
            "Variant cost per session (prompt-v7/B): 9, threshold ≥ 30: insufficient data"
        );
        assert_eq!(
            sentence(&check(Some(2.0), Some(3.0), "≥ 1", Some("d"))),
            "Variant cost per session (prompt-v7/B): 2 → 3, threshold ≥ 1; d: insufficient data"
        );
    }
}
