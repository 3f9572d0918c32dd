//! What the human formats say: the digest as titled tables of display strings.
//!
//! The terminal table and Markdown draw the same tables; keeping the wording here means a
//! figure reads the same in both.

use chrono::NaiveDate;

use crate::digest::{change, Digest, Section, Totals};
use crate::usd::Usd;

/// A cell and how it may be coloured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Cost or failures went up.
    Worse,
    /// Cost or failures went down.
    Better,
    /// Unknown values, notes.
    Muted,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, tone: Tone::Plain }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

pub struct TextTable {
    pub title: String,
    /// Headers; a header starting with '>' is right-aligned (the '>' is not shown).
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    /// A series drawn with the table (the daily cost), when it has one.
    pub chart: Option<Chart>,
}

/// A cost over time, drawn beside its table: a sparkline on a terminal, a Mermaid bar
/// chart in Markdown. There is one only when some point is above zero: a flat line at
/// zero says nothing the table does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    pub points: Vec<(NaiveDate, Usd)>,
}

impl Chart {
    fn of(points: Vec<(NaiveDate, Usd)>) -> Option<Chart> {
        points.iter().any(|(_, cost)| *cost > Usd::ZERO).then_some(Chart { points })
    }

    /// The highest point (above zero, since a chart has one).
    pub fn max(&self) -> Usd {
        self.points.iter().map(|(_, cost)| *cost).max().unwrap_or_default()
    }
}

impl TextTable {
    pub fn columns(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        self.header.iter().map(|h| match h.strip_prefix('>') {
            Some(h) => (h, true),
            None => (*h, false),
        })
    }
}

/// The lines above the tables: window, zone, sources, comparison, warnings of note.
pub fn heading(d: &Digest) -> Vec<String> {
    let mut lines = vec![format!("Window: {}", d.window.describe())];
    if !d.filters.is_empty() {
        let f: Vec<String> = d.filters.iter().map(|(k, v)| format!("{k} {}", v.join(" or "))).collect();
        lines.push(format!("Only: {}", f.join("; ")));
    }
    if d.window.partial {
        lines.push("Partial window: it ends in the future, so figures are still growing.".into());
    }
    lines.push(format!("Source: {}", sources_label(d)));
    if let Some(prev) = &d.previous_window {
        lines.push(format!("Compared with: {}", prev.describe()));
    }
    if d.skipped_lines > 0 {
        lines.push(format!(
            "Skipped: {} malformed line{} (not counted; see warnings)",
            thousands(d.skipped_lines),
            if d.skipped_lines == 1 { "" } else { "s" }
        ));
    }
    lines
}

