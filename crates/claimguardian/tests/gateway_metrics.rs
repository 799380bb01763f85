//! The gateway counts every call per organization and method — requests,
//! latency, errors by gRPC code — and operators read them as Prometheus
//! text from the metrics endpoint.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_runtime::Telemetry;
use cg_testkit::{TestStack, with_bearer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tonic::{Code, Request};

const LIST_PROPERTIES: &str = "/claimguardian.claims.v1.ClaimsService/ListProperties";
const GET_ORGANIZATION: &str = "/claimguardian.tenancy.v1.TenancyService/GetOrganization";
const REQUESTS: &str = "claimguardian_gateway_requests_total";
const ERRORS: &str = "claimguardian_gateway_errors_total";
const LATENCY_COUNT: &str = "claimguardian_gateway_request_duration_seconds_count";

/// `GET /metrics` over plain HTTP/1.0, as a scraper does; the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect to metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// Every sample of `metric` as (labels, value).
fn samples(text: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name_and_labels, value) = line.rsplit_once(' ')?;
            let (name, labels) = match name_and_labels.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (name_and_labels, ""),
            };
            (name == metric).then_some(())?;
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

/// The value of `metric` for exactly these labels, if that series exists.
fn value(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, metric)
        .into_iter()
        .find(|(found, _)| {
            found.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| found.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, value)| value)
}

/// Whether any series of `metric` has all of these labels.
fn any_series(text: &str, metric: &str, labels: &[(&str, &str)]) -> bool {
    samples(text, metric).iter().any(|(found, _)| {
        labels
            .iter()
            .all(|(k, v)| found.get(*k).map(String::as_str) == Some(*v))
    })
}

#[tokio::test]
async fn calls_are_counted_per_organization_and_method_with_errors_by_code() {
    // The meter provider must be the process's before the gateway exists.
    let telemetry = Telemetry::from_env("gateway-metrics-test").expect("telemetry");
    telemetry.install();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = listener.local_addr().expect("addr");
    tokio::spawn(cg_runtime::serve_metrics(
        listener,
        telemetry.clone(),
        std::future::pending(),
    ));
    let stack = TestStack::spawn().await;
    stack.create_standard_organization("metered").await;
    stack.create_standard_organization("quiet").await;
    let mut client = ClaimsServiceClient::new(stack.gateway().await);

    // Arrange/Act: 4 good and 2 bad listings in `metered`, a look at its
    // organization in `quiet`, and one unauthenticated listing naming `metered`.
    for _ in 0..4 {
        client
            .list_properties(stack.in_tenant("metered", claims::ListPropertiesRequest::default()))
            .await
            .expect("list");
    }
    for _ in 0..2 {
        let bad_page = claims::ListPropertiesRequest {
            page_token: "not a page token".to_owned(),
            ..Default::default()
        };
        let status = client
            .list_properties(stack.in_tenant("metered", bad_page))
            .await
            .expect_err("a malformed page token is refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    TenancyServiceClient::new(stack.gateway().await)
        .get_organization(stack.in_tenant("quiet", tenancy::GetOrganizationRequest {}))
        .await
        .expect("get organization");
    let mut stranger = with_bearer(
        Request::new(claims::ListPropertiesRequest::default()),
        "cgo_notakey_notasecret",
    );
    stranger
        .metadata_mut()
        .insert("x-tenant", "metered".parse().expect("ascii"));
    let status = client
        .list_properties(stranger)
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A call is recorded when its response has been sent: wait for the last.
    let metered = [("organization", "metered"), ("rpc_method", LIST_PROPERTIES)];
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = scrape(metrics_addr).await;
        if value(&text, REQUESTS, &metered) == Some(6.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Assert: exact counts for (metered, ListProperties)…
    assert_eq!(value(&text, REQUESTS, &metered), Some(6.0), "{text}");
    assert_eq!(value(&text, LATENCY_COUNT, &metered), Some(6.0), "{text}");
    assert_eq!(
        value(
            &text,
            ERRORS,
            &[
                ("organization", "metered"),
                ("rpc_method", LIST_PROPERTIES),
                ("rpc_grpc_status_code", "3"),
            ],
        ),
        Some(2.0),
        "{text}"
    );
    // …the refused stranger counts under no organization, not `metered`'s…
    assert!(
        !any_series(
            &text,
            ERRORS,
            &[("organization", "metered"), ("rpc_grpc_status_code", "16")]
        ),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            ERRORS,
            &[
                ("organization", ""),
                ("rpc_method", LIST_PROPERTIES),
                ("rpc_grpc_status_code", "16"),
            ],
        ),
        Some(1.0),
        "{text}"
    );
    // …and each organization has only its own methods.
    assert_eq!(
        value(
            &text,
            REQUESTS,
            &[("organization", "quiet"), ("rpc_method", GET_ORGANIZATION)]
        ),
        Some(1.0),
        "{text}"
    );
    for metric in [REQUESTS, ERRORS, LATENCY_COUNT] {
        assert!(
            !any_series(
                &text,
                metric,
                &[("organization", "quiet"), ("rpc_method", LIST_PROPERTIES)]
            ),
            "{metric}: {text}"
        );
        assert!(
            !any_series(
                &text,
                metric,
                &[
                    ("organization", "metered"),
                    ("rpc_method", GET_ORGANIZATION)
                ]
            ),
            "{metric}: {text}"
        );
    }
    assert!(
        !any_series(&text, ERRORS, &[("organization", "quiet")]),
        "{text}"
    );
}
