//! The command line, and nothing else: clap definitions that also generate the man page
//! and shell completions, so the three never drift apart.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::{CsvSection, Format};

#[derive(Debug, Parser)]
#[command(
    name = "obsctl",
    version,
    propagate_version = true,
    about = "Cost and usage digests for LLM-agent gateways",
    long_about = "Cost and usage digests for LLM-agent gateways (OpenClaw-style): what agents cost and how \
                  they are used, per session, model, experiment variant and agent, from Prometheus, Loki \
                  or the gateway's local JSONL telemetry files.",
    after_help = "Exit status: 0 success, 1 regression found (doctor: an error-level finding), 2 usage/config/input error, 3 data unavailable or incomplete."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cost and usage report for a window, compared with the window before it.
    Digest(Box<DigestArgs>),
    /// CI gate: compare a window with a baseline or the previous window; exit 1 on a regression, 3 when data is missing.
    Gate(Box<GateArgs>),
    /// Write Prometheus or Loki rule files (recording rules and alerts) from the digest's own queries and names.
    Rules(Box<RulesArgs>),
    /// Pipeline health: why a cost report may be wrong or $0.00, per source, with fixes; exit 1 on an error-level finding, 3 when nothing could be checked.
    Doctor(Box<DoctorArgs>),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(after_long_help = DIGEST_EXAMPLES)]
pub struct DigestArgs {
    #[command(flatten)]
    pub window: WindowArgs,

    /// Do not compare with the previous window.
    #[arg(long, help_heading = "Window")]
    pub no_compare: bool,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Report format on standard output (and for plain --output files).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table, env = "OBSCTL_FORMAT", help_heading = "Output")]
    pub format: Format,

    /// Write the report to FILE, atomically, creating its directory; FORMAT=FILE writes that format (repeatable: --output json=digest.json --output markdown=digest.md). FILE may name the window: {iso_week} (2026-W47), {start}, {end} (2026-11-16, 2026-11-23: the end is exclusive), {date} (today), all in --tz; {{ and }} are braces. With any --output, nothing goes to standard output unless --verbose.
    #[arg(long, short = 'o', value_name = "[FORMAT=]FILE", help_heading = "Output")]
    pub output: Vec<String>,

    /// The table that CSV output (--format csv, --output csv=FILE) holds [default: by_model].
    #[arg(long, value_enum, value_name = "SECTION", help_heading = "Output")]
    pub csv_section: Option<CsvSection>,

    /// How many sessions by_session lists, costliest first.
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub top: usize,

    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// The window of a report: `--week`, `--last`, `--since/--until`, `--tz`.
#[derive(Debug, Args, Default)]
pub struct WindowArgs {
    /// The last complete ISO week (Monday to Monday) in the report's time zone, or the given week (2026-W47). The default window of digest and gate.
    #[arg(long, value_name = "YYYY-Www", num_args = 0..=1, default_missing_value = "", help_heading = "Window")]
    pub week: Option<String>,

    /// A rolling window ending now or at --until: a whole number with unit h, d or w (36h, 7d, 2w).
    #[arg(long, value_name = "DURATION", help_heading = "Window")]
    pub last: Option<String>,

    /// Window start: RFC 3339 (2026-11-16T00:00:00Z) or a date (2026-11-16, local midnight).
    #[arg(long, value_name = "TIME", help_heading = "Window")]
    pub since: Option<String>,

    /// Window end, exclusive (default: now). Same formats as --since.
    #[arg(long, value_name = "TIME", help_heading = "Window")]
    pub until: Option<String>,

    /// Time zone of weeks, days and dates (IANA name). Default: the zone TZ names, else this machine's zone, else UTC.
    #[arg(long, value_name = "ZONE", env = "OBSCTL_TZ", help_heading = "Window")]
    pub tz: Option<String>,
}

