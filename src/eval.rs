//! Offline evaluation: whether a flag is on for an actor, exactly as Flipper decides it in
//! GitLab.
//!
//! Gates are tried in Flipper's order and the first that opens wins: boolean, actors,
//! percentage of actors, percentage of time, groups. Nothing stored means the flag's
//! `default_enabled`. Percentage of actors hashes the flag name followed by the actor's Flipper
//! id (`crc32("my_flagProject:123") % 100_000`) and opens when the bucket is below the
//! percentage in thousandths, so an actor enabled at 10% stays enabled at 50%. This module is
//! pure.

use serde::Serialize;

use crate::config::Config;
use crate::hashing::Hashing;
use crate::state::{GateSet, Stored};

/// Flipper's modulus: buckets run from 0 to 99,999.
pub const BUCKETS: u32 = 100_000;

/// The percentage-of-actors bucket of `flipper_id` for `flag`: CRC-32 (IEEE) of the flag name
/// followed by the id, with no separator, modulo 100,000.
pub fn bucket(flag: &str, flipper_id: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(flag.as_bytes());
    hasher.update(flipper_id.as_bytes());
    hasher.finalize() % BUCKETS
}

/// Whether the percentage-of-actors gate at `thousandths` (25% is 25,000) opens for the actor.
pub fn in_percentage(flag: &str, flipper_id: &str, thousandths: u32) -> bool {
    opens(bucket(flag, flipper_id), thousandths)
}

/// Flipper's comparison, in floating point as Ruby does it: the stored percentage (`"2.007"`
/// read with `to_f`) times 1,000. For most percentages this is the bucket below the
/// thousandths, but not all: 2.007 × 1,000 is 2007.0000000000002, so bucket 2,007 opens too.
pub fn opens(bucket: u32, thousandths: u32) -> bool {
    let percentage = f64::from(thousandths) / 1000.0;
    f64::from(bucket) < percentage * 1000.0
}

/// Whether a percentage-of-time gate of `thousandths` opens on a call whose random draw is
/// `draw` (uniform in `[0, 1)`), as Flipper decides it: `rand < percentage / 100.0`. This is the
/// decision an [`Outcome::Random`] stands for, one call at a time.
pub fn time_gate_opens(thousandths: u32, draw: f64) -> bool {
    let percentage = f64::from(thousandths) / 1000.0;
    draw < percentage / 100.0
}

/// Who a flag is evaluated for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// The actor's Flipper id, such as `Project:123`; `None` evaluates with no actor.
    pub actor: Option<String>,
    /// The feature groups the actor belongs to (Flipper checks membership in code; here it is
    /// given).
    pub groups: Vec<String>,
}

/// The answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// On.
    On,
    /// Off.
    Off,
    /// On for a share of calls only: percentage of time draws anew on every call.
    Random,
}

/// The gate that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Nothing is stored: `default_enabled` decides.
    Default,
    /// The boolean gate.
    Boolean,
    /// The actors gate.
    Actor,
    /// The percentage-of-actors gate.
    PercentageOfActors,
    /// The percentage-of-time gate.
    PercentageOfTime,
    /// The groups gate.
    Group,
    /// No gate opened.
    None,
}

impl Outcome {
    /// `on`, `off` or `random`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::On => "on",
            Outcome::Off => "off",
            Outcome::Random => "random",
        }
    }
}

impl Gate {
    /// The gate's name, as in JSON and test files.
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Default => "default",
            Gate::Boolean => "boolean",
            Gate::Actor => "actor",
            Gate::PercentageOfActors => "percentage_of_actors",
            Gate::PercentageOfTime => "percentage_of_time",
            Gate::Group => "group",
            Gate::None => "none",
        }
    }
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// On, off or random.
    pub outcome: Outcome,
    /// The gate that decided.
    pub gate: Gate,
    /// Why, in words.
    pub reason: String,
    /// The actor's percentage-of-actors bucket (0–99,999; Unleash's normalized hash, 1–100,
    /// under [`evaluate_with`]), when a percentage was consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u32>,
}

/// Evaluates `flag` with the stored state `stored` (`None`: nothing stored) for `subject`.
/// Actor ids under `actors` in the registry match the subject's Flipper id through the config's
/// `actor_kinds` (`project: [42]` matches `Project:42`).
pub fn evaluate(
    flag: &str,
    default_enabled: bool,
    stored: Option<&Stored>,
    subject: &Subject,
    config: &Config,
) -> Decision {
    evaluate_with(Hashing::Flipper, flag, default_enabled, stored, subject, config)
}

/// [`evaluate`], with the percentage of actors bucketed as `hashing` does it: what another kind
/// of backend would answer for the same state (`crate::hashing`).
pub fn evaluate_with(
    hashing: Hashing,
    flag: &str,
    default_enabled: bool,
    stored: Option<&Stored>,
    subject: &Subject,
    config: &Config,
) -> Decision {
    match stored {
        None => Decision {
            outcome: if default_enabled { Outcome::On } else { Outcome::Off },
            gate: Gate::Default,
            reason: format!("nothing is stored, so `default_enabled: {default_enabled}` applies"),
            bucket: None,
        },
        Some(Stored::Boolean(on)) => Decision {
            outcome: if *on { Outcome::On } else { Outcome::Off },
            gate: Gate::Boolean,
            reason: format!("the boolean gate is {on}"),
            bucket: None,
        },
        Some(Stored::Gates(gates)) => evaluate_gates(hashing, flag, gates, subject, config),
    }
}

