//! A test-only SOPS encryptor: no `sops` binary exists on the test machines, so tests write
//! encrypted files with this, in the layout `sops` writes (and the decryptor is also checked
//! against files the real `sops` wrote, in `tests/fixtures/sops/`).

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use age::secrecy::ExposeSecret as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha512};
use std::io::Write as _;

use super::SopsFormat;

/// The `lastmodified` every test file carries.
pub const LASTMODIFIED: &str = "2026-01-01T00:00:00Z";

/// A fresh age key pair: `(AGE-SECRET-KEY-1…, age1…)`.
#[must_use]
pub fn generate_identity() -> (String, String) {
    let id = age::x25519::Identity::generate();
    (
        id.to_string().expose_secret().to_owned(),
        id.to_public().to_string(),
    )
}

/// A SOPS file of `format` holding `vars` (string values), encrypted to `recipients` (`age1…`).
///
/// # Panics
/// On an invalid recipient or an age failure: test inputs only.
#[must_use]
#[allow(clippy::expect_used)]
pub fn encrypt_vars(vars: &[(&str, &str)], format: SopsFormat, recipients: &[&str]) -> String {
    let mut seed = Sha512::new();
    seed.update(b"refinery test data key");
    for (k, v) in vars {
        seed.update(k.as_bytes());
        seed.update(v.as_bytes());
    }
    let data_key: Vec<u8> = seed.finalize()[..32].to_vec();

    let mut hash = Sha512::new();
    let mut values = Vec::new();
    for (k, v) in vars {
        hash.update(v.as_bytes());
        let enc = if v.is_empty() {
            String::new()
        } else {
            encrypt_value(v, &data_key, &format!("{k}:"))
        };
        values.push(((*k).to_owned(), enc));
    }
    let mac: String = hash.finalize().iter().map(|b| format!("{b:02X}")).collect();
    let mac = encrypt_value(&mac, &data_key, LASTMODIFIED);

    let age: Vec<(String, String)> = recipients
        .iter()
        .map(|r| {
            let recipient: age::x25519::Recipient = r.parse().expect("an age recipient");
            let mut out = Vec::new();
            let armored =
                age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                    .expect("armor");
            let mut w =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .expect("recipients")
                    .wrap_output(armored)
                    .expect("encryptor");
            w.write_all(&data_key).expect("write");
            w.finish().and_then(|a| a.finish()).expect("finish");
            (
                (*r).to_owned(),
                String::from_utf8(out).expect("armor is ASCII"),
            )
        })
        .collect();

    match format {
        SopsFormat::Dotenv => {
            let mut s = String::new();
            for (k, v) in &values {
                s.push_str(&format!("{k}={v}\n"));
            }
            for (i, (r, enc)) in age.iter().enumerate() {
                s.push_str(&format!(
                    "sops_age__list_{i}__map_enc={}\n",
                    enc.replace('\n', "\\n")
                ));
                s.push_str(&format!("sops_age__list_{i}__map_recipient={r}\n"));
            }
            s.push_str(&format!("sops_lastmodified={LASTMODIFIED}\n"));
            s.push_str(&format!("sops_mac={mac}\n"));
            s.push_str("sops_unencrypted_suffix=_unencrypted\nsops_version=3.9.4\n");
            s
        }
        SopsFormat::Yaml => {
            let mut s = String::new();
            for (k, v) in &values {
                s.push_str(&format!("{k}: {v}\n"));
            }
            s.push_str("sops:\n    age:\n");
            for (r, enc) in &age {
                s.push_str(&format!("        - recipient: {r}\n          enc: |\n"));
                for line in enc.lines() {
                    s.push_str(&format!("            {line}\n"));
                }
            }
            s.push_str(&format!(
                "    lastmodified: \"{LASTMODIFIED}\"\n    mac: {mac}\n    unencrypted_suffix: _unencrypted\n    version: 3.9.4\n"
            ));
            s
        }
        SopsFormat::Json => {
            let mut root = serde_json::Map::new();
            for (k, v) in &values {
                root.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
            let age: Vec<serde_json::Value> = age
                .iter()
                .map(|(r, enc)| serde_json::json!({"recipient": r, "enc": enc}))
                .collect();
            root.insert(
                "sops".into(),
                serde_json::json!({
                    "age": age,
                    "lastmodified": LASTMODIFIED,
                    "mac": mac,
                    "unencrypted_suffix": "_unencrypted",
                    "version": "3.9.4",
                }),
            );
            // serde_json's map is sorted: write the values first, as sops does, by hand.
            let mut s = String::from("{\n");
            for (k, v) in &values {
                s.push_str(&format!("\t{}: {},\n", json(k), json(v)));
            }
            s.push_str(&format!(
                "\t\"sops\": {}\n}}\n",
                serde_json::to_string_pretty(&root["sops"]).expect("json")
            ));
            s
        }
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `ENC[AES256_GCM,…,type:str]` of `value` under `aad`, with an IV derived from both.
#[allow(clippy::expect_used)]
fn encrypt_value(value: &str, key: &[u8], aad: &str) -> String {
    let mut iv_seed = Sha512::new();
    iv_seed.update(aad.as_bytes());
    iv_seed.update(value.as_bytes());
    let iv: Vec<u8> = iv_seed.finalize()[..32].to_vec();
    let cipher = AesGcm::<Aes256, U32>::new_from_slice(key).expect("32-byte key");
    let sealed = cipher
        .encrypt(
            aes_gcm::Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: value.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .expect("encrypt");
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
        B64.encode(data),
        B64.encode(&iv),
        B64.encode(tag)
    )
}
