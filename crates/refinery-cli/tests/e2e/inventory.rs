//! `refinery audit` and `refinery cleanup` on the real engine, with seed 004's names (odoo-dev*,
//! prod-*, ipai-*, tmp-*, mcp/*, test-*), each unique to the run and carrying its label: the
//! manifest's selector shows the audit this run's containers, images and volumes only, so tests
//! running in parallel never see (or delete) each other's.

use std::collections::BTreeMap;

use refinery_core::{ContainerRuntime, CreateRequest, Mount, MountKind};
use serde_json::Value;

use crate::common::{Env, IMAGE};

/// What one test puts on the engine, by role.
struct World {
    odoo_dev: String,
    prod_api: String,
    tmp_debug: String,
    test_runner: String,
    rogue: String,
    mcp_helper: String,
    tmp_build: String,
    prod_image: String,
    old_image: String,
    stable_image: String,
    inuse_image: String,
    odoo_image: String,
    vol_allowed: String,
    vol_prod: String,
    vol_scratch: String,
    vol_busy: String,
    vol_old: String,
}

impl World {
    fn names(env: &Env) -> World {
        let id = env.run.id();
        World {
            odoo_dev: format!("odoo-dev-{id}"),
            prod_api: format!("prod-{id}-api"),
            tmp_debug: format!("tmp-{id}-debug"),
            test_runner: format!("test-{id}-runner"),
            rogue: format!("rogue-{id}"),
            mcp_helper: format!("mcp/{id}-helper:1"),
            tmp_build: format!("tmp-{id}-build:1"),
            prod_image: format!("prod-{id}-api:1"),
            old_image: format!("old-{id}:1"),
            stable_image: format!("superset-{id}:stable-2"),
            inuse_image: format!("test-{id}-inuse:1"),
            odoo_image: format!("odoo:{id}"),
            vol_allowed: format!("odoo-dev-{id}-data"),
            vol_prod: format!("prod-{id}-pgdata"),
            vol_scratch: format!("tmp-{id}-scratch"),
            vol_busy: format!("tmp-{id}-busy"),
            vol_old: format!("old-volume-{id}"),
        }
    }

    /// Builds the images, volumes and containers.
    async fn make(env: &Env) -> World {
        let w = World::names(env);
        let (rt, run) = (&env.rt, &env.run);
        let helper = run.labelled_image(rt, &w.mcp_helper).await.expect("build");
        run.tag(rt, &helper, &w.tmp_build).await.expect("tag");
        let prod = run.labelled_image(rt, &w.prod_image).await.expect("build");
        run.tag(rt, &prod, &w.old_image).await.expect("tag");
        run.labelled_image(rt, &w.stable_image)
            .await
            .expect("build");
        let inuse = run.labelled_image(rt, &w.inuse_image).await.expect("build");
        run.tag(rt, &inuse, &w.odoo_image).await.expect("tag");
        for v in [
            &w.vol_allowed,
            &w.vol_prod,
            &w.vol_scratch,
            &w.vol_busy,
            &w.vol_old,
        ] {
            run.create_volume(rt, v, &BTreeMap::new())
                .await
                .expect("create volume");
        }
        let start = |name: &str, image: &str, mounts: Vec<Mount>, run_it: bool| {
            let mut spec = env.spec("x");
            spec.name = name.to_owned();
            spec.image = image.to_owned();
            spec.mounts = mounts;
            let req = CreateRequest {
                name: name.to_owned(),
                spec,
                labels: env.run.labels(),
            };
            async move {
                let id = env.rt.create(&req).await.expect("create container");
                if run_it {
                    env.rt.start(&id).await.expect("start container");
                }
            }
        };
        start(&w.odoo_dev, IMAGE, Vec::new(), true).await;
        start(&w.prod_api, IMAGE, Vec::new(), true).await;
        start(&w.tmp_debug, IMAGE, Vec::new(), false).await;
        let busy = Mount {
            kind: MountKind::Volume,
            source: w.vol_busy.clone(),
            target: "/data".into(),
            read_only: false,
        };
        start(&w.test_runner, &w.inuse_image, vec![busy], true).await;
        start(&w.rogue, IMAGE, Vec::new(), true).await;
        w
    }

