//! Second factors in the database: enrolment and confirmation of a TOTP
//! secret (sealed at rest), recovery codes (salted hashes), and checking a
//! code at sign-in with replay protection.

use cg_context::UserId;
use cg_db::DbError;
use sqlx::PgConnection;

use super::recovery::{self, StoredRecoveryCode};
use super::totp::{self, TotpError, TotpSecret};
use crate::IdentityError;
use crate::secrets::SecretBox;

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// Starts (or restarts) enrolment: a new secret, unconfirmed until a first
/// valid code. Returns the secret and its `otpauth://` URI.
pub async fn enroll(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    user: UserId,
    email: &str,
) -> Result<(TotpSecret, String), IdentityError> {
    let confirmed: Option<bool> = sqlx::query_scalar(
        "SELECT totp_confirmed_at IS NOT NULL FROM identity.users WHERE id = $1 FOR UPDATE",
    )
    .bind(user.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    match confirmed {
        None => return Err(IdentityError::NotFound("user")),
        Some(true) => {
            return Err(IdentityError::AlreadyExists(
                "two-factor authentication is already on; disable it first",
            ));
        }
        Some(false) => {}
    }
    let secret = TotpSecret::generate();
    let uri = totp::enrolment_uri(&secret, email, None)
        .map_err(|_| IdentityError::NotFound("user e-mail"))?;
    sqlx::query("UPDATE identity.users SET totp_secret_enc = $2, totp_last_step = NULL, updated_at = now() WHERE id = $1")
        .bind(user.0)
        .bind(secrets.seal(secret.as_bytes()))
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok((secret, uri))
}

/// The user's TOTP state: sealed secret, confirmed, last step.
async fn state(
    conn: &mut PgConnection,
    user: UserId,
) -> Result<(Option<Vec<u8>>, bool, Option<i64>), IdentityError> {
    sqlx::query_as(
        "SELECT totp_secret_enc, totp_confirmed_at IS NOT NULL, totp_last_step FROM identity.users WHERE id = $1 FOR UPDATE",
    )
    .bind(user.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?
    .ok_or(IdentityError::NotFound("user"))
}

/// Checks a TOTP code and records its step so it is accepted once.
async fn check_code(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    user: UserId,
    code: &str,
    confirmed: bool,
) -> Result<(), IdentityError> {
    let (sealed, is_confirmed, last_step) = state(conn, user).await?;
    let sealed = sealed.ok_or(IdentityError::MfaNotEnrolled)?;
    if is_confirmed != confirmed {
        return Err(IdentityError::MfaNotEnrolled);
    }
    let secret = secrets
        .open(&sealed)
        .ok()
        .and_then(|bytes| TotpSecret::from_bytes(bytes).ok())
        .ok_or_else(|| {
            DbError::Other("a TOTP secret cannot be opened with this secrets key".to_owned())
        })?;
    let last = last_step.and_then(|s| u64::try_from(s).ok());
    let step =
        totp::verify(&secret, code.trim(), unix_now(), last).map_err(|error| match error {
            TotpError::Replayed => IdentityError::MfaCodeReplayed,
            _ => IdentityError::MfaCodeInvalid,
        })?;
    sqlx::query("UPDATE identity.users SET totp_last_step = $2 WHERE id = $1")
        .bind(user.0)
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(())
}

/// Confirms enrolment with a first code; returns fresh recovery codes
/// (shown once; only salted hashes are kept).
pub async fn confirm(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    user: UserId,
    code: &str,
) -> Result<Vec<String>, IdentityError> {
    check_code(conn, secrets, user, code, false).await?;
    sqlx::query(
        "UPDATE identity.users SET totp_confirmed_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(user.0)
    .execute(&mut *conn)
    .await
    .map_err(DbError::from)?;
    replace_recovery_codes(conn, user).await
}

pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    user: UserId,
) -> Result<Vec<String>, IdentityError> {
    let generated = recovery::generate();
    sqlx::query("DELETE FROM identity.recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    for (position, stored) in generated.stored.iter().enumerate() {
        sqlx::query("INSERT INTO identity.recovery_codes (user_id, position, code_hash) VALUES ($1, $2, $3)")
            .bind(user.0)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .bind(stored.as_bytes())
            .execute(&mut *conn)
            .await
            .map_err(DbError::from)?;
    }
    Ok(generated.codes)
}

/// Whether the user has a confirmed second factor.
pub async fn is_enrolled(conn: &mut PgConnection, user: UserId) -> Result<bool, IdentityError> {
    Ok(
        sqlx::query_scalar(
            "SELECT totp_confirmed_at IS NOT NULL FROM identity.users WHERE id = $1",
        )
        .bind(user.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(DbError::from)?
        .unwrap_or(false),
    )
}

/// A second factor at sign-in: a TOTP code, or a recovery code (used up).
/// Returns the recovery codes left when one was used.
pub async fn verify_second_factor(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    user: UserId,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
) -> Result<Option<i64>, IdentityError> {
    if let Some(code) = totp_code {
        check_code(conn, secrets, user, code, true).await?;
        return Ok(None);
    }
    let presented = recovery_code.ok_or(IdentityError::MfaCodeInvalid)?;
    let rows: Vec<(i32, Vec<u8>)> = sqlx::query_as(
        "SELECT position, code_hash FROM identity.recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY position FOR UPDATE",
    )
    .bind(user.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::from)?;
    let stored: Vec<StoredRecoveryCode> = rows
        .iter()
        .filter_map(|(_, hash)| StoredRecoveryCode::from_bytes(hash))
        .collect();
    let index =
        recovery::verify_and_consume(presented, &stored).ok_or(IdentityError::MfaCodeInvalid)?;
    let position = rows
        .get(index)
        .map(|(p, _)| *p)
        .ok_or(IdentityError::MfaCodeInvalid)?;
    sqlx::query("UPDATE identity.recovery_codes SET used_at = now() WHERE user_id = $1 AND position = $2 AND used_at IS NULL")
        .bind(user.0)
        .bind(position)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(Some(i64::try_from(rows.len()).unwrap_or(1) - 1))
}

/// Turns the second factor off: secret and recovery codes are deleted.
pub async fn disable(conn: &mut PgConnection, user: UserId) -> Result<(), IdentityError> {
    sqlx::query(
        "UPDATE identity.users SET totp_secret_enc = NULL, totp_confirmed_at = NULL, totp_last_step = NULL, \
         updated_at = now() WHERE id = $1",
    )
    .bind(user.0)
    .execute(&mut *conn)
    .await
    .map_err(DbError::from)?;
    sqlx::query("DELETE FROM identity.recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(())
}
