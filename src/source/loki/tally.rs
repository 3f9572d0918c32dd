//! The answers for one window added up per group of labels, resolved as the JSONL source
//! resolves an event, and checked for consistency before they become rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{anyhow, Result};

use super::answer::{count, usd, Sample};
use super::logql::{self, Outcome};
use super::Measure;
use crate::digest::{by_cost, AgentRow, ModelRow, Rows, SessionRow, Totals, VariantRow, VariantSpread};
use crate::usd::Usd;

/// Σ x² over costs x, exactly: each cost is a whole number of pico-dollars, and its square
/// and the sum are kept as a 256-bit integer, so neither the order of the additions (maps,
/// merged threads) nor their number changes a bit of the result. The JSONL source uses it
/// too, for the same figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SquareSum {
    /// Σ pico² = `high` · 2¹²⁸ + `low`.
    high: u128,
    low: u128,
}

impl SquareSum {
    pub fn add(&mut self, x: Usd) {
        let p = x.pico().unsigned_abs();
        // p = a·2⁶⁴ + b, so p² = a²·2¹²⁸ + ab·2⁶⁵ + b², each part below 2¹²⁸ before shifting.
        let (a, b) = (p >> 64, p & u128::from(u64::MAX));
        let ab = a * b;
        self.add_wide(a * a, 0);
        self.add_wide(ab >> 63, ab << 65);
        self.add_wide(0, b * b);
    }

    fn add_wide(&mut self, high: u128, low: u128) {
        let (sum, carry) = self.low.overflowing_add(low);
        self.low = sum;
        self.high = self.high.saturating_add(high).saturating_add(u128::from(carry));
    }

    /// The sum in USD².
    pub fn usd2(self) -> f64 {
        (self.high as f64 * 2f64.powi(128) + self.low as f64) / 1e24
    }
}

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

/// Run ends and tool calls, failed or not, of one variant (or of a window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcomes {
    runs: u64,
    failed_runs: u64,
    tool_calls: u64,
    tool_failures: u64,
}

impl Outcomes {
    fn merge(&mut self, o: &Outcomes) {
        self.runs += o.runs;
        self.failed_runs += o.failed_runs;
        self.tool_calls += o.tool_calls;
        self.tool_failures += o.tool_failures;
    }
}

/// An experiment and a variant, as [`logql::experiment_of`] resolves them.
type VariantKey<'a> = (Option<&'a str>, Option<&'a str>);

/// The answers for one window, added up per group (and per model for model calls). Every
/// sum is exact (`Usd`, integers), so the order pieces arrive in changes nothing.
#[derive(Default)]
pub struct Tally {
    cells: HashMap<(Group, Option<(String, String)>), Acc>,
    /// Run ends and tool calls by experiment and variant (all under `(None, None)` when
    /// the window's answers are not grouped).
    outcomes: BTreeMap<(Option<String>, Option<String>), Outcomes>,
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
                Measure::Outcomes | Measure::FailedOutcomes => {
                    let n = count(s)?;
                    let outcome = logql::outcome_of(&s.labels)
                        .ok_or_else(|| anyhow!("{:?} is neither a run end nor a tool call", s.labels))?;
                    let (experiment, variant) = logql::experiment_of(&s.labels);
                    let o = self.outcomes.entry((experiment.map(str::to_string), variant.map(str::to_string)));
                    let o = o.or_default();
                    match (measure == Measure::FailedOutcomes, outcome) {
                        (false, Outcome::Run) => o.runs += n,
                        (true, Outcome::Run) => o.failed_runs += n,
                        (false, Outcome::ToolCall) => o.tool_calls += n,
                        (true, Outcome::ToolCall) => o.tool_failures += n,
                    }
                }
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
                        Measure::Outcomes | Measure::FailedOutcomes => unreachable!("handled above"),
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

    fn all_outcomes(&self) -> Outcomes {
        let mut all = Outcomes::default();
        for o in self.outcomes.values() {
            all.merge(o);
        }
        all
    }

    fn outcomes_of(&self, (experiment, variant): VariantKey) -> Outcomes {
        let key = (experiment.map(str::to_string), variant.map(str::to_string));
        self.outcomes.get(&key).copied().unwrap_or_default()
    }

