//! Order between programs (`depends_on`): a process whose program depends on others starts
//! once each process of those is where its condition says (RUNNING, healthy, EXITED with an
//! expected code, ready), and waits, STOPPED, until then; dependents stop before what they
//! depend on; with `restart: true`, a dependent stops when its dependency stops running and
//! starts again once the dependency is back.
//!
//! Only starts that begin afresh wait (autostart, a start request, a reload's addition): a
//! restart by `autorestart` or a retry after BACKOFF does not, since the process had its
//! dependencies when it started. A start pulls in the dependencies that nothing else will
//! start (STOPPED, never asked to run); a start by request also those that have ended.

use std::collections::{BTreeMap, BTreeSet};

use taskmaster_config::{Condition, Dependency};

use super::{log, Supervisor};
use crate::process::{AfterStop, Health, Process, State};
use crate::time::Time;
use crate::Action;

/// Which dependencies at rest a start starts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pull {
    /// None: the dependent waits for them to be started (`restart: true`, whose dependency
    /// a user may have stopped on purpose).
    Nothing,
    /// Those never started (a program that starts by itself, at start or by a reload).
    NeverStarted,
    /// Every one at rest, ended or stopped: a user asked for the start.
    AtRest,
}

impl Supervisor {
    /// Starts process `name` now if everything it depends on is there, or makes it wait
    /// (STOPPED, `waiting`) until it is; `pull` says which of its dependencies at rest it
    /// starts first.
    pub(super) fn start_or_wait(
        &mut self,
        name: &str,
        pull: Pull,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get(name) else {
            return;
        };
        let dependencies = p.spec.depends_on.clone();
        if pull != Pull::Nothing {
            for dependency in &dependencies {
                self.pull_in(name, dependency, pull, now, out);
            }
        }
        let unmet = self.unmet(name);
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        if unmet.is_empty() {
            p.waiting = false;
            self.spawn(name, now, out);
        } else if !p.waiting {
            p.waiting = true;
            log(out, name, format!("waiting for {}", unmet.join(", ")));
        }
    }

    /// Starts the processes of `dependency` that must start for `dependent` and that nothing
    /// else will start.
    fn pull_in(
        &mut self,
        dependent: &str,
        dependency: &Dependency,
        pull: Pull,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let idle: Vec<String> = self
            .processes
            .values()
            .filter(|q| q.program() == dependency.program)
            .filter(|q| !q.waiting && !q.start_pending() && !meets(q, dependency.condition))
            .filter(|q| match (q.state, pull) {
                (_, Pull::Nothing) => false,
                (State::Stopped, Pull::NeverStarted) => q.started_at.is_none(),
                (State::Stopped | State::Exited | State::Fatal | State::Unknown, Pull::AtRest) => {
                    true
                }
                _ => false,
            })
            .map(|q| q.name.clone())
            .collect();
        for name in idle {
            log(
                out,
                &name,
                format!("starting it first: {dependent} depends on it"),
            );
            if let Some(q) = self.processes.get_mut(&name) {
                // A start by request begins afresh, as `start` itself does.
                q.backoff = 0;
                q.restarts_in_row = 0;
            }
            self.start_or_wait(&name, pull, now, out);
        }
    }

    /// What process `name` still waits for, one text each: `db (BACKOFF)`, `db (RUNNING,
    /// not yet healthy)`; empty when everything is there.
    pub(super) fn unmet(&self, name: &str) -> Vec<String> {
        // Without dependencies nothing is unmet: no grouping of every process for that.
        if self
            .processes
            .get(name)
            .is_none_or(|p| p.spec.depends_on.is_empty())
        {
            return Vec::new();
        }
        self.unmet_in(name, &self.by_program())
    }

