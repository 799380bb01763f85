//! What admits a call — the organization (status, tier, features), its
//! allow-list, the member's role, a service-account or operator key —
//! cached in the gateway so a call costs no database round trip, and
//! forgotten the moment PostgreSQL says it changed.
//!
//! Every table these come from has a trigger that notifies channel
//! `cg_access` at commit (see `migrations/*/…notify_access_changes.sql`);
//! [`follow`] listens on it and drops the entries named. The guide's cache
//! lifetimes (organizations 15 min, permissions 5 min, flags 30 min) remain
//! as upper bounds only. While the listening connection is down the caches
//! are bypassed, and they start empty once it is back: notifications missed
//! in between cannot leave a stale entry behind.
//!
//! A read that raced with a change must not put the old value back after
//! the change dropped it: each change bumps an epoch under a write lock, and
//! a loaded value is stored only under the epoch its load began in.

mod change;
mod listener;
mod settle;

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use cg_context::{ApiKeyId, OrganizationId, Role, UserId};
use cg_db::{ControlPool, DbError};
use cg_identity::allowlist::AllowList;
use cg_identity::api_keys::{self, ApiKey};
use cg_identity::{operator_keys, security};
use cg_tenancy::directory::{self, TenantRecord};
use moka::sync::Cache;
use sha2::{Digest as _, Sha256};

pub use change::Change;
pub use listener::follow;

/// Organizations cached at most; the guide's tier catalogue tops out at
/// thousands of tenants, so all of them fit.
const MAX_ORGANIZATIONS: u64 = 100_000;
/// Memberships, keys and the like cached at most.
const MAX_PRINCIPALS: u64 = 1_000_000;
const ORGANIZATION_TTL: Duration = Duration::from_secs(15 * 60);
const PERMISSION_TTL: Duration = Duration::from_secs(5 * 60);

type CredentialDigest = [u8; 32];

/// How the caches have been used, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Notifications applied.
    pub changes: u64,
}

/// The gateway's caches; one per gateway, shared by every call.
#[derive(Debug)]
pub struct AccessCache {
    tenants: Cache<OrganizationId, Arc<TenantRecord>>,
    /// Codes never change, so code → id stays true for an organization's life.
    codes: Cache<String, OrganizationId>,
    domains: Cache<String, OrganizationId>,
    allowlists: Cache<OrganizationId, Arc<AllowList>>,
    /// `None`: the membership is not active.
    roles: Cache<(OrganizationId, UserId), Option<Role>>,
    api_keys: Cache<CredentialDigest, Arc<ApiKey>>,
    operator_keys: Cache<CredentialDigest, ApiKeyId>,
    epoch: RwLock<u64>,
    /// Whether changes are being heard; the caches are bypassed otherwise.
    live: AtomicBool,
    /// This replica's name among the gateways sharing the database.
    replica: String,
    barriers: settle::Barriers,
    hits: AtomicU64,
    misses: AtomicU64,
    changes: AtomicU64,
}

impl Default for AccessCache {
    fn default() -> Self {
        fn cache<K, V>(capacity: u64, ttl: Duration) -> Cache<K, V>
        where
            K: Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        }
        AccessCache {
            tenants: cache(MAX_ORGANIZATIONS, ORGANIZATION_TTL),
            codes: cache(MAX_ORGANIZATIONS, ORGANIZATION_TTL),
            domains: cache(MAX_ORGANIZATIONS, ORGANIZATION_TTL),
            allowlists: cache(MAX_ORGANIZATIONS, PERMISSION_TTL),
            roles: cache(MAX_PRINCIPALS, PERMISSION_TTL),
            api_keys: cache(MAX_PRINCIPALS, PERMISSION_TTL),
            operator_keys: cache(MAX_PRINCIPALS, PERMISSION_TTL),
            epoch: RwLock::new(0),
            live: AtomicBool::new(false),
            replica: uuid::Uuid::now_v7().simple().to_string(),
            barriers: settle::Barriers::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            changes: AtomicU64::new(0),
        }
    }
}

impl AccessCache {
    /// The organization with this code.
    pub async fn tenant_by_code(
        &self,
        pool: &ControlPool,
        code: &str,
    ) -> Result<Option<Arc<TenantRecord>>, DbError> {
        self.tenant_by(&self.codes, code, directory::by_code(pool, code))
            .await
    }

    /// The organization owning this verified custom domain.
    pub async fn tenant_by_domain(
        &self,
        pool: &ControlPool,
        domain: &str,
    ) -> Result<Option<Arc<TenantRecord>>, DbError> {
        self.tenant_by(
            &self.domains,
            domain,
            directory::by_verified_domain(pool, domain),
        )
        .await
    }

    /// The organization `name` maps to in `index`, else as `load` finds it
    /// (which is only awaited on a miss). Names that find nothing are not
    /// cached.
    async fn tenant_by(
        &self,
        index: &Cache<String, OrganizationId>,
        name: &str,
        load: impl Future<Output = Result<Option<TenantRecord>, DbError>>,
    ) -> Result<Option<Arc<TenantRecord>>, DbError> {
        if let Some(tenant) = self.lookup(|| self.tenants.get(&index.get(name)?)) {
            return Ok(Some(tenant));
        }
        let epoch = self.epoch();
        let Some(record) = load.await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.store(epoch, || {
            index.insert(name.to_owned(), record.id);
            self.tenants.insert(record.id, record.clone());
        });
        Ok(Some(record))
    }