    fn sessions(&self) -> BTreeSet<&str> {
        self.cells.keys().filter_map(|(g, _)| g.session.as_deref()).collect()
    }

    /// The window's totals. Failed runs are those of the outcome answers, which are asked
    /// in both windows (and agree with the failed runs by session in the current one).
    pub fn totals(&self) -> Totals {
        let all = self.all();
        let outcomes = self.all_outcomes();
        Totals {
            cost: all.cost,
            input_tokens: all.input,
            output_tokens: all.output,
            sessions: self.sessions().len() as u64,
            model_calls: Some(all.calls),
            errors: Some(outcomes.failed_runs),
            runs: Some(outcomes.runs),
            tool_calls: Some(outcomes.tool_calls),
            tool_failures: Some(outcomes.tool_failures),
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
        // A variant's sums and the cost of each of its sessions in it.
        let mut variants: BTreeMap<VariantKey, (Acc, BTreeMap<&str, Usd>)> = BTreeMap::new();
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
                *variant.1.entry(session).or_default() += acc.cost;
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
            .map(|(key, (a, costs))| {
                let mut squares = SquareSum::default();
                costs.values().for_each(|&c| squares.add(c));
                let o = self.outcomes_of(key);
                VariantRow {
                    experiment: key.0.map(str::to_string),
                    variant: key.1.map(str::to_string),
                    sessions: costs.len() as u64,
                    cost: a.cost_value(),
                    errors: a.failed,
                    spread: VariantSpread {
                        cost_sum_squares: Some(squares.usd2()),
                        runs: Some(o.runs),
                        tool_calls: Some(o.tool_calls),
                        tool_failures: Some(o.tool_failures),
                    },
                }
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
        check_outcomes(&self.all(), &self.all_outcomes(), "the window")?;
        if per_group {
            if let Some((g, a)) = groups.iter().find(|(_, a)| a.calls + a.failed > a.events) {
                return Err(format!(
                    "{} model calls and {} failed runs but {} events for {g:?}",
                    a.calls, a.failed, a.events
                ));
            }
            // By variant: the events, calls and failed runs counted by session, against the
            // runs and tool calls counted by variant.
            let mut variants: BTreeMap<VariantKey, Acc> = BTreeMap::new();
            for (g, a) in &groups {
                variants.entry((g.experiment.as_deref(), g.variant.as_deref())).or_default().merge(a);
            }
            for (e, v) in self.outcomes.keys() {
                variants.entry((e.as_deref(), v.as_deref())).or_default();
            }
            for (&key, a) in &variants {
                let o = self.outcomes_of(key);
                if a.failed != o.failed_runs {
                    return Err(format!(
                        "{} failed runs by session but {} by variant for {key:?}",
                        a.failed, o.failed_runs
                    ));
                }
                check_outcomes(a, &o, &format!("{key:?}"))?;
            }
        }
        Ok(())
    }
}

/// Model calls, runs and tool calls are events; failed runs and tool calls are among them.
fn check_outcomes(a: &Acc, o: &Outcomes, what: &str) -> std::result::Result<(), String> {
    if a.calls + o.runs + o.tool_calls > a.events || o.failed_runs > o.runs || o.tool_failures > o.tool_calls {
        return Err(format!(
            "{} model calls, {} runs ({} failed) and {} tool calls ({} failed) but {} events for {what}",
            a.calls, o.runs, o.failed_runs, o.tool_calls, o.tool_failures, a.events
        ));
    }
    Ok(())
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
    fn variants_spread_from_the_groups_and_outcomes() {
        let mut t = Tally::default();
        let g = |session: &'static str, agent: &'static str, variant: &'static str| {
            vec![("sessionId", session), ("agentId", agent), ("experimentId", "exp"), ("variant", variant)]
        };
        let with_model = |mut labels: Vec<(&'static str, &'static str)>| {
            labels.push(("model", "m"));
            labels
        };
        let (s1a, s1a_coder, s1b, s2a) =
            (g("s1", "main", "A"), g("s1", "coder", "A"), g("s1", "main", "B"), g("s2", "main", "A"));
        let events = [sample(&s1a, 4.0), sample(&s1a_coder, 1.0), sample(&s1b, 2.0), sample(&s2a, 2.0)];
        t.add(Measure::Events, &events).unwrap();
        let calls: Vec<Sample> =
            [&s1a, &s1a_coder, &s1b, &s2a].iter().map(|l| sample(&with_model(l.to_vec()), 1.0)).collect();
        t.add(Measure::ModelCalls, &calls).unwrap();
        let costs = [1.0, 0.5, 2.0, 3.0];
        let costs: Vec<Sample> = calls.iter().zip(costs).map(|(s, c)| Sample { value: c, ..s.clone() }).collect();
        t.add(Measure::Cost, &costs).unwrap();
        t.add(Measure::FailedRuns, &[sample(&s1a, 1.0)]).unwrap();
        let outcome = |variant, kind| [("experimentId", "exp"), ("variant", variant), ("type", kind)];
        t.add(
            Measure::Outcomes,
            &[
                sample(&outcome("A", "agent_end"), 2.0),
                sample(&outcome("A", "tool_call"), 1.0),
                sample(&outcome("B", "tool_call"), 1.0),
            ],
        )
        .unwrap();
        t.add(
            Measure::FailedOutcomes,
            &[sample(&outcome("A", "agent_end"), 1.0), sample(&outcome("B", "tool_call"), 1.0)],
        )
        .unwrap();
        t.check(true).unwrap();
        let rows = t.rows(10);
        assert_eq!((rows.totals.runs, rows.totals.errors), (Some(2), Some(1)));
        assert_eq!((rows.totals.tool_calls, rows.totals.tool_failures), (Some(2), Some(1)));
        let variant = |v: &str| rows.by_variant.iter().find(|r| r.variant.as_deref() == Some(v)).unwrap();
        let (a, b) = (variant("A"), variant("B"));
        assert_eq!((a.sessions, a.errors, a.spread.runs, a.spread.tool_calls), (2, 1, Some(2), Some(1)));
        // s1 cost 1.5 in A (two agents), 2 in B; s2 cost 3 in A.
        assert!((a.spread.cost_sum_squares.unwrap() - 11.25).abs() < 1e-12, "{a:?}");
        assert!((b.spread.cost_sum_squares.unwrap() - 4.0).abs() < 1e-12, "{b:?}");
        assert_eq!(
            (b.sessions, b.spread.runs, b.spread.tool_calls, b.spread.tool_failures),
            (1, Some(0), Some(1), Some(1))
        );

        // Failed runs by session and by variant must agree; runs must be among the events.
        t.add(Measure::FailedOutcomes, &[sample(&outcome("B", "agent_end"), 1.0)]).unwrap();
        assert!(t.check(true).unwrap_err().contains("failed runs by session but 1 by variant"));
        let mut t = Tally::default();
        t.add(Measure::Events, &[sample(&[], 1.0)]).unwrap();
        t.add(Measure::Outcomes, &[sample(&[("kind", "run.end")], 1.0), sample(&[("kind", "tool.end")], 1.0)]).unwrap();
        assert!(t.check(false).unwrap_err().contains("but 1 events"));
        assert!(t.add(Measure::Outcomes, &[sample(&[("kind", "llm.call")], 1.0)]).is_err());
    }

    #[test]
    fn square_sums_are_exact() {
        let mut s = SquareSum::default();
        s.add(Usd::from_f64(1.5).unwrap());
        s.add(Usd::from_f64(0.25).unwrap());
        assert_eq!(s.usd2(), 2.3125);
        // Past 2⁶⁴ pico-dollars (about 18 million USD), squares go past 2¹²⁸.
        let mut big = SquareSum::default();
        let x = Usd::from_f64(1e8).unwrap();
        big.add(x);
        big.add(x);
        assert_eq!(big.usd2(), 2e16);
        let mut other = SquareSum::default();
        other.add(Usd::from_f64(2e8).unwrap());
        assert_eq!(other.usd2(), 2.0 * big.usd2());
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
