//! Pulls from a real registry (Debian's `docker-registry` with htpasswd authentication, started
//! on loopback by the test) with each credential source the docker CLI knows, a pull the
//! registry refuses for want of credentials, and one from a registry that stops sending.

use std::path::Path;

use refinery_core::manifest::RegistryLogin;
use refinery_core::{ContainerRuntime, RuntimeError, Secret};
use refinery_docker::testsupport::{self, TestRegistry, TestRun};
use refinery_docker::{DockerRuntime, RegistryAuth};

/// A registry holding one image, `app:<tag>` (nothing of it left locally), and the engine.
async fn registry_with_image(tag: &str) -> (DockerRuntime, TestRun, TestRegistry, String) {
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    rt.info()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Docker engine: {e}"));
    let run = TestRun::new(&rt);
    let registry = TestRegistry::start("deploy", "s3cret-pw").expect("start the registry");
    registry
        .push_new(&rt, &run, "reg", "app", &[tag])
        .await
        .expect("push the test image");
    let reference = registry.reference("app", tag);
    (rt, run, registry, reference)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

async fn pull(rt: &DockerRuntime, image: &str) -> Result<(), RuntimeError> {
    rt.pull(image, &|_| {}).await
}

async fn assert_present(rt: &DockerRuntime, image: &str) {
    let observed = rt.observe(None).await.expect("observe");
    assert!(observed.image(image).is_some(), "`{image}` was not pulled");
}

#[tokio::test]
async fn pull_without_credentials_fails_with_login_hints() {
    let (rt, _run, registry, image) = registry_with_image("1").await;
    let empty = tempfile::tempdir().expect("tempdir");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(empty.path().to_owned())));
    let err = pull(&rt, &image).await.expect_err("no credentials");
    let text = err.to_string();
    assert!(text.contains("no basic auth credentials"), "{text}");
    assert!(
        text.contains(&format!("hint: run `docker login {}`", registry.host)),
        "{text}"
    );
    assert!(text.contains("registries:"), "{text}");
}

#[tokio::test]
async fn pull_with_config_auths_succeeds() {
    let (rt, run, registry, image) = registry_with_image("1").await;
    let rt = logged_in(rt, &run, &registry);
    pull(&rt, &image).await.expect("pull with `auths`");
    assert_present(&rt, &image).await;
}

