//! Recovery (issue 4, items 7 to 10) on real processes: the kill button through `ctl`, the
//! shell of `taskmaster run` and the API; the `on_exit` hook that cleans up before the restart
//! (and one that times out); `restart_limit` ending a crash loop FATAL; `backoff` spacing the
//! restarts, and the default crash-loop throttle (issue 5, item 5) with the event log's
//! coalescing; `alerts` on output lines; and `stdin: PATH`.

use crate::support::unix_http;

use std::fs::File;
use std::process::Stdio;

use crate::support::{
    config, fixture_bin, fixture_cmd, is_alive, program, send_signal, shell_quote, wait_dead,
    wait_until, wait_until_or_none, yaml_quote, Process, Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::{json, Value};
use unix_http::{Api, Events};

// ---------------------------------------------------------------------------------------------
// Daemons, programs and clients
// ---------------------------------------------------------------------------------------------

/// Writes `yaml`, starts `taskmaster run` on it (its shell on pipes), and connects to its API.
fn start(sandbox: &Sandbox, yaml: &str) -> (Taskmaster, Api) {
    sandbox.write_config(yaml);
    let tm = Taskmaster::start(sandbox, &[]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    (tm, api)
}

/// A `cmd:` value running `script` with `/bin/sh -c`.
fn sh_cmd(script: &str) -> String {
    yaml_quote(&format!("/bin/sh -c {}", shell_quote(script)))
}

/// The fixture's path, quoted for a shell script.
fn fixture_in_sh() -> String {
    shell_quote(fixture_bin().to_str().expect("the fixture's path is UTF-8"))
}

fn pid_of(process: &Value) -> Option<u32> {
    process["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
}

/// The position of the first line of `text` containing `needle`; fails the test without one.
fn line_index(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line containing {needle:?} in:\n{text}"))
}

/// The position of the first line of `text` after line `from` containing `needle`; fails the
/// test without one.
fn index_after(text: &str, from: usize, needle: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from + 1)
        .find(|(_, line)| line.contains(needle))
        .map(|(index, _)| index)
        .unwrap_or_else(|| panic!("no line containing {needle:?} after line {from} in:\n{text}"))
}

/// How many lines of `text` contain `needle`.
fn count_lines(text: &str, needle: &str) -> usize {
    text.lines().filter(|line| line.contains(needle)).count()
}

/// What a `ctl` run printed, and who ran it.
struct CtlRun {
    /// The ctl process's own pid: the one the daemon sees on its socket.
    pid: u32,
    code: Option<i32>,
    output: String,
}

/// `taskmaster ctl -s SOCKET ARGS...`, run to its end, its stdout and stderr in one file of
/// the sandbox (run by hand rather than by `run_to_completion`, to learn its pid).
fn ctl(sandbox: &Sandbox, args: &[&str]) -> CtlRun {
    let output_path = sandbox.file("ctl.out");
    let output = File::create(&output_path).expect("create ctl.out");
    let mut cmd = sandbox.ctl_command(args);
    cmd.stdin(Stdio::null())
        .stdout(output.try_clone().expect("dup ctl.out"))
        .stderr(output);
    let mut process = Process::spawn(cmd);
    let pid = process.pid();
    let status = process.wait_exit(TIMEOUT);
    CtlRun {
        pid,
        code: status.code(),
        output: sandbox.read("ctl.out"),
    }
}

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

// ---------------------------------------------------------------------------------------------
// The kill button
// ---------------------------------------------------------------------------------------------

/// `web` ignores SIGTERM (a stop would have to wait for its 30 s stoptime, longer than any
/// wait of these tests) and has a grandchild in its process group.
fn stubborn_web(sandbox: &Sandbox) -> String {
    program(
        "web",
        &fixture_cmd(&[
            "ignore",
            "TERM",
            "grandchild",
            &sandbox.file_str("grandchild.pid"),
            "pidfile",
            &sandbox.file_str("web.pid"),
            "sleep",
            "forever",
        ]),
        &["starttime: 0", "stoptime: 30"],
    )
}

/// The pids of web's child and grandchild, from their pid files, once the API shows the child
/// RUNNING; both are tracked. The files are removed, for the next child to write its own.
fn web_pids(sandbox: &Sandbox, tm: &mut Taskmaster, api: &Api) -> (u32, u32) {
    let child = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    let grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(child);
    tm.track(grandchild);
    api.wait_for_process("web", &format!("RUNNING with pid {child}"), |p| {
        p["state"] == "RUNNING" && pid_of(p) == Some(child)
    });
    for file in ["web.pid", "grandchild.pid"] {
        std::fs::remove_file(sandbox.file(file)).expect("remove a pid file");
    }
    (child, grandchild)
}

/// Leaves web STOPPED by the kill button: it ignores SIGTERM, so a stop at the end of the test
/// would wait its 30 s stoptime.
fn kill_for_good(tm: &mut Taskmaster, api: &Api) {
    assert_eq!(tm.command("kill --no-restart web", 1), ["web: killed"]);
    api.wait_for_process("web", "STOPPED", |p| p["state"] == "STOPPED");
}

/// A daemon running `stubborn_web`, and web's child and grandchild.
fn stubborn() -> (Sandbox, Taskmaster, Api, (u32, u32)) {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(&sandbox, &config(&[stubborn_web(&sandbox)]));
    let pids = web_pids(&sandbox, &mut tm, &api);
    (sandbox, tm, api, pids)
}

/// The kill button was pressed on web: its child and grandchild are gone, at once (no SIGTERM
/// first, which the child ignores, and no 30 s stoptime), and the exit is `killed_by_request`.
fn assert_killed(tm: &Taskmaster, (child, grandchild): (u32, u32)) {
    wait_dead(child, TIMEOUT);
    wait_dead(grandchild, TIMEOUT);
    tm.wait_for_log("web: kill: sending SIGKILL to its process group", TIMEOUT);
    let log = tm.log();
    assert_eq!(count_lines(&log, "sending TERM"), 0, "{log}");
}

/// web was restarted by its policy after the kill: a new child and grandchild, RUNNING, and
/// the last exit is the kill. Returns the new pids.
fn assert_restarted(
    sandbox: &Sandbox,
    tm: &mut Taskmaster,
    api: &Api,
    old: (u32, u32),
) -> (u32, u32) {
    let new = web_pids(sandbox, tm, api);
    assert_ne!(new.0, old.0);
    let process = api.process("web");
    assert_eq!(
        process["last_exit"]["cause"], "killed_by_request",
        "{process}"
    );
    assert_eq!(process["last_exit"]["signal"], "SIGKILL", "{process}");
    assert_eq!(process["last_exit"]["expected"], false, "{process}");
    new
}

#[test]
fn ctl_kill_sigkills_the_whole_group_at_once_and_the_process_is_restarted() {
    let (sandbox, mut tm, api, old) = stubborn();
    let run = ctl(&sandbox, &["kill", "web"]);
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(run.output, "web: killed\n");
    assert_killed(&tm, old);
    tm.wait_for_log(
        &format!("command: kill web (by uid {} pid {})", uid(), run.pid),
        TIMEOUT,
    );
    assert_restarted(&sandbox, &mut tm, &api, old);
    let log = tm.log();
    assert_eq!(count_lines(&log, "web: spawned with pid"), 2, "{log}");
    kill_for_good(&mut tm, &api);
}

#[test]
fn ctl_kill_no_restart_leaves_the_process_stopped() {
    let (sandbox, mut tm, api, old) = stubborn();
    let run = ctl(&sandbox, &["kill", "--no-restart", "web"]);
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(run.output, "web: killed\n");
    assert_killed(&tm, old);
    tm.wait_for_log(
        &format!(
            "command: kill --no-restart web (by uid {} pid {})",
            uid(),
            run.pid
        ),
        TIMEOUT,
    );
    let process = api.wait_for_process("web", "STOPPED", |p| p["state"] == "STOPPED");
    assert_eq!(process["pid"], Value::Null, "{process}");
    assert_eq!(
        process["last_exit"]["cause"], "killed_by_request",
        "{process}"
    );
    let status = tm.status("web");
    assert_eq!(status.state, "STOPPED");
    assert!(
        status.description.contains("killed by request"),
        "{status:?}"
    );
    let log = tm.log();
    assert_eq!(count_lines(&log, "web: spawned with pid"), 1, "{log}");
}

#[test]
fn the_shell_of_run_kills_the_whole_group_and_the_process_is_restarted() {
    let (sandbox, mut tm, api, old) = stubborn();
    assert_eq!(tm.command("kill web", 1), ["web: killed"]);
    assert_killed(&tm, old);
    tm.wait_for_log(
        "command: kill web (by the shell of taskmaster run)",
        TIMEOUT,
    );
    assert_restarted(&sandbox, &mut tm, &api, old);
    kill_for_good(&mut tm, &api);
}

#[test]
fn the_api_kills_the_whole_group_restarted_by_default_and_left_stopped_with_restart_false() {
    let (sandbox, mut tm, api, first) = stubborn();
    let answer = api.post("/v1/processes/web/kill", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"results": [{"process": "web", "ok": true, "result": "killed"}]})
    );
    assert_killed(&tm, first);
    // This test is the API's client: the log names its uid and pid.
    let by = format!("(by uid {} pid {})", uid(), std::process::id());
    tm.wait_for_log(&format!("command: kill web {by}"), TIMEOUT);
    let second = assert_restarted(&sandbox, &mut tm, &api, first);

    let answer = api.post("/v1/processes/web/kill", Some(r#"{"restart": false}"#));
    assert_eq!(answer.status, 200, "{answer:?}");
    wait_dead(second.0, TIMEOUT);
    wait_dead(second.1, TIMEOUT);
    tm.wait_for_log(&format!("command: kill --no-restart web {by}"), TIMEOUT);
    let process = api.wait_for_process("web", "STOPPED", |p| p["state"] == "STOPPED");
    assert_eq!(
        process["last_exit"]["cause"], "killed_by_request",
        "{process}"
    );
    let log = tm.log();
    assert_eq!(count_lines(&log, "web: spawned with pid"), 2, "{log}");
}

/// A stop that waits for a stubborn child's stoptime can be hurried by the kill button; the
/// process was asked to stop, and stays stopped: the kill's default restart does not undo
/// the stop request, and the client waiting for the stop gets its answer.
#[test]
fn the_kill_button_during_a_stop_finishes_the_stop_without_a_restart() {
    let (sandbox, tm, api, old) = stubborn();
    // `ctl stop` answers once web has stopped: 30 s of stoptime, unless the kill hurries it.
    let output = File::create(sandbox.file("stop.out")).expect("create stop.out");
    let mut cmd = sandbox.ctl_command(&["stop", "web"]);
    cmd.stdin(Stdio::null())
        .stdout(output.try_clone().expect("dup stop.out"))
        .stderr(output);
    let mut stop = Process::spawn(cmd);
    tm.wait_for_log("web: stop requested: sending TERM", TIMEOUT);

    let answer = api.post("/v1/processes/web/kill", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    wait_dead(old.0, TIMEOUT);
    wait_dead(old.1, TIMEOUT);
    let process = api.wait_for_process("web", "an end to STOPPING", |p| p["state"] != "STOPPING");
    let log = tm.log();
    assert_eq!(process["state"], "STOPPED", "{process}\n{log}");
    assert_eq!(count_lines(&log, "web: spawned with pid"), 1, "{log}");
    let status = stop.wait_exit(TIMEOUT);
    assert_eq!(
        sandbox.read("stop.out"),
        "web: stopped\n",
        "ctl stop: {status}"
    );
}

// ---------------------------------------------------------------------------------------------
// on_exit hooks
// ---------------------------------------------------------------------------------------------

/// The complete lines of `text`, a file another process appends to: the last one may be cut.
fn complete_lines(text: &str) -> Vec<&str> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().collect()
}

/// `worker` refuses to start while worker.lock exists: it says so on stderr and exits 1.
/// Otherwise it writes its pid into the lock, notes `started PID` in starts.log, and becomes
/// the fixture, which exits 1 on SIGUSR1. Its `on_exit` hook first waits half a second, so
/// that a restart that did not wait for the hook would find the lock; then it notes its
/// environment and the lock it found in hooks.log, and removes the lock.
#[test]
fn the_on_exit_hook_removes_the_stale_lock_before_the_restart() {
    let sandbox = Sandbox::new();
    let lock = shell_quote(&sandbox.file_str("worker.lock"));
    let starts = shell_quote(&sandbox.file_str("starts.log"));
    let hooks = shell_quote(&sandbox.file_str("hooks.log"));
    let worker = format!(
        "if [ -e {lock} ]; then \
             echo \"refusing to start: {lock} exists\" >&2; echo \"refused $$\" >> {starts}; exit 1; \
         fi; \
         echo $$ > {lock}; echo \"started $$\" >> {starts}; \
         exec {fixture} on USR1 exit 1 sleep forever",
        fixture = fixture_in_sh(),
    );
    let hook = format!(
        "sleep 0.5; \
         printf 'cause=%s signal=%s code=%s name=%s lock=%s\\n' \
             \"$TASKMASTER_EXIT_CAUSE\" \"${{TASKMASTER_EXIT_SIGNAL-unset}}\" \
             \"${{TASKMASTER_EXIT_CODE-unset}}\" \"$TASKMASTER_PROCESS_NAME\" \"$(cat {lock})\" \
             >> {hooks}; \
         rm -f {lock}"
    );
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "worker",
            &sh_cmd(&worker),
            &[
                "starttime: 0",
                "stderr: worker.err",
                &format!("on_exit: {}", yaml_quote(&hook)),
            ],
        )]),
    );
    // Waits for the n-th start of the worker, and returns its pid; fails if one refused.
    let mut nth_start = |n: usize| -> u32 {
        let text = sandbox.wait_for_contents(
            "starts.log",
            |text| complete_lines(text).len() >= n,
            TIMEOUT,
        );
        let lines = complete_lines(&text);
        assert!(
            lines.iter().all(|line| line.starts_with("started ")),
            "a start found the lock:\n{text}\n{}",
            tm.diagnostics()
        );
        let pid: u32 = lines[n - 1]["started ".len()..].parse().expect("a pid");
        tm.track(pid);
        let process = api.wait_for_process("worker", "RUNNING", |p| {
            p["state"] == "RUNNING" && pid_of(p) == Some(pid)
        });
        assert_eq!(
            sandbox.read("worker.lock").trim(),
            pid.to_string(),
            "{process}"
        );
        pid
    };

    // A crash: SIGSEGV.
    let first = nth_start(1);
    send_signal(first, Signal::SEGV).expect("SIGSEGV the worker");
    let second = nth_start(2);
    let hooks_log = sandbox.read("hooks.log");
    assert_eq!(
        complete_lines(&hooks_log),
        [format!(
            "cause=crashed signal=SIGSEGV code=unset name=worker lock={first}"
        )]
    );
    let process = api.process("worker");
    assert_eq!(process["last_exit"]["cause"], "crashed", "{process}");
    assert_eq!(process["last_exit"]["signal"], "SIGSEGV", "{process}");

    // An exit with a code.
    send_signal(second, Signal::USR1).expect("SIGUSR1 the worker");
    let third = nth_start(3);
    let hooks_log = sandbox.read("hooks.log");
    assert_eq!(
        complete_lines(&hooks_log)[1],
        format!("cause=exited signal=unset code=1 name=worker lock={second}")
    );
    assert!(is_alive(third));

    // Each restart waited for the hook of the exit before it.
    let log = tm.log();
    for (dead, next) in [(first, second), (second, third)] {
        let spawned = line_index(&log, &format!("worker: spawned with pid {dead}"));
        let waits = index_after(&log, spawned, "worker: start waits for the on_exit hook");
        let hook_done = index_after(&log, spawned, "worker: on_exit hook done");
        let respawned = line_index(&log, &format!("worker: spawned with pid {next}"));
        assert!(waits < hook_done && hook_done < respawned, "{log}");
    }
    assert_eq!(count_lines(&sandbox.read("worker.err"), "refusing"), 0);
}

