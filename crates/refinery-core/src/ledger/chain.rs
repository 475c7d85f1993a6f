//! Sealing records into chained lines.

use jiff::Timestamp;
use serde_json::Value;

use super::canonical::{canonical_bytes, entry_hash};
use super::entry::{Entry, Record};
use super::masker::Masker;
use super::{GENESIS_PREV, SCHEMA_VERSION};

/// The end of a chain: the last sequence number (0 when empty) and the last entry's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTip {
    pub seq: u64,
    pub hash: String,
}

impl Default for ChainTip {
    fn default() -> Self {
        ChainTip::genesis()
    }
}

/// A sealed entry and its line (canonical JSON, without the final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub entry: Entry,
    pub line: String,
}

/// Why a record could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("failed to encode ledger entry {seq}")]
    Encode {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
}

impl ChainTip {
    /// The tip of an empty ledger.
    #[must_use]
    pub fn genesis() -> ChainTip {
        ChainTip {
            seq: 0,
            hash: GENESIS_PREV.to_owned(),
        }
    }

    /// Seals `record` as the next entry at `time`, secrets masked by `masker`, and moves the tip
    /// past it. The caller writes `line` and a newline.
    pub fn seal(
        &mut self,
        record: Record,
        time: Timestamp,
        masker: &Masker,
    ) -> Result<Sealed, SealError> {
        let record = record.masked(masker);
        let seq = self.seq.saturating_add(1);
        let mut entry = Entry {
            v: SCHEMA_VERSION,
            seq,
            time,
            node: record.node,
            resource: record.resource,
            event: record.event,
            outcome: record.outcome,
            revision: record.revision,
            actor: record.actor,
            bloodline: record.bloodline,
            term: record.term,
            image_digest: record.image_digest,
            prev: self.hash.clone(),
            hash: String::new(),
        };
        let mut value =
            serde_json::to_value(&entry).map_err(|source| SealError::Encode { seq, source })?;
        let hash = entry_hash(&value);
        if let Value::Object(map) = &mut value {
            map.insert("hash".to_owned(), Value::String(hash.clone()));
        }
        let line = String::from_utf8_lossy(&canonical_bytes(&value)).into_owned();
        entry.hash.clone_from(&hash);
        self.seq = seq;
        self.hash = hash;
        Ok(Sealed { entry, line })
    }
}
