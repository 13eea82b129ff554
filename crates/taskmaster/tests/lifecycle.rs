//! The supervisor's behaviour and its contract with the operating system, on the real binary
//! and real processes: the states a process goes through and the answers of the commands that
//! move it, exits seen as they happen, spawn errors, process groups, reaping, what a child
//! inherits, output that cannot stall the supervisor, the daemon's modes, and `check`.

use crate::support::unix_http;

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;
use rustix::process::Signal;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Writes `programs` (the text under `programs:`, indented by four spaces) as the sandbox's
/// configuration and starts `taskmaster run` on it, its shell on pipes.
fn launch(sandbox: &Sandbox, programs: &str) -> Taskmaster {
    write_programs(sandbox, programs);
    Taskmaster::start(sandbox, &[])
}

/// Writes `programs` (the text under `programs:`, indented by four spaces) as the sandbox's
/// configuration.
fn write_programs(sandbox: &Sandbox, programs: &str) {
    sandbox.write_config(&format!("programs:\n{programs}"));
}

/// Two programs that write a report and sleep: `web` (started by posix_spawn) and `masked`
/// (with a umask, which posix_spawn cannot set, so started by fork and exec). What a child
/// inherits must not depend on which way it was started.
fn two_reporters_config(sandbox: &Sandbox) -> String {
    let reporter =
        |name: &str| fixture_cmd(&["report", &sandbox.file_str(name), "sleep", "forever"]);
    format!(
        "    web:\n      cmd: {}\n      starttime: 0\n    masked:\n      cmd: {}\n      starttime: 0\n      umask: 027\n",
        reporter("web.report"),
        reporter("masked.report"),
    )
}

/// The reports of [`two_reporters_config`]'s programs, once both are written.
fn reports(sandbox: &Sandbox) -> [HashMap<String, String>; 2] {
    ["web.report", "masked.report"].map(|name| {
        sandbox.wait_for_file(name, TIMEOUT);
        read_report(&sandbox.file(name))
    })
}

/// A `cmd:` value running `sh -c SCRIPT`, ready to follow `cmd: ` in YAML.
fn sh_cmd(script: &str) -> String {
    yaml_quote(&format!("sh -c {}", shell_quote(script)))
}

/// The fixture's path, quoted for a shell script.
fn fixture_in_sh() -> String {
    shell_quote(fixture_bin().to_str().expect("fixture path is UTF-8"))
}

/// The lines of the event log that contain `needle`.
fn log_lines(tm: &Taskmaster, needle: &str) -> Vec<String> {
    tm.log()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The pid in the last `NAME: spawned with pid N` line of the event log.
fn last_spawned_pid(tm: &Taskmaster, name: &str) -> Option<u32> {
    let needle = format!("{name}: spawned with pid ");
    log_lines(tm, &needle)
        .last()
        .and_then(|line| line.split(&needle).nth(1)?.trim().parse().ok())
}

/// Waits until `status NAME` is RUNNING with a pid other than `old`, and returns that pid.
fn wait_for_new_running_pid(tm: &mut Taskmaster, name: &str, old: u32) -> u32 {
    wait_until(
        &format!("{name} RUNNING with a pid other than {old}"),
        TIMEOUT,
        || {
            let status = tm.status(name);
            (status.state == "RUNNING")
                .then(|| status.pid())
                .flatten()
                .filter(|&pid| pid != old)
        },
    )
}

/// The children of `parent` that are zombies, from a scan of `/proc/*/stat`.
fn zombie_children(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|stat| stat.ppid == parent && stat.state == 'Z'))
        .collect()
}

/// A field of `/proc/PID/status` (`SigIgn:`, `SigBlk:`...), trimmed.
fn proc_status_field(pid: u32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. States and the commands that move them
// ---------------------------------------------------------------------------------------------

#[test]
fn a_process_is_starting_until_its_starttime_then_running() {
    let sandbox = Sandbox::new();
    let starttime = Duration::from_secs(2);
    let launched = Instant::now();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    slow:\n      cmd: {}\n      starttime: 2\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );

    let first = tm.status("slow");
    // It was spawned after `launched`: if less than its starttime has passed since, it cannot
    // be RUNNING yet, whatever the machine's speed.
    if launched.elapsed() < starttime {
        assert_eq!(first.state, "STARTING", "{first:?}");
    } else {
        eprintln!("the first status came late ({first:?}); STARTING not checked");
    }

    let running = tm.wait_for_state("slow", "RUNNING", TIMEOUT);
    assert!(
        launched.elapsed() >= starttime,
        "RUNNING after {:?}, before its starttime of {starttime:?}",
        launched.elapsed()
    );
    let pid = running.pid().expect("a RUNNING process shows its pid");
    assert!(is_alive(pid));
    assert_eq!(last_spawned_pid(&tm, "slow"), Some(pid));
    tm.wait_for_log("slow: RUNNING: up for", TIMEOUT);
}

#[test]
fn stop_leaves_the_process_stopped_and_dead() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let running = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let pid = running.pid().expect("a RUNNING process shows its pid");

    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    wait_dead(pid, TIMEOUT);
    let stopped = tm.status("web");
    assert_eq!(stopped.state, "STOPPED", "{stopped:?}");
    assert_eq!(tm.pid("web"), None);
    tm.wait_for_log("web: stopped (killed by SIGTERM)", TIMEOUT);
}

#[test]
fn start_answers_started_only_once_the_process_is_running() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    slow:\n      cmd: {}\n      autostart: false\n      starttime: 1\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    assert_eq!(tm.status("slow").state, "STOPPED");

    let asked = Instant::now();
    assert_eq!(tm.command("start slow", 1), ["slow: started"]);
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "`start` answered after {waited:?}, before the starttime of 1s"
    );
    let status = tm.status("slow");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    assert!(is_alive(
        status.pid().expect("a RUNNING process shows its pid")
    ));
}

