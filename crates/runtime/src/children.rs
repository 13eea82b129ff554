//! One record per live child: what taskmaster holds of it, added in one place and let go in
//! one place.
//!
//! A child is a program's process (spawned here, or adopted from a dead primary) or a helper
//! (a hook or a command health check). Each has the captures that drain its output pipes, and
//! may have the write end of its stdin pipe; a program's child is marked as one (notifications
//! are attributed to it, it is handed to a backup), and an adopted one also has the pidfd it is
//! signalled and watched through. When a child
//! is reaped (or an adopted one is learned to have exited), [`Children::remove`] moves what is
//! left in its pipes to its files first, so its last lines are on disk before anyone hears
//! that it exited, then closes everything it held.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use taskmaster_config::Stream;
use taskmaster_core::Signal;

use crate::{capture, stdin, sys};

/// What taskmaster holds of one live child.
#[derive(Default)]
pub(crate) struct Child {
    /// A program's child (not a helper: helpers are not signalled one by one, and never
    /// handed over).
    pub program: bool,
    /// An adopted child's pidfd (it is not ours to waitpid, and its pid could be reused
    /// unseen). Our own children hold none: until reaped, a pid stays theirs, so signals go
    /// by pid, and a pidfd for the backup is opened when it is sent. No descriptor per child
    /// means a spawn's fd table, which each child copies and closes at exec, does not grow
    /// with the number of children.
    pub pidfd: Option<std::sync::Arc<OwnedFd>>,
    pub captures: Vec<capture::Capture>,
    pub stdin: Option<stdin::StdinPipe>,
    /// Its program's listening socket (FastCGI): held, never read, while the child lives;
    /// dropping the last reference closes it.
    #[allow(dead_code, reason = "held for its drop")]
    pub fcgi_socket: Option<std::sync::Arc<crate::fcgi::ListeningSocket>>,
}

/// Every live child, by pid.
#[derive(Default)]
pub(crate) struct Children(HashMap<u32, Child>);

impl Children {
    pub fn insert(&mut self, pid: u32, child: Child) {
        self.0.insert(pid, child);
    }

    /// Whether `pid` is a live child of a program (not a helper).
    pub fn is_program_child(&self, pid: u32) -> bool {
        self.0.get(&pid).is_some_and(|child| child.program)
    }

    /// The pids of the programs' live children.
    pub fn program_pids(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter(|(_, child)| child.program)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Keeps `pipe` as the stdin pipe of child `pid` (an adopted child's, once the loop runs).
    pub fn set_stdin(&mut self, pid: u32, pipe: stdin::StdinPipe) {
        if let Some(child) = self.0.get_mut(&pid) {
            child.stdin = Some(pipe);
        }
    }

    /// The child's stdin pipe, if taskmaster keeps one.
    pub fn stdin(&self, pid: u32) -> Option<&stdin::StdinPipe> {
        self.0.get(&pid)?.stdin.as_ref()
    }

    /// What a backup needs to hold the child: its pidfd (opened now for a child of ours: it is
    /// not reaped while it has a record here, so the pid is still its own), its output pipes'
    /// read ends with their streams, its stdin pipe's write end.
    pub fn descriptors(&self, pid: u32) -> Option<Descriptors<'_>> {
        let child = self.0.get(&pid).filter(|child| child.program)?;
        let pidfd = match &child.pidfd {
            Some(pidfd) => pidfd.try_clone().ok()?,
            None => open_pidfd(pid)?,
        };
        Some(Descriptors {
            pidfd,
            outputs: child
                .captures
                .iter()
                .map(|capture| (capture.stream(), capture.pipe()))
                .collect(),
            stdin: child.stdin.as_ref().map(stdin::StdinPipe::fd),
        })
    }

    /// Sends `signal` to the child alone: through its pidfd, which cannot reach a process
    /// that reused the pid, and by pid for a child without one.
    pub fn signal(&self, pid: u32, signal: Signal) -> std::io::Result<()> {
        match self.0.get(&pid).and_then(|child| child.pidfd.as_ref()) {
            Some(pidfd) => sys::pidfd_send_signal(pidfd.as_fd(), signal),
            None => sys::kill(pid, signal),
        }
    }

    /// Moves what child `pid`'s pipes hold now to where it goes.
    pub fn flush(&self, pid: u32) {
        if let Some(child) = self.0.get(&pid) {
            for capture in &child.captures {
                capture.flush();
            }
        }
    }

    /// What listeners are to hear of child `pid`'s streams since the last time, in order per
    /// stream.
    pub fn take_heard(&self, pid: u32) -> Vec<(Stream, capture::Heard)> {
        let Some(child) = self.0.get(&pid) else {
            return Vec::new();
        };
        child
            .captures
            .iter()
            .flat_map(|capture| {
                let stream = capture.stream();
                capture
                    .take_heard()
                    .into_iter()
                    .map(move |heard| (stream, heard))
            })
            .collect()
    }

    /// The child `pid` is gone: its last output goes to its files, then everything taskmaster
    /// held of it is closed. Whether it was a child at all.
    pub fn remove(&mut self, pid: u32) -> bool {
        let Some(child) = self.0.remove(&pid) else {
            return false;
        };
        for capture in &child.captures {
            capture.flush();
        }
        true
    }
}

/// A child's descriptors, borrowed, for a backup.
pub(crate) struct Descriptors<'a> {
    pub pidfd: OwnedFd,
    pub outputs: Vec<(Stream, &'a OwnedFd)>,
    pub stdin: Option<&'a OwnedFd>,
}

/// A pidfd for our own child `pid` (not reaped yet, so the pid is still its own).
pub(crate) fn open_pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}
