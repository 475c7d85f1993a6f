//! Content-tracked mounts, compose `configs:` and `x-refinery`, and `ignore_differences` checks:
//! loading, the diff and the policy, all pure.

use std::collections::BTreeMap;

use refinery_core::compose::{StackSource, expand_stack};
use refinery_core::content::{ContentFile, ContentMount, content_labels};
use refinery_core::manifest::StackSpec;
use refinery_core::testing::{Pass, image_info, manifest, observed_from_spec, spec};
use refinery_core::{
    Action, ImageDefaults, LoadOptions, Mount, MountKind, Observed, StepKind, load_manifest,
};

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Expands the compose file `file` of stack `shop` (with `extra` files in the commit).
fn try_expand(
    file: &str,
    compose: &str,
    extra: &[(&str, &str)],
) -> Result<refinery_core::compose::Expanded, Vec<refinery_core::Issue>> {
    let mut all = files(extra);
    all.insert(file.into(), compose.to_owned());
    let read = |p: &str| all.get(p).cloned();
    let env = |_: &str| None;
    expand_stack(
        &StackSpec {
            name: "shop".into(),
            node: "lyra".into(),
            files: vec![file.into()],
            profiles: Vec::new(),
            env_file: None,
            ..StackSpec::default()
        },
        &StackSource {
            read: &read,
            env: &env,
            base_dir: Some("/repo"),
            manifest_file: "refinery.yaml",
            read_tree: &|_| std::collections::BTreeMap::new(),
            keys: &refinery_core::sops::AgeKeys::default(),
        },
    )
}

fn expand(compose: &str, extra: &[(&str, &str)]) -> refinery_core::compose::Expanded {
    try_expand("stack/docker-compose.yml", compose, extra)
        .unwrap_or_else(|issues| panic!("{issues:?}"))
}

/// `(target, repository path)` of each content-tracked mount of `c`.
fn tracked_of(c: &refinery_core::ContainerSpec) -> Vec<(&str, &str)> {
    c.content
        .iter()
        .map(|m| (m.target.as_str(), m.repo_path.as_str()))
        .collect()
}

#[test]
fn content_compose_binds_and_configs_are_tracked_with_default_targets() {
    let e = expand(
        "services:\n  app:\n    image: x\n    volumes: [\"./conf:/etc/app:ro\", \"/srv/abs:/abs\"]\n    configs:\n      - motd\n      - {source: settings, target: /etc/settings.ini}\n    x-refinery:\n      ignore_differences: [env.BUILD_ID]\n      drift_action: alert\nconfigs:\n  motd: {file: ./motd.txt}\n  settings: {file: ../shared/settings.ini}\n",
        &[],
    );
    let c = &e.containers[0];
    let tracked = tracked_of(c);
    assert_eq!(
        tracked,
        [
            ("/etc/app", "stack/conf"),
            ("/etc/settings.ini", "shared/settings.ini"),
            ("/motd", "stack/motd.txt"),
        ],
        "an absolute host path is not tracked"
    );
    assert!(
        c.mounts
            .iter()
            .any(|m| m.target == "/motd" && m.read_only && m.kind == MountKind::Bind)
    );
    assert_eq!(c.ignore_differences, ["env.BUILD_ID"]);
    assert_eq!(c.drift_action, Some(Action::Alert));
}

#[test]
fn content_compose_secrets_mount_under_run_secrets_by_content() {
    let e = expand(
        "services:\n  db:\n    image: x\n    configs: [motd]\n    secrets:\n      - db_password\n      - {source: api_key, target: api.key}\n      - {source: api_key, target: /etc/api/key}\nconfigs:\n  motd: {file: ./motd.txt}\nsecrets:\n  db_password: {file: ./secrets/db_password.txt}\n  api_key: {file: ./secrets/api.key}\n",
        &[],
    );
    let c = &e.containers[0];
    let tracked = tracked_of(c);
    assert_eq!(
        tracked,
        [
            ("/etc/api/key", "stack/secrets/api.key"),
            ("/motd", "stack/motd.txt"),
            ("/run/secrets/api.key", "stack/secrets/api.key"),
            ("/run/secrets/db_password", "stack/secrets/db_password.txt"),
        ]
    );
    assert!(
        c.mounts
            .iter()
            .any(|m| m.target == "/run/secrets/db_password"
                && m.read_only
                && m.kind == MountKind::Bind)
    );
}

#[test]
fn content_compose_undeclared_secret_is_an_error_with_a_suggestion() {
    let issues = try_expand(
        "docker-compose.yml",
        "services:\n  app:\n    image: x\n    secrets: [db_pasword]\nsecrets:\n  db_password: {file: ./db.txt}\n",
        &[],
    )
    .expect_err("invalid");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(
        issues[0].message,
        "service `app` uses secret `db_pasword`, which is not declared under the top-level `secrets:`"
    );
    assert_eq!(
        issues[0].hint.as_deref(),
        Some("did you mean `db_password`?")
    );
    assert_eq!((issues[0].line, issues[0].column), (4, 15));
}

