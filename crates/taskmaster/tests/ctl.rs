//! `taskmaster ctl` as a user runs it against a running taskmaster: one-shot commands and their
//! exit statuses, finding the socket, `--json`, `tail`, the interactive shell on a terminal, a
//! script on stdin, and `run --no-shell` driven entirely through `ctl`.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{
    config, current_line, fixture_cmd, idle_program, is_alive, program, run_to_completion,
    send_signal, shell_quote, taskmaster_bin, wait_dead, wait_until, web_program, yaml_quote,
    Process, PtySession, Ran, Sandbox, Taskmaster, CTRL_C, CTRL_D, ENTER, TAB, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::Value;

const PROMPT: &str = "taskmaster> ";

// ---------------------------------------------------------------------------------------------
// Daemons and configurations
// ---------------------------------------------------------------------------------------------

fn socket(sandbox: &Sandbox) -> PathBuf {
    sandbox.file("taskmaster.sock")
}

/// Writes `yaml` and starts `taskmaster run EXTRA_ARGS` on it, once its control socket takes
/// connections.
fn start_with(sandbox: &Sandbox, yaml: &str, extra_args: &[&str]) -> Taskmaster {
    sandbox.write_config(yaml);
    Taskmaster::start_serving(sandbox, extra_args)
}

/// `taskmaster run` (its shell on pipes, to compare with and to check ctl's effects).
fn start(sandbox: &Sandbox, yaml: &str) -> Taskmaster {
    start_with(sandbox, yaml, &[])
}

/// web's pid, from its own pid file, once `run`'s shell shows it RUNNING.
fn web_pid(sandbox: &Sandbox, tm: &mut Taskmaster) -> u32 {
    let pid = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    tm.track(pid);
    let status = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    assert_eq!(status.pid(), Some(pid));
    pid
}

/// A daemon with `web` (running) and `idle` (stopped), and web's pid.
fn web_and_idle_program() -> (Sandbox, Taskmaster, u32) {
    let sandbox = Sandbox::new();
    let mut tm = start(&sandbox, &config(&[web_program(&sandbox), idle_program()]));
    let pid = web_pid(&sandbox, &mut tm);
    (sandbox, tm, pid)
}

// ---------------------------------------------------------------------------------------------
// Running ctl
// ---------------------------------------------------------------------------------------------

/// What ctl printed, as JSON.
trait Json {
    fn json(&self) -> Value;
}

impl Json for Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("ctl's output is not JSON ({e}): {self:?}"))
    }
}

/// `taskmaster ctl ARGS...` in the sandbox (cwd and HOME), its history not taken from the
/// environment the tests run in.
fn ctl_command(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("ctl")
        .args(args)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path())
        .env_remove("TASKMASTER_HISTORY");
    cmd
}

/// `taskmaster ctl ARGS...`, run to its end.
fn ctl_raw(sandbox: &Sandbox, args: &[&str]) -> Ran {
    Ran::from(run_to_completion(ctl_command(sandbox, args), TIMEOUT))
}

/// `taskmaster ctl -s SOCKET ARGS...`, run to its end.
fn ctl(sandbox: &Sandbox, args: &[&str]) -> Ran {
    let socket = socket(sandbox);
    let socket = socket.to_str().expect("UTF-8");
    let mut all = vec!["-s", socket];
    all.extend_from_slice(args);
    ctl_raw(sandbox, &all)
}

