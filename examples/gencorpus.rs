//! Synthetic shape-A telemetry corpus generator (benchmarks for `obsctl digest`).
//!
//! ```text
//! cargo run --release --example gencorpus -- --size 1G --out /tmp/corpus.jsonl \
//!     [--seed 42] [--start 2026-11-09T00:00:00Z]
//! ```
//!
//! Writes whole sessions of shape-A events (`session_start`, `model_usage`, `tool_call`,
//! `agent_end`, `session_end`) until the file reaches `--size` (decimal units: `K`=1e3,
//! `M`=1e6, `G`=1e9; binary with `Ki`/`Mi`/`Gi`). A `1G` corpus holds about 4.6 M events and
//! 400 k sessions (~217 bytes per line). Sessions are spread uniformly over the 14 days that
//! begin at `--start` (default 2026-11-09T00:00:00Z = ISO weeks 2026-W46 and 2026-W47); a
//! session lasts at most an hour and never crosses the boundary at `--start + 7d` or the end
//! at `--start + 14d`.
//!
//! On stdout it prints one JSON object with the exact figures `obsctl digest --week 2026-W47
//! --tz UTC` must report (window `[2026-11-16, 2026-11-23)`, previous window the week
//! before), whatever `--start` is. Costs have at most 6 decimals and are summed as integer
//! micro-dollars, so `cost_usd` is exact. Only std is used (own PRNG and calendar maths).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::exit;

/// splitmix64: small, fast, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// Uniform in `[0, 1)`.
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Log-uniform in `[lo, hi]`: many small values, a long tail of large ones.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        ((a + (b - a) * self.f64()).exp() as u64).clamp(lo, hi)
    }
    /// Pick an index by integer weights.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

struct Model {
    name: &'static str,
    provider: &'static str,
    /// Prices in micro-dollars per token, as a fraction num/den (USD per million tokens).
    in_price: (u64, u64),
    out_price: (u64, u64),
}

const MODELS: &[Model] = &[
    Model { name: "claude-sonnet-4-5", provider: "anthropic", in_price: (3, 1), out_price: (15, 1) },
    Model { name: "claude-opus-4-1", provider: "anthropic", in_price: (15, 1), out_price: (75, 1) },
    Model { name: "gpt-5", provider: "openai", in_price: (5, 4), out_price: (10, 1) },
    Model { name: "gpt-5-mini", provider: "openai", in_price: (1, 4), out_price: (2, 1) },
    Model { name: "gemini-2.5-pro", provider: "google", in_price: (5, 4), out_price: (10, 1) },
];
const MODEL_WEIGHTS: &[u64] = &[40, 8, 20, 22, 10];

const AGENTS: &[&str] = &["main", "researcher", "coder", "reviewer"];
const AGENT_WEIGHTS: &[u64] = &[40, 20, 25, 15];

const TOOLS: &[&str] = &["bash", "read", "web_search", "write", "edit", "grep"];
const TOOL_WEIGHTS: &[u64] = &[25, 25, 15, 10, 15, 10];

/// (experimentId, variant); `None` = no experiment fields.
const EXPERIMENTS: &[Option<(&str, &str)>] = &[
    Some(("prompt-v7", "A")),
    Some(("prompt-v7", "B")),
    Some(("router-2026-11", "control")),
    Some(("router-2026-11", "cheap-first")),
    None,
];
const EXPERIMENT_WEIGHTS: &[u64] = &[17, 17, 17, 17, 32];

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const MAX_SESSION_US: i64 = 3_600 * 1_000_000;

/// Days since 1970-01-01 -> (year, month, day). Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01. Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (or a bare `YYYY-MM-DD`) into epoch seconds.
fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * DAY;
    if b.len() > 10 {
        if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + se;
    }
    Some(secs)
}

fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

