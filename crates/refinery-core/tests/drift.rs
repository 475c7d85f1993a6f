//! Diff details on built states: normalization of what the image supplies, masking, ignoring.

use std::collections::BTreeMap;

use refinery_core::drift::{DiffContext, DriftKind, DriftReport, diff_node, field_ignored};
use refinery_core::testing::{self, image_info, observed_from_spec, observed_node, spec};
use refinery_core::{
    ContainerSpec, ContainerState, Healthcheck, ImageDefaults, Mount, MountKind, Observed,
    PortBinding, Protocol, Secret,
};

fn ctx() -> DiffContext {
    DiffContext {
        node: testing::NODE.into(),
        ..DiffContext::default()
    }
}

fn diff(s: &ContainerSpec, o: &Observed) -> DriftReport {
    diff_node(&[s], o, &ctx())
}

/// `(kind, field, ignored)` of every change, plus `(kind, "", false)` for drifts without changes.
fn fields(r: &DriftReport) -> Vec<(DriftKind, String, bool)> {
    let mut out = Vec::new();
    for d in &r.drifts {
        if d.changes.is_empty() {
            out.push((d.kind, String::new(), false));
        }
        for c in &d.changes {
            out.push((d.kind, c.field.clone(), c.ignored));
        }
    }
    out
}

fn cfg(field: &str) -> (DriftKind, String, bool) {
    (DriftKind::Config, field.to_owned(), false)
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

fn hc(test: &[&str], interval_ms: u64, retries: u32) -> Healthcheck {
    Healthcheck {
        test: words(test),
        interval_ms,
        retries,
        ..Healthcheck::default()
    }
}

fn image() -> ImageDefaults {
    ImageDefaults {
        env: BTreeMap::from([
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]),
        command: Some(words(&["serve", "--port", "80"])),
        entrypoint: Some(words(&["/entrypoint.sh"])),
        labels: BTreeMap::from([("org.opencontainers.image.version".into(), "1.36".into())]),
        healthcheck: Some(hc(&["CMD", "true"], 30_000, 5)),
        exposed_ports: vec!["80/tcp".into()],
        volumes: vec!["/data".into()],
    }
}

fn in_sync(s: &ContainerSpec, img: &ImageDefaults) -> DriftReport {
    diff(s, &observed_node(&[s], img))
}

#[test]
fn drift_created_from_spec_with_image_defaults_is_in_sync() {
    let s = spec("web");
    let r = in_sync(&s, &image());
    assert!(r.drifts.is_empty(), "{:?}", fields(&r));
    assert_eq!(r.in_sync.len(), 1);
}

#[test]
fn drift_empty_entrypoint_keeps_image_command() {
    // `entrypoint: ""` clears the image's entrypoint; with no command Docker keeps the image's
    // command (its merge only drops it for a non-empty entrypoint).
    let s = ContainerSpec {
        entrypoint: Some(Vec::new()),
        ..spec("web")
    };
    let o = observed_node(&[&s], &image());
    assert_eq!(o.containers[0].command, image().command);
    assert_eq!(o.containers[0].entrypoint, None);
    assert!(
        diff(&s, &o).drifts.is_empty(),
        "{:?}",
        fields(&diff(&s, &o))
    );
}

#[test]
fn drift_empty_command_keeps_image_command() {
    let s = ContainerSpec {
        command: Some(Vec::new()),
        ..spec("web")
    };
    let r = in_sync(&s, &image());
    assert!(r.drifts.is_empty(), "{:?}", fields(&r));
}

#[test]
fn drift_entrypoint_without_command_drops_image_command() {
    let s = ContainerSpec {
        entrypoint: Some(words(&["/bin/sh", "-c"])),
        ..spec("web")
    };
    let o = observed_node(&[&s], &image());
    assert_eq!(o.containers[0].command, None);
    assert!(diff(&s, &o).drifts.is_empty());
    // A container still running the image's command under the new entrypoint is drift.
    let mut o = o;
    o.containers[0].command = image().command;
    assert_eq!(fields(&diff(&s, &o)), [cfg("command")]);
}

#[test]
fn drift_entrypoint_changed_is_config_drift() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    o.containers[0].entrypoint = Some(words(&["/bin/sh"]));
    assert_eq!(fields(&diff(&s, &o)), [cfg("entrypoint")]);
}

