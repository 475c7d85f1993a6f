//! The git side of Refinery: the desired state is read from a commit (never from the work tree),
//! and ledger commits are written to a ref that is not checked out, through gix's object-level API.
//! The branch to deploy can be fetched from the repository's remote. No git CLI is used (fetching
//! from a local path runs `git-upload-pack` on the remote side, as git itself does).

mod commit_files;
mod commit_info;
mod fetch;
mod fetch_outcome;
mod follower;
mod git_error;
mod git_source;
mod repo_path;
mod tag_pattern;
mod tags;
#[cfg(any(test, feature = "testing"))]
mod test_repo;

pub use commit_files::CommitTree;
pub use commit_info::{CommitInfo, SHORT_ID_LEN};
pub use fetch_outcome::FetchOutcome;
pub use follower::{Follow, Follower, Tip};
pub use git_error::{GitError, Result};
pub use git_source::{CommitMeta, GitSource};
pub use tag_pattern::{TagPattern, cmp_versions};
pub use tags::{TagFetch, TagTip};
#[cfg(any(test, feature = "testing"))]
pub use test_repo::{TEST_AUTHOR_EMAIL, TEST_AUTHOR_NAME, TEST_EPOCH, TEST_TIME_STEP, TestRepo};
