//! The Loki source: every section of the digest from LogQL metric queries over the
//! telemetry stream (default selector `{job="openclaw-telemetry"}`), with per-session and
//! per-variant detail that no Prometheus series has.
//!
//! It answers the same way the JSONL source does, with the same rules; the query text and
//! the meaning of the labels are in `logql.rs`. What this module adds is getting complete,
//! exact answers out of a real Loki (recorded in `fixtures/loki/`) with a fixed number of
//! cheap requests, whatever the number of sessions:
//!
//! # A handful of queries per window
//! 1. The lines the JSONL source would skip for a bad number, over both windows (one
//!    request), and every line counted by type, model, agent and experiment (one per
//!    window). The counts tell which shapes and which agents need which query forms.
//! 2. Per window: one query per measure grouped by every dimension at once (cost, input
//!    and output tokens per shape leg, failed runs and tool calls, uncosted calls), each
//!    local day's cost, and the number of distinct sessions (`count(sum by (session) …)`).
//!    Distinct sessions per agent and variant.
//! 3. The top N + 1 sessions by cost (`topk`), and for the gate Σ cost² per session by
//!    variant.
//! 4. The named top sessions' agents, calls and tokens (a line filter on their names).
//!
//! About 27 requests for a week and the week before, whatever it holds (one is the
//! server's `GET /config`, to size the classes of sessions the top needs).
//!
//! # `[start, end)` exactly
//! A LogQL range `[R]` evaluated at `t` holds `(t − R, t]` (case 01a counts an event at
//! exactly `end`, not one at exactly `start`). Every query is an *instant* query evaluated
//! at `end − 1 ns`, sent as an integer nanosecond `time`, with `R = end − start`:
//! `(start − 1 ns, end − 1 ns]`, which in integer nanoseconds is exactly `[start, end)`
//! (case 01b). LogQL durations stop at milliseconds, so windows must start and end on whole
//! milliseconds. `query_range` is never used: it aligns its points to the step (08b) or
//! not, depending on the server's splitting settings (14d), and a sub-millisecond `offset`
//! silently empties it (08j). Each local day of the daily series is its own instant query
//! at that day's next local midnight − 1 ns (08c–08i), so days of 23 or 25 hours are exact.
//!
//! # Limits: split the sessions, never truncate
//! Loki refuses a query any of whose sub-queries has more than `max_query_series` series
//! (default 500) with a plain-text HTTP 400 (case 02). Distinct counts of sessions escape
//! it by being asked whole (`logql::distinct`); sums per session while one of Loki's split
//! intervals holds fewer sessions (04a, 04b); beyond, a refused one is asked again for two
//! disjoint classes of sessions (`logql::Class`), each class halved again while refused,
//! and the classes' sums added, their top N merged. The first try starts at the classes
//! the session count needs under the server's splitting and limit (`GET /config`,
//! [`Limits::classes_for`]). A distinct count refused whole is asked in that split form.
//! A measure grouped by type, model, agent and experiment at once that is refused is asked
//! one dimension at a time ([`Expr::apart`]; case 22-*: 60 agents). Any other query that is
//! refused is split in time at its midpoint (whole milliseconds), its sums added. Requests
//! run concurrently, at most [`LokiSource::max_concurrency`] at a time.
//!
//! # Never a partial answer shown as complete
//! Any failure — unreachable server, a refusal, a piece that cannot be split further, a
//! value that is not a finite number — is an error marked [`Unavailable`] (exit 3) naming
//! the server and the query. An empty result is zero only when the other answers agree
//! (`tally::Tally::check`): model calls with a cost must come with a cost series, runs and
//! tool calls must be among the events counted, failures among the runs, the days must add
//! up to the window's cost, the sessions per agent and variant must cover every session.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::StatusCode;

use super::http::{self, Server};
use super::logql::{self, AgentBy, Checks, Class, Expr, LogQl, Shape, Tokens, Value};
use super::{Answer, Query};
use crate::config::ServerConfig;
use crate::digest::DayRow;
use crate::error::Unavailable;
use crate::usd::Usd;
use crate::window::{format_rfc3339, Nanos, Window};

mod answer;
mod limits;
mod tally;

#[doc(hidden)]
pub use answer::{count, usd};
pub use answer::{parse_vector, refusal_of, LokiError, Refusal, Sample};
pub use limits::Limits;
use tally::{check_daily, rank, SessionDetails, Tally};

