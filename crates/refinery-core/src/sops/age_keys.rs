//! The age identities SOPS files are decrypted with, and where they were looked for.

use std::fmt;
use std::str::FromStr;

use age::x25519::Identity;

/// Age x25519 identities, gathered by the CLI from `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
/// `secrets.sops_age_key_file` and sops' default key file. `looked` says where, for errors.
#[derive(Clone, Default)]
pub struct AgeKeys {
    identities: Vec<Identity>,
    looked: Vec<String>,
}

impl AgeKeys {
    #[must_use]
    pub fn new() -> AgeKeys {
        AgeKeys::default()
    }

    /// Adds every `AGE-SECRET-KEY-1…` line of a key file's `text` (`#` comments and blank lines
    /// skipped), noting `origin` with how many keys it held. A line that is not a key is noted
    /// (by line number, never by content) and skipped.
    pub fn add_text(&mut self, text: &str, origin: &str) -> usize {
        let mut added = 0;
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match Identity::from_str(line) {
                Ok(id) => {
                    self.identities.push(id);
                    added += 1;
                }
                Err(_) => bad.push((i + 1).to_string()),
            }
        }
        let mut note = format!(
            "{origin} ({added} key{})",
            if added == 1 { "" } else { "s" }
        );
        if !bad.is_empty() {
            note.push_str(&format!(
                "; line {} is not an `AGE-SECRET-KEY-1…` key",
                bad.join(", ")
            ));
        }
        self.looked.push(note);
        added
    }

    /// Notes a place that was looked at and held nothing (`SOPS_AGE_KEY_FILE` `x` (not found)).
    pub fn note(&mut self, looked: impl Into<String>) {
        self.looked.push(looked.into());
    }

    /// Adds one identity directly.
    pub fn push(&mut self, id: Identity) {
        self.identities.push(id);
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    #[must_use]
    pub fn looked(&self) -> &[String] {
        &self.looked
    }

    pub(super) fn identities(&self) -> &[Identity] {
        &self.identities
    }
}

impl fmt::Debug for AgeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKeys")
            .field(
                "identities",
                &format_args!("{} (hidden)", self.identities.len()),
            )
            .field("looked", &self.looked)
            .finish()
    }
}
