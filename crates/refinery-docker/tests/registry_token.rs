//! The `Bearer` token flow (GHCR, Docker Hub, GitLab, Harbor) against a real registry: Debian's
//! `docker-registry` (distribution 2.8) with `auth: token`, its token server on loopback
//! (`TestRegistry::start_token`: checks the credentials of each token request, signs ES256 JWTs the
//! registry verifies against its `rootcertbundle`). Tags listed with a password and with an
//! identity token, a wrong password refused saying whose credentials, and pulls through the
//! engine (which does the token dance itself) with `registries:` credentials and with an
//! identity token.

use std::sync::atomic::{AtomicUsize, Ordering};

use refinery_core::manifest::RegistryLogin;
use refinery_core::{ContainerRuntime as _, Secret};
use refinery_docker::testsupport::{self, TestRegistry, TestRun};
use refinery_docker::{DockerRuntime, RegistryAuth};

const TAGS: [&str; 3] = ["1.4.0", "1.5.0", "latest"];

/// A token-auth registry holding `app` under [`TAGS`] (pushed by the engine through the token
/// flow), and the engine.
async fn token_registry_with_tags() -> (DockerRuntime, TestRun, TestRegistry, String) {
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    rt.info()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Docker engine: {e}"));
    let run = TestRun::new(&rt);
    let registry = TestRegistry::start_token("deploy", "tok3n-pw").expect("start the registry");
    let pushed = registry
        .push_new(&rt, &run, "token", "app", &TAGS)
        .await
        .expect("push through the token flow");
    (rt, run, registry, pushed.digest)
}

/// A `DOCKER_CONFIG` directory whose `config.json` holds only the registry's identity token (what
/// `docker login` stores when the token server gives refresh tokens).
fn identity_token_config(registry: &TestRegistry) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = registry.identity_token().expect("a token registry");
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"identitytoken": "{identity}"}}}}}}"#,
            registry.host
        ),
    )
    .expect("write config.json");
    dir
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn count(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}

#[tokio::test]
async fn token_registry_tags_are_listed_with_a_password_and_with_an_identity_token() {
    let (rt, run, registry, digest) = token_registry_with_tags().await;
    let counts = registry.token_counts().expect("a token registry");
    let name = format!("{}/app", registry.host);

    // A bare request is answered with a Bearer challenge naming the token server.
    let challenge = reqwest_free_challenge(&registry.host);
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1:")
            && challenge.contains(&format!("service=\"{}\"", testsupport::TOKEN_SERVICE)),
        "{challenge}"
    );

    // Username and password (what `docker login` writes): one token for the password.
    let config = registry.docker_config(&run).expect("docker login");
    let rt_pw = rt
        .clone()
        .with_registry_auth(RegistryAuth::new(Some(config)));
    let before = count(&counts.password);
    let all = rt_pw.registry_tags(&name).await.expect("list the tags");
    assert_eq!(sorted(all), TAGS);
    assert_eq!(
        count(&counts.password),
        before + 1,
        "one token, for the password"
    );

    // An identity token (`identitytoken`, an OAuth refresh token): the refresh-token grant.
    let dir = identity_token_config(&registry);
    let rt_id = rt
        .clone()
        .with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    let all = rt_id
        .registry_tags(&format!("{name}:1.4.0"))
        .await
        .expect("list the tags with the identity token");
    assert_eq!(sorted(all), TAGS);
    assert_eq!(
        count(&counts.refresh),
        1,
        "one token, for the refresh token"
    );

    // The kit's HTTP helpers work with token auth too: a tag moved, its digest read back.
    let second = registry
        .push_new(&rt, &run, "token-2", "app", &["2.0.0"])
        .await
        .expect("push 2.0.0");
    assert_ne!(second.digest, digest);
    registry
        .move_tag("app", "2.0.0", "latest")
        .expect("move `latest`");
    assert_eq!(
        registry.digest("app", "latest").expect("digest"),
        second.digest
    );
    let (status, _, body) = registry.get("/v2/app/tags/list").expect("GET");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// The `WWW-Authenticate` header of an unauthenticated `GET /v2/` (plain HTTP/1.0).
fn reqwest_free_challenge(host: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("www-authenticate")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no challenge in {raw}"))
}