#[tokio::test]
async fn pull_with_manifest_registries_succeeds_and_wrong_password_is_refused_masked() {
    let (rt, _run, registry, image) = registry_with_image("1").await;
    let empty = tempfile::tempdir().expect("tempdir");
    let auth = RegistryAuth::new(Some(empty.path().to_owned()));
    let rt = rt.with_registry_auth(auth.clone());
    auth.set_logins(vec![RegistryLogin {
        host: registry.host.clone(),
        username: registry.user.clone(),
        password: Secret::new("wrong-password-xyz", true),
    }]);
    let err = pull(&rt, &image).await.expect_err("wrong password");
    let text = err.to_string();
    assert!(text.contains("`registries:` in the manifest"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
    auth.set_logins(vec![RegistryLogin {
        host: registry.host.clone(),
        username: registry.user.clone(),
        password: Secret::new(registry.password.clone(), true),
    }]);
    pull(&rt, &image).await.expect("pull with `registries:`");
    assert_present(&rt, &image).await;
}

/// A credential helper: prints the credentials for the server read on stdin and records what it
/// was asked.
fn helper(bin: &Path, name: &str, registry: &TestRegistry) {
    use std::os::unix::fs::PermissionsExt;
    let path = bin.join(format!("docker-credential-{name}"));
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> \"$0.asked\"\n\
         if [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{pw}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        host = registry.host,
        user = registry.user,
        pw = registry.password,
    );
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn pull_with_creds_store_and_cred_helpers_runs_the_helper() {
    let (rt, _run, registry, image) = registry_with_image("1").await;
    let bin = tempfile::tempdir().expect("tempdir");
    helper(bin.path(), "refinerytest", &registry);
    // The helper is found on PATH, as the docker CLI finds it.
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: tests in this binary only read PATH through spawned helpers; every one sets it
    // to a value that keeps the system's directories.
    unsafe { std::env::set_var("PATH", &path) };
    for config in [
        r#"{"credsStore": "refinerytest"}"#.to_owned(),
        format!(
            r#"{{"credsStore": "missing-helper", "credHelpers": {{"{}": "refinerytest"}}}}"#,
            registry.host
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "config.json", &config);
        let rt = rt
            .clone()
            .with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
        pull(&rt, &image)
            .await
            .unwrap_or_else(|e| panic!("pull with {config}: {e}"));
        assert_present(&rt, &image).await;
        testsupport::remove_image(&rt, &image).await.expect("rmi");
    }
    let asked = std::fs::read_to_string(bin.path().join("docker-credential-refinerytest.asked"))
        .expect("the helper was run");
    assert_eq!(
        asked.lines().collect::<Vec<_>>(),
        [&registry.host, &registry.host]
    );
}

/// A registry session already logged in through `auths` (what `docker login` writes).
fn logged_in(rt: DockerRuntime, run: &TestRun, registry: &TestRegistry) -> DockerRuntime {
    let dir = registry.docker_config(run).expect("docker login");
    rt.with_registry_auth(RegistryAuth::new(Some(dir)))
}

#[tokio::test]
async fn digest_pin_pulls_and_runs_that_digest_after_the_tag_moved() {
    let (rt, run, registry, _) = registry_with_image("1").await;
    let first = registry.digest("app", "1").expect("digest of app:1");
    // A second, different image as app:2; then app:1 is moved to it in the registry.
    let second = registry
        .push_new(&rt, &run, "reg2", "app", &["2"])
        .await
        .expect("push app:2")
        .digest;
    assert_ne!(first, second);
    registry.move_tag("app", "2", "1").expect("move app:1");
    assert_eq!(registry.digest("app", "1").expect("digest"), second);

    let rt = logged_in(rt, &run, &registry);
    let pin = format!("{}/app:1@{first}", registry.host);
    pull(&rt, &pin).await.expect("pull the pinned digest");
    let observed = rt.observe(None).await.expect("observe");
    let info = observed
        .image(&pin)
        .expect("the pinned image is found by its digest");
    let pinned = format!("{}/app@{first}", registry.host);
    assert!(
        info.repo_digests.contains(&pinned),
        "{:?}",
        info.repo_digests
    );

    let id = rt
        .create(&run.request("pinned", testsupport::minimal_spec("pinned", &pin)))
        .await
        .expect("create from the pin");
    let c = rt
        .observe(Some(&run.selector()))
        .await
        .expect("observe")
        .containers
        .into_iter()
        .find(|c| c.id == id)
        .expect("the container");
    assert_eq!(c.image, pin);
    assert_eq!(c.image_id, info.id);
    assert_eq!(c.repo_digest.as_deref(), Some(pinned.as_str()));
    testsupport::remove_image(&rt, &pinned).await.ok();
}

#[tokio::test]
async fn multi_platform_index_tells_the_image_of_the_engine_platform() {
    // A multi-platform tag is an index: its digest (the one a pull records) also moves when
    // only another platform's image changes, so `registry_image_id` tells the image this
    // engine's platform gets.
    const OTHER: &str = "linux/s390x";
    let (rt, run, registry, _) = registry_with_image("1").await;
    let here = TestRegistry::engine_platform(&rt).await.expect("platform");
    let mut images = Vec::new();
    for marker in ["mp-a", "mp-b", "mp-c"] {
        let tag = marker.trim_start_matches("mp-");
        images.push(
            registry
                .push_new(&rt, &run, marker, "app", &[tag])
                .await
                .expect("push"),
        );
    }
    let [a, b, c] = &images[..] else {
        unreachable!("three images were pushed")
    };
    let multi = registry.reference("app", "multi");
    run.track_image(&multi);
    let first = registry
        .push_index("app", "multi", &[(&here, &a.digest), (OTHER, &b.digest)])
        .expect("push the index");
    run.track_image(&format!("{}/app@{first}", registry.host));
    assert_eq!(registry.digest("app", "multi").expect("digest"), first);

    let rt = logged_in(rt, &run, &registry);
    assert_eq!(rt.registry_digest(&multi).await.expect("digest"), first);
    assert_eq!(
        rt.registry_image_id(&multi).await.expect("image id"),
        Some(a.id.clone())
    );
    // The engine pulls this platform's image and records the index's digest.
    pull(&rt, &multi).await.expect("pull the index");
    let observed = rt.observe(None).await.expect("observe");
    let info = observed.image(&multi).expect("pulled");
    assert_eq!(info.id, a.id);
    assert!(
        info.repo_digests
            .contains(&format!("{}/app@{first}", registry.host)),
        "{:?}",
        info.repo_digests
    );

    // Only the other platform's image changes: another index digest, the same image here.
    let second = registry
        .push_index("app", "multi", &[(&here, &a.digest), (OTHER, &c.digest)])
        .expect("push the second index");
    assert_ne!(second, first);
    assert_eq!(rt.registry_digest(&multi).await.expect("digest"), second);
    assert_eq!(
        rt.registry_image_id(&multi).await.expect("image id"),
        Some(a.id.clone())
    );

    // This platform's image changes.
    registry
        .push_index("app", "multi", &[(&here, &c.digest), (OTHER, &b.digest)])
        .expect("push the third index");
    assert_eq!(
        rt.registry_image_id(&multi).await.expect("image id"),
        Some(c.id.clone())
    );
    // A plain tag: its manifest's config, the image id.
    assert_eq!(
        rt.registry_image_id(&registry.reference("app", "b"))
            .await
            .expect("image id"),
        Some(b.id.clone())
    );
}

/// What [`faulty_proxy`] does to the real registry behind it: failures the real registry cannot
/// be made to produce on demand.
#[derive(Clone, Copy)]
enum Fault {
    /// Once a blob is asked for on a connection, that connection's answers are held back and
    /// it is kept open: a registry that stops sending mid-download.
    StallBlobs,
    /// A manifest request is answered `429 Too Many Requests` (as Docker Hub's rate limit is).
    RateLimitManifests,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that forwards both ways but for `fault`.
/// Returns its `host:port`.
async fn faulty_proxy(upstream: String, fault: Fault) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 75\r\nConnection: close\r\n\r\n{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"pull rate limit reached\"}]}";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut from_client, to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
                let stalled = Arc::new(AtomicBool::new(false));
                let (stall, answer) = (Arc::clone(&stalled), Arc::clone(&to_client));
                let requests = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        let asks = |what: &[u8]| buf[..n].windows(what.len()).any(|w| w == what);
                        match fault {
                            Fault::StallBlobs if asks(b"/blobs/") => {
                                stall.store(true, Ordering::SeqCst);
                            }
                            Fault::RateLimitManifests if asks(b"/manifests/") => {
                                let mut w = answer.lock().await;
                                let _ = w.write_all(TOO_MANY).await;
                                let _ = w.shutdown().await;
                                return;
                            }
                            _ => {}
                        }
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let answers = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        if stalled.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        if to_client.lock().await.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::join!(requests, answers);
            });
        }
    });
    addr.to_string()
}

