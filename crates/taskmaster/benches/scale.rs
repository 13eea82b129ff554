//! How the daemon scales with the number of programs (`cargo bench -p taskmaster --bench
//! scale`; `-- --pair` adds a run of the largest size under `run --pair`, `-- --only N` runs
//! one size). For N = 100, 1,000 and 10,000 programs, each `sleep 86400` with `starttime: 0`
//! and the default output (discarded), it measures:
//!
//! 1. **to RUNNING**: from spawning `taskmaster run --no-shell` until its event log holds N
//!    RUNNING lines (read every [`POLL`]). Floor, in the same run: the bench spawning the N
//!    sleeps itself with `std::process::Command` (own process group, stdio `/dev/null`, as
//!    taskmaster gives them), then killing and reaping them by pid.
//! 2. **`ctl status`**: the wall time of `taskmaster ctl -s SOCKET status`, a whole client
//!    process listing every process, median of [`STATUS_CALLS`].
//! 3. **reload of one change**: the configuration is rewritten with program `p00000`'s `cmd`
//!    changed, then `taskmaster ctl reload` is run; figures: the wall time of that call (the
//!    daemon answers once the file is read and the difference applied), and the time from the
//!    call until the event log says `p00000` is RUNNING again.
//! 4. **daemon RSS** (VmRSS) once all are RUNNING, and after the reload.
//! 5. **shutdown**: SIGTERM until the daemon has exited, every process stopped.
//!
//! Each figure is also printed per program (divided by N), and as the ratio of each size's
//! per-program cost to the smallest's: linear growth keeps the per-program cost constant
//! (ratio near 1). Targets, for 10,000 programs: all RUNNING under 8 s, `ctl status` under
//! 100 ms, the reload applied under 100 ms, shutdown under 8 s, RSS under 60 MiB; printed
//! PASS/MISS, never failing the run (a measurement, not a test). The exit status is non-zero
//! only when a figure could not be taken.
//!
//! The bench is a child subreaper: should a daemon die before its children (with `--pair`, a
//! primary its backup took for hung), they come to the bench, which kills them by pid (its own
//! unreaped children: no pid can be reused meanwhile) and reaps them after the run, saying so.
//!
//! Limits: each supervised child costs the daemon one pidfd (no pipe: output is discarded);
//! the bench raises its own RLIMIT_NOFILE (inherited by the daemon) to what N needs, up to the
//! hard limit, and checks `kernel.pid_max` against N. Every process started here is ended by
//! its pid: the floor's sleeps by SIGKILL and wait; the daemon by SIGTERM (past a deadline,
//! SIGSTOP, then SIGKILL for its children and itself), and it gets SIGTERM should the bench
//! die. Every spawn loop is bounded by N.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tempfile::TempDir;

mod common;
use common::percentile;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const STATUS_CALLS: usize = 9;
const POLL: Duration = Duration::from_millis(5);
const START_DEADLINE: Duration = Duration::from_secs(300);
const RELOAD_DEADLINE: Duration = Duration::from_secs(60);
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(300);
/// The sleep every program runs, and the one the reload gives `p00000` instead.
const SLEEP: &str = "86400";
const SLEEP_CHANGED: &str = "86401";

const TARGET_START_MS: f64 = 8_000.0;
const TARGET_STATUS_MS: f64 = 100.0;
const TARGET_RELOAD_MS: f64 = 100.0;
const TARGET_SHUTDOWN_MS: f64 = 8_000.0;
const TARGET_RSS_MIB: f64 = 60.0;
/// Longer than the daemon's wait before it gives back unused memory (3 s after its last
/// activity).
const IDLE_RELEASE_WAIT: Duration = Duration::from_secs(4);

