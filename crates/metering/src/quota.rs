//! Monthly quotas: caps on requests, GB-seconds or cost, for the installation or for one
//! function, and the cheap check the request path runs against month-to-date usage.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::bill::{MB_MS_PER_GB_SECOND, gb_seconds, list_cost, month_bill};
use crate::display::{count, number, usd};
use crate::price::Prices;

/// The `warn_percent` a quota gets when it does not say.
pub const DEFAULT_WARN_PERCENT: u8 = 80;

fn default_warn_percent() -> u8 {
    DEFAULT_WARN_PERCENT
}

/// Caps on one calendar month (UTC) of usage. On the wire (JSON) the decimal caps are
/// strings ("400", "5.00"); omitted caps are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Most requests a month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Most GB-seconds a month.
    #[serde(
        default,
        with = "crate::serde_decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub gb_seconds: Option<Decimal>,
    /// Most USD a month (see [`QuotaCheck::new`] for which cost).
    #[serde(
        default,
        with = "crate::serde_decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cost: Option<Decimal>,
    /// Share of a cap, in percent, from which usage is reported as a warning.
    #[serde(default = "default_warn_percent")]
    pub warn_percent: u8,
}

impl Default for Quota {
    /// No caps (not valid on its own) and the default warning level, for `..Default::default()`.
    fn default() -> Self {
        Quota {
            requests: None,
            gb_seconds: None,
            cost: None,
            warn_percent: DEFAULT_WARN_PERCENT,
        }
    }
}

/// Why a quota cannot be used; each names the field to fix.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QuotaError {
    /// None of the caps is set.
    #[error("a quota needs at least one cap: set requests, gb_seconds or cost")]
    NoCap,
    /// A cap of zero or less.
    #[error("quota {field} must be greater than 0, not {value}; leave it out for no cap")]
    NotPositive {
        /// "requests", "gb_seconds" or "cost".
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// `warn_percent` outside 1..=100.
    #[error("quota warn_percent must be from 1 to 100, not {0}")]
    WarnPercent(u8),
}

impl Quota {
    /// Checks that at least one cap is set, every cap set is positive and `warn_percent`
    /// is 1..=100.
    pub fn validate(&self) -> Result<(), QuotaError> {
        if self.requests.is_none() && self.gb_seconds.is_none() && self.cost.is_none() {
            return Err(QuotaError::NoCap);
        }
        if self.requests == Some(0) {
            return Err(QuotaError::NotPositive {
                field: "requests",
                value: "0".into(),
            });
        }
        for (field, cap) in [("gb_seconds", self.gb_seconds), ("cost", self.cost)] {
            if let Some(cap) = cap.filter(|c| *c <= Decimal::ZERO) {
                return Err(QuotaError::NotPositive {
                    field,
                    value: cap.to_string(),
                });
            }
        }
        if !(1..=100).contains(&self.warn_percent) {
            return Err(QuotaError::WarnPercent(self.warn_percent));
        }
        Ok(())
    }
}

/// Whose usage a quota caps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    /// The whole installation.
    Global,
    /// One function, all its versions.
    Function(String),
}

/// Which cap a state is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// The requests cap.
    Requests,
    /// The GB-seconds cap.
    GbSeconds,
    /// The cost cap.
    Cost,
}

impl QuotaKind {
    /// "requests", "gb_seconds" or "cost" (the quota's field name).
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Requests => "requests",
            QuotaKind::GbSeconds => "gb_seconds",
            QuotaKind::Cost => "cost",
        }
    }
}

/// Where month-to-date usage stands against a quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaState {
    /// Under every warning level.
    Below,
    /// At or past `warn_percent` of a cap, under all caps.
    Warning {
        /// The cap closest to being reached.
        kind: QuotaKind,
        /// Its use, in whole percent (rounded down).
        used_percent: u8,
    },
    /// At or past a cap.
    Exceeded {
        /// The cap reached (the first of requests, GB-seconds, cost).
        kind: QuotaKind,
        /// The cap for people: "1,000 requests", "400 GB-seconds", "$5.00".
        cap: String,
        /// The usage for people, in the same unit.
        used: String,
    },
}

/// An integer cap with its warning threshold, both in the unit usage arrives in.
#[derive(Debug, Clone, Copy)]
struct IntLimit {
    cap: u64,
    warn_at: u64,
}

/// A quota compiled for the request path.
#[derive(Debug, Clone)]
pub struct QuotaCheck {
    scope: QuotaScope,
    prices: Prices,
    requests: Option<IntLimit>,
    gb_seconds: Option<(Decimal, IntLimit)>,
    /// The cost cap and the cost from which it warns.
    cost: Option<(Decimal, Decimal)>,
}

