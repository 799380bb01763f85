//! W3C trace context across the mesh: every server continues the caller's
//! trace from its `traceparent`, and the gateway hands its own span on to
//! the service it forwards to, so one trace id covers client, gateway and
//! service. The propagator is OpenTelemetry's; nothing here parses headers.

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `span` the child of the caller's span named by `traceparent`, or
/// the root of a new trace when the header is missing or malformed, and
/// records the trace id in the span's `trace_id` field.
///
/// Without the OpenTelemetry layer (see [`crate::Telemetry`]) there is no
/// trace to join: the span still logs, without a trace id.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if span.is_disabled() {
        return;
    }
    // An empty base context: the call's trace never comes from whatever
    // happens to be current on this thread.
    let parent = TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &HeaderExtractor(headers));
    if span.set_parent(parent).is_err() {
        return;
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Writes `span`'s trace context into `headers` (`traceparent`,
/// `tracestate`), replacing the caller's, so that the next hop's span is a
/// child of `span` in the same trace.
pub fn hand_on(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// The call's trace id, as 32 lowercase hex digits: `span`'s, or, where no
/// OpenTelemetry layer is installed, the one `headers` carry; `None` when
/// neither has one.
pub fn trace_id(span: &tracing::Span, headers: &http::HeaderMap) -> Option<String> {
    let own = span.context().span().span_context().trace_id();
    let trace_id = if own != opentelemetry::trace::TraceId::INVALID {
        own
    } else {
        TraceContextPropagator::new()
            .extract_with_context(&opentelemetry::Context::new(), &HeaderExtractor(headers))
            .span()
            .span_context()
            .trace_id()
    };
    (trace_id != opentelemetry::trace::TraceId::INVALID).then(|| trace_id.to_string())
}
