//! Turns a `Digest` into bytes: a terminal table, Markdown, JSON or CSV; a gate's
//! verdict ([`verdict`]) into a table, Markdown, JSON or JUnit; and doctor's findings
//! ([`doctor`]) into a table, Markdown or JSON.
//!
//! A renderer reads the digest and nothing else. The two human formats share what they
//! say (`text.rs` builds titled tables of strings); each only decides how it looks.
//! Files are written atomically, so a cron job never leaves half a report behind.

mod csv;
pub mod doctor;
pub(crate) mod json;
pub(crate) mod markdown;
mod table;
pub(crate) mod text;
pub mod verdict;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::digest::Digest;

/// `s` with every control character spelled out (`\u{1b}`): a name from the data can then
/// neither move a terminal's cursor, colour it, nor break a table row across lines.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for a terminal (colour on a TTY unless NO_COLOR is set).
    Table,
    /// GitHub-flavoured Markdown, for cron reports and PR comments.
    Markdown,
    /// The stable `obsctl.digest/v1` schema.
    Json,
    /// One section (--csv-section), RFC 4180.
    Csv,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Format::from_str(name, true).ok()
    }
}

/// The table `--format csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum CsvSection {
    Totals,
    ByModel,
    ByAgent,
    ByVariant,
    BySession,
    Daily,
    Movers,
}

/// How to render, beyond the format itself.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
    pub csv_section: CsvSection,
}

pub fn render(digest: &Digest, format: Format, style: Style) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Table => table::render(digest, style.color).into_bytes(),
        Format::Markdown => markdown::render(digest).into_bytes(),
        Format::Json => json::render(digest)?,
        Format::Csv => csv::render(digest, style.csv_section)?,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename:
/// readers see the old file or the new one, never a part. Missing parent directories are
/// created first (`reports/2026-W47.md` in a fresh checkout). The file gets the mode a plain
/// write would give it: an existing file's own, else 0666 less the umask (a temporary file
/// alone would be 0600, which the `prometheus` or `loki` user could not read a rules file of).
///
/// What is not a regular file is written in place, not renamed over: a FIFO, a device
/// (`/dev/stdout`, `/dev/full`: as root a rename would replace the device node) or a socket.
/// A symlink to a regular file is followed, so that the link stays and its target changes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = || format!("cannot write {}", path.display());
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            let mut file = std::fs::OpenOptions::new().write(true).open(path).with_context(fail)?;
            file.write_all(&crate::config::scrub_bytes(bytes)).with_context(fail)
        }
        Ok(meta) if meta.is_file() && path.is_symlink() => {
            let target = std::fs::canonicalize(path).with_context(fail)?;
            write_renamed(&target, bytes)
        }
        _ => write_renamed(path, bytes),
    }
}

/// The temporary file and the rename of [`write_atomic`].
fn write_renamed(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let fail = || format!("cannot write {}", path.display());
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {} for {}", dir.display(), path.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".obsctl-");
    let existing = std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.permissions());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).with_context(fail)?;
    if let Some(mode) = existing {
        tmp.as_file().set_permissions(mode).with_context(fail)?;
    }
    tmp.write_all(&crate::config::scrub_bytes(bytes)).with_context(fail)?;
    tmp.as_file().sync_all().with_context(fail)?;
    tmp.persist(path).map_err(|e| e.error).with_context(fail)?;
    Ok(())
}
