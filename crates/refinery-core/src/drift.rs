//! Diff: a declared container against what its node's engine holds, into typed drift.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::drift_report::{DRIFT_TYPES, Drift, DriftKind, DriftReport, FieldChange};
use crate::labels;
use crate::observed::{ContainerState, Health, ImageDefaults, Observed, ObservedContainer};
use crate::port_fallback::{self, Degraded};
use crate::resource_id::ResourceId;
use crate::secret::name_looks_secret;
use crate::spec::{ContainerSpec, Healthcheck, MountKind};

/// What the diff needs besides the two states.
#[derive(Debug, Clone, Default)]
pub struct DiffContext {
    pub node: String,
    /// Global `ignore_differences`.
    pub ignore: Vec<String>,
    /// Label keys that never count (the selector's, for instance).
    pub ignore_label_keys: Vec<String>,
    /// Primary host ports the engine found free again (see
    /// [`port_fallback::degraded_primaries`]): a container degraded off one of them is config
    /// drift on `ports`, so it is recreated on its primary.
    pub free_ports: BTreeSet<u16>,
    /// The node's stack networks and volumes, declared and observed; `None` when the engine was
    /// not asked (nothing about them is reported then).
    pub stack_resources: Option<crate::drift_resources::StackResources>,
    /// The registry's current digest of declared tag references (`name:tag` → `sha256:…`), as
    /// last checked; a running container created from another digest is `image_update` drift.
    pub registry_digests: BTreeMap<String, String>,
    /// The image each container with an `image_policy` should run (container name → `name:tag`,
    /// the newest tag matching its range; see [`crate::image_policy::target`]); absent when no
    /// such tag is known.
    pub image_targets: BTreeMap<String, String>,
}

impl DiffContext {
    /// The context for one node of a manifest: its global ignore rules, and the selector's label
    /// key (Refinery puts it on what it creates; it is never drift).
    #[must_use]
    pub fn for_node(manifest: &crate::manifest::Manifest, node: &str) -> Self {
        DiffContext {
            node: node.to_owned(),
            ignore: manifest.ignore_differences.clone(),
            ignore_label_keys: manifest
                .config
                .selector
                .iter()
                .map(|s| s.key.clone())
                .collect(),
            free_ports: BTreeSet::new(),
            stack_resources: None,
            registry_digests: BTreeMap::new(),
            image_targets: BTreeMap::new(),
        }
    }

    /// The same context, with the engine's networks and volumes to compare the manifest's stack
    /// networks and volumes on this node with.
    #[must_use]
    pub fn with_stack_resources(
        mut self,
        manifest: &crate::manifest::Manifest,
        networks: Vec<crate::observed::ObservedNetwork>,
        volumes: Vec<crate::observed::ObservedVolume>,
    ) -> Self {
        let node = self.node.clone();
        self.stack_resources = Some(crate::drift_resources::StackResources {
            networks: manifest
                .stack_networks
                .iter()
                .filter(|n| n.node == node)
                .cloned()
                .collect(),
            volumes: manifest
                .stack_volumes
                .iter()
                .filter(|v| v.node == node)
                .cloned()
                .collect(),
            observed_networks: networks,
            observed_volumes: volumes,
        });
        self
    }

    /// The same context, with the primary host ports the engine found free.
    #[must_use]
    pub fn with_free_ports(mut self, free_ports: BTreeSet<u16>) -> Self {
        self.free_ports = free_ports;
        self
    }
}

/// Whether `field` is covered by one of `patterns` (`env` covers `env.X`; globs allowed).
#[must_use]
pub fn field_ignored(field: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        if p == field
            || field
                .strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('.'))
        {
            return true;
        }
        globset::Glob::new(p)
            .map(|g| g.compile_matcher().is_match(field))
            .unwrap_or(false)
    })
}

fn masked(sensitive: bool, value: Option<&str>, side: &str) -> String {
    match value {
        None => "(unset)".to_owned(),
        Some(_) if sensitive => format!("*** ({side})"),
        Some(v) => v.to_owned(),
    }
}

