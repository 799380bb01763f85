//! The nine ways across a tenant boundary, which of them apply to a method
//! (from its access policy and request message alone), and the calls and
//! exact refusals of the eight that the gateway decides before any service
//! sees the call.

use std::collections::BTreeMap;
use std::time::Duration;

use cg_context::{ApiKeyId, MeshKey, Permission, Role, Tenant, TenantContext};
use cg_proto::policy::MethodPolicy;
use cg_status::reason;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

use super::world::{FENCED, FROZEN, HOME, RIVAL, Session, World};
use crate::raw_call;

/// One way of reaching across the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Case {
    NoCredentials,
    ForeignOrganizationToken,
    RoleWithoutPermission,
    OrganizationWithoutFeature,
    BlockedAddress,
    SuspendedOrganization,
    ForgedContext,
    TenantDisagreesWithToken,
    ForeignResourceId,
}

impl Case {
    pub const ALL: [Case; 9] = [
        Case::NoCredentials,
        Case::ForeignOrganizationToken,
        Case::RoleWithoutPermission,
        Case::OrganizationWithoutFeature,
        Case::BlockedAddress,
        Case::SuspendedOrganization,
        Case::ForgedContext,
        Case::TenantDisagreesWithToken,
        Case::ForeignResourceId,
    ];

    /// The case as the gateway issue words it.
    pub fn name(self) -> &'static str {
        match self {
            Case::NoCredentials => "no credentials",
            Case::ForeignOrganizationToken => "a token of another organization",
            Case::RoleWithoutPermission => "a token of a role without the permission",
            Case::OrganizationWithoutFeature => "an organization without the feature",
            Case::BlockedAddress => "a blocked source address",
            Case::SuspendedOrganization => "a suspended organization",
            Case::ForgedContext => "a forged x-cg-context",
            Case::TenantDisagreesWithToken => "an x-tenant that disagrees with the token",
            Case::ForeignResourceId => "a resource id of another organization",
        }
    }
}

/// What the matrix knows of one tenant-scoped method.
#[derive(Debug, Clone)]
pub struct MethodFacts {
    pub policy: MethodPolicy,
    pub method: String,
    pub permission: Option<Permission>,
    /// Roles without the permission, most privileged first.
    pub lacking_roles: Vec<Role>,
    /// Tiers without the feature.
    pub lacking_tiers: Vec<String>,
    /// The lowest-ranked tier with the feature.
    pub required_tier: Option<String>,
    /// Request fields that name a resource (`field` or `field.sub`).
    pub id_fields: Vec<String>,
}

impl MethodFacts {
    /// Whether `case` can be tried on this method at all.
    pub fn applies(&self, case: Case) -> bool {
        match case {
            Case::NoCredentials
            | Case::ForeignOrganizationToken
            | Case::BlockedAddress
            | Case::SuspendedOrganization
            | Case::ForgedContext
            | Case::TenantDisagreesWithToken => true,
            Case::RoleWithoutPermission => !self.lacking_roles.is_empty(),
            Case::OrganizationWithoutFeature => !self.lacking_tiers.is_empty(),
            Case::ForeignResourceId => !self.id_fields.is_empty(),
        }
    }
}

/// The exact refusal a call must get.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    pub reason: &'static str,
    /// `ErrorInfo` metadata entries that must be present with these values.
    pub metadata: BTreeMap<&'static str, String>,
}

