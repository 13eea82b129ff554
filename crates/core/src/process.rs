use std::fmt;
use std::sync::Arc;

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

/// The last exit of a process and whether `exitcodes` expected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub status: ExitStatus,
    pub expected: bool,
}

/// What a deadline of a process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Deadline {
    /// STARTING: up for `starttime` then, so RUNNING.
    StartTime,
    /// BACKOFF: try to start again.
    Retry,
    /// STOPPING: `stoptime` is over, so SIGKILL.
    Kill,
}

/// What to do once a stopping process has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AfterStop {
    Nothing,
    /// Start it again (a start request arrived while it was stopping).
    Start,
    /// Remove the record (its program left the configuration, or changed).
    Remove,
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
    pub(crate) deadline: Option<(Time, Deadline)>,
    pub(crate) after_stop: AfterStop,
    /// How many times it has come to STOPPED: a request waiting for a stop compares counts,
    /// since the process may be started again within the very event that stopped it.
    pub(crate) stops: u64,
}

impl Process {
    pub(crate) fn new(name: String, spec: Arc<ProgramSpec>) -> Process {
        Process {
            name,
            spec,
            state: State::Stopped,
            pid: None,
            started_at: None,
            stopped_at: None,
            backoff: 0,
            spawn_error: None,
            last_exit: None,
            paused: None,
            deadline: None,
            after_stop: AfterStop::Nothing,
            stops: 0,
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
}
