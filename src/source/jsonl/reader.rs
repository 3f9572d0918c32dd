//! Reads telemetry files in chunks of whole lines and parses them on every core.
//!
//! One thread reads (and inflates `.gz`) sequentially into fixed-size buffers cut at a line
//! boundary; worker threads parse the buffers and add the events to their own `Tally`.
//! Buffers go back to the reader once parsed, so memory is a few buffers however large the
//! files are. Line numbers for warnings are put back together at the end from each
//! chunk's line count.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

use super::files::LogFile;
use super::line::parse_line;
use super::tally::Tally;

/// Bytes handed to a worker at a time.
const CHUNK: usize = 2 << 20;
/// A line longer than this is skipped without being held in memory: no telemetry event
/// is that large, and a runaway line must not take the machine's memory.
pub const MAX_LINE: usize = 16 << 20;

/// What reading one file found, for warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub lines: u64,
    pub skipped: u64,
    /// The first skipped line: its number (from 1) and why.
    pub first_skip: Option<(u64, String)>,
}

struct Chunk {
    file: usize,
    seq: u64,
    data: Vec<u8>,
    /// The file ended without a newline after the chunk's last line.
    unterminated: bool,
    /// Stands for one line over `MAX_LINE`, already discarded.
    oversized: bool,
}

#[derive(Default)]
struct ChunkStats {
    file: usize,
    seq: u64,
    lines: u64,
    skipped: u64,
    first_skip: Option<(u64, String)>,
}

/// Reads `files` into `tally` with `threads` parsing threads (1: all on this thread).
pub fn scan(files: &[LogFile], threads: usize, tally: Tally) -> Result<(Tally, Vec<FileReport>)> {
    let (tally, stats) = if threads <= 1 { scan_here(files, tally)? } else { scan_parallel(files, threads, tally)? };
    Ok((tally, reports(files, stats)))
}

fn scan_here(files: &[LogFile], mut tally: Tally) -> Result<(Tally, Vec<ChunkStats>)> {
    let mut stats = Vec::new();
    let mut buf = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let mut chunks = ChunkReader::open(file, index)?;
        while let Some(chunk) = chunks.next(buf).with_context(|| read_error(file))? {
            stats.push(parse_chunk(&chunk, &mut tally));
            buf = chunk.data;
        }
        buf = Vec::new();
    }
    Ok((tally, stats))
}

fn scan_parallel(files: &[LogFile], threads: usize, tally: Tally) -> Result<(Tally, Vec<ChunkStats>)> {
    let (to_workers, work) = mpsc::sync_channel::<Chunk>(threads);
    let work = Mutex::new(work);
    let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (work, recycle, mut tally) = (&work, recycle.clone(), tally.empty_like());
                scope.spawn(move || {
                    let mut stats = Vec::new();
                    while let Some(chunk) = next_chunk(work) {
                        stats.push(parse_chunk(&chunk, &mut tally));
                        // The reader may be gone after an error; the buffer is then dropped.
                        let _ = recycle.send(chunk.data);
                    }
                    (tally, stats)
                })
            })
            .collect();
        drop(recycle);
        let read = feed(files, &to_workers, &recycled);
        drop(to_workers);
        let mut merged = tally;
        let mut stats = Vec::new();
        for worker in workers {
            let (t, s) = match worker.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            merged.merge(t);
            stats.extend(s);
        }
        read.map(|()| (merged, stats))
    })
}

fn next_chunk(work: &Mutex<Receiver<Chunk>>) -> Option<Chunk> {
    // A poisoned lock means another worker panicked; the scope re-raises that panic.
    work.lock().ok()?.recv().ok()
}

fn feed(files: &[LogFile], to_workers: &SyncSender<Chunk>, recycled: &Receiver<Vec<u8>>) -> Result<()> {
    for (index, file) in files.iter().enumerate() {
        let mut chunks = ChunkReader::open(file, index)?;
        loop {
            let mut buf = recycled.try_recv().unwrap_or_default();
            if buf.capacity() > 4 * CHUNK {
                buf = Vec::new(); // left big by a long line: give the memory back
            }
            match chunks.next(buf).with_context(|| read_error(file))? {
                Some(chunk) => {
                    if to_workers.send(chunk).is_err() {
                        return Ok(()); // workers are gone: a panic, re-raised on join
                    }
                }
                None => break,
            }
        }
    }
    Ok(())
}

