//! The primary's side of `run --pair`: keeping a hot backup, keeping it up to date, and
//! handing over to it.
//!
//! The primary starts its backup (a copy of this executable, `run --pair --backup`), which
//! connects to the link ([`pair::PrimaryLink`]). A connected backup first gets the whole state
//! and every child's descriptors; then, after every turn of the loop, the children spawned
//! meanwhile and the state if it changed, or a heartbeat when nothing was sent for a
//! `pair.interval`.
//!
//! Its duties run on a schedule of their own, [`Primary::next_duty`]: an absolute time the
//! loop sleeps until, which no other event can postpone. However busy the loop is (requests,
//! exits, notifications at any rate), a backup is started as soon as one is due (at once when
//! taking over; a backup that died is replaced at once, or a second after the last start if it
//! died sooner), heartbeats go out every `interval`, and a handover that waits gives up at its
//! deadline. Until its backup has connected the pair is one process, and `status` says so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use taskmaster_core::{ExitStatus, Supervisor, Ticket};

use crate::children::Children;
use crate::eventlog::EventLog;
use crate::pair::{self, PrimaryLink};

/// How long a handover waits for a backup to be ready.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// A backup that dies sooner than this after its start is replaced only this long after it;
/// one that lived longer is replaced at once.
const BACKUP_RESPAWN: Duration = Duration::from_secs(1);

/// While a new backup's state is being written, how often the loop looks whether it is.
const READY_POLL: Duration = Duration::from_millis(2);

/// What the primary needs to start its backups: the configuration file they are started with.
pub(crate) struct PrimarySettings {
    pub config: PathBuf,
    pub verbose: bool,
    /// The RLIMIT_NOFILE taskmaster started with, for the backup (see [`pair::spawn_backup`]).
    pub nofile: Option<rustix::process::Rlimit>,
}

/// The backup process, while it runs.
struct Backup {
    pid: u32,
    started: Instant,
}

/// A `takeover` or `upgrade` on its way.
struct PendingHandover {
    ticket: Option<Ticket>,
    /// An upgrade waits for a backup started after the request.
    needs_new_backup: bool,
    /// Given up then, with an answer that says why.
    deadline: Instant,
}

/// A handover is over: for the supervisor to answer.
pub(crate) struct HandoverResult {
    pub ticket: Option<Ticket>,
    /// The backup that has the word now, or why none does.
    pub result: Result<u32, String>,
}

pub(crate) struct Primary {
    link: PrimaryLink,
    settings: PrimarySettings,
    /// The executable's file as it was named at start: an upgrade starts the backup from it,
    /// which is the new binary once the file has been replaced.
    exe_file: PathBuf,
    /// Time between two heartbeats (`pair.interval`).
    interval: Duration,
    /// The supervisor's state changed since the backup last heard it.
    state_changed: bool,
    /// Children spawned since the backup last heard, whose descriptors it needs.
    new_children: Vec<u32>,
    /// A backup connected and its state is on its way: "connected" is said once it is
    /// written.
    announce_ready: bool,
    backup: Option<Backup>,
    /// When a backup is due, while there is none.
    next_backup: Instant,
    /// When the backup was last sent anything.
    last_sent: Instant,
    handover: Option<PendingHandover>,
    /// This primary handed over and is exiting, every process left running.
    handed_over: bool,
}

impl Primary {
    /// Listens for a backup beside the control socket `socket`; the first backup is due at
    /// once. On the loop.
    pub fn bind(
        socket: &std::path::Path,
        settings: PrimarySettings,
        interval: Duration,
    ) -> std::io::Result<Primary> {
        let now = Instant::now();
        Ok(Primary {
            link: PrimaryLink::bind(socket)?,
            settings,
            exe_file: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            interval,
            state_changed: true,
            new_children: Vec::new(),
            announce_ready: false,
            backup: None,
            next_backup: now,
            last_sent: now,
            handover: None,
            handed_over: false,
        })
    }

    /// The backup's pid, and whether it is connected (it has the state and can take over).
    pub fn backup(&self) -> (Option<u32>, bool) {
        let pid = self.backup.as_ref().map(|backup| backup.pid);
        (pid, pid.is_some() && self.link.is_ready())
    }

    /// A backup holds the state and the children: it could take over now.
    pub fn is_ready(&self) -> bool {
        self.link.is_ready()
    }

    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// Whether this primary handed over and must exit.
    pub fn handed_over(&self) -> bool {
        self.handed_over
    }