/// The healthcheck a container created with `own` on an image with `image` runs: Docker fills
/// the unset (empty or zero) fields of a declared healthcheck from the image's.
fn merged_healthcheck(
    own: Option<&Healthcheck>,
    image: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    let (Some(own), Some(image)) = (own, image) else {
        return own.or(image).cloned();
    };
    let or = |a: u64, b: u64| if a == 0 { b } else { a };
    Some(Healthcheck {
        test: if own.test.is_empty() {
            image.test.clone()
        } else {
            own.test.clone()
        },
        interval_ms: or(own.interval_ms, image.interval_ms),
        timeout_ms: or(own.timeout_ms, image.timeout_ms),
        start_period_ms: or(own.start_period_ms, image.start_period_ms),
        retries: if own.retries == 0 {
            image.retries
        } else {
            own.retries
        },
    })
}

fn disables(h: &Healthcheck) -> bool {
    h.test.first().map(String::as_str) == Some("NONE")
}

fn words(v: Option<&Vec<String>>) -> String {
    match v {
        None => "(image default)".to_owned(),
        Some(w) if w.is_empty() => "(none)".to_owned(),
        Some(w) => format!("{w:?}"),
    }
}

fn nonempty(v: Option<&Vec<String>>) -> Option<&Vec<String>> {
    v.filter(|w| !w.is_empty())
}

