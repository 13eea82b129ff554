//! The interactive shell of `taskmaster run`, driven through a real pseudo-terminal: what a
//! person types, and what the screen shows.

use crate::support::{
    current_line, fixture_cmd, is_alive, wait_dead, PtySession, Sandbox, CTRL_C, CTRL_D, ENTER,
    TAB, TIMEOUT, UP,
};

const PROMPT: &str = "taskmaster> ";

/// A sandbox with `web` (running, its pid in web.pid) and `once` (not started).
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("web.pid");
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
          once:
            cmd: {}
            autostart: false
        ",
        fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
        fixture_cmd(&["exit", "0"]),
    ));
    sandbox
}

/// `taskmaster run` on a terminal, once its prompt is up and web's pid is known (and tracked).
fn shell(sandbox: &Sandbox) -> (PtySession, u32) {
    let _ = std::fs::remove_file(sandbox.file("web.pid"));
    let mut session = PtySession::spawn(sandbox.taskmaster_command(&[]));
    session.wait_for_screen(|s| s.contains(PROMPT), TIMEOUT);
    let web = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    session.track(web);
    (session, web)
}

fn count(screen: &str, needle: &str) -> usize {
    screen.matches(needle).count()
}

#[test]
fn status_prints_supervisorctl_layout_on_the_terminal() {
    let sandbox = sandbox();
    let (session, web) = shell(&sandbox);
    session.send(format!("status{ENTER}"));
    let screen = session.wait_for_screen(|s| s.contains("Not started"), TIMEOUT);
    let web_line = format!("{:<33}{:<10}pid {web}, uptime 0:00:", "web", "RUNNING");
    assert!(screen.contains(&web_line), "{screen}");
    assert!(
        screen.contains(&format!("{:<33}{:<10}Not started", "once", "STOPPED")),
        "{screen}"
    );
}

#[test]
fn up_arrow_recalls_the_previous_command() {
    let sandbox = sandbox();
    let (session, web) = shell(&sandbox);
    session.send(format!("pid web{ENTER}"));
    session.wait_for_screen(|s| s.contains(&format!("\n{web}")), TIMEOUT);
    session.send(UP);
    let screen =
        session.wait_for_screen(|s| current_line(s) == format!("{PROMPT}pid web"), TIMEOUT);
    assert_eq!(count(&screen, &format!("\n{web}")), 1);
    session.send(ENTER);
    session.wait_for_screen(|s| count(s, &format!("\n{web}")) == 2, TIMEOUT);
}

#[test]
fn history_is_kept_across_runs() {
    let sandbox = sandbox();
    {
        let (mut session, _) = shell(&sandbox);
        session.send(format!("status once{ENTER}"));
        session.wait_for_screen(|s| s.contains("Not started"), TIMEOUT);
        session.send(CTRL_D);
        assert!(session.wait_exit(TIMEOUT).success());
    }
    let history = sandbox.read(".taskmaster_history");
    assert!(history.contains("status once"), "{history:?}");

    let (session, _) = shell(&sandbox);
    session.send(UP);
    session.wait_for_screen(
        |s| current_line(s) == format!("{PROMPT}status once"),
        TIMEOUT,
    );
}

#[test]
fn tab_completes_commands_and_process_names() {
    let sandbox = sandbox();
    let (session, web) = shell(&sandbox);
    session.send(format!("resta{TAB}"));
    session.wait_for_screen(|s| current_line(s) == format!("{PROMPT}restart"), TIMEOUT);
    // Clear the line (Ctrl-U), then complete a process name after a command.
    session.send("\x15");
    session.send(format!("pid we{TAB}"));
    session.wait_for_screen(|s| current_line(s) == format!("{PROMPT}pid web"), TIMEOUT);
    session.send(ENTER);
    session.wait_for_screen(|s| s.contains(&format!("\n{web}")), TIMEOUT);
}

#[test]
fn help_lists_every_command() {
    let sandbox = sandbox();
    let (session, _) = shell(&sandbox);
    session.send(format!("help{ENTER}"));
    let screen = session.wait_for_screen(|s| s.contains("quit"), TIMEOUT);
    for command in [
        "status [NAME...]",
        "start NAME...",
        "stop NAME...",
        "restart NAME...",
        "signal SIG NAME...",
        "pid [NAME...]",
        "reload",
        "shutdown",
    ] {
        assert!(screen.contains(command), "help lacks {command}:\n{screen}");
    }
}

#[test]
fn a_wrong_command_or_name_gets_a_message_and_the_shell_goes_on() {
    let sandbox = sandbox();
    let (session, web) = shell(&sandbox);
    session.send(format!("frobnicate web{ENTER}"));
    session.wait_for_screen(|s| s.contains("unknown command \"frobnicate\""), TIMEOUT);
    session.send(format!("start nope{ENTER}"));
    session.wait_for_screen(|s| s.contains("nope: ERROR (no such process)"), TIMEOUT);
    session.send(format!("start{ENTER}"));
    session.wait_for_screen(|s| s.contains("usage: start NAME..."), TIMEOUT);
    session.send(format!("pid web{ENTER}"));
    session.wait_for_screen(|s| s.contains(&format!("\n{web}")), TIMEOUT);
    assert!(is_alive(web));
}

#[test]
fn ctrl_c_drops_the_line_and_the_shell_goes_on() {
    let sandbox = sandbox();
    let (session, web) = shell(&sandbox);
    session.send(format!("shutdo{CTRL_C}"));
    session.wait_for_screen(
        |s| s.lines().filter(|l| l.starts_with(PROMPT)).count() == 2,
        TIMEOUT,
    );
    assert_eq!(current_line(&session.screen()), PROMPT.trim_end());
    session.send(format!("pid web{ENTER}"));
    session.wait_for_screen(|s| s.contains(&format!("\n{web}")), TIMEOUT);
    assert!(is_alive(web));
}

#[test]
fn ctrl_d_stops_every_program_and_exits() {
    let sandbox = sandbox();
    let (mut session, web) = shell(&sandbox);
    session.send(CTRL_D);
    let status = session.wait_exit(TIMEOUT);
    assert!(status.success(), "{status:?}");
    wait_dead(web, TIMEOUT);
}

#[test]
fn shutdown_stops_every_program_and_exits() {
    let sandbox = sandbox();
    let (mut session, web) = shell(&sandbox);
    session.send(format!("shutdown{ENTER}"));
    session.wait_for_screen(|s| s.contains("Shut down"), TIMEOUT);
    assert!(session.wait_exit(TIMEOUT).success());
    wait_dead(web, TIMEOUT);
}
