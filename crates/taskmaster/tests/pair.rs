//! `taskmaster run --pair`: a primary that keeps a hot backup, which takes over when the primary
//! dies (SIGKILL included) with the same children, the same output files and the same control
//! socket, and starts a backup of its own.
//!
//! Every daemon here runs under the fixture's `subreaper` step. A SIGKILLed primary leaves its
//! children and its backup orphans; in this sandbox pid 1 does not reap orphans promptly, so the
//! test's own subreaper adopts and reaps them, as an init that reaps would in a deployment. It
//! also bounds what a test can leave behind: every process the pair ever started is under it,
//! and it exits once none is left.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    config, descendants, fixture_bin, fixture_cmd, is_alive, proc_stat, program, run_to_completion,
    send_signal, shell_quote, taskmaster_bin, wait_until, wait_until_or_none, yaml_quote, Sandbox,
    StatusLine, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;

/// How many times in a row the must-show test kills the primary.
const TAKEOVERS: usize = 5;

/// What the event log says when a backup has the primary's state and children.
const BACKUP_CONNECTED: &str = "the backup is connected";

/// What the event log says when a backup becomes the primary.
const TAKING_OVER: &str = "taking over as primary (pid ";

// ---------------------------------------------------------------------------------------------
// A pair under the test's subreaper
// ---------------------------------------------------------------------------------------------

/// `taskmaster run --pair --no-shell` under `tm-fixture subreaper`, and what the test learned
/// of it. Dropped, it kills every process it saw (see [`Taskmaster`]).
struct Pair<'a> {
    sandbox: &'a Sandbox,
    /// The subreaper: `daemon_pid()` is the subreaper's pid, not a taskmaster's.
    under: Taskmaster,
    /// Every pid the log or ctl named, with its start time when first seen alive: processes
    /// that must all be gone at the end.
    seen: BTreeMap<u32, Option<u64>>,
}

