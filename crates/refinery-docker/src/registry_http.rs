//! Asking a registry itself, where the engine has no endpoint for the question, with the
//! credentials pulls send ([`RegistryAuth`]):
//! - a repository's tags (`image_policy: {semver: …}`): `GET /v2/<name>/tags/list`, following
//!   `Link: <…>; rel="next"` pages;
//! - the image a tag gives one platform (`image_update` of a multi-platform image): the tag's
//!   manifest and, for an index, its entry for the engine's platform.
//!
//! A `401` is answered with its challenge:
//! - a `Basic` challenge with the username and password;
//! - a `Bearer` challenge (GHCR, Docker Hub, GitLab, Harbor) gets a token from the challenge's
//!   `realm` for its `service` and `scope` (with the credentials as basic auth, or the identity
//!   token as an OAuth refresh token), then asks again with it.
//!
//! The HTTP client is reqwest (rustls on ring, as the other HTTP clients of the workspace): it is
//! already built for the alert channels, forge statuses and the etcd gateway, so this adds no new
//! dependency to the tree. A loopback registry (`localhost`, `127.0.0.0/8`, `::1`) is asked over
//! plain HTTP, as the engine treats it as insecure; every other one over HTTPS.

use std::sync::OnceLock;
use std::time::Duration;

use refinery_core::ImageRef;
use refinery_core::error_text::error_chain;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LINK, WWW_AUTHENTICATE};

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
    let what = format!("list the tags of `{}`", image.name());
    let mut authorization: Option<HeaderValue> = None;
    let mut tags = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer =
            authorized_get(&http, auth, image, &url, &[], &what, &mut authorization).await?;
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

/// The manifest media types asked for: a multi-platform index (Docker's list, OCI's index) or
/// one image's manifest (Docker's schema 2, OCI's).
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

/// An engine's platform, as an index names it (`linux`, `amd64`, `v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`.
    pub os: String,
    /// `amd64`, `arm64`, `arm` (Go's names, as the engine reports them).
    pub architecture: String,
    /// `v7`, `v8`, when known.
    pub variant: Option<String>,
}

/// The id of the image a pull of `image` (a tag or digest reference) gives an engine on
/// `platform` now: the config digest of its manifest, or, for a multi-platform index, of the
/// manifest of `platform`'s entry (the one the engine would pull). Two manifest requests at
/// most, with the credentials pulls send; nothing is pulled.
///
/// # Errors
/// The registry unreachable or refusing, an answer that is not a manifest, or an index with no
/// entry for `platform`.
pub(crate) async fn platform_image_id(
    auth: &RegistryAuth,
    image: &ImageRef,
    platform: &Platform,
) -> Result<String, String> {
    let http = client()?;
    let base = base_url(image.registry());
    let what = format!("read the manifest of `{}`", image.tagged());
    let mut authorization: Option<HeaderValue> = None;
    let mut reference = image.digest().unwrap_or(image.pull_tag()).to_owned();
    // An index, then the manifest of one of its entries: no deeper.
    for _ in 0..2 {
        let url = format!("{base}/v2/{}/manifests/{reference}", image.repository());
        let answer = authorized_get(
            &http,
            auth,
            image,
            &url,
            &MANIFEST_TYPES,
            &what,
            &mut authorization,
        )
        .await?;
        let body = answer
            .bytes()
            .await
            .map_err(|e| format!("failed to read the manifest of `{}`: {e}", image.tagged()))?;
        match parse_manifest(&body, platform)
            .map_err(|e| format!("the registry's manifest of `{}` {e}", image.tagged()))?
        {
            Manifest::Image { config } => return Ok(config),
            Manifest::Index { entry } => reference = entry,
        }
    }
    Err(format!(
        "the registry's index of `{}` names another index for {}/{}",
        image.tagged(),
        platform.os,
        platform.architecture
    ))
}

/// What a manifest says, for [`platform_image_id`].
#[derive(Debug, PartialEq, Eq)]
enum Manifest {
    /// One image's manifest: its config digest (the image id).
    Image { config: String },
    /// An index: the digest of the entry for the platform.
    Index { entry: String },
}

/// Reads a manifest or an index; of an index, the entry for `platform`'s OS and architecture,
/// the one of its variant when several are listed.
fn parse_manifest(body: &[u8], platform: &Platform) -> Result<Manifest, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("is not JSON: {e}"))?;
    if let Some(config) = v
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(serde_json::Value::as_str)
    {
        return Ok(Manifest::Image {
            config: config.to_owned(),
        });
    }
    let entries = v
        .get("manifests")
        .and_then(serde_json::Value::as_array)
        .ok_or("is neither an image manifest nor an index")?;
    let field = |e: &serde_json::Value, k: &str| {
        e.get("platform")
            .and_then(|p| p.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let candidates: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| {
            field(e, "os").as_deref() == Some(platform.os.as_str())
                && field(e, "architecture").as_deref() == Some(platform.architecture.as_str())
        })
        .collect();
    // The engine's variant, else the one an engine of that architecture runs by default (as
    // the engine's own platform matcher picks), else an entry naming none, else the first.
    let wanted = platform
        .variant
        .as_deref()
        .or(match platform.architecture.as_str() {
            "arm" => Some("v7"),
            "arm64" => Some("v8"),
            _ => None,
        });
    candidates
        .iter()
        .find(|e| wanted.is_some() && field(e, "variant").as_deref() == wanted)
        .or_else(|| candidates.iter().find(|e| field(e, "variant").is_none()))
        .or_else(|| candidates.first())
        .and_then(|e| e.get("digest").and_then(serde_json::Value::as_str))
        .map(|d| Manifest::Index {
            entry: d.to_owned(),
        })
        .ok_or_else(|| {
            format!(
                "is an index with no image for {}/{}",
                platform.os, platform.architecture
            )
        })
}

