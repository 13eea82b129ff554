//! A health check or an `on_exit` hook is a helper (`/bin/sh -c`, in a process group of its
//! own). What it leaves running in that group (`cmd &`) is killed when it ends, as `killgroup`
//! stops what a program leaves: no process outlives the helper that started it. Found by the
//! chaos run (`crates/chaos`): every check left one more child of taskmaster that no process
//! names, and they outlived taskmaster's own shutdown.

use std::time::Duration;

use crate::support::{
    config, fixture_bin, fixture_cmd, is_alive, program, shell_quote, wait_until_or_none,
    yaml_quote, Sandbox, Taskmaster, TIMEOUT,
};

/// How long what a helper left may outlive it: its end is seen at once (SIGCHLD).
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// `/bin/sh -c` text that starts the fixture in the background, writing its pid to `pidfile`
/// and sleeping, and ends with status 0 once the pid is written.
fn leaves_a_sleeper(pidfile: &str) -> String {
    let fixture = fixture_bin();
    let fixture = shell_quote(fixture.to_str().expect("fixture path is UTF-8"));
    let pidfile = shell_quote(pidfile);
    format!("{fixture} pidfile {pidfile} sleep forever & {fixture} wait-for {pidfile}")
}

/// Waits for the pid the background sleeper wrote in `name`, and then for its death; fails
/// the test when it outlives its helper.
fn left_process_dies(sandbox: &Sandbox, tm: &mut Taskmaster, name: &str) {
    let pid = sandbox.wait_for_pidfile(name, TIMEOUT);
    // Ended by the test's end, whatever happens.
    tm.track(pid);
    let died = wait_until_or_none(GONE_WITHIN, || (!is_alive(pid)).then_some(()));
    assert!(
        died.is_some(),
        "pid {pid}, left running by its helper, outlived it by {GONE_WITHIN:?}"
    );
}

#[test]
fn what_a_health_check_leaves_running_is_killed_when_it_ends() {
    let sandbox = Sandbox::new();
    let check = leaves_a_sleeper(&sandbox.file_str("check-left.pid"));
    let healthcheck = format!(
        "healthcheck: {{cmd: {}, interval: 500ms, timeout: 5s, retries: 3}}",
        yaml_quote(&check)
    );
    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", &healthcheck],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    left_process_dies(&sandbox, &mut tm, "check-left.pid");
    // The check itself passed: the process is healthy, and was never restarted.
    let status = tm.status("web");
    assert_eq!(status.state, "RUNNING");
    assert!(status.description.ends_with(", healthy"), "{status:?}");
}

#[test]
fn what_an_on_exit_hook_leaves_running_is_killed_when_it_ends() {
    let sandbox = Sandbox::new();
    let hook = leaves_a_sleeper(&sandbox.file_str("hook-left.pid"));
    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", &format!("on_exit: {}", yaml_quote(&hook))],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.command("stop web", 1);
    left_process_dies(&sandbox, &mut tm, "hook-left.pid");
    tm.wait_for_log("web: on_exit hook done", TIMEOUT);
}
