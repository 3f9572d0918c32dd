//! Where the figures come from, and which source answers which section.
//!
//! Every source answers the same [`Query`] with an [`Answer`] of rows. Choosing among them
//! happens here, and only here: with `--source auto`, Prometheus answers the aggregates
//! (totals, by model, by agent, daily) and the local JSONL files the per-session and
//! per-variant detail; a server that does not answer hands its sections to the files, and
//! the report says so, section by section, with the reason. Neither the sources nor the
//! renderers know about each other.

pub mod filter;
pub mod http;
pub mod jsonl;
pub mod logql;
pub mod loki;
pub mod prometheus;
pub mod promql;

use std::time::Duration;

use anyhow::Result;

use crate::config::ServerConfig;
use crate::digest::{Digest, GroupCosts, Provenance, Rows, Section, Totals};
use crate::error;
use crate::window::Window;

/// What a digest needs from a source.
#[derive(Clone, Debug)]
pub struct Query {
    pub window: Window,
    /// `None` with `--no-compare`.
    pub previous: Option<Window>,
    /// How many sessions `by_session` must hold.
    pub top: usize,
    /// Whether `by_variant` needs Σ cost² per session (the gate's interval tests): the
    /// JSONL source always has it, Loki asks for it only then.
    pub variant_spread: bool,
}

/// A source's rows for a query, and what it noticed on the way.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub rows: Rows,
    pub previous: Option<Totals>,
    /// The previous window's cost by model, agent and variant (as far as the source has
    /// them), for the top movers.
    pub previous_costs: Option<GroupCosts>,
    pub warnings: Vec<String>,
    pub skipped_lines: u64,
    pub files_read: usize,
}

/// `--source`: which source may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// Servers where they answer, the local files for the rest.
    Auto,
    Jsonl,
    Prometheus,
    Loki,
}

/// Everything needed to query Prometheus.
#[derive(Clone)]
pub struct PrometheusSettings {
    pub server: ServerConfig,
    pub promql: promql::PromQl,
}

/// Everything needed to query Loki.
#[derive(Clone)]
pub struct LokiSettings {
    pub server: ServerConfig,
    pub selector: String,
}

/// The sources a command may ask, built from its options: which may answer, and how to
/// reach each.
#[derive(Clone)]
pub struct Sources {
    pub choice: SourceChoice,
    pub jsonl: jsonl::JsonlSource,
    pub prometheus: PrometheusSettings,
    pub loki: LokiSettings,
    /// `--agent`, `--model`, `--experiment`, for every source.
    pub filters: filter::Filters,
    /// Log every server query on standard error.
    pub verbose: bool,
}

/// How long `auto` waits for a server's first answer before using the files instead.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The aggregate sections (a metrics source can answer them) and the detail sections
/// (they need per-event data).
const AGGREGATES: [Section; 5] =
    [Section::Totals, Section::Previous, Section::ByModel, Section::ByAgent, Section::Daily];
const DETAIL: [Section; 2] = [Section::ByVariant, Section::BySession];

/// Answers the query from the chosen sources and assembles the digest.
pub fn digest(query: &Query, opts: &Sources) -> Result<Digest> {
    let parts = match opts.choice {
        SourceChoice::Jsonl => Parts::single(opts.jsonl.answer(query)?, "jsonl"),
        SourceChoice::Prometheus => {
            let answer = block_on(prometheus_source(opts)?.answer(query))?;
            let mut parts = Parts::single(answer, "prometheus");
            parts.no_detail("Prometheus has no per-session or per-variant series".into());
            parts
        }
        SourceChoice::Loki => Parts::single(block_on(loki_source(opts)?.answer(query))?, "loki"),
        SourceChoice::Auto => auto(query, opts)?,
    };
    let mut digest = parts.assemble(query);
    digest.filters = opts.filters.describe().into_iter().map(|(k, v)| (k, v.to_vec())).collect();
    if !digest.filters.is_empty() && digest.is_empty() {
        // A misspelt value selects nothing: say so rather than report $0.00 in silence.
        let advice = opts
            .filters
            .model_advice()
            .unwrap_or_else(|| "check the spelling against the names a report without the filter shows".to_string());
        digest
            .warnings
            .push(format!("no event in the window matched {}: {advice}", filter::phrase(&opts.filters.flags())));
    }
    Ok(digest)
}

/// The Prometheus client the options describe (`--verbose` logging included).
pub fn prometheus_source(opts: &Sources) -> Result<prometheus::PrometheusSource> {
    let mut source = prometheus::PrometheusSource::new(&opts.prometheus.server, opts.prometheus.promql.clone())?;
    source.verbose = opts.verbose;
    Ok(source)
}

