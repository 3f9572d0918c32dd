//! A strict, fast reader for the common telemetry line: one flat JSON object.
//!
//! Why it exists: on the 1 GB shape-A benchmark, serde_json took about 88 % of the ~7,400
//! instructions spent per event (callgrind): a scan and a UTF-8 check per string, a visitor
//! call per field, a key match through serde's identifier machinery. Nearly every line the
//! gateway writes (shapes A and B) is a flat object of short strings without escapes,
//! numbers and booleans. For those, one UTF-8 check of the whole line and one forward scan
//! fill the same [`RawLine`] serde would have filled, at a fraction of the cost; the rest
//! of the pipeline (`RawLine::into_event`) is shared, so both paths mean the same thing.
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

/// Parses `line` if it is a flat object this reader fully understands; `None` otherwise.
pub(super) fn parse(line: &[u8]) -> Option<RawLine<&str>> {
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
    let mut p = Cursor { text, bytes: line, pos: 0 };
    let mut raw = RawLine::default();
    let mut seen = 0u32;
    p.expect(b'{')?;
    if p.peek() == Some(b'}') {
        p.pos += 1;
    } else {
        loop {
            match p.key()? {
                Some(field) => {
                    let bit = 1 << field as u32;
                    if seen & bit != 0 {
                        return None; // serde: "duplicate field"
                    }
                    seen |= bit;
                    p.value(field, &mut raw)?;
                }
                None => p.scalar()?,
            }
            match p.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    (p.pos == line.len()).then_some(raw)
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
/// ASCII. Eight bytes at a time.
fn plain(line: &[u8]) -> Option<bool> {
    let mut rest = line;
    let (mut bad, mut high) = (0, 0);
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        let w = u64::from_le_bytes(*w);
        bad |= bytes_below(w, 0x20) | bytes_below(w ^ (ONES * u64::from(b'\\')), 1);
        high |= w;
        rest = tail;
    }
    for &b in rest {
        bad |= u64::from(b < 0x20 || b == b'\\');
        high |= u64::from(b);
    }
    // A tail byte sits in the low byte of `high`, whose bit 7 is in `HIGH` too.
    (bad == 0).then_some(high & HIGH == 0)
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
#[derive(Clone, Copy)]
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
