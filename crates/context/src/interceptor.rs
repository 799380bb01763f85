//! The tonic interceptor every domain service runs first: no verified
//! context token, no call.

use std::sync::Arc;

use tonic::{Request, Status};

use crate::{MeshKey, TenantContext};

/// Metadata entry carrying the gateway-signed context token.
pub const CONTEXT_HEADER: &str = "x-cg-context";
/// Metadata entry carrying the request id, set by the gateway.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Verifies `x-cg-context` and stores the [`TenantContext`] as a request extension.
#[derive(Debug, Clone)]
pub struct ContextInterceptor {
    key: Arc<MeshKey>,
}

impl ContextInterceptor {
    pub fn new(key: Arc<MeshKey>) -> Self {
        Self { key }
    }
}

impl tonic::service::Interceptor for ContextInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = request
            .metadata()
            .get(CONTEXT_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated("missing internal context: call through the gateway")
            })?;
        let ctx = self.key.verify(token).map_err(|error| {
            tracing::warn!(%error, "refused internal context token");
            Status::unauthenticated("invalid internal context: call through the gateway")
        })?;
        let span = tracing::Span::current();
        span.record("request_id", tracing::field::display(ctx.request_id));
        if let Some(tenant) = &ctx.tenant {
            span.record("org", tenant.org_code.as_str());
        }
        span.record("principal", ctx.principal.describe());
        request.extensions_mut().insert(ctx);
        Ok(request)
    }
}

/// The verified context of a request that passed [`ContextInterceptor`].
pub fn context_of<T>(request: &Request<T>) -> Result<&TenantContext, Status> {
    request
        .extensions()
        .get::<TenantContext>()
        .ok_or_else(|| Status::unauthenticated("missing internal context"))
}
