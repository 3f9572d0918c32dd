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
//!   parses and evaluates the subset of LogQL that obsctl sends (and the recorded cases
//!   use) over a list of pushed entries, with Loki's `| json` rules, RE2-like regexes (the
//!   `regex` crate), its refusal of `ns` ranges, and its series limit as Loki 3.4 applies
//!   it: to every sub-query of its time splitting for the queries its frontend splits
//!   (`split_ns`, default 24 h as recorded; `None` for a server without splitting, as 14a),
//!   to every intermediate vector of the others. It is checked against the recorded answers
//!   (`synthetic_loki_agrees_with_the_recorded_answers`), and lets `answer()` run end to
//!   end on requests nobody recorded.

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
    /// What `| json` extracts from a line that is not JSON before it meets the error:
    /// Loki's parser reads the members one by one, so `{"type":"model_usage","costUsd":`
    /// is a `type` with `__error__` (recorded in 22-*).
    partial: BTreeMap<String, String>,
}

impl Entry {
    pub fn new(stream: BTreeMap<String, String>, ts_ns: i64, line: String) -> Entry {
        let json = flatten_json(&line, &stream);
        let partial = if json.is_none() { partial_json(&line, &stream) } else { BTreeMap::new() };
        Entry { stream, ts_ns, line, json, partial }
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
    Some(flatten_object(value.as_object()?, stream))
}

/// The members of a broken JSON object up to the last one that is whole: the longest
/// prefix ending before a `,` that is an object once closed.
fn partial_json(line: &str, stream: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if !line.trim_start().starts_with('{') {
        return BTreeMap::new();
    }
    line.match_indices(',')
        .rev()
        .find_map(|(i, _)| {
            let value: serde_json::Value = serde_json::from_str(&format!("{}}}", &line[..i])).ok()?;
            Some(flatten_object(value.as_object()?, stream))
        })
        .unwrap_or_default()
}

fn flatten_object(
    object: &serde_json::Map<String, serde_json::Value>,
    stream: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
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
    out.into_iter().map(|(k, v)| if stream.contains_key(&k) { (format!("{k}_extracted"), v) } else { (k, v) }).collect()
}

/// A Loki that computes its answers: the LogQL subset below, evaluated over `entries`.
/// **Synthetic, not recorded**: every answer it gives is labelled so in the tests.
pub struct SyntheticLoki {
    pub selector: String,
    pub entries: Vec<Entry>,
    /// `max_query_series`: more series in a (sub-)query is the recorded 400.
    pub max_series: usize,
    /// `split_queries_by_interval` (and its instant twin); `None`: no splitting.
    pub split_ns: Option<i64>,
    regexes: Mutex<std::collections::HashMap<String, Arc<regex::Regex>>>,
}

const HOUR: i64 = 3_600_000_000_000;

impl SyntheticLoki {
    pub fn new(selector: &str, mut entries: Vec<Entry>) -> SyntheticLoki {
        entries.sort_by_key(|e| e.ts_ns);
        SyntheticLoki {
            selector: selector.to_string(),
            entries,
            max_series: 500,
            split_ns: Some(24 * HOUR),
            regexes: Mutex::default(),
        }
    }

