//! Tenant context, typed ids, roles and permissions, and the signed internal context token.
#![forbid(unsafe_code)]

mod context;
mod ids;
mod interceptor;
mod role;
mod token;

pub use context::{ClientInfo, Principal, Tenant, TenantContext};
pub use ids::{ApiKeyId, OrganizationId, RequestId, UserId};
pub use interceptor::{CONTEXT_HEADER, ContextInterceptor, REQUEST_ID_HEADER, context_of};
pub use role::{Permission, Role, UnknownPermission};
pub use token::{ContextTokenError, MeshKey};
