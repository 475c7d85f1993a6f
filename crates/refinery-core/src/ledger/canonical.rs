//! Canonical bytes: compact JSON with object keys sorted by their UTF-8 bytes, whatever order the
//! map holds them in.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::hex::hex;

/// The canonical bytes of `value`: no whitespace, object keys sorted, strings escaped as
/// `serde_json` escapes them.
#[must_use]
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_value(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// SHA-256 of `bytes`, lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The hash an entry must carry: SHA-256 (lower-case hex) over the canonical bytes of the entry
/// with its `hash` field left out. Anything but an object hashes as itself.
#[must_use]
pub fn entry_hash(entry: &Value) -> String {
    let bytes = match entry {
        Value::Object(map) => {
            let mut without = map.clone();
            without.remove("hash");
            canonical_bytes(&Value::Object(without))
        }
        other => canonical_bytes(other),
    };
    hex(&Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_nested_objects_sorted_compact() {
        let v: Value = serde_json::from_str(
            r#"{"b": 1, "a": {"z": [1, {"y": null, "x": "é\n"}], "m": true}}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8(canonical_bytes(&v)).unwrap_or_default(),
            r#"{"a":{"m":true,"z":[1,{"x":"é\n","y":null}]},"b":1}"#
        );
    }

    #[test]
    fn entry_hash_ignores_own_hash_field() {
        let a: Value = serde_json::from_str(r#"{"seq":1,"hash":"x"}"#).unwrap_or_default();
        let b: Value = serde_json::from_str(r#"{"seq":1}"#).unwrap_or_default();
        assert_eq!(entry_hash(&a), entry_hash(&b));
        assert_eq!(entry_hash(&a).len(), 64);
    }
}
