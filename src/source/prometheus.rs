//! The Prometheus source: the digest's aggregates from PromQL (see `promql.rs` for the
//! queries and why they are exact).
//!
//! A first round of requests whose number does not depend on the models or agents, at most
//! [`MAX_IN_FLIGHT`] at once (and a second round only for the pieces that need it, below):
//! which series exist (the series API, an index lookup), the cost per day by
//! agent/model/provider (in the cheap whole form first: one range query with a one-day step;
//! one instant query per day when the days differ in length), sessions by agent/model/provider, tokens by
//! model/provider/type, tool calls by status, model errors, duration buckets, and the
//! previous window's totals. Each increase is asked piece by piece (the cost by day, the
//! others by pieces of about a day), cheap whole form first, full form only for the pieces
//! with a restart or a birth ([`PrometheusSource::increases`]). The window's cost by model
//! and agent is the sum of its days: the days partition the window and, when the local
//! midnights lie on the step grid, the pieces add up to the window's increase exactly; the
//! server does not compute the cost twice.
//! Per-session and per-variant figures are not in any metric; those sections are left to
//! other sources.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Result};
use futures_util::future::try_join_all;
use prometheus_http_query::response::Data;
use serde::Deserialize;

use super::http::{self, Server};
use super::promql::PromQl;
use super::{Answer, Query};
use crate::config::ServerConfig;
use crate::digest::{AgentRow, DayRow, Durations, GroupCosts, ModelRow, Rows, Totals};
use crate::error::Unavailable;
use crate::usd::Usd;
use crate::window::{format_rfc3339, Nanos, Window, NANOS_PER_SEC};

pub struct PrometheusSource {
    server: Server,
    client: prometheus_http_query::Client,
    promql: PromQl,
    timeout_ms: i64,
    /// At most [`MAX_IN_FLIGHT`] requests at a time: the second round of pieces would
    /// otherwise send up to three more per measure at once.
    in_flight: tokio::sync::Semaphore,
    /// Log every query and its duration on standard error (`--verbose`).
    pub verbose: bool,
}

/// Requests in flight at once, at most: a digest's first round over a week of equal days
/// (12 requests) all at once.
const MAX_IN_FLIGHT: usize = 12;

/// A value with the labels of its series.
type Labelled<T> = (HashMap<String, String>, T);

/// One series of an instant answer: its labels and value.
pub type Sample = Labelled<f64>;

/// One series of cost: its labels and dollars.
type CostRow = Labelled<Usd>;

/// One series of a range answer: its labels and its points (Unix seconds, value).
pub type Series = (HashMap<String, String>, Vec<(i64, f64)>);

/// A span `(start, end]` of a window: increases are asked piece by piece (see
/// [`PrometheusSource::increases`]).
type Piece = (Nanos, Nanos);

/// One piece's answer, and the query that gave it (for an error that names it).
struct PieceAnswer {
    query: String,
    samples: Vec<Sample>,
}

/// Pieces of one measure asked again one by one in a form, at most; more are asked again
/// all at once, in one range query.
const MAX_REASKED: usize = 3;

/// What a piece's first answer leaves to ask (see [`PromQl::whole_or_unknown_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Every group is a number: the answer stands.
    Nothing,
    /// A group is `+Inf`: a series without a value in the piece before (born, or back from a
    /// longer silence), and none with a reset. The whole term with the window's lookback is exact.
    Whole,
    /// A group is `-Inf` or NaN (a series with a reset), or there was no first answer: the
    /// full form, with the per-step terms.
    Steps,
}

impl Need {
    fn of(answer: &Option<PieceAnswer>) -> Need {
        let Some(answer) = answer else { return Need::Steps };
        let values = || answer.samples.iter().map(|(_, v)| *v);
        if values().any(|v| v.is_nan() || v == f64::NEG_INFINITY) {
            Need::Steps
        } else if values().any(|v| v == f64::INFINITY) {
            Need::Whole
        } else {
            Need::Nothing
        }
    }
}

impl PrometheusSource {
    pub fn new(cfg: &ServerConfig, promql: PromQl) -> Result<PrometheusSource> {
        let server = http::connect(cfg)?;
        let client = prometheus_http_query::Client::from(server.client.clone(), &server.base_url)
            .map_err(|e| anyhow!("invalid Prometheus URL {}: {e}", server.shown))?;
        let timeout_ms = cfg.query_timeout.as_millis().min(i64::MAX as u128) as i64;
        let in_flight = tokio::sync::Semaphore::new(MAX_IN_FLIGHT);
        Ok(PrometheusSource { server, client, promql, timeout_ms, in_flight, verbose: false })
    }

    pub fn shown_url(&self) -> &str {
        &self.server.shown
    }

    /// One quick request (`query=1`, no retry) to learn whether the server answers at all,
    /// so that `--source auto` never waits out full timeouts and retries on a dead server.
    pub async fn probe(&self, timeout: std::time::Duration) -> Result<()> {
        let url = http::endpoint(&self.server, "api/v1/query")?;
        let timeout = timeout.min(self.server.timeout);
        let reply = http::probe(timeout, || {
            self.server.client.get(url.clone()).query(&[("query", "1")]).timeout(timeout).send()
        })
        .await
        .map_err(|e| anyhow!("Prometheus at {}: {e}", self.server.shown))?;
        if !reply.status.is_success() {
            let first = reply.body.lines().map(str::trim).find(|l| !l.is_empty());
            let said = first.map(|l| format!(": {}", l.chars().take(200).collect::<String>())).unwrap_or_default();
            bail!("Prometheus at {} answered HTTP {}{said} ({})", self.server.shown, reply.status, reply.tries);
        }
        Ok(())
    }