#[test]
fn an_on_exit_hook_that_times_out_is_killed_and_the_restart_proceeds() {
    let sandbox = Sandbox::new();
    let hook_pidfile = shell_quote(&sandbox.file_str("hook.pid"));
    let hook = format!(
        "echo $$ > {hook_pidfile}.tmp && mv {hook_pidfile}.tmp {hook_pidfile} && exec sleep 100"
    );
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "worker",
            &fixture_cmd(&["on", "USR1", "exit", "1", "sleep", "forever"]),
            &[
                "starttime: 0",
                &format!("on_exit: {}", yaml_quote(&hook)),
                "on_exit_timeout: 1s",
            ],
        )]),
    );
    let first = api.wait_for_process("worker", "RUNNING", |p| p["state"] == "RUNNING");
    let first = pid_of(&first).expect("a pid");
    tm.track(first);
    send_signal(first, Signal::USR1).expect("SIGUSR1 the worker");
    let hook_pid = sandbox.wait_for_pidfile("hook.pid", TIMEOUT);
    tm.track(hook_pid);
    tm.wait_for_log("worker: start waits for the on_exit hook", TIMEOUT);
    tm.wait_for_log("worker: on_exit hook failed: timed out after 1s", TIMEOUT);
    wait_dead(hook_pid, TIMEOUT);
    let second = api.wait_for_process("worker", "a new RUNNING child", |p| {
        p["state"] == "RUNNING" && pid_of(p).is_some_and(|pid| pid != first)
    });
    let second = pid_of(&second).expect("a pid");
    tm.track(second);
    let log = tm.log();
    assert!(
        line_index(&log, "worker: on_exit hook failed: timed out after 1s")
            < line_index(&log, &format!("worker: spawned with pid {second}")),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Crash loops: restart_limit and backoff
// ---------------------------------------------------------------------------------------------

/// `crasher`: notes each start in spawns.log (CLOCK_MONOTONIC, ns) and exits 1 at once;
/// RUNNING at its spawn (starttime 0), so each exit is a restart, not a failed start.
fn crasher(sandbox: &Sandbox, keys: &[&str]) -> String {
    let mut all = vec!["starttime: 0"];
    all.extend_from_slice(keys);
    program(
        "crasher",
        &fixture_cmd(&["stamp", &sandbox.file_str("spawns.log"), "exit", "1"]),
        &all,
    )
}

/// The start times in spawns.log, in nanoseconds.
fn spawn_times(sandbox: &Sandbox) -> Vec<u128> {
    let text = std::fs::read_to_string(sandbox.file("spawns.log")).unwrap_or_default();
    complete_lines(&text)
        .iter()
        .map(|line| line.parse().expect("a stamp"))
        .collect()
}

#[test]
fn restart_limit_ends_a_crash_loop_fatal_after_exactly_count_restarts() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        // Restarted at once every time (the default throttle would space them).
        &config(&[crasher(
            &sandbox,
            &["restart_limit: {count: 3, within: 60s}", "backoff: off"],
        )]),
    );
    let reason = "restart limit reached: 4 restarts within 60s (restart_limit 3 within 60s); \
                  last exit: exited with code 1 (not expected)";
    let status = tm.wait_for_state("crasher", "FATAL", TIMEOUT);
    assert_eq!(status.description, reason);
    let process = api.process("crasher");
    assert_eq!(process["gave_up"], reason, "{process}");
    assert_eq!(process["last_exit"]["cause"], "exited", "{process}");
    assert_eq!(process["last_exit"]["code"], 1, "{process}");
    // Once FATAL nothing is started: the count is final.
    assert_eq!(
        spawn_times(&sandbox).len(),
        4,
        "the initial start and 3 restarts"
    );
    let log = tm.log();
    assert_eq!(count_lines(&log, "crasher: spawned with pid"), 4, "{log}");
    assert_eq!(
        count_lines(&log, "crasher: restarting: the exit was not expected"),
        3,
        "{log}"
    );
    assert!(
        log.contains(&format!("crasher: gave up: FATAL: {reason}")),
        "{log}"
    );
}

