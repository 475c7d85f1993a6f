//! What can go wrong reading a SOPS file.

/// A SOPS file that cannot be decrypted. Messages never contain a clear value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SopsError {
    /// The text is not a SOPS file of the expected format, or its metadata is incomplete.
    #[error("failed to read SOPS metadata: {0}")]
    Malformed(String),
    /// The data key is encrypted only to backends other than age.
    #[error(
        "failed to decrypt: the file is encrypted to {backends} only, and Refinery decrypts age only"
    )]
    NotAge { backends: String },
    /// Key groups (Shamir secret sharing) are not supported.
    #[error(
        "failed to decrypt: the file uses `key_groups` (Shamir secret sharing), which Refinery does not support"
    )]
    KeyGroups,
    /// No age identity was found anywhere.
    #[error("failed to decrypt: no age key found")]
    NoKeys { looked: Vec<String> },
    /// Identities were found, but none of them is a recipient of the file.
    #[error(
        "failed to decrypt the data key: none of the {count} age key(s) found is a recipient of the file"
    )]
    WrongKey {
        count: usize,
        recipients: Vec<String>,
        looked: Vec<String>,
    },
    /// The age envelope of the data key is broken.
    #[error("failed to decrypt the data key: {0}")]
    DataKey(String),
    /// A value failed authentication: it, its IV or its key path changed after encryption.
    #[error("failed to decrypt `{path}`: the value, or its key, was changed after encryption")]
    Value { path: String },
    /// The MAC over all values does not match: a value was added, removed or changed.
    #[error(
        "failed to verify the file: its MAC does not match, so a value was changed, added or removed after encryption"
    )]
    Mac,
    /// The file decrypts, but is not usable as environment variables.
    #[error("failed to use `{path}` as an environment variable: {reason}")]
    NotEnv { path: String, reason: String },
}

impl SopsError {
    /// What the user can do about it.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let looked = |l: &[String]| format!("age keys are looked for in: {}", l.join("; "));
        match self {
            SopsError::Malformed(_) => vec![
                "encrypt the file with `sops encrypt --age <recipient> FILE`; a SOPS dotenv file has `sops_*` lines, a YAML or JSON one a top-level `sops:` section".into(),
            ],
            SopsError::NotAge { .. } => vec![
                "add an age recipient: `sops updatekeys` with `age:` in `.sops.yaml`, or `sops rotate --add-age <recipient> -i FILE`".into(),
            ],
            SopsError::KeyGroups => {
                vec!["encrypt the file to plain age recipients (`--age`) without `key_groups`".into()]
            }
            SopsError::NoKeys { looked: l } => vec![
                looked(l),
                "set `SOPS_AGE_KEY_FILE` (or `secrets.sops_age_key_file` in the manifest) to an age key file, or `SOPS_AGE_KEY` to the key itself".into(),
            ],
            SopsError::WrongKey {
                recipients,
                looked: l,
                ..
            } => vec![
                format!("the file is encrypted to: {}", recipients.join(", ")),
                looked(l),
            ],
            SopsError::DataKey(_) => vec!["re-encrypt the file with `sops`".into()],
            SopsError::Value { .. } | SopsError::Mac => vec![
                "edit encrypted files only with `sops edit FILE`; restore the file from git if it was changed by hand".into(),
            ],
            SopsError::NotEnv { .. } => vec![
                "an env file holds one level of `KEY: value` pairs (strings, numbers or booleans)".into(),
            ],
        }
    }
}
