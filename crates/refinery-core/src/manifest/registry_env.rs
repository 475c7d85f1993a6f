//! `env_file:` on a `registries:` entry: files in the repository (plain `KEY=value` lines or
//! SOPS-encrypted, read exactly as a container's `env_file`) whose variables feed the `${VAR}` of
//! that entry's `username` and `password`. Resolved in the desired-state step, once the files
//! are read from the commit and decrypted with the age keys the manifest's `secrets:` points to.
//!
//! ```yaml
//! registries:
//!   - host: ghcr.io
//!     username: deploy-bot
//!     password: "${GHCR_TOKEN}"
//!     env_file: secrets/registry.enc.env
//! ```
//!
//! Precedence is that of a stack's variables file (and docker compose's `.env`): the environment
//! of refinery wins over the files, and a later file over an earlier one. A variable set in
//! neither is an error, not an empty string: a login with a truncated password only fails later,
//! at a pull.

use std::collections::BTreeMap;

use super::env_files::{EnvFileRef, read_env_file};
use super::registries::RegistryLogin;
use super::{Issue, Manifest, ManifestError};
use crate::interpolate::{InterpolateError, interpolate};
use crate::secret::Secret;
use crate::sops::AgeKeys;
use crate::yaml::Loc;

/// A `username` or `password` as written, before its variables are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginField {
    pub text: String,
    pub loc: Loc,
    /// `registries[0].password`.
    pub field: String,
}

/// A `registries:` entry with `env_file:`: its login is put together by [`resolve_registries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEnv {
    /// Where its login goes in [`Manifest::registries`], among the entries that read.
    pub index: usize,
    pub host: String,
    pub env_files: Vec<EnvFileRef>,
    pub username: LoginField,
    pub password: LoginField,
}

/// The manifest's registry logins with those of the entries naming `env_file:` put in place:
/// each file read with `read` (from the commit) and decrypted with `keys`, its variables under
/// `env` (the environment of refinery). Every file that cannot be read or decrypted, and every
/// variable set nowhere, is an error at its field.
pub fn resolve_registries(
    manifest: &Manifest,
    read: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RegistryLogin>, ManifestError> {
    let mut logins = manifest.registries.clone();
    let mut issues = Vec::new();
    for entry in &manifest.registry_env {
        let mut vars: BTreeMap<String, Secret> = BTreeMap::new();
        let mut read_all = true;
        for f in &entry.env_files {
            match read_env_file(&manifest.file, f, read, keys) {
                Ok(v) => vars.extend(v),
                Err(i) => {
                    issues.push(i);
                    read_all = false;
                }
            }
        }
        if !read_all {
            continue;
        }
        let lookup =
            |name: &str| env(name).or_else(|| vars.get(name).map(|v| v.expose().to_owned()));
        let files: Vec<&str> = entry.env_files.iter().map(|f| f.path.as_str()).collect();
        let username = fill_in(&manifest.file, &entry.username, &lookup, &files);
        let password = fill_in(&manifest.file, &entry.password, &lookup, &files);
        match (username, password) {
            (Ok(username), Ok(password)) => logins.insert(
                entry.index.min(logins.len()),
                RegistryLogin {
                    host: entry.host.clone(),
                    username,
                    password: Secret::new(password, true),
                },
            ),
            (u, p) => issues.extend(u.err().into_iter().chain(p.err())),
        }
    }
    if issues.is_empty() {
        Ok(logins)
    } else {
        issues.dedup();
        Err(ManifestError::Invalid {
            file: manifest.file.clone(),
            issues,
        })
    }
}

/// `f` with its `${VAR}` filled in from `lookup`; `files` are the entry's env files (none: the
/// environment alone). Unset, or empty once filled in, is an error at `f`.
pub(super) fn fill_in(
    file: &str,
    f: &LoginField,
    lookup: &dyn Fn(&str) -> Option<String>,
    files: &[&str],
) -> Result<String, Issue> {
    let issue =
        |message: String, hint: String| Issue::new(file, f.loc, &f.field, message).with_hint(hint);
    let nowhere = if files.is_empty() {
        "is not set in the environment".to_owned()
    } else {
        format!("is set neither in the environment nor in {}", quoted(files))
    };
    let set_it = |name: &str| match files.last() {
        None => format!(
            "set `{name}` in the environment of refinery, or name an `env_file:` (plain or SOPS-encrypted) that sets it"
        ),
        Some(last) => format!(
            "add `{name}=…` to `{last}` (`sops edit {last}` when it is encrypted), or set `{name}` in the environment of refinery"
        ),
    };
    match interpolate(&f.text, lookup) {
        Ok(done) => {
            if let Some(name) = done.unset.first() {
                return Err(issue(
                    format!("variable `{name}` {nowhere}"),
                    set_it(name),
                ));
            }
            if done.value.is_empty() {
                let key = f.field.rsplit('.').next().unwrap_or_default();
                return Err(issue(
                    format!("`{key}` is empty once its variables are filled in"),
                    "give the variables it names a value".to_owned(),
                ));
            }
            Ok(done.value)
        }
        Err(InterpolateError::Required { name, message }) => {
            let why = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            Err(issue(
                format!("required variable `{name}` {nowhere}{why}"),
                set_it(&name),
            ))
        }
        Err(e @ (InterpolateError::Unclosed { .. } | InterpolateError::Stray { .. })) => Err(
            issue(e.to_string(), "close it with `}`, or write `$$` for a literal `$`".to_owned()),
        ),
        Err(e @ InterpolateError::BadName { .. }) => Err(issue(
            e.to_string(),
            "a variable name is letters, digits and `_`, not starting with a digit; write `$$` for a literal `$`".to_owned(),
        )),
    }
}

fn quoted(files: &[&str]) -> String {
    files
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
