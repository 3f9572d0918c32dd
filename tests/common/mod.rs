//! Shared by the integration tests: the binary, and the fixture telemetry directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn obsctl() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("obsctl").expect("the obsctl binary is built by cargo test");
    // Tests must not depend on the machine's zone, home or environment.
    cmd.env_remove("TZ")
        .env_remove("OBSCTL_TZ")
        .env_remove("OBSCTL_LOGS")
        .env_remove("OBSCTL_FORMAT")
        .env_remove("OBSCTL_SOURCE");
    cmd.env("NO_COLOR", "1");
    cmd
}

pub fn fixture_logs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/home/.openclaw/telemetry")
}

/// `obsctl digest` on the fixture telemetry, with the given window and other arguments.
pub fn fixture_cmd(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = obsctl();
    // The files only: what a report says must not depend on a server running here.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["digest", "--source", "jsonl", "--logs", "fixtures/home/.openclaw/telemetry"])
        .args(args);
    cmd
}

/// `obsctl digest` on the fixture week in UTC, with extra arguments.
pub fn fixture_digest(extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = fixture_cmd(&["--week", "2026-W47", "--tz", "UTC"]);
    cmd.args(extra);
    cmd
}

pub fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("obsctl runs");
    assert!(out.status.success(), "obsctl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn json_of(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(cmd)).expect("valid JSON on stdout")
}
