//! The whole single-engine compose schema on the real engine: a public project (NetBox's
//! compose files, images swapped for the local test image by a committed override) comes up and
//! is in sync; the keys Refinery applies since it reads the whole schema are created, read back
//! equal, reported when changed by hand or in git, and healed; external volumes are never
//! created; `plan --json` answers a manifest that does not load with a JSON document.

use std::path::Path;

use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE};

/// The command that keeps the test image up and stops at once on TERM.
const SLEEP: &str = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 1000 & wait $$!\"]";

/// The docker CLI, for what the runtime port does not do (`docker update`, volumes by hand).
async fn docker(args: &[&str]) -> String {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn inspect(env: &Env, name: &str) -> refinery_core::ObservedContainer {
    env.rt
        .inspect(name)
        .await
        .unwrap_or_else(|e| panic!("inspect `{name}`: {e}"))
}

/// Commits the files of a core compose fixture, as they are there.
fn commit_fixture(env: &Env, fixture: &str, files: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../refinery-core/tests/fixtures/compose")
        .join(fixture);
    for f in files {
        let text = std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("read fixture file {fixture}/{f}: {e}"));
        env.repo.write(f, &text);
    }
}

#[tokio::test]
async fn compose_netbox_with_its_images_swapped_comes_up_in_sync_and_listed_by_docker_compose() {
    let env = Env::new().await;
    let project = env.name("netbox");
    let run = env.run.id();
    // NetBox's own files, as published (see the fixture's SOURCE)…
    commit_fixture(
        &env,
        "valid-netbox-docker-override-discovered",
        &[
            "docker-compose.yml",
            "env/netbox.env",
            "env/postgres.env",
            "env/redis.env",
            "env/redis-cache.env",
        ],
    );
    env.repo.write(
        "configuration/configuration.py",
        "# committed configuration\n",
    );
    // …and an override of ours: no registry here, so the local test image runs every service,
    // with a command and healthcheck it has.
    let mut over = String::from("services:\n");
    for svc in [
        "netbox",
        "netbox-worker",
        "netbox-housekeeping",
        "postgres",
        "redis",
        "redis-cache",
    ] {
        over.push_str(&format!(
            "  {svc}:\n    image: {IMAGE}\n    command: {SLEEP}\n    user: \"0:0\"\n    healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s, start_period: 0s}}\n    labels: {{io.refinery.test: \"{run}\"}}\n"
        ));
    }
    env.commit_file("docker-compose.test-images.yml", &over);
    env.commit_manifest(&format!(
        "stacks:\n  - name: {project}\n    files: [docker-compose.yml, docker-compose.test-images.yml]\n"
    ));

    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has(&format!("docker/local/stack/{project}/netbox/1"))
        // `netbox-worker` waits for a healthy `netbox`, which waits for the databases.
        .stdout_has("start order on `local` (depends_on): ");
    env.refinery(&["apply", "--yes"]).await.code(0);
    for svc in ["netbox", "netbox-worker", "postgres", "redis-cache"] {
        let c = inspect(&env, &format!("{project}_{svc}_1")).await;
        assert_eq!(c.state, ContainerState::Running, "{svc}");
    }
    // The env files' variables, and what the files say, are what runs: in sync.
    let netbox = inspect(&env, &format!("{project}_netbox_1")).await;
    assert_eq!(
        netbox.env.get("DB_HOST").map(String::as_str),
        Some("postgres")
    );
    env.refinery(&["plan"]).await.code(0);
    // docker-compose, given the same files, lists them as its own.
    let ps = tokio::process::Command::new("docker-compose")
        .current_dir(env.repo.path())
        .args(["-p", &project, "-f", "docker-compose.yml"])
        .args(["-f", "docker-compose.test-images.yml", "ps", "--services"])
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .output()
        .await
        .expect("run docker-compose");
    let listed = String::from_utf8_lossy(&ps.stdout);
    for svc in [
        "netbox",
        "netbox-worker",
        "netbox-housekeeping",
        "postgres",
        "redis",
    ] {
        assert!(
            listed.lines().any(|l| l.trim() == svc),
            "docker-compose ps misses {svc}:\n{listed}\n{}",
            String::from_utf8_lossy(&ps.stderr)
        );
    }
}

