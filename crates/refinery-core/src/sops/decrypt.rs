//! Parsing a SOPS file (dotenv, YAML, JSON) and decrypting it with age identities.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha512};

use super::{AgeKeys, SopsError, SopsFormat};
use crate::yaml::{self, Node, Value};

/// AES-256-GCM with the 32-byte IVs `sops` uses.
type SopsCipher = AesGcm<Aes256, U32>;

/// One value of a decrypted file, in document order. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Key path from the root (`["stringData", "secret"]`); list items share their list's path.
    pub path: Vec<String>,
    /// The clear value as text (`true`/`false` for booleans).
    pub value: String,
    /// Whether the value sits in a list.
    pub in_list: bool,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Leaf({} = ***)", self.path.join("."))
    }
}

/// A value as stored in the file, before decryption.
#[derive(Debug, Clone)]
enum Stored {
    /// A string; `ENC[…]` when encrypted.
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone)]
struct StoredLeaf {
    path: Vec<String>,
    value: Stored,
    in_list: bool,
}

#[derive(Debug, Default)]
struct Metadata {
    /// `(recipient, armored encrypted data key)`.
    age: Vec<(String, String)>,
    lastmodified: Option<String>,
    mac: Option<String>,
    mac_only_encrypted: bool,
    /// Other key backends in use (`pgp`, `kms`, …), for the error when there is no age.
    others: Vec<String>,
    key_groups: bool,
}

/// Whether `text` is a SOPS-encrypted file of `format` (has `sops_mac=` / a `sops:` section).
#[must_use]
pub fn is_sops(text: &str, format: SopsFormat) -> bool {
    match format {
        SopsFormat::Dotenv => text
            .lines()
            .any(|l| l.trim_start().starts_with("sops_mac=")),
        SopsFormat::Yaml | SopsFormat::Json => yaml::parse(text)
            .ok()
            .and_then(|root| root.get("sops").map(|s| s.get("mac").is_some()))
            .unwrap_or(false),
    }
}

