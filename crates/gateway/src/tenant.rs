//! Which organization a call names: `x-tenant`, else the subdomain of
//! `:authority` under the platform's base domain, else a custom domain.

use http::{HeaderMap, Uri};

use crate::metadata::TENANT_HEADER;

/// How the caller named its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantHint {
    /// No organization named.
    None,
    /// By organization code (`x-tenant` or subdomain).
    Code(String),
    /// By a custom domain, which must be verified.
    Domain(String),
}

/// Reads the tenant hint of a request.
pub fn hint(headers: &HeaderMap, uri: &Uri, base_domain: &str) -> TenantHint {
    if let Some(code) = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok()) {
        return TenantHint::Code(code.trim().to_owned());
    }
    let authority = uri.authority().map(|a| a.host().to_owned()).or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host).to_owned())
    });
    let Some(host) = authority else {
        return TenantHint::None;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
    {
        return TenantHint::None;
    }
    if host == base_domain {
        return TenantHint::None;
    }
    if let Some(sub) = host
        .strip_suffix(base_domain)
        .and_then(|s| s.strip_suffix('.'))
    {
        // Only a single label names a tenant: `demo.claimguardian.ai`.
        return if sub.contains('.') {
            TenantHint::None
        } else {
            TenantHint::Code(sub.to_owned())
        };
    }
    if !host.contains('.') {
        return TenantHint::None;
    }
    TenantHint::Domain(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint_of(tenant: Option<&str>, uri: &str) -> TenantHint {
        let mut headers = HeaderMap::new();
        if let Some(t) = tenant {
            headers.insert(TENANT_HEADER, t.parse().expect("valid"));
        }
        hint(
            &headers,
            &uri.parse().expect("valid uri"),
            "claimguardian.ai",
        )
    }

    #[test]
    fn resolution_order() {
        assert_eq!(
            hint_of(Some("acme"), "http://demo.claimguardian.ai/x"),
            TenantHint::Code("acme".into())
        );
        assert_eq!(
            hint_of(None, "http://demo.claimguardian.ai:443/x"),
            TenantHint::Code("demo".into())
        );
        assert_eq!(
            hint_of(None, "http://claims.acme.com/x"),
            TenantHint::Domain("claims.acme.com".into())
        );
        assert_eq!(hint_of(None, "http://127.0.0.1:50051/x"), TenantHint::None);
        assert_eq!(hint_of(None, "http://localhost:50051/x"), TenantHint::None);
        assert_eq!(hint_of(None, "http://claimguardian.ai/x"), TenantHint::None);
        assert_eq!(
            hint_of(None, "http://a.b.claimguardian.ai/x"),
            TenantHint::None
        );
    }
}
