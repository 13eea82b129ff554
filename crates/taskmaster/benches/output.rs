//! Benchmark of output capture (`cargo bench -p taskmaster --bench output`, about a minute). A
//! child writes 1 GiB to its stdout as fast as it can; the figures are how fast those bytes reach
//! its log file under taskmaster, in both of its ways (the file itself, or a pipe it drains),
//! against the same writer writing into the file and piped into `cat > FILE`, and what that costs
//! the daemon. Each kind of run, in the same run of the bench and with the same writer:
//!
//! 1. **`writer > FILE`**: the writer's stdout is the file itself, nothing in between. The
//!    ceiling for throughput, and the writer's CPU time here is the cost of copying 1 GiB into
//!    the page cache, which every capture through a pipe pays once more (`splice` from a pipe to
//!    a file copies too): the floor under a pipe reader's CPU per GiB.
//! 2. **`writer | cat > FILE`**, the baseline for pipe readers: the bench spawns both and joins
//!    them with a pipe, as `sh -c 'writer | cat > FILE'` would, and can end each by its pid.
//!    Throughput, and `cat`'s CPU time (read from its zombie, before it is reaped).
//! 3. **taskmaster direct**: `taskmaster run -c FILE --no-shell` with one program: `stdout:
//!    FILE`, `stdout_maxbytes: 0` (no rotation), `autorestart: never`, `starttime: 0`. Nothing
//!    reads the stream on its way, so the child gets the file itself (O_APPEND) and taskmaster
//!    captures nothing. Targets: the file's own speed (throughput at least [`TARGET_DIRECT_RATIO`]
//!    of `writer > FILE`'s), and no daemon CPU to speak of (under
//!    [`TARGET_DIRECT_CPU_S_PER_GIB`] per GiB, a few clock ticks).
//! 4. **taskmaster pipe**: the same with `stdout_maxbytes: 100GB` (see [`PIPE_MAXBYTES`]) and
//!    `stdout_backups: 1`: rotation makes the stream go through a pipe that a capture thread
//!    drains with `splice`, and a run never writes enough to rotate. Throughput, the daemon's
//!    CPU per GiB, and that CPU against the writer's own for `writer > FILE` (one copy into the
//!    page cache): target at most [`TARGET_PIPE_CPU_RATIO`] of it.
//! 5. **supervisord**: the same writer with `stdout_logfile=FILE`, `stdout_logfile_maxbytes=0`
//!    (no rotation): throughput and CPU per GiB. supervisord is the executable `SUPERVISORD`
//!    names, as for benches/supervise.rs, or else the one in the venv `scripts/bench` makes
//!    (target/bench-venv); without either, it is not measured.
//!
//! A daemon's CPU time is utime+stime in /proc/PID/stat, which counts every thread of the
//! process, the capture threads included, even after they end.
//!
//! **The writer** is this bench binary itself, run as `output writer BYTES DIR`: it writes 1 MiB
//! blocks from memory, so that it costs little and the capture is what is measured. Each block
//! is the same pseudo-random pattern stamped with its index, so the check after every run
//! compares the file with what was written, block by block: stronger than comparing checksums
//! with the baseline's file (which must hold the same bytes), and it names a lost, repeated or
//! misplaced block. The file must also be exactly the size written. Before it waits, the writer
//! notes what its stdout is (the link /proc/self/fd/1, in DIR/stdout), and a run whose writer
//! did not write where its kind says (the file itself, or a pipe) is an error: taskmaster's two
//! ways cannot be confused.
//!
//! **The clock**: the writer creates DIR/ready and waits for DIR/go. Seeing `ready`, the bench
//! reads the daemon's CPU time (its start-up is over), then creates `go`; the writer notes
//! CLOCK_MONOTONIC just before its first write (in DIR/started), and its own CPU time
//! (CLOCK_PROCESS_CPUTIME_ID) over its writes (in DIR/cpu). A run ends when a poll (every 1 ms)
//! sees the file hold every byte: throughput is bytes / (that time - the writer's start), the same
//! way for every kind. Once the daemon's log says the writer exited, its CPU time is read again,
//! just before SIGTERM: the difference is what capturing cost (the total since the daemon started
//! is printed too). /proc/PID/stat counts in clock ticks, 10 ms steps.
//!
//! **Warm memory**: just before `go`, the bench writes as much to a scratch file and deletes it
//! (see [`warm_memory`]). On a virtual machine that hands free memory back to its host, a run
//! would otherwise pay ~1.7 s/GiB of page faults or not, depending on how long memory had been
//! free, which swamps everything else measured here.
//!
//! All kinds but supervisord take turns for [`ROUNDS`] rounds (medians are compared, ratios are
//! of medians); supervisord runs once. Every run has its own folder in one temporary directory,
//! so all write to one filesystem; after its check the file is deleted and the filesystem
//! synced, so no run pays for an earlier one's writeback. With less than [`SPACE_FOR_FULL`] free
//! there, the bench writes [`SMALL_BYTES`] instead, says so, and scales the figures per GiB.
//!
//! Targets are printed PASS/MISS; a miss never fails the run, since this is a measurement. The
//! exit status is non-zero when a run without supervisord could not be measured or a file did not
//! hold what was written. Every process started here is ended by its pid: a daemon by SIGTERM
//! (past a deadline, SIGKILL for it and its children; it also gets SIGTERM should the bench
//! die), the writer and `cat` by SIGKILL if they are still running when their run ends.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tempfile::TempDir;

mod common;

/// What the writer writes, when the disk has room.
const FULL_BYTES: u64 = 1 << 30;
/// What it writes when the disk is short of [`SPACE_FOR_FULL`].
const SMALL_BYTES: u64 = 256 << 20;
/// Free space needed for [`FULL_BYTES`]: one file at a time, and room to spare.
const SPACE_FOR_FULL: u64 = 3 << 30;
/// The size of each of the writer's writes.
const BLOCK: usize = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Rounds of every kind but supervisord (which runs once).
const ROUNDS: usize = 3;

/// taskmaster direct's throughput against `writer > FILE`'s: the file's own speed, give or take
/// the noise between runs.
const TARGET_DIRECT_RATIO: f64 = 0.95;
/// taskmaster direct's daemon CPU per GiB: nothing, give or take a few clock ticks of its own
/// loop while the writer runs.
const TARGET_DIRECT_CPU_S_PER_GIB: f64 = 0.05;
/// taskmaster pipe's daemon CPU against the writer's for `writer > FILE`: one copy into the page
/// cache, and a little more.
const TARGET_PIPE_CPU_RATIO: f64 = 1.2;

