//! The access policy of every RPC, read from the `claimguardian.access.v1.access`
//! method option in the descriptor set.
//!
//! The gateway builds its policy table from here at start-up; a method whose
//! option is missing or incomplete is absent from the table and so denied.

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, Value};

use crate::access::v1::{Access, RateLimitClass, Scope};

const ACCESS_EXTENSION: &str = "claimguardian.access.v1.access";
const OWN_PACKAGE_PREFIX: &str = "claimguardian.";

/// One gRPC method of a ClaimGuardian service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    /// `/package.Service/Method`, the HTTP/2 path of the call.
    pub path: String,
    /// `package.Service`.
    pub service: String,
    /// `Method`.
    pub method: String,
    /// Whether the client streams requests.
    pub client_streaming: bool,
    /// Whether the server streams responses.
    pub server_streaming: bool,
    /// The declared access option, when present.
    pub access: Option<Access>,
}

/// Why the descriptor set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the descriptor set does not decode: {0}")]
    Decode(#[from] prost_reflect::DescriptorError),
    #[error("the descriptor set lacks the `{ACCESS_EXTENSION}` extension")]
    MissingExtension,
    #[error("the access option of {0} does not decode: {1}")]
    Option(String, prost::DecodeError),
}

/// Every method of every ClaimGuardian service in the descriptor set, with its access option.
pub fn methods(descriptor_set: &[u8]) -> Result<Vec<MethodInfo>, PolicyError> {
    let pool = DescriptorPool::decode(descriptor_set)?;
    let extension = pool
        .get_extension_by_name(ACCESS_EXTENSION)
        .ok_or(PolicyError::MissingExtension)?;
    let mut out = Vec::new();
    for service in pool.services() {
        if !service.full_name().starts_with(OWN_PACKAGE_PREFIX) {
            continue;
        }
        for method in service.methods() {
            let options = method.options();
            let access = if options.has_extension(&extension) {
                match options.get_extension(&extension).as_ref() {
                    Value::Message(message) => Some(
                        message
                            .transcode_to::<Access>()
                            .map_err(|e| PolicyError::Option(method.full_name().to_owned(), e))?,
                    ),
                    _ => None,
                }
            } else {
                None
            };
            out.push(MethodInfo {
                path: format!("/{}/{}", service.full_name(), method.name()),
                service: service.full_name().to_owned(),
                method: method.name().to_owned(),
                client_streaming: method.is_client_streaming(),
                server_streaming: method.is_server_streaming(),
                access,
            });
        }
    }
    Ok(out)
}

/// A method's access option after validation: scope and rate-limit class are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodPolicy {
    pub path: String,
    pub service: String,
    pub scope: Scope,
    pub permission: Option<String>,
    pub feature: Option<String>,
    pub rate_limit_class: RateLimitClass,
    pub metered_resource: Option<String>,
    pub idempotent: bool,
    pub server_streaming: bool,
    /// The audit action of a method that changes state; `None` for reads.
    pub audit_action: Option<String>,
}

impl MethodPolicy {
    /// The policy of a method, or `None` when its option is missing or incomplete
    /// (such a method is denied).
    pub fn from_method(method: &MethodInfo) -> Option<MethodPolicy> {
        let access = method.access.as_ref()?;
        let scope = Scope::try_from(access.scope).ok()?;
        let rate_limit_class = RateLimitClass::try_from(access.rate_limit_class).ok()?;
        if scope == Scope::Unspecified || rate_limit_class == RateLimitClass::Unspecified {
            return None;
        }
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Some(MethodPolicy {
            path: method.path.clone(),
            service: method.service.clone(),
            scope,
            permission: non_empty(&access.permission),
            feature: non_empty(&access.feature),
            rate_limit_class,
            metered_resource: non_empty(&access.metered_resource),
            idempotent: access.idempotent,
            server_streaming: method.server_streaming,
            audit_action: non_empty(&access.audit_action),
        })
    }
}

/// Method-name prefixes of methods that change nothing; every other method
/// must declare an audit action.
pub const READ_ONLY_PREFIXES: [&str; 5] = ["Get", "List", "Check", "Export", "Verify"];

impl MethodInfo {
    /// Whether the method only reads, judged by its name.
    pub fn is_read_only(&self) -> bool {
        READ_ONLY_PREFIXES
            .iter()
            .any(|p| self.method.starts_with(p))
    }
}

/// The policy table keyed by call path. Methods without a valid policy are absent.
pub fn policy_table(descriptor_set: &[u8]) -> Result<BTreeMap<String, MethodPolicy>, PolicyError> {
    Ok(methods(descriptor_set)?
        .iter()
        .filter_map(MethodPolicy::from_method)
        .map(|policy| (policy.path.clone(), policy))
        .collect())
}
