//! Every exit classified (issue 4, item 6): for each way a process can end, the cause shown by
//! `taskmaster ctl status`, by the API (`last_exit` of `GET /v1/processes/NAME`) and by the
//! event log, on real processes: C programs that segfault and exit 3 (`fixture/c/`), files that
//! cannot be executed, and `tm-fixture` for the endings that come from outside.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::{
    config, fixture_cmd, program, send_signal, wait_dead, yaml_quote, Sandbox, StatusLine,
    Taskmaster, TIMEOUT,
};
use crate::views::{api_wait_for_state, c_fixture, ctl_status, log_lines, start};
use rustix::process::Signal;
use serde_json::{json, Value};

/// How a process ended, as `ctl status` and the API show it once it is in its final state.
struct Ended {
    status: StatusLine,
    api: Value,
}

/// Waits until the API shows `name` in `state`, then reads `ctl status` too; both must agree on
/// the state.
fn ended(sandbox: &Sandbox, name: &str, state: &str) -> Ended {
    let api = api_wait_for_state(sandbox, name, state);
    let status = ctl_status(sandbox, name);
    assert_eq!(status.state, state, "{status:?}");
    Ended { status, api }
}

/// A program that runs `cmd` once: RUNNING at once, never restarted.
fn once(name: &str, cmd: &str) -> String {
    program(name, cmd, &["starttime: 0", "autorestart: never"])
}

/// Waits for the event-log line `NAME: MESSAGE`, exactly, and fails if there is more than one.
fn assert_logged_once(tm: &Taskmaster, name: &str, message: &str) {
    let line = format!("{name}: {message}");
    tm.wait_for_log(&line, TIMEOUT);
    let found: Vec<String> = log_lines(tm, &line)
        .into_iter()
        .filter(|found| found.ends_with(&line))
        .collect();
    assert_eq!(found.len(), 1, "{line:?} logged {found:?}\n{}", tm.log());
}

/// `name`'s running pid, once the API shows it RUNNING; tracked, so it cannot outlive the test.
fn running_pid(sandbox: &Sandbox, tm: &mut Taskmaster, name: &str) -> u32 {
    let api = api_wait_for_state(sandbox, name, "RUNNING");
    let pid = api["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .unwrap_or_else(|| panic!("no pid in {api}"));
    tm.track(pid);
    pid
}

#[test]
fn a_segfault_is_a_crash_not_exit_status_139() {
    let sandbox = Sandbox::new();
    let segfault = c_fixture(crate::views::SEGFAULT);
    let tm = start(&sandbox, &config(&[once("seg", &yaml_quote(segfault))]));
    let Ended { status, api } = ended(&sandbox, "seg", "EXITED");

    // The kernel may dump core despite the fixture's RLIMIT_CORE of 0 (a core_pattern that
    // pipes to a collector ignores it); the text must say so when it did.
    let core_dumped = api["last_exit"]["core_dumped"] == true;
    let text = if core_dumped {
        "crashed: SIGSEGV (core dumped)"
    } else {
        "crashed: SIGSEGV"
    };
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": "SIGSEGV", "core_dumped": core_dumped, "expected": false,
               "cause": "crashed", "text": text})
    );
    assert!(
        status.description.ends_with(&format!(", {text}")),
        "{status:?}"
    );
    assert_logged_once(&tm, "seg", text);
    // 139 is what a shell shows for it (128 + 11): not an exit status, which it never had.
    let as_exit_status = |text: &str| text.contains("status 139") || text.contains("code 139");
    assert!(
        !as_exit_status(&tm.log()) && !as_exit_status(&status.description),
        "a crash shown as an exit status:\n{status:?}\n{}",
        tm.log()
    );
}

#[test]
fn exit_3_is_exited_with_code_3_not_expected() {
    let sandbox = Sandbox::new();
    let exit3 = c_fixture(crate::views::EXIT3);
    let tm = start(&sandbox, &config(&[once("three", &yaml_quote(exit3))]));
    let Ended { status, api } = ended(&sandbox, "three", "EXITED");

    let text = "exited with code 3 (not expected)";
    assert_eq!(
        api["last_exit"],
        json!({"code": 3, "signal": null, "core_dumped": false, "expected": false,
               "cause": "exited", "text": text})
    );
    assert!(
        status.description.ends_with(&format!(", {text}")),
        "{status:?}"
    );
    assert_logged_once(&tm, "three", text);
}