#[test]
fn restart_prints_stopped_then_started_with_a_new_pid() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let old = tm.wait_for_state("web", "RUNNING", TIMEOUT).pid().unwrap();

    assert_eq!(
        tm.command("restart web", 2),
        ["web: stopped", "web: started"]
    );
    let new = tm.status("web");
    assert_eq!(new.state, "RUNNING", "{new:?}");
    let new = new.pid().expect("a RUNNING process shows its pid");
    assert_ne!(new, old);
    assert!(is_alive(new));
    wait_dead(old, TIMEOUT);
}

#[test]
fn start_of_a_running_process_is_already_started() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let pid = tm.wait_for_state("web", "RUNNING", TIMEOUT).pid().unwrap();

    assert_eq!(tm.command("start web", 1), ["web: ERROR (already started)"]);
    assert_eq!(
        tm.pid("web"),
        Some(pid),
        "the running process was left alone"
    );
}

#[test]
fn stop_of_a_stopped_process_is_not_running() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    idle:\n      cmd: {}\n      autostart: false\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    assert_eq!(tm.command("stop idle", 1), ["idle: ERROR (not running)"]);
    assert_eq!(tm.status("idle").state, "STOPPED");
}

#[test]
fn unknown_names_are_no_such_process_for_every_command() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let pid = tm.wait_for_state("web", "RUNNING", TIMEOUT).pid().unwrap();

    for command in [
        "start nope",
        "stop nope",
        "restart nope",
        "status nope",
        "signal HUP nope",
        "pid nope",
    ] {
        assert_eq!(
            tm.command_all(command),
            ["nope: ERROR (no such process)"],
            "{command}"
        );
    }
    assert_eq!(tm.pid("web"), Some(pid), "no command touched web");
}

#[test]
fn group_commands_reach_every_process_of_the_group() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    workers:\n      cmd: {sleeper}\n      numprocs: 3\n      autostart: false\n      starttime: 0\n    solo:\n      cmd: {sleeper}\n      starttime: 0\n",
            sleeper = fixture_cmd(&["sleep", "forever"])
        ),
    );
    let names = [
        "workers:workers_00",
        "workers:workers_01",
        "workers:workers_02",
    ];
    let solo = tm.wait_for_state("solo", "RUNNING", TIMEOUT).pid().unwrap();

    let mut started = tm.command_all("start workers:*");
    started.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("{n}: started")).collect();
    assert_eq!(started, expected);

    let statuses = tm.command_all("status workers:*");
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    let mut pids = Vec::new();
    for name in names {
        let status = tm.status(name);
        assert_eq!(status.state, "RUNNING", "{status:?}");
        let pid = status.pid().expect("a RUNNING process shows its pid");
        assert!(is_alive(pid));
        assert!(
            statuses
                .iter()
                .any(|line| line.starts_with(name) && line.contains(&format!("pid {pid},"))),
            "`status workers:*` shows {name} with pid {pid}: {statuses:?}"
        );
        pids.push(pid);
    }

    let stopped = tm.command_all("stop all");
    for name in names.iter().chain(&["solo"]) {
        assert!(
            stopped.contains(&format!("{name}: stopped")),
            "`stop all` stopped {name}: {stopped:?}"
        );
    }
    for pid in pids.into_iter().chain([solo]) {
        wait_dead(pid, TIMEOUT);
    }
    for status in tm.status_all() {
        assert_eq!(status.state, "STOPPED", "{status:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2-3. Exits seen as they happen: kill -9 from outside, crashes
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_9_from_outside_is_seen_and_an_unexpected_exit_restarts() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    resilient:\n      cmd: {}\n      autorestart: unexpected\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let old = tm
        .wait_for_state("resilient", "RUNNING", TIMEOUT)
        .pid()
        .unwrap();

    let killed_at = Instant::now();
    send_signal(old, Signal::KILL).expect("kill -9 the child");
    tm.wait_for_log("resilient: killed by SIGKILL (not expected)", TIMEOUT);
    eprintln!(
        "the exit was in the event log {:?} after the kill (polled every 20ms)",
        killed_at.elapsed()
    );
    tm.wait_for_log("resilient: restarting: the exit was not expected", TIMEOUT);

    let new = wait_for_new_running_pid(&mut tm, "resilient", old);
    assert!(is_alive(new));
    assert_eq!(last_spawned_pid(&tm, "resilient"), Some(new));
}

#[test]
fn kill_9_from_outside_of_a_never_restarted_process_leaves_it_exited() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    fragile:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let pid = tm
        .wait_for_state("fragile", "RUNNING", TIMEOUT)
        .pid()
        .unwrap();

    let killed_at = Instant::now();
    send_signal(pid, Signal::KILL).expect("kill -9 the child");
    tm.wait_for_log("fragile: killed by SIGKILL (not expected)", TIMEOUT);
    eprintln!(
        "the exit was in the event log {:?} after the kill (polled every 20ms)",
        killed_at.elapsed()
    );
    let status = tm.wait_for_state("fragile", "EXITED", TIMEOUT);
    assert_eq!(status.pid(), None, "{status:?}");
    assert_eq!(tm.pid("fragile"), None);
    // Nothing spawned it again: a `start` now is the second spawn, not the third.
    assert_eq!(tm.command("start fragile", 1), ["fragile: started"]);
    assert_eq!(log_lines(&tm, "fragile: spawned with pid").len(), 2);
}

