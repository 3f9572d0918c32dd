//! The answers for one window, each read into the figures it holds, resolved as the JSONL
//! source resolves an event, and checked against each other before they become rows.
//!
//! Every query answers a few hundred series at most: counts by type, model, agent and
//! experiment; sums of cost and tokens by the same; sessions counted by Loki. Sums are kept
//! as exact integers ([`Usd`], `u64`), so the order the answers and their classes arrive in
//! changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Result};

use super::answer::{count, usd, Sample};
use super::logql::{self, Kind, Shape, Tokens, Value};
use crate::digest::{by_cost, AgentRow, GroupCosts, ModelRow, Rows, SessionRow, Totals, VariantRow, VariantSpread};
use crate::usd::Usd;

/// An experiment and a variant, as [`logql::experiment_of`] resolves them.
pub type VariantKey = (Option<String>, Option<String>);
type ModelKey = (String, String);

fn variant_of(labels: &BTreeMap<String, String>) -> VariantKey {
    let (e, v) = logql::experiment_of(labels);
    (e.map(str::to_string), v.map(str::to_string))
}

/// Which of `parts` (dimensions) a series answers for: all of them for a query grouped by
/// every dimension, else the one its [`logql::BY`] label names.
fn dims_of<const N: usize>(s: &Sample, parts: [&str; N]) -> Result<[bool; N]> {
    match s.labels.get(logql::BY) {
        None => Ok([true; N]),
        Some(by) if parts.contains(&by.as_str()) => Ok(parts.map(|p| p == by)),
        Some(by) => Err(anyhow!("{by:?} is not one of the parts {parts:?} asked apart")),
    }
}

/// A cost summed from the series of the answers, and whether any series was there: a
/// group whose calls all lacked a cost has none, and its cost is unknown, not zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostSum {
    pub usd: Usd,
    pub seen: bool,
}

impl CostSum {
    fn add(&mut self, x: Usd) {
        self.usd += x;
        self.seen = true;
    }

    /// Unknown only when some calls were uncosted and none was costed.
    fn value(self, uncosted: u64) -> Option<Usd> {
        (self.seen || uncosted == 0).then_some(self.usd)
    }
}

/// Run ends and tool calls, failed or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub runs: u64,
    pub failed_runs: u64,
    pub tool_calls: u64,
    pub tool_failures: u64,
}

/// One window's figures. The current window fills everything; the previous one only what
/// its totals need.
#[derive(Debug, Default)]
pub struct Tally {
    pub events: u64,
    /// Lines the JSONL source would skip: not JSON, or no type field.
    pub not_json: u64,
    pub untyped: u64,
    /// Events by shape.
    pub shapes: BTreeMap<Shape, u64>,
    /// Whether some line lacks a usable `agentId` (the agent then comes from its key).
    pub agent_from_key: bool,
    calls: BTreeMap<ModelKey, u64>,
    variant_outcomes: BTreeMap<VariantKey, Outcomes>,
    agent_failed_runs: BTreeMap<String, u64>,
    agents_seen: BTreeSet<String>,
    uncosted_model: BTreeMap<ModelKey, u64>,
    uncosted_agent: BTreeMap<String, u64>,
    uncosted_variant: BTreeMap<VariantKey, u64>,
    uncosted: u64,
    cost: CostSum,
    cost_model: BTreeMap<ModelKey, CostSum>,
    cost_agent: BTreeMap<String, CostSum>,
    cost_variant: BTreeMap<VariantKey, CostSum>,
    input: u64,
    output: u64,
    tokens_model: BTreeMap<ModelKey, (u64, u64)>,
    pub sessions: Option<u64>,
    /// Distinct sessions per (agent, experiment, variant).
    tuples: BTreeMap<(String, VariantKey), u64>,
    /// Exact per-dimension session counts, asked when a session has several agents or
    /// variants (then `tuples` counts it more than once).
    pub agent_sessions: Option<BTreeMap<String, u64>>,
    pub variant_sessions: Option<BTreeMap<VariantKey, u64>>,
    squares: Option<BTreeMap<VariantKey, f64>>,
    pub top: Vec<SessionRow>,
}

