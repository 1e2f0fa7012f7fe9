//! Claims due events and runs them: one attempt through `Invoker::invoke`, then success
//! (delete + success destination), a retry with backoff, or the dead-letter list (+
//! failure destination). A throttled attempt (the function at its concurrency limit) is
//! put back shortly without counting, as Lambda does for async throttles.
//!
//! A claim takes up to as many due events as the node has free slots, with a lease and the
//! attempt counted, in one statement (`Store::claim_events`, `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL). Functions this node already runs `max_instances` events of are skipped.
//! Every attempt runs with the event's id as its `InvocationId`, and a lambda function gets
//! the stored `RawEvent` (cron's EventBridge event, destination records) as is.

use std::sync::Arc;

use bytes::Bytes;
use gureum_invoke::{InvocationId, InvokeError, RawEvent, VersionSelector};
use gureum_model::{Runtime, Trigger};
use gureum_store::QueuedEvent;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};

use crate::events::{self, Outcome};
use crate::{Queue, lock, millis};

/// Most events claimed in one statement.
const CLAIM_BATCH: usize = 32;

pub(crate) async fn run(queue: Arc<Queue>) {
    loop {
        tokio::select! {
            () = queue.stop.cancelled() => return,
            () = queue.wake.notified() => {}
            () = tokio::time::sleep(queue.settings.poll_interval) => {}
        }
        // Claim while there are free slots and due events.
        loop {
            if queue.stop.is_cancelled() {
                return;
            }
            let free = queue.slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                break;
            }
            let now = gureum_model::now_ms();
            let claimed = match queue
                .store
                .claim_events(
                    &queue.node,
                    now,
                    now + millis(queue.settings.lease),
                    free as u32,
                    &saturated(&queue),
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming asynchronous events failed");
                    break;
                }
            };
            let full_batch = claimed.len() == free;
            for event in claimed {
                let Ok(permit) = queue.slots.clone().try_acquire_owned() else {
                    // Cannot happen (only this loop takes slots); the lease expires and
                    // the event runs later.
                    break;
                };
                *lock(&queue.running)
                    .entry(event.function.clone())
                    .or_insert(0) += 1;
                let queue_for_run = queue.clone();
                queue.runs.spawn(async move {
                    let function = event.function.clone();
                    attempt(&queue_for_run, event).await;
                    if let Some(count) = lock(&queue_for_run.running).get_mut(&function) {
                        *count = count.saturating_sub(1);
                    }
                    drop(permit);
                    queue_for_run.wake.notify_one();
                });
            }
            if !full_batch {
                break;
            }
        }
    }
}

/// Functions this node runs as many events of as their `max_instances`: claiming more
/// would only meet their concurrency limit.
fn saturated(queue: &Queue) -> Vec<String> {
    let running = lock(&queue.running);
    running
        .iter()
        .filter(|(function, count)| {
            **count > 0
                && queue
                    .invoker
                    .live_function(function)
                    .is_none_or(|(_, spec)| **count >= spec.limits.max_instances)
        })
        .map(|(function, _)| function.clone())
        .collect()
}

