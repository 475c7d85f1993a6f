//! Properties: what Refinery creates shows no drift; spelling does not matter; the safety
//! invariants hold for any rules, modes and states; plans are deterministic and converge.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::subsequence;
use refinery_core::drift::{DiffContext, diff_node};
use refinery_core::labels::{self, normalize_image_ref};
use refinery_core::manifest::{Allowed, MaintenanceWindow, Manifest, Mode, Rule, WindowDay};
use refinery_core::plan::{Plan, StepKind};
use refinery_core::policy::{Action, matches_any, window_active};
use refinery_core::testing::{self, Pass, image_info, observed_from_spec, spec, stray};
use refinery_core::{
    ContainerSpec, ContainerState, Health, Healthcheck, ImageDefaults, LoadOptions, Mount,
    MountKind, Observed, PortBinding, Protocol, RestartPolicy, Secret, load_manifest,
};
use refinery_core::{NetworkAttachment, RuntimeOptions, StackMember};

// ---- generators ----

const IMAGES: [&str; 3] = ["busybox:1.36", "nginx", "registry.local:5000/team/api:2"];
const NAMES: [&str; 10] = [
    "web",
    "api",
    "db",
    "prod-db",
    "prod-web",
    "dev-shell",
    "odoo-dev-1",
    "test-x",
    "refinery",
    "cache",
];
const TARGETS: [&str; 4] = ["/data", "/cache", "/etc/app", "/var/log/app"];
const ENV_KEYS: [&str; 6] = ["PATH", "LANG", "LOG_LEVEL", "DB_PASSWORD", "API_TOKEN", "X"];
const LABEL_KEYS: [&str; 4] = [
    "team",
    "tier",
    "org.opencontainers.image.version",
    "com.example.build",
];

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z/-]{1,6}", 0..3)
}

fn opt_words() -> impl Strategy<Value = Option<Vec<String>>> {
    prop_oneof![Just(None), words().prop_map(Some)]
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:-]{0,6}"
}

fn port() -> impl Strategy<Value = PortBinding> {
    (
        prop_oneof![Just(String::new()), Just("127.0.0.1".to_owned())],
        prop::option::of(8000u16..8004),
        1u16..6,
        prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
    )
        .prop_map(
            |(host_ip, host_port, container_port, protocol)| PortBinding {
                host_ip,
                host_port,
                container_port,
                protocol,
            },
        )
}

fn mount(target: &'static str) -> impl Strategy<Value = Mount> {
    (0..3u8, prop_oneof![Just("v1"), Just("v2")], any::<bool>()).prop_map(
        move |(kind, vol, read_only)| {
            let (kind, source) = match kind {
                0 => (MountKind::Volume, vol.to_owned()),
                1 => (MountKind::Bind, format!("/srv/{vol}")),
                _ => (MountKind::Anonymous, String::new()),
            };
            Mount {
                kind,
                source,
                target: target.to_owned(),
                read_only,
            }
        },
    )
}

fn mounts() -> impl Strategy<Value = Vec<Mount>> {
    (
        prop::option::of(mount(TARGETS[0])),
        prop::option::of(mount(TARGETS[1])),
        prop::option::of(mount(TARGETS[2])),
        prop::option::of(mount(TARGETS[3])),
    )
        .prop_map(|(a, b, c, d)| {
            let mut v: Vec<Mount> = [a, b, c, d].into_iter().flatten().collect();
            v.sort();
            v
        })
}

fn healthcheck(allow_empty_test: bool) -> impl Strategy<Value = Healthcheck> {
    let tests: Vec<Vec<String>> = [
        vec!["CMD", "true"],
        vec!["CMD-SHELL", "wget -q localhost"],
        vec!["NONE"],
        if allow_empty_test {
            vec![]
        } else {
            vec!["CMD", "false"]
        },
    ]
    .into_iter()
    .map(|t| t.into_iter().map(str::to_owned).collect())
    .collect();
    (
        prop::sample::select(tests),
        prop_oneof![Just(0u64), Just(10_000), Just(30_000)],
        prop_oneof![Just(0u64), Just(5_000)],
        prop_oneof![Just(0u64), Just(1_000)],
        0u32..4,
    )
        .prop_map(
            |(test, interval_ms, timeout_ms, start_period_ms, retries)| Healthcheck {
                test,
                interval_ms,
                timeout_ms,
                start_period_ms,
                retries,
            },
        )
}

fn restart() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::No),
        Just(RestartPolicy::Always),
        Just(RestartPolicy::UnlessStopped),
        (0u32..4).prop_map(RestartPolicy::OnFailure),
    ]
}

