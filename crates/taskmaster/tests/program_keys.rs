//! Every per-program configuration key, proven on real children: what the key changes in the
//! process taskmaster starts (its arguments, environment, directory, umask, output files) or in
//! how taskmaster supervises it (states, restarts, retries, stop signal, deadlines).
//!
//! Durations are proven with lower bounds measured by the test itself (an instant taken before
//! the cause, another after the effect is seen), which only a product bug can break; a slow
//! machine only makes them pass more easily.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One program's entry under `programs:`, with `cmd: CMD` (a ready YAML value) and `settings`
/// (YAML lines; nested ones indented further than the first).
fn program_cmd(name: &str, cmd: &str, settings: &str) -> String {
    let mut yaml = format!("  {name}:\n    cmd: {cmd}\n");
    for line in dedent(settings).lines().filter(|l| !l.trim().is_empty()) {
        yaml.push_str(&format!("    {line}\n"));
    }
    yaml
}

/// [`program_cmd`] for a program running the fixture with `args`.
fn program(name: &str, args: &[&str], settings: &str) -> String {
    program_cmd(name, &fixture_cmd(args), settings)
}

/// A whole configuration of these programs (the sandbox adds the `logfile:`).
fn config(programs: &[String]) -> String {
    format!("programs:\n{}", programs.concat())
}

/// Writes a configuration of `programs` in the sandbox and starts taskmaster on it.
fn launch(sandbox: &Sandbox, programs: &[String]) -> Taskmaster {
    sandbox.write_config(&config(programs));
    Taskmaster::start(sandbox, &[])
}

/// Writes a configuration of `programs` to `SANDBOX/subdir/taskmaster.yaml` (the event log
/// still at [`Sandbox::logfile`]) and starts taskmaster on it, its working directory the
/// sandbox: relative paths in the file then mean different places depending on whether they are
/// resolved against the file's folder or against taskmaster's working directory.
fn launch_from_subdir(sandbox: &Sandbox, subdir: &str, programs: &[String]) -> Taskmaster {
    let dir = sandbox.file(subdir);
    fs::create_dir_all(&dir).expect("create the configuration folder");
    let logfile = sandbox.logfile();
    let text = format!(
        "logfile: {}\n{}",
        yaml_quote(logfile.to_str().expect("UTF-8 sandbox path")),
        config(programs)
    );
    let path = dir.join("taskmaster.yaml");
    fs::write(&path, text).expect("write the configuration");
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    Taskmaster::spawn(sandbox, cmd)
}

/// How many lines of the event log contain `needle`.
fn log_count(tm: &Taskmaster, needle: &str) -> usize {
    tm.log()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// The index of the first line of `log` containing `needle`; fails the test if there is none.
fn log_index(log: &str, needle: &str) -> usize {
    log.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no log line containing {needle:?} in:\n{log}"))
}

/// The sandbox's own path, as a string for configurations.
fn dir_str(sandbox: &Sandbox) -> String {
    sandbox
        .path()
        .to_str()
        .expect("UTF-8 sandbox path")
        .to_owned()
}

/// The canonical form of `path`, as a child's `getcwd` reports it.
fn canonical(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", path.display()))
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// Where descriptor `fd` of process `pid` points.
fn fd_target(pid: u32, fd: u32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/fd/{fd}: {e}"))
}

/// The argument vector of process `pid`.
fn cmdline(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).expect("read /proc/PID/cmdline");
    raw.split(|&b| b == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect()
}

/// Sends `stop NAME` and expects `NAME: stopped`.
fn stop(tm: &mut Taskmaster, name: &str) {
    let reply = tm.command(&format!("stop {name}"), 1).remove(0);
    assert_eq!(reply, format!("{name}: stopped"));
}

// ---------------------------------------------------------------------------------------------
// cmd
// ---------------------------------------------------------------------------------------------

#[test]
fn cmd_quoted_argument_arrives_as_one_word() {
    let sandbox = Sandbox::new();
    // Split at the space, the fixture would get `print two` and an unknown step `words`, and
    // exit 100 without printing anything.
    let _tm = launch(
        &sandbox,
        &[program(
            "quoted",
            &["print", "two words", "sleep", "forever"],
            &format!("starttime: 0\nstdout: {}", sandbox.file_str("out")),
        )],
    );
    let out = sandbox.wait_for_contents("out", |text| !text.is_empty(), TIMEOUT);
    assert_eq!(out, "two words\n");
}

#[test]
fn cmd_runs_without_a_shell_so_nothing_is_expanded() {
    let sandbox = Sandbox::new();
    // A shell would expand `$HOME` (taskmaster's HOME is the sandbox) and `*` (the files in the
    // working directory), and take `x>y` for a redirection.
    let cmd = yaml_quote(&format!(
        "{} print $HOME print * print x>y",
        shell_quote(fixture_bin().to_str().expect("UTF-8 fixture path"))
    ));
    let mut tm = launch(
        &sandbox,
        &[program_cmd(
            "literal",
            &cmd,
            &format!(
                "starttime: 0\nautorestart: never\nworkingdir: {}\nstdout: {}",
                dir_str(&sandbox),
                sandbox.file_str("out")
            ),
        )],
    );
    tm.wait_for_state("literal", "EXITED", TIMEOUT);
    assert_eq!(sandbox.read("out"), "$HOME\n*\nx>y\n");
    assert!(!sandbox.file("y").exists(), "a shell redirected to y");
}

#[test]
fn cmd_sh_c_runs_a_shell_when_written() {
    let sandbox = Sandbox::new();
    let out = shell_quote(&sandbox.file_str("out"));
    let script = format!("echo first > {out}; echo second >> {out}");
    let cmd = yaml_quote(&format!("sh -c {}", shell_quote(&script)));
    let mut tm = launch(
        &sandbox,
        &[program_cmd(
            "shell",
            &cmd,
            "starttime: 0\nautorestart: never",
        )],
    );
    tm.wait_for_state("shell", "EXITED", TIMEOUT);
    assert_eq!(sandbox.read("out"), "first\nsecond\n");
    tm.wait_for_log("shell: exited with code 0 (expected)", TIMEOUT);
}

#[test]
fn cmd_bare_program_name_is_looked_up_in_path() {
    let sandbox = Sandbox::new();
    let mut tm = launch(&sandbox, &[program_cmd("nap", "sleep 30", "starttime: 0")]);
    let pid = tm.running_pid("nap");
    assert!(is_alive(pid));
    // Right after the spawn returns, the kernel may still be setting up the new program's
    // arguments (the parent of a vfork is let go before they are in place): /proc shows an
    // empty cmdline for that moment.
    let words = wait_until("sleep's cmdline", TIMEOUT, || {
        let words = cmdline(pid);
        (!words.is_empty()).then_some(words)
    });
    assert_eq!(words, ["sleep", "30"]);
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).expect("read comm");
    assert_eq!(comm.trim(), "sleep");
}

#[test]
fn cmd_unknown_program_is_a_spawn_error() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program_cmd(
            "ghost",
            "no-such-program-for-taskmaster --flag",
            "startretries: 0",
        )],
    );
    let status = tm.wait_for_state("ghost", "FATAL", TIMEOUT);
    assert!(
        status
            .description
            .contains("cannot execute no-such-program-for-taskmaster"),
        "{status:?}"
    );
    tm.wait_for_log(
        "ghost: spawn error: cannot execute no-such-program-for-taskmaster: No such file",
        TIMEOUT,
    );
}

