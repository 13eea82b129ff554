//! Benchmark of the real daemon (`cargo bench -p taskmaster --bench supervise`; `scripts/bench`
//! adds supervisord). Each figure is printed beside a floor measured in the same run: the bench
//! doing the same work itself with `std::process::Command`, which no supervisor can beat.
//!
//! 1. **Restart latency.** One program, `tm-fixture stamp FILE exit 0`, `starttime: 0`,
//!    `autorestart: always`, `backoff: off` (every restart at once, as supervisord's: the
//!    default crash-loop throttle would space them after the first). Each instance appends
//!    CLOCK_MONOTONIC to FILE just before it exits, so the gap between two consecutive stamps
//!    is exit → reap → respawn → exec → stamp.
//!    200 restarts (201 stamps): median and p99 (nearest rank). Floor: the same fixture run 201
//!    times by a `Command::status()` loop. Target: median under 2 ms.
//! 2. **Mass start.** 1000 processes of `tm-fixture sleep forever` (`numprocs: 1000`,
//!    `starttime: 0`): the time from spawning the daemon until its event log holds 1000 RUNNING
//!    lines (polled every 5 ms). Floor: the bench spawning the 1000 sleepers itself. Target: 1 s.
//! 3. **Idle cost.** 100 sleepers, all RUNNING, then a 10 s window in which nothing happens: the
//!    daemon's CPU time over the window, from utime+stime in /proc/PID/stat (clock ticks, so
//!    10 ms steps) and, more precisely, from /proc/PID/task/*/schedstat (ns), and its VmRSS at
//!    both ends. Target: under 10 ms of CPU (judged on schedstat when the kernel has it).
//! 4. **Control latency.** 100 sleepers, all RUNNING, then 50 runs of `taskmaster ctl status`,
//!    each a whole client process, as a user or a script runs it: median and p99. Target:
//!    median under 10 ms. supervisord's figure is `supervisorctl status`.
//! 5. **supervisord**, when `SUPERVISORD` names its executable, runs 1-4 from an equivalent
//!    supervisord.conf (supervisorctl is taken from the same folder). It gets 10 restarts
//!    instead of 200: it takes about a second for each.
//!
//! Targets are printed PASS/MISS; a miss never fails the run, since this is a measurement, not
//! a test. The exit status is non-zero only when a taskmaster figure could not be measured at
//! all. Every process started here is ended by its pid: a daemon by SIGTERM (and, past a
//! deadline, SIGKILL for it and its children; it also gets SIGTERM should the bench die), the
//! floor's own children by kill and wait.

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

const RESTARTS: usize = 200;
const SUPERVISORD_RESTARTS: usize = 10;
const MASS_PROCS: u32 = 1000;
const IDLE_PROCS: u32 = 100;
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// Left to pass between the last RUNNING line and the idle window: the start's tail, and the
/// daemon's release of unused memory 3 s after its last activity (README, "Where an idle
/// daemon's memory goes"), which the window would otherwise count. Its CPU is shown apart.
const IDLE_SETTLE: Duration = Duration::from_secs(4);

const RESTART_DEADLINE: Duration = Duration::from_secs(30);
const START_DEADLINE: Duration = Duration::from_secs(60);
/// For a daemon to exit after SIGTERM (supervisord needs ~10 s to stop 1000 processes).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

const TARGET_RESTART_MEDIAN_MS: f64 = 2.0;
const TARGET_MASS_START_MS: f64 = 1000.0;
const TARGET_IDLE_CPU_MS: f64 = 10.0;
const STATUS_CALLS: usize = 50;
const TARGET_STATUS_MEDIAN_MS: f64 = 10.0;

fn main() -> ExitCode {
    let tools = Tools::find();
    tools.print();
    let restart = restart_latency(&tools);
    let mass = mass_start(&tools);
    let idle = idle_cost(&tools);
    let control = control_latency(&tools);
    print_summary(&restart, &mass, &idle, &control);
    let measured = restart.taskmaster.is_ok()
        && mass.taskmaster.is_ok()
        && idle.taskmaster.is_ok()
        && control.taskmaster.is_ok();
    if measured {
        ExitCode::SUCCESS
    } else {
        eprintln!("supervise: some taskmaster figures could not be measured (see above)");
        ExitCode::FAILURE
    }
}

// ---- the scenarios ------------------------------------------------------------------------

/// Stamp gaps, in ms, sorted.
struct Latency {
    gaps_ms: Vec<f64>,
}

struct RestartFigures {
    floor: Result<Latency, String>,
    taskmaster: Result<Latency, String>,
    supervisord: Option<Result<Latency, String>>,
}