pub const DEFAULT_SELECTOR: &str = r#"{job="openclaw-telemetry"}"#;
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The most time pieces one query may be split into before its answer is declared
/// incomplete. Few: the queries split in time are grouped by dimensions (types, models,
/// agents, variants) whose combinations rarely shrink with the span, so a query still
/// refused in 8 pieces is refused in 64 too (measured with the synthetic Loki: 255
/// requests, 254 refused, before giving up with 64).
pub const MAX_PIECES: usize = 8;
/// Distinct counts over more lines than this are asked in the split form at once: asked
/// whole, one querier evaluates them alone (about 4 µs a line on the 2-core machine of
/// BENCHMARKS.md), and a default Loki drops an answer not written within 30 s.
pub const MAX_WHOLE_LINES: u64 = 4_000_000;
/// Queries over sessions in flight at once, at most.
const SESSION_CONCURRENCY: usize = 2;
/// A piece and what Loki said to it (an error here is one a smaller piece may cure).
type Asked = (Piece, Result<Vec<Sample>>);
/// A time piece is never split below this.
const MIN_PIECE: Nanos = 1_000_000;

pub struct LokiSource {
    server: Server,
    logql: LogQl,
    /// Requests in flight at once, at most.
    pub max_concurrency: usize,
    /// Time pieces one query may be split into before its answer is declared incomplete.
    pub max_pieces: usize,
    /// Distinct counts over windows of more lines are asked in the split form.
    pub max_whole_lines: u64,
    /// Log every request and its duration (and refused requests' whole answers) on
    /// standard error (`--verbose`).
    pub verbose: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Current = 0,
    Previous = 1,
}

/// What an answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Survey,
    Counts(Which),
    Failed(Which),
    Uncosted(Which),
    Cost(Which),
    Tokens(Which, Tokens),
    /// The cost of the window's `i`-th local day.
    Day(usize),
    Sessions(Which),
    Tuples,
    /// Exact sessions per agent (true) or per variant.
    SessionsBy(bool),
    Squares,
    Top,
    AtLeast,
    Details,
    DetailTokens(Tokens),
    /// A query asked on its own ([`LokiSource::instant_split`]).
    Single,
}

/// One query over one span, and the classes of sessions to ask it for.
struct Ask {
    what: What,
    expr: Expr,
    start: Nanos,
    end: Nanos,
    /// Sessions are asked per class of this many (1: all at once).
    classes: u32,
}

impl Ask {
    fn new(what: What, expr: Expr, w: &Window) -> Ask {
        Ask::span(what, expr, w.start, w.end)
    }

    fn span(what: What, expr: Expr, start: Nanos, end: Nanos) -> Ask {
        Ask { what, expr, start, end, classes: 1 }
    }

    fn in_classes(mut self, classes: u32) -> Ask {
        self.classes = if self.expr.by_session() { classes.max(1) } else { 1 };
        self
    }
}

/// An ask's answer: the samples of every class and piece, and the classes it needed.
#[derive(Default)]
struct Done {
    samples: Vec<Sample>,
    classes: u32,
    /// Whether it was asked one dimension at a time ([`Expr::apart`]).
    apart: bool,
}

impl LokiSource {
    /// `selector` is the stream selector, default [`DEFAULT_SELECTOR`].
    pub fn new(cfg: &ServerConfig, selector: String) -> Result<LokiSource> {
        Ok(LokiSource {
            server: http::connect(cfg)?,
            logql: LogQl::new(&selector)?,
            max_concurrency: DEFAULT_CONCURRENCY,
            max_pieces: MAX_PIECES,
            max_whole_lines: MAX_WHOLE_LINES,
            verbose: false,
        })
    }

    /// Only the events the filters keep (`--agent`, `--model`, `--experiment`).
    pub fn with_filters(mut self, filters: &super::filter::Filters) -> LokiSource {
        self.logql = self.logql.with_filters(filters);
        self
    }

    pub fn shown_url(&self) -> &str {
        &self.server.shown
    }

    /// A short readiness probe (`GET /ready`), for `--source auto`.
    pub async fn probe(&self, timeout: Duration) -> Result<()> {
        let what = "readiness probe GET /ready";
        let reply = self.get_once("/ready", timeout).await?.map_err(|e| self.failure(what, &e.to_string()))?;
        if reply.status.is_success() {
            return Ok(());
        }
        Err(self.refused(&format!("{what} ({})", reply.tries), reply.status, reply.body))
    }

