//! The backup: listen, keep the last two checkpoints, and take over after enough silence.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use serde::de::DeserializeOwned;

use crate::generation::{self, Record};
use crate::log::Logger;
use crate::message::{self, Body};
use crate::poison::{after_poison, plan_takeover, Kept, Resume, Saved};
use crate::primary::{registered_backup, Start};
use crate::transport::Receiver;
use crate::{open_lock_file, sys, Context, PairError};

/// How a backup's life ends.
pub(crate) enum Ending<S> {
    /// The primary finished the work ([`Flow::Stop`](crate::Flow::Stop)): nothing to take
    /// over.
    Stopped,
    /// The primary fell silent: this process is the primary now, from this start.
    TakeOver(Start<S>),
}

/// Runs as the backup: claims the backup role (or fails with
/// [`PairError::BackupRunning`]), listens to the primary, and takes over when it falls
/// silent for [`Options::silence_limit`](crate::Options::silence_limit).
pub(crate) fn run_backup<S>(context: &mut Context<S>, initial: &S) -> Result<Ending<S>, PairError>
where
    S: DeserializeOwned + Clone,
{
    let paths = context.paths.clone();
    let backup_lock = open_lock_file(&paths.backup_lock)?;
    match flock(&backup_lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(PairError::BackupRunning {
                name: context.name.clone(),
                pid: registered_backup(&paths.backup_lock),
            });
        }
        Err(e) => {
            let what = format!("lock {}", paths.backup_lock.display());
            return Err(PairError::io(what, e.into()));
        }
    }
    let receiver = Receiver::bind(&context.transport, &paths.backup_socket)?;
    // Registered: the primary sends its checkpoints once it reads this pid.
    register(&backup_lock, Some(context.pid))
        .map_err(|e| PairError::io(format!("write {}", paths.backup_lock.display()), e))?;

    let listened = listen(context, &receiver);
    let ending = match listened {
        Ok(Heard::Stop(reason)) => {
            context.logger.line(reason);
            Ok(Ending::Stopped)
        }
        Ok(Heard::Silence { kept, since, known }) => {
            take_over(context, initial, kept, since, known).map(Ending::TakeOver)
        }
        Err(e) => Err(e),
    };
    // Give the backup role back: a new backup binds a fresh socket, and until then the
    // primary finds no registered pid.
    receiver.release();
    let _ = register(&backup_lock, None);
    drop(backup_lock);
    ending
}

/// Writes `pid` (or nothing) into the backup lock file.
fn register(backup_lock: &File, pid: Option<u32>) -> std::io::Result<()> {
    backup_lock.set_len(0)?;
    match pid {
        Some(pid) => backup_lock.write_all_at(format!("{pid}\n").as_bytes(), 0),
        None => Ok(()),
    }
}

/// What listening ended with.
enum Heard<S> {
    /// The pair is over; the line to log.
    Stop(String),
    /// The primary fell silent at `since`; `known` is the newest generation heard of.
    Silence {
        kept: Kept<S>,
        since: Instant,
        known: u64,
    },
}