impl Refusal {
    fn new(code: Code, reason: &'static str, metadata: &[(&'static str, &str)]) -> Refusal {
        Refusal {
            code,
            reason,
            metadata: metadata
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect(),
        }
    }

    /// Checks a call's answer: a refusal with exactly this code, reason and
    /// metadata, and no response message.
    pub fn check(&self, answer: Result<Response<Vec<u8>>, Status>) -> Result<(), String> {
        let status = match answer {
            Ok(response) => {
                return Err(format!(
                    "answered with {} bytes of data instead of {:?}/{}",
                    response.get_ref().len(),
                    self.code,
                    self.reason
                ));
            }
            Err(status) => status,
        };
        if status.code() != self.code {
            return Err(format!("expected {:?}, got {status:?}", self.code));
        }
        let Some(info) = status.get_error_details().error_info().cloned() else {
            return Err(format!("no ErrorInfo in {status:?}"));
        };
        if info.reason != self.reason || info.domain != cg_status::ERROR_DOMAIN {
            return Err(format!(
                "expected reason {} in {}, got {} in {}: {status:?}",
                self.reason,
                cg_status::ERROR_DOMAIN,
                info.reason,
                info.domain
            ));
        }
        for (key, value) in &self.metadata {
            if info.metadata.get(*key) != Some(value) {
                return Err(format!(
                    "expected metadata {key}={value}, got {:?}",
                    info.metadata
                ));
            }
        }
        Ok(())
    }
}

/// One call of the matrix and the refusal it must get.
pub struct Attempt {
    pub case: Case,
    pub path: String,
    /// Who calls and how, for the failure report.
    pub label: String,
    pub request: Request<Vec<u8>>,
    pub expect: Refusal,
}

impl Attempt {
    pub async fn run(self, channel: Channel) -> (Case, String, String, Result<(), String>) {
        let answer = raw_call::unary(channel, &self.path, self.request).await;
        let verdict = self.expect.check(answer);
        (self.case, self.path, self.label, verdict)
    }
}

/// A call with a default request message and the given metadata.
fn request(bearer: Option<&str>, tenant: Option<&str>, context: Option<&str>) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    if let Some(credential) = bearer {
        request = cg_testkit::with_bearer(request, credential);
    }
    let metadata = request.metadata_mut();
    if let Some(code) = tenant {
        metadata.insert("x-tenant", code.parse().expect("ascii code"));
    }
    if let Some(token) = context {
        metadata.insert("x-cg-context", token.parse().expect("ascii token"));
    }
    request
}

/// A context token claiming ownership of home, as a client might forge it.
fn owner_context_of_home(world: &World, key: &MeshKey) -> String {
    let home = &world.home;
    let mut ctx = TenantContext::operator(ApiKeyId::new());
    ctx.tenant = Some(Tenant {
        org_id: home.id.parse().expect("organization id"),
        org_code: home.code.clone(),
        schema: home.schema_name.clone(),
        tier: home.tier.clone(),
        allowed_states: home.allowed_states.clone(),
        role: Role::Owner,
    });
    key.mint(&ctx, Duration::from_secs(60))
}