#[test]
fn backoff_spaces_the_restarts_of_a_crash_loop_more_and_more() {
    let sandbox = Sandbox::new();
    let (tm, _api) = start(
        &sandbox,
        &config(&[crasher(
            &sandbox,
            &["backoff: {initial: 500ms, max: 2s, factor: 2}"],
        )]),
    );
    let times = wait_until("4 spawns of crasher", TIMEOUT, || {
        let times = spawn_times(&sandbox);
        (times.len() >= 4).then_some(times)
    });
    let gaps: Vec<f64> = times
        .windows(2)
        .take(3)
        .map(|pair| (pair[1] - pair[0]) as f64 / 1e9)
        .collect();
    // Each start comes after the exit before it and then the whole delay: the delays are
    // lower bounds of the gaps, whatever the load of the machine.
    for (gap, delay) in gaps.iter().zip([0.5, 1.0, 2.0]) {
        assert!(
            *gap >= delay,
            "gaps {gaps:?}: one shorter than its delay {delay}s"
        );
    }
    assert!(gaps[2] > gaps[0], "gaps {gaps:?}");
    let log = tm.log();
    for delay in ["500.0ms", "1.0s", "2.0s"] {
        assert!(
            log.contains(&format!(
                "crasher: restarting in {delay} (backoff): the exit was not expected"
            )),
            "{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The default crash-loop throttle, and the event log's coalescing
// ---------------------------------------------------------------------------------------------

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of spawns.log's stamps.
fn monotonic_now() -> u128 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::try_from(ts.tv_sec).expect("a time after boot") * 1_000_000_000
        + u128::try_from(ts.tv_nsec).expect("nanoseconds")
}

const SECOND: u128 = 1_000_000_000;

/// The event log's window, from a process's first line: its held-back lines are summed up when
/// it ends.
const LOG_WINDOW: u128 = 10 * SECOND;

/// With the default throttle (no `backoff`: at once, then 0.1 s, 0.2 s, 0.4 s... up to 10 s), a
/// process that dies at once is spawned at 0, 0, 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s: 8 times in
/// its first 10 s (the next at 12.7 s), where without it there would be thousands. A slow
/// machine spawns it later, so fewer times; 12 leaves a margin for nothing but a wrong rule.
const THROTTLED_SPAWNS_IN_10S: usize = 12;

/// The first spawn's stamp, once there is one.
fn first_spawn(sandbox: &Sandbox, tm: &Taskmaster) -> u128 {
    wait_until_or_none(TIMEOUT, || spawn_times(sandbox).first().copied())
        .unwrap_or_else(|| panic!("crasher never started\n{}", tm.diagnostics()))
}

#[test]
fn a_crash_loop_is_throttled_by_default() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &config(&[crasher(&sandbox, &["autorestart: always"])]),
    );
    let first = first_spawn(&sandbox, &tm);
    // 10 s since its first spawn, then what happened within them.
    wait_until("10 s since the first spawn", TIMEOUT, || {
        (monotonic_now() >= first + 10 * SECOND).then_some(())
    });
    let within: Vec<u128> = spawn_times(&sandbox)
        .into_iter()
        .filter(|&at| at < first + 10 * SECOND)
        .map(|at| (at - first) / 1_000_000)
        .collect();
    let log = tm.log();
    println!("spawns within 10 s, in ms from the first: {within:?}");
    assert!(
        within.len() <= THROTTLED_SPAWNS_IN_10S,
        "{} spawns in 10 s: {within:?}\n{log}",
        within.len()
    );
    // Restarted, not given up: the first restarts come at once and then within a second.
    assert!(within.len() >= 4, "{within:?}\n{log}");
    let process = api.process("crasher");
    assert_ne!(process["state"], "FATAL", "{process}");
    assert_eq!(
        count_lines(&log, "crasher: restarting: autorestart is always"),
        1,
        "only the first restart of the row is at once\n{log}"
    );
    assert!(
        log.contains("crasher: restarting in 100.0ms (backoff): autorestart is always"),
        "{log}"
    );
    assert!(
        log.contains("crasher: restarting in 3.2s (backoff): autorestart is always"),
        "{log}"
    );
    let lines = log.lines().count();
    println!("event log: {lines} lines");
    assert!(lines < 200, "{lines} lines in the event log:\n{log}");
    // `status` says it is waiting to be restarted, or running again.
    let status = tm.status("crasher");
    assert!(
        ["EXITED", "RUNNING", "STARTING"].contains(&status.state.as_str()),
        "{status:?}"
    );
}

