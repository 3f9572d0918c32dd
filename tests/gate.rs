//! `obsctl gate` through the binary, on telemetry written by each test: regression, pass,
//! exactly at the threshold, zero baselines, bad baseline files, missing and partial data,
//! too few sessions, legacy baselines, variants (against intervals computed by scipy),
//! budgets, Markdown truncation, GitHub's summary and annotations, JUnit.

mod common;
#[path = "common/replay.rs"]
mod replay;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::obsctl;
use serde_json::Value;

/// The window gated in every test, and the week before it (the previous window).
const WINDOW: [&str; 4] = ["--since", "2026-11-16T00:00:00Z", "--until", "2026-11-23T00:00:00Z"];
const THIS_WEEK: &str = "2026-11-17";
const LAST_WEEK: &str = "2026-11-10";

/// A telemetry directory written by a test.
struct Corpus {
    dir: tempfile::TempDir,
    lines: String,
    sessions: usize,
}

/// One session: its agent, experiment variant, the cost of each of its model calls, and
/// whether its run failed.
#[derive(Clone, Copy)]
struct Session<'a> {
    day: &'a str,
    agent: &'a str,
    model: &'a str,
    variant: Option<(&'a str, &'a str)>,
    costs: &'a [f64],
    failed: bool,
    tools: (u32, u32),
}

impl Default for Session<'_> {
    fn default() -> Self {
        Session {
            day: THIS_WEEK,
            agent: "main",
            model: "claude-sonnet-4-6",
            variant: None,
            costs: &[1.0],
            failed: false,
            tools: (0, 0),
        }
    }
}

impl Corpus {
    fn new() -> Corpus {
        Corpus { dir: tempfile::tempdir().expect("temp dir"), lines: String::new(), sessions: 0 }
    }

