//! The calls measured, and the two ways of making them: through the gateway
//! (bearer token and `x-tenant`, as a client does) or direct to the service
//! with a context token minted by the mesh key, as the gateway would mint
//! it, so the service does the same work on both paths.

use std::sync::Arc;
use std::time::Duration;

use cg_context::{
    CONTEXT_HEADER, ClientInfo, MeshKey, Principal, REQUEST_ID_HEADER, RequestId, TenantContext,
};
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::tenants::BenchTenant;

/// What is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Identity's CheckPermission about the caller: answered from the
    /// context's role, no database read — the hop's cost stands alone.
    CheckPermission,
    /// Claims' GetProperty: a tenant transaction reading one row.
    GetProperty,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::CheckPermission => "CheckPermission",
            Call::GetProperty => "GetProperty",
        }
    }
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    Gateway,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Gateway => "gateway",
        }
    }
}

/// A tenant's credentials, encoded once.
#[derive(Debug, Clone)]
struct Credentials {
    bearer: MetadataValue<Ascii>,
    code: MetadataValue<Ascii>,
    context: TenantContext,
    property_id: String,
}

/// Makes `call` by `route` on a given connection as a given tenant (each
/// taken modulo how many there are).
#[derive(Debug, Clone)]
pub struct Caller {
    pub call: Call,
    pub route: Route,
    channels: Arc<Vec<Channel>>,
    tenants: Arc<Vec<Credentials>>,
    mesh_key: Arc<MeshKey>,
}

/// The lifetime of a context token minted for a direct call, as the gateway's.
const CONTEXT_TTL: Duration = Duration::from_secs(60);

impl Caller {
    pub fn new(
        call: Call,
        route: Route,
        channels: Vec<Channel>,
        tenants: &[BenchTenant],
        mesh_key: Arc<MeshKey>,
    ) -> anyhow::Result<Caller> {
        anyhow::ensure!(
            !channels.is_empty() && !tenants.is_empty(),
            "a caller needs a connection and a tenant"
        );
        let tenants = tenants
            .iter()
            .map(|t| {
                Ok(Credentials {
                    bearer: MetadataValue::try_from(format!("Bearer {}", t.access_token))?,
                    code: MetadataValue::try_from(t.code.as_str())?,
                    context: TenantContext {
                        request_id: RequestId::new(),
                        principal: Principal::User { user_id: t.user_id },
                        tenant: Some(t.tenant.clone()),
                        client: ClientInfo {
                            ip: "127.0.0.1".to_owned(),
                            ..ClientInfo::default()
                        },
                    },
                    property_id: t.property_id.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Caller {
            call,
            route,
            channels: Arc::new(channels),
            tenants: Arc::new(tenants),
            mesh_key,
        })
    }

    pub fn connections(&self) -> usize {
        self.channels.len()
    }

    /// Makes one call; an error status is returned as it came.
    pub async fn call(&self, connection: usize, tenant: usize) -> Result<(), Status> {
        let channel = self.channels[connection % self.channels.len()].clone();
        let tenant = &self.tenants[tenant % self.tenants.len()];
        match self.call {
            Call::CheckPermission => {
                let request = self.request(
                    tenant,
                    identity::CheckPermissionRequest {
                        permission: "properties.read".to_owned(),
                        user_id: String::new(),
                    },
                )?;
                let answer = IdentityServiceClient::new(channel)
                    .check_permission(request)
                    .await?
                    .into_inner();
                if !answer.allowed {
                    return Err(Status::internal("an admin was refused properties.read"));
                }
            }
            Call::GetProperty => {
                let request = self.request(
                    tenant,
                    claims::GetPropertyRequest {
                        id: tenant.property_id.clone(),
                    },
                )?;
                ClaimsServiceClient::new(channel)
                    .get_property(request)
                    .await?;
            }
        }
        Ok(())
    }

    fn request<T>(&self, tenant: &Credentials, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        match self.route {
            Route::Gateway => {
                metadata.insert("authorization", tenant.bearer.clone());
                metadata.insert("x-tenant", tenant.code.clone());
            }
            Route::Direct => {
                // A fresh request id and token per call, as the gateway mints them.
                let request_id = RequestId::new();
                let context = TenantContext {
                    request_id,
                    ..tenant.context.clone()
                };
                let token = self.mesh_key.mint(&context, CONTEXT_TTL);
                let ascii = |value: String| {
                    MetadataValue::try_from(value)
                        .map_err(|_| Status::internal("metadata is not ASCII"))
                };
                metadata.insert(CONTEXT_HEADER, ascii(token)?);
                metadata.insert(REQUEST_ID_HEADER, ascii(request_id.to_string())?);
            }
        }
        Ok(request)
    }
}
