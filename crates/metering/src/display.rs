//! Text for people: dollars, counts and plain decimals.
//!
//! Every amount in this crate keeps full decimal precision; rounding happens only here,
//! always half away from zero (half-up for the non-negative amounts billing produces).

use rust_decimal::{Decimal, RoundingStrategy};

/// Dollars with two decimals and thousands separators ("$1,234.50"); a positive amount
/// that would show as $0.00 is "<$0.01" so a small bill never reads as free.
pub fn usd(amount: Decimal) -> String {
    dollars(amount, 2, 2, "<$0.01")
}

/// Dollars with at least two and up to six decimals, trailing zeros trimmed ("$0.20",
/// "$6.86668", "$0.000017"); a positive amount below half a millionth is "<$0.000001".
pub fn usd_precise(amount: Decimal) -> String {
    dollars(amount, 2, 6, "<$0.000001")
}

/// A count with thousands separators ("1,088,640").
pub fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// `value` rounded to at most `max_places` decimals, trailing zeros trimmed, with
/// thousands separators ("1,234.5", "0.0125", "400").
pub fn number(value: Decimal, max_places: u32) -> String {
    fixed(value, 0, max_places)
}

/// `value` to three significant digits ("0.42", "58.1", "0.0125"), or to the unit with
/// separators from 1,000 up ("12,345"): precise enough to compare rates, short enough to read.
pub(crate) fn significant(value: Decimal) -> String {
    if value.abs() >= Decimal::ONE_THOUSAND {
        return number(value, 0);
    }
    let rounded = value
        .round_sf_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
        .unwrap_or(value);
    number(rounded, 12)
}

fn dollars(amount: Decimal, min_places: u32, max_places: u32, tiny: &str) -> String {
    let rounded = round(amount, max_places);
    if amount > Decimal::ZERO && rounded.is_zero() {
        return tiny.to_string();
    }
    let text = fixed(amount, min_places, max_places);
    match text.strip_prefix('-') {
        Some(positive) => format!("-${positive}"),
        None => format!("${text}"),
    }
}

fn round(value: Decimal, places: u32) -> Decimal {
    let rounded = value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    // Rounding a tiny negative amount gives a negative zero, which would print as "-0.00".
    if rounded.is_zero() {
        Decimal::ZERO
    } else {
        rounded
    }
}

fn fixed(value: Decimal, min_places: u32, max_places: u32) -> String {
    let mut rounded = round(value, max_places).normalize();
    if rounded.scale() < min_places {
        rounded.rescale(min_places);
    }
    let text = rounded.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    match digits.split_once('.') {
        Some((whole, fraction)) => format!("{sign}{}.{fraction}", group_thousands(whole)),
        None => format!("{sign}{}", group_thousands(digits)),
    }
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn dollars_round_half_up_and_flag_tiny_amounts() {
        assert_eq!(usd(d("0.04")), "$0.04");
        assert_eq!(usd(d("0.045")), "$0.05");
        assert_eq!(usd(d("0.0449999")), "$0.04");
        assert_eq!(usd(d("24")), "$24.00");
        assert_eq!(usd(d("1234567.891")), "$1,234,567.89");
        assert_eq!(usd(d("0")), "$0.00");
        assert_eq!(usd(d("0.0000002")), "<$0.01");
        assert_eq!(usd(d("0.005")), "$0.01");
        assert_eq!(usd(d("-0.0000001")), "$0.00");
        assert_eq!(usd(d("-1.5")), "-$1.50");
    }

    #[test]
    fn precise_dollars_trim_to_at_least_cents() {
        assert_eq!(usd_precise(d("6.86668")), "$6.86668");
        assert_eq!(usd_precise(d("0.20")), "$0.20");
        assert_eq!(usd_precise(d("0.0000166667")), "$0.000017");
        assert_eq!(usd_precise(d("0.0000002")), "<$0.000001");
        assert_eq!(usd_precise(d("1000")), "$1,000.00");
        assert_eq!(usd_precise(Decimal::ZERO), "$0.00");
    }

    #[test]
    fn counts_and_numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_088_640), "1,088,640");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(number(d("0.0125"), 6), "0.0125");
        assert_eq!(number(d("400000.000"), 3), "400,000");
        assert_eq!(number(d("1234.5678"), 2), "1,234.57");
        assert_eq!(significant(d("0.4201")), "0.42");
        assert_eq!(significant(d("58.1111")), "58.1");
        assert_eq!(significant(d("29.16350009")), "29.2");
        assert_eq!(significant(d("12345.6")), "12,346");
        assert_eq!(significant(d("0.000012345")), "0.0000123");
    }
}
