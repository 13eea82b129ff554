//! Cluster singletons (`singleton: true`): a program that runs on the one node of the
//! cluster holding its key, and only while this node's lease is surely alive.
//!
//! Holding is news from the runtime's store client ([`ClusterNews`]); the rules are here:
//!
//! - **Every start goes through one gate** (`spawn`): a singleton's process starts only while
//!   this node holds the program's key and the lease's renew deadline has not passed
//!   (`may_run`). Otherwise it waits, STOPPED (`waiting`), standing by, and the runtime is asked
//!   to contend for the key (`Action::Contend`); it starts once the key is held here.
//! - **The lease's deadlines are kept here**, counted from when the last acknowledged renewal
//!   was sent (`ClusterSpec::renew_deadline`, `kill_deadline`): at the renew deadline the
//!   singletons stop gracefully, at the kill deadline what is left of their process groups is
//!   SIGKILLed, before the store can have let another node take the key. Each renewal is
//!   passed on to the guards (`Action::Fence`), which kill at the same deadline if this
//!   taskmaster cannot (paused, killed).
//! - **A key is held only while wanted**: once no process of the program runs or waits to
//!   start (stopped by a user, FATAL, at shutdown), the key is given up (`Action::Withdraw`), so
//!   another node takes it at once.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{change_state, log, Supervisor};
use crate::cluster::{ClusterInfo, ClusterNews, Holder, NodeInfo, SingletonInfo};
use crate::process::{AfterStop, ExitCause, State};
use crate::time::Time;
use crate::{Action, Scope, Signal};

/// What this node knows of the cluster: part of the supervisor's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cluster {
    /// Each singleton program's holder, as last heard.
    holders: BTreeMap<String, Holder>,
    /// The programs the runtime was asked to contend for, and not to withdraw since.
    contending: BTreeSet<String>,
    /// When the last acknowledged renewal of the lease was sent; `None`: no lease.
    renewed: Option<Time>,
    /// The kill deadline whose SIGKILLs were sent, so that a timer does not send them again.
    killed_for: Option<Time>,
    /// Why the store cannot be reached, while it cannot.
    unreachable: Option<String>,
    nodes: Vec<NodeInfo>,
}

impl Supervisor {
    /// This node's name, when it is in a cluster.
    fn node_name(&self) -> Option<&str> {
        self.config.daemon.cluster.as_ref().map(|c| c.node.as_str())
    }

    /// The lease's renew and kill deadlines, from the last acknowledged renewal; without a
    /// lease, both long past (the clock's origin).
    fn lease_deadlines(&self) -> (Time, Time) {
        let past = (Time::default(), Time::default());
        let Some(cluster) = self.config.daemon.cluster.as_ref() else {
            return past;
        };
        match self.cluster.renewed {
            Some(sent) => (
                sent + cluster.renew_deadline(),
                sent + cluster.kill_deadline(),
            ),
            None => past,
        }
    }

    /// Whether a process of singleton `program` may run now: its key is held here and the
    /// lease's renew deadline has not passed.
    pub(super) fn may_run(&self, program: &str, now: Time) -> bool {
        let held_here = self.cluster.holders.get(program).is_some_and(|h| h.here);
        held_here && now < self.lease_deadlines().0
    }

    /// The gate of every start: `true` if process `name` may start now. A singleton that may
    /// not waits, STOPPED, and its key is contended for.
    pub(super) fn singleton_may_start(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(p) = self.processes.get(name) else {
            return false;
        };
        if !p.spec.singleton {
            return true;
        }
        let program = p.program().to_string();
        if self.may_run(&program, now) {
            return true;
        }
        let standby = (!p.waiting).then(|| self.singleton_info(&program).standby());
        let Some(p) = self.processes.get_mut(name) else {
            return false;
        };
        if !p.state.is_stopped() {
            change_state(p, State::Stopped, out);
        }
        if let Some(standby) = standby {
            p.waiting = true;
            log(out, name, standby);
        }
        if self.cluster.contending.insert(program.clone()) {
            out.push(Action::Contend { program });
        }
        false
    }

