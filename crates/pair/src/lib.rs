//! # Process pairs: a program that is its own supervisor
//!
//! Theory of operation. A process pair (Tandem's NonStop systems ran their software this way)
//! is two copies of one program: the **primary** does the work and, after each unit of it,
//! sends its state to the **backup**, which does nothing but listen. When the primary dies
//! the backup becomes the primary, starts a backup of its own, and carries on from the last
//! state it received. A program gets all of that from one call:
//!
//! ```no_run
//! use taskmaster_pair::{run, Flow, Options};
//!
//! let options = Options::new("counter", "/tmp/counter-pair");
//! run(options, 1u64, |next, checkpoint| {
//!     println!("{next}"); // one unit of work...
//!     *next += 1;
//!     match checkpoint.save(next) {
//!         // ...then the state that follows it.
//!         Ok(()) => Flow::Continue,
//!         Err(error) => {
//!             eprintln!("{error}");
//!             Flow::Stop
//!         }
//!     }
//! })?;
//! # Ok::<(), taskmaster_pair::PairError>(())
//! ```
//!
//! ## Roles
//! Every process of the pair runs [`run`] with the same [`Options`]. A process learns its role
//! from a lock file, `DIR/NAME.lock`: the primary holds it with `flock`, so whoever takes it is
//! primary, and whoever finds it held is a backup. The kernel releases a lock when its holder
//! dies, however it dies. At most one backup: the backup holds a second lock,
//! `DIR/NAME.backup.lock`, and a process that finds that one held too fails with
//! [`PairError::BackupRunning`]; so a pair never multiplies.
//!
//! The primary spawns its backup: this same program (`/proc/self/exe`), same arguments,
//! environment and working folder, by default in a session of its own so that Ctrl-C in the
//! terminal reaches the primary alone ([`BackupSession`]). When the backup dies the primary
//! reaps it and spawns another, backing off exponentially while spawns fail; its work never
//! waits for that.
//!
//! ## Death is silence
//! The primary sends a heartbeat every [`Options::interval`] from a thread of its own (a long
//! unit of work does not starve it), and checkpoints when the work calls
//! [`Checkpoint::save`]. Both are datagrams, over a unix socket (`DIR/NAME.backup`) or UDP
//! ([`Transport`]): there is no connection whose end could tell the backup "the primary
//! died", and nothing else can, since a killed process says nothing. The backup takes over
//! after [`Options::misses`] intervals in a row without a word from the primary: 300 ms with
//! the defaults. A primary that is merely paused (SIGSTOP, a debugger, a starved machine)
//! falls silent the same way; the backup cannot tell, and takes over. That is what fencing is
//! for.
//!
//! ## Fencing: one primary at a time
//! `DIR/NAME.gen` holds the current primary's generation and pid. Each new primary writes a
//! generation higher than any before (a backup taking over writes it first, before it does
//! anything else), every message carries the sender's generation, and a backup ignores
//! messages from generations older than the newest it knows. Before **every** unit of work
//! the primary re-reads the file: a higher generation means it was paused and replaced, and
//! it exits at once (status 0), before working. A paused primary still holds the lock; the
//! new one does not wait for it (the generation fences the old one already) but takes it as
//! soon as the kernel lets go, so that programs started meanwhile become backups.
//!
//! A window remains between that check and the work: a primary paused right after the check
//! resumes inside the unit of work. For a pause by SIGSTOP the crate closes most of it: the
//! primary's `SIGCONT` handler re-reads the file when the process is continued, before the
//! interrupted code runs on, and exits if it was replaced. What it cannot stop is an effect
//! already inside the kernel when the stop came (a `write` waiting for a busy pipe completes
//! on resume, before any handler runs). Other pauses (a debugger, a machine too busy to run
//! the process for `misses` intervals) leave the window open for the unit in progress.
//! Closing it in general takes the work's *target* checking the fence: a store that records
//! the newest [`Checkpoint::generation`] it has seen and refuses writes tagged with an older
//! one. The primary alone cannot, because the check and the work's effect are two steps and
//! the process can be stopped between any two steps.
//!
//! ## At-least-once
//! A unit of work is checkpointed after it is done, so a takeover resumes at the unit in
//! progress when the primary died: that unit may run twice, none is skipped. Exactly-once is
//! impossible here for the same reason: the effect of a unit (a line printed, a row written)
//! and the checkpoint saying it happened are two steps, and a primary may die between them.
//! Checkpoint first and a death between loses the effect (a skip); effect first and a death
//! between repeats it. Only a target that records, atomically with the effect, which
//! checkpoint it belongs to (and ignores a repeat) makes a pair exactly-once.
//!
//! A checkpoint waits (up to a second, or the takeover delay if longer) for room in the
//! backup's queue before the work goes on, so that the backup holds it before the next unit
//! starts; a backup that takes nothing for that long (stopped, starved) is not waited for
//! again until it takes something, and the checkpoint is resent with each heartbeat. A new
//! backup receives the last two checkpoints as soon as it registers, and says
//! `backup of pid N (generation G)` once it holds the primary's latest. Until then (the first
//! moments after a takeover or a backup's respawn) a death of the primary takes the state
//! with it: the pair survives one failure at a time, not two at once. Over UDP a datagram
//! the backup's buffer cannot hold is lost without a word; only the resend brings it back.
//!
//! ## Poison
//! Restoring the state that crashed the primary may crash the new one the same way, forever.
//! Each checkpoint carries the number of takeovers that happened at it; a takeover increments
//! it and forwards it to the next backup. At [`Options::poison_limit`] takeovers (3 by
//! default) the state is declared poisoned: the pair resumes from what
//! [`Options::on_poison`] returns (by default the checkpoint before it), logs it, and counts
//! again from zero.
//!
//! ## What else to know
//! - The pair's state lives in memory: a host that goes down takes both processes with it.
//!   [`Transport::Udp`] carries the messages between hosts, but the lock and generation
//!   files must then be shared, which is beyond this crate.
//! - The primary installs a `SIGCONT` handler (see above) and runs two threads of its own
//!   (heartbeats, the backup's keeper) that block `SIGCONT`. Call [`run`] from the main
//!   thread, or block `SIGCONT` in the program's other threads, so that the handler runs on
//!   the thread that works.
//! - A primary whose work hangs still sends heartbeats: a pair replaces dead processes, not
//!   stuck ones (a watchdog does that).
//! - Orphans: when a primary dies, its backup (now primary) is reparented to the nearest
//!   subreaper or to pid 1, which must reap it when it dies in turn.
//! - Stopping the pair: the work returns [`Flow::Stop`]; the backup is told, and exits. A
//!   signal that kills the primary (SIGTERM, SIGINT) is a failure like any other: the backup
//!   takes over. A pair that must end with something else (a terminal, a parent) gets a
//!   [`Lifeline`] ([`Options::lifeline`]): a pipe whose write end that other process holds;
//!   every process of the pair exits when it is closed, which the kernel does when its
//!   holder dies, however it dies. With [`BackupSession::Same`] the backups stay in the
//!   primary's process group, so that the terminal's Ctrl-C reaches them too.
//!   [`demo::Holder`] puts both together for a pair run in a terminal's foreground.
//! - Sharing: two programs with the same name and folder are one pair (the second is a
//!   backup, or refused). [`default_dir`] is one folder per name; [`running_pair`] says what
//!   runs in a folder.
//!
//! [`demo::counter`] is the canonical demo; `examples/counter.rs` runs it.