/// Where the figures come from, and how to reach the servers.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Where the figures come from.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto, env = "OBSCTL_SOURCE", help_heading = "Source")]
    pub source: SourceArg,

    /// A telemetry file or directory (repeatable). Directories contribute events.jsonl and its rotations events.YYYY-MM-DD.jsonl / events.YYYY-Www.jsonl, optionally .gz. Default: ~/.openclaw/telemetry.
    #[arg(long, value_name = "PATH", env = "OBSCTL_LOGS", value_delimiter = ',', help_heading = "Source")]
    pub logs: Vec<PathBuf>,

    /// Prometheus to query (also OBSCTL_PROMETHEUS_URL or [prometheus] url in the config file). Credentials in the URL are used and never shown.
    #[arg(long, value_name = "URL", env = "OBSCTL_PROMETHEUS_URL", help_heading = "Source")]
    pub prometheus_url: Option<String>,

    /// Loki to query (also OBSCTL_LOKI_URL or [loki] url in the config file).
    #[arg(long, value_name = "URL", env = "OBSCTL_LOKI_URL", help_heading = "Source")]
    pub loki_url: Option<String>,

    /// LogQL stream selector of the telemetry events (default {job="openclaw-telemetry"}).
    #[arg(long, value_name = "SELECTOR", env = "OBSCTL_LOKI_SELECTOR", help_heading = "Source")]
    pub loki_selector: Option<String>,

    /// Evaluation step of the exact-increase subqueries, in seconds: the scrape interval or more (default 60).
    #[arg(long, value_name = "SECONDS", env = "OBSCTL_PROMETHEUS_STEP", help_heading = "Source")]
    pub prometheus_step: Option<u64>,

    /// Only this agent's events (repeatable: any of them); the agent as the report names it. Every source; escaped in every query.
    #[arg(long, value_name = "NAME", help_heading = "Filters")]
    pub agent: Vec<String>,

    /// Only model calls of this model (repeatable), named as the report's model column (without the provider); other events are left out.
    #[arg(long, value_name = "NAME", help_heading = "Filters")]
    pub model: Vec<String>,

    /// Only events of this experiment (repeatable). Prometheus has no experiment labels: with --source auto the files or Loki answer everything.
    #[arg(long, value_name = "ID", help_heading = "Filters")]
    pub experiment: Vec<String>,

    /// Configuration file (TOML). Default: ~/.config/obsctl/config.toml when it exists.
    #[arg(long, value_name = "FILE", env = "OBSCTL_CONFIG", help_heading = "Source")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Threads parsing JSONL (default: one per core).
    #[arg(long, value_name = "N", help_heading = "Source")]
    pub threads: Option<usize>,
}

/// What a command prints on standard error besides its result.
#[derive(Debug, Args, Default)]
pub struct NoiseArgs {
    /// Do not print warnings or a progress bar on standard error (warnings stay in the report).
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,

    /// Print every server query and how long it took on standard error (never credentials); with --output, print the --format on standard output too.
    #[arg(long, short = 'v', help_heading = "Output")]
    pub verbose: bool,
}

/// Authentication, tenant, TLS and timeouts for the servers queried.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Servers")]
pub struct ServerArgs {
    /// Send `Authorization: Bearer <token>` with the token read from FILE.
    #[arg(long, value_name = "FILE", env = "OBSCTL_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,

    /// Basic-auth user name (password from --password-file).
    #[arg(long, value_name = "NAME", env = "OBSCTL_USERNAME")]
    pub username: Option<String>,

    /// Basic-auth password, read from FILE.
    #[arg(long, value_name = "FILE", env = "OBSCTL_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,

    /// Tenant, sent as X-Scope-OrgID (Mimir, Cortex, Loki).
    #[arg(long, value_name = "ID", env = "OBSCTL_ORG_ID")]
    pub org_id: Option<String>,

    /// Extra request header NAME:VALUE (repeatable). Values are never printed.
    #[arg(long, value_name = "NAME:VALUE")]
    pub header: Vec<String>,

