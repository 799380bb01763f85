//! Security events: every call the gateway refuses (no or bad credentials,
//! denied permission or feature, unknown or suspended tenant) is recorded in
//! the audit log. Refusals of authenticated callers go to the organization's
//! chain; those of anonymous callers to the platform chain, since their claim
//! to an organization is unverified and must not let strangers write into
//! its log.

use std::sync::Arc;

use cg_audit::entry::Outcome;
use cg_audit::record::entry_for;
use cg_audit::store::{self, PLATFORM_SCHEMA};
use cg_context::{ClientInfo, Principal, RequestId, TenantContext};
use cg_db::ControlPool;
use cg_proto::policy::MethodPolicy;
use cg_tenancy::directory::TenantRecord;
use serde_json::json;
use sqlx::Connection;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Action of refused calls to methods that change nothing.
pub const DENIED_READ_ACTION: &str = "security.call.denied";

/// What the gateway had learned of a call when it refused it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub principal: Principal,
    pub tenant: Option<Arc<TenantRecord>>,
    /// How the caller named its organization, verified or not.
    pub named_tenant: String,
}

impl Default for Attempt {
    fn default() -> Self {
        Attempt {
            principal: Principal::Anonymous,
            tenant: None,
            named_tenant: String::new(),
        }
    }
}

/// Whether a refusal is a security event (not, say, a database outage).
pub fn is_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unauthenticated
            | Code::PermissionDenied
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::InvalidArgument
    )
}

/// Appends the refusal to the right chain. A failure to record is logged,
/// never turned into a different answer for the caller.
pub async fn record_refusal(
    pool: &ControlPool,
    policy: &MethodPolicy,
    status: &Status,
    attempt: &Attempt,
    request_id: RequestId,
    client: &ClientInfo,
) {
    let reason = status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    let authenticated = attempt.principal != Principal::Anonymous;
    let (schema, organization) = match (&attempt.tenant, authenticated) {
        (Some(tenant), true) => (tenant.schema.as_str(), Some(tenant.id.0)),
        _ => (PLATFORM_SCHEMA, None),
    };
    let ctx = TenantContext {
        request_id,
        principal: attempt.principal.clone(),
        tenant: None,
        client: client.clone(),
    };
    let action = policy.audit_action.as_deref().unwrap_or(DENIED_READ_ACTION);
    let summary = json!({
        "method": policy.path,
        "code": format!("{:?}", status.code()),
        "reason": reason,
        "organization": attempt.named_tenant,
    });
    let entry = entry_for(
        &ctx,
        organization,
        action,
        ("method", &policy.path),
        Outcome::Denied,
        summary,
    );
    let result = async {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        store::append(&mut tx, schema, entry).await?;
        tx.commit().await?;
        Ok::<_, cg_db::DbError>(())
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, method = %policy.path, "could not record a refused call in the audit log");
    }
}
