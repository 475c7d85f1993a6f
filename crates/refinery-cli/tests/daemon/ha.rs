//! `refinery run --ha`: two daemons on one repository (one ledger), a real etcd (Debian's
//! `etcd-server`, started per test on free loopback ports in a temporary data directory) and the
//! real Docker engine. Killing the leader hands over to the standby, which heals what broke
//! meanwhile; a leader cut off from etcd stops acting before its lease runs out; the ledger shows
//! one writer per term and still verifies.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

/// The lease the tests elect with: short, so a takeover is quick.
const LEASE_SECS: u64 = 3;

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One etcd member on loopback, killed (and its data removed) on drop.
struct Etcd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        Etcd::start_on(free_port())
    }

    /// On client port `port`.
    fn start_on(port: u16) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let peer = free_port();
        let client = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start `etcd` (Debian's etcd-server; scripts/ensure-docker.sh installs it)");
        let mut etcd = Etcd {
            child,
            port,
            _dir: dir,
        };
        etcd.wait_healthy();
        etcd
    }

    /// Until `GET /health` says `"health":"true"`.
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(
                    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                );
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.contains("\"health\":\"true\"") {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("etcd exited with {status}");
            }
            assert!(Instant::now() < deadline, "etcd not healthy within 20s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of etcd. `cut` turns it into a black hole: connections stay open but
/// nothing gets through either way, and new ones are accepted and never answered (a network
/// partition as it usually looks, silence rather than a reset; a real etcd cannot make one on
/// demand).
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listen");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cut);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if c.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (from, into) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(into)) = (from, into) {
                        let c = Arc::clone(&c);
                        std::thread::spawn(move || pipe(from, into, &c));
                    }
                }
            }
        });
        Proxy { port, cut }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` into `into` until either closes; once `cut`, reads and drops.
fn pipe(mut from: TcpStream, mut into: TcpStream, cut: &AtomicBool) {
    let mut buf = [0_u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !cut.load(Ordering::SeqCst) && into.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    if !cut.load(Ordering::SeqCst) {
        let _ = into.shutdown(Shutdown::Both);
    }
}

fn ha_args(port: u16, prefix: &str, id: &str) -> Vec<String> {
    vec![
        "--ha".into(),
        format!("etcd://127.0.0.1:{port}/{prefix}"),
        "--ha-lease".into(),
        format!("{LEASE_SECS}s"),
        "--ha-id".into(),
        id.into(),
    ]
}

fn start(env: &Env, args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(env, &args)
}

/// Waits until the daemon's log has `needle`.
async fn wait_log(d: &mut Daemon, needle: &str) {
    let log = d.log.clone();
    eventually(&format!("log line `{needle}`"), d, || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(needle)
                .then_some(())
        }
    })
    .await;
}

/// `GET path` on `addr`, the body as JSON.
fn http_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_text(addr, path)?).ok()
}

/// `GET path` on `addr`: the body.
fn http_text(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

async fn running(env: &Env, d: &mut Daemon) -> refinery_core::ObservedContainer {
    eventually("container running", d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await
}

fn term(e: &serde_json::Value) -> Option<u64> {
    e.get("term").and_then(serde_json::Value::as_u64)
}

fn time(e: &serde_json::Value) -> jiff::Timestamp {
    e["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("entry time")
}

/// The ledger's `leader_elected` entries, by term → holder; asserts one writer per term: each
/// term elected once, terms only growing, every entry after an election under its term.
fn writers_per_term(entries: &[serde_json::Value]) -> BTreeMap<u64, String> {
    let mut writers = BTreeMap::new();
    let mut current = None;
    for e in entries {
        if kind(e) == "leader_elected" {
            let t = term(e).expect("leader_elected carries a term");
            assert!(
                current.is_none_or(|c| t > c),
                "terms only grow: {t} after {current:?}"
            );
            let holder = e["holder"].as_str().unwrap_or_default().to_owned();
            assert!(
                writers.insert(t, holder).is_none(),
                "term {t} elected twice"
            );
            current = Some(t);
        } else if current.is_some() {
            assert_eq!(term(e), current, "an entry under another term: {e}");
        }
    }
    writers
}

#[tokio::test]
async fn ha_leader_killed_one_of_two_standbys_takes_over_within_the_lease_and_heals() {
    let etcd = Etcd::start();
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
    let prefix = env.name("ha");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = ha_args(etcd.port, &prefix, "a");
    args.extend(["--listen".to_owned(), listen.clone()]);
    let mut a = start(&env, &args);
    wait_log(&mut a, "leading: acting from now on").await;
    let c = running(&env, &mut a).await;
    let mut b = start(&env, &ha_args(etcd.port, &prefix, "b"));
    wait_log(&mut b, "standing by").await;
    let mut c3 = start(&env, &ha_args(etcd.port, &prefix, "c"));
    wait_log(&mut c3, "standing by").await;

    // The status API of the leader says it leads, under which term, and who stands by.
    let api = eventually("status API shows the standbys", &mut a, || {
        let listen = listen.clone();
        async move {
            let v = http_json(&listen, "/api/v1/status")?;
            (v["ha"]["standbys"] == serde_json::json!(["b", "c"])).then_some(v)
        }
    })
    .await;
    assert_eq!(api["ha"]["role"], "leader", "{api}");
    assert_eq!(api["ha"]["leader"], "a", "{api}");
    assert!(api["ha"]["term"].as_u64().is_some(), "{api}");
    let metrics = http_text(&listen, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("refinery_ha_leader 1"),
        "the leader's /metrics:\n{metrics}"
    );

    // `refinery status --ha` names the leader and the standby.
    let url = format!("etcd://127.0.0.1:{}/{prefix}", etcd.port);
    let status = env.refinery(&["status", "--ha", &url, "--json"]).await;
    let json = status.json();
    assert_eq!(json["ha"]["leader"], "a", "{}", status.transcript());
    assert_eq!(json["ha"]["standbys"], serde_json::json!(["b", "c"]));

    // The leader dies without a word, and its container is removed meanwhile.
    drop(a);
    let killed = Instant::now();
    env.rt.remove(&c.id).await.expect("remove by hand");

    let healed = eventually("recreated by the new leader", &mut b, || async {
        env.container("web")
            .await
            .filter(|n| n.state == ContainerState::Running && n.id != c.id)
    })
    .await;
    let took = killed.elapsed();
    assert_ne!(healed.id, c.id);
    assert!(
        took < Duration::from_secs(LEASE_SECS + 4),
        "healed {took:?} after the leader died (lease {LEASE_SECS}s)"
    );
    let elected = b
        .wait_entry("a standby elected", |e| {
            kind(e) == "leader_elected" && e["holder"] != "a"
        })
        .await;
    let new = elected["holder"].as_str().unwrap_or_default().to_owned();

    // Exactly one of the two standbys took over; the other still stands by.
    let writers = writers_per_term(&b.entry_values());
    assert_eq!(
        writers.values().cloned().collect::<Vec<_>>(),
        ["a", new.as_str()],
        "{writers:?}"
    );
    let status = env.refinery(&["status", "--ha", &url]).await;
    status.stdout_has(&format!("leader: {new} (term "));
    let (leader, standby) = if new == "b" { (b, c3) } else { (c3, b) };
    // The standby first: stopping the leader first would hand over to it.
    standby.stop_process().await;
    leader.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn ha_leader_cut_off_from_etcd_stops_acting_before_its_lease_runs_out() {
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.port);
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
    let prefix = env.name("ha");
    let mut a = start(&env, &ha_args(proxy.port, &prefix, "a"));
    wait_log(&mut a, "leading: acting from now on").await;
    let c = running(&env, &mut a).await;
    let mut b = start(&env, &ha_args(etcd.port, &prefix, "b"));
    wait_log(&mut b, "standing by").await;

    // The partition: `a` still runs, and still sees the engine, but not etcd.
    proxy.cut();
    let cut_at = jiff::Timestamp::now();
    wait_log(&mut a, "stopped acting").await;
    b.wait_entry("b elected", |e| {
        kind(e) == "leader_elected" && e["holder"] == "b"
    })
    .await;
    a.assert_alive();

    // Broken now: only `b` heals it.
    let c = c.id;
    env.rt.remove(&c).await.expect("remove by hand");
    eventually("recreated by the new leader", &mut b, || async {
        env.container("web")
            .await
            .filter(|n| n.state == ContainerState::Running && n.id != c)
    })
    .await;

    let entries = b.entry_values();
    let writers = writers_per_term(&entries);
    let term_a = writers
        .iter()
        .find_map(|(t, h)| (h == "a").then_some(*t))
        .expect("a's term");
    let last_a = entries
        .iter()
        .filter(|e| term(e) == Some(term_a))
        .map(time)
        .max()
        .expect("a wrote under its term");
    let b_elected = entries
        .iter()
        .find(|e| kind(e) == "leader_elected" && e["holder"] == "b")
        .map(time)
        .expect("b's election");
    assert!(
        last_a < b_elected,
        "`a` wrote at {last_a} after `b` was elected at {b_elected}"
    );
    let fence = jiff::SignedDuration::from_millis(i64::try_from(LEASE_SECS * 500).unwrap_or(0));
    assert!(
        last_a <= cut_at + fence,
        "`a` wrote at {last_a}, more than half a lease after the cut at {cut_at}"
    );
    b.stop().await;
    a.stop_process().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn ha_k8s_lease_is_refused_as_not_supported_yet() {
    let env = Env::offline();
    env.refinery(&["run", "--ha", "k8s://lyra/refinery/leader"])
        .await
        .code(2)
        .stderr_has("not supported yet");
    env.refinery(&["status", "--ha", "k8s://lyra/refinery/leader"])
        .await
        .code(2)
        .stderr_has("not supported yet");
    env.refinery(&["run", "--ha", "etcd://127.0.0.1/refinery"])
        .await
        .code(2)
        .stderr_has("HOST:PORT");
}

#[tokio::test]
async fn ha_leader_stopped_with_sigterm_hands_over_before_its_lease_would_run_out() {
    let etcd = Etcd::start();
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
    let prefix = env.name("ha");
    let mut a = start(&env, &ha_args(etcd.port, &prefix, "a"));
    wait_log(&mut a, "leading: acting from now on").await;
    running(&env, &mut a).await;
    let mut b = start(&env, &ha_args(etcd.port, &prefix, "b"));
    wait_log(&mut b, "standing by").await;

    // A clean stop revokes the lease: no waiting for it to run out. (The standby may write
    // before the stopped leader's last entry is read: `stop_process`, and the check below.)
    a.stop_process().await;
    let stopped = Instant::now();
    wait_log(&mut b, "leading: acting from now on").await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(LEASE_SECS) / 2,
        "took over {took:?} after a clean stop (lease {LEASE_SECS}s)"
    );
    let writers = writers_per_term(&b.entry_values());
    assert_eq!(writers.values().cloned().collect::<Vec<_>>(), ["a", "b"]);
    let entries = b.entry_values();
    let a_stop = entries.iter().position(|e| kind(e) == "daemon_stop");
    let b_elected = entries
        .iter()
        .position(|e| kind(e) == "leader_elected" && e["holder"] == "b");
    assert!(
        a_stop < b_elected,
        "`a` recorded its stop before `b` took over"
    );
    b.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn ha_without_etcd_acts_on_nothing_until_etcd_answers() {
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
    let port = free_port();
    let prefix = env.name("ha");
    let mut a = start(&env, &ha_args(port, &prefix, "a"));
    wait_log(&mut a, "etcd session ended; reconnecting").await;
    wait_log(&mut a, "pass done").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.assert_alive();
    assert!(
        env.container("web").await.is_none(),
        "nothing is created without a leader"
    );
    assert!(
        a.entry_values().is_empty(),
        "nothing is written without a leader"
    );

    // etcd comes up: the daemon is elected and heals.
    let _etcd = Etcd::start_on(port);
    wait_log(&mut a, "leading: acting from now on").await;
    running(&env, &mut a).await;
    a.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}
