//! The LogQL the Loki source sends, and what the labels in its answers mean.
//!
//! Only text is built here, no request is made, so every query can be checked against the
//! requests recorded from a real Loki (`fixtures/loki/`).
//!
//! # Exactly the lines the JSONL source reads
//! Every query keeps the lines the JSONL source would accept (`src/source/jsonl/line.rs`):
//! `| json | __error__=""` drops the lines that are not JSON (`| json` marks them with
//! `__error__="JSONParserErr"`, it does not drop them), and the shape filters follow the
//! JSONL source's precedence (`type`, then `eventType`, then `kind`), so a line never
//! counts twice. Lines the JSONL source skips for a bad number — a cost or token count
//! written as a string (`"costUsd":"12"`: after `| json` every value is a string, so only a
//! line filter sees the quotes), negative, or not a number — are first counted by
//! [`LogQl::survey`]; only when a window holds some do the queries carry the filters that
//! drop them ([`Checks::On`]: `!~` on the line and a regex per numeric field). Without such
//! lines those filters would drop nothing, and they cost a third of a scan.
//!
//! # Cheap scans
//! - A line filter before the parser where a query reads one kind of event
//!   (`|~ "model_usage|llm\.call|\\u"`; the `\u` keeps lines whose text hides the type
//!   behind a JSON escape, which the parser then judges exactly).
//! - One query per measure, grouped by every dimension at once, answered with a few
//!   hundred series at most (else one per dimension, [`Expr::apart`]); such queries are
//!   wrapped so that Loki's frontend does not cut them into one sub-query per split
//!   interval ([`Expr::unsplit`]): on a Loki that splits by 1 h, a week is otherwise 168
//!   sub-queries whose overhead costs 3–5× the scan itself.
//! - Distinct counts of sessions (in all, per agent and variant) are asked whole, in a form
//!   Loki neither splits nor shards (`distinct`): one scan whatever the number of
//!   sessions. Sums per session (the top N, Σ cost²) are left to Loki's time splitting,
//!   which keeps each sub-query under `max_query_series` while one split interval holds
//!   fewer than 500 sessions. Beyond, they are asked per class of sessions ([`Class`]).
//!
//! # Normalised in the query
//! A session is `sessionId`, else `sessionKey`; an agent `agentId` unless missing or
//! `"unknown"`, else the `<id>` of an `agent:<id>:…` session key; an experiment
//! `experimentId`, else `experiment.id`, else a plain `experiment`; a variant `variant`,
//! else `experiment.variant` — the JSONL source's rules. Queries over sessions resolve them
//! on the vector, with `label_replace` (per series, not per line, so it costs nothing),
//! into the `obsctl_*` labels. Per-line queries that need an agent while some lines lack
//! an `agentId` compute it with `label_format` ([`AGENT_TEMPLATE`], the only template:
//! templates cost about 3 µs a line). Models, providers and experiments are grouped by
//! their raw labels and resolved by obsctl ([`model_of`], [`experiment_of`]).
//!
//! # Ranges and the half-open window
//! A range `[R]` evaluated at `t` holds the entries with timestamps in `(t − R, t]`. Every
//! query is evaluated at `end − 1 ns` (sent as an integer nanosecond `time`) with
//! `R = end − start`, which holds `(start − 1 ns, end − 1 ns]` — in integer nanoseconds
//! exactly `[start, end)`. LogQL durations have no `ns` (nor `us`) unit: `R` is written in
//! the largest unit that is exact (`[7d]`, `[1500ms]`), so a window must start and end on
//! whole milliseconds ([`range`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::window::Nanos;

/// A non-negative JSON number, or nothing (the field is absent).
pub const NUMBER_OR_NONE: &str = "((0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?)?";
/// A non-negative JSON integer, or nothing.
pub const COUNT_OR_NONE: &str = "(0|[1-9][0-9]*)?";
/// A shape-B `status` that means success, or no status at all.
pub const SUCCESS_OR_NONE: &str = "(?i)(success|ok)?";
/// A line where a cost or token count is written as a string.
pub const QUOTED_NUMBER: &str = r#""(costUsd|estimatedCostUsd|inputTokens|outputTokens)"\s*:\s*""#;
/// A line that may hold a numeric field (a superset: the parser decides). Line filters
/// that are alternations of literals run as substring searches; any other regex runs Go's
/// engine on every line, which costs more than the scan (0.84 s a week at 20,000 sessions
/// for [`QUOTED_NUMBER`] against 0.19 s for a literal filter).
const NUMERIC_LINES: &str = r#""costUsd"|"estimatedCostUsd"|"inputTokens"|"outputTokens"|"data"|\\u"#;
/// Every way a JSON text can hold `…Usd"` or `…Tokens"` followed by a quote after the
/// colon: nothing, or a space, tab, CR or LF on either side of it first. Literals, so
/// that [`QUOTED_NUMBER`] itself only runs on the (rare) lines that pass them.
const QUOTED_CANDIDATES: &str = r#"Usd":"|Tokens":"|Usd": |Tokens": |Usd":\t|Tokens":\t|Usd":\r|Tokens":\r|Usd":\n|Tokens":\n|Usd" |Tokens" |Usd"\t|Tokens"\t|Usd"\r|Tokens"\r|Usd"\n|Tokens"\n|\\u"#;
/// A line that may be a model call.
const MODEL_LINES: &str = r"model_usage|llm\.call|\\u";
/// A line that may be a run end or a tool call.
const OUTCOME_LINES: &str = r"agent_end|tool_call|tool_result|run\.end|tool\.end|\\u";

/// The numeric fields the JSONL source reads on every line, with the values it accepts.
pub const CHECKED_FIELDS: [(&str, &str); 7] = [
    ("costUsd", NUMBER_OR_NONE),
    ("estimatedCostUsd", NUMBER_OR_NONE),
    ("inputTokens", COUNT_OR_NONE),
    ("outputTokens", COUNT_OR_NONE),
    ("data_costUsd", NUMBER_OR_NONE),
    ("data_delta_input", COUNT_OR_NONE),
    ("data_delta_output", COUNT_OR_NONE),
];

/// The token counts of every shape's model calls.
pub const TOKEN_FIELDS: [&str; 4] = ["inputTokens", "outputTokens", "data_delta_input", "data_delta_output"];

/// The fields naming an event's type, one per shape.
const TYPE_LABELS: [&str; 3] = ["type", "eventType", "kind"];
/// A label filter keeping telemetry events (lines with a type field).
const EVENT: &str = r#"(type!="" or eventType!="" or kind!="")"#;
/// The labels naming a model call's model and provider, every shape's.
const MODEL_LABELS: [&str; 4] = ["model", "provider", "data_model", "data_provider"];

/// The raw labels that name an experiment and a variant, in the JSONL source's order of
/// preference: `experimentId`, `experiment.id` (flat or nested, both `experiment_id`
/// after `| json`), a plain `experiment`; `variant`, `experiment.variant`.
pub const EXPERIMENT_LABELS: [&str; 5] =
    ["experimentId", "experiment_id", "experiment", "variant", "experiment_variant"];

