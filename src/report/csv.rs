//! CSV: one section per run (`--csv-section`), RFC 4180 quoting by the `csv` crate.
//! Numbers are plain (no separators, full precision); an unknown cost is an empty field.
//! A name that a spreadsheet would run as a formula is written as text (see [`text`]).

use anyhow::Result;

use super::CsvSection;
use crate::digest::{Digest, Totals};
use crate::usd::Usd;

pub fn render(d: &Digest, section: CsvSection) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    match section {
        CsvSection::Totals => {
            w.write_record(["metric", "value", "previous"])?;
            type Get = fn(&Totals) -> String;
            let fields: [(&str, Get); 13] = [
                ("cost_usd", |t| num(t.cost.as_f64())),
                ("input_tokens", |t| t.input_tokens.to_string()),
                ("output_tokens", |t| t.output_tokens.to_string()),
                ("sessions", |t| t.sessions.to_string()),
                ("model_calls", |t| count(t.model_calls)),
                ("errors", |t| count(t.errors)),
                ("runs", |t| count(t.runs)),
                ("tool_calls", |t| count(t.tool_calls)),
                ("tool_failures", |t| count(t.tool_failures)),
                ("uncosted_events", |t| count(t.uncosted_events)),
                ("events", |t| count(t.events)),
                ("model_errors", |t| count(t.model_errors)),
                ("costed_sessions", |t| count(t.costed_sessions)),
            ];
            for (name, get) in fields {
                let previous = d.previous.as_ref().map(get).unwrap_or_default();
                w.write_record([name, &get(&d.totals), &previous])?;
            }
        }
        CsvSection::ByModel => {
            w.write_record(["model", "provider", "cost_usd", "input_tokens", "output_tokens", "calls"])?;
            for m in &d.by_model {
                w.write_record([
                    text(&m.model),
                    text(&m.provider),
                    cost(m.cost),
                    m.input_tokens.to_string(),
                    m.output_tokens.to_string(),
                    count(m.calls),
                ])?;
            }
        }
        CsvSection::ByAgent => {
            w.write_record(["agent", "cost_usd", "sessions", "errors"])?;
            for a in &d.by_agent {
                w.write_record([text(&a.agent), cost(a.cost), a.sessions.to_string(), count(a.errors)])?;
            }
        }
        CsvSection::Movers => {
            w.write_record(["dim", "name", "previous_cost_usd", "cost_usd", "change_usd"])?;
            for m in &d.movers {
                w.write_record([
                    m.dim.to_string(),
                    text(&m.name),
                    num(m.previous.as_f64()),
                    num(m.current.as_f64()),
                    num((m.current - m.previous).as_f64()),
                ])?;
            }
        }
        CsvSection::ByVariant => {
            w.write_record(["experiment", "variant", "sessions", "cost_usd", "cost_per_session_usd", "errors"])?;
            for v in &d.by_variant {
                w.write_record([
                    v.experiment.as_deref().map(text).unwrap_or_default(),
                    v.variant.as_deref().map(text).unwrap_or_default(),
                    v.sessions.to_string(),
                    cost(v.cost),
                    v.cost_per_session().map(num).unwrap_or_default(),
                    v.errors.to_string(),
                ])?;
            }
        }
        CsvSection::BySession => {
            w.write_record(["session", "agent", "cost_usd", "input_tokens", "output_tokens", "model_calls"])?;
            for s in &d.by_session {
                w.write_record([
                    text(&s.session),
                    text(&s.agent),
                    cost(s.cost),
                    s.input_tokens.to_string(),
                    s.output_tokens.to_string(),
                    s.model_calls.to_string(),
                ])?;
            }
        }
        CsvSection::Daily => {
            w.write_record(["date", "cost_usd"])?;
            for day in &d.daily {
                w.write_record([day.date.to_string(), num(day.cost.as_f64())])?;
            }
        }
    }
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}

/// A name from the telemetry, as a cell. One that starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return is a formula to Excel, LibreOffice and Google Sheets (a session id
/// `=HYPERLINK(…)` would run when the weekly CSV is opened), so it gets a leading `'`, which
/// they show as text: OWASP's advice against CSV injection. JSON carries names unchanged.
fn text(name: &str) -> String {
    if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{name}")
    } else {
        name.to_string()
    }
}

fn num(v: f64) -> String {
    v.to_string()
}

/// A count the source could not give is an empty field, not 0.
fn count(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn cost(c: Option<Usd>) -> String {
    c.map(|c| num(c.as_f64())).unwrap_or_default()
}