    /// [`Self::unmet`], with the processes of each program already grouped (`by_program`):
    /// what is asked after every event, for every waiting process, stays linear.
    fn unmet_in(&self, name: &str, by_program: &BTreeMap<&str, Vec<&Process>>) -> Vec<String> {
        let Some(p) = self.processes.get(name) else {
            return Vec::new();
        };
        let mut unmet = Vec::new();
        for dependency in &p.spec.depends_on {
            let processes: &[&Process] = by_program
                .get(dependency.program.as_str())
                .map_or(&[], Vec::as_slice);
            if processes.is_empty() {
                unmet.push(format!("{} (not in the configuration)", dependency.program));
                continue;
            }
            // One whose stop waits for its dependents (a restart of both) is going away.
            let going = |q: &Process| self.held_stops.contains(&q.name);
            let unmet_by = |q: &&&Process| !meets(q, dependency.condition) || going(q);
            if let Some(q) = processes.iter().find(unmet_by) {
                let short = match going(q) {
                    true => "to be stopped".to_string(),
                    false => short_of(q, dependency.condition),
                };
                unmet.push(format!("{} ({short})", q.name));
            }
        }
        unmet
    }

    /// Whether a waiting process cannot start unless someone acts: something it waits for
    /// is FATAL, or at rest with nothing to start it, or itself waiting for such a thing.
    pub(super) fn is_blocked(&self, name: &str) -> bool {
        self.is_blocked_within(name, self.processes.len())
    }

    /// [`Self::is_blocked`], looking at most `depth` dependencies deep (the graph has no
    /// cycle, but a bound keeps a mistake from recursing without end).
    fn is_blocked_within(&self, name: &str, depth: usize) -> bool {
        let Some(p) = self.processes.get(name) else {
            return false;
        };
        if depth == 0 {
            return false;
        }
        p.spec.depends_on.iter().any(|dependency| {
            self.processes_of_program(&dependency.program)
                .iter()
                .filter(|q| !meets(q, dependency.condition))
                .any(|q| match q.state {
                    State::Fatal => true,
                    _ if q.waiting => self.is_blocked_within(&q.name, depth - 1),
                    State::Stopped | State::Exited | State::Unknown => !q.start_pending(),
                    _ => false,
                })
        })
    }

