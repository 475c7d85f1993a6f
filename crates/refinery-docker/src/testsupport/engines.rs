//! Extra Docker engines for multi-node tests: each its own `dockerd` with its own socket (or TLS
//! port), data root, exec root, pidfile, config file and bridge, all under one temporary
//! directory, stopped and removed on drop.
//!
//! Never `--bridge none` (dockerd would delete `docker0`, the main engine's bridge): each engine
//! gets a bridge `rfe<pid>n<set>x<n>` on a free `172.29.N.0/24` and runs with `--iptables=false`.
//! A harness left behind by a killed test process is swept by the next one (its dockerds are
//! stopped, its bridges and directories removed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use refinery_core::ContainerRuntime;

use crate::{DockerRuntime, TlsFiles};

/// Where every harness lives: `/tmp/rfe-<pid>-<n>/` (short: socket paths are limited to 108
/// bytes, and containerd puts its sockets under the exec root).
const ROOT_PREFIX: &str = "rfe-";
/// How long an engine may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd dockerd may take to stop (it stops its containers first).
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// How an engine is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `unix://<dir>/docker.sock`.
    Unix,
    /// `tcp://127.0.0.1:<port>` with `--tlsverify` and certificates made for the test.
    Tls,
}

/// One extra engine.
pub struct Engine {
    pub name: String,
    /// What a manifest's `docker:` names.
    pub endpoint: String,
    /// Client certificate set, for [`Listen::Tls`].
    pub tls: Option<TlsFiles>,
    dir: PathBuf,
    bridge: String,
    args: Vec<String>,
    child: Mutex<Option<Child>>,
}

/// A set of engines; dropping it stops them and removes everything they had.
pub struct Engines {
    root: PathBuf,
    engines: Vec<Engine>,
}

impl Engines {
    /// Starts one engine per `(name, listen)` (concurrently) and waits until each answers.
    /// Panics with the engine's log when one does not come up: a test cannot go on without it.
    pub async fn start(specs: &[(&str, Listen)]) -> Engines {
        sweep_stale();
        let root = unique_root();
        std::fs::create_dir_all(&root).expect("create the engines' directory");
        let mut engines = Engines {
            root: root.clone(),
            engines: Vec::new(),
        };
        for (i, (name, listen)) in specs.iter().enumerate() {
            let dir = root.join(i.to_string());
            std::fs::create_dir_all(&dir).expect("create an engine's directory");
            let bridge = format!("rfe{}x{i}", root_tag(&root));
            std::fs::write(dir.join("bridge"), &bridge).expect("write the bridge name");
            create_bridge(&bridge);
            let mut args = vec![
                "--config-file".to_owned(),
                path(&dir.join("daemon.json")),
                "--data-root".to_owned(),
                path(&dir.join("data")),
                "--exec-root".to_owned(),
                path(&dir.join("x")),
                "--pidfile".to_owned(),
                path(&dir.join("docker.pid")),
                "--bridge".to_owned(),
                bridge.clone(),
                "--iptables=false".to_owned(),
                "--ip-masq=false".to_owned(),
            ];
            let driver = main_storage_driver();
            let config = match &driver {
                Some(d) => format!("{{\"storage-driver\": \"{d}\"}}"),
                None => "{}".to_owned(),
            };
            std::fs::write(dir.join("daemon.json"), config).expect("write daemon.json");
            let (endpoint, tls) = match listen {
                Listen::Unix => {
                    let sock = dir.join("docker.sock");
                    args.extend(["--host".to_owned(), format!("unix://{}", path(&sock))]);
                    (format!("unix://{}", path(&sock)), None)
                }
                Listen::Tls => {
                    let port = free_port();
                    let certs = make_certs(&dir.join("certs"));
                    args.extend([
                        "--host".to_owned(),
                        format!("tcp://127.0.0.1:{port}"),
                        "--tlsverify".to_owned(),
                        "--tlscacert".to_owned(),
                        path(&certs.ca),
                        "--tlscert".to_owned(),
                        path(&dir.join("certs/server-cert.pem")),
                        "--tlskey".to_owned(),
                        path(&dir.join("certs/server-key.pem")),
                    ]);
                    (format!("tcp://127.0.0.1:{port}"), Some(certs))
                }
            };
            engines.engines.push(Engine {
                name: (*name).to_owned(),
                endpoint,
                tls,
                dir,
                bridge,
                args,
                child: Mutex::new(None),
            });
        }
        for e in &engines.engines {
            e.spawn();
        }
        for e in &engines.engines {
            e.wait_ready().await;
        }
        engines
    }

