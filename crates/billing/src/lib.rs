//! Price book, usage ledger, limits and invoices.
#![forbid(unsafe_code)]

use cg_proto::billing::v1::billing_service_server::BillingService;

/// The billing gRPC service. Every method answers `UNIMPLEMENTED` until the
/// billing issue builds it.
#[derive(Debug, Default)]
pub struct BillingGrpc;

impl BillingService for BillingGrpc {}