    /// The term a singleton's key is held in here: its children's fencing token.
    pub(super) fn fencing_token(&self, spec: &taskmaster_config::ProgramSpec) -> Option<i64> {
        if !spec.singleton {
            return None;
        }
        self.cluster.holders.get(&spec.name)?.term
    }

    /// What `status` says of singleton `program`.
    pub(super) fn singleton_info(&self, program: &str) -> SingletonInfo {
        let holder = self
            .cluster
            .holders
            .get(program)
            .cloned()
            .unwrap_or_default();
        SingletonInfo {
            holder,
            unreachable: self.cluster.unreachable.clone(),
        }
    }

    /// Why a start of process `name` cannot happen here unless something changes elsewhere:
    /// another node holds its key, or the store cannot be reached.
    pub(super) fn standing_by(&self, name: &str) -> Option<String> {
        let p = self.processes.get(name)?;
        if !p.spec.singleton || !p.waiting {
            return None;
        }
        let info = self.singleton_info(p.program());
        let elsewhere = info.holder.node.is_some() && !info.holder.here;
        (elsewhere || info.unreachable.is_some()).then(|| info.standby())
    }

    /// `ctl cluster`.
    pub(super) fn cluster_info(&self) -> Option<ClusterInfo> {
        let node = self.node_name()?.to_string();
        let singletons = self
            .config
            .programs
            .values()
            .filter(|spec| spec.singleton)
            .map(|spec| {
                let holder = self.cluster.holders.get(&spec.name).cloned();
                (spec.name.clone(), holder.unwrap_or_default())
            })
            .collect();
        Some(ClusterInfo {
            node,
            nodes: self.cluster.nodes.clone(),
            unreachable: self.cluster.unreachable.clone(),
            singletons,
            renewed: self.cluster.renewed,
        })
    }

    /// Takes in what the store client learnt.
    pub(super) fn cluster_news(&mut self, news: ClusterNews, now: Time, out: &mut Vec<Action>) {
        match news {
            ClusterNews::Renewed { sent } => {
                if self.cluster.renewed.is_none_or(|last| sent > last) {
                    self.cluster.renewed = Some(sent);
                    self.cluster.killed_for = None;
                }
                let (_, kill_at) = self.lease_deadlines();
                out.push(Action::Fence { kill_at });
            }
            ClusterNews::LeaseLost { why } => {
                self.cluster.renewed = None;
                for holder in self.cluster.holders.values_mut() {
                    if holder.here {
                        *holder = Holder::default();
                    }
                }
                self.kill_singletons(&format!("the lease is lost ({why})"), now, out);
            }
            ClusterNews::Holder { program, holder } => {
                let here = holder.here;
                if here && !self.cluster.contending.contains(&program) {
                    // Taken while it was being given up: give it up again.
                    out.push(Action::Withdraw { program });
                    return;
                }
                if !here && self.runs_here(&program) {
                    let why = match &holder.node {
                        Some(node) => format!("{node} holds the key"),
                        None => "the key is gone".to_string(),
                    };
                    self.cluster.holders.insert(program.clone(), holder);
                    self.kill_singleton(&program, &why, now, out);
                    return;
                }
                self.cluster.holders.insert(program, holder);
            }
            ClusterNews::Reachability(unreachable) => self.cluster.unreachable = unreachable,
            ClusterNews::Nodes(nodes) => self.cluster.nodes = nodes,
        }
    }

    /// Whether a process of singleton `program` has a child here.
    fn runs_here(&self, program: &str) -> bool {
        self.processes
            .values()
            .any(|p| p.program() == program && p.pid.is_some())
    }

    /// SIGKILLs every running singleton's process group and lets each wait for its key again.
    fn kill_singletons(&mut self, why: &str, now: Time, out: &mut Vec<Action>) {
        let programs: BTreeSet<String> = self
            .processes
            .values()
            .filter(|p| p.spec.singleton && p.pid.is_some())
            .map(|p| p.program().to_string())
            .collect();
        for program in programs {
            self.kill_singleton(&program, why, now, out);
        }
    }

