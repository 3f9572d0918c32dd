//! What a gate compares: digests as saved in the `obsctl.digest/v1` schema, and the old
//! `regression-check.ts` baseline files.
//!
//! The window being gated goes through the same schema (rendered, then read here), so a
//! saved baseline and a live digest are read by one code path and compare like with like.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::digest::Digest;
use crate::report::{self, Format, Style};

pub const DIGEST_SCHEMA: &str = "obsctl.digest/v1";

/// A saved `obsctl digest --format json`: the parts the gate reads.
#[derive(Clone, Debug, Deserialize)]
pub struct DigestFile {
    pub schema: String,
    pub window: WindowFile,
    #[serde(default)]
    pub sources: Vec<SourceFile>,
    pub totals: TotalsFile,
    #[serde(default)]
    pub by_model: Vec<ModelFile>,
    #[serde(default)]
    pub by_agent: Vec<AgentFile>,
    #[serde(default)]
    pub by_variant: Vec<VariantFile>,
    #[serde(default)]
    pub by_session: Vec<SessionFile>,
    pub durations: Option<DurationsFile>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub skipped_lines: u64,
    /// The `--agent`, `--model`, `--experiment` values the digest was restricted to.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WindowFile {
    pub start: String,
    pub end: String,
    pub tz: String,
    #[serde(default)]
    pub partial: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SourceFile {
    pub section: String,
    pub source: String,
    pub fallback_reason: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TotalsFile {
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub sessions: u64,
    pub model_calls: Option<u64>,
    pub errors: Option<u64>,
    pub runs: Option<u64>,
    pub tool_calls: Option<u64>,
    pub tool_failures: Option<u64>,
    pub uncosted_events: Option<u64>,
}

impl TotalsFile {
    /// The window's cost, unless no model call in it carried one: then it is unknown, not
    /// zero (CONTRACT: missing cost is not zero cost).
    pub fn known_cost(&self) -> Option<f64> {
        match (self.model_calls, self.uncosted_events) {
            (Some(calls), Some(uncosted)) if calls > 0 && uncosted >= calls => None,
            _ => Some(self.cost_usd),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct ModelFile {
    pub model: String,
    pub provider: String,
    pub cost_usd: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AgentFile {
    pub agent: String,
    pub cost_usd: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct VariantFile {
    pub experiment: Option<String>,
    pub variant: Option<String>,
    pub sessions: u64,
    pub cost_usd: Option<f64>,
    pub errors: u64,
    pub runs: Option<u64>,
    pub tool_calls: Option<u64>,
    pub tool_failures: Option<u64>,
    pub cost_sum_squares_usd2: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SessionFile {
    pub session: String,
    pub agent: String,
    pub cost_usd: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DurationsFile {
    pub p95_seconds: f64,
}

/// The old script's baseline (`~/.openclaw/telemetry/baselines/<tag>.json`). Its "per
/// session" averages were per model call, and its error rate the failed-run rate.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyFile {
    pub tag: String,
    pub captured_at: String,
    /// Model calls, whatever the name says.
    pub total_sessions: u64,
    pub avg_session_duration_ms: Option<f64>,
    pub p50_session_duration_ms: Option<f64>,
    pub p95_session_duration_ms: Option<f64>,
    pub avg_tokens_per_session: f64,
    pub avg_cost_per_session_usd: f64,
    pub model_error_rate: f64,
    pub tool_call_error_rate: Option<f64>,
}

/// A baseline file, as found.
#[derive(Clone, Debug)]
pub enum BaselineFile {
    Digest(Box<DigestFile>),
    Legacy(LegacyFile),
}

impl DigestFile {
    /// A live digest read through its own schema.
    pub fn of(digest: &Digest) -> Result<DigestFile> {
        let style = Style { color: false, csv_section: report::CsvSection::Totals };
        let json = report::render(digest, Format::Json, style)?;
        serde_json::from_slice(&json).context("the digest does not read back through its own schema")
    }

    /// Which source answered a section (`none` when none could).
    pub fn source_of(&self, section: &str) -> Option<&SourceFile> {
        self.sources.iter().find(|s| s.section == section)
    }

    /// The filters it was saved with, as [`crate::source::filter::flags`] writes them.
    pub fn filter_flags(&self) -> Vec<String> {
        crate::source::filter::flags(self.filters.iter().map(|(name, values)| (name.as_str(), values.as_slice())))
    }

    /// The window in one phrase, for reports.
    pub fn window_phrase(&self) -> String {
        format!("{} – {} ({})", self.window.start, self.window.end, self.window.tz)
    }
}

/// Reads a baseline file: a saved digest (schema checked) or the old script's format.
/// Every failure is a usage error naming the file.
pub fn read(path: &Path) -> Result<BaselineFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read baseline file {}", path.display()))?;
    parse(&text, path)
}

/// Reads a baseline file's text (`path` names it in errors): what [`read`] does once the
/// file is read.
pub fn parse(text: &str, path: &Path) -> Result<BaselineFile> {
    let shown = path.display();
    // A byte-order mark (an editor on Windows) is no JSON, but no reason to refuse the file:
    // the JSONL files are read past one too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("baseline file {shown} is not valid JSON"))?;
    let object = value.as_object().ok_or_else(|| anyhow!("baseline file {shown} is not a JSON object"))?;
    if let Some(schema) = object.get("schema") {
        if schema.as_str() != Some(DIGEST_SCHEMA) {
            bail!(
                "baseline file {shown} has schema {schema}, not \"{DIGEST_SCHEMA}\": save it again with this \
                 obsctl (`obsctl digest --format json --output FILE`)"
            );
        }
        // Read from the text again, not the value: serde_json then says where (line, column).
        let digest: DigestFile = serde_json::from_str(text)
            .with_context(|| format!("baseline file {shown} does not follow {DIGEST_SCHEMA}"))?;
        check_digest(&digest).with_context(|| format!("baseline file {shown}"))?;
        return Ok(BaselineFile::Digest(Box::new(digest)));
    }
    if object.contains_key("tag") && object.contains_key("capturedAt") {
        let legacy: LegacyFile = serde_json::from_value(value).with_context(|| {
            format!("baseline file {shown} looks like a regression-check.ts baseline but is not one")
        })?;
        check_legacy(&legacy).with_context(|| format!("baseline file {shown}"))?;
        return Ok(BaselineFile::Legacy(legacy));
    }
    bail!(
        "baseline file {shown} is neither an obsctl digest (no \"schema\": \"{DIGEST_SCHEMA}\") nor a \
         regression-check.ts baseline (no \"tag\" and \"capturedAt\")"
    )
}

/// Costs a saved digest can hold: finite and not negative (obsctl never writes others, so
/// anything else is an edited or broken file, not a baseline to pass against).
fn check_digest(d: &DigestFile) -> Result<()> {
    for (name, t) in [("window.start", &d.window.start), ("window.end", &d.window.end)] {
        if chrono::DateTime::parse_from_rfc3339(t).is_err() {
            bail!("{name} is {t:?}: expected an RFC 3339 time, as obsctl writes it");
        }
    }
    let mut costs = vec![("totals.cost_usd".to_string(), Some(d.totals.cost_usd))];
    costs.extend(d.by_model.iter().map(|m| (format!("by_model {}/{} cost_usd", m.provider, m.model), m.cost_usd)));
    costs.extend(d.by_agent.iter().map(|a| (format!("by_agent {} cost_usd", a.agent), a.cost_usd)));
    for v in &d.by_variant {
        let name = format!("by_variant {}", v.variant.as_deref().unwrap_or("(none)"));
        costs.push((format!("{name} cost_usd"), v.cost_usd));
        costs.push((format!("{name} cost_sum_squares_usd2"), v.cost_sum_squares_usd2));
    }
    costs.extend(d.by_session.iter().map(|s| (format!("by_session {} cost_usd", s.session), s.cost_usd)));
    costs.push(("durations.p95_seconds".to_string(), d.durations.as_ref().map(|x| x.p95_seconds)));
    for (name, v) in costs {
        if let Some(v) = v {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} is {v}: expected a number of 0 or more");
            }
        }
    }
    Ok(())
}

/// Numbers a baseline can hold: finite, not negative, rates within 0..=1.
fn check_legacy(l: &LegacyFile) -> Result<()> {
    let values = [
        ("avgTokensPerSession", Some(l.avg_tokens_per_session)),
        ("avgCostPerSessionUsd", Some(l.avg_cost_per_session_usd)),
        ("p95SessionDurationMs", l.p95_session_duration_ms),
        ("avgSessionDurationMs", l.avg_session_duration_ms),
        ("p50SessionDurationMs", l.p50_session_duration_ms),
    ];
    for (name, v) in values {
        if let Some(v) = v {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} is {v}: expected a number of 0 or more");
            }
        }
    }
    for (name, v) in [("modelErrorRate", Some(l.model_error_rate)), ("toolCallErrorRate", l.tool_call_error_rate)] {
        if let Some(v) = v {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} is {v}: expected a rate between 0 and 1");
            }
        }
    }
    Ok(())
}

/// Costs of one dimension's groups, by name.
pub type GroupCosts = BTreeMap<String, Option<f64>>;

impl DigestFile {
    pub fn model_costs(&self) -> GroupCosts {
        self.by_model.iter().map(|m| (format!("{}/{}", m.provider, m.model), m.cost_usd)).collect()
    }

