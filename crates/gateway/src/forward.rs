//! The gateway's one handler: resolve, authenticate, apply policy, then
//! forward the HTTP/2 request to the owning service without decoding it,
//! with a signed context token and a deadline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cg_context::{
    CONTEXT_HEADER, ClientInfo, MeshKey, Permission, Principal, REQUEST_ID_HEADER, RequestId, Role,
    Tenant, TenantContext,
};
use cg_db::ControlPool;
use cg_identity::allowlist::TrustedProxies;
use cg_proto::access::v1::Scope;
use cg_proto::policy::MethodPolicy;
use cg_status::{reason, with_reason};
use cg_tenancy::directory::{self, TenantRecord};
use http::{HeaderValue, Request, Response};
use tonic::body::Body;
use tonic::service::Routes;
use tonic::{Code, Status};

/// The identity service, whose JWKS verifies access tokens.
const IDENTITY_SERVICE: &str = "claimguardian.identity.v1.IdentityService";
const TENANCY_SERVICE: &str = "claimguardian.tenancy.v1.TenancyService";

use crate::access_cache::{self, AccessCache};
use crate::access_token::{AccessTokenVerifier, JwksSource, VerifierConfig};
use crate::authenticate::{AuthError, Caller, authenticate};
use crate::background::BackgroundTasks;
use crate::client::client_info;
use crate::deadline;
use crate::identity_jwks::{IdentityJwks, NoJwks};
use crate::metadata::strip_untrusted;
use crate::observe::{Call, CallMetrics};
use crate::policy::PolicyTable;
use crate::rate_limit::{RateLimitStore, RateLimits};
use crate::security_log::{Attempt, is_refusal, record_refusal};
use crate::send::Sender;
use crate::tenant::{TenantHint, hint};
use crate::upstream::{Health, Upstreams};

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Tenants are subdomains of this domain, e.g. `claimguardian.ai`.
    pub base_domain: String,
    /// Lifetime of the context tokens the gateway mints.
    pub context_ttl: Duration,
    /// Deadline of a call that sets none.
    pub default_deadline: Duration,
    /// Longest deadline forwarded; longer ones are capped.
    pub max_deadline: Duration,
    /// `iss` of the access tokens identity issues.
    pub token_issuer: String,
    /// Proxies whose `X-Forwarded-For` names the client; nobody by default.
    pub trusted_proxies: TrustedProxies,
    /// Fewest seconds between two fetches of identity's JWKS (an unknown
    /// `kid` triggers one); identity publishes new keys longer than this
    /// before signing with them.
    pub jwks_refresh_interval: Duration,
    /// Largest request forwarded; larger ones get `RESOURCE_EXHAUSTED`.
    pub max_request_bytes: usize,
    /// Where rate-limit state lives: in process (one replica) or in a
    /// Redis every replica shares.
    pub rate_limit_store: RateLimitStore,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            base_domain: "claimguardian.ai".to_owned(),
            context_ttl: Duration::from_secs(60),
            default_deadline: Duration::from_secs(30),
            max_deadline: Duration::from_secs(300),
            token_issuer: cg_identity::DEFAULT_ISSUER.to_owned(),
            trusted_proxies: TrustedProxies::default(),
            jwks_refresh_interval: Duration::from_secs(30),
            max_request_bytes: 4 * 1024 * 1024,
            rate_limit_store: RateLimitStore::InProcess,
        }
    }
}

struct Inner {
    tokens: AccessTokenVerifier,
    config: GatewayConfig,
    policies: PolicyTable,
    upstreams: Upstreams,
    pool: ControlPool,
    mesh_key: Arc<MeshKey>,
    rate_limits: RateLimits,
    cache: Arc<AccessCache>,
    sender: Sender,
    _tasks: BackgroundTasks,
    metrics: Arc<CallMetrics>,
}

/// The gateway: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("policies", &self.inner.policies.len())
            .finish()
    }
}

impl Gateway {
    /// A gateway enforcing the policies declared in the platform's protos.
    pub fn new(
        config: GatewayConfig,
        upstreams: Upstreams,
        pool: ControlPool,
        mesh_key: Arc<MeshKey>,
    ) -> anyhow::Result<Gateway> {
        let policies = PolicyTable::from_descriptor_set(cg_proto::FILE_DESCRIPTOR_SET)
            .context("build the policy table from the descriptor set")?;
        Ok(Self::with_policies(
            config, policies, upstreams, pool, mesh_key,
        ))
    }