impl Tally {
    /// Every line by parse error and type, and (current window) by agent, model and
    /// experiment; or one of those parts ([`logql::BY`]).
    pub fn counts(&mut self, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            let [base, agent, model, variant] = match s.labels.get(logql::BY).map(String::as_str) {
                // The lines by type of a window asked without dimensions: all but the agents.
                Some("types") => [true, false, true, true],
                _ => dims_of(s, ["base", "agent", "model", "variant"])?,
            };
            if agent && !base {
                // The events by agent alone (Loki kept only the events).
                self.agent_seen(s);
                continue;
            }
            if s.labels.get("__error__").is_some_and(|e| !e.is_empty()) {
                if base {
                    self.not_json += n;
                }
                continue;
            }
            let Some((shape, kind)) = Shape::kind_of(&s.labels) else {
                if base {
                    self.untyped += n;
                }
                continue;
            };
            if base {
                self.events += n;
                *self.shapes.entry(shape).or_default() += n;
            }
            if agent {
                self.agent_seen(s);
            }
            if model && kind == Kind::ModelCall {
                *self.calls.entry(logql::model_of(&s.labels)).or_default() += n;
            }
            if variant {
                let o = self.variant_outcomes.entry(variant_of(&s.labels)).or_default();
                match kind {
                    Kind::RunEnd => o.runs += n,
                    Kind::ToolCall => o.tool_calls += n,
                    Kind::ModelCall | Kind::Other => {}
                }
            }
        }
        Ok(())
    }

    /// An event's `agentId`: an agent seen, or (missing or `"unknown"`) one to take from
    /// its session key.
    fn agent_seen(&mut self, s: &Sample) {
        match s.labels.get("agentId").map(String::as_str) {
            Some(a) if !a.is_empty() && a != "unknown" => {
                self.agents_seen.insert(a.to_string());
            }
            _ => self.agent_from_key = true,
        }
    }

    /// Failed run ends and tool calls (by agent, by variant, or both).
    pub fn failed(&mut self, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            let [agent, variant] = dims_of(s, ["agent", "variant"])?;
            let (_, kind) = Shape::kind_of(&s.labels).ok_or_else(|| anyhow!("{:?} is no event", s.labels))?;
            match kind {
                Kind::RunEnd => {
                    if variant {
                        self.variant_outcomes.entry(variant_of(&s.labels)).or_default().failed_runs += n;
                    }
                    if agent {
                        *self.agent_failed_runs.entry(logql::agent_of(&s.labels).to_string()).or_default() += n;
                    }
                }
                Kind::ToolCall if variant => {
                    self.variant_outcomes.entry(variant_of(&s.labels)).or_default().tool_failures += n
                }
                Kind::ToolCall => {}
                _ => return Err(anyhow!("{:?} is neither a run end nor a tool call", s.labels)),
            }
        }
        Ok(())
    }

    /// Model calls without a cost (by model, agent and variant with `dims`, or one of
    /// them; the model part holds the total).
    pub fn uncosted(&mut self, samples: &[Sample], dims: bool) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            let [model, agent, variant] = dims_of(s, ["model", "agent", "variant"])?;
            if model {
                self.uncosted += n;
            }
            if dims {
                if model {
                    *self.uncosted_model.entry(logql::model_of(&s.labels)).or_default() += n;
                }
                if agent {
                    *self.uncosted_agent.entry(logql::agent_of(&s.labels).to_string()).or_default() += n;
                }
                if variant {
                    *self.uncosted_variant.entry(variant_of(&s.labels)).or_default() += n;
                }
            }
        }
        Ok(())
    }

    /// One cost leg's sums (by model, agent and experiment in the current window, or one
    /// of them; the model part holds the total).
    pub fn cost(&mut self, samples: &[Sample], dims: bool) -> Result<()> {
        for s in samples {
            let x = usd(s)?;
            let [model, agent, variant] = dims_of(s, ["model", "agent", "variant"])?;
            if model {
                self.cost.add(x);
            }
            if dims {
                if model {
                    self.cost_model.entry(logql::model_of(&s.labels)).or_default().add(x);
                }
                if agent {
                    self.cost_agent.entry(logql::agent_of(&s.labels).to_string()).or_default().add(x);
                }
                if variant {
                    self.cost_variant.entry(variant_of(&s.labels)).or_default().add(x);
                }
            }
        }
        Ok(())
    }

    /// One token leg's sums (by model in the current window).
    pub fn tokens(&mut self, samples: &[Sample], input: bool, dims: bool) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            let (total, by_model) = if input { (&mut self.input, 0) } else { (&mut self.output, 1) };
            *total += n;
            if dims {
                let t = self.tokens_model.entry(logql::model_of(&s.labels)).or_default();
                if by_model == 0 {
                    t.0 += n;
                } else {
                    t.1 += n;
                }
            }
        }
        Ok(())
    }

    /// `count(…)` of sessions: one sample per class asked.
    pub fn session_count(&mut self, samples: &[Sample]) -> Result<()> {
        let n: u64 = samples.iter().map(count).sum::<Result<u64>>()?;
        *self.sessions.get_or_insert(0) += n;
        Ok(())
    }

    pub fn session_tuples(&mut self, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let agent = s.labels.get(logql::AGENT).cloned().unwrap_or_else(|| "unknown".into());
            *self.tuples.entry((agent, variant_of(&s.labels))).or_default() += count(s)?;
        }
        Ok(())
    }

    /// Exact distinct sessions per agent (`by_agent`) or per variant.
    pub fn sessions_by(&mut self, samples: &[Sample], by_agent: bool) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            if by_agent {
                let agent = s.labels.get(logql::AGENT).cloned().unwrap_or_else(|| "unknown".into());
                *self.agent_sessions.get_or_insert_with(BTreeMap::new).entry(agent).or_default() += n;
            } else {
                *self.variant_sessions.get_or_insert_with(BTreeMap::new).entry(variant_of(&s.labels)).or_default() += n;
            }
        }
        Ok(())
    }

    pub fn squares(&mut self, samples: &[Sample]) -> Result<()> {
        let squares = self.squares.get_or_insert_with(BTreeMap::new);
        for s in samples {
            if !(s.value.is_finite() && s.value >= 0.0) {
                return Err(anyhow!("{} for {:?} is not a sum of squares", s.value, s.labels));
            }
            *squares.entry(variant_of(&s.labels)).or_default() += s.value;
        }
        Ok(())
    }

    /// Whether every session has one agent and one variant, so that the tuples add up to
    /// the sessions per agent and per variant.
    pub fn tuples_are_exact(&self) -> bool {
        Some(self.tuples.values().sum::<u64>()) == self.sessions
    }

    /// The known cost by model, agent and variant.
    pub fn group_costs(&self) -> GroupCosts {
        GroupCosts {
            by_model: self.cost_model.iter().map(|(k, c)| (k.clone(), c.usd)).collect(),
            by_agent: self.cost_agent.iter().map(|(k, c)| (k.clone(), c.usd)).collect(),
            by_variant: self.cost_variant.iter().map(|(k, c)| (k.clone(), c.usd)).collect(),
        }
    }

    pub fn totals(&self) -> Totals {
        let o = self.all_outcomes();
        Totals {
            cost: self.cost.usd,
            input_tokens: self.input,
            output_tokens: self.output,
            sessions: self.sessions.unwrap_or(0),
            model_calls: Some(self.calls.values().sum()),
            errors: Some(o.failed_runs),
            runs: Some(o.runs),
            tool_calls: Some(o.tool_calls),
            tool_failures: Some(o.tool_failures),
            uncosted_events: Some(self.uncosted),
            events: Some(self.events),
            model_errors: None,
            costed_sessions: None,
        }
    }

    fn all_outcomes(&self) -> Outcomes {
        let mut all = Outcomes::default();
        for o in self.variant_outcomes.values() {
            all.runs += o.runs;
            all.failed_runs += o.failed_runs;
            all.tool_calls += o.tool_calls;
            all.tool_failures += o.tool_failures;
        }
        all
    }

    /// The window's rows (without the daily series).
    pub fn rows(&self) -> Rows {
        let models: BTreeSet<&ModelKey> =
            self.calls.keys().chain(self.cost_model.keys()).chain(self.tokens_model.keys()).collect();
        let by_model = models
            .into_iter()
            .map(|key| {
                let (input, output) = self.tokens_model.get(key).copied().unwrap_or_default();
                let uncosted = self.uncosted_model.get(key).copied().unwrap_or(0);
                ModelRow {
                    model: key.0.clone(),
                    provider: key.1.clone(),
                    cost: self.cost_model.get(key).copied().unwrap_or_default().value(uncosted),
                    input_tokens: input,
                    output_tokens: output,
                    calls: Some(self.calls.get(key).copied().unwrap_or(0)),
                }
            })
            .collect();

        let mut agent_sessions: BTreeMap<&str, u64> = BTreeMap::new();
        let mut variant_sessions: BTreeMap<&VariantKey, u64> = BTreeMap::new();
        for ((agent, variant), &n) in &self.tuples {
            *agent_sessions.entry(agent).or_default() += n;
            *variant_sessions.entry(variant).or_default() += n;
        }
        if let Some(exact) = &self.agent_sessions {
            agent_sessions = exact.iter().map(|(a, &n)| (a.as_str(), n)).collect();
        }
        if let Some(exact) = &self.variant_sessions {
            variant_sessions = exact.iter().map(|(k, &n)| (k, n)).collect();
        }
        let agents: BTreeSet<&str> = self
            .agents_seen
            .iter()
            .map(String::as_str)
            .chain(agent_sessions.keys().copied())
            .chain(self.cost_agent.keys().map(String::as_str))
            .chain(self.agent_failed_runs.keys().map(String::as_str))
            .chain(self.uncosted_agent.keys().map(String::as_str))
            .collect();
        let by_agent = agents
            .into_iter()
            .map(|agent| AgentRow {
                agent: agent.to_string(),
                cost: self
                    .cost_agent
                    .get(agent)
                    .copied()
                    .unwrap_or_default()
                    .value(self.uncosted_agent.get(agent).copied().unwrap_or(0)),
                sessions: agent_sessions.get(agent).copied().unwrap_or(0),
                errors: Some(self.agent_failed_runs.get(agent).copied().unwrap_or(0)),
            })
            .collect();

        let variants: BTreeSet<&VariantKey> = self
            .variant_outcomes
            .keys()
            .chain(variant_sessions.keys().copied())
            .chain(self.cost_variant.keys())
            .chain(self.uncosted_variant.keys())
            .collect();
        let by_variant = variants
            .into_iter()
            .map(|key| {
                let o = self.variant_outcomes.get(key).copied().unwrap_or_default();
                let cost = self
                    .cost_variant
                    .get(key)
                    .copied()
                    .unwrap_or_default()
                    .value(self.uncosted_variant.get(key).copied().unwrap_or(0));
                VariantRow {
                    experiment: key.0.clone(),
                    variant: key.1.clone(),
                    sessions: variant_sessions.get(key).copied().unwrap_or(0),
                    cost,
                    errors: o.failed_runs,
                    spread: VariantSpread {
                        // A cost figure: unknown with the variant's cost.
                        cost_sum_squares: self
                            .squares
                            .as_ref()
                            .filter(|_| cost.is_some())
                            .map(|s| s.get(key).copied().unwrap_or(0.0)),
                        runs: Some(o.runs),
                        tool_calls: Some(o.tool_calls),
                        tool_failures: Some(o.tool_failures),
                    },
                }
            })
            .collect();

        let mut by_session = self.top.clone();
        by_session.sort_by(|a, b| by_cost(a.cost, b.cost).then_with(|| a.session.cmp(&b.session)));
        Rows { totals: self.totals(), by_model, by_agent, by_variant, by_session, daily: Vec::new(), durations: None }
    }

    /// Refuses answers that cannot all be complete: every count must fit among the events,
    /// a model's costed calls must come with a cost series and its uncosted ones must be
    /// among its calls, the tuples must cover every session. `dims`: the window was asked
    /// by group, so the checks hold group by group.
    pub fn check(&self, dims: bool) -> std::result::Result<(), String> {
        let o = self.all_outcomes();
        let calls: u64 = self.calls.values().sum();
        if calls + o.runs + o.tool_calls > self.events || o.failed_runs > o.runs || o.tool_failures > o.tool_calls {
            return Err(format!(
                "{calls} model calls, {} runs ({} failed) and {} tool calls ({} failed) but {} events",
                o.runs, o.failed_runs, o.tool_calls, o.tool_failures, self.events
            ));
        }
        if self.uncosted > calls {
            return Err(format!("{} model calls without a cost out of {calls}", self.uncosted));
        }
        if (calls > self.uncosted) != self.cost.seen {
            return Err(format!(
                "{} model calls with a cost but {} cost series",
                calls - self.uncosted,
                if self.cost.seen { "a" } else { "no" }
            ));
        }
        if self.sessions.is_some_and(|n| n > self.events) {
            return Err(format!("{:?} sessions but {} events", self.sessions, self.events));
        }
        if !dims {
            return Ok(());
        }
        for (model, &n) in &self.calls {
            let uncosted = self.uncosted_model.get(model).copied().unwrap_or(0);
            let seen = self.cost_model.get(model).is_some_and(|c| c.seen);
            if uncosted > n || (n > uncosted) != seen {
                return Err(format!("{n} calls, {uncosted} without a cost, but cost series {seen} for {model:?}"));
            }
        }
        if let Some(model) =
            self.cost_model.keys().chain(self.tokens_model.keys()).find(|m| !self.calls.contains_key(*m))
        {
            return Err(format!("costs or tokens but no model calls for {model:?}"));
        }
        for (key, o) in &self.variant_outcomes {
            if o.failed_runs > o.runs || o.tool_failures > o.tool_calls {
                return Err(format!("more failures than runs or tool calls for {key:?}: {o:?}"));
            }
        }
        let tuples: u64 = self.tuples.values().sum();
        if self.sessions.is_some_and(|n| tuples < n) {
            return Err(format!("{tuples} sessions by agent and variant but {:?} in all", self.sessions));
        }
        Ok(())
    }
}

