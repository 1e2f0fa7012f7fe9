//! VM comparison tests: the break-even solved by hand on the piecewise-linear cost, the
//! observed rate, the table and the sentence.

use std::str::FromStr;

use super::*;
use crate::report::{GroupBy, ReportQuery, UsageRow, report};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A report over `period_s` seconds (within one day) with `requests` requests of
/// `mb_ms_each` memory-milliseconds each.
fn observed(prices: &Prices, requests: u64, mb_ms_each: u64, period_s: i64) -> Report {
    // 2026-11-25 00:00 UTC.
    let since = 20_782 * 86_400_000;
    let rows = vec![UsageRow {
        day: 20_782,
        function: "f".into(),
        version: 1,
        requests,
        mb_ms: requests * mb_ms_each,
        ..UsageRow::default()
    }];
    let query = ReportQuery {
        function: None,
        since_ms: since,
        by: GroupBy::Day,
    };
    report(prices, &rows, &query, since + period_s * 1_000)
}

#[test]
fn break_even_with_default_prices_and_default_requests() {
    // Requests of 128 MB × 100 ms = 0.0125 GB-s. Per request: 0.20 / 1e6 = 0.0000002 for
    // the request and 0.0125 × 0.0000166667 = 0.00000020833375 for the memory.
    // Free requests run out at N = 1,000,000; free GB-s at 400,000 / 0.0125 = 32,000,000.
    // Up to 1,000,000 the cost is 0. From there to 32,000,000 it grows by 0.0000002 a
    // request, reaching 31,000,000 × 0.0000002 = 6.20 < 24 at the end. Beyond, it grows by
    // 0.00000040833375 a request, so 24 is reached at
    //   N = 32,000,000 + (24 − 6.20) / 0.00000040833375
    //     = 32,000,000 + 14,240,000,000,000 / 326,667
    //     = 24,693,344,000,000 / 326,667 = 75,591,792.2532732109457031166294728…
    // Check on whole counts: 75,591,792 requests cost 74,591,792 × 0.0000002 = 14.9183584
    // plus 544,897.4 GB-s × 0.0000166667 = 9.08164149658, 23.99999989658 ≤ 24; one more
    // costs 14.9183586 + 544,897.4125 × 0.0000166667 = 24.00000030491375 > 24.
    let prices = Prices::default();
    let per_request = d("0.0125");
    let n = break_even(&prices, per_request, d("24")).unwrap();
    assert!(
        (n - d("75591792.2532732109457031166294728")).abs() < d("0.000000000001"),
        "{n}"
    );
    assert_eq!(n.floor(), d("75591792"));
    assert_eq!(
        serverless_monthly(&prices, d("75591792"), per_request),
        d("23.99999989658")
    );
    assert_eq!(
        serverless_monthly(&prices, d("75591793"), per_request),
        d("24.00000030491375")
    );

    let idle = observed(&prices, 0, 0, 3_600);
    let c = compare_vm(&prices, &idle, d("24"));
    assert!(!c.has_traffic);
    assert_eq!(c.gb_seconds_per_request, d("0.0125"));
    assert_eq!(c.serverless_monthly, Decimal::ZERO);
    let be = c.break_even.unwrap();
    assert_eq!(be.requests_per_month, n);
    // 75,591,792.25… / 2,592,000 = 29.1635…
    assert_eq!(be.requests_per_second.round_dp(4), d("29.1635"));
    assert_eq!(
        c.sentence,
        "There was no traffic in this period, so gureum costs nothing against $24.00 a month \
         for an always-on VM; for requests of 128 MB and 100 ms (0.0125 GB-s each), the VM \
         becomes cheaper above 29.2 requests/s (75,591,792 requests a month)."
    );
    // Without traffic there is no observed row.
    assert_eq!(c.table.len(), 5);
}

#[test]
fn break_even_inside_the_first_paid_piece() {
    // Requests priced, memory free (GB-s free tier large): cost = (N − 1,000,000) ×
    // 0.0000002, which is $1 at N = 1,000,000 + 5,000,000 = 6,000,000.
    let prices = Prices {
        free_gb_seconds_per_month: d("1000000000000"),
        ..Prices::default()
    };
    assert_eq!(
        break_even(&prices, d("0.0125"), Decimal::ONE),
        Some(d("6000000"))
    );
    // No free tier at all: both slopes apply from N = 0, so $1 buys 1 / 0.00000040833375
    // requests.
    let prices = Prices {
        free_requests_per_month: 0,
        free_gb_seconds_per_month: Decimal::ZERO,
        ..Prices::default()
    };
    let n = break_even(&prices, d("0.0125"), Decimal::ONE).unwrap();
    // 1 / 0.00000040833375 = 100,000,000,000,000 / 40,833,375 = 2,448,977.09…
    assert_eq!(n.round_dp(2), d("2448977.09"));
    // GB-s allowance ends first (at 400,000 / 1 = 400,000 requests of 1 GB-s), requests
    // free up to 1,000,000: from 400,000 the cost grows by 0.0000166667 a request, so $1
    // is reached 1 / 0.0000166667 = 59,999.88… requests later.
    let prices = Prices::default();
    let n = break_even(&prices, Decimal::ONE, Decimal::ONE).unwrap();
    assert_eq!(n.round_dp(2), d("459999.88"));
    // A VM that costs nothing is cheaper as soon as anything is billed.
    assert_eq!(
        break_even(&prices, Decimal::ONE, Decimal::ZERO),
        Some(d("400000"))
    );
}

