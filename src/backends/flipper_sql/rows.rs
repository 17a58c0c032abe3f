//! The pure half of the `flipper-sql` backend: Flipper's `feature_gates` rows to and from
//! [`Stored`], with no database in sight.
//!
//! Reading follows Flipper's own rules (`Flipper::Typecast` and the ActiveRecord adapter of
//! Flipper 0.25 to 1.3): a boolean row opens only for `true` or `1`; a percentage containing `.`
//! is read as a float and otherwise as an integer, as leniently as Ruby's `to_f` and `to_i`; a `0`
//! percentage row is no gate at all. Writing gives exactly the rows Flipper writes through
//! GitLab's Features API.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::ActorKind;
use crate::state::{Actor, GateSet, Stored, percent};

/// The gate keys Flipper stores in `feature_gates.key`.
pub const BOOLEAN: &str = "boolean";
/// The percentage-of-actors gate key.
pub const PERCENTAGE_OF_ACTORS: &str = "percentage_of_actors";
/// The percentage-of-time gate key.
pub const PERCENTAGE_OF_TIME: &str = "percentage_of_time";
/// The actors gate key.
pub const ACTORS: &str = "actors";
/// The groups gate key.
pub const GROUPS: &str = "groups";

/// GitLab's suffix of an opt-out actor row (`Project:6:opt_out`).
pub const OPT_OUT: &str = ":opt_out";

/// Flipper types whose ids are not database ids but paths or names, written verbatim:
/// `Repository:<relative path>`, `FlipperGitlabInstance:<host>`, `FlipperPod:<hostname>` and
/// `FlipperRequest:<uuid>` (GitLab's `lib/feature.rb` and `lib/gitlab/git/repository.rb`).
pub const VERBATIM_ID_TYPES: [&str; 4] = ["Repository", "FlipperGitlabInstance", "FlipperPod", "FlipperRequest"];

/// One row of `feature_gates`: the gate key and its value (`NULL` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GateRow {
    /// The gate key, such as `percentage_of_actors`.
    pub key: String,
    /// The value as text.
    pub value: Option<String>,
}

/// How the registry's actor kinds map to Flipper ids, from `actor_kinds` in `flagops.yml`.
#[derive(Clone, Debug)]
pub struct ActorTypes {
    /// Kind to Flipper type.
    by_kind: BTreeMap<String, String>,
    /// Flipper type to kind, longest type first so `Namespaces::UserNamespace` wins over a
    /// shorter type that is a prefix of it.
    by_type: Vec<(String, String)>,
}

/// Why an actor cannot be written as a Flipper id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorIdError {
    /// The kind is not in `actor_kinds`.
    UnknownKind(Actor),
    /// The kind's Flipper ids are database ids, and the actor is named by a path or a name.
    NotNumeric {
        /// The actor as written in the registry.
        actor: Actor,
        /// The kind's Flipper type.
        flipper_type: String,
    },
    /// An id ending in `:opt_out`, which GitLab reads as an opt-out rather than an actor.
    OptOut(Actor),
    /// A repository named by its path in GitLab rather than by the storage path GitLab's Flipper
    /// ids hold (`Repository:@hashed/6b/86/6b86….git`).
    NotStoragePath(Actor),
}

/// Why a flag's rows cannot be read as one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmbiguousGate {
    /// The gate key.
    pub key: String,
    /// The values of its rows.
    pub values: Vec<String>,
}