/// Every figure of one size.
#[derive(Clone)]
struct Figures {
    n: usize,
    pair: bool,
    floor_ms: f64,
    start_ms: f64,
    status_ms: f64,
    reload_call_ms: f64,
    reload_running_ms: f64,
    shutdown_ms: f64,
    rss_mib: f64,
    rss_after_reload_mib: f64,
    /// Once the daemon is idle after the reload (it gives back unused memory 3 s after its
    /// last activity).
    rss_idle_mib: f64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let with_pair = args.iter().any(|a| a == "--pair");
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let sizes: Vec<usize> = match only {
        Some(n) => vec![n],
        None => SIZES.to_vec(),
    };
    let largest = *sizes.iter().max().unwrap_or(&0);
    let taskmaster = PathBuf::from(env!("CARGO_BIN_EXE_taskmaster"));
    let Some(sleep_bin) = find_sleep() else {
        eprintln!("scale: no sleep executable in /bin or /usr/bin");
        return ExitCode::FAILURE;
    };
    if let Err(e) = check_limits(largest) {
        eprintln!("scale: {e}");
        return ExitCode::FAILURE;
    }
    // The children of a daemon that dies before them (a primary its backup killed) come to
    // the bench, which ends them (see `end_leftovers`).
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        eprintln!("scale: cannot become a child subreaper: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "scale: N programs of `{} {SLEEP}` (starttime 0, output discarded); load average: {}",
        sleep_bin.display(),
        load_average()
    );
    let mut rows = Vec::new();
    let mut runs: Vec<(usize, bool)> = sizes.iter().map(|&n| (n, false)).collect();
    if with_pair {
        runs.push((largest, true));
    }
    for (n, pair) in runs {
        let label = if pair { " (--pair)" } else { "" };
        println!("\nN = {n}{label}");
        let floor = match floor(n, &sleep_bin) {
            Ok(d) => ms(d),
            Err(e) => {
                eprintln!("scale: floor, N = {n}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("  floor (the bench spawning {n} sleeps)  {floor:>9.1} ms");
        let result = supervised(n, pair, &taskmaster, &sleep_bin);
        let leftovers = end_leftovers();
        if leftovers > 0 {
            println!("  {leftovers} process(es) left under the bench: killed by pid and reaped");
        }
        match result {
            Ok(mut figures) => {
                figures.floor_ms = floor;
                rows.push(figures);
            }
            Err(e) => {
                eprintln!("scale: taskmaster, N = {n}{label}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_summary(&rows);
    println!("\nload average at the end: {}", load_average());
    ExitCode::SUCCESS
}

/// Ends what a run left under the bench, which is their subreaper: the children of a primary
/// its backup killed, the backup. Each is our child and not reaped, so its pid is still its
/// own when it is signalled; then it is reaped. At most 10 rounds. How many were killed.
fn end_leftovers() -> usize {
    use rustix::process::{wait, WaitOptions};
    let reap = || while let Ok(Some(_)) = wait(WaitOptions::NOHANG) {};
    let bench = std::process::id();
    // A backup whose primary shut down exits by itself: a second for that first.
    for _ in 0..20 {
        reap();
        if common::children_of(bench).is_empty() {
            return 0;
        }
        sleep(Duration::from_millis(50));
    }
    let mut killed = 0;
    for _ in 0..10 {
        reap();
        let left = common::children_of(bench);
        if left.is_empty() {
            break;
        }
        for &pid in &left {
            let _ = common::send(pid, Signal::KILL);
        }
        killed += left.len();
        sleep(Duration::from_millis(100));
    }
    reap();
    killed
}

/// `sleep`, from the usual places.
fn find_sleep() -> Option<PathBuf> {
    ["/bin/sleep", "/usr/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// RLIMIT_NOFILE raised (to the hard limit at most) so that the daemon, which inherits it,
/// can hold a pidfd per child; `kernel.pid_max` checked against `n`.
fn check_limits(n: usize) -> Result<(), String> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let needed = n as u64 + 1024;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if soft >= needed {
        println!("open files: soft limit {soft}, enough for {n} children (needed {needed})");
    } else if hard < needed {
        return Err(format!(
            "open files: hard limit {hard}, below the {needed} that {n} children need"
        ));
    } else {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(needed),
                maximum: limit.maximum,
            },
        )
        .map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
        println!("open files: soft limit raised from {soft} to {needed} (hard {hard})");
    }
    let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(32_768);
    if pid_max < 2 * n as u64 + 1024 {
        return Err(format!(
            "kernel.pid_max is {pid_max}: too few pids for {n} children"
        ));
    }
    println!("kernel.pid_max: {pid_max}");
    Ok(())
}

/// The floor: the bench spawns `n` sleeps itself, then kills and reaps them.
fn floor(n: usize, sleep_bin: &Path) -> Result<Duration, String> {
    let mut children = Sleeps(Vec::with_capacity(n));
    let started = Instant::now();
    for _ in 0..n {
        let child = Command::new(sleep_bin)
            .arg(SLEEP)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", sleep_bin.display()))?;
        children.0.push(child);
    }
    let took = started.elapsed();
    drop(children);
    Ok(took)
}

/// The floor's sleeps, killed by pid and reaped when dropped.
struct Sleeps(Vec<Child>);

impl Drop for Sleeps {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// The configuration: `n` programs `p00000`..., `p00000`'s sleep being `first`.
fn configuration(n: usize, dir: &Path, sleep_bin: &Path, first: &str) -> String {
    let mut text = format!(
        "logfile: \"{}\"\nprograms:\n",
        dir.join("events.log").display()
    );
    for i in 0..n {
        let seconds = if i == 0 { first } else { SLEEP };
        text.push_str(&format!(
            "  p{i:05}:\n    cmd: \"{} {seconds}\"\n    starttime: 0\n",
            sleep_bin.display()
        ));
    }
    text
}

fn supervised(
    n: usize,
    pair: bool,
    taskmaster: &Path,
    sleep_bin: &Path,
) -> Result<Figures, String> {
    let dir = tempfile::Builder::new()
        .prefix("taskmaster-scale-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let config = dir.path().join("taskmaster.yaml");
    fs::write(&config, configuration(n, dir.path(), sleep_bin, SLEEP))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let socket = dir.path().join("taskmaster.sock");
    let mut daemon = Daemon::start(taskmaster, &dir, &config, pair)?;
    let mut log = LogTail::new(&dir.path().join("events.log"));

    // 1. To RUNNING.
    let mut seen = 0;
    let deadline = daemon.spawned_at + START_DEADLINE;
    let start = loop {
        seen += log
            .new_lines()?
            .iter()
            .filter(|l| l.ends_with(": RUNNING"))
            .count();
        if seen >= n {
            break daemon.spawned_at.elapsed();
        }
        daemon.check_alive()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "only {seen} of {n} RUNNING within {START_DEADLINE:?}"
            ));
        }
        sleep(POLL);
    };
    println!(
        "  taskmaster: all {n} RUNNING            {:>9.1} ms",
        ms(start)
    );
    if pair {
        // The backup connected (and sent the state) before anything else is measured.
        let deadline = Instant::now() + START_DEADLINE;
        let mut whole = fs::read_to_string(dir.path().join("events.log")).unwrap_or_default();
        while !whole.contains("the backup is connected") {
            if Instant::now() >= deadline {
                return Err("the backup never connected".to_string());
            }
            sleep(POLL);
            whole = fs::read_to_string(dir.path().join("events.log")).unwrap_or_default();
        }
        sleep(Duration::from_millis(500));
    }
    let rss_mib = read_rss_mib(daemon.pid)?;
    println!("  daemon RSS                          {rss_mib:>9.1} MiB");

    // 2. ctl status.
    let mut calls = Vec::with_capacity(STATUS_CALLS);
    for _ in 0..STATUS_CALLS {
        let (took, status, out) = ctl(taskmaster, &socket, &["status"])?;
        if !status.success() {
            return Err(format!("ctl status exited with {status}"));
        }
        let lines = out.lines().filter(|l| l.contains("RUNNING")).count();
        if lines < n {
            return Err(format!("ctl status listed {lines} RUNNING of {n}"));
        }
        calls.push(ms(took));
    }
    calls.sort_by(f64::total_cmp);
    let status_ms = percentile(&calls, 0.5);
    println!(
        "  ctl status, median of {STATUS_CALLS}              {status_ms:>9.1} ms (min {:.1}, max {:.1})",
        calls[0],
        calls[calls.len() - 1]
    );

    // 3. A reload changing one program.
    fs::write(
        &config,
        configuration(n, dir.path(), sleep_bin, SLEEP_CHANGED),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    log.new_lines()?; // what came before
    let asked = Instant::now();
    let (reload_call, status, out) = ctl(taskmaster, &socket, &["reload"])?;
    if !status.success() {
        return Err(format!("ctl reload exited with {status}: {out}"));
    }
    let deadline = asked + RELOAD_DEADLINE;
    let reload_running = loop {
        if log
            .new_lines()?
            .iter()
            .any(|l| l.ends_with("p00000: RUNNING"))
        {
            break asked.elapsed();
        }
        daemon.check_alive()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "p00000 not RUNNING {RELOAD_DEADLINE:?} after the reload"
            ));
        }
        sleep(Duration::from_millis(1));
    };
    println!(
        "  ctl reload (one cmd changed)        {:>9.1} ms; p00000 RUNNING again after {:.1} ms ({})",
        ms(reload_call),
        ms(reload_running),
        out.trim()
    );
    let rss_after_reload_mib = read_rss_mib(daemon.pid)?;
    sleep(IDLE_RELEASE_WAIT);
    let rss_idle_mib = read_rss_mib(daemon.pid)?;
    println!(
        "  daemon RSS after the reload         {rss_after_reload_mib:>9.1} MiB; \
         {IDLE_RELEASE_WAIT:?} later, idle: {rss_idle_mib:.1} MiB"
    );

    // 5. Shutdown.
    // A failed shutdown is a figure too (NaN, a MISS), not the end of the run.
    let shutdown = match daemon.shutdown() {
        Ok(took) => {
            println!("  shutdown (SIGTERM to exit)          {:>9.1} ms", ms(took));
            ms(took)
        }
        Err(e) => {
            println!("  shutdown FAILED: {e}");
            f64::NAN
        }
    };
    Ok(Figures {
        n,
        pair,
        floor_ms: 0.0,
        start_ms: ms(start),
        status_ms,
        reload_call_ms: ms(reload_call),
        reload_running_ms: ms(reload_running),
        shutdown_ms: shutdown,
        rss_mib,
        rss_after_reload_mib,
        rss_idle_mib,
    })
}

/// Runs `taskmaster ctl -s SOCKET ARGS`: its wall time, exit status and stdout.
fn ctl(
    taskmaster: &Path,
    socket: &Path,
    args: &[&str],
) -> Result<(Duration, std::process::ExitStatus, String), String> {
    let started = Instant::now();
    let output = Command::new(taskmaster)
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run taskmaster ctl: {e}"))?;
    let took = started.elapsed();
    Ok((
        took,
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

fn read_rss_mib(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn print_summary(rows: &[Figures]) {
    let Some(base) = rows.iter().find(|r| !r.pair) else {
        return;
    };
    println!(
        "\nper program (figure / N), and that per-program cost against N = {}'s:",
        base.n
    );
    println!(
        "{:<14}{:>22}{:>22}{:>22}{:>24}{:>22}{:>14}",
        "N",
        "floor µs/prog",
        "RUNNING µs/prog",
        "status µs/prog",
        "reload call µs/prog",
        "shutdown µs/prog",
        "RSS KiB/prog"
    );
    let per = |v: f64, n: usize| v * 1000.0 / n as f64;
    for r in rows {
        let cell =
            |v: f64, b: f64| format!("{:.1} ({:.2}x)", per(v, r.n), per(v, r.n) / per(b, base.n));
        let label = format!("{}{}", r.n, if r.pair { " --pair" } else { "" });
        println!(
            "{:<14}{:>22}{:>22}{:>22}{:>24}{:>22}{:>14.1}",
            label,
            cell(r.floor_ms, base.floor_ms),
            cell(r.start_ms, base.start_ms),
            cell(r.status_ms, base.status_ms),
            cell(r.reload_call_ms, base.reload_call_ms),
            cell(r.shutdown_ms, base.shutdown_ms),
            r.rss_mib * 1024.0 / r.n as f64,
        );
    }
    println!("\nfigures:");
    println!(
        "{:<14}{:>11}{:>13}{:>10}{:>11}{:>16}{:>11}{:>10}{:>14}{:>10}",
        "N",
        "floor ms",
        "RUNNING ms",
        "x floor",
        "status ms",
        "reload ms/up ms",
        "shutdown",
        "RSS MiB",
        "RSS reload",
        "RSS idle"
    );
    for r in rows {
        let label = format!("{}{}", r.n, if r.pair { " --pair" } else { "" });
        println!(
            "{:<14}{:>11.1}{:>13.1}{:>9.2}x{:>11.1}{:>16}{:>11.1}{:>10.1}{:>14.1}{:>10.1}",
            label,
            r.floor_ms,
            r.start_ms,
            r.start_ms / r.floor_ms,
            r.status_ms,
            format!("{:.1}/{:.1}", r.reload_call_ms, r.reload_running_ms),
            r.shutdown_ms,
            r.rss_mib,
            r.rss_after_reload_mib,
            r.rss_idle_mib
        );
    }
    for r in rows.iter().filter(|r| r.n == 10_000) {
        let label = if r.pair { " (--pair)" } else { "" };
        println!("\ntargets, 10,000 programs{label}:");
        let verdict = |v: f64, limit: f64| if v < limit { "PASS" } else { "MISS" };
        println!(
            "  all RUNNING < 8 s:        {:>9.1} ms  {}",
            r.start_ms,
            verdict(r.start_ms, TARGET_START_MS)
        );
        println!(
            "  ctl status < 100 ms:      {:>9.1} ms  {}",
            r.status_ms,
            verdict(r.status_ms, TARGET_STATUS_MS)
        );
        println!(
            "  reload applied < 100 ms:  {:>9.1} ms  {} (the changed program RUNNING again: {:.1} ms, {})",
            r.reload_call_ms,
            verdict(r.reload_call_ms, TARGET_RELOAD_MS),
            r.reload_running_ms,
            verdict(r.reload_running_ms, TARGET_RELOAD_MS)
        );
        println!(
            "  shutdown < 8 s:           {:>9.1} ms  {}",
            r.shutdown_ms,
            verdict(r.shutdown_ms, TARGET_SHUTDOWN_MS)
        );
        println!(
            "  daemon RSS < 60 MiB:      {:>9.1} MiB {} (after the reload: {:.1} MiB, {}; \
             idle after it: {:.1} MiB, {})",
            r.rss_mib,
            verdict(r.rss_mib, TARGET_RSS_MIB),
            r.rss_after_reload_mib,
            verdict(r.rss_after_reload_mib, TARGET_RSS_MIB),
            r.rss_idle_mib,
            verdict(r.rss_idle_mib, TARGET_RSS_MIB)
        );
    }
}

/// `taskmaster run --no-shell` (`--pair`), stopped (by pid) when dropped.
struct Daemon {
    child: Option<Child>,
    pid: u32,
    spawned_at: Instant,
    output: PathBuf,
}

impl Daemon {
    fn start(
        taskmaster: &Path,
        dir: &TempDir,
        config: &Path,
        pair: bool,
    ) -> Result<Daemon, String> {
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
        if pair {
            command.arg("--pair");
        }
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
            pid: child.id(),
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

/// Reads what has been appended to a file since the last call, a complete line at a time.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn new_lines(&mut self) -> Result<Vec<String>, String> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot open {}: {e}", self.path.display())),
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        Ok(String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
