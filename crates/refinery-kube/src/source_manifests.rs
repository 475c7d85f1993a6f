//! The desired side of a `kubernetes:` source: the manifests of one folder of a commit, read from
//! memory (multi-document YAML, a `kustomization.yaml`'s `resources:` and `namespace:`).

use std::collections::BTreeMap;

use refinery_core::manifest::KubeSpec;
use serde_json::Value;

use crate::kube_error::{KubeError, Result};

/// One object declared in git.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// The namespace it goes to: the document's, else the source's; dropped for cluster-scoped
    /// kinds when it is applied.
    pub namespace: Option<String>,
    /// The document as written (with the namespace filled in).
    pub body: Value,
    /// `path (document N)`, for messages.
    pub origin: String,
}

impl KubeObject {
    /// `Deployment/web`.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// SHA-256 of the declared document's canonical JSON, hex: changes when git changes it
    /// (flap protection lifts then).
    #[must_use]
    pub fn spec_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        refinery_core::labels::hex(&Sha256::digest(&bytes))
    }
}

/// The objects of one `kubernetes:` source, in file order. `files` maps repository-relative
/// paths to their bytes (at least everything under the source's `path`).
pub fn load_source(spec: &KubeSpec, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<KubeObject>> {
    let dir = spec.path.trim_matches('/').to_owned();
    let mut out = Vec::new();
    load_dir(
        &dir,
        Ns::Default(spec.namespace.as_deref()),
        &spec.name,
        files,
        &mut out,
        0,
    )?;
    if out.is_empty() {
        return Err(KubeError::Manifest {
            origin: spec.path.clone(),
            message: format!(
                "kubernetes source `{}` has no manifests under `{}` in this commit",
                spec.name, spec.path
            ),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for o in &out {
        let key = (
            o.api_version.clone(),
            o.kind.clone(),
            o.namespace.clone(),
            o.name.clone(),
        );
        if !seen.insert(key) {
            return Err(KubeError::Manifest {
                origin: o.origin.clone(),
                message: format!("`{}` is declared twice", o.key()),
            });
        }
    }
    Ok(out)
}

/// The namespace documents get.
#[derive(Debug, Clone, Copy)]
pub enum Ns<'a> {
    /// For documents without `metadata.namespace` (the source's `namespace`).
    Default(Option<&'a str>),
    /// For every document, as a kustomization's `namespace:` does.
    Force(&'a str),
}

fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if dir.is_empty() {
        Vec::new()
    } else {
        dir.split('/').collect()
    };
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn load_dir(
    dir: &str,
    namespace: Ns<'_>,
    source: &str,
    files: &BTreeMap<String, Vec<u8>>,
    out: &mut Vec<KubeObject>,
    depth: usize,
) -> Result<()> {
    if depth > 16 {
        return Err(KubeError::Manifest {
            origin: dir.to_owned(),
            message: "kustomization resources nest more than 16 levels deep".into(),
        });
    }
    let kust = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|n| join(dir, n))
        .find(|p| files.contains_key(p));
    if let Some(kpath) = kust {
        let text = utf8(&kpath, &files[&kpath])?;
        let k: Value = serde_saphyr::from_str(text).map_err(|e| KubeError::Manifest {
            origin: kpath.clone(),
            message: format!("invalid YAML: {e}"),
        })?;
        let ns = match k.get("namespace") {
            Some(Value::String(s)) => Ns::Force(s.as_str()),
            None | Some(Value::Null) => namespace,
            Some(_) => {
                return Err(KubeError::Manifest {
                    origin: kpath,
                    message: "`namespace` must be a string".into(),
                });
            }
        };
        let resources = match k.get("resources") {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(KubeError::Manifest {
                    origin: kpath,
                    message: "`resources` must be a list of paths".into(),
                });
            }
        };
        for (i, r) in resources.iter().enumerate() {
            let Some(rel) = r.as_str() else {
                return Err(KubeError::Manifest {
                    origin: kpath,
                    message: format!("`resources[{i}]` must be a path"),
                });
            };
            let p = join(dir, rel);
            if let Some(bytes) = files.get(&p) {
                load_file(&p, bytes, ns, source, out)?;
            } else if files.keys().any(|f| f.starts_with(&format!("{p}/"))) {
                load_dir(&p, ns, source, files, out, depth + 1)?;
            } else {
                return Err(KubeError::Manifest {
                    origin: kpath,
                    message: format!(
                        "`resources[{i}]`: `{rel}` is not in this commit (remote bases are not supported)"
                    ),
                });
            }
        }
        return Ok(());
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    for (path, bytes) in files {
        let Some(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        // Only this folder's own files; sub-folders come in through a kustomization.
        if rel.contains('/') {
            continue;
        }
        if rel.ends_with(".yaml") || rel.ends_with(".yml") || rel.ends_with(".json") {
            load_file(path, bytes, namespace, source, out)?;
        }
    }
    Ok(())
}

fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| KubeError::Manifest {
        origin: path.to_owned(),
        message: "not UTF-8 text".into(),
    })
}

/// The label naming the `kubernetes:` source that applied an object: with the field manager
/// `refinery` in its managed fields, it is what proves an object is Refinery's to prune.
pub const SOURCE_LABEL: &str = "refinery.io/source";
/// The well-known label for the tool managing an object; set to `refinery` unless the document
/// sets it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Puts Refinery's labels on a document's metadata: `refinery.io/source: <source>` (always) and
/// `app.kubernetes.io/managed-by: refinery` (unless declared). They are declared fields like
/// any other: removing one by hand is config drift, put back by the next apply.
fn mark(meta: &mut serde_json::Map<String, Value>, source: &str) {
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if labels.is_null() {
        *labels = Value::Object(serde_json::Map::new());
    }
    if let Some(l) = labels.as_object_mut() {
        l.insert(SOURCE_LABEL.into(), Value::String(source.to_owned()));
        l.entry(MANAGED_BY_LABEL)
            .or_insert_with(|| Value::String("refinery".into()));
    }
}

/// Parses one file of documents of the source named `source`. Empty documents are skipped;
/// `kind: List` is unrolled.
pub fn load_file(
    path: &str,
    bytes: &[u8],
    namespace: Ns<'_>,
    source: &str,
    out: &mut Vec<KubeObject>,
) -> Result<()> {
    let text = utf8(path, bytes)?;
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| KubeError::Manifest {
            origin: path.to_owned(),
            message: format!("invalid YAML: {e}"),
        })?;
    for (i, doc) in docs.into_iter().enumerate() {
        let origin = format!("{path} (document {})", i + 1);
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            let items = doc
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                out.push(object(&origin, item, namespace, source)?);
            }
            continue;
        }
        out.push(object(&origin, doc, namespace, source)?);
    }
    Ok(())
}

