//! Which files to read: `--logs` paths expanded into telemetry files, and rotated files
//! that cannot hold an event of the span left out by the date in their name.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{Duration, NaiveDate};

use crate::window::{local_midnight, parse_iso_week, Nanos, NANOS_PER_SEC};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub gzip: bool,
    /// Named like the file the gateway appends to (`events.jsonl`): `copytruncate` rotation
    /// may truncate it at any time, even after hours without an event.
    pub live: bool,
}

impl LogFile {
    fn new(path: PathBuf) -> LogFile {
        let live = path.file_name().and_then(|n| n.to_str()).and_then(Rotation::of) == Some(Rotation::Live);
        LogFile { gzip: has_gz_suffix(&path), live, path }
    }
}

/// What the `--logs` paths hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// The files to read, in name order.
    pub files: Vec<LogFile>,
    /// Telemetry files left out: the date in their name cannot be in the span.
    pub pruned: Vec<PathBuf>,
    /// Other entries of the directories, not telemetry by their name.
    pub ignored: Vec<PathBuf>,
    /// Files not read because another one holds the same events, each with why: the same
    /// file named twice (by two `--logs`, a link), `X.gz` beside `X`, or `X` beside `X.gz`.
    pub doubles: Vec<Double>,
}

/// A file left out, and why: another one holds its events.
pub type Double = (PathBuf, String);

/// The files under `paths` whose events may fall in `[span.0, span.1)`, in name order.
/// A path naming a file is always read; a directory contributes `events.jsonl` and its
/// rotations `events.YYYY-MM-DD.jsonl` and `events.YYYY-Www.jsonl`, any of them `.gz`.
pub fn discover(paths: &[PathBuf], span: (Nanos, Nanos)) -> Result<Discovery> {
    let Discovery { mut files, mut pruned, mut ignored, .. } = Discovery::default();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read --logs {}", path.display()))?;
        if meta.is_file() {
            files.push(LogFile::new(path.clone()));
            continue;
        }
        if !meta.is_dir() {
            bail!(
                "--logs {} is neither a file nor a directory (a pipe or a device): obsctl reads files",
                path.display()
            );
        }
        let mut found = 0;
        let entries = std::fs::read_dir(path).with_context(|| format!("cannot list --logs {}", path.display()))?;
        let mut names: Vec<_> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list --logs {}", path.display()))?;
        names.sort();
        for file in names {
            let Some(rotation) = file.file_name().and_then(|n| n.to_str()).and_then(Rotation::of) else {
                ignored.push(file);
                continue;
            };
            found += 1;
            // Opening a FIFO would wait for a writer forever; a broken link fails when
            // opened, with its own message.
            if std::fs::metadata(&file).is_ok_and(|m| !m.is_file()) {
                bail!("{} is not a regular file (a directory, pipe or device): obsctl reads files", file.display());
            }
            if rotation.may_hold(span) {
                files.push(LogFile::new(file));
            } else {
                pruned.push(file);
            }
        }
        if found == 0 {
            bail!(
                "no telemetry files in --logs {}: expected events.jsonl or rotated events.YYYY-MM-DD.jsonl / events.YYYY-Www.jsonl (optionally .gz)",
                path.display()
            );
        }
    }
    let (files, doubles) = read_once(files)?;
    Ok(Discovery { files, pruned, ignored, doubles })
}

/// Each file once: a file reached by two paths (two `--logs`, a symlink) is read by the first,
/// and `X.gz` beside `X` that holds `X`'s lines (what `gzip -k` leaves, or a rotation caught
/// while it compresses, the `.gz` then incomplete) is left for `X`, and `X` that is the
/// beginning of `X.gz` (an unfinished `gunzip -k`) is left for the `.gz`. Either way the events
/// would count twice; the reports say which file was left out. Two that begin alike and then
/// differ are an error: which one is right cannot be told.
/// What makes two paths one file: its device and inode where there are such (a hard link
/// has no path of its own to resolve), else its canonical path.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    std::fs::canonicalize(path).ok()
}

