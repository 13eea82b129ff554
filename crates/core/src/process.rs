use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmaster_config::{ProgramSpec, Signal};

use crate::time::Time;

/// supervisord's process states. Extra facts (a spawn error, the last exit) are attributes
/// beside the state, never new states, so tools that know supervisord understand ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Not running, and not asked to: the state before the first start and after a stop.
    Stopped,
    /// Spawned, but not yet up for `starttime`.
    Starting,
    /// Up for at least `starttime`.
    Running,
    /// The last start failed; another attempt is scheduled.
    Backoff,
    /// Asked to stop; waiting for it to exit.
    Stopping,
    /// Exited by itself from RUNNING.
    Exited,
    /// Gave up after `startretries` failed starts.
    Fatal,
    /// Unused by our transitions; kept because supervisord's clients know it.
    Unknown,
}

impl State {
    /// The name supervisord uses, e.g. `RUNNING`.
    pub fn name(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Backoff => "BACKOFF",
            State::Stopping => "STOPPING",
            State::Exited => "EXITED",
            State::Fatal => "FATAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// Whether the process is at rest: no child, nothing scheduled.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            State::Stopped | State::Exited | State::Fatal | State::Unknown
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a child ended, as waitpid reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It called exit(code).
    Code(i32),
    /// A signal ended it.
    Signal { signal: Signal, core_dumped: bool },
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {signal}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a process is no longer running: the classification every exit gets, in status, the
/// event log, the API and the environment of an `on_exit` hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitCause {
    /// It called exit(code) by itself.
    Exited,
    /// A signal from outside ended it.
    Killed,
    /// It died of a fault of its own: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP.
    Crashed,
    /// taskmaster stopped it because its heartbeats stopped; the text says how.
    Hung(String),
    /// taskmaster stopped it because its health check failed; the text is the last failure.
    Unhealthy(String),
    /// taskmaster stopped it because it did not send READY=1 within `readytime`.
    NotReady,
    /// No child could be started; the text is the error.
    SpawnFailed(String),
    /// Stopped by request, and it obeyed its stopsignal.
    Stopped,
    /// Stopped by request, but still running after `stoptime`: killed with SIGKILL.
    KilledAfterStoptime,
    /// The panic button: SIGKILL by request.
    KilledByRequest,
    /// A cluster singleton stopped because this node may no longer hold its key; the text
    /// says why.
    LeaseLost(String),
}

impl ExitCause {
    /// A stable one-word name, for the API and `TASKMASTER_EXIT_CAUSE`.
    pub fn name(&self) -> &'static str {
        match self {
            ExitCause::Exited => "exited",
            ExitCause::Killed => "killed",
            ExitCause::Crashed => "crashed",
            ExitCause::Hung(_) => "hung",
            ExitCause::Unhealthy(_) => "unhealthy",
            ExitCause::NotReady => "not_ready",
            ExitCause::SpawnFailed(_) => "spawn_failed",
            ExitCause::Stopped => "stopped",
            ExitCause::KilledAfterStoptime => "killed_after_stoptime",
            ExitCause::KilledByRequest => "killed_by_request",
            ExitCause::LeaseLost(_) => "lease_lost",
        }
    }

    /// The cause of an exit nobody asked for, from the wait status alone.
    pub fn of_status(status: ExitStatus) -> ExitCause {
        match status {
            ExitStatus::Code(_) => ExitCause::Exited,
            ExitStatus::Signal { signal, .. } if signal.is_fault() => ExitCause::Crashed,
            ExitStatus::Signal { .. } => ExitCause::Killed,
        }
    }
}

/// The last exit of a process: how it ended, why, and whether `exitcodes` expected it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// The wait status; `None` when no child was started.
    pub status: Option<ExitStatus>,
    pub cause: ExitCause,
    pub expected: bool,
}

