//! Billed duration, GB-seconds and the monthly bill with the free tier.

use rust_decimal::Decimal;

use crate::price::Prices;

/// `memory_mb × billed_ms` per GB-second: 1,024 MB × 1,000 ms. It is 2^13·5^3, so
/// dividing by it always gives a terminating decimal (at most 13 places).
pub const MB_MS_PER_GB_SECOND: u64 = 1_024_000;

/// Billed milliseconds for a run of `duration_us` microseconds: rounded up to the next
/// whole millisecond, at least 1 ms (as AWS Lambda bills). Defined in the model, which
/// the invoke path uses without the money types.
pub use gureum_model::billed_ms;

/// Memory-milliseconds of one run: `memory_mb × billed_ms`, saturating at `u64::MAX`
/// (about 18 billion GB-seconds, far past any bill).
pub fn mb_ms(memory_mb: u64, billed_ms: u64) -> u64 {
    memory_mb.saturating_mul(billed_ms)
}

/// GB-seconds in `mb_ms` memory-milliseconds, exactly.
pub fn gb_seconds(mb_ms: u64) -> Decimal {
    // The quotient has at most 13 decimals and, from a u64, at most 14 integer digits:
    // it fits Decimal's 28 digits, so nothing is rounded.
    Decimal::from(mb_ms) / Decimal::from(MB_MS_PER_GB_SECOND)
}

/// Cost at list price (no free tier) of `requests` requests and `mb_ms` memory-milliseconds.
pub fn list_cost(prices: &Prices, requests: u64, mb_ms: u64) -> Decimal {
    cost(prices, Decimal::from(requests), gb_seconds(mb_ms))
}

/// List-price cost of a (possibly fractional, e.g. projected) amount of usage.
pub(crate) fn cost(prices: &Prices, requests: Decimal, gb_seconds: Decimal) -> Decimal {
    request_cost(prices, requests) + gb_seconds * prices.gb_second
}

/// List-price cost of `requests` requests.
pub(crate) fn request_cost(prices: &Prices, requests: Decimal) -> Decimal {
    // Per-request price first: dividing by a power of ten only moves the decimal point,
    // and the product then stays below the requests count in magnitude.
    requests * (prices.requests_per_million / Decimal::from(1_000_000))
}

/// One calendar month of the installation's usage, priced with the free tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    /// Requests that ran in the month.
    pub requests: u64,
    /// GB-seconds used in the month.
    pub gb_seconds: Decimal,
    /// Cost at list price, before the free tier (USD).
    pub gross: Decimal,
    /// Free requests consumed (at most the monthly allowance).
    pub free_requests_used: u64,
    /// Free GB-seconds consumed (at most the monthly allowance).
    pub free_gb_seconds_used: Decimal,
    /// Free requests still available this month.
    pub free_requests_left: u64,
    /// Free GB-seconds still available this month.
    pub free_gb_seconds_left: Decimal,
    /// Requests past the free allowance.
    pub billable_requests: u64,
    /// GB-seconds past the free allowance.
    pub billable_gb_seconds: Decimal,
    /// What the free tier saved: `gross - net` (USD).
    pub credit: Decimal,
    /// What the month costs after the free tier (USD).
    pub net: Decimal,
}

