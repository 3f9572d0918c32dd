//! Parses the command line, runs one command, maps the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use obsctl::cli::{Cli, Command};
use obsctl::command::{digest, doctor, gate, rules};
use obsctl::error;

fn main() -> ExitCode {
    // A panic is a bug, but its message must not carry a secret either.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("obsctl: internal error, please report it: {}", obsctl::config::scrub(&info.to_string()));
    }));
    let cli = Cli::parse();
    let now = chrono::Utc::now();
    let result = match cli.command {
        Command::Digest(args) => digest::DigestOptions::from_args(*args, now).and_then(digest::run),
        Command::Gate(args) => gate::GateOptions::from_args(*args, now).and_then(gate::run),
        Command::Rules(args) => rules::RulesOptions::from_args(*args).and_then(rules::run),
        Command::Doctor(args) => doctor::DoctorOptions::from_args(*args, now).and_then(doctor::run),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "obsctl", &mut std::io::stdout());
            Ok(error::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            for line in error::lines(&err) {
                eprintln!("error: {}", obsctl::config::scrub(&line));
            }
            ExitCode::from(error::exit_code(&err))
        }
    }
}
