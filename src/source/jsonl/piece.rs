//! A piece of a quiet plain file, mapped by the worker that parses it.
//!
//! Why: with one thread reading the whole file into buffers for the parsing threads, that
//! thread spent a quarter of a second per GB in the kernel copying pages, on a third
//! thread competing with the two parsers for the machine's two cores. A worker that maps
//! its own piece copies nothing, and nothing competes with it.
//!
//! A file is cut at fixed offsets into pieces `[start, end)`; a piece holds the lines that
//! *start* in it. Its reader looks at the byte before `start` to learn whether a line
//! starts there, else skips to the first line that does, and reads past `end` to finish
//! its last line. So every line belongs to exactly one piece, and no piece needs to know
//! where another begins: the pieces can be read in any order, on any thread.
//!
//! A piece is mapped into memory on its own (with 64 KiB more for its last line) and parsed
//! where the kernel keeps it, with no copy at all, then unmapped: resident memory is the
//! pieces in flight, not the file. (Copying 1 GB from the page cache costs 0.2–0.4 CPU-s,
//! a fifth of the digest; one mapping of the whole file, releasing pieces with
//! `MADV_DONTNEED`, kept 6 % of the file resident, because reading the byte before a piece
//! faults the 64 KiB around it back in.) A piece whose last line does not end inside its
//! mapping, or that cannot be mapped, is read with positioned reads instead.
//!
//! A mapped file that shrinks while mapped kills the process (SIGBUS, with no file name),
//! as with any `mmap` reader (ripgrep has the same caveat); an I/O error on a mapped page
//! does too. A file rewritten in place while mapped would change bytes under a `&[u8]`
//! (and under the `&str` the fast path makes of an all-ASCII line): undefined behaviour in
//! Rust's terms, which no log writer does. So only files that are not being written are
//! mapped: not the live `events.jsonl` (`copytruncate` rotation truncates it, even after
//! hours without an event), and no file modified within the hour. Those are read as a
//! stream by the reader thread (`reader.rs`); positioned reads by the workers were
//! measured slower for them (copying into buffers the parser has since evicted).

use std::fs::{File, Metadata};
use std::io;
use std::time::Duration;

use memmap2::MmapOptions;

use super::reader::MAX_LINE;

/// A file is mapped only if it was not modified for this long (see the module doc).
const QUIET_FOR: Duration = Duration::from_secs(3600);

/// How much of the next piece a mapped piece also maps, for its last line.
const MAP_TAIL: u64 = 64 << 10;

/// A file whose pieces are mapped (see the module doc).
pub struct MappedFile {
    file: File,
    /// The size when opened: a piece's mapping never reaches past it.
    size: u64,
}

impl MappedFile {
    /// `file`, to be mapped piece by piece, if it is a regular, non-empty file left alone
    /// for an hour and not the `live` one; else the file back, to be read as a stream.
    pub fn open(file: File, meta: &Metadata, live: bool) -> Result<MappedFile, File> {
        let quiet = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age >= QUIET_FOR);
        if quiet && !live && meta.is_file() && meta.len() > 0 {
            Ok(MappedFile { file, size: meta.len() })
        } else {
            Err(file)
        }
    }

    /// Any file, as if it were quiet (for tests of what follows a failure).
    #[cfg(test)]
    pub fn unchecked(file: File, size: u64) -> MappedFile {
        MappedFile { file, size }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Calls `parse` with the lines that start in `piece`, and what is known about them.
    /// They are mapped; `buf` holds them when they had to be read instead.
    pub fn with_lines<T>(
        &self,
        piece: Piece,
        buf: &mut Vec<u8>,
        parse: impl FnOnce(&[u8], &PieceLines) -> T,
    ) -> io::Result<T> {
        let from = piece.start.saturating_sub(1);
        let to = self.size.min(piece.end + MAP_TAIL);
        // SAFETY: the mapping is read-only and nothing in this process writes the file. It
        // stays sound as long as no other process rewrites the file's bytes in place while
        // mapped, which is why only files not being written are mapped (module doc); a
        // truncation would raise SIGBUS, a crash rather than a wrong answer.
        let map =
            (from < to).then(|| unsafe { MmapOptions::new().offset(from).len((to - from) as usize).map(&self.file) });
        if let Some(Ok(map)) = map {
            if let Some(lines) = map_piece(&map, piece.start - from, piece.end - from) {
                return Ok(parse(&map[lines.from..lines.to], &lines));
            }
        }
        // Mapping failed, or the piece's last line runs past the mapping.
        let lines = read_piece(&self.file, piece, buf)?;
        Ok(parse(&buf[lines.from..lines.to], &lines))
    }
}

/// Bytes `[start, end)` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
}

