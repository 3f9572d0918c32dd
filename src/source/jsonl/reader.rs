//! Reads telemetry files in chunks of whole lines and parses them on every core.
//!
//! Work items go to the parsing threads through one bounded channel, in file order:
//! - a plain file not modified for an hour is cut into fixed-size pieces that each worker
//!   maps itself (see [`super::piece`]): no thread copies data for another;
//! - anything else — the live `events.jsonl`, a file modified within the hour, a `.gz`
//!   file — is one stream: this thread reads (and inflates) it into buffers cut at a line
//!   boundary, and the workers parse those. Buffers go back to this thread once parsed.
//!
//! Each worker adds events to its own collector ([`Collect`]: the digest's `Tally`, or
//! doctor's survey); they are merged at the end. Memory is a few buffers per thread however
//! large the files are. Line numbers for warnings are put back together at the end from
//! each item's line count. This thread also drives the progress bar, once per item.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

use super::files::LogFile;
use super::piece::{self, grow, MappedFile, Piece};
use super::progress::Progress;
use crate::event::{parse_line, Event};

/// Bytes of a stream (`.gz`) handed to a worker at a time.
const CHUNK: usize = 2 << 20;
/// Bytes of a plain file a worker takes at a time: enough to make the hand-over and the
/// release of a mapped piece's pages rare (1 GB: 1,000 pieces), few enough to share the
/// work evenly and keep resident memory small.
const PIECE: u64 = 1 << 20;
/// A line longer than this is skipped without being held in memory: no telemetry event
/// is that large, and a runaway line must not take the machine's memory.
pub const MAX_LINE: usize = 16 << 20;

/// What the events of a scan are added to: the digest's tally, or another survey of them
/// (`obsctl doctor`'s). Each parsing thread fills its own, and they are merged at the end.
pub trait Collect: Send + Sized {
    fn add(&mut self, event: &Event<'_>);
    /// An empty one of the same kind, for another thread.
    fn empty_like(&self) -> Self;
    fn merge(&mut self, other: Self);
}

impl Collect for super::tally::Tally {
    fn add(&mut self, event: &Event<'_>) {
        super::tally::Tally::add(self, event);
    }

    fn empty_like(&self) -> Self {
        super::tally::Tally::empty_like(self)
    }

    fn merge(&mut self, other: Self) {
        super::tally::Tally::merge(self, other);
    }
}

/// What reading one file found, for warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub lines: u64,
    pub skipped: u64,
    /// The first skipped line: its number (from 1) and why.
    pub first_skip: Option<(u64, String)>,
    /// The first line with a token count of [`HUGE_COUNT`] or more (from 1): where to look
    /// when the sums overflow.
    pub first_huge: Option<u64>,
}

/// A token count no call has: 2^53, past which JSON numbers are not exact in most readers.
pub const HUGE_COUNT: u64 = 1 << 53;

/// Lines of a stream, read by this thread.
struct Chunk {
    file: usize,
    seq: u64,
    /// The lines are `data[..len]`; the rest is spare room kept for the next read.
    data: Vec<u8>,
    len: usize,
    /// The file ended without a newline after the chunk's last line.
    unterminated: bool,
    /// Stands for one line over `MAX_LINE`, already discarded.
    oversized: bool,
}

/// What a worker is given.
enum Work {
    /// A piece of a quiet plain file, for the worker to map.
    Piece {
        file: usize,
        seq: u64,
        input: Arc<MappedFile>,
        piece: Piece,
    },
    Chunk(Chunk),
}

#[derive(Default)]
struct ChunkStats {
    file: usize,
    seq: u64,
    lines: u64,
    skipped: u64,
    first_skip: Option<(u64, String)>,
    first_huge: Option<u64>,
}

/// Reads `files` into `tally` with `threads` parsing threads (1: all on this thread); a
/// progress bar may show on a terminal when `show_progress`.
pub fn scan<C: Collect>(
    files: &[LogFile],
    threads: usize,
    show_progress: bool,
    tally: C,
) -> Result<(C, Vec<FileReport>)> {
    scan_with(files, threads, PIECE, show_progress, tally)
}

