//! The shapes of queued events: requests stored and replayed, the EventBridge scheduled
//! event lambda functions get from cron, Lambda-style destination records, the list of
//! failed attempts, and the retry backoff: retry n waits `retry_delay_ms · 2^(n−1)`,
//! capped at 15 minutes, times a random factor in [0.75, 1] (`retry_delay`).

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use gureum_store::QueuedEvent;
use serde_json::{Value, json};

use crate::AsyncRequest;

/// Longest retry delay, whatever the attempt.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(15 * 60);
/// Most bytes of a response kept for a destination record or an attempt error.
pub(crate) const MAX_KEPT_RESPONSE: usize = 256 * 1024;
/// Most characters of an attempt's error message kept in the dead-letter list.
const MAX_ERROR_CHARS: usize = 4096;

/// A schedule as `gureum schedules` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleView {
    /// The function.
    pub function: String,
    /// The schedule's name.
    pub name: String,
    /// Its cron line.
    pub cron: String,
    /// Its time zone.
    pub tz: String,
    /// The next tick (ms since the epoch), if any.
    pub next_at_ms: Option<i64>,
    /// The last tick fired or skipped.
    pub last_tick_ms: Option<i64>,
    /// The invocation of the last fired tick.
    pub last_invocation_id: Option<String>,
    /// `succeeded`, `failed`, or `None` (running, or never ran).
    pub last_status: Option<String>,
    /// When that invocation finished.
    pub last_finished_at_ms: Option<i64>,
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn headers_json(headers: &[(String, String)]) -> String {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| json!([name, value]))
            .collect(),
    )
    .to_string()
}

/// The stored headers back as pairs (a corrupt list is read as none).
pub(crate) fn headers_from_json(text: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<(String, String)>>(text).unwrap_or_default()
}

pub(crate) fn queued_from_request(request: &AsyncRequest) -> QueuedEvent {
    let now = gureum_model::now_ms();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        // Every `x-gureum-*` header is the platform's to set on each attempt (the
        // gateway already drops those a caller sent).
        .filter(|(name, _)| !name.to_ascii_lowercase().starts_with("x-gureum-"))
        .cloned()
        .collect();
    QueuedEvent {
        id: new_id(),
        function: request.function.clone(),
        version: request.version,
        trigger: "queue".to_string(),
        source: None,
        method: request.method.clone(),
        path: request.path.clone(),
        headers: headers_json(&headers),
        body: request.body.to_vec(),
        raw_event: None,
        enqueued_at_ms: now,
        attempts: 0,
        next_at_ms: now,
        errors: "[]".to_string(),
    }
}

/// The event of one cron tick: wasm functions get `POST /` with the schedule's body and
/// `x-gureum-schedule`; lambda functions an EventBridge "Scheduled Event".
pub(crate) fn cron_event(
    function: &str,
    schedule: &str,
    body: &str,
    tick_ms: i64,
    now_ms: i64,
) -> QueuedEvent {
    let id = new_id();
    let time = rfc3339(tick_ms);
    let content_type = if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let headers = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("x-gureum-schedule".to_string(), schedule.to_string()),
        ("x-gureum-scheduled-time".to_string(), time.clone()),
    ];
    // EventBridge puts the rule's input in `detail`; a body that is not a JSON object
    // travels as {"body": "..."} there.
    let detail = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ if body.is_empty() => json!({}),
        _ => json!({ "body": body }),
    };
    let raw = json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.replacen(".000Z", "Z", 1),
        "region": "local",
        "resources": [format!("arn:aws:events:local:000000000000:rule/{function}-{schedule}")],
        "detail": detail,
    });
    QueuedEvent {
        id,
        function: function.to_string(),
        version: None,
        trigger: "cron".to_string(),
        source: Some(schedule.to_string()),
        method: "POST".to_string(),
        path: "/".to_string(),
        headers: headers_json(&headers),
        body: body.as_bytes().to_vec(),
        raw_event: Some(raw.to_string()),
        enqueued_at_ms: now_ms,
        attempts: 0,
        next_at_ms: now_ms,
        errors: "[]".to_string(),
    }
}

/// The JSON of a body: itself if it is JSON, else a string (base64 if not UTF-8).
fn payload(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return value;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// What happened to an invocation, for its destination record.
pub(crate) struct Outcome<'a> {
    /// `Success`, `RetriesExhausted` or `EventAgeExceeded` (Lambda's conditions).
    pub condition: &'a str,
    pub status: Option<u16>,
    pub version: Option<u32>,
    pub response: &'a [u8],
    pub function_error: bool,
}

