//! Compose stacks on the real engine: a project modelled on seed 002 (a network, a named volume,
//! a healthcheck-gated `depends_on`, replicas) comes up in order, drift is healed per service,
//! `docker-compose ps` lists what Refinery made, and a project started by `docker-compose up`
//! is adopted with no drift.

use std::time::Duration;

use refinery_core::{ContainerRuntime, ContainerState, Health};

use crate::common::{Env, IMAGE};

/// Seed 002's production file, reduced, on the test image: a db with a healthcheck and a named
/// volume, `web` (2 replicas) waiting for it to be healthy, both on one network.
fn compose_file(env: &Env) -> String {
    let run = env.run.id();
    format!(
        "version: '3.8'
services:
  db:
    image: {IMAGE}
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 1s
      retries: 3
    restart: unless-stopped
    volumes:
      - data:/data
    networks: [backend]
    labels: {{io.refinery.test: \"{run}\"}}
  web:
    image: {IMAGE}
    depends_on:
      db: {{condition: service_healthy}}
    environment:
      - ENV=${{STAGE:-production}}
    deploy:
      replicas: 2
    networks:
      backend:
        aliases: [www]
    working_dir: /tmp
    security_opt: [\"no-new-privileges:true\"]
    mem_limit: 64m
    extra_hosts: [\"upstream:10.0.0.1\"]
    labels: {{io.refinery.test: \"{run}\"}}
networks:
  backend:
    driver: bridge
volumes:
  data:
"
    )
}

fn stack_manifest(project: &str) -> String {
    format!("stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n")
}

async fn docker_compose(env: &Env, project: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new("docker-compose");
    cmd.current_dir(env.repo.path())
        .arg("-p")
        .arg(project)
        .arg("-f")
        .arg("docker-compose.yml")
        .args(args)
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("docker-compose finishes")
        .expect("run docker-compose")
}

/// The docker CLI, for what the runtime port does not do (networks and volumes by hand).
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

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_else(|e| panic!("timestamp `{s}`: {e}"))
}

#[tokio::test]
async fn compose_stack_comes_up_in_order_is_listed_by_docker_compose_and_heals() {
    let env = Env::new().await;
    let project = env.name("shop");
    env.commit_file("docker-compose.yml", &compose_file(&env));
    env.commit_manifest(&stack_manifest(&project));

    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has(&format!("docker/local/stack/{project}/db/1"))
        .stdout_has(&format!("docker/local/stack/{project}/web/2"));

    env.refinery(&["apply", "--yes"]).await.code(0);

    let db = inspect(&env, &format!("{project}_db_1")).await;
    assert_eq!(db.state, ContainerState::Running);
    assert_eq!(db.health, Health::Healthy);
    assert!(
        db.mounts
            .iter()
            .any(|m| m.source == format!("{project}_data") && m.target == "/data"),
        "{:?}",
        db.mounts
    );
    for n in 1..=2 {
        let web = inspect(&env, &format!("{project}_web_{n}")).await;
        assert_eq!(web.state, ContainerState::Running);
        // Created only once the db was healthy: its first check runs a second after its start.
        let started = ts(db.started_at.as_deref().expect("db started"));
        let created = ts(&web.created);
        assert!(
            created.duration_since(started) >= jiff::SignedDuration::from_millis(900),
            "web_{n} created {created}, db started {started}"
        );
        let net = web
            .options
            .networks
            .iter()
            .find(|x| x.name == format!("{project}_backend"))
            .unwrap_or_else(|| panic!("web_{n} on the backend network: {:?}", web.options));
        assert!(net.aliases.contains(&"www".to_owned()));
        assert!(net.aliases.contains(&"web".to_owned()));
        assert_eq!(web.options.memory_bytes, Some(64 << 20));
        assert_eq!(web.options.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(web.env.get("ENV").map(String::as_str), Some("production"));
    }

    // docker-compose lists them in the project, by service.
    let ps = docker_compose(&env, &project, &["ps"]).await;
    let listing = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.status.success(),
        "{listing}\n{}",
        String::from_utf8_lossy(&ps.stderr)
    );
    for name in ["db_1", "web_1", "web_2"] {
        assert!(
            listing.contains(&format!("{project}_{name}")),
            "docker-compose ps misses {name}:\n{listing}"
        );
    }

    env.refinery(&["plan"]).await.code(0);

    // Drift per service: one replica removed, the other stopped, the db's env changed by hand
    // is not possible without recreating, so: db stopped too.
    let web1 = format!("{project}_web_1");
    let web2 = format!("{project}_web_2");
    env.rt
        .remove(&inspect(&env, &web2).await.id)
        .await
        .expect("remove web_2");
    env.rt.stop(&web1, 1).await.expect("stop web_1");
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!("docker/local/stack/{project}/web/2"))
        .stdout_has("missing");
    env.refinery(&["apply", "--yes", "--stack", "nope"])
        .await
        .code(2)
        .stderr_has("failed to find stack `nope`");
    let applied = env.refinery(&["apply", "--yes", "--stack", &project]).await;
    applied
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/2 created"));
    env.refinery(&["plan"]).await.code(0);
    assert_eq!(inspect(&env, &web1).await.state, ContainerState::Running);
}

#[tokio::test]
async fn compose_stack_started_by_docker_compose_shows_no_drift() {
    let env = Env::new().await;
    let project = env.name("adopt");
    env.commit_file("docker-compose.yml", &compose_file(&env));
    env.commit_manifest(&stack_manifest(&project));

    let up = docker_compose(&env, &project, &["up", "-d"]).await;
    assert!(
        up.status.success(),
        "docker-compose up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let before = inspect(&env, &format!("{project}_web_1")).await.id;

    let plan = env.refinery(&["plan"]).await;
    plan.code(0);
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 unchanged"));
    assert_eq!(
        inspect(&env, &format!("{project}_web_1")).await.id,
        before,
        "adopted, not recreated"
    );
}

/// A service that builds its image from a directory of the commit (FROM the local test image,
/// so nothing is pulled).
fn build_compose_file(env: &Env, context: &str) -> String {
    let run = env.run.id();
    format!(
        "services:
  web:
    build:
      context: {context}
      args: {{GREETING: hello}}
    labels: {{io.refinery.test: \"{run}\"}}
"
    )
}

const BUILD_DOCKERFILE: &str = "FROM refinery-test-busybox:latest
ARG GREETING=hi
ENV GREETING=$GREETING
COPY message.txt /message.txt
COPY run.sh /run.sh
CMD [\"/run.sh\"]
";

/// The build's command: runs only if the context kept git's executable bit.
const RUN_SH: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile true; do sleep 1; done\n";

#[tokio::test]
async fn compose_build_service_is_built_from_the_commit_and_rebuilt_when_its_context_changes() {
    let env = Env::new().await;
    let project = env.name("build");
    let web = format!("{project}_web_1");
    env.commit_file("app/Dockerfile", BUILD_DOCKERFILE);
    env.repo.write("app/run.sh", RUN_SH);
    std::fs::set_permissions(
        env.repo.path().join("app/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod +x run.sh");
    env.commit_file("app/message.txt", "one\n");
    env.commit_file("docker-compose.yml", &build_compose_file(&env, "./app"));
    env.commit_manifest(&stack_manifest(&project));

    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!("builds `{project}-web:refinery-"))
        .stdout_has("from `app`");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 created"));
    let first = inspect(&env, &web).await;
    env.run.track_image(&first.image);
    assert!(
        first.image.starts_with(&format!("{project}-web:refinery-")),
        "{}",
        first.image
    );
    assert_eq!(
        first.state,
        ContainerState::Running,
        "runs /run.sh, executable as committed"
    );
    assert_eq!(first.command, Some(vec!["/run.sh".to_owned()]));
    assert_eq!(
        first.env.get("GREETING").map(String::as_str),
        Some("hello"),
        "built with the declared args"
    );
    // Built once; an unchanged context is neither drift nor rebuilt.
    env.refinery(&["plan"]).await.code(0);
    env.refinery(&["apply", "--yes"]).await.code(0);
    assert_eq!(inspect(&env, &web).await.id, first.id);

    // The work tree does not count: only a commit does.
    std::fs::write(env.repo.path().join("app/message.txt"), "uncommitted\n")
        .expect("write the work tree");
    env.refinery(&["plan"]).await.code(0);

    // A changed context in a new commit is image drift: rebuilt, then recreated.
    env.commit_file("app/message.txt", "two\n");
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!("docker/local/stack/{project}/web/1"))
        .stdout_has("image");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 recreated"));
    let second = inspect(&env, &web).await;
    env.run.track_image(&second.image);
    assert_ne!(second.image, first.image);
    assert_ne!(second.image_id, first.image_id);
    env.refinery(&["plan"]).await.code(0);

    // A context outside the repository is a load error naming file, line, column and service;
    // nothing on the engine changes.
    env.commit_file(
        "docker-compose.yml",
        &build_compose_file(&env, "../elsewhere"),
    );
    env.refinery(&["apply", "--yes"])
        .await
        .code(2)
        .stderr_has("docker-compose.yml:3:5")
        .stderr_has("service `web`: build context `../elsewhere` is outside the repository");
    assert_eq!(inspect(&env, &web).await.id, second.id);
}

/// Seed 003's profiles file, reduced: `server` built from the repository (`target: cpu-build`
/// of a multi-stage Dockerfile FROM the local test image) behind a healthy `redis` with a
/// persistent volume, `worker` replicas, a `gpu` service in a profile the stack does not select,
/// all on one network.
fn seed_003_compose(env: &Env) -> String {
    let run = env.run.id();
    format!(
        "services:
  server:
    build: {{context: ., target: cpu-build}}
    profiles: [cpu, full]
    depends_on:
      redis: {{condition: service_healthy}}
    networks: [dredge-network]
    labels: {{io.refinery.test: \"{run}\"}}
  gpu:
    build: {{context: ., target: gpu-build}}
    profiles: [gpu, full]
    labels: {{io.refinery.test: \"{run}\"}}
  redis:
    image: {IMAGE}
    healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s, retries: 3}}
    volumes: [redis-data:/data]
    networks: [dredge-network]
    labels: {{io.refinery.test: \"{run}\"}}
  worker:
    image: {IMAGE}
    profiles: [cpu, full]
    environment: {{ROLE: worker}}
    deploy: {{replicas: 3}}
    networks: [dredge-network]
    labels: {{io.refinery.test: \"{run}\"}}
networks:
  dredge-network:
    driver: bridge
volumes:
  redis-data:
"
    )
}

const SEED_003_DOCKERFILE: &str = "FROM refinery-test-busybox:latest AS base
FROM base AS cpu-build
ENV TARGET=cpu
FROM base AS gpu-build
ENV TARGET=gpu
";

/// A container made by hand (not by Refinery) carrying docker compose's labels for `service`
/// replica `number` of `project`, named `<project>_<service>_<number>`.
async fn by_hand_replica(
    env: &Env,
    project_suffix: &str,
    service: &str,
    number: u32,
    edit: impl FnOnce(&mut refinery_core::ContainerSpec),
) -> String {
    let project = env.name(project_suffix);
    let mut spec = env.spec("unused");
    spec.labels.extend([
        ("com.docker.compose.project".to_owned(), project),
        ("com.docker.compose.service".to_owned(), service.to_owned()),
        (
            "com.docker.compose.container-number".to_owned(),
            number.to_string(),
        ),
        ("com.docker.compose.oneoff".to_owned(), "False".to_owned()),
    ]);
    edit(&mut spec);
    env.create_by_hand(&format!("{project_suffix}_{service}_{number}"), spec)
        .await
}

#[tokio::test]
async fn compose_stack_heals_each_drift_type_per_service() {
    let env = Env::new().await;
    let project = env.name("dredge");
    let c = |service: &str, n: u32| format!("{project}_{service}_{n}");
    let id = |service: &str, n: u32| format!("docker/local/stack/{project}/{service}/{n}");
    env.commit_file("Dockerfile", SEED_003_DOCKERFILE);
    env.commit_file("docker-compose.profiles.yml", &seed_003_compose(&env));
    env.commit_manifest(&format!(
        "stacks:
  - name: {project}
    files: [docker-compose.profiles.yml]
    profiles: [cpu]
drift_rules:
  unauthorized_containers: {{action: terminate}}
"
    ));

    env.refinery(&["apply", "--yes"]).await.code(0);
    let server = inspect(&env, &c("server", 1)).await;
    env.run.track_image(&server.image);
    assert_eq!(
        server.env.get("TARGET").map(String::as_str),
        Some("cpu"),
        "built at `target: cpu-build`"
    );
    assert!(
        env.rt.inspect(&c("gpu", 1)).await.is_err(),
        "the gpu profile is not selected"
    );
    env.refinery(&["plan"]).await.code(0);

    // One drift of each type, each on its own service replica.
    env.rt
        .remove(&inspect(&env, &c("worker", 2)).await.id)
        .await
        .expect("remove worker_2");
    refinery_docker::testsupport::pause(&env.rt, &c("worker", 1))
        .await
        .expect("pause worker_1");
    env.rt.stop(&c("redis", 1), 1).await.expect("stop redis_1");
    env.rt.remove(&server.id).await.expect("remove server_1");
    by_hand_replica(&env, "dredge", "server", 1, |_| {}).await;
    let worker3 = inspect(&env, &c("worker", 3)).await;
    env.rt.remove(&worker3.id).await.expect("remove worker_3");
    by_hand_replica(&env, "dredge", "worker", 3, |s| {
        s.image.clone_from(&worker3.image);
        s.env.insert(
            "ROLE".into(),
            refinery_core::Secret::for_name("ROLE", "changed by hand"),
        );
    })
    .await;
    by_hand_replica(&env, "dredge", "worker", 9, |_| {}).await;

    let plan = env.refinery(&["plan"]).await;
    plan.code(3);
    let row = |needle: &str| {
        plan.stdout
            .lines()
            .find(|l| l.contains(&format!("{needle} ")) || l.ends_with(needle))
            .unwrap_or_else(|| panic!("no row for {needle}:\n{}", plan.stdout))
            .to_owned()
    };
    assert!(row(&id("worker", 2)).contains("missing"), "{}", plan.stdout);
    assert!(row(&id("worker", 1)).contains("status"), "{}", plan.stdout);
    assert!(row(&id("redis", 1)).contains("status"), "{}", plan.stdout);
    assert!(row(&id("server", 1)).contains("image"), "{}", plan.stdout);
    assert!(row(&id("worker", 3)).contains("config"), "{}", plan.stdout);
    assert!(
        row(&format!("docker/local/container/{}", c("worker", 9))).contains("unauthorized"),
        "{}",
        plan.stdout
    );

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .code(0)
        .stdout_has(&format!("{} created", id("worker", 2)))
        .stdout_has(&format!("{} restarted", id("worker", 1)))
        .stdout_has(&format!("{} restarted", id("redis", 1)))
        .stdout_has(&format!("{} recreated", id("server", 1)))
        .stdout_has(&format!("{} recreated", id("worker", 3)))
        .stdout_has(&format!(
            "docker/local/container/{} removed",
            c("worker", 9)
        ));
    env.refinery(&["plan"]).await.code(0);
    let worker3 = inspect(&env, &c("worker", 3)).await;
    assert_eq!(worker3.env.get("ROLE").map(String::as_str), Some("worker"));
    assert_eq!(inspect(&env, &c("server", 1)).await.image, server.image);
}

#[tokio::test]
async fn compose_stack_network_is_created_again_and_volume_drift_is_reported_never_deleted() {
    let env = Env::new().await;
    let project = env.name("net");
    let volume = format!("{project}_data");
    let network = format!("{project}_backend");
    let run = env.run.id();
    env.commit_file(
        "docker-compose.yml",
        &format!(
            "services:
  app:
    image: {IMAGE}
    volumes: [data:/data]
    networks: [backend]
    labels: {{io.refinery.test: \"{run}\"}}
networks:
  backend: {{}}
volumes:
  data: {{}}
"
        ),
    );
    env.commit_manifest(&stack_manifest(&project));
    // The volume exists already, made by someone else for another project.
    env.run
        .create_volume(
            &env.rt,
            &volume,
            &std::collections::BTreeMap::from([(
                "com.docker.compose.project".to_owned(),
                "someone-else".to_owned(),
            )]),
        )
        .await
        .expect("create the volume by hand");

    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has(&format!("docker/local/network/{network}"))
        .stdout_has(&format!("docker/local/volume/{volume}"))
        .stdout_has("labels.com.docker.compose.project: someone-else");
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .stdout_has(&format!("docker/local/network/{network} created"))
        .stdout_has(&format!("docker/local/stack/{project}/app/1 created"));
    // Reported, never recreated nor deleted: the volume is the one made by hand, in use.
    let label = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"com.docker.compose.project\"}}",
        &volume,
    ])
    .await;
    assert_eq!(label, "someone-else");
    let app = inspect(&env, &format!("{project}_app_1")).await;
    assert!(
        app.mounts.iter().any(|m| m.source == volume),
        "{:?}",
        app.mounts
    );

    // A network removed after creation is created again.
    env.rt.remove(&app.id).await.expect("remove app");
    docker(&["network", "rm", &network]).await;
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has(&format!("docker/local/network/{network}"))
        .stdout_has("missing");
    env.refinery(&["apply", "--yes"])
        .await
        .stdout_has(&format!("docker/local/network/{network} created"))
        .stdout_has(&format!("docker/local/stack/{project}/app/1 created"));
    docker(&["network", "inspect", &network]).await;
}

#[tokio::test]
async fn compose_v2_named_container_is_adopted_like_v1() {
    let env = Env::new().await;
    let project = env.name("vtwo");
    let run = env.run.id();
    env.commit_file(
        "docker-compose.yml",
        &format!(
            "services:\n  web:\n    image: {IMAGE}\n    labels: {{io.refinery.test: \"{run}\"}}\n"
        ),
    );
    env.commit_manifest(&stack_manifest(&project));
    // What `docker compose` (v2) names it: `project-service-1`, on the project's default network.
    docker(&[
        "network",
        "create",
        "--label",
        "com.docker.compose.network=default",
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        "com.docker.compose.version=2.24.0",
        &format!("{project}_default"),
    ])
    .await;
    let made = by_hand_replica(&env, "vtwo", "web", 1, |s| {
        s.options.networks = vec![refinery_core::NetworkAttachment {
            name: format!("{project}_default"),
            aliases: vec!["web".into()],
            ..Default::default()
        }];
    })
    .await;
    // by_hand_replica names it the v1 way; rename it the v2 way.
    env.rt
        .rename(&made, &format!("{project}-web-1"))
        .await
        .expect("rename to the v2 name");

    let plan = env.refinery(&["plan"]).await;
    plan.code(0);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 unchanged"));
    assert_eq!(
        inspect(&env, &format!("{project}-web-1")).await.id,
        made,
        "adopted, not recreated"
    );
}