/// A status line with its uptime cut off (it moves between two looks).
fn without_uptime(line: &str) -> String {
    match line.find(", uptime ") {
        Some(at) => line[..at + ", uptime ".len()].to_string(),
        None => line.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// One-shot commands
// ---------------------------------------------------------------------------------------------

#[test]
fn status_prints_the_same_lines_as_runs_shell() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("no-such-program");
    let mut tm = start(
        &sandbox,
        &config(&[
            web_program(&sandbox),
            idle_program(),
            program("missing", &yaml_quote(&missing), &["startretries: 0"]),
            program(
                "workers",
                &fixture_cmd(&["sleep", "forever"]),
                &["numprocs: 2", "starttime: 0"],
            ),
        ]),
    );
    let pid = web_pid(&sandbox, &mut tm);
    tm.wait_for_state("missing", "FATAL", TIMEOUT);
    tm.wait_for_state("workers:workers_01", "RUNNING", TIMEOUT);

    let ran = ctl(&sandbox, &["status"]);
    // `idle` and `missing` are not RUNNING.
    ran.expect_code(3);
    let from_run = tm.command_all("status");
    let ours: Vec<String> = ran.lines().into_iter().map(without_uptime).collect();
    let theirs: Vec<String> = from_run.iter().map(|l| without_uptime(l)).collect();
    assert_eq!(ours, theirs);
    assert_eq!(
        ran.lines()[0],
        format!("{:<33}{:<10}Not started", "idle", "STOPPED")
    );
    assert_eq!(
        ran.lines()[1],
        format!(
            "{:<33}{:<10}cannot execute {missing}: No such file or directory",
            "missing", "FATAL"
        )
    );
    assert!(
        ran.lines()[2].starts_with(&format!(
            "{:<33}{:<10}pid {pid}, uptime 0:",
            "web", "RUNNING"
        )),
        "{ran:?}"
    );
    assert!(ran.lines()[3].starts_with("workers:workers_00               RUNNING   pid "));
    assert_eq!(ran.lines().len(), 5, "{ran:?}");
}

#[test]
fn status_exits_0_when_every_process_named_is_running_and_3_otherwise() {
    let (sandbox, _tm, pid) = web_and_idle_program();
    let web = ctl(&sandbox, &["status", "web"]);
    web.expect_code(0);
    assert!(
        web.stdout
            .starts_with(&format!("{:<33}{:<10}pid {pid}, uptime ", "web", "RUNNING")),
        "{web:?}"
    );
    let idle = ctl(&sandbox, &["status", "idle"]);
    idle.expect_code(3);
    assert_eq!(
        idle.stdout,
        format!("{:<33}{:<10}Not started\n", "idle", "STOPPED")
    );
    let unknown = ctl(&sandbox, &["status", "nope"]);
    unknown.expect_code(3);
    assert_eq!(unknown.stdout, "nope: ERROR (no such process)\n");
}

#[test]
fn stop_start_and_restart_print_each_result_and_act() {
    let (sandbox, mut tm, first) = web_and_idle_program();
    let stop = ctl(&sandbox, &["stop", "web"]);
    stop.expect_code(0);
    assert_eq!(stop.stdout, "web: stopped\n");
    assert!(!is_alive(first), "pid {first} outlived `ctl stop`");
    assert_eq!(tm.status("web").state, "STOPPED");

    let start = ctl(&sandbox, &["start", "web"]);
    start.expect_code(0);
    assert_eq!(start.stdout, "web: started\n");
    let second = tm.status("web");
    assert_eq!(second.state, "RUNNING");
    let second = second.pid().expect("a pid");

    let restart = ctl(&sandbox, &["restart", "web"]);
    restart.expect_code(0);
    assert_eq!(restart.stdout, "web: stopped\nweb: started\n");
    let third = tm.status("web").pid().expect("a pid");
    assert_ne!(third, second);
    assert!(!is_alive(second));
    assert!(is_alive(third));
}

#[test]
fn start_of_two_programs_is_one_request_that_starts_both_at_once() {
    let sandbox = Sandbox::new();
    let slow = |name: &str| {
        program(
            name,
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 2", "autostart: false"],
        )
    };
    let mut tm = start(&sandbox, &config(&[slow("a"), slow("b")]));
    let ran = std::thread::scope(|scope| {
        let starting = scope.spawn(|| ctl(&sandbox, &["start", "a", "b"]));
        // One after the other, `a` would be RUNNING (2 s) before `b` began: never both STARTING.
        wait_until("a and b STARTING at the same time", TIMEOUT, || {
            let statuses = tm.status_all();
            let starting = |name: &str| {
                statuses
                    .iter()
                    .any(|s| s.name == name && s.state == "STARTING")
            };
            (starting("a") && starting("b")).then_some(())
        });
        starting.join().expect("ctl's thread")
    });
    ran.expect_code(0);
    assert_eq!(ran.stdout, "a: started\nb: started\n");
    for name in ["a", "b"] {
        assert_eq!(tm.status(name).state, "RUNNING");
    }
    // The daemon got one request naming both.
    tm.wait_for_log("command: start a b", TIMEOUT);
    let log = tm.log();
    let alone =
        |line: &str| line.ends_with("command: start a") || line.ends_with("command: start b");
    assert!(!log.lines().any(alone), "{log}");
}

#[test]
fn an_action_that_does_not_reach_its_goal_exits_3() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("no-such-program");
    let _tm = start(
        &sandbox,
        &config(&[
            idle_program(),
            program(
                "missing",
                &yaml_quote(&missing),
                &["autostart: false", "startretries: 0"],
            ),
        ]),
    );
    let start = ctl(&sandbox, &["start", "missing"]);
    start.expect_code(3);
    assert_eq!(start.stdout, "missing: ERROR (spawn error)\n");
    let stop = ctl(&sandbox, &["stop", "idle"]);
    stop.expect_code(3);
    assert_eq!(stop.stdout, "idle: ERROR (not running)\n");
    let unknown = ctl(&sandbox, &["start", "nope"]);
    unknown.expect_code(3);
    assert_eq!(unknown.stdout, "nope: ERROR (no such process)\n");
}

