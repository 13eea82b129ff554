//! `taskmaster`: the command line. It parses arguments and wires the crates together; the
//! work is done by `taskmaster-config`, `taskmaster-core`, `taskmaster-runtime` and
//! `taskmaster-shell`.

mod attach;

use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use clap::{Parser, Subcommand};
use taskmaster_api::{Client, ControlSocket, ControlTcp, TcpSettings};
use taskmaster_config::{Accounts, Config};
use taskmaster_core::{Reply, Request};
use taskmaster_runtime::{Daemon, Handle};
use taskmaster_shell::{Backend, TailAmount, Verdict};

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
        /// Run as a process pair: keep a hot backup taskmaster that takes over, with every
        /// child, if this one dies
        #[arg(long)]
        pair: bool,
        /// (Started by a `--pair` primary.) Be its backup: wait, then take over
        #[arg(long, requires = "pair", hide = true)]
        backup: bool,
    },
    /// Control a running taskmaster: run one command and exit, or, with no command, open the
    /// control shell. Exit status: 0 done, 1 usage or connection error, 3 a process not
    /// RUNNING or an action that did not reach its goal.
    Ctl {
        /// The running taskmaster's configuration file, to find its control socket
        #[arg(short, long, default_value = "taskmaster.yaml")]
        config: PathBuf,
        /// The control socket itself (overrides -c)
        #[arg(short, long)]
        socket: Option<PathBuf>,
        /// Print answers as JSON (the API's), not as text
        #[arg(long)]
        json: bool,
        /// The username for a socket that asks for one ([unix_http_server] username);
        /// default: the configuration's [supervisorctl] username
        #[arg(short, long, requires = "password")]
        username: Option<String>,
        /// The password that goes with --username
        #[arg(short, long, requires = "username")]
        password: Option<String>,
        /// The command and its arguments, as typed in the shell (`status web`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Validate a configuration file: print every error and exit 2, or exit 0
    Check {
        /// The configuration file
        #[arg(short, long, default_value = "taskmaster.yaml")]
        config: PathBuf,
    },
    /// The process-pair demo: counts 1, 2, 3... one number per period, and goes on without a
    /// gap when its primary is killed (SIGKILL, SIGSEGV, SIGTERM) or paused (SIGSTOP): the
    /// backup takes over. Each line names the process that printed it. Ctrl-C, or closing
    /// the terminal, ends the demo: primary, backup and all.
    PairDemo {
        /// The time between two numbers
        #[arg(long, default_value = "1s", value_parser = taskmaster_config::parse_duration)]
        period: Duration,
        /// The time between two heartbeats from the primary to its backup
        #[arg(long, default_value = "100ms", value_parser = taskmaster_config::parse_duration)]
        interval: Duration,
        /// Heartbeats missed in a row before the backup takes over
        #[arg(long, default_value_t = 3)]
        misses: u32,
        /// The folder of the pair's files (lock, generation, socket). Give a running demo's
        /// to share its pair: this one then stands by as its backup, if it has none
        /// [default: a new folder $TMPDIR/counter-pair-PID, removed when the demo ends]
        #[arg(long)]
        dir: Option<PathBuf>,
        /// (Started by pair-demo itself.) Be a process of the pair, and exit when this
        /// inherited descriptor, the demo's lifeline, is closed
        #[arg(long, hide = true, requires = "dir")]
        lifeline: Option<i32>,
    },
    /// Print a configuration file (taskmaster YAML or supervisord INI) as taskmaster YAML;
    /// on errors print every one and exit 2. `user` is checked as if taskmaster ran as root
    /// (the file is for the taskmaster that will run it)
    Convert {
        /// The configuration file
        file: PathBuf,
    },
    /// (Started by `run` beside each cluster singleton.) SIGKILL process group PGID at
    /// KILL_AT (CLOCK_MONOTONIC, ns) unless told a later deadline on stdin
    #[command(hide = true)]
    Guard { pgid: u32, kill_at: u64 },
}

impl Command {
    /// The same command with its file paths made absolute, so that every path derived from
    /// them (log files, the socket) is absolute too: they are shown to users and other tools.
    fn with_absolute_paths(mut self) -> Command {
        let absolute = |path: &mut PathBuf| {
            if let Ok(full) = std::path::absolute(&*path) {
                *path = full;
            }
        };
        match &mut self {
            Command::Run { config, .. } | Command::Check { config } => absolute(config),
            Command::Convert { file } => absolute(file),
            Command::Guard { .. } => {}
            Command::PairDemo { dir, .. } => {
                if let Some(dir) = dir {
                    absolute(dir);
                }
            }
            Command::Ctl { config, socket, .. } => {
                absolute(config);
                if let Some(socket) = socket {
                    absolute(socket);
                }
            }
        }
        self
    }
}

