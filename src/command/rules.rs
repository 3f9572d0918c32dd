//! `obsctl rules`: rule files for Prometheus and Loki's ruler, from the names and query
//! forms the digest uses (the config file's metric and label names, the step, the Loki
//! selector). Flags in, [`crate::rules`] templates, a file per target out.

use anyhow::{bail, Result};

use super::Outputs;
use crate::cli::{RulesArgs, RulesTarget};
use crate::config::PrometheusNames;
use crate::error;
use crate::report;
use crate::rules::loki::LokiRules;
use crate::rules::prometheus::PrometheusRules;
use crate::rules::{self, parse_usd, shell_quote, template_text, CostLimit, RateLimit, Span};
use crate::source::logql::LogQl;
use crate::source::promql::{is_label_name, PromQl};

pub const DEFAULT_SPIKE: &str = "5/1h";
pub const DEFAULT_ERROR_RATE: &str = "10%/1h";
pub const DEFAULT_MIN_ERRORS: u64 = 3;
pub const DEFAULT_SESSION_LOOKBACK: &str = "24h";
pub const DEFAULT_FAILED_RUN_RATE: &str = "20%/1h";
pub const DEFAULT_TOOL_FAILURE_RATE: &str = "10%/1h";
pub const DEFAULT_MIN_RUNS: u64 = 10;

pub struct RulesOptions {
    pub prometheus: PrometheusRules,
    pub loki: LokiRules,
    pub outputs: Outputs<RulesTarget>,
}

impl RulesOptions {
    pub fn from_args(args: RulesArgs) -> Result<RulesOptions> {
        let mut outputs = Outputs::parse(&args.output, args.target, RulesTarget::parse)?;
        super::distinct_files(outputs.files.iter().map(|(_, p)| p.as_path()))?;
        // Files written, nothing printed: `-o loki=FILE` alone writes the Loki rules only.
        if !outputs.files.is_empty() {
            outputs.stdout = None;
        }
        check_target_flags(&args, outputs.writes(RulesTarget::Prometheus), outputs.writes(RulesTarget::Loki))?;
        let file = super::load_config(args.config.as_deref())?;
        let names = PrometheusNames::from_file(&file.prometheus);
        let step = args.prometheus_step.or(file.prometheus.step_seconds).unwrap_or(60);
        if step == 0 {
            bail!("--prometheus-step must be at least 1 second");
        }
        let spike_per = args.spike_per.iter().map(|pair| spike_per(pair, &names)).collect::<Result<Vec<_>>>()?;
        for (i, (label, limit)) in spike_per.iter().enumerate() {
            // Both alerts would carry the same name and labels: Alertmanager could not tell
            // them apart, and promtool flags them as duplicates.
            if spike_per[..i].iter().any(|(l, other)| l == label && other.span.ms == limit.span.ms) {
                bail!(
                    "--spike-per {}: a second threshold for {label:?} over the same window; give one per label \
                     and window",
                    args.spike_per[i]
                );
            }
        }
        let promql = PromQl::new(names, step, None)?;
        let selector = args
            .loki_selector
            .clone()
            .or_else(|| file.loki.selector.clone())
            .unwrap_or_else(|| crate::source::loki::DEFAULT_SELECTOR.to_string());

        // What the runbooks' commands need to read the same series as the rules.
        let config = args.config.as_ref().map(|p| format!(" --config {}", shell_quote(&p.to_string_lossy())));
        let config = config.unwrap_or_default();
        let step_flag = args.prometheus_step.map(|s| format!(" --prometheus-step {s}")).unwrap_or_default();
        let selector_flag = args.loki_selector.as_ref().map(|s| format!(" --loki-selector {}", shell_quote(s)));
        let prometheus = PrometheusRules {
            promql,
            spike: unless_off(args.spike.as_deref().unwrap_or(DEFAULT_SPIKE), "--spike", CostLimit::parse)?,
            spike_per,
            daily_budget: args.daily_budget.as_deref().map(|v| flag(v, "--daily-budget", parse_usd)).transpose()?,
            error_rate: unless_off(
                args.error_rate.as_deref().unwrap_or(DEFAULT_ERROR_RATE),
                "--error-rate",
                RateLimit::parse,
            )?,
            min_errors: args.min_errors.unwrap_or(DEFAULT_MIN_ERRORS),
            digest_flags: template_text(&format!("{config}{step_flag}")),
        };
        let lookback = args.session_lookback.as_deref().unwrap_or(DEFAULT_SESSION_LOOKBACK);
        let loki = LokiRules {
            logql: LogQl::new(&selector)?,
            session_budget: args
                .session_budget
                .as_deref()
                .map(|v| flag(v, "--session-budget", parse_usd))
                .transpose()?,
            session_lookback: flag(lookback, "--session-lookback", Span::parse)?,
            failed_run_rate: unless_off(
                args.failed_run_rate.as_deref().unwrap_or(DEFAULT_FAILED_RUN_RATE),
                "--failed-run-rate",
                RateLimit::parse,
            )?,
            tool_failure_rate: unless_off(
                args.tool_failure_rate.as_deref().unwrap_or(DEFAULT_TOOL_FAILURE_RATE),
                "--tool-failure-rate",
                RateLimit::parse,
            )?,
            min_runs: args.min_runs.unwrap_or(DEFAULT_MIN_RUNS),
            digest_flags: template_text(&format!("{config}{}", selector_flag.unwrap_or_default())),
        };
        Ok(RulesOptions { prometheus, loki, outputs })
    }

