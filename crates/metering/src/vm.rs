//! Serverless against an always-on VM: what the observed traffic costs a month here, what
//! a VM costs, and the request rate above which the VM is cheaper.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::bill::{gb_seconds, request_cost};
use crate::display::{count, significant, usd};
use crate::price::Prices;
use crate::report::Report;

/// Seconds in the 30-day month the comparison uses (VM prices are quoted per such month).
pub const SECONDS_PER_MONTH: u64 = 2_592_000;

/// Memory of the request assumed when a report has no traffic, in MB.
pub const DEFAULT_REQUEST_MB: u64 = 128;

/// Billed duration of the request assumed when a report has no traffic, in ms.
pub const DEFAULT_REQUEST_MS: u64 = 100;

/// Which option costs less at some rate (serverless on a tie: nothing to run or patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cheaper {
    /// Paying per request costs less.
    Serverless,
    /// The always-on VM costs less.
    Vm,
}

impl Cheaper {
    /// "serverless" or "vm".
    pub fn as_str(self) -> &'static str {
        match self {
            Cheaper::Serverless => "serverless",
            Cheaper::Vm => "vm",
        }
    }
}

/// The request volume at which serverless and the VM cost the same per month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakEven {
    /// Requests a month (full precision): at or below it serverless costs no more than the
    /// VM, above it the VM is cheaper.
    pub requests_per_month: Decimal,
    /// The same as a steady rate: `requests_per_month / 2,592,000`.
    pub requests_per_second: Decimal,
}

/// One line of the comparison table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRow {
    /// Steady request rate, per second.
    pub requests_per_second: Decimal,
    /// Requests in a 30-day month at that rate.
    pub requests_per_month: Decimal,
    /// Serverless cost of that month, free tier applied, USD.
    pub serverless_monthly: Decimal,
    /// The VM's monthly cost, USD.
    pub vm_monthly: Decimal,
    /// The cheaper option.
    pub cheaper: Cheaper,
    /// Whether this is the report's observed rate rather than a fixed one.
    pub observed: bool,
}

/// The comparison [`compare_vm`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmComparison {
    /// Whether the report had any requests; without them the rate is zero and the
    /// per-request size is the default one.
    pub has_traffic: bool,
    /// Observed request rate over the report's period, per second.
    pub requests_per_second: Decimal,
    /// Observed rate as requests in a 30-day month.
    pub requests_per_month: Decimal,
    /// GB-seconds per request: observed average, or 128 MB × 100 ms = 0.0125 without
    /// traffic.
    pub gb_seconds_per_request: Decimal,
    /// Serverless cost of a 30-day month at the observed rate, free tier applied, USD.
    pub serverless_monthly: Decimal,
    /// The VM's monthly cost, USD.
    pub vm_monthly: Decimal,
    /// Where the VM becomes cheaper; `None` when requests cost nothing at these prices (or
    /// the volume would be beyond any count `Decimal` holds).
    pub break_even: Option<BreakEven>,
    /// Costs at 0.1, 1, 10, 100 and 1,000 requests/s and at the observed rate, by rate.
    pub table: Vec<VmRow>,
    /// The comparison in one sentence.
    pub sentence: String,
}

/// Serverless cost of a 30-day month of `requests` requests of `gb_seconds_per_request`
/// each, after the free tier. Saturates at `Decimal::MAX` rather than overflow.
pub fn serverless_monthly(
    prices: &Prices,
    requests: Decimal,
    gb_seconds_per_request: Decimal,
) -> Decimal {
    monthly(prices, requests, gb_seconds_per_request).unwrap_or(Decimal::MAX)
}

fn monthly(prices: &Prices, requests: Decimal, per_request: Decimal) -> Option<Decimal> {
    let billable_requests =
        (requests - Decimal::from(prices.free_requests_per_month)).max(Decimal::ZERO);
    let billable_gb_seconds = requests
        .checked_mul(per_request)?
        .checked_sub(prices.free_gb_seconds_per_month)?
        .max(Decimal::ZERO);
    let per_request_price = request_cost(prices, Decimal::ONE);
    billable_requests
        .checked_mul(per_request_price)?
        .checked_add(billable_gb_seconds.checked_mul(prices.gb_second)?)
}