impl<'a> Pair<'a> {
    /// Writes `yaml` and starts the pair on it; returns once the first primary's backup is
    /// connected.
    fn start(sandbox: &'a Sandbox, yaml: &str) -> Pair<'a> {
        Pair::start_from(sandbox, yaml, &taskmaster_bin())
    }

    /// Like [`Pair::start`], with the taskmaster executable at `exe`.
    fn start_from(sandbox: &'a Sandbox, yaml: &str, exe: &std::path::Path) -> Pair<'a> {
        let mut pair = Pair::launch(sandbox, yaml, exe);
        pair.wait_for_log_count(BACKUP_CONNECTED, 1);
        pair
    }

    /// Writes `yaml` and starts the pair on it, without waiting for anything.
    fn launch(sandbox: &'a Sandbox, yaml: &str, exe: &std::path::Path) -> Pair<'a> {
        let config = sandbox.write_config(yaml);
        let mut cmd = Command::new(fixture_bin());
        cmd.args(["subreaper", "--"])
            .arg(exe)
            .arg("run")
            .arg("-c")
            .arg(config)
            .args(["--no-shell", "--pair"])
            .current_dir(sandbox.path())
            .env("HOME", sandbox.path());
        Pair {
            sandbox,
            under: Taskmaster::spawn(sandbox, cmd),
            seen: BTreeMap::new(),
        }
    }

    fn log(&self) -> String {
        self.under.log()
    }

    /// Fails the test with `message`; the event log and the daemons' output follow, printed
    /// as `under` drops while panicking.
    fn fail(&self, message: &str) -> ! {
        panic!("{message}")
    }

    /// Notes `pid` as one of the pair's processes: tracked (SIGKILLed if the test fails) and
    /// checked dead at the end.
    fn saw(&mut self, pid: u32) {
        self.under.track(pid);
        if self.seen.get(&pid).is_some_and(Option::is_some) {
            return;
        }
        let alive = proc_stat(pid).filter(|stat| stat.state != 'Z');
        self.seen.insert(pid, alive.map(|stat| stat.starttime));
    }

    /// Notes every pid the event log names.
    fn saw_log(&mut self) {
        for pid in pids_in(&self.log()) {
            self.saw(pid);
        }
    }

    /// How many lines of the event log contain `needle`.
    fn log_count(&self, needle: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits until at least `count` lines of the event log contain `needle`.
    fn wait_for_log_count(&mut self, needle: &str, count: usize) {
        let found = wait_until_or_none(TIMEOUT, || (self.log_count(needle) >= count).then_some(()));
        self.saw_log();
        if found.is_none() {
            self.fail(&format!(
                "fewer than {count} log lines containing {needle:?} within {TIMEOUT:?}"
            ));
        }
    }

    /// The pid the last line containing `prefix` names right after it.
    fn last_pid_after(&self, prefix: &str) -> Option<u32> {
        self.log()
            .lines()
            .rev()
            .filter_map(|line| line.split_once(prefix))
            .find_map(|(_, rest)| leading_number(rest))
    }

    /// `ctl pid`: the primary's pid, once ctl gets an answer (between a primary's death and
    /// its successor's start, nobody answers).
    fn primary_pid(&mut self) -> u32 {
        let answered = wait_until_or_none(TIMEOUT, || {
            let ran = self.sandbox.ctl(&["pid"]);
            let pid = ran.stdout.trim().parse::<u32>().ok()?;
            (ran.code == Some(0)).then_some(pid)
        });
        let Some(pid) = answered else {
            self.fail(&format!("`ctl pid` never answered within {TIMEOUT:?}"));
        };
        self.saw(pid);
        pid
    }

    /// `ctl status`: each process's status line, by name. Fails the test if ctl does not get
    /// an answer, or if `all_running` and a process is not RUNNING.
    fn status(&mut self, all_running: bool) -> BTreeMap<String, StatusLine> {
        let ran = self.sandbox.ctl(&["status"]);
        // 0: every process RUNNING; 3: some are not.
        let answered = ran.code == Some(0) || ran.code == Some(3) && !all_running;
        if !answered || !ran.stderr.is_empty() {
            self.fail(&format!("`ctl status` failed: {ran:?}"));
        }
        let mut statuses = BTreeMap::new();
        // A pair's status starts with a line about the pair itself: `pair: primary pid ...`.
        for line in ran
            .stdout
            .lines()
            .filter(|line| !line.starts_with("pair: "))
        {
            let Some(status) = StatusLine::parse(line) else {
                self.fail(&format!("`ctl status` printed {line:?}: {ran:?}"));
            };
            if let Some(pid) = status.pid() {
                self.saw(pid);
            }
            statuses.insert(status.name.clone(), status);
        }
        statuses
    }

    /// `ctl status` with every process RUNNING: each one's pid, by name.
    fn running_pids(&mut self) -> BTreeMap<String, u32> {
        let statuses = self.status(true);
        statuses
            .into_iter()
            .map(|(name, status)| match status.pid() {
                Some(pid) => (name, pid),
                None => self.fail(&format!("RUNNING without a pid: {status:?}")),
            })
            .collect()
    }

    /// SIGKILLs the primary `primary` (whose backup is connected) and waits for its successor
    /// to answer `ctl pid`; returns the successor's pid and how long that took.
    fn kill_primary(&mut self, primary: u32) -> (u32, Duration) {
        let killed_at = Instant::now();
        if let Err(e) = send_signal(primary, Signal::KILL) {
            self.fail(&format!("cannot SIGKILL the primary {primary}: {e}"));
        }
        let successor = wait_until_or_none(TIMEOUT, || {
            let ran = self.sandbox.ctl(&["pid"]);
            let pid = ran.stdout.trim().parse::<u32>().ok()?;
            (ran.code == Some(0) && pid != primary).then_some(pid)
        });
        let took = killed_at.elapsed();
        self.saw_log();
        let Some(successor) = successor else {
            self.fail(&format!(
                "no new primary answered `ctl pid` within {TIMEOUT:?} of SIGKILL to {primary}"
            ));
        };
        self.saw(successor);
        (successor, took)
    }

    /// `ctl shutdown`, then waits for the subreaper to exit: it does once no process is left
    /// under it. Then checks that every process the test saw is gone, killing any leftover (by
    /// pid) before failing. Returns the subreaper's exit status (that of the first primary).
    fn shutdown(&mut self) -> std::process::ExitStatus {
        let shutdown = self.sandbox.ctl(&["shutdown"]);
        if shutdown.code != Some(0) || shutdown.stdout != "Shut down\n" {
            self.fail(&format!("`ctl shutdown` failed: {shutdown:?}"));
        }
        self.saw_log();
        let subreaper = self.under.daemon_pid();
        let left_under =
            wait_until_or_none(TIMEOUT, || descendants(subreaper).is_empty().then_some(()));
        if left_under.is_none() {
            self.fail(&format!(
                "processes left under the subreaper {TIMEOUT:?} after the shutdown: {:?}",
                descendants(subreaper)
            ));
        }
        let status = self.under.wait_exit(TIMEOUT);
        let leftovers: Vec<u32> = self
            .seen
            .iter()
            // A pid first seen dead (in the log) and alive now is another process's.
            .filter(|&(&pid, &starttime)| {
                let now = proc_stat(pid).filter(|stat| stat.state != 'Z');
                now.zip(starttime)
                    .is_some_and(|(now, then)| now.starttime == then)
            })
            .map(|(&pid, _)| pid)
            .collect();
        for &pid in &leftovers {
            let _ = send_signal(pid, Signal::KILL);
        }
        if !leftovers.is_empty() {
            self.fail(&format!(
                "still alive after the shutdown (now SIGKILLed): {leftovers:?}"
            ));
        }
        status
    }
}

/// A client that runs `ctl status` every `period` on a thread of its own, for as long as it
/// lives (at most [`TIMEOUT`] * 3), and sends the primary's pid from each answer's pair line
/// (`pair: primary pid N, ...`) down a channel: a busy control socket, and an observer of
/// takeovers as a client sees them.
struct StatusPoller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
    primaries: std::sync::mpsc::Receiver<(u32, String)>,
}

impl StatusPoller {
    fn start(sandbox: &Sandbox, period: Duration) -> StatusPoller {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (send, primaries) = std::sync::mpsc::channel();
        let command = sandbox.ctl_command(&["status"]);
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let folder = sandbox.path().to_owned();
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let rounds = (TIMEOUT * 3).as_millis() / period.as_millis().max(1);
            let mut answered = 0;
            for _ in 0..rounds {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let mut status = Command::new(&program);
                status.args(&args).current_dir(&folder).env("HOME", &folder);
                let output = run_to_completion(status, TIMEOUT);
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                let pair_line = text.lines().find(|line| line.starts_with("pair: "));
                if let Some(line) = pair_line {
                    answered += 1;
                    let primary = line
                        .strip_prefix("pair: primary pid ")
                        .and_then(leading_number);
                    if let Some(primary) = primary {
                        let _ = send.send((primary, line.to_owned()));
                    }
                }
                std::thread::sleep(period);
            }
            answered
        });
        StatusPoller {
            stop,
            thread: Some(thread),
            primaries,
        }
    }

    /// The first primary it sees that is not `old`, with the pair line that showed it.
    fn next_primary(&self, old: u32) -> Option<(u32, String)> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (pid, line) = self.primaries.recv_timeout(left).ok()?;
            if pid != old {
                return Some((pid, line));
            }
        }
    }

    /// Stops it; how many answers with a pair line it got.
    fn finish(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    }
}

