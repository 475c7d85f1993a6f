//! Port fallback on the real engine: a declared host port held by a host process (a listener in
//! this test) makes `apply` use the declared fallback and report it degraded; `plan` stays in
//! sync; once the listener is gone, `apply` moves the container back to its primary.

use std::net::TcpListener;

use refinery_core::labels;

use crate::common::{Env, IMAGE};

/// A listener on all addresses, on a port the kernel picks: the port stays taken while it lives.
fn hold_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("0.0.0.0:0").expect("bind an ephemeral port");
    let port = l.local_addr().expect("listener address").port();
    (l, port)
}

/// A port free right now (released at once), different from `others`.
fn free_port_besides(others: &[u16]) -> u16 {
    loop {
        let (_, port) = hold_port();
        if !others.contains(&port) {
            return port;
        }
    }
}

fn manifest(env: &Env, primary: u16, fallbacks: &[u16]) -> String {
    let list: Vec<String> = fallbacks.iter().map(ToString::to_string).collect();
    format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    ports: [\"{primary}:8080\"]\n    \
         fallback_ports: {{\"{primary}\": [{}]}}\n",
        env.name("web"),
        list.join(", ")
    )
}

async fn host_port(env: &Env) -> Option<u16> {
    env.existing("web")
        .await
        .ports
        .first()
        .and_then(|p| p.host_port)
}

#[tokio::test]
async fn port_fallback_taken_primary_runs_degraded_then_moves_back() {
    let env = Env::new().await;
    let (listener, primary) = hold_port();
    let fallback = free_port_besides(&[primary]);
    env.commit_manifest(&manifest(&env, primary, &[fallback]));
    let name = env.name("web");

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0).stdout_has(&format!(
        "docker/local/container/{name} created (degraded: host port {primary} taken, using {fallback})"
    ));
    assert_eq!(host_port(&env).await, Some(fallback));
    let c = env.existing("web").await;
    assert_eq!(
        c.labels.get(labels::PORT_FALLBACK),
        Some(&format!("{primary}:{fallback}"))
    );

    // Degraded is not drift while the primary is taken.
    env.refinery(&["plan"])
        .await
        .code(0)
        .stdout_has("in sync with")
        .stdout_has(&format!(
            "docker/local/container/{name} degraded (port {fallback} instead of {primary})"
        ));
    let json = env.refinery(&["plan", "--json"]).await;
    json.code(0);
    let v = json.json();
    assert_eq!(v["in_sync"], true);
    assert_eq!(v["nodes"][0]["degraded"][0]["primary"], primary);
    assert_eq!(v["nodes"][0]["degraded"][0]["fallback"], fallback);
    env.refinery(&["status"])
        .await
        .code(0)
        .stdout_has(&format!("degraded (port {fallback} instead of {primary})"));
    // Applying again changes nothing.
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&name, "unchanged");
    assert_eq!(env.existing("web").await.id, c.id);

    // The primary comes free: config drift on `ports`, and apply moves the container back.
    drop(listener);
    env.refinery(&["plan"]).await.code(3).stdout_has(&format!(
        "  ports: {fallback}:8080/tcp → {primary}:8080/tcp"
    ));
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&name, "recreated");
    assert_eq!(host_port(&env).await, Some(primary));
    let moved = env.existing("web").await;
    assert_eq!(moved.labels.get(labels::PORT_FALLBACK), None);
    let plan = env.refinery(&["plan"]).await;
    plan.code(0).stdout_has("in sync with");
    assert!(!plan.stdout.contains("degraded"), "{}", plan.transcript());
}

#[tokio::test]
async fn port_fallback_all_taken_fails_and_leaves_nothing_behind() {
    let env = Env::new().await;
    let (_primary_holder, primary) = hold_port();
    let (_fallback_holder, fallback) = hold_port();
    env.commit_manifest(&manifest(&env, primary, &[fallback]));

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(6).stdout_has(&format!(
        "failed to bind host port {primary}: it is already taken, and so are its fallback ports {fallback}"
    ));
    assert!(
        env.container("web").await.is_none(),
        "{}",
        apply.transcript()
    );
}
