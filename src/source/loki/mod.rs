//! The Loki source: every section of the digest from LogQL metric queries over the
//! telemetry stream (default selector `{job="openclaw-telemetry"}`), with per-session and
//! per-variant detail that no Prometheus series has.
//!
//! It answers the same way the JSONL source does, with the same rules; the query text and
//! the meaning of the labels are in `logql.rs`. What this module adds is getting complete,
//! exact answers out of a real Loki, whose behaviour is recorded in `fixtures/loki/`:
//!
//! # `[start, end)` exactly
//! A LogQL range `[R]` evaluated at `t` holds `(t − R, t]` (case 01a counts an event at
//! exactly `end`, not one at exactly `start`). Every query here is an *instant* query
//! evaluated at `end − 1 ns`, sent as an integer nanosecond `time`, with `R = end − start`
//! written to the nanosecond: `(start − 1 ns, end − 1 ns]`, which in integer nanoseconds
//! is exactly `[start, end)` (case 01b). `query_range` is never used: it aligns its points
//! to the step (08b) or not, depending on the server's splitting settings (14d), and a
//! sub-millisecond `offset` silently empties it (08j). Each local day of the daily series is
//! its own instant query at that day's next local midnight − 1 ns (08c–08i), so days of 23
//! or 25 hours are exact too.
//!
//! # Limits: split, never truncate
//! Loki refuses a whole query whose answer has more than `max_query_series` series
//! (default 500; a week grouped by session, case 02) with a plain-text HTTP 400. On that
//! refusal the piece `[start, end)` is split at its midpoint in nanoseconds and both halves
//! are asked again, recursively (03a → 03b + 03c); the halves never overlap, and values are
//! summed per group across pieces (a session may span several). Requests run concurrently,
//! at most [`LokiSource::max_concurrency`] at a time. The session-level queries start from
//! the pieces the first of them needed, so the others do not rediscover the same splits.
//! No `topk`/`count` shortcut is used: whether those escape the limit depends on the
//! server's query splitting (04a vs 14a).
//!
//! # Never a partial answer shown as complete
//! Any failure — unreachable server, a refusal, a piece that cannot be split further, a
//! value that is not a finite number — is an error marked [`Unavailable`] (exit 3) naming
//! the server and the query. An empty result is zero only when the other answers agree:
//! model calls with a cost must come with a cost series, calls, runs and tool calls must be
//! among the events counted (failed runs among the runs, the same per variant whether
//! counted by session or by variant), and the days must add up to the window's cost.
//! Answers that disagree (an empty result where a series should be, as in 08j) are refused
//! too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::StatusCode;

use super::http::{self, Server};
use super::logql::{self, Expr, LogQl, Shape, Tokens, EXPERIMENT_LABELS, SESSION_LABELS, SESSION_ONLY};
use super::{Answer, Query};
use crate::config::ServerConfig;
use crate::digest::DayRow;
use crate::error::Unavailable;
use crate::usd::Usd;
use crate::window::{format_rfc3339, Nanos, Window};

mod answer;
mod tally;

use answer::{count, usd};
pub use answer::{parse_vector, refusal_of, LokiError, Refusal, Sample};
use tally::check_daily;
pub(crate) use tally::SquareSum;
pub use tally::Tally;

pub const DEFAULT_SELECTOR: &str = r#"{job="openclaw-telemetry"}"#;
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The most pieces one query may be split into, by default, before its answer is declared
/// incomplete.
pub const MAX_PIECES: usize = 4096;

pub struct LokiSource {
    server: Server,
    logql: LogQl,
    /// Requests in flight at once, at most.
    pub max_concurrency: usize,
    /// Pieces one query may be split into before its answer is declared incomplete.
    pub max_pieces: usize,
    /// Log every request and its duration (and refused requests' whole answers) on
    /// standard error (`--verbose`).
    pub verbose: bool,
}

/// What a query counts or sums, per group of its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Events,
    Cost,
    InputTokens,
    OutputTokens,
    ModelCalls,
    UncostedCalls,
    FailedRuns,
    /// Run ends and tool calls, told apart by the type label ([`LogQl::outcomes`]).
    Outcomes,
    /// Failed run ends and tool calls.
    FailedOutcomes,
}

impl LokiSource {
    /// `selector` is the stream selector, default [`DEFAULT_SELECTOR`].
    pub fn new(cfg: &ServerConfig, selector: String) -> Result<LokiSource> {
        Ok(LokiSource {
            server: http::connect(cfg)?,
            logql: LogQl::new(&selector)?,
            max_concurrency: DEFAULT_CONCURRENCY,
            max_pieces: MAX_PIECES,
            verbose: false,
        })
    }

