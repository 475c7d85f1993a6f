//! Config drift, one field per container: each is made by hand with one field off, `plan` names
//! exactly that field, `apply` recreates it and `plan` is in sync again.

use refinery_core::{ContainerSpec, Healthcheck, PortBinding, Protocol, RestartPolicy, Secret};

use crate::common::{Env, IMAGE};

/// One container: what the manifest says beyond name and image, how the hand-made one differs,
/// and the field `plan` must report.
struct Case {
    suffix: &'static str,
    yaml: String,
    by_hand: Box<dyn Fn(&mut ContainerSpec)>,
    field: &'static str,
}

fn case(
    suffix: &'static str,
    yaml: impl Into<String>,
    by_hand: impl Fn(&mut ContainerSpec) + 'static,
    field: &'static str,
) -> Case {
    Case {
        suffix,
        yaml: yaml.into(),
        by_hand: Box::new(by_hand),
        field,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

async fn config_drift_is_found_and_fixed(env: &Env, cases: &[Case]) {
    let mut body = String::from("containers:\n");
    for c in cases {
        body.push_str(&format!(
            "  - name: {}\n    image: {IMAGE}\n{}",
            env.name(c.suffix),
            c.yaml
        ));
    }
    env.commit_manifest(&body);
    let mut before = Vec::new();
    for c in cases {
        let mut spec = env.spec(c.suffix);
        (c.by_hand)(&mut spec);
        before.push(env.create_by_hand(c.suffix, spec).await);
    }

    let plan = env.refinery(&["plan", "--json"]).await;
    plan.code(3);
    let json = plan.json();
    let steps = json["nodes"][0]["steps"]
        .as_array()
        .expect("steps is an array");
    assert_eq!(steps.len(), cases.len(), "{}", plan.transcript());
    for c in cases {
        let id = format!("docker/local/container/{}", env.name(c.suffix));
        let step = steps
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no step for {id}\n{}", plan.transcript()));
        assert_eq!(step["kind"], "recreate", "{id}: {step}");
        assert_eq!(
            step["drifts"],
            serde_json::json!(["config"]),
            "{id}: {step}"
        );
        let fields: Vec<&str> = step["changes"]
            .as_array()
            .expect("changes is an array")
            .iter()
            .filter_map(|ch| ch["field"].as_str())
            .collect();
        assert_eq!(fields, [c.field], "{id}: {step}");
    }
    // The table shows the field change too.
    let table = env.refinery(&["plan"]).await;
    table.code(3);
    for c in cases {
        table.stdout_has(&format!("  {}: ", c.field));
    }
    assert!(
        !table.stdout.contains(":  →"),
        "an empty side reads `(none)`\n{}",
        table.transcript()
    );

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0);
    for (c, old) in cases.iter().zip(&before) {
        apply.outcome(&env.name(c.suffix), "recreated");
        assert_ne!(
            &env.existing(c.suffix).await.id,
            old,
            "{} was recreated",
            c.suffix
        );
    }
    env.refinery(&["plan"])
        .await
        .code(0)
        .stdout_has("in sync with");
}

#[tokio::test]
async fn config_drift_env_ports_volumes_apply_recreates() {
    let env = Env::new().await;
    let port = free_port();
    let volume = env.name("data");
    let cases = [
        case(
            "env-value",
            "    env: {LOG_LEVEL: info}\n",
            |s| {
                s.env
                    .insert("LOG_LEVEL".into(), Secret::new("debug", false));
            },
            "env.LOG_LEVEL",
        ),
        case(
            "env-extra",
            "",
            |s| {
                s.env.insert("EXTRA".into(), Secret::new("1", false));
            },
            "env.EXTRA",
        ),
        case(
            "ports",
            format!("    ports: [\"127.0.0.1:{port}:8080\"]\n"),
            |_| {},
            "ports",
        ),
        case(
            "volumes",
            format!("    volumes: [\"{volume}:/data\"]\n"),
            |_| {},
            "volumes",
        ),
    ];
    config_drift_is_found_and_fixed(&env, &cases).await;

    let ports = env.existing("ports").await.ports;
    assert_eq!(
        ports,
        [PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: Some(port),
            container_port: 8080,
            protocol: Protocol::Tcp,
        }]
    );
    let mounts = env.existing("volumes").await.mounts;
    assert!(
        mounts
            .iter()
            .any(|m| m.source == volume && m.target == "/data"),
        "{mounts:?}"
    );
}

#[tokio::test]
async fn config_drift_command_labels_restart_healthcheck_apply_recreates() {
    let env = Env::new().await;
    let cases = [
        case(
            "command",
            "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done\"]\n",
            |_| {},
            "command",
        ),
        case(
            "labels",
            "    labels: {team: core}\n",
            |s| {
                s.labels.insert("team".into(), "ops".into());
            },
            "labels.team",
        ),
        case(
            "restart",
            "    restart: unless-stopped\n",
            |s| s.restart = RestartPolicy::No,
            "restart",
        ),
        case(
            "healthcheck",
            "    healthcheck: {test: [\"CMD\", \"true\"], interval: 5s}\n",
            |s| {
                s.healthcheck = Some(Healthcheck {
                    test: vec!["CMD".into(), "true".into()],
                    interval_ms: 10_000,
                    ..Healthcheck::default()
                });
            },
            "healthcheck",
        ),
    ];
    config_drift_is_found_and_fixed(&env, &cases).await;

    let labels = env.existing("labels").await.labels;
    assert_eq!(labels.get("team").map(String::as_str), Some("core"));
    assert_eq!(
        env.existing("restart").await.restart,
        RestartPolicy::UnlessStopped
    );
}

/// A container given more power by hand than git declares (a capability added, one the
/// manifest's container keeps dropped) is config drift and is recreated as declared.
#[tokio::test]
async fn config_drift_capabilities_added_by_hand_apply_recreates() {
    let env = Env::new().await;
    let cases = [case(
        "caps",
        "",
        |s| s.options.cap_add = vec!["SYS_TIME".into()],
        "cap_add",
    )];
    config_drift_is_found_and_fixed(&env, &cases).await;
    assert!(env.existing("caps").await.options.cap_add.is_empty());
}
