//! Status: how each environment compares with the registry.
//!
//! A flag whose actual state differs from the desired one is either pending (the registry asks
//! for a change that no sync has applied yet) or drifted (the environment changed outside git
//! since its last sync). Telling them apart needs what the last sync left: the desired state of
//! the commit it applied, resolved at the time it ran. A flag an emergency change holds is
//! neither: it is held, and a sync leaves it alone (`crate::hold`). This module is pure.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::backends::{Hold, SyncRecord};
use crate::state::{EnvironmentState, Stored};

/// One environment's status.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentStatus {
    /// The environment.
    pub environment: String,
    /// The last completed sync.
    pub last_sync: Option<SyncRecord>,
    /// How many flags are as the registry wants them.
    pub in_sync: usize,
    /// Flags the registry wants changed, not yet synced.
    pub pending: Vec<FlagStatus>,
    /// Flags changed outside git since the last sync.
    pub drifted: Vec<FlagStatus>,
    /// Flags an emergency change holds until a reviewed change to them reaches the registry.
    pub held: Vec<HeldStatus>,
    /// Flags stored but gone from the registry.
    pub orphans: Vec<String>,
    /// Flags stored whose file has no entry for the environment: a sync leaves them alone
    /// unless it prunes (`<environment>: absent` asks for their deletion).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_entry: Vec<FlagStatus>,
    /// Where each rollout that sets the environment stands (`crate::steps`), held flags aside.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<crate::steps::Standing>,
}

/// A flag that is not as the registry wants it.
#[derive(Clone, Debug, Serialize)]
pub struct FlagStatus {
    /// The flag.
    pub flag: String,
    /// What the environment holds (absent: null).
    pub actual: Option<Stored>,
    /// What the registry wants (absent: null).
    pub desired: Option<Stored>,
}

/// A flag an emergency change holds.
#[derive(Clone, Debug, Serialize)]
pub struct HeldStatus {
    /// The flag, what the environment holds and what the registry wants.
    #[serde(flatten)]
    pub status: FlagStatus,
    /// The hold: who, when, why and the merge request.
    pub hold: Hold,
}

impl EnvironmentStatus {
    /// Whether anything is pending, drifted or held.
    pub fn is_clean(&self) -> bool {
        self.pending.is_empty() && self.drifted.is_empty() && self.held.is_empty()
    }
}

/// The flags of the registry, as `classify` needs them.
#[derive(Clone, Debug, Default)]
pub struct Names<'a> {
    /// Every flag the registry defines.
    pub known: BTreeSet<&'a str>,
    /// The flags whose file writes `absent` for the environment (`crate::resolve::absent`).
    pub absent: BTreeSet<&'a str>,
}

