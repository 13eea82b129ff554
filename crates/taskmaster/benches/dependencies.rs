//! What `depends_on` costs at start (`cargo bench -p taskmaster --bench dependencies`):
//! 1,000 programs in a dependency graph, 100 chains of 10 (`cNN_0` <- `cNN_1` <- ... <-
//! `cNN_9`, each depending on the one before), against the same 1,000 programs independent,
//! measured in the same run, rounds of each taken in turn.
//!
//! Every program is `tm-fixture sleep forever` with `starttime: 0`, so RUNNING at its spawn:
//! the graph can only start level by level (ten levels, each once the one before is RUNNING),
//! and its cost beyond the independent start should be little more than those ten steps. A
//! round is the wall time from spawning `taskmaster run --no-shell` until its API's process
//! list (`GET /v1/processes`, polled every [`POLL`]) shows all 1,000 RUNNING; then the daemon
//! gets SIGTERM and the time until it has exited, every process stopped, is taken too (the
//! graph's shutdown stops it in reverse, level by level). Medians are printed, and the ratios
//! graph / independent.
//!
//! Every process started here is ended by its pid: the daemon by SIGTERM (past a deadline,
//! SIGSTOP, then SIGKILL for its children and itself), which stops its children; it also gets
//! SIGTERM should the bench die. A measurement, not a test: the exit status is non-zero only
//! when a figure could not be taken.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::percentile;

const CHAINS: usize = 100;
const CHAIN_LENGTH: usize = 10;
const PROGRAMS: usize = CHAINS * CHAIN_LENGTH;
/// Rounds of each configuration, taken in turn.
const ROUNDS: usize = 5;
/// Between two looks at the process list. Each look is a whole JSON list of 1,000
/// processes, which the daemon builds on the same two cores: not much more often than this.
const POLL: Duration = Duration::from_millis(20);
const START_DEADLINE: Duration = Duration::from_secs(120);
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(120);
/// Three descriptors per child (stdin, stdout, stderr pipes) and the daemon's own.
const FDS_NEEDED: u64 = 4 * PROGRAMS as u64 + 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Graph,
    Independent,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Graph => "graph (100 chains of 10)",
            Shape::Independent => "independent",
        }
    }
}

/// One round: to all RUNNING, and from SIGTERM to the daemon's exit.
struct Round {
    to_running: Duration,
    shutdown: Duration,
}

