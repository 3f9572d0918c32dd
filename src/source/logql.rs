//! The LogQL the Loki source sends, and what the labels in its answers mean.
//!
//! Only text is built here, no request is made, so every query can be checked against the
//! requests recorded from a real Loki (`fixtures/loki/`).
//!
//! # Exactly the lines the JSONL source reads
//! Every query starts from one pipeline that keeps the lines the JSONL source would accept
//! (`src/source/jsonl/line.rs`) and drops the ones it would skip:
//!
//! ```logql
//! {job="openclaw-telemetry"} !~ `"(costUsd|estimatedCostUsd|inputTokens|outputTokens)"\s*:\s*"`
//!   | json | __error__=""
//!   | costUsd=~`<number or nothing>` | … | data_delta_output=~`<count or nothing>`
//! ```
//!
//! - `| json` does not drop lines that are not JSON; it marks them with
//!   `__error__="JSONParserErr"`, so `__error__=""` is what drops them.
//! - After `| json` every value is a string (numbers keep their JSON spelling, booleans
//!   become `"true"`/`"false"`, `null` gives no label at all). A number written as a string
//!   (`"costUsd":"12"`) is invisible there, hence the line filter before `| json`; a value
//!   that is not a number (`"n/a"`) or is negative is caught by the regexes. Either would
//!   make the JSONL source skip the line, so they are skipped here too, and counted.
//! - The JSONL source decides a line's shape by `type`, then `eventType`, then `kind`; so
//!   do the shape filters, so a line never counts twice.
//! - Every extracted label is a series label while Loki adds up, so the checked fields are
//!   dropped (`| drop costUsd, …`) once the filters have used them.
//!
//! What Loki cannot see stays different: a line the shipper gave a time although its own
//! timestamp is unreadable, or a string holding invalid UTF-8 (Loki reads it as empty).
//!
//! # Ranges and the half-open window
//! A range `[R]` evaluated at `t` holds the entries with timestamps in `(t − R, t]`. Every
//! query is evaluated at `end − 1 ns` (sent as an integer nanosecond `time`) with
//! `R = end − start`, which holds `(start − 1 ns, end − 1 ns]` — in integer nanoseconds
//! exactly `[start, end)`. `R` is written in whole seconds when it is a whole number of
//! seconds (`[604800s]`), else in nanoseconds (`[302400000000001ns]`).
//!
//! # Grouping
//! Answers are grouped by every spelling of a session, agent and experiment
//! ([`SESSION_LABELS`]) and, for model calls, by model and provider; obsctl then resolves
//! each group exactly as the JSONL source resolves an event (`sessionId` else `sessionKey`,
//! `agentId` else the key's `agent:<id>:…`, prefixed models, provider case) and adds the
//! groups up itself.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::window::{Nanos, NANOS_PER_SEC};

/// A non-negative JSON number, or nothing (the field is absent).
pub const NUMBER_OR_NONE: &str = "((0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?)?";
/// A non-negative JSON integer, or nothing.
pub const COUNT_OR_NONE: &str = "(0|[1-9][0-9]*)?";
/// A shape-B `status` that means success, or no status at all.
pub const SUCCESS_OR_NONE: &str = "(?i)(success|ok)?";
/// A line where a cost or token count is written as a string.
pub const QUOTED_NUMBER: &str = r#""(costUsd|estimatedCostUsd|inputTokens|outputTokens)"\s*:\s*""#;

/// The numeric fields the JSONL source reads on every line, with the values it accepts.
const CHECKED_FIELDS: [(&str, &str); 7] = [
    ("costUsd", NUMBER_OR_NONE),
    ("estimatedCostUsd", NUMBER_OR_NONE),
    ("inputTokens", COUNT_OR_NONE),
    ("outputTokens", COUNT_OR_NONE),
    ("data_costUsd", NUMBER_OR_NONE),
    ("data_delta_input", COUNT_OR_NONE),
    ("data_delta_output", COUNT_OR_NONE),
];

/// Every label that says which session, agent and experiment variant an event belongs to.
pub const SESSION_LABELS: [&str; 8] = [
    "sessionId",
    "sessionKey",
    "agentId",
    "experimentId",
    "experiment_id",
    "experiment",
    "variant",
    "experiment_variant",
];