#[test]
fn signal_is_delivered_and_reported() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("usr1.pid");
    let mut tm = start(
        &sandbox,
        &config(&[program(
            "usr1",
            &fixture_cmd(&[
                "on", "USR1", "exit", "9", "pidfile", &pidfile, "sleep", "forever",
            ]),
            &["starttime: 0", "autorestart: never"],
        )]),
    );
    let pid = sandbox.wait_for_pidfile("usr1.pid", TIMEOUT);
    tm.track(pid);
    tm.wait_for_state("usr1", "RUNNING", TIMEOUT);
    let signal = ctl(&sandbox, &["signal", "USR1", "usr1"]);
    signal.expect_code(0);
    assert_eq!(signal.stdout, "usr1: signalled\n");
    // Only the fixture's USR1 handler exits with 9.
    tm.wait_for_state("usr1", "EXITED", TIMEOUT);
    tm.wait_for_log("usr1: exited with code 9", TIMEOUT);
}

#[test]
fn pid_prints_a_process_pid_or_the_daemons_own() {
    let (sandbox, tm, web) = web_and_idle_program();
    let pid = ctl(&sandbox, &["pid", "web"]);
    pid.expect_code(0);
    assert_eq!(pid.stdout, format!("{web}\n"));
    let own = ctl(&sandbox, &["pid"]);
    own.expect_code(0);
    assert_eq!(own.stdout, format!("{}\n", tm.daemon_pid()));
    let stopped = ctl(&sandbox, &["pid", "idle"]);
    assert_eq!(stopped.stdout, "0\n");
}

#[test]
fn reload_prints_what_changed_or_every_error() {
    let (sandbox, mut tm, web) = web_and_idle_program();
    sandbox.write_config(&config(&[
        web_program(&sandbox),
        program(
            "extra",
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0"],
        ),
    ]));
    let reload = ctl(&sandbox, &["reload"]);
    reload.expect_code(0);
    assert_eq!(reload.stdout, "reloaded: added extra; removed idle\n");
    tm.wait_for_state("extra", "RUNNING", TIMEOUT);

    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["stoptimee: 1"],
    )]));
    let rejected = ctl(&sandbox, &["reload"]);
    rejected.expect_code(3);
    let lines = rejected.lines();
    assert_eq!(
        lines[0],
        "error: the configuration has errors; nothing was changed:"
    );
    let config_path = sandbox.config_path();
    assert!(
        lines[1].starts_with(&format!("  {}:", config_path.display()))
            && lines[1].contains("stoptimee"),
        "{rejected:?}"
    );
    assert_eq!(tm.status("web").pid(), Some(web));
    assert_eq!(tm.status("extra").state, "RUNNING");
}

#[test]
fn shutdown_prints_shut_down_and_the_daemon_stops_everything() {
    let (sandbox, mut tm, web) = web_and_idle_program();
    let shutdown = ctl(&sandbox, &["shutdown"]);
    shutdown.expect_code(0);
    assert_eq!(shutdown.stdout, "Shut down\n");
    let status = tm.wait_exit(TIMEOUT);
    assert!(status.success(), "{status:?}\n{}", tm.diagnostics());
    assert!(!is_alive(web), "pid {web} outlived the shutdown");
    assert!(!socket(&sandbox).exists());
}

#[test]
fn an_unknown_command_exits_1_with_a_message_on_stderr() {
    let (sandbox, mut tm, web) = web_and_idle_program();
    let ran = ctl(&sandbox, &["frobnicate", "web"]);
    ran.expect_code(1);
    assert_eq!(ran.stdout, "");
    assert!(
        ran.stderr.contains("unknown command \"frobnicate\""),
        "{ran:?}"
    );
    let usage = ctl(&sandbox, &["start"]);
    usage.expect_code(1);
    assert!(usage.stderr.contains("usage: start NAME..."), "{usage:?}");
    assert_eq!(tm.status("web").pid(), Some(web));
}