fn read_error(file: &LogFile) -> String {
    if file.gzip {
        format!("cannot read {} (a broken or truncated gzip file?)", file.path.display())
    } else {
        format!("cannot read {}", file.path.display())
    }
}

fn parse_chunk(chunk: &Chunk, tally: &mut Tally) -> ChunkStats {
    let mut stats = ChunkStats { file: chunk.file, seq: chunk.seq, ..Default::default() };
    if chunk.oversized {
        stats.lines = 1;
        stats.skipped = 1;
        stats.first_skip = Some((0, format!("line longer than {} MiB", MAX_LINE >> 20)));
        return stats;
    }
    let data = &chunk.data[..];
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        let last = end == data.len();
        start = end + 1;
        stats.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(line) {
            Ok(event) => tally.add(&event),
            Err(reason) => {
                stats.skipped += 1;
                if stats.first_skip.is_none() {
                    let reason = if last && chunk.unterminated {
                        format!("unterminated last line (file still being written?): {reason}")
                    } else {
                        reason
                    };
                    stats.first_skip = Some((stats.lines - 1, reason));
                }
            }
        }
    }
    stats
}

/// Per-file totals, with chunk-relative line numbers made absolute.
fn reports(files: &[LogFile], mut stats: Vec<ChunkStats>) -> Vec<FileReport> {
    stats.sort_by_key(|s| (s.file, s.seq));
    let mut reports: Vec<FileReport> =
        files.iter().map(|f| FileReport { path: f.path.clone(), ..Default::default() }).collect();
    for s in stats {
        let report = &mut reports[s.file];
        if report.first_skip.is_none() {
            report.first_skip = s.first_skip.map(|(line, why)| (report.lines + line + 1, why));
        }
        report.lines += s.lines;
        report.skipped += s.skipped;
    }
    reports
}

/// Cuts one file into chunks that end at a line boundary.
struct ChunkReader {
    input: Box<dyn Read + Send>,
    file: usize,
    seq: u64,
    /// The start of a line that the previous chunk cut.
    carry: Vec<u8>,
    eof: bool,
}

impl ChunkReader {
    fn open(file: &LogFile, index: usize) -> Result<ChunkReader> {
        let handle = File::open(&file.path).with_context(|| format!("cannot open {}", file.path.display()))?;
        let input: Box<dyn Read + Send> = if file.gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(256 << 10, handle)))
        } else {
            Box::new(handle)
        };
        Ok(ChunkReader { input, file: index, seq: 0, carry: Vec::new(), eof: false })
    }

    fn next(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Chunk>> {
        buf.clear();
        buf.append(&mut self.carry);
        loop {
            if !self.eof && buf.len() < CHUNK {
                let want = (CHUNK - buf.len()) as u64;
                // `read_to_end` on a `take` stops early only at the end of the input.
                if ((&mut self.input).take(want).read_to_end(&mut buf)? as u64) < want {
                    self.eof = true;
                }
            }
            if let Some(cut) = memchr::memrchr(b'\n', &buf) {
                self.carry.extend_from_slice(&buf[cut + 1..]);
                buf.truncate(cut + 1);
                return Ok(Some(self.chunk(buf, false, false)));
            }
            if self.eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.chunk(buf, true, false)));
            }
            // No newline in a whole chunk: one long line. Keep it while it may be an event.
            if buf.len() < MAX_LINE {
                let more = (buf.len() as u64).min((MAX_LINE - buf.len()) as u64);
                if ((&mut self.input).take(more).read_to_end(&mut buf)? as u64) < more {
                    self.eof = true;
                }
                continue;
            }
            self.discard_rest_of_line()?;
            buf.clear();
            return Ok(Some(self.chunk(buf, false, true)));
        }
    }

    /// Drops bytes up to and including the next newline, keeping what follows it.
    fn discard_rest_of_line(&mut self) -> io::Result<()> {
        let mut scratch = vec![0u8; 64 << 10];
        loop {
            let n = self.input.read(&mut scratch)?;
            if n == 0 {
                self.eof = true;
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', &scratch[..n]) {
                self.carry.extend_from_slice(&scratch[i + 1..n]);
                return Ok(());
            }
        }
    }

    fn chunk(&mut self, data: Vec<u8>, unterminated: bool, oversized: bool) -> Chunk {
        self.seq += 1;
        Chunk { file: self.file, seq: self.seq, data, unterminated, oversized }
    }
}
