//! Table tests over `tests/fixtures/manifest/`: every `valid-*` file loads (and its values are
//! spot-checked against DESIGN.md's defaults), every `invalid-*` file reports exactly the problems
//! its name promises, at the right line, column and field. The rendered problem lists are insta
//! snapshots (`tests/snapshots/`) so their wording can be reviewed.

use std::collections::BTreeMap;

use refinery_core::manifest::{
    ChannelKind, Config, LedgerConfig, Level, NodeSpec, Rule, Schedule, TlsFiles, WindowDay,
};
use refinery_core::policy::Action;
use refinery_core::{
    Healthcheck, Issue, LoadOptions, Loaded, ManifestError, Mode, Mount, MountKind, PortBinding,
    Protocol, RestartPolicy, load_manifest,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifest");

/// The environment fixtures see: only `HOME`; every variable a fixture names is unset.
fn env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/root".to_owned())
}

/// The environment with the variables DESIGN.md's reference example uses.
fn env_with_secrets(name: &str) -> Option<String> {
    match name {
        "DISCORD_WEBHOOK" => Some("https://discord.example/api/webhooks/1/abc".into()),
        "SOPS_AGE_KEY_FILE" => Some("/etc/refinery/age.txt".into()),
        other => env(other),
    }
}

fn source(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn load_with(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ManifestError> {
    let opts = LoadOptions {
        env,
        base_dir: Some("/repo".into()),
    };
    load_manifest(name, &source(name), &opts)
}

fn load_ok_with(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    match load_with(name, env) {
        Ok(l) => l,
        Err(e) => panic!("{name} should load:\n{}", render(&e)),
    }
}

fn load_ok(name: &str) -> Loaded {
    load_ok_with(name, &env)
}

/// The problem list as the CLI prints it.
fn render(e: &ManifestError) -> String {
    let mut out = format!("error: {e}\n");
    for i in e.issues() {
        out.push_str(&render_issue(i));
    }
    out
}

fn render_issue(i: &Issue) -> String {
    let mut out = format!("{i}\n");
    if let Some(h) = &i.hint {
        out.push_str(&format!("  hint: {h}\n"));
    }
    out
}

fn fixture_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// valid fixtures

/// Every valid fixture, with the fields of the warnings it must produce (unset variables, the
/// implicit node taking a referenced name) under [`env`].
const VALID: &[(&str, &[&str])] = &[
    ("valid-alert-channels.yaml", &[]),
    (
        "valid-alert-channels-more.yaml",
        &[
            "alerting.channels[0].token",
            "alerting.channels[1].token",
            "alerting.channels[2].bot_token",
            "alerting.channels[3].bot_token",
            "alerting.channels[4].webhook_url",
            "alerting.channels[5].urls[0]",
            "alerting.channels[5].urls[0]",
            "alerting.channels[6].password",
        ],
    ),
    ("valid-anchors-and-merge-keys.yaml", &[]),
    ("valid-allow-empty.yaml", &[]),
    ("valid-env-list.yaml", &[]),
    (
        "valid-full-reference.yaml",
        &[
            "nodes[0].docker",
            "alerting.channels[0].webhook_url",
            "secrets.sops_age_key_file",
        ],
    ),
    ("valid-healthcheck-forms.yaml", &[]),
    ("valid-ledger-max-size.yaml", &[]),
    (
        "valid-interpolation.yaml",
        &["config.discord_webhook", "containers[0].env.MISSING"],
    ),
    ("valid-minimal.yaml", &[]),
    ("valid-multi-node.yaml", &[]),
    ("valid-ports-forms.yaml", &[]),
    ("valid-seed000-containers.yaml", &["containers[0].node"]),
    (
        "valid-seed000-discord-alerting.yaml",
        &["alerting.channels[0].webhook_url"],
    ),
    ("valid-seed000-drift-rule-exceptions.yaml", &[]),
    ("valid-seed000-drift-rules.yaml", &[]),
    ("valid-seed000-maintenance-window.yaml", &[]),
    ("valid-seed000-nodes.yaml", &[]),
    ("valid-update-order.yaml", &["containers[1].update_order"]),
    ("valid-volumes-forms.yaml", &[]),
];

#[test]
fn fixture_dir_every_file_is_in_a_table() {
    let tabled: Vec<&str> = VALID
        .iter()
        .map(|(n, _)| *n)
        .chain(INVALID.iter().map(|c| c.0))
        .collect();
    for name in fixture_names("") {
        assert!(
            name.starts_with("valid-") || name.starts_with("invalid-"),
            "`{name}` is not named by outcome"
        );
        assert!(tabled.contains(&name.as_str()), "`{name}` is in no table");
    }
    for name in &tabled {
        assert!(
            std::path::Path::new(&format!("{DIR}/{name}")).exists(),
            "`{name}` is tabled but missing"
        );
    }
}

#[test]
fn load_valid_fixture_loads_with_expected_warnings() {
    for (name, warnings) in VALID {
        let loaded = load_ok(name);
        let got: Vec<&str> = loaded.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(&got, warnings, "{name}: warnings {:#?}", loaded.warnings);
        assert!(
            !loaded.manifest.nodes.is_empty(),
            "{name}: a manifest always has a node"
        );
    }
}

#[test]
fn load_update_order_is_read_and_a_fixed_host_port_is_warned_about() {
    use refinery_core::UpdateOrder;
    let loaded = load_ok("valid-update-order.yaml");
    let order: Vec<(&str, Option<UpdateOrder>)> = loaded
        .manifest
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.options.extra().update_order))
        .collect();
    assert_eq!(
        order,
        [
            ("web", Some(UpdateOrder::StartFirst)),
            ("api", Some(UpdateOrder::StartFirst)),
            ("db", Some(UpdateOrder::StopFirst)),
        ]
    );
    let [w] = loaded.warnings.as_slice() else {
        panic!("one warning: {:#?}", loaded.warnings)
    };
    assert_eq!((w.line, w.column), (8, 19));
    assert!(
        w.message
            .contains("container `api` publishes host port 8080, which the old and the new container cannot hold at once: it is replaced stop-first"),
        "{w:?}"
    );
    assert!(
        w.hint
            .as_deref()
            .is_some_and(|h| h.contains("publish no fixed host port")),
        "{w:?}"
    );
}

