//! `obsctl digest`: the report for a window, compared with the window before it.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use super::Outputs;
use crate::cli::DigestArgs;
use crate::error;
use crate::report::{self, CsvSection, Format, Style};
use crate::source::{self, Query, Sources};

pub struct DigestOptions {
    pub query: Query,
    pub sources: Sources,
    pub outputs: Outputs<Format>,
    pub csv_section: CsvSection,
    pub quiet: bool,
}

impl DigestOptions {
    pub fn from_args(args: DigestArgs, now: DateTime<Utc>) -> Result<DigestOptions> {
        let window = super::window(&args.window, now)?;
        let previous = (!args.no_compare).then(|| window.previous());
        let outputs = Outputs::for_report(&args.output, args.format, Format::parse, &window, now, args.noise.verbose)?;
        if args.csv_section.is_some() && !outputs.writes(Format::Csv) {
            bail!("--csv-section chooses the table of CSV output, and no output is CSV: add --format csv (or --output csv=FILE)");
        }
        let file = super::load_config(args.source.config.as_deref())?;
        let sources = super::sources(&args.source, &file, &window, args.noise.quiet, args.noise.verbose)?;
        Ok(DigestOptions {
            query: Query { window, previous, top: args.top, variant_spread: false },
            sources,
            outputs,
            csv_section: args.csv_section.unwrap_or(CsvSection::ByModel),
            quiet: args.noise.quiet,
        })
    }
}

pub fn run(opts: DigestOptions) -> Result<u8> {
    let digest = source::digest(&opts.query, &opts.sources)?;
    if !opts.quiet {
        for w in &digest.warnings {
            eprintln!("warning: {}", crate::config::scrub(w));
        }
        if opts.outputs.writes(Format::Csv) {
            for note in csv_notices(&digest, opts.csv_section) {
                eprintln!("warning: {}", crate::config::scrub(&note));
            }
        }
    }
    let style = Style { color: false, csv_section: opts.csv_section };
    opts.outputs.write_files(|format| report::render(&digest, format, style))?;
    if let Some(format) = opts.outputs.stdout {
        let color = format == Format::Table && super::stdout_wants_color();
        super::print(&report::render(&digest, format, Style { color, csv_section: opts.csv_section })?)?;
    }
    Ok(error::OK)
}

/// What the other formats say in the report and a CSV table has no room for: that a source
/// fell back (and why), and that the table's section has no source (its header only would
/// read as "nothing happened").
fn csv_notices(digest: &crate::digest::Digest, section: CsvSection) -> Vec<String> {
    use crate::digest::Section;
    let mut notes = Vec::new();
    if digest.sources.iter().any(|p| p.fallback_reason.is_some()) {
        notes.push(format!("sources: {}", report::text::sources_label(digest)));
    }
    let shown = match section {
        CsvSection::ByVariant => Some(Section::ByVariant),
        CsvSection::BySession => Some(Section::BySession),
        _ => None,
    };
    if let Some(p) = digest.sources.iter().find(|p| Some(p.section) == shown && p.source == "none") {
        let why = p.fallback_reason.as_deref().unwrap_or("no source answered");
        notes.push(format!("{} is unavailable ({why}): the CSV holds its header only", p.section.name()));
    }
    notes
}
