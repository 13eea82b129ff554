//! The failure-types scenario of issue 4, end to end, as one test.
//!
//! A small C worker (`fixture/c/worker.c`) takes a lock file holding its pid, reads integers
//! from stdin, prints `n,n*n` for positive ones, complains `ERROR: Corrupted data N` on stderr
//! for negative ones, and segfaults on 999, leaving its lock behind; a worker that finds a lock
//! already there refuses to run ("stale lock", exit 2). Under taskmaster it is fed a data file
//! (`stdin:`) with 999 in the middle, so every run crashes at the same line:
//!
//! - the corrupted lines raise warnings (`alerts`);
//! - each segfault is a crash (`crashed: SIGSEGV`), not an exit status;
//! - `on_exit` removes the stale lock before the restart, so the next run can take it;
//! - the worker is restarted and crashes the same way again, until its `restart_limit` ends it
//!   FATAL with the cause in its status;
//! - nothing hangs, and no lock file is left behind.

use std::fs;

use crate::support::{is_alive, shell_quote, wait_until, yaml_quote, Sandbox, Taskmaster, TIMEOUT};
use crate::views::{api_wait_for_state, c_fixture, ctl_status, log_lines, start, WORKER};
use serde_json::json;

/// The data file: positives, two corrupted lines, the poison, and lines no run ever reaches.
const DATA: &str = "1\n2\n-3\n4\n-5\n999\n6\n7\n";
/// What one run prints on stdout before it crashes.
const ONE_RUN_OUTPUT: &str = "1,1\n2,4\n4,16\n";
/// The corrupted lines of [`DATA`], as the worker reports them.
const CORRUPTED: [&str; 2] = ["ERROR: Corrupted data -3", "ERROR: Corrupted data -5"];

/// `restart_limit: {count: 2, ...}`: the first run and two restarts, then FATAL.
const RESTART_LIMIT: usize = 2;
const RUNS: usize = RESTART_LIMIT + 1;

