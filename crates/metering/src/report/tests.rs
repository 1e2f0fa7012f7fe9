//! Report tests: grouping, the free tier shared out day by day, month rollover and the
//! projection, each against figures worked out by hand.

use std::str::FromStr;

use super::*;
use crate::calendar::{day_from_date, day_start_ms};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Milliseconds of `y-m-d` at `hour`:00 UTC.
fn at(y: i64, m: u32, day: u32, hour: i64) -> i64 {
    day_start_ms(day_from_date(y, m, day)) + hour * 3_600_000
}

fn row(
    y: i64,
    m: u32,
    day: u32,
    function: &str,
    version: i64,
    requests: u64,
    mb_ms: u64,
) -> UsageRow {
    UsageRow {
        day: day_from_date(y, m, day),
        function: function.into(),
        version,
        requests,
        mb_ms,
        billed_ms: mb_ms / 128,
        ..UsageRow::default()
    }
}

fn query(function: Option<&str>, since_ms: i64, by: GroupBy) -> ReportQuery {
    ReportQuery {
        function: function.map(String::from),
        since_ms,
        by,
    }
}

/// No free tier and round prices: cost is list price, $1 per million requests and
/// $0.00001 per GB-second.
fn plain_prices() -> Prices {
    Prices {
        requests_per_million: Decimal::ONE,
        gb_second: d("0.00001"),
        free_requests_per_month: 0,
        free_gb_seconds_per_month: Decimal::ZERO,
    }
}

fn grouping_rows() -> Vec<UsageRow> {
    vec![
        // Before the period: only counts towards the free tier.
        row(2026, 11, 1, "a", 1, 1_000, 128_000),
        UsageRow {
            errors: 2,
            throttled: 1,
            cold_starts: 3,
            duration_us: 150_000,
            bytes_in: 1_000,
            bytes_out: 2_000,
            ..row(2026, 11, 2, "a", 1, 100, 25_600)
        },
        UsageRow {
            cold_starts: 1,
            bytes_in: 500,
            bytes_out: 500,
            ..row(2026, 11, 2, "a", 2, 50, 12_800)
        },
        row(2026, 11, 2, "b", 1, 10, 1_024_000),
        UsageRow {
            throttled: 4,
            ..row(2026, 11, 3, "a", 2, 40, 10_240)
        },
        // After now: ignored.
        row(2026, 11, 4, "a", 2, 7, 7),
    ]
}

#[test]
fn groups_by_day_for_one_function() {
    let since = at(2026, 11, 2, 12);
    let now = at(2026, 11, 3, 10);
    let r = report(
        &plain_prices(),
        &grouping_rows(),
        &query(Some("a"), since, GroupBy::Day),
        now,
    );
    assert_eq!(r.first_day, day_from_date(2026, 11, 2));
    assert_eq!(r.last_day, day_from_date(2026, 11, 3));
    let labels: Vec<String> = r.groups.iter().map(|g| g.key.label()).collect();
    assert_eq!(labels, ["2026-11-02", "2026-11-03"]);

    let nov2 = &r.groups[0].totals;
    assert_eq!(nov2.requests, 150);
    assert_eq!(nov2.errors, 2);
    assert_eq!(nov2.throttled, 1);
    assert_eq!(nov2.cold_starts, 4);
    assert_eq!(nov2.duration_us, 150_000);
    assert_eq!(nov2.billed_ms, 300);
    assert_eq!(nov2.mb_ms, 38_400);
    assert_eq!(nov2.bytes_in, 1_500);
    assert_eq!(nov2.bytes_out, 2_500);
    // 38,400 MB-ms = 0.0375 GB-s; 150 × 0.000001 + 0.0375 × 0.00001 = 0.000150375.
    assert_eq!(nov2.gb_seconds, d("0.0375"));
    assert_eq!(nov2.cost_list, d("0.000150375"));
    assert_eq!(nov2.cost, d("0.000150375"));

    let nov3 = &r.groups[1].totals;
    assert_eq!((nov3.requests, nov3.throttled), (40, 4));
    // 10,240 MB-ms = 0.01 GB-s; 40 × 0.000001 + 0.01 × 0.00001 = 0.0000401.
    assert_eq!(nov3.gb_seconds, d("0.01"));
    assert_eq!(nov3.cost_list, d("0.0000401"));

    assert_eq!(r.total.requests, 190);
    assert_eq!(r.total.throttled, 5);
    assert_eq!(r.total.gb_seconds, d("0.0475"));
    assert_eq!(r.total.cost_list, d("0.000190475"));
    assert_eq!(r.total.cost, d("0.000190475"));
}