fn object(origin: &str, mut doc: Value, namespace: Ns<'_>, source: &str) -> Result<KubeObject> {
    let err = |message: String| KubeError::Manifest {
        origin: origin.to_owned(),
        message,
    };
    if !doc.is_object() {
        return Err(err("a manifest document must be a mapping".into()));
    }
    let field = |doc: &Value, name: &str| -> Result<String> {
        match doc.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(err(format!("`{name}` is missing or not a string"))),
        }
    };
    let api_version = field(&doc, "apiVersion")?;
    let kind = field(&doc, "kind")?;
    let Some(meta) = doc.get("metadata").filter(|m| m.is_object()) else {
        return Err(err("`metadata` is missing".into()));
    };
    let name = match meta.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(err("`metadata.name` is missing or not a string".into())),
    };
    let ns = match (meta.get("namespace"), namespace) {
        (Some(v), _) if !v.is_string() && !v.is_null() => {
            return Err(err("`metadata.namespace` must be a string".into()));
        }
        (_, Ns::Force(ns)) => Some(ns.to_owned()),
        (Some(Value::String(s)), _) if !s.is_empty() => Some(s.clone()),
        (_, Ns::Default(ns)) => ns.map(str::to_owned),
    };
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(ns) = &ns {
            m.insert("namespace".into(), Value::String(ns.clone()));
        }
        mark(m, source);
    }
    Ok(KubeObject {
        api_version,
        kind,
        name,
        namespace: ns,
        body: doc,
        origin: origin.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, ns: Option<&str>) -> KubeSpec {
        KubeSpec {
            name: "app".into(),
            context: None,
            path: path.into(),
            namespace: ns.map(str::to_owned),
            prune: false,
        }
    }

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, t)| ((*p).to_owned(), t.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn load_source_multi_document_fills_namespace() {
        let f = files(&[(
            "k8s/app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: other}\n",
        )]);
        let objs = load_source(&spec("k8s/", Some("shop")), &f).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].namespace.as_deref(), Some("shop"));
        assert_eq!(objs[0].body["metadata"]["namespace"], "shop");
        assert_eq!(objs[1].namespace.as_deref(), Some("other"));
        assert_eq!(objs[1].key(), "Deployment/web");
        let labels = &objs[0].body["metadata"]["labels"];
        assert_eq!(labels[SOURCE_LABEL], "app");
        assert_eq!(labels[MANAGED_BY_LABEL], "refinery");
    }

    #[test]
    fn load_source_keeps_a_declared_managed_by_and_overrides_the_source_label() {
        let f = files(&[(
            "k/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app.kubernetes.io/managed-by: me, refinery.io/source: other}\n",
        )]);
        let objs = load_source(&spec("k", None), &f).unwrap();
        let labels = &objs[0].body["metadata"]["labels"];
        assert_eq!(labels[MANAGED_BY_LABEL], "me");
        assert_eq!(labels[SOURCE_LABEL], "app");
    }

    #[test]
    fn load_source_kustomization_lists_resources_only() {
        let f = files(&[
            (
                "k/kustomization.yaml",
                "namespace: kns\nresources: [a.yaml, sub]\n",
            ),
            (
                "k/a.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            ),
            (
                "k/ignored.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            ),
            (
                "k/sub/b.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
            ),
        ]);
        let objs = load_source(&spec("k", Some("shop")), &f).unwrap();
        let names: Vec<_> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(objs.iter().all(|o| o.namespace.as_deref() == Some("kns")));
    }

    #[test]
    fn load_source_missing_name_is_an_error_naming_the_document() {
        let f = files(&[(
            "k/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        )]);
        let e = load_source(&spec("k", None), &f).unwrap_err().to_string();
        assert!(e.contains("k/a.yaml (document 2)"), "{e}");
        assert!(e.contains("metadata.name"), "{e}");
    }

    #[test]
    fn load_source_bad_yaml_is_an_error_with_position() {
        let f = files(&[("k/a.yaml", "apiVersion: v1\nkind: [\n")]);
        let e = load_source(&spec("k", None), &f).unwrap_err().to_string();
        assert!(e.contains("k/a.yaml"), "{e}");
        assert!(e.contains("line 2 column 7"), "{e}");
    }

    #[test]
    fn load_source_empty_folder_is_an_error() {
        let e = load_source(&spec("k", None), &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("no manifests"), "{e}");
    }
}
