//! Endpoints against real extra engines: a unix socket and `tcp://` with TLS client certificates
//! (made by the test with openssl), `ssh://` through a real sshd, private pulls through both with
//! the controller's credentials, plus the TLS checks that run before anything is contacted.

use refinery_core::{ContainerRuntime, ContainerState, RuntimeError, UnreachableCause};
use refinery_docker::testsupport::engines::{Engines, Listen, make_certs};
use refinery_docker::testsupport::{self, TestRun, minimal_spec};
use refinery_docker::{DockerRuntime, TlsFiles};

const IMAGE: &str = "refinery-test-busybox:latest";

#[tokio::test]
async fn tls_and_unix_engines_run_containers() {
    let engines = Engines::start(&[("plain", Listen::Unix), ("secure", Listen::Tls)]).await;
    for engine in engines.iter() {
        let rt = engine.runtime();
        let info = rt.info().await.expect("info");
        assert_eq!(info.endpoint, engine.endpoint);
        testsupport::build_busybox_image(&rt, IMAGE)
            .await
            .expect("build the test image on the extra engine");
        let run = TestRun::new(&rt);
        let req = run.request("web", minimal_spec(&run.name("web"), IMAGE));
        let id = rt.create(&req).await.expect("create");
        rt.start(&id).await.expect("start");
        let c = rt.inspect(&id).await.expect("inspect");
        assert_eq!(c.state, ContainerState::Running, "on `{}`", engine.name);
        let observed = rt.observe(Some(&run.selector())).await.expect("observe");
        assert_eq!(observed.containers.len(), 1);
    }
}