#[test]
fn load_full_reference_reads_every_section() {
    let m = load_ok_with("valid-full-reference.yaml", &env_with_secrets).manifest;
    assert_eq!(m.file, "valid-full-reference.yaml");

    assert_eq!(m.config.check_interval_secs, 60);
    assert!(m.config.drift_detection);
    assert!(m.config.git_auto_commit);
    assert_eq!(m.config.mode, Mode::Enforce);
    let webhook = m.config.discord_webhook.as_ref().expect("discord_webhook");
    assert_eq!(webhook.expose(), "...");
    assert!(webhook.is_sensitive());

    assert_eq!(
        m.nodes,
        vec![NodeSpec {
            name: "lyra".into(),
            role: Some("primary".into()),
            hostname: Some("nitro-v15-lyra".into()),
            docker: Some("unix:///var/run/docker.sock".into()),
            tls: Some(TlsFiles {
                ca: "certs/ca.pem".into(),
                cert: "certs/cert.pem".into(),
                key: "certs/key.pem".into(),
            }),
            docker_enabled: true,
            k8s_enabled: false,
            kube_context: Some("lyra".into()),
            mode: Some(Mode::ReadOnly),
        }]
    );
    assert_eq!(m.mode_of("lyra"), Mode::ReadOnly);

    let [c] = m.containers.as_slice() else {
        panic!("one container: {:#?}", m.containers)
    };
    assert_eq!((c.name.as_str(), c.node.as_str()), ("refinory-api", "lyra"));
    assert_eq!(c.image, "refinory-ai:latest");
    assert_eq!(c.ports, vec![tcp("", Some(8085), 8085)]);
    assert_eq!(c.fallback_ports, BTreeMap::from([(8085, vec![8086, 8087])]));
    assert_eq!(env_of(&c.env), vec![("LOG_LEVEL", "info")]);
    assert_eq!(
        c.mounts,
        vec![
            mount(MountKind::Volume, "data", "/var/lib/api", false),
            mount(MountKind::Bind, "/repo/conf", "/etc/api", true),
        ]
    );
    assert_eq!(c.command, Some(vec!["serve".to_owned()]));
    assert_eq!(c.entrypoint, None);
    assert_eq!(
        c.labels,
        BTreeMap::from([("team".to_owned(), "core".to_owned())])
    );
    assert_eq!(c.restart, RestartPolicy::UnlessStopped);
    assert_eq!(c.options.cap_add, ["CAP_NET_ADMIN"]);
    assert_eq!(c.options.cap_drop, ["CAP_MKNOD"]);
    assert!(!c.options.privileged);
    assert_eq!(
        c.healthcheck,
        Some(Healthcheck {
            test: words(&["CMD", "wget", "-q", "localhost:8085/health"]),
            interval_ms: 10_000,
            ..Healthcheck::default()
        })
    );
    assert_eq!(c.bloodline.creator.as_deref(), Some("deployment-script"));
    assert_eq!(
        c.bloodline.purpose.as_deref(),
        Some("AI agent orchestration API")
    );
    assert_eq!(
        c.ignore_differences,
        words(&["env.BUILD_ID", "labels.com.example.*"])
    );
    assert_eq!(c.drift_action, Some(Action::Alert));

    let [stack] = m.stacks.as_slice() else {
        panic!("one stack: {:#?}", m.stacks)
    };
    assert_eq!(
        (stack.name.as_str(), stack.node.as_str()),
        ("consensusnet", "lyra")
    );
    assert_eq!(
        stack.files,
        words(&["manifests/docker/docker-compose.prod.yml"])
    );
    assert_eq!(stack.profiles, words(&["cpu"]));
    assert_eq!(stack.env_file.as_deref(), Some(".env.production"));

    let [k] = m.kubernetes.as_slice() else {
        panic!("one kubernetes source: {:#?}", m.kubernetes)
    };
    assert_eq!(k.name, "dredge");
    assert_eq!(k.context.as_deref(), Some("lyra"));
    assert_eq!(k.path, "manifests/k8s/");
    assert_eq!(k.namespace.as_deref(), Some("dredge"));
    assert!(k.prune);

    let inv = &m.inventory;
    assert_eq!(inv.allowed.containers, words(&["odoo-dev*"]));
    assert_eq!(inv.allowed.images, words(&["odoo:*", "postgres:16*"]));
    assert_eq!(inv.allowed.volumes, words(&["odoo-dev-*"]));
    assert!(inv.allowed.networks.is_empty());
    assert_eq!(inv.protected, words(&["prod-*", "stable-*", "ipai-*"]));
    assert_eq!(inv.safe_to_delete, words(&["test-*", "tmp-*", "mcp/*"]));
    assert_eq!(inv.cleanup.max_unused_image_age_ms, Some(14 * 86_400_000));
    assert_eq!(inv.cleanup.max_unused_volume_age_ms, Some(30 * 86_400_000));
    assert_eq!(inv.cleanup.protected_tags, words(&["prod-*"]));
    assert_eq!(
        inv.schedule,
        Some(Schedule {
            cron: "0 2 * * *".into(),
            timezone: "Asia/Singapore".into(),
        })
    );

    let d = &m.drift_rules;
    assert_eq!(
        d.unauthorized_containers,
        Some(rule(Action::Terminate, 60, &["dev-*", "test-*"]))
    );
    assert_eq!(d.missing_containers, Some(rule(Action::Recreate, 0, &[])));
    assert_eq!(d.image_drift, Some(rule(Action::Rollback, 300, &[])));
    assert_eq!(d.config_drift, Some(rule(Action::Recreate, 60, &[])));
    assert_eq!(d.status_drift, Some(rule(Action::Restart, 5, &[])));
    let flapping = d.flapping.as_ref().expect("flapping");
    assert_eq!((flapping.max_actions, flapping.window_secs), (5, 600));

    let [w] = m.maintenance_windows.as_slice() else {
        panic!("one window: {:#?}", m.maintenance_windows)
    };
    assert_eq!(w.name, "Weekly Maintenance");
    assert_eq!(w.day, WindowDay::Sunday);
    assert_eq!((w.start_minute, w.end_minute), (120, 240));
    assert_eq!(w.timezone, "UTC");
    assert!(w.disable_auto_rollback && w.allow_drift);

    let [ch] = m.alerting.channels.as_slice() else {
        panic!("one channel: {:#?}", m.alerting.channels)
    };
    assert_eq!(ch.kind(), ChannelKind::Discord);
    assert_eq!(
        ch.destination.address().expose(),
        "https://discord.example/api/webhooks/1/abc"
    );
    assert!(ch.destination.address().is_sensitive());
    assert_eq!(ch.level, Level::Warning);

    assert_eq!(m.ledger.path, "ledger/container_ledger.jsonl");
    assert_eq!(m.ledger.git_ref, "refs/heads/refinery/ledger");
    assert_eq!(
        m.secrets.sops_age_key_file.as_deref(),
        Some("/etc/refinery/age.txt")
    );
    assert!(!m.allow_empty);
    assert!(m.ignore_differences.is_empty());
}

#[test]
fn load_ledger_max_size_reads_bytes() {
    let m = load_ok("valid-ledger-max-size.yaml").manifest;
    assert_eq!(m.ledger.max_size, Some(10 * 1024 * 1024));
    assert_eq!(load_ok("valid-minimal.yaml").manifest.ledger.max_size, None);
}

#[test]
fn load_full_reference_without_env_warns_and_masks() {
    let loaded = load_ok("valid-full-reference.yaml");
    // Its one other warning: `tls` beside a `unix://` endpoint is unused.
    for w in loaded
        .warnings
        .iter()
        .filter(|w| w.field != "nodes[0].docker")
    {
        assert!(
            w.message.contains("is not set; using an empty string"),
            "{w}"
        );
    }
    assert_eq!(loaded.manifest.secrets.sops_age_key_file, None);
    // The manifest as JSON (what `refinery validate --json` would show): secrets stay masked.
    insta::assert_json_snapshot!("valid-full-reference", loaded.manifest);
}

