//! Building the entry of an action from the context of the call that did it,
//! with secrets redacted from its summary.

use cg_context::{Principal, TenantContext};
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use crate::entry::{Actor, ActorKind, NewEntry, Outcome};

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Key fragments that mark a value as secret, compared case-insensitively.
const SECRET_KEY_FRAGMENTS: [&str; 9] = [
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credential",
    "otp",
    "recovery",
    "private",
];

/// The actor of a call.
pub fn actor_of(principal: &Principal) -> Actor {
    match principal {
        Principal::Anonymous => Actor {
            kind: ActorKind::Anonymous,
            id: String::new(),
        },
        Principal::Operator { key_id } => Actor {
            kind: ActorKind::Operator,
            id: key_id.to_string(),
        },
        Principal::User { user_id } => Actor {
            kind: ActorKind::User,
            id: user_id.to_string(),
        },
        Principal::ApiKey { key_id } => Actor {
            kind: ActorKind::ApiKey,
            id: key_id.to_string(),
        },
        Principal::Service { name } => Actor {
            kind: ActorKind::Service,
            id: name.clone(),
        },
    }
}

/// The entry recording `action` on a resource, by the caller of `ctx`, in
/// the chain of `organization_id` (`None`: the platform chain).
pub fn entry_for(
    ctx: &TenantContext,
    organization_id: Option<Uuid>,
    action: &str,
    resource: (&str, &str),
    outcome: Outcome,
    summary: Value,
) -> NewEntry {
    NewEntry {
        organization_id,
        time: Utc::now(),
        actor: actor_of(&ctx.principal),
        action: action.to_owned(),
        resource_type: resource.0.to_owned(),
        resource_id: resource.1.to_owned(),
        outcome,
        request_id: ctx.request_id.to_string(),
        trace_id: ctx.client.trace_id.clone(),
        source_ip: ctx.client.ip.clone(),
        user_agent: ctx.client.user_agent.clone(),
        summary: redact(summary),
    }
}

/// Replaces the value of every key that names a secret, at any depth. A
/// summary must never carry passwords, tokens, keys or codes; this is the
/// net under the writers' own care.
pub fn redact(summary: Value) -> Value {
    match summary {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    if SECRET_KEY_FRAGMENTS.iter().any(|f| lower.contains(f)) {
                        (key, Value::String(REDACTED.to_owned()))
                    } else {
                        (key, redact(value))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let summary = json!({
            "email": "a@b.com",
            "password": "hunter2",
            "sso": {"client_secret": "s3cr3t", "issuer": "https://idp"},
            "keys": [{"api_key": "cgk_live"}],
            "refresh_token": "rt",
            "totp_otp_code": "123456",
        });
        let redacted = redact(summary);
        let text = redacted.to_string();
        for secret in ["hunter2", "s3cr3t", "cgk_live", "\"rt\"", "123456"] {
            assert!(!text.contains(secret), "{secret} survived: {text}");
        }
        assert_eq!(redacted["email"], "a@b.com");
        assert_eq!(redacted["sso"]["issuer"], "https://idp");
        assert_eq!(redacted["password"], REDACTED);
    }
}
