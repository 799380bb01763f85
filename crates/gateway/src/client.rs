//! Who is on the other end of a call, for the audit trail: the peer
//! address, the user agent, and the W3C trace id.

use cg_context::ClientInfo;
use http::Request;
use tonic::transport::server::TcpConnectInfo;

use cg_identity::allowlist::{TrustedProxies, canonical_ip, client_address_from_headers};

/// Longest user agent kept; the rest is cut.
const MAX_USER_AGENT: usize = 256;

/// The client of a request as the gateway sees it: the peer, or the
/// right-most untrusted `X-Forwarded-For` hop when the peer is a trusted proxy.
pub fn client_info<B>(request: &Request<B>, trusted: &TrustedProxies) -> ClientInfo {
    let ip = request
        .extensions()
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|addr| {
            client_address_from_headers(canonical_ip(addr.ip()), request.headers(), trusted)
                .to_string()
        })
        .unwrap_or_default();
    let user_agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect())
        .unwrap_or_default();
    let trace_id = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of)
        .unwrap_or_default();
    ClientInfo {
        ip,
        user_agent,
        trace_id,
    }
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id != "0".repeat(32)
        && hex(parent_id, 16)
        && hex(flags, 2);
    valid.then(|| trace_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_only_from_valid_traceparents() {
        assert_eq!(
            trace_id_of("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
            None
        );
        assert_eq!(
            trace_id_of("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"),
            None
        );
        assert_eq!(trace_id_of("garbage"), None);
    }
}
