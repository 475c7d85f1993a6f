//! Verifying a ledger's bytes: every line canonical, hashed right, chained to the one before.

use std::fmt;

use serde_json::Value;

use super::SCHEMA_VERSION;
use super::canonical::{canonical_bytes, entry_hash};
use super::chain::ChainTip;
use super::entry::Entry;

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("it is not valid JSON ({0})")]
    BadJson(String),
    #[error("it is empty")]
    EmptyLine,
    #[error("it is torn: the last line does not end in a newline (a write was cut off)")]
    TornLine,
    #[error("it is not in canonical form (compact JSON, keys sorted)")]
    NotCanonical,
    #[error("field `{0}` is missing or has the wrong type")]
    MissingField(&'static str),
    #[error("schema version {found} is not supported (expected {SCHEMA_VERSION})")]
    UnsupportedVersion { found: u64 },
    #[error("wrong hash: its content hashes to `{computed}`, the line says `{stored}`")]
    WrongHash { stored: String, computed: String },
    #[error("sequence gap: expected seq {expected}, found {found}")]
    SequenceGap { expected: u64, found: u64 },
    #[error(
        "wrong prev hash: expected `{expected}` (the hash of the line before), found `{found}`"
    )]
    WrongPrev { expected: String, found: String },
    #[error("it is not a valid entry ({0})")]
    BadEntry(String),
}

/// The first line that breaks the chain (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub line: u64,
    pub reason: Broken,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ChainError {}

/// A ledger whose every line checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The last entry's seq and hash ([`ChainTip::genesis`] when empty).
    pub tip: ChainTip,
    /// How many entries (lines) it holds.
    pub entries: u64,
}

/// Splits a ledger's bytes into the complete lines (up to and including the last newline) and
/// what follows it: a torn line when not empty.
#[must_use]
pub fn split_torn(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => bytes.split_at(i + 1),
        None => (&[], bytes),
    }
}

/// Checks the whole chain: every line complete, canonical, of a known version, hashed right, its
/// `seq` one more than the line before and its `prev` that line's `hash`. Stops at the first bad
/// line.
pub fn verify(bytes: &[u8]) -> Result<Verified, ChainError> {
    verify_from(bytes, &ChainTip::genesis())
}

/// Like [`verify`], for a file that continues a chain ending at `start` (a ledger rotated into
/// several files): its first line must have seq `start.seq + 1` and prev `start.hash`. `entries`
/// counts this file's lines only; line numbers are this file's.
pub fn verify_from(bytes: &[u8], start: &ChainTip) -> Result<Verified, ChainError> {
    let (entries, tip, error) = walk_with(bytes, start, &mut |_| {});
    match error {
        Some(e) => Err(e),
        None => Ok(Verified { tip, entries }),
    }
}

/// Every entry before the first bad line, and that line's error if there is one.
#[must_use]
pub fn parse_entries(bytes: &[u8]) -> (Vec<Entry>, Option<ChainError>) {
    let (entries, _, error) = parse_entries_from(bytes, &ChainTip::genesis());
    (entries, error)
}

/// Like [`parse_entries`], for a file that continues a chain ending at `start`; also returns
/// the tip after the last intact entry (`start` when there is none).
#[must_use]
pub fn parse_entries_from(
    bytes: &[u8],
    start: &ChainTip,
) -> (Vec<Entry>, ChainTip, Option<ChainError>) {
    let mut out = Vec::new();
    let (_, tip, error) = walk_with(bytes, start, &mut |e| out.push(e));
    (out, tip, error)
}

fn walk_with(
    bytes: &[u8],
    start: &ChainTip,
    sink: &mut dyn FnMut(Entry),
) -> (u64, ChainTip, Option<ChainError>) {
    let (complete, torn) = split_torn(bytes);
    let mut tip = start.clone();
    let mut count = 0_u64;
    let mut line_no = 0_u64;
    // `complete` is empty or ends in a newline: without it, every piece is one line.
    if let Some(body) = complete.strip_suffix(b"\n") {
        for line in body.split(|&b| b == b'\n') {
            line_no += 1;
            match check_line(line, &tip) {
                Ok((entry, next)) => {
                    tip = next;
                    count += 1;
                    sink(entry);
                }
                Err(reason) => {
                    return (
                        count,
                        tip,
                        Some(ChainError {
                            line: line_no,
                            reason,
                        }),
                    );
                }
            }
        }
    }
    if !torn.is_empty() {
        let error = ChainError {
            line: line_no + 1,
            reason: Broken::TornLine,
        };
        return (count, tip, Some(error));
    }
    (count, tip, None)
}

fn check_line(line: &[u8], tip: &ChainTip) -> Result<(Entry, ChainTip), Broken> {
    if line.is_empty() {
        return Err(Broken::EmptyLine);
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| Broken::BadJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(Broken::BadJson("not an object".to_owned()));
    };
    if canonical_bytes(&value) != line {
        return Err(Broken::NotCanonical);
    }
    let version = map
        .get("v")
        .and_then(Value::as_u64)
        .ok_or(Broken::MissingField("v"))?;
    if version != SCHEMA_VERSION {
        return Err(Broken::UnsupportedVersion { found: version });
    }
    let stored = map
        .get("hash")
        .and_then(Value::as_str)
        .ok_or(Broken::MissingField("hash"))?;
    let computed = entry_hash(&value);
    if stored != computed {
        return Err(Broken::WrongHash {
            stored: stored.to_owned(),
            computed,
        });
    }
    let seq = map
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(Broken::MissingField("seq"))?;
    let expected = tip.seq.saturating_add(1);
    if seq != expected {
        return Err(Broken::SequenceGap {
            expected,
            found: seq,
        });
    }
    let prev = map
        .get("prev")
        .and_then(Value::as_str)
        .ok_or(Broken::MissingField("prev"))?;
    if prev != tip.hash {
        return Err(Broken::WrongPrev {
            expected: tip.hash.clone(),
            found: prev.to_owned(),
        });
    }
    let entry: Entry =
        serde_json::from_value(value).map_err(|e| Broken::BadEntry(e.to_string()))?;
    let next = ChainTip {
        seq,
        hash: computed,
    };
    Ok((entry, next))
}
