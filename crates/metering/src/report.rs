//! Usage reports: totals per day, function or version over a period, their cost at list
//! price and after the free tier, the free tier left this month and a projection of it.

use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::bill::{cost, gb_seconds, list_cost, month_bill, request_cost};
use crate::calendar::{day_of, format_day, month_start_day, month_start_ms, next_month_start_ms};
use crate::price::Prices;

/// How the free tier is shared out in reports, in words for people (README, CLI help).
pub const FREE_TIER_RULE: &str = "The free tier belongs to the whole installation and \
    starts again on the first day of each calendar month (UTC). It is used up day by day in \
    date order, each day taking whatever is left, and a day's free share is split among that \
    day's functions in proportion to their requests and GB-seconds.";

/// The shortest part of a month a projection extrapolates from, in milliseconds: an hour,
/// so the first minutes of a month do not multiply a handful of requests by 40,000.
pub const MIN_PROJECTION_ELAPSED_MS: i64 = 3_600_000;

/// Usage of one function version on one UTC day, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The function.
    pub function: String,
    /// The version.
    pub version: i64,
    /// Invocations that ran (and are billed).
    pub requests: u64,
    /// Of those, the ones that failed or timed out.
    pub errors: u64,
    /// Invocations refused before running (not billed, not in `requests`).
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Summed wall time, microseconds.
    pub duration_us: u64,
    /// Summed billed milliseconds.
    pub billed_ms: u64,
    /// Summed `memory_mb × billed_ms`.
    pub mb_ms: u64,
    /// Summed request body bytes.
    pub bytes_in: u64,
    /// Summed response body bytes.
    pub bytes_out: u64,
}

/// What a report's groups are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupBy {
    /// One group per UTC day.
    #[default]
    Day,
    /// One group per function.
    Function,
    /// One group per function version.
    Version,
}

impl GroupBy {
    /// The name used in URLs and on the command line: "day", "function" or "version".
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Function => "function",
            GroupBy::Version => "version",
        }
    }

    /// The grouping named `name` (as `as_str` spells it).
    pub fn parse(name: &str) -> Option<GroupBy> {
        [GroupBy::Day, GroupBy::Function, GroupBy::Version]
            .into_iter()
            .find(|by| by.as_str() == name)
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// Only this function; `None` for all.
    pub function: Option<String>,
    /// Start of the period, milliseconds since the epoch; the period starts at the
    /// beginning of this instant's UTC day.
    pub since_ms: i64,
    /// How to group.
    pub by: GroupBy,
}

/// What one group of a report is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// A UTC day, days since 1970-01-01.
    Day(i64),
    /// A function.
    Function(String),
    /// A function version.
    Version {
        /// The function.
        function: String,
        /// The version.
        version: i64,
    },
}

impl GroupKey {
    /// The key for people: "2026-11-25", "hello" or "hello v3".
    pub fn label(&self) -> String {
        match self {
            GroupKey::Day(day) => format_day(*day),
            GroupKey::Function(function) => function.clone(),
            GroupKey::Version { function, version } => format!("{function} v{version}"),
        }
    }
}

/// Summed usage and its cost, for one group or a whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Invocations that ran.
    pub requests: u64,
    /// Of those, the failed ones.
    pub errors: u64,
    /// Invocations refused before running.
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Wall time, microseconds.
    pub duration_us: u64,
    /// Billed milliseconds.
    pub billed_ms: u64,
    /// Memory-milliseconds (`memory_mb × billed_ms`).
    pub mb_ms: u64,
    /// GB-seconds (`mb_ms / 1,024,000`, exact).
    pub gb_seconds: Decimal,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Cost at list price, USD, full precision.
    pub cost_list: Decimal,
    /// Cost after this usage's share of the free tier, USD, full precision.
    pub cost: Decimal,
}

impl Totals {
    fn add(&mut self, row: &UsageRow, net: Decimal) {
        self.requests = self.requests.saturating_add(row.requests);
        self.errors = self.errors.saturating_add(row.errors);
        self.throttled = self.throttled.saturating_add(row.throttled);
        self.cold_starts = self.cold_starts.saturating_add(row.cold_starts);
        self.duration_us = self.duration_us.saturating_add(row.duration_us);
        self.billed_ms = self.billed_ms.saturating_add(row.billed_ms);
        self.mb_ms = self.mb_ms.saturating_add(row.mb_ms);
        self.bytes_in = self.bytes_in.saturating_add(row.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(row.bytes_out);
        self.cost += net;
    }

    fn finish(&mut self, prices: &Prices) {
        self.gb_seconds = gb_seconds(self.mb_ms);
        self.cost_list = list_cost(prices, self.requests, self.mb_ms);
    }
}

/// One group of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportGroup {
    /// What the group is.
    pub key: GroupKey,
    /// Its usage and cost.
    pub totals: Totals,
}

