//! `obsctl doctor`, through the binary:
//!
//! - the JSONL checks on the fixture telemetry (its README lists the malformed lines and the
//!   uncosted calls these tests expect);
//! - Loki against recorded answers of a real Loki 3.4.6 (`fixtures/loki/cases/21*-doctor-*`,
//!   made by `scripts/record-doctor-loki.py`): a healthy week, a week shipped with a session
//!   label at the time the lines were read, a week with only the pino logs;
//! - Prometheus against the real Prometheus of the test suite: every series present, absent
//!   from the window, never recorded (renamed in the config file), a gauge under the cost
//!   histogram's bare name, and a gateway job that answers 401 (a real scrape);
//! - reconciliation: the same events in Prometheus, Loki (the synthetic Loki of
//!   `tests/common/replay.rs`) and the files agree; files with sessions removed are an error
//!   naming the sources and the figure.

mod common;
#[path = "common/prometheus.rs"]
mod prom;
#[path = "common/replay.rs"]
mod replay;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{fixture_logs, obsctl};
use prom::TestPrometheus;
use replay::{entries_of, Case, Replay, Reply, Request, SyntheticLoki};
use serde_json::Value;

const SELECTOR: &str = r#"{job="openclaw-telemetry"}"#;
/// The recorded weeks (UTC): W47 healthy, W44 broken shipping, W43 not shipped.
const W47: [&str; 6] = ["--since", "2026-11-16", "--until", "2026-11-23", "--tz", "UTC"];
const W44: [&str; 6] = ["--since", "2026-10-26", "--until", "2026-11-02", "--tz", "UTC"];
const W43: [&str; 6] = ["--since", "2026-10-19", "--until", "2026-10-26", "--tz", "UTC"];

/// `obsctl doctor --format json` with `args`: the exit code, the report, standard error.
fn doctor(args: &[&str]) -> (i32, Value, String) {
    let out = obsctl().arg("doctor").args(["--format", "json", "--quiet"]).args(args).output().expect("obsctl runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// The findings of one check.
fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["findings"].as_array().expect("findings").iter().filter(|f| f["check"] == check).collect()
}

/// The only finding of `check` about `subject` (or with no subject).
fn finding<'a>(report: &'a Value, check: &str, subject: Option<&str>) -> &'a Value {
    let all: Vec<&Value> = findings(report, check)
        .into_iter()
        .filter(|f| subject.is_none_or(|s| f["subject"].as_str().is_some_and(|x| x.contains(s))))
        .collect();
    assert_eq!(all.len(), 1, "one {check} finding about {subject:?}, got {all:#?}\nin {report:#}");
    all[0]
}

fn severity(f: &Value) -> &str {
    f["severity"].as_str().expect("severity")
}

fn message(f: &Value) -> &str {
    f["message"].as_str().expect("message")
}

fn logs_arg(dir: &Path) -> String {
    dir.display().to_string()
}

// ---- The local files ----

