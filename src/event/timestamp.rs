//! The one RFC 3339 form the gateway writes, read without chrono's general parser.
//!
//! `DateTime::parse_from_rfc3339` cost about 430 instructions per event on the benchmark
//! (callgrind), a sixth of what was left once JSON reading got fast. Telemetry timestamps
//! always look like `2026-11-19T15:55:56.111122Z`, so this reads exactly
//! `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` for years 1970 to 2261 (the span `Nanos`
//! holds) with plain arithmetic, and answers `None` for anything else — lowercase `t`/`z`,
//! a space, a leap second, ten fraction digits, an impossible date — which then goes to
//! chrono, the reference. The tests check both agree on every value this accepts.

use std::cell::Cell;

use crate::window::{Nanos, NANOS_PER_SEC};

thread_local! {
    /// The last `YYYY-MM-DDTHH` read on this thread and its seconds since the epoch.
    /// Consecutive events are usually within the same hour, and the date is most of the
    /// work (checks and `days_from_civil`): about 100 fewer instructions per line.
    static LAST_HOUR: Cell<Option<([u8; 13], i64)>> = const { Cell::new(None) };
}

/// Nanoseconds since the epoch, when `text` is in the common form and a real instant.
pub(super) fn parse(text: &str) -> Option<Nanos> {
    let (head, rest) = text.as_bytes().split_first_chunk::<19>()?;
    let (hour_text, _) = head.split_first_chunk::<13>()?;
    let hour_start = match LAST_HOUR.get() {
        Some((last, seconds)) if last == *hour_text => seconds,
        _ => {
            let seconds = hour_seconds(hour_text)?;
            LAST_HOUR.set(Some((*hour_text, seconds)));
            seconds
        }
    };
    // `:MM:SS`
    let [.., colon1, m1, m2, colon2, s1, s2] = *head;
    let [m1, m2, s1, s2] = [m1, m2, s1, s2].map(|b| b.wrapping_sub(b'0'));
    if colon1 != b':' || colon2 != b':' || m1 > 5 || m2 > 9 || s1 > 5 || s2 > 9 {
        return None;
    }
    let (minute, second) = (i64::from(m1) * 10 + i64::from(m2), i64::from(s1) * 10 + i64::from(s2));

    let (nanos, zone) = match rest.split_first() {
        Some((b'.', frac)) => match micros_utc(rest) {
            Some(micros) => (micros * 1_000, &b"Z"[..]),
            None => fraction(frac)?,
        },
        _ => (0, rest),
    };
    let offset = match *zone {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let [h1, h2, m1, m2] = [h1, h2, m1, m2].map(|b| b.wrapping_sub(b'0'));
            let (h, m) = (i64::from(h1) * 10 + i64::from(h2), i64::from(m1) * 10 + i64::from(m2));
            if h1 > 9 || h2 > 9 || m1 > 9 || m2 > 9 || h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };

    let seconds = hour_start + minute * 60 + second - offset;
    Some(seconds * NANOS_PER_SEC + nanos)
}

/// `YYYY-MM-DDTHH` as seconds since the epoch, if a real date and hour from 1970 to 2261.
fn hour_seconds(text: &[u8; 13]) -> Option<i64> {
    // Fixed positions, so no bounds checks and no loop.
    let digit = |i: usize| text[i].wrapping_sub(b'0');
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12].map(digit);
    if digits.iter().any(|&d| d > 9) || [text[4], text[7], text[10]] != *b"--T" {
        return None;
    }
    let pair = |i: usize| i64::from(digits[i]) * 10 + i64::from(digits[i + 1]);
    let (year, month, day, hour) = (pair(0) * 100 + pair(2), pair(4), pair(6), pair(8));
    if !(1970..=2261).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600)
}

