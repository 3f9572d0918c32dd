//! A strict, fast reader for the common telemetry line: one flat JSON object.
//!
//! Why it exists: on the 1 GB shape-A benchmark, serde_json took about 88 % of the ~7,400
//! instructions spent per event (callgrind): a scan and a UTF-8 check per string, a visitor
//! call per field, a key match through serde's identifier machinery. Nearly every line the
//! gateway writes (shapes A and B) is a flat object of short strings without escapes,
//! numbers and booleans. For those, one UTF-8 check of the whole line and one forward scan
//! fill the same [`RawLine`] serde would have filled, at a fraction of the cost; the rest
//! of the pipeline (`RawLine::take_event`) is shared, so both paths mean the same thing.
//!
//! What it is not: a JSON parser. It accepts only what it fully understands *and* what
//! serde_json would accept with the same meaning. On anything else it answers `None` ("not
//! mine") and the line goes through serde_json, which stays the reference and gives the
//! error messages: a nested object or array (shape C's `data`, `experiment: {…}`), a
//! backslash anywhere, a control character, a byte that is not UTF-8, a duplicate known
//! field, a known field of an unexpected type (`"costUsd":"12"`), a number with a sign, an
//! exponent or more than 19 digits where a value is read, whitespace between tokens (the
//! gateway writes compact JSON), trailing bytes, any syntax error.
//! `tests/perf_fastpath.rs` (and the fuzz target `fuzz/fuzz_targets/flat_line.rs`) check
//! that whenever this path answers, serde_json gives the identical `Event` or error.

use super::RawLine;