/// Compares `actual` with `desired`; `synced` is the state the last sync left (its desired
/// state), or `None` when the environment was never synced; `registered` are the registry's flags;
/// `held` the holds a sync would keep (`crate::hold::decide`).
pub fn classify(
    environment: &str,
    desired: &EnvironmentState,
    synced: Option<&EnvironmentState>,
    actual: &EnvironmentState,
    registered: &Names<'_>,
    held: &[Hold],
    last_sync: Option<SyncRecord>,
) -> EnvironmentStatus {
    let mut status = EnvironmentStatus {
        environment: environment.to_string(),
        last_sync,
        in_sync: 0,
        pending: Vec::new(),
        drifted: Vec::new(),
        held: Vec::new(),
        orphans: Vec::new(),
        without_entry: Vec::new(),
        rollouts: Vec::new(),
    };
    let names: BTreeSet<&String> = desired.keys().chain(actual.keys()).collect();
    for name in names {
        let want = desired.get(name);
        let have = actual.get(name);
        if let Some(hold) = held.iter().find(|hold| &hold.flag == name) {
            status.held.push(HeldStatus {
                status: FlagStatus {
                    flag: name.clone(),
                    actual: have.cloned(),
                    desired: want.cloned(),
                },
                hold: hold.clone(),
            });
            continue;
        }
        if want.is_none() && !registered.known.contains(name.as_str()) {
            status.orphans.push(name.clone());
            continue;
        }
        if want.is_none() && !registered.absent.contains(name.as_str()) {
            status.without_entry.push(FlagStatus {
                flag: name.clone(),
                actual: have.cloned(),
                desired: None,
            });
            continue;
        }
        if want == have {
            status.in_sync += 1;
            continue;
        }
        let entry = FlagStatus {
            flag: name.clone(),
            actual: have.cloned(),
            desired: want.cloned(),
        };
        // A change the last sync held back (the change lock, `--hold-widening`) is still asked
        // for: it is pending, whatever the state that sync left says.
        let held_back = status
            .last_sync
            .iter()
            .flat_map(|record| &record.observed.held_back)
            .any(|held| &held.flag == name && held.desired.as_ref() == want && held.actual.as_ref() == have);
        match synced {
            Some(synced) if synced.get(name) != have && !held_back => status.drifted.push(entry),
            _ => status.pending.push(entry),
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered<'a>(known: &BTreeSet<&'a str>) -> Names<'a> {
        Names {
            known: known.clone(),
            absent: known.clone(),
        }
    }

    #[test]
    fn classify_tells_pending_from_drift() {
        let on = Stored::Boolean(true);
        let off = Stored::Boolean(false);
        let synced: EnvironmentState = [("a".into(), on.clone()), ("b".into(), on.clone())].into();
        let desired: EnvironmentState = [
            ("a".into(), off.clone()),
            ("b".into(), on.clone()),
            ("c".into(), on.clone()),
        ]
        .into();
        let actual: EnvironmentState = [
            ("a".into(), on.clone()),
            ("b".into(), off.clone()),
            ("x".into(), on.clone()),
        ]
        .into();
        let known = ["a", "b", "c"].into();
        let held = Hold {
            flag: "b".into(),
            state: Some(off.clone()),
            by: "ada".into(),
            at: "2026-01-02T03:04:05Z".into(),
            reason: "INC-1".into(),
            fingerprint: "f".into(),
            merge_request: None,
        };
        let status = classify("e", &desired, Some(&synced), &actual, &registered(&known), &[], None);
        let names = |list: &[FlagStatus]| list.iter().map(|f| f.flag.clone()).collect::<Vec<_>>();
        assert_eq!(names(&status.pending), ["a", "c"]);
        assert_eq!(names(&status.drifted), ["b"]);
        assert_eq!(status.orphans, ["x"]);
        assert_eq!(status.in_sync, 0);
        // The same flag under an emergency hold is held, not drifted.
        let status = classify(
            "e",
            &desired,
            Some(&synced),
            &actual,
            &registered(&known),
            &[held],
            None,
        );
        assert_eq!(names(&status.drifted), Vec::<String>::new());
        assert_eq!(
            status.held.iter().map(|h| h.status.flag.clone()).collect::<Vec<_>>(),
            ["b"]
        );
        assert!(!status.is_clean());
    }

    // A change the last sync held back is pending, even though the state that sync recorded as
    // applied (its commit's) already asks for it; the same difference not held back is drift.
    #[test]
    fn classify_counts_a_held_back_change_as_pending() {
        let on = Stored::Boolean(true);
        let wanted: EnvironmentState = [("c".into(), on.clone())].into();
        let actual = EnvironmentState::new();
        let known = ["c"].into();
        let record = |desired: Option<Stored>| SyncRecord {
            at: "2026-01-02T03:04:05Z".into(),
            resolved_at: "2026-01-02T03:04:05Z".into(),
            by: "ada".into(),
            commit: None,
            changes: 0,
            override_freeze: None,
            override_schedule: None,
            take_over: false,
            backend: None,
            observed: crate::backends::Observations {
                guards: Vec::new(),
                held_back: vec![crate::backends::HeldBack {
                    flag: "c".into(),
                    desired,
                    actual: None,
                    why: vec!["--hold-widening: INC-7".into()],
                }],
            },
        };
        let classified = |last_sync| {
            classify(
                "e",
                &wanted,
                Some(&wanted),
                &actual,
                &registered(&known),
                &[],
                last_sync,
            )
        };
        let names = |list: &[FlagStatus]| list.iter().map(|f| f.flag.clone()).collect::<Vec<_>>();
        let held_back = classified(Some(record(Some(on.clone()))));
        assert_eq!(
            (names(&held_back.pending), names(&held_back.drifted)),
            (vec!["c".to_string()], vec![])
        );
        // Held back towards another state than the registry's: the difference is drift.
        let other = classified(Some(record(Some(Stored::Boolean(false)))));
        assert_eq!(
            (names(&other.pending), names(&other.drifted)),
            (vec![], vec!["c".to_string()])
        );
        let none = classified(None);
        assert_eq!(names(&none.drifted), ["c"]);
    }
}