/// `.ffffffZ`, the gateway's own ending (microseconds, UTC), as microseconds: the eight
/// bytes as one word, checked and converted without a loop or a branch per digit. The
/// digit loop of [`fraction`] cost about 60 instructions per line; this about 20.
fn micros_utc(rest: &[u8]) -> Option<i64> {
    const ASCII_ZERO: u64 = 0x3030_3030_3030_3030;
    const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let word = u64::from_le_bytes(*<&[u8; 8]>::try_from(rest).ok()?);
    // Byte 0 is the point and byte 7 the `Z` (little-endian: the text's first byte is
    // the word's lowest).
    if word & 0xff00_0000_0000_00ff != 0x5a00_0000_0000_002e {
        return None;
    }
    // Bytes 1 to 6 are digits: each xor '0' is below 10, so adding 0x76 leaves its top bit
    // clear (and the xor's own top bit is clear for bytes below 0x80).
    let digits = (word ^ ASCII_ZERO) & 0x00ff_ffff_ffff_ff00;
    if (digits.wrapping_add(0x0076_7676_7676_7600) | digits) & 0x0080_8080_8080_8000 != 0 {
        return None;
    }
    // The six digits as the last six of eight, `00dddddd`, then Lemire's three multiplies
    // (pairs, then fours, then eight), each lane's sum below its width.
    let eight = ((word >> 8) << 16) | 0x3030;
    let pairs = ((eight & LOW).wrapping_mul(10 << 8 | 1)) >> 8;
    let fours = ((pairs & 0x00ff_00ff_00ff_00ff).wrapping_mul(100 << 16 | 1)) >> 16;
    let value = ((fours & 0x0000_ffff_0000_ffff).wrapping_mul(10_000 << 32 | 1)) >> 32;
    i64::try_from(value).ok()
}