/// Parses `line` into `raw` (as made by `RawLine::default`) if it is a flat object this
/// reader fully understands; `None` otherwise, with `raw` to be thrown away. (Filled in
/// place: returned, the ~400-byte `RawLine` was copied once per line.)
pub(super) fn parse<'a>(line: &'a [u8], raw: &mut RawLine<&'a str>) -> Option<()> {
    let ascii = plain(line)?;
    // One check for the whole line. serde_json checks each string it reads; with the whole
    // line valid, every string slice below (cut next to an ASCII `"`) is valid too.
    let text = if ascii {
        // SAFETY: `plain` saw every byte of `line` below 0x80, and any sequence of ASCII
        // bytes is valid UTF-8. (Skipping `from_utf8` on the usual all-ASCII line took the
        // parse from 307 to 262 ns per line on the benchmark corpus.)
        unsafe { std::str::from_utf8_unchecked(line) }
    } else {
        std::str::from_utf8(line).ok()?
    };
    let tail_len = LAST_TAIL.with_borrow(|last| last.bytes.len());
    let mut p = Cursor { text, bytes: line, pos: 0 };
    let mut seen = 0u32;
    // Where the run of session members that ends the line so far starts, and their bits.
    let (mut run_start, mut run_seen) = (None, 0u32);
    p.expect(b'{')?;
    if p.peek() == Some(b'}') {
        p.pos += 1;
    } else {
        loop {
            let start = p.pos;
            // One compare per member: the bytes are compared only when as many are left.
            // A reuse reads the rest of the line and leaves the remembered members as they are.
            if line.len() - start == tail_len && LAST_TAIL.with_borrow(|last| last.reuse(start, raw, &mut seen, &p)) {
                return Some(());
            }
            match p.key()? {
                Some(field) => {
                    let bit = 1 << field as u32;
                    if seen & bit != 0 {
                        return None; // serde: "duplicate field"
                    }
                    seen |= bit;
                    p.value(field, raw)?;
                    if field.names_the_session() {
                        run_start.get_or_insert(start);
                        run_seen |= bit;
                    } else {
                        (run_start, run_seen) = (None, 0);
                    }
                }
                None => {
                    p.scalar()?;
                    (run_start, run_seen) = (None, 0);
                }
            }
            match p.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    if p.pos != line.len() {
        return None;
    }
    LAST_TAIL.with_borrow_mut(|last| match run_start {
        Some(start) => last.remember(line, start, run_seen, raw),
        None => last.forget(),
    });
    Some(())
}

thread_local! {
    /// The session members that ended the last line read on this thread.
    static LAST_TAIL: std::cell::RefCell<Tail> = const { std::cell::RefCell::new(Tail::new()) };
}

/// The members that end a line when they all name its session (`agentId`, `sessionId`,
/// `sessionKey`, the experiment and variant), and what reading them gave.
///
/// Why: the gateway writes a session's events one after another, and each ends with the
/// same ~90 bytes (`"agentId":"main","sessionId":"sess-42-0200198","experimentId":…}`):
/// on the benchmark corpus 91 % of lines end exactly as the line before. When a line
/// ends with those bytes, the same bytes at a member's start read the same way (a member
/// is read from its bytes alone, with no backslash in the line and `seen` checked for
/// duplicates), so their strings are cut at the same offsets of this line instead of
/// read again. A line that ends otherwise costs one length compare per member.
struct Tail {
    /// The bytes from the first of those members' key to the end of the line (the `}`).
    bytes: Vec<u8>,
    /// The bits of those members' fields (a `null` value has its bit and no span).
    seen: u32,
    /// Each string value: its field and its span within `bytes`.
    spans: Vec<(Field, u32, u32)>,
}

impl Tail {
    const fn new() -> Tail {
        Tail { bytes: Vec::new(), seen: 0, spans: Vec::new() }
    }

    fn forget(&mut self) {
        self.bytes.clear();
    }

    /// Records the members of `line` from `start` on, all read into `raw`.
    fn remember(&mut self, line: &[u8], start: usize, seen: u32, raw: &mut RawLine<&str>) {
        self.bytes.clear();
        self.bytes.extend_from_slice(&line[start..]);
        self.seen = seen;
        self.spans.clear();
        let base = line.as_ptr() as usize + start;
        for field in Field::SESSION {
            if seen & (1 << field as u32) == 0 {
                continue;
            }
            if let Some(value) = *raw.session_slot(field) {
                // The value lies in `line[start..]`: the run's members were read there.
                let from = value.as_ptr() as usize - base;
                self.spans.push((field, from as u32, (from + value.len()) as u32));
            }
        }
    }

    /// If the rest of the line from `start` (a member's start) is the remembered bytes and
    /// holds no field read before it, fills `raw` as reading it would and says so.
    fn reuse<'a>(&self, start: usize, raw: &mut RawLine<&'a str>, seen: &mut u32, p: &Cursor<'a>) -> bool {
        // Nothing remembered matches nothing: `{"type":"x",` ends with no member.
        if self.bytes.is_empty() || p.bytes.get(start..) != Some(&self.bytes[..]) {
            return false;
        }
        if *seen & self.seen != 0 {
            return false; // a duplicate field: the full reading refuses it
        }
        for &(field, from, to) in &self.spans {
            let Some(value) = p.text.get(start + from as usize..start + to as usize) else { return false };
            *raw.session_slot(field) = Some(value);
        }
        *seen |= self.seen;
        #[cfg(test)]
        tests::REUSED.set(tests::REUSED.get() + 1);
        true
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is below `n` (n ≤ 0x80). Exact for the lowest
/// such byte; a byte above it may be flagged wrongly (a borrow), which neither caller
/// minds: one takes the lowest, the other only asks whether there is any.
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH
}

/// `None` if the line holds a backslash (an escape: with none, every string is exactly
/// the bytes between two quotes) or a control character (serde_json refuses them inside
/// strings, and outside them this reader takes no whitespace); else whether every byte is
/// ASCII. Written as three reductions over the bytes (least byte, least byte xor `\\`,
/// all bits), which LLVM turns into vector code on any target: 32 bytes a step on x86-64's
/// baseline SSE2, against 8 for the same test in a word. (Cut into 16-byte chunks, the same
/// test was vectorised across chunks instead, and cost four times the word form.)
fn plain(line: &[u8]) -> Option<bool> {
    let (mut least, mut least_xor, mut any) = (u8::MAX, u8::MAX, 0u8);
    for &b in line {
        least = least.min(b);
        least_xor = least_xor.min(b ^ b'\\');
        any |= b;
    }
    (least >= 0x20 && least_xor != 0).then_some(any < 0x80)
}

/// The index of the first `"` at or after `from`, eight bytes at a time.
fn find_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    let mut rest = bytes.get(from..)?;
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        let found = bytes_below(u64::from_le_bytes(*w) ^ (ONES * u64::from(b'"')), 1);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
        rest = tail;
    }
    rest.iter().position(|&b| b == b'"').map(|i| at + i)
}