// ---------------------------------------------------------------------------------------------
// numprocs
// ---------------------------------------------------------------------------------------------

#[test]
fn numprocs_runs_that_many_copies_with_distinct_live_pids() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program(
            "worker",
            &["sleep", "forever"],
            "numprocs: 3\nstarttime: 0",
        )],
    );
    let names = ["worker:worker_00", "worker:worker_01", "worker:worker_02"];
    let pids: Vec<u32> = names.iter().map(|name| tm.running_pid(name)).collect();
    let shown: Vec<String> = tm.status_all().into_iter().map(|s| s.name).collect();
    assert_eq!(shown, names);
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 3, "{pids:?}");
    for pid in pids {
        assert!(is_alive(pid), "pid {pid}");
    }
}

#[test]
fn numprocs_names_each_copy_in_its_environment() {
    let sandbox = Sandbox::new();
    // Each copy writes its report to a file named after its TASKMASTER_PROCESS_NAME; `exec`
    // keeps the pid taskmaster knows.
    let script = format!(
        "exec {} report \"$TASKMASTER_PROCESS_NAME.report\" sleep forever",
        shell_quote(fixture_bin().to_str().expect("UTF-8 fixture path"))
    );
    let cmd = yaml_quote(&format!("sh -c {}", shell_quote(&script)));
    let mut tm = launch(
        &sandbox,
        &[program_cmd(
            "worker",
            &cmd,
            &format!(
                "numprocs: 3\nstarttime: 0\nworkingdir: {}",
                dir_str(&sandbox)
            ),
        )],
    );
    for (index, process) in ["worker_00", "worker_01", "worker_02"].iter().enumerate() {
        let pid = tm.running_pid(&format!("worker:{process}"));
        let file = format!("{process}.report");
        sandbox.wait_for_file(&file, TIMEOUT);
        let report = read_report(&sandbox.file(&file));
        assert_eq!(
            report["env.TASKMASTER_PROCESS_NAME"], *process,
            "copy {index}"
        );
        assert_eq!(report["env.TASKMASTER_GROUP_NAME"], "worker");
        // supervisord's names too, for programs that come from it.
        assert_eq!(
            report["env.SUPERVISOR_PROCESS_NAME"],
            report["env.TASKMASTER_PROCESS_NAME"]
        );
        assert_eq!(report["env.SUPERVISOR_GROUP_NAME"], "worker");
        assert_eq!(report["env.SUPERVISOR_ENABLED"], "1");
        assert_eq!(report["pid"], pid.to_string());
    }
}

#[test]
fn numprocs_one_names_the_process_after_the_program() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let mut tm = launch(
        &sandbox,
        &[program(
            "solo",
            &["report", &report, "sleep", "forever"],
            "numprocs: 1\nstarttime: 0",
        )],
    );
    let pid = tm.running_pid("solo");
    let shown: Vec<String> = tm.status_all().into_iter().map(|s| s.name).collect();
    assert_eq!(shown, ["solo"]);
    sandbox.wait_for_file("report", TIMEOUT);
    let report = read_report(&sandbox.file("report"));
    assert_eq!(report["pid"], pid.to_string());
    assert_eq!(report["env.TASKMASTER_PROCESS_NAME"], "solo");
    assert_eq!(report["env.TASKMASTER_GROUP_NAME"], "solo");
}

// ---------------------------------------------------------------------------------------------
// autostart
// ---------------------------------------------------------------------------------------------

