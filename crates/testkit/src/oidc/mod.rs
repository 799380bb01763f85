//! OpenID providers for SSO tests, run with Node from `tests/oidc/` (a real
//! `oidc-provider`, and a provider that mints bad tokens on purpose), and a
//! minimal browser that follows redirects and submits forms over HTTP.

pub mod browser;
pub mod provider;

pub use browser::{Browser, Callback};
pub use provider::{ClientRegistration, NodeProvider};
