//! The `requires` graph: which flags require which, its cycles and its chain depths, each in
//! time linear in the flags and their `requires`.
//!
//! A `requires` chain may be thousands of flags long, so nothing here recurses: Tarjan's
//! algorithm and the breadth-first search keep their own stacks.
//! It is pure: it is handed names and returns indices and numbers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Flags as nodes (sorted by name) and `requires` as edges from a flag to each flag it requires.
#[derive(Clone, Debug, Default)]
pub struct Graph<'a> {
    names: Vec<&'a str>,
    index: BTreeMap<&'a str, usize>,
    edges: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    /// The graph of `requires`: each flag's name and the names it requires.
    /// A name only required is a node without edges; a flag requiring itself has no such edge.
    pub fn new<I, R>(requires: I) -> Graph<'a>
    where
        I: IntoIterator<Item = (&'a str, R)>,
        R: IntoIterator<Item = &'a str>,
    {
        let pairs: Vec<(&'a str, Vec<&'a str>)> = requires
            .into_iter()
            .map(|(flag, required)| (flag, required.into_iter().collect()))
            .collect();
        let names: BTreeSet<&'a str> = pairs
            .iter()
            .flat_map(|(flag, required)| std::iter::once(*flag).chain(required.iter().copied()))
            .collect();
        let names: Vec<&'a str> = names.into_iter().collect();
        let index: BTreeMap<&'a str, usize> = names.iter().enumerate().map(|(at, name)| (*name, at)).collect();
        let mut edges = vec![Vec::new(); names.len()];
        for (flag, required) in &pairs {
            let from = index[flag];
            for target in required {
                let to = index[target];
                if to != from && !edges[from].contains(&to) {
                    edges[from].push(to);
                }
            }
        }
        Graph { names, index, edges }
    }

    /// The name of node `node`.
    pub fn name(&self, node: usize) -> &'a str {
        self.names[node]
    }

    /// The node of `name`, if the graph has one.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The strongly connected components (Tarjan's algorithm), each sorted, in an order where
    /// every component comes after every component it requires.
    pub fn components(&self) -> Vec<Vec<usize>> {
        const UNVISITED: usize = usize::MAX;
        let count = self.names.len();
        let mut index = vec![UNVISITED; count];
        let mut low = vec![0; count];
        let mut on_stack = vec![false; count];
        let mut stack: Vec<usize> = Vec::new();
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let mut next = 0;
        let mut components = Vec::new();
        for root in 0..count {
            if index[root] != UNVISITED {
                continue;
            }
            // The frames of the depth-first search: a node and the position of its next edge.
            macro_rules! visit {
                ($node:expr) => {{
                    let node = $node;
                    index[node] = next;
                    low[node] = next;
                    next += 1;
                    stack.push(node);
                    on_stack[node] = true;
                    calls.push((node, 0));
                }};
            }
            visit!(root);
            while let Some(frame) = calls.last_mut() {
                let (node, position) = *frame;
                if let Some(&target) = self.edges[node].get(position) {
                    frame.1 += 1;
                    if index[target] == UNVISITED {
                        visit!(target);
                    } else if on_stack[target] {
                        low[node] = low[node].min(index[target]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    low[parent] = low[parent].min(low[node]);
                }
                if low[node] == index[node] {
                    let mut component = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack[member] = false;
                        component.push(member);
                        if member == node {
                            break;
                        }
                    }
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
        components
    }

    /// Per node, the length of the longest `requires` chain below it; flags in one cycle count
    /// as one, so the depth is defined whatever the graph.
    pub fn depths(&self) -> Vec<usize> {
        let components = self.components();
        let mut component_of = vec![0; self.names.len()];
        for (at, component) in components.iter().enumerate() {
            for &node in component {
                component_of[node] = at;
            }
        }
        // Components come after those they require, so each one's targets are done.
        let mut depth_of_component = vec![0; components.len()];
        for (at, component) in components.iter().enumerate() {
            depth_of_component[at] = component
                .iter()
                .flat_map(|&node| &self.edges[node])
                .filter(|&&target| component_of[target] != at)
                .map(|&target| depth_of_component[component_of[target]] + 1)
                .max()
                .unwrap_or(0);
        }
        component_of.iter().map(|&at| depth_of_component[at]).collect()
    }

    /// A shortest path along `requires` from `from` to `to` through nodes in `within` only,
    /// both ends included (breadth first).
    pub fn path(&self, from: usize, to: usize, within: &BTreeSet<usize>) -> Option<Vec<usize>> {
        let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(current) = queue.pop_front() {
            if current == to {
                let mut path = vec![current];
                let mut cursor = current;
                while let Some(&before) = previous.get(&cursor) {
                    path.push(before);
                    cursor = before;
                }
                path.reverse();
                return Some(path);
            }
            for &next in &self.edges[current] {
                if within.contains(&next) && seen.insert(next) {
                    previous.insert(next, current);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&'static str, &[&'static str])]) -> Graph<'static> {
        Graph::new(pairs.iter().map(|(flag, required)| (*flag, required.iter().copied())))
    }

    #[test]
    fn components_find_cycles_and_order_them() {
        let graph = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a", "d"]),
            ("d", &[]),
            ("e", &["e"]),
        ]);
        let components = graph.components();
        let named: Vec<Vec<&str>> = components
            .iter()
            .map(|component| component.iter().map(|&node| graph.name(node)).collect())
            .collect();
        assert_eq!(named, [vec!["d"], vec!["a", "b", "c"], vec!["e"]]);
    }

    #[test]
    fn depths_are_longest_chains() {
        let graph = graph(&[("a", &["b", "d"]), ("b", &["c"]), ("c", &[]), ("d", &[])]);
        let depths = graph.depths();
        let depth = |name: &str| depths[graph.node(name).unwrap()];
        assert_eq!((depth("a"), depth("b"), depth("c"), depth("d")), (2, 1, 0, 0));
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let names: Vec<String> = (0..100_000).map(|n| format!("f{n:06}")).collect();
        let graph = Graph::new(
            names
                .iter()
                .zip(names.iter().skip(1))
                .map(|(flag, next)| (flag.as_str(), [next.as_str()])),
        );
        assert_eq!(graph.components().len(), 100_000);
        assert_eq!(graph.depths()[0], 99_999);
    }
}
