//! Checks of `requires`: dependencies between flags.

use std::collections::BTreeSet;

use crate::diagnostic::Diagnostic;
use crate::graph::Graph;
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
    // Linear in the flags and their `requires`: the cycles are the strongly connected
    // components, and each is reported once, at the flag whose name sorts first, through each of
    // its `requires` that leads back to it by another way.
    let graph = Graph::new(
        registry
            .flags
            .iter()
            .map(|file| (file.flag.name.as_str(), file.flag.requires.iter().map(String::as_str))),
    );
    for component in graph.components() {
        if component.len() < 2 {
            continue;
        }
        let start = component[0];
        let start_name = graph.name(start);
        let within: BTreeSet<usize> = component.iter().copied().collect();
        let Some(file) = registry.flags.iter().find(|file| file.flag.name == start_name) else {
            continue;
        };
        let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
        for (position, first) in file.flag.requires.iter().enumerate() {
            let Some(first) = graph.node(first).filter(|node| within.contains(node) && *node != start) else {
                continue;
            };
            let Some(path) = graph.path(first, start, &within) else {
                continue;
            };
            let mut canonical = path.clone();
            canonical.sort_unstable();
            if !reported.insert(canonical) {
                continue;
            }
            let cycle: Vec<&str> = std::iter::once(start)
                .chain(path)
                .map(|node| graph.name(node))
                .collect();
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