#[test]
fn groups_by_function_and_version() {
    let since = at(2026, 11, 2, 0);
    let now = at(2026, 11, 3, 10);
    let rows = grouping_rows();

    let r = report(
        &plain_prices(),
        &rows,
        &query(None, since, GroupBy::Function),
        now,
    );
    let keys: Vec<&GroupKey> = r.groups.iter().map(|g| &g.key).collect();
    assert_eq!(
        keys,
        [
            &GroupKey::Function("a".into()),
            &GroupKey::Function("b".into())
        ]
    );
    assert_eq!(r.groups[0].totals.requests, 190);
    // b: 10 × 0.000001 + 1 GB-s × 0.00001.
    assert_eq!(r.groups[1].totals.requests, 10);
    assert_eq!(r.groups[1].totals.cost, d("0.00002"));
    assert_eq!(r.total.requests, 200);
    assert_eq!(r.total.cost, d("0.000210475"));

    let r = report(
        &plain_prices(),
        &rows,
        &query(Some("a"), since, GroupBy::Version),
        now,
    );
    let labels: Vec<String> = r.groups.iter().map(|g| g.key.label()).collect();
    assert_eq!(labels, ["a v1", "a v2"]);
    // v1: 100 requests, 25,600 MB-ms = 0.025 GB-s; v2: 90 requests, 23,040 MB-ms = 0.0225.
    assert_eq!(r.groups[0].totals.requests, 100);
    assert_eq!(r.groups[0].totals.gb_seconds, d("0.025"));
    assert_eq!(r.groups[1].totals.requests, 90);
    assert_eq!(r.groups[1].totals.gb_seconds, d("0.0225"));
    assert_eq!(
        r.groups[1].key,
        GroupKey::Version {
            function: "a".into(),
            version: 2
        }
    );

    let r = report(
        &plain_prices(),
        &rows,
        &query(Some("nobody"), since, GroupBy::Day),
        now,
    );
    assert!(r.groups.is_empty());
    assert_eq!(r.total, Totals::default());
}

/// A small free tier: 1,000 requests and 10 GB-seconds a month, Lambda unit prices.
fn small_free_tier() -> Prices {
    Prices {
        free_requests_per_month: 1_000,
        free_gb_seconds_per_month: d("10"),
        ..Prices::default()
    }
}

const GB_S: u64 = 1_024_000;

fn attribution_rows() -> Vec<UsageRow> {
    vec![
        // Another month: must not touch November's allowance.
        row(2026, 10, 31, "a", 1, 5_000, 50 * GB_S),
        // Nov 1: 800 requests and 6 GB-s, all free; leaves 200 requests and 4 GB-s.
        row(2026, 11, 1, "a", 1, 600, 5 * GB_S),
        row(2026, 11, 1, "b", 1, 200, GB_S),
        // Nov 2: 400 requests and 6 GB-s; 200 requests and 4 GB-s of it are free.
        row(2026, 11, 2, "a", 1, 300, 3 * GB_S),
        row(2026, 11, 2, "b", 1, 100, 3 * GB_S),
        // Nov 3: nothing free is left.
        row(2026, 11, 3, "a", 1, 10, GB_S),
    ]
}