/// taskmaster pipe's `stdout_maxbytes`: any size makes the stream go through a pipe; one this
/// large (the config takes any size that fits in 64 bits) is never reached in a run, so what is
/// measured is the capture, not a rotation.
const PIPE_MAXBYTES: &str = "100GB";

/// For a daemon to start its writer (supervisord imports Python for a while).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// For the writer, once told to go, to have every byte in the file (supervisord is slow).
const WRITE_DEADLINE: Duration = Duration::from_secs(600);
/// For the daemon's log to say the writer exited, once the file is complete.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);
/// For a daemon to exit after SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long the writer waits for `go` before giving up (the bench has died or failed).
const GO_DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(1);

/// The first argument that makes this binary the writer rather than the bench.
const WRITER_ARG: &str = "writer";
/// The one program every supervisor runs.
const PROGRAM: &str = "writer";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|arg| arg == WRITER_ARG) {
        return writer_main(&args[1..]);
    }
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(e) => {
            eprintln!("output: {e}");
            return ExitCode::FAILURE;
        }
    };
    tools.print();
    let root = match temp_dir() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("output: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes = choose_size(root.path());
    let mut results = Results::default();
    println!();
    for round in 1..=ROUNDS {
        for kind in Kind::ROUNDS {
            let run = measure(kind, &tools, root.path(), round, bytes);
            results.runs[kind.column()].push(run);
        }
    }
    if tools.supervisord.is_some() {
        let run = measure(Kind::Supervisord, &tools, root.path(), 1, bytes);
        results.runs[Kind::Supervisord.column()].push(run);
    }
    print_summary(&tools, bytes, &results);
    let failed = Kind::ROUNDS
        .iter()
        .flat_map(|kind| &results.runs[kind.column()])
        .any(Result::is_err);
    if !failed {
        ExitCode::SUCCESS
    } else {
        eprintln!("output: some runs without supervisord failed (see above)");
        ExitCode::FAILURE
    }
}

/// Every run, by kind (at [`Kind::column`]), in the order they ran; supervisord's is empty when
/// it was not found.
#[derive(Default)]
struct Results {
    runs: [Vec<Result<Run, String>>; Kind::ALL.len()],
}

/// [`FULL_BYTES`], or [`SMALL_BYTES`] if the temporary directory's filesystem is short of space.
fn choose_size(dir: &Path) -> u64 {
    let free = rustix::fs::statvfs(dir)
        .ok()
        .map(|fs| fs.f_bavail.saturating_mul(fs.f_frsize));
    let bytes = match free {
        Some(free) if free < SPACE_FOR_FULL => SMALL_BYTES,
        _ => FULL_BYTES,
    };
    let free = free.map_or_else(|| "unknown".to_string(), |f| fmt_size(f as f64));
    println!("  output files in {} (free there: {free})", dir.display());
    if bytes == FULL_BYTES {
        println!("  each run writes {}", fmt_size(bytes as f64));
    } else {
        println!(
            "  each run writes {} only: less than {} free (figures per GiB are scaled)",
            fmt_size(bytes as f64),
            fmt_size(SPACE_FOR_FULL as f64)
        );
    }
    bytes
}

// ---- the runs -----------------------------------------------------------------------------

/// Who moves the writer's bytes into the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The ceiling: `writer > FILE`, no pipe, nothing in between.
    File,
    /// The baseline for pipe readers: `writer | cat > FILE`.
    Cat,
    /// taskmaster with `stdout_maxbytes: 0`: the writer gets the file itself.
    TaskmasterDirect,
    /// taskmaster with rotation (never reached): the writer gets a pipe that taskmaster drains.
    TaskmasterPipe,
    Supervisord,
}

impl Kind {
    /// Every kind, in the summary's order.
    const ALL: [Kind; 5] = [
        Kind::File,
        Kind::Cat,
        Kind::TaskmasterDirect,
        Kind::TaskmasterPipe,
        Kind::Supervisord,
    ];
    /// The kinds that take turns for [`ROUNDS`] rounds, in that order.
    const ROUNDS: [Kind; 4] = [
        Kind::File,
        Kind::Cat,
        Kind::TaskmasterDirect,
        Kind::TaskmasterPipe,
    ];

    /// Its place in [`Kind::ALL`], [`Results`] and the summary's columns.
    fn column(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Kind::File => "writer > FILE",
            Kind::Cat => "writer | cat > FILE",
            Kind::TaskmasterDirect => "taskmaster direct",
            Kind::TaskmasterPipe => "taskmaster pipe",
            Kind::Supervisord => "supervisord",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Cat => "cat",
            Kind::TaskmasterDirect => "taskmaster-direct",
            Kind::TaskmasterPipe => "taskmaster-pipe",
            Kind::Supervisord => "supervisord",
        }
    }

    fn is_taskmaster(self) -> bool {
        matches!(self, Kind::TaskmasterDirect | Kind::TaskmasterPipe)
    }

    /// Whether the writer's stdout is the file itself, rather than a pipe.
    fn writes_own_file(self) -> bool {
        matches!(self, Kind::File | Kind::TaskmasterDirect)
    }

    /// Whether a line of the daemon's log says the writer exited.
    fn is_exit_line(self, line: &str) -> bool {
        match self {
            Kind::File | Kind::Cat => false,
            // `2026-11-22 06:07:29.475 writer: exited with code 0 (expected)`
            Kind::TaskmasterDirect | Kind::TaskmasterPipe => {
                line.contains(&format!(" {PROGRAM}: exited"))
            }
            // `... INFO exited: writer (exit status 0; expected)`
            Kind::Supervisord => line.contains(&format!("exited: {PROGRAM} (")),
        }
    }

    /// Whether that exit line says the writer succeeded.
    fn is_success(self, line: &str) -> bool {
        match self {
            Kind::File | Kind::Cat => false,
            Kind::TaskmasterDirect | Kind::TaskmasterPipe => line.contains("exited with code 0 "),
            Kind::Supervisord => line.contains("(exit status 0;"),
        }
    }
}