    /// Answers `/ready`, `/config` (its limits only) and instant queries as Loki 3.4.6
    /// would; anything else is a 404.
    pub fn answer(&self, req: &Request) -> Reply {
        match req.path.as_str() {
            "/ready" => Reply::text(200, "ready\n"),
            // The two keys of the running configuration obsctl reads, as Loki writes them.
            "/config" => {
                let split = self.split_ns.map_or("0s".to_string(), |ns| format!("{}s", ns / 1_000_000_000));
                Reply::text(
                    200,
                    &format!(
                        "server:\n  http_listen_port: 3100\nlimits_config:\n  max_query_series: {}\n  \
                         split_queries_by_interval: {split}\n  split_instant_metric_queries_by_interval: {split}\n",
                        self.max_series
                    ),
                )
            }
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
    pub fn eval(&self, query: &str, t: i64) -> Result<Vector, Reply> {
        let expr = parse_query(query).map_err(|e| Reply::text(400, &format!("parse error : {e}")))?;
        let split = match self.split_ns {
            Some(interval) if splittable(&expr) && max_range(&expr) > interval => Some(interval),
            _ => None,
        };
        if let Some(interval) = split {
            // Loki's frontend runs the innermost aggregations per split interval: each of
            // those sub-queries is held to the limit, the merged whole only at the end.
            for (by, range) in innermost(&expr) {
                let mut end = t;
                while end > t - range.range_ns {
                    let start = (end - interval).max(t - range.range_ns);
                    let piece = RangeAgg { range_ns: end - start, ..range.clone() };
                    let v = self.range_vector(&piece, end, by.as_deref())?;
                    self.limit(&v)?;
                    end = start;
                }
            }
        }
        // Unsplit, Loki's frontend sends the shardable part of a query down as its own
        // sub-query (`sum by (…)` of a range aggregation), whose answer is held to the
        // limit; a query with no shardable part runs whole, and only its answer is.
        let v = self.vector(&expr, t, split.is_none() && shardable(&expr))?;
        self.limit(&v)?;
        Ok(v)
    }

    fn limit(&self, v: &Vector) -> Result<(), Reply> {
        if v.len() > self.max_series {
            return Err(Reply::text(
                400,
                &format!("maximum of series ({}) reached for a single query", self.max_series),
            ));
        }
        Ok(())
    }

    fn regex(&self, re: &str, anchored: bool) -> Result<Arc<regex::Regex>, Reply> {
        let key = format!("{anchored}{re}");
        let mut cache = self.regexes.lock().unwrap();
        if let Some(r) = cache.get(&key) {
            return Ok(r.clone());
        }
        let text = if anchored { format!("^(?:{re})$") } else { re.to_string() };
        let r = Arc::new(
            regex::Regex::new(&text)
                .map_err(|e| Reply::text(400, &format!("parse error : invalid regex {re}: {e}")))?,
        );
        cache.insert(key, r.clone());
        Ok(r)
    }

    /// Evaluates an expression; `checked`: hold every intermediate vector to the limit.
    fn vector(&self, e: &Ast, t: i64, checked: bool) -> Result<Vector, Reply> {
        let v = match e {
            Ast::Range(r) => self.range_vector(r, t, None)?,
            Ast::Agg { op, by, param, inner } => {
                // Loki pushes a `sum by` grouping down into the range aggregation below it.
                let inner_v = match (op.as_str(), inner.as_ref()) {
                    ("sum", Ast::Range(r)) => self.range_vector(r, t, Some(by.as_deref().unwrap_or(&[])))?,
                    _ => self.vector(inner, t, checked)?,
                };
                aggregate(op, by.as_deref(), *param, inner_v)
            }
            Ast::LabelReplace { inner, dst, repl, src, re } => {
                let re = self.regex(re, true)?;
                let mut out = Vector::new();
                for (mut labels, v) in self.vector(inner, t, checked)? {
                    let value = labels.get(src).cloned().unwrap_or_default();
                    if let Some(caps) = re.captures(&value) {
                        let mut replaced = String::new();
                        caps.expand(repl, &mut replaced);
                        if replaced.is_empty() {
                            labels.remove(dst);
                        } else {
                            labels.insert(dst.clone(), replaced);
                        }
                    }
                    *out.entry(labels).or_insert(0.0) += v;
                }
                out
            }
            Ast::Or(a, b) => {
                let mut left = self.vector(a, t, checked)?;
                for (labels, v) in self.vector(b, t, checked)? {
                    left.entry(labels).or_insert(v);
                }
                left
            }
            Ast::Pow(a, x) => self.vector(a, t, checked)?.into_iter().map(|(l, v)| (l, v.powf(*x))).collect(),
            Ast::AtLeast(a, x) => self.vector(a, t, checked)?.into_iter().filter(|(_, v)| v >= x).collect(),
        };
        if checked {
            self.limit(&v)?;
        }
        Ok(v)
    }

    /// A range aggregation at `t` over `(t − range, t]`, grouped by `by` (all labels when
    /// `None`).
    fn range_vector(&self, r: &RangeAgg, t: i64, by: Option<&[String]>) -> Result<Vector, Reply> {
        if r.selector != self.selector {
            return Ok(Vector::new());
        }
        // The range aggregation's own grouping, else the `sum by` pushed down onto it.
        let by = r.by.as_deref().or(by);
        let first = self.entries.partition_point(|e| e.ts_ns <= t - r.range_ns);
        let last = self.entries.partition_point(|e| e.ts_ns <= t);
        // Per series: the number of values, their sum and the sum of their squares.
        let mut moments: BTreeMap<Labels, (f64, f64, f64)> = BTreeMap::new();
        for entry in &self.entries[first..last] {
            let Some((labels, value)) = self.run(&r.stages, entry)? else { continue };
            let key = match by {
                Some(by) => by.iter().filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone()))).collect(),
                None => labels,
            };
            let m = moments.entry(key).or_insert((0.0, 0.0, 0.0));
            *m = (m.0 + 1.0, m.1 + value, m.2 + value * value);
        }
        Ok(moments
            .into_iter()
            .map(|(labels, (n, sum, squares))| {
                let v = match r.op {
                    RangeOp::Count => n,
                    RangeOp::Sum => sum,
                    RangeOp::Stdvar => (squares / n - (sum / n).powi(2)).max(0.0),
                };
                (labels, v)
            })
            .collect())
    }

