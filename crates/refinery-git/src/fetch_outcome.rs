/// What [`GitSource::fetch_upstream`](crate::GitSource::fetch_upstream) found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchOutcome {
    /// The remote fetched from (`origin`, or the branch's configured upstream remote).
    pub remote: String,
    /// The branch fetched, by its short name on the remote (`main`).
    pub branch: String,
    /// The full commit id `refs/remotes/<remote>/<branch>` pointed to before the fetch; `None` when
    /// the tracking ref did not exist yet (the first fetch of this branch).
    pub before: Option<String>,
    /// The full commit id it points to after the fetch. A successful fetch always leaves it set;
    /// it is an `Option` so a branch that disappears from the remote can be reported as `None`
    /// once fetches prune.
    pub after: Option<String>,
}

impl FetchOutcome {
    /// The tracking ref moved (or appeared): there is something new to deploy.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// `refs/remotes/<remote>/<branch>`, the ref this fetch updated.
    #[must_use]
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{}/{}", self.remote, self.branch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(before: Option<&str>, after: Option<&str>) -> FetchOutcome {
        FetchOutcome {
            remote: "origin".to_owned(),
            branch: "main".to_owned(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn changed_same_tip_is_false() {
        assert!(!outcome(Some("a"), Some("a")).changed());
    }

    #[test]
    fn changed_new_tip_or_first_fetch_is_true() {
        assert!(outcome(Some("a"), Some("b")).changed());
        assert!(outcome(None, Some("b")).changed());
    }

    #[test]
    fn tracking_ref_names_remote_and_branch() {
        assert_eq!(
            outcome(None, None).tracking_ref(),
            "refs/remotes/origin/main"
        );
    }
}