/// The runtime, logged in to `proxy` (a [`faulty_proxy`] in front of `registry`).
fn logged_in_to(
    rt: DockerRuntime,
    proxy: &str,
    registry: &TestRegistry,
) -> (DockerRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    testsupport::write_docker_login(dir.path(), proxy, &registry.user, &registry.password)
        .expect("write config.json");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    (rt, dir)
}

#[tokio::test]
async fn pull_from_a_registry_that_stops_sending_is_abandoned() {
    let (rt, run, registry, _) = registry_with_image("1").await;
    // An image the engine has no part of but the base layers: its config must be downloaded.
    let pushed = registry
        .push_new(&rt, &run, "stall", "app", &["stall"])
        .await
        .expect("push");
    testsupport::remove_image(&rt, &pushed.local)
        .await
        .expect("remove the local image");
    let proxy = faulty_proxy(registry.host.clone(), Fault::StallBlobs).await;
    let image = format!("{proxy}/app:stall");
    run.track_image(&image);
    let (rt, _config) = logged_in_to(rt, &proxy, &registry);
    let rt = rt.with_pull_stall_timeout(std::time::Duration::from_secs(3));
    // The bound is the point: without it this pull waits as long as the connection stays open.
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), pull(&rt, &image))
        .await
        .expect("the stalled pull was abandoned")
        .expect_err("nothing was pulled");
    let text = err.to_string();
    assert!(
        text.contains("the engine reported no progress for 3 s")
            && text.contains(&format!("`{image}`")),
        "{text}"
    );
    let observed = rt.observe(None).await.expect("observe");
    assert!(observed.image(&image).is_none(), "`{image}` is not local");
}

#[tokio::test]
async fn registry_rate_limit_fails_the_check_and_the_pull_as_a_registry_failure() {
    // A 429 is the registry's failure, not the user's credentials: no login hints; the caller
    // backs off as for an outage (the controller's schedule, tested there).
    let (rt, run, registry, _) = registry_with_image("1").await;
    let proxy = faulty_proxy(registry.host.clone(), Fault::RateLimitManifests).await;
    let image = format!("{proxy}/app:1");
    run.track_image(&image);
    let (rt, _config) = logged_in_to(rt, &proxy, &registry);
    for err in [
        rt.registry_digest(&image).await.expect_err("rate limited"),
        pull(&rt, &image).await.expect_err("rate limited"),
    ] {
        let text = err.to_string();
        assert!(
            text.to_ascii_lowercase().contains("too many requests")
                || text.to_ascii_lowercase().contains("toomanyrequests"),
            "{text}"
        );
        assert!(!text.contains("hint: run `docker login"), "{text}");
    }
}