/// Scenario 1: restart latency.
fn restart_latency(tools: &Tools) -> RestartFigures {
    println!(
        "\n[1/4] restart latency: {RESTARTS} restarts of `tm-fixture stamp FILE exit 0` \
         (starttime 0, autorestart always)"
    );
    let floor = restart_floor(tools);
    report("floor (std loop)", &floor, |l| l.describe());
    let taskmaster = restart_supervised(Kind::Taskmaster, tools, RESTARTS);
    report("taskmaster", &taskmaster, |l| {
        format!(
            "{}   {} the floor   target median < 2 ms: {}",
            l.describe(),
            fmt_ratio(ratio(
                Some(l.median()),
                floor.as_ref().ok().map(Latency::median)
            )),
            verdict(Some(l.median()), TARGET_RESTART_MEDIAN_MS),
        )
    });
    let supervisord = tools.supervisord.as_ref().map(|_| {
        let figures = restart_supervised(Kind::Supervisord, tools, SUPERVISORD_RESTARTS);
        report("supervisord", &figures, |l| {
            let tm = taskmaster.as_ref().ok().map(Latency::median);
            format!(
                "{}   taskmaster/supervisord {}",
                l.describe(),
                fmt_ratio(ratio(tm, Some(l.median())))
            )
        });
        figures
    });
    not_measured_note(&supervisord);
    RestartFigures {
        floor,
        taskmaster,
        supervisord,
    }
}

