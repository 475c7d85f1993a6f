//! Health-gated image updates against a real registry (Debian's `docker-registry` on loopback):
//! with `image_update: {action: recreate}`, a tag moved to an image whose healthcheck fails is
//! applied, judged unhealthy past `config.health_deadline`, rolled back to the image it ran
//! before (`rollback` entry, critical alert) and not tried again — not by the next passes, not
//! after a restart — until the tag moves once more (then the new digest is applied).

use std::ffi::OsStr;

use refinery_core::ContainerState;
use refinery_docker::testsupport::TestRegistry;

use crate::common::Env;
use crate::harness::{Daemon, eventually, kind, resource};

const PASSWORD: &str = "pw-rollback-51c2e0";

fn digest_is(e: &serde_json::Value, digest: &str) -> bool {
    e["image_digest"]
        .as_str()
        .is_some_and(|d| d.ends_with(&format!("@{digest}")))
}

/// The hold the daemon alerts after a rollback: the update it will not try again.
fn is_hold(e: &serde_json::Value, web_id: &str, digest: &str) -> bool {
    kind(e) == "alert"
        && resource(e) == web_id
        && e["message"].as_str().is_some_and(|m| {
            m.contains(&format!(
                "update to {} rolled back, waiting for the tag to move",
                &digest[..19]
            ))
        })
}

#[tokio::test]
async fn daemon_unhealthy_image_update_is_rolled_back_and_not_retried_until_the_tag_moves() {
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", PASSWORD).expect("start the registry");
    // Three images of this test's own: good `a`, `b` whose healthcheck fails, good `c`.
    let mut ids = Vec::new();
    let mut digests = Vec::new();
    for (tag, unhealthy) in [("a", false), ("b", true), ("c", false)] {
        let marker = format!("upd-{tag}");
        let (local, id) = if unhealthy {
            env.run.own_unhealthy_image(&env.rt, &marker).await
        } else {
            env.run.own_image(&env.rt, &marker).await
        }
        .expect("build");
        let digest = registry
            .push_as(&env.rt, &env.run, &local, "app", &[tag])
            .await
            .expect("push");
        ids.push(id);
        digests.push(digest);
    }
    let (a, b, c) = (&digests[0], &digests[1], &digests[2]);
    registry
        .move_tag("app", "a", "stable")
        .expect("app:stable → a");
    let image = registry.reference("app", "stable");
    env.run.track_image(&image);

    let web = env.name("web");
    let web_id = format!("docker/local/container/{web}");
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{selector}\", image_check_interval: 1s, health_deadline: 6s}}\n\
             {registries}\
             drift_rules:\n  image_update: {{action: recreate}}\n\
             containers:\n  - name: {web}\n    image: {image}\n",
            selector = env.selector(),
            registries = registry.manifest_registries("REG_TOKEN"),
        ),
    );
    let extra = ["--check-interval", "1s"];
    let token = [("REG_TOKEN", OsStr::new(PASSWORD))];
    let mut d = Daemon::start_with_env(env.repo.path(), &extra, &token);
    d.wait_entry("web born on a", |e| {
        kind(e) == "birth" && resource(e) == web_id && digest_is(e, a)
    })
    .await;

    // The tag moves to the unhealthy image: applied, then rolled back past the deadline.
    registry
        .move_tag("app", "b", "stable")
        .expect("app:stable → b");
    d.wait_entry("web recreated on b", |e| {
        kind(e) == "mutation" && resource(e) == web_id && digest_is(e, b)
    })
    .await;
    let rollback = d
        .wait_entry("web rolled back to a", |e| {
            kind(e) == "rollback" && resource(e) == web_id && digest_is(e, a)
        })
        .await;
    assert_eq!(rollback["outcome"], "rolled_back", "{rollback}");
    let alert = d
        .wait_entry("critical alert", |e| {
            kind(e) == "alert" && resource(e) == web_id && e["level"] == "critical"
        })
        .await;
    let message = alert["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not running and healthy within 6s")
            && message.contains(&format!("rolled back to {}", &a[..19]))
            && message.contains("is not tried again until the tag moves"),
        "{message}"
    );
    let running = env.existing("web").await;
    assert_eq!(running.image_id, ids[0], "back on the image of a");
    assert_eq!(running.state, ContainerState::Running);
    // A later pass sees the update again and holds it back (an alert, no action).
    d.wait_entry("update held back", |e| is_hold(e, &web_id, b))
        .await;

    // `plan` shows it as the daemon holds it.
    let plan = env
        .refinery_env(
            &["plan", "--state-dir", &d.state_dir.to_string_lossy()],
            vec![("REG_TOKEN".into(), PASSWORD.into())],
        )
        .await;
    plan.code(3)
        .row(&[&web_id, "image_update", "alert"])
        .stdout_has(&format!(
            "update to {} rolled back, waiting for the tag to move",
            &b[..19]
        ));

    // A restart remembers: the new daemon holds it back too (its own alert), tries nothing.
    let mut d = d.kill_and_restart(env.repo.path(), &extra);
    eventually(
        "the restarted daemon holds the update back",
        &mut d,
        || async {
            let holds = d_entries_matching(&env, |e| is_hold(e, &web_id, b));
            (holds >= 2).then_some(())
        },
    )
    .await;
    let attempts_on_b = |d: &Daemon| {
        d.entry_values()
            .iter()
            .filter(|e| kind(e) == "mutation" && resource(e) == web_id && digest_is(e, b))
            .count()
    };
    assert_eq!(attempts_on_b(&d), 1, "b is not tried again");

    // The tag moves once more, to a healthy image: applied, and it stays.
    registry
        .move_tag("app", "c", "stable")
        .expect("app:stable → c");
    d.wait_entry("web recreated on c", |e| {
        kind(e) == "mutation" && resource(e) == web_id && digest_is(e, c)
    })
    .await;
    eventually("web runs c", &mut d, || async {
        env.container("web")
            .await
            .filter(|o| o.image_id == ids[2] && o.state == ContainerState::Running)
    })
    .await;
    assert_eq!(attempts_on_b(&d), 1, "b was never tried a second time");
    d.stop().await;
}

