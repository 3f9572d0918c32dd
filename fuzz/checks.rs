//! What each fuzz target checks, in plain Rust: the fuzz targets (`fuzz_targets/*.rs`) and
//! the stable test `tests/fuzz_regressions.rs` both include this file (`#[path]`), so the
//! seeds and regressions replayed by `cargo test` go through exactly the fuzzers' checks.
//!
//! Every check panics on a broken invariant and otherwise answers whether the input was
//! accepted (`true`) or refused (`false`); the test uses that for its `ok-*` and `err-*`
//! seeds, which must be accepted and refused respectively.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, TimeZone};
use chrono_tz::Tz;
use obsctl::event::{parse_line, parse_line_flat, parse_line_with_serde, parse_timestamp, parse_timestamp_fast};
use obsctl::event::{Event, EventKind};
use obsctl::window::{self, Window, WindowKind, WindowSpec, NANOS_PER_SEC};

/// Zones with odd offsets and DST rules, for the checks that need one.
pub const ZONES: [Tz; 10] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Asia__Kolkata,
    Tz::Australia__Lord_Howe,
    Tz::Pacific__Chatham,
    Tz::America__St_Johns,
    Tz::America__Santiago,
    Tz::Pacific__Kiritimati,
    Tz::America__Havana,
];

// ---------------------------------------------------------------------------------------
// line

/// One JSONL line, all three shapes: the fast path agrees with serde_json, `parse_line`
/// with both, an accepted event is within its documented bounds, and it reads back the
/// same once written again as a shape-A line.
pub fn line(line: &[u8]) -> bool {
    // The reader never hands over a line with a newline in it.
    if line.contains(&b'\n') {
        return false;
    }
    let reference = parse_line_with_serde(line);
    if let Some(fast) = parse_line_flat(line) {
        assert_eq!(fast, reference, "the fast path disagrees with serde_json");
    }
    let event = parse_line(line);
    assert_eq!(event, reference, "parse_line disagrees with serde_json");
    let Ok(event) = event else { return false };

    assert!(event.time >= 0, "an event before 1970: {}", event.time);
    if let Some(cost) = event.cost {
        assert!(cost.pico() >= 0, "a negative cost");
    }
    if event.kind != EventKind::ModelCall {
        assert_eq!((event.cost, event.input_tokens, event.output_tokens), (None, 0, 0), "tokens outside a model call");
    }
    for (what, s) in [("agent", &event.agent), ("model", &event.model), ("provider", &event.provider)] {
        assert!(!s.is_empty(), "an empty {what}");
    }
    assert!(!event.provider.bytes().any(|b| b.is_ascii_uppercase()), "provider not lowercased: {}", event.provider);

    // Normalising is idempotent: written back as shape A, the event reads the same (a model
    // with a `/` in it would be split again, so it is left out of the comparison).
    let again = shape_a_line(&event);
    let reread = parse_line(again.as_bytes()).unwrap_or_else(|e| panic!("{again}: {e}"));
    assert_eq!(reread.kind, event.kind, "{again}");
    assert_eq!(reread.time, event.time, "{again}");
    assert_eq!(reread.session, event.session, "{again}");
    assert_eq!(reread.agent, event.agent, "{again}");
    assert_eq!(reread.provider, event.provider, "{again}");
    if !event.model.contains('/') {
        assert_eq!(reread.model, event.model, "{again}");
    }
    assert_eq!(reread.experiment, event.experiment, "{again}");
    assert_eq!(reread.variant, event.variant, "{again}");
    assert_eq!((reread.input_tokens, reread.output_tokens), (event.input_tokens, event.output_tokens), "{again}");
    assert_eq!(reread.failed, event.failed, "{again}");
    match (reread.cost, event.cost) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.pico(), b.pico());
            assert!((a - b).abs() <= 1.max(b / 1_000_000_000_000), "cost {b} read back as {a}: {again}");
        }
        (a, b) => assert_eq!(a, b, "{again}"),
    }
    true
}