    /// A gateway enforcing `policies`.
    pub fn with_policies(
        config: GatewayConfig,
        policies: PolicyTable,
        upstreams: Upstreams,
        pool: ControlPool,
        mesh_key: Arc<MeshKey>,
    ) -> Gateway {
        let source: Arc<dyn JwksSource> = match upstreams.get(IDENTITY_SERVICE) {
            Some(identity) => Arc::new(IdentityJwks::new(identity.channel(), mesh_key.clone())),
            None => Arc::new(NoJwks),
        };
        let tokens = AccessTokenVerifier::new(
            source,
            VerifierConfig {
                min_refresh_interval: config.jwks_refresh_interval,
                ..VerifierConfig::new(config.token_issuer.clone())
            },
        );
        let cache = Arc::new(AccessCache::default());
        let sender = Sender::new(config.max_request_bytes);
        let mut tasks = BackgroundTasks::default();
        upstreams.watch_health(&mut tasks);
        tasks.spawn(access_cache::follow(pool.clone(), cache.clone()));
        let rate_limits = RateLimits::new(config.rate_limit_store.clone());
        Gateway {
            inner: Arc::new(Inner {
                tokens,
                config,
                policies,
                pool,
                mesh_key,
                cache,
                sender,
                _tasks: tasks,
                upstreams,
                rate_limits,
                metrics: Arc::new(CallMetrics::new(&opentelemetry::global::meter(
                    "cg-gateway",
                ))),
            }),
        }
    }

    /// Routes where every path not served locally (health, reflection) is forwarded.
    pub fn routes(&self) -> Routes {
        let gateway = self.clone();
        let router = axum::Router::new().fallback(move |request: Request<axum::body::Body>| {
            let gateway = gateway.clone();
            async move { gateway.handle(request.map(Body::new)).await }
        });
        Routes::from(router)
    }

    async fn handle(&self, mut request: Request<Body>) -> Response<Body> {
        let path = request.uri().path();
        let call = Call::start(
            &self.inner.metrics,
            path,
            self.inner.policies.is_known_method(path),
        );
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<RequestId>().ok())
            .unwrap_or_default();
        let span = tracing::Span::current();
        span.record("request_id", tracing::field::display(request_id));
        cg_runtime::trace_context::hand_on(&span, request.headers_mut());
        let mut attempt = Attempt::default();
        let mut response = match self.forward(request, request_id, &mut attempt).await {
            Ok(response) => response,
            Err(status) => {
                tracing::info!(code = ?status.code(), message = status.message(), "refused");
                status.into_http()
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        call.finish(attempt.tenant.as_ref().map(|t| t.code.as_str()), response)
    }

    async fn forward(
        &self,
        mut request: Request<Body>,
        request_id: RequestId,
        attempt: &mut Attempt,
    ) -> Result<Response<Body>, Status> {
        let path = request.uri().path().to_owned();
        let Some(policy) = self.inner.policies.get(&path) else {
            return Err(if self.inner.policies.is_known_method(&path) {
                with_reason(
                    Code::PermissionDenied,
                    "method has no access policy",
                    reason::METHOD_NOT_ALLOWED,
                    &[("method", &path)],
                )
            } else {
                Status::unimplemented(format!("unknown method {path}"))
            });
        };
        let client = client_info(
            &request,
            &self.inner.config.trusted_proxies,
            cg_runtime::trace_context::trace_id(&tracing::Span::current(), request.headers()),
        );
        let authorized = self
            .authorize(
                policy,
                request.headers(),
                request.uri(),
                request_id,
                client.clone(),
                attempt,
            )
            .await;
        let ctx = match authorized {
            Ok(ctx) => ctx,
            Err(status) => {
                if is_refusal(&status) {
                    record_refusal(
                        &self.inner.pool,
                        policy,
                        &status,
                        attempt,
                        request_id,
                        &client,
                    )
                    .await;
                }
                return Err(status);
            }
        };
        if let Some(tenant) = &ctx.tenant {
            self.inner
                .rate_limits
                .check(
                    tenant.org_id.0,
                    &tenant.org_code,
                    &tenant.tier,
                    policy.rate_limit_class,
                )
                .await?;
        }
        let upstream = self.inner.upstreams.get(&policy.service).ok_or_else(|| {
            Status::unimplemented(format!("no upstream serves {}", policy.service))
        })?;
        if upstream.health() == Health::Down {
            return Err(upstream.unavailable());
        }

        let timeout = match request.headers().get(deadline::GRPC_TIMEOUT) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(deadline::parse)
                .ok_or_else(|| Status::invalid_argument("malformed grpc-timeout"))?
                .min(self.inner.config.max_deadline),
            None => self.inner.config.default_deadline,
        };
        let token = self
            .inner
            .mesh_key
            .mint(&ctx, self.inner.config.context_ttl);
        let headers = request.headers_mut();
        strip_untrusted(headers);
        let internal = |value: &str| {
            HeaderValue::from_str(value).map_err(|_| cg_status::internal("header value"))
        };
        headers.insert(CONTEXT_HEADER, internal(&token)?);
        headers.insert(REQUEST_ID_HEADER, internal(&request_id.to_string())?);
        let response = self
            .inner
            .sender
            .send(upstream, policy.idempotent, request, timeout)
            .await?;
        if may_change_access(policy) && !is_refusal_header(&response) {
            self.inner.cache.settle(&self.inner.pool).await;
        }
        Ok(response)
    }

