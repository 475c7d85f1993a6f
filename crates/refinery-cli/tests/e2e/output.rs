//! What the commands print: `--json` shapes, the `status` table, and transcripts (exit code,
//! stdout, stderr) kept as snapshots.

use refinery_core::Secret;
use serde_json::Value;

use crate::common::{Env, IMAGE};

/// The keys of a JSON object, sorted.
#[track_caller]
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn json_output_parses_and_has_documented_shape() {
    let env = Env::new().await;
    let web = env.name("web");
    let commit = env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n"
    ));

    let validate = env.refinery(&["validate", "--json"]).await;
    let v = validate.code(0).json();
    assert_eq!(
        keys(&v),
        [
            "commit",
            "containers",
            "file",
            "kubernetes",
            "nodes",
            "stacks",
            "valid",
            "warnings"
        ]
    );
    assert_eq!(v["valid"], true);
    assert_eq!(v["commit"], commit.as_str());
    assert_eq!(v["file"], "refinery.yaml");
    assert_eq!(v["containers"], 1);

    let plan = env.refinery(&["plan", "--json"]).await;
    let p = plan.code(3).json();
    assert_eq!(keys(&p), ["in_sync", "nodes", "revision"]);
    assert_eq!(p["revision"], commit.as_str());
    assert_eq!(p["in_sync"], false);
    let node = &p["nodes"][0];
    assert_eq!(
        keys(node),
        ["in_sync", "mode", "node", "reachable", "steps"]
    );
    assert_eq!(node["node"], "local");
    assert_eq!(node["mode"], "enforce");
    assert_eq!(node["reachable"], true);
    let step = &node["steps"][0];
    assert_eq!(
        keys(step),
        [
            "changes",
            "container_id",
            "details",
            "drifts",
            "id",
            "kind",
            "reason"
        ]
    );
    assert_eq!(step["id"], format!("docker/local/container/{web}"));
    assert_eq!(step["kind"], "create");
    assert_eq!(step["drifts"], serde_json::json!(["missing"]));
    assert_eq!(step["container_id"], Value::Null);
    assert!(plan.stderr.is_empty(), "{}", plan.transcript());

    let apply = env.refinery(&["apply", "--yes", "--json"]).await;
    let a = apply.code(0).json();
    assert_eq!(
        keys(&a),
        ["results", "revision", "unchanged", "unreachable"]
    );
    assert_eq!(a["revision"], commit.as_str());
    let result = &a["results"][0];
    assert_eq!(
        keys(result),
        ["container_id", "id", "message", "outcome", "step"]
    );
    assert_eq!(result["outcome"], "created");
    assert_eq!(result["step"], "create");
    let created = env.existing("web").await;
    assert_eq!(result["container_id"], created.id.as_str());
    assert!(
        apply.stderr.is_empty(),
        "--json prints no plan on stderr\n{}",
        apply.transcript()
    );

    let again = env
        .refinery(&["apply", "--yes", "--json"])
        .await
        .code(0)
        .json();
    assert_eq!(again["results"], serde_json::json!([]));
    assert_eq!(
        again["unchanged"],
        serde_json::json!([format!("docker/local/container/{web}")])
    );

    let status = env.refinery(&["status", "--json"]).await;
    let s = status.code(0).json();
    let row = &s[0];
    assert_eq!(
        keys(row),
        [
            "container",
            "drift",
            "health",
            "id",
            "image",
            "node",
            "revision",
            "state"
        ]
    );
    assert_eq!(row["state"], "running");
    assert_eq!(row["drift"], serde_json::json!([]));
    assert_eq!(row["revision"], &commit[..12]);
}

#[tokio::test]
async fn status_table_has_columns_and_exit_code_follows_drift() {
    let env = Env::new().await;
    let (web, worker) = (env.name("web"), env.name("worker"));
    let first = env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n"
    ));
    env.refinery(&["apply", "--yes"]).await.code(0);
    env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n  - name: {worker}\n    image: {IMAGE}\n"
    ));

    let status = env.refinery(&["status"]).await;
    status.code(3);
    let lines: Vec<Vec<&str>> = status
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NODE",
            "CONTAINER",
            "IMAGE",
            "STATE",
            "HEALTH",
            "DRIFT",
            "REVISION"
        ],
        "{}",
        status.transcript()
    );
    assert_eq!(
        lines[1],
        [
            "local",
            web.as_str(),
            IMAGE,
            "running",
            "-",
            "in",
            "sync",
            &first[..12]
        ],
        "{}",
        status.transcript()
    );
    assert_eq!(
        lines[2],
        [
            "local",
            worker.as_str(),
            IMAGE,
            "missing",
            "-",
            "missing",
            "-"
        ],
        "{}",
        status.transcript()
    );
    assert_eq!(lines.len(), 3, "{}", status.transcript());

    env.refinery(&["apply", "--yes"]).await.code(0);
    env.refinery(&["status"]).await.code(0);
}

