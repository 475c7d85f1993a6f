//! Pure comparisons: a declared object's fields against the live object, workloads nobody
//! declared, and rollout status. No I/O.

use std::collections::BTreeSet;

use refinery_core::FieldChange;
use refinery_core::drift::field_ignored;
use serde_json::Value;

/// Kinds whose undeclared objects are unauthorized workloads in a managed namespace.
pub const WORKLOAD_KINDS: [(&str, &str); 4] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Pod"),
];

/// Kinds with a pod template (or pod spec) whose container images count as image drift.
#[must_use]
pub fn is_workload(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Pod" | "Job" | "CronJob"
    )
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fields Refinery manages (every leaf of the declared document) whose value differs
/// between `would_be` (the server-side dry-run apply of the declared document, with the
/// server's defaults) and `live`. List items with a `name` are matched by name
/// (`spec.template.spec.containers[web].image`), others by position. Paths matching `ignore`
/// are kept but marked ignored.
#[must_use]
pub fn field_changes(
    declared: &Value,
    would_be: &Value,
    live: &Value,
    ignore: &[String],
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(
        declared,
        Some(would_be),
        Some(live),
        String::new(),
        ignore,
        &mut out,
    );
    out
}

fn child<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| v.get(key))
}

fn named<'a>(v: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    v.and_then(Value::as_array).and_then(|a| {
        a.iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    })
}

fn walk(
    declared: &Value,
    would_be: Option<&Value>,
    live: Option<&Value>,
    path: String,
    ignore: &[String],
    out: &mut Vec<FieldChange>,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match declared {
        Value::Object(m) => {
            for (k, v) in m {
                // Server-owned or write-only metadata is never compared.
                if path == "metadata"
                    && matches!(
                        k.as_str(),
                        "resourceVersion"
                            | "uid"
                            | "generation"
                            | "creationTimestamp"
                            | "managedFields"
                    )
                {
                    continue;
                }
                if path.is_empty() && k == "status" {
                    continue;
                }
                walk(v, child(would_be, k), child(live, k), join(k), ignore, out);
            }
        }
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get("name").and_then(Value::as_str).is_some()) =>
        {
            for i in items {
                let name = i.get("name").and_then(Value::as_str).unwrap_or_default();
                walk(
                    i,
                    named(would_be, name),
                    named(live, name),
                    format!("{path}[{name}]"),
                    ignore,
                    out,
                );
            }
        }
        _ => {
            let w = would_be.cloned().unwrap_or(Value::Null);
            let l = live.cloned().unwrap_or(Value::Null);
            if w != l {
                out.push(FieldChange {
                    ignored: field_ignored(&path, ignore),
                    field: path,
                    desired: short(&w),
                    observed: short(&l),
                });
            }
        }
    }
}

/// Whether a changed field is a container image (`…containers[web].image`).
#[must_use]
pub fn is_image_field(field: &str) -> bool {
    field.ends_with(".image")
        && (field.contains("containers[") || field.contains("initContainers["))
}

/// `name → image` of every container of a workload's pod template (or a Pod's spec).
#[must_use]
pub fn container_images(obj: &Value) -> Vec<(String, String)> {
    let spec = pod_spec(obj);
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(items) = spec.and_then(|s| s.get(list)).and_then(Value::as_array) {
            for c in items {
                out.push((
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    c.get("image")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
        }
    }
    out
}

fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj.get("kind").and_then(Value::as_str) {
        Some("Pod") => obj.get("spec"),
        Some("CronJob") => obj.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => obj.pointer("/spec/template/spec"),
    }
}

/// Why a live workload's rollout is stuck, if it is. Only a Deployment whose `Progressing`
/// condition says `ProgressDeadlineExceeded` counts (with its unavailable replicas): without a
/// kubelet, or while Pods start, replicas are unavailable for a while, which is not drift.
#[must_use]
pub fn status_problem(live: &Value) -> Option<String> {
    if live.get("kind").and_then(Value::as_str) != Some("Deployment") {
        return None;
    }
    let conds = live.pointer("/status/conditions")?.as_array()?;
    let stuck = conds.iter().find(|c| {
        c.get("type").and_then(Value::as_str) == Some("Progressing")
            && c.get("status").and_then(Value::as_str) == Some("False")
    })?;
    let reason = stuck
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("not progressing");
    let unavailable = live
        .pointer("/status/unavailableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some(format!(
        "rollout not progressing ({reason}), {unavailable} unavailable replica{}",
        if unavailable == 1 { "" } else { "s" }
    ))
}

