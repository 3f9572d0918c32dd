//! Loki: is it ready, does the telemetry selector have streams in the window, are its
//! stream labels low-cardinality, and were the lines stored at their own time.
//!
//! Three requests besides `/ready`, whatever the data: the series API for the selector
//! (which streams, with which labels), a log query for the newest 100 lines (each line's
//! own time, read with the JSONL parser, against the time Loki stored it at), and, only
//! when no stream matches, the values of the selector's labels (what *is* shipped).
//! Real Loki's rules apply (`fixtures/loki/README.md`): every metadata call gets
//! `start`/`end` (without them the answer depends on the ingester's state), a log query
//! stays under `max_entries_limit_per_query` (5000) and `query_range` under
//! `max_query_length` (721h), and error bodies are plain text.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::{human_duration, Checkup, Finding, Need, Outcome, Severity, SourceStatus};
use crate::config::redact_url;
use crate::error::describe;
use crate::event::parse_line;
use crate::source::loki::LokiSource;
use crate::window::{format_rfc3339, Nanos, NANOS_PER_SEC};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines sampled for the timestamp check: far under the 5000 entries a log query may ask.
pub const SAMPLE: usize = 100;
/// A median difference above this between a line's own time and Loki's is a warning.
pub const MAX_SKEW_SECONDS: i64 = 60;
/// A stream label with more values than this in the window looks per-session.
pub const MAX_LABEL_VALUES: usize = 100;
/// `query_range` refuses more than 721h by default: the sample looks at most this far back.
const MAX_SAMPLE_SPAN: Nanos = 30 * 86_400 * NANOS_PER_SEC;

const SHIPPING: &str =
    "ship ~/.openclaw/telemetry/events.jsonl as its own stream with only job and agent as labels, at each event's own time (README: \"Shipping the telemetry file to Loki\")";

pub async fn check(c: &Checkup, need: Need) -> Outcome {
    let settings = &c.sources.loki;
    let mut status = SourceStatus { source: "loki", location: redact_url(&settings.server.url), answered: false };
    let fail = |status, why: String| {
        let finding = Finding::problem(
            "loki.reachable",
            need.missing(),
            None,
            why,
            "no per-session or per-variant detail from Loki: --source loki fails (exit 3); --source auto takes it from the files",
            "start Loki, or point --loki-url (OBSCTL_LOKI_URL, [loki] url) at it; check --org-id and the credentials",
        );
        Outcome { status, findings: vec![finding] }
    };
    let source = match crate::source::loki_source(&c.sources) {
        Ok(source) => source,
        Err(e) => return fail(status, describe(&e)),
    };
    status.location = source.shown_url().to_string();
    if let Err(e) = source.probe(PROBE_TIMEOUT).await {
        return fail(status, describe(&e));
    }
    status.answered = true;
    let selector = settings.selector.as_str();
    let mut findings = vec![Finding::ok(
        "loki.reachable",
        None,
        format!("Loki at {} is ready", source.shown_url()),
        "per-session and per-variant detail can come from Loki",
    )];
    let (start, end) = (c.window.start.to_string(), c.window.end.to_string());
    let streams =
        match source.get_tried("/loki/api/v1/series", &[("match[]", selector), ("start", &start), ("end", &end)]).await
        {
            Ok((body, tries)) => parse_series(&body)
                .map_err(|e| format!("Loki at {}: GET /loki/api/v1/series: {e} ({tries})", source.shown_url())),
            Err(e) => Err(describe(&e)),
        };
    let streams = match streams {
        Ok(streams) => streams,
        Err(why) => {
            status.answered = false;
            let fix = "check --org-id (X-Scope-OrgID) and the credentials; --verbose shows Loki's whole answer";
            findings.push(Finding::refused("loki.streams", &why, fix));
            return Outcome { status, findings };
        }
    };
    let window = format!("between {} and {}", format_rfc3339(c.window.start), format_rfc3339(c.window.end));
    if streams.is_empty() {
        let shipped = shipped_instead(&source, selector, &start, &end).await;
        findings.push(Finding::problem(
            "loki.streams",
            Severity::Error,
            Some(selector.to_string()),
            format!("no stream matches {selector} {window}{shipped}: the telemetry file is not shipped to Loki"),
            "Loki has no telemetry for the window: --source loki fails (exit 3); --source auto takes the detail from the files",
            &format!("{SHIPPING}, or point --loki-selector ([loki] selector) at the stream that holds it"),
        ));
        return Outcome { status, findings };
    }
    findings.push(Finding::ok(
        "loki.streams",
        Some(selector.to_string()),
        format!("{} stream{} {window}", streams.len(), if streams.len() == 1 { "" } else { "s" }),
        "the digest's LogQL reads them",
    ));
    findings.push(label_finding(&streams));
    let sample_start = c.window.start.max(c.window.end - MAX_SAMPLE_SPAN).to_string();
    let limit = SAMPLE.to_string();
    let params = [
        ("query", selector),
        ("start", sample_start.as_str()),
        ("end", end.as_str()),
        ("limit", limit.as_str()),
        ("direction", "backward"),
    ];
    findings.push(match source.get_tried("/loki/api/v1/query_range", &params).await {
        Ok((body, tries)) => match parse_entries(&body) {
            Ok(entries) => timestamp_finding(selector, &entries),
            Err(why) => lookup_failed(
                "loki.timestamps",
                format!("Loki at {}: GET /loki/api/v1/query_range: {why} ({tries})", source.shown_url()),
            ),
        },
        Err(e) => lookup_failed("loki.timestamps", describe(&e)),
    });
    Outcome { status, findings }
}