    pub async fn answer(&self, query: &Query) -> Result<Answer> {
        let w = &query.window;
        let q = &self.promql;
        let n = q.names();
        let len = span_ms(w);
        let (agent, model, provider) = (n.agent.as_str(), n.model.as_str(), n.provider.as_str());
        // Quantiles are ratios of bucket counts: `increase()` is exact enough for them (the
        // error on the test week is in tests/prometheus.rs) and costs a fraction of the exact
        // form, which was the digest's slowest request.
        let buckets_q = q.plain_increase_by(&q.duration_bucket(), &["le"], len);
        let presence = q.presence_selector();
        let cost_count = q.cost_count();
        let (by_agent_model, by_token_type) = ([agent, model, provider], [model, provider, n.token_type.as_str()]);
        let by_status = [n.status.as_str()];

        let (found, (daily, cost), sessions, tokens, tools, errors, buckets, previous) = tokio::try_join!(
            self.series_names(&presence, w),
            self.daily(w),
            self.increase(&cost_count, &by_agent_model, w),
            self.increase(&n.session_tokens, &by_token_type, w),
            self.increase(&n.tool_calls, &by_status, w),
            self.increase(&n.model_errors, &[], w),
            self.instant(buckets_q, w.end),
            async {
                match &query.previous {
                    Some(p) => self.totals(p).await.map(Some),
                    None => Ok(None),
                }
            },
        )?;

        let mut warnings = Vec::new();
        let missing = |name: &str| !found.iter().any(|f| f == name);
        for required in [q.cost_sum(), q.cost_count(), n.session_tokens.clone()] {
            if missing(&required) {
                return Err(anyhow!(
                    "series {required} not found at Prometheus {} between {} and {}: no cost data for this window",
                    self.server.shown,
                    format_rfc3339(w.start),
                    format_rfc3339(w.end)
                )
                .context(Unavailable));
            }
        }
        let optional = [
            (n.tool_calls.clone(), "tool calls"),
            (n.model_errors.clone(), "model errors"),
            (q.duration_bucket(), "session durations"),
        ];
        for (name, what) in &optional {
            if missing(name) {
                warnings
                    .push(format!("series {name} not found at Prometheus {}: {what} unavailable", self.server.shown));
            }
        }

        let failures_known = self.check_labels(&tokens, &tools, &mut warnings)?;
        let mut totals = Totals {
            cost: cost.iter().map(|(_, usd)| *usd).sum(),
            sessions: round_sum(&sessions),
            costed_sessions: Some(round_sum(&sessions)),
            input_tokens: sum_where(&tokens, &n.token_type, "input"),
            output_tokens: sum_where(&tokens, &n.token_type, "output"),
            ..Totals::default()
        };
        if !missing(&n.tool_calls) {
            totals.tool_calls = Some(round_sum(&tools));
            totals.tool_failures = failures_known.then(|| sum_where(&tools, &n.status, "error"));
        }
        if !missing(&n.model_errors) {
            totals.model_errors = Some(round_sum(&errors));
        }
        // Both quantiles from one answer: the buckets' increases, interpolated the way
        // PromQL's histogram_quantile does.
        let buckets: Vec<(f64, f64)> =
            buckets.iter().filter_map(|(l, v)| Some((parse_le(l.get("le")?)?, *v))).collect();
        let durations = match (histogram_quantile(0.5, &buckets), histogram_quantile(0.95, &buckets)) {
            (Some(p50_seconds), Some(p95_seconds)) => Some(Durations { p50_seconds, p95_seconds }),
            _ => None,
        };
        let rows = Rows {
            totals,
            by_model: self.by_model(&cost, &tokens),
            by_agent: self.by_agent(&cost, &sessions),
            by_variant: Vec::new(),
            by_session: Vec::new(),
            daily,
            durations,
        };
        let (mut previous, previous_costs) = previous.unzip();
        // A series that exists but did not move in the previous window counted 0 there (the
        // answer is empty), as the files say, not "unknown".
        if let Some(p) = previous.as_mut() {
            // (With calls counted, the failures are known or, without a status label, not.)
            if !missing(&n.tool_calls) && p.tool_calls.is_none() {
                (p.tool_calls, p.tool_failures) = (Some(0), Some(0));
            }
            if !missing(&n.model_errors) {
                p.model_errors.get_or_insert(0);
            }
        }
        Ok(Answer { rows, previous, previous_costs, warnings, ..Answer::default() })
    }

