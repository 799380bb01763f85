use std::time::Instant;

use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use super::*;

const SERVICE: &str = "claimguardian.test.v1.TestService";

async fn health_becomes(upstream: &Upstream, expected: Health) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.health() != expected {
        assert!(
            Instant::now() < deadline,
            "health stayed {:?}, expected {expected:?}",
            upstream.health()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_service_that_reports_not_serving_is_down_until_it_serves_again() {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let upstreams = serving(SERVICE, Routes::new(health_service)).await;
    let upstream = upstreams.get(SERVICE).expect("added").clone();
    assert_eq!(upstream.health(), Health::Unknown, "unknown until watched");
    let mut watchers = BackgroundTasks::default();
    upstreams.watch_health(&mut watchers);
    health_becomes(&upstream, Health::Serving).await;

    reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    health_becomes(&upstream, Health::Down).await;
    let refusal = upstream.unavailable();
    assert_eq!(refusal.code(), Code::Unavailable);
    let details = refusal.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason::UPSTREAM_UNAVAILABLE);
    assert_eq!(
        info.metadata.get("service").map(String::as_str),
        Some(SERVICE)
    );
    assert_eq!(
        details.retry_info().and_then(|r| r.retry_delay),
        Some(MAX_WATCH_BACKOFF)
    );

    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    health_becomes(&upstream, Health::Serving).await;
}

/// Upstreams with `service` served by `routes` on a loopback port.
pub async fn serving(service: &str, routes: Routes) -> Upstreams {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut upstreams = Upstreams::default();
    upstreams
        .add(service, &format!("http://{addr}"))
        .expect("address");
    upstreams
}

/// Upstreams with `service` at a loopback port nobody listens on.
pub fn nobody_listening(service: &str) -> Upstreams {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut upstreams = Upstreams::default();
    upstreams
        .add(service, &format!("http://{addr}"))
        .expect("address");
    upstreams
}

#[tokio::test]
async fn a_service_that_is_not_listening_is_down() {
    let upstreams = nobody_listening(SERVICE);
    let mut watchers = BackgroundTasks::default();
    upstreams.watch_health(&mut watchers);
    health_becomes(upstreams.get(SERVICE).expect("added"), Health::Down).await;
}