    /// One attempt at `GET path`, allowed at most `timeout` (and the server's own).
    async fn get_once(&self, path: &str, timeout: Duration) -> Result<std::result::Result<http::Reply, http::Failed>> {
        let url = self.url(path, &[])?;
        let timeout = timeout.min(self.server.timeout);
        Ok(http::probe(timeout, || self.server.client.get(url.clone()).timeout(timeout).send()).await)
    }

    /// Every section of the digest for the query's window, and the previous window's
    /// totals. See the module documentation for how the answer is made exact and complete.
    pub async fn answer(&self, query: &Query) -> Result<Answer> {
        let current = &query.window;
        let windows: Vec<(Which, &Window)> = std::iter::once((Which::Current, current))
            .chain(query.previous.as_ref().map(|p| (Which::Previous, p)))
            .collect();
        for (_, w) in &windows {
            if logql::range(w.end - w.start).is_none() || w.start % MIN_PIECE != 0 {
                return Err(anyhow!(
                    "Loki at {}: the window {} to {} does not start and end on whole milliseconds, the finest \
                     resolution of a LogQL range",
                    self.server.shown,
                    format_rfc3339(w.start),
                    format_rfc3339(w.end)
                )
                .context(Unavailable));
            }
        }
        let q = &self.logql;
        let mut tallies = [Tally::default(), Tally::default()];

        // 1. What the windows hold.
        let span_start = windows.iter().map(|w| w.1.start).min().unwrap_or(current.start);
        let survey_ask = |both| Ask::span(What::Survey, q.survey(both), span_start, current.end);
        let mut asks = vec![survey_ask(false)];
        for &(which, w) in &windows {
            // By model and experiment only where the report shows them.
            asks.push(Ask::new(What::Counts(which), q.counts(Checks::Off, which == Which::Current), w));
        }
        let done = self.run(asks).await?;
        let (quoted, mut bad) = survey(&done[0].samples).map_err(|e| self.bad_answer(&survey_ask(false), e))?;
        let checks = if quoted + bad > 0 { Checks::On } else { Checks::Off };
        if quoted > 0 && bad > 0 {
            // A line may be both: count the bad ones that are not quoted.
            let done = self.run(vec![survey_ask(true)]).await?;
            bad = survey(&done[0].samples).map_err(|e| self.bad_answer(&survey_ask(true), e))?.1;
        }
        for (i, &(which, _)) in windows.iter().enumerate() {
            tallies[which as usize].counts(&done[i + 1].samples).map_err(|e| self.bad_answer_of(&windows, which, e))?;
        }
        if checks == Checks::On {
            // The counts again, without the lines the survey found.
            tallies = [Tally::default(), Tally::default()];
            let mut asks = Vec::new();
            for (i, &(which, w)) in windows.iter().enumerate() {
                let expr = q.counts(checks, which == Which::Current);
                // Refused whole without the checks: refused with them too.
                let exprs = if done[i + 1].apart { expr.apart().to_vec() } else { vec![expr] };
                asks.extend(exprs.into_iter().map(|e| Ask::new(What::Counts(which), e, w)));
            }
            let done = self.run(asks.iter().map(Ask::copy).collect()).await?;
            for (ask, done) in asks.iter().zip(&done) {
                let What::Counts(which) = ask.what else { continue };
                tallies[which as usize].counts(&done.samples).map_err(|e| self.bad_answer_of(&windows, which, e))?;
            }
        }
        let lines: u64 = tallies.iter().map(|t| t.events + t.not_json + t.untyped).sum::<u64>() + quoted + bad;
        if lines == 0 {
            // Filters that select nothing make an empty report; a stream without a line,
            // whatever the filters, is a pipeline that shipped nothing.
            let unfiltered = if q.is_filtered() {
                let done = self.run(vec![Ask::span(What::Single, q.lines(), span_start, current.end)]).await?;
                done[0].samples.iter().map(answer::count).sum::<Result<u64>>()?
            } else {
                0
            };
            if unfiltered == 0 {
                return Err(self.nothing_shipped(&windows));
            }
        }
        let skipped = Skipped {
            not_json: tallies.iter().map(|t| t.not_json).sum(),
            untyped: tallies.iter().map(|t| t.untyped).sum(),
            quoted,
            bad,
        };

        // 2. The measures, the days, the sessions.
        let days = day_bounds(current);
        let mut asks = Vec::new();
        let whole = |e: Expr, t: &Tally| match e.split() {
            Some(split) if t.events > self.max_whole_lines => split,
            _ => e,
        };
        for &(which, w) in &windows {
            let t = &tallies[which as usize];
            let dims = which == Which::Current;
            let agent_by = if t.agent_from_key { AgentBy::Template } else { AgentBy::Id };
            let agent = dims.then_some(agent_by);
            let shapes: Vec<Shape> = t.shapes.keys().copied().collect();
            asks.push(Ask::new(What::Failed(which), q.failed(checks, agent), w));
            asks.push(Ask::new(What::Uncosted(which), q.uncosted(checks, agent), w));
            if !shapes.is_empty() {
                // Cost by group in both windows: the previous one's for the top movers.
                asks.push(Ask::new(What::Cost(which), q.legs(Value::Cost, &shapes, checks, true, Some(agent_by)), w));
                for tokens in [Tokens::Input, Tokens::Output] {
                    let expr = q.legs(Value::Tokens(tokens), &shapes, checks, dims, None);
                    asks.push(Ask::new(What::Tokens(which, tokens), expr, w));
                }
                if dims {
                    for (i, &(start, end)) in days.iter().enumerate() {
                        let expr = q.legs(Value::Cost, &shapes, checks, false, None);
                        asks.push(Ask::span(What::Day(i), expr, start, end));
                    }
                }
            }
            asks.push(Ask::new(What::Sessions(which), whole(q.session_count(checks), t), w));
        }
        asks.push(Ask::new(What::Tuples, whole(q.session_tuples(checks), &tallies[0]), current));
        let done = self.run(asks.iter().map(Ask::copy).collect()).await?;
        let mut daily = vec![Usd::ZERO; days.len()];
        let mut classes = 1;
        for (ask, done) in asks.iter().zip(&done) {
            classes = classes.max(done.classes);
            self.take(&mut tallies, &mut daily, ask, &done.samples)?;
        }

        // 3. The top sessions, the spread; sessions per agent and per variant when a
        // session has several (it counts once under each).
        let cur = &tallies[0];
        let shapes: Vec<Shape> = cur.shapes.keys().copied().collect();
        let sessions = cur.sessions.unwrap_or(0);
        if sessions > 450 && !shapes.is_empty() && (query.top > 0 || query.variant_spread) {
            let limits = self.limits().await;
            classes = classes.max(limits.classes_for(sessions, current.start, current.end));
        }
        let mut asks = Vec::new();
        if !cur.tuples_are_exact() {
            for by_agent in [true, false] {
                asks.push(Ask::new(What::SessionsBy(by_agent), whole(q.sessions_by(checks, by_agent), cur), current));
            }
        }
        if !shapes.is_empty() && query.top > 0 {
            asks.push(Ask::new(What::Top, q.top_sessions(query.top + 1, &shapes, checks), current).in_classes(classes));
        }
        if query.variant_spread && !shapes.is_empty() {
            asks.push(Ask::new(What::Squares, q.cost_squares(&shapes, checks), current).in_classes(classes));
        }
        let done = self.run(asks.iter().map(Ask::copy).collect()).await?;
        let mut top = Vec::new();
        for (ask, done) in asks.iter().zip(done) {
            match ask.what {
                What::Top => top = done.samples,
                _ => self.take(&mut tallies, &mut daily, ask, &done.samples)?,
            }
        }

        // 4. The top sessions' details.
        if query.top > 0 {
            let chosen = self.choose_top(&top, query, &shapes, checks, classes, &tallies[0]).await?;
            tallies[0].top = self.session_rows(&chosen, &shapes, checks, current).await?;
        }

        let [now, before] = tallies;
        now.check(true).map_err(|e| self.disagree(current, &e))?;
        let mut rows = now.rows();
        check_daily(&daily, rows.totals.cost).map_err(|e| self.disagree(current, &e))?;
        rows.daily = current.days().into_iter().zip(daily).map(|((date, _), cost)| DayRow { date, cost }).collect();
        let (previous, previous_costs) = match &query.previous {
            Some(p) => {
                before.check(false).map_err(|e| self.disagree(p, &e))?;
                (Some(before.totals()), Some(before.group_costs()))
            }
            None => (None, None),
        };
        Ok(Answer {
            rows,
            previous,
            previous_costs,
            warnings: skipped.warnings(self.logql.selector(), &now.shapes),
            skipped_lines: skipped.total(),
            files_read: 0,
        })
    }

