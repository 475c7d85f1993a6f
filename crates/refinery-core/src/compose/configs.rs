//! The top-level `configs:` and `secrets:` sections: files of the repository mounted into
//! services by name, desired by content.

use crate::manifest::reader::Reader;
use crate::yaml::{Node, Value};

use std::collections::{BTreeMap, BTreeSet};

use super::service::{FileContext, FileKind};

/// What the top-level `configs:` and `secrets:` sections declare, merged over the files.
#[derive(Debug, Default)]
pub(super) struct Configs {
    /// (kind, name) → repository-relative file.
    pub files: BTreeMap<(FileKind, String), String>,
    /// Configs and secrets declared in a form Refinery refuses (`content:`, `environment:`,
    /// `external:`): already reported at their declaration, not again at each use.
    pub refused: BTreeSet<(FileKind, String)>,
}

/// Top-level `configs: {name: {file: ./app.conf}}` (or `secrets:`): (kind, name) →
/// repository-relative file.
pub(super) fn read_configs(
    r: &mut Reader<'_>,
    node: &Node,
    ctx: &FileContext<'_>,
    kind: FileKind,
    configs: &mut Configs,
) {
    let out = &mut configs.files;
    let word = kind.word();
    let top = format!("{word}s");
    if r.map(node, &top).is_none() {
        return;
    }
    let Value::Map(items) = &node.value else {
        return;
    };
    for (k, v) in items {
        let Some(name) = k.scalar() else { continue };
        let path = format!("{top}.{name}");
        let Some(mut m) = r.map(v, &path) else {
            continue;
        };
        let file = m
            .get("file")
            .and_then(|n| r.string(n, &format!("{path}.file")).map(|f| (f, n.loc)));
        let mut refused = false;
        for key in ["external", "name", "content", "environment"] {
            // `name` names the object a swarm keeps; beside a `file` it changes nothing here.
            if key == "name" && file.is_some() {
                let _ = m.get(key);
                continue;
            }
            if let Some(n) = m.get(key) {
                refused = true;
                r.error_hint(
                    n.loc,
                    &format!("{path}.{key}"),
                    format!("{word} `{name}`: `{key}` is not supported by Refinery"),
                    match kind {
                        FileKind::Config => {
                            "declare the config with `file: ./path/in/the/repository`".to_owned()
                        }
                        FileKind::Secret => "declare the secret with `file: ./path/in/the/repository` (encrypted with SOPS, it is mounted decrypted)".to_owned(),
                    },
                );
            }
        }
        m.finish(r);
        if refused {
            configs.refused.insert((kind, name.to_owned()));
            continue;
        }
        let Some((file, loc)) = file else {
            r.error_hint(
                v.loc,
                &path,
                format!("{word} `{name}` has no `file`"),
                format!("declare the {word} with `file: ./path/in/the/repository`"),
            );
            continue;
        };
        if file.starts_with('/') {
            r.error_hint(
                loc,
                &format!("{path}.file"),
                format!("{word} `{name}`: `{file}` is outside the repository"),
                format!("a {word} is a file of the repository, desired by content: write `./path`"),
            );
            continue;
        }
        match crate::content::repo_relative(ctx.project_dir, &file) {
            Some(rel) => {
                out.insert((kind, name.to_owned()), rel);
            }
            None => r.error_hint(
                loc,
                &format!("{path}.file"),
                format!("{word} `{name}`: `{file}` points outside the repository"),
                format!("a {word} is a file of the repository: write `./path` below the repository's top"),
            ),
        }
    }
}