/// `1` to `9` fraction digits as nanoseconds, and what follows them.
fn fraction(frac: &[u8]) -> Option<(i64, &[u8])> {
    /// Nanoseconds per unit of the last digit, by number of digits.
    const SCALE: [i64; 10] = [0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
    let mut value = 0;
    let mut digits = 0;
    while let Some(&d @ b'0'..=b'9') = frac.get(digits) {
        if digits == 9 {
            return None; // finer than nanoseconds
        }
        value = value * 10 + i64::from(d - b'0');
        digits += 1;
    }
    (digits > 0).then(|| (value * SCALE[digits], &frac[digits..]))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`, for years from 1970, so without the negative-era adjustments).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Datelike};

    fn chrono(text: &str) -> Option<Nanos> {
        DateTime::parse_from_rfc3339(text).ok()?.timestamp_nanos_opt()
    }

    /// Whenever the fast parser answers, chrono gives the same instant.
    fn check(text: &str) -> Option<Nanos> {
        let fast = parse(text);
        if let Some(ns) = fast {
            assert_eq!(Some(ns), chrono(text), "{text}");
        }
        fast
    }

    #[test]
    fn the_common_form() {
        assert_eq!(check("2026-11-19T15:56:00.371985Z"), Some(1_795_103_760_371_985_000));
        assert_eq!(check("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(check("1970-01-01T00:00:00.000000001Z"), Some(1));
        assert_eq!(check("2261-12-31T23:59:59.999999999Z"), chrono("2261-12-31T23:59:59.999999999Z"));
    }

    #[test]
    fn every_day_of_leap_and_common_years_and_fractions_of_every_width() {
        let mut accepted = 0;
        for year in [1970, 1999, 2000, 2023, 2024, 2026, 2100, 2104, 2200, 2261] {
            for month in 1..=12 {
                for day in 1..=31 {
                    for (k, time) in ["00:00:00", "23:59:59", "12:34:56", "07:08:09"].iter().enumerate() {
                        let digits = "123456789";
                        let frac = match (day + k) % 11 {
                            0 => String::new(),
                            n => format!(".{}", &digits[..n.min(9)]),
                        };
                        let text = format!("{year:04}-{month:02}-{day:02}T{time}{frac}Z");
                        let fast = check(&text);
                        assert_eq!(fast.is_some(), chrono(&text).is_some(), "{text}");
                        accepted += usize::from(fast.is_some());
                    }
                }
            }
        }
        assert!(accepted > 10 * 365 * 4, "{accepted}");
    }

    #[test]
    fn microseconds_in_utc_read_as_chrono_reads_them() {
        // Every value's last digits, the edges, and every byte in every place of the word.
        for micros in (0..1_000_000).step_by(997).chain([0, 1, 9, 10, 99_999, 100_000, 999_999]) {
            let text = format!("2026-11-19T15:56:07.{micros:06}Z");
            assert_eq!(check(&text), Some(1_795_103_767_000_000_000 + micros * 1_000), "{text}");
        }
        for place in 19..27 {
            for byte in 0..=255u8 {
                let mut text = *b"2026-11-19T15:56:07.123456Z";
                text[place] = byte;
                let form = match place {
                    19 => byte == b'.',
                    26 => byte == b'Z',
                    _ => byte.is_ascii_digit(),
                };
                if let Ok(text) = std::str::from_utf8(&text) {
                    // Equal to chrono whenever read (`check`), and read exactly when in the form.
                    assert_eq!(check(text).is_some(), form, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn offsets() {
        for offset in ["+00:00", "-00:00", "+01:00", "-05:30", "+05:45", "+14:00", "-12:00", "+23:59", "-23:59"] {
            for date in ["2026-11-16T00:30:00", "2024-02-29T23:59:59.5", "1970-01-02T00:00:00.123456789"] {
                let text = format!("{date}{offset}");
                assert!(check(&text).is_some(), "{text}");
            }
        }
        // Before the epoch once the offset is applied: the caller refuses it.
        assert_eq!(check("1970-01-01T00:00:00+01:00"), Some(-3_600 * NANOS_PER_SEC));
    }

    #[test]
    fn anything_else_is_left_to_chrono() {
        for text in [
            "2026-11-19t15:56:00Z",            // lowercase t
            "2026-11-19T15:56:00z",            // lowercase z
            "2026-11-19 15:56:00Z",            // space
            "2026-11-19T15:56:60Z",            // leap second
            "2026-11-19T15:56:00.1234567891Z", // ten digits
            "2026-11-19T15:56:00.Z",
            "2026-11-19T15:56:00",
            "2026-11-19T15:56:00+0100",
            "2026-11-19T15:56:00+24:00",
            "2026-11-19T15:56:00+01:60",
            "2026-11-19T15:56:00Zjunk",
            "2026-11-19T15:56:00+01:00junk",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-11-19T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2262-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "+2026-11-19T15:56:00Z",
            "2026-1-19T15:56:00Z",
            "2026-11-19T15:56:0aZ",
            "２０２６-11-19T15:56:00Z",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn the_hour_cache_never_changes_an_answer() {
        // Same hour as the line before, with good and bad minutes, seconds and zones; a
        // leap second is chrono's business.
        for (text, good) in [
            ("2026-11-19T15:00:00Z", true),
            ("2026-11-19T15:59:59.999Z", true),
            ("2026-11-19T15:60:00Z", false),
            ("2026-11-19T15:56:60Z", false),
            ("2026-11-19T15:5a:00Z", false),
            ("2026-11-19T15-56:00Z", false),
            ("2026-11-19T15:56:00+01:00", true),
            ("2026-11-19T15:56:00", false),
            ("2026-11-19T16:00:00Z", true),
            ("2026-02-29T15:00:00Z", false), // a bad date is never cached
            ("2026-02-29T15:00:01Z", false),
            ("2026-11-19T15:00:02Z", true),
        ] {
            assert_eq!(check(text).is_some(), good, "{text}"); // and equal to chrono's when read
        }
        // NUL bytes (from `\u0000` escapes) never match an empty cache.
        assert_eq!(std::thread::spawn(|| parse("\0\0\0\0\0\0\0\0\0\0\0\0\0:00:00Z")).join().ok(), Some(None));
    }

    #[test]
    fn days_from_civil_matches_chrono_for_every_day() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut date = epoch;
        while date.year() <= 2261 {
            let days = days_from_civil(i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
            assert_eq!(days, (date - epoch).num_days(), "{date}");
            date = date.succ_opt().unwrap();
        }
    }
}
