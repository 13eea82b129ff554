//! worker_pool: a program that sizes a pool of workers through taskmaster's API.
//!
//! The configuration has a program `workers` (4 processes, `autostart: false`, each a plain
//! `sleep`) and this program, `pool`. The pool reads how many workers are wanted from the file
//! its argument names (a number; no file means 0), and starts or stops `workers:workers_NN` to
//! match: it starts the lowest numbers first and stops the highest first. It looks again every
//! second, and at once when a worker changes state: it follows taskmaster's events, and when a
//! worker dies, says so and starts another in its place. Every action goes to stdout.
//!
//! Run it from the repository's root (the configuration runs the example cargo builds in
//! `target/debug/examples/`):
//!
//! ```sh
//! cargo build -p taskmaster-child --examples
//! cargo run -p taskmaster -- run -c crates/child/examples/worker_pool.yaml
//! ```
//!
//! Then, from another terminal:
//!
//! ```sh
//! echo 3 > crates/child/examples/wanted_workers    # three workers start
//! echo 1 > crates/child/examples/wanted_workers    # two of them stop
//! cat crates/child/examples/pool.out               # what the pool did
//! ```

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use taskmaster_child::{Control, ControlError, Event, ProcessInfo, State};

/// The program whose processes the pool sizes.
const WORKERS: &str = "workers";

/// How often the wanted count is read again when nothing happens.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("worker_pool: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let wanted_file: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: worker_pool WANTED_FILE")?
        .into();
    let control = Control::from_env()?;
    let events = follow(&control)?;
    taskmaster_child::ready()?;
    println!(
        "pool up: the number of workers wanted is in {}",
        wanted_file.display()
    );

    let mut wanted = Wanted::new(wanted_file);
    loop {
        let count = wanted.read();
        if let Err(error) = resize(&control, count) {
            match error {
                // Some worker would not start or stop: say so, and try again next time.
                ControlError::Failed(_) => println!("{error}"),
                other => return Err(other.into()),
            }
        }
        let deadline = Instant::now() + LOOK_AGAIN;
        if !wait_for_worker_change(&events, deadline)? {
            println!("taskmaster closed its event stream: it is exiting");
            return Ok(());
        }
    }
}

/// taskmaster's events, read on a thread of their own.
fn follow(control: &Control) -> Result<Receiver<Result<Event, ControlError>>, ControlError> {
    let events = control.events()?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for event in events {
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}

/// Waits until `deadline`, or until a worker changes state (saying so when one died); `false`
/// when the event stream has ended.
fn wait_for_worker_change(
    events: &Receiver<Result<Event, ControlError>>,
    deadline: Instant,
) -> Result<bool, ControlError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match events.recv_timeout(left) {
            Ok(event) => event?,
            Err(RecvTimeoutError::Timeout) => return Ok(true),
            Err(RecvTimeoutError::Disconnected) => return Ok(false),
        };
        match event {
            Event::StateChanged {
                process, from, to, ..
            } if is_worker(&process) => {
                if from == State::Running && matches!(to, State::Exited | State::Backoff) {
                    println!("{process} died ({from} -> {to}); starting another");
                }
                return Ok(true);
            }
            Event::Lagged { missed } => {
                println!("missed {missed} events; looking again");
                return Ok(true);
            }
            // Log lines, other programs: nothing for the pool. (Reacting to every log line
            // would be a loop: the pool's own requests make some.)
            _ => {}
        }
    }
}

fn is_worker(process: &str) -> bool {
    process
        .strip_prefix(WORKERS)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// Starts or stops workers until `wanted` of them are up.
fn resize(control: &Control, wanted: usize) -> Result<(), ControlError> {
    let mut workers = control.status_of([format!("{WORKERS}:*")])?;
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    let (up, down): (Vec<&ProcessInfo>, Vec<&ProcessInfo>) =
        workers.iter().partition(|worker| is_up(worker.state));
    if up.len() < wanted {
        let startable = down.iter().filter(|worker| worker.state.is_stopped());
        let names: Vec<&str> = startable
            .take(wanted - up.len())
            .map(|worker| worker.name.as_str())
            .collect();
        if names.is_empty() {
            return Ok(()); // every worker is up or on its way down
        }
        println!(
            "{} up, {wanted} wanted: starting {}",
            up.len(),
            names.join(", ")
        );
        for outcome in control.start(names)? {
            println!("{outcome}");
        }
    } else if up.len() > wanted {
        let names: Vec<&str> = up[wanted..].iter().map(|w| w.name.as_str()).collect();
        println!(
            "{} up, {wanted} wanted: stopping {}",
            up.len(),
            names.join(", ")
        );
        for outcome in control.stop(names)? {
            println!("{outcome}");
        }
    }
    Ok(())
}

/// Whether a worker in `state` counts as one of the pool: running, or on its way there.
fn is_up(state: State) -> bool {
    matches!(state, State::Starting | State::Running | State::Backoff)
}

/// The wanted count, read from a file that may change at any time.
struct Wanted {
    file: PathBuf,
    /// The last count read, kept when the file holds something else than a number.
    count: usize,
    /// What the file held when last read, so that a change is reported once.
    text: Option<String>,
}

impl Wanted {
    fn new(file: PathBuf) -> Wanted {
        Wanted {
            file,
            count: 0,
            text: None,
        }
    }

    /// The count the file says now (no file: 0).
    fn read(&mut self) -> usize {
        let text = read_or_empty(&self.file);
        if self.text.as_deref() == Some(text.as_str()) {
            return self.count;
        }
        let count = match text.trim() {
            "" => Some(0),
            number => number.parse().ok(),
        };
        match count {
            Some(count) if count != self.count || self.text.is_none() => {
                println!("workers wanted: {count}");
                self.count = count;
            }
            Some(_) => {}
            None => println!(
                "{}: {:?} is not a number of workers; still {}",
                self.file.display(),
                text.trim(),
                self.count
            ),
        }
        self.text = Some(text);
        self.count
    }
}

fn read_or_empty(file: &Path) -> String {
    fs::read_to_string(file).unwrap_or_default()
}
