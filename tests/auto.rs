//! `--source auto` through the binary, with each server up or down: Prometheus answers the
//! aggregates, Loki the detail, the files whatever a server does not, and the report says
//! which source answered each section and why. The same week of events is served by a real
//! Prometheus (as counters), a synthetic Loki (as log lines, see tests/common/replay.rs) and
//! the JSONL files, so every combination must give the same figures.

mod common;
#[path = "common/prometheus.rs"]
mod prom;
#[path = "common/replay.rs"]
mod replay;

use std::path::Path;

use common::obsctl;
use serde_json::Value;

const DOWN: &str = "http://127.0.0.1:1";

fn auto(logs: &Path, prometheus: &str, loki: &str) -> Value {
    let out = obsctl()
        .args(["digest", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--top", "20"])
        .args(["--prometheus-url", prometheus, "--loki-url", loki, "--logs"])
        .arg(logs)
        .output()
        .expect("obsctl runs");
    assert!(out.status.success(), "auto failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn source_of(digest: &Value, section: &str) -> (String, Option<String>) {
    let s = digest["sources"].as_array().unwrap().iter().find(|s| s["section"] == section).unwrap();
    (s["source"].as_str().unwrap().to_string(), s["fallback_reason"].as_str().map(String::from))
}

fn assert_sources(digest: &Value, aggregates: &str, detail: &str, because: Option<&str>, detail_because: Option<&str>) {
    for section in ["totals", "previous", "by_model", "by_agent", "daily"] {
        let (source, why) = source_of(digest, section);
        assert_eq!(source, aggregates, "{section}");
        match because {
            Some(b) => assert!(why.as_deref().unwrap_or_default().contains(b), "{section}: {why:?}"),
            None => assert_eq!(why, None, "{section}"),
        }
    }
    for section in ["by_variant", "by_session"] {
        let (source, why) = source_of(digest, section);
        assert_eq!(source, detail, "{section}");
        match detail_because {
            Some(b) => assert!(why.as_deref().unwrap_or_default().contains(b), "{section}: {why:?}"),
            None => assert_eq!(why, None, "{section}"),
        }
    }
}

fn cost(v: &Value) -> f64 {
    v["totals"]["cost_usd"].as_f64().unwrap()
}

#[test]
fn every_combination_of_servers_gives_the_same_report() {
    if prom::binaries_or_skip("every_combination_of_servers_gives_the_same_report").is_none() {
        return;
    }
    let week = prom::week(7);
    let prometheus = prom::TestPrometheus::start(&week.openmetrics);
    let lines: Vec<String> = week.jsonl.lines().map(String::from).collect();
    let fake =
        std::sync::Arc::new(replay::SyntheticLoki::new(r#"{job="openclaw-telemetry"}"#, replay::entries_of(&lines)));
    let loki = replay::Replay::handler(move |req| Some(fake.answer(req)));
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("events.jsonl"), &week.jsonl).unwrap();

    let files = common::json_of(
        obsctl()
            .args([
                "digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--format", "json", "--top", "20",
            ])
            .arg("--logs")
            .arg(logs.path()),
    );

    let both_up = auto(logs.path(), &prometheus.url, loki.url());
    assert_sources(&both_up, "prometheus", "loki", None, None);

    let loki_down = auto(logs.path(), &prometheus.url, DOWN);
    assert_sources(&loki_down, "prometheus", "jsonl", None, Some("Loki at http://127.0.0.1:1/"));

    let prometheus_down = auto(logs.path(), DOWN, loki.url());
    assert_sources(&prometheus_down, "jsonl", "loki", Some("Prometheus at http://127.0.0.1:1/: unreachable"), None);

    for (label, digest) in [("both up", &both_up), ("Loki down", &loki_down), ("Prometheus down", &prometheus_down)] {
        assert!((cost(digest) - cost(&files)).abs() <= 1e-4 * cost(&files), "{label}: total cost");
        assert_eq!(digest["by_session"], files["by_session"], "{label}: top sessions");
        assert_eq!(digest["totals"]["sessions"], files["totals"]["sessions"], "{label}: sessions");
        let variants = |d: &Value| {
            let mut v: Vec<(String, u64)> = d["by_variant"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (format!("{}/{}", r["experiment"], r["variant"]), r["sessions"].as_u64().unwrap()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(variants(digest), variants(&files), "{label}: variants");
    }
}
