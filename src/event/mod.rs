//! What a telemetry line means: one JSONL line to one [`Event`], whatever its shape, and
//! the rules that name its session, agent and model. The one home of those rules: the
//! JSONL source reads files with them, the Loki source restates them in LogQL (and resolves
//! its answers' labels with [`normalise_model`] and [`agent_from_session_key`]), doctor and
//! the filters judge events with them.
//!
//! Three shapes exist in the wild (CONTRACT.md §1) and may be mixed in one file, so the
//! shape is decided per line, by which of `type` (A), `eventType` (B) or `kind` (C) it
//! carries. One struct with every field of every shape lets serde read a line in a single
//! pass, borrowing strings from the line instead of copying them. A line that does not
//! hold what its shape promises is an error with a short reason; the caller counts it and
//! moves on.
//!
//! Most lines are read by [`flat`], a strict reader for flat objects that is several times
//! faster than serde_json; whatever it does not fully understand goes through serde_json,
//! which stays the reference. Both fill the same [`RawLine`].

mod flat;
mod timestamp;

use std::borrow::Cow;

use chrono::DateTime;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::usd::Usd;
use crate::window::{Nanos, NANOS_PER_SEC};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The digest script's `type` events.
    A,
    /// Telemetry plugin v1: `eventType`.
    B,
    /// Telemetry plugin v2: `kind`, epoch-ms `ts`, nested `data`.
    C,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A model API call: cost and tokens.
    ModelCall,
    /// A tool call, failed or not.
    ToolCall,
    /// The end of an agent run, failed or not.
    RunEnd,
    /// Anything else (session start/end, run start, snapshots): it only places its session
    /// in the window.
    Other,
}

/// A line, normalised: the same meaning whichever shape it came in.
#[derive(Debug, PartialEq)]
pub struct Event<'a> {
    pub shape: Shape,
    pub kind: EventKind,
    pub time: Nanos,
    pub session: Option<Cow<'a, str>>,
    pub agent: Cow<'a, str>,
    pub model: Cow<'a, str>,
    pub provider: Cow<'a, str>,
    pub experiment: Option<Cow<'a, str>>,
    pub variant: Option<Cow<'a, str>>,
    /// `None` when a model call carries no cost: unknown, not free.
    pub cost: Option<Usd>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// A failed run or tool call.
    pub failed: bool,
}

/// Every field of every shape. Unknown fields are skipped; a known field of the wrong type
/// makes the line malformed (`"costUsd":"12"` is not a cost).
///
/// `S` is `&str` for the usual line, borrowed from the buffer with no copy, or `String`
/// for a line with escapes (`\"`, `\u00e9`), which cannot be borrowed. (serde does not
/// borrow through `Option<Cow<str>>`, hence the two instantiations instead of a `Cow`.)
#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
struct RawLine<S> {
    #[serde(rename = "type")]
    type_a: Option<S>,
    #[serde(rename = "eventType")]
    type_b: Option<S>,
    #[serde(rename = "kind")]
    type_c: Option<S>,

    timestamp: Option<S>,
    ts: Option<f64>,

    #[serde(rename = "sessionId")]
    session_id: Option<S>,
    #[serde(rename = "sessionKey")]
    session_key: Option<S>,
    #[serde(rename = "agentId")]
    agent_id: Option<S>,

    model: Option<S>,
    provider: Option<S>,
    #[serde(rename = "costUsd")]
    cost_usd: Option<f64>,
    #[serde(rename = "estimatedCostUsd")]
    estimated_cost_usd: Option<f64>,
    #[serde(rename = "inputTokens")]
    input_tokens: Option<u64>,
    #[serde(rename = "outputTokens")]
    output_tokens: Option<u64>,

    success: Option<bool>,
    status: Option<S>,

    #[serde(rename = "experimentId")]
    experiment_id: Option<S>,
    variant: Option<S>,
    #[serde(rename = "experiment.id")]
    dotted_experiment_id: Option<S>,
    #[serde(rename = "experiment.variant")]
    dotted_variant: Option<S>,
    experiment: Option<Experiment<S>>,
    data: Option<DataC<S>>,
    error: Option<IgnoredAny>,
}

/// `experiment: {"id": …, "variant": …}`, or just a name.
#[derive(Deserialize)]
#[serde(untagged, bound(deserialize = "S: Deserialize<'de>"))]
enum Experiment<S> {
    Object { id: Option<S>, variant: Option<S> },
    Name(S),
}

