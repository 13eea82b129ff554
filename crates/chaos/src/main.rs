//! `chaos`: the chaos run against the real taskmaster (see the library's documentation).
//!
//! ```sh
//! cargo run --release -p taskmaster-chaos -- --seconds 120 --seed 42
//! ```
//!
//! Exit status: 0 when the run passed, 1 when it found something wrong, 2 when it could not
//! be run. `chaos heartbeat` is the watchdog program the run supervises.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use taskmaster_chaos::daemon::Binaries;
use taskmaster_chaos::{run, Options};

#[derive(Parser)]
#[command(
    name = "chaos",
    about = "Random signals, control requests and reloads against the real taskmaster, then \
             what it says held against /proc"
)]
struct Args {
    /// How long the chaos lasts, in seconds
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// The seed of every random choice [default: from the clock; printed]
    #[arg(long)]
    seed: Option<u64>,
    /// How many clients send requests at once
    #[arg(long, default_value_t = 6)]
    clients: u32,
    /// Signals sent to children and grandchildren per second
    #[arg(long, default_value_t = 60)]
    signals_per_second: u32,
    /// A request not answered within this many seconds counts as never answered
    #[arg(long, default_value_t = 60)]
    request_timeout: u64,
    /// The taskmaster binary [default: built by cargo beside this one]
    #[arg(long, requires = "fixture")]
    taskmaster: Option<PathBuf>,
    /// The tm-fixture binary, with --taskmaster
    #[arg(long, requires = "taskmaster")]
    fixture: Option<PathBuf>,
    /// Keep the run's folder (configuration, logs) even when it passes
    #[arg(long)]
    keep: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// (A program the run supervises.) Says READY=1, then sends watchdog heartbeats forever
    #[command(hide = true)]
    Heartbeat {
        /// Ignored: a reload changes them to change the command
        #[arg(trailing_var_arg = true)]
        rest: Vec<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Mode::Heartbeat { .. }) = args.mode {
        return heartbeat();
    }
    let worker = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(&format!("cannot find this program's file: {e}")),
    };
    let binaries = match (args.taskmaster, args.fixture) {
        (Some(taskmaster), Some(fixture)) => Binaries {
            taskmaster,
            fixture,
            worker,
        },
        _ => {
            let Some(profile_dir) = worker.parent() else {
                return fail("this program is in no folder");
            };
            match Binaries::built_by_cargo(profile_dir, &worker) {
                Ok(binaries) => binaries,
                Err(e) => return fail(&e),
            }
        }
    };
    let seed = args.seed.unwrap_or_else(clock_seed);
    println!(
        "chaos: seed {seed}, {} s, taskmaster {}",
        args.seconds,
        binaries.taskmaster.display()
    );
    let mut options = Options::new(binaries, args.seconds, seed);
    options.clients = args.clients;
    options.signal_rate = args.signals_per_second;
    options.request_timeout = Duration::from_secs(args.request_timeout);
    options.keep = args.keep;
    match run(&options) {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("chaos: {message}");
    ExitCode::from(2)
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// The watchdog program: READY=1, then a heartbeat every half of `WATCHDOG_USEC`; after 1 to
/// 5 s (by its pid) it hangs as a deadlocked program would, its heartbeats stopped, unless the
/// run is settling (the calm flag exists in its working directory). Runs until killed.
fn heartbeat() -> ExitCode {
    let pid = std::process::id();
    println!("heartbeat {pid} up");
    if let Err(e) = taskmaster_child::ready() {
        eprintln!("heartbeat: cannot say ready: {e}");
    }
    let mut watchdog = taskmaster_child::Watchdog::start();
    let hang_at = std::time::Instant::now() + Duration::from_millis(1000 + u64::from(pid % 4000));
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let calm = std::path::Path::new(taskmaster_chaos::programs::CALM).exists();
        if watchdog.is_some() && !calm && std::time::Instant::now() >= hang_at {
            println!("heartbeat {pid} hangs");
            watchdog = None;
        }
    }
}