    pub fn agent_costs(&self) -> GroupCosts {
        self.by_agent.iter().map(|a| (a.agent.clone(), a.cost_usd)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<BaselineFile> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("b.json");
        std::fs::write(&path, text)?;
        read(&path)
    }

    #[test]
    fn refuses_what_is_no_baseline() {
        let e = read_text("{not json").unwrap_err();
        assert!(format!("{e:#}").contains("is not valid JSON"), "{e:#}");
        let e = read_text(r#"{"schema": "obsctl.digest/v2"}"#).unwrap_err();
        assert!(format!("{e:#}").contains("obsctl.digest/v2"), "{e:#}");
        let e = read_text(r#"{"schema": "obsctl.digest/v1", "totals": {}}"#).unwrap_err();
        assert!(format!("{e:#}").contains("does not follow"), "{e:#}");
        let e = read_text("[1]").unwrap_err();
        assert!(format!("{e:#}").contains("not a JSON object"), "{e:#}");
        let legacy = r#"{"tag":"v1","capturedAt":"2026-11-01T00:00:00Z","totalSessions":10,"avgSessionDurationMs":1,
            "p95SessionDurationMs":2,"avgTokensPerSession":3,"avgCostPerSessionUsd":0.1,"modelErrorRate":1.5}"#;
        let e = read_text(legacy).unwrap_err();
        assert!(format!("{e:#}").contains("modelErrorRate is 1.5"), "{e:#}");
        assert!(matches!(read_text(&legacy.replace("1.5", "0.5")).unwrap(), BaselineFile::Legacy(_)));
        // A byte-order mark before the object is read past, as in the JSONL files.
        let bom = format!("\u{feff}{}", legacy.replace("1.5", "0.5"));
        assert!(matches!(read_text(&bom).unwrap(), BaselineFile::Legacy(_)));
    }
}
