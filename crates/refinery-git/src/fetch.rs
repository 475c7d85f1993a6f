//! Fetching the deployed branch from the repository's remote, so a daemon deploys what users push.

use std::sync::atomic::AtomicBool;

use gix::Repository;
use gix::bstr::ByteSlice;
use gix::remote::Direction;

use crate::fetch_outcome::FetchOutcome;
use crate::git_error::{GitError, Result};
use crate::git_source::{GitSource, full_ref_name, read_err};

/// Who the reflog of a fetched tracking ref names when the repository configures no committer.
pub(crate) const REFLOG_NAME: &str = "refinery";
/// See [`REFLOG_NAME`].
pub(crate) const REFLOG_EMAIL: &str = "refinery@localhost";

impl GitSource {
    /// Fetches `branch` from the repository's remote (the branch's configured upstream remote,
    /// `branch.<branch>.remote`, else the only remote, else `origin`) and updates
    /// `refs/remotes/<remote>/<branch>` (forced, like git's default refspec: a force-pushed branch is
    /// followed). Returns the tip of that ref before and after. Only this one branch is fetched, no
    /// tags; the checked-out branch, the index and the work tree are never touched.
    ///
    /// A repository without any remote is `Ok(None)`: a local-only repository has nothing to fetch.
    ///
    /// Transports, all through gix (no git CLI in this process):
    /// - paths and `file://` URLs: gix runs `git-upload-pack` on the remote repository, as git does,
    ///   so that program must be on `PATH` (it is on these machines, in `/usr/local/bin`);
    /// - `ssh://` and `user@host:path`: gix runs the `ssh` program (or the repository's
    ///   `core.sshCommand`) without a terminal, so keys must be usable non-interactively;
    /// - `https://`: reqwest with rustls on the `ring` provider (installed as the process default
    ///   here if none is). Credentials come from the URL or the repository's own config only: the
    ///   repository is opened isolated from the user's and system's git config.
    ///
    /// Blocking: a daemon should call it off its async runtime (`spawn_blocking`). There is no
    /// timeout of its own beyond the HTTP connect timeout (20 s) and ssh's.
    ///
    /// The remote's configuration is read afresh on every call, so a remote added or changed while
    /// a daemon runs is used from its next fetch on; what the fetch writes (pack and ref) is seen by
    /// later calls on this same `GitSource`.
    ///
    /// Errors: [`GitError::RemoteUnreachable`], [`GitError::RemoteAuth`],
    /// [`GitError::RemoteBranchNotFound`], [`GitError::RemoteConfig`],
    /// [`GitError::RemoteAmbiguous`], [`GitError::Fetch`]. A failed fetch leaves the repository as
    /// it was: the pack is written to a temporary file and moved in place only when complete, and
    /// refs are updated under a lock.
    pub fn fetch_upstream(&self, branch: &str) -> Result<Option<FetchOutcome>> {
        let mut repo = self.reopen()?;
        let Some(remote_name) = upstream_remote(&repo, branch)? else {
            return Ok(None);
        };
        // The tracking ref's reflog names a committer; a daemon's repository often has none.
        repo.committer_or_set_fallback(REFLOG_NAME, REFLOG_EMAIL)
            .map_err(|source| read_err("the committer identity".to_owned(), source))?;
        let tracking = tracking_ref_name(&remote_name, branch)?;
        let config_err = |source| GitError::RemoteConfig {
            remote: remote_name.clone(),
            source,
        };

        let mut remote = repo
            .find_remote(remote_name.as_str())
            .map_err(config_err)?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let url = match remote.url(Direction::Fetch) {
            Some(url) => printable_url(url),
            None => {
                return Err(config_err(gix::Error::from_error(gix::error::message(
                    "the remote has no URL",
                ))));
            }
        };
        let spec = format!("+refs/heads/{branch}:{tracking}");
        remote
            .replace_refspecs(Some(spec.as_str()), Direction::Fetch)
            .map_err(config_err)?;
        if url.starts_with("http://") || url.starts_with("https://") {
            // reqwest is built without a provider of its own and panics without a default one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }

        let before = tip_of(&repo, &tracking)?;
        let unreachable = |source: gix::Error| {
            if is_auth_failure(&source) {
                GitError::RemoteAuth {
                    remote: remote_name.clone(),
                    url: url.clone(),
                    source,
                }
            } else {
                GitError::RemoteUnreachable {
                    remote: remote_name.clone(),
                    url: url.clone(),
                    source,
                }
            }
        };
        let prepared = remote
            .connect(Direction::Fetch)
            .map_err(unreachable)?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(unreachable)?;
        if prepared.ref_map().mappings.is_empty() {
            return Err(GitError::RemoteBranchNotFound {
                remote: remote_name,
                url,
                branch: branch.to_owned(),
            });
        }
        let never_interrupt = AtomicBool::new(false);
        prepared
            .receive(gix::progress::Discard, &never_interrupt)
            .map_err(|source| {
                if is_auth_failure(&source) {
                    GitError::RemoteAuth {
                        remote: remote_name.clone(),
                        url: url.clone(),
                        source,
                    }
                } else {
                    GitError::Fetch {
                        remote: remote_name.clone(),
                        url: url.clone(),
                        branch: branch.to_owned(),
                        source,
                    }
                }
            })?;
        let after = tip_of(&repo, &tracking)?;
        Ok(Some(FetchOutcome {
            remote: remote_name,
            branch: branch.to_owned(),
            before,
            after,
        }))
    }

    /// The ref the daemon should enforce for `branch`: `refs/remotes/<remote>/<branch>` when the
    /// repository has a remote (chosen as in [`fetch_upstream`](Self::fetch_upstream)), else
    /// `refs/heads/<branch>`. The ref itself may not exist yet (before the first fetch).
    pub fn tracking_ref(&self, branch: &str) -> Result<String> {
        let repo = self.reopen()?;
        match upstream_remote(&repo, branch)? {
            Some(remote) => tracking_ref_name(&remote, branch),
            None => {
                let local = format!("refs/heads/{branch}");
                full_ref_name(&local)?;
                Ok(local)
            }
        }
    }

    /// A new handle on the same repository with its config read afresh (remotes may have been
    /// added since [`GitSource::open`]). Objects it writes land in the same object directory, which
    /// the long-lived handle rescans when it misses an object.
    pub(crate) fn reopen(&self) -> Result<Repository> {
        let git_dir = self.git_dir();
        gix::open_opts(&git_dir, gix::open::Options::isolated()).map_err(|source| GitError::Open {
            path: git_dir,
            source,
        })
    }
}

/// The remote to fetch `branch` from: `branch.<branch>.remote` when it names a remote, else the only
/// remote, else `origin`. `None` when no remote is configured.
fn upstream_remote(repo: &Repository, branch: &str) -> Result<Option<String>> {
    // Validate the branch name before it is used in config lookups and refspecs.
    full_ref_name(&format!("refs/heads/{branch}"))?;
    if let Some(gix::remote::Name::Symbol(name)) =
        repo.branch_remote_name(branch.as_bytes().as_bstr(), Direction::Fetch)
        && name != "."
    {
        return Ok(Some(name.into_owned()));
    }
    if let Some(name) = repo.remote_default_name(Direction::Fetch) {
        return Ok(Some(name.to_str_lossy().into_owned()));
    }
    let remotes: Vec<String> = repo
        .remote_names()
        .into_iter()
        .map(|name| name.to_str_lossy().into_owned())
        .collect();
    if remotes.is_empty() {
        Ok(None)
    } else {
        Err(GitError::RemoteAmbiguous {
            branch: branch.to_owned(),
            remotes,
        })
    }
}

fn tracking_ref_name(remote: &str, branch: &str) -> Result<String> {
    let name = format!("refs/remotes/{remote}/{branch}");
    full_ref_name(&name)?;
    Ok(name)
}

/// The commit `refname` points to, `None` when it does not exist.
fn tip_of(repo: &Repository, refname: &str) -> Result<Option<String>> {
    let found = repo
        .try_find_reference(refname)
        .map_err(|source| read_err(format!("reference `{refname}`"), source))?;
    let Some(mut reference) = found else {
        return Ok(None);
    };
    let id = reference
        .peel_to_id()
        .map_err(|source| read_err(format!("reference `{refname}`"), source))?;
    Ok(Some(id.to_string()))
}

/// The URL as the user wrote it, without a password.
pub(crate) fn printable_url(url: &gix::Url) -> String {
    let mut url = url.clone();
    url.set_password(None);
    url.to_bstring().to_str_lossy().into_owned()
}

/// ssh's "Permission denied", HTTP 401/403 and unreadable paths all classify as one of these.
pub(crate) fn is_auth_failure(err: &gix::Error) -> bool {
    err.is_unauthenticated() || err.is_permission_denied()
}