#[test]
fn a_segfault_is_logged_as_a_crash() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            // In the sandbox, so that a core file, if the core limit allows one, goes there.
            "    crasher:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n      workingdir: {}\n",
            fixture_cmd(&["raise", "SEGV"]),
            yaml_quote(&sandbox.file_str("")),
        ),
    );
    // A crash, not "exit status 139" nor a mere "killed".
    let line = tm.wait_for_log("crasher: crashed: SIGSEGV", TIMEOUT);
    eprintln!("core dumped: {}", line.contains("(core dumped)"));
    tm.wait_for_state("crasher", "EXITED", TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// 4. Spawn errors
// ---------------------------------------------------------------------------------------------

/// Runs `broken` (its settings in `broken_settings`, six-space indented lines) beside a healthy
/// program, and checks that it ends FATAL after one retry with `reason` in its status and the
/// log, that taskmaster answered commands and kept the healthy program all along, and that a
/// `start` of it is a spawn error.
fn check_spawn_error(sandbox: &Sandbox, broken_settings: &str, reason: &str) {
    let steady_pid = sandbox.file_str("steady.pid");
    let mut tm = launch(
        sandbox,
        &format!(
            "    steady:\n      cmd: {}\n      starttime: 0\n    broken:\n{broken_settings}      startretries: 1\n      starttime: 0\n",
            fixture_cmd(&["pidfile", &steady_pid, "sleep", "forever"]),
        ),
    );
    let steady = sandbox.wait_for_pidfile("steady.pid", TIMEOUT);
    tm.track(steady);

    // The first attempt failed at start-up: broken is backing off, or already gave up.
    let early = tm.status("broken");
    assert!(
        ["BACKOFF", "FATAL"].contains(&early.state.as_str()),
        "{early:?}"
    );
    assert_eq!(early.description, reason, "{early:?}");
    let status = tm.status("steady");
    assert_eq!(
        (status.state.as_str(), status.pid()),
        ("RUNNING", Some(steady))
    );

    let fatal = tm.wait_for_state("broken", "FATAL", TIMEOUT);
    assert_eq!(fatal.description, reason);
    tm.wait_for_log("broken: gave up: FATAL", TIMEOUT);
    // One attempt and one retry, each with its reason.
    let errors = log_lines(&tm, &format!("broken: spawn error: {reason}"));
    assert_eq!(errors.len(), 2, "{errors:?}");

    assert_eq!(
        tm.command("start broken", 1),
        ["broken: ERROR (spawn error)"]
    );
    let status = tm.status("steady");
    assert_eq!(
        (status.state.as_str(), status.pid()),
        ("RUNNING", Some(steady))
    );
    assert_eq!(tm.status_all().len(), 2);
}

#[test]
fn a_missing_program_ends_fatal_with_no_such_file() {
    let sandbox = Sandbox::new();
    check_spawn_error(
        &sandbox,
        "      cmd: /nonexistent/prog\n",
        "cannot execute /nonexistent/prog: No such file or directory",
    );
}

#[test]
fn a_file_without_execute_permission_ends_fatal_with_permission_denied() {
    let sandbox = Sandbox::new();
    let script = sandbox.file("not-executable");
    fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    let script = sandbox.file_str("not-executable");
    check_spawn_error(
        &sandbox,
        &format!("      cmd: {}\n", yaml_quote(&script)),
        &format!("cannot execute {script}: Permission denied"),
    );
}

#[test]
fn a_missing_workingdir_ends_fatal_naming_the_folder() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("no-such-folder");
    check_spawn_error(
        &sandbox,
        &format!(
            "      cmd: {}\n      workingdir: {}\n",
            fixture_cmd(&["sleep", "forever"]),
            yaml_quote(&missing)
        ),
        &format!("workingdir {missing}: No such file or directory"),
    );
}

#[test]
fn a_stdout_file_in_a_missing_folder_is_a_spawn_error_naming_the_file() {
    let sandbox = Sandbox::new();
    let stdout = sandbox.file_str("no-such-folder/out.log");
    check_spawn_error(
        &sandbox,
        &format!(
            "      cmd: {}\n      stdout: {}\n",
            fixture_cmd(&["sleep", "forever"]),
            yaml_quote(&stdout)
        ),
        &format!("cannot open stdout file {stdout}: No such file or directory"),
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Process groups
// ---------------------------------------------------------------------------------------------

#[test]
fn every_child_leads_its_own_process_group() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["report", &report, "sleep", "forever"])
        ),
    );
    sandbox.wait_for_file("report", TIMEOUT);
    let report = read_report(&sandbox.file("report"));
    let pid = tm.pid("web").expect("web is running");

    assert_eq!(report["pid"], pid.to_string());
    assert_eq!(report["pgid"], report["pid"], "{report:?}");
    let daemon_pgid = proc_stat(tm.daemon_pid())
        .expect("taskmaster is alive")
        .pgid;
    assert_ne!(report["pgid"], daemon_pgid.to_string());
    assert_eq!(report["ppid"], tm.daemon_pid().to_string());
}

/// Starts `web` with `cmd`, which leaves a grandchild whose pid is in `grandchild.pid`; stops
/// web and checks the grandchild died with it.
fn check_stop_kills_grandchild(sandbox: &Sandbox, cmd: &str) {
    let mut tm = launch(
        sandbox,
        &format!("    web:\n      cmd: {cmd}\n      starttime: 0\n      stoptime: 10\n"),
    );
    let grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(grandchild);
    let leader = tm.pid("web").expect("web is running");
    assert_eq!(
        proc_stat(grandchild).map(|stat| stat.pgid),
        Some(leader),
        "the grandchild is in web's process group"
    );

    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    wait_dead(leader, TIMEOUT);
    wait_dead(grandchild, TIMEOUT);
}

#[test]
fn stop_kills_the_grandchild_of_a_sh_wrapper() {
    let sandbox = Sandbox::new();
    let pidfile = shell_quote(&sandbox.file_str("grandchild.pid"));
    // `; true` keeps sh from exec'ing the fixture: three generations.
    let script = format!(
        "{} grandchild {pidfile} sleep forever; true",
        fixture_in_sh()
    );
    check_stop_kills_grandchild(&sandbox, &sh_cmd(&script));
}