#[test]
fn an_unreachable_socket_exits_1_naming_it_and_saying_what_to_do() {
    let sandbox = Sandbox::new();
    let nowhere = sandbox.file_str("nowhere.sock");
    let ran = ctl_raw(&sandbox, &["-s", &nowhere, "status"]);
    ran.expect_code(1);
    assert!(ran.stderr.contains(&nowhere), "{ran:?}");
    assert!(ran.stderr.contains("taskmaster run"), "{ran:?}");
    assert!(ran.stderr.contains("-s SOCKET"), "{ran:?}");

    // By its configuration: the socket it names is the one beside the file.
    let config = sandbox.file_str("elsewhere/taskmaster.yaml");
    let ran = ctl_raw(&sandbox, &["-c", &config, "status"]);
    ran.expect_code(1);
    let expected = sandbox.file_str("elsewhere/taskmaster.sock");
    assert!(ran.stderr.contains(&expected), "{ran:?}");
}

#[test]
fn c_finds_the_socket_beside_the_configuration() {
    let (sandbox, tm, _) = web_and_idle_program();
    let config = sandbox.config_path();
    let by_config = ctl_raw(&sandbox, &["-c", config.to_str().expect("UTF-8"), "pid"]);
    by_config.expect_code(0);
    assert_eq!(by_config.stdout, format!("{}\n", tm.daemon_pid()));
    // With neither -c nor -s: ./taskmaster.yaml (ctl runs in the sandbox).
    let by_default = ctl_raw(&sandbox, &["pid"]);
    by_default.expect_code(0);
    assert_eq!(by_default.stdout, format!("{}\n", tm.daemon_pid()));
}

// ---------------------------------------------------------------------------------------------
// --json
// ---------------------------------------------------------------------------------------------

