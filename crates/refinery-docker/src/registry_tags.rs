//! Listing a repository's tags (`image_policy: {semver: …}`): the engine has no tags endpoint, so
//! Refinery asks the registry itself, `GET /v2/<name>/tags/list`, following `Link: <…>;
//! rel="next"` pages, with the credentials pulls send ([`RegistryAuth`]):
//! - a `Basic` challenge is answered with the username and password;
//! - a `Bearer` challenge (GHCR, Docker Hub, GitLab, Harbor) gets a token from the challenge's
//!   `realm` for its `service` and `scope` (with the credentials as basic auth, or the identity
//!   token as an OAuth refresh token), then asks again with it.
//!
//! The HTTP client is reqwest (rustls on ring, as the other HTTP clients of the workspace): it is
//! already built for the alert channels, forge statuses and the etcd gateway, so listing tags adds
//! no new dependency to the tree. A loopback registry (`localhost`, `127.0.0.0/8`, `::1`) is asked
//! over plain HTTP, as the engine treats it as insecure; every other one over HTTPS.

use std::sync::OnceLock;
use std::time::Duration;

use refinery_core::ImageRef;
use reqwest::header::{AUTHORIZATION, HeaderValue, LINK, WWW_AUTHENTICATE};

use crate::RegistryAuth;
use crate::registry_auth::Found;

/// Pages followed at most (a registry answering `next` forever is cut off).
const MAX_PAGES: usize = 1000;

/// Docker Hub's API host: `docker.io` names it in references.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

fn client() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("refinery/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("failed to make an HTTP client: {e}"))
        })
        .clone()
}

/// `http://` for a loopback registry, `https://` otherwise; Docker Hub's API host for `docker.io`.
fn base_url(registry: &str) -> String {
    if registry == refinery_core::image_ref::DOCKER_HUB {
        return format!("https://{DOCKER_HUB_API}");
    }
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        format!("http://{registry}")
    } else {
        format!("https://{registry}")
    }
}

