//! The resolved context of one call: who calls, for which organization, under which request id.

use serde::{Deserialize, Serialize};

use crate::{ApiKeyId, OrganizationId, RequestId, Role, UserId};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// Nobody authenticated (public methods).
    Anonymous,
    /// A platform operator, by operator API key.
    Operator { key_id: ApiKeyId },
    /// A person signed in with an access token.
    User { user_id: UserId },
    /// A service account of an organization, by API key.
    ApiKey { key_id: ApiKeyId },
    /// One of the platform's own services or jobs.
    Service { name: String },
}

impl Principal {
    /// Kind and id, as recorded in logs and the audit trail.
    pub fn describe(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::Operator { key_id } => format!("operator:{key_id}"),
            Principal::User { user_id } => format!("user:{user_id}"),
            Principal::ApiKey { key_id } => format!("api_key:{key_id}"),
            Principal::Service { name } => format!("service:{name}"),
        }
    }

    /// The id that owns the records this caller creates: the user's, or a
    /// service account's key id. Row-level security narrows members to
    /// their own records by it.
    pub fn owner_id(&self) -> Option<uuid::Uuid> {
        match self {
            Principal::User { user_id } => Some(user_id.0),
            Principal::ApiKey { key_id } => Some(key_id.0),
            _ => None,
        }
    }

    /// The user id, for row ownership.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Principal::User { user_id } => Some(*user_id),
            _ => None,
        }
    }
}

/// The organization a call acts within, as resolved by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub org_id: OrganizationId,
    pub org_code: String,
    /// `org_<code>` with `-` mapped to `_`.
    pub schema: String,
    pub tier: String,
    /// US states the organization may operate in.
    pub allowed_states: Vec<String>,
    /// The caller's role in this organization (operators act as owner).
    pub role: Role,
}

/// Where a call came from, as the gateway saw it (for the audit trail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The client address: the peer, or the forwarded address of a trusted proxy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// W3C trace id (32 hex digits) of the call, when it carries one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
}

/// Everything a service knows about a call, taken only from a verified context token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantContext {
    pub request_id: RequestId,
    pub principal: Principal,
    /// Absent for platform-scoped and public calls.
    pub tenant: Option<Tenant>,
    #[serde(default)]
    pub client: ClientInfo,
}

impl TenantContext {
    /// A context for a platform operator outside any organization.
    pub fn operator(key_id: ApiKeyId) -> Self {
        TenantContext {
            request_id: RequestId::new(),
            principal: Principal::Operator { key_id },
            tenant: None,
            client: ClientInfo::default(),
        }
    }

    /// A context for one of the platform's own jobs.
    pub fn service(name: &str, tenant: Option<Tenant>) -> Self {
        TenantContext {
            request_id: RequestId::new(),
            principal: Principal::Service {
                name: name.to_owned(),
            },
            tenant,
            client: ClientInfo::default(),
        }
    }
}