fn read_once(files: Vec<LogFile>) -> Result<(Vec<LogFile>, Vec<Double>)> {
    // By file identity: two `--logs` naming one file, a symlink or a hard link to it. A path
    // that cannot be resolved is kept, and fails when read with its own message.
    let mut first_of: std::collections::HashMap<FileId, PathBuf> = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(files.len());
    let mut doubles = Vec::new();
    for file in files {
        if let Some(id) = file_id(&file.path) {
            if let Some(first) = first_of.get(&id) {
                doubles.push((file.path.clone(), format!("the same file as {}", first.display())));
                continue;
            }
            first_of.insert(id, file.path.clone());
        }
        kept.push(file);
    }
    let plain: Vec<PathBuf> = kept.iter().filter(|f| !f.gzip).map(|f| f.path.clone()).collect();
    let mut left_out = Vec::new();
    for f in kept.iter().filter(|f| f.gzip) {
        let unzipped = f.path.with_extension("");
        if !plain.contains(&unzipped) {
            continue;
        }
        match overlap(&f.path, &unzipped) {
            Overlap::None => {}
            Overlap::GzInPlain => left_out.push((
                f.path.clone(),
                format!(
                    "it holds the lines of {} beside it, which is read (gzip -k, or a rotation still compressing)",
                    unzipped.display()
                ),
            )),
            Overlap::PlainInGz => left_out.push((
                unzipped.clone(),
                format!(
                    "its lines are the beginning of {} beside it, which is read (an unfinished gunzip -k or zcat)",
                    f.path.display()
                ),
            )),
            Overlap::Diverge(bytes) => bail!(
                "{} and {} begin with the same {bytes} bytes and then differ: one is a damaged copy of the other, \
                 whose events would count twice; move the wrong one out of --logs",
                unzipped.display(),
                f.path.display()
            ),
        }
    }
    kept.retain(|f| !left_out.iter().any(|(path, _)| *path == f.path));
    doubles.extend(left_out);
    Ok((kept, doubles))
}

/// How `X.gz` and `X` beside it share their lines.
#[derive(Debug, PartialEq, Eq)]
enum Overlap {
    /// Not one whole line in common at the start (or one cannot be read): both are read.
    None,
    /// The `.gz` uncompresses to `X` or to a beginning of it (a `.gz` still being written).
    GzInPlain,
    /// `X` is a beginning of what the `.gz` holds (a decompression cut short).
    PlainInGz,
    /// The same first lines (this many bytes), then different ones.
    Diverge(u64),
}

/// Compares the two as streams, stopping at the first difference.
fn overlap(gz: &Path, plain: &Path) -> Overlap {
    use std::io::Read;
    let (Ok(gz), Ok(plain)) = (std::fs::File::open(gz), std::fs::File::open(plain)) else {
        return Overlap::None;
    };
    let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(gz));
    let mut plain = std::io::BufReader::new(plain);
    let (mut a, mut b) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    let mut same = 0u64;
    // Lines begin alike (`{"type":"`): only a whole line in common makes a copy.
    let mut a_line_in_common = false;
    loop {
        let n = match gz.read(&mut a) {
            // Cut short: a copy so far is a copy being written.
            Ok(0) | Err(_) => return if same > 0 { Overlap::GzInPlain } else { Overlap::None },
            Ok(n) => n,
        };
        let Ok(m) = read_up_to(&mut plain, &mut b[..n]) else { return Overlap::None };
        let equal = a[..m].iter().zip(&b[..m]).take_while(|(x, y)| x == y).count();
        a_line_in_common |= a[..equal].contains(&b'\n');
        if equal < m {
            return if a_line_in_common { Overlap::Diverge(same + equal as u64) } else { Overlap::None };
        }
        same += m as u64;
        if m < n {
            return if same > 0 { Overlap::PlainInGz } else { Overlap::None };
        }
    }
}