#[test]
fn drift_healthcheck_unset_fields_inherit_from_image() {
    // Docker fills a container healthcheck's zero fields from the image's.
    let s = ContainerSpec {
        healthcheck: Some(hc(&["CMD", "wget", "-q", "localhost"], 0, 0)),
        ..spec("web")
    };
    let o = observed_node(&[&s], &image());
    assert_eq!(
        o.containers[0].healthcheck,
        Some(hc(&["CMD", "wget", "-q", "localhost"], 30_000, 5))
    );
    let r = diff(&s, &o);
    assert!(r.drifts.is_empty(), "{:?}", fields(&r));
}

#[test]
fn drift_healthcheck_declared_interval_differs_is_drift() {
    let s = ContainerSpec {
        healthcheck: Some(hc(&["CMD", "true"], 10_000, 0)),
        ..spec("web")
    };
    let mut o = observed_node(&[&s], &image());
    o.containers[0].healthcheck = Some(hc(&["CMD", "true"], 30_000, 5));
    assert_eq!(fields(&diff(&s, &o)), [cfg("healthcheck")]);
}

#[test]
fn drift_healthcheck_disabled_matches_none() {
    let s = ContainerSpec {
        healthcheck: Some(hc(&["NONE"], 0, 0)),
        ..spec("web")
    };
    assert!(in_sync(&s, &image()).drifts.is_empty());
    assert!(in_sync(&s, &ImageDefaults::default()).drifts.is_empty());
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0].healthcheck = None;
    assert!(diff(&s, &o).drifts.is_empty());
}

#[test]
fn drift_image_env_removed_is_drift() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    o.containers[0].env.remove("LANG");
    let r = diff(&s, &o);
    assert_eq!(fields(&r), [cfg("env.LANG")]);
    assert_eq!(r.drifts[0].changes[0].desired, "C.UTF-8");
    assert_eq!(r.drifts[0].changes[0].observed, "(unset)");
}

#[test]
fn drift_declared_env_overrides_image_env() {
    let mut s = spec("web");
    s.env
        .insert("LANG".into(), Secret::for_name("LANG", "de_DE.UTF-8"));
    let mut o = observed_node(&[&s], &image());
    assert_eq!(o.containers[0].env["LANG"], "de_DE.UTF-8");
    assert!(diff(&s, &o).drifts.is_empty());
    o.containers[0].env.insert("LANG".into(), "C.UTF-8".into());
    assert_eq!(fields(&diff(&s, &o)), [cfg("env.LANG")]);
}

#[test]
fn drift_sensitive_value_is_masked_whatever_its_name() {
    // A value decrypted from SOPS is sensitive although `DSN` does not look secret.
    let mut s = spec("web");
    s.env.insert(
        "DSN".into(),
        Secret::new("postgres://u:hunter2@db/app", true),
    );
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0]
        .env
        .insert("DSN".into(), "postgres://u:hunter3@db/app".into());
    let r = diff(&s, &o);
    let c = &r.drifts[0].changes[0];
    assert_eq!(
        (c.desired.as_str(), c.observed.as_str()),
        ("*** (after)", "*** (before)")
    );
    // Set on one side only: the other side shows as unset.
    o.containers[0].env.remove("DSN");
    let c = &diff(&s, &o).drifts[0].changes[0];
    assert_eq!(
        (c.desired.as_str(), c.observed.as_str()),
        ("*** (after)", "(unset)")
    );
}

#[test]
fn drift_extra_secret_looking_env_is_masked() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0].env.insert("API_TOKEN".into(), "abc".into());
    let c = &diff(&s, &o).drifts[0].changes[0];
    assert_eq!(
        (c.desired.as_str(), c.observed.as_str()),
        ("(unset)", "*** (before)")
    );
}

#[test]
fn drift_duplicate_declared_ports_match_engine_set() {
    // `ports: ["80", "80"]` declares two "any host port" bindings the engine reports once.
    let any80 = PortBinding {
        host_ip: String::new(),
        host_port: None,
        container_port: 80,
        protocol: Protocol::Tcp,
    };
    let s = ContainerSpec {
        ports: vec![any80.clone(), any80],
        ..spec("web")
    };
    let r = in_sync(&s, &ImageDefaults::default());
    assert!(r.drifts.is_empty(), "{:?}", fields(&r));
}

#[test]
fn drift_port_order_does_not_matter() {
    let p = |h: u16, c: u16| PortBinding {
        host_ip: String::new(),
        host_port: Some(h),
        container_port: c,
        protocol: Protocol::Tcp,
    };
    let s = ContainerSpec {
        ports: vec![p(9090, 90), p(8080, 80)],
        ..spec("web")
    };
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0].ports = vec![p(8080, 80), p(9090, 90)];
    assert!(diff(&s, &o).drifts.is_empty());
}