#[test]
fn autostart_true_and_absent_start_at_launch() {
    let sandbox = Sandbox::new();
    let (on, absent) = (sandbox.file_str("on.pid"), sandbox.file_str("absent.pid"));
    let mut tm = launch(
        &sandbox,
        &[
            program(
                "on",
                &["pidfile", &on, "sleep", "forever"],
                "autostart: true\nstarttime: 0",
            ),
            program(
                "absent",
                &["pidfile", &absent, "sleep", "forever"],
                "starttime: 0",
            ),
        ],
    );
    for name in ["on", "absent"] {
        let pid = tm.running_pid(name);
        assert_eq!(
            sandbox.wait_for_pidfile(&format!("{name}.pid"), TIMEOUT),
            pid
        );
    }
}

#[test]
fn autostart_false_stays_stopped_until_start() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("lazy.pid");
    let mut tm = launch(
        &sandbox,
        &[program(
            "lazy",
            &["pidfile", &pidfile, "sleep", "forever"],
            "autostart: false\nstarttime: 0",
        )],
    );
    // The autostarts are carried out before the first request is read: had `lazy` been
    // started, this status would show it.
    let status = tm.status("lazy");
    assert_eq!(
        (status.state.as_str(), status.description.as_str()),
        ("STOPPED", "Not started")
    );
    assert_eq!(log_count(&tm, "lazy: spawned"), 0, "{}", tm.log());
    assert!(!sandbox.file("lazy.pid").exists());

    assert_eq!(tm.command("start lazy", 1), ["lazy: started"]);
    let pid = tm.running_pid("lazy");
    assert_eq!(sandbox.wait_for_pidfile("lazy.pid", TIMEOUT), pid);
}

// ---------------------------------------------------------------------------------------------
// autorestart
// ---------------------------------------------------------------------------------------------

/// A program that stamps `stamps` at each start, is RUNNING at once and exits with `code`
/// after a short while (so that an `always` policy does not spin).
fn exits_after_a_while(sandbox: &Sandbox, name: &str, code: &str, settings: &str) -> String {
    program(
        name,
        &[
            "stamp",
            &sandbox.file_str(&format!("{name}.stamps")),
            "sleep",
            "0.3",
            "exit",
            code,
        ],
        &format!("starttime: 0\n{settings}"),
    )
}

/// Waits until program `name` has started `n` times (its stamps file has `n` lines).
fn wait_for_starts(sandbox: &Sandbox, name: &str, n: usize) {
    sandbox.wait_for_contents(
        &format!("{name}.stamps"),
        |text| text.lines().count() >= n,
        TIMEOUT,
    );
}

/// Waits until `name` is EXITED, and checks it was started only once. A restart is decided in
/// the same step as the exit, so a status that shows EXITED proves no restart followed it.
fn assert_exited_without_restart(tm: &mut Taskmaster, sandbox: &Sandbox, name: &str) {
    tm.wait_for_state(name, "EXITED", TIMEOUT);
    assert_eq!(sandbox.read(&format!("{name}.stamps")).lines().count(), 1);
    assert_eq!(log_count(tm, &format!(" {name}: spawned with pid")), 1);
    assert_eq!(log_count(tm, &format!(" {name}: restarting")), 0);
}

#[test]
fn autorestart_always_restarts_after_an_expected_exit() {
    let sandbox = Sandbox::new();
    let tm = launch(
        &sandbox,
        &[exits_after_a_while(
            &sandbox,
            "phoenix",
            "0",
            "autorestart: always",
        )],
    );
    wait_for_starts(&sandbox, "phoenix", 2);
    // The child may stamp its start before the loop has written the lines before its spawn.
    tm.wait_for_log("phoenix: restarting: autorestart is always", TIMEOUT);
    let log = tm.log();
    let exit = log_index(&log, "phoenix: exited with code 0 (expected)");
    let restart = log_index(&log, "phoenix: restarting: autorestart is always");
    assert!(exit < restart, "{log}");
}

#[test]
fn autorestart_never_leaves_an_unexpected_exit_exited() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[exits_after_a_while(
            &sandbox,
            "once",
            "3",
            "autorestart: never",
        )],
    );
    assert_exited_without_restart(&mut tm, &sandbox, "once");
    tm.wait_for_log("once: exited with code 3 (not expected)", TIMEOUT);
}

#[test]
fn autorestart_unexpected_is_the_default_and_restarts_an_unexpected_exit() {
    let sandbox = Sandbox::new();
    let tm = launch(&sandbox, &[exits_after_a_while(&sandbox, "flaky", "3", "")]);
    wait_for_starts(&sandbox, "flaky", 2);
    // The child may stamp its start before the loop has written the lines before its spawn.
    tm.wait_for_log("flaky: restarting: the exit was not expected", TIMEOUT);
    let log = tm.log();
    let exit = log_index(&log, "flaky: exited with code 3 (not expected)");
    let restart = log_index(&log, "flaky: restarting: the exit was not expected");
    assert!(exit < restart, "{log}");
}

#[test]
fn autorestart_unexpected_does_not_restart_an_expected_exit() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[exits_after_a_while(
            &sandbox,
            "done",
            "0",
            "autorestart: unexpected",
        )],
    );
    assert_exited_without_restart(&mut tm, &sandbox, "done");
    tm.wait_for_log("done: exited with code 0 (expected)", TIMEOUT);
}