#[test]
fn backoff_off_restarts_at_once_every_time_and_the_event_log_holds_the_repeats_back() {
    let sandbox = Sandbox::new();
    let (tm, api) = start(
        &sandbox,
        &config(&[crasher(
            &sandbox,
            &["autorestart: always", "backoff: off", "autostart: false"],
        )]),
    );
    // Subscribed before the first spawn: the stream gets every line, the file does not.
    let mut events = Events::subscribe(&api);
    let started = api.post("/v1/processes/crasher/start", None);
    assert_eq!(started.status, 200, "{started:?}");
    let first = first_spawn(&sandbox, &tm);
    // The summary is due when the window of the crasher's first line ends, about when it was
    // first spawned plus 10 s; TIMEOUT more is for a loaded machine.
    let summary = wait_until_or_none(
        std::time::Duration::from_nanos(u64::try_from(LOG_WINDOW).expect("10 s")) + TIMEOUT,
        || {
            tm.log()
                .lines()
                .find(|line| {
                    line.contains("crasher: ")
                        && line.contains(" more lines like the above in the last 10 s (the last: ")
                })
                .map(str::to_string)
        },
    )
    .unwrap_or_else(|| panic!("no summary line\n{}", tm.diagnostics()));
    let after = (monotonic_now() - first) / 1_000_000;
    let spawns = spawn_times(&sandbox).len();
    let log = tm.log();
    let lines = log.lines().count();
    println!("{spawns} spawns; the summary {after} ms after the first: {summary}; {lines} lines");
    // Restarted at once every time: far more spawns than the throttle allows, and never a
    // delayed restart.
    assert!(
        spawns > 10 * THROTTLED_SPAWNS_IN_10S,
        "{spawns} spawns\n{log}"
    );
    assert_eq!(count_lines(&log, "(backoff)"), 0, "{log}");
    // Each spawn is four lines (spawned, RUNNING, exited, restarting); the file has a bounded
    // share of them.
    assert!(lines < 200, "{lines} lines for {spawns} spawns:\n{log}");
    let held: usize = summary
        .split("crasher: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"));
    assert!(held > 2 * lines, "{held} held back, {lines} lines written");
    let file_spawned = count_lines(&log, "crasher: spawned with pid");
    let streamed = |events: &[(String, Value)]| {
        events
            .iter()
            .filter(|(kind, data)| {
                kind == "log"
                    && data["process"] == "crasher"
                    && data["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("spawned with pid"))
            })
            .count()
    };
    let all = events.wait_for("more spawns on /v1/events than in the file", |events| {
        streamed(events) > 2 * file_spawned
    });
    println!(
        "spawned lines: {} on /v1/events, {file_spawned} in the file",
        streamed(&all)
    );
    let stopped = api.post("/v1/processes/crasher/stop", None);
    assert_eq!(stopped.status, 200, "{stopped:?}");
    // A line of a new shape is never held back.
    tm.wait_for_log("crasher: stop requested", TIMEOUT);
}