    /// SIGKILLs the process groups of `program`'s processes: this node may no longer hold its
    /// key, so not a moment more of it may run. Each process then waits for the key again.
    fn kill_singleton(&mut self, program: &str, why: &str, now: Time, out: &mut Vec<Action>) {
        let names: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.program() == program && p.pid.is_some())
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            let stopping = self
                .processes
                .get(&name)
                .is_some_and(|p| p.state == State::Stopping);
            if !stopping {
                let cause = ExitCause::LeaseLost(why.to_string());
                self.stop_for(&name, cause, AfterStop::Start, now, out);
            }
            if let Some(pid) = self.processes.get(&name).and_then(|p| p.pid) {
                log(out, &name, format!("{why}: SIGKILL to its process group"));
                out.push(Action::Signal {
                    pid,
                    signal: Signal::KILL,
                    scope: Scope::Group,
                });
            }
        }
    }

    /// At a timer: the lease's deadlines. Past the renew deadline every running singleton
    /// stops (and waits for its key again); past the kill deadline what is left is SIGKILLed.
    pub(super) fn lease_deadlines_passed(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.cluster.contending.is_empty() {
            return;
        }
        let (renew_by, kill_at) = self.lease_deadlines();
        if now >= renew_by {
            for name in self.singletons_up() {
                let why = "the lease could not be renewed by its renew deadline".to_string();
                log(out, &name, format!("{why}: stopping it"));
                self.stop_for(&name, ExitCause::LeaseLost(why), AfterStop::Start, now, out);
            }
        }
        if now >= kill_at
            && self.cluster.killed_for != Some(kill_at)
            && self.singleton_child().is_some()
        {
            self.cluster.killed_for = Some(kill_at);
            self.kill_singletons("the lease could not be renewed in time", now, out);
        }
    }

    /// The singletons' processes STARTING or RUNNING.
    fn singletons_up(&self) -> Vec<String> {
        self.processes
            .values()
            .filter(|p| p.spec.singleton && matches!(p.state, State::Starting | State::Running))
            .map(|p| p.name.clone())
            .collect()
    }

    /// A singleton's process that has a child, if any.
    fn singleton_child(&self) -> Option<&str> {
        self.processes
            .values()
            .find(|p| p.spec.singleton && p.pid.is_some())
            .map(|p| p.name.as_str())
    }

    /// When the lease's next deadline falls, while a singleton has a child here: the renew
    /// deadline while one is up, then the kill deadline while one is stopping.
    pub(super) fn next_lease_deadline(&self) -> Option<Time> {
        if self.cluster.contending.is_empty() || self.singleton_child().is_none() {
            return None;
        }
        let (renew_by, kill_at) = self.lease_deadlines();
        if !self.singletons_up().is_empty() {
            Some(renew_by)
        } else if self.cluster.killed_for != Some(kill_at) {
            Some(kill_at)
        } else {
            None
        }
    }

    /// After every event: start the singletons whose key is held here, give up the keys no
    /// process wants any more.
    pub(super) fn settle_cluster(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.cluster.contending.is_empty() {
            return;
        }
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let mut startable: Vec<String> = Vec::new();
        for p in self.processes.values().filter(|p| p.spec.singleton) {
            // A child, one on its way (STARTING before its pid is known, BACKOFF), or a
            // start waiting for the key.
            let wants = p.pid.is_some() || p.start_pending() || !p.state.is_stopped();
            if wants && !(self.shutting_down && p.pid.is_none()) {
                wanted.insert(p.program().to_string());
            }
            if p.waiting && !self.shutting_down && self.may_run(p.program(), now) {
                startable.push(p.name.clone());
            }
        }
        let unwanted: Vec<String> = self
            .cluster
            .contending
            .difference(&wanted)
            .cloned()
            .collect();
        for program in unwanted {
            self.cluster.contending.remove(&program);
            if let Some(holder) = self.cluster.holders.get_mut(&program) {
                if holder.here {
                    *holder = Holder::default();
                }
            }
            out.push(Action::Withdraw { program });
        }
        for name in startable {
            if let Some(p) = self.processes.get_mut(&name) {
                p.waiting = false;
            }
            self.start_or_wait(&name, super::Pull::Nothing, now, out);
        }
    }
}
