//! Page sizes and opaque keyset page tokens for List methods.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_status::FieldViolations;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// The page size asked for, defaulted and capped.
pub fn page_size(requested: i32) -> Result<i64, FieldViolations> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(FieldViolations::single("page_size", "must not be negative")),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Encodes the key after which the next page starts.
pub fn encode(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

/// Ends a page fetched with `limit + 1` rows: drops the extra row and
/// returns the token of the next page (empty when this is the last).
pub fn finish_page<T>(items: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> String {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| encode(&key(last)))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// Decodes a page token; empty means the first page.
pub fn decode(token: &str) -> Result<Option<String>, FieldViolations> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| FieldViolations::single("page_token", "is not a token this service issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_with_a_token_only_when_more_rows_follow() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(finish_page(&mut rows, 2, |r| r.to_string()), encode("2"));
        assert_eq!(rows, [1, 2]);
        let mut last = vec![1, 2];
        assert_eq!(finish_page(&mut last, 2, |r| r.to_string()), "");
        assert_eq!(decode(&encode("2")).ok().flatten().as_deref(), Some("2"));
        assert!(decode("!!").is_err());
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(10_000).ok(), Some(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }
}
