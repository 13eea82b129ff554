//! # The chaos run
//!
//! Theory of operation: the real `taskmaster` binary supervises programs of every kind
//! ([`programs::Kind`]: sleepers, fast talkers, `sh -c` wrappers with grandchildren, a
//! forker, one that ignores its stop signal, one that fails at once, one with a health check,
//! one with a watchdog) while three kinds of actor ([`actors`]) work against it at once for
//! the whole run, each on a thread of its own with its own random stream drawn from the seed:
//!
//! - the **signaller** sends SIGKILL, SIGSEGV, SIGTERM and SIGSTOP (and, a moment later,
//!   SIGCONT) to random children and grandchildren, found through `/proc` and signalled
//!   through a pidfd (a reused pid is never hit), and flips the health checks' flag;
//! - the **clients** (several at once) send start, stop, restart, signal, kill and status for
//!   processes, groups and `all`, on the JSON API and, for one of them, in the shell's
//!   language through `taskmaster ctl`; every request has a deadline ([`control`]);
//! - the **reloader** changes the configuration (programs added, removed, changed; `numprocs`
//!   up and down) and reloads it, by SIGHUP and by `reload`.
//!
//! Every program carries the run's token in its environment, which its children inherit:
//! that is how the run knows its own processes among the machine's, and ends them all, by
//! pid, at the end.
//!
//! When the time is up, the actors stop, every paused process is continued, the first
//! configuration is put back and every process that should run is started; the run waits
//! (with a deadline) until `status` stays the same and nothing is between states. Then
//! [`check::examine`] holds `status` against `/proc` (lies, zombies, leftovers), and
//! taskmaster's descriptors and memory are measured again. The [`Report`] passes only when
//! every count but the actions is zero and descriptors and memory are back within a small
//! constant. Nothing in it is decided by a fixed sleep: each wait is for a condition, with a
//! deadline.

pub mod actors;
pub mod check;
pub mod control;
pub mod daemon;
pub mod procfs;
pub mod programs;
pub mod rng;
pub mod tally;

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use taskmaster_core::{ProcessInfo, Reply, Request, State};

use crate::actors::Context;
use crate::check::Findings;
use crate::control::{Answer, TimedClient};
use crate::daemon::{Binaries, Daemon};
use crate::procfs::Table;
use crate::programs::{Layout, Paths, Rest};
use crate::tally::Tally;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long the actors work.
    pub seconds: u64,
    pub seed: u64,
    /// How many clients send requests at once (the first in the shell's language when there
    /// are two or more).
    pub clients: u32,
    /// Signals a second.
    pub signal_rate: u32,
    /// A request not answered within this is "never answered".
    pub request_timeout: Duration,
    /// How long the run may take to settle after the actors stop.
    pub settle_timeout: Duration,
    /// How many more descriptors taskmaster may hold at the end than at the start.
    pub fd_slack: usize,
    /// How much more memory (RSS, KiB) taskmaster may hold at the end than at the start.
    pub rss_slack_kib: u64,
    pub binaries: Binaries,
    /// Keep the run's folder (configuration, event log, program logs) even when it passes.
    pub keep: bool,
}

impl Options {
    pub fn new(binaries: Binaries, seconds: u64, seed: u64) -> Options {
        Options {
            seconds,
            seed,
            clients: 6,
            signal_rate: 60,
            request_timeout: Duration::from_secs(60),
            settle_timeout: Duration::from_secs(120),
            fd_slack: 2,
            rss_slack_kib: 2048,
            binaries,
            keep: false,
        }
    }
}

/// The figures of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub seconds: u64,
    /// From taskmaster's start to its shutdown.
    pub duration: Duration,
    pub tally: Tally,
    /// How long the settling took after the actors stopped, or what never settled.
    pub settled: Result<Duration, String>,
    pub findings: Findings,
    /// taskmaster's descriptors and RSS (KiB), before the actors start and after the settling.
    pub fds: (usize, usize),
    pub rss_kib: (u64, u64),
    /// taskmaster's threads, before and after (said, not judged: idle helper threads linger).
    pub threads: (u64, u64),
    /// taskmaster's descriptors and RSS every 10 s of the run: (second, descriptors, KiB).
    pub during: Vec<(u64, usize, u64)>,
    pub fd_slack: usize,
    pub rss_slack_kib: u64,
    /// How taskmaster ended before it was asked to, if it did.
    pub daemon_exit: Option<String>,
    /// Whether taskmaster's own shutdown ended it, within its deadline.
    pub shutdown_clean: bool,
    /// Processes of the run still alive once taskmaster had shut down (then killed).
    pub left_after_shutdown: Vec<String>,
    pub load_before: String,
    pub load_after: String,
    /// The run's folder (removed when the run passed, unless kept).
    pub dir: PathBuf,
}

