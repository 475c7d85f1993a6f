//! Following tags: fetching them from the remote and choosing the highest that matches a pattern.

use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use crate::fetch::{REFLOG_EMAIL, REFLOG_NAME, is_auth_failure, printable_url};
use crate::git_error::{GitError, Result};
use crate::git_source::{GitSource, read_err};
use crate::tag_pattern::TagPattern;

/// A tag and the commit it points to (an annotated tag peeled).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagTip {
    /// Short name (`v1.4.0`).
    pub name: String,
    /// Full commit id.
    pub commit: String,
}

impl TagTip {
    /// `refs/tags/<name>`.
    #[must_use]
    pub fn full_ref(&self) -> String {
        format!("refs/tags/{}", self.name)
    }
}

/// What [`GitSource::fetch_tags`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFetch {
    /// The remote fetched from.
    pub remote: String,
    /// The highest tag the remote has that matches the pattern, `None` when none does.
    pub highest: Option<TagTip>,
    /// How many of the remote's tags match.
    pub matching: usize,
}

/// The refspec tags are fetched with: every tag, forced, so a tag moved on the remote is followed.
const TAGS_REFSPEC: &str = "+refs/tags/*:refs/tags/*";

impl GitSource {
    /// Fetches the remote's tags into `refs/tags/` (forced: a tag moved on the remote moves here
    /// too) and returns the highest of those the remote has now that match `pattern`, in
    /// [version order](crate::cmp_versions). A tag deleted on the remote is not chosen, even if
    /// it is still here. Branches, the index and the work tree are never touched.
    ///
    /// The remote is the only one, else `origin`. A repository without remotes is `Ok(None)`:
    /// use [`highest_tag`](Self::highest_tag) there. Blocking, like
    /// [`fetch_upstream`](Self::fetch_upstream).
    ///
    /// Errors: [`GitError::TagRemoteAmbiguous`], [`GitError::RemoteConfig`],
    /// [`GitError::RemoteUnreachable`], [`GitError::RemoteAuth`], [`GitError::FetchTags`].
    pub fn fetch_tags(&self, pattern: &TagPattern) -> Result<Option<TagFetch>> {
        let mut repo = self.reopen()?;
        let Some(remote_name) = tag_remote(&repo)? else {
            return Ok(None);
        };
        repo.committer_or_set_fallback(REFLOG_NAME, REFLOG_EMAIL)
            .map_err(|source| read_err("the committer identity".to_owned(), source))?;
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
        remote
            .replace_refspecs(Some(TAGS_REFSPEC), Direction::Fetch)
            .map_err(config_err)?;
        if url.starts_with("http://") || url.starts_with("https://") {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let classify = |source: gix::Error, receiving: bool| {
            if is_auth_failure(&source) {
                GitError::RemoteAuth {
                    remote: remote_name.clone(),
                    url: url.clone(),
                    source,
                }
            } else if receiving {
                GitError::FetchTags {
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
            .map_err(|e| classify(e, false))?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| classify(e, false))?;
        let remote_tags: Vec<String> = prepared
            .ref_map()
            .remote_refs
            .iter()
            .filter_map(|r| {
                let (name, _, _) = r.unpack();
                name.to_str()
                    .ok()
                    .and_then(|n| n.strip_prefix("refs/tags/"))
                    .map(str::to_owned)
            })
            .collect();
        let matching = remote_tags.iter().filter(|t| pattern.matches(t)).count();
        let highest = pattern
            .highest(remote_tags.iter().map(String::as_str))
            .map(str::to_owned);
        if !prepared.ref_map().mappings.is_empty() {
            let never_interrupt = AtomicBool::new(false);
            prepared
                .receive(gix::progress::Discard, &never_interrupt)
                .map_err(|e| classify(e, true))?;
        }
        let highest = match highest {
            Some(name) => {
                let commit = self.resolve(&format!("refs/tags/{name}"))?.id;
                Some(TagTip { name, commit })
            }
            None => None,
        };
        Ok(Some(TagFetch {
            remote: remote_name,
            highest,
            matching,
        }))
    }

    /// The highest tag in this repository that matches `pattern`, in
    /// [version order](crate::cmp_versions), with its commit; `None` when none does. Tags that
    /// point to something other than a commit are left out.
    pub fn highest_tag(&self, pattern: &TagPattern) -> Result<Option<TagTip>> {
        let repo = self.reopen()?;
        let platform = repo
            .references()
            .map_err(|source| read_err("references".to_owned(), source))?;
        let tags = platform
            .tags()
            .map_err(|source| read_err("tags".to_owned(), source))?;
        let mut names = Vec::new();
        for tag in tags {
            let tag = tag.map_err(|e| read_err("a tag".to_owned(), gix::Error::from_error(e)))?;
            if let Some(short) = tag
                .name()
                .as_bstr()
                .to_str()
                .ok()
                .and_then(|n| n.strip_prefix("refs/tags/"))
            {
                names.push(short.to_owned());
            }
        }
        // The highest first; skip tags of trees or blobs.
        names.retain(|n| pattern.matches(n));
        names.sort_by(|a, b| crate::cmp_versions(b, a));
        for name in names {
            match self.resolve(&format!("refs/tags/{name}")) {
                Ok(info) => {
                    return Ok(Some(TagTip {
                        name,
                        commit: info.id,
                    }));
                }
                Err(GitError::NotACommit { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// The remote tags come from: the only one, else `origin`; `None` without remotes.
fn tag_remote(repo: &gix::Repository) -> Result<Option<String>> {
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
        Err(GitError::TagRemoteAmbiguous { remotes })
    }
}