/// The pieces of a file of `size` bytes, `piece_len` bytes each (the last one shorter).
pub fn pieces(size: u64, piece_len: u64) -> impl Iterator<Item = Piece> {
    (0..size.div_ceil(piece_len)).map(move |k| Piece { start: k * piece_len, end: ((k + 1) * piece_len).min(size) })
}

/// The lines of a piece, as read into a buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PieceLines {
    /// The piece's whole lines are `buf[from..to]`, newlines included.
    pub from: usize,
    pub to: usize,
    /// The last line ends the file without a newline.
    pub unterminated: bool,
    /// One more line, longer than `MAX_LINE`, follows the others; it was not kept.
    pub oversized: bool,
}

/// How much to read first to finish a piece's last line: a telemetry line is a few hundred
/// bytes; a longer one doubles the read each time.
const TAIL_STEP: usize = 4 << 10;

/// Reads the lines that start in `piece` of `file` into `buf` (whose length is kept as
/// spare room for the next piece, so it is read into without zeroing).
pub fn read_piece(file: &File, piece: Piece, buf: &mut Vec<u8>) -> io::Result<PieceLines> {
    // One byte before the piece says whether a line starts at its first byte.
    let lead = u64::from(piece.start > 0);
    let base = piece.start - lead;
    let want = (piece.end - base) as usize;
    grow(buf, want);
    let got = read_at(file, &mut buf[..want], base)?;
    let Some(first) = first_line_start(&buf[..got], lead as usize, got) else {
        return Ok(PieceLines::default()); // inside a line that started before
    };
    let mut lines = PieceLines { from: first, to: got, ..PieceLines::default() };
    let mut eof = got < want;
    // The bytes after the last newline start a line that ends past `end`, if at all.
    let tail = memchr::memrchr(b'\n', &buf[first..got]).map_or(first, |i| first + i + 1);
    while lines.to > tail {
        if lines.to - tail > MAX_LINE {
            // A runaway line: drop it without reading it all; the pieces it spans find
            // no line start in it, and the piece where it ends starts after it.
            lines.to = tail;
            lines.oversized = true;
            break;
        }
        if eof {
            lines.unterminated = true;
            break;
        }
        let at = lines.to;
        let step = TAIL_STEP.max(at - tail).min(MAX_LINE + 1 - (at - tail));
        grow(buf, at + step);
        let n = read_at(file, &mut buf[at..at + step], base + at as u64)?;
        eof = n < step;
        match memchr::memchr(b'\n', &buf[at..at + n]) {
            Some(i) => {
                lines.to = at + i + 1;
                break;
            }
            None => lines.to = at + n,
        }
    }
    Ok(lines)
}

/// Where the lines that start in `[start, end)` of `window` lie, when each of them ends
/// with a newline inside `window` (which begins one byte before `start` unless `start` is
/// 0); `None` otherwise, and the piece is read instead. The same lines as [`read_piece`]
/// finds.
pub fn map_piece(window: &[u8], start: u64, end: u64) -> Option<PieceLines> {
    let (start, end) = (start as usize, (end as usize).min(window.len()));
    if start >= end {
        return Some(PieceLines::default());
    }
    let Some(first) = first_line_start(window, start, end) else {
        return Some(PieceLines::default());
    };
    let to = match window[end - 1] {
        b'\n' => end,
        _ => end + memchr::memchr(b'\n', &window[end..])? + 1,
    };
    Some(PieceLines { from: first, to, ..PieceLines::default() })
}

/// Where the first line that starts in `bytes[start..end]` begins, if one does: at
/// `start` when the byte before it (`bytes[start - 1]`) ends a line, else after the first
/// newline from there.
fn first_line_start(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let first = match start {
        0 => 0,
        _ => start + memchr::memchr(b'\n', &bytes[start - 1..end])?,
    };
    (first < end).then_some(first)
}

