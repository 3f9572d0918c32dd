//! `obsctl gate`: the CI gate. Asks the sources for this window's digest (and the
//! previous window's, unless a baseline file is given), hands both to [`crate::gate`], and
//! renders the verdict; the exit code is the verdict's.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

use super::Outputs;
use crate::cli::{GateArgs, GateFormat};
use crate::gate::baseline::{self, BaselineFile, DigestFile};
use crate::gate::policy::Policy;
use crate::gate::{self, BaselineInfo, Outcome, Reference, Verdict};
use crate::report::{self, verdict};
use crate::source::{self, Query, Sources};
use crate::window::Window;

pub struct GateOptions {
    pub window: Window,
    pub sources: Sources,
    /// `None`: the previous window.
    pub baseline: Option<PathBuf>,
    pub save_baseline: Option<PathBuf>,
    pub policy: Policy,
    pub outputs: Outputs<GateFormat>,
    pub top: usize,
    pub quiet: bool,
}

impl GateOptions {
    pub fn from_args(args: GateArgs, now: DateTime<Utc>) -> Result<GateOptions> {
        if args.top == 0 {
            // Read as 1 it used to be, silently: a budget decided on no session is none.
            bail!("--top 0: expected 1 or more (how many of the costliest sessions --max-session-cost looks at)");
        }
        let window = super::window(&args.window, now)?;
        let outputs =
            Outputs::for_report(&args.output, args.format, GateFormat::parse, &window, now, args.noise.verbose)?;
        let save_baseline =
            args.save_baseline.as_deref().map(|path| super::expand_path(path, &window, now)).transpose()?;
        super::distinct_files(outputs.files.iter().map(|(_, p)| p.as_path()).chain(save_baseline.as_deref()))
            .context("--save-baseline and --output name the same file")?;
        let file = super::load_config(args.source.config.as_deref())?;
        let policy = Policy::new(&args, &file.gate)?;
        let sources = super::sources(&args.source, &file, &window, args.noise.quiet, args.noise.verbose)?;
        Ok(GateOptions {
            window,
            sources,
            baseline: args.baseline,
            save_baseline,
            policy,
            outputs,
            top: args.top,
            quiet: args.noise.quiet,
        })
    }
}

pub fn run(opts: GateOptions) -> Result<u8> {
    // A bad baseline file is a usage error, found before any server is asked.
    let file = opts.baseline.as_deref().map(baseline::read).transpose()?;
    if let (Some(file), Some(path)) = (&file, &opts.baseline) {
        same_filters(file, path, &opts.sources.filters.flags())?;
    }
    let current = digest_of(&opts.window, &opts).map_err(|e| unanswered(&opts, &opts.window, e))?;
    if let Some(path) = &opts.save_baseline {
        let style = report::Style { color: false, csv_section: report::CsvSection::Totals };
        report::write_atomic(path, &report::render(&current.0, report::Format::Json, style)?)?;
    }
    let current = current.1;
    let previous;
    let (reference, info) = match (&file, &opts.baseline) {
        (Some(BaselineFile::Digest(d)), Some(path)) => (
            Reference::Digest(d),
            BaselineInfo { kind: "file", description: format!("{} ({})", path.display(), d.window_phrase()) },
        ),
        (Some(BaselineFile::Legacy(l)), Some(path)) => (
            Reference::Legacy(l),
            BaselineInfo {
                kind: "legacy",
                description: format!(
                    "{} (regression-check.ts baseline {:?}, captured {})",
                    path.display(),
                    l.tag,
                    l.captured_at
                ),
            },
        ),
        _ => {
            let window = opts.window.previous();
            previous = digest_of(&window, &opts).map_err(|e| unanswered(&opts, &window, e))?.1;
            let description = format!("the previous window, {}", previous.window_phrase());
            (Reference::Digest(&previous), BaselineInfo { kind: "previous", description })
        }
    };
    let verdict = gate::evaluate(&current, reference, info, &opts.policy, opts.top);
    if !opts.quiet {
        for w in &verdict.warnings {
            eprintln!("warning: {}", crate::config::scrub(w));
        }
    }
    let written = publish(&opts.outputs, &verdict);
    if let Some(format) = opts.outputs.stdout {
        let color = format == GateFormat::Table && super::stdout_wants_color();
        super::print(&verdict::render(&verdict, format, color))?;
    }
    match written {
        // An output that could not be written fails a passing gate (exit 2: the CI's set-up
        // is wrong). A gate that did not pass keeps its own code, the one the files that were
        // written give as `exit_code`: a regression or missing data is the news to act on.
        Err(e) if verdict.exit_code() == crate::error::OK => Err(e),
        Err(e) => {
            for line in crate::error::lines(&e) {
                eprintln!("error: {}", crate::config::scrub(&line));
            }
            Ok(verdict.exit_code())
        }
        Ok(()) => Ok(verdict.exit_code()),
    }
}

