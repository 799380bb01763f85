//! The browser leg of a sign-in, over HTTP: follow the provider's redirects
//! one by one, keep its cookies, submit the login and consent forms, and
//! stop at the redirect back to the relying party.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url, header};

/// Most requests one sign-in may take.
const MAX_STEPS: usize = 20;

#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// name → value. The providers are on one loopback origin, so every
    /// cookie goes with every request (paths are not honoured; harmless here).
    cookies: BTreeMap<String, String>,
    /// Every request made, for failure messages.
    pub trail: Vec<String>,
}

/// Where the provider sent the browser back.
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: Url,
}

impl Callback {
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    pub fn code(&self) -> String {
        self.param("code")
            .unwrap_or_else(|| panic!("no code in {}", self.url))
    }

    pub fn state(&self) -> String {
        self.param("state")
            .unwrap_or_else(|| panic!("no state in {}", self.url))
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            cookies: BTreeMap::new(),
            trail: Vec::new(),
        }
    }

    /// Opens `start` and goes on until a redirect to `redirect_uri`,
    /// signing in as `login` when asked and consenting when asked.
    pub async fn sign_in(&mut self, start: &str, redirect_uri: &str, login: &str) -> Callback {
        let mut url = Url::parse(start).expect("absolute start URL");
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..MAX_STEPS {
            let method = if form.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            self.trail.push(format!("{method} {url}"));
            let mut request = self.http.request(method, url.clone());
            if !self.cookies.is_empty() {
                let jar = self
                    .cookies
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                request = request.header(header::COOKIE, jar);
            }
            if let Some(fields) = form.take() {
                request = request.form(&fields);
            }
            let response = request.send().await.expect("request to the provider");
            self.keep_cookies(&response);
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_else(|| {
                        panic!("{status} without Location; trail {:#?}", self.trail)
                    });
                let next = url.join(location).expect("Location resolves");
                if next.as_str().starts_with(redirect_uri) {
                    self.trail.push(format!("-> {next}"));
                    return Callback { url: next };
                }
                url = next;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            if status != StatusCode::OK {
                panic!("{status} from {url}: {body}\ntrail {:#?}", self.trail);
            }
            let (action, fields) = parse_form(&body, login)
                .unwrap_or_else(|| panic!("no form at {url}: {body}\ntrail {:#?}", self.trail));
            url = url.join(&action).expect("form action resolves");
            form = Some(fields);
        }
        panic!(
            "no redirect to {redirect_uri} after {MAX_STEPS} requests: {:#?}",
            self.trail
        );
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut attributes = value.split(';').map(str::trim);
            let Some((name, val)) = attributes.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let expired = attributes.any(|attribute| {
                let lower = attribute.to_ascii_lowercase();
                lower == "max-age=0" || lower.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || val.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }
}

/// The first `<form>` of a page: its action, its hidden fields, and
/// `login`/`password` filled in when it has them.
fn parse_form(html: &str, login: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |i| start + i);
    let form = &html[start..end];
    let tag_end = form.find('>')?;
    let action = attribute(&form[..tag_end], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("<input") {
        let tag = &rest[at..];
        let close = tag.find('>').unwrap_or(tag.len());
        let tag = &tag[..close];
        if let Some(name) = attribute(tag, "name") {
            let value = match name.as_str() {
                "login" => login.to_owned(),
                "password" => "any password".to_owned(),
                _ => attribute(tag, "value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        rest = &rest[at + close..];
    }
    Some((action, fields))
}

/// `name="value"` of one tag, HTML entities of URLs undone.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&#x2F;", "/")
            .replace("&#47;", "/")
            .replace("&quot;", "\""),
    )
}
