//! Reads telemetry files in chunks of whole lines and parses them on every core.
//!
//! One thread reads (and inflates `.gz`) sequentially into fixed-size buffers cut at a line
//! boundary; worker threads parse the buffers and add the events to their own `Tally`.
//! Buffers go back to the reader once parsed, so memory is a few buffers however large the
//! files are. A buffer keeps its length when recycled, so it is read into directly with
//! no zeroing or growth. Line numbers for warnings are put back together at the end from
//! each chunk's line count. The reading thread also drives the progress bar, per chunk.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

use super::files::LogFile;
use super::line::parse_line;
use super::progress::Progress;
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
    /// The lines are `data[..len]`; the rest is spare room kept for the next read.
    data: Vec<u8>,
    len: usize,
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
    let total = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    let mut progress = Progress::new(total);
    let (tally, stats) = if threads <= 1 {
        scan_here(files, tally, &mut progress)?
    } else {
        scan_parallel(files, threads, tally, &mut progress)?
    };
    progress.finish();
    Ok((tally, reports(files, stats)))
}

fn scan_here(files: &[LogFile], mut tally: Tally, progress: &mut Progress) -> Result<(Tally, Vec<ChunkStats>)> {
    let mut stats = Vec::new();
    let mut buf = Vec::new();
    let read = Arc::new(AtomicU64::new(0));
    for (index, file) in files.iter().enumerate() {
        let mut chunks = ChunkReader::open(file, index, &read)?;
        while let Some(chunk) = chunks.next(buf).with_context(|| read_error(file))? {
            stats.push(parse_chunk(&chunk, &mut tally));
            progress.update(read.load(Ordering::Relaxed));
            buf = chunk.data;
        }
        buf = Vec::new();
    }
    Ok((tally, stats))
}

fn scan_parallel(
    files: &[LogFile],
    threads: usize,
    tally: Tally,
    progress: &mut Progress,
) -> Result<(Tally, Vec<ChunkStats>)> {
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
        let read = feed(files, &to_workers, &recycled, progress);
        drop(to_workers);
        // The first worker's tally takes the others in: merging into the empty `tally`
        // would copy every session once more (it took a quarter of a second on 1 GB).
        let mut merged: Option<Tally> = None;
        let mut stats = Vec::new();
        for worker in workers {
            let (t, s) = match worker.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            match &mut merged {
                Some(m) => m.merge(t),
                None => merged = Some(t),
            }
            stats.extend(s);
        }
        let mut merged = merged.unwrap_or_else(|| tally.empty_like());
        merged.merge(tally);
        read.map(|()| (merged, stats))
    })
}

fn next_chunk(work: &Mutex<Receiver<Chunk>>) -> Option<Chunk> {
    // A poisoned lock means another worker panicked; the scope re-raises that panic.
    work.lock().ok()?.recv().ok()
}

fn feed(
    files: &[LogFile],
    to_workers: &SyncSender<Chunk>,
    recycled: &Receiver<Vec<u8>>,
    progress: &mut Progress,
) -> Result<()> {
    let read = Arc::new(AtomicU64::new(0));
    for (index, file) in files.iter().enumerate() {
        let mut chunks = ChunkReader::open(file, index, &read)?;
        loop {
            let mut buf = recycled.try_recv().unwrap_or_default();
            if buf.len() > 4 * CHUNK {
                buf = Vec::new(); // left big by a long line: give the memory back
            }
            match chunks.next(buf).with_context(|| read_error(file))? {
                Some(chunk) => {
                    if to_workers.send(chunk).is_err() {
                        return Ok(()); // workers are gone: a panic, re-raised on join
                    }
                    progress.update(read.load(Ordering::Relaxed));
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
    let data = &chunk.data[..chunk.len];
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
    fn open(file: &LogFile, index: usize, read: &Arc<AtomicU64>) -> Result<ChunkReader> {
        let handle = File::open(&file.path).with_context(|| format!("cannot open {}", file.path.display()))?;
        let counted = Counted { file: handle, read: Arc::clone(read) };
        let input: Box<dyn Read + Send> = if file.gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(256 << 10, counted)))
        } else {
            Box::new(counted)
        };
        Ok(ChunkReader { input, file: index, seq: 0, carry: Vec::new(), eof: false })
    }

    /// The next chunk, read into `buf` (whose length is kept: it is spare room, not data).
    fn next(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Chunk>> {
        let mut limit = CHUNK.max(2 * self.carry.len());
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
            if limit < MAX_LINE {
                limit = (2 * limit).min(MAX_LINE);
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

/// Makes `buf` at least `len` bytes long (zeroing only what is new).
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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
        let mut reader = ChunkReader::open(&LogFile { path, gzip }, 0, &read).expect("open");
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

    trait Concat {
        fn concat_data(&self) -> Vec<u8>;
    }

    impl Concat for Vec<(Vec<u8>, bool, bool)> {
        fn concat_data(&self) -> Vec<u8> {
            self.iter().flat_map(|(d, _, _)| d.iter().copied()).collect()
        }
    }
}
