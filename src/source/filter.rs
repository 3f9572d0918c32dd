//! `--agent`, `--model`, `--experiment`: which events a report covers, with one meaning for
//! every source.
//!
//! A value matches a name exactly as the report shows it (after the same normalisation:
//! the agent from `agentId` or the session key, the model without its provider prefix, the
//! experiment from any of its spellings). Several values of one flag are alternatives;
//! different flags must all match. `--model` keeps model calls of those models only: every
//! other event (session starts, tool calls, run ends) has no model and is left out, so the
//! sessions are those that called the model. Each source turns the filters into its own
//! terms here, escaped, so that a value cannot change a query.

use anyhow::{bail, Result};

use crate::event::{Event, EventKind};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub agents: Vec<String>,
    pub models: Vec<String>,
    pub experiments: Vec<String>,
}

impl Filters {
    pub fn new(agents: &[String], models: &[String], experiments: &[String]) -> Result<Filters> {
        for (flag, values) in [("--agent", agents), ("--model", models), ("--experiment", experiments)] {
            if let Some(v) = values.iter().find(|v| v.is_empty() || v.chars().any(char::is_control)) {
                bail!("{flag} {v:?}: expected a name");
            }
        }
        Ok(Filters { agents: agents.to_vec(), models: models.to_vec(), experiments: experiments.to_vec() })
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.models.is_empty() && self.experiments.is_empty()
    }