/// The days must add up to the window's cost (up to Loki's float sums): a day answered
/// empty while it had costs shows up here.
pub(super) fn check_daily(daily: &[Usd], total: Usd) -> std::result::Result<(), String> {
    let sum: Usd = daily.iter().copied().sum();
    let diff = (sum.pico() - total.pico()).abs();
    let tolerance = (total.pico() / 1_000_000_000).max(1_000);
    if diff > tolerance {
        return Err(format!("the days add up to {} but the window's cost is {}", sum.as_f64(), total.as_f64()));
    }
    Ok(())
}

/// The details of named sessions, from [`super::LogQl::session_events_of`] and the token
/// legs, as rows; `costs` are the sessions' costs as the top-N query answered them
/// (`None`: every call uncosted).
#[derive(Debug, Default)]
pub struct SessionDetails {
    agents: BTreeMap<String, BTreeSet<String>>,
    calls: BTreeMap<String, u64>,
    input: BTreeMap<String, u64>,
    output: BTreeMap<String, u64>,
}

impl SessionDetails {
    pub fn events(&mut self, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let n = count(s)?;
            let session = logql::session_of(&s.labels).ok_or_else(|| anyhow!("{:?} has no session", s.labels))?;
            self.agents.entry(session.to_string()).or_default().insert(logql::agent_of(&s.labels).to_string());
            if Shape::kind_of(&s.labels).is_some_and(|(_, k)| k == Kind::ModelCall) {
                *self.calls.entry(session.to_string()).or_default() += n;
            }
        }
        Ok(())
    }

    /// [`SessionDetails::events`] and the tokens of model calls, from series that carry
    /// their token counts as labels (`LogQl::session_lines_of`).
    pub fn lines(&mut self, samples: &[Sample]) -> Result<()> {
        self.events(samples)?;
        for s in samples {
            let Some((shape, Kind::ModelCall)) = Shape::kind_of(&s.labels) else { continue };
            let session = logql::session_of(&s.labels).ok_or_else(|| anyhow!("{:?} has no session", s.labels))?;
            let n = count(s)?;
            for (tokens, map) in [(Tokens::Input, &mut self.input), (Tokens::Output, &mut self.output)] {
                for leg in shape.legs(Value::Tokens(tokens)) {
                    let Some(text) = s.labels.get(leg.field) else { continue };
                    let each: u64 = text
                        .parse()
                        .map_err(|_| anyhow!("{} {text:?} is not a token count ({:?})", leg.field, s.labels))?;
                    let sum = each.checked_mul(n).ok_or_else(|| anyhow!("{:?}: tokens overflow", s.labels))?;
                    let total = map.entry(session.to_string()).or_default();
                    *total = total.checked_add(sum).ok_or_else(|| anyhow!("{session}: tokens overflow"))?;
                }
            }
        }
        Ok(())
    }

    pub fn tokens(&mut self, samples: &[Sample], input: bool) -> Result<()> {
        for s in samples {
            let session = logql::session_of(&s.labels).ok_or_else(|| anyhow!("{:?} has no session", s.labels))?;
            let map = if input { &mut self.input } else { &mut self.output };
            *map.entry(session.to_string()).or_default() += count(s)?;
        }
        Ok(())
    }

    /// The rows of `sessions`; every one must have answered with its events.
    pub fn rows(&self, sessions: &[(String, Option<Usd>)]) -> std::result::Result<Vec<SessionRow>, String> {
        sessions
            .iter()
            .map(|(session, cost)| {
                let agents =
                    self.agents.get(session).ok_or_else(|| format!("no events for top session {session:?}"))?;
                // The JSONL source's choice for a session seen under several agents.
                let agent = agents.iter().min_by_key(|a| (*a == "unknown", a.as_str())).cloned();
                Ok(SessionRow {
                    session: session.clone(),
                    agent: agent.unwrap_or_else(|| "unknown".into()),
                    cost: *cost,
                    input_tokens: self.input.get(session).copied().unwrap_or(0),
                    output_tokens: self.output.get(session).copied().unwrap_or(0),
                    model_calls: self.calls.get(session).copied().unwrap_or(0),
                })
            })
            .collect()
    }
}

