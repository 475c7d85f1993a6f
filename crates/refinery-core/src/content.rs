//! Content-tracked mounts: a repository file or folder a container mounts (a `./conf:/etc/app`
//! bind, a compose `configs:` file) is desired state by content. The committed bytes are
//! materialised into a directory Refinery owns, one per content digest, and that directory is
//! what the container mounts; every file's digest is recorded on the container as a label, so a
//! change in git or an edit on the host is `config` drift naming the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex::hex;
use crate::yaml::Loc;

/// Label holding the digest over every content-tracked file of a container.
pub const LABEL_DIGEST: &str = "io.refinery.content-digest";
/// Prefix of the per-file labels: `io.refinery.content.conf/app.conf` → `sha256:…`.
pub const LABEL_FILE_PREFIX: &str = "io.refinery.content.";
/// Prefix of the drift fields of content-tracked files (`content.conf/app.conf`).
pub const FIELD_PREFIX: &str = "content.";

/// One committed file of a content-tracked mount.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentFile {
    /// `sha256:<hex>` of the committed bytes (for a SOPS file, of the encrypted bytes).
    pub digest: String,
    /// The bytes to write: the committed bytes, or a SOPS file's clear bytes. Never serialized
    /// (the spec hash sees the digest).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// A decrypted SOPS file: written with mode 0600, and never digested in the clear.
    #[serde(skip)]
    pub secret: bool,
}

impl std::fmt::Debug for ContentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentFile")
            .field("digest", &self.digest)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("secret", &self.secret)
            .finish()
    }
}

impl ContentFile {
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        ContentFile {
            digest: file_digest(&bytes),
            bytes,
            secret: false,
        }
    }

    /// A SOPS-encrypted file: digested by its `encrypted` bytes from git, written as `clear`.
    #[must_use]
    pub fn decrypted(encrypted: &[u8], clear: Vec<u8>) -> Self {
        ContentFile {
            digest: file_digest(encrypted),
            bytes: clear,
            secret: true,
        }
    }

    /// The digest to report for a copy on the host holding `on_host`: for a plain file the
    /// digest of those bytes; for a decrypted file its git digest when the copy is right, else a
    /// marker derived from that digest only, so the clear text is never digested.
    #[must_use]
    pub fn digest_of_copy(&self, on_host: &[u8]) -> String {
        if !self.secret {
            return file_digest(on_host);
        }
        if on_host == self.bytes.as_slice() {
            return self.digest.clone();
        }
        file_digest(format!("edited on the host: {}", self.digest).as_bytes())
    }
}

/// A mount whose source is a file or folder of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentMount {
    /// Mount target inside the container; empty for an env file, which is not mounted.
    pub target: String,
    /// Repository-relative path of the file or folder (`conf`, `conf/app.conf`).
    pub repo_path: String,
    /// A folder (its files keyed by their path below it) or a single file (keyed by `""`).
    pub dir: bool,
    /// Filled from the commit by the CLI, which at the same time points the matching bind
    /// mount's source at the materialised copy; empty until then (and nothing is written).
    pub files: BTreeMap<String, ContentFile>,
    /// Where the mount is declared (its `volumes` entry and field), for problems with its
    /// files: in [`ContentMount::declared_file`], or the manifest when that is empty.
    #[serde(skip)]
    pub declared: Option<(Loc, String)>,
    /// The compose file declaring the mount (repository-relative); empty for the manifest.
    #[serde(skip)]
    pub declared_file: String,
}

impl ContentMount {
    /// A mount of `repo_path` at `target`, its files not read yet.
    #[must_use]
    pub fn new(target: &str, repo_path: &str) -> Self {
        ContentMount {
            target: target.to_owned(),
            repo_path: repo_path.to_owned(),
            dir: false,
            files: BTreeMap::new(),
            declared: None,
            declared_file: String::new(),
        }
    }

    /// An env file (`env_file:`): read into the environment, not mounted (its target is empty).
    #[must_use]
    pub fn env_file(repo_path: &str) -> Self {
        ContentMount::new("", repo_path)
    }

    /// Whether this is an env file rather than a mount.
    #[must_use]
    pub fn is_env_file(&self) -> bool {
        self.target.is_empty()
    }