#[test]
fn drift_image_volume_not_declared_is_not_drift_but_an_extra_mount_is() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    assert_eq!(o.containers[0].mounts.len(), 1, "the image's VOLUME");
    assert!(diff(&s, &o).drifts.is_empty());
    o.containers[0].mounts.push(Mount {
        kind: MountKind::Anonymous,
        source: String::new(),
        target: "/scratch".into(),
        read_only: false,
    });
    assert_eq!(fields(&diff(&s, &o)), [cfg("volumes")]);
}

#[test]
fn drift_declared_volume_over_image_volume_is_compared() {
    let s = ContainerSpec {
        mounts: vec![Mount {
            kind: MountKind::Volume,
            source: "web-data".into(),
            target: "/data".into(),
            read_only: false,
        }],
        ..spec("web")
    };
    let mut o = observed_node(&[&s], &image());
    assert!(diff(&s, &o).drifts.is_empty());
    o.containers[0].mounts[0].kind = MountKind::Anonymous;
    o.containers[0].mounts[0].source.clear();
    assert_eq!(fields(&diff(&s, &o)), [cfg("volumes")]);
}

#[test]
fn drift_reserved_and_selector_labels_are_not_drift() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    o.containers[0]
        .labels
        .insert("com.docker.compose.project".into(), "x".into());
    o.containers[0]
        .labels
        .insert("io.refinery.spec-hash".into(), "stale".into());
    o.containers[0]
        .labels
        .insert("managed-by".into(), "refinery".into());
    let c = DiffContext {
        ignore_label_keys: vec!["managed-by".into()],
        ..ctx()
    };
    assert!(diff_node(&[&s], &o, &c).drifts.is_empty());
    assert_eq!(fields(&diff(&s, &o)), [cfg("labels.managed-by")]);
}

#[test]
fn drift_image_label_changed_is_drift() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    o.containers[0]
        .labels
        .insert("org.opencontainers.image.version".into(), "1.35".into());
    assert_eq!(
        fields(&diff(&s, &o)),
        [cfg("labels.org.opencontainers.image.version")]
    );
}

#[test]
fn drift_image_not_local_compares_references() {
    let s = ContainerSpec {
        image: "busybox".into(),
        ..spec("web")
    };
    let mut o = Observed {
        containers: vec![observed_from_spec(&s, &ImageDefaults::default())],
        ..Observed::default()
    };
    o.containers[0].image = "docker.io/library/busybox:latest".into();
    assert!(
        diff(&s, &o).drifts.is_empty(),
        "same reference, spelled differently"
    );
    o.containers[0].image = "busybox:1.35".into();
    let r = diff(&s, &o);
    assert_eq!(fields(&r), [(DriftKind::Image, "image".into(), false)]);
    assert!(
        r.drifts[0].changes[0]
            .desired
            .ends_with("(not present locally)")
    );
}

#[test]
fn drift_retagged_image_is_drift() {
    // `busybox:1.36` now names another image than the one the container runs.
    let s = spec("web");
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.images.insert(
        "busybox:1.36".into(),
        image_info("busybox:1.36-rebuilt", &ImageDefaults::default()),
    );
    assert_eq!(
        fields(&diff(&s, &o)),
        [(DriftKind::Image, "image".into(), false)]
    );
}

#[test]
fn drift_global_ignore_covers_image_config_and_status() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0].image_id = testing::image_id("busybox:1.35");
    o.containers[0].restart = refinery_core::RestartPolicy::Always;
    o.containers[0].state = ContainerState::Exited;
    let c = DiffContext {
        ignore: words(&["image", "restart", "status"]),
        ..ctx()
    };
    let r = diff_node(&[&s], &o, &c);
    assert!(
        r.drifts.iter().all(|d| d.changes.iter().all(|c| c.ignored)),
        "{:?}",
        fields(&r)
    );
    assert_eq!(r.in_sync.len(), 1);
}

#[test]
fn drift_container_ignore_covers_status() {
    let s = ContainerSpec {
        ignore_differences: words(&["status"]),
        ..spec("web")
    };
    let mut o = observed_node(&[&s], &ImageDefaults::default());
    o.containers[0].state = ContainerState::Paused;
    assert_eq!(
        fields(&diff(&s, &o)),
        [(DriftKind::Status, "status".into(), true)]
    );
}