fn shape_a_line(e: &Event<'_>) -> String {
    let kind = match e.kind {
        EventKind::ModelCall => "model_usage",
        EventKind::ToolCall => "tool_call",
        EventKind::RunEnd => "agent_end",
        EventKind::Other => "session_start",
    };
    let text = |s: &Cow<'_, str>| serde_json::Value::String(s.to_string());
    let mut o = serde_json::Map::new();
    o.insert("type".into(), kind.into());
    o.insert("timestamp".into(), window::format_rfc3339(e.time).into());
    if let Some(s) = &e.session {
        o.insert("sessionId".into(), text(s));
    }
    o.insert("agentId".into(), text(&e.agent));
    o.insert("model".into(), text(&e.model));
    o.insert("provider".into(), text(&e.provider));
    if let Some(s) = &e.experiment {
        o.insert("experimentId".into(), text(s));
    }
    if let Some(s) = &e.variant {
        o.insert("variant".into(), text(s));
    }
    if let Some(c) = e.cost {
        o.insert("costUsd".into(), c.as_f64().into());
    }
    if e.kind == EventKind::ModelCall {
        o.insert("inputTokens".into(), e.input_tokens.into());
        o.insert("outputTokens".into(), e.output_tokens.into());
    }
    if e.failed {
        o.insert("success".into(), false.into());
    }
    serde_json::Value::Object(o).to_string()
}

// ---------------------------------------------------------------------------------------
// timestamp

/// An event timestamp and a `--since/--until` instant: the fast reader agrees with chrono,
/// `parse_timestamp` with both and refuses only what is not a post-1970 instant, and every
/// accepted instant survives `format_rfc3339` and back.
pub fn timestamp(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let chrono = DateTime::parse_from_rfc3339(text).ok().and_then(|t| t.timestamp_nanos_opt());
    let fast = parse_timestamp_fast(text);
    if let Some(ns) = fast {
        assert_eq!(Some(ns), chrono, "the fast timestamp reader disagrees with chrono on {text:?}");
    }
    let event = parse_timestamp(text);
    match (&event, chrono) {
        (Ok(ns), _) => {
            assert_eq!(Some(*ns), chrono, "{text:?}");
            assert!(*ns >= 0, "{text:?} read as {ns}, before 1970");
            let shown = window::format_rfc3339(*ns);
            assert_eq!(parse_timestamp(&shown).ok(), Some(*ns), "{text:?} shown as {shown:?}");
        }
        (Err(_), Some(ns)) => assert!(ns < 0, "{text:?} refused though chrono reads {ns}"),
        (Err(_), None) => {}
    }

    let tz = ZONES[data.len() % ZONES.len()];
    let instant = window::parse_instant(text, tz);
    if let Some(ns) = chrono {
        // RFC 3339 is tried first, in any zone.
        assert_eq!(instant.as_ref().ok(), Some(&ns), "{text:?}");
    }
    if let Ok(ns) = instant {
        let shown = window::format_rfc3339(ns);
        assert_eq!(window::parse_instant(&shown, tz).ok(), Some(ns), "{text:?} shown as {shown:?}");
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            if chrono.is_none() {
                // A date is its local midnight: the instant is on that date, in the zone.
                let local = window::from_nanos(ns).with_timezone(&tz);
                assert_eq!(local.date_naive(), date, "{text:?} in {tz}");
            }
        }
    }
    event.is_ok() || instant.is_ok()
}

// ---------------------------------------------------------------------------------------
// duration