#[test]
fn stop_kills_a_grandchild_the_process_forked() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("grandchild.pid");
    check_stop_kills_grandchild(
        &sandbox,
        &fixture_cmd(&["grandchild", &pidfile, "sleep", "forever"]),
    );
}

#[test]
fn a_grandchild_ignoring_term_is_killed_once_the_leader_has_stopped() {
    let sandbox = Sandbox::new();
    let (gc_pidfile, leader_pidfile) = (
        shell_quote(&sandbox.file_str("grandchild.pid")),
        shell_quote(&sandbox.file_str("leader.pid")),
    );
    let fixture = fixture_in_sh();
    let script = format!(
        "{fixture} ignore TERM pidfile {gc_pidfile} sleep forever & \
         exec {fixture} pidfile {leader_pidfile} sleep forever"
    );
    // A long stoptime: the grandchild must go as soon as the leader has, not when it expires.
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n      stoptime: 30\n",
            sh_cmd(&script)
        ),
    );
    let grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(grandchild);
    let leader = sandbox.wait_for_pidfile("leader.pid", TIMEOUT);
    assert_eq!(tm.pid("web"), Some(leader));
    assert_eq!(proc_stat(grandchild).map(|stat| stat.pgid), Some(leader));
    let ignored = signals_in_mask(&proc_status_field(grandchild, "SigIgn:"));
    assert!(
        ignored.contains(&Signal::TERM.as_raw()),
        "the grandchild ignores SIGTERM: {ignored:?}"
    );

    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    tm.wait_for_log("web: stopped (killed by SIGTERM)", TIMEOUT);
    wait_dead(grandchild, TIMEOUT);
    assert!(
        log_lines(&tm, "sending SIGKILL").is_empty(),
        "the leader stopped on TERM; the stoptime never ran out"
    );
}

/// Once web's process has left a grandchild in its process group (its pid in
/// `grandchild.pid`), SIGKILLs web's process from outside, as a crash would end it. Returns
/// the pids of both.
fn kill_a_leader_that_leaves_a_grandchild(sandbox: &Sandbox, tm: &mut Taskmaster) -> (u32, u32) {
    let grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(grandchild);
    // Gone, so that a restarted web's grandchild can be told apart.
    fs::remove_file(sandbox.file("grandchild.pid")).expect("remove grandchild.pid");
    let leader = tm.pid("web").expect("web is running");
    assert_eq!(proc_stat(grandchild).map(|stat| stat.pgid), Some(leader));
    send_signal(leader, Signal::KILL).expect("SIGKILL web");
    (leader, grandchild)
}

/// Polls `status web` until `done` says so, checking at every look that web is never shown at
/// rest (not RUNNING, STARTING or STOPPING) while `grandchild` still runs.
fn watch_status_until(
    tm: &mut Taskmaster,
    grandchild: u32,
    mut done: impl FnMut(&StatusLine) -> bool,
) -> StatusLine {
    wait_until("web to settle", TIMEOUT, || {
        let alive_before = is_alive(grandchild);
        let status = tm.status("web");
        let at_rest = !matches!(status.state.as_str(), "RUNNING" | "STARTING" | "STOPPING");
        if at_rest && alive_before && is_alive(grandchild) {
            panic!("web shown {status:?} while its grandchild {grandchild} still runs");
        }
        done(&status).then_some(status)
    })
}

#[test]
fn a_killed_leader_takes_what_is_left_of_its_group_with_it() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("grandchild.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n      autorestart: never\n",
            fixture_cmd(&["grandchild", &pidfile, "sleep", "forever"])
        ),
    );
    let (_, grandchild) = kill_a_leader_that_leaves_a_grandchild(&sandbox, &mut tm);
    watch_status_until(&mut tm, grandchild, |status| status.state == "EXITED");
    assert!(!is_alive(grandchild), "the grandchild outlived the stop");
    let log = tm.log();
    assert!(
        log.contains("web: killed by SIGKILL; what is left of its process group is stopped first"),
        "{log}"
    );
}

#[test]
fn a_restart_waits_until_a_group_that_ignores_the_stop_signal_is_killed() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("grandchild.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n      autorestart: always\n      stoptime: 1\n",
            fixture_cmd(&["ignore", "TERM", "grandchild", &pidfile, "sleep", "forever"])
        ),
    );
    let (leader, grandchild) = kill_a_leader_that_leaves_a_grandchild(&sandbox, &mut tm);
    let restarted = watch_status_until(&mut tm, grandchild, |status| {
        status.state == "RUNNING" && status.pid().is_some_and(|pid| pid != leader)
    });
    assert!(
        !is_alive(grandchild),
        "restarted ({restarted:?}) while the old grandchild runs"
    );
    let log = tm.log();
    assert!(
        log.contains("web: still running 1s after TERM: sending SIGKILL"),
        "{log}"
    );
    // The new grandchild is the new process's, and is left to it.
    let new_grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(new_grandchild);
    assert!(is_alive(new_grandchild));
}

#[test]
fn with_killgroup_false_what_is_left_of_the_group_is_left_running() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("grandchild.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n      autorestart: never\n      killgroup: false\n",
            fixture_cmd(&["grandchild", &pidfile, "sleep", "forever"])
        ),
    );
    let (_, grandchild) = kill_a_leader_that_leaves_a_grandchild(&sandbox, &mut tm);
    tm.wait_for_state("web", "EXITED", TIMEOUT);
    assert!(is_alive(grandchild), "the grandchild was stopped");
}

// ---------------------------------------------------------------------------------------------
// 6. No zombies
// ---------------------------------------------------------------------------------------------