#[test]
fn free_tier_is_used_day_by_day_and_split_by_share() {
    let prices = small_free_tier();
    let since = at(2026, 11, 2, 0);
    let now = at(2026, 11, 3, 12);
    let r = report(
        &prices,
        &attribution_rows(),
        &query(None, since, GroupBy::Function),
        now,
    );
    // Nov 2, a: list 300 × 0.0000002 + 3 × 0.0000166667 = 0.00006 + 0.0000500001 =
    // 0.0001100001. The day's request credit is 200 × 0.0000002 = 0.00004, a's 300/400 of it
    // 0.00003; its GB-s credit 4 × 0.0000166667 = 0.0000666668, a's 3/6 of it 0.0000333334.
    // Net 0.0001100001 − 0.0000633334 = 0.0000466667.
    // Nov 3, a: 10 × 0.0000002 + 1 × 0.0000166667 = 0.0000186667, nothing free.
    // a: 0.0000466667 + 0.0000186667 = 0.0000653334.
    let a = &r.groups[0].totals;
    assert_eq!(a.requests, 310);
    assert_eq!(a.cost, d("0.0000653334"));
    // List: 310 × 0.0000002 + 4 × 0.0000166667 = 0.000062 + 0.0000666668.
    assert_eq!(a.cost_list, d("0.0001286668"));
    // Nov 2, b: list 0.00002 + 0.0000500001 = 0.0000700001; credit 100/400 × 0.00004 +
    // 3/6 × 0.0000666668 = 0.00001 + 0.0000333334; net 0.0000266667.
    let b = &r.groups[1].totals;
    assert_eq!(b.cost, d("0.0000266667"));
    assert_eq!(r.total.cost, d("0.0000920001"));

    // From the first of the month, over all functions, the total is the month's bill:
    // 1,210 requests − 1,000 free = 210 × 0.0000002 = 0.000042; 13 GB-s − 10 free = 3 ×
    // 0.0000166667 = 0.0000500001; 0.0000920001 (Nov 1 was entirely free).
    let whole_month = report(
        &prices,
        &attribution_rows(),
        &query(None, at(2026, 11, 1, 0), GroupBy::Day),
        now,
    );
    assert_eq!(whole_month.total.cost, d("0.0000920001"));
    assert_eq!(whole_month.groups[0].totals.cost, Decimal::ZERO);
    assert_eq!(whole_month.groups[0].totals.cost_list, d("0.0002600002"));
    assert_eq!(month_bill(&prices, 1_210, 13 * GB_S).net, d("0.0000920001"));

    // One function's report takes only its own share.
    let only_b = report(
        &prices,
        &attribution_rows(),
        &query(Some("b"), since, GroupBy::Day),
        now,
    );
    assert_eq!(only_b.total.cost, d("0.0000266667"));
    assert_eq!(only_b.total.cost_list, d("0.0000700001"));

    // Free tier this month: all of it used.
    assert_eq!(r.free_tier.requests_used, 1_000);
    assert_eq!(r.free_tier.requests_left, 0);
    assert_eq!(r.free_tier.gb_seconds_used, d("10"));
    assert_eq!(r.free_tier.gb_seconds_left, Decimal::ZERO);
    assert_eq!(r.free_tier.month_start_ms, at(2026, 11, 1, 0));
    assert_eq!(r.free_tier.resets_at_ms, at(2026, 12, 1, 0));
}

