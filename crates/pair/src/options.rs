//! What a program says about its pair: [`Options`], [`Transport`], [`Log`].

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Lifeline, PairError};

/// The hook called when a checkpoint looks poisoned (see [`Options::on_poison`]): given the
/// poisoned state and the one checkpointed before it, it returns the state to resume from.
pub type PoisonHook<S> = Box<dyn FnMut(&S, &S) -> S>;

/// How a pair runs. [`Options::new`] gives the defaults; change the fields you need.
pub struct Options<S> {
    /// The pair's name: the files in [`dir`](Self::dir) are named after it, and every message
    /// carries it, so two pairs never mistake each other's datagrams. Letters, digits, `-`,
    /// `_` and `.`.
    pub name: String,
    /// The folder of the pair's files: `NAME.lock` (held by the primary), `NAME.gen` (the
    /// current generation), `NAME.backup.lock` (held by the backup, with its pid) and, with
    /// [`Transport::Unix`], the backup's socket `NAME.backup`. Created if missing. Both
    /// processes must see the same folder, so it is made absolute against the working folder
    /// at start.
    pub dir: PathBuf,
    /// How often the primary sends a heartbeat. Default 100 ms.
    pub interval: Duration,
    /// How many intervals in a row without a word from the primary make the backup take over.
    /// Default 3: a takeover starts 300 ms after the primary's last heartbeat.
    pub misses: u32,
    /// How heartbeats and checkpoints travel. Default [`Transport::Unix`].
    pub transport: Transport,
    /// How many takeovers at the same checkpoint make it poisoned. Default 3.
    pub poison_limit: u32,
    /// What to resume from when a checkpoint is poisoned: called with the poisoned state and
    /// the state checkpointed before it (or the initial state). `None` (the default) resumes
    /// from the state before.
    pub on_poison: Option<PoisonHook<S>>,
    /// Where the library writes its one-line messages (roles, takeovers, spawns). Default
    /// [`Log::Stderr`].
    pub log: Log,
    /// Where the primary starts its backups: in a session of their own (the default) or in
    /// its own session and process group.
    pub backup_session: BackupSession,
    /// A lifeline to die with: when it is cut, this process exits, and so does every backup
    /// (they inherit it). Default `None`.
    pub lifeline: Option<Lifeline>,
}

/// Where the primary starts its backups, and so which signals from a terminal reach them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackupSession {
    /// A session of its own (the default): the backup has no controlling terminal, so the
    /// terminal's Ctrl-C, Ctrl-Z and hangup reach the primary alone, and the backup takes
    /// over when they kill it. A pair that must outlive its terminal wants this; a person
    /// then stops it by killing both processes.
    #[default]
    New,
    /// The primary's own session and process group: what the terminal sends the foreground
    /// group (Ctrl-C, Ctrl-Z) reaches the backup too, so the pair ends (or pauses) as one.
    /// Meant for a pair run in the foreground under a process that stays there for the
    /// pair's whole life, as the demo's holder does: when the first primary dies, a shell
    /// would otherwise take the terminal back from the pair.
    Same,
}

/// How the primary's heartbeats and checkpoints reach the backup: datagrams, always, so that
/// there is no connection whose end could tell the backup that the primary died. Only
/// silence does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A unix datagram socket, `DIR/NAME.backup`, bound by the backup. One host.
    Unix,
    /// UDP: the backup binds `listen`, the primary sends to `peer`. On one host both are the
    /// same address. A checkpoint must fit in one datagram: at most 60 KiB of JSON.
    Udp {
        /// The address the backup receives on.
        listen: SocketAddr,
        /// The address the primary sends to: the backup's `listen`.
        peer: SocketAddr,
    },
}

/// Where the library's one-line messages go. Each is `NAME[PID]: message`.
pub enum Log {
    /// The process's standard error (the default).
    Stderr,
    /// Nowhere.
    Discard,
    /// A writer of the program's. One [`Write::write_all`] per line. The message of a primary
    /// that learns it lost primacy when it is continued after a stop (`SIGCONT`) is written
    /// from a signal handler, so it goes to stderr with [`Log::Stderr`] and nowhere otherwise.
    Writer(Box<dyn Write + Send>),
}

impl<S> Options<S> {
    /// The defaults for the pair `name` whose files live in `dir`.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Options {
            name: name.into(),
            dir: dir.into(),
            interval: Duration::from_millis(100),
            misses: 3,
            transport: Transport::Unix,
            poison_limit: 3,
            on_poison: None,
            log: Log::Stderr,
            backup_session: BackupSession::New,
            lifeline: None,
        }
    }

    /// How long the backup waits without a word from the primary before it takes over.
    pub fn silence_limit(&self) -> Duration {
        self.interval.saturating_mul(self.misses)
    }

    /// Refuses options the pair cannot run with.
    pub(crate) fn validate(&self) -> Result<(), PairError> {
        let name_is_plain = self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if self.name.is_empty() || self.name.starts_with('.') || !name_is_plain {
            return Err(PairError::Options(format!(
                "name {:?}: letters, digits, '-', '_' and '.' only, not first",
                self.name
            )));
        }
        if self.interval.is_zero() {
            return Err(PairError::Options("interval must be above zero".into()));
        }
        if self.misses == 0 {
            return Err(PairError::Options("misses must be at least 1".into()));
        }
        if self.poison_limit == 0 {
            return Err(PairError::Options("poison_limit must be at least 1".into()));
        }
        Ok(())
    }
}

impl<S> fmt::Debug for Options<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .field("misses", &self.misses)
            .field("transport", &self.transport)
            .field("poison_limit", &self.poison_limit)
            .field("on_poison", &self.on_poison.as_ref().map(|_| "hook"))
            .field("log", &self.log)
            .field("backup_session", &self.backup_session)
            .field("lifeline", &self.lifeline)
            .finish()
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Log::Stderr => "Stderr",
            Log::Discard => "Discard",
            Log::Writer(_) => "Writer",
        })
    }
}

/// The paths of a pair's files, all in one folder.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    /// `NAME.lock`: flock'ed by the primary for as long as it lives.
    pub lock: PathBuf,
    /// `NAME.gen`: the current primary's generation and pid.
    pub generation: PathBuf,
    /// `NAME.backup.lock`: flock'ed by the backup, and holding its pid once it listens.
    pub backup_lock: PathBuf,
    /// `NAME.backup`: the backup's unix datagram socket.
    pub backup_socket: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path, name: &str) -> Self {
        Paths {
            lock: dir.join(format!("{name}.lock")),
            generation: dir.join(format!("{name}.gen")),
            backup_lock: dir.join(format!("{name}.backup.lock")),
            backup_socket: dir.join(format!("{name}.backup")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_over_after_300ms() {
        let options = Options::<u64>::new("counter", "/tmp");
        assert_eq!(options.silence_limit(), Duration::from_millis(300));
        assert!(options.validate().is_ok());
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        for name in ["", "a/b", ".hidden", "sp ace"] {
            let options = Options::<u64>::new(name, "/tmp");
            assert!(options.validate().is_err(), "{name:?} accepted");
        }
    }
}
