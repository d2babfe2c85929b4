//! What an axis's numbers are, and how its ticks read: `10 ms`, `1.5 ms`, `20,000`,
//! `2.7 MiB`, never `10000.0` or `2854432.35`. The printers are `crate::units`' with
//! the zeros a tick does not need left off; plots ask this module for every tick.

use crate::units;

/// The unit of an axis's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Plain numbers (devices, requests a second): `20,000`, `0.5`.
    Count,
    /// Microseconds: `850 us`, `1.5 ms`, `2 s`.
    Micros,
    /// Bytes: `512 B`, `6.4 KiB`, `2.7 MiB`.
    Bytes,
    /// Seconds: `30 s`, `1.5 s`.
    Seconds,
    /// A fraction shown as a percentage: 0.5 is `50%`.
    Share,
}

impl Unit {
    /// The tick label of `value`.
    pub(crate) fn tick(self, value: f64) -> String {
        if !value.is_finite() {
            return String::new();
        }
        match self {
            Self::Count => count(value),
            Self::Micros if value.abs() < 1.0 => "0 us".into(),
            Self::Micros => trim_zeros(&units::micros(value)),
            Self::Bytes if value.abs() < 1.0 => "0 B".into(),
            Self::Bytes => trim_zeros(&units::bytes(value)),
            Self::Seconds => format!("{} s", trim_zeros(&format!("{value:.2}"))),
            Self::Share => format!("{}%", trim_zeros(&format!("{:.1}", value * 100.0))),
        }
    }
}

impl Unit {
    /// What to divide an axis reaching `highest` by before drawing it, so that the
    /// ticks chosen on it fall on round numbers of its unit: a power of 1024 for bytes
    /// (ticks on whole MiB, not on 2,000,000 bytes as `1.9 MiB`), 1 otherwise. A tick
    /// then reads `tick(value * divisor)`.
    pub(crate) fn divisor(self, highest: f64) -> f64 {
        let mut divisor = 1.0;
        if self == Self::Bytes {
            while highest / divisor >= 1024.0 && divisor < 1024f64.powi(4) {
                divisor *= 1024.0;
            }
        }
        divisor
    }
}

/// A plain number: whole thousands grouped (`20,000`), fractions to two places at most.
pub(crate) fn count(value: f64) -> String {
    if value.fract().abs() < 1e-9 && value.abs() < 1e15 {
        return grouped(value.round() as i64);
    }
    trim_zeros(&format!("{value:.2}"))
}

/// 1234567 as "1,234,567".
pub(crate) fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0 {
        out.insert(0, '-');
    }
    out
}

/// The first number in `text` without the zeros after its decimal point that say
/// nothing: `1.50 ms` as `1.5 ms`, `10.00 ms` as `10 ms`, `512.0 KiB` as `512 KiB`.
fn trim_zeros(text: &str) -> String {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    let number = match number.contains('.') {
        true => number.trim_end_matches('0').trim_end_matches('.'),
        false => number,
    };
    format!("{number}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_in_their_units_without_needless_zeros() {
        assert_eq!(Unit::Micros.tick(10_000.0), "10 ms");
        assert_eq!(Unit::Micros.tick(1_500.0), "1.5 ms");
        assert_eq!(Unit::Micros.tick(850.0), "850 us");
        assert_eq!(Unit::Micros.tick(0.0), "0 us");
        assert_eq!(Unit::Micros.tick(2_000_000.0), "2 s");
        assert_eq!(Unit::Count.tick(20_000.0), "20,000");
        assert_eq!(Unit::Count.tick(0.5), "0.5");
        assert_eq!(Unit::Count.tick(12.0), "12");
        assert_eq!(Unit::Bytes.tick(2_854_432.35), "2.7 MiB");
        assert_eq!(Unit::Bytes.tick(512.0 * 1024.0), "512 KiB");
        assert_eq!(Unit::Bytes.tick(2.0 * 1024.0 * 1024.0 * 1024.0), "2 GiB");
        assert_eq!(Unit::Bytes.tick(0.0), "0 B");
        assert_eq!(Unit::Seconds.tick(30.0), "30 s");
        assert_eq!(Unit::Seconds.tick(1.5), "1.5 s");
        assert_eq!(Unit::Share.tick(0.5), "50%");
        assert_eq!(grouped(-1000), "-1,000");
        let mib = 1024.0 * 1024.0;
        assert_eq!(Unit::Bytes.divisor(17.2 * mib), mib);
        assert_eq!(
            Unit::Bytes.tick(2.0 * Unit::Bytes.divisor(17.2 * mib)),
            "2 MiB"
        );
        assert_eq!(Unit::Bytes.divisor(900.0), 1.0);
        assert_eq!(Unit::Micros.divisor(20_000.0), 1.0);
    }
}
