//! The CI gate: a window's digest against a baseline, check by check, into a [`Verdict`].
//!
//! Never talks to a server: `command::gate` asks the sources for digests and hands them
//! here, read through the `obsctl.digest/v1` schema ([`baseline`]). The verdict fails
//! closed: a check that cannot be decided (a figure missing on either side, too few
//! sessions, a relative change from zero) is "insufficient data", exit 3, never a pass —
//! unless the user says `--allow-missing`, and then it is a warning they can see.

pub mod baseline;
mod evaluate;
pub mod policy;
pub mod stats;

pub use evaluate::{evaluate, show, Reference};

use crate::error;

/// What the gate compared with.
#[derive(Clone, Debug)]
pub struct BaselineInfo {
    /// `"file"`, `"legacy"` or `"previous"`.
    pub kind: &'static str,
    /// In words: the file and its window, or the previous window.
    pub description: String,
}

/// The unit of a checked figure, for rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Usd,
    Count,
    /// A fraction, shown as a percentage.
    Rate,
    Seconds,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Usd => "usd",
            Unit::Count => "count",
            Unit::Rate => "rate",
            Unit::Seconds => "seconds",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Past its threshold: a regression.
    Fail,
    /// Not decidable: a figure missing on either side, or too few sessions.
    Insufficient,
    /// A relative threshold over a zero baseline: the change has no percentage.
    Undefined,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Insufficient => "insufficient data",
            Outcome::Undefined => "undefined",
        }
    }

    /// Neither a pass nor a regression.
    pub fn is_undecided(self) -> bool {
        matches!(self, Outcome::Insufficient | Outcome::Undefined)
    }
}

/// A variant check's confidence interval of the difference (current − reference).
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalNote {
    pub low: f64,
    pub high: f64,
    /// The largest increase allowed, in the figure's unit.
    pub margin: f64,
    pub test: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Stable and machine-readable: `total_cost.increase`, `model.cost.increase`.
    pub id: String,
    /// For people: "Total cost".
    pub name: String,
    /// The model, agent, variant or session the check is about.
    pub subject: Option<String>,
    pub unit: Unit,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Relative change from the baseline; `None` when undefined.
    pub change: Option<f64>,
    /// The threshold as the user wrote it: `+20%`, `$50.00`, `+2pp`.
    pub threshold: String,
    pub outcome: Outcome,
    /// Why, when the figures alone do not say it.
    pub detail: Option<String>,
    pub interval: Option<IntervalNote>,
}

impl Check {
    /// A check that could not be decided, with nothing to show but why.
    pub fn insufficient(id: &str, name: &str, threshold: &str, detail: String) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            subject: None,
            unit: Unit::Count,
            baseline: None,
            current: None,
            change: None,
            threshold: threshold.into(),
            outcome: Outcome::Insufficient,
            detail: Some(detail),
            interval: None,
        }
    }
}

/// A group whose cost moved the most.
#[derive(Clone, Debug, PartialEq)]
pub struct Mover {
    /// `model` or `agent`.
    pub dim: &'static str,
    pub name: String,
    pub baseline: f64,
    pub current: f64,
}

/// A session over `--max-session-cost`.
#[derive(Clone, Debug, PartialEq)]
pub struct OverBudget {
    pub session: String,
    pub agent: String,
    pub cost: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Regression,
    Insufficient,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Regression => "regression",
            Status::Insufficient => "insufficient data",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Verdict {
    /// The window gated, in words.
    pub window: String,
    pub window_start: String,
    pub window_end: String,
    pub baseline: BaselineInfo,
    pub checks: Vec<Check>,
    pub movers: Vec<Mover>,
    pub over_budget: Vec<OverBudget>,
    /// Said once, above the checks: what was compared with what.
    pub notes: Vec<String>,
    /// From the digests (skipped lines, fallbacks) and the gate (allowed missing data).
    pub warnings: Vec<String>,
    pub allow_missing: bool,
}

impl Verdict {
    pub fn status(&self) -> Status {
        if self.checks.iter().any(|c| c.outcome == Outcome::Fail) {
            Status::Regression
        } else if !self.allow_missing && self.checks.iter().any(|c| c.outcome.is_undecided()) {
            Status::Insufficient
        } else {
            Status::Pass
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.status() {
            Status::Pass => error::OK,
            Status::Regression => error::FINDING,
            Status::Insufficient => error::UNAVAILABLE,
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// One line: `FAIL: 2 of 9 checks past their threshold`.
    pub fn headline(&self) -> String {
        let total = self.checks.len();
        let undecided = self.checks.iter().filter(|c| c.outcome.is_undecided()).count();
        match self.status() {
            // A regression outranks what could not be decided (exit 1): it is the news to act
            // on either way, and the undecided are counted so that none goes unseen.
            Status::Regression if undecided > 0 => format!(
                "FAIL: {} of {total} checks past their threshold; {undecided} undecided",
                self.count(Outcome::Fail)
            ),
            Status::Regression => {
                format!("FAIL: {} of {total} checks past their threshold", self.count(Outcome::Fail))
            }
            Status::Insufficient => {
                format!("INSUFFICIENT DATA: {undecided} of {total} checks could not be decided (exit 3, not a pass)")
            }
            Status::Pass if undecided > 0 => {
                format!(
                    "PASS: {} of {total} checks passed; {undecided} undecided, allowed by --allow-missing",
                    self.count(Outcome::Pass)
                )
            }
            Status::Pass => format!("PASS: all {total} checks within their thresholds"),
        }
    }
}