#[test]
fn load_quickstart_example_loads_on_the_local_node() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/refinery.yaml"
    );
    let Ok(src) = std::fs::read_to_string(path) else {
        panic!("read {path}")
    };
    let opts = LoadOptions {
        env: &env,
        base_dir: Some("/repo".into()),
    };
    let loaded = match load_manifest("refinery.yaml", &src, &opts) {
        Ok(l) => l,
        Err(e) => panic!("the quickstart should load:\n{}", render(&e)),
    };
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.manifest.nodes, vec![local_node("local")]);
    assert!(loaded.manifest.containers.iter().all(|c| c.node == "local"));
}

#[test]
fn load_minimal_applies_design_defaults() {
    let m = load_ok("valid-minimal.yaml").manifest;
    assert_eq!(m.config, Config::default());
    assert_eq!(m.config.check_interval_secs, 60);
    assert_eq!(m.config.mode, Mode::Enforce);
    assert!(m.config.drift_detection && m.config.git_auto_commit);
    assert_eq!(m.nodes, vec![local_node("local")]);
    assert_eq!(m.mode_of("local"), Mode::Enforce);
    let [c] = m.containers.as_slice() else {
        panic!("one container: {:#?}", m.containers)
    };
    assert_eq!(
        (c.name.as_str(), c.node.as_str(), c.image.as_str()),
        ("web", "local", "nginx:1.27")
    );
    assert!(c.ports.is_empty() && c.mounts.is_empty() && c.env.is_empty() && c.labels.is_empty());
    assert_eq!(
        (&c.command, &c.entrypoint, &c.healthcheck),
        (&None, &None, &None)
    );
    assert_eq!(c.restart, RestartPolicy::No);
    assert_eq!(c.drift_action, None);
    assert_eq!(m.ledger, LedgerConfig::default());
    assert_eq!(m.ledger.path, "ledger/container_ledger.jsonl");
    assert_eq!(m.ledger.git_ref, "refs/heads/refinery/ledger");
    assert_eq!(m.drift_rules, Default::default());
    assert!(m.stacks.is_empty() && m.kubernetes.is_empty() && m.maintenance_windows.is_empty());
    assert!(m.alerting.channels.is_empty());
    assert!(!m.allow_empty);
    assert!(!m.is_empty());
}

#[test]
fn load_allow_empty_is_an_empty_manifest_on_the_local_node() {
    let m = load_ok("valid-allow-empty.yaml").manifest;
    assert!(m.is_empty());
    assert!(m.allow_empty);
    assert_eq!(m.nodes, vec![local_node("local")]);
}

#[test]
fn load_seed000_containers_takes_the_referenced_node_as_the_local_one() {
    let loaded = load_ok("valid-seed000-containers.yaml");
    let m = loaded.manifest;
    assert_eq!(m.nodes, vec![local_node("lyra")]);
    let [c] = m.containers.as_slice() else {
        panic!("one container: {:#?}", m.containers)
    };
    assert_eq!((c.name.as_str(), c.node.as_str()), ("refinory-api", "lyra"));
    assert_eq!(c.image, "refinory-ai:latest");
    assert_eq!(c.ports, vec![tcp("", Some(8085), 8085)]);
    assert_eq!(c.bloodline.creator.as_deref(), Some("deployment-script"));
    assert_eq!(
        c.bloodline.purpose.as_deref(),
        Some("AI agent orchestration API")
    );
    let [w] = loaded.warnings.as_slice() else {
        panic!("one warning: {:#?}", loaded.warnings)
    };
    assert_eq!((w.line, w.column), (5, 11));
    assert!(
        w.message
            .contains("node `lyra` is not declared under `nodes`"),
        "{w}"
    );
}

#[test]
fn load_seed000_nodes_reads_both_nodes_with_defaults() {
    let m = load_ok("valid-seed000-nodes.yaml").manifest;
    let names: Vec<&str> = m.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["lyra", "node1"]);
    let lyra = m.node("lyra").expect("lyra");
    assert_eq!(lyra.role.as_deref(), Some("primary"));
    assert_eq!(lyra.hostname.as_deref(), Some("nitro-v15-lyra"));
    let node1 = m.node("node1").expect("node1");
    assert_eq!(node1.role.as_deref(), Some("worker"));
    assert_eq!(node1.hostname, None);
    for n in &m.nodes {
        assert!(n.docker_enabled && n.k8s_enabled, "{}", n.name);
        assert_eq!(
            (&n.docker, &n.tls, n.mode),
            (&None, &None, None),
            "{}",
            n.name
        );
    }
    assert!(m.is_empty());
}

#[test]
fn load_seed000_drift_rules_leaves_absent_rules_to_defaults() {
    let d = load_ok("valid-seed000-drift-rules.yaml")
        .manifest
        .drift_rules;
    assert_eq!(
        d.unauthorized_containers,
        Some(rule(Action::Terminate, 60, &[]))
    );
    assert_eq!(d.image_drift, Some(rule(Action::Rollback, 300, &[])));
    assert_eq!(
        (
            &d.missing_containers,
            &d.config_drift,
            &d.status_drift,
            &d.flapping
        ),
        (&None, &None, &None, &None)
    );
}

#[test]
fn load_seed000_drift_rule_exceptions_reads_patterns() {
    let d = load_ok("valid-seed000-drift-rule-exceptions.yaml")
        .manifest
        .drift_rules;
    assert_eq!(
        d.unauthorized_containers,
        Some(rule(Action::Terminate, 0, &["dev-*", "test-*"]))
    );
}

#[test]
fn load_seed000_maintenance_window_defaults_to_utc() {
    let m = load_ok("valid-seed000-maintenance-window.yaml").manifest;
    let [w] = m.maintenance_windows.as_slice() else {
        panic!("one window: {:#?}", m.maintenance_windows)
    };
    assert_eq!(w.name, "Weekly Maintenance");
    assert_eq!(w.day, WindowDay::Sunday);
    assert_eq!((w.start_minute, w.end_minute), (2 * 60, 4 * 60));
    assert_eq!(w.timezone, "UTC");
    assert!(w.disable_auto_rollback && w.allow_drift);
}

#[test]
fn load_alert_channels_reads_filters_reminders_and_rate_limits() {
    let m = load_ok("valid-alert-channels.yaml").manifest;
    let [slack, hook] = m.alerting.channels.as_slice() else {
        panic!("two channels: {:#?}", m.alerting.channels)
    };
    assert_eq!(slack.kind(), ChannelKind::Slack);
    assert_eq!(slack.level, Level::Critical);
    assert_eq!(slack.remind_every_ms, None);
    assert_eq!(
        (slack.rate_limit.max, slack.rate_limit.per_ms),
        (20, 60_000)
    );
    assert_eq!(hook.kind(), ChannelKind::Webhook);
    assert_eq!(hook.nodes, ["vega", "k8s/dredge"]);
    assert_eq!(hook.drift_types, ["missing", "status", "orphan"]);
    assert_eq!(hook.remind_every_ms, Some(4 * 3600 * 1000));
    assert_eq!((hook.rate_limit.max, hook.rate_limit.per_ms), (5, 600_000));
}

