//! Assembles every service and the gateway into gRPC servers. `up` runs
//! them all in one process talking real gRPC over loopback; `serve` runs one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use cg_audit::checkpoint::CheckpointSigner;
use cg_audit::store::checkpointer::{self, CheckpointPolicy};
use cg_audit::{AuditGrpc, PgAudit};
use cg_billing::BillingGrpc;
use cg_claims::{ClaimsGrpc, PgClaims};
use cg_context::{ContextInterceptor, MeshKey};
use cg_db::{ControlPool, TenantPool};
use cg_gateway::{Gateway, GatewayConfig, Upstreams};
use cg_identity::outbox::{self, Mailer};
use cg_identity::{IdentityConfig, IdentityGrpc, PgIdentity, SecretBox};
use cg_proto::audit::v1::audit_service_server::AuditServiceServer;
use cg_proto::billing::v1::billing_service_server::BillingServiceServer;
use cg_proto::claims::v1::claims_service_server::ClaimsServiceServer;
use cg_proto::identity::v1::identity_service_server::IdentityServiceServer;
use cg_proto::tenancy::v1::tenancy_service_server::TenancyServiceServer;
use cg_runtime::{GrpcServer, ServerLimits};
use cg_tenancy::{PgTenancy, TenancyGrpc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::server::NamedService;
use tonic::service::Routes;

/// The domain services, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ServiceKind {
    Tenancy,
    Identity,
    Billing,
    Audit,
    Claims,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Tenancy,
        ServiceKind::Identity,
        ServiceKind::Billing,
        ServiceKind::Audit,
        ServiceKind::Claims,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Tenancy => "tenancy",
            ServiceKind::Identity => "identity",
            ServiceKind::Billing => "billing",
            ServiceKind::Audit => "audit",
            ServiceKind::Claims => "claims",
        }
    }

    /// The fully qualified gRPC service name.
    pub fn grpc_name(self) -> &'static str {
        match self {
            ServiceKind::Tenancy => {
                <TenancyServiceServer<TenancyGrpc<PgTenancy>> as NamedService>::NAME
            }
            ServiceKind::Identity => {
                <IdentityServiceServer<IdentityGrpc<PgIdentity>> as NamedService>::NAME
            }
            ServiceKind::Billing => <BillingServiceServer<BillingGrpc> as NamedService>::NAME,
            ServiceKind::Audit => <AuditServiceServer<AuditGrpc<PgAudit>> as NamedService>::NAME,
            ServiceKind::Claims => {
                <ClaimsServiceServer<ClaimsGrpc<PgClaims>> as NamedService>::NAME
            }
        }
    }

    /// Default port of `up` (the gateway listens on 50051).
    pub fn default_port(self) -> u16 {
        match self {
            ServiceKind::Tenancy => 50061,
            ServiceKind::Identity => 50062,
            ServiceKind::Billing => 50063,
            ServiceKind::Audit => 50064,
            ServiceKind::Claims => 50065,
        }
    }
}

/// Everything a service needs to run.
#[derive(Debug, Clone)]
pub struct ServiceDeps {
    pub control: ControlPool,
    pub tenant: TenantPool,
    pub mesh_key: Arc<MeshKey>,
    /// Signs audit checkpoints; only the audit service uses it.
    pub audit_signer: Arc<CheckpointSigner>,
    /// Seals secrets at rest (signing keys of access tokens); identity's.
    pub secrets: SecretBox,
    pub identity: IdentityConfig,
    pub checkpoint_policy: CheckpointPolicy,
}

impl ServiceDeps {
    pub async fn connect(
        database_url: &str,
        mesh_key: Arc<MeshKey>,
        audit_signer: Arc<CheckpointSigner>,
        secrets: SecretBox,
    ) -> anyhow::Result<ServiceDeps> {
        let control = cg_db::connect_control(database_url, 10)
            .await
            .context("connect to PostgreSQL")?;
        let tenant = TenantPool::connect(database_url, 16).context("configure the tenant pool")?;
        Ok(ServiceDeps {
            control,
            tenant,
            mesh_key,
            audit_signer,
            secrets,
            identity: IdentityConfig::default(),
            checkpoint_policy: CheckpointPolicy::default(),
        })
    }

    /// Identity's delivery worker for the outbox, to run beside its server.
    pub fn mail_worker(
        &self,
    ) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
        let mailer = Mailer::from_config(&self.identity.mail).context("configure mail delivery")?;
        Ok(outbox::run(
            self.control.clone(),
            self.secrets.clone(),
            mailer,
            std::time::Duration::from_secs(1),
        ))
    }

    /// The audit service's checkpointer, to run beside its server.
    pub fn checkpointer(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        checkpointer::run(
            self.control.clone(),
            self.audit_signer.clone(),
            self.checkpoint_policy,
        )
    }
}

