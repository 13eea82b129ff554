//! Dependencies between programs (`depends_on`, supervisord-dependent-startup's
//! `dependent_startup_wait_for`): what one is, and the rules over the whole graph, checked
//! once every program is read, the same for YAML and INI: every name is a program, a
//! condition has what it needs (`healthy` a health check, `ready` a `ready: notify`), and
//! there is no cycle (the error lists it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::program::Place;
use crate::values::{hint, quote, Words};
use crate::{ProgramSpec, Readiness};

/// A program another waits for before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The program waited for (each of its processes).
    pub program: String,
    /// What it must have reached.
    pub condition: Condition,
    /// The dependent is stopped when this program stops running, and started again when it
    /// meets the condition again (`restart: true`).
    pub restart: bool,
}

/// What a program waited for must have reached, each of its processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// RUNNING, as taskmaster counts it (after `starttime`, or READY=1 with `ready: notify`).
    Running,
    /// RUNNING, and its health check has passed since its last start.
    Healthy,
    /// Ended (EXITED) with an expected exit code: a one-shot job such as a migration.
    Exited,
    /// It said READY=1 (it has `ready: notify`).
    Ready,
}

impl Words for Condition {
    const WORDS: &'static [(&'static str, Condition)] = &[
        ("running", Condition::Running),
        ("healthy", Condition::Healthy),
        ("exited", Condition::Exited),
        ("ready", Condition::Ready),
    ];
}

impl Condition {
    /// Its word in the configuration (`running`...).
    pub fn word(self) -> &'static str {
        Words::word(self)
    }

    /// Reads a condition's word, in any case.
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        <Condition as Words>::parse(text)
    }
}

/// supervisord-dependent-startup's `dependent_startup_wait_for`: `db:running cache:exited`,
/// each a program and the state it must be in (the plugin's `running` and `exited`).
pub(crate) fn parse_wait_for(text: &str) -> Result<Vec<Dependency>, String> {
    let mut dependencies = Vec::new();
    for item in text.split_whitespace() {
        let Some((program, state)) = item.rsplit_once(':') else {
            return Err(format!(
                "expected PROGRAM:STATE items such as db:running, found {}",
                quote(item)
            ));
        };
        let condition = match state.to_ascii_lowercase().as_str() {
            "running" => Condition::Running,
            "exited" => Condition::Exited,
            _ => {
                return Err(format!(
                    "{}: taskmaster waits for the states running and exited, found {}",
                    quote(item),
                    quote(state)
                ))
            }
        };
        dependencies.push(Dependency {
            program: program.to_string(),
            condition,
            restart: false,
        });
    }
    Ok(dependencies)
}

/// Every error of the dependency graph of `programs`, each at its place; `places` says where
/// each program's dependencies were written.
pub(crate) fn check(
    programs: &BTreeMap<String, ProgramSpec>,
    places: &BTreeMap<String, Place>,
) -> Vec<(Place, ConfigError)> {
    let mut errors = Vec::new();
    // The usual file: nothing to check, and 10,000 programs need not be looked at twice more.
    if programs.values().all(|spec| spec.depends_on.is_empty()) {
        return errors;
    }
    let names: Vec<&str> = programs.keys().map(String::as_str).collect();
    for (name, spec) in programs {
        let Some(place) = places.get(name) else {
            continue;
        };
        for dependency in &spec.depends_on {
            let Some(other) = programs.get(&dependency.program) else {
                let message = format!(
                    "depends on {}, which is no program{}",
                    quote(&dependency.program),
                    hint(&dependency.program, &names)
                );
                errors.push((place.clone(), place.say(message)));
                continue;
            };
            if &dependency.program == name {
                errors.push((
                    place.clone(),
                    place.say(format!("{name} depends on itself")),
                ));
                continue;
            }
            let missing = match dependency.condition {
                Condition::Healthy if other.healthcheck.is_none() => Some("no healthcheck"),
                Condition::Ready if other.ready != Readiness::Notify => Some("no `ready: notify`"),
                _ => None,
            };
            if let Some(missing) = missing {
                let message = format!(
                    "waits for {} to be {}, but it has {missing}: it never will be",
                    dependency.program,
                    dependency.condition.word()
                );
                errors.push((place.clone(), place.say(message)));
            }
        }
    }
    if let Some(cycle) = find_cycle(programs) {
        if let Some(place) = places.get(&cycle[0]) {
            let message = format!("a cycle of dependencies: {}", cycle.join(" -> "));
            errors.push((place.clone(), place.say(message)));
        }
    }
    errors
}

/// A cycle of `depends_on` (its programs, the first again at the end), if there is one:
/// a depth-first search that keeps the path it is on.
fn find_cycle(programs: &BTreeMap<String, ProgramSpec>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> =
        programs.keys().map(|n| (n.as_str(), Mark::New)).collect();
    for start in programs.keys() {
        if marks.get(start.as_str()) != Some(&Mark::New) {
            continue;
        }
        // Each frame: a program, and the index of its next dependency to visit.
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        marks.insert(start.as_str(), Mark::OnPath);
        while let Some(&mut (name, ref mut next)) = path.last_mut() {
            let dependencies = programs.get(name).map_or(&[][..], |s| &s.depends_on[..]);
            let Some(dependency) = dependencies.get(*next) else {
                marks.insert(name, Mark::Done);
                path.pop();
                continue;
            };
            *next += 1;
            let to = dependency.program.as_str();
            match marks.get(to) {
                Some(Mark::New) => {
                    marks.insert(to, Mark::OnPath);
                    path.push((to, 0));
                }
                Some(Mark::OnPath) => {
                    let from = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|(n, _)| n.to_string()).collect();
                    cycle.push(to.to_string());
                    return Some(cycle);
                }
                // Done, or no such program (an error of its own).
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, ProgramSpec> {
        edges
            .iter()
            .map(|(name, needs)| {
                let mut spec = crate::program::defaults(name);
                spec.depends_on = needs
                    .iter()
                    .map(|n| Dependency {
                        program: n.to_string(),
                        condition: Condition::Running,
                        restart: false,
                    })
                    .collect();
                (name.to_string(), spec)
            })
            .collect()
    }

    #[test]
    fn a_cycle_is_found_and_listed_in_order() {
        let programs = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        assert_eq!(find_cycle(&programs).unwrap(), ["a", "b", "c", "a"]);
    }

    #[test]
    fn a_diamond_is_no_cycle() {
        let programs = graph(&[
            ("web", &["db", "cache"]),
            ("db", &["disk"]),
            ("cache", &["disk"]),
            ("disk", &[]),
        ]);
        assert_eq!(find_cycle(&programs), None);
    }

    #[test]
    fn wait_for_reads_the_plugins_items_and_refuses_other_states() {
        let read = parse_wait_for("db:running  migrate:EXITED").unwrap();
        assert_eq!(read[0].program, "db");
        assert_eq!(read[0].condition, Condition::Running);
        assert_eq!(read[1].condition, Condition::Exited);
        assert!(parse_wait_for("db").unwrap_err().contains("PROGRAM:STATE"));
        assert!(parse_wait_for("db:fatal")
            .unwrap_err()
            .contains("running and exited"));
    }
}
