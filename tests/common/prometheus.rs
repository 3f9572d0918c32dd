//! A real Prometheus for tests: a week of telemetry written both as JSONL events and as the
//! counters a gateway would have exported, backfilled with `promtool` and served by
//! Debian's `prometheus` on a free 127.0.0.1 port.
//!
//! The counters are sampled every 60 s at 17 s past the minute, so a window that starts
//! on the hour is evaluated off the scrape grid. The gateway restarts once mid-week (every
//! counter back to 0, every series gone until its next event), and each series is born
//! with its first event, so its first sample is already non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 2026-11-16T00:00:00Z, Monday of ISO week 2026-W47.
pub const WEEK_START: i64 = 1_794_787_200;
/// The gateway restart: 2026-11-19T12:00:30Z, between sessions.
pub const RESTART: i64 = WEEK_START + 3 * 86_400 + 12 * 3600 + 30;
const SCRAPE_OFFSET: i64 = 17;

/// Returns `None` (after saying so loudly) when Prometheus is not installed and this is
/// not CI; under CI a missing Prometheus fails the test.
pub fn binaries_or_skip(test: &str) -> Option<()> {
    let found = ["prometheus", "promtool"].iter().all(|b| which(b).is_some());
    if found {
        return Some(());
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: prometheus/promtool not found, and CI is set: install Debian's `prometheus` package");
    }
    eprintln!(
        "\n*** SKIPPED {test}: prometheus/promtool not installed (apt-get install prometheus). CI runs it. ***\n"
    );
    None
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(bin)).find(|p| p.is_file())
}

/// A running Prometheus, killed on drop.
pub struct TestPrometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestPrometheus {
    pub fn start(openmetrics: &str) -> TestPrometheus {
        TestPrometheus::start_with(openmetrics, "global:\n  scrape_interval: 60s\nscrape_configs: []\n")
    }

    /// Like [`TestPrometheus::start`], with this `prometheus.yml` (scrape jobs of its own).
    pub fn start_with(openmetrics: &str, config_yaml: &str) -> TestPrometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let om = dir.path().join("data.om");
        std::fs::write(&om, openmetrics).expect("write openmetrics");
        let data = dir.path().join("tsdb");
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=360h"])
            .arg(&om)
            .arg(&data)
            .output()
            .expect("run promtool");
        assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml).expect("write config");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prom = TestPrometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        prom.wait_ready();
        prom
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = self.url.trim_start_matches("http://").to_string();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited early: {status}");
            }
            if http_get_ok(&addr, "/-/ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus at {} was not ready within 60 s", self.url);
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get_ok(addr: &str, path: &str) -> bool {
    http_get(addr, path).is_some_and(|answer| answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
}

/// The whole answer (status line, headers, body) to `GET path`, or `None` without one.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    Some(buf)
}

/// One counter increment: series labels, time (s), amount.
struct Increment {
    series: String,
    t: f64,
    amount: f64,
}

/// A week of sessions as JSONL lines, and the counters' samples as OpenMetrics.
pub struct Week {
    pub jsonl: String,
    pub openmetrics: String,
}

pub fn week(seed: u64) -> Week {
    week_with_outages(seed, &[])
}

/// The same week, with no sample of any series in each outage `[from, to)`: Prometheus down
/// while the gateway keeps counting (no restart), as after a failed upgrade.
pub fn week_with_outages(seed: u64, outages: &[(i64, i64)]) -> Week {
    days_with_outages(seed, 7, outages, Some(RESTART))
}