#[test]
fn an_orphaned_grandchild_is_adopted_and_reaped_by_taskmaster() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("grandchild.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    orphaner:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n      killgroup: false\n",
            fixture_cmd(&["grandchild", &pidfile, "exit", "0"])
        ),
    );
    let grandchild = sandbox.wait_for_pidfile("grandchild.pid", TIMEOUT);
    tm.track(grandchild);
    tm.wait_for_log("orphaner: exited with code 0 (expected)", TIMEOUT);

    let daemon = tm.daemon_pid();
    wait_until(
        &format!("grandchild {grandchild} to be adopted by taskmaster {daemon}"),
        TIMEOUT,
        || {
            proc_stat(grandchild)
                .is_some_and(|stat| stat.ppid == daemon)
                .then_some(())
        },
    );

    send_signal(grandchild, Signal::KILL).expect("kill the grandchild");
    let proc_dir = format!("/proc/{grandchild}");
    wait_until(
        &format!("{proc_dir} to disappear (reaped, not a zombie)"),
        TIMEOUT,
        || (!Path::new(&proc_dir).exists()).then_some(()),
    );
    // The daemon is still serving after reaping a process that was none of its own.
    assert_eq!(tm.status("orphaner").state, "EXITED");
}

#[test]
fn many_restarts_leave_no_zombie_children() {
    let sandbox = Sandbox::new();
    let stamps = sandbox.file_str("stamps");
    // Restarted at once every time (`backoff: off`), for many restarts quickly.
    let mut tm = launch(
        &sandbox,
        &format!(
            "    flap:\n      cmd: {}\n      autorestart: always\n      starttime: 0\n      \
             backoff: off\n      autostart: false\n",
            fixture_cmd(&["stamp", &stamps, "exit", "0"])
        ),
    );
    // The event log holds repeats back; the event stream has every line.
    let api = unix_http::Api::connect(sandbox.file("taskmaster.sock"));
    let mut events = unix_http::Events::subscribe(&api);
    assert_eq!(tm.command("start flap", 1), ["flap: started"]);
    let daemon = tm.daemon_pid();
    let mut most_zombies = 0;
    sandbox.wait_for_contents(
        "stamps",
        |text| {
            most_zombies = most_zombies.max(zombie_children(daemon).len());
            text.lines().count() >= 50
        },
        TIMEOUT,
    );
    eprintln!("at most {most_zombies} zombie child(ren) seen at once during the restarts");

    assert_eq!(tm.command("stop flap", 1), ["flap: stopped"]);
    let restarting = |events: &[(String, serde_json::Value)]| {
        events
            .iter()
            .filter(|(kind, data)| {
                kind == "log"
                    && data["process"] == "flap"
                    && data["message"] == "restarting: autorestart is always"
            })
            .count()
    };
    events.wait_for("49 restarts", |events| restarting(events) >= 49);
    wait_until("no zombie child of taskmaster", TIMEOUT, || {
        zombie_children(daemon).is_empty().then_some(())
    });
    assert_eq!(
        descendants(daemon),
        Vec::<u32>::new(),
        "nothing left running"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. What a child inherits
// ---------------------------------------------------------------------------------------------

#[test]
fn a_child_gets_only_descriptors_0_1_2_even_when_taskmaster_inherited_more() {
    let sandbox = Sandbox::new();
    write_programs(&sandbox, &two_reporters_config(&sandbox));
    fs::write(sandbox.file("inherited"), "").expect("create the file to inherit");
    // Opened close-on-exec (std's default) so that no other test's child gets it; only the
    // taskmaster spawned here has the flag cleared, in its pre-exec step.
    let extra = fs::File::open(sandbox.file("inherited")).expect("open the file to inherit");
    let extra_fd = extra.as_raw_fd();
    let mut cmd = sandbox.taskmaster_command(&[]);
    // SAFETY: the closure runs in the child between fork and exec and makes one fcntl system
    // call on a descriptor that `extra`, alive until after the spawn, keeps open.
    unsafe {
        cmd.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(extra_fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    drop(extra);

    // Whether taskmaster keeps the descriptor (close-on-exec) or closes it is its own affair.
    match fs::read_link(format!("/proc/{}/fd/{extra_fd}", tm.daemon_pid())) {
        Ok(target) => eprintln!("taskmaster's fd {extra_fd} is {}", target.display()),
        Err(e) => eprintln!("taskmaster's fd {extra_fd}: {e}"),
    }

    for report in reports(&sandbox) {
        assert_eq!(report["fds"], "0,1,2", "{report:?}");
    }
    assert!(tm.pid("web").is_some());
}

#[test]
fn a_child_starts_with_default_dispositions_and_an_empty_mask() {
    let sandbox = Sandbox::new();
    write_programs(&sandbox, &two_reporters_config(&sandbox));
    let mut cmd = sandbox.taskmaster_command(&[]);
    // taskmaster starts with signals it does not handle itself ignored and blocked, as under
    // `nohup` or a careless parent; exec keeps both.
    // SAFETY: the closure runs in the child between fork and exec and only makes signal(2) and
    // sigprocmask(2) calls on a sigset_t on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGPIPE, libc::SIGQUIT] {
                libc::signal(signal, libc::SIG_IGN);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGUSR2, libc::SIGWINCH, libc::SIGALRM] {
                libc::sigaddset(&mut set, signal);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut tm = Taskmaster::spawn(&sandbox, cmd);

    // For information: taskmaster may well reset its own mask and dispositions at start.
    let daemon = tm.daemon_pid();
    eprintln!(
        "taskmaster ignores {:?} and blocks {:?}",
        signals_in_mask(&proc_status_field(daemon, "SigIgn:")),
        signals_in_mask(&proc_status_field(daemon, "SigBlk:")),
    );

    for report in reports(&sandbox) {
        assert_eq!(
            signals_in_mask(&report["sigblk"]),
            Vec::<i32>::new(),
            "{report:?}"
        );
        // glibc's internal signals (32, 33) have a test of their own.
        let ignored: Vec<i32> = signals_in_mask(&report["sigign"])
            .into_iter()
            .filter(|&n| n < 32)
            .collect();
        assert_eq!(ignored, Vec::<i32>::new(), "{report:?}");
    }
    assert!(tm.pid("web").is_some());
}

/// A taskmaster started by std's `Command` from a multi-threaded program (cargo, this test)
/// inherits glibc's internal signal 32 (and maybe 33) ignored, from glibc's posix_spawn or
/// from its parent. glibc's signal() refuses to touch them, so only a raw rt_sigaction can
/// give the child their default disposition back.
#[test]
fn a_child_does_not_inherit_glibcs_internal_signals_ignored() {
    let sandbox = Sandbox::new();
    let mut tm = launch(&sandbox, &two_reporters_config(&sandbox));
    eprintln!(
        "taskmaster ignores {:?}",
        signals_in_mask(&proc_status_field(tm.daemon_pid(), "SigIgn:"))
    );
    for report in reports(&sandbox) {
        assert_eq!(
            signals_in_mask(&report["sigign"]),
            Vec::<i32>::new(),
            "{report:?}"
        );
    }
    assert!(tm.pid("web").is_some());
}

/// A parent may start taskmaster with signals blocked (a blocked mask survives exec). The
/// signals taskmaster lives by must still reach it: SIGCHLD (exits) and SIGTERM (shutdown).
#[test]
fn taskmaster_started_with_its_signals_blocked_still_sees_exits_and_sigterm() {
    let sandbox = Sandbox::new();
    write_programs(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let mut cmd = sandbox.taskmaster_command(&["--no-shell"]);
    // SAFETY: the closure runs in the child between fork and exec and only makes a
    // sigprocmask(2) call on a sigset_t on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    let line = tm.wait_for_log("web: spawned with pid", TIMEOUT);
    let pid = last_spawned_pid(&tm, "web").unwrap_or_else(|| panic!("no pid in {line:?}"));
    tm.track(pid);

    send_signal(pid, Signal::KILL).expect("kill -9 the child");
    tm.wait_for_log("web: killed by SIGKILL (not expected)", TIMEOUT);
    tm.signal(Signal::TERM);
    assert_eq!(tm.wait_exit(TIMEOUT).code(), Some(0));
}

#[test]
fn a_childs_stdin_is_dev_null() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("reader.pid");
    // taskmaster's own stdin is the test's pipe, held open: a child sharing it would wait on it
    // forever instead of reading end of file.
    let mut tm = launch(
        &sandbox,
        &format!(
            "    echo:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n    reader:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["stdin-echo"]),
            fixture_cmd(&["stdin-echo", "pidfile", &pidfile, "sleep", "forever"]),
        ),
    );
    tm.wait_for_log("echo: exited with code 0 (expected)", TIMEOUT);

    let reader = sandbox.wait_for_pidfile("reader.pid", TIMEOUT);
    tm.track(reader);
    let stdin = fs::read_link(format!("/proc/{reader}/fd/0")).expect("readlink the child's fd 0");
    assert_eq!(stdin, Path::new("/dev/null"));
}

// ---------------------------------------------------------------------------------------------
// 8. Output never stalls the supervisor
// ---------------------------------------------------------------------------------------------

const SPEW_BYTES: u64 = 300 << 20;

/// Runs `spewer` writing 300 MiB to stdout (its stdout setting in `stdout_setting`) while
/// another program is started and stopped and `status` answers; returns once it exited 0.
/// `out` is its stdout file, if any, to tell (for information) how much was written by the
/// time the commands were done.
fn check_commands_answered_while_spewing(
    sandbox: &Sandbox,
    stdout_setting: &str,
    out: Option<&str>,
) {
    let mut tm = launch(
        sandbox,
        &format!(
            "    spewer:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n{stdout_setting}    other:\n      cmd: {}\n      autostart: false\n      starttime: 0\n",
            fixture_cmd(&["spew", "300M"]),
            fixture_cmd(&["sleep", "forever"]),
        ),
    );
    let began = Instant::now();
    assert_eq!(tm.command("start other", 1), ["other: started"]);
    let other = tm.pid("other").expect("other is running");
    let all = tm.command_all("status");
    assert!(
        all.iter().any(|line| line.starts_with("spewer ")),
        "{all:?}"
    );
    assert!(all.iter().any(|line| line.starts_with("other ")), "{all:?}");
    assert_eq!(tm.command("stop other", 1), ["other: stopped"]);
    wait_dead(other, TIMEOUT);
    let commands_took = began.elapsed();
    let written = out.map(|out| fs::metadata(out).map_or(0, |m| m.len()));

    tm.wait_for_log("spewer: exited with code 0 (expected)", TIMEOUT);
    eprintln!(
        "the commands took {commands_took:?} (stdout file then: {written:?} bytes); \
         the spewer's exit was logged {:?} after they began",
        began.elapsed()
    );
}

#[test]
fn spewing_300_mib_to_a_file_does_not_stall_the_supervisor() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("spew.out");
    check_commands_answered_while_spewing(
        &sandbox,
        // No rotation, so that the whole output is in one file to measure.
        &format!(
            "      stdout: {}\n      stdout_maxbytes: 0\n",
            yaml_quote(&out)
        ),
        Some(&out),
    );
    let size = fs::metadata(&out).expect("the stdout file exists").len();
    assert_eq!(size, SPEW_BYTES);
}

#[test]
fn spewing_300_mib_to_discarded_stdout_does_not_stall_the_supervisor() {
    let sandbox = Sandbox::new();
    // Exit 0 means every one of the 300 MiB was written (the fixture exits 101 on a failed
    // write).
    check_commands_answered_while_spewing(&sandbox, "      stdout: null\n", None);
}

// ---------------------------------------------------------------------------------------------
// 9. Daemon modes
// ---------------------------------------------------------------------------------------------

/// `--no-shell`, two programs with different stopsignals that exit 0 on their own signal; the
/// daemon gets `signal` and must stop both gracefully and exit 0.
fn check_no_shell_stops_gracefully_on(signal: Signal, name: &str) {
    let sandbox = Sandbox::new();
    let (term_pid, usr1_pid) = (sandbox.file_str("term.pid"), sandbox.file_str("usr1.pid"));
    write_programs(
        &sandbox,
        &format!(
            "    term:\n      cmd: {}\n      starttime: 0\n      stoptime: 30\n    usr1:\n      cmd: {}\n      stopsignal: USR1\n      starttime: 0\n      stoptime: 30\n",
            fixture_cmd(&["on", "TERM", "exit", "0", "pidfile", &term_pid, "sleep", "forever"]),
            fixture_cmd(&["on", "USR1", "exit", "0", "pidfile", &usr1_pid, "sleep", "forever"]),
        ),
    );
    let mut tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let term = sandbox.wait_for_pidfile("term.pid", TIMEOUT);
    let usr1 = sandbox.wait_for_pidfile("usr1.pid", TIMEOUT);
    tm.track(term);
    tm.track(usr1);

    tm.signal(signal);
    let status = tm.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!is_alive(term) && !is_alive(usr1));
    let log = tm.log();
    // Exit code 0 is the fixture's answer to its own stopsignal: neither was SIGKILLed.
    assert!(log.contains("term: stopped (exited with code 0)"), "{log}");
    assert!(log.contains("usr1: stopped (exited with code 0)"), "{log}");
    assert!(
        log.contains(&format!("{name} received: shutting down")),
        "{log}"
    );
    let last = log.lines().last().unwrap_or("");
    assert!(last.contains("taskmaster exits"), "last line: {last}");
}

#[test]
fn no_shell_sigterm_stops_every_child_with_its_stopsignal_and_exits_0() {
    check_no_shell_stops_gracefully_on(Signal::TERM, "SIGTERM");
}

#[test]
fn no_shell_sigint_stops_every_child_with_its_stopsignal_and_exits_0() {
    check_no_shell_stops_gracefully_on(Signal::INT, "SIGINT");
}

#[test]
fn verbose_copies_the_event_log_to_stderr() {
    let sandbox = Sandbox::new();
    write_programs(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    // stdin is /dev/null: the shell reads end of file at once and shuts down, after the
    // autostart spawned web.
    let output = run_to_completion(sandbox.taskmaster_command(&["-v"]), TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    assert!(stderr.contains("web: spawned with pid "), "{stderr}");
    assert!(stderr.contains("taskmaster exits"), "{stderr}");
}

#[test]
fn end_of_stdin_stops_everything_and_exits_0() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("web.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"])
        ),
    );
    let web = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    tm.track(web);

    tm.close_stdin();
    let status = tm.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!is_alive(web));
    tm.wait_for_log("web: stopped (killed by SIGTERM)", TIMEOUT);
    tm.wait_for_log("taskmaster exits", TIMEOUT);
}

