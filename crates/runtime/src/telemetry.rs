//! Logs, traces and metrics for every server.
//!
//! * Logs: human-readable, filtered by `CG_LOG` (or `RUST_LOG`), `info` by default.
//! * Traces: every call's span is an OpenTelemetry span, so it has a trace
//!   id even when nothing collects traces; spans leave the process over
//!   OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, sampled as
//!   `OTEL_TRACES_SAMPLER` says (by default every trace the caller did not
//!   decline).
//! * Metrics: OpenTelemetry instruments, always readable in Prometheus text
//!   ([`Telemetry::prometheus_text`], served by [`crate::serve_metrics`]),
//!   and pushed over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set, every
//!   `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (60 s by default).

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use prometheus::{Encoder as _, TextEncoder};
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Name of the instrumentation scope of our tracer.
const TRACER_NAME: &str = "claimguardian";

/// The process's tracer and meter providers and the Prometheus registry
/// its metrics are read from. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Providers configured from the standard `OTEL_*` environment, named
    /// `service_name` unless `OTEL_SERVICE_NAME` names the service. Call it
    /// inside a Tokio runtime: the OTLP exporter's channel needs one.
    pub fn from_env(service_name: &str) -> anyhow::Result<Telemetry> {
        let resource = resource(service_name);
        let mut traces = SdkTracerProvider::builder().with_resource(resource.clone());
        if otlp_configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .context("configure the OTLP span exporter")?;
            traces = traces.with_batch_exporter(exporter);
        }
        let mut metrics = SdkMeterProvider::builder().with_resource(resource);
        if otlp_configured("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .context("configure the OTLP metric exporter")?;
            metrics = metrics.with_periodic_exporter(exporter);
        }
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
            .context("configure the Prometheus exporter")?;
        Ok(Telemetry {
            tracer_provider: traces.build(),
            meter_provider: metrics.with_reader(prometheus).build(),
            registry,
        })
    }

    /// Like [`Telemetry::from_env`], with finished spans also handed to
    /// `exporter` as they end (tests read them back).
    pub fn with_span_exporter(
        service_name: &str,
        exporter: impl SpanExporter + 'static,
    ) -> anyhow::Result<Telemetry> {
        let mut telemetry = Telemetry::from_env(service_name)?;
        telemetry.tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource(service_name))
            .with_simple_exporter(exporter)
            .build();
        Ok(telemetry)
    }

    /// Makes these providers the process's: the global meter provider
    /// (instruments are created from it) and a global tracing subscriber
    /// that logs and traces. A subscriber installed earlier stays; then
    /// calls have no trace ids.
    pub fn install(&self) {
        opentelemetry::global::set_meter_provider(self.meter_provider.clone());
        let filter = std::env::var("CG_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .unwrap_or_else(|_| "info".to_owned());
        let logs = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_filter(EnvFilter::new(filter));
        let _ = Registry::default()
            .with(logs)
            .with(self.trace_layer())
            .try_init();
    }

    /// The layer that turns tracing spans into OpenTelemetry spans. It
    /// takes spans at `info` and above and only warnings and errors as span
    /// events, whatever the log filter says, so trace context propagates
    /// even when logs are quiet, and chatty events cost no allocations.
    pub fn trace_layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer_provider.tracer(TRACER_NAME))
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            // Nothing reads OpenTelemetry's current context: the trace is
            // handed on explicitly (`trace_context`), so entering a span
            // (every poll of a call) need not attach it.
            .with_context_activation(false)
            .with_filter(filter_fn(|metadata| {
                let floor = if metadata.is_span() {
                    Level::INFO
                } else {
                    Level::WARN
                };
                *metadata.level() <= floor
            }))
    }

    /// Every metric in Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::warn!(%error, "encode metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }

    /// Exports what is still buffered and stops the exporters.
    pub fn shutdown(&self) {
        if let Err(error) = self.tracer_provider.shutdown() {
            tracing::debug!(%error, "stop the tracer provider");
        }
        if let Err(error) = self.meter_provider.shutdown() {
            tracing::debug!(%error, "stop the meter provider");
        }
    }
}

fn resource(service_name: &str) -> Resource {
    let builder = Resource::builder();
    if env_set("OTEL_SERVICE_NAME") {
        builder.build()
    } else {
        builder.with_service_name(service_name.to_owned()).build()
    }
}

/// Whether OTLP export is configured for a signal, by its own endpoint
/// variable or the shared `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn otlp_configured(signal_endpoint: &str) -> bool {
    env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set(signal_endpoint)
}

/// An empty variable (as compose files pass them) means unset.
fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}