/// The floor: the bench itself runs the fixture back to back, as a supervisor would with no
/// overhead at all (same stdio and own process group as taskmaster gives its children).
fn restart_floor(tools: &Tools) -> Result<Latency, String> {
    let dir = temp_dir()?;
    let stamps = dir.path().join("stamps");
    for run in 0..=RESTARTS {
        let status = Command::new(&tools.fixture)
            .arg("stamp")
            .arg(&stamps)
            .args(["exit", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", tools.fixture.display()))?;
        if !status.success() {
            return Err(format!("run {run} of tm-fixture: {status}"));
        }
    }
    let mut tail = LogTail::new(&stamps);
    let stamps = tail
        .new_lines()?
        .iter()
        .map(|line| parse_stamp(line))
        .collect::<Result<Vec<_>, _>>()?;
    Latency::from_stamps(&stamps)
}

/// `restarts` restarts of the stamping fixture under a supervisor.
fn restart_supervised(kind: Kind, tools: &Tools, restarts: usize) -> Result<Latency, String> {
    let dir = temp_dir()?;
    let stamps_path = dir.path().join("stamps");
    let program = Program {
        name: "stamper",
        argv: vec![
            path_arg(&tools.fixture),
            "stamp".into(),
            path_arg(&stamps_path),
            "exit".into(),
            "0".into(),
        ],
        numprocs: 1,
    };
    let mut daemon = Daemon::start(kind, tools, dir.path(), &program)?;
    let mut tail = LogTail::new(&stamps_path);
    let mut stamps = Vec::with_capacity(restarts + 1);
    let complete = poll_until(Instant::now() + RESTART_DEADLINE, || {
        daemon.check_alive()?;
        for line in tail.new_lines()? {
            stamps.push(parse_stamp(&line)?);
        }
        Ok(stamps.len() > restarts)
    })?;
    warn_on_failed_shutdown(kind, daemon.shutdown());
    if !complete {
        return Err(format!(
            "only {} of {restarts} restarts within {RESTART_DEADLINE:?}",
            stamps.len().saturating_sub(1)
        ));
    }
    stamps.truncate(restarts + 1);
    Latency::from_stamps(&stamps)
}

/// A supervisor's mass start.
struct MassRun {
    to_running: Duration,
    /// The daemon's VmRSS with all processes RUNNING.
    rss_mib: Option<f64>,
    /// How long it took to stop everything and exit after SIGTERM.
    shutdown: Result<Duration, String>,
}

struct MassFigures {
    floor: Result<Duration, String>,
    taskmaster: Result<MassRun, String>,
    supervisord: Option<Result<MassRun, String>>,
}

/// Scenario 2: mass start.
fn mass_start(tools: &Tools) -> MassFigures {
    println!(
        "\n[2/4] mass start: {MASS_PROCS} processes of `tm-fixture sleep forever` (starttime 0), \
         daemon spawned → {MASS_PROCS} RUNNING lines in its log"
    );
    let floor = mass_floor(tools);
    report("floor (std spawn loop)", &floor, |d| fmt_ms(ms(*d)));
    let taskmaster = mass_supervised(Kind::Taskmaster, tools);
    report("taskmaster", &taskmaster, |run| {
        format!(
            "{}   {} the floor   target < 1 s: {}",
            run.describe(),
            fmt_ratio(ratio(
                Some(ms(run.to_running)),
                floor.as_ref().ok().map(|d| ms(*d))
            )),
            verdict(Some(ms(run.to_running)), TARGET_MASS_START_MS),
        )
    });
    let supervisord = tools.supervisord.as_ref().map(|_| {
        let figures = mass_supervised(Kind::Supervisord, tools);
        report("supervisord", &figures, |run| {
            let tm = taskmaster.as_ref().ok().map(|t| ms(t.to_running));
            format!(
                "{}   taskmaster/supervisord {}",
                run.describe(),
                fmt_ratio(ratio(tm, Some(ms(run.to_running))))
            )
        });
        figures
    });
    not_measured_note(&supervisord);
    MassFigures {
        floor,
        taskmaster,
        supervisord,
    }
}

/// The floor: the bench spawns the sleepers itself, then kills and reaps them.
fn mass_floor(tools: &Tools) -> Result<Duration, String> {
    let mut sleepers = Sleepers(Vec::with_capacity(MASS_PROCS as usize));
    let started = Instant::now();
    for _ in 0..MASS_PROCS {
        let child = Command::new(&tools.fixture)
            .args(["sleep", "forever"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", tools.fixture.display()))?;
        sleepers.0.push(child);
    }
    let elapsed = started.elapsed();
    drop(sleepers);
    Ok(elapsed)
}

fn mass_supervised(kind: Kind, tools: &Tools) -> Result<MassRun, String> {
    let dir = temp_dir()?;
    let program = Program {
        name: "sleeper",
        argv: vec![path_arg(&tools.fixture), "sleep".into(), "forever".into()],
        numprocs: MASS_PROCS,
    };
    let mut daemon = Daemon::start(kind, tools, dir.path(), &program)?;
    let to_running = daemon.wait_running(MASS_PROCS as usize, START_DEADLINE)?;
    let rss_mib = Usage::read(daemon.pid).ok().map(|u| u.rss_mib());
    let shutdown = daemon.shutdown();
    Ok(MassRun {
        to_running,
        rss_mib,
        shutdown,
    })
}

/// A supervisor at rest over the idle window.
struct IdleRun {
    /// utime+stime over the window, in ms (clock-tick resolution).
    tick_cpu_ms: f64,
    /// The sum of the threads' schedstat run time over the window, in ms.
    sched_cpu_ms: Option<f64>,
    rss_start_mib: f64,
    rss_end_mib: f64,
    /// CPU over the settling time before the window (the idle release), in ms, by schedstat
    /// where the kernel keeps it, else by ticks.
    settle_cpu_ms: f64,
}

struct IdleFigures {
    taskmaster: Result<IdleRun, String>,
    supervisord: Option<Result<IdleRun, String>>,
}

/// Scenario 3: idle cost.
fn idle_cost(tools: &Tools) -> IdleFigures {
    println!(
        "\n[3/4] idle cost: {IDLE_PROCS} sleeping processes, all RUNNING, then {IDLE_WINDOW:?} \
         of nothing happening"
    );
    let taskmaster = idle_supervised(Kind::Taskmaster, tools);
    report("taskmaster", &taskmaster, |run| {
        format!(
            "{}   target CPU < 10 ms: {}",
            run.describe(tools.clk_tck),
            verdict(Some(run.cpu_ms()), TARGET_IDLE_CPU_MS)
        )
    });
    let supervisord = tools.supervisord.as_ref().map(|_| {
        let figures = idle_supervised(Kind::Supervisord, tools);
        report("supervisord", &figures, |run| {
            let tm = taskmaster.as_ref().ok().map(IdleRun::cpu_ms);
            format!(
                "{}   taskmaster/supervisord CPU {}",
                run.describe(tools.clk_tck),
                fmt_ratio(ratio(tm, Some(run.cpu_ms())))
            )
        });
        figures
    });
    not_measured_note(&supervisord);
    IdleFigures {
        taskmaster,
        supervisord,
    }
}

fn idle_supervised(kind: Kind, tools: &Tools) -> Result<IdleRun, String> {
    let dir = temp_dir()?;
    let program = Program {
        name: "sleeper",
        argv: vec![path_arg(&tools.fixture), "sleep".into(), "forever".into()],
        numprocs: IDLE_PROCS,
    };
    let mut daemon = Daemon::start(kind, tools, dir.path(), &program)?;
    daemon.wait_running(IDLE_PROCS as usize, START_DEADLINE)?;
    let running = Usage::read(daemon.pid)?;
    sleep(IDLE_SETTLE);
    let before = Usage::read(daemon.pid)?;
    sleep(IDLE_WINDOW);
    daemon.check_alive()?;
    let after = Usage::read(daemon.pid)?;
    warn_on_failed_shutdown(kind, daemon.shutdown());
    let ticks = after.ticks.saturating_sub(before.ticks);
    Ok(IdleRun {
        tick_cpu_ms: ticks as f64 * 1000.0 / tools.clk_tck.0 as f64,
        sched_cpu_ms: after
            .sched_ns
            .zip(before.sched_ns)
            .map(|(a, b)| a.saturating_sub(b) as f64 / 1e6),
        rss_start_mib: before.rss_mib(),
        rss_end_mib: after.rss_mib(),
        settle_cpu_ms: before.cpu_ms_since(&running, tools.clk_tck.0),
    })
}

struct ControlFigures {
    taskmaster: Result<Latency, String>,
    supervisord: Option<Result<Latency, String>>,
}

/// Scenario 4: control latency. `taskmaster ctl status` with 100 programs, each call a whole
/// client process (start, connect, ask, print, exit), as a user or a script runs it; against
/// `supervisorctl status` on supervisord with the same programs.
fn control_latency(tools: &Tools) -> ControlFigures {
    println!(
        "\n[4/4] control latency: `status` of {IDLE_PROCS} RUNNING processes by the command-line \
         client, {STATUS_CALLS} calls, each a new client process"
    );
    let taskmaster = status_latency(Kind::Taskmaster, tools);
    report("taskmaster ctl", &taskmaster, |latency| {
        format!(
            "{}   target median < 10 ms: {}",
            latency.describe(),
            verdict(Some(latency.median()), TARGET_STATUS_MEDIAN_MS)
        )
    });
    let supervisord = tools.supervisord.as_ref().map(|_| {
        let figures = status_latency(Kind::Supervisord, tools);
        report("supervisorctl", &figures, |latency| {
            let tm = taskmaster.as_ref().ok().map(Latency::median);
            format!(
                "{}   taskmaster/supervisorctl median {}",
                latency.describe(),
                fmt_ratio(ratio(tm, Some(latency.median())))
            )
        });
        figures
    });
    not_measured_note(&supervisord);
    ControlFigures {
        taskmaster,
        supervisord,
    }
}

fn status_latency(kind: Kind, tools: &Tools) -> Result<Latency, String> {
    let dir = temp_dir()?;
    let program = Program {
        name: "sleeper",
        argv: vec![path_arg(&tools.fixture), "sleep".into(), "forever".into()],
        numprocs: IDLE_PROCS,
    };
    let mut daemon = Daemon::start(kind, tools, dir.path(), &program)?;
    daemon.wait_running(IDLE_PROCS as usize, START_DEADLINE)?;
    let mut client = match kind {
        Kind::Taskmaster => {
            let mut command = Command::new(&tools.taskmaster);
            command
                .arg("ctl")
                .arg("-s")
                .arg(dir.path().join("taskmaster.sock"))
                .arg("status");
            command
        }
        Kind::Supervisord => {
            let supervisord = tools.supervisord.as_ref().ok_or("SUPERVISORD is not set")?;
            let mut command = Command::new(supervisord.with_file_name("supervisorctl"));
            command
                .arg("-c")
                .arg(dir.path().join("supervisord.conf"))
                .arg("status");
            command
        }
    };
    let mut gaps_ms = Vec::with_capacity(STATUS_CALLS);
    for _ in 0..STATUS_CALLS {
        let started = Instant::now();
        let output = client
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the client: {e}"))?;
        gaps_ms.push(ms(started.elapsed()));
        let lines = String::from_utf8_lossy(&output.stdout).lines().count();
        if !output.status.success() || lines != IDLE_PROCS as usize {
            return Err(format!(
                "the client answered {} with {lines} lines: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    warn_on_failed_shutdown(kind, daemon.shutdown());
    gaps_ms.sort_by(f64::total_cmp);
    Ok(Latency { gaps_ms })
}

// ---- the summary --------------------------------------------------------------------------

/// One line of the summary table.
struct Row {
    what: &'static str,
    target: &'static str,
    taskmaster: String,
    floor: String,
    tm_floor: String,
    supervisord: String,
    tm_sv: String,
    verdict: String,
}

fn print_summary(
    restart: &RestartFigures,
    mass: &MassFigures,
    idle: &IdleFigures,
    control: &ControlFigures,
) {
    let tm_status = control.taskmaster.as_ref().ok().map(Latency::median);
    let sv_status = sv_value(&control.supervisord, Latency::median);
    let tm_median = restart.taskmaster.as_ref().ok().map(Latency::median);
    let tm_p99 = restart.taskmaster.as_ref().ok().map(Latency::p99);
    let floor_median = restart.floor.as_ref().ok().map(Latency::median);
    let floor_p99 = restart.floor.as_ref().ok().map(Latency::p99);
    let sv_median = sv_value(&restart.supervisord, Latency::median);
    let sv_p99 = sv_value(&restart.supervisord, Latency::p99);
    let tm_mass = mass.taskmaster.as_ref().ok().map(|r| ms(r.to_running));
    let floor_mass = mass.floor.as_ref().ok().map(|d| ms(*d));
    let sv_mass = sv_value(&mass.supervisord, |r| ms(r.to_running));
    let tm_mass_rss = mass.taskmaster.as_ref().ok().and_then(|r| r.rss_mib);
    let sv_mass_rss = sv_value(&mass.supervisord, |r| r.rss_mib).flatten();
    let tm_cpu = idle.taskmaster.as_ref().ok().map(IdleRun::cpu_ms);
    let sv_cpu = sv_value(&idle.supervisord, IdleRun::cpu_ms);
    let tm_settle = idle.taskmaster.as_ref().ok().map(|r| r.settle_cpu_ms);
    let sv_settle = sv_value(&idle.supervisord, |r| r.settle_cpu_ms);
    let tm_ticks = idle.taskmaster.as_ref().ok().map(|r| r.tick_cpu_ms);
    let sv_ticks = sv_value(&idle.supervisord, |r| r.tick_cpu_ms);
    let tm_rss = idle.taskmaster.as_ref().ok().map(|r| r.rss_end_mib);
    let sv_rss = sv_value(&idle.supervisord, |r| r.rss_end_mib);
    let sv_measured = restart.supervisord.is_some();
    let sv_cell = |value: Option<f64>, fmt: fn(f64) -> String| match (sv_measured, value) {
        (false, _) => "-".to_string(),
        (true, None) => "error".to_string(),
        (true, Some(v)) => fmt(v),
    };
    let sv_ratio = |tm: Option<f64>, sv: Option<f64>| {
        if sv_measured {
            fmt_ratio(ratio(tm, sv))
        } else {
            "-".to_string()
        }
    };
    let rows = [
        Row {
            what: "restart latency, median",
            target: "< 2 ms",
            taskmaster: opt(tm_median, fmt_ms),
            floor: opt(floor_median, fmt_ms),
            tm_floor: fmt_ratio(ratio(tm_median, floor_median)),
            supervisord: sv_cell(sv_median, fmt_ms),
            tm_sv: sv_ratio(tm_median, sv_median),
            verdict: verdict(tm_median, TARGET_RESTART_MEDIAN_MS).to_string(),
        },
        Row {
            what: "restart latency, p99",
            target: "-",
            taskmaster: opt(tm_p99, fmt_ms),
            floor: opt(floor_p99, fmt_ms),
            tm_floor: fmt_ratio(ratio(tm_p99, floor_p99)),
            supervisord: sv_cell(sv_p99, fmt_ms),
            tm_sv: sv_ratio(tm_p99, sv_p99),
            verdict: "-".to_string(),
        },
        Row {
            what: "mass start, 1000 procs",
            target: "< 1 s",
            taskmaster: opt(tm_mass, fmt_ms),
            floor: opt(floor_mass, fmt_ms),
            tm_floor: fmt_ratio(ratio(tm_mass, floor_mass)),
            supervisord: sv_cell(sv_mass, fmt_ms),
            tm_sv: sv_ratio(tm_mass, sv_mass),
            verdict: verdict(tm_mass, TARGET_MASS_START_MS).to_string(),
        },
        Row {
            what: "RSS with 1000 procs",
            target: "-",
            taskmaster: opt(tm_mass_rss, fmt_mib),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_mass_rss, fmt_mib),
            tm_sv: sv_ratio(tm_mass_rss, sv_mass_rss),
            verdict: "-".to_string(),
        },
        Row {
            what: "idle CPU per 10 s, 100 procs",
            target: "< 10 ms",
            taskmaster: opt(tm_cpu, fmt_ms),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_cpu, fmt_ms),
            tm_sv: sv_ratio(tm_cpu, sv_cpu),
            verdict: verdict(tm_cpu, TARGET_IDLE_CPU_MS).to_string(),
        },
        Row {
            what: "  CPU of the settling before (idle release)",
            target: "-",
            taskmaster: opt(tm_settle, fmt_ms),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_settle, fmt_ms),
            tm_sv: sv_ratio(tm_settle, sv_settle),
            verdict: "-".to_string(),
        },
        Row {
            what: "  same, utime+stime (ticks)",
            target: "-",
            taskmaster: opt(tm_ticks, fmt_ms),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_ticks, fmt_ms),
            tm_sv: sv_ratio(tm_ticks, sv_ticks),
            verdict: "-".to_string(),
        },
        Row {
            what: "ctl status, 100 procs, median",
            target: "< 10 ms",
            taskmaster: opt(tm_status, fmt_ms),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_status, fmt_ms),
            tm_sv: sv_ratio(tm_status, sv_status),
            verdict: verdict(tm_status, TARGET_STATUS_MEDIAN_MS).to_string(),
        },
        Row {
            what: "idle RSS, 100 procs",
            target: "-",
            taskmaster: opt(tm_rss, fmt_mib),
            floor: "-".to_string(),
            tm_floor: "-".to_string(),
            supervisord: sv_cell(sv_rss, fmt_mib),
            tm_sv: sv_ratio(tm_rss, sv_rss),
            verdict: "-".to_string(),
        },
    ];
    let header = Row {
        what: "scenario",
        target: "target",
        taskmaster: "taskmaster".into(),
        floor: "floor (std)".into(),
        tm_floor: "tm/floor".into(),
        supervisord: "supervisord".into(),
        tm_sv: "tm/supervisord".into(),
        verdict: "verdict".into(),
    };
    let cells = |r: &Row| {
        [
            r.what.to_string(),
            r.target.to_string(),
            r.taskmaster.clone(),
            r.floor.clone(),
            r.tm_floor.clone(),
            r.supervisord.clone(),
            r.tm_sv.clone(),
            r.verdict.clone(),
        ]
    };
    let mut widths = [0usize; 8];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(cells(row)) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &Row| {
        let mut text = String::new();
        for (i, (cell, width)) in cells(row).iter().zip(widths).enumerate() {
            if i == 0 {
                text += &format!("{cell:<width$}");
            } else {
                text += &format!("  {cell:>width$}");
            }
        }
        text
    };
    println!(
        "\nsummary (tm/x: taskmaster's figure divided by x's; lower is better for taskmaster)"
    );
    println!("{}", line(&header));
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for row in &rows {
        println!("{}", line(row));
    }
    if !sv_measured {
        println!("supervisord: not measured (run scripts/bench to include it)");
    } else {
        println!(
            "supervisord's restart figures are over {SUPERVISORD_RESTARTS} restarts, \
             taskmaster's over {RESTARTS}"
        );
    }
}

// ---- supervisors --------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Taskmaster,
    Supervisord,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Taskmaster => "taskmaster",
            Kind::Supervisord => "supervisord",
        }
    }

    /// Whether an event-log line says a process has become RUNNING.
    fn is_running_line(self, line: &str) -> bool {
        match self {
            // `2026-11-22 02:42:10.405 web_07: RUNNING`
            Kind::Taskmaster => line.contains(": RUNNING"),
            // `... INFO success: web_07 entered RUNNING state, process has stayed up for ...`
            Kind::Supervisord => line.contains("entered RUNNING state"),
        }
    }
}

