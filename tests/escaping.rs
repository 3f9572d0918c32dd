//! Injection and escaping (issue 17): hostile names in the data and in the filters.
//!
//! 1. Filters: `--agent`, `--model`, `--experiment` values with quotes, backslashes,
//!    braces, colons and regex metacharacters select exactly the events the JSONL source
//!    selects, against the synthetic Loki (tests/common/replay.rs) and a real Prometheus;
//!    a value written to break out of a matcher matches nothing.
//! 2. Renderers: names with pipes, backticks, HTML, newlines, tabs, CR and ANSI escapes
//!    keep Markdown tables, CSV rows, JUnit XML and the terminal table whole.
//!
//! All data here is synthetic, generated in a temp dir.

mod common;
#[path = "common/prometheus.rs"]
mod prom;
#[path = "common/replay.rs"]
mod replay;

use std::fmt::Write as _;
use std::sync::Arc;

use common::obsctl;
use obsctl::config::{ServerConfig, ServerFile, ServerFlags};
use obsctl::error;
use obsctl::source::filter::Filters;
use obsctl::source::jsonl::JsonlSource;
use obsctl::source::loki::{LokiSource, DEFAULT_SELECTOR};
use obsctl::source::{Answer, Query};
use obsctl::window::{Window, WindowSpec};
use replay::{entries_of, Replay, SyntheticLoki};
use serde_json::Value;

/// Names that would change a query or break a report if pasted in unescaped.
const HOSTILE: [&str; 10] = [
    r#"qu"ote"#,
    r"back\slash\",
    r"br{ace}s",
    r"dot.star.*",
    r"(a|b)+[c]^$?",
    "tick`s`",
    r#"x"} or vector(1) or {a=""#,
    "x` or agentId=~`.*",
    "col:on",
    "agent:nested:key",
];