/// The labels that name a session (`sessionId` wins).
pub const SESSION_ONLY: [&str; 2] = ["sessionId", "sessionKey"];

/// The labels that name an experiment variant: the end of [`SESSION_LABELS`].
pub const EXPERIMENT_LABELS: &[&str] = SESSION_LABELS.split_at(3).1;

/// What an answer of [`LogQl::outcomes`] counts in one series, by the value of its shape's
/// type label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The end of an agent run.
    Run,
    ToolCall,
}

/// The three event shapes of CONTRACT.md §1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// The digest script: `type`, `costUsd`, `sessionId`.
    A,
    /// Telemetry plugin v1: `eventType`, `estimatedCostUsd`, `sessionKey`.
    B,
    /// Telemetry plugin v2: `kind`, nested `data` (`data_costUsd`, `data_delta_input`, …).
    C,
}

/// Where a shape keeps a model call's cost. Shape B falls back to `costUsd` when
/// `estimatedCostUsd` is missing, as the JSONL source does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostField {
    pub field: &'static str,
    /// A label that must be absent for this field to count.
    pub unless: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokens {
    Input,
    Output,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::A, Shape::B, Shape::C];

    /// The field that names the event type.
    pub fn type_field(self) -> &'static str {
        match self {
            Shape::A => "type",
            Shape::B => "eventType",
            Shape::C => "kind",
        }
    }

    /// The stages that keep this shape's events of one type (`type_value`), and no line of
    /// an earlier shape.
    fn only(self, type_value: &str) -> String {
        let this = format!("{}=\"{type_value}\"", self.type_field());
        match self {
            Shape::A => format!("| {this}"),
            Shape::B => format!("| type=\"\" | {this}"),
            Shape::C => format!("| type=\"\" | eventType=\"\" | {this}"),
        }
    }

    fn model_call(self) -> String {
        self.only(match self {
            Shape::A | Shape::B => "model_usage",
            Shape::C => "llm.call",
        })
    }

    /// The type of the end of an agent run.
    fn run_end_type(self) -> &'static str {
        match self {
            Shape::A | Shape::B => "agent_end",
            Shape::C => "run.end",
        }
    }

    /// The types of a tool call: the JSONL source counts both spellings of shape B.
    fn tool_call_types(self) -> &'static [&'static str] {
        match self {
            Shape::A => &["tool_call"],
            Shape::B => &["tool_call", "tool_result"],
            Shape::C => &["tool.end"],
        }
    }

    fn run_end(self) -> String {
        self.only(self.run_end_type())
    }

    /// The stages that keep this shape's run ends and tool calls, and no line of an
    /// earlier shape.
    fn outcomes(self) -> String {
        let field = self.type_field();
        let any: Vec<String> = std::iter::once(self.run_end_type())
            .chain(self.tool_call_types().iter().copied())
            .map(|t| format!("{field}=\"{t}\""))
            .collect();
        let earlier = match self {
            Shape::A => "",
            Shape::B => "| type=\"\" ",
            Shape::C => "| type=\"\" | eventType=\"\" ",
        };
        format!("{earlier}| ({})", any.join(" or "))
    }

    /// The stages that keep this shape's tool calls (every spelling the JSONL source
    /// counts), and no line of an earlier shape.
    fn tool_call(self) -> String {
        let field = self.type_field();
        let any: Vec<String> = self.tool_call_types().iter().map(|t| format!("{field}=\"{t}\"")).collect();
        let earlier = match self {
            Shape::A => "",
            Shape::B => "| type=\"\" ",
            Shape::C => "| type=\"\" | eventType=\"\" ",
        };
        format!("{earlier}| ({})", any.join(" or "))
    }

    /// A failed run or tool call, as the JSONL source decides it.
    fn failed(self) -> String {
        match self {
            Shape::A => "| success=\"false\"".into(),
            Shape::B => format!("| (success=\"false\" or status!~`{SUCCESS_OR_NONE}`)"),
            // An `error` object shows up as its flattened fields.
            Shape::C => "| (data_success=\"false\" or data_isError=\"true\" or error!=\"\" or error_message!=\"\" \
                         or error_code!=\"\")"
                .into(),
        }
    }

    /// The labels naming a model call's model and provider.
    pub fn model_labels(self) -> [&'static str; 2] {
        match self {
            Shape::A | Shape::B => ["model", "provider"],
            Shape::C => ["data_model", "data_provider"],
        }
    }

    pub fn tokens_field(self, which: Tokens) -> &'static str {
        match (self, which) {
            (Shape::A | Shape::B, Tokens::Input) => "inputTokens",
            (Shape::A | Shape::B, Tokens::Output) => "outputTokens",
            (Shape::C, Tokens::Input) => "data_delta_input",
            (Shape::C, Tokens::Output) => "data_delta_output",
        }
    }

    pub fn cost_fields(self) -> &'static [CostField] {
        match self {
            Shape::A => &[CostField { field: "costUsd", unless: None }],
            Shape::B => &[
                CostField { field: "estimatedCostUsd", unless: None },
                CostField { field: "costUsd", unless: Some("estimatedCostUsd") },
            ],
            Shape::C => &[CostField { field: "data_costUsd", unless: None }],
        }
    }

    /// The shape a line with these labels has, by the JSONL source's precedence.
    pub fn of(labels: &BTreeMap<String, String>) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| labels.get(s.type_field()).is_some_and(|v| !v.is_empty()))
    }
}

