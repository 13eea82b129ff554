//! heartbeat_worker: a program with a watchdog, and a way to make it hang.
//!
//! It says it is ready (`READY=1`), starts a `Watchdog` that sends `WATCHDOG=1` every half of
//! its `watchdog:` interval, and does a unit of "work" a second, saying so with `STATUS=`. On
//! SIGUSR1 it hangs, as a program stuck on a lock would: it drops the `Watchdog` (no more
//! heartbeats) and blocks forever. taskmaster's watchdog then declares it hung and restarts it.
//!
//! Run it from the repository's root (the configuration runs the example cargo builds in
//! `target/debug/examples/`):
//!
//! ```sh
//! cargo build -p taskmaster-child --examples
//! cargo run -p taskmaster -- run -c crates/child/examples/heartbeat_worker.yaml
//! ```
//!
//! Then, from another terminal, make it hang, and watch it come back with a new pid:
//!
//! ```sh
//! cargo run -p taskmaster -- ctl -c crates/child/examples/heartbeat_worker.yaml signal USR1 heartbeat_worker
//! cargo run -p taskmaster -- ctl -c crates/child/examples/heartbeat_worker.yaml status
//! ```
//!
//! Run by hand, outside taskmaster, it works the same and notifies nobody.

use std::error::Error;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;
use taskmaster_child::Watchdog;

/// How long a unit of work takes.
const WORK: Duration = Duration::from_secs(1);

fn main() -> Result<(), Box<dyn Error>> {
    let hang_requests = on_sigusr1()?;
    println!("heartbeat_worker {} up", std::process::id());
    taskmaster_child::ready()?;
    let watchdog = Watchdog::start();
    match &watchdog {
        Some(watchdog) => println!("heartbeat every {:?}", watchdog.interval() / 2),
        None => println!("no watchdog asked for: no heartbeats"),
    }

    let mut units_done: u64 = 0;
    loop {
        match hang_requests.recv_timeout(WORK) {
            Err(RecvTimeoutError::Timeout) => {
                units_done += 1;
                println!("work unit {units_done} done");
                taskmaster_child::status(&format!("{units_done} units of work done"))?;
            }
            Ok(()) => break,
            Err(RecvTimeoutError::Disconnected) => return Err("the signal thread ended".into()),
        }
    }

    println!("SIGUSR1: hanging, no more heartbeats");
    taskmaster_child::status("hung on purpose (SIGUSR1)")?;
    drop(watchdog);
    // Blocked for good, as on a lock that is never released; SIGTERM still ends the process.
    loop {
        std::thread::park();
    }
}

/// A message for each SIGUSR1 received.
fn on_sigusr1() -> std::io::Result<Receiver<()>> {
    let mut signals = Signals::new([SIGUSR1])?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if sender.send(()).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}
