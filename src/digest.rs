//! The `Digest`: what a report says, whichever source answered.
//!
//! Sources produce [`Rows`] (already aggregated, in no particular order); the digest puts
//! them in report order, keeps the top sessions, and remembers which source answered each
//! section and why a fallback happened. Renderers read a `Digest` and nothing else; the
//! gate will compare two of them.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::usd::Usd;
use crate::window::Window;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the known costs; model calls without a cost are in `uncosted_events`.
    pub cost: Usd,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Distinct sessions with at least one event in the window.
    pub sessions: u64,
    /// `None` where the source cannot count them (Prometheus has no per-call series).
    pub model_calls: Option<u64>,
    /// Failed agent runs; `None` where the source has no run outcomes.
    pub errors: Option<u64>,
    /// Agent runs that ended (failed or not): the failed-run rate is `errors / runs`.
    pub runs: Option<u64>,
    /// `None` when the source has no tool-call data (a missing series).
    pub tool_calls: Option<u64>,
    pub tool_failures: Option<u64>,
    /// Model calls that carried no cost: unknown, not free.
    pub uncosted_events: Option<u64>,
    /// Every valid event in the window, of any type.
    pub events: Option<u64>,
    /// Errors returned by model APIs (Prometheus `openclaw_model_errors_total`).
    pub model_errors: Option<u64>,
    /// Prometheus's cost-histogram observations: one per session *and model*, not distinct
    /// sessions (`sessions` is those, from the detail source when one answers).
    pub costed_sessions: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRow {
    pub model: String,
    pub provider: String,
    /// `None` when every call of this model came without a cost.
    pub cost: Option<Usd>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub calls: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRow {
    pub agent: String,
    pub cost: Option<Usd>,
    pub sessions: u64,
    pub errors: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VariantRow {
    /// `None` for events that belong to no experiment.
    pub experiment: Option<String>,
    pub variant: Option<String>,
    pub sessions: u64,
    pub cost: Option<Usd>,
    /// Failed runs.
    pub errors: u64,
    pub spread: VariantSpread,
}

/// The sufficient statistics the gate's interval tests need beyond counts and sums, so
/// that a variant can be tested from a server's aggregates without fetching every session.
/// `None` where the source does not know the figure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VariantSpread {
    /// Σ over the variant's sessions of (the session's cost in this variant)², in USD².
    pub cost_sum_squares: Option<f64>,
    /// Agent runs that ended; with `errors`, the failed-run rate.
    pub runs: Option<u64>,
    pub tool_calls: Option<u64>,
    pub tool_failures: Option<u64>,
}

impl VariantRow {
    pub fn cost_per_session(&self) -> Option<f64> {
        match (self.cost, self.sessions) {
            (Some(cost), n) if n > 0 => Some(cost.as_f64() / n as f64),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub session: String,
    pub agent: String,
    pub cost: Option<Usd>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub model_calls: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRow {
    /// A date in the report's time zone.
    pub date: NaiveDate,
    pub cost: Usd,
}

/// Session durations, from a histogram (Prometheus).
#[derive(Clone, Debug, PartialEq)]
pub struct Durations {
    pub p50_seconds: f64,
    pub p95_seconds: f64,
}

/// Everything one source answered for a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub totals: Totals,
    pub by_model: Vec<ModelRow>,
    pub by_agent: Vec<AgentRow>,
    pub by_variant: Vec<VariantRow>,
    /// At least the top N sessions by cost (a source may return more).
    pub by_session: Vec<SessionRow>,
    pub daily: Vec<DayRow>,
    pub durations: Option<Durations>,
}

/// The known cost of each group in the previous window: what the top movers compare with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCosts {
    pub by_model: BTreeMap<(String, String), Usd>,
    pub by_agent: BTreeMap<String, Usd>,
    pub by_variant: BTreeMap<(Option<String>, Option<String>), Usd>,
}

/// A group whose cost changed the most against the previous window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mover {
    /// `model`, `agent` or `variant`.
    pub dim: &'static str,
    /// `provider/model`, the agent, or `experiment/variant` (`(none)` for a part missing).
    pub name: String,
    pub previous: Usd,
    pub current: Usd,
}

impl Mover {
    /// Current minus previous, in pico-dollars (negative: cheaper).
    pub fn change(&self) -> i128 {
        self.current.pico() - self.previous.pico()
    }
}

/// How many movers of each dimension a report shows.
pub const MOVERS_PER_DIM: usize = 5;

/// The name of a variant in reports: `experiment/variant`.
pub fn variant_name(experiment: Option<&str>, variant: Option<&str>) -> String {
    format!("{}/{}", experiment.unwrap_or("(none)"), variant.unwrap_or("(none)"))
}

/// Per dimension, the groups whose known cost changed the most (by absolute change, ties
/// by name), at most [`MOVERS_PER_DIM`] each; all of them largest change first.
pub fn movers(current: &Rows, previous: &GroupCosts) -> Vec<Mover> {
    let mut all = Vec::new();
    // `now` holds `None` for a group whose calls carry no cost: unknown is not a drop to
    // zero, so such a group is no mover.
    let mut dim = |dim: &'static str, now: BTreeMap<String, Option<Usd>>, before: BTreeMap<String, Usd>| {
        let names: std::collections::BTreeSet<&String> = now.keys().chain(before.keys()).collect();
        let mut ms: Vec<Mover> = names
            .into_iter()
            .filter_map(|n| {
                Some(Mover {
                    dim,
                    name: n.clone(),
                    previous: before.get(n).copied().unwrap_or(Usd::ZERO),
                    current: now.get(n).copied().unwrap_or(Some(Usd::ZERO))?,
                })
            })
            .filter(|m| m.change() != 0)
            .collect();
        ms.sort_by(|a, b| b.change().abs().cmp(&a.change().abs()).then_with(|| a.name.cmp(&b.name)));
        ms.truncate(MOVERS_PER_DIM);
        all.extend(ms);
    };
    let model_name = |m: &str, p: &str| format!("{p}/{m}");
    dim(
        "model",
        current.by_model.iter().map(|r| (model_name(&r.model, &r.provider), r.cost)).collect(),
        previous.by_model.iter().map(|((m, p), &c)| (model_name(m, p), c)).collect(),
    );
    dim("agent", current.by_agent.iter().map(|r| (r.agent.clone(), r.cost)).collect(), previous.by_agent.clone());
    dim(
        "variant",
        current
            .by_variant
            .iter()
            .map(|r| (variant_name(r.experiment.as_deref(), r.variant.as_deref()), r.cost))
            .collect(),
        previous.by_variant.iter().map(|((e, v), &c)| (variant_name(e.as_deref(), v.as_deref()), c)).collect(),
    );
    all.sort_by(|a, b| b.change().abs().cmp(&a.change().abs()).then_with(|| (a.dim, &a.name).cmp(&(b.dim, &b.name))));
    all
}