/// How long `run` waits, after the daemon has stopped, for the shell to print its last lines.
const SHELL_FAREWELL: Duration = Duration::from_secs(5);

/// Exit status for a configuration with errors (`check`, or `run` refusing to start).
const INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let command = Cli::parse().command.with_absolute_paths();
    // What supervises (`run`, the pair demo) first makes this process fit to, before any
    // thread exists; a client (`ctl`, `check`, `convert`) starts without it, for speed.
    if matches!(command, Command::Run { .. } | Command::PairDemo { .. }) {
        taskmaster_runtime::prepare_process();
    }
    match command {
        Command::Check { config } => check(&config),
        Command::Convert { file } => convert(&file),
        Command::Guard { pgid, kill_at } => {
            ExitCode::from(taskmaster_runtime::run_guard(pgid, kill_at))
        }
        Command::Ctl {
            config,
            socket,
            json,
            username,
            password,
            command,
        } => {
            let mut target = match socket {
                Some(socket) => taskmaster_config::ControlClient {
                    socket,
                    credentials: None,
                },
                None => match control_client(&config) {
                    Ok(target) => target,
                    Err(errors) => {
                        eprintln!(
                            "taskmaster ctl: cannot find the control socket in {}:\n{errors}",
                            config.display()
                        );
                        return ExitCode::FAILURE;
                    }
                },
            };
            if let (Some(username), Some(password)) = (username, password) {
                target.credentials = Some(taskmaster_config::Credentials { username, password });
            }
            ctl(&target, json, &command)
        }
        Command::PairDemo {
            period,
            interval,
            misses,
            dir,
            lifeline,
        } => {
            let demo = Demo {
                period,
                interval,
                misses,
            };
            match (lifeline, dir) {
                (Some(lifeline), Some(dir)) => demo.process(dir, lifeline),
                (None, dir) => demo.hold(dir),
                // clap requires --dir with --lifeline.
                (Some(_), None) => ExitCode::FAILURE,
            }
        }
        Command::Run {
            config,
            no_shell,
            verbose,
            pair,
            backup,
        } => {
            let mode = match (pair, backup) {
                (false, _) => Mode::Alone,
                (true, false) => Mode::Primary,
                (true, true) => Mode::Backup,
            };
            run(&config, !no_shell, verbose, mode)
        }
    }
}

/// `taskmaster pair-demo`'s settings, the same for the holder and every process of the pair.
struct Demo {
    period: Duration,
    interval: Duration,
    misses: u32,
}

impl Demo {
    /// The pair's name: its files are `counter.lock`, `counter.gen`, ...
    const NAME: &'static str = "counter";

    /// `taskmaster pair-demo` as the shell starts it: the holder, which stays in the
    /// foreground while the pair counts, and ends it on Ctrl-C or a hangup (see
    /// `taskmaster_pair::demo::Holder`).
    fn hold(&self, dir: Option<PathBuf>) -> ExitCode {
        if let Some(dir) = &dir {
            if let Some(running) = taskmaster_pair::running_pair(dir, Self::NAME) {
                let primary = running.primary;
                let Some(backup) = running.backup else {
                    say(format_args!(
                        "another pair-demo is running in {} (primary pid {primary}): this one \
                         stands by as its backup, and counts on if that primary dies",
                        dir.display()
                    ));
                    return self.start_holder(Some(dir));
                };
                say(format_args!(
                    "another pair-demo is running in {} (primary pid {primary}, backup pid \
                     {backup}): a pair has one backup at most, so this one exits (without \
                     --dir, a demo has a pair of its own)",
                    dir.display()
                ));
                return ExitCode::FAILURE;
            }
        }
        self.start_holder(dir.as_deref())
    }

