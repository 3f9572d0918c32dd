//! Turns parsed arguments into typed options: windows resolved, outputs decided, paths
//! defaulted. Everything here can fail only with a usage error.

use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use crate::cli::{DigestArgs, ServerArgs, SourceArg};
use crate::config::{FileConfig, PrometheusNames, ServerConfig, ServerFlags};
use crate::report::{CsvSection, Format};
use crate::source::promql::PromQl;
use crate::source::{jsonl::JsonlSource, prometheus::effective_step, Query, SourceChoice};
use crate::window::{resolve_tz, Window, WindowSpec};

pub const DEFAULT_PROMETHEUS_URL: &str = "http://localhost:9090";
pub const DEFAULT_LOKI_URL: &str = "http://localhost:3100";

/// Everything needed to query Loki.
pub struct LokiOptions {
    pub server: ServerConfig,
    pub selector: String,
}

/// Everything needed to query Prometheus.
pub struct PrometheusOptions {
    pub server: ServerConfig,
    pub promql: PromQl,
}

pub struct DigestOptions {
    pub query: Query,
    pub source: SourceChoice,
    pub jsonl: JsonlSource,
    pub prometheus: PrometheusOptions,
    pub loki: LokiOptions,
    /// The format printed on standard output; `None` when a plain `--output FILE` took it.
    pub stdout: Option<Format>,
    pub outputs: Vec<(Format, PathBuf)>,
    pub csv_section: CsvSection,
    pub quiet: bool,
    pub verbose: bool,
}

impl DigestOptions {
    pub fn from_args(args: DigestArgs, now: DateTime<Utc>) -> Result<DigestOptions> {
        let tz = resolve_tz(args.tz.as_deref())?;
        let spec = WindowSpec {
            week: args.week.map(|w| (!w.is_empty()).then_some(w)),
            last: args.last,
            since: args.since,
            until: args.until,
        };
        let window = Window::resolve(&spec, tz, now)?;
        let previous = (!args.no_compare).then(|| window.previous());
        let mut outputs = Vec::new();
        let mut stdout = Some(args.format);
        for target in &args.output {
            let (format, path) = parse_output(target, args.format)?;
            if !target.contains('=') || Format::parse(target.split('=').next().unwrap_or("")).is_none() {
                stdout = None;
            }
            outputs.push((format, path));
        }
        let logs = if args.logs.is_empty() { vec![default_logs()?] } else { args.logs };
        let file = FileConfig::load(args.config.as_deref())?;
        let flags = server_flags(&args.server, args.prometheus_url.clone());
        let server = ServerConfig::merge(&flags, &file.prometheus, DEFAULT_PROMETHEUS_URL)?;
        let loki_flags = ServerFlags { url: args.loki_url.clone(), ..flags.clone() };
        let loki = LokiOptions {
            server: ServerConfig::merge(&loki_flags, &file.loki, DEFAULT_LOKI_URL)?,
            selector: args
                .loki_selector
                .clone()
                .or_else(|| file.loki.selector.clone())
                .unwrap_or_else(|| crate::source::loki::DEFAULT_SELECTOR.to_string()),
        };
        let step = args.prometheus_step.or(file.prometheus.step_seconds).unwrap_or(60);
        if step == 0 {
            bail!("--prometheus-step must be at least 1 second");
        }
        let step = effective_step(step, &window);
        let promql = PromQl::new(PrometheusNames::from_file(&file.prometheus), step, args.agent.as_deref())?;
        if args.agent.is_some() && args.source != SourceArg::Prometheus {
            bail!("--agent works with --source prometheus only, for now");
        }
        let threads = match args.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        Ok(DigestOptions {
            query: Query { window, previous, top: args.top },
            source: match args.source {
                SourceArg::Auto => SourceChoice::Auto,
                SourceArg::Jsonl => SourceChoice::Jsonl,
                SourceArg::Prometheus => SourceChoice::Prometheus,
                SourceArg::Loki => SourceChoice::Loki,
            },
            jsonl: JsonlSource { paths: logs, threads, progress: !args.quiet },
            prometheus: PrometheusOptions { server, promql },
            loki,
            stdout,
            outputs,
            csv_section: args.csv_section,
            quiet: args.quiet,
            verbose: args.verbose,
        })
    }
}

fn server_flags(a: &ServerArgs, url: Option<String>) -> ServerFlags {
    ServerFlags {
        url,
        bearer_token_file: a.bearer_token_file.clone(),
        username: a.username.clone(),
        password_file: a.password_file.clone(),
        org_id: a.org_id.clone(),
        headers: a.header.clone(),
        ca_file: a.ca_file.clone(),
        insecure_skip_verify: a.insecure_skip_verify,
        connect_timeout: a.connect_timeout,
        timeout: a.timeout,
    }
}

/// `FILE` (in the `--format`) or `FORMAT=FILE`. A name like `a=b.md` whose prefix is no
/// format is a plain file name.
fn parse_output(target: &str, default: Format) -> Result<(Format, PathBuf)> {
    if target.is_empty() {
        bail!("--output needs a file name");
    }
    if let Some((name, path)) = target.split_once('=') {
        if let Some(format) = Format::parse(name) {
            if path.is_empty() {
                bail!("--output {target}: no file name after '='");
            }
            return Ok((format, PathBuf::from(path)));
        }
    }
    Ok((default, PathBuf::from(target)))
}

fn default_logs() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".openclaw").join("telemetry")),
        None => bail!("HOME is not set: give the telemetry directory with --logs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_targets() {
        assert_eq!(parse_output("r.md", Format::Markdown).unwrap(), (Format::Markdown, "r.md".into()));
        assert_eq!(parse_output("json=d.json", Format::Table).unwrap(), (Format::Json, "d.json".into()));
        assert_eq!(parse_output("a=b.md", Format::Markdown).unwrap(), (Format::Markdown, "a=b.md".into()));
        assert!(parse_output("json=", Format::Table).is_err());
        assert!(parse_output("", Format::Table).is_err());
    }
}