#[test]
fn jsonl_checks_on_the_fixtures() {
    let logs = logs_arg(&fixture_logs());
    let (code, r, stderr) = doctor(&["--source", "jsonl", "--logs", &logs, "--week", "2026-W47", "--tz", "UTC"]);
    assert_eq!(code, 0, "warnings only: {r:#}\n{stderr}");
    assert_eq!(r["schema"], "obsctl.doctor/v1");
    assert_eq!(r["status"], "warning");
    assert_eq!(r["window"]["start"], "2026-11-16T00:00:00Z");
    assert_eq!(r["sources"].as_array().map(Vec::len), Some(1), "only the files were asked: {}", r["sources"]);

    let files = finding(&r, "jsonl.files", None);
    assert_eq!(severity(files), "ok");
    // The W46 file, the five daily files and the live one; W45 is outside by its name.
    assert!(message(files).starts_with("7 files read (1 live, 6 rotated, 1 gzip"), "{files}");
    assert!(message(files).contains("left out by the date in their name: events.2026-W45.jsonl.gz"), "{files}");
    assert!(!message(files).contains("notes.txt"), "notes.txt is not telemetry: {files}");

    // fixtures/README.md, "Bad lines": one per file, at these lines.
    let bad = finding(&r, "jsonl.malformed", None);
    assert_eq!(severity(bad), "warning");
    assert!(message(bad).starts_with("6 malformed lines skipped"), "{bad}");
    for (file, line) in [
        ("events.2026-11-16.jsonl", 10),
        ("events.2026-11-17.jsonl.gz", 17),
        ("events.2026-11-18.jsonl", 11),
        ("events.2026-11-19.jsonl", 23),
        ("events.2026-11-20.jsonl", 3),
        ("events.jsonl", 45),
    ] {
        assert!(message(bad).contains(&format!("{file} (1, first at line {line}:")), "{file}:{line} in {bad}");
    }

    // 52 model calls in W47, 2 without a cost: the B call without estimatedCostUsd
    // (11-19, claude-sonnet-4-5) and sess-uncosted's (11-20).
    let uncosted = finding(&r, "jsonl.uncosted", None);
    assert_eq!(severity(uncosted), "warning");
    assert!(message(uncosted).starts_with("2 of 52 model calls in the window carry no cost"), "{uncosted}");
    // Counted independently (Python's json over every file, the bad lines dropped): 162
    // valid events in W47, 112 of shape A, 16 of B, 34 of C.
    let window = finding(&r, "jsonl.window", None);
    assert_eq!(
        message(window),
        "162 events between 2026-11-16T00:00:00Z and 2026-11-23T00:00:00Z (52 model calls); shapes by line: A 112, B 16, C 34"
    );

    // The live file's newest complete line is of 2026-11-24; W47 does not reach today.
    let fresh = finding(&r, "jsonl.freshness", None);
    assert_eq!(severity(fresh), "ok");
    assert!(message(fresh).contains("2026-11-24T"), "{fresh}");

    // One source: nothing to compare it with.
    assert_eq!(r["reconciliation"], serde_json::json!([]));
    assert_eq!(message(finding(&r, "reconcile", Some("jsonl"))), "only jsonl answered: nothing to compare it with");
}

#[test]
fn nothing_to_check_exits_3() {
    let (code, r, _) = doctor(&["--source", "jsonl", "--logs", "/nonexistent/telemetry", "--last", "1d"]);
    assert_eq!(code, 3, "{r:#}");
    assert_eq!(r["status"], "unavailable");
    assert_eq!(r["exit_code"], 3);
    let files = finding(&r, "jsonl.files", None);
    assert_eq!(severity(files), "error", "named with --logs, so it must be there");
    assert!(message(files).contains("/nonexistent/telemetry"), "{files}");
}

#[test]
fn unknown_rotation_names_and_stale_files_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let three_days_ago = (now - chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let line = format!(
        r#"{{"type":"model_usage","timestamp":"{three_days_ago}","sessionId":"s1","model":"m","costUsd":0.25,"inputTokens":10}}"#
    );
    std::fs::write(dir.path().join("events.jsonl"), format!("{line}\n")).unwrap();
    std::fs::write(dir.path().join("events-2026-11-16.jsonl.gz"), b"").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"not telemetry").unwrap();
    let logs = logs_arg(dir.path());
    let (code, r, _) = doctor(&["--source", "jsonl", "--logs", &logs]);
    assert_eq!(code, 0, "{r:#}");
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(r["window"][k].as_str().unwrap()).unwrap();
    assert_eq!(at("end") - at("start"), chrono::Duration::days(7), "the default window: the last 7 days");
    let names = finding(&r, "jsonl.names", None);
    assert_eq!(names["subject"], "events-2026-11-16.jsonl.gz");
    assert_eq!(severity(names), "warning");
    assert!(findings(&r, "jsonl.names").iter().all(|f| f["subject"] != "README.txt"));
    let fresh = finding(&r, "jsonl.freshness", None);
    assert_eq!(severity(fresh), "warning", "{fresh}");
    assert!(message(fresh).contains("(3d 0h ago)"), "{fresh}");
    assert_eq!(severity(finding(&r, "jsonl.uncosted", None)), "ok");
    assert_eq!(severity(finding(&r, "jsonl.malformed", None)), "ok");
}

