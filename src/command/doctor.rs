//! `obsctl doctor`: the pipeline's health. The same sources, config and auth as `digest`;
//! [`crate::doctor`] checks them, a renderer writes the findings, and the exit code says
//! whether an error-level finding was made (1) or nothing could be checked (3).

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use super::Outputs;
use crate::cli::{DoctorArgs, DoctorFormat, SourceArg};
use crate::doctor::{self, Checkup, Need};
use crate::report::doctor as render;
use crate::window::to_nanos;

/// The window when none is asked for: a health check wants the recent past.
pub const DEFAULT_LAST: &str = "7d";

pub struct DoctorOptions {
    pub checkup: Checkup,
    pub outputs: Outputs<DoctorFormat>,
}

impl DoctorOptions {
    pub fn from_args(mut args: DoctorArgs, now: DateTime<Utc>) -> Result<DoctorOptions> {
        let w = &mut args.window;
        if w.week.is_none() && w.last.is_none() && w.since.is_none() {
            w.last = Some(DEFAULT_LAST.to_string());
        }
        let window = super::window(&args.window, now)?;
        let outputs =
            Outputs::for_report(&args.output, args.format, DoctorFormat::parse, &window, now, args.noise.verbose)?;
        let file = super::load_config(args.source.config.as_deref())?;
        let sources = super::sources(&args.source, &file, &window, args.noise.quiet, args.noise.verbose)?;
        let gateway_jobs: Vec<String> =
            args.gateway_job.split('|').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect();
        if gateway_jobs.is_empty() {
            bail!("--gateway-job needs at least one name");
        }
        let s = &args.source;
        // A server that was pointed at, or files that were named, must answer; the
        // defaults may simply not be set up.
        let need = |named: bool| if named { Need::Required } else { Need::Optional };
        let (prometheus, loki, jsonl) = match s.source {
            SourceArg::Auto => (
                Some(need(s.prometheus_url.is_some() || file.prometheus.url.is_some())),
                Some(need(s.loki_url.is_some() || file.loki.url.is_some())),
                Some(need(!s.logs.is_empty())),
            ),
            SourceArg::Prometheus => (Some(Need::Required), None, None),
            SourceArg::Loki => (None, Some(Need::Required), None),
            SourceArg::Jsonl => (None, None, Some(Need::Required)),
        };
        let checkup = Checkup { window, sources, prometheus, loki, jsonl, gateway_jobs, now: to_nanos(now)? };
        Ok(DoctorOptions { checkup, outputs })
    }
}

pub fn run(opts: DoctorOptions) -> Result<u8> {
    let report = doctor::run(&opts.checkup);
    opts.outputs.write_files(|format| Ok(render::render(&report, format, false)))?;
    if let Some(format) = opts.outputs.stdout {
        let color = format == DoctorFormat::Table && super::stdout_wants_color();
        super::print(&render::render(&report, format, color))?;
    }
    Ok(report.exit_code())
}