#[test]
fn json_status_prints_the_apis_json() {
    let (sandbox, _tm, web) = web_and_idle_program();
    let ran = ctl(&sandbox, &["--json", "status", "web"]);
    ran.expect_code(0);
    let status = ran.json();
    let processes = status["processes"].as_array().expect("a list of processes");
    assert_eq!(processes.len(), 1, "{status}");
    assert_eq!(processes[0]["name"], "web");
    assert_eq!(processes[0]["state"], "RUNNING");
    assert_eq!(processes[0]["pid"], web);
    assert_eq!(processes[0]["stdout"], sandbox.file_str("web.out"));
    assert!(status["now"].is_f64(), "{status}");

    let all = ctl(&sandbox, &["--json", "status"]);
    all.expect_code(3);
    assert_eq!(all.json()["processes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn json_start_prints_the_results() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("no-such-program");
    let _tm = start(
        &sandbox,
        &config(&[
            idle_program(),
            program(
                "missing",
                &yaml_quote(&missing),
                &["autostart: false", "startretries: 0"],
            ),
        ]),
    );
    let started = ctl(&sandbox, &["--json", "start", "idle"]);
    started.expect_code(0);
    assert_eq!(
        started.json(),
        serde_json::json!({"results": [{"process": "idle", "ok": true, "result": "started"}]})
    );
    let failed = ctl(&sandbox, &["--json", "start", "missing"]);
    failed.expect_code(3);
    assert_eq!(
        failed.json(),
        serde_json::json!({"results": [{
            "process": "missing",
            "ok": false,
            "result": "spawn_error",
            "detail": format!("cannot execute {missing}: No such file or directory"),
        }]})
    );
}

#[test]
fn json_errors_are_an_object_with_error() {
    let (sandbox, _tm, _) = web_and_idle_program();
    let unknown = ctl(&sandbox, &["--json", "frobnicate"]);
    unknown.expect_code(1);
    let error = unknown.json();
    let text = error["error"].as_str().expect("an error string");
    assert!(text.contains("frobnicate"), "{error}");

    let nowhere = sandbox.file_str("nowhere.sock");
    let unreachable = ctl_raw(&sandbox, &["-s", &nowhere, "--json", "status"]);
    unreachable.expect_code(1);
    let error = unreachable.json();
    let text = error["error"].as_str().expect("an error string");
    assert!(text.contains(&nowhere), "{error}");
}

// ---------------------------------------------------------------------------------------------
// tail
// ---------------------------------------------------------------------------------------------

#[test]
fn tail_prints_the_end_of_the_processs_stdout() {
    let sandbox = Sandbox::new();
    let _tm = start(
        &sandbox,
        &config(&[program(
            "lines",
            &fixture_cmd(&["lines", "300", "sleep", "forever"]),
            &["starttime: 0", "stdout: lines.out"],
        )]),
    );
    sandbox.wait_for_contents("lines.out", |text| text.ends_with("line 300\n"), TIMEOUT);
    let file = std::fs::read(sandbox.file("lines.out")).expect("read lines.out");
    assert!(
        file.len() > 1600,
        "the file must be longer than what tail shows"
    );
    let ran = ctl(&sandbox, &["tail", "lines"]);
    ran.expect_code(0);
    // supervisorctl's 1600 bytes.
    assert_eq!(ran.stdout.as_bytes(), &file[file.len() - 1600..]);
}

#[test]
fn tail_stderr_prints_the_end_of_the_processs_stderr() {
    let sandbox = Sandbox::new();
    let _tm = start(
        &sandbox,
        &config(&[program(
            "noisy",
            &fixture_cmd(&[
                "print",
                "to stdout",
                "eprint",
                "to stderr",
                "sleep",
                "forever",
            ]),
            &["starttime: 0", "stdout: noisy.out", "stderr: noisy.err"],
        )]),
    );
    sandbox.wait_for_contents("noisy.err", |text| text == "to stderr\n", TIMEOUT);
    let ran = ctl(&sandbox, &["tail", "noisy", "stderr"]);
    ran.expect_code(0);
    assert_eq!(ran.stdout, "to stderr\n");
    let unknown = ctl(&sandbox, &["tail", "nope"]);
    unknown.expect_code(1);
    assert!(unknown.stderr.contains("nope"), "{unknown:?}");
}

#[test]
fn tail_f_prints_the_lines_written_later() {
    let sandbox = Sandbox::new();
    // A shell that writes a numbered line each time it gets USR1: the test decides when.
    let script = "i=0; tick() { i=$((i+1)); echo tick $i; }; trap tick USR1; echo ready; \
                  while :; do sleep 0.1; done";
    let mut tm = start(
        &sandbox,
        &config(&[program(
            "ticker",
            &yaml_quote(&format!("sh -c {}", shell_quote(script))),
            &["starttime: 0", "stoptime: 1", "stdout: ticker.out"],
        )]),
    );
    sandbox.wait_for_contents("ticker.out", |text| text == "ready\n", TIMEOUT);
    tm.wait_for_state("ticker", "RUNNING", TIMEOUT);

    let output = File::create(sandbox.file("tail.out")).expect("create tail.out");
    let mut cmd = ctl_command(&sandbox, &["-s", &sandbox.file_str("taskmaster.sock")]);
    cmd.args(["tail", "-f", "ticker"])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null());
    let mut tail = Process::spawn(cmd);
    sandbox.wait_for_contents("tail.out", |text| text == "ready\n", TIMEOUT);
    for n in 1..=2 {
        let signal = ctl(&sandbox, &["signal", "USR1", "ticker"]);
        signal.expect_code(0);
        let expected = format!("tick {n}\n");
        sandbox.wait_for_contents("tail.out", |text| text.ends_with(&expected), TIMEOUT);
    }
    // Ended as a user ends it: Ctrl-C, which ends the tail, not ctl with an error.
    send_signal(tail.pid(), Signal::INT).expect("interrupt ctl");
    assert!(tail.wait_exit(TIMEOUT).success());
    assert_eq!(sandbox.read("tail.out"), "ready\ntick 1\ntick 2\n");
    assert_eq!(tm.status("ticker").state, "RUNNING");
}

#[test]
fn tail_n_prints_exactly_the_last_lines() {
    let sandbox = Sandbox::new();
    let mut tm = start(
        &sandbox,
        &config(&[program(
            "lines",
            &fixture_cmd(&["lines", "3000", "sleep", "forever"]),
            &["starttime: 0", "stdout: lines.out"],
        )]),
    );
    sandbox.wait_for_contents("lines.out", |text| text.ends_with("line 3000\n"), TIMEOUT);
    let numbered = |range: std::ops::RangeInclusive<u32>| -> String {
        range.map(|i| format!("line {i}\n")).collect()
    };
    let tail = |args: &[&str]| {
        let ran = ctl(&sandbox, args);
        ran.expect_code(0);
        ran.stdout
    };
    assert_eq!(tail(&["tail", "-n", "3", "lines"]), numbered(2998..=3000));
    // More lines than the first window holds (8 KiB): it is read again, bigger.
    assert_eq!(tail(&["tail", "-n2000", "lines"]), numbered(1001..=3000));
    // More lines than the file has: the whole file.
    assert_eq!(
        tail(&["tail", "-n", "5000", "lines", "stdout"]),
        numbered(1..=3000)
    );
    assert_eq!(tail(&["tail", "-n", "0", "lines"]), "");
    // supervisorctl's form: bytes.
    let file = sandbox.read("lines.out");
    assert_eq!(tail(&["tail", "-100", "lines"]), file[file.len() - 100..]);

    let bad = ctl(&sandbox, &["tail", "-n", "x", "lines"]);
    bad.expect_code(1);
    assert!(
        bad.stderr
            .contains("tail -n expects a number of lines, found \"x\""),
        "{bad:?}"
    );
    // `run`'s shell reads the file itself, with the same rule.
    assert_eq!(
        tm.command_all("tail -n 2 lines"),
        ["line 2999", "line 3000"]
    );
}

#[test]
fn tail_f_n_prints_the_last_lines_then_what_comes() {
    let sandbox = Sandbox::new();
    // Five lines, then a numbered line each time it gets USR1.
    let script = "for i in 1 2 3 4 5; do echo start $i; done; i=0; tick() { i=$((i+1)); \
                  echo tick $i; }; trap tick USR1; while :; do sleep 0.1; done";
    let mut tm = start(
        &sandbox,
        &config(&[program(
            "ticker",
            &yaml_quote(&format!("sh -c {}", shell_quote(script))),
            &["starttime: 0", "stoptime: 1", "stdout: ticker.out"],
        )]),
    );
    sandbox.wait_for_contents("ticker.out", |text| text.ends_with("start 5\n"), TIMEOUT);
    tm.wait_for_state("ticker", "RUNNING", TIMEOUT);

    let output = File::create(sandbox.file("tail.out")).expect("create tail.out");
    let mut cmd = ctl_command(&sandbox, &["-s", &sandbox.file_str("taskmaster.sock")]);
    cmd.args(["tail", "-f", "-n", "2", "ticker"])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null());
    let mut tail = Process::spawn(cmd);
    sandbox.wait_for_contents("tail.out", |text| text == "start 4\nstart 5\n", TIMEOUT);
    for n in 1..=2 {
        ctl(&sandbox, &["signal", "USR1", "ticker"]).expect_code(0);
        let expected = format!("tick {n}\n");
        sandbox.wait_for_contents("tail.out", |text| text.ends_with(&expected), TIMEOUT);
    }
    send_signal(tail.pid(), Signal::INT).expect("interrupt ctl");
    tail.wait_exit(TIMEOUT);
    assert_eq!(
        sandbox.read("tail.out"),
        "start 4\nstart 5\ntick 1\ntick 2\n"
    );
}

