//! How each kind of backend picks the actors inside a percentage, and what changes when an
//! environment moves between them.
//!
//! A percentage of actors opens the same share in every backend flagops writes, but not the same
//! actors, because each hashes differently:
//!
//! - Flipper (the `file`, `gitlab` and `flipper-sql` backends): CRC-32 of the flag name followed
//!   by the Flipper id, modulo 100,000, below the percentage in thousandths (`crate::eval`).
//! - flagd's `fractional` (the `flagd` backend): MurmurHash3 x86 32-bit, seed 0, of the flag key
//!   followed by the targeting key, with no separator; the bucket is `(hash × 100,000) >> 32`,
//!   and the actor is in when the bucket is below the `on` weight, the percentage in thousandths.
//! - Unleash's `flexibleRollout` (the `unleash` backend): MurmurHash3 x86 32-bit, seed 0, of
//!   `groupId:stickiness value` (the flag name and the Flipper id), normalized to 1..=100 as
//!   `hash % 100 + 1`; the actor is in when that is at most the percentage.
//!
//! Moving a flag at p% between two of them flips about 2p(1 − p) of the actors. This module is
//! pure.

use std::io::Cursor;

use serde::Serialize;

use crate::config::BackendConfig;
use crate::state::EnvironmentState;

/// The total weight of the `fractional` split the `flagd` backend writes: 100,000, Flipper's
/// resolution.
pub const FLAGD_TOTAL_WEIGHT: u32 = 100_000;

/// A way of bucketing actors into a percentage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hashing {
    /// Flipper's CRC-32, modulo 100,000.
    Flipper,
    /// flagd's `fractional`.
    Flagd,
    /// Unleash's `flexibleRollout`.
    Unleash,
}

impl Hashing {
    /// The hashing of a backend kind as `flagops.yml` spells it (`file`, `gitlab`,
    /// `flipper-sql`, `flagd`, `unleash`); `None` for another word.
    pub fn of_kind(kind: &str) -> Option<Hashing> {
        match kind {
            "file" | "gitlab" | "flipper-sql" => Some(Hashing::Flipper),
            "flagd" => Some(Hashing::Flagd),
            "unleash" => Some(Hashing::Unleash),
            _ => None,
        }
    }

    /// The hashing of an environment's backend.
    pub fn of(backend: &BackendConfig) -> Hashing {
        Hashing::of_kind(backend.kind()).unwrap_or(Hashing::Flipper)
    }

    /// Its name in words.
    pub fn describe(self) -> &'static str {
        match self {
            Hashing::Flipper => "Flipper's CRC-32",
            Hashing::Flagd => "flagd's MurmurHash3 `fractional`",
            Hashing::Unleash => "Unleash's MurmurHash3 `flexibleRollout`",
        }
    }

    /// The bucket of `actor` for `flag`: 0 to 99,999 for Flipper and flagd, 1 to 100 for
    /// Unleash.
    pub fn bucket(self, flag: &str, actor: &str) -> u32 {
        match self {
            Hashing::Flipper => crate::eval::bucket(flag, actor),
            Hashing::Flagd => flagd_bucket(flag, actor),
            Hashing::Unleash => unleash_normalized(flag, actor),
        }
    }

    /// Whether a percentage of `thousandths` opens for an actor in `bucket`.
    pub fn opens(self, bucket: u32, thousandths: u32) -> bool {
        match self {
            Hashing::Flipper => crate::eval::opens(bucket, thousandths),
            Hashing::Flagd => bucket < thousandths,
            // `normalized <= percentage`, with the percentage as the number it is written as.
            Hashing::Unleash => thousandths > 0 && u64::from(bucket) * 1000 <= u64::from(thousandths),
        }
    }

    /// Why an actor in `bucket` is in or out of a percentage of `thousandths`, in words.
    pub fn reason(self, bucket: u32, thousandths: u32) -> String {
        let percent = crate::state::percent(thousandths);
        match (self, self.opens(bucket, thousandths)) {
            (Hashing::Unleash, true) => format!("normalized hash {bucket} is at most {percent} ({percent}% of actors)"),
            (Hashing::Unleash, false) => format!("normalized hash {bucket} is above {percent} ({percent}% of actors)"),
            (_, true) => format!("bucket {bucket} is below {thousandths} ({percent}% of actors)"),
            (_, false) => format!("bucket {bucket} is not below {thousandths} ({percent}% of actors)"),
        }
    }

    /// Whether a percentage of `thousandths` opens for `actor`.
    pub fn in_percentage(self, flag: &str, actor: &str, thousandths: u32) -> bool {
        self.opens(self.bucket(flag, actor), thousandths)
    }
}

/// MurmurHash3 x86 32-bit of `bytes` with `seed`.
pub fn murmur3_32(bytes: &[u8], seed: u32) -> u32 {
    // Reading from memory cannot fail.
    murmur3::murmur3_32(&mut Cursor::new(bytes), seed).unwrap_or_default()
}