/// Why a live Deployment's rollout is not complete yet, as `kubectl rollout status` and Argo CD
/// judge it: the controller has not seen the latest generation, or fewer replicas are updated or
/// available than declared, or old ones are still running. `None` once it is complete, and for
/// every other kind. A stuck rollout is [`status_problem`]'s.
#[must_use]
pub fn rollout_pending(live: &Value) -> Option<String> {
    if live.get("kind").and_then(Value::as_str) != Some("Deployment")
        || live.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
    {
        return None;
    }
    let n = |p: &str| live.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let generation = n("/metadata/generation");
    if n("/status/observedGeneration") < generation {
        return Some("the controller has not seen the latest change yet".into());
    }
    let wanted = live
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (updated, total, available) = (
        n("/status/updatedReplicas"),
        n("/status/replicas"),
        n("/status/availableReplicas"),
    );
    if updated < wanted {
        return Some(format!("{updated} of {wanted} replicas updated"));
    }
    if total > updated {
        return Some(format!("{} old replicas still running", total - updated));
    }
    if available < updated {
        return Some(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    None
}

/// Whether a live object is owned by a controller (a ReplicaSet's Pod, a Deployment's
/// ReplicaSet): then it is not a workload of its own.
#[must_use]
pub fn has_controller(live: &Value) -> bool {
    live.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// The `kubernetes:` source that applied a live object, when Refinery can prove it did: the
/// object carries `refinery.io/source: <source>` and its managed fields hold a server-side apply
/// by the field manager `refinery`. A copy of the object made by another tool (which copies the
/// label but not the managed fields), or an object a controller made from Refinery's (Endpoints
/// copy a Service's labels; a controller owns them), is not Refinery's.
#[must_use]
pub fn applied_by(live: &Value, manager: &str) -> Option<String> {
    let source = live
        .pointer("/metadata/labels")
        .and_then(|l| l.get(crate::source_manifests::SOURCE_LABEL))
        .and_then(Value::as_str)?;
    let applied = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|fields| {
            fields.iter().any(|f| {
                f.get("manager").and_then(Value::as_str) == Some(manager)
                    && f.get("operation").and_then(Value::as_str) == Some("Apply")
            })
        });
    (applied && !has_controller(live)).then(|| source.to_owned())
}

/// Names of live workloads of `kind` that nobody declared and no controller owns.
#[must_use]
pub fn undeclared<'a>(live: &'a [Value], declared: &BTreeSet<String>) -> Vec<&'a str> {
    live.iter()
        .filter(|o| !has_controller(o))
        .filter(|o| o.pointer("/metadata/deletionTimestamp").is_none())
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| !declared.contains(*n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"}, "resourceVersion": "7"},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                   {"name": "web", "image": image, "imagePullPolicy": "IfNotPresent"}]}}}})
    }

    #[test]
    fn field_changes_same_object_is_empty() {
        let d = deploy("a:1", 1);
        assert!(field_changes(&d, &deploy("a:1", 1), &deploy("a:1", 1), &[]).is_empty());
    }

    #[test]
    fn field_changes_patched_replicas_and_image_are_named_fields() {
        let d = deploy("a:1", 1);
        let c = field_changes(&d, &deploy("a:1", 1), &deploy("a:2", 3), &[]);
        let fields: Vec<_> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.replicas", "spec.template.spec.containers[web].image"]
        );
        assert_eq!(c[0].desired, "1");
        assert_eq!(c[0].observed, "3");
        assert!(is_image_field(&c[1].field));
        assert!(!is_image_field(&c[0].field));
    }

    #[test]
    fn field_changes_ignored_path_is_marked() {
        let d = deploy("a:1", 1);
        let c = field_changes(&d, &d, &deploy("a:1", 2), &["spec.replicas".into()]);
        assert!(c[0].ignored);
    }

    #[test]
    fn field_changes_undeclared_live_fields_are_not_drift() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let mut live = d.clone();
        live["spec"]["paused"] = json!(true);
        assert!(field_changes(&d, &d, &live, &[]).is_empty());
    }

    #[test]
    fn status_problem_unavailable_replicas_alone_is_not_drift() {
        let mut d = deploy("a:1", 1);
        d["status"] = json!({"unavailableReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]});
        assert_eq!(status_problem(&d), None);
        d["status"]["conditions"][0] =
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        assert_eq!(
            status_problem(&d).as_deref(),
            Some("rollout not progressing (ProgressDeadlineExceeded), 1 unavailable replica")
        );
    }

    #[test]
    fn rollout_pending_until_every_replica_is_updated_and_available() {
        let mut d = deploy("a:1", 2);
        d["metadata"]["generation"] = json!(2);
        d["status"] = json!({"observedGeneration": 1});
        assert!(rollout_pending(&d).unwrap().contains("not seen"));
        d["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2});
        assert_eq!(
            rollout_pending(&d).as_deref(),
            Some("1 old replicas still running")
        );
        d["status"]["replicas"] = json!(2);
        d["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            rollout_pending(&d).as_deref(),
            Some("1 of 2 updated replicas available")
        );
        d["status"]["availableReplicas"] = json!(2);
        assert_eq!(rollout_pending(&d), None);
        let mut zero = deploy("a:1", 0);
        zero["status"] = json!({"observedGeneration": 7});
        assert_eq!(rollout_pending(&zero), None);
    }

    #[test]
    fn undeclared_skips_owned_and_declared() {
        let live = vec![
            json!({"metadata": {"name": "a"}}),
            json!({"metadata": {"name": "b", "ownerReferences": [{"controller": true}]}}),
            json!({"metadata": {"name": "c"}}),
        ];
        let declared: BTreeSet<String> = ["c".to_owned()].into();
        assert_eq!(undeclared(&live, &declared), ["a"]);
    }

    #[test]
    fn applied_by_needs_the_label_and_an_apply_by_refinery() {
        let obj = |labels: Value, manager: &str, op: &str, owners: Value| {
            json!({"metadata": {"name": "a", "labels": labels, "ownerReferences": owners,
                "managedFields": [{"manager": manager, "operation": op}]}})
        };
        let label = json!({"refinery.io/source": "app"});
        let cases = [
            (
                obj(label.clone(), "refinery", "Apply", json!([])),
                Some("app"),
            ),
            // A copy made with kubectl: the label came along, the apply did not.
            (
                obj(
                    label.clone(),
                    "kubectl-client-side-apply",
                    "Update",
                    json!([]),
                ),
                None,
            ),
            // Refinery patched it (rollout restart) but never applied it.
            (obj(label.clone(), "refinery", "Update", json!([])), None),
            (obj(json!({}), "refinery", "Apply", json!([])), None),
            // Made by a controller from Refinery's object.
            (
                obj(label, "refinery", "Apply", json!([{"controller": true}])),
                None,
            ),
        ];
        for (live, want) in cases {
            assert_eq!(applied_by(&live, "refinery").as_deref(), want, "{live}");
        }
    }

    #[test]
    fn container_images_reads_the_pod_template() {
        assert_eq!(
            container_images(&deploy("a:1", 1)),
            [("web".to_owned(), "a:1".to_owned())]
        );
    }
}
