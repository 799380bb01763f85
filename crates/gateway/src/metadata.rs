//! Metadata the gateway reads, strips and adds.

use http::HeaderMap;

/// Client-supplied entries with this prefix are internal and always dropped.
pub const INTERNAL_PREFIX: &str = "x-cg-";
pub const TENANT_HEADER: &str = "x-tenant";
pub const AUTHORIZATION: &str = "authorization";

/// Removes every `x-cg-*` entry and the caller's credentials: services
/// trust only the context token the gateway adds, and never see secrets.
pub fn strip_untrusted(headers: &mut HeaderMap) {
    let internal: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(INTERNAL_PREFIX))
        .cloned()
        .collect();
    for name in internal {
        headers.remove(name);
    }
    headers.remove(AUTHORIZATION);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_entries_and_credentials_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("x-cg-context", "forged".parse().expect("valid"));
        headers.insert("x-cg-anything", "x".parse().expect("valid"));
        headers.insert("authorization", "Bearer secret".parse().expect("valid"));
        headers.insert("x-tenant", "demo".parse().expect("valid"));
        headers.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .expect("valid"),
        );
        strip_untrusted(&mut headers);
        assert!(headers.get("x-cg-context").is_none());
        assert!(headers.get("x-cg-anything").is_none());
        assert!(headers.get("authorization").is_none());
        assert!(headers.get("x-tenant").is_some());
        assert!(headers.get("traceparent").is_some());
    }
}
