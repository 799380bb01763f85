//! End-to-end suites: every service and the gateway on loopback gRPC over a
//! real PostgreSQL, one database per test.

mod access_cache;
mod assertions;
mod audit_retention;
mod audit_trail;
mod context_token;
mod feature_gating;
mod fixtures;
mod identity;
mod identity_fixtures;
mod isolation;
mod isolation_matrix;
mod mail;
mod migrations;
mod organizations;
mod policy;
mod rate_limits;
mod raw_call;
mod row_level_security;
mod sso;
mod tenant_resolution;
