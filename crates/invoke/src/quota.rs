//! Monthly quotas on the request path: the price list, the installation's and each
//! function's caps, and this month's usage they are checked against — all in memory.
//!
//! Requests are counted at admission (so a cap of N lets exactly N through on one node,
//! however fast they come), memory-milliseconds when an invocation ends. Usage is seeded
//! from the store's daily roll-up when quotas change and on the first request of a new
//! month, and merged with it every [`QUOTA_REFRESH_INTERVAL`] so other nodes' traffic
//! counts too (taking, per counter, the larger of the local and the stored value: a
//! shared store lags by the telemetry flush interval, ~200 ms). With no quota set the
//! request path pays one atomic load.
//!
//! Caps and prices live in the store's `settings` table, shared by every node: the
//! installation's cap under `quota:` and each function's under `quota:NAME` (JSON), the
//! price list under `prices` (TOML). A cap that crosses its warning level is announced
//! once a month per cap and kind on each node: in the server log, the function's log and
//! a metric.

use crate::{lock, read, write};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gureum_metering::{Prices, Quota, QuotaCheck, QuotaKind, QuotaScope, QuotaState};
use gureum_model::{LogLine, LogStream};
use gureum_store::Store;
use gureum_telemetry::{Metrics, QuotaLabels, Telemetry};

/// How often month-to-date usage is merged with the store while quotas are set.
pub const QUOTA_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Settings key of the price list (TOML).
pub const PRICES_KEY: &str = "prices";
/// Settings key prefix of quotas (JSON); the global quota's key is the bare prefix.
pub const QUOTA_KEY_PREFIX: &str = "quota:";