    pub fn shown_url(&self) -> &str {
        &self.server.shown
    }

    /// A short readiness probe (`GET /ready`), for `--source auto`.
    pub async fn probe(&self, timeout: Duration) -> Result<()> {
        let url = self.url("/ready", &[])?;
        let what = "readiness probe GET /ready";
        let response = self.server.client.get(url).timeout(timeout).send().await.map_err(|e| {
            let why = if e.is_timeout() { format!("no answer within {timeout:?}") } else { http::short_reason(&e) };
            self.failure(what, &format!("unreachable: {why}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.refused(what, status, body))
    }

    /// Every section of the digest for the query's window, and the previous window's
    /// totals. See the module documentation for how the answer is made exact and complete.
    pub async fn answer(&self, query: &Query) -> Result<Answer> {
        let current = &query.window;
        let windows: Vec<(Which, &Window)> = std::iter::once((Which::Current, current))
            .chain(query.previous.as_ref().map(|p| (Which::Previous, p)))
            .collect();
        let days = day_bounds(current);
        let mut got = Collected::new(days.len());

        let asks = self.survey(&windows);
        let answers = self.run(&asks).await?;
        got.take(self, &asks, answers)?;
        if got.found.lines() == 0 {
            return Err(self.nothing_shipped(&windows));
        }
        let asks = self.details(&windows, &got, &days);
        let answers = self.run(&asks).await?;
        got.take(self, &asks, answers)?;

        let [now, before] = got.tallies;
        now.check(true).map_err(|e| self.disagree(current, &e))?;
        let mut rows = now.rows(query.top);
        check_daily(&got.daily, rows.totals.cost).map_err(|e| self.disagree(current, &e))?;
        rows.daily = current.days().into_iter().zip(got.daily).map(|((date, _), cost)| DayRow { date, cost }).collect();
        let previous = match &query.previous {
            Some(p) => {
                before.check(false).map_err(|e| self.disagree(p, &e))?;
                Some(before.totals())
            }
            None => None,
        };
        Ok(Answer {
            rows,
            previous,
            warnings: got.found.warnings(self.logql.selector()),
            skipped_lines: got.found.skipped_total(),
            files_read: 0,
        })
    }

    /// Phase 1: which shapes each window holds, the lines to skip, and the events per
    /// session (per group in the window, per session only in the previous one).
    fn survey(&self, windows: &[(Which, &Window)]) -> Vec<Ask> {
        let q = &self.logql;
        let mut asks = Vec::new();
        for &(which, w) in windows {
            let by: &[&str] = if which == Which::Current { &SESSION_LABELS } else { &SESSION_ONLY };
            asks.push(Ask::new(What::Shapes(which), q.shapes(), w));
            asks.push(Ask::new(What::Skipped(Skip::NotJson), q.not_json(), w));
            asks.push(Ask::new(What::Skipped(Skip::QuotedNumber), q.quoted_numbers(), w));
            asks.push(Ask::new(What::Skipped(Skip::BadNumber), q.bad_numbers(), w));
            asks.push(Ask::new(What::Measure(which, Measure::Events), q.events(by), w));
        }
        asks
    }

    /// Phase 2, for the shapes found: model calls (cost, tokens, calls, uncosted) per group
    /// and model, failed runs per group, runs and tool calls (failed or not) per variant,
    /// and each local day's cost; totals only for the previous window. Per-group queries
    /// start from the pieces the events needed. Runs and tool calls need no session: by
    /// variant, their answers are a few series, one request each, with no split.
    fn details(&self, windows: &[(Which, &Window)], got: &Collected, days: &[(Nanos, Nanos)]) -> Vec<Ask> {
        let q = &self.logql;
        let mut asks = Vec::new();
        for &(which, w) in windows {
            let current = which == Which::Current;
            let pieces = if current { got.session_pieces.as_deref() } else { None };
            for shape in got.found.present(which) {
                let by_call: Vec<&str> = if current {
                    SESSION_LABELS.iter().chain(&shape.model_labels()).copied().collect()
                } else {
                    vec![]
                };
                let by_variant: &[&str] = if current { EXPERIMENT_LABELS } else { &[] };
                let mut grouped: Vec<(Measure, Expr)> =
                    shape.cost_fields().iter().map(|&field| (Measure::Cost, q.cost(shape, field, &by_call))).collect();
                grouped.extend([
                    (Measure::InputTokens, q.tokens(shape, Tokens::Input, &by_call)),
                    (Measure::OutputTokens, q.tokens(shape, Tokens::Output, &by_call)),
                    (Measure::ModelCalls, q.model_calls(shape, &by_call)),
                    (Measure::UncostedCalls, q.uncosted_calls(shape, &by_call)),
                ]);
                // Failed runs per agent need the sessions (an agent may be known from the
                // session key only); the previous window's come with its failed outcomes.
                if current {
                    grouped.push((Measure::FailedRuns, q.failed_runs(shape, &SESSION_LABELS)));
                }
                for (measure, expr) in grouped {
                    asks.push(Ask::new(What::Measure(which, measure), expr, w).starting_from(pieces));
                }
                for (measure, failed) in [(Measure::Outcomes, false), (Measure::FailedOutcomes, true)] {
                    asks.push(Ask::new(What::Measure(which, measure), q.outcomes(shape, failed, by_variant), w));
                }
                if current {
                    for (i, &(start, end)) in days.iter().enumerate() {
                        for &field in shape.cost_fields() {
                            asks.push(Ask::span(What::Day(i), q.cost(shape, field, &[]), start, end));
                        }
                    }
                }
            }
        }
        asks
    }

    fn nothing_shipped(&self, windows: &[(Which, &Window)]) -> anyhow::Error {
        let start = windows.iter().map(|w| w.1.start).min().unwrap_or_default();
        let end = windows.iter().map(|w| w.1.end).max().unwrap_or_default();
        anyhow!(
            "Loki at {} holds no lines for {} between {} and {}: nothing was shipped for this period, \
             or the stream selector is wrong",
            self.server.shown,
            self.logql.selector(),
            format_rfc3339(start),
            format_rfc3339(end)
        )
        .context(Unavailable)
    }

    /// Runs one instant query at `time` (nanoseconds since the epoch).
    pub async fn instant(&self, logql: &str, time: Nanos) -> Result<Vec<Sample>> {
        let time = time.to_string();
        let params = [("query", logql), ("time", time.as_str())];
        let body = self.get("/loki/api/v1/query", &params).await?;
        parse_vector(&body).map_err(|e| self.failure(&describe(&params), &e))
    }

    /// Runs `expr` over `[start, end)`, split at midpoints as often as the server's series
    /// limit requires. The samples of every piece, in no particular order: a group may
    /// appear once per piece, and its values add up.
    pub async fn instant_split(&self, expr: &Expr, start: Nanos, end: Nanos) -> Result<Vec<Sample>> {
        let ask = Ask::span(What::Single, expr.clone(), start, end);
        Ok(self.run(std::slice::from_ref(&ask)).await?.remove(0).samples)
    }

    /// Sends one GET request; the answer's body when the status is a success, else an
    /// error naming the server, the request and the first line of the answer.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String> {
        let url = self.url(path, params)?;
        let what = describe(params);
        let what = if what.is_empty() { format!("GET {path}") } else { what };
        let started = Instant::now();
        let response = http::send_with_retry(|| self.server.client.get(url.clone()).send())
            .await
            .map_err(|e| self.failure(&what, &format!("unreachable: {}", http::short_reason(&e))))?;
        let status = response.status();
        let body =
            response.text().await.map_err(|e| self.failure(&what, &format!("reading the answer failed: {e}")))?;
        if self.verbose {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            eprintln!("loki {} {:>7.1} ms  HTTP {}  {what}", self.server.shown, ms, status.as_u16());
        }
        if status.is_success() {
            return Ok(body);
        }
        if self.verbose {
            eprintln!("loki answered:\n{body}");
        }
        Err(self.refused(&what, status, body))
    }

    fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<reqwest::Url> {
        let base = self.server.base_url.trim_end_matches('/');
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))
            .with_context(|| format!("invalid Loki URL {}", self.server.shown))?;
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        Ok(url)
    }

    /// Runs every ask, each over its pieces, splitting a piece in two when Loki refuses it
    /// for too many series. Rounds of at most `max_concurrency` requests in flight; the
    /// first failure that splitting cannot cure ends the run.
    async fn run(&self, asks: &[Ask]) -> Result<Vec<Done>> {
        let mut done: Vec<Done> = asks.iter().map(|_| Done::default()).collect();
        let mut pieces_of = vec![0usize; asks.len()];
        let mut pending: Vec<(usize, Nanos, Nanos)> = Vec::new();
        for (i, ask) in asks.iter().enumerate() {
            pieces_of[i] = ask.pieces.len();
            pending.extend(ask.pieces.iter().map(|&(s, e)| (i, s, e)));
        }
        while !pending.is_empty() {
            let round: Vec<(usize, Nanos, Nanos, Result<Vec<Sample>>)> = stream::iter(std::mem::take(&mut pending))
                .map(|(i, start, end)| async move {
                    match self.instant(&asks[i].expr.render(start, end), end - 1).await {
                        Ok(samples) => Ok((i, start, end, Ok(samples))),
                        Err(e) if refusal_of(&e) == Some(Refusal::SeriesLimit) => Ok((i, start, end, Err(e))),
                        Err(e) => Err(e),
                    }
                })
                .buffer_unordered(self.max_concurrency.max(1))
                .try_collect()
                .await?;
            for (i, start, end, outcome) in round {
                match outcome {
                    Ok(samples) => {
                        done[i].samples.extend(samples);
                        done[i].pieces.push((start, end));
                    }
                    Err(refused) => {
                        if end - start < 2 || pieces_of[i] >= self.max_pieces {
                            return Err(refused.context(format!(
                                "the answer cannot be completed: a piece of {} from {} still exceeds Loki's series \
                                 limit after splitting into {} pieces",
                                logql::range(end - start),
                                format_rfc3339(start),
                                pieces_of[i]
                            )));
                        }
                        let mid = start + (end - start) / 2;
                        pending.push((i, start, mid));
                        pending.push((i, mid, end));
                        pieces_of[i] += 1;
                    }
                }
            }
        }
        for d in &mut done {
            d.pieces.sort_unstable();
        }
        Ok(done)
    }

    fn failure(&self, what: &str, why: &str) -> anyhow::Error {
        anyhow!("Loki at {}: {what}: {why}", self.server.shown).context(Unavailable)
    }

    fn refused(&self, what: &str, status: StatusCode, body: String) -> anyhow::Error {
        let refusal = Refusal::classify(status, &body);
        let first = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(no message)");
        let message =
            format!("Loki at {}: {what}: HTTP {}: {first}{}", self.server.shown, status.as_u16(), refusal.hint());
        anyhow::Error::new(LokiError { status, refusal, body, message }).context(Unavailable)
    }

    fn bad_answer(&self, ask: &Ask, why: anyhow::Error) -> anyhow::Error {
        let query = ask.expr.render(ask.start, ask.end);
        self.failure(
            &format!("query `{query}` over [{}, {})", format_rfc3339(ask.start), format_rfc3339(ask.end)),
            &format!("{why:#}"),
        )
    }

    fn disagree(&self, w: &Window, why: &str) -> anyhow::Error {
        anyhow!(
            "Loki at {}: the answers for {} to {} do not agree ({why}); some answer was incomplete, \
             so no report is made from them",
            self.server.shown,
            format_rfc3339(w.start),
            format_rfc3339(w.end)
        )
        .context(Unavailable)
    }
}

/// `query `…` at <ns> (<RFC 3339>)`, or with `start`/`end` for range requests.
fn describe(params: &[(&str, &str)]) -> String {
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let when = |v: &str| match v.parse::<Nanos>() {
        Ok(ns) if v.len() > 12 => format!("{v} ({})", format_rfc3339(ns)),
        _ => v.to_string(),
    };
    let mut out = match get("query") {
        Some(q) => format!("query `{q}`"),
        None => String::new(),
    };
    if let Some(t) = get("time") {
        out.push_str(&format!(" at {}", when(t)));
    }
    if let (Some(s), Some(e)) = (get("start"), get("end")) {
        out.push_str(&format!(" from {} to {}", when(s), when(e)));
    }
    out.trim().to_string()
}

// ---- Plans ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Current = 0,
    Previous = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    NotJson,
    QuotedNumber,
    BadNumber,
}