/// Field-by-field comparison of one declared container with its observed counterpart.
#[must_use]
pub fn config_changes(
    spec: &ContainerSpec,
    o: &ObservedContainer,
    ctx: &DiffContext,
) -> Vec<FieldChange> {
    let empty = ImageDefaults::default();
    let img = o.image_defaults.as_ref().unwrap_or(&empty);
    let mut changes = Vec::new();

    // env: the image's environment overlaid with the declared one.
    let mut want: BTreeMap<&str, &str> = img
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in &spec.env {
        want.insert(k, v.expose());
    }
    let keys: BTreeSet<&str> = want
        .keys()
        .copied()
        .chain(o.env.keys().map(String::as_str))
        .collect();
    for k in keys {
        let (d, ob) = (want.get(k).copied(), o.env.get(k).map(String::as_str));
        if d != ob {
            // Masked when the name looks secret, the declared value is marked sensitive, or the
            // container was created with a secret value under this name (a SOPS value since
            // removed from its file).
            let sensitive = name_looks_secret(k)
                || spec
                    .env
                    .get(k)
                    .is_some_and(crate::secret::Secret::is_sensitive)
                || o.labels
                    .get(labels::SECRET_ENV)
                    .is_some_and(|names| names.split(',').any(|n| n == k));
            changes.push(FieldChange {
                field: format!("env.{k}"),
                desired: masked(sensitive, d, "after"),
                observed: masked(sensitive, ob, "before"),
                ignored: false,
            });
        }
    }

    // ports, as sorted normalized sets (a binding declared twice is published once). A host port
    // on one of its declared fallbacks reads as its primary, until the primary is free again.
    let sorted = |ports: &[crate::spec::PortBinding]| {
        let mut v: Vec<String> = ports.iter().map(ToString::to_string).collect();
        v.sort();
        v.dedup();
        v
    };
    let dp = sorted(&spec.ports);
    let op = sorted(&o.ports);
    let subs = port_fallback::degraded_ports(spec, o);
    let as_declared = sorted(&port_fallback::as_declared(&o.ports, &subs));
    let primary_free = subs.iter().any(|s| ctx.free_ports.contains(&s.primary));
    if dp != as_declared || (dp != op && primary_free) {
        changes.push(FieldChange {
            field: "ports".into(),
            desired: dp.join(", "),
            observed: op.join(", "),
            ignored: false,
        });
    }

    // mounts; anonymous volumes the image declares are its own business. A content-tracked
    // mount compares by target: where its copy lives is Refinery's business, what it holds is
    // compared file by file below.
    let content_at = |m: &crate::spec::Mount| {
        spec.content
            .iter()
            .find(|c| c.target == m.target && m.kind == MountKind::Bind)
    };
    let show_mount = |m: &crate::spec::Mount| match content_at(m) {
        Some(c) => format!(
            "./{}:{}{}",
            c.repo_path,
            m.target,
            if m.read_only { ":ro" } else { "" }
        ),
        None => m.to_string(),
    };
    let mut dm: Vec<String> = spec.mounts.iter().map(show_mount).collect();
    // Volumes taken from other containers (`volumes_from`) are theirs, not declared here.
    let borrows = !spec.options.extra().volumes_from.is_empty();
    let mut om: Vec<String> = o
        .mounts
        .iter()
        .filter(|m| {
            !(m.kind == MountKind::Anonymous
                && (img.volumes.contains(&m.target) || borrows)
                && !spec.mounts.iter().any(|d| d.target == m.target))
        })
        .map(show_mount)
        .collect();
    dm.sort();
    om.sort();
    if dm != om {
        changes.push(FieldChange {
            field: "volumes".into(),
            desired: dm.join(", "),
            observed: om.join(", "),
            ignored: false,
        });
    }

    changes.extend(content_changes(spec, o));

    // command and entrypoint: an unset field inherits the image's. The engine drops the image's
    // command when a non-empty entrypoint is given without a command; an empty command (or an
    // empty entrypoint, which clears the image's) still inherits it.
    let want_cmd = match (
        nonempty(spec.command.as_ref()),
        nonempty(spec.entrypoint.as_ref()),
    ) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(_)) => None,
        (None, None) => img.command.clone(),
    };
    if nonempty(want_cmd.as_ref()) != nonempty(o.command.as_ref()) {
        changes.push(FieldChange {
            field: "command".into(),
            desired: words(want_cmd.as_ref()),
            observed: words(o.command.as_ref()),
            ignored: false,
        });
    }
    let want_ep = spec.entrypoint.clone().or_else(|| img.entrypoint.clone());
    let ep_ok = nonempty(want_ep.as_ref()) == nonempty(o.entrypoint.as_ref())
        || (spec.entrypoint.is_none() && nonempty(o.entrypoint.as_ref()).is_none());
    if !ep_ok {
        changes.push(FieldChange {
            field: "entrypoint".into(),
            desired: words(want_ep.as_ref()),
            observed: words(o.entrypoint.as_ref()),
            ignored: false,
        });
    }

    // labels: declared ones must be there; extra ones (not the image's, not Refinery's) are drift.
    let reserved = |k: &str| {
        k.starts_with(labels::PREFIX)
            || k.starts_with("com.docker.compose.")
            || ctx.ignore_label_keys.iter().any(|i| i == k)
    };
    let mut want_labels: BTreeMap<&str, &str> = img
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in &spec.labels {
        want_labels.insert(k, v);
    }
    let lkeys: BTreeSet<&str> = want_labels
        .keys()
        .copied()
        .chain(o.labels.keys().map(String::as_str))
        .filter(|k| !reserved(k))
        .collect();
    for k in lkeys {
        let (d, ob) = (
            want_labels.get(k).copied(),
            o.labels.get(k).map(String::as_str),
        );
        if d != ob {
            changes.push(FieldChange {
                field: format!("labels.{k}"),
                desired: d.unwrap_or("(unset)").to_owned(),
                observed: ob.unwrap_or("(unset)").to_owned(),
                ignored: false,
            });
        }
    }

    if spec.restart != o.restart {
        changes.push(FieldChange {
            field: "restart".into(),
            desired: spec.restart.to_string(),
            observed: o.restart.to_string(),
            ignored: false,
        });
    }

    let want_hc = merged_healthcheck(spec.healthcheck.as_ref(), img.healthcheck.as_ref());
    let hc_eq = match (&want_hc, &o.healthcheck) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a == b
                || (spec.healthcheck.is_none() && a.test == b.test)
                || (disables(a) && disables(b))
        }
        (Some(a), None) | (None, Some(a)) => disables(a),
    };
    if !hc_eq {
        let show = |h: &Option<Healthcheck>| {
            h.as_ref()
                .map_or_else(|| "(none)".to_owned(), ToString::to_string)
        };
        changes.push(FieldChange {
            field: "healthcheck".into(),
            desired: show(&want_hc),
            observed: show(&o.healthcheck),
            ignored: false,
        });
    }

    changes.extend(crate::drift_options::option_changes(spec, o));

    for c in &mut changes {
        c.ignored = field_ignored(&c.field, &spec.ignore_differences)
            || field_ignored(&c.field, &ctx.ignore);
    }
    changes
}

