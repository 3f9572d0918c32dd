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
    fn displays_small_amounts_with_more_digits() {
        assert_eq!(Usd::from_f64(12.345).unwrap().to_string(), "$12.35");
        assert_eq!(Usd::from_f64(0.00123).unwrap().to_string(), "$0.0012");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
    }
}
