//! OpenID Connect single sign-on per organization, with the `openidconnect`
//! crate: configuration (client secret sealed with the secrets key),
//! starting a sign-in (authorization code flow, PKCE S256, state and nonce
//! kept server-side as hashes for ten minutes) and completing it (single-use
//! state, code exchange, ID token validation, e-mail domain check).
//!
//! Provisioning memberships and issuing our own tokens is the caller's: this
//! module only says who the provider vouched for.

mod error;
mod flow;
mod model;
mod provider;
mod repository;
mod validate;

use std::time::Duration;

use cg_context::OrganizationId;
use cg_db::ControlPool;
use cg_status::FieldViolations;

pub use error::SsoError;
pub use flow::{complete, start};
pub use model::{SsoConfig, SsoConfigInput, SsoIdentity, StartedSso};
pub use provider::SsoClient;

use crate::secrets::SecretBox;

/// How long a started sign-in may be completed.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

/// Creates or replaces `org`'s configuration. Without `client_secret` the
/// stored one is kept (an error the first time). One statement, so `db` may
/// be the pool or the caller's transaction (e.g. with its audit entry).
pub async fn configure(
    db: impl sqlx::PgExecutor<'_>,
    secrets: &SecretBox,
    org: OrganizationId,
    input: SsoConfigInput,
) -> Result<SsoConfig, SsoError> {
    let config = validate::config(input)?;
    match &config.client_secret {
        Some(secret) => {
            let sealed = secrets.seal(secret.as_bytes());
            Ok(repository::save_with_secret(db, org, &config, &sealed).await?)
        }
        None => repository::update_keeping_secret(db, org, &config)
            .await?
            .ok_or_else(|| {
                FieldViolations::single(
                    "client_secret",
                    "required when single sign-on is first configured",
                )
                .into()
            }),
    }
}

/// `org`'s configuration, if any (never its secret).
pub async fn get(
    db: impl sqlx::PgExecutor<'_>,
    org: OrganizationId,
) -> Result<Option<SsoConfig>, SsoError> {
    Ok(repository::find(db, org).await?)
}

/// Deletes sign-ins that expired more than `grace` ago; returns how many.
pub async fn purge_expired(pool: &ControlPool, grace: Duration) -> Result<u64, SsoError> {
    Ok(repository::delete_expired_logins(pool, grace).await?)
}