#![deny(unsafe_code)]

mod backup;
pub mod demo;
mod error;
mod generation;
mod lifeline;
mod log;
mod message;
mod options;
mod poison;
mod primary;
mod spawn;
#[allow(unsafe_code)]
mod sys;
mod transport;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use rustix::process::{test_kill_process, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::PairError;
pub use lifeline::{Lifeline, LifelineHolder};
pub use options::{BackupSession, Log, Options, PoisonHook, Transport};
pub use primary::Checkpoint;

use backup::{run_backup, Ending};
use generation::Record;
use log::Logger;
use options::Paths;
use poison::Saved;
use primary::{run_primary, Start};
use spawn::BackupCommand;

/// What the work says after each unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Run the next unit.
    Continue,
    /// The work is over: the backup is told to exit, and [`run`] returns.
    Stop,
}

/// Runs this process as one half of the pair `options` describes: as the primary, doing the
/// work one unit per call of `work`, or as the backup, listening until it must take over and
/// then doing the work from the last checkpoint.
///
/// `work` does **one** unit of work on the state, then calls [`Checkpoint::save`] with the
/// state that follows it, and says whether to go on. `initial` is the state of a pair's first
/// primary (and of a backup that takes over before any checkpoint arrived).
///
/// Returns `Ok(())` when the work returned [`Flow::Stop`] (in the primary) or the primary
/// stopped the pair (in the backup). A primary that learns it was replaced exits the process
/// itself, with status 0, without returning: no code of the program may run in a stale
/// primary. Fails on a setup error, and with [`PairError::BackupRunning`] in a process that
/// would be a second backup.
pub fn run<S, W>(options: Options<S>, initial: S, work: W) -> Result<(), PairError>
where
    S: Serialize + DeserializeOwned + Clone,
    W: FnMut(&mut S, &mut Checkpoint<S>) -> Flow,
{
    options.validate()?;
    let working_folder =
        std::env::current_dir().map_err(|e| PairError::io("find the working folder", e))?;
    let dir = working_folder.join(&options.dir);
    fs::create_dir_all(&dir).map_err(|e| PairError::io(format!("create {}", dir.display()), e))?;
    let logger = Logger::new(options.log, &options.name);
    let lifeline = options
        .lifeline
        .map(|lifeline| Arc::new(lifeline.into_fd()));
    if let Some(lifeline) = &lifeline {
        lifeline::watch(Arc::clone(lifeline), logger.clone())
            .map_err(|e| PairError::io("start the lifeline watcher thread", e))?;
    }
    let mut context = Context {
        paths: Paths::new(&dir, &options.name),
        logger,
        name: options.name,
        interval: options.interval,
        misses: options.misses,
        transport: options.transport,
        poison_limit: options.poison_limit,
        on_poison: options.on_poison,
        pid: std::process::id(),
        backup_command: BackupCommand::of_this_process(
            working_folder,
            options.backup_session,
            lifeline,
        ),
    };
    match claim_role(&context)? {
        Role::Primary { lock, before } => {
            let generation = before.map_or(1, |record| record.generation + 1);
            let record = Record {
                generation,
                pid: context.pid,
                stopped: false,
            };
            let path = &context.paths.generation;
            generation::write(path, record)
                .map_err(|e| PairError::io(format!("write {}", path.display()), e))?;
            let start = Start {
                generation,
                latest: Saved {
                    sequence: 0,
                    takeovers: 0,
                    state: initial,
                },
                previous: None,
                lock: Arc::new(Mutex::new(Some(lock))),
            };
            run_primary(context, start, work)
        }
        Role::Backup => match run_backup(&mut context, &initial)? {
            Ending::Stopped => Ok(()),
            Ending::TakeOver(start) => run_primary(context, start, work),
        },
    }
}

