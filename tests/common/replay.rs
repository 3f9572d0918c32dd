//! Loki without a Loki, for the Loki source's tests.
//!
//! [`Replay`] is a tiny HTTP/1.1 server on 127.0.0.1 (std only, one thread per
//! connection) that answers each request with a reply chosen by a handler, and records every
//! request, so that a test can assert exactly what the client asked. Two handlers:
//!
//! - [`Replay::cases`] serves **recorded** answers of a real Loki 3.4.6
//!   (`fixtures/loki/cases/*.json`): a request matches a case on method, path, the decoded
//!   query parameters as a set (order and `+`/`%20` do not matter) and the headers the case
//!   lists; the reply is the recorded status, content type and body, byte for byte. Anything
//!   else gets a 404 and stays in [`Replay::unmatched`].
//! - [`SyntheticLoki`] answers with **synthetic** bodies it computes in Loki's format: it
//!   evaluates the small subset of LogQL that obsctl sends (and the recorded cases use) over
//!   a list of pushed entries, with Loki's `| json` rules and its series limit. It is checked
//!   against the recorded answers (`synthetic_loki_agrees_with_the_recorded_answers`), and
//!   lets `answer()` run end to end on requests nobody recorded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/loki")
}

// ---- The server ----

/// A request as the server saw it; parameters percent-decoded, in the order sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Reply {
        Reply { status, content_type: "text/plain; charset=utf-8".into(), body: body.into() }
    }

    pub fn json(body: String) -> Reply {
        Reply { status: 200, content_type: "application/json; charset=UTF-8".into(), body }
    }
}

/// What the server did with one request.
#[derive(Clone, Debug)]
pub struct Logged {
    pub request: Request,
    pub status: u16,
    /// The recorded case that answered, if any.
    pub case: Option<String>,
}

type Handler = dyn Fn(&Request) -> Option<(Reply, Option<String>)> + Send + Sync;

pub struct Replay {
    url: String,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Replay {
    /// Serves recorded cases; see the module documentation for how requests match.
    pub fn cases(cases: Vec<Case>) -> Replay {
        Replay::start(Box::new(move |req: &Request| {
            cases.iter().find(|c| c.matches(req)).map(|c| (c.reply(), Some(c.name.clone())))
        }))
    }

    /// Serves whatever `handler` answers (a 404 when it answers nothing).
    pub fn handler(handler: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> Replay {
        Replay::start(Box::new(move |req: &Request| handler(req).map(|r| (r, None))))
    }

    fn start(handler: Box<Handler>) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::from(handler);
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, handler) = (log.clone(), handler.clone());
                    std::thread::spawn(move || serve(stream, &*handler, &log));
                }
            })
        };
        Replay { url: format!("http://{addr}"), addr, log, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// Requests no case or handler answered (they got a 404).
    pub fn unmatched(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|l| l.status == 404 && l.case.is_none()).map(|l| l.request).collect()
    }

    /// The names of the cases that answered, sorted, once each.
    pub fn cases_used(&self) -> Vec<String> {
        let mut names: Vec<String> = self.requests().into_iter().filter_map(|l| l.case).collect();
        names.sort();
        names.dedup();
        names
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Logged>>) {
    let Some(request) = read_request(&stream) else { return };
    let (reply, case) =
        handler(&request).unwrap_or_else(|| (Reply::text(404, "no recorded case for this request\n"), None));
    log.lock().unwrap().push(Logged { request, status: reply.status, case });
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(reply.body.as_bytes()));
    let _ = stream.flush();
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request { method, path: path.to_string(), params: decode_query(query), headers })
}

fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

// ---- Recorded cases ----

