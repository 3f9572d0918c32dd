//! The binary as a user meets it: exit codes, warnings on stderr, files written whole.

mod common;

use std::fs;
use std::io::Write;

use common::{fixture_cmd, fixture_digest, fixture_logs, json_of, obsctl, stdout_of};
use predicates::prelude::*;

#[test]
fn fixture_week_totals_match_the_documented_facts() {
    // fixtures/README.md, "Facts": computed by the generator's own oracle.
    let j = json_of(&mut fixture_digest(&["--format", "json"]));
    let t = &j["totals"];
    assert!((t["cost_usd"].as_f64().unwrap() - 6.301855).abs() < 1e-9, "{t}");
    assert_eq!(t["input_tokens"], 900100);
    assert_eq!(t["output_tokens"], 75630);
    assert_eq!(t["sessions"], 25);
    assert_eq!(t["model_calls"], 52);
    assert_eq!(t["uncosted_events"], 2);
    assert_eq!(t["errors"], 5);
    assert_eq!(t["tool_calls"], 27);
    assert_eq!(t["tool_failures"], 3);
    let p = &j["previous"];
    assert!((p["cost_usd"].as_f64().unwrap() - 3.699020).abs() < 1e-9, "{p}");
    assert_eq!(p["sessions"], 9);
    assert_eq!(j["skipped_lines"], 6);
    assert_eq!(j["schema"], "obsctl.digest/v1");
    assert_eq!(j["window"]["start"], "2026-11-16T00:00:00Z");
    assert_eq!(j["window"]["end"], "2026-11-23T00:00:00Z");
    assert_eq!(j["window"]["partial"], false);
}

#[test]
fn malformed_lines_are_warned_about_with_file_and_line() {
    fixture_digest(&["--format", "json"])
        .assert()
        .success()
        .stderr(predicate::str::contains("events.2026-11-16.jsonl: skipped 1 malformed line (first at line 10"))
        .stderr(predicate::str::contains("events.2026-11-17.jsonl.gz: skipped 1 malformed line (first at line 17"))
        .stderr(predicate::str::contains("events.jsonl: skipped 1 malformed line (first at line 45: unterminated"));
    fixture_digest(&["--format", "json", "--quiet"]).assert().success().stderr("");
    // Lines ended by CR alone read as one line: the warning says so, not "unterminated".
    let dir = tempfile::tempdir().unwrap();
    let line = r#"{"type":"model_usage","model":"m","costUsd":1,"timestamp":"2026-11-17T10:00:00Z","sessionId":"s1"}"#;
    fs::write(dir.path().join("events.jsonl"), format!("{line}\r{line}\r")).unwrap();
    obsctl()
        .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--logs"])
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("lines end in CR alone, not LF or CRLF"));
}

#[test]
fn single_thread_and_parallel_output_are_byte_identical() {
    let one = stdout_of(&mut fixture_digest(&["--format", "json", "--threads", "1"]));
    let many = stdout_of(&mut fixture_digest(&["--format", "json", "--threads", "4"]));
    assert_eq!(one, many);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["digest", "--week", "2026-W99"][..],
        &["digest", "--week", "2026-W47", "--last", "7d"],
        &["digest", "--last", "7x"],
        &["digest", "--since", "tomorrow-ish"],
        &["digest", "--tz", "Mars/Olympus"],
        &["digest", "--format", "yaml"],
        &["digest", "--no-such-flag"],
        &["digest", "--threads", "0"],
        &["digest", "--threads", "100000"],
        &["frobnicate"],
    ] {
        obsctl().args(args).assert().code(2).stderr(predicate::str::is_empty().not());
    }
}

#[test]
fn a_bad_server_url_names_the_flag_and_the_variable_that_can_give_it() {
    // The URL may come from the environment, where no flag on the command line shows it.
    let refused = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = obsctl();
        cmd.envs(env.iter().copied());
        let out = cmd.args(["digest", "--week", "2026-W47"]).args(args).assert().code(2).get_output().stderr.clone();
        String::from_utf8_lossy(&out).into_owned()
    };
    let err = refused(&[("OBSCTL_LOKI_URL", "ftp://127.0.0.1:3100")], &["--source", "loki"]);
    assert!(err.contains("--loki-url (or OBSCTL_LOKI_URL): invalid server URL ftp://127.0.0.1:3100"), "{err}");
    let err = refused(&[], &["--source", "prometheus", "--prometheus-url", "127.0.0.1:9090"]);
    assert!(err.contains("--prometheus-url (or OBSCTL_PROMETHEUS_URL): invalid server URL"), "{err}");
    // Other server settings name themselves, not the URL's flag.
    let err = refused(&[], &["--source", "prometheus", "--connect-timeout", "0"]);
    assert!(err.contains("invalid connect timeout (--connect-timeout") && !err.contains("--prometheus-url"), "{err}");
    let err = refused(&[], &["--source", "prometheus", "--bearer-token-file", "/nonexistent/obsctl-token"]);
    assert!(err.contains("cannot read bearer token file /nonexistent/obsctl-token"), "{err}");
    assert!(!err.contains("--prometheus-url"), "{err}");
}

