//! The desired state's port to a commit ([`refinery_core::desired_state::CommitFiles`]), filled
//! by reading the commit's objects.

use std::collections::BTreeMap;

use refinery_core::ContextFile;
use refinery_core::desired_state::CommitFiles;

use crate::{GitError, GitSource};

/// One commit of a repository, as the desired state reads it.
#[derive(Debug, Clone, Copy)]
pub struct CommitTree<'a> {
    git: &'a GitSource,
    commit: &'a str,
}

impl GitSource {
    /// The files of `commit` (an id or anything [`GitSource::resolve`] takes).
    #[must_use]
    pub fn commit_files<'a>(&'a self, commit: &'a str) -> CommitTree<'a> {
        CommitTree { git: self, commit }
    }
}

impl CommitFiles for CommitTree<'_> {
    type Error = GitError;

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        self.git.read_file(self.commit, path)
    }

    fn read_tree(&self, dir: &str) -> Result<BTreeMap<String, ContextFile>, GitError> {
        Ok(self
            .git
            .read_tree_modes(self.commit, dir)?
            .into_iter()
            .map(|(path, (data, executable))| (path, ContextFile { data, executable }))
            .collect())
    }

    fn checkout_dir(&self) -> Option<String> {
        self.git
            .workdir()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .map(|p| p.to_string_lossy().into_owned())
    }
}