/// The costliest sessions, best first, the JSONL source's way: by cost, then by name.
/// `found` are sessions and costs as answered (by several classes, in no order).
pub fn rank(found: &[Sample]) -> Result<Vec<(String, Usd)>> {
    let mut ranked: Vec<(String, Usd)> = found
        .iter()
        .map(|s| {
            let name =
                s.labels.get(logql::SESSION).cloned().ok_or_else(|| anyhow!("{:?} names no session", s.labels))?;
            Ok((name, usd(s)?))
        })
        .collect::<Result<_>>()?;
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.dedup_by(|a, b| a.0 == b.0);
    Ok(ranked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample { labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value }
    }

    #[test]
    fn answers_add_up_like_the_jsonl_source() {
        let mut t = Tally::default();
        let call = [("type", "model_usage"), ("agentId", "main"), ("model", "anthropic/claude-x")];
        let b_call = [("eventType", "model_usage"), ("model", "gpt-5"), ("provider", "OpenAI")];
        t.counts(&[
            sample(&call, 3.0),
            sample(&b_call, 1.0),
            sample(&[("type", "agent_end"), ("agentId", "main"), ("variant", "A"), ("experimentId", "x")], 2.0),
            sample(&[("__error__", "JSONParserErr")], 2.0),
            sample(&[], 1.0),
        ])
        .unwrap();
        assert_eq!((t.events, t.not_json, t.untyped, t.agent_from_key), (6, 2, 1, true));
        t.failed(&[sample(
            &[("type", "agent_end"), (logql::AGENT, "main"), ("variant", "A"), ("experimentId", "x")],
            1.0,
        )])
        .unwrap();
        t.uncosted(
            &[sample(
                &[("eventType", "model_usage"), ("model", "gpt-5"), ("provider", "OpenAI"), (logql::AGENT, "ops")],
                1.0,
            )],
            true,
        )
        .unwrap();
        t.cost(&[sample(&[("type", "model_usage"), ("model", "anthropic/claude-x"), ("agentId", "main")], 0.75)], true)
            .unwrap();
        t.session_count(&[sample(&[], 2.0)]).unwrap();
        t.session_tuples(&[sample(&[(logql::AGENT, "main")], 1.0), sample(&[(logql::AGENT, "ops")], 1.0)]).unwrap();
        t.check(true).unwrap();
        assert!(t.tuples_are_exact());
        let rows = t.rows();
        assert_eq!(rows.totals.cost, Usd::from_f64(0.75).unwrap());
        assert_eq!(
            (rows.totals.model_calls, rows.totals.uncosted_events, rows.totals.errors),
            (Some(4), Some(1), Some(1))
        );
        let gpt = rows.by_model.iter().find(|m| m.model == "gpt-5").unwrap();
        assert_eq!(
            (gpt.provider.as_str(), gpt.cost, gpt.calls),
            ("openai", None, Some(1)),
            "uncosted: unknown, not free"
        );
        let ops = rows.by_agent.iter().find(|a| a.agent == "ops").unwrap();
        assert_eq!((ops.cost, ops.sessions), (None, 1));
        let a = rows.by_variant.iter().find(|v| v.variant.as_deref() == Some("A")).unwrap();
        assert_eq!((a.errors, a.spread.runs, a.spread.cost_sum_squares), (1, Some(2), None));
    }

    #[test]
    fn answers_that_disagree_are_refused() {
        let mut t = Tally::default();
        t.counts(&[sample(&[("type", "model_usage"), ("model", "m")], 1.0)]).unwrap();
        assert!(t.check(true).unwrap_err().contains("but no cost series"));
        t.cost(&[sample(&[("type", "model_usage"), ("model", "m")], 1.0)], true).unwrap();
        t.check(true).unwrap();
        t.session_count(&[sample(&[], 1.0)]).unwrap();
        assert!(t.check(true).unwrap_err().contains("sessions by agent and variant"));
        let mut t = Tally::default();
        t.counts(&[sample(&[("kind", "run.end")], 1.0)]).unwrap();
        t.failed(&[sample(&[("kind", "run.end")], 2.0)]).unwrap();
        assert!(t.check(false).unwrap_err().contains("runs (2 failed)"));
        assert!(t.failed(&[sample(&[("kind", "llm.call")], 1.0)]).is_err());
    }

    #[test]
    fn sessions_rank_by_cost_then_name() {
        let s = |name: &str, v: f64| sample(&[(logql::SESSION, name)], v);
        let ranked = rank(&[s("b", 1.0), s("a", 1.0), s("c", 2.0), s("a", 1.0)]).unwrap();
        let names: Vec<&str> = ranked.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }

    #[test]
    fn days_must_add_up() {
        let u = |v| Usd::from_f64(v).unwrap();
        assert!(check_daily(&[u(1.0), u(2.0)], u(3.0)).is_ok());
        assert!(check_daily(&[u(1.0), Usd::ZERO], u(3.0)).is_err());
    }
}
