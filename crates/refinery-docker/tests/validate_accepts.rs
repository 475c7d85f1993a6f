//! Issue 27, as a property: for generated manifests that `refinery validate` accepts (that
//! `load_manifest` loads), creating every declared container on the real engine never fails with
//! a format or validation error from the engine, only with a cause on the node (an image that is
//! not there, a bind source that does not exist).
//!
//! Generated values mix what the grammars accept with what they refuse (capitals in a repository,
//! a tag too long, a short digest, `=` in a label key, an unknown capability, a name too long…),
//! so both sides of each grammar are drawn. Every name carries the run id, every container the
//! run label `io.refinery.test=<id>`; the run's containers, images and volumes are removed on
//! drop. Cases are bounded to keep this under a minute.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use refinery_core::{ContainerRuntime, CreateRequest, LoadOptions, RuntimeError, load_manifest};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{self, TestRun};

/// The shared test image (kept between runs).
const IMAGE: &str = "refinery-test-busybox:latest";

const CASES: u32 = 256;

/// One generated container entry, as YAML lines under `containers:`.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    /// The image written in the manifest; `tag_it` says whether the test tags the local test
    /// image under it (so it exists) before creating.
    image: String,
    ports: Vec<String>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    volumes: Vec<String>,
    cap_add: Vec<String>,
    restart: Option<String>,
    healthcheck: Option<(String, String)>,
    command: Option<Vec<String>>,
}

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn name_part() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}",
        1 => "[a-z]{1,3}[/ :@é][a-z]{1,3}",
        1 => (200usize..300).prop_map(|n| "n".repeat(n)),
    ]
}

fn image(run: String) -> impl Strategy<Value = String> {
    let registry = prop::sample::select(vec![
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "localhost/",
        "localhost:5000/",
        "127.0.0.1:5000/",
        "registry.example.com/",
        "Registry.Example.com:443/",
        "[::1]:5000/",
        "reg_istry.io/",
    ]);
    let path = prop_oneof![
        20 => "[a-z0-9]{1,6}((__|[._]|-{1,2})[a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,5}){0,2}",
        1 => "[A-Za-z0-9._/-]{1,12}",
    ];
    let tag = prop_oneof![
        10 => Just(String::new()),
        20 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}".prop_map(|t| format!(":{t}")),
        1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{120,130}".prop_map(|t| format!(":{t}")),
        1 => "[.:@A-Za-z-]{0,4}".prop_map(|t| format!(":{t}")),
    ];
    let digest = prop_oneof![
        30 => Just(String::new()),
        1 => "[0-9a-f]{64}".prop_map(|h| format!("@sha256:{h}")),
        1 => "[0-9a-fA-F]{3,70}".prop_map(|h| format!("@sha256:{h}")),
        1 => "[0-9a-f]{32}".prop_map(|h| format!("@md5:{h}")),
    ];
    (registry, path, tag, digest).prop_map(move |(r, p, t, d)| format!("{r}rt{run}{p}{t}{d}"))
}

fn env_key() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[A-Z_][A-Z0-9_]{0,10}",
        1 => "[a-z.-]{1,6}",
        1 => "[A-Z]{1,3}[= \t][A-Z]{0,3}",
        1 => Just(String::new()),
    ]
}

fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-zA-Z0-9 ./:=-]{0,12}",
        1 => Just("a\0b".to_owned()),
    ]
}

fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-z][a-z0-9.-]{0,10}(/[a-z]{1,4})?",
        1 => "[a-z]{1,3}[= \n][a-z]{1,3}",
        1 => Just("io.refinery.owner".to_owned()),
    ]
}

fn port() -> impl Strategy<Value = String> {
    // Host ports are only bound at start; creating binds nothing.
    prop_oneof![
        5 => (1u32..70000).prop_map(|p| p.to_string()),
        5 => (1u32..65536, 1u32..65536).prop_map(|(h, c)| format!("{h}:{c}")),
        5 => (1u32..65000, 0u32..5).prop_map(|(p, n)| format!("127.0.0.1:{p}-{}:{p}-{}/udp", p + n, p + n)),
        5 => (1u32..65536).prop_map(|p| format!("[::1]:{p}:{p}/sctp")),
        1 => "[0-9:./a-z-]{1,12}",
    ]
}

fn volume(run: String, dir: String) -> impl Strategy<Value = String> {
    let mode = prop::sample::select(vec!["", "", "", ":ro", ":rw", ":ro,z", ":bogus"]);
    prop_oneof![
        // Named (the engine makes it at create; the run's prefix gets it removed).
        (
            "[a-zA-Z0-9_.-]{0,8}",
            "/[a-z]{1,6}(/[a-z]{1,4})?",
            mode.clone()
        )
            .prop_map(move |(n, t, m)| format!("rt-{run}-{n}:{t}{m}")),
        // Bind from the run's own directory (which exists), or below it (which may not).
        ("(/[a-z]{1,4})?", "/[a-z]{1,6}", mode)
            .prop_map(move |(sub, t, m)| format!("{dir}{sub}:{t}{m}")),
        // Anonymous, or (rarely) the container's root.
        "/[a-z]{0,6}",
    ]
}

fn capability() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "NET_ADMIN",
        "net_admin",
        "CAP_SYS_TIME",
        "SYS_PTRACE",
        "MKNOD",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
        "ALL",
        "CHOWN",
        "KILL",
        "SETUID",
        "NET_RAW",
        "sys_nice",
        "NET_ADMN",
        "CAP_FOO",
    ])
    .prop_map(str::to_owned)
}

fn duration() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0s", "1ms", "500ms", "1s", "10s", "90", "1h30m", "14d", "3650d", "5s", "30s", "1m", "2m",
        "15s", "45s", "3s", "3651d", "1us", "-1s",
    ])
    .prop_map(str::to_owned)
}