/// The installation's free tier in the month containing the report's `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeTier {
    /// Start of the month, milliseconds since the epoch.
    pub month_start_ms: i64,
    /// When the allowance starts again: the next month's start.
    pub resets_at_ms: i64,
    /// Free requests used this month.
    pub requests_used: u64,
    /// Free requests left this month.
    pub requests_left: u64,
    /// Free GB-seconds used this month.
    pub gb_seconds_used: Decimal,
    /// Free GB-seconds left this month.
    pub gb_seconds_left: Decimal,
}

/// The month containing `now`, extrapolated linearly from its usage so far (from the
/// month's first day, wherever the report's period starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// Start of the month, milliseconds since the epoch.
    pub month_start_ms: i64,
    /// Start of the next month.
    pub month_end_ms: i64,
    /// The part of the month the usage so far covers, at least
    /// [`MIN_PROJECTION_ELAPSED_MS`].
    pub elapsed_ms: i64,
    /// Requests the month is heading for (the report's function, or all), rounded.
    pub requests: u64,
    /// GB-seconds the month is heading for.
    pub gb_seconds: Decimal,
    /// Their cost at list price, USD.
    pub cost_list: Decimal,
    /// Their cost after the free tier: the free tier applied to the whole installation's
    /// projection, of which the report's function pays its proportional share. USD.
    pub cost: Decimal,
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The function reported on; `None` for all.
    pub function: Option<String>,
    /// How the groups are made.
    pub by: GroupBy,
    /// The query's `since_ms`.
    pub since_ms: i64,
    /// The `now_ms` the report was made at.
    pub now_ms: i64,
    /// First day of the period (days since 1970-01-01).
    pub first_day: i64,
    /// Last day of the period, inclusive: today.
    pub last_day: i64,
    /// The groups, in key order (days ascending, names alphabetical); only groups with a
    /// stored row appear.
    pub groups: Vec<ReportGroup>,
    /// The whole period.
    pub total: Totals,
    /// The installation's free tier this month.
    pub free_tier: FreeTier,
    /// This month, projected to its end.
    pub projected_month: Projection,
}

/// Builds a report from `rows`, which must hold every row of the installation (all
/// functions) from the first day of the month containing `query.since_ms` up to today, so
/// that the free tier can be shared out as [`FREE_TIER_RULE`] says. Rows after today are
/// ignored.
pub fn report(prices: &Prices, rows: &[UsageRow], query: &ReportQuery, now_ms: i64) -> Report {
    let first_day = day_of(query.since_ms);
    let last_day = day_of(now_ms);
    let net = net_costs(prices, rows, last_day);
    let wanted = |row: &UsageRow| query.function.as_ref().is_none_or(|f| *f == row.function);

    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for (row, net) in rows.iter().zip(&net) {
        if row.day < first_day || row.day > last_day || !wanted(row) {
            continue;
        }
        let key = match query.by {
            GroupBy::Day => GroupKey::Day(row.day),
            GroupBy::Function => GroupKey::Function(row.function.clone()),
            GroupBy::Version => GroupKey::Version {
                function: row.function.clone(),
                version: row.version,
            },
        };
        groups.entry(key).or_default().add(row, *net);
        total.add(row, *net);
    }
    total.finish(prices);
    let groups = groups
        .into_iter()
        .map(|(key, mut totals)| {
            totals.finish(prices);
            ReportGroup { key, totals }
        })
        .collect();

    // Usage so far in the month containing now: the installation's and the report's.
    let this_month = month_start_day(last_day);
    let mut installation = (0u64, 0u64);
    let mut reported = (0u64, 0u64);
    for row in rows
        .iter()
        .filter(|r| r.day >= this_month && r.day <= last_day)
    {
        installation.0 = installation.0.saturating_add(row.requests);
        installation.1 = installation.1.saturating_add(row.mb_ms);
        if wanted(row) {
            reported.0 = reported.0.saturating_add(row.requests);
            reported.1 = reported.1.saturating_add(row.mb_ms);
        }
    }
    let bill = month_bill(prices, installation.0, installation.1);
    let free_tier = FreeTier {
        month_start_ms: month_start_ms(now_ms),
        resets_at_ms: next_month_start_ms(now_ms),
        requests_used: bill.free_requests_used,
        requests_left: bill.free_requests_left,
        gb_seconds_used: bill.free_gb_seconds_used,
        gb_seconds_left: bill.free_gb_seconds_left,
    };

    Report {
        function: query.function.clone(),
        by: query.by,
        since_ms: query.since_ms,
        now_ms,
        first_day,
        last_day,
        groups,
        total,
        free_tier,
        projected_month: project(prices, now_ms, installation, reported),
    }
}

