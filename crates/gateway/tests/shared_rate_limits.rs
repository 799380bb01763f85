//! Rate limits kept in a real Redis server: the GCRA script's burst and
//! refill, keys that expire with the allowance, one limit shared by two
//! limiters (as by two gateway replicas), and the in-process fallback while
//! Redis is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cg_gateway::{Limit, Period, RateLimitStore, RateLimits, RedisStore, redis_key};
use cg_proto::access::v1::RateLimitClass;
use cg_testkit::TestRedis;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

fn shared(redis: &TestRedis, table: impl Fn(&str, RateLimitClass) -> Limit) -> RateLimits {
    let store = RedisStore::connect_lazy(&redis.url()).expect("a valid Redis URL");
    RateLimits::with_store_and_table(RateLimitStore::Redis(store), table)
}

fn per_minute(calls: u32) -> impl Fn(&str, RateLimitClass) -> Limit {
    move |_, _| Limit {
        calls,
        period: Period::Minute,
    }
}

async fn raw_connection(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis")
}

fn retry_delay(status: &Status) -> Duration {
    status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo")
}

/// Asserts the refusal every backend gives, and returns its retry delay.
fn assert_rate_limited(status: &Status, code: &str, class: &str, limit: u32) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata["organization"], code);
    assert_eq!(info.metadata["route_class"], class);
    assert_eq!(info.metadata["limit"], limit.to_string());
    let quota = details.quota_failure().expect("QuotaFailure");
    assert_eq!(quota.violations.len(), 1);
    assert_eq!(
        quota.violations[0].subject,
        format!("organization:{code}:{class}")
    );
    let delay = retry_delay(status);
    assert!(delay > Duration::ZERO, "retry delay {delay:?}");
    delay
}

#[tokio::test]
async fn redis_admits_a_burst_of_the_limit_then_one_call_per_interval() {
    let redis = TestRedis::start();
    // 60 a minute: a burst of 60, then one call a second.
    let limits = shared(&redis, per_minute(60));
    let org = Uuid::now_v7();
    let check = || limits.check(org, "acme", "standard", RateLimitClass::Write);

    for call in 1..=60 {
        check()
            .await
            .unwrap_or_else(|status| panic!("call {call} of 60 was refused: {status:?}"));
    }
    let refused = check().await.expect_err("the 61st call at once is refused");
    let delay = assert_rate_limited(&refused, "acme", "write", 60);
    assert!(delay <= Duration::from_secs(1), "retry delay {delay:?}");

    // After the advertised wait exactly one more call is admitted.
    tokio::time::sleep(delay + Duration::from_millis(20)).await;
    check()
        .await
        .expect("admitted after waiting the retry delay");
    let again = check().await.expect_err("and then refused again");
    assert_rate_limited(&again, "acme", "write", 60);
}