/// The content-tracked files whose committed digest differs from the one the container has: on
/// the host when its copy could be read (`ObservedContainer::content`), else in its labels.
#[must_use]
pub fn content_changes(spec: &ContainerSpec, o: &ObservedContainer) -> Vec<FieldChange> {
    use crate::content;
    let recorded = content::digests_from_labels(&o.labels);
    let seen = o.content.as_ref().unwrap_or(&recorded);
    let want: BTreeMap<String, &str> = spec
        .content
        .iter()
        .flat_map(content::ContentMount::file_digests)
        .collect();
    // Files recorded on the container but no longer committed count only while the mount that
    // held them is still declared (a removed mount is `volumes` drift).
    let declared = |path: &str| {
        spec.content.iter().any(|c| {
            path == c.repo_path
                || c.repo_path.is_empty()
                || path
                    .strip_prefix(c.repo_path.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    };
    let paths: BTreeSet<&str> = want
        .keys()
        .map(String::as_str)
        .chain(seen.keys().map(String::as_str).filter(|p| declared(p)))
        .collect();
    let mut out = Vec::new();
    for path in paths {
        let d = want.get(path).copied();
        let ob = seen.get(path).map(String::as_str);
        if d == ob {
            continue;
        }
        let edited = o.content.is_some()
            && ob.is_some()
            && recorded.get(path).map(String::as_str) != ob
            && recorded.contains_key(path);
        let observed = match ob {
            None => "(absent)".to_owned(),
            Some(x) if edited => format!("{} (edited on the host)", content::short(x)),
            Some(x) => content::short(x).to_owned(),
        };
        out.push(FieldChange {
            field: format!("{}{path}", content::FIELD_PREFIX),
            desired: d.map_or_else(
                || "(not in git)".to_owned(),
                |x| content::short(x).to_owned(),
            ),
            observed,
            ignored: false,
        });
    }
    out
}

/// Whether every acted-on change of `drift` is a content-tracked file (so a restart, after the
/// copy is rewritten in place, applies it).
#[must_use]
pub fn only_content_changed(drift: &Drift) -> bool {
    let mut acted = drift.changes.iter().filter(|c| !c.ignored).peekable();
    acted.peek().is_some() && acted.all(|c| c.field.starts_with(crate::content::FIELD_PREFIX))
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// The build a spec's image needs before a container can be made from it: the service builds
/// (`build:`) and the local image is absent or was built from another context.
#[must_use]
pub fn needs_build<'s>(
    spec: &'s ContainerSpec,
    observed: &Observed,
) -> Option<&'s crate::spec::BuildSpec> {
    let build = spec.stack.as_ref()?.build.as_ref()?;
    let built = observed.image(&spec.image).is_some_and(|info| {
        info.defaults.labels.get(labels::LABEL_BUILD_DIGEST) == Some(&build.digest)
    });
    (!built).then_some(build)
}

/// What happens to the image of a container about to be created, when it is not simply there:
/// it will be pulled (absent, or `pull_policy: always`), pulled again if its last pull is older
/// than its refresh period (`daily`, `weekly`, `every_…`), or it cannot be (`pull_policy: never`).
#[must_use]
pub fn image_note(spec: &ContainerSpec, observed: &Observed) -> Option<String> {
    use crate::extra_options::PullPolicy;
    let present = observed.image(&spec.image).is_some();
    match (spec.options.extra().pull_policy, present) {
        (Some(PullPolicy::Always), _) => Some(format!(
            "image `{}` is pulled first (`pull_policy: always`)",
            spec.image
        )),
        (Some(PullPolicy::Refresh { .. }), true) => {
            crate::pull_refresh::refresh_period(spec).map(|every| {
                format!(
                    "image `{}` is pulled again first if Refinery last pulled it over {} ago (`pull_policy`)",
                    spec.image,
                    crate::pull_refresh::period_text(every)
                )
            })
        }
        (Some(PullPolicy::Never), false) => Some(format!(
            "image `{}` is not present locally, and `pull_policy: never` forbids pulling it",
            spec.image
        )),
        (_, false) => Some(format!(
            "image `{}` is not present locally: it will be pulled",
            spec.image
        )),
        (_, true) => None,
    }
}

/// `build `tag` from `dir``, for plan details.
fn build_note(spec: &ContainerSpec, build: &crate::spec::BuildSpec) -> String {
    let dir = if build.context.is_empty() {
        "."
    } else {
        build.context.as_str()
    };
    format!("builds `{}` from `{dir}`", spec.image)
}

/// The image drift of one container, if any: compared by image id when the declared image is
/// local (so a re-tagged image counts), else by reference. A built image that is local but was
/// built from another context is drift too.
#[must_use]
pub fn image_change(
    spec: &ContainerSpec,
    o: &ObservedContainer,
    observed: &Observed,
) -> Option<FieldChange> {
    if let Some(build) = needs_build(spec, observed)
        && observed.image(&spec.image).is_some()
    {
        return Some(FieldChange {
            field: "image".into(),
            desired: format!(
                "{} ({}, context {})",
                spec.image,
                build_note(spec, build),
                build.short_digest()
            ),
            observed: format!("{} ({})", o.image, short_id(&o.image_id)),
            ignored: false,
        });
    }
    match observed.image(&spec.image) {
        Some(info) if info.id != o.image_id => Some(FieldChange {
            field: "image".into(),
            desired: format!("{} ({})", spec.image, short_id(&info.id)),
            observed: format!("{} ({})", o.image, short_id(&o.image_id)),
            ignored: false,
        }),
        Some(_) => None,
        None if labels::normalize_image_ref(&o.image)
            != labels::normalize_image_ref(&spec.image) =>
        {
            let why = match needs_build(spec, observed) {
                Some(b) => build_note(spec, b),
                None => "not present locally".to_owned(),
            };
            Some(FieldChange {
                field: "image".into(),
                desired: format!("{} ({why})", spec.image),
                observed: format!("{} ({})", o.image, short_id(&o.image_id)),
                ignored: false,
            })
        }
        None => None,
    }
}

/// The status drift of a container, if it is not running and healthy.
#[must_use]
pub fn status_summary(o: &ObservedContainer) -> Option<String> {
    match o.state {
        ContainerState::Running if o.health == Health::Unhealthy => Some("unhealthy".into()),
        ContainerState::Running | ContainerState::Removing => None,
        ContainerState::Exited | ContainerState::Dead => Some(match o.exit_code {
            Some(code) => format!("{} (code {code})", o.state),
            None => o.state.to_string(),
        }),
        s => Some(s.to_string()),
    }
}

/// The container on the engine that is `spec`'s: the one of its name or, for a stack replica,
/// the one docker compose made for that replica under another name.
#[must_use]
pub fn declared_container<'o>(
    spec: &ContainerSpec,
    observed: &'o Observed,
) -> Option<&'o ObservedContainer> {
    observed
        .container(&spec.name)
        .or_else(|| compose_replica(spec, observed))
}

