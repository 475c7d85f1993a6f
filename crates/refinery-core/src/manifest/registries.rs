//! `registries:`: credentials for private registries, sent with every pull from that host. They
//! come before the docker CLI's own (`DOCKER_CONFIG` or `~/.docker/config.json`).
//!
//! ```yaml
//! registries:
//!   - host: ghcr.io
//!     username: deploy-bot
//!     password: "${GHCR_TOKEN}"
//!     env_file: secrets/registry.enc.env   # optional: variables for `${…}`, see registry_env.rs
//! ```

use serde::Serialize;

use super::env_files;
use super::reader::Reader;
use super::registry_env::{LoginField, RegistryEnv, fill_in};
use crate::image_ref::normalize_registry_host;
use crate::secret::Secret;
use crate::yaml::{Node, Value};

/// One `registries:` entry. The password is a secret: it prints and serializes as `***`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryLogin {
    /// The registry host as references name it (`ghcr.io`, `127.0.0.1:5000`, `docker.io`).
    pub host: String,
    pub username: String,
    pub password: Secret,
}

/// The `registries:` entries: the logins of those without `env_file:`, their variables taken from
/// the environment now, and those with `env_file:`, put together by
/// [`super::registry_env::resolve_registries`] once the files are read from the commit.
pub(super) fn read_registries(
    r: &mut Reader<'_>,
    node: &Node,
) -> (Vec<RegistryLogin>, Vec<RegistryEnv>) {
    let mut out: Vec<RegistryLogin> = Vec::new();
    let mut with_files: Vec<RegistryEnv> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let Some(items) = r.seq(node, "registries") else {
        return (out, with_files);
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
        // As written: `${VAR}` is filled in below, or from the env files at resolve.
        let mut as_written = |key: &'static str, r: &mut Reader<'_>| match m.get(key) {
            Some(n) => match &n.value {
                Value::Scalar { text, .. } if text.is_empty() => {
                    r.error_hint(
                        n.loc,
                        &field(key),
                        format!("`{key}` is empty"),
                        "give it a value, or take it from the environment or an `env_file:`: `\"${REGISTRY_TOKEN}\"`",
                    );
                    None
                }
                Value::Scalar { text, .. } => Some(LoginField {
                    text: text.clone(),
                    loc: n.loc,
                    field: field(key),
                }),
                _ => {
                    r.error(
                        n.loc,
                        &field(key),
                        format!("expected a string, found {}", n.kind_name()),
                    );
                    None
                }
            },
            None => {
                r.error_hint(
                    item.loc,
                    &field(key),
                    format!("a registry needs a `{key}`"),
                    format!(
                        "add `{key}:` (a token from the environment or an `env_file:` reads `\"${{GHCR_TOKEN}}\"`)"
                    ),
                );
                None
            }
        };
        let username = as_written("username", r);
        let password = as_written("password", r);
        let env_files = m
            .get("env_file")
            .map(|n| env_files::read_refs(r, n, &field("env_file")))
            .unwrap_or_default();
        m.finish(r);
        let (Some(host), Some(username), Some(password)) = (host, username, password) else {
            continue;
        };
        if env_files.is_empty() {
            let env = |name: &str| r.lookup(name);
            let filled = (
                fill_in(&r.file, &username, &env, &[]),
                fill_in(&r.file, &password, &env, &[]),
            );
            match filled {
                (Ok(username), Ok(password)) => out.push(RegistryLogin {
                    host,
                    username,
                    password: Secret::new(password, true),
                }),
                (u, p) => r.issues.extend(u.err().into_iter().chain(p.err())),
            }
        } else {
            // Checked now for what does not depend on the values (`${` unclosed, a bad name).
            let any = |_: &str| Some("x".to_owned());
            let checked = (
                fill_in(&r.file, &username, &any, &[]),
                fill_in(&r.file, &password, &any, &[]),
            );
            if let (Ok(_), Ok(_)) = checked {
                with_files.push(RegistryEnv {
                    index: out.len() + with_files.len(),
                    host,
                    env_files,
                    username,
                    password,
                });
            } else {
                r.issues
                    .extend(checked.0.err().into_iter().chain(checked.1.err()));
            }
        }
    }
    (out, with_files)
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

    #[test]
    fn registries_unset_variable_is_an_error_not_an_empty_password() {
        let e = load(
            "registries:\n  - host: r.example\n    username: bot\n    password: \"pre-${NOT_SET}\"\n",
        )
        .expect_err("invalid");
        let i = &e.issues()[0];
        assert_eq!(
            i.to_string(),
            "refinery.yaml:4:15: `registries[0].password`: variable `NOT_SET` is not set in the environment"
        );
        assert!(
            i.hint.as_deref().is_some_and(|h| h.contains("env_file:")),
            "{i:?}"
        );
    }

    #[test]
    fn registries_env_file_entry_waits_for_its_files_in_order() {
        let m = load(
            "registries:\n  - host: a.example\n    username: bot\n    password: \"${FROM_FILE}\"\n    env_file: [secrets/reg.enc.env]\n  - host: b.example\n    username: bot\n    password: \"${GHCR_TOKEN}\"\n",
        )
        .expect("valid");
        assert_eq!(m.registries.len(), 1, "{:?}", m.registries);
        assert_eq!(m.registries[0].host, "b.example");
        let pending = &m.registry_env[0];
        assert_eq!((pending.index, pending.host.as_str()), (0, "a.example"));
        assert_eq!(pending.env_files[0].path, "secrets/reg.enc.env");
        assert_eq!(pending.env_files[0].field, "registries[0].env_file[0]");
        assert_eq!(pending.password.text, "${FROM_FILE}");
        assert_eq!(pending.password.field, "registries[0].password");
    }

    #[test]
    fn registries_env_file_bad_syntax_and_path_fail_at_load() {
        let e = load(
            "registries:\n  - host: a.example\n    username: bot\n    password: \"${OPEN\"\n    env_file: ../outside.env\n",
        )
        .expect_err("invalid");
        let text = format!("{:?}", e.issues());
        for needle in [
            "registries[0].password",
            "no closing `}`",
            "registries[0].env_file",
            "`../outside.env` is not a file in the repository",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}