/// The labels the session queries resolve into.
pub const SESSION: &str = "obsctl_session";
pub const AGENT: &str = "obsctl_agent";
pub const EXPERIMENT: &str = "obsctl_experiment";
pub const VARIANT: &str = "obsctl_variant";
/// Tags the parts of a query joined by `or`, which would otherwise drop a series of the
/// right side whose labels equal one of the left.
pub const PART: &str = "obsctl_part";
/// Tags each query of a measure asked apart, one per dimension ([`Expr::apart`]): `base`
/// (the lines by type), `types` (the same, with the model calls and outcomes of a window
/// asked without dimensions), `model`, `agent` or `variant`.
pub const BY: &str = "obsctl_by";

/// `agentId` unless missing or `"unknown"`, else the `<id>` of an `agent:<id>:…` session
/// key, else `"unknown"`: `resolve_agent` of the JSONL source, as a Go template.
pub const AGENT_TEMPLATE: &str = r#"{{ if and .agentId (ne .agentId "unknown") }}{{ .agentId }}{{ else if hasPrefix "agent:" .sessionKey }}{{ $a := regexReplaceAll "^agent:([^:]*)(?s:.*)$" .sessionKey "${1}" }}{{ if $a }}{{ $a }}{{ else }}unknown{{ end }}{{ else }}unknown{{ end }}"#;

/// Any value but `"unknown"`, for `label_replace` (RE2 has no negative look-ahead).
const NOT_UNKNOWN: &str =
    "(.{8,}|[^u].*|u([^n].*)?|un([^k].*)?|unk([^n].*)?|unkn([^o].*)?|unkno([^w].*)?|unknow([^n].*)?)";

/// `bottomk` with more series than any answer can have: the identity, in a form Loki's
/// frontend does not split by time (`isSplittableByRange` in Loki 3.4's rangemapper.go).
pub const UNSPLIT_K: usize = 1_000_000;

/// Stand-ins for the range and the session class, filled in by [`Expr::render`].
const RANGE: &str = "\u{1}R\u{1}";
const CLASS: &str = "\u{1}C\u{1}";
/// A value of 1 on every line, for [`distinct`]'s `stdvar_over_time`.
const ONE: &str = " | label_format obsctl_one=\"1\" | unwrap obsctl_one | __error__=\"\"";

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokens {
    Input,
    Output,
}

/// What a model call's leg sums: its cost or a token count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Cost,
    Tokens(Tokens),
}

/// One way a shape records a model call's value: the field, and a label that must be
/// absent for it to count (shape B's `costUsd` counts only without `estimatedCostUsd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg {
    pub shape: Shape,
    pub field: &'static str,
    pub unless: Option<&'static str>,
}

/// What an event is, as the JSONL source classifies it (`EventKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ModelCall,
    ToolCall,
    RunEnd,
    Other,
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

    /// A label filter expression: this shape's type is one of `types`, and no earlier
    /// shape's type field is set.
    fn is(self, types: &[&str]) -> String {
        let any: Vec<String> = types.iter().map(|t| format!("{}=\"{t}\"", self.type_field())).collect();
        let any = if any.len() == 1 { any[0].clone() } else { format!("({})", any.join(" or ")) };
        match self {
            Shape::A => any,
            Shape::B => format!("type=\"\" and {any}"),
            Shape::C => format!("type=\"\" and eventType=\"\" and {any}"),
        }
    }

    fn model_call_type(self) -> &'static str {
        match self {
            Shape::A | Shape::B => "model_usage",
            Shape::C => "llm.call",
        }
    }

    fn run_end_type(self) -> &'static str {
        match self {
            Shape::A | Shape::B => "agent_end",
            Shape::C => "run.end",
        }
    }

    /// The JSONL source counts both spellings of shape B.
    fn tool_call_types(self) -> &'static [&'static str] {
        match self {
            Shape::A => &["tool_call"],
            Shape::B => &["tool_call", "tool_result"],
            Shape::C => &["tool.end"],
        }
    }

    /// A failed run or tool call, as the JSONL source decides it.
    fn failed(self) -> String {
        match self {
            Shape::A => "success=\"false\"".into(),
            Shape::B => format!("(success=\"false\" or status!~`{SUCCESS_OR_NONE}`)"),
            // An `error` object shows up as its flattened fields.
            Shape::C => "(data_success=\"false\" or data_isError=\"true\" or error!=\"\" or error_message!=\"\" \
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

    /// Where this shape keeps a model call's cost or token count.
    pub fn legs(self, value: Value) -> &'static [Leg] {
        const fn leg(shape: Shape, field: &'static str) -> Leg {
            Leg { shape, field, unless: None }
        }
        const A_COST: [Leg; 1] = [leg(Shape::A, "costUsd")];
        const B_COST: [Leg; 2] = [
            leg(Shape::B, "estimatedCostUsd"),
            Leg { shape: Shape::B, field: "costUsd", unless: Some("estimatedCostUsd") },
        ];
        const C_COST: [Leg; 1] = [leg(Shape::C, "data_costUsd")];
        const A_IN: [Leg; 1] = [leg(Shape::A, "inputTokens")];
        const A_OUT: [Leg; 1] = [leg(Shape::A, "outputTokens")];
        const B_IN: [Leg; 1] = [leg(Shape::B, "inputTokens")];
        const B_OUT: [Leg; 1] = [leg(Shape::B, "outputTokens")];
        const C_IN: [Leg; 1] = [leg(Shape::C, "data_delta_input")];
        const C_OUT: [Leg; 1] = [leg(Shape::C, "data_delta_output")];
        match (self, value) {
            (Shape::A, Value::Cost) => &A_COST,
            (Shape::B, Value::Cost) => &B_COST,
            (Shape::C, Value::Cost) => &C_COST,
            (Shape::A, Value::Tokens(Tokens::Input)) => &A_IN,
            (Shape::A, Value::Tokens(Tokens::Output)) => &A_OUT,
            (Shape::B, Value::Tokens(Tokens::Input)) => &B_IN,
            (Shape::B, Value::Tokens(Tokens::Output)) => &B_OUT,
            (Shape::C, Value::Tokens(Tokens::Input)) => &C_IN,
            (Shape::C, Value::Tokens(Tokens::Output)) => &C_OUT,
        }
    }

    /// Model calls that carry no cost in any of the shape's cost fields.
    fn uncosted(self) -> String {
        let none: Vec<String> = self.legs(Value::Cost).iter().map(|l| format!(" and {}=\"\"", l.field)).collect();
        format!("{}{}", self.is(&[self.model_call_type()]), none.concat())
    }

    /// The shape a line with these labels has, by the JSONL source's precedence.
    pub fn of(labels: &BTreeMap<String, String>) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| labels.get(s.type_field()).is_some_and(|v| !v.is_empty()))
    }

    /// What the event of a series with these labels is.
    pub fn kind_of(labels: &BTreeMap<String, String>) -> Option<(Shape, Kind)> {
        let shape = Shape::of(labels)?;
        let t = labels.get(shape.type_field())?.as_str();
        let kind = if t == shape.model_call_type() {
            Kind::ModelCall
        } else if t == shape.run_end_type() {
            Kind::RunEnd
        } else if shape.tool_call_types().contains(&t) {
            Kind::ToolCall
        } else {
            Kind::Other
        };
        Some((shape, kind))
    }
}

/// Whether the queries carry the filters that drop lines with a bad number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    Off,
    On,
}