fn env() -> impl Strategy<Value = BTreeMap<String, Secret>> {
    prop::collection::btree_map(
        prop::sample::select(ENV_KEYS.to_vec()),
        (value(), any::<bool>()),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, (v, sensitive))| (k.to_owned(), Secret::new(v, sensitive)))
            .collect()
    })
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(prop::sample::select(LABEL_KEYS.to_vec()), value(), 0..3)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A declared container named `name`, as the manifest loader could produce it.
fn container(name: &'static str) -> impl Strategy<Value = ContainerSpec> {
    (
        prop::sample::select(IMAGES.to_vec()),
        prop::collection::vec(port(), 0..3),
        env(),
        mounts(),
        (opt_words(), opt_words()),
        label_map(),
        restart(),
        prop::option::of(healthcheck(false)),
    )
        .prop_map(
            move |(
                image,
                ports,
                env,
                mounts,
                (command, entrypoint),
                labels,
                restart,
                healthcheck,
            )| ContainerSpec {
                image: image.to_owned(),
                ports,
                env,
                mounts,
                command,
                entrypoint,
                labels,
                restart,
                healthcheck,
                ..spec(name)
            },
        )
}

/// The defaults an image gives its containers.
fn image_defaults() -> impl Strategy<Value = ImageDefaults> {
    (
        prop::collection::btree_map(prop::sample::select(ENV_KEYS.to_vec()), value(), 0..3),
        opt_words(),
        prop::option::of(prop::collection::vec("[a-z/-]{1,6}", 1..3)),
        label_map(),
        prop::option::of(healthcheck(true)),
        subsequence(TARGETS.to_vec(), 0..3),
    )
        .prop_map(
            |(env, command, entrypoint, labels, healthcheck, volumes)| ImageDefaults {
                env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                command,
                entrypoint,
                labels,
                healthcheck,
                exposed_ports: Vec::new(),
                volumes: volumes.into_iter().map(str::to_owned).collect(),
            },
        )
}

fn ctx() -> DiffContext {
    DiffContext {
        node: testing::NODE.into(),
        ..DiffContext::default()
    }
}

/// Engine options a compose service may set.
fn options() -> impl Strategy<Value = RuntimeOptions> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec!["p_default", "p_back", "p_front"]),
            subsequence(vec!["web", "www", "api"], 0..3),
            0..3,
        ),
        prop::option::of(prop::sample::select(vec!["1000", "nobody", "0:0"])),
        prop::option::of(prop::sample::select(vec!["/app", "/tmp"])),
        any::<bool>(),
        subsequence(vec!["no-new-privileges:true", "label:disable"], 0..2),
        prop::option::of(prop::sample::select(vec![64i64 << 20, 1 << 30])),
        prop::option::of(prop::sample::select(vec![500_000_000i64, 2_000_000_000])),
        subsequence(vec!["db:10.0.0.2", "cache:10.0.0.3"], 0..2),
        (
            any::<bool>(),
            subsequence(vec!["CAP_NET_ADMIN", "CAP_SYS_TIME"], 0..2),
            subsequence(vec!["ALL", "CAP_MKNOD"], 0..2),
        ),
    )
        .prop_map(
            |(nets, user, dir, read_only, sec, mem, cpus, hosts, (privileged, add, drop))| {
                RuntimeOptions {
                    networks: nets
                        .into_iter()
                        .map(|(n, a)| NetworkAttachment {
                            name: n.to_owned(),
                            aliases: a.into_iter().map(str::to_owned).collect(),
                            ..NetworkAttachment::default()
                        })
                        .collect(),
                    user: user.map(str::to_owned),
                    working_dir: dir.map(str::to_owned),
                    read_only,
                    security_opt: sec.into_iter().map(str::to_owned).collect(),
                    memory_bytes: mem,
                    nano_cpus: cpus,
                    extra_hosts: hosts.into_iter().map(str::to_owned).collect(),
                    privileged,
                    cap_add: add.into_iter().map(str::to_owned).collect(),
                    cap_drop: drop.into_iter().map(str::to_owned).collect(),
                    ..RuntimeOptions::default()
                }
            },
        )
}

/// Ways the engine's options can differ from what was declared (each is config drift).
fn tamper_options(o: &mut RuntimeOptions, which: u8) -> bool {
    match which % 10 {
        0 if !o.networks.is_empty() => {
            o.networks.remove(0);
            true
        }
        1 if o.user.is_some() => {
            o.user = Some("intruder".into());
            true
        }
        2 if o.working_dir.is_some() => {
            o.working_dir = Some("/elsewhere".into());
            true
        }
        3 => {
            o.read_only = !o.read_only;
            true
        }
        4 => {
            o.security_opt.push("seccomp=unconfined".into());
            true
        }
        5 => {
            o.memory_bytes = Some(o.memory_bytes.unwrap_or(0) + 1);
            true
        }
        6 => {
            o.nano_cpus = Some(o.nano_cpus.unwrap_or(0) + 1);
            true
        }
        7 => {
            o.extra_hosts.push("evil:6.6.6.6".into());
            true
        }
        8 => {
            o.privileged = !o.privileged;
            true
        }
        9 if !o.cap_add.iter().any(|c| c == "CAP_SYS_ADMIN") => {
            o.cap_add.push("CAP_SYS_ADMIN".into());
            true
        }
        _ => false,
    }
}

// ---- a container Refinery created shows no drift ----