#[test]
fn the_tz_variable_cuts_the_week_when_no_flag_names_a_zone() {
    // `TZ=Europe/Berlin obsctl digest --week …` from cron: the week is Berlin's.
    let report = json_of(fixture_cmd(&["--week", "2026-W47", "--format", "json"]).env("TZ", "Europe/Berlin"));
    assert_eq!(report["window"]["start"], "2026-11-15T23:00:00Z", "{}", report["window"]);
    assert_eq!(report["window"]["tz"], "Europe/Berlin");
    let report =
        json_of(fixture_cmd(&["--week", "2026-W47", "--format", "json", "--tz", "UTC"]).env("TZ", "Europe/Berlin"));
    assert_eq!(report["window"]["start"], "2026-11-16T00:00:00Z", "--tz wins over TZ");
    fixture_cmd(&["--week", "2026-W47"])
        .env("TZ", "CET-1CEST")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("TZ=\"CET-1CEST\" is not an IANA time zone name"));
}

#[test]
fn missing_logs_path_is_exit_2_naming_it() {
    obsctl()
        .args(["digest", "--week", "2026-W47", "--logs", "/nonexistent/telemetry"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/telemetry"));
}

#[test]
fn directory_without_telemetry_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    obsctl()
        .args(["digest", "--week", "2026-W47", "--logs"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no telemetry files"));
}

#[test]
fn broken_gzip_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("events.2026-11-18.jsonl.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    obsctl()
        .args(["digest", "--week", "2026-W47", "--logs"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("events.2026-11-18.jsonl.gz"));
}

#[test]
fn empty_window_is_an_explicit_report_not_an_error() {
    let mut cmd = fixture_cmd(&["--week", "2026-W30", "--tz", "UTC"]);
    let table = stdout_of(&mut cmd);
    assert!(table.contains("No events in 2026-07-20 00:00 – 2026-07-27 00:00 (UTC)."), "{table}");
    let j = json_of(cmd.args(["--format", "json"]));
    assert_eq!(j["totals"]["events"], 0);
    assert_eq!(j["by_model"], serde_json::json!([]));
    assert_eq!(j["by_session"], serde_json::json!([]));
    assert_eq!(j["daily"].as_array().unwrap().len(), 7);
}

#[test]
fn output_file_is_written_whole_and_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digest.json");
    fs::write(&path, "old contents").unwrap();
    fixture_digest(&["--format", "json", "--quiet", "--output"]).arg(&path).assert().success().stdout("");
    let written = fs::read_to_string(&path).unwrap();
    assert_eq!(written, stdout_of(&mut fixture_digest(&["--format", "json", "--quiet"])));
    // Nothing but the report is left in the directory: the temporary file was renamed.
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["digest.json"]);
}

/// What is not a regular file is written into, never renamed over: a FIFO keeps its reader,
/// a link to the process's standard output writes there, a symlink to a report stays a link.
#[test]
fn an_output_that_is_a_fifo_a_device_or_a_link_is_written_through() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let expected = stdout_of(&mut fixture_digest(&["--format", "json", "--quiet"]));

    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    fixture_digest(&["--format", "json", "--quiet", "--output"]).arg(&fifo).assert().success();
    // (Checked first: renamed over, the FIFO would leave its reader waiting for ever.)
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(reader.join().unwrap(), expected);

    // A private link to the child's own stdout (the shape of /dev/stdout, without touching /dev).
    let stdout = dir.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout).unwrap();
    fixture_digest(&["--format", "json", "--quiet", "--output"])
        .arg(&stdout)
        .assert()
        .success()
        .stdout(expected.clone());
    assert!(fs::symlink_metadata(&stdout).unwrap().file_type().is_symlink());

    let (report, link) = (dir.path().join("report.json"), dir.path().join("latest.json"));
    fs::write(&report, "old").unwrap();
    std::os::unix::fs::symlink(&report, &link).unwrap();
    fixture_digest(&["--format", "json", "--quiet", "--output"]).arg(&link).assert().success();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&report).unwrap(), expected);
}

