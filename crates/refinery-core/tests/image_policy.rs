//! `image_policy: {semver: …}` on a container: loaded, and refused with file, line, column,
//! field and a hint when the range or the declared image cannot work.

use refinery_core::{LoadOptions, ManifestError, load_manifest};

fn load(src: &str) -> Result<refinery_core::Loaded, ManifestError> {
    let env = |_: &str| None;
    load_manifest(
        "refinery.yaml",
        src,
        &LoadOptions {
            env: &env,
            base_dir: Some("/repo".into()),
        },
    )
}

fn problems(src: &str) -> Vec<String> {
    match load(src) {
        Ok(_) => panic!("should fail:\n{src}"),
        Err(e) => e
            .issues()
            .iter()
            .map(|i| {
                format!(
                    "{}:{}:{}: {}: {} (hint: {})",
                    i.file,
                    i.line,
                    i.column,
                    i.field,
                    i.message,
                    i.hint.as_deref().unwrap_or("-")
                )
            })
            .collect(),
    }
}

const HEAD: &str = "nodes: [{name: local, docker_enabled: true}]\ncontainers:\n";

#[test]
fn image_policy_loads_on_a_container() {
    let src = format!(
        "{HEAD}  - name: app\n    image: reg.example:5000/app:1.4.2\n    image_policy: {{semver: \"^1.4\"}}\n  - name: plain\n    image: reg.example:5000/app:1.4.2\n"
    );
    let loaded = load(&src).unwrap_or_else(|e| panic!("{e:?}"));
    let c = &loaded.manifest.containers;
    assert_eq!(
        c[0].options
            .image_policy
            .as_ref()
            .map(|p| p.semver.as_str()),
        Some("^1.4")
    );
    assert_eq!(c[1].options.image_policy, None);
}

#[test]
fn image_policy_errors_name_the_place_field_and_a_hint() {
    let cases = [
        (
            "    image: app:1.4.2\n    image_policy: {semver: \"^^1\"}\n",
            "refinery.yaml:5:28: containers[0].image_policy.semver: `^^1` is not a semver range",
            "`^1.4`",
        ),
        (
            "    image: app:2.0.0\n    image_policy: {semver: \"^1.4\"}\n",
            "refinery.yaml:5:28: containers[0].image_policy.semver: the image's tag `2.0.0` does not match the range `^1.4`",
            "declare a version inside the range",
        ),
        (
            "    image: app:latest\n    image_policy: {semver: \"^1.4\"}\n",
            "the image's tag `latest` is not a version",
            "write the image without a tag (`app`)",
        ),
        (
            "    image: app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    image_policy: {semver: \"^1\"}\n",
            "pinned to a digest",
            "drop the `@sha256:…` part",
        ),
        (
            "    image: app\n    image_policy: {semvr: \"^1\"}\n",
            "containers[0].image_policy.semvr: unknown key `semvr`",
            "did you mean `semver`?",
        ),
        (
            "    image: app\n    image_policy: {}\n",
            "containers[0].image_policy.semver: `image_policy` needs `semver`",
            "image_policy: {semver: \"^1.4\"}",
        ),
    ];
    for (tail, want, hint) in cases {
        let src = format!("{HEAD}  - name: app\n{tail}");
        let got = problems(&src);
        assert!(
            got.iter().any(|p| p.contains(want) && p.contains(hint)),
            "{src}\nwant {want} / {hint}\ngot {got:#?}"
        );
    }
}
