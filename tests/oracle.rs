//! An independent oracle for `obsctl digest --source jsonl`.
//!
//! The test generates (seeded splitmix64, no `rand`) a corpus of ~2800 sessions in the three
//! JSONL shapes of CONTRACT.md §1, keeping every event in a plain struct. The expected report
//! is computed from those structs with BTreeMaps and integer nano-dollars, never through the
//! obsctl library, and every section of the JSON (window, totals, previous, by_model, by_agent,
//! by_variant, by_session, daily, skipped_lines) must match: integers exactly, dollars to 1e-9
//! relative. The corpus is spread over a rotated day file, a two-member gzip day file, a weekly
//! rotation and a live `events.jsonl` over 5 MB (several 2 MiB chunks, several threads). It
//! holds malformed lines (bad JSON, wrong types, bad timestamps, negative costs, an
//! unterminated last line), blank lines, uncosted calls, a model, agent and variant whose cost
//! is unknown, tied sessions, sessions straddling the window start and events exactly on the
//! edges of both windows. It is checked in UTC with --since/--until, in Europe/Berlin with
//! --week (days are local dates, every session listed), and one thread must print the same
//! bytes as many.

mod common;
#[path = "common/rng.rs"]
mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use rng::Rng;
use serde_json::{json, Map, Value};

fn at(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

const W_START: &str = "2026-11-16T00:00:00Z";
const W_END: &str = "2026-11-23T00:00:00Z";
const P_START: &str = "2026-11-09T00:00:00Z";
const BER_START: &str = "2026-11-15T23:00:00Z";
const BER_END: &str = "2026-11-22T23:00:00Z";
const BER_P_START: &str = "2026-11-08T23:00:00Z";

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    A,
    B,
    C,
}

/// (model as written, provider as written, model and provider as reported).
type Model = (Option<&'static str>, Option<&'static str>, &'static str, &'static str);
const MODELS: [Model; 8] = [
    (Some("claude-sonnet-4-5"), Some("anthropic"), "claude-sonnet-4-5", "anthropic"),
    (Some("anthropic/claude-sonnet-4-5"), Some("Anthropic"), "claude-sonnet-4-5", "anthropic"),
    (Some("anthropic/claude-opus-4-1"), None, "claude-opus-4-1", "anthropic"),
    (Some("openai/gpt-5"), Some("OpenAI"), "gpt-5", "openai"),
    (Some("gpt-5-mini"), Some("openai"), "gpt-5-mini", "openai"),
    (Some("gpt-5-mini"), None, "gpt-5-mini", "unknown"),
    (Some("google/gemini-2.5-pro"), Some("vertex"), "gemini-2.5-pro", "vertex"),
    (None, Some("OpenRouter"), "unknown", "openrouter"),
];
/// Only the "scout" agent uses it, never with a cost: a model, agent and variant of unknown cost.
const LOCAL: Model = (Some("ollama/llama-3.1-70b"), None, "llama-3.1-70b", "ollama");
const AGENTS: [&str; 4] = ["main", "ops", "researcher", "coder"];
type Exp = Option<(&'static str, Option<&'static str>)>;
const EXPERIMENTS: [Exp; 5] = [
    Some(("router-2026-11", Some("control"))),
    Some(("router-2026-11", Some("treatment"))),
    Some(("prompt-v7", Some("A"))),
    Some(("prompt-v7", Some("B"))),
    Some(("solo-exp", None)),
];
const MALFORMED: [&str; 11] = [
    r#"{"type":"model_usage","model":"gpt-5","costUsd":0.5,"timestamp":"2026-11-18T10:00:00Z","sessionId":"bad-0""#,
    "this is not json",
    r#"{"type":"model_usage","model":"gpt-5","costUsd":"12","timestamp":"2026-11-18T10:00:00Z","sessionId":"bad-1"}"#,
    r#"{"eventType":"model_usage","estimatedCostUsd":1.5,"timestamp":"2026-11-18 25:00","sessionKey":"agent:x:main:1"}"#,
    r#"{"type":"model_usage","model":"gpt-5","costUsd":-0.5,"timestamp":"2026-11-19T10:00:00Z","sessionId":"bad-3"}"#,
    r#"{"kind":"llm.call","ts":"1795003200000","sessionId":"bad-4","data":{"costUsd":1.0}}"#,
    r#"{"type":"tool_call","success":"yes","timestamp":"2026-11-19T10:00:00Z","sessionId":"bad-5"}"#,
    r#"{"type":"model_usage","inputTokens":-5,"costUsd":0.1,"timestamp":"2026-11-20T10:00:00Z","sessionId":"bad-6"}"#,
    r#"{"type":"session_start","timestamp":"2026-12-01T10:00:00Z","sessionId":123}"#,
    r#"{"type":"model_usage","costUsd":0.25,"timestamp":"not a time","sessionId":"bad-7"}"#,
    r#"{"kind":"llm.call","ts":1795003200000,"sessionId":"bad-8","data":{"costUsd":-1.0,"delta":{"input":1}}}"#,
];

