//! Inventory classification: one table of seed 004's names, each with the class it must land in
//! and why; cleanup sets; the audit log's field names.

use std::collections::BTreeMap;

use refinery_core::ContainerState;
use refinery_core::inventory::{
    AuditRecord, Class, EngineImage, EngineNetwork, EngineVolume, InventoryState, Kind, NodeAudit,
    Snapshot, classify, cleanup_set,
};
use refinery_core::manifest::{Manifest, Mode};
use refinery_core::testing::{NODE, manifest, node, now, spec, stray, ts};
use refinery_core::{Mount, MountKind};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Seed 004's desktop + staging rules on one node.
fn seed_manifest() -> Manifest {
    let mut web = spec("odoo-staging");
    web.image = "odoo:18.0-20260101".into();
    web.mounts = vec![Mount {
        kind: MountKind::Volume,
        source: "odoo-staging-filestore".into(),
        target: "/var/lib/odoo".into(),
        read_only: false,
    }];
    let mut m = manifest(vec![web]);
    let inv = &mut m.inventory;
    inv.allowed.containers = vec!["odoo-dev*".into()];
    inv.allowed.images = vec!["odoo:*".into(), "postgres:16*".into()];
    inv.allowed.volumes = vec!["odoo-dev-*".into()];
    inv.protected = vec![
        "prod-*".into(),
        "stable-*".into(),
        "ipai-*".into(),
        "odoo-erp-prod".into(),
    ];
    inv.safe_to_delete = vec!["test-*".into(), "tmp-*".into(), "mcp/*".into()];
    inv.cleanup.max_unused_image_age_ms = Some(14 * DAY_MS);
    inv.cleanup.max_unused_volume_age_ms = Some(30 * DAY_MS);
    inv.cleanup.protected_tags = vec!["prod-*".into()];
    m
}

fn exited(name: &str, image: &str) -> refinery_core::ObservedContainer {
    let mut c = stray(name, image);
    c.state = ContainerState::Exited;
    c
}

fn image(id: &str, tags: &[&str], created: &str, used_by: &[&str]) -> EngineImage {
    EngineImage {
        id: format!("sha256:{id}"),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        digests: Vec::new(),
        size: Some(1000),
        created: Some(ts(created)),
        labels: BTreeMap::new(),
        used_by: used_by.iter().map(|u| (*u).to_owned()).collect(),
    }
}

fn volume(name: &str, created: &str, used_by: &[&str]) -> EngineVolume {
    EngineVolume {
        name: name.into(),
        size: Some(50),
        created: Some(ts(created)),
        labels: BTreeMap::new(),
        used_by: used_by.iter().map(|u| (*u).to_owned()).collect(),
    }
}

fn network(name: &str, used_by: &[&str]) -> EngineNetwork {
    EngineNetwork {
        id: format!("net-{name}"),
        name: name.into(),
        created: None,
        labels: BTreeMap::new(),
        used_by: used_by.iter().map(|u| (*u).to_owned()).collect(),
    }
}

/// "Now" is 2025-01-05: `OLD` is 30 days before, `RECENT` 2 days before.
const OLD: &str = "2024-12-06T12:00:00Z";
const RECENT: &str = "2025-01-03T12:00:00Z";
const ANCIENT: &str = "2024-10-01T00:00:00Z";

fn audit_with(m: &Manifest, state: &InventoryState) -> NodeAudit {
    let containers = vec![
        stray("odoo-staging", "odoo:18.0-20260101"),
        stray("odoo-dev", "odoo:17"),
        stray("odoo-erp-prod", "odoo:18.0-20260101"),
        stray("tmp-debug-running", "busybox:latest"),
        exited("tmp-debug-container", "busybox:latest"),
        exited("test-experiment-1", "busybox:latest"),
        stray("old-experiment", "old-experiment:v1"),
    ];
    let images = vec![
        image(
            "a1",
            &["odoo:18.0-20260101"],
            OLD,
            &["odoo-staging", "odoo-erp-prod"],
        ),
        image("a2", &["odoo:17"], OLD, &["odoo-dev"]),
        image("a3", &["postgres:16-alpine"], OLD, &[]),
        image("a4", &["ipai-superset:stable-2.1"], OLD, &[]),
        image("a5", &["superset:prod-2.1"], OLD, &[]),
        image("a6", &["mcp/helper:latest"], RECENT, &[]),
        image("a7", &["mcp/busy:latest"], RECENT, &["mcp-coordinator"]),
        image("a8", &["old-experiment:v1"], OLD, &["old-experiment"]),
        image("a9", &["forgotten:v2"], OLD, &[]),
        image("b1", &["fresh:v1"], RECENT, &[]),
        image("b2", &[], RECENT, &[]),
        image("b3", &["tmp-build:1", "prod-build:1"], RECENT, &[]),
        image("b4", &["seen-lately:1"], ANCIENT, &[]),
    ];
    let volumes = vec![
        volume("odoo-staging-filestore", OLD, &["odoo-staging"]),
        volume("odoo-dev-db-data", ANCIENT, &[]),
        volume("prod-pgdata", ANCIENT, &[]),
        volume("tmp-scratch", RECENT, &[]),
        volume("tmp-busy", RECENT, &["tmp-debug-running"]),
        volume("old-volume-xyz", "2024-11-01T00:00:00Z", &[]),
        volume("recent-volume", RECENT, &[]),
    ];
    let networks = vec![
        network("bridge", &["odoo-dev"]),
        network("tmp-net", &[]),
        network("random-net", &[]),
    ];
    classify(
        m,
        NODE,
        Snapshot {
            containers: &containers,
            images: &images,
            volumes: &volumes,
            networks: &networks,
        },
        state,
        now(),
    )
}

