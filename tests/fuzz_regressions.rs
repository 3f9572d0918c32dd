//! Every seed and every reproducer of the fuzz targets (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`), through the fuzzers' own checks (`fuzz/checks.rs`), on
//! stable Rust, as part of the normal test suite.
//!
//! A check panics on a broken invariant. Files named `ok-*` must also be accepted and
//! `err-*` refused, so a change that starts refusing real telemetry, answers, baselines or
//! config files (or accepting broken ones) fails here even when nothing panics.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Replays `target`'s seeds and regressions through `check`; at least `min_seeds` seeds,
/// and at least `min_ok` of them named `ok-`.
fn replay(target: &str, check: fn(&[u8]) -> bool, min_seeds: usize, min_ok: usize) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&fuzz.join("seeds").join(target));
    assert!(seeds.len() >= min_seeds, "{target}: {} seeds, expected at least {min_seeds}", seeds.len());
    let regressions = files(&fuzz.join("regressions").join(target));
    let mut failures = Vec::new();
    let mut ok = 0;
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Err(_) => failures.push(format!("{}: panicked (message above)", path.display())),
            Ok(accepted) if name.starts_with("ok-") && !accepted => {
                failures.push(format!("{}: refused, expected accepted", path.display()))
            }
            Ok(accepted) if name.starts_with("err-") && accepted => {
                failures.push(format!("{}: accepted, expected refused", path.display()))
            }
            Ok(_) => ok += usize::from(name.starts_with("ok-")),
        }
    }
    assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
    assert!(ok >= min_ok, "{target}: {ok} ok- seeds accepted, expected at least {min_ok}");
}

#[test]
fn line() {
    replay("line", checks::line, 250, 200);
}

#[test]
fn timestamp() {
    replay("timestamp", checks::timestamp, 20, 10);
}

#[test]
fn duration() {
    replay("duration", checks::duration, 15, 5);
}

#[test]
fn window() {
    replay("window", checks::window, 15, 10);
}

#[test]
fn prom_answer() {
    replay("prom_answer", checks::prom_answer, 10, 8);
}

#[test]
fn loki_answer() {
    replay("loki_answer", checks::loki_answer, 100, 50);
}

#[test]
fn baseline() {
    replay("baseline", checks::baseline, 10, 5);
}

#[test]
fn config() {
    replay("config", checks::config, 8, 4);
}

/// The old target's seeds (`fuzz/seeds/*.jsonl`, read by `flat_line`) go through the line
/// check too.
#[test]
fn flat_line_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let seeds = files(&dir);
    assert!(seeds.len() >= 30, "{} flat_line seeds", seeds.len());
    for path in seeds {
        let data = std::fs::read(&path).unwrap();
        let line = data.strip_suffix(b"\n").unwrap_or(&data);
        checks::line(line);
    }
}
