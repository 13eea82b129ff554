//! The capture of a stream sent to syslog (`stdout: syslog`, `stdout_syslog: true`): its
//! bytes come through user space, to be cut into lines. The thread reads the pipe, appends what
//! it read to the file if there is one (the same sink and rotation as a spliced stream), and
//! hands each line to the [`syslog`] link. What is read waits in an outbox until the thread
//! sends it, never under a lock the loop takes: a slow syslog slows only this thread (and, once
//! the pipe is full, the child), never the loop.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::event::{PollFd, PollFlags};

use super::{append, refused, Sink, PIPE_SIZE, RETRY_AFTER};
use crate::syslog;

/// A stream sent to syslog: what its pipe gave that is not delivered yet.
pub(super) struct Relay {
    file: Option<Arc<Sink>>,
    link: Arc<syslog::Link>,
    format: syslog::Format,
    /// Taken by whoever reads the pipe (the thread, or the loop's flush), never while sending.
    state: Mutex<RelayState>,
    /// Every byte read (for the metrics).
    counted: Arc<AtomicU64>,
    /// An eventfd the loop's flush writes to, so that the thread sends what flush read; `None`
    /// if the system had none to give (flushed lines then wait for the pipe's next news).
    wake: Option<OwnedFd>,
}

#[derive(Default)]
struct RelayState {
    lines: syslog::Lines,
    /// Datagrams read and not yet sent, oldest first.
    outbox: VecDeque<Vec<u8>>,
    /// Bytes read that the file has refused so far (disk full): written before any more is
    /// read, so that the writer waits on its full pipe and nothing is lost.
    unwritten: Vec<u8>,
    /// The file's refusal was reported (once until it takes bytes again).
    file_failing: bool,
    /// The pipe has ended (every writer is gone), or cannot be read.
    ended: bool,
}

/// How much one read of a relayed pipe takes at most.
const READ_SIZE: usize = 64 * 1024;