fn scan_with<C: Collect>(
    files: &[LogFile],
    threads: usize,
    piece_len: u64,
    show_progress: bool,
    tally: C,
) -> Result<(C, Vec<FileReport>)> {
    let total = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    let mut progress = Progress::new(total, show_progress);
    let (tally, stats) = if threads <= 1 {
        let mut here = Here { tally, stats: Vec::new(), piece_buf: Vec::new(), spare: Vec::new(), files };
        feed(files, piece_len, &mut here, &mut progress)?;
        (here.tally, here.stats)
    } else {
        scan_parallel(files, threads, tally, |sink| feed(files, piece_len, sink, &mut progress))?
    };
    progress.finish();
    Ok((tally, reports(files, stats)))
}

/// Where `feed` sends the work.
trait Sink {
    /// Takes one item; `false` when no one will take more (every worker stopped).
    fn take(&mut self, work: Work) -> Result<bool>;
    /// A parsed stream buffer to read into again, or a new one.
    fn spare(&mut self) -> Vec<u8>;
}

/// Everything on this thread (`--threads 1`).
struct Here<'a, C> {
    tally: C,
    stats: Vec<ChunkStats>,
    piece_buf: Vec<u8>,
    spare: Vec<u8>,
    files: &'a [LogFile],
}

impl<C: Collect> Sink for Here<'_, C> {
    fn take(&mut self, work: Work) -> Result<bool> {
        let stats = do_work(work, self.files, &mut self.piece_buf, &mut self.tally, |data| self.spare = data)?;
        self.stats.push(stats);
        Ok(true)
    }

    fn spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }
}

/// The parsing threads' channel.
struct Workers {
    to_workers: SyncSender<Work>,
    recycled: Receiver<Vec<u8>>,
}

impl Sink for Workers {
    fn take(&mut self, work: Work) -> Result<bool> {
        Ok(self.to_workers.send(work).is_ok())
    }

    fn spare(&mut self) -> Vec<u8> {
        self.recycled.try_recv().unwrap_or_default()
    }
}

/// Runs `threads` workers on what `feed` hands them.
fn scan_parallel<C: Collect>(
    files: &[LogFile],
    threads: usize,
    tally: C,
    feed: impl FnOnce(&mut Workers) -> Result<()>,
) -> Result<(C, Vec<ChunkStats>)> {
    let (to_workers, work) = mpsc::sync_channel::<Work>(threads);
    // The workers own the receiving end: once every one of them has stopped (an error or a
    // panic), it is dropped and `feed` stops at its next send instead of waiting forever.
    let work = Arc::new(Mutex::new(work));
    let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (work, recycle, mut tally) = (Arc::clone(&work), recycle.clone(), tally.empty_like());
                scope.spawn(move || -> Result<(C, Vec<ChunkStats>)> {
                    let mut stats = Vec::new();
                    let mut piece_buf = Vec::new();
                    while let Some(item) = next_work(&work) {
                        // The reader may be gone after an error; the buffer is then dropped.
                        let done = do_work(item, files, &mut piece_buf, &mut tally, |data| drop(recycle.send(data)));
                        stats.push(done?);
                    }
                    Ok((tally, stats))
                })
            })
            .collect();
        drop((recycle, work));
        let mut sink = Workers { to_workers, recycled };
        let fed = feed(&mut sink);
        drop(sink);
        // The first worker's tally takes the others in: merging into the empty `tally`
        // would copy every session once more (it took a quarter of a second on 1 GB).
        let mut merged: Option<C> = None;
        let mut stats = Vec::new();
        let mut failed = None;
        for worker in workers {
            let (t, s) = match worker.join() {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                    continue;
                }
                Err(panic) => std::panic::resume_unwind(panic),
            };
            match &mut merged {
                Some(m) => m.merge(t),
                None => merged = Some(t),
            }
            stats.extend(s);
        }
        fed?;
        if let Some(e) = failed {
            return Err(e);
        }
        let mut merged = merged.unwrap_or_else(|| tally.empty_like());
        merged.merge(tally);
        Ok((merged, stats))
    })
}

fn next_work(work: &Mutex<Receiver<Work>>) -> Option<Work> {
    // A poisoned lock means another worker panicked; the scope re-raises that panic.
    work.lock().ok()?.recv().ok()
}