    fn start_holder(&self, dir: Option<&Path>) -> ExitCode {
        let mut holder = match taskmaster_pair::demo::Holder::new(Self::NAME, dir) {
            Ok(holder) => holder,
            Err(error) => {
                say(format_args!("{error}"));
                return ExitCode::FAILURE;
            }
        };
        // Before any process of the pair says anything.
        let pid = std::process::id();
        let folder = if holder.is_private() {
            format!(
                "its files in {}, removed at the end",
                holder.dir().display()
            )
        } else {
            format!("its files in {}", holder.dir().display())
        };
        say(format_args!(
            "pid {pid} holds the demo ({folder}); Ctrl-C (or kill {pid}) ends it"
        ));
        let arg0 = std::env::args_os()
            .next()
            .unwrap_or_else(|| "taskmaster".into());
        let started = holder.start(|dir, lifeline| {
            let mut command = std::process::Command::new("/proc/self/exe");
            command
                .arg0(arg0)
                .arg("pair-demo")
                .arg("--period")
                .arg(seconds(self.period))
                .arg("--interval")
                .arg(seconds(self.interval))
                .arg("--misses")
                .arg(self.misses.to_string())
                .arg("--dir")
                .arg(dir)
                .arg("--lifeline")
                .arg(lifeline.to_string());
            command
        });
        if let Err(error) = started {
            say(format_args!("{error}"));
            return ExitCode::FAILURE;
        }
        match holder.wait() {
            // A process of the pair said why already.
            Ok(status) if status.code() == Some(1) => ExitCode::FAILURE,
            Ok(status) => {
                say(format_args!(
                    "no process of the pair is left (the last one: {status})"
                ));
                ExitCode::FAILURE
            }
            Err(error) => {
                say(format_args!("{error}"));
                ExitCode::FAILURE
            }
        }
    }

    /// `taskmaster pair-demo --lifeline FD`: one process of the pair, started by the holder
    /// (the first) or by a primary (every backup), with the pair's folder and the lifeline.
    fn process(&self, dir: PathBuf, lifeline: i32) -> ExitCode {
        let lifeline = match taskmaster_pair::Lifeline::inherited(lifeline) {
            Ok(lifeline) => lifeline,
            Err(error) => {
                say(format_args!("{error}"));
                return ExitCode::FAILURE;
            }
        };
        let mut options = taskmaster_pair::Options::new(Self::NAME, dir);
        options.interval = self.interval;
        options.misses = self.misses;
        options.backup_session = taskmaster_pair::BackupSession::Same;
        options.lifeline = Some(lifeline);
        match taskmaster_pair::demo::counter(options, self.period, std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                say(format_args!("{error}"));
                ExitCode::FAILURE
            }
        }
    }
}

/// Writes `taskmaster pair-demo: MESSAGE` to stderr; a closed terminal is no reason to panic.
fn say(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "taskmaster pair-demo: {message}");
}

/// `duration` as `parse_duration` reads it back exactly: `300ms`, or seconds to the
/// nanosecond.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() * 1_000_000 == duration.subsec_nanos() {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}.{:09}", duration.as_secs(), duration.subsec_nanos())
    }
}

