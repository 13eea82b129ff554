mod cluster;
mod dependencies;
mod index;
mod liveness;
mod requests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmaster_config::{AutoRestart, Config, ProgramSpec, Readiness, Signal};

use crate::control::{Done, Failure, Outcome, PairInfo, Reply, Ticket};
use crate::notify::Notification;
use crate::process::{
    AfterStop, Deadline, ExitCause, ExitStatus, LastExit, Liveness, Process, State,
};
use crate::time::Time;
use crate::Request;
use dependencies::Pull;

/// Something that happened, for the supervisor to react to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The runtime carried out [`Action::Spawn`]: the child runs with this pid.
    Spawned { process: String, pid: u32 },
    /// The runtime could not carry out [`Action::Spawn`]; `error` says why.
    SpawnFailed { process: String, error: String },
    /// A child was reaped. The pid may be none of ours (an orphan the subreaper collected).
    /// `leftovers`: other processes of its process group (which it led) were still there.
    Exited {
        pid: u32,
        status: ExitStatus,
        leftovers: bool,
    },
    /// What [`Action::WatchGroup`] waits for: no process is left in process group `pgid`.
    GroupGone { pgid: u32 },
    /// A child was stopped by a signal (SIGSTOP, SIGTSTP...): paused, not dead.
    Paused { pid: u32, signal: Signal },
    /// A paused child was continued (SIGCONT).
    Resumed { pid: u32 },
    /// A child, or a short-lived descendant of it, spoke on the notify socket; `pid` is the
    /// child's (the runtime resolves a descendant to it).
    Notified {
        pid: u32,
        notifications: Vec<Notification>,
    },
    /// The health check asked by [`Action::Probe`] is done: `Ok` (healthy) or `Err`, with a
    /// short text either way.
    ProbeDone {
        process: String,
        pid: u32,
        result: Result<String, String>,
    },
    /// The runtime's process pair changed (a backup started or died, a takeover happened).
    PairChanged(PairInfo),
    /// The hook asked by [`Action::RunHook`] is done; `Err` says how it failed.
    HookDone {
        process: String,
        result: Result<(), String>,
    },
    /// The time of [`Supervisor::next_deadline`] has come.
    Timer,
    /// [`Action::WriteStdin`] is done: `outcomes` are the action's own, given back, and
    /// `written` says for each write whether its data was queued (or why not).
    StdinWritten {
        ticket: Option<Ticket>,
        outcomes: Vec<Outcome>,
        written: Vec<(String, Result<(), String>)>,
    },
    /// [`Action::ReopenLogs`] is done: how many files were reopened, and what failed.
    LogsReopened {
        ticket: Option<Ticket>,
        files: usize,
        errors: Vec<String>,
    },
    /// [`Action::CountOutput`] is done: each process's bytes written on stdout and stderr
    /// since this taskmaster started, by name.
    OutputCounted {
        ticket: Ticket,
        counts: BTreeMap<String, [u64; 2]>,
    },
    /// [`Action::Handover`] is done: the backup that has the word now, or why none does.
    HandoverDone {
        ticket: Option<Ticket>,
        result: Result<u32, String>,
    },
    /// One alert message reached `destination` (`ok`), or did not after its retries.
    AlertDelivered { destination: String, ok: bool },
    /// [`Action::TestAlerts`] is done: what each destination answered, or why it did not.
    AlertsTested {
        ticket: Option<Ticket>,
        results: Vec<(String, Result<String, String>)>,
    },
    /// A user asks. With no ticket nobody waits for the reply (a SIGHUP reload).
    Request {
        ticket: Option<Ticket>,
        request: Request,
    },
    /// The cluster's store client learnt something (`cluster:`).
    Cluster(crate::cluster::ClusterNews),
    /// The runtime carried out [`Action::LoadConfig`]; on error, one message per problem.
    /// Boxed: a whole `Config` is far bigger than the other events.
    ConfigLoaded {
        ticket: Option<Ticket>,
        purpose: LoadPurpose,
        result: Result<Box<Config>, Vec<String>>,
    },
}

/// What a configuration is read again for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadPurpose {
    /// A reload: apply the difference.
    Apply,
    /// A reread (supervisord's `reloadConfig`): compare and keep it staged, change nothing;
    /// groups are then added or removed one by one.
    Stage,
}

/// Whom a signal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// The child alone.
    Process,
    /// The child's whole process group (the child leads it), so that the grandchildren of a
    /// `sh -c` wrapper go too.
    Group,
}

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a child for `process`, then report [`Event::Spawned`] or [`Event::SpawnFailed`]
    /// before any other event.
    Spawn {
        process: String,
        spec: Arc<ProgramSpec>,
        /// For a cluster singleton: the term its key is held in, for the child's
        /// `TASKMASTER_FENCING_TOKEN`.
        fencing_token: Option<i64>,
    },
    /// Try to hold singleton `program`'s key, and keep trying while nobody holds it; report
    /// who does ([`crate::cluster::ClusterNews::Holder`]).
    Contend {
        program: String,
    },
    /// Stop trying to hold `program`'s key, and give it up if it is held here.
    Withdraw {
        program: String,
    },
    /// The lease's kill deadline moved to `kill_at`: each singleton's guard kills its process
    /// group then unless told of a later one.
    Fence {
        kill_at: Time,
    },
    Signal {
        pid: u32,
        signal: Signal,
        scope: Scope,
    },
    /// Watch process group `pgid`, whose leader has exited, and report [`Event::GroupGone`]
    /// once no process is left in it.
    WatchGroup {
        pgid: u32,
    },
    /// Run the program's health check against its child `pid`, then report
    /// [`Event::ProbeDone`].
    Probe {
        process: String,
        pid: u32,
        spec: Arc<ProgramSpec>,
    },
    /// Run the program's `on_exit` hook with these variables added to the program's
    /// environment, then report [`Event::HookDone`].
    RunHook {
        process: String,
        spec: Arc<ProgramSpec>,
        env: Vec<(String, String)>,
    },
    /// Read the configuration file again, then report [`Event::ConfigLoaded`] with the same
    /// ticket and purpose.
    LoadConfig {
        purpose: LoadPurpose,
        ticket: Option<Ticket>,
    },
    /// Write a line to the event log.
    Log(Notice),
    /// A process changed state (for event subscribers; the log has its own lines), with what
    /// supervisord's events say of it: the pid of its current or last child, its failed starts
    /// in a row, whether its last exit was expected.
    StateChanged {
        process: String,
        from: State,
        to: State,
        pid: Option<u32>,
        tries: u32,
        expected: bool,
    },
    /// Something that happened to the supervisor as a whole, for event listeners.
    Announce(Announcement),
    Reply {
        ticket: Ticket,
        reply: Reply,
    },
    /// Every process has stopped after a shutdown: the daemon may exit.
    Exit,
    /// Read how many bytes each process has written on stdout and stderr, then report
    /// [`Event::OutputCounted`] (for the metrics).
    CountOutput {
        ticket: Ticket,
    },
    /// Reopen log files at their paths, then report [`Event::LogsReopened`]: `only` these
    /// (the files of the processes a user named), or every one, the event log included.
    ReopenLogs {
        ticket: Option<Ticket>,
        only: Option<Vec<PathBuf>>,
    },
    /// Hand over to the hot backup and exit (`run --pair`), then report
    /// [`Event::HandoverDone`].
    Handover {
        ticket: Option<Ticket>,
        upgrade: bool,
    },
    /// Send a test message to every alert destination now, past the batch, then report
    /// [`Event::AlertsTested`].
    TestAlerts {
        ticket: Option<Ticket>,
    },
    /// Queue `data` for the stdin pipe of each process of `writes` (name and pid), then report
    /// [`Event::StdinWritten`], giving `outcomes` (the targets that could not take it) back.
    WriteStdin {
        ticket: Option<Ticket>,
        writes: Vec<(String, u32)>,
        data: Vec<u8>,
        outcomes: Vec<Outcome>,
    },
}