    /// The server's splitting and series limit, from one `GET /config` (one attempt, at most
    /// 5 s); Loki's defaults when it does not answer.
    async fn limits(&self) -> Limits {
        let started = Instant::now();
        let Ok(reply) = self.get_once("/config", Duration::from_secs(5)).await else { return Limits::default() };
        let limits = match &reply {
            Ok(r) if r.status.is_success() => Limits::from_config(&r.body),
            _ => Limits::default(),
        };
        if self.verbose {
            let status = reply.as_ref().map_or_else(|e| e.to_string(), |r| format!("HTTP {}", r.status.as_u16()));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            eprintln!("loki {} {ms:>7.1} ms  {status}  GET /config: {limits}", self.server.shown);
        }
        limits
    }

    /// Reads one answer into the tallies.
    fn take(&self, tallies: &mut [Tally; 2], daily: &mut [Usd], ask: &Ask, samples: &[Sample]) -> Result<()> {
        let added = match ask.what {
            What::Counts(w) => tallies[w as usize].counts(samples),
            What::Failed(w) => tallies[w as usize].failed(samples),
            What::Uncosted(w) => tallies[w as usize].uncosted(samples, w == Which::Current),
            What::Cost(w) => tallies[w as usize].cost(samples, true),
            What::Tokens(w, t) => tallies[w as usize].tokens(samples, t == Tokens::Input, w == Which::Current),
            What::Day(i) => samples.iter().try_for_each(|s| {
                daily[i] += answer::usd(s)?;
                Ok(())
            }),
            What::Sessions(w) => tallies[w as usize].session_count(samples),
            What::Tuples => tallies[0].session_tuples(samples),
            What::SessionsBy(by_agent) => tallies[0].sessions_by(samples, by_agent),
            What::Squares => tallies[0].squares(samples),
            What::Survey | What::Top | What::AtLeast | What::Details | What::DetailTokens(_) | What::Single => Ok(()),
        };
        added.map_err(|e| self.bad_answer(ask, e))
    }

