//! A cluster singleton's guard (`taskmaster guard PGID KILL_AT`) on its own: it kills the
//! group at its deadline, takes later deadlines from its pipe, kills at once when the pipe
//! closes, and exits without killing when released.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use crate::support::*;

/// CLOCK_MONOTONIC now, in nanoseconds: the guard's clock.
fn monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec).expect("a positive clock") * 1_000_000_000
        + u64::try_from(now.tv_nsec).expect("a positive clock")
}

/// A process group of two sleepers, as a singleton's child and what it forked.
fn guarded_group() -> (Process, u32) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 1000 & exec sleep 1000"])
        .stdin(Stdio::null())
        .process_group(0);
    let group = Process::spawn(cmd);
    let pgid = group.pid();
    (group, pgid)
}

/// The guard over `pgid`, with `kill_at` and its pipe.
fn guard(pgid: u32, kill_at: u64) -> Process {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.args(["guard", &pgid.to_string(), &kill_at.to_string()])
        .stdin(Stdio::piped())
        .process_group(0);
    Process::spawn(cmd)
}

fn group_alive(pgid: u32) -> bool {
    let group = rustix::process::Pid::from_raw(pgid as i32).expect("a pid");
    rustix::process::test_kill_process_group(group).is_ok()
}

#[test]
fn the_guard_kills_the_whole_group_at_its_deadline() {
    let (mut group, pgid) = guarded_group();
    let mut guard = guard(pgid, monotonic_nanos() + 300_000_000);
    let status = group.wait_exit(TIMEOUT);
    assert_eq!(status.signal(), Some(9), "{status:?}");
    wait_until("the group to be gone", TIMEOUT, || {
        (!group_alive(pgid)).then_some(())
    });
    assert_eq!(guard.wait_exit(TIMEOUT).code(), Some(1));
}

#[test]
fn a_later_deadline_then_a_release_leaves_the_group_alone() {
    let (mut group, pgid) = guarded_group();
    // A deadline already past when the guard reads its pipe would kill: the first one is
    // far enough ahead for the push below, which moves it out of reach.
    let mut guard = guard(pgid, monotonic_nanos() + 5_000_000_000);
    let mut pipe = guard_stdin(&mut guard);
    pipe.write_all(&(monotonic_nanos() + 3_600_000_000_000).to_le_bytes())
        .expect("push a deadline");
    pipe.write_all(&0u64.to_le_bytes()).expect("release");
    assert_eq!(guard.wait_exit(TIMEOUT).code(), Some(0));
    assert!(
        group.try_status().is_none(),
        "the released guard killed the group"
    );
    assert!(group_alive(pgid));
}

#[test]
fn the_guard_kills_at_once_when_its_taskmaster_is_gone() {
    let (mut group, pgid) = guarded_group();
    let mut guard = guard(pgid, monotonic_nanos() + 3_600_000_000_000);
    drop(guard_stdin(&mut guard));
    let status = group.wait_exit(TIMEOUT);
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(guard.wait_exit(TIMEOUT).code(), Some(1));
}

/// The guard's pipe, taken from its process.
fn guard_stdin(guard: &mut Process) -> std::process::ChildStdin {
    guard.take_stdin().expect("the guard's stdin is a pipe")
}