/// How a per-line query names the agent: by `agentId` (every line of the window has a
/// usable one) or by [`AGENT_TEMPLATE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentBy {
    Id,
    Template,
}

impl AgentBy {
    pub fn label(self) -> &'static str {
        match self {
            AgentBy::Id => "agentId",
            AgentBy::Template => AGENT,
        }
    }
}

/// One of `of` disjoint classes of sessions (`of` a power of two, at most [`Class::MAX`]),
/// by the last two characters of the session's name: each character counts for its hex
/// digit value when it is one (`0-9a-fA-F`), else for its code modulo 16 (any character
/// beyond ASCII for 0). The class of a session is `(last + 16 · second-to-last) mod of`
/// (a missing second-to-last character counts 0). Random and hex ids spread evenly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Class {
    pub index: u32,
    pub of: u32,
}

impl Class {
    pub const ALL: Class = Class { index: 0, of: 1 };
    pub const MAX: u32 = 256;

    /// The classes that split this one in two.
    pub fn halves(self) -> Option<[Class; 2]> {
        let of = self.of * 2;
        (of <= Class::MAX).then_some([Class { index: self.index, of }, Class { index: self.index + self.of, of }])
    }

    /// A regex matching exactly the session names of this class (anchored, as Loki's label
    /// matchers are).
    pub fn regex(self) -> String {
        let low = self.of.min(16);
        let last = nibble_set(self.index % 16 % low, low);
        if self.of <= 16 {
            return format!("(?s).*{last}");
        }
        let high = self.of / 16;
        let second = self.index / 16 % high;
        let before = nibble_set(second, high);
        if second == 0 {
            format!("(?s)(?:.*{before})?{last}")
        } else {
            format!("(?s).*{before}{last}")
        }
    }

    /// The label filter that keeps the lines of this class's sessions (empty for all).
    fn filter(self) -> String {
        if self.of <= 1 {
            return String::new();
        }
        let re = self.regex();
        format!(" | (sessionId=~`{re}` or (sessionId=\"\" and sessionKey=~`{re}`))")
    }

    /// The class of a session name, as [`Class::regex`] decides it (for tests).
    pub fn of_session(name: &str, of: u32) -> u32 {
        let mut chars = name.chars().rev();
        let last = chars.next().map_or(0, nibble);
        let second = chars.next().map_or(0, nibble);
        (last + 16 * second) % of
    }
}

/// A character's value for [`Class`].
fn nibble(c: char) -> u32 {
    match c {
        '0'..='9' => c as u32 - '0' as u32,
        'a'..='f' => c as u32 - 'a' as u32 + 10,
        'A'..='F' => c as u32 - 'A' as u32 + 10,
        c if c.is_ascii() => c as u32 % 16,
        _ => 0,
    }
}

/// A regex character class of the characters whose nibble is `r` modulo `m`.
fn nibble_set(r: u32, m: u32) -> String {
    let mut set = String::from("[");
    for b in 0u8..=0x7f {
        if nibble(b as char) % m == r {
            set.push_str(&format!("\\x{{{b:02x}}}"));
        }
    }
    if r == 0 {
        set.push_str("\\x{80}-\\x{10ffff}");
    }
    set.push(']');
    set
}

/// A metric query with holes for its range (and, for queries over sessions, its class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    text: String,
    /// The same answer in a form Loki's frontend splits by time (and obsctl by classes of
    /// sessions), for a server that cannot answer this one whole.
    split: Option<Box<Expr>>,
    /// The same figures as one query per dimension (the lines by type, by model, by agent,
    /// by variant), each tagged with [`BY`], for a window with more combinations of them
    /// than Loki's series limit: the digest shows each dimension on its own, never their
    /// combinations.
    apart: Vec<Expr>,
}

impl Expr {
    fn new(text: String) -> Expr {
        Expr { text, split: None, apart: Vec::new() }
    }

    /// A query `head[R]tail` over one range (for tests and one-off queries).
    pub fn with_range(head: &str, tail: &str) -> Expr {
        Expr::new(format!("{head}{RANGE}{tail}"))
    }

    /// The query over `[start, end)`, to be evaluated at [`eval_time`]`(end)`, for one
    /// class of sessions. `None` when the span is not a whole number of milliseconds.
    pub fn render(&self, start: Nanos, end: Nanos, class: Class) -> Option<String> {
        let range = range(end - start)?;
        Some(self.text.replace(RANGE, &format!("[{range}]")).replace(CLASS, &class.filter()))
    }

    /// Whether the query is over sessions and asked per class when Loki refuses it whole.
    pub fn by_session(&self) -> bool {
        self.text.contains(CLASS)
    }

    /// Whether the answer counts distinct sessions, so that it may be asked in this form
    /// or its [`Expr::split`] one, but never cut in time: the queries asked whole whose
    /// fallback is asked per class of sessions.
    pub fn is_distinct(&self) -> bool {
        !self.by_session() && self.split.as_deref().is_some_and(Expr::by_session)
    }

    /// The same answer, asked so that Loki's frontend does not split it by time: for
    /// queries whose answer, and every intermediate vector, is a few hundred series.
    pub fn unsplit(self) -> Expr {
        Expr { text: format!("bottomk({UNSPLIT_K}, {})", self.text), split: Some(Box::new(self)), apart: Vec::new() }
    }

    /// The queries to ask instead when Loki refuses this one for the series limit: one per
    /// dimension, each tagged with [`BY`] (empty for a query grouped by one dimension).
    pub fn apart(&self) -> &[Expr] {
        &self.apart
    }

    /// This query, with `parts` (named by the dimension they group by) to ask apart.
    fn with_apart(mut self, parts: Vec<(&str, Expr)>) -> Expr {
        let parts: Vec<Expr> = parts.into_iter().map(|(name, e)| e.labelled(BY, name)).collect();
        if let Some(split) = self.split.as_deref_mut() {
            // A server error sends the query to its split form, which the limit may refuse
            // in turn: the parts' split forms then.
            split.apart = parts.iter().map(|p| p.split().unwrap_or_else(|| p.clone())).collect();
        }
        self.apart = parts;
        self
    }

    /// The form Loki's frontend splits, for a server that cannot answer this one whole (a
    /// timeout, or the series limit for a distinct count).
    pub fn split(&self) -> Option<Expr> {
        self.split.as_deref().cloned()
    }

    /// Every series of the answer (of this form and its split one) with `label="value"`.
    fn labelled(self, label: &str, value: &str) -> Expr {
        let text = format!("label_replace({}, \"{label}\", \"{value}\", \"\", \"\")", self.text);
        let split = self.split.map(|s| Box::new(s.labelled(label, value)));
        Expr { text, split, apart: Vec::new() }
    }

    /// Several queries in one answer, each series tagged with its part's name.
    fn union(parts: Vec<(String, Expr)>) -> Expr {
        let tagged: Vec<String> = parts.into_iter().map(|(name, e)| e.labelled(PART, &name).text).collect();
        Expr::new(tagged.join(" or "))
    }
}