#[derive(Clone, Copy)]
enum Kind {
    Model { m: Model, cost: Option<u64>, input: u64, output: u64 },
    Tool { failed: bool },
    RunEnd { failed: bool },
    Other(&'static str),
}

struct Sess {
    shape: Shape,
    /// What the report calls it: sessionId, else sessionKey.
    id: String,
    session_id: Option<String>,
    session_key: String,
    agent: &'static str,
    exp: Exp,
}

struct Ev {
    ms: i64,
    sess: usize,
    kind: Kind,
}

impl Ev {
    /// Shape C's session.start carries no experiment: its session is in the (null, null)
    /// variant too, since variants group events.
    fn experiment(&self, s: &Sess) -> (Option<String>, Option<String>) {
        match s.exp {
            Some((x, v)) if !matches!(self.kind, Kind::Other("session.start")) => (Some(x.into()), v.map(Into::into)),
            _ => (None, None),
        }
    }
}

struct Gen {
    rng: Rng,
    sessions: Vec<Sess>,
    events: Vec<Ev>,
    clock: i64,
}

impl Gen {
    fn session(&mut self, shape: Shape, agent: &'static str, exp: Exp) -> usize {
        let n = self.sessions.len();
        let key = format!("agent:{agent}:{}:{:06x}", ["main", "main", "cron"][shape as usize], n * 7919 + 0xabc);
        let session_id = match shape {
            Shape::A => Some(format!("sess-{n:07}")),
            Shape::C if n % 7 != 0 => Some(format!("c1a2b3c4-{n:04x}-4aa0-9d1e-5e77aa{n:06x}")),
            _ => None,
        };
        let id = session_id.clone().unwrap_or_else(|| key.clone());
        self.sessions.push(Sess { shape, id, session_id, session_key: key, agent, exp });
        n
    }

    fn push(&mut self, sess: usize, ms: i64, kind: Kind) {
        self.events.push(Ev { ms, sess, kind });
    }

    /// An event up to 15 minutes after the previous one.
    fn next(&mut self, sess: usize, kind: Kind) {
        self.clock += 1 + self.rng.below(900_000) as i64;
        self.push(sess, self.clock, kind);
    }

    fn call(&mut self, m: Model, cost: Option<u64>) -> Kind {
        Kind::Model { m, cost, input: self.rng.below(20_000), output: self.rng.below(5_000) }
    }

    /// Under $1, with 1 to 9 significant nano-dollar digits.
    fn nano(&mut self) -> u64 {
        let digits = 1 + self.rng.below(9) as u32;
        self.rng.below(10u64.pow(digits))
    }

