//! Alive is not enough: what taskmaster knows about a process beyond "it has not exited".
//! So far: paused is not dead (a child stopped by SIGSTOP or SIGTSTP).

use crate::support::{
    config, fixture_cmd, program, send_signal, wait_until, Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;

/// `web`, sleeping, with a long stoptime: a stop that needed SIGKILL would show.
fn launch(sandbox: &Sandbox) -> (Taskmaster, u32) {
    let web = program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", "stoptime: 30"],
    );
    sandbox.write_config(&config(&[web]));
    let mut tm = Taskmaster::start(sandbox, &[]);
    let pid = tm
        .wait_for_state("web", "RUNNING", TIMEOUT)
        .pid()
        .expect("web's pid");
    (tm, pid)
}

/// Waits until `status web` ends with `suffix`, and returns the line.
fn wait_for_description(tm: &mut Taskmaster, what: &str, pred: impl Fn(&str) -> bool) -> String {
    wait_until(what, TIMEOUT, || {
        let status = tm.status("web");
        (status.state == "RUNNING" && pred(&status.description)).then_some(status.description)
    })
}

#[test]
fn sigstop_shows_as_paused_and_sigcont_as_resumed() {
    let sandbox = Sandbox::new();
    let (mut tm, pid) = launch(&sandbox);
    send_signal(pid, Signal::STOP).expect("SIGSTOP web");
    let paused = wait_for_description(&mut tm, "web paused", |d| d.ends_with(", paused (SIGSTOP)"));
    assert!(
        paused.starts_with(&format!("pid {pid}, uptime ")),
        "{paused}"
    );
    tm.wait_for_log("web: paused by SIGSTOP", TIMEOUT);

    send_signal(pid, Signal::CONT).expect("SIGCONT web");
    wait_for_description(&mut tm, "web resumed", |d| !d.contains("paused"));
    tm.wait_for_log("web: resumed (SIGCONT)", TIMEOUT);
    assert_eq!(tm.pid("web"), Some(pid), "the same process all along");
}

#[test]
fn sigtstp_shows_as_paused_by_sigtstp() {
    let sandbox = Sandbox::new();
    let (mut tm, pid) = launch(&sandbox);
    send_signal(pid, Signal::TSTP).expect("SIGTSTP web");
    wait_for_description(&mut tm, "web paused", |d| d.ends_with(", paused (SIGTSTP)"));
    send_signal(pid, Signal::CONT).expect("SIGCONT web");
    wait_for_description(&mut tm, "web resumed", |d| !d.contains("paused"));
}

#[test]
fn a_paused_process_stops_at_once_on_stop() {
    let sandbox = Sandbox::new();
    let (mut tm, pid) = launch(&sandbox);
    send_signal(pid, Signal::STOP).expect("SIGSTOP web");
    tm.wait_for_log("web: paused by SIGSTOP", TIMEOUT);
    // Without a SIGCONT after the stop signal this would wait the 30 s stoptime for SIGKILL,
    // beyond the harness's deadline.
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    let log = tm.log();
    assert!(log.contains("web: stopped (killed by SIGTERM)"), "{log}");
    assert!(!log.contains("sending SIGKILL"), "{log}");
}