/// `jsonl` when one source answered everything, with the reasons it had to; otherwise
/// the sections grouped by source: `totals, …, daily from prometheus; by_variant,
/// by_session from jsonl (Loki unreachable at …)`.
pub fn sources_label(d: &Digest) -> String {
    let mut groups: Vec<(&str, Option<&str>, Vec<&str>)> = Vec::new();
    for p in &d.sources {
        let reason = p.fallback_reason.as_deref();
        match groups.iter_mut().find(|(s, r, _)| *s == p.source && *r == reason) {
            Some(group) => group.2.push(p.section.name()),
            None => groups.push((p.source, reason, vec![p.section.name()])),
        }
    }
    let first = groups.first().map(|g| g.0);
    if groups.iter().all(|g| Some(g.0) == first) {
        let reasons: Vec<&str> = groups.iter().filter_map(|g| g.1).collect();
        let source = first.unwrap_or("none");
        return if reasons.is_empty() { source.to_string() } else { format!("{source} ({})", reasons.join("; ")) };
    }
    groups
        .iter()
        .map(|(source, reason, sections)| match reason {
            Some(why) => format!("{} from {source} ({why})", sections.join(", ")),
            None => format!("{} from {source}", sections.join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn empty_notice(d: &Digest) -> String {
    format!("No events in {}.", d.window.describe())
}

pub fn tables(d: &Digest) -> Vec<TextTable> {
    let mut tables = vec![totals(d)];
    // What changed comes right after what is: the first thing read on a Monday.
    if !d.movers.is_empty() {
        tables.push(movers(d));
    }
    if !d.by_model.is_empty() {
        tables.push(by_model(d));
    }
    if !d.by_agent.is_empty() {
        tables.push(by_agent(d));
    }
    if !d.by_variant.is_empty() {
        tables.push(by_variant(d));
    }
    if !d.by_session.is_empty() {
        tables.push(by_session(d));
    }
    if !d.daily.is_empty() && d.source_of(Section::Daily).is_some() {
        tables.push(daily(d));
    }
    tables
}

/// What moved most against the previous window: models, agents and variants together,
/// largest change first.
fn movers(d: &Digest) -> TextTable {
    let rows = d
        .movers
        .iter()
        .map(|m| {
            let (now, before) = (m.current.as_f64(), m.previous.as_f64());
            let delta = m.current - m.previous;
            let sign = if m.change() < 0 { "−" } else { "+" };
            let magnitude = Usd::from_pico(delta.pico().abs());
            let tone = if m.change() > 0 { Tone::Worse } else { Tone::Better };
            vec![
                m.dim.into(),
                m.name.as_str().into(),
                m.previous.to_string().into(),
                m.current.to_string().into(),
                Cell { text: format!("{sign}{magnitude}"), tone },
                change_cell(now, before, true),
            ]
        })
        .collect();
    TextTable {
        title: "Top movers".into(),
        header: vec!["", "Name", ">Previous", ">Cost", ">Change", ">%"],
        rows,
        chart: None,
    }
}

fn totals(d: &Digest) -> TextTable {
    let now = &d.totals;
    let before = d.previous.as_ref();
    let mut header = vec!["Metric", ">This window"];
    if before.is_some() {
        header.extend([">Previous", ">Change"]);
    }
    // A figure the source cannot give is left out rather than shown as 0.
    type Get = fn(&Totals) -> Option<f64>;
    let metric = |label: &str, get: Get, text: fn(f64) -> String, up_is_worse: bool| {
        let value = get(now)?;
        let mut row: Vec<Cell> = vec![label.into(), text(value).into()];
        if let Some(before) = before {
            match get(before) {
                Some(old) => {
                    row.push(text(old).into());
                    row.push(change_cell(value, old, up_is_worse));
                }
                None => row.extend([Cell { text: "n/a".into(), tone: Tone::Muted }, "".into()]),
            }
        }
        Some(row)
    };
    let count = |v: f64| thousands(v as u64);
    // Prometheus alone has no distinct sessions: its figure keeps its own name.
    let only_metrics = now.costed_sessions.is_some()
        && d.source_of(Section::Totals).is_some_and(|p| p.source == "prometheus" && p.counts_from.is_none());
    let rows = [
        metric("Cost", |t| Some(t.cost.as_f64()), Usd::show_f64, true),
        if only_metrics { None } else { metric("Sessions", |t| Some(t.sessions as f64), count, false) },
        metric("Costed sessions (per model)", |t| t.costed_sessions.map(|v| v as f64), count, false),
        metric("Model calls", |t| t.model_calls.map(|v| v as f64), count, false),
        metric("Input tokens", |t| Some(t.input_tokens as f64), count, false),
        metric("Output tokens", |t| Some(t.output_tokens as f64), count, false),
        metric("Failed runs", |t| t.errors.map(|v| v as f64), count, true),
        metric("Model errors", |t| t.model_errors.map(|v| v as f64), count, true),
        metric("Tool calls", |t| t.tool_calls.map(|v| v as f64), count, false),
        metric("Tool failures", |t| t.tool_failures.map(|v| v as f64), count, true),
        metric("Calls without cost", |t| t.uncosted_events.map(|v| v as f64), count, true),
    ];
    let mut rows: Vec<Vec<Cell>> = rows.into_iter().flatten().collect();
    if let Some(d) = &d.durations {
        let secs = |v: f64| format!("{v:.1} s");
        rows.push(vec!["Session duration p50".into(), secs(d.p50_seconds).into()]);
        rows.push(vec!["Session duration p95".into(), secs(d.p95_seconds).into()]);
        if before.is_some() {
            for row in rows.iter_mut().rev().take(2) {
                row.extend(["".into(), "".into()]);
            }
        }
    }
    TextTable { title: "Totals".into(), header, rows, chart: None }
}

fn change_cell(now: f64, before: f64, up_is_worse: bool) -> Cell {
    match change(now, before) {
        None if now == before => Cell { text: "–".into(), tone: Tone::Muted },
        None => Cell { text: "new".into(), tone: Tone::Muted },
        Some(c) => {
            let tone = match (c > 0.0, c < 0.0, up_is_worse) {
                (true, _, true) | (_, true, false) => Tone::Worse,
                (_, true, true) | (true, _, false) => Tone::Better,
                _ => Tone::Plain,
            };
            Cell { text: percent(c), tone }
        }
    }
}

fn by_model(d: &Digest) -> TextTable {
    let rows = d
        .by_model
        .iter()
        .map(|m| {
            vec![
                m.model.as_str().into(),
                m.provider.as_str().into(),
                cost_cell(m.cost),
                thousands(m.input_tokens).into(),
                thousands(m.output_tokens).into(),
                optional(m.calls),
            ]
        })
        .collect();
    TextTable {
        title: "By model".into(),
        header: vec!["Model", "Provider", ">Cost", ">Input tokens", ">Output tokens", ">Calls"],
        rows,
        chart: None,
    }
}

fn by_agent(d: &Digest) -> TextTable {
    let rows = d
        .by_agent
        .iter()
        .map(|a| vec![a.agent.as_str().into(), cost_cell(a.cost), thousands(a.sessions).into(), optional(a.errors)])
        .collect();
    TextTable {
        title: "By agent".into(),
        header: vec!["Agent", ">Cost", ">Sessions", ">Failed runs"],
        rows,
        chart: None,
    }
}

fn by_variant(d: &Digest) -> TextTable {
    let rows = d
        .by_variant
        .iter()
        .map(|v| {
            vec![
                v.experiment.as_deref().map_or(Cell { text: "(none)".into(), tone: Tone::Muted }, Cell::from),
                v.variant.as_deref().map_or(Cell { text: "–".into(), tone: Tone::Muted }, Cell::from),
                thousands(v.sessions).into(),
                cost_cell(v.cost),
                cost_cell(v.cost_per_session().and_then(Usd::from_f64)),
                thousands(v.errors).into(),
            ]
        })
        .collect();
    TextTable {
        title: "By experiment variant".into(),
        header: vec!["Experiment", "Variant", ">Sessions", ">Cost", ">Cost/session", ">Failed runs"],
        rows,
        chart: None,
    }
}

fn by_session(d: &Digest) -> TextTable {
    let rows = d
        .by_session
        .iter()
        .map(|s| {
            vec![
                s.session.as_str().into(),
                s.agent.as_str().into(),
                cost_cell(s.cost),
                thousands(s.input_tokens).into(),
                thousands(s.output_tokens).into(),
                thousands(s.model_calls).into(),
            ]
        })
        .collect();
    TextTable {
        title: format!("Top {} sessions by cost", d.by_session.len()),
        header: vec!["Session", "Agent", ">Cost", ">Input tokens", ">Output tokens", ">Model calls"],
        rows,
        chart: None,
    }
}

fn daily(d: &Digest) -> TextTable {
    let rows = d
        .daily
        .iter()
        .map(|day| vec![day.date.format("%Y-%m-%d %a").to_string().into(), day.cost.to_string().into()])
        .collect();
    TextTable {
        title: format!("Daily cost ({})", d.window.tz.name()),
        header: vec!["Day", ">Cost"],
        rows,
        chart: Chart::of(d.daily.iter().map(|day| (day.date, day.cost)).collect()),
    }
}

fn cost_cell(cost: Option<Usd>) -> Cell {
    match cost {
        Some(c) => c.to_string().into(),
        None => Cell { text: "unknown".into(), tone: Tone::Muted },
    }
}

fn optional(n: Option<u64>) -> Cell {
    match n {
        Some(n) => thousands(n).into(),
        None => Cell { text: "n/a".into(), tone: Tone::Muted },
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    crate::usd::grouped(n.into())
}

/// `0.234` → `+23.4 %`, with a real minus sign for decreases.
pub fn percent(change: f64) -> String {
    let p = change * 100.0;
    if p.abs() < 0.05 {
        return "±0.0 %".into();
    }
    let sign = if p > 0.0 { "+" } else { "−" };
    format!("{sign}{:.1} %", p.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn percent_signs() {
        assert_eq!(percent(0.234), "+23.4 %");
        assert_eq!(percent(-0.5), "−50.0 %");
        assert_eq!(percent(0.0001), "±0.0 %");
    }

    #[test]
    fn a_chart_needs_a_day_above_zero() {
        let day = |d: u32, usd: f64| (NaiveDate::from_ymd_opt(2026, 11, d).unwrap(), Usd::from_f64(usd).unwrap());
        assert_eq!(Chart::of(vec![]), None);
        assert_eq!(Chart::of(vec![day(16, 0.0), day(17, 0.0)]), None);
        let chart = Chart::of(vec![day(16, 0.0), day(17, 0.0042), day(18, 0.001)]).unwrap();
        assert_eq!(chart.max(), Usd::from_f64(0.0042).unwrap());
    }

    #[test]
    fn change_tones() {
        assert_eq!(change_cell(2.0, 1.0, true).tone, Tone::Worse);
        assert_eq!(change_cell(0.5, 1.0, true).tone, Tone::Better);
        assert_eq!(change_cell(2.0, 1.0, false).tone, Tone::Better);
        assert_eq!(change_cell(3.0, 0.0, true).text, "new");
        assert_eq!(change_cell(0.0, 0.0, true).text, "–");
    }
}