impl Drop for StatusPoller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Every number that follows `pid ` in `text`: the pids the event log names.
fn pids_in(text: &str) -> Vec<u32> {
    text.match_indices("pid ")
        .filter_map(|(at, word)| leading_number(&text[at + word.len()..]))
        .collect()
}

/// The number `text` starts with.
fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------

/// A `cmd:` running `script` with `sh -c`.
fn sh(script: &str) -> String {
    yaml_quote(&format!("sh -c {}", shell_quote(script)))
}

/// `counter`: `numprocs` processes, each appending `NAME N` (N = 1, 2, 3, ...) to counter.out
/// every ~20 ms, a line per write (`echo` is a shell builtin), through taskmaster's capture.
fn counter(numprocs: usize) -> String {
    counter_with(numprocs, &[])
}

/// [`counter`] with `extra` keys.
fn counter_with(numprocs: usize, extra: &[&str]) -> String {
    let numprocs = format!("numprocs: {numprocs}");
    let mut keys = vec![
        numprocs.as_str(),
        "starttime: 0",
        "stoptime: 2",
        "stdout: counter.out",
    ];
    keys.extend_from_slice(extra);
    program(
        "counter",
        &sh(r#"i=0; while :; do i=$((i+1)); echo "$TASKMASTER_PROCESS_NAME $i"; sleep 0.02; done"#),
        &keys,
    )
}

/// Asserts that counter.out holds each of `counters`' lines exactly once, in order, and at
/// least 10 of each.
fn assert_counted_once(pair: &Pair<'_>, sandbox: &Sandbox, counters: &[&str]) {
    let text = sandbox.read("counter.out");
    assert!(text.ends_with('\n'), "counter.out ends mid-line");
    let numbers = counted(&text);
    assert_eq!(numbers.len(), counters.len(), "{:?}", numbers.keys());
    for name in counters {
        let written = &numbers[*name];
        let last = written.len() as u64;
        let expected: Vec<u64> = (1..=last).collect();
        if *written != expected {
            let first_wrong = written
                .iter()
                .zip(&expected)
                .position(|(got, want)| got != want);
            pair.fail(&format!(
                "{name} wrote {last} lines, not 1..={last} in order; first difference at line \
                 {first_wrong:?}: {:?}",
                first_wrong.map(|at| &written[at.saturating_sub(2)..(at + 3).min(written.len())])
            ));
        }
        assert!(last >= 10, "{name} wrote only {last} lines");
    }
}

/// `quitter`: exits with code 7 once the file `quit` exists, removing it first so that the
/// restarted one waits again.
fn quitter(sandbox: &Sandbox) -> String {
    let quit = shell_quote(&sandbox.file_str("quit"));
    program(
        "quitter",
        &sh(&format!(
            "while [ ! -e {quit} ]; do sleep 0.02; done; rm -f {quit}; exit 7"
        )),
        &["starttime: 0", "stoptime: 2", "autorestart: unexpected"],
    )
}

/// `sleeper`: does nothing, for tests about the pair itself.
fn sleeper() -> String {
    program(
        "sleeper",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", "stoptime: 2"],
    )
}

/// counter.out, as each process's numbers in the order they were written. Fails on a line that
/// is not `NAME N`.
fn counted(text: &str) -> HashMap<String, Vec<u64>> {
    let mut numbers: HashMap<String, Vec<u64>> = HashMap::new();
    for line in text.lines() {
        let parsed = line
            .split_once(' ')
            .and_then(|(name, n)| Some((name, n.parse::<u64>().ok()?)));
        let Some((name, n)) = parsed else {
            panic!("counter.out has a malformed line {line:?}:\n{text}");
        };
        numbers.entry(name.to_owned()).or_default().push(n);
    }
    numbers
}

/// The last number each counter process has written so far.
fn last_counts(sandbox: &Sandbox) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(sandbox.file("counter.out")).unwrap_or_default();
    // A line still being written may be cut short: only whole lines count.
    let whole = &text[..text.rfind('\n').map_or(0, |at| at + 1)];
    counted(whole)
        .into_iter()
        .filter_map(|(name, numbers)| Some((name, *numbers.last()?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The must-show test: the primary SIGKILLed 5 times in a row, and nothing the children see or
/// write is any the wiser.
#[test]
fn the_primary_killed_five_times_leaves_every_child_running_and_every_line_written_once() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[counter(3), quitter(&sandbox)]));
    let first_primary = pair
        .last_pid_after("taskmaster started (pid ")
        .unwrap_or_else(|| pair.fail("no `taskmaster started` line"));
    let children = pair.running_pids();
    let names: Vec<&str> = children.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "counter:counter_00",
            "counter:counter_01",
            "counter:counter_02",
            "quitter"
        ]
    );
    let counters = ["counter_00", "counter_01", "counter_02"];
    wait_until("every counter to write", TIMEOUT, || {
        let counts = last_counts(&sandbox);
        counters
            .iter()
            .all(|name| counts.contains_key(*name))
            .then_some(())
    });

    let mut primary = first_primary;
    let mut takeover_times = Vec::new();
    for round in 1..=TAKEOVERS {
        // Each primary's backup connects once: the first primary's, then each successor's.
        pair.wait_for_log_count(BACKUP_CONNECTED, round);
        assert_eq!(pair.primary_pid(), primary, "round {round}");
        let backup = pair
            .last_pid_after("backup started (pid ")
            .unwrap_or_else(|| pair.fail("no `backup started` line"));
        assert_eq!(pair.running_pids(), children, "round {round}, before");
        let counts_at_kill = last_counts(&sandbox);

        let (successor, took) = pair.kill_primary(primary);
        takeover_times.push(took);
        assert_eq!(successor, backup, "round {round}: the backup took over");
        assert_eq!(pair.running_pids(), children, "round {round}, after");
        assert_eq!(pair.log_count(TAKING_OVER), round);
        let taking_over = pair
            .log()
            .lines()
            .rfind(|line| line.contains(TAKING_OVER))
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(
            taking_over.contains(&format!("{TAKING_OVER}{successor}): "))
                && taking_over.ends_with("; 4 child(ren) adopted"),
            "round {round}: {taking_over:?}"
        );
        // Output keeps flowing into the file under the new primary.
        wait_until(
            "the counters to write on after the takeover",
            TIMEOUT,
            || {
                let counts = last_counts(&sandbox);
                counters
                    .iter()
                    .all(|name| counts.get(*name) > counts_at_kill.get(*name))
                    .then_some(())
            },
        );
        primary = successor;
    }
    eprintln!("takeovers (SIGKILL to `ctl pid` answered by the successor): {takeover_times:?}");

    // No child was started twice: one spawn each, by the first primary.
    assert_eq!(pair.running_pids(), children);
    let log = pair.log();
    for name in children.keys() {
        let spawns = log
            .lines()
            .filter(|line| line.contains(&format!("{name}: spawned with pid ")))
            .count();
        assert_eq!(spawns, 1, "{name} spawned {spawns} times:\n{log}");
    }

    // An adopted child's exit is seen with its real code, and it is restarted by the current
    // primary, as its own child.
    let old_quitter = children["quitter"];
    std::fs::write(sandbox.file("quit"), "").expect("create the quit file");
    pair.wait_for_log_count("quitter: exited with code 7", 1);
    let restarted = wait_until_or_none(TIMEOUT, || {
        let statuses = pair.status(false);
        let quitter = statuses.get("quitter")?;
        let pid = quitter.pid()?;
        (quitter.state == "RUNNING" && pid != old_quitter).then_some(pid)
    });
    let Some(new_quitter) = restarted else {
        pair.fail("quitter was not restarted");
    };
    assert_eq!(
        proc_stat(new_quitter).map(|stat| stat.ppid),
        Some(primary),
        "the restarted quitter is the current primary's child"
    );
    assert_eq!(pair.log_count("quitter: spawned with pid "), 2);
    let mut expected = children.clone();
    expected.insert("quitter".to_owned(), new_quitter);
    assert_eq!(pair.running_pids(), expected);

    // Every line each counter wrote is in the file exactly once.
    let stop = sandbox.ctl(&["stop", "counter:*"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert_counted_once(&pair, &sandbox, &counters);

    pair.shutdown();
}

/// A file the processes write themselves (never rotated: `stdout_maxbytes: 0`) has nothing
/// to hand over: the primary's death costs it no line, and the counters write on.
#[test]
fn a_file_the_processes_write_themselves_loses_no_line_across_a_takeover() {
    let sandbox = Sandbox::new();
    let yaml = config(&[counter_with(2, &["stdout_maxbytes: 0"])]);
    let mut pair = Pair::start(&sandbox, &yaml);
    let children = pair.running_pids();
    for pid in children.values() {
        let stdout = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap_or_default();
        assert_eq!(
            stdout,
            sandbox.file("counter.out"),
            "pid {pid} writes the file"
        );
    }
    let counters = ["counter_00", "counter_01"];
    // Every counter 10 lines past `at`.
    let all_past = |at: &HashMap<String, u64>| {
        let counts = last_counts(&sandbox);
        counters
            .iter()
            .all(|name| {
                counts.get(*name).copied().unwrap_or(0) >= at.get(*name).copied().unwrap_or(0) + 10
            })
            .then_some(())
    };
    wait_until("every counter to write", TIMEOUT, || {
        all_past(&HashMap::new())
    });
    let primary = pair.primary_pid();
    let counts_at_kill = last_counts(&sandbox);
    let (successor, _) = pair.kill_primary(primary);
    assert_ne!(successor, primary);
    assert_eq!(pair.running_pids(), children, "the same children");
    wait_until("the counters to write on", TIMEOUT, || {
        all_past(&counts_at_kill)
    });
    let stop = sandbox.ctl(&["stop", "counter:*"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert_counted_once(&pair, &sandbox, &counters);
    pair.shutdown();
}

/// A shutdown asked of the primary ends the backup too: it exits rather than take over.
#[test]
fn a_shutdown_ends_the_backup_too() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper()]));
    let primary = pair.primary_pid();
    let backup = pair
        .last_pid_after("backup started (pid ")
        .unwrap_or_else(|| pair.fail("no `backup started` line"));
    assert_ne!(backup, primary);
    assert!(is_alive(backup), "the backup {backup} is not running");

    let status = pair.shutdown();
    assert!(status.success(), "the primary exited with {status}");
    assert!(!is_alive(backup));
    let log = pair.log();
    assert!(!log.contains(TAKING_OVER), "the backup took over:\n{log}");
}

