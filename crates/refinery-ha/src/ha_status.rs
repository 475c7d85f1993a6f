//! An instance's place in the election, as the log, the status page and `refinery status` show it.

use serde::Serialize;

/// An instance's role in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the leader key: acts while its lease is fresh.
    Leader,
    /// Another instance leads; this one observes and waits.
    Standby,
    /// etcd not reached (yet, or any more): acts on nothing.
    Connecting,
    /// `refinery status --ha`: nobody holds the leader key.
    None,
}

/// This instance's place in the election, for the log, the status page and `refinery status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaStatus {
    /// `etcd://…` as given.
    pub url: String,
    /// This instance's id (`<host>-<pid>`).
    pub id: String,
    pub role: Role,
    /// The leader's id, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The leader's term: the create revision of the leader key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Every registered instance but the leader.
    pub standbys: Vec<String>,
    pub lease_secs: u64,
}

/// The registered instances other than the leader, sorted, each once.
pub(crate) fn standbys(leader: Option<&String>, mut members: Vec<String>) -> Vec<String> {
    members.retain(|m| leader != Some(m));
    members.sort();
    members.dedup();
    members
}

impl HaStatus {
    /// The election as `refinery status --ha` reads it from the store: `members` are every
    /// registered instance (the leader's among them).
    pub(crate) fn seen_from_outside(
        url: &crate::HaUrl,
        leader: Option<String>,
        term: Option<u64>,
        members: Vec<String>,
    ) -> HaStatus {
        let members = standbys(leader.as_ref(), members);
        HaStatus {
            url: url.to_string(),
            id: String::new(),
            role: if leader.is_some() {
                Role::Leader
            } else {
                Role::None
            },
            leader,
            term,
            standbys: members,
            lease_secs: 0,
        }
    }
}

/// One line: `leader: web-1 (term 42); standbys: web-2`.
#[must_use]
pub fn summary(s: &HaStatus) -> String {
    let leader = match (&s.leader, s.term) {
        (Some(l), Some(t)) => format!("leader: {l} (term {t})"),
        (Some(l), None) => format!("leader: {l}"),
        _ => "leader: none".to_owned(),
    };
    let standbys = if s.standbys.is_empty() {
        "none".to_owned()
    } else {
        s.standbys.join(", ")
    };
    format!("{leader}; standbys: {standbys}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_from_outside_lists_the_others_once_sorted() {
        let url: crate::HaUrl = "etcd://127.0.0.1:2379/r".parse().expect("url");
        let s = HaStatus::seen_from_outside(
            &url,
            Some("b".into()),
            Some(7),
            vec!["c".into(), "b".into(), "a".into(), "c".into()],
        );
        assert_eq!(s.role, Role::Leader);
        assert_eq!(s.standbys, ["a", "c"]);
        assert_eq!(summary(&s), "leader: b (term 7); standbys: a, c");
        let none = HaStatus::seen_from_outside(&url, None, None, Vec::new());
        assert_eq!(none.role, Role::None);
        assert_eq!(summary(&none), "leader: none; standbys: none");
    }
}