/// The one program a scenario supervises.
struct Program {
    name: &'static str,
    argv: Vec<String>,
    numprocs: u32,
}

impl Program {
    /// The command line, quoted so that both taskmaster (shell-words) and supervisord (shlex)
    /// split it back into `argv`.
    fn command_line(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
            .collect();
        words.join(" ")
    }
}

/// taskmaster's configuration for `program`, and its event log's path.
fn taskmaster_config(dir: &Path, program: &Program) -> (String, PathBuf) {
    let log = dir.join("events.log");
    let yaml_quote = |s: &str| format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""));
    let text = format!(
        "logfile: {log}\n\
         programs:\n  \
           {name}:\n    \
             cmd: {cmd}\n    \
             numprocs: {numprocs}\n    \
             autostart: true\n    \
             autorestart: always\n    \
             starttime: 0\n    \
             startretries: 3\n    \
             backoff: off\n",
        log = yaml_quote(&path_arg(&log)),
        name = program.name,
        cmd = yaml_quote(&program.command_line()),
        numprocs = program.numprocs,
    );
    (text, log)
}

/// supervisord's equivalent configuration, with its control server on a unix socket as
/// taskmaster always has one, and its log's path.
fn supervisord_config(dir: &Path, program: &Program) -> (String, PathBuf) {
    let log = dir.join("supervisord.log");
    // Three pipes per child, and supervisord refuses to start below `minfds`.
    let minfds = (4 * program.numprocs + 64).max(1024);
    let minprocs = (program.numprocs + 64).max(200);
    let process_name = if program.numprocs > 1 {
        "process_name=%(program_name)s_%(process_num)03d\n"
    } else {
        ""
    };
    let text = format!(
        "[supervisord]\n\
         nodaemon=true\n\
         logfile={log}\n\
         logfile_maxbytes=0\n\
         loglevel=info\n\
         pidfile={pidfile}\n\
         childlogdir={dir}\n\
         minfds={minfds}\n\
         minprocs={minprocs}\n\
         \n\
         [program:{name}]\n\
         command={command}\n\
         numprocs={numprocs}\n\
         {process_name}\
         autostart=true\n\
         autorestart=true\n\
         startsecs=0\n\
         startretries=3\n\
         stdout_logfile=NONE\n\
         stderr_logfile=NONE\n\
         \n\
         [unix_http_server]\n\
         file={socket}\n\
         \n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
         \n\
         [supervisorctl]\n\
         serverurl=unix://{socket}\n",
        socket = path_arg(&dir.join("supervisor.sock")),
        log = path_arg(&log),
        pidfile = path_arg(&dir.join("supervisord.pid")),
        dir = path_arg(dir),
        name = program.name,
        // `%` starts an interpolation in supervisord's configuration files.
        command = program.command_line().replace('%', "%%"),
        numprocs = program.numprocs,
    );
    (text, log)
}