/// A program whose `cmd` cannot be executed for `reason` (the OS's words): every start fails to
/// spawn, and after `startretries` (1) it is FATAL, with the error in every view.
fn assert_spawn_fails(sandbox: &Sandbox, tm: &Taskmaster, name: &str, path: &str, reason: &str) {
    let Ended { status, api } = ended(sandbox, name, "FATAL");
    let error = format!("cannot execute {path}: {reason}");

    assert_eq!(status.description, error, "{status:?}");
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": null, "core_dumped": false, "expected": false,
               "cause": "spawn_failed", "detail": error,
               "text": format!("failed to spawn: {error}")})
    );
    assert_eq!(api["pid"], Value::Null, "{api}");
    // The first start and its one retry.
    let attempts = log_lines(tm, &format!("{name}: spawn error: {error}"));
    assert_eq!(attempts.len(), 2, "{attempts:?}\n{}", tm.log());
    assert_logged_once(tm, name, "gave up: FATAL after 2 failed start attempt(s)");
    assert!(
        log_lines(tm, &format!("{name}: spawned")).is_empty(),
        "{}",
        tm.log()
    );
}

/// A program that fails to start: `startretries: 1`, and no wait between attempts to speak of.
fn unstartable(name: &str, path: &str) -> String {
    program(
        name,
        &yaml_quote(path),
        &["starttime: 0", "startretries: 1"],
    )
}

#[test]
fn a_file_without_execute_permission_fails_to_spawn_with_permission_denied_and_ends_fatal() {
    let sandbox = Sandbox::new();
    let script = sandbox.file("not-executable.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let path = sandbox.file_str("not-executable.sh");

    let tm = start(&sandbox, &config(&[unstartable("noexec", &path)]));
    assert_spawn_fails(&sandbox, &tm, "noexec", &path, "Permission denied");
}

#[test]
fn a_file_that_does_not_exist_fails_to_spawn_with_no_such_file_and_ends_fatal() {
    let sandbox = Sandbox::new();
    let path = sandbox.file_str("no-such-program");

    let tm = start(&sandbox, &config(&[unstartable("missing", &path)]));
    assert_spawn_fails(&sandbox, &tm, "missing", &path, "No such file or directory");
}

#[test]
fn a_stop_request_is_stopped() {
    let sandbox = Sandbox::new();
    let mut tm = start(
        &sandbox,
        &config(&[once("web", &fixture_cmd(&["sleep", "forever"]))]),
    );
    let pid = running_pid(&sandbox, &mut tm, "web");
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    wait_dead(pid, TIMEOUT);
    let Ended { status, api } = ended(&sandbox, "web", "STOPPED");

    let text = "stopped by request (killed by SIGTERM)";
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": "SIGTERM", "core_dumped": false, "expected": false,
               "cause": "stopped", "text": text})
    );
    assert!(
        status.description.ends_with(&format!(", {text}")),
        "{status:?}"
    );
    assert_logged_once(&tm, "web", "stopped (killed by SIGTERM)");
    assert!(log_lines(&tm, "SIGKILL").is_empty(), "{}", tm.log());
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_stoptime() {
    let sandbox = Sandbox::new();
    let stubborn = program(
        "stubborn",
        &fixture_cmd(&["ignore", "TERM", "sleep", "forever"]),
        &["starttime: 0", "autorestart: never", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &config(&[stubborn]));
    let pid = running_pid(&sandbox, &mut tm, "stubborn");
    assert_eq!(tm.command("stop stubborn", 1), ["stubborn: stopped"]);
    wait_dead(pid, TIMEOUT);
    let Ended { status, api } = ended(&sandbox, "stubborn", "STOPPED");

    let text = "killed after stoptime (killed by SIGKILL)";
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": "SIGKILL", "core_dumped": false, "expected": false,
               "cause": "killed_after_stoptime", "text": text})
    );
    assert!(
        status.description.ends_with(&format!(", {text}")),
        "{status:?}"
    );
    let sigkill = log_lines(&tm, "stubborn: still running 1s after");
    assert_eq!(sigkill.len(), 1, "{sigkill:?}\n{}", tm.log());
    assert!(sigkill[0].ends_with(": sending SIGKILL"), "{sigkill:?}");
    assert_logged_once(&tm, "stubborn", "stopped (killed by SIGKILL)");
}

#[test]
fn sigterm_from_outside_is_killed() {
    let sandbox = Sandbox::new();
    let mut tm = start(
        &sandbox,
        &config(&[once("victim", &fixture_cmd(&["sleep", "forever"]))]),
    );
    let pid = running_pid(&sandbox, &mut tm, "victim");
    send_signal(pid, Signal::TERM).expect("SIGTERM the process");
    let Ended { status, api } = ended(&sandbox, "victim", "EXITED");

    let text = "killed by SIGTERM (not expected)";
    assert_eq!(
        api["last_exit"],
        json!({"code": null, "signal": "SIGTERM", "core_dumped": false, "expected": false,
               "cause": "killed", "text": text})
    );
    assert!(
        status.description.ends_with(&format!(", {text}")),
        "{status:?}"
    );
    assert_logged_once(&tm, "victim", text);
    // Nobody asked: no stop was logged, and nothing says "stopped".
    assert!(log_lines(&tm, "victim: stop").is_empty(), "{}", tm.log());
}