    /// The repository path of the file keyed `rel` (`conf` + `app.conf` → `conf/app.conf`).
    #[must_use]
    pub fn repo_file(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.repo_path.clone()
        } else {
            format!("{}/{rel}", self.repo_path)
        }
    }

    /// Digest of the whole mount: its kind and every file's path and digest.
    #[must_use]
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(if self.dir { "dir\n" } else { "file\n" }.as_bytes());
        for (rel, f) in &self.files {
            h.update(rel.as_bytes());
            h.update(b"\0");
            h.update(f.digest.as_bytes());
            h.update(b"\n");
        }
        format!("sha256:{}", hex(&h.finalize()))
    }

    /// Every file's repository path and digest.
    pub fn file_digests(&self) -> impl Iterator<Item = (String, &str)> {
        self.files
            .iter()
            .map(|(rel, f)| (self.repo_file(rel), f.digest.as_str()))
    }
}

/// The repository-relative path of a `./` bind source written in the repository folder `dir`
/// (`""` for the top): `./conf/../etc` in `stack` → `stack/etc`. `None` when it leaves the
/// repository.
#[must_use]
pub fn repo_relative(dir: &str, source: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in dir.split('/').chain(source.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

/// `sha256:<hex>` of a file's bytes.
#[must_use]
pub fn file_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// The digest over every content-tracked file of a container (`None` when it has none).
#[must_use]
pub fn spec_digest(mounts: &[ContentMount]) -> Option<String> {
    if mounts.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    for m in mounts {
        h.update(m.target.as_bytes());
        h.update(b"\0");
        h.update(m.digest().as_bytes());
        h.update(b"\n");
    }
    Some(format!("sha256:{}", hex(&h.finalize())))
}

/// The content labels of a container made from `mounts`: the overall digest and one label per
/// file.
#[must_use]
pub fn content_labels(mounts: &[ContentMount]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(d) = spec_digest(mounts) {
        out.insert(LABEL_DIGEST.to_owned(), d);
    }
    for m in mounts {
        for (path, digest) in m.file_digests() {
            out.insert(format!("{LABEL_FILE_PREFIX}{path}"), digest.to_owned());
        }
    }
    out
}

/// The per-file digests a container's labels record (repository path → digest).
#[must_use]
pub fn digests_from_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(LABEL_FILE_PREFIX)
                .map(|p| (p.to_owned(), v.clone()))
        })
        .collect()
}

/// The first 12 hex digits of a `sha256:` digest, for messages.
#[must_use]
pub fn short(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    d.get(..12).unwrap_or(d)
}

/// Where a container's materialised copy of `m` lives below the content root:
/// `<container>/<mount digest, 16 hex>/<last segment of the repository path>`.
#[must_use]
pub fn materialised_rel_path(container: &str, m: &ContentMount) -> String {
    let digest = m.digest();
    let d = digest.strip_prefix("sha256:").unwrap_or(&digest);
    let d = d.get(..16).unwrap_or(d);
    let base = m
        .repo_path
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("root");
    format!("{container}/{d}/{base}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_relative_normalizes_and_refuses_escapes() {
        assert_eq!(repo_relative("", "./conf").as_deref(), Some("conf"));
        assert_eq!(
            repo_relative("stack", "./a/../b").as_deref(),
            Some("stack/b")
        );
        assert_eq!(repo_relative("stack", "../conf").as_deref(), Some("conf"));
        assert_eq!(repo_relative("", "../conf"), None);
    }

    #[test]
    fn content_digest_changes_with_a_file() {
        let mut m = ContentMount::new("/etc/app", "conf");
        m.dir = true;
        m.files
            .insert("a.conf".into(), ContentFile::new(b"one".to_vec()));
        let before = m.digest();
        m.files
            .insert("a.conf".into(), ContentFile::new(b"two".to_vec()));
        assert_ne!(before, m.digest());
        let labels = content_labels(std::slice::from_ref(&m));
        let files = digests_from_labels(&labels);
        assert_eq!(files.keys().collect::<Vec<_>>(), ["conf/a.conf"]);
        assert!(labels.contains_key(LABEL_DIGEST));
        assert!(materialised_rel_path("web", &m).starts_with("web/"));
        assert!(materialised_rel_path("web", &m).ends_with("/conf"));
    }
}