/// The container docker compose made for a stack replica under another name than
/// docker-compose 1.29's `project_service_N` (compose v2 names it `project-service-N`): found by
/// its project, service and number labels, so it is adopted the same way.
fn compose_replica<'o>(
    spec: &ContainerSpec,
    observed: &'o Observed,
) -> Option<&'o ObservedContainer> {
    use crate::labels::{LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
    let m = spec.stack.as_ref()?;
    let number = m.number.to_string();
    observed.containers.iter().find(|c| {
        let label = |k: &str| c.labels.get(k).map(String::as_str);
        label(LABEL_PROJECT) == Some(m.project.as_str())
            && label(LABEL_SERVICE) == Some(m.service.as_str())
            && label(LABEL_NUMBER) == Some(number.as_str())
            && !label(LABEL_ONEOFF).is_some_and(|v| v.eq_ignore_ascii_case("true"))
            // Set aside by a recreate in progress, or a start-first replacement not yet renamed
            // (the engine's `recreate_temp_name`, `start_first_temp_name`).
            && !c.name.ends_with(".refinery-old")
            && !c.name.ends_with(".refinery-new")
    })
}

/// Diffs the containers declared on `ctx.node` against that node's observed state.
#[must_use]
pub fn diff_node(
    declared: &[&ContainerSpec],
    observed: &Observed,
    ctx: &DiffContext,
) -> DriftReport {
    let mut report = DriftReport::default();
    let mut adopted: BTreeSet<&str> = BTreeSet::new();
    for spec in declared {
        let id = ResourceId::for_spec(&ctx.node, spec);
        let found = declared_container(spec, observed);
        if let Some(o) = found {
            adopted.insert(o.id.as_str());
        }
        let target = ctx.image_targets.get(&spec.name).map(String::as_str);
        let Some(o) = found else {
            if let Some((summary, changes)) = crate::image_policy::missing(spec, target) {
                report.drifts.push(Drift {
                    id,
                    kind: DriftKind::Missing,
                    container_id: None,
                    summary: format!("not on the engine; {summary}"),
                    changes,
                });
                continue;
            }
            let summary = match needs_build(spec, observed) {
                Some(b) => format!("not on the engine; {}", build_note(spec, b)),
                None => match image_note(spec, observed) {
                    Some(note) => format!("not on the engine; {note}"),
                    None => "not on the engine".into(),
                },
            };
            report.drifts.push(Drift {
                id,
                kind: DriftKind::Missing,
                container_id: None,
                summary,
                changes: Vec::new(),
            });
            continue;
        };
        let before = report.drifts.len();
        for s in port_fallback::degraded_ports(spec, o) {
            report.degraded.push(Degraded {
                id: id.clone(),
                container_id: o.id.clone(),
                primary: s.primary,
                fallback: s.fallback,
                primary_free: ctx.free_ports.contains(&s.primary),
            });
        }
        let image_change = if spec.options.image_policy.is_some() {
            crate::image_policy::image_change(spec, o, target)
        } else {
            image_change(spec, o, observed)
        };
        if let Some(mut change) = image_change {
            change.ignored = field_ignored("image", &spec.ignore_differences)
                || field_ignored("image", &ctx.ignore);
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Image,
                container_id: Some(o.id.clone()),
                summary: format!("{} → {}", change.observed, change.desired),
                changes: vec![change],
            });
        } else if let Some(drift) =
            crate::image_update::image_update(&id, spec, o, &ctx.registry_digests)
                .or_else(|| crate::image_policy::image_update(&id, spec, o, target))
        {
            report.drifts.push(drift);
        }
        let changes = config_changes(spec, o, ctx);
        if !changes.is_empty() {
            let acted = changes.iter().filter(|c| !c.ignored).count();
            let summary = match acted {
                0 => format!(
                    "{} ignored field{}",
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                ),
                1 => changes
                    .iter()
                    .find(|c| !c.ignored)
                    .map(|c| format!("{} differs", c.field))
                    .unwrap_or_default(),
                n => format!("{n} fields differ"),
            };
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Config,
                container_id: Some(o.id.clone()),
                summary,
                changes,
            });
        }
        if let Some(summary) = status_summary(o) {
            let ignored = field_ignored("status", &spec.ignore_differences)
                || field_ignored("status", &ctx.ignore);
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Status,
                container_id: Some(o.id.clone()),
                summary: summary.clone(),
                changes: vec![FieldChange {
                    field: "status".into(),
                    desired: "running".into(),
                    observed: summary,
                    ignored,
                }],
            });
        }
        let acted = report.drifts[before..]
            .iter()
            .any(|d| d.changes.iter().any(|c| !c.ignored));
        if !acted {
            report.in_sync.push(id);
        }
    }
    if let Some(r) = &ctx.stack_resources {
        crate::drift_resources::diff_stack_resources(&ctx.node, r, &mut report);
    }
    let declared_names: BTreeSet<&str> = declared.iter().map(|s| s.name.as_str()).collect();
    for o in &observed.containers {
        if declared_names.contains(o.name.as_str()) || adopted.contains(o.id.as_str()) {
            continue;
        }
        report.drifts.push(Drift {
            id: ResourceId::container(&ctx.node, &o.name),
            kind: DriftKind::Unauthorized,
            container_id: Some(o.id.clone()),
            summary: format!("{} ({}), declared nowhere", o.image, o.state),
            changes: Vec::new(),
        });
    }
    report
}
