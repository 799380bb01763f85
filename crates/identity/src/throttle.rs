//! Sign-in throttling, per account and per source address: after too many
//! failures in a window, every attempt is refused until the lock ends, even
//! with the right password, so guessing cannot go on in the background.

use std::time::Duration;

use cg_db::{ControlPool, DbError};

/// A throttled subject and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures: i32,
    pub window: Duration,
    pub lock: Duration,
}

/// Per account: 5 failures in 15 minutes lock it for 15 minutes.
pub const ACCOUNT: Limit = Limit {
    failures: 5,
    window: Duration::from_secs(900),
    lock: Duration::from_secs(900),
};
/// Per source address: 20 failures in 15 minutes lock it for 15 minutes.
pub const ADDRESS: Limit = Limit {
    failures: 20,
    window: Duration::from_secs(900),
    lock: Duration::from_secs(900),
};

/// How long `subject` stays locked, if it is.
pub async fn locked_for(pool: &ControlPool, subject: &str) -> Result<Option<Duration>, DbError> {
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM locked_until - now())::float8 FROM identity.login_failures \
         WHERE subject = $1 AND locked_until > now()",
    )
    .bind(subject)
    .fetch_optional(pool)
    .await?;
    Ok(remaining.map(|seconds| Duration::from_secs_f64(seconds.max(1.0))))
}

/// Records a failure; locks the subject when it reaches the limit.
pub async fn record_failure(
    pool: &ControlPool,
    subject: &str,
    limit: Limit,
) -> Result<(), DbError> {
    let window = limit.window.as_secs_f64();
    let lock = limit.lock.as_secs_f64();
    sqlx::query(
        "INSERT INTO identity.login_failures AS f (subject, failures, window_start) VALUES ($1, 1, now()) \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = CASE WHEN f.window_start < now() - make_interval(secs => $2) THEN 1 ELSE f.failures + 1 END, \
           window_start = CASE WHEN f.window_start < now() - make_interval(secs => $2) THEN now() ELSE f.window_start END",
    )
    .bind(subject)
    .bind(window)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE identity.login_failures SET locked_until = now() + make_interval(secs => $3), failures = 0, window_start = now() \
         WHERE subject = $1 AND failures >= $2",
    )
    .bind(subject)
    .bind(limit.failures)
    .bind(lock)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the failures of `subject` (after a successful sign-in).
pub async fn clear(pool: &ControlPool, subject: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM identity.login_failures WHERE subject = $1 AND (locked_until IS NULL OR locked_until <= now())")
        .bind(subject)
        .execute(pool)
        .await?;
    Ok(())
}

pub fn account_subject(organization_code: &str, email: &str) -> String {
    format!("account:{organization_code}:{email}")
}

pub fn address_subject(ip: &str) -> String {
    format!("address:{ip}")
}