    /// The engine called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> &Engine {
        self.engines
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no test engine `{name}`"))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Engine> {
        self.engines.iter()
    }

    /// The directory holding every engine (certificates sit in `<n>/certs/`).
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Engine {
    /// A client for this engine.
    #[must_use]
    pub fn runtime(&self) -> DockerRuntime {
        DockerRuntime::connect_with_tls(&self.endpoint, self.tls.as_ref())
            .expect("the test engine's endpoint is valid")
    }

    /// The `nodes:` entry for this engine (YAML flow mapping), named `name`.
    #[must_use]
    pub fn node_yaml(&self, name: &str) -> String {
        let mut s = format!("{{name: {name}, docker: \"{}\"", self.endpoint);
        if let Some(t) = &self.tls {
            let _ = write!(
                s,
                ", tls: {{ca: \"{}\", cert: \"{}\", key: \"{}\"}}",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            );
        }
        s.push('}');
        s
    }

    /// Stops this engine (SIGTERM; it stops its containers first) and waits until it is gone.
    pub async fn stop(&self) {
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            terminate(&mut child).await;
        }
    }

    /// Starts this engine again with the same data and waits until it answers.
    pub async fn restart(&self) {
        self.stop().await;
        self.spawn();
        self.wait_ready().await;
    }

    fn spawn(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .expect("open the dockerd log");
        let err = log.try_clone().expect("clone the log handle");
        let child = Command::new("dockerd")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start `dockerd` (these tests run as root on a machine with docker.io)");
        *self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(child);
    }

    async fn wait_ready(&self) {
        let rt = self.runtime();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            // A failed connect is not cached: the next call connects again.
            match rt.info().await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "test engine `{}` at `{}` did not come up within {READY_WITHIN:?}: {e}\nlog:\n{}",
                        self.name,
                        self.endpoint,
                        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        for e in &self.engines {
            let child = e.child.lock().ok().and_then(|mut c| c.take());
            if let Some(mut child) = child {
                terminate_blocking(&mut child);
            }
            let _ = Command::new("ip")
                .args(["link", "del", &e.bridge])
                .stderr(Stdio::null())
                .status();
        }
        remove_root(&self.root);
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A short tag unique to a harness directory, for bridge names (at most 15 bytes in all).
fn root_tag(root: &Path) -> String {
    let n = root
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.rsplit('-').next())
        .unwrap_or("0");
    format!("{}n{n}", std::process::id() % 10_000)
}

fn unique_root() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("{ROOT_PREFIX}{}-{n}", std::process::id()))
}

/// The main engine's storage driver (`fuse-overlayfs` on machines without overlay), so the extra
/// engines can store images the same way.
fn main_storage_driver() -> Option<String> {
    let text = std::fs::read_to_string("/etc/docker/daemon.json").ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("storage-driver")?.as_str().map(str::to_owned)
}

/// A bridge on the first free `172.29.N.1/24` (N from 100), chosen under a lock shared by every
/// test process on the machine.
fn create_bridge(name: &str) {
    let lock = std::fs::File::create(std::env::temp_dir().join("rfe-bridges.lock"))
        .expect("open the bridge lock");
    let _ = lock.lock();
    let _ = Command::new("ip")
        .args(["link", "del", name])
        .stderr(Stdio::null())
        .status();
    let used = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let n = (100..250)
        .find(|n| !used.contains(&format!("172.29.{n}.")))
        .expect("a free 172.29.N.0/24 for a test bridge");
    for args in [
        vec!["link", "add", name, "type", "bridge"],
        vec!["addr", "add", &format!("172.29.{n}.1/24"), "dev", name],
        vec!["link", "set", name, "up"],
    ] {
        let status = Command::new("ip").args(&args).status().expect("run `ip`");
        assert!(status.success(), "`ip {}` failed", args.join(" "));
    }
    let _ = lock.unlock();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with `openssl`
/// (EC P-256: fast). Returns the client's set. The server certificate may also authenticate as
/// a client: etcd's JSON gateway, under `--client-cert-auth`, presents it to etcd itself (as
/// kubeadm's etcd server certificates allow).
pub fn make_certs(dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir).expect("create the certificate directory");
    let p = |f: &str| path(&dir.join(f));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write server.ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
        .expect("write client.ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(&[
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=refinery-test-ca",
        ][..],
        &ec,
        &["-keyout", &p("ca-key.pem"), "-out", &p("ca.pem")],
    ]);
    for (who, cn) in [("server", "localhost"), ("client", "refinery")] {
        openssl(&[
            &["req", "-nodes", "-subj", &format!("/CN={cn}")][..],
            &ec,
            &[
                "-keyout",
                &p(&format!("{who}-key.pem")),
                "-out",
                &p(&format!("{who}.csr")),
            ],
        ]);
        openssl(&[&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &p(&format!("{who}.csr")),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca-key.pem"),
            "-CAcreateserial",
            "-extfile",
            &p(&format!("{who}.ext")),
            "-out",
            &p(&format!("{who}-cert.pem")),
        ][..]]);
    }
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("client-cert.pem"),
        key: dir.join("client-key.pem"),
    }
}

fn openssl(parts: &[&[&str]]) {
    let args: Vec<&str> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let out = Command::new("openssl")
        .args(&args)
        .output()
        .expect("run `openssl` (Debian's openssl package)");
    assert!(
        out.status.success(),
        "`openssl {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn terminate(child: &mut Child) {
    signal(child.id(), "-TERM");
    let deadline = Instant::now() + STOP_WITHIN;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate_blocking(child: &mut Child) {
    signal(child.id(), "-TERM");
    let deadline = Instant::now() + STOP_WITHIN;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Removes a harness directory; mounts a dockerd left behind (after SIGKILL) are unmounted first.
fn remove_root(root: &Path) {
    if std::fs::remove_dir_all(root).is_ok() {
        return;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = path(root);
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        let _ = Command::new("umount")
            .args(["-l", m])
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Stops and removes harnesses whose test process is gone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(ROOT_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let root = entry.path();
        if let Ok(engines) = std::fs::read_dir(&root) {
            for e in engines.flatten() {
                if let Ok(p) = std::fs::read_to_string(e.path().join("docker.pid"))
                    && let Ok(dpid) = p.trim().parse::<u32>()
                {
                    signal(dpid, "-TERM");
                    let deadline = Instant::now() + STOP_WITHIN;
                    while Path::new(&format!("/proc/{dpid}")).exists() && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                if let Ok(bridge) = std::fs::read_to_string(e.path().join("bridge")) {
                    let _ = Command::new("ip")
                        .args(["link", "del", bridge.trim()])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        remove_root(&root);
    }
}