    /// After every event: starts the waiting processes whose dependencies are all there now,
    /// and stops those that must restart with a dependency that has stopped running.
    pub(super) fn settle_dependencies(&mut self, now: Time, out: &mut Vec<Action>) {
        // Without any `depends_on` nothing waits, and nothing restarts with another.
        if self.shutting_down || !self.refresh_specs().dependencies {
            return;
        }
        self.restart_with_dependencies(now, out);
        // A singleton standing by waits for its key, which `settle_cluster` sees to.
        let waiting: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.waiting && (!p.spec.singleton || self.may_run(p.program(), now)))
            .map(|p| p.name.clone())
            .collect();
        // Grouped once: a start below changes states, not which process is whose.
        let ready: Vec<String> = {
            let by_program = self.by_program();
            waiting
                .into_iter()
                .filter(|name| self.unmet_in(name, &by_program).is_empty())
                .collect()
        };
        for name in ready {
            // An earlier start of this round may have changed what this one waits for.
            if self.unmet(&name).is_empty() {
                if let Some(p) = self.processes.get_mut(&name) {
                    p.waiting = false;
                }
                log(
                    out,
                    &name,
                    "what it waits for is there: starting".to_string(),
                );
                self.spawn(&name, now, out);
            }
        }
    }

    /// `restart: true`: a dependent on its way up or up, whose dependency no longer runs, is
    /// stopped, and waits for the dependency to be back.
    fn restart_with_dependencies(&mut self, now: Time, out: &mut Vec<Action>) {
        let to_stop: Vec<(String, String)> = self
            .processes
            .values()
            .filter(|p| matches!(p.state, State::Starting | State::Running | State::Backoff))
            .filter(|p| !p.is_retiring())
            .filter_map(|p| {
                // An `exited` dependency is meant to stop running: no restart with it.
                let with_restart = |d: &&Dependency| d.restart && d.condition != Condition::Exited;
                let gone = p.spec.depends_on.iter().filter(with_restart).find(|d| {
                    self.processes_of_program(&d.program)
                        .iter()
                        .any(|q| q.state != State::Running)
                })?;
                Some((p.name.clone(), gone.program.clone()))
            })
            .collect();
        for (name, dependency) in to_stop {
            log(
                out,
                &name,
                format!("{dependency} stopped running: stopping, to start again once it is back"),
            );
            let _ = self.stop_process(&name, now, out);
            let Some(p) = self.processes.get_mut(&name) else {
                continue;
            };
            match p.state {
                State::Stopping => p.after_stop = AfterStop::WaitForDependencies,
                _ => p.waiting = true,
            }
        }
    }

    /// Whether a stop of process `name` must wait: a process that depends on it is stopping,
    /// or has a stop waiting too (dependents stop first).
    pub(super) fn stop_must_wait(&self, name: &str) -> bool {
        // Without any `depends_on` nothing waits: no look at every process per stop, which
        // would make a `stop all` quadratic.
        if self
            .index
            .specs
            .as_ref()
            .is_some_and(|specs| !specs.dependencies)
        {
            return false;
        }
        let Some(p) = self.processes.get(name) else {
            return false;
        };
        self.dependents_of(p.program())
            .any(|q| q.state == State::Stopping || self.held_stops.contains(&q.name))
    }

    /// Releases the held stops that no longer must wait.
    pub(super) fn release_held_stops(&mut self, now: Time, out: &mut Vec<Action>) {
        loop {
            let free: Vec<String> = self
                .held_stops
                .iter()
                .filter(|name| !self.stop_must_wait(name))
                .cloned()
                .collect();
            if free.is_empty() {
                return;
            }
            for name in free {
                self.held_stops.remove(&name);
                let _ = self.stop_process(&name, now, out);
            }
        }
    }

    /// The processes whose programs depend on `program`.
    pub(super) fn dependents_of<'a>(
        &'a self,
        program: &'a str,
    ) -> impl Iterator<Item = &'a Process> + 'a {
        self.processes
            .values()
            .filter(move |q| q.spec.depends_on.iter().any(|d| d.program == program))
    }

    /// The programs a process that still runs depends on: at a shutdown, a process of one of
    /// them may not be stopped yet. One look at every process.
    pub(super) fn depended_on_by_running(&self) -> BTreeSet<&str> {
        self.processes
            .values()
            .filter(|q| !q.state.is_stopped())
            .flat_map(|q| q.spec.depends_on.iter().map(|d| d.program.as_str()))
            .collect()
    }

    /// How deep each program is in the graph: 0 for one that depends on nothing, else one
    /// more than its deepest dependency. Dependents sort after what they depend on.
    pub(super) fn depths(&self) -> BTreeMap<String, usize> {
        let mut depths = BTreeMap::new();
        let programs = &self.config.programs;
        // Relaxed until nothing changes: at most one round per program (the graph has no
        // cycle), each round linear in the edges.
        for _ in 0..=programs.len() {
            let mut changed = false;
            for (name, spec) in programs {
                let depth = spec
                    .depends_on
                    .iter()
                    .map(|d| depths.get(&d.program).map_or(1, |depth| depth + 1))
                    .max()
                    .unwrap_or(0);
                if depths.get(name) != Some(&depth) {
                    depths.insert(name.clone(), depth);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        depths
    }

    /// The processes of each program, retiring ones aside.
    fn by_program(&self) -> BTreeMap<&str, Vec<&Process>> {
        let mut by_program: BTreeMap<&str, Vec<&Process>> = BTreeMap::new();
        for q in self.processes.values().filter(|q| !q.is_retiring()) {
            by_program.entry(q.program()).or_default().push(q);
        }
        by_program
    }

    fn processes_of_program(&self, program: &str) -> Vec<&Process> {
        self.processes
            .values()
            .filter(|q| q.program() == program && !q.is_retiring())
            .collect()
    }
}

/// Whether process `q` is where `condition` says.
fn meets(q: &Process, condition: Condition) -> bool {
    match condition {
        // RUNNING with `ready: notify` is READY=1 received (the config requires it for ready).
        Condition::Running | Condition::Ready => q.state == State::Running,
        Condition::Healthy => q.state == State::Running && q.health == Some(Health::Healthy),
        Condition::Exited => {
            q.state == State::Exited && q.last_exit.as_ref().is_some_and(|exit| exit.expected)
        }
    }
}

/// Where `q` stands, short, for "waiting for": its state, and what it lacks for `condition`.
fn short_of(q: &Process, condition: Condition) -> String {
    match (condition, q.state) {
        _ if q.waiting => "STOPPED, waiting".to_string(),
        (Condition::Healthy, State::Running) => "RUNNING, not yet healthy".to_string(),
        (Condition::Exited, State::Exited) => "EXITED with an unexpected code".to_string(),
        (_, state) => state.name().to_string(),
    }
}
