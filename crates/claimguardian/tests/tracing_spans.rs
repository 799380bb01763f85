//! Every server opens one span per call carrying the organization, the
//! request id and the trace id; the request id the gateway assigns is the
//! one the service sees, and the W3C trace continues from the client
//! through the gateway into the service.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_runtime::Telemetry;
use cg_testkit::TestStack;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

type Spans = Arc<Mutex<BTreeMap<u64, BTreeMap<String, String>>>>;

/// Keeps the fields of every `grpc` span.
struct Recorder(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "grpc" {
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.0.lock().expect("lock").insert(id.into_u64(), fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.0.lock().expect("lock").get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

/// What this test binary's one subscriber saw: the fields of every `grpc`
/// span, and the OpenTelemetry spans as they ended.
struct Seen {
    fields: Spans,
    exported: InMemorySpanExporter,
}

/// Installs the subscriber once: the recorder beside the platform's own
/// OpenTelemetry layer.
fn seen() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(|| {
        let fields: Spans = Arc::default();
        let exported = InMemorySpanExporter::default();
        let telemetry = Telemetry::with_span_exporter("tracing-spans-test", exported.clone())
            .expect("telemetry");
        let subscriber = tracing_subscriber::registry()
            .with(Recorder(fields.clone()))
            .with(telemetry.trace_layer());
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this test binary");
        Seen { fields, exported }
    })
}

/// The recorded fields of the `grpc` spans of one request.
fn spans_of(request_id: &str) -> Vec<BTreeMap<String, String>> {
    seen()
        .fields
        .lock()
        .expect("lock")
        .values()
        .filter(|fields| fields.get("request_id").map(String::as_str) == Some(request_id))
        .cloned()
        .collect()
}

/// The finished OpenTelemetry span of `server` for one request; waits for
/// it, since a span ends when its server is done, not when the client is.
async fn exported_span(server: &str, request_id: &str) -> SpanData {
    let has = |span: &SpanData, key: &str, wanted: &str| {
        span.attributes
            .iter()
            .any(|kv| kv.key.as_str() == key && kv.value == Value::from(wanted.to_owned()))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let finished = seen()
            .exported
            .get_finished_spans()
            .expect("finished spans");
        if let Some(span) = finished
            .into_iter()
            .find(|span| has(span, "server", server) && has(span, "request_id", request_id))
        {
            return span;
        }
        assert!(
            Instant::now() < deadline,
            "no finished {server} span for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stack_with_organization(code: &str) -> TestStack {
    let stack = TestStack::spawn().await;
    stack.create_standard_organization(code).await;
    stack
}

/// Lists properties in `code`, with `traceparent` when given; returns the
/// request id the gateway assigned.
async fn list_properties(stack: &TestStack, code: &str, traceparent: Option<&str>) -> String {
    let mut request = stack.in_tenant(code, claims::ListPropertiesRequest::default());
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse().expect("ascii"));
    }
    let response = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(request)
        .await
        .expect("list");
    response
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the gateway returns the request id")
        .to_owned()
}

/// The `trace_id` field of the span of `server` among `spans`.
fn trace_id_field<'a>(spans: &'a [BTreeMap<String, String>], server: &str) -> &'a str {
    spans
        .iter()
        .find(|fields| fields.get("server").map(String::as_str) == Some(server))
        .and_then(|fields| fields.get("trace_id"))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {server} span with a trace id among {spans:?}"))
}

#[tokio::test]
async fn each_call_has_a_span_with_organization_and_request_id_on_both_sides() {
    seen();
    let stack = stack_with_organization("traced").await;
    let request_id = list_properties(&stack, "traced", None).await;

    let of_request = spans_of(&request_id);
    let servers: Vec<&str> = of_request
        .iter()
        .filter_map(|f| f.get("server").map(String::as_str))
        .collect();
    assert!(
        servers.contains(&"gateway") && servers.contains(&"claims"),
        "spans of {request_id}: {of_request:?}"
    );
    for fields in &of_request {
        assert_eq!(
            fields.get("org").map(String::as_str),
            Some("traced"),
            "{fields:?}"
        );
        assert_eq!(
            fields.get("method").map(String::as_str),
            Some("/claimguardian.claims.v1.ClaimsService/ListProperties")
        );
    }
}

#[tokio::test]
async fn a_clients_trace_continues_through_the_gateway_into_the_service() {
    seen();
    let stack = stack_with_organization("traced-client").await;
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let request_id = list_properties(
        &stack,
        "traced-client",
        Some(&format!("00-{client_trace}-{client_span}-01")),
    )
    .await;

    // Same trace id in the gateway's and the service's spans: the client's.
    let of_request = spans_of(&request_id);
    assert_eq!(trace_id_field(&of_request, "gateway"), client_trace);
    assert_eq!(trace_id_field(&of_request, "claims"), client_trace);

    // The gateway's span is the child of the client's, the service's the
    // child of the gateway's (the gateway replaced the client's traceparent).
    let gateway = exported_span("gateway", &request_id).await;
    let service = exported_span("claims", &request_id).await;
    let client_trace = TraceId::from_hex(client_trace).expect("hex");
    assert_eq!(gateway.span_context.trace_id(), client_trace);
    assert_eq!(service.span_context.trace_id(), client_trace);
    assert_eq!(
        gateway.parent_span_id,
        SpanId::from_hex(client_span).expect("hex")
    );
    assert_eq!(service.parent_span_id, gateway.span_context.span_id());
}

#[tokio::test]
async fn without_a_traceparent_the_gateway_starts_a_trace_that_the_service_joins() {
    seen();
    let stack = stack_with_organization("traced-new").await;
    let first = list_properties(&stack, "traced-new", None).await;
    let second = list_properties(&stack, "traced-new", None).await;

    let first_spans = spans_of(&first);
    let trace_id = trace_id_field(&first_spans, "gateway");
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_eq!(trace_id_field(&first_spans, "claims"), trace_id);
    // Each call without a traceparent is a trace of its own.
    assert_ne!(trace_id_field(&spans_of(&second), "gateway"), trace_id);

    let gateway = exported_span("gateway", &first).await;
    let service = exported_span("claims", &first).await;
    assert_eq!(
        gateway.parent_span_id,
        SpanId::INVALID,
        "the gateway's span is a root"
    );
    assert_eq!(service.parent_span_id, gateway.span_context.span_id());
    assert_eq!(
        service.span_context.trace_id(),
        gateway.span_context.trace_id()
    );
}
