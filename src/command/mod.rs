//! One module per command: each turns its parsed arguments into typed options (a window,
//! the sources, the outputs), asks the sources, and hands the result to its renderer.
//! What the commands share lives here: windows, sources and output targets from the
//! command line, the config file and the environment. Building options fails only with a
//! usage error (exit 2).

pub mod digest;
pub mod doctor;
pub mod gate;
pub mod rules;
pub mod template;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

use crate::cli::{ServerArgs, SourceArg, SourceArgs, WindowArgs};
use crate::config::{FileConfig, PrometheusNames, ServerConfig, ServerFlags};
use crate::error;
use crate::report;
use crate::source::filter::Filters;
use crate::source::jsonl::JsonlSource;
use crate::source::promql::PromQl;
use crate::source::{prometheus::effective_step, LokiSettings, PrometheusSettings, SourceChoice, Sources};
use crate::window::{resolve_tz, Window, WindowSpec};

pub use crate::config::{DEFAULT_LOKI_URL, DEFAULT_PROMETHEUS_URL};

/// The window the flags ask for, resolved against `now`.
pub fn window(args: &WindowArgs, now: DateTime<Utc>) -> Result<Window> {
    let tz = resolve_tz(args.tz.as_deref())?;
    let spec = WindowSpec {
        week: args.week.clone().map(|w| (!w.is_empty()).then_some(w)),
        last: args.last.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
    };
    Window::resolve(&spec, tz, now)
}

/// The sources the flags and the config file describe, for queries over `window`.
/// The config file, its warnings printed (they are about secrets: even with `--quiet`).
pub fn load_config(path: Option<&Path>) -> Result<FileConfig> {
    let file = FileConfig::load(path)?;
    for w in &file.warnings {
        eprintln!("warning: {}", crate::config::scrub(w));
    }
    Ok(file)
}

/// The most `--threads` a JSONL read may start.
const MAX_THREADS: usize = 256;