/// How many ledger entries of `env`'s ledger satisfy `pred`.
fn d_entries_matching(env: &Env, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
    std::fs::read_to_string(env.repo.path().join("ledger/container_ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| pred(e))
        .count()
}

/// A registry that goes away: each failed check is counted in `/metrics`, the first one (and
/// only it) is an alert, and the running container is kept.
#[tokio::test]
async fn daemon_registry_check_failures_are_alerted_once_and_counted() {
    use crate::observability::{free_port, get, parse_metrics};
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", PASSWORD).expect("start the registry");
    let digest = registry
        .push_new(&env.rt, &env.run, "chk", "app", &["1"])
        .await
        .expect("push")
        .digest;
    let image = registry.reference("app", "1");
    let host = registry.host.clone();
    let web = env.name("web");
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{selector}\", image_check_interval: 1s}}\n\
             {registries}\
             containers:\n  - name: {web}\n    image: {image}\n",
            selector = env.selector(),
            registries = registry.manifest_registries("REG_TOKEN"),
        ),
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--check-interval", "1s", "--listen", &listen],
        &[("REG_TOKEN", OsStr::new(PASSWORD))],
    );
    d.wait_entry("web born", |e| kind(e) == "birth" && digest_is(e, &digest))
        .await;
    let before = env.existing("web").await.id;

    drop(registry);
    let is_failure_alert = |e: &serde_json::Value| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains(&format!("failed to check registry `{host}`"))
                    && m.contains(&format!("`{image}`"))
            })
    };
    d.wait_entry("registry failure alert", is_failure_alert)
        .await;
    let series = format!("refinery_registry_check_failures_total{{registry=\"{host}\"}}");
    let metrics = format!("http://{listen}/metrics");
    eventually("a second failed check counted", &mut d, || async {
        let (code, text) = get(&metrics).await;
        let n = parse_metrics(&text).get(&series).copied().unwrap_or(0.0);
        (code == 200 && n >= 2.0).then_some(())
    })
    .await;
    let alerts = d
        .entry_values()
        .iter()
        .filter(|e| is_failure_alert(e))
        .count();
    assert_eq!(alerts, 1, "the outage is alerted once");
    assert_eq!(env.existing("web").await.id, before, "nothing changed");
    d.stop().await;
}