    /// The previous window's totals, with the same queries, and its cost by model and
    /// agent (the top movers).
    async fn totals(&self, w: &Window) -> Result<(Totals, GroupCosts)> {
        let q = &self.promql;
        let n = q.names();
        let by = [n.agent.as_str(), n.model.as_str(), n.provider.as_str()];
        let (cost_sum, cost_count, pieces) = (q.cost_sum(), q.cost_count(), pieces(w, q.step_seconds()));
        let (by_token_type, by_status) = ([n.token_type.as_str()], [n.status.as_str()]);
        let (cost, sessions, tokens, tools, errors) = tokio::try_join!(
            self.increases(&cost_sum, &by, &pieces),
            self.increase(&cost_count, &[], w),
            self.increase(&n.session_tokens, &by_token_type, w),
            self.increase(&n.tool_calls, &by_status, w),
            self.increase(&n.model_errors, &[], w),
        )?;
        let (_, cost) = self.costs(&cost)?;
        let failures_known = self.check_labels(&tokens, &tools, &mut Vec::new())?;
        let mut groups = GroupCosts::default();
        for m in self.by_model(&cost, &Vec::new()) {
            groups.by_model.insert((m.model, m.provider), m.cost.unwrap_or_default());
        }
        for a in self.by_agent(&cost, &Vec::new()) {
            groups.by_agent.insert(a.agent, a.cost.unwrap_or_default());
        }
        let totals = Totals {
            cost: cost.iter().map(|(_, usd)| *usd).sum(),
            sessions: round_sum(&sessions),
            costed_sessions: Some(round_sum(&sessions)),
            input_tokens: sum_where(&tokens, &n.token_type, "input"),
            output_tokens: sum_where(&tokens, &n.token_type, "output"),
            tool_calls: (!tools.is_empty()).then(|| round_sum(&tools)),
            tool_failures: (!tools.is_empty() && failures_known).then(|| sum_where(&tools, &n.status, "error")),
            model_errors: (!errors.is_empty()).then(|| round_sum(&errors)),
            ..Totals::default()
        };
        Ok((totals, groups))
    }

    /// Cost per local day, and the window's cost by agent/model/provider as the sum of
    /// its days (the days are the pieces, see [`Self::increases`]).
    async fn daily(&self, w: &Window) -> Result<(Vec<DayRow>, Vec<CostRow>)> {
        let q = &self.promql;
        let n = q.names();
        let by = [n.agent.as_str(), n.model.as_str(), n.provider.as_str()];
        let days = w.days();
        let ends = days.iter().skip(1).map(|&(_, t)| t).chain([w.end]);
        let pieces: Vec<Piece> = days.iter().zip(ends).map(|(&(_, start), end)| (start, end)).collect();
        let answers = self.increases(&q.cost_sum(), &by, &pieces).await?;
        let (per_day, window) = self.costs(&answers)?;
        let rows = days.into_iter().zip(per_day).map(|((date, _), cost)| DayRow { date, cost }).collect();
        Ok((rows, window))
    }