pub fn sources(args: &SourceArgs, file: &FileConfig, window: &Window, quiet: bool, verbose: bool) -> Result<Sources> {
    let default_paths = args.logs.is_empty();
    let logs = if default_paths { vec![default_logs()?] } else { args.logs.clone() };
    let flags = server_flags(&args.server, args.prometheus_url.clone());
    // The file's URLs were checked when it was read: a bad one here came from a flag or the
    // environment, and the message says which names to look at.
    let server = ServerConfig::merge(
        &flags,
        &file.prometheus,
        DEFAULT_PROMETHEUS_URL,
        "--prometheus-url (or OBSCTL_PROMETHEUS_URL)",
    )?;
    let loki_flags = ServerFlags { url: args.loki_url.clone(), ..flags.clone() };
    let loki = LokiSettings {
        server: ServerConfig::merge(&loki_flags, &file.loki, DEFAULT_LOKI_URL, "--loki-url (or OBSCTL_LOKI_URL)")?,
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
    let step = effective_step(step, window);
    let filters = Filters::new(&args.agent, &args.model, &args.experiment)?;
    let promql = PromQl::new(PrometheusNames::from_file(&file.prometheus), step, None)?;
    // With an experiment, Prometheus cannot answer (auto leaves it out); named alone, it
    // is a usage error.
    let promql = match promql.clone().with_filters(&filters) {
        Ok(p) => p,
        Err(e) if args.source == SourceArg::Prometheus => return Err(e),
        Err(_) => promql,
    };
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        // Each thread keeps its own tally: past a few hundred, only memory grows (and the
        // system may refuse to start them at all).
        Some(n) if n > MAX_THREADS => bail!("--threads {n}: at most {MAX_THREADS}"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    Ok(Sources {
        choice: match args.source {
            SourceArg::Auto => SourceChoice::Auto,
            SourceArg::Jsonl => SourceChoice::Jsonl,
            SourceArg::Prometheus => SourceChoice::Prometheus,
            SourceArg::Loki => SourceChoice::Loki,
        },
        jsonl: JsonlSource { paths: logs, threads, progress: !quiet, filters: filters.clone(), default_paths },
        prometheus: PrometheusSettings { server, promql },
        loki,
        filters,
        verbose,
    })
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

/// Where a command's result goes: standard output in one format (unless a plain
/// `--output FILE` took it), and files, each in its own format.
pub struct Outputs<F> {
    pub stdout: Option<F>,
    pub files: Vec<(F, PathBuf)>,
}

impl<F: Copy> Outputs<F> {
    /// `--output` targets: `FILE` (in the `--format`) or `FORMAT=FILE`. A prefix of letters
    /// alone that names no format (`jsn=d.json`) is a typo, refused; any other name with an
    /// `=` (`./a=b.md`, `2026=w47.md`) is a plain file name.
    pub fn parse(targets: &[String], default: F, format_of: impl Fn(&str) -> Option<F>) -> Result<Outputs<F>> {
        let mut outputs = Outputs { stdout: Some(default), files: Vec::new() };
        for target in targets {
            if target.is_empty() {
                bail!("--output needs a file name");
            }
            let named = match target.split_once('=') {
                Some((name, path)) => match format_of(name) {
                    Some(format) => Some((format, path)),
                    None if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()) => bail!(
                        "--output {target}: {name:?} is not a format here (write ./{target} for a file of that name)"
                    ),
                    None => None,
                },
                None => None,
            };
            match named {
                Some((_, "")) => bail!("--output {target}: no file name after '='"),
                Some((format, path)) => outputs.files.push((format, PathBuf::from(path))),
                None => {
                    outputs.stdout = None;
                    outputs.files.push((default, PathBuf::from(target)));
                }
            }
        }
        Ok(outputs)
    }

    /// A report's `--output` targets for `window`: each file name's placeholders expanded
    /// ([`template`]), and standard output left empty as soon as a file is written (a cron
    /// job mails whatever a command prints), unless `verbose` asks for the `--format`
    /// there too.
    pub fn for_report(
        targets: &[String],
        default: F,
        format_of: impl Fn(&str) -> Option<F>,
        window: &Window,
        now: DateTime<Utc>,
        verbose: bool,
    ) -> Result<Outputs<F>> {
        let mut outputs = Outputs::parse(targets, default, format_of)?;
        for (_, path) in &mut outputs.files {
            *path = expand_path(path, window, now)?;
        }
        distinct_files(outputs.files.iter().map(|(_, p)| p.as_path()))?;
        outputs.stdout = (outputs.files.is_empty() || verbose).then_some(default);
        Ok(outputs)
    }

    /// Whether any output, on standard output or to a file, is in `format`.
    pub fn writes(&self, format: F) -> bool
    where
        F: PartialEq,
    {
        self.stdout == Some(format) || self.files.iter().any(|(f, _)| *f == format)
    }

    /// Renders and writes every file, atomically. One that fails does not stop the
    /// others; each failure is an error of its own ([`error::Several`]).
    pub fn write_files(&self, render: impl Fn(F) -> Result<Vec<u8>>) -> Result<()> {
        let failed = self
            .files
            .iter()
            .filter_map(|(format, path)| render(*format).and_then(|bytes| report::write_atomic(path, &bytes)).err())
            .collect();
        error::all(failed)
    }
}

/// Refuses two outputs to one file: the last written would silently replace the other (a
/// gate verdict over the baseline saved beside it). Compared by the file they name
/// ([`where_it_goes`]).
pub fn distinct_files<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<()> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in paths {
        let file = where_it_goes(path);
        if seen.contains(&file) {
            bail!("--output {}: two outputs to the same file; give each its own name", path.display());
        }
        seen.push(file);
    }
    Ok(())
}

/// The file `path` names, as far as can be told before it is written: its canonical path if
/// it exists (through links and `..`), else its directory's with its name; else the path with
/// `.` left out. Compared as written, `out/x.md` and `out/../out/x.md` were two files.
fn where_it_goes(path: &Path) -> PathBuf {
    if let Ok(file) = path.canonicalize() {
        return file;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.components().filter(|c| *c != std::path::Component::CurDir).collect(),
    }
}

/// A file name with its placeholders expanded for `window` ([`template`]).
pub fn expand_path(path: &Path, window: &Window, now: DateTime<Utc>) -> Result<PathBuf> {
    match path.to_str() {
        Some(text) => Ok(PathBuf::from(template::expand(text, window, now)?)),
        // Not UTF-8, so no placeholder in it either.
        None => Ok(path.to_path_buf()),
    }
}

/// Writes a result on standard output. A closed pipe (`obsctl digest | head`) is the
/// reader's choice, not a failure.
pub fn print(bytes: &[u8]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(&crate::config::scrub_bytes(bytes)).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// Colour only for a terminal, and never with `NO_COLOR`.
pub fn stdout_wants_color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
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
    use crate::report::Format;

    fn parse(targets: &[&str], default: Format) -> Result<Outputs<Format>> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        Outputs::parse(&targets, default, Format::parse)
    }

    #[test]
    fn output_targets() {
        let o = parse(&["r.md"], Format::Markdown).unwrap();
        assert_eq!((o.stdout, o.files), (None, vec![(Format::Markdown, "r.md".into())]));
        let o = parse(&["json=d.json"], Format::Table).unwrap();
        assert_eq!((o.stdout, o.files), (Some(Format::Table), vec![(Format::Json, "d.json".into())]));
        let o = parse(&["./a=b.md"], Format::Markdown).unwrap();
        assert_eq!((o.stdout, o.files), (None, vec![(Format::Markdown, "./a=b.md".into())]));
        let o = parse(&["2026=w47.md"], Format::Markdown).unwrap();
        assert_eq!(o.files, vec![(Format::Markdown, "2026=w47.md".into())]);
        // Letters alone before the `=`: a misspelt format, not a file name.
        assert!(parse(&["a=b.md"], Format::Markdown).is_err());
        assert!(parse(&["jsn=d.json"], Format::Markdown).is_err());
        assert!(parse(&["json="], Format::Table).is_err());
        assert!(parse(&[""], Format::Table).is_err());
    }

    fn report(targets: &[&str], verbose: bool) -> Result<Outputs<Format>> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&Utc);
        let spec = WindowSpec { week: Some(Some("2026-W47".into())), ..Default::default() };
        let window = Window::resolve(&spec, chrono_tz::Tz::UTC, now).unwrap();
        Outputs::for_report(&targets, Format::Table, Format::parse, &window, now, verbose)
    }

    #[test]
    fn report_outputs_are_templates_and_keep_stdout_quiet() {
        let o = report(&[], false).unwrap();
        assert_eq!((o.stdout, o.files), (Some(Format::Table), vec![]));
        let o = report(&["reports/{iso_week}.md", "json=reports/{start}_{end}.json"], false).unwrap();
        let files = vec![
            (Format::Table, "reports/2026-W47.md".into()),
            (Format::Json, "reports/2026-11-16_2026-11-23.json".into()),
        ];
        assert_eq!((o.stdout, o.files), (None, files));
        // A FORMAT=FILE output alone quiets standard output too; --verbose brings it back.
        assert_eq!(report(&["json=d-{date}.json"], false).unwrap().stdout, None);
        let o = report(&["json=d-{date}.json"], true).unwrap();
        assert_eq!((o.stdout, o.files), (Some(Format::Table), vec![(Format::Json, "d-2026-11-25.json".into())]));
        assert_eq!(report(&["r.md"], true).unwrap().stdout, Some(Format::Table));
        let e = report(&["reports/{week}.md"], false).err().unwrap().to_string();
        assert!(e.contains("unknown placeholder {week}"), "{e}");
    }
}