/// A LogQL duration for `ns`: whole seconds when exact (`[604800s]`, as the recorded
/// cases), else whole milliseconds (`[2362500ms]`); `None` below a millisecond, which LogQL
/// cannot write (it has no `us` or `ns`).
pub fn range(ns: Nanos) -> Option<String> {
    match ns {
        n if n <= 0 => None,
        n if n % 1_000_000_000 == 0 => Some(format!("{}s", n / 1_000_000_000)),
        n if n % 1_000_000 == 0 => Some(format!("{}ms", n / 1_000_000)),
        _ => None,
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
    /// The `--agent`, `--model`, `--experiment` label filters, after `| json`.
    filters: String,
}

impl LogQl {
    /// `selector` is a stream selector such as `{job="openclaw-telemetry"}`.
    pub fn new(selector: &str) -> Result<LogQl> {
        let s = selector.trim();
        if !(s.starts_with('{') && s.ends_with('}') && s.len() > 2) || s.chars().any(char::is_control) {
            bail!("invalid Loki stream selector {s:?}: expected one like {{job=\"openclaw-telemetry\"}}");
        }
        Ok(LogQl { selector: s.to_string(), filters: String::new() })
    }

    /// Only the events the filters keep, in every query.
    pub fn with_filters(mut self, filters: &super::filter::Filters) -> LogQl {
        self.filters = filters.logql_stage();
        self
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// Whether `--agent`, `--model` or `--experiment` narrow the queries.
    pub fn is_filtered(&self) -> bool {
        !self.filters.is_empty()
    }

    /// Every line of the stream, parsed or not, filters or not. One request.
    pub fn lines(&self) -> Expr {
        count_by(&[], &self.selector, None).unsplit()
    }

    /// The selector, a line filter, the parser and the filters that keep valid JSON lines
    /// (and, with checks, only lines whose numbers the JSONL source accepts).
    fn parsed(&self, line_filter: Option<&str>, checks: Checks) -> String {
        self.pipeline(line_filter, checks, true)
    }

    /// [`LogQl::parsed`], but with `valid_only` false also the lines that are not JSON
    /// (marked `__error__`), which the line counts count.
    fn pipeline(&self, line_filter: Option<&str>, checks: Checks, valid_only: bool) -> String {
        let mut p = self.selector.clone();
        if let Some(f) = line_filter {
            p.push_str(&format!(" |~ `{f}`"));
        }
        if checks == Checks::On {
            p.push_str(&format!(" !~ `{QUOTED_NUMBER}`"));
        }
        p.push_str(if valid_only { " | json | __error__=\"\"" } else { " | json" });
        if checks == Checks::On {
            for (field, re) in CHECKED_FIELDS {
                p.push_str(&format!(" | {field}=~`{re}`"));
            }
        }
        p.push_str(&self.filters);
        p
    }

    /// Lines the JSONL source skips for a number: written as a string (`quoted`), or not a
    /// non-negative number (`bad`; with `exclusive`, only those that are not also
    /// `quoted`), in `[start, end)` of the rendered range. One request.
    pub fn survey(&self, exclusive: bool) -> Expr {
        let quoted = format!("{} |~ `{QUOTED_CANDIDATES}` |~ `{QUOTED_NUMBER}`", self.selector);
        let any_bad: Vec<String> = CHECKED_FIELDS.iter().map(|(f, re)| format!("{f}!~`{re}`")).collect();
        let not_quoted = if exclusive { format!(" !~ `{QUOTED_NUMBER}`") } else { String::new() };
        let bad = format!(
            "{} |~ `{NUMERIC_LINES}`{not_quoted} | json | __error__=\"\" | ({})",
            self.selector,
            any_bad.join(" or ")
        );
        let parts = vec![("quoted".into(), count_by(&[], &quoted, None)), ("bad".into(), count_by(&[], &bad, None))];
        Expr::union(parts).unsplit()
    }

    /// Every line by parse error (`JSONParserErr`: not JSON), type fields (none: not a
    /// telemetry event, which the JSONL source skips too) and `agentId`, and with `dims` by
    /// model and experiment labels: events, model calls per model, runs and tool calls per
    /// variant. Apart: the lines by type, the events by agent, the model calls by model
    /// (only those lines), the events by variant.
    pub fn counts(&self, checks: Checks, dims: bool) -> Expr {
        let all_lines = self.pipeline(None, checks, false);
        let count = |by: &[&str], p: &str| count_by(by, p, Some("")).unsplit();
        let types = [&["__error__"][..], &TYPE_LABELS].concat();
        let with = |extra: &[&'static str]| [&types[..], extra].concat();
        // `agentId` either way: a window's cost is grouped by agent (the previous one's for
        // the top movers), which needs to know whether every line names its agent.
        let by = if dims {
            with(&[&["agentId"][..], &MODEL_LABELS, &EXPERIMENT_LABELS].concat())
        } else {
            with(&["agentId"])
        };
        let events = format!("{} | {EVENT}", self.parsed(None, checks));
        // Without dims, the lines by type hold the model calls and outcomes too (`types`).
        let first = if dims { "base" } else { "types" };
        let mut parts = vec![(first, count(&types, &all_lines)), ("agent", count(&["agentId"], &events))];
        if dims {
            parts.push(("model", count(&with(&MODEL_LABELS), &self.pipeline(Some(MODEL_LINES), checks, false))));
            parts.push(("variant", count(&with(&EXPERIMENT_LABELS), &all_lines)));
        }
        count(&by, &all_lines).with_apart(parts)
    }

    /// Failed run ends and tool calls, by type fields and, with `agent`, by agent and
    /// experiment labels (apart: by agent, by experiment).
    pub fn failed(&self, checks: Checks, agent: Option<AgentBy>) -> Expr {
        let any: Vec<String> = Shape::ALL
            .iter()
            .map(|&s| {
                let mut types = vec![s.run_end_type()];
                types.extend(s.tool_call_types());
                format!("({} and {})", s.is(&types), s.failed())
            })
            .collect();
        let p = |agent| {
            format!("{} | {}{}", self.parsed(Some(OUTCOME_LINES), checks), any.join(" or "), agent_format(agent))
        };
        by_type(p, false, agent)
    }

    /// Model calls without a cost, by model labels and, with `agent`, by agent and
    /// experiment labels (apart: by model, by agent, by experiment).
    pub fn uncosted(&self, checks: Checks, agent: Option<AgentBy>) -> Expr {
        let any: Vec<String> = Shape::ALL.iter().map(|s| format!("({})", s.uncosted())).collect();
        let p =
            |agent| format!("{} | {}{}", self.parsed(Some(MODEL_LINES), checks), any.join(" or "), agent_format(agent));
        by_type(p, true, agent)
    }

    /// The model calls of one leg with their value summed, by `by` (and the agent's
    /// template where `agent` says so).
    fn leg(&self, leg: Leg, checks: Checks, by: &[&str], agent: Option<AgentBy>) -> Expr {
        sum_by(by, &self.leg_pipeline(leg, checks, agent), leg.field)
    }

    /// Every leg of `value` for the shapes present, in one request (the parts tagged apart):
    /// a fixed number of requests whatever the mix of shapes. Cost by model, agent and
    /// experiment labels (`agent` given; apart: by each), tokens by model (`by_model`), or
    /// a plain sum.
    pub fn legs(&self, value: Value, shapes: &[Shape], checks: Checks, by_model: bool, agent: Option<AgentBy>) -> Expr {
        let union = |by: &dyn Fn(Leg) -> Vec<&'static str>, agent: Option<AgentBy>| {
            let parts: Vec<(String, Expr)> = shapes
                .iter()
                .flat_map(|s| s.legs(value))
                .enumerate()
                .map(|(i, &leg)| (format!("l{i}"), self.leg(leg, checks, &by(leg), agent)))
                .collect();
            Expr::union(parts).unsplit()
        };
        // The type field tells obsctl which labels name the model ([`model_of`]).
        let model = |leg: Leg| {
            if by_model {
                [&[leg.shape.type_field()][..], &leg.shape.model_labels()].concat()
            } else {
                Vec::new()
            }
        };
        let joint = union(&|leg| grouping(&model(leg), agent), agent);
        match agent {
            Some(a) if by_model => joint.with_apart(vec![
                ("model", union(&model, None)),
                ("agent", union(&|_| vec![a.label()], agent)),
                ("variant", union(&|_| EXPERIMENT_LABELS.to_vec(), None)),
            ]),
            _ => joint,
        }
    }

    fn leg_pipeline(&self, leg: Leg, checks: Checks, agent: Option<AgentBy>) -> String {
        let unless = leg.unless.map(|u| format!(" and {u}=\"\"")).unwrap_or_default();
        format!(
            "{} | {}{unless}{}",
            self.parsed(Some(MODEL_LINES), checks),
            leg.shape.is(&[leg.shape.model_call_type()]),
            agent_format(agent)
        )
    }

    // ---- For `obsctl rules`: one expression a ruler evaluates, so no survey first ----

    /// The known cost of one leg's model calls, by `by`, with the filters that drop the
    /// lines the JSONL source skips.
    pub fn rule_cost(&self, leg: Leg, by: &[&str]) -> Expr {
        sum_by(by, &self.leg_pipeline(leg, Checks::On, None), leg.field)
    }

    /// One shape's run ends (`tools`: tool calls), the failed ones with `failed_only`, by
    /// `by`, counted as the JSONL source counts them.
    pub fn rule_outcomes(&self, shape: Shape, tools: bool, failed_only: bool, by: &[&str]) -> Expr {
        let types: Vec<&str> = if tools { shape.tool_call_types().to_vec() } else { vec![shape.run_end_type()] };
        let failed = if failed_only { format!(" and {}", shape.failed()) } else { String::new() };
        let p = format!("{} | {}{failed}", self.parsed(Some(OUTCOME_LINES), Checks::On), shape.is(&types));
        count_by(by, &p, Some(""))
    }

    // ---- Queries over sessions ----
    //
    // Distinct counts are asked whole (`distinct`): one request, one scan, whatever the
    // number of sessions. Sums per session (the top, the spread) are left to Loki's time
    // splitting and asked per class of sessions when refused.

    /// Valid events of a session (of the rendered class, with `classed`).
    fn session_events(&self, checks: Checks, classed: bool) -> String {
        let class = if classed { CLASS } else { "" };
        format!("{} | {EVENT} | (sessionId!=\"\" or sessionKey!=\"\"){class}", self.parsed(None, checks))
    }

    /// A distinct count over the sessions' events, by session alone or (`dims`) with their
    /// agents, experiments and variants: `outer` wraps the normalised vector, asked whole,
    /// with the form Loki splits (per class) to fall back on.
    fn distinct_sessions(&self, checks: Checks, dims: bool, outer: impl Fn(String) -> String) -> Expr {
        let mut raw = vec!["sessionId", "sessionKey"];
        if dims {
            raw.push("agentId");
            raw.extend(EXPERIMENT_LABELS);
        }
        let normalise = |inner: String| {
            let e = normalise_session(inner);
            if dims {
                normalise_dims(e)
            } else {
                e
            }
        };
        let whole = outer(normalise(distinct(&raw, &self.session_events(checks, false))));
        let split = outer(normalise(count_by(&raw, &self.session_events(checks, true), None).text));
        Expr { text: whole, split: Some(Box::new(Expr::new(split))), apart: Vec::new() }
    }

    /// The number of distinct sessions.
    pub fn session_count(&self, checks: Checks) -> Expr {
        self.distinct_sessions(checks, false, |e| format!("count(sum by ({SESSION}) ({e}))"))
    }

    /// Distinct sessions per agent, experiment and variant (a session seen under several
    /// counts under each).
    pub fn session_tuples(&self, checks: Checks) -> Expr {
        let dims = [SESSION, AGENT, EXPERIMENT, VARIANT].join(", ");
        self.distinct_sessions(checks, true, |e| {
            format!("count by ({AGENT}, {EXPERIMENT}, {VARIANT}) (sum by ({dims}) ({e}))")
        })
    }

    /// Distinct sessions per agent (`by_agent`) or per experiment and variant, exactly: for
    /// a window where some session has several.
    pub fn sessions_by(&self, checks: Checks, by_agent: bool) -> Expr {
        let by = if by_agent { AGENT.to_string() } else { format!("{EXPERIMENT}, {VARIANT}") };
        self.distinct_sessions(checks, true, |e| format!("count by ({by}) (sum by ({SESSION}, {by}) ({e}))"))
    }

    /// Each session's cost (in its experiment variant with `by_variant`), every leg of the
    /// shapes present summed.
    fn session_costs(&self, shapes: &[Shape], checks: Checks, by_variant: bool) -> String {
        let parts: Vec<(String, Expr)> = shapes
            .iter()
            .flat_map(|s| s.legs(Value::Cost))
            .enumerate()
            .map(|(i, &leg)| {
                let mut raw = vec!["sessionId", "sessionKey"];
                if by_variant {
                    raw.extend(EXPERIMENT_LABELS);
                }
                let pipeline = format!("{}{CLASS}", self.leg_pipeline(leg, checks, None));
                let mut e = normalise_session(sum_by(&raw, &pipeline, leg.field).text);
                if by_variant {
                    e = normalise_experiment(e);
                }
                (format!("c{i}"), Expr::new(e))
            })
            .collect();
        let by = if by_variant { format!("{SESSION}, {EXPERIMENT}, {VARIANT}") } else { SESSION.to_string() };
        format!("sum by ({by}) ({})", Expr::union(parts).text)
    }

    /// The `n` costliest sessions (Loki answers them in no particular order).
    pub fn top_sessions(&self, n: usize, shapes: &[Shape], checks: Checks) -> Expr {
        Expr::new(format!("topk({n}, {})", self.session_costs(shapes, checks, false)))
    }

    /// Every session that cost at least `usd`.
    pub fn sessions_costing_at_least(&self, usd: f64, shapes: &[Shape], checks: Checks) -> Expr {
        Expr::new(format!("{} >= {usd}", self.session_costs(shapes, checks, false)))
    }

    /// Per experiment and variant, Σ over its sessions of (the session's cost in it)².
    pub fn cost_squares(&self, shapes: &[Shape], checks: Checks) -> Expr {
        Expr::new(format!("sum by ({EXPERIMENT}, {VARIANT}) ({} ^ 2)", self.session_costs(shapes, checks, true)))
    }

    /// Every session by name, with its events (for a top list that runs out of costed
    /// sessions).
    pub fn every_session(&self, checks: Checks) -> Expr {
        let inner = count_by(&["sessionId", "sessionKey"], &self.session_events(checks, true), None);
        Expr::new(format!("sum by ({SESSION}) ({})", normalise_session(inner.text)))
    }

    // ---- Details of named sessions: a line filter on their names, unsplit ----

    /// The filters that keep the lines of `sessions` (exactly, by label; and cheaply, by a
    /// line filter, when every name is made of characters JSON never escapes).
    fn named(&self, sessions: &[String], line_filter: &str, checks: Checks) -> String {
        let names: Vec<String> = sessions.iter().map(|s| regex_escape(s)).collect();
        let re = names.join("|");
        let plain = sessions.iter().all(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)));
        let mut p = self.selector.clone();
        if plain {
            // `\\u`: a name JSON wrote with an escape is judged by the parser.
            p.push_str(&format!(" |~ `{re}|\\\\u` |~ `{line_filter}`"));
        }
        let parsed = self.parsed(None, checks);
        let rest = parsed.strip_prefix(self.selector.as_str()).unwrap_or(&parsed);
        p.push_str(rest);
        p.push_str(&format!(" | (sessionId=~`{re}` or (sessionId=\"\" and sessionKey=~`{re}`))"));
        p
    }

    /// The named sessions' events by session, agent and type.
    pub fn session_events_of(&self, sessions: &[String], checks: Checks) -> Expr {
        let p = format!("{} | {EVENT}", self.named(sessions, ".", checks));
        count_by(&["sessionId", "sessionKey", "agentId", "type", "eventType", "kind"], &p, Some("")).unsplit()
    }

    /// The named sessions' events by session, agent, type and token counts: their rows'
    /// agents, calls and tokens from one scan, while they hold fewer distinct lines than
    /// Loki's series limit (else [`LogQl::session_events_of`] and
    /// [`LogQl::session_legs_of`]).
    pub fn session_lines_of(&self, sessions: &[String], checks: Checks) -> Expr {
        let p = format!("{} | {EVENT}", self.named(sessions, ".", checks));
        let mut by = vec!["sessionId", "sessionKey", "agentId", "type", "eventType", "kind"];
        by.extend(TOKEN_FIELDS);
        let costs: Vec<&str> = CHECKED_FIELDS.iter().map(|(f, _)| *f).filter(|f| !TOKEN_FIELDS.contains(f)).collect();
        let drop = format!(" | drop {}", costs.join(", "));
        Expr::new(format!("{}count_over_time({p}{drop} {RANGE}))", aggregate(&by))).unsplit()
    }

    /// The named sessions' model calls without a cost.
    pub fn session_uncosted_of(&self, sessions: &[String], checks: Checks) -> Expr {
        let any: Vec<String> = Shape::ALL.iter().map(|s| format!("({})", s.uncosted())).collect();
        let p = format!("{} | {}", self.named(sessions, MODEL_LINES, checks), any.join(" or "));
        count_by(&["sessionId", "sessionKey"], &p, Some("")).unsplit()
    }

    /// The named sessions' values (tokens) by session, every leg of the shapes present.
    pub fn session_legs_of(&self, sessions: &[String], value: Value, shapes: &[Shape], checks: Checks) -> Expr {
        let parts: Vec<(String, Expr)> = shapes
            .iter()
            .flat_map(|s| s.legs(value))
            .enumerate()
            .map(|(i, &leg)| {
                let unless = leg.unless.map(|u| format!(" and {u}=\"\"")).unwrap_or_default();
                let p = format!(
                    "{} | {}{unless}",
                    self.named(sessions, MODEL_LINES, checks),
                    leg.shape.is(&[leg.shape.model_call_type()])
                );
                (format!("l{i}"), sum_by(&["sessionId", "sessionKey"], &p, leg.field))
            })
            .collect();
        Expr::union(parts).unsplit()
    }
}