/// A backup that dies is replaced by a new one, which takes over when the primary dies.
#[test]
fn a_dead_backup_is_replaced_and_the_new_one_takes_over() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper()]));
    let primary = pair.primary_pid();
    let children = pair.running_pids();
    let first_backup = pair
        .last_pid_after("backup started (pid ")
        .unwrap_or_else(|| pair.fail("no `backup started` line"));

    if let Err(e) = send_signal(first_backup, Signal::KILL) {
        pair.fail(&format!("cannot SIGKILL the backup {first_backup}: {e}"));
    }
    pair.wait_for_log_count("backup started (pid ", 2);
    pair.wait_for_log_count(BACKUP_CONNECTED, 2);
    let second_backup = pair
        .last_pid_after("backup started (pid ")
        .unwrap_or_else(|| pair.fail("no second `backup started` line"));
    assert_ne!(second_backup, first_backup);
    assert!(!is_alive(first_backup));
    assert!(
        pair.log()
            .contains(&format!("the backup (pid {first_backup})")),
        "the backup's death is not logged"
    );
    assert_eq!(pair.log_count(TAKING_OVER), 0, "the dead backup took over?");

    let (successor, _) = pair.kill_primary(primary);
    assert_eq!(successor, second_backup);
    assert_eq!(pair.running_pids(), children);
    pair.shutdown();
}