/// Shape C's `data` object. `cumulative` and `usage` are deliberately absent: they repeat
/// what the deltas already count.
#[derive(Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
struct DataC<S> {
    model: Option<S>,
    provider: Option<S>,
    #[serde(rename = "costUsd")]
    cost_usd: Option<f64>,
    delta: Option<DeltaC>,
    success: Option<bool>,
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct DeltaC {
    input: Option<u64>,
    output: Option<u64>,
}

/// Why a line was skipped: short, for a warning that names the file and line.
pub type LineError = String;

pub fn parse_line(line: &[u8]) -> Result<Event<'_>, LineError> {
    let mut raw = RawLine::default();
    match flat::parse(line, &mut raw) {
        Some(()) => raw.take_event(),
        None => parse_line_with_serde(line),
    }
}

/// The fast path alone: `None` when [`flat`] leaves the line to serde_json. Public (but
/// hidden) for the differential test and the fuzz target, which check that whenever it
/// answers, [`parse_line_with_serde`] gives the same answer.
#[doc(hidden)]
pub fn parse_line_flat(line: &[u8]) -> Option<Result<Event<'_>, LineError>> {
    let mut raw = RawLine::default();
    flat::parse(line, &mut raw).map(|()| raw.take_event())
}

/// The reference path: serde_json for every line.
#[doc(hidden)]
pub fn parse_line_with_serde(line: &[u8]) -> Result<Event<'_>, LineError> {
    if memchr::memchr(b'\\', line).is_none() {
        let mut raw: RawLine<&str> = serde_json::from_slice(line).map_err(|e| describe_json_error(&e))?;
        raw.take_event()
    } else {
        let mut raw: RawLine<String> = serde_json::from_slice(line).map_err(|e| describe_json_error(&e))?;
        raw.take_event()
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json says "at line 1 column N"; the line number is ours to give.
    let msg = e.to_string();
    match msg.rsplit_once(" at line ") {
        Some((what, pos)) => match pos.split_once(" column ") {
            Some((_, col)) => format!("{what} (column {col})"),
            None => what.to_string(),
        },
        None => msg,
    }
}

impl<S: AsRef<str>> RawLine<S> {
    // Inlined into `parse_line`, the ~400-byte `RawLine` is not copied into a call and the
    // unused shape branches fold away: 210 fewer instructions per line (callgrind). It
    // takes the fields out of a `RawLine` left in place: moving one that the fast reader
    // had filled through a reference copied it whole (76 instructions per line).
    #[inline(always)]
    fn take_event<'a>(&mut self) -> Result<Event<'a>, LineError>
    where
        S: Into<Cow<'a, str>>,
    {
        let (shape, kind, failed) = self.classify()?;
        let time = self.time()?;
        let (session_id, session_key, agent_id) =
            (self.session_id.take(), self.session_key.take(), self.agent_id.take());
        let (experiment, data) = (self.experiment.take(), self.data.take());
        let (cost, input_tokens, output_tokens, model, provider) = match (shape, kind, data) {
            (Shape::C, EventKind::ModelCall, Some(data)) => {
                let delta = data.delta.unwrap_or(DeltaC { input: None, output: None });
                (data.cost_usd, delta.input.unwrap_or(0), delta.output.unwrap_or(0), data.model, data.provider)
            }
            (Shape::C, _, _) => (None, 0, 0, None, None),
            (_, EventKind::ModelCall, _) => (
                if shape == Shape::A { self.cost_usd } else { self.estimated_cost_usd.or(self.cost_usd) },
                self.input_tokens.unwrap_or(0),
                self.output_tokens.unwrap_or(0),
                self.model.take(),
                self.provider.take(),
            ),
            _ => (None, 0, 0, None, None),
        };
        let cost = match cost {
            Some(c) if c > Usd::MAX_ONE => {
                return Err(format!("invalid cost {c}: over $1e15, the most one call is taken to cost"))
            }
            Some(c) => Some(Usd::from_f64(c).ok_or_else(|| format!("invalid cost {c}: negative or not finite"))?),
            None => None,
        };
        let (model, provider) = normalise_model(model.map(Into::into), provider.map(Into::into));
        let agent = resolve_agent(agent_id.map(Into::into), session_key.as_ref().map(AsRef::as_ref));
        let session = session_id.or(session_key).map(Into::into);
        let (nested_experiment, nested_variant) = match experiment {
            Some(Experiment::Object { id, variant }) => (id, variant),
            Some(Experiment::Name(id)) => (Some(id), None),
            None => (None, None),
        };
        Ok(Event {
            shape,
            kind,
            time,
            session,
            agent,
            model,
            provider,
            experiment: (self.experiment_id.take().or(self.dotted_experiment_id.take()).or(nested_experiment))
                .map(Into::into),
            variant: self.variant.take().or(self.dotted_variant.take()).or(nested_variant).map(Into::into),
            cost,
            input_tokens,
            output_tokens,
            failed,
        })
    }

