//! Usage reports, the price list and quotas: `/usage`, `/prices` and `/quotas`. Money and
//! GB-seconds leave here as exact decimal strings; the arithmetic is `gureum_metering`'s.

use std::fmt::Write as _;
use std::str::FromStr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use gureum_api_types::{
    ErrorBody, FreeTierView, PricesView, ProjectionView, QuotaBody, QuotaUsageView, QuotaView,
    UsageGroupView, UsageReportView, UsageTotalsView, VmComparisonView, VmRowView,
};
use gureum_invoke::{QuotaError, Quotas};
use gureum_metering::{
    DEFAULT_WARN_PERCENT, Decimal, FREE_TIER_RULE, GroupBy, GroupKey, PRICE_KEYS, Prices, Quota,
    ReportQuery, Totals, UsageRow, VmComparison,
};
use gureum_model::LIVE_ALIAS;
use serde::Deserialize;
use serde_json::Value;

use crate::functions::parse_name;
use crate::{AdminState, ApiError};

/// How far back a usage report looks when neither `since` nor `since_ms` is given.
pub const DEFAULT_USAGE_SINCE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// The VM a usage report is compared with costs this much a month (USD) unless
/// `vm_monthly` says otherwise: a small always-on cloud VM (2 vCPU, 4 GB) in 2026.
pub const DEFAULT_VM_MONTHLY_USD: &str = "24.0";
/// Largest price list or quota body accepted; both are a few lines.
pub const MAX_SETTINGS_BODY_BYTES: usize = 64 * 1024;

/// Query parameters of the usage report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UsageParams {
    /// Only this function.
    pub function: Option<String>,
    /// How far back, as a duration: `30d`, `12h`, `90m` (default 30d). The report covers
    /// whole UTC days from the day this falls on.
    pub since: Option<String>,
    /// Start of the period in ms since the Unix epoch; wins over `since`.
    pub since_ms: Option<i64>,
    /// Groups: `day`, `function` or `version` (default `function`, or `day` with
    /// `function`).
    pub by: Option<String>,
    /// Add the comparison with an always-on VM.
    #[serde(default)]
    pub compare_vm: bool,
    /// The VM's monthly cost in USD, a decimal (default 24.0).
    pub vm_monthly: Option<String>,
}

/// Requests, GB-seconds and their cost under the price list, grouped by day, function or
/// version, with the free tier, this month's projection and, optionally, the comparison
/// with an always-on VM.
#[utoipa::path(get, path = "/api/v1/usage", tag = "metering",
    params(UsageParams),
    responses((status = 200, body = UsageReportView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "the function is not deployed and has no usage")))]
