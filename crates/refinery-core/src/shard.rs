//! [`Shard`]: one of N controllers splitting a fleet's nodes by a stable hash of the node name.
//!
//! Node `name` belongs to shard `fnv1a64(name) mod N + 1`: 64-bit FNV-1a (offset basis
//! `0xcbf29ce484222325`, prime `0x100000001b3`) over the name's UTF-8 bytes. The hash is fixed
//! here, not std's `DefaultHasher` (whose output may change between Rust versions and is seeded
//! per process), so every process of every version agrees on who owns a node. Shards are
//! numbered from 1: `1/3`, `2/3`, `3/3`.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (1 ≤ index ≤ count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// 64-bit FNV-1a of `bytes`.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

impl Shard {
    /// Shard `index` of `count`; `None` unless 1 ≤ index ≤ count.
    #[must_use]
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index >= 1 && index <= count).then_some(Shard { index, count })
    }

    /// The shard number, from 1.
    #[must_use]
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    #[must_use]
    pub fn count(self) -> u32 {
        self.count
    }

    /// The shard (of `count`, at least 1) that owns node `name`.
    #[must_use]
    pub fn owner_of(name: &str, count: u32) -> Shard {
        let count = count.max(1);
        let slot = fnv1a64(name.as_bytes()) % u64::from(count);
        // `slot < count`, so it fits.
        let index = u32::try_from(slot).unwrap_or(0) + 1;
        Shard { index, count }
    }

    /// Whether this shard owns node `name`.
    #[must_use]
    pub fn owns(self, name: &str) -> bool {
        Shard::owner_of(name, self.count) == self
    }

    /// `shard-2-of-3`: the suffix of this shard's ledger file, ledger ref and state directory.
    #[must_use]
    pub fn suffix(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// This shard's ledger ref: `refs/heads/refinery/ledger` → `refs/heads/refinery/ledger-shard-2-of-3`.
    #[must_use]
    pub fn ledger_ref(self, git_ref: &str) -> String {
        format!("{git_ref}-{}", self.suffix())
    }

    /// This shard's ledger file: `ledger/container_ledger.jsonl` →
    /// `ledger/container_ledger.shard-2-of-3.jsonl` (the suffix goes before the extension).
    #[must_use]
    pub fn ledger_path(self, path: &str) -> String {
        let (dir, file) = match path.rfind('/') {
            Some(i) => path.split_at(i + 1),
            None => ("", path),
        };
        match file.rfind('.').filter(|i| *i > 0) {
            Some(i) => format!("{dir}{}.{}{}", &file[..i], self.suffix(), &file[i..]),
            None => format!("{dir}{file}.{}", self.suffix()),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a `--shard` value is refused (the message says what to write instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardParseError(String);

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Shard, ShardParseError> {
        let bad = |why: &str| {
            ShardParseError(format!(
                "`{s}` is not a shard: {why}; write `I/N` with 1 ≤ I ≤ N, such as `1/3`"
            ))
        };
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("there is no `/`"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| bad("the shard count is not a whole number"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| bad("the shard number is not a whole number"))?;
        if count == 0 {
            return Err(bad("there must be at least one shard"));
        }
        if index == 0 {
            return Err(bad("shards are numbered from 1"));
        }
        Shard::new(index, count).ok_or_else(|| bad(&format!("there are only {count} shards")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn owner_of_is_fixed_for_known_names() {
        // Pinned: changing these moves nodes between controllers on upgrade.
        let owners: Vec<String> = ["lyra", "vega", "node-001", "node-002", "node-003"]
            .iter()
            .map(|n| Shard::owner_of(n, 3).to_string())
            .collect();
        assert_eq!(owners, PINNED_OWNERS_OF_3);
    }

    const PINNED_OWNERS_OF_3: [&str; 5] = ["2/3", "1/3", "2/3", "3/3", "1/3"];

    #[test]
    fn every_node_has_exactly_one_owner() {
        for count in 1..=7 {
            for n in 0..200 {
                let name = format!("node-{n:03}");
                let owners = (1..=count)
                    .filter(|i| Shard::new(*i, count).is_some_and(|s| s.owns(&name)))
                    .count();
                assert_eq!(owners, 1, "{name} of {count}");
            }
        }
    }

    #[test]
    fn owner_of_spreads_nodes_evenly_enough() {
        let mut per = [0u32; 4];
        for n in 0..1000 {
            let s = Shard::owner_of(&format!("node-{n:04}"), 4);
            per[(s.index() - 1) as usize] += 1;
        }
        assert!(per.iter().all(|c| (180..=320).contains(c)), "{per:?}");
    }

    #[test]
    fn parse_round_trips() {
        for s in ["1/1", "1/3", "3/3", "12/40"] {
            let shard: Shard = s.parse().expect("valid");
            assert_eq!(shard.to_string(), s);
        }
    }

    #[test]
    fn parse_bad_shards_say_what_to_write() {
        for (input, why) in [
            ("0/0", "at least one shard"),
            ("3/2", "only 2 shards"),
            ("0/2", "numbered from 1"),
            ("junk", "no `/`"),
            ("a/2", "shard number is not a whole number"),
            ("1/b", "shard count is not a whole number"),
            ("-1/2", "shard number is not a whole number"),
        ] {
            let err = input.parse::<Shard>().expect_err(input).to_string();
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("write `I/N`"), "{err}");
        }
    }

    #[test]
    fn ledger_names_carry_the_suffix() {
        let s = Shard::new(2, 3).expect("valid");
        assert_eq!(
            s.ledger_ref("refs/heads/refinery/ledger"),
            "refs/heads/refinery/ledger-shard-2-of-3"
        );
        assert_eq!(
            s.ledger_path("ledger/container_ledger.jsonl"),
            "ledger/container_ledger.shard-2-of-3.jsonl"
        );
        assert_eq!(s.ledger_path("ledger"), "ledger.shard-2-of-3");
        assert_eq!(s.ledger_path("a.b/.ledger"), "a.b/.ledger.shard-2-of-3");
    }
}
