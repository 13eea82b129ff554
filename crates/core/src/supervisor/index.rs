//! What keeps the work of one event from growing with the number of processes: caches over
//! the records, never part of the state. Each is a hint that a lookup verifies against the
//! records themselves, or a summary that is rebuilt when it is unknown, so a supervisor read
//! back from its serialized state (a backup's), whose caches are empty, behaves exactly as
//! the one it copies; it only rebuilds them on first use.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use taskmaster_config::ProgramSpec;

use crate::process::Process;
use crate::time::Time;

/// The caches. Not serialized, and equal to any other: two supervisors with the same records
/// are the same supervisor.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    /// Process name by the pid of its child: every process with a child, once `pids_known`
    /// (lookups still verify against the record).
    pub pids: BTreeMap<u32, String>,
    /// Whether `pids` was built from the records (false after a read back).
    pub pids_known: bool,
    /// What the processes' settings say as a whole; `None` once a spec changed.
    pub specs: Option<SpecSummary>,
    /// Whether a record may be retiring (set when one is marked; cleared by a look that
    /// found none). Unknown, hence true, after a read back.
    pub no_retiring: bool,
    /// How many times the configuration changed (a reload, a group added or removed): what
    /// the runtime keys what it derives from the configuration by.
    pub config_changes: u64,
    /// Every process with a deadline or a liveness timer, by when its earliest is due, once
    /// `timers_known`; `timer_of` says where each one is in it.
    pub timers: BTreeSet<(Time, String)>,
    pub timer_of: BTreeMap<String, Time>,
    pub timers_known: bool,
    /// Records changed since the runtime last took them ([`super::Supervisor::take_changes`]),
    /// when it asked for them to be kept.
    pub changed: Option<BTreeSet<String>>,
    /// The `config_changes` the runtime last took the configuration at.
    pub config_taken: u64,
}

/// When the earliest of process `p`'s timers is due: its deadline, its watchdog, its health
/// check.
pub(super) fn due(p: &Process) -> Option<Time> {
    [p.deadline.map(|(at, _)| at), p.liveness.next_due()]
        .into_iter()
        .flatten()
        .min()
}

impl Index {
    /// Builds what is unknown (after a read back) from the records.
    pub fn know(&mut self, records: &Records) {
        if !self.pids_known {
            self.pids = records
                .values()
                .filter_map(|p| Some((p.pid?, p.name.clone())))
                .collect();
            self.pids_known = true;
        }
        if !self.timers_known {
            self.timers.clear();
            self.timer_of.clear();
            for p in records.values() {
                if let Some(at) = due(p) {
                    self.timers.insert((at, p.name.clone()));
                    self.timer_of.insert(p.name.clone(), at);
                }
            }
            self.timers_known = true;
        }
    }

    /// The records `touched` changed: their timers are filed again.
    pub fn refile(&mut self, records: &Records, touched: BTreeSet<String>) {
        for name in &touched {
            if let Some(at) = self.timer_of.remove(name) {
                self.timers.remove(&(at, name.clone()));
            }
            if let Some(at) = records.get(name).and_then(due) {
                self.timers.insert((at, name.clone()));
                self.timer_of.insert(name.clone(), at);
            }
        }
        if let Some(changed) = self.changed.as_mut() {
            changed.extend(touched);
        }
    }

    /// The processes with a timer due at `now` or before.
    pub fn due_by(&self, now: Time) -> Vec<String> {
        self.timers
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// What the settle step after every event needs to know of all the processes' settings.
#[derive(Debug, Clone, Default)]
pub(super) struct SpecSummary {
    /// The processes of `critical` programs.
    pub critical: Vec<String>,
    /// Whether any process's program has `depends_on`, or any process waits.
    pub dependencies: bool,
}

impl PartialEq for Index {
    fn eq(&self, _: &Index) -> bool {
        true
    }
}

impl SpecSummary {
    pub fn of<'a>(processes: impl Iterator<Item = &'a Process>) -> SpecSummary {
        let mut summary = SpecSummary::default();
        for p in processes {
            if p.spec.critical {
                summary.critical.push(p.name.clone());
            }
            // A waiting process waits for dependencies (its own settings may have lost them
            // since: it is then released at the next settle).
            summary.dependencies |= !p.spec.depends_on.is_empty() || p.waiting;
        }
        summary
    }
}

/// Every process record, by name (the order `status` lists them in), and which records were
/// touched since the last look: reading goes through `Deref`, and every way to change a record
/// (`get_mut`, `values_mut`, `insert`, `remove`) notes its name. Serialized as the map alone;
/// the notes are not state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Records {
    map: BTreeMap<String, Process>,
    #[serde(skip)]
    touched: Touched,
}

/// Names of records changed (or removed) since the last [`Records::take_touched`].
#[derive(Debug, Clone, Default)]
struct Touched(BTreeSet<String>);

impl PartialEq for Touched {
    fn eq(&self, _: &Touched) -> bool {
        true
    }
}

impl std::ops::Deref for Records {
    type Target = BTreeMap<String, Process>;

    fn deref(&self) -> &BTreeMap<String, Process> {
        &self.map
    }
}

impl Records {
    fn touch(&mut self, name: &str) {
        if !self.touched.0.contains(name) {
            self.touched.0.insert(name.to_string());
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Process> {
        if self.map.contains_key(name) {
            self.touch(name);
        }
        self.map.get_mut(name)
    }

    /// Every record, each noted as touched: for what must change them all (rare: a takeover,
    /// a shutdown).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.touched.0.extend(self.map.keys().cloned());
        self.map.values_mut()
    }

    /// Gives record `name` the settings `spec` if they equal its own: the same value, now
    /// shared with the configuration rather than held twice, so not a change (not noted).
    /// Whether they were equal.
    pub fn share_equal_spec(&mut self, name: &str, spec: &std::sync::Arc<ProgramSpec>) -> bool {
        match self.map.get_mut(name) {
            Some(p) if std::sync::Arc::ptr_eq(&p.spec, spec) || *p.spec == **spec => {
                p.spec = std::sync::Arc::clone(spec);
                true
            }
            _ => false,
        }
    }

    /// The same records in a map built anew from them in order, with full nodes (see
    /// `supervisor::compacted`): not a change.
    pub fn compact(&mut self) {
        self.map = std::mem::take(&mut self.map).into_iter().collect();
    }

    pub fn insert(&mut self, name: String, process: Process) -> Option<Process> {
        self.touch(&name);
        self.map.insert(name, process)
    }

    pub fn remove(&mut self, name: &str) -> Option<Process> {
        let removed = self.map.remove(name);
        if removed.is_some() {
            self.touch(name);
        }
        removed
    }

    /// The names touched since the last [`Records::take_touched`].
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.touched.0.iter()
    }

    /// The names touched since the last call.
    pub fn take_touched(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.touched.0)
    }
}
