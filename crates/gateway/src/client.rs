//! Who is on the other end of a call, for the audit trail: the peer
//! address, the user agent, and the call's trace id.

use cg_context::ClientInfo;
use http::Request;
use tonic::transport::server::TcpConnectInfo;

use cg_identity::allowlist::{TrustedProxies, canonical_ip, client_address_from_headers};

/// Longest user agent kept; the rest is cut.
const MAX_USER_AGENT: usize = 256;

/// The client of a request as the gateway sees it: the peer, or the
/// right-most untrusted `X-Forwarded-For` hop when the peer is a trusted proxy;
/// `trace_id` is the call's (the client's when it sent a `traceparent`).
pub fn client_info<B>(
    request: &Request<B>,
    trusted: &TrustedProxies,
    trace_id: Option<String>,
) -> ClientInfo {
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
    ClientInfo {
        ip,
        user_agent,
        trace_id: trace_id.unwrap_or_default(),
    }
}