impl ActorTypes {
    /// The mapping of `kinds`; two kinds with one Flipper type could not be told apart.
    pub fn new(kinds: &BTreeMap<String, ActorKind>) -> Result<ActorTypes, String> {
        let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
        for (kind, actor_kind) in kinds {
            if let Some(other) = by_type.insert(&actor_kind.flipper_type, kind) {
                return Err(format!(
                    "the actor kinds `{other}` and `{kind}` both have the flipper_type `{}`, so actors read from the database could not be told apart",
                    actor_kind.flipper_type
                ));
            }
        }
        let mut by_type: Vec<(String, String)> = by_type
            .into_iter()
            .map(|(flipper_type, kind)| (flipper_type.to_string(), kind.to_string()))
            .collect();
        by_type.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(ActorTypes {
            by_kind: kinds
                .iter()
                .map(|(kind, actor_kind)| (kind.clone(), actor_kind.flipper_type.clone()))
                .collect(),
            by_type,
        })
    }

    /// The Flipper id GitLab gives `actor`: `Project:278964`, `Repository:@hashed/6b/86/….git`.
    pub fn flipper_id(&self, actor: &Actor) -> Result<String, ActorIdError> {
        let Some(flipper_type) = self.by_kind.get(&actor.kind) else {
            return Err(ActorIdError::UnknownKind(actor.clone()));
        };
        if actor.id.ends_with(OPT_OUT) {
            return Err(ActorIdError::OptOut(actor.clone()));
        }
        if flipper_type == "Repository" && !is_storage_path(&actor.id) {
            return Err(ActorIdError::NotStoragePath(actor.clone()));
        }
        if !VERBATIM_ID_TYPES.contains(&flipper_type.as_str()) && !is_database_id(&actor.id) {
            return Err(ActorIdError::NotNumeric {
                actor: actor.clone(),
                flipper_type: flipper_type.clone(),
            });
        }
        Ok(format!("{flipper_type}:{}", actor.id))
    }

    /// The actor a Flipper id names. A type no kind has becomes the kind itself
    /// (`FlipperGitlabInstance:gitlab.com`), and an opt-out keeps its suffix in the id
    /// (`project:6:opt_out`): neither can be a desired state, so both show as drift.
    pub fn actor(&self, flipper_id: &str) -> Actor {
        let (base, opt_out) = match flipper_id.strip_suffix(OPT_OUT) {
            Some(base) => (base, OPT_OUT),
            None => (flipper_id, ""),
        };
        for (flipper_type, kind) in &self.by_type {
            if let Some(id) = base
                .strip_prefix(flipper_type.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
            {
                return Actor {
                    kind: kind.clone(),
                    id: format!("{id}{opt_out}"),
                };
            }
        }
        match split_type(base) {
            Some((flipper_type, id)) => Actor {
                kind: flipper_type.to_string(),
                id: format!("{id}{opt_out}"),
            },
            None => Actor {
                kind: String::new(),
                id: flipper_id.to_string(),
            },
        }
    }
}

/// Reads one flag's gate rows the way Flipper and GitLab evaluate them.
///
/// No rows, or only rows that open nothing, is `false`: the flag is stored ("persisted") and
/// off. The boolean gate, or 100% of time, is `true`, unless GitLab opt-outs exist: the flag is
/// then on for everyone but them, which reads as 100% of time plus the opt-out actors.
pub fn read_state(rows: &[GateRow], types: &ActorTypes) -> Result<Stored, AmbiguousGate> {
    let boolean = single_value(rows, BOOLEAN, |value| {
        u32::from(matches!(value, Some("true") | Some("1")))
    })?
    .unwrap_or(0)
        == 1;
    let percentage_of_actors = single_value(rows, PERCENTAGE_OF_ACTORS, read_percentage)?.filter(|p| *p > 0);
    let percentage_of_time = single_value(rows, PERCENTAGE_OF_TIME, read_percentage)?.filter(|p| *p > 0);
    let values = |key: &'static str| {
        rows.iter()
            .filter(move |row| row.key == key)
            .filter_map(|row| row.value.as_deref())
    };
    let actors: BTreeSet<Actor> = values(ACTORS).map(|id| types.actor(id)).collect();
    let groups: BTreeSet<String> = values(GROUPS).map(str::to_string).collect();