#[tokio::test]
async fn tls_engine_refuses_a_client_without_certificates() {
    let engines = Engines::start(&[("secure", Listen::Tls)]).await;
    let plain = DockerRuntime::connect(&engines.get("secure").endpoint).expect("tcp parses");
    let err = plain
        .info()
        .await
        .expect_err("plain HTTP to a TLS port fails");
    assert!(
        matches!(
            err,
            RuntimeError::Unreachable { .. } | RuntimeError::Other { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn tls_key_of_another_certificate_is_named_as_mismatch() {
    let dir = tempdir();
    let a = make_certs(&dir.join("a"));
    let b = make_certs(&dir.join("b"));
    let mixed = TlsFiles {
        ca: a.ca.clone(),
        cert: a.cert.clone(),
        key: b.key.clone(),
    };
    let err = DockerRuntime::connect_with_tls("tcp://127.0.0.1:2376", Some(&mixed))
        .expect_err("a key of another certificate fails");
    let text = err.to_string();
    assert!(text.contains("does not"), "{text}");
    assert!(text.contains(&b.key.display().to_string()), "{text}");
    DockerRuntime::connect_with_tls("tcp://127.0.0.1:2376", Some(&a)).expect("a matching set");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_file_that_is_not_pem_is_named() {
    let dir = tempdir();
    let good = make_certs(&dir.join("a"));
    std::fs::write(dir.join("junk.pem"), "not a certificate").expect("write");
    let bad = TlsFiles {
        cert: dir.join("junk.pem"),
        ..good
    };
    let err = DockerRuntime::connect_with_tls("tcp://127.0.0.1:2376", Some(&bad))
        .expect_err("junk fails");
    assert!(err.to_string().contains("junk.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("refinery-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `ssh://` against a real sshd on loopback (its own config, host key and authorized key, made
/// here): the connection is `ssh … docker system dial-stdio`, as the docker CLI makes it, to the
/// main engine.
#[tokio::test]
async fn ssh_endpoint_reaches_the_engine_through_dial_stdio() {
    let dir = tempdir();
    let sshd = Sshd::start(&dir);
    let rt = DockerRuntime::connect(&format!("ssh://root@127.0.0.1:{}", sshd.port))
        .expect("ssh parses")
        .with_ssh_program(sshd.wrapper.to_string_lossy());
    let info = rt.info().await.expect("info over ssh");
    assert!(!info.version.is_empty());
    let run = TestRun::new(&DockerRuntime::from_env().expect("main engine"));
    let observed = rt
        .observe(Some(&run.selector()))
        .await
        .expect("observe over ssh");
    assert!(observed.containers.is_empty());
    assert!(!observed.images.is_empty(), "the main engine has images");
    // Events flow over ssh too (a long-lived response body).
    let _events = rt.events(None);

    // A refused login names ssh and what it said.
    let refused = DockerRuntime::connect(&format!("ssh://nobody-here@127.0.0.1:{}", sshd.port))
        .expect("ssh parses")
        .with_ssh_program(sshd.wrapper.to_string_lossy());
    let err = refused.info().await.expect_err("unknown user is refused");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            RuntimeError::Unreachable {
                cause: UnreachableCause::Ssh,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("ssh to `127.0.0.1` failed"), "{text}");
    assert!(text.contains("denied"), "{text}");
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `tcp://` (TLS) node and an `ssh://` node pull a private image through their own engines
/// with the controller's credentials (its docker config here): the registry is asked by the
/// remote engine, the credentials go with the request.
#[tokio::test]
async fn tls_and_ssh_nodes_pull_private_images_with_the_controllers_credentials() {
    use refinery_docker::RegistryAuth;
    use refinery_docker::testsupport::TestRegistry;

    let main = DockerRuntime::from_env().expect("main engine");
    let run = TestRun::new(&main);
    let registry = TestRegistry::start("deploy", "pw-remote-51").expect("start the registry");
    registry
        .push_new(&main, &run, "remote", "app", &["1"])
        .await
        .expect("push the test image");
    let image = registry.reference("app", "1");
    let logged_in = RegistryAuth::new(Some(registry.docker_config(&run).expect("docker login")));
    let empty = tempfile::tempdir().expect("tempdir");
    let nobody = RegistryAuth::new(Some(empty.path().to_owned()));

    let engines = Engines::start(&[("secure", Listen::Tls)]).await;
    let dir = tempdir();
    let sshd = Sshd::start(&dir);
    let ssh = DockerRuntime::connect(&format!("ssh://root@127.0.0.1:{}", sshd.port))
        .expect("ssh parses")
        .with_ssh_program(sshd.wrapper.to_string_lossy());
    for (node, rt) in [("tcp://", engines.get("secure").runtime()), ("ssh://", ssh)] {
        let err = rt
            .clone()
            .with_registry_auth(nobody.clone())
            .pull(&image, &|_| {})
            .await
            .expect_err("no credentials");
        assert!(
            err.to_string()
                .contains(&format!("hint: run `docker login {}`", registry.host)),
            "{node}: {err}"
        );
        let rt = rt.with_registry_auth(logged_in.clone());
        rt.pull(&image, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("{node}: pull with the controller's credentials: {e}"));
        let observed = rt.observe(None).await.expect("observe");
        assert!(
            observed.image(&image).is_some(),
            "{node}: `{image}` not pulled"
        );
    }
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
}

struct Sshd {
    child: std::process::Child,
    port: u16,
    wrapper: std::path::PathBuf,
}

impl Sshd {
    fn start(dir: &std::path::Path) -> Sshd {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let sshd = std::path::Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "this test needs an sshd: `apt-get install openssh-server`"
        );
        let keygen = |path: &std::path::Path| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .status()
                .expect("ssh-keygen")
                .success();
            assert!(ok, "ssh-keygen");
        };
        keygen(&dir.join("host_key"));
        keygen(&dir.join("user_key"));
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).expect("copy key");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("write sshd_config");
        let wrapper = dir.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec ssh -F /dev/null -i {d}/user_key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n",
                d = dir.display()
            ),
        )
        .expect("write the ssh wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir_all("/run/sshd").expect("sshd privilege separation directory");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log"))
            .spawn()
            .expect("start sshd");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            wrapper,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