/// The Loki client the options describe (`--verbose` logging included).
pub fn loki_source(opts: &Sources) -> Result<loki::LokiSource> {
    let mut source = loki::LokiSource::new(&opts.loki.server, opts.loki.selector.clone())?.with_filters(&opts.filters);
    source.verbose = opts.verbose;
    Ok(source)
}

/// Prometheus for the aggregates, Loki for the detail, the files for whatever a server
/// does not answer. Both servers are probed at once with a short timeout; the files are
/// read (on other threads, while the servers are asked) only when a probe failed, or
/// afterwards when an answer did.
fn auto(query: &Query, opts: &Sources) -> Result<Parts> {
    let (prometheus, loki) = (prometheus_source(opts)?, loki_source(opts)?);
    let runtime = runtime();
    let (prometheus_up, loki_up) =
        runtime.block_on(async { tokio::join!(prometheus.probe(PROBE_TIMEOUT), loki.probe(PROBE_TIMEOUT)) });
    let prometheus_up = match prometheus_up {
        Ok(()) if !opts.filters.experiments.is_empty() => {
            Err(anyhow::anyhow!("Prometheus has no experiment labels, and --experiment filters by experiment"))
        }
        up => up,
    };
    let (aggregates, detail, files) = std::thread::scope(|scope| {
        let early_files =
            (prometheus_up.is_err() || loki_up.is_err()).then(|| scope.spawn(|| opts.jsonl.answer(query)));
        let (aggregates, detail) = runtime.block_on(async {
            tokio::join!(
                async {
                    prometheus_up?;
                    prometheus.answer(query).await
                },
                async {
                    loki_up?;
                    loki.answer(query).await
                }
            )
        });
        let files = match early_files {
            Some(handle) => Some(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            None if aggregates.is_err() || detail.is_err() => Some(opts.jsonl.answer(query)),
            None => None,
        };
        (aggregates, detail, files)
    });
    let reason = |e: &anyhow::Error| error::describe(e);
    match (aggregates, detail, files) {
        (Ok(aggregates), Ok(detail), _) => Ok(Parts::split(aggregates, "prometheus", detail, "loki", None)),
        (Ok(aggregates), Err(loki_failed), Some(Ok(files))) => {
            Ok(Parts::split(aggregates, "prometheus", files, "jsonl", Some(reason(&loki_failed))))
        }
        (Ok(aggregates), Err(loki_failed), files) => {
            let mut parts = Parts::single(aggregates, "prometheus");
            let files = files.and_then(Result::err).map(|e| reason(&e)).unwrap_or_default();
            parts.no_detail(format!("{}; and the local files: {files}", reason(&loki_failed)));
            Ok(parts)
        }
        (Err(prometheus_failed), detail, Some(Ok(files))) => {
            let (detail, detail_from, why) = match detail {
                Ok(detail) => (detail, "loki", None),
                Err(loki_failed) => (files.clone(), "jsonl", Some(reason(&loki_failed))),
            };
            let mut parts = Parts::split(files, "jsonl", detail, detail_from, why);
            parts.aggregates_fell_back(reason(&prometheus_failed));
            Ok(parts)
        }
        // No files: Loki's own aggregates are better than none.
        (Err(prometheus_failed), Ok(detail), _) => {
            let mut parts = Parts::single(detail, "loki");
            parts.aggregates_fell_back(reason(&prometheus_failed));
            Ok(parts)
        }
        // The files' error decides the exit code: a missing --logs path stays a usage error.
        (Err(prometheus_failed), Err(loki_failed), files) => {
            let files_failed = match files {
                Some(Err(e)) => e,
                _ => anyhow::anyhow!("not read"),
            };
            Err(files_failed.context(format!(
                "no source answered ({}; {}), and the local files",
                reason(&prometheus_failed),
                reason(&loki_failed)
            )))
        }
    }
}

/// Answers on their way into one digest, with who answered what.
struct Parts {
    aggregates: Answer,
    detail: Option<Answer>,
    sources: Vec<Provenance>,
}

impl Parts {
    fn single(answer: Answer, source: &'static str) -> Parts {
        let sources = Section::ALL
            .iter()
            .map(|&section| Provenance { section, source, fallback_reason: None, counts_from: None })
            .collect();
        Parts { aggregates: answer, detail: None, sources }
    }

    fn split(
        aggregates: Answer,
        from: &'static str,
        detail: Answer,
        detail_from: &'static str,
        why: Option<String>,
    ) -> Parts {
        let mut parts = Parts::single(aggregates, from);
        for p in parts.sources.iter_mut().filter(|p| DETAIL.contains(&p.section)) {
            p.source = detail_from;
            p.fallback_reason = why.clone();
        }
        // One answer serving both halves is kept once, so nothing is counted twice.
        parts.detail = (from != detail_from).then_some(detail);
        parts
    }

    /// The detail sections have no source: they are empty, and say why.
    fn no_detail(&mut self, why: String) {
        for p in self.sources.iter_mut().filter(|p| DETAIL.contains(&p.section)) {
            p.source = "none";
            p.fallback_reason = Some(why.clone());
        }
        self.aggregates.rows.by_session.clear();
        self.aggregates.rows.by_variant.clear();
    }

    fn aggregates_fell_back(&mut self, why: String) {
        for p in self.sources.iter_mut().filter(|p| AGGREGATES.contains(&p.section)) {
            p.fallback_reason = Some(why.clone());
        }
    }

    fn assemble(self, query: &Query) -> Digest {
        let Parts { aggregates, detail, mut sources } = self;
        let mut rows = aggregates.rows;
        let mut previous = aggregates.previous;
        let mut previous_costs = aggregates.previous_costs;
        let mut warnings = aggregates.warnings;
        let mut skipped_lines = aggregates.skipped_lines;
        if let Some(detail) = detail {
            // Counts mean what the schema says only from a source of events: distinct
            // sessions, model calls, runs, tool calls and failures come from the detail
            // source; what only the metrics have keeps its own name (`costed_sessions`).
            let from_metrics = sources.iter().any(|p| p.section == Section::Totals && p.source == "prometheus");
            if from_metrics {
                take_counts(&mut rows, &detail.rows);
                if let (Some(previous), Some(from)) = (previous.as_mut(), detail.previous.as_ref()) {
                    take_totals_counts(previous, from);
                }
                let detail_from = sources.iter().find(|p| p.section == Section::BySession).map(|p| p.source);
                for p in sources.iter_mut().filter(|p| AGGREGATES.contains(&p.section) && p.section != Section::Daily) {
                    p.counts_from = detail_from;
                }
            }
            rows.by_session = detail.rows.by_session;
            rows.by_variant = detail.rows.by_variant;
            // Variants are the detail source's, in the previous window too.
            match (previous_costs.as_mut(), detail.previous_costs) {
                (Some(p), Some(d)) => p.by_variant = d.by_variant,
                (None, d) => previous_costs = d,
                _ => {}
            }
            warnings.extend(detail.warnings);
            skipped_lines += detail.skipped_lines;
        }
        if query.previous.is_none() {
            sources.retain(|p| p.section != Section::Previous);
        }
        let previous_costs = previous_costs.filter(|_| query.previous.is_some());
        let mut digest = Digest::assemble(
            query.window.clone(),
            query.previous.clone(),
            rows,
            previous,
            previous_costs.as_ref(),
            query.top,
            sources,
        );
        let windows = [("window", Some(&digest.totals)), ("previous window", digest.previous.as_ref())];
        for (which, t) in windows.into_iter().filter_map(|(w, t)| Some((w, t?))) {
            if let (Some(calls), Some(uncosted)) = (t.model_calls, t.uncosted_events) {
                if calls > 0 && uncosted == calls {
                    // The figure reads $0.00; say that it is not a price.
                    warnings.push(format!(
                        "none of the {which}'s {calls} model call{} carried a cost: its cost is unknown, not $0.00 \
                         (obsctl doctor names the models)",
                        if calls == 1 { "" } else { "s" }
                    ));
                }
            }
        }
        digest.warnings = warnings;
        digest.skipped_lines = skipped_lines;
        digest
    }
}

/// The counts of `from` (a source of events) into aggregates from metrics.
fn take_totals_counts(totals: &mut Totals, from: &Totals) {
    totals.sessions = from.sessions;
    totals.model_calls = from.model_calls.or(totals.model_calls);
    totals.errors = from.errors.or(totals.errors);
    totals.runs = from.runs.or(totals.runs);
    totals.tool_calls = from.tool_calls.or(totals.tool_calls);
    totals.tool_failures = from.tool_failures.or(totals.tool_failures);
    totals.uncosted_events = from.uncosted_events.or(totals.uncosted_events);
    totals.events = from.events.or(totals.events);
}

/// The same for every section of aggregates: totals, calls per model, sessions and failed
/// runs per agent.
fn take_counts(rows: &mut Rows, from: &Rows) {
    take_totals_counts(&mut rows.totals, &from.totals);
    for m in &mut rows.by_model {
        let theirs = from.by_model.iter().find(|f| f.model == m.model && f.provider == m.provider);
        m.calls = Some(theirs.and_then(|f| f.calls).unwrap_or(0));
    }
    for a in &mut rows.by_agent {
        let theirs = from.by_agent.iter().find(|f| f.agent == a.agent);
        a.sessions = theirs.map_or(0, |f| f.sessions);
        a.errors = Some(theirs.and_then(|f| f.errors).unwrap_or(0));
    }
}

/// Runs the server queries of one digest (or one command's checks) to completion on this
/// thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime needs no OS resources that can be missing")
}
