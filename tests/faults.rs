//! Server faults (issue 17): every way a Prometheus or a Loki, or what stands in front of
//! them, can fail, served from 127.0.0.1 by tests/common/faults.rs, against `digest`,
//! `gate` and `doctor`. Each must end in exit 3 with one clear message that names the
//! server and the bound that was reached (attempts, time, each attempt's limit), within
//! that bound, and never with a total on standard output.

mod common;
#[path = "common/faults.rs"]
mod faults;
#[path = "common/replay.rs"]
mod replay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::obsctl;
use faults::{refused_url, Fault, FaultServer};
use replay::{entries_of, Replay, SyntheticLoki};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Server {
    Prometheus,
    Loki,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Prometheus => "prometheus",
            Server::Loki => "loki",
        }
    }
}

const COMMANDS: [&str; 3] = ["digest", "gate", "doctor"];

/// What a command printed, with its exit code and wall time.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(command: &str, server: Server, url: &str, extra: &[&str]) -> Run {
    run_with_timeout(command, server, url, "1", extra)
}

fn run_with_timeout(command: &str, server: Server, url: &str, timeout: &str, extra: &[&str]) -> Run {
    let mut cmd = obsctl();
    cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_STEP_SUMMARY").arg(command);
    cmd.args(["--source", server.name(), &format!("--{}-url", server.name()), url]);
    cmd.args(["--week", "2026-W47", "--tz", "UTC", "--timeout", timeout, "--connect-timeout", "1"]);
    if command == "gate" {
        cmd.args(["--max-increase", "20%"]);
    }
    cmd.args(extra);
    let started = Instant::now();
    let out = cmd.output().expect("run obsctl");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The message that explains the failure: the one `error:` line of `digest` and `gate`,
/// the reachability finding of `doctor` (which reports on standard output).
fn message(command: &str, r: &Run) -> String {
    if command == "doctor" {
        assert!(r.stdout.contains("nothing could be checked: no source answered"), "doctor:\n{}", r.stdout);
        return r.stdout.lines().filter(|l| l.starts_with("ERROR ")).collect::<Vec<_>>().join("\n");
    }
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{command}: one error line, not:\n{}", r.stderr);
    assert!(r.stdout.trim().is_empty(), "{command}: nothing on standard output after a failure:\n{}", r.stdout);
    errors[0].to_string()
}

/// Runs every command against `fault` on each server, and checks the common promises and
/// that the message holds every one of `says`.
fn every_command_fails(fault: Fault, servers: &[Server], says: &[&str], within: Duration) {
    every_command_fails_within(fault, servers, says, within, "1")
}

/// [`every_command_fails`] with each attempt allowed `timeout` seconds.
fn every_command_fails_within(fault: Fault, servers: &[Server], says: &[&str], within: Duration, timeout: &str) {
    for &server in servers {
        let faulty = FaultServer::start(fault.clone());
        for command in COMMANDS {
            let r = run_with_timeout(command, server, &faulty.url(), timeout, &[]);
            let what = format!("{command} --source {} against {fault:?}", server.name());
            assert_eq!(r.code, Some(3), "{what}: exit 3, not {:?}\n{}\n{}", r.code, r.stdout, r.stderr);
            let m = message(command, &r);
            assert!(m.contains(&faulty.addr.to_string()), "{what}: names the server: {m}");
            for s in says {
                assert!(m.contains(s), "{what}: says {s:?}: {m}");
            }
            assert!(m.contains("attempt"), "{what}: says the bound it reached: {m}");
            assert!(r.took < within, "{what}: took {:?}, more than {within:?}: {m}", r.took);
            // For RELIABILITY.md: `cargo test --test faults -- --nocapture --test-threads=1`.
            println!("FIGURE {what}: exit 3 in {:.2} s (bound {:?})", r.took.as_secs_f64(), within);
        }
    }
}

const BOTH: [Server; 2] = [Server::Prometheus, Server::Loki];

/// Three attempts of at most 1 s, 0.2 + 0.4 s apart, and the start of the process.
const RETRIED: Duration = Duration::from_secs(8);

#[test]
fn connection_refused() {
    let url = refused_url();
    for server in BOTH {
        for command in COMMANDS {
            let r = run(command, server, &url, &[]);
            assert_eq!(r.code, Some(3), "{command} {server:?}: {}", r.stderr);
            let m = message(command, &r);
            assert!(m.contains("unreachable") && m.contains("refused"), "{command} {server:?}: {m}");
            assert!(r.took < RETRIED, "{command} {server:?}: {:?}", r.took);
            println!(
                "FIGURE {command} --source {} against refused: exit 3 in {:.2} s",
                server.name(),
                r.took.as_secs_f64()
            );
        }
    }
}

#[test]
fn accept_then_hang() {
    every_command_fails(Fault::Hang, &BOTH, &["timed out", "each allowed 1 s"], RETRIED);
}

#[test]
fn slow_drip() {
    every_command_fails(Fault::Drip, &BOTH, &["timed out"], RETRIED);
}

#[test]
fn server_errors_with_and_without_a_body() {
    for status in [500, 502, 503] {
        for body in ["", "upstream connect error or disconnect/reset before headers\n"] {
            let fault = Fault::status(status, "text/plain", body);
            every_command_fails(fault, &BOTH, &[&status.to_string()], RETRIED);
        }
    }
}

#[test]
fn rate_limited_past_the_bound_of_retry_after() {
    // Asked to wait longer than obsctl waits: no retry, and the message says why.
    let fault = Fault::rate_limited("120");
    every_command_fails(fault, &[Server::Prometheus, Server::Loki], &["429"], Duration::from_secs(4));
    let faulty = FaultServer::start(Fault::rate_limited("120"));
    let r = run("digest", Server::Prometheus, &faulty.url(), &[]);
    assert!(r.stderr.contains("asked to retry after 120 s, more than the 10 s obsctl waits"), "{}", r.stderr);
}

#[test]
fn rate_limited_retry_after_is_honoured() {
    // Always 429 with Retry-After: 1: two waits of a second, then exit 3 naming it.
    let faulty = FaultServer::start(Fault::rate_limited("1"));
    let r = run("digest", Server::Prometheus, &faulty.url(), &[]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 429") && r.stderr.contains("3 attempts"), "{}", r.stderr);
    assert!(r.took >= Duration::from_secs(2), "waited out Retry-After twice: {:?}", r.took);

    // 429 for the first request only, then a working Loki: the digest is the same as
    // without the fault, one second later.
    let lines = loki_corpus();
    let fake = Arc::new(SyntheticLoki::new(obsctl::source::loki::DEFAULT_SELECTOR, entries_of(&lines)));
    let loki = Replay::handler(move |req| Some(fake.answer(req)));
    let upstream = loki.url().trim_start_matches("http://").trim_end_matches('/').parse().expect("address");
    let faulty = FaultServer::start(Fault::Then { first: Box::new(Fault::rate_limited("1")), n: 1, upstream });
    let direct = run("digest", Server::Loki, loki.url(), &["--format", "json"]);
    assert_eq!(direct.code, Some(0), "{}", direct.stderr);
    let r = run("digest", Server::Loki, &faulty.url(), &["--format", "json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.took >= Duration::from_secs(1), "waited for Retry-After: {:?}", r.took);
    let totals = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("JSON")["totals"].clone();
    assert_eq!(totals(&r.stdout), totals(&direct.stdout));
    assert!(faulty.requests().len() > 1);
}

#[test]
fn plain_text_errors() {
    let fault = Fault::status(400, "text/plain", "bad_data: parse error at char 7\n");
    every_command_fails(fault, &BOTH, &["400", "bad_data: parse error at char 7"], Duration::from_secs(4));
}

#[test]
fn html_from_a_proxy() {
    let fault = Fault::status(200, "text/html", "<html><body>Sign in</body></html>\n");
    // Prometheus and Loki answers are JSON; a 200 with a sign-in page is no answer.
    every_command_fails(fault, &BOTH, &[], Duration::from_secs(4));
}

#[test]
fn invalid_json() {
    every_command_fails(Fault::json(200, "{\"status\":\"success\",\"data\":{"), &BOTH, &[], Duration::from_secs(4));
}

#[test]
fn json_of_the_wrong_shape() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":"everything"}}"#;
    every_command_fails(Fault::json(200, body), &BOTH, &[], Duration::from_secs(4));
}

#[test]
fn truncated_body() {
    every_command_fails(Fault::Truncated, &BOTH, &["cut short"], RETRIED);
}

#[test]
fn a_body_over_the_cap_is_refused_unread() {
    // Announced: refused before a byte of the body is read.
    let fault = Fault::Huge { mib: 300, announced: true };
    every_command_fails(fault, &BOTH, &["300 MiB", "more than the 64 MiB obsctl reads"], Duration::from_secs(4));
    // Not announced: read up to the cap, then refused (every request of a digest at once:
    // each attempt is allowed 20 s to read its 64 MiB on a busy test machine).
    let fault = Fault::Huge { mib: 300, announced: false };
    every_command_fails_within(fault, &BOTH, &["more than the 64 MiB obsctl reads"], Duration::from_secs(60), "20");
}

#[test]
fn query_warnings_are_a_partial_answer() {
    // Every answer well formed for its request, so that whichever comes first, the
    // warnings are what fails it.
    let warned = |data: &str| {
        Fault::json(200, &format!(r#"{{"status":"success","data":{data},"warnings":["store gateway unavailable"]}}"#))
    };
    let series = r#"[{"__name__":"openclaw_session_cost_usd_sum"},{"__name__":"openclaw_session_tokens_total"}]"#;
    let faulty = FaultServer::start(Fault::ByPath {
        paths: vec![
            ("/api/v1/series", warned(series)),
            ("/loki/api/v1/series", warned(r#"[{"job":"openclaw-telemetry"}]"#)),
            ("/api/v1/label", warned(r#"["openclaw_session_cost_usd_sum"]"#)),
        ],
        other: Box::new(warned(r#"{"resultType":"vector","result":[]}"#)),
    });
    for command in ["digest", "gate"] {
        for server in BOTH {
            let r = run(command, server, &faulty.url(), &[]);
            assert_eq!(r.code, Some(3), "{command} {server:?}: {}", r.stderr);
            let m = message(command, &r);
            assert!(m.contains("warnings") && m.contains("store gateway unavailable"), "{command} {server:?}: {m}");
        }
    }
    // The doctor refuses such answers as the digest does: no source answered in full.
    for server in BOTH {
        let r = run("doctor", server, &faulty.url(), &["--format", "json"]);
        assert_eq!(r.code, Some(3), "doctor {server:?}: {}", r.stdout);
        assert!(r.stdout.contains("store gateway unavailable"), "doctor {server:?}: {}", r.stdout);
    }
}

/// Well-formed answers whose figures cannot be right (a negative count, a sample without the
/// labels asked for) are data unavailable (exit 3) naming the server and the query, as any
/// other bad answer, not a usage error.
#[test]
fn loki_answers_that_are_no_counts_are_unavailable() {
    for value in ["-5", "1"] {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1795391999.999,"{value}"]}}]}}}}"#
        );
        let faulty = FaultServer::start(Fault::ByPath {
            paths: vec![("/loki/api/v1/labels", Fault::json(200, r#"{"status":"success","data":["job"]}"#))],
            other: Box::new(Fault::json(200, &body)),
        });
        for command in ["digest", "gate"] {
            let r = run(command, Server::Loki, &faulty.url(), &[]);
            assert_eq!(r.code, Some(3), "{command} {value}: {}", r.stderr);
            let m = message(command, &r);
            assert!(m.contains(&faulty.addr.to_string()) && m.contains("query `"), "{command} {value}: {m}");
        }
    }
}

#[test]
fn loki_limit_errors() {
    for body in [
        "max entries limit per query exceeded, limit > max_entries_limit_per_query (5000 > 500)\n",
        "the query time range exceeds the limit (query length: 192h0m0s, limit: 168h0m0s)\n",
        "maximum of series (500) reached for a single query\n",
    ] {
        let faulty = FaultServer::start(Fault::status(400, "text/plain", body));
        for command in ["digest", "gate"] {
            let r = run(command, Server::Loki, &faulty.url(), &[]);
            assert_eq!(r.code, Some(3), "{command}: {}", r.stderr);
            let m = message(command, &r);
            assert!(m.contains("HTTP 400") && m.contains(body.trim()), "{command}: {m}");
            assert!(r.took < Duration::from_secs(20), "{command}: {:?}", r.took);
        }
    }
}

#[test]
fn a_redirect_to_another_host_is_not_followed_and_carries_no_credential() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t-bearer-token\n").expect("write token");
    let elsewhere = FaultServer::start(Fault::json(200, "{}"));
    let fault = Fault::Redirect { location: format!("{}/api/v1/query?query=1", elsewhere.url()) };
    for server in BOTH {
        let faulty = FaultServer::start(fault.clone());
        for command in COMMANDS {
            let token_flag = token.to_str().expect("UTF-8 path");
            let extra =
                ["--bearer-token-file", token_flag, "--header", "X-Api-Key:k3y-in-a-header", "--org-id", "tenant-1"];
            let r = run(command, server, &faulty.url(), &extra);
            assert_eq!(r.code, Some(3), "{command} {server:?}: {}\n{}", r.stdout, r.stderr);
            let m = message(command, &r);
            assert!(m.contains("redirected to another server"), "{command} {server:?}: {m}");
            for secret in ["s3cr3t-bearer-token", "k3y-in-a-header"] {
                assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret), "{command} {server:?}: {secret}");
            }
            // The first server got the credentials it was given for; the other got nothing.
            assert!(faulty.requests().iter().any(|h| h.contains("s3cr3t-bearer-token")), "{command} {server:?}");
        }
    }
    assert!(elsewhere.requests().is_empty(), "another host was asked: {:?}", elsewhere.requests());
}

/// A week of a few sessions for the synthetic Loki.
fn loki_corpus() -> Vec<String> {
    (0..4)
        .flat_map(|i| {
            [
                format!(r#"{{"type":"session_start","timestamp":"2026-11-1{}T10:00:00Z","sessionId":"s{i}","agentId":"a{i}"}}"#, 6 + i),
                format!(
                    r#"{{"type":"model_usage","timestamp":"2026-11-1{}T10:00:01Z","sessionId":"s{i}","agentId":"a{i}","model":"m","provider":"p","inputTokens":10,"outputTokens":5,"costUsd":0.25}}"#,
                    6 + i
                ),
            ]
        })
        .collect()
}