    fn classify(&self) -> Result<(Shape, EventKind, bool), LineError> {
        if let Some(t) = &self.type_a {
            let kind = match t.as_ref() {
                "model_usage" => EventKind::ModelCall,
                "tool_call" => EventKind::ToolCall,
                "agent_end" => EventKind::RunEnd,
                _ => EventKind::Other,
            };
            return Ok((Shape::A, kind, self.success == Some(false)));
        }
        if let Some(t) = &self.type_b {
            let kind = match t.as_ref() {
                "model_usage" => EventKind::ModelCall,
                "tool_call" | "tool_result" => EventKind::ToolCall,
                "agent_end" => EventKind::RunEnd,
                _ => EventKind::Other,
            };
            let failed = self.success == Some(false)
                || matches!(self.status.as_ref().map(AsRef::as_ref), Some(s) if !s.eq_ignore_ascii_case("success") && !s.eq_ignore_ascii_case("ok"));
            return Ok((Shape::B, kind, failed));
        }
        if let Some(t) = &self.type_c {
            let kind = match t.as_ref() {
                "llm.call" => EventKind::ModelCall,
                "tool.end" => EventKind::ToolCall,
                "run.end" => EventKind::RunEnd,
                _ => EventKind::Other,
            };
            let data = self.data.as_ref();
            let failed = self.error.is_some()
                || data.and_then(|d| d.success) == Some(false)
                || data.and_then(|d| d.is_error) == Some(true);
            return Ok((Shape::C, kind, failed));
        }
        Err("no type, eventType or kind field: not a telemetry event".into())
    }

    fn time(&self) -> Result<Nanos, LineError> {
        if let Some(ms) = self.ts {
            return epoch_ms_to_nanos(ms).ok_or_else(|| format!("invalid ts {ms}: not epoch milliseconds"));
        }
        match &self.timestamp {
            Some(text) => parse_timestamp(text.as_ref()),
            None => Err("no timestamp or ts field".into()),
        }
    }
}

fn epoch_ms_to_nanos(ms: f64) -> Option<Nanos> {
    // Years 1970..2262, the range `Nanos` holds.
    (ms.is_finite() && (0.0..9.2e15).contains(&ms)).then(|| (ms * 1e6).round() as i64)
}

/// ISO 8601 / RFC 3339 with an offset (`2026-11-19T15:55:56.111122Z`).
pub fn parse_timestamp(text: &str) -> Result<Nanos, LineError> {
    let bad = || format!("invalid timestamp {text:?}");
    let ns = match timestamp::parse(text) {
        Some(ns) => ns,
        None => DateTime::parse_from_rfc3339(text).map_err(|_| bad())?.timestamp_nanos_opt().ok_or_else(bad)?,
    };
    // Before 1970 or after 2262 no telemetry was written; reading one as real would place
    // it in no window and lose it silently.
    if ns < 0 {
        return Err(bad());
    }
    debug_assert!(ns / NANOS_PER_SEC < i64::MAX);
    Ok(ns)
}

/// The fast timestamp reader alone (`None` for what it leaves to chrono, which
/// [`parse_timestamp`] then asks). Public (but hidden) for the fuzz target, which checks
/// that whenever it answers, chrono gives the same instant.
#[doc(hidden)]
pub fn parse_timestamp_fast(text: &str) -> Option<Nanos> {
    timestamp::parse(text)
}