/// Compare like with like: a baseline of one agent against all of them (or the reverse)
/// would pass or fail on the filter, not on the cost. The old script's files cover
/// everything.
fn same_filters(file: &BaselineFile, path: &Path, now: &[String]) -> Result<()> {
    use crate::source::filter::phrase;
    match file {
        BaselineFile::Digest(d) if d.filter_flags() != now => bail!(
            "baseline file {} was saved with {}, this window is read with {}: give the same --agent, --model \
             and --experiment as the baseline (or save a baseline with these)",
            path.display(),
            phrase(&d.filter_flags()),
            phrase(now)
        ),
        BaselineFile::Legacy(_) if !now.is_empty() => bail!(
            "baseline file {} (regression-check.ts) covers every agent and model, this window is read with {}: \
             gate it without filters",
            path.display(),
            phrase(now)
        ),
        _ => Ok(()),
    }
}

/// When the data of `window` could not be had (a source down, a partial answer: exit 3),
/// the `--output` files still say so, as a verdict of insufficient data, so that CI has its
/// JUnit report. Standard output stays empty: the error is the answer. Returns `err`.
fn unanswered(opts: &GateOptions, window: &Window, err: anyhow::Error) -> anyhow::Error {
    if crate::error::exit_code(&err) != crate::error::UNAVAILABLE {
        return err;
    }
    let detail = crate::config::scrub(&crate::error::lines(&err).join("; ")).into_owned();
    let verdict = Verdict {
        window: opts.window.describe(),
        window_start: opts.window.start_rfc3339(),
        window_end: opts.window.end_rfc3339(),
        baseline: BaselineInfo { kind: "none", description: "not compared: the data could not be read".into() },
        checks: vec![gate::Check {
            subject: Some(window.describe()),
            ..gate::Check::insufficient("data.read", "The data could be read", "read", detail)
        }],
        movers: Vec::new(),
        over_budget: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
        // A source that failed is never allowed past, even with --allow-missing.
        allow_missing: false,
    };
    // A CI run on GitHub shows the failure in its summary and annotations as well.
    match publish(&opts.outputs, &verdict) {
        Ok(()) => err,
        Err(write) => crate::error::Several(vec![err, write]).into(),
    }
}

/// The verdict's `--output` files and GitHub's step summary and annotations: every one
/// written that can be, the errors of the others together.
fn publish(outputs: &Outputs<GateFormat>, verdict: &Verdict) -> Result<()> {
    let written = outputs.write_files(|format| Ok(verdict::render(verdict, format, false)));
    crate::error::all([written.err(), github(verdict).err()].into_iter().flatten().collect())
}

/// A window's digest, as computed and as the gate reads it.
fn digest_of(window: &Window, opts: &GateOptions) -> Result<(crate::digest::Digest, DigestFile)> {
    let query = Query {
        window: window.clone(),
        previous: None,
        top: opts.top,
        variant_spread: opts.policy.needs_variant_spread(),
    };
    let digest = source::digest(&query, &opts.sources)?;
    let file = DigestFile::of(&digest)?;
    Ok((digest, file))
}

/// On GitHub Actions: the Markdown verdict in the job summary, and an annotation per
/// failed or undecided check. The annotations are printed even when the summary cannot be
/// written (its error is returned, as an output's).
fn github(verdict: &Verdict) -> Result<()> {
    let summary = match std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        Some(path) => append_summary(verdict, &PathBuf::from(path)),
        None => Ok(()),
    };
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        // Workflow commands are read from either stream; stderr keeps stdout a clean report.
        for check in &verdict.checks {
            let level = match check.outcome {
                Outcome::Fail => "error",
                o if o.is_undecided() => "warning",
                _ => continue,
            };
            let title = escape_property(&format!("obsctl gate: {}", check.name));
            eprintln!("::{level} title={title}::{}", crate::config::scrub(&escape_message(&verdict::sentence(check))));
        }
    }
    summary
}

fn append_summary(verdict: &Verdict, path: &Path) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open GITHUB_STEP_SUMMARY file {}", path.display()))?;
    file.write_all(&crate::config::scrub_bytes(&verdict::render(verdict, GateFormat::Markdown, false)))
        .with_context(|| format!("cannot write GITHUB_STEP_SUMMARY file {}", path.display()))
}

fn escape_message(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_message(s).replace(':', "%3A").replace(',', "%2C")
}