/// The lines of `pipeline` (made for an agent asked one way or none) counted by type fields;
/// with `agent` by agent and experiment labels too (and model labels with `by_model`), and
/// apart: by model (with the totals) when `by_model`, by agent, by experiment.
fn by_type(pipeline: impl Fn(Option<AgentBy>) -> String, by_model: bool, agent: Option<AgentBy>) -> Expr {
    let count = |by: &[&str], agent| count_by(by, &pipeline(agent), Some("")).unsplit();
    let Some(a) = agent else { return count(&TYPE_LABELS, None) };
    let types_and = |labels: &[&'static str]| [&TYPE_LABELS[..], labels].concat();
    let by = types_and(if by_model { &MODEL_LABELS } else { &[] });
    let mut parts = Vec::new();
    if by_model {
        parts.push(("model", count(&by, None)));
    }
    parts.push(("agent", count(&types_and(&[a.label()]), agent)));
    parts.push(("variant", count(&types_and(&EXPERIMENT_LABELS), None)));
    count(&grouping(&by, agent), agent).with_apart(parts)
}

/// `| label_format` of the agent when it is asked by template.
fn agent_format(agent: Option<AgentBy>) -> String {
    match agent {
        Some(AgentBy::Template) => format!(" | label_format {AGENT}=`{AGENT_TEMPLATE}`"),
        _ => String::new(),
    }
}

/// `by` and, with an agent, the agent's label and the experiment labels.
fn grouping<'a>(by: &[&'a str], agent: Option<AgentBy>) -> Vec<&'a str> {
    let mut out = by.to_vec();
    if let Some(a) = agent {
        out.push(a.label());
        out.extend(EXPERIMENT_LABELS);
    }
    out
}

