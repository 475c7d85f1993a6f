//! `ledger:`: where the ledger file lives, the ref its commits go to, when it rotates.

use serde::Serialize;

use super::reader::Reader;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerConfig {
    pub path: String,
    pub git_ref: String,
    /// `ledger.max_size` in bytes: an append that would grow the file past it first rotates
    /// it. `None`: never rotate.
    pub max_size: Option<u64>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            path: "ledger/container_ledger.jsonl".into(),
            git_ref: "refs/heads/refinery/ledger".into(),
            max_size: None,
        }
    }
}

pub(super) fn read_ledger(r: &mut Reader<'_>, node: &Node) -> LedgerConfig {
    let mut l = LedgerConfig::default();
    let Some(mut m) = r.map(node, "ledger") else {
        return l;
    };
    if let Some(n) = m.get("path")
        && let Some(s) = r.string(n, "ledger.path")
    {
        if s.is_empty() || s.starts_with('/') || s.split(['/', '\\']).any(|seg| seg == "..") {
            r.error_hint(
                n.loc,
                "ledger.path",
                format!("`{s}` is not a path inside the repository"),
                "write a relative path like `ledger/container_ledger.jsonl`",
            );
        } else {
            l.path = s;
        }
    }
    if let Some(n) = m.get("ref")
        && let Some(s) = r.string(n, "ledger.ref")
    {
        if s.starts_with("refs/") {
            l.git_ref = s;
        } else {
            r.error_hint(
                n.loc,
                "ledger.ref",
                format!("`{s}` is not a full ref name"),
                "write a ref like `refs/heads/refinery/ledger`",
            );
        }
    }
    if let Some(n) = m.get("max_size")
        && let Some(s) = r.string(n, "ledger.max_size")
    {
        match crate::ledger::parse_size(&s) {
            Ok(0) => r.error_hint(
                n.loc,
                "ledger.max_size",
                "the ledger's maximum size must be at least 1 byte",
                crate::ledger::SIZE_HINT,
            ),
            Ok(bytes) => l.max_size = Some(bytes),
            Err(e) => r.error_hint(n.loc, "ledger.max_size", e, crate::ledger::SIZE_HINT),
        }
    }
    m.finish(r);
    l
}
