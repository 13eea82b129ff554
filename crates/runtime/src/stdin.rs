//! The stdin pipes of children with `stdin: pipe`: what `sendstdin` and the keystrokes of
//! `attach` are written to.
//!
//! A child reads its stdin when it pleases, so the loop never writes to the pipe itself: a
//! request queues its data and is answered at once, and a task per pipe writes the queue out
//! as the child reads. The queue is bounded: past [`MAX_QUEUED`] bytes not yet read, input is
//! refused with an error that says so, rather than heaped up without end.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// How much input may wait for a child to read it.
pub const MAX_QUEUED: usize = 1 << 20;

/// The write end of one child's stdin pipe, and the task that writes to it.
pub struct StdinPipe {
    queue: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    /// Set once a write failed: the child closed its end (or exited).
    closed: Arc<AtomicBool>,
    /// A second descriptor of the write end, for a hot backup to hold (`run --pair`).
    handover_fd: OwnedFd,
    writer: tokio::task::JoinHandle<()>,
}

impl StdinPipe {
    /// Takes over `fd`, the write end of a child's stdin pipe. Must be called on the loop.
    pub fn start(fd: OwnedFd) -> std::io::Result<StdinPipe> {
        let handover_fd = fd.try_clone()?;
        // Makes the descriptor non-blocking, so a child that does not read holds up only
        // this task.
        let mut pipe = tokio::net::unix::pipe::Sender::from_owned_fd(fd)?;
        let (queue, mut chunks) = mpsc::unbounded_channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn({
            let queued = Arc::clone(&queued);
            let closed = Arc::clone(&closed);
            async move {
                while let Some(chunk) = chunks.recv().await {
                    let written = pipe.write_all(&chunk).await;
                    queued.fetch_sub(chunk.len(), Ordering::Relaxed);
                    if written.is_err() {
                        closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        Ok(StdinPipe {
            queue,
            queued,
            closed,
            handover_fd,
            writer,
        })
    }

    /// Queues `data` for the child; the error says why it cannot take it.
    pub fn send(&self, data: Vec<u8>) -> Result<(), String> {
        if self.closed.load(Ordering::Relaxed) {
            return Err("the process closed its stdin".to_string());
        }
        let waiting = self.queued.load(Ordering::Relaxed);
        if waiting + data.len() > MAX_QUEUED {
            return Err(format!(
                "its stdin is full: {waiting} bytes sent earlier are not read yet"
            ));
        }
        self.queued.fetch_add(data.len(), Ordering::Relaxed);
        let len = data.len();
        self.queue.send(data).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            "the process closed its stdin".to_string()
        })
    }

    /// The write end, for the backup of a process pair.
    pub fn fd(&self) -> &OwnedFd {
        &self.handover_fd
    }
}

impl Drop for StdinPipe {
    /// The child has exited: input still queued has no reader.
    fn drop(&mut self) {
        self.writer.abort();
    }
}