/// The fields of [`RawLine`] this reader fills; the discriminant is the field's bit in
/// the mask of fields seen (serde refuses a duplicate).
#[derive(Clone, Copy, PartialEq)]
enum Field {
    TypeA,
    TypeB,
    TypeC,
    Timestamp,
    Ts,
    SessionId,
    SessionKey,
    AgentId,
    Model,
    Provider,
    CostUsd,
    EstimatedCostUsd,
    InputTokens,
    OutputTokens,
    Success,
    Status,
    ExperimentId,
    Variant,
    DottedExperimentId,
    DottedVariant,
}

impl Field {
    /// The fields that name a line's session (all strings), which [`Tail`] remembers.
    const SESSION: [Field; 7] = [
        Field::AgentId,
        Field::SessionId,
        Field::SessionKey,
        Field::ExperimentId,
        Field::Variant,
        Field::DottedExperimentId,
        Field::DottedVariant,
    ];

    const SESSION_BITS: u32 = {
        let (mut bits, mut i) = (0, 0);
        while i < Field::SESSION.len() {
            bits |= 1 << Field::SESSION[i] as u32;
            i += 1;
        }
        bits
    };

    fn names_the_session(self) -> bool {
        Field::SESSION_BITS & (1 << self as u32) != 0
    }
}

impl<'a> RawLine<&'a str> {
    /// The slot of a field that [`Field::names_the_session`] (all are strings).
    fn session_slot(&mut self, field: Field) -> &mut Option<&'a str> {
        debug_assert!(field.names_the_session());
        match field {
            Field::AgentId => &mut self.agent_id,
            Field::SessionId => &mut self.session_id,
            Field::SessionKey => &mut self.session_key,
            Field::ExperimentId => &mut self.experiment_id,
            Field::Variant => &mut self.variant,
            Field::DottedExperimentId => &mut self.dotted_experiment_id,
            _ => &mut self.dotted_variant,
        }
    }
}

/// `Some(Some(field))` for a field this reader fills, `Some(None)` for one `RawLine`
/// does not have (serde skips its value), `None` for `experiment`, `data` and `error`,
/// whose values may be objects: serde's business. Sorted by length first, so that a key
/// is compared with at most three names.
const fn field_of(key: &[u8]) -> Option<Option<Field>> {
    use Field::*;
    let field = match (key.len(), key) {
        (2, b"ts") => Ts,
        (4, b"type") => TypeA,
        (4, b"kind") => TypeC,
        (4, b"data") => return None,
        (5, b"model") => Model,
        (5, b"error") => return None,
        (6, b"status") => Status,
        (7, b"agentId") => AgentId,
        (7, b"costUsd") => CostUsd,
        (7, b"success") => Success,
        (7, b"variant") => Variant,
        (8, b"provider") => Provider,
        (9, b"eventType") => TypeB,
        (9, b"timestamp") => Timestamp,
        (9, b"sessionId") => SessionId,
        (10, b"sessionKey") => SessionKey,
        (10, b"experiment") => return None,
        (11, b"inputTokens") => InputTokens,
        (12, b"outputTokens") => OutputTokens,
        (12, b"experimentId") => ExperimentId,
        (13, b"experiment.id") => DottedExperimentId,
        (16, b"estimatedCostUsd") => EstimatedCostUsd,
        (18, b"experiment.variant") => DottedVariant,
        _ => return Some(None),
    };
    Some(Some(field))
}

/// A key as the bytes that start a member, `key":`, loaded as two little-endian words
/// with the bytes past its end masked off: one or two compares match a key with no
/// search for its end. Exact, because with no backslash in the line a key ends at its
/// first quote, so `type":` cannot be the start of a longer key.
struct KeyPattern {
    field: Field,
    len: usize,
    words: [u64; 2],
    masks: [u64; 2],
}