impl fmt::Display for LastExit {
    /// `exited with code 3 (not expected)`, `crashed: SIGSEGV (core dumped)`,
    /// `hung: no heartbeat for 5.0s (killed by SIGTERM)`...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.expected {
            "expected"
        } else {
            "not expected"
        };
        match (&self.cause, self.status) {
            (ExitCause::Exited, Some(ExitStatus::Code(code))) => {
                write!(f, "exited with code {code} ({verdict})")
            }
            (
                ExitCause::Crashed,
                Some(ExitStatus::Signal {
                    signal,
                    core_dumped,
                }),
            ) => {
                write!(f, "crashed: {signal}")?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            (ExitCause::Killed, Some(status)) => write!(f, "{status} ({verdict})"),
            (ExitCause::Exited | ExitCause::Crashed, Some(status)) => write!(f, "{status}"),
            (cause, status) => {
                match cause {
                    ExitCause::Hung(how) => write!(f, "hung: {how}")?,
                    ExitCause::Unhealthy(why) => write!(f, "unhealthy: {why}")?,
                    ExitCause::NotReady => f.write_str("not ready within its readytime")?,
                    ExitCause::SpawnFailed(error) => write!(f, "failed to spawn: {error}")?,
                    ExitCause::Stopped => f.write_str("stopped by request")?,
                    ExitCause::KilledAfterStoptime => f.write_str("killed after stoptime")?,
                    ExitCause::KilledByRequest => f.write_str("killed by request")?,
                    ExitCause::LeaseLost(why) => write!(f, "lease lost: {why}")?,
                    ExitCause::Exited | ExitCause::Killed | ExitCause::Crashed => {
                        f.write_str(cause.name())?
                    }
                }
                match status {
                    Some(status) => write!(f, " ({status})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl LastExit {
    /// How it ended, in the fewest words: the wait status (`killed by SIGTERM`) when that
    /// says it all, the classification when it adds something (`crashed: SIGSEGV`).
    pub fn how(&self) -> String {
        match (&self.cause, self.status) {
            (
                ExitCause::Exited
                | ExitCause::Killed
                | ExitCause::Stopped
                | ExitCause::KilledAfterStoptime,
                Some(status),
            ) => status.to_string(),
            _ => self.to_string(),
        }
    }
}

/// What the last health checks of a process said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// No check has counted yet (none has run, or it is within `start_period`).
    Unknown,
    Healthy,
    /// The last `failures` checks failed; at `retries` the process is unhealthy and restarted.
    Failing {
        failures: u32,
        detail: String,
    },
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Unknown => f.write_str("health unknown"),
            Health::Healthy => f.write_str("healthy"),
            Health::Failing { failures, detail } => {
                write!(f, "health check failing ({failures} in a row): {detail}")
            }
        }
    }
}

/// What a deadline of a process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Deadline {
    /// STARTING: up for `starttime` then, so RUNNING.
    StartTime,
    /// STARTING with `ready: notify`: no READY=1 by then, so the start failed.
    ReadyTime,
    /// BACKOFF: try to start again.
    Retry,
    /// EXITED: the `backoff` delay before an automatic restart is over.
    Restart,
    /// STOPPING: `stoptime` is over, so SIGKILL.
    Kill,
}

/// The liveness timers of a RUNNING process, beside its state deadline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Liveness {
    /// The watchdog period in force (`watchdog:`, or WATCHDOG_USEC= from the child).
    pub watchdog: Option<Duration>,
    /// When the watchdog declares the process hung, unless a heartbeat comes first.
    pub watchdog_due: Option<Time>,
    /// What was left of the watchdog period when an outside signal paused the process.
    pub watchdog_left: Option<Duration>,
    /// When the next health check is due.
    pub probe_due: Option<Time>,
    /// A health check is running (its result comes as an event).
    pub probing: bool,
}

