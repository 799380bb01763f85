//! Test support: a throwaway PostgreSQL per test process, a fresh database per test cloned from a migrated template, and the whole stack on port 0.
#![forbid(unsafe_code)]

pub mod oidc;
mod postgres;
mod stack;

pub use postgres::{TestDatabase, test_database};
pub use stack::{TestStack, with_bearer};
