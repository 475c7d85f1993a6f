use std::collections::BTreeMap;

use super::*;
use crate::spec::{DependencyCondition, MountKind, Protocol};

fn stack(files: &[&str], profiles: &[&str]) -> StackSpec {
    StackSpec {
        name: "shop".into(),
        node: "lyra".into(),
        files: files.iter().map(|s| (*s).to_owned()).collect(),
        profiles: profiles.iter().map(|s| (*s).to_owned()).collect(),
        env_file: None,
        ..StackSpec::default()
    }
}

fn run(
    files: &[(&str, &str)],
    st: &StackSpec,
    env: &[(&str, &str)],
) -> Result<Expanded, Vec<Issue>> {
    run_with_keys(files, st, env, &crate::sops::AgeKeys::new())
}

fn run_with_keys(
    files: &[(&str, &str)],
    st: &StackSpec,
    env: &[(&str, &str)],
    keys: &crate::sops::AgeKeys,
) -> Result<Expanded, Vec<Issue>> {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let read = |p: &str| files.get(p).cloned();
    let read_tree = |dir: &str| {
        files
            .iter()
            .filter(|(k, _)| dir.is_empty() || k.starts_with(&format!("{dir}/")))
            .map(|(k, v)| {
                let file = crate::spec::ContextFile {
                    data: v.clone().into_bytes(),
                    executable: k.ends_with(".sh"),
                };
                (k.clone(), file)
            })
            .collect()
    };
    let lookup = |n: &str| env.get(n).cloned();
    expand_stack(
        st,
        &StackSource {
            read: &read,
            read_tree: &read_tree,
            env: &lookup,
            base_dir: Some("/repo"),
            manifest_file: "refinery.yaml",
            keys,
        },
    )
}

/// Seed 002's production file, images replaced by local ones.
const PROD: &str = r#"version: '3.8'
services:
  api:
    image: shop-api:latest
    environment:
      - ENV=production
      - DATABASE_URL=${DATABASE_URL}
    restart: unless-stopped
    networks:
      - consensusnet
  agent:
    image: shop-agent:latest
    restart: unless-stopped
    deploy:
      replicas: 3
    networks:
      - consensusnet
  nginx:
    image: shop-nginx:latest
    ports:
      - "80:80"
      - "443:443"
    volumes:
      - ./letsencrypt:/etc/letsencrypt
    depends_on:
      api: {condition: service_healthy}
    networks:
      consensusnet:
        aliases: [proxy]
  redis:
    image: redis:7-alpine
    volumes:
      - redis_data:/data
    networks:
      - consensusnet
networks:
  consensusnet:
    driver: bridge
volumes:
  redis_data:
"#;

