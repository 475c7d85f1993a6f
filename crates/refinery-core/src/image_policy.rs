//! `image_policy: {semver: "^1.4"}`: a container that follows version tags instead of one tag.
//!
//! Semantics (README "Version tags"):
//! - The declared `image:` names the repository (`registry/app:1.4.2`, or without a tag); its tag,
//!   when written, must match the range. The container may run **any** tag of that repository
//!   matching the range.
//! - The **target** is the newest tag matching the range among the registry's tags: tags that
//!   parse as semver `MAJOR.MINOR.PATCH[-PRE]`, with an optional leading `v`; pre-releases only
//!   when the range asks for them (a comparator naming a pre-release of that same version, as
//!   Cargo reads ranges). When the registry cannot be asked, the newest matching tag present
//!   locally is the target.
//! - A missing container is created on the target; with no target known, that resource fails.
//! - A running container on an older matching tag is `image_update` drift naming the tag it would
//!   move to; a running container on a tag outside the range (or another repository) is `image`
//!   drift towards the target.
//! - Every create or replacement (for any reason) uses the newest matching tag known; the
//!   `image_update` rule only decides whether a newer tag alone replaces a running container.
//!
//! Pure: the registry's tags are asked by the caller on the schedule [`TagChecks`] keeps.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use semver::{Version, VersionReq};

use crate::drift_report::{Drift, DriftKind, FieldChange};
use crate::image_ref::ImageRef;
use crate::image_update::{CheckFailure, ImageChecks, short_digest};
use crate::observed::{Observed, ObservedContainer};
use crate::resource_id::ResourceId;
use crate::spec::ContainerSpec;
pub use crate::spec::ImagePolicy;

/// Parses a semver range the way Cargo reads them (`^1.4`, `~1.4`, `>=1.2, <2`, `1.*`).
///
/// # Errors
/// What is wrong with it, in the semver crate's words.
pub fn parse_range(range: &str) -> Result<VersionReq, String> {
    if range.trim().is_empty() {
        return Err("the semver range is empty".to_owned());
    }
    VersionReq::parse(range.trim()).map_err(|e| format!("`{range}` is not a semver range: {e}"))
}

/// The version a tag names: `1.4.2`, `v1.4.2`, `1.5.0-rc.1`; `None` for `latest`, `1.4`, `stable`.
#[must_use]
pub fn tag_version(tag: &str) -> Option<Version> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    Version::parse(bare).ok()
}

/// The newest of `tags` matching `range` (a tie, `1.5.0` and `v1.5.0`, goes to the plain one).
#[must_use]
pub fn newest_matching<'a>(
    range: &VersionReq,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|t| tag_version(t).map(|v| (v, t)))
        .filter(|(v, _)| range.matches(v))
        .max_by(|(va, ta), (vb, tb)| va.cmp(vb).then_with(|| tb.len().cmp(&ta.len())))
        .map(|(_, t)| t)
}