    /// PEM file of the CA that signed the server's certificate.
    #[arg(long, value_name = "FILE", env = "OBSCTL_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Accept any TLS certificate. Insecure: for testing only.
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// Seconds to wait for a connection (default 3).
    #[arg(long, value_name = "SECONDS", value_parser = finite)]
    pub connect_timeout: Option<f64>,

    /// Seconds to wait for a query (default 30).
    #[arg(long, value_name = "SECONDS", value_parser = finite)]
    pub timeout: Option<f64>,
}

const DIGEST_EXAMPLES: &str = "Examples:
  obsctl digest --week                         last complete ISO week, table on the terminal
  obsctl digest --week 2026-W47 --tz Europe/Berlin --format markdown --output weekly.md
  obsctl digest --week --format markdown --output 'reports/{iso_week}.md' --output 'json=reports/{iso_week}.json'
  obsctl digest --last 7d --format json | jq .totals
  obsctl digest --since 2026-11-01 --until 2026-12-01 --format csv --csv-section by_session
  obsctl digest --source prometheus --prometheus-url https://prom.internal:9090 --bearer-token-file ~/.prom-token";

#[derive(Debug, Args)]
#[command(after_long_help = GATE_EXAMPLES)]
pub struct GateArgs {
    #[command(flatten)]
    pub window: WindowArgs,

    /// Compare with a saved `obsctl digest --format json` (or the old script's baseline file, recognised by its fields) instead of the previous window.
    #[arg(long, value_name = "FILE", help_heading = "Baseline")]
    pub baseline: Option<PathBuf>,

    /// What to compare with when no --baseline is given: the previous window of the same length.
    #[arg(long, value_enum, value_name = "WHAT", conflicts_with = "baseline", help_heading = "Baseline")]
    pub against: Option<Against>,

    /// Also save this window's digest (schema obsctl.digest/v1) to FILE, to be the next run's --baseline ({iso_week}, {start}, {end}, {date} as for --output).
    #[arg(long, value_name = "FILE", help_heading = "Baseline")]
    pub save_baseline: Option<PathBuf>,

    /// Fail when the total cost grew by more than PCT (20%).
    #[arg(long, value_name = "PCT", help_heading = "Checks")]
    pub max_increase: Option<String>,

    /// Fail when the total cost is over USD.
    #[arg(long, value_name = "USD", help_heading = "Checks", value_parser = finite)]
    pub max_cost: Option<f64>,

    /// Fail when the cost per session grew by more than PCT.
    #[arg(long, value_name = "PCT", help_heading = "Checks")]
    pub max_cost_per_session_increase: Option<String>,

    /// Fail when the cost per session is over USD.
    #[arg(long, value_name = "USD", help_heading = "Checks", value_parser = finite)]
    pub max_cost_per_session: Option<f64>,

    /// Fail when the tokens per session grew by more than PCT.
    #[arg(long, value_name = "PCT", help_heading = "Checks")]
    pub max_tokens_per_session_increase: Option<String>,

    /// Fail when the tokens (input + output) per session are over N.
    #[arg(long, value_name = "N", help_heading = "Checks", value_parser = finite)]
    pub max_tokens_per_session: Option<f64>,

    /// Fail when the failed-run rate grew by more than PCT (relative, 10%) or PP percentage points (2pp).
    #[arg(long, value_name = "PCT|PP", help_heading = "Checks")]
    pub max_failed_run_rate_increase: Option<String>,

    /// Fail when the failed-run rate is over RATE (5%).
    #[arg(long, value_name = "RATE", help_heading = "Checks")]
    pub max_failed_run_rate: Option<String>,

    /// Fail when the tool-failure rate grew by more than PCT (relative) or PP percentage points.
    #[arg(long, value_name = "PCT|PP", help_heading = "Checks")]
    pub max_tool_failure_rate_increase: Option<String>,