#[derive(Clone, Copy, Debug)]
enum What {
    Shapes(Which),
    /// Lines skipped, in either window.
    Skipped(Skip),
    Measure(Which, Measure),
    /// The cost of the window's `i`-th local day.
    Day(usize),
    /// A query asked on its own ([`LokiSource::instant_split`]).
    Single,
}

/// One query over one span, and the pieces to start from.
struct Ask {
    what: What,
    expr: Expr,
    start: Nanos,
    end: Nanos,
    pieces: Vec<(Nanos, Nanos)>,
}

impl Ask {
    fn new(what: What, expr: Expr, w: &Window) -> Ask {
        Ask::span(what, expr, w.start, w.end)
    }

    fn span(what: What, expr: Expr, start: Nanos, end: Nanos) -> Ask {
        Ask { what, expr, start, end, pieces: vec![(start, end)] }
    }

    /// Starts from pieces already known to be small enough (they cover `[start, end)`).
    fn starting_from(mut self, known: Option<&[(Nanos, Nanos)]>) -> Ask {
        if let Some(p) = known.filter(|p| !p.is_empty()) {
            self.pieces = p.to_vec();
        }
        self
    }
}

#[derive(Default)]
struct Done {
    samples: Vec<Sample>,
    /// The pieces that answered, in time order.
    pieces: Vec<(Nanos, Nanos)>,
}

