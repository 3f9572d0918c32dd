//! Parses the command line, runs one command, maps the outcome to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};

use obsctl::cli::{Cli, Command};
use obsctl::error;
use obsctl::options::DigestOptions;
use obsctl::report::{self, Format, Style};
use obsctl::source;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Digest(args) => DigestOptions::from_args(*args, chrono::Utc::now()).and_then(digest),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "obsctl", &mut std::io::stdout());
            Ok(error::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", error::describe(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

fn digest(opts: DigestOptions) -> Result<u8> {
    let digest = source::digest(&opts.query, opts.source, &opts)?;
    if !opts.quiet {
        for w in &digest.warnings {
            eprintln!("warning: {w}");
        }
    }
    for (format, path) in &opts.outputs {
        let style = Style { color: false, csv_section: opts.csv_section };
        report::write_atomic(path, &report::render(&digest, *format, style)?)?;
    }
    if let Some(format) = opts.stdout {
        let stdout = std::io::stdout();
        let color = format == Format::Table && stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let bytes = report::render(&digest, format, Style { color, csv_section: opts.csv_section })?;
        let mut out = stdout.lock();
        match out.write_all(&bytes).and_then(|()| out.flush()) {
            // A closed pipe (`obsctl digest | head`) is the reader's choice, not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.context("cannot write to standard output")?,
        }
    }
    Ok(error::OK)
}
