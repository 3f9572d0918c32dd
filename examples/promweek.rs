//! Writes the week of telemetry the Prometheus integration tests use, for benchmarks:
//! `cargo run --example promweek -- DIR` → `DIR/week.om` (OpenMetrics, for
//! `promtool tsdb create-blocks-from openmetrics`) and `DIR/events.jsonl`.

#[path = "../tests/common/prometheus.rs"]
#[allow(dead_code)]
mod prom;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let week = prom::week(7);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(format!("{dir}/week.om"), &week.openmetrics)?;
    std::fs::write(format!("{dir}/events.jsonl"), &week.jsonl)?;
    Ok(())
}