// ---------------------------------------------------------------------------------------------
// 10. signal and pid
// ---------------------------------------------------------------------------------------------

#[test]
fn signal_delivers_the_signal_to_the_process() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("sig.pid");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    sig:\n      cmd: {}\n      autorestart: never\n      starttime: 0\n",
            fixture_cmd(&["on", "USR2", "exit", "7", "pidfile", &pidfile, "sleep", "forever"])
        ),
    );
    // The pid file is written once the handler is in place.
    let pid = sandbox.wait_for_pidfile("sig.pid", TIMEOUT);
    tm.track(pid);

    assert_eq!(tm.command("signal USR2 sig", 1), ["sig: signalled"]);
    tm.wait_for_log("sig: exited with code 7 (not expected)", TIMEOUT);
    wait_dead(pid, TIMEOUT);
    tm.wait_for_state("sig", "EXITED", TIMEOUT);
}

#[test]
fn signal_with_an_unknown_name_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let pid = tm.wait_for_state("web", "RUNNING", TIMEOUT).pid().unwrap();

    let answer = tm.command_all("signal TERMM web");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert!(
        answer[0].starts_with("error: ") && answer[0].contains("unknown signal \"TERMM\""),
        "{answer:?}"
    );
    assert_eq!(tm.pid("web"), Some(pid), "web was not signalled");
}