/// Why quotas or prices could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] gureum_store::StoreError),
    /// A stored or given price list is invalid.
    #[error("price list: {0}")]
    Prices(#[from] gureum_metering::PriceError),
    /// A given quota is invalid.
    #[error("{0}")]
    Quota(#[from] gureum_metering::QuotaError),
    /// A stored quota does not parse.
    #[error("stored quota {key:?} is invalid: {reason}")]
    Corrupt {
        /// Its settings key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// A request refused because a monthly cap is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{who} reached its monthly {kind} quota of {cap} (used {used}); it resets at {resets_at}. \
     Raise or remove it with `gureum quota set{flag}` / `gureum quota rm{rm}`",
    who = match scope.as_str() { "global" => "the installation".to_string(), name => format!("function {name:?}") },
    kind = kind.replace('_', "-"),
    flag = if scope == "global" { String::new() } else { format!(" {scope}") },
    rm = if scope == "global" { String::new() } else { format!(" {scope}") },
)]
pub struct QuotaRefusal {
    /// `global` or the function's name.
    pub scope: String,
    /// `requests`, `gb_seconds` or `cost`.
    pub kind: String,
    /// The cap, for people ("1,000 requests", "$5.00").
    pub cap: String,
    /// This month's usage, for people.
    pub used: String,
    /// When the month ends (RFC 3339, UTC).
    pub resets_at: String,
    /// Seconds until then (for `retry-after`).
    pub retry_after_s: u64,
}

/// One quota as set, with its compiled check.
#[derive(Clone)]
struct Cap {
    quota: Quota,
    check: QuotaCheck,
}

#[derive(Default)]
struct Caps {
    prices: Prices,
    global: Option<Cap>,
    functions: HashMap<String, Cap>,
}

/// This month's usage as counted on this node.
#[derive(Default)]
struct MonthUsage {
    month_start_ms: i64,
    month_end_ms: i64,
    global: Counts,
    functions: HashMap<String, Counts>,
    // (scope, kind) pairs whose warning was already announced this month.
    warned: Vec<(String, QuotaKind)>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    requests: u64,
    mb_ms: u64,
}

/// Prices, quotas and the month-to-date usage they are checked against.
pub struct Quotas {
    store: Store,
    metrics: Arc<Metrics>,
    telemetry: Telemetry,
    active: AtomicBool,
    caps: RwLock<Caps>,
    usage: Mutex<MonthUsage>,
}

impl Quotas {
    /// Loads the price list and quotas from the store. `prices`, when given (the
    /// `--prices FILE` option), replaces the stored price list first.
    pub async fn load(
        store: Store,
        metrics: Arc<Metrics>,
        telemetry: Telemetry,
        prices: Option<Prices>,
    ) -> Result<Arc<Quotas>, QuotaError> {
        if let Some(prices) = &prices {
            store.put_setting(PRICES_KEY, &prices.to_toml()).await?;
        }
        let quotas = Arc::new(Quotas {
            store,
            metrics,
            telemetry,
            active: AtomicBool::new(false),
            caps: RwLock::new(Caps::default()),
            usage: Mutex::new(MonthUsage::default()),
        });
        quotas.reload().await?;
        Ok(quotas)
    }

    /// Re-reads prices and quotas from the store and re-seeds this month's usage.
    pub async fn reload(&self) -> Result<(), QuotaError> {
        let prices = match self.store.get_setting(PRICES_KEY).await? {
            Some(text) => Prices::from_toml(&text)?,
            None => Prices::default(),
        };
        let mut caps = Caps {
            prices,
            ..Caps::default()
        };
        for (key, value) in self.store.list_settings(QUOTA_KEY_PREFIX).await? {
            let quota: Quota =
                serde_json::from_str(&value).map_err(|error| QuotaError::Corrupt {
                    key: key.clone(),
                    reason: error.to_string(),
                })?;
            let name = &key[QUOTA_KEY_PREFIX.len()..];
            let scope = scope_of(name);
            let cap = Cap {
                check: QuotaCheck::new(scope, &quota, &caps.prices),
                quota,
            };
            if name.is_empty() {
                caps.global = Some(cap);
            } else {
                caps.functions.insert(name.to_string(), cap);
            }
        }
        let active = caps.global.is_some() || !caps.functions.is_empty();
        *write(&self.caps) = caps;
        if active {
            self.seed(gureum_model::now_ms(), false).await?;
        }
        self.active.store(active, Ordering::Release);
        self.update_gauges();
        Ok(())
    }

    /// The price list in force.
    pub fn prices(&self) -> Prices {
        read(&self.caps).prices.clone()
    }

    /// Stores a new price list and applies it.
    pub async fn set_prices(&self, prices: &Prices) -> Result<(), QuotaError> {
        prices.validate()?;
        self.store
            .put_setting(PRICES_KEY, &prices.to_toml())
            .await?;
        self.reload().await
    }

    /// Every quota set: `None` is the installation's.
    pub fn list(&self) -> Vec<(Option<String>, Quota)> {
        let caps = read(&self.caps);
        let mut list: Vec<(Option<String>, Quota)> = caps
            .global
            .iter()
            .map(|cap| (None, cap.quota.clone()))
            .collect();
        let mut functions: Vec<_> = caps
            .functions
            .iter()
            .map(|(name, cap)| (Some(name.clone()), cap.quota.clone()))
            .collect();
        functions.sort_by(|a, b| a.0.cmp(&b.0));
        list.extend(functions);
        list
    }

    /// Sets (or replaces) the quota of `function`, or the installation's when `None`.
    pub async fn set(&self, function: Option<&str>, quota: &Quota) -> Result<(), QuotaError> {
        quota.validate()?;
        let value = serde_json::to_string(quota).map_err(|error| QuotaError::Corrupt {
            key: key_of(function),
            reason: error.to_string(),
        })?;
        self.store.put_setting(&key_of(function), &value).await?;
        self.reload().await
    }

    /// Removes a quota; `false` when there was none.
    pub async fn remove(&self, function: Option<&str>) -> Result<bool, QuotaError> {
        let removed = self.store.delete_setting(&key_of(function)).await?;
        self.reload().await?;
        Ok(removed)
    }

    /// This month's usage counted against quotas: (requests, memory-milliseconds) of the
    /// installation and of `function`.
    pub fn month_usage(&self, function: &str) -> ((u64, u64), (u64, u64)) {
        let usage = lock(&self.usage);
        let of = |counts: Counts| (counts.requests, counts.mb_ms);
        (
            of(usage.global),
            of(usage.functions.get(function).copied().unwrap_or_default()),
        )
    }

    /// Admits one request of `function`, counting it, or refuses it at a used-up cap.
    pub fn admit(&self, function: &str) -> Result<(), Box<QuotaRefusal>> {
        if !self.active.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = gureum_model::now_ms();
        let caps = read(&self.caps);
        let mut usage = lock(&self.usage);
        if now >= usage.month_end_ms {
            roll_month(&mut usage, now);
        }
        let function_counts = usage.functions.get(function).copied().unwrap_or_default();
        let checks = [
            caps.global
                .as_ref()
                .map(|cap| ("global", cap, usage.global)),
            caps.functions
                .get(function)
                .map(|cap| (function, cap, function_counts)),
        ];
        for (scope, cap, counts) in checks.into_iter().flatten() {
            if let QuotaState::Exceeded { kind, cap, used } =
                cap.check.state(counts.requests, counts.mb_ms)
            {
                return Err(Box::new(refusal(
                    scope.to_string(),
                    kind,
                    cap,
                    used,
                    usage.month_end_ms,
                    now,
                )));
            }
        }
        usage.global.requests += 1;
        usage
            .functions
            .entry(function.to_string())
            .or_default()
            .requests += 1;
        drop(usage);
        drop(caps);
        self.announce_warnings(function);
        Ok(())
    }

    /// Gives back the admission of a request that did not run (refused by concurrency,
    /// code failed to load): it is not billed, so it does not count.
    pub fn refund(&self, function: &str) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut usage = lock(&self.usage);
        usage.global.requests = usage.global.requests.saturating_sub(1);
        if let Some(counts) = usage.functions.get_mut(function) {
            counts.requests = counts.requests.saturating_sub(1);
        }
    }

    /// Adds the memory-milliseconds of an invocation of `function` that ended.
    pub fn record(&self, function: &str, mb_ms: u64) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        {
            let mut usage = lock(&self.usage);
            usage.global.mb_ms += mb_ms;
            usage
                .functions
                .entry(function.to_string())
                .or_default()
                .mb_ms += mb_ms;
        }
        self.announce_warnings(function);
    }

    /// Starts the task that merges month-to-date usage with the store while quotas are
    /// set (other nodes' traffic, a new month).
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let quotas = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(QUOTA_REFRESH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(quotas) = quotas.upgrade() else {
                    return;
                };
                if quotas.active.load(Ordering::Acquire)
                    && let Err(error) = quotas.seed(gureum_model::now_ms(), true).await
                {
                    tracing::warn!(%error, "refreshing month-to-date usage for quotas failed");
                }
                quotas.update_gauges();
            }
        })
    }

    /// Reads this month's usage from the store; `merge` keeps local counts that are
    /// ahead of it (not flushed yet), otherwise the store's replace them.
    async fn seed(&self, now: i64, merge: bool) -> Result<(), QuotaError> {
        let month_start = gureum_metering::month_start_ms(now);
        let rows = self
            .store
            .usage_since(month_start.div_euclid(gureum_model::MS_PER_DAY))
            .await?;
        let mut global = Counts::default();
        let mut functions: HashMap<String, Counts> = HashMap::new();
        for row in rows {
            global.requests += row.requests;
            global.mb_ms += row.mb_ms;
            let counts = functions.entry(row.function).or_default();
            counts.requests += row.requests;
            counts.mb_ms += row.mb_ms;
        }
        let mut usage = lock(&self.usage);
        if usage.month_start_ms != month_start {
            roll_month(&mut usage, now);
        } else if merge {
            global = max_counts(global, usage.global);
            for (name, local) in &usage.functions {
                let stored = functions.entry(name.clone()).or_default();
                *stored = max_counts(*stored, *local);
            }
        }
        usage.global = global;
        usage.functions = functions;
        Ok(())
    }

    /// Logs (server log, the function's log, metrics) each cap that crossed its warning
    /// level, once a month.
    fn announce_warnings(&self, function: &str) {
        let caps = read(&self.caps);
        let mut usage = lock(&self.usage);
        let function_counts = usage.functions.get(function).copied().unwrap_or_default();
        let checks = [
            caps.global
                .as_ref()
                .map(|cap| ("global".to_string(), cap, usage.global)),
            caps.functions
                .get(function)
                .map(|cap| (function.to_string(), cap, function_counts)),
        ];
        let mut announce = Vec::new();
        for (scope, cap, counts) in checks.into_iter().flatten() {
            if let QuotaState::Warning { kind, used_percent } =
                cap.check.state(counts.requests, counts.mb_ms)
                && !usage.warned.contains(&(scope.clone(), kind))
            {
                usage.warned.push((scope.clone(), kind));
                announce.push((scope, kind, used_percent, cap.quota.warn_percent));
            }
        }
        drop(usage);
        drop(caps);
        for (scope, kind, used_percent, warn_percent) in announce {
            let message = format!(
                "quota warning: {} used {used_percent}% of its monthly {} quota (warning level {warn_percent}%)",
                if scope == "global" {
                    "the installation".to_string()
                } else {
                    format!("function {scope:?}")
                },
                kind.as_str().replace('_', "-"),
            );
            tracing::warn!(scope = %scope, kind = kind.as_str(), used_percent, "{message}");
            self.metrics
                .quota_warnings
                .get_or_create(&QuotaLabels {
                    scope: scope.clone(),
                    kind: kind.as_str().to_string(),
                })
                .inc();
            let telemetry = self.telemetry.clone();
            let function = function.to_string();
            tokio::spawn(async move {
                telemetry
                    .log(LogLine {
                        seq: 0,
                        invocation_id: String::new(),
                        function,
                        version: 0,
                        ts_ms: gureum_model::now_ms(),
                        stream: LogStream::Platform,
                        message,
                    })
                    .await;
            });
        }
    }

    /// Sets `gureum_quota_used_ratio` for every cap of every quota.
    fn update_gauges(&self) {
        let caps = read(&self.caps);
        let usage = lock(&self.usage);
        self.metrics.quota_used_ratio.clear();
        let scopes = caps
            .global
            .iter()
            .map(|cap| ("global".to_string(), cap, usage.global))
            .chain(caps.functions.iter().map(|(name, cap)| {
                (
                    name.clone(),
                    cap,
                    usage.functions.get(name).copied().unwrap_or_default(),
                )
            }));
        for (scope, cap, counts) in scopes {
            for (kind, ratio) in ratios(&cap.quota, &caps.prices, counts, scope == "global") {
                self.metrics
                    .quota_used_ratio
                    .get_or_create(&QuotaLabels {
                        scope: scope.clone(),
                        kind: kind.to_string(),
                    })
                    .set(ratio);
            }
        }
    }
}

