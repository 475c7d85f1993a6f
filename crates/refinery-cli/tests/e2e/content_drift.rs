//! Content drift: a `./` bind source, a compose `configs:` file and an `env_file` are desired by
//! their committed content. A change in git is config drift naming the file; an edit of the
//! materialised copy on the host is drift too and is put back from git; ignored fields are never
//! acted on.

use refinery_core::{ContainerRuntime, NetworkAttachment, ObservedContainer, Secret};

use crate::common::{Env, IMAGE};

const LEDGER: &str = "ledger/container_ledger.jsonl";

/// The host path the container mounts at `target`.
fn source_of(c: &ObservedContainer, target: &str) -> std::path::PathBuf {
    c.mounts
        .iter()
        .find(|m| m.target == target)
        .map(|m| std::path::PathBuf::from(&m.source))
        .unwrap_or_else(|| panic!("`{}` mounts nothing at `{target}`: {:?}", c.name, c.mounts))
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()))
}

/// The changed fields of the plan step for `id`.
fn step_fields(plan: &serde_json::Value, id: &str) -> (String, Vec<String>) {
    let steps = plan["nodes"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let step = steps
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step for {id}: {plan}"));
    let fields = step["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (step["kind"].as_str().unwrap_or_default().to_owned(), fields)
}

fn manifest(env: &Env, extra: &str) -> String {
    format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    volumes: [\"./conf:/etc/app:ro\"]\n{extra}",
        env.name("web")
    )
}

#[tokio::test]
async fn content_committed_change_recreates_and_host_edit_is_restored() {
    let env = Env::new().await;
    env.repo.write("conf/app.conf", "level=1\n");
    env.repo.write("conf/extra/more.conf", "more\n");
    env.commit_manifest(&manifest(&env, ""));
    // The work tree is never what runs: an uncommitted edit is not deployed.
    env.repo.write("conf/app.conf", "uncommitted\n");

    env.refinery(&["apply", "--yes"]).await.code(0);
    let c = env.existing("web").await;
    let copy = source_of(&c, "/etc/app");
    assert!(
        copy.starts_with(
            env.repo
                .path()
                .join(".git")
                .canonicalize()
                .expect("git dir")
        ),
        "the copy lives under the git directory: {}",
        copy.display()
    );
    assert_eq!(read(&copy.join("app.conf")), "level=1\n");
    assert_eq!(read(&copy.join("extra/more.conf")), "more\n");
    assert!(c.labels.contains_key("io.refinery.content-digest"));
    assert!(c.labels.contains_key("io.refinery.content.conf/app.conf"));
    env.refinery(&["plan"]).await.code(0);

    // A new commit changes the file: config drift naming it, recreated on a new copy.
    env.repo.write("conf/app.conf", "level=2\n");
    env.repo.commit("level 2");
    let id = format!("docker/local/container/{}", env.name("web"));
    let plan = env.refinery(&["plan", "--json"]).await;
    plan.code(3);
    let (kind, fields) = step_fields(&plan.json(), &id);
    assert_eq!(kind, "recreate");
    assert_eq!(fields, ["content.conf/app.conf"]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&env.name("web"), "recreated");
    let c2 = env.existing("web").await;
    assert_ne!(c2.id, c.id);
    let copy2 = source_of(&c2, "/etc/app");
    assert_ne!(copy2, copy, "one copy per content digest");
    assert_eq!(read(&copy2.join("app.conf")), "level=2\n");
    assert!(
        !copy.exists(),
        "the old copy, which no container mounts any more, is removed"
    );
    let ledger = read(&env.repo.path().join(LEDGER));
    assert!(
        ledger.contains("content.conf/app.conf"),
        "the ledger names the file:\n{ledger}"
    );

    // Edited on the host behind Refinery's back: drift, and put back from git.
    std::fs::write(copy2.join("app.conf"), "hacked\n").expect("edit the copy");
    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has("content.conf/app.conf")
        .stdout_has("(edited on the host)");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&env.name("web"), "recreated");
    let c3 = env.existing("web").await;
    assert_eq!(
        read(&source_of(&c3, "/etc/app").join("app.conf")),
        "level=2\n"
    );
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn content_only_change_with_restart_action_rewrites_in_place_and_restarts() {
    let env = Env::new().await;
    env.repo.write("conf/app.conf", "v1\n");
    env.commit_manifest(&manifest(&env, "    drift_action: restart\n"));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let c = env.existing("web").await;

    env.repo.write("conf/app.conf", "v2\n");
    env.repo.commit("v2");
    let id = format!("docker/local/container/{}", env.name("web"));
    let plan = env.refinery(&["plan", "--json"]).await;
    plan.code(3);
    assert_eq!(step_fields(&plan.json(), &id).0, "restart");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&env.name("web"), "restarted");
    let c2 = env.existing("web").await;
    assert_eq!(c2.id, c.id, "restarted, not replaced");
    assert_ne!(c2.started_at, c.started_at);
    assert_eq!(read(&source_of(&c2, "/etc/app").join("app.conf")), "v2\n");
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn content_compose_config_and_env_file_changes_recreate_the_service() {
    let env = Env::new().await;
    let project = env.name("cfg");
    let compose = format!(
        "services:\n  app:\n    image: {IMAGE}\n    env_file: [app.env]\n    configs:\n      - source: settings\n        target: /etc/settings.ini\n      - motd\nconfigs:\n  settings:\n    file: ./settings.ini\n  motd:\n    file: ./motd.txt\n"
    );
    env.repo.write("docker-compose.yml", compose);
    env.repo.write("settings.ini", "[a]\nx=1\n");
    env.repo.write("motd.txt", "hello\n");
    env.repo.write("app.env", "MODE=one\n");
    env.commit_manifest(&format!(
        "stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n"
    ));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let name = format!("{project}_app_1");
    let c = env.rt.inspect(&name).await.expect("inspect");
    assert_eq!(read(&source_of(&c, "/etc/settings.ini")), "[a]\nx=1\n");
    assert_eq!(read(&source_of(&c, "/motd")), "hello\n");
    assert_eq!(c.env.get("MODE").map(String::as_str), Some("one"));
    env.refinery(&["plan"]).await.code(0);

    // The config file changes in git: recreated with the new content, the file named.
    env.repo.write("settings.ini", "[a]\nx=2\n");
    env.repo.commit("x=2");
    let id = format!("docker/local/stack/{project}/app/1");
    let plan = env.refinery(&["plan", "--json"]).await;
    plan.code(3);
    assert_eq!(
        step_fields(&plan.json(), &id),
        (
            "recreate".to_owned(),
            vec!["content.settings.ini".to_owned()]
        )
    );
    env.refinery(&["apply", "--yes"]).await.code(0);
    let c2 = env.rt.inspect(&name).await.expect("inspect");
    assert_ne!(c2.id, c.id);
    assert_eq!(read(&source_of(&c2, "/etc/settings.ini")), "[a]\nx=2\n");

    // An env_file value changes in git: recreated with the new value.
    env.repo.write("app.env", "MODE=two\n");
    env.repo.commit("MODE=two");
    let plan = env.refinery(&["plan", "--json"]).await;
    plan.code(3);
    assert_eq!(
        step_fields(&plan.json(), &id),
        (
            "recreate".to_owned(),
            vec!["env.MODE".to_owned(), "content.app.env".to_owned()]
        ),
        "the value and the file it comes from"
    );
    env.refinery(&["apply", "--yes"]).await.code(0);
    let ledger = read(&env.repo.path().join(LEDGER));
    assert!(ledger.contains("content.app.env"), "{ledger}");
    let c3 = env.rt.inspect(&name).await.expect("inspect");
    assert_ne!(c3.id, c2.id);
    assert_eq!(c3.env.get("MODE").map(String::as_str), Some("two"));
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn content_ignored_fields_changed_by_hand_take_no_action_but_show_when_asked() {
    let env = Env::new().await;
    let project = env.name("ign");
    env.repo.write(
        "docker-compose.yml",
        format!(
            "services:\n  app:\n    image: {IMAGE}\n    x-refinery:\n      ignore_differences: [env.BUILD_ID]\n"
        ),
    );
    env.commit_manifest(&format!(
        "ignore_differences: [\"labels.com.example.*\"]\n\
         containers:\n  - name: {}\n    image: {IMAGE}\n    ignore_differences: [env.BUILD_ID, enviroment.X]\n\
         stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n",
        env.name("web")
    ));
    let mut spec = env.spec("web");
    spec.env.insert("BUILD_ID".into(), Secret::new("7", false));
    spec.labels.insert("com.example.team".into(), "a".into());
    let web = env.create_by_hand("web", spec).await;
    env.refinery(&["apply", "--yes"]).await.code(0);

    // The stack service gets the same by hand: recreated with an extra env var.
    let name = format!("{project}_app_1");
    let svc = env.rt.inspect(&name).await.expect("inspect");
    let mut spec = env.spec("app-tmp");
    spec.env.insert("BUILD_ID".into(), Secret::new("8", false));
    spec.options.networks = vec![NetworkAttachment {
        name: format!("{project}_default"),
        aliases: vec!["app".into()],
        ..Default::default()
    }];
    let mut req = env.run.request("app-tmp", spec);
    req.name.clone_from(&name);
    req.labels.extend(svc.labels.clone());
    env.rt.remove(&svc.id).await.expect("remove");
    let id = env.rt.create(&req).await.expect("create by hand");
    env.rt.start(&id).await.expect("start");

    let plan = env.refinery(&["plan"]).await;
    plan.code(0)
        .stderr_has("`enviroment.X` matches no field")
        .stderr_has("did you mean `env.X`?");
    assert!(!plan.stdout.contains("BUILD_ID"), "{}", plan.transcript());
    let shown = env.refinery(&["plan", "--show-ignored"]).await;
    shown
        .code(0)
        .stdout_has("env.BUILD_ID: 7 → (unset) (ignored)")
        .stdout_has("labels.com.example.team: a → (unset) (ignored)")
        .stdout_has("env.BUILD_ID: 8 → (unset) (ignored)");
    env.refinery(&["apply", "--yes"]).await.code(0);
    assert_eq!(env.existing("web").await.id, web, "not recreated");
    assert_eq!(
        env.rt.inspect(&name).await.expect("inspect").id,
        id,
        "not recreated"
    );
    let ledger = read(&env.repo.path().join(LEDGER));
    assert!(
        !ledger.contains("BUILD_ID") && !ledger.contains("com.example"),
        "ignored fields are not drift, not even in the ledger:\n{ledger}"
    );
}

#[tokio::test]
async fn content_bind_source_outside_the_repository_is_a_load_error() {
    let env = Env::offline();
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    volumes: [\"../secrets:/etc/app\"]\n",
        env.name("web")
    ));
    env.refinery(&["plan"])
        .await
        .code(2)
        .stderr_has("refinery.yaml:5:")
        .stderr_has("points outside the repository");
}
