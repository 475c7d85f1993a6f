//! The keys of the controller's own maps: typed, so a node and a `kubernetes:` source of the
//! same name are never taken for each other, and a lookup says what it looks up.

use std::borrow::Borrow;
use std::fmt;

/// A Docker node's name, as the manifest's `nodes:` gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeName(String);

impl NodeName {
    pub(crate) fn new(name: &str) -> NodeName {
        NodeName(name.to_owned())
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the loop observes and may find unreachable: a Docker node or a `kubernetes:` source (by
/// its label).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    Node(NodeName),
    Kube(String),
}

impl Source {
    pub(crate) fn node(name: &str) -> Source {
        Source::Node(NodeName::new(name))
    }
}

/// A follower task: one per node's engine events, one for every `kubernetes:` source at once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Watch {
    Node(NodeName),
    Kube,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_and_a_kubernetes_source_of_one_name_are_two_keys() {
        let mut unreachable = std::collections::BTreeSet::new();
        assert!(unreachable.insert(Source::node("prod")));
        assert!(unreachable.insert(Source::Kube("prod".into())));
        assert!(unreachable.remove(&Source::node("prod")));
        assert!(unreachable.contains(&Source::Kube("prod".into())));
    }

    #[test]
    fn node_names_are_looked_up_by_str() {
        let mut engines = std::collections::BTreeMap::new();
        engines.insert(NodeName::new("n1"), 1);
        assert_eq!(engines.get("n1"), Some(&1));
    }
}