fn names(e: &Expanded) -> Vec<&str> {
    e.containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn compose_seed_002_expands_to_replicas_networks_and_volumes() {
    let e = run(
        &[
            ("deploy/docker-compose.prod.yml", PROD),
            ("deploy/.env", "DATABASE_URL=postgres://db\n"),
        ],
        &stack(&["deploy/docker-compose.prod.yml"], &[]),
        &[],
    )
    .expect("valid");
    assert_eq!(
        names(&e),
        [
            "shop_api_1",
            "shop_agent_1",
            "shop_agent_2",
            "shop_agent_3",
            "shop_nginx_1",
            "shop_redis_1"
        ]
    );
    let api = &e.containers[0];
    assert_eq!(api.env["DATABASE_URL"].expose(), "postgres://db");
    assert_eq!(api.options.networks[0].name, "shop_consensusnet");
    assert_eq!(api.options.networks[0].aliases, ["api"]);
    let nginx = &e.containers[4];
    assert_eq!(nginx.options.networks[0].aliases, ["nginx", "proxy"]);
    assert_eq!(nginx.mounts[0].source, "/repo/deploy/letsencrypt");
    assert_eq!(nginx.ports.len(), 2);
    let deps = &nginx.stack.as_ref().expect("stack").depends_on;
    assert_eq!(deps[0].container, "shop_api_1");
    assert_eq!(deps[0].condition, DependencyCondition::ServiceHealthy);
    let redis = &e.containers[5];
    assert_eq!(
        (redis.mounts[0].kind, redis.mounts[0].source.as_str()),
        (MountKind::Volume, "shop_redis_data")
    );
    assert_eq!(e.networks.len(), 1);
    assert_eq!(e.networks[0].labels[LABEL_NETWORK], "consensusnet");
    assert_eq!(e.volumes[0].name, "shop_redis_data");
    let m = e.containers[2].stack.as_ref().expect("stack");
    assert_eq!(
        (m.service.as_str(), m.number, m.working_dir.as_str()),
        ("agent", 2, "/repo/deploy")
    );
}

#[test]
fn compose_environment_overrides_dotenv() {
    let e = run(
        &[
            ("docker-compose.yml", PROD),
            (".env", "DATABASE_URL=from-file\n"),
        ],
        &stack(&["docker-compose.yml"], &[]),
        &[("DATABASE_URL", "from-env")],
    )
    .expect("valid");
    assert_eq!(e.containers[0].env["DATABASE_URL"].expose(), "from-env");
}

#[test]
fn compose_files_merge_in_order() {
    let over = "services:\n  api:\n    image: shop-api:2\n    environment: {EXTRA: '1'}\n    mem_limit: 64m\n    cpus: 0.5\n";
    let e = run(
        &[("a.yml", PROD), ("b.yml", over)],
        &stack(&["a.yml", "b.yml"], &[]),
        &[("DATABASE_URL", "x")],
    )
    .expect("valid");
    let api = &e.containers[0];
    assert_eq!(api.image, "shop-api:2");
    assert_eq!(api.env["ENV"].expose(), "production");
    assert_eq!(api.env["EXTRA"].expose(), "1");
    assert_eq!(api.options.memory_bytes, Some(64 << 20));
    assert_eq!(api.options.nano_cpus, Some(500_000_000));
}

/// Seed 003's profiles, reduced.
const PROFILES: &str = "services:
  server:
    image: dredge:cpu
    ports: ['${DREDGE_PORT:-3001}:3001']
    profiles: [cpu, full]
    security_opt: ['no-new-privileges:true']
    cap_add: [net_admin, CAP_SYS_TIME]
    cap_drop: [ALL]
    privileged: false
    read_only: true
    user: '1000'
    working_dir: /app
    extra_hosts: ['db:10.0.0.2']
  mcp:
    image: dredge:gpu
    profiles: [gpu, full]
  cache:
    image: redis:7
    command: redis-server --appendonly yes
";

#[test]
fn compose_profiles_select_services() {
    let e = run(&[("c.yml", PROFILES)], &stack(&["c.yml"], &["cpu"]), &[]).expect("valid");
    assert_eq!(names(&e), ["shop_server_1", "shop_cache_1"]);
    let server = &e.containers[0];
    assert_eq!(server.ports[0].host_port, Some(3001));
    assert_eq!(server.ports[0].protocol, Protocol::Tcp);
    assert!(server.options.read_only);
    assert_eq!(server.options.user.as_deref(), Some("1000"));
    assert_eq!(server.options.extra_hosts, ["db:10.0.0.2"]);
    assert_eq!(server.options.cap_add, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(server.options.cap_drop, ["ALL"]);
    assert!(!server.options.privileged);
    assert_eq!(server.options.networks[0].name, "shop_default");
    assert_eq!(
        e.containers[1].command.as_deref(),
        Some(
            &[
                "redis-server".to_owned(),
                "--appendonly".into(),
                "yes".into()
            ][..]
        )
    );
    let none = run(&[("c.yml", PROFILES)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    assert_eq!(names(&none), ["shop_cache_1"]);
}

#[test]
fn compose_runtime_keys_hostname_init_stop_tmpfs_logging_are_read() {
    let file = "services:
  db:
    image: postgres:16
    hostname: db-primary
    init: true
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    tmpfs: [/run, '/tmp:size=64m,mode=1777']
    logging:
      driver: json-file
      options: {max-size: 10m, max-file: 3}
  cache:
    image: redis:7
    tmpfs: /data
";
    let e = run(&[("c.yml", file)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let by_name = |n: &str| {
        e.containers
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.options.clone())
            .unwrap_or_default()
    };
    let db = &by_name("shop_db_1");
    assert_eq!(db.hostname.as_deref(), Some("db-primary"));
    assert_eq!(db.init, Some(true));
    assert_eq!(db.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(db.stop_timeout_secs, Some(90));
    assert_eq!(
        db.tmpfs,
        BTreeMap::from([
            ("/run".to_owned(), String::new()),
            ("/tmp".to_owned(), "size=64m,mode=1777".to_owned())
        ])
    );
    let logging = db.logging.clone().expect("logging");
    assert_eq!(logging.driver, "json-file");
    assert_eq!(logging.options["max-file"], "3");
    let cache = &by_name("shop_cache_1");
    assert_eq!(cache.tmpfs.keys().collect::<Vec<_>>(), ["/data"]);
    assert_eq!(cache.logging, None);

    let bad = "services:\n  a:\n    image: x\n    tmpfs: [run]\n    logging: {options: {a: b}}\n";
    assert_eq!(
        messages(run(&[("c.yml", bad)], &stack(&["c.yml"], &[]), &[])),
        [
            "c.yml:4:13: tmpfs `run` is not an absolute path",
            "c.yml:5:14: `logging` needs a `driver`"
        ]
    );
}

#[test]
fn compose_network_mode_replaces_networks_and_shares_a_service() {
    let file = "services:
  exporter:
    image: node-exporter:1
    network_mode: host
    ports: ['9100:9100']
  vpn:
    image: vpn:1
  app:
    image: app:1
    network_mode: service:vpn
";
    let e = run(&[("c.yml", file)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let get = |n: &str| {
        e.containers
            .iter()
            .find(|c| c.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n}"))
    };
    let exporter = get("shop_exporter_1");
    assert_eq!(exporter.options.network_mode.as_deref(), Some("host"));
    assert!(exporter.options.networks.is_empty());
    assert!(
        exporter.ports.is_empty(),
        "published ports mean nothing on the host network"
    );
    assert!(
        e.warnings.iter().any(|w| w
            .message
            .contains("`network_mode: host`: its `ports` are not published")),
        "{:?}",
        e.warnings
    );
    let app = get("shop_app_1");
    assert_eq!(
        app.options.network_mode.as_deref(),
        Some("container:shop_vpn_1")
    );
    let deps = &app.stack.as_ref().expect("a stack member").depends_on;
    assert!(deps.iter().any(|d| d.container == "shop_vpn_1"), "{deps:?}");
    assert_eq!(get("shop_vpn_1").options.networks[0].name, "shop_default");

    let bad = "services:\n  a:\n    image: x\n    network_mode: hots\n  b:\n    image: x\n    network_mode: service:c\n    networks: [default]\n";
    assert_eq!(
        messages(run(&[("c.yml", bad)], &stack(&["c.yml"], &[]), &[])),
        [
            "c.yml:4:19: `hots` is not a network mode",
            "c.yml:7:19: service `b` sets both `network_mode` and `networks`"
        ]
    );
}

fn messages(r: Result<Expanded, Vec<Issue>>) -> Vec<String> {
    r.expect_err("should fail")
        .iter()
        .map(|i| format!("{}:{}:{}: {}", i.file, i.line, i.column, i.message))
        .collect()
}

#[test]
fn compose_unknown_profile_is_error_with_suggestion() {
    let e = run(&[("c.yml", PROFILES)], &stack(&["c.yml"], &["cpuu"]), &[]).expect_err("bad");
    assert!(e[0].message.contains("profile `cpuu`"), "{e:?}");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `cpu`?"));
}

#[test]
fn compose_bad_inputs_name_file_line_column() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  a:\n    image: x\n    depends_on: [nope]\n",
            "c.yml:4:18: service `a` depends on `nope`, which no compose file declares",
        ),
        (
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
            "c.yml:2:3: the services' dependencies form a cycle: a → b → a",
        ),
        (
            "services:\n  a:\n    image: ${IMAGE?set the image}\n",
            "c.yml:3:12: required variable `IMAGE` is not set: set the image",
        ),
        (
            "services:\n  a:\n    image: x\n    ports: ['80:80:80:80']\n",
            "c.yml:4:13: failed to parse port `80:80:80:80`",
        ),
        (
            "services:\n  a:\n    image: x\n    volumes: ['data:relative']\n",
            "c.yml:4:15: failed to parse volume `data:relative`",
        ),
        (
            "services:\n  a:\n    image: x\n    volumes: ['../../etc:/etc']\n",
            "points outside the repository",
        ),
        (
            "services:\n  a:\n    image: x\n    volumes: ['data:/data']\n",
            "c.yml:4:15: service `a` mounts volume `data`",
        ),
        (
            "services:\n  a:\n    image: x\n    credential_spec: {file: x.json}\n",
            "c.yml:4:5: service `a`: key `credential_spec` is not supported by Refinery",
        ),
        (
            "services:\n  a:\n    build: ../elsewhere\n",
            "c.yml:3:5: service `a`: build context `../elsewhere` is outside the repository",
        ),
        (
            "services:\n  a:\n    build: /srv/app\n",
            "c.yml:3:5: service `a`: build context `/srv/app` is outside the repository",
        ),
        (
            "services:\n  a:\n    build: {context: missing}\n",
            "c.yml:3:5: service `a`: failed to find build context `missing` in the commit",
        ),
        (
            "services:\n  a:\n    build: {context: ., dockerfile: ../Dockerfile}\n",
            "dockerfile `../Dockerfile` is outside the build context",
        ),
        (
            "services:\n  a:\n    build: {context: ., ssh: [default]}\n",
            "c.yml:3:25: service `a`: key `ssh` of `build` is not supported by Refinery",
        ),
        (
            "services:\n  a:\n    command: x\n",
            "c.yml:2:3: service `a` has no `image` and no `build`",
        ),
        (
            "services:\n  a:\n    image: x\n    container_name: one\n    scale: 2\n",
            "container_name",
        ),
    ];
    for (src, want) in cases {
        let got = messages(run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]));
        assert!(
            got.iter().any(|m| m.contains(want)),
            "{src}\nwant {want}\ngot {got:?}"
        );
    }
}

#[test]
fn compose_labels_let_docker_compose_list_the_container() {
    let e = run(&[("c.yml", PROFILES)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let labels = crate::labels::ownership_labels(&e.containers[0], "abc");
    assert_eq!(labels[LABEL_PROJECT], "shop");
    assert_eq!(labels[LABEL_SERVICE], "cache");
    assert_eq!(labels[LABEL_NUMBER], "1");
    assert_eq!(labels[LABEL_ONEOFF], "False");
    assert_eq!(
        labels[crate::labels::RESOURCE],
        "docker/lyra/stack/shop/cache/1"
    );
}

#[test]
fn compose_env_file_parses_quotes_and_comments() {
    let vars =
        parse_env_file("# c\nexport A=1\nB=\"two words\"\nC='x y' \nD=v # note\n").expect("ok");
    assert_eq!(vars["A"], "1");
    assert_eq!(vars["B"], "two words");
    assert_eq!(vars["C"], "x y");
    assert_eq!(vars["D"], "v");
    assert!(parse_env_file("oops\n").is_err());
}

const SOPS_COMPOSE: &str =
    "services:\n  api:\n    image: busybox:1.36\n    env_file: [secrets.enc.env]\n";

#[test]
fn compose_env_file_sops_decrypts_to_sensitive_values() {
    use crate::sops::{
        AgeKeys, SopsFormat,
        encrypt::{encrypt_vars, generate_identity},
    };
    let (secret, recipient) = generate_identity();
    let enc = encrypt_vars(
        &[("DB_URL", "postgres://u:p@db/x")],
        SopsFormat::Dotenv,
        &[&recipient],
    );
    let mut keys = AgeKeys::new();
    keys.add_text(&secret, "`SOPS_AGE_KEY`");
    let e = run_with_keys(
        &[
            ("app/docker-compose.yml", SOPS_COMPOSE),
            ("app/secrets.enc.env", &enc),
        ],
        &stack(&["app/docker-compose.yml"], &[]),
        &[],
        &keys,
    )
    .expect("expands");
    let v = &e.containers[0].env["DB_URL"];
    assert_eq!(v.expose(), "postgres://u:p@db/x");
    assert!(
        v.is_sensitive(),
        "a SOPS value is sensitive whatever its name"
    );
    assert_eq!(v.to_string(), "***");
}

#[test]
fn compose_env_file_sops_without_key_is_an_issue_at_the_entry() {
    use crate::sops::{
        SopsFormat,
        encrypt::{encrypt_vars, generate_identity},
    };
    let (_, recipient) = generate_identity();
    let enc = encrypt_vars(&[("DB_URL", "x")], SopsFormat::Dotenv, &[&recipient]);
    let issues = run(
        &[
            ("app/docker-compose.yml", SOPS_COMPOSE),
            ("app/secrets.enc.env", &enc),
        ],
        &stack(&["app/docker-compose.yml"], &[]),
        &[],
    )
    .expect_err("no key");
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!((i.file.as_str(), i.line), ("app/docker-compose.yml", 4));
    assert_eq!(i.field, "services.api.env_file[0]");
    assert_eq!(
        i.message,
        "`app/secrets.enc.env`: failed to decrypt: no age key found"
    );
}

#[test]
fn compose_stack_env_file_sops_is_refused() {
    use crate::sops::{
        SopsFormat,
        encrypt::{encrypt_vars, generate_identity},
    };
    let (_, recipient) = generate_identity();
    let enc = encrypt_vars(&[("TAG", "x")], SopsFormat::Dotenv, &[&recipient]);
    let mut st = stack(&["app/docker-compose.yml"], &[]);
    st.env_file = Some("app/.env".into());
    let issues = run(
        &[
            (
                "app/docker-compose.yml",
                SOPS_COMPOSE
                    .replace("env_file: [secrets.enc.env]", "environment: {A: b}")
                    .as_str(),
            ),
            ("app/.env", &enc),
        ],
        &st,
        &[],
    )
    .expect_err("refused");
    assert!(
        issues
            .iter()
            .any(|i| i.message.contains("is SOPS-encrypted")),
        "{issues:?}"
    );
}
const BUILD: &str = "services:
  api:
    build:
      context: ./api
      dockerfile: Dockerfile.prod
      args: {VERSION: \"${VERSION:-1}\"}
      target: run
    deploy: {replicas: 2}
  named:
    image: shop/named:1
    build: api
";

fn build_files(dockerfile: &str) -> Vec<(&'static str, String)> {
    vec![
        ("deploy/c.yml", BUILD.to_owned()),
        ("deploy/api/Dockerfile.prod", dockerfile.to_owned()),
        ("deploy/api/Dockerfile", "FROM base\n".to_owned()),
        ("deploy/api/app.sh", "echo hi\n".to_owned()),
        ("deploy/other/x", "not in the context\n".to_owned()),
    ]
}

fn run_build(files: &[(&'static str, String)], env: &[(&str, &str)]) -> Expanded {
    let files: Vec<(&str, &str)> = files.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run(&files, &stack(&["deploy/c.yml"], &[]), env).expect("valid")
}

#[test]
fn compose_build_reads_context_from_commit_and_tags_by_digest() {
    let e = run_build(&build_files("FROM base AS run\n"), &[]);
    let api = &e.containers[0];
    let b = api
        .stack
        .as_ref()
        .and_then(|m| m.build.as_ref())
        .expect("build");
    assert_eq!(b.context, "deploy/api");
    assert_eq!(b.dockerfile, "Dockerfile.prod");
    assert_eq!(b.args["VERSION"], "1");
    assert_eq!(b.target.as_deref(), Some("run"));
    let names: Vec<&str> = b.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["Dockerfile", "Dockerfile.prod", "app.sh"]);
    assert_eq!(api.image, format!("shop-api:refinery-{}", b.short_digest()));
    // Both replicas run the one image.
    assert_eq!(e.containers[1].image, api.image);
    // An `image:` names the built image.
    let named = e
        .containers
        .iter()
        .find(|c| c.name == "shop_named_1")
        .expect("named");
    assert_eq!(named.image, "shop/named:1");
}

#[test]
fn compose_build_digest_changes_with_context_args_only() {
    let digest = |files: &[(&'static str, String)], env: &[(&str, &str)]| {
        run_build(files, env).containers[0]
            .stack
            .as_ref()
            .and_then(|m| m.build.as_ref())
            .map(|b| b.digest.clone())
            .expect("build")
    };
    let base = digest(&build_files("FROM base AS run\n"), &[]);
    assert_eq!(base, digest(&build_files("FROM base AS run\n"), &[]));
    assert_ne!(
        base,
        digest(&build_files("FROM base AS run\nRUN true\n"), &[])
    );
    assert_ne!(
        base,
        digest(&build_files("FROM base AS run\n"), &[("VERSION", "2")])
    );
    // A file outside the context does not count.
    let mut other = build_files("FROM base AS run\n");
    other[4].1 = "changed\n".into();
    assert_eq!(base, digest(&other, &[]));
}

/// Seed 002 expanded, run through diff → policy → plan with the engine holding `networks` and
/// `volumes`.
fn stack_plan(
    networks: Vec<crate::observed::ObservedNetwork>,
    volumes: Vec<crate::observed::ObservedVolume>,
) -> (crate::drift::DriftReport, crate::plan::Plan) {
    let e = run(
        &[("c.yml", PROD)],
        &stack(&["c.yml"], &[]),
        &[("DATABASE_URL", "x")],
    )
    .expect("valid");
    let mut m = crate::testing::manifest(Vec::new());
    m.stack_networks = e.networks;
    m.stack_volumes = e.volumes;
    let observed = crate::observed::Observed::default();
    let ctx =
        crate::drift::DiffContext::for_node(&m, "lyra").with_stack_resources(&m, networks, volumes);
    let report = crate::drift::diff_node(&[], &observed, &ctx);
    let first_seen = BTreeMap::new();
    let pctx = crate::policy::PolicyContext {
        manifest: &m,
        mode: m.mode_of("lyra"),
        now: crate::testing::now(),
        first_seen: &first_seen,
        honor_grace: false,
        self_container_id: None,
        prune: false,
    };
    let decisions = crate::policy::decide(&report, &observed, &pctx);
    let plan = crate::plan::plan(&decisions, &observed);
    (report, plan)
}

fn engine_network(
    name: &str,
    driver: &str,
    labels: &[(&str, &str)],
) -> crate::observed::ObservedNetwork {
    crate::observed::ObservedNetwork {
        name: name.into(),
        driver: driver.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn compose_network_missing_is_created_and_volume_missing_too() {
    let (report, plan) = stack_plan(Vec::new(), Vec::new());
    let net = network_id("lyra", "shop_consensusnet");
    let step = plan
        .steps
        .iter()
        .find(|s| s.id == net)
        .expect("network step");
    assert_eq!(step.kind, crate::plan::StepKind::Create);
    assert!(
        report
            .drifts
            .iter()
            .any(|d| d.id == net && d.kind == crate::drift::DriftKind::Missing)
    );
    assert!(
        plan.steps
            .iter()
            .any(|s| s.id == volume_id("lyra", "shop_redis_data")
                && s.kind == crate::plan::StepKind::Create),
        "{plan:#?}"
    );
}

#[test]
fn compose_network_with_other_driver_or_labels_is_reported_not_recreated() {
    let labels = [
        (LABEL_NETWORK, "consensusnet"),
        (LABEL_PROJECT, "shop"),
        // Another docker compose release: never drift.
        (LABEL_VERSION, "2.24.0"),
    ];
    let vol = crate::observed::ObservedVolume {
        name: "shop_redis_data".into(),
        driver: "local".into(),
        labels: [(LABEL_VOLUME, "redis_data"), (LABEL_PROJECT, "shop")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    let (report, plan) = stack_plan(
        vec![engine_network("shop_consensusnet", "bridge", &labels)],
        vec![vol.clone()],
    );
    assert!(report.drifts.is_empty(), "{:#?}", report.drifts);
    assert_eq!(report.in_sync.len(), 2);

    let mut other = vol;
    other
        .labels
        .insert(LABEL_PROJECT.into(), "someone-else".into());
    let (report, plan2) = stack_plan(
        vec![engine_network("shop_consensusnet", "macvlan", &labels)],
        vec![other],
    );
    assert!(plan.steps.is_empty());
    let net = report
        .drifts
        .iter()
        .find(|d| d.id == network_id("lyra", "shop_consensusnet"))
        .expect("network drift");
    assert_eq!(net.kind, crate::drift::DriftKind::Config);
    assert_eq!(net.summary, "driver differs");
    let vol = report
        .drifts
        .iter()
        .find(|d| d.id == volume_id("lyra", "shop_redis_data"))
        .expect("volume drift");
    assert_eq!(vol.changes[0].field, "labels.com.docker.compose.project");
    // Reported, never recreated (nor removed).
    for s in &plan2.steps {
        assert_eq!(s.kind, crate::plan::StepKind::Alert, "{s:#?}");
    }
}

#[test]
fn compose_v2_container_name_is_adopted_by_labels() {
    let e = run(&[("c.yml", PROFILES)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let spec = &e.containers[0];
    let mut o =
        crate::testing::observed_from_spec(spec, &crate::observed::ImageDefaults::default());
    o.name = "shop-cache-1".into();
    o.labels
        .extend(crate::labels::ownership_labels(spec, "abc"));
    let observed = crate::observed::Observed {
        containers: vec![o],
        images: BTreeMap::from([(
            spec.image.clone(),
            crate::testing::image_info(&spec.image, &crate::observed::ImageDefaults::default()),
        )]),
    };
    let report = crate::drift::diff_node(
        &[spec],
        &observed,
        &crate::drift::DiffContext::for_node(&crate::testing::manifest(Vec::new()), "lyra"),
    );
    assert!(report.drifts.is_empty(), "{:#?}", report.drifts);
    assert_eq!(report.in_sync.len(), 1);
}

#[test]
fn compose_build_image_from_another_context_is_image_drift() {
    let e = run_build(&build_files("FROM base AS run\n"), &[]);
    let spec = e
        .containers
        .iter()
        .find(|c| c.name == "shop_named_1")
        .expect("named");
    let digest = spec
        .stack
        .as_ref()
        .and_then(|m| m.build.as_ref())
        .map(|b| b.digest.clone())
        .expect("build");
    let defaults = crate::observed::ImageDefaults::default();
    let o = crate::testing::observed_from_spec(spec, &defaults);
    let with_label = |value: &str| {
        let mut info = crate::testing::image_info(&spec.image, &defaults);
        info.defaults
            .labels
            .insert(LABEL_BUILD_DIGEST.into(), value.into());
        crate::observed::Observed {
            containers: vec![o.clone()],
            images: BTreeMap::from([(spec.image.clone(), info)]),
        }
    };
    assert!(crate::drift::image_change(spec, &o, &with_label(&digest)).is_none());
    let change = crate::drift::image_change(spec, &o, &with_label("old")).expect("drift");
    assert!(
        change
            .desired
            .contains("builds `shop/named:1` from `deploy/api`"),
        "{change:?}"
    );
    assert!(crate::drift::needs_build(spec, &with_label("old")).is_some());
    assert!(crate::drift::needs_build(spec, &with_label(&digest)).is_none());
}

#[test]
fn compose_build_dockerignore_leaves_files_out_of_context_and_digest() {
    let mut files = build_files("FROM base AS run\n");
    files.push((
        "deploy/api/.dockerignore",
        "# docs\n*.md\ndocs/\n!docs/keep.md\nDockerfile.prod\n".to_owned(),
    ));
    files.push(("deploy/api/README.md", "one\n".to_owned()));
    files.push(("deploy/api/docs/a.txt", "x\n".to_owned()));
    files.push(("deploy/api/docs/keep.md", "kept\n".to_owned()));
    let build = |files: &[(&'static str, String)]| {
        run_build(files, &[]).containers[0]
            .stack
            .as_ref()
            .and_then(|m| m.build.clone())
            .expect("build")
    };
    let b = build(&files);
    let names: Vec<&str> = b.files.keys().map(String::as_str).collect();
    // The Dockerfile in use is sent even when ignored, as docker build does.
    assert_eq!(
        names,
        [
            ".dockerignore",
            "Dockerfile",
            "Dockerfile.prod",
            "app.sh",
            "docs/keep.md"
        ]
    );
    // An ignored file's change is no rebuild.
    let mut changed = files.clone();
    let readme = changed
        .iter_mut()
        .find(|(k, _)| k.ends_with("README.md"))
        .expect("readme");
    readme.1 = "two\n".into();
    assert_eq!(build(&changed).digest, b.digest);
}

/// A stack whose `web` depends on `db` with `restart: true` (and on `cache`, which no file
/// declares, with `required: false`), run through diff → policy → plan as the engine runs it,
/// with both containers running as declared and then `db` edited by hand.
#[test]
fn compose_depends_on_restart_true_restarts_the_dependant_when_its_dependency_is_recreated() {
    let src = "services:
  db:
    image: postgres:16
    environment: {MODE: a}
  web:
    image: web:1
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started, required: false}
";
    let mut st = stack(&["c.yml"], &[]);
    crate::testing::NODE.clone_into(&mut st.node);
    let e = run(&[("c.yml", src)], &st, &[]).expect("valid");
    let web = e
        .containers
        .iter()
        .find(|c| c.name == "shop_web_1")
        .expect("web");
    let deps = &web.stack.as_ref().expect("stack").depends_on;
    assert_eq!(deps.len(), 1, "`cache` is passed over: {deps:?}");
    assert!(deps[0].restart && deps[0].required);
    let m = crate::testing::manifest(e.containers.clone());
    let image = crate::observed::ImageDefaults::default();
    let specs: Vec<&ContainerSpec> = m.containers.iter().collect();
    let mut observed = crate::testing::observed_node(&specs, &image);
    let pass = crate::testing::Pass::default();
    assert!(
        pass.run(&m, &observed).plan.writes().next().is_none(),
        "in sync: nothing to do"
    );
    // `db` changed by hand: it is recreated, and `web` restarted after it.
    if let Some(db) = observed
        .containers
        .iter_mut()
        .find(|c| c.name == "shop_db_1")
    {
        db.env.insert("MODE".into(), "b".into());
    }
    let plan = pass.run(&m, &observed).plan;
    let kinds: Vec<(String, crate::plan::StepKind)> = plan
        .writes()
        .map(|s| (s.id.name().to_owned(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("shop_db_1".to_owned(), crate::plan::StepKind::Recreate),
            ("shop_web_1".to_owned(), crate::plan::StepKind::Restart),
        ]
    );
    let step = plan.writes().nth(1).expect("the restart");
    assert!(step.reason.contains("`shop_db_1`"), "{}", step.reason);
}

#[test]
fn compose_lone_dollar_is_an_error_as_docker_compose_has_it() {
    let src =
        "services:\n  a:\n    image: x\n    command: [\"sh\", \"-c\", \"sleep 1 & wait $!\"]\n";
    let got = messages(run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]));
    assert!(
        got.iter()
            .any(|m| m.starts_with("c.yml:4:27:") && m.contains("a `$` starts no variable")),
        "{got:?}"
    );
    let ok =
        "services:\n  a:\n    image: x\n    command: [\"sh\", \"-c\", \"sleep 1 & wait $$!\"]\n";
    let e = run(&[("c.yml", ok)], &stack(&["c.yml"], &[]), &[]).expect("`$$` is a `$`");
    assert_eq!(
        e.containers[0]
            .command
            .as_deref()
            .and_then(|c| c.last())
            .map(String::as_str),
        Some("sleep 1 & wait $!")
    );
}

/// A stack without `files:` or `name:`, expanded from `files` (repository path → contents).
fn run_discovered(files: &[(&str, &str)]) -> Result<Expanded, Vec<Issue>> {
    let st = StackSpec {
        name: String::new(),
        node: "lyra".into(),
        ..StackSpec::default()
    };
    run(files, &st, &[])
}

#[test]
fn compose_files_are_found_by_compose_names_with_the_override_and_a_warning_for_extras() {
    let base = "name: found\nservices:\n  web: {image: 'web:1'}\n";
    let over = "services:\n  web: {image: 'web:2'}\n";
    let e = run_discovered(&[
        ("docker-compose.yml", base),
        ("compose.yaml", base),
        ("docker-compose.override.yml", over),
    ])
    .expect("valid");
    // compose.yaml comes first in compose's order; the override merges over it.
    assert_eq!(e.files, ["compose.yaml", "docker-compose.override.yml"]);
    assert_eq!(e.project, "found");
    assert_eq!(e.containers[0].image, "web:2");
    assert!(
        e.warnings.iter().any(|w| w.message.contains(
            "found several compose files (compose.yaml, docker-compose.yml); using `compose.yaml`"
        )),
        "{:?}",
        e.warnings
    );
    let none = run_discovered(&[("other.yml", base)]).expect_err("nothing to find");
    assert!(
        none[0].message.contains("failed to find a compose file"),
        "{none:?}"
    );
}

#[test]
fn compose_project_name_and_profiles_come_from_compose_variables_before_the_file() {
    let src = "name: from-file\nservices:\n  web: {image: 'web:1'}\n  gpu: {image: 'gpu:1', profiles: [gpu]}\n";
    let e = run_discovered(&[
        ("compose.yaml", src),
        (
            ".env",
            "COMPOSE_PROJECT_NAME=from-env\nCOMPOSE_PROFILES=gpu\n",
        ),
    ])
    .expect("valid");
    assert_eq!(e.project, "from-env");
    assert_eq!(e.profiles, ["gpu"]);
    assert_eq!(names(&e), ["from-env_web_1", "from-env_gpu_1"]);
    let bad = run_discovered(&[(
        "compose.yaml",
        "name: Shop\nservices:\n  web: {image: 'web:1'}\n",
    )])
    .expect_err("not a project name");
    assert!(
        bad[0]
            .message
            .contains("`Shop` is not a compose project name"),
        "{bad:?}"
    );
    assert_eq!((bad[0].file.as_str(), bad[0].line), ("compose.yaml", 1));
}

#[test]
fn compose_deploy_restart_policy_is_the_restart_policy_and_limits_pids_the_pids_limit() {
    let src = "services:
  a:
    image: x
    restart: always
    pids_limit: 10
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 3, delay: 5s}
      resources: {limits: {pids: 20}}
";
    let e = run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let a = &e.containers[0];
    assert_eq!(a.restart, crate::spec::RestartPolicy::OnFailure(3));
    assert_eq!(a.options.extra().pids_limit, Some(20));
    assert!(
        e.warnings[0]
            .message
            .contains("`deploy.restart_policy.delay` (`a`)"),
        "{:?}",
        e.warnings
    );
}

#[test]
fn compose_update_config_order_is_the_update_order_and_the_rest_is_swarm_only() {
    use crate::extra_options::UpdateOrder;
    let src = "services:
  web:
    image: x
    deploy:
      update_config: {order: start-first, parallelism: 2, delay: 5s}
  api:
    image: x
    x-refinery: {update_order: start-first}
  db:
    image: x
";
    let e = run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let order = |service: &str| {
        e.containers
            .iter()
            .find(|c| c.stack.as_ref().is_some_and(|m| m.service == service))
            .map(|c| c.options.extra().update_order)
    };
    assert_eq!(order("web"), Some(Some(UpdateOrder::StartFirst)));
    assert_eq!(order("api"), Some(Some(UpdateOrder::StartFirst)));
    assert_eq!(order("db"), Some(None));
    let [w] = e.warnings.as_slice() else {
        panic!("one warning: {:?}", e.warnings)
    };
    assert!(
        w.message.contains("`deploy.update_config.delay` (`web`)")
            && w.message
                .contains("`deploy.update_config.parallelism` (`web`)")
            && !w.message.contains("order"),
        "{w:?}"
    );
}

#[test]
fn compose_start_first_with_a_fixed_host_port_is_warned_about_where_it_is_written() {
    let src = "services:
  web:
    image: x
    ports: [\"8080:80\", \"9090\"]
    deploy:
      update_config:
        order: start-first
  alias:
    image: x
    ports: [\"80\"]
    deploy: {update_config: {order: start-first}}
";
    let e = run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    let [w] = e.warnings.as_slice() else {
        panic!("one warning: {:?}", e.warnings)
    };
    assert_eq!(
        (w.file.as_str(), w.line, w.column, w.field.as_str()),
        ("c.yml", 7, 16, "services.web.deploy.update_config.order")
    );
    assert!(
        w.message
            .contains("service `web` publishes host port 8080, which the old and the new container cannot hold at once: it is replaced stop-first"),
        "{w:?}"
    );
}

#[test]
fn compose_update_order_typo_is_refused_with_a_suggestion() {
    let src = "services:
  web:
    image: x
    deploy:
      update_config: {order: start-frist, paralelism: 1}
";
    let bad = run(&[("c.yml", src)], &stack(&["c.yml"], &[]), &[]).expect_err("refused");
    let messages: Vec<(String, Option<String>)> = bad
        .iter()
        .map(|i| (i.message.clone(), i.hint.clone()))
        .collect();
    assert!(
        messages.contains(&(
            "`start-frist` is not an update order".into(),
            Some("did you mean `start-first`?".into())
        )),
        "{messages:?}"
    );
    assert!(
        messages.contains(&(
            "unknown key `paralelism` of `deploy.update_config`".into(),
            Some("did you mean `parallelism`?".into())
        )),
        "{messages:?}"
    );
}

#[test]
fn compose_x_refinery_image_policy_is_read_and_checked() {
    let ok = "services:\n  app:\n    image: reg.example:5000/app:1.4.2\n    x-refinery:\n      image_policy: {semver: \"^1.4\"}\n";
    let e = run(&[("c.yml", ok)], &stack(&["c.yml"], &[]), &[]).expect("valid");
    assert_eq!(
        e.containers[0]
            .options
            .image_policy
            .as_ref()
            .map(|p| p.semver.as_str()),
        Some("^1.4")
    );
    // An override file may set it; the merged image is what is checked.
    let base = "services:\n  app:\n    image: reg.example:5000/app:2.0.0\n";
    let over = "services:\n  app:\n    x-refinery: {image_policy: {semver: \"^1.4\"}}\n";
    let got = messages(run(
        &[("c.yml", base), ("o.yml", over)],
        &stack(&["c.yml", "o.yml"], &[]),
        &[],
    ));
    assert!(
        got.iter()
            .any(|m| m
                .contains("o.yml:3:41: the image's tag `2.0.0` does not match the range `^1.4`")),
        "{got:?}"
    );
    let bad = [
        (
            "services:\n  app:\n    image: app\n    x-refinery: {image_policy: {semver: \"latest\"}}\n",
            "c.yml:4:41: `latest` is not a semver range",
        ),
        (
            "services:\n  app:\n    build: .\n    x-refinery: {image_policy: {semver: \"^1\"}}\n",
            "c.yml:4:41: service `app` is built here (`build:`): it has no registry tags to follow",
        ),
        (
            "services:\n  app:\n    image: app\n    x-refinery: {image_polcy: {semver: \"^1\"}}\n",
            "key `image_polcy` is not supported under `x-refinery`",
        ),
    ];
    for (src, want) in bad {
        let got = messages(run(
            &[("c.yml", src), ("Dockerfile", "FROM scratch\n")],
            &stack(&["c.yml"], &[]),
            &[],
        ));
        assert!(
            got.iter().any(|m| m.contains(want)),
            "{src}\nwant {want}\ngot {got:?}"
        );
    }
}

#[test]
fn compose_scheduled_pull_policy_loads_as_a_refresh_period_without_warning() {
    let file = "services:\n  a:\n    image: x\n    pull_policy: daily\n  b:\n    image: x\n    pull_policy: every_90s\n  c:\n    image: x\n    pull_policy: weekly\n";
    let e = run(&[("c.yml", file)], &stack(&["c.yml"], &[]), &[]).expect("loads");
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    let every = |name: &str| {
        e.containers
            .iter()
            .find(|c| c.name == format!("shop_{name}_1"))
            .and_then(|c| c.options.extra().pull_policy)
    };
    let refresh = |every_ms| Some(crate::PullPolicy::Refresh { every_ms });
    assert_eq!(every("a"), refresh(86_400_000));
    assert_eq!(every("b"), refresh(90_000));
    assert_eq!(every("c"), refresh(604_800_000));
}

// docker-compose 1.29 (`docker-compose -f F config`, measured here) accepts `pull_policy: build`
// without `build:` (exit 0) and never reads `pull_policy` afterwards; Refinery accepts it too and
// warns at the key that there is nothing to build, so the image is pulled only when missing.
#[test]
fn compose_pull_policy_build_without_build_section_warns_at_the_key() {
    let file = "services:\n  a:\n    image: x\n    pull_policy: build\n";
    let e =
        run(&[("c.yml", file)], &stack(&["c.yml"], &[]), &[]).expect("accepted, as compose does");
    let [warning] = e.warnings.as_slice() else {
        panic!("one warning: {:?}", e.warnings)
    };
    assert_eq!(
        (
            warning.file.as_str(),
            warning.line,
            warning.column,
            warning.field.as_str()
        ),
        ("c.yml", 4, 18, "services.a.pull_policy"),
        "{warning:?}"
    );
    assert_eq!(
        warning.message,
        "service `a` has `pull_policy: build` but no `build:` section: there is nothing to build, so its image is pulled only when missing (as `pull_policy: missing`)"
    );
    assert!(
        warning
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("add a `build:` section")),
        "{warning:?}"
    );
    // A `build:` in another of the stack's files (merged over it) is enough.
    let over = "services:\n  a:\n    build: .\n";
    let e = run(
        &[
            ("c.yml", file),
            ("o.yml", over),
            ("Dockerfile", "FROM scratch\n"),
        ],
        &stack(&["c.yml", "o.yml"], &[]),
        &[],
    )
    .expect("loads with the build of the second file");
    assert!(
        !e.warnings
            .iter()
            .any(|w| w.field == "services.a.pull_policy"),
        "{:?}",
        e.warnings
    );
}
