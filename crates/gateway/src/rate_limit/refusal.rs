//! The one error a refused call gets, whichever backend refused it.

use std::time::Duration;

use cg_proto::access::v1::RateLimitClass;
use cg_status::{ERROR_DOMAIN, reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::quota::{Limit, class_name};

/// `RESOURCE_EXHAUSTED` with the reason `RATE_LIMITED`, the wait in
/// `RetryInfo` and the limit in `QuotaFailure`.
pub(super) fn exhausted(
    org_code: &str,
    tier: &str,
    class: RateLimitClass,
    limit: Limit,
    wait: Duration,
) -> Status {
    let class = class_name(class);
    let per = limit.period.as_str();
    let description = format!(
        "the {tier} tier allows {} {class} calls per {per}",
        limit.calls
    );
    let mut details = ErrorDetails::with_error_info(
        reason::RATE_LIMITED,
        ERROR_DOMAIN,
        [
            ("organization".to_owned(), org_code.to_owned()),
            ("route_class".to_owned(), class.clone()),
            ("limit".to_owned(), limit.calls.to_string()),
            ("period".to_owned(), per.to_owned()),
        ],
    );
    // Round up: retrying after a truncated wait would be refused again.
    let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let wait = Duration::from_millis(millis.max(1));
    details.set_retry_info(Some(wait));
    details.add_quota_failure_violation(format!("organization:{org_code}:{class}"), description);
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "rate limit of {} {class} calls per {per} reached; retry in {} ms",
            limit.calls,
            wait.as_millis()
        ),
        details,
    )
}
