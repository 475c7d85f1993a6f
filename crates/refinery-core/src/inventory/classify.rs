//! The classification itself: one [`Item`] per container, image reference, volume and network,
//! each in exactly one [`Class`] with the rule that put it there.

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use super::engine::{EngineImage, EngineNetwork, EngineVolume};
use super::kind::Kind;
use super::usage::InventoryState;
use crate::labels::normalize_image_ref;
use crate::manifest::{Manifest, Mode};
use crate::observed::{ContainerState, ObservedContainer};
use crate::resource_id::ResourceId;
use crate::spec::MountKind;

/// Where a resource stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Declared in the manifest or allowed by `inventory.allowed`.
    Expected,
    /// Matches `inventory.protected` (or `protected_tags`, or is a built-in network): never touched.
    Protected,
    /// Matches `inventory.safe_to_delete`, is dangling or past its unused age, and nothing uses it.
    SafeToDelete,
    /// Everything else: a human has to decide.
    Extra,
}

impl Class {
    pub const ALL: [Class; 4] = [
        Class::Expected,
        Class::Protected,
        Class::SafeToDelete,
        Class::Extra,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Expected => "expected",
            Class::Protected => "protected",
            Class::SafeToDelete => "safe_to_delete",
            Class::Extra => "extra",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One classified resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// Container name, image reference (`repo:tag`, or the image id when dangling), volume or
    /// network name.
    pub name: String,
    /// The engine id (containers, images, networks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub class: Class,
    /// The rule that decided the class.
    pub reason: String,
    /// Bytes on disk, when known (for an image: the whole image, shared by all its tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes removing this item frees, together with the rest of the safe-to-delete set.
    pub frees: u64,
    /// Containers using it (images, volumes, networks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    /// Since when nothing uses it: the last time Refinery saw it in use, else its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unused_since: Option<Timestamp>,
}

impl Item {
    /// `docker/<node>/<kind>/<name>`.
    #[must_use]
    pub fn resource_id(&self, node: &str) -> ResourceId {
        ResourceId::docker(node, self.kind, &self.name)
    }

    /// What to pass to the engine to remove it: the id for containers and networks, the
    /// reference (or id) for images, the name for volumes.
    #[must_use]
    pub fn target(&self) -> &str {
        match self.kind {
            Kind::Container | Kind::Network => self.id.as_deref().unwrap_or(&self.name),
            Kind::Image | Kind::Volume => &self.name,
        }
    }
}

/// Everything one node's engine holds, as the inventory sees it.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Containers the selector shows.
    pub containers: &'a [ObservedContainer],
    pub images: &'a [EngineImage],
    pub volumes: &'a [EngineVolume],
    pub networks: &'a [EngineNetwork],
}

/// One node's classified inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeAudit {
    pub node: String,
    pub mode: Mode,
    /// Sorted by kind, class, name.
    pub items: Vec<Item>,
}

impl NodeAudit {
    /// Names of the items of `kind` in `class`, sorted.
    #[must_use]
    pub fn names(&self, kind: Kind, class: Class) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.kind == kind && i.class == class)
            .map(|i| i.name.clone())
            .collect()
    }

    #[must_use]
    pub fn count(&self, kind: Kind, class: Class) -> usize {
        self.items
            .iter()
            .filter(|i| i.kind == kind && i.class == class)
            .count()
    }

    /// Whether anything needs a human.
    #[must_use]
    pub fn has_extras(&self) -> bool {
        self.items.iter().any(|i| i.class == Class::Extra)
    }
}

/// What a cleanup of `audit` removes, in order (containers, then images, volumes, networks):
/// exactly the safe-to-delete items, and nothing at all on a read-only node.
#[must_use]
pub fn cleanup_set(audit: &NodeAudit) -> Vec<&Item> {
    if audit.mode == Mode::ReadOnly {
        return Vec::new();
    }
    let mut set: Vec<&Item> = audit
        .items
        .iter()
        .filter(|i| i.class == Class::SafeToDelete)
        .collect();
    set.sort_by_key(|i| i.kind);
    set
}

/// `14d`, `3h`, `12m`, `40s`: the largest whole unit.
#[must_use]
pub fn format_age(ms: u64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    if ms >= D {
        format!("{}d", ms / D)
    } else if ms >= H {
        format!("{}h", ms / H)
    } else if ms >= M {
        format!("{}m", ms / M)
    } else {
        format!("{}s", ms / S)
    }
}

/// Networks every engine has; never touched.
const BUILTIN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

fn first_match<'p>(name: &str, patterns: &'p [String]) -> Option<&'p str> {
    patterns.iter().map(String::as_str).find(|p| {
        globset::Glob::new(p)
            .map(|g| g.compile_matcher().is_match(name))
            .unwrap_or(false)
    })
}

fn used_by_text(used_by: &[String]) -> String {
    let mut names: Vec<String> = used_by.iter().take(3).map(|n| format!("`{n}`")).collect();
    if used_by.len() > 3 {
        names.push(format!("{} more", used_by.len() - 3));
    }
    names.join(", ")
}

