//! A service's `build:`: its context read from the commit, `.dockerignore` applied, digested,
//! and the tag the built image gets.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::manifest::Issue;
use crate::spec::{BuildSpec, ContextFile};
use crate::yaml::Loc;

use super::service::BuildDecl;

/// The tag of an image built for a service without `image:`: `<project>-<service>` tagged with
/// the context's digest, so a changed context is another image and an unchanged one is reused.
pub(super) fn build_tag(project: &str, service: &str, b: &BuildSpec) -> String {
    format!(
        "{project}-{}:refinery-{}",
        service.to_ascii_lowercase(),
        b.short_digest()
    )
}

/// Why a build context cannot be used; the caller adds the field and service.
pub(super) struct BuildIssue {
    file: String,
    loc: Loc,
    message: String,
    hint: Option<String>,
}

impl BuildIssue {
    pub(super) fn with_field(self, field: &str, service: &str) -> Issue {
        let issue = Issue::new(
            &self.file,
            self.loc,
            field,
            format!("service `{service}`: {}", self.message),
        );
        match self.hint {
            Some(h) => issue.with_hint(h),
            None => issue,
        }
    }
}

/// The context's files that its `.dockerignore` keeps, by Docker's rules: `#` comments, patterns
/// relative to the context (`*` and `?` within a path segment, `**` across them), a leading `!`
/// keeps again, the last matching line wins, and a pattern matching a directory covers all under
/// it. `.dockerignore` itself and the Dockerfile are sent anyway (the builder needs them; Docker
/// does the same). What is left out is not built and not digested.
fn apply_dockerignore(
    files: BTreeMap<String, ContextFile>,
    dockerfile: &str,
) -> Result<BTreeMap<String, ContextFile>, String> {
    let Some(ignore) = files.get(".dockerignore") else {
        return Ok(files);
    };
    let text = String::from_utf8_lossy(&ignore.data).into_owned();
    let mut rules: Vec<(bool, globset::GlobMatcher)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keep, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        let pattern = pattern.trim_end_matches('/');
        if pattern.is_empty() {
            continue;
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("failed to read `.dockerignore` pattern `{line}`: {e}"))?;
        rules.push((keep, glob.compile_matcher()));
    }
    let excluded = |path: &str| {
        // The path and each directory above it; the last rule matching any of them decides.
        let mut prefixes: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        prefixes.push(path);
        let mut out = false;
        for (keep, m) in &rules {
            if prefixes.iter().any(|p| m.is_match(p)) {
                out = !keep;
            }
        }
        out
    };
    Ok(files
        .into_iter()
        .filter(|(path, _)| path == ".dockerignore" || path == dockerfile || !excluded(path))
        .collect())
}

/// Reads a service's build context from the commit and digests it.
pub(super) fn resolve_build(
    b: &BuildDecl,
    project_dir: &str,
    read_tree: &dyn Fn(&str) -> BTreeMap<String, ContextFile>,
) -> Result<BuildSpec, BuildIssue> {
    let issue = |message: String, hint: &str| BuildIssue {
        file: b.file.clone(),
        loc: b.loc,
        message,
        hint: Some(hint.to_owned()),
    };
    let ctx = b.context.trim();
    if ctx.contains("://") || ctx.starts_with("git@") {
        return Err(issue(
            format!("build context `{ctx}` is remote; Refinery builds only from the repository"),
            "commit the context to the repository and point `build:` at its directory",
        ));
    }
    if ctx.starts_with('/') || ctx.starts_with('~') {
        return Err(issue(
            format!("build context `{ctx}` is outside the repository"),
            "the context is read from the commit: use a directory of the repository, relative to the compose file",
        ));
    }
    let Some(dir) = crate::content::repo_relative(project_dir, ctx) else {
        return Err(issue(
            format!("build context `{ctx}` is outside the repository"),
            "the context is read from the commit: use a directory of the repository, relative to the compose file",
        ));
    };
    let shown = if dir.is_empty() { "." } else { dir.as_str() };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let files: BTreeMap<String, ContextFile> = read_tree(&dir)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rel| (rel.to_owned(), v)))
        .collect();
    if files.is_empty() {
        return Err(issue(
            format!("failed to find build context `{shown}` in the commit"),
            "commit the directory (with its Dockerfile) or fix the path",
        ));
    }
    let written = b.dockerfile.as_deref().unwrap_or("Dockerfile");
    let dockerfile = match crate::content::repo_relative("", written) {
        Some(d) if !written.starts_with('/') && !d.is_empty() => d,
        _ => {
            return Err(issue(
                format!("dockerfile `{written}` is outside the build context `{shown}`"),
                "give a path inside the context",
            ));
        }
    };
    let files = match apply_dockerignore(files, &dockerfile) {
        Ok(f) => f,
        Err(message) => {
            return Err(issue(
                message,
                "`.dockerignore` takes one pattern a line (`*`, `?`, `**`, `!` to keep)",
            ));
        }
    };
    if !files.contains_key(&dockerfile) {
        return Err(issue(
            format!("failed to find `{dockerfile}` in the build context `{shown}` of the commit"),
            "commit the Dockerfile, or name it with `build.dockerfile`",
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(b"refinery-build-v1\0");
    for (path, file) in &files {
        hasher.update(path.as_bytes());
        let mode = if file.executable { "x" } else { "-" };
        hasher.update(format!("\0{mode}\0{}\0", file.data.len()).as_bytes());
        hasher.update(&file.data);
    }
    hasher.update(format!("dockerfile\0{dockerfile}\0").as_bytes());
    for (k, v) in &b.args {
        hasher.update(format!("arg\0{k}\0{v}\0").as_bytes());
    }
    if let Some(t) = &b.target {
        hasher.update(format!("target\0{t}\0").as_bytes());
    }
    // What else shapes the image, each only when set (so the digests of builds without them
    // stay what they were). `cache_from` only makes a build faster.
    if let Some(n) = &b.network {
        hasher.update(format!("network\0{n}\0").as_bytes());
    }
    if let Some(s) = b.shm_size {
        hasher.update(format!("shm_size\0{s}\0").as_bytes());
    }
    for (k, v) in &b.labels {
        hasher.update(format!("label\0{k}\0{v}\0").as_bytes());
    }
    let mut extra_hosts = b.extra_hosts.clone();
    extra_hosts.sort();
    for h in &extra_hosts {
        hasher.update(format!("extra_host\0{h}\0").as_bytes());
    }
    Ok(BuildSpec {
        context: dir,
        dockerfile,
        args: b.args.clone(),
        target: b.target.clone(),
        network: b.network.clone(),
        shm_size: b.shm_size,
        labels: b.labels.clone(),
        extra_hosts,
        cache_from: b.cache_from.clone(),
        digest: crate::hex::hex(&hasher.finalize()),
        files: std::sync::Arc::new(files),
    })
}
