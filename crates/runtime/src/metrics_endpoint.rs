//! `GET /metrics`: the process's metrics in Prometheus text format, for
//! operators and scrapers that do not speak OTLP.

use std::future::Future;

use anyhow::Context as _;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Telemetry;

/// The content type of the text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("metrics address")?;
    let router = axum::Router::new().route(
        "/metrics",
        get(move || {
            let telemetry = telemetry.clone();
            async move {
                (
                    [(CONTENT_TYPE, PROMETHEUS_TEXT)],
                    telemetry.prometheus_text(),
                )
            }
        }),
    );
    tracing::info!(%addr, "serving metrics at /metrics");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .with_context(|| format!("serve metrics on {addr}"))
}