#[test]
fn every_format_shows_every_finding() {
    let logs = logs_arg(&fixture_logs());
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("doctor.json");
    let args = ["doctor", "--source", "jsonl", "--logs", &logs, "--week", "2026-W47", "--tz", "UTC"];
    // `--verbose`: with `--output`, the table on standard output too (as for digest and gate).
    let table = common::stdout_of(
        obsctl().args(args).arg("--verbose").arg("--output").arg(format!("json={}", json_file.display())),
    );
    let markdown = common::stdout_of(obsctl().args(args).args(["--format", "markdown"]));
    let r: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    assert!(table.starts_with("obsctl doctor: 0 errors, 2 warnings, "), "{table}");
    assert!(markdown.starts_with("## ⚠️ obsctl doctor: 0 errors, 2 warnings, "), "{markdown}");
    for f in r["findings"].as_array().unwrap() {
        let check = f["check"].as_str().unwrap();
        assert!(table.contains(check), "table lacks {check}");
        assert!(markdown.contains(&check.replace('_', "\\_")), "markdown lacks {check}");
    }
    for text in [&table, &markdown] {
        assert!(text.contains("What to do"), "{text}");
        assert!(text.contains("Impact: the report's cost is low by what these calls cost"), "{text}");
    }
}

// ---- Loki (recorded answers) ----

fn recorded(cases: &[&str]) -> Replay {
    Replay::cases(cases.iter().map(|c| Case::load(c)).collect())
}

#[test]
fn loki_recorded_healthy_week() {
    let server = recorded(&["13a-ready", "21a-doctor-series-week", "21b-doctor-log-sample-week"]);
    let (code, r, stderr) = doctor(&[&["--source", "loki", "--loki-url", server.url()][..], &W47].concat());
    assert!(server.unmatched().is_empty(), "doctor sent requests nobody recorded: {:#?}", server.unmatched());
    assert_eq!(
        server.cases_used(),
        ["13a-ready", "21a-doctor-series-week", "21b-doctor-log-sample-week"],
        "each recorded request, as recorded"
    );
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["status"], "ok", "{r:#}");
    assert_eq!(
        message(finding(&r, "loki.streams", Some(SELECTOR))),
        "6 streams between 2026-11-16T00:00:00Z and 2026-11-23T00:00:00Z"
    );
    let labels = finding(&r, "loki.labels", None);
    assert_eq!(message(labels), "stream labels: agent (6), job (1), service_name (1); none is per session");
    let stamps = finding(&r, "loki.timestamps", None);
    assert_eq!(severity(stamps), "ok");
    assert_eq!(
        message(stamps),
        "the newest 100 lines carry their own event time (median difference 0 s)",
        "the recorded entries are at the events' own times"
    );
}

#[test]
fn loki_recorded_week_shipped_per_session_at_read_time() {
    let server = recorded(&["13a-ready", "21c-doctor-series-broken-week", "21d-doctor-log-sample-broken-week"]);
    let (code, r, _) = doctor(&[&["--source", "loki", "--loki-url", server.url()][..], &W44].concat());
    assert!(server.unmatched().is_empty(), "{:#?}", server.unmatched());
    assert_eq!(code, 0, "warnings, no error: {r:#}");
    assert_eq!(r["status"], "warning");
    assert!(message(finding(&r, "loki.streams", None)).starts_with("120 streams"));
    let labels = finding(&r, "loki.labels", None);
    assert_eq!(severity(labels), "warning");
    assert_eq!(labels["subject"], "session (120 values)", "{labels}");
    let stamps = finding(&r, "loki.timestamps", None);
    assert_eq!(severity(stamps), "warning", "{stamps}");
    assert!(message(stamps).contains("shipped with the time they were read"), "{stamps}");
    // Read at 2026-11-01T09:00Z, written over the week before; the newest 100 lines are the
    // week's last events, hours from the read (computed from 21d's entries: 4.34 h, 11.66 h).
    assert!(message(stamps).contains("by a median of 4 h (at most 11 h)"), "{stamps}");
    assert!(stamps["fix"].as_str().unwrap().contains("UnixMs"), "{stamps}");
}