/// `tail -f -n` with more lines than the first window holds: the window is asked again, twice as
/// big, each time as a followed answer of its own; what follows is the rest of the last one.
#[test]
fn tail_f_n_past_the_first_window_shows_each_line_once() {
    let sandbox = Sandbox::new();
    // 3000 lines (30 KB, past the first 8 KiB window), then a numbered line on each USR1.
    let script = "i=1; while [ $i -le 3000 ]; do echo \"start $i\"; i=$((i+1)); done; i=0; \
                  tick() { i=$((i+1)); echo tick $i; }; trap tick USR1; while :; do sleep 0.1; done";
    let mut tm = start(
        &sandbox,
        &config(&[program(
            "ticker",
            &yaml_quote(&format!("sh -c {}", shell_quote(script))),
            &["starttime: 0", "stoptime: 1", "stdout: ticker.out"],
        )]),
    );
    sandbox.wait_for_contents("ticker.out", |text| text.ends_with("start 3000\n"), TIMEOUT);
    tm.wait_for_state("ticker", "RUNNING", TIMEOUT);

    let output = File::create(sandbox.file("tail.out")).expect("create tail.out");
    let mut cmd = ctl_command(&sandbox, &["-s", &sandbox.file_str("taskmaster.sock")]);
    cmd.args(["tail", "-f", "-n", "2000", "ticker"])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null());
    let mut tail = Process::spawn(cmd);
    let last_lines: String = (1001..=3000).map(|i| format!("start {i}\n")).collect();
    sandbox.wait_for_contents("tail.out", |text| text == last_lines, TIMEOUT);
    ctl(&sandbox, &["signal", "USR1", "ticker"]).expect_code(0);
    sandbox.wait_for_contents("tail.out", |text| text.ends_with("tick 1\n"), TIMEOUT);
    send_signal(tail.pid(), Signal::INT).expect("interrupt ctl");
    tail.wait_exit(TIMEOUT);
    assert_eq!(sandbox.read("tail.out"), format!("{last_lines}tick 1\n"));
}

// ---------------------------------------------------------------------------------------------
// The interactive shell, and scripts
// ---------------------------------------------------------------------------------------------

/// `taskmaster ctl -s SOCKET` on a terminal, once its prompt is up.
fn interactive(sandbox: &Sandbox) -> PtySession {
    let socket = sandbox.file_str("taskmaster.sock");
    let session = PtySession::spawn(ctl_command(sandbox, &["-s", &socket]));
    session.wait_for_screen(|s| s.contains(PROMPT), TIMEOUT);
    session
}