    /// For reports: `agent ops, main; model gpt-5`.
    pub fn describe(&self) -> Vec<(&'static str, &[String])> {
        [("agent", &self.agents[..]), ("model", &self.models[..]), ("experiment", &self.experiments[..])]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Advice for a `--model` value spelt with its provider (`openai/gpt-5`), which names no
    /// model: reports name models without the prefix, and the filter matches them as shown.
    pub fn model_advice(&self) -> Option<String> {
        let spelt = self.models.iter().find(|m| m.contains('/'))?;
        let (model, _) = crate::event::normalise_model(Some(spelt.as_str().into()), None);
        (model != spelt.as_str())
            .then(|| format!("a model is named without its provider prefix: --model {model}, not --model {spelt}"))
    }

    /// The filters as the flags that give them, sorted: `--agent coder`, `--model m`.
    pub fn flags(&self) -> Vec<String> {
        flags(self.describe())
    }

    /// Whether the JSONL source counts this event.
    pub fn keeps(&self, e: &Event) -> bool {
        let any = |values: &[String], name: &str| values.iter().any(|v| v == name);
        (self.agents.is_empty() || any(&self.agents, &e.agent))
            && (self.models.is_empty() || (e.kind == EventKind::ModelCall && any(&self.models, &e.model)))
            && (self.experiments.is_empty() || e.experiment.as_deref().is_some_and(|x| any(&self.experiments, x)))
    }

    /// PromQL label matchers (`agent=~"^(?:ops|main)$"` style, anchored as PromQL's are):
    /// a model is matched with or without a `provider/` prefix in its label. No metric has
    /// an experiment label: the caller refuses `--experiment` for Prometheus.
    pub fn promql_matchers(&self, agent: &str, model: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.agents.is_empty() {
            out.push(format!("{agent}=~{}", promql_quote(&alternation(&self.agents))));
        }
        if !self.models.is_empty() {
            out.push(format!("{model}=~{}", promql_quote(&format!("(?:[^/]+/)?{}", alternation(&self.models)))));
        }
        out
    }

    /// LogQL label filters for the stages after `| json`, empty without filters. The agent
    /// and experiment are resolved from their raw labels as the JSONL source resolves them;
    /// the model by the label of the line's shape (`model`, or `data_model` for shape C).
    pub fn logql_stage(&self) -> String {
        let mut out = String::new();
        if !self.agents.is_empty() {
            let a = alternation(&self.agents);
            let mut any = vec![format!("(agentId=~`{a}` and agentId!=\"unknown\")")];
            // A session key names its agent up to the first colon, so a value with a colon
            // is never a key's agent: `agent:a:b:…` belongs to `a`, not to `a:b`.
            let keyed: Vec<String> = self.agents.iter().filter(|v| !v.contains(':')).cloned().collect();
            if !keyed.is_empty() {
                let k = alternation(&keyed);
                any.push(format!("((agentId=\"\" or agentId=\"unknown\") and sessionKey=~`agent:{k}(?::(?s:.*))?`)"));
            }
            if self.agents.iter().any(|v| v == "unknown") {
                any.push("((agentId=\"\" or agentId=\"unknown\") and sessionKey!~`agent:[^:]+(?s:.*)`)".into());
            }
            out.push_str(&format!(" | ({})", any.join(" or ")));
        }
        if !self.models.is_empty() {
            let m = format!("(?:[^/]+/)?{}", alternation(&self.models));
            out.push_str(&format!(
                " | ((type=\"model_usage\" or (type=\"\" and eventType=\"model_usage\")) and model=~`{m}`) or \
                 (type=\"\" and eventType=\"\" and kind=\"llm.call\" and data_model=~`{m}`)"
            ));
        }
        if !self.experiments.is_empty() {
            let x = alternation(&self.experiments);
            out.push_str(&format!(
                " | (experimentId=~`{x}` or (experimentId=\"\" and (experiment_id=~`{x}` or (experiment_id=\"\" and \
                 experiment=~`{x}`))))"
            ));
        }
        out
    }
}

/// `(?:a|b)` of the values, every regex character escaped (RE2 syntax, which PromQL and
/// LogQL both use); a backtick, which no LogQL raw string can hold, as `\x{60}`.
fn alternation(values: &[String]) -> String {
    let escaped: Vec<String> = values.iter().map(|v| super::logql::regex_escape(v)).collect();
    format!("(?:{})", escaped.join("|"))
}

/// A PromQL double-quoted string.
fn promql_quote(s: &str) -> String {
    super::promql::quote(s)
}

/// `(name, values)` pairs (a saved digest's `filters`, or [`Filters::describe`]) as the
/// flags that give them, sorted and without repeats, so that two sets compare as lists.
pub fn flags<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Vec<String> {
    let mut flags: Vec<String> =
        pairs.into_iter().flat_map(|(name, values)| values.iter().map(move |v| format!("--{name} {v}"))).collect();
    flags.sort();
    flags.dedup();
    flags
}

/// [`flags`] in one phrase: `--agent coder --model m`, or `no filter`.
pub fn phrase(flags: &[String]) -> String {
    if flags.is_empty() {
        "no filter".into()
    } else {
        flags.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_everywhere() {
        let f = Filters::new(&["a\"b".into(), "x|y".into()], &["gpt-5.1".into()], &["e`x".into()]).unwrap();
        let m = f.promql_matchers("agent", "model");
        assert_eq!(m[0], r#"agent=~"(?:a\"b|x\\|y)""#);
        assert_eq!(m[1], r#"model=~"(?:[^/]+/)?(?:gpt-5\\.1)""#);
        let stage = f.logql_stage();
        assert!(stage.contains(r"agentId=~`(?:a"), "{stage}");
        assert!(stage.contains(r"x\|y"), "{stage}");
        assert!(stage.contains(r"experimentId=~`(?:e\x{60}x)`"), "{stage}");
        assert!(Filters::new(&["a\nb".into()], &[], &[]).is_err());
        assert!(Filters::new(&[String::new()], &[], &[]).is_err());
        assert_eq!(Filters::default().logql_stage(), "");
    }

    #[test]
    fn describe_names_the_flags_given() {
        let f = Filters::new(&["ops".into()], &[], &["exp".into()]).unwrap();
        let d: Vec<&str> = f.describe().into_iter().map(|(k, _)| k).collect();
        assert_eq!(d, ["agent", "experiment"]);
    }
}
