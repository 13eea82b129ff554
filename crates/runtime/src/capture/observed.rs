//! A stream event listeners hear of (`stdout_events_enabled`, `stdout_capture_maxbytes`): its
//! bytes come through user space. Each chunk read goes to the file and, with events enabled,
//! is a `PROCESS_LOG_*` event; with capture mode, what a program writes between
//! `<!--XSUPERVISOR:BEGIN-->` and `<!--XSUPERVISOR:END-->` stays out of the file and is one
//! `PROCESS_COMMUNICATION_*` event, as supervisord's output dispatcher does.
//!
//! What is heard waits in an outbox that the loop empties ([`Observed::take_heard`]) when the
//! thread tells it there is news, and once more when the child exits, after reading what the
//! pipe still holds: so a program's last output is heard before its exit, in order.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::event::{PollFd, PollFlags};
use taskmaster_config::StreamEvents;

use super::{append, refused, Sink, PIPE_SIZE};

const BEGIN: &[u8] = b"<!--XSUPERVISOR:BEGIN-->";
const END: &[u8] = b"<!--XSUPERVISOR:END-->";

/// How much one read takes at most.
const READ_SIZE: usize = 64 * 1024;

/// What event listeners hear of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A chunk of output (`PROCESS_LOG_*`).
    Log(Vec<u8>),
    /// What was written between the tokens (`PROCESS_COMMUNICATION_*`).
    Communication(Vec<u8>),
}

/// A stream read for events, and what it has said that the loop has not taken yet.
pub(super) struct Observed {
    file: Option<Arc<Sink>>,
    events: StreamEvents,
    state: Mutex<State>,
    /// Tells the loop there is something to take.
    news: Box<dyn Fn() + Send + Sync>,
    /// Every byte read (for the metrics).
    counted: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    tokens: Tokens,
    heard: VecDeque<Heard>,
    ended: bool,
    file_failing: bool,
}

impl Observed {
    pub(super) fn new(
        pipe: &OwnedFd,
        file: Option<Arc<Sink>>,
        events: StreamEvents,
        news: Box<dyn Fn() + Send + Sync>,
        counted: Arc<AtomicU64>,
        report: &dyn Fn(String),
    ) -> Observed {
        // The thread and the loop's flush both read: neither may block in a read.
        if let Err(e) = rustix::io::ioctl_fionbio(pipe, true) {
            report(format!("cannot make the pipe non-blocking: {e}"));
        }
        Observed {
            counted,
            file,
            events,
            state: Mutex::new(State::default()),
            news,
        }
    }

