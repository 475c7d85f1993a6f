//! An image reference as the distribution reference grammar reads it:
//! `[host[:port]/]path[:tag][@algorithm:hex]`. The first path component is the registry host when
//! it holds a `.` or a `:` or is `localhost`; otherwise the image lives on Docker Hub (`docker.io`).

use std::fmt;

/// Docker Hub's registry host, the default for references without one.
pub const DOCKER_HUB: &str = "docker.io";
/// The server address Docker Hub's credentials are stored under by the docker CLI.
pub const DOCKER_HUB_AUTH_SERVER: &str = "https://index.docker.io/v1/";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// The registry host (`ghcr.io`, `127.0.0.1:5000`, `docker.io`).
    registry: String,
    /// The name as written, without tag or digest (`busybox`, `ghcr.io/org/app`).
    name: String,
    tag: Option<String>,
    /// `sha256:<64 hex>` (or another algorithm's digest).
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an image reference: {reason}")]
pub struct ImageRefError {
    pub reference: String,
    pub reason: String,
}

impl ImageRef {
    /// Parses `reference`; see the module documentation for the grammar.
    ///
    /// # Errors
    /// A reference that breaks the grammar, with the reason.
    pub fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
        let fail = |reason: &str| ImageRefError {
            reference: reference.to_owned(),
            reason: reason.to_owned(),
        };
        if reference.is_empty() {
            return Err(fail("it is empty"));
        }
        if reference.len() > 4096 || reference.chars().any(char::is_whitespace) {
            return Err(fail("it holds white space or is too long"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|r| fail(&r))?;
                (rest, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let colon = last_slash + i;
                let tag = &rest[colon + 1..];
                check_tag(tag).map_err(|r| fail(&r))?;
                (&rest[..colon], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(fail("the name is empty"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if is_host(first) => (first.to_owned(), path),
            _ => (DOCKER_HUB.to_owned(), name),
        };
        for component in path.split('/') {
            check_component(component).map_err(|r| fail(&r))?;
        }
        Ok(ImageRef {
            registry,
            name: name.to_owned(),
            tag,
            digest,
        })
    }

    /// The registry host (`docker.io` when the reference names none).
    #[must_use]
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The name as written, without tag or digest.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository path inside the registry (`library/busybox` on Docker Hub).
    #[must_use]
    pub fn repository(&self) -> String {
        let path = self
            .name
            .strip_prefix(&format!("{}/", self.registry))
            .unwrap_or(&self.name);
        if self.registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        }
    }

    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    #[must_use]
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What the engine's pull takes as its `tag`: the digest when pinned, else the tag
    /// (`latest` when none is written).
    #[must_use]
    pub fn pull_tag(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The server address credentials for this registry are looked up and sent under.
    #[must_use]
    pub fn auth_server(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_AUTH_SERVER
        } else {
            &self.registry
        }
    }

    /// The reference without its digest (`name:tag`, `latest` when no tag is written): what a
    /// tag follows in the registry.
    #[must_use]
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.name, self.tag.as_deref().unwrap_or("latest"))
    }

    /// `name@digest` when pinned: the reference the engine records in an image's `RepoDigests`.
    #[must_use]
    pub fn pinned(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("{}@{d}", self.name))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Whether the first component of a name is a registry host.
fn is_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Normalizes a registry host or a docker CLI `auths` key (`https://ghcr.io/v2/`,
/// `index.docker.io`) to the host form references use (`ghcr.io`, `docker.io`).
#[must_use]
pub fn normalize_registry_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest `{digest}` must read `sha256:` and 64 hexadecimal digits"
        ));
    };
    let hex_ok = |len: usize| hex.len() == len && hex.chars().all(|c| c.is_ascii_hexdigit());
    let ok = match algorithm {
        "sha256" => hex_ok(64),
        "sha512" => hex_ok(128),
        _ => false,
    };
    if ok && !hex.chars().any(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "the digest `{digest}` must read `sha256:` and 64 lowercase hexadecimal digits"
        ))
    }
}

