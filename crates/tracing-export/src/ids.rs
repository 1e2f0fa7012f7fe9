//! Trace ids on the wire: W3C `traceparent` in and out, the AWS X-Ray header form, and an
//! id generator whose trace ids are also valid X-Ray root ids.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

/// The two W3C trace-context headers of one request, as an OpenTelemetry [`Extractor`].
struct TraceHeaders<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = vec!["traceparent"];
        if self.tracestate.is_some() {
            keys.push("tracestate");
        }
        keys
    }
}

/// Whether `traceparent` has the W3C field layout `VV-{32 hex}-{16 hex}-FF`, lowercase, with a
/// version other than `ff`, and exactly four fields for version `00`. The SDK's propagator
/// checks the values but accepts short fields ("0-…", a 30-digit trace id), so the layout
/// is checked here first.
fn has_w3c_layout(traceparent: &str) -> bool {
    fn lower_hex(field: &str, len: usize) -> bool {
        field.len() == len
            && field
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
    let mut fields = traceparent.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    if !(lower_hex(version, 2)
        && lower_hex(trace_id, 32)
        && lower_hex(parent_id, 16)
        && lower_hex(flags, 2))
    {
        return false;
    }
    match version {
        "ff" => false,
        // Version 00 is exactly 55 characters; later versions may append fields.
        "00" => fields.next().is_none(),
        _ => true,
    }
}

/// Parses an incoming `traceparent` (and `tracestate`) into a remote span context, through
/// the SDK's W3C [`TraceContextPropagator`]. `None` when the header is not a valid W3C
/// traceparent (bad layout, version `ff`, all-zero trace or parent id).
pub(crate) fn parse_traceparent(
    traceparent: &str,
    tracestate: Option<&str>,
) -> Option<SpanContext> {
    let traceparent = traceparent.trim();
    if !has_w3c_layout(traceparent) {
        return None;
    }
    let headers = TraceHeaders {
        traceparent,
        tracestate,
    };
    let cx = TraceContextPropagator::new().extract(&headers);
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Formats a span context as a version-00 W3C `traceparent`: `00-{trace}-{span}-{flags}`.
pub(crate) fn format_traceparent(span_context: &SpanContext) -> String {
    let flags = span_context.trace_flags() & TraceFlags::SAMPLED;
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        flags.to_u8()
    )
}

/// The AWS X-Ray trace header for a W3C trace: `Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1}`.
/// The first 8 hex digits of the trace id become the X-Ray epoch part, the other 24 its
/// unique part.
pub(crate) fn xray_header(trace_id: TraceId, parent: SpanId, sampled: bool) -> String {
    let trace = trace_id.to_string();
    format!(
        "Root=1-{}-{};Parent={parent};Sampled={}",
        &trace[..8],
        &trace[8..],
        u8::from(sampled)
    )
}

/// Generates span ids at random and trace ids whose first 32 bits are the current Unix time
/// in seconds (the rest random), so that every trace this process starts is also a valid
/// X-Ray trace id for Lambda functions.
#[derive(Debug, Default)]
pub(crate) struct XrayIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for XrayIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let epoch = u128::from(u32::try_from(now).unwrap_or(u32::MAX));
        let random = u128::from_be_bytes(self.random.new_trace_id().to_bytes());
        TraceId::from((epoch << 96) | (random & ((1u128 << 96) - 1)))
    }

    fn new_span_id(&self) -> SpanId {
        loop {
            let id = self.random.new_span_id();
            if id != SpanId::INVALID {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_a_valid_traceparent() {
        let sc = parse_traceparent(VALID, Some("vendor=abc")).expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert!(sc.is_remote());
        assert_eq!(sc.trace_state().header(), "vendor=abc");
        assert_eq!(format_traceparent(&sc), VALID);

        // Surrounding whitespace (HTTP OWS) is tolerated.
        assert!(parse_traceparent(&format!(" {VALID} "), None).is_some());

        let unsampled = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            None,
        )
        .expect("valid");
        assert!(!unsampled.is_sampled());
        assert_eq!(
            format_traceparent(&unsampled),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        // Unknown flag bits are accepted and dropped on the way out.
        let extra_flags = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            None,
        )
        .expect("valid");
        assert_eq!(format_traceparent(&extra_flags), VALID);
        // A future version may carry more fields; the first four are understood.
        assert!(
            parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
                None
            )
            .is_some()
        );
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "garbage",
            // wrong / forbidden version
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // version 00 has exactly four fields
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // bad lengths
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473600-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // uppercase and non-hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ] {
            assert!(parse_traceparent(bad, None).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn converts_a_trace_id_to_xray() {
        let trace_id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        let parent = SpanId::from_hex("53995c3f42cd8ad8").unwrap();
        assert_eq!(
            xray_header(trace_id, parent, true),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        );
        let trace_id = TraceId::from_hex("000000010000000000000000000000ff").unwrap();
        let parent = SpanId::from_hex("0000000000000001").unwrap();
        assert_eq!(
            xray_header(trace_id, parent, false),
            "Root=1-00000001-0000000000000000000000ff;Parent=0000000000000001;Sampled=0"
        );
    }

    #[test]
    fn generated_trace_ids_start_with_the_epoch() {
        let ids = XrayIdGenerator::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let a = ids.new_trace_id();
        let b = ids.new_trace_id();
        assert_ne!(a, b);
        let epoch = u64::from_str_radix(&a.to_string()[..8], 16).unwrap();
        assert!(epoch.abs_diff(now) <= 2, "epoch {epoch} vs now {now}");
        assert_ne!(ids.new_span_id(), SpanId::INVALID);
    }
}