/// Each row's cost after its share of the free tier (zero for rows after `last_day`).
///
/// The allowance is consumed day by day in date order across the installation; a day takes
/// `min(its usage, what is left)` of each allowance, and its rows split that by their share
/// of the day's requests (request allowance) and MB-milliseconds (GB-second allowance).
fn net_costs(prices: &Prices, rows: &[UsageRow], last_day: i64) -> Vec<Decimal> {
    let mut net = vec![Decimal::ZERO; rows.len()];
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].day <= last_day)
        .collect();
    order.sort_by_key(|&i| rows[i].day);

    let mut month = None;
    let mut requests_left = 0u64;
    let mut gb_seconds_left = Decimal::ZERO;
    for same_day in order.chunk_by(|&a, &b| rows[a].day == rows[b].day) {
        let day = rows[same_day[0]].day;
        let day_month = month_start_day(day);
        if month != Some(day_month) {
            month = Some(day_month);
            requests_left = prices.free_requests_per_month;
            gb_seconds_left = prices.free_gb_seconds_per_month;
        }
        let day_requests = same_day
            .iter()
            .fold(0u64, |sum, &i| sum.saturating_add(rows[i].requests));
        let day_mb_ms = same_day
            .iter()
            .fold(0u64, |sum, &i| sum.saturating_add(rows[i].mb_ms));
        let free_requests = day_requests.min(requests_left);
        requests_left -= free_requests;
        let free_gb_seconds = gb_seconds(day_mb_ms).min(gb_seconds_left);
        gb_seconds_left -= free_gb_seconds;
        let request_credit = request_cost(prices, Decimal::from(free_requests));
        let gb_second_credit = free_gb_seconds * prices.gb_second;

        for &i in same_day {
            let row = &rows[i];
            // Share first, then scale: the share is at most 1, so nothing can overflow,
            // and a zero day total (no requests or no memory) gives no credit of that kind.
            let credit = share(request_credit, row.requests, day_requests)
                + share(gb_second_credit, row.mb_ms, day_mb_ms);
            // Rounding in the 28th digit must not turn a fully free row into a refund.
            net[i] = (list_cost(prices, row.requests, row.mb_ms) - credit).max(Decimal::ZERO);
        }
    }
    net
}

/// `amount × part / whole`, zero when `whole` is zero.
fn share(amount: Decimal, part: u64, whole: u64) -> Decimal {
    if whole == 0 || amount.is_zero() {
        return Decimal::ZERO;
    }
    amount * (Decimal::from(part) / Decimal::from(whole))
}

/// Linear projection of the month containing `now_ms` from `(requests, mb_ms)` so far, for
/// the installation and for the reported function(s).
fn project(
    prices: &Prices,
    now_ms: i64,
    installation: (u64, u64),
    reported: (u64, u64),
) -> Projection {
    let month_start_ms = month_start_ms(now_ms);
    let month_end_ms = next_month_start_ms(now_ms);
    let month_len = month_end_ms - month_start_ms;
    let elapsed_ms = (now_ms - month_start_ms).clamp(MIN_PROJECTION_ELAPSED_MS, month_len);
    let factor = Decimal::from(month_len) / Decimal::from(elapsed_ms);

    let all_requests = Decimal::from(installation.0) * factor;
    let all_gb_seconds = gb_seconds(installation.1) * factor;
    let billable_requests =
        (all_requests - Decimal::from(prices.free_requests_per_month)).max(Decimal::ZERO);
    let billable_gb_seconds =
        (all_gb_seconds - prices.free_gb_seconds_per_month).max(Decimal::ZERO);
    let net = share(
        request_cost(prices, billable_requests),
        reported.0,
        installation.0,
    ) + share(
        billable_gb_seconds * prices.gb_second,
        reported.1,
        installation.1,
    );

    let requests = Decimal::from(reported.0) * factor;
    let gb_seconds = gb_seconds(reported.1) * factor;
    Projection {
        month_start_ms,
        month_end_ms,
        elapsed_ms,
        requests: requests
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_u64()
            .unwrap_or(u64::MAX),
        gb_seconds,
        cost_list: cost(prices, requests, gb_seconds),
        cost: net,
    }
}

#[cfg(test)]
mod tests;