#[test]
fn interactive_ctl_shows_the_prompt_and_runs_status() {
    let (sandbox, _tm, web) = web_and_idle_program();
    let session = interactive(&sandbox);
    session.send(format!("status{ENTER}"));
    let screen = session.wait_for_screen(|s| s.contains("Not started"), TIMEOUT);
    let web_line = format!("{:<33}{:<10}pid {web}, uptime 0:", "web", "RUNNING");
    assert!(screen.contains(&web_line), "{screen}");
    assert!(
        screen.contains(&format!("{:<33}{:<10}Not started", "idle", "STOPPED")),
        "{screen}"
    );
    session.wait_for_screen(|s| current_line(s) == PROMPT.trim_end(), TIMEOUT);
}

#[test]
fn interactive_ctl_completes_process_names_asked_of_the_daemon() {
    let (sandbox, _tm, web) = web_and_idle_program();
    let session = interactive(&sandbox);
    // A program that exists only once ctl is already running: completion must ask the daemon.
    sandbox.write_config(&config(&[
        web_program(&sandbox),
        idle_program(),
        program(
            "zebra",
            &fixture_cmd(&["sleep", "forever"]),
            &["autostart: false"],
        ),
    ]));
    let reload = ctl(&sandbox, &["reload"]);
    assert_eq!(reload.stdout, "reloaded: added zebra\n", "{reload:?}");
    session.send(format!("status ze{TAB}"));
    session.wait_for_screen(
        |s| current_line(s) == format!("{PROMPT}status zebra"),
        TIMEOUT,
    );
    session.send(ENTER);
    session.wait_for_screen(
        |s| s.contains("Not started") && current_line(s) == PROMPT.trim_end(),
        TIMEOUT,
    );
    session.send(format!("pid we{TAB}"));
    session.wait_for_screen(|s| current_line(s) == format!("{PROMPT}pid web"), TIMEOUT);
    session.send(ENTER);
    session.wait_for_screen(|s| s.contains(&format!("\n{web}\n")), TIMEOUT);
}

#[test]
fn interactive_ctl_keeps_its_history_in_home() {
    let (sandbox, _tm, _) = web_and_idle_program();
    let mut session = interactive(&sandbox);
    session.send(format!("status idle{ENTER}"));
    session.wait_for_screen(|s| s.contains("Not started"), TIMEOUT);
    session.send(CTRL_D);
    session.wait_exit(TIMEOUT);
    let history = sandbox.read(".taskmaster_history");
    assert!(history.lines().any(|l| l == "status idle"), "{history:?}");
}

#[test]
fn ctrl_c_ends_a_tail_f_in_ctls_shell_and_the_prompt_comes_back() {
    let (sandbox, _tm, web) = web_and_idle_program();
    let session = interactive(&sandbox);
    session.send(format!("tail -f web{ENTER}"));
    session.wait_for_screen(|s| s.contains("tail -f web\n"), TIMEOUT);
    session.send(CTRL_C);
    session.wait_for_screen(|s| current_line(s) == PROMPT.trim_end(), TIMEOUT);
    session.send(format!("pid web{ENTER}"));
    session.wait_for_screen(|s| s.contains(&format!("\n{web}")), TIMEOUT);
}

#[test]
fn ctrl_d_leaves_ctl_and_the_daemon_runs_on() {
    let (sandbox, mut tm, web) = web_and_idle_program();
    let mut session = interactive(&sandbox);
    session.send(CTRL_D);
    let status = session.wait_exit(TIMEOUT);
    assert!(status.success(), "{status:?}");
    // Unlike `run`'s shell, leaving ctl stops nothing.
    assert!(is_alive(tm.daemon_pid()));
    let web_now = tm.status("web");
    assert_eq!(web_now.state, "RUNNING");
    assert_eq!(web_now.pid(), Some(web));
    assert!(is_alive(web));
}

