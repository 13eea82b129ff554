//! # The supervisor, without I/O
//!
//! Theory of operation. A supervisor is a state machine per process, driven by events.
//! [`Supervisor`] holds one [`Process`] record per configured process and nothing else that
//! touches the world: it never forks, reads, sleeps or signals. The runtime around it does the
//! I/O and feeds it [`Event`]s (a child was spawned, a child exited, a deadline passed, a user
//! asked for something, a configuration was loaded), each with the current [`Time`]. In return
//! it gets [`Action`]s to carry out (spawn this, signal that, load the configuration, write this
//! to the event log, answer that request, exit).
//!
//! Time is given, never read: the supervisor keeps its deadlines (start time, backoff delay,
//! stop timeout) in its records and tells the runtime the earliest one with
//! [`Supervisor::next_deadline`]; the runtime sleeps until then and sends [`Event::Timer`].
//! There is no periodic tick.
//!
//! Requests that wait (start until RUNNING, stop until STOPPED) are answered later: the request
//! carries a [`Ticket`], and an [`Action::Reply`] with the same ticket comes when every process
//! it names has reached its goal or failed to.
//!
//! The states are supervisord's, with its transitions, so its users and tools understand them.
//! Because the whole state is plain data (serializable), a hot backup can hold a copy of it.

pub mod cluster;
mod control;
pub mod notify;
mod process;
mod supervisor;
mod time;

pub use control::{
    DeliveryCounts, Done, Failure, Metrics, Outcome, PairInfo, ProcessInfo, ProcessMetrics,
    ReloadCounts, Reply, Request, Ticket,
};
pub use notify::Notification;
pub use process::{ExitCause, ExitStatus, Health, LastExit, Process, State};
pub use supervisor::{
    Action, Announcement, Changes, Event, LoadPurpose, Notice, Scope, Supervisor,
};
pub use taskmaster_config::{
    AutoRestart, ChangedSettings, Config, ProgramSpec, ReloadPlan, Signal,
};
pub use time::Time;
