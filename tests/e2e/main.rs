//! End-to-end suites: every service and the gateway on loopback gRPC over a
//! real PostgreSQL, one database per test.

mod assertions;
mod context_token;
mod fixtures;
mod isolation;
mod migrations;
mod organizations;
mod policy;
mod row_level_security;
mod tenant_resolution;
