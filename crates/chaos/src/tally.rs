//! The run's counts, shared by every actor.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::control::Answer;

/// How many problems of each kind are kept word for word (the rest are only counted).
const SAMPLES: usize = 8;

/// What the actors did, and what came of the requests.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Signals sent to children and grandchildren, by signal name.
    pub signals: BTreeMap<&'static str, u64>,
    /// Control requests sent, by verb (`start`, `ctl stop`...).
    pub requests: BTreeMap<String, u64>,
    /// Reloads: by SIGHUP, and by the `reload` request.
    pub sighups: u64,
    pub reload_requests: u64,
    /// The health checks' flag removed or put back.
    pub health_flips: u64,
    /// Requests answered (per-process errors in the answer do not count against it).
    pub answered: u64,
    /// Per-process errors in answers (`not running`...), by error: expected under chaos.
    pub outcome_errors: BTreeMap<String, u64>,
    /// Answers with a 4xx status.
    pub client_errors: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Requests never answered within the timeout.
    pub never: u64,
    /// Connections that failed, or answers that could not be read.
    pub broken: u64,
    /// Reloads refused (the file is always valid: a refusal is a failure).
    pub rejected: u64,
    /// The first few problems, word for word.
    pub samples: Vec<String>,
    /// What the watcher saw wrong during the run, for longer than it may take to settle:
    /// status lies, zombies, leftovers (see `actors::watcher`).
    pub watched: Watched,
}

/// The watcher's findings during the run: counts, and the first few word for word.
#[derive(Debug, Default, Clone)]
pub struct Watched {
    /// `status` answers the watcher compared with `/proc`.
    pub looks: u64,
    pub lies: u64,
    pub zombies: u64,
    pub leftovers: u64,
    pub samples: Vec<String>,
    /// The longest any disagreement between `status` and `/proc` (a lie or a zombie) was seen
    /// to last, counted or not, and what it was.
    pub longest: Option<(std::time::Duration, String)>,
}

impl Watched {
    pub fn note(&mut self, text: String) {
        if self.samples.len() < SAMPLES * 2 {
            self.samples.push(text);
        }
    }
}

impl Tally {
    pub fn actions(&self) -> u64 {
        self.signals.values().sum::<u64>()
            + self.requests.values().sum::<u64>()
            + self.sighups
            + self.health_flips
    }

    fn sample(&mut self, text: String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(text);
        }
    }

    /// Counts `answer` to request `what`.
    pub fn record(&mut self, what: &str, answer: &Answer) {
        match answer {
            Answer::Answered { failures } => {
                self.answered += 1;
                for failure in failures {
                    *self.outcome_errors.entry(failure.clone()).or_default() += 1;
                }
            }
            Answer::Rejected(why) => {
                self.answered += 1;
                self.rejected += 1;
                self.sample(format!("{what}: reload rejected: {why}"));
            }
            Answer::Status { status, message } if *status >= 500 => {
                self.server_errors += 1;
                self.sample(format!("{what}: {status}: {message}"));
            }
            Answer::Status { status, message } => {
                self.client_errors += 1;
                self.sample(format!("{what}: {status}: {message}"));
            }
            Answer::Broken(why) => {
                self.broken += 1;
                self.sample(format!("{what}: {why}"));
            }
            Answer::Never => {
                self.never += 1;
                self.sample(format!("{what}: no answer"));
            }
        }
    }
}

/// The tally behind a lock, poison or not (a panicking actor must not hide the counts).
#[derive(Debug, Default)]
pub struct Shared(Mutex<Tally>);

impl Shared {
    pub fn with<T>(&self, f: impl FnOnce(&mut Tally) -> T) -> T {
        let mut tally = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut tally)
    }

    pub fn snapshot(&self) -> Tally {
        self.with(|tally| tally.clone())
    }
}