    if boolean || percentage_of_time == Some(100_000) {
        let opt_outs: BTreeSet<Actor> = actors.into_iter().filter(|a| a.id.ends_with(OPT_OUT)).collect();
        if opt_outs.is_empty() {
            return Ok(Stored::Boolean(true));
        }
        return Ok(Stored::Gates(GateSet {
            percentage_of_actors: None,
            percentage_of_time: Some(100_000),
            actors: opt_outs,
            groups: BTreeSet::new(),
        }));
    }
    let gates = GateSet {
        percentage_of_actors,
        percentage_of_time,
        actors,
        groups,
    };
    Ok(if gates.is_empty() {
        Stored::Boolean(false)
    } else {
        Stored::Gates(gates)
    })
}

/// The rows Flipper holds for `state` after GitLab's Features API set it: `boolean = true`
/// alone for `true`, none for `false`, and one row per gate and member otherwise.
pub fn gate_rows(state: &Stored, types: &ActorTypes) -> Result<BTreeSet<(String, String)>, ActorIdError> {
    let mut rows = BTreeSet::new();
    match state {
        Stored::Boolean(true) => {
            rows.insert((BOOLEAN.to_string(), "true".to_string()));
        }
        Stored::Boolean(false) => {}
        Stored::Gates(gates) => {
            for (key, value) in [
                (PERCENTAGE_OF_ACTORS, gates.percentage_of_actors),
                (PERCENTAGE_OF_TIME, gates.percentage_of_time),
            ] {
                if let Some(thousandths) = value.filter(|p| *p > 0) {
                    rows.insert((key.to_string(), percentage_text(thousandths)));
                }
            }
            for actor in &gates.actors {
                rows.insert((ACTORS.to_string(), types.flipper_id(actor)?));
            }
            for group in &gates.groups {
                rows.insert((GROUPS.to_string(), group.clone()));
            }
        }
    }
    Ok(rows)
}

/// A percentage as GitLab's Features API stores it: the API turns the value into a Float
/// (`value.to_f`), and Flipper 1.1 and later write a Float as Ruby prints it, so 25% is `25.0`
/// and 12.5% is `12.5`.
pub fn percentage_text(thousandths: u32) -> String {
    if thousandths.is_multiple_of(1000) {
        format!("{}.0", thousandths / 1000)
    } else {
        percent(thousandths)
    }
}

/// Reads a percentage row as Flipper does, in thousandths: with a `.` as Ruby's `to_f`,
/// otherwise as `to_i` (`25%` is 25, `abc` and `NULL` are 0). A fourth decimal rounds up, since
/// Flipper opens every bucket below the percentage times 1,000; negative values read as 0 and
/// values over 100 as 100, which open the same actors.
pub fn read_percentage(value: Option<&str>) -> u32 {
    let text = value.unwrap_or("");
    let float = text.contains('.');
    let Some(number) = ruby_number(text, float) else {
        return 0;
    };
    if number.negative {
        return 0;
    }
    // The decimal point sits `point` digits into `digits`; thousandths are the digits up to
    // three places after it.
    let point = number.integer_digits as i64 + number.exponent;
    let cut = point + 3;
    let mut thousandths: u64 = 0;
    let mut rest_nonzero = false;
    for (position, digit) in number.digits.iter().enumerate() {
        if (position as i64) < cut {
            thousandths = thousandths.saturating_mul(10).saturating_add(u64::from(*digit));
        } else if *digit != 0 {
            rest_nonzero = true;
        }
    }
    for _ in 0..(cut - number.digits.len() as i64).clamp(0, 40) {
        thousandths = thousandths.saturating_mul(10);
    }
    if rest_nonzero {
        thousandths = thousandths.saturating_add(1);
    }
    thousandths.min(100_000) as u32
}