impl Report {
    /// Every reason the run failed; none when it passed.
    pub fn failures(&self) -> Vec<String> {
        let t = &self.tally;
        let mut failures = Vec::new();
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                failures.push(format!("{n} {what}"));
            }
        };
        let watched = &t.watched;
        count(self.findings.lies.len(), "status lies at the end");
        count(self.findings.zombies.len(), "zombies at the end");
        count(self.findings.leftovers.len(), "leftovers at the end");
        count(watched.lies as usize, "status lies during the run");
        count(watched.zombies as usize, "zombies during the run");
        count(watched.leftovers as usize, "leftovers during the run");
        count(t.client_errors as usize, "requests answered 4xx");
        count(t.server_errors as usize, "requests answered 5xx");
        count(t.never as usize, "requests never answered");
        count(t.broken as usize, "broken connections");
        count(t.rejected as usize, "reloads rejected");
        count(
            self.left_after_shutdown.len(),
            "processes left after the shutdown",
        );
        if let Err(why) = &self.settled {
            failures.push(format!("never settled: {why}"));
        }
        if let Some(exit) = &self.daemon_exit {
            failures.push(format!("taskmaster exited: {exit}"));
        }
        if self.daemon_exit.is_none() && !self.shutdown_clean {
            failures.push("taskmaster did not shut down by itself".to_string());
        }
        if self.fds.1 > self.fds.0 + self.fd_slack {
            failures.push(format!(
                "descriptors grew from {} to {}",
                self.fds.0, self.fds.1
            ));
        }
        if self.rss_kib.1 > self.rss_kib.0 + self.rss_slack_kib {
            failures.push(format!(
                "RSS grew from {} to {} KiB",
                self.rss_kib.0, self.rss_kib.1
            ));
        }
        failures
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let join = |map: &mut dyn Iterator<Item = (String, u64)>| {
            map.map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "chaos: seed {}, {} s of chaos, {:.1} s in all",
            self.seed,
            self.seconds,
            self.duration.as_secs_f64()
        )?;
        writeln!(f, "actions: {}", t.actions())?;
        writeln!(
            f,
            "  signals: {} ({})",
            t.signals.values().sum::<u64>(),
            join(&mut t.signals.iter().map(|(k, v)| (k.to_string(), *v)))
        )?;
        writeln!(
            f,
            "  requests: {} ({})",
            t.requests.values().sum::<u64>(),
            join(&mut t.requests.iter().map(|(k, v)| (k.clone(), *v)))
        )?;
        writeln!(
            f,
            "  reloads: {} by SIGHUP, {} by request; health flag flipped {} times",
            t.sighups, t.reload_requests, t.health_flips
        )?;
        writeln!(
            f,
            "requests: {} answered, {} 4xx, {} 5xx, {} never answered, {} broken, {} reloads \
             rejected",
            t.answered, t.client_errors, t.server_errors, t.never, t.broken, t.rejected
        )?;
        writeln!(
            f,
            "  per-process errors in the answers (expected under chaos): {}",
            join(&mut t.outcome_errors.iter().map(|(k, v)| (k.clone(), *v)))
        )?;
        for sample in &t.samples {
            writeln!(f, "  {sample}")?;
        }
        let watched = &t.watched;
        writeln!(
            f,
            "during the run ({} looks): lies {}, zombies {}, leftovers {}",
            watched.looks, watched.lies, watched.zombies, watched.leftovers
        )?;
        for sample in &watched.samples {
            writeln!(f, "  {sample}")?;
        }
        if let Some((lasted, what)) = &watched.longest {
            writeln!(
                f,
                "  the longest disagreement seen: {:.2} s ({what})",
                lasted.as_secs_f64()
            )?;
        }
        match &self.settled {
            Ok(took) => writeln!(f, "settled in {:.1} s", took.as_secs_f64())?,
            Err(why) => writeln!(f, "never settled: {why}")?,
        }
        let findings = &self.findings;
        writeln!(
            f,
            "at the end: lies {}, zombies {}, leftovers {}",
            findings.lies.len(),
            findings.zombies.len(),
            findings.leftovers.len()
        )?;
        for line in findings
            .lies
            .iter()
            .chain(&findings.zombies)
            .chain(&findings.leftovers)
        {
            writeln!(f, "  {line}")?;
        }
        writeln!(
            f,
            "descriptors: {} before, {} after (slack {}); RSS: {} KiB before, {} KiB after (slack {} KiB)",
            self.fds.0, self.fds.1, self.fd_slack, self.rss_kib.0, self.rss_kib.1, self.rss_slack_kib
        )?;
        let during: Vec<String> = self
            .during
            .iter()
            .map(|(second, fds, rss)| format!("{second}s {fds}/{rss}"))
            .collect();
        writeln!(
            f,
            "  during the run (descriptors/KiB): {}",
            during.join(", ")
        )?;
        writeln!(
            f,
            "threads: {} before, {} after",
            self.threads.0, self.threads.1
        )?;
        match &self.daemon_exit {
            Some(exit) => writeln!(f, "taskmaster: exited during the run ({exit})")?,
            None => writeln!(
                f,
                "taskmaster: ran throughout; {}",
                if self.shutdown_clean {
                    "its shutdown ended it"
                } else {
                    "its shutdown did NOT end it in time"
                }
            )?,
        }
        writeln!(
            f,
            "left after the shutdown: {}",
            self.left_after_shutdown.len()
        )?;
        for line in &self.left_after_shutdown {
            writeln!(f, "  {line}")?;
        }
        writeln!(
            f,
            "load average: {} before, {} after",
            self.load_before, self.load_after
        )?;
        let failures = self.failures();
        if failures.is_empty() {
            write!(f, "PASS")
        } else {
            write!(
                f,
                "FAIL: {} (files in {})",
                failures.join("; "),
                self.dir.display()
            )
        }
    }
}