/// A metric query with a hole for its range: `head` `[R]` `tail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    head: String,
    tail: String,
}

impl Expr {
    pub fn new(head: impl Into<String>, tail: impl Into<String>) -> Expr {
        Expr { head: head.into(), tail: tail.into() }
    }

    /// The query over `[start, end)`, to be evaluated at [`eval_time`]`(end)`.
    pub fn render(&self, start: Nanos, end: Nanos) -> String {
        format!("{}[{}]{}", self.head, range(end - start), self.tail)
    }
}

/// A LogQL duration: whole seconds when exact, else nanoseconds.
pub fn range(ns: Nanos) -> String {
    if ns % NANOS_PER_SEC == 0 {
        format!("{}s", ns / NANOS_PER_SEC)
    } else {
        format!("{ns}ns")
    }
}

/// The `time` of an instant query over a window ending at `end`: one nanosecond before it,
/// as an integer (Loki reads integers as nanoseconds since the epoch).
pub fn eval_time(end: Nanos) -> String {
    (end - 1).to_string()
}

/// Builds every query for one stream selector.
#[derive(Clone, Debug)]
pub struct LogQl {
    selector: String,
}

impl LogQl {
    /// `selector` is a stream selector such as `{job="openclaw-telemetry"}`.
    pub fn new(selector: &str) -> Result<LogQl> {
        let s = selector.trim();
        if !(s.starts_with('{') && s.ends_with('}') && s.len() > 2) {
            bail!("invalid Loki stream selector {s:?}: expected one like {{job=\"openclaw-telemetry\"}}");
        }
        Ok(LogQl { selector: s.to_string() })
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The lines the JSONL source would accept, of any shape or none.
    fn valid(&self) -> String {
        let mut p = format!("{} !~ `{QUOTED_NUMBER}` | json | __error__=\"\"", self.selector);
        for (field, re) in CHECKED_FIELDS {
            p.push_str(&format!(" | {field}=~`{re}`"));
        }
        p
    }

    /// Valid lines of any shape: every event.
    fn events_pipeline(&self) -> String {
        format!("{} | (type!=\"\" or eventType!=\"\" or kind!=\"\")", self.valid())
    }

    /// Valid lines by their type fields: which shapes are there, and how many lines have
    /// none (`{}`), which the JSONL source skips as "not a telemetry event".
    pub fn shapes(&self) -> Expr {
        count_by(&["type", "eventType", "kind"], &self.valid())
    }

    /// Lines that are not JSON.
    pub fn not_json(&self) -> Expr {
        count_by(&[], &format!("{} | json | __error__!=\"\"", self.selector))
    }

    /// JSON lines with a cost or token count written as a string.
    pub fn quoted_numbers(&self) -> Expr {
        count_by(&[], &format!("{} |~ `{QUOTED_NUMBER}` | json | __error__=\"\"", self.selector))
    }

    /// JSON lines with a numeric field that is not a non-negative number.
    pub fn bad_numbers(&self) -> Expr {
        let any_bad: Vec<String> = CHECKED_FIELDS.iter().map(|(f, re)| format!("{f}!~`{re}`")).collect();
        count_by(
            &[],
            &format!("{} !~ `{QUOTED_NUMBER}` | json | __error__=\"\" | ({})", self.selector, any_bad.join(" or ")),
        )
    }

    /// Events of every shape.
    pub fn events(&self, by: &[&str]) -> Expr {
        count_by(by, &self.events_pipeline())
    }

    fn model_calls_pipeline(&self, shape: Shape) -> String {
        format!("{} {}", self.valid(), shape.model_call())
    }

    /// The known cost of a shape's model calls, from one of its cost fields.
    pub fn cost(&self, shape: Shape, cost: CostField, by: &[&str]) -> Expr {
        let unless = cost.unless.map(|u| format!(" | {u}=\"\"")).unwrap_or_default();
        let pipeline = format!("{}{unless}", self.model_calls_pipeline(shape));
        sum_by(by, &pipeline, cost.field)
    }

    pub fn tokens(&self, shape: Shape, which: Tokens, by: &[&str]) -> Expr {
        sum_by(by, &self.model_calls_pipeline(shape), shape.tokens_field(which))
    }

    pub fn model_calls(&self, shape: Shape, by: &[&str]) -> Expr {
        count_by(by, &self.model_calls_pipeline(shape))
    }

    /// Model calls that carry no cost in any of the shape's cost fields.
    pub fn uncosted_calls(&self, shape: Shape, by: &[&str]) -> Expr {
        let none: String = shape.cost_fields().iter().map(|c| format!(" | {}=\"\"", c.field)).collect();
        count_by(by, &format!("{}{none}", self.model_calls_pipeline(shape)))
    }

    pub fn failed_runs(&self, shape: Shape, by: &[&str]) -> Expr {
        count_by(by, &format!("{} {} {}", self.valid(), shape.run_end(), shape.failed()))
    }

    /// Every run end, as [`Self::failed_runs`] counts the failed ones.
    pub fn runs(&self, shape: Shape, by: &[&str]) -> Expr {
        count_by(by, &format!("{} {}", self.valid(), shape.run_end()))
    }

    /// Tool calls (`failed_only`: the failed ones), the lines [`Self::outcomes`] counts as
    /// tool calls, without the type label.
    pub fn tool_calls(&self, shape: Shape, failed_only: bool, by: &[&str]) -> Expr {
        let failed = if failed_only { format!(" {}", shape.failed()) } else { String::new() };
        count_by(by, &format!("{} {}{failed}", self.valid(), shape.tool_call()))
    }

    /// Run ends and tool calls (`failed_only`: the failed ones), grouped by `by` and by the
    /// shape's type label, which tells the two apart ([`outcome_of`]): one request answers
    /// both.
    pub fn outcomes(&self, shape: Shape, failed_only: bool, by: &[&str]) -> Expr {
        let failed = if failed_only { format!(" {}", shape.failed()) } else { String::new() };
        let by: Vec<&str> = by.iter().copied().chain([shape.type_field()]).collect();
        count_by(&by, &format!("{} {}{failed}", self.valid(), shape.outcomes()))
    }
}

fn aggregate(by: &[&str]) -> String {
    if by.is_empty() {
        "sum(".into()
    } else {
        format!("sum by ({}) (", by.join(", "))
    }
}

fn count_by(by: &[&str], pipeline: &str) -> Expr {
    Expr::new(format!("{}count_over_time({pipeline}{} ", aggregate(by), drop_checked(None)), "))")
}

fn sum_by(by: &[&str], pipeline: &str, field: &str) -> Expr {
    let unwrap = format!("{} | unwrap {field} | __error__=\"\"", drop_checked(Some(field)));
    Expr::new(format!("{}sum_over_time({pipeline}{unwrap} ", aggregate(by)), "))")
}

/// `| drop` of the checked fields (but the one to unwrap): every label `| json` extracts
/// is a series label until it is dropped, and a cost or token count differs on almost
/// every line, so without this Loki would keep about one series per line while it sums.
fn drop_checked(keep: Option<&str>) -> String {
    let fields: Vec<&str> = CHECKED_FIELDS.iter().map(|(f, _)| *f).filter(|f| Some(*f) != keep).collect();
    format!(" | drop {}", fields.join(", "))
}

// ---- What a group's labels mean: the JSONL source's rules, applied to labels. ----

fn label<'a>(labels: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    labels.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `sessionId`, else `sessionKey`.
pub fn session_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    label(labels, "sessionId").or_else(|| label(labels, "sessionKey"))
}

