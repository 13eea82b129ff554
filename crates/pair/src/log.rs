//! The library's one-line messages, `NAME[PID]: message`, to wherever [`Log`] says.

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::Log;

/// A cheap handle every thread of the pair writes its lines through.
#[derive(Clone)]
pub(crate) struct Logger {
    log: Arc<Mutex<Log>>,
    prefix: String,
}

impl Logger {
    pub fn new(log: Log, name: &str) -> Self {
        Logger {
            log: Arc::new(Mutex::new(log)),
            prefix: format!("{name}[{}]: ", std::process::id()),
        }
    }

    /// `NAME[PID]: ` — what every line starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether lines go to stderr (so the signal handler may write there too).
    pub fn is_stderr(&self) -> bool {
        matches!(
            *self.log.lock().unwrap_or_else(PoisonError::into_inner),
            Log::Stderr
        )
    }

    /// Writes one line. A line is one `write` of at most a few hundred bytes, so the lines of
    /// the two processes sharing a stderr pipe never mix. A failing log is not the program's
    /// problem: the error is dropped.
    pub fn line(&self, message: impl Display) {
        let line = format!("{}{message}\n", self.prefix);
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = match &mut *log {
            Log::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Log::Discard => Ok(()),
            Log::Writer(writer) => writer
                .write_all(line.as_bytes())
                .and_then(|()| writer.flush()),
        };
    }
}
