//! Registry credentials the way the docker CLI keeps them, as values: the `config.json` of
//! `DOCKER_CONFIG` (or `~/.docker`) parsed, the order sources are asked in, and a credential
//! helper's answer parsed. Reading the file and running `docker-credential-<name> get` is the
//! adapter's business.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::image_ref::normalize_registry_host;
use crate::manifest::RegistryLogin;
use crate::secret::Secret;

/// Credentials to send with a pull. Secrets print as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    pub username: String,
    pub password: Secret,
    /// An OAuth identity token (`identitytoken`, or a helper answering with user `<token>`).
    pub identity_token: Option<Secret>,
}

impl RegistryCredential {
    #[must_use]
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        RegistryCredential {
            username: username.into(),
            password: Secret::new(password, true),
            identity_token: None,
        }
    }
}

/// Where a registry's credentials come from, in the order they are asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The manifest's `registries:` entry.
    Manifest(RegistryCredential),
    /// `docker-credential-<helper> get` (from `credHelpers` or `credsStore`).
    Helper(String),
    /// `auths` in `config.json`.
    ConfigFile(RegistryCredential),
}

impl CredentialSource {
    /// How the source is named in messages (never the secret).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::Manifest(_) => "`registries:` in the manifest".to_owned(),
            CredentialSource::Helper(h) => format!("credential helper `docker-credential-{h}`"),
            CredentialSource::ConfigFile(_) => "`auths` in the docker config".to_owned(),
        }
    }
}

/// The parts of a docker CLI `config.json` that hold credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    /// By normalized host.
    auths: BTreeMap<String, RegistryCredential>,
    creds_store: Option<String>,
    /// By normalized host.
    cred_helpers: BTreeMap<String, String>,
}

/// Why a `config.json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerConfigError {
    #[error("failed to parse the docker config: {0}")]
    Json(String),
    #[error("failed to decode the `auth` of `{host}` in the docker config: {reason}")]
    Auth { host: String, reason: String },
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Parses a `config.json`. Entries without credentials (a `credsStore` lists hosts with
    /// empty entries) are left out.
    ///
    /// # Errors
    /// Invalid JSON, or an `auth` that is not base64 of `user:password`.
    pub fn parse(json: &str) -> Result<DockerConfig, DockerConfigError> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|e| DockerConfigError::Json(e.to_string()))?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let host = normalize_registry_host(&key);
            let mut username = entry.username.unwrap_or_default();
            let mut password = entry.password.unwrap_or_default();
            if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let (u, p) = decode_auth(&auth).map_err(|reason| DockerConfigError::Auth {
                    host: host.clone(),
                    reason,
                })?;
                username = u;
                password = p;
            }
            let identity_token = entry
                .identitytoken
                .filter(|t| !t.is_empty())
                .map(|t| Secret::new(t, true));
            if username.is_empty() && password.is_empty() && identity_token.is_none() {
                continue;
            }
            auths.insert(
                host,
                RegistryCredential {
                    username,
                    password: Secret::new(password, true),
                    identity_token,
                },
            );
        }
        Ok(DockerConfig {
            auths,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: raw
                .cred_helpers
                .into_iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(k, h)| (normalize_registry_host(&k), h))
                .collect(),
        })
    }
}

fn decode_auth(auth: &str) -> Result<(String, String), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "it is not base64".to_owned())?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| "it does not read `user:password`".to_owned())?;
    Ok((u.to_owned(), p.to_owned()))
}

