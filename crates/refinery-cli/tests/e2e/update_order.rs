//! `update_order` on the real engine: a compose service (busybox `httpd` with a healthcheck,
//! answering on the network alias `www` of a user network) is replaced while a client container
//! on that network asks `http://www/` every 100 ms.
//!
//! - `deploy.update_config.order: start-first`: not one request fails, and the engine's events
//!   show the new container started (as `NAME.refinery-new`) before the old one died;
//! - stop-first (the default), same setup: the old container dies before the new one starts
//!   (the gap the client usually sees as failed requests);
//! - start-first whose new container never gets healthy: the step fails within
//!   `config.health_deadline`, the new container is gone, the old one still serves.

use std::time::Duration;

use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE};

/// The service: `index.html` holds `$VERSION`; with `BROKEN` set it never serves (so its
/// healthcheck fails).
fn compose_file(env: &Env, version: &str, order: Option<&str>, broken: bool) -> String {
    let run = env.run.id();
    let deploy = order
        .map(|o| {
            format!(
                "    deploy:\n      update_config:\n        order: {o}\n        parallelism: 1\n"
            )
        })
        .unwrap_or_default();
    let broken = if broken { "\n      - BROKEN=1" } else { "" };
    format!(
        "services:
  web:
    image: {IMAGE}
    command:
      - sh
      - -c
      - |
        trap 'exit 0' TERM
        mkdir -p /www
        echo \"$$VERSION\" > /www/index.html
        if [ -z \"$$BROKEN\" ]; then httpd -f -p 80 -h /www & fi
        while true; do sleep 1 & wait $$!; done
    environment:
      - VERSION={version}{broken}
    healthcheck:
      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1/\"]
      interval: 1s
      timeout: 2s
      retries: 2
    networks:
      front:
        aliases: [www]
{deploy}    labels: {{io.refinery.test: \"{run}\"}}
networks:
  front: {{}}
"
    )
}

fn manifest(env: &Env, project: &str) -> String {
    format!(
        "config: {{selector: \"{}\", health_deadline: 15s}}\nstacks:\n  - name: {project}\n    files: [docker-compose.yml]\n",
        env.selector()
    )
}

/// The docker CLI, for what the runtime port does not do (a client container, events).
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

/// A client on the stack's network asking `http://www/` every 100 ms: it prints what it got,
/// or `FAIL` when a request failed (no address, refused, timed out). (Busybox's own `wget -T`
/// crashes in this static build, hence `timeout`.)
async fn start_client(env: &Env, project: &str) -> String {
    let name = env.name("client");
    let label = format!("io.refinery.test={}", env.run.id());
    let network = format!("{project}_front");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &label,
        "--network",
        &network,
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do rm -f /tmp/r; if timeout 3 wget -q -O /tmp/r http://www/ 2>/dev/null; then cat /tmp/r; else echo FAIL; fi; sleep 0.1 & wait $!; done",
    ])
    .await;
    name
}

async fn client_log(client: &str) -> Vec<String> {
    docker(&["logs", client])
        .await
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the client has printed `version` `count` times; returns its whole log.
async fn wait_for_answers(client: &str, version: &str, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = client_log(client).await;
        if log.iter().filter(|l| *l == version).count() >= count {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client never got `{version}` {count} times: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Brings the stack up at `v1`, starts the client and waits until it gets answers; returns
/// the client's name and the container's first id.
async fn stack_with_client(env: &Env, project: &str, order: Option<&str>) -> (String, String) {
    env.commit_file("docker-compose.yml", &compose_file(env, "v1", order, false));
    env.commit_file("refinery.yaml", &manifest(env, project));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let web = format!("{project}_web_1");
    let first = env
        .rt
        .inspect(&web)
        .await
        .unwrap_or_else(|e| panic!("inspect `{web}`: {e}"));
    let client = start_client(env, project).await;
    wait_for_answers(&client, "v1", 3).await;
    (client, first.id)
}

/// `ACTION NAME` of every container event of this run between `since` and now.
async fn events_since(env: &Env, since: &str) -> Vec<String> {
    let until = jiff::Timestamp::now().to_string();
    let label = format!("label=io.refinery.test={}", env.run.id());
    docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        &label,
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ])
    .await
    .lines()
    .map(str::to_owned)
    .collect()
}

#[tokio::test]
async fn start_first_replaces_a_service_with_no_failed_request_to_its_alias() {
    let env = Env::new().await;
    let project = env.name("sf");
    let (client, first) = stack_with_client(&env, &project, Some("start-first")).await;

    // docker-compose 1.29 accepts the file as written.
    let check = tokio::process::Command::new("docker-compose")
        .current_dir(env.repo.path())
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .output()
        .await
        .expect("run docker-compose");
    assert!(
        check.status.success(),
        "docker-compose refused the file: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let since = jiff::Timestamp::now().to_string();
    env.commit_file(
        "docker-compose.yml",
        &compose_file(&env, "v2", Some("start-first"), false),
    );
    let web = format!("{project}_web_1");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 recreated"));
    let log = wait_for_answers(&client, "v2", 10).await;

    let failed = log.iter().filter(|l| *l == "FAIL").count();
    assert_eq!(failed, 0, "requests failed during the update: {log:?}");
    assert!(log.iter().any(|l| l == "v1"), "{log:?}");

    let now = env
        .rt
        .inspect(&web)
        .await
        .unwrap_or_else(|e| panic!("inspect `{web}`: {e}"));
    assert_ne!(now.id, first, "the container was replaced");
    assert_eq!(now.state, ContainerState::Running);
    assert_eq!(now.env.get("VERSION").map(String::as_str), Some("v2"));
    let net = now
        .options
        .networks
        .iter()
        .find(|n| n.name == format!("{project}_front"))
        .unwrap_or_else(|| panic!("on the stack's network: {:?}", now.options.networks));
    assert!(net.aliases.contains(&"www".to_owned()), "{net:?}");
    assert!(
        env.rt
            .inspect(&format!("{web}.refinery-new"))
            .await
            .is_err(),
        "no temporary container is left"
    );

    // Two containers at once: the new one started before the old one died.
    let events = events_since(&env, &since).await;
    let at = |line: &str| events.iter().position(|e| e == line);
    let new_started = at(&format!("start {web}.refinery-new"))
        .unwrap_or_else(|| panic!("no start of the new container: {events:?}"));
    let old_died =
        at(&format!("die {web}")).unwrap_or_else(|| panic!("no death of the old one: {events:?}"));
    assert!(new_started < old_died, "{events:?}");
    assert!(at(&format!("rename {web}")).is_some(), "{events:?}");

    // In sync afterwards (the client, undeclared, gone first).
    docker(&["rm", "-f", &client]).await;
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn stop_first_replacement_leaves_a_gap_on_the_alias() {
    let env = Env::new().await;
    let project = env.name("st");
    let (client, _) = stack_with_client(&env, &project, None).await;

    let since = jiff::Timestamp::now().to_string();
    env.commit_file("docker-compose.yml", &compose_file(&env, "v2", None, false));
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 recreated"));
    let log = wait_for_answers(&client, "v2", 3).await;

    // The old container died before the new one started: for that time nothing held the
    // alias. (The client usually sees it as failed requests; a resolver that retries while
    // the name is gone can hide it, so the engine's events are the proof.)
    let web = format!("{project}_web_1");
    let events = events_since(&env, &since).await;
    let at = |line: &str| events.iter().position(|e| e == line);
    let old_died = at(&format!("die {web}.refinery-old"))
        .or_else(|| at(&format!("die {web}")))
        .unwrap_or_else(|| panic!("no death of the old container: {events:?}"));
    let new_started = events
        .iter()
        .rposition(|e| *e == format!("start {web}"))
        .unwrap_or_else(|| panic!("no start of the new container: {events:?}"));
    assert!(old_died < new_started, "{events:?}");
    assert!(
        !events.iter().any(|e| e.contains("refinery-new")),
        "{events:?}"
    );
    let failed = log.iter().filter(|l| *l == "FAIL").count();
    eprintln!("stop-first: {failed} failed requests during the replacement");
}

#[tokio::test]
async fn start_first_keeps_the_old_container_when_the_new_one_never_gets_healthy() {
    let env = Env::new().await;
    let project = env.name("sb");
    let (client, first) = stack_with_client(&env, &project, Some("start-first")).await;

    env.commit_file(
        "docker-compose.yml",
        &compose_file(&env, "v2", Some("start-first"), true),
    );
    let web = format!("{project}_web_1");
    env.refinery(&["apply", "--yes"])
        .await
        .code(6)
        .stdout_has(&format!("docker/local/stack/{project}/web/1 failed"))
        .stdout_has("the new container became unhealthy; it was removed and the previous container keeps running");
    let still = env
        .rt
        .inspect(&web)
        .await
        .unwrap_or_else(|e| panic!("inspect `{web}`: {e}"));
    assert_eq!(still.id, first, "the old container stays");
    assert_eq!(still.state, ContainerState::Running);
    assert!(
        env.rt
            .inspect(&format!("{web}.refinery-new"))
            .await
            .is_err(),
        "the unhealthy new container is removed"
    );
    let before = client_log(&client).await.len();
    let log = wait_for_answers(&client, "v1", before + 3).await;
    assert!(
        !log.iter().any(|l| l == "FAIL"),
        "requests failed while the new container was tried: {log:?}"
    );
}