proptest! {
    #[test]
    fn prop_container_created_from_spec_shows_no_drift(s in container("web"), img in image_defaults()) {
        let observed = testing::observed_node(&[&s], &img);
        let report = diff_node(&[&s], &observed, &ctx());
        prop_assert!(report.drifts.is_empty(), "{:#?}\nobserved: {:#?}", report.drifts, observed.containers[0]);
        prop_assert_eq!(report.in_sync.len(), 1);
    }

    #[test]
    fn prop_container_with_options_created_from_spec_shows_no_drift(s in container("web"), opts in options(), stacked in any::<bool>(), img in image_defaults()) {
        let mut s = s;
        s.options = opts;
        if stacked {
            s.stack = Some(Box::new(StackMember {
                project: "p".into(),
                service: "web".into(),
                number: 1,
                working_dir: "/repo".into(),
                config_files: "docker-compose.yml".into(),
                depends_on: Vec::new(),
                build: None,
            }));
        }
        let observed = testing::observed_node(&[&s], &img);
        let report = diff_node(&[&s], &observed, &ctx());
        prop_assert!(report.drifts.is_empty(), "{:#?}\nobserved: {:#?}", report.drifts, observed.containers[0]);
        prop_assert_eq!(report.in_sync.len(), 1);
    }

    #[test]
    fn prop_container_with_tampered_options_is_config_drift(s in container("web"), opts in options(), which in any::<u8>(), img in image_defaults()) {
        let mut s = s;
        s.options = opts;
        let mut observed = testing::observed_node(&[&s], &img);
        let tampered = tamper_options(&mut observed.containers[0].options, which);
        let report = diff_node(&[&s], &observed, &ctx());
        let config = report.drifts.iter().any(|d| d.kind == refinery_core::DriftKind::Config);
        prop_assert_eq!(config, tampered, "{:#?}", report.drifts);
    }

    #[test]
    fn prop_container_created_from_spec_without_local_image_shows_no_drift(s in container("web"), img in image_defaults()) {
        // The image was untagged since: compared by reference, its defaults still on the container.
        let observed = Observed { containers: vec![observed_from_spec(&s, &img)], ..Observed::default() };
        prop_assert!(diff_node(&[&s], &observed, &ctx()).drifts.is_empty());
    }
}

// ---- spelling: env order, port short/long form ----

fn render_manifest(env: &[(String, String)], env_as_list: bool, ports: &[String]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let env = if env_as_list {
        let items: Vec<String> = env.iter().map(|(k, v)| q(&format!("{k}={v}"))).collect();
        format!("[{}]", items.join(", "))
    } else {
        let items: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{}: {}", q(k), q(v)))
            .collect();
        format!("{{{}}}", items.join(", "))
    };
    let ports: Vec<String> = ports.iter().map(|p| q(p)).collect();
    format!(
        "nodes: [{{name: lyra}}]\ncontainers:\n  - name: web\n    image: busybox:1.36\n    node: lyra\n    env: {env}\n    ports: [{}]\n",
        ports.join(", ")
    )
}

fn port_forms(p: &PortBinding) -> (String, String) {
    let host = p.host_port.map(|h| h.to_string()).unwrap_or_default();
    let ip = if p.host_ip.is_empty() {
        "0.0.0.0"
    } else {
        p.host_ip.as_str()
    };
    let short = match (p.host_ip.is_empty(), p.host_port, p.protocol) {
        (true, None, Protocol::Tcp) => p.container_port.to_string(),
        (true, Some(h), Protocol::Tcp) => format!("{h}:{}", p.container_port),
        (true, Some(h), proto) => format!("{h}:{}/{proto}", p.container_port),
        (true, None, proto) => format!("{}/{proto}", p.container_port),
        (false, _, Protocol::Tcp) => format!("{}:{host}:{}", p.host_ip, p.container_port),
        (false, _, proto) => format!("{}:{host}:{}/{proto}", p.host_ip, p.container_port),
    };
    (
        short,
        format!("{ip}:{host}:{}/{}", p.container_port, p.protocol),
    )
}

fn load(src: &str) -> Manifest {
    let env = |_: &str| None;
    match load_manifest(
        "refinery.yaml",
        src,
        &LoadOptions {
            env: &env,
            base_dir: None,
        },
    ) {
        Ok(l) => l.manifest,
        Err(e) => panic!("{e}: {:?}\n{src}", e.issues()),
    }
}

proptest! {
    #[test]
    fn prop_env_order_and_port_form_do_not_matter(
        env in prop::collection::btree_map("[A-Z][A-Z_]{0,5}", "[a-z0-9 .:/-]{0,6}", 0..5),
        seed in any::<u64>(),
        as_list in any::<(bool, bool)>(),
        ports in prop::collection::btree_set(port(), 0..4),
        forms in prop::collection::vec(any::<(bool, bool)>(), 4),
        img in image_defaults(),
    ) {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut shuffled = env.clone();
        // A deterministic permutation from the seed.
        let n = shuffled.len().max(1);
        shuffled.rotate_left(usize::try_from(seed % n as u64).unwrap_or(0));
        if seed & 1 == 1 { shuffled.reverse(); }
        // A host port is published once (the manifest rejects the rest).
        let mut taken = BTreeSet::new();
        let ports: Vec<PortBinding> = ports
            .into_iter()
            .filter(|p| p.host_port.is_none_or(|h| taken.insert((p.host_ip.clone(), h, p.protocol))))
            .collect();
        let spell = |pick: &dyn Fn(usize) -> bool| -> Vec<String> {
            ports.iter().enumerate().map(|(i, p)| {
                let (short, long) = port_forms(p);
                if pick(i) { long } else { short }
            }).collect()
        };
        let a = load(&render_manifest(&env, as_list.0, &spell(&|i| forms[i].0)));
        let b = load(&render_manifest(&shuffled, as_list.1, &spell(&|i| forms[i].1)));
        prop_assert_eq!(&a.containers, &b.containers);
        let mut want = ports.clone();
        want.sort();
        let mut got = a.containers[0].ports.clone();
        got.sort();
        prop_assert_eq!(got, want);
        // What Refinery created from one spelling is in sync with the other.
        let observed = testing::observed_node(&[&a.containers[0]], &img);
        prop_assert!(diff_node(&[&b.containers[0]], &observed, &ctx()).drifts.is_empty());
    }
}

