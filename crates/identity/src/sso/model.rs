//! Single sign-on types as callers see them. None of them carries the
//! client secret, the state's or nonce's hash, or the PKCE verifier.

use std::fmt;

use cg_context::{OrganizationId, Role};
use chrono::{DateTime, Utc};

/// What an administrator sets. Wire strings; `configure` validates them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SsoConfigInput {
    /// `https://…` (plain `http` only for loopback hosts), exactly as the
    /// provider writes it in its ID tokens' `iss`.
    pub issuer_url: String,
    pub client_id: String,
    /// `None` keeps the stored secret (required the first time).
    pub client_secret: Option<String>,
    /// DNS names; an address must end in `@` + one of them. Case is ignored.
    pub allowed_email_domains: Vec<String>,
    /// Role of members provisioned just in time: owner, admin, manager,
    /// member or viewer.
    pub default_role: String,
}

impl fmt::Debug for SsoConfigInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoConfigInput")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("allowed_email_domains", &self.allowed_email_domains)
            .field("default_role", &self.default_role)
            .finish()
    }
}

/// An organization's SSO configuration (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    pub organization_id: OrganizationId,
    pub issuer_url: String,
    pub client_id: String,
    /// Lower-case, sorted, without duplicates.
    pub allowed_email_domains: Vec<String>,
    pub default_role: Role,
    pub updated_at: DateTime<Utc>,
}

/// A started sign-in: send the browser to `authorization_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedSso {
    pub authorization_url: String,
    /// Also in the URL; the provider hands it back with the code. Kept
    /// server-side only as a hash.
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// Who signed in, as the organization's provider vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    pub organization_id: OrganizationId,
    /// Lower-cased; its domain is one of the allowed ones.
    pub email: String,
    /// The provider's `sub`: stable per person at that issuer.
    pub subject: String,
    pub issuer: String,
    pub name: Option<String>,
    /// The configuration's role for members provisioned just in time.
    pub default_role: Role,
}