pub async fn usage(
    State(state): State<AdminState>,
    Query(params): Query<UsageParams>,
) -> Result<Json<UsageReportView>, ApiError> {
    let now = gureum_model::now_ms();
    let since = params
        .since
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let since_ms = match (params.since_ms, since) {
        (Some(ms), _) => ms,
        (None, Some(text)) => now.saturating_sub(parse_since(text)?),
        (None, None) => now - DEFAULT_USAGE_SINCE.as_millis() as i64,
    };
    if since_ms > now {
        return Err(ApiError::BadRequest(format!(
            "since_ms {since_ms} is in the future (now is {now}); give a start in the past"
        )));
    }
    // Nothing was metered before the epoch; keeps the calendar math in range.
    let since_ms = since_ms.max(0);
    let function = params.function.filter(|name| !name.is_empty());
    let by = match params.by.as_deref() {
        Some(text) => GroupBy::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown grouping by={text:?}; use by=day, by=function or by=version"
            ))
        })?,
        None if function.is_some() => GroupBy::Day,
        None => GroupBy::Function,
    };
    let vm_monthly = parse_vm_monthly(params.vm_monthly.as_deref())?;

    // From the first day of the month the period starts in: the free tier is used up day
    // by day from there, so costs inside the period need the days before it.
    let from_day = gureum_metering::day_of(gureum_metering::month_start_ms(since_ms));
    let rows: Vec<UsageRow> = state
        .store
        .usage_since(from_day)
        .await?
        .into_iter()
        .map(|row| UsageRow {
            day: row.day,
            function: row.function,
            version: i64::from(row.version),
            requests: row.requests,
            errors: row.errors,
            throttled: row.throttled,
            cold_starts: row.cold_starts,
            duration_us: row.duration_us,
            billed_ms: row.billed_ms,
            mb_ms: row.mb_ms,
            bytes_in: row.bytes_in,
            bytes_out: row.bytes_out,
        })
        .collect();
    if let Some(name) = &function {
        let parsed = parse_name(name)?;
        if !rows.iter().any(|row| row.function == *name)
            && state.store.get_alias(&parsed, LIVE_ALIAS).await?.is_none()
        {
            return Err(ApiError::NotFound(format!(
                "no function named {name:?} is deployed or has usage since {}; `gureum ls` lists the deployed functions",
                gureum_metering::format_day(from_day)
            )));
        }
    }

    let prices = state.invoker.quotas().prices();
    let report = gureum_metering::report(
        &prices,
        &rows,
        &ReportQuery {
            function,
            since_ms,
            by,
        },
        now,
    );
    let compare_vm = params
        .compare_vm
        .then(|| vm_view(gureum_metering::compare_vm(&prices, &report, vm_monthly)));
    let free = &report.free_tier;
    let projected = &report.projected_month;
    Ok(Json(UsageReportView {
        function: report.function.clone(),
        by: report.by.as_str().to_string(),
        since_ms: report.since_ms,
        now_ms: report.now_ms,
        since_day: gureum_metering::format_day(report.first_day),
        until_day: gureum_metering::format_day(report.last_day),
        groups: report
            .groups
            .iter()
            .map(|group| {
                let (day, function, version) = match &group.key {
                    GroupKey::Day(day) => (Some(gureum_metering::format_day(*day)), None, None),
                    GroupKey::Function(function) => (None, Some(function.clone()), None),
                    GroupKey::Version { function, version } => (
                        None,
                        Some(function.clone()),
                        Some(u32::try_from(*version).unwrap_or(u32::MAX)),
                    ),
                };
                UsageGroupView {
                    key: group.key.label(),
                    day,
                    function,
                    version,
                    totals: totals_view(&group.totals),
                }
            })
            .collect(),
        total: totals_view(&report.total),
        free_tier: FreeTierView {
            month: month_of(free.month_start_ms),
            requests_used: free.requests_used,
            requests_left: free.requests_left,
            gb_seconds_used: decimal(free.gb_seconds_used),
            gb_seconds_left: decimal(free.gb_seconds_left),
            resets_at: rfc3339(free.resets_at_ms),
        },
        projected_month: ProjectionView {
            requests: projected.requests,
            gb_seconds: decimal(projected.gb_seconds),
            cost_list: decimal(projected.cost_list),
            cost: decimal(projected.cost),
        },
        prices: prices_view(&prices),
        free_tier_rule: FREE_TIER_RULE.to_string(),
        compare_vm,
    }))
}

/// The price list in force.
#[utoipa::path(get, path = "/api/v1/prices", tag = "metering",
    responses((status = 200, body = PricesView)))]
pub async fn prices(State(state): State<AdminState>) -> Json<PricesView> {
    Json(prices_view(&state.invoker.quotas().prices()))
}

/// Replace the price list: a JSON object with some of the price file's keys (the others
/// keep their current values; decimals as strings), or the price file itself with
/// `content-type: application/toml` (keys left out take their defaults, as with
/// `gureum up --prices FILE`).
#[utoipa::path(put, path = "/api/v1/prices", tag = "metering",
    request_body(description = "the new prices: JSON (partial) or the TOML price file",
        content((PricesView = "application/json"), (String = "application/toml"))),
    responses((status = 200, body = PricesView), (status = 400, body = ErrorBody)))]
pub async fn set_prices(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PricesView>, ApiError> {
    let text = settings_text(&body, "price list").map_err(ApiError::InvalidPrices)?;
    let is_toml = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("toml"));
    let quotas = state.invoker.quotas();
    let prices = if is_toml {
        Prices::from_toml(text).map_err(QuotaError::Prices)?
    } else {
        merge_json_prices(quotas.prices(), text)?
    };
    quotas.set_prices(&prices).await?;
    Ok(Json(prices_view(&quotas.prices())))
}

/// Every quota set, with this month's usage counted against it.
#[utoipa::path(get, path = "/api/v1/quotas", tag = "metering",
    responses((status = 200, body = Vec<QuotaView>)))]
pub async fn quotas(State(state): State<AdminState>) -> Json<Vec<QuotaView>> {
    let quotas = state.invoker.quotas();
    Json(
        quotas
            .list()
            .into_iter()
            .map(|(scope, quota)| quota_view(quotas, scope.as_deref(), &quota))
            .collect(),
    )
}

/// Set (replace) the installation-wide monthly quota.
#[utoipa::path(put, path = "/api/v1/quotas/global", tag = "metering",
    request_body = QuotaBody,
    responses((status = 200, body = QuotaView), (status = 400, body = ErrorBody)))]
