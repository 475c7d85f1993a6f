//! A content-tracked file (a `./` bind source, a compose `configs:` file) that is SOPS-encrypted:
//! decrypted in memory to the clear bytes the container mounts, as `sops -d` writes them.

use super::decrypt::decrypt_tree;
use super::{AgeKeys, SopsError, SopsFormat, decrypt, is_sops};
use crate::yaml::{Node, Value};

/// The clear bytes of the SOPS file `path` (`bytes` from the commit), or `None` when it is not
/// SOPS-encrypted (a plain file, mounted as it is).
///
/// Supported: JSON (`.json`, written back as JSON without the `sops` member, key order kept),
/// YAML (`.yaml`/`.yml`, written as the equivalent JSON, which YAML reads the same; comments and
/// layout are not kept), dotenv (`sops_*` lines, written as `KEY=value` lines) and sops' binary
/// format (any other name holding `{"data": "ENC[…]", "sops": {…}}`, written as the bytes of
/// `data`).
pub fn decrypt_file(
    path: &str,
    bytes: &[u8],
    keys: &AgeKeys,
) -> Result<Option<Vec<u8>>, SopsError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    match SopsFormat::for_path(path) {
        format @ (SopsFormat::Json | SopsFormat::Yaml) => {
            if !is_sops(text, format) {
                return Ok(None);
            }
            let tree = decrypt_tree(text, keys)?;
            let mut out = String::new();
            write_json(&tree, 0, &mut out);
            out.push('\n');
            Ok(Some(out.into_bytes()))
        }
        SopsFormat::Dotenv => {
            if text.trim_start().starts_with('{') && is_sops(text, SopsFormat::Json) {
                let tree = decrypt_tree(text, keys)?;
                return match tree.get("data").and_then(Node::scalar) {
                    Some(data) => Ok(Some(data.as_bytes().to_vec())),
                    None => Err(SopsError::Malformed(
                        "a SOPS file in the binary format has a top-level `data` value".into(),
                    )),
                };
            }
            if !is_sops(text, SopsFormat::Dotenv) {
                return Ok(None);
            }
            let mut out = String::new();
            for leaf in decrypt(text, SopsFormat::Dotenv, keys)? {
                out.push_str(&leaf.path.join("."));
                out.push('=');
                out.push_str(&leaf.value.replace('\n', "\\n"));
                out.push('\n');
            }
            Ok(Some(out.into_bytes()))
        }
    }
}

/// Writes a decrypted tree (every scalar clear; see [`decrypt_tree`]) as pretty JSON.
fn write_json(node: &Node, depth: usize, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match &node.value {
        Value::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Value::Seq(items) if items.is_empty() => out.push_str("[]"),
        Value::Map(entries) => {
            out.push_str("{\n");
            for (i, (k, v)) in entries.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&json_string(k.scalar().unwrap_or_default()));
                out.push_str(": ");
                write_json(v, depth + 1, out);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Seq(items) => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_json(v, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Scalar { text, plain } => {
            if !plain {
                out.push_str(&json_string(text));
            } else if node.is_null() {
                out.push_str("null");
            } else if matches!(text.as_str(), "true" | "True" | "TRUE") {
                out.push_str("true");
            } else if matches!(text.as_str(), "false" | "False" | "FALSE") {
                out.push_str("false");
            } else if text.parse::<i64>().is_ok()
                || (text.parse::<f64>().is_ok_and(f64::is_finite)
                    && text
                        .chars()
                        .all(|c| c.is_ascii_digit() || ".-+eE".contains(c)))
            {
                out.push_str(text);
            } else {
                out.push_str(&json_string(text));
            }
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::encrypt::{encrypt_vars, generate_identity};

    fn keys(secret: &str) -> AgeKeys {
        let mut k = AgeKeys::new();
        k.add_text(secret, "test");
        k
    }

    #[test]
    fn decrypt_file_json_is_clear_json_without_sops() {
        let (secret, public) = generate_identity();
        let enc = encrypt_vars(
            &[("password", "hunter2"), ("user", "app")],
            SopsFormat::Json,
            &[&public],
        );
        let clear = decrypt_file("secrets/app.enc.json", enc.as_bytes(), &keys(&secret))
            .expect("decrypt")
            .expect("is sops");
        let clear = String::from_utf8(clear).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(&clear).expect("json");
        assert_eq!(v, serde_json::json!({"password": "hunter2", "user": "app"}));
        assert!(clear.find("password") < clear.find("user"), "{clear}");
    }

    #[test]
    fn decrypt_file_yaml_is_equivalent_json() {
        let (secret, public) = generate_identity();
        let enc = encrypt_vars(&[("token", "abc: def")], SopsFormat::Yaml, &[&public]);
        let clear = decrypt_file("app.yaml", enc.as_bytes(), &keys(&secret))
            .expect("decrypt")
            .expect("is sops");
        let v: serde_json::Value = serde_json::from_slice(&clear).expect("json");
        assert_eq!(v, serde_json::json!({"token": "abc: def"}));
    }

    #[test]
    fn decrypt_file_dotenv_is_key_value_lines() {
        let (secret, public) = generate_identity();
        let enc = encrypt_vars(&[("A", "1"), ("B", "two")], SopsFormat::Dotenv, &[&public]);
        let clear = decrypt_file("app.env", enc.as_bytes(), &keys(&secret))
            .expect("decrypt")
            .expect("is sops");
        assert_eq!(clear, b"A=1\nB=two\n");
    }

    #[test]
    fn decrypt_file_binary_is_the_data_bytes() {
        let (secret, public) = generate_identity();
        let pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n";
        let enc = encrypt_vars(&[("data", pem)], SopsFormat::Json, &[&public]);
        let clear = decrypt_file("tls/key.pem", enc.as_bytes(), &keys(&secret))
            .expect("decrypt")
            .expect("is sops");
        assert_eq!(clear, pem.as_bytes());
    }

    #[test]
    fn decrypt_file_plain_and_wrong_key() {
        let (_, public) = generate_identity();
        let (other, _) = generate_identity();
        assert_eq!(
            decrypt_file("a.json", b"{\"a\": 1}", &keys(&other)).expect("plain"),
            None
        );
        assert_eq!(
            decrypt_file("nginx.conf", b"server {}\n", &keys(&other)).expect("plain"),
            None
        );
        let enc = encrypt_vars(&[("a", "b")], SopsFormat::Json, &[&public]);
        let err = decrypt_file("a.json", enc.as_bytes(), &keys(&other)).expect_err("wrong key");
        assert!(matches!(err, SopsError::WrongKey { .. }), "{err:?}");
    }
}