/// Whether `id` is a Rails database id: a positive decimal integer without leading zeros.
fn is_database_id(id: &str) -> bool {
    !id.is_empty() && !id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `id` is a repository's storage path as GitLab's Flipper ids hold it
/// (`lib/gitlab/git/repository.rb`): hashed storage under `@hashed/`, or a snippet's or a group
/// wiki's under `@snippets/` and `@groups/`, ending in `.git`.
fn is_storage_path(id: &str) -> bool {
    id.starts_with('@') && id.ends_with(".git") && !id.contains("..")
}

/// Splits `Ci::Runner:12` into `Ci::Runner` and `12` at the last single colon.
fn split_type(flipper_id: &str) -> Option<(&str, &str)> {
    let bytes = flipper_id.as_bytes();
    (1..bytes.len()).rev().find_map(|at| {
        let single = bytes[at] == b':' && bytes[at - 1] != b':' && bytes.get(at + 1) != Some(&b':');
        single.then(|| (&flipper_id[..at], &flipper_id[at + 1..]))
    })
}

/// The value of a single-valued gate (boolean or percentage), read by `read`. Several rows that
/// read alike are one value; several that differ are ambiguous, because Flipper uses whichever
/// row the database returns first.
fn single_value(rows: &[GateRow], key: &str, read: impl Fn(Option<&str>) -> u32) -> Result<Option<u32>, AmbiguousGate> {
    let matching: Vec<&GateRow> = rows.iter().filter(|row| row.key == key).collect();
    let values: BTreeSet<u32> = matching.iter().map(|row| read(row.value.as_deref())).collect();
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.into_iter().next()),
        _ => Err(AmbiguousGate {
            key: key.to_string(),
            values: matching
                .iter()
                .map(|row| row.value.clone().unwrap_or_else(|| "NULL".to_string()))
                .collect(),
        }),
    }
}

/// A number as the longest prefix Ruby's `String#to_i` (or `to_f`) accepts.
struct RubyNumber {
    negative: bool,
    /// Every digit, integer part then fraction.
    digits: Vec<u8>,
    integer_digits: usize,
    exponent: i64,
}

fn ruby_number(text: &str, float: bool) -> Option<RubyNumber> {
    let bytes = text.trim_start().as_bytes();
    let mut at = 0;
    let mut negative = false;
    if let Some(sign @ (b'+' | b'-')) = bytes.first() {
        negative = *sign == b'-';
        at += 1;
    }
    let mut digits = Vec::new();
    at = read_digits(bytes, at, &mut digits);
    let integer_digits = digits.len();
    if float && bytes.get(at) == Some(&b'.') && bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
        at = read_digits(bytes, at + 1, &mut digits);
    }
    if digits.is_empty() {
        return None;
    }
    let mut exponent = 0i64;
    if float && matches!(bytes.get(at), Some(b'e' | b'E')) {
        let mut start = at + 1;
        let mut exponent_negative = false;
        if let Some(sign @ (b'+' | b'-')) = bytes.get(start) {
            exponent_negative = *sign == b'-';
            start += 1;
        }
        let mut exponent_digits = Vec::new();
        read_digits(bytes, start, &mut exponent_digits);
        if !exponent_digits.is_empty() {
            let value = exponent_digits
                .iter()
                .fold(0i64, |sum, digit| {
                    sum.saturating_mul(10).saturating_add(i64::from(*digit))
                })
                .min(400);
            exponent = if exponent_negative { -value } else { value };
        }
    }
    Some(RubyNumber {
        negative,
        digits,
        integer_digits,
        exponent,
    })
}

/// Reads digits from `at`, allowing single underscores between them as Ruby does; returns
/// where it stopped.
fn read_digits(bytes: &[u8], mut at: usize, out: &mut Vec<u8>) -> usize {
    while let Some(byte) = bytes.get(at) {
        if byte.is_ascii_digit() {
            out.push(byte - b'0');
            at += 1;
        } else if *byte == b'_'
            && at > 0
            && bytes[at - 1].is_ascii_digit()
            && bytes.get(at + 1).is_some_and(u8::is_ascii_digit)
        {
            at += 1;
        } else {
            break;
        }
    }
    at
}