#[derive(Clone, Debug, Deserialize)]
struct CaseFile {
    request: CaseRequest,
    response: CaseResponse,
    expected: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
struct CaseRequest {
    method: String,
    path: String,
    params: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
struct CaseResponse {
    status: u16,
    content_type: String,
    body: String,
}

/// One recorded request and Loki's answer (fixtures/loki/README.md).
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub method: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub expected: Option<serde_json::Value>,
}

impl Case {
    /// `name` is the file name without `.json`, e.g. `03b-split-a`.
    pub fn load(name: &str) -> Case {
        let path = fixtures().join("cases").join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let f: CaseFile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Case {
            name: name.to_string(),
            method: f.request.method,
            path: f.request.path,
            params: f.request.params,
            headers: f.request.headers,
            status: f.response.status,
            content_type: f.response.content_type,
            body: f.response.body,
            expected: f.expected,
        }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}: no {name}", self.name))
    }

    /// The same case answering a request with another value for one parameter (e.g. a
    /// `time` recorded as RFC 3339, asked as integer nanoseconds: the same instant to Loki).
    pub fn with_param(mut self, name: &str, value: &str) -> Case {
        for (k, v) in &mut self.params {
            if k == name {
                *v = value.to_string();
            }
        }
        self
    }

    fn matches(&self, req: &Request) -> bool {
        let sorted = |v: &[(String, String)]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        req.method == self.method
            && req.path == self.path
            && sorted(&req.params) == sorted(&self.params)
            && self.headers.iter().all(|(k, v)| req.header(k) == Some(v.as_str()))
    }

    fn reply(&self) -> Reply {
        Reply { status: self.status, content_type: self.content_type.clone(), body: self.body.clone() }
    }

    /// `expected.series` of a vector case: labels → value.
    pub fn expected_vector(&self) -> BTreeMap<BTreeMap<String, String>, f64> {
        let e = self.expected.as_ref().unwrap_or_else(|| panic!("{}: no expected values", self.name));
        assert_eq!(e["kind"], "vector", "{}", self.name);
        e["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let metric: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
                (metric, s["value"].as_f64().unwrap())
            })
            .collect()
    }
}

// ---- Synthetic answers ----

type Labels = BTreeMap<String, String>;

/// One entry as Loki holds it: stream labels, time and line.
#[derive(Clone, Debug)]
pub struct Entry {
    pub stream: BTreeMap<String, String>,
    pub ts_ns: i64,
    pub line: String,
    /// What `| json` extracts, or `None` when the line is not a JSON object.
    json: Option<BTreeMap<String, String>>,
    /// Whether the one line filter obsctl sends matches (see `line_matches`).
    quoted_number: bool,
}

impl Entry {
    pub fn new(stream: BTreeMap<String, String>, ts_ns: i64, line: String) -> Entry {
        let json = flatten_json(&line, &stream);
        let quoted_number = has_quoted_number(&line);
        Entry { stream, ts_ns, line, json, quoted_number }
    }
}

/// JSONL lines as a shipper would push them to `{job="openclaw-telemetry"}`: at their own
/// time, a line without one at the time of the line before.
pub fn entries_of(lines: &[String]) -> Vec<Entry> {
    let stream: BTreeMap<String, String> = [("job".to_string(), "openclaw-telemetry".to_string())].into();
    let mut last = 0;
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            let t = match (v["timestamp"].as_str(), v["ts"].as_i64()) {
                (Some(t), _) => {
                    chrono::DateTime::parse_from_rfc3339(t).ok().and_then(|t| t.timestamp_nanos_opt()).unwrap_or(last)
                }
                (None, Some(ms)) => ms * 1_000_000,
                _ => last,
            };
            last = t;
            Entry::new(stream.clone(), t, l.clone())
        })
        .collect()
}

/// The entries of `fixtures/loki/pushed.jsonl.gz`: exactly what the recorded Loki held.
pub fn pushed_entries() -> Vec<Entry> {
    static PUSHED: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    PUSHED.get_or_init(read_pushed).clone()
}