// ---- whole worlds: rules, modes, windows, states ----

#[derive(Debug, Clone, Copy)]
enum Mutation {
    EnvChanged,
    Exited,
    Paused,
    Unhealthy,
    OldImage,
    ExtraLabel,
    PortChanged,
    RestartChanged,
}

impl Mutation {
    const ALL: [Mutation; 8] = [
        Mutation::EnvChanged,
        Mutation::Exited,
        Mutation::Paused,
        Mutation::Unhealthy,
        Mutation::OldImage,
        Mutation::ExtraLabel,
        Mutation::PortChanged,
        Mutation::RestartChanged,
    ];
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop::sample::select(Mutation::ALL.to_vec())
}

fn apply_mutation(o: &mut refinery_core::ObservedContainer, m: Mutation) {
    match m {
        Mutation::EnvChanged => {
            o.env.insert("LOG_LEVEL".into(), "tampered".into());
        }
        Mutation::Exited => {
            o.state = ContainerState::Exited;
            o.exit_code = Some(137);
        }
        Mutation::Paused => o.state = ContainerState::Paused,
        Mutation::Unhealthy => o.health = Health::Unhealthy,
        Mutation::OldImage => o.image_id = testing::image_id("old:image"),
        Mutation::ExtraLabel => {
            o.labels.insert("owner".into(), "bob".into());
        }
        Mutation::PortChanged => o.ports.push(PortBinding {
            host_ip: String::new(),
            host_port: Some(9999),
            container_port: 99,
            protocol: Protocol::Tcp,
        }),
        Mutation::RestartChanged => {
            o.restart = if o.restart == RestartPolicy::Always {
                RestartPolicy::No
            } else {
                RestartPolicy::Always
            };
        }
    }
}

fn rule(actions: &'static [Action]) -> impl Strategy<Value = Option<Rule>> {
    prop::option::of(
        (
            prop::sample::select(actions.to_vec()),
            prop_oneof![Just(0u64), Just(60)],
            any::<bool>(),
        )
            .prop_map(|(action, grace_period_secs, exceptions)| Rule {
                action,
                grace_period_secs,
                exceptions: if exceptions {
                    vec!["dev-*".into(), "test-*".into()]
                } else {
                    Vec::new()
                },
            }),
    )
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![3 => Just(Mode::Enforce), 1 => Just(Mode::Audit), 1 => Just(Mode::ReadOnly)]
}

fn window() -> impl Strategy<Value = MaintenanceWindow> {
    (
        prop_oneof![
            Just(WindowDay::Daily),
            Just(WindowDay::Sunday),
            Just(WindowDay::Monday)
        ],
        0u32..1440,
        1u32..=1440,
        prop_oneof![Just("UTC"), Just("Asia/Singapore")],
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(day, start_minute, end_minute, tz, (disable_auto_rollback, allow_drift))| {
                MaintenanceWindow {
                    name: "w".into(),
                    day,
                    start_minute,
                    end_minute,
                    timezone: tz.into(),
                    disable_auto_rollback,
                    allow_drift,
                }
            },
        )
}

/// How a declared container stands on the engine.
#[derive(Debug, Clone)]
struct Declared {
    spec: ContainerSpec,
    present: bool,
    mutations: Vec<Mutation>,
}

#[derive(Debug, Clone)]
struct World {
    manifest: Manifest,
    images: BTreeMap<String, ImageDefaults>,
    observed: Observed,
    pass: Pass,
    /// Names Refinery must recognise as itself.
    self_name: Option<String>,
}

fn declared(name: &'static str) -> impl Strategy<Value = Declared> {
    (
        container(name),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(Action::Alert),
                Just(Action::Ignore),
                Just(Action::Recreate),
                Just(Action::Restart)
            ],
        ),
        prop::bool::weighted(0.85),
        prop::collection::vec(mutation(), 0..3),
    )
        .prop_map(|(mut spec, drift_action, present, mutations)| {
            spec.drift_action = drift_action;
            Declared {
                spec,
                present,
                mutations,
            }
        })
}