/// Prints a configuration's warnings on stderr, one a line.
fn print_warnings(warnings: &[taskmaster_config::ConfigWarning]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

fn check(path: &Path) -> ExitCode {
    match Config::load_with_warnings(path) {
        Ok((config, warnings)) => {
            print_warnings(&warnings);
            let warned = match warnings.len() {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            };
            println!(
                "{}: valid ({} program(s){warned})",
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

/// `convert`: the configuration, read in either format, as YAML on stdout; its warnings on
/// stderr. Each `user` must exist here, but may be another than the converter's own: the
/// taskmaster that runs the file is the one that switches, and `check` says whether it can.
fn convert(path: &Path) -> ExitCode {
    match Config::read(path, &Accounts::system().as_uid(0)) {
        Ok((config, warnings)) => {
            print_warnings(&warnings);
            let yaml = taskmaster_config::to_yaml(&config);
            match std::io::stdout().write_all(yaml.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("taskmaster: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(INVALID_CONFIG)
        }
    }
}

/// How a `taskmaster run` stands to a process pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No pair.
    Alone,
    /// The primary of a pair: it supervises and keeps a backup.
    Primary,
    /// A backup: it waits for its primary to die, then takes over as primary.
    Backup,
}

fn run(path: &Path, with_shell: bool, verbose: bool, mode: Mode) -> ExitCode {
    let (config, warnings) = match Config::load_with_warnings(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("taskmaster: not started: the configuration has errors");
            return ExitCode::from(INVALID_CONFIG);
        }
    };
    // A backup said them when it was started, as its primary.
    if mode != Mode::Backup {
        print_warnings(&warnings);
    }
    if mode != Mode::Alone && config.daemon.cluster.is_some() {
        eprintln!(
            "{}: cluster: a process pair cannot hold a cluster's singletons yet: run it without \
             --pair (each singleton's guard keeps it within its lease if taskmaster dies)",
            config.path.display()
        );
        return ExitCode::from(INVALID_CONFIG);
    }
    // A backup waits here, serving nothing, until its primary is gone.
    let takeover = match mode {
        Mode::Backup => {
            match taskmaster_runtime::pair::wait_as_backup(&config.socket, config.pair.silence()) {
                Ok(takeover) => Some(takeover),
                Err(taskmaster_runtime::pair::BackupError::PrimaryExited) => {
                    return ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("taskmaster: backup: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    // First, so that a second taskmaster on the same socket is refused before it does anything.
    let bound = match takeover {
        Some(_) => ControlSocket::take_over(&config.socket, &config.daemon.socket_access),
        None => ControlSocket::bind(&config.socket, &config.daemon.socket_access),
    };
    let socket = match bound {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("taskmaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tcp = config.http.as_ref().map(|http| {
        ControlTcp::bind(&TcpSettings {
            listen: http.listen,
            username: http.credentials.as_ref().map(|c| c.username.clone()),
            password: http.credentials.as_ref().map(|c| c.password.clone()),
        })
    });
    let tcp = match tcp.transpose() {
        Ok(tcp) => tcp,
        Err(e) => {
            eprintln!("taskmaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = match takeover {
        Some(takeover) => Daemon::take_over(config, takeover, verbose),
        None => Daemon::new(config, verbose),
    };
    let (mut daemon, handle) = match started {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("taskmaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    daemon.config_warnings(&warnings);
    if mode != Mode::Alone {
        daemon = daemon.with_backup(path.to_path_buf(), verbose);
    }
    let terminal = SavedTerminal::save();
    let shell_done = with_shell.then(|| {
        let backend = InProcess {
            handle: handle.clone(),
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
    let result =
        daemon.run_blocking_with(|exiting| taskmaster_api::serve(socket, tcp, handle, exiting));
    if let Some((asked_shutdown, shell_done)) = shell_done {
        // When the shell asked for the shutdown it is printing its answer ("Shut down") and
        // about to end: let it finish. When a signal did, it may be waiting for input: don't.
        if asked_shutdown.load(Ordering::SeqCst) {
            let _ = shell_done.recv_timeout(SHELL_FAREWELL);
        }
    }
    terminal.restore();
    match result {
        // 0, or a critical program's status when its end ended the run.
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("taskmaster: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How to reach the taskmaster whose configuration is `config`: its `socket:` and the
/// credentials to send, or `taskmaster.sock` beside it when the file cannot be read (being
/// edited, say).
/// Where `ctl -c FILE` finds its daemon: FILE's socket and credentials; with no such file
/// (the default `taskmaster.yaml` where there is none), `taskmaster.sock` beside where it
/// would be. A file that says something wrong about them is an error, never a guess.
fn control_client(
    config: &Path,
) -> Result<taskmaster_config::ControlClient, taskmaster_config::ConfigErrors> {
    if !config.exists() {
        let folder = config.parent().filter(|p| !p.as_os_str().is_empty());
        return Ok(taskmaster_config::ControlClient {
            socket: folder.unwrap_or(Path::new(".")).join("taskmaster.sock"),
            credentials: None,
        });
    }
    taskmaster_config::ControlClient::load(config)
}

fn ctl(target: &taskmaster_config::ControlClient, json: bool, command: &[String]) -> ExitCode {
    let client = match Client::new(&target.socket) {
        Ok(client) => match &target.credentials {
            Some(c) => client.with_credentials(&c.username, &c.password),
            None => client,
        },
        Err(e) => {
            eprintln!("taskmaster ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let backend = Remote(client);
    if command.is_empty() {
        return match interactive_or_script(&backend) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("taskmaster ctl: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut stdout = std::io::stdout();
    let executed = taskmaster_shell::execute(&backend, &command.join(" "), &mut stdout);
    // The answer in one write, not one per line (stdout is line-buffered).
    let mut text = String::new();
    if json {
        let value = match &executed.reply {
            Some(reply) => taskmaster_api::wire::reply_json(reply),
            None if executed.lines.is_empty() => serde_json::json!({}),
            None => serde_json::json!({ "error": executed.lines.join("\n") }),
        };
        text = format!("{value}\n");
    } else {
        for line in &executed.lines {
            text.push_str(line);
            text.push('\n');
        }
    }
    // A closed stdout (`ctl status | head -1`) is the reader's choice, not a failure.
    let _ = if executed.verdict == Verdict::Error && !json {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        stdout.write_all(text.as_bytes())
    };
    ExitCode::from(executed.verdict.exit_status())
}

/// The shell on a terminal, or commands read from stdin.
fn interactive_or_script(backend: &dyn Backend) -> Result<(), String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let history = taskmaster_shell::history_path();
        taskmaster_shell::run_interactive(backend, history.as_deref()).map_err(|e| e.to_string())
    } else {
        taskmaster_shell::run_script(backend, stdin.lock(), std::io::stdout())
            .map_err(|e| e.to_string())
    }
}

fn shell(backend: &InProcess) {
    if let Err(e) = interactive_or_script(backend) {
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

    fn tail(
        &self,
        name: &str,
        stream: &str,
        amount: TailAmount,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        if follow {
            // Here Ctrl-C reaches taskmaster itself, which would shut everything down.
            return Err(
                "tail -f is for `taskmaster ctl`, where Ctrl-C stops only the tail".to_string(),
            );
        }
        let Ok(Reply::Status { processes, .. }) =
            self.call(Request::Status(vec![name.to_string()]))
        else {
            return Err(format!("no such process: {name}"));
        };
        let [process] = processes.as_slice() else {
            return Err(format!("no single process named {name}"));
        };
        let stream = match stream {
            "stderr" => taskmaster_config::Stream::Stderr,
            _ => taskmaster_config::Stream::Stdout,
        };
        let path = process.log_file(stream)?;
        let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let tail = match amount {
            TailAmount::Bytes(bytes) => read_tail(path, bytes).map_err(cannot_read)?,
            TailAmount::Lines(lines) => {
                let read = |window| read_tail_at(path, window);
                taskmaster_api::client::last_lines(lines, read)
                    .map_err(cannot_read)?
                    .0
            }
        };
        out.write_all(&tail).map_err(|e| e.to_string())
    }

    fn maintail(&self, bytes: u64, follow: bool, out: &mut dyn Write) -> Result<(), String> {
        if follow {
            return Err(
                "maintail -f is for `taskmaster ctl`, where Ctrl-C stops only the tail".to_string(),
            );
        }
        let Ok(Reply::Config { active, .. }) = self.call(Request::Config) else {
            return Err("cannot find the event log".to_string());
        };
        let tail = read_tail(&active.logfile, bytes)
            .map_err(|e| format!("cannot read {}: {e}", active.logfile.display()))?;
        out.write_all(&tail).map_err(|e| e.to_string())
    }

    fn attach(&self, _name: &str, _out: &mut dyn Write) -> Result<String, String> {
        // This terminal is the daemon's: its Ctrl-C and its stdin are taskmaster's own.
        Err("attach is for `taskmaster ctl attach NAME`, from another terminal".to_string())
    }
}

/// The last `bytes` bytes of a file.
fn read_tail(path: &Path, bytes: u64) -> std::io::Result<Vec<u8>> {
    read_tail_at(path, bytes).map(|(tail, _)| tail)
}

/// The last `bytes` bytes of a file, and where they start in it.
fn read_tail_at(path: &Path, bytes: u64) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let start = size.saturating_sub(bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok((tail, start))
}

/// The shell's backend in `taskmaster ctl`: a taskmaster reached through its control socket.
struct Remote(Client);

impl Backend for Remote {
    fn call(&self, request: Request) -> Result<Reply, String> {
        self.0.call(request).map_err(|e| e.to_string())
    }

    fn tail(
        &self,
        name: &str,
        stream: &str,
        amount: TailAmount,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        match amount {
            TailAmount::Bytes(bytes) => self.0.tail(name, stream, bytes, follow, out),
            TailAmount::Lines(lines) => self.0.tail_lines(name, stream, lines, follow, out),
        }
        .map_err(|e| e.to_string())
    }

    fn maintail(&self, bytes: u64, follow: bool, out: &mut dyn Write) -> Result<(), String> {
        self.0
            .maintail(bytes, follow, out)
            .map_err(|e| e.to_string())
    }

    fn attach(&self, name: &str, out: &mut dyn Write) -> Result<String, String> {
        attach::attach(&self.0, name, out)
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