/// The worker's configuration. `startretries` is far above what the scenario needs, so that
/// only the restart limit can end it; `starttime: 0` makes each run RUNNING at once, so each
/// crash is an exit from RUNNING that `autorestart` answers. The hook says on stderr which lock
/// it removes (the pid in it), so the test can tell each run's lock was left and removed.
fn configuration(sandbox: &Sandbox) -> String {
    let worker = c_fixture(WORKER);
    let lock = shell_quote(&sandbox.file_str("worker.lock"));
    let on_exit = format!(
        "if [ -e {lock} ]; then \
         echo \"on_exit ($TASKMASTER_EXIT_CAUSE, $TASKMASTER_EXIT_SIGNAL): \
         removing the lock left by pid $(cat {lock})\" >&2; rm {lock}; fi"
    );
    format!(
        "programs:
  worker:
    cmd: {cmd}
    stdin: {stdin}
    starttime: 0
    startretries: 10
    autorestart: unexpected
    restart_limit: {{count: {RESTART_LIMIT}, within: 60s}}
    on_exit: {on_exit}
    alerts:
      - {{match: \"Corrupted data\", stream: stderr, level: warning}}
    stdout: {stdout}
    stderr: {stderr}
",
        cmd = yaml_quote(&format!("{} {lock}", shell_quote(worker))),
        stdin = yaml_quote(&sandbox.file_str("data.txt")),
        on_exit = yaml_quote(&on_exit),
        stdout = yaml_quote(&sandbox.file_str("worker.out")),
        stderr = yaml_quote(&sandbox.file_str("worker.err")),
    )
}

/// The index in `lines` of the `n`-th line (from 0) that contains `needle`.
fn nth_line(lines: &[&str], needle: &str, n: usize) -> usize {
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains(needle))
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or_else(|| {
            panic!(
                "no line {n} containing {needle:?} in:\n{}",
                lines.join("\n")
            )
        })
}

/// Waits until the event log has exactly `count` lines containing `needle` (it may be on its
/// way there), and returns them.
fn wait_for_count(tm: &Taskmaster, needle: &str, count: usize) -> Vec<String> {
    wait_until(
        &format!("{count} log lines containing {needle:?}"),
        TIMEOUT,
        || {
            let lines = log_lines(tm, needle);
            (lines.len() >= count).then_some(lines)
        },
    )
}

#[test]
fn a_crashing_worker_warns_crashes_is_cleaned_up_restarted_and_ends_fatal() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.file("data.txt"), DATA).expect("write the data file");
    let mut tm = start(&sandbox, &configuration(&sandbox));

    // The restart limit ends it. Every wait below has a deadline: a hang fails the test.
    let api = api_wait_for_state(&sandbox, "worker", "FATAL");
    let core_dumped = api["last_exit"]["core_dumped"] == true;
    let crash = if core_dumped {
        "crashed: SIGSEGV (core dumped)"
    } else {
        "crashed: SIGSEGV"
    };
    let reason = format!(
        "restart limit reached: {RUNS} restarts within 60s (restart_limit {RESTART_LIMIT} \
         within 60s); last exit: {crash}"
    );
    let gave_up = tm.wait_for_log("worker: gave up: FATAL: ", TIMEOUT);
    assert!(
        gave_up.ends_with(&format!("worker: gave up: FATAL: {reason}")),
        "{gave_up:?}\n{}",
        tm.log()
    );
    // The last exit's hook too runs to its end, FATAL or not.
    let hooks_done = wait_for_count(&tm, "worker: on_exit hook done", RUNS);
    let alerts = wait_for_count(&tm, "worker: alert (warning) on stderr: ", 2 * RUNS);

    // The cause, in the status and the API.
    let status = ctl_status(&sandbox, "worker");
    assert_eq!(status.state, "FATAL", "{status:?}");
    assert_eq!(status.description, reason, "{status:?}");
    assert_eq!(api["gave_up"], json!(reason), "{api}");
    assert_eq!(api["pid"], json!(null), "{api}");
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": "SIGSEGV", "core_dumped": core_dumped,
               "expected": false, "cause": "crashed", "text": crash})
    );

    // Each run: spawned, crashed (a crash, not an exit status), its hook done, then the next.
    let log = tm.log();
    let lines: Vec<&str> = log.lines().collect();
    let spawned = log_lines(&tm, "worker: spawned with pid ");
    let crashes = log_lines(&tm, &format!("worker: {crash}"));
    assert_eq!(spawned.len(), RUNS, "{log}");
    assert_eq!(crashes.len(), RUNS, "{log}");
    assert_eq!(hooks_done.len(), RUNS, "{log}");
    // The default crash-loop throttle: the first restart of the row at once, the next after
    // 0.1 s.
    let restarts: Vec<String> = log_lines(&tm, "worker: restarting")
        .iter()
        .map(|line| line.split_once(" worker: ").map_or("", |(_, m)| m))
        .map(|message| format!("worker: {message}"))
        .collect();
    assert_eq!(
        restarts,
        [
            "worker: restarting: the exit was not expected",
            "worker: restarting in 100.0ms (backoff): the exit was not expected"
        ],
        "{log}"
    );
    assert_eq!(restarts.len(), RESTART_LIMIT);
    for run in 0..RUNS {
        let crashed_at = nth_line(&lines, &format!("worker: {crash}"), run);
        let hook_done_at = nth_line(&lines, "worker: on_exit hook done", run);
        assert!(
            nth_line(&lines, "worker: spawned with pid ", run) < crashed_at,
            "{log}"
        );
        assert!(crashed_at < hook_done_at, "{log}");
        if run + 1 < RUNS {
            let next_spawn_at = nth_line(&lines, "worker: spawned with pid ", run + 1);
            assert!(
                hook_done_at < next_spawn_at,
                "restarted before its hook:\n{log}"
            );
        }
    }
    assert!(
        !log.contains("status 139") && !log.contains("code 139"),
        "a crash shown as an exit status:\n{log}"
    );
    assert!(
        !log.contains("exited with code"),
        "a run did not crash:\n{log}"
    );

    // Both corrupted lines of every run, and nothing else, raised a warning.
    let expected_alerts: Vec<String> = (0..RUNS)
        .flat_map(|_| CORRUPTED)
        .map(|line| format!("worker: alert (warning) on stderr: {line}"))
        .collect();
    let alert_messages: Vec<String> = alerts
        .iter()
        .map(|line| line.split_once(" worker: ").map_or("", |(_, m)| m))
        .map(|message| format!("worker: {message}"))
        .collect();
    assert_eq!(alert_messages, expected_alerts, "{log}");

    // Each run printed its squares up to the poison, and no further.
    assert_eq!(sandbox.read("worker.out"), ONE_RUN_OUTPUT.repeat(RUNS));

    // Each crash left its lock, with its own pid, and the hook removed it before the next run:
    // no run found a stale lock.
    let pids: Vec<u32> = spawned
        .iter()
        .map(|line| {
            let pid = line.rsplit(' ').next().unwrap_or("");
            pid.parse()
                .unwrap_or_else(|e| panic!("no pid at the end of {line:?}: {e}"))
        })
        .collect();
    let stderr = sandbox.read("worker.err");
    let refusals = stderr
        .lines()
        .filter(|line| line.starts_with("stale lock "));
    assert_eq!(refusals.count(), 0, "a run found a stale lock:\n{stderr}");
    let removals: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("on_exit"))
        .collect();
    let expected_removals: Vec<String> = pids
        .iter()
        .map(|pid| format!("on_exit (crashed, SIGSEGV): removing the lock left by pid {pid}"))
        .collect();
    assert_eq!(removals, expected_removals, "{stderr}");
    for line in CORRUPTED {
        assert_eq!(stderr.matches(line).count(), RUNS, "{stderr}");
    }

    // Nothing is left: no lock, no worker, and the daemon shuts down at once.
    assert!(
        !sandbox.file("worker.lock").exists(),
        "a lock file was left behind"
    );
    for pid in pids {
        assert!(!is_alive(pid), "worker pid {pid} is still alive");
    }
    tm.shutdown();
}
