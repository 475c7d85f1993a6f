//! `image_policy: {semver: …}`: the tags of each repository a container on a node follows, listed
//! from its registry once per `config.image_check_interval` per repository (the schedule is the
//! controller's [`RegistryChecks`], shared by every node and pass), backing off while the registry
//! fails, and the image each such container should run (see `refinery_core::image_policy`).

use std::collections::BTreeMap;
use std::time::Duration;

use refinery_core::image_policy::{followed, target};
use refinery_core::{ContainerRuntime, Manifest, Observed};

use crate::registries::{CheckKind, RegistryChecks};

/// The image (`name:tag`) each container with an `image_policy` on `node` should run: the newest
/// tag matching its range among its registry's tags (listing those due now; a registry that fails
/// is backed off and recorded in `checks` — alerted once, counted — and its last listing kept),
/// else, when the registry was never listed, among the matching tags present on the node.
/// Containers with no such tag are absent.
pub async fn image_targets<R: ContainerRuntime>(
    engine: &R,
    checks: &RegistryChecks,
    manifest: &Manifest,
    node: &str,
    observed: &Observed,
    now: jiff::Timestamp,
) -> BTreeMap<String, String> {
    let specs: Vec<_> = manifest
        .containers_on(node)
        .into_iter()
        .filter_map(|s| followed(s).map(|(r, _)| (s, r.name().to_owned())))
        .collect();
    if specs.is_empty() {
        return BTreeMap::new();
    }
    let interval = Duration::from_secs(manifest.config.image_check_interval_secs);
    let due = checks.tags(|c| c.due(specs.iter().map(|(_, repo)| repo.as_str()), now));
    for repo in due {
        match engine.registry_tags(&repo).await {
            Ok(tags) => checks.tags(|c| c.succeeded(&repo, tags, now, interval)),
            Err(e) => {
                let failure = checks.tags(|c| c.failed(&repo, now, interval));
                if checks.record_failure(node, CheckKind::Tags, &repo, e.to_string(), failure) {
                    tracing::warn!(node, image = %repo, error = %e, "failed to list the registry's tags of the image (image_policy); trying again later, backing off; the last listing (else the matching tags present locally) is used meanwhile");
                }
            }
        }
    }
    specs
        .into_iter()
        .filter_map(|(spec, repo)| {
            let tags = checks.tags(|c| c.tags(&repo).map(<[String]>::to_vec));
            target(spec, tags.as_deref(), observed).map(|t| (spec.name.clone(), t))
        })
        .collect()
}