/// Compares `report`'s traffic on serverless with a VM costing `vm_monthly` a month (a
/// negative VM cost counts as zero).
///
/// The observed rate is the report total's requests over its period, `now - since`, taken
/// as at least one second. Without traffic the break-even and the table use a default
/// request of [`DEFAULT_REQUEST_MB`] MB for [`DEFAULT_REQUEST_MS`] ms.
pub fn compare_vm(prices: &Prices, report: &Report, vm_monthly: Decimal) -> VmComparison {
    let vm_monthly = vm_monthly.max(Decimal::ZERO);
    let month = Decimal::from(SECONDS_PER_MONTH);
    let period_s = (Decimal::from(report.now_ms.saturating_sub(report.since_ms))
        / Decimal::ONE_THOUSAND)
        .max(Decimal::ONE);
    let requests = report.total.requests;
    let has_traffic = requests > 0;
    let (rate, per_request) = if has_traffic {
        (
            Decimal::from(requests) / period_s,
            report.total.gb_seconds / Decimal::from(requests),
        )
    } else {
        (
            Decimal::ZERO,
            gb_seconds(DEFAULT_REQUEST_MB * DEFAULT_REQUEST_MS),
        )
    };
    // Months from the count, not from the rounded rate, so the month is exact when it can be.
    let per_month = Decimal::from(requests) * month / period_s;
    let serverless = serverless_monthly(prices, per_month, per_request);
    let break_even = break_even(prices, per_request, vm_monthly).map(|n| BreakEven {
        requests_per_second: n / month,
        requests_per_month: n,
    });

    let row = |rate: Decimal, per_month: Decimal, observed: bool| {
        let serverless = serverless_monthly(prices, per_month, per_request);
        VmRow {
            requests_per_second: rate,
            requests_per_month: per_month,
            serverless_monthly: serverless,
            vm_monthly,
            cheaper: if serverless <= vm_monthly {
                Cheaper::Serverless
            } else {
                Cheaper::Vm
            },
            observed,
        }
    };
    let mut table: Vec<VmRow> = [Decimal::new(1, 1), Decimal::ONE, Decimal::TEN]
        .into_iter()
        .chain([Decimal::ONE_HUNDRED, Decimal::ONE_THOUSAND])
        .map(|rate| row(rate, rate * month, false))
        .collect();
    if has_traffic {
        let at = table.partition_point(|r| r.requests_per_second <= rate);
        table.insert(at, row(rate, per_month, true));
    }

    let vm_text = usd(vm_monthly);
    let ending = match &break_even {
        Some(be) => {
            let where_ = format!(
                "{} requests/s ({} requests a month)",
                significant(be.requests_per_second),
                count(whole(be.requests_per_month))
            );
            if has_traffic && per_month > be.requests_per_month {
                format!("the VM is already cheaper, as it is above {where_}")
            } else {
                format!("the VM becomes cheaper above {where_}")
            }
        }
        None => "the VM never becomes cheaper, since requests cost nothing at these prices".into(),
    };
    let sentence = if has_traffic {
        format!(
            "At your rate of {} requests/s ({} a month) and {} GB-s per request, gureum at \
             these prices costs {} a month against {vm_text} for an always-on VM; {ending}.",
            significant(rate),
            count(whole(per_month)),
            significant(per_request),
            usd(serverless),
        )
    } else {
        format!(
            "There was no traffic in this period, so gureum costs nothing against {vm_text} a \
             month for an always-on VM; for requests of {DEFAULT_REQUEST_MB} MB and \
             {DEFAULT_REQUEST_MS} ms ({} GB-s each), {ending}.",
            significant(per_request),
        )
    };

    VmComparison {
        has_traffic,
        requests_per_second: rate,
        requests_per_month: per_month,
        gb_seconds_per_request: per_request,
        serverless_monthly: serverless,
        vm_monthly,
        break_even,
        table,
        sentence,
    }
}

/// The largest monthly request count N whose serverless cost, free tier applied, is at
/// most `vm_monthly`, for requests of `per_request` GB-seconds each.
///
/// The cost is piecewise linear in N: nothing until the first free allowance runs out,
/// then the slope of that one resource, then the slope of both. Each allowance ends at its
/// own N (the requests one at `free_requests`, the GB-second one at `free_gb_seconds /
/// per_request`), so the pieces are walked in order of where they end.
fn break_even(prices: &Prices, per_request: Decimal, vm_monthly: Decimal) -> Option<Decimal> {
    let request_slope = request_cost(prices, Decimal::ONE);
    let gb_second_slope = per_request.checked_mul(prices.gb_second)?;
    let mut ends: Vec<(Decimal, Decimal)> = Vec::with_capacity(2);
    if request_slope > Decimal::ZERO {
        ends.push((Decimal::from(prices.free_requests_per_month), request_slope));
    }
    if gb_second_slope > Decimal::ZERO {
        ends.push((
            prices.free_gb_seconds_per_month.checked_div(per_request)?,
            gb_second_slope,
        ));
    }
    if ends.is_empty() {
        return None;
    }
    ends.sort();

    let (mut at, mut cost, mut slope) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (end, added_slope) in ends {
        if slope > Decimal::ZERO {
            let n = at.checked_add(vm_monthly.checked_sub(cost)?.checked_div(slope)?)?;
            if n <= end {
                return Some(n);
            }
            cost = cost.checked_add(end.checked_sub(at)?.checked_mul(slope)?)?;
        }
        at = end;
        slope += added_slope;
    }
    at.checked_add(vm_monthly.checked_sub(cost)?.checked_div(slope)?)
}

fn whole(d: Decimal) -> u64 {
    use rust_decimal::prelude::ToPrimitive;
    d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_u64()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