#[test]
fn loki_recorded_week_without_the_telemetry_stream() {
    let server = recorded(&["13a-ready", "21e-doctor-series-unshipped-week", "21f-doctor-job-values-unshipped-week"]);
    let (code, r, _) = doctor(&[&["--source", "loki", "--loki-url", server.url()][..], &W43].concat());
    assert!(server.unmatched().is_empty(), "{:#?}", server.unmatched());
    assert_eq!(code, 1, "{r:#}");
    let streams = finding(&r, "loki.streams", Some(SELECTOR));
    assert_eq!(severity(streams), "error");
    let m = message(streams);
    assert!(m.starts_with(r#"no stream matches {job="openclaw-telemetry"} between 2026-10-19T00:00:00Z"#), "{m}");
    // 21f lists openclaw-telemetry too (label values are coarser than the window): not shown.
    assert!(m.contains(r#"Loki does hold streams labelled job="openclaw" about then"#), "{m}");
    assert!(!m.contains(r#"job="openclaw-telemetry" about"#), "{m}");
    assert!(m.ends_with("the telemetry file is not shipped to Loki"), "{m}");
    assert!(findings(&r, "loki.timestamps").is_empty(), "no stream, no sample");
}

#[test]
fn loki_not_answering_exits_3_and_hides_credentials() {
    let (code, r, stderr) =
        doctor(&["--source", "loki", "--loki-url", "http://bob:hunter2@127.0.0.1:1", "--last", "1d"]);
    assert_eq!(code, 3, "{r:#}");
    let all = format!("{r}{stderr}");
    assert!(!all.contains("hunter2"), "a password leaked: {all}");
    let reachable = finding(&r, "loki.reachable", None);
    assert_eq!(severity(reachable), "error");
    assert!(message(reachable).contains("127.0.0.1:1"), "{reachable}");
}

#[test]
fn loki_without_the_tenant_refuses_and_nothing_is_checked() {
    // An auth-enabled Loki: /ready answers, every query is the recorded 401 `no org id`.
    let (ready, refused) = (Case::load("13a-ready"), Case::load("12a-tenant-no-orgid"));
    let server = Replay::handler(move |req: &Request| {
        let case = if req.path == "/ready" { &ready } else { &refused };
        Some(Reply { status: case.status, content_type: case.content_type.clone(), body: case.body.clone() })
    });
    let (code, r, _) = doctor(&[&["--source", "loki", "--loki-url", server.url()][..], &W47].concat());
    assert_eq!(code, 3, "the only source refuses every query: {r:#}");
    assert_eq!(r["sources"][0]["answered"], false);
    let streams = finding(&r, "loki.streams", None);
    assert_eq!(severity(streams), "error");
    assert!(message(streams).contains("HTTP 401: no org id"), "{streams}");
}

#[test]
fn prometheus_not_answering_exits_3_and_hides_credentials() {
    let url = "http://bob:hunter2@127.0.0.1:1";
    let (code, r, stderr) = doctor(&["--source", "prometheus", "--prometheus-url", url, "--last", "1d"]);
    assert_eq!(code, 3, "{r:#}");
    let all = format!("{r}{stderr}");
    assert!(!all.contains("hunter2"), "a password leaked: {all}");
    assert_eq!(r["sources"][0]["location"], "http://127.0.0.1:1/", "the user moves into a header");
    assert_eq!(severity(finding(&r, "prometheus.reachable", None)), "error");
}

// ---- A Loki computing its answers, for the reconciliation ----

/// The synthetic Loki (checked against the recorded answers in tests/loki.rs) for metric
/// queries, and the two metadata answers doctor reads, in the recorded shape (21a, 21b).
fn synthetic_loki(lines: &[String]) -> Replay {
    let loki = Arc::new(SyntheticLoki::new(SELECTOR, entries_of(lines)));
    Replay::handler(move |req: &Request| {
        let span =
            || -> Option<(i64, i64)> { Some((req.param("start")?.parse().ok()?, req.param("end")?.parse().ok()?)) };
        let inside = |(start, end): (i64, i64)| loki.entries.iter().filter(move |e| start <= e.ts_ns && e.ts_ns < end);
        Some(match req.path.as_str() {
            "/loki/api/v1/series" if req.param("match[]") == Some(SELECTOR) => {
                let Some(span) = span() else { return Some(Reply::text(400, "bad start/end")) };
                let mut streams: Vec<BTreeMap<String, String>> = inside(span).map(|e| e.stream.clone()).collect();
                streams.sort();
                streams.dedup();
                for s in &mut streams {
                    s.insert("service_name".into(), s["job"].clone());
                }
                Reply::json(serde_json::json!({"status": "success", "data": streams}).to_string())
            }
            "/loki/api/v1/query_range" if req.param("query") == Some(SELECTOR) => {
                let (Some(span), Some(limit)) = (span(), req.param("limit").and_then(|l| l.parse::<usize>().ok()))
                else {
                    return Some(Reply::text(400, "bad request"));
                };
                if limit > 5000 {
                    return Some(Reply::text(
                        400,
                        "max entries limit per query exceeded, limit > max_entries_limit_per_query",
                    ));
                }
                let mut entries: Vec<_> = inside(span).collect();
                entries.sort_by_key(|e| std::cmp::Reverse(e.ts_ns));
                entries.truncate(limit);
                let values: Vec<(String, String)> =
                    entries.iter().map(|e| (e.ts_ns.to_string(), e.line.clone())).collect();
                let stream = serde_json::json!({"stream": {"job": "openclaw-telemetry"}, "values": values});
                Reply::json(
                    serde_json::json!({"status": "success", "data": {"resultType": "streams", "result": [stream]}})
                        .to_string(),
                )
            }
            _ => loki.answer(req),
        })
    })
}

/// Without the sessions whose number ends in 0 (every line ends with its `sessionId`): 44
/// of the week's 441 sessions gone.
fn without_some_sessions(jsonl: &str) -> String {
    jsonl.lines().filter(|l| !l.ends_with("0\"}")).map(|l| format!("{l}\n")).collect()
}

/// A week's events in a synthetic Loki and in files, and in files without some sessions.
struct Mirrors {
    loki: Replay,
    same: tempfile::TempDir,
    fewer: tempfile::TempDir,
}

fn mirrors(week: &prom::Week) -> Mirrors {
    let lines: Vec<String> = week.jsonl.lines().map(str::to_string).collect();
    let (same, fewer) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(same.path().join("events.jsonl"), &week.jsonl).unwrap();
    std::fs::write(fewer.path().join("events.jsonl"), without_some_sessions(&week.jsonl)).unwrap();
    Mirrors { loki: synthetic_loki(&lines), same, fewer }
}

#[test]
fn reconciliation_of_loki_and_the_files() {
    let week = prom::week(5);
    let Mirrors { loki, same, fewer } = mirrors(&week);
    let run = |logs: &Path| {
        let logs = logs_arg(logs);
        // Port 1 refuses: Prometheus is named but not there (an error, not a fallback).
        let args = ["--prometheus-url", "http://127.0.0.1:1", "--loki-url", loki.url(), "--logs", &logs];
        doctor(&[&args[..], &["--week", "2026-W47", "--tz", "UTC"]].concat())
    };

    let (_, r, stderr) = run(same.path());
    let agree = finding(&r, "reconcile", Some("loki vs jsonl"));
    assert_eq!(severity(agree), "ok", "{agree}\n{stderr}");
    assert!(message(agree).contains("sessions loki 441, jsonl 441"), "{agree}");
    assert!(findings(&r, "reconcile.cost").is_empty(), "{r:#}");
    assert_eq!(severity(finding(&r, "loki.timestamps", None)), "ok");
    assert_eq!(severity(finding(&r, "prometheus.reachable", None)), "error");
    let sources: Vec<&str> =
        r["reconciliation"].as_array().unwrap().iter().map(|f| f["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["loki", "jsonl"]);

    let (code, r, _) = run(fewer.path());
    assert_eq!(code, 1);
    for check in ["reconcile.cost", "reconcile.input_tokens", "reconcile.output_tokens", "reconcile.sessions"] {
        let f = finding(&r, check, Some("loki vs jsonl"));
        assert_eq!(severity(f), "error", "{f}");
        assert!(message(f).contains(" by ") && message(f).contains(" %: loki "), "{f}");
    }
    let sessions = message(finding(&r, "reconcile.sessions", None));
    assert!(sessions.ends_with("loki 441, jsonl 397"), "sessions named with both figures: {sessions}");
}

// ---- Prometheus (the real one) ----

fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("obsctl.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

#[test]
fn prometheus_series_present_absent_and_renamed_and_the_reconciliation() {
    if prom::binaries_or_skip("prometheus_series_present_absent_and_renamed_and_the_reconciliation").is_none() {
        return;
    }
    let week = prom::week(7);
    let server = TestPrometheus::start(&week.openmetrics);
    let url = server.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = |extra: &[&str], window: &[&str]| {
        doctor(&[&["--source", "prometheus", "--prometheus-url", url][..], extra, window].concat())
    };

    // Every series there: one finding each, all ok.
    let (code, r, stderr) = prometheus(&[], &["--week", "2026-W47", "--tz", "UTC"]);
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    let series = findings(&r, "prometheus.series");
    let names: Vec<&str> = series.iter().map(|f| f["subject"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "openclaw_session_cost_usd_sum",
            "openclaw_session_cost_usd_count",
            "openclaw_session_tokens_total",
            "openclaw_tool_calls_total",
            "openclaw_model_errors_total",
            "openclaw_session_duration_seconds_bucket"
        ]
    );
    assert!(
        series.iter().all(|f| severity(f) == "ok" && message(f).starts_with("present in the window")),
        "{series:#?}"
    );
    // Nothing exports the bare name: dashboards querying it show nothing.
    let bare = finding(&r, "prometheus.bare_cost", None);
    assert_eq!((severity(bare), bare["subject"].as_str()), ("warning", Some("openclaw_session_cost_usd")));
    assert!(bare["fix"].as_str().unwrap().contains("openclaw_session_cost_usd_sum"), "{bare}");
    // The duration histogram has agent, kind, model, and no provider.
    let duration = finding(&r, "prometheus.duration_labels", None);
    assert!(message(duration).contains("agent") && !message(duration).contains("provider"), "{duration}");
    assert!(duration["impact"].as_str().unwrap().contains("filtered by provider returns nothing"), "{duration}");
    // Backfilled, not scraped: no gateway job, and the series arrive anyway.
    let targets = finding(&r, "prometheus.targets", None);
    assert_eq!(severity(targets), "ok", "{targets}");
    assert!(message(targets).contains("jobs scraped: none"), "{targets}");

    // After the data: absent from the window, but recorded before it.
    let (code, r, _) = prometheus(&[], &["--since", "2026-11-25", "--until", "2026-11-30", "--tz", "UTC"]);
    assert_eq!(code, 1);
    let cost = finding(&r, "prometheus.series", Some("openclaw_session_cost_usd_sum"));
    assert_eq!(severity(cost), "error");
    assert!(message(cost).starts_with("no sample in the window, but"), "{cost}");
    let tools = finding(&r, "prometheus.series", Some("openclaw_tool_calls_total"));
    assert_eq!(severity(tools), "warning", "optional series: {tools}");

    // Renamed in the config file: never recorded, and the real names are suggested.
    let config = write_config(
        dir.path(),
        "[prometheus.metrics]\nsession_cost = \"gateway_session_cost_usd\"\ntool_calls = \"gateway_tool_invocations_total\"\n",
    );
    let (code, r, _) = prometheus(&["--config", &config], &["--week", "2026-W47", "--tz", "UTC"]);
    assert_eq!(code, 1, "{r:#}");
    let cost = finding(&r, "prometheus.series", Some("gateway_session_cost_usd_sum"));
    assert_eq!(severity(cost), "error");
    assert!(message(cost).starts_with("never recorded or never scraped"), "{cost}");
    assert!(message(cost).contains("similar names: openclaw_session_cost_usd_sum"), "{cost}");
    assert!(cost["fix"].as_str().unwrap().contains("[prometheus.metrics] session_cost"), "{cost}");
    let tools = finding(&r, "prometheus.series", Some("gateway_tool_invocations_total"));
    assert_eq!(severity(tools), "warning");
    assert!(message(tools).contains("similar names: openclaw_tool_calls_total"), "{tools}");
    assert_eq!(severity(finding(&r, "prometheus.series", Some("openclaw_session_tokens_total"))), "ok");
    // Cost series missing and no job scrapes the gateway: that is why.
    assert_eq!(severity(finding(&r, "prometheus.targets", None)), "error");

    // Reconciliation: the same events in Prometheus, Loki and the files.
    let Mirrors { loki, same, fewer } = mirrors(&week);
    let all_three = |logs: &Path| {
        let logs = logs_arg(logs);
        let args =
            ["--prometheus-url", url, "--loki-url", loki.url(), "--logs", &logs, "--week", "2026-W47", "--tz", "UTC"];
        doctor(&args)
    };
    let (_, r, stderr) = all_three(same.path());
    let sources: Vec<&str> =
        r["reconciliation"].as_array().unwrap().iter().map(|f| f["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["prometheus", "loki", "jsonl"], "{r:#}\n{stderr}");
    for pair in ["prometheus vs loki", "prometheus vs jsonl", "loki vs jsonl"] {
        let f = finding(&r, "reconcile", Some(pair));
        assert_eq!(severity(f), "ok", "{f}");
    }
    assert!(message(finding(&r, "reconcile", Some("prometheus vs jsonl"))).contains("sessions not compared"));
    assert!(findings(&r, "reconcile.cost").is_empty());

    let (code, r, _) = all_three(fewer.path());
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(severity(finding(&r, "reconcile", Some("prometheus vs loki"))), "ok", "they still agree");
    for pair in ["prometheus vs jsonl", "loki vs jsonl"] {
        let f = finding(&r, "reconcile.cost", Some(pair));
        assert_eq!(severity(f), "error");
        assert!(message(f).starts_with("cost differs by "), "{f}");
    }
    assert!(findings(&r, "reconcile.sessions").iter().all(|f| f["subject"] == "loki vs jsonl"), "never Prometheus's");
}

#[test]
fn prometheus_broken_setup_bare_gauge_and_a_gateway_answering_401() {
    if prom::binaries_or_skip("prometheus_broken_setup_bare_gauge_and_a_gateway_answering_401").is_none() {
        return;
    }
    // A gateway whose /metrics answers only loopback: Prometheus gets a 401.
    let gateway = Replay::handler(|req: &Request| (req.path == "/metrics").then(|| Reply::text(401, "Unauthorized\n")));
    let target = gateway.url().trim_start_matches("http://").to_string();
    let week = prom::week(9);
    // Someone exports a gauge under the histogram's bare name.
    let gauge: String = (0..10)
        .map(|i| {
            format!(
                "openclaw_session_cost_usd{{job=\"legacy-exporter\"}} {} {}\n",
                i as f64 * 0.5,
                prom::WEEK_START + 3600 * i
            )
        })
        .collect();
    let openmetrics = week.openmetrics.replace("# EOF\n", &format!("{gauge}# EOF\n"));
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: openclaw-gateway\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let server = TestPrometheus::start_with(&openmetrics, &config);
    let addr = server.url.trim_start_matches("http://").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !prom::http_get(&addr, "/api/v1/targets").is_some_and(|a| a.contains("\"health\":\"down\"")) {
        assert!(std::time::Instant::now() < deadline, "Prometheus never scraped the gateway");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let args = ["--source", "prometheus", "--prometheus-url", &server.url, "--week", "2026-W47", "--tz", "UTC"];
    let (code, r, _) = doctor(&args);
    assert_eq!(code, 1, "{r:#}");
    let target = finding(&r, "prometheus.targets", Some("job=openclaw-gateway"));
    assert_eq!(severity(target), "error");
    assert!(message(target).contains("401 Unauthorized"), "Prometheus's own lastError: {target}");
    assert!(message(target).ends_with("the gateway answers /metrics only on loopback"), "{target}");
    let bare = finding(&r, "prometheus.bare_cost", None);
    assert_eq!(severity(bare), "warning");
    assert!(message(bare).starts_with("1 series named openclaw_session_cost_usd exists in 2026-"), "{bare}");
    assert!(message(bare).contains("(job legacy-exporter)"), "{bare}");
    // Not the gateway's job: another scrape job would not be looked at.
    let (_, r, _) = doctor(&[&args[..], &["--gateway-job", "mygw"]].concat());
    assert_eq!(severity(finding(&r, "prometheus.targets", None)), "ok", "series present, job named otherwise");

    // The whole broken setup on a terminal: these files are not the events Prometheus
    // counted, and Loki (at its default URL) is not there.
    let out = obsctl()
        .args(["doctor", "--prometheus-url", &server.url, "--loki-url", "http://127.0.0.1:1", "--logs"])
        .arg(fixture_logs())
        .args(["--week", "2026-W47", "--tz", "UTC"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}"); // `cargo test --test doctor broken -- --nocapture` shows it
    assert_eq!(out.status.code(), Some(1));
    for line in [
        "ERROR prometheus.targets (job=openclaw-gateway instance=",
        "ERROR reconcile.cost (prometheus vs jsonl): cost differs by ",
        "WARNING prometheus.bare_cost (openclaw_session_cost_usd): ",
        "WARNING jsonl.uncosted (",
        "  Fix:    the gateway refuses /metrics to any client but 127.0.0.1",
    ] {
        assert!(table.contains(line), "{line:?} in\n{table}");
    }
}

// ---- What users see, snapshotted ----

/// Doctor on the fixture files as Markdown and JSON, with the two figures that depend on
/// the clock (`generated_at`, the newest event's age) blanked: a change in what users see
/// is a visible diff in review (`cargo insta review`).
#[test]
fn snapshots_of_every_format() {
    let logs = logs_arg(&fixture_logs());
    let args = ["doctor", "--source", "jsonl", "--logs", &logs, "--week", "2026-W47", "--tz", "UTC"];
    let steady = |text: String| {
        blank_after(&blank_before(&text, " ago)", '('), "\"generated_at\": \"", '"').replace(&logs, "<logs>")
    };
    // Not the table: its columns wrap by width, and the age's width changes with the clock.
    for format in ["markdown", "json"] {
        let out = common::stdout_of(obsctl().args(args).args(["--format", format]));
        insta::assert_snapshot!(format!("doctor_{format}"), steady(out));
    }
}

/// `text` with what stands between the last `open` before each `marker` and the marker
/// replaced by `<…>`: `(8d 3h ago)` → `(<…> ago)`.
fn blank_before(text: &str, marker: &str, open: char) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let start = rest[..i].rfind(open).map_or(i, |o| o + open.len_utf8());
        out.push_str(&rest[..start]);
        out.push_str("<…>");
        out.push_str(marker);
        rest = &rest[i + marker.len()..];
    }
    out + rest
}

/// `text` with what follows each `marker` up to `close` replaced by `<…>`.
fn blank_after(text: &str, marker: &str, close: char) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        out.push_str("<…>");
        rest = &rest[i + marker.len()..];
        rest = rest.find(close).map_or("", |j| &rest[j..]);
    }
    out + rest
}
