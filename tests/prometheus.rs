//! `--source prometheus` against a real Prometheus, checked against `--source jsonl` on
//! the same events: every shared figure equal to the dollar's last digit, on the scrape
//! grid and off it, across a gateway restart and series born mid-window (no event falls
//! within a scrape interval of a window's edge, where the PromQL is exact only up to the
//! scrape interval). Also: failures name the server and query and exit 3; credentials
//! never show.

mod common;
#[path = "common/prometheus.rs"]
mod prom;

use common::obsctl;
use prom::TestPrometheus;
use serde_json::Value;

/// A Prometheus serving the week's counters, and a directory holding its events as JSONL.
fn serve(week: &prom::Week) -> (TestPrometheus, tempfile::TempDir) {
    let server = TestPrometheus::start(&week.openmetrics);
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("events.jsonl"), &week.jsonl).unwrap();
    (server, logs)
}

/// A digest's JSON and its standard error; it must succeed.
fn run_digest(logs: &std::path::Path, url: &str, source: &str, window: &[&str], tz: &str) -> (Value, String) {
    let out = obsctl()
        .args(["digest", "--format", "json", "--tz", tz, "--source", source, "--prometheus-url", url, "--logs"])
        .arg(logs)
        .args(window)
        .output()
        .expect("obsctl runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "--source {source} {window:?} failed: {stderr}");
    (serde_json::from_slice(&out.stdout).expect("JSON"), stderr)
}

fn digest(logs: &std::path::Path, url: &str, source: &str, window: &[&str], tz: &str) -> Value {
    run_digest(logs, url, source, window, tz).0
}

fn close(a: &Value, b: &Value, what: &str) {
    let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
    // Costs are whole pico-dollars on both sides (`Usd`), counts whole numbers: equal, not
    // merely close.
    assert!(a == b, "{what}: jsonl {a} vs prometheus {b} differ");
}

fn keyed<'a>(v: &'a Value, key: &[&str]) -> std::collections::BTreeMap<String, &'a Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| (key.iter().map(|k| row[*k].as_str().unwrap_or("null")).collect::<Vec<_>>().join("/"), row))
        .collect()
}

fn compare(jsonl: &Value, prom: &Value, label: &str) {
    for field in ["cost_usd", "input_tokens", "output_tokens", "sessions", "tool_calls", "tool_failures"] {
        close(&jsonl["totals"][field], &prom["totals"][field], &format!("{label} totals.{field}"));
    }
    for field in ["cost_usd", "sessions", "tool_calls", "tool_failures"] {
        close(&jsonl["previous"][field], &prom["previous"][field], &format!("{label} previous.{field}"));
    }
    let (jm, pm) =
        (keyed(&jsonl["by_model"], &["model", "provider"]), keyed(&prom["by_model"], &["model", "provider"]));
    assert_eq!(jm.keys().collect::<Vec<_>>(), pm.keys().collect::<Vec<_>>(), "{label} by_model rows");
    for (k, j) in &jm {
        for field in ["cost_usd", "input_tokens", "output_tokens"] {
            close(&j[field], &pm[k][field], &format!("{label} by_model {k} {field}"));
        }
    }
    let (ja, pa) = (keyed(&jsonl["by_agent"], &["agent"]), keyed(&prom["by_agent"], &["agent"]));
    assert_eq!(ja.keys().collect::<Vec<_>>(), pa.keys().collect::<Vec<_>>(), "{label} by_agent rows");
    for (k, j) in &ja {
        close(&j["cost_usd"], &pa[k]["cost_usd"], &format!("{label} by_agent {k} cost"));
        close(&j["sessions"], &pa[k]["sessions"], &format!("{label} by_agent {k} sessions"));
    }
    let (jd, pd) = (jsonl["daily"].as_array().unwrap(), prom["daily"].as_array().unwrap());
    assert_eq!(jd.len(), pd.len(), "{label} daily length");
    for (j, p) in jd.iter().zip(pd) {
        assert_eq!(j["date"], p["date"]);
        close(&j["cost_usd"], &p["cost_usd"], &format!("{label} daily {}", j["date"]));
    }
    assert!(prom["totals"]["cost_usd"].as_f64().unwrap() > 0.1, "{label}: the window holds real spend");
}