/// The used share of each cap of `quota`.
fn ratios(
    quota: &Quota,
    prices: &Prices,
    counts: Counts,
    global: bool,
) -> Vec<(&'static str, f64)> {
    use rust_decimal::prelude::ToPrimitive;
    let mut ratios = Vec::new();
    if let Some(cap) = quota.requests {
        ratios.push(("requests", counts.requests as f64 / cap as f64));
    }
    if let Some(cap) = quota.gb_seconds {
        let used = gureum_metering::gb_seconds(counts.mb_ms);
        ratios.push(("gb_seconds", (used / cap).to_f64().unwrap_or(f64::INFINITY)));
    }
    if let Some(cap) = quota.cost {
        let used = if global {
            gureum_metering::month_bill(prices, counts.requests, counts.mb_ms).net
        } else {
            gureum_metering::list_cost(prices, counts.requests, counts.mb_ms)
        };
        ratios.push(("cost", (used / cap).to_f64().unwrap_or(f64::INFINITY)));
    }
    ratios
}

fn scope_of(name: &str) -> QuotaScope {
    if name.is_empty() {
        QuotaScope::Global
    } else {
        QuotaScope::Function(name.to_string())
    }
}

fn key_of(function: Option<&str>) -> String {
    format!("{QUOTA_KEY_PREFIX}{}", function.unwrap_or_default())
}

