//! US dollars as an exact integer count of pico-dollars.
//!
//! Costs arrive as floats (JSON numbers, PromQL and LogQL samples). Summing floats gives a
//! result that depends on the order of the additions, and obsctl adds in parallel, in
//! whatever order the threads finish. Converting each cost once to an integer makes every
//! sum exact and order-free, so the same input always renders the same bytes. 10⁻¹² USD
//! is far below any price on a bill; `i128` cannot overflow on any real spend.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i128);

const PICO_PER_USD: f64 = 1e12;

impl Usd {
    pub const ZERO: Usd = Usd(0);

    /// A cost from a float; `None` for NaN, infinities, negative amounts and amounts over
    /// [`Usd::MAX_ONE`], which no bill holds and which would corrupt every total they touch.
    pub fn from_f64(usd: f64) -> Option<Usd> {
        (usd.is_finite() && (0.0..=Usd::MAX_ONE).contains(&usd)).then(|| Usd((usd * PICO_PER_USD).round() as i128))
    }

    /// The largest single amount taken: $10^15. A sum of 10^11 of them still fits the
    /// `i128` of pico-dollars (10^38), where one 10^27 would saturate it (found by fuzzing).
    pub const MAX_ONE: f64 = 1e15;

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PICO_PER_USD
    }

    pub fn pico(self) -> i128 {
        self.0
    }

    pub const fn from_pico(pico: i128) -> Usd {
        Usd(pico)
    }

    /// The exact amount as a plain decimal number, without trailing zeros (`0.530955`,
    /// `2`): for charts, which need every digit and no `$`.
    pub fn decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let pico = self.0.unsigned_abs();
        let fraction = format!("{:012}", pico % 1_000_000_000_000);
        let fraction = fraction.trim_end_matches('0');
        let whole = pico / 1_000_000_000_000;
        if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }
    }

    /// A dollar figure that is a float (a gate's threshold, a mean, a difference), shown
    /// by the same rule as [`Usd`]'s `Display`; negative amounts keep their sign.
    pub fn show_f64(usd: f64) -> String {
        if !usd.is_finite() {
            return format!("${usd}");
        }
        Usd((usd * PICO_PER_USD).round() as i128).to_string()
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0 + rhs.0)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        self.0 += rhs.0;
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0 - rhs.0)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

/// How every human format shows money (tables, Markdown, the gate's verdicts): `$12.34`
/// from a cent up; under a cent, two significant digits (`$0.0042`, `$0.00042`), so that
/// small costs never read as `$0.00` and two of them can be told apart; `$0.00` for zero.
/// Rounded half up, on the exact amount.
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let (digits, decimals) = rounded(self.0.unsigned_abs());
        let unit = 10u128.pow(decimals);
        write!(f, "{sign}${}.{:0width$}", grouped(digits / unit), digits % unit, width = decimals as usize)
    }
}

/// `1234567` → `1,234,567`: whole dollars as token counts are shown, readable at a glance.
pub fn grouped(whole: u128) -> String {
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const PICO_PER_CENT: u128 = 10_000_000_000;

/// `pico` pico-dollars as `(digits, decimals)`: the amount is `digits / 10^decimals`.
fn rounded(pico: u128) -> (u128, u32) {
    if pico == 0 || pico >= PICO_PER_CENT {
        return (div_round(pico, PICO_PER_CENT), 2);
    }
    // Two significant digits: a 10-digit amount (0.00xy) needs 4 decimals, 9 digits 5, …
    let mut decimals = 14 - (pico.ilog10() + 1);
    let mut digits = to_decimals(pico, decimals);
    if digits >= 100 {
        // Rounding carried into a third digit (0.0099996 → 0.010): one decimal fewer.
        decimals -= 1;
        digits = to_decimals(pico, decimals);
    }
    if decimals < 4 {
        // It rounded up to a whole cent.
        return (1, 2);
    }
    (digits, decimals)
}

/// `pico` in units of 10^-decimals USD, rounded half up.
fn to_decimals(pico: u128, decimals: u32) -> u128 {
    match decimals.checked_sub(12) {
        Some(more) => pico * 10u128.pow(more),
        None => div_round(pico, 10u128.pow(12 - decimals)),
    }
}

fn div_round(n: u128, d: u128) -> u128 {
    (n + d / 2) / d
}

/// Σ x² over costs x, exactly: each cost is a whole number of pico-dollars, and its square
/// and the sum are kept as a 256-bit integer, so neither the order of the additions (maps,
/// merged threads) nor their number changes a bit of the result. Both sources use it for the
/// gate's spread of cost per session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SquareSum {
    /// Σ pico² = `high` · 2¹²⁸ + `low`.
    high: u128,
    low: u128,
}