/// The routes of one domain service, behind the context interceptor; no
/// message in or out is larger than the server limit.
pub fn service_routes(kind: ServiceKind, deps: &ServiceDeps) -> anyhow::Result<Routes> {
    let interceptor = ContextInterceptor::new(deps.mesh_key.clone());
    let limit = ServerLimits::default().max_message_bytes;
    match kind {
        ServiceKind::Tenancy => {
            let api = Arc::new(PgTenancy::new(deps.control.clone()));
            let server = TenancyServiceServer::new(TenancyGrpc::new(api))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit);
            Ok(Routes::new(
                tonic::service::interceptor::InterceptedService::new(server, interceptor),
            ))
        }
        ServiceKind::Identity => {
            let api = Arc::new(
                PgIdentity::new(
                    deps.control.clone(),
                    deps.secrets.clone(),
                    deps.identity.clone(),
                )
                .context("build the identity service")?,
            );
            let server = IdentityServiceServer::new(IdentityGrpc::new(api))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit);
            Ok(Routes::new(
                tonic::service::interceptor::InterceptedService::new(server, interceptor),
            ))
        }
        ServiceKind::Billing => {
            let server = BillingServiceServer::new(BillingGrpc)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit);
            Ok(Routes::new(
                tonic::service::interceptor::InterceptedService::new(server, interceptor),
            ))
        }
        ServiceKind::Audit => {
            let api = Arc::new(PgAudit::new(
                deps.tenant.clone(),
                deps.audit_signer.verifier(),
            ));
            let server = AuditServiceServer::new(AuditGrpc::new(api))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit);
            Ok(Routes::new(
                tonic::service::interceptor::InterceptedService::new(server, interceptor),
            ))
        }
        ServiceKind::Claims => {
            let api = Arc::new(PgClaims::new(deps.tenant.clone()));
            let server = ClaimsServiceServer::new(ClaimsGrpc::new(api))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit);
            Ok(Routes::new(
                tonic::service::interceptor::InterceptedService::new(server, interceptor),
            ))
        }
    }
}

/// Where `up` listens.
#[derive(Debug, Clone)]
pub struct Listen {
    pub host: IpAddr,
    /// Gateway port; 0 picks a free one.
    pub gateway_port: u16,
    /// Service ports; 0 picks free ones. `None`: each service's default.
    pub service_ports: Option<u16>,
}

/// A running platform: every server's address, and the tasks serving them.
#[derive(Debug)]
pub struct RunningPlatform {
    pub gateway: SocketAddr,
    pub services: BTreeMap<ServiceKind, SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    /// Background workers (checkpointer, mail delivery), stopped with the servers.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

fn shutdown_signal(
    rx: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Starts the five services and the gateway in this process.
pub async fn start(
    deps: ServiceDeps,
    listen: &Listen,
    gateway_config: GatewayConfig,
) -> anyhow::Result<RunningPlatform> {
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut services = BTreeMap::new();
    let mut upstreams = Upstreams::default();
    let workers = vec![
        tokio::spawn(deps.checkpointer()),
        tokio::spawn(deps.mail_worker()?),
    ];
    for kind in ServiceKind::ALL {
        let port = match listen.service_ports {
            Some(port) => port,
            None => kind.default_port(),
        };
        let server = GrpcServer::bind(kind.name(), SocketAddr::new(listen.host, port)).await?;
        let addr = server.local_addr()?;
        services.insert(kind, addr);
        upstreams.add(kind.grpc_name(), &format!("http://{addr}"))?;
        let routes = service_routes(kind, &deps)?;
        let stop = shutdown_signal(&rx);
        tasks.spawn(async move {
            server
                .serve(routes, &[kind.grpc_name()], ServerLimits::default(), stop)
                .await
        });
    }
    let gateway = Gateway::new(
        gateway_config,
        upstreams,
        deps.control.clone(),
        deps.mesh_key.clone(),
    )?;
    let server =
        GrpcServer::bind("gateway", SocketAddr::new(listen.host, listen.gateway_port)).await?;
    let gateway_addr = server.local_addr()?;
    let stop = shutdown_signal(&rx);
    tasks.spawn(async move {
        server
            .serve(gateway.routes(), &[], ServerLimits::default(), stop)
            .await
    });
    Ok(RunningPlatform {
        gateway: gateway_addr,
        services,
        shutdown,
        tasks,
        workers,
    })
}

impl RunningPlatform {
    /// Asks every server to stop, and waits until in-flight calls are drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for worker in &self.workers {
            worker.abort();
        }
        let _ = self.shutdown.send(true);
        while let Some(result) = self.tasks.join_next().await {
            result.context("server task panicked")??;
        }
        Ok(())
    }

    /// Waits until a server stops by itself (which is an error).
    pub async fn wait_for_failure(&mut self) -> anyhow::Error {
        match self.tasks.join_next().await {
            Some(Ok(Ok(()))) => anyhow::anyhow!("a server stopped unexpectedly"),
            Some(Ok(Err(error))) => error,
            Some(Err(error)) => anyhow::anyhow!("a server task failed: {error}"),
            None => anyhow::anyhow!("no server is running"),
        }
    }
}