fn read_pushed() -> Vec<Entry> {
    let file = std::fs::File::open(fixtures().join("pushed.jsonl.gz")).expect("pushed.jsonl.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).expect("gunzip pushed.jsonl.gz");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("pushed entry");
            let stream = serde_json::from_value(v["stream"].clone()).expect("stream labels");
            let ts = v["ts_ns"].as_str().and_then(|t| t.parse().ok()).expect("ts_ns");
            Entry::new(stream, ts, v["line"].as_str().expect("line").to_string())
        })
        .collect()
}

/// Loki's `| json`: nested keys joined with `_`, names sanitised, every value a string
/// (numbers as written, booleans `true`/`false`), `null` and arrays dropped; a key that
/// is already a stream label gets `_extracted`.
fn flatten_json(line: &str, stream: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let object = value.as_object()?;
    let mut out = BTreeMap::new();
    fn walk(prefix: &str, obj: &serde_json::Map<String, serde_json::Value>, out: &mut BTreeMap<String, String>) {
        for (k, v) in obj {
            let key: String = k.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            let key = if prefix.is_empty() { key } else { format!("{prefix}_{key}") };
            match v {
                serde_json::Value::String(s) => {
                    out.insert(key, s.clone());
                }
                serde_json::Value::Number(n) => {
                    out.insert(key, n.to_string());
                }
                serde_json::Value::Bool(b) => {
                    out.insert(key, b.to_string());
                }
                serde_json::Value::Object(o) => walk(&key, o, out),
                serde_json::Value::Null | serde_json::Value::Array(_) => {}
            }
        }
    }
    walk("", object, &mut out);
    Some(
        out.into_iter()
            .map(|(k, v)| if stream.contains_key(&k) { (format!("{k}_extracted"), v) } else { (k, v) })
            .collect(),
    )
}

/// A Loki that computes its answers: the LogQL subset below, evaluated over `entries`.
/// **Synthetic, not recorded**: every answer it gives is labelled so in the tests.
pub struct SyntheticLoki {
    pub selector: String,
    pub entries: Vec<Entry>,
    /// `max_query_series`: more series in an answer is the recorded 400.
    pub max_series: usize,
    /// Which entries pass a query's stages before `unwrap`, by the text of those stages.
    passes: Mutex<std::collections::HashMap<String, Arc<Vec<bool>>>>,
}

impl SyntheticLoki {
    pub fn new(selector: &str, mut entries: Vec<Entry>) -> SyntheticLoki {
        entries.sort_by_key(|e| e.ts_ns);
        SyntheticLoki { selector: selector.to_string(), entries, max_series: 500, passes: Mutex::default() }
    }

    /// Answers `/ready` and instant queries as Loki 3.4.6 would; anything else is a 404.
    pub fn answer(&self, req: &Request) -> Reply {
        match req.path.as_str() {
            "/ready" => Reply::text(200, "ready\n"),
            "/loki/api/v1/query" => {
                let (Some(query), Some(time)) = (req.param("query"), req.param("time")) else {
                    return Reply::text(400, "missing query or time");
                };
                let Some(t) = parse_time(time) else { return Reply::text(400, "invalid time") };
                match self.eval(query, t) {
                    Ok(series) => Reply::json(vector_body(&series, t)),
                    Err(reply) => reply,
                }
            }
            _ => Reply::text(404, "404 page not found\n"),
        }
    }

    /// The answer to an instant query at `t`, by label set.
    pub fn eval(&self, query: &str, t: i64) -> Result<BTreeMap<BTreeMap<String, String>, f64>, Reply> {
        let q = parse_query(query).map_err(|e| Reply::text(400, &format!("parse error: {e}")))?;
        let mut series: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
        if q.selector != self.selector {
            return Ok(series);
        }
        let passes = self.passes(&q);
        let first = self.entries.partition_point(|e| e.ts_ns <= t - q.range_ns);
        let last = self.entries.partition_point(|e| e.ts_ns <= t);
        for (entry, _) in self.entries[first..last].iter().zip(&passes[first..last]).filter(|(_, p)| **p) {
            let Some((key, value)) = q.sample(entry)? else { continue };
            *series.entry(key).or_insert(0.0) += value;
        }
        if series.len() > self.max_series {
            return Err(Reply::text(
                400,
                &format!("maximum of series ({}) reached for a single query", self.max_series),
            ));
        }
        Ok(series)
    }
}