/// A CSV table has no room for the report's sources: a fallback is said on stderr.
#[test]
fn a_csv_digest_says_on_stderr_that_it_fell_back() {
    let auto = |format: &str| {
        obsctl()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["digest", "--source", "auto", "--logs", "fixtures/home/.openclaw/telemetry", "--format", format])
            .args(["--week", "2026-W47", "--tz", "UTC"])
            .args(["--prometheus-url", "http://127.0.0.1:1", "--loki-url", "http://127.0.0.1:1"])
            .output()
            .unwrap()
    };
    let out = auto("csv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: sources: jsonl (Prometheus at http://127.0.0.1:1/"), "{stderr}");
    // The other formats say it in the report, and stderr keeps to the files' warnings.
    let out = auto("markdown");
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("sources:"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Prometheus at http://127.0.0.1:1/"));
}

#[test]
fn an_output_that_cannot_be_written_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file.txt"), "not a directory").unwrap();
    fixture_digest(&["--quiet", "--output"])
        .arg(dir.path().join("file.txt/report.md"))
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("file.txt/report.md"));
}

#[test]
fn several_outputs_in_one_run_and_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (json, md) = (dir.path().join("d.json"), dir.path().join("d.md"));
    let outputs = |cmd: &mut assert_cmd::Command| {
        cmd.arg("--output").arg(format!("json={}", json.display()));
        cmd.arg("--output").arg(format!("markdown={}", md.display()));
    };
    let mut cmd = fixture_digest(&["--quiet"]);
    outputs(&mut cmd);
    cmd.assert().success().stdout("").stderr("");
    let j: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["totals"]["sessions"], 25);
    assert!(fs::read_to_string(&md).unwrap().starts_with("# Agent cost and usage digest"));
    // --verbose prints the --format on stdout as well.
    let mut cmd = fixture_digest(&["--quiet", "--verbose"]);
    outputs(&mut cmd);
    assert_eq!(stdout_of(&mut cmd), stdout_of(&mut fixture_digest(&["--quiet"])));
}

#[test]
fn output_paths_are_templates_of_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    fixture_digest(&["--quiet", "--format", "markdown", "--output"])
        .arg(reports.join("{iso_week}.md"))
        .arg("--output")
        .arg(format!("json={}", reports.join("{start}_{end}/digest.json").display()))
        .assert()
        .success()
        .stdout("")
        .stderr("");
    // The directories were created; the Markdown is what standard output would have had.
    let md = fs::read_to_string(reports.join("2026-W47.md")).unwrap();
    assert_eq!(md, stdout_of(&mut fixture_digest(&["--quiet", "--format", "markdown"])));
    assert!(reports.join("2026-11-16_2026-11-23/digest.json").is_file());
    let mut names: Vec<_> = fs::read_dir(&reports).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["2026-11-16_2026-11-23", "2026-W47.md"], "no temporary file left behind");
    // In Berlin the same week is named the same; {date} is today there.
    fixture_cmd(&["--week", "2026-W47", "--tz", "Europe/Berlin", "--quiet", "--output"])
        .arg(reports.join("berlin-{iso_week}-{date}.md"))
        .assert()
        .success();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Berlin).date_naive();
    // (A run across midnight may have named yesterday.)
    let named = |d: chrono::NaiveDate| reports.join(format!("berlin-2026-W47-{d}.md")).is_file();
    assert!(named(today) || named(today.pred_opt().unwrap()));
}

#[test]
fn an_unknown_placeholder_is_exit_2_naming_it_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = fixture_digest(&["--output"]).arg(dir.path().join("{week}.md")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: --output ") && stderr.contains("unknown placeholder {week}"), "{stderr}");
    assert!(!stderr.contains("warning"), "refused before the files are read: {stderr}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn each_output_that_fails_is_one_line_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file.txt"), "not a directory").unwrap();
    let good = dir.path().join("ok/d.md");
    let out = fixture_digest(&["--quiet", "--format", "markdown", "--output"])
        .arg(dir.path().join("file.txt/a.md"))
        .arg("--output")
        .arg(format!("json={}", dir.path().join("file.txt/b.json").display()))
        .arg("--output")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("error: cannot create directory") && lines[0].contains("file.txt/a.md"), "{stderr}");
    assert!(lines[1].starts_with("error: cannot create directory") && lines[1].contains("file.txt/b.json"), "{stderr}");
    assert!(good.is_file(), "the output that could be written was");
    assert!(out.stdout.is_empty());
}

