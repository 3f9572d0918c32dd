//! Every format of the fixture digest, snapshotted: a change in what users see is a
//! visible diff in review (`cargo insta review`).

mod common;

use common::{fixture_cmd, fixture_digest, stdout_of};

#[test]
fn markdown() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "markdown"])));
}

#[test]
fn table() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "table"])));
}

#[test]
fn json() {
    insta::assert_snapshot!(stdout_of(&mut fixture_digest(&["--format", "json"])));
}

#[test]
fn csv_sections() {
    for section in ["totals", "by_model", "by_agent", "by_variant", "by_session", "daily"] {
        let csv = stdout_of(&mut fixture_digest(&["--format", "csv", "--csv-section", section]));
        insta::assert_snapshot!(format!("csv_{section}"), csv);
    }
}

#[test]
fn markdown_in_berlin_without_comparison() {
    let args = ["--week", "2026-W47", "--tz", "Europe/Berlin", "--format", "markdown", "--no-compare", "--top", "3"];
    insta::assert_snapshot!(stdout_of(&mut fixture_cmd(&args)));
}

/// A week of sub-cent costs, with days that cost nothing: every cost tells itself apart
/// (`$0.0042`, `$0.00042`, never `$0.00`), the chart starts at zero, the sparkline leaves
/// the free days blank.
fn small_costs(format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let calls = [
        ("2026-11-16T09:00:00Z", "s1", "main", 0.0042),
        ("2026-11-16T10:00:00Z", "s2", "main", 0.00042),
        ("2026-11-17T09:00:00Z", "s3", "ops", 0.000042),
        ("2026-11-19T09:00:00Z", "s1", "main", 0.0099996),
        ("2026-11-20T09:00:00Z", "s4", "ops", 0.0047),
        ("2026-11-22T09:00:00Z", "s2", "main", 0.015),
    ];
    let lines: String = calls
        .iter()
        .map(|(at, session, agent, cost)| {
            format!(
                r#"{{"type":"model_usage","timestamp":"{at}","sessionId":"{session}","agentId":"{agent}","model":"gpt-5-nano","provider":"openai","inputTokens":100,"outputTokens":10,"costUsd":{cost}}}"#
            ) + "\n"
        })
        .collect();
    std::fs::write(dir.path().join("events.jsonl"), lines).unwrap();
    let mut cmd = common::obsctl();
    cmd.args(["digest", "--source", "jsonl", "--week", "2026-W47", "--tz", "UTC", "--no-compare", "--format", format]);
    stdout_of(cmd.arg("--logs").arg(dir.path()))
}

#[test]
fn markdown_small_costs() {
    insta::assert_snapshot!(small_costs("markdown"));
}

#[test]
fn table_small_costs() {
    insta::assert_snapshot!(small_costs("table"));
}
