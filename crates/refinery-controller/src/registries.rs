//! The registry credentials this process's engine clients send with their pulls: one shared
//! [`RegistryAuth`] holding the `registries:` of the manifest last loaded (a daemon's revision in
//! force) over the docker CLI configuration of the user running Refinery (`DOCKER_CONFIG`, else
//! `~/.docker/config.json`, read at each pull).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use refinery_core::image_policy::TagChecks;
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

/// The registry checks of one controller, or of one command (shared by every node and pass, so
/// a reference or repository is asked once per `config.image_check_interval`): the digest of each
/// tag a container follows (`image_update` drift), the tags of each repository an
/// `image_policy` follows, what the registry last said, and the checks that failed since they
/// were last taken.
#[derive(Debug, Default)]
pub struct RegistryChecks {
    inner: Mutex<ChecksInner>,
}

#[derive(Debug, Default)]
struct ChecksInner {
    schedule: ImageChecks,
    tags: TagChecks,
    failed: Vec<FailedCheck>,
}

/// What a registry check asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// The current digest of a tag (`image_update`).
    Digest,
    /// The tags of a repository (`image_policy`).
    Tags,
    /// A pull again under `pull_policy: daily | weekly | every_…` (see [`crate::pull_refresh`]).
    Pull,
}

/// A registry check that failed (an outage, a refusal such as 401, a 429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheck {
    pub node: String,
    pub kind: CheckKind,
    /// The tag asked about or pulled (`name:tag`), or the repository whose tags were listed.
    pub reference: String,
    /// Its registry host (`docker.io` when the reference names none).
    pub registry: String,
    pub error: String,
    /// The first failure in a row for this reference: worth one alert; later ones are counted.
    pub first: bool,
}

impl RegistryChecks {
    fn with<T>(&self, f: impl FnOnce(&mut ChecksInner) -> T) -> T {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// The tag listings of `image_policy` (see [`crate::registry_tags`]).
    pub(crate) fn tags<T>(&self, f: impl FnOnce(&mut TagChecks) -> T) -> T {
        self.with(|c| f(&mut c.tags))
    }

    /// The checks that failed since the last call.
    pub fn take_failures(&self) -> Vec<FailedCheck> {
        self.with(|c| std::mem::take(&mut c.failed))
    }

    /// Records a failed check of `reference` on `node`; returns whether it is the first failure
    /// in a row (worth one alert).
    pub(crate) fn record_failure(
        &self,
        node: &str,
        kind: CheckKind,
        reference: &str,
        error: String,
        failure: CheckFailure,
    ) -> bool {
        let first = failure == CheckFailure::First;
        let registry = refinery_core::ImageRef::parse(reference)
            .map(|r| r.registry().to_owned())
            .unwrap_or_default();
        self.with(|c| {
            c.failed.push(FailedCheck {
                node: node.to_owned(),
                kind,
                reference: reference.to_owned(),
                registry,
                error,
                first,
            });
        });
        first
    }
}

/// The registry's current digest of each tag that a running container on `node` follows (see
/// `image_update` drift), asking the engine about those due; a registry that fails is backed off
/// and recorded in `checks` (see [`RegistryChecks::take_failures`]), and its last known digest
/// kept. Nothing is asked when the `image_update` rule is `ignore`.
pub async fn registry_digests<R: ContainerRuntime>(
    engine: &R,
    checks: &RegistryChecks,
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
    let due = checks.with(|c| c.schedule.due(followed.iter().map(String::as_str), now));
    for reference in due {
        match engine.registry_digest(&reference).await {
            Ok(digest) => checks.with(|c| c.schedule.succeeded(&reference, digest, now, interval)),
            Err(e) => {
                let failure = checks.with(|c| c.schedule.failed(&reference, now, interval));
                if checks.record_failure(
                    node,
                    CheckKind::Digest,
                    &reference,
                    e.to_string(),
                    failure,
                ) {
                    tracing::warn!(node, image = %reference, error = %e, "failed to check the registry for an update of the image; trying again later, backing off; nothing is changed meanwhile");
                }
            }
        }
    }
    let known = checks.with(|c| c.schedule.digests());
    followed
        .into_iter()
        .filter_map(|r| known.get(&r).map(|d| (r, d.clone())))
        .collect()
}
