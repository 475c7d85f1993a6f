//! `stacks:`: docker-compose projects, expanded into containers by [`crate::compose`].

use serde::Serialize;

use super::fields::read_name;
use super::nodes::{NodeNames, read_node_refs};
use super::reader::Reader;
use crate::yaml::{Loc, Node};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StackSpec {
    /// The compose project name; empty until the compose files' top-level `name:` gives it
    /// (when the stack names none).
    pub name: String,
    pub node: String,
    /// The compose files, merged in order; empty means compose's own file names
    /// (`compose.yaml`, …, and the matching override file) at the repository root.
    pub files: Vec<String>,
    pub profiles: Vec<String>,
    pub env_file: Option<String>,
    /// Where the entry and its fields are in the manifest, for problems found when the compose
    /// files are read.
    #[serde(skip)]
    pub at: StackPositions,
}

/// Where a `stacks:` entry's fields are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackPositions {
    /// Its index in `stacks:`.
    pub index: usize,
    pub entry: Loc,
    pub name: Option<Loc>,
    /// Each item of `files`.
    pub files: Vec<Loc>,
    /// Each item of `profiles`.
    pub profiles: Vec<Loc>,
    pub env_file: Option<Loc>,
}

impl StackPositions {
    /// `stacks[i]` or `stacks[i].FIELD`.
    #[must_use]
    pub fn field(&self, field: &str) -> String {
        if field.is_empty() {
            format!("stacks[{}]", self.index)
        } else {
            format!("stacks[{}].{field}", self.index)
        }
    }
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
        let mut at = StackPositions {
            index: i,
            entry: item.loc,
            ..StackPositions::default()
        };
        // Without a name here, the compose files' top-level `name:` names the project.
        let name = if m.node.get("name").is_some_and(|n| !n.is_null()) {
            let Some((name, loc)) = read_name(r, &mut m, "stack") else {
                read_rest(r, m, node_names, &path);
                continue;
            };
            at.name = Some(loc);
            name
        } else {
            let _ = m.get("name");
            String::new()
        };
        let nodes = read_node_refs(r, &mut m, node_names);
        let mut files = Vec::new();
        if let Some(n) = m.get("files") {
            for f in r
                .strings_at(n, &format!("{path}.files"))
                .unwrap_or_default()
            {
                files.push(f.value);
                at.files.push(f.loc);
            }
        }
        let mut profiles = Vec::new();
        if let Some(n) = m.get("profiles") {
            for p in r
                .strings_at(n, &format!("{path}.profiles"))
                .unwrap_or_default()
            {
                profiles.push(p.value);
                at.profiles.push(p.loc);
            }
        }
        let env_file = m.get("env_file").and_then(|n| {
            at.env_file = Some(n.loc);
            r.string(n, &format!("{path}.env_file"))
        });
        m.finish(r);
        if !name.is_empty() && out.iter().any(|s| s.name == name) {
            let loc = at.name.unwrap_or(item.loc);
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
                at: at.clone(),
            });
        }
    }
    out
}

/// The rest of an entry whose name is bad, read for its own problems.
fn read_rest(
    r: &mut Reader<'_>,
    mut m: super::reader::MapView<'_>,
    node_names: &NodeNames,
    path: &str,
) {
    read_node_refs(r, &mut m, node_names);
    for key in ["files", "profiles"] {
        if let Some(n) = m.get(key) {
            r.strings(n, &format!("{path}.{key}"));
        }
    }
    if let Some(n) = m.get("env_file") {
        r.string(n, &format!("{path}.env_file"));
    }
    m.finish(r);
}