/// `--last`: an accepted length is positive, under 200 years, whole hours, and is exactly
/// what its digits and unit say.
pub fn duration(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Ok(ns) = window::parse_duration(text) else { return false };
    const HOUR: i64 = 3600 * NANOS_PER_SEC;
    assert!(ns > 0, "{text:?} accepted as {ns}");
    assert!(ns < 200 * 365 * 86_400 * NANOS_PER_SEC, "{text:?} accepted as {ns}");
    assert_eq!(ns % HOUR, 0, "{text:?}: not whole hours");
    let (digits, unit) = text.split_at(text.len() - 1);
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => panic!("{text:?} accepted with unit {unit:?}"),
    };
    assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{text:?} accepted");
    let n: u128 = digits.parse().unwrap();
    assert_eq!(n * hours * HOUR as u128, ns as u128, "{text:?}");
    // The shortest spelling reads the same.
    let n = n.to_string();
    assert_eq!(window::parse_duration(&format!("{n}{unit}")).ok(), Some(ns), "{text:?}");
    true
}

// ---------------------------------------------------------------------------------------
// window

/// A window request, one `key=value` a line: `week=` (bare `--week`), `week=2026-W47`,
/// `last=7d`, `since=…`, `until=…`, `tz=Europe/Berlin` (any name; an unknown one is refused
/// like `--tz`), `now=2026-11-25T12:00:00Z` or `now=<seconds since 1970>`. Unknown keys are
/// ignored; without `now` it is 2026-11-25T12:00:00Z.
pub struct WindowInput {
    pub spec: WindowSpec,
    pub tz: Option<String>,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub fn window_input(text: &str) -> Option<WindowInput> {
    let mut spec = WindowSpec::default();
    let mut tz = None;
    let mut now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "week" if value.is_empty() => spec.week = Some(None),
            "week" => spec.week = Some(Some(value.to_string())),
            "last" => spec.last = Some(value.to_string()),
            "since" => spec.since = Some(value.to_string()),
            "until" => spec.until = Some(value.to_string()),
            "tz" => tz = Some(value.to_string()),
            "now" => {
                now = match value.parse::<i64>() {
                    Ok(secs) => chrono::DateTime::from_timestamp(secs, 0)?,
                    Err(_) => DateTime::parse_from_rfc3339(value).ok()?.to_utc(),
                }
            }
            _ => {}
        }
    }
    Some(WindowInput { spec, tz, now })
}

/// `Window::resolve`: an accepted window is non-empty and in its zone, its previous
/// window ends where it starts, and its days cut it at local midnights and cover it.
pub fn window(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Some(input) = window_input(text) else { return false };
    let Ok(tz) = window::resolve_tz(Some(input.tz.as_deref().unwrap_or("UTC"))) else { return false };
    let Ok(w) = Window::resolve(&input.spec, tz, input.now) else { return false };
    check_window(&w, input.now);
    let previous = w.previous();
    assert_eq!(previous.end, w.start, "the previous window does not end where {w:?} starts");
    assert!(previous.start < previous.end, "empty previous window {previous:?} of {w:?}");
    assert_eq!((previous.tz, previous.kind, previous.partial), (w.tz, w.kind, false));
    if w.kind == WindowKind::Span {
        assert_eq!(previous.end - previous.start, w.end - w.start, "{w:?}");
    }
    check_days(&previous);
    true
}

fn check_window(w: &Window, now: chrono::DateTime<chrono::Utc>) {
    assert!(w.start < w.end, "empty window {w:?}");
    let now_ns = window::to_nanos(now).unwrap();
    assert_eq!(w.partial, w.end > now_ns, "{w:?}");
    assert!(w.start <= now_ns, "a window that starts after now: {w:?}");
    if w.kind == WindowKind::IsoWeek {
        // From a local midnight on a Monday to the one a week later.
        let monday = w.local_date(w.start);
        assert_eq!(monday.weekday(), chrono::Weekday::Mon, "{w:?}");
        assert_eq!(window::local_midnight(monday, w.tz).ok(), Some(w.start), "{w:?}");
        assert_eq!(window::local_midnight(monday + Duration::days(7), w.tz).ok(), Some(w.end), "{w:?}");
    }
    check_days(w);
}