#[test]
fn load_alert_channels_more_reads_every_type_masked_with_timing() {
    use refinery_core::manifest::Destination;
    let secrets = |name: &str| -> Option<String> {
        match name {
            "NTFY_TOKEN" => Some("tk_ntfy".into()),
            "GOTIFY_TOKEN" => Some("gotify-app".into()),
            "TELEGRAM_BOT_TOKEN" => Some("123:ABC".into()),
            "TEAMS_WEBHOOK" => Some("https://contoso.webhook.office.com/webhookb2/x".into()),
            "TG_TOKEN" => Some("tg".into()),
            "TG_CHAT" => Some("42".into()),
            "SMTP_PASSWORD" => Some("smtp-pw".into()),
            _ => None,
        }
    };
    let m = load_ok_with("valid-alert-channels-more.yaml", &secrets).manifest;
    let kinds: Vec<&str> = m
        .alerting
        .channels
        .iter()
        .map(|c| c.kind().as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "ntfy", "gotify", "telegram", "telegram", "teams", "apprise", "email"
        ]
    );
    let ch = &m.alerting.channels;
    assert_eq!(
        (ch[0].min_duration_ms, ch[0].burst, ch[0].group_wait_ms),
        (30_000, 5, 5_000)
    );
    assert_eq!(
        (ch[1].min_duration_ms, ch[1].burst, ch[1].group_wait_ms),
        (0, 10, 0)
    );
    let Destination::Telegram {
        chat_id, api_url, ..
    } = &ch[2].destination
    else {
        panic!("telegram: {:?}", ch[2])
    };
    assert_eq!((chat_id.as_str(), api_url), ("-1001234567890", &None));
    let Destination::Apprise { urls, .. } = &ch[5].destination else {
        panic!("apprise: {:?}", ch[5])
    };
    assert_eq!(urls[0].expose(), "tgram://tg/42");
    let Destination::Email(e) = &ch[6].destination else {
        panic!("email: {:?}", ch[6])
    };
    assert_eq!(e.to, ["ops@example.com"]);
    assert_eq!(e.username.as_deref(), Some("refinery"));
    assert_eq!(ch[6].remind_every_ms, Some(4 * 3600 * 1000));
    // Every token, password and URL prints masked.
    let printed = format!(
        "{:?} {}",
        m.alerting,
        serde_json::to_string(&m.alerting).unwrap_or_default()
    );
    for s in [
        "tk_ntfy",
        "gotify-app",
        "123:ABC",
        "webhookb2",
        "tgram://",
        "smtp-pw",
        "mail.example",
    ] {
        assert!(!printed.contains(s), "`{s}` printed: {printed}");
    }
}

#[test]
fn load_seed000_discord_alerting_reads_shortcut_and_channel() {
    let m = load_ok_with("valid-seed000-discord-alerting.yaml", &env_with_secrets).manifest;
    let shortcut = m.config.discord_webhook.as_ref().expect("discord_webhook");
    assert_eq!(shortcut.expose(), "https://discord.com/api/webhooks/...");
    assert!(shortcut.is_sensitive());
    let [ch] = m.alerting.channels.as_slice() else {
        panic!("one channel: {:#?}", m.alerting.channels)
    };
    assert_eq!(
        (ch.kind(), ch.level),
        (ChannelKind::Discord, Level::Warning)
    );
    assert_eq!(
        ch.destination.address().expose(),
        "https://discord.example/api/webhooks/1/abc"
    );
    assert!(ch.nodes.is_empty() && ch.drift_types.is_empty());
}

#[test]
fn load_env_list_splits_on_the_first_equals_sign() {
    let m = load_ok("valid-env-list.yaml").manifest;
    let c = &m.containers[0];
    assert_eq!(
        env_of(&c.env),
        vec![
            ("API_TOKEN", "hunter2"),
            ("EMPTY", ""),
            ("FLAG", ""),
            ("LOG_LEVEL", "info"),
            ("URL", "http://db:5432/app?sslmode=disable"),
        ]
    );
    assert!(
        c.env["API_TOKEN"].is_sensitive(),
        "a token-named variable is masked"
    );
    assert!(!c.env["LOG_LEVEL"].is_sensitive());
}

#[test]
fn load_ports_forms_normalize_each_form() {
    let m = load_ok("valid-ports-forms.yaml").manifest;
    let c = &m.containers[0];
    assert_eq!(
        c.ports,
        vec![
            tcp("", Some(8080), 80),
            tcp("", None, 9090),
            tcp("127.0.0.1", Some(8443), 443),
            tcp("", Some(8085), 8085),
            PortBinding {
                protocol: Protocol::Udp,
                ..tcp("", Some(53), 53)
            },
            tcp("127.0.0.1", None, 9000),
            tcp("", Some(7000), 7000),
            tcp("", Some(7001), 7001),
            tcp("", Some(7002), 7002),
            tcp("::1", Some(6060), 6060),
        ]
    );
    assert_eq!(c.fallback_ports, BTreeMap::from([(8080, vec![8081, 8082])]));
}

#[test]
fn load_healthcheck_forms_normalize_each_form() {
    let m = load_ok("valid-healthcheck-forms.yaml").manifest;
    let by_name: BTreeMap<&str, Option<&Healthcheck>> = m
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.healthcheck.as_ref()))
        .collect();
    let none = Healthcheck {
        test: words(&["NONE"]),
        ..Healthcheck::default()
    };
    let cases = [
        (
            "exec-form",
            Healthcheck {
                test: words(&["CMD", "wget", "-q", "localhost/health"]),
                interval_ms: 10_000,
                timeout_ms: 2_000,
                start_period_ms: 60_000,
                retries: 3,
            },
        ),
        (
            "shell-string",
            Healthcheck {
                test: words(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
                ..Healthcheck::default()
            },
        ),
        (
            "shell-list",
            Healthcheck {
                test: words(&["CMD-SHELL", "pg_isready -U app"]),
                interval_ms: 30_000,
                ..Healthcheck::default()
            },
        ),
        ("disabled", none.clone()),
        ("none-test", none),
    ];
    assert_eq!(by_name.len(), cases.len());
    for (name, want) in cases {
        assert_eq!(by_name[name], Some(&want), "{name}");
    }
}

#[test]
fn load_multi_node_expands_one_spec_per_node() {
    let m = load_ok("valid-multi-node.yaml").manifest;
    let placed: Vec<(&str, &str)> = m
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.node.as_str()))
        .collect();
    assert_eq!(placed, [("agent", "a"), ("agent", "b"), ("only-b", "b")]);
    let stacks: Vec<(&str, &str)> = m
        .stacks
        .iter()
        .map(|s| (s.name.as_str(), s.node.as_str()))
        .collect();
    assert_eq!(stacks, [("shop", "a"), ("shop", "b")]);
    assert!(
        m.stacks[0].files.is_empty(),
        "no `files:`: compose's own file names are looked for when the stack is expanded"
    );
    assert_eq!(m.config.mode, Mode::Audit);
    assert_eq!(m.mode_of("a"), Mode::Audit, "the global mode");
    assert_eq!(m.mode_of("b"), Mode::ReadOnly, "the node's own mode");
    let a = m.node("a").expect("node a");
    assert_eq!(a.docker.as_deref(), Some("tcp://10.0.0.1:2376"));
    assert!(a.tls.is_some());
    assert_eq!(
        m.node("b").and_then(|b| b.docker.as_deref()),
        Some("ssh://deploy@10.0.0.2")
    );
}