/// `crasher` dies at once three times (the restarts after the first wait 0.1 s, then 0.2 s),
/// then runs for longer than the throttle's 10 s max and exits: it has recovered, and its
/// restart is at once again.
#[test]
fn a_process_that_ran_longer_than_the_throttles_max_is_restarted_at_once() {
    let sandbox = Sandbox::new();
    let count = shell_quote(&sandbox.file_str("count"));
    let spawns = shell_quote(&sandbox.file_str("spawns.log"));
    let exits = shell_quote(&sandbox.file_str("exits.log"));
    let script = format!(
        "n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; \
         if [ \"$n\" -lt 3 ]; then exec {fixture} stamp {spawns} exit 1; fi; \
         exec {fixture} stamp {spawns} sleep 10.5 stamp {exits} exit 1",
        fixture = fixture_in_sh(),
    );
    let (tm, _api) = start(
        &sandbox,
        &config(&[program(
            "crasher",
            &sh_cmd(&script),
            &["starttime: 0", "autorestart: always"],
        )]),
    );
    // The fourth spawn runs 10.5 s; the fifth is the restart after its exit.
    let times = wait_until_or_none(TIMEOUT, || {
        let times = spawn_times(&sandbox);
        (times.len() >= 5).then_some(times)
    })
    .unwrap_or_else(|| panic!("no fifth spawn\n{}", tm.diagnostics()));
    let exited = sandbox.read("exits.log");
    let exited: u128 = complete_lines(&exited)[0].parse().expect("a stamp");
    println!(
        "the restart after a run of {:.1} s came {:.1} ms after the exit",
        (exited - times[3]) as f64 / 1e9,
        (times[4] - exited) as f64 / 1e6
    );
    // The fifth spawn's line is written at the end of the loop's turn, maybe after its stamp.
    let log = wait_until_or_none(TIMEOUT, || {
        let log = tm.log();
        (count_lines(&log, "crasher: spawned with pid") >= 5).then_some(log)
    })
    .unwrap_or_else(|| panic!("no fifth spawn in the log\n{}", tm.diagnostics()));
    // The row of quick deaths was throttled...
    assert!(
        log.contains("crasher: restarting in 100.0ms (backoff): autorestart is always"),
        "{log}"
    );
    assert!(
        log.contains("crasher: restarting in 200.0ms (backoff): autorestart is always"),
        "{log}"
    );
    // ... and the exit after the long run is restarted at once: the line after it says so,
    // and the next spawn follows.
    let lines: Vec<&str> = log.lines().collect();
    let restarts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("crasher: restarting"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(restarts.len(), 4, "{log}");
    let last = restarts[3];
    assert!(
        lines[last].ends_with("crasher: restarting: autorestart is always"),
        "{log}"
    );
    assert!(
        lines[last - 1].ends_with("crasher: exited with code 1 (not expected)"),
        "{log}"
    );
    assert!(
        lines[last + 1..]
            .iter()
            .any(|line| line.contains("crasher: spawned with pid")),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/// `worker` writes the same "ERROR: Corrupted data 42" line to stdout and to stderr, among
/// others; only its stderr is watched for it. A witness line last on each stream, with an
/// alert of its own, shows each stream was read past the line of interest.
#[test]
fn an_output_line_raises_one_alert_on_its_stream_only_in_the_log_and_the_events() {
    let sandbox = Sandbox::new();
    let corrupted = "ERROR: Corrupted data 42";
    let worker = program(
        "worker",
        &fixture_cmd(&[
            "print",
            corrupted,
            "print",
            "stdout witness",
            "eprint",
            "starting",
            "eprint",
            corrupted,
            "eprint",
            "done",
            "eprint",
            "stderr witness",
            "sleep",
            "forever",
        ]),
        &[
            "starttime: 0",
            "autostart: false",
            "stdout: worker.out",
            "stderr: worker.err",
            "alerts: [{match: \"Corrupted data\", stream: stderr, level: warning}, \
             {match: \"stdout witness\", stream: stdout, level: info}, \
             {match: \"stderr witness\", stream: stderr, level: error}]",
        ],
    );
    let (tm, api) = start(&sandbox, &config(&[worker]));
    let mut events = Events::subscribe(&api);
    let started = api.post("/v1/processes/worker/start", None);
    assert_eq!(started.status, 200, "{started:?}");

    let is_alert =
        |event: &(String, Value), line: &str| event.0 == "alert" && event.1["line"] == line;
    let all = events.wait_for("both witnesses' alerts", |events| {
        events.iter().any(|e| is_alert(e, "stdout witness"))
            && events.iter().any(|e| is_alert(e, "stderr witness"))
    });
    let corrupted_alerts: Vec<&Value> = all
        .iter()
        .filter(|e| is_alert(e, corrupted))
        .map(|(_, data)| data)
        .collect();
    assert_eq!(corrupted_alerts.len(), 1, "{all:?}");
    let alert = corrupted_alerts[0];
    assert_eq!(alert["type"], "alert", "{alert}");
    assert_eq!(alert["program"], "worker", "{alert}");
    assert_eq!(alert["stream"], "stderr", "{alert}");
    assert_eq!(alert["level"], "warning", "{alert}");
    assert!(alert["at"].is_f64(), "{alert}");

    tm.wait_for_log("worker: alert (info) on stdout: stdout witness", TIMEOUT);
    tm.wait_for_log("worker: alert (error) on stderr: stderr witness", TIMEOUT);
    let log = tm.log();
    assert_eq!(
        count_lines(
            &log,
            &format!("worker: alert (warning) on stderr: {corrupted}")
        ),
        1,
        "{log}"
    );
    assert_eq!(count_lines(&log, "on stdout: ERROR"), 0, "{log}");
    assert_eq!(count_lines(&log, "alert ("), 3, "{log}");
    // Capture is untouched: both lines are in their files.
    assert!(sandbox.read("worker.out").contains(corrupted));
    assert!(sandbox.read("worker.err").contains(corrupted));
}

// ---------------------------------------------------------------------------------------------
// stdin: PATH
// ---------------------------------------------------------------------------------------------

#[test]
fn stdin_feeds_the_file_to_the_child() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.file("input.txt"), "alpha\nbeta\n").expect("write input.txt");
    let (_tm, _api) = start(
        &sandbox,
        &config(&[program(
            "echo",
            &fixture_cmd(&["stdin-echo", "print", "end of input", "sleep", "forever"]),
            &[
                "starttime: 0",
                "stdout: echo.out",
                &format!("stdin: {}", yaml_quote(&sandbox.file_str("input.txt"))),
            ],
        )]),
    );
    let out = sandbox.wait_for_contents("echo.out", |text| text.contains("end of input"), TIMEOUT);
    assert_eq!(out, "alpha\nbeta\nend of input\n");
}

#[test]
fn a_missing_stdin_file_is_a_spawn_error_naming_the_file() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("missing.txt");
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "echo",
            &fixture_cmd(&["stdin-echo"]),
            &[
                "starttime: 0",
                "startretries: 0",
                &format!("stdin: {}", yaml_quote(&missing)),
            ],
        )]),
    );
    let error = format!("cannot open stdin file {missing}: No such file or directory");
    let status = tm.wait_for_state("echo", "FATAL", TIMEOUT);
    assert_eq!(status.description, error);
    tm.wait_for_log(&format!("echo: spawn error: {error}"), TIMEOUT);
    let process = api.process("echo");
    assert_eq!(process["spawn_error"], error.as_str(), "{process}");
    assert_eq!(process["last_exit"]["cause"], "spawn_failed", "{process}");
    assert_eq!(process["last_exit"]["detail"], error.as_str(), "{process}");
}
