//! Files (issue 17): `--output` is whole or untouched when obsctl is killed while writing
//! it; a file appended to while it is read is read as a prefix of whole lines; symlink
//! loops, broken links, pipes, directories and unreadable entries in `--logs` give a clear
//! message naming the entry, never a hang.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::obsctl;

/// `n` model calls in week 2026-W47, each its own session; call `i` costs `i` dollars.
fn calls(n: usize, from: usize) -> String {
    let mut out = String::new();
    for i in from..from + n {
        let (day, sec) = (16 + i % 7, i % 86_000);
        out.push_str(&format!(
            r#"{{"type":"model_usage","timestamp":"2026-11-{day}T{:02}:{:02}:{:02}Z","sessionId":"s{i}","agentId":"a{}","model":"m{}","provider":"p","inputTokens":1,"outputTokens":1,"costUsd":{i}}}"#,
            sec / 3600,
            sec / 60 % 60,
            sec % 60,
            i % 7,
            i % 3
        ));
        out.push('\n');
    }
    out
}

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("obsctl")
}

#[test]
fn output_is_whole_or_untouched_when_killed_mid_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    // Large enough that writing the by-session CSV takes a while.
    std::fs::write(logs.join("events.2026-11-18.jsonl"), calls(60_000, 1)).expect("corpus");
    let report = dir.path().join("out/sessions.csv");
    std::fs::create_dir(dir.path().join("out")).expect("out dir");
    std::fs::write(&report, "OLD REPORT\n").expect("old report");
    let args = |cmd: &mut Command| {
        cmd.args(["digest", "--source", "jsonl", "--tz", "UTC", "--week", "2026-W47", "--top", "100000"])
            .args(["--format", "csv", "--csv-section", "by_session", "--logs"])
            .arg(&logs)
            .arg("--output")
            .arg(&report)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    // One whole run: how long it takes, and what a whole report is.
    let started = Instant::now();
    let mut cmd = Command::new(bin());
    args(&mut cmd);
    assert!(cmd.status().expect("run obsctl").success());
    let full = started.elapsed();
    let whole = std::fs::read_to_string(&report).expect("report");
    assert!(whole.lines().count() > 60_000, "one row per session");

    let (mut killed, mut untouched, mut replaced) = (0, 0, 0);
    for step in 0..24 {
        std::fs::write(&report, "OLD REPORT\n").expect("old report");
        let mut cmd = Command::new(bin());
        args(&mut cmd);
        let mut child = cmd.spawn().expect("spawn obsctl");
        // Spread over the whole run, the write at its end included.
        std::thread::sleep(full.mul_f64(0.05 + step as f64 / 20.0));
        let _ = child.kill(); // SIGKILL: no destructor, no cleanup runs
        let status = child.wait().expect("wait");
        killed += usize::from(!status.success());
        let now = std::fs::read_to_string(&report).expect("the report is always there");
        if now == "OLD REPORT\n" {
            untouched += 1;
        } else {
            assert_eq!(now, whole, "step {step}: a report is the old one or a whole new one");
            replaced += 1;
        }
    }
    assert!(killed > 0, "some run was killed before it finished");
    assert_eq!(untouched + replaced, 24);
}

#[test]
fn a_file_appended_to_while_read_is_read_up_to_a_line_boundary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = dir.path().join("events.jsonl");
    std::fs::write(&live, calls(20_000, 1)).expect("corpus");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (live, stop) = (live.clone(), stop.clone());
        std::thread::spawn(move || {
            // The gateway's way: one line at a time, each in two writes, so that a reader
            // sees half lines.
            let mut file = std::fs::OpenOptions::new().append(true).open(&live).expect("open");
            let mut i = 20_001;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 400_000 {
                let line = calls(1, i);
                let (a, b) = line.split_at(line.len() / 2);
                file.write_all(a.as_bytes()).expect("write");
                file.flush().expect("flush");
                file.write_all(b.as_bytes()).expect("write");
                i += 1;
            }
        })
    };
    for _ in 0..5 {
        let out = obsctl()
            .args(["digest", "--source", "jsonl", "--tz", "UTC", "--week", "2026-W47", "--format", "json", "--logs"])
            .arg(&live)
            .output()
            .expect("run obsctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let calls = d["totals"]["model_calls"].as_u64().expect("model calls");
        let cost = d["totals"]["cost_usd"].as_f64().expect("cost");
        // Lines 1..=n and nothing else: their costs add up to n(n+1)/2.
        assert!(calls >= 20_000, "{calls}");
        let expect = (calls * (calls + 1) / 2) as f64;
        assert!((cost - expect).abs() < 1e-6 * expect, "a prefix of {calls} lines costs {expect}, not {cost}");
        // At most the half line being written is left out, and said so.
        let skipped = d["skipped_lines"].as_u64().unwrap_or(0);
        assert!(skipped <= 1, "{skipped} lines skipped: {}", d["warnings"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
}

/// Runs a digest over `logs` with a deadline: it must end, with exit 2 and a message naming
/// `names`.
fn refused(logs: &Path, names: &str) -> String {
    let mut child = Command::new(bin())
        .args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--logs"])
        .arg(logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn obsctl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("obsctl hangs on {}", logs.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{}: {stderr}", logs.display());
    assert!(stderr.starts_with("error: ") && stderr.contains(names), "{}: names {names}: {stderr}", logs.display());
    stderr
}

#[test]
fn bad_entries_in_a_logs_directory_are_named_not_hung_on() {
    use std::os::unix::fs::symlink;
    let root = tempfile::tempdir().expect("temp dir");
    let case = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).expect("case dir");
        std::fs::write(dir.join("events.2026-11-17.jsonl"), calls(3, 1)).expect("a good file beside it");
        dir
    };

    let dir = case("loop");
    symlink("events.jsonl", dir.join("events.jsonl")).expect("symlink");
    symlink(".", dir.join("self")).expect("symlink"); // not telemetry: ignored, not followed
    assert!(refused(&dir, "events.jsonl").contains("symbolic links"));

    let dir = case("pair");
    symlink("events.2026-11-19.jsonl", dir.join("events.2026-11-18.jsonl")).expect("symlink");
    symlink("events.2026-11-18.jsonl", dir.join("events.2026-11-19.jsonl")).expect("symlink");
    refused(&dir, "events.2026-11-18.jsonl");

    let dir = case("dangling");
    symlink("nowhere.jsonl", dir.join("events.jsonl")).expect("symlink");
    assert!(refused(&dir, "events.jsonl").contains("No such file"));

    let dir = case("fifo");
    let status = Command::new("mkfifo").arg(dir.join("events.jsonl")).status().expect("mkfifo");
    assert!(status.success());
    assert!(refused(&dir, "events.jsonl").contains("not a regular file"));

    let dir = case("directory");
    std::fs::create_dir(dir.join("events.jsonl")).expect("dir");
    assert!(refused(&dir, "events.jsonl").contains("not a regular file"));

    // Unreadable even for root: the kernel refuses to read a process's memory at 0.
    let dir = case("unreadable");
    symlink("/proc/self/mem", dir.join("events.jsonl")).expect("symlink");
    assert!(refused(&dir, "events.jsonl").contains("error"));

    // The `--logs` path itself: a loop, a pipe.
    let path = root.path().join("itself");
    symlink(&path, &path).expect("symlink");
    refused(&path, "--logs");
    let fifo = root.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    assert!(refused(&fifo, "--logs").contains("neither a file nor a directory"));
}