#[test]
fn prometheus_agrees_with_jsonl_on_and_off_the_scrape_grid() {
    if prom::binaries_or_skip("prometheus_agrees_with_jsonl_on_and_off_the_scrape_grid").is_none() {
        return;
    }
    let week = prom::week(7);
    let (server, logs) = serve(&week);
    let windows: [(&str, &[&str], &str); 8] = [
        // Samples are taken at :17 past the minute; a week from midnight is off that grid.
        ("off-grid week", &["--week", "2026-W47"], "UTC"),
        ("on-grid week", &["--since", "2026-11-16T00:00:17Z", "--until", "2026-11-23T00:00:17Z"], "UTC"),
        ("Berlin week", &["--week", "2026-W47"], "Europe/Berlin"),
        // Starts 30 s before the restart, and the previous window holds the first half.
        ("restart window", &["--since", "2026-11-19T12:00:00Z", "--until", "2026-11-23T00:00:00Z"], "UTC"),
        // Starts 1 h 50 min after the restart: a series not back since is silent across the
        // start, and its last value is below the one before the window (no reset in range).
        ("after the restart", &["--since", "2026-11-19T13:50:00Z", "--until", "2026-11-20T00:00:00Z"], "UTC"),
        // From the day after the restart: a tool's error counter, silent since the restart,
        // comes back below its old value and climbs back to it within the window.
        ("after a silent restart", &["--since", "2026-11-20", "--until", "2026-11-23"], "UTC"),
        // Partial local days (UTC+5:30): the cost per day from one instant query per day.
        ("Kolkata days", &["--last", "2d", "--until", "2026-11-20T00:00:00Z"], "Asia/Kolkata"),
        // A month: a coarser step, chosen so that Kolkata's midnights (18:30 UTC) are on its
        // grid (300 s, not 240 s), where the restart day, counted by steps, meets whole days.
        ("Kolkata month", &["--last", "30d", "--until", "2026-11-20T00:00:00Z"], "Asia/Kolkata"),
    ];
    for (label, window, tz) in windows {
        let jsonl = digest(logs.path(), &server.url, "jsonl", window, tz);
        let prom = digest(logs.path(), &server.url, "prometheus", window, tz);
        compare(&jsonl, &prom, label);
        if ["restart window", "Kolkata days"].contains(&label) {
            // Not 0 = 0: these previous windows hold sessions.
            assert!(prom["previous"]["cost_usd"].as_f64().unwrap() > 1.0, "{label}: {}", prom["previous"]);
        }
        let durations = &prom["durations"];
        assert!(durations["p50_seconds"].as_f64().unwrap() > 0.0, "{label}: {durations}");
        assert_eq!(prom["by_session"], serde_json::json!([]), "Prometheus has no per-session figures");
        let by_session = prom["sources"].as_array().unwrap().iter().find(|s| s["section"] == "by_session").unwrap();
        assert_eq!(by_session["source"], "none");
    }
}