/// Runs the chaos as `options` say and reports its figures. An `Err` is a run that could not
/// be made (a binary missing, taskmaster refusing to start), not a failed one.
pub fn run(options: &Options) -> Result<Report, String> {
    options.binaries.check()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let token = format!("{}-{}-{nanos}", std::process::id(), options.seed);
    let dir = std::env::temp_dir().join(format!("chaos-{token}"));
    for folder in [dir.clone(), dir.join("logs"), dir.join("pids")] {
        fs::create_dir_all(&folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let paths = Paths {
        dir: dir.clone(),
        fixture: options.binaries.fixture.clone(),
        worker: options.binaries.worker.clone(),
        token,
    };
    let initial = Layout::initial();
    fs::write(paths.health_flag(), b"").map_err(|e| format!("cannot write the flag: {e}"))?;
    actors::write_config(&paths, &initial)?;

    // Declared before the daemon, so dropped after it: whatever way this function is left (a
    // panic included), what the run started is ended, taskmaster first, then the rest by pid.
    let _cleanup = Cleanup(paths.token_assignment());
    let started = Instant::now();
    let mut daemon = Daemon::start(
        &options.binaries.taskmaster,
        &paths,
        Duration::from_secs(30),
    )?;
    let report = supervise(options, &paths, &initial, &mut daemon, started);
    let passed = report.passed();
    if passed && !options.keep {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(report)
}

/// Ends every process of the run still alive when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        daemon::end_stragglers(&self.0);
    }
}

/// The run proper, once taskmaster is up: always ends with taskmaster and every process of
/// the run ended.
fn supervise(
    options: &Options,
    paths: &Paths,
    initial: &Layout,
    daemon: &mut Daemon,
    started: Instant,
) -> Report {
    let socket = paths.socket();
    let mut client = TimedClient::new(&socket, options.request_timeout);
    let mut setup = Tally::default();
    let first_settle = settle(
        &mut client,
        &mut setup,
        initial,
        paths,
        options.settle_timeout,
    );
    // One of the requests the run will send, and an unchanged reload, before the figures:
    // what taskmaster allocates once, on first use, is not a leak.
    let warm_up = [Request::Status(Vec::new()), Request::Reload];
    for request in warm_up {
        let answer = client.send(request);
        setup.record("warm-up", &answer);
    }
    let fds_before = procfs::fd_count(daemon.pid).unwrap_or(0);
    let rss_before = procfs::rss_kib(daemon.pid).unwrap_or(0);
    let threads_before = procfs::threads(daemon.pid).unwrap_or(0);
    let load_before = procfs::loadavg();

    let ctx = Context {
        paths: paths.clone(),
        taskmaster: options.binaries.taskmaster.clone(),
        daemon_pid: daemon.pid,
        seed: options.seed,
        request_timeout: options.request_timeout,
        layout: Mutex::new(initial.clone()),
        tally: tally::Shared::default(),
        done: Default::default(),
        begun: Instant::now(),
    };
    let mut daemon_exit = None;
    let mut during = Vec::new();
    let end = Instant::now() + Duration::from_secs(options.seconds);
    thread::scope(|scope| {
        let ctx = &ctx;
        scope.spawn(move || actors::signaller(ctx, options.signal_rate));
        scope.spawn(move || actors::reloader(ctx));
        scope.spawn(move || actors::watcher(ctx));
        for index in 0..u64::from(options.clients) {
            let shell = index == 0 && options.clients >= 2;
            scope.spawn(move || actors::client(ctx, index, shell));
        }
        let begun = Instant::now();
        let mut next_sample = begun;
        while Instant::now() < end {
            if let Some(exit) = daemon.exited() {
                daemon_exit = Some(exit);
                break;
            }
            if Instant::now() >= next_sample {
                let fds = procfs::fd_count(daemon.pid).unwrap_or(0);
                let rss = procfs::rss_kib(daemon.pid).unwrap_or(0);
                during.push((begun.elapsed().as_secs(), fds, rss));
                next_sample += Duration::from_secs(10);
            }
            thread::sleep(Duration::from_millis(50));
        }
        ctx.done.store(true, Ordering::Relaxed);
    });
    let mut tally = ctx.tally.snapshot();

    let (settled, findings, fds_after, rss_after) = if daemon_exit.is_some() {
        let none = Err("taskmaster is gone".to_string());
        (none, Findings::default(), fds_before, rss_before)
    } else {
        let took = Instant::now();
        let mut end_tally = Tally::default();
        actors::continue_paused(&paths.token_assignment());
        let _ = fs::write(paths.health_flag(), b"");
        let _ = fs::write(paths.calm_flag(), b"");
        let restored = actors::write_config(paths, initial);
        let answer = match restored {
            Ok(()) => client.send(Request::Reload),
            Err(e) => Answer::Broken(e),
        };
        end_tally.record("reload to the first configuration", &answer);
        let settled = settle(
            &mut client,
            &mut end_tally,
            initial,
            paths,
            options.settle_timeout,
        )
        .and(first_settle.clone())
        .map(|()| took.elapsed());
        let findings = look(
            &mut client,
            &mut end_tally,
            paths,
            initial,
            daemon.pid,
            Duration::from_secs(20),
        );
        merge_problems(&mut tally, &end_tally);
        merge_problems(&mut tally, &setup);
        if let Some(exit) = daemon.exited() {
            daemon_exit = Some(exit);
        }
        let fds = procfs::fd_count(daemon.pid).unwrap_or(usize::MAX / 2);
        let rss = procfs::rss_kib(daemon.pid).unwrap_or(u64::MAX / 2);
        (settled, findings, fds, rss)
    };
    let threads_after = procfs::threads(daemon.pid).unwrap_or(0);
    let load_after = procfs::loadavg();
    let shutdown_clean = daemon.shut_down(&socket, Duration::from_secs(60));
    let duration = started.elapsed();
    let left_after_shutdown = daemon::end_stragglers(&paths.token_assignment());
    Report {
        seed: options.seed,
        seconds: options.seconds,
        duration,
        tally,
        settled,
        findings,
        fds: (fds_before, fds_after),
        rss_kib: (rss_before, rss_after),
        threads: (threads_before, threads_after),
        during,
        fd_slack: options.fd_slack,
        rss_slack_kib: options.rss_slack_kib,
        daemon_exit,
        shutdown_clean,
        left_after_shutdown,
        load_before,
        load_after,
        dir: paths.dir.clone(),
    }
}

/// Adds the problems of requests made outside the actors (setting up, settling) to the
/// run's counts; their answers are not actions.
fn merge_problems(tally: &mut Tally, other: &Tally) {
    tally.client_errors += other.client_errors;
    tally.server_errors += other.server_errors;
    tally.never += other.never;
    tally.broken += other.broken;
    tally.rejected += other.rejected;
    for sample in &other.samples {
        if tally.samples.len() < 16 {
            tally.samples.push(sample.clone());
        }
    }
}

/// `status`: every process, or the problem.
fn status(client: &mut TimedClient, tally: &mut Tally) -> Option<Vec<ProcessInfo>> {
    match client.call(Request::Status(Vec::new())) {
        Ok(Reply::Status { processes, .. }) => Some(processes),
        Ok(other) => {
            tally.record("status", &Answer::Broken(format!("unexpected {other:?}")));
            None
        }
        Err(answer) => {
            tally.record("status", &answer);
            None
        }
    }
}

/// Waits until taskmaster is at rest with `layout` in force: every process that layout has is
/// shown and none other, each is where its kind stays when left alone ([`programs::Kind::rest`]:
/// RUNNING for most, FATAL for those that fail; those that are not are started, again when
/// needed), and two looks a moment apart agree. Paused processes are continued meanwhile.
fn settle(
    client: &mut TimedClient,
    tally: &mut Tally,
    layout: &Layout,
    paths: &Paths,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let wanted: Vec<String> = layout.all_process_names();
    let mut previous: Option<Vec<(String, State, Option<u32>)>> = None;
    let mut last_start: Option<Instant> = None;
    loop {
        actors::continue_paused(&paths.token_assignment());
        let mut why = String::from("no status");
        if let Some(processes) = status(client, tally) {
            let mut view: Vec<(String, State, Option<u32>)> = processes
                .iter()
                .map(|p| (check::full_name(p), p.state, p.pid))
                .collect();
            view.sort_by(|a, b| a.0.cmp(&b.0));
            let mut names: Vec<String> = view.iter().map(|v| v.0.clone()).collect();
            names.sort();
            let mut wanted_sorted = wanted.clone();
            wanted_sorted.sort();
            let rest = |p: &ProcessInfo| {
                layout
                    .programs
                    .get(&p.program)
                    .map_or(Rest::Moving, |program| program.kind.rest(p.state))
            };
            let moving: Vec<String> = processes
                .iter()
                .filter(|p| rest(p) == Rest::Moving)
                .map(|p| format!("{} {:?}", check::full_name(p), p.state))
                .collect();
            let down: Vec<String> = processes
                .iter()
                .filter(|p| rest(p) == Rest::Down)
                .map(check::full_name)
                .collect();
            let stable = previous.as_ref() == Some(&view);
            if names == wanted_sorted && moving.is_empty() && down.is_empty() && stable {
                return Ok(());
            }
            if !down.is_empty() && last_start.is_none_or(|at| at.elapsed() > Duration::from_secs(2))
            {
                let answer = client.send(Request::Start(down.clone()));
                tally.record(&format!("start {}", down.join(" ")), &answer);
                last_start = Some(Instant::now());
            }
            why = if names != wanted_sorted {
                format!("shown {names:?}, configured {wanted_sorted:?}")
            } else if !moving.is_empty() {
                format!("between states: {}", moving.join(", "))
            } else if !down.is_empty() {
                format!("not running: {}", down.join(", "))
            } else {
                "still changing".to_string()
            };
            previous = Some(view);
        }
        if Instant::now() >= deadline {
            return Err(why);
        }
        thread::sleep(Duration::from_millis(300));
    }
}

/// Looks at taskmaster and `/proc` until a look finds nothing wrong, at most `timeout`; the
/// last look's findings.
fn look(
    client: &mut TimedClient,
    tally: &mut Tally,
    paths: &Paths,
    layout: &Layout,
    daemon_pid: u32,
    timeout: Duration,
) -> Findings {
    let deadline = Instant::now() + timeout;
    loop {
        actors::continue_paused(&paths.token_assignment());
        let findings = status(client, tally).and_then(|first| {
            let table = Table::read();
            let second = status(client, tally)?;
            Some(check::examine(
                paths, layout, daemon_pid, &first, &table, &second,
            ))
        });
        match findings {
            Some(findings) if findings.unstable == 0 && findings.is_clean() => return findings,
            Some(findings) if Instant::now() >= deadline => return findings,
            _ if Instant::now() >= deadline => {
                let mut findings = Findings::default();
                findings
                    .lies
                    .push("status was not answered at the last look".to_string());
                return findings;
            }
            _ => thread::sleep(Duration::from_millis(200)),
        }
    }
}