    /// The supervisor's state changed: the backup must hear it.
    pub fn state_changed(&mut self) {
        self.state_changed = true;
    }

    /// A child was spawned: the backup must get its descriptors.
    pub fn child_spawned(&mut self, pid: u32) {
        self.new_children.push(pid);
    }

    /// The next moment a duty is due whatever else happens: a backup to start, a heartbeat,
    /// a handover to give up.
    pub fn next_duty(&self, shutting_down: bool) -> Option<Instant> {
        let backup_due = (self.backup.is_none() && !shutting_down).then_some(self.next_backup);
        let beat_due = self
            .link
            .is_connected()
            .then(|| self.last_sent + self.interval);
        let handover_due = self.handover.as_ref().map(|handover| handover.deadline);
        // Whether the new backup's state is written yet is looked at soon again.
        let ready_due = self.announce_ready.then(|| Instant::now() + READY_POLL);
        [backup_due, beat_due, handover_due, ready_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Waits for a backup to connect: its pid, as the kernel tells it.
    pub async fn accept(&mut self) -> std::io::Result<Option<u32>> {
        self.link.accept().await
    }

    /// A backup connected: it gets the state and every child's descriptors, unless it is not
    /// the backup this primary keeps (one it replaced for an upgrade may have been on its way
    /// in).
    pub fn backup_connected(
        &mut self,
        peer: Option<u32>,
        supervisor: &mut Supervisor,
        children: &Children,
    ) {
        let expected = self.backup.as_ref().map(|backup| backup.pid);
        if peer.is_none() || peer != expected {
            self.link.disconnect();
            return;
        }
        // The state first: a backup without it cannot take over. Then, after each turn, what
        // changed since.
        self.link.send_state(supervisor);
        supervisor.keep_changes();
        self.state_changed = false;
        for pid in children.program_pids() {
            if let Some(descriptors) = children.descriptors(pid) {
                self.link.send_child(pid, &descriptors);
            }
        }
        self.new_children.clear();
        self.last_sent = Instant::now();
        if let Some(handover) = self.handover.as_mut() {
            handover.needs_new_backup = false;
        }
        // Said, and shown by `status`, once the backup holds all this: before, a primary that
        // dies leaves it nothing to take over with.
        self.link.mark_ready();
        self.announce_ready = self.link.is_connected();
    }

    /// Whether `pid` was the backup; if so its end is logged and another is due.
    pub fn backup_exited(&mut self, pid: u32, status: ExitStatus, log: &mut EventLog) -> bool {
        let Some(backup) = self.backup.as_ref().filter(|backup| backup.pid == pid) else {
            return false;
        };
        self.next_backup = (backup.started + BACKUP_RESPAWN).max(Instant::now());
        self.backup = None;
        self.link.disconnect();
        log.warn(format!("the backup (pid {pid}) {status}: starting another"));
        true
    }

    /// After every turn of the loop, and when [`Primary::next_duty`] comes: a backup started
    /// if one is due; the backup told of new children, of the new state, or that the primary
    /// lives; a handover finished or given up.
    pub fn after_turn(
        &mut self,
        supervisor: &mut Supervisor,
        children: &Children,
        log: &mut EventLog,
    ) -> Option<HandoverResult> {
        if self.link.is_broken() {
            self.link.disconnect();
            self.drop_backup("it stopped listening", log);
        }
        self.start_backup_if_due(supervisor.is_shutting_down(), log);
        if self.link.is_connected() {
            self.send_updates(supervisor, children);
        }
        if self.announce_ready && self.link.is_ready() {
            self.announce_ready = false;
            log.say("the backup is connected");
        }
        self.announce_ready &= self.link.is_connected();
        self.finish_handover(supervisor).inspect(|done| {
            if let Ok(backup) = done.result {
                log.say(format!(
                    "handing over to the backup (pid {backup}); this taskmaster exits, every process left running"
                ));
            }
        })
    }

    /// A `takeover` or `upgrade`; for an upgrade, the backup is replaced by one started from
    /// the executable's file. The handover itself happens once a suitable backup is
    /// connected.
    pub fn begin_handover(&mut self, ticket: Option<Ticket>, upgrade: bool, log: &mut EventLog) {
        self.handover = Some(PendingHandover {
            ticket,
            needs_new_backup: upgrade,
            deadline: Instant::now() + HANDOVER_WAIT,
        });
        if upgrade {
            self.drop_backup("an upgrade replaces it with the new binary", log);
            self.backup = None;
            self.next_backup = Instant::now();
            self.link.disconnect(); // the old backup's stream: a new backup is coming
        }
    }

    /// At the end of the loop: the backup is told the pair is over (unless this primary
    /// handed over), the stream is closed once the last word is written, and a backup that
    /// never connected is killed (it would take over from nobody).
    pub async fn close(mut self, log: &mut EventLog) {
        if !self.handed_over {
            self.link.send_exit();
        }
        let connected = self.link.is_connected();
        self.link.close().await;
        if !connected && !self.handed_over {
            self.drop_backup("the pair is shutting down", log);
        }
        // Dropping the link ends the stream: the backup's cue after a handover.
    }

    fn start_backup_if_due(&mut self, shutting_down: bool, log: &mut EventLog) {
        let now = Instant::now();
        if self.backup.is_some() || shutting_down || now < self.next_backup {
            return;
        }
        // The running binary, even if its file was replaced; an upgrade takes the file.
        let upgrading = self
            .handover
            .as_ref()
            .is_some_and(|handover| handover.needs_new_backup);
        let exe = if upgrading {
            self.exe_file.clone()
        } else {
            PathBuf::from("/proc/self/exe")
        };
        match pair::spawn_backup(
            &exe,
            &self.settings.config,
            self.settings.verbose,
            self.settings.nofile,
        ) {
            Ok(pid) => {
                self.backup = Some(Backup { pid, started: now });
                log.say(format!("backup started (pid {pid})"));
            }
            Err(e) => {
                self.next_backup = now + BACKUP_RESPAWN;
                log.warn(format!(
                    "cannot start a backup: {}; trying again",
                    taskmaster_config::os_reason(&e)
                ));
            }
        }
    }

    /// In the middle of a long turn (thousands of spawns or exits): a heartbeat if one is due,
    /// so that the backup does not take a busy primary for a hung one. Only the loop calls
    /// it, so a hung loop still falls silent. Cheap: a clock read when none is due.
    pub fn beat_if_due(&mut self) {
        if self.link.is_connected() && Instant::now() >= self.last_sent + self.interval {
            self.link.send_beat();
            self.last_sent = Instant::now();
        }
    }

    fn send_updates(&mut self, supervisor: &mut Supervisor, children: &Children) {
        for pid in std::mem::take(&mut self.new_children) {
            if let Some(descriptors) = children.descriptors(pid) {
                self.link.send_child(pid, &descriptors);
                self.last_sent = Instant::now();
            }
        }
        if std::mem::take(&mut self.state_changed) {
            // What changed, not the whole state: its size follows the turn's work, not the
            // number of processes.
            self.link.send_changes(supervisor.take_changes());
            self.last_sent = Instant::now();
        } else {
            self.beat_if_due();
        }
    }

    /// Hands over when a handover waits and its backup is ready: gives the backup the last
    /// state and the word; the backup takes over when this process's stream ends. Gives up
    /// at the handover's deadline.
    fn finish_handover(&mut self, supervisor: &Supervisor) -> Option<HandoverResult> {
        let handover = self.handover.as_ref()?;
        if handover.needs_new_backup || !self.link.is_connected() {
            if Instant::now() < handover.deadline {
                return None;
            }
            let ticket = handover.ticket;
            self.handover = None;
            return Some(HandoverResult {
                ticket,
                result: Err(format!("no backup was ready within {HANDOVER_WAIT:?}")),
            });
        }
        let ticket = handover.ticket;
        let backup = self.backup.as_ref().map_or(0, |backup| backup.pid);
        self.handover = None;
        self.handed_over = true;
        self.link.send_state(supervisor);
        self.link.send_handover();
        Some(HandoverResult {
            ticket,
            result: Ok(backup),
        })
    }

    /// Kills a backup that broke off (a paused or hung one would otherwise come back, find its
    /// stream gone and take over from a live primary); its exit brings a new one.
    fn drop_backup(&mut self, why: &str, log: &mut EventLog) {
        let Some(backup) = self.backup.as_ref() else {
            return;
        };
        let pid = backup.pid;
        log.warn(format!("the backup (pid {pid}) is dropped: {why}"));
        // It is our child and not yet reaped, so the pid is still its own.
        let _ = crate::sys::kill(pid, taskmaster_core::Signal::KILL);
    }
}
