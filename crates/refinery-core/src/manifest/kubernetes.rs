//! `kubernetes:`: directories of Kubernetes manifests applied to a cluster.

use serde::Serialize;

use super::fields::read_name;
use super::reader::Reader;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeSpec {
    pub name: String,
    pub context: Option<String>,
    pub path: String,
    pub namespace: Option<String>,
    /// Delete the objects this source applied that the commit no longer declares (`orphan`
    /// drift); off by default.
    pub prune: bool,
}

pub(super) fn read_kubernetes(r: &mut Reader<'_>, node: &Node) -> Vec<KubeSpec> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, "kubernetes") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("kubernetes[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "kubernetes source");
        let context = m
            .get("context")
            .and_then(|n| r.string(n, &format!("{path}.context")));
        let kpath = match m.get("path") {
            Some(n) => r.string(n, &format!("{path}.path")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.path"),
                    "every kubernetes source needs a `path` to its manifests",
                );
                None
            }
        };
        let namespace = m.get("namespace").and_then(|n| {
            r.string_checked(
                n,
                &format!("{path}.namespace"),
                super::grammar::k8s_namespace,
            )
        });
        let prune = m
            .get("prune")
            .and_then(|n| r.bool(n, &format!("{path}.prune")))
            .unwrap_or(false);
        m.finish(r);
        if let (Some((name, loc)), Some(p)) = (name, kpath) {
            // The name is the value of the `refinery.io/source` label on what it applies.
            if name.len() > 63 || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
                r.error_hint(
                    loc,
                    &format!("{path}.name"),
                    format!("`{name}` is not a valid kubernetes source name"),
                    "it labels what the source applies: at most 63 characters, ending with a letter or digit",
                );
                continue;
            }
            if out.iter().any(|k: &KubeSpec| k.name == name) {
                r.error(
                    loc,
                    &format!("{path}.name"),
                    format!("kubernetes source `{name}` is declared twice"),
                );
                continue;
            }
            out.push(KubeSpec {
                name,
                context,
                path: p,
                namespace,
                prune,
            });
        }
    }
    out
}