fn seen_lately_state() -> InventoryState {
    let mut state = InventoryState::default();
    // `seen-lately:1` was created long ago but was in use three days ago.
    state.last_in_use.insert(
        format!("docker/{NODE}/image/sha256:b4"),
        ts("2025-01-02T12:00:00Z"),
    );
    state
}

#[test]
fn inventory_seed_names_each_land_in_their_class() {
    let m = seed_manifest();
    let audit = audit_with(&m, &seen_lately_state());
    let table: &[(Kind, &str, Class, &str)] = &[
        (
            Kind::Container,
            "odoo-staging",
            Class::Expected,
            "declared in the manifest",
        ),
        (
            Kind::Container,
            "odoo-dev",
            Class::Expected,
            "`inventory.allowed.containers` `odoo-dev*`",
        ),
        (
            Kind::Container,
            "odoo-erp-prod",
            Class::Protected,
            "`inventory.protected` `odoo-erp-prod`",
        ),
        (
            Kind::Container,
            "tmp-debug-running",
            Class::Extra,
            "but is running",
        ),
        (
            Kind::Container,
            "tmp-debug-container",
            Class::SafeToDelete,
            "`tmp-*` and is exited",
        ),
        (
            Kind::Container,
            "test-experiment-1",
            Class::SafeToDelete,
            "`test-*`",
        ),
        (
            Kind::Container,
            "old-experiment",
            Class::Extra,
            "declared nowhere",
        ),
        (
            Kind::Image,
            "odoo:18.0-20260101",
            Class::Expected,
            "declared in the manifest",
        ),
        (
            Kind::Image,
            "odoo:17",
            Class::Expected,
            "`inventory.allowed.images` `odoo:*`",
        ),
        (
            Kind::Image,
            "postgres:16-alpine",
            Class::Expected,
            "`postgres:16*`",
        ),
        (
            Kind::Image,
            "ipai-superset:stable-2.1",
            Class::Protected,
            "`ipai-*`",
        ),
        (
            Kind::Image,
            "superset:prod-2.1",
            Class::Protected,
            "protected_tags` `prod-*`",
        ),
        (
            Kind::Image,
            "mcp/helper:latest",
            Class::SafeToDelete,
            "`mcp/*`",
        ),
        (
            Kind::Image,
            "mcp/busy:latest",
            Class::Extra,
            "but is used by `mcp-coordinator`",
        ),
        (
            Kind::Image,
            "old-experiment:v1",
            Class::Extra,
            "used by `old-experiment` but declared nowhere",
        ),
        (
            Kind::Image,
            "forgotten:v2",
            Class::SafeToDelete,
            "unused for 30d (`inventory.cleanup.max_unused_image_age` is 14d)",
        ),
        (Kind::Image, "fresh:v1", Class::Extra, "declared nowhere"),
        (Kind::Image, "sha256:b2", Class::SafeToDelete, "dangling"),
        (Kind::Image, "tmp-build:1", Class::SafeToDelete, "`tmp-*`"),
        (Kind::Image, "prod-build:1", Class::Protected, "`prod-*`"),
        (
            Kind::Image,
            "seen-lately:1",
            Class::Extra,
            "declared nowhere",
        ),
        (
            Kind::Volume,
            "odoo-staging-filestore",
            Class::Expected,
            "declared in the manifest",
        ),
        (
            Kind::Volume,
            "odoo-dev-db-data",
            Class::Expected,
            "`odoo-dev-*`",
        ),
        (Kind::Volume, "prod-pgdata", Class::Protected, "`prod-*`"),
        (Kind::Volume, "tmp-scratch", Class::SafeToDelete, "`tmp-*`"),
        (
            Kind::Volume,
            "tmp-busy",
            Class::Extra,
            "but is used by `tmp-debug-running`",
        ),
        (
            Kind::Volume,
            "old-volume-xyz",
            Class::SafeToDelete,
            "unused for 65d (`inventory.cleanup.max_unused_volume_age` is 30d)",
        ),
        (
            Kind::Volume,
            "recent-volume",
            Class::Extra,
            "declared nowhere",
        ),
        (
            Kind::Network,
            "bridge",
            Class::Protected,
            "built-in network",
        ),
        (Kind::Network, "tmp-net", Class::SafeToDelete, "`tmp-*`"),
        (
            Kind::Network,
            "random-net",
            Class::Extra,
            "declared nowhere",
        ),
    ];
    for (kind, name, class, why) in table {
        let item = audit
            .items
            .iter()
            .find(|i| i.kind == *kind && i.name == *name)
            .unwrap_or_else(|| panic!("{kind} `{name}` was not classified"));
        assert_eq!(item.class, *class, "{kind} `{name}`: {}", item.reason);
        assert!(
            item.reason.contains(why),
            "{kind} `{name}`: reason `{}` lacks `{why}`",
            item.reason
        );
    }
    assert_eq!(audit.items.len(), table.len(), "every item is in the table");
}

