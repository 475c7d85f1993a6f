//! The Docker event decoder: any JSON the engine's `/events` stream could carry decodes to a core
//! event or to nothing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(e) = refinery_docker::fuzzing::decode_event(data) {
        assert!(!e.container_id.is_empty());
        assert!(!e.labels.contains_key("name"));
    }
});