/// The days start at the window's start, then at each local midnight before its end, one
/// date after the other, and the last is the date of the window's last instant. Windows of
/// more than 1,000 days are not walked (a fuzzer's 500-year window would take seconds).
fn check_days(w: &Window) {
    if i128::from(w.end) - i128::from(w.start) > i128::from(1_000 * 86_400 * NANOS_PER_SEC) {
        return;
    }
    let days = w.days();
    assert_eq!(days[0], (w.local_date(w.start), w.start), "{w:?}");
    for pair in days.windows(2) {
        let ((d0, t0), (d1, t1)) = (pair[0], pair[1]);
        assert_eq!(d0.succ_opt(), Some(d1), "{w:?}");
        assert!(t0 < t1 && t1 < w.end, "{w:?}: {t0} then {t1}");
        assert_eq!(w.local_date(t1), d1, "{w:?}");
        assert_eq!(w.local_date(t1 - 1), d0, "{w:?}");
    }
    assert_eq!(days.last().unwrap().0, w.local_date(w.end - 1), "days do not reach the end of {w:?}");
}

// ---------------------------------------------------------------------------------------
// prom_answer

/// A Prometheus answer's body, decoded as every kind of data obsctl asks for: never a
/// panic, and an accepted answer is a JSON object that said `success` without warnings.
pub fn prom_answer(data: &[u8]) -> bool {
    use obsctl::source::prometheus::{decode, histogram_quantile, instant_samples, parse_le, range_series, Targets};
    use prometheus_http_query::response::Data;
    use reqwest::StatusCode;

    let body = String::from_utf8_lossy(data);
    let status = StatusCode::OK;
    // Not JSON by content type: always refused, whatever the body.
    assert!(decode::<Data>(status, false, &body).is_err());

    /// The envelope alone, read independently (numbers are skipped, never parsed: a
    /// `serde_json::Value` would refuse `1e999` where the typed reader skips it).
    #[derive(serde::Deserialize)]
    struct Envelope {
        status: String,
        #[serde(default)]
        warnings: Vec<serde::de::IgnoredAny>,
        data: Option<serde::de::IgnoredAny>,
    }
    let mut accepted = false;
    let mut accept = |ok: bool| {
        if ok {
            let v: Envelope = serde_json::from_str(&body).expect("accepted, yet no envelope");
            assert_eq!(v.status, "success", "accepted without success");
            assert_eq!(v.warnings.len(), 0, "accepted with warnings");
            assert!(v.data.is_some(), "accepted without data");
            accepted = true;
        }
    };
    if let Ok(d) = decode::<Data>(status, true, &body) {
        accept(true);
        let matrix = matches!(d, Data::Matrix(_));
        let d2 = decode::<Data>(status, true, &body).unwrap();
        match instant_samples(d) {
            Ok(samples) => {
                assert!(!matrix);
                check_quantiles(&samples, parse_le, histogram_quantile);
            }
            Err(_) => assert!(matrix),
        }
        assert_eq!(range_series(d2).is_ok(), matrix);
    }
    accept(decode::<Vec<HashMap<String, String>>>(status, true, &body).is_ok());
    accept(decode::<Vec<String>>(status, true, &body).is_ok());
    accept(decode::<Targets>(status, true, &body).is_ok());
    accepted
}

type Quantile = fn(f64, &[(f64, f64)]) -> Option<f64>;