#[test]
fn a_primary_killed_the_moment_its_backup_connects_is_taken_over() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper(), counter(2)]));
    // Straight from the log, without a round trip through ctl: the backup is told the state
    // before "connected" is logged, so even now it can take over.
    let primary = pair
        .last_pid_after("taskmaster started (pid ")
        .unwrap_or_else(|| pair.fail("no `taskmaster started` line"));
    let (successor, _) = pair.kill_primary(primary);
    assert_ne!(successor, primary);
    assert_eq!(pair.log_count(TAKING_OVER), 1);
    pair.shutdown();
}

/// `ctl takeover` (and `upgrade`) until a new primary answers `ctl pid`; its pid.
fn hand_over(pair: &mut Pair<'_>, command: &str, old_primary: u32) -> u32 {
    let ran = pair.sandbox.ctl(&[command]);
    assert_eq!(ran.code, Some(0), "`ctl {command}`: {ran:?}");
    assert!(
        ran.stdout.starts_with("Handed over to the backup (pid "),
        "{ran:?}"
    );
    let successor = wait_until_or_none(TIMEOUT, || {
        let ran = pair.sandbox.ctl(&["pid"]);
        let pid = ran.stdout.trim().parse::<u32>().ok()?;
        (ran.code == Some(0) && pid != old_primary).then_some(pid)
    })
    .unwrap_or_else(|| pair.fail(&format!("no new primary after `ctl {command}`")));
    pair.saw(successor);
    successor
}

#[test]
fn takeover_hands_over_to_the_backup_with_every_child_running() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper(), counter(2)]));
    let primary = pair.primary_pid();
    let children = pair.running_pids();
    let backup = pair
        .last_pid_after("backup started (pid ")
        .unwrap_or_else(|| pair.fail("no `backup started` line"));
    let successor = hand_over(&mut pair, "takeover", primary);
    assert_eq!(successor, backup, "the backup took over");
    assert_eq!(pair.running_pids(), children, "no child restarted");
    assert!(pair.log().contains("the primary handed over"));
    // A handover is no death: the old primary exited by itself, and was not killed.
    wait_until("the old primary to exit", TIMEOUT, || {
        (!is_alive(primary)).then_some(())
    });
    pair.shutdown();
}