/// Everything either role needs, from the options and the process.
pub(crate) struct Context<S> {
    pub name: String,
    pub paths: Paths,
    pub interval: Duration,
    pub misses: u32,
    pub transport: Transport,
    pub poison_limit: u32,
    pub on_poison: Option<PoisonHook<S>>,
    pub logger: Logger,
    pub pid: u32,
    pub backup_command: BackupCommand,
}

/// The role a starting process takes.
enum Role {
    /// It took the lock; `before` is the generation file as the last primary left it.
    Primary {
        lock: File,
        before: Option<Record>,
    },
    Backup,
}

/// Primary if the lock is free, backup otherwise. One exception: a free lock while the
/// generation file names another live process means that process took over from a paused
/// primary that just died, and has not taken the lock yet; it is the primary, and this
/// process its backup. (A pid reused by a stranger makes this process a backup that takes
/// over after one silence: late, never wrong.)
fn claim_role<S>(context: &Context<S>) -> Result<Role, PairError> {
    let path = &context.paths.lock;
    let lock = open_lock_file(path)?;
    match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(Role::Backup),
        Err(e) => return Err(PairError::io(format!("lock {}", path.display()), e.into())),
    }
    let generation_path = &context.paths.generation;
    let before = generation::read(generation_path)
        .map_err(|e| PairError::io(format!("read {}", generation_path.display()), e))?;
    match before {
        Some(record) if !record.stopped && record.pid != context.pid && is_alive(record.pid) => {
            Ok(Role::Backup)
        }
        _ => Ok(Role::Primary { lock, before }),
    }
}