#[test]
fn no_colour_when_not_a_terminal() {
    let mut cmd = fixture_digest(&[]);
    cmd.env_remove("NO_COLOR");
    assert!(!stdout_of(&mut cmd).contains('\x1b'));
}

#[test]
fn long_and_huge_lines_are_skipped_without_changing_totals() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"type":"model_usage","timestamp":"2026-11-18T10:00:00Z","sessionId":"s1","model":"m","provider":"p","inputTokens":10,"outputTokens":5,"costUsd":0.25}"#;
    let mut f = fs::File::create(dir.path().join("events.jsonl")).unwrap();
    writeln!(f, "{good}").unwrap();
    // A 10 MB line of garbage, then a 20 MB one (past the 16 MiB line limit), then a valid
    // line: only the two valid lines count.
    writeln!(f, "{}", "x".repeat(10 << 20)).unwrap();
    writeln!(f, "{{\"type\":\"model_usage\",\"pad\":\"{}\"}}", "y".repeat(20 << 20)).unwrap();
    writeln!(f, "{}", good.replace("s1", "s2")).unwrap();
    drop(f);
    let mut cmd = obsctl();
    cmd.args(["digest", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--logs"]).arg(dir.path());
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["skipped_lines"], 2);
    assert_eq!(j["totals"]["model_calls"], 2);
    assert_eq!(j["totals"]["cost_usd"], 0.5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 2 malformed lines (first at line 2"), "{stderr}");
}

#[test]
fn a_file_named_explicitly_is_read_whatever_its_name() {
    let mut cmd = obsctl();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["digest", "--week", "2026-W47", "--tz", "UTC", "--format", "json"]);
    cmd.args(["--logs", "fixtures/home/.openclaw/telemetry/notes.txt"]);
    let j = json_of(&mut cmd);
    // notes.txt holds one pasted model_usage line dated in W47 among prose lines.
    assert_eq!(j["totals"]["model_calls"], 1);
    assert!(j["skipped_lines"].as_u64().unwrap() >= 1);
}

#[test]
fn completions_are_generated() {
    obsctl().args(["completions", "bash"]).assert().success().stdout(predicate::str::contains("obsctl"));
}

#[test]
fn auto_falls_back_to_the_files_and_says_why() {
    let started = std::time::Instant::now();
    let mut cmd = obsctl();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "digest",
        "--week",
        "2026-W47",
        "--tz",
        "UTC",
        "--format",
        "json",
        "--logs",
        "fixtures/home/.openclaw/telemetry",
        "--prometheus-url",
        "http://127.0.0.1:1",
    ]);
    let j = json_of(&mut cmd);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "a dead server must not hold the report up");
    assert_eq!(j["totals"]["sessions"], 25, "the files answered");
    for s in j["sources"].as_array().unwrap() {
        assert_eq!(s["source"], "jsonl", "{s}");
        if ["totals", "by_model", "by_agent", "daily", "previous"].contains(&s["section"].as_str().unwrap()) {
            let why = s["fallback_reason"].as_str().unwrap_or_default();
            assert!(why.starts_with("Prometheus at http://127.0.0.1:1/: unreachable"), "{s}");
        }
    }
}

#[test]
fn auto_with_no_server_and_no_files_is_exit_2_naming_both() {
    obsctl()
        .args([
            "digest",
            "--week",
            "2026-W47",
            "--logs",
            "/nonexistent/telemetry",
            "--prometheus-url",
            "http://127.0.0.1:1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/telemetry"))
        .stderr(predicate::str::contains("Prometheus at http://127.0.0.1:1/: unreachable"));
}

/// A copy of the fixture telemetry, to add files to.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(common::fixture_logs()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn totals_of(logs: &[&std::path::Path]) -> (serde_json::Value, serde_json::Value) {
    let mut cmd = obsctl();
    cmd.args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "-q"]);
    for l in logs {
        cmd.arg("--logs").arg(l);
    }
    let j = json_of(&mut cmd);
    (j["totals"].clone(), j["warnings"].clone())
}