fn world() -> impl Strategy<Value = World> {
    let names = subsequence(NAMES.to_vec(), 0..=NAMES.len());
    let strays = subsequence(NAMES.to_vec(), 0..4);
    (
        names.prop_flat_map(|names| names.into_iter().map(declared).collect::<Vec<_>>()),
        strays,
        prop::collection::vec(image_defaults(), IMAGES.len()),
        (
            rule(&[Action::Terminate, Action::Alert, Action::Ignore]),
            rule(&[Action::Recreate, Action::Alert, Action::Ignore]),
            rule(&[
                Action::Rollback,
                Action::Recreate,
                Action::Alert,
                Action::Ignore,
            ]),
            rule(&[
                Action::Recreate,
                Action::Restart,
                Action::Rollback,
                Action::Alert,
                Action::Ignore,
            ]),
            rule(&[
                Action::Restart,
                Action::Recreate,
                Action::Alert,
                Action::Ignore,
            ]),
        ),
        (mode(), prop::option::weighted(0.3, mode()), any::<bool>()),
        (
            subsequence(vec!["prod-*", "refinery", "cache"], 0..=3),
            any::<bool>(),
        ),
        prop::collection::vec(window(), 0..2),
        (0i64..10_080, any::<bool>(), any::<bool>()),
        prop::option::of((prop::sample::select(NAMES.to_vec()), any::<bool>())),
    )
        .prop_map(
            |(
                declared,
                strays,
                defaults,
                rules,
                (mode, node_mode, allow_empty),
                (protected, allowed),
                windows,
                (minutes, honor_grace, seen_long_ago),
                self_mark,
            )| {
                let images: BTreeMap<String, ImageDefaults> = IMAGES
                    .iter()
                    .map(|i| (*i).to_owned())
                    .zip(defaults)
                    .collect();
                let mut m = testing::manifest(declared.iter().map(|d| d.spec.clone()).collect());
                m.config.mode = mode;
                m.nodes[0].mode = node_mode;
                m.allow_empty = allow_empty;
                (
                    m.drift_rules.unauthorized_containers,
                    m.drift_rules.missing_containers,
                    m.drift_rules.image_drift,
                    m.drift_rules.config_drift,
                    m.drift_rules.status_drift,
                ) = rules;
                m.inventory.protected = protected.into_iter().map(str::to_owned).collect();
                if allowed {
                    m.inventory.allowed = Allowed {
                        containers: vec!["odoo-dev*".into()],
                        ..Allowed::default()
                    };
                }
                m.maintenance_windows = windows;

                let mut observed = Observed::default();
                for (reference, d) in &images {
                    observed
                        .images
                        .insert(normalize_image_ref(reference), image_info(reference, d));
                }
                for d in &declared {
                    if d.present {
                        let mut o = observed_from_spec(&d.spec, &images[&d.spec.image]);
                        for &mu in &d.mutations {
                            apply_mutation(&mut o, mu);
                        }
                        observed.containers.push(o);
                    }
                }
                for name in strays {
                    if !declared.iter().any(|d| d.spec.name == name) {
                        observed.containers.push(stray(name, "adminer:4"));
                    }
                }
                let now = testing::now()
                    .checked_add(SignedDuration::from_mins(minutes))
                    .unwrap_or_else(|_| testing::now());
                let mut pass = Pass::default().now(now).honor_grace(honor_grace);
                let mut self_name = None;
                if let Some((name, by_label)) = self_mark
                    && let Some(c) = observed.containers.iter_mut().find(|c| c.name == name)
                {
                    if by_label {
                        c.labels.insert(labels::CONTROLLER.into(), "true".into());
                    } else {
                        pass = pass.self_container_id(&c.id[..12]);
                    }
                    self_name = Some(name.to_owned());
                }
                if seen_long_ago {
                    // Every drift already seen an hour ago: grace periods are over.
                    let first = Pass::default().honor_grace(false).run(&m, &observed);
                    for d in &first.report.drifts {
                        pass = pass.first_seen(
                            &refinery_core::policy::drift_key(d),
                            now - SignedDuration::from_hours(1),
                        );
                    }
                }
                World {
                    manifest: m,
                    images,
                    observed,
                    pass,
                    self_name,
                }
            },
        )
}

fn writes(p: &Plan) -> Vec<(String, StepKind)> {
    p.writes()
        .map(|s| (s.id.name().to_owned(), s.kind))
        .collect()
}