    /// Fail when the tool-failure rate is over RATE.
    #[arg(long, value_name = "RATE", help_heading = "Checks")]
    pub max_tool_failure_rate: Option<String>,

    /// Fail when the p95 session duration grew by more than PCT.
    #[arg(long, value_name = "PCT", help_heading = "Checks")]
    pub max_p95_duration_increase: Option<String>,

    /// Fail when the p95 session duration is over SECONDS.
    #[arg(long, value_name = "SECONDS", help_heading = "Checks", value_parser = finite)]
    pub max_p95_duration: Option<f64>,

    /// Fail when one model's, agent's or variant's cost grew by more than PCT (model=10%; repeatable). For variants: cost per session, tested with a 95 % interval.
    #[arg(long, value_name = "DIM=PCT", help_heading = "Checks")]
    pub max_increase_per: Vec<String>,

    /// Fail when one model's, agent's or variant's cost is over USD (agent=25; repeatable).
    #[arg(long, value_name = "DIM=USD", help_heading = "Checks")]
    pub max_cost_per: Vec<String>,

    /// Fail for every session whose cost is over USD (a per-session budget).
    #[arg(long, value_name = "USD", help_heading = "Checks", value_parser = finite)]
    pub max_session_cost: Option<f64>,

    /// Compare each experiment's variants with this variant of the same window instead of with their own baselines.
    #[arg(long, value_name = "VARIANT", help_heading = "Checks")]
    pub control: Option<String>,

    /// Fewer sessions than N in the window or the baseline (or in a variant) is insufficient data: exit 3, never a pass (default 1).
    #[arg(long, value_name = "N", help_heading = "Checks")]
    pub min_sessions: Option<u64>,

    /// Report missing or insufficient data as a warning and decide on the rest, instead of exit 3.
    #[arg(long, help_heading = "Checks")]
    pub allow_missing: bool,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Verdict format on standard output (and for plain --output files).
    #[arg(long, short = 'f', value_enum, default_value_t = GateFormat::Table, env = "OBSCTL_GATE_FORMAT", help_heading = "Output")]
    pub format: GateFormat,

    /// Write the verdict to FILE, atomically, creating its directory; FORMAT=FILE writes that format (repeatable: --output junit=gate.xml --output markdown=gate.md). FILE may name the window, as for digest: {iso_week}, {start}, {end}, {date}. With any --output, nothing goes to standard output unless --verbose.
    #[arg(long, short = 'o', value_name = "[FORMAT=]FILE", help_heading = "Output")]
    pub output: Vec<String>,

    /// How many sessions to fetch for --max-session-cost, costliest first: enough to decide, never every session.
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Output")]
    pub top: usize,

    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// `--against`: the baseline when no file is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Against {
    /// The window of the same length just before (the week before, for --week).
    Previous,
}

/// What `obsctl gate` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GateFormat {
    /// The verdict, then a table of checks (colour on a TTY unless NO_COLOR is set).
    Table,
    /// A PR comment (under 65,000 characters).
    Markdown,
    /// The stable `obsctl.gate/v1` schema.
    Json,
    /// JUnit XML, one test case per check (GitLab, Jenkins, CircleCI, Buildkite).
    Junit,
}

impl GateFormat {
    pub fn parse(name: &str) -> Option<GateFormat> {
        GateFormat::from_str(name, true).ok()
    }
}

const GATE_EXAMPLES: &str = "Examples:
  obsctl gate --last 24h --max-increase 20%                       against the 24 hours before
  obsctl gate --week --baseline baseline.json --max-cost-per-session-increase 10% --format junit -o gate.xml
  obsctl gate --last 7d --max-increase-per variant=10% --control control --min-sessions 30
  obsctl gate --last 7d --max-session-cost 2 --source loki
  obsctl digest --week --format json --output baseline.json       save a baseline (or: gate --save-baseline FILE)";