/// A running supervisor. Dropping it stops it (see [`stop`]), so an early return cannot leave
/// one behind.
struct Daemon {
    kind: Kind,
    child: Option<Child>,
    pid: u32,
    spawned_at: Instant,
    log: PathBuf,
    /// The daemon's own stdout and stderr.
    output: PathBuf,
}

impl Daemon {
    fn start(kind: Kind, tools: &Tools, dir: &Path, program: &Program) -> Result<Daemon, String> {
        let (text, log, config) = match kind {
            Kind::Taskmaster => {
                let (text, log) = taskmaster_config(dir, program);
                (text, log, dir.join("taskmaster.yaml"))
            }
            Kind::Supervisord => {
                let (text, log) = supervisord_config(dir, program);
                (text, log, dir.join("supervisord.conf"))
            }
        };
        fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut command = match kind {
            Kind::Taskmaster => {
                let mut command = Command::new(&tools.taskmaster);
                command.arg("run").arg("-c").arg(&config).arg("--no-shell");
                command
            }
            Kind::Supervisord => {
                let executable = tools.supervisord.as_ref().ok_or("SUPERVISORD is not set")?;
                let mut command = Command::new(executable);
                command.arg("-n").arg("-c").arg(&config);
                command
            }
        };
        let output = dir.join(format!("{}.out", kind.name()));
        let stdout = File::create(&output)
            .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("cannot duplicate a descriptor: {e}"))?;
        command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Should the bench itself die (SIGKILL, a panic while panicking), the daemon gets a
        // SIGTERM and shuts its processes down rather than outliving it.
        // SAFETY: between fork and exec only the prctl(2) system call runs: async-signal-safe,
        // and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                    .map_err(std::io::Error::from)
            });
        }
        let spawned_at = Instant::now();
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
            spawned_at,
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

    /// Waits until the event log holds `count` RUNNING lines; returns the time since the
    /// daemon was spawned.
    fn wait_running(&mut self, count: usize, deadline: Duration) -> Result<Duration, String> {
        let kind = self.kind;
        let mut tail = LogTail::new(&self.log);
        let mut seen = 0;
        let mut at = self.spawned_at;
        let done = poll_until(self.spawned_at + deadline, || {
            seen += tail
                .new_lines()?
                .iter()
                .filter(|line| kind.is_running_line(line))
                .count();
            at = Instant::now();
            if seen < count {
                self.check_alive()?;
            }
            Ok(seen >= count)
        })?;
        if done {
            Ok(at.duration_since(self.spawned_at))
        } else {
            Err(format!(
                "only {seen} of {count} processes RUNNING within {deadline:?}"
            ))
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

/// The floor's own children: killed and reaped when dropped.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

// ---- measuring ----------------------------------------------------------------------------

impl Latency {
    fn from_stamps(stamps: &[u64]) -> Result<Latency, String> {
        if stamps.len() < 2 {
            return Err(format!("{} stamp(s): no gap to measure", stamps.len()));
        }
        let mut gaps_ms: Vec<f64> = stamps
            .windows(2)
            .map(|pair| pair[1].saturating_sub(pair[0]) as f64 / 1e6)
            .collect();
        gaps_ms.sort_by(f64::total_cmp);
        Ok(Latency { gaps_ms })
    }

    fn median(&self) -> f64 {
        percentile(&self.gaps_ms, 0.5)
    }

    fn p99(&self) -> f64 {
        percentile(&self.gaps_ms, 0.99)
    }

    fn describe(&self) -> String {
        format!(
            "n={:<4} median {:>9}  p99 {:>9}  min {:>9}  max {:>9}",
            self.gaps_ms.len(),
            fmt_ms(self.median()),
            fmt_ms(self.p99()),
            fmt_ms(percentile(&self.gaps_ms, 0.0)),
            fmt_ms(percentile(&self.gaps_ms, 1.0)),
        )
    }
}

impl MassRun {
    fn describe(&self) -> String {
        let shutdown = match &self.shutdown {
            Ok(d) => format!("shutdown {}", fmt_ms(ms(*d))),
            Err(e) => format!("shutdown FAILED: {e}"),
        };
        format!(
            "{:>9}   RSS {}   {shutdown}",
            fmt_ms(ms(self.to_running)),
            opt(self.rss_mib, fmt_mib)
        )
    }
}

impl IdleRun {
    /// The CPU figure the target is judged on: schedstat's when there is one.
    fn cpu_ms(&self) -> f64 {
        self.sched_cpu_ms.unwrap_or(self.tick_cpu_ms)
    }

    fn describe(&self, clk_tck: (u64, &str)) -> String {
        format!(
            "CPU {} (schedstat), {} (utime+stime, {} ticks/s)   RSS {} → {}   \
             (the {IDLE_SETTLE:?} before: CPU {})",
            opt(self.sched_cpu_ms, fmt_ms),
            fmt_ms(self.tick_cpu_ms),
            clk_tck.0,
            fmt_mib(self.rss_start_mib),
            fmt_mib(self.rss_end_mib),
            fmt_ms(self.settle_cpu_ms),
        )
    }
}

/// A process's CPU time and memory, from /proc.
struct Usage {
    /// utime + stime, in clock ticks.
    ticks: u64,
    /// Time on CPU summed over its threads, in ns, where the kernel keeps schedstat.
    sched_ns: Option<u64>,
    rss_kib: u64,
}

impl Usage {
    /// The CPU time from `earlier` to this reading, in ms: by schedstat where both have it,
    /// else by ticks of `clk_tck` per second.
    fn cpu_ms_since(&self, earlier: &Usage, clk_tck: u64) -> f64 {
        match (self.sched_ns, earlier.sched_ns) {
            (Some(now), Some(then)) => now.saturating_sub(then) as f64 / 1e6,
            _ => self.ticks.saturating_sub(earlier.ticks) as f64 * 1000.0 / clk_tck as f64,
        }
    }

    fn read(pid: u32) -> Result<Usage, String> {
        let path = format!("/proc/{pid}/stat");
        let stat = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        // The command name (field 2) may hold spaces but ends at the last `)`; the rest is
        // fields 3 (state) onwards, so field N is at index N - 3.
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
        let ticks = field(14)? + field(15)?;
        let status_path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&status_path)
            .map_err(|e| format!("cannot read {status_path}: {e}"))?;
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .ok_or_else(|| format!("{status_path}: no VmRSS"))?;
        Ok(Usage {
            ticks,
            sched_ns: sched_ns(pid),
            rss_kib,
        })
    }

    fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

/// The first field of /proc/PID/task/TID/schedstat (ns on CPU), summed over the threads.
fn sched_ns(pid: u32) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks {
        let text = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
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

    /// The lines completed since the last call; none while the file does not exist.
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

fn parse_stamp(line: &str) -> Result<u64, String> {
    line.trim()
        .parse()
        .map_err(|_| format!("not a stamp: {line:?}"))
}

/// Calls `done` every [`POLL`] until it says so (true) or `deadline` passes (false).
fn poll_until(
    deadline: Instant,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        sleep(POLL);
    }
}

// ---- set-up and formatting ----------------------------------------------------------------

/// What the bench runs.
struct Tools {
    taskmaster: PathBuf,
    fixture: PathBuf,
    /// From `SUPERVISORD`; `None` when unset.
    supervisord: Option<PathBuf>,
    /// Clock ticks per second for /proc/PID/stat, and where that number comes from.
    clk_tck: (u64, &'static str),
}

impl Tools {
    fn find() -> Tools {
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
        Tools {
            taskmaster: PathBuf::from(env!("CARGO_BIN_EXE_taskmaster")),
            fixture: PathBuf::from(env!("CARGO_BIN_EXE_tm-fixture")),
            supervisord: std::env::var_os("SUPERVISORD")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            clk_tck,
        }
    }

    fn print(&self) {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().next().unwrap_or("?");
        println!(
            "taskmaster benchmark: {cpus} CPU(s), Linux {}, {} clock ticks/s ({}), \
             load average {load} at start (figures need an otherwise idle machine)",
            kernel.trim(),
            self.clk_tck.0,
            self.clk_tck.1
        );
        println!("  taskmaster:  {}", self.taskmaster.display());
        println!("  tm-fixture:  {}", self.fixture.display());
        match &self.supervisord {
            Some(path) => {
                let version = Command::new(path)
                    .arg("--version")
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .ok()
                    .and_then(|out| String::from_utf8(out.stdout).ok())
                    .map_or_else(|| "version unknown".to_string(), |v| v.trim().to_string());
                println!("  supervisord: {} ({version})", path.display());
            }
            None => println!("  supervisord: not measured (run scripts/bench to include it)"),
        }
    }
}

fn temp_dir() -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix("taskmaster-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// A path as a string, for a configuration file.
fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Prints one measurement line of a scenario.
fn report<T>(label: &str, result: &Result<T, String>, describe: impl Fn(&T) -> String) {
    match result {
        Ok(value) => println!("  {label:<24}{}", describe(value)),
        Err(e) => println!("  {label:<24}error: {e}"),
    }
}

fn not_measured_note<T>(supervisord: &Option<T>) {
    if supervisord.is_none() {
        println!("  supervisord: not measured (run scripts/bench to include it)");
    }
}

/// supervisord's figure, if it was measured and succeeded.
fn sv_value<T, V>(figures: &Option<Result<T, String>>, value: impl Fn(&T) -> V) -> Option<V> {
    figures.as_ref()?.as_ref().ok().map(value)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn verdict(value: Option<f64>, limit: f64) -> &'static str {
    match value {
        Some(v) if v < limit => "PASS",
        Some(_) => "MISS",
        None => "error",
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn fmt_mib(mib: f64) -> String {
    format!("{mib:.1} MiB")
}

/// A ratio to three significant figures, e.g. `1.58x`, `0.000953x`.
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