#[test]
fn group_costs_add_up_to_the_total_with_thirds() {
    // Three functions share a day whose free tier covers one request and 1 GB-s out of
    // three of each: every share is a third, which no decimal holds exactly.
    let prices = Prices {
        free_requests_per_month: 1,
        free_gb_seconds_per_month: Decimal::ONE,
        ..Prices::default()
    };
    let rows = vec![
        row(2027, 1, 5, "a", 1, 1, GB_S),
        row(2027, 1, 5, "b", 1, 1, GB_S),
        row(2027, 1, 5, "c", 3, 1, GB_S),
        row(2027, 1, 6, "c", 4, 7, 3 * GB_S),
    ];
    let now = at(2027, 1, 6, 20);
    for by in [GroupBy::Day, GroupBy::Function, GroupBy::Version] {
        let r = report(&prices, &rows, &query(None, at(2027, 1, 1, 0), by), now);
        let sum: Decimal = r.groups.iter().map(|g| g.totals.cost).sum();
        assert!(
            (sum - r.total.cost).abs() < d("0.000000000001"),
            "{by:?}: {sum} vs {}",
            r.total.cost
        );
        // Month bill: 10 requests − 1 free = 9 × 0.0000002 = 0.0000018; 6 GB-s − 1 free =
        // 5 × 0.0000166667 = 0.0000833335; 0.0000851335.
        assert!(
            (r.total.cost - d("0.0000851335")).abs() < d("0.000000000001"),
            "{}",
            r.total.cost
        );
    }
    // Each of Jan 5's rows pays two thirds of its list price 0.0000002 + 0.0000166667.
    let r = report(
        &prices,
        &rows,
        &query(Some("a"), at(2027, 1, 1, 0), GroupBy::Day),
        now,
    );
    let two_thirds = d("0.0000168667") * d("2") / d("3");
    assert!((r.total.cost - two_thirds).abs() < d("0.000000000001"));
}

#[test]
fn each_month_gets_its_own_free_tier() {
    let prices = Prices::default();
    let rows = vec![
        row(2026, 10, 30, "a", 1, 500_000, 0),
        row(2026, 10, 31, "a", 1, 1_000_000, 0),
        row(2026, 11, 1, "a", 1, 1_000_000, 0),
    ];
    let since = at(2026, 10, 31, 0);
    let now = at(2026, 11, 1, 9);
    // Oct 31 and Nov 1 alone: a full allowance each, so both are free.
    let r = report(&prices, &rows[1..], &query(None, since, GroupBy::Day), now);
    assert_eq!(r.groups.len(), 2);
    assert_eq!(r.groups[0].totals.cost, Decimal::ZERO);
    assert_eq!(r.groups[1].totals.cost, Decimal::ZERO);
    assert_eq!(r.total.cost_list, d("0.40"));
    let r = report(&prices, &rows, &query(None, since, GroupBy::Day), now);
    assert_eq!(r.groups.len(), 2);
    // Oct 30 (before the period) used 500,000 free requests, so half of Oct 31 is billed:
    // 500,000 × 0.0000002 = 0.10. Nov 1 has a fresh allowance: free.
    assert_eq!(r.groups[0].key, GroupKey::Day(day_from_date(2026, 10, 31)));
    assert_eq!(r.groups[0].totals.cost_list, d("0.20"));
    assert_eq!(r.groups[0].totals.cost, d("0.10"));
    assert_eq!(r.groups[1].key.label(), "2026-11-01");
    assert_eq!(r.groups[1].totals.cost_list, d("0.20"));
    assert_eq!(r.groups[1].totals.cost, Decimal::ZERO);
    assert_eq!(r.free_tier.requests_used, 1_000_000);
    assert_eq!(r.free_tier.requests_left, 0);

    // A leap day is an ordinary day of February's allowance.
    let rows = vec![
        row(2028, 2, 28, "a", 1, 600_000, 0),
        row(2028, 2, 29, "a", 1, 600_000, 0),
        row(2028, 3, 1, "a", 1, 600_000, 0),
    ];
    let r = report(
        &prices,
        &rows,
        &query(None, at(2028, 2, 1, 0), GroupBy::Day),
        at(2028, 3, 1, 5),
    );
    let labels: Vec<String> = r.groups.iter().map(|g| g.key.label()).collect();
    assert_eq!(labels, ["2028-02-28", "2028-02-29", "2028-03-01"]);
    // Feb 29 pays for the 200,000 past February's million: 0.04; March 1 is free.
    assert_eq!(r.groups[1].totals.cost, d("0.04"));
    assert_eq!(r.groups[2].totals.cost, Decimal::ZERO);
}