    fn add(&mut self, s: Session) -> &mut Corpus {
        self.sessions += 1;
        let id = format!("s{:05}", self.sessions);
        let exp = match s.variant {
            Some((e, v)) => format!(r#","experimentId":"{e}","variant":"{v}""#),
            None => String::new(),
        };
        let common = format!(r#""agentId":"{}","sessionId":"{id}"{exp}"#, s.agent);
        let time = |second: usize| format!("{}T10:{:02}:{:02}Z", s.day, (self.sessions / 60) % 60, second % 60);
        for (i, cost) in s.costs.iter().enumerate() {
            writeln!(
                self.lines,
                r#"{{"type":"model_usage","model":"{}","provider":"anthropic","inputTokens":1000,"outputTokens":100,"costUsd":{cost},"timestamp":"{}",{common}}}"#,
                s.model,
                time(i)
            )
            .unwrap();
        }
        for i in 0..s.tools.0 {
            let ok = i >= s.tools.1;
            writeln!(
                self.lines,
                r#"{{"type":"tool_call","tool":"bash","success":{ok},"timestamp":"{}",{common}}}"#,
                time(20 + i as usize)
            )
            .unwrap();
        }
        writeln!(self.lines, r#"{{"type":"agent_end","success":{},"timestamp":"{}",{common}}}"#, !s.failed, time(50))
            .unwrap();
        self
    }

    /// `n` sessions alike.
    fn many(&mut self, n: usize, s: Session) -> &mut Corpus {
        for _ in 0..n {
            self.add(Session { ..s });
        }
        self
    }

    fn logs(&self) -> PathBuf {
        std::fs::write(self.dir.path().join("events.jsonl"), &self.lines).expect("write events");
        self.dir.path().to_path_buf()
    }
}

/// `obsctl gate` on the corpus, this week against the one before, with `args`.
fn gate(corpus: &Corpus, args: &[&str]) -> assert_cmd::Command {
    gate_over(corpus, WINDOW[1], WINDOW[3], args)
}

/// `obsctl gate` on the corpus over `since..until`, with `args`.
fn gate_over(corpus: &Corpus, since: &str, until: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = obsctl();
    cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_STEP_SUMMARY").env_remove("OBSCTL_GATE_FORMAT");
    cmd.args(["gate", "--source", "jsonl", "--tz", "UTC", "--since", since, "--until", until, "--logs"])
        .arg(corpus.logs())
        .args(args);
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().expect("obsctl runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8"),
        stderr: String::from_utf8(out.stderr).expect("utf-8"),
    }
}

fn json(cmd: &mut assert_cmd::Command) -> (i32, Value) {
    let r = run(cmd.args(["--format", "json"]));
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

fn check<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id} in {v:#}"))
}

/// What a minimal Prometheus lists from `/api/v1/series`: the metrics a digest reads.
const PROMETHEUS_SERIES: &str = r#"[{"__name__":"openclaw_session_cost_usd_sum"},{"__name__":"openclaw_session_cost_usd_count"},{"__name__":"openclaw_session_tokens_total"}]"#;

/// `obsctl gate --source prometheus` against `url`, this week against the one before.
fn prometheus_gate(url: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = obsctl();
    cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_STEP_SUMMARY");
    cmd.args(["gate", "--source", "prometheus", "--tz", "UTC", "--prometheus-url", url]).args(WINDOW).args(args);
    cmd
}

fn week_pair(before: f64, now: f64, n: usize) -> Corpus {
    let mut c = Corpus::new();
    c.many(n, Session { day: LAST_WEEK, costs: &[before], ..Default::default() });
    c.many(n, Session { day: THIS_WEEK, costs: &[now], ..Default::default() });
    c
}

#[test]
fn a_regression_fails_with_exit_1_naming_the_check_and_the_change() {
    let c = week_pair(1.0, 1.5, 20);
    let r = run(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("FAIL: 1 of 3 checks past their threshold"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Total cost")
            && r.stdout.contains("+50.0 %")
            && r.stdout.contains("$20.00")
            && r.stdout.contains("$30.00"),
        "{}",
        r.stdout
    );
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(
        (code, v["schema"].as_str(), v["status"].as_str(), v["exit_code"].as_u64()),
        (1, Some("obsctl.gate/v1"), Some("regression"), Some(1))
    );
    let total = check(&v, "total_cost.increase");
    assert_eq!(
        (total["baseline"].as_f64(), total["current"].as_f64(), total["outcome"].as_str()),
        (Some(20.0), Some(30.0), Some("fail"))
    );
    assert!((total["change"].as_f64().unwrap() - 0.5).abs() < 1e-12);
}

#[test]
fn all_well_is_one_quiet_line_and_exit_0() {
    let c = week_pair(1.0, 1.1, 20);
    let r = run(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "PASS: all 3 checks within their thresholds\n");
    // No threshold at all: the old script's 20 %, not a silent pass.
    let r = run(&mut gate(&week_pair(1.0, 1.3, 20), &[]));
    assert_eq!(r.code, 1, "{}", r.stdout);
}

#[test]
fn exactly_at_the_threshold_passes_and_a_cent_over_fails() {
    // $10.00 → $12.00 is +20 % exactly (as floats, 0.19999999999999996 or so).
    for (now, code) in [(1.2, 0), (1.201, 1)] {
        let (got, v) = json(&mut gate(&week_pair(1.0, now, 10), &["--max-increase", "20%", "--max-cost", "12"]));
        assert_eq!(got, code, "{v:#}");
        assert_eq!(check(&v, "total_cost.max")["outcome"], if code == 0 { "pass" } else { "fail" });
    }
}

#[test]
fn a_zero_baseline_never_passes_a_relative_check() {
    let c = week_pair(0.0, 1.0, 10);
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%", "--max-cost", "100"]));
    assert_eq!(code, 3, "{v:#}");
    let total = check(&v, "total_cost.increase");
    assert_eq!(total["outcome"], "undefined");
    assert!(total["change"].is_null());
    assert!(total["detail"].as_str().unwrap().contains("undefined"), "{total:#}");
    assert_eq!(check(&v, "total_cost.max")["outcome"], "pass", "absolute thresholds still apply");
    // Allowed explicitly: a pass with a warning.
    let r = run(&mut gate(&c, &["--max-increase", "20%", "--allow-missing"]));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("not decided, allowed by --allow-missing"), "{}", r.stderr);
    // And the absolute check still fails a real overspend.
    assert_eq!(run(&mut gate(&c, &["--max-increase", "20%", "--max-cost", "5"])).code, 1);
}

#[test]
fn bad_baseline_files_are_exit_2_naming_the_file() {
    let c = week_pair(1.0, 1.0, 5);
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("missing.json", None, "cannot read baseline file"),
        ("corrupt.json", Some("{\"schema\": \"obsctl.digest/v1\", "), "is not valid JSON"),
        ("v2.json", Some(r#"{"schema": "obsctl.digest/v2", "totals": {}}"#), "has schema \"obsctl.digest/v2\""),
        ("other.json", Some(r#"{"hello": 1}"#), "neither an obsctl digest"),
    ];
    for (name, text, says) in cases {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let r = run(gate(&c, &["--baseline"]).arg(&path));
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(says) && r.stderr.contains(name), "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn missing_data_fails_closed() {
    // Nothing in either week: exit 3, never a pass.
    let mut c = Corpus::new();
    c.add(Session { day: "2026-10-01", ..Default::default() });
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(check(&v, "sessions.window")["outcome"], "insufficient data");
    // An empty telemetry directory: the same.
    let empty = Corpus::new();
    let r = run(&mut gate(&empty, &["--max-increase", "20%"]));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    // Only this week has data: the previous window's is missing.
    let mut c = Corpus::new();
    c.many(5, Session::default());
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(check(&v, "sessions.baseline")["outcome"], "insufficient data");
}

/// An output that cannot be written never hides the verdict: a gate that did not pass exits
/// with its own code, the one the files written beside it give; a passing one exits 2.
#[test]
fn an_unwritable_output_keeps_the_verdicts_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (json_file, bad) = (dir.path().join("g.json"), dir.path().join("file.txt/g.xml"));
    std::fs::write(dir.path().join("file.txt"), "not a directory").unwrap();
    for (corpus, code) in [(Corpus::new(), 3), (week_pair(1.0, 2.0, 10), 1), (week_pair(1.0, 1.0, 10), 2)] {
        let r = run(gate(&corpus, &["--max-increase", "20%", "-q"])
            .arg("-o")
            .arg(format!("junit={}", bad.display()))
            .arg("-o")
            .arg(format!("json={}", json_file.display())));
        assert_eq!(r.code, code, "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("file.txt/g.xml"), "{}", r.stderr);
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
        assert_eq!(written["exit_code"], if code == 2 { 0 } else { code }, "{written:#}");
    }
}

/// Model calls without a cost (a new model with no price) would make the known cost look
/// flat: the cost checks are then undecided (exit 3), never a pass.
#[test]
fn a_window_with_uncosted_calls_never_passes_a_cost_check() {
    let mut c = week_pair(1.0, 1.0, 10);
    for i in 0..5 {
        writeln!(
            c.lines,
            r#"{{"type":"model_usage","model":"gpt-new","provider":"openai","inputTokens":10,"outputTokens":1,"timestamp":"{THIS_WEEK}T11:00:0{i}Z","agentId":"main","sessionId":"s{i:05}"}}"#
        )
        .unwrap();
    }
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(check(&v, "total_cost.increase")["outcome"], "pass");
    let known = check(&v, "cost.known");
    assert_eq!(known["outcome"], "insufficient data", "{known:#}");
    assert!(
        known["detail"].as_str().unwrap().contains("5 of 15 model calls in the window carried no cost"),
        "{known:#}"
    );
    // A check of no cost is not held up by them.
    let (code, v) = json(&mut gate(&c, &["--max-failed-run-rate", "50%"]));
    assert_eq!(code, 0, "{v:#}");
}

/// Too few sessions in the baseline: a comparison with it is noise, undecided (exit 3), not
/// a regression; a regression beside an undecided check says so in its headline.
#[test]
fn a_baseline_of_too_few_sessions_decides_no_comparison() {
    let mut c = Corpus::new();
    c.many(2, Session { day: LAST_WEEK, costs: &[1.0], ..Default::default() });
    c.many(10, Session { costs: &[1.0], ..Default::default() });
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%", "--min-sessions", "5"]));
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(check(&v, "total_cost.increase")["outcome"], "insufficient data", "{v:#}");
    // An absolute limit still decides, and its failure outranks the undecided.
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%", "--min-sessions", "5", "--max-cost", "5"]));
    assert_eq!(code, 1, "{v:#}");
    assert!(v["headline"].as_str().unwrap().ends_with("past their threshold; 2 undecided"), "{v:#}");
}

/// With no threshold, a legacy baseline (no totals) is compared per model call, as the old
/// script did: a verdict, not "insufficient data" for ever.
#[test]
fn a_legacy_baseline_without_thresholds_compares_the_cost_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.json");
    std::fs::write(
        &legacy,
        r#"{"tag":"v1","capturedAt":"2026-11-01T00:00:00Z","totalSessions":30,"avgSessionDurationMs":1,
            "p95SessionDurationMs":2,"avgTokensPerSession":3,"avgCostPerSessionUsd":0.2,"modelErrorRate":0.0}"#,
    )
    .unwrap();
    let c = week_pair(1.0, 1.0, 10);
    let (code, v) = json(gate(&c, &[]).arg("--baseline").arg(&legacy));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(check(&v, "cost_per_session.increase")["outcome"], "fail", "{v:#}");
}

/// A step summary that cannot be written does not hide the verdict, and the annotations
/// are printed all the same; a gate whose source is down shows in both too.
#[test]
fn github_outputs_keep_the_verdict_and_show_a_source_down() {
    let c = week_pair(1.0, 2.0, 10);
    let r = run(gate(&c, &["--max-increase", "20%"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", "/nonexistent-dir/summary.md"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("GITHUB_STEP_SUMMARY") && r.stderr.contains("::error title="), "{}", r.stderr);

    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let mut cmd = obsctl();
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &summary);
    cmd.args(["gate", "--source", "loki", "--loki-url", "http://127.0.0.1:1", "--tz", "UTC"]).args(WINDOW);
    let r = run(&mut cmd);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("::warning title="), "{}", r.stderr);
    assert!(std::fs::read_to_string(&summary).unwrap().contains("could not be read"), "summary");
}

#[test]
fn a_partial_server_answer_is_exit_3_not_a_verdict() {
    // A Prometheus (or Thanos/Mimir) that answers with warnings: partial data.
    // Every answer comes with a warning, as Thanos answers when a store is down; the
    // series API answers a list, queries a vector.
    let server = replay::Replay::handler(|req| {
        let data =
            if req.path.ends_with("/series") { PROMETHEUS_SERIES } else { r#"{"resultType":"vector","result":[]}"# };
        Some(replay::Reply::json(format!(
            r#"{{"status":"success","warnings":["partial response: store 2 of 3 unavailable"],"data":{data}}}"#
        )))
    });
    let c = week_pair(1.0, 1.0, 5);
    let r = run(prometheus_gate(server.url(), &["--max-increase", "20%", "--logs"]).arg(c.logs()));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("partial") && r.stderr.contains("127.0.0.1"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // The verdict files CI keeps are still written, saying why there is no verdict.
    let dir = tempfile::tempdir().unwrap();
    let (junit, verdict) = (dir.path().join("gate.xml"), dir.path().join("gate.json"));
    let r = run(prometheus_gate(server.url(), &["--allow-missing", "--output"])
        .arg(format!("junit={}", junit.display()))
        .arg("--output")
        .arg(format!("json={}", verdict.display())));
    assert_eq!(r.code, 3, "a source that fails is exit 3 even with --allow-missing: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty() && r.stderr.contains("partial"), "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&verdict).unwrap()).unwrap();
    assert_eq!((v["status"].as_str(), v["exit_code"].as_u64()), (Some("insufficient data"), Some(3)), "{v:#}");
    assert_eq!(v["baseline"]["kind"], "none");
    let read = check(&v, "data.read");
    assert_eq!(read["outcome"], "insufficient data");
    assert!(read["detail"].as_str().unwrap().contains("partial response"), "{read:#}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure") || xml.contains("<error"), "{xml}");
    assert!(xml.contains("partial response"), "{xml}");
}

#[test]
fn too_few_sessions_is_insufficient_data() {
    let c = week_pair(1.0, 1.0, 10);
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%", "--min-sessions", "11"]));
    assert_eq!(code, 3);
    assert!(check(&v, "sessions.window")["detail"].as_str().unwrap().contains("10 sessions, fewer than the 11 needed"));
    let (code, _) = json(&mut gate(&c, &["--max-increase", "20%", "--min-sessions", "10"]));
    assert_eq!(code, 0);
}

#[test]
fn a_saved_baseline_round_trips_and_compares_like_the_previous_window() {
    let c = week_pair(1.0, 1.5, 20);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("baseline.json");
    // Save last week's digest as a baseline, as CI would keep it.
    let r = run(obsctl()
        .args([
            "gate",
            "--source",
            "jsonl",
            "--tz",
            "UTC",
            "--since",
            "2026-11-09T00:00:00Z",
            "--until",
            "2026-11-16T00:00:00Z",
            "--save-baseline",
        ])
        .arg(&saved)
        .arg("--logs")
        .arg(c.logs())
        .args(["--max-cost", "1000", "--min-sessions", "1", "-q"]));
    assert!(r.code == 3 || r.code == 0, "{}", r.stderr);
    let saved_json: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(saved_json["schema"], "obsctl.digest/v1");
    let (code, against_file) = json(gate(&c, &["--max-increase", "20%", "--baseline"]).arg(&saved));
    let (code2, against_previous) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!((code, code2), (1, 1));
    assert_eq!(against_file["checks"], against_previous["checks"]);
    assert_eq!(against_file["baseline"]["kind"], "file");
    // And `digest --output json=FILE` writes the same kind of file.
    let digest_saved = dir.path().join("digest.json");
    let r = run(obsctl()
        .args([
            "digest",
            "--source",
            "jsonl",
            "--tz",
            "UTC",
            "--since",
            "2026-11-09T00:00:00Z",
            "--until",
            "2026-11-16T00:00:00Z",
            "--no-compare",
            "--top",
            "20",
            "-q",
            "--output",
        ])
        .arg(format!("json={}", digest_saved.display()))
        .arg("--logs")
        .arg(c.logs()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, from_digest) = json(gate(&c, &["--max-increase", "20%", "--baseline"]).arg(&digest_saved));
    assert_eq!(from_digest["checks"], against_previous["checks"]);
}

#[test]
fn legacy_baselines_compare_per_model_call_and_say_so() {
    // This week: 10 sessions of 2 calls at $0.30 each: $0.30 per model call, $0.60 per session.
    let mut c = Corpus::new();
    c.many(8, Session { costs: &[0.3, 0.3], ..Default::default() });
    c.many(2, Session { costs: &[0.3, 0.3], failed: true, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("v1.4.json");
    std::fs::write(
        &legacy,
        r#"{"tag":"v1.4","capturedAt":"2026-11-01T09:00:00Z","totalSessions":200,"avgSessionDurationMs":4000,
            "p95SessionDurationMs":9000,"avgTokensPerSession":1100,"avgCostPerSessionUsd":0.25,"modelErrorRate":0.1,
            "toolCallErrorRate":0.02}"#,
    )
    .unwrap();
    let args = ["--max-cost-per-session-increase", "10%", "--max-failed-run-rate-increase", "5pp", "--baseline"];
    let (code, v) = json(gate(&c, &args).arg(&legacy));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["baseline"]["kind"], "legacy");
    let cost = check(&v, "cost_per_session.increase");
    assert_eq!(cost["name"], "Cost per model call");
    assert_eq!(
        (cost["baseline"].as_f64(), cost["current"].as_f64(), cost["outcome"].as_str()),
        (Some(0.25), Some(0.3), Some("fail"))
    );
    // 2 failed runs of 10: 20 % against the old 10 %, +10 points > 5.
    let failed = check(&v, "failed_run_rate.increase");
    assert_eq!(
        (failed["baseline"].as_f64(), failed["current"].as_f64(), failed["outcome"].as_str()),
        (Some(0.1), Some(0.2), Some("fail"))
    );
    assert!(v["notes"][0].as_str().unwrap().contains("per model call"), "{v:#}");
    // Within its thresholds it passes; a total has nothing to compare with (no window): exit 3.
    let (code, _) = json(gate(&c, &["--max-cost-per-session-increase", "25%", "--baseline"]).arg(&legacy));
    assert_eq!(code, 0);
    let (code, v) = json(gate(&c, &["--max-increase", "25%", "--baseline"]).arg(&legacy));
    assert_eq!((code, check(&v, "total_cost.increase")["outcome"].as_str()), (3, Some("insufficient data")));
}

#[test]
fn sessions_over_budget_are_listed_with_agent_and_cost() {
    let mut c = Corpus::new();
    c.many(10, Session { day: LAST_WEEK, ..Default::default() });
    c.many(10, Session::default());
    c.add(Session { agent: "ops", costs: &[2.0, 1.5], ..Default::default() });
    c.add(Session { agent: "coder", costs: &[2.25], ..Default::default() });
    let r = run(&mut gate(&c, &["--max-session-cost", "2"]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("Session over budget")
            && r.stdout.contains("ops")
            && r.stdout.contains("$3.50")
            && r.stdout.contains("$2.25"),
        "{}",
        r.stdout
    );
    let (_, v) = json(&mut gate(&c, &["--max-session-cost", "2"]));
    let over: Vec<(&str, f64)> = v["over_budget"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["agent"].as_str().unwrap(), s["cost_usd"].as_f64().unwrap()))
        .collect();
    assert_eq!(over, [("ops", 3.5), ("coder", 2.25)]);
    // Only the top sessions are fetched: with --top 1 the list says "at least".
    let (code, v) = json(&mut gate(&c, &["--max-session-cost", "2", "--top", "1"]));
    assert_eq!(code, 1);
    assert!(check(&v, "session.cost.max")["detail"].as_str().unwrap().starts_with("at least 1 sessions"), "{v:#}");
    assert_eq!(json(&mut gate(&c, &["--max-session-cost", "3.5"])).0, 0, "at the budget passes");
    let r = run(&mut gate(&c, &["--max-session-cost", "2", "--top", "0"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--top 0: expected 1 or more"), "{}", r.stderr);
    // An amount too large for a float, or not a number, is refused as typed: "inf" would
    // confuse, and NaN compares false with everything, so a NaN budget would always pass.
    for (flag, typed) in [("--max-session-cost", "1e400"), ("--max-cost", "nan"), ("--max-p95-duration", "inf")] {
        let r = run(&mut gate(&c, &[flag, typed]));
        assert_eq!(r.code, 2, "{flag} {typed}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("invalid value '{typed}' for '{flag}")), "{}", r.stderr);
        assert!(r.stderr.contains("expected a finite number"), "{}", r.stderr);
    }
}

/// The per-session samples of the variant cases, and their Welch intervals as scipy
/// computes them (`scripts/variant-intervals.py`, `fixtures/gate/variants.json`).
fn variant_cases() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gate/variants.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixtures/gate/variants.json")).expect("JSON")
}

#[test]
fn variants_regress_only_when_the_whole_interval_is_past_the_threshold() {
    let cases = variant_cases();
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let samples =
            |k: &str| -> Vec<f64> { case[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let (control, treatment) = (samples("control"), samples("treatment"));
        let mut c = Corpus::new();
        for cost in &control {
            c.add(Session { variant: Some(("prompt-v2", "control")), costs: &[*cost], ..Default::default() });
        }
        for cost in &treatment {
            c.add(Session { variant: Some(("prompt-v2", "B")), costs: &[*cost], ..Default::default() });
        }
        let pct = case["threshold_pct"].as_f64().unwrap().to_string();
        let (code, v) = json(&mut gate(
            &c,
            &[
                "--max-increase-per",
                &format!("variant={pct}%"),
                "--control",
                "control",
                "--min-sessions",
                "3",
                "--allow-missing",
            ],
        ));
        let check = check(&v, "variant.cost_per_session");
        let expected = case["expected"].as_str().unwrap();
        assert_eq!(check["outcome"], expected, "{name}: {check:#}");
        assert_eq!(code, if expected == "fail" { 1 } else { 0 }, "{name}: undecided checks are allowed here");
        if expected != "insufficient data" {
            let interval = &check["interval"];
            for (k, want) in [("low", "low"), ("high", "high")] {
                let (got, want) = (interval[k].as_f64().unwrap(), case[want].as_f64().unwrap());
                assert!((got - want).abs() <= 1e-9 * want.abs().max(1e-6), "{name} {k}: {got} vs scipy {want}");
            }
            assert!(interval["test"].as_str().unwrap().contains("Welch"), "{name}");
        } else {
            assert!(check["detail"].as_str().unwrap().contains("fewer than the 3"), "{name}: {check:#}");
        }
    }
}

/// Variants against a control compare within this window: a new experiment, with nothing
/// before it, is decided (no `sessions.baseline`), not undecided for want of a baseline.
#[test]
fn variants_against_a_control_need_no_baseline() {
    let mut c = Corpus::new();
    for cost in [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.1, 0.9, 1.05, 0.95] {
        c.add(Session { variant: Some(("e", "control")), costs: &[cost], ..Default::default() });
        c.add(Session { variant: Some(("e", "B")), costs: &[cost / 2.0], ..Default::default() });
    }
    let (code, v) = json(&mut gate(&c, &["--max-increase-per", "variant=10%", "--control", "control"]));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(check(&v, "variant.cost_per_session")["outcome"], "pass");
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["id"] != "sessions.baseline"), "{v:#}");
    // A check against the baseline still needs one.
    let (code, v) =
        json(&mut gate(&c, &["--max-increase-per", "variant=10%", "--control", "control", "--max-increase", "20%"]));
    assert_eq!(code, 3, "{v:#}");
}

#[test]
fn variant_rates_use_a_two_proportion_interval() {
    // 60 sessions per variant; B fails 30 runs of 60 where control fails 3: a clear regression.
    let mut c = Corpus::new();
    for i in 0..60 {
        c.add(Session { variant: Some(("e", "control")), failed: i < 3, tools: (2, 0), ..Default::default() });
        c.add(Session {
            variant: Some(("e", "B")),
            failed: i < 30,
            tools: (2, u32::from(i < 6)),
            ..Default::default()
        });
    }
    let (code, v) = json(&mut gate(
        &c,
        &[
            "--max-increase-per",
            "variant=50%",
            "--control",
            "control",
            "--max-failed-run-rate-increase",
            "5pp",
            "--max-tool-failure-rate-increase",
            "10pp",
        ],
    ));
    assert_eq!(code, 1, "{v:#}");
    let failed = check(&v, "variant.failed_run_rate");
    assert_eq!(failed["outcome"], "fail");
    assert!(failed["interval"]["test"].as_str().unwrap().contains("Newcombe"));
    assert!(failed["interval"]["low"].as_f64().unwrap() > 0.05);
    // 6 failed tool calls of 120 against 0 of 120: +5 points, not provably over 10.
    assert_eq!(check(&v, "variant.tool_failure_rate")["outcome"], "pass");
}

#[test]
fn markdown_stays_under_the_comment_limit_and_says_it_was_cut() {
    let mut c = Corpus::new();
    let models: Vec<String> = (0..1500).map(|i| format!("model-with-a-rather-long-name-{i:04}")).collect();
    for m in &models {
        c.add(Session { day: LAST_WEEK, model: m, ..Default::default() });
        c.add(Session { model: m, costs: &[2.0], ..Default::default() });
    }
    let r = run(&mut gate(&c, &["--max-increase-per", "model=10%", "--format", "markdown"]));
    assert_eq!(r.code, 1);
    let chars = r.stdout.chars().count();
    assert!(chars <= 65_000, "{chars} characters");
    assert!(r.stdout.contains("truncated:"), "no truncation line");
    assert!(r.stdout.contains("| Cost of model | anthropic/model-with-a-rather-long-name-0000"), "failed rows first");
    // A short verdict is not cut.
    let r = run(&mut gate(&week_pair(1.0, 1.5, 5), &["--format", "markdown"]));
    assert!(!r.stdout.contains("truncated") && r.stdout.contains("❌ obsctl gate: FAIL"), "{}", r.stdout);
}

#[test]
fn github_actions_get_a_step_summary_and_annotations() {
    let c = week_pair(1.0, 1.5, 20);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    // (The files have no p95 duration: that check is undecided, a warning.)
    let r = run(gate(&c, &["--max-increase", "20%", "--max-p95-duration", "100"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(r.code, 1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("earlier step\n## ❌ obsctl gate: FAIL"), "{text}");
    assert!(
        r.stderr.contains("::error title=obsctl gate%3A Total cost::Total cost: $20.00 → $30.00 (+50.0 %25)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("::warning title=obsctl gate%3A p95 session duration::"), "{}", r.stderr);
    // Without GitHub's variables, none of it.
    let r = run(&mut gate(&c, &["--max-increase", "20%"]));
    assert!(!r.stderr.contains("::error"));
}

#[test]
fn junit_has_one_case_per_check_and_parses() {
    let c = week_pair(1.0, 1.5, 20);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("gate.xml");
    let md = dir.path().join("gate.md");
    let r = run(gate(
        &c,
        &["--max-increase", "20%", "--max-cost", "100", "--max-p95-duration", "100", "--allow-missing", "--output"],
    )
    .arg(format!("junit={}", xml.display()))
    .arg("--output")
    .arg(format!("markdown={}", md.display())));
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "", "with --output, nothing on stdout");
    assert!(std::fs::read_to_string(&md).unwrap().contains("obsctl gate: FAIL"));
    let suites =
        junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(&xml).unwrap())).expect("JUnit parses");
    let suite = &suites.suites[0];
    assert_eq!(suite.cases.len(), 5);
    assert_eq!((suite.failures, suite.skipped), (1, 1));
    let failed: Vec<&str> = suite.cases.iter().filter(|c| c.status.is_failure()).map(|c| c.name.as_str()).collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].ends_with("Total cost"), "{failed:?}");
}

#[test]
fn gate_outputs_are_path_templates_and_verbose_prints_the_table_too() {
    let c = week_pair(1.0, 1.5, 20);
    let dir = tempfile::tempdir().unwrap();
    let r = run(gate(&c, &["--max-increase", "20%", "--verbose", "--output"])
        .arg(format!("junit={}/{{iso_week}}/gate.xml", dir.path().display()))
        .arg("--save-baseline")
        .arg(dir.path().join("baselines/{start}.json")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.starts_with("FAIL"), "--verbose keeps the table on stdout: {}", r.stdout);
    assert!(dir.path().join("2026-W47/gate.xml").is_file());
    assert!(dir.path().join("baselines/2026-11-16.json").is_file());
    let r = run(&mut gate(&c, &["--max-increase", "20%", "--output", "gate-{week}.xml"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown placeholder {week}"), "{}", r.stderr);
}

#[test]
fn a_window_whose_calls_all_lack_a_cost_is_undecided_not_a_pass() {
    // Both weeks' model calls carry no cost: $0.00 on both sides would pass any relative
    // check, yet nothing is known of the cost.
    let mut c = week_pair(1.0, 1.0, 5);
    c.lines = c.lines.replace(r#""costUsd":1,"#, "");
    assert!(!c.lines.contains("costUsd"));
    for flags in [&["--max-increase", "20%"][..], &["--max-cost-per-session-increase", "10%"]] {
        let (code, v) = json(&mut gate(&c, flags));
        assert_eq!(code, 3, "{flags:?}: {v:#}");
        let warnings = v["warnings"].to_string();
        assert!(warnings.contains("the window: none of its 5 model calls carries a cost"), "{warnings}");
        assert!(warnings.contains("baseline: none of its 5 model calls carries a cost"), "{warnings}");
    }
    // One costed call in the window makes its cost known again (the baseline's stays not).
    c.add(Session { costs: &[0.5], ..Default::default() });
    let (code, v) = json(&mut gate(&c, &["--max-increase", "20%"]));
    assert_eq!((code, &check(&v, "total_cost.increase")["outcome"]), (3, &Value::from("insufficient data")), "{v:#}");
    assert_eq!(check(&v, "total_cost.increase")["detail"], "no figure in the baseline");
}

#[test]
fn a_baseline_with_a_negative_or_non_finite_cost_is_exit_2_naming_the_file() {
    let c = week_pair(1.0, 1.0, 5);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("w46.json");
    let out = obsctl()
        .args(["digest", "--source", "jsonl", "--tz", "UTC", "-q", "--format", "json", "--logs"])
        .arg(c.logs())
        .args(["--since", "2026-11-09T00:00:00Z", "--until", "2026-11-16T00:00:00Z", "-o"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let digest: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(run(gate(&c, &["--baseline"]).arg(&saved)).code, 0, "the saved baseline itself is fine");
    for (says, section, field, value) in
        [("totals.cost_usd is -3.7", "totals", None, -3.7), ("by_agent main cost_usd is -1", "by_agent", Some(0), -1.0)]
    {
        let mut d = digest.clone();
        let at = match field {
            Some(i) => &mut d[section][i],
            None => &mut d[section],
        };
        at["cost_usd"] = Value::from(value);
        let path = dir.path().join("edited.json");
        std::fs::write(&path, d.to_string()).unwrap();
        let r = run(gate(&c, &["--baseline"]).arg(&path));
        assert_eq!(r.code, 2, "{says}: {}", r.stdout);
        assert!(r.stderr.contains("edited.json") && r.stderr.contains(says), "{says}: {}", r.stderr);
    }
}

#[test]
fn a_baseline_saved_with_other_filters_is_exit_2_naming_both() {
    let mut c = Corpus::new();
    c.many(5, Session { day: LAST_WEEK, agent: "coder", costs: &[1.0], ..Default::default() });
    c.many(5, Session { day: LAST_WEEK, agent: "main", costs: &[4.0], ..Default::default() });
    c.many(5, Session { day: THIS_WEEK, agent: "coder", costs: &[2.0], ..Default::default() });
    c.many(5, Session { day: THIS_WEEK, agent: "main", costs: &[1.0], ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, filter: &[&str]| {
        let path = dir.path().join(name);
        let mut cmd = obsctl();
        cmd.args(["digest", "--source", "jsonl", "--tz", "UTC", "--format", "json", "--week", "2026-W46", "-q"]);
        cmd.args(filter).arg("--logs").arg(c.logs()).arg("--output").arg(&path);
        assert_eq!(run(&mut cmd).code, 0);
        path
    };
    let (coder, all) = (save("coder.json", &["--agent", "coder"]), save("all.json", &[]));
    // Coder's cost doubled: all agents' fell. Either mismatch would give a verdict on the filter.
    let r = run(gate(&c, &["--baseline"]).arg(&coder));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("coder.json was saved with --agent coder, this window is read with no filter"),
        "{}",
        r.stderr
    );
    let r = run(gate(&c, &["--agent", "coder", "--baseline"]).arg(&all));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("saved with no filter, this window is read with --agent coder"), "{}", r.stderr);
    let (code, v) = json(gate(&c, &["--agent", "coder", "--max-increase", "20%", "--baseline"]).arg(&coder));
    assert_eq!(code, 1, "like with like: coder's cost doubled: {v:#}");
    assert_eq!(check(&v, "sessions.baseline")["baseline"], 5.0, "the baseline's count in its own column");
    assert!(check(&v, "sessions.baseline")["current"].is_null());
}

#[test]
fn a_window_that_has_not_ended_is_insufficient_data_not_a_pass() {
    let mut c = Corpus::new();
    c.many(5, Session { day: LAST_WEEK, costs: &[1.0], ..Default::default() });
    c.many(5, Session { day: THIS_WEEK, costs: &[1.0], ..Default::default() });
    // The window ends far in the future: the last day holds no data yet.
    let mut cmd = obsctl();
    cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_STEP_SUMMARY");
    cmd.args(["gate", "--source", "jsonl", "--tz", "UTC", "--format", "json", "--max-increase", "20%"]);
    cmd.args(["--since", "2026-11-16T00:00:00Z", "--until", "2099-01-01T00:00:00Z", "--logs"]).arg(c.logs());
    let r = run(&mut cmd);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(check(&v, "window.complete")["outcome"], "insufficient data");
    // --allow-missing lets an undecided check pass, as it does for every other.
    let r = run(cmd.arg("--allow-missing"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn a_baseline_whose_window_or_cost_is_not_what_obsctl_writes_is_exit_2_saying_where() {
    let c = week_pair(1.0, 1.0, 5);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("b.json");
    let mut cmd = obsctl();
    cmd.args(["digest", "--source", "jsonl", "--tz", "UTC", "--format", "json", "--week", "2026-W46", "-q"]);
    assert_eq!(run(cmd.arg("--logs").arg(c.logs()).arg("--output").arg(&saved)).code, 0);
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    for (edit, says) in [
        ("/window/start", "window.start is \"garbage\": expected an RFC 3339 time"),
        ("/totals/cost_usd", "invalid type: string \"garbage\", expected f64 at line"),
    ] {
        let mut bad = good.clone();
        *bad.pointer_mut(edit).unwrap() = Value::from("garbage");
        std::fs::write(&saved, serde_json::to_string_pretty(&bad).unwrap()).unwrap();
        let r = run(gate(&c, &["--baseline"]).arg(&saved));
        assert_eq!(r.code, 2, "{edit}: {}", r.stderr);
        assert!(r.stderr.contains(says) && r.stderr.contains("b.json"), "{edit}: {}", r.stderr);
    }
}

#[test]
fn a_baseline_of_another_length_is_compared_at_its_rate() {
    // Last week: $7 in all, $1 a day. The gated day: $3, three times that rate.
    let mut c = Corpus::new();
    c.many(7, Session { day: LAST_WEEK, ..Default::default() });
    c.many(3, Session { day: THIS_WEEK, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("week.json");
    let r = run(gate_over(&c, "2026-11-09T00:00:00Z", "2026-11-16T00:00:00Z", &["--max-cost", "1000", "-q"])
        .arg("--save-baseline")
        .arg(&saved));
    assert!(r.code == 0 || r.code == 3, "{}", r.stderr);
    let day = ["2026-11-17T00:00:00Z", "2026-11-18T00:00:00Z"];
    let (code, v) = json(gate_over(&c, day[0], day[1], &["--max-increase", "20%", "--baseline"]).arg(&saved));
    assert_eq!(code, 1, "a day at 3 × the week's daily rate is a regression: {v:#}");
    let total = check(&v, "total_cost.increase");
    assert_eq!((total["baseline"].as_f64(), total["current"].as_f64()), (Some(1.0), Some(3.0)), "{total:#}");
    assert!(v["notes"].to_string().contains("scaled to this window's length (× 0.143)"), "{}", v["notes"]);
    // The agent's cost is scaled alike; per-session figures are compared as they are.
    let (code, v) =
        json(gate_over(&c, day[0], day[1], &["--max-cost-per-session-increase", "10%", "--baseline"]).arg(&saved));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(check(&v, "cost_per_session.increase")["baseline"].as_f64(), Some(1.0));
    let (code, v) = json(gate_over(&c, day[0], day[1], &["--max-increase-per", "agent=20%", "--baseline"]).arg(&saved));
    assert_eq!(code, 1, "{v:#}");
    let agent = v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "agent.cost.increase").unwrap();
    assert_eq!(agent["baseline"].as_f64(), Some(1.0), "{agent:#}");
}

#[test]
fn a_session_with_no_known_cost_leaves_the_budget_undecided() {
    let mut c = week_pair(0.1, 0.1, 5);
    // A session whose one model call carries no cost: it may be over $0.50 or not.
    c.lines.push_str(
        r#"{"type":"model_usage","model":"m","provider":"p","inputTokens":10,"outputTokens":1,"timestamp":"2026-11-17T11:00:00Z","agentId":"main","sessionId":"uncosted"}"#,
    );
    c.lines.push('\n');
    let (code, v) = json(&mut gate(&c, &["--max-session-cost", "0.5"]));
    assert_eq!(code, 3, "{v:#}");
    let budget = check(&v, "session.cost.max");
    assert_eq!(budget["outcome"], "insufficient data");
    assert!(budget["detail"].as_str().unwrap().contains("1 of the sessions listed have no known cost"), "{budget:#}");
    assert_eq!(json(&mut gate(&c, &["--max-session-cost", "0.5", "--allow-missing"])).0, 0);
    // A session over budget decides it, whatever the unknown one cost.
    c.add(Session { costs: &[0.75], ..Default::default() });
    assert_eq!(json(&mut gate(&c, &["--max-session-cost", "0.5"])).0, 1);
}

#[test]
fn variant_checks_from_a_source_without_variants_are_undecided() {
    // Prometheus has no per-variant or per-session series: checks on them are not passes.
    let server = replay::Replay::handler(|req| {
        let data = if req.path.ends_with("/series") {
            PROMETHEUS_SERIES
        } else if req.path.ends_with("/query_range") {
            r#"{"resultType":"matrix","result":[]}"#
        } else {
            r#"{"resultType":"vector","result":[]}"#
        };
        Some(replay::Reply::json(format!(r#"{{"status":"success","data":{data}}}"#)))
    });
    for args in [["--max-increase-per", "variant=10%"], ["--max-cost-per", "variant=0.01"]] {
        let r = run(prometheus_gate(server.url(), &["--format", "json"]).args(args));
        assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
        let variants = check(&v, "variant.figures");
        assert_eq!(variants["outcome"], "insufficient data", "{variants:#}");
        assert!(variants["detail"].as_str().unwrap().starts_with("no per-variant figures"), "{variants:#}");
    }
}

/// A range answer's points, `value` at each step of the range asked, as Prometheus answers.
fn points_at_steps(req: &replay::Request, value: &str) -> String {
    let number = |name: &str| req.param(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or_default() as i64;
    let (start, end, step) = (number("start"), number("end"), number("step").max(1));
    let points: Vec<String> = (start..=end).step_by(step as usize).map(|t| format!(r#"[{t},"{value}"]"#)).collect();
    points.join(",")
}

#[test]
fn a_cost_that_is_not_an_amount_fails_the_query_instead_of_counting_zero() {
    // Prometheus answers NaN for the cost (a counter written as NaN, a broken recording
    // rule): the gate names the query and stops, rather than read the cost as $0.
    let server = replay::Replay::handler(|req| {
        let query = req.param("query").unwrap_or_default();
        let cost = query.contains("openclaw_session_cost_usd_sum");
        let data = if req.path.ends_with("/series") {
            PROMETHEUS_SERIES.to_string()
        } else if req.path.ends_with("/query_range") {
            let value = if cost { "NaN" } else { "1" };
            format!(
                r#"{{"resultType":"matrix","result":[{{"metric":{{"agent":"main","model":"m","provider":"p"}},"values":[{}]}}]}}"#,
                points_at_steps(req, value)
            )
        } else if cost {
            r#"{"resultType":"vector","result":[{"metric":{"agent":"main","model":"m","provider":"p"},"value":[1795392000,"NaN"]}]}"#.to_string()
        } else {
            r#"{"resultType":"vector","result":[]}"#.to_string()
        };
        Some(replay::Reply::json(format!(r#"{{"status":"success","data":{data}}}"#)))
    });
    for command in ["digest", "gate"] {
        let mut cmd = obsctl();
        cmd.env_remove("GITHUB_ACTIONS").args([command, "--source", "prometheus", "--tz", "UTC"]);
        cmd.args(["--prometheus-url", server.url(), "--week", "2026-W47"]);
        let r = run(&mut cmd);
        assert_eq!(r.code, 3, "{command}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{command}: {}", r.stdout);
        assert!(
            r.stderr.contains("answered NaN for {agent=\"main\", model=\"m\", provider=\"p\"}, which is not a cost")
                && r.stderr.contains("openclaw_session_cost_usd_sum"),
            "{command}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_count_that_is_no_number_fails_the_query_instead_of_counting_zero() {
    // A token counter written as NaN: the digest names the query and stops, rather than read
    // the tokens as 0 (the cheap form's NaN is asked again in the full form first).
    let server = replay::Replay::handler(|req| {
        let tokens = req.param("query").unwrap_or_default().contains("openclaw_session_tokens_total");
        let value = if tokens { "NaN" } else { "1" };
        let series = r#"{"agent":"main","model":"m","provider":"p","type":"input"}"#;
        let data = if req.path.ends_with("/series") {
            PROMETHEUS_SERIES.to_string()
        } else if req.path.ends_with("/query_range") {
            format!(
                r#"{{"resultType":"matrix","result":[{{"metric":{series},"values":[{}]}}]}}"#,
                points_at_steps(req, value)
            )
        } else {
            format!(r#"{{"resultType":"vector","result":[{{"metric":{series},"value":[1795392000,"{value}"]}}]}}"#)
        };
        Some(replay::Reply::json(format!(r#"{{"status":"success","data":{data}}}"#)))
    });
    let mut cmd = obsctl();
    cmd.args(["digest", "--source", "prometheus", "--tz", "UTC", "--week", "2026-W47"]);
    cmd.args(["--prometheus-url", server.url()]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("which is not a count")
            && r.stderr.contains("type=\"input\"")
            && r.stderr.contains("label_replace(")
            && r.stderr.contains("openclaw_session_tokens_total"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_group_of_unknown_cost_is_no_mover() {
    // Last week "old-model" cost $1 a session; this week its calls carry no cost. That
    // is not a drop to $0, so it is not listed as one.
    let mut c = Corpus::new();
    c.many(3, Session { day: LAST_WEEK, model: "old-model", ..Default::default() });
    c.many(3, Session { day: THIS_WEEK, costs: &[2.0], ..Default::default() });
    c.lines.push_str(
        r#"{"type":"model_usage","model":"old-model","provider":"anthropic","inputTokens":10,"outputTokens":1,"timestamp":"2026-11-17T11:00:00Z","agentId":"main","sessionId":"uncosted"}"#,
    );
    c.lines.push('\n');
    let (_, v) = json(&mut gate(&c, &["--max-cost", "1000"]));
    let movers: Vec<&str> = v["movers"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(movers.contains(&"anthropic/claude-sonnet-4-6"), "{movers:?}");
    assert!(!movers.iter().any(|m| m.contains("old-model")), "{:#}", v["movers"]);
}