impl fmt::Display for AmbiguousGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self.values.iter().map(|v| format!("`{v}`")).collect();
        write!(
            f,
            "{} `{}` rows that disagree ({}); Flipper reads whichever the database returns first",
            self.values.len(),
            self.key,
            values.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> ActorTypes {
        let kind = |flipper_type: &str| ActorKind {
            description: None,
            flipper_type: flipper_type.to_string(),
            api_param: None,
            unleash_field: None,
        };
        ActorTypes::new(
            &[
                ("project".to_string(), kind("Project")),
                ("namespace".to_string(), kind("Namespaces::UserNamespace")),
                ("runner".to_string(), kind("Ci::Runner")),
                ("repository".to_string(), kind("Repository")),
            ]
            .into(),
        )
        .unwrap()
    }

    fn actor(kind: &str, id: &str) -> Actor {
        Actor {
            kind: kind.into(),
            id: id.into(),
        }
    }

    fn rows(pairs: &[(&str, &str)]) -> Vec<GateRow> {
        pairs
            .iter()
            .map(|(key, value)| GateRow {
                key: key.to_string(),
                value: Some(value.to_string()),
            })
            .collect()
    }

    #[test]
    fn read_percentage_follows_ruby() {
        for (text, thousandths) in [
            ("25", 25_000),
            ("25.0", 25_000),
            ("12.5", 12_500),
            ("33.333", 33_333),
            ("0.001", 1),
            ("33.3331", 33_334),
            ("25%", 25_000),
            (" 7", 7_000),
            ("1_0", 10_000),
            ("1e2", 1_000),
            ("1.5e1", 15_000),
            ("abc", 0),
            ("", 0),
            ("0", 0),
            ("-5", 0),
            ("150", 100_000),
            ("1.", 1_000),
        ] {
            assert_eq!(read_percentage(Some(text)), thousandths, "{text:?}");
        }
        assert_eq!(read_percentage(None), 0);
    }

    #[test]
    fn percentage_text_is_what_the_api_writes() {
        assert_eq!(percentage_text(25_000), "25.0");
        assert_eq!(percentage_text(12_500), "12.5");
        assert_eq!(percentage_text(33_333), "33.333");
        assert_eq!(percentage_text(1), "0.001");
        for thousandths in [1, 500, 12_500, 33_333, 99_999] {
            assert_eq!(read_percentage(Some(&percentage_text(thousandths))), thousandths);
        }
    }

    #[test]
    fn flipper_ids_map_both_ways() {
        let types = types();
        assert_eq!(types.flipper_id(&actor("project", "278964")).unwrap(), "Project:278964");
        let project_one = "@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.git";
        assert_eq!(
            types.flipper_id(&actor("repository", project_one)).unwrap(),
            format!("Repository:{project_one}")
        );
        assert!(matches!(
            types.flipper_id(&actor("repository", "gitlab-org/gitlab.git")),
            Err(ActorIdError::NotStoragePath(_))
        ));
        assert!(matches!(
            types.flipper_id(&actor("project", "gitlab-org/gitlab")),
            Err(ActorIdError::NotNumeric { .. })
        ));
        assert!(matches!(
            types.flipper_id(&actor("project", "007")),
            Err(ActorIdError::NotNumeric { .. })
        ));
        assert!(matches!(
            types.flipper_id(&actor("user", "1")),
            Err(ActorIdError::UnknownKind(_))
        ));
        assert!(matches!(
            types.flipper_id(&actor("repository", "@hashed/a.git:opt_out")),
            Err(ActorIdError::OptOut(_))
        ));
        assert_eq!(types.actor("Project:123"), actor("project", "123"));
        assert_eq!(types.actor("Namespaces::UserNamespace:9"), actor("namespace", "9"));
        assert_eq!(types.actor("Ci::Runner:5"), actor("runner", "5"));
        assert_eq!(types.actor("Project:6:opt_out"), actor("project", "6:opt_out"));
        assert_eq!(
            types.actor("Organizations::Organization:1"),
            actor("Organizations::Organization", "1")
        );
        assert_eq!(types.actor("admin"), actor("", "admin"));
    }

    #[test]
    fn read_state_follows_flipper() {
        let types = types();
        let read = |pairs: &[(&str, &str)]| read_state(&rows(pairs), &types).unwrap();
        assert_eq!(read(&[]), Stored::Boolean(false));
        assert_eq!(read(&[("boolean", "true")]), Stored::Boolean(true));
        assert_eq!(read(&[("boolean", "1")]), Stored::Boolean(true));
        assert_eq!(read(&[("boolean", "t")]), Stored::Boolean(false));
        assert_eq!(read(&[("percentage_of_actors", "0")]), Stored::Boolean(false));
        assert_eq!(read(&[("percentage_of_time", "100")]), Stored::Boolean(true));
        assert_eq!(
            read(&[("percentage_of_actors", "25"), ("actors", "Project:1"), ("groups", "g")]),
            Stored::Gates(GateSet {
                percentage_of_actors: Some(25_000),
                percentage_of_time: None,
                actors: [actor("project", "1")].into(),
                groups: ["g".to_string()].into(),
            })
        );
        assert_eq!(
            read(&[
                ("boolean", "true"),
                ("actors", "Project:6:opt_out"),
                ("actors", "Project:7")
            ]),
            Stored::Gates(GateSet {
                percentage_of_actors: None,
                percentage_of_time: Some(100_000),
                actors: [actor("project", "6:opt_out")].into(),
                groups: BTreeSet::new(),
            })
        );
        // Two rows that read alike are one value; two that differ are refused.
        assert_eq!(
            read(&[("percentage_of_actors", "25"), ("percentage_of_actors", "25.0")]),
            read(&[("percentage_of_actors", "25.0")])
        );
        let error = read_state(
            &rows(&[("percentage_of_actors", "25"), ("percentage_of_actors", "50")]),
            &types,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "2 `percentage_of_actors` rows that disagree (`25`, `50`); Flipper reads whichever the database returns first"
        );
    }

    #[test]
    fn gate_rows_round_trip() {
        let types = types();
        let state = Stored::Gates(GateSet {
            percentage_of_actors: Some(33_333),
            percentage_of_time: Some(500),
            actors: [actor("project", "1"), actor("repository", "@hashed/a/b.git")].into(),
            groups: ["gitlab_team_members".to_string()].into(),
        });
        let written = gate_rows(&state, &types).unwrap();
        let as_rows: Vec<GateRow> = written
            .iter()
            .map(|(key, value)| GateRow {
                key: key.clone(),
                value: Some(value.clone()),
            })
            .collect();
        assert_eq!(read_state(&as_rows, &types).unwrap(), state);
        assert!(written.contains(&("percentage_of_actors".to_string(), "33.333".to_string())));
        assert!(written.contains(&("percentage_of_time".to_string(), "0.5".to_string())));
        assert_eq!(gate_rows(&Stored::Boolean(false), &types).unwrap(), BTreeSet::new());
        assert_eq!(
            gate_rows(&Stored::Boolean(true), &types).unwrap(),
            [("boolean".to_string(), "true".to_string())].into()
        );
    }

    #[test]
    fn actor_types_refuse_shared_flipper_type() {
        let kind = ActorKind {
            description: None,
            flipper_type: "Group".into(),
            api_param: None,
            unleash_field: None,
        };
        let error = ActorTypes::new(&[("a".to_string(), kind.clone()), ("b".to_string(), kind)].into()).unwrap_err();
        assert!(
            error.contains("`a` and `b` both have the flipper_type `Group`"),
            "{error}"
        );
    }
}