/// The engine after a plan's writes, as the adapters would leave it.
fn apply(w: &World, p: &Plan) -> Observed {
    let mut observed = w.observed.clone();
    for step in p.writes() {
        let name = step.id.name();
        match step.kind {
            StepKind::Remove => observed.containers.retain(|c| c.name != name),
            StepKind::Create | StepKind::Recreate | StepKind::Rollback => {
                let spec = w
                    .manifest
                    .containers
                    .iter()
                    .find(|c| c.name == name)
                    .expect("declared");
                let defaults = &w.images[&spec.image];
                let fresh = observed_from_spec(spec, defaults);
                observed.containers.retain(|c| c.name != name);
                observed.containers.push(fresh);
                observed.images.insert(
                    normalize_image_ref(&spec.image),
                    image_info(&spec.image, defaults),
                );
            }
            StepKind::Restart | StepKind::Start | StepKind::Unpause => {
                let c = observed
                    .containers
                    .iter_mut()
                    .find(|c| c.name == name)
                    .expect("observed");
                c.state = ContainerState::Running;
                c.exit_code = None;
                c.health = match &c.healthcheck {
                    Some(h) if h.test.first().is_some_and(|t| t != "NONE") => Health::Healthy,
                    _ => Health::None,
                };
            }
            other => unreachable!("{other} does not write"),
        }
    }
    observed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_protected_and_self_are_never_written(w in world()) {
        let e = w.pass.run(&w.manifest, &w.observed);
        for (name, kind) in writes(&e.plan) {
            prop_assert!(!matches_any(&name, &w.manifest.inventory.protected), "{kind} on protected `{name}`");
            prop_assert!(w.self_name.as_deref() != Some(name.as_str()), "{kind} on refinery itself (`{name}`)");
        }
    }

    #[test]
    fn prop_only_explicit_terminate_removes_undeclared(w in world()) {
        let e = w.pass.run(&w.manifest, &w.observed);
        let declared: BTreeSet<&str> = w.manifest.containers.iter().map(|c| c.name.as_str()).collect();
        let rule = w.manifest.drift_rules.unauthorized_containers.as_ref();
        for (name, kind) in writes(&e.plan) {
            if kind == StepKind::Remove {
                prop_assert!(!declared.contains(name.as_str()), "removed declared `{name}`");
                prop_assert_eq!(rule.map(|r| r.action), Some(Action::Terminate));
                prop_assert!(!rule.is_some_and(|r| matches_any(&name, &r.exceptions)));
                prop_assert!(!matches_any(&name, &w.manifest.inventory.allowed.containers));
                prop_assert!(!w.manifest.is_empty() || w.manifest.allow_empty, "pruned on an empty manifest");
            }
        }
    }

    #[test]
    fn prop_read_only_plans_no_write_and_audit_only_alerts(w in world()) {
        let e = w.pass.run(&w.manifest, &w.observed);
        match w.manifest.mode_of(testing::NODE) {
            Mode::ReadOnly => prop_assert!(writes(&e.plan).is_empty(), "{:?}", writes(&e.plan)),
            Mode::Audit => {
                for s in &e.plan.steps {
                    prop_assert!(
                        matches!(s.kind, StepKind::Alert | StepKind::Ignore | StepKind::Protected),
                        "{} for {} in audit mode", s.kind, s.id
                    );
                }
            }
            Mode::Enforce => {}
        }
    }

    #[test]
    fn prop_plan_is_deterministic(w in world(), rotate in any::<usize>()) {
        let a = w.pass.run(&w.manifest, &w.observed);
        let b = w.pass.run(&w.manifest, &w.observed);
        prop_assert_eq!(&a, &b);
        // The order the engine lists containers in does not matter either.
        let mut shuffled = w.observed.clone();
        let n = shuffled.containers.len().max(1);
        shuffled.containers.rotate_left(rotate % n);
        shuffled.containers.reverse();
        prop_assert_eq!(&a.plan, &w.pass.run(&w.manifest, &shuffled).plan);
    }

    #[test]
    fn prop_applying_the_plan_converges(w in world()) {
        let e = w.pass.run(&w.manifest, &w.observed);
        let after = apply(&w, &e.plan);
        let again = w.pass.run(&w.manifest, &after);
        prop_assert!(
            writes(&again.plan).is_empty(),
            "first: {:?}\nthen: {:?}\n{:#?}",
            writes(&e.plan),
            writes(&again.plan),
            again.plan.steps.iter().filter(|s| s.kind.writes()).collect::<Vec<_>>()
        );
    }
}

// ---- maintenance windows against a civil-time model ----

fn window_model(w: &MaintenanceWindow, now: Timestamp) -> bool {
    let local = now
        .to_zoned(jiff::tz::TimeZone::get(&w.timezone).expect("tz"))
        .datetime();
    let dur = if w.end_minute > w.start_minute {
        w.end_minute - w.start_minute
    } else {
        w.end_minute + 1440 - w.start_minute
    };
    let dur = if w.start_minute == w.end_minute {
        0
    } else {
        dur
    };
    [local.date(), local.date().yesterday().expect("date")]
        .into_iter()
        .any(|day| {
            let on_day = match w.day {
                WindowDay::Daily => true,
                WindowDay::Sunday => day.weekday() == jiff::civil::Weekday::Sunday,
                WindowDay::Monday => day.weekday() == jiff::civil::Weekday::Monday,
                _ => unreachable!(),
            };
            let start = day.to_datetime(jiff::civil::Time::midnight())
                + SignedDuration::from_mins(i64::from(w.start_minute));
            let end = start + SignedDuration::from_mins(i64::from(dur));
            on_day && start <= local && local < end
        })
}

proptest! {
    #[test]
    fn prop_window_active_matches_civil_model(w in window(), minutes in 0i64..20_160) {
        let now = testing::now() + SignedDuration::from_mins(minutes);
        prop_assert_eq!(window_active(&w, now), window_model(&w, now), "{:?} at {}", w, now);
    }
}