/// Every tag of `image`'s repository, in the registry's order, across pages of at most
/// `page_size` tags (`None`: the registry's default).
///
/// # Errors
/// The registry unreachable or refusing (401 with the credentials sent, 404, 429, 5xx), or an
/// answer that is not a tag list; the message names the registry and what it said.
pub(crate) async fn list_tags(
    auth: &RegistryAuth,
    image: &ImageRef,
    page_size: Option<u32>,
) -> Result<Vec<String>, String> {
    let http = client()?;
    let base = base_url(image.registry());
    let mut url = format!("{base}/v2/{}/tags/list", image.repository());
    if let Some(n) = page_size {
        url.push_str(&format!("?n={n}"));
    }
    let mut authorization: Option<HeaderValue> = None;
    let mut tags = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut answer = get(&http, &url, authorization.as_ref()).await?;
        if answer.status() == reqwest::StatusCode::UNAUTHORIZED && authorization.is_none() {
            let challenge = answer
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let found = auth.credentials_for(image).await?;
            authorization = Some(answer_challenge(&http, &challenge, found.as_ref(), image).await?);
            answer = get(&http, &url, authorization.as_ref()).await?;
            if answer.status() == reqwest::StatusCode::UNAUTHORIZED {
                let source = found.map_or_else(
                    || {
                        format!(
                            "no credentials for registry `{}` were found",
                            image.registry()
                        )
                    },
                    |f| format!("credentials from {} were refused", f.source),
                );
                return Err(format!(
                    "the registry refused to list the tags of `{}` (HTTP 401: {source})",
                    image.name()
                ));
            }
        }
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(format!(
                "the registry answered HTTP {status} to listing the tags of `{}`: {}",
                image.name(),
                body.trim().chars().take(200).collect::<String>()
            ));
        }
        let next = answer
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .map(|link| join(&base, &link));
        let body = answer
            .bytes()
            .await
            .map_err(|e| format!("failed to read the tag list of `{}`: {e}", image.name()))?;
        tags.extend(parse_tag_list(&body).map_err(|e| {
            format!(
                "the registry's tag list of `{}` is not valid: {e}",
                image.name()
            )
        })?);
        match next {
            Some(n) => url = n,
            None => return Ok(tags),
        }
    }
    Err(format!(
        "the registry's tag list of `{}` goes on for more than {MAX_PAGES} pages",
        image.name()
    ))
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    authorization: Option<&HeaderValue>,
) -> Result<reqwest::Response, String> {
    let mut request = http.get(url);
    if let Some(a) = authorization {
        request = request.header(AUTHORIZATION, a.clone());
    }
    request
        .send()
        .await
        .map_err(|e| format!("failed to ask `{url}`: {}", error_chain(&e)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `Authorization` header answering a `WWW-Authenticate` challenge.
async fn answer_challenge(
    http: &reqwest::Client,
    challenge: &str,
    found: Option<&Found>,
    image: &ImageRef,
) -> Result<HeaderValue, String> {
    let credential = found.map(|f| &f.credential);
    let (scheme, params) = parse_challenge(challenge);
    let no_credentials = || {
        format!(
            "the registry wants credentials to list the tags of `{}`, and none for `{}` were found",
            image.name(),
            image.registry()
        )
    };
    let value = if scheme.eq_ignore_ascii_case("basic") {
        let c = credential.ok_or_else(no_credentials)?;
        basic(&c.username, c.password.expose())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let token = bearer_token(http, &params, found, image).await?;
        format!("Bearer {token}")
    } else {
        return Err(format!(
            "the registry answered HTTP 401 with a challenge Refinery cannot answer (`{}`)",
            challenge.chars().take(100).collect::<String>()
        ));
    };
    let mut header =
        HeaderValue::from_str(&value).map_err(|_| "the registry's token is not a valid header")?;
    header.set_sensitive(true);
    Ok(header)
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A token from the challenge's `realm`: `GET realm?service=…&scope=…` (with basic auth when
/// there are credentials; anonymous otherwise, which public repositories allow), or, for an
/// identity token, the OAuth refresh-token grant (`POST realm`), as the docker CLI does.
async fn bearer_token(
    http: &reqwest::Client,
    params: &[(String, String)],
    found: Option<&Found>,
    image: &ImageRef,
) -> Result<String, String> {
    let credential = found.map(|f| &f.credential);
    let param = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let realm = param("realm").ok_or("the registry's Bearer challenge names no `realm`")?;
    let service = param("service");
    let scope = param("scope").unwrap_or_else(|| format!("repository:{}:pull", image.repository()));
    let query = {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &service {
            q.append_pair("service", s);
        }
        q.append_pair("scope", &scope);
        q.finish()
    };
    let request = match credential {
        Some(c) if c.identity_token.is_some() => {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair(
                    "refresh_token",
                    c.identity_token
                        .as_ref()
                        .map(|t| t.expose())
                        .unwrap_or_default(),
                )
                .append_pair("service", service.as_deref().unwrap_or_default())
                .append_pair("scope", &scope)
                .append_pair("client_id", "refinery")
                .finish();
            http.post(&realm)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form)
        }
        Some(c) => http
            .get(format!("{realm}?{query}"))
            .header(AUTHORIZATION, basic(&c.username, c.password.expose())),
        None => http.get(format!("{realm}?{query}")),
    };
    let answer = request
        .send()
        .await
        .map_err(|e| format!("failed to get a token from `{realm}`: {}", error_chain(&e)))?;
    let status = answer.status();
    if !status.is_success() {
        // A token server refuses wrong credentials with 401 (Docker Hub, distribution's
        // token servers, GHCR) or 403: say whose, as a registry's own basic-auth refusal does.
        let refused = matches!(
            status,
            reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN
        );
        return Err(match found {
            Some(f) if refused => format!(
                "the token server `{realm}` refused a token to list the tags of `{}` (HTTP {}: \
                 credentials from {} were refused)",
                image.name(),
                status.as_u16(),
                f.source
            ),
            Some(_) => format!(
                "the token server `{realm}` answered HTTP {status} (for `{}`)",
                image.name()
            ),
            None => format!(
                "the token server `{realm}` answered HTTP {status} (for `{}`); no credentials for \
                 `{}` were found",
                image.name(),
                image.registry()
            ),
        });
    }
    let body = answer
        .bytes()
        .await
        .map_err(|e| format!("failed to read the token from `{realm}`: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("the token server `{realm}` answered no JSON: {e}"))?;
    v.get("token")
        .or_else(|| v.get("access_token"))
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("the token server `{realm}` answered no token"))
}

/// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"` →
/// (`Bearer`, [(realm, …), (service, …), (scope, …)]). Quoted values may hold commas.
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((name, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .is_some_and(|v| v.trim_matches('"') == "next")
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A `Link` target against the registry's base URL (registries answer paths).
fn join(base: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        link.to_owned()
    } else if link.starts_with('/') {
        format!("{base}{link}")
    } else {
        format!("{base}/{link}")
    }
}

/// `{"name": "app", "tags": ["1.0.0", …]}` (`tags` may be null for a repository without any).
fn parse_tag_list(body: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match v.get("tags") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => Ok(items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect()),
        Some(_) => Err("`tags` is not a list".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_use_plain_http_only_on_loopback() {
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(base_url("ghcr.io"), "https://ghcr.io");
        assert_eq!(base_url("reg.example:5000"), "https://reg.example:5000");
        assert_eq!(base_url("docker.io"), "https://registry-1.docker.io");
    }

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".to_owned(), "https://ghcr.io/token".to_owned()),
                ("service".to_owned(), "ghcr.io".to_owned()),
                (
                    "scope".to_owned(),
                    "repository:org/app:pull,push".to_owned()
                ),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="refinery-test""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(params, [("realm".to_owned(), "refinery-test".to_owned())]);
    }

    #[test]
    fn next_links_and_tag_lists_parse() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=1.4.2&n=2>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=1.4.2&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(
            join("http://r:1", "/v2/a/tags/list?last=b"),
            "http://r:1/v2/a/tags/list?last=b"
        );
        assert_eq!(join("http://r:1", "https://o/x"), "https://o/x");
        assert_eq!(
            parse_tag_list(br#"{"name":"a","tags":["1.0.0","latest"]}"#),
            Ok(vec!["1.0.0".to_owned(), "latest".to_owned()])
        );
        assert_eq!(
            parse_tag_list(br#"{"name":"a","tags":null}"#),
            Ok(Vec::new())
        );
        assert!(parse_tag_list(b"<html>").is_err());
    }
}
