//! SOPS secrets under the daemon: a secret changed in git is rolled out, a key that cannot decrypt
//! the next commit keeps the running container as it was, and no clear value reaches the log, the
//! ledger or the status page.

use std::time::Duration;

use refinery_core::ContainerState;
use refinery_core::sops::SopsFormat;
use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn get(url: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    match client.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn assert_clean(what: &str, text: &str, values: &[&str]) {
    for v in values {
        assert!(!text.contains(v), "{what} leaks `{v}`:\n{text}");
    }
}

#[tokio::test]
async fn daemon_sops_secret_rolls_out_wrong_key_keeps_container_nothing_leaks() {
    let env = Env::new().await;
    let name = env.name("solo");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    let v1 = format!("tok-one-{}", env.run.id());
    let v2 = format!("tok-two-{}", env.run.id());
    let v3 = format!("tok-three-{}", env.run.id());
    let values = [v1.as_str(), v2.as_str(), v3.as_str()];
    let enc = |v: &str| encrypt_vars(&[("API_URL", v)], SopsFormat::Dotenv, &[&recipient]);

    env.commit_file("secrets.enc.env", &enc(&v1));
    env.commit_manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\ncontainers:\n  - name: {name}\n    image: {IMAGE}\n    env_file: secrets.enc.env\n",
        key_file.display()
    ));
    let listen = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start(&env, &["--listen", &listen]);
    let want = |v: String| {
        let env = &env;
        async move {
            env.container("solo")
                .await
                .filter(|c| c.state == ContainerState::Running && c.env.get("API_URL") == Some(&v))
        }
    };
    eventually("running with the first secret", &mut d, || want(v1.clone())).await;

    // The secret changes in git: the container is recreated with the new value.
    env.commit_file("secrets.enc.env", &enc(&v2));
    let rolled = eventually("recreated with the second secret", &mut d, || {
        want(v2.clone())
    })
    .await;

    // The key file now holds a key that is not a recipient: the commit fails to load, is
    // reported, and the running container keeps its value.
    let (other, _) = generate_identity();
    std::fs::write(&key_file, format!("{other}\n")).expect("write the wrong key");
    let bad = env.commit_file("secrets.enc.env", &enc(&v3));
    let alert = d
        .wait_entry("load failure alert", |e| {
            kind(e) == "alert"
                && e["message"].as_str().is_some_and(|m| {
                    m.contains("failed to load revision") && m.contains(&bad[..12])
                })
        })
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = env.existing("solo").await;
    assert_eq!(still.id, rolled.id, "the running container is left alone");
    assert_eq!(still.env.get("API_URL"), Some(&v2));
    assert_clean("the alert", &alert.to_string(), &values);

    let base = format!("http://{listen}");
    for path in ["/", "/api/v1/status", "/api/v1/events", "/metrics"] {
        assert_clean(path, &get(&format!("{base}{path}")).await, &values);
    }
    let ledger = std::fs::read_to_string(&d.ledger).unwrap_or_default();
    assert!(ledger.contains("env.API_URL"), "{ledger}");
    assert_clean("the ledger", &ledger, &values);
    let log = d.stop().await;
    assert!(log.contains("failed to decrypt"), "{log}");
    assert_clean("the daemon log", &log, &values);
}
