//! Input checks: configuration fields, redirect URIs, and the e-mail
//! address an ID token asserts.

use std::net::IpAddr;

use cg_context::Role;
use cg_status::FieldViolations;
use openidconnect::url::{Host, Url};

use super::model::SsoConfigInput;

const MAX_URL: usize = 2048;
const MAX_CLIENT_ID: usize = 255;
const MAX_CLIENT_SECRET: usize = 1024;
const MAX_DOMAINS: usize = 50;

/// A configuration that passed every check.
#[derive(Debug)]
pub(crate) struct ValidConfig {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub allowed_email_domains: Vec<String>,
    pub default_role: Role,
}

pub(crate) fn config(input: SsoConfigInput) -> Result<ValidConfig, FieldViolations> {
    let mut violations = FieldViolations::new();

    let issuer_url = input.issuer_url.trim().to_owned();
    if let Err(why) = issuer(&issuer_url) {
        violations.add("issuer_url", why);
    }

    let client_id = input.client_id.trim().to_owned();
    if client_id.is_empty() {
        violations.add("client_id", "required");
    } else if client_id.len() > MAX_CLIENT_ID || client_id.chars().any(char::is_control) {
        violations.add(
            "client_id",
            format!("at most {MAX_CLIENT_ID} printable characters"),
        );
    }

    if let Some(secret) = &input.client_secret {
        if secret.is_empty() {
            violations.add(
                "client_secret",
                "must not be empty (leave it unset to keep the stored one)",
            );
        } else if secret.len() > MAX_CLIENT_SECRET || secret.chars().any(char::is_control) {
            violations.add(
                "client_secret",
                format!("at most {MAX_CLIENT_SECRET} printable characters"),
            );
        }
    }

    let mut domains = Vec::with_capacity(input.allowed_email_domains.len());
    if input.allowed_email_domains.is_empty() {
        violations.add(
            "allowed_email_domains",
            "at least one domain: without one anybody the provider knows could join",
        );
    } else if input.allowed_email_domains.len() > MAX_DOMAINS {
        violations.add(
            "allowed_email_domains",
            format!("at most {MAX_DOMAINS} domains"),
        );
    }
    for (index, domain) in input.allowed_email_domains.iter().enumerate() {
        let domain = domain.trim().to_ascii_lowercase();
        if is_dns_name(&domain) {
            domains.push(domain);
        } else {
            violations.add(
                format!("allowed_email_domains[{index}]"),
                "must be a DNS name such as example.com",
            );
        }
    }
    domains.sort();
    domains.dedup();

    let default_role = Role::parse(input.default_role.trim());
    if default_role.is_none() {
        violations.add(
            "default_role",
            "must be one of owner, admin, manager, member, viewer",
        );
    }

    violations.check()?;
    Ok(ValidConfig {
        issuer_url,
        client_id,
        client_secret: input.client_secret,
        allowed_email_domains: domains,
        default_role: default_role.unwrap_or(Role::Viewer),
    })
}

/// `https`, or `http` for a loopback host only; no credentials, query or
/// fragment (discovery appends `/.well-known/openid-configuration`).
fn issuer(url: &str) -> Result<(), &'static str> {
    if url.is_empty() {
        return Err("required");
    }
    if url.len() > MAX_URL {
        return Err("too long");
    }
    let parsed = Url::parse(url).map_err(|_| "must be an absolute URL")?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => return Err("must use https (plain http only for loopback hosts)"),
        _ => return Err("must be an https URL"),
    }
    if parsed.host().is_none() {
        return Err("must name a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A lower-case DNS name of at least two labels: letters, digits and
/// inner hyphens, labels of 1 to 63 characters, 253 in all.
pub(crate) fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Where the provider sends the browser back: an absolute http(s) URL
/// without fragment. Whether it is registered is the provider's check.
pub(crate) fn redirect_uri(uri: &str) -> Result<Url, FieldViolations> {
    let invalid = |why: &str| FieldViolations::single("redirect_uri", why);
    if uri.is_empty() {
        return Err(invalid("required"));
    }
    if uri.len() > MAX_URL {
        return Err(invalid("too long"));
    }
    let parsed = Url::parse(uri).map_err(|_| invalid("must be an absolute URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return Err(invalid("must be an http(s) URL"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("must not have a fragment"));
    }
    Ok(parsed)
}

/// The e-mail address lower-cased, if it is one and its domain is allowed.
pub(crate) enum EmailCheck {
    Allowed(String),
    Malformed,
    DomainNotAllowed,
}

pub(crate) fn email(address: &str, allowed_domains: &[String]) -> EmailCheck {
    let address = address.trim().to_lowercase();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return EmailCheck::Malformed;
    };
    if local.is_empty() || local.contains('@') || !is_dns_name(domain) {
        return EmailCheck::Malformed;
    }
    if allowed_domains.iter().any(|allowed| allowed == domain) {
        EmailCheck::Allowed(address)
    } else {
        EmailCheck::DomainNotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SsoConfigInput {
        SsoConfigInput {
            issuer_url: "https://login.example.com/tenant".into(),
            client_id: "claimguardian".into(),
            client_secret: Some("s3cret".into()),
            allowed_email_domains: vec!["Example.COM".into(), "example.com".into()],
            default_role: "member".into(),
        }
    }

    fn fields(result: Result<ValidConfig, FieldViolations>) -> Vec<String> {
        result
            .expect_err("invalid")
            .fields()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_good_configuration_is_normalised() {
        let valid = config(input()).expect("valid");
        assert_eq!(valid.allowed_email_domains, vec!["example.com"]);
        assert_eq!(valid.default_role, Role::Member);
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        for ok in [
            "https://idp.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:9000/realms/x",
            "http://localhost:3000",
        ] {
            assert_eq!(issuer(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "idp.example.com",
            "http://idp.example.com",
            "http://10.0.0.1",
            "ftp://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#f",
        ] {
            assert!(issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let bad = SsoConfigInput {
            issuer_url: "http://idp.example.com".into(),
            client_id: " ".into(),
            client_secret: Some(String::new()),
            allowed_email_domains: vec!["example".into(), "ex ample.com".into(), "-a.com".into()],
            default_role: "superuser".into(),
        };
        assert_eq!(
            fields(config(bad)),
            [
                "issuer_url",
                "client_id",
                "client_secret",
                "allowed_email_domains[0]",
                "allowed_email_domains[1]",
                "allowed_email_domains[2]",
                "default_role"
            ]
        );
        let none = SsoConfigInput {
            allowed_email_domains: vec![],
            ..input()
        };
        assert_eq!(fields(config(none)), ["allowed_email_domains"]);
    }

    #[test]
    fn email_domains_match_exactly() {
        let allowed = vec!["example.com".to_owned()];
        assert!(matches!(
            email("Alice@Example.com", &allowed),
            EmailCheck::Allowed(a) if a == "alice@example.com"
        ));
        for outside in [
            "alice@sub.example.com",
            "alice@example.com.evil.io",
            "alice@exampleXcom",
        ] {
            assert!(
                !matches!(email(outside, &allowed), EmailCheck::Allowed(_)),
                "{outside}"
            );
        }
        for malformed in ["", "alice", "@example.com", "a@b@example.com", "alice@"] {
            assert!(
                matches!(email(malformed, &allowed), EmailCheck::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn redirect_uris_are_absolute_http() {
        assert!(redirect_uri("https://app.example.com/sso/callback").is_ok());
        for bad in [
            "",
            "/sso/callback",
            "javascript:alert(1)",
            "https://a.example/#x",
        ] {
            assert!(redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