/// Prometheus down for over an hour while the gateway keeps counting: a series that comes
/// back must add only what it gained (the per-step form alone counted its whole value again,
/// a lifetime's spend on one day). One outage mid-day, one across midnight; one window holds
/// the restart two days later, the others end before it.
#[test]
fn a_scrape_gap_of_hours_counts_only_what_the_gateway_did() {
    if prom::binaries_or_skip("a_scrape_gap_of_hours_counts_only_what_the_gateway_did").is_none() {
        return;
    }
    let day = |d: i64, h: f64| prom::WEEK_START + d * 86_400 + (h * 3600.0) as i64;
    let outages = [(day(1, 13.0), day(1, 14.5)), (day(1, 22.0 + 2.0 / 3.0), day(2, 1.0))];
    let week = prom::week_with_outages(7, &outages);
    let (server, logs) = serve(&week);
    let windows: [(&str, &[&str]); 4] = [
        // The outages on Tuesday and the restart on Thursday: each day is its own piece, so
        // the restart day alone is counted by steps (one form for the whole week counted the
        // series back from the outages as born again).
        ("the week", &["--week", "2026-W47"]),
        // Three whole days and a half (one instant query per day).
        ("to the restart", &["--since", "2026-11-16T00:00:00Z", "--until", "2026-11-19T12:00:00Z"]),
        // Two whole days (one range query), the second starting inside the outage.
        ("two days", &["--since", "2026-11-17", "--until", "2026-11-19"]),
        // Silent for 2 h 20 min before a window of 1 h 51 min: the value before it is older than
        // the window is long (a lookback of the window's length counted every series as born).
        ("silent since before", &["--since", "2026-11-18T00:59:00Z", "--until", "2026-11-18T02:50:00Z"]),
    ];
    for (label, window) in windows {
        let jsonl = digest(logs.path(), &server.url, "jsonl", window, "UTC");
        let prom = digest(logs.path(), &server.url, "prometheus", window, "UTC");
        compare(&jsonl, &prom, label);
    }
}

/// Prometheus down for 9 days inside a 20-day window: every day after the outage looks back
/// as far as the window's start would (20 days), so no series comes back as born.
#[test]
fn an_outage_longer_than_a_week_inside_a_long_window_counts_no_birth() {
    if prom::binaries_or_skip("an_outage_longer_than_a_week_inside_a_long_window_counts_no_birth").is_none() {
        return;
    }
    let outage = (prom::WEEK_START + 86_400 + 3600, prom::WEEK_START + 10 * 86_400 + 3600);
    let days = prom::days_with_outages(7, 20, &[outage], None);
    let (server, logs) = serve(&days);
    let window = ["--since", "2026-11-16", "--until", "2026-12-06"];
    let mut jsonl = digest(logs.path(), &server.url, "jsonl", &window, "UTC");
    let prom = digest(logs.path(), &server.url, "prometheus", &window, "UTC");
    // What the gateway counted in the outage reaches Prometheus on the day it comes back, so
    // the days differ from the files' (no metric can place it); they still add up to the total.
    let days: Vec<f64> = prom["daily"].as_array().unwrap().iter().map(|d| d["cost_usd"].as_f64().unwrap()).collect();
    let total = prom["totals"]["cost_usd"].as_f64().unwrap();
    assert!((days.iter().sum::<f64>() - total).abs() < 1e-6, "{days:?} against {total}");
    assert!(days[1] < days[10], "the outage's spend shows on the day it ends: {days:?}");
    jsonl["daily"] = prom["daily"].clone();
    compare(&jsonl, &prom, "20 days");
}

