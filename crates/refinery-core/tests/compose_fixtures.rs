//! Table tests over `tests/fixtures/compose/`: each directory is a repository (a `refinery.yaml`
//! with a `stacks:` entry, and the compose files beside it), named by its outcome:
//! - `valid-*` loads; what it expands into (containers, networks, volumes, warnings) is an insta
//!   snapshot, so the whole model can be reviewed;
//! - `warns-*` loads with the warnings the name promises (snapshot);
//! - `invalid-*` does not load; every problem, at its file, line and column, is a snapshot.
//!
//! The `valid-*` fixtures taken from public projects say where they came from in `SOURCE`; what
//! docker-compose makes of the same files is compared in `compose_vs_docker_compose.rs`.

mod compose_common;

use compose_common::{fixture_names, load_fixture};
use refinery_core::{Issue, Manifest};

fn render_issues(issues: &[Issue]) -> String {
    let mut out = String::new();
    for i in issues {
        out.push_str(&format!("{i}\n"));
        if let Some(h) = &i.hint {
            out.push_str(&format!("  hint: {h}\n"));
        }
    }
    out
}

/// One line per set field of a value's JSON: `  key: <compact JSON>`.
fn fields(value: &serde_json::Value, skip: &[&str]) -> String {
    let mut out = String::new();
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            let unset = v.is_null()
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty);
            if skip.contains(&k.as_str()) || unset {
                continue;
            }
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out
}

/// The expanded model, as reviewed in the snapshots: every spec field by field (compact JSON
/// values), then the networks, volumes and warnings.
fn render_model(m: &Manifest, warnings: &[Issue]) -> String {
    let mut out = String::new();
    for s in &m.stacks {
        out.push_str(&format!(
            "stack `{}` on `{}`: files {:?}, profiles {:?}\n",
            s.name, s.node, s.files, s.profiles
        ));
    }
    for c in &m.containers {
        let value = serde_json::to_value(c).expect("specs serialize");
        out.push_str(&format!(
            "\ncontainer {}\n{}",
            c.name,
            fields(&value, &["name", "node", "bloodline"])
        ));
    }
    for n in &m.stack_networks {
        let value = serde_json::to_value(n).expect("specs serialize");
        out.push_str(&format!(
            "\nnetwork {}\n{}",
            n.name,
            fields(&value, &["name", "node"])
        ));
    }
    for v in &m.stack_volumes {
        let value = serde_json::to_value(v).expect("specs serialize");
        out.push_str(&format!(
            "\nvolume {}\n{}",
            v.name,
            fields(&value, &["name", "node"])
        ));
    }
    if !warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        out.push_str(&render_issues(warnings));
    }
    out
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_snapshot_path("snapshots/compose");
    s
}

#[test]
fn compose_valid_fixtures_load_and_expand_as_snapshotted() {
    let names = fixture_names("valid-");
    assert!(!names.is_empty());
    for name in names {
        let (m, warnings) = match load_fixture(&name) {
            Ok(x) => x,
            Err(e) => panic!("{name} should load:\n{e}\n{}", render_issues(e.issues())),
        };
        assert!(!m.containers.is_empty(), "{name} expands into containers");
        settings().bind(|| insta::assert_snapshot!(name.clone(), render_model(&m, &warnings)));
    }
}

#[test]
fn compose_warns_fixtures_load_with_their_warnings() {
    for name in fixture_names("warns-") {
        let (m, warnings) = match load_fixture(&name) {
            Ok(x) => x,
            Err(e) => panic!("{name} should load:\n{e}\n{}", render_issues(e.issues())),
        };
        assert!(!warnings.is_empty(), "{name} warns");
        let summary: Vec<String> = m.containers.iter().map(|c| c.name.clone()).collect();
        let out = format!(
            "containers: {}\n{}",
            summary.join(", "),
            render_issues(&warnings)
        );
        settings().bind(|| insta::assert_snapshot!(name.clone(), out));
    }
}

#[test]
fn compose_invalid_fixtures_report_every_problem_at_its_place() {
    let names = fixture_names("invalid-");
    assert!(!names.is_empty());
    for name in names {
        let e = match load_fixture(&name) {
            Ok(_) => panic!("{name} should not load"),
            Err(e) => e,
        };
        settings().bind(|| {
            insta::assert_snapshot!(
                name.clone(),
                format!("error: {e}\n{}", render_issues(e.issues()))
            )
        });
    }
}