/// Decrypts every value of a SOPS file and checks its MAC.
pub fn decrypt(text: &str, format: SopsFormat, keys: &AgeKeys) -> Result<Vec<Leaf>, SopsError> {
    let (leaves, meta) = match format {
        SopsFormat::Dotenv => parse_dotenv(text)?,
        SopsFormat::Yaml | SopsFormat::Json => parse_tree(text)?,
    };
    if meta.key_groups {
        return Err(SopsError::KeyGroups);
    }
    if meta.age.is_empty() {
        if meta.others.is_empty() {
            return Err(SopsError::Malformed(
                "no age recipient in the metadata".into(),
            ));
        }
        return Err(SopsError::NotAge {
            backends: meta
                .others
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let lastmodified = meta
        .lastmodified
        .as_deref()
        .ok_or_else(|| SopsError::Malformed("no `lastmodified` in the metadata".into()))?;
    let mac = meta
        .mac
        .as_deref()
        .ok_or_else(|| SopsError::Malformed("no `mac` in the metadata".into()))?;
    let data_key = data_key(&meta, keys)?;

    let mut hash = Sha512::new();
    let mut out = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let aad = format!("{}:", leaf.path.join(":"));
        let (clear, encrypted) = match &leaf.value {
            Stored::Str(s) if s.starts_with("ENC[") => {
                match decrypt_value(s, &data_key, &aad, &leaf.path)? {
                    Some(v) => (v, true),
                    // An encrypted comment: neither a value nor part of the MAC.
                    None => continue,
                }
            }
            other => (plain(other), false),
        };
        if !meta.mac_only_encrypted || encrypted {
            hash.update(clear.mac_bytes.as_bytes());
        }
        out.push(Leaf {
            path: leaf.path,
            value: clear.text,
            in_list: leaf.in_list,
        });
    }
    let computed = upper_hex(&hash.finalize());
    let stored = match decrypt_value(mac, &data_key, lastmodified, &["sops".into(), "mac".into()]) {
        Ok(Some(v)) => v.text,
        Ok(None) | Err(SopsError::Value { .. }) => return Err(SopsError::Mac),
        Err(e) => return Err(e),
    };
    if stored != computed {
        return Err(SopsError::Mac);
    }
    Ok(out)
}

/// Decrypts a SOPS file whose values are environment variables: one level of `KEY: value`.
pub fn decrypt_env(
    text: &str,
    format: SopsFormat,
    keys: &AgeKeys,
) -> Result<BTreeMap<String, String>, SopsError> {
    let mut out = BTreeMap::new();
    for leaf in decrypt(text, format, keys)? {
        let path = leaf.path.join(".");
        if leaf.path.len() != 1 {
            return Err(SopsError::NotEnv {
                path,
                reason: "it is nested under another key".into(),
            });
        }
        if leaf.in_list {
            return Err(SopsError::NotEnv {
                path,
                reason: "it is a list".into(),
            });
        }
        let key = leaf.path.into_iter().next().unwrap_or_default();
        if !crate::dotenv::is_variable_name(&key) {
            return Err(SopsError::NotEnv {
                path: key,
                reason: "it is not a variable name".into(),
            });
        }
        out.insert(key, leaf.value);
    }
    Ok(out)
}

/// A clear value: its text, and the bytes sops hashes for the MAC.
struct Clear {
    text: String,
    mac_bytes: String,
}

fn plain(v: &Stored) -> Clear {
    let (text, mac_bytes) = match v {
        Stored::Str(s) => (s.clone(), s.clone()),
        Stored::Int(i) => (i.to_string(), i.to_string()),
        Stored::Float(f) => (f.to_string(), go_float(*f)),
        Stored::Bool(b) => (b.to_string(), go_bool(*b).to_owned()),
        Stored::Null => (String::new(), String::new()),
    };
    Clear { text, mac_bytes }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, no exponent.
fn go_float(f: f64) -> String {
    // Rust's `Display` for f64 prints the shortest round-trip digits without an exponent.
    f.to_string()
}

/// sops hashes booleans the way its Python ancestor printed them.
fn go_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn upper_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Opens the data key with the first identity that is a recipient.
fn data_key(meta: &Metadata, keys: &AgeKeys) -> Result<Vec<u8>, SopsError> {
    if keys.is_empty() {
        return Err(SopsError::NoKeys {
            looked: keys.looked().to_vec(),
        });
    }
    let mut broken = None;
    for (_, enc) in &meta.age {
        let reader = age::armor::ArmoredReader::new(enc.trim_start().as_bytes());
        let decryptor = match age::Decryptor::new(reader) {
            Ok(d) => d,
            Err(e) => {
                broken = Some(e.to_string());
                continue;
            }
        };
        let ids = keys.identities().iter().map(|i| i as &dyn age::Identity);
        match decryptor.decrypt(ids) {
            Ok(mut r) => {
                let mut key = Vec::new();
                if let Err(e) = r.read_to_end(&mut key) {
                    broken = Some(e.to_string());
                    continue;
                }
                if key.len() != 32 {
                    return Err(SopsError::DataKey(format!(
                        "the data key is {} bytes, not 32",
                        key.len()
                    )));
                }
                return Ok(key);
            }
            Err(age::DecryptError::NoMatchingKeys) => {}
            Err(e) => broken = Some(e.to_string()),
        }
    }
    if let Some(e) = broken {
        return Err(SopsError::DataKey(e));
    }
    Err(SopsError::WrongKey {
        count: keys.len(),
        recipients: meta.age.iter().map(|(r, _)| format!("`{r}`")).collect(),
        looked: keys.looked().to_vec(),
    })
}

/// Decrypts one `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`; `None` for an encrypted comment.
fn decrypt_value(
    s: &str,
    key: &[u8],
    aad: &str,
    path: &[String],
) -> Result<Option<Clear>, SopsError> {
    let shown = path.join(".");
    let malformed = |what: &str| {
        SopsError::Malformed(format!(
            "`{shown}` is not a SOPS value `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: {what}"
        ))
    };
    let inner = s
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| malformed("not AES256_GCM"))?;
    let (mut data, mut iv, mut tag, mut kind) = (None, None, None, None);
    for part in inner.split(',') {
        match part.split_once(':') {
            Some(("data", v)) => data = Some(v),
            Some(("iv", v)) => iv = Some(v),
            Some(("tag", v)) => tag = Some(v),
            Some(("type", v)) => kind = Some(v),
            _ => return Err(malformed("unknown part")),
        }
    }
    let b64 = |v: Option<&str>, what: &str| {
        v.ok_or_else(|| malformed(&format!("no `{what}`")))
            .and_then(|v| {
                B64.decode(v)
                    .map_err(|_| malformed(&format!("`{what}` is not base64")))
            })
    };
    let data = b64(data, "data")?;
    let iv = b64(iv, "iv")?;
    let tag = b64(tag, "tag")?;
    let kind = kind.ok_or_else(|| malformed("no `type`"))?;
    if iv.len() != 32 || tag.len() != 16 {
        return Err(malformed("the iv must be 32 bytes and the tag 16"));
    }
    let cipher = SopsCipher::new_from_slice(key).map_err(|_| malformed("bad data key length"))?;
    let mut msg = data;
    msg.extend_from_slice(&tag);
    let nonce = aes_gcm::Nonce::<U32>::from_slice(&iv);
    let clear = cipher
        .decrypt(
            nonce,
            Payload {
                msg: &msg,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SopsError::Value {
            path: shown.clone(),
        })?;
    let text = String::from_utf8(clear).map_err(|_| malformed("the clear value is not UTF-8"))?;
    let clear = match kind {
        "str" | "bytes" => Clear {
            mac_bytes: text.clone(),
            text,
        },
        "int" | "int64" => {
            let i: i64 = text.trim().parse().map_err(|_| malformed("not an int"))?;
            Clear {
                text: i.to_string(),
                mac_bytes: i.to_string(),
            }
        }
        "float" => {
            let f: f64 = text.trim().parse().map_err(|_| malformed("not a float"))?;
            Clear {
                mac_bytes: go_float(f),
                text,
            }
        }
        "bool" => {
            let b = match text.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                _ => return Err(malformed("not a bool")),
            };
            Clear {
                text: b.to_string(),
                mac_bytes: go_bool(b).to_owned(),
            }
        }
        "comment" => return Ok(None),
        other => return Err(malformed(&format!("unknown type `{other}`"))),
    };
    Ok(Some(clear))
}

/// A dotenv SOPS file: `KEY=value` lines (`\n` escaped), `#` comments, `sops_*` metadata.
fn parse_dotenv(text: &str) -> Result<(Vec<StoredLeaf>, Metadata), SopsError> {
    let mut leaves = Vec::new();
    let mut meta = Metadata::default();
    let mut age: BTreeMap<usize, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut any_meta = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Malformed(format!(
                "line {} is not `KEY=value`",
                i + 1
            )));
        };
        let value = value.replace("\\n", "\n");
        let Some(m) = key.strip_prefix("sops_") else {
            leaves.push(StoredLeaf {
                path: vec![key.to_owned()],
                value: Stored::Str(value),
                in_list: false,
            });
            continue;
        };
        any_meta = true;
        match m {
            "lastmodified" => meta.lastmodified = Some(value),
            "mac" => meta.mac = Some(value),
            "mac_only_encrypted" => meta.mac_only_encrypted = value == "true",
            _ if m.starts_with("key_groups") => meta.key_groups = true,
            _ => {
                if let Some(rest) = m.strip_prefix("age__list_")
                    && let Some((n, field)) = rest.split_once("__map_")
                    && let Ok(n) = n.parse::<usize>()
                {
                    let e = age.entry(n).or_default();
                    match field {
                        "recipient" => e.0 = Some(value),
                        "enc" => e.1 = Some(value),
                        _ => {}
                    }
                } else if let Some((backend, _)) = m.split_once("__list_")
                    && !meta.others.iter().any(|b| b == backend)
                {
                    meta.others.push(backend.to_owned());
                }
            }
        }
    }
    if !any_meta {
        return Err(SopsError::Malformed("no `sops_*` lines".into()));
    }
    for (_, (recipient, enc)) in age {
        if let Some(enc) = enc {
            meta.age.push((recipient.unwrap_or_default(), enc));
        }
    }
    Ok((leaves, meta))
}

