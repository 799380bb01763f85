//! Every server opens one span per call carrying the organization and the
//! request id, and the request id the gateway assigns is the one the
//! service sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
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

#[tokio::test]
async fn each_call_has_a_span_with_organization_and_request_id_on_both_sides() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Recorder(spans.clone()));
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");

    let stack = TestStack::spawn().await;
    TenancyServiceClient::new(stack.gateway().await)
        .create_organization(stack.as_operator(tenancy::CreateOrganizationRequest {
            code: "traced".to_owned(),
            display_name: "Traced".to_owned(),
            primary_contact_email: "ops@traced.example".to_owned(),
            tier: "standard".to_owned(),
            allowed_states: vec!["FL".to_owned()],
            primary_state: "FL".to_owned(),
            ..Default::default()
        }))
        .await
        .expect("create");
    let response = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(stack.in_tenant("traced", claims::ListPropertiesRequest::default()))
        .await
        .expect("list");
    let request_id = response
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the gateway returns the request id")
        .to_owned();

    let spans = spans.lock().expect("lock");
    let of_request: Vec<&BTreeMap<String, String>> = spans
        .values()
        .filter(|fields| fields.get("request_id") == Some(&request_id))
        .collect();
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