fn main() -> ExitCode {
    let taskmaster = PathBuf::from(env!("CARGO_BIN_EXE_taskmaster"));
    let fixture = PathBuf::from(env!("CARGO_BIN_EXE_tm-fixture"));
    if let Err(e) = check_limits() {
        eprintln!("dependencies: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "depends_on at start: {PROGRAMS} programs (`tm-fixture sleep forever`, starttime 0), \
         {CHAINS} chains of {CHAIN_LENGTH} against independent; {ROUNDS} rounds each, in turn; \
         the API's process list polled every {} ms",
        POLL.as_millis()
    );
    let mut graph = Vec::new();
    let mut independent = Vec::new();
    for round in 1..=ROUNDS {
        for shape in [Shape::Graph, Shape::Independent] {
            match run_round(shape, &taskmaster, &fixture) {
                Ok(figures) => {
                    println!(
                        "  round {round} {:<26} to RUNNING {:>8.1} ms   shutdown {:>8.1} ms",
                        shape.name(),
                        ms(figures.to_running),
                        ms(figures.shutdown)
                    );
                    match shape {
                        Shape::Graph => graph.push(figures),
                        Shape::Independent => independent.push(figures),
                    }
                }
                Err(e) => {
                    eprintln!("dependencies: round {round}, {}: {e}", shape.name());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let median = |rounds: &[Round], f: fn(&Round) -> Duration| {
        let mut figures: Vec<f64> = rounds.iter().map(|r| ms(f(r))).collect();
        figures.sort_by(f64::total_cmp);
        percentile(&figures, 0.5)
    };
    let (g_start, i_start) = (
        median(&graph, |r| r.to_running),
        median(&independent, |r| r.to_running),
    );
    let (g_stop, i_stop) = (
        median(&graph, |r| r.shutdown),
        median(&independent, |r| r.shutdown),
    );
    println!("\nmedians over {ROUNDS} rounds      to RUNNING     shutdown");
    println!(
        "  {:<28}{:>9.1} ms {:>9.1} ms",
        Shape::Graph.name(),
        g_start,
        g_stop
    );
    println!(
        "  {:<28}{:>9.1} ms {:>9.1} ms",
        Shape::Independent.name(),
        i_start,
        i_stop
    );
    println!(
        "  {:<28}{:>9.2}x {:>11.2}x",
        "ratio graph / independent",
        g_start / i_start,
        g_stop / i_stop
    );
    println!(
        "  graph beyond independent: {:.1} ms to RUNNING, {:.1} ms per level of the longest \
         chain ({CHAIN_LENGTH})",
        g_start - i_start,
        (g_start - i_start) / CHAIN_LENGTH as f64
    );
    ExitCode::SUCCESS
}

/// The open-file limit must hold every child's pipes; raised to the hard limit if needed.
fn check_limits() -> Result<(), String> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= FDS_NEEDED {
        println!("open files: soft limit {soft}, enough for {PROGRAMS} children");
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < FDS_NEEDED {
        return Err(format!(
            "open files: hard limit {hard}, below the {FDS_NEEDED} that {PROGRAMS} children need"
        ));
    }
    let raised = rustix::process::Rlimit {
        current: Some(FDS_NEEDED),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    println!("open files: soft limit raised from {soft} to {FDS_NEEDED}");
    Ok(())
}

/// The configuration of `shape`: 1,000 programs, named `cNN_L` (chain NN, level L).
fn configuration(shape: Shape, dir: &Path, fixture: &Path) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""));
    let cmd = quote(&format!(
        "'{}' sleep forever",
        fixture.to_string_lossy().replace('\'', r"'\''")
    ));
    let mut text = format!(
        "logfile: {}\nprograms:\n",
        quote(&dir.join("events.log").to_string_lossy())
    );
    for chain in 0..CHAINS {
        for level in 0..CHAIN_LENGTH {
            text.push_str(&format!(
                "  c{chain:02}_{level}:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 5\n"
            ));
            if shape == Shape::Graph && level > 0 {
                text.push_str(&format!("    depends_on: [c{chain:02}_{}]\n", level - 1));
            }
        }
    }
    text
}

fn run_round(shape: Shape, taskmaster: &Path, fixture: &Path) -> Result<Round, String> {
    let dir = tempfile::Builder::new()
        .prefix("taskmaster-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let config = dir.path().join("taskmaster.yaml");
    fs::write(&config, configuration(shape, dir.path(), fixture))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut daemon = Daemon::start(taskmaster, &dir, &config)?;
    let socket = dir.path().join("taskmaster.sock");
    let deadline = daemon.spawned_at + START_DEADLINE;
    let mut last = 0;
    let to_running = loop {
        if let Some(running) = running_count(&socket) {
            last = running;
            if running == PROGRAMS {
                break daemon.spawned_at.elapsed();
            }
        }
        daemon.check_alive()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "only {last} of {PROGRAMS} RUNNING within {START_DEADLINE:?}"
            ));
        }
        sleep(POLL);
    };
    let shutdown = daemon.shutdown()?;
    Ok(Round {
        to_running,
        shutdown,
    })
}

/// How many processes the API's list shows RUNNING; `None` while the socket takes no
/// connection or the answer is not whole.
fn running_count(socket: &Path) -> Option<usize> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return None
        }
        Err(_) => return None,
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /v1/processes HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return None;
    }
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&raw[end + 4..])?
    } else {
        raw[end + 4..].to_vec()
    };
    let answer: Value = serde_json::from_slice(&body).ok()?;
    let list = answer
        .as_array()
        .or_else(|| answer["processes"].as_array())?;
    Some(list.iter().filter(|p| p["state"] == "RUNNING").count())
}

/// The data of a whole chunked body; `None` if it is cut short.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(data);
        }
        let start = line_end + 2;
        data.extend_from_slice(raw.get(start..start + size)?);
        raw = raw.get(start + size + 2..)?;
    }
}

/// `taskmaster run --no-shell`, stopped (by pid) when dropped.
struct Daemon {
    child: Option<Child>,
    spawned_at: Instant,
    output: PathBuf,
}

impl Daemon {
    fn start(taskmaster: &Path, dir: &TempDir, config: &Path) -> Result<Daemon, String> {
        let output = dir.path().join("taskmaster.out");
        let stdout = File::create(&output)
            .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("cannot duplicate a descriptor: {e}"))?;
        let mut command = Command::new(taskmaster);
        command
            .arg("run")
            .arg("-c")
            .arg(config)
            .arg("--no-shell")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Should the bench die, the daemon gets SIGTERM and stops its processes.
        // SAFETY: between fork and exec only the prctl(2) system call runs: async-signal-safe,
        // and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                    .map_err(std::io::Error::from)
            });
        }
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", taskmaster.display()))?;
        Ok(Daemon {
            child: Some(child),
            spawned_at,
            output,
        })
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err("taskmaster has been stopped".to_string());
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                let output = fs::read_to_string(&self.output).unwrap_or_default();
                Err(format!("taskmaster exited early ({status}): {output}"))
            }
            Err(e) => Err(format!("cannot wait for taskmaster: {e}")),
        }
    }

    /// SIGTERM, and the time until the daemon exited successfully.
    fn shutdown(mut self) -> Result<Duration, String> {
        let mut child = self.child.take().ok_or("taskmaster had already exited")?;
        common::stop(&mut child, "taskmaster", SHUTDOWN_DEADLINE, POLL)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = common::stop(&mut child, "taskmaster", SHUTDOWN_DEADLINE, POLL) {
                eprintln!("  warning: taskmaster shutdown: {e}");
            }
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