#[test]
fn content_compose_unknown_config_and_x_refinery_key_are_errors() {
    let issues = try_expand("docker-compose.yml", "services:\n  app:\n    image: x\n    configs: [motd]\n    secrets: [db_pass]\n    x-refinery: {drift_actoin: alert}\nconfigs:\n  mtod: {file: ./motd.txt}\n  out: {file: ../../etc/passwd}\nsecrets:\n  db_password: {environment: DB_PASSWORD}\n", &[])
        .expect_err("invalid");
    let text = format!("{issues:?}");
    assert!(text.contains("drift_actoin"), "{text}");
    assert!(text.contains("did you mean `drift_action`?"), "{text}");
    assert!(text.contains("points outside the repository"), "{text}");
    assert!(
        text.contains("secret `db_password`: `environment` is not supported"),
        "{text}"
    );
}

#[test]
fn content_unknown_ignore_path_warns_with_a_suggestion() {
    let env = |_: &str| None;
    let loaded = load_manifest(
        "refinery.yaml",
        "ignore_differences: [lables.team, env.X]\ncontainers:\n  - {name: web, image: x, ignore_differences: [helthcheck]}\n",
        &LoadOptions {
            env: &env,
            base_dir: Some("/repo".into()),
        },
    )
    .expect("loads");
    let hints: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| format!("{}:{} {:?}", w.line, w.column, w.hint))
        .collect();
    assert_eq!(loaded.warnings.len(), 2, "{hints:?}");
    let all = format!("{:?}", loaded.warnings);
    assert!(all.contains("did you mean `labels.team`?"), "{all}");
    assert!(all.contains("did you mean `healthcheck`?"), "{all}");
}

fn tracked(text: &str) -> ContentMount {
    let mut m = ContentMount::new("/etc/app.conf", "conf/app.conf");
    m.files
        .insert(String::new(), ContentFile::new(text.as_bytes().to_vec()));
    m
}

/// `web` mounting `conf/app.conf`, observed as made from `made_with`, its copy on the host holding
/// `on_host`.
fn content_case(
    desired: &str,
    made_with: &str,
    on_host: Option<&str>,
) -> (refinery_core::Manifest, Observed) {
    let mut web = spec("web");
    web.mounts = vec![Mount {
        kind: MountKind::Bind,
        source: "/state/content/web/aaaa/app.conf".into(),
        target: "/etc/app.conf".into(),
        read_only: true,
    }];
    web.content = vec![tracked(made_with)];
    let img = ImageDefaults::default();
    let mut o = observed_from_spec(&web, &img);
    o.labels.extend(content_labels(&web.content));
    o.mounts[0].source = "/state/content/web/bbbb/app.conf".into();
    o.content = on_host.map(|t| {
        tracked(t)
            .file_digests()
            .map(|(p, d)| (p, d.to_owned()))
            .collect()
    });
    web.content = vec![tracked(desired)];
    let observed = Observed {
        containers: vec![o],
        images: BTreeMap::from([(web.image.clone(), image_info(&web.image, &img))]),
    };
    (manifest(vec![web]), observed)
}

#[test]
fn content_same_bytes_in_another_copy_is_in_sync() {
    let (m, o) = content_case("a=1", "a=1", Some("a=1"));
    let eval = Pass::default().run(&m, &o);
    assert!(eval.plan.steps.is_empty(), "{:?}", eval.plan);
}

#[test]
fn content_changed_in_git_is_config_drift_naming_the_file() {
    let (m, o) = content_case("a=2", "a=1", None);
    let eval = Pass::default().run(&m, &o);
    let step = &eval.plan.steps[0];
    assert_eq!(step.kind, StepKind::Recreate);
    let fields: Vec<&str> = step.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["content.conf/app.conf"]);
}

#[test]
fn content_edited_on_the_host_is_drift_said_so() {
    let (m, o) = content_case("a=1", "a=1", Some("hacked"));
    let eval = Pass::default().run(&m, &o);
    let change = &eval.plan.steps[0].changes[0];
    assert!(
        change.observed.ends_with("(edited on the host)"),
        "{change:?}"
    );
}

#[test]
fn content_only_drift_may_restart_other_config_drift_may_not() {
    let (mut m, o) = content_case("a=2", "a=1", None);
    m.containers[0].drift_action = Some(Action::Restart);
    let eval = Pass::default().run(&m, &o);
    assert_eq!(eval.plan.steps[0].kind, StepKind::Restart);
    m.containers[0]
        .env
        .insert("NEW".into(), refinery_core::Secret::new("1", false));
    let eval = Pass::default().run(&m, &o);
    assert_eq!(eval.plan.steps[0].kind, StepKind::Alert, "{:?}", eval.plan);
}