// ---- an empty or unparsable desired state never prunes ----

/// Desired states that declare nothing, as people write them; each says `terminate` for what
/// nobody declared.
const EMPTY_MANIFESTS: [&str; 4] = [
    "nodes: [{name: lyra}]\n",
    "nodes: [{name: lyra}]\ncontainers: []\n",
    "nodes: [{name: lyra}]\ncontainers: []\nallow_empty: false\n",
    "nodes: [{name: lyra}]\n# containers:\n#   - {name: web, image: busybox, node: lyra}\ncontainers: []\n",
];

const TERMINATE: &str = "drift_rules:\n  unauthorized_containers: {action: terminate}\n";

/// A manifest that declares two containers and removes everything else.
const FULL_MANIFEST: &str = "nodes: [{name: lyra}]\n\
containers:\n  - name: web\n    image: busybox:1.36\n    node: lyra\n    ports: [\"8080:80\"]\n\
  - {name: api, image: nginx, node: lyra, env: {LOG_LEVEL: info}}\n\
drift_rules:\n  unauthorized_containers: {action: terminate, grace_period: 0}\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_empty_desired_state_never_plans_a_removal(w in world(), text in prop::sample::select(EMPTY_MANIFESTS.to_vec())) {
        // The world's rules, windows and engine, with nothing declared.
        let mut m = w.manifest.clone();
        m.containers.clear();
        m.allow_empty = false;
        m.drift_rules.unauthorized_containers = Some(Rule {
            action: Action::Terminate,
            grace_period_secs: 0,
            exceptions: Vec::new(),
        });
        prop_assert!(m.is_empty());
        let e = w.pass.clone().honor_grace(false).run(&m, &w.observed);
        prop_assert!(writes(&e.plan).is_empty(), "{:?}", writes(&e.plan));

        // The same as a file would say it: refused at load (issue 27), so nothing is planned.
        let env = |_: &str| None;
        let file = format!("{text}{TERMINATE}");
        match load_manifest("refinery.yaml", &file, &LoadOptions { env: &env, base_dir: None }) {
            Ok(l) => prop_assert!(false, "an empty manifest loaded: {:?}", l.manifest),
            Err(e) => prop_assert!(
                e.issues().iter().any(|i| i.message.starts_with("the manifest declares nothing")),
                "{:?}", e.issues()
            ),
        }
        // With `allow_empty: true` it loads, and the rule applies as written.
        let parsed = load(&format!("{}allow_empty: true\n", file.replace("allow_empty: false\n", "")));
        prop_assert!(parsed.is_empty() && parsed.allow_empty);
    }

    /// A corrupted manifest either still loads or fails with issues that name the file and a
    /// line in it; it never yields a half-read manifest. (That a failed load acts on nothing is
    /// `daemon_new_commit_converges_and_broken_or_empty_commit_removes_nothing`.)
    #[test]
    fn prop_corrupt_manifest_fails_with_issues_naming_a_place(
        at in 0usize..FULL_MANIFEST.len(),
        what in prop::sample::select(vec!["\t", ":", "[", "{", "\"", "- ", "\n  ", "}", "&a", "*a", "!!int ", "\u{feff}", ""]),
        truncate in any::<bool>(),
    ) {
        let mut text = FULL_MANIFEST.to_owned();
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        if truncate {
            text.truncate(at);
        }
        text.insert_str(at, what);
        let env = |_: &str| None;
        let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
        match load_manifest("refinery.yaml", &text, &LoadOptions { env: &env, base_dir: None }) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(!e.issues().is_empty(), "{e}\n{text}");
                for i in e.issues() {
                    prop_assert_eq!(i.file.as_str(), "refinery.yaml");
                    prop_assert!(i.line >= 1 && i.line <= lines + 1, "{i:?}\n{text}");
                    prop_assert!(i.column >= 1, "{i:?}");
                    prop_assert!(!i.message.is_empty());
                }
            }
        }
    }
}

// ---- maintenance windows and grace periods ----