impl SyntheticLoki {
    fn passes(&self, q: &LogQuery) -> Arc<Vec<bool>> {
        let mut cache = self.passes.lock().unwrap();
        if let Some(p) = cache.get(&q.prefix_text) {
            return p.clone();
        }
        let start = State { parsed: false, error: None, dropped: &[], value: 1.0 };
        let p: Arc<Vec<bool>> =
            Arc::new(self.entries.iter().map(|e| LogQuery::run(q.prefix(), e, start).is_some()).collect());
        cache.insert(q.prefix_text.clone(), p.clone());
        p
    }
}

fn parse_time(t: &str) -> Option<i64> {
    t.parse().ok().or_else(|| chrono::DateTime::parse_from_rfc3339(t).ok()?.timestamp_nanos_opt())
}

fn vector_body(series: &BTreeMap<BTreeMap<String, String>, f64>, t: i64) -> String {
    let time = (t.div_euclid(1_000_000)) as f64 / 1e3;
    let result: Vec<serde_json::Value> = series
        .iter()
        .map(|(metric, v)| serde_json::json!({"metric": metric, "value": [time, format!("{v}")]}))
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result, "stats": {}}})
        .to_string()
}

/// `sum [by (…)] (count_over_time|sum_over_time(<selector> <stages> [<range>]))`.
struct LogQuery {
    /// The query's text up to its `unwrap` (or range): the key of the prefix cache.
    prefix_text: String,
    by: Option<Vec<String>>,
    sum_of_values: bool,
    selector: String,
    stages: Vec<Stage>,
    range_ns: i64,
}

enum Stage {
    Line {
        negate: bool,
        re: String,
    },
    Json,
    /// Label matchers joined by `or`.
    Labels(Vec<Matcher>),
    Drop(Vec<String>),
    Unwrap(String),
}

struct Matcher {
    name: String,
    op: String,
    value: String,
}

/// Where a line stands in the pipeline.
#[derive(Clone, Copy)]
struct State<'q> {
    parsed: bool,
    error: Option<&'static str>,
    dropped: &'q [String],
    value: f64,
}

impl LogQuery {
    /// The stages before `unwrap`: a filter that depends on the entry only, so its verdict
    /// is cached per entry across queries (the synthetic Loki stays fast in debug builds).
    fn prefix(&self) -> &[Stage] {
        let at = self.stages.iter().position(|s| matches!(s, Stage::Unwrap(_))).unwrap_or(self.stages.len());
        &self.stages[..at]
    }

    /// Runs `stages` on an entry; `None` when one drops it.
    fn run<'q>(stages: &'q [Stage], entry: &Entry, mut st: State<'q>) -> Option<State<'q>> {
        for stage in stages {
            match stage {
                Stage::Line { negate, re } => {
                    if line_matches(re, entry) == *negate {
                        return None;
                    }
                }
                Stage::Json => match &entry.json {
                    Some(_) => st.parsed = true,
                    None => st.error = Some("JSONParserErr"),
                },
                Stage::Labels(any) => {
                    if !any.iter().any(|m| m.matches(label(entry, &m.name, st))) {
                        return None;
                    }
                }
                Stage::Drop(names) => st.dropped = names,
                Stage::Unwrap(field) => match label(entry, field, st) {
                    // Loki skips a line without the field.
                    "" => return None,
                    v => match v.parse::<f64>() {
                        Ok(v) => st.value = v,
                        Err(_) => st.error = st.error.or(Some("SampleExtractionErr")),
                    },
                },
            }
        }
        Some(st)
    }

