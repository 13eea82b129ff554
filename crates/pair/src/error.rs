//! The one error type of the crate.

use std::io;

/// Why [`run`](crate::run) or [`Checkpoint::save`](crate::Checkpoint::save) failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The [`Options`](crate::Options) cannot work (an empty name, a zero interval, ...).
    #[error("pair options: {0}")]
    Options(String),

    /// A file or socket operation failed; `what` says which, with its path.
    #[error("{what}: {source}")]
    Io {
        /// The operation and its path: `bind /tmp/x/counter.backup`.
        what: String,
        /// What the system said.
        #[source]
        source: io::Error,
    },

    /// This process would be a second backup: one is already listening for the primary. At
    /// most one backup per primary, so that a pair never multiplies.
    #[error("a backup of pair {name:?} is already running{}", pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    BackupRunning {
        /// The pair's name.
        name: String,
        /// The running backup, when it has registered.
        pid: Option<u32>,
    },

    /// A checkpoint is larger than one datagram of the transport may carry; the state must
    /// shrink (or use the unix transport, whose limit is the socket buffer).
    #[error("checkpoint of {bytes} bytes is larger than the {limit} bytes a {transport} datagram may carry")]
    CheckpointTooLarge {
        /// The encoded checkpoint's size.
        bytes: usize,
        /// The transport's limit.
        limit: usize,
        /// `unix` or `UDP`.
        transport: &'static str,
    },

    /// The state could not be turned into JSON (a map with non-string keys, a failing
    /// `Serialize` impl).
    #[error("checkpoint: cannot serialize the state: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl PairError {
    /// An [`PairError::Io`] for `what` (the operation and its path).
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        PairError::Io {
            what: what.into(),
            source,
        }
    }
}