#[test]
fn a_file_reached_twice_is_read_once_and_said_so() {
    let (once, _) = totals_of(&[&common::fixture_logs()]);
    let copy = fixture_copy();
    let link =
        copy.path().parent().unwrap().join(format!("{}-link", copy.path().file_name().unwrap().to_string_lossy()));
    std::os::unix::fs::symlink(copy.path(), &link).unwrap();
    let live = copy.path().join("events.jsonl");
    // A hard link has no path to resolve to the first: the same file all the same.
    let hard = tempfile::tempdir().unwrap();
    fs::hard_link(&live, hard.path().join("events.jsonl")).unwrap();
    for logs in [
        vec![copy.path(), copy.path()],
        vec![copy.path(), &live],
        vec![copy.path(), &link],
        vec![copy.path(), hard.path()],
    ] {
        let (totals, warnings) = totals_of(&logs);
        assert_eq!(totals, once, "{logs:?}");
        assert!(warnings.to_string().contains("not read: the same file as"), "{logs:?}: {warnings}");
    }
    fs::remove_file(&link).unwrap();
    // `gzip -k` (or a rotation caught mid-compression) leaves a day both plain and gzipped.
    let gz = copy.path().join("events.2026-11-17.jsonl.gz");
    let plain = fs::read(&gz).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&plain[..]), &mut bytes).unwrap();
    fs::write(copy.path().join("events.2026-11-17.jsonl"), bytes).unwrap();
    let (totals, warnings) = totals_of(&[copy.path()]);
    assert_eq!(totals, once);
    assert!(warnings.to_string().contains("events.2026-11-17.jsonl.gz not read: it holds the lines of"), "{warnings}");
    // A `.gz` still being written holds a beginning of the lines: a copy too.
    let whole = fs::read(&gz).unwrap();
    fs::write(&gz, &whole[..whole.len() * 2 / 3]).unwrap();
    assert_eq!(totals_of(&[copy.path()]).0, once);
    let doctor = stdout_of(
        obsctl()
            .args(["doctor", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--logs"])
            .arg(copy.path()),
    );
    assert!(doctor.contains("events.2026-11-17.jsonl.gz not read"), "{doctor}");
    // Different lines in the two are both read.
    fs::write(copy.path().join("events.2026-11-17.jsonl"), "").unwrap();
    fs::write(&gz, &whole).unwrap();
    let (totals, warnings) = totals_of(&[copy.path()]);
    assert_eq!(totals, once);
    assert!(!warnings.to_string().contains("not read"), "{warnings}");
    // An unfinished `gunzip -k` leaves the plain file a beginning of the `.gz`: the `.gz` is read.
    let plain_path = copy.path().join("events.2026-11-17.jsonl");
    let mut lines = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&whole[..]), &mut lines).unwrap();
    fs::write(&plain_path, &lines[..lines.len() / 2]).unwrap();
    let (totals, warnings) = totals_of(&[copy.path()]);
    assert_eq!(totals, once);
    assert!(
        warnings.to_string().contains("events.2026-11-17.jsonl not read: its lines are the beginning of"),
        "{warnings}"
    );
    // The same beginning, then other lines: which is right cannot be told, so no total.
    let mut damaged = lines[..lines.len() / 2].to_vec();
    damaged.extend_from_slice(b"{\"type\":\"session_start\"}\n");
    fs::write(&plain_path, damaged).unwrap();
    obsctl()
        .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--logs"])
        .arg(copy.path())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("begin with the same"))
        .stderr(predicate::str::contains("events.2026-11-17.jsonl.gz"));
}

#[test]
fn token_counts_past_64_bits_are_an_error_not_a_wrapped_total() {
    let dir = tempfile::tempdir().unwrap();
    let line = |session: &str, tokens: u64| {
        format!(
            r#"{{"type":"model_usage","model":"gpt-5","provider":"openai","inputTokens":{tokens},"outputTokens":10,"costUsd":1.0,"timestamp":"2026-11-17T10:00:00Z","agentId":"main","sessionId":"{session}"}}"#
        )
    };
    fs::write(dir.path().join("events.jsonl"), format!("{}\n{}\n", line("a", 100), line("b", u64::MAX))).unwrap();
    obsctl()
        .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--logs"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("input token counts add up to 18446744073709551615 or more"))
        // The message says where to look: the first line with an impossible count.
        .stderr(predicate::str::contains(format!(
            "the first count of 9007199254740992 or more is at {} line 2",
            dir.path().join("events.jsonl").display()
        )));
    // The same counts below the limit add up exactly.
    fs::write(dir.path().join("events.jsonl"), format!("{}\n{}\n", line("a", 100), line("b", u64::MAX - 101))).unwrap();
    let (totals, _) = totals_of(&[dir.path()]);
    assert_eq!(totals["input_tokens"], u64::MAX - 1);
}