/// `anthropic/claude-x` is model `claude-x` of provider `anthropic` (an explicit provider
/// wins over the prefix); provider names are compared case-insensitively, so they are
/// lowercased; a missing model or provider is `"unknown"`. The Loki source uses it too.
pub fn normalise_model<'a>(
    model: Option<Cow<'a, str>>,
    provider: Option<Cow<'a, str>>,
) -> (Cow<'a, str>, Cow<'a, str>) {
    let (model, prefix) = match model {
        Some(Cow::Borrowed(m)) => match split_slash(m) {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => (Cow::Borrowed(m), Some(Cow::Borrowed(p))),
            _ => (Cow::Borrowed(m), None),
        },
        Some(Cow::Owned(m)) => match split_slash(&m) {
            Some((p, rest)) if !p.is_empty() && !rest.is_empty() => {
                (Cow::Owned(rest.to_string()), Some(Cow::Owned(p.to_string())))
            }
            _ => (Cow::Owned(m), None),
        },
        None => (Cow::Borrowed("unknown"), None),
    };
    let provider = match provider.filter(|p| !p.is_empty()).or(prefix) {
        Some(p) if p.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Owned(p.to_ascii_lowercase()),
        Some(p) => p,
        None => Cow::Borrowed("unknown"),
    };
    (model, provider)
}

/// `split_once('/')` by bytes: the generic pattern search cost more than the rest of
/// `normalise_model`, which runs for every model call.
fn split_slash(s: &str) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == b'/')?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `agentId`, unless missing or `"unknown"`; then the `<id>` of an `agent:<id>:…` session
/// key; else `"unknown"`.
fn resolve_agent<'a>(agent_id: Option<Cow<'a, str>>, session_key: Option<&str>) -> Cow<'a, str> {
    match agent_id {
        Some(a) if !a.is_empty() && a != "unknown" => a,
        _ => match session_key.and_then(agent_from_session_key) {
            Some(a) => Cow::Owned(a.to_string()),
            None => Cow::Borrowed("unknown"),
        },
    }
}