    /// The increase of `metric` over each piece of a window, summed `by` the labels. Each
    /// piece is asked first in the cheap whole form (one range query when the pieces are
    /// equal, else one instant query each). A piece where some group came back unknown is
    /// asked again ([`Need`]): in the full form for a reset in it, so only such pieces pay for
    /// the per-step terms, or in the whole form with the window's lookback for a birth or a
    /// series silent through the piece before. More than [`MAX_REASKED`] pieces of a kind (a
    /// gateway restarting daily), when the pieces are equal, are asked again in one range
    /// query. Off the step grid there is no first try: every piece is asked in the full form.
    async fn increases(&self, metric: &str, by: &[&str], pieces: &[Piece]) -> Result<Vec<PieceAnswer>> {
        let q = &self.promql;
        let step = q.step_seconds() as i64 * NANOS_PER_SEC;
        let window_ms = (pieces[pieces.len() - 1].1 - pieces[0].0) / 1_000_000;
        // A piece taken whole next to one counted by steps adds up to the pair's increase
        // only where they meet on the step grid (off it, one step's samples would count in
        // both or in neither). The full form mixes the two as well, series by series, so off
        // the grid the pieces go straight to it, as they did before pieces; the step is
        // chosen to put the days on the grid where it can be (`effective_step`).
        let on_grid = pieces.iter().skip(1).all(|&(start, _)| start.rem_euclid(step) == 0);
        let mut answers: Vec<Option<PieceAnswer>> = if on_grid {
            let first = self.each_piece(|ms| q.whole_or_unknown_by(metric, by, ms), pieces).await?;
            first.into_iter().map(Some).collect()
        } else {
            pieces.iter().map(|_| None).collect()
        };
        let need: Vec<Need> = answers.iter().map(Need::of).collect();
        let pieces_needing = |n: Need| (0..pieces.len()).filter(|&i| need[i] == n).collect::<Vec<usize>>();
        let (steps, mut whole) = (pieces_needing(Need::Steps), pieces_needing(Need::Whole));
        if steps.len() > MAX_REASKED && uniform(pieces) {
            return self.each_piece(|ms| q.piece_increase_by(metric, by, ms, window_ms), pieces).await;
        }
        if whole.len() > MAX_REASKED && uniform(pieces) {
            // Asked for every piece, kept only where no series has a reset.
            let all = self.each_piece(|ms| q.whole_by(metric, by, ms, window_ms), pieces).await?;
            for (i, answer) in all.into_iter().enumerate() {
                if need[i] == Need::Whole {
                    answers[i] = Some(answer);
                }
            }
            whole.clear();
        }
        let len_ms = |i: usize| (pieces[i].1 - pieces[i].0) / 1_000_000;
        let again = steps
            .iter()
            .map(|&i| (i, q.piece_increase_by(metric, by, len_ms(i), window_ms)))
            .chain(whole.iter().map(|&i| (i, q.whole_by(metric, by, len_ms(i), window_ms))))
            .map(|(i, query)| async move { Ok::<_, anyhow::Error>((i, self.ask_piece(query, pieces[i].1).await?)) });
        for (i, answer) in try_join_all(again).await? {
            answers[i] = Some(answer);
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// One instant query at a piece's end.
    async fn ask_piece(&self, query: String, end: Nanos) -> Result<PieceAnswer> {
        Ok(PieceAnswer { samples: self.instant(query.clone(), end).await?, query })
    }

    /// One query per piece, made by `query_for` from the piece's length in milliseconds: one
    /// range query when the pieces are [`uniform`], else one instant query each.
    async fn each_piece(&self, query_for: impl Fn(i64) -> String, pieces: &[Piece]) -> Result<Vec<PieceAnswer>> {
        if !uniform(pieces) {
            let queries = pieces.iter().map(|&(start, end)| self.ask_piece(query_for((end - start) / 1_000_000), end));
            return try_join_all(queries).await;
        }
        let len = pieces[0].1 - pieces[0].0;
        let query = query_for(len / 1_000_000);
        let last = pieces[pieces.len() - 1].1;
        let series = self.range(&query, pieces[0].1, last, len / NANOS_PER_SEC).await?;
        let at: HashMap<i64, usize> =
            pieces.iter().enumerate().map(|(i, &(_, end))| (end / NANOS_PER_SEC, i)).collect();
        let mut answers: Vec<PieceAnswer> =
            pieces.iter().map(|_| PieceAnswer { query: query.clone(), samples: Vec::new() }).collect();
        for (labels, points) in series {
            for (t, v) in points {
                // A point off the pieces' ends would be a server bug: fail rather than count
                // it in some other piece.
                let i = at
                    .get(&t)
                    .ok_or_else(|| self.failure(&query, &format!("answered a point at {t}, not at a piece's end")))?;
                answers[*i].samples.push((labels.clone(), v));
            }
        }
        Ok(answers)
    }

    /// A window's increase of `metric`, summed `by` the labels: the sum of its [`pieces`].
    async fn increase(&self, metric: &str, by: &[&str], w: &Window) -> Result<Vec<Sample>> {
        let answers = self.increases(metric, by, &pieces(w, self.promql.step_seconds())).await?;
        // A count that is no number (a counter written as NaN) fails the query rather than
        // vanish from the totals.
        if let Some((answer, (labels, v))) =
            answers.iter().flat_map(|a| a.samples.iter().map(move |s| (a, s))).find(|(_, (_, v))| !v.is_finite())
        {
            let what = format!("answered {v} for {}, which is not a count", shown(labels));
            return Err(self.failure(&answer.query, &what));
        }
        Ok(sum_by_labels(answers.into_iter().flat_map(|a| a.samples)))
    }

    /// The pieces' costs as amounts: each piece's total, and the sum of the pieces by label set.
    fn costs(&self, answers: &[PieceAnswer]) -> Result<(Vec<Usd>, Vec<CostRow>)> {
        let mut rows: Vec<CostRow> = Vec::new();
        let mut per_piece = Vec::with_capacity(answers.len());
        for answer in answers {
            let mut piece = Usd::ZERO;
            for (labels, v) in &answer.samples {
                let usd = self.amount(|| answer.query.clone(), labels, *v)?;
                piece += usd;
                rows.push((labels.clone(), usd));
            }
            per_piece.push(piece);
        }
        Ok((per_piece, sum_by_labels(rows)))
    }

    /// Checks the token and tool-call series carry the labels the figures split on. A token
    /// series without its type fails the answer: no token would be known to be input or
    /// output, and a total of 0 would be a wrong figure (a token gate would pass on it). A
    /// tool series without a status makes the failures unknown (`false`), not 0.
    fn check_labels(&self, tokens: &[Sample], tools: &[Sample], warnings: &mut Vec<String>) -> Result<bool> {
        let (n, shown) = (self.promql.names(), &self.server.shown);
        let set_it = |label: &str| {
            format!("if the gateway names that label otherwise, set it in the config's [prometheus.labels] {label}")
        };
        if let Some(found) = unlabelled(tokens, &n.token_type, &["input", "output"]) {
            if found.missing > 0.0 {
                return Err(anyhow!(
                    "{} at Prometheus {shown} has series without a `{}` label ({} tokens): obsctl cannot tell \
                     input from output tokens; {}",
                    n.session_tokens,
                    n.token_type,
                    found.missing.round(),
                    set_it("token_type")
                )
                .context(Unavailable));
            }
            warnings.push(format!(
                "{} at Prometheus {shown}: {} tokens of type {} are neither input nor output, not counted",
                n.session_tokens,
                found.other.round(),
                found.values.join(", ")
            ));
        }
        match unlabelled(tools, &n.status, &["success", "error"]) {
            Some(found) if found.missing > 0.0 => {
                warnings.push(format!(
                    "{} at Prometheus {shown} has series without a `{}` label ({} calls): tool failures unknown; {}",
                    n.tool_calls,
                    n.status,
                    found.missing.round(),
                    set_it("status")
                ));
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    fn by_model(&self, cost: &[CostRow], tokens: &[Sample]) -> Vec<ModelRow> {
        let n = self.promql.names();
        let mut rows: BTreeMap<(String, String), ModelRow> = BTreeMap::new();
        let key = |labels: &HashMap<String, String>| {
            (label(labels, &n.model), label(labels, &n.provider).to_ascii_lowercase())
        };
        let new = |(model, provider): (String, String)| ModelRow {
            model,
            provider,
            cost: Some(Usd::ZERO),
            input_tokens: 0,
            output_tokens: 0,
            calls: None,
        };
        for (labels, usd) in cost {
            let k = key(labels);
            let r = rows.entry(k.clone()).or_insert_with(|| new(k));
            r.cost = Some(r.cost.unwrap_or_default() + *usd);
        }
        for (labels, value) in tokens {
            let k = key(labels);
            let r = rows.entry(k.clone()).or_insert_with(|| new(k));
            match labels.get(&n.token_type).map(String::as_str) {
                Some("input") => r.input_tokens += value.round() as u64,
                Some("output") => r.output_tokens += value.round() as u64,
                _ => {}
            }
        }
        rows.into_values().collect()
    }

    fn by_agent(&self, cost: &[CostRow], sessions: &[Sample]) -> Vec<AgentRow> {
        let n = self.promql.names();
        let mut rows: BTreeMap<String, AgentRow> = BTreeMap::new();
        let new = |agent: String| AgentRow { agent, cost: Some(Usd::ZERO), sessions: 0, errors: None };
        for (labels, usd) in cost {
            let agent = label(labels, &n.agent);
            let r = rows.entry(agent.clone()).or_insert_with(|| new(agent));
            r.cost = Some(r.cost.unwrap_or_default() + *usd);
        }
        for (labels, value) in sessions {
            let agent = label(labels, &n.agent);
            rows.entry(agent.clone()).or_insert_with(|| new(agent)).sessions += value.round() as u64;
        }
        rows.into_values().collect()
    }

    /// Runs an instant query at `at`, retrying what is worth retrying.
    async fn instant(&self, promql: String, at: Nanos) -> Result<Vec<Sample>> {
        let promql = promql.as_str();
        let request = self.client.query(promql).query("time", api_time(at)).timeout(self.timeout_ms);
        let shown = format!("instant time={}", api_time(at));
        let data: Data = self.send(promql, &shown, || request.clone().get_raw()).await?;
        instant_samples(data).map_err(|what| self.failure(promql, what))
    }

    /// Runs a range query; each series with its points by their time in whole seconds.
    async fn range(&self, promql: &str, start: Nanos, end: Nanos, step: i64) -> Result<Vec<Series>> {
        let (start, end) = (start / NANOS_PER_SEC, end / NANOS_PER_SEC);
        let request = self.client.query_range(promql, start, end, step as f64).timeout(self.timeout_ms);
        let shown = format!("range start={start} end={end} step={step}");
        let data: Data = self.send(promql, &shown, || request.clone().get_raw()).await?;
        range_series(data).map_err(|what| self.failure(promql, what))
    }

    /// The metric names of the series matching `selector` that hold samples in the window
    /// (the series API, `(start, end]` like the queries: an index lookup, no sample is read).
    async fn series_names(&self, selector: &str, w: &Window) -> Result<Vec<String>> {
        let series = self.series(selector, w.start + 1_000_000, w.end).await?;
        let mut names: Vec<String> = series.into_iter().filter_map(|mut labels| labels.remove("__name__")).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The label sets of the series matching `selector` with samples between `start` and
    /// `end` (the series API: an index lookup, no sample is read).
    pub async fn series(&self, selector: &str, start: Nanos, end: Nanos) -> Result<Vec<HashMap<String, String>>> {
        let url = http::endpoint(&self.server, "api/v1/series").map_err(|e| self.failure(selector, &e.to_string()))?;
        // Built here rather than with prometheus-http-query's `Selector`, which does not
        // escape label values: the selector holds the `--agent` value, quoted by PromQl.
        let params = [("match[]", selector.to_string()), ("start", api_time(start)), ("end", api_time(end))];
        let shown = format!("series start={} end={}", params[1].1, params[2].1);
        self.send(selector, &shown, || self.server.client.get(url.clone()).query(&params).send()).await
    }

    /// Every metric name with samples between `start` and `end` (`/api/v1/label/__name__/values`).
    pub async fn metric_names(&self, start: Nanos, end: Nanos) -> Result<Vec<String>> {
        let what = "GET /api/v1/label/__name__/values";
        let url = http::endpoint(&self.server, "api/v1/label/__name__/values")
            .map_err(|e| self.failure(what, &e.to_string()))?;
        let params = [("start", api_time(start)), ("end", api_time(end))];
        let shown = format!("label values start={} end={}", params[0].1, params[1].1);
        self.send(what, &shown, || self.server.client.get(url.clone()).query(&params).send()).await
    }

    /// The scrape targets Prometheus is asked to scrape (`/api/v1/targets?state=active`).
    pub async fn targets(&self) -> Result<Vec<Target>> {
        let what = "GET /api/v1/targets";
        let url = http::endpoint(&self.server, "api/v1/targets").map_err(|e| self.failure(what, &e.to_string()))?;
        let targets: Targets = self
            .send(what, "targets state=active", || {
                self.server.client.get(url.clone()).query(&[("state", "active")]).send()
            })
            .await?;
        Ok(targets.active_targets)
    }

    /// Sends a request (`shown` says which, for `--verbose`), retrying what is worth
    /// retrying, and unwraps the API's envelope.
    async fn send<T, E, F, Fut>(&self, promql: &str, shown: &str, make: F) -> Result<T>
    where
        T: serde::de::DeserializeOwned,
        E: http::RetryClass + std::error::Error + 'static,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Response, E>>,
    {
        let _permit = self.in_flight.acquire().await.map_err(|e| self.failure(promql, &e.to_string()))?;
        let started = std::time::Instant::now();
        let reply = http::fetch(&self.server, make).await.map_err(|e| self.failure(promql, &e.to_string()))?;
        if self.verbose {
            eprintln!(
                "prometheus {} {:>6.1} ms  {shown}  {promql}",
                self.server.shown,
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        let http::Reply { status, json, body, tries } = reply;
        decode(status, json, &body).map_err(|what| self.failure(promql, &format!("{what} ({tries})")))
    }

    /// A sample of a cost query as an amount. A value that is none (NaN, negative, past
    /// $10^15) fails the query rather than vanish from the totals.
    /// (`promql` is made only for the error: the daily loop would build it per sample.)
    fn amount(&self, promql: impl FnOnce() -> String, labels: &HashMap<String, String>, value: f64) -> Result<Usd> {
        Usd::from_f64(value).ok_or_else(|| {
            self.failure(&promql(), &format!("answered {value} for {}, which is not a cost", shown(labels)))
        })
    }

    fn failure(&self, promql: &str, what: &str) -> anyhow::Error {
        anyhow!("Prometheus at {}: query `{promql}`: {what}", self.server.shown).context(Unavailable)
    }
}

/// One scrape target, as `/api/v1/targets` describes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The target's labels after relabelling: `job`, `instance`, …
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub scrape_pool: String,
    #[serde(default)]
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    #[serde(default)]
    pub health: String,
    /// Why the last scrape failed (`server returned HTTP status 401 Unauthorized`); empty when it did not.
    #[serde(default)]
    pub last_error: String,
}

#[doc(hidden)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    #[serde(default)]
    pub active_targets: Vec<Target>,
}

/// The envelope of every Prometheus API answer.
#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// An answer's body with its envelope unwrapped: the data, or what was wrong with the
/// answer, in words (`status` is the HTTP status, `json` whether the answer said it was
/// JSON). Public (but hidden) for the fuzz target.
#[doc(hidden)]
pub fn decode<T: serde::de::DeserializeOwned>(
    status: reqwest::StatusCode,
    json: bool,
    body: &str,
) -> std::result::Result<T, String> {
    if !json {
        let first = body.lines().next().unwrap_or("").trim();
        return Err(format!("HTTP {status}: {first}"));
    }
    let envelope: Envelope<T> =
        serde_json::from_str(body).map_err(|e| format!("HTTP {status}: not a Prometheus answer ({e})"))?;
    if envelope.status != "success" {
        let kind = envelope.error_type.unwrap_or_default();
        let message = envelope.error.unwrap_or_default();
        return Err(format!("HTTP {status}: {kind}: {message}"));
    }
    if !envelope.warnings.is_empty() {
        // Thanos, Mimir and friends warn when an answer is partial: never pass one off
        // as complete.
        let warnings = envelope.warnings.join("; ");
        return Err(format!("the answer came with warnings (partial data?): {warnings}"));
    }
    envelope.data.ok_or_else(|| "the answer holds no data".to_string())
}

/// An instant query's answer as samples (a scalar is one sample without labels).
#[doc(hidden)]
pub fn instant_samples(data: Data) -> std::result::Result<Vec<Sample>, &'static str> {
    match data {
        Data::Vector(v) => Ok(v.into_iter().map(|s| (s.metric().clone(), s.sample().value())).collect()),
        Data::Scalar(s) => Ok(vec![(HashMap::new(), s.value())]),
        Data::Matrix(_) => Err("answered a range where an instant vector was expected"),
    }
}

/// A range query's answer: each series with its points by their time in whole seconds.
#[doc(hidden)]
pub fn range_series(data: Data) -> std::result::Result<Vec<Series>, &'static str> {
    let Data::Matrix(series) = data else {
        return Err("did not answer a range");
    };
    Ok(series
        .into_iter()
        .map(|s| {
            let points = s.samples().iter().map(|p| (p.timestamp().round() as i64, p.value())).collect();
            (s.metric().clone(), points)
        })
        .collect())
}

/// The API's `time`: Unix seconds with millisecond precision.
fn api_time(t: Nanos) -> String {
    format!("{}.{:03}", t.div_euclid(NANOS_PER_SEC), t.rem_euclid(NANOS_PER_SEC) / 1_000_000)
}

fn span_ms(w: &Window) -> i64 {
    (w.end - w.start) / 1_000_000
}

/// A window cut into pieces of equal length on the step grid, about a day each (its length
/// in days rounded up, or the first count up to four times that which divides it into whole
/// steps): a restart then costs the full form of its own day only. A window off the grid, one
/// day long or less, or one that no such count divides, is one piece.
fn pieces(w: &Window, step_seconds: u64) -> Vec<Piece> {
    let step = step_seconds.max(1) as i64 * NANOS_PER_SEC;
    let len = w.end - w.start;
    let day = 86_400 * NANOS_PER_SEC;
    let days = ((len + day - 1) / day).max(1);
    let n = if w.start.rem_euclid(step) == 0 && len % step == 0 {
        (days..=4 * days).find(|n| (len / step) % n == 0).unwrap_or(1)
    } else {
        1
    };
    (0..n).map(|i| (w.start + i * len / n, w.start + (i + 1) * len / n)).collect()
}

/// More than one piece, all of the same length, in whole seconds: one range query can ask them.
fn uniform(pieces: &[Piece]) -> bool {
    let len = pieces[0].1 - pieces[0].0;
    pieces.len() > 1
        && len % NANOS_PER_SEC == 0
        && pieces[0].1 % NANOS_PER_SEC == 0
        && pieces.iter().all(|&(start, end)| end - start == len)
}

/// A label set as an error shows it: `{agent="main", model="m"}`.
fn shown(labels: &HashMap<String, String>) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{{{}}}", labels.join(", "))
}

/// The values of equal label sets added up (the pieces of a window into the window), in the
/// order of the sorted label sets.
fn sum_by_labels<T: Copy + Default + std::ops::AddAssign>(
    rows: impl IntoIterator<Item = Labelled<T>>,
) -> Vec<Labelled<T>> {
    let mut sums: BTreeMap<Vec<(String, String)>, Labelled<T>> = BTreeMap::new();
    for (labels, value) in rows {
        let mut key: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        key.sort();
        sums.entry(key).or_insert_with(|| (labels, T::default())).1 += value;
    }
    sums.into_values().collect()
}

fn label(labels: &HashMap<String, String>, name: &str) -> String {
    labels.get(name).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "unknown".into())
}

/// Counter increases of whole events are whole numbers up to float noise.
fn round_sum(samples: &[Sample]) -> u64 {
    samples.iter().map(|(_, v)| v.max(0.0)).sum::<f64>().round() as u64
}

/// What moved in series whose `label` is missing, or not one of `known`.
struct Unlabelled {
    /// The increase of the series without the label (or with it empty).
    missing: f64,
    /// The increase of the series with another value, and those values.
    other: f64,
    values: Vec<String>,
}

/// `None` when every series that moved carries `label` with one of the `known` values.
fn unlabelled(samples: &[Sample], label: &str, known: &[&str]) -> Option<Unlabelled> {
    let mut found = Unlabelled { missing: 0.0, other: 0.0, values: Vec::new() };
    for (labels, value) in samples.iter().filter(|(_, v)| *v >= 0.5) {
        match labels.get(label).filter(|v| !v.is_empty()) {
            None => found.missing += value,
            Some(v) if known.contains(&v.as_str()) => {}
            Some(v) => {
                found.other += value;
                if !found.values.contains(v) {
                    found.values.push(v.clone());
                }
            }
        }
    }
    found.values.sort();
    (found.missing > 0.0 || found.other > 0.0).then_some(found)
}

fn sum_where(samples: &[Sample], label: &str, value: &str) -> u64 {
    samples
        .iter()
        .filter(|(l, _)| l.get(label).map(String::as_str) == Some(value))
        .map(|(_, v)| v.max(0.0))
        .sum::<f64>()
        .round() as u64
}

/// A bucket's `le` label as its upper bound.
#[doc(hidden)]
pub fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        _ => le.parse().ok(),
    }
}

