//! SOPS files encrypted to age recipients (the format `sops`, Flux and doco-cd read), decrypted in
//! memory. Pure: the file's text and the age identities come in, the clear values go out; the CLI
//! reads key files and the environment.
//!
//! The format, as `getsops/sops` writes it: a random 256-bit data key, age-encrypted (armored) to
//! every recipient under `sops.age[].enc`; every value
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str|int|float|bool]`, AES-256-GCM with a 32-byte IV
//! and, as additional data, the value's key path joined by `:` plus a trailing `:`; and
//! `sops.mac`, the upper-case hex SHA-512 over every value in document order, encrypted the same
//! way with `sops.lastmodified` as additional data.

mod age_keys;
mod content_file;
mod decrypt;
#[cfg(any(test, feature = "testing"))]
pub mod encrypt;
mod env_file;
mod error;

pub use age_keys::AgeKeys;
pub use content_file::decrypt_file;
pub use decrypt::{Leaf, decrypt, decrypt_env, decrypt_tree, is_sops};
pub use env_file::{EnvFileError, env_file_values};
pub use error::SopsError;

/// How a SOPS file stores its tree, chosen by file name as `sops` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SopsFormat {
    /// `KEY=value` lines with `sops_*` metadata lines.
    Dotenv,
    Yaml,
    Json,
}

impl SopsFormat {
    /// `.yaml`/`.yml` → YAML, `.json` → JSON, anything else (`.env`, `.env.production`) → dotenv.
    #[must_use]
    pub fn for_path(path: &str) -> SopsFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            SopsFormat::Yaml
        } else if lower.ends_with(".json") {
            SopsFormat::Json
        } else {
            SopsFormat::Dotenv
        }
    }
}