/// Checks a declared `image:` against its policy's range: a digest pin never moves, a build has
/// no registry tags, and a tag written must match the range. Returns the message and a hint.
///
/// # Errors
/// Why the pair cannot work, and what to do.
pub fn check_declared(image: &str, range: &str) -> Result<(), (String, String)> {
    let req = parse_range(range).map_err(|e| {
        (
            e,
            "write a range as Cargo reads them: `^1.4`, `~1.4.2`, `>=1.2, <2`, `1.*`".to_owned(),
        )
    })?;
    let Ok(r) = ImageRef::parse(image) else {
        // The image's own error is reported on `image`.
        return Ok(());
    };
    if r.digest().is_some() {
        return Err((
            format!("`{image}` is pinned to a digest, which never moves to another version"),
            "drop the `@sha256:…` part to follow the range, or drop `image_policy`".to_owned(),
        ));
    }
    if let Some(tag) = r.tag() {
        match tag_version(tag) {
            Some(v) if req.matches(&v) => {}
            Some(_) => {
                return Err((
                    format!("the image's tag `{tag}` does not match the range `{range}`"),
                    format!(
                        "declare a version inside the range (or none: `{}`), or widen the range",
                        r.name()
                    ),
                ));
            }
            None => {
                return Err((
                    format!("the image's tag `{tag}` is not a version (MAJOR.MINOR.PATCH)"),
                    format!(
                        "write the image without a tag (`{}`) or with a version inside `{range}`",
                        r.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The repository a policy container follows (`registry/app`) and its range; `None` for a
/// container without a policy.
#[must_use]
pub fn followed(spec: &ContainerSpec) -> Option<(ImageRef, VersionReq)> {
    let policy = spec.options.image_policy.as_ref()?;
    let req = policy.range()?;
    let r = ImageRef::parse(&spec.image).ok()?;
    if r.digest().is_some() {
        return None;
    }
    Some((r, req))
}

/// `name:tag`.
fn with_tag(r: &ImageRef, tag: &str) -> String {
    format!("{}:{tag}", r.name())
}

/// The image a policy container should run, `name:tag`: the newest tag matching its range among
/// `registry_tags` (the repository's tags, when the registry answered), else among the tags of
/// that repository present locally. `None` when neither has one.
#[must_use]
pub fn target(
    spec: &ContainerSpec,
    registry_tags: Option<&[String]>,
    observed: &Observed,
) -> Option<String> {
    let (r, req) = followed(spec)?;
    if let Some(tags) = registry_tags {
        return newest_matching(&req, tags.iter().map(String::as_str)).map(|t| with_tag(&r, t));
    }
    let local: Vec<String> = observed
        .images
        .keys()
        .filter_map(|k| {
            let l = ImageRef::parse(k).ok()?;
            (same_repository(&l, &r) && l.digest().is_none())
                .then(|| l.tag().map(str::to_owned))
                .flatten()
        })
        .collect();
    newest_matching(&req, local.iter().map(String::as_str)).map(|t| with_tag(&r, t))
}

fn same_repository(a: &ImageRef, b: &ImageRef) -> bool {
    a.registry() == b.registry() && a.repository() == b.repository()
}

/// The matching version a running container's image is on, if it is the followed repository
/// and its tag matches the range.
fn running_version(spec: &ContainerSpec, o: &ObservedContainer) -> Option<Version> {
    let (r, req) = followed(spec)?;
    let running = ImageRef::parse(&o.image).ok()?;
    if !same_repository(&running, &r) || running.digest().is_some() {
        return None;
    }
    let v = tag_version(running.tag()?)?;
    req.matches(&v).then_some(v)
}

/// The `image` drift of a policy container: it runs another repository, or a tag outside the
/// range. The change's `desired` is exactly the image it would be created from (the target, else
/// the declared image when it names a version; empty when neither is known, so a create fails
/// rather than run `latest`).
#[must_use]
pub fn image_change(
    spec: &ContainerSpec,
    o: &ObservedContainer,
    target: Option<&str>,
) -> Option<FieldChange> {
    spec.options.image_policy.as_ref()?;
    if running_version(spec, o).is_some() {
        return None;
    }
    let declared = ImageRef::parse(&spec.image)
        .ok()
        .and_then(|r| r.tag().and_then(tag_version))
        .map(|_| spec.image.as_str());
    Some(FieldChange {
        field: "image".into(),
        desired: target.or(declared).unwrap_or_default().to_owned(),
        observed: o.image.clone(),
        ignored: false,
    })
}

/// The `image_update` drift of a policy container running an older tag matching its range
/// than `target`: "update available: app:1.4.2 → 1.5.0".
#[must_use]
pub fn image_update(
    id: &ResourceId,
    spec: &ContainerSpec,
    o: &ObservedContainer,
    target: Option<&str>,
) -> Option<Drift> {
    let running = running_version(spec, o)?;
    let target = target?;
    let to_tag = ImageRef::parse(target).ok()?.tag()?.to_owned();
    if tag_version(&to_tag)? <= running {
        return None;
    }
    let digest = o
        .repo_digest
        .as_deref()
        .and_then(|d| d.split_once('@'))
        .map(|(_, d)| format!(" (running {})", short_digest(d)))
        .unwrap_or_default();
    Some(Drift {
        id: id.clone(),
        kind: DriftKind::ImageUpdate,
        container_id: Some(o.id.clone()),
        summary: format!("update available: {} → {to_tag}{digest}", o.image),
        changes: vec![FieldChange {
            field: "image".into(),
            desired: target.to_owned(),
            observed: o.image.clone(),
            ignored: false,
        }],
    })
}

/// What a missing policy container's drift says and carries: the image it will be created from.
#[must_use]
pub fn missing(spec: &ContainerSpec, target: Option<&str>) -> Option<(String, Vec<FieldChange>)> {
    let policy = spec.options.image_policy.as_ref()?;
    Some(match target {
        Some(t) => (
            format!(
                "will be created on `{t}`, the newest tag matching `{}`",
                policy.semver
            ),
            vec![FieldChange {
                field: "image".into(),
                desired: t.to_owned(),
                observed: String::new(),
                ignored: false,
            }],
        ),
        None => (no_target(spec, &policy.semver), Vec::new()),
    })
}

fn no_target(spec: &ContainerSpec, range: &str) -> String {
    let name =
        ImageRef::parse(&spec.image).map_or_else(|_| spec.image.clone(), |r| r.name().to_owned());
    format!(
        "no tag of `{name}` matching `{range}` is known: the registry could not be asked (or has none) and none is present locally"
    )
}

/// The image a create or recreate of a policy container uses: the `image` change the plan
/// carries (the target: a missing container, `image` or `image_update` drift), else the matching
/// tag the container runs now (with no such drift it is the newest known), else the target.
/// `Ok(None)` for a container without a policy.
///
/// # Errors
/// No target is known (the registry could not be asked and no matching tag is local).
pub fn image_to_create(
    spec: &ContainerSpec,
    changes: &[FieldChange],
    running: Option<&ObservedContainer>,
    fallback_target: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(policy) = spec.options.image_policy.as_ref() else {
        return Ok(None);
    };
    if let Some(c) = changes
        .iter()
        .find(|c| c.field == "image" && !c.desired.is_empty())
    {
        return Ok(Some(c.desired.clone()));
    }
    if let Some(o) = running
        && running_version(spec, o).is_some()
    {
        return Ok(Some(o.image.clone()));
    }
    fallback_target
        .map(|t| Some(t.to_owned()))
        .ok_or_else(|| no_target(spec, &policy.semver))
}

/// When each repository's tags are next listed, and what the registry last listed: every
/// `config.image_check_interval` per repository, backing off while the registry fails (the same
/// schedule as the digest checks, [`ImageChecks`]).
#[derive(Debug, Clone, Default)]
pub struct TagChecks {
    schedule: ImageChecks,
    tags: BTreeMap<String, Vec<String>>,
}

impl TagChecks {
    /// Of `repositories`, those due for a listing at `now`.
    #[must_use]
    pub fn due<'a>(
        &self,
        repositories: impl IntoIterator<Item = &'a str>,
        now: Timestamp,
    ) -> Vec<String> {
        self.schedule.due(repositories, now)
    }

    /// The registry listed `tags`: next listing one `interval` later.
    pub fn succeeded(
        &mut self,
        repository: &str,
        tags: Vec<String>,
        now: Timestamp,
        interval: Duration,
    ) {
        self.schedule
            .succeeded(repository, String::new(), now, interval);
        self.tags.insert(repository.to_owned(), tags);
    }

    /// The listing failed: back off (see [`ImageChecks::failed`]); the last listing is kept.
    pub fn failed(&mut self, repository: &str, now: Timestamp, interval: Duration) -> CheckFailure {
        self.schedule.failed(repository, now, interval)
    }

    /// The last tags the registry listed for `repository`.
    #[must_use]
    pub fn tags(&self, repository: &str) -> Option<&[String]> {
        self.tags.get(repository).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{observed_from_spec, spec as base_spec};

    fn req(s: &str) -> VersionReq {
        parse_range(s).expect("range")
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn newest_matching_picks_the_highest_version_in_range() {
        let all = [
            "1.4.0", "1.4.2", "1.5.0", "2.0.0", "latest", "1.6", "stable", "v1.5.1",
        ];
        assert_eq!(newest_matching(&req("^1.4"), all), Some("v1.5.1"));
        assert_eq!(newest_matching(&req("~1.4"), all), Some("1.4.2"));
        assert_eq!(newest_matching(&req(">=2"), all), Some("2.0.0"));
        assert_eq!(newest_matching(&req("^3"), all), None);
        // Versions compare as versions, not strings.
        assert_eq!(
            newest_matching(&req("^1"), ["1.9.0", "1.10.0", "1.2.0"]),
            Some("1.10.0")
        );
        // A tie goes to the plain tag.
        assert_eq!(
            newest_matching(&req("^1"), ["v1.5.0", "1.5.0"]),
            Some("1.5.0")
        );
        assert_eq!(
            newest_matching(&req("^1"), ["1.5.0", "v1.5.0"]),
            Some("1.5.0")
        );
    }

    #[test]
    fn pre_releases_only_when_the_range_asks() {
        let all = ["1.4.2", "1.5.0-rc.1", "1.5.0-rc.2"];
        assert_eq!(newest_matching(&req("^1.4"), all), Some("1.4.2"));
        assert_eq!(
            newest_matching(&req(">=1.5.0-rc.1"), all),
            Some("1.5.0-rc.2")
        );
        // Once released, the release is newer than its pre-releases.
        assert_eq!(
            newest_matching(&req(">=1.5.0-rc.1"), ["1.5.0-rc.2", "1.5.0"]),
            Some("1.5.0")
        );
    }

    #[test]
    fn tag_versions_take_an_optional_v() {
        assert_eq!(tag_version("v1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(tag_version("1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(tag_version("1.2"), None);
        assert_eq!(tag_version("latest"), None);
        assert_eq!(tag_version("V1.2.3"), None);
    }

    #[test]
    fn declared_images_are_checked_against_the_range() {
        assert!(check_declared("reg:5000/app:1.4.2", "^1.4").is_ok());
        assert!(check_declared("reg:5000/app", "^1.4").is_ok());
        assert!(check_declared("reg:5000/app:v1.4.2", "^1.4").is_ok());
        let (m, h) = check_declared("reg:5000/app:2.0.0", "^1.4").expect_err("outside");
        assert!(m.contains("`2.0.0` does not match the range `^1.4`"), "{m}");
        assert!(h.contains("reg:5000/app"), "{h}");
        let (m, _) = check_declared("reg:5000/app:latest", "^1.4").expect_err("not a version");
        assert!(m.contains("not a version"), "{m}");
        let pin = format!("reg:5000/app:1.4.2@sha256:{}", "a".repeat(64));
        let (m, h) = check_declared(&pin, "^1.4").expect_err("pin");
        assert!(m.contains("digest") && h.contains("@sha256"), "{m} / {h}");
        let (m, h) = check_declared("app:1.4.2", "^^1").expect_err("range");
        assert!(m.contains("`^^1` is not a semver range"), "{m}");
        assert!(h.contains("^1.4"), "{h}");
        assert!(check_declared("app", "").is_err());
    }

    fn policy_spec(image: &str, range: &str) -> ContainerSpec {
        let mut s = base_spec("web");
        s.image = image.to_owned();
        s.options.image_policy = Some(ImagePolicy {
            semver: range.to_owned(),
        });
        s
    }

    fn running(spec: &ContainerSpec, image: &str) -> ObservedContainer {
        let mut o = observed_from_spec(spec, &crate::ImageDefaults::default());
        o.image = image.to_owned();
        o
    }

    #[test]
    fn target_prefers_the_registry_then_local_tags() {
        let spec = policy_spec("reg:5000/app:1.4.2", "^1.4");
        let mut observed = Observed::default();
        for t in [
            "reg:5000/app:1.4.0",
            "reg:5000/app:1.4.3",
            "other/app:1.9.0",
            "reg:5000/app:2.0.0",
        ] {
            observed.images.insert(
                t.to_owned(),
                crate::ImageInfo {
                    id: format!("sha256:{t}"),
                    tags: vec![t.to_owned()],
                    defaults: crate::ImageDefaults::default(),
                    repo_digests: Vec::new(),
                },
            );
        }
        let listed = tags(&["1.4.0", "1.4.2", "1.5.0", "2.0.0"]);
        assert_eq!(
            target(&spec, Some(&listed), &observed).as_deref(),
            Some("reg:5000/app:1.5.0")
        );
        assert_eq!(
            target(&spec, None, &observed).as_deref(),
            Some("reg:5000/app:1.4.3")
        );
        assert_eq!(target(&spec, Some(&tags(&["2.0.0"])), &observed), None);
        assert_eq!(target(&spec, None, &Observed::default()), None);
        assert_eq!(target(&base_spec("web"), Some(&listed), &observed), None);
    }

    #[test]
    fn an_older_matching_tag_is_image_update_and_outside_the_range_is_image_drift() {
        let spec = policy_spec("reg:5000/app:1.4.2", "^1.4");
        let id = ResourceId::for_spec("local", &spec);
        let mut o = running(&spec, "reg:5000/app:1.5.0");
        o.repo_digest = Some(format!("reg:5000/app@sha256:{}", "c".repeat(64)));
        // On an older matching tag: not image drift, but an update to the target.
        assert_eq!(image_change(&spec, &o, Some("reg:5000/app:1.6.0")), None);
        let d = image_update(&id, &spec, &o, Some("reg:5000/app:1.6.0")).expect("update");
        assert_eq!(d.kind, DriftKind::ImageUpdate);
        assert_eq!(
            d.summary,
            "update available: reg:5000/app:1.5.0 → 1.6.0 (running sha256:cccccccccccc)"
        );
        assert_eq!(d.changes[0].desired, "reg:5000/app:1.6.0");
        // On the target, or newer than a stale target: nothing.
        assert!(image_update(&id, &spec, &o, Some("reg:5000/app:1.5.0")).is_none());
        assert!(image_update(&id, &spec, &o, Some("reg:5000/app:1.4.2")).is_none());
        assert!(image_update(&id, &spec, &o, None).is_none());
        // Outside the range, or another repository: image drift towards the target.
        for other in [
            "reg:5000/app:2.0.0",
            "reg:5000/app:latest",
            "reg:5000/other:1.5.0",
        ] {
            let o = running(&spec, other);
            let c = image_change(&spec, &o, Some("reg:5000/app:1.6.0")).expect(other);
            assert_eq!(
                (c.observed.as_str(), c.desired.as_str()),
                (other, "reg:5000/app:1.6.0")
            );
            assert!(image_update(&id, &spec, &o, Some("reg:5000/app:1.6.0")).is_none());
        }
        let o = running(&spec, "reg:5000/app:2.0.0");
        assert_eq!(
            image_change(&spec, &o, None).map(|c| c.desired),
            Some("reg:5000/app:1.4.2".to_owned())
        );
        // Declared without a tag and no target known: nothing to create from (never `latest`).
        let bare = policy_spec("reg:5000/app", "^1.4");
        let c = image_change(&bare, &o, None).expect("drift");
        assert_eq!(c.desired, "");
        assert!(image_to_create(&bare, &[c], Some(&o), None).is_err());
    }

    #[test]
    fn the_image_to_create_follows_the_plan_then_keeps_the_running_tag() {
        let spec = policy_spec("reg:5000/app:1.4.2", "^1.4");
        let change = |d: &str| FieldChange {
            field: "image".into(),
            desired: d.into(),
            observed: String::new(),
            ignored: false,
        };
        let o = running(&spec, "reg:5000/app:1.5.0");
        assert_eq!(
            image_to_create(&spec, &[change("reg:5000/app:1.6.0")], Some(&o), None),
            Ok(Some("reg:5000/app:1.6.0".to_owned()))
        );
        // A config recreate keeps the matching tag it runs.
        assert_eq!(
            image_to_create(&spec, &[], Some(&o), Some("reg:5000/app:1.6.0")),
            Ok(Some("reg:5000/app:1.5.0".to_owned()))
        );
        assert_eq!(
            image_to_create(&spec, &[], None, Some("reg:5000/app:1.6.0")),
            Ok(Some("reg:5000/app:1.6.0".to_owned()))
        );
        let e = image_to_create(&spec, &[], None, None).expect_err("no target");
        assert!(
            e.contains("no tag of `reg:5000/app` matching `^1.4` is known"),
            "{e}"
        );
        assert_eq!(
            image_to_create(&base_spec("web"), &[], None, None),
            Ok(None)
        );
    }

    #[test]
    fn missing_policy_containers_name_their_target() {
        let spec = policy_spec("reg:5000/app:1.4.2", "^1.4");
        let (summary, changes) = missing(&spec, Some("reg:5000/app:1.5.0")).expect("policy");
        assert!(summary.contains("`reg:5000/app:1.5.0`"), "{summary}");
        assert_eq!(changes[0].desired, "reg:5000/app:1.5.0");
        let (summary, changes) = missing(&spec, None).expect("policy");
        assert!(summary.contains("no tag of"), "{summary}");
        assert!(changes.is_empty());
        assert!(missing(&base_spec("web"), None).is_none());
    }

    #[test]
    fn tag_checks_keep_the_last_listing_through_failures() {
        let t0: Timestamp = "2026-12-06T00:00:00Z".parse().expect("time");
        let interval = Duration::from_secs(300);
        let mut c = TagChecks::default();
        assert_eq!(c.due(["reg/app"], t0), ["reg/app"]);
        c.succeeded("reg/app", tags(&["1.0.0"]), t0, interval);
        assert!(c.due(["reg/app"], t0).is_empty());
        let later = t0
            .checked_add(jiff::SignedDuration::from_secs(300))
            .expect("time");
        assert_eq!(c.failed("reg/app", later, interval), CheckFailure::First);
        assert_eq!(c.tags("reg/app"), Some(&tags(&["1.0.0"])[..]));
        assert_eq!(c.tags("reg/other"), None);
    }
}