    /// Runs the pipeline on one entry: its labels (empty values removed) and its unwrapped
    /// value, `None` when a stage drops it.
    fn run(&self, stages: &[Stage], entry: &Entry) -> Result<Option<(Labels, f64)>, Reply> {
        let mut labels: Labels = entry.stream.clone();
        let mut value = 1.0;
        for stage in stages {
            match stage {
                Stage::Line { negate, re } => {
                    if self.regex(re, false)?.is_match(&entry.line) == *negate {
                        return Ok(None);
                    }
                }
                Stage::Json => match &entry.json {
                    Some(j) => labels.extend(j.iter().map(|(k, v)| (k.clone(), v.clone()))),
                    None => {
                        labels.extend(entry.partial.iter().map(|(k, v)| (k.clone(), v.clone())));
                        labels.insert("__error__".into(), "JSONParserErr".into());
                        labels.insert("__error_details__".into(), "invalid JSON".into());
                    }
                },
                Stage::Filter(f) => {
                    if !self.filter(f, &labels)? {
                        return Ok(None);
                    }
                }
                Stage::Drop(names) => names.iter().for_each(|n| {
                    labels.remove(n);
                }),
                Stage::Format(name, template) => match render_template(template, &labels) {
                    Some(v) if !v.is_empty() => {
                        labels.insert(name.clone(), v);
                    }
                    Some(_) => {
                        labels.remove(name);
                    }
                    None => panic!("the synthetic Loki does not know the template {template:?}"),
                },
                Stage::Unwrap(field) => match labels.remove(field) {
                    // Loki skips a line without the field.
                    None => return Ok(None),
                    Some(v) => match v.parse::<f64>() {
                        Ok(v) => value = v,
                        Err(_) => {
                            labels.insert("__error__".into(), "SampleExtractionErr".into());
                        }
                    },
                },
            }
        }
        if labels.get("__error__").is_some_and(|e| e == "SampleExtractionErr") {
            return Err(Reply::text(400, "pipeline error: 'SampleExtractionErr' (synthetic)"));
        }
        labels.remove("__error_details__");
        Ok(Some((labels, value)))
    }

    fn filter(&self, f: &Filter, labels: &Labels) -> Result<bool, Reply> {
        Ok(match f {
            Filter::And(a, b) => self.filter(a, labels)? && self.filter(b, labels)?,
            Filter::Or(a, b) => self.filter(a, labels)? || self.filter(b, labels)?,
            Filter::Match { name, op, value } => {
                let v = labels.get(name).map_or("", String::as_str);
                match op.as_str() {
                    "=" => v == value,
                    "!=" => v != value,
                    "=~" => self.regex(value, true)?.is_match(v),
                    "!~" => !self.regex(value, true)?.is_match(v),
                    op => panic!("unknown operator {op}"),
                }
            }
        })
    }
}