    /// The entry's group (the `by` labels it has) and value, given that it passed the
    /// prefix; `None` when a later stage drops it.
    fn sample(&self, entry: &Entry) -> Result<Option<(Labels, f64)>, Reply> {
        let json = self.prefix().iter().any(|s| matches!(s, Stage::Json));
        let dropped = self.prefix().iter().rev().find_map(|s| match s {
            Stage::Drop(names) => Some(names.as_slice()),
            _ => None,
        });
        let start = State {
            parsed: json && entry.json.is_some(),
            error: (json && entry.json.is_none()).then_some("JSONParserErr"),
            dropped: dropped.unwrap_or(&[]),
            value: 1.0,
        };
        let Some(st) = LogQuery::run(&self.stages[self.prefix().len()..], entry, start) else { return Ok(None) };
        if st.error == Some("SampleExtractionErr") {
            return Err(Reply::text(400, "pipeline error: 'SampleExtractionErr' (synthetic)"));
        }
        let group = match &self.by {
            Some(by) => by
                .iter()
                .map(|name| (name.clone(), label(entry, name, st).to_string()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            None => BTreeMap::new(),
        };
        Ok(Some((group, st.value)))
    }
}

/// A label's value at this point of the pipeline; `""` when it has none.
fn label<'e>(entry: &'e Entry, name: &str, st: State) -> &'e str {
    match name {
        "__error__" => st.error.unwrap_or(""),
        _ if st.dropped.iter().any(|d| d == name) => "",
        _ => entry
            .json
            .as_ref()
            .filter(|_| st.parsed)
            .and_then(|j| j.get(name))
            .or_else(|| entry.stream.get(name))
            .map_or("", String::as_str),
    }
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match self.op.as_str() {
            "=" => v == self.value,
            "!=" => v != self.value,
            "=~" => regex_matches(&self.value, v),
            "!~" => !regex_matches(&self.value, v),
            op => panic!("unknown operator {op}"),
        }
    }
}

/// The regexes obsctl sends (`src/source/logql.rs`), as hand-written predicates; this
/// synthetic Loki has no regex engine, so any other regex is a test failure.
fn regex_matches(re: &str, v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let count = |s: &str| s.is_empty() || s == "0" || (digits(s) && !s.starts_with('0'));
    match re {
        "(0|[1-9][0-9]*)?" => count(v),
        "((0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?)?" => {
            if v.is_empty() {
                return true;
            }
            let (mantissa, exponent) = match v.find(['e', 'E']) {
                Some(i) => (&v[..i], Some(&v[i + 1..])),
                None => (v, None),
            };
            let (int, frac) = match mantissa.split_once('.') {
                Some((i, f)) => (i, Some(f)),
                None => (mantissa, None),
            };
            let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
            count(int) && !int.is_empty() && frac.is_none_or(digits) && exp_ok
        }
        "(?i)(success|ok)?" => v.is_empty() || v.eq_ignore_ascii_case("success") || v.eq_ignore_ascii_case("ok"),
        _ => panic!("the synthetic Loki does not know the regex {re:?}"),
    }
}

/// The line filter obsctl sends: a cost or token count written as a JSON string.
fn line_matches(re: &str, entry: &Entry) -> bool {
    assert_eq!(
        re, r#""(costUsd|estimatedCostUsd|inputTokens|outputTokens)"\s*:\s*""#,
        "the synthetic Loki does not know the line filter {re:?}"
    );
    entry.quoted_number
}

fn has_quoted_number(line: &str) -> bool {
    ["costUsd", "estimatedCostUsd", "inputTokens", "outputTokens"].iter().any(|key| {
        let quoted = format!("\"{key}\"");
        line.match_indices(&quoted).any(|(i, _)| {
            let rest = line[i + quoted.len()..].trim_start();
            rest.strip_prefix(':').is_some_and(|r| r.trim_start().starts_with('"'))
        })
    })
}