#[test]
fn no_break_even_when_requests_cost_nothing() {
    let free = Prices {
        requests_per_million: Decimal::ZERO,
        gb_second: Decimal::ZERO,
        ..Prices::default()
    };
    assert_eq!(break_even(&free, d("0.0125"), d("24")), None);
    let c = compare_vm(&free, &observed(&free, 100, 12_800, 100), d("24"));
    assert_eq!(c.break_even, None);
    assert!(
        c.sentence.ends_with(
            "the VM never becomes cheaper, since requests cost nothing at these prices."
        ),
        "{}",
        c.sentence
    );
    assert!(c.table.iter().all(|r| r.cheaper == Cheaper::Serverless));
    // Memory without a price but requests with one still has a break-even.
    let requests_only = Prices {
        gb_second: Decimal::ZERO,
        ..Prices::default()
    };
    assert_eq!(
        break_even(&requests_only, d("0.0125"), d("24")),
        Some(d("121000000"))
    );
}

#[test]
fn observed_rate_table_and_sentence() {
    let prices = Prices::default();
    // 42 requests of 128 MB × 100 ms (12,800 MB-ms) in 100 s: 0.42 requests/s, 1,088,640
    // a month, 0.0125 GB-s each.
    let r = observed(&prices, 42, 12_800, 100);
    let c = compare_vm(&prices, &r, d("24"));
    assert!(c.has_traffic);
    assert_eq!(c.requests_per_second, d("0.42"));
    assert_eq!(c.requests_per_month, d("1088640"));
    assert_eq!(c.gb_seconds_per_request, d("0.0125"));
    // 88,640 billable requests × 0.0000002 = 0.017728; 13,608 GB-s are within the free tier.
    assert_eq!(c.serverless_monthly, d("0.017728"));
    assert_eq!(
        c.sentence,
        "At your rate of 0.42 requests/s (1,088,640 a month) and 0.0125 GB-s per request, \
         gureum at these prices costs $0.02 a month against $24.00 for an always-on VM; the \
         VM becomes cheaper above 29.2 requests/s (75,591,792 requests a month)."
    );

    let rates: Vec<Decimal> = c.table.iter().map(|r| r.requests_per_second).collect();
    assert_eq!(
        rates,
        [d("0.1"), d("0.42"), d("1"), d("10"), d("100"), d("1000")]
    );
    assert!(c.table[1].observed);
    assert_eq!(c.table.iter().filter(|r| r.observed).count(), 1);
    // 0.1 /s = 259,200 a month, all free.
    assert_eq!(c.table[0].requests_per_month, d("259200"));
    assert_eq!(c.table[0].serverless_monthly, Decimal::ZERO);
    // 10 /s = 25,920,000 a month: 24,920,000 billable requests × 0.0000002 = 4.984;
    // 324,000 GB-s, free.
    assert_eq!(c.table[3].serverless_monthly, d("4.984"));
    assert_eq!(c.table[3].cheaper.as_str(), "serverless");
    // 100 /s = 259,200,000: 258,200,000 × 0.0000002 = 51.64, and 3,240,000 − 400,000 =
    // 2,840,000 GB-s × 0.0000166667 = 47.333428; 98.973428 > 24.
    assert_eq!(c.table[4].serverless_monthly, d("98.973428"));
    assert_eq!(c.table[4].cheaper, Cheaper::Vm);
    assert_eq!(c.table[4].vm_monthly, d("24"));
    assert_eq!(c.table[5].cheaper.as_str(), "vm");
}

#[test]
fn past_the_break_even_the_sentence_says_so() {
    let prices = Prices::default();
    // 100 requests/s of 0.0125 GB-s against a $24 VM.
    let r = observed(&prices, 10_000, 12_800, 100);
    let c = compare_vm(&prices, &r, d("24"));
    assert_eq!(c.serverless_monthly, d("98.973428"));
    assert!(
        c.sentence.ends_with(
            "the VM is already cheaper, as it is above 29.2 requests/s (75,591,792 requests a month)."
        ),
        "{}",
        c.sentence
    );
}
