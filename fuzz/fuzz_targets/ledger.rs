//! The ledger reader and verifier: any bytes verify or fail at a named line, never panic; and
//! every line that reads as an entry, sealed into a fresh chain, verifies with the same count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refinery_core::ledger::{
    ChainTip, Entry, canonical_bytes, entry_hash, parse_entries, parse_entries_from, split_torn,
    verify, verify_from,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (complete, _torn) = split_torn(data);
    let verified = verify(data);
    let (entries, error) = parse_entries(data);
    // The reader and the verifier agree on where the chain breaks.
    assert_eq!(verified.is_ok(), error.is_none());
    if let Ok(v) = &verified {
        assert_eq!(v.entries, entries.len() as u64);
    }
    let mid = ChainTip {
        seq: 41,
        hash: "ab".repeat(32),
    };
    let _ = verify_from(data, &mid);
    let _ = parse_entries_from(data, &mid);

    // Reseal: each line that is an entry, chained afresh, must verify.
    let mut tip = ChainTip::genesis();
    let mut out = Vec::new();
    for line in complete.split(|&b| b == b'\n') {
        let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
            continue;
        };
        let Ok(mut value) = serde_json::to_value(&entry) else {
            continue;
        };
        let Value::Object(map) = &mut value else {
            continue;
        };
        let seq = tip.seq + 1;
        map.insert("v".into(), Value::from(1u64));
        map.insert("seq".into(), Value::from(seq));
        map.insert("prev".into(), Value::String(tip.hash.clone()));
        map.remove("hash");
        let hash = entry_hash(&value);
        if let Value::Object(map) = &mut value {
            map.insert("hash".into(), Value::String(hash.clone()));
        }
        out.extend_from_slice(&canonical_bytes(&value));
        out.push(b'\n');
        tip = ChainTip { seq, hash };
    }
    match verify(&out) {
        Ok(v) => assert_eq!(v.entries, tip.seq),
        Err(e) => panic!(
            "a resealed chain does not verify: {e}\n{}",
            String::from_utf8_lossy(&out)
        ),
    }
});