// -- A parser for that subset --

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn ws(&mut self) {
        while self.rest().starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected {token:?} at {:?}", self.rest()))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let n = self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest().len());
        if n == 0 {
            return Err(format!("expected a name at {:?}", self.rest()));
        }
        let id = self.rest()[..n].to_string();
        self.at += n;
        Ok(id)
    }

    fn string(&mut self) -> Result<String, String> {
        self.ws();
        if let Some(raw) = self.rest().strip_prefix('`') {
            let end = raw.find('`').ok_or("unterminated `")?;
            self.at += end + 2;
            return Ok(raw[..end].to_string());
        }
        let mut chars = self.rest().char_indices();
        if chars.next().map(|c| c.1) != Some('"') {
            return Err(format!("expected a string at {:?}", self.rest()));
        }
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next().ok_or("dangling escape")?.1),
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn selector(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.at;
        self.expect("{")?;
        let mut in_string = false;
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                '}' if !in_string => {
                    self.at += i + 1;
                    return Ok(self.s[start..self.at].to_string());
                }
                _ => {}
            }
        }
        Err("unterminated selector".into())
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        let name = self.ident()?;
        self.ws();
        let op =
            ["!=", "!~", "=~", "="].into_iter().find(|op| self.rest().starts_with(op)).ok_or("expected an operator")?;
        self.at += op.len();
        Ok(Matcher { name, op: op.into(), value: self.string()? })
    }
}

fn parse_query(s: &str) -> Result<LogQuery, String> {
    let mut c = Cursor { s, at: 0 };
    c.expect("sum")?;
    let by = if c.eat("by") {
        c.expect("(")?;
        let mut labels = vec![c.ident()?];
        while c.eat(",") {
            labels.push(c.ident()?);
        }
        c.expect(")")?;
        Some(labels)
    } else {
        None
    };
    c.expect("(")?;
    let sum_of_values = if c.eat("sum_over_time(") {
        true
    } else {
        c.expect("count_over_time(")?;
        false
    };
    let pipeline_at = c.at;
    let selector = c.selector()?;
    let mut stages = Vec::new();
    let mut prefix_end = None;
    loop {
        if c.eat("|~") || c.eat("!~") {
            let negate = c.s[..c.at].ends_with("!~");
            stages.push(Stage::Line { negate, re: c.string()? });
        } else if c.eat("|") {
            if c.eat("json") {
                stages.push(Stage::Json);
            } else if c.eat("drop") {
                let mut names = vec![c.ident()?];
                while c.eat(",") {
                    names.push(c.ident()?);
                }
                stages.push(Stage::Drop(names));
            } else if c.eat("unwrap") {
                prefix_end.get_or_insert(c.at);
                stages.push(Stage::Unwrap(c.ident()?));
            } else if c.eat("(") {
                let mut any = vec![c.matcher()?];
                while c.eat("or") {
                    any.push(c.matcher()?);
                }
                c.expect(")")?;
                stages.push(Stage::Labels(any));
            } else {
                stages.push(Stage::Labels(vec![c.matcher()?]));
            }
        } else {
            break;
        }
    }
    let prefix_text = s[pipeline_at..prefix_end.unwrap_or(c.at)].to_string();
    c.expect("[")?;
    let end = c.rest().find(']').ok_or("unterminated range")?;
    let range_ns = parse_duration(&c.rest()[..end])?;
    c.at += end + 1;
    c.expect(")")?;
    c.expect(")")?;
    if !c.rest().trim().is_empty() {
        return Err(format!("unexpected {:?}", c.rest()));
    }
    if sum_of_values != stages.iter().any(|s| matches!(s, Stage::Unwrap(_))) {
        return Err("sum_over_time needs an unwrap, count_over_time none".into());
    }
    Ok(LogQuery { prefix_text, by, sum_of_values, selector, stages, range_ns })
}

fn parse_duration(d: &str) -> Result<i64, String> {
    let split = d.find(|c: char| !c.is_ascii_digit()).ok_or("duration without unit")?;
    let n: i64 = d[..split].parse().map_err(|_| format!("bad duration {d}"))?;
    let unit = match &d[split..] {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        u => return Err(format!("unknown unit {u}")),
    };
    Ok(n * unit)
}