#[test]
fn output_files_get_the_mode_a_plain_write_gives() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (new, kept) = (dir.path().join("new.md"), dir.path().join("kept.md"));
    fs::write(&kept, "old").unwrap();
    fs::set_permissions(&kept, fs::Permissions::from_mode(0o640)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("obsctl");
    for path in [&new, &kept] {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$0\" digest --source jsonl --week 2026-W47 --tz UTC -q --logs \"$1\" -o \"$2\"")
            .arg(&bin)
            .arg(common::fixture_logs())
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&new), 0o644, "0666 less the umask, not a temporary file's 0600");
    assert_eq!(mode(&kept), 0o640, "an existing file keeps its mode");
}

#[test]
fn a_misspelt_output_format_is_exit_2_not_a_file_of_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let digest = |output: &str| {
        let mut cmd = obsctl();
        cmd.current_dir(dir.path()).args(["digest", "--source", "jsonl", "--week", "2026-W47", "-q", "--logs"]);
        cmd.arg(common::fixture_logs()).args(["--output", output]);
        cmd
    };
    digest("jsn=d.json").assert().code(2).stderr(predicate::str::contains("\"jsn\" is not a format here"));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    // A name that only holds an `=` is a file name.
    digest("./jsn=d.json").assert().success();
    assert!(dir.path().join("jsn=d.json").is_file());
}

#[test]
fn a_window_whose_calls_all_lack_a_cost_says_its_cost_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let line = |hour: u32, cost: &str| {
        format!(
            r#"{{"type":"model_usage","model":"m1","provider":"p","inputTokens":10,"outputTokens":2,{cost}"timestamp":"2026-11-17T{hour:02}:00:00Z","agentId":"main","sessionId":"s{hour}"}}"#
        )
    };
    let digest_of = |week: &str, lines: &[String]| {
        fs::write(dir.path().join("events.jsonl"), lines.join("\n") + "\n").unwrap();
        let mut cmd = obsctl();
        cmd.args(["digest", "--source", "jsonl", "--week", week, "--tz", "UTC", "--format", "json"]);
        cmd.arg("--logs").arg(dir.path());
        json_of(&mut cmd)
    };
    let digest = |lines: &[String]| digest_of("2026-W47", lines);
    let j = digest(&[line(9, ""), line(10, "")]);
    assert_eq!(j["totals"]["uncosted_events"], 2);
    let warnings = j["warnings"].to_string();
    assert!(warnings.contains("none of the window's 2 model calls carried a cost: its cost is unknown"), "{warnings}");
    // The group's cost figures say unknown too. (A day's is its known cost: `daily`, README.)
    let variant = &j["by_variant"][0];
    assert_eq!(
        (&variant["cost_usd"], &variant["cost_sum_squares_usd2"]),
        (&serde_json::Value::Null, &serde_json::Value::Null),
        "{variant:#}"
    );
    // The same week as the previous window: its cost is unknown, and said so.
    let j = digest_of("2026-W48", &[line(9, ""), line(10, "")]);
    let warnings = j["warnings"].to_string();
    assert!(warnings.contains("none of the previous window's 2 model calls carried a cost"), "{warnings}");
    // One priced call: the cost is known (if partial), and the uncosted count says the rest.
    let j = digest(&[line(9, r#""costUsd":0.5,"#), line(10, "")]);
    assert_eq!(j["totals"]["uncosted_events"], 1);
    assert!(!j["warnings"].to_string().contains("carried a cost"), "{}", j["warnings"]);
}

#[test]
fn every_subcommand_answers_version_as_its_man_page_says() {
    for sub in ["digest", "gate", "rules", "doctor"] {
        let out = obsctl().args([sub, "--version"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")), "{sub}");
    }
}

#[test]
fn two_outputs_to_one_file_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.out");
    let same = format!("{}/./x.out", dir.path().display());
    let r = fixture_digest(&["-q", "--output"])
        .arg(format!("markdown={}", out.display()))
        .arg("--output")
        .arg(format!("json={same}"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("two outputs to the same file"));
    assert!(!out.exists(), "nothing written");
    // The same file through `..`, a relative name, or a link to it.
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("y.out"), "").unwrap();
    std::os::unix::fs::symlink(dir.path().join("y.out"), dir.path().join("link.out")).unwrap();
    for (a, b) in [("x.out", "sub/../x.out"), ("x.out", &*out.display().to_string()), ("y.out", "link.out")] {
        let r = obsctl()
            .current_dir(dir.path())
            .args(["digest", "--source", "jsonl", "--week", "2026-W47", "-q", "--logs"])
            .arg(fixture_logs())
            .args(["--output", &format!("markdown={a}"), "--output", &format!("json={b}")])
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(2), "{a} and {b}: {}", String::from_utf8_lossy(&r.stderr));
        assert!(String::from_utf8_lossy(&r.stderr).contains("two outputs to the same file"), "{a} and {b}");
    }
    assert!(!out.exists(), "nothing written");
    // The gate's saved baseline counts as an output.
    let mut gate = obsctl();
    gate.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["gate", "--source", "jsonl", "--logs", "fixtures/home/.openclaw/telemetry", "--week", "2026-W47", "-q"])
        .arg("--output")
        .arg(format!("junit={}", out.display()))
        .arg("--save-baseline")
        .arg(&out);
    let r = gate.output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!out.exists());
}