    fn random_session(&mut self) {
        let shape = [Shape::A, Shape::A, Shape::A, Shape::B, Shape::C][self.rng.below(5) as usize];
        let scout = shape != Shape::C && self.rng.pct(3);
        let agent = match () {
            _ if scout => "scout",
            _ if shape == Shape::A && self.rng.pct(6) => "unknown",
            _ => self.rng.pick(&AGENTS),
        };
        let exp = if scout {
            Some(("local-only", Some("baseline")))
        } else {
            self.rng.pick(&[&EXPERIMENTS[..], &[None; 2]].concat())
        };
        let s = self.session(shape, agent, exp);
        let c = shape == Shape::C;
        // From 2026-11-05 to 2026-11-26: before, in and after both windows.
        self.clock = at("2026-11-05T00:00:00Z") + self.rng.below(21 * 86_400_000) as i64;
        self.next(s, Kind::Other(if c { "session.start" } else { "session_start" }));
        for _ in 0..1 + self.rng.below(5) {
            if c {
                self.next(s, Kind::Other("run.start"));
            }
            for _ in 0..1 + self.rng.below(3) {
                let m = if scout { LOCAL } else { self.rng.pick(&MODELS) };
                let cost = if scout || self.rng.pct(3) { None } else { Some(self.nano()) };
                let call = self.call(m, cost);
                self.next(s, call);
            }
            for _ in 0..self.rng.below(4) {
                if c {
                    self.next(s, Kind::Other("tool.start"));
                }
                let failed = self.rng.pct(15);
                self.next(s, Kind::Tool { failed });
            }
            if c && self.rng.pct(50) {
                self.next(s, Kind::Other("usage.snapshot"));
            }
            let failed = self.rng.pct(20);
            self.next(s, Kind::RunEnd { failed });
        }
        self.next(s, Kind::Other(if c { "session.end" } else { "session_end" }));
    }

