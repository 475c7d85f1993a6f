//! Labels Refinery puts on what it creates, and the spec hash.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::resource_id::ResourceId;
use crate::spec::ContainerSpec;

/// Every label Refinery owns starts with this.
pub const PREFIX: &str = "io.refinery.";
/// `true` on everything Refinery created.
pub const MANAGED: &str = "io.refinery.managed";
/// The resource id (`docker/lyra/container/web`).
pub const RESOURCE: &str = "io.refinery.resource";
/// SHA-256 of the canonical spec the container was created from.
pub const SPEC_HASH: &str = "io.refinery.spec-hash";
/// Git commit whose manifest the container was created from.
pub const REVISION: &str = "io.refinery.revision";
/// Bloodline: who declared it.
pub const CREATOR: &str = "io.refinery.creator";
/// Bloodline: why it exists.
pub const PURPOSE: &str = "io.refinery.purpose";
/// Marks Refinery's own container: never touched.
pub const CONTROLLER: &str = "io.refinery.controller";
/// Host ports running on a declared fallback: `8085:8086` (primary:fallback, comma-separated).
pub const PORT_FALLBACK: &str = "io.refinery.port-fallback";
/// Primary host ports (comma-separated) a container on the same engine published when the
/// fallback was chosen: on a remote engine only those can be seen coming free again.
pub const PORT_FALLBACK_HELD: &str = "io.refinery.port-fallback-held";

/// Names of env variables whose values are secret though their names do not look it (values
/// from SOPS files), comma-separated: a later diff masks their old values even once they are no
/// longer declared.
pub const SECRET_ENV: &str = "io.refinery.secret-env";

/// Lower-case hex of a byte string.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 over the spec's canonical JSON, secrets included in clear (so a changed secret changes
/// the hash) but never printed.
#[must_use]
pub fn spec_hash(spec: &ContainerSpec) -> String {
    let mut value = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
    if let Some(env) = value.get_mut("env").and_then(|e| e.as_object_mut()) {
        for (k, v) in &spec.env {
            env.insert(k.clone(), serde_json::Value::String(v.expose().to_owned()));
        }
    }
    // serde_json maps are sorted (BTreeMap), so these bytes are canonical.
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    hex(&Sha256::digest(&bytes))
}

/// The labels a container created for `spec` at `revision` carries, the declared ones included.
#[must_use]
pub fn ownership_labels(spec: &ContainerSpec, revision: &str) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.insert(MANAGED.to_owned(), "true".to_owned());
    labels.insert(
        RESOURCE.to_owned(),
        ResourceId::for_spec(&spec.node, spec).to_string(),
    );
    let hash = spec_hash(spec);
    if let Some(member) = &spec.stack {
        labels.extend(crate::compose::compose_labels(member, &hash));
    }
    labels.insert(SPEC_HASH.to_owned(), hash);
    labels.extend(crate::content::content_labels(&spec.content));
    labels.insert(REVISION.to_owned(), revision.to_owned());
    let secret_env: Vec<&str> = spec
        .env
        .iter()
        .filter(|(k, v)| v.is_sensitive() && !crate::secret::name_looks_secret(k))
        .map(|(k, _)| k.as_str())
        .collect();
    if !secret_env.is_empty() {
        labels.insert(SECRET_ENV.to_owned(), secret_env.join(","));
    }
    if let Some(c) = &spec.bloodline.creator {
        labels.insert(CREATOR.to_owned(), c.clone());
    }
    if let Some(p) = &spec.bloodline.purpose {
        labels.insert(PURPOSE.to_owned(), p.clone());
    }
    labels
}

/// `busybox` → `busybox:latest`; `docker.io/library/x:1` → `x:1`. Digests are kept.
#[must_use]
pub fn normalize_image_ref(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    if r.contains('@') {
        return r.to_owned();
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        r.to_owned()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_image_ref_adds_latest() {
        assert_eq!(normalize_image_ref("busybox"), "busybox:latest");
        assert_eq!(normalize_image_ref("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_image_ref("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_image_ref("docker.io/library/redis:7"), "redis:7");
        assert_eq!(normalize_image_ref("app@sha256:abc"), "app@sha256:abc");
    }
}
