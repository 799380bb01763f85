//! Test support: a throwaway PostgreSQL per test process, a fresh database per test cloned from a migrated template, the whole stack on port 0, and a throwaway Redis per test.
#![forbid(unsafe_code)]

pub mod oidc;
mod postgres;
mod redis;
mod stack;

pub use postgres::{TestDatabase, test_database};
pub use redis::TestRedis;
pub use stack::{TestStack, with_bearer};