#[test]
fn load_interpolation_expands_defaults_and_literals() {
    let loaded = load_ok("valid-interpolation.yaml");
    let m = loaded.manifest;
    assert_eq!(m.config.check_interval_secs, 120, "`${{INTERVAL:-2m}}`");
    assert_eq!(
        m.config.discord_webhook, None,
        "an unset webhook is no webhook"
    );
    let c = &m.containers[0];
    assert_eq!(c.image, "registry.local/api:latest");
    assert_eq!(
        env_of(&c.env),
        vec![("HOME_DIR", "/root"), ("MISSING", ""), ("PRICE", "$5")]
    );
    for w in &loaded.warnings {
        assert!(
            w.message.ends_with("is not set; using an empty string"),
            "{w}"
        );
    }
    assert_eq!(
        (loaded.warnings[1].line, loaded.warnings[1].column),
        (10, 16),
        "the warning points at the value"
    );
}

#[test]
fn load_anchors_and_merge_keys_expand_with_local_overrides() {
    let m = load_ok("valid-anchors-and-merge-keys.yaml").manifest;
    let got: Vec<(&str, &str, RestartPolicy)> = m
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_str(), c.restart))
        .collect();
    assert_eq!(
        got,
        [
            ("one", "busybox:1.36", RestartPolicy::UnlessStopped),
            ("two", "busybox:1.36", RestartPolicy::Always),
        ]
    );
}

#[test]
fn load_volumes_forms_normalize_and_sort() {
    let m = load_ok("valid-volumes-forms.yaml").manifest;
    let c = &m.containers[0];
    assert_eq!(
        c.mounts,
        vec![
            mount(MountKind::Volume, "data", "/var/lib/api", false),
            mount(MountKind::Bind, "/repo/b", "/b", false),
            mount(MountKind::Bind, "/repo/conf", "/etc/api", true),
            mount(MountKind::Bind, "/srv/shared/cache", "/cache/x", false),
            mount(MountKind::Anonymous, "", "/anonymous", false),
        ]
    );
    assert_eq!(c.command, Some(words(&["serve", "--port", "8085"])));
    assert_eq!(c.entrypoint, Some(words(&["/bin/sh", "-c"])));
    assert_eq!(
        c.labels,
        BTreeMap::from([
            ("com.example.tier".to_owned(), "web".to_owned()),
            ("team".to_owned(), "core".to_owned()),
        ])
    );
    assert_eq!(c.restart, RestartPolicy::OnFailure(3));
}

// ---------------------------------------------------------------------------------------------
// invalid fixtures

/// One expected problem: where, which field, a piece of the message, a piece of the hint.
struct Expect {
    line: u32,
    column: u32,
    field: &'static str,
    message: &'static str,
    hint: Option<&'static str>,
}

const fn at(line: u32, column: u32, field: &'static str, message: &'static str) -> Expect {
    Expect {
        line,
        column,
        field,
        message,
        hint: None,
    }
}

const fn hinted(
    line: u32,
    column: u32,
    field: &'static str,
    message: &'static str,
    hint: &'static str,
) -> Expect {
    Expect {
        line,
        column,
        field,
        message,
        hint: Some(hint),
    }
}

