//! The gateway's access caches against a real PostgreSQL: served from
//! memory once read, and dropped the moment PostgreSQL says the row changed,
//! whoever changed it, even straight in SQL; missed changes while the feed
//! is down never leave a stale entry behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cg_gateway::access_cache::{self, AccessCache};
use cg_testkit::TestStack;

use crate::fixtures::create_enterprise;

/// Polls `condition` for up to five seconds.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn suspended(cache: &AccessCache, stack: &TestStack) -> bool {
    cache
        .tenant_by_code(&stack.control, "cached")
        .await
        .expect("read")
        .expect("the organization exists")
        .suspended
}

async fn set_status(stack: &TestStack, status: &str) {
    sqlx::query("UPDATE tenancy.organizations SET status = $1 WHERE code = 'cached'")
        .bind(status)
        .execute(&stack.control)
        .await
        .expect("update straight in SQL");
}

#[tokio::test]
async fn cached_admission_data_is_dropped_when_postgresql_says_it_changed() {
    let stack = TestStack::spawn().await;
    let organization = create_enterprise(&stack, "cached").await;
    let org_id = cg_context::OrganizationId(organization.id.parse().expect("uuid"));
    let cache = Arc::new(AccessCache::default());
    let listener = tokio::spawn(access_cache::follow(stack.control.clone(), cache.clone()));
    eventually("the cache hears changes", async || cache.is_live()).await;

    // Read once, then served from memory: the same record, a hit.
    let first = cache
        .tenant_by_code(&stack.control, "cached")
        .await
        .expect("read")
        .expect("exists");
    let again = cache
        .tenant_by_code(&stack.control, "cached")
        .await
        .expect("read")
        .expect("exists");
    assert!(Arc::ptr_eq(&first, &again), "the second read is cached");
    assert_eq!(cache.stats().hits, 1);
    assert!(
        cache
            .tenant_by_code(&stack.control, "nobody")
            .await
            .expect("read")
            .is_none()
    );

    // A suspension made in SQL, bypassing every service, still reaches it.
    set_status(&stack, "suspended").await;
    eventually("the suspension is seen", async || {
        suspended(&cache, &stack).await
    })
    .await;

    // An allow-list change drops the cached list.
    let open = cache.allowlist(&stack.control, org_id).await.expect("read");
    assert!(open.is_empty());
    sqlx::query(
        "INSERT INTO identity.security_settings (organization_id, ip_allowlist) VALUES ($1, '{203.0.113.0/24}') \
         ON CONFLICT (organization_id) DO UPDATE SET ip_allowlist = EXCLUDED.ip_allowlist",
    )
    .bind(org_id.0)
    .execute(&stack.control)
    .await
    .expect("allow-list in SQL");
    eventually("the allow-list is seen", async || {
        !cache
            .allowlist(&stack.control, org_id)
            .await
            .expect("read")
            .is_empty()
    })
    .await;

    // A payload nobody knows forgets everything.
    let changes = cache.stats().changes;
    sqlx::query("SELECT pg_notify('cg_access', 'billing.something:else')")
        .execute(&stack.control)
        .await
        .expect("notify");
    eventually("the unknown change is applied", async || {
        cache.stats().changes > changes
    })
    .await;
    let misses = cache.stats().misses;
    suspended(&cache, &stack).await;
    assert_eq!(cache.stats().misses, misses + 1, "read again after a flush");

    // Two replicas: once `settle` returns on one, the other has applied
    // a change committed just before, without any waiting of its own.
    set_status(&stack, "active").await;
    let other = Arc::new(AccessCache::default());
    let other_listener = tokio::spawn(access_cache::follow(stack.control.clone(), other.clone()));
    eventually("the second replica hears changes", async || other.is_live()).await;
    assert!(!suspended(&other, &stack).await);
    assert!(!suspended(&other, &stack).await, "cached");
    let before = other.stats();
    set_status(&stack, "suspended").await;
    cache.settle(&stack.control).await;
    assert!(other.stats().changes > before.changes, "settled");
    assert!(
        suspended(&other, &stack).await,
        "seen on the very next read"
    );
    other_listener.abort();
    eventually("suspended for the first replica too", async || {
        suspended(&cache, &stack).await
    })
    .await;

    // The feed is cut, and the organization reactivated while nobody
    // listens: the caches do not keep the suspension.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(&stack.control)
    .await
    .expect("cut the feed");
    set_status(&stack, "active").await;
    eventually("the reactivation is seen", async || {
        !suspended(&cache, &stack).await
    })
    .await;
    eventually("the cache hears changes again", async || cache.is_live()).await;
    listener.abort();
}