/// Fills `buf` unless the reader ends first; the bytes read.
fn read_up_to(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Named almost like telemetry, but not read: a rotation scheme obsctl does not know
/// (`events.jsonl.1` from logrotate, `events-2026-11-17.jsonl`).
pub fn looks_like_telemetry(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.contains(".jsonl") || (name.starts_with("events") && path.is_file())
}

fn has_gz_suffix(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// What a file's name says about the time its events can have.
#[derive(Debug, PartialEq, Eq)]
enum Rotation {
    /// `events.jsonl`: the live file, anything.
    Live,
    /// `events.2026-11-20.jsonl`: that day.
    Day(NaiveDate),
    /// `events.2026-W47.jsonl`: that ISO week.
    Week(NaiveDate),
}

impl Rotation {
    fn of(name: &str) -> Option<Rotation> {
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        let middle = stem.strip_prefix("events")?.strip_suffix(".jsonl")?;
        if middle.is_empty() {
            return Some(Rotation::Live);
        }
        let label = middle.strip_prefix('.')?;
        if let Ok(day) = NaiveDate::parse_from_str(label, "%Y-%m-%d") {
            return Some(Rotation::Day(day));
        }
        if label.len() == 8 && label.as_bytes()[5] == b'W' {
            return parse_iso_week(label).ok().map(Rotation::Week);
        }
        None
    }

    /// A dated file holds its dates in some time zone we do not know: from 14 hours before
    /// its first UTC midnight (UTC+14) to 12 hours after its last (UTC−12).
    fn may_hold(&self, (start, end): (Nanos, Nanos)) -> bool {
        let (first, days) = match *self {
            Rotation::Live => return true,
            Rotation::Day(d) => (d, 1),
            Rotation::Week(monday) => (monday, 7),
        };
        let utc_midnight = |d: NaiveDate| local_midnight(d, chrono_tz::UTC).ok();
        let (Some(from), Some(to)) = (utc_midnight(first), utc_midnight(first + Duration::days(days))) else {
            return true;
        };
        let hour = 3600 * NANOS_PER_SEC;
        from - 14 * hour < end && start < to + 12 * hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(date: &str) -> Nanos {
        local_midnight(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(), chrono_tz::UTC).unwrap()
    }

    #[test]
    fn names() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(Rotation::of("events.jsonl"), Some(Rotation::Live));
        assert_eq!(Rotation::of("events.jsonl.gz"), Some(Rotation::Live));
        assert_eq!(Rotation::of("events.2026-11-20.jsonl"), Some(Rotation::Day(d("2026-11-20"))));
        assert_eq!(Rotation::of("events.2026-11-20.jsonl.gz"), Some(Rotation::Day(d("2026-11-20"))));
        assert_eq!(Rotation::of("events.2026-W47.jsonl.gz"), Some(Rotation::Week(d("2026-11-16"))));
        for other in [
            "notes.txt",
            "events.json",
            "events.2026-13-01.jsonl",
            "events.2026-W60.jsonl",
            "events.x.jsonl",
            "xevents.jsonl",
        ] {
            assert_eq!(Rotation::of(other), None, "{other}");
        }
    }

    #[test]
    fn the_last_day_of_thirty_daily_files_reads_only_the_files_that_can_hold_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        for day in 1..=30 {
            let name = format!("events.2026-11-{day:02}.jsonl{}", if day % 3 == 0 { ".gz" } else { "" });
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        std::fs::write(dir.path().join("events.jsonl"), b"").expect("write");
        std::fs::write(dir.path().join("events-2026-11-30.jsonl"), b"").expect("write");
        let Discovery { files, pruned, ignored, doubles } =
            discover(&[dir.path().to_path_buf()], (ns("2026-11-30"), ns("2026-12-01"))).expect("discover");
        assert_eq!(ignored, [dir.path().join("events-2026-11-30.jsonl")], "not a rotation name");
        let names: Vec<_> = files.iter().map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        // The day itself, the day before (UTC+14 to UTC-12 slack) and the live file.
        assert_eq!(names, ["events.2026-11-29.jsonl", "events.2026-11-30.jsonl.gz", "events.jsonl"]);
        assert_eq!(pruned.len(), 28);
        assert!(doubles.is_empty());
    }

    #[test]
    fn dated_files_are_read_only_when_they_can_hold_the_span() {
        let last_day = (ns("2026-11-30"), ns("2026-12-01"));
        let day = |s: &str| Rotation::Day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert!(day("2026-11-30").may_hold(last_day));
        // Its neighbours can hold events of the day in zones far from UTC.
        assert!(day("2026-11-29").may_hold(last_day));
        assert!(day("2026-12-01").may_hold(last_day));
        assert!(!day("2026-11-28").may_hold(last_day));
        assert!(!day("2026-12-02").may_hold(last_day));
        let w47 = Rotation::of("events.2026-W47.jsonl").unwrap();
        assert!(w47.may_hold((ns("2026-11-22"), ns("2026-11-23"))));
        assert!(!w47.may_hold((ns("2026-11-24"), ns("2026-11-25"))));
        assert!(Rotation::Live.may_hold(last_day));
    }
}