/// Every invalid fixture and every problem it must report, in report order (line, column).
#[rustfmt::skip]
const INVALID: &[(&str, &[Expect])] = &[
    ("invalid-action-for-rule.yaml", &[hinted(3, 13, "drift_rules.unauthorized_containers.action", "`rollback` is not an action for this rule", "allowed here: terminate, alert, ignore")]),
    ("invalid-action-typo.yaml", &[hinted(3, 13, "drift_rules.image_drift.action", "`rollbak` is not an action", "did you mean `rollback`?")]),
    ("invalid-bool.yaml", &[hinted(2, 20, "config.drift_detection", "expected true or false, found `maybe`", "write `true` or `false`")]),
    ("invalid-channel-type.yaml", &[
        hinted(3, 13, "alerting.channels[0].type", "`telegrm` is not a channel type", "did you mean `telegram`?"),
        hinted(5, 14, "alerting.channels[0].level", "`urgent` is not a level", "`info`, `warning` or `critical`"),
    ]),
    ("invalid-channel-filters.yaml", &[
        hinted(5, 30, "alerting.channels[0].drift_types[1]", "`stauts` is not a drift type", "did you mean `status`?"),
        hinted(6, 21, "alerting.channels[0].remind_every", "a reminder interval of 0", "`4h`"),
        hinted(7, 25, "alerting.channels[0].rate_limit.max", "a rate limit of 0 would send nothing", "remove the channel"),
        at(7, 33, "alerting.channels[0].rate_limit.per", "1 minute"),
    ]),
    ("invalid-channel-undeclared-node.yaml", &[hinted(10, 21, "alerting.channels[0].nodes[1]", "node `nod1` is not declared under `nodes`", "did you mean `node1`?")]),
    ("invalid-channel-url-twice.yaml", &[hinted(5, 7, "alerting.channels[0].url", "set either `webhook_url` or `url`, not both", "another name for `webhook_url`")]),
    ("invalid-channel-without-url.yaml", &[at(3, 7, "alerting.channels[0].webhook_url", "a channel of type `slack` needs `webhook_url`")]),
    ("invalid-channel-ntfy-without-url.yaml", &[hinted(3, 7, "alerting.channels[0].url", "a channel of type `ntfy` needs `url`", "https://ntfy.sh/<topic>")]),
    ("invalid-channel-gotify-without-token.yaml", &[hinted(3, 7, "alerting.channels[0].token", "a channel of type `gotify` needs `token`", "${GOTIFY_TOKEN}")]),
    ("invalid-channel-telegram-without-chat-id.yaml", &[hinted(3, 7, "alerting.channels[0].chat_id", "a channel of type `telegram` needs `chat_id`", "-1001234567890")]),
    ("invalid-channel-teams-without-url.yaml", &[hinted(3, 7, "alerting.channels[0].webhook_url", "a channel of type `teams` needs `webhook_url`", "Workflows URL")]),
    ("invalid-channel-apprise-without-url.yaml", &[hinted(3, 7, "alerting.channels[0].url", "a channel of type `apprise` needs `url`", "/notify")]),
    ("invalid-channel-email.yaml", &[
        hinted(4, 13, "alerting.channels[0].smtp", "expected an `smtp://` or `smtps://` URL", "smtps://mail.example:465"),
        hinted(6, 11, "alerting.channels[0].to", "`to` names nobody", "at least one address"),
        hinted(7, 7, "alerting.channels[0].password", "a `password` without a `username`", "add `username`"),
    ]),
    ("invalid-channel-burst.yaml", &[
        hinted(5, 14, "alerting.channels[0].burst", "a burst of 0 would group every drift", "use 1 or more"),
        at(6, 21, "alerting.channels[0].min_duration", ""),
    ]),
    ("invalid-check-interval-zero.yaml", &[at(2, 19, "config.check_interval", "must be at least 1 second")]),
    ("invalid-container-name.yaml", &[hinted(2, 11, "containers[0].name", "`-web app` is not a valid container name", "starting with a letter or digit")]),
    ("invalid-container-type.yaml", &[hinted(3, 11, "containers[0].type", "`podman` is not a container type", "use `docker` or `k8s`")]),
    ("invalid-cron.yaml", &[hinted(2, 20, "inventory.schedule.cron", "`every night` is not a cron expression", "`0 2 * * *`")]),
    ("invalid-docker-endpoint.yaml", &[hinted(3, 13, "nodes[0].docker", "`http://10.0.0.5:2375` is not a Docker endpoint", "`tcp://HOST:2376`")]),
    ("invalid-duplicate-container.yaml", &[at(6, 11, "containers[2].name", "container `web` is declared twice on node `local`")]),
    ("invalid-duplicate-endpoint.yaml", &[hinted(5, 13, "nodes[1].docker", "node `node1` has the same endpoint `tcp://10.0.0.5:2376` as node `lyra`", "its own endpoint")]),
    ("invalid-duplicate-key.yaml", &[at(4, 5, "containers[0].image", "duplicate key `image`")]),
    ("invalid-duplicate-node.yaml", &[at(4, 11, "nodes[1].name", "node `lyra` is declared twice")]),
    ("invalid-duration-grace-period.yaml", &[hinted(2, 49, "drift_rules.status_drift.grace_period", "`5 minutes` is not a duration", "write `5m`")]),
    ("invalid-duration-words.yaml", &[hinted(3, 27, "inventory.cleanup.max_unused_image_age", "`14 days` is not a duration", "write `14d`")]),
    ("invalid-env-and-environment.yaml", &[hinted(5, 5, "containers[0].environment", "set either `env` or `environment`, not both", "merge the two")]),
    ("invalid-env-duplicate.yaml", &[at(6, 9, "containers[0].env[1]", "`LOG_LEVEL` is set twice (first at `containers[0].env[0]`)")]),
    ("invalid-env-name.yaml", &[at(5, 9, "containers[0].env[0]", "`BAD NAME` is not an environment variable name")]),
    ("invalid-fallback-port-unpublished.yaml", &[
        hinted(6, 7, "containers[0].fallback_ports.9090", "port 9090 is not a published host port", "listed under `ports`"),
        at(7, 22, "containers[0].fallback_ports.8080[1]", "`nope` is not a port number"),
    ]),
    ("invalid-glob-pattern.yaml", &[
        hinted(2, 25, "inventory.protected[1]", "`prod-[*` is not a valid pattern: unclosed character class", "escape a literal `[`"),
        hinted(8, 9, "drift_rules.unauthorized_containers.exceptions[1]", "`dev-{a` is not a valid pattern: unclosed alternate group", "escape a literal `[`"),
    ]),
    ("invalid-healthcheck-test.yaml", &[hinted(5, 13, "containers[0].healthcheck.test", "must start with `CMD`, `CMD-SHELL` or `NONE`", "a plain string for a shell command")]),
    ("invalid-healthcheck-without-test.yaml", &[at(5, 7, "containers[0].healthcheck.test", "a healthcheck needs a `test`")]),
    ("invalid-image-reference.yaml", &[at(3, 12, "containers[0].image", "`nginx 1.27` is not an image reference")]),
    ("invalid-kubernetes-duplicate.yaml", &[at(3, 12, "kubernetes[1].name", "kubernetes source `dredge` is declared twice")]),
    ("invalid-kubernetes-name-label.yaml", &[hinted(2, 11, "kubernetes[0].name", "`dredge-` is not a valid kubernetes source name", "at most 63 characters")]),
    ("invalid-kubernetes-prune.yaml", &[hinted(4, 12, "kubernetes[0].prune", "expected true or false, found `sometimes`", "write `true` or `false`")]),
    ("invalid-kubernetes-without-path.yaml", &[at(2, 5, "kubernetes[0].path", "needs a `path`")]),
    ("invalid-ledger-max-size.yaml", &[hinted(2, 13, "ledger.max_size", "`10 megabytes` is not a size", "like `10MiB`")]),
    ("invalid-ledger-path-outside-repo.yaml", &[hinted(2, 9, "ledger.path", "`../elsewhere/ledger.jsonl` is not a path inside the repository", "a relative path")]),
    ("invalid-ledger-ref.yaml", &[hinted(2, 8, "ledger.ref", "`refinery/ledger` is not a full ref name", "`refs/heads/refinery/ledger`")]),
    ("invalid-malformed-yaml.yaml", &[hinted(5, 3, "", "invalid YAML", "unclosed `[` or `{`")]),
    ("invalid-missing-image.yaml", &[at(2, 5, "containers[0].image", "every container needs an `image`")]),
    ("invalid-missing-name.yaml", &[at(2, 5, "containers[0].name", "every container needs a `name`")]),
    ("invalid-mode.yaml", &[hinted(2, 9, "config.mode", "`enforcing` is not a mode", "did you mean `enforce`?")]),
    ("invalid-node-and-nodes.yaml", &[hinted(8, 5, "containers[0].nodes", "set either `node` or `nodes`, not both", "`nodes: [a, b]`")]),
    ("invalid-node-mode.yaml", &[hinted(3, 11, "nodes[0].mode", "`observe` is not a mode", "use `enforce`, `audit` or `read-only`")]),
    ("invalid-node-not-chosen.yaml", &[hinted(5, 5, "containers[0].node", "several nodes are declared", "add `node: lyra`")]),
    ("invalid-nodes-as-names.yaml", &[
        hinted(1, 9, "nodes[0]", "expected a mapping, found a scalar", "`- name: lyra`"),
        hinted(1, 15, "nodes[1]", "expected a mapping, found a scalar", "`- name: node1`"),
    ]),
    ("invalid-not-a-mapping.yaml", &[hinted(1, 1, "", "expected a mapping, found a list", "sections like `containers:`")]),
    ("invalid-port-host-ip.yaml", &[hinted(5, 9, "containers[0].ports[0]", "`localhost` is not an IP address", "`IP:HOST:CONTAINER`")]),
    ("invalid-port-protocol.yaml", &[hinted(4, 13, "containers[0].ports[0]", "`http` is not a protocol", "`/udp`")]),
    ("invalid-port-published-twice.yaml", &[at(6, 9, "containers[0].ports[1]", "host port 8080/tcp is published twice (first at `containers[0].ports[0]`)")]),
    ("invalid-port-range-mismatch.yaml", &[hinted(5, 9, "containers[0].ports[0]", "maps 1 host port to 3 container ports", "`HOST:CONTAINER`")]),
    ("invalid-port-spec.yaml", &[hinted(4, 24, "containers[0].ports[1]", "`99999` is not a port number (1-65535)", "`HOST:CONTAINER`")]),
    ("invalid-required-var.yaml", &[hinted(3, 12, "containers[0].image", "required variable `REGISTRY` is not set: set REGISTRY to the local registry", "`${REGISTRY:-default}`")]),
    ("invalid-reserved-label.yaml", &[hinted(6, 7, "containers[0].labels.io.refinery.managed", "label `io.refinery.managed` is reserved for Refinery", "choose another prefix")]),
    ("invalid-restart-policy.yaml", &[hinted(4, 14, "containers[0].restart", "`unless_stopped` is not a restart policy", "did you mean `unless-stopped`?")]),
    ("invalid-update-order.yaml", &[hinted(4, 19, "containers[0].update_order", "`start_first` is not an update order", "did you mean `start-first`?")]),
    ("invalid-rule-without-action.yaml", &[at(3, 5, "drift_rules.missing_containers.action", "a drift rule needs an `action`")]),
    ("invalid-several-problems.yaml", &[
        hinted(2, 19, "config.check_interval", "`soon` is not a duration", "a bare number means seconds"),
        at(11, 14, "containers[0].restart", "`sometimes` is not a restart policy"),
        at(12, 11, "containers[1].name", "container `web` is declared twice on node `lyra`"),
        hinted(15, 15, "containers[1].volumes[0]", "`data` is not an absolute path inside the container", "`VOLUME:/path`"),
        hinted(17, 37, "drift_rules.unauthorized_containers.action", "`nuke` is not an action", "allowed here: terminate, alert, ignore"),
    ]),
    ("invalid-stack-duplicate.yaml", &[at(3, 11, "stacks[1].name", "stack `shop` is declared twice")]),
    ("invalid-time-of-day.yaml", &[hinted(4, 17, "maintenance_windows[0].start_time", "`25:00` is not a time of day", "`HH:MM`")]),
    ("invalid-endpoint-without-address.yaml", &[
        hinted(3, 13, "nodes[0].docker", "node `lyra` has no port in its endpoint `tcp://10.0.0.5`", "`tcp://HOST:2376`"),
        hinted(5, 13, "nodes[1].docker", "node `vega` has an endpoint without an address: `ssh://`", "`ssh://deploy@10.0.0.5`"),
    ]),
    ("invalid-tls-missing-key.yaml", &[at(4, 10, "nodes[0].tls.key", "`tls` needs `key`")]),
    ("invalid-two-documents.yaml", &[hinted(5, 1, "", "a manifest is one YAML document", "remove the `---` line")]),
    ("invalid-unclosed-var.yaml", &[hinted(3, 12, "containers[0].image", "no closing `}`", "close it with `}`")]),
    ("invalid-undeclared-node-in-list.yaml", &[
        hinted(7, 19, "containers[0].nodes[1]", "node `node2` is not declared under `nodes`", "did you mean `node1`?"),
        hinted(7, 26, "containers[0].nodes[2]", "node `far-away-host` is not declared under `nodes`", "declared nodes: lyra, node1"),
    ]),
    ("invalid-undeclared-node.yaml", &[hinted(7, 11, "containers[0].node", "node `lyar` is not declared under `nodes`", "did you mean `lyra`?")]),
    ("invalid-undeclared-nodes-without-nodes.yaml", &[
        hinted(4, 11, "containers[0].node", "node `lyra` is not declared under `nodes`", "declare each node under `nodes:`"),
        hinted(7, 11, "containers[1].node", "node `node1` is not declared under `nodes`", "declare each node under `nodes:`"),
    ]),
    ("invalid-unknown-key-no-suggestion.yaml", &[hinted(3, 3, "ledger.zzzzzzzz", "unknown key `zzzzzzzz`", "known keys here: path, ref")]),
    ("invalid-unknown-key-typo.yaml", &[hinted(4, 5, "containers[0].restrat", "unknown key `restrat`", "did you mean `restart`?")]),
    ("invalid-unknown-top-level-key.yaml", &[
        hinted(2, 3, "config.check_intervall", "unknown key `check_intervall`", "did you mean `check_interval`?"),
        hinted(3, 1, "contaners", "unknown key `contaners`", "did you mean `containers`?"),
    ]),
    ("invalid-volume-home-dir.yaml", &[at(4, 15, "containers[0].volumes[0]", "`~/conf` is relative to a home directory")]),
    ("invalid-volume-mounted-twice.yaml", &[at(6, 9, "containers[0].volumes[1]", "`/data` is mounted twice")]),
    ("invalid-volume-option.yaml", &[at(4, 15, "containers[0].volumes[0]", "`readonly` is not a mount option")]),
    ("invalid-volume-outside-repo.yaml", &[at(5, 9, "containers[0].volumes[0]", "`../repository-secrets` points outside the repository")]),
    ("invalid-volume-spec.yaml", &[hinted(6, 9, "containers[0].volumes[1]", "`relative/path` is not an absolute path inside the container", "`VOLUME:/path`")]),
    ("invalid-empty-file.yaml", &[hinted(1, 1, "containers", "the manifest declares nothing: no containers, stacks or kubernetes sources", "set `allow_empty: true`")]),
    ("invalid-only-comment.yaml", &[hinted(1, 1, "containers", "the manifest declares nothing", "declare what should run under `containers:`, `stacks:` or `kubernetes:`")]),
    ("invalid-containers-null.yaml", &[hinted(3, 1, "containers", "the manifest declares nothing", "set `allow_empty: true`")]),
    ("invalid-healthcheck-retries.yaml", &[hinted(4, 42, "containers[0].healthcheck.retries", "the number of retries is too large", "write at most 4294967295")]),
    ("invalid-image-grammar.yaml", &[
        hinted(3, 12, "containers[0].image", "`UPPER::case@@` is not an image reference: it has more than one `@`", "[REGISTRY[:PORT]/]NAME[:TAG]"),
        hinted(5, 12, "containers[1].image", "the repository name must be lowercase", "write `team/app:1`"),
        hinted(7, 12, "containers[2].image", "a sha256 digest is 64 lowercase hex digits, found `abc` (3 characters)", "@sha256:"),
        hinted(9, 12, "containers[3].image", "the repository name must be lowercase", "write `ghcr.io/team/redis:7`"),
    ]),
    ("invalid-window-timezone.yaml", &[hinted(8, 15, "maintenance_windows[0].timezone", "`Europe/Berln` is not a time zone", "did you mean `Europe/Berlin`?")]),
    ("invalid-schedule-timezone.yaml", &[hinted(4, 43, "inventory.schedule.timezone", "`Asia/Singapor` is not a time zone", "did you mean `Asia/Singapore`?")]),
    ("invalid-cron-field-range.yaml", &[hinted(4, 20, "inventory.schedule.cron", "`0 25 * * *` is not a cron expression", "`0 2 * * *`")]),
    ("invalid-capability.yaml", &[hinted(4, 15, "containers[0].cap_add[0]", "`NET_ADMN` is not a capability", "did you mean `NET_ADMIN`?")]),
    ("invalid-label-key.yaml", &[hinted(5, 7, "containers[0].labels.team=core", "`team=core` is not a label key: it contains `=`", "without spaces or `=`")]),
    ("invalid-volume-name-short.yaml", &[
        at(4, 15, "containers[0].volumes[0]", "`d` is not a valid volume name: the engine needs two characters at least"),
        at(4, 26, "containers[0].volumes[1]", "a volume cannot be mounted over `/`"),
    ]),
    ("invalid-duration-too-long.yaml", &[hinted(4, 49, "drift_rules.image_drift.grace_period", "`99999999d` is out of range: allowed is up to 3650d", "like `90s`")]),
    ("invalid-window-day.yaml", &[hinted(3, 10, "maintenance_windows[0].day", "`sundays` is not a day", "did you mean `sunday`?")]),
    ("invalid-wrong-type-containers.yaml", &[hinted(2, 3, "containers", "expected a list, found a mapping", "`containers: [{name: web")]),
    ("invalid-wrong-type-ports.yaml", &[hinted(4, 12, "containers[0].ports", "expected a list, found a scalar", "`ports: [\"8080:80\"]`")]),
];