/// What happens to the supervisor as a whole, as supervisord's events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The first process of this group (a `[group:x]`, or a program outside any) was added.
    GroupAdded(String),
    /// The last process of this group was removed.
    GroupRemoved(String),
    /// Every group is added, and the processes start (SUPERVISOR_STATE_CHANGE_RUNNING).
    Running,
    /// The shutdown begins (SUPERVISOR_STATE_CHANGE_STOPPING).
    Stopping,
    /// A client sent supervisord's REMOTE_COMMUNICATION event (`sendRemoteCommEvent`).
    RemoteCommunication { kind: String, data: String },
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The process the line is about, if any.
    pub process: Option<String>,
    pub message: String,
}

/// What changed in a supervisor since the last time (see [`Supervisor::take_changes`]), for a
/// copy to apply ([`Supervisor::apply_changes`]): plain data, as the state is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Records changed or added, whole.
    processes: Vec<Process>,
    /// Records removed, by name.
    removed: Vec<String>,
    /// The configuration and the staged one, when either changed.
    config: Option<Box<(Config, Option<Config>)>>,
    waiting_processes: BTreeMap<String, Arc<ProgramSpec>>,
    waiters: Vec<Waiter>,
    shutting_down: bool,
    exit_sent: bool,
    exit_code: u8,
    daemon_pid: u32,
    pair: Option<PairInfo>,
    held_stops: BTreeSet<String>,
    reloads: crate::control::ReloadCounts,
    alerts_sent: BTreeMap<String, crate::control::DeliveryCounts>,
    #[serde(default)]
    cluster: cluster::Cluster,
}

impl Changes {
    /// The names of the records it changes or removes.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.processes
            .iter()
            .map(|p| p.name.as_str())
            .chain(self.removed.iter().map(String::as_str))
    }
}

/// A request waiting for processes to reach their goals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Waiter {
    ticket: Ticket,
    items: Vec<WaitItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WaitItem {
    process: String,
    /// `None` once every outcome for this process is known.
    goal: Option<Goal>,
    outcomes: Vec<Outcome>,
    /// The process's stop count when the request came: a higher one means it has stopped.
    stops_before: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Goal {
    Running,
    Stopped,
    /// Stopped, then started again: a restart.
    StoppedThenRunning,
}

/// A process a request names, and whether it was named alone (not through `all` or a group).
struct Named {
    name: String,
    alone: bool,
}

/// The supervisor: every process record, and the rules that move them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supervisor {
    config: Config,
    /// By name; the order is the order `status` lists them in.
    processes: index::Records,
    /// Processes added or changed by a reload whose old record is still stopping, by name;
    /// each is added once the old one is gone.
    #[serde(default)]
    waiting_processes: BTreeMap<String, Arc<ProgramSpec>>,
    waiters: Vec<Waiter>,
    /// The configuration last reread (not applied): where added groups come from.
    staged: Option<Config>,
    shutting_down: bool,
    exit_sent: bool,
    /// The status taskmaster exits with: a `critical` program's when it ended the run.
    #[serde(default)]
    exit_code: u8,
    daemon_pid: u32,
    /// The process pair, when the runtime keeps one.
    #[serde(default)]
    pair: Option<PairInfo>,
    /// Processes a stop request has reached whose stop waits for their dependents to stop.
    #[serde(default)]
    held_stops: BTreeSet<String>,
    /// Reloads applied and refused (a file with errors), for the metrics.
    #[serde(default)]
    reloads: crate::control::ReloadCounts,
    /// Alert messages delivered and failed, by destination, for the metrics.
    #[serde(default)]
    alerts_sent: BTreeMap<String, crate::control::DeliveryCounts>,
    /// What this node knows of its cluster (`cluster:`, `singleton`).
    #[serde(default)]
    cluster: cluster::Cluster,
    /// Caches that keep an event's work from growing with the number of processes; not
    /// state (see `index.rs`).
    #[serde(skip)]
    index: index::Index,
}

impl Supervisor {
    /// A supervisor for `config`, with the actions that start its autostart programs.
    /// `daemon_pid` is what `pid` with no target answers.
    pub fn new(config: Config, daemon_pid: u32, now: Time) -> (Supervisor, Vec<Action>) {
        let mut supervisor = Supervisor {
            config: compacted(config.clone()),
            processes: index::Records::default(),
            waiting_processes: BTreeMap::new(),
            waiters: Vec::new(),
            staged: None,
            shutting_down: false,
            exit_sent: false,
            exit_code: 0,
            daemon_pid,
            pair: None,
            held_stops: BTreeSet::new(),
            reloads: Default::default(),
            alerts_sent: BTreeMap::new(),
            cluster: Default::default(),
            index: index::Index {
                pids_known: true,
                timers_known: true,
                ..Default::default()
            },
        };
        let mut out = Vec::new();
        // As supervisord: every group is added, then it runs, then the processes start.
        let mut autostart = Vec::new();
        for spec in by_priority(config.programs.into_values()) {
            for (name, process) in processes_of(&spec) {
                if process.autostart {
                    autostart.push(name.clone());
                }
                supervisor.insert_process(name, process, &mut out);
            }
        }
        supervisor.processes.compact();
        out.push(Action::Announce(Announcement::Running));
        for name in autostart {
            if supervisor
                .process(&name)
                .is_some_and(|p| p.state == State::Stopped && !p.waiting)
            {
                supervisor.start_or_wait(&name, Pull::NeverStarted, now, &mut out);
            }
        }
        supervisor.refile();
        (supervisor, out)
    }

