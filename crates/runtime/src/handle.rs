//! The daemon's face to the rest of the program: a [`Handle`] sends it requests from any
//! thread and subscribes to what it announces ([`DaemonEvent`]); [`Exiting`] tells a service
//! running beside it that it is about to exit.

use std::time::SystemTime;

use taskmaster_config::{AlertLevel, Stream};
use taskmaster_core::{Reply, Request, State};
use tokio::sync::{broadcast, mpsc, oneshot};

/// What subscribers of the daemon's events receive: every state change and every event-log
/// line, as they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum DaemonEvent {
    StateChanged {
        process: String,
        from: State,
        to: State,
        at: SystemTime,
    },
    Log {
        process: Option<String>,
        message: String,
        at: SystemTime,
    },
    /// An output line matched one of the program's `alerts`.
    Alert {
        program: String,
        stream: Stream,
        level: AlertLevel,
        line: String,
        at: SystemTime,
    },
}

/// How long a service may take to finish its answers once the daemon is exiting.
pub const SERVICE_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Tells a service that the daemon is about to exit.
#[derive(Clone)]
pub struct Exiting(pub(crate) tokio::sync::watch::Receiver<bool>);

impl Exiting {
    /// Returns once the daemon is exiting.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|exiting| *exiting).await;
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
pub(crate) const EVENT_BACKLOG: usize = 4096;

/// A request could not be answered: the daemon has exited.
#[derive(Debug, thiserror::Error)]
#[error("taskmaster is no longer running")]
pub struct Gone;

/// Sends requests to a running [`Daemon`](crate::Daemon) from any thread.
#[derive(Clone)]
pub struct Handle {
    pub(crate) sender: mpsc::UnboundedSender<Message>,
    pub(crate) events: broadcast::Sender<DaemonEvent>,
}

pub(crate) struct Message {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

impl Handle {
    /// Sends a request and blocks until its reply (a start returns once the processes are
    /// RUNNING or have failed). Must not be called from the daemon's own thread.
    pub fn call(&self, request: Request) -> Result<Reply, Gone> {
        self.send(request)?.blocking_recv().map_err(|_| Gone)
    }

    /// Sends a request and waits for its reply without blocking the thread: for tasks running
    /// on the daemon's own loop, such as the API server.
    pub async fn request(&self, request: Request) -> Result<Reply, Gone> {
        self.send(request)?.await.map_err(|_| Gone)
    }

    /// Every state change and event-log line from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    fn send(&self, request: Request) -> Result<oneshot::Receiver<Reply>, Gone> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message { request, reply })
            .map_err(|_| Gone)?;
        Ok(answer)
    }
}