/// The duration quantiles the digest takes from bucket samples: p50 ≤ p95, both within the
/// buckets' bounds, for buckets of sane numbers.
fn check_quantiles(samples: &[(HashMap<String, String>, f64)], parse_le: fn(&str) -> Option<f64>, q: Quantile) {
    let buckets: Vec<(f64, f64)> = samples.iter().filter_map(|(l, v)| Some((parse_le(l.get("le")?)?, *v))).collect();
    let (p50, p95) = (q(0.5, &buckets), q(0.95, &buckets));
    let sane = buckets.iter().all(|&(le, c)| (le == f64::INFINITY || le.abs() < 1e300) && c.abs() < 1e300);
    if !sane {
        return;
    }
    if let (Some(a), Some(b)) = (p50, p95) {
        assert!(!a.is_nan() && !b.is_nan(), "quantile NaN from {buckets:?}");
        assert!(a <= b, "p50 {a} > p95 {b} from {buckets:?}");
        let highest = buckets.iter().map(|b| b.0).filter(|le| le.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        let lowest = buckets.iter().map(|b| b.0).filter(|le| !le.is_nan()).fold(0.0, f64::min);
        assert!(lowest <= a && b <= highest, "quantiles {a}, {b} outside [{lowest}, {highest}]");
    }
}

// ---------------------------------------------------------------------------------------
// loki_answer

/// A Loki instant answer's body: never a panic; accepted samples are finite, counts and
/// dollars are what the values say, and the samples read back the same once written again.
pub fn loki_answer(data: &[u8]) -> bool {
    use obsctl::source::loki::{count, parse_vector, usd, Refusal};
    use reqwest::StatusCode;

    let body = String::from_utf8_lossy(data);
    for status in [400, 401, 403, 404, 500] {
        let _ = Refusal::classify(StatusCode::from_u16(status).unwrap(), &body);
    }
    let Ok(samples) = parse_vector(&body) else { return false };
    for s in &samples {
        assert!(s.value.is_finite(), "{s:?}");
        match count(s) {
            Ok(n) => {
                assert!(s.value >= 0.0 && (s.value - s.value.round()).abs() <= 1e-6, "{s:?} counted {n}");
                if s.value < 1e15 {
                    assert_eq!(n, s.value.round() as u64, "{s:?}");
                }
            }
            Err(_) => assert!(s.value < 0.0 || (s.value - s.value.round()).abs() > 1e-6, "{s:?}"),
        }
        assert_eq!(usd(s).is_ok(), s.value >= 0.0, "{s:?}");
    }
    // Written back in Loki's form, the samples read the same.
    let result: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| serde_json::json!({"metric": s.labels, "value": [1795391999.999, s.value.to_string()]}))
        .collect();
    let again = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}});
    let reread = parse_vector(&again.to_string()).unwrap_or_else(|e| panic!("{again}: {e}"));
    assert_eq!(reread, samples);
    true
}

// ---------------------------------------------------------------------------------------
// baseline

/// A gate baseline, new (`obsctl.digest/v1`) or legacy (`regression-check.ts`): every
/// refusal names the file, and an accepted baseline holds what its format allows.
pub fn baseline(data: &[u8]) -> bool {
    use obsctl::gate::baseline::{parse, BaselineFile, DIGEST_SCHEMA};

    let Ok(text) = std::str::from_utf8(data) else { return false };
    let path = Path::new("fuzz-baseline.json");
    match parse(text, path) {
        Err(e) => {
            assert!(format!("{e:#}").contains("fuzz-baseline.json"), "a refusal that does not name the file: {e:#}");
            false
        }
        Ok(BaselineFile::Digest(d)) => {
            assert_eq!(d.schema, DIGEST_SCHEMA);
            let _ = (d.model_costs(), d.agent_costs(), d.window_phrase(), d.source_of("totals"));
            true
        }
        Ok(BaselineFile::Legacy(l)) => {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(v.get("schema").is_none() && v.get("tag").is_some() && v.get("capturedAt").is_some());
            for x in [Some(l.avg_tokens_per_session), Some(l.avg_cost_per_session_usd)]
                .into_iter()
                .chain([l.avg_session_duration_ms, l.p50_session_duration_ms, l.p95_session_duration_ms])
                .flatten()
            {
                assert!(x.is_finite() && x >= 0.0, "{l:?}");
            }
            for rate in [Some(l.model_error_rate), l.tool_call_error_rate].into_iter().flatten() {
                assert!((0.0..=1.0).contains(&rate), "{l:?}");
            }
            true
        }
    }
}