pub type Vector = BTreeMap<Labels, f64>;

fn aggregate(op: &str, by: Option<&[String]>, param: Option<f64>, v: Vector) -> Vector {
    match op {
        "sum" | "count" => {
            let mut out = Vector::new();
            for (labels, x) in v {
                let key: Labels = match by {
                    Some(by) => by.iter().filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone()))).collect(),
                    None => Labels::new(),
                };
                *out.entry(key).or_insert(0.0) += if op == "sum" { x } else { 1.0 };
            }
            out
        }
        "topk" | "bottomk" => {
            let k = param.unwrap_or(0.0) as usize;
            let mut all: Vec<(Labels, f64)> = v.into_iter().collect();
            all.sort_by(|a, b| if op == "topk" { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
            all.truncate(k);
            all.into_iter().collect()
        }
        op => panic!("the synthetic Loki does not know the aggregation {op}"),
    }
}

/// The templates obsctl sends, as hand-written functions; any other is a test failure.
fn render_template(template: &str, labels: &Labels) -> Option<String> {
    if !template.contains("{{") {
        return Some(template.to_string());
    }
    if template == obsctl::source::logql::AGENT_TEMPLATE {
        let get = |n: &str| labels.get(n).map_or("", String::as_str);
        let id = get("agentId");
        if !id.is_empty() && id != "unknown" {
            return Some(id.to_string());
        }
        let key = get("sessionKey");
        return Some(match key.strip_prefix("agent:") {
            Some(rest) => match rest.split(':').next() {
                Some(a) if !a.is_empty() => a.to_string(),
                _ => "unknown".to_string(),
            },
            None => "unknown".to_string(),
        });
    }
    None
}

/// Loki 3.4's `isSplittableByRange`.
fn splittable(e: &Ast) -> bool {
    match e {
        Ast::Agg { op, inner, .. } => matches!(op.as_str(), "sum" | "count" | "topk") && splittable(inner),
        Ast::Range(r) => r.op.shardable(),
        Ast::LabelReplace { inner, .. } => splittable(inner),
        Ast::Or(a, _) | Ast::Pow(a, _) | Ast::AtLeast(a, _) => splittable(a),
    }
}

/// Whether any range aggregation of the expression is one Loki 3.4 shards.
fn shardable(e: &Ast) -> bool {
    innermost(e).iter().any(|(_, r)| r.op.shardable())
}

fn max_range(e: &Ast) -> i64 {
    match e {
        Ast::Range(r) => r.range_ns,
        Ast::Agg { inner, .. } | Ast::LabelReplace { inner, .. } | Ast::Pow(inner, _) | Ast::AtLeast(inner, _) => {
            max_range(inner)
        }
        Ast::Or(a, b) => max_range(a).max(max_range(b)),
    }
}

/// The range aggregations of an expression with the grouping of the `sum` right above
/// them: what Loki's frontend sends down per split interval.
fn innermost(e: &Ast) -> Vec<(Option<Vec<String>>, RangeAgg)> {
    match e {
        Ast::Agg { op, by, inner, .. } if op == "sum" => match inner.as_ref() {
            Ast::Range(r) => vec![(Some(by.clone().unwrap_or_default()), r.clone())],
            other => innermost(other),
        },
        Ast::Range(r) => vec![(None, r.clone())],
        Ast::Agg { inner, .. } | Ast::LabelReplace { inner, .. } | Ast::Pow(inner, _) | Ast::AtLeast(inner, _) => {
            innermost(inner)
        }
        Ast::Or(a, b) => innermost(a).into_iter().chain(innermost(b)).collect(),
    }
}

fn parse_time(t: &str) -> Option<i64> {
    t.parse().ok().or_else(|| chrono::DateTime::parse_from_rfc3339(t).ok()?.timestamp_nanos_opt())
}

fn vector_body(series: &Vector, t: i64) -> String {
    let time = (t.div_euclid(1_000_000)) as f64 / 1e3;
    let result: Vec<serde_json::Value> = series
        .iter()
        .map(|(metric, v)| serde_json::json!({"metric": metric, "value": [time, format!("{v}")]}))
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result, "stats": {}}})
        .to_string()
}