impl SquareSum {
    pub fn add(&mut self, x: Usd) {
        let p = x.pico().unsigned_abs();
        // p = a·2⁶⁴ + b, so p² = a²·2¹²⁸ + ab·2⁶⁵ + b², each part below 2¹²⁸ before shifting.
        let (a, b) = (p >> 64, p & u128::from(u64::MAX));
        let ab = a * b;
        self.add_wide(a * a, 0);
        self.add_wide(ab >> 63, ab << 65);
        self.add_wide(0, b * b);
    }

    fn add_wide(&mut self, high: u128, low: u128) {
        let (sum, carry) = self.low.overflowing_add(low);
        self.low = sum;
        self.high = self.high.saturating_add(high).saturating_add(u128::from(carry));
    }

    /// The sum in USD².
    pub fn usd2(self) -> f64 {
        (self.high as f64 * 2f64.powi(128) + self.low as f64) / 1e24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_and_order_free() {
        let costs = [0.1, 0.2, 0.086997, 1e-7, 391.898925];
        let forward: Usd = costs.iter().map(|&c| Usd::from_f64(c).unwrap()).sum();
        let backward: Usd = costs.iter().rev().map(|&c| Usd::from_f64(c).unwrap()).sum();
        assert_eq!(forward, backward);
        assert_eq!(forward.pico(), 392_285_922_100_000);
    }

    #[test]
    fn refuses_what_no_bill_holds() {
        assert_eq!(Usd::from_f64(f64::NAN), None);
        assert_eq!(Usd::from_f64(f64::INFINITY), None);
        assert_eq!(Usd::from_f64(-0.5), None);
        assert_eq!(Usd::from_f64(0.0), Some(Usd::ZERO));
    }

    #[test]
    fn square_sums_are_exact() {
        let mut s = SquareSum::default();
        s.add(Usd::from_f64(1.5).unwrap());
        s.add(Usd::from_f64(0.25).unwrap());
        assert_eq!(s.usd2(), 2.3125);
        // Past 2⁶⁴ pico-dollars (about 18 million USD), squares go past 2¹²⁸.
        let mut big = SquareSum::default();
        let x = Usd::from_f64(1e8).unwrap();
        big.add(x);
        big.add(x);
        assert_eq!(big.usd2(), 2e16);
        let mut other = SquareSum::default();
        other.add(Usd::from_f64(2e8).unwrap());
        assert_eq!(other.usd2(), 2.0 * big.usd2());
    }

    fn shown(usd: f64) -> String {
        Usd::from_f64(usd).unwrap().to_string()
    }

    #[test]
    fn cents_from_a_cent_up() {
        assert_eq!(shown(12.345), "$12.35");
        assert_eq!(shown(0.01), "$0.01");
        assert_eq!(shown(6.301855), "$6.30");
        assert_eq!(shown(1234.5), "$1,234.50");
        assert_eq!(shown(999.994), "$999.99");
        assert_eq!(shown(1_000_000.0), "$1,000,000.00");
        assert_eq!((Usd::ZERO - Usd::from_f64(12_345.0).unwrap()).to_string(), "-$12,345.00");
        assert_eq!(shown(0.014999), "$0.01");
        assert_eq!(shown(0.015), "$0.02", "half up, on the exact amount");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
    }

    #[test]
    fn two_significant_digits_under_a_cent() {
        assert_eq!(shown(0.0042), "$0.0042");
        assert_eq!(shown(0.00123), "$0.0012");
        assert_eq!(shown(0.00042), "$0.00042");
        assert_eq!(shown(0.000042), "$0.000042");
        assert_eq!(shown(0.0099), "$0.0099");
        assert_eq!(shown(0.001), "$0.0010");
        assert_eq!(shown(0.00425), "$0.0043");
        // Small costs that differ read differently.
        assert_ne!(shown(0.0042), shown(0.0047));
        assert_ne!(shown(0.00042), shown(0.0042));
        // Rounding that carries: one decimal fewer, or a whole cent.
        assert_eq!(shown(0.00099996), "$0.0010");
        assert_eq!(shown(0.0099996), "$0.01");
        // The smallest amount there is.
        assert_eq!(Usd(1).to_string(), "$0.0000000000010");
        assert_eq!(Usd(-4_200_000_000).to_string(), "-$0.0042");
    }

    #[test]
    fn floats_follow_the_same_rule() {
        assert_eq!(Usd::show_f64(0.00042), "$0.00042");
        assert_eq!(Usd::show_f64(30.0), "$30.00");
        assert_eq!(Usd::show_f64(-0.5), "-$0.50");
        assert_eq!(Usd::show_f64(0.0), "$0.00");
        assert_eq!(Usd::show_f64(f64::INFINITY), "$inf");
    }

    #[test]
    fn exact_decimals_for_charts() {
        assert_eq!(Usd::from_f64(0.530955).unwrap().decimal(), "0.530955");
        assert_eq!(Usd::from_f64(2.0).unwrap().decimal(), "2");
        assert_eq!(Usd::from_f64(0.0000042).unwrap().decimal(), "0.0000042");
        assert_eq!(Usd::ZERO.decimal(), "0");
        assert_eq!(Usd(1).decimal(), "0.000000000001");
    }
}