/// `[start, end)` of each local day of the window.
fn day_bounds(w: &Window) -> Vec<(Nanos, Nanos)> {
    let days = w.days();
    let ends = days.iter().skip(1).map(|&(_, t)| t).chain([w.end]);
    days.iter().zip(ends).map(|(&(_, start), end)| (start, end)).collect()
}

/// Phase 1's findings: the shapes in each window, and the lines skipped.
#[derive(Default)]
struct Found {
    shapes: [BTreeMap<Shape, u64>; 2],
    untyped: u64,
    not_json: u64,
    quoted: u64,
    bad: u64,
}

impl Found {
    fn shapes(&mut self, which: Which, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            match Shape::of(&s.labels) {
                Some(shape) => *self.shapes[which as usize].entry(shape).or_default() += n,
                None => self.untyped += n,
            }
        }
        Ok(())
    }

    fn skipped(&mut self, why: Skip, samples: &[Sample]) -> Result<()> {
        let n: u64 = samples.iter().map(count).sum::<Result<u64>>()?;
        match why {
            Skip::NotJson => self.not_json += n,
            Skip::QuotedNumber => self.quoted += n,
            Skip::BadNumber => self.bad += n,
        }
        Ok(())
    }

    fn present(&self, which: Which) -> Vec<Shape> {
        self.shapes[which as usize].keys().copied().collect()
    }

    fn skipped_total(&self) -> u64 {
        self.untyped + self.not_json + self.quoted + self.bad
    }

    fn lines(&self) -> u64 {
        self.skipped_total() + self.shapes.iter().flat_map(|s| s.values()).sum::<u64>()
    }

    fn warnings(&self, selector: &str) -> Vec<String> {
        let mut out = Vec::new();
        let shapes = &self.shapes[Which::Current as usize];
        if !shapes.is_empty() {
            let list: Vec<String> = shapes.iter().map(|(s, n)| format!("{s:?} (`{}`) {n}", s.type_field())).collect();
            out.push(format!("Loki {selector}: events by shape in the window: {}", list.join(", ")));
        }
        let total = self.skipped_total();
        if total > 0 {
            let reasons: Vec<String> = [
                (self.not_json, "not JSON"),
                (self.quoted, "with a cost or token count written as a string"),
                (self.bad, "with a cost or token count that is not a non-negative number"),
                (self.untyped, "with no type, eventType or kind field"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
            out.push(format!(
                "Loki {selector}: skipped {total} malformed line{} in the window and the previous one ({})",
                if total == 1 { "" } else { "s" },
                reasons.join("; ")
            ));
        }
        out
    }
}

/// Everything answered so far.
struct Collected {
    found: Found,
    /// The current and the previous window.
    tallies: [Tally; 2],
    daily: Vec<Usd>,
    /// The pieces the current window's events needed.
    session_pieces: Option<Vec<(Nanos, Nanos)>>,
}

impl Collected {
    fn new(days: usize) -> Collected {
        Collected {
            found: Found::default(),
            tallies: [Tally::default(), Tally::default()],
            daily: vec![Usd::ZERO; days],
            session_pieces: None,
        }
    }

    fn take(&mut self, source: &LokiSource, asks: &[Ask], answers: Vec<Done>) -> Result<()> {
        for (ask, done) in asks.iter().zip(answers) {
            let added = match ask.what {
                What::Shapes(which) => self.found.shapes(which, &done.samples),
                What::Skipped(why) => self.found.skipped(why, &done.samples),
                What::Measure(which, measure) => {
                    if (which, measure) == (Which::Current, Measure::Events) {
                        self.session_pieces = Some(done.pieces);
                    }
                    self.tallies[which as usize].add(measure, &done.samples)
                }
                What::Day(i) => done.samples.iter().try_for_each(|s| {
                    self.daily[i] += usd(s)?;
                    Ok(())
                }),
                What::Single => Ok(()),
            };
            added.map_err(|e| source.bad_answer(ask, e))?;
        }
        Ok(())
    }
}

// ---- Adding answers up ----

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_described_with_their_time() {
        assert_eq!(
            describe(&[("query", "sum(x)"), ("time", "1795391999999999999")]),
            "query `sum(x)` at 1795391999999999999 (2026-11-22T23:59:59.999999999Z)"
        );
    }
}