fn lookup_failed(check: &'static str, why: String) -> Finding {
    Finding::undecided(check, &why, "run again with --verbose to see the request and Loki's whole answer")
}

/// `; Loki holds job="openclaw" in the window (…)`, from the values of the selector's own
/// labels; empty when there are none to tell.
async fn shipped_instead(source: &LokiSource, selector: &str, start: &str, end: &str) -> String {
    let mut found = Vec::new();
    for name in selector_labels(selector) {
        let path = format!("/loki/api/v1/label/{name}/values");
        let Ok(body) = source.get(&path, &[("start", start), ("end", end)]).await else { continue };
        let Ok(values) = parse_values(&body) else { continue };
        // The selector's own value may be listed although no stream of it is in the window:
        // label values are answered at a coarser grain than the window (fixtures/loki, 21f).
        let own = format!("{name}=\"");
        for v in values.into_iter().filter(|v| !selector.contains(&format!("{own}{v}\""))) {
            found.push(format!("{name}=\"{v}\""));
        }
    }
    if found.is_empty() {
        String::new()
    } else {
        format!(" (Loki does hold streams labelled {} about then)", found.join(", "))
    }
}

/// The label names a stream selector matches on: `{job="x", agent=~"a|b"}` → job, agent.
fn selector_labels(selector: &str) -> Vec<String> {
    let inner = selector.trim().trim_start_matches('{').trim_end_matches('}');
    let mut names = Vec::new();
    let (mut quoted, mut escaped, mut at_name) = (false, false, true);
    let mut name = String::new();
    for ch in inner.chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' | '`' => quoted = !quoted,
            ',' if !quoted => at_name = true,
            c if at_name && (c.is_ascii_alphanumeric() || c == '_') => name.push(c),
            _ if at_name && !name.is_empty() => {
                names.push(std::mem::take(&mut name));
                at_name = false;
            }
            _ => {}
        }
    }
    names.dedup();
    names
}

/// A metadata answer: `{"status":"success","data":[…]}`, where `data` may be missing
/// (no stream in the range: fixtures/loki, 13i).
#[derive(Deserialize)]
struct Listing<T> {
    status: String,
    data: Option<Vec<T>>,
    #[serde(default)]
    warnings: Vec<String>,
}

fn parse_listing<T: serde::de::DeserializeOwned>(body: &str) -> Result<Vec<T>, String> {
    let listing: Listing<T> = serde_json::from_str(body).map_err(|e| format!("not a Loki answer: {e}"))?;
    if listing.status != "success" {
        return Err(format!("status {:?}", listing.status));
    }
    partial(&listing.warnings)?;
    Ok(listing.data.unwrap_or_default())
}

/// An answer with warnings may be partial: the digest refuses it, so the doctor does too.
fn partial(warnings: &[String]) -> Result<(), String> {
    match warnings {
        [] => Ok(()),
        _ => Err(format!("the answer came with warnings (partial data?): {}", warnings.join("; "))),
    }
}

fn parse_series(body: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
    parse_listing(body)
}

fn parse_values(body: &str) -> Result<Vec<String>, String> {
    parse_listing(body)
}

#[derive(Deserialize)]
struct Streams {
    status: String,
    data: StreamsData,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct StreamsData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Stream>,
}

#[derive(Deserialize)]
struct Stream {
    values: Vec<(String, String)>,
}

/// A log query's entries: (the time Loki stored, in ns; the line).
fn parse_entries(body: &str) -> Result<Vec<(Nanos, String)>, String> {
    let answer: Streams = serde_json::from_str(body).map_err(|e| format!("not a Loki log answer: {e}"))?;
    if answer.status != "success" || answer.data.result_type != "streams" {
        return Err(format!("status {:?}, result type {:?}", answer.status, answer.data.result_type));
    }
    partial(&answer.warnings)?;
    let mut entries = Vec::new();
    for stream in answer.data.result {
        for (ts, line) in stream.values {
            let ts = ts.parse().map_err(|_| format!("entry time {ts:?} is not integer nanoseconds"))?;
            entries.push((ts, line));
        }
    }
    Ok(entries)
}

/// A stream label with a value per session multiplies the streams.
fn label_finding(streams: &[BTreeMap<String, String>]) -> Finding {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for labels in streams {
        for (k, v) in labels {
            values.entry(k).or_default().insert(v);
        }
    }
    let counts: Vec<(&str, usize)> = values.iter().map(|(k, v)| (*k, v.len())).collect();
    let listed = counts.iter().map(|(k, n)| format!("{k} ({n})")).collect::<Vec<_>>().join(", ");
    let per_session: Vec<String> = counts
        .iter()
        .filter(|(k, n)| looks_per_session(k) || *n > MAX_LABEL_VALUES)
        .map(|(k, n)| format!("{k} ({n} values)"))
        .collect();
    if per_session.is_empty() {
        return Finding::ok(
            "loki.labels",
            None,
            format!("stream labels: {listed}; none is per session"),
            "few streams: queries by session run in few pieces",
        );
    }
    Finding::problem(
        "loki.labels",
        Severity::Warning,
        Some(per_session.join(", ")),
        format!("stream labels: {listed}: one stream per session (or per run)"),
        "every session is a stream of its own: Loki's index and chunks grow with the sessions, a week grouped by session reaches max_query_series (500) sooner, and queries are split into more pieces and get slower; the figures stay right (obsctl groups by the line's fields, not by stream labels)",
        SHIPPING,
    )
}

fn looks_per_session(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["session", "run", "trace", "request", "event"].iter().any(|w| l.contains(w))
}

/// Lines stored with the time they were read shift every daily figure.
fn timestamp_finding(selector: &str, entries: &[(Nanos, String)]) -> Finding {
    let subject = Some(selector.to_string());
    let mut skews = Vec::new();
    let mut first_bad = None;
    for (stored, line) in entries {
        match parse_line(line.as_bytes()) {
            Ok(event) => skews.push((stored - event.time).abs()),
            Err(why) => {
                first_bad.get_or_insert(why);
            }
        }
    }
    let n = entries.len();
    if n == 0 {
        return Finding::ok("loki.timestamps", subject, "no line to sample in the window".into(), "nothing to check");
    }
    if skews.is_empty() {
        return Finding::problem(
            "loki.timestamps",
            Severity::Error,
            subject,
            format!(
                "none of the newest {n} lines is a telemetry event (the first: {}): the stream holds something else",
                first_bad.unwrap_or_default()
            ),
            "a digest from Loki counts no cost from these lines ($0.00)",
            &format!("point --loki-selector at the telemetry stream, or {SHIPPING}"),
        );
    }
    skews.sort_unstable();
    let median = skews[skews.len() / 2];
    let max = skews[skews.len() - 1];
    let others = match n - skews.len() {
        0 => String::new(),
        1 => "; one of them is not a telemetry event".to_string(),
        k => format!("; {k} of them are not telemetry events"),
    };
    if median > MAX_SKEW_SECONDS * NANOS_PER_SEC {
        return Finding::problem(
            "loki.timestamps",
            Severity::Warning,
            subject,
            format!(
                "of the newest {n} lines, Loki stored {} at a time that differs from the event's own by a median of {} (at most {}){others}: they were shipped with the time they were read, not the event's",
                skews.len(),
                human_duration(median),
                human_duration(max)
            ),
            "every daily figure from Loki shifts to the day the lines were read, and events near the window's edges count in the wrong window",
            "take the time from the line: a timestamp stage from `timestamp` (RFC3339Nano, shapes A and B) and `ts` (UnixMs, shape C), as in the README's Promtail and Alloy stanzas",
        );
    }
    Finding::ok(
        "loki.timestamps",
        subject,
        format!(
            "the newest {n} lines carry their own event time (median difference {}){others}",
            human_duration(median)
        ),
        "daily figures from Loki fall on the events' days",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_label_names() {
        assert_eq!(selector_labels(r#"{job="openclaw-telemetry"}"#), ["job"]);
        assert_eq!(selector_labels(r#"{ job = "a,b=c", agent=~"x|y", env!="p\"q"}"#), ["job", "agent", "env"]);
    }

    #[test]
    fn metadata_without_data_is_empty() {
        assert_eq!(parse_series(r#"{"status":"success"}"#), Ok(vec![]));
        assert_eq!(parse_values(r#"{"status":"success","data":["a"]}"#), Ok(vec!["a".to_string()]));
        assert!(parse_series("404 page not found").is_err());
    }

    #[test]
    fn skew_is_a_median() {
        let line = |t: &str| format!(r#"{{"type":"session_start","timestamp":"{t}","sessionId":"s"}}"#);
        let at = |t: &str| crate::source::jsonl::parse_timestamp(t).unwrap();
        let on_time = [
            (at("2026-11-16T10:00:00Z"), line("2026-11-16T10:00:00Z")),
            (at("2026-11-16T11:00:00Z") + 2 * NANOS_PER_SEC, line("2026-11-16T11:00:00Z")),
            (at("2026-11-18T00:00:00Z"), line("2026-11-16T12:00:00Z")), // one late line
        ];
        assert_eq!(timestamp_finding("{}", &on_time).severity, Severity::Ok);
        let late = [
            (at("2026-11-18T00:00:00Z"), line("2026-11-16T10:00:00Z")),
            (at("2026-11-18T00:00:00Z"), line("2026-11-17T10:00:00Z")),
            (at("2026-11-18T00:00:00Z"), "not json".to_string()),
        ];
        let f = timestamp_finding("{}", &late);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains("one of them is not a telemetry event"), "{}", f.message);
        let pino = [(0, r#"{"level":30,"msg":"hello"}"#.to_string())];
        assert_eq!(timestamp_finding("{}", &pino).severity, Severity::Error);
    }
}