#[test]
fn upgrade_hands_over_to_the_executables_new_file() {
    let sandbox = Sandbox::new();
    let exe = sandbox.file("taskmaster");
    std::fs::copy(taskmaster_bin(), &exe).expect("copy taskmaster");
    let mut pair = Pair::start_from(&sandbox, &config(&[sleeper(), counter(2)]), &exe);
    let primary = pair.primary_pid();
    let children = pair.running_pids();
    // The new binary: another file at the same path (a new inode), as a package upgrade does.
    let staged = sandbox.file("taskmaster.new");
    std::fs::copy(taskmaster_bin(), &staged).expect("copy the new taskmaster");
    std::fs::rename(&staged, &exe).expect("replace taskmaster");
    let new_inode = std::fs::metadata(&exe).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let successor = hand_over(&mut pair, "upgrade", primary);
    let running = std::fs::metadata(format!("/proc/{successor}/exe"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_eq!(
        running.ok(),
        new_inode.ok(),
        "the new primary runs the new file"
    );
    assert_eq!(pair.running_pids(), children, "no child restarted");
    pair.shutdown();
}

#[test]
fn takeover_without_a_pair_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[sleeper()]));
    let mut tm = crate::support::Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("sleeper", "RUNNING", TIMEOUT);
    let ran = sandbox.ctl(&["takeover"]);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stdout.contains("not running as a pair"), "{ran:?}");
}

/// How long a paused backup stays paused: longer than the silence (1 s by default) after which
/// it would take over if it mistook its own pause for the primary's.
const BACKUP_PAUSE: Duration = Duration::from_millis(2500);

#[test]
fn a_paused_backup_that_resumes_stays_the_backup() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper()]));
    let primary = pair.primary_pid();
    let backup = pair
        .last_pid_after("backup started (pid ")
        .unwrap_or_else(|| pair.fail("no `backup started` line"));
    send_signal(backup, Signal::STOP).expect("SIGSTOP the backup");
    // A bounded observation window, not a wait for a condition: nothing must happen in it.
    std::thread::sleep(BACKUP_PAUSE);
    send_signal(backup, Signal::CONT).expect("SIGCONT the backup");
    // It reads what the primary sent meanwhile, and finds it alive: no takeover.
    let still = wait_until_or_none(Duration::from_secs(2), || {
        (pair.log_count(TAKING_OVER) > 0).then_some(())
    });
    assert!(
        still.is_none(),
        "the resumed backup took over:\n{}",
        pair.log()
    );
    assert_eq!(pair.primary_pid(), primary);
    let (successor, _) = pair.kill_primary(primary);
    assert_eq!(
        successor, backup,
        "the resumed backup still takes over when it must"
    );
    pair.shutdown();
}

/// A child's stdin pipe (`stdin: pipe`) is held by the backup too: when the primary dies the
/// child sees no end of its input, and input sent to the new primary reaches it.
#[test]
fn a_stdin_pipe_outlives_the_primary() {
    let sandbox = Sandbox::new();
    let echo = program(
        "echo",
        &fixture_cmd(&["stdin-echo"]),
        &["starttime: 0", "stdin: pipe", "stdout: echo.out"],
    );
    let mut pair = Pair::start(&sandbox, &config(&[echo]));
    let primary = pair.primary_pid();
    let children = pair.running_pids();
    let sent = sandbox.ctl(&["sendstdin", "echo", "before"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    sandbox.wait_for_contents("echo.out", |text| text == "before\n", TIMEOUT);

    pair.kill_primary(primary);
    let sent = sandbox.ctl(&["sendstdin", "echo", "after"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    sandbox.wait_for_contents("echo.out", |text| text == "before\nafter\n", TIMEOUT);
    // stdin-echo exits at the end of its input: the same child still runs.
    assert_eq!(pair.running_pids(), children);
    pair.shutdown();
}

/// The next `tick N` datagram `syslog` gets after `USR1` to `pid`, asked again until one comes:
/// a line read by a primary that died before it sent it is lost, not a failure.
fn next_tick(syslog: &std::os::unix::net::UnixDatagram, pid: u32) -> String {
    let mut buffer = vec![0u8; 4096];
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        send_signal(pid, Signal::USR1).expect("USR1 to ticker");
        if let Ok(read) = syslog.recv(&mut buffer) {
            return String::from_utf8_lossy(&buffer[..read]).into_owned();
        }
    }
    panic!("no line reached syslog within {TIMEOUT:?}");
}

#[test]
fn a_stream_sent_to_syslog_reaches_it_after_a_takeover() {
    let sandbox = Sandbox::new();
    let socket = sandbox.file("log.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&socket).expect("bind a syslog socket");
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let ticker = program(
        "ticker",
        &sh(
            "i=0; tick() { i=$((i+1)); echo tick $i; }; trap tick USR1; \
             while :; do sleep 0.05; done",
        ),
        &["starttime: 0", "stoptime: 2", "stdout: syslog"],
    );
    let yaml = format!(
        "syslog_socket: {}\n{}",
        yaml_quote(&sandbox.file_str("log.sock")),
        config(&[ticker])
    );
    let mut pair = Pair::start(&sandbox, &yaml);
    let primary = pair.primary_pid();
    let ticker = pair.running_pids()["ticker"];
    let tagged = format!(" ticker[{ticker}]: tick ");
    assert!(next_tick(&syslog, ticker).contains(&tagged));
    pair.kill_primary(primary);
    // The backup drains the same pipe to the same socket: the child goes on, unblocked.
    assert!(next_tick(&syslog, ticker).contains(&tagged));
    assert_eq!(pair.running_pids()["ticker"], ticker, "no restart");
    pair.shutdown();
}

/// The children a backup took over are not its own: it learns of their pauses by looking,
/// and `status` says so as it does for its own children.
#[test]
fn a_pause_of_a_taken_over_child_shows_in_status() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper()]));
    let primary = pair.primary_pid();
    let sleeper = pair.running_pids()["sleeper"];
    pair.kill_primary(primary);
    let description = |pair: &mut Pair<'_>| pair.status(true)["sleeper"].description.clone();
    send_signal(sleeper, Signal::STOP).expect("SIGSTOP the sleeper");
    let paused = wait_until_or_none(TIMEOUT, || {
        let now = description(&mut pair);
        now.ends_with(", paused (SIGSTOP)").then_some(now)
    });
    assert!(
        paused.is_some(),
        "the pause never showed: {}",
        description(&mut pair)
    );
    send_signal(sleeper, Signal::CONT).expect("SIGCONT the sleeper");
    wait_until("the resume to show", TIMEOUT, || {
        (!description(&mut pair).contains("paused")).then_some(())
    });
    assert!(pair.log().contains("sleeper: paused by SIGSTOP"));
    assert!(pair.log().contains("sleeper: resumed (SIGCONT)"));
    assert_eq!(pair.running_pids()["sleeper"], sleeper);
    pair.shutdown();
}

