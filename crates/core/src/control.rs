//! What users ask of the supervisor and what it answers: the control interface shared by the
//! shell, `ctl` and the API. These are core types, not wire types: the API crate maps them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmaster_config::{Config, ReloadPlan, Signal, Stream};

use crate::process::{Health, LastExit, State};
use crate::time::Time;

/// Identifies a request whose reply comes later, in an [`crate::Action::Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ticket(pub u64);

/// A request from a user. Targets are the words the user typed: `web`, `workers:*`,
/// `workers:workers_00`, a group name, or `all`; an empty list means all (for status and pid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Status(Vec<String>),
    /// Start, and answer once each process is RUNNING or has failed to start.
    Start(Vec<String>),
    /// Stop, and answer once each process has stopped.
    Stop(Vec<String>),
    /// Stop then start each process.
    Restart(Vec<String>),
    Signal {
        signal: Signal,
        targets: Vec<String>,
    },
    /// The panic button: SIGKILL to each process's whole group at once. The process is then
    /// restarted as `autorestart` says, unless `restart` is false. `by` names who pressed it
    /// (peer uid and pid), for the event log.
    Kill {
        targets: Vec<String>,
        restart: bool,
        by: String,
    },
    /// The pids of processes; with no target, taskmaster's own.
    Pid(Vec<String>),
    /// Re-read the configuration file and apply the difference.
    Reload,
    /// Re-read the configuration file and say what differs, changing nothing: the new file
    /// is kept staged for [`Request::AddGroup`] (supervisord's `reloadConfig`).
    Reread,
    /// Add programs from the staged configuration (supervisord's `addProcessGroup`).
    AddGroup(Vec<String>),
    /// Remove programs whose processes have all stopped (supervisord's `removeProcessGroup`).
    RemoveGroup(Vec<String>),
    /// The configuration in force, and the one staged by a reread if any.
    Config,
    /// Whether the daemon is running or shutting down.
    DaemonState,
    /// What `/metrics` shows: every process with its counters, and the daemon's.
    Metrics,
    /// The cluster as this node knows it: the nodes alive and who holds each singleton.
    Cluster,
    /// Stop every process, then exit.
    Shutdown,
    /// Hand over to the hot backup (`run --pair`) and exit, every process left running; with
    /// `upgrade`, to a backup freshly started from the executable's file (a live upgrade).
    Handover {
        upgrade: bool,
    },
    /// Reopen log files at their paths, after an outside `logrotate` renamed them: those of
    /// the processes named, or with no name every one (the programs' and the event log).
    ReopenLogs(Vec<String>),
    /// Write `data` to the stdin pipe of each process (`stdin: pipe`): `sendstdin`, and the
    /// keystrokes of `attach`. Answered once the data is queued for the pipe.
    SendStdin {
        targets: Vec<String>,
        data: Vec<u8>,
    },
    /// supervisord's REMOTE_COMMUNICATION event (`supervisor.sendRemoteCommEvent`): `kind` is
    /// its `type` header, `data` its body. Recorded in the event log; answered
    /// [`Reply::Recorded`].
    RemoteCommEvent {
        kind: String,
        data: String,
    },
    /// A line for the event log from a service of the daemon (a refused login, with its
    /// peer); answered [`Reply::Recorded`].
    Note(String),
    /// Send a test message to every alert destination (`alerts test`); answered
    /// [`Reply::AlertsTested`] with what each answered.
    TestAlerts,
}