#[test]
fn doctor_outputs_are_templates_like_the_digests_and_leave_stdout_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let doctor = |output: &str| {
        let mut cmd = obsctl();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["doctor", "--source", "jsonl", "--logs", "fixtures/home/.openclaw/telemetry"])
            .args(["--week", "2026-W47", "--tz", "UTC", "-q", "--output"])
            .arg(output);
        cmd.output().unwrap()
    };
    let r = doctor(&format!("json={}/{{iso_week}}-doctor.json", dir.path().display()));
    assert!(r.stdout.is_empty(), "{}", String::from_utf8_lossy(&r.stdout));
    let written = dir.path().join("2026-W47-doctor.json");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&written).unwrap()).unwrap();
    assert!(v["findings"].is_array(), "{v}");
    let r = doctor(&format!("json={}/{{bogus}}.json", dir.path().display()));
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown placeholder {bogus}"));
}

#[test]
fn a_filter_that_selects_nothing_is_warned_about() {
    let j = json_of(&mut fixture_digest(&["--format", "json", "--agent", "codr"]));
    let warnings = j["warnings"].to_string();
    assert!(warnings.contains("no event in the window matched --agent codr"), "{warnings}");
    let j = json_of(&mut fixture_digest(&["--format", "json", "--agent", "coder"]));
    assert!(!j["warnings"].to_string().contains("no event in the window matched"), "{}", j["warnings"]);
    // A model spelt with its provider, as the fixture's lines write it, names no model: the
    // warning gives the spelling that works, and that spelling selects the calls.
    let j = json_of(&mut fixture_digest(&["--format", "json", "--model", "openai/gpt-5"]));
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains("a model is named without its provider prefix: --model gpt-5, not --model openai/gpt-5"),
        "{warnings}"
    );
    let j = json_of(&mut fixture_digest(&["--format", "json", "--model", "gpt-5"]));
    assert!(j["totals"]["model_calls"].as_u64().is_some_and(|n| n > 0), "{}", j["totals"]);
    assert!(!j["warnings"].to_string().contains("no event in the window matched"), "{}", j["warnings"]);
}

#[test]
fn a_total_past_a_single_calls_limit_shows_as_it_is_in_every_format() {
    // Each call is within what one amount may be ($10^15); their sum is not, and the
    // table once showed it as $0.00 while the rows and JSON gave the sum.
    let dir = tempfile::tempdir().unwrap();
    let line = |session: &str, day: u32| {
        format!(
            r#"{{"type":"model_usage","model":"m","provider":"p","inputTokens":1,"outputTokens":1,"costUsd":600000000000000,"timestamp":"2026-11-{day}T10:00:00Z","agentId":"main","sessionId":"{session}"}}"#
        )
    };
    fs::write(dir.path().join("events.jsonl"), format!("{}\n{}\n", line("a", 17), line("b", 18))).unwrap();
    let digest = |format: &str| {
        stdout_of(
            obsctl()
                .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", format])
                .arg("--logs")
                .arg(dir.path()),
        )
    };
    for format in ["table", "markdown"] {
        let out = digest(format);
        let cost_row = out.lines().find(|l| l.contains("Cost") && l.contains('$')).unwrap_or_default().to_string();
        assert!(
            cost_row.contains("$1,199,999,999,999,999.99") || cost_row.contains("$1,200,000,000,000,000.00"),
            "{format}: {out}"
        );
        assert!(!out.contains("+$0.00"), "{format}: {out}");
    }
    let j: serde_json::Value = serde_json::from_str(&digest("json")).unwrap();
    assert!((j["totals"]["cost_usd"].as_f64().unwrap() - 1.2e15).abs() < 1.0, "{}", j["totals"]);
}