/// The `q`-quantile of a cumulative histogram given as `(upper bound, count)` pairs, as
/// PromQL's `histogram_quantile` computes it: linear interpolation inside the bucket that
/// holds the rank; the highest finite bound when the rank falls in the `+Inf` bucket;
/// `None` without a `+Inf` bucket or without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut b: Vec<(f64, f64)> = buckets.iter().copied().filter(|(le, c)| !le.is_nan() && c.is_finite()).collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    b.dedup_by(|x, y| {
        let same = x.0 == y.0;
        if same {
            y.1 += x.1;
        }
        same
    });
    let &(last_le, total) = b.last()?;
    if last_le != f64::INFINITY || b.len() < 2 || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Counts are cumulative; float noise must not make them decrease.
    for i in 1..b.len() {
        b[i].1 = b[i].1.max(b[i - 1].1);
    }
    let rank = q * total;
    let i = b.iter().position(|&(_, c)| c >= rank)?;
    if i == b.len() - 1 {
        return Some(b[b.len() - 2].0);
    }
    let (start, below) = if i == 0 { (0.0_f64.min(b[0].0), 0.0) } else { (b[i - 1].0, b[i - 1].1) };
    let (end, count) = b[i];
    if i == 0 && end <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank - below) / (count - below))
}