// ---------------------------------------------------------------------------------------
// config

fn gate_args() -> &'static obsctl::cli::GateArgs {
    use clap::Parser;
    static ARGS: std::sync::OnceLock<obsctl::cli::GateArgs> = std::sync::OnceLock::new();
    ARGS.get_or_init(|| match obsctl::cli::Cli::try_parse_from(["obsctl", "gate"]).unwrap().command {
        obsctl::cli::Command::Gate(args) => *args,
        _ => unreachable!(),
    })
}

/// The config file: every refusal names the file; an accepted one gives a gate policy
/// whose thresholds are within their documented bounds (or a refusal), server settings
/// with sane timeouts (or a refusal), and metric names.
pub fn config(data: &[u8]) -> bool {
    use obsctl::config::{FileConfig, PrometheusNames, ServerConfig, ServerFlags};
    use obsctl::gate::policy::{Increase, Policy};

    let Ok(text) = std::str::from_utf8(data) else { return false };
    let mut file = match FileConfig::parse(text, Path::new("fuzz-config.toml")) {
        Ok(file) => file,
        Err(e) => {
            assert!(format!("{e:#}").contains("fuzz-config.toml"), "a refusal that does not name the file: {e:#}");
            return false;
        }
    };
    if let Ok(p) = Policy::new(gate_args(), &file.gate) {
        let amounts = [p.total_cost.max, p.cost_per_session.max, p.tokens_per_session.max, p.p95_duration.max];
        for v in amounts.into_iter().chain([p.session_budget]).flatten().chain(p.cost_per.values().copied()) {
            assert!(v.is_finite() && v >= 0.0, "amount {v} in {p:?}");
        }
        for v in [p.failed_run_rate.max, p.tool_failure_rate.max].into_iter().flatten() {
            assert!((0.0..=1.0).contains(&v), "rate {v} in {p:?}");
        }
        let limits = [p.total_cost, p.cost_per_session, p.tokens_per_session, p.failed_run_rate, p.tool_failure_rate];
        for limit in limits.into_iter().chain([p.p95_duration]) {
            match limit.increase {
                Some(Increase::Relative(f) | Increase::Points(f)) => assert!(f.is_finite() && f >= 0.0, "{p:?}"),
                None => {}
            }
        }
        for v in p.increase_per.values() {
            assert!(v.is_finite() && *v >= 0.0, "{p:?}");
        }
        if p.control.is_some() {
            assert!(p.needs_variant_spread(), "--control without a variant threshold: {p:?}");
        }
        assert!(
            p.total_cost.is_set()
                || p.cost_per_session.is_set()
                || p.tokens_per_session.is_set()
                || p.failed_run_rate.is_set()
                || p.tool_failure_rate.is_set()
                || p.p95_duration.is_set()
                || !p.increase_per.is_empty()
                || !p.cost_per.is_empty()
                || p.session_budget.is_some(),
            "a policy that checks nothing: {p:?}"
        );
    }
    for server in [&mut file.prometheus, &mut file.loki] {
        let _ = PrometheusNames::from_file(server);
        // Secret files are read from disk: not the parser's business, and a fuzzer must not
        // open whatever path it makes up.
        server.bearer_token_file = None;
        server.password_file = None;
        if let Ok(cfg) = ServerConfig::merge(&ServerFlags::default(), server, "http://localhost:9090", "--url") {
            for t in [cfg.connect_timeout, cfg.query_timeout] {
                assert!(t > std::time::Duration::ZERO && t < std::time::Duration::from_secs(86_400), "{cfg:?}");
            }
            let _ = cfg.display_url();
        }
    }
    true
}
