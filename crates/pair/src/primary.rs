//! The primary: fence, work, checkpoint; heartbeats and the backup from threads of their own.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::generation::{self, Record};
use crate::log::Logger;
use crate::message::{self, Body, Message};
use crate::poison::Saved;
use crate::spawn::BackupKeeper;
use crate::transport::Sender;
use crate::{sys, Context, Flow, PairError};

/// How a primary starts: fresh, or taking over from a checkpoint.
pub(crate) struct Start<S> {
    /// Its generation, already in the generation file.
    pub generation: u64,
    /// The checkpoint it resumes from (sequence 0: the initial state).
    pub latest: Saved<S>,
    /// The checkpoint before, for its backup's poison handling.
    pub previous: Option<Saved<S>>,
    /// The primary's lock, or the slot a thread fills once the paused primary it took over
    /// from lets go of it. Held until the process exits.
    pub lock: Arc<Mutex<Option<File>>>,
}

/// The handle the work uses to checkpoint its state; see [`Checkpoint::save`].
pub struct Checkpoint<S> {
    header: Arc<Header>,
    outbox: Arc<Mutex<Outbox>>,
    sequence: u64,
    _state: PhantomData<fn(&S)>,
}

impl<S: Serialize> Checkpoint<S> {
    /// Sends `state` to the backup as the state to resume from if this primary dies now.
    ///
    /// Call it after each unit of work is done, with the state that follows it: a takeover
    /// then repeats at most the unit in progress, never skips one (at-least-once). It does
    /// not wait for the backup: a checkpoint the backup cannot take at once is sent again
    /// with the next heartbeat.
    ///
    /// Fails, sending nothing, when the state does not serialize or is larger than one
    /// datagram of the transport; the pair carries on from the previous checkpoint then.
    pub fn save(&mut self, state: &S) -> Result<(), PairError> {
        let sequence = self.sequence + 1;
        let datagram = self.header.checkpoint(sequence, 0, state)?;
        lock(&self.outbox).save(sequence, datagram);
        self.sequence = sequence;
        Ok(())
    }
}

impl<S> Checkpoint<S> {
    /// This primary's generation: the fencing token. A store the work writes to can refuse
    /// writes tagged with a generation older than the newest it has seen; only such a check
    /// at the target makes the work's effects exactly-once (see the crate's docs).
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// How many checkpoints the pair has saved, this one's predecessors included.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// What every datagram of this primary says about its sender, and how large one may be.
struct Header {
    pair: String,
    generation: u64,
    pid: u32,
    limit: usize,
    transport: &'static str,
}

impl Header {
    fn datagram<S: Serialize>(&self, body: Body<S>) -> Result<Vec<u8>, PairError> {
        let message = Message {
            pair: self.pair.clone(),
            generation: self.generation,
            pid: self.pid,
            body,
        };
        message::encode(&message).map_err(PairError::Serialize)
    }

    fn checkpoint<S: Serialize>(
        &self,
        sequence: u64,
        takeovers: u32,
        state: &S,
    ) -> Result<Vec<u8>, PairError> {
        let datagram = self.datagram(Body::Checkpoint {
            sequence,
            takeovers,
            state,
        })?;
        if datagram.len() > self.limit {
            return Err(PairError::CheckpointTooLarge {
                bytes: datagram.len(),
                limit: self.limit,
                transport: self.transport,
            });
        }
        Ok(datagram)
    }

