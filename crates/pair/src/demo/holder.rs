//! The demo's holder: the process a shell starts for `taskmaster pair-demo`, which keeps the
//! pair in the terminal's foreground and ends it with the terminal.
//!
//! # Why a holder
//!
//! A pair is made to outlive the death of any one of its processes, and a terminal ends the
//! programs it runs by killing them. The library's default (a backup in a session of its
//! own) settles that conflict for the pair: Ctrl-C kills the primary and the backup counts
//! on, in the same terminal, for ever. A demo a person runs must end when that person says
//! so. What must hold:
//!
//! - **Ctrl-C and the hangup must reach every process of the pair**, so the backups stay in
//!   the primary's process group ([`BackupSession::Same`](crate::BackupSession::Same)) instead of a new session.
//! - **That group must stay the terminal's foreground group after a takeover.** A shell
//!   waits for the process it started; when that one dies, the shell takes the terminal
//!   back, and the new primary, in a group the shell no longer waits for, is in the
//!   background, out of reach of Ctrl-C. So the process the shell started is not a process
//!   of the pair: it is this holder, which does no work, prints no count, and lives as long
//!   as the pair. The pair's first process is its child, and every later process is a
//!   descendant, all in the holder's process group: the one the shell made the foreground
//!   for this job (or, under a terminal with no shell, the session leader's). It stays the
//!   foreground because the shell's job, the holder, has not ended. Killing the printed
//!   primary kills a process the shell does not know about.
//! - **No process of the pair may outlive the holder, however the holder ends.** Ctrl-C
//!   reaches every process of the group at once, but a closed terminal sends SIGHUP to the
//!   session leader only (a shell passes it on to its jobs; a holder that is itself the
//!   session leader gets it alone), `kill` reaches only the pid it names, and SIGKILL runs
//!   no code of the holder at all. Hence the [`Lifeline`]: a pipe whose write end only the
//!   holder has, and whose read end every process of the pair inherits and watches. The
//!   kernel closes the write end when the holder exits, for whatever reason, and every
//!   process of the pair then exits within moments.
//! - **A stopped process sees no lifeline and takes no signal but SIGKILL** (a SIGINT to a
//!   stopped process waits until it is continued). So when the holder ends the pair it cuts
//!   the lifeline, continues its stopped children (they then die of their pending signal or
//!   of the cut), and after [`GRACE`] kills whatever is left.
//! - **Nothing may be left unreaped.** The holder is a child subreaper: when a primary dies,
//!   its backup is reparented to the holder, which reaps every process of the pair as it
//!   ends. So the holder knows when none is left (it has no child), and leaves no zombie.
//! - **Two demos must not share a pair by accident.** The pair's files go to a folder of the
//!   holder's own, `$TMPDIR/NAME-pair-PID`, made afresh (mode 0700) and removed when the demo
//!   ends; a shared folder is for a person who names one.
//!
//! The holder takes its signals (SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGCHLD) by blocking them
//! and waiting for them, not with handlers: it has nothing else to do. When the pair ended by
//! such a signal, the holder dies of the same signal once the pair is gone, so that a shell
//! sees what it expects (a loop running the demo stops at Ctrl-C).

use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};

use crate::sys::{self, SignalSet};
use crate::{Lifeline, LifelineHolder, PairError};

/// How long the pair's processes have, once the lifeline is cut, before the holder kills
/// those still there.
pub const GRACE: Duration = Duration::from_secs(2);

/// How long after [`GRACE`] the holder goes on reaping killed processes before it gives up.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// The pause between two looks at the children while the pair ends (a child's exit wakes
/// the holder sooner).
const TICK: Duration = Duration::from_millis(50);

/// The signals the holder takes: those that end the demo, and SIGCHLD.
const ENDING: [Signal; 4] = [Signal::INT, Signal::HUP, Signal::TERM, Signal::QUIT];

/// The holder of a demo pair; see the module's docs. Made with [`Holder::new`] before the
/// process starts any thread, then [`Holder::start`] and [`Holder::wait`].
pub struct Holder {
    dir: PathBuf,
    /// Whether `dir` is the holder's own, to remove at the end.
    private: bool,
    signals: SignalSet,
    holder: Option<LifelineHolder>,
    /// The lifeline's read end, until the first process of the pair has it.
    lifeline: Option<Lifeline>,
    /// The last wait status of a process of the pair that ended.
    last: Option<ExitStatus>,
}

