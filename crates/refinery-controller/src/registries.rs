//! The registry credentials this process's engine clients send with their pulls: one shared
//! [`RegistryAuth`] holding the `registries:` of the manifest last loaded (a daemon's revision in
//! force) over the docker CLI configuration of the user running Refinery (`DOCKER_CONFIG`, else
//! `~/.docker/config.json`, read at each pull).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use refinery_core::image_update::{CheckFailure, ImageChecks, tracked_reference};
use refinery_core::{Action, ContainerRuntime, DriftKind, Manifest, Observed};
use refinery_docker::RegistryAuth;

static AUTH: OnceLock<RegistryAuth> = OnceLock::new();

/// The shared credentials; engine clients made before a manifest switch see the new logins.
pub fn auth() -> RegistryAuth {
    AUTH.get_or_init(|| RegistryAuth::new(RegistryAuth::config_dir_from_env()))
        .clone()
}

/// Makes `manifest`'s `registries:` the ones pulls send.
pub fn use_manifest(manifest: &Manifest) {
    auth().set_logins(manifest.registries.clone());
}

/// When each image reference is next asked for its registry digest (shared by every node and
/// pass of this process: a reference is asked once per `config.image_check_interval`).
static CHECKS: Mutex<Option<ImageChecks>> = Mutex::new(None);

fn with_checks<T>(f: impl FnOnce(&mut ImageChecks) -> T) -> T {
    let mut g = CHECKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(g.get_or_insert_with(ImageChecks::default))
}

/// The registry's current digest of each tag that a running container on `node` follows (see
/// `image_update` drift), asking the engine about those due; a registry that fails is backed off
/// and reported once, and its last known digest kept. Nothing is asked when the
/// `image_update` rule is `ignore`.
pub async fn registry_digests<R: ContainerRuntime>(
    engine: &R,
    manifest: &Manifest,
    node: &str,
    observed: &Observed,
    now: jiff::Timestamp,
) -> BTreeMap<String, String> {
    if refinery_core::policy::rule_for(manifest, DriftKind::ImageUpdate).action == Action::Ignore {
        return BTreeMap::new();
    }
    let followed: Vec<String> = manifest
        .containers_on(node)
        .into_iter()
        .filter(|spec| {
            refinery_core::drift::declared_container(spec, observed)
                .is_some_and(|o| o.repo_digest.is_some())
        })
        .filter_map(tracked_reference)
        .collect();
    if followed.is_empty() {
        return BTreeMap::new();
    }
    let interval = Duration::from_secs(manifest.config.image_check_interval_secs);
    let due = with_checks(|c| c.due(followed.iter().map(String::as_str), now));
    for reference in due {
        match engine.registry_digest(&reference).await {
            Ok(digest) => with_checks(|c| c.succeeded(&reference, digest, now, interval)),
            Err(e) => {
                if with_checks(|c| c.failed(&reference, now, interval)) == CheckFailure::First {
                    tracing::warn!(node, image = %reference, error = %e, "failed to check the registry for an update of the image; trying again later, backing off; nothing is changed meanwhile");
                }
            }
        }
    }
    let known = with_checks(|c| c.digests());
    followed
        .into_iter()
        .filter_map(|r| known.get(&r).map(|d| (r, d.clone())))
        .collect()
}