pub async fn set_global_quota(
    State(state): State<AdminState>,
    body: Bytes,
) -> Result<Json<QuotaView>, ApiError> {
    set_quota(&state, None, &body).await
}

/// Set (replace) a function's monthly quota; the function need not be deployed yet.
#[utoipa::path(put, path = "/api/v1/quotas/{name}", tag = "metering",
    params(("name" = String, Path, description = "function name")),
    request_body = QuotaBody,
    responses((status = 200, body = QuotaView), (status = 400, body = ErrorBody)))]
pub async fn set_function_quota(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<QuotaView>, ApiError> {
    parse_name(&name)?;
    set_quota(&state, Some(&name), &body).await
}

/// Remove the installation-wide quota.
#[utoipa::path(delete, path = "/api/v1/quotas/global", tag = "metering",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_global_quota(State(state): State<AdminState>) -> Result<StatusCode, ApiError> {
    remove_quota(&state, None).await
}

/// Remove a function's quota.
#[utoipa::path(delete, path = "/api/v1/quotas/{name}", tag = "metering",
    params(("name" = String, Path, description = "function name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_function_quota(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    parse_name(&name)?;
    remove_quota(&state, Some(&name)).await
}

async fn set_quota(
    state: &AdminState,
    scope: Option<&str>,
    body: &[u8],
) -> Result<Json<QuotaView>, ApiError> {
    let text = settings_text(body, "quota").map_err(ApiError::InvalidQuota)?;
    let body: QuotaBody = serde_json::from_str(text).map_err(|error| {
        ApiError::InvalidQuota(format!(
            "the quota is not valid JSON: {error}; send e.g. {{\"requests\": 100000, \"cost\": \"5.00\", \"warn_percent\": 80}}"
        ))
    })?;
    let quota = Quota {
        requests: body.requests,
        gb_seconds: body
            .gb_seconds
            .as_deref()
            .map(|text| cap("gb_seconds", text, "1000.5"))
            .transpose()?,
        cost: body
            .cost
            .as_deref()
            .map(|text| cap("cost", text, "5.00"))
            .transpose()?,
        warn_percent: body.warn_percent.unwrap_or(DEFAULT_WARN_PERCENT),
    };
    let quotas = state.invoker.quotas();
    quotas.set(scope, &quota).await?;
    Ok(Json(quota_view(quotas, scope, &quota)))
}

async fn remove_quota(state: &AdminState, scope: Option<&str>) -> Result<StatusCode, ApiError> {
    if state.invoker.quotas().remove(scope).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(ApiError::NotFound(match scope {
        None => "no installation-wide quota is set; `gureum quota ls` lists the quotas".into(),
        Some(name) => {
            format!("no quota is set for function {name:?}; `gureum quota ls` lists the quotas")
        }
    }))
}

fn quota_view(quotas: &Quotas, scope: Option<&str>, quota: &Quota) -> QuotaView {
    let prices = quotas.prices();
    let (installation, function) = quotas.month_usage(scope.unwrap_or_default());
    // Counted as the cost cap is checked: the installation pays after the free tier, a
    // function's cap is on its list price.
    let ((requests, mb_ms), cost) = match scope {
        None => (
            installation,
            gureum_metering::month_bill(&prices, installation.0, installation.1).net,
        ),
        Some(_) => (
            function,
            gureum_metering::list_cost(&prices, function.0, function.1),
        ),
    };
    QuotaView {
        scope: scope.unwrap_or("global").to_string(),
        requests: quota.requests,
        gb_seconds: quota.gb_seconds.map(decimal),
        cost: quota.cost.map(decimal),
        warn_percent: quota.warn_percent,
        used: QuotaUsageView {
            requests,
            gb_seconds: decimal(gureum_metering::gb_seconds(mb_ms)),
            cost: decimal(cost),
        },
    }
}

/// A quota cap given as decimal text.
fn cap(field: &str, text: &str, example: &str) -> Result<Decimal, ApiError> {
    Decimal::from_str_exact(text.trim()).map_err(|_| {
        ApiError::InvalidQuota(format!(
            "quota {field} = {text:?} is not a number; write a decimal like \"{example}\""
        ))
    })
}

/// A JSON price object applied over `current`: each key given replaces its value. The
/// object is checked as the price file is (it is written out as one), so both report a
/// bad key or value the same way.
fn merge_json_prices(current: Prices, text: &str) -> Result<Prices, ApiError> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        ApiError::InvalidPrices(format!(
            "the price list is not valid JSON: {error}; send a JSON object with some of the keys {}, or the price file with content-type: application/toml",
            PRICE_KEYS.join(", ")
        ))
    })?;
    let Value::Object(object) = value else {
        return Err(ApiError::InvalidPrices(format!(
            "the price list must be a JSON object with some of the keys {}",
            PRICE_KEYS.join(", ")
        )));
    };
    let mut toml = String::new();
    for (key, value) in &object {
        let value = match value {
            // null: keep the current value.
            Value::Null => continue,
            // A JSON string literal is a valid TOML basic string.
            Value::String(text) => Value::String(text.clone()).to_string(),
            Value::Number(number) if number.is_f64() => {
                return Err(ApiError::InvalidPrices(format!(
                    "`{key}` = {number} would be inexact as a JSON number with a fraction; write it as a string, like \"{number}\""
                )));
            }
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Array(_) => "[]".into(),
            Value::Object(_) => "{}".into(),
        };
        // Quoted, so any key reaches the price file check (which names unknown ones).
        let _ = writeln!(toml, "{} = {value}", Value::String(key.clone()));
    }
    let given = Prices::from_toml(&toml).map_err(QuotaError::Prices)?;
    let has = |key: &str| object.get(key).is_some_and(|value| !value.is_null());
    Ok(Prices {
        requests_per_million: if has(PRICE_KEYS[0]) {
            given.requests_per_million
        } else {
            current.requests_per_million
        },
        gb_second: if has(PRICE_KEYS[1]) {
            given.gb_second
        } else {
            current.gb_second
        },
        free_requests_per_month: if has(PRICE_KEYS[2]) {
            given.free_requests_per_month
        } else {
            current.free_requests_per_month
        },
        free_gb_seconds_per_month: if has(PRICE_KEYS[3]) {
            given.free_gb_seconds_per_month
        } else {
            current.free_gb_seconds_per_month
        },
    })
}