/// Runs one attempt of `event` and records what came of it.
async fn attempt(queue: &Queue, event: QueuedEvent) {
    let now = gureum_model::now_ms();
    let Some((live_version, spec)) = queue.invoker.live_function(&event.function) else {
        let errors = events::add_error(
            &event.errors,
            event.attempts,
            now,
            404,
            "the function was removed before the event ran",
        );
        finish_dead(queue, &event, &errors, "function_removed", None, None, now).await;
        return;
    };
    let config = &spec.async_config;
    let age = now - event.enqueued_at_ms;
    if age > i64::try_from(config.max_event_age_ms).unwrap_or(i64::MAX) {
        let outcome = Outcome {
            condition: "EventAgeExceeded",
            status: None,
            version: None,
            response: b"",
            function_error: false,
        };
        finish_dead(
            queue,
            &event,
            &event.errors,
            "event_too_old",
            config.on_failure.as_ref().map(|name| name.as_str()),
            Some(&outcome),
            now,
        )
        .await;
        return;
    }

    let selector = match event.version {
        Some(version) => VersionSelector::Pinned(version),
        None => VersionSelector::Live,
    };
    let trigger = Trigger::parse(&event.trigger).unwrap_or(Trigger::Queue);
    let request = build_request(&event, spec.runtime);
    let answer = queue
        .invoker
        .invoke(&event.function, selector, request, None, trigger)
        .await;
    let version = Some(answer.version)
        .filter(|v| *v > 0)
        .or(Some(live_version));
    let (status, body, error) = match answer.response {
        Err(InvokeError::Throttled(_)) => {
            // Put back without counting the attempt; spread the retries a little.
            let delay = 100 + rand::random::<u64>() % 400;
            queue.count(&event.function, "throttled");
            if let Err(error) = queue
                .store
                .retry_event(&event.id, now + delay as i64, &event.errors, false)
                .await
            {
                tracing::warn!(%error, id = %event.id, "re-queueing a throttled event failed; it runs again when its lease expires");
            }
            return;
        }
        Err(error) => (error.status(), Bytes::new(), Some(error.to_string())),
        Ok(response) => {
            let status = response.status().as_u16();
            let body = read_kept(response.into_body()).await;
            if status >= 500 {
                let message = format!(
                    "the function answered {status}: {}",
                    events::body_text(&body)
                );
                (status, body, Some(message))
            } else {
                (status, body, None)
            }
        }
    };
    let now = gureum_model::now_ms();
    match error {
        None => {
            let outcome = Outcome {
                condition: "Success",
                status: Some(status),
                version,
                response: &body,
                function_error: false,
            };
            let follow_up = config.on_success.as_ref().map(|destination| {
                events::destination_event(destination.as_str(), &event, &outcome)
            });
            match queue
                .store
                .complete_event(&event, follow_up.as_ref(), now)
                .await
            {
                Ok(()) => {
                    queue.count(&event.function, "succeeded");
                    if follow_up.is_some() {
                        queue.wake.notify_one();
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, id = %event.id, "recording a finished event failed; it may run again (at-least-once)");
                }
            }
        }
        Some(message) => {
            let errors = events::add_error(&event.errors, event.attempts, now, status, &message);
            let retries_used = event.attempts.saturating_sub(1);
            let delay = events::retry_delay(config.retry_delay_ms, retries_used + 1);
            let next_at = now + millis(delay);
            let too_old = next_at - event.enqueued_at_ms
                > i64::try_from(config.max_event_age_ms).unwrap_or(i64::MAX);
            if retries_used >= config.retries || too_old {
                let condition = if too_old && retries_used < config.retries {
                    "EventAgeExceeded"
                } else {
                    "RetriesExhausted"
                };
                let mut failed = event.clone();
                failed.errors = errors.clone();
                let outcome = Outcome {
                    condition,
                    status: Some(status),
                    version,
                    response: &body,
                    function_error: true,
                };
                let reason = if condition == "EventAgeExceeded" {
                    "event_too_old"
                } else {
                    "retries_exhausted"
                };
                finish_dead(
                    queue,
                    &failed,
                    &errors,
                    reason,
                    config.on_failure.as_ref().map(|name| name.as_str()),
                    Some(&outcome),
                    now,
                )
                .await;
            } else {
                match queue
                    .store
                    .retry_event(&event.id, next_at, &errors, true)
                    .await
                {
                    Ok(()) => queue.count(&event.function, "retried"),
                    Err(error) => {
                        tracing::warn!(%error, id = %event.id, "scheduling a retry failed; the event runs again when its lease expires")
                    }
                }
            }
        }
    }
}

async fn finish_dead(
    queue: &Queue,
    event: &QueuedEvent,
    errors: &str,
    reason: &str,
    destination: Option<&str>,
    outcome: Option<&Outcome<'_>>,
    now: i64,
) {
    let mut recorded = event.clone();
    recorded.errors = errors.to_string();
    let follow_up = destination
        .zip(outcome)
        .map(|(destination, outcome)| events::destination_event(destination, &recorded, outcome));
    match queue
        .store
        .dead_letter_event(event, errors, reason, follow_up.as_ref(), now)
        .await
    {
        Ok(()) => {
            tracing::warn!(function = %event.function, id = %event.id, reason, attempts = event.attempts, "asynchronous event moved to the dead-letter list");
            queue.count(&event.function, "dead_lettered");
            if follow_up.is_some() {
                queue.wake.notify_one();
            }
        }
        Err(error) => {
            tracing::warn!(%error, id = %event.id, "dead-lettering an event failed; it runs again when its lease expires");
        }
    }
}

/// The request of one attempt: the stored request with the platform's headers, the
/// event's id as the invocation id, and for lambda functions the raw event if there is
/// one (cron, destinations).
fn build_request(event: &QueuedEvent, runtime: Runtime) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::new(Full::new(Bytes::from(event.body.clone())));
    *request.method_mut() =
        http::Method::from_bytes(event.method.as_bytes()).unwrap_or(http::Method::POST);
    let stored = events::headers_from_json(&event.headers);
    // wasi:http needs an authority: the original request's host, else localhost (cron
    // ticks and destination records have none).
    let host = stored
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.as_str());
    *request.uri_mut() = gureum_invoke::platform_uri(host, &event.path);
    let headers = request.headers_mut();
    for (name, value) in stored {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&event.id) {
        headers.insert("x-gureum-invocation-id", value);
    }
    headers.insert("x-gureum-attempt", HeaderValue::from(event.attempts));
    if let Ok(value) = HeaderValue::from_str(&event.trigger) {
        headers.insert("x-gureum-trigger", value);
    }
    headers.insert(
        "x-gureum-invocation-type",
        HeaderValue::from_static("event"),
    );
    request
        .extensions_mut()
        .insert(InvocationId(event.id.clone()));
    if runtime == Runtime::Lambda
        && let Some(raw) = &event.raw_event
    {
        request
            .extensions_mut()
            .insert(RawEvent(Bytes::from(raw.clone())));
    }
    request
}

/// The response body, up to [`events::MAX_KEPT_RESPONSE`] bytes (the rest is read and
/// dropped, so the invocation's accounting sees the body end).
async fn read_kept(mut body: gureum_invoke::ResponseBody) -> Bytes {
    let mut kept = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            let room = events::MAX_KEPT_RESPONSE.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    kept.freeze()
}
