//! `refinery alert test` reaches each of the six channel types added for issue 26 (ntfy, Gotify,
//! Telegram, Teams, Apprise, e-mail), through the CLI, against real receivers on loopback: one
//! HTTP receiver standing in for the five HTTP services (it records method, path, headers and
//! body) and a real SMTP server (Debian's `python3-aiosmtpd`, installed by `scripts/test.sh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::Env;

#[path = "../../../refinery-notify/tests/support/mod.rs"]
mod service;

const PYTHON: &str = "/usr/bin/python3";

/// The plain SMTP server of refinery-notify's tests; killed on drop.
struct Smtp {
    child: Child,
    out: PathBuf,
    port: u16,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../refinery-notify/tests/support/smtp_server.py");
        let out = dir.join("smtp.jsonl");
        let child = Command::new(PYTHON)
            .arg(script)
            .arg("plain")
            .arg(&out)
            .spawn()
            .expect("start the SMTP server (python3-aiosmtpd; scripts/test.sh installs it)");
        let mut smtp = Smtp {
            child,
            out,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(&smtp.out)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                smtp.port = port;
                return smtp;
            }
            if let Ok(Some(status)) = smtp.child.try_wait() {
                panic!("the SMTP server exited: {status} (is python3-aiosmtpd installed?)");
            }
            assert!(Instant::now() < deadline, "the SMTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_test_sends_to_ntfy_gotify_telegram_teams_apprise_and_email() {
    let env = Env::new().await;
    let rx = service::Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(dir.path());
    // Gotify answers a refused token with 401 and a JSON error: the line says so, masked.
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{sel}\"}}\nallow_empty: true\n\
             alerting:\n  channels:\n\
             \x20   - {{type: ntfy, url: \"{ntfy}\", token: \"${{T_NTFY}}\"}}\n\
             \x20   - {{type: gotify, url: \"{base}\", token: \"${{T_GOTIFY}}\"}}\n\
             \x20   - {{type: telegram, bot_token: \"${{T_TELEGRAM}}\", chat_id: \"-100123\", api_url: \"{base}\"}}\n\
             \x20   - {{type: teams, webhook_url: \"{teams}\"}}\n\
             \x20   - {{type: apprise, url: \"{apprise}\"}}\n\
             \x20   - {{type: email, smtp: \"smtp://127.0.0.1:{port}\", from: \"Refinery <refinery@example.com>\", to: [ops@example.com]}}\n",
            sel = env.selector(),
            ntfy = rx.url("/refinery-ops"),
            base = rx.url(""),
            teams = rx.url("/workflows/triggers/manual/paths/invoke"),
            apprise = rx.url("/notify/refinery"),
            port = smtp.port,
        ),
    );
    let vars = vec![
        ("T_NTFY".to_owned(), "tk_ntfy_secret".into()),
        ("T_GOTIFY".to_owned(), "gotify_secret".into()),
        ("T_TELEGRAM".to_owned(), "123:telegram_secret".into()),
    ];
    let run = env.refinery_env(&["alert", "test"], vars).await;
    run.code(0)
        .stdout_has("ntfy#0")
        .stdout_has("gotify#1")
        .stdout_has("telegram#2")
        .stdout_has("teams#3")
        .stdout_has("apprise#4")
        .stdout_has("email#5");
    assert_eq!(
        run.stdout.lines().filter(|l| l.ends_with(" sent")).count(),
        6,
        "one line per channel, each sent:\n{}",
        run.stdout
    );
    for secret in ["tk_ntfy_secret", "gotify_secret", "telegram_secret"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "`{secret}` leaked:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }

    let got = rx.got();
    let one = |path: &str| {
        let hits: Vec<_> = got.iter().filter(|r| r.path == path).collect();
        assert_eq!(hits.len(), 1, "one request on {path}, got {got:#?}");
        hits[0].clone()
    };
    let ntfy = one("/refinery-ops");
    assert_eq!(ntfy.method, "POST");
    assert_eq!(ntfy.header("authorization"), Some("Bearer tk_ntfy_secret"));
    assert!(ntfy.header("title").is_some(), "ntfy gets a Title header");
    assert!(
        ntfy.body.contains("this channel works"),
        "ntfy body: {}",
        ntfy.body
    );

    let gotify = one("/message");
    assert_eq!(gotify.header("x-gotify-key"), Some("gotify_secret"));
    assert!(gotify.json()["message"].is_string(), "{}", gotify.body);

    let telegram = one("/bot123:telegram_secret/sendMessage");
    // The Bot API takes `chat_id` as an integer or a string.
    assert_eq!(
        telegram.json()["chat_id"].to_string().trim_matches('"'),
        "-100123"
    );
    assert!(telegram.json()["text"].is_string());

    let teams = one("/workflows/triggers/manual/paths/invoke");
    assert!(
        teams.body.contains("AdaptiveCard"),
        "a Workflows URL gets an Adaptive Card: {}",
        teams.body
    );

    let apprise = one("/notify/refinery");
    assert!(apprise.json()["body"].is_string(), "{}", apprise.body);

    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "one e-mail: {mails:?}");
    assert_eq!(mails[0]["rcpt_tos"][0], "ops@example.com");
    let data = mails[0]["data"].as_str().unwrap_or_default();
    assert!(data.contains("Subject: [refinery]"), "{data}");
}