#[test]
fn autorestart_unexpected_restarts_a_death_by_signal() {
    let sandbox = Sandbox::new();
    let stamps = sandbox.file_str("killed.stamps");
    // A death by signal is never expected, not even with the signal's number (10) or a shell's
    // 128+N (138) among the expected codes.
    let tm = launch(
        &sandbox,
        &[program(
            "killed",
            &["stamp", &stamps, "sleep", "0.3", "raise", "USR1"],
            "starttime: 0\nautorestart: unexpected\nexitcodes: [0, 10, 138]",
        )],
    );
    wait_for_starts(&sandbox, "killed", 2);
    // The child may stamp its start before the loop has written the lines before its spawn.
    tm.wait_for_log("killed: restarting: the exit was not expected", TIMEOUT);
    let log = tm.log();
    let exit = log_index(&log, "killed: killed by SIGUSR1 (not expected)");
    let restart = log_index(&log, "killed: restarting: the exit was not expected");
    assert!(exit < restart, "{log}");
}

#[test]
fn autorestart_true_means_always() {
    let sandbox = Sandbox::new();
    let tm = launch(
        &sandbox,
        &[exits_after_a_while(
            &sandbox,
            "yes",
            "0",
            "autorestart: true",
        )],
    );
    wait_for_starts(&sandbox, "yes", 2);
    tm.wait_for_log("yes: restarting: autorestart is always", TIMEOUT);
}

#[test]
fn autorestart_false_means_never() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[exits_after_a_while(
            &sandbox,
            "no",
            "5",
            "autorestart: false",
        )],
    );
    assert_exited_without_restart(&mut tm, &sandbox, "no");
    tm.wait_for_log("no: exited with code 5 (not expected)", TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// exitcodes
// ---------------------------------------------------------------------------------------------

#[test]
fn exitcodes_integer_form_makes_that_code_the_expected_one() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[
            exits_after_a_while(&sandbox, "three", "3", "exitcodes: 3"),
            // 0 is no longer expected once exitcodes says 3.
            exits_after_a_while(&sandbox, "zero", "0", "exitcodes: 3"),
        ],
    );
    assert_exited_without_restart(&mut tm, &sandbox, "three");
    tm.wait_for_log("three: exited with code 3 (expected)", TIMEOUT);
    wait_for_starts(&sandbox, "zero", 2);
    tm.wait_for_log("zero: exited with code 0 (not expected)", TIMEOUT);
    tm.wait_for_log("zero: restarting: the exit was not expected", TIMEOUT);
}

#[test]
fn exitcodes_list_form_makes_each_listed_code_expected() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[
            exits_after_a_while(&sandbox, "zero", "0", "exitcodes: [0, 2]"),
            exits_after_a_while(&sandbox, "two", "2", "exitcodes: [0, 2]"),
            exits_after_a_while(&sandbox, "one", "1", "exitcodes: [0, 2]"),
        ],
    );
    for name in ["zero", "two"] {
        assert_exited_without_restart(&mut tm, &sandbox, name);
    }
    tm.wait_for_log("zero: exited with code 0 (expected)", TIMEOUT);
    tm.wait_for_log("two: exited with code 2 (expected)", TIMEOUT);
    wait_for_starts(&sandbox, "one", 2);
    tm.wait_for_log("one: exited with code 1 (not expected)", TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// starttime
// ---------------------------------------------------------------------------------------------

#[test]
fn starttime_exit_before_it_is_a_failed_start_then_fatal() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program(
            "hasty",
            &["exit", "0"],
            "starttime: 5\nstartretries: 4",
        )],
    );
    // The retries wait 1, 2, 3 then 4 s: polling every few ms, the test cannot miss them all.
    let backoff = tm.wait_for_state("hasty", "BACKOFF", TIMEOUT);
    assert_eq!(
        backoff.description,
        "Exited too quickly (process log may have details)"
    );
    let fatal = tm.wait_for_state("hasty", "FATAL", TIMEOUT);
    assert_eq!(
        fatal.description,
        "Exited too quickly (process log may have details)"
    );
    let log = tm.log();
    let early = log_index(&log, "hasty: exited with code 0 after");
    assert!(
        log.lines()
            .nth(early)
            .unwrap()
            .ends_with("before its starttime"),
        "{log}"
    );
    assert!(
        early < log_index(&log, "hasty: BACKOFF: start failed"),
        "{log}"
    );
    assert_eq!(log_count(&tm, "hasty: RUNNING"), 0, "{log}");
    assert_eq!(log_count(&tm, "hasty: exited with code 0 (expected)"), 0);
}

#[test]
fn starttime_keeps_a_process_starting_until_it_has_passed() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("slow.pid");
    let before_launch = Instant::now();
    let mut tm = launch(
        &sandbox,
        &[program(
            "slow",
            &["pidfile", &pidfile, "sleep", "forever"],
            "starttime: 10",
        )],
    );
    let pid = sandbox.wait_for_pidfile("slow.pid", TIMEOUT);
    // The child is up, but not yet for 10 s (only a 10 s stall of this test could make it so).
    let status = tm.status("slow");
    assert_eq!(status.state, "STARTING", "{status:?}");
    assert_eq!(log_count(&tm, "slow: RUNNING"), 0, "{}", tm.log());

    assert_eq!(tm.running_pid("slow"), pid);
    assert!(before_launch.elapsed() >= Duration::from_secs(10));
    tm.wait_for_log("slow: RUNNING: up for 10s (starttime)", TIMEOUT);
}