impl Relay {
    /// The relay of `pipe` to `link` (and `file`); `report` hears what made it less than
    /// whole: a pipe that could not be made non-blocking, or no eventfd to wake the thread.
    pub(super) fn new(
        pipe: &OwnedFd,
        file: Option<Arc<Sink>>,
        link: Arc<syslog::Link>,
        format: syslog::Format,
        counted: Arc<AtomicU64>,
        report: &dyn Fn(String),
    ) -> Relay {
        // The thread and the loop's flush both read: neither may block in a read.
        let non_blocking = rustix::io::ioctl_fionbio(pipe, true);
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        );
        let error = match (&non_blocking, &wake) {
            (Err(e), _) => Some(format!("cannot make the pipe non-blocking: {e}")),
            (_, Err(e)) => Some(format!(
                "no eventfd ({e}): flushed lines wait for more output"
            )),
            _ => None,
        };
        if let Some(why) = error {
            report(format!("output to syslog: {why}"));
        }
        Relay {
            counted,
            file,
            link,
            format,
            state: Mutex::new(RelayState::default()),
            wake: wake.ok(),
        }
    }

    /// The capture thread of a stream sent to syslog: reads the pipe as it fills, and sends
    /// what was read, until the pipe has ended and everything read is sent.
    pub(super) fn run(&self, pipe: &OwnedFd, report: &dyn Fn(String)) {
        let mut buffer = vec![0u8; READ_SIZE];
        loop {
            self.send_outbox(report);
            let state = self.lock();
            if state.ended {
                if state.outbox.is_empty() {
                    return;
                }
                continue; // flush read more meanwhile
            }
            let file_refuses = !state.unwritten.is_empty();
            drop(state);
            if file_refuses {
                // The child waits on its full pipe meanwhile; nothing is lost.
                std::thread::sleep(RETRY_AFTER);
            } else if let Err(e) = self.wait(pipe) {
                report(format!("cannot wait for a child's output: {e}"));
                let mut state = self.lock();
                self.end(&mut state);
                continue;
            }
            let mut state = self.lock();
            self.step(pipe, &mut state, &mut buffer, report);
        }
    }

    /// [`Capture::flush`]: reads what the pipe holds now, at most a pipe's worth, and wakes the
    /// thread to send it.
    pub(super) fn flush(&self, pipe: &OwnedFd, report: &dyn Fn(String)) {
        let mut buffer = vec![0u8; READ_SIZE];
        let mut state = self.lock();
        let mut moved = 0;
        while moved < PIPE_SIZE {
            match self.step(pipe, &mut state, &mut buffer, report) {
                0 => break,
                read => moved += read,
            }
        }
        let news = state.ended || !state.outbox.is_empty();
        drop(state);
        if let (true, Some(wake)) = (news, &self.wake) {
            let _ = rustix::io::write(wake, &1u64.to_ne_bytes());
        }
    }

    /// Waits until the pipe has something (or has ended), or flush wakes the thread.
    fn wait(&self, pipe: &OwnedFd) -> rustix::io::Result<()> {
        let mut fds = vec![PollFd::new(pipe, PollFlags::IN)];
        if let Some(wake) = &self.wake {
            fds.push(PollFd::new(wake, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
        if let Some(wake) = &self.wake {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(wake, &mut counter);
        }
        Ok(())
    }

    /// One step, under the state's lock: the file takes what it refused before, else one read
    /// from the pipe goes to the file and, as lines, to the outbox. How many bytes were read.
    fn step(
        &self,
        pipe: &OwnedFd,
        state: &mut RelayState,
        buffer: &mut [u8],
        report: &dyn Fn(String),
    ) -> usize {
        if state.ended {
            return 0;
        }
        if !state.unwritten.is_empty() {
            let unwritten = std::mem::take(&mut state.unwritten);
            self.write_file(state, &unwritten, report);
            if !state.unwritten.is_empty() {
                return 0;
            }
        }
        match rustix::io::read(pipe, &mut *buffer) {
            Ok(0) => {
                self.end(state); // every writer is gone
                0
            }
            Ok(read) => {
                self.counted.fetch_add(read as u64, Ordering::Relaxed);
                let bytes = &buffer[..read];
                self.write_file(state, bytes, report);
                self.queue_lines(state, bytes);
                read
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => 0,
            Err(e) => {
                report(format!("cannot read a child's output: {e}"));
                self.end(state);
                0
            }
        }
    }

    /// Appends `bytes` to the file, if there is one; what it refuses is kept for later.
    fn write_file(&self, state: &mut RelayState, bytes: &[u8], report: &dyn Fn(String)) {
        let Some(sink) = &self.file else {
            return;
        };
        match append(sink, bytes) {
            (_, None) => {
                if state.file_failing {
                    report(format!("output goes to {} again", sink.path.display()));
                    state.file_failing = false;
                }
            }
            (written, Some(e)) => {
                state.unwritten = bytes[written..].to_vec();
                if !state.file_failing {
                    report(refused(sink, &e));
                    state.file_failing = true;
                }
            }
        }
    }

    /// Cuts `bytes` into lines, each queued as a datagram stamped now.
    fn queue_lines(&self, state: &mut RelayState, bytes: &[u8]) {
        let stamp = syslog::timestamp();
        let RelayState { lines, outbox, .. } = state;
        lines.push(bytes, &mut |line| {
            outbox.push_back(self.format.datagram(&stamp, line));
        });
    }

    /// The pipe is over: what is left of the last line is queued as a line of its own.
    fn end(&self, state: &mut RelayState) {
        let stamp = syslog::timestamp();
        let RelayState {
            lines,
            outbox,
            ended,
            ..
        } = state;
        lines.finish(&mut |line| outbox.push_back(self.format.datagram(&stamp, line)));
        *ended = true;
    }

    /// Sends the outbox, oldest first, without holding the state: meanwhile the loop's flush
    /// may read.
    fn send_outbox(&self, report: &dyn Fn(String)) {
        loop {
            let Some(datagram) = self.lock().outbox.pop_front() else {
                return;
            };
            self.link.send(&datagram, report);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RelayState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
