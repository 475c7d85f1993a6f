//! `secrets:`: where the age keys for SOPS files are.

use serde::Serialize;

use super::reader::Reader;
use crate::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretsConfig {
    pub sops_age_key_file: Option<String>,
}

pub(super) fn read_secrets(r: &mut Reader<'_>, node: &Node) -> SecretsConfig {
    let mut s = SecretsConfig::default();
    let Some(mut m) = r.map(node, "secrets") else {
        return s;
    };
    if let Some(n) = m.get("sops_age_key_file") {
        s.sops_age_key_file = r
            .string(n, "secrets.sops_age_key_file")
            .filter(|v| !v.is_empty());
    }
    m.finish(r);
    s
}
