//! One way to run a gRPC server: every service and the gateway get health,
//! reflection (v1 and v1alpha, so every grpcurl version works), a tracing
//! span per call that continues the caller's W3C trace, HTTP/2 keepalive, size limits and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::trace_context;

/// Size limits applied to every server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 1024,
        }
    }
}

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Routes for server reflection (v1 and v1alpha) listing `services` and
/// health; `None` lists every ClaimGuardian service (the gateway).
pub fn reflection_routes(routes: Routes, services: Option<&[&str]>) -> anyhow::Result<Routes> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(cg_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        if let Some(services) = services {
            for service in services.iter().chain([&HEALTH_SERVICE]) {
                builder = builder.with_service_name(*service);
            }
        }
        builder
    };
    let v1 = builder().build_v1().context("build reflection v1")?;
    let v1alpha = builder()
        .build_v1alpha()
        .context("build reflection v1alpha")?;
    Ok(routes.add_service(v1).add_service(v1alpha))
}

/// A bound, not yet serving, gRPC server.
#[derive(Debug)]
pub struct GrpcServer {
    name: &'static str,
    listener: TcpListener,
}

impl GrpcServer {
    /// Binds first, so port 0 works and the caller learns the port.
    pub async fn bind(name: &'static str, addr: SocketAddr) -> anyhow::Result<GrpcServer> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind {name} on {addr}"))?;
        Ok(GrpcServer { name, listener })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves `routes` plus health (every named service reported serving)
    /// and reflection until `shutdown` resolves, then drains in-flight calls.
    /// An empty `healthy_services` marks the gateway: reflection then lists
    /// every ClaimGuardian service, since the gateway serves them all.
    pub async fn serve(
        self,
        routes: Routes,
        healthy_services: &[&str],
        limits: ServerLimits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        for service in healthy_services {
            reporter
                .set_service_status(*service, tonic_health::ServingStatus::Serving)
                .await;
        }
        let listed = (!healthy_services.is_empty()).then_some(healthy_services);
        let routes = reflection_routes(routes.add_service(health_service), listed)?;
        let name = self.name;
        tracing::info!(server = name, addr = %self.listener.local_addr()?, "serving");
        let incoming = TcpListenerStream::new(self.listener);
        Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_concurrent_streams(limits.max_concurrent_streams)
            .trace_fn(move |request| {
                let span = tracing::info_span!(
                    "grpc",
                    server = name,
                    method = %request.uri().path(),
                    request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    org = tracing::field::Empty,
                    principal = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                );
                trace_context::continue_trace(&span, request.headers());
                span
            })
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .with_context(|| format!("serve {name}"))?;
        Ok(())
    }
}
