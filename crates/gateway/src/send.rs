//! Sends a call to its service within the caller's deadline. The request
//! body is bounded and read whole first (every request is one message), so
//! a method marked idempotent can be tried once more — within a retry
//! budget — when the first attempt got no answer or the service answered
//! `UNAVAILABLE`. Nothing else is retried: a mutation might have happened.

use std::time::Duration;

use bytes::Bytes;
use cg_status::{reason, with_reason};
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::ServiceExt as _;
use tower::retry::budget::{Budget as _, TpsBudget};

use crate::deadline;
use crate::upstream::Upstream;

/// How a single attempt failed.
enum Failure {
    /// No answer: the connection failed or broke.
    Transport,
    /// The deadline passed first.
    Deadline,
}

/// Sends forwarded calls; one per gateway, so the retry budget is shared.
#[derive(Debug)]
pub struct Sender {
    budget: TpsBudget,
    max_request_bytes: usize,
}

impl Sender {
    /// Retries may add at most a tenth to the calls sent, plus a few each
    /// second so a quiet gateway can still retry; when a service is failing
    /// the budget runs dry instead of doubling its load.
    pub fn new(max_request_bytes: usize) -> Sender {
        Self::with_budget(
            max_request_bytes,
            TpsBudget::new(Duration::from_secs(10), 5, 0.1),
        )
    }

    pub fn with_budget(max_request_bytes: usize, budget: TpsBudget) -> Sender {
        Sender {
            budget,
            max_request_bytes,
        }
    }

    /// The service's response, or the status the caller gets instead.
    pub async fn send(
        &self,
        upstream: &Upstream,
        idempotent: bool,
        request: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Body>, Status> {
        let deadline = Instant::now() + timeout;
        let (parts, body) = request.into_parts();
        let body = self.read_body(&parts, body, deadline).await?;
        self.budget.deposit();
        let retry = idempotent.then(|| (parts.clone(), body.clone()));
        let mut outcome = attempt(upstream, parts, body, deadline).await;
        if let Some((parts, body)) = retry
            && worth_retrying(&outcome)
            && Instant::now() < deadline
            && self.budget.withdraw()
        {
            tracing::debug!("retrying an idempotent call");
            outcome = attempt(upstream, parts, body, deadline).await;
        }
        match outcome {
            Ok(response) => Ok(response),
            Err(Failure::Transport) => Err(upstream.unavailable()),
            Err(Failure::Deadline) => Err(Status::deadline_exceeded(
                "deadline exceeded before the service answered",
            )),
        }
    }

    async fn read_body(
        &self,
        parts: &Parts,
        body: Body,
        deadline: Instant,
    ) -> Result<Bytes, Status> {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|length| length > self.max_request_bytes) {
            return Err(self.too_large());
        }
        let limited = Limited::new(body, self.max_request_bytes);
        match tokio::time::timeout_at(deadline, limited.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                Err(self.too_large())
            }
            Ok(Err(_)) => Err(Status::cancelled("the request was not received in full")),
            Err(_) => Err(Status::deadline_exceeded(
                "deadline exceeded while receiving the request",
            )),
        }
    }

    fn too_large(&self) -> Status {
        let limit = self.max_request_bytes.to_string();
        with_reason(
            Code::ResourceExhausted,
            format!("the request is larger than {limit} bytes"),
            reason::REQUEST_TOO_LARGE,
            &[("max_bytes", limit.as_str())],
        )
    }
}

/// One try, with what is left of the deadline in `grpc-timeout`.
async fn attempt(
    upstream: &Upstream,
    mut parts: Parts,
    body: Bytes,
    deadline: Instant,
) -> Result<Response<Body>, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if let Ok(value) = HeaderValue::from_str(&deadline::encode(left)) {
        parts.headers.insert(deadline::GRPC_TIMEOUT, value);
    }
    let request = Request::from_parts(parts, Body::new(Full::new(body)));
    match tokio::time::timeout_at(deadline, upstream.channel().oneshot(request)).await {
        Ok(Ok(response)) => Ok(response),
        // The channel enforces `grpc-timeout` itself, a hair before our own timer.
        Ok(Err(error)) if is_timeout(&error) => Err(Failure::Deadline),
        Ok(Err(error)) => {
            tracing::warn!(%error, "upstream call failed");
            Err(Failure::Transport)
        }
        Err(_) => Err(Failure::Deadline),
    }
}

fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// No answer at all, or a service saying it cannot serve right now (a
/// trailers-only `UNAVAILABLE`).
fn worth_retrying(outcome: &Result<Response<Body>, Failure>) -> bool {
    match outcome {
        Ok(response) => response
            .headers()
            .get("grpc-status")
            .is_some_and(|status| status.as_bytes() == b"14"),
        Err(Failure::Transport) => true,
        Err(Failure::Deadline) => false,
    }
}

#[cfg(test)]
mod tests;