/// `days` days from the week's Monday, with the outages, and a restart or none.
pub fn days_with_outages(seed: u64, days: i64, outages: &[(i64, i64)], restart: Option<i64>) -> Week {
    let mut rng = Rng(seed);
    let models =
        [("claude-sonnet-4-5", "anthropic", 3e-6), ("gpt-5", "openai", 2e-6), ("gemini-2.5-pro", "google", 1.5e-6)];
    let agents = ["main", "coder"];
    let mut jsonl = String::new();
    let mut incs: Vec<Increment> = Vec::new();
    let mut session = 0;
    for day in 0..days {
        for hour in 1..22 {
            for _ in 0..3 {
                session += 1;
                let agent = agents[rng.below(2) as usize];
                // gemini appears only from Thursday: series born in the middle of the window.
                let (model, provider, price) = models[rng.below(if day >= 3 { 3 } else { 2 }) as usize];
                let id = format!("s{seed}-{session:05}");
                let mut t = (WEEK_START + day * 86_400 + hour * 3600 + 300 + rng.below(1200) as i64) as f64
                    + rng.below(1000) as f64 / 1000.0;
                let start = t;
                let common = format!(r#""agentId":"{agent}","sessionId":"{id}""#);
                writeln!(jsonl, r#"{{"type":"session_start","timestamp":"{}",{common}}}"#, iso(t)).unwrap();
                let labels = format!(r#"agent="{agent}",model="{model}",provider="{provider}""#);
                let mut cost_micros = 0u64;
                for _ in 0..1 + rng.below(4) {
                    t += 5.0 + rng.below(120) as f64;
                    let (input, output) = (500 + rng.below(20_000), 50 + rng.below(3_000));
                    let cost = ((input as f64 * price + output as f64 * price * 5.0) * 1e6).round() as u64;
                    cost_micros += cost;
                    writeln!(
                        jsonl,
                        r#"{{"type":"model_usage","model":"{model}","provider":"{provider}","inputTokens":{input},"outputTokens":{output},"costUsd":{}.{:06},"timestamp":"{}",{common}}}"#,
                        cost / 1_000_000,
                        cost % 1_000_000,
                        iso(t)
                    )
                    .unwrap();
                    let tokens = "openclaw_session_tokens_total";
                    incs.push(Increment {
                        series: format!(r#"{tokens}{{{labels},type="input"}}"#),
                        t,
                        amount: input as f64,
                    });
                    incs.push(Increment {
                        series: format!(r#"{tokens}{{{labels},type="output"}}"#),
                        t,
                        amount: output as f64,
                    });
                }
                for _ in 0..rng.below(3) {
                    t += 2.0 + rng.below(60) as f64;
                    let ok = rng.below(20) != 0;
                    let tool = ["bash", "read"][rng.below(2) as usize];
                    writeln!(
                        jsonl,
                        r#"{{"type":"tool_call","tool":"{tool}","success":{ok},"timestamp":"{}",{common}}}"#,
                        iso(t)
                    )
                    .unwrap();
                    let status = if ok { "success" } else { "error" };
                    incs.push(Increment {
                        series: format!(
                            r#"openclaw_tool_calls_total{{agent="{agent}",status="{status}",tool="{tool}"}}"#
                        ),
                        t,
                        amount: 1.0,
                    });
                }
                t += 1.0;
                let ok = rng.below(30) != 0;
                writeln!(jsonl, r#"{{"type":"agent_end","success":{ok},"timestamp":"{}",{common}}}"#, iso(t)).unwrap();
                if !ok {
                    incs.push(Increment {
                        series: format!(
                            r#"openclaw_model_errors_total{{agent="{agent}",error_type="rate_limit",model="{model}"}}"#
                        ),
                        t,
                        amount: 1.0,
                    });
                }
                t += 1.0;
                writeln!(jsonl, r#"{{"type":"session_end","timestamp":"{}",{common}}}"#, iso(t)).unwrap();
                // The cost histogram observes the session's cost when it ends.
                let cost = cost_micros as f64 / 1e6;
                incs.push(Increment { series: format!("openclaw_session_cost_usd_sum{{{labels}}}"), t, amount: cost });
                incs.push(Increment { series: format!("openclaw_session_cost_usd_count{{{labels}}}"), t, amount: 1.0 });
                let duration = t - start;
                let hist = format!(r#"agent="{agent}",kind="main",model="{model}""#);
                for le in ["60", "300", "+Inf"] {
                    let fits = le == "+Inf" || duration <= le.parse::<f64>().unwrap_or(f64::MAX);
                    let series = format!(r#"openclaw_session_duration_seconds_bucket{{{hist},le="{le}"}}"#);
                    incs.push(Increment { series, t, amount: if fits { 1.0 } else { 0.0 } });
                }
            }
        }
    }
    Week { jsonl, openmetrics: openmetrics(incs, days, outages, restart) }
}

/// Samples every counter every 60 s (at :17) from 2 hours before the days to 2 hours after.
fn openmetrics(mut incs: Vec<Increment>, days: i64, outages: &[(i64, i64)], restart: Option<i64>) -> String {
    incs.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut by_series: BTreeMap<&str, Vec<&Increment>> = BTreeMap::new();
    for inc in &incs {
        by_series.entry(&inc.series).or_default().push(inc);
    }
    let first = WEEK_START - 7200 + SCRAPE_OFFSET;
    let last = WEEK_START + days * 86_400 + 7200;
    let mut out = String::new();
    for (series, incs) in by_series {
        let (mut value, mut next, mut born) = (0.0, 0, false);
        let mut t = first;
        while t <= last {
            // A restart between the previous sample and this one: the process starts over.
            if let Some(restart) = restart.filter(|&r| t > r && t - 60 <= r) {
                while next < incs.len() && incs[next].t < restart as f64 {
                    next += 1; // counted by the process that is now gone
                }
                value = 0.0;
                born = false;
            }
            while next < incs.len() && incs[next].t < t as f64 {
                value += incs[next].amount;
                born = true;
                next += 1;
            }
            let scraped = !outages.iter().any(|&(from, to)| (from..to).contains(&t));
            if born && scraped {
                // Labels a real scrape adds: they must never split a row.
                let series =
                    series.replacen('{', r#"{job="openclaw",instance="127.0.0.1:9464",otel_scope_name="openclaw","#, 1);
                writeln!(out, "{series} {value} {t}").unwrap();
            }
            t += 60;
        }
    }
    out.push_str("# EOF\n");
    out
}

fn iso(t: f64) -> String {
    let secs = t.floor() as i64;
    let millis = ((t - secs as f64) * 1000.0).round() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[test]
fn iso_dates() {
    assert_eq!(iso(WEEK_START as f64), "2026-11-16T00:00:00.000Z");
    assert_eq!(iso(RESTART as f64 + 0.25), "2026-11-19T12:00:30.250Z");
}