    async fn authorize(
        &self,
        policy: &MethodPolicy,
        headers: &http::HeaderMap,
        uri: &http::Uri,
        request_id: RequestId,
        client: ClientInfo,
        attempt: &mut Attempt,
    ) -> Result<TenantContext, Status> {
        let caller = authenticate(
            headers,
            &self.inner.pool,
            &self.inner.cache,
            &self.inner.tokens,
        )
        .await
        .map_err(|error| match error {
            AuthError::Invalid => with_reason(
                Code::Unauthenticated,
                "invalid credentials",
                reason::UNAUTHENTICATED,
                &[],
            ),
            AuthError::Token(status) => status,
            AuthError::Unavailable(cause) => cg_status::unavailable(cause),
        })?;
        let principal = caller.principal.clone();
        attempt.principal = principal.clone();
        let hint = hint(headers, uri, &self.inner.config.base_domain);
        attempt.named_tenant = match &hint {
            TenantHint::None => String::new(),
            TenantHint::Code(code) => code.clone(),
            TenantHint::Domain(domain) => domain.clone(),
        };
        match policy.scope {
            Scope::Public => {
                let tenant = match hint {
                    TenantHint::None => None,
                    hint => Some(self.tenant(hint, &caller, &client, policy, attempt).await?),
                };
                Ok(TenantContext {
                    request_id,
                    principal,
                    tenant,
                    client,
                })
            }
            Scope::Platform => match principal {
                Principal::Operator { .. } => Ok(TenantContext {
                    request_id,
                    principal,
                    tenant: None,
                    client,
                }),
                Principal::Anonymous => Err(unauthenticated()),
                _ => Err(with_reason(
                    Code::PermissionDenied,
                    "platform operators only",
                    reason::OPERATOR_REQUIRED,
                    &[],
                )),
            },
            Scope::Tenant => {
                if principal == Principal::Anonymous {
                    return Err(unauthenticated());
                }
                if hint == TenantHint::None {
                    return Err(with_reason(
                        Code::InvalidArgument,
                        "this method acts within an organization: send `x-tenant: <code>`",
                        reason::TENANT_REQUIRED,
                        &[],
                    ));
                }
                let tenant = self.tenant(hint, &caller, &client, policy, attempt).await?;
                if let Some(permission) = &policy.permission {
                    let permission: Permission = permission.parse().map_err(cg_status::internal)?;
                    if !tenant.role.has(permission) {
                        return Err(with_reason(
                            Code::PermissionDenied,
                            format!("role {} lacks {permission}", tenant.role),
                            reason::PERMISSION_DENIED,
                            &[
                                ("permission", permission.as_str()),
                                ("role", tenant.role.as_str()),
                            ],
                        ));
                    }
                }
                Ok(TenantContext {
                    request_id,
                    principal,
                    tenant: Some(tenant),
                    client,
                })
            }
            Scope::Unspecified => Err(with_reason(
                Code::PermissionDenied,
                "method has no access policy",
                reason::METHOD_NOT_ALLOWED,
                &[],
            )),
        }
    }