/// A YAML or JSON SOPS file: the tree, and its top-level `sops:` section.
fn parse_tree(text: &str) -> Result<(Vec<StoredLeaf>, Metadata), SopsError> {
    let root = yaml::parse(text).map_err(|e| {
        SopsError::Malformed(format!("invalid YAML/JSON at {}: {}", e.loc, e.message))
    })?;
    let Value::Map(entries) = &root.value else {
        return Err(SopsError::Malformed("the file is not a mapping".into()));
    };
    let mut leaves = Vec::new();
    let mut meta = None;
    for (k, v) in entries {
        let key = k.scalar().unwrap_or_default();
        if key == "sops" {
            meta = Some(read_metadata(v)?);
        } else {
            walk(v, vec![key.to_owned()], false, &mut leaves);
        }
    }
    let meta = meta.ok_or_else(|| SopsError::Malformed("no top-level `sops:` section".into()))?;
    Ok((leaves, meta))
}

fn walk(node: &Node, path: Vec<String>, in_list: bool, out: &mut Vec<StoredLeaf>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let mut p = path.clone();
                p.push(k.scalar().unwrap_or_default().to_owned());
                walk(v, p, false, out);
            }
        }
        Value::Seq(items) => {
            for item in items {
                walk(item, path.clone(), true, out);
            }
        }
        Value::Scalar { text, plain } => {
            let value = if !plain {
                Stored::Str(text.clone())
            } else if node.is_null() {
                Stored::Null
            } else {
                typed(text)
            };
            out.push(StoredLeaf {
                path,
                value,
                in_list,
            });
        }
    }
}