/// The parts of a report, each answered by one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Totals,
    Previous,
    ByModel,
    ByAgent,
    ByVariant,
    BySession,
    Daily,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Totals,
        Section::Previous,
        Section::ByModel,
        Section::ByAgent,
        Section::ByVariant,
        Section::BySession,
        Section::Daily,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Totals => "totals",
            Section::Previous => "previous",
            Section::ByModel => "by_model",
            Section::ByAgent => "by_agent",
            Section::ByVariant => "by_variant",
            Section::BySession => "by_session",
            Section::Daily => "daily",
        }
    }
}

/// Which source answered a section, and why it was not the preferred one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub section: Section,
    /// `"jsonl"`, `"prometheus"`, `"loki"`.
    pub source: &'static str,
    pub fallback_reason: Option<String>,
    /// For a section of aggregates from a metrics source: the source its counts came from
    /// (distinct sessions, model calls, runs, tool calls, failed runs), which no metric
    /// holds with that meaning.
    pub counts_from: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub window: Window,
    /// `None` with `--no-compare`.
    pub previous_window: Option<Window>,
    pub totals: Totals,
    pub previous: Option<Totals>,
    pub by_model: Vec<ModelRow>,
    pub by_agent: Vec<AgentRow>,
    pub by_variant: Vec<VariantRow>,
    pub by_session: Vec<SessionRow>,
    pub daily: Vec<DayRow>,
    pub durations: Option<Durations>,
    /// Against the previous window (empty with `--no-compare`).
    pub movers: Vec<Mover>,
    /// `--agent`, `--model`, `--experiment` as given: the report covers only those events.
    pub filters: Vec<(&'static str, Vec<String>)>,
    pub sources: Vec<Provenance>,
    pub warnings: Vec<String>,
    pub skipped_lines: u64,
}