    fn manifest(env: &Env) -> String {
        format!(
            "containers:\n  - name: {}\n    image: {IMAGE}\n    node: local\n\
             inventory:\n\
             \x20 allowed: {{containers: [\"odoo-dev*\"], images: [\"odoo:*\"], volumes: [\"odoo-dev-*\"]}}\n\
             \x20 protected: [\"prod-*\", \"stable-*\", \"ipai-*\"]\n\
             \x20 safe_to_delete: [\"test-*\", \"tmp-*\", \"mcp/*\"]\n\
             \x20 cleanup: {{max_unused_image_age: 14d, max_unused_volume_age: 30d, protected_tags: [\"stable-*\"]}}\n",
            env.name("web")
        )
    }

    /// Every (kind, name) → class the table says.
    fn expected_classes(&self) -> Vec<(&'static str, &str, &'static str)> {
        vec![
            ("container", &self.odoo_dev, "expected"),
            ("container", &self.prod_api, "protected"),
            ("container", &self.tmp_debug, "safe_to_delete"),
            ("container", &self.test_runner, "extra"),
            ("container", &self.rogue, "extra"),
            ("image", &self.mcp_helper, "safe_to_delete"),
            ("image", &self.tmp_build, "safe_to_delete"),
            ("image", &self.prod_image, "protected"),
            ("image", &self.old_image, "extra"),
            ("image", &self.stable_image, "protected"),
            ("image", &self.inuse_image, "extra"),
            ("image", &self.odoo_image, "expected"),
            ("volume", &self.vol_allowed, "expected"),
            ("volume", &self.vol_prod, "protected"),
            ("volume", &self.vol_scratch, "safe_to_delete"),
            ("volume", &self.vol_busy, "extra"),
            ("volume", &self.vol_old, "extra"),
        ]
    }
}

fn class_of<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a str {
    items
        .iter()
        .find(|i| i["kind"] == kind && i["name"] == name)
        .and_then(|i| i["class"].as_str())
        .unwrap_or_else(|| panic!("{kind} `{name}` missing from {items:#?}"))
}

/// Tags of this run's images, names of its volumes, names of its containers.
async fn present(env: &Env) -> (Vec<String>, Vec<String>, Vec<String>) {
    let sel = env.run.selector();
    let images = env.rt.list_images(Some(&sel)).await.expect("list images");
    let volumes = env.rt.list_volumes(Some(&sel)).await.expect("list volumes");
    let observed = env.rt.observe(Some(&sel)).await.expect("observe");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    (
        sorted(images.into_iter().flat_map(|i| i.tags).collect()),
        sorted(volumes.into_iter().map(|v| v.name).collect()),
        sorted(observed.containers.into_iter().map(|c| c.name).collect()),
    )
}

#[tokio::test]
async fn audit_classifies_seed_names_and_logs_seed_schema_without_writing() {
    let env = Env::new().await;
    env.commit_manifest(&World::manifest(&env));
    let w = World::make(&env).await;
    let before = present(&env).await;

    let run = env.refinery(&["audit", "--json"]).await;
    run.code(3);
    let report = run.json();
    let items = report["nodes"][0]["items"]
        .as_array()
        .expect("items")
        .clone();
    for (kind, name, class) in w.expected_classes() {
        assert_eq!(class_of(&items, kind, name), class, "{kind} `{name}`");
    }
    assert_eq!(
        items.len(),
        w.expected_classes().len(),
        "the selector shows this run's resources only: {items:#?}"
    );
    // The helper image's two tags are both safe: its bytes count once.
    assert!(report["nodes"][0]["reclaimable_bytes"].as_u64() > Some(0));

    // One seed-004 line appended per audit.
    let log = env.repo.path().join("ledger/inventory_audit.jsonl");
    let text = std::fs::read_to_string(&log).expect("audit log written");
    assert_eq!(text.lines().count(), 1);
    let line: Value = serde_json::from_str(text.lines().next().unwrap_or("")).expect("JSON line");
    for field in [
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
    ] {
        assert!(line.get(field).is_some(), "`{field}` missing: {line}");
    }
    assert_eq!(
        line["containers_safe_delete"],
        serde_json::json!([w.tmp_debug])
    );
    assert_eq!(
        line["containers_protected"],
        serde_json::json!([w.prod_api])
    );

    // The table form, and a second record.
    env.refinery(&["audit"])
        .await
        .code(3)
        .row(&["local", "container", &w.tmp_debug, "safe_to_delete"])
        .row(&["local", "images", "1", "2", "2", "2", "2.0 MB"])
        .stderr_has("1 record appended");
    let text = std::fs::read_to_string(&log).expect("audit log");
    assert_eq!(text.lines().count(), 2);

    // The state file remembers what was in use.
    let state = env.repo.path().join(".git/refinery/inventory-state.json");
    let state = std::fs::read_to_string(state).expect("inventory state written");
    assert!(
        state.contains("/volume/") && state.contains(&w.vol_busy),
        "{state}"
    );

    assert_eq!(
        present(&env).await,
        before,
        "audit never writes to the engine"
    );
}

