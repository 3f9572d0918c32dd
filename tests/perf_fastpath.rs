//! Differential test of the JSONL fast path (`src/source/jsonl/line/flat.rs`).
//!
//! Most lines are read by a strict hand-written reader; serde_json is the reference. The
//! contract: whenever the fast path answers, its answer (the `Event`, or the error of a line
//! it read but found invalid, such as a bad timestamp) is exactly serde_json's. Checked here
//! on hand-written edge cases, on every line of the fixtures (and of the Loki fixture corpus
//! in `../shared` when present), and on hundreds of thousands of mutations of those lines:
//! byte insertions, deletions and replacements, truncations, and value and key
//! substitutions. Timestamps are also checked against chrono directly, since both paths
//! share the fast timestamp reader.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use obsctl::source::jsonl::{parse_line, parse_line_flat, parse_line_with_serde};

#[derive(Default, Debug)]
struct Stats {
    lines: u64,
    accepted: u64,
    accepted_ok: u64,
}

/// The whole contract for one line.
fn check(line: &[u8], stats: &mut Stats) {
    let reference = parse_line_with_serde(line);
    let show = || String::from_utf8_lossy(line).into_owned();
    assert_eq!(parse_line(line), reference, "parse_line differs from serde on {}", show());
    stats.lines += 1;
    if let Some(fast) = parse_line_flat(line) {
        assert_eq!(fast, reference, "fast path differs from serde on {}", show());
        stats.accepted += 1;
        if let Ok(event) = &fast {
            stats.accepted_ok += 1;
            check_time_against_chrono(line, event.time);
        }
    }
}

/// The event's time is chrono's reading of `timestamp` (when the line has no `ts`).
fn check_time_against_chrono(line: &[u8], time: i64) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line) else { return };
    if map.get("ts").is_some_and(|ts| !ts.is_null()) {
        return;
    }
    let Some(text) = map.get("timestamp").and_then(|t| t.as_str()) else { return };
    let chrono = chrono::DateTime::parse_from_rfc3339(text).ok().and_then(|t| t.timestamp_nanos_opt());
    assert_eq!(Some(time), chrono, "time of {text:?}");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_lines(path: &Path, out: &mut Vec<Vec<u8>>) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut plain).expect("gzip");
        bytes = plain;
    }
    out.extend(bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
}

fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("dir entry").path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            walk(&path, out);
        } else if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") {
            read_lines(&path, out);
        }
    }
}

/// Every line of the repository's fixtures and, when present, of the shared Loki corpus
/// (whose pushed lines also hold each event as an escaped string: those are unwrapped too).
fn seed_lines() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    walk(&root().join("fixtures"), &mut lines);
    let shared = root().join("../shared/fixtures/loki/events.jsonl");
    if shared.exists() {
        read_lines(&shared, &mut lines);
    }
    let mut inner = Vec::new();
    for line in &lines {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line) {
            if let Some(serde_json::Value::String(s)) = map.get("line") {
                inner.push(s.as_bytes().to_vec());
            }
        }
    }
    lines.extend(inner);
    lines
}

/// The key sequence of a line, to pick one line of each layout for the costly mutations.
fn layout(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut keys = Vec::new();
    for part in text.split("\":") {
        if let Some(start) = part.rfind('"') {
            keys.push(&part[start + 1..]);
        }
    }
    keys.join(",")
}

/// The (start, end) byte ranges of the values of a flat line's top-level fields.
fn value_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    let mut depth = 0;
    while i < line.len() {
        let b = line[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b':' if depth == 1 => {
                    let start = i + 1;
                    let mut j = start;
                    let (mut s, mut d) = (false, 0);
                    while j < line.len() {
                        let c = line[j];
                        if s {
                            if c == b'\\' {
                                j += 1;
                            } else if c == b'"' {
                                s = false;
                            }
                        } else if c == b'"' {
                            s = true;
                        } else if c == b'{' || c == b'[' {
                            d += 1;
                        } else if (c == b'}' || c == b']') && d > 0 {
                            d -= 1;
                        } else if (c == b',' || c == b'}') && d == 0 {
                            break;
                        }
                        j += 1;
                    }
                    spans.push((start, j));
                }
                _ => {}
            }
        }
        i += 1;
    }
    spans
}