#[test]
fn field_ignored_matches_exact_prefix_and_glob() {
    let p = words(&[
        "env.BUILD_ID",
        "labels.com.example.*",
        "volumes",
        "env.CACHE_*",
    ]);
    for (field, ignored) in [
        ("env.BUILD_ID", true),
        ("env.BUILD_IDX", false),
        ("labels.com.example.build", true),
        ("labels.com.example", false),
        ("labels.com.examples.x", false),
        ("volumes", true),
        ("env.CACHE_DIR", true),
        ("env.LOG_LEVEL", false),
    ] {
        assert_eq!(field_ignored(field, &p), ignored, "{field}");
    }
    assert!(field_ignored("env.ANYTHING", &words(&["env"])));
    assert!(!field_ignored("environment", &words(&["env"])));
}

#[test]
fn drift_missing_and_unauthorized_carry_no_changes() {
    let web = spec("web");
    let o = Observed {
        containers: vec![testing::stray("adminer", "adminer:4")],
        ..Observed::default()
    };
    let r = diff(&web, &o);
    assert_eq!(
        fields(&r),
        [
            (DriftKind::Missing, String::new(), false),
            (DriftKind::Unauthorized, String::new(), false)
        ]
    );
    assert!(r.in_sync.is_empty());
    assert_eq!(
        r.drifts[1].container_id,
        Some(testing::container_id("adminer"))
    );
}

#[test]
fn drift_privileged_or_extra_capabilities_never_declared_is_config_drift() {
    let s = spec("web");
    let mut o = observed_node(&[&s], &image());
    assert!(diff(&s, &o).drifts.is_empty());
    o.containers[0].options.privileged = true;
    o.containers[0].options.cap_add = vec!["CAP_SYS_ADMIN".into()];
    assert_eq!(fields(&diff(&s, &o)), [cfg("privileged"), cfg("cap_add")]);
}

#[test]
fn drift_capabilities_compare_whatever_their_spelling() {
    let mut s = spec("web");
    s.options.cap_add = vec!["net_admin".into()];
    s.options.cap_drop = vec!["ALL".into()];
    let mut o = observed_node(&[&s], &image());
    o.containers[0].options.cap_add = vec!["CAP_NET_ADMIN".into()];
    assert!(
        diff(&s, &o).drifts.is_empty(),
        "{:?}",
        fields(&diff(&s, &o))
    );
    o.containers[0].options.cap_drop.clear();
    let r = diff(&s, &o);
    assert_eq!(fields(&r), [cfg("cap_drop")]);
    assert_eq!(r.drifts[0].changes[0].desired, "ALL");
    assert_eq!(r.drifts[0].changes[0].observed, "(none)");
}

#[test]
fn drift_engine_given_settings_are_compared_only_when_declared() {
    let mut s = spec("web");
    let mut o = observed_node(&[&s], &image());
    // The engine's own values (a hostname, its log driver, a stop signal from the image).
    o.containers[0].options.hostname = Some("3f2a9c1d0b7e".into());
    o.containers[0].options.stop_signal = Some("SIGQUIT".into());
    o.containers[0].options.logging = Some(refinery_core::spec::Logging {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-file".into(), "3".into())]),
    });
    assert!(
        diff(&s, &o).drifts.is_empty(),
        "{:?}",
        fields(&diff(&s, &o))
    );

    s.options.hostname = Some("web".into());
    s.options.stop_signal = Some("quit".into());
    s.options.logging = Some(refinery_core::spec::Logging {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-size".into(), "10m".into())]),
    });
    s.options.stop_timeout_secs = Some(30);
    assert_eq!(
        fields(&diff(&s, &o)),
        [cfg("hostname"), cfg("stop_grace_period"), cfg("logging")],
        "`quit` is `SIGQUIT`; the daemon's extra log option is not drift"
    );
}

#[test]
fn drift_privileged_container_engine_label_disable_is_not_drift() {
    let mut s = spec("web");
    s.options.privileged = true;
    let mut o = observed_node(&[&s], &image());
    o.containers[0].options.security_opt = vec!["label=disable".into()];
    assert!(
        diff(&s, &o).drifts.is_empty(),
        "{:?}",
        fields(&diff(&s, &o))
    );
    o.containers[0].options.privileged = false;
    assert_eq!(
        fields(&diff(&s, &o)),
        [cfg("security_opt"), cfg("privileged")]
    );
}