impl QuotaCheck {
    /// Compiles `quota` for `scope` at `prices`.
    ///
    /// Request and GB-second caps become integer thresholds (GB-seconds in MB-milliseconds,
    /// rounded up, since usage of `cap` or more is over). A cost cap on the global scope
    /// compares the month's net cost, after the free tier; on a function scope it compares
    /// list price, because the free tier belongs to the installation and how much of it a
    /// function got depends on every other function's traffic that month.
    ///
    /// Expects a quota that passed [`Quota::validate`]; a zero cap simply reads as
    /// exceeded.
    pub fn new(scope: QuotaScope, quota: &Quota, prices: &Prices) -> QuotaCheck {
        let warn = u128::from(quota.warn_percent);
        let requests = quota.requests.map(|cap| IntLimit {
            cap,
            warn_at: ceil_percent(u128::from(cap), warn),
        });
        let gb_seconds = quota.gb_seconds.map(|cap| {
            // Exact in MB-ms, possibly fractional; the ceilings keep ">= cap" exact for the
            // whole-number usage compared against them.
            let exact = cap.checked_mul(Decimal::from(MB_MS_PER_GB_SECOND));
            let ceiling = |d: Option<Decimal>| {
                d.map_or(u64::MAX, |d| {
                    d.max(Decimal::ZERO).ceil().to_u64().unwrap_or(u64::MAX)
                })
            };
            let warn_at = exact
                .and_then(|e| e.checked_mul(Decimal::from(quota.warn_percent)))
                .map(|e| e / Decimal::ONE_HUNDRED);
            (
                cap,
                IntLimit {
                    cap: ceiling(exact),
                    warn_at: ceiling(warn_at),
                },
            )
        });
        QuotaCheck {
            scope,
            prices: prices.clone(),
            requests,
            gb_seconds,
            cost: quota.cost.map(|cap| {
                // A cap too large to scale never warns, which is what such a cap means.
                let warn_at = cap
                    .checked_mul(Decimal::from(quota.warn_percent))
                    .map_or(Decimal::MAX, |c| c / Decimal::ONE_HUNDRED);
                (cap, warn_at)
            }),
        }
    }

    /// Whose usage this quota caps.
    pub fn scope(&self) -> &QuotaScope {
        &self.scope
    }

    /// The state of month-to-date usage: `requests` requests and `mb_ms` memory-milliseconds
    /// of the scope (the whole installation for `Global`, the function otherwise).
    ///
    /// Exceeded wins over warning; of several caps exceeded the first of requests,
    /// GB-seconds, cost is reported, of several warnings the highest percentage.
    pub fn state(&self, requests: u64, mb_ms: u64) -> QuotaState {
        let mut warning: Option<(QuotaKind, u8)> = None;
        let mut warn = |kind, percent: u8| {
            if warning.is_none_or(|(_, p)| percent > p) {
                warning = Some((kind, percent));
            }
        };

        if let Some(limit) = self.requests {
            if requests >= limit.cap {
                return QuotaState::Exceeded {
                    kind: QuotaKind::Requests,
                    cap: format!("{} requests", count(limit.cap)),
                    used: format!("{} requests", count(requests)),
                };
            }
            if requests >= limit.warn_at {
                warn(
                    QuotaKind::Requests,
                    percent(Decimal::from(requests), Decimal::from(limit.cap)),
                );
            }
        }
        if let Some((cap, limit)) = self.gb_seconds {
            if mb_ms >= limit.cap {
                return QuotaState::Exceeded {
                    kind: QuotaKind::GbSeconds,
                    cap: format!("{} GB-seconds", number(cap, 13)),
                    used: format!("{} GB-seconds", number(gb_seconds(mb_ms), 6)),
                };
            }
            if mb_ms >= limit.warn_at {
                warn(QuotaKind::GbSeconds, percent(gb_seconds(mb_ms), cap));
            }
        }
        if let Some((cap, warn_at)) = self.cost {
            let used = match self.scope {
                QuotaScope::Global => month_bill(&self.prices, requests, mb_ms).net,
                QuotaScope::Function(_) => list_cost(&self.prices, requests, mb_ms),
            };
            if used >= cap {
                return QuotaState::Exceeded {
                    kind: QuotaKind::Cost,
                    cap: usd(cap),
                    used: usd(used),
                };
            }
            if used >= warn_at {
                warn(QuotaKind::Cost, percent(used, cap));
            }
        }
        match warning {
            Some((kind, used_percent)) => QuotaState::Warning { kind, used_percent },
            None => QuotaState::Below,
        }
    }
}

/// `ceil(value × percent / 100)`, saturating at `u64::MAX`.
fn ceil_percent(value: u128, percent: u128) -> u64 {
    u64::try_from((value * percent).div_ceil(100)).unwrap_or(u64::MAX)
}

/// `floor(used / cap × 100)`, clamped to 0..=255 (only called under the cap, so below 100).
fn percent(used: Decimal, cap: Decimal) -> u8 {
    if cap <= Decimal::ZERO {
        return 100;
    }
    (used * Decimal::ONE_HUNDRED / cap)
        .floor()
        .to_u8()
        .unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests;