impl KeyPattern {
    /// The pattern of a key [`field_of`] maps to a field (checked at compile time).
    const fn new(key: &[u8]) -> KeyPattern {
        let field = match field_of(key) {
            Some(Some(field)) => field,
            _ => panic!("not a key of a field"),
        };
        let len = key.len() + 2;
        assert!(len <= 16);
        let (mut words, mut masks) = ([0u64; 2], [0u64; 2]);
        let mut i = 0;
        while i < len {
            let byte = if i < key.len() {
                key[i]
            } else if i == key.len() {
                b'"'
            } else {
                b':'
            };
            words[i / 8] |= (byte as u64) << (8 * (i % 8));
            masks[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        KeyPattern { field, len, words, masks }
    }

    fn matches(&self, words: [u64; 2]) -> bool {
        (words[0] & self.masks[0]) == self.words[0] && (words[1] & self.masks[1]) == self.words[1]
    }
}

/// The keys the gateway writes on most lines, by first letter; any other key, and these
/// when fewer than 16 bytes are left in the line, go through [`field_of`].
fn common_keys(first: u8) -> &'static [KeyPattern] {
    const T: &[KeyPattern] = &[KeyPattern::new(b"type"), KeyPattern::new(b"timestamp"), KeyPattern::new(b"ts")];
    const S: &[KeyPattern] = &[
        KeyPattern::new(b"sessionId"),
        KeyPattern::new(b"sessionKey"),
        KeyPattern::new(b"success"),
        KeyPattern::new(b"status"),
    ];
    const E: &[KeyPattern] =
        &[KeyPattern::new(b"experimentId"), KeyPattern::new(b"eventType"), KeyPattern::new(b"experiment.id")];
    const M: &[KeyPattern] = &[KeyPattern::new(b"model")];
    const P: &[KeyPattern] = &[KeyPattern::new(b"provider")];
    const I: &[KeyPattern] = &[KeyPattern::new(b"inputTokens")];
    const O: &[KeyPattern] = &[KeyPattern::new(b"outputTokens")];
    const C: &[KeyPattern] = &[KeyPattern::new(b"costUsd")];
    const A: &[KeyPattern] = &[KeyPattern::new(b"agentId")];
    const V: &[KeyPattern] = &[KeyPattern::new(b"variant")];
    const K: &[KeyPattern] = &[KeyPattern::new(b"kind")];
    match first {
        b't' => T,
        b's' => S,
        b'e' => E,
        b'm' => M,
        b'p' => P,
        b'i' => I,
        b'o' => O,
        b'c' => C,
        b'a' => A,
        b'v' => V,
        b'k' => K,
        _ => &[],
    }
}

/// A JSON number's syntax, and its value when it has at most 19 digits.
struct Number {
    negative: bool,
    exponent: bool,
    /// The digits without the point, as an integer; meaningful only when `digits <= 19`
    /// (then it did not overflow a `u64`).
    significand: u64,
    digits: u32,
    fraction_digits: u32,
}

/// Exact powers of ten (every one up to 10²² is a double), as serde_json's table.
const POW10: [f64; 20] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19];

impl Number {
    /// A non-negative integer token, as serde_json reads a `u64` field.
    fn as_u64(&self) -> Option<u64> {
        (!self.negative && !self.exponent && self.digits <= 19 && self.fraction_digits == 0).then_some(self.significand)
    }

