//! # The runtime: taskmaster's one event loop
//!
//! Theory of operation. [`Daemon`] owns the pure [`Supervisor`](taskmaster_core::Supervisor)
//! and does, on one single-threaded tokio loop, all the I/O the supervisor asks for. It waits
//! for:
//!
//! - **SIGCHLD**: it then asks `waitpid(-1, WNOHANG | WUNTRACED | WCONTINUED)` until nothing
//!   is left, and tells the supervisor of each exit (and whether the child's process group
//!   outlives it), and of each child paused by a signal or resumed (paused is not dead).
//!   taskmaster is a child subreaper, so orphaned grandchildren come back to it and are reaped
//!   too: no zombies. (tokio's own process support is not used: it reaps only the children it
//!   spawned and cannot share reaping with a subreaper.)
//! - **the supervisor's next deadline**: a single sleep until then, never a periodic tick.
//! - **requests** from the shell or another thread, through a [`Handle`].
//! - **SIGHUP** (reload), **SIGTERM/SIGINT** (graceful shutdown), SIGUSR1 (reopen the logs),
//!   SIGUSR2 (hand over to the backup).
//! - **the notify socket**: sd_notify datagrams from children, attributed by the kernel's
//!   sender pid (or the nearest ancestor of it that is one of our children).
//! - **its own tasks**: health checks, `on_exit` hooks, output watchers and process groups
//!   being emptied run as tasks on the same loop and report back through a channel. Command
//!   checks and hooks are children too, reaped with the rest and handed to the task that
//!   waits for them.
//! - with `--pair`, **the primary's duties**: starting a backup, heartbeats, a handover's
//!   deadline, on a schedule that nothing else can postpone.
//!
//! Each event goes to the supervisor; the actions it returns are carried out in order. A spawn
//! is carried out at once and its result fed straight back, so the supervisor never sees
//! another event between asking for a child and learning its pid. Only the supervisor answers
//! a request: what the runtime does for one (a stdin write, a log reopening, a handover) comes
//! back to it as an event.
//!
//! Children are signalled through pidfds, which cannot reach a process that reused a pid; a
//! process group is signalled with killpg while its leader is still ours, or while the group
//! is being emptied after its leader's exit (a group's id cannot be reused while any process
//! is left in it).
//!
//! The modules, a file per role: `daemon` (what the daemon holds, and how one is made: alone,
//! as a pair's primary, or taking over), `event_loop` (the loop), `actions` (carrying out
//! what the supervisor asks), `children` (one record per live child), `tasks` (the daemon's
//! own tasks), `primary` (the pair's primary: its backup and handovers), `pair` (the pair's
//! protocol and the backup's side), and the I/O pieces below them (`spawn`, `capture`,
//! `stdin`, `notify`, `eventlog`, ...), and `startup` (what the daemon does to itself at
//! start and exit: limits, umask, directory, pid file, AUTO log files).

mod actions;
mod adopt;
mod alerting;
mod alerts;
mod announce;
mod capture;
mod checks;
mod children;
mod clock;
mod cluster;
mod config_load;
mod daemon;
mod event_loop;
mod eventlog;
mod fcgi;
mod guard;
mod handle;
mod handover;
mod listeners;
mod notify;
pub mod pair;
mod primary;
mod probe;
mod spawn;
mod startup;
mod stdin;
mod sys;
mod syslog;
mod tail;
mod tasks;

use std::path::{Path, PathBuf};

use taskmaster_core::Reply;

pub use daemon::Daemon;
pub use guard::run_guard;
pub use handle::{DaemonEvent, Exiting, Gone, Handle, SERVICE_DRAIN};
pub use startup::owner_ids;
pub use sys::FileWatch;
pub use tail::{Followed, Follower, Gap};

/// What went wrong starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the event log {path}: {source}")]
    EventLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the event loop or its signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot open the notify socket {path}: {source}")]
    NotifySocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen for a backup on {path}: {source}")]
    PairSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run as {name}: {source}")]
    User {
        name: String,
        source: std::io::Error,
    },
    /// A `[supervisord]` setting that cannot be applied (a limit that cannot be raised, a
    /// directory that cannot be entered): the message says which and why.
    #[error("{0}")]
    Settings(String),
}

/// Where the notify socket of a daemon whose control socket is `socket` lives: beside it,
/// `taskmaster.sock` giving `taskmaster.notify`.
pub fn notify_socket_path(socket: &Path) -> PathBuf {
    socket.with_extension("notify")
}

/// Prepares this process to supervise: a subreaper, with no signal blocked or ignored, no
/// stray descriptors to leak to its children, and one malloc arena for all its threads. Call
/// once, first thing, before any thread exists.
pub fn prepare_process() {
    sys::use_one_malloc_arena();
    sys::unblock_all_signals();
    sys::reset_ignored_signals();
    sys::ignore_file_size_signal();
    sys::mark_inherited_fds_cloexec();
    // Without it orphaned grandchildren go to pid 1 and we cannot reap them; failing to set it
    // costs only that, so it is not fatal.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

/// The runtime's parsers of outside bytes, for the fuzz targets (`fuzz/`) and their
/// regression test (`crates/fuzzing`): nothing else calls them.
#[doc(hidden)]
pub mod fuzzing {
    /// An event listener's stdout, cut at every place `cuts` says, fed to the protocol reader,
    /// with events sent whenever it says READY.
    pub fn listener_protocol(data: &[u8], cuts: &[usize]) {
        let mut protocol = crate::listeners::fuzzing_protocol();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
            let end = cut.clamp(start, data.len());
            protocol(&data[start..end]);
            start = end;
        }
    }

    /// A handover frame: its prefix decoded, and its header read as the primary's message.
    pub fn handover_frame(data: &[u8]) {
        crate::handover::fuzz_frame(data);
        let _ = serde_json::from_slice::<crate::pair::Message>(data);
    }

    /// A [`Handle`](crate::Handle) answered by a supervision core of `config` that runs
    /// nothing, on a task of the current tokio runtime: a request the core answers at once
    /// gets that answer; one it would answer later (a start waits for RUNNING) is dropped, as
    /// when the daemon has exited. For fuzzing the API's routes with a real core behind them.
    pub fn core_handle(config: taskmaster_config::Config) -> crate::Handle {
        use taskmaster_core::{Action, Event, Supervisor, Ticket};
        let (supervisor, _) = Supervisor::new(config, std::process::id(), crate::clock::now());
        let (sender, mut requests) =
            tokio::sync::mpsc::unbounded_channel::<crate::handle::Message>();
        let (events, _) = tokio::sync::broadcast::channel(crate::handle::EVENT_BACKLOG);
        tokio::spawn(async move {
            let mut supervisor = supervisor;
            let mut next_ticket = 0;
            while let Some(message) = requests.recv().await {
                next_ticket += 1;
                let ticket = Ticket(next_ticket);
                let event = Event::Request {
                    ticket: Some(ticket),
                    request: message.request,
                };
                let actions = supervisor.handle(event, crate::clock::now());
                let answer = actions.into_iter().find_map(|action| match action {
                    Action::Reply { ticket: t, reply } if t == ticket => Some(reply),
                    _ => None,
                });
                if let Some(reply) = answer {
                    let _ = message.reply.send(reply);
                }
            }
        });
        crate::Handle { sender, events }
    }
}