/// Names for the renderers: every character that means something to a table or a terminal.
const UGLY: [&str; 8] = [
    "pi|pe",
    "`back`ticks`",
    "<i>html&amp;",
    "new\nline",
    "esc\x1b[31mred\x1b[0m",
    "tab\there",
    "cr\rlf",
    "quote\"comma,",
];

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One session per agent in week 2026-W47 (and one the week before, for the gate): a model
/// call of cost `i + 1` dollars. Agents come from `agentId`, and for every other session from
/// the session key only (`agent:<id>:main:<n>`), as the gateway writes them.
fn corpus(names: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (day, week) in [("2026-11-18", "now"), ("2026-11-11", "before")] {
            let id = json_str(&format!("s{i}-{week}"));
            let who = if i % 2 == 0 {
                format!(r#""agentId":{},"sessionId":{id}"#, json_str(name))
            } else {
                format!(r#""sessionKey":{}"#, json_str(&format!("agent:{name}:main:{i}{week}")))
            };
            let exp = format!(r#""experimentId":{},"variant":{}"#, json_str(name), json_str(name));
            lines.push(format!(r#"{{"type":"session_start","timestamp":"{day}T10:00:00Z",{who},{exp}}}"#));
            lines.push(format!(
                r#"{{"type":"model_usage","timestamp":"{day}T10:00:01Z",{who},{exp},"model":{},"provider":"acme","inputTokens":{},"outputTokens":7,"costUsd":{}}}"#,
                json_str(name),
                100 + i,
                i + 1
            ));
            lines.push(format!(r#"{{"type":"agent_end","timestamp":"{day}T10:00:02Z",{who},{exp},"success":true}}"#));
        }
    }
    lines
}

fn week() -> Query {
    let spec = WindowSpec { week: Some(Some("2026-W47".to_string())), ..WindowSpec::default() };
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let window = Window::resolve(&spec, chrono_tz::Tz::UTC, now).expect("window");
    Query { previous: Some(window.previous()), window, top: 10, variant_spread: true }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

fn jsonl_answer(lines: &[String], filters: &Filters) -> Answer {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write events.jsonl");
    JsonlSource { paths: vec![file], threads: 1, progress: false, filters: filters.clone(), default_paths: false }
        .answer(&week())
        .expect("JSONL answer")
}

fn loki(url: &str) -> LokiSource {
    let flags = ServerFlags { url: Some(url.to_string()), timeout: Some(60.0), ..ServerFlags::default() };
    let cfg = ServerConfig::merge(&flags, &ServerFile::default(), "http://localhost:3100", "--url").expect("config");
    LokiSource::new(&cfg, DEFAULT_SELECTOR.to_string()).expect("source")
}

fn totals(a: &Answer) -> (i128, u64, u64, Option<u64>) {
    let t = &a.rows.totals;
    (t.cost.pico(), t.input_tokens, t.sessions, t.events)
}

/// Every hostile value, in each filter, selects on the synthetic Loki exactly what it
/// selects in the files: one session of that name (agents from a session key: those whose
/// key names them), and a break-out value selects nothing.
#[test]
fn hostile_filter_values_select_the_same_on_loki_as_in_the_files() {
    let lines = corpus(&HOSTILE);
    let fake = Arc::new(SyntheticLoki::new(DEFAULT_SELECTOR, entries_of(&lines)));
    let f = fake.clone();
    let server = Replay::handler(move |req| Some(f.answer(req)));
    let s = |v: &str| vec![v.to_string()];
    for (i, name) in HOSTILE.iter().enumerate() {
        for (flag, filters) in [
            ("agent", Filters::new(&s(name), &[], &[]).unwrap()),
            ("model", Filters::new(&[], &s(name), &[]).unwrap()),
            ("experiment", Filters::new(&[], &[], &s(name)).unwrap()),
        ] {
            let want = jsonl_answer(&lines, &filters);
            let got = block_on(loki(server.url()).with_filters(&filters).answer(&week()))
                .unwrap_or_else(|e| panic!("--{flag} {name:?}: {}", error::describe(&e)));
            assert_eq!(totals(&got), totals(&want), "--{flag} {name:?}: loki vs jsonl");
            // An agent from a session key holding a ':' is the part before it: `col:on`
            // names agent `col`, so `--agent col:on` finds only an `agentId` of that name.
            let from_key_only = flag == "agent" && i % 2 == 1 && name.contains(':');
            let expect_cost = if from_key_only { 0 } else { (i as i128 + 1) * 1_000_000_000_000 };
            assert_eq!(want.rows.totals.cost.pico(), expect_cost, "--{flag} {name:?}: the session of that name");
        }
    }
    for probe in [r#"x"} or vector(1) or {a=""#, ".*", "x` or agentId=~`.*", r"\"] {
        if HOSTILE.contains(&probe) {
            continue;
        }
        let filters = Filters::new(&s(probe), &s(probe), &s(probe)).unwrap();
        let got = block_on(loki(server.url()).with_filters(&filters).answer(&week())).unwrap();
        assert_eq!(got.rows.totals.cost.pico(), 0, "{probe:?} matches nothing");
        assert_eq!(totals(&got), totals(&jsonl_answer(&lines, &filters)), "{probe:?}");
    }
}

/// A known defect: an agent holding a ':' matched, in Loki, session keys whose agent is
/// only the part before it (the files take `agent:<id>:…` up to the first ':').
#[test]
fn an_agent_with_a_colon_does_not_match_session_keys_in_loki() {
    let lines: Vec<String> = [
        r#"{"type":"model_usage","timestamp":"2026-11-18T10:00:00Z","sessionKey":"agent:a:b:main:1","model":"m","inputTokens":1,"outputTokens":1,"costUsd":1}"#,
        r#"{"type":"model_usage","timestamp":"2026-11-18T10:00:00Z","sessionId":"s2","agentId":"a:b","model":"m","inputTokens":1,"outputTokens":1,"costUsd":2}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let fake = Arc::new(SyntheticLoki::new(DEFAULT_SELECTOR, entries_of(&lines)));
    let server = Replay::handler(move |req| Some(fake.answer(req)));
    for (agent, pico) in [("a:b", 2), ("a", 1)] {
        let filters = Filters::new(&[agent.to_string()], &[], &[]).unwrap();
        let want = jsonl_answer(&lines, &filters);
        assert_eq!(want.rows.totals.cost.pico(), pico * 1_000_000_000_000, "files, --agent {agent}");
        let got = block_on(loki(server.url()).with_filters(&filters).answer(&week())).unwrap();
        assert_eq!(totals(&got), totals(&want), "loki, --agent {agent}");
    }
}

/// A value with a control character is refused as a usage error, naming the flag.
#[test]
fn filter_values_with_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), corpus(&["a"]).join("\n")).unwrap();
    for flag in ["--agent", "--model", "--experiment"] {
        let out = obsctl()
            .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", flag, "a\nb", "--logs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag), "{flag}");
    }
}

/// On a real Prometheus: the seeded week with agent `coder` renamed to a hostile name in
/// the samples and the files alike; `--agent`/`--model` with that name give the files'
/// cost, and a break-out value gives nothing.
#[test]
fn hostile_filter_values_on_a_real_prometheus() {
    if prom::binaries_or_skip("hostile_filter_values_on_a_real_prometheus").is_none() {
        return;
    }
    // The same escapes in JSON strings and OpenMetrics label values: \" and \\.
    let hostile = r#"co"d\er{x}.*|(:"#;
    let escaped = hostile.replace('\\', r"\\").replace('"', "\\\"");
    let week = prom::week(7);
    let jsonl = week.jsonl.replace("coder", &escaped).replace("gpt-5", &format!("gpt-5{escaped}"));
    let openmetrics = week.openmetrics.replace("coder", &escaped).replace("gpt-5", &format!("gpt-5{escaped}"));
    let server = prom::TestPrometheus::start(&openmetrics);
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("events.jsonl"), jsonl).unwrap();
    let digest = |source: &str, args: &[&str]| -> Value {
        let out = obsctl()
            .args(["digest", "--format", "json", "--tz", "UTC", "--week", "2026-W47", "--source", source])
            .args(["--prometheus-url", &server.url, "--logs"])
            .arg(logs.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{source} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let model = format!("gpt-5{hostile}");
    for args in [vec!["--agent", hostile], vec!["--model", &model], vec!["--agent", hostile, "--model", &model]] {
        let (j, p) = (digest("jsonl", &args), digest("prometheus", &args));
        let cost = j["totals"]["cost_usd"].as_f64().unwrap();
        assert!(cost > 1.0, "{args:?} selects sessions");
        assert!(cost < digest("jsonl", &[])["totals"]["cost_usd"].as_f64().unwrap(), "{args:?} leaves some out");
        assert_eq!(p["totals"]["cost_usd"], j["totals"]["cost_usd"], "{args:?}");
        assert_eq!(p["totals"]["input_tokens"], j["totals"]["input_tokens"], "{args:?}");
    }
    for probe in [r#"x"} or vector(1) or {a=""#, ".*", r#"coder"} or {agent=~".*"#] {
        let p = digest("prometheus", &["--agent", probe]);
        assert_eq!(p["totals"]["cost_usd"].as_f64(), Some(0.0), "{probe:?} matches nothing: {}", p["totals"]);
    }
}

// ---- Renderers ----

fn run(args: &[&str], logs: &std::path::Path) -> (i32, String) {
    let out = obsctl()
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .args(args)
        .args(["--source", "jsonl", "--tz", "UTC", "--week", "2026-W47", "--logs"])
        .arg(logs)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

fn ugly_logs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), corpus(&UGLY).join("\n") + "\n").unwrap();
    dir
}

/// No control character but the line break reaches a text report.
fn assert_no_controls(text: &str, what: &str) {
    let bad: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "{what}: raw control characters {bad:?} in\n{text}");
}

/// The `|` of a Markdown row that are not escaped with `\`.
fn cells(row: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in row.chars() {
        match (c, escaped) {
            ('\\', false) => escaped = true,
            ('|', false) => n += 1,
            _ => escaped = false,
        }
    }
    n
}

fn assert_markdown_tables(md: &str, what: &str) {
    assert_no_controls(md, what);
    let mut tables = 0;
    for block in md.split("\n\n") {
        let rows: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
        if rows.is_empty() {
            continue;
        }
        tables += 1;
        assert_eq!(rows.len(), block.lines().count(), "{what}: a table broken across lines:\n{block}");
        let width = cells(rows[0]);
        for r in &rows {
            assert_eq!(cells(r), width, "{what}: row with another column count:\n{r}\nin\n{block}");
        }
    }
    assert!(tables > 0, "{what}: no table in\n{md}");
}

#[test]
fn hostile_names_keep_markdown_tables_whole() {
    let logs = ugly_logs();
    let (_, md) = run(&["digest", "--format", "markdown"], logs.path());
    assert_markdown_tables(&md, "digest markdown");
    // Nothing left out: every name shows, its controls spelled out.
    assert!(md.contains(r"esc\u{1b}\[31mred"), "{md}");
    assert!(md.contains(r"new\u{a}line") || md.contains(r"new\nline"), "{md}");
    let (_, md) = run(&["gate", "--format", "markdown", "--max-increase", "20%"], logs.path());
    assert_markdown_tables(&md, "gate markdown");
}

#[test]
fn hostile_names_keep_the_terminal_table_whole() {
    let logs = ugly_logs();
    for args in [&["digest", "--format", "table"][..], &["gate", "--format", "table", "--max-increase", "20%"]] {
        let (_, out) = run(args, logs.path());
        assert!(!out.contains('\x1b'), "{args:?}: a raw ESC reaches the terminal:\n{out}");
        assert_no_controls(&out, &format!("{args:?}"));
        // Every line of a drawn table is as wide as its top border.
        for block in out.split("\n\n").filter(|b| b.contains('╭')) {
            let lines: Vec<&str> = block.lines().skip_while(|l| !l.starts_with('╭')).collect();
            let width = lines[0].chars().count();
            for l in &lines {
                assert_eq!(l.chars().count(), width, "{args:?}: a ragged table row {l:?} in\n{block}");
            }
        }
    }
}

#[test]
fn hostile_names_keep_csv_rows_whole_and_lossless() {
    let logs = ugly_logs();
    for (section, column) in [("by_model", "model"), ("by_agent", "agent"), ("by_variant", "experiment")] {
        let (_, out) = run(&["digest", "--format", "csv", "--csv-section", section], logs.path());
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(out.as_bytes());
        let headers = reader.headers().expect("a header row").clone();
        let at = headers.iter().position(|h| h == column).unwrap_or_else(|| panic!("{section}: {headers:?}"));
        let mut names = Vec::new();
        for record in reader.records() {
            let record = record.unwrap_or_else(|e| panic!("{section}: not strict CSV ({e}):\n{out}"));
            assert_eq!(record.len(), headers.len(), "{section}");
            names.push(record[at].to_string());
        }
        // CSV is data: the names come back byte for byte.
        for name in UGLY.iter().filter(|n| section != "by_agent" || !n.contains(':')) {
            assert!(names.iter().any(|n| n == name), "{section}: {name:?} not among {names:?}");
        }
    }
}

/// Names a spreadsheet would run as formulas reach the CSV as text (a leading `'`), in every
/// section that carries names, and reach JSON unchanged.
#[test]
fn formula_names_are_text_in_csv_and_unchanged_in_json() {
    const FORMULAS: [&str; 5] = ["=HYPERLINK(\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd"];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), corpus(&FORMULAS).join("\n") + "\n").unwrap();
    let sections = [("by_model", "model"), ("by_agent", "agent"), ("by_variant", "variant"), ("by_session", "agent")];
    for (section, column) in sections {
        let (_, out) = run(&["digest", "--format", "csv", "--csv-section", section], dir.path());
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let at = reader.headers().unwrap().iter().position(|h| h == column).expect(column);
        let cells: Vec<String> = reader.records().map(|r| r.expect("strict CSV")[at].to_string()).collect();
        for name in FORMULAS {
            assert!(cells.contains(&format!("'{name}")), "{section}: {name:?} not as text among {cells:?}");
        }
        assert!(cells.iter().all(|c| c.starts_with('\'')), "{section}: a formula left as is: {cells:?}");
    }
    let (_, json) = run(&["digest", "--format", "json"], dir.path());
    let v: Value = serde_json::from_str(&json).unwrap();
    let models: Vec<&str> = v["by_model"].as_array().unwrap().iter().map(|m| m["model"].as_str().unwrap()).collect();
    for name in FORMULAS {
        assert!(models.contains(&name), "JSON: {name:?} not among {models:?}");
    }
}

#[test]
fn hostile_names_keep_junit_well_formed() {
    let logs = ugly_logs();
    let (_, xml) =
        run(&["gate", "--format", "junit", "--max-increase", "20%", "--max-increase-per", "model=10%"], logs.path());
    let bad: Vec<char> = xml.chars().filter(|c| c.is_control() && !"\n\r\t".contains(*c)).collect();
    assert!(bad.is_empty(), "characters XML 1.0 forbids: {bad:?}");
    let suites = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes()))
        .unwrap_or_else(|e| panic!("not well-formed JUnit ({e}):\n{xml}"));
    let cases: usize = suites.suites.iter().map(|s| s.cases.len()).sum();
    assert!(cases >= 3, "{xml}");
    let mut names = String::new();
    for case in suites.suites.iter().flat_map(|s| &s.cases) {
        writeln!(names, "{}", case.name).unwrap();
    }
    assert!(names.contains("<i>html&amp;"), "names survive the XML escaping:\n{names}");
}