#[derive(Debug, Args)]
#[command(after_long_help = RULES_EXAMPLES)]
pub struct RulesArgs {
    /// Which server's rule file to print (and to write to plain --output files).
    #[arg(long, value_enum, default_value_t = RulesTarget::Prometheus, help_heading = "Output")]
    pub target: RulesTarget,

    /// Write the rule file to FILE instead of standard output, atomically; TARGET=FILE writes that target's file (repeatable: --output prometheus=obsctl.rules.yml --output loki=obsctl.yml).
    #[arg(long, short = 'o', value_name = "[TARGET=]FILE", help_heading = "Output")]
    pub output: Vec<String>,

    /// Alert when the total cost over WINDOW is over USD (default 5/1h; off: no such alert).
    #[arg(long, value_name = "USD/WINDOW", help_heading = "Prometheus alerts")]
    pub spike: Option<String>,

    /// Alert when one LABEL value's cost over WINDOW is over USD (agent=2/1h; repeatable). agent, model and provider mean the configured label names; any other label name is used as it is.
    #[arg(long, value_name = "LABEL=USD/WINDOW", help_heading = "Prometheus alerts")]
    pub spike_per: Vec<String>,

    /// Alert when the cost of the current UTC day is over USD.
    #[arg(long, value_name = "USD", help_heading = "Prometheus alerts")]
    pub daily_budget: Option<String>,

    /// Alert when a model's errors per costed session over WINDOW are over RATE (default 10%/1h; off: no such alert).
    #[arg(long, value_name = "RATE/WINDOW", help_heading = "Prometheus alerts")]
    pub error_rate: Option<String>,

    /// The model-error alert needs at least N errors in its window (default 3).
    #[arg(long, value_name = "N", help_heading = "Prometheus alerts")]
    pub min_errors: Option<u64>,

    /// Alert for every session whose cost in the last hour, or since it started (within --session-lookback), is over USD.
    #[arg(long, value_name = "USD", help_heading = "Loki alerts")]
    pub session_budget: Option<String>,

    /// How far back "since the session started" looks (default 24h; h, d or w).
    #[arg(long, value_name = "DURATION", help_heading = "Loki alerts")]
    pub session_lookback: Option<String>,

    /// Alert when an experiment variant's failed runs over WINDOW are over RATE of its runs (default 20%/1h; off: no such alert).
    #[arg(long, value_name = "RATE/WINDOW", help_heading = "Loki alerts")]
    pub failed_run_rate: Option<String>,

    /// Alert when an experiment variant's failed tool calls over WINDOW are over RATE of its tool calls (default 10%/1h; off: no such alert).
    #[arg(long, value_name = "RATE/WINDOW", help_heading = "Loki alerts")]
    pub tool_failure_rate: Option<String>,

    /// The variant rate alerts need at least N runs (or tool calls) in their window (default 10).
    #[arg(long, value_name = "N", help_heading = "Loki alerts")]
    pub min_runs: Option<u64>,

    /// Configuration file (TOML) naming the metrics, labels, step and Loki selector, as for digest. Default: ~/.config/obsctl/config.toml when it exists.
    #[arg(long, value_name = "FILE", env = "OBSCTL_CONFIG", help_heading = "Names")]
    pub config: Option<PathBuf>,

    /// Step of the exact increases, in seconds: the scrape interval or more (default 60), as for digest.
    #[arg(long, value_name = "SECONDS", env = "OBSCTL_PROMETHEUS_STEP", help_heading = "Names")]
    pub prometheus_step: Option<u64>,

    /// LogQL stream selector of the telemetry events (default {job="openclaw-telemetry"}).
    #[arg(long, value_name = "SELECTOR", env = "OBSCTL_LOKI_SELECTOR", help_heading = "Names")]
    pub loki_selector: Option<String>,
}