    /// Hand-made sessions: one straddling the window start, calls 1 ms before and exactly on
    /// the edges of both windows (UTC and Berlin) and of the previous ones, and a tie.
    fn edges(&mut self) {
        let a = self.session(Shape::A, "main", EXPERIMENTS[0]);
        let (b, c) = (self.session(Shape::B, "ops", None), self.session(Shape::C, "researcher", EXPERIMENTS[2]));
        let w = at(W_START);
        self.push(a, w - 2_400_000, Kind::Other("session_start"));
        self.push(a, w + 300_000, Kind::Tool { failed: true });
        self.push(a, w + 600_000, Kind::RunEnd { failed: true });
        let edges = [(a, W_START), (b, BER_END), (b, W_END), (c, BER_START), (c, P_START), (c, BER_P_START)];
        for (i, (s, edge)) in edges.into_iter().enumerate() {
            for ms in [at(edge) - 1, at(edge)] {
                let cost = 12_345_678 * (i as u64 + 1) + self.rng.below(1 << 20);
                let call = self.call(MODELS[i], Some(cost));
                self.push(s, ms, call);
            }
        }
        for (i, id) in ["tie-b", "tie-a"].into_iter().enumerate() {
            let s = self.session(Shape::A, "coder", EXPERIMENTS[1]);
            (self.sessions[s].id, self.sessions[s].session_id) = (id.into(), Some(id.into()));
            let call = self.call(MODELS[0], Some(19_753_086_420));
            self.push(s, at("2026-11-19T12:00:00Z") + i as i64, call);
        }
    }
}

/// One line in the session's shape, spelling each field one of the ways it comes in.
fn render(s: &Sess, e: &Ev, rng: &mut Rng) -> String {
    let t = Utc.timestamp_millis_opt(e.ms).unwrap();
    let (mut o, mut data) = (Map::new(), Map::new());
    // Fields whose value is null are left out.
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_string(), v);
        }
    };
    let names = match e.kind {
        Kind::Model { .. } => ["model_usage", "model_usage", "llm.call"],
        Kind::Tool { .. } => ["tool_call", "tool_call", "tool.end"],
        Kind::RunEnd { .. } => ["agent_end", "agent_end", "run.end"],
        Kind::Other(n) => [n; 3],
    };
    put(&mut o, ["type", "eventType", "kind"][s.shape as usize], json!(names[s.shape as usize]));
    let stamp = match (s.shape, rng.below(3)) {
        (Shape::C, _) => json!(e.ms),
        (Shape::A, 0) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        (Shape::A, 1) => json!(t.with_timezone(&FixedOffset::east_opt(19_800).unwrap()).to_rfc3339()),
        _ => json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    };
    put(&mut o, if s.shape == Shape::C { "ts" } else { "timestamp" }, stamp);
    if let Some(id) = &s.session_id {
        put(&mut o, "sessionId", json!(id));
    }
    if s.shape == Shape::A {
        if s.agent != "unknown" || rng.pct(50) {
            put(&mut o, "agentId", json!(s.agent));
        }
    } else {
        put(&mut o, "sessionKey", json!(s.session_key));
        // Any of these resolves to the agent of the session key.
        if let Some(a) = rng.pick(&[Some(s.agent), None, Some("unknown"), Some("")]) {
            put(&mut o, "agentId", json!(a));
        }
    }
    if let (Some(x), v) = e.experiment(s) {
        if s.shape == Shape::C && rng.pct(50) {
            put(&mut o, "experiment", if let Some(v) = v { json!({"id": x, "variant": v}) } else { json!({"id": x}) });
        } else {
            put(&mut o, "experimentId", json!(x));
            put(&mut o, "variant", json!(v));
        }
    }
    let target = if s.shape == Shape::C { &mut data } else { &mut o };
    match (s.shape, e.kind) {
        (_, Kind::Model { m, cost, input, output }) => {
            put(target, "model", json!(m.0));
            put(target, "provider", json!(m.1));
            put(
                target,
                ["costUsd", "estimatedCostUsd", "costUsd"][s.shape as usize],
                json!(cost.map(|c| c as f64 / 1e9)),
            );
            if s.shape == Shape::C {
                put(target, "delta", json!({"input": input, "output": output, "cacheRead": 7}));
                put(target, "cumulative", json!({"input": input * 3 + 11, "output": output * 2 + 5}));
            } else {
                put(target, "inputTokens", json!(input));
                put(target, "outputTokens", json!(output));
                put(target, "cacheReadTokens", json!(input / 2));
            }
        }
        (Shape::A, Kind::Tool { failed } | Kind::RunEnd { failed }) => {
            put(target, "success", json!((failed || rng.pct(90)).then_some(!failed)));
        }
        (Shape::B, Kind::Tool { failed } | Kind::RunEnd { failed }) => {
            let bad = [("error", None), ("timeout", None), ("aborted", Some(false)), ("success", Some(false))];
            let (status, success) = rng.pick(if failed { &bad[..] } else { &[("success", None), ("ok", Some(true))] });
            put(target, "status", json!(status));
            put(target, "success", json!(success));
        }
        (Shape::C, Kind::Tool { failed } | Kind::RunEnd { failed }) => {
            // A failed tool.end has isError true, a failed run.end success false, or an error object.
            let (tool, way) = (matches!(e.kind, Kind::Tool { .. }), rng.below(3));
            if way != 1 {
                put(target, if tool { "isError" } else { "success" }, json!(tool == failed));
            }
            if failed && way != 2 {
                put(&mut o, "error", json!({"message": "boom", "code": "E_TOOL"}));
            } else if rng.pct(50) {
                o.insert("error".into(), Value::Null);
            }
        }
        (_, Kind::Other("usage.snapshot")) => {
            put(target, "usage", json!({"input": 99_999, "output": 9_999}));
            put(target, "costUsd", json!(3.5));
        }
        _ => {}
    }
    if s.shape == Shape::C {
        put(&mut o, "data", Value::Object(data));
    }
    Value::Object(o).to_string()
}

struct Corpus {
    dir: tempfile::TempDir,
    sessions: Vec<Sess>,
    events: Vec<Ev>,
    skipped: u64,
}

const FILES: [&str; 4] =
    ["events.2026-11-18.jsonl", "events.2026-11-20.jsonl.gz", "events.2026-W46.jsonl", "events.jsonl"];

