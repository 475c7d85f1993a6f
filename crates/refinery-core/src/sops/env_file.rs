//! An `env_file:` that may be SOPS-encrypted.

use std::collections::BTreeMap;

use super::{AgeKeys, SopsError, SopsFormat, decrypt_env, is_sops};
use crate::dotenv::parse_env_file;
use crate::secret::Secret;

/// Why an env file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileError {
    /// A plain env file with a bad line (1-based).
    Line(u32, String),
    /// A YAML or JSON file without SOPS metadata.
    NotSops,
    Sops(SopsError),
}

impl EnvFileError {
    /// The message for the `env_file` entry naming `path`.
    #[must_use]
    pub fn message(&self, path: &str) -> String {
        match self {
            EnvFileError::Line(line, m) => format!("failed to read `{path}` line {line}: {m}"),
            EnvFileError::NotSops => format!(
                "`{path}` is YAML/JSON without SOPS metadata; an env file is `KEY=value` lines or a SOPS-encrypted file"
            ),
            EnvFileError::Sops(e) => format!("`{path}`: {e}"),
        }
    }

    /// Hints, one per line after the first `hint:`.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            EnvFileError::Line(..) => None,
            EnvFileError::NotSops => Some(
                "encrypt it with `sops encrypt --age <recipient>`, or write `KEY=value` lines in a `.env` file".into(),
            ),
            EnvFileError::Sops(e) => Some(e.hints().join("\n  hint: ")),
        }
    }
}

/// The variables of the env file at `path` (its `text` from the commit): a SOPS file (dotenv with
/// `sops_*` lines, or `.yaml`/`.json` with a `sops:` section) is decrypted with `keys` and every
/// value is sensitive whatever its name; a plain `KEY=value` file is sensitive by name.
pub fn env_file_values(
    path: &str,
    text: &str,
    keys: &AgeKeys,
) -> Result<BTreeMap<String, Secret>, EnvFileError> {
    let format = SopsFormat::for_path(path);
    if is_sops(text, format) {
        let vars = decrypt_env(text, format, keys).map_err(EnvFileError::Sops)?;
        return Ok(vars
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v, true)))
            .collect());
    }
    if format != SopsFormat::Dotenv {
        return Err(EnvFileError::NotSops);
    }
    let vars = parse_env_file(text).map_err(|(line, m)| EnvFileError::Line(line, m))?;
    Ok(vars
        .into_iter()
        .map(|(k, v)| {
            let s = Secret::for_name(&k, v);
            (k, s)
        })
        .collect())
}