#[tokio::test]
async fn cleanup_dry_run_lists_and_apply_removes_exactly_the_safe_set() {
    let env = Env::new().await;
    env.commit_manifest(&World::manifest(&env));
    let w = World::make(&env).await;
    let before = present(&env).await;

    let dry = env.refinery(&["cleanup"]).await;
    dry.code(0)
        .row(&[&format!("docker/local/container/{}", w.tmp_debug)])
        .row(&[&format!("docker/local/image/{}", w.mcp_helper)])
        .row(&[&format!("docker/local/volume/{}", w.vol_scratch)])
        .stderr_has("dry run");
    assert_eq!(dry.stdout.lines().count(), 1 + 4, "{}", dry.transcript());
    assert_eq!(present(&env).await, before, "a dry run removes nothing");

    env.refinery(&["cleanup", "--apply"])
        .await
        .code(2)
        .stderr_has("--yes");
    assert_eq!(present(&env).await, before);

    let applied = env.refinery(&["cleanup", "--apply", "--yes"]).await;
    applied
        .code(0)
        .stdout_has(&format!("docker/local/container/{} removed", w.tmp_debug))
        .stdout_has(&format!("docker/local/image/{} removed", w.mcp_helper))
        .stdout_has(&format!("docker/local/image/{} removed", w.tmp_build))
        .stdout_has(&format!("docker/local/volume/{} removed", w.vol_scratch));

    let (images, volumes, containers) = present(&env).await;
    let gone = [&w.tmp_debug, &w.mcp_helper, &w.tmp_build, &w.vol_scratch];
    for (kind, name, class) in w.expected_classes() {
        let here = match kind {
            "container" => containers.iter().any(|c| c == name),
            "image" => images.iter().any(|i| i == name),
            _ => volumes.iter().any(|v| v == name),
        };
        if gone.iter().any(|g| g.as_str() == name) {
            assert!(!here, "{kind} `{name}` ({class}) should be gone");
        } else {
            assert!(here, "{kind} `{name}` ({class}) must stay");
        }
    }

    // Each removal is a `death` entry of step `cleanup` in the ledger, and the chain holds.
    let ledger = std::fs::read_to_string(env.repo.path().join("ledger/container_ledger.jsonl"))
        .expect("ledger written");
    let deaths: Vec<Value> = ledger
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"]["kind"] == "death" || e["kind"] == "death")
        .collect();
    assert_eq!(deaths.len(), 4, "{ledger}");
    assert!(ledger.contains("\"step\":\"cleanup\""), "{ledger}");
    assert!(
        ledger.contains(&format!("docker/local/volume/{}", w.vol_scratch)),
        "{ledger}"
    );
    env.refinery(&["ledger", "verify"]).await.code(0);

    // Nothing is left to clean up.
    env.refinery(&["cleanup"])
        .await
        .code(0)
        .stderr_has("nothing is safe to delete");
}