/// The step to use over `window`: the configured one, or a multiple of it large enough to
/// stay under the 11,000 points per series Prometheus allows in a subquery. Either way the
/// edges are off by at most one step, which for a long window is < 0.04 % of it. Of the
/// multiples up to four times that large, the first whose grid holds every local midnight
/// of the window (300 s rather than 240 s for a month in Kolkata): a day counted by steps
/// next to a day taken whole then adds up exactly.
pub fn effective_step(configured: u64, window: &Window) -> u64 {
    let configured = configured.max(1);
    let seconds = ((window.end - window.start) / NANOS_PER_SEC).max(1) as u64;
    let least = seconds.div_ceil(11_000).div_ceil(configured).max(1);
    let days = window.days();
    let holds_midnights =
        |step: u64| days.iter().skip(1).all(|&(_, start)| (start / NANOS_PER_SEC).rem_euclid(step as i64) == 0);
    (least..=4 * least).map(|k| configured * k).find(|&step| holds_midnights(step)).unwrap_or(configured * least)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_time_has_milliseconds() {
        assert_eq!(api_time(1_795_392_000 * NANOS_PER_SEC), "1795392000.000");
        assert_eq!(api_time(1_795_392_000 * NANOS_PER_SEC + 1_500_000), "1795392000.001");
    }

    #[test]
    fn quantiles_like_promql() {
        let h = [(60.0, 40.0), (300.0, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.5, &h), Some(60.0 + 240.0 * 10.0 / 50.0));
        assert_eq!(histogram_quantile(0.2, &h), Some(30.0));
        // In the +Inf bucket: the highest finite bound.
        assert_eq!(histogram_quantile(0.95, &h), Some(300.0));
        assert_eq!(histogram_quantile(0.5, &[(60.0, 1.0)]), None, "no +Inf bucket");
        assert_eq!(histogram_quantile(0.5, &[(60.0, 0.0), (f64::INFINITY, 0.0)]), None, "no observations");
        // Buckets split over several series (other labels) are added up.
        let split = [(60.0, 20.0), (60.0, 20.0), (300.0, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.5, &split), histogram_quantile(0.5, &h));
    }

    #[test]
    fn sums_by_label() {
        let s = |t: &str, v| (HashMap::from([("type".to_string(), t.to_string())]), v);
        let samples = [s("input", 10.0000001), s("output", 4.0), s("input", 5.0)];
        assert_eq!(sum_where(&samples, "type", "input"), 15);
        assert_eq!(round_sum(&samples), 19);
    }

    #[test]
    fn failures_mean_unavailable() {
        let e: anyhow::Error = anyhow!("x").context(Unavailable);
        assert_eq!(crate::error::exit_code(&e), crate::error::UNAVAILABLE);
    }

    #[test]
    fn windows_are_cut_into_about_a_day_on_the_step_grid() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp() * NANOS_PER_SEC;
        let w = |start: &str, end: &str| Window {
            start: at(start),
            end: at(end),
            tz: chrono_tz::UTC,
            kind: crate::window::WindowKind::Span,
            partial: false,
        };
        let lengths = |p: &[Piece]| p.iter().map(|(s, e)| (e - s) / NANOS_PER_SEC).collect::<Vec<_>>();
        let week = pieces(&w("2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"), 60);
        assert_eq!(lengths(&week), [86_400; 7]);
        assert!(uniform(&week));
        assert_eq!(week[0].0, at("2026-11-16T00:00:00Z"));
        assert_eq!(week[6].1, at("2026-11-23T00:00:00Z"));
        assert!(week.windows(2).all(|p| p[0].1 == p[1].0), "consecutive");
        // A week of 167 hours (DST): 10,020 minutes, cut into 10 pieces of 1,002.
        let dst = pieces(&w("2027-03-22T00:00:00Z", "2027-03-28T23:00:00Z"), 60);
        assert_eq!(lengths(&dst), [60_120; 10]);
        // Off the step grid, one day or less, or no count up to 4x the days divides it: one piece.
        assert_eq!(pieces(&w("2026-11-16T00:00:17Z", "2026-11-23T00:00:17Z"), 60).len(), 1);
        assert_eq!(pieces(&w("2026-11-16T00:00:00Z", "2026-11-17T00:00:00Z"), 60).len(), 1);
        assert_eq!(pieces(&w("2026-11-16T00:00:00Z", "2026-11-18T00:07:00Z"), 60).len(), 1);
        // 30 days at a 240 s step: 30 pieces of 360 steps.
        assert_eq!(lengths(&pieces(&w("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"), 240)), [86_400; 30]);
        assert!(!uniform(&[(0, 86_400 * NANOS_PER_SEC)]), "one piece is an instant query");
        assert!(!uniform(&[(0, NANOS_PER_SEC), (NANOS_PER_SEC, 3 * NANOS_PER_SEC)]), "unequal");
    }

    #[test]
    fn long_windows_get_a_coarser_step() {
        let window = |last: &str| {
            let spec = crate::window::WindowSpec { last: Some(last.into()), ..Default::default() };
            Window::resolve(&spec, chrono_tz::UTC, chrono::Utc::now()).unwrap()
        };
        assert_eq!(effective_step(60, &window("7d")), 60);
        assert_eq!(effective_step(60, &window("30d")), 240);
        assert_eq!(effective_step(45, &window("30d")), 270);
        // Kolkata's midnights (18:30 UTC) are on a 300 s grid, not on a 240 s one.
        let kolkata = crate::window::WindowSpec { last: Some("30d".into()), ..Default::default() };
        let kolkata = Window::resolve(&kolkata, chrono_tz::Asia::Kolkata, chrono::Utc::now()).unwrap();
        assert_eq!(effective_step(60, &kolkata), 300);
        assert!(
            (window("365d").end - window("365d").start) / NANOS_PER_SEC / effective_step(60, &window("365d")) as i64
                <= 11_000
        );
    }
}