#[test]
fn inventory_cleanup_set_is_exactly_the_safe_set_and_frees_whole_images_only() {
    let m = seed_manifest();
    let audit = audit_with(&m, &InventoryState::default());
    let set: Vec<String> = cleanup_set(&audit)
        .iter()
        .map(|i| format!("{}/{}", i.kind, i.name))
        .collect();
    let safe: Vec<String> = audit
        .items
        .iter()
        .filter(|i| i.class == Class::SafeToDelete)
        .map(|i| format!("{}/{}", i.kind, i.name))
        .collect();
    assert_eq!(set.len(), safe.len());
    assert!(set.iter().all(|s| safe.contains(s)));
    // Containers go first, so the images and volumes they held are free by then.
    assert!(set[0].starts_with("container/"), "{set:?}");
    // Without the state, `seen-lately:1` ages from its creation and goes too.
    assert!(set.contains(&"image/seen-lately:1".to_owned()), "{set:?}");
    // Nothing in use, protected or expected is in it.
    for i in cleanup_set(&audit) {
        assert!(i.used_by.is_empty(), "{} is in use", i.name);
    }
    // `tmp-build:1` shares its image with protected `prod-build:1`: untagging frees nothing.
    let tmp_build = audit
        .items
        .iter()
        .find(|i| i.name == "tmp-build:1")
        .expect("classified");
    assert_eq!(tmp_build.frees, 0);
    let helper = audit
        .items
        .iter()
        .find(|i| i.name == "mcp/helper:latest")
        .expect("classified");
    assert_eq!(helper.frees, 1000);
}

#[test]
fn inventory_read_only_node_cleans_up_nothing() {
    let mut m = seed_manifest();
    let mut n = node(NODE);
    n.mode = Some(Mode::ReadOnly);
    m.nodes = vec![n];
    let audit = audit_with(&m, &InventoryState::default());
    assert!(audit.items.iter().any(|i| i.class == Class::SafeToDelete));
    assert!(cleanup_set(&audit).is_empty());
}

#[test]
fn inventory_state_records_in_use_and_forgets_what_is_gone() {
    let mut state = InventoryState::default();
    state
        .last_in_use
        .insert(format!("docker/{NODE}/image/sha256:gone"), ts(OLD));
    state
        .last_in_use
        .insert("docker/other/image/sha256:gone".into(), ts(OLD));
    let images = vec![
        image("x", &["x:1"], OLD, &["c"]),
        image("y", &["y:1"], OLD, &[]),
    ];
    let volumes = vec![volume("v", OLD, &["c"])];
    state.record(NODE, &images, &volumes, now());
    assert_eq!(
        state.last_in_use(NODE, Kind::Image, "sha256:x"),
        Some(now())
    );
    assert_eq!(state.last_in_use(NODE, Kind::Image, "sha256:y"), None);
    assert_eq!(state.last_in_use(NODE, Kind::Volume, "v"), Some(now()));
    assert!(
        !state
            .last_in_use
            .contains_key(&format!("docker/{NODE}/image/sha256:gone"))
    );
    // Other nodes' entries are theirs.
    assert!(
        state
            .last_in_use
            .contains_key("docker/other/image/sha256:gone")
    );
    let json = serde_json::to_string(&state).expect("serializes");
    assert!(json.starts_with("{\"v\":1,"), "{json}");
}