/// A stack using the keys Refinery applies since it reads the whole single-engine schema (those
/// this engine supports: no GPU, no storage quota here).
///
/// The fixed subnet is `10.231.<net>.0/24`: outside the engine's default pools (172.17–172.31/16,
/// 192.168/16), which networks of tests running at the same time take, so it cannot overlap one.
fn schema_compose(env: &Env, nofile: u32, net: u8) -> String {
    let run = env.run.id();
    format!(
        "services:
  db:
    image: {IMAGE}
    command: {SLEEP}
    init: true
    healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s, start_interval: 1s}}
    volumes: [/shared]
    networks: [back]
    labels: {{io.refinery.test: \"{run}\"}}
  web:
    image: {IMAGE}
    command: {SLEEP}
    init: true
    expose: [\"3000\", \"9100-9101/udp\"]
    ulimits:
      nofile: {{soft: {nofile}, hard: 8192}}
      nproc: 4096
    sysctls: {{net.core.somaxconn: \"1024\"}}
    stdin_open: true
    tty: true
    shm_size: 128m
    devices: [\"/dev/null:/dev/mynull:rw\"]
    device_cgroup_rules: [\"c 1:3 mr\"]
    ipc: shareable
    group_add: [\"123\"]
    oom_score_adj: 100
    pids_limit: 100
    mem_limit: 64m
    mem_reservation: 32m
    memswap_limit: 128m
    cpu_shares: 512
    cpu_quota: 50000
    cpu_period: 100000
    cpuset: \"0\"
    dns: [1.1.1.1]
    dns_search: [example.com]
    dns_opt: [\"ndots:2\"]
    domainname: example.org
    volumes_from: [\"db:ro\"]
    volumes: [\"/tmp:/hosttmp:ro,private\"]
    links: [\"db:database\"]
    depends_on:
      db: {{condition: service_healthy, restart: true}}
    networks:
      back:
        ipv4_address: 10.231.{net}.10
    deploy:
      restart_policy: {{condition: on-failure, max_attempts: 2}}
    labels: {{io.refinery.test: \"{run}\"}}
networks:
  back:
    ipam:
      config: [{{subnet: 10.231.{net}.0/24}}]
    driver_opts: {{com.docker.network.bridge.enable_icc: \"true\"}}
"
    )
}

#[tokio::test]
async fn compose_schema_keys_are_applied_read_back_equal_and_healed_when_changed() {
    let env = Env::new().await;
    let project = env.name("schema");
    env.commit_file("compose.yaml", &schema_compose(&env, 1024, 252));
    // No `files:`: compose.yaml is found by name.
    env.commit_manifest(&format!("stacks:\n  - name: {project}\n"));
    let web_name = format!("{project}_web_1");
    let db_name = format!("{project}_db_1");

    env.refinery(&["plan"]).await.code(3).stdout_has(&format!(
        "start order on `local` (depends_on): {db_name} → {web_name}"
    ));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let web = inspect(&env, &web_name).await;
    let x = web.options.extra();
    assert_eq!(web.state, ContainerState::Running);
    assert_eq!(x.ulimits["nofile"].soft, 1024);
    assert_eq!(x.pids_limit, Some(100));
    assert_eq!(x.shm_size, Some(128 << 20));
    assert!(x.tty && x.stdin_open);
    assert_eq!(x.links, [format!("{db_name}:database")]);
    // This host's `/` is not a shared mount, so `rslave`/`rshared` cannot be shown here.
    assert_eq!(
        x.bind_propagation.get("/hosttmp").map(String::as_str),
        Some("private")
    );
    assert!(
        web.options
            .networks
            .iter()
            .any(|n| n.ipv4_address.as_deref() == Some("10.231.252.10")),
        "{:?}",
        web.options.networks
    );
    // What was created is what the files say: nothing to do (this engine, API 1.41, keeps no
    // healthcheck `start_interval`, which is then not compared).
    env.refinery(&["plan"]).await.code(0);

    // Changed by hand on the engine: config drift naming the fields, healed by apply.
    docker(&[
        "update",
        "--pids-limit",
        "999",
        "--cpu-shares",
        "256",
        &web_name,
    ])
    .await;
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has("pids_limit: 999 → 100")
        .stdout_has("cpu_shares: 256 → 512");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 recreated"));
    let web = inspect(&env, &web_name).await;
    assert_eq!(web.options.extra().pids_limit, Some(100));
    env.refinery(&["plan"]).await.code(0);

    // Changed in git: the new limit is drift until applied.
    env.commit_file("compose.yaml", &schema_compose(&env, 2048, 252));
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has("ulimits.nofile: 1024:8192 → 2048:8192");
    env.refinery(&["apply", "--yes"]).await.code(0);
    assert_eq!(
        inspect(&env, &web_name).await.options.extra().ulimits["nofile"].soft,
        2048
    );
    env.refinery(&["plan"]).await.code(0);

    // `restart: true`: when `db` is replaced, `web` is restarted after it.
    let db = inspect(&env, &db_name).await;
    env.rt.remove(&db.id).await.expect("remove db by hand");
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!("docker/local/stack/{project}/db/1"))
        .stdout_has(&format!("docker/local/stack/{project}/web/1"))
        .stdout_has("`depends_on` says `restart: true`");
    let web_started = inspect(&env, &web_name).await.started_at;
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/db/1 created"))
        .stdout_has(&format!("docker/local/stack/{project}/web/1 restarted"));
    assert_ne!(inspect(&env, &web_name).await.started_at, web_started);
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn compose_external_volume_missing_is_an_error_at_its_line_and_never_created() {
    let env = Env::new().await;
    let project = env.name("ext");
    let volume = env.name("ext-data");
    let run = env.run.id();
    env.commit_file(
        "docker-compose.yml",
        &format!(
            "services:
  app:
    image: {IMAGE}
    command: {SLEEP}
    volumes: [data:/data]
    labels: {{io.refinery.test: \"{run}\"}}
volumes:
  data:
    external: true
    name: {volume}
"
        ),
    );
    env.commit_manifest(&format!(
        "stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n"
    ));
    env.refinery(&["plan"])
        .await
        .code(2)
        .stderr_has("docker-compose.yml:8:3: `volumes.")
        .stderr_has(&format!(
            "external volume `{volume}` does not exist on node `local`"
        ))
        .stderr_has(&format!("`docker volume create {volume}`"));
    let json = env.refinery(&["plan", "--json"]).await;
    json.code(2);
    let doc = json.json();
    assert_eq!(doc["error"]["kind"], "missing_external", "{doc}");
    assert_eq!(doc["error"]["issues"][0]["line"], 8, "{doc}");
    assert_eq!(doc["error"]["exit_code"], 2);
    env.refinery(&["apply", "--yes"]).await.code(2);
    assert!(
        env.container("app").await.is_none()
            && inspect_missing(&env, &format!("{project}_app_1")).await,
        "nothing is done"
    );

    // Made by hand, as the hint says: it is used, never planned as created.
    env.run
        .create_volume(&env.rt, &volume, &Default::default())
        .await
        .expect("create the external volume");
    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has(&format!("docker/local/stack/{project}/app/1"));
    assert!(
        !plan
            .stdout
            .contains(&format!("docker/local/volume/{volume}")),
        "{}",
        plan.stdout
    );
    env.refinery(&["apply", "--yes"]).await.code(0);
    env.refinery(&["plan"]).await.code(0);
}

async fn inspect_missing(env: &Env, name: &str) -> bool {
    env.rt.inspect(name).await.is_err()
}

#[tokio::test]
async fn compose_plan_json_prints_an_error_document_when_the_files_do_not_load() {
    let env = Env::offline();
    env.commit_file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx:1.27\n    enviroment: {A: b}\n    ports: ['80:80:80']\n",
    );
    env.commit_manifest("stacks:\n  - name: broken\n");
    let run = env.refinery(&["plan", "--json"]).await;
    run.code(2).stderr_has("compose.yaml:4:5");
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "invalid_manifest", "{doc}");
    let issues = doc["error"]["issues"].as_array().expect("issues");
    assert_eq!(issues.len(), 2, "{doc}");
    assert_eq!(issues[0]["file"], "compose.yaml");
    assert_eq!(issues[0]["line"], 4);
    assert_eq!(issues[0]["hint"], "did you mean `environment`?");
    assert_eq!(issues[1]["line"], 5);
}

#[tokio::test]
async fn compose_plan_says_when_an_image_is_absent_and_pull_policy_forbids_pulling_it() {
    let env = Env::new().await;
    let project = env.name("pull");
    let absent = format!("{}:1", env.name("absent"));
    let run = env.run.id();
    env.commit_file(
        "compose.yaml",
        &format!(
            "services:
  app:
    image: {absent}
    pull_policy: never
    labels: {{io.refinery.test: \"{run}\"}}
  other:
    image: {absent}
    labels: {{io.refinery.test: \"{run}\"}}
"
        ),
    );
    env.commit_manifest(&format!("stacks:\n  - name: {project}\n"));
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!(
            "image `{absent}` is not present locally, and `pull_policy: never` forbids pulling it"
        ))
        .stdout_has(&format!(
            "image `{absent}` is not present locally: it will be pulled"
        ));
}

#[tokio::test]
async fn compose_bind_missing_from_the_commit_is_warned_once_at_its_line() {
    // `Env::offline`: validate reads the commit only.
    let env = Env::offline();
    let project = env.name("binds");
    env.commit_file("conf/app.conf", "level = info\n");
    env.commit_file(
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {IMAGE}\n    deploy: {{replicas: 2}}\n    volumes:\n      - ./conf:/conf:ro\n      - ./consume:/consume\n"
        ),
    );
    env.commit_manifest(&format!("stacks:\n  - name: {project}\n"));
    let run = env.refinery(&["validate"]).await;
    // The folder docker compose would create at `up` is not in git: a warning at its entry in
    // the compose file (not at `refinery.yaml:1:1`), once for both replicas.
    run.code(0).stderr_has(
        "warning: compose.yaml:7:9: `services.app.volumes[1]`: `./consume` (mounted at `/consume`) is not in commit",
    );
    assert_eq!(
        run.stderr.matches("is not in commit").count(),
        1,
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn compose_schema_keys_changed_by_hand_on_the_engine_are_each_reported_and_healed() {
    let env = Env::new().await;
    let project = env.name("byhand");
    env.commit_file("compose.yaml", &schema_compose(&env, 1024, 253));
    env.commit_manifest(&format!("stacks:\n  - name: {project}\n"));
    let web_name = format!("{project}_web_1");
    env.refinery(&["apply", "--yes"]).await.code(0);
    env.refinery(&["plan"]).await.code(0);

    // Someone replaces `web` with `docker run`, keeping compose's labels (so it is still the
    // service's replica) but not what the file says of these keys.
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &web_name]).await;
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&labels).expect("labels as JSON");
    docker(&["rm", "-f", &web_name]).await;
    let mut args: Vec<String> = ["run", "-d", "--init", "--name", &web_name]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    for (k, v) in &labels {
        args.extend(["--label".to_owned(), format!("{k}={v}")]);
    }
    for flag in [
        "--network",
        &format!("{project}_back"),
        "--ip",
        "10.231.253.10",
        "--expose",
        "3000",
        "--ulimit",
        "nofile=512:8192",
        "--ulimit",
        "nproc=4096",
        "--sysctl",
        "net.core.somaxconn=512",
        "--shm-size",
        "32m",
        "--group-add",
        "456",
        "--oom-score-adj",
        "200",
        "--pids-limit",
        "100",
        "--memory",
        "64m",
        "--memory-reservation",
        "16m",
        "--memory-swap",
        "128m",
        "--cpu-shares",
        "512",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpuset-cpus",
        "0",
        "--dns",
        "8.8.8.8",
        "--dns-search",
        "example.net",
        "--dns-option",
        "ndots:3",
        "--domainname",
        "example.net",
        "--ipc",
        "shareable",
        "--restart",
        "on-failure:2",
        "-v",
        "/tmp:/hosttmp:ro",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait $!",
    ] {
        args.push(flag.to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args).await;

    // Each key is config drift naming it, from what runs to what the file says.
    let plan = env.refinery(&["plan"]).await;
    plan.code(3);
    for field in [
        "expose: 3000/tcp → 3000/tcp, 9100/udp, 9101/udp",
        "ulimits.nofile: 512:8192 → 1024:8192",
        "sysctls.net.core.somaxconn: 512 → 1024",
        "stdin_open: false → true",
        "tty: false → true",
        "shm_size: 33554432 → 134217728",
        "devices: (none) → /dev/null:/dev/mynull:rw",
        "device_cgroup_rules: (none) → c 1:3 mr",
        "group_add: 456 → 123",
        "oom_score_adj: 200 → 100",
        "mem_reservation: 16777216 → 33554432",
        "dns: 8.8.8.8 → 1.1.1.1",
        "dns_search: example.net → example.com",
        "dns_opt: ndots:3 → ndots:2",
        "domainname: example.net → example.org",
        &format!("links: (none) → {project}_db_1:database"),
        &format!("volumes_from: (none) → {project}_db_1:ro"),
        "volumes.propagation: (none) → /hosttmp=private",
    ] {
        plan.stdout_has(field);
    }
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 recreated"));
    let web = inspect(&env, &web_name).await;
    let x = web.options.extra();
    assert_eq!(x.ulimits["nofile"].soft, 1024);
    assert_eq!(x.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(x.dns, ["1.1.1.1"]);
    assert_eq!(
        x.bind_propagation.get("/hosttmp").map(String::as_str),
        Some("private")
    );
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn compose_plausible_with_its_images_swapped_comes_up_in_sync() {
    let env = Env::new().await;
    let project = env.name("plausible");
    let run: std::ffi::OsString = env.run.id().into();
    let vars = || vec![("REFINERY_TEST_RUN".to_owned(), run.clone())];
    // Plausible's own files, as published, and our committed override (see the fixture's SOURCE):
    // the test image for every service, and a published port the engine picks (`!override`).
    commit_fixture(
        &env,
        "valid-plausible-community-edition",
        &[
            "docker-compose.yml",
            "plausible-conf.env",
            "clickhouse/clickhouse-config.xml",
            "clickhouse/clickhouse-user-config.xml",
            "test-images.override.yml",
        ],
    );
    env.commit_manifest(&format!(
        "stacks:\n  - name: {project}\n    files: [docker-compose.yml, test-images.override.yml]\n"
    ));
    env.refinery_env(&["plan"], vars())
        .await
        .code(3)
        .stdout_has(&format!("docker/local/stack/{project}/plausible/1"))
        .stdout_has(&format!("docker/local/volume/{project}_event-data"))
        .stdout_has("start order on `local` (depends_on): ");
    env.refinery_env(&["apply", "--yes"], vars()).await.code(0);
    for svc in ["mail", "plausible_db", "plausible_events_db", "plausible"] {
        let c = inspect(&env, &format!("{project}_{svc}_1")).await;
        assert_eq!(c.state, ContainerState::Running, "{svc}");
    }
    // What the project's files say, on the engine: the env file, the ulimit, the committed
    // ClickHouse configuration mounted read-only, the port on loopback only.
    let web = inspect(&env, &format!("{project}_plausible_1")).await;
    assert_eq!(
        web.env.get("BASE_URL").map(String::as_str),
        Some("replace-me")
    );
    assert_eq!(web.ports.len(), 1, "{:?}", web.ports);
    assert_eq!(web.ports[0].host_ip, "127.0.0.1");
    assert_eq!(web.ports[0].host_port, None);
    let events = inspect(&env, &format!("{project}_plausible_events_db_1")).await;
    assert_eq!(
        events.options.extra().ulimits["nofile"].soft,
        16_384,
        "{:?}",
        events.options.extra().ulimits
    );
    let xml = docker(&[
        "exec",
        &events.name,
        "cat",
        "/etc/clickhouse-server/config.d/logging.xml",
    ])
    .await;
    assert!(
        xml.contains("<clickhouse>") || xml.contains("<yandex>"),
        "{xml}"
    );
    // Nothing left to do.
    env.refinery_env(&["plan"], vars()).await.code(0);
}

#[tokio::test]
async fn compose_dependency_that_fails_to_start_fails_its_dependants_at_once() {
    let env = Env::new().await;
    let project = env.name("depfail");
    let run = env.run.id();
    // No kernel allows two million open files: `db` is created, fails to start and is removed.
    env.commit_file(
        "compose.yaml",
        &format!(
            "services:\n  db:\n    image: {IMAGE}\n    command: {SLEEP}\n    ulimits: {{nofile: 2000000}}\n    labels: {{io.refinery.test: \"{run}\"}}\n  web:\n    image: {IMAGE}\n    command: {SLEEP}\n    depends_on: [db]\n    labels: {{io.refinery.test: \"{run}\"}}\n"
        ),
    );
    env.commit_manifest(&format!("stacks:\n  - name: {project}\n"));
    let started = std::time::Instant::now();
    let apply = env.refinery(&["apply", "--yes"]).await;
    // `web` is not left waiting two minutes for a `db` that will not come: it fails, saying why.
    apply
        .stdout_has(&format!("docker/local/stack/{project}/db/1 failed"))
        .stdout_has(&format!("docker/local/stack/{project}/web/1 failed"))
        .stdout_has("its step failed");
    assert_ne!(apply.code, 0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "apply took {:?}",
        started.elapsed()
    );
}