/// Reads at `offset` until `buf` is full or the file ends; the bytes read.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match positioned_read(file, &mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(unix)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Makes `buf` at least `len` bytes long (zeroing only what is new).
pub fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.jsonl");
        File::create(&path).and_then(|mut f| f.write_all(content)).expect("write");
        let file = File::open(&path).expect("open");
        (dir, file)
    }

    /// Every piece's lines, concatenated, for pieces of `len` bytes; checks that reading
    /// and mapping find the same lines.
    fn read_all(content: &[u8], len: u64) -> (Vec<u8>, Vec<PieceLines>) {
        let (_dir, file) = file_with(content);
        let mut buf = Vec::new();
        let mut all = Vec::new();
        let mut found = Vec::new();
        for piece in pieces(content.len() as u64, len) {
            let lines = read_piece(&file, piece, &mut buf).expect("read");
            // A window as `MappedFile` maps it: from the byte before the piece, 64 KiB past it.
            let from = piece.start.saturating_sub(1) as usize;
            let window = &content[from..content.len().min(piece.end as usize + MAP_TAIL as usize)];
            if let Some(mapped) = map_piece(window, piece.start - from as u64, piece.end - from as u64) {
                assert_eq!(&window[mapped.from..mapped.to], &buf[lines.from..lines.to], "lines of {piece:?}");
                assert!(!lines.unterminated && !lines.oversized, "{piece:?}");
            } else {
                assert!(
                    lines.unterminated || lines.oversized || lines.to - lines.from > MAP_TAIL as usize,
                    "{piece:?}"
                );
            }
            let text = &buf[lines.from..lines.to];
            assert!(text.is_empty() || text.ends_with(b"\n") || lines.unterminated, "whole lines");
            all.extend_from_slice(text);
            found.push(lines);
        }
        (all, found)
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| format!("{{\"line\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37)).into_bytes()).collect()
    }

    #[test]
    fn pieces_cover_the_file() {
        assert_eq!(pieces(0, 4).count(), 0);
        assert_eq!(
            pieces(10, 4).collect::<Vec<_>>(),
            [Piece { start: 0, end: 4 }, Piece { start: 4, end: 8 }, Piece { start: 8, end: 10 }]
        );
    }

    #[test]
    fn every_line_is_read_once_whatever_the_piece_size() {
        let mut content = lines(300);
        content.extend_from_slice(b"\n\n  \n");
        content.extend_from_slice(&lines(7));
        for len in [1, 2, 3, 5, 16, 47, 48, 49, 100, 1000, 4096, 1 << 20] {
            let (all, found) = read_all(&content, len);
            assert_eq!(all, content, "piece length {len}");
            assert!(found.iter().all(|l| !l.unterminated && !l.oversized));
        }
    }

    #[test]
    fn an_unterminated_last_line_is_flagged() {
        let mut content = lines(20);
        content.extend_from_slice(b"{\"type\":\"model_usage\",\"costUsd\":");
        for len in [7, 64, 1 << 20] {
            let (all, found) = read_all(&content, len);
            assert_eq!(all, content);
            let last = found.iter().rev().find(|l| l.from < l.to).expect("lines");
            assert!(last.unterminated, "piece length {len}");
            assert_eq!(found.iter().filter(|l| l.unterminated).count(), 1);
        }
    }

    #[test]
    fn a_line_longer_than_max_line_is_dropped_and_the_next_ones_are_read() {
        let before = lines(3);
        let after = lines(5);
        let mut content = before.clone();
        content.extend_from_slice(&vec![b'a'; MAX_LINE + 10]);
        content.push(b'\n');
        content.extend_from_slice(&after);
        let (all, found) = read_all(&content, 1 << 20);
        assert_eq!(all, [before, after].concat());
        assert_eq!(found.iter().filter(|l| l.oversized).count(), 1);
        // A line of exactly MAX_LINE bytes is kept.
        let mut content = vec![b'b'; MAX_LINE];
        content.push(b'\n');
        let (all, found) = read_all(&content, 1 << 20);
        assert_eq!(all, content);
        assert!(found.iter().all(|l| !l.oversized));
    }

    #[test]
    fn only_files_left_alone_for_an_hour_are_mapped() {
        let content = lines(50);
        let (dir, file) = file_with(&content);
        let path = dir.path().join("events.jsonl");
        let meta = file.metadata().expect("metadata");
        assert!(MappedFile::open(file, &meta, false).is_err(), "just written: a stream");
        let old = std::time::SystemTime::now() - 2 * QUIET_FOR;
        File::options().write(true).open(&path).and_then(|f| f.set_modified(old)).expect("set mtime");
        let file = File::open(&path).expect("open");
        let meta = file.metadata().expect("metadata");
        let file = match MappedFile::open(file, &meta, true) {
            Ok(_) => panic!("the live file is never mapped"),
            Err(file) => file,
        };
        let Ok(mapped) = MappedFile::open(file, &meta, false) else { panic!("quiet: mapped") };
        let mut all = Vec::new();
        let mut buf = Vec::new();
        for piece in pieces(content.len() as u64, 100) {
            mapped.with_lines(piece, &mut buf, |text, _| all.extend_from_slice(text)).expect("lines");
        }
        assert_eq!(all, content);
    }

    #[test]
    fn a_file_that_shrank_reads_what_is_left() {
        let content = lines(10);
        let (_dir, file) = file_with(&content);
        let mut buf = Vec::new();
        let lines = read_piece(&file, Piece { start: 0, end: content.len() as u64 + 100 }, &mut buf).expect("read");
        assert_eq!(&buf[lines.from..lines.to], &content[..]);
        let past = read_piece(&file, Piece { start: 5000, end: 6000 }, &mut buf).expect("read");
        assert_eq!(past, PieceLines::default());
    }
}