const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "01",
    "00",
    "1.",
    ".5",
    "1.5",
    "0.0",
    "1.50",
    "-1.5",
    "1e2",
    "1E+2",
    "1e-2",
    "1.5e3",
    "1e",
    "1e+",
    "1e999",
    "-1e999",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "12345678901234567890",
    "1234567890123456789",
    "9007199254740993",
    "0.1234567890123456789",
    "0.12345678901234567891",
    "0.000000000000000000001",
    "123456789.123456789",
    "0.086997",
    "391.898925",
    "0.1",
    "0.3",
    "2.675",
    "1794988809480",
    "1794988809480.5",
    "\"\"",
    "\"12\"",
    "\"0.5\"",
    "\"x\"",
    "\"success\"",
    "\"SUCCESS\"",
    "\"ok\"",
    "\"error\"",
    "\"unknown\"",
    "\"model_usage\"",
    "\"tool_call\"",
    "\"tool_result\"",
    "\"agent_end\"",
    "\"llm.call\"",
    "\"2026-11-19T15:56:00Z\"",
    "\"2026-11-19T15:56:00.1Z\"",
    "\"2026-11-19T15:56:00.123456789Z\"",
    "\"2026-11-19T15:56:00.1234567891Z\"",
    "\"2026-11-19T15:56:00+01:00\"",
    "\"2026-11-19T15:56:00-23:59\"",
    "\"2026-11-19T15:56:00+24:00\"",
    "\"2026-11-19t15:56:00z\"",
    "\"2026-11-19 15:56:00Z\"",
    "\"2026-11-19T15:56:60Z\"",
    "\"2024-02-29T00:00:00Z\"",
    "\"2026-02-29T00:00:00Z\"",
    "\"1970-01-01T00:00:00+00:01\"",
    "\"1969-12-31T23:59:59Z\"",
    "\"2262-04-12T00:00:00Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"agent:ops:main:1\"",
    "\"agent::x\"",
    "\"anthropic/claude-x\"",
    "\"/odd\"",
    "\"odd/\"",
    "\"ANTHROPIC\"",
    "\"Anthropic/Claude\"",
    "\"é\"",
    "\"日本\"",
    "\"a\\\"b\"",
    "\"\\u0041\"",
    "\"a b\"",
    "{}",
    "[]",
    "{\"id\":\"x\",\"variant\":\"B\"}",
    "[1,2]",
    "NaN",
    "Infinity",
    "tru",
    "nul",
    "falsey",
    "\"unterminated",
];

const KEYS: &[&str] = &[
    "type",
    "eventType",
    "kind",
    "timestamp",
    "ts",
    "sessionId",
    "sessionKey",
    "agentId",
    "model",
    "provider",
    "costUsd",
    "estimatedCostUsd",
    "inputTokens",
    "outputTokens",
    "success",
    "status",
    "experimentId",
    "variant",
    "experiment.id",
    "experiment.variant",
    "experiment",
    "data",
    "error",
    "Type",
    "type ",
    "",
    "durationMs",
    "x",
];

const BYTES: &[&[u8]] = &[
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"\r",
    b",",
    b":",
    b"}",
    b"{",
    b"[",
    b"]",
    b"-",
    b"0",
    b"9",
    b".",
    b"e",
    b"+",
    b"n",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\xc3\xa9",
    b"\xff",
    b"\xe2\x82",
];

fn splice(line: &[u8], start: usize, end: usize, with: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(line.len() + with.len());
    v.extend_from_slice(&line[..start]);
    v.extend_from_slice(with);
    v.extend_from_slice(&line[end..]);
    v
}

/// Values and keys replaced, fields dropped and repeated, whitespace and garbage added.
fn token_mutations(line: &[u8], out: &mut impl FnMut(&[u8])) {
    let spans = value_spans(line);
    for &(start, end) in &spans {
        for value in VALUES {
            out(&splice(line, start, end, value.as_bytes()));
        }
        out(&splice(line, start, start, b" "));
        out(&splice(line, end, end, b" "));
    }
    // Keys: the quoted text just before each value.
    for &(start, _) in &spans {
        let Some(key_end) = start.checked_sub(2) else { continue };
        let Some(key_start) = line[..key_end].iter().rposition(|&b| b == b'"').map(|i| i + 1) else { continue };
        for key in KEYS {
            out(&splice(line, key_start, key_end, key.as_bytes()));
        }
    }
    // Fields dropped, and each field repeated at the end.
    let mut field_start = 1;
    for &(_, end) in &spans {
        let field = &line[field_start..end];
        let without = splice(line, field_start, (end + 1).min(line.len() - 1), b"");
        out(&without);
        if let Some(close) = line.iter().rposition(|&b| b == b'}') {
            let mut repeated = line[..close].to_vec();
            repeated.push(b',');
            repeated.extend_from_slice(field);
            repeated.extend_from_slice(&line[close..]);
            out(&repeated);
        }
        field_start = end + 1;
    }
    for tail in [&b" "[..], b"\t", b"\r", b"x", b",", b"}", b"{}", b"\n"] {
        let mut v = line.to_vec();
        v.extend_from_slice(tail);
        out(&v);
        out(&splice(line, 0, 0, tail));
    }
}