impl Corpus {
    fn build() -> Corpus {
        let mut g = Gen { rng: Rng(0x0B5C_7126_4700_2026), sessions: Vec::new(), events: Vec::new(), clock: 0 };
        g.edges();
        for _ in 0..2_800 {
            g.random_session();
        }
        let Gen { mut rng, sessions, mut events, .. } = g;
        // Files are appended in time order (sessions interleave) and rotated by UTC day.
        events.sort_by_key(|e| e.ms);
        let mut lines: [Vec<String>; 4] = Default::default();
        for e in &events {
            let file = match Utc.timestamp_millis_opt(e.ms).unwrap().date_naive().to_string().as_str() {
                "2026-11-18" => 0,
                "2026-11-20" => 1,
                _ if (at(P_START)..at(W_START)).contains(&e.ms) => 2,
                _ => 3,
            };
            lines[file].push(render(&sessions[e.sess], e, &mut rng));
        }
        let mut skipped = 0;
        for (file, lines) in lines.iter_mut().enumerate() {
            for i in 0..[3, 4, 3, 14][file] {
                let at = rng.below(lines.len() as u64 + 1) as usize;
                lines.insert(at, MALFORMED[(i + file) % MALFORMED.len()].to_string());
                skipped += 1;
                let at = rng.below(lines.len() as u64 + 1) as usize;
                lines.insert(at, ["", "   ", "\t"][i % 3].to_string()); // blank: ignored, not counted
            }
        }
        lines[0].push(r#"{"type":"model_usage","costUsd":0.1,"timest"#.into()); // unterminated last line
        skipped += 1;
        let dir = tempfile::tempdir().unwrap();
        for (name, lines) in FILES.iter().zip(&lines) {
            let path = dir.path().join(name.trim_end_matches(".gz"));
            let text = |lines: &[String]| lines.join("\n") + if *name == FILES[0] { "" } else { "\n" };
            std::fs::write(&path, text(lines)).unwrap();
            if name.ends_with(".gz") {
                // Two gzip members, as `cat a.gz b.gz` makes.
                let mut gz = Vec::new();
                for half in lines.chunks(lines.len() / 2 + 1) {
                    std::fs::write(&path, text(half)).unwrap();
                    let out = Command::new("gzip").args(["-c", "-n"]).arg(&path).output().expect("gzip runs");
                    assert!(out.status.success());
                    gz.extend(out.stdout);
                }
                std::fs::remove_file(&path).unwrap();
                std::fs::write(dir.path().join(name), gz).unwrap();
            }
        }
        let live = std::fs::metadata(dir.path().join("events.jsonl")).unwrap().len();
        assert!(live > 5 << 20, "events.jsonl must span several 2 MiB chunks: {live} bytes");
        Corpus { dir, sessions, events, skipped }
    }

    /// The report obsctl must print, from the generated events alone.
    fn expect(&self, (start, end): (i64, i64), previous: (i64, i64), tz: Tz, top: usize) -> Value {
        let (mut totals, mut prior) = (Acc::default(), Acc::default());
        let mut models: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
        let mut agents: BTreeMap<&str, Acc> = BTreeMap::new();
        let mut variants: BTreeMap<(Option<String>, Option<String>), Acc> = BTreeMap::new();
        let mut sessions: BTreeMap<&str, Acc> = BTreeMap::new();
        let mut daily: BTreeMap<String, u64> = BTreeMap::new();
        let date = |ms: i64| tz.timestamp_millis_opt(ms).unwrap().date_naive();
        for e in &self.events {
            let s = &self.sessions[e.sess];
            if (previous.0..previous.1).contains(&e.ms) {
                prior.add(e, s);
            }
            if !(start..end).contains(&e.ms) {
                continue;
            }
            for acc in [&mut totals, agents.entry(s.agent).or_default(), sessions.entry(&s.id).or_default()] {
                acc.add(e, s);
            }
            variants.entry(e.experiment(s)).or_default().add(e, s);
            if let Kind::Model { m, cost, .. } = e.kind {
                models.entry((m.2, m.3)).or_default().add(e, s);
                *daily.entry(date(e.ms).to_string()).or_default() += cost.unwrap_or(0);
            }
        }
        let by_model = rows(&models, |(m, p), a| {
            json!({"model": m, "provider": p, "cost_usd": a.cost(), "input_tokens": a.input,
                "output_tokens": a.output, "calls": a.calls})
        });
        let by_agent = rows(
            &agents,
            |name, a| json!({"agent": name, "cost_usd": a.cost(), "sessions": a.sessions.len(), "errors": a.errors}),
        );
        let by_variant = rows(&variants, |(x, v), a| {
            let per_session = a.cost().map(|c| c / a.sessions.len() as f64);
            // Σ over the variant's sessions of (the session's known cost in it)².
            // (Unknown with the variant's cost.)
            let squares = a.cost().map(|_| a.session_cost.values().map(|&n| (n as f64 / 1e9).powi(2)).sum::<f64>());
            json!({"experiment": x, "variant": v, "sessions": a.sessions.len(), "cost_usd": a.cost(),
                "cost_per_session_usd": per_session, "errors": a.errors, "runs": a.runs,
                "tool_calls": a.tool_calls, "tool_failures": a.tool_failures, "cost_sum_squares_usd2": squares})
        });
        let mut by_session = rows(&sessions, |id, a| {
            json!({"session": id, "agent": a.agent, "cost_usd": a.cost(), "input_tokens": a.input,
                "output_tokens": a.output, "model_calls": a.calls})
        });
        by_session.truncate(top);
        let days = date(start).iter_days().take_while(|d| *d <= date(end - 1)).map(|d| d.to_string());
        let daily: Vec<Value> =
            days.map(|d| json!({"date": d, "cost_usd": usd(daily.get(&d).copied().unwrap_or(0))})).collect();
        let utc = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339_opts(SecondsFormat::Secs, true);
        json!({
            "window": {"start": utc(start), "end": utc(end), "tz": tz.name()},
            "totals": totals.totals(), "previous": prior.totals(), "by_model": by_model, "by_agent": by_agent,
            "by_variant": by_variant, "by_session": by_session, "daily": daily, "skipped_lines": self.skipped,
        })
    }

    fn digest(&self, args: &[&str]) -> String {
        let mut cmd = common::obsctl();
        cmd.arg("digest").arg("--logs").arg(self.dir.path()).args(["--source", "jsonl", "--format", "json"]).args(args);
        common::stdout_of(&mut cmd)
    }
}

fn usd(nano: u64) -> Value {
    json!(nano as f64 / 1e9)
}

/// The events of a window, or of one row of a list.
#[derive(Default)]
struct Acc {
    cost: u64,
    costed: u64,
    calls: u64,
    input: u64,
    output: u64,
    runs: u64,
    errors: u64,
    tool_calls: u64,
    tool_failures: u64,
    events: u64,
    sessions: BTreeSet<String>,
    /// The known cost of each session's calls here, nano-dollars.
    session_cost: BTreeMap<String, u64>,
    agent: &'static str,
}

impl Acc {
    fn add(&mut self, e: &Ev, s: &Sess) {
        self.events += 1;
        self.sessions.insert(s.id.clone());
        self.agent = s.agent;
        match e.kind {
            Kind::Model { cost, input, output, .. } => {
                (self.calls, self.input, self.output) = (self.calls + 1, self.input + input, self.output + output);
                if let Some(c) = cost {
                    (self.cost, self.costed) = (self.cost + c, self.costed + 1);
                    *self.session_cost.entry(s.id.clone()).or_default() += c;
                }
            }
            Kind::Tool { failed } => {
                (self.tool_calls, self.tool_failures) = (self.tool_calls + 1, self.tool_failures + u64::from(failed))
            }
            Kind::RunEnd { failed } => (self.runs, self.errors) = (self.runs + 1, self.errors + u64::from(failed)),
            Kind::Other(_) => {}
        }
    }

