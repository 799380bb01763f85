//! The sender against a real HTTP/2 server on loopback whose answers the
//! test scripts: `UNAVAILABLE` a number of times, then OK, or a slow answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body as AxumBody;
use tonic::service::Routes;
use tonic_types::StatusExt as _;

use super::*;
use crate::upstream::Upstreams;
use crate::upstream::tests::{nobody_listening, serving};

const SERVICE: &str = "claimguardian.test.v1.TestService";
const METHOD: &str = "/claimguardian.test.v1.TestService/Get";

/// What the scripted service does with each call.
#[derive(Clone)]
struct Script {
    calls: Arc<AtomicUsize>,
    unavailable_first: usize,
    delay: Duration,
}

fn grpc_response(status: &str) -> http::Response<AxumBody> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", status)
        .body(AxumBody::empty())
        .expect("response")
}

async fn scripted_service(script: Script) -> Upstreams {
    let router = axum::Router::new().fallback(move |_: http::Request<AxumBody>| {
        let script = script.clone();
        async move {
            let call = script.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(script.delay).await;
            grpc_response(if call < script.unavailable_first {
                "14"
            } else {
                "0"
            })
        }
    });
    serving(SERVICE, Routes::from(router)).await
}

fn script(unavailable_first: usize) -> Script {
    Script {
        calls: Arc::new(AtomicUsize::new(0)),
        unavailable_first,
        delay: Duration::ZERO,
    }
}

fn request(body: &'static [u8]) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!("http://gateway{METHOD}"))
        .header("content-type", "application/grpc")
        .body(Body::new(Full::new(Bytes::from_static(body))))
        .expect("request")
}

fn grpc_status(response: &Response<Body>) -> &str {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

const SECOND: Duration = Duration::from_secs(1);

/// One call through a fresh scripted service; the answer and how many
/// attempts the service saw.
async fn send_once(
    script: Script,
    sender: &Sender,
    idempotent: bool,
    body: &'static [u8],
    timeout: Duration,
) -> (Result<Response<Body>, Status>, usize) {
    let upstreams = scripted_service(script.clone()).await;
    let upstream = upstreams.get(SERVICE).expect("added");
    let outcome = sender
        .send(upstream, idempotent, request(body), timeout)
        .await;
    (outcome, script.calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn an_idempotent_call_is_tried_once_more_when_the_service_is_unavailable() {
    let (outcome, calls) = send_once(script(1), &Sender::new(1024), true, b"x", SECOND).await;
    assert_eq!(grpc_status(&outcome.expect("answered")), "0");
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn an_idempotent_call_is_retried_once_only() {
    let (outcome, calls) = send_once(script(5), &Sender::new(1024), true, b"x", SECOND).await;
    let response = outcome.expect("answered");
    assert_eq!(grpc_status(&response), "14", "the service's answer stands");
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn a_call_that_is_not_idempotent_is_never_retried() {
    let (outcome, calls) = send_once(script(1), &Sender::new(1024), false, b"x", SECOND).await;
    assert_eq!(grpc_status(&outcome.expect("answered")), "14");
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let script = script(usize::MAX);
    let upstreams = scripted_service(script.clone()).await;
    let upstream = upstreams.get(SERVICE).expect("added");
    // Two retries a second and none earned by traffic.
    let sender = Sender::with_budget(1024, TpsBudget::new(SECOND, 2, 0.0));
    for _ in 0..10 {
        sender
            .send(upstream, true, request(b"x"), SECOND)
            .await
            .expect("answered");
    }
    let calls = script.calls.load(Ordering::SeqCst);
    assert!(
        (10..=13).contains(&calls),
        "ten calls and only the budgeted retries: {calls}"
    );
}

#[tokio::test]
async fn a_request_over_the_limit_is_refused_before_the_service_sees_it() {
    let (outcome, calls) = send_once(script(0), &Sender::new(4), true, b"too large", SECOND).await;
    let refused = outcome.expect_err("over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let details = refused.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason::REQUEST_TOO_LARGE);
    assert_eq!(
        info.metadata.get("max_bytes").map(String::as_str),
        Some("4")
    );
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn a_service_slower_than_the_deadline_gives_deadline_exceeded_without_a_retry() {
    let script = Script {
        delay: Duration::from_millis(500),
        ..script(0)
    };
    let started = Instant::now();
    let (outcome, calls) = send_once(
        script,
        &Sender::new(1024),
        true,
        b"x",
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(
        outcome.expect_err("too slow").code(),
        Code::DeadlineExceeded
    );
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_service_that_is_not_listening_is_unavailable() {
    let upstreams = nobody_listening(SERVICE);
    let refused = Sender::new(1024)
        .send(
            upstreams.get(SERVICE).expect("added"),
            true,
            request(b"x"),
            SECOND,
        )
        .await
        .expect_err("nobody listens");
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(
        refused
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone()),
        Some(reason::UPSTREAM_UNAVAILABLE.to_owned())
    );
}