/// A settings body as text, or why not.
fn settings_text<'a>(body: &'a [u8], what: &str) -> Result<&'a str, String> {
    if body.len() > MAX_SETTINGS_BODY_BYTES {
        return Err(format!(
            "the {what} is {} bytes; at most {MAX_SETTINGS_BODY_BYTES} are accepted",
            body.len()
        ));
    }
    std::str::from_utf8(body).map_err(|_| format!("the {what} is not UTF-8 text"))
}

pub(crate) fn parse_since(text: &str) -> Result<i64, ApiError> {
    let duration = humantime::parse_duration(text).map_err(|error| {
        ApiError::BadRequest(format!(
            "since={text:?} is not a duration ({error}); use e.g. since=30d, since=12h or since=90m"
        ))
    })?;
    Ok(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

fn parse_vm_monthly(text: Option<&str>) -> Result<Decimal, ApiError> {
    let text = text.map(str::trim).filter(|text| !text.is_empty());
    let Some(text) = text else {
        return Ok(Decimal::from_str(DEFAULT_VM_MONTHLY_USD).unwrap_or(Decimal::ZERO));
    };
    match Decimal::from_str(text) {
        Ok(amount) if amount >= Decimal::ZERO => Ok(amount),
        _ => Err(ApiError::BadRequest(format!(
            "vm_monthly={text:?} is not an amount in USD; give the VM's monthly cost like vm_monthly=24.0"
        ))),
    }
}

/// Price list → its wire shape.
pub(crate) fn prices_view(prices: &Prices) -> PricesView {
    PricesView {
        requests_per_million: decimal(prices.requests_per_million),
        gb_second: decimal(prices.gb_second),
        free_requests_per_month: prices.free_requests_per_month,
        free_gb_seconds_per_month: decimal(prices.free_gb_seconds_per_month),
    }
}

fn totals_view(totals: &Totals) -> UsageTotalsView {
    UsageTotalsView {
        requests: totals.requests,
        errors: totals.errors,
        throttled: totals.throttled,
        cold_starts: totals.cold_starts,
        billed_ms: totals.billed_ms,
        gb_seconds: decimal(totals.gb_seconds),
        bytes_in: totals.bytes_in,
        bytes_out: totals.bytes_out,
        cost_list: decimal(totals.cost_list),
        cost: decimal(totals.cost),
    }
}

fn vm_view(comparison: VmComparison) -> VmComparisonView {
    VmComparisonView {
        sentence: comparison.sentence,
        has_traffic: comparison.has_traffic,
        requests_per_second: decimal(comparison.requests_per_second),
        requests_per_month: decimal(comparison.requests_per_month),
        gb_seconds_per_request: decimal(comparison.gb_seconds_per_request),
        serverless_monthly: decimal(comparison.serverless_monthly),
        vm_monthly: decimal(comparison.vm_monthly),
        break_even_requests_per_second: comparison
            .break_even
            .as_ref()
            .map(|be| decimal(be.requests_per_second)),
        break_even_requests_per_month: comparison
            .break_even
            .as_ref()
            .map(|be| decimal(be.requests_per_month)),
        table: comparison
            .table
            .into_iter()
            .map(|row| VmRowView {
                requests_per_second: decimal(row.requests_per_second),
                requests_per_month: decimal(row.requests_per_month),
                serverless_monthly: decimal(row.serverless_monthly),
                vm_monthly: decimal(row.vm_monthly),
                cheaper: row.cheaper.as_str().to_string(),
                observed: row.observed,
            })
            .collect(),
    }
}

/// An exact decimal as wire text: every digit kept, trailing zeros trimmed ("0.0000002",
/// "6.86668", "7"), never "-0".
pub(crate) fn decimal(value: Decimal) -> String {
    value.normalize().to_string()
}

/// `2026-11` for a time in November 2026 (UTC).
fn month_of(ms: i64) -> String {
    let (year, month, _) = gureum_metering::date_of_day(gureum_metering::day_of(ms));
    format!("{year:04}-{month:02}")
}

/// `2026-12-01T00:00:00Z` (RFC 3339, UTC, whole seconds).
fn rfc3339(ms: i64) -> String {
    let seconds = ms.rem_euclid(gureum_model::MS_PER_DAY) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        gureum_metering::format_day(gureum_metering::day_of(ms)),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn decimals_keep_every_digit_and_drop_trailing_zeros() {
        assert_eq!(decimal(d("0.0000002")), "0.0000002");
        assert_eq!(decimal(d("6.866680")), "6.86668");
        assert_eq!(decimal(d("7.000")), "7");
        assert_eq!(decimal(d("0.20")), "0.2");
        assert_eq!(decimal(d("-0.000")), "0");
        assert_eq!(decimal(Decimal::ZERO), "0");
    }

    #[test]
    fn months_and_reset_times_are_utc() {
        let december = gureum_metering::day_start_ms(gureum_metering::day_from_date(2026, 12, 1));
        assert_eq!(rfc3339(december), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(december + 3_723_000), "2026-12-01T01:02:03Z");
        assert_eq!(month_of(december - 1), "2026-11");
        assert_eq!(month_of(december), "2026-12");
    }

    #[test]
    fn json_prices_change_only_the_keys_given() {
        let current = Prices::from_toml("gb_second = \"0.00001\"").unwrap();
        let merged = merge_json_prices(
            current.clone(),
            r#"{"requests_per_million": "1000000", "free_requests_per_month": 0, "free_gb_seconds_per_month": null}"#,
        )
        .unwrap();
        assert_eq!(merged.requests_per_million, d("1000000"));
        assert_eq!(merged.free_requests_per_month, 0);
        assert_eq!(merged.gb_second, d("0.00001"));
        assert_eq!(
            merged.free_gb_seconds_per_month,
            current.free_gb_seconds_per_month
        );
        assert_eq!(merge_json_prices(current.clone(), "{}").unwrap(), current);
    }

    #[test]
    fn bad_json_prices_name_the_key() {
        let current = Prices::default();
        let message = |text: &str| {
            merge_json_prices(current.clone(), text)
                .unwrap_err()
                .to_string()
        };
        assert!(
            message(r#"{"gb_secnd": "1"}"#).contains("did you mean `gb_second`"),
            "{}",
            message(r#"{"gb_secnd": "1"}"#)
        );
        assert!(message(r#"{"gb_second": "-1"}"#).contains("`gb_second` = \"-1\" is negative"));
        assert!(message(r#"{"gb_second": 0.5}"#).contains("write it as a string"));
        assert!(message(r#"{"gb_second": true}"#).contains("`gb_second` is a boolean"));
        assert!(message("[1]").contains("must be a JSON object"));
        assert!(message("gb_second = 1").contains("not valid JSON"));
        // A key that needs quoting in TOML is still reported as what it is.
        assert!(message(r#"{"a.b \"c\"": 1}"#).contains("unknown key `a.b \"c\"`"));
    }

    #[test]
    fn since_and_vm_monthly_are_parsed_exactly() {
        assert_eq!(parse_since("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_since("90m").unwrap(), 90 * 60_000);
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .to_string()
                .contains("since=30d")
        );
        assert_eq!(parse_vm_monthly(None).unwrap(), d("24.0"));
        assert_eq!(parse_vm_monthly(Some("4.15")).unwrap(), d("4.15"));
        assert!(parse_vm_monthly(Some("-1")).is_err());
        assert!(parse_vm_monthly(Some("cheap")).is_err());
    }
}