fn aggregate(by: &[&str]) -> String {
    if by.is_empty() {
        "sum(".into()
    } else {
        format!("sum by ({}) (", by.join(", "))
    }
}

/// `count_over_time`, with the numeric fields dropped (`drop_except`: all of them, `None`:
/// none, which queries over sessions need not: they group by a handful of labels).
fn count_by(by: &[&str], pipeline: &str, drop_except: Option<&str>) -> Expr {
    let drop = drop_except.map(drop_checked).unwrap_or_default();
    Expr::new(format!("{}count_over_time({pipeline}{drop} {RANGE}))", aggregate(by)))
}

/// The distinct values of `by` among the lines of `pipeline`, as a vector of one series
/// each. `stdvar_over_time` of a constant, grouped in the range aggregation: Loki 3.4's
/// frontend neither splits it by time nor shards it (`stdvar` is in neither
/// `splittableRangeVectorOp` nor `shardableOps`), so one querier evaluates the whole query
/// and only its final answer, a handful of counts, is held to `max_query_series`. Any
/// shardable form (`sum by (session) (count_over_time(…))`) is sent down as its own
/// sub-query, whose answer of one series per session the limit refuses.
fn distinct(by: &[&str], pipeline: &str) -> String {
    format!("stdvar_over_time({pipeline}{ONE} {RANGE}) by ({})", by.join(", "))
}

fn sum_by(by: &[&str], pipeline: &str, field: &str) -> Expr {
    Expr::new(format!(
        "{}sum_over_time({pipeline}{} | unwrap {field} | __error__=\"\" {RANGE}))",
        aggregate(by),
        drop_checked(field)
    ))
}

/// `| drop` of the numeric fields but `keep`: every label `| json` extracts is a series
/// label until it is dropped, and a cost or token count differs on almost every line, so
/// without this Loki would keep about one series per line while it sums.
fn drop_checked(keep: &str) -> String {
    let fields: Vec<&str> = CHECKED_FIELDS.iter().map(|(f, _)| *f).filter(|f| *f != keep).collect();
    format!(" | drop {}", fields.join(", "))
}

