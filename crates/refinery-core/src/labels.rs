//! Labels Refinery puts on what it creates, and the spec hash.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub use crate::hex::hex;
use crate::resource_id::ResourceId;
use crate::spec::{ContainerSpec, StackMember};

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

// docker-compose's own labels, put on stack containers, networks and volumes so docker compose
// lists them in their project.

/// The docker-compose version Refinery's labels claim (the one it is tested against).
pub const COMPOSE_VERSION: &str = "1.29.2";

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_VERSION: &str = "com.docker.compose.version";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// The label a built image carries: the [`crate::spec::BuildSpec::digest`] of the context it was built from.
pub const LABEL_BUILD_DIGEST: &str = "io.refinery.build-digest";

/// The labels docker-compose puts on a service container, so `docker-compose ps` lists it. The
/// config hash is Refinery's spec hash (docker-compose computes its own from its internal form,
/// so a later `docker-compose up` recreates the container).
#[must_use]
pub fn compose_labels(m: &StackMember, config_hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_owned(), m.project.clone()),
        (LABEL_SERVICE.to_owned(), m.service.clone()),
        (LABEL_NUMBER.to_owned(), m.number.to_string()),
        (LABEL_ONEOFF.to_owned(), "False".to_owned()),
        (LABEL_CONFIG_HASH.to_owned(), config_hash.to_owned()),
        (LABEL_WORKING_DIR.to_owned(), m.working_dir.clone()),
        (LABEL_CONFIG_FILES.to_owned(), m.config_files.clone()),
        (LABEL_VERSION.to_owned(), COMPOSE_VERSION.to_owned()),
    ])
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
        labels.extend(compose_labels(member, &hash));
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