// -- The subset of LogQL, parsed --

#[derive(Clone, Debug)]
enum Ast {
    Range(RangeAgg),
    Agg { op: String, by: Option<Vec<String>>, param: Option<f64>, inner: Box<Ast> },
    LabelReplace { inner: Box<Ast>, dst: String, repl: String, src: String, re: String },
    Or(Box<Ast>, Box<Ast>),
    Pow(Box<Ast>, f64),
    AtLeast(Box<Ast>, f64),
}

#[derive(Clone, Debug)]
struct RangeAgg {
    op: RangeOp,
    selector: String,
    stages: Vec<Stage>,
    range_ns: i64,
    /// `… by (labels)` after the range aggregation's parentheses.
    by: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeOp {
    Count,
    Sum,
    /// The population variance of the unwrapped values (only `stdvar_over_time` of a
    /// constant is sent, whose answer is 0 per series).
    Stdvar,
}

impl RangeOp {
    /// Loki 3.4's `shardableOps` (and `splittableRangeVectorOp`): `stdvar` is in neither.
    fn shardable(self) -> bool {
        self != RangeOp::Stdvar
    }
}

#[derive(Clone, Debug)]
enum Stage {
    Line { negate: bool, re: String },
    Json,
    Filter(Filter),
    Drop(Vec<String>),
    Format(String, String),
    Unwrap(String),
}

#[derive(Clone, Debug)]
enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Match { name: String, op: String, value: String },
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn ws(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self, token: &str) -> bool {
        self.ws();
        self.rest().starts_with(token)
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.peek(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    /// A keyword: `token` not followed by a name character.
    fn eat_word(&mut self, token: &str) -> bool {
        self.ws();
        let r = self.rest();
        if r.starts_with(token) && !r[token.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
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

    fn number(&mut self) -> Result<f64, String> {
        self.ws();
        let n = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            .unwrap_or(self.rest().len());
        let v = self.rest()[..n].parse().map_err(|_| format!("expected a number at {:?}", self.rest()))?;
        self.at += n;
        Ok(v)
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
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    c => out.push(c),
                },
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

    fn names(&mut self) -> Result<Vec<String>, String> {
        let mut names = vec![self.ident()?];
        while self.eat(",") {
            names.push(self.ident()?);
        }
        Ok(names)
    }

    fn expr(&mut self) -> Result<Ast, String> {
        let mut left = self.comparison()?;
        while self.eat_word("or") {
            left = Ast::Or(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Ast, String> {
        let left = self.power()?;
        if self.eat(">=") {
            return Ok(Ast::AtLeast(Box::new(left), self.number()?));
        }
        Ok(left)
    }

    fn power(&mut self) -> Result<Ast, String> {
        let left = self.primary()?;
        if self.eat("^") {
            return Ok(Ast::Pow(Box::new(left), self.number()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Ast, String> {
        if self.eat("(") {
            let e = self.expr()?;
            self.expect(")")?;
            return Ok(e);
        }
        for (name, op) in [
            ("count_over_time", RangeOp::Count),
            ("sum_over_time", RangeOp::Sum),
            ("stdvar_over_time", RangeOp::Stdvar),
        ] {
            if self.eat_word(name) {
                self.expect("(")?;
                return self.range(op);
            }
        }
        if self.eat_word("label_replace") {
            self.expect("(")?;
            let inner = self.expr()?;
            let mut args = Vec::new();
            for _ in 0..4 {
                self.expect(",")?;
                args.push(self.string()?);
            }
            self.expect(")")?;
            let [dst, repl, src, re]: [String; 4] = args.try_into().map_err(|_| "label_replace args")?;
            return Ok(Ast::LabelReplace { inner: Box::new(inner), dst, repl, src, re });
        }
        for op in ["sum", "count", "topk", "bottomk"] {
            if self.eat_word(op) {
                let mut by = None;
                if self.eat_word("by") {
                    self.expect("(")?;
                    by = Some(if self.peek(")") { Vec::new() } else { self.names()? });
                    self.expect(")")?;
                }
                self.expect("(")?;
                let param = if matches!(op, "topk" | "bottomk") {
                    let k = self.number()?;
                    self.expect(",")?;
                    Some(k)
                } else {
                    None
                };
                let inner = self.expr()?;
                self.expect(")")?;
                return Ok(Ast::Agg { op: op.to_string(), by, param, inner: Box::new(inner) });
            }
        }
        Err(format!("unexpected {:?}", self.rest()))
    }

    fn range(&mut self, op: RangeOp) -> Result<Ast, String> {
        let selector = self.selector()?;
        let mut stages = Vec::new();
        loop {
            if self.eat("|~") || self.eat("!~") {
                let negate = self.s[..self.at].ends_with("!~");
                stages.push(Stage::Line { negate, re: self.string()? });
            } else if self.eat("|=") || self.eat("!=") {
                let negate = self.s[..self.at].ends_with("!=");
                stages.push(Stage::Line { negate, re: regex::escape(&self.string()?) });
            } else if self.eat("|") {
                if self.eat_word("json") {
                    stages.push(Stage::Json);
                } else if self.eat_word("drop") {
                    stages.push(Stage::Drop(self.names()?));
                } else if self.eat_word("unwrap") {
                    stages.push(Stage::Unwrap(self.ident()?));
                } else if self.eat_word("label_format") {
                    let name = self.ident()?;
                    self.expect("=")?;
                    stages.push(Stage::Format(name, self.string()?));
                } else {
                    stages.push(Stage::Filter(self.filter_or()?));
                }
            } else {
                break;
            }
        }
        self.expect("[")?;
        let end = self.rest().find(']').ok_or("unterminated range")?;
        let range_ns = parse_duration(&self.rest()[..end])?;
        self.at += end + 1;
        self.expect(")")?;
        let mut by = None;
        if self.eat_word("by") {
            if op == RangeOp::Count {
                return Err("grouping not allowed for count_over_time aggregation".into());
            }
            self.expect("(")?;
            by = Some(self.names()?);
            self.expect(")")?;
        }
        if (op != RangeOp::Count) != stages.iter().any(|s| matches!(s, Stage::Unwrap(_))) {
            return Err("sum_over_time and stdvar_over_time need an unwrap, count_over_time none".into());
        }
        Ok(Ast::Range(RangeAgg { op, selector, stages, range_ns, by }))
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        let mut left = self.filter_and()?;
        while self.eat_word("or") {
            left = Filter::Or(Box::new(left), Box::new(self.filter_and()?));
        }
        Ok(left)
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        let mut left = self.filter_atom()?;
        while self.eat_word("and") || self.eat(",") {
            left = Filter::And(Box::new(left), Box::new(self.filter_atom()?));
        }
        Ok(left)
    }

    fn filter_atom(&mut self) -> Result<Filter, String> {
        if self.eat("(") {
            let f = self.filter_or()?;
            self.expect(")")?;
            return Ok(f);
        }
        let name = self.ident()?;
        self.ws();
        let op =
            ["!=", "!~", "=~", "="].into_iter().find(|op| self.rest().starts_with(op)).ok_or("expected an operator")?;
        self.at += op.len();
        Ok(Filter::Match { name, op: op.into(), value: self.string()? })
    }
}

fn parse_query(s: &str) -> Result<Ast, String> {
    let mut c = Cursor { s, at: 0 };
    let e = c.expr()?;
    if !c.rest().trim().is_empty() {
        return Err(format!("unexpected {:?}", c.rest()));
    }
    Ok(e)
}

/// Loki's durations (Prometheus' `model.ParseDuration`): `ms` and up, never `ns` or `us`.
fn parse_duration(d: &str) -> Result<i64, String> {
    let split = d.find(|c: char| !c.is_ascii_digit()).ok_or("duration without unit")?;
    let n: i64 = d[..split].parse().map_err(|_| format!("bad duration {d}"))?;
    let unit = match &d[split..] {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        "y" => 365 * 86_400_000_000_000,
        u => return Err(format!("unknown unit {u:?} in duration {d:?}")),
    };
    Ok(n * unit)
}