fn push_uint(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (with quotes) for epoch microseconds.
fn push_ts(buf: &mut Vec<u8>, us: i64) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000) as u64;
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let sod = secs.rem_euclid(DAY) as u32;
    buf.push(b'"');
    push_uint(buf, y as u64);
    buf.push(b'-');
    push_2(buf, m);
    buf.push(b'-');
    push_2(buf, d);
    buf.push(b'T');
    push_2(buf, sod / 3600);
    buf.push(b':');
    push_2(buf, sod / 60 % 60);
    buf.push(b':');
    push_2(buf, sod % 60);
    buf.push(b'.');
    let f = frac + 1_000_000; // zero-padded to 6 digits
    let start = buf.len();
    push_uint(buf, f);
    buf.remove(start);
    buf.extend_from_slice(b"Z\"");
}

/// Appends micro-dollars as a JSON number with at most 6 decimals, trailing zeros trimmed.
fn push_micro(buf: &mut Vec<u8>, micro: u64) {
    push_uint(buf, micro / 1_000_000);
    let frac = micro % 1_000_000;
    if frac != 0 {
        buf.push(b'.');
        let mut digits = [0u8; 6];
        let mut f = frac;
        for i in (0..6).rev() {
            digits[i] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let mut n = 6;
        while digits[n - 1] == b'0' {
            n -= 1;
        }
        buf.extend_from_slice(&digits[..n]);
    }
}

fn fmt_micro(micro: u64) -> String {
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

#[derive(Default)]
struct Totals {
    cost_micro: u64,
    input_tokens: u64,
    output_tokens: u64,
    sessions: u64,
    model_calls: u64,
    errors: u64,
    tool_calls: u64,
    tool_failures: u64,
    uncosted_events: u64,
}

/// One event before serialisation.
enum Ev {
    Model { model: usize, input: u64, output: u64, cost: Option<u64>, dur_ms: u64 },
    Tool { tool: usize, success: bool, dur_ms: u64 },
}

fn usage() -> ! {
    eprintln!(
        "usage: gencorpus --size SIZE --out FILE [--seed N] [--start YYYY-MM-DDTHH:MM:SSZ]\n  \
         SIZE: bytes with optional K/M/G (decimal) or Ki/Mi/Gi (binary) suffix, e.g. 100M, 1G"
    );
    exit(2)
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.to_ascii_lowercase().trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((num * mult) as u64)
}

fn main() {
    let mut size: Option<u64> = None;
    let mut out: Option<String> = None;
    let mut seed: u64 = 42;
    let mut start = parse_utc("2026-11-09T00:00:00Z").unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || inline.clone().or_else(|| args.next()).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--size" => size = Some(parse_size(&val()).unwrap_or_else(|| usage())),
            "--out" => out = Some(val()),
            "--seed" => seed = val().parse().unwrap_or_else(|_| usage()),
            "--start" => start = parse_utc(&val()).unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let (Some(size), Some(out)) = (size, out) else { usage() };
    if let Err(e) = run(size, &out, seed, start) {
        eprintln!("gencorpus: {out}: {e}");
        exit(1);
    }
}

fn run(size: u64, out: &str, seed: u64, start: i64) -> io::Result<()> {
    let t0 = std::time::Instant::now();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut rng = Rng(seed);

    // Windows obsctl is asked about: `--week 2026-W47 --tz UTC` and the week before.
    let w47 = parse_utc("2026-11-16T00:00:00Z").unwrap() * 1_000_000;
    let w47_end = w47 + WEEK * 1_000_000;
    let w46 = w47 - WEEK * 1_000_000;
    let mut cur = Totals::default();
    let mut prev = Totals::default();

    let mut bytes: u64 = 0;
    let mut events: u64 = 0;
    let mut sessions: u64 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut evs: Vec<(i64, Ev)> = Vec::with_capacity(32);
    let mut tail = Vec::with_capacity(256); // common `,"timestamp"…` suffix pieces
    let start_us = start * 1_000_000;

    while bytes < size {
        let sid = sessions;
        sessions += 1;
        let agent = AGENTS[rng.weighted(AGENT_WEIGHTS)];
        let exp = EXPERIMENTS[rng.weighted(EXPERIMENT_WEIGHTS)];
        let primary = rng.weighted(MODEL_WEIGHTS);

        // Build the session's events as offsets (µs) from its start.
        evs.clear();
        let n_model = rng.range(1, 9);
        let mut t: i64 = rng.range(200_000, 30_000_000) as i64; // user typing
        for i in 0..n_model {
            let model = if rng.chance(0.8) { primary } else { rng.weighted(MODEL_WEIGHTS) };
            let m = &MODELS[model];
            let input = rng.log_range(800, 120_000);
            let output = rng.log_range(40, 8_000);
            let micro = (input * m.in_price.0 / m.in_price.1 + output * m.out_price.0 / m.out_price.1).max(1);
            let cost = if rng.chance(0.005) { None } else { Some(micro) };
            let dur_ms = rng.log_range(300, 60_000);
            t += dur_ms as i64 * 1000 + rng.below(500_000) as i64;
            evs.push((t, Ev::Model { model, input, output, cost, dur_ms }));
            if i + 1 < n_model && rng.chance(0.875) {
                let tool = rng.weighted(TOOL_WEIGHTS);
                let success = !rng.chance(0.04);
                let dur_ms = rng.log_range(20, 30_000);
                t += dur_ms as i64 * 1000 + rng.below(200_000) as i64;
                evs.push((t, Ev::Tool { tool, success, dur_ms }));
            }
            if rng.chance(0.08) {
                t += rng.range(10_000_000, 300_000_000) as i64; // user away
            }
        }
        let span = t.min(MAX_SESSION_US);
        if t > MAX_SESSION_US {
            // Compress into one hour, keeping order.
            for (et, _) in evs.iter_mut() {
                *et = (*et as i128 * MAX_SESSION_US as i128 / t as i128) as i64;
            }
        }
        let agent_ok = !rng.chance(0.03);

        // Place the session in one of the two weeks, wholly inside it.
        let week = rng.below(2) as i64;
        let wk_start = start_us + week * WEEK * 1_000_000;
        let room = (WEEK * 1_000_000 - span - 1) as u64;
        let s0 = wk_start + rng.below(room) as i64;

        let totals = if s0 >= w47 && s0 < w47_end {
            Some(&mut cur)
        } else if s0 >= w46 && s0 < w47 {
            Some(&mut prev)
        } else {
            None
        };

        // Suffix shared by every line of the session (after the timestamp).
        tail.clear();
        tail.extend_from_slice(b",\"agentId\":\"");
        tail.extend_from_slice(agent.as_bytes());
        tail.extend_from_slice(b"\",\"sessionId\":\"sess-");
        push_uint(&mut tail, seed);
        tail.push(b'-');
        let digits = sid + 10_000_000; // 7 digits, zero-padded
        let p = tail.len();
        push_uint(&mut tail, digits);
        tail.remove(p);
        tail.push(b'"');
        if let Some((e, v)) = exp {
            tail.extend_from_slice(b",\"experimentId\":\"");
            tail.extend_from_slice(e.as_bytes());
            tail.extend_from_slice(b"\",\"variant\":\"");
            tail.extend_from_slice(v.as_bytes());
            tail.push(b'"');
        }
        tail.extend_from_slice(b"}\n");

        buf.clear();
        let line = |buf: &mut Vec<u8>, ts: i64, tail: &[u8]| {
            buf.extend_from_slice(b",\"timestamp\":");
            push_ts(buf, ts);
            buf.extend_from_slice(tail);
        };
        buf.extend_from_slice(b"{\"type\":\"session_start\"");
        line(&mut buf, s0, &tail);
        let mut t_end = s0;
        let mut s = Totals { sessions: 1, ..Totals::default() };
        for (et, ev) in &evs {
            let ts = s0 + et;
            t_end = ts;
            match ev {
                Ev::Model { model, input, output, cost, dur_ms } => {
                    let m = &MODELS[*model];
                    buf.extend_from_slice(b"{\"type\":\"model_usage\",\"model\":\"");
                    buf.extend_from_slice(m.name.as_bytes());
                    buf.extend_from_slice(b"\",\"provider\":\"");
                    buf.extend_from_slice(m.provider.as_bytes());
                    buf.extend_from_slice(b"\",\"inputTokens\":");
                    push_uint(&mut buf, *input);
                    buf.extend_from_slice(b",\"outputTokens\":");
                    push_uint(&mut buf, *output);
                    if let Some(c) = cost {
                        buf.extend_from_slice(b",\"costUsd\":");
                        push_micro(&mut buf, *c);
                        s.cost_micro += c;
                    } else {
                        s.uncosted_events += 1;
                    }
                    buf.extend_from_slice(b",\"durationMs\":");
                    push_uint(&mut buf, *dur_ms);
                    s.model_calls += 1;
                    s.input_tokens += input;
                    s.output_tokens += output;
                }
                Ev::Tool { tool, success, dur_ms } => {
                    buf.extend_from_slice(b"{\"type\":\"tool_call\",\"tool\":\"");
                    buf.extend_from_slice(TOOLS[*tool].as_bytes());
                    buf.extend_from_slice(if *success { b"\",\"success\":true" } else { b"\",\"success\":false" });
                    buf.extend_from_slice(b",\"durationMs\":");
                    push_uint(&mut buf, *dur_ms);
                    s.tool_calls += 1;
                    s.tool_failures += u64::from(!success);
                }
            }
            line(&mut buf, ts, &tail);
        }
        buf.extend_from_slice(if agent_ok {
            b"{\"type\":\"agent_end\",\"success\":true" as &[u8]
        } else {
            b"{\"type\":\"agent_end\",\"success\":false"
        });
        line(&mut buf, t_end, &tail);
        s.errors += u64::from(!agent_ok);
        buf.extend_from_slice(b"{\"type\":\"session_end\",\"durationMs\":");
        push_uint(&mut buf, ((t_end - s0) / 1000) as u64);
        buf.extend_from_slice(b",\"messageCount\":");
        push_uint(&mut buf, s.model_calls * 2);
        line(&mut buf, t_end, &tail);

        if let Some(tot) = totals {
            tot.cost_micro += s.cost_micro;
            tot.input_tokens += s.input_tokens;
            tot.output_tokens += s.output_tokens;
            tot.sessions += 1;
            tot.model_calls += s.model_calls;
            tot.errors += s.errors;
            tot.tool_calls += s.tool_calls;
            tot.tool_failures += s.tool_failures;
            tot.uncosted_events += s.uncosted_events;
        }
        events += evs.len() as u64 + 3;
        bytes += buf.len() as u64;
        w.write_all(&buf)?;
    }
    w.flush()?;
    drop(w);

    let c = &cur;
    println!(
        "{{\"window\":{{\"start\":\"2026-11-16T00:00:00Z\",\"end\":\"2026-11-23T00:00:00Z\",\"totals\":{{\
         \"cost_usd\":{},\"input_tokens\":{},\"output_tokens\":{},\"sessions\":{},\"model_calls\":{},\
         \"errors\":{},\"tool_calls\":{},\"tool_failures\":{},\"uncosted_events\":{}}}}},\
         \"previous\":{{\"cost_usd\":{},\"sessions\":{}}},\"events\":{},\"sessions\":{},\"bytes\":{},\"seed\":{}}}",
        fmt_micro(c.cost_micro),
        c.input_tokens,
        c.output_tokens,
        c.sessions,
        c.model_calls,
        c.errors,
        c.tool_calls,
        c.tool_failures,
        c.uncosted_events,
        fmt_micro(prev.cost_micro),
        prev.sessions,
        events,
        sessions,
        bytes,
        seed
    );
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "gencorpus: {out}: {bytes} bytes, {events} events, {sessions} sessions, {:.1} bytes/line, \
         {secs:.2} s ({:.0} MB/s)",
        bytes as f64 / events as f64,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(parse_utc("2026-11-16T00:00:00Z"), Some(1_794_787_200));
    }
}
