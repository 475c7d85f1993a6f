//! `refinery apply` records to the ledger and commits it to `refinery/ledger`: against the real
//! Docker engine and a real git repository.

#[path = "common/mod.rs"]
mod common;

use common::{Env, IMAGE};
use refinery_git::GitSource;

const LEDGER: &str = "ledger/container_ledger.jsonl";
const REF: &str = "refs/heads/refinery/ledger";
const SECRETS: [&str; 3] = ["hunter2-secret-xyz", "hunter3-secret-new", "tok-secret-abc"];

fn manifest(name: &str, password: &str) -> String {
    format!(
        "containers:
  - name: {name}
    image: {IMAGE}
    env: {{LOG_LEVEL: info, DB_PASSWORD: {password}}}
    bloodline: {{creator: ledger-test, purpose: checks the ledger}}
alerting:
  channels:
    - {{type: discord, webhook_url: \"https://discord.com/api/webhooks/123/tok-secret-abc\", level: warning}}
"
    )
}

fn entries(env: &Env) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(env.repo.path().join(LEDGER)).expect("the ledger file exists");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn summary(e: &serde_json::Value) -> String {
    format!("{}:{}", e["seq"], e["kind"].as_str().unwrap_or("?"))
}

/// `git log refinery/ledger` through the git CLI: `author<TAB>subject`, newest first.
fn git_log(env: &Env) -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["log", "refinery/ledger", "--format=%an <%ae>%x09%s"])
        .current_dir(env.repo.path())
        .output()
        .expect("run `git log`");
    assert!(
        out.status.success(),
        "git log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn committed_ledger(env: &Env) -> Vec<u8> {
    let git = GitSource::open(env.repo.path()).expect("open the repo");
    let tip = git
        .head_of(REF)
        .expect("read the ref")
        .expect("the ledger ref exists");
    git.read_file(&tip, LEDGER)
        .expect("read the blob")
        .expect("the ledger is committed")
}

fn assert_no_secrets(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks `{s}`:\n{text}");
    }
}

#[tokio::test]
async fn apply_records_ledger_commits_ref_and_never_leaks_secrets() {
    let env = Env::new().await;
    let web = env.name("web");
    let id = format!("docker/local/container/{web}");
    let c1 = env.commit_manifest(&manifest(&web, "hunter2-secret-xyz"));

    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "created");
    let e = entries(&env);
    assert_eq!(
        e.iter().map(summary).collect::<Vec<_>>(),
        ["1:revision", "2:drift", "3:birth"]
    );
    assert_eq!(e[0]["to"], c1.as_str());
    assert_eq!(e[1]["drift"], "missing");
    assert_eq!(e[2]["resource"], id.as_str());
    assert_eq!(e[2]["node"], "local");
    assert_eq!(e[2]["outcome"], "created");
    assert_eq!(e[2]["actor"], "refinery");
    assert_eq!(e[2]["revision"], c1.as_str());
    assert_eq!(e[2]["bloodline"]["creator"], "ledger-test");
    assert_eq!(e[2]["bloodline"]["purpose"], "checks the ledger");
    assert_eq!(e[2]["v"], 1);
    let on_disk = std::fs::read(env.repo.path().join(LEDGER)).expect("read the ledger");
    assert_eq!(committed_ledger(&env), on_disk, "the ref holds every entry");

    // A changed secret is config drift: recorded by field name, never by value.
    let c2 = env.commit_manifest(&manifest(&web, "hunter3-secret-new"));
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "recreated");
    let e = entries(&env);
    assert_eq!(
        e.iter().skip(3).map(summary).collect::<Vec<_>>(),
        ["4:revision", "5:drift", "6:mutation"]
    );
    assert_eq!(e[3]["from"], c1.as_str());
    assert_eq!(e[3]["to"], c2.as_str());
    assert_eq!(e[4]["drift"], "config");
    assert!(
        e[4]["fields"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "env.DB_PASSWORD")),
        "{}",
        e[4]
    );

    // A locked ref: apply still succeeds, warns, and the next commit carries everything.
    let lock = env.repo.path().join(".git").join(format!("{REF}.lock"));
    std::fs::write(&lock, b"").expect("hold the ref's lock");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stderr_has(&format!("warning: failed to commit the ledger to `{REF}`"));
    assert_eq!(entries(&env).len(), 7);
    std::fs::remove_file(&lock).expect("release the lock");
    env.refinery(&["apply", "--yes"]).await.code(0);
    let on_disk = std::fs::read(env.repo.path().join(LEDGER)).expect("read the ledger");
    assert_eq!(entries(&env).len(), 8);
    assert_eq!(
        committed_ledger(&env),
        on_disk,
        "nothing lost while the ref was locked"
    );

    let short = |c: &str| c[..12].to_owned();
    assert_eq!(
        git_log(&env),
        [
            format!(
                "Container Refinery <refinery@localhost>\tledger: 2 entries (seq 7-8) at rev {}",
                short(&c2)
            ),
            format!(
                "Container Refinery <refinery@localhost>\tledger: 3 entries (seq 4-6) at rev {}",
                short(&c2)
            ),
            format!(
                "Container Refinery <refinery@localhost>\tledger: 3 entries (seq 1-3) at rev {}",
                short(&c1)
            ),
        ]
    );
    let head = GitSource::open(env.repo.path())
        .expect("open")
        .head_of("HEAD")
        .expect("HEAD");
    assert_eq!(
        head.as_deref(),
        Some(c2.as_str()),
        "the checked-out branch is untouched"
    );

    // Secrets appear nowhere: not in the file, not in the ref, not in `show`.
    assert_no_secrets("the ledger file", &String::from_utf8_lossy(&on_disk));
    assert_no_secrets(
        "the ledger ref",
        &String::from_utf8_lossy(&committed_ledger(&env)),
    );
    let show = env.refinery(&["ledger", "show", "--json"]).await;
    show.code(0);
    assert_no_secrets("`ledger show`", &show.stdout);

    env.refinery(&["ledger", "verify"])
        .await
        .code(0)
        .stdout_has("8 entries, chain intact");
    let drifts = env.refinery(&["ledger", "show", "--kind", "drift"]).await;
    drifts.code(0);
    assert_eq!(drifts.stdout.lines().count(), 3, "{}", drifts.transcript());
    let actions = env
        .refinery(&["ledger", "show", "--kind", "action", "--resource", &id])
        .await;
    actions.code(0).stdout_has("birth").stdout_has("mutation");
    assert_eq!(
        actions.stdout.lines().count(),
        3,
        "{}",
        actions.transcript()
    );
}

#[tokio::test]
async fn apply_broken_ledger_refuses_before_acting() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&manifest(&web, "hunter2-secret-xyz"));
    env.repo.write(LEDGER, "{\"not\":\"a ledger entry\"}\n");
    env.refinery(&["apply", "--yes"])
        .await
        .code(5)
        .stderr_has("failed to verify ledger")
        .stderr_has("at line 1");
    assert!(env.container("web").await.is_none(), "nothing was created");
}