/// Listens until the primary stops the pair or falls silent.
fn listen<S>(context: &Context<S>, receiver: &Receiver) -> Result<Heard<S>, PairError>
where
    S: DeserializeOwned,
{
    let logger = &context.logger;
    let record = generation::read(&context.paths.generation).ok().flatten();
    // The newest generation heard of: messages from older ones come from fenced primaries.
    let mut known = record.map_or(0, |record| record.generation);
    let mut announced = false;
    let mut kept = Kept::new();
    let mut last_heard = Instant::now();
    let mut reported_stray = false;
    let mut buffer = receiver.buffer();
    let silence_limit = context.interval.saturating_mul(context.misses);
    loop {
        let silence = last_heard.elapsed();
        if silence >= silence_limit {
            // Silence; unless the primary ended the work and its stop message was lost.
            match generation::read(&context.paths.generation) {
                Ok(Some(record)) if record.stopped && record.generation >= known => {
                    return Ok(Heard::Stop(format!(
                        "the pair was stopped by pid {} (generation {}): exiting",
                        record.pid, record.generation
                    )));
                }
                _ => {
                    return Ok(Heard::Silence {
                        kept,
                        since: last_heard,
                        known,
                    })
                }
            }
        }
        let length = match receiver.receive(&mut buffer, silence_limit - silence) {
            Ok(Some(length)) => length,
            Ok(None) => continue,
            Err(e) => return Err(PairError::io("receive from the primary", e)),
        };
        let message = match message::decode::<S>(&buffer[..length]) {
            Ok(message) => message,
            Err(error) => {
                if !reported_stray {
                    reported_stray = true;
                    logger.line(format_args!(
                        "ignored a datagram that is not a message of this pair: {error}"
                    ));
                }
                continue;
            }
        };
        if message.pair != context.name || message.generation < known {
            continue;
        }
        if message.generation > known {
            // A new primary: what the old one checkpointed is not its history.
            known = message.generation;
            kept = Kept::new();
            announced = false;
        }
        last_heard = Instant::now();
        match message.body {
            Body::Heartbeat { sequence } => {
                // In step with the primary once it has the checkpoint the primary calls its
                // latest: from then on, a takeover loses nothing.
                let in_step = kept
                    .latest
                    .as_ref()
                    .is_some_and(|latest| latest.sequence >= sequence);
                if in_step && !announced {
                    announced = true;
                    logger.line(format_args!(
                        "backup of pid {} (generation {known})",
                        message.pid
                    ));
                }
            }
            Body::Checkpoint {
                sequence,
                takeovers,
                state,
            } => kept.receive(Saved {
                sequence,
                takeovers,
                state,
            }),
            Body::Stop => {
                return Ok(Heard::Stop(format!(
                    "primary pid {} stopped the pair: exiting",
                    message.pid
                )));
            }
        }
    }
}

/// Becomes the primary: the new generation first (the fence), then the primary's lock if
/// the old primary let go of it, then the state to resume from.
fn take_over<S: Clone>(
    context: &mut Context<S>,
    initial: &S,
    kept: Kept<S>,
    silent_since: Instant,
    known: u64,
) -> Result<Start<S>, PairError> {
    let paths = &context.paths;
    let in_file = generation::read(&paths.generation)
        .ok()
        .flatten()
        .map_or(0, |record| record.generation);
    let generation = known.max(in_file) + 1;
    let record = Record {
        generation,
        pid: context.pid,
        stopped: false,
    };
    generation::write(&paths.generation, record)
        .map_err(|e| PairError::io(format!("write {}", paths.generation.display()), e))?;
    context.logger.line(format_args!(
        "takeover: no heartbeat for {}ms; generation {generation}",
        silent_since.elapsed().as_millis()
    ));
    let lock = take_primary_lock(context, generation)?;

    let (latest, previous) = match plan_takeover(kept, initial, context.poison_limit) {
        Resume::Latest { resumed, previous } => (resumed, previous),
        Resume::Poisoned { poisoned, before } => {
            let (state, from) = match &mut context.on_poison {
                Some(hook) => (
                    hook(&poisoned.state, &before.state),
                    "the state on_poison returned".to_owned(),
                ),
                None => (
                    before.state.clone(),
                    format!("checkpoint {}", before.sequence),
                ),
            };
            context.logger.line(format_args!(
                "poisoned: {} takeovers at checkpoint {}: resuming from {from}",
                poisoned.takeovers, poisoned.sequence
            ));
            (after_poison(&poisoned, state), Some(before))
        }
    };
    Ok(Start {
        generation,
        latest,
        previous,
        lock,
    })
}

