//! The ledger: an append-only record of what happened to every resource, one JSON object per line,
//! each line carrying the SHA-256 of the line before it. Pure: records are sealed into lines and
//! lines are verified here; the file, its `fsync` and its repair live in the CLI.
//!
//! A line is the canonical JSON of an [`Entry`]: keys sorted, no whitespace, `"v": 1`, a tagged
//! `kind`. Its `hash` is SHA-256 over the canonical bytes of the entry without `hash`, and its
//! `prev` is the `hash` of the line before (the first line's is [`GENESIS_PREV`]).

mod canonical;
mod chain;
mod entry;
mod masker;
mod size;
mod verify;

pub use canonical::{canonical_bytes, entry_hash, sha256_hex};
pub use chain::{ChainTip, SealError, Sealed};
pub use entry::{ActionDetail, Actor, Entry, Event, EventKind, Record};
pub use masker::Masker;
pub use size::{SIZE_HINT, parse_size};
pub use verify::{
    Broken, ChainError, Verified, parse_entries, parse_entries_from, split_torn, verify,
    verify_from,
};

/// The schema version every entry carries as `"v"`.
pub const SCHEMA_VERSION: u64 = 1;

/// The `prev` of the first entry: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