/// Every prefix, and each byte deleted, replaced and preceded by each of `BYTES`.
fn byte_mutations(line: &[u8], out: &mut impl FnMut(&[u8])) {
    for i in 0..=line.len() {
        out(&line[..i]);
        for b in BYTES {
            out(&splice(line, i, i, b));
            if i < line.len() {
                out(&splice(line, i, i + 1, b));
            }
        }
        if i < line.len() {
            out(&splice(line, i, i + 1, b""));
        }
    }
}

#[test]
fn hand_written_edge_cases() {
    let mut stats = Stats::default();
    let base = r#"{"type":"model_usage","model":"anthropic/claude-x","provider":"Anthropic","inputTokens":10,"outputTokens":2,"costUsd":0.5,"timestamp":"2026-11-19T15:56:00.371985Z","agentId":"main","sessionId":"s1"}"#;
    let cases: &[&[u8]] = &[
        base.as_bytes(),
        b"{}",
        b"{ }",
        b" {}",
        b"{} ",
        b"{\"type\":\"model_usage\"}",
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":"12"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":12}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":-0.5}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":-0}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":1e999}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":1e2}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":0.1234567890123456789012}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":null}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":-3}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":1.5}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":1.0}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":18446744073709551615}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":18446744073709551616}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","inputTokens":"7"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","type":"tool_call"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","type":null}"#,
        br#"{"type":null,"timestamp":"2026-11-16T00:00:00Z","eventType":"model_usage"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","durationMs":1,"durationMs":2}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","x":-1.5e-3}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","x":1e999}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","x":-}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","x":{"y":1}}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","x":[]}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","success":1}"#,
        br#"{"type":"agent_end","timestamp":"2026-11-16T00:00:00Z","success":false}"#,
        br#"{"type":"agent_end","timestamp":"2026-11-16T00:00:00Z","success":null}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","model":"m\u00e9"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","model":"caf\xc3\xa9"}"#,
        b"{\"type\":\"model_usage\",\"timestamp\":\"2026-11-16T00:00:00Z\",\"model\":\"\xff\xfe\"}",
        b"{\"type\":\"model_usage\",\"timestamp\":\"2026-11-16T00:00:00Z\",\"x\":\"\xff\xfe\"}",
        b"{\"type\":\"model_usage\",\"timestamp\":\"2026-11-16T00:00:00Z\",\"model\":\"a\tb\"}",
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z"} trailing"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z"}}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z",}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z""#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z"#,
        br#"{"type":"model_usage" ,"timestamp":"2026-11-16T00:00:00Z"}"#,
        br#"{"type": "model_usage", "timestamp": "2026-11-16T00:00:00Z"}"#,
        br#"{"type":"model_usage","timestamp":"yesterday"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16"}"#,
        br#"{"type":"model_usage","timestamp":"1969-12-31T23:59:59Z"}"#,
        br#"{"type":"model_usage","timestamp":"1970-01-01T00:30:00+01:00"}"#,
        br#"{"type":"model_usage","timestamp":"2262-12-31T00:00:00Z"}"#,
        br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","ts":1794988809480}"#,
        br#"{"kind":"run.end","ts":1794988809480,"sessionId":"c2"}"#,
        br#"{"kind":"llm.call","ts":"1794988809480"}"#,
        br#"{"kind":"llm.call","ts":-5}"#,
        br#"{"kind":"llm.call","ts":1e20}"#,
        br#"{"kind":"llm.call","ts":1794988809480,"data":{"costUsd":1}}"#,
        br#"{"type":"session_start","timestamp":"2026-11-16T00:00:00Z","experiment":"x"}"#,
        br#"{"type":"session_start","timestamp":"2026-11-16T00:00:00Z","experiment.id":"y","experiment.variant":"A"}"#,
        br#"{"eventType":"agent_end","timestamp":"2026-11-19T03:01:10.000Z","sessionKey":"agent:ops:cron:7d21aa","status":"OK"}"#,
        br#"{"eventType":"model_usage","timestamp":"2026-11-19T03:01:10.000Z","costUsd":1,"estimatedCostUsd":2}"#,
        br#"{"hello":"world","timestamp":"2026-11-16T00:00:00Z"}"#,
        b"not json at all: gateway restarted",
        b"",
        b"[1,2,3]",
        b"null",
        b"\"str\"",
        b"{\"type\"}",
        b"{\"type\":}",
        b"{type:\"x\"}",
        b"{'type':'x'}",
    ];
    for case in cases {
        check(case, &mut stats);
    }
    // The fast path must actually take the ordinary lines.
    for line in [base.as_bytes(), b"{}"] {
        assert!(parse_line_flat(line).is_some(), "{}", String::from_utf8_lossy(line));
    }
    assert!(
        parse_line_flat(br#"{"type":"model_usage","timestamp":"2026-11-16T00:00:00Z","costUsd":"12"}"#).is_none(),
        "a string cost is serde's to refuse"
    );
}