/// A plain YAML scalar as the YAML 1.2 core schema types it.
fn typed(text: &str) -> Stored {
    match text {
        "true" | "True" | "TRUE" => return Stored::Bool(true),
        "false" | "False" | "FALSE" => return Stored::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Stored::Int(i);
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Stored::Float(f);
    }
    Stored::Str(text.to_owned())
}

fn read_metadata(node: &Node) -> Result<Metadata, SopsError> {
    let Value::Map(entries) = &node.value else {
        return Err(SopsError::Malformed("`sops` is not a mapping".into()));
    };
    let mut meta = Metadata::default();
    for (k, v) in entries {
        let key = k.scalar().unwrap_or_default();
        match key {
            "lastmodified" => meta.lastmodified = v.scalar().map(str::to_owned),
            "mac" => meta.mac = v.scalar().map(str::to_owned),
            "mac_only_encrypted" => meta.mac_only_encrypted = v.scalar() == Some("true"),
            "key_groups" => meta.key_groups = matches!(&v.value, Value::Seq(s) if !s.is_empty()),
            "age" => {
                if let Value::Seq(items) = &v.value {
                    for item in items {
                        let recipient = item.get("recipient").and_then(Node::scalar);
                        let enc = item.get("enc").and_then(Node::scalar);
                        if let Some(enc) = enc {
                            meta.age
                                .push((recipient.unwrap_or_default().to_owned(), enc.to_owned()));
                        }
                    }
                }
            }
            other => {
                if matches!(&v.value, Value::Seq(s) if !s.is_empty()) {
                    meta.others.push(other.to_owned());
                }
            }
        }
    }
    Ok(meta)
}

/// Decrypts a SOPS YAML/JSON file to its clear tree, as `sops -d` does: the `sops` section
/// removed, every encrypted value replaced by its clear value (a quoted string for `type:str`,
/// a plain scalar for numbers and booleans). The MAC is checked first.
pub fn decrypt_tree(text: &str, keys: &AgeKeys) -> Result<Node, SopsError> {
    let leaves = decrypt(text, SopsFormat::Json, keys)?;
    let mut root = yaml::parse(text).map_err(|e| {
        SopsError::Malformed(format!("invalid YAML/JSON at {}: {}", e.loc, e.message))
    })?;
    if let Value::Map(entries) = &mut root.value {
        entries.retain(|(k, _)| k.scalar() != Some("sops"));
    }
    let mut leaves = leaves.into_iter();
    let mut short = false;
    replace_leaves(&mut root, &mut leaves, &mut short);
    if short || leaves.next().is_some() {
        return Err(SopsError::Malformed(
            "the values do not match the file's tree (encrypted comments are not supported here)"
                .into(),
        ));
    }
    Ok(root)
}

fn replace_leaves(node: &mut Node, leaves: &mut impl Iterator<Item = Leaf>, short: &mut bool) {
    match &mut node.value {
        Value::Map(entries) => {
            for (_, v) in entries {
                replace_leaves(v, leaves, short);
            }
        }
        Value::Seq(items) => {
            for item in items {
                replace_leaves(item, leaves, short);
            }
        }
        Value::Scalar { text, plain } => {
            let Some(leaf) = leaves.next() else {
                *short = true;
                return;
            };
            if let Some(inner) = text.strip_prefix("ENC[") {
                let kind = inner
                    .trim_end_matches(']')
                    .split(',')
                    .find_map(|p| p.strip_prefix("type:"))
                    .unwrap_or("str");
                *plain = matches!(kind, "int" | "float" | "bool");
                *text = leaf.value;
            }
        }
    }
}