/// Each increase is asked day by day in the cheap whole form first; a day where some series
/// has a reset is asked again with the per-step terms (`obsctl_part`), which cost several
/// times as much on the server, and a day with a birth (no value the day before) with the
/// whole term alone, looking further back. `--verbose` logs every request.
#[test]
fn only_days_with_a_restart_are_counted_by_steps() {
    if prom::binaries_or_skip("only_days_with_a_restart_are_counted_by_steps").is_none() {
        return;
    }
    let week = prom::week(7);
    let (server, logs) = serve(&week);
    let requests = |window: &[&str]| -> Vec<String> {
        let window = [window, &["--verbose"]].concat();
        let (_, stderr) = run_digest(logs.path(), &server.url, "prometheus", &window, "UTC");
        stderr.lines().filter(|l| l.starts_with("prometheus ")).map(String::from).collect()
    };
    // The times at which `metric` was asked again in one instant query, with or without steps.
    let asked = |requests: &[String], metric: &str, steps: bool| -> Vec<String> {
        let mut times: Vec<String> = requests
            .iter()
            // An instant query of the metric, not the first try (a one-piece window's is one).
            .filter(|r| r.contains(" instant time=") && r.contains(&format!("({metric}[")) && !r.contains("+ Inf"))
            .filter(|r| r.contains("obsctl_part") == steps)
            .map(|r| r.split_whitespace().find(|w| w.starts_with("time=")).unwrap().to_string())
            .collect();
        times.sort();
        times
    };
    let day_end = |d: i64| format!("time={}.000", prom::WEEK_START + d * 86_400);
    let metrics = ["openclaw_session_cost_usd_sum", "openclaw_session_cost_usd_count", "openclaw_session_tokens_total"];
    // The week: cost, sessions and tokens series are born on Monday (the data's first day) and
    // restart on Thursday; gemini is born on Thursday too. The other days stand as first asked.
    let week_requests = requests(&["--week", "2026-W47"]);
    for metric in metrics {
        assert_eq!(asked(&week_requests, metric, true), [day_end(4)], "{metric}: {week_requests:#?}");
        assert_eq!(asked(&week_requests, metric, false), [day_end(1)], "{metric}: {week_requests:#?}");
    }
    // Wednesday, and Tuesday as the previous window: no restart, and these series were all
    // born on Monday: nothing is asked again.
    let quiet = requests(&["--since", "2026-11-18", "--until", "2026-11-19"]);
    for metric in metrics {
        let again = [asked(&quiet, metric, true), asked(&quiet, metric, false)].concat();
        assert_eq!(again, Vec::<String>::new(), "{metric}: {quiet:#?}");
    }
}

#[test]
fn prometheus_failures_exit_3_naming_server_and_query_and_hide_credentials() {
    if prom::binaries_or_skip("prometheus_failures_exit_3_naming_server_and_query_and_hide_credentials").is_none() {
        return;
    }
    let week = prom::week(11);
    let server = TestPrometheus::start(&week.openmetrics);
    let with_password = server.url.replace("http://", "http://bob:hunter2@");
    let run = |args: &[&str]| {
        let out = obsctl()
            .args(["digest", "--week", "2026-W47", "--tz", "UTC", "--source", "prometheus"])
            .args(args)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("hunter2"), "a password leaked: {all}");
        (out.status.code(), all)
    };

    // Credentials in the URL work (Prometheus ignores them here) and never show, not even
    // in --verbose logs or in the reason Loki (down, with a password too) was not used.
    for format in ["table", "markdown", "json", "csv"] {
        let (code, out) = run(&["--prometheus-url", &with_password, "--format", format, "--verbose"]);
        assert_eq!(code, Some(0), "{format}: {out}");
        assert!(out.contains("sum by (agent, model, provider)"), "--verbose shows the queries: {out}");
    }
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "hunter2\n").unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("events.jsonl"), &week.jsonl).unwrap();
    let out = obsctl()
        .args(["digest", "--week", "2026-W47", "--tz", "UTC", "--verbose", "--prometheus-url", &with_password])
        .args([
            "--loki-url",
            "http://loki:hunter2@127.0.0.1:1",
            "--header",
            "X-Api-Key: hunter2",
            "--bearer-token-file",
        ])
        .arg(token.path())
        .arg("--logs")
        .arg(logs.path())
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("hunter2"), "a secret leaked: {all}");

    // Nothing listens on port 1.
    let (code, out) = run(&["--prometheus-url", "http://bob:hunter2@127.0.0.1:1"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("Prometheus at http://127.0.0.1:1/") && out.contains("unreachable"), "{out}");
    assert!(out.contains("query `"), "the query is named: {out}");

    // A metric name that does not exist: "not found", not $0.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[prometheus.metrics]\nsession_cost = \"no_such_cost\"\n").unwrap();
    let (code, out) = run(&["--prometheus-url", &server.url, "--config", config.path().to_str().unwrap()]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("series no_such_cost_sum not found"), "{out}");

    // An HTTP error from something that is not the Prometheus API.
    let (code, out) = run(&["--prometheus-url", &format!("{}/not-here/", server.url)]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("HTTP 404"), "{out}");
}