/// The bill of one calendar month in which the whole installation ran `requests` requests
/// using `mb_ms` memory-milliseconds.
pub fn month_bill(prices: &Prices, requests: u64, mb_ms: u64) -> Bill {
    let gbs = gb_seconds(mb_ms);
    let free_requests_used = requests.min(prices.free_requests_per_month);
    let free_gb_seconds_used = gbs.min(prices.free_gb_seconds_per_month);
    let billable_requests = requests - free_requests_used;
    let billable_gb_seconds = gbs - free_gb_seconds_used;
    let gross = cost(prices, Decimal::from(requests), gbs);
    let net = cost(
        prices,
        Decimal::from(billable_requests),
        billable_gb_seconds,
    );
    Bill {
        requests,
        gb_seconds: gbs,
        gross,
        free_requests_used,
        free_gb_seconds_used,
        free_requests_left: prices.free_requests_per_month - free_requests_used,
        free_gb_seconds_left: prices.free_gb_seconds_per_month - free_gb_seconds_used,
        billable_requests,
        billable_gb_seconds,
        credit: gross - net,
        net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn billed_duration_rounds_up_to_whole_ms_with_a_1_ms_floor() {
        assert_eq!(billed_ms(0), 1);
        assert_eq!(billed_ms(1), 1);
        assert_eq!(billed_ms(999), 1);
        assert_eq!(billed_ms(1_000), 1);
        assert_eq!(billed_ms(1_001), 2);
        assert_eq!(billed_ms(2_500_000), 2_500);
        assert_eq!(billed_ms(u64::MAX), 18_446_744_073_709_552);
    }

    #[test]
    fn gb_seconds_are_exact() {
        // 128 MB for 1 ms: 128 / 1,024,000 = 0.000125.
        assert_eq!(gb_seconds(mb_ms(128, 1)), d("0.000125"));
        assert_eq!(gb_seconds(mb_ms(1_024, 1_000)), Decimal::ONE);
        // 1 MB-ms is 1 / (2^13 * 5^3) = 5^10 / 10^13 = 9,765,625 / 10^13.
        assert_eq!(gb_seconds(1), d("0.0000009765625"));
        assert_eq!(gb_seconds(u64::MAX), d("18014398509481.9839990234375"));
        assert_eq!(mb_ms(u64::MAX, 2), u64::MAX);
    }

    #[test]
    fn free_requests_boundary() {
        let prices = Prices::default();
        let bill = month_bill(&prices, 1_000_000, 0);
        assert_eq!(bill.net, Decimal::ZERO);
        assert_eq!(bill.gross, d("0.20"));
        assert_eq!(bill.credit, d("0.20"));
        assert_eq!(bill.free_requests_left, 0);
        // One request past the allowance costs 0.20 / 1,000,000.
        let bill = month_bill(&prices, 1_000_001, 0);
        assert_eq!(bill.net, d("0.0000002"));
        assert_eq!(bill.billable_requests, 1);
        let bill = month_bill(&prices, 999_999, 0);
        assert_eq!(bill.net, Decimal::ZERO);
        assert_eq!(bill.free_requests_left, 1);
    }

    #[test]
    fn free_gb_seconds_boundary() {
        let prices = Prices::default();
        // 400,000 GB-s is 409,600,000,000 MB-ms.
        let bill = month_bill(&prices, 0, 409_600_000_000);
        assert_eq!(bill.gb_seconds, d("400000"));
        assert_eq!(bill.net, Decimal::ZERO);
        assert_eq!(bill.free_gb_seconds_left, Decimal::ZERO);
        // One more 128 MB millisecond: 0.000125 GB-s × 0.0000166667 = 0.0000000020833375.
        let bill = month_bill(&prices, 0, 409_600_000_128);
        assert_eq!(bill.net, d("0.0000000020833375"));
        assert_eq!(bill.billable_gb_seconds, d("0.000125"));
    }

    #[test]
    fn both_allowances_exceeded() {
        let prices = Prices::default();
        // 800,000 GB-s at 1,024 MB is 800,000,000 ms of 1,024 MB = 819,200,000,000 MB-ms.
        // Net: 1,000,000 billable requests × 0.20 / 1e6 = 0.20, plus 400,000 billable GB-s ×
        // 0.0000166667 = 6.66668; 6.86668 in all.
        let bill = month_bill(&prices, 2_000_000, 819_200_000_000);
        assert_eq!(bill.net, d("6.86668"));
        // Gross: 0.40 + 800,000 × 0.0000166667 = 0.40 + 13.33336 = 13.73336.
        assert_eq!(bill.gross, d("13.73336"));
        assert_eq!(bill.credit, d("6.86668"));
        assert_eq!(bill.free_requests_used, 1_000_000);
        assert_eq!(bill.free_gb_seconds_used, d("400000"));
    }

    #[test]
    fn list_cost_ignores_the_free_tier() {
        // 10 requests of 1,024 MB × 1,000 ms: 10 × 0.0000002 + 10 × 0.0000166667.
        assert_eq!(
            list_cost(&Prices::default(), 10, 10_240_000),
            d("0.000168667")
        );
    }
}
