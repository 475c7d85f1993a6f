//! `registries:`: credentials for private registries, sent with every pull from that host. They
//! come before the docker CLI's own (`DOCKER_CONFIG` or `~/.docker/config.json`).
//!
//! ```yaml
//! registries:
//!   - host: ghcr.io
//!     username: deploy-bot
//!     password: "${GHCR_TOKEN}"
//! ```

use serde::Serialize;

use super::reader::Reader;
use crate::image_ref::normalize_registry_host;
use crate::secret::Secret;
use crate::yaml::Node;

/// One `registries:` entry. The password is a secret: it prints and serializes as `***`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryLogin {
    /// The registry host as references name it (`ghcr.io`, `127.0.0.1:5000`, `docker.io`).
    pub host: String,
    pub username: String,
    pub password: Secret,
}

pub(super) fn read_registries(r: &mut Reader<'_>, node: &Node) -> Vec<RegistryLogin> {
    let mut out: Vec<RegistryLogin> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let Some(items) = r.seq(node, "registries") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("registries[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let field = |k: &str| format!("{path}.{k}");
        let host = match m.get("host") {
            Some(n) => r.string(n, &field("host")).and_then(|s| {
                let host = normalize_registry_host(&s);
                if host.is_empty() || host.contains(char::is_whitespace) {
                    r.error_hint(
                        n.loc,
                        &field("host"),
                        format!("`{s}` is not a registry host"),
                        "write the host images name, like `ghcr.io` or `registry.example.com:5000`",
                    );
                    None
                } else if seen.contains(&host) {
                    r.error_hint(
                        n.loc,
                        &field("host"),
                        format!("registry `{host}` is listed twice"),
                        "keep one entry per registry host",
                    );
                    None
                } else {
                    seen.push(host.clone());
                    Some(host)
                }
            }),
            None => {
                r.error_hint(
                    item.loc,
                    &field("host"),
                    "a registry needs a `host`",
                    "add `host: ghcr.io` (the registry host the image references name)",
                );
                None
            }
        };
        let mut required = |key: &'static str, r: &mut Reader<'_>| match m.get(key) {
            Some(n) => r.string(n, &field(key)).filter(|s| {
                if s.is_empty() {
                    r.error_hint(
                        n.loc,
                        &field(key),
                        format!("`{key}` is empty"),
                        "give it a value, or take it from the environment: `\"${REGISTRY_TOKEN}\"`",
                    );
                }
                !s.is_empty()
            }),
            None => {
                r.error_hint(
                    item.loc,
                    &field(key),
                    format!("a registry needs a `{key}`"),
                    format!(
                        "add `{key}:` (a token from the environment reads `\"${{GHCR_TOKEN}}\"`)"
                    ),
                );
                None
            }
        };
        let username = required("username", r);
        let password = required("password", r);
        m.finish(r);
        if let (Some(host), Some(username), Some(password)) = (host, username, password) {
            out.push(RegistryLogin {
                host,
                username,
                password: Secret::new(password, true),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::manifest::{LoadOptions, ManifestError, load_manifest};

    fn load(yaml: &str) -> Result<crate::Manifest, ManifestError> {
        let env = |name: &str| (name == "GHCR_TOKEN").then(|| "tok-123".to_owned());
        load_manifest(
            "refinery.yaml",
            &format!("{yaml}\nallow_empty: true\n"),
            &LoadOptions {
                env: &env,
                base_dir: None,
            },
        )
        .map(|l| l.manifest)
    }

    #[test]
    fn registries_read_with_env_password_masked() {
        let m = load(
            "registries:\n  - host: https://ghcr.io/\n    username: bot\n    password: \"${GHCR_TOKEN}\"\n",
        )
        .expect("valid");
        assert_eq!(m.registries.len(), 1);
        let r = &m.registries[0];
        assert_eq!((r.host.as_str(), r.username.as_str()), ("ghcr.io", "bot"));
        assert_eq!(r.password.expose(), "tok-123");
        let json = serde_json::to_string(&m).expect("serialize");
        assert!(!json.contains("tok-123"), "{json}");
        assert!(!format!("{m:?}").contains("tok-123"));
    }

    #[test]
    fn registries_bad_entries_name_the_field() {
        let e = load(
            "registries:\n  - host: r.example\n    username: a\n  - host: r.example\n    username: b\n    password: c\n    pasword: d\n",
        )
        .expect_err("invalid");
        let text = format!("{e:?}");
        for needle in [
            "registries[0].password",
            "registries[1].host",
            "`r.example` is listed twice",
            "did you mean `password`",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}