fn roll_month(usage: &mut MonthUsage, now: i64) {
    usage.month_start_ms = gureum_metering::month_start_ms(now);
    usage.month_end_ms = gureum_metering::next_month_start_ms(now);
    usage.global = Counts::default();
    usage.functions.clear();
    usage.warned.clear();
}

fn max_counts(a: Counts, b: Counts) -> Counts {
    Counts {
        requests: a.requests.max(b.requests),
        mb_ms: a.mb_ms.max(b.mb_ms),
    }
}

fn refusal(
    scope: String,
    kind: QuotaKind,
    cap: String,
    used: String,
    month_end_ms: i64,
    now: i64,
) -> QuotaRefusal {
    QuotaRefusal {
        scope,
        kind: kind.as_str().to_string(),
        cap,
        used,
        resets_at: rfc3339(month_end_ms),
        retry_after_s: ((month_end_ms - now).max(0) as u64).div_ceil(1000),
    }
}

/// `2026-12-01T00:00:00Z` for a UTC midnight.
fn rfc3339(ms: i64) -> String {
    let day = ms.div_euclid(gureum_model::MS_PER_DAY);
    let seconds = ms.rem_euclid(gureum_model::MS_PER_DAY) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        gureum_metering::format_day(day),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(gureum_metering::day_from_date(2026, 12, 1) * gureum_model::MS_PER_DAY),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(rfc3339(3_723_000), "1970-01-01T01:02:03Z");
    }

    #[test]
    fn refusals_name_the_cap_and_the_reset() {
        let refusal = refusal(
            "hello".into(),
            QuotaKind::Requests,
            "3 requests".into(),
            "3 requests".into(),
            gureum_metering::day_from_date(2026, 12, 1) * gureum_model::MS_PER_DAY,
            gureum_metering::day_from_date(2026, 11, 30) * gureum_model::MS_PER_DAY,
        );
        assert_eq!(refusal.retry_after_s, 86_400);
        assert_eq!(
            refusal.to_string(),
            "function \"hello\" reached its monthly requests quota of 3 requests (used 3 requests); \
             it resets at 2026-12-01T00:00:00Z. Raise or remove it with `gureum quota set hello` / `gureum quota rm hello`"
        );
    }
}
