//! `refinery run --ha`: several daemons on one repository (one ledger) and the real Docker
//! engine, electing on a real etcd (Debian's `etcd-server`, started per test on free loopback
//! ports in a temporary data directory) or on a real Kubernetes API server (a Lease in a namespace
//! of the test control plane). Killing the leader hands over to a standby, which heals what broke
//! meanwhile; a leader cut off from the store stops acting before its lease runs out; the ledger
//! shows one writer per term and still verifies. The same scenarios run on both stores.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use refinery_core::{ContainerRuntime, ContainerState};
use refinery_kube::testsupport::{self, TestNamespace};

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
        let mut etcd = Etcd::spawn(port, None);
        etcd.wait_healthy();
        etcd
    }

    /// On a free port, speaking only TLS and asking every client for a certificate signed by
    /// the CA in `certs` (made by `make_certs`).
    fn start_tls(certs: &std::path::Path) -> Etcd {
        let mut etcd = Etcd::spawn(free_port(), Some(certs));
        // Its health endpoint wants a certificate too: an open port is enough here (the daemon
        // retries until etcd answers).
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", etcd.port)).is_err() {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                panic!("etcd exited with {status}");
            }
            assert!(Instant::now() < deadline, "etcd not listening within 20s");
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// One member with its data in a temporary directory; clients over TLS with `certs`.
    fn spawn(port: u16, certs: Option<&std::path::Path>) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let peer = free_port();
        let scheme = if certs.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("t={peer_url}")]);
        if let Some(certs) = certs {
            cmd.arg("--cert-file")
                .arg(certs.join("server-cert.pem"))
                .arg("--key-file")
                .arg(certs.join("server-key.pem"))
                .arg("--trusted-ca-file")
                .arg(certs.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start `etcd` (Debian's etcd-server; scripts/ensure-docker.sh installs it)");
        Etcd {
            child,
            port,
            _dir: dir,
        }
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

/// Where a test's daemons elect their leader.
struct Election {
    /// The `--ha` URL.
    url: String,
    /// The environment the daemons and `refinery status` run with (the kubeconfig).
    vars: Vec<(String, OsString)>,
    /// What the election needs kept alive (the etcd, the namespace, a kubeconfig file).
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

impl Election {
    /// An etcd at `port` (not started here), keys under a prefix of this test.
    fn etcd(env: &Env, port: u16) -> Election {
        Election {
            url: format!("etcd://127.0.0.1:{port}/{}", env.name("ha")),
            vars: Vec::new(),
            _keep: Vec::new(),
        }
    }

    /// A fresh etcd, kept running as long as the election.
    fn with_etcd(env: &Env) -> (Election, u16) {
        let etcd = Etcd::start();
        let port = etcd.port;
        let mut e = Election::etcd(env, port);
        e._keep.push(Box::new(etcd));
        (e, port)
    }

    /// The Lease `refinery` in a namespace of this test on the test control plane.
    async fn kube() -> Election {
        let cluster = testsupport::cluster().await;
        let ns = TestNamespace::new(&cluster, "ha").await;
        let url = format!("k8s://{}/{}/refinery", testsupport::CONTEXT, ns.name);
        Election {
            url,
            vars: vec![("KUBECONFIG".into(), testsupport::kubeconfig().into())],
            _keep: vec![Box::new(ns)],
        }
    }

    /// The same election reached through `proxy` (for one daemon to be cut off).
    fn through(&self, proxy: &Proxy) -> Election {
        if let Some(rest) = self.url.strip_prefix("etcd://127.0.0.1:") {
            let path = rest.split_once('/').map_or("", |(_, p)| p);
            return Election {
                url: format!("etcd://127.0.0.1:{}/{path}", proxy.port),
                vars: Vec::new(),
                _keep: Vec::new(),
            };
        }
        // A copy of the kubeconfig whose server is the proxy (TLS passes through it untouched).
        let dir = tempfile::tempdir().expect("temp dir");
        let kc = std::fs::read_to_string(testsupport::kubeconfig()).expect("read kubeconfig");
        let server = format!("https://127.0.0.1:{}", api_server_port(&kc));
        let kc = kc.replace(&server, &format!("https://127.0.0.1:{}", proxy.port));
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, kc).expect("write kubeconfig");
        Election {
            url: self.url.clone(),
            vars: vec![("KUBECONFIG".into(), path.into())],
            _keep: vec![Box::new(dir)],
        }
    }

    /// The port the proxy must forward to: etcd's, or the API server's.
    fn upstream_port(&self) -> u16 {
        match self.url.strip_prefix("etcd://127.0.0.1:") {
            Some(rest) => rest
                .split_once('/')
                .and_then(|(p, _)| p.parse().ok())
                .expect("etcd port"),
            None => api_server_port(
                &std::fs::read_to_string(testsupport::kubeconfig()).expect("read kubeconfig"),
            ),
        }
    }

    fn args(&self, id: &str) -> Vec<String> {
        vec![
            "--ha".into(),
            self.url.clone(),
            "--ha-lease".into(),
            format!("{LEASE_SECS}s"),
            "--ha-id".into(),
            id.into(),
        ]
    }

    /// `refinery run` electing here as `id`, plus `extra`.
    fn start(&self, env: &Env, id: &str, extra: &[&str]) -> Daemon {
        let mut args = self.args(id);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &std::ffi::OsStr)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        Daemon::start_with_env(env.repo.path(), &args, &vars)
    }

    /// `refinery <args> --ha <url>` (`status`), in this election's environment.
    async fn status(&self, env: &Env, args: &[&str]) -> crate::common::Run {
        let mut full = vec!["status", "--ha", self.url.as_str()];
        full.extend(args);
        env.refinery_env(&full, self.vars.clone()).await
    }
}

/// The API server's port in a kubeconfig (`server: https://127.0.0.1:PORT`).
fn api_server_port(kubeconfig: &str) -> u16 {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("the test kubeconfig names https://127.0.0.1:PORT")
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

/// The writers in term order, `first`'s terms then `then`'s: a loaded machine may make `first`
/// miss a renewal and win again under a new term, which is fine as long as terms do not repeat.
fn assert_writers(writers: &BTreeMap<u64, String>, first: &str, then: &str) {
    let names: Vec<&str> = writers.values().map(String::as_str).collect();
    let split = names
        .iter()
        .position(|n| *n != first)
        .unwrap_or(names.len());
    assert!(
        split > 0 && split < names.len() && names[split..].iter().all(|n| *n == then),
        "writers by term: {writers:?}, expected `{first}` then `{then}`"
    );
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

/// Commits one container `web` to `env`'s repository.
fn commit_web(env: &Env) {
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
}

/// Three daemons; the leader dies with kill -9 while its container is removed: one of the two
/// standbys takes over within the lease and heals it.
async fn leader_killed_a_standby_takes_over_within_the_lease_and_heals(env: &Env, e: &Election) {
    commit_web(env);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut a = e.start(env, "a", &["--listen", &listen]);
    wait_log(&mut a, "leading: acting from now on").await;
    let c = running(env, &mut a).await;
    let mut b = e.start(env, "b", &[]);
    wait_log(&mut b, "standing by").await;
    let mut c3 = e.start(env, "c", &[]);
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

    // `refinery status --ha` names the leader and the standbys.
    let status = e.status(env, &["--json"]).await;
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
    assert_writers(&writers, "a", &new);
    e.status(env, &[])
        .await
        .stdout_has(&format!("leader: {new} (term "));
    let (leader, standby) = if new == "b" { (b, c3) } else { (c3, b) };
    // The standby first: stopping the leader first would hand over to it.
    standby.stop_process().await;
    leader.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn ha_leader_killed_one_of_two_standbys_takes_over_within_the_lease_and_heals() {
    let env = Env::new().await;
    let (e, _) = Election::with_etcd(&env);
    leader_killed_a_standby_takes_over_within_the_lease_and_heals(&env, &e).await;
}

#[tokio::test]
async fn ha_k8s_leader_killed_one_of_two_standbys_takes_over_within_the_lease_and_heals() {
    let env = Env::new().await;
    let e = Election::kube().await;
    leader_killed_a_standby_takes_over_within_the_lease_and_heals(&env, &e).await;
}

/// The leader reaches the store through a proxy that is then cut: it still runs and sees the
/// engine, but stops acting within half a lease; the standby takes over and alone heals.
async fn leader_cut_off_stops_acting_before_its_lease_runs_out(env: &Env, e: &Election) {
    let proxy = Proxy::start(e.upstream_port());
    commit_web(env);
    let via_proxy = e.through(&proxy);
    let mut a = via_proxy.start(env, "a", &[]);
    wait_log(&mut a, "leading: acting from now on").await;
    let c = running(env, &mut a).await;
    let mut b = e.start(env, "b", &[]);
    wait_log(&mut b, "standing by").await;

    // The partition: `a` still runs, and still sees the engine, but not the store.
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
    assert_writers(&writers, "a", "b");
    let terms_a: Vec<u64> = writers
        .iter()
        .filter_map(|(t, h)| (h == "a").then_some(*t))
        .collect();
    let last_a = entries
        .iter()
        .filter(|e| term(e).is_some_and(|t| terms_a.contains(&t)))
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
async fn ha_leader_cut_off_from_etcd_stops_acting_before_its_lease_runs_out() {
    let env = Env::new().await;
    let (e, _) = Election::with_etcd(&env);
    leader_cut_off_stops_acting_before_its_lease_runs_out(&env, &e).await;
}

#[tokio::test]
async fn ha_k8s_leader_cut_off_from_the_api_server_stops_acting_before_its_lease_runs_out() {
    let env = Env::new().await;
    let e = Election::kube().await;
    leader_cut_off_stops_acting_before_its_lease_runs_out(&env, &e).await;
}

#[tokio::test]
async fn ha_bad_urls_are_usage_errors_with_the_expected_form() {
    let env = Env::offline();
    env.refinery(&["run", "--ha", "etcd://127.0.0.1/refinery"])
        .await
        .code(2)
        .stderr_has("HOST:PORT");
    env.refinery(&["run", "--ha", "k8s://lyra/refinery"])
        .await
        .code(2)
        .stderr_has("k8s://CONTEXT/NAMESPACE/NAME");
    env.refinery(&["status", "--ha", "zk://127.0.0.1:2181/refinery"])
        .await
        .code(2)
        .stderr_has("etcd://HOST:PORT/PREFIX");
}

/// A leader stopped with SIGTERM gives the lease up: the standby takes over at once, after the
/// old leader recorded its stop.
async fn leader_stopped_with_sigterm_hands_over_at_once(env: &Env, e: &Election) {
    commit_web(env);
    let mut a = e.start(env, "a", &[]);
    wait_log(&mut a, "leading: acting from now on").await;
    running(env, &mut a).await;
    let mut b = e.start(env, "b", &[]);
    wait_log(&mut b, "standing by").await;

    // A clean stop gives the lease up: no waiting for it to run out. (The standby may write
    // before the stopped leader's last entry is read: `stop_process`, and the check below.)
    a.stop_process().await;
    let stopped = Instant::now();
    wait_log(&mut b, "leading: acting from now on").await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(LEASE_SECS) / 2,
        "took over {took:?} after a clean stop (lease {LEASE_SECS}s)"
    );
    assert_writers(&writers_per_term(&b.entry_values()), "a", "b");
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
async fn ha_leader_stopped_with_sigterm_hands_over_before_its_lease_would_run_out() {
    let env = Env::new().await;
    let (e, _) = Election::with_etcd(&env);
    leader_stopped_with_sigterm_hands_over_at_once(&env, &e).await;
}

#[tokio::test]
async fn ha_k8s_leader_stopped_with_sigterm_hands_over_before_its_lease_would_run_out() {
    let env = Env::new().await;
    let e = Election::kube().await;
    leader_stopped_with_sigterm_hands_over_at_once(&env, &e).await;
}

#[tokio::test]
async fn ha_without_etcd_acts_on_nothing_until_etcd_answers() {
    let env = Env::new().await;
    commit_web(&env);
    let port = free_port();
    let mut a = Election::etcd(&env, port).start(&env, "a", &[]);
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

#[tokio::test]
async fn ha_each_shard_has_its_own_election_and_ledger() {
    let env = Env::new().await;
    let (e, _) = Election::with_etcd(&env);
    commit_web(&env);
    // One URL for both: each shard elects under its own key, so both lead.
    let mut one = e.start(&env, "s1", &["--shard", "1/2"]);
    let mut two = e.start(&env, "s2", &["--shard", "2/2"]);
    wait_log(&mut one, "leading: acting from now on").await;
    wait_log(&mut two, "leading: acting from now on").await;
    for (shard, id) in [("1/2", "s1"), ("2/2", "s2")] {
        let status = e.status(&env, &["--shard", shard, "--json"]).await;
        let json = status.json();
        assert_eq!(json["ha"]["leader"], id, "{}", status.transcript());
        assert!(
            json["ha"]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/shard-{}-of-2", &shard[..1]))),
            "{}",
            status.transcript()
        );
    }
    // (`stop` would look for `daemon_stop` in the unsharded ledger.)
    one.stop_process().await;
    two.stop_process().await;
    for shard in ["1/2", "2/2"] {
        let v = env
            .refinery(&["ledger", "verify", "--shard", shard, "--json"])
            .await;
        v.code(0);
        assert!(
            v.stdout.contains(&format!("shard-{}-of-2", &shard[..1])),
            "{}",
            v.transcript()
        );
    }
}

#[tokio::test]
async fn ha_etcd_over_tls_with_a_client_certificate() {
    let env = Env::new().await;
    let certs = tempfile::tempdir().expect("temp dir");
    let client = refinery_docker::testsupport::engines::make_certs(certs.path());
    let etcd = Etcd::start_tls(certs.path());
    commit_web(&env);
    let e = Election::etcd(&env, etcd.port);
    let (ca, cert, key) = (
        client.ca.to_string_lossy().into_owned(),
        client.cert.to_string_lossy().into_owned(),
        client.key.to_string_lossy().into_owned(),
    );
    let tls = ["--ha-cacert", &ca, "--ha-cert", &cert, "--ha-key", &key];

    // Without its client certificate an instance is never elected and acts on nothing.
    let mut stranger = e.start(&env, "stranger", &["--ha-cacert", &ca]);
    wait_log(&mut stranger, "etcd session ended; reconnecting").await;

    let mut a = e.start(&env, "a", &tls);
    wait_log(&mut a, "leading: acting from now on").await;
    running(&env, &mut a).await;
    let mut args = vec!["--json"];
    args.extend(tls);
    let status = e.status(&env, &args).await;
    assert_eq!(
        status.json()["ha"]["leader"],
        "a",
        "{}",
        status.transcript()
    );
    stranger.stop_process().await;
    a.stop().await;

    // A file that is not there, or not PEM, is bad usage, before anything is contacted.
    env.refinery(&["run", "--ha", &e.url, "--ha-cacert", "/nonexistent/ca.pem"])
        .await
        .code(2)
        .stderr_has("--ha-cacert")
        .stderr_has("/nonexistent/ca.pem");
    let not_pem = certs.path().join("server.ext");
    env.refinery(&[
        "status",
        "--ha",
        &e.url,
        "--ha-cacert",
        &not_pem.to_string_lossy(),
    ])
    .await
    .code(2)
    .stderr_has("not a PEM file");
    env.refinery(&["run", "--ha", "k8s://c/ns/l", "--ha-cacert", &ca])
        .await
        .code(2)
        .stderr_has("kubeconfig");
}

#[tokio::test]
async fn ha_apply_goes_to_the_leader_and_a_standby_names_it() {
    let env = Env::new().await;
    let (e, _port) = Election::with_etcd(&env);
    commit_web(&env);
    let mut a = e.start(&env, "a", &[]);
    wait_log(&mut a, "leading: acting from now on").await;
    running(&env, &mut a).await;
    let mut b = e.start(&env, "b", &[]);
    wait_log(&mut b, "standing by").await;
    // The standby says who leads once it knows.
    let presence = b.state_dir.join("daemons");
    eventually("the standby names the leader", &mut b, || {
        let presence = presence.clone();
        async move {
            std::fs::read_dir(&presence)
                .ok()?
                .filter_map(Result::ok)
                .filter_map(|f| std::fs::read_to_string(f.path()).ok())
                .any(|t| t.contains("\"leader\": \"a\""))
                .then_some(())
        }
    })
    .await;

    let leader_dir = a.state_dir.to_string_lossy().into_owned();
    env.refinery(&["apply", "--yes", "--state-dir", &leader_dir])
        .await
        .code(0)
        .stderr_has("handing the apply over")
        .outcome(&env.name("web"), "unchanged");
    let standby_dir = b.state_dir.to_string_lossy().into_owned();
    env.refinery(&["apply", "--yes", "--state-dir", &standby_dir])
        .await
        .code(2)
        .stderr_has("standby")
        .stderr_has("the leader `a` acts");
    b.stop_process().await;
    a.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}