    /// The rule file of one target.
    pub fn render(&self, target: RulesTarget) -> Result<String> {
        Ok(match target {
            RulesTarget::Prometheus => rules::prometheus::generate(&self.prometheus)?.render(),
            RulesTarget::Loki => rules::loki::generate(&self.loki).render(),
        })
    }
}

pub fn run(opts: RulesOptions) -> Result<u8> {
    // Every file is rendered before any is written: a bad option writes nothing.
    let files = opts.outputs.files.iter().map(|(t, path)| Ok((path, opts.render(*t)?))).collect::<Result<Vec<_>>>()?;
    let stdout = opts.outputs.stdout.map(|t| opts.render(t)).transpose()?;
    for (path, text) in files {
        report::write_atomic(path, text.as_bytes())?;
    }
    if let Some(text) = stdout {
        super::print(text.as_bytes())?;
    }
    Ok(error::OK)
}

/// A flag that applies to a target that is not written is a mistake, not a no-op.
fn check_target_flags(args: &RulesArgs, prometheus: bool, loki: bool) -> Result<()> {
    let prometheus_flags = [
        ("--spike", args.spike.is_some()),
        ("--spike-per", !args.spike_per.is_empty()),
        ("--daily-budget", args.daily_budget.is_some()),
        ("--error-rate", args.error_rate.is_some()),
        ("--min-errors", args.min_errors.is_some()),
    ];
    let loki_flags = [
        ("--session-budget", args.session_budget.is_some()),
        ("--session-lookback", args.session_lookback.is_some()),
        ("--failed-run-rate", args.failed_run_rate.is_some()),
        ("--tool-failure-rate", args.tool_failure_rate.is_some()),
        ("--min-runs", args.min_runs.is_some()),
    ];
    for (flags, written, name) in [(&prometheus_flags, prometheus, "prometheus"), (&loki_flags, loki, "loki")] {
        if let Some((flag, _)) = flags.iter().find(|(_, given)| *given).filter(|_| !written) {
            bail!("{flag} is for the {name} rule file, which this run does not write: add --target {name} or --output {name}=FILE");
        }
    }
    Ok(())
}

/// `--spike-per LABEL=USD/WINDOW`: `agent`, `model` and `provider` are the configured
/// label names; anything else must be a label name itself (it goes into `sum by (…)`).
fn spike_per(pair: &str, names: &PrometheusNames) -> Result<(String, CostLimit)> {
    let Some((label, limit)) = pair.split_once('=') else {
        bail!("--spike-per {pair:?}: expected LABEL=USD/WINDOW, as in agent=2/1h");
    };
    let label = match label.trim() {
        "agent" => names.agent.clone(),
        "model" => names.model.clone(),
        "provider" => names.provider.clone(),
        l if is_label_name(l) && !l.starts_with("__") => l.to_string(),
        l => bail!("--spike-per {pair:?}: {l:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"),
    };
    Ok((label, flag(limit, "--spike-per", CostLimit::parse)?))
}

fn flag<T>(value: &str, name: &str, parse: impl Fn(&str) -> Result<T>) -> Result<T> {
    parse(value).map_err(|e| e.context(format!("{name} {value}")))
}

/// `off` turns a default alert off.
fn unless_off<T>(value: &str, name: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    flag(value, name, parse).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_per_takes_label_names_only() {
        let names = PrometheusNames { agent: "agent_id".into(), ..Default::default() };
        assert_eq!(spike_per("agent=2/1h", &names).unwrap().0, "agent_id");
        assert_eq!(spike_per("instance=2/1h", &names).unwrap().0, "instance");
        for bad in ["agent) or vector(1) or (x=2/1h", "agent-id=2/1h", "__name__=2/1h", "agent", "=2/1h", "agent=2"] {
            assert!(spike_per(bad, &names).is_err(), "{bad}");
        }
    }
}