#[tokio::test]
async fn token_registry_tags_with_a_wrong_password_or_none_are_refused_saying_whose() {
    let (rt, _run, registry, _) = token_registry_with_tags().await;
    let counts = registry.token_counts().expect("a token registry");
    let name = format!("{}/app", registry.host);

    // A wrong password: the token server refuses, and the error says whose credentials.
    let dir = tempfile::tempdir().expect("tempdir");
    testsupport::write_docker_login(dir.path(), &registry.host, "deploy", "wrong-pw-7781")
        .expect("write config.json");
    let rt_bad = rt
        .clone()
        .with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    let refused = count(&counts.refused);
    let e = rt_bad
        .registry_tags(&name)
        .await
        .expect_err("wrong password")
        .to_string();
    assert_eq!(
        count(&counts.refused),
        refused + 1,
        "the token server refused"
    );
    assert!(
        e.contains("list the tags of")
            && e.contains("HTTP 401")
            && e.contains("credentials from `auths` in the docker config were refused"),
        "{e}"
    );
    assert!(!e.contains("wrong-pw-7781"), "{e}");

    // No credentials: an anonymous token granting nothing (as Docker Hub gives), which the
    // registry refuses; the error says none were found.
    let empty = tempfile::tempdir().expect("tempdir");
    let rt_none = rt.with_registry_auth(RegistryAuth::new(Some(empty.path().to_owned())));
    let anonymous = count(&counts.anonymous);
    let e = rt_none
        .registry_tags(&name)
        .await
        .expect_err("no credentials")
        .to_string();
    assert_eq!(
        count(&counts.anonymous),
        anonymous + 1,
        "an anonymous token"
    );
    assert!(
        e.contains("HTTP 401")
            && e.contains(&format!(
                "no credentials for registry `{}` were found",
                registry.host
            )),
        "{e}"
    );
}

#[tokio::test]
async fn token_registry_pull_with_registries_credentials_succeeds_and_wrong_is_refused() {
    let (rt, _run, registry, digest) = token_registry_with_tags().await;
    let image = registry.reference("app", "1.5.0");
    let empty = tempfile::tempdir().expect("tempdir");
    let auth = RegistryAuth::new(Some(empty.path().to_owned()));
    let rt = rt.with_registry_auth(auth.clone());
    let login = |password: &str| RegistryLogin {
        host: registry.host.clone(),
        username: registry.user.clone(),
        password: Secret::new(password.to_owned(), true),
    };

    auth.set_logins(vec![login("wrong-pw-4410")]);
    let e = rt.pull(&image, &|_| {}).await.expect_err("wrong password");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "registry `{}` refused the credentials from `registries:` in the manifest",
            registry.host
        )) && text.contains(&format!("hint: run `docker login {}`", registry.host)),
        "{text}"
    );
    assert!(!text.contains("wrong-pw-4410"), "{text}");

    auth.set_logins(vec![login(&registry.password)]);
    // The registry's digest through the engine, then the pull itself.
    assert_eq!(
        rt.registry_digest(&image).await.expect("registry digest"),
        digest
    );
    rt.pull(&image, &|_| {})
        .await
        .expect("pull with `registries:` through the token flow");
    let observed = rt.observe(None).await.expect("observe");
    assert!(observed.image(&image).is_some(), "`{image}` was not pulled");
}

#[tokio::test]
async fn token_registry_pull_with_an_identity_token_takes_the_refresh_token_grant() {
    // `docker login` against a registry whose token server gives refresh tokens stores
    // `identitytoken`, not the password; the engine trades it for a token itself (OAuth 2
    // `grant_type=refresh_token`), so the pull must go through with nothing else known.
    let (rt, run, registry, digest) = token_registry_with_tags().await;
    let counts = registry.token_counts().expect("a token registry");
    let image = registry.reference("app", "1.4.0");
    let dir = identity_token_config(&registry);
    // The engine keeps no image of this name (the push tagged under the run's own prefix).
    let observed = rt.observe(None).await.expect("observe");
    assert!(
        observed.image(&image).is_none(),
        "`{image}` is local already"
    );

    let rt_id = rt.with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    let before = count(&counts.refresh);
    assert_eq!(
        rt_id
            .registry_digest(&image)
            .await
            .expect("registry digest with the identity token"),
        digest
    );
    rt_id
        .pull(&image, &|_| {})
        .await
        .expect("pull with the identity token");
    let observed = rt_id.observe(None).await.expect("observe");
    assert!(observed.image(&image).is_some(), "`{image}` was not pulled");
    assert!(
        count(&counts.refresh) > before,
        "the engine did not take the refresh-token grant"
    );
    drop(run);
}