#[tokio::test]
async fn two_limiters_on_one_redis_admit_exactly_one_limit_between_them() {
    let redis = TestRedis::start();
    // Two replicas, each with its own connection; the Standard export
    // limit (30 an hour, one call back every two minutes) makes the count
    // exact whatever the machine's speed.
    let replicas = [
        Arc::new(RateLimits::new(RateLimitStore::Redis(
            RedisStore::connect_lazy(&redis.url()).expect("url"),
        ))),
        Arc::new(RateLimits::new(RateLimitStore::Redis(
            RedisStore::connect_lazy(&redis.url()).expect("url"),
        ))),
    ];
    let org = Uuid::now_v7();
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..60 {
        let replica = replicas[call % 2].clone();
        calls.spawn(async move {
            replica
                .check(org, "shared", "standard", RateLimitClass::Export)
                .await
        });
    }
    let mut admitted = 0;
    let mut refused = Vec::new();
    while let Some(answer) = calls.join_next().await {
        match answer.expect("task") {
            Ok(()) => admitted += 1,
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(admitted, 30, "the Standard tier's 30 export calls per hour");
    assert_eq!(refused.len(), 30);
    for status in &refused {
        let delay = assert_rate_limited(status, "shared", "export", 30);
        assert!(delay <= Duration::from_secs(120), "retry delay {delay:?}");
    }

    // A third replica starting later sees the same spent allowance.
    let late = RateLimits::new(RateLimitStore::Redis(
        RedisStore::connect_lazy(&redis.url()).expect("url"),
    ));
    let status = late
        .check(org, "shared", "standard", RateLimitClass::Export)
        .await
        .expect_err("the allowance is spent for every replica");
    assert_rate_limited(&status, "shared", "export", 30);
}

#[tokio::test]
async fn an_upgrade_starts_from_the_new_tiers_full_allowance_as_in_process() {
    let redis = TestRedis::start();
    let limits = RateLimits::new(RateLimitStore::Redis(
        RedisStore::connect_lazy(&redis.url()).expect("url"),
    ));
    let org = Uuid::now_v7();
    for _ in 0..50 {
        limits
            .check(org, "acme", "standard", RateLimitClass::Ai)
            .await
            .expect("within the Standard AI limit");
    }
    let refused = limits
        .check(org, "acme", "standard", RateLimitClass::Ai)
        .await
        .expect_err("the 51st AI call in the hour");
    assert_rate_limited(&refused, "acme", "ai", 50);
    for call in 1..=200 {
        limits
            .check(org, "acme", "professional", RateLimitClass::Ai)
            .await
            .unwrap_or_else(|status| panic!("Professional AI call {call}: {status:?}"));
    }
    let refused = limits
        .check(org, "acme", "professional", RateLimitClass::Ai)
        .await
        .expect_err("the 201st");
    assert_rate_limited(&refused, "acme", "ai", 200);
}

#[tokio::test]
async fn keys_hold_the_server_clock_and_expire_when_the_allowance_is_full_again() {
    let redis = TestRedis::start();
    let mut raw = raw_connection(&redis).await;

    // Ten calls at 60 a minute run the arrival time ten seconds ahead of
    // the server's clock; the key lives exactly until then.
    let limits = shared(&redis, per_minute(60));
    let org = Uuid::now_v7();
    for _ in 0..10 {
        limits
            .check(org, "acme", "standard", RateLimitClass::Read)
            .await
            .expect("within the burst");
    }
    let key = redis_key(org, "standard", RateLimitClass::Read);
    assert_eq!(key, format!("cg:rl:{org}:read:standard"));
    let (seconds, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut raw)
        .await
        .expect("TIME");
    let server_now = seconds * 1_000_000 + micros;
    let stored: u64 = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("the arrival time is stored as integer microseconds");
    let ahead = stored.abs_diff(server_now + 10_000_000);
    assert!(
        ahead < 1_000_000,
        "stored {stored}, server clock {server_now}"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("PTTL");
    assert!((9_000..=10_000).contains(&ttl), "key TTL {ttl} ms");

    // A thousand organizations calling once at 60,000 a minute are back to
    // a full allowance a millisecond later, and their keys go with it.
    let busy = shared(&redis, per_minute(60_000));
    for _ in 0..1_000 {
        busy.check(Uuid::now_v7(), "org", "enterprise", RateLimitClass::Read)
            .await
            .expect("admitted");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys: u64 = redis::cmd("DBSIZE")
            .query_async(&mut raw)
            .await
            .expect("DBSIZE");
        // The first organization's key lives ten seconds.
        if keys <= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{keys} keys left ten seconds after the last call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert!(
        exists,
        "the busy organization's key is still within its TTL"
    );
}

#[tokio::test]
async fn while_redis_is_down_each_replica_enforces_the_limit_itself_then_shares_again() {
    let mut redis = TestRedis::start();
    let limits = RateLimits::new(RateLimitStore::Redis(
        RedisStore::connect_lazy(&redis.url()).expect("url"),
    ));
    let org = Uuid::now_v7();
    let check = || limits.check(org, "acme", "standard", RateLimitClass::Export);
    for _ in 0..5 {
        check().await.expect("admitted through Redis");
    }
    let mut raw = raw_connection(&redis).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(redis_key(org, "standard", RateLimitClass::Export))
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert!(exists, "the decision was taken in Redis");

    redis.stop();
    // Neither every call refused nor every call admitted: the replica's own
    // limiter gives the tier's 30 export calls, then refuses, and no call
    // waits on the dead server.
    let started = Instant::now();
    let mut admitted = 0;
    let refused = loop {
        match check().await {
            Ok(()) => admitted += 1,
            Err(status) => break status,
        }
        assert!(
            admitted <= 30,
            "more than the limit admitted during the outage"
        );
    };
    assert_eq!(admitted, 30);
    let delay = assert_rate_limited(&refused, "acme", "export", 30);
    assert!(delay <= Duration::from_secs(120), "retry delay {delay:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "31 calls during the outage took {:?}",
        started.elapsed()
    );

    // Once Redis is back (empty, as after a crash), decisions go to it
    // again: a new organization's call leaves its key there.
    redis.restart();
    let mut raw = raw_connection(&redis).await;
    let other = Uuid::now_v7();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        limits
            .check(other, "other", "standard", RateLimitClass::Export)
            .await
            .expect("admitted");
        let shared: bool = redis::cmd("EXISTS")
            .arg(redis_key(other, "standard", RateLimitClass::Export))
            .query_async(&mut raw)
            .await
            .expect("EXISTS");
        if shared {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "decisions never returned to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted server knows nothing of the first organization: its
    // allowance starts over there, the price of a server without state.
    check()
        .await
        .expect("a fresh allowance in the restarted Redis");
}

#[tokio::test]
async fn a_replica_whose_redis_never_answered_still_limits_calls() {
    // A port nobody listens on: the gateway starts anyway.
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let store = RedisStore::connect_lazy(&format!("redis://127.0.0.1:{nobody}")).expect("url");
    assert_eq!(store.address(), format!("127.0.0.1:{nobody}"));
    let limits = RateLimits::new(RateLimitStore::Redis(store));
    let org = Uuid::now_v7();
    let mut admitted = 0;
    let refused = loop {
        match limits
            .check(org, "acme", "standard", RateLimitClass::Export)
            .await
        {
            Ok(()) => admitted += 1,
            Err(status) => break status,
        }
        assert!(admitted <= 30, "more than the limit admitted");
    };
    assert_eq!(admitted, 30);
    assert_rate_limited(&refused, "acme", "export", 30);
}

#[test]
fn a_malformed_redis_url_is_refused_at_start_up_without_echoing_it() {
    let error =
        RedisStore::connect_lazy("http://:secret@127.0.0.1:6379").expect_err("not a redis:// URL");
    let text = format!("{error:#}");
    assert!(text.contains("rate-limit Redis URL"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