#[test]
fn auto_takes_aggregates_from_prometheus_and_detail_from_the_files() {
    if prom::binaries_or_skip("auto_takes_aggregates_from_prometheus_and_detail_from_the_files").is_none() {
        return;
    }
    let week = prom::week(7);
    let (server, logs) = serve(&week);
    let window: &[&str] = &["--week", "2026-W47"];
    let auto = digest(logs.path(), &server.url, "auto", window, "UTC");
    let jsonl = digest(logs.path(), &server.url, "jsonl", window, "UTC");
    let source = |section: &str| {
        auto["sources"].as_array().unwrap().iter().find(|s| s["section"] == section).unwrap()["source"].clone()
    };
    for section in ["totals", "previous", "by_model", "by_agent", "daily"] {
        assert_eq!(source(section), "prometheus", "{section}");
    }
    for section in ["by_variant", "by_session"] {
        assert_eq!(source(section), "jsonl", "{section}");
    }
    compare(&jsonl, &auto, "auto");
    assert_eq!(auto["by_session"], jsonl["by_session"]);
    assert_eq!(auto["by_variant"], jsonl["by_variant"]);
    // One figure, one meaning: every field of totals, by_model and by_agent equals the files'
    // digest of the same events; what only Prometheus has keeps its own name.
    for (k, v) in jsonl["totals"].as_object().unwrap() {
        match k.as_str() {
            "model_errors" | "costed_sessions" => assert!(v.is_null(), "{k}: the files have none"),
            "cost_usd" => close(v, &auto["totals"][k], "auto totals.cost_usd"),
            _ => assert_eq!(&auto["totals"][k], v, "auto totals.{k}"),
        }
    }
    assert!(auto["totals"]["costed_sessions"].as_u64().is_some(), "Prometheus's own figure, under its own name");
    for (section, key) in [("by_model", &["model", "provider"][..]), ("by_agent", &["agent"][..])] {
        let (j, a) = (keyed(&jsonl[section], key), keyed(&auto[section], key));
        assert_eq!(j.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>(), "{section}");
        for (name, row) in &j {
            for (field, v) in row.as_object().unwrap() {
                if field == "cost_usd" {
                    close(v, &a[name][field], &format!("auto {section} {name} cost"));
                } else {
                    assert_eq!(&a[name][field], v, "auto {section} {name} {field}");
                }
            }
        }
    }
    let counts_from = |section: &str| {
        auto["sources"].as_array().unwrap().iter().find(|s| s["section"] == section).unwrap()["counts_from"].clone()
    };
    assert_eq!(counts_from("totals"), "jsonl", "the provenance says where the counts came from");
    assert_eq!(counts_from("by_agent"), "jsonl");
    assert!(auto["durations"]["p95_seconds"].as_f64().is_some());
}