#[test]
fn starttime_zero_is_running_at_once() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program("quick", &["sleep", "forever"], "starttime: 0")],
    );
    // No timer is involved: the first status after launch already shows RUNNING.
    let status = tm.status("quick");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    let log = tm.log();
    let spawned = log_index(&log, "quick: spawned with pid");
    assert!(log
        .lines()
        .nth(spawned + 1)
        .unwrap()
        .ends_with("quick: RUNNING"));
}

#[test]
fn starttime_as_a_500ms_string_is_effective() {
    let sandbox = Sandbox::new();
    let before_launch = Instant::now();
    let mut tm = launch(
        &sandbox,
        &[program("half", &["sleep", "forever"], "starttime: 500ms")],
    );
    tm.running_pid("half");
    assert!(
        before_launch.elapsed() >= Duration::from_millis(500),
        "RUNNING after {:?}",
        before_launch.elapsed()
    );
    tm.wait_for_log("half: RUNNING: up for 500ms (starttime)", TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// startretries
// ---------------------------------------------------------------------------------------------

#[test]
fn startretries_spawns_one_more_time_than_retries_before_fatal() {
    let sandbox = Sandbox::new();
    let stamps = sandbox.file_str("doomed.stamps");
    let mut tm = launch(
        &sandbox,
        &[program(
            "doomed",
            &["stamp", &stamps, "exit", "1"],
            "starttime: 5\nstartretries: 2",
        )],
    );
    tm.wait_for_state("doomed", "FATAL", TIMEOUT);
    assert_eq!(sandbox.read("doomed.stamps").lines().count(), 3);
    assert_eq!(log_count(&tm, "doomed: spawned with pid"), 3);
    tm.wait_for_log(
        "doomed: gave up: FATAL after 3 failed start attempt(s)",
        TIMEOUT,
    );
}

#[test]
fn startretries_backoff_delays_grow_one_second_at_a_time() {
    let sandbox = Sandbox::new();
    let before_launch = Instant::now();
    let mut tm = launch(
        &sandbox,
        &[program(
            "doomed",
            &["exit", "1"],
            "starttime: 5\nstartretries: 2",
        )],
    );
    tm.wait_for_state("doomed", "FATAL", TIMEOUT);
    // 1 s before the second attempt, 2 s before the third.
    assert!(before_launch.elapsed() >= Duration::from_secs(3));
    let log = tm.log();
    let order = [
        "doomed: BACKOFF: start failed (1 of 2 retries used); next attempt in 1s",
        "doomed: start attempt 2",
        "doomed: BACKOFF: start failed (2 of 2 retries used); next attempt in 2s",
        "doomed: start attempt 3",
        "doomed: gave up: FATAL after 3 failed start attempt(s)",
    ];
    let positions: Vec<usize> = order.iter().map(|line| log_index(&log, line)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{log}");
}

#[test]
fn startretries_zero_is_fatal_after_one_attempt() {
    let sandbox = Sandbox::new();
    let stamps = sandbox.file_str("single.stamps");
    let mut tm = launch(
        &sandbox,
        &[program(
            "single",
            &["stamp", &stamps, "exit", "1"],
            "starttime: 5\nstartretries: 0",
        )],
    );
    let status = tm.wait_for_state("single", "FATAL", TIMEOUT);
    assert_eq!(
        status.description,
        "Exited too quickly (process log may have details)"
    );
    assert_eq!(sandbox.read("single.stamps").lines().count(), 1);
    assert_eq!(log_count(&tm, "single: spawned with pid"), 1);
    assert_eq!(log_count(&tm, "single: BACKOFF"), 0);
    tm.wait_for_log(
        "single: gave up: FATAL after 1 failed start attempt(s)",
        TIMEOUT,
    );
}

// ---------------------------------------------------------------------------------------------
// stopsignal
// ---------------------------------------------------------------------------------------------

#[test]
fn stopsignal_is_what_stop_sends() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("polite.pid");
    let mut tm = launch(
        &sandbox,
        &[program(
            "polite",
            &[
                "on", "USR1", "exit", "42", "pidfile", &pidfile, "sleep", "forever",
            ],
            "starttime: 0\nstopsignal: USR1\nstoptime: 1",
        )],
    );
    // The pid file is written once the handler is in place.
    let pid = sandbox.wait_for_pidfile("polite.pid", TIMEOUT);
    assert_eq!(tm.running_pid("polite"), pid);
    stop(&mut tm, "polite");
    wait_dead(pid, TIMEOUT);
    tm.wait_for_log("polite: stop requested: sending USR1", TIMEOUT);
    tm.wait_for_log("polite: stopped (exited with code 42)", TIMEOUT);
    assert_eq!(log_count(&tm, "SIGKILL"), 0, "{}", tm.log());
}

#[test]
fn stopsignal_accepts_every_spelling() {
    let sandbox = Sandbox::new();
    // USR1 exits 42 and TERM exits 43, so each stop shows which signal arrived.
    let spellings = [
        ("usr1_name", "USR1", 42, "USR1"),
        ("usr1_sig", "SIGUSR1", 42, "USR1"),
        ("usr1_lower", "usr1", 42, "USR1"),
        ("usr1_number", "10", 42, "USR1"),
        ("term_name", "TERM", 43, "TERM"),
        ("term_sig", "SIGTERM", 43, "TERM"),
        ("term_lower", "term", 43, "TERM"),
        ("term_number", "15", 43, "TERM"),
    ];
    let programs: Vec<String> = spellings
        .iter()
        .map(|(name, spelling, _, _)| {
            let pidfile = sandbox.file_str(&format!("{name}.pid"));
            program(
                name,
                &[
                    "on", "USR1", "exit", "42", "on", "TERM", "exit", "43", "pidfile", &pidfile,
                    "sleep", "forever",
                ],
                &format!("starttime: 0\nstoptime: 1\nstopsignal: {spelling}"),
            )
        })
        .collect();
    let mut tm = launch(&sandbox, &programs);
    let output = sandbox.check_config();
    assert!(output.status.success(), "{output:?}");
    for (name, ..) in spellings {
        sandbox.wait_for_pidfile(&format!("{name}.pid"), TIMEOUT);
        tm.running_pid(name);
    }
    let replies: BTreeSet<String> = tm.command_all("stop all").into_iter().collect();
    let expected: BTreeSet<String> = spellings
        .iter()
        .map(|(name, ..)| format!("{name}: stopped"))
        .collect();
    assert_eq!(replies, expected);
    for (name, _, code, signal) in spellings {
        tm.wait_for_log(
            &format!("{name}: stop requested: sending {signal}"),
            TIMEOUT,
        );
        tm.wait_for_log(
            &format!("{name}: stopped (exited with code {code})"),
            TIMEOUT,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// stoptime
// ---------------------------------------------------------------------------------------------

/// A program that ignores SIGTERM and writes its pid file once it does.
fn stubborn(sandbox: &Sandbox, name: &str, stoptime: &str) -> String {
    let pidfile = sandbox.file_str(&format!("{name}.pid"));
    program(
        name,
        &["ignore", "TERM", "pidfile", &pidfile, "sleep", "forever"],
        &format!("starttime: 0\nstoptime: {stoptime}"),
    )
}

#[test]
fn stoptime_passed_sends_sigkill() {
    let sandbox = Sandbox::new();
    let mut tm = launch(&sandbox, &[stubborn(&sandbox, "mule", "1")]);
    let pid = sandbox.wait_for_pidfile("mule.pid", TIMEOUT);
    assert_eq!(tm.running_pid("mule"), pid);
    let before_stop = Instant::now();
    stop(&mut tm, "mule");
    assert!(before_stop.elapsed() >= Duration::from_secs(1));
    assert!(!is_alive(pid));
    let log = tm.log();
    let asked = log_index(&log, "mule: stop requested: sending TERM");
    let kill = log_index(&log, "mule: still running 1s after TERM: sending SIGKILL");
    let stopped = log_index(&log, "mule: stopped (killed by SIGKILL)");
    assert!(asked < kill && kill < stopped, "{log}");
}

#[test]
fn stoptime_is_not_waited_for_when_the_child_obeys() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("meek.pid");
    let mut tm = launch(
        &sandbox,
        &[program(
            "meek",
            &["pidfile", &pidfile, "sleep", "forever"],
            "starttime: 0\nstoptime: 1",
        )],
    );
    let pid = sandbox.wait_for_pidfile("meek.pid", TIMEOUT);
    assert_eq!(tm.running_pid("meek"), pid);
    stop(&mut tm, "meek");
    assert!(!is_alive(pid));
    tm.wait_for_log("meek: stopped (killed by SIGTERM)", TIMEOUT);
    assert_eq!(log_count(&tm, "SIGKILL"), 0, "{}", tm.log());
}

#[test]
fn stoptime_as_a_2s_string_is_effective() {
    let sandbox = Sandbox::new();
    let mut tm = launch(&sandbox, &[stubborn(&sandbox, "mule", "2s")]);
    let pid = sandbox.wait_for_pidfile("mule.pid", TIMEOUT);
    assert_eq!(tm.running_pid("mule"), pid);
    let before_stop = Instant::now();
    stop(&mut tm, "mule");
    assert!(before_stop.elapsed() >= Duration::from_secs(2));
    assert!(!is_alive(pid));
    tm.wait_for_log(
        "mule: still running 2s after TERM: sending SIGKILL",
        TIMEOUT,
    );
    tm.wait_for_log("mule: stopped (killed by SIGKILL)", TIMEOUT);
}

#[test]
fn durations_with_units_pass_check() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "timed",
        &["sleep", "forever"],
        "starttime: 500ms\nstoptime: 2s",
    )]));
    let output = sandbox.check_config();
    assert!(output.status.success(), "{output:?}");
}