fn evaluate_gates(hashing: Hashing, flag: &str, gates: &GateSet, subject: &Subject, config: &Config) -> Decision {
    let mut bucket_seen = None;
    if let Some(actor) = &subject.actor {
        if let Some((kind, id)) = config.actor_kind_of(actor)
            && gates.actors.iter().any(|listed| listed.kind == kind && listed.id == id)
        {
            return Decision {
                outcome: Outcome::On,
                gate: Gate::Actor,
                reason: format!("{actor} is listed under `actors`"),
                bucket: None,
            };
        }
        if let Some(threshold) = gates.percentage_of_actors {
            let bucket = hashing.bucket(flag, actor);
            bucket_seen = Some(bucket);
            if hashing.opens(bucket, threshold) {
                return Decision {
                    outcome: Outcome::On,
                    gate: Gate::PercentageOfActors,
                    reason: hashing.reason(bucket, threshold),
                    bucket: Some(bucket),
                };
            }
        }
    }
    let group = subject.groups.iter().find(|group| gates.groups.contains(*group));
    if let Some(group) = group {
        return Decision {
            outcome: Outcome::On,
            gate: Gate::Group,
            reason: format!("the actor is in the feature group `{group}`"),
            bucket: bucket_seen,
        };
    }
    if let Some(share) = gates.percentage_of_time {
        return Decision {
            outcome: if share >= BUCKETS { Outcome::On } else { Outcome::Random },
            gate: Gate::PercentageOfTime,
            reason: format!(
                "percentage of time: on for {}% of calls, drawn anew on each",
                crate::state::percent(share)
            ),
            bucket: bucket_seen,
        };
    }
    let reason = match (&subject.actor, gates.percentage_of_actors, bucket_seen) {
        (None, Some(_), _) => "no gate opened: percentage of actors never opens without an actor".to_string(),
        (Some(_), Some(threshold), Some(bucket)) => {
            format!("no gate opened: {}", hashing.reason(bucket, threshold))
        }
        _ => "no gate opened".to_string(),
    };
    Decision {
        outcome: Outcome::Off,
        gate: Gate::None,
        reason,
        bucket: bucket_seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flipper hashing vectors: flag, Flipper id, expected CRC-32 and bucket. Computed with Ruby's
    /// `Zlib.crc32`, with Python's `zlib.crc32`, and checked against Flipper 0.25.4's `enabled?`
    /// at 25% (rows on the 25,000 boundary included).
    const VECTORS: &[(&str, &str, u32, u32)] = &[
        ("my_feature", "Project:1", 1907772549, 72549),
        ("my_feature", "Project:46905", 2821824999, 24999),
        ("my_feature", "Project:29827", 2733125000, 25000),
        ("my_feature", "Project:123", 719796123, 96123),
        ("my_feature", "Project:1000", 3146118519, 18519),
        ("my_feature", "User:1", 3977924992, 24992),
        ("my_feature", "Group:9970", 1726402521, 2521),
        ("ci_new_pipeline_ui", "Project:1", 631279088, 79088),
        ("ci_new_pipeline_ui", "Project:42", 3661240537, 40537),
        ("ci_new_pipeline_ui", "Project:278964", 2209757576, 57576),
        ("ci_new_pipeline_ui", "User:5", 3816539954, 39954),
        ("ci_new_pipeline_ui", "Namespace:77", 3571192104, 92104),
        ("red_feature", "User:1", 3015296976, 96976),
        ("red_feature", "User:2", 716215914, 15914),
        ("red_feature", "User:3", 1572316924, 16924),
        ("red_feature", "User:4", 3285398367, 98367),
        ("a", "Project:1", 3403120268, 20268),
        ("red_feature", "Project:8461", 2347624999, 24999),
        ("Feature_With_Caps", "Project:1", 4239817404, 17404),
        ("red_feature", "Project:2606", 803925000, 25000),
        ("my_flag", "Project:123", 2186912884, 12884),
        ("some_feature", "User:1", 4054109890, 9890),
        ("new_navigation_bar", "Group:9970", 3387249701, 49701),
    ];

    #[test]
    fn buckets_match_flipper_vectors() {
        for &(flag, id, crc, expected) in VECTORS {
            assert_eq!(crc % BUCKETS, expected, "vector table is inconsistent for {flag} {id}");
            assert_eq!(bucket(flag, id), expected, "{flag} + {id}");
        }
    }

    #[test]
    fn percentage_boundary_is_strict() {
        // Bucket 24,999 is in at 25%, bucket 25,000 is not; 25.001% takes it in.
        assert!(in_percentage("my_feature", "Project:46905", 25_000));
        assert!(!in_percentage("my_feature", "Project:29827", 25_000));
        assert!(in_percentage("my_feature", "Project:29827", 25_001));
        assert!(in_percentage("red_feature", "Project:8461", 25_000));
        assert!(!in_percentage("red_feature", "Project:2606", 25_000));
    }

    #[test]
    fn percentages_compare_as_flipper_does_in_floating_point() {
        // crc32("edge_flagProject:92536") % 100000 is 2007 (Python's zlib); Flipper opens it at
        // 2.007% because 2.007 * 1000 is 2007.0000000000002.
        assert_eq!(bucket("edge_flag", "Project:92536"), 2007);
        assert!(in_percentage("edge_flag", "Project:92536", 2_007));
        assert!(!in_percentage("edge_flag", "Project:92536", 2_006));
        // Whole percentages are exact.
        assert!(!in_percentage("my_feature", "Project:29827", 25_000));
    }

    #[test]
    fn percentages_are_sticky() {
        for &(flag, id, _, _) in VECTORS {
            let mut was_in = false;
            for percent in [1_000, 10_000, 25_000, 50_000, 99_999] {
                let now_in = in_percentage(flag, id, percent);
                assert!(!was_in || now_in, "{flag} {id} left the rollout at {percent}");
                was_in = now_in;
            }
        }
    }

    #[test]
    fn time_gate_opens_below_its_share_of_draws() {
        // Flipper: `rand < percentage / 100.0`, so a draw equal to the share is off.
        for (thousandths, on, off) in [
            (10_000, [0.0, 0.099_999], [0.1, 0.5]),
            (62_500, [0.6, 0.624_999], [0.625, 0.999_999]),
            (100_000, [0.0, 0.999_999], [1.0, 1.5]),
            (1, [0.0, 0.000_009], [0.000_01, 0.5]),
        ] {
            for draw in on {
                assert!(time_gate_opens(thousandths, draw), "{thousandths} at {draw}");
            }
            for draw in off {
                assert!(!time_gate_opens(thousandths, draw), "{thousandths} at {draw}");
            }
        }
    }

    #[test]
    fn percentage_of_time_is_on_only_at_one_hundred() {
        let config = example_config();
        let subject = Subject::default();
        let time = |thousandths| {
            let gates = GateSet {
                percentage_of_time: Some(thousandths),
                ..GateSet::default()
            };
            evaluate("my_feature", false, Some(&Stored::Gates(gates)), &subject, &config)
        };
        assert_eq!(time(100_000).outcome, Outcome::On);
        assert_eq!(time(99_999).outcome, Outcome::Random);
        assert_eq!(time(1).outcome, Outcome::Random);
        assert_eq!(time(1).gate, Gate::PercentageOfTime);
    }

    #[test]
    fn off_says_why_no_gate_opened() {
        let config = example_config();
        let gates = GateSet {
            percentage_of_actors: Some(25_000),
            ..GateSet::default()
        };
        let without_actor = evaluate(
            "my_feature",
            false,
            Some(&Stored::Gates(gates.clone())),
            &Subject::default(),
            &config,
        );
        assert_eq!((without_actor.outcome, without_actor.gate), (Outcome::Off, Gate::None));
        assert!(
            without_actor.reason.contains("never opens without an actor"),
            "{}",
            without_actor.reason
        );
        let subject = Subject {
            actor: Some("Project:29827".into()),
            groups: vec![],
        };
        let outside = evaluate("my_feature", false, Some(&Stored::Gates(gates)), &subject, &config);
        assert_eq!(outside.bucket, Some(25_000));
        assert!(
            outside.reason.contains("bucket 25000 is not below 25000"),
            "{}",
            outside.reason
        );
    }

    #[test]
    fn names_are_the_json_names() {
        for gate in [
            Gate::Default,
            Gate::Boolean,
            Gate::Actor,
            Gate::PercentageOfActors,
            Gate::PercentageOfTime,
            Gate::Group,
            Gate::None,
        ] {
            assert_eq!(serde_json::to_value(gate).unwrap(), gate.as_str(), "{gate:?}");
        }
        for outcome in [Outcome::On, Outcome::Off, Outcome::Random] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str(), "{outcome:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // An actor is whatever `--actor` or a test file says: any text evaluates against any
        // gates without panicking, and a bucket is always below 100,000.
        #[test]
        fn any_actor_evaluates(
            actor in "\\PC{0,80}|(Project|User|Group|Namespace|Repository):[^\n]{0,40}",
            listed in "\\PC{0,20}",
            thousandths in 0_u32..=100_000,
        ) {
            let config = example_config();
            proptest::prop_assert!(bucket("my_feature", &actor) < BUCKETS);
            let gates = GateSet {
                percentage_of_actors: Some(thousandths),
                percentage_of_time: Some(thousandths),
                actors: [crate::state::Actor { kind: "project".into(), id: listed }].into(),
                groups: ["gitlab_team_members".to_string()].into(),
            };
            let subject = Subject { actor: Some(actor), groups: vec![] };
            let _ = evaluate("my_feature", false, Some(&Stored::Gates(gates)), &subject, &config);
        }
    }

    fn example_config() -> Config {
        Config::example()
    }
}
