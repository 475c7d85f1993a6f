//! The registry credentials this process's engine clients send with their pulls: one shared
//! [`RegistryAuth`] holding the `registries:` of the manifest last loaded (a daemon's revision in
//! force) over the docker CLI configuration of the user running Refinery (`DOCKER_CONFIG`, else
//! `~/.docker/config.json`, read at each pull).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use refinery_core::image_policy::TagChecks;
use refinery_core::image_update::{CheckFailure, ImageChecks, running_digest, tracked_reference};
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
    /// (node, reference) → the registry digest last asked about and the image it gives that
    /// node's platform.
    platform_images: BTreeMap<(String, String), (String, PlatformImage)>,
}

/// What the registry said a digest gives one node's platform.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PlatformImage {
    /// This image id.
    Image(String),
    /// The runtime cannot tell: the digests alone decide.
    CannotTell,
    /// Asking failed (the registry answers the engine but not Refinery, say): the digests
    /// alone decide until the next check answers.
    Failed,
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
///
/// A digest other than the one the containers run whose image for this node's platform is the
/// one they run (a multi-platform index that moved for another platform) is answered as theirs:
/// no update here.
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
    let running: Vec<Follower> = manifest
        .containers_on(node)
        .into_iter()
        .filter_map(|spec| {
            let o = refinery_core::drift::declared_container(spec, observed)?;
            Some(Follower {
                reference: tracked_reference(spec)?,
                digest: running_digest(o)?.to_owned(),
                image_id: o.image_id.clone(),
            })
        })
        .collect();
    let mut followed: Vec<String> = running.iter().map(|f| f.reference.clone()).collect();
    followed.sort();
    followed.dedup();
    if followed.is_empty() {
        return BTreeMap::new();
    }
    let interval = Duration::from_secs(manifest.config.image_check_interval_secs);
    let due = checks.with(|c| c.schedule.due(followed.iter().map(String::as_str), now));
    for reference in &due {
        match engine.registry_digest(reference).await {
            Ok(digest) => checks.with(|c| c.schedule.succeeded(reference, digest, now, interval)),
            Err(e) => {
                let failure = checks.with(|c| c.schedule.failed(reference, now, interval));
                if checks.record_failure(node, CheckKind::Digest, reference, e.to_string(), failure)
                {
                    tracing::warn!(node, image = %reference, error = %e, "failed to check the registry for an update of the image; trying again later, backing off; nothing is changed meanwhile");
                }
            }
        }
    }
    let known = checks.with(|c| c.schedule.digests());
    let mut digests = BTreeMap::new();
    for reference in followed {
        let Some(latest) = known.get(&reference) else {
            continue;
        };
        let same = match behind(&running, &reference, latest) {
            Some(f) => {
                let ask = PlatformAsk {
                    node,
                    reference: &reference,
                    digest: latest,
                    due: due.contains(&reference),
                };
                let gives = platform_image(engine, checks, &ask).await;
                (gives == PlatformImage::Image(f.image_id.clone())).then_some(&f.digest)
            }
            None => None,
        };
        // A new digest that gives this node's platform the image its containers run (an index
        // that moved for another platform) is no update here: they count as up to date. When
        // that cannot be told, the digests alone decide, as the engine's answer does.
        digests.insert(reference, same.unwrap_or(latest).clone());
    }
    digests
}

/// A running container following a tag: the tag, the digest it was created from, its image.
struct Follower {
    reference: String,
    digest: String,
    image_id: String,
}

/// The one digest and image that the containers following `reference` run while the registry
/// says `latest`; `None` when none is behind, or they run different ones.
fn behind<'a>(running: &'a [Follower], reference: &str, latest: &str) -> Option<&'a Follower> {
    let mut behind = running
        .iter()
        .filter(|f| f.reference == reference && f.digest != latest);
    let first = behind.next()?;
    behind
        .all(|f| f.digest == first.digest && f.image_id == first.image_id)
        .then_some(first)
}

/// A question for [`platform_image`].
struct PlatformAsk<'a> {
    node: &'a str,
    reference: &'a str,
    /// The registry's digest of `reference` now.
    digest: &'a str,
    /// The reference's check was due in this pass (a failed question is asked again then).
    due: bool,
}

/// The image the registry's digest of a reference gives the node's platform, asked once per
/// digest (again at the reference's next check while asking failed).
async fn platform_image<R: ContainerRuntime>(
    engine: &R,
    checks: &RegistryChecks,
    ask: &PlatformAsk<'_>,
) -> PlatformImage {
    let key = (ask.node.to_owned(), ask.reference.to_owned());
    let cached = checks.with(|c| c.platform_images.get(&key).cloned());
    if let Some((d, answer)) = &cached
        && d == ask.digest
        && (*answer != PlatformImage::Failed || !ask.due)
    {
        return answer.clone();
    }
    let answer = match engine.registry_image_id(ask.reference).await {
        Ok(Some(id)) => PlatformImage::Image(id),
        Ok(None) => PlatformImage::CannotTell,
        Err(e) => {
            // Asked again at the reference's next check (each `image_check_interval`); logged
            // at the first failure of a streak. The engine answered the digest, so this is no
            // registry outage: the digests decide meanwhile (a registry only the engine reaches,
            // through its mirrors or certificates, still gets its updates).
            if !matches!(cached, Some((_, PlatformImage::Failed))) {
                tracing::warn!(node = ask.node, image = %ask.reference, error = %e, "failed to ask the registry which image the new digest gives this node's platform; the digests decide (an index that moved for another platform shows as an update); asking again at the next check");
            }
            PlatformImage::Failed
        }
    };
    checks.with(|c| {
        c.platform_images
            .insert(key, (ask.digest.to_owned(), answer.clone()))
    });
    answer
}
