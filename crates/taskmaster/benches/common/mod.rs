//! What the benchmarks share: the workspace's executables, signalling, finding and stopping
//! the processes they start, and percentiles.
#![allow(dead_code)] // each benchmark uses a part

use std::fs;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// The workspace's executable `name` (`taskmaster`, `tm-fixture`), built beside this bench.
pub fn binary(name: &str) -> std::path::PathBuf {
    let mut path = std::env::current_exe().unwrap_or_default();
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    path.join(name)
}

/// Sends `signal` to `pid`.
pub fn send(pid: u32, signal: Signal) -> Result<(), String> {
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("not a pid: {pid}"))?;
    kill_process(target, signal).map_err(|e| format!("cannot signal pid {pid}: {e}"))
}

/// The pids whose parent is `pid`, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&candidate| {
            fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Sends SIGTERM to a daemon (`name` in messages) and waits for it. Past `deadline` it is
/// stopped (SIGSTOP, so that it can neither reap nor spawn), its children are killed by pid (a
/// stopped parent reaps none, so none of those pids can be reused meanwhile), and it is killed
/// and reaped.
pub fn stop(
    child: &mut Child,
    name: &str,
    deadline: Duration,
    poll: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let pid = child.id();
    let failure = match send(pid, Signal::TERM) {
        Err(e) => e,
        Ok(()) => loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
                Ok(Some(status)) => return Err(format!("exited with {status} after SIGTERM")),
                Ok(None) if started.elapsed() < deadline => sleep(poll),
                Ok(None) => break format!("still running {deadline:?} after SIGTERM"),
                Err(e) => break format!("cannot wait for {name}: {e}"),
            }
        },
    };
    let _ = send(pid, Signal::STOP);
    let children = children_of(pid);
    for &grandchild in &children {
        let _ = send(grandchild, Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "{failure}: killed it and its {} child(ren)",
        children.len()
    ))
}

/// The `p` percentile (0 to 1) of sorted figures: the smallest that at least `p` of them do not
/// exceed.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