/// A gateway that names the token type or the tool status otherwise than the config says:
/// never a total of 0 tokens or failures that a gate would pass on. Without the token type
/// the answer fails (exit 3) and says which setting names it; without the status, the
/// failures are unknown, with a warning, and a failure-rate gate is undecided (exit 3).
#[test]
fn series_without_the_labels_the_figures_split_on_are_never_read_as_zero() {
    if prom::binaries_or_skip("series_without_the_labels_the_figures_split_on_are_never_read_as_zero").is_none() {
        return;
    }
    let mut week = prom::week(11);
    week.openmetrics = week.openmetrics.replace(",type=\"", ",token_type=\"").replace(",status=\"", ",outcome=\"");
    let (server, logs) = serve(&week);
    let window = ["--since", "2026-11-16T00:00:17Z", "--until", "2026-11-23T00:00:17Z"];
    let run_as = |format: &str, extra: &[&str]| {
        obsctl()
            .args(["digest", "--format", format, "--tz", "UTC", "--source", "prometheus", "--no-compare"])
            .args(["--prometheus-url", &server.url])
            .args(window)
            .args(extra)
            .output()
            .unwrap()
    };
    let run = |extra: &[&str]| run_as("json", extra);
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("without a `type` label") && stderr.contains("token_type"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[prometheus.labels]\ntoken_type = \"token_type\"\n").unwrap();
    let out = run(&["--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let prom: Value = serde_json::from_slice(&out.stdout).unwrap();
    let jsonl = digest(logs.path(), &server.url, "jsonl", &window, "UTC");
    for field in ["input_tokens", "output_tokens", "tool_calls"] {
        close(&jsonl["totals"][field], &prom["totals"][field], field);
    }
    assert!(jsonl["totals"]["tool_failures"].as_u64().unwrap() > 0);
    assert_eq!(prom["totals"]["tool_failures"], Value::Null, "{:#}", prom["totals"]);
    let warnings = prom["warnings"].to_string();
    assert!(warnings.contains("without a `status` label") && warnings.contains("tool failures unknown"), "{warnings}");
    // CSV has no room for the sources: that the table asked for has none is said on stderr.
    let out = run_as("csv", &["--config", config.to_str().unwrap(), "--csv-section", "by_session"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("by_session is unavailable") && stderr.contains("header only"), "{stderr}");

    let out = obsctl()
        .args(["gate", "--source", "prometheus", "--tz", "UTC", "--config", config.to_str().unwrap()])
        .args(["--prometheus-url", &server.url, "--max-tool-failure-rate", "50%"])
        .args(window)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `obsctl gate --source prometheus` on a real Prometheus, against baselines saved from
/// the same week's JSONL: equal figures pass at 0 %, a longer window's cost fails 20 %, an
/// empty previous window is insufficient data, the session budget cannot be decided from
/// metrics alone, and the p95 duration (Prometheus only) is checked.
#[test]
fn gate_on_a_real_prometheus() {
    if prom::binaries_or_skip("gate_on_a_real_prometheus").is_none() {
        return;
    }
    let week = prom::week(7);
    let (server, logs) = serve(&week);
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, until: &str| {
        let path = dir.path().join(name);
        let out = obsctl()
            .args(["digest", "--source", "jsonl", "--tz", "UTC", "--no-compare", "-q", "--format", "json"])
            .args(["--since", "2026-11-16T00:00:17Z", "--until", until, "--output"])
            .arg(&path)
            .arg("--logs")
            .arg(logs.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    };
    let same_week = save("week.json", "2026-11-23T00:00:17Z");
    let three_days = save("three-days.json", "2026-11-19T00:00:17Z");
    let gate = |args: &[&str], baseline: Option<&std::path::Path>| {
        let mut cmd = obsctl();
        cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_STEP_SUMMARY");
        cmd.args([
            "gate",
            "--source",
            "prometheus",
            "--tz",
            "UTC",
            "--format",
            "json",
            "--prometheus-url",
            &server.url,
        ])
        .args(["--since", "2026-11-16T00:00:17Z", "--until", "2026-11-23T00:00:17Z"])
        .args(args);
        if let Some(b) = baseline {
            cmd.arg("--baseline").arg(b);
        }
        let out = cmd.output().unwrap();
        // A source that cannot answer is an error on stderr (exit 3), with no verdict.
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&out.stderr).into_owned()));
        (out.status.code().unwrap(), v)
    };
    let outcome = |v: &Value, id: &str| {
        v["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).map(|c| c["outcome"].clone()).unwrap()
    };
    // Prometheus's exact increases equal the files' sums: no change at all passes 0 %.
    let (code, v) = gate(&["--max-increase", "0%", "--max-cost-per-session-increase", "0%"], Some(&same_week));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(outcome(&v, "total_cost.increase"), "pass");
    // Against three days, the week is compared at the three days' rate: their cost × 7/3,
    // and the note says so.
    let (_, v) = gate(&["--max-increase", "20%"], Some(&three_days));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&three_days).unwrap()).unwrap();
    let three_day_cost = saved["totals"]["cost_usd"].as_f64().unwrap();
    let total = v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "total_cost.increase").unwrap();
    let scaled = total["baseline"].as_f64().unwrap();
    assert!((scaled - three_day_cost * 7.0 / 3.0).abs() <= 1e-9 * scaled, "{three_day_cost} {total:#}");
    let note = v["notes"][0].as_str().unwrap();
    assert!(note.contains("not as long") && note.contains("scaled to this window's length (× 2.333)"), "{v:#}");
    // The week before holds nothing in this Prometheus: data missing, exit 3, never a pass.
    let (code, v) = gate(&["--max-increase", "20%"], None);
    assert_eq!(code, 3, "{v:#}");
    assert!(v.as_str().unwrap().contains("2026-11-09T00:00:17Z and 2026-11-16T00:00:17Z"), "{v:#}");
    // Per-session budgets need Loki or the files: undecided, not passed.
    let (code, v) = gate(&["--max-session-cost", "1"], Some(&same_week));
    assert_eq!((code, outcome(&v, "session.cost.max")), (3, Value::from("insufficient data")), "{v:#}");
    // The p95 duration comes from Prometheus's histogram; the JSONL baseline has none.
    let (code, v) = gate(&["--max-p95-duration", "100000"], Some(&same_week));
    assert_eq!((code, outcome(&v, "p95_duration.max")), (0, Value::from("pass")), "{v:#}");
    let (code, _) = gate(&["--max-p95-duration-increase", "10%"], Some(&same_week));
    assert_eq!(code, 3, "no p95 in a JSONL baseline: undecided");
}

