use super::*;

fn actor(kind: &str, id: &str) -> Actor {
    Actor {
        kind: kind.into(),
        id: id.into(),
    }
}

fn gates(poa: Option<u32>, pot: Option<u32>, actors: &[(&str, &str)], groups: &[&str]) -> Option<Stored> {
    Some(Stored::Gates(GateSet {
        percentage_of_actors: poa,
        percentage_of_time: pot,
        actors: actors.iter().map(|(kind, id)| actor(kind, id)).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }))
}

/// The state forms every transition is tested between.
fn forms() -> Vec<(&'static str, Option<Stored>)> {
    vec![
        ("absent", None),
        ("true", Some(Stored::Boolean(true))),
        ("false", Some(Stored::Boolean(false))),
        ("25% actors", gates(Some(25_000), None, &[], &[])),
        ("50% actors", gates(Some(50_000), None, &[], &[])),
        ("10% time", gates(None, Some(10_000), &[], &[])),
        ("project A", gates(None, None, &[("project", "a")], &[])),
        (
            "projects A+B",
            gates(None, None, &[("project", "a"), ("project", "b")], &[]),
        ),
        ("25% + project A", gates(Some(25_000), None, &[("project", "a")], &[])),
        ("group team", gates(None, None, &[], &["gitlab_team_members"])),
    ]
}

fn plan_one(from: &Option<Stored>, to: &Option<Stored>) -> Plan {
    let desired: EnvironmentState = to.iter().map(|s| ("f".to_string(), s.clone())).collect();
    let actual: EnvironmentState = from.iter().map(|s| ("f".to_string(), s.clone())).collect();
    let options = DiffOptions {
        known: ["f"].into(),
        absent: ["f"].into(),
        ..DiffOptions::default()
    };
    diff("production", &desired, &actual, &options)
}

// Every transition between every pair of state forms: the change and the API calls it takes.
#[test]
fn plan_every_transition() {
    let mut table = String::new();
    for (from_name, from) in forms() {
        for (to_name, to) in forms() {
            let plan = plan_one(&from, &to);
            let line = match plan.changes.as_slice() {
                [] => "no change".to_string(),
                [change] => {
                    let operations: Vec<String> = change.operations().iter().map(ToString::to_string).collect();
                    format!("{:?}: {}", change.action, operations.join("; "))
                }
                more => panic!("one flag gave {} changes", more.len()),
            };
            table.push_str(&format!("{from_name:>15} → {to_name:<15} {line}\n"));
        }
    }
    insta::assert_snapshot!(table);
}

// A plan applied to the actual state gives the desired state: the operations are complete.
#[test]
fn plan_operations_reach_target() {
    for (_, from) in forms() {
        for (_, to) in forms() {
            let plan = plan_one(&from, &to);
            let mut state = from.clone();
            for change in &plan.changes {
                for operation in change.operations() {
                    state = simulate(state, &operation);
                }
            }
            assert_eq!(
                state,
                to,
                "{from:?} → {to:?}: {:?}",
                plan.changes.iter().map(Change::operations).collect::<Vec<_>>()
            );
        }
    }
}

/// What Flipper (through GitLab's API) does with one operation.
fn simulate(state: Option<Stored>, operation: &Operation) -> Option<Stored> {
    let mut gates = match &state {
        Some(Stored::Gates(gates)) => gates.clone(),
        _ => GateSet::default(),
    };
    match operation {
        Operation::Remove => return None,
        Operation::Enable => return Some(Stored::Boolean(true)),
        Operation::Disable => return Some(Stored::Boolean(false)),
        Operation::PercentageOfActors(p) => {
            assert!(
                !matches!(state, Some(Stored::Boolean(true))),
                "GitLab refuses a percentage on a fully-on flag"
            );
            gates.percentage_of_actors = Some(*p);
        }
        Operation::PercentageOfTime(p) => {
            assert!(
                !matches!(state, Some(Stored::Boolean(true))),
                "GitLab refuses a percentage on a fully-on flag"
            );
            gates.percentage_of_time = Some(*p);
        }
        Operation::AddActor(actor) => {
            gates.actors.insert(actor.clone());
        }
        Operation::RemoveActor(actor) => {
            gates.actors.remove(actor);
        }
        Operation::AddGroup(group) => {
            gates.groups.insert(group.clone());
        }
        Operation::RemoveGroup(group) => {
            gates.groups.remove(group);
        }
    }
    if gates.is_empty() {
        Some(Stored::Boolean(false))
    } else {
        Some(Stored::Gates(gates))
    }
}

// Orphans and flags of the registry with no entry for the environment are kept unless pruning;
// a flag whose file writes `absent` there is deleted.
#[test]
fn plan_deletes_only_known_flags_without_prune() {
    let actual: EnvironmentState = [
        ("gone".to_string(), Stored::Boolean(true)),
        ("left_out".to_string(), Stored::Boolean(true)),
        ("written_absent".to_string(), Stored::Boolean(true)),
    ]
    .into();
    let desired = EnvironmentState::new();
    let mut options = DiffOptions {
        known: ["left_out", "written_absent"].into(),
        absent: ["written_absent"].into(),
        ..DiffOptions::default()
    };
    let plan = diff("production", &desired, &actual, &options);
    let shown: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["- written_absent: true → (absent)"]);
    assert_eq!(plan.kept_orphans, ["gone"]);
    assert_eq!(plan.kept_without_entry, ["left_out"]);
    options.prune = true;
    let plan = diff("production", &desired, &actual, &options);
    let shown: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "- gone: true → (absent) (not in the registry)",
            "- left_out: true → (absent)",
            "- written_absent: true → (absent)"
        ]
    );
}

// Required flags go on before their dependants and off after them.
#[test]
fn plan_orders_by_requires() {
    let on = Stored::Boolean(true);
    let requires: BTreeMap<&str, Vec<&str>> = [("a_dependant", vec!["z_base"]), ("z_base", vec![])].into();
    let options = DiffOptions {
        known: ["a_dependant", "z_base"].into(),
        absent: ["a_dependant", "z_base"].into(),
        prune: false,
        requires,
    };
    let both: EnvironmentState = [
        ("a_dependant".to_string(), on.clone()),
        ("z_base".to_string(), on.clone()),
    ]
    .into();
    let up = diff("e", &both, &EnvironmentState::new(), &options);
    let names: Vec<&str> = up.changes.iter().map(|c| c.flag.as_str()).collect();
    assert_eq!(names, ["z_base", "a_dependant"]);
    let down = diff("e", &EnvironmentState::new(), &both, &options);
    let names: Vec<&str> = down.changes.iter().map(|c| c.flag.as_str()).collect();
    assert_eq!(names, ["a_dependant", "z_base"]);
}