impl Digest {
    /// Puts a source's rows in report order: every list by cost, descending, ties by name,
    /// so the same data always reads the same; `top` sessions kept.
    pub fn assemble(
        window: Window,
        previous_window: Option<Window>,
        current: Rows,
        previous: Option<Totals>,
        previous_costs: Option<&GroupCosts>,
        top: usize,
        sources: Vec<Provenance>,
    ) -> Digest {
        let movers = previous_costs.map(|p| movers(&current, p)).unwrap_or_default();
        let Rows { totals, mut by_model, mut by_agent, mut by_variant, mut by_session, mut daily, durations } = current;
        by_model.sort_by(|a, b| {
            by_cost(a.cost, b.cost).then_with(|| (&a.model, &a.provider).cmp(&(&b.model, &b.provider)))
        });
        by_agent.sort_by(|a, b| by_cost(a.cost, b.cost).then_with(|| a.agent.cmp(&b.agent)));
        by_variant.sort_by(|a, b| {
            by_cost(a.cost, b.cost).then_with(|| (&a.experiment, &a.variant).cmp(&(&b.experiment, &b.variant)))
        });
        by_session.sort_by(|a, b| by_cost(a.cost, b.cost).then_with(|| a.session.cmp(&b.session)));
        by_session.truncate(top);
        daily.sort_by_key(|d| d.date);
        Digest {
            window,
            previous_window,
            totals,
            previous,
            by_model,
            by_agent,
            by_variant,
            by_session,
            daily,
            durations,
            movers,
            filters: Vec::new(),
            sources,
            warnings: Vec::new(),
            skipped_lines: 0,
        }
    }

    /// True when the window holds no event at all: the report says so instead of
    /// showing empty tables.
    pub fn is_empty(&self) -> bool {
        let t = &self.totals;
        match t.events {
            Some(events) => events == 0,
            None => t.cost == Usd::ZERO && t.sessions == 0 && t.input_tokens + t.output_tokens == 0,
        }
    }

    pub fn source_of(&self, section: Section) -> Option<&Provenance> {
        self.sources.iter().find(|p| p.section == section)
    }
}

/// Highest cost first; unknown costs after every known one.
pub fn by_cost(a: Option<Usd>, b: Option<Usd>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Relative change from `before` to `now`, `None` when there is nothing to compare with.
pub fn change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| (now - before) / before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_costs_sort_last() {
        let mut v = [None, Usd::from_f64(1.0), Usd::from_f64(3.0), None, Usd::from_f64(2.0)];
        v.sort_by(|a, b| by_cost(*a, *b));
        assert_eq!(v, [Usd::from_f64(3.0), Usd::from_f64(2.0), Usd::from_f64(1.0), None, None]);
    }

    #[test]
    fn change_against_nothing_is_none() {
        assert_eq!(change(5.0, 0.0), None);
        assert_eq!(change(15.0, 10.0), Some(0.5));
        assert_eq!(change(5.0, 10.0), Some(-0.5));
    }

    #[test]
    fn cost_per_session() {
        let row = |cost: Option<f64>, sessions| VariantRow {
            experiment: None,
            variant: None,
            sessions,
            cost: cost.and_then(Usd::from_f64),
            errors: 0,
            spread: VariantSpread::default(),
        };
        assert_eq!(row(Some(3.0), 2).cost_per_session(), Some(1.5));
        assert_eq!(row(Some(3.0), 0).cost_per_session(), None);
        assert_eq!(row(None, 2).cost_per_session(), None);
    }
}