    /// Unknown only when there were model calls and none had a cost.
    fn nano(&self) -> Option<u64> {
        (self.calls == 0 || self.costed > 0).then_some(self.cost)
    }

    fn cost(&self) -> Option<f64> {
        self.nano().map(|n| n as f64 / 1e9)
    }

    fn totals(&self) -> Value {
        json!({"cost_usd": usd(self.cost), "input_tokens": self.input, "output_tokens": self.output,
            "sessions": self.sessions.len(), "model_calls": self.calls, "runs": self.runs, "errors": self.errors,
            "tool_calls": self.tool_calls, "tool_failures": self.tool_failures,
            "uncosted_events": self.calls - self.costed, "events": self.events})
    }
}

/// Rows by cost descending, unknown last, ties by key ascending (None before any name).
fn rows<K: Ord>(groups: &BTreeMap<K, Acc>, row: impl Fn(&K, &Acc) -> Value) -> Vec<Value> {
    let mut sorted: Vec<(&K, &Acc)> = groups.iter().collect();
    sorted.sort_by_key(|(k, a)| (a.nano().is_none(), Reverse(a.nano()), *k));
    sorted.into_iter().map(|(k, a)| row(k, a)).collect()
}

/// Every field of `expected` must be in `actual`: floats within 1e-9 relative (1e-12
/// absolute near 0), everything else exactly (an integer must not come back as a float).
fn diff(path: &str, actual: &Value, expected: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff(&format!("{path}.{k}"), av, ev, out),
                    None => out.push(format!("{path}.{k}: missing, expected {ev}")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!("{path}: {} rows, expected {}", a.len(), e.len()));
            }
            for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                diff(&format!("{path}[{i}]"), av, ev, out);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.is_f64() => {
            let (x, y) = (a.as_f64().unwrap(), e.as_f64().unwrap());
            if (x - y).abs() > (1e-9 * y.abs()).max(1e-12) {
                out.push(format!("{path}: {x}, expected {y}"));
            }
        }
        _ if actual != expected => out.push(format!("{path}: {actual}, expected {expected}")),
        _ => {}
    }
}