#[test]
fn a_script_on_stdin_runs_each_line() {
    let (sandbox, tm, web) = web_and_idle_program();
    let socket = sandbox.file_str("taskmaster.sock");
    let ctl = format!(
        "{} ctl -s {}",
        shell_quote(taskmaster_bin().to_str().expect("UTF-8")),
        shell_quote(&socket)
    );
    let mut echo = Command::new("sh");
    echo.arg("-c")
        .arg(format!("echo status | {ctl}"))
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let ran = Ran::from(run_to_completion(echo, TIMEOUT));
    ran.expect_code(0);
    assert_eq!(ran.lines().len(), 2, "{ran:?}");
    assert_eq!(
        ran.lines()[0],
        format!("{:<33}{:<10}Not started", "idle", "STOPPED")
    );
    assert!(
        ran.lines()[1].starts_with(&format!("{:<33}{:<10}pid {web}, uptime ", "web", "RUNNING")),
        "{ran:?}"
    );
    // No prompt, one answer per line, in order.
    let mut script = Command::new("sh");
    script
        .arg("-c")
        .arg(format!("printf 'pid web\\npid\\n' | {ctl}"))
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let ran = Ran::from(run_to_completion(script, TIMEOUT));
    assert_eq!(
        ran.stdout,
        format!("{web}\n{}\n", tm.daemon_pid()),
        "{ran:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// run --no-shell + ctl
// ---------------------------------------------------------------------------------------------

#[test]
fn run_no_shell_is_driven_entirely_through_ctl() {
    let sandbox = Sandbox::new();
    let mut tm = start_with(
        &sandbox,
        &config(&[web_program(&sandbox), idle_program()]),
        &["--no-shell"],
    );
    let first = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    tm.track(first);
    let status = ctl(&sandbox, &["status", "web"]);
    status.expect_code(0);
    assert!(
        status
            .stdout
            .starts_with(&format!("{:<33}{:<10}pid {first}, ", "web", "RUNNING")),
        "{status:?}"
    );

    ctl(&sandbox, &["start", "idle"]).expect_code(0);
    let idle = ctl(&sandbox, &["pid", "idle"]);
    let idle: u32 = idle.stdout.trim().parse().expect("a pid");
    tm.track(idle);
    assert!(is_alive(idle));

    let restart = ctl(&sandbox, &["restart", "web"]);
    restart.expect_code(0);
    assert!(!is_alive(first));
    let second: u32 = ctl(&sandbox, &["pid", "web"])
        .stdout
        .trim()
        .parse()
        .expect("a pid");
    tm.track(second);
    assert_ne!(second, first);

    let shutdown = ctl(&sandbox, &["shutdown"]);
    shutdown.expect_code(0);
    assert_eq!(shutdown.stdout, "Shut down\n");
    let exit = tm.wait_exit(TIMEOUT);
    assert!(exit.success(), "{exit:?}\n{}", tm.diagnostics());
    for pid in [second, idle] {
        wait_dead(pid, TIMEOUT);
    }
    assert!(!socket(&sandbox).exists());
    // And ctl now says there is nobody there.
    ctl(&sandbox, &["status"]).expect_code(1);
}

#[test]
fn maintail_shows_the_end_of_the_event_log_and_follows_it() {
    let (sandbox, _tm, _web) = web_and_idle_program();
    let ran = ctl(&sandbox, &["maintail"]);
    ran.expect_code(0);
    assert!(ran.stdout.contains("web: spawned with pid"), "{ran:?}");

    let output = File::create(sandbox.file("maintail.out")).expect("create maintail.out");
    let mut cmd = ctl_command(&sandbox, &["-s", &sandbox.file_str("taskmaster.sock")]);
    cmd.args(["maintail", "-f"])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null());
    let mut follow = Process::spawn(cmd);
    sandbox.wait_for_contents(
        "maintail.out",
        |text| text.contains("web: spawned"),
        TIMEOUT,
    );
    ctl(&sandbox, &["start", "idle"]).expect_code(0);
    sandbox.wait_for_contents(
        "maintail.out",
        |text| text.contains("idle: spawned with pid"),
        TIMEOUT,
    );
    send_signal(follow.pid(), Signal::INT).expect("interrupt ctl");
    follow.wait_exit(TIMEOUT);
}

/// `ctl -c FILE` with a file that says something wrong about the socket says so, with the
/// place, and reaches for no socket; with no file at all it tries `taskmaster.sock` beside
/// where the file would be.
#[test]
fn ctl_c_with_a_wrong_socket_setting_says_where_and_guesses_nothing() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config("socket_username: admin\nprograms: {}\n");
    let config = config.to_str().expect("UTF-8");
    let ran = ctl_raw(&sandbox, &["-c", config, "status"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("cannot find the control socket in")
            && ran
                .stderr
                .contains("taskmaster.yaml:2:18: socket_username: socket_password is missing"),
        "{ran:?}"
    );
    let missing = sandbox.file("elsewhere/none.yaml");
    let ran = ctl_raw(
        &sandbox,
        &["-c", missing.to_str().expect("UTF-8"), "status"],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("elsewhere/taskmaster.sock"), "{ran:?}");
}
