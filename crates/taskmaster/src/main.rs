//! `taskmaster`: the command line. It parses arguments and wires the crates together; the
//! work is done by `taskmaster-config`, `taskmaster-core`, `taskmaster-runtime` and
//! `taskmaster-shell`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use clap::{Parser, Subcommand};
use taskmaster_config::Config;
use taskmaster_core::{Reply, Request};
use taskmaster_runtime::{Daemon, Handle};
use taskmaster_shell::Backend;

#[derive(Parser)]
#[command(
    name = "taskmaster",
    version,
    about = "A process supervisor: starts the programs a configuration file describes and keeps them alive"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the programs of a configuration file and supervise them, in the foreground, with
    /// a control shell on the terminal
    Run {
        /// The configuration file
        #[arg(short, long, default_value = "taskmaster.yaml")]
        config: PathBuf,
        /// No control shell: run until SIGTERM or SIGINT (for scripts and services)
        #[arg(long)]
        no_shell: bool,
        /// Also write the event log to stderr
        #[arg(short, long)]
        verbose: bool,
    },
    /// Validate a configuration file: print every error and exit 2, or exit 0
    Check {
        /// The configuration file
        #[arg(short, long, default_value = "taskmaster.yaml")]
        config: PathBuf,
    },
}

/// How long `run` waits, after the daemon has stopped, for the shell to print its last lines.
const SHELL_FAREWELL: Duration = Duration::from_secs(5);

/// Exit status for a configuration with errors (`check`, or `run` refusing to start).
const INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Before anything else, and before any thread exists.
    taskmaster_runtime::prepare_process();
    match Cli::parse().command {
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            no_shell,
            verbose,
        } => run(&config, !no_shell, verbose),
    }
}

fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!(
                "{}: valid ({} program(s))",
                path.display(),
                config.programs.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(INVALID_CONFIG)
        }
    }
}

fn run(path: &Path, with_shell: bool, verbose: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("taskmaster: not started: the configuration has errors");
            return ExitCode::from(INVALID_CONFIG);
        }
    };
    let (daemon, handle) = match Daemon::new(config, verbose) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("taskmaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let terminal = SavedTerminal::save();
    let shell_done = with_shell.then(|| {
        let backend = InProcess {
            handle,
            asked_shutdown: Arc::new(AtomicBool::new(false)),
        };
        let asked_shutdown = Arc::clone(&backend.asked_shutdown);
        let (done, shell_done) = mpsc::channel();
        std::thread::spawn(move || {
            shell(&backend);
            // Leaving the shell (quit, Ctrl-D, end of input) shuts taskmaster down.
            let _ = backend.call(Request::Shutdown);
            let _ = done.send(());
        });
        (asked_shutdown, shell_done)
    });
    let result = daemon.run_blocking();
    if let Some((asked_shutdown, shell_done)) = shell_done {
        // When the shell asked for the shutdown it is printing its answer ("Shut down") and
        // about to end: let it finish. When a signal did, it may be waiting for input: don't.
        if asked_shutdown.load(Ordering::SeqCst) {
            let _ = shell_done.recv_timeout(SHELL_FAREWELL);
        }
    }
    terminal.restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskmaster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn shell(backend: &InProcess) {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let history = taskmaster_shell::history_path();
        if let Err(e) = taskmaster_shell::run_interactive(backend, history.as_deref()) {
            eprintln!("taskmaster: shell: {e}");
        }
    } else if let Err(e) = taskmaster_shell::run_script(backend, stdin.lock(), std::io::stdout()) {
        eprintln!("taskmaster: shell: {e}");
    }
}

/// The shell's backend when the daemon runs in the same process.
struct InProcess {
    handle: Handle,
    /// Set before the shell sends a shutdown, so that `run` waits for its last words.
    asked_shutdown: Arc<AtomicBool>,
}

impl Backend for InProcess {
    fn call(&self, request: Request) -> Result<Reply, String> {
        if request == Request::Shutdown {
            self.asked_shutdown.store(true, Ordering::SeqCst);
        }
        self.handle.call(request).map_err(|e| e.to_string())
    }
}

/// The terminal's settings at start, put back at exit: a shutdown by signal can come while the
/// shell has the terminal in raw mode.
struct SavedTerminal(Option<rustix::termios::Termios>);

impl SavedTerminal {
    fn save() -> SavedTerminal {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return SavedTerminal(None);
        }
        SavedTerminal(rustix::termios::tcgetattr(&stdin).ok())
    }

    fn restore(self) {
        if let Some(termios) = self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                &termios,
            );
        }
    }
}