    /// The top sessions by cost, the JSONL source's way (by cost, then by name), from the
    /// `topk(N + 1)` answers of every class: when the N-th and the (N + 1)-th cost the same,
    /// every session at that cost is asked for, to break the tie by name; when fewer than
    /// N + 1 sessions cost anything, every session is listed.
    async fn choose_top(
        &self,
        found: &[Sample],
        query: &Query,
        shapes: &[Shape],
        checks: Checks,
        classes: u32,
        tally: &Tally,
    ) -> Result<Vec<(String, Option<Usd>)>> {
        let n = query.top;
        let current = &query.window;
        let ranked = rank(found).map_err(|e| self.failure("the top sessions", &format!("{e:#}")))?;
        let boundary = ranked.get(n).map(|s| s.1);
        let nth = ranked.get(n.saturating_sub(1)).map(|s| s.1);
        let positive = |c: Option<Usd>| c.is_some_and(|c| c > Usd::ZERO);
        if ranked.len() > n && positive(nth) && boundary != nth {
            return Ok(ranked.into_iter().take(n).map(|(s, c)| (s, Some(c))).collect());
        }
        if ranked.len() > n && positive(nth) {
            // A tie at the N-th place: every session at that cost, by name.
            let at = nth.unwrap_or(Usd::ZERO).as_f64();
            let expr = self.logql.sessions_costing_at_least(at * (1.0 - 1e-12), shapes, checks);
            let done = self.run(vec![Ask::new(What::AtLeast, expr, current).in_classes(classes)]).await?;
            let all = rank(&done[0].samples).map_err(|e| self.failure("the tied top sessions", &format!("{e:#}")))?;
            return Ok(all.into_iter().take(n).map(|(s, c)| (s, Some(c))).collect());
        }
        // Fewer than N + 1 sessions with a cost: the rest, by name, those that cost
        // nothing (no call, or calls of $0) before those whose calls all lacked a cost.
        let sessions = tally.sessions.unwrap_or(0);
        let classes = classes.max((sessions / 400 + 1).next_power_of_two() as u32).min(Class::MAX);
        let mut asks = vec![Ask::new(What::Single, self.logql.every_session(checks), current).in_classes(classes)];
        if !shapes.is_empty() {
            let expr = self.logql.sessions_costing_at_least(0.0, shapes, checks);
            asks.push(Ask::new(What::Single, expr, current).in_classes(classes));
        }
        let done = self.run(asks).await?;
        let costed_samples = done.get(1).map_or(&[][..], |d| &d.samples[..]);
        let costed: BTreeMap<String, Usd> = rank(costed_samples)
            .map_err(|e| self.failure("the costed sessions", &format!("{e:#}")))?
            .into_iter()
            .collect();
        let mut rest: Vec<(String, Option<Usd>, bool)> = Vec::new();
        for s in &done[0].samples {
            let Some(name) = s.labels.get(logql::SESSION) else { continue };
            if let Some(&c) = costed.get(name) {
                rest.push((name.clone(), Some(c), true));
            } else {
                rest.push((name.clone(), None, false));
            }
        }
        // Sessions without a costed call: `None` if they made calls (all uncosted), else $0.
        let uncosted_only: Vec<String> = rest.iter().filter(|r| !r.2).map(|r| r.0.clone()).collect();
        let calls = self.calls_of(&uncosted_only, checks, current).await?;
        let mut chosen: Vec<(String, Option<Usd>)> = rest
            .into_iter()
            .map(|(name, cost, _)| {
                let cost = cost.or_else(|| (calls.get(&name).copied().unwrap_or(0) == 0).then_some(Usd::ZERO));
                (name, cost)
            })
            .collect();
        chosen.sort_by(|a, b| crate::digest::by_cost(a.1, b.1).then_with(|| a.0.cmp(&b.0)));
        chosen.dedup_by(|a, b| a.0 == b.0);
        chosen.truncate(n);
        Ok(chosen)
    }

