//! The gate's policy: which checks run and their thresholds, from the flags over the
//! config file's `[gate]` section.
//!
//! Thresholds are written as people say them: `20%` (or `20`) for a relative increase,
//! `2pp` for an increase of a rate in percentage points, `5%` (or `0.05`) for a rate, plain
//! numbers for dollars, tokens and seconds. A value exactly at its threshold passes: a
//! check fails only when the figure is past it.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::cli::GateArgs;
use crate::config::GateFile;

/// How much a figure may grow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Increase {
    /// A fraction of the baseline (`0.2` for `20%`).
    Relative(f64),
    /// Absolute, in the figure's own unit (a rate's percentage points as a fraction:
    /// `0.02` for `2pp`).
    Points(f64),
}

/// One figure's limits: how far it may grow, and how high it may be.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limit {
    pub increase: Option<Increase>,
    pub max: Option<f64>,
}

impl Limit {
    pub fn is_set(&self) -> bool {
        self.increase.is_some() || self.max.is_some()
    }
}

/// The groups a per-group threshold applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    Model,
    Agent,
    Variant,
}

impl Dim {
    pub fn name(self) -> &'static str {
        match self {
            Dim::Model => "model",
            Dim::Agent => "agent",
            Dim::Variant => "variant",
        }
    }

    fn parse(name: &str) -> Result<Dim> {
        Ok(match name.trim() {
            "model" => Dim::Model,
            "agent" => Dim::Agent,
            "variant" => Dim::Variant,
            other => bail!("unknown dimension {other:?}: expected model, agent or variant"),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub total_cost: Limit,
    pub cost_per_session: Limit,
    pub tokens_per_session: Limit,
    pub failed_run_rate: Limit,
    pub tool_failure_rate: Limit,
    pub p95_duration: Limit,
    /// `--max-increase-per DIM=PCT`: relative, per group (for variants, cost per session).
    pub increase_per: BTreeMap<Dim, f64>,
    /// `--max-cost-per DIM=USD`.
    pub cost_per: BTreeMap<Dim, f64>,
    /// `--max-session-cost`.
    pub session_budget: Option<f64>,
    pub control: Option<String>,
    pub min_sessions: u64,
    pub allow_missing: bool,
    /// Of the variant intervals.
    pub confidence: f64,
    /// No threshold was given: the default check stands in (total cost, or cost per model
    /// call against a legacy baseline, which has no total).
    pub by_default: bool,
}

/// With no threshold at all, the gate still checks something: the old script's 20 %.
pub const DEFAULT_MAX_INCREASE: f64 = 0.2;

impl Policy {
    /// Flags over the `[gate]` section.
    pub fn new(args: &GateArgs, file: &GateFile) -> Result<Policy> {
        // Where a value came from, for its error: the flag as typed, or the file's key.
        // (`v` as typed; for the file, as TOML writes it: a string quoted, a number bare.)
        let origin = |name: &str, v: &str, from_flag: bool| {
            if from_flag {
                format!("--{name} {v}")
            } else {
                format!("{} = {v} in [gate] of {}", name.replace('-', "_"), file.origin())
            }
        };
        let pick_s = |name: &str, flag: &Option<String>, file: &Option<String>| match (flag, file) {
            (Some(v), _) => Some((v.clone(), origin(name, v, true))),
            (None, Some(v)) => Some((v.clone(), origin(name, &format!("{v:?}"), false))),
            (None, None) => None,
        };
        let relative = |name: &str, flag: &Option<String>, file: &Option<String>| -> Result<Option<Increase>> {
            pick_s(name, flag, file).map(|(v, at)| parse_increase(&v, false).context(at)).transpose()
        };
        let rate_increase = |name: &str, flag: &Option<String>, file: &Option<String>| -> Result<Option<Increase>> {
            pick_s(name, flag, file).map(|(v, at)| parse_increase(&v, true).context(at)).transpose()
        };
        let rate = |name: &str, flag: &Option<String>, file: &Option<String>| -> Result<Option<f64>> {
            pick_s(name, flag, file).map(|(v, at)| parse_rate(&v).context(at)).transpose()
        };
        let amount = |name: &str, flag: Option<f64>, file: Option<f64>| -> Result<Option<f64>> {
            let (v, at) = match (flag, file) {
                (Some(v), _) => (v, origin(name, &v.to_string(), true)),
                (None, Some(v)) => (v, origin(name, &v.to_string(), false)),
                (None, None) => return Ok(None),
            };
            if !(v.is_finite() && v >= 0.0) {
                bail!("{at}: expected a number of 0 or more");
            }
            Ok(Some(v))
        };
        // 0 used to be read as 1 without a word: a gate that asked for no data at all.
        let min_sessions = match (args.min_sessions, file.min_sessions) {
            (Some(n), _) | (None, Some(n)) if n == 0 => bail!(
                "{}: expected 1 or more (a window with no session is no evidence; --allow-missing \
                 passes on missing data instead)",
                origin("min-sessions", "0", args.min_sessions.is_some())
            ),
            (flag, file) => flag.or(file).unwrap_or(1),
        };
        let mut increase_per = BTreeMap::new();
        let file_dim =
            |dim: &str, table: &str| Dim::parse(dim).with_context(|| format!("[gate.{table}] in {}", file.origin()));
        for (dim, v) in &file.max_increase_per {
            increase_per.insert(
                file_dim(dim, "max_increase_per")?,
                relative_only(v)
                    .with_context(|| origin(&format!("max-increase-per.{dim}"), &format!("{v:?}"), false))?,
            );
        }
        for pair in &args.max_increase_per {
            let (dim, v) = split_pair(pair, "--max-increase-per", "model=10%")?;
            increase_per
                .insert(Dim::parse(dim)?, relative_only(v).with_context(|| format!("--max-increase-per {pair}"))?);
        }
        let mut cost_per = BTreeMap::new();
        for (dim, &v) in &file.max_cost_per {
            cost_per.insert(
                file_dim(dim, "max_cost_per")?,
                amount(&format!("max-cost-per.{dim}"), None, Some(v))?.unwrap_or(v),
            );
        }
        for pair in &args.max_cost_per {
            let (dim, v) = split_pair(pair, "--max-cost-per", "agent=25")?;
            let usd: f64 = v
                .trim()
                .trim_start_matches('$')
                .parse()
                .with_context(|| format!("--max-cost-per {pair}: not a number"))?;
            cost_per.insert(Dim::parse(dim)?, amount("max-cost-per", Some(usd), None)?.unwrap_or(usd));
        }
        let mut policy = Policy {
            total_cost: Limit {
                increase: relative("max-increase", &args.max_increase, &file.max_increase)?,
                max: amount("max-cost", args.max_cost, file.max_cost)?,
            },
            cost_per_session: Limit {
                increase: relative(
                    "max-cost-per-session-increase",
                    &args.max_cost_per_session_increase,
                    &file.max_cost_per_session_increase,
                )?,
                max: amount("max-cost-per-session", args.max_cost_per_session, file.max_cost_per_session)?,
            },
            tokens_per_session: Limit {
                increase: relative(
                    "max-tokens-per-session-increase",
                    &args.max_tokens_per_session_increase,
                    &file.max_tokens_per_session_increase,
                )?,
                max: amount("max-tokens-per-session", args.max_tokens_per_session, file.max_tokens_per_session)?,
            },
            failed_run_rate: Limit {
                increase: rate_increase(
                    "max-failed-run-rate-increase",
                    &args.max_failed_run_rate_increase,
                    &file.max_failed_run_rate_increase,
                )?,
                max: rate("max-failed-run-rate", &args.max_failed_run_rate, &file.max_failed_run_rate)?,
            },
            tool_failure_rate: Limit {
                increase: rate_increase(
                    "max-tool-failure-rate-increase",
                    &args.max_tool_failure_rate_increase,
                    &file.max_tool_failure_rate_increase,
                )?,
                max: rate("max-tool-failure-rate", &args.max_tool_failure_rate, &file.max_tool_failure_rate)?,
            },
            p95_duration: Limit {
                increase: relative(
                    "max-p95-duration-increase",
                    &args.max_p95_duration_increase,
                    &file.max_p95_duration_increase,
                )?,
                max: amount("max-p95-duration", args.max_p95_duration, file.max_p95_duration)?,
            },
            increase_per,
            cost_per,
            session_budget: amount("max-session-cost", args.max_session_cost, file.max_session_cost)?,
            control: args.control.clone().or_else(|| file.control.clone()),
            min_sessions,
            allow_missing: args.allow_missing || file.allow_missing.unwrap_or(false),
            confidence: 0.95,
            by_default: false,
        };
        if policy.control.is_some() && !policy.increase_per.contains_key(&Dim::Variant) {
            bail!("--control compares variants: give their threshold with --max-increase-per variant=PCT");
        }
        if !policy.has_checks() {
            policy.total_cost.increase = Some(Increase::Relative(DEFAULT_MAX_INCREASE));
            policy.by_default = true;
        }
        Ok(policy)
    }

    /// Whether a check compares variants' cost per session (Welch's t needs Σ cost²).
    pub fn needs_variant_spread(&self) -> bool {
        self.increase_per.contains_key(&Dim::Variant)
    }

    fn has_checks(&self) -> bool {
        [
            self.total_cost,
            self.cost_per_session,
            self.tokens_per_session,
            self.failed_run_rate,
            self.tool_failure_rate,
            self.p95_duration,
        ]
        .iter()
        .any(Limit::is_set)
            || !self.increase_per.is_empty()
            || !self.cost_per.is_empty()
            || self.session_budget.is_some()
    }
}

fn split_pair<'a>(pair: &'a str, flag: &str, example: &str) -> Result<(&'a str, &'a str)> {
    match pair.split_once('=') {
        Some((dim, v)) if !v.trim().is_empty() => Ok((dim, v)),
        _ => bail!("{flag} {pair}: expected DIM=VALUE, as in {example}"),
    }
}

fn relative_only(v: &str) -> Result<f64> {
    match parse_increase(v, false)? {
        Increase::Relative(f) => Ok(f),
        Increase::Points(_) => bail!("expected a percentage"),
    }
}

/// `20%` or `20` → 20 % relative; `2pp` → 2 percentage points (rates only).
pub fn parse_increase(v: &str, points_allowed: bool) -> Result<Increase> {
    let v = v.trim();
    let (number, points) = match v.strip_suffix("pp") {
        Some(n) if points_allowed => (n, true),
        Some(_) => bail!("percentage points (pp) apply to rates only: give a percentage such as 20%"),
        None => (v.strip_suffix('%').unwrap_or(v), false),
    };
    let n: f64 = number
        .trim()
        .trim_start_matches('+')
        .parse()
        .with_context(|| format!("{v:?} is not a percentage such as 20%"))?;
    if !(n.is_finite() && n >= 0.0) {
        bail!("{v:?}: expected 0 or more");
    }
    Ok(if points { Increase::Points(n / 100.0) } else { Increase::Relative(n / 100.0) })
}

/// `5%` → 0.05; a bare number is a fraction (`0.05`).
pub fn parse_rate(v: &str) -> Result<f64> {
    let v = v.trim();
    let rate = match v.strip_suffix('%') {
        Some(n) => n.trim().parse::<f64>().map(|n| n / 100.0),
        None => v.parse::<f64>(),
    }
    .with_context(|| format!("{v:?} is not a rate such as 5% or 0.05"))?;
    if !(0.0..=1.0).contains(&rate) {
        bail!("{v:?}: a rate is between 0 and 1 (0 % and 100 %)");
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_threshold_says_whether_the_flag_or_the_file_gave_it() {
        let file = crate::config::FileConfig::parse(
            "[gate]\nmax_increase = \"abc\"\nmax_cost = -1.0\n[gate.max_cost_per]\nmodle = 3.0\n",
            std::path::Path::new("ci.toml"),
        )
        .expect("valid TOML");
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["obsctl", "gate"]).expect("gate parses");
        let crate::cli::Command::Gate(args) = cli.command else { panic!("not the gate") };
        let mut args = *args;
        let err = format!("{:#}", Policy::new(&args, &file.gate).expect_err("bad file values"));
        assert!(err.starts_with("[gate.max_cost_per] in config file ci.toml: unknown dimension \"modle\""), "{err}");
        let mut gate = file.gate;
        gate.max_cost_per.clear();
        let err = format!("{:#}", Policy::new(&args, &gate).expect_err("bad file values"));
        assert!(err.starts_with("max_increase = \"abc\" in [gate] of config file ci.toml:"), "{err}");
        args.max_increase = Some("xyz".into());
        let err = format!("{:#}", Policy::new(&args, &gate).expect_err("bad flag"));
        assert!(err.starts_with("--max-increase xyz:"), "{err}");
        args.max_increase = Some("10%".into());
        let err = format!("{:#}", Policy::new(&args, &gate).expect_err("bad file values"));
        assert!(err.starts_with("max_cost = -1 in [gate] of config file ci.toml:"), "{err}");
        args.max_cost = Some(3.0);
        assert!(Policy::new(&args, &gate).is_ok(), "flags win over the file's bad values");
    }

    #[test]
    fn no_minimum_of_zero_sessions() {
        use clap::Parser as _;
        let gate = |argv: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from([&["obsctl", "gate"], argv].concat()).expect("gate parses");
            let crate::cli::Command::Gate(args) = cli.command else { panic!("not the gate") };
            *args
        };
        let file = crate::config::FileConfig::parse("[gate]\nmin_sessions = 0\n", std::path::Path::new("ci.toml"))
            .expect("valid TOML")
            .gate;
        let none = crate::config::GateFile::default();
        let err = format!("{:#}", Policy::new(&gate(&["--min-sessions", "0"]), &none).expect_err("0 is refused"));
        assert!(err.starts_with("--min-sessions 0: expected 1 or more"), "{err}");
        let err = format!("{:#}", Policy::new(&gate(&[]), &file).expect_err("0 is refused"));
        assert!(err.starts_with("min_sessions = 0 in [gate] of config file ci.toml: expected 1 or more"), "{err}");
        let policy = Policy::new(&gate(&["--min-sessions", "5"]), &file).expect("the flag wins");
        assert_eq!(policy.min_sessions, 5);
        assert_eq!(Policy::new(&gate(&[]), &none).expect("default").min_sessions, 1);
    }

    #[test]
    fn thresholds_read_as_people_write_them() {
        assert_eq!(parse_increase("20%", false).unwrap(), Increase::Relative(0.2));
        assert_eq!(parse_increase("20", false).unwrap(), Increase::Relative(0.2));
        assert_eq!(parse_increase("+5 %", false).unwrap(), Increase::Relative(0.05));
        assert_eq!(parse_increase("2pp", true).unwrap(), Increase::Points(0.02));
        assert!(parse_increase("2pp", false).is_err());
        assert!(parse_increase("-5%", false).is_err());
        assert!(parse_increase("lots", false).is_err());
        assert!(parse_increase("NaN", false).is_err());
        assert_eq!(parse_rate("5%").unwrap(), 0.05);
        assert_eq!(parse_rate("0.05").unwrap(), 0.05);
        assert!(parse_rate("5").is_err());
        assert!(parse_rate("x").is_err());
    }
}
