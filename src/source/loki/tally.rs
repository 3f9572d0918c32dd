//! The answers for one window added up per group of labels, resolved as the JSONL source
//! resolves an event, and checked for consistency before they become rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;

use super::answer::{count, usd, Sample};
use super::logql;
use super::Measure;
use crate::digest::{by_cost, AgentRow, ModelRow, Rows, SessionRow, Totals, VariantRow, VariantSpread};
use crate::usd::Usd;

/// What one group of labels stands for, resolved as the JSONL source resolves an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Group {
    session: Option<String>,
    agent: String,
    experiment: Option<String>,
    variant: Option<String>,
}

impl Group {
    fn of(labels: &BTreeMap<String, String>) -> Group {
        let (experiment, variant) = logql::experiment_of(labels);
        Group {
            session: logql::session_of(labels).map(str::to_string),
            agent: logql::agent_of(labels).to_string(),
            experiment: experiment.map(str::to_string),
            variant: variant.map(str::to_string),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    events: u64,
    cost: Usd,
    /// A cost series was answered (possibly 0): costed calls without one mean a lost answer.
    cost_seen: bool,
    calls: u64,
    uncosted: u64,
    input: u64,
    output: u64,
    failed: u64,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.events += o.events;
        self.cost += o.cost;
        self.cost_seen |= o.cost_seen;
        self.calls += o.calls;
        self.uncosted += o.uncosted;
        self.input += o.input;
        self.output += o.output;
        self.failed += o.failed;
    }

    /// Unknown only when every call lacked a cost; a group with no calls cost nothing.
    fn cost_value(&self) -> Option<Usd> {
        let costed = self.calls.saturating_sub(self.uncosted);
        (costed > 0 || self.uncosted == 0).then_some(self.cost)
    }
}

/// The answers for one window, added up per group (and per model for model calls). Every
/// sum is exact (`Usd`, integers), so the order pieces arrive in changes nothing.
#[derive(Default)]
pub struct Tally {
    cells: HashMap<(Group, Option<(String, String)>), Acc>,
    tools: u64,
    tool_failures: u64,
}

impl Tally {
    pub fn add(&mut self, measure: Measure, samples: &[Sample]) -> Result<()> {
        for s in samples {
            let per_model = matches!(
                measure,
                Measure::Cost
                    | Measure::InputTokens
                    | Measure::OutputTokens
                    | Measure::ModelCalls
                    | Measure::UncostedCalls
            );
            match measure {
                Measure::ToolCalls => self.tools += count(s)?,
                Measure::ToolFailures => self.tool_failures += count(s)?,
                _ => {
                    let model = per_model.then(|| logql::model_of(&s.labels));
                    let acc = self.cells.entry((Group::of(&s.labels), model)).or_default();
                    match measure {
                        Measure::Events => acc.events += count(s)?,
                        Measure::Cost => {
                            acc.cost += usd(s)?;
                            acc.cost_seen = true;
                        }
                        Measure::InputTokens => acc.input += count(s)?,
                        Measure::OutputTokens => acc.output += count(s)?,
                        Measure::ModelCalls => acc.calls += count(s)?,
                        Measure::UncostedCalls => acc.uncosted += count(s)?,
                        Measure::FailedRuns => acc.failed += count(s)?,
                        Measure::ToolCalls | Measure::ToolFailures => unreachable!("handled above"),
                    }
                }
            }
        }
        Ok(())
    }

    fn all(&self) -> Acc {
        let mut all = Acc::default();
        for acc in self.cells.values() {
            all.merge(acc);
        }
        all
    }

    fn sessions(&self) -> BTreeSet<&str> {
        self.cells.keys().filter_map(|(g, _)| g.session.as_deref()).collect()
    }

    pub fn totals(&self) -> Totals {
        let all = self.all();
        Totals {
            cost: all.cost,
            input_tokens: all.input,
            output_tokens: all.output,
            sessions: self.sessions().len() as u64,
            model_calls: Some(all.calls),
            errors: Some(all.failed),
            runs: None,
            tool_calls: Some(self.tools),
            tool_failures: Some(self.tool_failures),
            uncosted_events: Some(all.uncosted),
            events: Some(all.events),
            model_errors: None,
        }
    }

    /// The window's rows (without the daily series), with the `top` costliest sessions.
    pub fn rows(&self, top: usize) -> Rows {
        let mut models: BTreeMap<&(String, String), Acc> = BTreeMap::new();
        // Each with its sums and its distinct sessions (for a session: its agents).
        type Members<'a> = (Acc, BTreeSet<&'a str>);
        let mut agents: BTreeMap<&str, Members> = BTreeMap::new();
        let mut variants: BTreeMap<(Option<&str>, Option<&str>), Members> = BTreeMap::new();
        let mut sessions: BTreeMap<&str, Members> = BTreeMap::new();
        for ((group, model), acc) in &self.cells {
            if let Some(m) = model {
                models.entry(m).or_default().merge(acc);
            }
            let agent = agents.entry(&group.agent).or_default();
            agent.0.merge(acc);
            let variant = variants.entry((group.experiment.as_deref(), group.variant.as_deref())).or_default();
            variant.0.merge(acc);
            if let Some(session) = &group.session {
                agent.1.insert(session);
                variant.1.insert(session);
                let s = sessions.entry(session).or_default();
                s.0.merge(acc);
                s.1.insert(&group.agent);
            }
        }
        let by_model = models
            .into_iter()
            .map(|((model, provider), a)| ModelRow {
                model: model.clone(),
                provider: provider.clone(),
                cost: a.cost_value(),
                input_tokens: a.input,
                output_tokens: a.output,
                calls: Some(a.calls),
            })
            .collect();
        let by_agent = agents
            .into_iter()
            .map(|(agent, (a, s))| AgentRow {
                agent: agent.to_string(),
                cost: a.cost_value(),
                sessions: s.len() as u64,
                errors: Some(a.failed),
            })
            .collect();
        let by_variant = variants
            .into_iter()
            .map(|((experiment, variant), (a, s))| VariantRow {
                experiment: experiment.map(str::to_string),
                variant: variant.map(str::to_string),
                sessions: s.len() as u64,
                cost: a.cost_value(),
                errors: a.failed,
                spread: VariantSpread::default(),
            })
            .collect();
        let mut by_session: Vec<SessionRow> = sessions
            .into_iter()
            .map(|(session, (a, agents))| SessionRow {
                session: session.to_string(),
                // The JSONL source's choice for a session seen under several agents.
                agent: agents.iter().min_by_key(|a| (**a == "unknown", **a)).unwrap_or(&"unknown").to_string(),
                cost: a.cost_value(),
                input_tokens: a.input,
                output_tokens: a.output,
                model_calls: a.calls,
            })
            .collect();
        by_session.sort_by(|a, b| by_cost(a.cost, b.cost).then_with(|| a.session.cmp(&b.session)));
        by_session.truncate(top);
        Rows { totals: self.totals(), by_model, by_agent, by_variant, by_session, daily: Vec::new(), durations: None }
    }