    /// Model calls per named session (only for the rare top list that runs out of costed
    /// sessions).
    async fn calls_of(&self, sessions: &[String], checks: Checks, w: &Window) -> Result<BTreeMap<String, u64>> {
        let mut calls = BTreeMap::new();
        for chunk in sessions.chunks(100) {
            let done = self.run(vec![Ask::new(What::Details, self.logql.session_events_of(chunk, checks), w)]).await?;
            let mut details = SessionDetails::default();
            details.events(&done[0].samples).map_err(|e| self.failure("session details", &format!("{e:#}")))?;
            for name in chunk {
                calls.insert(name.clone(), details.rows(&[(name.clone(), None)]).map_or(0, |r| r[0].model_calls));
            }
        }
        Ok(calls)
    }

    /// The chosen sessions' rows: agents and calls, and tokens per shape leg.
    async fn session_rows(
        &self,
        chosen: &[(String, Option<Usd>)],
        shapes: &[Shape],
        checks: Checks,
        w: &Window,
    ) -> Result<Vec<crate::digest::SessionRow>> {
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = chosen.iter().map(|c| c.0.clone()).collect();
        let mut details = SessionDetails::default();
        // One scan while the sessions' lines fit in one answer; three otherwise.
        let lines = self.logql.session_lines_of(&names, checks);
        let text = lines
            .render(w.start, w.end, Class::ALL)
            .ok_or_else(|| self.failure("a query", "not whole milliseconds"))?;
        match self.instant(&text, w.end - 1).await {
            Ok(samples) => {
                details.lines(&samples).map_err(|e| self.bad_answer(&Ask::new(What::Details, lines, w), e))?;
                return details.rows(chosen).map_err(|e| self.disagree(w, &e));
            }
            Err(e) if refusal_of(&e) == Some(Refusal::SeriesLimit) => {}
            Err(e) => return Err(e),
        }
        let mut asks = vec![Ask::new(What::Details, self.logql.session_events_of(&names, checks), w)];
        if !shapes.is_empty() {
            for tokens in [Tokens::Input, Tokens::Output] {
                let expr = self.logql.session_legs_of(&names, Value::Tokens(tokens), shapes, checks);
                asks.push(Ask::new(What::DetailTokens(tokens), expr, w));
            }
        }
        let done = self.run(asks.iter().map(Ask::copy).collect()).await?;
        for (ask, done) in asks.iter().zip(done) {
            let added = match ask.what {
                What::DetailTokens(t) => details.tokens(&done.samples, t == Tokens::Input),
                _ => details.events(&done.samples),
            };
            added.map_err(|e| self.bad_answer(ask, e))?;
        }
        details.rows(chosen).map_err(|e| self.disagree(w, &e))
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
        let (body, tries) = self.get_tried("/loki/api/v1/query", &params).await?;
        parse_vector(&body).map_err(|e| self.failure(&describe(&params), &format!("{e} ({tries})")))
    }

    /// Runs `expr` over `[start, end)`, per class of sessions or split in time as often as
    /// the server's series limit requires. The samples of every class and piece, in no
    /// particular order.
    pub async fn instant_split(&self, expr: &Expr, start: Nanos, end: Nanos) -> Result<Vec<Sample>> {
        let ask = Ask::span(What::Single, expr.clone(), start, end);
        Ok(self.run(vec![ask]).await?.remove(0).samples)
    }

