//! The real Flipper as an oracle for the `flipper-sql` tests, and the expected side.
//!
//! `read_through_flipper` runs `flipper_oracle.rb` (Debian's ruby-flipper with the ActiveRecord
//! adapter, set up as GitLab sets it up) and returns what Flipper reads for each flag.
//! `flipper_view` and `flipper_enabled` say what it should read for a desired state, the latter
//! through flagops's own evaluation (`flagops::eval`, which `flagops eval` prints).

use std::collections::BTreeMap;

use flagops::backends::flipper_sql;
use flagops::config::Config;
use flagops::state::{Actor, Stored};
use serde::Deserialize;
use serde_json::json;

use crate::harness::repo_root;
use crate::postgres::{self, Database};

/// What the Ruby oracle prints for one flag.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub(crate) struct FlipperView {
    pub(crate) persisted: bool,
    pub(crate) state: String,
    pub(crate) boolean: bool,
    pub(crate) actors: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) percentage_of_actors: f64,
    pub(crate) percentage_of_time: f64,
    pub(crate) enabled: BTreeMap<String, bool>,
}

/// The gate values and state Flipper should read for `state` (enabled? is filled in apart).
pub(crate) fn flipper_view(state: Option<&Stored>, config: &Config) -> FlipperView {
    let mut view = FlipperView {
        state: "off".into(),
        ..FlipperView::default()
    };
    let Some(state) = state else { return view };
    view.persisted = true;
    match state {
        Stored::Boolean(on) => {
            view.boolean = *on;
            if *on {
                view.state = "on".into();
            }
        }
        Stored::Gates(gates) => {
            view.percentage_of_actors = gates.percentage_of_actors.map_or(0.0, as_written);
            view.percentage_of_time = gates.percentage_of_time.map_or(0.0, as_written);
            view.actors = gates.actors.iter().map(|actor| flipper_id(actor, config)).collect();
            view.actors.sort();
            view.groups = gates.groups.iter().cloned().collect();
            view.state = if gates.is_empty() { "off" } else { "conditional" }.into();
        }
    }
    view
}

/// Whether GitLab's `Feature.enabled?(flag, actor)` is true for a flag stored as `state`, by
/// Flipper's rules, on a call whose percentage-of-time draw is `draw`. The answer is
/// `flagops::eval::evaluate`'s, with a random outcome settled by `flagops::eval::time_gate_opens`,
/// so the registry's own evaluation is what the real Flipper is checked against.
pub(crate) fn flipper_enabled(
    flag: &str,
    state: Option<&Stored>,
    actor: Option<&str>,
    config: &Config,
    team_members: &[String],
    draw: f64,
) -> bool {
    // The expected side is flagops's own evaluation (`flagops eval`), which Flipper must agree with.
    let subject = flagops::eval::Subject {
        actor: actor.map(str::to_string),
        groups: match actor {
            Some(id) if team_members.iter().any(|member| member == id) => vec!["gitlab_team_members".to_string()],
            _ => Vec::new(),
        },
    };
    match flagops::eval::evaluate(flag, false, state, &subject, config).outcome {
        flagops::eval::Outcome::On => true,
        flagops::eval::Outcome::Off => false,
        flagops::eval::Outcome::Random => {
            let Some(Stored::Gates(gates)) = state else {
                panic!("`{flag}`: only a percentage of time is random, and it is a gate")
            };
            flagops::eval::time_gate_opens(gates.percentage_of_time.expect("a percentage of time"), draw)
        }
    }
}

/// A percentage as the backend writes it and Ruby reads it back: a float from its text.
pub(crate) fn as_written(thousandths: u32) -> f64 {
    flipper_sql::rows::percentage_text(thousandths).parse().unwrap()
}

/// `Project:278964` for `project:278964`, from the config's `flipper_type`.
pub(crate) fn flipper_id(actor: &Actor, config: &Config) -> String {
    format!("{}:{}", config.actor_kinds[&actor.kind].flipper_type, actor.id)
}

/// Runs the Ruby oracle on `flags`, checking `enabled?` for `actors` with every
/// percentage-of-time draw forced to `draw`.
pub(crate) fn read_through_flipper(
    database: &Database,
    flags: &[&str],
    actors: &[String],
    team_members: &[String],
    draw: f64,
) -> BTreeMap<String, FlipperView> {
    use std::io::Write;
    let input = json!({
        "flags": flags,
        "actors": actors,
        "groups": {"gitlab_team_members": team_members},
        "draw": draw,
    });
    let mut child = std::process::Command::new("ruby")
        .arg(repo_root().join("tests/it/flipper_oracle.rb"))
        .env("PGHOST", database.cluster().socket_dir())
        .env("PGPORT", database.cluster().port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", database.name())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ruby");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Ruby oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Whether Ruby with Flipper's ActiveRecord adapter and the pg gem can run; under CI it must.
pub(crate) fn ruby_flipper_available() -> bool {
    let works = std::process::Command::new("ruby")
        .args([
            "-e",
            "require 'active_record'; require 'flipper'; require 'flipper/adapters/active_record'; require 'pg'",
        ])
        .output()
        .is_ok_and(|output| output.status.success());
    works || postgres::missing::<()>("Ruby with ruby-flipper and ruby-pg").is_some()
}
