//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`): bollard's types stay
//! private, so the decoder is reached through bytes, as the engine's event stream delivers them.

use refinery_core::EngineEvent;

/// Decodes one JSON message of the engine's `/events` stream into a core event, as the event
/// watcher does; `None` when it is not JSON bollard accepts or not a container event.
#[must_use]
pub fn decode_event(json: &[u8]) -> Option<EngineEvent> {
    let msg: bollard::models::EventMessage = serde_json::from_slice(json).ok()?;
    crate::convert::engine_event(msg)
}

#[cfg(test)]
mod tests {
    use super::decode_event;

    #[test]
    fn decode_event_container_die_keeps_exit_code_and_labels() {
        let json = br#"{"Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"name":"web","exitCode":"3","image":"busybox","team":"a"}},"timeNano":7}"#;
        let e = decode_event(json).expect("a container event");
        assert_eq!(e.action, "die");
        assert_eq!(e.name.as_deref(), Some("web"));
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.labels.len(), 1);
        assert_eq!(e.time_nanos, Some(7));
    }

    #[test]
    fn decode_event_without_actor_id_is_none() {
        assert!(decode_event(br#"{"Action":"die","Actor":{"ID":""}}"#).is_none());
        assert!(decode_event(b"not json").is_none());
    }
}