#[test]
fn pid_without_a_name_is_the_daemons_pid() {
    let sandbox = Sandbox::new();
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      autostart: false\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    assert_eq!(tm.command("pid", 1), [tm.daemon_pid().to_string()]);
}

#[test]
fn pid_of_a_process_is_its_real_pid() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let mut tm = launch(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      starttime: 0\n    idle:\n      cmd: {}\n      autostart: false\n",
            fixture_cmd(&["report", &report, "sleep", "forever"]),
            fixture_cmd(&["sleep", "forever"]),
        ),
    );
    sandbox.wait_for_file("report", TIMEOUT);
    let report = read_report(&sandbox.file("report"));

    let pid = tm.pid("web").expect("web is running");
    assert_eq!(report["pid"], pid.to_string());
    assert_eq!(tm.status("web").pid(), Some(pid));
    assert_eq!(
        tm.pid("idle"),
        None,
        "a process that is not running has pid 0"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. taskmaster check, and run on a bad file
// ---------------------------------------------------------------------------------------------

#[test]
fn check_accepts_a_valid_file() {
    let sandbox = Sandbox::new();
    write_programs(
        &sandbox,
        &format!(
            "    web:\n      cmd: {}\n      numprocs: 2\n      stopsignal: USR1\n",
            fixture_cmd(&["sleep", "forever"])
        ),
    );
    let output = sandbox.check_config();
    assert!(
        output.status.success(),
        "{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A configuration with three errors, on lines 4, 5 and 7 (1-based).
const THREE_ERRORS: &str = "\
programs:
  web:
    cmd: \"sleep 1\"
    stoptimee: 3
    stopsignal: TERMM
    autorestart: never
    numprocs: 0
";

#[test]
fn check_prints_every_error_with_its_place_and_exits_2() {
    let sandbox = Sandbox::new();
    let config = sandbox.config_path();
    fs::write(&config, THREE_ERRORS).expect("write the configuration");

    let output = sandbox.check_config();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let file = config.display().to_string();
    // Each at the key that is unknown, or at the value that is wrong.
    for place in [
        "4:5: programs.web: unknown key \"stoptimee\"",
        "5:17: programs.web.stopsignal: unknown signal \"TERMM\"",
        "7:15: programs.web.numprocs: ",
    ] {
        let place = format!("{file}:{place}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&place)),
            "no line starting {place:?} in:\n{stderr}"
        );
    }
}

#[test]
fn run_on_an_invalid_file_exits_2_and_starts_nothing() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("web.pid");
    let text = format!(
        "logfile: {}\nprograms:\n  web:\n    cmd: {}\n    starttime: 0\n  bad:\n    cmd: \"sleep 1\"\n    numprocs: 0\n",
        yaml_quote(&sandbox.logfile().display().to_string()),
        fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
    );
    fs::write(sandbox.config_path(), text).expect("write the configuration");

    let output = run_to_completion(sandbox.taskmaster_command(&[]), TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let place = format!(
        "{}:8:15: programs.bad.numprocs: ",
        sandbox.config_path().display()
    );
    assert!(stderr.contains(&place), "no {place:?} in:\n{stderr}");
    // A spawn is logged as it happens, before anything else could end the daemon.
    let log = fs::read_to_string(sandbox.logfile()).unwrap_or_default();
    assert!(!log.contains("spawned"), "{log}");
    assert!(!sandbox.file("web.pid").exists());
}

#[test]
fn check_of_a_missing_file_says_it_cannot_be_read() {
    let sandbox = Sandbox::new();
    // No configuration written.
    let output = sandbox.check_config();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let file = sandbox.config_path().display().to_string();
    assert!(
        stderr.contains(&file) && stderr.contains("No such file or directory"),
        "{stderr}"
    );

    let mut run = Command::new(taskmaster_bin());
    run.arg("run")
        .arg("-c")
        .arg(sandbox.config_path())
        .current_dir(sandbox.path());
    let output = run_to_completion(run, TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&file) && stderr.contains("No such file or directory"),
        "{stderr}"
    );
}

/// taskmaster raises its own open files limit to the hard limit when its programs need more
/// descriptors than the limit allows (each child and capture holds some; a backup that takes
/// over one more per child), and its programs get back the limit it was started with. A
/// configuration that fits changes nothing.
#[test]
fn taskmaster_raises_its_open_files_limit_when_needed_and_its_programs_keep_theirs() {
    use rustix::process::{getrlimit, Resource};
    let Some(hard) = getrlimit(Resource::Nofile).maximum else {
        eprintln!("skipped: RLIMIT_NOFILE's hard limit is unlimited here");
        return;
    };
    let started_with: u64 = 200;
    if hard <= started_with {
        eprintln!("skipped: RLIMIT_NOFILE's hard limit is {hard}, nothing to raise");
        return;
    }
    let sandbox = Sandbox::new();
    // 40 processes need more than 200 descriptors by taskmaster's count; 1 does not.
    for (numprocs, daemon_limit) in [(40, hard), (1, started_with)] {
        let config = sandbox.write_config(&config(&[program(
            "web",
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0", &format!("numprocs: {numprocs}")],
        )]));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("ulimit -S -n {started_with} && exec \"$0\" \"$@\""))
            .arg(taskmaster_bin())
            .args(["run", "-c"])
            .arg(&config)
            .current_dir(sandbox.path())
            .env("HOME", sandbox.path());
        let mut tm = Taskmaster::spawn(&sandbox, cmd);
        let first = if numprocs == 1 { "web" } else { "web:web_00" };
        let web = tm.running_pid(first);
        assert_eq!(
            open_files_limit(tm.daemon_pid()),
            Some(daemon_limit),
            "taskmaster's own, with {numprocs} process(es)"
        );
        assert_eq!(open_files_limit(web), Some(started_with), "web's");
        tm.shutdown();
    }
}

/// Many programs started at once each get their own child: every RUNNING process's child is
/// the one started for it (its `TASKMASTER_PROCESS_NAME`), and the ones that cannot start say
/// why, each its own reason.
#[test]
fn programs_started_together_each_get_their_own_child_or_their_own_error() {
    let sandbox = Sandbox::new();
    let programs: Vec<String> = (0..24)
        .map(|i| {
            let name = format!("p{i:02}");
            if i % 3 == 2 {
                let cmd = format!("/nonexistent/{name}");
                program(&name, &cmd, &["startretries: 0", "starttime: 0"])
            } else {
                program(
                    &name,
                    &fixture_cmd(&["sleep", "forever"]),
                    &["starttime: 0"],
                )
            }
        })
        .collect();
    let mut tm = launch(&sandbox, &programs.concat());
    for i in 0..24 {
        let name = format!("p{i:02}");
        if i % 3 == 2 {
            let status = tm.wait_for_state(&name, "FATAL", TIMEOUT);
            assert!(
                tm.log().contains(&format!("/nonexistent/{name}")),
                "{name}'s own error is not logged: {status:?}"
            );
        } else {
            let pid = tm.running_pid(&name);
            let environ = fs::read(format!("/proc/{pid}/environ")).expect("environ");
            let own = format!("TASKMASTER_PROCESS_NAME={name}");
            assert!(
                environ.split(|&b| b == 0).any(|var| var == own.as_bytes()),
                "{name}'s pid {pid} is not its own child"
            );
        }
    }
    tm.shutdown();
}
