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
