//! Inputs the fuzz targets in `fuzz/` found crashing, kept as ordinary tests once fixed.

use refinery_core::{LoadOptions, load_manifest};

fn load_err(src: &str) -> Vec<String> {
    let env = |_: &str| None;
    match load_manifest(
        "refinery.yaml",
        src,
        &LoadOptions {
            env: &env,
            base_dir: None,
        },
    ) {
        Ok(_) => panic!("loaded:\n{src}"),
        Err(e) => e.issues().iter().map(ToString::to_string).collect(),
    }
}

/// `fuzz/artifacts/schedule/crash-025154f5…`: an hour past `u32::MAX / 60` overflowed while the
/// time of day was checked (a panic in debug builds).
#[test]
fn manifest_window_time_with_huge_hour_is_an_error() {
    let issues = load_err(
        "nodes: [{name: lyra}]\nmaintenance_windows:\n  - {day: daily, start_time: \"2314666666:00\", end_time: \"04:00\"}\n",
    );
    assert!(
        issues
            .iter()
            .any(|i| i.contains("`2314666666:00` is not a time of day")),
        "{issues:?}"
    );
}