/// The gateway-decided calls of `case` on one method; empty for
/// [`Case::ForeignResourceId`], which the services decide.
pub fn attempts(
    world: &World,
    mesh_key: &MeshKey,
    facts: &MethodFacts,
    case: Case,
) -> Vec<Attempt> {
    let unauthenticated = Refusal::new(Code::Unauthenticated, reason::UNAUTHENTICATED, &[]);
    let mismatch = |code: &str| {
        Refusal::new(
            Code::PermissionDenied,
            reason::TENANT_MISMATCH,
            &[("organization", code)],
        )
    };
    let lacks = |role: Role| {
        let permission = facts
            .permission
            .expect("only methods with a permission lack one");
        Refusal::new(
            Code::PermissionDenied,
            reason::PERMISSION_DENIED,
            &[("permission", permission.as_str()), ("role", role.as_str())],
        )
    };
    let operator = world.operator_key.as_str();
    let token = |session: &Session| session.access_token.clone();
    let mut out: Vec<(String, Request<Vec<u8>>, Refusal)> = Vec::new();
    match case {
        Case::NoCredentials => {
            out.push((
                "anonymous, naming home".to_owned(),
                request(None, Some(HOME), None),
                unauthenticated.clone(),
            ));
            out.push((
                "anonymous, naming no organization".to_owned(),
                request(None, None, None),
                unauthenticated,
            ));
        }
        Case::ForeignOrganizationToken => {
            out.push((
                "a rival member's access token on home".to_owned(),
                request(Some(&token(&world.rival.stranger)), Some(HOME), None),
                mismatch(HOME),
            ));
            out.push((
                "a rival API key on home".to_owned(),
                request(Some(&world.rival.api_key_secret), Some(HOME), None),
                mismatch(HOME),
            ));
        }
        Case::RoleWithoutPermission => {
            for role in &facts.lacking_roles {
                let session = &world.home_members[role];
                out.push((
                    format!("a home {role}"),
                    request(Some(&token(session)), Some(HOME), None),
                    lacks(*role),
                ));
            }
        }
        Case::OrganizationWithoutFeature => {
            let feature = facts.policy.feature.clone().unwrap_or_default();
            let required = facts.required_tier.clone().unwrap_or_default();
            for tier in &facts.lacking_tiers {
                let code = &world.tier_orgs[tier];
                out.push((
                    format!("the operator in a {tier} organization"),
                    request(Some(operator), Some(code), None),
                    Refusal::new(
                        Code::PermissionDenied,
                        reason::FEATURE_NOT_IN_TIER,
                        &[
                            ("feature", &feature),
                            ("current_tier", tier),
                            ("required_tier", &required),
                        ],
                    ),
                ));
            }
        }
        Case::BlockedAddress => {
            let blocked = Refusal::new(
                Code::PermissionDenied,
                reason::IP_NOT_ALLOWED,
                &[("organization", FENCED)],
            );
            out.push((
                "a fenced admin from loopback".to_owned(),
                request(Some(&token(&world.fenced_admin)), Some(FENCED), None),
                blocked.clone(),
            ));
            out.push((
                "the operator from loopback".to_owned(),
                request(Some(operator), Some(FENCED), None),
                blocked,
            ));
        }
        Case::SuspendedOrganization => {
            let suspended = Refusal::new(
                Code::FailedPrecondition,
                reason::ORGANIZATION_SUSPENDED,
                &[("organization", FROZEN)],
            );
            out.push((
                "an admin signed in before the suspension".to_owned(),
                request(Some(&token(&world.frozen_admin)), Some(FROZEN), None),
                suspended.clone(),
            ));
            out.push((
                "the operator".to_owned(),
                request(Some(operator), Some(FROZEN), None),
                suspended,
            ));
        }
        Case::ForgedContext => {
            let genuine = owner_context_of_home(world, mesh_key);
            let foreign = owner_context_of_home(world, &MeshKey::generate());
            out.push((
                "anonymous with an owner context signed by the mesh key".to_owned(),
                request(None, Some(HOME), Some(&genuine)),
                unauthenticated.clone(),
            ));
            out.push((
                "anonymous with an owner context signed by another key".to_owned(),
                request(None, Some(HOME), Some(&foreign)),
                unauthenticated,
            ));
            // A member whose role lacks the permission cannot lend itself
            // an owner's context either.
            if let Some(role) = facts.lacking_roles.last() {
                out.push((
                    format!("a home {role} with an owner context signed by the mesh key"),
                    request(
                        Some(&token(&world.home_members[role])),
                        Some(HOME),
                        Some(&genuine),
                    ),
                    lacks(*role),
                ));
            }
        }
        Case::TenantDisagreesWithToken => {
            out.push((
                "a member of home and rival, with the token of rival, naming home".to_owned(),
                request(Some(&token(&world.dual)), Some(HOME), None),
                mismatch(HOME),
            ));
            if let Some((role, session)) = world.home_members.iter().next() {
                out.push((
                    format!("a home {role}'s token naming rival"),
                    request(Some(&token(session)), Some(RIVAL), None),
                    mismatch(RIVAL),
                ));
            }
        }
        Case::ForeignResourceId => {}
    }
    out.into_iter()
        .map(|(label, request, expect)| Attempt {
            case,
            path: facts.policy.path.clone(),
            label,
            request,
            expect,
        })
        .collect()
}