/// flagd's `fractional` bucket of `targeting_key` for `flag`, out of [`FLAGD_TOTAL_WEIGHT`]:
/// `(murmur3(flag + key) × total) >> 32` (flagd's `core/pkg/evaluator/fractional.go`).
pub fn flagd_bucket(flag: &str, targeting_key: &str) -> u32 {
    let mut text = String::with_capacity(flag.len() + targeting_key.len());
    text.push_str(flag);
    text.push_str(targeting_key);
    let hash = murmur3_32(text.as_bytes(), 0);
    // At most (2^32 − 1) × 100,000 >> 32 < 100,000.
    ((u64::from(hash) * u64::from(FLAGD_TOTAL_WEIGHT)) >> 32) as u32
}

/// Unleash's normalized hash of `id` in the group `group_id`, 1 to 100:
/// `murmur3("group:id") % 100 + 1` (unleash-client-node's `strategy/util.ts`).
pub fn unleash_normalized(group_id: &str, id: &str) -> u32 {
    murmur3_32(format!("{group_id}:{id}").as_bytes(), 0) % 100 + 1
}

/// An environment whose backend hashes differently from the one that last held its flags:
/// the percentages it holds will select other actors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rehash {
    /// The backend kind before (the last sync's, or the base revision's).
    pub from: String,
    /// The backend kind now configured.
    pub to: String,
    /// The flags the environment holds at a percentage of actors, by name.
    pub flags: Vec<String>,
}

/// The [`Rehash`] of moving `state` from the backend kind `from` to `to`, when the two hash
/// differently and some flag is at a percentage of actors.
pub fn rehash(from: &str, to: &str, state: &EnvironmentState) -> Option<Rehash> {
    let (Some(before), Some(after)) = (Hashing::of_kind(from), Hashing::of_kind(to)) else {
        return None;
    };
    if before == after {
        return None;
    }
    let flags: Vec<String> = state
        .iter()
        .filter(|(_, stored)| match stored {
            crate::state::Stored::Gates(gates) => gates.percentage_of_actors.is_some_and(|p| p > 0),
            crate::state::Stored::Boolean(_) => false,
        })
        .map(|(flag, _)| flag.clone())
        .collect();
    (!flags.is_empty()).then(|| Rehash {
        from: from.to_string(),
        to: to.to_string(),
        flags,
    })
}

/// The note `plan` prints for a [`Rehash`] in `environment`.
pub fn describe(environment: &str, rehash: &Rehash) -> String {
    let before = Hashing::of_kind(&rehash.from).unwrap_or(Hashing::Flipper);
    let after = Hashing::of_kind(&rehash.to).unwrap_or(Hashing::Flipper);
    format!(
        "{environment}: the backend moves from `{}` to `{}`, which hash actors differently ({} against {}): {} at a percentage of actors will open the same share but other actors ({}); count them with `flagops eval NAME --env {environment} --compare-backend {}`",
        rehash.from,
        rehash.to,
        before.describe(),
        after.describe(),
        crate::plan::render::count(rehash.flags.len(), "flag"),
        rehash.flags.join(", "),
        rehash.from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_known_vectors() {
        // The reference vectors of MurmurHash3 x86 32-bit (SMHasher's), as flagd's Go library
        // and Unleash's JavaScript one compute them.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn flagd_buckets_stay_below_the_total_weight() {
        assert!(flagd_bucket("", "") < FLAGD_TOTAL_WEIGHT);
        for i in 0..1000 {
            assert!(flagd_bucket("flag", &format!("Project:{i}")) < FLAGD_TOTAL_WEIGHT);
        }
    }

    #[test]
    fn unleash_normalizes_to_one_to_one_hundred() {
        for i in 0..1000 {
            let n = unleash_normalized("flag", &format!("User:{i}"));
            assert!((1..=100).contains(&n), "{n}");
        }
        // `normalized <= percentage`: 12.5% opens 1 to 12, 100% opens all, 0% none.
        assert!(Hashing::Unleash.opens(12, 12_500));
        assert!(!Hashing::Unleash.opens(13, 12_500));
        assert!(Hashing::Unleash.opens(100, 100_000));
        assert!(!Hashing::Unleash.opens(1, 0));
    }

    #[test]
    fn flagd_opens_below_the_on_weight() {
        assert!(Hashing::Flagd.opens(24_999, 25_000));
        assert!(!Hashing::Flagd.opens(25_000, 25_000));
    }

    #[test]
    fn rehash_only_between_hashings_and_only_for_percentages() {
        let mut state = EnvironmentState::new();
        state.insert("on".into(), crate::state::Stored::Boolean(true));
        assert_eq!(rehash("file", "flagd", &state), None);
        state.insert(
            "half".into(),
            crate::state::Stored::Gates(crate::state::GateSet {
                percentage_of_actors: Some(50_000),
                ..Default::default()
            }),
        );
        assert_eq!(rehash("file", "gitlab", &state), None);
        assert_eq!(rehash("file", "nothing", &state), None);
        let found = rehash("file", "flagd", &state).unwrap();
        assert_eq!(found.flags, ["half"]);
    }
}