// ---------------------------------------------------------------------------------------------
// stdout, stderr
// ---------------------------------------------------------------------------------------------

#[test]
fn stdout_and_stderr_files_are_created_with_the_output() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program(
            "talker",
            &[
                "print",
                "to stdout",
                "eprint",
                "to stderr",
                "sleep",
                "forever",
            ],
            &format!(
                "starttime: 0\nstdout: {}\nstderr: {}",
                sandbox.file_str("talker.out"),
                sandbox.file_str("talker.err")
            ),
        )],
    );
    tm.running_pid("talker");
    let out = sandbox.wait_for_contents("talker.out", |t| t.ends_with('\n'), TIMEOUT);
    let err = sandbox.wait_for_contents("talker.err", |t| t.ends_with('\n'), TIMEOUT);
    assert_eq!(out, "to stdout\n");
    assert_eq!(err, "to stderr\n");
}

#[test]
fn stdout_and_stderr_are_appended_to_across_restarts() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.file("talker.out"), "old out\n").expect("seed stdout");
    fs::write(sandbox.file("talker.err"), "old err\n").expect("seed stderr");
    let mut tm = launch(
        &sandbox,
        &[program(
            "talker",
            &["print", "out", "eprint", "err", "sleep", "forever"],
            &format!(
                "starttime: 0\nstdout: {}\nstderr: {}",
                sandbox.file_str("talker.out"),
                sandbox.file_str("talker.err")
            ),
        )],
    );
    sandbox.wait_for_contents("talker.out", |t| t == "old out\nout\n", TIMEOUT);
    sandbox.wait_for_contents("talker.err", |t| t == "old err\nerr\n", TIMEOUT);
    assert_eq!(
        tm.command("restart talker", 2),
        ["talker: stopped", "talker: started"]
    );
    sandbox.wait_for_contents("talker.out", |t| t == "old out\nout\nout\n", TIMEOUT);
    sandbox.wait_for_contents("talker.err", |t| t == "old err\nerr\nerr\n", TIMEOUT);
}