/// `GET url` with the credentials pulls send: a `401` is answered once with the challenge's
/// scheme (`authorization` keeps the answer for the next requests); any other failure is an
/// error naming `what` the request was for ("list the tags of `app`").
async fn authorized_get(
    http: &reqwest::Client,
    auth: &RegistryAuth,
    image: &ImageRef,
    url: &str,
    accept: &[&str],
    what: &str,
    authorization: &mut Option<HeaderValue>,
) -> Result<reqwest::Response, String> {
    let mut answer = get(http, url, accept, authorization.as_ref()).await?;
    if answer.status() == reqwest::StatusCode::UNAUTHORIZED && authorization.is_none() {
        let challenge = answer
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let found = auth.credentials_for(image).await?;
        let header = answer_challenge(http, &challenge, found.as_ref(), image, what).await?;
        answer = get(http, url, accept, Some(&header)).await?;
        *authorization = Some(header);
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
                "the registry refused to {what} (HTTP 401: {source})"
            ));
        }
    }
    let status = answer.status();
    if !status.is_success() {
        let body = answer.text().await.unwrap_or_default();
        return Err(format!(
            "the registry answered HTTP {status} to {what}: {}",
            body.trim().chars().take(200).collect::<String>()
        ));
    }
    Ok(answer)
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    accept: &[&str],
    authorization: Option<&HeaderValue>,
) -> Result<reqwest::Response, String> {
    let mut request = http.get(url);
    if !accept.is_empty() {
        request = request.header(ACCEPT, accept.join(", "));
    }
    if let Some(a) = authorization {
        request = request.header(AUTHORIZATION, a.clone());
    }
    request
        .send()
        .await
        .map_err(|e| format!("failed to ask `{url}`: {}", error_chain(&e)))
}

/// The `Authorization` header answering a `WWW-Authenticate` challenge.
async fn answer_challenge(
    http: &reqwest::Client,
    challenge: &str,
    found: Option<&Found>,
    image: &ImageRef,
    what: &str,
) -> Result<HeaderValue, String> {
    let credential = found.map(|f| &f.credential);
    let (scheme, params) = parse_challenge(challenge);
    let no_credentials = || {
        format!(
            "the registry wants credentials to {what}, and none for `{}` were found",
            image.registry()
        )
    };
    let value = if scheme.eq_ignore_ascii_case("basic") {
        let c = credential.ok_or_else(no_credentials)?;
        basic(&c.username, c.password.expose())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let token = bearer_token(http, &params, found, image, what).await?;
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
    what: &str,
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
                "the token server `{realm}` refused a token to {what} (HTTP {}: credentials from \
                 {} were refused)",
                status.as_u16(),
                f.source
            ),
            Some(_) => format!("the token server `{realm}` answered HTTP {status} (to {what})"),
            None => format!(
                "the token server `{realm}` answered HTTP {status} (to {what}); no credentials for \
                 `{}` were found",
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

    #[test]
    fn manifests_give_their_config_and_indexes_the_entry_of_the_platform() {
        let amd64 = Platform {
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
        };
        let arm_v7 = Platform {
            os: "linux".to_owned(),
            architecture: "arm".to_owned(),
            variant: Some("v7".to_owned()),
        };
        assert_eq!(
            parse_manifest(
                br#"{"schemaVersion":2,"config":{"digest":"sha256:c0"},"layers":[]}"#,
                &amd64
            ),
            Ok(Manifest::Image {
                config: "sha256:c0".to_owned()
            })
        );
        let index = br#"{"schemaVersion":2,"manifests":[
            {"digest":"sha256:a6","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
            {"digest":"sha256:a7","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"digest":"sha256:wi","platform":{"os":"windows","architecture":"amd64"}},
            {"digest":"sha256:x8","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let entry = |d: &str| {
            Ok(Manifest::Index {
                entry: d.to_owned(),
            })
        };
        assert_eq!(parse_manifest(index, &amd64), entry("sha256:x8"));
        assert_eq!(parse_manifest(index, &arm_v7), entry("sha256:a7"));
        let arm = Platform {
            variant: None,
            ..arm_v7.clone()
        };
        assert_eq!(
            parse_manifest(index, &arm),
            entry("sha256:a7"),
            "v7 by default"
        );
        let arm_v6 = Platform {
            variant: Some("v6".to_owned()),
            ..arm_v7.clone()
        };
        assert_eq!(parse_manifest(index, &arm_v6), entry("sha256:a6"));
        let s390x = Platform {
            architecture: "s390x".to_owned(),
            ..amd64
        };
        assert_eq!(
            parse_manifest(index, &s390x),
            Err("is an index with no image for linux/s390x".to_owned())
        );
        assert!(parse_manifest(b"{}", &arm_v7).is_err());
        assert!(parse_manifest(b"<html>", &arm_v7).is_err());
    }
}