/// Parses one item into `tally`; a stream buffer is handed to `recycle` once parsed.
fn do_work(
    work: Work,
    files: &[LogFile],
    piece_buf: &mut Vec<u8>,
    tally: &mut impl Collect,
    recycle: impl FnOnce(Vec<u8>),
) -> Result<ChunkStats> {
    match work {
        Work::Piece { file, seq, input, piece } => {
            let parse = |data: &[u8], lines: &piece::PieceLines| {
                let data = if piece.start == 0 { without_bom(data) } else { data };
                parse_lines(data, lines.unterminated, lines.oversized, tally, ChunkStats::new(file, seq))
            };
            let stats = input.with_lines(piece, piece_buf, parse).with_context(|| read_error(&files[file]))?;
            if piece_buf.len() > 4 * PIECE as usize {
                *piece_buf = Vec::new(); // left big by a long line: give the memory back
            }
            Ok(stats)
        }
        Work::Chunk(chunk) => {
            let data = &chunk.data[..chunk.len];
            let data = if chunk.seq == 1 { without_bom(data) } else { data };
            let stats =
                parse_lines(data, chunk.unterminated, chunk.oversized, tally, ChunkStats::new(chunk.file, chunk.seq));
            recycle(chunk.data);
            Ok(stats)
        }
    }
}

/// A file's first bytes without the UTF-8 byte order mark some Windows tools write: it is
/// not JSON, and would make the first line malformed.
fn without_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