impl Holder {
    /// Becomes the holder of the pair `name`: takes its signals (they are blocked from now
    /// on, so call this before the process starts a thread), becomes a child subreaper, and
    /// makes the lifeline. The pair's files go to `dir`, or, if `None`, to a folder of the
    /// holder's own under `$TMPDIR`, removed when the holder ends.
    pub fn new(name: &str, dir: Option<&Path>) -> Result<Holder, PairError> {
        let mut signals: Vec<Signal> = ENDING.to_vec();
        signals.push(Signal::CHILD);
        let signals = SignalSet::of(&signals);
        signals
            .block()
            .map_err(|e| PairError::io("block the signals the holder waits for", e))?;
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| PairError::io("become a child subreaper", e.into()))?;
        let (holder, lifeline) = Lifeline::new()?;
        let (dir, private) = match dir {
            Some(dir) => (dir.to_path_buf(), false),
            None => (private_dir(&std::env::temp_dir(), name)?, true),
        };
        Ok(Holder {
            dir,
            private,
            signals,
            holder: Some(holder),
            lifeline: Some(lifeline),
            last: None,
        })
    }

    /// The folder of the pair's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether [`Holder::dir`] is the holder's own (made by it, removed at the end).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Starts the pair's first process: the command `first` returns, given the pair's folder
    /// and the lifeline's descriptor number, with the lifeline at that number, no signal
    /// blocked, the holder's process group and stdin `/dev/null`. The command must run
    /// [`run`](crate::run) with that folder, [`BackupSession::Same`](crate::BackupSession::Same)
    /// and the lifeline
    /// ([`Lifeline::inherited`]). Returns its pid. Once only.
    pub fn start(&mut self, first: impl FnOnce(&Path, RawFd) -> Command) -> Result<u32, PairError> {
        let Some(lifeline) = self.lifeline.take() else {
            return Err(PairError::Options(
                "the holder has started its pair already".into(),
            ));
        };
        let mut command = first(&self.dir, lifeline.as_raw_fd());
        lifeline.pass_to(&mut command);
        // The holder's own process group and session: see the module's docs.
        sys::prepare_child(&mut command, false);
        command.stdin(Stdio::null());
        let child = command.spawn().map_err(|e| {
            PairError::io(
                format!("start {}", command.get_program().to_string_lossy()),
                e,
            )
        })?;
        // Reaped with every other process of the pair, by `wait`.
        Ok(child.id())
    }

    /// Waits until the pair ends, reaping its processes as they end.
    ///
    /// If SIGINT, SIGHUP, SIGTERM or SIGQUIT comes, ends the pair (the lifeline cut, stopped
    /// processes continued, and after [`GRACE`] the rest killed), removes a private folder,
    /// and dies of that signal: it does not return. If every process of the pair ends without
    /// one, removes a private folder and returns the wait status of the last.
    pub fn wait(mut self) -> Result<ExitStatus, PairError> {
        let ending = loop {
            let taken = self
                .signals
                .wait(None)
                .map_err(|e| PairError::io("wait for a signal", e))?;
            match taken {
                Some(signal) if ENDING.contains(&signal) => break Some(signal),
                _ => {
                    if !self.reap() {
                        break None;
                    }
                }
            }
        };
        match ending {
            Some(signal) => {
                self.end_pair();
                self.remove_private_dir();
                sys::die_of(signal)
            }
            None => {
                self.remove_private_dir();
                Ok(self.last.unwrap_or_else(|| ExitStatus::from_raw(0)))
            }
        }
    }

    /// Reaps every child that has ended; whether any is left.
    fn reap(&mut self) -> bool {
        loop {
            match waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((_, status))) => self.last = Some(ExitStatus::from_raw(status.as_raw())),
                Ok(None) => return true,
                Err(Errno::INTR) => continue,
                // ECHILD: none left. Another error cannot happen with these arguments; were it
                // to, waiting on could never end.
                Err(_) => return false,
            }
        }
    }

    /// Cuts the lifeline, then reaps the pair's processes as they end: continued if stopped
    /// (so that they see the cut), killed once [`GRACE`] has passed, given up on
    /// [`KILL_WAIT`] later.
    fn end_pair(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.cut();
        }
        let began = Instant::now();
        while self.reap() {
            let elapsed = began.elapsed();
            if elapsed >= GRACE + KILL_WAIT {
                return;
            }
            for (pid, state) in children() {
                // A child keeps its pid until it is reaped, and only this process reaps
                // it: the signal cannot reach another process.
                if elapsed >= GRACE {
                    let _ = kill_process(pid, Signal::KILL);
                } else if state == 'T' || state == 't' {
                    let _ = kill_process(pid, Signal::CONT);
                }
            }
            let _ = self.signals.wait(Some(TICK));
        }
    }

    fn remove_private_dir(&mut self) {
        if self.private {
            self.private = false;
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl std::fmt::Debug for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("dir", &self.dir)
            .field("private", &self.private)
            .field("started", &self.lifeline.is_none())
            .finish_non_exhaustive()
    }
}

impl Drop for Holder {
    /// A holder dropped without [`Holder::wait`] (the program gave up before starting the
    /// pair) removes its private folder; its lifeline is cut as it drops.
    fn drop(&mut self) {
        self.remove_private_dir();
    }
}

/// Makes a new folder `NAME-pair-PID` in `base` (`NAME-pair-PID.1` and on if that exists),
/// mode 0700. Never reuses one: a folder of that name may be another's.
fn private_dir(base: &Path, name: &str) -> Result<PathBuf, PairError> {
    let pid = std::process::id();
    let mut last_error = None;
    for attempt in 0..100 {
        let leaf = match attempt {
            0 => format!("{name}-pair-{pid}"),
            n => format!("{name}-pair-{pid}.{n}"),
        };
        let path = base.join(leaf);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(PairError::io(format!("create {}", path.display()), e)),
        }
    }
    let error = last_error.unwrap_or_else(|| std::io::Error::other("no name left"));
    Err(PairError::io(
        format!("create a folder {name}-pair-{pid}.N in {}", base.display()),
        error,
    ))
}

/// This process's children, with their state (`/proc/PID/stat`'s third field).
fn children() -> Vec<(Pid, char)> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces and parentheses.
            let (_, fields) = stat.rsplit_once(") ")?;
            let mut fields = fields.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let parent: u32 = fields.next()?.parse().ok()?;
            let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
            (parent == me).then_some((pid, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_folder_is_new_and_never_one_that_exists() {
        let base = tempfile::tempdir().expect("tempdir");
        let pid = std::process::id();
        let first = private_dir(base.path(), "counter").expect("first");
        assert_eq!(first, base.path().join(format!("counter-pair-{pid}")));
        let second = private_dir(base.path(), "counter").expect("second");
        assert_eq!(second, base.path().join(format!("counter-pair-{pid}.1")));
        let mode = fs::metadata(&first).expect("metadata").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
    }
}