    /// The value serde_json (without `float_roundtrip`) gives an `f64` field: an integer
    /// token is `n as f64`; a decimal one `significand as f64 / 10^fraction_digits`, one
    /// rounding of exact operands. Signs and exponents are left to serde.
    fn as_f64(&self) -> Option<f64> {
        if self.negative || self.exponent || self.digits > 19 {
            return None;
        }
        let f = self.significand as f64;
        Some(if self.fraction_digits == 0 { f } else { f / POW10[self.fraction_digits as usize] })
    }
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string: with no backslash in the line, it ends at the next quote.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = find_quote(self.bytes, start)?;
        self.pos = end + 1;
        self.text.get(start..end)
    }

    /// A key and the colon after it: `Some(field)` as [`field_of`] answers.
    fn key(&mut self) -> Option<Option<Field>> {
        self.expect(b'"')?;
        let start = self.pos;
        if let Some(ahead) = self.bytes.get(start..start + 16) {
            let word = |i: usize| ahead.get(i..i + 8).and_then(|w| w.try_into().ok()).map(u64::from_le_bytes);
            let words = [word(0)?, word(8)?];
            if let Some(key) = common_keys(ahead[0]).iter().find(|k| k.matches(words)) {
                self.pos = start + key.len;
                return Some(Some(key.field));
            }
        }
        let end = find_quote(self.bytes, start)?;
        self.pos = end + 1;
        self.expect(b':')?;
        field_of(&self.bytes[start..end])
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// The value of a known field: `null` is `None` (as for serde's `Option`); a value
    /// of another type than the field's is not this reader's business.
    fn value(&mut self, field: Field, raw: &mut RawLine<&'a str>) -> Option<()> {
        use Field::*;
        if self.peek()? == b'n' {
            return self.literal(b"null"); // `raw` already holds `None`
        }
        match field {
            TypeA => raw.type_a = Some(self.string()?),
            TypeB => raw.type_b = Some(self.string()?),
            TypeC => raw.type_c = Some(self.string()?),
            Timestamp => raw.timestamp = Some(self.string()?),
            Ts => raw.ts = Some(self.number()?.as_f64()?),
            SessionId => raw.session_id = Some(self.string()?),
            SessionKey => raw.session_key = Some(self.string()?),
            AgentId => raw.agent_id = Some(self.string()?),
            Model => raw.model = Some(self.string()?),
            Provider => raw.provider = Some(self.string()?),
            CostUsd => raw.cost_usd = Some(self.number()?.as_f64()?),
            EstimatedCostUsd => raw.estimated_cost_usd = Some(self.number()?.as_f64()?),
            InputTokens => raw.input_tokens = Some(self.number()?.as_u64()?),
            OutputTokens => raw.output_tokens = Some(self.number()?.as_u64()?),
            Success => raw.success = Some(self.boolean()?),
            Status => raw.status = Some(self.string()?),
            ExperimentId => raw.experiment_id = Some(self.string()?),
            Variant => raw.variant = Some(self.string()?),
            DottedExperimentId => raw.dotted_experiment_id = Some(self.string()?),
            DottedVariant => raw.dotted_variant = Some(self.string()?),
        }
        Some(())
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// Skips a string, number, `true`, `false` or `null` (not an object or array).
    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    /// Skips digits, adding them to `significand` (wrapping: the caller keeps the count).
    fn digits(&mut self, significand: &mut u64) -> u32 {
        let start = self.pos;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.pos) {
            *significand = significand.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.pos += 1;
        }
        (self.pos - start) as u32
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, JSON's grammar, as serde_json
    /// checks it.
    fn number(&mut self) -> Option<Number> {
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let leading_zero = self.peek()? == b'0';
        let mut significand = 0;
        let int_digits = self.digits(&mut significand);
        if int_digits == 0 || (leading_zero && int_digits > 1) {
            return None;
        }
        let mut fraction_digits = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            fraction_digits = self.digits(&mut significand);
            if fraction_digits == 0 {
                return None;
            }
        }
        let exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if exponent {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits(&mut 0) == 0 {
                return None;
            }
        }
        Some(Number { negative, exponent, significand, digits: int_digits + fraction_digits, fraction_digits })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use crate::event::{parse_line_flat, parse_line_with_serde};

    thread_local! {
        /// How many lines had their last members read from [`super::Tail`].
        pub(super) static REUSED: Cell<u32> = const { Cell::new(0) };
    }

    /// Reads `first`, then `second`: says whether `second`'s tail was reused, after checking
    /// that the fast path's answer on it is serde's or none.
    fn after(first: &str, second: &str) -> bool {
        let _ = parse_line_flat(first.as_bytes());
        let before = REUSED.get();
        let fast = parse_line_flat(second.as_bytes());
        let reused = REUSED.get() > before;
        if let Some(fast) = fast {
            assert_eq!(fast, parse_line_with_serde(second.as_bytes()), "{second}");
        }
        reused
    }

    const FIRST: &str = r#"{"type":"tool_call","success":true,"timestamp":"2026-11-19T15:56:00Z","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}"#;

    #[test]
    fn a_line_ending_as_the_last_reads_its_session_from_the_last() {
        let second = r#"{"type":"model_usage","model":"m","costUsd":0.5,"timestamp":"2026-11-19T15:57:00Z","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}"#;
        assert!(after(FIRST, second));
        let event = parse_line_flat(second.as_bytes()).and_then(Result::ok).expect("an event");
        assert_eq!(
            (event.session.as_deref(), &*event.agent, event.experiment.as_deref(), event.variant.as_deref()),
            (Some("s-1"), "coder", Some("e"), Some("B"))
        );
        // From a member that names the session too: the variant is the line's own.
        let variant_first = r#"{"type":"tool_call","timestamp":"2026-11-19T15:56:00Z","variant":"A","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}"#;
        assert!(!after(FIRST, variant_first), "a duplicate variant is not reused");
        assert!(parse_line_flat(variant_first.as_bytes()).is_none(), "serde refuses a duplicate field");
    }

    #[test]
    fn a_line_ending_otherwise_is_read_in_full() {
        for second in [
            // The same length left, other bytes.
            r#"{"type":"tool_call","success":true,"timestamp":"2026-11-19T15:56:00Z","agentId":"coder","sessionId":"s-2","experimentId":"e","variant":"B"}"#,
            // A field of the tail already read.
            r#"{"sessionId":"s-0","timestamp":"2026-11-19T15:56:00Z","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}"#,
            r#"{"agentId":null,"timestamp":"2026-11-19T15:56:00Z","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}"#,
            // The tail's bytes inside a string (escaped: the fast path reads no such line).
            r#"{"type":"x","note":"\"agentId\":\"coder\",\"sessionId\":\"s-1\",\"experimentId\":\"e\",\"variant\":\"B\"}"#,
            // Not an object's end.
            r#"{"type":"tool_call","agentId":"coder","sessionId":"s-1","experimentId":"e","variant":"B"}}"#,
        ] {
            assert!(!after(FIRST, second), "{second}");
        }
        // Nothing remembered: a line that ends with no member.
        let _ = parse_line_flat(br#"{"type":"x","durationMs":1}"#);
        for second in [r#"{"type":"x","#, r#"{"type":"x","durationMs":2}"#] {
            assert!(!after(r#"{"type":"x","durationMs":1}"#, second), "{second}");
        }
    }

    #[test]
    fn a_null_or_non_ascii_tail_is_reused_exactly() {
        let first = r#"{"type":"tool_call","timestamp":"2026-11-19T15:56:00Z","experimentId":null,"agentId":"rédacteur","sessionId":"s-é"}"#;
        let second = r#"{"type":"agent_end","success":false,"timestamp":"2026-11-19T15:58:00Z","experimentId":null,"agentId":"rédacteur","sessionId":"s-é"}"#;
        assert!(after(first, second));
        let event = parse_line_flat(second.as_bytes()).and_then(Result::ok).expect("an event");
        assert_eq!((event.session.as_deref(), &*event.agent, event.experiment), (Some("s-é"), "rédacteur", None));
        // The null's field is in the tail: the same field before it is a duplicate.
        let duplicate = r#"{"experimentId":"x","timestamp":"2026-11-19T15:58:00Z","experimentId":null,"agentId":"rédacteur","sessionId":"s-é"}"#;
        assert!(!after(first, duplicate));
        assert!(parse_line_flat(duplicate.as_bytes()).is_none());
    }

    #[test]
    fn plain_sees_every_byte_in_every_position() {
        let naive =
            |line: &[u8]| (!line.iter().any(|&b| b < 0x20 || b == b'\\')).then_some(line.iter().all(u8::is_ascii));
        // Lengths around the vector widths, each byte value at the first, a middle and the
        // last position of an otherwise plain line.
        for len in [1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200] {
            for byte in 0..=255u8 {
                for at in [0, len / 2, len - 1] {
                    let mut line = vec![b'a'; len];
                    line[at] = byte;
                    assert_eq!(super::plain(&line), naive(&line), "{byte:#04x} at {at} of {len}");
                }
            }
        }
        assert_eq!(super::plain(b""), Some(true));
    }
}