/// Hands every file to `sink`: plain files as pieces, streams as chunks read here.
fn feed(files: &[LogFile], piece_len: u64, sink: &mut impl Sink, progress: &mut Progress) -> Result<()> {
    let read = Arc::new(AtomicU64::new(0));
    let mut dispatched = 0;
    for (index, file) in files.iter().enumerate() {
        let handle = File::open(&file.path).with_context(|| format!("cannot open {}", file.path.display()))?;
        let meta = handle.metadata().with_context(|| read_error(file))?;
        let handle = if file.gzip {
            handle
        } else {
            match MappedFile::open(handle, &meta, file.live) {
                Ok(mapped) => {
                    let (size, input) = (mapped.size(), Arc::new(mapped));
                    for (seq, piece) in piece::pieces(size, piece_len).enumerate() {
                        let work = Work::Piece { file: index, seq: seq as u64, input: Arc::clone(&input), piece };
                        if !sink.take(work)? {
                            return Ok(()); // workers are gone: an error or a panic, reported on join
                        }
                        dispatched += piece.end - piece.start;
                        progress.update(dispatched + read.load(Ordering::Relaxed));
                    }
                    continue;
                }
                Err(handle) => handle,
            }
        };
        let mut chunks = ChunkReader::new(handle, file.gzip, index, &read);
        loop {
            let mut buf = sink.spare();
            if buf.len() > 4 * CHUNK {
                buf = Vec::new(); // left big by a long line: give the memory back
            }
            match chunks.next(buf).with_context(|| read_error(file))? {
                Some(chunk) => {
                    if !sink.take(Work::Chunk(chunk))? {
                        return Ok(()); // as above
                    }
                    progress.update(dispatched + read.load(Ordering::Relaxed));
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

impl ChunkStats {
    fn new(file: usize, seq: u64) -> ChunkStats {
        ChunkStats { file, seq, ..Default::default() }
    }
}

/// Parses the lines of `data` into `tally`: the last one may lack its newline (flagged
/// `unterminated` when the file ended so), and `oversized` stands for one more line, too
/// long to have been kept.
fn parse_lines(
    data: &[u8],
    unterminated: bool,
    oversized: bool,
    tally: &mut impl Collect,
    mut stats: ChunkStats,
) -> ChunkStats {
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
            Ok(event) => {
                if (event.input_tokens | event.output_tokens) >= HUGE_COUNT && stats.first_huge.is_none() {
                    stats.first_huge = Some(stats.lines - 1);
                }
                tally.add(&event)
            }
            Err(reason) => {
                stats.skipped += 1;
                if stats.first_skip.is_none() {
                    let reason = if has_lone_cr(line) {
                        // Old Mac line ends: the whole file reads as one line.
                        format!("lines end in CR alone, not LF or CRLF (convert with `tr '\\r' '\\n'`): {reason}")
                    } else if last && unterminated {
                        format!("unterminated last line (file still being written?): {reason}")
                    } else {
                        reason
                    };
                    stats.first_skip = Some((stats.lines - 1, reason));
                }
            }
        }
    }
    if oversized {
        stats.lines += 1;
        stats.skipped += 1;
        if stats.first_skip.is_none() {
            stats.first_skip = Some((stats.lines - 1, format!("line longer than {} MiB", MAX_LINE >> 20)));
        }
    }
    stats
}

/// A CR before the start of another object: lines separated by CR alone. (A CR is also
/// whitespace JSON allows between tokens, which does not make a line fail.)
fn has_lone_cr(line: &[u8]) -> bool {
    line.windows(2).any(|pair| pair == b"\r{")
}

/// Per-file totals, with item-relative line numbers made absolute.
fn reports(files: &[LogFile], mut stats: Vec<ChunkStats>) -> Vec<FileReport> {
    stats.sort_by_key(|s| (s.file, s.seq));
    let mut reports: Vec<FileReport> =
        files.iter().map(|f| FileReport { path: f.path.clone(), ..Default::default() }).collect();
    for s in stats {
        let report = &mut reports[s.file];
        if report.first_skip.is_none() {
            report.first_skip = s.first_skip.map(|(line, why)| (report.lines + line + 1, why));
        }
        if report.first_huge.is_none() {
            report.first_huge = s.first_huge.map(|line| report.lines + line + 1);
        }
        report.lines += s.lines;
        report.skipped += s.skipped;
    }
    reports
}

/// Counts the bytes read from a file (compressed ones for `.gz`), for the progress bar.
struct Counted {
    file: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
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
    fn new(handle: File, gzip: bool, index: usize, read: &Arc<AtomicU64>) -> ChunkReader {
        let counted = Counted { file: handle, read: Arc::clone(read) };
        let input: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(256 << 10, counted)))
        } else {
            Box::new(counted)
        };
        ChunkReader { input, file: index, seq: 0, carry: Vec::new(), eof: false }
    }

    /// The next chunk, read into `buf` (whose length is kept: it is spare room, not data).
    fn next(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Chunk>> {
        // The carry is the start of a line, at most `MAX_LINE` bytes (a longer one was
        // dropped), so the buffer always has room for it and for more.
        let mut limit = CHUNK.max(2 * self.carry.len()).min(MAX_LINE + 1);
        let mut filled = self.carry.len();
        grow(&mut buf, limit);
        buf[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        loop {
            filled = self.fill(&mut buf[..limit], filled)?;
            if let Some(cut) = memchr::memrchr(b'\n', &buf[..filled]) {
                self.carry.extend_from_slice(&buf[cut + 1..filled]);
                return Ok(Some(self.chunk(buf, cut + 1, false, false)));
            }
            if self.eof {
                if filled == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.chunk(buf, filled, true, false)));
            }
            // No newline in a whole chunk: one long line. Keep it while it may be an event.
            // Up to `MAX_LINE` bytes and the newline: the limit `MAX_LINE` is of the line.
            if limit <= MAX_LINE {
                limit = (2 * limit).min(MAX_LINE + 1);
                grow(&mut buf, limit);
                continue;
            }
            self.discard_rest_of_line()?;
            return Ok(Some(self.chunk(buf, 0, false, true)));
        }
    }

    /// Reads into `buf[filled..]` until it is full or the input ends; the new `filled`.
    fn fill(&mut self, buf: &mut [u8], mut filled: usize) -> io::Result<usize> {
        while !self.eof && filled < buf.len() {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
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

    fn chunk(&mut self, data: Vec<u8>, len: usize, unterminated: bool, oversized: bool) -> Chunk {
        self.seq += 1;
        Chunk { file: self.file, seq: self.seq, data, len, unterminated, oversized }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::tally::Tally;
    use super::*;

    /// Every chunk of `content` (gzip-compressed first if `gzip`): its bytes, whether it is
    /// unterminated, whether it stands for an oversized line.
    fn chunks_of(content: &[u8], gzip: bool) -> Vec<(Vec<u8>, bool, bool)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(if gzip { "events.jsonl.gz" } else { "events.jsonl" });
        let mut out = File::create(&path).expect("create");
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            gz.write_all(content).expect("write");
            gz.finish().expect("finish");
        } else {
            out.write_all(content).expect("write");
        }
        let read = Arc::new(AtomicU64::new(0));
        let mut reader = ChunkReader::new(File::open(&path).expect("open"), gzip, 0, &read);
        let mut chunks = Vec::new();
        let mut buf = Vec::new();
        while let Some(chunk) = reader.next(buf).expect("read") {
            chunks.push((chunk.data[..chunk.len].to_vec(), chunk.unterminated, chunk.oversized));
            buf = chunk.data;
        }
        if !gzip {
            assert_eq!(read.load(Ordering::Relaxed), content.len() as u64, "bytes counted");
        }
        chunks
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| format!("{{\"line\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300)).into_bytes()).collect()
    }

    #[test]
    fn chunks_are_whole_lines_and_add_up_to_the_file() {
        let content = lines(40_000); // about 7 MiB: several chunks
        for gzip in [false, true] {
            let chunks = chunks_of(&content, gzip);
            assert!(chunks.len() > 2, "{}", chunks.len());
            for (data, unterminated, oversized) in &chunks {
                assert_eq!(data.last(), Some(&b'\n'));
                assert!(!unterminated && !oversized);
                assert!(data.len() <= CHUNK);
            }
            assert_eq!(chunks.concat_data(), content);
        }
    }

    #[test]
    fn an_unterminated_last_line_is_its_own_chunk() {
        let mut content = lines(10);
        content.extend_from_slice(b"{\"type\":\"model_usage\",\"costUsd\":");
        let chunks = chunks_of(&content, false);
        let (last, unterminated, _) = chunks.last().expect("chunks");
        assert!(unterminated);
        assert_eq!(last, b"{\"type\":\"model_usage\",\"costUsd\":");
        assert_eq!(chunks.concat_data(), content);
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_kept_whole() {
        let mut content = lines(3);
        content.extend_from_slice(&vec![b'a'; 3 * CHUNK + 17]);
        content.push(b'\n');
        content.extend_from_slice(&lines(3));
        let chunks = chunks_of(&content, false);
        assert!(chunks.iter().any(|(d, _, _)| d.len() > 3 * CHUNK));
        assert_eq!(chunks.concat_data(), content);
    }

    #[test]
    fn a_line_longer_than_max_line_is_dropped_and_reading_goes_on() {
        let mut content = lines(3);
        content.extend_from_slice(&vec![b'a'; MAX_LINE + CHUNK]);
        content.push(b'\n');
        let after = lines(5);
        content.extend_from_slice(&after);
        let chunks = chunks_of(&content, false);
        let oversized: Vec<_> = chunks.iter().filter(|(_, _, o)| *o).collect();
        assert_eq!(oversized.len(), 1);
        assert!(oversized[0].0.is_empty());
        let kept: Vec<u8> = chunks.iter().filter(|(_, _, o)| !o).flat_map(|(d, _, _)| d.clone()).collect();
        assert_eq!(kept, [lines(3), after].concat());
    }

    /// The fixtures' events with malformed, blank and long lines among them, ending with an
    /// unterminated line: mapped in pieces of every size, read as a stream, or
    /// gzip-compressed, on one to three threads, they must give the same tally and the same
    /// warnings (skipped lines numbered as in the file).
    #[test]
    fn every_way_of_reading_gives_the_same_answer() {
        use crate::window::{Window, WindowKind};

        let mut content = Vec::new();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/home/.openclaw/telemetry");
        let mut names: Vec<_> =
            std::fs::read_dir(fixtures).expect("fixtures").map(|e| e.expect("entry").path()).collect();
        names.sort();
        for path in names.iter().filter(|p| p.extension().is_some_and(|e| e == "jsonl")) {
            for (i, line) in std::fs::read(path).expect("read").split_inclusive(|&b| b == b'\n').enumerate() {
                content.extend_from_slice(line);
                match i % 17 {
                    3 => content.extend_from_slice(b"not json\n"),
                    7 => content.extend_from_slice(b"\n   \n"),
                    11 => content.extend_from_slice(format!("{{\"pad\":\"{}\"}}\n", "x".repeat(3000)).as_bytes()),
                    _ => {}
                }
            }
        }
        content.extend_from_slice(br#"{"type":"model_usage","costUsd":"#);
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("events.jsonl");
        std::fs::write(&plain, &content).expect("write");
        let gz = dir.path().join("events.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
        enc.write_all(&content).expect("write");
        enc.finish().expect("finish");

        let week = |start: i64| Window {
            start,
            end: start + 7 * 86_400 * 1_000_000_000,
            tz: chrono_tz::UTC,
            kind: WindowKind::Span,
            partial: false,
        };
        let (current, previous) = (week(1_795_132_800_000_000_000), week(1_794_528_000_000_000_000)); // 2026-W47, W46
        let run = |path: &std::path::Path, gzip: bool, threads: usize, piece_len: u64| {
            let files = [LogFile { path: path.to_path_buf(), gzip, live: false }];
            let (tally, reports) =
                scan_with(&files, threads, piece_len, false, Tally::new(&current, Some(&previous))).expect("scan");
            let (mut rows, totals, costs) = tally.finish(10);
            let prior = (totals, costs);
            // Rows come in the order names were first seen; the digest sorts them later.
            rows.by_model.sort_by_key(|r| format!("{r:?}"));
            rows.by_agent.sort_by_key(|r| format!("{r:?}"));
            rows.by_variant.sort_by_key(|r| format!("{r:?}"));
            let reports: Vec<_> = reports.into_iter().map(|r| (r.lines, r.skipped, r.first_skip)).collect();
            (rows, prior, reports)
        };
        let reference = run(&gz, true, 1, PIECE);
        let (rows, _, reports) = &reference;
        assert!(rows.totals.cost > crate::usd::Usd::ZERO && rows.by_session.len() > 5, "{rows:?}");
        assert!(reports[0].1 > 20, "malformed lines counted: {reports:?}");
        assert_eq!(reports[0].2.as_ref().map(|(line, _)| *line), Some(5), "first skipped line: {reports:?}");

        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for mapped in [false, true] {
            if mapped {
                File::options().write(true).open(&plain).and_then(|f| f.set_modified(old)).expect("set mtime");
            }
            // Piece sizes matter only when mapped; a file just written is one stream.
            let piece_lens: &[u64] = if mapped { &[1, 7, 64, 1000, 4096, PIECE] } else { &[PIECE] };
            for &piece_len in piece_lens {
                for threads in [1, 2, 3] {
                    let what = format!("mapped {mapped}, pieces of {piece_len} bytes, {threads} threads");
                    assert_eq!(run(&plain, false, threads, piece_len), reference, "{what}");
                }
            }
        }
    }

    /// A byte order mark before a file's first line is not part of the line, on every way
    /// of reading; one anywhere else is the malformed line it is.
    #[test]
    fn a_byte_order_mark_opening_a_file_is_not_a_malformed_line() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/home/.openclaw/telemetry/events.2026-11-16.jsonl");
        let lines = std::fs::read(fixture).expect("fixture");
        let dir = tempfile::tempdir().expect("temp dir");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        let scan_of = |content: &[u8], gzip: bool, mapped: bool, piece_len: u64| {
            let path = dir.path().join(if gzip { "events.jsonl.gz" } else { "events.jsonl" });
            if gzip {
                let mut enc =
                    flate2::write::GzEncoder::new(File::create(&path).expect("create"), flate2::Compression::fast());
                enc.write_all(content).expect("write");
                enc.finish().expect("finish");
            } else {
                std::fs::write(&path, content).expect("write");
            }
            if mapped {
                File::options().write(true).open(&path).and_then(|f| f.set_modified(old)).expect("set mtime");
            }
            let files = [LogFile { path, gzip, live: false }];
            let window = crate::window::Window {
                start: 0,
                end: i64::MAX,
                tz: chrono_tz::UTC,
                kind: crate::window::WindowKind::Span,
                partial: false,
            };
            let (_, reports) = scan_with(&files, 2, piece_len, false, Tally::new(&window, None)).expect("scan");
            reports.into_iter().map(|r| (r.lines, r.skipped)).collect::<Vec<_>>()
        };
        let with_bom = [b"\xef\xbb\xbf".as_slice(), &lines].concat();
        let reference = scan_of(&lines, false, false, PIECE);
        assert!(reference[0].0 > 10, "{reference:?}");
        for (gzip, mapped, piece_len) in
            [(true, false, PIECE), (false, false, PIECE), (false, true, PIECE), (false, true, 1), (false, true, 2)]
        {
            assert_eq!(
                scan_of(&with_bom, gzip, mapped, piece_len),
                reference,
                "gzip {gzip}, mapped {mapped}, pieces of {piece_len}"
            );
        }
        let second = [&lines, b"\xef\xbb\xbf".as_slice(), &lines].concat();
        let twice = scan_of(&[lines.as_slice(), &lines].concat(), false, true, PIECE);
        assert_eq!(scan_of(&second, false, true, PIECE)[0].1, twice[0].1 + 1, "a mark inside the file");
    }

    /// Workers that fail (here: reading a "file" that is a directory) end the scan with
    /// their error; the thread handing out work must not wait for them forever.
    #[test]
    fn failing_workers_end_the_scan() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [LogFile { path: dir.path().to_path_buf(), gzip: false, live: false }];
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let input = Arc::new(MappedFile::unchecked(File::open(dir.path()).expect("open dir"), 100 << 20));
            let feed = |sink: &mut Workers| {
                for (seq, piece) in piece::pieces(100 << 20, 1 << 20).enumerate() {
                    let work = Work::Piece { file: 0, seq: seq as u64, input: Arc::clone(&input), piece };
                    if !sink.take(work)? {
                        break;
                    }
                }
                Ok(())
            };
            let tally = Tally::new(
                &crate::window::Window::resolve(&Default::default(), chrono_tz::UTC, chrono::Utc::now())
                    .expect("window"),
                None,
            );
            let result = scan_parallel(&files, 2, tally, feed).map(|_| ());
            let _ = done.send(result.map_err(|e| format!("{e:#}")));
        });
        let result = finished.recv_timeout(std::time::Duration::from_secs(20)).expect("the scan ended");
        let error = result.expect_err("a read error");
        assert!(error.contains("cannot read"), "{error}");
    }

    /// A line of exactly `MAX_LINE` bytes is kept and one byte more is dropped, whether the
    /// file is mapped or read as a stream, plain or `.gz`, and wherever the line starts.
    #[test]
    fn the_line_limit_is_the_same_on_every_path() {
        use crate::window::{Window, WindowKind};

        let event = |pad: usize| {
            let head =
                br#"{"type":"model_usage","timestamp":"2026-11-17T10:00:00Z","sessionId":"s","costUsd":0.5,"p":""#;
            let mut line = head.to_vec();
            line.resize(pad - 2, b'x');
            line.extend_from_slice(b"\"}");
            assert_eq!(line.len(), pad);
            line
        };
        let small = br#"{"type":"model_usage","timestamp":"2026-11-17T11:00:00Z","sessionId":"t","costUsd":0.25}"#;
        let week = Window {
            start: 1_794_528_000_000_000_000,
            end: 1_795_132_800_000_000_000,
            tz: chrono_tz::UTC,
            kind: WindowKind::Span,
            partial: false,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for (len, kept) in [(MAX_LINE, true), (MAX_LINE + 1, false)] {
            for lead in [0, 3 * CHUNK / 2] {
                let mut content = Vec::new();
                while content.len() < lead {
                    content.extend_from_slice(small);
                    content.push(b'\n');
                }
                let before = content.len() / (small.len() + 1);
                content.extend_from_slice(&event(len));
                content.push(b'\n');
                content.extend_from_slice(small);
                content.push(b'\n');
                let plain = dir.path().join("events.2026-11-17.jsonl");
                std::fs::write(&plain, &content).expect("write");
                let gz = dir.path().join("events.2026-11-17.jsonl.gz");
                let mut enc =
                    flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
                enc.write_all(&content).expect("write");
                enc.finish().expect("finish");
                let run = |path: &std::path::Path, gzip: bool| {
                    let files = [LogFile { path: path.to_path_buf(), gzip, live: false }];
                    let (tally, reports) = scan_with(&files, 2, PIECE, false, Tally::new(&week, None)).expect("scan");
                    (tally.finish(10).0.totals.cost, reports[0].skipped, reports[0].lines)
                };
                let streamed = run(&plain, false);
                File::options().write(true).open(&plain).and_then(|f| f.set_modified(old)).expect("set mtime");
                let mapped = run(&plain, false);
                let inflated = run(&gz, true);
                let want_cost = crate::usd::Usd::from_f64(if kept { 0.75 } else { 0.25 } + 0.25 * before as f64);
                assert_eq!(Some(streamed.0), want_cost, "line of {len} bytes after {lead} bytes");
                assert_eq!(streamed.1, u64::from(!kept), "skipped");
                assert_eq!(mapped, streamed, "mapped vs stream, {len} after {lead}");
                assert_eq!(inflated, streamed, "gz vs stream, {len} after {lead}");
            }
        }
    }

    trait Concat {
        fn concat_data(&self) -> Vec<u8>;
    }

    impl Concat for Vec<(Vec<u8>, bool, bool)> {
        fn concat_data(&self) -> Vec<u8> {
            self.iter().flat_map(|(d, _, _)| d.iter().copied()).collect()
        }
    }
}