/// Rewrites every grace period of `m` (rules the manifest sets) from `graces`.
fn set_graces(m: &mut Manifest, graces: &[u64]) {
    let r = &mut m.drift_rules;
    for (rule, grace) in [
        &mut r.unauthorized_containers,
        &mut r.missing_containers,
        &mut r.image_drift,
        &mut r.config_drift,
        &mut r.status_drift,
    ]
    .into_iter()
    .zip(graces)
    {
        if let Some(rule) = rule {
            rule.grace_period_secs = *grace;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_nothing_acts_inside_a_window_that_forbids_it(w in world(), minute in 0i64..10_080) {
        // Half the time, the pass runs inside the first window.
        let mut w = w;
        if minute % 2 == 0 && let Some(first) = w.manifest.maintenance_windows.first_mut() {
            first.day = WindowDay::Daily;
            first.timezone = "UTC".into();
            let at = w.pass.now.to_zoned(jiff::tz::TimeZone::UTC);
            let m = u32::try_from(i32::from(at.hour()) * 60 + i32::from(at.minute())).unwrap_or(0);
            first.start_minute = m;
            first.end_minute = (m + 1 + u32::try_from(minute % 600).unwrap_or(0)) % 1440;
            if first.end_minute == first.start_minute {
                first.end_minute = (m + 1) % 1440;
            }
            prop_assert!(window_active(first, w.pass.now));
        }
        let now = w.pass.now;
        let active: Vec<&MaintenanceWindow> = w
            .manifest
            .maintenance_windows
            .iter()
            .filter(|win| window_active(win, now))
            .collect();
        let e = w.pass.run(&w.manifest, &w.observed);
        if active.iter().any(|win| win.allow_drift) {
            prop_assert!(writes(&e.plan).is_empty(), "acted inside a window that allows drift: {:?}", writes(&e.plan));
        }
        if active.iter().any(|win| win.disable_auto_rollback) {
            prop_assert!(
                !e.plan.steps.iter().any(|s| s.kind == StepKind::Rollback),
                "rolled back inside a window that disables rollback"
            );
        }
    }

    #[test]
    fn prop_grace_periods_are_never_cut_short(
        w in world(),
        graces in prop::collection::vec(prop::sample::select(vec![0u64, 5, 60, 300, 3600]), 5),
        ages in prop::collection::vec(prop::option::weighted(0.8, -60i64..7200), 1..12),
        honor in prop::bool::weighted(0.9),
    ) {
        let mut m = w.manifest.clone();
        set_graces(&mut m, &graces);
        let now = w.pass.now;
        // When each drift was first seen: some seconds ago (or a little ahead, a skewed clock),
        // or never (seen for the first time now).
        let drifts = Pass::default().now(now).honor_grace(false).run(&m, &w.observed).report.drifts;
        let mut pass = w.pass.clone().honor_grace(honor);
        pass.first_seen.clear();
        for (d, age) in drifts.iter().zip(ages.iter().cycle()) {
            if let Some(age) = age {
                pass = pass.first_seen(&refinery_core::policy::drift_key(d), now - SignedDuration::from_secs(*age));
            }
        }
        let e = pass.run(&m, &w.observed);
        let over = |step: &refinery_core::Step, kind: refinery_core::DriftKind| {
            let grace = refinery_core::policy::rule_for(&m, kind).grace_period_secs;
            let key = format!("{} {kind}", step.id);
            !honor
                || grace == 0
                || pass.first_seen.get(&key).is_some_and(|seen| {
                    *seen + SignedDuration::from_secs(i64::try_from(grace).unwrap_or(i64::MAX)) <= now
                })
        };
        for s in e.plan.writes() {
            prop_assert!(
                s.drifts.iter().any(|k| over(s, *k)),
                "{} on {} while every drift is in its grace period ({:?})", s.kind, s.id, s.drifts
            );
        }
    }
}

// ---- flap protection ----

/// Passes the daemon runs against an engine that undoes every action (a crash loop, a process
/// that keeps editing the container back), gated as `daemon::plan_node`/`finish_node` gate them:
/// a suspended resource is not acted on, each action is recorded.
fn flapping_passes(
    m: &Manifest,
    observed: &Observed,
    rule: refinery_core::manifest::Flapping,
    gaps: &[i64],
) -> BTreeMap<String, Vec<Timestamp>> {
    let mut state = refinery_core::daemon_state::DaemonState::default();
    let mut acted: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
    let mut now = testing::now();
    for gap in gaps {
        now += SignedDuration::from_secs(*gap);
        let drifts = Pass::default().now(now).run(m, observed).report.drifts;
        state.track_drifts(testing::NODE, &drifts, now);
        let mut pass = Pass::default().now(now);
        pass.first_seen.clone_from(&state.first_seen);
        let e = pass.run(m, observed);
        for step in e.plan.writes() {
            let id = step.id.to_string();
            let hash = m
                .containers
                .iter()
                .find(|c| c.name == step.id.name())
                .map(labels::spec_hash);
            if state.is_suspended(&id, hash.as_deref()) {
                continue;
            }
            acted.entry(id.clone()).or_default().push(now);
            let _ = state.record_action(&id, hash.as_deref(), now, rule);
        }
        state.forget_old_actions(now, rule);
    }
    acted
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn prop_flap_protection_bounds_actions_per_window(
        w in world(),
        max_actions in 1u32..6,
        window_secs in prop::sample::select(vec![60u64, 300, 600, 3600]),
        gaps in prop::collection::vec(prop_oneof![3 => 1i64..120, 1 => 120i64..4000], 1..40),
    ) {
        let rule = refinery_core::manifest::Flapping { max_actions, window_secs };
        let mut m = w.manifest.clone();
        m.drift_rules.flapping = Some(rule);
        let acted = flapping_passes(&m, &w.observed, rule, &gaps);
        let window = SignedDuration::from_secs(i64::try_from(window_secs).unwrap_or(i64::MAX));
        for (id, times) in &acted {
            for (i, start) in times.iter().enumerate() {
                let within = times[i..].iter().take_while(|t| t.duration_since(*start) < window).count();
                prop_assert!(
                    within <= max_actions as usize,
                    "{within} actions on {id} within {window_secs}s (limit {max_actions}): {times:?}"
                );
            }
        }
    }
}