    /// The organization's allow-list (empty: every address).
    pub async fn allowlist(
        &self,
        pool: &ControlPool,
        organization: OrganizationId,
    ) -> Result<Arc<AllowList>, DbError> {
        self.read_through(&self.allowlists, organization, || async {
            Ok(Arc::new(security::allowlist_of(pool, organization).await?))
        })
        .await
    }

    /// The member's current role, `None` when the membership is not active.
    pub async fn active_role(
        &self,
        pool: &ControlPool,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Option<Role>, DbError> {
        self.read_through(&self.roles, (organization, user), || {
            security::active_role(pool, organization, user)
        })
        .await
    }

    /// The live organization API key `presented` is, or `None`.
    pub async fn api_key(
        &self,
        pool: &ControlPool,
        presented: &str,
    ) -> Result<Option<Arc<ApiKey>>, DbError> {
        let digest = digest(presented);
        let now = chrono::Utc::now();
        if let Some(key) = self.lookup(|| self.api_keys.get(&digest)) {
            if key.expires_at.is_none_or(|expiry| expiry > now) {
                return Ok(Some(key));
            }
            self.api_keys.invalidate(&digest);
        }
        let epoch = self.epoch();
        let Some(key) = api_keys::verify(pool, presented).await? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        self.store(epoch, || self.api_keys.insert(digest, key.clone()));
        Ok(Some(key))
    }

    /// The id of the live operator key `presented`, or `None`.
    pub async fn operator_key(
        &self,
        pool: &ControlPool,
        presented: &str,
    ) -> Result<Option<ApiKeyId>, DbError> {
        let digest = digest(presented);
        if let Some(id) = self.lookup(|| self.operator_keys.get(&digest)) {
            return Ok(Some(id));
        }
        let epoch = self.epoch();
        let Some(id) = operator_keys::verify(pool, presented).await? else {
            return Ok(None);
        };
        self.store(epoch, || self.operator_keys.insert(digest, id));
        Ok(Some(id))
    }

    /// Drops what `change` makes stale.
    pub fn apply(&self, change: Change) {
        if matches!(change, Change::Barrier { .. } | Change::Ack { .. }) {
            return;
        }
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        self.changes.fetch_add(1, Ordering::Relaxed);
        match change {
            Change::Organization(id) => self.tenants.invalidate(&id),
            Change::Domains => self.domains.invalidate_all(),
            Change::Tiers => self.tenants.invalidate_all(),
            Change::SecuritySettings(id) => self.allowlists.invalidate(&id),
            Change::Membership(organization, user) => self.roles.invalidate(&(organization, user)),
            Change::ApiKeys => self.api_keys.invalidate_all(),
            Change::OperatorKeys => self.operator_keys.invalidate_all(),
            Change::Unknown => self.forget_everything(),
            Change::Barrier { .. } | Change::Ack { .. } => {}
        }
    }

    /// Returns once every gateway replica has applied every access change
    /// committed so far (or after a bounded wait): called after a call that
    /// may have changed access, before its caller is answered.
    pub async fn settle(&self, pool: &ControlPool) {
        self.barriers.settle(pool, &self.replica).await;
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether changes are being heard (and the caches used).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
        }
    }

    /// Changes are heard from now on: start from empty caches.
    fn go_live(&self) {
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        self.forget_everything();
        self.live.store(true, Ordering::Release);
    }

    /// Changes may be missed from now on: stop using the caches.
    fn go_dark(&self) {
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        self.live.store(false, Ordering::Release);
        self.forget_everything();
    }

    fn forget_everything(&self) {
        self.tenants.invalidate_all();
        self.codes.invalidate_all();
        self.domains.invalidate_all();
        self.allowlists.invalidate_all();
        self.roles.invalidate_all();
        self.api_keys.invalidate_all();
        self.operator_keys.invalidate_all();
    }

    fn epoch(&self) -> u64 {
        *self.epoch.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cached value, counted; never while changes may be missed.
    fn lookup<V>(&self, get: impl FnOnce() -> Option<V>) -> Option<V> {
        if !self.is_live() {
            return None;
        }
        let found = get();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Runs `insert` unless a change came since `loaded_in` or changes are
    /// not being heard.
    fn store(&self, loaded_in: u64, insert: impl FnOnce()) {
        let epoch = self.epoch.read().unwrap_or_else(PoisonError::into_inner);
        if *epoch == loaded_in && self.is_live() {
            insert();
        }
    }

    async fn read_through<K, V, F, Fut>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        load: F,
    ) -> Result<V, DbError>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, DbError>>,
    {
        if let Some(value) = self.lookup(|| cache.get(&key)) {
            return Ok(value);
        }
        let epoch = self.epoch();
        let value = load().await?;
        self.store(epoch, || cache.insert(key, value.clone()));
        Ok(value)
    }
}

fn digest(credential: &str) -> CredentialDigest {
    Sha256::digest(credential.as_bytes()).into()
}