/// Which rule file `obsctl rules` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesTarget {
    /// A Prometheus rule file (`rule_files`): hourly recording rules, cost and model-error alerts.
    Prometheus,
    /// A Loki ruler rule file: session budget, failed-run and tool-failure rates per variant.
    Loki,
}

impl RulesTarget {
    pub fn parse(name: &str) -> Option<RulesTarget> {
        RulesTarget::from_str(name, true).ok()
    }
}

const RULES_EXAMPLES: &str = "Examples:
  obsctl rules > /etc/prometheus/rules/obsctl.rules.yml        hourly cost, tokens; spike, error-rate alerts
  obsctl rules --spike 5/1h --spike-per agent=2/1h --daily-budget 100 -o obsctl.rules.yml
  obsctl rules --target loki --session-budget 2 -o /loki/rules/fake/obsctl.yml
  obsctl rules -o prometheus=obsctl.rules.yml -o loki=obsctl.loki.yml --session-budget 2
  promtool check rules obsctl.rules.yml";

#[derive(Debug, Args)]
#[command(
    after_long_help = DOCTOR_EXAMPLES,
    long_about = "Pipeline health: checks every source a digest reads (Prometheus, Loki, the local JSONL files) \
                  for what would make a cost report wrong or $0.00, then compares the window's cost, tokens and \
                  sessions across the sources that answer. Each finding has a severity (ok, warning, error), what \
                  it means for the cost report and how to fix it. The default window is the last 7 days \
                  (--last 7d). With --source auto (the default) every source is checked; a server at its default \
                  URL that does not answer is a warning, one named with a flag, the environment or the config \
                  file an error. Exit status: 0 no error-level finding, 1 an error-level finding, 2 usage or \
                  configuration error, 3 no source could be checked."
)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Prometheus scrape jobs that are the gateway's: a job whose name contains one of these, |-separated, case-insensitive.
    #[arg(long, value_name = "NAME[|NAME…]", default_value = "openclaw|gateway", help_heading = "Checks")]
    pub gateway_job: String,

    /// Report format on standard output (and for plain --output files).
    #[arg(long, short = 'f', value_enum, default_value_t = DoctorFormat::Table, env = "OBSCTL_DOCTOR_FORMAT", help_heading = "Output")]
    pub format: DoctorFormat,

    /// Write the report to FILE, atomically; FORMAT=FILE writes that format (repeatable: --output json=doctor.json).
    #[arg(long, short = 'o', value_name = "[FORMAT=]FILE", help_heading = "Output")]
    pub output: Vec<String>,

    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// What `obsctl doctor` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// The findings as a table, then what to do about each problem.
    Table,
    /// GitHub-flavoured Markdown (an issue, a PR comment, a wiki page).
    Markdown,
    /// The stable `obsctl.doctor/v1` schema.
    Json,
}

impl DoctorFormat {
    pub fn parse(name: &str) -> Option<DoctorFormat> {
        DoctorFormat::from_str(name, true).ok()
    }
}

const DOCTOR_EXAMPLES: &str = "Examples:
  obsctl doctor                                 every source, the last 7 days
  obsctl doctor --source prometheus --prometheus-url http://prometheus:9090 --gateway-job openclaw
  obsctl doctor --week 2026-W47 --tz Europe/Berlin --format markdown --output doctor.md
  obsctl doctor --format json | jq '.findings[] | select(.severity == \"error\")'";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Prometheus for totals, models, agents and days; Loki for sessions and variants; the local JSONL files for whatever a server cannot answer (the report says why).
    Auto,
    /// Only the local JSONL files.
    Jsonl,
    /// Only Prometheus: totals, by model, by agent and daily (no per-session or per-variant figures).
    Prometheus,
    /// Only Loki: every section, from LogQL over the telemetry stream.
    Loki,
}

/// A number flag as typed: `1e400` is refused as itself, not echoed later as "inf", and `nan`
/// never reaches a comparison (every comparison with it is false, so a check would pass).
fn finite(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        Ok(_) => Err("expected a finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}