    /// Resolves and admits the named tenant for this principal: it must
    /// exist, be active, and have the method's tier feature.
    async fn tenant(
        &self,
        hint: TenantHint,
        caller: &Caller,
        client: &ClientInfo,
        policy: &MethodPolicy,
        attempt: &mut Attempt,
    ) -> Result<Tenant, Status> {
        let pool = &self.inner.pool;
        let cache = &self.inner.cache;
        let (record, named) = match hint {
            TenantHint::Code(code) => (cache.tenant_by_code(pool, &code).await, code),
            TenantHint::Domain(domain) => (cache.tenant_by_domain(pool, &domain).await, domain),
            TenantHint::None => return Err(cg_status::internal("tenant lookup without a hint")),
        };
        let record: Arc<TenantRecord> =
            record.map_err(cg_status::unavailable)?.ok_or_else(|| {
                with_reason(
                    Code::NotFound,
                    format!("organization `{named}` not found"),
                    reason::TENANT_NOT_FOUND,
                    &[("organization", named.as_str())],
                )
            })?;
        attempt.tenant = Some(record.clone());
        // The allow-list comes before anything else about the organization.
        let allowlist = cache
            .allowlist(pool, record.id)
            .await
            .map_err(cg_status::unavailable)?;
        let client_ip = client.ip.parse::<std::net::IpAddr>().ok();
        if !client_ip.is_some_and(|ip| allowlist.allows(ip)) && !allowlist.is_empty() {
            return Err(with_reason(
                Code::PermissionDenied,
                "this address may not call this organization",
                reason::IP_NOT_ALLOWED,
                &[("organization", record.code.as_str())],
            ));
        }
        if record.suspended {
            return Err(with_reason(
                Code::FailedPrecondition,
                format!("organization `{}` is suspended", record.code),
                reason::ORGANIZATION_SUSPENDED,
                &[("organization", record.code.as_str())],
            ));
        }
        if let Some(feature) = &policy.feature
            && !record.features.iter().any(|f| f == feature)
        {
            let required = directory::lowest_tier_with(pool, feature)
                .await
                .map_err(cg_status::unavailable)?
                .unwrap_or_default();
            return Err(with_reason(
                Code::PermissionDenied,
                format!("the {} tier does not include `{feature}`", record.tier),
                reason::FEATURE_NOT_IN_TIER,
                &[
                    ("feature", feature.as_str()),
                    ("current_tier", record.tier.as_str()),
                    ("required_tier", required.as_str()),
                ],
            ));
        }
        let role = match (&caller.principal, &caller.token) {
            // Operators act on a tenant as its owner.
            (Principal::Operator { .. }, _) => Role::Owner,
            (Principal::Anonymous, _) => Role::Viewer,
            // A token is good for the organization it was issued in only.
            (Principal::ApiKey { .. }, _) => match &caller.api_key {
                Some(key) if key.organization_id == record.id => key.role,
                _ => {
                    return Err(with_reason(
                        Code::PermissionDenied,
                        "this API key belongs to another organization",
                        reason::TENANT_MISMATCH,
                        &[("organization", record.code.as_str())],
                    ));
                }
            },
            (Principal::User { user_id }, Some(claims)) => {
                if claims.org != record.id.to_string() {
                    return Err(with_reason(
                        Code::PermissionDenied,
                        "this token was issued for another organization",
                        reason::TENANT_MISMATCH,
                        &[("organization", record.code.as_str())],
                    ));
                }
                // The role in the token is what it was at sign-in; the
                // membership says what it is now.
                cache
                    .active_role(pool, record.id, *user_id)
                    .await
                    .map_err(cg_status::unavailable)?
                    .ok_or_else(|| {
                        with_reason(
                            Code::PermissionDenied,
                            "this account's membership of the organization is suspended or removed",
                            cg_identity::reason::MEMBERSHIP_INACTIVE,
                            &[("organization", record.code.as_str())],
                        )
                    })?
            }
            _ => return Err(unauthenticated()),
        };
        tracing::Span::current().record("org", record.code.as_str());
        Ok(Tenant {
            org_id: record.id,
            org_code: record.code.clone(),
            schema: record.schema.clone(),
            tier: record.tier.clone(),
            allowed_states: record.allowed_states.clone(),
            role,
        })
    }
}

/// A write to the control plane (tenancy, identity) may change what admits
/// calls: a suspension, a role, an allow-list, a key.
fn may_change_access(policy: &MethodPolicy) -> bool {
    policy.audit_action.is_some()
        && (policy.service == TENANCY_SERVICE || policy.service == IDENTITY_SERVICE)
}

/// A trailers-only error answer: nothing was changed.
fn is_refusal_header(response: &Response<Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() != b"0")
}

fn unauthenticated() -> Status {
    with_reason(
        Code::Unauthenticated,
        "credentials required: send `authorization: Bearer <key or token>`",
        reason::UNAUTHENTICATED,
        &[],
    )
}