/// A Lambda destination record for `event`: `requestContext`, `requestPayload`,
/// `responseContext`, `responsePayload`, plus gureum's `request` (method, path) and the
/// failed attempts' `errors`.
pub fn destination_record(
    event: &QueuedEvent,
    condition: &str,
    status: Option<u16>,
    version: Option<u32>,
    response: &[u8],
    function_error: bool,
) -> Value {
    let mut response_context = json!({
        "statusCode": status,
        "executedVersion": version.map(|v| v.to_string()),
    });
    if function_error {
        response_context["functionError"] = json!("Unhandled");
    }
    json!({
        "version": "1.0",
        "timestamp": rfc3339(gureum_model::now_ms()),
        "requestContext": {
            "requestId": event.id,
            "functionArn": format!("arn:gureum:function:{}", event.function),
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": payload(&event.body),
        "responseContext": response_context,
        "responsePayload": payload(response),
        "request": { "method": event.method, "path": event.path, "trigger": event.trigger },
        "errors": serde_json::from_str::<Value>(&event.errors).unwrap_or(Value::Null),
    })
}

/// The event that delivers a destination record to `destination`.
pub(crate) fn destination_event(
    destination: &str,
    event: &QueuedEvent,
    outcome: &Outcome<'_>,
) -> QueuedEvent {
    let record = destination_record(
        event,
        outcome.condition,
        outcome.status,
        outcome.version,
        outcome.response,
        outcome.function_error,
    )
    .to_string();
    let now = gureum_model::now_ms();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-gureum-destination-of".to_string(), event.id.clone()),
        (
            "x-gureum-destination-condition".to_string(),
            outcome.condition.to_string(),
        ),
    ];
    QueuedEvent {
        id: new_id(),
        function: destination.to_string(),
        version: None,
        trigger: "queue".to_string(),
        source: Some(event.id.clone()),
        method: "POST".to_string(),
        path: "/".to_string(),
        headers: headers_json(&headers),
        body: record.clone().into_bytes(),
        raw_event: Some(record),
        enqueued_at_ms: now,
        attempts: 0,
        next_at_ms: now,
        errors: "[]".to_string(),
    }
}

/// `errors` with one more failed attempt.
pub(crate) fn add_error(
    errors: &str,
    attempt: u32,
    at_ms: i64,
    status: u16,
    message: &str,
) -> String {
    let mut list = serde_json::from_str::<Vec<Value>>(errors).unwrap_or_default();
    let message: String = message.chars().take(MAX_ERROR_CHARS).collect();
    list.push(json!({
        "attempt": attempt,
        "at": rfc3339(at_ms),
        "status": status,
        "error": message,
    }));
    Value::Array(list).to_string()
}

/// Delay before retry number `retry` (1 for the first): `base` doubled per retry, times
/// a random factor in [0.75, 1] so that retries of many events spread out while each
/// gap stays longer than the one before.
pub(crate) fn retry_delay(base_ms: u64, retry: u32) -> Duration {
    let doubled = base_ms.saturating_mul(1_u64 << retry.saturating_sub(1).min(20));
    let capped = doubled.min(MAX_RETRY_DELAY.as_millis() as u64);
    let factor = 0.75 + rand::random::<f64>() * 0.25;
    Duration::from_millis((capped as f64 * factor) as u64)
}

/// The body of a response as text for an error message.
pub(crate) fn body_text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_gaps_grow_and_are_capped() {
        for _ in 0..100 {
            let first = retry_delay(1_000, 1);
            let second = retry_delay(1_000, 2);
            let third = retry_delay(1_000, 3);
            assert!((750..=1_000).contains(&first.as_millis()), "{first:?}");
            assert!(
                second > first && third > second,
                "{first:?} {second:?} {third:?}"
            );
        }
        assert!(retry_delay(60_000, 30) <= MAX_RETRY_DELAY);
    }

    #[test]
    fn cron_events_carry_eventbridge_shape_and_body() {
        let event = cron_event(
            "report",
            "nightly",
            r#"{"kind":"daily"}"#,
            1_764_300_000_000,
            1,
        );
        let raw: Value = serde_json::from_str(event.raw_event.as_deref().unwrap()).unwrap();
        assert_eq!(raw["source"], "aws.events");
        assert_eq!(raw["detail-type"], "Scheduled Event");
        assert_eq!(raw["time"], "2025-11-28T03:20:00Z");
        assert_eq!(raw["detail"]["kind"], "daily");
        assert_eq!(raw["id"], event.id);
        assert!(
            raw["resources"][0]
                .as_str()
                .unwrap()
                .ends_with("rule/report-nightly")
        );
        let headers = headers_from_json(&event.headers);
        assert!(headers.contains(&("x-gureum-schedule".into(), "nightly".into())));
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        let text = cron_event("report", "n", "hello", 0, 1);
        let raw: Value = serde_json::from_str(text.raw_event.as_deref().unwrap()).unwrap();
        assert_eq!(raw["detail"]["body"], "hello");
    }

    #[test]
    fn destination_records_follow_lambda() {
        let mut event = cron_event("work", "s", "{\"n\":1}", 0, 1);
        event.attempts = 3;
        event.errors = add_error("[]", 1, 0, 500, "boom");
        let record = destination_record(
            &event,
            "RetriesExhausted",
            Some(500),
            Some(2),
            b"oops",
            true,
        );
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["requestContext"]["requestId"], event.id);
        assert_eq!(record["requestPayload"]["n"], 1);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        assert_eq!(record["responseContext"]["executedVersion"], "2");
        assert_eq!(record["responsePayload"], "oops");
        assert_eq!(record["errors"][0]["error"], "boom");
    }
}