impl fmt::Display for Request {
    /// The request as a shell command, for the event log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, targets) = match self {
            Request::Status(t) => ("status", t),
            Request::Start(t) => ("start", t),
            Request::Stop(t) => ("stop", t),
            Request::Restart(t) => ("restart", t),
            Request::Signal { signal, targets } => {
                return write!(f, "signal {} {}", signal.name(), targets.join(" "));
            }
            Request::Kill {
                targets,
                restart,
                by,
            } => {
                let flag = if *restart { "" } else { " --no-restart" };
                return write!(f, "kill{flag} {} (by {by})", targets.join(" "));
            }
            Request::Pid(t) => ("pid", t),
            Request::Reload => return f.write_str("reload"),
            Request::Reread => return f.write_str("reread"),
            Request::AddGroup(t) => ("add", t),
            Request::RemoveGroup(t) => ("remove", t),
            Request::Config => return f.write_str("config"),
            Request::DaemonState => return f.write_str("state"),
            Request::Metrics => return f.write_str("metrics"),
            Request::Cluster => return f.write_str("cluster"),
            Request::Shutdown => return f.write_str("shutdown"),
            Request::Handover { upgrade: false } => return f.write_str("takeover"),
            Request::Handover { upgrade: true } => return f.write_str("upgrade"),
            Request::ReopenLogs(t) => ("logrotate", t),
            Request::SendStdin { targets, data } => {
                return write!(f, "sendstdin {} ({} bytes)", targets.join(" "), data.len());
            }
            Request::RemoteCommEvent { kind, data } => {
                return write!(f, "remotecomm {kind:?} ({} bytes)", data.len());
            }
            Request::Note(_) => return f.write_str("note"),
            Request::TestAlerts => return f.write_str("alerts test"),
        };
        f.write_str(verb)?;
        for target in targets {
            write!(f, " {target}")?;
        }
        Ok(())
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Status {
        /// The supervisor's clock when the snapshot was taken, to turn times into ages.
        now: Time,
        processes: Vec<ProcessInfo>,
        /// Targets that named nothing.
        errors: Vec<Outcome>,
        /// The process pair, when taskmaster runs as one (`run --pair`).
        pair: Option<PairInfo>,
    },
    /// One line per process and step: `web: started`, `api: ERROR (spawn error)`.
    Outcomes(Vec<Outcome>),
    Pids {
        /// Pid per process; `None` when it has no child.
        pids: Vec<(String, Option<u32>)>,
        errors: Vec<Outcome>,
    },
    /// taskmaster's own pid (`pid` with no target).
    DaemonPid(u32),
    Reloaded(ReloadPlan),
    /// What a reread found different; nothing was changed.
    Compared(ReloadPlan),
    Config {
        active: Box<Config>,
        staged: Option<Box<Config>>,
    },
    /// The new configuration was invalid; nothing changed. One message per error.
    ReloadRejected(Vec<String>),
    ShuttingDown,
    DaemonState {
        shutting_down: bool,
    },
    /// Boxed: far bigger than the other replies.
    Metrics(Box<Metrics>),
    /// `None`: this taskmaster is in no cluster.
    Cluster(Option<Box<crate::cluster::ClusterInfo>>),
    /// This taskmaster handed over to its backup, this pid, and exits.
    HandedOver(u32),
    /// No handover: the text says why (not a pair, shutting down, no backup came).
    HandoverRefused(String),
    /// The log files were reopened: how many, and the errors (one per file that failed).
    LogsReopened {
        files: usize,
        errors: Vec<String>,
    },
    /// A remote communication event was written to the event log.
    Recorded,
    /// A test message went to each alert destination: what each answered (`Ok`) or why it
    /// failed, by destination (`webhook http://...`, `email smtp 127.0.0.1:25`, `syslog`).
    /// Empty: `alerting:` names no destination.
    AlertsTested(Vec<(String, Result<String, String>)>),
}

/// What happened to one process for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub process: String,
    pub result: Result<Done, Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Done {
    Started,
    Stopped,
    Signalled,
    /// SIGKILL was sent to its process group (the kill button).
    Killed,
    /// A program (process group) was added.
    Added,
    /// A program (process group) was removed.
    Removed,
    /// Data was queued for its stdin pipe.
    Sent,
}

/// Why a request failed for one process. The texts are supervisorctl's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    NoSuchProcess,
    AlreadyStarted,
    NotRunning,
    /// The program could not be executed; the text says why.
    SpawnError(String),
    /// It exited before it was up for `starttime`.
    AbnormalTermination,
    /// It was removed from the configuration while the request waited.
    Removed,
    ShuttingDown,
    /// The program is already in force (add).
    AlreadyAdded,
    /// Some of the program's processes are not stopped (remove).
    StillRunning,
    /// Its stdin takes no data; the text says why (not a pipe, closed by the process, full).
    NoStdin(String),
    /// It waits for what it depends on, which will not come unless someone acts (a
    /// dependency is FATAL, or stopped); the text says what it waits for.
    Blocked(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(Done::Started) => write!(f, "{}: started", self.process),
            Ok(Done::Stopped) => write!(f, "{}: stopped", self.process),
            Ok(Done::Signalled) => write!(f, "{}: signalled", self.process),
            Ok(Done::Killed) => write!(f, "{}: killed", self.process),
            Ok(Done::Added) => write!(f, "{}: added process group", self.process),
            Ok(Done::Removed) => write!(f, "{}: removed process group", self.process),
            Ok(Done::Sent) => write!(f, "{}: sent", self.process),
            Err(Failure::NoStdin(why)) => write!(f, "{}: ERROR (no stdin: {why})", self.process),
            Err(Failure::Blocked(why)) => write!(f, "{}: ERROR ({why})", self.process),
            Err(failure) => write!(f, "{}: ERROR ({failure})", self.process),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::NoSuchProcess => "no such process",
            Failure::AlreadyStarted => "already started",
            Failure::NotRunning => "not running",
            Failure::SpawnError(_) => "spawn error",
            Failure::AbnormalTermination => "abnormal termination",
            Failure::Removed => "removed from the configuration",
            Failure::ShuttingDown => "shutting down",
            Failure::AlreadyAdded => "already added",
            Failure::StillRunning => "process group still running",
            Failure::NoStdin(_) => "no stdin",
            Failure::Blocked(_) => "blocked by its dependencies",
        })
    }
}

