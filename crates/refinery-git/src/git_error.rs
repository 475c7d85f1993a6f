use std::path::PathBuf;

/// Everything that can go wrong at the git boundary.
///
/// Messages are lowercase `failed to …` with names in backticks; the cause, when there is one, is the
/// [`source`](std::error::Error::source) and is not repeated in the message. Hints are data: see
/// [`GitError::hints`].
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path holds no git repository (neither a `.git` directory below it nor a bare repository).
    #[error("failed to find a git repository at `{}`", path.display())]
    NotARepo {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// The path looks like a repository but could not be opened (permissions, broken config, …).
    #[error("failed to open the git repository at `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// `HEAD` points to a branch that has no commit yet (a fresh `git init`).
    #[error("failed to resolve `{rev}`: branch `{branch}` has no commits yet")]
    UnbornHead { rev: String, branch: String },

    /// The revision does not name anything in the repository (or is ambiguous, see the source).
    #[error("failed to resolve revision `{rev}`")]
    RevNotFound {
        rev: String,
        #[source]
        source: gix::Error,
    },

    /// The revision names an object that is not a commit and does not peel to one (a tree or a blob).
    #[error("failed to resolve `{rev}` to a commit")]
    NotACommit {
        rev: String,
        #[source]
        source: gix::Error,
    },

    /// A repository path is not a plain relative `/`-separated path.
    #[error("failed to use `{path}` as a path in the repository: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The reference name is not a valid full reference name below `refs/`.
    #[error("failed to use `{refname}` as a reference name")]
    InvalidRef {
        refname: String,
        #[source]
        source: Option<gix::Error>,
    },

    /// The ledger ref must point to a commit directly, not to another ref.
    #[error("failed to commit to `{refname}`: it is a symbolic reference")]
    SymbolicRef { refname: String },

    /// Writing to the branch that is checked out would change the work tree under the user's feet.
    #[error("failed to commit to `{refname}`: it is the checked-out branch")]
    RefCheckedOut { refname: String },

    /// The reference moved between reading its tip and updating it (compare-and-swap failed).
    #[error("failed to update `{refname}`: it moved since it was read")]
    RefMoved {
        refname: String,
        /// The tip this update was built on (`None`: the reference did not exist).
        expected: Option<String>,
        #[source]
        source: gix::Error,
    },

    /// Another process holds the reference's lock file. Retryable.
    #[error("failed to lock `{refname}`")]
    Locked {
        refname: String,
        lock_file: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// Reading objects or references failed.
    #[error("failed to read {what}")]
    Read {
        what: String,
        #[source]
        source: gix::Error,
    },

    /// Writing objects or references failed.
    #[error("failed to write {what}")]
    Write {
        what: String,
        #[source]
        source: gix::Error,
    },

    /// Several remotes are configured, none is named `origin` and the branch has no upstream.
    #[error("failed to choose the remote to fetch `{branch}` from")]
    RemoteAmbiguous {
        branch: String,
        /// The configured remotes, sorted.
        remotes: Vec<String>,
    },

    /// The remote's configuration is unusable: it does not exist, has no URL, or its URL does not
    /// parse.
    #[error("failed to use remote `{remote}`")]
    RemoteConfig {
        remote: String,
        #[source]
        source: gix::Error,
    },

    /// Connecting to the remote or listing its branches failed: a wrong URL, a path that is not a
    /// repository, a host that cannot be reached, or a server that does not speak git.
    #[error("failed to reach remote `{remote}` at `{url}`")]
    RemoteUnreachable {
        remote: String,
        /// The remote's URL, without any password.
        url: String,
        #[source]
        source: gix::Error,
    },

    /// The remote refused us: ssh or https authentication failed, or the path is not readable.
    #[error("failed to authenticate to remote `{remote}` at `{url}`")]
    RemoteAuth {
        remote: String,
        /// The remote's URL, without any password.
        url: String,
        #[source]
        source: gix::Error,
    },

    /// The remote was reached but has no such branch (nothing pushed yet, or another name).
    #[error("failed to find branch `{branch}` on remote `{remote}` at `{url}`")]
    RemoteBranchNotFound {
        remote: String,
        url: String,
        branch: String,
    },

    /// The remote was reached and listed the branch, but receiving its commits or updating the
    /// tracking ref failed. Nothing half-written is left behind: the pack is written to a temporary
    /// file first and refs are updated under a lock.
    #[error("failed to fetch `{branch}` from remote `{remote}` at `{url}`")]
    Fetch {
        remote: String,
        url: String,
        branch: String,
        #[source]
        source: gix::Error,
    },

    /// `--follow-tag` is not a usable glob.
    #[error("failed to use `{pattern}` as a tag pattern: {reason}")]
    InvalidTagPattern { pattern: String, reason: String },

    /// Several remotes are configured and none is named `origin`: which one's tags to follow?
    #[error("failed to choose the remote to fetch tags from")]
    TagRemoteAmbiguous {
        /// The configured remotes, sorted.
        remotes: Vec<String>,
    },

    /// The remote was reached, but receiving its tags or updating `refs/tags/` failed. Nothing
    /// half-written is left behind.
    #[error("failed to fetch tags from remote `{remote}` at `{url}`")]
    FetchTags {
        remote: String,
        url: String,
        #[source]
        source: gix::Error,
    },

    /// Reading a file of the work tree failed (other than it being absent).
    #[error("failed to read work tree file `{}`", path.display())]
    Worktree {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Results at the git boundary.
pub type Result<T, E = GitError> = std::result::Result<T, E>;

impl GitError {
    /// What the user can do about it, one line each (printed as `hint: …`).
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            GitError::NotARepo { path, .. } => vec![format!(
                "run `git init` in `{}`, or pass --repo PATH",
                path.display()
            )],
            GitError::Open { .. } => {
                vec!["check that the repository's files are readable by this user".to_owned()]
            }
            GitError::UnbornHead { .. } => vec![
                "commit the manifests first, e.g. `git add refinery.yaml && git commit -m 'desired state'`"
                    .to_owned(),
            ],
            GitError::RevNotFound { .. } => vec![
                "pass a branch, a tag, a commit id (at least 4 hex digits) or `HEAD~N`; list them with `git log --oneline --all`"
                    .to_owned(),
            ],
            GitError::NotACommit { .. } => {
                vec!["pass a branch, a tag or a commit id, not a tree or a file".to_owned()]
            }
            GitError::InvalidPath { .. } => vec![
                "use a path relative to the repository root, separated by `/`, without `..`"
                    .to_owned(),
            ],
            GitError::InvalidRef { .. } => {
                vec!["use a full reference name such as `refs/heads/refinery/ledger`".to_owned()]
            }
            GitError::SymbolicRef { refname } => vec![format!(
                "point `{refname}` at a commit, or choose another ref such as `refs/heads/refinery/ledger`"
            )],
            GitError::RefCheckedOut { .. } => vec![
                "choose a ref that is not checked out, such as `refs/heads/refinery/ledger`"
                    .to_owned(),
            ],
            GitError::RefMoved { .. } => vec![
                "another writer updated the ref first; read its new tip and try again".to_owned(),
            ],
            GitError::Locked { lock_file, .. } => vec![
                "another git process is updating the ref; try again".to_owned(),
                format!(
                    "if no git process is running, delete `{}`",
                    lock_file.display()
                ),
            ],
            GitError::Read { .. } | GitError::Write { .. } => vec![
                "check the repository with `git fsck` and the disk for free space".to_owned(),
            ],
            GitError::Worktree { .. } => {
                vec!["check that the work tree's files are readable by this user".to_owned()]
            }
            GitError::RemoteAmbiguous { branch, remotes } => vec![
                format!(
                    "set the branch's upstream, e.g. `git branch --set-upstream-to={}/{branch} {branch}`",
                    remotes.first().map_or("<remote>", String::as_str)
                ),
                format!(
                    "or name the remote to deploy from `origin` (configured: {})",
                    backticked(remotes)
                ),
            ],
            GitError::RemoteConfig { remote, .. } => vec![
                "list the remotes and their URLs with `git remote -v`".to_owned(),
                format!("fix the URL with `git remote set-url {remote} URL`"),
            ],
            GitError::RemoteUnreachable { remote, url, .. } => unreachable_hints(remote, url),
            GitError::RemoteAuth { url, .. } => auth_hints(url),
            GitError::RemoteBranchNotFound { remote, branch, .. } => vec![
                format!("push the branch first: `git push {remote} {branch}`"),
                format!("or deploy a branch the remote has: `git ls-remote --heads {remote}`"),
            ],
            GitError::InvalidTagPattern { .. } => vec![
                "give a glob over tag names, like `v*` or `release-1.*` (quote it for the shell)"
                    .to_owned(),
            ],
            GitError::TagRemoteAmbiguous { remotes } => vec![format!(
                "name the remote to deploy tags from `origin` (configured: {})",
                backticked(remotes)
            )],
            GitError::FetchTags { remote, .. } => vec![
                "the local repository was left as it was; the next fetch tries again".to_owned(),
                format!("try it by hand to see more: `git fetch {remote} '+refs/tags/*:refs/tags/*'`"),
            ],
            GitError::Fetch { remote, branch, .. } => vec![
                "the local repository was left as it was; the next fetch tries again".to_owned(),
                format!("try it by hand to see more: `git fetch {remote} {branch}`"),
            ],
        }
    }

    /// Trying the same thing again later may succeed without anything else changing.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            GitError::Locked { .. } => true,
            // The network or the server may come back; a wrong URL stays wrong, but a daemon
            // retrying it with back-off costs little and heals when the URL is fixed.
            GitError::RemoteUnreachable { .. }
            | GitError::Fetch { .. }
            | GitError::FetchTags { .. } => true,
            _ => false,
        }
    }

    /// The state changed under us: re-read and rebuild before trying again.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, GitError::RefMoved { .. })
    }
}

