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

    /// A cost from a float; `None` for NaN, infinities and negative amounts, which no
    /// bill holds and which would corrupt every total they touch.
    pub fn from_f64(usd: f64) -> Option<Usd> {
        (usd.is_finite() && usd >= 0.0).then(|| Usd((usd * PICO_PER_USD).round() as i128))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PICO_PER_USD
    }

    pub fn pico(self) -> i128 {
        self.0
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

/// `$12.34`, and more digits for amounts under a cent so they never read as zero.
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.as_f64();
        if v != 0.0 && v.abs() < 0.01 {
            write!(f, "${v:.4}")
        } else {
            write!(f, "${v:.2}")
        }
    }
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

    #[test]
    fn displays_small_amounts_with_more_digits() {
        assert_eq!(Usd::from_f64(12.345).unwrap().to_string(), "$12.35");
        assert_eq!(Usd::from_f64(0.00123).unwrap().to_string(), "$0.0012");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
    }
}
