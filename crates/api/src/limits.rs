//! What one client, and all of them together, may take of the control service, the same on
//! the unix socket and on TCP: a client cannot hold the daemon or starve other clients.
//!
//! - **Connections**: at most [`MAX_CONNECTIONS`] per listener at once. One more is answered
//!   `503 Service Unavailable` at once, with the reason, and closed: the clients already in
//!   are served as before.
//! - **Headers**: a request's head must arrive whole within [`HEADER_READ_TIMEOUT`] (a client
//!   that sends a byte a second, slowloris, is closed then), and be at most
//!   [`MAX_HEADER_BYTES`] with [`MAX_HEADERS`] headers (more is `431`).
//! - **Bodies**: at most [`crate::server::MAX_BODY`] (more is `413`).
//! - **Accepting** never spins: when the system refuses a connection (out of descriptors), the
//!   listener waits [`ACCEPT_RETRY`] before it accepts again.
//!
//! An answer that streams (`/v1/events`, a followed log) is not bounded in time: only the
//! request's head is.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections served at once by one listener.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head, in bytes, and the most headers it may have.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

/// How long a listener waits after the system refused it a connection.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// An HTTP/1 connection builder with the limits on the request's head.
pub(crate) fn http() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .max_headers(MAX_HEADERS);
    builder
}

/// The connections of one listener.
#[derive(Clone)]
pub(crate) struct Connections(Arc<Semaphore>);

impl Connections {
    pub fn new() -> Connections {
        Connections(Arc::new(Semaphore::new(MAX_CONNECTIONS)))
    }

    /// A place for one more connection, held until the connection ends; `None` when every
    /// place is taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }
}

/// Answers a connection over the limit with `503` and the reason, and closes it, without
/// reading what it sends (it may send nothing). Runs on its own task.
pub(crate) fn shed<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let body = format!(
            "{{\"error\":\"too many connections: taskmaster serves {MAX_CONNECTIONS} at once on \
             this listener; try again\"}}\n"
        );
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
            body.len()
        );
        let mut io = stream;
        let written = tokio::time::timeout(HEADER_READ_TIMEOUT, async {
            let _ = io.write_all(answer.as_bytes()).await;
            let _ = io.shutdown().await;
        });
        let _ = written.await;
    });
}
