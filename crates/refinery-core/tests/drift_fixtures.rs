//! Table tests over `tests/fixtures/drift/<case>-{desired,observed}.yaml`: the desired side is a
//! `refinery.yaml`, the observed side an `Observed` as the Docker adapter reports it. Each case
//! names the drifts the diff finds (kind and the fields acted on) and the step the plan makes with
//! the manifest's rules.

use std::collections::BTreeSet;
use std::path::Path;

use refinery_core::drift::DriftKind;
use refinery_core::plan::StepKind;
use refinery_core::testing::{Evaluated, Pass};
use refinery_core::{LoadOptions, Manifest, Observed, ResourceId, load_manifest};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/drift");

struct Case {
    name: &'static str,
    /// Each drift: kind and the fields that count (not ignored).
    drifts: &'static [(DriftKind, &'static [&'static str])],
    /// The step for `web` (or the one other container the case is about); `None`: no step.
    step: Option<(&'static str, StepKind)>,
}

use DriftKind::{Config, Image, Missing, Status, Unauthorized};

const CASES: &[Case] = &[
    Case {
        name: "container-in-sync",
        drifts: &[],
        step: None,
    },
    Case {
        name: "container-long-forms-in-sync",
        drifts: &[],
        step: None,
    },
    Case {
        name: "container-entrypoint-only-in-sync",
        drifts: &[],
        step: None,
    },
    Case {
        name: "container-image-drift",
        drifts: &[(Image, &["image"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-env-changed",
        drifts: &[(Config, &["env.LOG_LEVEL"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-extra-env",
        drifts: &[(Config, &["env.DEBUG"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-port-changed",
        drifts: &[(Config, &["ports"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-volume-changed",
        drifts: &[(Config, &["volumes"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-command-changed",
        drifts: &[(Config, &["command"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-label-added",
        drifts: &[(Config, &["labels.owner"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-restart-changed",
        drifts: &[(Config, &["restart"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-healthcheck-changed",
        drifts: &[(Config, &["healthcheck"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-exited",
        drifts: &[(Status, &["status"])],
        step: Some(("web", StepKind::Start)),
    },
    Case {
        name: "container-paused",
        drifts: &[(Status, &["status"])],
        step: Some(("web", StepKind::Unpause)),
    },
    Case {
        name: "container-unhealthy",
        drifts: &[(Status, &["status"])],
        step: Some(("web", StepKind::Restart)),
    },
    Case {
        name: "container-restarting",
        drifts: &[(Status, &["status"])],
        step: Some(("web", StepKind::Restart)),
    },
    Case {
        name: "container-exited-and-changed",
        drifts: &[(Config, &["env.LOG_LEVEL"]), (Status, &["status"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-missing",
        drifts: &[(Missing, &[])],
        step: Some(("web", StepKind::Create)),
    },
    Case {
        name: "container-unauthorized",
        drifts: &[(Unauthorized, &[])],
        step: Some(("adminer", StepKind::Alert)),
    },
    Case {
        name: "container-unauthorized-terminated",
        drifts: &[(Unauthorized, &[])],
        step: Some(("adminer", StepKind::Remove)),
    },
    Case {
        name: "container-secret-env-changed",
        drifts: &[(Config, &["env.DB_PASSWORD"])],
        step: Some(("web", StepKind::Recreate)),
    },
    Case {
        name: "container-ignored-field",
        drifts: &[(Config, &[])],
        step: Some(("web", StepKind::Ignore)),
    },
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()))
}

fn desired(case: &str) -> Manifest {
    let file = format!("{case}-desired.yaml");
    let env = |_: &str| None;
    let opts = LoadOptions {
        env: &env,
        base_dir: Some("/repo".into()),
    };
    match load_manifest(&file, &read(&Path::new(DIR).join(&file)), &opts) {
        Ok(loaded) => loaded.manifest,
        Err(e) => panic!("{file}: {e}: {:#?}", e.issues()),
    }
}

fn observed(case: &str) -> Observed {
    let path = Path::new(DIR).join(format!("{case}-observed.yaml"));
    serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn evaluate(case: &str) -> Evaluated {
    Pass::default()
        .honor_grace(false)
        .run(&desired(case), &observed(case))
}

fn web() -> ResourceId {
    ResourceId::container("lyra", "web")
}

#[test]
fn drift_fixture_cases_find_declared_drifts_and_steps() {
    let mut failures = Vec::new();
    for case in CASES {
        let eval = evaluate(case.name);
        let got: Vec<(DriftKind, Vec<String>)> = eval
            .report
            .drifts
            .iter()
            .map(|d| {
                let fields = d
                    .changes
                    .iter()
                    .filter(|c| !c.ignored)
                    .map(|c| c.field.clone())
                    .collect();
                (d.kind, fields)
            })
            .collect();
        let want: Vec<(DriftKind, Vec<String>)> = case
            .drifts
            .iter()
            .map(|(k, f)| (*k, f.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        if got != want {
            failures.push(format!("{}: drifts {got:?}, want {want:?}", case.name));
        }
        let steps: Vec<(String, StepKind)> = eval
            .plan
            .steps
            .iter()
            .map(|s| (s.id.name().to_owned(), s.kind))
            .collect();
        let want_steps: Vec<(String, StepKind)> = case
            .step
            .iter()
            .map(|(n, k)| ((*n).to_owned(), *k))
            .collect();
        if steps != want_steps {
            failures.push(format!(
                "{}: steps {steps:?}, want {want_steps:?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn drift_fixture_files_each_belong_to_a_case() {
    let names: BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(DIR).expect("fixture dir") {
        let file = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        let case = file
            .strip_suffix("-desired.yaml")
            .or_else(|| file.strip_suffix("-observed.yaml"))
            .unwrap_or_else(|| {
                panic!("`{file}` is not named `<case>-desired.yaml` or `<case>-observed.yaml`")
            });
        assert!(names.contains(case), "`{file}` has no case in CASES");
        files.insert(file);
    }
    for name in names {
        for side in ["desired", "observed"] {
            assert!(
                files.contains(&format!("{name}-{side}.yaml")),
                "case `{name}` lacks `{name}-{side}.yaml`"
            );
        }
    }
}

#[test]
fn drift_in_sync_fixtures_report_web_in_sync() {
    for case in [
        "container-in-sync",
        "container-long-forms-in-sync",
        "container-entrypoint-only-in-sync",
        "container-ignored-field",
    ] {
        assert_eq!(evaluate(case).report.in_sync, vec![web()], "{case}");
    }
}

#[test]
fn drift_secret_env_changed_masks_both_sides() {
    let eval = evaluate("container-secret-env-changed");
    let change = &eval.report.drifts[0].changes[0];
    assert_eq!(change.field, "env.DB_PASSWORD");
    assert_eq!(change.desired, "*** (after)");
    assert_eq!(change.observed, "*** (before)");
    let json = serde_json::to_string(&eval.plan).expect("plan serializes");
    assert!(
        !json.contains("hunter"),
        "a secret leaked into the plan: {json}"
    );
    assert!(!format!("{:?}", eval.decisions).contains("hunter"));
}

#[test]
fn drift_ignored_field_is_shown_but_never_acted_on() {
    let eval = evaluate("container-ignored-field");
    let fields: Vec<(&str, bool)> = eval.report.drifts[0]
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.ignored))
        .collect();
    assert_eq!(
        fields,
        [
            ("env.BUILD_ID", true),
            ("labels.com.example.branch", true),
            ("labels.com.example.build", true)
        ]
    );
    assert_eq!(eval.report.drifts[0].summary, "3 ignored fields");
    // An `ignore` step: kept for `plan --show-ignored`, never written to the engine.
    assert!(
        eval.plan
            .steps
            .iter()
            .all(|s| s.kind == StepKind::Ignore && !s.kind.writes()),
        "{:?}",
        eval.plan
    );
}

#[test]
fn drift_image_drift_summary_names_both_images() {
    let eval = evaluate("container-image-drift");
    let d = &eval.report.drifts[0];
    assert_eq!(
        d.summary,
        "nginx:1.24 (112411241124) → nginx:1.25 (112511251125)"
    );
    assert_eq!(
        d.container_id.as_deref(),
        Some("4a1f0c2b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a")
    );
}

#[test]
fn drift_exited_summary_shows_exit_code() {
    assert_eq!(
        evaluate("container-exited").report.drifts[0].summary,
        "exited (code 137)"
    );
}

#[test]
fn drift_unauthorized_is_not_in_sync_and_web_is() {
    let eval = evaluate("container-unauthorized");
    assert_eq!(eval.report.in_sync, vec![web()]);
    assert_eq!(
        eval.report.drifts[0].id,
        ResourceId::container("lyra", "adminer")
    );
    assert_eq!(
        eval.report.drifts[0].summary,
        "adminer:4 (running), declared nowhere"
    );
}