#[test]
fn stdout_keeps_ten_thousand_lines_whole_and_in_order() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &[program(
            "counter",
            &["lines", "10000"],
            &format!(
                "starttime: 0\nautorestart: never\nstdout: {}",
                sandbox.file_str("counter.out")
            ),
        )],
    );
    // EXITED: the child has written everything it will.
    tm.wait_for_state("counter", "EXITED", TIMEOUT);
    let out = sandbox.read("counter.out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10_000, "line count");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("line {}", i + 1),
            "line {} of the file",
            i + 1
        );
    }
    assert!(out.ends_with("line 10000\n"));
}

#[test]
fn stdout_and_stderr_absent_or_null_are_discarded() {
    let sandbox = Sandbox::new();
    let (absent, nulled) = (
        sandbox.file_str("absent.pid"),
        sandbox.file_str("nulled.pid"),
    );
    // A write to a closed descriptor would fail the step (exit 101) before the pid file.
    fn steps(pidfile: &str) -> [&str; 8] {
        [
            "print", "out", "eprint", "err", "pidfile", pidfile, "sleep", "forever",
        ]
    }
    let mut tm = launch(
        &sandbox,
        &[
            program(
                "absent",
                &steps(&absent),
                &format!("starttime: 0\nworkingdir: {}", dir_str(&sandbox)),
            ),
            program(
                "nulled",
                &steps(&nulled),
                &format!(
                    "starttime: 0\nworkingdir: {}\nstdout: null\nstderr: ~",
                    dir_str(&sandbox)
                ),
            ),
        ],
    );
    for name in ["absent", "nulled"] {
        let pid = sandbox.wait_for_pidfile(&format!("{name}.pid"), TIMEOUT);
        assert_eq!(tm.running_pid(name), pid);
        assert_eq!(fd_target(pid, 1), Path::new("/dev/null"), "{name} stdout");
        assert_eq!(fd_target(pid, 2), Path::new("/dev/null"), "{name} stderr");
    }
    let files: BTreeSet<String> = fs::read_dir(sandbox.path())
        .expect("list the sandbox")
        .map(|entry| {
            entry
                .expect("sandbox entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let allowed = [
        "taskmaster.yaml",
        "taskmaster.log",
        "absent.pid",
        "nulled.pid",
        ".taskmaster_history",
        // The control socket, beside the configuration, and the notify socket beside it.
        "taskmaster.sock",
        "taskmaster.notify",
    ];
    let unexpected: Vec<&String> = files
        .iter()
        .filter(|f| !allowed.contains(&f.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "files created: {unexpected:?}");
}

#[test]
fn stdout_relative_path_is_relative_to_the_config_folder() {
    let sandbox = Sandbox::new();
    // Both folders exist, so a path resolved against taskmaster's directory would work too.
    fs::create_dir_all(sandbox.file("etc/logs")).expect("create etc/logs");
    fs::create_dir_all(sandbox.file("logs")).expect("create logs");
    let mut tm = launch_from_subdir(
        &sandbox,
        "etc",
        &[program(
            "rel",
            &["print", "out", "eprint", "err", "sleep", "forever"],
            "starttime: 0\nstdout: rel.out\nstderr: logs/rel.err",
        )],
    );
    tm.running_pid("rel");
    sandbox.wait_for_contents("etc/rel.out", |t| t.ends_with("out\n"), TIMEOUT);
    sandbox.wait_for_contents("etc/logs/rel.err", |t| t.ends_with("err\n"), TIMEOUT);
    assert!(!sandbox.file("rel.out").exists());
    assert!(!sandbox.file("logs/rel.err").exists());
}

// ---------------------------------------------------------------------------------------------
// env
// ---------------------------------------------------------------------------------------------

/// A program that writes its report to `NAME.report` and stays up, with `settings`.
fn reporter(sandbox: &Sandbox, name: &str, settings: &str) -> String {
    let report = sandbox.file_str(&format!("{name}.report"));
    program(
        name,
        &["report", &report, "sleep", "forever"],
        &format!("starttime: 0\n{settings}"),
    )
}

/// Waits for the report of `name` and reads it.
fn report_of(sandbox: &Sandbox, name: &str) -> std::collections::HashMap<String, String> {
    let file = format!("{name}.report");
    sandbox.wait_for_file(&file, TIMEOUT);
    read_report(&sandbox.file(&file))
}

#[test]
fn env_sets_the_configured_variables() {
    let sandbox = Sandbox::new();
    let _tm = launch(
        &sandbox,
        &[reporter(
            &sandbox,
            "envy",
            "env:\n  GREETING: hello world\n  ANSWER: 42\n  FLAG: true",
        )],
    );
    let report = report_of(&sandbox, "envy");
    assert_eq!(report["env.GREETING"], "hello world");
    assert_eq!(report["env.ANSWER"], "42");
    assert_eq!(report["env.FLAG"], "true");
}

#[test]
fn env_inherits_taskmasters_own_environment() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[reporter(&sandbox, "heir", "env:\n  OTHER: x")]));
    let mut cmd = sandbox.taskmaster_command(&[]);
    cmd.env("TM_TEST_INHERITED", "from taskmaster");
    let _tm = Taskmaster::spawn(&sandbox, cmd);
    let report = report_of(&sandbox, "heir");
    assert_eq!(report["env.TM_TEST_INHERITED"], "from taskmaster");
    assert_eq!(report["env.HOME"], dir_str(&sandbox));
    assert_eq!(report["env.OTHER"], "x");
}