/// The primary's lock, taken now if the old primary is dead. If it is only paused it still
/// holds it: the new generation fences it already, and a thread waits for the lock (the
/// kernel hands it over when the old primary exits), so that a program started meanwhile
/// finds it held and becomes a backup.
fn take_primary_lock<S>(
    context: &Context<S>,
    generation: u64,
) -> Result<Arc<Mutex<Option<File>>>, PairError> {
    let path = &context.paths.lock;
    let file = open_lock_file(path)?;
    let slot = Arc::new(Mutex::new(None));
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(file),
        Err(Errno::WOULDBLOCK) => {
            context.logger.line(format_args!(
                "the old primary still holds {} (paused?); generation {generation} fences it",
                path.display()
            ));
            let filled = Arc::clone(&slot);
            let logger: Logger = context.logger.clone();
            sys::spawn_without_sigcont("pair-lock-waiter", move || loop {
                match flock(&file, FlockOperation::LockExclusive) {
                    Ok(()) => {
                        *filled.lock().unwrap_or_else(PoisonError::into_inner) = Some(file);
                        return;
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        logger.line(format_args!("cannot wait for the primary's lock: {e}"));
                        return;
                    }
                }
            })
            .map_err(|e| PairError::io("start the lock waiter thread", e))?;
        }
        Err(e) => return Err(PairError::io(format!("lock {}", path.display()), e.into())),
    }
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Paths;
    use crate::spawn::BackupCommand;
    use crate::{BackupSession, Log, Transport};
    use std::io::Write;
    use std::time::Duration;

    /// A `Write` whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    fn context(dir: &std::path::Path, log: &Captured) -> Context<u64> {
        Context {
            name: "counter".into(),
            paths: Paths::new(dir, "counter"),
            interval: Duration::from_millis(100),
            misses: 3,
            transport: Transport::Unix,
            poison_limit: 3,
            on_poison: None,
            logger: Logger::new(Log::Writer(Box::new(log.clone())), "counter"),
            pid: std::process::id(),
            backup_command: BackupCommand::of_this_process(
                dir.to_path_buf(),
                BackupSession::New,
                None,
            ),
        }
    }

    fn kept(takeovers: u32) -> Kept<u64> {
        Kept {
            latest: Some(Saved {
                sequence: 4,
                takeovers,
                state: 40,
            }),
            previous: Some(Saved {
                sequence: 3,
                takeovers: 0,
                state: 30,
            }),
        }
    }

    #[test]
    fn a_takeover_writes_the_next_generation_and_takes_the_free_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Captured::default();
        let mut context = context(dir.path(), &log);
        let start = take_over(&mut context, &1, kept(0), Instant::now(), 6).expect("take over");
        assert_eq!(start.generation, 7);
        assert_eq!((start.latest.sequence, start.latest.takeovers), (4, 1));
        assert_eq!(start.latest.state, 40);
        assert!(
            start.lock.lock().expect("lock").is_some(),
            "the lock was free"
        );
        let record = generation::read(&context.paths.generation).expect("read");
        assert_eq!(
            record,
            Some(Record {
                generation: 7,
                pid: std::process::id(),
                stopped: false,
            })
        );
        assert!(
            log.text().contains("takeover: no heartbeat for "),
            "{}",
            log.text()
        );
    }

    #[test]
    fn the_third_takeover_at_a_checkpoint_resumes_from_the_one_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Captured::default();
        let mut context = context(dir.path(), &log);
        let start = take_over(&mut context, &1, kept(2), Instant::now(), 1).expect("take over");
        assert_eq!(start.latest.state, 30);
        assert_eq!((start.latest.sequence, start.latest.takeovers), (5, 0));
        assert!(
            log.text()
                .contains("poisoned: 3 takeovers at checkpoint 4: resuming from checkpoint 3"),
            "{}",
            log.text()
        );
    }

    #[test]
    fn on_poison_chooses_the_state_to_resume_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Captured::default();
        let mut context = context(dir.path(), &log);
        context.on_poison = Some(Box::new(|poisoned: &u64, before: &u64| {
            poisoned + before + 1
        }));
        let start = take_over(&mut context, &1, kept(2), Instant::now(), 1).expect("take over");
        assert_eq!(start.latest.state, 71);
        assert!(
            log.text().contains(
                "poisoned: 3 takeovers at checkpoint 4: resuming from the state on_poison returned"
            ),
            "{}",
            log.text()
        );
    }
}