impl Liveness {
    /// The earliest of its timers.
    pub fn next_due(&self) -> Option<Time> {
        [self.watchdog_due, self.probe_due]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What to do once a stopping process has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AfterStop {
    Nothing,
    /// Start it again (a start request arrived while it was stopping).
    Start,
    /// Remove the record (its program left the configuration, or changed).
    Remove,
    /// Treat it as an exit from RUNNING: restart it as `autorestart` says (after the watchdog,
    /// a failed health check or the kill button).
    Policy,
    /// Count it as a failed start (no READY=1 within `readytime`).
    FailStart,
    /// Wait for its dependencies, then start (`restart: true`: a dependency stopped).
    WaitForDependencies,
}

/// One supervised process: the record the state machine updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// The name users address it by: `web`, or `workers:workers_00` in a group.
    pub name: String,
    pub spec: Arc<ProgramSpec>,
    pub state: State,
    /// The child's pid while there is a child.
    pub pid: Option<u32>,
    /// The pid of the current or last child, for what is said of it once it is gone.
    #[serde(default)]
    pub last_pid: Option<u32>,
    /// When the current or last child was spawned.
    pub started_at: Option<Time>,
    /// When the last child ended or the process was stopped.
    pub stopped_at: Option<Time>,
    /// Failed starts in a row (supervisord's `backoff`).
    pub backoff: u32,
    /// Why the last spawn failed, if it did.
    pub spawn_error: Option<String>,
    pub last_exit: Option<LastExit>,
    /// The signal that paused the child (SIGSTOP, SIGTSTP...), while it is paused.
    pub paused: Option<Signal>,
    /// The child's own words about itself (`STATUS=` on the notify socket).
    pub status_text: Option<String>,
    /// What the health checks say; `None` without a `healthcheck`.
    pub health: Option<Health>,
    /// Why it is FATAL, when it is not for failed starts (the restart limit).
    pub gave_up: Option<String>,
    pub(crate) deadline: Option<(Time, Deadline)>,
    pub(crate) liveness: Liveness,
    /// Why taskmaster is stopping it, for the exit's classification.
    pub(crate) stop_cause: Option<ExitCause>,
    /// Its `on_exit` hook is running: no child may start until it is done.
    pub(crate) hook_running: bool,
    /// A start is waiting for the hook to finish.
    pub(crate) start_after_hook: bool,
    /// When its recent automatic restarts happened, for `restart_limit`.
    pub(crate) restarts: Vec<Time>,
    /// Automatic restarts in a row after short runs, for the `backoff` delay.
    pub(crate) restarts_in_row: u32,
    pub(crate) after_stop: AfterStop,
    /// An exit that waits for the rest of the child's process group to be gone (`killgroup`):
    /// the child has exited, but the process is STOPPING, its pid the group's id, until then.
    #[serde(default)]
    pub(crate) held_exit: Option<LastExit>,
    /// How many times it has come to STOPPED: a request waiting for a stop compares counts,
    /// since the process may be started again within the very event that stopped it.
    pub(crate) stops: u64,
    /// A start is held until what it depends on is there (`depends_on`): STOPPED, waiting.
    #[serde(default)]
    pub(crate) waiting: bool,
    /// How many times a child was spawned again after the first (by policy, by request, a
    /// retry), for the metrics.
    #[serde(default)]
    pub respawns: u64,
    /// How many children ended, by cause ([`ExitCause::name`]), for the metrics.
    #[serde(default)]
    pub exits: std::collections::BTreeMap<String, u64>,
}

impl Process {
    pub(crate) fn new(name: String, spec: Arc<ProgramSpec>) -> Process {
        Process {
            name,
            spec,
            state: State::Stopped,
            pid: None,
            last_pid: None,
            started_at: None,
            stopped_at: None,
            backoff: 0,
            spawn_error: None,
            last_exit: None,
            paused: None,
            status_text: None,
            health: None,
            gave_up: None,
            deadline: None,
            liveness: Liveness::default(),
            stop_cause: None,
            hook_running: false,
            start_after_hook: false,
            restarts: Vec::new(),
            restarts_in_row: 0,
            after_stop: AfterStop::Nothing,
            held_exit: None,
            stops: 0,
            waiting: false,
            respawns: 0,
            exits: Default::default(),
        }
    }

    /// The program (group) this process belongs to.
    pub fn program(&self) -> &str {
        &self.spec.name
    }

    /// Whether the record is on its way out (its program was removed or changed).
    pub fn is_retiring(&self) -> bool {
        self.after_stop == AfterStop::Remove
    }

    /// Whether a start is on its way though no child runs yet: after a `backoff` delay, once
    /// the `on_exit` hook is done, or once its dependencies are there.
    pub fn start_pending(&self) -> bool {
        self.waiting
            || self.start_after_hook
            || matches!(self.deadline, Some((_, Deadline::Restart)))
    }

    /// Automatic restarts in a row after short runs (the `backoff` row; 0 without `backoff`).
    pub fn restarts_in_row(&self) -> u32 {
        self.restarts_in_row
    }

    /// Whether its start waits for what it depends on (`depends_on`).
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }
}