fn check(stdout: &str, expected: &Value) {
    let actual: Value = serde_json::from_str(stdout).expect("JSON on stdout");
    let mut out = Vec::new();
    diff("$", &actual, expected, &mut out);
    assert!(out.is_empty(), "{} differences from the oracle:\n{}", out.len(), out[..out.len().min(40)].join("\n"));
}

const UTC_WEEK: [&str; 6] = ["--since", W_START, "--until", W_END, "--tz", "UTC"];

#[test]
fn utc_since_until_matches_the_oracle() {
    let c = Corpus::build();
    let expected = c.expect((at(W_START), at(W_END)), (at(P_START), at(W_START)), chrono_tz::UTC, 10);
    // The corpus holds what it claims to.
    let t = &expected["totals"];
    assert!(t["uncosted_events"].as_u64() > Some(0) && t["tool_failures"].as_u64() > Some(0), "{t}");
    assert!(t["runs"].as_u64() > t["errors"].as_u64() && t["errors"].as_u64() > Some(0), "{t}");
    let variants = expected["by_variant"].as_array().unwrap();
    assert!(variants.iter().any(|row| row["cost_sum_squares_usd2"].as_f64() > Some(0.0)), "{variants:?}");
    for list in ["by_model", "by_agent", "by_variant"] {
        assert!(expected[list].as_array().unwrap().iter().any(|row| row["cost_usd"].is_null()), "{list}");
    }
    assert_eq!(
        (&expected["by_session"][0]["session"], &expected["by_session"][1]["session"]),
        (&json!("tie-a"), &json!("tie-b"))
    );
    check(&c.digest(&[&UTC_WEEK[..], &["--top", "10"]].concat()), &expected);
}

#[test]
fn berlin_week_matches_the_oracle_day_by_local_day() {
    let c = Corpus::build();
    let (week, previous) = ((at(BER_START), at(BER_END)), (at(BER_P_START), at(BER_START)));
    let expected = c.expect(week, previous, chrono_tz::Europe::Berlin, usize::MAX);
    assert_eq!(expected["daily"][0]["date"], "2026-11-16");
    // Every session, down to the unknown costs at the end of the list.
    assert!(expected["by_session"].as_array().unwrap().last().unwrap()["cost_usd"].is_null());
    check(&c.digest(&["--week", "2026-W47", "--tz", "Europe/Berlin", "--top", "1000000"]), &expected);
}

#[test]
fn one_thread_prints_the_same_bytes_as_many() {
    let c = Corpus::build();
    let many = c.digest(&UTC_WEEK);
    for threads in ["1", "3"] {
        let other = c.digest(&[&UTC_WEEK[..], &["--threads", threads]].concat());
        let at = many.bytes().zip(other.bytes()).position(|(a, b)| a != b);
        assert!(many == other, "--threads {threads} differs from the default at byte {at:?}");
    }
}