/// A process pair (`run --pair`): who is primary, who is the hot backup, what happened.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairInfo {
    pub primary_pid: u32,
    /// The backup's pid, while one runs.
    pub backup_pid: Option<u32>,
    /// Whether that backup has the state and every child's descriptors: only then can it
    /// take over. Until it does, the pair is one process, and a second failure is fatal.
    #[serde(default)]
    pub backup_connected: bool,
    /// How many times a backup has taken over in this pair's life.
    pub takeovers: u32,
    /// When the last takeover happened, and why.
    pub last_takeover: Option<(Time, String)>,
}

impl PairInfo {
    /// `pair: primary pid 42, backup pid 43, 2 takeovers, the last 0:00:12 ago (...)`.
    pub fn describe(&self, now: Time) -> String {
        let backup = match (self.backup_pid, self.backup_connected) {
            (Some(pid), true) => format!("backup pid {pid}"),
            (Some(pid), false) => format!("NO BACKUP YET (pid {pid} is starting)"),
            (None, _) => "NO BACKUP YET (one is being started)".to_string(),
        };
        let mut line = format!("pair: primary pid {}, {backup}", self.primary_pid);
        match &self.last_takeover {
            Some((at, reason)) => line.push_str(&format!(
                ", {} takeover(s), the last {} ago ({reason})",
                self.takeovers,
                format_uptime(now.since(*at))
            )),
            None => line.push_str(", no takeover yet"),
        }
        line
    }
}

/// A snapshot of one process, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub name: String,
    pub program: String,
    /// The group it is addressed in: its program's, or the `[group:x]` its program is in.
    #[serde(default)]
    pub group: String,
    pub state: State,
    pub pid: Option<u32>,
    pub started_at: Option<Time>,
    pub stopped_at: Option<Time>,
    pub spawn_error: Option<String>,
    pub last_exit: Option<LastExit>,
    /// The files its stdout and stderr go to, if any.
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    /// Whether its stdout and stderr lines are sent to syslog (besides their files, if any).
    #[serde(default)]
    pub stdout_syslog: bool,
    #[serde(default)]
    pub stderr_syslog: bool,
    /// The signal that paused the child, while it is paused: paused is not dead.
    pub paused: Option<Signal>,
    /// The child's own status text (`STATUS=` on the notify socket).
    pub status_text: Option<String>,
    /// What its health checks say; `None` without a `healthcheck`.
    pub health: Option<Health>,
    /// Why it is FATAL when that is not failed starts (the restart limit).
    pub gave_up: Option<String>,
    /// What its start waits for (`depends_on`), one text each: `db (BACKOFF)`; empty when
    /// it waits for nothing.
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// Where it runs in the cluster, for a `singleton` program.
    #[serde(default)]
    pub cluster: Option<crate::cluster::SingletonInfo>,
}

/// Every process with its counters, and the daemon's: what `/metrics` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The supervisor's clock when the snapshot was taken.
    pub now: Time,
    pub processes: Vec<ProcessMetrics>,
    pub reloads: ReloadCounts,
    /// Takeovers of the process pair (0 without one).
    pub takeovers: u64,
    /// Alert messages delivered and failed, by destination.
    #[serde(default)]
    pub alerts_sent: std::collections::BTreeMap<String, DeliveryCounts>,
}

/// Alert messages to one destination: delivered, and failed after their retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    pub sent: u64,
    pub failed: u64,
}

