//! Per-call metrics at the gateway, which sees every external call: per
//! organization and method, a request count, a latency histogram and an
//! error count by gRPC status code (OpenTelemetry instruments; see
//! `docs/architecture.md`, Observability).
//!
//! Attributes are bounded by tenants × methods × codes: the organization is
//! one the directory resolved (empty when none was), and a path that names
//! no method of ours is recorded as `unknown`, so no caller can mint new
//! series.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body as _, Frame};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use tonic::body::Body;
use tonic::{Code, Status};

const ORGANIZATION: &str = "organization";
const METHOD: &str = "rpc.method";
const STATUS_CODE: &str = "rpc.grpc.status_code";
const UNKNOWN_METHOD: &str = "unknown";

/// Latency buckets in seconds: 0.5 ms to 30 s, dense where a hop lives.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The gateway's instruments.
#[derive(Debug)]
pub struct CallMetrics {
    requests: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
}

impl CallMetrics {
    pub fn new(meter: &Meter) -> CallMetrics {
        CallMetrics {
            requests: meter
                .u64_counter("claimguardian.gateway.requests")
                .with_description("Calls through the gateway")
                .with_unit("{request}")
                .build(),
            errors: meter
                .u64_counter("claimguardian.gateway.errors")
                .with_description(
                    "Calls through the gateway that ended with a status other than OK",
                )
                .with_unit("{request}")
                .build(),
            duration: meter
                .f64_histogram("claimguardian.gateway.request.duration")
                .with_description(
                    "Time from a call's arrival at the gateway to the end of its response",
                )
                .with_unit("s")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// One call being measured, from its arrival.
#[derive(Debug)]
pub struct Call {
    metrics: Arc<CallMetrics>,
    started: Instant,
    method: KeyValue,
}

impl Call {
    /// Starts measuring a call to `path`; `known` says whether it names a
    /// method of ours.
    pub fn start(metrics: &Arc<CallMetrics>, path: &str, known: bool) -> Call {
        let method = if known { path } else { UNKNOWN_METHOD };
        Call {
            metrics: metrics.clone(),
            started: Instant::now(),
            method: KeyValue::new(METHOD, method.to_owned()),
        }
    }

    /// Attributes the call to `organization` and records it when its status
    /// is known: at once for a trailers-only answer (every refusal), else
    /// when the response body ends or is dropped.
    pub fn finish(self, organization: Option<&str>, response: Response<Body>) -> Response<Body> {
        let mut outcome = Outcome {
            call: self,
            organization: KeyValue::new(ORGANIZATION, organization.unwrap_or_default().to_owned()),
            code: status_of(response.headers()),
            ended: false,
        };
        if outcome.code.is_some() {
            return response;
        }
        response.map(|body| {
            outcome.ended = body.is_end_stream();
            Body::new(ObservedBody {
                inner: body,
                outcome,
            })
        })
    }
}

fn status_of(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// What is known of a call's end; recorded once, when dropped.
struct Outcome {
    call: Call,
    organization: KeyValue,
    code: Option<Code>,
    /// Whether the response body ended (as opposed to being dropped early).
    ended: bool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let code = match self.code {
            Some(code) => code,
            // A body that ended without trailers broke the protocol; one
            // dropped before its end was cancelled (the client went away).
            None if self.ended => Code::Unknown,
            None => Code::Cancelled,
        };
        let metrics = &self.call.metrics;
        let attributes = [self.organization.clone(), self.call.method.clone()];
        metrics.requests.add(1, &attributes);
        metrics
            .duration
            .record(self.call.started.elapsed().as_secs_f64(), &attributes);
        if code != Code::Ok {
            let [organization, method] = attributes;
            metrics.errors.add(
                1,
                &[
                    organization,
                    method,
                    KeyValue::new(STATUS_CODE, code as i64),
                ],
            );
        }
    }
}

/// A forwarded response body that watches for the trailers carrying the
/// call's status.
struct ObservedBody {
    inner: Body,
    outcome: Outcome,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.outcome.code = status_of(trailers);
                }
            }
            Poll::Ready(Some(Err(status))) => this.outcome.code = Some(status.code()),
            Poll::Ready(None) => this.outcome.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
