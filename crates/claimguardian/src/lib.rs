//! The ClaimGuardian platform: assembling the services and the gateway into servers, database set-up and the demo.
#![forbid(unsafe_code)]

pub mod audit_keys;
pub mod database;
pub mod demo;
pub mod platform;
pub mod secrets_key;
