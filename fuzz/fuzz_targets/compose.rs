//! The compose loader with interpolation: the input is a compose file (and, after a NUL byte, an
//! env file); `${VAR}`, `${VAR:-default}`, `${VAR?err}` resolve against a small environment.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use refinery_core::compose::{StackSource, expand_stack, parse_env_file};
use refinery_core::interpolate::interpolate;
use refinery_core::manifest::StackSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (compose, env_file) = match text.split_once('\0') {
        Some((c, e)) => (c, Some(e)),
        None => (text, None),
    };
    let mut files = BTreeMap::new();
    files.insert("docker-compose.yml".to_owned(), compose.to_owned());
    if let Some(e) = env_file {
        let _ = parse_env_file(e);
        files.insert(".env".to_owned(), e.to_owned());
    }
    let env: BTreeMap<&str, &str> = [("TAG", "1.36"), ("EMPTY", ""), ("PORT", "8080")]
        .into_iter()
        .collect();
    let lookup = |n: &str| env.get(n).map(|v| (*v).to_owned());
    let _ = interpolate(compose, &lookup);
    let read = |p: &str| files.get(p).cloned();
    let stack = StackSpec {
        name: "shop".into(),
        node: "lyra".into(),
        files: vec!["docker-compose.yml".into()],
        profiles: vec!["debug".into()],
        env_file: env_file.map(|_| ".env".to_owned()),
        ..StackSpec::default()
    };
    let read_tree = |_: &str| BTreeMap::new();
    let keys = refinery_core::sops::AgeKeys::new();
    let _ = expand_stack(
        &stack,
        &StackSource {
            read: &read,
            read_tree: &read_tree,
            env: &lookup,
            base_dir: Some("/repo"),
            manifest_file: "refinery.yaml",
            keys: &keys,
        },
    );
});