    /// Sends one GET request; the answer's body when the status is a success, else an
    /// error naming the server, the request and the first line of the answer.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String> {
        Ok(self.get_tried(path, params).await?.0)
    }

    /// [`LokiSource::get`], and how many attempts in how long it took.
    pub async fn get_tried(&self, path: &str, params: &[(&str, &str)]) -> Result<(String, http::Tries)> {
        let url = self.url(path, params)?;
        let what = describe(params);
        let what = if what.is_empty() { format!("GET {path}") } else { what };
        let started = Instant::now();
        let reply = http::fetch(&self.server, || self.server.client.get(url.clone()).send())
            .await
            .map_err(|e| self.failure(&what, &e.to_string()))?;
        let http::Reply { status, body, tries, .. } = reply;
        if self.verbose {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            eprintln!("loki {} {:>7.1} ms  HTTP {}  {what}", self.server.shown, ms, status.as_u16());
        }
        if status.is_success() {
            return Ok((body, tries));
        }
        if self.verbose {
            eprintln!("loki answered:\n{}", crate::config::scrub(&body));
        }
        Err(self.refused(&format!("{what} ({tries})"), status, body))
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

    /// Runs every ask, for each of its classes over its span. A piece Loki refuses for the
    /// series limit is asked again as two classes of sessions (queries over sessions), as
    /// its parts one dimension at a time (a query that has them), or as two halves in time
    /// (any other); an unsplit query Loki fails with a server error is asked again in the
    /// form its frontend splits. Rounds of at most `max_concurrency` requests in flight; the
    /// first failure nothing can cure ends the run.
    async fn run(&self, asks: Vec<Ask>) -> Result<Vec<Done>> {
        let mut done: Vec<Done> =
            asks.iter().map(|a| Done { samples: Vec::new(), classes: a.classes, apart: false }).collect();
        let mut pieces_of = vec![1usize; asks.len()];
        let mut pending: Vec<Piece> = Vec::new();
        for (i, ask) in asks.iter().enumerate() {
            for index in 0..ask.classes {
                let class = Class { index, of: ask.classes };
                pending.push(Piece { ask: i, start: ask.start, end: ask.end, class, expr: ask.expr.clone() });
            }
        }
        while !pending.is_empty() {
            // Queries over sessions are left to Loki's splitting, which already spreads one
            // over all its workers: a few at a time finish sooner each (a default Loki drops
            // an answer not written within 30 s) and take no longer in all.
            let (heavy, light): (Vec<Piece>, Vec<Piece>) =
                std::mem::take(&mut pending).into_iter().partition(|p| p.expr.by_session() || p.expr.is_distinct());
            let ask = |piece: Piece| async move {
                let text = piece.expr.render(piece.start, piece.end, piece.class).ok_or_else(|| {
                    self.failure("a query", "a piece of the window is not whole milliseconds (a bug)")
                })?;
                match self.instant(&text, piece.end - 1).await {
                    Ok(samples) => Ok((piece, Ok(samples))),
                    Err(e) if curable(&e, &piece.expr) => Ok((piece, Err(e))),
                    Err(e) => Err(e),
                }
            };
            let light = stream::iter(light).map(ask).buffer_unordered(self.max_concurrency.max(1)).try_collect();
            let heavy = stream::iter(heavy)
                .map(ask)
                .buffer_unordered(SESSION_CONCURRENCY.min(self.max_concurrency).max(1))
                .try_collect();
            let (light, heavy): (Vec<Asked>, Vec<Asked>) = tokio::try_join!(light, heavy)?;
            let round = light.into_iter().chain(heavy);
            for (piece, outcome) in round {
                let i = piece.ask;
                let refused = match outcome {
                    Ok(samples) => {
                        done[i].samples.extend(samples);
                        continue;
                    }
                    Err(e) => e,
                };
                if refusal_of(&refused) != Some(Refusal::SeriesLimit) {
                    // An unsplit query the server could not finish: let its frontend split it.
                    let expr = piece.expr.split().unwrap_or_else(|| piece.expr.clone());
                    pending.push(Piece { expr, ..piece });
                    continue;
                }
                if piece.expr.is_distinct() {
                    // Distinct counts do not add up over time pieces: ask the form split by
                    // classes of sessions instead.
                    let Some(expr) = piece.expr.split() else {
                        return Err(refused.context("the answer cannot be completed: a distinct count was refused"));
                    };
                    pending.push(Piece { expr, ..piece });
                    continue;
                }
                if piece.expr.by_session() {
                    let Some(halves) = piece.class.halves() else {
                        return Err(refused.context(format!(
                            "the answer cannot be completed: one of {} classes of sessions still exceeds Loki's series \
                             limit",
                            piece.class.of
                        )));
                    };
                    done[i].classes = done[i].classes.max(halves[0].of);
                    pending.extend(halves.map(|class| Piece { class, expr: piece.expr.clone(), ..piece }));
                    continue;
                }
                if !piece.expr.apart().is_empty() {
                    // More combinations of model, agent and variant than the limit: each on
                    // its own (time splitting rarely shrinks them).
                    done[i].apart = true;
                    pending.extend(piece.expr.apart().iter().map(|expr| Piece { expr: expr.clone(), ..piece }));
                    continue;
                }
                let mid = (piece.start + (piece.end - piece.start) / 2) / MIN_PIECE * MIN_PIECE;
                if mid <= piece.start || pieces_of[i] >= self.max_pieces {
                    return Err(refused.context(format!(
                        "the answer cannot be completed: a piece of {} from {} still exceeds Loki's series limit \
                         after splitting into {} pieces (the window holds more combinations of event type, \
                         model, agent and experiment than max_query_series; raise it, or narrow the digest \
                         with --agent, --model or --experiment)",
                        logql::range(piece.end - piece.start).unwrap_or_else(|| "?".into()),
                        format_rfc3339(piece.start),
                        pieces_of[i]
                    )));
                }
                pieces_of[i] += 1;
                pending.push(Piece { end: mid, expr: piece.expr.clone(), ..piece });
                pending.push(Piece { start: mid, ..piece });
            }
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
        let query = ask.expr.render(ask.start, ask.end, Class::ALL).unwrap_or_default();
        self.failure(
            &format!("query `{query}` over [{}, {})", format_rfc3339(ask.start), format_rfc3339(ask.end)),
            &format!("{why:#}"),
        )
    }

    fn bad_answer_of(&self, windows: &[(Which, &Window)], which: Which, why: anyhow::Error) -> anyhow::Error {
        let w = windows.iter().find(|w| w.0 == which).map(|w| w.1);
        let span = w.map(|w| format!("{} to {}", format_rfc3339(w.start), format_rfc3339(w.end))).unwrap_or_default();
        self.failure(&format!("the line counts for {span}"), &format!("{why:#}"))
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

/// One request: an ask's class over one time piece.
struct Piece {
    ask: usize,
    start: Nanos,
    end: Nanos,
    class: Class,
    expr: Expr,
}

impl Ask {
    fn copy(&self) -> Ask {
        Ask { what: self.what, expr: self.expr.clone(), start: self.start, end: self.end, classes: self.classes }
    }
}

/// A failure asking again can cure: the series limit (split), or a server error on a query
/// sent unsplit (let the frontend split it, once).
fn curable(e: &anyhow::Error, expr: &Expr) -> bool {
    match e.downcast_ref::<LokiError>() {
        Some(l) if l.refusal == Refusal::SeriesLimit => true,
        Some(l) => l.status.is_server_error() && expr.split().is_some(),
        None => false,
    }
}

/// The survey's counts: lines with a number written as a string, and with a bad number.
fn survey(samples: &[Sample]) -> Result<(u64, u64)> {
    let (mut quoted, mut bad) = (0, 0);
    for s in samples {
        let n = answer::count(s)?;
        match s.labels.get(logql::PART).map(String::as_str) {
            Some("quoted") => quoted += n,
            Some("bad") => bad += n,
            _ => return Err(anyhow!("{:?} is not a part of the survey", s.labels)),
        }
    }
    Ok((quoted, bad))
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

/// `[start, end)` of each local day of the window.
fn day_bounds(w: &Window) -> Vec<(Nanos, Nanos)> {
    let days = w.days();
    let ends = days.iter().skip(1).map(|&(_, t)| t).chain([w.end]);
    days.iter().zip(ends).map(|(&(_, start), end)| (start, end)).collect()
}

/// Lines skipped in both windows, by reason.
struct Skipped {
    not_json: u64,
    untyped: u64,
    quoted: u64,
    bad: u64,
}

impl Skipped {
    fn total(&self) -> u64 {
        self.not_json + self.untyped + self.quoted + self.bad
    }

    fn warnings(&self, selector: &str, shapes: &BTreeMap<Shape, u64>) -> Vec<String> {
        let mut out = Vec::new();
        if !shapes.is_empty() {
            let list: Vec<String> = shapes.iter().map(|(s, n)| format!("{s:?} (`{}`) {n}", s.type_field())).collect();
            out.push(format!("Loki {selector}: events by shape in the window: {}", list.join(", ")));
        }
        let total = self.total();
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