    fn saved<S: Serialize>(&self, saved: &Saved<S>) -> Result<Vec<u8>, PairError> {
        self.checkpoint(saved.sequence, saved.takeovers, &saved.state)
    }
}

/// How long a checkpoint waits, at least, for room in the backup's queue.
const MIN_PATIENCE: Duration = Duration::from_secs(1);

/// The datagrams the backup must have, and whether it has them.
///
/// A checkpoint is sent patiently: the work does not go on until it is in the backup's queue
/// (unix transport), so that a takeover repeats one unit at most. A backup that takes nothing
/// for the whole patience (it is stopped, or the machine starves it) is not waited for again
/// until it takes something: the work goes on, unprotected meanwhile, and the checkpoint is
/// resent with every heartbeat until it gets through.
struct Outbox {
    sender: Sender,
    /// The latest checkpoint, encoded, and its sequence.
    latest: Vec<u8>,
    latest_sequence: u64,
    /// The one before, for a new backup's poison handling.
    previous: Option<Vec<u8>>,
    /// Whether `latest` left at its last sending (a full queue or no backup drops it).
    latest_sent: bool,
    /// The backup (pid) that was last sent both checkpoints. A new backup gets them at the
    /// next heartbeat after it registers.
    briefed_backup: Option<u32>,
    /// False once the backup let a patient checkpoint time out, until it takes a datagram.
    backup_keeps_up: bool,
    patience: Duration,
    logger: Logger,
}

impl Outbox {
    fn save(&mut self, sequence: u64, datagram: Vec<u8>) {
        self.latest_sequence = sequence;
        self.previous = Some(std::mem::replace(&mut self.latest, datagram));
        let sent = if self.backup_keeps_up {
            self.sender.send_patiently(&self.latest)
        } else {
            self.sender.send(&self.latest)
        };
        self.latest_sent = sent.is_ok();
        match sent {
            Ok(()) => self.backup_keeps_up = true,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock && self.backup_keeps_up => {
                self.backup_keeps_up = false;
                let backup = self.briefed_backup.map_or_else(
                    || "the backup".to_owned(),
                    |pid| format!("backup pid {pid}"),
                );
                self.logger.line(format_args!(
                    "{backup} took no checkpoint for {:?} (stopped?): working on without it",
                    self.patience
                ));
            }
            Err(_) => {}
        }
    }