/// The duration quantiles come from PromQL's `increase()` of the buckets (cheap), not the
/// exact per-step form the sums need: quantiles are ratios of bucket counts. On the test
/// week (a gateway restart, series born mid-window, off the scrape grid) the two differ by
/// less than 1 %; the figures are printed (`--nocapture`) for BENCHMARKS.md.
#[test]
fn duration_quantiles_from_increase_are_within_a_percent_of_the_exact_form() {
    if prom::binaries_or_skip("duration_quantiles_from_increase_are_within_a_percent_of_the_exact_form").is_none() {
        return;
    }
    let week = prom::week(7);
    let (server, logs) = serve(&week);
    let addr = server.url.trim_start_matches("http://").to_string();
    let promql = obsctl::source::promql::PromQl::new(obsctl::config::PrometheusNames::default(), 60, None).unwrap();
    for (label, window, end, len_ms) in [
        ("week", &["--week", "2026-W47"][..], "2026-11-23T00:00:00Z", 7 * 86_400_000i64),
        (
            "restart day",
            &["--since", "2026-11-19T00:00:00Z", "--until", "2026-11-20T00:00:00Z"][..],
            "2026-11-20T00:00:00Z",
            86_400_000,
        ),
    ] {
        let digest = digest(logs.path(), &server.url, "prometheus", window, "UTC");
        let exact = promql.increase_by(&promql.duration_bucket(), &["le"], len_ms);
        let end_s = chrono::DateTime::parse_from_rfc3339(end).unwrap().timestamp();
        let path = format!(
            "/api/v1/query?query={}&time={end_s}",
            exact
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        );
        let response = prom::http_get(&addr, &path).expect("Prometheus answers");
        let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let buckets: Vec<(f64, f64)> = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let le = s["metric"]["le"].as_str().unwrap();
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
                (le, s["value"][1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .collect();
        for (q, field) in [(0.5, "p50_seconds"), (0.95, "p95_seconds")] {
            let want = obsctl::source::prometheus::histogram_quantile(q, &buckets).unwrap();
            let got = digest["durations"][field].as_f64().unwrap();
            let error = (got - want).abs() / want;
            eprintln!("{label} {field}: increase() {got:.4} s, exact form {want:.4} s, error {:.3} %", error * 100.0);
            assert!(error < 0.01, "{label} {field}: {got} vs {want}");
        }
    }
}
