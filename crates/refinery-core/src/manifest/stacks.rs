//! `stacks:`: docker-compose projects, expanded into containers by [`crate::compose`].

use serde::Serialize;

use super::fields::read_name;
use super::nodes::{NodeNames, read_node_refs};
use super::reader::Reader;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSpec {
    pub name: String,
    pub node: String,
    pub files: Vec<String>,
    pub profiles: Vec<String>,
    pub env_file: Option<String>,
}

pub(super) fn read_stacks(
    r: &mut Reader<'_>,
    node: &Node,
    node_names: &NodeNames,
) -> Vec<StackSpec> {
    let mut out: Vec<StackSpec> = Vec::new();
    let Some(items) = r.seq(node, "stacks") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("stacks[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "stack");
        let nodes = read_node_refs(r, &mut m, node_names);
        let files = match m.get("files") {
            Some(n) => r.strings(n, &format!("{path}.files")).unwrap_or_default(),
            None => vec!["docker-compose.yml".into()],
        };
        let profiles = m
            .get("profiles")
            .and_then(|n| r.strings(n, &format!("{path}.profiles")))
            .unwrap_or_default();
        let env_file = m
            .get("env_file")
            .and_then(|n| r.string(n, &format!("{path}.env_file")));
        m.finish(r);
        let Some((name, loc)) = name else { continue };
        if out.iter().any(|s| s.name == name) {
            r.error(
                loc,
                &format!("{path}.name"),
                format!("stack `{name}` is declared twice"),
            );
            continue;
        }
        for node in nodes {
            out.push(StackSpec {
                name: name.clone(),
                node,
                files: files.clone(),
                profiles: profiles.clone(),
                env_file: env_file.clone(),
            });
        }
    }
    out
}
