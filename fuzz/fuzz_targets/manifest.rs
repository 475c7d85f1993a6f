//! The manifest parser: any bytes either load or fail with issues that name a place; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refinery_core::{LoadOptions, load_manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "TAG").then(|| "1.36".to_owned());
    let opts = LoadOptions {
        env: &env,
        base_dir: Some("/repo".into()),
    };
    match load_manifest("refinery.yaml", src, &opts) {
        Ok(loaded) => {
            // What loaded is usable: each container names a node and an image.
            for c in &loaded.manifest.containers {
                assert!(!c.name.is_empty());
            }
        }
        Err(e) => {
            // A failed load always says where and what.
            for issue in e.issues() {
                assert!(!issue.to_string().is_empty());
            }
            let _ = e.to_string();
        }
    }
});
