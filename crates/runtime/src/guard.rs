//! A cluster singleton's guard: a small process of its own (`taskmaster guard`) that SIGKILLs
//! the singleton's process group at the lease's kill deadline unless taskmaster has pushed the
//! deadline further since, in the spirit of s6-supervise.
//!
//! Why a process: the deadline must hold when taskmaster cannot act. A taskmaster paused
//! (SIGSTOP, a frozen cgroup, a VM stall) renews nothing and kills nothing, and the
//! parent-death signal does not fire; the guard, which shares nothing with it but a pipe,
//! still wakes at the deadline. A taskmaster that dies closes the pipe: the guard kills at
//! once, since nobody can renew the lease any more.
//!
//! The pipe carries 8-byte records, each a CLOCK_MONOTONIC reading in nanoseconds (the clock
//! every process on the host shares, the supervisor's): a new kill deadline, or 0 for "the
//! group is gone or stopped cleanly: exit without killing". Records are smaller than
//! PIPE_BUF, so each write is whole.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{kill_process_group, Pid, Signal};
use taskmaster_core::Time;

use crate::clock;

/// The parent's side: the guard of one singleton child.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The guard's stdin; closing it without a release record makes the guard kill.
    deadlines: std::process::ChildStdin,
}

impl Guard {
    /// Starts a guard over process group `pgid`, to kill it at `kill_at`.
    pub(crate) fn start(exe: &Path, pgid: u32, kill_at: Time) -> std::io::Result<Guard> {
        let mut child = Command::new(exe)
            .arg("guard")
            .arg(pgid.to_string())
            .arg(kill_at.as_nanos().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Its one line, if it kills, goes where taskmaster's own stderr goes.
            .stderr(Stdio::inherit())
            // Out of the terminal's signals and of the group it guards.
            .process_group(0)
            .spawn()?;
        let deadlines = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the guard's stdin pipe was not made"))?;
        // A guard that reads nothing (stopped itself) must not block the loop: a full pipe
        // is an error to report, not a wait.
        rustix::io::ioctl_fionbio(&deadlines, true)?;
        // The loop's reaper collects it (`waitpid(-1)`), as every orphan of the subreaper.
        Ok(Guard { deadlines })
    }

    /// Moves the kill deadline to `kill_at`.
    pub(crate) fn push(&mut self, kill_at: Time) -> std::io::Result<()> {
        self.deadlines.write_all(&kill_at.as_nanos().to_le_bytes())
    }

    /// The group is gone or was stopped cleanly: the guard exits without killing.
    pub(crate) fn release(mut self) {
        // A guard already gone needs no word.
        let _ = self.deadlines.write_all(&0u64.to_le_bytes());
    }
}

/// The guard's own side (`taskmaster guard PGID KILL_AT`): waits for the deadline, taking in
/// the new ones, then kills; returns the exit status.
pub fn run_guard(pgid: u32, kill_at: u64) -> u8 {
    let Some(group) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        eprintln!("taskmaster guard: {pgid} is not a process group");
        return 2;
    };
    let mut deadline = kill_at;
    let stdin = std::io::stdin();
    let mut pending: Vec<u8> = Vec::with_capacity(64);
    let why = loop {
        let now = clock::now().as_nanos();
        if now >= deadline {
            break "its lease's kill deadline passed";
        }
        // Whole milliseconds, rounded up: never wake before the deadline.
        let wait_ms = (deadline - now).div_ceil(1_000_000);
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(wait_ms / 1000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from(wait_ms % 1000 * 1_000_000).unwrap_or(0),
        };
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break "it could not wait for its deadline",
        }
        // Unbuffered: what a buffer kept back, poll would not see.
        let mut buffer = [0u8; 256];
        match rustix::io::read(stdin.as_fd(), &mut buffer) {
            Ok(0) => break "taskmaster is gone",
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(_) => break "taskmaster is gone",
        }
        while pending.len() >= 8 {
            let record: [u8; 8] = match pending[..8].try_into() {
                Ok(record) => record,
                Err(_) => break,
            };
            pending.drain(..8);
            match u64::from_le_bytes(record) {
                0 => return 0,
                next => deadline = next,
            }
        }
    };
    match kill_process_group(group, Signal::KILL) {
        Ok(()) => eprintln!("taskmaster guard: {why}: SIGKILL to process group {pgid}"),
        Err(rustix::io::Errno::SRCH) => {}
        Err(e) => eprintln!("taskmaster guard: {why}: cannot kill process group {pgid}: {e}"),
    }
    1
}