/// `obsctl_session` from `sessionId`, else `sessionKey`, on a vector grouped by both.
fn normalise_session(inner: String) -> String {
    let key = format!("label_replace({inner}, \"{SESSION}\", \"$1\", \"sessionKey\", \"(.+)\")");
    format!("label_replace({key}, \"{SESSION}\", \"$1\", \"sessionId\", \"(.+)\")")
}

/// `obsctl_agent`, `obsctl_experiment` and `obsctl_variant` from the raw labels, by the
/// JSONL source's rules (later replacements win).
fn normalise_dims(inner: String) -> String {
    let mut e = format!("label_replace({inner}, \"{AGENT}\", \"unknown\", \"\", \"\")");
    e = format!("label_replace({e}, \"{AGENT}\", \"$1\", \"sessionKey\", \"agent:([^:]+)(?s:.*)\")");
    e = format!("label_replace({e}, \"{AGENT}\", \"$1\", \"agentId\", \"{NOT_UNKNOWN}\")");
    normalise_experiment(e)
}

fn normalise_experiment(inner: String) -> String {
    let mut e = inner;
    for source in ["experiment", "experiment_id", "experimentId"] {
        e = format!("label_replace({e}, \"{EXPERIMENT}\", \"$1\", \"{source}\", \"(.+)\")");
    }
    for source in ["experiment_variant", "variant"] {
        e = format!("label_replace({e}, \"{VARIANT}\", \"$1\", \"{source}\", \"(.+)\")");
    }
    e
}