#[tokio::test]
async fn cleanup_on_a_read_only_node_removes_nothing() {
    let env = Env::new().await;
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{}\", mode: read-only}}\n{}",
            env.selector(),
            World::manifest(&env)
        ),
    );
    let w = World::make(&env).await;
    let before = present(&env).await;

    let run = env.refinery(&["cleanup", "--apply", "--yes"]).await;
    run.code(0)
        .stderr_has("node `local` is read-only: nothing on it is removed")
        .stderr_has("nothing is safe to delete");
    assert_eq!(present(&env).await, before);
    // The audit still classifies: read-only changes what is done, not what is seen.
    let report = env.refinery(&["audit", "--json"]).await.json();
    let items = report["nodes"][0]["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(
        class_of(&items, "container", &w.tmp_debug),
        "safe_to_delete"
    );
    assert_eq!(report["nodes"][0]["mode"], "read-only");
}

#[tokio::test]
async fn audit_of_an_unreachable_node_reports_it_and_still_audits_the_others() {
    let env = Env::new().await;
    let w = World::names(&env);
    env.run
        .create_volume(&env.rt, &w.vol_scratch, &BTreeMap::new())
        .await
        .expect("create volume");
    env.commit_manifest(&format!(
        "nodes:\n  - name: local\n  - name: gone\n    docker: unix:///nonexistent/{}.sock\n{}",
        env.run.id(),
        World::manifest(&env)
    ));
    let run = env.refinery(&["audit"]).await;
    run.code(4)
        .stderr_has("failed to reach node `gone`")
        .stderr_has("hint:")
        .row(&["local", "volume", &w.vol_scratch, "safe_to_delete"])
        .row(&["gone", "-", "-", "-", "-", "-", "unreachable"]);
    let log = std::fs::read_to_string(env.repo.path().join("ledger/inventory_audit.jsonl"))
        .expect("audit log");
    assert_eq!(
        log.lines().count(),
        1,
        "one line, for the node that answered"
    );
}

/// An image a daemon keeps to put an image update on trial back (named in its state file, in
/// the state directory `audit` and `cleanup` share with it) is protected, whatever its name:
/// `audit` says why, and `cleanup --apply` removes the other safe-to-delete image and leaves it.
#[tokio::test]
async fn cleanup_keeps_the_image_an_image_update_on_trial_needs() {
    let env = Env::new().await;
    let id = env.run.id().to_owned();
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    node: local\ninventory:\n  safe_to_delete: [\"tmp-*\"]\n",
        env.name("web")
    ));
    let (kept, gone) = (format!("tmp-{id}-kept:1"), format!("tmp-{id}-gone:1"));
    let kept_id = env.run.labelled_image(&env.rt, &kept).await.expect("build");
    let gone_id = env.run.labelled_image(&env.rt, &gone).await.expect("build");
    assert_ne!(kept_id, gone_id, "two images");

    let state_dir = tempfile::tempdir().expect("temp dir");
    let mut state = refinery_core::daemon_state::DaemonState::default();
    state.image_updates.trials.insert(
        "docker/local/container/web".into(),
        refinery_core::image_trials::UpdateTrial {
            reference: "127.0.0.1:5000/app:stable".into(),
            from_digest: "sha256:0000000000000000000000000000000000000000000000000000000000000001"
                .into(),
            from_image: kept_id.clone(),
            to_digest: "sha256:0000000000000000000000000000000000000000000000000000000000000002"
                .into(),
            since: jiff::Timestamp::now(),
        },
    );
    refinery_store::state_file::save(
        &refinery_store::state_file::path_in(state_dir.path()),
        &state,
    )
    .expect("write the daemon's state file");
    let dir = state_dir.path().to_string_lossy().into_owned();

    let audit = env
        .refinery(&["audit", "--json", "--state-dir", &dir])
        .await;
    audit.code(0);
    let items = audit.json()["nodes"][0]["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(
        class_of(&items, "image", &kept),
        "protected",
        "{}",
        audit.transcript()
    );
    assert_eq!(class_of(&items, "image", &gone), "safe_to_delete");
    let why = items
        .iter()
        .find(|i| i["name"] == kept.as_str())
        .map(|i| i["reason"].to_string());
    assert!(
        why.as_deref()
            .is_some_and(|r| r.contains("kept for the rollback of an image update on trial")),
        "{why:?}"
    );

    env.refinery(&["cleanup", "--apply", "--yes", "--state-dir", &dir])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/image/{gone} removed"));
    let (images, _, _) = present(&env).await;
    assert!(images.contains(&kept), "kept: {images:?}");
    assert!(!images.contains(&gone), "removed: {images:?}");
}
