//! Checks of `requires`: dependencies between flags.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::Diagnostic;
use crate::model::Registry;

use super::at_value;

/// Ensure every flag named in `requires` exists and is not the flag itself.
pub(super) fn check_requires_known(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let known: BTreeSet<&str> = registry.names().collect();
    for file in &registry.flags {
        for (position, required) in file.flag.requires.iter().enumerate() {
            let pointer = format!("/requires/{position}");
            if *required == file.flag.name {
                out.push(
                    at_value(
                        "requires-unknown",
                        file,
                        &pointer,
                        format!("`{required}` requires itself"),
                    )
                    .with_help("remove the flag's own name from `requires`"),
                );
            } else if !known.contains(required.as_str()) {
                out.push(
                    at_value(
                        "requires-unknown",
                        file,
                        &pointer,
                        format!("`{required}` is not a flag in this registry"),
                    )
                    .with_help("name an existing flag, or add its file first"),
                );
            }
        }
    }
}

/// Ensure `requires` has no cycles.
pub(super) fn check_requires_cycles(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let edges: BTreeMap<&str, Vec<&str>> = registry
        .flags
        .iter()
        .map(|file| {
            let targets = file
                .flag
                .requires
                .iter()
                .map(String::as_str)
                .filter(|r| *r != file.flag.name)
                .collect();
            (file.flag.name.as_str(), targets)
        })
        .collect();
    let mut reported: BTreeSet<Vec<&str>> = BTreeSet::new();
    for file in &registry.flags {
        let start = file.flag.name.as_str();
        for (position, first) in file.flag.requires.iter().enumerate() {
            if first == start {
                continue;
            }
            let Some(path) = path_back(&edges, first, start) else {
                continue;
            };
            let mut cycle: Vec<&str> = std::iter::once(start).chain(path.iter().copied()).collect();
            // Report each cycle once, at the flag whose name sorts first.
            let mut canonical = cycle.clone();
            canonical.sort_unstable();
            if cycle.iter().min() != Some(&start) || !reported.insert(canonical) {
                continue;
            }
            cycle.push(start);
            out.push(
                at_value(
                    "requires-cycle",
                    file,
                    &format!("/requires/{position}"),
                    format!("`requires` forms a cycle: {}", cycle.join(" → ")),
                )
                .with_help("break the cycle: one of these flags must be able to go on first"),
            );
        }
    }
}

/// A path of flags from `from` to `to` along `requires`, if there is one (breadth first).
fn path_back<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>, from: &'a str, to: &str) -> Option<Vec<&'a str>> {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(current) = queue.pop_front() {
        if current == to {
            let mut path = vec![current];
            let mut cursor = current;
            while let Some(before) = previous.get(cursor) {
                path.push(before);
                cursor = before;
            }
            path.reverse();
            path.pop();
            return Some(path);
        }
        for next in edges.get(current).into_iter().flatten() {
            if seen.insert(next) {
                previous.insert(next, current);
                queue.push_back(next);
            }
        }
    }
    None
}