/// RE2 syntax escaped, so that a session name matches only itself.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        match c {
            '`' => out.push_str(r"\x{60}"),
            c if c.is_control() => out.push_str(&format!("\\x{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

// ---- What a group's labels mean: the JSONL source's rules, applied to labels. ----

fn label<'a>(labels: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    labels.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `sessionId`, else `sessionKey`.
pub fn session_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    label(labels, "sessionId").or_else(|| label(labels, "sessionKey"))
}

/// The agent of a series: [`AGENT`] where the query resolved it, else `agentId` unless
/// missing or `"unknown"`, then the `<id>` of a session key `agent:<id>:…`, else
/// `"unknown"`.
pub fn agent_of(labels: &BTreeMap<String, String>) -> &str {
    if let Some(a) = label(labels, AGENT) {
        return a;
    }
    match label(labels, "agentId") {
        Some(a) if a != "unknown" => a,
        _ => label(labels, "sessionKey").and_then(crate::event::agent_from_session_key).unwrap_or("unknown"),
    }
}

/// The experiment and variant of a series: the `obsctl_*` labels where the query resolved
/// them, else the raw labels by [`EXPERIMENT_LABELS`]' order.
pub fn experiment_of(labels: &BTreeMap<String, String>) -> (Option<&str>, Option<&str>) {
    let experiment = label(labels, EXPERIMENT)
        .or_else(|| label(labels, "experimentId"))
        .or_else(|| label(labels, "experiment_id"))
        .or_else(|| label(labels, "experiment"));
    let variant =
        label(labels, VARIANT).or_else(|| label(labels, "variant")).or_else(|| label(labels, "experiment_variant"));
    (experiment, variant)
}

/// Model and provider, normalised as the JSONL source does
/// ([`crate::event::normalise_model`]), from the labels of the series' shape.
pub fn model_of(labels: &BTreeMap<String, String>) -> (String, String) {
    let [m, p] = Shape::of(labels).unwrap_or(Shape::A).model_labels();
    let (model, provider) =
        crate::event::normalise_model(label(labels, m).map(Cow::Borrowed), label(labels, p).map(Cow::Borrowed));
    (model.into_owned(), provider.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::NANOS_PER_SEC;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ranges_are_exact_and_never_ns() {
        assert_eq!(range(604_800 * NANOS_PER_SEC).as_deref(), Some("604800s"));
        assert_eq!(range(2_362_500_000_000).as_deref(), Some("2362500ms"));
        assert_eq!(range(1_500_000_000).as_deref(), Some("1500ms"));
        assert_eq!(range(1_500), None, "LogQL has no unit for 1500 ns");
        assert_eq!(range(0), None);
        assert_eq!(eval_time(1_795_392_000 * NANOS_PER_SEC), "1795391999999999999");
    }

    #[test]
    fn unsplit_wraps_and_unwraps() {
        let q = LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap();
        let e = q.counts(Checks::Off, false);
        let text = e.render(0, 86_400 * NANOS_PER_SEC, Class::ALL).unwrap();
        assert!(
            text.starts_with("bottomk(1000000, sum by (__error__, type, eventType, kind, agentId) (count_over_time("),
            "{text}"
        );
        assert!(text.ends_with(" [86400s])))"), "{text}");
        let split = e.split().unwrap().render(0, 86_400 * NANOS_PER_SEC, Class::ALL).unwrap();
        assert!(split.starts_with("sum by (__error__"), "{split}");
        assert!(!e.by_session() && !e.is_distinct());
        let sessions = q.session_count(Checks::Off);
        assert!(sessions.is_distinct() && !sessions.by_session(), "asked whole, never per class or piece");
        let split = sessions.split().unwrap();
        assert!(split.by_session() && !split.is_distinct(), "its fallback is asked per class");
    }

    #[test]
    fn classes_partition_every_name() {
        for of in [2, 4, 8, 16, 32, 64, 256] {
            for name in ["sess-6df7033a", "agent:ops:main:3c8e51", "x", "é", "ab", "Z~", "c1a2b3c4-0001-4aa0"] {
                let class = Class::of_session(name, of);
                for index in 0..of {
                    let re = regex::Regex::new(&format!("^(?:{})$", Class { index, of }.regex())).unwrap();
                    assert_eq!(re.is_match(name), index == class, "{name} in class {index} of {of}");
                }
            }
        }
        assert_eq!(Class::ALL.halves(), Some([Class { index: 0, of: 2 }, Class { index: 1, of: 2 }]));
        assert_eq!(Class { index: 3, of: 4 }.halves(), Some([Class { index: 3, of: 8 }, Class { index: 7, of: 8 }]));
        assert_eq!(Class { index: 0, of: 256 }.halves(), None);
    }

    #[test]
    fn hex_ids_spread_evenly_over_classes() {
        let mut counts = [0u32; 64];
        for i in 0..6400u32 {
            counts[Class::of_session(&format!("sess-{:08x}", i.wrapping_mul(2_654_435_761)), 64) as usize] += 1;
        }
        assert!(counts.iter().all(|&n| (50..=150).contains(&n)), "{counts:?}");
    }

    #[test]
    fn queries_read() {
        let q = LogQl::new(r#"{job="openclaw-telemetry"}"#).unwrap();
        let legs = q.legs(Value::Cost, &[Shape::B], Checks::Off, true, Some(AgentBy::Id));
        let cost = legs.render(0, 86_400 * NANOS_PER_SEC, Class::ALL).unwrap();
        assert!(
            cost.starts_with("bottomk(1000000, label_replace(sum by (eventType, model, provider, agentId, "),
            "{cost}"
        );
        assert!(cost.contains(
            "label_replace(sum by (eventType, model, provider, agentId, experimentId, experiment_id, experiment, variant, \
             experiment_variant) (sum_over_time({job=\"openclaw-telemetry\"} |~ `model_usage|llm\\.call|\\\\u` | json \
             | __error__=\"\" | type=\"\" and eventType=\"model_usage\" and estimatedCostUsd=\"\" | drop "
        ), "{cost}");
        assert!(cost.contains("| unwrap costUsd | __error__=\"\" [86400s])), \"obsctl_part\", \"l1\""), "{cost}");
        // Apart: by model (with the type field that tells which labels name it), by agent,
        // by variant, each tagged.
        let parts: Vec<String> =
            legs.apart().iter().map(|e| e.render(0, 86_400 * NANOS_PER_SEC, Class::ALL).unwrap()).collect();
        assert_eq!(parts.len(), 3);
        for (part, (name, by)) in parts.iter().zip([
            ("model", "sum by (eventType, model, provider) ("),
            ("agent", "sum by (agentId) ("),
            ("variant", "sum by (experimentId, experiment_id, experiment, variant, experiment_variant) ("),
        ]) {
            assert!(part.starts_with("label_replace(bottomk(1000000, "), "{part}");
            assert!(part.ends_with(&format!(", \"{BY}\", \"{name}\", \"\", \"\")")), "{part}");
            assert_eq!(part.matches(by).count(), 2, "both legs of shape B by {name}: {part}");
        }
        assert!(q.legs(Value::Tokens(Tokens::Input), &[Shape::A], Checks::Off, true, None).apart().is_empty());
        let checked = q.legs(Value::Cost, &[Shape::B], Checks::On, false, None).render(0, NANOS_PER_SEC, Class::ALL);
        let checked = checked.unwrap();
        assert!(checked.contains(&format!("!~ `{QUOTED_NUMBER}` | json | __error__=\"\" | costUsd=~`")), "{checked}");
        let count = q.session_count(Checks::Off).render(0, NANOS_PER_SEC, Class { index: 1, of: 2 }).unwrap();
        assert_eq!(
            count,
            "count(sum by (obsctl_session) (label_replace(label_replace(stdvar_over_time({job=\"openclaw-telemetry\"} \
             | json | __error__=\"\" | (type!=\"\" or eventType!=\"\" or kind!=\"\") | (sessionId!=\"\" or sessionKey!=\"\") \
             | label_format obsctl_one=\"1\" | unwrap obsctl_one | __error__=\"\" [1s]) by (sessionId, sessionKey), \
             \"obsctl_session\", \"$1\", \"sessionKey\", \"(.+)\"), \"obsctl_session\", \"$1\", \"sessionId\", \"(.+)\")))",
            "one whole query, whatever the class"
        );
        let classed =
            q.session_count(Checks::Off).split().unwrap().render(0, NANOS_PER_SEC, Class { index: 1, of: 2 }).unwrap();
        assert!(
            classed.starts_with(
                "count(sum by (obsctl_session) (label_replace(label_replace(sum by (sessionId, sessionKey)"
            ),
            "{classed}"
        );
        assert!(classed.contains("| (sessionId=~`(?s).*["), "{classed}");
        let failed = q.failed(Checks::Off, Some(AgentBy::Template)).render(0, NANOS_PER_SEC, Class::ALL).unwrap();
        assert!(failed.contains("| ((type=\"agent_end\" or type=\"tool_call\") and success=\"false\") or"), "{failed}");
        assert!(failed.contains("| label_format obsctl_agent=`{{ if and .agentId"), "{failed}");
        assert!(LogQl::new("job=x").is_err());
        assert!(LogQl::new("{}").is_err());
        assert!(LogQl::new("{job=\"a\u{1}\"}").is_err());
    }

    #[test]
    fn named_sessions_are_escaped() {
        let q = LogQl::new(r#"{job="t"}"#).unwrap();
        let plain = q
            .session_events_of(&["sess-1".into(), "a.b".into()], Checks::Off)
            .render(0, NANOS_PER_SEC, Class::ALL)
            .unwrap();
        assert!(plain.contains(r#"{job="t"} |~ `sess-1|a\.b|\\u` |~ `.` | json"#), "{plain}");
        let odd = q.session_events_of(&["a\"b|c`d".into()], Checks::Off).render(0, NANOS_PER_SEC, Class::ALL).unwrap();
        assert!(!odd.contains("|~ `a"), "no line filter for a name JSON may escape: {odd}");
        assert!(odd.contains(r#"sessionId=~`a"b\|c\x{60}d`"#), "{odd}");
    }

    #[test]
    fn labels_resolve_like_the_jsonl_source() {
        let l = labels(&[("sessionKey", "agent:ops:cron:7d21aa"), ("agentId", "unknown")]);
        assert_eq!((session_of(&l), agent_of(&l)), (Some("agent:ops:cron:7d21aa"), "ops"));
        let l = labels(&[("sessionId", "s1"), ("sessionKey", "agent:ops:x"), ("agentId", "coder")]);
        assert_eq!((session_of(&l), agent_of(&l)), (Some("s1"), "coder"));
        assert_eq!(agent_of(&labels(&[("sessionKey", "agent::x")])), "unknown");
        assert_eq!(agent_of(&labels(&[(AGENT, "ops"), ("agentId", "x")])), "ops");
        let m = |pairs: &[(&str, &str)]| model_of(&labels(pairs));
        assert_eq!(
            m(&[("type", "model_usage"), ("model", "anthropic/claude-x")]),
            ("claude-x".into(), "anthropic".into())
        );
        assert_eq!(
            m(&[("eventType", "model_usage"), ("model", "openai/gpt-5"), ("provider", "OpenAI")]),
            ("gpt-5".into(), "openai".into())
        );
        assert_eq!(
            m(&[("kind", "llm.call"), ("data_model", "google/gemini"), ("data_provider", "google"), ("model", "x")]),
            ("gemini".into(), "google".into())
        );
        assert_eq!(m(&[("type", "model_usage"), ("model", "/odd")]), ("/odd".into(), "unknown".into()));
        assert_eq!(m(&[]), ("unknown".into(), "unknown".into()));
        let e = labels(&[("experiment_id", "x"), ("experiment_variant", "B")]);
        assert_eq!(experiment_of(&e), (Some("x"), Some("B")));
        let e = labels(&[(EXPERIMENT, "y"), ("experimentId", "x"), (VARIANT, "C")]);
        assert_eq!(experiment_of(&e), (Some("y"), Some("C")));
        assert_eq!(Shape::of(&labels(&[("eventType", "x"), ("kind", "y")])), Some(Shape::B));
        assert_eq!(Shape::of(&labels(&[])), None);
        let k = |pairs: &[(&str, &str)]| Shape::kind_of(&labels(pairs)).map(|(_, k)| k);
        assert_eq!(k(&[("type", "agent_end")]), Some(Kind::RunEnd));
        assert_eq!(k(&[("eventType", "tool_result")]), Some(Kind::ToolCall));
        assert_eq!(k(&[("kind", "llm.call")]), Some(Kind::ModelCall));
        assert_eq!(k(&[("kind", "agent_end")]), Some(Kind::Other));
        assert_eq!(k(&[("variant", "B")]), None);
    }
}