#[test]
fn rows_without_usage_cost_nothing_and_do_not_panic() {
    let rows = vec![
        UsageRow {
            throttled: 9,
            ..row(2026, 11, 2, "a", 1, 0, 0)
        },
        UsageRow {
            throttled: 1,
            ..row(2026, 11, 2, "b", 1, 0, 0)
        },
    ];
    let now = at(2026, 11, 2, 0);
    let r = report(
        &Prices::default(),
        &rows,
        &query(None, now, GroupBy::Function),
        now,
    );
    assert_eq!(r.total.throttled, 10);
    assert_eq!(r.total.cost, Decimal::ZERO);
    assert_eq!(r.projected_month.cost, Decimal::ZERO);
    let empty = report(
        &Prices::default(),
        &[],
        &query(None, now, GroupBy::Day),
        now,
    );
    assert!(empty.groups.is_empty());
    assert_eq!(empty.projected_month.requests, 0);
    // A period starting after now is empty.
    let r = report(
        &Prices::default(),
        &rows,
        &query(None, now + 86_400_000, GroupBy::Day),
        now,
    );
    assert!(r.groups.is_empty());
}

#[test]
fn projection_scales_the_month_so_far() {
    let prices = Prices::default();
    // November 2026 has 30 days; at Nov 16 00:00 15 have passed, so everything doubles.
    let rows = vec![
        row(2026, 11, 3, "a", 1, 200_000, 65_000 * GB_S),
        row(2026, 11, 10, "a", 2, 250_000, 100_000 * GB_S),
        row(2026, 11, 15, "b", 1, 150_000, 55_000 * GB_S),
        // Last month does not count.
        row(2026, 10, 20, "a", 1, 9_000_000, 9_000 * GB_S),
    ];
    let now = at(2026, 11, 16, 0);
    let r = report(
        &prices,
        &rows,
        &query(Some("a"), at(2026, 11, 10, 0), GroupBy::Day),
        now,
    );
    let p = &r.projected_month;
    assert_eq!(p.month_start_ms, at(2026, 11, 1, 0));
    assert_eq!(p.month_end_ms, at(2026, 12, 1, 0));
    assert_eq!(p.elapsed_ms, 15 * 86_400_000);
    // a so far: 450,000 requests and 165,000 GB-s (from Nov 3 too, though the report
    // starts Nov 10); projected 900,000 and 330,000.
    assert_eq!(p.requests, 900_000);
    assert_eq!(p.gb_seconds, d("330000"));
    // List: 900,000 × 0.0000002 + 330,000 × 0.0000166667 = 0.18 + 5.500011.
    assert_eq!(p.cost_list, d("5.680011"));
    // Installation projected: 1,200,000 requests (200,000 billable → 0.04) and 440,000 GB-s
    // (40,000 billable → 0.666668). a has 3/4 of both: 0.03 + 0.500001.
    assert_eq!(p.cost, d("0.530001"));

    // Early in a month the elapsed time counts as at least an hour: 720 hours / 1 hour.
    let rows = vec![row(2026, 11, 1, "a", 1, 10, 0)];
    let r = report(
        &prices,
        &rows,
        &query(None, at(2026, 11, 1, 0), GroupBy::Day),
        at(2026, 11, 1, 0) + 1_800_000,
    );
    assert_eq!(r.projected_month.elapsed_ms, 3_600_000);
    assert_eq!(r.projected_month.requests, 7_200);
}

#[test]
fn group_by_names() {
    for by in [GroupBy::Day, GroupBy::Function, GroupBy::Version] {
        assert_eq!(GroupBy::parse(by.as_str()), Some(by));
    }
    assert_eq!(GroupBy::parse("week"), None);
}