/// A primary whose control socket never rests (a client asks for `status` every 50 ms from
/// its very start) still starts its backup, and so does its successor after a takeover: the
/// pair's duties run on a schedule of their own, not when the loop happens to be idle.
#[test]
fn a_primary_polled_without_rest_starts_its_backup_and_so_does_its_successor() {
    let sandbox = Sandbox::new();
    let yaml = config(&[sleeper()]);
    sandbox.write_config(&yaml);
    let poller = StatusPoller::start(&sandbox, Duration::from_millis(50));
    let mut pair = Pair::launch(&sandbox, &yaml, &taskmaster_bin());
    pair.wait_for_log_count(BACKUP_CONNECTED, 1);
    // The poller is answered before the kill: the takeover happens under its requests.
    assert!(
        poller.next_primary(0).is_some(),
        "the poller never got an answer"
    );
    let primary = pair.primary_pid();
    let children = pair.running_pids();
    let (successor, _) = pair.kill_primary(primary);
    pair.wait_for_log_count(BACKUP_CONNECTED, 2);
    assert_eq!(pair.running_pids(), children);
    let answers = poller.finish();
    assert!(answers > 0, "the poller never got an answer");
    assert_ne!(successor, primary);
    pair.shutdown();
}

/// The must-show test for a takeover under load: a client polls `status` every 20 ms; as soon
/// as it shows a new primary, that primary is SIGKILLed, 10 times in a row. Each time the pair
/// survives (a client that sees the takeover sees a pair with a connected backup), and at
/// the end every child is still supervised, with the same pid.
#[test]
fn the_new_primary_killed_as_soon_as_the_takeover_shows_is_survived_ten_times() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper(), counter(2)]));
    let children = pair.running_pids();
    let first = pair.primary_pid();
    let poller = StatusPoller::start(&sandbox, Duration::from_millis(20));
    let mut primary = first;
    for round in 1..=10 {
        if let Err(e) = send_signal(primary, Signal::KILL) {
            pair.fail(&format!("round {round}: cannot SIGKILL {primary}: {e}"));
        }
        let Some((successor, line)) = poller.next_primary(primary) else {
            pair.saw_log();
            pair.fail(&format!(
                "round {round}: no new primary showed in status within {TIMEOUT:?} of SIGKILL \
                 to {primary}: the pair did not survive"
            ));
        };
        pair.saw(successor);
        assert!(
            line.contains(", backup pid "),
            "round {round}: the takeover showed without a connected backup: {line:?}"
        );
        primary = successor;
    }
    poller.finish();
    pair.saw_log();
    assert_eq!(pair.primary_pid(), primary);
    assert_eq!(pair.running_pids(), children, "every child, the same pids");
    assert_eq!(pair.log_count(TAKING_OVER), 10);
    pair.shutdown();
}