/// `agentId`, unless missing or `"unknown"`; then the `<id>` of a session key
/// `agent:<id>:…`; else `"unknown"`.
pub fn agent_of(labels: &BTreeMap<String, String>) -> &str {
    match label(labels, "agentId") {
        Some(a) if a != "unknown" => a,
        _ => label(labels, "sessionKey").and_then(super::jsonl::agent_from_session_key).unwrap_or("unknown"),
    }
}

/// `experimentId` (or `experiment.id`, or a nested `experiment.id`, which `| json` both
/// names `experiment_id`, or a plain `experiment` name) and `variant` (or
/// `experiment_variant`).
pub fn experiment_of(labels: &BTreeMap<String, String>) -> (Option<&str>, Option<&str>) {
    let experiment = label(labels, "experimentId")
        .or_else(|| label(labels, "experiment_id"))
        .or_else(|| label(labels, "experiment"));
    let variant = label(labels, "variant").or_else(|| label(labels, "experiment_variant"));
    (experiment, variant)
}

/// Whether a series of [`LogQl::outcomes`] counts run ends or tool calls.
pub fn outcome_of(labels: &BTreeMap<String, String>) -> Option<Outcome> {
    let shape = Shape::of(labels)?;
    let value = labels.get(shape.type_field())?.as_str();
    if value == shape.run_end_type() {
        Some(Outcome::Run)
    } else {
        shape.tool_call_types().contains(&value).then_some(Outcome::ToolCall)
    }
}