#[test]
fn env_overrides_taskmasters_value_of_the_same_name() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[reporter(
        &sandbox,
        "child",
        "env:\n  TM_TEST_SHARED: from config",
    )]));
    let mut cmd = sandbox.taskmaster_command(&[]);
    cmd.env("TM_TEST_SHARED", "from taskmaster");
    let _tm = Taskmaster::spawn(&sandbox, cmd);
    let report = report_of(&sandbox, "child");
    assert_eq!(report["env.TM_TEST_SHARED"], "from config");
}

// ---------------------------------------------------------------------------------------------
// workingdir
// ---------------------------------------------------------------------------------------------

#[test]
fn workingdir_is_the_childs_current_directory() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.file("work")).expect("create work");
    let _tm = launch(
        &sandbox,
        &[reporter(
            &sandbox,
            "worker",
            &format!("workingdir: {}", sandbox.file_str("work")),
        )],
    );
    let report = report_of(&sandbox, "worker");
    assert_eq!(report["cwd"], canonical(&sandbox.file("work")));
}

#[test]
fn workingdir_absent_keeps_taskmasters_directory() {
    let sandbox = Sandbox::new();
    let _tm = launch(&sandbox, &[reporter(&sandbox, "stay", "")]);
    let report = report_of(&sandbox, "stay");
    // `Sandbox::taskmaster_command` runs taskmaster in the sandbox.
    assert_eq!(report["cwd"], canonical(sandbox.path()));
}

#[test]
fn workingdir_relative_is_relative_to_the_config_folder() {
    let sandbox = Sandbox::new();
    // Both exist, so a path resolved against taskmaster's directory would also start.
    fs::create_dir_all(sandbox.file("etc/work")).expect("create etc/work");
    fs::create_dir_all(sandbox.file("work")).expect("create work");
    let _tm = launch_from_subdir(
        &sandbox,
        "etc",
        &[reporter(&sandbox, "worker", "workingdir: work")],
    );
    let report = report_of(&sandbox, "worker");
    assert_eq!(report["cwd"], canonical(&sandbox.file("etc/work")));
}

// ---------------------------------------------------------------------------------------------
// umask
// ---------------------------------------------------------------------------------------------

#[test]
fn umask_in_every_form_sets_the_childs_umask() {
    let sandbox = Sandbox::new();
    let forms = [
        ("plain", "022", "0022", 0o644),
        ("quoted", "\"077\"", "0077", 0o600),
        ("prefixed", "0o27", "0027", 0o640),
        ("absent", "", "0007", 0o660),
    ];
    let programs: Vec<String> = forms
        .iter()
        .map(|(name, umask, ..)| {
            let settings = if umask.is_empty() {
                String::new()
            } else {
                format!("umask: {umask}")
            };
            reporter(&sandbox, name, &settings)
        })
        .collect();
    sandbox.write_config(&config(&programs));
    // taskmaster's own umask is 007, unlike any configured one: `absent` inherits it.
    let mut cmd = sandbox.taskmaster_command(&[]);
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o007));
            Ok(())
        });
    }
    let _tm = Taskmaster::spawn(&sandbox, cmd);
    for (name, _, umask, mode) in forms {
        let report = report_of(&sandbox, name);
        assert_eq!(report["umask"], umask, "{name}");
        // The report is a file the child created (with mode 666 less its umask).
        let file_mode = fs::metadata(sandbox.file(&format!("{name}.report")))
            .expect("report metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(file_mode, mode, "{name}: mode {file_mode:o}");
    }
}

// ---------------------------------------------------------------------------------------------
// rlimits
// ---------------------------------------------------------------------------------------------

#[test]
fn rlimits_are_the_childs_resource_limits_from_its_start() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("limits.txt");
    let script = format!(
        "echo nofile $(ulimit -Sn) $(ulimit -Hn) > {out}.tmp; echo core $(ulimit -Sc) >> {out}.tmp; mv {out}.tmp {out}; exec sleep 1000"
    );
    let programs = [format!(
        "  limited:\n    cmd: {}\n    starttime: 0\n    rlimits: {{nofile: \"200:300\", core: 0}}\n",
        yaml_quote(&format!("sh -c {}", shell_quote(&script)))
    )];
    let _tm = launch(&sandbox, &programs);
    sandbox.wait_for_file("limits.txt", TIMEOUT);
    assert_eq!(sandbox.read("limits.txt"), "nofile 200 300\ncore 0\n");

    // `convert` shows them as the daemon took them.
    let mut convert = Command::new(taskmaster_bin());
    convert.arg("convert").arg(sandbox.config_path());
    let shown = Ran::from(run_to_completion(convert, TIMEOUT));
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .contains("rlimits: {core: \"0\", nofile: \"200:300\"}"),
        "{}",
        shown.stdout
    );
}