fn check_component(c: &str) -> Result<(), String> {
    // alnum+ (separator alnum+)*, a separator being `.`, `_`, `__` or a run of `-`.
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    let mut ok = true;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            ok = false;
            break;
        }
        if i == bytes.len() {
            break;
        }
        let sep = &c[i..];
        i += if sep.starts_with("__") {
            2
        } else if sep.starts_with('.') || sep.starts_with('_') {
            1
        } else if sep.starts_with('-') {
            sep.len() - sep.trim_start_matches('-').len()
        } else {
            ok = false;
            break;
        };
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the path component `{c}` must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_ref_parses_hosts_tags_and_digests() {
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            (
                "busybox",
                "docker.io",
                "library/busybox",
                None,
                None,
                "latest",
            ),
            (
                "busybox:1.36",
                "docker.io",
                "library/busybox",
                Some("1.36"),
                None,
                "1.36",
            ),
            ("org/app:v1", "docker.io", "org/app", Some("v1"), None, "v1"),
            (
                "ghcr.io/org/app:stable",
                "ghcr.io",
                "org/app",
                Some("stable"),
                None,
                "stable",
            ),
            (
                "127.0.0.1:5000/app",
                "127.0.0.1:5000",
                "app",
                None,
                None,
                "latest",
            ),
            ("localhost/app:1", "localhost", "app", Some("1"), None, "1"),
            (
                "docker.io/library/redis:7",
                "docker.io",
                "library/redis",
                Some("7"),
                None,
                "7",
            ),
        ];
        for (s, host, repo, tag, digest, pull) in cases {
            let r = ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(r.registry(), *host, "{s}");
            assert_eq!(r.repository(), *repo, "{s}");
            assert_eq!(r.tag(), *tag, "{s}");
            assert_eq!(r.digest(), *digest, "{s}");
            assert_eq!(r.pull_tag(), *pull, "{s}");
            assert_eq!(r.to_string(), *s, "{s}");
        }
    }

    #[test]
    fn image_ref_with_tag_and_digest_pulls_the_digest() {
        let s = format!("127.0.0.1:5000/app:1@{D}");
        let r = ImageRef::parse(&s).expect("valid");
        assert_eq!(r.name(), "127.0.0.1:5000/app");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.pull_tag(), D);
        assert_eq!(r.tagged(), "127.0.0.1:5000/app:1");
        assert_eq!(r.pinned(), Some(format!("127.0.0.1:5000/app@{D}")));
        assert_eq!(r.to_string(), s);
        let bare = ImageRef::parse(&format!("app@{D}")).expect("valid");
        assert_eq!(bare.tag(), None);
        assert_eq!(bare.tagged(), "app:latest");
    }

    #[test]
    fn image_ref_bad_input_is_an_error_naming_the_part() {
        for (s, part) in [
            ("", "empty"),
            ("App:1", "path component"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("app@sha256:abc", "digest"),
            ("app@md5:0123", "digest"),
            ("a//b", "path component"),
            ("a b", "white space"),
            ("app..x", "path component"),
        ] {
            let e = ImageRef::parse(s).expect_err(s);
            assert!(e.to_string().contains(part), "{s}: {e}");
        }
    }

    #[test]
    fn image_ref_separators_follow_the_grammar() {
        for ok in ["a_b", "a__b", "a-b", "a---b", "a.b", "a0"] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["a___b", "a-", "_a", "a.-b"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_host_keys_normalize_like_the_docker_cli() {
        assert_eq!(normalize_registry_host(DOCKER_HUB_AUTH_SERVER), "docker.io");
        assert_eq!(normalize_registry_host("https://ghcr.io/v2/"), "ghcr.io");
        assert_eq!(normalize_registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            normalize_registry_host("http://Reg.Example.com:443"),
            "reg.example.com:443"
        );
    }

    #[test]
    fn auth_server_of_docker_hub_is_the_index_url() {
        assert_eq!(
            ImageRef::parse("busybox").expect("valid").auth_server(),
            DOCKER_HUB_AUTH_SERVER
        );
        assert_eq!(
            ImageRef::parse("ghcr.io/a/b").expect("valid").auth_server(),
            "ghcr.io"
        );
    }
}