#[test]
fn inventory_audit_record_has_seed_004_field_names_in_order() {
    let m = seed_manifest();
    let audit = audit_with(&m, &InventoryState::default());
    let mut n = node(NODE);
    n.hostname = Some("staging-droplet".into());
    n.docker = Some("tcp://178.128.112.214:2376".into());
    n.role = Some("staging".into());
    let line = AuditRecord::new(&audit, &n, ts("2026-01-16T05:53:32Z")).to_line();
    let seed = [
        "timestamp",
        "host",
        "ip",
        "env",
        "containers_expected",
        "containers_extra",
        "containers_protected",
        "containers_safe_delete",
        "images_expected",
        "images_extra",
        "images_protected",
        "images_safe_delete",
        "volumes_expected",
        "volumes_extra",
    ];
    let mut last = 0;
    for field in seed {
        let at = line
            .find(&format!("\"{field}\":"))
            .unwrap_or_else(|| panic!("`{field}` missing from {line}"));
        assert!(at >= last, "`{field}` out of seed order in {line}");
        last = at;
    }
    let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(v["timestamp"], "2026-01-16T05:53:32Z");
    assert_eq!(v["host"], "staging-droplet");
    assert_eq!(v["ip"], "178.128.112.214");
    assert_eq!(v["env"], "staging");
    assert_eq!(
        v["containers_protected"],
        serde_json::json!(["odoo-erp-prod"])
    );
    assert_eq!(
        v["containers_safe_delete"],
        serde_json::json!(["test-experiment-1", "tmp-debug-container"])
    );
}

fn load(yaml: &str) -> Result<refinery_core::Loaded, refinery_core::ManifestError> {
    let env = |_: &str| None;
    refinery_core::load_manifest(
        "refinery.yaml",
        yaml,
        &refinery_core::LoadOptions {
            env: &env,
            base_dir: None,
        },
    )
}

#[test]
fn inventory_manifest_bad_schedule_and_ages_are_errors_with_hints() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "inventory:\n  schedule: {cron: \"61 2 * * *\", timezone: UTC}\n",
            "inventory.schedule.cron",
            "`61 2 * * *` is not a cron expression",
            "`0 2 * * *`",
        ),
        (
            "inventory:\n  schedule: {cron: \"0 2 * * *\", timezone: Mars/Olympus}\n",
            "inventory.schedule.timezone",
            "`Mars/Olympus` is not a time zone",
            "`Asia/Singapore`",
        ),
        (
            "inventory:\n  cleanup: {max_unused_volume_age: 30 days}\n",
            "inventory.cleanup.max_unused_volume_age",
            "`30 days` is not a duration",
            "write `30d`",
        ),
        (
            "inventory:\n  safe_to_delete: [\"tmp-[*\"]\n",
            "inventory.safe_to_delete[0]",
            "is not a valid pattern",
            "",
        ),
    ];
    for (yaml, field, message, hint) in cases {
        let err = load(yaml).expect_err(yaml);
        let issue = err
            .issues()
            .iter()
            .find(|i| i.field == *field)
            .unwrap_or_else(|| panic!("no issue on `{field}` for {yaml}: {:?}", err.issues()));
        assert!(issue.message.contains(message), "{issue:?}");
        assert!(
            issue.hint.as_deref().unwrap_or_default().contains(hint),
            "{issue:?}"
        );
    }
}

#[test]
fn inventory_manifest_audit_log_and_seconds_cron_load() {
    let loaded = load(
        "allow_empty: true\ninventory:\n  audit_log: logs/docker_audit_log.jsonl\n  schedule: {cron: \"*/2 * * * * *\"}\n",
    )
    .expect("valid");
    let inv = &loaded.manifest.inventory;
    assert_eq!(
        inv.audit_log.as_deref(),
        Some("logs/docker_audit_log.jsonl")
    );
    assert_eq!(
        inv.schedule.as_ref().map(|s| s.timezone.as_str()),
        Some("UTC")
    );
}

#[test]
fn inventory_image_declared_by_digest_is_expected_even_untagged() {
    let mut m = seed_manifest();
    let mut pinned = spec("pinned");
    pinned.image = "docker.io/library/redis@sha256:abc".into();
    m.containers.push(pinned);
    let mut untagged = image("c1", &[], OLD, &[]);
    untagged.digests = vec!["redis@sha256:abc".into()];
    let mut tagged = image("c2", &["mcp/redis:7"], OLD, &[]);
    tagged.digests = vec!["redis@sha256:abc".into()];
    let images = vec![untagged, tagged];
    let audit = classify(
        &m,
        NODE,
        Snapshot {
            containers: &[],
            images: &images,
            volumes: &[],
            networks: &[],
        },
        &InventoryState::default(),
        now(),
    );
    assert!(
        audit.items.iter().all(|i| i.class == Class::Expected),
        "{:#?}",
        audit.items
    );
}