/// One process and its counters since taskmaster started (a takeover keeps them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetrics {
    pub info: ProcessInfo,
    /// Children spawned again after the first.
    pub restarts: u64,
    /// Children ended, by cause (`crashed`, `exited`...).
    pub exits: std::collections::BTreeMap<String, u64>,
    /// Bytes written on stdout and stderr since this taskmaster started (a takeover starts
    /// them again).
    pub output: [u64; 2],
}

/// Reloads applied, and refused for a file with errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadCounts {
    pub applied: u64,
    pub refused: u64,
}

/// The message supervisord shows for a start that failed by exiting early.
pub const EXITED_TOO_QUICKLY: &str = "Exited too quickly (process log may have details)";

impl ProcessInfo {
    /// The file `stream` goes to, or why there is none (the message for `tail` and the log
    /// routes).
    pub fn log_file(&self, stream: Stream) -> Result<&Path, String> {
        let (file, to_syslog) = match stream {
            Stream::Stdout => (&self.stdout, self.stdout_syslog),
            Stream::Stderr => (&self.stderr, self.stderr_syslog),
        };
        let (name, stream) = (&self.name, stream.name());
        match file {
            Some(file) => Ok(file),
            None if to_syslog => Err(format!("{name}'s {stream} goes to syslog; no log file")),
            None => Err(format!(
                "{name}'s {stream} is discarded (no `{stream}:` file in its configuration)"
            )),
        }
    }

    /// supervisorctl's description column: `pid 4242, uptime 0:01:02` when running, the reason
    /// when failed, the stop time when stopped, what it waits for when it waits. `now` is the snapshot's time; `date` renders the
    /// wall-clock date of a moment that lies the given duration in the past.
    pub fn description(&self, now: Time, date: impl Fn(Duration) -> String) -> String {
        if !self.waiting_for.is_empty() {
            return format!("waiting for {}", self.waiting_for.join(", "));
        }
        if let Some(cluster) = &self.cluster {
            if self.pid.is_none() && self.state == State::Stopped {
                return cluster.standby();
            }
        }
        let mut parts: Vec<String> = Vec::new();
        match self.state {
            State::Running => {
                if let (Some(pid), Some(started)) = (self.pid, self.started_at) {
                    parts.push(format!(
                        "pid {pid}, uptime {}",
                        format_uptime(now.since(started))
                    ));
                }
            }
            State::Backoff | State::Fatal => parts.push(
                self.gave_up
                    .clone()
                    .or_else(|| self.spawn_error.clone())
                    .unwrap_or_else(|| EXITED_TOO_QUICKLY.to_string()),
            ),
            State::Stopped | State::Exited => match self.stopped_at {
                Some(stopped) => {
                    parts.push(date(now.since(stopped)));
                    if let Some(last_exit) = &self.last_exit {
                        parts.push(last_exit.to_string());
                    }
                }
                None => parts.push("Not started".to_string()),
            },
            State::Starting | State::Stopping | State::Unknown => {}
        }
        if self.pid.is_some() {
            if let Some(signal) = self.paused {
                parts.push(format!("paused ({signal})"));
            }
            if let Some(health) = &self.health {
                parts.push(health.to_string());
            }
            if let Some(text) = &self.status_text {
                parts.push(format!("status: {text}"));
            }
        }
        parts.join(", ")
    }
}

/// `H:MM:SS`, or `N days, H:MM:SS`, as supervisorctl prints uptimes.
pub fn format_uptime(uptime: Duration) -> String {
    let secs = uptime.as_secs();
    let (days, secs) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_formatted_like_supervisorctl() {
        assert_eq!(format_uptime(Duration::from_secs(62)), "0:01:02");
        assert_eq!(format_uptime(Duration::from_secs(3 * 3600 + 5)), "3:00:05");
        assert_eq!(
            format_uptime(Duration::from_secs(2 * 86_400 + 61)),
            "2 days, 0:01:01"
        );
    }

    #[test]
    fn outcomes_read_like_supervisorctl() {
        let ok = Outcome {
            process: "web".into(),
            result: Ok(Done::Started),
        };
        assert_eq!(ok.to_string(), "web: started");
        let err = Outcome {
            process: "api".into(),
            result: Err(Failure::SpawnError("no such file".into())),
        };
        assert_eq!(err.to_string(), "api: ERROR (spawn error)");
    }
}