    /// Refuses answers that cannot all be complete. `per_group`: the window's measures were
    /// grouped alike, so the checks hold group by group, not only in total.
    pub(super) fn check(&self, per_group: bool) -> std::result::Result<(), String> {
        let mut groups: HashMap<&Group, Acc> = HashMap::new();
        for ((group, model), acc) in &self.cells {
            if model.is_some() {
                let costed = acc.calls.checked_sub(acc.uncosted).ok_or_else(|| {
                    format!("{} model calls without a cost out of {} for {group:?}", acc.uncosted, acc.calls)
                })?;
                if (costed > 0) != acc.cost_seen {
                    return Err(format!(
                        "{costed} model calls with a cost but {} cost series for {group:?} {model:?}",
                        if acc.cost_seen { "a" } else { "no" }
                    ));
                }
                if acc.calls == 0 && acc.input + acc.output > 0 {
                    return Err(format!("tokens but no model calls for {group:?} {model:?}"));
                }
            }
            groups.entry(group).or_default().merge(acc);
        }
        let all = self.all();
        if all.calls + all.failed > all.events {
            return Err(format!(
                "{} model calls and {} failed runs but only {} events",
                all.calls, all.failed, all.events
            ));
        }
        if per_group {
            if let Some((g, a)) = groups.iter().find(|(_, a)| a.calls + a.failed > a.events) {
                return Err(format!(
                    "{} model calls and {} failed runs but {} events for {g:?}",
                    a.calls, a.failed, a.events
                ));
            }
        }
        if self.tool_failures > self.tools || self.tools > all.events {
            return Err(format!(
                "{} tool failures of {} tool calls, among {} events",
                self.tool_failures, self.tools, all.events
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample { labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value }
    }

    #[test]
    fn groups_add_up_like_the_jsonl_source() {
        let mut t = Tally::default();
        let s1 = [("sessionId", "s1"), ("agentId", "main"), ("model", "anthropic/claude-x")];
        let s2 = [("sessionKey", "agent:ops:k"), ("model", "gpt-5"), ("provider", "OpenAI")];
        t.add(Measure::Events, &[sample(&s1[..2], 3.0), sample(&s2[..1], 2.0)]).unwrap();
        t.add(Measure::Cost, &[sample(&s1, 0.5), sample(&s1, 0.25)]).unwrap();
        t.add(Measure::ModelCalls, &[sample(&s1, 2.0), sample(&s2, 1.0)]).unwrap();
        t.add(Measure::UncostedCalls, &[sample(&s2, 1.0)]).unwrap();
        t.check(true).unwrap();
        let rows = t.rows(10);
        assert_eq!(rows.totals.sessions, 2);
        assert_eq!(rows.totals.cost, Usd::from_f64(0.75).unwrap());
        assert_eq!(rows.totals.uncosted_events, Some(1));
        let ops = rows.by_session.iter().find(|s| s.session == "agent:ops:k").unwrap();
        assert_eq!((ops.agent.as_str(), ops.cost), ("ops", None), "every call uncosted: unknown, not free");
        let gpt = rows.by_model.iter().find(|m| m.model == "gpt-5").unwrap();
        assert_eq!((gpt.provider.as_str(), gpt.cost, gpt.calls), ("openai", None, Some(1)));
        assert_eq!(rows.by_session[0].session, "s1");
    }

    #[test]
    fn a_missing_cost_series_is_refused() {
        let mut t = Tally::default();
        let s = [("sessionId", "s1"), ("model", "m")];
        t.add(Measure::Events, &[sample(&s[..1], 1.0)]).unwrap();
        t.add(Measure::ModelCalls, &[sample(&s, 1.0)]).unwrap();
        assert!(t.check(true).unwrap_err().contains("no cost series"));
        let mut t = Tally::default();
        t.add(Measure::ModelCalls, &[sample(&s, 1.0)]).unwrap();
        t.add(Measure::Cost, &[sample(&s, 1.0)]).unwrap();
        assert!(t.check(true).unwrap_err().contains("events"));
    }

    #[test]
    fn days_must_add_up() {
        let u = |v| Usd::from_f64(v).unwrap();
        assert!(check_daily(&[u(1.0), u(2.0)], u(3.0)).is_ok());
        assert!(check_daily(&[u(1.0), Usd::ZERO], u(3.0)).is_err());
    }
}