/// One run's figures.
struct Run {
    /// From the writer's first write until the file held every byte.
    seconds: f64,
    /// The writer's CPU time while it wrote, in seconds: copying into the pipe, or into the
    /// file for `writer > FILE`.
    writer_cpu: f64,
    /// `cat`'s CPU time, in seconds, for the baseline.
    cat_cpu: Option<f64>,
    /// The daemon's CPU time; none without a daemon.
    daemon_cpu: Option<DaemonCpu>,
}

/// A daemon's CPU time (utime+stime), in seconds.
struct DaemonCpu {
    /// From the writer's `ready` until it had exited: the capture's cost.
    capture: f64,
    /// From the daemon's start until the writer had exited.
    total: f64,
}

impl Run {
    fn throughput_mib_s(&self, bytes: u64) -> f64 {
        bytes as f64 / MIB / self.seconds
    }

    /// The CPU seconds per GiB written of what moves the bytes from the pipe to the file: the
    /// daemon, while it captures, or `cat`.
    fn copier_cpu_s_per_gib(&self, bytes: u64) -> Option<f64> {
        let cpu = match &self.daemon_cpu {
            Some(cpu) => cpu.capture,
            None => self.cat_cpu?,
        };
        Some(cpu * GIB / bytes as f64)
    }

    /// The writer's CPU seconds per GiB written.
    fn writer_cpu_s_per_gib(&self, bytes: u64) -> f64 {
        self.writer_cpu * GIB / bytes as f64
    }
}

/// One run of `kind` in a folder of its own, the file's check, and its line of output.
fn measure(
    kind: Kind,
    tools: &Tools,
    root: &Path,
    round: usize,
    bytes: u64,
) -> Result<Run, String> {
    let result = RunDir::create(root, kind, round).and_then(|run_dir| {
        let run = match kind {
            Kind::File | Kind::Cat => unsupervised_run(kind, tools, &run_dir, bytes),
            _ => supervised_run(kind, tools, &run_dir, bytes),
        };
        let checked = run.and_then(|run| {
            check_stdout(kind, &run_dir)?;
            check_contents(&run_dir.output, bytes)?;
            Ok(run)
        });
        // The next run starts with nothing of this one left to write back.
        let _ = fs::remove_file(&run_dir.output);
        sync_filesystem(root);
        checked
    });
    let label = format!("{} (run {round})", kind.name());
    match &result {
        Ok(run) => {
            let copier_cpu = match (&run.daemon_cpu, run.cat_cpu) {
                (Some(cpu), _) => format!(
                    "   daemon CPU {} capturing, {} in all",
                    fmt_s(cpu.capture),
                    fmt_s(cpu.total)
                ),
                (None, Some(cpu)) => format!("   cat CPU {}", fmt_s(cpu)),
                (None, None) => String::new(),
            };
            println!(
                "  {label:<30}{:>6.0} MiB/s  {:>7}   writer CPU {}{copier_cpu}   file checked",
                run.throughput_mib_s(bytes),
                fmt_s(run.seconds),
                fmt_s(run.writer_cpu),
            );
        }
        Err(e) => println!("  {label:<30}error: {e}"),
    }
    result
}

/// A run's folder: the output file, the writer's stderr and its signal files.
struct RunDir {
    dir: PathBuf,
    output: PathBuf,
    writer_errors: PathBuf,
    signals: Signals,
}

impl RunDir {
    fn create(root: &Path, kind: Kind, round: usize) -> Result<RunDir, String> {
        let dir = root.join(format!("{}-{round}", kind.folder()));
        let signals = Signals(dir.join("signals"));
        fs::create_dir_all(&signals.0)
            .map_err(|e| format!("cannot create {}: {e}", signals.0.display()))?;
        Ok(RunDir {
            output: dir.join("output"),
            writer_errors: dir.join("writer.err"),
            signals,
            dir,
        })
    }

    /// The writer's command line: this binary, as the writer.
    fn writer_argv(&self, tools: &Tools, bytes: u64) -> Vec<String> {
        vec![
            path_arg(&tools.bench),
            WRITER_ARG.to_string(),
            bytes.to_string(),
            path_arg(&self.signals.0),
        ]
    }

    /// What the writer said on stderr, for an error message.
    fn writer_said(&self) -> String {
        let text = fs::read_to_string(&self.writer_errors).unwrap_or_default();
        match text.trim() {
            "" => String::new(),
            said => format!(" (the writer said: {said})"),
        }
    }
}

/// The files the writer and the bench signal each other with.
struct Signals(PathBuf);

impl Signals {
    /// Created by the writer once it runs.
    fn ready(&self) -> PathBuf {
        self.0.join("ready")
    }

    /// Created by the bench to let the writer write.
    fn go(&self) -> PathBuf {
        self.0.join("go")
    }

    /// The writer's CLOCK_MONOTONIC just before its first write, in ns.
    fn started(&self) -> PathBuf {
        self.0.join("started")
    }

    /// The writer's CPU time (CLOCK_PROCESS_CPUTIME_ID) spent writing, in ns.
    fn writer_cpu(&self) -> PathBuf {
        self.0.join("cpu")
    }

    /// What the writer's stdout is: the link /proc/self/fd/1 (`pipe:[1234]`, or a file's path).
    fn stdout(&self) -> PathBuf {
        self.0.join("stdout")
    }

    fn let_go(&self) -> Result<(), String> {
        File::create(self.go())
            .map_err(|e| format!("cannot create {}: {e}", self.go().display()))?;
        Ok(())
    }

    fn started_ns(&self) -> Result<u64, String> {
        read_ns(&self.started())
    }

    fn writer_cpu_s(&self) -> Result<f64, String> {
        Ok(read_ns(&self.writer_cpu())? as f64 / 1e9)
    }
}

/// A number of nanoseconds the writer wrote to a file.
fn read_ns(path: &Path) -> Result<u64, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: not a time: {text:?}", path.display()))
}