/// The kinds of remote URL the hints tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlKind {
    File,
    Ssh,
    Http,
    Other,
}

fn url_kind(url: &str) -> UrlKind {
    match gix::url::parse(gix::bstr::BStr::new(url)).map(|url| url.scheme) {
        Ok(gix::url::Scheme::File) => UrlKind::File,
        Ok(gix::url::Scheme::Ssh) => UrlKind::Ssh,
        Ok(gix::url::Scheme::Http | gix::url::Scheme::Https) => UrlKind::Http,
        _ => UrlKind::Other,
    }
}

/// The host part of an ssh URL with its user (`git@github.com`), for `ssh -T`.
fn ssh_destination(url: &str) -> Option<String> {
    let url = gix::url::parse(gix::bstr::BStr::new(url)).ok()?;
    let host = url.host()?;
    Some(match url.user() {
        Some(user) => format!("{user}@{host}"),
        None => host.to_owned(),
    })
}

fn file_path(url: &str) -> String {
    url.strip_prefix("file://").unwrap_or(url).to_owned()
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unreachable_hints(remote: &str, url: &str) -> Vec<String> {
    match url_kind(url) {
        UrlKind::File => vec![
            format!(
                "check that `{}` exists and is a git repository",
                file_path(url)
            ),
            format!("or point the remote elsewhere: `git remote set-url {remote} URL`"),
        ],
        UrlKind::Ssh => {
            let host = gix::url::parse(gix::bstr::BStr::new(url))
                .ok()
                .and_then(|url| url.host().map(str::to_owned))
                .unwrap_or_else(|| "HOST".to_owned());
            vec![
                format!("check the URL (`git remote get-url {remote}`) and the network"),
                format!(
                    "if ssh says `Host key verification failed`, trust the host first: `ssh-keyscan {host} >> ~/.ssh/known_hosts`"
                ),
                format!("try it by hand: `git ls-remote {url}`"),
            ]
        }
        UrlKind::Http | UrlKind::Other => vec![
            format!("check the URL (`git remote get-url {remote}`) and the network"),
            format!("try it by hand: `git ls-remote {url}`"),
        ],
    }
}

fn auth_hints(url: &str) -> Vec<String> {
    match url_kind(url) {
        UrlKind::Ssh => {
            let destination = ssh_destination(url).unwrap_or_else(|| "HOST".to_owned());
            vec![
                format!(
                    "check that this user's ssh key is accepted by the server: `ssh -T {destination}`"
                ),
                "a daemon has no terminal to ask for a passphrase or to confirm a host key: use an ssh-agent or a key without passphrase, and add the host to `~/.ssh/known_hosts` beforehand".to_owned(),
            ]
        }
        UrlKind::Http => vec![
            "give credentials to the repository's own config (`git config credential.helper store`), or use an ssh:// URL with a deploy key".to_owned(),
        ],
        UrlKind::File => vec![format!(
            "check that `{}` is readable by this user",
            file_path(url)
        )],
        UrlKind::Other => vec!["check the credentials the remote expects".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(url: &str) -> GitError {
        GitError::RemoteAuth {
            remote: "origin".to_owned(),
            url: url.to_owned(),
            source: gix::Error::from_error(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            )),
        }
    }

    #[test]
    fn hints_ssh_auth_names_ssh_destination() {
        let hints = auth("ssh://git@example.com/infra.git").hints();
        assert!(hints[0].contains("`ssh -T git@example.com`"), "{hints:?}");
        let hints = auth("git@example.com:infra.git").hints();
        assert!(hints[0].contains("`ssh -T git@example.com`"), "{hints:?}");
    }

    #[test]
    fn hints_https_auth_mentions_credentials() {
        let hints = auth("https://example.com/infra.git").hints();
        assert!(hints[0].contains("credential"), "{hints:?}");
    }

    #[test]
    fn hints_unreachable_file_and_network_differ() {
        let err = |url: &str| GitError::RemoteUnreachable {
            remote: "origin".to_owned(),
            url: url.to_owned(),
            source: gix::Error::from_error(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let file = err("/srv/infra.git").hints();
        assert!(file[0].contains("`/srv/infra.git` exists"), "{file:?}");
        let net = err("https://example.com/infra.git").hints();
        assert!(net[0].contains("network"), "{net:?}");
        assert!(err("https://example.com/x.git").is_retryable());
    }

    #[test]
    fn hints_remote_ambiguous_lists_remotes() {
        let err = GitError::RemoteAmbiguous {
            branch: "main".to_owned(),
            remotes: vec!["a".to_owned(), "b".to_owned()],
        };
        let hints = err.hints();
        assert!(
            hints[0].contains("--set-upstream-to=a/main main"),
            "{hints:?}"
        );
        assert!(hints[1].contains("`a`, `b`"), "{hints:?}");
    }

    #[test]
    fn hints_every_variant_has_at_least_one() {
        let err = GitError::RefCheckedOut {
            refname: "refs/heads/main".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "failed to commit to `refs/heads/main`: it is the checked-out branch"
        );
        assert!(!err.hints().is_empty());
    }
}