/// Model and provider, normalised as the JSONL source does
/// ([`super::jsonl::normalise_model`]).
pub fn model_of(labels: &BTreeMap<String, String>) -> (String, String) {
    let model = label(labels, "model").or_else(|| label(labels, "data_model"));
    let provider = label(labels, "provider").or_else(|| label(labels, "data_provider"));
    let (model, provider) = super::jsonl::normalise_model(model.map(Cow::Borrowed), provider.map(Cow::Borrowed));
    (model.into_owned(), provider.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ranges_are_exact() {
        assert_eq!(range(604_800 * NANOS_PER_SEC), "604800s");
        assert_eq!(range(302_400 * NANOS_PER_SEC + 1), "302400000000001ns");
        assert_eq!(eval_time(1_795_392_000 * NANOS_PER_SEC), "1795391999999999999");
    }

    #[test]
    fn recorded_split_piece_renders_as_recorded() {
        // fixtures/loki/cases/03b-split-a.json
        let e = Expr::new(
            r#"sum by (sessionId) (sum_over_time({job="openclaw-telemetry"} | json | __error__="" | type="model_usage" | unwrap costUsd | __error__="" "#,
            "))",
        );
        let (start, end) = (1_794_787_200 * NANOS_PER_SEC, 1_795_089_600 * NANOS_PER_SEC);
        assert_eq!(
            e.render(start, end),
            r#"sum by (sessionId) (sum_over_time({job="openclaw-telemetry"} | json | __error__="" | type="model_usage" | unwrap costUsd | __error__="" [302400s]))"#
        );
    }

    #[test]
    fn queries_read() {
        let q = LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap();
        let cost =
            q.cost(Shape::B, Shape::B.cost_fields()[1], &["model", "provider"]).render(0, 86_400 * NANOS_PER_SEC);
        assert!(cost.starts_with(r#"sum by (model, provider) (sum_over_time({job="openclaw-telemetry"} !~ `"#));
        assert!(cost.ends_with(
            r#"| type="" | eventType="model_usage" | estimatedCostUsd="" | drop estimatedCostUsd, inputTokens, outputTokens, data_costUsd, data_delta_input, data_delta_output | unwrap costUsd | __error__="" [86400s]))"#
        ), "{cost}");
        let tools = q.outcomes(Shape::C, true, &[]).render(0, NANOS_PER_SEC);
        assert!(tools.starts_with("sum by (kind) (count_over_time("), "{tools}");
        assert!(
            tools.contains(r#"| type="" | eventType="" | (kind="run.end" or kind="tool.end") | (data_success="false""#),
            "{tools}"
        );
        let tools = q.outcomes(Shape::B, false, EXPERIMENT_LABELS).render(0, NANOS_PER_SEC);
        assert!(
            tools.starts_with(
                "sum by (experimentId, experiment_id, experiment, variant, experiment_variant, eventType) \
                 (count_over_time("
            ),
            "{tools}"
        );
        assert!(
            tools.contains(
                r#"| type="" | (eventType="agent_end" or eventType="tool_call" or eventType="tool_result") | drop "#
            ),
            "{tools}"
        );
        assert!(LogQl::new("job=x").is_err());
        assert!(LogQl::new("{}").is_err());
    }

    #[test]
    fn runs_and_tool_calls_are_the_outcomes_lines() {
        let q = LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap();
        let runs = q.runs(Shape::B, &["variant"]).render(0, 3600 * NANOS_PER_SEC);
        assert!(runs.starts_with("sum by (variant) (count_over_time("), "{runs}");
        assert!(runs.contains(r#"| type="" | eventType="agent_end" | drop "#), "{runs}");
        assert!(runs.ends_with("[3600s]))"), "{runs}");
        let tools = q.tool_calls(Shape::B, true, &[]).render(0, NANOS_PER_SEC);
        assert!(
            tools.contains(
                r#"| type="" | (eventType="tool_call" or eventType="tool_result") | (success="false" or status!~`"#
            ),
            "{tools}"
        );
        let tools = q.tool_calls(Shape::C, false, &[]).render(0, NANOS_PER_SEC);
        assert!(tools.contains(r#"| type="" | eventType="" | (kind="tool.end") | drop "#), "{tools}");
        assert_eq!(
            q.failed_runs(Shape::A, &[]).render(0, NANOS_PER_SEC),
            q.runs(Shape::A, &[])
                .render(0, NANOS_PER_SEC)
                .replace(r#"| type="agent_end""#, r#"| type="agent_end" | success="false""#)
        );
    }

    #[test]
    fn labels_resolve_like_the_jsonl_source() {
        let l = labels(&[("sessionKey", "agent:ops:cron:7d21aa"), ("agentId", "unknown")]);
        assert_eq!((session_of(&l), agent_of(&l)), (Some("agent:ops:cron:7d21aa"), "ops"));
        let l = labels(&[("sessionId", "s1"), ("sessionKey", "agent:ops:x"), ("agentId", "coder")]);
        assert_eq!((session_of(&l), agent_of(&l)), (Some("s1"), "coder"));
        assert_eq!(agent_of(&labels(&[("sessionKey", "agent::x")])), "unknown");
        let m = |pairs: &[(&str, &str)]| model_of(&labels(pairs));
        assert_eq!(m(&[("model", "anthropic/claude-x")]), ("claude-x".into(), "anthropic".into()));
        assert_eq!(m(&[("model", "openai/gpt-5"), ("provider", "OpenAI")]), ("gpt-5".into(), "openai".into()));
        assert_eq!(
            m(&[("data_model", "google/gemini"), ("data_provider", "google")]),
            ("gemini".into(), "google".into())
        );
        assert_eq!(m(&[("model", "/odd")]), ("/odd".into(), "unknown".into()));
        assert_eq!(m(&[]), ("unknown".into(), "unknown".into()));
        let e = labels(&[("experiment_id", "x"), ("experiment_variant", "B")]);
        assert_eq!(experiment_of(&e), (Some("x"), Some("B")));
        assert_eq!(Shape::of(&labels(&[("eventType", "x"), ("kind", "y")])), Some(Shape::B));
        assert_eq!(Shape::of(&labels(&[])), None);
        let o = |pairs: &[(&str, &str)]| outcome_of(&labels(pairs));
        assert_eq!(o(&[("type", "agent_end")]), Some(Outcome::Run));
        assert_eq!(o(&[("eventType", "tool_result"), ("variant", "B")]), Some(Outcome::ToolCall));
        assert_eq!(o(&[("kind", "run.end")]), Some(Outcome::Run));
        assert_eq!(o(&[("kind", "agent_end")]), None);
        assert_eq!(o(&[("variant", "B")]), None);
        assert_eq!(EXPERIMENT_LABELS, &SESSION_LABELS[3..]);
    }
}
