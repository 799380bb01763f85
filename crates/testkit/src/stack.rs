//! The whole platform, every service and the gateway, on loopback port 0
//! over a database of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use cg_audit::checkpoint::CheckpointSigner;
use cg_context::MeshKey;
use cg_db::ControlPool;
use cg_gateway::GatewayConfig;
use cg_identity::{IdentityConfig, SecretBox};
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use claimguardian::platform::{self, Listen, RunningPlatform, ServiceDeps, ServiceKind};
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::{TestDatabase, test_database};

/// A running platform for one test.
#[derive(Debug)]
pub struct TestStack {
    pub database: TestDatabase,
    pub platform: RunningPlatform,
    /// A live operator key.
    pub operator_key: String,
    /// Its id, as recorded for the operator in the audit trail.
    pub operator_key_id: cg_context::ApiKeyId,
    /// The mesh key, so a test can mint context tokens of its own.
    pub mesh_key: Arc<MeshKey>,
    /// Control-plane pool (superuser), for assertions on stored state.
    pub control: ControlPool,
    /// The audit checkpoint key of this stack.
    pub audit_signer: Arc<CheckpointSigner>,
}

impl TestStack {
    pub async fn spawn() -> TestStack {
        Self::spawn_with_identity(IdentityConfig::default()).await
    }

    /// A stack whose identity service runs with `identity` (mail delivery, say).
    pub async fn spawn_with_identity(identity: IdentityConfig) -> TestStack {
        Self::spawn_with(identity, GatewayConfig::default()).await
    }

    /// A stack with its own identity and gateway settings.
    pub async fn spawn_with(identity: IdentityConfig, gateway: GatewayConfig) -> TestStack {
        Self::try_spawn(identity, gateway)
            .await
            .unwrap_or_else(|error| panic!("spawn the test stack: {error:#}"))
    }

    async fn try_spawn(
        identity: IdentityConfig,
        gateway: GatewayConfig,
    ) -> anyhow::Result<TestStack> {
        let database = test_database().await;
        let mesh_key = Arc::new(MeshKey::generate());
        let audit_signer = Arc::new(CheckpointSigner::generate());
        let mut deps = ServiceDeps::connect(
            &database.url,
            mesh_key.clone(),
            audit_signer.clone(),
            SecretBox::generate(),
        )
        .await?;
        deps.identity = identity;
        let control = deps.control.clone();
        let issued = cg_identity::operator_keys::create(&control, "test operator").await?;
        let (operator_key, operator_key_id) = (issued.secret_key, issued.id);
        let listen = Listen {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            gateway_port: 0,
            service_ports: Some(0),
        };
        let platform = platform::start(deps, &listen, gateway).await?;
        Ok(TestStack {
            database,
            platform,
            operator_key,
            operator_key_id,
            mesh_key,
            control,
            audit_signer,
        })
    }

    pub fn gateway_addr(&self) -> SocketAddr {
        self.platform.gateway
    }

    pub fn service_addr(&self, kind: ServiceKind) -> SocketAddr {
        self.platform.services[&kind]
    }

    /// A channel to the gateway.
    pub async fn gateway(&self) -> Channel {
        connect(self.gateway_addr()).await
    }

    /// A channel straight to one service, bypassing the gateway.
    pub async fn service(&self, kind: ServiceKind) -> Channel {
        connect(self.service_addr(kind)).await
    }

    /// A request carrying the operator key, outside any organization.
    pub fn as_operator<T>(&self, message: T) -> Request<T> {
        with_bearer(Request::new(message), &self.operator_key)
    }

    /// Creates a Standard organization in Florida through the gateway, as
    /// the operator.
    pub async fn create_standard_organization(&self, code: &str) -> tenancy::Organization {
        TenancyServiceClient::new(self.gateway().await)
            .create_organization(self.as_operator(tenancy::CreateOrganizationRequest {
                code: code.to_owned(),
                display_name: code.to_owned(),
                primary_contact_email: format!("ops@{code}.example"),
                tier: "standard".to_owned(),
                allowed_states: vec!["FL".to_owned()],
                primary_state: "FL".to_owned(),
                ..Default::default()
            }))
            .await
            .unwrap_or_else(|status| panic!("create organization {code}: {status:?}"))
            .into_inner()
            .organization
            .expect("the created organization is returned")
    }

    /// A request carrying the operator key, acting within organization `code`.
    pub fn in_tenant<T>(&self, code: &str, message: T) -> Request<T> {
        let mut request = self.as_operator(message);
        request.metadata_mut().insert("x-tenant", ascii(code));
        request
    }
}

/// Adds `authorization: Bearer <credential>`.
pub fn with_bearer<T>(mut request: Request<T>, credential: &str) -> Request<T> {
    request
        .metadata_mut()
        .insert("authorization", ascii(&format!("Bearer {credential}")));
    request
}

fn ascii(value: &str) -> MetadataValue<tonic::metadata::Ascii> {
    value
        .parse()
        .unwrap_or_else(|_| panic!("metadata value {value:?} is not ASCII"))
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid URI")
        .connect()
        .await
        .unwrap_or_else(|error| panic!("connect to {addr}: {error}"))
}