/// The writer without a supervisor: into the file itself ([`Kind::File`]), or piped into
/// `cat > FILE` ([`Kind::Cat`]).
fn unsupervised_run(
    kind: Kind,
    tools: &Tools,
    run_dir: &RunDir,
    bytes: u64,
) -> Result<Run, String> {
    let argv = run_dir.writer_argv(tools, bytes);
    let errors = File::create(&run_dir.writer_errors)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.writer_errors.display()))?;
    let output = File::create(&run_dir.output)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.output.display()))?;
    let mut writer = Command::new(&argv[0]);
    writer.args(&argv[1..]).stdin(Stdio::null()).stderr(errors);
    if kind == Kind::Cat {
        writer.stdout(Stdio::piped());
    } else {
        writer.stdout(
            output
                .try_clone()
                .map_err(|e| format!("cannot duplicate a descriptor: {e}"))?,
        );
    }
    let writer = writer
        .spawn()
        .map_err(|e| format!("cannot run the writer {}: {e}", argv[0]))?;
    let mut pipeline = Pipeline { writer, cat: None };
    if let Some(pipe) = pipeline.writer.stdout.take() {
        let cat = Command::new("cat")
            .stdin(pipe)
            .stdout(output)
            .spawn()
            .map_err(|e| format!("cannot run cat: {e}"))?;
        pipeline.cat = Some(cat);
    }

    let mut check = || pipeline.check(run_dir);
    wait_for(READY_DEADLINE, "the writer to start", &mut check, || {
        Ok(run_dir.signals.ready().exists())
    })?;
    warm_memory(&run_dir.dir, bytes)?;
    run_dir.signals.let_go()?;
    let end_ns = wait_for_size(&run_dir.output, bytes, &mut check)?;
    let seconds = elapsed_s(run_dir.signals.started_ns()?, end_ns);
    let cat_ticks = pipeline.finish(run_dir)?;
    Ok(Run {
        seconds,
        writer_cpu: run_dir.signals.writer_cpu_s()?,
        cat_cpu: cat_ticks.map(|ticks| tools.seconds_of(ticks)),
        daemon_cpu: None,
    })
}

/// The writer, and `cat` if the writer is piped into it: killed and reaped if dropped while
/// running. `cat` is not reaped before [`Pipeline::finish`], which reads its CPU time from its
/// zombie; a `cat` that fails makes the writer fail too (EPIPE), which [`Pipeline::check`] sees.
struct Pipeline {
    writer: Child,
    cat: Option<Child>,
}