struct Rules<'a> {
    manifest: &'a Manifest,
    node: &'a str,
    declared_images: BTreeSet<String>,
    state: &'a InventoryState,
    now: Timestamp,
}

impl Rules<'_> {
    fn protected(&self, name: &str) -> Option<String> {
        first_match(name, &self.manifest.inventory.protected)
            .map(|p| format!("matches `inventory.protected` `{p}`"))
    }

    fn allowed(&self, name: &str, kind: Kind) -> Option<String> {
        let a = &self.manifest.inventory.allowed;
        let patterns = match kind {
            Kind::Container => &a.containers,
            Kind::Image => &a.images,
            Kind::Volume => &a.volumes,
            Kind::Network => &a.networks,
        };
        first_match(name, patterns)
            .map(|p| format!("matches `inventory.allowed.{}` `{p}`", kind.plural()))
    }

    fn safe(&self, name: &str) -> Option<&str> {
        first_match(name, &self.manifest.inventory.safe_to_delete)
    }

    /// The class of something unused or in use that no earlier rule claimed: safe-to-delete
    /// pattern, then the unused age, then extra.
    fn by_use(
        &self,
        name: &str,
        used_by: &[String],
        unused_since: Option<Timestamp>,
        max_age_ms: Option<u64>,
        age_key: &str,
    ) -> (Class, String) {
        let safe = self.safe(name);
        if !used_by.is_empty() {
            let users = used_by_text(used_by);
            return match safe {
                Some(p) => (
                    Class::Extra,
                    format!("matches `inventory.safe_to_delete` `{p}` but is used by {users}"),
                ),
                None => (
                    Class::Extra,
                    format!("used by {users} but declared nowhere"),
                ),
            };
        }
        if let Some(p) = safe {
            return (
                Class::SafeToDelete,
                format!("matches `inventory.safe_to_delete` `{p}`"),
            );
        }
        if let (Some(max), Some(since)) = (max_age_ms, unused_since) {
            let unused_ms = u64::try_from(self.now.duration_since(since).as_millis()).unwrap_or(0);
            if unused_ms > max {
                return (
                    Class::SafeToDelete,
                    format!(
                        "unused for {} (`inventory.cleanup.{age_key}` is {})",
                        format_age(unused_ms),
                        format_age(max)
                    ),
                );
            }
        }
        (Class::Extra, "declared nowhere".to_owned())
    }

    /// The last time something was seen in use, else its creation.
    fn unused_since(&self, kind: Kind, key: &str, created: Option<Timestamp>) -> Option<Timestamp> {
        let seen = self.state.last_in_use(self.node, kind, key);
        match (seen, created) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Classifies everything in `snap` on `node` against the manifest's `inventory:` section.
///
/// Order of the rules, first match wins: protected (`inventory.protected`; for images also
/// `inventory.cleanup.protected_tags` on the tag; the built-in networks), declared in the
/// manifest (containers on this node, images anywhere, named volumes on this node), allowed
/// (`inventory.allowed.*`), then: in use → extra; `inventory.safe_to_delete` → safe to delete;
/// dangling image → safe to delete; unused longer than `max_unused_*_age` → safe to delete;
/// anything else → extra. A running container is in use.
#[must_use]
pub fn classify(
    manifest: &Manifest,
    node: &str,
    snap: Snapshot<'_>,
    state: &InventoryState,
    now: Timestamp,
) -> NodeAudit {
    let rules = Rules {
        manifest,
        node,
        declared_images: manifest
            .containers
            .iter()
            .map(|c| normalize_image_ref(&c.image))
            .collect(),
        state,
        now,
    };
    let mut items = Vec::new();
    for c in snap.containers {
        items.push(container_item(&rules, c));
    }
    for image in snap.images {
        items.extend(image_items(&rules, image));
    }
    for v in snap.volumes {
        items.push(volume_item(&rules, v));
    }
    for n in snap.networks {
        items.push(network_item(&rules, n));
    }
    items.sort_by(|a, b| (a.kind, a.class, &a.name).cmp(&(b.kind, b.class, &b.name)));
    NodeAudit {
        node: node.to_owned(),
        mode: manifest.mode_of(node),
        items,
    }
}

fn container_item(r: &Rules<'_>, c: &ObservedContainer) -> Item {
    let declared = r
        .manifest
        .containers
        .iter()
        .any(|s| s.node == r.node && s.name == c.name);
    let (class, reason) = if let Some(why) = r.protected(&c.name) {
        (Class::Protected, why)
    } else if declared {
        (Class::Expected, "declared in the manifest".to_owned())
    } else if let Some(why) = r.allowed(&c.name, Kind::Container) {
        (Class::Expected, why)
    } else if let Some(p) = r.safe(&c.name) {
        let running = matches!(
            c.state,
            ContainerState::Running
                | ContainerState::Restarting
                | ContainerState::Paused
                | ContainerState::Removing
        );
        if running {
            (
                Class::Extra,
                format!(
                    "matches `inventory.safe_to_delete` `{p}` but is {}",
                    c.state
                ),
            )
        } else {
            (
                Class::SafeToDelete,
                format!(
                    "matches `inventory.safe_to_delete` `{p}` and is {}",
                    c.state
                ),
            )
        }
    } else {
        (Class::Extra, "declared nowhere".to_owned())
    };
    Item {
        kind: Kind::Container,
        name: c.name.clone(),
        id: Some(c.id.clone()),
        class,
        reason,
        size: None,
        frees: 0,
        used_by: Vec::new(),
        unused_since: None,
    }
}

/// One item per tag (a dangling image is one item named by its id). The image's bytes count as
/// freed once, on its last tag, and only when every tag of it is safe to delete.
fn image_items(r: &Rules<'_>, image: &EngineImage) -> Vec<Item> {
    let unused_since = if image.used_by.is_empty() {
        r.unused_since(Kind::Image, &image.id, image.created)
    } else {
        None
    };
    let max_age = r.manifest.inventory.cleanup.max_unused_image_age_ms;
    let mut items: Vec<Item> = Vec::new();
    // A manifest may name an image by digest (`repo@sha256:…`): then every tag of it, or the
    // untagged image itself, is declared.
    let declared_by_digest = image
        .digests
        .iter()
        .any(|d| r.declared_images.contains(&normalize_image_ref(d)));
    if image.tags.is_empty() {
        let (class, reason) = if declared_by_digest {
            (
                Class::Expected,
                "declared in the manifest (by digest)".to_owned(),
            )
        } else if image.used_by.is_empty() {
            (Class::SafeToDelete, "dangling image (no tag)".to_owned())
        } else {
            (
                Class::Extra,
                format!("dangling image used by {}", used_by_text(&image.used_by)),
            )
        };
        items.push(image_item(
            image,
            image.id.clone(),
            class,
            reason,
            unused_since,
        ));
    }
    for tag in &image.tags {
        let tag_part = tag
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or("latest", |(_, t)| t);
        let (class, reason) = if let Some(why) = r.protected(tag) {
            (Class::Protected, why)
        } else if let Some(p) = first_match(tag_part, &r.manifest.inventory.cleanup.protected_tags)
        {
            (
                Class::Protected,
                format!("tag matches `inventory.cleanup.protected_tags` `{p}`"),
            )
        } else if declared_by_digest || r.declared_images.contains(&normalize_image_ref(tag)) {
            (Class::Expected, "declared in the manifest".to_owned())
        } else if let Some(why) = r.allowed(tag, Kind::Image) {
            (Class::Expected, why)
        } else {
            r.by_use(
                tag,
                &image.used_by,
                unused_since,
                max_age,
                "max_unused_image_age",
            )
        };
        items.push(image_item(image, tag.clone(), class, reason, unused_since));
    }
    if items.iter().all(|i| i.class == Class::SafeToDelete)
        && let Some(last) = items.last_mut()
    {
        last.frees = image.size.unwrap_or(0);
    }
    items
}

fn image_item(
    image: &EngineImage,
    name: String,
    class: Class,
    reason: String,
    unused_since: Option<Timestamp>,
) -> Item {
    Item {
        kind: Kind::Image,
        name,
        id: Some(image.id.clone()),
        class,
        reason,
        size: image.size,
        frees: 0,
        used_by: image.used_by.clone(),
        unused_since,
    }
}

fn volume_item(r: &Rules<'_>, v: &EngineVolume) -> Item {
    let declared = r.manifest.containers.iter().any(|s| {
        s.node == r.node
            && s.mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == v.name)
    });
    let unused_since = if v.used_by.is_empty() {
        r.unused_since(Kind::Volume, &v.name, v.created)
    } else {
        None
    };
    let (class, reason) = if let Some(why) = r.protected(&v.name) {
        (Class::Protected, why)
    } else if declared {
        (Class::Expected, "declared in the manifest".to_owned())
    } else if let Some(why) = r.allowed(&v.name, Kind::Volume) {
        (Class::Expected, why)
    } else {
        r.by_use(
            &v.name,
            &v.used_by,
            unused_since,
            r.manifest.inventory.cleanup.max_unused_volume_age_ms,
            "max_unused_volume_age",
        )
    };
    let frees = if class == Class::SafeToDelete {
        v.size.unwrap_or(0)
    } else {
        0
    };
    Item {
        kind: Kind::Volume,
        name: v.name.clone(),
        id: None,
        class,
        reason,
        size: v.size,
        frees,
        used_by: v.used_by.clone(),
        unused_since,
    }
}

fn network_item(r: &Rules<'_>, n: &EngineNetwork) -> Item {
    let (class, reason) = if BUILTIN_NETWORKS.contains(&n.name.as_str()) {
        (Class::Protected, "built-in network".to_owned())
    } else if let Some(why) = r.protected(&n.name) {
        (Class::Protected, why)
    } else if let Some(why) = r.allowed(&n.name, Kind::Network) {
        (Class::Expected, why)
    } else {
        r.by_use(&n.name, &n.used_by, None, None, "")
    };
    Item {
        kind: Kind::Network,
        name: n.name.clone(),
        id: Some(n.id.clone()),
        class,
        reason,
        size: None,
        frees: 0,
        used_by: n.used_by.clone(),
        unused_since: None,
    }
}