#[test]
fn load_invalid_fixture_reports_each_problem_where_it_is() {
    let mut failures = Vec::new();
    for (name, expected) in INVALID {
        let err = match load_with(name, &env) {
            Ok(l) => {
                failures.push(format!("{name}: loaded, warnings {:?}", l.warnings));
                continue;
            }
            Err(e) => e,
        };
        let ManifestError::Invalid { file, issues } = &err else {
            failures.push(format!("{name}: {err:?}"));
            continue;
        };
        assert_eq!(file, name);
        let got: Vec<(u32, u32, &str)> = issues
            .iter()
            .map(|i| (i.line, i.column, i.field.as_str()))
            .collect();
        let want: Vec<(u32, u32, &str)> = expected
            .iter()
            .map(|e| (e.line, e.column, e.field))
            .collect();
        if got != want {
            failures.push(format!(
                "{name}: got {got:?}, want {want:?}\n{}",
                render(&err)
            ));
            continue;
        }
        for (issue, e) in issues.iter().zip(expected.iter()) {
            assert_eq!(issue.file, *name);
            if !issue.message.contains(e.message) {
                failures.push(format!(
                    "{name}: message {:?} lacks {:?}",
                    issue.message, e.message
                ));
            }
            match (&issue.hint, e.hint) {
                (Some(h), Some(want)) if h.contains(want) => {}
                (_, None) => {}
                (h, Some(want)) => failures.push(format!("{name}: hint {h:?} lacks {want:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn load_invalid_fixture_renders_reviewed_wording() {
    for (name, _) in INVALID {
        let err = load_with(name, &env).expect_err(name);
        let snapshot = name.trim_end_matches(".yaml");
        insta::assert_snapshot!(snapshot, render(&err));
    }
}

#[test]
fn load_invalid_fixture_has_one_based_locations_inside_the_file() {
    for (name, _) in INVALID {
        let src = source(name);
        let lines: Vec<&str> = src.lines().collect();
        let err = load_with(name, &env).expect_err(name);
        for i in err.issues() {
            assert!(i.line >= 1 && i.column >= 1, "{name}: {i}");
            if src.is_empty() {
                // An empty file has no line 1: its problem is at its start.
                assert_eq!((i.line, i.column), (1, 1), "{name}: {i}");
                continue;
            }
            let line = lines
                .get(i.line as usize - 1)
                .unwrap_or_else(|| panic!("{name}: {i}"));
            assert!(
                i.column as usize <= line.chars().count().max(1),
                "{name}: column past the end of line {}: {i}",
                i.line
            );
        }
    }
}

#[test]
fn load_several_problems_reports_all_of_them_at_once() {
    let err = load_with("invalid-several-problems.yaml", &env).expect_err("invalid");
    assert!(err.issues().len() >= 3);
    assert_eq!(
        err.to_string(),
        "failed to load `invalid-several-problems.yaml`: 5 problems found"
    );
    let mut sorted = err.issues().to_vec();
    sorted.sort_by_key(|i| (i.line, i.column));
    assert_eq!(sorted, err.issues(), "problems come in file order");
}

#[test]
fn load_unknown_key_points_at_the_key_and_suggests_the_right_one() {
    // Each typo, and the key it must suggest (not merely some close key).
    let cases = [
        ("config:\n  chek_interval: 5\n", (2, 3), "check_interval"),
        ("config:\n  Mode: audit\n", (2, 3), "mode"),
        (
            "containers:\n  - name: w\n    image: x\n    port: [\"80\"]\n",
            (4, 5),
            "ports",
        ),
        (
            "containers:\n  - name: w\n    image: x\n    volume: [/x]\n",
            (4, 5),
            "volumes",
        ),
        (
            "containers:\n  - name: w\n    image: x\n    healtcheck: {test: x}\n",
            (4, 5),
            "healthcheck",
        ),
        (
            "containers:\n  - name: w\n    image: x\n    lables: {a: b}\n",
            (4, 5),
            "labels",
        ),
        (
            "containers:\n  - name: w\n    image: x\n    nodse: [local]\n",
            (4, 5),
            "nodes",
        ),
        (
            "drift_rules:\n  unauthorised_containers: {action: alert}\n",
            (2, 3),
            "unauthorized_containers",
        ),
        (
            "drift_rules:\n  image_drift: {action: alert, grace: 5}\n",
            (2, 32),
            "grace_period",
        ),
        (
            "maintenance_windows:\n  - {start: \"02:00\", start_time: \"02:00\", end_time: \"03:00\"}\n",
            (2, 6),
            "start_time",
        ),
        (
            "inventory:\n  safe_to_remove: [x]\n",
            (2, 3),
            "safe_to_delete",
        ),
        ("allow_emtpy: true\n", (1, 1), "allow_empty"),
    ];
    for (src, (line, column), want) in cases {
        let opts = LoadOptions {
            env: &env,
            base_dir: None,
        };
        let err = load_manifest("t.yaml", src, &opts).expect_err(src);
        let [issue] = err.issues() else {
            panic!("{src}: {}", render(&err))
        };
        assert_eq!((issue.line, issue.column), (line, column), "{src}");
        assert!(issue.message.starts_with("unknown key"), "{src}: {issue}");
        assert_eq!(
            issue.hint.as_deref(),
            Some(format!("did you mean `{want}`?").as_str()),
            "{src}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

fn tcp(host_ip: &str, host_port: Option<u16>, container_port: u16) -> PortBinding {
    PortBinding {
        host_ip: host_ip.into(),
        host_port,
        container_port,
        protocol: Protocol::Tcp,
    }
}

fn mount(kind: MountKind, source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        kind,
        source: source.into(),
        target: target.into(),
        read_only,
    }
}

fn rule(action: Action, grace_period_secs: u64, exceptions: &[&str]) -> Rule {
    Rule {
        action,
        grace_period_secs,
        exceptions: words(exceptions),
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

fn env_of(env: &BTreeMap<String, refinery_core::Secret>) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.expose())).collect()
}

fn local_node(name: &str) -> NodeSpec {
    NodeSpec::local(name)
}