/// The sources to ask for `host`'s credentials, first to last: the manifest's `registries:`, the
/// docker config's `credHelpers` entry for the host, its `credsStore`, its `auths` entry. The
/// first that answers is used.
#[must_use]
pub fn credential_sources(
    registry_host: &str,
    logins: &[RegistryLogin],
    config: Option<&DockerConfig>,
) -> Vec<CredentialSource> {
    let host = normalize_registry_host(registry_host);
    let mut out = Vec::new();
    if let Some(l) = logins.iter().find(|l| l.host == host) {
        out.push(CredentialSource::Manifest(RegistryCredential {
            username: l.username.clone(),
            password: l.password.clone(),
            identity_token: None,
        }));
    }
    if let Some(c) = config {
        if let Some(h) = c.cred_helpers.get(&host) {
            out.push(CredentialSource::Helper(h.clone()));
        }
        if let Some(s) = &c.creds_store
            && !out.contains(&CredentialSource::Helper(s.clone()))
        {
            out.push(CredentialSource::Helper(s.clone()));
        }
        if let Some(a) = c.auths.get(&host) {
            out.push(CredentialSource::ConfigFile(a.clone()));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A credential helper's answer to `get` (`{"ServerURL":…,"Username":…,"Secret":…}`); a user of
/// `<token>` means the secret is an identity token. `None` when it holds no credentials.
///
/// # Errors
/// Output that is not the helper protocol's JSON.
pub fn parse_helper_answer(stdout: &str) -> Result<Option<RegistryCredential>, String> {
    let a: HelperAnswer = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("its answer is not the helper protocol's JSON: {e}"))?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    if a.username == "<token>" {
        return Ok(Some(RegistryCredential {
            username: String::new(),
            password: Secret::new(String::new(), true),
            identity_token: Some(Secret::new(a.secret, true)),
        }));
    }
    Ok(Some(RegistryCredential::basic(a.username, a.secret)))
}

/// The hints for a pull the registry refused for want of credentials.
#[must_use]
pub fn auth_failure_hints(registry_host: &str) -> Vec<String> {
    let host = normalize_registry_host(registry_host);
    let login = if host == crate::image_ref::DOCKER_HUB {
        "docker login".to_owned()
    } else {
        format!("docker login {host}")
    };
    vec![
        format!("run `{login}` as the user running refinery (or set `DOCKER_CONFIG`)"),
        format!(
            "or add `{host}` under `registries:` in the manifest, with `username` and `password: \"${{TOKEN}}\"`"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn docker_config_auths_decode_each_form() {
        let json = format!(
            r#"{{"auths": {{
                "127.0.0.1:5000": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"username": "u2", "password": "p2"}},
                "ghcr.io": {{"identitytoken": "tok"}},
                "listed.example": {{}}
            }}}}"#,
            b64("alice:s3cr:et")
        );
        let c = DockerConfig::parse(&json).expect("valid");
        let one = |h: &str| match credential_sources(h, &[], Some(&c)).as_slice() {
            [CredentialSource::ConfigFile(cred)] => cred.clone(),
            other => panic!("{h}: {other:?}"),
        };
        let a = one("127.0.0.1:5000");
        assert_eq!(
            (a.username.as_str(), a.password.expose()),
            ("alice", "s3cr:et")
        );
        let hub = one("docker.io");
        assert_eq!((hub.username.as_str(), hub.password.expose()), ("u2", "p2"));
        let gh = one("ghcr.io");
        assert_eq!(
            gh.identity_token.map(|t| t.expose().to_owned()),
            Some("tok".to_owned())
        );
        assert!(credential_sources("listed.example", &[], Some(&c)).is_empty());
    }

    #[test]
    fn credential_sources_manifest_then_helper_then_store_then_file() {
        let json = format!(
            r#"{{"auths": {{"reg:5000": {{"auth": "{}"}}}}, "credsStore": "pass",
                "credHelpers": {{"reg:5000": "ecr-login"}}}}"#,
            b64("a:b")
        );
        let c = DockerConfig::parse(&json).expect("valid");
        let logins = [RegistryLogin {
            host: "reg:5000".into(),
            username: "bot".into(),
            password: Secret::new("pw", true),
        }];
        let got = credential_sources("reg:5000", &logins, Some(&c));
        let kinds: Vec<String> = got.iter().map(CredentialSource::describe).collect();
        assert_eq!(
            kinds,
            [
                "`registries:` in the manifest",
                "credential helper `docker-credential-ecr-login`",
                "credential helper `docker-credential-pass`",
                "`auths` in the docker config",
            ]
        );
        // Another host: only the store.
        assert_eq!(
            credential_sources("other.example", &logins, Some(&c)),
            [CredentialSource::Helper("pass".into())]
        );
    }

    #[test]
    fn docker_config_bad_auth_names_the_host() {
        let e = DockerConfig::parse(r#"{"auths": {"r.example": {"auth": "!!"}}}"#)
            .expect_err("bad base64");
        assert!(e.to_string().contains("`r.example`"), "{e}");
        assert!(DockerConfig::parse("{").is_err());
    }

    #[test]
    fn helper_answer_reads_basic_and_token_and_empty() {
        let basic = parse_helper_answer(r#"{"ServerURL":"r","Username":"u","Secret":"s"}"#)
            .expect("valid")
            .expect("some");
        assert_eq!(
            (basic.username.as_str(), basic.password.expose()),
            ("u", "s")
        );
        let token = parse_helper_answer(r#"{"Username":"<token>","Secret":"t"}"#)
            .expect("valid")
            .expect("some");
        assert_eq!(
            token.identity_token.map(|t| t.expose().to_owned()),
            Some("t".into())
        );
        assert_eq!(
            parse_helper_answer(r#"{"Username":"","Secret":""}"#),
            Ok(None)
        );
        assert!(parse_helper_answer("credentials not found").is_err());
    }

    #[test]
    fn credential_debug_never_shows_the_secret() {
        let c = RegistryCredential::basic("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn auth_failure_is_hinted() {
        let h = auth_failure_hints("127.0.0.1:5000");
        assert!(h[0].contains("`docker login 127.0.0.1:5000`"), "{h:?}");
        assert!(h[1].contains("registries:"), "{h:?}");
    }
}
