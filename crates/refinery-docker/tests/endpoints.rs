//! Endpoints against real extra engines: a unix socket and `tcp://` with TLS client certificates
//! (made by the test with openssl), plus the TLS checks that run before anything is contacted.

use refinery_core::{ContainerRuntime, ContainerState, RuntimeError};
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
    let err = plain.info().await.expect_err("plain HTTP to a TLS port fails");
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