fn entry(run: String, dir: String) -> impl Strategy<Value = Entry> {
    (
        name_part(),
        image(run.clone()),
        prop::collection::vec(port(), 0..3),
        prop::collection::vec((env_key(), text_value()), 0..3),
        prop::collection::vec((label_key(), text_value()), 0..3),
        prop::collection::vec(volume(run.clone(), dir), 0..3),
        prop::collection::vec(capability(), 0..2),
        prop::option::of(prop::sample::select(vec![
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
            "always",
            "no",
            "sometimes",
        ])),
        prop::option::of((duration(), duration())),
        prop::option::of(prop::collection::vec(text_value(), 1..3)),
    )
        .prop_map(
            move |(name, image, ports, env, labels, volumes, cap_add, restart, hc, command)| {
                Entry {
                    name: format!("rt-{run}-{name}"),
                    image,
                    ports,
                    env,
                    labels,
                    volumes,
                    cap_add,
                    restart: restart.map(str::to_owned),
                    healthcheck: hc,
                    command,
                }
            },
        )
}

fn manifest(entries: &[Entry]) -> String {
    let mut m = String::from("containers:\n");
    for e in entries {
        m.push_str(&format!(
            "  - name: {}\n    image: {}\n",
            q(&e.name),
            q(&e.image)
        ));
        let list = |items: &[String]| items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", ");
        if !e.ports.is_empty() {
            m.push_str(&format!("    ports: [{}]\n", list(&e.ports)));
        }
        if !e.volumes.is_empty() {
            m.push_str(&format!("    volumes: [{}]\n", list(&e.volumes)));
        }
        if !e.cap_add.is_empty() {
            m.push_str(&format!("    cap_add: [{}]\n", list(&e.cap_add)));
        }
        for (key, pairs) in [("env", &e.env), ("labels", &e.labels)] {
            if !pairs.is_empty() {
                m.push_str(&format!("    {key}:\n"));
                for (k, v) in pairs {
                    m.push_str(&format!("      {}: {}\n", q(k), q(v)));
                }
            }
        }
        if let Some(r) = &e.restart {
            m.push_str(&format!("    restart: {}\n", q(r)));
        }
        if let Some((interval, timeout)) = &e.healthcheck {
            m.push_str(&format!(
                "    healthcheck: {{test: [\"CMD\", \"true\"], interval: {}, timeout: {}}}\n",
                q(interval),
                q(timeout)
            ));
        }
        if let Some(c) = &e.command {
            m.push_str(&format!("    command: [{}]\n", list(c)));
        }
    }
    m
}

/// Whether a create failure comes from the node's state (allowed) rather than from the format of
/// a value (a validation gap).
fn runtime_cause(e: &RuntimeError) -> bool {
    match e {
        RuntimeError::NotFound { .. } | RuntimeError::PortTaken { .. } => true,
        RuntimeError::Other { message, .. } => {
            message.contains("bind source path does not exist")
                || message.contains("no such file or directory")
        }
        _ => false,
    }
}

#[test]
fn validate_accepts_only_what_the_engine_creates() {
    let tokio = tokio::runtime::Runtime::new().expect("tokio runtime");
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    tokio.block_on(async {
        rt.info().await.unwrap_or_else(|e| {
            panic!(
                "this test needs a running Docker engine at `{}`: {e}",
                rt.endpoint()
            )
        });
        testsupport::build_busybox_image(&rt, IMAGE)
            .await
            .expect("build the busybox test image");
    });
    let run = TestRun::new(&rt);
    let dir = run
        .temp_dir("binds")
        .expect("make the bind directory")
        .to_string_lossy()
        .into_owned();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0u32);
    let created = std::cell::Cell::new(0u32);
    let strategy = prop::collection::vec(entry(run.id().to_owned(), dir), 1..4);
    let result = runner.run(&strategy, |entries| {
        let text = manifest(&entries);
        let env = |_: &str| None;
        let Ok(loaded) = load_manifest(
            "refinery.yaml",
            &text,
            &LoadOptions {
                env: &env,
                base_dir: None,
            },
        ) else {
            return Ok(());
        };
        accepted.set(accepted.get() + 1);
        tokio.block_on(async {
            for spec in &loaded.manifest.containers {
                // An image without a digest is made to exist: the engine parses the reference
                // to tag it, which holds the grammar to the engine's too.
                if !spec.image.contains('@') {
                    run.track_image(&spec.image);
                    testsupport::tag_image(&rt, IMAGE, &spec.image)
                        .await
                        .map_err(|e| {
                            TestCaseError::fail(format!(
                                "the engine refused to tag `{}`: {e}\n{text}",
                                spec.image
                            ))
                        })?;
                }
                let mut labels: BTreeMap<String, String> = spec.labels.clone();
                labels.extend(run.labels());
                let req = CreateRequest {
                    name: spec.name.clone(),
                    spec: spec.clone(),
                    labels,
                };
                match rt.create(&req).await {
                    Ok(id) => {
                        created.set(created.get() + 1);
                        let _ = rt.remove(&id).await;
                    }
                    Err(e) if runtime_cause(&e) => {}
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "validate accepted it, the engine refused `{}`: {e}\n{text}",
                            spec.name
                        )));
                    }
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{CASES} manifests generated, {} accepted, {} containers created",
        accepted.get(),
        created.get()
    );
    // The property says something only if the engine saw containers.
    assert!(
        accepted.get() >= 5 && created.get() >= 5,
        "too few generated manifests reached the engine: {} accepted, {} created",
        accepted.get(),
        created.get()
    );
}