/// The contract for `line` read right after `before`: the fast reader reuses the reading
/// of the members a line ends with when they are the last line's (`flat.rs`, `Tail`).
fn check_after(before: &[u8], line: &[u8], stats: &mut Stats) {
    let reference = parse_line_with_serde(line);
    let show = || String::from_utf8_lossy(line).into_owned();
    let _ = parse_line_flat(before);
    assert_eq!(parse_line(line), reference, "parse_line differs from serde after a line on {}", show());
    let _ = parse_line_flat(before);
    stats.lines += 1;
    if let Some(fast) = parse_line_flat(line) {
        assert_eq!(fast, reference, "fast path differs from serde after a line on {}", show());
        stats.accepted += 1;
    }
}

/// Every mutation of a line, read right after the line itself: the mutated heads (and
/// tails) of lines that end as the line before, among them a field of the tail repeated.
#[test]
fn mutations_read_after_their_line() {
    let seeds = seed_lines();
    let mut per_layout: std::collections::BTreeMap<String, usize> = Default::default();
    let mut stats = Stats::default();
    for line in &seeds {
        let n = per_layout.entry(layout(line)).or_default();
        *n += 1;
        if *n <= 2 {
            token_mutations(line, &mut |m| check_after(line, m, &mut stats));
        }
    }
    // A line that ends as another: each seed's head on every other seed's tail.
    let tails: Vec<&[u8]> =
        seeds.iter().filter_map(|l| l.windows(10).position(|w| w == b",\"agentId\"").map(|i| &l[i + 1..])).collect();
    for (line, tail) in seeds.iter().zip(tails.iter().cycle().skip(1)) {
        if let Some(cut) = line.windows(10).position(|w| w == b",\"agentId\"") {
            let joined = [&line[..=cut], tail].concat();
            check_after(line, &joined, &mut stats);
            check_after(&[&b"{\"x\":1,"[..], tail].concat(), &joined, &mut stats);
        }
    }
    eprintln!("lines read after another: {stats:?}");
    assert!(stats.lines > 10_000 && stats.accepted * 10 > stats.lines, "{stats:?}");
}

#[test]
fn fixtures_and_their_mutations() {
    let seeds = seed_lines();
    assert!(seeds.len() > 100, "only {} seed lines", seeds.len());
    let mut stats = Stats::default();
    // Compact flat objects without escapes: the lines the fast path is for.
    let (mut flat, mut flat_accepted) = (0, 0);
    for line in &seeds {
        check(line, &mut stats);
        let is_flat = line.first() == Some(&b'{')
            && line.last() == Some(&b'}')
            && !line.iter().any(|b| b"\\[]\t ".contains(b))
            && line.iter().filter(|&&b| b == b'{' || b == b'}').count() == 2;
        if is_flat {
            flat += 1;
            flat_accepted += u64::from(parse_line_flat(line).is_some());
        }
    }
    let seeds_accepted = stats.accepted;

    // Token-level mutations of every distinct layout's first few lines; byte-level ones of
    // one line per layout (they are many per line).
    let mut layouts: BTreeSet<String> = BTreeSet::new();
    let mut byte_seeds = Vec::new();
    let mut token_seeds = Vec::new();
    let mut per_layout: std::collections::BTreeMap<String, usize> = Default::default();
    for line in &seeds {
        let key = layout(line);
        let n = per_layout.entry(key.clone()).or_default();
        *n += 1;
        if *n <= 3 {
            token_seeds.push(line);
        }
        if layouts.insert(key) {
            byte_seeds.push(line);
        }
    }
    let mut mutated = Stats::default();
    for line in &token_seeds {
        token_mutations(line, &mut |m| check(m, &mut mutated));
    }
    for line in byte_seeds.iter().take(40) {
        byte_mutations(line, &mut |m| check(m, &mut mutated));
    }
    eprintln!(
        "fast path: {} seed lines ({} layouts), {} taken by the fast path ({} of the {} compact flat ones); \
         {} mutated lines, {} taken ({} of them valid events)",
        seeds.len(),
        layouts.len(),
        seeds_accepted,
        flat_accepted,
        flat,
        mutated.lines,
        mutated.accepted,
        mutated.accepted_ok,
    );
    assert!(flat > 100 && flat_accepted * 100 >= flat * 99, "the fast path took {flat_accepted} of {flat} flat lines");
    assert!(mutated.lines > 100_000, "{mutated:?}");
    assert!(mutated.accepted * 10 > mutated.lines, "the fast path took too few mutations: {mutated:?}");
}
