//! The duration, size, cron and maintenance-window parsers. The input's first line is parsed as a
//! duration and a size; the rest fill a schedule and a window in a manifest, whose windows are
//! then evaluated at a few instants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refinery_core::duration::{duration_hint, parse_duration_ms};
use refinery_core::ledger::parse_size;
use refinery_core::policy::window_active;
use refinery_core::{LoadOptions, load_manifest};

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(6, '\n');
    let dur = parts.next().unwrap_or_default();
    let _ = parse_duration_ms(dur);
    let _ = duration_hint(dur);
    let _ = parse_size(dur);
    let cron = parts.next().unwrap_or("0 2 * * *");
    let day = parts.next().unwrap_or("sunday");
    let start = parts.next().unwrap_or("02:00");
    let end = parts.next().unwrap_or("04:00");
    let tz = parts.next().unwrap_or("UTC");
    let src = format!(
        "nodes: [{{name: lyra}}]\ncontainers: [{{name: web, image: busybox, node: lyra}}]\n\
         drift_rules:\n  missing_containers: {{action: recreate, grace_period: {}}}\n\
         inventory:\n  schedule: {{cron: {}, timezone: {}}}\n\
         maintenance_windows:\n  - {{day: {}, start_time: {}, end_time: {}, timezone: {}}}\n",
        quote(dur),
        quote(cron),
        quote(tz),
        quote(day),
        quote(start),
        quote(end),
        quote(tz),
    );
    let env = |_: &str| None;
    let opts = LoadOptions {
        env: &env,
        base_dir: None,
    };
    if let Ok(loaded) = load_manifest("refinery.yaml", &src, &opts) {
        for w in &loaded.manifest.maintenance_windows {
            for secs in [0i64, 1_700_000_000, 1_800_000_000, 253_402_207_199] {
                if let Ok(now) = jiff::Timestamp::from_second(secs) {
                    let _ = window_active(w, now);
                }
            }
        }
    }
});