    /// Every interval: brief a newly registered backup, resend a checkpoint that did not
    /// leave, then the heartbeat itself. Never waits.
    fn tick(&mut self, registered_backup: Option<u32>, heartbeat: &[u8]) {
        if registered_backup.is_some() && registered_backup != self.briefed_backup {
            let previous_sent = self
                .previous
                .as_ref()
                .is_none_or(|previous| self.sender.send(previous).is_ok());
            self.latest_sent = previous_sent && self.sender.send(&self.latest).is_ok();
            if self.latest_sent {
                self.briefed_backup = registered_backup;
            }
        } else if !self.latest_sent {
            self.latest_sent = self.sender.send(&self.latest).is_ok();
        }
        let heartbeat_sent = self.sender.send(heartbeat).is_ok();
        if self.latest_sent && heartbeat_sent {
            self.backup_keeps_up = true;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pid a backup wrote into its lock file once it listens, if any.
pub(crate) fn registered_backup(backup_lock: &Path) -> Option<u32> {
    std::fs::read_to_string(backup_lock)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Runs the work as primary until it says [`Flow::Stop`], or until this process learns it
/// lost primacy (then it exits, status 0, from here).
pub(crate) fn run_primary<S, W>(
    context: Context<S>,
    start: Start<S>,
    mut work: W,
) -> Result<(), PairError>
where
    S: Serialize,
    W: FnMut(&mut S, &mut Checkpoint<S>) -> Flow,
{
    let Context {
        name,
        paths,
        interval,
        misses,
        transport,
        logger,
        pid,
        backup_command,
        ..
    } = context;
    let generation = start.generation;
    let stderr_prefix = logger.is_stderr().then(|| logger.prefix().to_owned());
    sys::install_fence(&paths.generation, generation, stderr_prefix.as_deref())
        .map_err(|e| PairError::io("install the SIGCONT handler", e))?;
    logger.line(format_args!("primary (pid {pid}, generation {generation})"));

    let patience = interval.saturating_mul(misses).max(MIN_PATIENCE);
    let sender = Sender::open(&transport, &paths.backup_socket, patience)?;
    let (limit, transport_name) = sender.limit();
    let header = Arc::new(Header {
        pair: name,
        generation,
        pid,
        limit,
        transport: transport_name,
    });
    let outbox = Arc::new(Mutex::new(Outbox {
        sender,
        latest: header.saved(&start.latest)?,
        latest_sequence: start.latest.sequence,
        previous: start
            .previous
            .as_ref()
            .map(|previous| header.saved(previous))
            .transpose()?,
        latest_sent: false,
        briefed_backup: None,
        backup_keeps_up: true,
        patience,
        logger: logger.clone(),
    }));

    let (quit_heartbeats, heartbeats_quit) = mpsc::channel::<()>();
    let heartbeats = {
        let outbox = Arc::clone(&outbox);
        let header = Arc::clone(&header);
        let backup_lock = paths.backup_lock.clone();
        sys::spawn_without_sigcont("pair-heartbeat", move || {
            send_heartbeats(&outbox, &header, &backup_lock, interval, &heartbeats_quit)
        })
        .map_err(|e| PairError::io("start the heartbeat thread", e))?
    };
    let keeper = BackupKeeper::start(backup_command, logger.clone(), interval)
        .map_err(|e| PairError::io("start the backup keeper thread", e))?;

    let mut checkpoint = Checkpoint {
        header: Arc::clone(&header),
        outbox: Arc::clone(&outbox),
        sequence: start.latest.sequence,
        _state: PhantomData,
    };
    let mut state = start.latest.state;
    let mut fence_unreadable = false;
    loop {
        check_fence(
            &paths.generation,
            generation,
            &logger,
            &mut fence_unreadable,
        );
        if let Flow::Stop = work(&mut state, &mut checkpoint) {
            break;
        }
    }

    // The work is over: say so in the generation file first (a backup that misses the
    // stop message finds it there instead of taking over), then to the backup.
    check_fence(
        &paths.generation,
        generation,
        &logger,
        &mut fence_unreadable,
    );
    let stopped = Record {
        generation,
        pid,
        stopped: true,
    };
    generation::write(&paths.generation, stopped)
        .map_err(|e| PairError::io(format!("write {}", paths.generation.display()), e))?;
    if let Ok(stop) = header.datagram::<()>(Body::Stop) {
        let _ = lock(&outbox).sender.send(&stop);
    }
    drop(quit_heartbeats);
    let _ = heartbeats.join();
    keeper.stop(interval.saturating_mul(misses) + Duration::from_secs(1));
    logger.line("stopped: the work is over");
    drop(start.lock);
    Ok(())
}

/// The fence before each unit of work: if the generation file names a newer generation,
/// another process took over while this one was paused, and this one exits now, before it
/// does any work. An unreadable file is reported once and does not stop the work (nothing
/// says another primary exists).
fn check_fence(path: &Path, generation: u64, logger: &Logger, reported: &mut bool) {
    match generation::read(path) {
        Ok(Some(record)) if record.generation > generation => {
            logger.line(format_args!(
                "lost primacy to generation {}: exiting",
                record.generation
            ));
            std::process::exit(0);
        }
        Ok(_) => {}
        Err(error) if !*reported => {
            *reported = true;
            logger.line(format_args!(
                "cannot read {}: {error}; working on",
                path.display()
            ));
        }
        Err(_) => {}
    }
}

/// The heartbeat thread: every `interval`, a heartbeat (and whatever checkpoint the backup
/// lacks), until `quit` is dropped. A late tick is not made up for with a burst.
fn send_heartbeats(
    outbox: &Mutex<Outbox>,
    header: &Header,
    backup_lock: &Path,
    interval: Duration,
    quit: &mpsc::Receiver<()>,
) {
    let mut next = Instant::now();
    loop {
        let registered = registered_backup(backup_lock);
        {
            let mut outbox = lock(outbox);
            let sequence = outbox.latest_sequence;
            if let Ok(heartbeat) = header.datagram::<()>(Body::Heartbeat { sequence }) {
                outbox.tick(registered, &heartbeat);
            }
        }
        let now = Instant::now();
        next = (next + interval).max(now);
        match quit.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::UDP_LIMIT;

    fn header(limit: usize, transport: &'static str) -> Header {
        Header {
            pair: "counter".into(),
            generation: 1,
            pid: 42,
            limit,
            transport,
        }
    }

    #[test]
    fn a_state_too_large_for_a_udp_datagram_is_refused_with_its_size() {
        let header = header(UDP_LIMIT, "UDP");
        let small = vec![7u8; 1000];
        assert!(header.checkpoint(1, 0, &small).is_ok());
        let large = "x".repeat(70 * 1024);
        let error = header.checkpoint(2, 0, &large).expect_err("too large");
        let message = error.to_string();
        assert!(
            message.starts_with("checkpoint of 717")
                && message
                    .ends_with("bytes is larger than the 61440 bytes a UDP datagram may carry"),
            "{message}"
        );
    }

    #[test]
    fn the_registered_backup_is_the_pid_in_its_lock_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.backup.lock");
        assert_eq!(registered_backup(&path), None);
        std::fs::write(&path, "").expect("write");
        assert_eq!(registered_backup(&path), None);
        std::fs::write(&path, "4242\n").expect("write");
        assert_eq!(registered_backup(&path), Some(4242));
    }
}