pub fn agent_from_session_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("agent:")?;
    let id = rest.split(':').next()?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Event<'_> {
        parse_line(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn reason(s: &[u8]) -> String {
        parse_line(s).expect_err("should be refused")
    }

    #[test]
    fn shape_a_model_usage() {
        let e = parse(
            r#"{"type":"model_usage","model":"claude-sonnet-4-5","provider":"anthropic","inputTokens":9289,"outputTokens":3942,"costUsd":0.086997,"durationMs":7895,"timestamp":"2026-11-19T15:56:00.371985Z","agentId":"main","sessionId":"sess-31-0000000","experimentId":"router-2026-11","variant":"control"}"#,
        );
        assert_eq!(e.shape, Shape::A);
        assert_eq!(e.kind, EventKind::ModelCall);
        assert_eq!(e.time, 1_795_103_760_371_985_000);
        assert_eq!(e.session.as_deref(), Some("sess-31-0000000"));
        assert_eq!(
            (e.agent.as_ref(), e.model.as_ref(), e.provider.as_ref()),
            ("main", "claude-sonnet-4-5", "anthropic")
        );
        assert_eq!((e.experiment.as_deref(), e.variant.as_deref()), (Some("router-2026-11"), Some("control")));
        assert_eq!(e.cost, Usd::from_f64(0.086997));
        assert_eq!((e.input_tokens, e.output_tokens), (9289, 3942));
        assert!(!e.failed);
    }

    #[test]
    fn shape_a_outcomes() {
        let e = parse(
            r#"{"type":"agent_end","success":false,"timestamp":"2026-11-19T23:09:46.621702Z","agentId":"researcher","sessionId":"s1"}"#,
        );
        assert_eq!((e.kind, e.failed), (EventKind::RunEnd, true));
        let e = parse(
            r#"{"type":"tool_call","tool":"bash","success":true,"durationMs":1782,"timestamp":"2026-11-16T11:26:58.739676Z","agentId":"main","sessionId":"s1"}"#,
        );
        assert_eq!((e.kind, e.failed), (EventKind::ToolCall, false));
        let e = parse(r#"{"type":"session_start","timestamp":"2026-11-16T11:26:58Z","sessionId":"s1"}"#);
        assert_eq!((e.kind, e.agent.as_ref()), (EventKind::Other, "unknown"));
    }

    #[test]
    fn shape_b_prefixed_model_casing_and_session_key_agent() {
        let e = parse(
            r#"{"eventId":"b003-b1f0c2","timestamp":"2026-11-17T09:16:12.250Z","sessionKey":"agent:ops:main:b1f0c2","sessionKind":"main","eventType":"model_usage","model":"openai/gpt-5","provider":"OpenAI","inputTokens":4000,"outputTokens":900,"cacheReadTokens":0,"cacheWriteTokens":0,"totalTokens":4900,"estimatedCostUsd":0.014,"durationMs":2100}"#,
        );
        assert_eq!(e.shape, Shape::B);
        assert_eq!((e.model.as_ref(), e.provider.as_ref(), e.agent.as_ref()), ("gpt-5", "openai", "ops"));
        assert_eq!(e.session.as_deref(), Some("agent:ops:main:b1f0c2"));
        assert_eq!(e.cost, Usd::from_f64(0.014));
        // No estimatedCostUsd: unknown cost, tokens still count.
        let e = parse(
            r#"{"timestamp":"2026-11-19T03:00:40.125Z","sessionKey":"agent:ops:cron:7d21aa","eventType":"model_usage","model":"anthropic/claude-sonnet-4-5","provider":"anthropic","inputTokens":800,"outputTokens":60}"#,
        );
        assert_eq!((e.cost, e.input_tokens), (None, 800));
        for (status, failed) in [("success", false), ("error", true), ("timeout", true), ("aborted", true)] {
            let line = format!(
                r#"{{"timestamp":"2026-11-19T03:01:10.000Z","sessionKey":"agent:ops:cron:7d21aa","eventType":"agent_end","status":"{status}"}}"#
            );
            assert_eq!(parse(&line).failed, failed, "{status}");
        }
    }

    #[test]
    fn shape_c_llm_call_counts_deltas_not_cumulative() {
        let e = parse(
            r#"{"id":"evt_1","ts":1794988809480,"seq":106,"agentId":"ops","sessionKey":"agent:ops:main:5e77aa","sessionId":"c1a2b3c4-0001","runId":"run-c1-1","kind":"llm.call","data":{"model":"anthropic/claude-sonnet-4-5","provider":"anthropic","costUsd":0.00297,"durationMs":1800,"delta":{"input":300,"output":120,"cacheRead":900,"cacheWrite":0,"total":1320},"cumulative":{"input":1500,"output":430,"cacheRead":900,"cacheWrite":900,"total":3730}},"source":"hook"}"#,
        );
        assert_eq!((e.shape, e.kind), (Shape::C, EventKind::ModelCall));
        assert_eq!(e.time, 1_794_988_809_480_000_000);
        assert_eq!((e.input_tokens, e.output_tokens), (300, 120));
        assert_eq!(e.cost, Usd::from_f64(0.00297));
        assert_eq!(e.session.as_deref(), Some("c1a2b3c4-0001"), "sessionId wins over sessionKey");
        assert_eq!(e.model, "claude-sonnet-4-5");
    }

    #[test]
    fn shape_c_snapshot_is_not_a_model_call() {
        let e = parse(
            r#"{"ts":1794988820000,"agentId":"ops","sessionId":"c1","kind":"usage.snapshot","data":{"model":"anthropic/claude-sonnet-4-5","usage":{"input":4000,"output":1130},"costUsd":0.032955}}"#,
        );
        assert_eq!((e.kind, e.cost, e.input_tokens), (EventKind::Other, None, 0));
    }

    #[test]
    fn shape_c_failures_and_unknown_agent() {
        let e = parse(
            r#"{"ts":1794994252000,"agentId":"unknown","sessionKey":"agent:ops:cron:9b10ff","sessionId":"c2","kind":"tool.end","data":{"toolName":"bash","isError":true},"error":{"message":"command failed"}}"#,
        );
        assert_eq!((e.kind, e.failed, e.agent.as_ref()), (EventKind::ToolCall, true, "ops"));
        let e = parse(
            r#"{"ts":1794994261000,"sessionId":"c2","kind":"run.end","data":{"success":false},"error":{"message":"run aborted"}}"#,
        );
        assert_eq!((e.kind, e.failed), (EventKind::RunEnd, true));
        let e = parse(r#"{"ts":1794994261000,"sessionId":"c2","kind":"run.end","data":{"success":true},"error":null}"#);
        assert!(!e.failed, "error: null is no error");
    }

    #[test]
    fn experiment_spellings() {
        let e = parse(
            r#"{"type":"session_start","timestamp":"2026-11-16T00:00:00Z","experiment":{"id":"x","variant":"B"}}"#,
        );
        assert_eq!((e.experiment.as_deref(), e.variant.as_deref()), (Some("x"), Some("B")));
        let e = parse(
            r#"{"type":"session_start","timestamp":"2026-11-16T00:00:00Z","experiment.id":"y","experiment.variant":"A"}"#,
        );
        assert_eq!((e.experiment.as_deref(), e.variant.as_deref()), (Some("y"), Some("A")));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let e =
            parse(r#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","sessionId":"a\"b","model":"m\u00e9"}"#);
        assert_eq!(e.session.as_deref(), Some("a\"b"));
        assert_eq!(e.model, "mé");
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        assert!(reason(b"not json at all: gateway restarted").contains("expected"));
        assert!(reason(br#"{"type":"model_usage","costUsd":"#).contains("EOF"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":"12"}"#)
            .contains("invalid type"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":"n/a"}"#)
            .contains("invalid type"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":-0.5}"#)
            .contains("invalid cost"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":1e999}"#)
            .contains("number out of range"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":NaN}"#)
            .contains("expected value"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":-3}"#)
            .contains("invalid value"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":1.5}"#)
            .contains("invalid type"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"yesterday"}"#).contains("invalid timestamp"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16"}"#).contains("invalid timestamp"));
        assert!(reason(br#"{"type":"model_usage"}"#).contains("no timestamp"));
        assert!(reason(br#"{"kind":"llm.call","ts":"1794988809480"}"#).contains("invalid type"));
        assert!(reason(br#"{"kind":"llm.call","ts":-5}"#).contains("invalid ts"));
        assert!(reason(br#"{"hello":"world","timestamp":"2026-11-16T00:00:00Z"}"#).contains("not a telemetry event"));
        assert!(reason(b"{\"type\":\"model_usage\",\"timestamp\":\"2026-11-16T00:00:00Z\",\"model\":\"\xff\xfe\"}")
            .contains("invalid unicode"));
        assert!(reason(b"").contains("EOF"));
        assert!(reason(b"[1,2,3]").contains("invalid type"));
        assert!(reason(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z"} trailing"#).contains("trailing"));
    }

    #[test]
    fn model_normalisation() {
        let n = |m: Option<&'static str>, p: Option<&'static str>| {
            let (m, p) = normalise_model(m.map(Cow::Borrowed), p.map(Cow::Borrowed));
            (m.into_owned(), p.into_owned())
        };
        assert_eq!(n(Some("anthropic/claude-x"), None), ("claude-x".into(), "anthropic".into()));
        assert_eq!(n(Some("anthropic/claude-x"), Some("Anthropic")), ("claude-x".into(), "anthropic".into()));
        assert_eq!(n(Some("claude-x"), Some("ANTHROPIC")), ("claude-x".into(), "anthropic".into()));
        assert_eq!(n(Some("claude-x"), None), ("claude-x".into(), "unknown".into()));
        assert_eq!(n(None, None), ("unknown".into(), "unknown".into()));
        assert_eq!(n(Some("/odd"), None), ("/odd".into(), "unknown".into()));
    }

    #[test]
    fn an_absurd_cost_is_refused_before_it_can_overflow_a_total() {
        // 1e27 saturated the i128 of pico-dollars: two such lines overflowed the sum.
        let line = |cost: &str| {
            format!(
                r#"{{"type":"model_usage","timestamp":"2026-11-18T10:00:00Z","sessionId":"s","model":"m","costUsd":{cost}}}"#
            )
        };
        assert!(reason(line("1e27").as_bytes()).contains("over $1e15"), "{}", reason(line("1e27").as_bytes()));
        assert_eq!(parse(&line("1e15")).cost, Usd::from_f64(1e15));
        assert_eq!(Usd::from_f64(1.0000001e15), None);
    }

    #[test]
    fn agent_from_keys() {
        assert_eq!(agent_from_session_key("agent:ops:cron:7d21aa"), Some("ops"));
        assert_eq!(agent_from_session_key("agent::x"), None);
        assert_eq!(agent_from_session_key("sess-1"), None);
    }
}