    /// The status taskmaster exits with: 0, or the exit code of the `critical` program whose
    /// end ended the run (128 + the signal for a death by signal).
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// Reacts to one event and returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        self.index.know(&self.processes);
        match event {
            Event::Spawned { process, pid } => self.spawned(&process, pid, now, &mut out),
            Event::SpawnFailed { process, error } => {
                self.spawn_failed(&process, error, now, &mut out)
            }
            Event::Exited {
                pid,
                status,
                leftovers,
            } => self.exited(pid, status, leftovers, now, &mut out),
            Event::GroupGone { pgid } => self.group_gone(pgid, now, &mut out),
            Event::Paused { pid, signal } => self.paused(pid, Some(signal), now, &mut out),
            Event::Resumed { pid } => self.paused(pid, None, now, &mut out),
            Event::Notified { pid, notifications } => {
                self.notified(pid, notifications, now, &mut out)
            }
            Event::ProbeDone {
                process,
                pid,
                result,
            } => self.probe_done(&process, pid, result, now, &mut out),
            Event::HookDone { process, result } => self.hook_done(&process, result, now, &mut out),
            Event::PairChanged(pair) => self.pair = Some(pair),
            Event::Cluster(news) => self.cluster_news(news, now, &mut out),
            Event::Timer => self.deadlines_passed(now, &mut out),
            Event::StdinWritten {
                ticket,
                outcomes,
                written,
            } => self.stdin_written(ticket, outcomes, written, &mut out),
            Event::LogsReopened {
                ticket,
                files,
                errors,
            } => self.logs_reopened(ticket, files, errors, &mut out),
            Event::HandoverDone { ticket, result } => {
                let reply = match result {
                    Ok(backup) => Reply::HandedOver(backup),
                    Err(why) => Reply::HandoverRefused(why),
                };
                answer(ticket, reply, &mut out);
            }
            Event::AlertDelivered { destination, ok } => {
                let counts = self.alerts_sent.entry(destination).or_default();
                if ok {
                    counts.sent += 1;
                } else {
                    counts.failed += 1;
                }
            }
            Event::AlertsTested { ticket, results } => {
                answer(ticket, Reply::AlertsTested(results), &mut out);
            }
            Event::Request { ticket, request } => self.request(ticket, request, now, &mut out),
            Event::OutputCounted { ticket, counts } => {
                let metrics = self.metrics(now, &counts);
                answer(Some(ticket), Reply::Metrics(Box::new(metrics)), &mut out);
            }
            Event::ConfigLoaded {
                ticket,
                purpose: LoadPurpose::Apply,
                result,
            } => self.config_loaded(ticket, result.map(|config| *config), now, &mut out),
            Event::ConfigLoaded {
                ticket,
                purpose: LoadPurpose::Stage,
                result,
            } => self.config_staged(ticket, result.map(|config| *config), &mut out),
        }
        self.settle(now, &mut out);
        self.refile();
        out
    }

    /// The records this event changed have their timers filed again (and are noted for the
    /// backup).
    fn refile(&mut self) {
        let touched = self.processes.take_touched();
        self.index.refile(&self.processes, touched);
    }

    /// The earliest moment something is due; the runtime sends [`Event::Timer`] then.
    pub fn next_deadline(&self) -> Option<Time> {
        let process_deadline = if self.index.timers_known {
            self.index.timers.first().map(|(at, _)| *at)
        } else {
            self.processes.values().filter_map(index::due).min()
        };
        match (process_deadline, self.next_lease_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    /// What `status` shows of process `name`.
    pub fn status_of(&self, name: &str) -> Option<crate::ProcessInfo> {
        self.info(name)
    }

    pub fn process(&self, name: &str) -> Option<&Process> {
        self.processes.get(name)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A number that changes whenever [`Supervisor::config`] does (a reload applied, a group
    /// added or removed), so that what is derived from the configuration is derived again
    /// only then. Not state: a supervisor read back starts again from 0.
    pub fn config_generation(&self) -> u64 {
        self.index.config_changes
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The process pair, when the runtime keeps one.
    pub fn pair(&self) -> Option<&PairInfo> {
        self.pair.as_ref()
    }

    /// Makes a copy of a supervisor that died (a hot backup's) the live one, in process
    /// `daemon_pid`. What only the dead one could finish is settled here: the requests it was
    /// answering (their askers are gone with its sockets), the hooks and health checks it was
    /// running (their results will never come: the hooks count as done, the checks run again).
    pub fn take_over(&mut self, daemon_pid: u32, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        self.daemon_pid = daemon_pid;
        self.waiters.clear();
        let changed = self.index.changed.take();
        self.index = index::Index {
            changed,
            ..Default::default()
        };
        self.index.know(&self.processes);
        // A shutdown the dead one had finished must still end this one.
        self.exit_sent = false;
        let lost_hooks: Vec<String> = self
            .processes
            .values()
            .filter(|p| p.hook_running)
            .map(|p| p.name.clone())
            .collect();
        for p in self.processes.values_mut() {
            if p.liveness.probing {
                p.liveness.probing = false;
                p.liveness.probe_due = Some(now);
            }
            // The dead one was watching what was left of this group: now this one watches.
            if let (Some(pgid), true) = (p.pid, p.held_exit.is_some()) {
                out.push(Action::WatchGroup { pgid });
            }
        }
        for name in lost_hooks {
            self.hook_done(
                &name,
                Err("lost when the primary died".to_string()),
                now,
                &mut out,
            );
        }
        self.settle(now, &mut out);
        self.refile();
        out
    }

    /// From now on, keeps note of what changes, for [`Supervisor::take_changes`]: what a hot
    /// backup that was just sent the whole state needs next.
    pub fn keep_changes(&mut self) {
        self.index.changed = Some(BTreeSet::new());
        self.index.config_taken = self.index.config_changes;
    }

    /// What changed since [`Supervisor::keep_changes`] or the last call: the records changed,
    /// added or removed, the configuration if it changed, and the rest of the state (small).
    /// Its size grows with what changed, not with the number of processes.
    pub fn take_changes(&mut self) -> Changes {
        let names = self
            .index
            .changed
            .replace(BTreeSet::new())
            .unwrap_or_default();
        let mut processes = Vec::new();
        let mut removed = Vec::new();
        for name in names {
            match self.processes.get(&name) {
                Some(p) => processes.push(p.clone()),
                None => removed.push(name),
            }
        }
        let config = (self.index.config_taken != self.index.config_changes).then(|| {
            self.index.config_taken = self.index.config_changes;
            Box::new((self.config.clone(), self.staged.clone()))
        });
        Changes {
            processes,
            removed,
            config,
            waiting_processes: self.waiting_processes.clone(),
            waiters: self.waiters.clone(),
            shutting_down: self.shutting_down,
            exit_sent: self.exit_sent,
            exit_code: self.exit_code,
            daemon_pid: self.daemon_pid,
            pair: self.pair.clone(),
            held_stops: self.held_stops.clone(),
            reloads: self.reloads,
            alerts_sent: self.alerts_sent.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// Brings a copy (a backup's) up to date with what its original changed.
    pub fn apply_changes(&mut self, changes: Changes) {
        for p in changes.processes {
            self.processes.insert(p.name.clone(), p);
        }
        for name in &changes.removed {
            self.processes.remove(name);
        }
        if let Some(config) = changes.config {
            (self.config, self.staged) = *config;
        }
        self.waiting_processes = changes.waiting_processes;
        self.waiters = changes.waiters;
        self.shutting_down = changes.shutting_down;
        self.exit_sent = changes.exit_sent;
        self.exit_code = changes.exit_code;
        self.daemon_pid = changes.daemon_pid;
        self.pair = changes.pair;
        self.held_stops = changes.held_stops;
        self.reloads = changes.reloads;
        self.alerts_sent = changes.alerts_sent;
        self.cluster = changes.cluster;
        // Built again from the records when this copy is used.
        let _ = self.processes.take_touched();
        self.index = index::Index::default();
    }

    /// The process whose child is `pid`, among those `keep` accepts: through the pid index,
    /// verified against the record; past it (a supervisor read back, an orphan), by a look at
    /// every record.
    fn by_pid(&self, pid: u32, keep: impl Fn(&Process) -> bool) -> Option<String> {
        let indexed = self.index.pids.get(&pid).and_then(|name| {
            let p = self.processes.get(name)?;
            (p.pid == Some(pid) && keep(p)).then(|| name.clone())
        });
        indexed.or_else(|| {
            self.processes
                .values()
                .find(|p| p.pid == Some(pid) && keep(p))
                .map(|p| p.name.clone())
        })
    }

    /// Whether any process has a child (through the pid index, which has every one).
    fn any_child(&self, mut keep: impl FnMut(&Process) -> bool) -> bool {
        self.index.pids.iter().any(|(&pid, name)| {
            self.processes
                .get(name)
                .is_some_and(|p| p.pid == Some(pid) && keep(p))
        })
    }

    /// The summary of every process's settings, computed again if a spec changed since.
    fn refresh_specs(&mut self) -> &index::SpecSummary {
        let processes = &self.processes;
        self.index
            .specs
            .get_or_insert_with(|| index::SpecSummary::of(processes.values()))
    }

    /// Whether any process of group `group` has a record: its processes are named `group`
    /// (a lone program) or `group:PROCESS`, so only those names are looked at.
    fn group_exists(&self, group: &str) -> bool {
        self.group_members(group).next().is_some()
    }

    /// The processes of group `group`, in name order.
    pub(super) fn group_members<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = &'a Process> + 'a {
        let prefix = format!("{group}:");
        let lone = self.processes.get(group).into_iter();
        let members = self
            .processes
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, p)| p)
            .take_while(move |p| p.name.starts_with(&prefix));
        lone.chain(members)
            .filter(move |p| p.spec.group_name() == group)
    }

    // ---- events -------------------------------------------------------------------------

    fn spawned(&mut self, name: &str, pid: u32, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.pid = Some(pid);
        p.last_pid = Some(pid);
        self.index.pids.insert(pid, name.to_string());
        let message = match &p.spec.user {
            Some(user) => format!("spawned with pid {pid} as {}", user.name),
            None => format!("spawned with pid {pid}"),
        };
        log(out, name, message);
        match p.spec.ready {
            Readiness::Notify => {
                p.deadline = Some((now + p.spec.readytime, Deadline::ReadyTime));
            }
            Readiness::Started if p.spec.starttime.is_zero() => self.enter_running(name, now, out),
            Readiness::Started => {
                p.deadline = Some((now + p.spec.starttime, Deadline::StartTime));
            }
        }
    }

    fn spawn_failed(&mut self, name: &str, error: String, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        log(out, name, format!("spawn error: {error}"));
        *p.exits.entry("spawn_failed".to_string()).or_default() += 1;
        p.last_exit = Some(LastExit {
            status: None,
            cause: ExitCause::SpawnFailed(error.clone()),
            expected: false,
        });
        p.spawn_error = Some(error);
        p.pid = None;
        self.start_failed(name, now, out);
    }

    fn exited(
        &mut self,
        pid: u32,
        status: ExitStatus,
        leftovers: bool,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(name) = self.by_pid(pid, |p| p.held_exit.is_none()) else {
            return; // an orphan reaped by the subreaper: none of ours
        };
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        let cause = p
            .stop_cause
            .take()
            .unwrap_or_else(|| ExitCause::of_status(status));
        let expected = cause == ExitCause::Exited
            && matches!(status, ExitStatus::Code(code) if p.spec.is_expected_exit(code));
        let last_exit = LastExit {
            status: Some(status),
            cause,
            expected,
        };
        if leftovers && p.spec.killgroup {
            self.hold_exit(&name, pid, last_exit, now, out);
        } else {
            self.child_gone(&name, pid, last_exit, leftovers, now, out);
        }
    }

    /// The leader of a process group exited and left others in it (`killgroup`): they are
    /// stopped as a stop request would stop them (`stopsignal`, SIGKILL after `stoptime`;
    /// at once with SIGKILL when a stop was already under way), and the exit takes effect,
    /// restart included, once the group is empty. Meanwhile the process is STOPPING: it is
    /// not stopped while processes of its group still run.
    fn hold_exit(
        &mut self,
        name: &str,
        pgid: u32,
        last_exit: LastExit,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.paused = None;
        log(
            out,
            name,
            format!(
                "{}; what is left of its process group is stopped first",
                last_exit.how()
            ),
        );
        if p.state == State::Stopping {
            out.push(Action::Signal {
                pid: pgid,
                signal: Signal::KILL,
                scope: Scope::Group,
            });
        } else {
            let up_for = p.started_at.map_or(Duration::ZERO, |at| now.since(at));
            let failed_start = p.state == State::Starting
                && (p.spec.ready == Readiness::Notify || up_for < p.spec.starttime);
            p.after_stop = match p.state {
                State::Starting if failed_start => AfterStop::FailStart,
                State::Starting | State::Running => AfterStop::Policy,
                _ => AfterStop::Nothing,
            };
            if p.state == State::Starting && !failed_start {
                self.enter_running(name, now, out);
            }
            let Some(p) = self.processes.get_mut(name) else {
                return;
            };
            change_state(p, State::Stopping, out);
            p.deadline = Some((now + p.spec.stoptime, Deadline::Kill));
            for signal in [p.spec.stopsignal, Signal::CONT] {
                out.push(Action::Signal {
                    pid: pgid,
                    signal,
                    scope: Scope::Group,
                });
            }
        }
        if let Some(p) = self.processes.get_mut(name) {
            p.held_exit = Some(last_exit);
        }
        out.push(Action::WatchGroup { pgid });
    }

    /// The group of a held exit is empty: the exit takes effect.
    fn group_gone(&mut self, pgid: u32, now: Time, out: &mut Vec<Action>) {
        let Some(name) = self.by_pid(pgid, |p| p.held_exit.is_some()) else {
            return;
        };
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        let Some(last_exit) = p.held_exit.take() else {
            return;
        };
        self.child_gone(&name, pgid, last_exit, false, now, out);
    }

    /// The child `pid` of `name` and, unless `leftovers`, its whole group are gone: the state
    /// moves on as the exit says.
    fn child_gone(
        &mut self,
        name: &str,
        pid: u32,
        last_exit: LastExit,
        leftovers: bool,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let name = name.to_string();
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        if self.index.pids.get(&pid) == Some(&name) {
            self.index.pids.remove(&pid);
        }
        p.pid = None;
        p.paused = None;
        p.stopped_at = Some(now);
        p.deadline = None;
        p.last_exit = Some(last_exit.clone());
        *p.exits
            .entry(last_exit.cause.name().to_string())
            .or_default() += 1;
        self.run_exit_hook(&name, &last_exit, out);
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        let up_for = p.started_at.map_or(Duration::ZERO, |at| now.since(at));
        match p.state {
            State::Stopping => {
                // The leader is gone; whatever else is left in its group goes too.
                if leftovers {
                    out.push(Action::Signal {
                        pid,
                        signal: Signal::KILL,
                        scope: Scope::Group,
                    });
                }
                match std::mem::replace(&mut p.after_stop, AfterStop::Nothing) {
                    AfterStop::Policy => {
                        self.exited_from_running(&name, &last_exit, up_for, now, out)
                    }
                    AfterStop::FailStart => {
                        log(out, &name, format!("stopped ({})", last_exit.how()));
                        self.start_failed(&name, now, out);
                    }
                    after_stop => {
                        p.after_stop = after_stop;
                        change_state(p, State::Stopped, out);
                        log(out, &name, format!("stopped ({})", last_exit.how()));
                        if p.after_stop == AfterStop::Start {
                            p.after_stop = AfterStop::Nothing;
                            if !shutting_down {
                                self.spawn(&name, now, out);
                            }
                        } else if p.after_stop == AfterStop::WaitForDependencies {
                            p.after_stop = AfterStop::Nothing;
                            if !shutting_down {
                                self.start_or_wait(&name, Pull::Nothing, now, out);
                            }
                        }
                    }
                }
            }
            State::Starting if p.spec.ready == Readiness::Notify => {
                log(
                    out,
                    &name,
                    format!("{} before it was ready", last_exit.how()),
                );
                self.start_failed(&name, now, out);
            }
            State::Starting if up_for < p.spec.starttime => {
                log(
                    out,
                    &name,
                    format!(
                        "{} after {up_for:.1?}, before its starttime",
                        last_exit.how()
                    ),
                );
                self.start_failed(&name, now, out);
            }
            State::Starting | State::Running => {
                if p.state == State::Starting {
                    self.enter_running(&name, now, out);
                }
                self.exited_from_running(&name, &last_exit, up_for, now, out);
            }
            other => log(out, &name, format!("{} while {other}", last_exit.how())),
        }
    }

    /// EXITED, then restarted as `autorestart` says: at once, or after the `backoff` delay (by
    /// default the crash-loop throttle, whose first restart of a row is at once); or FATAL
    /// when that would be one restart too many for `restart_limit`.
    fn exited_from_running(
        &mut self,
        name: &str,
        last_exit: &LastExit,
        up_for: Duration,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Exited, out);
        log(out, name, last_exit.to_string());
        let restart = match p.spec.autorestart {
            AutoRestart::Always => true,
            AutoRestart::Never => false,
            AutoRestart::Unexpected => !last_exit.expected,
        };
        if !restart || shutting_down || p.is_retiring() {
            return;
        }
        if !self.within_restart_limit(name, now, out) {
            return;
        }
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        let why = match p.spec.autorestart {
            AutoRestart::Always => "autorestart is always",
            _ => "the exit was not expected",
        };
        let Some(backoff) = p.spec.backoff.as_deref().copied() else {
            log(out, name, format!("restarting: {why}"));
            self.spawn(name, now, out);
            return;
        };
        // A process that stayed up long enough has recovered: its delays start over.
        if up_for >= backoff.max {
            p.restarts_in_row = 0;
        }
        p.restarts_in_row = p.restarts_in_row.saturating_add(1);
        let delay = backoff.delay(p.restarts_in_row);
        // The default throttle's first restart of a row.
        if delay.is_zero() {
            log(out, name, format!("restarting: {why}"));
            self.spawn(name, now, out);
            return;
        }
        p.deadline = Some((now + delay, Deadline::Restart));
        log(
            out,
            name,
            format!("restarting in {delay:.1?} (backoff): {why}"),
        );
    }

    /// Counts one more automatic restart against `restart_limit`; past the limit the process
    /// is FATAL and the answer is false.
    fn within_restart_limit(&mut self, name: &str, now: Time, out: &mut Vec<Action>) -> bool {
        let Some(p) = self.processes.get_mut(name) else {
            return false;
        };
        let Some(limit) = p.spec.restart_limit else {
            return true;
        };
        p.restarts.retain(|&at| now.since(at) < limit.within);
        p.restarts.push(now);
        let count = p.restarts.len();
        if count <= limit.count as usize {
            return true;
        }
        p.restarts.clear();
        p.deadline = None;
        let last = p
            .last_exit
            .as_ref()
            .map(|exit| format!("; last exit: {exit}"))
            .unwrap_or_default();
        let reason = format!(
            "restart limit reached: {count} restarts within {:?} (restart_limit {} within {:?}){last}",
            limit.within, limit.count, limit.within
        );
        log(out, name, format!("gave up: FATAL: {reason}"));
        p.gave_up = Some(reason);
        change_state(p, State::Fatal, out);
        false
    }

    /// Records that a child was paused by `signal`, or resumed (`None`).
    fn paused(&mut self, pid: u32, signal: Option<Signal>, now: Time, out: &mut Vec<Action>) {
        let Some(name) = self.by_pid(pid, |_| true) else {
            return; // an orphan of ours, or none at all
        };
        let Some(p) = self.processes.get_mut(&name) else {
            return;
        };
        // A second stop while stopped changes nothing (and after a takeover, a pause is
        // learned without its signal).
        if p.paused.is_some() == signal.is_some() {
            return;
        }
        p.paused = signal;
        let message = match signal {
            Some(signal) => format!("paused by {signal}"),
            None => "resumed (SIGCONT)".to_string(),
        };
        out.push(Action::Log(Notice {
            process: Some(p.name.clone()),
            message,
        }));
        let name = p.name.clone();
        self.pause_liveness(&name, signal.is_some(), now);
    }

    fn deadlines_passed(&mut self, now: Time, out: &mut Vec<Action>) {
        // Only the processes whose timers are due are looked at (the index files them all).
        let timers_due = self.index.due_by(now);
        let mut due: Vec<(String, Deadline)> = Vec::new();
        for name in &timers_due {
            let Some(p) = self.processes.get_mut(name) else {
                continue;
            };
            if let Some((at, kind)) = p.deadline {
                if at <= now {
                    p.deadline = None;
                    due.push((p.name.clone(), kind));
                }
            }
        }
        for (name, kind) in due {
            let Some(p) = self.processes.get_mut(&name) else {
                continue;
            };
            match (kind, p.state, p.pid) {
                (Deadline::StartTime, State::Starting, _) => self.enter_running(&name, now, out),
                (Deadline::ReadyTime, State::Starting, Some(_)) => {
                    let readytime = p.spec.readytime;
                    log(
                        out,
                        &name,
                        format!("not ready: no READY=1 within {readytime:?} (readytime)"),
                    );
                    self.stop_for(&name, ExitCause::NotReady, AfterStop::FailStart, now, out);
                }
                (Deadline::Retry, State::Backoff, _) => {
                    log(out, &name, format!("start attempt {}", p.backoff + 1));
                    self.spawn(&name, now, out);
                }
                (Deadline::Restart, State::Exited, _) if !self.shutting_down => {
                    self.spawn(&name, now, out);
                }
                (Deadline::Kill, State::Stopping, Some(pid)) => {
                    if p.stop_cause == Some(ExitCause::Stopped) {
                        p.stop_cause = Some(ExitCause::KilledAfterStoptime);
                    }
                    log(
                        out,
                        &name,
                        format!(
                            "still running {:?} after {}: sending SIGKILL",
                            p.spec.stoptime,
                            p.spec.stopsignal.name()
                        ),
                    );
                    out.push(Action::Signal {
                        pid,
                        signal: Signal::KILL,
                        scope: Scope::Group,
                    });
                }
                _ => {}
            }
        }
        self.liveness_timers(timers_due, now, out);
        self.lease_deadlines_passed(now, out);
    }

    /// Stdin writes were queued: the answer has one outcome per target.
    fn stdin_written(
        &mut self,
        ticket: Option<Ticket>,
        mut outcomes: Vec<Outcome>,
        written: Vec<(String, Result<(), String>)>,
        out: &mut Vec<Action>,
    ) {
        outcomes.extend(written.into_iter().map(|(process, result)| Outcome {
            process,
            result: result.map(|()| Done::Sent).map_err(Failure::NoStdin),
        }));
        answer(ticket, Reply::Outcomes(outcomes), out);
    }

    /// Log files were reopened: said in the event log, and answered.
    fn logs_reopened(
        &mut self,
        ticket: Option<Ticket>,
        files: usize,
        errors: Vec<String>,
        out: &mut Vec<Action>,
    ) {
        let summary = format!("log files reopened: {files}, errors: {}", errors.len());
        for message in std::iter::once(summary).chain(errors.iter().cloned()) {
            out.push(Action::Log(Notice {
                process: None,
                message,
            }));
        }
        answer(ticket, Reply::LogsReopened { files, errors }, out);
    }

    // ---- transitions --------------------------------------------------------------------

    /// STOPPED / EXITED / FATAL / BACKOFF -> STARTING: asks the runtime for a child. While
    /// the `on_exit` hook of the last child runs, the start waits for it.
    fn spawn(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        if p.deadline
            .is_some_and(|(_, kind)| kind == Deadline::Restart)
        {
            p.deadline = None;
        }
        if p.hook_running {
            if !p.start_after_hook {
                p.start_after_hook = true;
                log(out, name, "start waits for the on_exit hook".to_string());
            }
            return;
        }
        p.start_after_hook = false;
        if !self.singleton_may_start(name, now, out) {
            return;
        }
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.waiting = false;
        if p.started_at.is_some() {
            p.respawns += 1;
        }
        change_state(p, State::Starting, out);
        p.started_at = Some(now);
        p.spawn_error = None;
        p.gave_up = None;
        p.status_text = None;
        p.health = None;
        p.deadline = None;
        let spec = Arc::clone(&p.spec);
        let fencing_token = self.fencing_token(&spec);
        out.push(Action::Spawn {
            process: name.to_string(),
            spec,
            fencing_token,
        });
    }

    /// STARTING -> RUNNING: up for `starttime`, or ready.
    fn enter_running(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Running, out);
        p.backoff = 0;
        p.deadline = None;
        let message = match p.spec.ready {
            Readiness::Notify => {
                let after = p.started_at.map_or(Duration::ZERO, |at| now.since(at));
                format!("RUNNING: ready (READY=1 after {after:.1?})")
            }
            Readiness::Started if p.spec.starttime.is_zero() => "RUNNING".to_string(),
            Readiness::Started => format!("RUNNING: up for {:?} (starttime)", p.spec.starttime),
        };
        log(out, name, message);
        self.arm_liveness(name, now);
    }

    /// STARTING -> BACKOFF, then -> FATAL at once when `startretries` retries are spent, as
    /// supervisord goes (its listeners hear the last BACKOFF, with its tries, before the
    /// FATAL). The n-th retry waits n seconds, as supervisord's do.
    fn start_failed(&mut self, name: &str, now: Time, out: &mut Vec<Action>) {
        let shutting_down = self.shutting_down;
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.stopped_at = Some(now);
        p.deadline = None;
        if shutting_down || p.is_retiring() {
            change_state(p, State::Stopped, out);
            return;
        }
        p.backoff += 1;
        if p.backoff > p.spec.startretries {
            change_state(p, State::Backoff, out);
            change_state(p, State::Fatal, out);
            let attempts = p.backoff;
            p.backoff = 0;
            log(
                out,
                name,
                format!("gave up: FATAL after {attempts} failed start attempt(s)"),
            );
            return;
        }
        if !self.within_restart_limit(name, now, out) {
            return;
        }
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        change_state(p, State::Backoff, out);
        let delay = Duration::from_secs(u64::from(p.backoff));
        p.deadline = Some((now + delay, Deadline::Retry));
        log(
            out,
            name,
            format!(
                "BACKOFF: start failed ({} of {} retries used); next attempt in {}s",
                p.backoff,
                p.spec.startretries,
                delay.as_secs()
            ),
        );
    }

    /// Starts a process at rest; `Ok` means it is on its way (the outcome comes later).
    fn start_process(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<(), Failure> {
        if self.shutting_down {
            return Err(Failure::ShuttingDown);
        }
        let p = self.processes.get_mut(name).ok_or(Failure::NoSuchProcess)?;
        if p.is_retiring() {
            return Err(Failure::Removed);
        }
        match p.state {
            State::Starting | State::Running | State::Backoff => Err(Failure::AlreadyStarted),
            State::Stopping => {
                p.after_stop = AfterStop::Start;
                Ok(())
            }
            State::Stopped | State::Exited | State::Fatal | State::Unknown => {
                // A start by request begins afresh: no failed starts, no quick deaths counted.
                p.backoff = 0;
                p.restarts_in_row = 0;
                self.start_or_wait(name, Pull::AtRest, now, out);
                Ok(())
            }
        }
    }

    /// Stops a process; `Ok` means it is stopped or on its way.
    fn stop_process(
        &mut self,
        name: &str,
        now: Time,
        out: &mut Vec<Action>,
    ) -> Result<(), Failure> {
        let p = self.processes.get_mut(name).ok_or(Failure::NoSuchProcess)?;
        match (p.state, p.pid) {
            (State::Starting | State::Running, Some(_)) => {
                self.stop_for(name, ExitCause::Stopped, AfterStop::Nothing, now, out);
                Ok(())
            }
            (State::Starting | State::Running | State::Backoff, _) => {
                change_state(p, State::Stopped, out);
                p.deadline = None;
                p.start_after_hook = false;
                p.stopped_at = Some(now);
                log(out, name, "stopped (no child was running)".to_string());
                Ok(())
            }
            (State::Stopping, _) => {
                // A stop by request wins over what was to follow (a start, a restart by policy).
                if p.after_stop != AfterStop::Remove {
                    p.after_stop = AfterStop::Nothing;
                }
                Ok(())
            }
            // A restart is pending (a backoff delay, the on_exit hook, dependencies): the stop
            // cancels it.
            (State::Exited | State::Fatal | State::Stopped | State::Unknown, _)
                if p.start_pending() =>
            {
                p.deadline = None;
                p.start_after_hook = false;
                p.waiting = false;
                change_state(p, State::Stopped, out);
                log(out, name, "stopped (its restart is cancelled)".to_string());
                Ok(())
            }
            (State::Stopped | State::Exited | State::Fatal | State::Unknown, _) => {
                Err(Failure::NotRunning)
            }
        }
    }

    /// RUNNING / STARTING -> STOPPING: sends the stop signal, SIGKILL after `stoptime`.
    /// `cause` is what the exit will be classified as; `after` is what follows it.
    fn stop_for(
        &mut self,
        name: &str,
        cause: ExitCause,
        after: AfterStop,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        let Some(pid) = p.pid else {
            return;
        };
        change_state(p, State::Stopping, out);
        p.deadline = Some((now + p.spec.stoptime, Deadline::Kill));
        p.stop_cause = Some(cause);
        p.after_stop = after;
        let why = match &p.stop_cause {
            Some(ExitCause::Stopped) => "stop requested",
            _ => "stopping",
        };
        log(
            out,
            name,
            format!("{why}: sending {}", p.spec.stopsignal.name()),
        );
        out.push(Action::Signal {
            pid,
            signal: p.spec.stopsignal,
            scope: Scope::Group,
        });
        // A paused process would only act on its stop signal at SIGKILL time.
        if p.paused.is_some() {
            out.push(Action::Signal {
                pid,
                signal: Signal::CONT,
                scope: Scope::Group,
            });
        }
    }

    /// Adds every process of program `spec`, each with its own settings.
    fn add_program(&mut self, spec: &ProgramSpec, now: Time, out: &mut Vec<Action>) {
        for (name, process) in processes_of(spec) {
            self.add_process(name, process, now, out);
        }
    }

    /// Adds process `name`, and starts it if its program starts on its own.
    fn add_process(
        &mut self,
        name: String,
        spec: Arc<ProgramSpec>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let autostart = spec.autostart;
        self.insert_process(name.clone(), spec, out);
        if autostart && !self.shutting_down {
            self.start_or_wait(&name, Pull::NeverStarted, now, out);
        }
    }

    /// Adds the record of process `name`, announcing its group when it is the group's first.
    fn insert_process(&mut self, name: String, spec: Arc<ProgramSpec>, out: &mut Vec<Action>) {
        let group = spec.group_name();
        if !self.group_exists(group) {
            out.push(Action::Announce(Announcement::GroupAdded(
                group.to_string(),
            )));
        }
        self.index.specs = None;
        self.processes
            .insert(name.clone(), Process::new(name, spec));
    }

    /// Removes the record of process `name`, announcing its group's removal when it was the
    /// group's last.
    pub(crate) fn remove_process(&mut self, name: &str, out: &mut Vec<Action>) {
        let Some(removed) = self.processes.remove(name) else {
            return;
        };
        log(out, name, "removed".to_string());
        let group = removed.spec.group_name();
        if !self.group_exists(group) {
            out.push(Action::Announce(Announcement::GroupRemoved(
                group.to_string(),
            )));
        }
    }

    /// A container's rules: a `critical` program that ended for good (FATAL, or an exit that
    /// will not be restarted) ends the run with its exit code; with `exit_when_done`, the run
    /// ends once every program has ended for good.
    fn end_when_done(&mut self, now: Time, out: &mut Vec<Action>) {
        let ended = |p: &Process| {
            matches!(p.state, State::Exited | State::Fatal) && !p.start_pending() && !p.hook_running
        };
        // Only the `critical` programs' processes are looked at, not every process.
        self.refresh_specs();
        let critical = self
            .index
            .specs
            .iter()
            .flat_map(|specs| &specs.critical)
            .filter_map(|name| self.processes.get(name))
            .find(|p| p.spec.critical && ended(p))
            .map(|p| {
                let code = match p.last_exit.as_ref().and_then(|exit| exit.status) {
                    Some(ExitStatus::Code(code)) => u8::try_from(code).unwrap_or(1),
                    Some(ExitStatus::Signal { signal, .. }) => {
                        u8::try_from(128 + signal.number()).unwrap_or(255)
                    }
                    // FATAL without a child that ran: it never started.
                    None => 1,
                };
                (p.name.clone(), p.state, code)
            });
        if let Some((name, state, code)) = critical {
            self.exit_code = code;
            let message = format!(
                "{name} is critical and has ended ({state}): stopping everything, then exiting \
                 with its status {code}"
            );
            out.push(Action::Log(Notice {
                process: None,
                message,
            }));
            return self.shutdown(now, out);
        }
        let done = self.config.daemon.exit_when_done
            && self.waiting_processes.is_empty()
            && self.processes.values().all(|p| {
                let blocked = p.waiting && self.is_blocked(&p.name);
                ended(p) || (p.state == State::Stopped && (!p.start_pending() || blocked))
            });
        if done {
            out.push(Action::Log(Notice {
                process: None,
                message: "every program has ended and none will be restarted: exiting \
                          (exit_when_done)"
                    .to_string(),
            }));
            self.shutdown(now, out);
        }
    }

    fn shutdown(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        out.push(Action::Announce(Announcement::Stopping));
        self.waiting_processes.clear();
        self.held_stops.clear();
        for p in self.processes.values_mut() {
            if p.start_pending() {
                p.deadline = None;
                p.start_after_hook = false;
                p.waiting = false;
            }
        }
        out.push(Action::Log(Notice {
            process: None,
            message: "shutting down: stopping every process".to_string(),
        }));
        self.stop_next_level(now, out);
    }

    /// During a shutdown, as supervisord does: once nothing is stopping, stop every process
    /// of the highest priority still running; lower priorities wait until it is down.
    fn stop_next_level(&mut self, now: Time, out: &mut Vec<Action>) {
        loop {
            // STOPPING has a child: only the processes with one are looked at.
            if self.any_child(|p| p.state == State::Stopping) {
                return;
            }
            // Dependents first: a process waits while one that depends on it runs. The
            // programs with a running dependent are found once, not once per process.
            let running = |p: &Process| !p.state.is_stopped();
            let depended_on = self.depended_on_by_running();
            let free = |p: &Process| running(p) && !depended_on.contains(p.program());
            let Some(level) = self
                .processes
                .values()
                .filter(|p| free(p))
                .map(|p| p.spec.order())
                .max()
            else {
                return;
            };
            let names: Vec<String> = self
                .processes
                .values()
                .filter(|p| free(p) && p.spec.order() == level)
                .map(|p| p.name.clone())
                .collect();
            for name in names {
                let _ = self.stop_process(&name, now, out);
            }
        }
    }

    /// After every event: answer the requests whose processes have reached their goals, drop
    /// retired records, start programs that were waiting for them, and exit after a shutdown.
    fn settle(&mut self, now: Time, out: &mut Vec<Action>) {
        if !self.shutting_down {
            self.end_when_done(now, out);
        }
        // First, as it may stop more processes, which the waiters below must see.
        if self.shutting_down {
            self.stop_next_level(now, out);
        }
        self.release_held_stops(now, out);
        self.settle_cluster(now, out);
        self.settle_dependencies(now, out);
        let mut waiters = std::mem::take(&mut self.waiters);
        for waiter in &mut waiters {
            for item in &mut waiter.items {
                self.advance(item, now, out);
            }
        }
        for waiter in waiters {
            if waiter.items.iter().all(|item| item.goal.is_none()) {
                let outcomes = waiter.items.into_iter().flat_map(|i| i.outcomes).collect();
                out.push(Action::Reply {
                    ticket: waiter.ticket,
                    reply: Reply::Outcomes(outcomes),
                });
            } else {
                self.waiters.push(waiter);
            }
        }

        // Records retire only after a reload or a removal marked them: no look at every
        // record after every event otherwise.
        if !self.index.no_retiring {
            let retiring = self.processes.values().filter(|p| p.is_retiring());
            let retired: Vec<String> = retiring
                .clone()
                .filter(|p| p.state.is_stopped())
                .map(|p| p.name.clone())
                .collect();
            let left = retiring.count() - retired.len();
            for name in retired {
                self.remove_process(&name, out);
            }
            self.index.no_retiring = left == 0;
        }

        let mut ready: Vec<(String, Arc<ProgramSpec>)> = self
            .waiting_processes
            .iter()
            .filter(|(name, _)| !self.processes.contains_key(*name))
            .map(|(name, spec)| (name.clone(), Arc::clone(spec)))
            .collect();
        ready.sort_by_key(|(_, spec)| spec.order());
        for (name, spec) in ready {
            self.waiting_processes.remove(&name);
            self.add_process(name, spec, now, out);
        }

        // Hooks are waited for too: a cleanup cut short by the exit would leave what it cleans.
        let all_done = |s: &Self| {
            !s.any_child(|_| true)
                && s.processes
                    .values()
                    .all(|p| p.pid.is_none() && !p.hook_running)
        };
        if self.shutting_down && !self.exit_sent && all_done(self) {
            self.exit_sent = true;
            out.push(Action::Exit);
        }
    }

    /// Moves one waiting item on, recording its outcome once its goal is reached or missed.
    fn advance(&mut self, item: &mut WaitItem, now: Time, out: &mut Vec<Action>) {
        let Some(goal) = item.goal else {
            return;
        };
        let Some(p) = self.processes.get(&item.process) else {
            item.finish(Err(Failure::Removed));
            return;
        };
        // A singleton held elsewhere will not start here unless something changes there.
        let standby = self.standing_by(&item.process);
        match goal {
            Goal::Running => match p.state {
                State::Running => item.finish(Ok(Done::Started)),
                State::Starting | State::Stopping => {}
                _ if standby.is_some() => {
                    item.finish(Err(Failure::Blocked(standby.unwrap_or_default())));
                }
                _ if p.waiting && self.is_blocked(&item.process) => {
                    let unmet = self.unmet(&item.process).join(", ");
                    item.finish(Err(Failure::Blocked(format!("waiting for {unmet}"))));
                }
                _ if p.start_pending() => {}
                _ if self.shutting_down => item.finish(Err(Failure::ShuttingDown)),
                _ => match &p.spawn_error {
                    Some(error) => item.finish(Err(Failure::SpawnError(error.clone()))),
                    None => item.finish(Err(Failure::AbnormalTermination)),
                },
            },
            Goal::Stopped | Goal::StoppedThenRunning
                if !(p.state.is_stopped() || p.stops > item.stops_before) => {}
            Goal::Stopped => item.finish(Ok(Done::Stopped)),
            Goal::StoppedThenRunning => {
                item.record(Ok(Done::Stopped));
                // Someone else's start may already have it on its way up.
                if matches!(p.state, State::Starting | State::Running) {
                    item.goal = Some(Goal::Running);
                } else {
                    match self.start_process(&item.process, now, out) {
                        Ok(()) => item.goal = Some(Goal::Running),
                        Err(failure) => item.finish(Err(failure)),
                    }
                }
            }
        }
    }
}

impl WaitItem {
    fn record(&mut self, result: Result<Done, Failure>) {
        self.outcomes.push(Outcome {
            process: self.process.clone(),
            result,
        });
    }

    fn finish(&mut self, result: Result<Done, Failure>) {
        self.record(result);
        self.goal = None;
    }
}

/// Moves a process to `state`, announcing the change to whoever follows events.
fn change_state(p: &mut Process, state: State, out: &mut Vec<Action>) {
    if p.state != state {
        if state == State::Stopped {
            p.stops += 1;
        }
        if p.state == State::Running {
            // Heartbeats and health checks are for a RUNNING process only.
            p.liveness = Liveness::default();
        }
        out.push(Action::StateChanged {
            process: p.name.clone(),
            from: p.state,
            to: state,
            pid: p.pid.or(p.last_pid),
            tries: p.backoff,
            expected: p.last_exit.as_ref().is_none_or(|exit| exit.expected),
        });
        p.state = state;
    }
}

/// Answers `ticket`, when somebody waits for the answer.
fn answer(ticket: Option<Ticket>, reply: Reply, out: &mut Vec<Action>) {
    if let Some(ticket) = ticket {
        out.push(Action::Reply { ticket, reply });
    }
}

fn log(out: &mut Vec<Action>, process: &str, message: String) {
    out.push(Action::Log(Notice {
        process: Some(process.to_string()),
        message,
    }));
}

/// The running map of programs `running`, its entries made those of the map just `read`:
/// programs gone are removed, new ones inserted, and every slot takes the read value. The
/// running map keeps its nodes, allocated at start; the read one, built beside the loop among
/// the parse's temporaries, goes whole (with the values it now holds), so that the heap the
/// reading used can be given back rather than stay pinned by the nodes of a map kept.
fn with_entries_of(
    mut running: BTreeMap<String, ProgramSpec>,
    mut read: BTreeMap<String, ProgramSpec>,
) -> BTreeMap<String, ProgramSpec> {
    running.retain(|name, _| read.contains_key(name));
    let arriving: Vec<String> = read
        .keys()
        .filter(|name| !running.contains_key(*name))
        .cloned()
        .collect();
    for name in arriving {
        if let Some(spec) = read.remove(&name) {
            running.insert(name, spec);
        }
    }
    // Both in name order: each kept slot meets its read value in one pass.
    let mut read_entries = read.iter_mut().peekable();
    for (name, kept) in running.iter_mut() {
        while read_entries
            .next_if(|(read_name, _)| *read_name < name)
            .is_some()
        {}
        if let Some((_, value)) = read_entries.next_if(|(read_name, _)| *read_name == name) {
            std::mem::swap(kept, value);
        }
    }
    running
}

/// `config` with its programs in a map built anew from its sorted entries: a map filled one
/// insertion at a time keeps nodes half empty, and each slot holds a whole `ProgramSpec`
/// (1.1 KB), which at 10,000 programs is megabytes of room for nothing.
fn compacted(mut config: Config) -> Config {
    config.programs = std::mem::take(&mut config.programs).into_iter().collect();
    config
}

/// Programs in the order they start: ascending priority, then name.
/// Every process of program `spec`: the name users address it by, and its settings.
fn processes_of(spec: &ProgramSpec) -> impl Iterator<Item = (String, Arc<ProgramSpec>)> + '_ {
    spec.processes
        .iter()
        .map(|process| (spec.full_name(&process.name), Arc::clone(&process.spec)))
}

fn by_priority(specs: impl Iterator<Item = ProgramSpec>) -> Vec<ProgramSpec> {
    let mut specs: Vec<ProgramSpec> = specs.collect();
    specs.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(yaml: &str) -> BTreeMap<String, ProgramSpec> {
        Config::parse(yaml, std::path::Path::new("/srv/t.yaml"))
            .expect("a configuration")
            .programs
    }

    #[test]
    fn the_running_map_takes_the_read_entries_gone_new_and_changed() {
        let running = programs("programs:\n  a: {cmd: x}\n  b: {cmd: y}\n  c: {cmd: z}\n");
        let read = programs("programs:\n  b: {cmd: y2}\n  c: {cmd: z}\n  d: {cmd: w}\n");
        let expected = read.clone();
        assert_eq!(with_entries_of(running, read), expected);
    }
}