    /// The capture thread: reads until the pipe ends.
    pub(super) fn run(&self, pipe: &OwnedFd, report: &dyn Fn(String)) {
        let mut buffer = vec![0u8; READ_SIZE];
        loop {
            if self.lock().ended {
                return;
            }
            let mut ready = [PollFd::new(pipe, PollFlags::IN)];
            match rustix::event::poll(&mut ready, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    report(format!("cannot wait for a child's output: {e}"));
                    self.lock().ended = true;
                    return;
                }
            }
            let mut state = self.lock();
            if self.step(pipe, &mut state, &mut buffer, report) > 0 && !state.heard.is_empty() {
                drop(state);
                (self.news)();
            }
        }
    }

    /// Reads what the pipe holds now (at most a pipe's worth), for the loop at the child's
    /// exit.
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
    }

    /// What was heard since the loop last took it, oldest first.
    pub(super) fn take_heard(&self) -> Vec<Heard> {
        self.lock().heard.drain(..).collect()
    }

    /// One read: its bytes to the file and the outbox. How many bytes were read.
    fn step(
        &self,
        pipe: &OwnedFd,
        state: &mut State,
        buffer: &mut [u8],
        report: &dyn Fn(String),
    ) -> usize {
        if state.ended {
            return 0;
        }
        match rustix::io::read(pipe, &mut *buffer) {
            Ok(0) => {
                state.ended = true;
                let mut pieces = Vec::new();
                state.tokens.finish(&mut pieces);
                self.take(state, pieces, report);
                0
            }
            Ok(read) => {
                self.counted.fetch_add(read as u64, Ordering::Relaxed);
                let mut pieces = Vec::new();
                state
                    .tokens
                    .push(&buffer[..read], self.events.capture_maxbytes, &mut pieces);
                self.take(state, pieces, report);
                read
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => 0,
            Err(e) => {
                report(format!("cannot read a child's output: {e}"));
                state.ended = true;
                0
            }
        }
    }

    /// Where each piece goes: the file and the log events, or the capture.
    fn take(&self, state: &mut State, pieces: Vec<Piece>, report: &dyn Fn(String)) {
        for piece in pieces {
            match piece {
                Piece::Normal(bytes) => {
                    self.write_file(state, &bytes, report);
                    if self.events.log {
                        state.heard.push_back(Heard::Log(bytes));
                    }
                }
                Piece::Captured(bytes) => {
                    if self.events.log {
                        state.heard.push_back(Heard::Log(bytes));
                    }
                }
                Piece::Communication(bytes) => state.heard.push_back(Heard::Communication(bytes)),
            }
        }
    }

    fn write_file(&self, state: &mut State, bytes: &[u8], report: &dyn Fn(String)) {
        let Some(sink) = &self.file else {
            return;
        };
        match append(sink, bytes) {
            (_, None) => state.file_failing = false,
            // Unlike a spliced stream, what the file refuses is not kept: the events have it.
            (_, Some(e)) => {
                if !state.file_failing {
                    report(refused(sink, &e));
                    state.file_failing = true;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A piece of output, as capture mode sorts it.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// Outside the tokens: the file's.
    Normal(Vec<u8>),
    /// Inside the tokens.
    Captured(Vec<u8>),
    /// The end token came: what was captured, its last `capture_maxbytes` bytes.
    Communication(Vec<u8>),
}

/// supervisord's capture mode: looks for the begin token, then the end token, in output that
/// comes in chunks (a token may be cut between two).
#[derive(Default)]
struct Tokens {
    capturing: bool,
    /// The end of the last chunk that may be the start of a token.
    held: Vec<u8>,
    captured: Vec<u8>,
}

impl Tokens {
    /// Sorts `bytes` into pieces; without capture mode (`maxbytes` 0) they are all normal.
    fn push(&mut self, bytes: &[u8], maxbytes: u64, out: &mut Vec<Piece>) {
        if maxbytes == 0 {
            out.push(Piece::Normal(bytes.to_vec()));
            return;
        }
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(bytes);
        loop {
            let token = if self.capturing { END } else { BEGIN };
            match find(&data, token) {
                Some(at) => {
                    self.emit(&data[..at], maxbytes, out);
                    data.drain(..at + token.len());
                    self.capturing = !self.capturing;
                    if !self.capturing {
                        out.push(Piece::Communication(std::mem::take(&mut self.captured)));
                    }
                }
                None => {
                    let keep = prefix_at_end(&data, token);
                    let cut = data.len() - keep;
                    self.emit(&data[..cut], maxbytes, out);
                    self.held = data[cut..].to_vec();
                    return;
                }
            }
        }
    }

    /// The pipe ended: what was held is output after all.
    fn finish(&mut self, out: &mut Vec<Piece>) {
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            out.push(match self.capturing {
                true => Piece::Captured(held),
                false => Piece::Normal(held),
            });
        }
    }

    fn emit(&mut self, bytes: &[u8], maxbytes: u64, out: &mut Vec<Piece>) {
        if bytes.is_empty() {
            return;
        }
        if self.capturing {
            self.captured.extend_from_slice(bytes);
            let limit = usize::try_from(maxbytes).unwrap_or(usize::MAX);
            if self.captured.len() > limit {
                let excess = self.captured.len() - limit;
                self.captured.drain(..excess);
            }
            out.push(Piece::Captured(bytes.to_vec()));
        } else {
            out.push(Piece::Normal(bytes.to_vec()));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `data` are the start of `token`.
fn prefix_at_end(data: &[u8], token: &[u8]) -> usize {
    (1..token.len().min(data.len() + 1))
        .rev()
        .find(|&n| data.ends_with(&token[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(chunks: &[&[u8]], maxbytes: u64) -> Vec<Piece> {
        let mut tokens = Tokens::default();
        let mut out = Vec::new();
        for chunk in chunks {
            tokens.push(chunk, maxbytes, &mut out);
        }
        tokens.finish(&mut out);
        out
    }

    #[test]
    fn what_is_between_the_tokens_is_one_communication_even_across_chunks() {
        let pieces = sorted(
            &[
                b"a <!--XSUPERVISOR:BE",
                b"GIN-->hello<!--XSUPERVISOR:END--> b",
            ],
            100,
        );
        assert_eq!(
            pieces,
            [
                Piece::Normal(b"a ".to_vec()),
                Piece::Captured(b"hello".to_vec()),
                Piece::Communication(b"hello".to_vec()),
                Piece::Normal(b" b".to_vec()),
            ]
        );
    }

    #[test]
    fn without_capture_mode_everything_is_normal_and_a_capture_keeps_its_last_bytes() {
        let tokens = b"<!--XSUPERVISOR:BEGIN-->x<!--XSUPERVISOR:END-->";
        assert_eq!(sorted(&[tokens], 0), [Piece::Normal(tokens.to_vec())]);
        let pieces = sorted(
            &[b"<!--XSUPERVISOR:BEGIN-->abcdef<!--XSUPERVISOR:END-->"],
            3,
        );
        assert_eq!(pieces.last(), Some(&Piece::Communication(b"def".to_vec())));
    }
}