/// Plan with three kinds of drift, apply, plan again, status: the transcripts a user sees.
#[tokio::test]
async fn transcript_plan_apply_status() {
    let env = Env::new().await;
    let (web, worker) = (env.name("web"), env.name("worker"));
    env.commit_manifest(&format!(
        "containers:\n\
         \x20 - name: {web}\n    image: {IMAGE}\n    env: {{LOG_LEVEL: info}}\n\
         \x20 - name: {worker}\n    image: {IMAGE}\n    env: {{LOG_LEVEL: info, API_TOKEN: s3cr3t}}\n\
         drift_rules:\n  unauthorized_containers: {{action: terminate}}\n"
    ));
    let mut drifted = env.spec("worker");
    drifted
        .env
        .insert("LOG_LEVEL".into(), Secret::new("debug", false));
    drifted
        .env
        .insert("API_TOKEN".into(), Secret::new("old-token", true));
    env.create_by_hand("worker", drifted).await;
    env.create_by_hand("rogue", env.spec("rogue")).await;

    let plan = env.refinery(&["plan"]).await;
    plan.code(3);
    assert!(
        !plan.stdout.contains("s3cr3t") && !plan.stdout.contains("old-token"),
        "secrets are masked\n{}",
        plan.transcript()
    );
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0);
    let in_sync = env.refinery(&["plan"]).await;
    in_sync.code(0);
    let status = env.refinery(&["status"]).await;
    status.code(0);

    env.settings().bind(|| {
        insta::assert_snapshot!("plan_with_drift", plan.transcript());
        insta::assert_snapshot!("apply", apply.transcript());
        insta::assert_snapshot!("plan_in_sync", in_sync.transcript());
        insta::assert_snapshot!("status", status.transcript());
    });
}

#[tokio::test]
async fn transcript_validate_ok_and_errors() {
    let env = Env::offline();
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    restart: unless-stopped\n",
        env.name("web")
    ));
    let ok = env.refinery(&["validate"]).await;
    ok.code(0);

    env.commit_manifest(&format!(
        "containers:\n\
         \x20 - name: {}\n    image: {IMAGE}\n    ports: [\"8080:80\", \"8080:81\"]\n    restart: allways\n\
         \x20 - name: {}\n    imag: {IMAGE}\n\
         drift_rules:\n  unauthorized_containers: {{action: destroy}}\n",
        env.name("web"),
        env.name("worker"),
    ));
    let errors = env.refinery(&["validate"]).await;
    errors.code(2);

    env.settings().bind(|| {
        insta::assert_snapshot!("validate_ok", ok.transcript());
        insta::assert_snapshot!("validate_errors", errors.transcript());
    });
}

/// Every command that prints data ends quietly with exit 0 when its reader has gone away before
/// it writes (`refinery plan | head -1` whose `head` is done): the pipe is closed before the
/// command starts, so its first write to stdout fails.
#[tokio::test]
async fn every_command_exits_0_quietly_when_stdout_is_closed() {
    let env = Env::new().await;
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n",
        env.name("web")
    ));
    let repo = env.repo.path().to_string_lossy().into_owned();
    let commands: [&[&str]; 10] = [
        &["validate"],
        &["validate", "--json"],
        &["plan"],
        &["plan", "--json"],
        &["apply", "--yes"],
        &["ledger", "show"],
        &["status"],
        &["status", "--json"],
        &["nodes"],
        &["audit"],
    ];
    for args in commands {
        let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        full.extend(["--repo".to_owned(), repo.clone()]);
        let (code, stderr) = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            use std::process::Stdio;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_refinery"))
                .args(&full)
                .env("NO_COLOR", "1")
                .env("CI", "1")
                .env_remove("REFINERY_REPO")
                .env_remove("REFINERY_REV")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run `refinery`");
            // The reader goes away at once.
            drop(child.stdout.take());
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .expect("stderr");
            let status = child.wait().expect("wait");
            (status.code().unwrap_or(-1), stderr)
        })
        .await
        .expect("the runner thread");
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}
