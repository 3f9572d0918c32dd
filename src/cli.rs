//! The command line, and nothing else: clap definitions that also generate the man page
//! and shell completions, so the three never drift apart.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::{CsvSection, Format};

#[derive(Debug, Parser)]
#[command(
    name = "obsctl",
    version,
    about = "Cost and usage digests for LLM-agent gateways",
    long_about = "Cost and usage digests for LLM-agent gateways (OpenClaw-style): what agents cost and how \
                  they are used, per session, model, experiment variant and agent, from Prometheus, Loki \
                  or the gateway's local JSONL telemetry files.",
    after_help = "Exit status: 0 success, 1 regression found, 2 usage/config/input error, 3 data unavailable or incomplete."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cost and usage report for a window, compared with the window before it.
    Digest(Box<DigestArgs>),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(after_long_help = DIGEST_EXAMPLES)]
pub struct DigestArgs {
    /// The last complete ISO week (Monday to Monday) in the report's time zone, or the given week (2026-W47). The default window.
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

    /// Time zone of weeks, days and dates (IANA name). Default: this machine's zone, else UTC.
    #[arg(long, value_name = "ZONE", env = "OBSCTL_TZ", help_heading = "Window")]
    pub tz: Option<String>,

    /// Do not compare with the previous window.
    #[arg(long, help_heading = "Window")]
    pub no_compare: bool,

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

    /// Only this agent's figures (the value is escaped; it cannot change a query).
    #[arg(long, value_name = "NAME", help_heading = "Source")]
    pub agent: Option<String>,

    /// Configuration file (TOML). Default: ~/.config/obsctl/config.toml when it exists.
    #[arg(long, value_name = "FILE", env = "OBSCTL_CONFIG", help_heading = "Source")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Threads parsing JSONL (default: one per core).
    #[arg(long, value_name = "N", help_heading = "Source")]
    pub threads: Option<usize>,

    /// Report format on standard output (and for plain --output files).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table, env = "OBSCTL_FORMAT", help_heading = "Output")]
    pub format: Format,

    /// Write the report to FILE instead of standard output, atomically; FORMAT=FILE writes that format (repeatable: --output json=digest.json --output markdown=digest.md).
    #[arg(long, short = 'o', value_name = "[FORMAT=]FILE", help_heading = "Output")]
    pub output: Vec<String>,

    /// The table that --format csv writes.
    #[arg(long, value_enum, default_value_t = CsvSection::ByModel, help_heading = "Output")]
    pub csv_section: CsvSection,

    /// How many sessions by_session lists, costliest first.
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub top: usize,

    /// Do not print warnings or a progress bar on standard error (warnings stay in the report).
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,

    /// Print every server query and how long it took on standard error (never credentials).
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
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<f64>,

    /// Seconds to wait for a query (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
}

const DIGEST_EXAMPLES: &str = "Examples:
  obsctl digest --week                         last complete ISO week, table on the terminal
  obsctl digest --week 2026-W47 --tz Europe/Berlin --format markdown --output weekly.md
  obsctl digest --last 7d --format json | jq .totals
  obsctl digest --since 2026-11-01 --until 2026-12-01 --format csv --csv-section by_session
  obsctl digest --source prometheus --prometheus-url https://prom.internal:9090 --bearer-token-file ~/.prom-token";

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