/// Whether a process with this pid exists (a zombie counts).
fn is_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    matches!(test_kill_process(pid), Ok(()) | Err(Errno::PERM))
}

/// Whether `pid` is a zombie: dead, not yet reaped.
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // pid (comm) state ...: comm may hold spaces and parentheses.
    stat.rsplit_once(") ")
        .is_some_and(|(_, fields)| fields.starts_with('Z'))
}

/// Opens (creating it if needed) a file used only for its `flock`.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, PairError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| PairError::io(format!("open {}", path.display()), e))
}

/// The folder where a pair's files go when the program names none: `$TMPDIR/NAME-pair`.
/// Every program that uses it shares one pair per name and user: a second one started
/// meanwhile is a backup, or refused. A program that may run twice on purpose wants a folder
/// of its own (the demo makes one per run: [`demo::Holder`]).
pub fn default_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}-pair"))
}

/// A pair found running in a folder: see [`running_pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    /// The primary: the pid the generation file names.
    pub primary: u32,
    /// Its generation.
    pub generation: u64,
    /// Its backup, if one has registered and is alive.
    pub backup: Option<u32>,
}

/// The pair `name` that runs in `dir`, if any, as its files say: the generation file names a
/// primary that has not stopped the pair and is alive (or a zombie: [`run`] takes that for a
/// primary too), and the backup lock file a backup that is alive. Reads files and takes no lock, so it cannot disturb the pair; a pid reused
/// by another process since the pair died can fool it.
pub fn running_pair(dir: &Path, name: &str) -> Option<Running> {
    let paths = Paths::new(dir, name);
    let record = generation::read(&paths.generation).ok().flatten()?;
    if record.stopped || record.pid == std::process::id() || !is_alive(record.pid) {
        return None;
    }
    // A backup that has died lets go of its lock at once, before its parent reaps it.
    let backup = primary::registered_backup(&paths.backup_lock)
        .filter(|&pid| is_alive(pid) && !is_zombie(pid));
    Some(Running {
        primary: record.pid,
        generation: record.generation,
        backup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A live process that is not this one, killed and reaped when dropped.
    struct Sleeper(Child);

    impl Sleeper {
        fn start() -> Sleeper {
            Sleeper(
                Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .expect("spawn sleep"),
            )
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_running_pair_is_a_live_primary_not_stopped_and_its_live_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(dir.path(), "counter");
        assert_eq!(running_pair(dir.path(), "counter"), None, "no files");

        let primary = Sleeper::start();
        let backup = Sleeper::start();
        let record = |pid, stopped| Record {
            generation: 4,
            pid,
            stopped,
        };
        generation::write(&paths.generation, record(primary.0.id(), false)).expect("write");
        assert_eq!(
            running_pair(dir.path(), "counter"),
            Some(Running {
                primary: primary.0.id(),
                generation: 4,
                backup: None
            })
        );
        fs::write(&paths.backup_lock, format!("{}\n", backup.0.id())).expect("write");
        assert_eq!(
            running_pair(dir.path(), "counter").and_then(|running| running.backup),
            Some(backup.0.id())
        );
        let backup_pid = backup.0.id();
        drop(backup);
        assert_eq!(
            running_pair(dir.path(), "counter").map(|running| running.backup),
            Some(None),
            "backup pid {backup_pid} is dead"
        );

        generation::write(&paths.generation, record(primary.0.id(), true)).expect("write");
        assert_eq!(running_pair(dir.path(), "counter"), None, "stopped");
        let primary_pid = primary.0.id();
        drop(primary);
        generation::write(&paths.generation, record(primary_pid, false)).expect("write");
        assert_eq!(running_pair(dir.path(), "counter"), None, "dead primary");
    }
}