/// A turn far longer than the backup's patience (a `start all`, then a `stop all`, of 1,000
/// processes, most of a second in a debug build, with a backup that waits 150 ms for a word)
/// does not lose the primary, nor the backup: heartbeats go out in the middle of the turn,
/// even while the writer serializes what the turn changed; a large message still arriving
/// counts as a word; and a primary silent anyway (its threads starved on a loaded machine) is
/// seen working. Whether the backup ever found it silent is the machine's load, not a pass or
/// a fail.
#[test]
fn a_turn_longer_than_the_backups_patience_loses_neither_primary_nor_backup() {
    let sandbox = Sandbox::new();
    let many = program(
        "many",
        &fixture_cmd(&["sleep", "forever"]),
        &[
            "numprocs: 1000",
            "autostart: false",
            "starttime: 0",
            "stoptime: 10",
        ],
    );
    let yaml = format!("pair: {{interval: 25ms, misses: 6}}\n{}", config(&[many]));
    let mut pair = Pair::start(&sandbox, &yaml);
    let primary = pair.primary_pid();
    for command in ["start", "stop"] {
        let ran = sandbox.ctl(&[command, "all"]);
        assert_eq!(ran.code, Some(0), "`ctl {command} all`: {ran:?}");
    }
    let stopped = wait_until_or_none(TIMEOUT, || {
        let ran = sandbox.ctl(&["status"]);
        let lines: Vec<&str> = ran
            .stdout
            .lines()
            .filter(|l| l.starts_with("many:"))
            .collect();
        (lines.len() == 1000 && lines.iter().all(|l| l.contains("STOPPED"))).then_some(())
    });
    if stopped.is_none() {
        pair.fail("the 1,000 processes did not all stop");
    }
    assert_eq!(pair.primary_pid(), primary, "the primary changed");
    assert_eq!(
        pair.log_count(TAKING_OVER),
        0,
        "a takeover:\n{}",
        pair.log()
    );
    assert_eq!(
        pair.log_count("the backup (pid"),
        0,
        "the backup was dropped or ended:\n{}",
        pair.log()
    );
    pair.shutdown();
}

/// `status` says when the pair has no backup that could take over: while the backup is being
/// replaced (here, one that cannot start, its configuration file gone) and until a new one
/// is connected.
#[test]
fn status_says_while_the_pair_has_no_connected_backup() {
    let sandbox = Sandbox::new();
    let mut pair = Pair::start(&sandbox, &config(&[sleeper()]));
    let pair_line = |pair: &Pair<'_>| {
        let ran = pair.sandbox.ctl(&["status"]);
        ran.stdout
            .lines()
            .find(|line| line.starts_with("pair: "))
            .map(str::to_owned)
            .unwrap_or_else(|| pair.fail(&format!("no pair line: {ran:?}")))
    };
    let shows_the_last_backup = |pair: &Pair<'_>| {
        let backup = pair
            .last_pid_after("backup started (pid ")
            .unwrap_or_else(|| pair.fail("no `backup started` line"));
        let line = pair_line(pair);
        assert!(
            line.contains(&format!(", backup pid {backup},")),
            "{line:?}"
        );
        backup
    };
    let backup = shows_the_last_backup(&pair);
    // Backups started now cannot read the configuration: none ever connects.
    let config = sandbox.config_path();
    let aside = sandbox.file("taskmaster.yaml.aside");
    std::fs::rename(&config, &aside).expect("move the configuration aside");
    if let Err(e) = send_signal(backup, Signal::KILL) {
        pair.fail(&format!("cannot SIGKILL the backup {backup}: {e}"));
    }
    pair.wait_for_log_count("backup started (pid ", 3);
    for _ in 0..5 {
        let line = pair_line(&pair);
        assert!(line.contains("NO BACKUP YET"), "{line:?}");
    }
    std::fs::rename(&aside, &config).expect("put the configuration back");
    pair.wait_for_log_count(BACKUP_CONNECTED, 2);
    shows_the_last_backup(&pair);
    pair.shutdown();
}

/// `pidfile` names the primary: the first one, the one that takes over after a SIGKILL, the
/// one handed over to; it goes at the shutdown.
#[test]
fn the_pid_file_names_whichever_process_is_the_primary() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file("tm.pid");
    let yaml = format!(
        "pidfile: {}\n{}",
        yaml_quote(&sandbox.file_str("tm.pid")),
        config(&[sleeper()])
    );
    let mut pair = Pair::start(&sandbox, &yaml);
    let names = |pid: u32| {
        let wanted = format!("{pid}\n");
        wait_until_or_none(TIMEOUT, || {
            (std::fs::read_to_string(&pidfile).ok()? == wanted).then_some(())
        })
        .is_some()
    };
    let primary = pair.primary_pid();
    assert!(names(primary), "the pid file does not name {primary}");
    let (successor, _) = pair.kill_primary(primary);
    assert!(names(successor), "the pid file does not name {successor}");
    pair.wait_for_log_count(BACKUP_CONNECTED, 2);
    let handed = hand_over(&mut pair, "takeover", successor);
    assert!(names(handed), "the pid file does not name {handed}");
    // The primary that handed over left it to its successor.
    wait_until("the old primary to exit", TIMEOUT, || {
        (!is_alive(successor)).then_some(())
    });
    assert!(names(handed));
    pair.shutdown();
    assert!(!pidfile.exists(), "the pid file outlived the pair");
}
