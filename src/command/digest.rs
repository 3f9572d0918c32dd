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
    }
    let style = Style { color: false, csv_section: opts.csv_section };
    opts.outputs.write_files(|format| report::render(&digest, format, style))?;
    if let Some(format) = opts.outputs.stdout {
        let color = format == Format::Table && super::stdout_wants_color();
        super::print(&report::render(&digest, format, Style { color, csv_section: opts.csv_section })?)?;
    }
    Ok(error::OK)
}