#[test]
fn a_model_of_unknown_cost_is_no_mover() {
    // Last week gpt-5 cost $1; this week its one call carries no cost: not a drop to $0.
    let dir = tempfile::tempdir().unwrap();
    let call = |model: &str, cost: &str, day: u32| {
        format!(
            r#"{{"type":"model_usage","model":"{model}","provider":"openai","inputTokens":1,"outputTokens":1{cost},"timestamp":"2026-11-{day}T10:00:00Z","agentId":"main","sessionId":"s{day}{model}"}}"#
        )
    };
    let lines = [call("gpt-5", r#","costUsd":1"#, 10), call("gpt-5", "", 17), call("o3", r#","costUsd":2"#, 17)];
    fs::write(dir.path().join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let j = json_of(
        obsctl()
            .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--logs"])
            .arg(dir.path()),
    );
    let movers: Vec<&str> = j["movers"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(movers.contains(&"openai/o3"), "{movers:?}");
    assert!(!movers.contains(&"openai/gpt-5"), "{:#}", j["movers"]);
}

/// `--csv-section` with no CSV output is a mistake to say, not a flag to ignore.
#[test]
fn a_csv_section_without_csv_output_is_refused() {
    let logs = common::fixture_logs();
    let digest = |extra: &[&str]| {
        let mut cmd = obsctl();
        cmd.args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--logs"]).arg(&logs).args(extra);
        cmd
    };
    digest(&["--csv-section", "totals"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--csv-section chooses the table of CSV output, and no output is CSV"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("totals.csv");
    digest(&["--csv-section", "totals", "--output", &format!("csv={}", file.display())]).assert().success();
    assert!(fs::read_to_string(&file).unwrap().starts_with("metric,value,previous\n"));
    let out = digest(&["--format", "csv"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("model,provider,"), "by_model stays the default");
}

/// No telemetry on this machine (no `--logs`, no default directory) is data unavailable, as
/// when the servers are down: exit 3, for `digest` and `doctor` alike. A `--logs` that does not
/// exist was asked wrongly: exit 2.
#[test]
fn no_default_telemetry_is_unavailable_and_a_wrong_logs_is_usage() {
    let home = tempfile::tempdir().unwrap();
    let dead = ["--prometheus-url", "http://127.0.0.1:9", "--loki-url", "http://127.0.0.1:9"];
    for source in ["jsonl", "auto"] {
        for command in ["digest", "doctor"] {
            let out = obsctl()
                .env("HOME", home.path())
                .env_remove("OBSCTL_LOGS")
                .args([command, "--source", source, "--week", "2026-W47", "--tz", "UTC"])
                .args(dead)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{command} --source {source}: {said}");
            assert!(said.contains(".openclaw/telemetry"), "{command} --source {source}: {said}");
        }
    }
    obsctl()
        .env("HOME", home.path())
        .args(["digest", "--source", "auto", "--week", "2026-W47", "--tz", "UTC", "--logs"])
        .arg(home.path().join("nowhere"))
        .args(dead)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read --logs"));
}

/// logrotate's `events.jsonl.1` and other near names are not read (their dates are unknown),
/// and the digest says so, naming the first, rather than leave it to `doctor`.
#[test]
fn files_named_almost_like_telemetry_are_named_in_a_warning() {
    let copy = fixture_copy();
    let (once, quiet) = totals_of(&[copy.path()]);
    assert!(!quiet.to_string().contains("named like telemetry"), "{quiet}");
    fs::write(copy.path().join("notes.txt"), "not telemetry\n").unwrap();
    fs::copy(copy.path().join("events.jsonl"), copy.path().join("events.jsonl.1")).unwrap();
    fs::copy(copy.path().join("events.jsonl"), copy.path().join("events-2026-11-17.jsonl")).unwrap();
    let (totals, warnings) = totals_of(&[copy.path()]);
    assert_eq!(totals, once, "neither is read");
    let text = warnings.to_string();
    assert!(text.contains("events-2026-11-17.jsonl and 1 more not read: named like telemetry"), "{text}");
    assert!(!text.contains("notes.txt"), "{text}");
}