impl Pipeline {
    /// An error once the writer has failed.
    fn check(&mut self, run_dir: &RunDir) -> Result<(), String> {
        match self.writer.try_wait() {
            Ok(Some(status)) if !status.success() => Err(format!(
                "the writer exited with {status}{}",
                run_dir.writer_said()
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot wait for the writer: {e}")),
        }
    }

    /// Waits for both to exit, successfully (their output is in the file by now); `cat`'s
    /// utime+stime in clock ticks, if there is a `cat`.
    fn finish(&mut self, run_dir: &RunDir) -> Result<Option<u64>, String> {
        wait_for(EXIT_DEADLINE, "the writer to exit", &mut || Ok(()), || {
            self.check(run_dir)?;
            Ok(matches!(self.writer.try_wait(), Ok(Some(_))))
        })?;
        let Some(cat) = self.cat.as_mut() else {
            return Ok(None);
        };
        let mut ticks = 0;
        wait_for(EXIT_DEADLINE, "cat to exit", &mut || Ok(()), || {
            let stat = proc_stat(cat.id())?;
            ticks = stat.ticks;
            Ok(stat.state == "Z")
        })?;
        match cat.wait() {
            Ok(status) if status.success() => Ok(Some(ticks)),
            Ok(status) => Err(format!("cat exited with {status}")),
            Err(e) => Err(format!("cannot wait for cat: {e}")),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.writer).chain(self.cat.as_mut()) {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A run under taskmaster or supervisord.
fn supervised_run(kind: Kind, tools: &Tools, run_dir: &RunDir, bytes: u64) -> Result<Run, String> {
    let mut daemon = Daemon::start(kind, tools, run_dir, bytes)?;
    let (pid, log) = (daemon.pid, daemon.log.clone());
    let mut check = || {
        daemon
            .check_alive()
            .map_err(|e| format!("{e}{}", run_dir.writer_said()))
    };
    wait_for(READY_DEADLINE, "the writer to start", &mut check, || {
        Ok(run_dir.signals.ready().exists())
    })?;
    let ticks_at_ready = cpu_ticks(pid)?;
    warm_memory(&run_dir.dir, bytes)?;
    run_dir.signals.let_go()?;
    let end_ns = wait_for_size(&run_dir.output, bytes, &mut check)?;
    let seconds = elapsed_s(run_dir.signals.started_ns()?, end_ns);
    let mut exit_line = None;
    wait_for(
        EXIT_DEADLINE,
        "the log to say the writer exited",
        &mut check,
        || {
            let text = fs::read_to_string(&log).unwrap_or_default();
            exit_line = text
                .lines()
                .find(|line| kind.is_exit_line(line))
                .map(str::to_owned);
            Ok(exit_line.is_some())
        },
    )?;
    let ticks_at_exit = cpu_ticks(pid)?;
    warn_on_failed_shutdown(kind, daemon.shutdown());
    if let Some(line) = exit_line.filter(|line| !kind.is_success(line)) {
        return Err(format!(
            "the writer failed: {line}{}",
            run_dir.writer_said()
        ));
    }
    Ok(Run {
        seconds,
        writer_cpu: run_dir.signals.writer_cpu_s()?,
        cat_cpu: None,
        daemon_cpu: Some(DaemonCpu {
            capture: tools.seconds_of(ticks_at_exit.saturating_sub(ticks_at_ready)),
            total: tools.seconds_of(ticks_at_exit),
        }),
    })
}

/// Calls `done` every [`POLL`], and `check` before, until `done` says so; an error past
/// `deadline` naming what was awaited.
fn wait_for(
    deadline: Duration,
    what: &str,
    check: &mut dyn FnMut() -> Result<(), String>,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let until = Instant::now() + deadline;
    loop {
        check()?;
        if done()? {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("waited {deadline:?} for {what}"));
        }
        sleep(POLL);
    }
}

/// Polls the file's size until it holds `bytes`; the CLOCK_MONOTONIC time it was seen, in ns.
fn wait_for_size(
    path: &Path,
    bytes: u64,
    check: &mut dyn FnMut() -> Result<(), String>,
) -> Result<u64, String> {
    let mut size = 0;
    let mut seen_at = 0;
    let what = format!("{} to hold {bytes} bytes", path.display());
    let outcome = wait_for(WRITE_DEADLINE, &what, check, || {
        size = match fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
        };
        seen_at = monotonic_ns();
        Ok(size >= bytes)
    });
    outcome.map_err(|e| format!("{e} (it holds {size})"))?;
    Ok(seen_at)
}

/// Whether the writer wrote where its kind says: into the output file itself, or into a pipe.
/// Without it, taskmaster's two ways could measure the same thing unnoticed.
fn check_stdout(kind: Kind, run_dir: &RunDir) -> Result<(), String> {
    let path = run_dir.signals.stdout();
    let stdout =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (right, expected) = if kind.writes_own_file() {
        // The link is the file's real path: the temporary directory's may go through a link.
        let output = fs::canonicalize(&run_dir.output)
            .map_err(|e| format!("cannot resolve {}: {e}", run_dir.output.display()))?;
        (
            Path::new(&stdout) == output.as_path(),
            "the output file itself",
        )
    } else {
        (stdout.starts_with("pipe:"), "a pipe")
    };
    if right {
        Ok(())
    } else {
        Err(format!("the writer's stdout was {stdout}, not {expected}"))
    }
}

/// Whether the file holds exactly what the writer wrote.
fn check_contents(path: &Path, bytes: u64) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    if size != bytes {
        return Err(format!("the file holds {size} bytes, not {bytes}"));
    }
    let mut expected = pattern_block();
    let mut found = vec![0u8; BLOCK];
    for index in 0..bytes / BLOCK as u64 {
        file.read_exact(&mut found)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        stamp(&mut expected, index);
        if found != expected {
            let offset = index * BLOCK as u64;
            let found_stamp = u64::from_le_bytes(stamp_of(&found));
            let what = if found_stamp == index {
                "has its own stamp but other bytes".to_string()
            } else {
                format!("holds block {found_stamp}'s stamp")
            };
            return Err(format!(
                "the file differs from what was written: block {index} (at byte {offset}) {what}"
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` (and a quarter more) to a scratch file in `dir` and deletes it, so that the
/// run's page cache is made of pages the machine has just used. In a virtual machine whose host
/// takes back memory the guest leaves free (free page reporting, virtio-balloon), a page cache
/// page the guest has not touched for a few seconds costs several times the copy into it: the
/// same 1 GiB write takes 0.3 s of system time or 2 s, by chance. Touching as much anonymous
/// memory and freeing it did not help when tried; reusing what the page cache has just freed
/// does.
fn warm_memory(dir: &Path, bytes: u64) -> Result<(), String> {
    let path = dir.join("warm-up");
    let mut file =
        File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let block = vec![0u8; BLOCK];
    let written = (0..(bytes + bytes / 4) / BLOCK as u64).try_for_each(|_| file.write_all(&block));
    let removed = fs::remove_file(&path);
    written
        .and(removed)
        .map_err(|e| format!("cannot warm up with {}: {e}", path.display()))
}

/// Flushes what the runs wrote to `dir`'s filesystem.
fn sync_filesystem(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = rustix::fs::syncfs(&dir);
    }
}

// ---- the writer ---------------------------------------------------------------------------

/// `output writer BYTES DIR`: notes what its stdout is in DIR/stdout, signals DIR/ready, waits
/// for DIR/go, notes its start in DIR/started, then writes BYTES (a multiple of [`BLOCK`]) to
/// stdout, a block per write.
fn writer_main(args: &[OsString]) -> ExitCode {
    match write_blocks(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("output writer: {e}");
            ExitCode::from(101)
        }
    }
}

fn write_blocks(args: &[OsString]) -> Result<(), String> {
    let [bytes, signals] = args else {
        return Err(format!("usage: output {WRITER_ARG} BYTES DIR"));
    };
    let bytes: u64 = bytes
        .to_str()
        .and_then(|b| b.parse().ok())
        .filter(|b| b % BLOCK as u64 == 0)
        .ok_or_else(|| format!("not a multiple of {BLOCK} bytes: {bytes:?}"))?;
    let signals = Signals(PathBuf::from(signals));
    let stdout = fs::read_link("/proc/self/fd/1")
        .map_err(|e| format!("cannot read the link /proc/self/fd/1: {e}"))?;
    fs::write(signals.stdout(), stdout.as_os_str().as_encoded_bytes())
        .map_err(|e| format!("cannot write {}: {e}", signals.stdout().display()))?;
    File::create(signals.ready())
        .map_err(|e| format!("cannot create {}: {e}", signals.ready().display()))?;
    let deadline = Instant::now() + GO_DEADLINE;
    while !signals.go().exists() {
        if Instant::now() >= deadline {
            return Err(format!(
                "no {} within {GO_DEADLINE:?}",
                signals.go().display()
            ));
        }
        sleep(POLL);
    }
    // Its own descriptor for stdout: Rust's `Stdout` would go through a line buffer.
    let mut out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| format!("cannot duplicate stdout: {e}"))?;
    let mut block = pattern_block();
    let cpu_at_start = cpu_ns();
    let started = monotonic_ns();
    fs::write(signals.started(), started.to_string())
        .map_err(|e| format!("cannot write {}: {e}", signals.started().display()))?;
    for index in 0..bytes / BLOCK as u64 {
        stamp(&mut block, index);
        out.write_all(&block)
            .map_err(|e| format!("cannot write block {index} to stdout: {e}"))?;
    }
    let cpu = cpu_ns().saturating_sub(cpu_at_start);
    fs::write(signals.writer_cpu(), cpu.to_string())
        .map_err(|e| format!("cannot write {}: {e}", signals.writer_cpu().display()))
}

/// The writer's block before its index is stamped on: the same pseudo-random bytes (xorshift64)
/// every time, so that a block in the wrong place cannot look right.
fn pattern_block() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = Vec::with_capacity(BLOCK);
    while block.len() < BLOCK {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.extend_from_slice(&state.to_le_bytes());
    }
    block
}

/// Writes the block's index over its first 8 bytes.
fn stamp(block: &mut [u8], index: u64) {
    block[..8].copy_from_slice(&index.to_le_bytes());
}

fn stamp_of(block: &[u8]) -> [u8; 8] {
    let mut stamp = [0u8; 8];
    stamp.copy_from_slice(&block[..8]);
    stamp
}

fn monotonic_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Monotonic)
}

/// The CPU time of this process, in ns.
fn cpu_ns() -> u64 {
    clock_ns(rustix::time::ClockId::ProcessCPUTime)
}

fn clock_ns(clock: rustix::time::ClockId) -> u64 {
    let now = rustix::time::clock_gettime(clock);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

fn elapsed_s(start_ns: u64, end_ns: u64) -> f64 {
    end_ns.saturating_sub(start_ns) as f64 / 1e9
}

// ---- supervisors --------------------------------------------------------------------------

/// taskmaster's configuration for the writer, and its event log's path: for
/// [`Kind::TaskmasterDirect`], no rotation, so the writer gets the file itself; for
/// [`Kind::TaskmasterPipe`], a rotation never reached, so it gets a pipe.
fn taskmaster_config(run_dir: &RunDir, argv: &[String], kind: Kind) -> (String, PathBuf) {
    let log = run_dir.dir.join("events.log");
    let yaml_quote = |s: &str| format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""));
    let mut text = format!(
        "logfile: {log}\n\
         programs:\n  \
           {PROGRAM}:\n    \
             cmd: {cmd}\n    \
             autostart: true\n    \
             autorestart: never\n    \
             starttime: 0\n    \
             stdout: {stdout}\n    \
             stderr: {stderr}\n",
        log = yaml_quote(&path_arg(&log)),
        cmd = yaml_quote(&command_line(argv)),
        stdout = yaml_quote(&path_arg(&run_dir.output)),
        stderr = yaml_quote(&path_arg(&run_dir.writer_errors)),
    );
    text += &match kind {
        Kind::TaskmasterDirect => "    stdout_maxbytes: 0\n".to_string(),
        _ => format!("    stdout_maxbytes: {PIPE_MAXBYTES}\n    stdout_backups: 1\n"),
    };
    (text, log)
}

/// supervisord's equivalent configuration, and its log's path.
fn supervisord_config(run_dir: &RunDir, argv: &[String]) -> (String, PathBuf) {
    let dir = &run_dir.dir;
    let log = dir.join("supervisord.log");
    let text = format!(
        "[supervisord]\n\
         nodaemon=true\n\
         logfile={log}\n\
         logfile_maxbytes=0\n\
         loglevel=info\n\
         pidfile={pidfile}\n\
         childlogdir={dir}\n\
         \n\
         [program:{PROGRAM}]\n\
         command={command}\n\
         autostart=true\n\
         autorestart=false\n\
         startsecs=0\n\
         startretries=0\n\
         stdout_logfile={stdout}\n\
         stdout_logfile_maxbytes=0\n\
         stdout_logfile_backups=0\n\
         stderr_logfile={stderr}\n\
         stderr_logfile_maxbytes=0\n\
         stderr_logfile_backups=0\n\
         \n\
         [unix_http_server]\n\
         file={socket}\n\
         \n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        log = path_arg(&log),
        pidfile = path_arg(&dir.join("supervisord.pid")),
        dir = path_arg(dir),
        // `%` starts an interpolation in supervisord's configuration files.
        command = command_line(argv).replace('%', "%%"),
        stdout = path_arg(&run_dir.output).replace('%', "%%"),
        stderr = path_arg(&run_dir.writer_errors).replace('%', "%%"),
        socket = path_arg(&dir.join("supervisor.sock")),
    );
    (text, log)
}

/// A command line, quoted so that both taskmaster (shell-words) and supervisord (shlex) split
/// it back into `argv`.
fn command_line(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect();
    words.join(" ")
}

/// A running supervisor. Dropping it stops it (see [`stop`]), so an early return cannot leave
/// one behind.
struct Daemon {
    kind: Kind,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    /// The daemon's own stdout and stderr.
    output: PathBuf,
}

impl Daemon {
    fn start(kind: Kind, tools: &Tools, run_dir: &RunDir, bytes: u64) -> Result<Daemon, String> {
        let argv = run_dir.writer_argv(tools, bytes);
        let (text, log, config) = match kind {
            Kind::TaskmasterDirect | Kind::TaskmasterPipe => {
                let (text, log) = taskmaster_config(run_dir, &argv, kind);
                (text, log, run_dir.dir.join("taskmaster.yaml"))
            }
            Kind::Supervisord => {
                let (text, log) = supervisord_config(run_dir, &argv);
                (text, log, run_dir.dir.join("supervisord.conf"))
            }
            Kind::File | Kind::Cat => return Err(format!("{} has no daemon", kind.name())),
        };
        fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut command = match kind {
            Kind::Supervisord => {
                let executable = tools.supervisord.as_ref().ok_or("no supervisord")?;
                let mut command = Command::new(&executable.0);
                command.arg("-n").arg("-c").arg(&config);
                command
            }
            _ => {
                let mut command = Command::new(&tools.taskmaster);
                command.arg("run").arg("-c").arg(&config).arg("--no-shell");
                command
            }
        };
        let output = run_dir.dir.join(format!("{}.out", kind.folder()));
        let stdout = File::create(&output)
            .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("cannot duplicate a descriptor: {e}"))?;
        command
            .current_dir(&run_dir.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Should the bench itself die, the daemon gets a SIGTERM and stops its writer rather
        // than outliving it.
        // SAFETY: between fork and exec only the prctl(2) system call runs: async-signal-safe,
        // and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                    .map_err(std::io::Error::from)
            });
        }
        let child = command.spawn().map_err(|e| {
            format!(
                "cannot start {}: {e}",
                command.get_program().to_string_lossy()
            )
        })?;
        Ok(Daemon {
            kind,
            pid: child.id(),
            child: Some(child),
            log,
            output,
        })
    }

    /// An error, with the end of the daemon's output, if it has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} has been stopped", self.kind.name()));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                let output = fs::read_to_string(&self.output).unwrap_or_default();
                let last: Vec<&str> = output.lines().rev().take(5).collect();
                let last: Vec<&str> = last.into_iter().rev().collect();
                Err(format!(
                    "{} exited early ({status}); its output ends with: {}",
                    self.kind.name(),
                    last.join(" | ")
                ))
            }
            Err(e) => Err(format!("cannot wait for {}: {e}", self.kind.name())),
        }
    }

    /// SIGTERM, and the time the daemon took to exit (successfully) after it.
    fn shutdown(mut self) -> Result<Duration, String> {
        match self.child.take() {
            Some(mut child) => stop(&mut child, self.kind),
            None => Err(format!("{} had already exited", self.kind.name())),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            warn_on_failed_shutdown(self.kind, stop(&mut child, self.kind));
        }
    }
}

fn warn_on_failed_shutdown(kind: Kind, outcome: Result<Duration, String>) {
    if let Err(e) = outcome {
        println!("  warning: {} shutdown: {e}", kind.name());
    }
}

/// utime + stime of a process, in clock ticks: every thread's, ended ones included.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    Ok(proc_stat(pid)?.ticks)
}

/// What /proc/PID/stat says of a process.
struct ProcStat {
    /// `R`, `S`, ..., `Z` for a zombie (exited, not yet reaped: its times are final).
    state: String,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

fn proc_stat(pid: u32) -> Result<ProcStat, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // The command name (field 2) may hold spaces but ends at the last `)`; the rest is fields 3
    // (state) onwards, so field N is at index N - 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: no field {n}"))
    };
    Ok(ProcStat {
        state: fields.first().map_or_else(String::new, |s| s.to_string()),
        ticks: field(14)? + field(15)?,
    })
}

// ---- set-up -------------------------------------------------------------------------------

/// What the bench runs.
struct Tools {
    taskmaster: PathBuf,
    /// This binary, which is also the writer.
    bench: PathBuf,
    /// supervisord's executable and where it was found; `None` when it was not.
    supervisord: Option<(PathBuf, &'static str)>,
    /// Clock ticks per second for /proc/PID/stat, and where that number comes from.
    clk_tck: (u64, &'static str),
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let clk_tck = Command::new("getconf")
            .arg("CLK_TCK")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .map_or((100, "assumed: `getconf CLK_TCK` failed"), |ticks| {
                (ticks, "from getconf")
            });
        let taskmaster = PathBuf::from(env!("CARGO_BIN_EXE_taskmaster"));
        let bench = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        Ok(Tools {
            supervisord: find_supervisord(&taskmaster),
            taskmaster,
            bench,
            clk_tck,
        })
    }

    /// Clock ticks of /proc/PID/stat in seconds.
    fn seconds_of(&self, ticks: u64) -> f64 {
        ticks as f64 / self.clk_tck.0 as f64
    }

    fn print(&self) {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        println!(
            "taskmaster output benchmark: {cpus} CPU(s), Linux {}, {} clock ticks/s ({}), \
             load average {} at start (figures need an otherwise idle machine)",
            kernel.trim(),
            self.clk_tck.0,
            self.clk_tck.1,
            load_average()
        );
        println!("  taskmaster:  {}", self.taskmaster.display());
        println!(
            "               direct: `stdout_maxbytes: 0`; pipe: `stdout_maxbytes: \
             {PIPE_MAXBYTES}`, `stdout_backups: 1` (never reached)"
        );
        println!(
            "  writer:      {} {WRITER_ARG} BYTES DIR (1 MiB writes)",
            self.bench.display()
        );
        match &self.supervisord {
            Some((path, source)) => {
                let version = Command::new(path)
                    .arg("--version")
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .ok()
                    .and_then(|out| String::from_utf8(out.stdout).ok())
                    .map_or_else(|| "version unknown".to_string(), |v| v.trim().to_string());
                println!("  supervisord: {} ({version}, {source})", path.display());
            }
            None => println!(
                "  supervisord: not measured (set SUPERVISORD, or run scripts/bench once to make \
                 target/bench-venv)"
            ),
        }
    }
}

/// supervisord from `SUPERVISORD`, or else from the venv `scripts/bench` makes in the target
/// folder (the one taskmaster was built in).
fn find_supervisord(taskmaster: &Path) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = std::env::var_os("SUPERVISORD").filter(|s| !s.is_empty()) {
        return Some((PathBuf::from(path), "from SUPERVISORD"));
    }
    let target = taskmaster.parent()?.parent()?;
    let venv = target.join("bench-venv/bin/supervisord");
    venv.is_file().then_some((venv, "scripts/bench's venv"))
}

fn temp_dir() -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix("taskmaster-bench-output-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

fn load_average() -> String {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().next().unwrap_or("?").to_string()
}

/// A path as a string, for a configuration file or a command line.
fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

// ---- the summary --------------------------------------------------------------------------

fn print_summary(tools: &Tools, bytes: u64, results: &Results) {
    let runs = |kind: Kind| results.runs[kind.column()].as_slice();
    let sv_measured = !runs(Kind::Supervisord).is_empty();
    let per_gib = |seconds: f64| seconds * GIB / bytes as f64;
    // One figure's medians, by kind.
    let figure =
        |value: &dyn Fn(&Run) -> Option<f64>| Kind::ALL.map(|kind| median(runs(kind), value));
    let throughput = figure(&|r| Some(r.throughput_mib_s(bytes)));
    let to_file = throughput.map(|tp| ratio(tp, throughput[Kind::File.column()]));
    let to_cat = throughput.map(|tp| ratio(tp, throughput[Kind::Cat.column()]));
    let seconds = figure(&|r| Some(r.seconds));
    let copier_cpu = figure(&|r| r.copier_cpu_s_per_gib(bytes));
    let daemon_total = figure(&|r| r.daemon_cpu.as_ref().map(|c| per_gib(c.total)));
    let writer_cpu = figure(&|r| Some(r.writer_cpu_s_per_gib(bytes)));
    // The one copy into the page cache that a capture through a pipe pays again.
    let one_copy = writer_cpu[Kind::File.column()];
    let to_one_copy = copier_cpu.map(|cpu| ratio(cpu, one_copy));

    // The cells of a row: each kind's figure, where `with` says the row has one.
    let cells = |values: [Option<f64>; 5], with: fn(Kind) -> bool, fmt: fn(f64) -> String| {
        Kind::ALL
            .iter()
            .zip(values)
            .map(|(&kind, value)| match (with(kind), value) {
                (false, _) => "-".to_string(),
                (true, _) if kind == Kind::Supervisord && !sv_measured => "-".to_string(),
                (true, None) => "error".to_string(),
                (true, Some(v)) => fmt(v),
            })
            .collect::<Vec<String>>()
    };
    let all = |_| true;
    let supervised = |kind: Kind| kind.is_taskmaster() || kind == Kind::Supervisord;
    let copied = |kind: Kind| kind != Kind::File;
    let ratios = |r| fmt_ratio(Some(r));
    let rows: Vec<(&str, Vec<String>)> = vec![
        ("throughput", cells(throughput, all, fmt_mib_s)),
        ("  / writer > FILE's", cells(to_file, all, ratios)),
        ("  / writer | cat's", cells(to_cat, all, ratios)),
        ("writer's start → file complete", cells(seconds, all, fmt_s)),
        (
            "CPU per GiB: cat's, the daemon's",
            cells(copier_cpu, copied, fmt_s),
        ),
        (
            "  / one copy (writer > FILE's writer CPU)",
            cells(to_one_copy, copied, ratios),
        ),
        (
            "  the daemon's, with its start",
            cells(daemon_total, supervised, fmt_s),
        ),
        ("writer's CPU per GiB", cells(writer_cpu, all, fmt_s)),
    ];
    let mut header = vec!["figure".to_string()];
    header.extend(Kind::ALL.map(|kind| kind.name().to_string()));
    let lines: Vec<Vec<String>> = std::iter::once(header)
        .chain(rows.into_iter().map(|(what, cells)| {
            let mut line = vec![what.to_string()];
            line.extend(cells);
            line
        }))
        .collect();
    println!(
        "\nsummary: {} written by one child in 1 MiB writes; medians of {ROUNDS} runs, 1 for \
         supervisord; load average {} at the end",
        fmt_size(bytes as f64),
        load_average()
    );
    print_table(&lines);

    let direct = Kind::TaskmasterDirect.column();
    let pipe = Kind::TaskmasterPipe.column();
    let targets = [
        (
            "taskmaster direct: throughput / writer > FILE's",
            format!(">= {TARGET_DIRECT_RATIO}"),
            fmt_ratio(to_file[direct]),
            verdict(to_file[direct], |r| r >= TARGET_DIRECT_RATIO),
        ),
        (
            "taskmaster direct: daemon CPU per GiB",
            format!("< {}", fmt_s(TARGET_DIRECT_CPU_S_PER_GIB)),
            opt(copier_cpu[direct], fmt_s),
            verdict(copier_cpu[direct], |c| c < TARGET_DIRECT_CPU_S_PER_GIB),
        ),
        (
            "taskmaster pipe: daemon CPU / one copy",
            format!("<= {TARGET_PIPE_CPU_RATIO}x"),
            fmt_ratio(to_one_copy[pipe]),
            verdict(to_one_copy[pipe], |r| r <= TARGET_PIPE_CPU_RATIO),
        ),
    ];
    let header = ["target", "wanted", "measured", "verdict"].map(String::from);
    let lines: Vec<Vec<String>> = std::iter::once(header.to_vec())
        .chain(
            targets
                .into_iter()
                .map(|(what, wanted, measured, verdict)| {
                    vec![what.to_string(), wanted, measured, verdict.to_string()]
                }),
        )
        .collect();
    println!();
    print_table(&lines);
    println!(
        "\nCPU of cat and of a daemon (all its threads, from its writer's `ready` on): utime+stime \
         in /proc/PID/stat, in steps of {} ({} ticks/s). The writer's: CLOCK_PROCESS_CPUTIME_ID \
         over its writes.",
        fmt_s(1.0 / tools.clk_tck.0 as f64),
        tools.clk_tck.0,
    );
    println!(
        "One copy: a capture through a pipe copies each byte into the page cache once (splice \
         from a pipe to a file copies too); that copy alone is the writer's CPU for `writer > \
         FILE`, {} per GiB here.",
        opt(one_copy, fmt_s)
    );
    if bytes != FULL_BYTES {
        println!(
            "note: {} per run, not 1 GiB (little free space); figures per GiB are scaled",
            fmt_size(bytes as f64)
        );
    }
    if !sv_measured {
        println!("supervisord: not measured (set SUPERVISORD, or run scripts/bench once)");
    }
}

/// PASS or MISS for a target; `error` without a figure.
fn verdict(value: Option<f64>, met: impl Fn(f64) -> bool) -> &'static str {
    match value {
        Some(value) if met(value) => "PASS",
        Some(_) => "MISS",
        None => "error",
    }
}

/// Prints rows of cells in columns: the first line is the header, the first column is aligned
/// left and the others right.
fn print_table(lines: &[Vec<String>]) {
    let mut widths = vec![0usize; lines[0].len()];
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let text = |line: &[String]| {
        let mut text = String::new();
        for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
            if i == 0 {
                text += &format!("{cell:<width$}");
            } else {
                text += &format!("  {cell:>width$}");
            }
        }
        text
    };
    println!("{}", text(&lines[0]));
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for line in &lines[1..] {
        println!("{}", text(line));
    }
}

/// The median of a figure over the successful runs (the upper one of an even count).
fn median(runs: &[Result<Run, String>], figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let mut values: Vec<f64> = runs
        .iter()
        .filter_map(|r| figure(r.as_ref().ok()?))
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_s(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 0.1 {
        format!("{s:.2} s")
    } else {
        format!("{s:.3} s")
    }
}

fn fmt_mib_s(mib_s: f64) -> String {
    format!("{mib_s:.0} MiB/s")
}

fn fmt_size(bytes: f64) -> String {
    if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else {
        format!("{:.0} MiB", bytes / MIB)
    }
}

/// A ratio to three significant figures, e.g. `1.58x`, `0.0953x`.
fn fmt_ratio(ratio: Option<f64>) -> String {
    match ratio {
        None => "-".to_string(),
        Some(r) if r >= 100.0 => format!("{r:.0}x"),
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) if r >= 1.0 || r == 0.0 => format!("{r:.2}x"),
        Some(r) => {
            let decimals = (2.0 - r.log10().floor()) as usize;
            format!("{r:.decimals$}x")
        }
    }
}

fn opt(value: Option<f64>, fmt: fn(f64) -> String) -> String {
    value.map_or_else(|| "error".to_string(), fmt)
}

/// Stops a daemon of this benchmark ([`common::stop`]).
fn stop(child: &mut Child, kind: Kind) -> Result<Duration, String> {
    common::stop(child, kind.name(), SHUTDOWN_DEADLINE, POLL)
}
