//! Usage and its price: billed duration, GB-seconds, the price list and free tier, usage reports, projections, the VM comparison and quotas. Pure logic: no IO, no async.
//!
//! All money and GB-second arithmetic is exact decimal ([`rust_decimal::Decimal`]); no
//! binary float is involved anywhere. Amounts keep full precision in every struct and are
//! rounded only when turned into text ([`usd`], [`usd_precise`], [`number`]).
//!
//! # The rules
//!
//! - **Billed duration**: a run's duration rounded up to the next whole millisecond, at
//!   least 1 ms ([`billed_ms`]), as AWS Lambda bills.
//! - **Memory-milliseconds**: `mb_ms = memory_mb × billed_ms`, an exact integer.
//!   **GB-seconds** are `mb_ms / 1,024,000` ([`gb_seconds`]), exact in decimal because
//!   1,024,000 = 2^13·5^3.
//! - **Prices** ([`Prices`]): USD per million requests, USD per GB-second and a monthly free
//!   allowance of requests and of GB-seconds. The defaults are AWS Lambda's public x86
//!   prices: $0.20 per million requests, $0.0000166667 per GB-second, 1,000,000 requests
//!   and 400,000 GB-seconds free a month. An operator overrides them with a small TOML file
//!   ([`Prices::from_toml`]).
//! - **List price** of usage: `requests × requests_per_million / 1,000,000 +
//!   GB-seconds × gb_second` ([`list_cost`]).
//! - **Months** are calendar months in UTC ([`month_start_ms`], [`next_month_start_ms`]).
//!   The free tier belongs to the whole installation and starts again each month:
//!   [`month_bill`] charges `max(0, requests − free requests)` and `max(0, GB-s − free
//!   GB-s)`.
//! - **Reports** ([`report`]) sum usage rows (one per UTC day, function and version) over a
//!   period of whole UTC days, grouped by day, function or version, with the cost at list
//!   price and the cost after the free tier. How the installation's free tier is shared out
//!   among days and functions is [`FREE_TIER_RULE`]: it is used up day by day in date
//!   order across the installation, from the first day of the month (days before the
//!   report's period included), each day taking what is left; within a day the request
//!   allowance is split by the rows' requests and the GB-second allowance by their
//!   GB-seconds. The groups' costs add up to the total, and for a period starting on the
//!   first of a month, over all functions, the total is the month's bill.
//! - **Projection**: the month containing `now`, scaled linearly from its usage so far by
//!   `month length / elapsed` (elapsed at least an hour); the free tier is applied to the
//!   installation's projection and a function pays its proportional share.
//! - **VM comparison** ([`compare_vm`]): the observed rate, its monthly serverless cost in a
//!   30-day month (2,592,000 s) with the free tier, and the monthly request count above
//!   which an always-on VM is cheaper, solved exactly on the piecewise-linear cost.
//! - **Quotas** ([`Quota`], [`QuotaCheck`]): monthly caps on requests, GB-seconds or cost
//!   for the installation or one function; exceeded at or past a cap, a warning from
//!   `warn_percent` of it.

mod bill;
mod calendar;
mod display;
mod price;
mod quota;
mod report;
mod serde_decimal;
mod series;
mod vm;

pub use bill::{Bill, MB_MS_PER_GB_SECOND, billed_ms, gb_seconds, list_cost, mb_ms, month_bill};
pub use calendar::{
    MS_PER_DAY, date_of_day, day_from_date, day_of, day_start_ms, format_day, month_start_ms,
    next_month_start_ms,
};
pub use display::{count, number, usd, usd_precise};
pub use price::{MAX_FREE_GB_SECONDS, MAX_UNIT_PRICE_USD, PRICE_KEYS, PriceError, Prices};
pub use quota::{
    DEFAULT_WARN_PERCENT, Quota, QuotaCheck, QuotaError, QuotaKind, QuotaScope, QuotaState,
};
pub use report::{
    FREE_TIER_RULE, FreeTier, GroupBy, GroupKey, MIN_PROJECTION_ELAPSED_MS, Projection, Report,
    ReportGroup, ReportQuery, Totals, UsageRow, report,
};
pub use rust_decimal::Decimal;
pub use series::{MAX_POINTS, Sample, Series, SeriesBuilder, Stats, align_ms, nice_step_ms};
pub use vm::{
    BreakEven, Cheaper, DEFAULT_REQUEST_MB, DEFAULT_REQUEST_MS, SECONDS_PER_MONTH, VmComparison,
    VmRow, compare_vm, serverless_monthly,
};
