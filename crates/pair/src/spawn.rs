//! The primary's backup: spawned, reaped, and spawned again when it dies, with backoff.
//!
//! The backup is a copy of this very program: `/proc/self/exe` (the same binary even if the
//! file was replaced on disk meanwhile) with the same `argv[0]`, arguments, environment and
//! working folder as when [`run`](crate::run) started. By default it starts a session of its
//! own, so that the terminal's Ctrl-C reaches the primary alone; with
//! [`BackupSession::Same`] it stays in the primary's process group. It inherits stdout and
//! stderr, and the lifeline if the pair has one (at the same descriptor number), and reads
//! nothing (stdin is `/dev/null`).
//!
//! One thread does it all: spawn, wait (which reaps), log, wait the backoff, spawn again. The
//! primary's work never waits for it. A backup that lived at least [`STABLE`] resets the
//! backoff; one that dies sooner (it could not bind its socket, another backup was already
//! there, it crashes at start) doubles it, up to [`MAX_BACKOFF`], so that a backup that
//! cannot start costs a spawn now and then, never a storm of them.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::log::Logger;
use crate::{sys, BackupSession};

/// A backup that lived this long was a working one: the next respawn starts the backoff
/// afresh.
const STABLE: Duration = Duration::from_secs(1);

/// The longest wait between two spawns.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How to start a copy of this program.
#[derive(Clone, Debug)]
pub(crate) struct BackupCommand {
    arg0: OsString,
    args: Vec<OsString>,
    working_folder: PathBuf,
    session: BackupSession,
    /// The lifeline's read end, kept open for as long as backups may be spawned.
    lifeline: Option<Arc<OwnedFd>>,
}

impl BackupCommand {
    /// This process's command line, to be run again in `working_folder`, in `session`, with
    /// `lifeline` inherited.
    pub fn of_this_process(
        working_folder: PathBuf,
        session: BackupSession,
        lifeline: Option<Arc<OwnedFd>>,
    ) -> Self {
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "pair-backup".into());
        BackupCommand {
            arg0,
            args: args.collect(),
            working_folder,
            session,
            lifeline,
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new("/proc/self/exe");
        command
            .arg0(&self.arg0)
            .args(&self.args)
            .current_dir(&self.working_folder)
            .stdin(Stdio::null());
        sys::prepare_child(&mut command, self.session == BackupSession::New);
        if let Some(lifeline) = &self.lifeline {
            sys::inherit_in_child(&mut command, lifeline.as_raw_fd());
        }
        command.spawn()
    }
}

/// The doubling wait between spawns that fail.
struct Backoff {
    first: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration) -> Self {
        Backoff { first, next: first }
    }

    fn reset(&mut self) {
        self.next = self.first;
    }

    /// The wait before the next spawn, doubling the one after.
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(MAX_BACKOFF);
        delay
    }
}

/// What the keeper thread and [`BackupKeeper::stop`] share.
struct Shared {
    stopping: Mutex<bool>,
    wake: Condvar,
    /// A pidfd of the running backup: a signal through it can never reach another process,
    /// even once the backup is reaped and its pid reused.
    backup: Mutex<Option<OwnedFd>>,
}

impl Shared {
    fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits `delay`, or less if [`BackupKeeper::stop`] is called meanwhile.
    fn sleep_unless_stopping(&self, delay: Duration) {
        let deadline = Instant::now() + delay;
        let mut stopping = self.stopping.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stopping {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            stopping = self
                .wake
                .wait_timeout(stopping, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn set_backup(&self, pidfd: Option<OwnedFd>) {
        *self.backup.lock().unwrap_or_else(PoisonError::into_inner) = pidfd;
    }
}

/// Keeps one backup alive for as long as it lives, from a thread of its own.
pub(crate) struct BackupKeeper {
    shared: Arc<Shared>,
    finished: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl BackupKeeper {
    /// Spawns the first backup now, and a new one whenever it dies; `first_backoff` is the
    /// wait after a first failure.
    pub fn start(
        command: BackupCommand,
        logger: Logger,
        first_backoff: Duration,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            backup: Mutex::new(None),
        });
        let (finished_sender, finished) = mpsc::channel();
        let thread = {
            let shared = Arc::clone(&shared);
            sys::spawn_without_sigcont("pair-backup-keeper", move || {
                keep_a_backup(&command, &shared, &logger, first_backoff);
                let _ = finished_sender.send(());
            })?
        };
        Ok(BackupKeeper {
            shared,
            finished,
            thread,
        })
    }

    /// Spawns no more backups, and waits up to `grace` for the current one to exit (it does
    /// when told the work is over); then kills it, and waits for it to be reaped.
    pub fn stop(self, grace: Duration) {
        *self
            .shared
            .stopping
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Err(RecvTimeoutError::Timeout) = self.finished.recv_timeout(grace) {
            if let Some(pidfd) = &*self
                .shared
                .backup
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
            {
                let _ = pidfd_send_signal(pidfd, Signal::KILL);
            }
        }
        let _ = self.thread.join();
    }
}

/// The keeper thread's loop: spawn, wait for the backup's death, back off, again.
fn keep_a_backup(command: &BackupCommand, shared: &Shared, logger: &Logger, first: Duration) {
    let mut backoff = Backoff::new(first);
    while !shared.is_stopping() {
        let delay = match command.spawn() {
            Ok(mut child) => {
                let pid = child.id();
                logger.line(format_args!("backup pid {pid} spawned"));
                // The child is not reaped before `wait` below, so its pid is still its own.
                let pidfd = Pid::from_raw(pid as i32)
                    .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok());
                shared.set_backup(pidfd);
                let born = Instant::now();
                let status = child.wait();
                shared.set_backup(None);
                if shared.is_stopping() {
                    return;
                }
                if born.elapsed() >= STABLE {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => format!("wait failed: {error}"),
                };
                logger.line(format_args!(
                    "backup pid {pid} ended ({status}); respawning in {delay:?}"
                ));
                delay
            }
            Err(error) => {
                let delay = backoff.next_delay();
                logger.line(format_args!(
                    "backup spawn failed: {error}; retrying in {delay:?}"
                ));
                delay
            }
        };
        shared.sleep_unless_stopping(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800]);
        for _ in 0..20 {
            backoff.next_delay();
        }
        assert_eq!(backoff.next_delay(), MAX_BACKOFF);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
