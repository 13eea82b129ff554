//! The event log: one line per event, each starting with a local timestamp
//! `YYYY-MM-DD HH:MM:SS.mmm `, appended to `logfile` (by default `taskmaster.log` beside the
//! configuration file).

use std::fs;

use crate::support::*;
use rustix::process::Signal;

/// The length of `YYYY-MM-DD HH:MM:SS.mmm ` (with its trailing space).
const TIMESTAMP_LEN: usize = 24;

/// Whether `line` starts with `YYYY-MM-DD HH:MM:SS.mmm ` (`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} `).
fn has_timestamp(line: &str) -> bool {
    const SHAPE: &[u8; TIMESTAMP_LEN] = b"dddd-dd-dd dd:dd:dd.ddd ";
    let bytes = line.as_bytes();
    bytes.len() > TIMESTAMP_LEN
        && SHAPE.iter().zip(bytes).all(|(&want, &got)| match want {
            b'd' => got.is_ascii_digit(),
            _ => got == want,
        })
}

/// The text of a log line after its timestamp; `None` if it has no timestamp.
fn event_text(line: &str) -> Option<&str> {
    has_timestamp(line).then(|| &line[TIMESTAMP_LEN..])
}

/// Every line of `log` with a timestamp, as its text after the timestamp.
fn events(log: &str) -> Vec<&str> {
    log.lines().filter_map(event_text).collect()
}

/// Waits for a timestamped log line whose text is `pred`-true, and returns that text.
fn wait_for_event_where(tm: &Taskmaster, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let found = wait_until_or_none(TIMEOUT, || {
        events(&tm.log())
            .into_iter()
            .find(|text| pred(text))
            .map(str::to_owned)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no timestamped log line {what} within {TIMEOUT:?}\n{}",
            tm.diagnostics()
        )
    })
}

/// Waits for a timestamped log line whose text is exactly `text`.
fn wait_for_event(tm: &Taskmaster, text: &str) {
    wait_for_event_where(tm, &format!("reading {text:?}"), |t| t == text);
}

/// The index, among the timestamped lines of `log`, of the first whose text is `text`.
fn event_index(log: &str, text: &str) -> usize {
    events(log)
        .iter()
        .position(|t| *t == text)
        .unwrap_or_else(|| panic!("no log line reading {text:?} in:\n{log}"))
}

#[test]
fn the_timestamp_shape_is_checked_strictly() {
    assert!(has_timestamp("2024-05-01 09:03:07.042 web: RUNNING"));
    for line in [
        "2024-05-01 09:03:07 web: RUNNING",
        "2024-05-01T09:03:07.042 web: RUNNING",
        "24-05-01 09:03:07.042 web: RUNNING",
        "2024-05-01 09:03:07.04 web: RUNNING",
        "2024-05-01 09:03:07.042web: RUNNING",
        "web: RUNNING",
    ] {
        assert!(!has_timestamp(line), "{line:?}");
    }
}

#[test]
fn every_line_of_the_event_log_starts_with_a_timestamp() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
            stoptime: 1
          once:
            cmd: {}
            autostart: false
            starttime: 0
            autorestart: never
        ",
        fixture_cmd(&["sleep", "forever"]),
        fixture_cmd(&["exit", "3"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    assert_eq!(tm.command("start once", 1), ["once: started"]);
    tm.wait_for_state("once", "EXITED", TIMEOUT);
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    tm.shutdown();

    let log = tm.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 10, "{log}");
    for line in lines {
        assert!(has_timestamp(line), "no timestamp: {line:?}\n{log}");
    }
}

#[test]
fn log_says_taskmaster_started_with_its_pid_and_configuration() {
    let sandbox = Sandbox::new();
    sandbox.write_config("programs: {}");
    let tm = Taskmaster::start(&sandbox, &[]);
    wait_for_event(
        &tm,
        &format!(
            "taskmaster started (pid {}, configuration {})",
            tm.daemon_pid(),
            sandbox.config_path().display()
        ),
    );
}

#[test]
fn log_says_spawned_with_the_real_pid() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("web.pid");
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
        ",
        fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    tm.track(pid);
    wait_for_event(&tm, &format!("web: spawned with pid {pid}"));
}

#[test]
fn log_says_running_at_once_or_after_starttime() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          quick:
            cmd: {sleeper}
            starttime: 0
          patient:
            cmd: {sleeper}
            starttime: 200ms
        ",
        sleeper = fixture_cmd(&["sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("quick", "RUNNING", TIMEOUT);
    tm.wait_for_state("patient", "RUNNING", TIMEOUT);
    wait_for_event(&tm, "quick: RUNNING");
    wait_for_event(&tm, "patient: RUNNING: up for 200ms (starttime)");
}

#[test]
fn log_says_the_exit_code_and_whether_it_was_expected() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          fine:
            cmd: {}
            starttime: 0
            autorestart: never
            exitcodes: [0, 2]
          broken:
            cmd: {}
            starttime: 0
            autorestart: never
            exitcodes: [0, 2]
        ",
        fixture_cmd(&["exit", "2"]),
        fixture_cmd(&["exit", "3"]),
    ));
    let tm = Taskmaster::start(&sandbox, &[]);
    wait_for_event(&tm, "fine: exited with code 2 (expected)");
    wait_for_event(&tm, "broken: exited with code 3 (not expected)");
}

#[test]
fn log_says_which_signal_killed_a_process() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          victim:
            cmd: {}
            starttime: 0
            autorestart: never
        ",
        fixture_cmd(&["raise", "USR1"]),
    ));
    let tm = Taskmaster::start(&sandbox, &[]);
    wait_for_event(&tm, "victim: killed by SIGUSR1 (not expected)");
}

/// A `cmd:` that exits with `code` the first time it runs (it leaves `marker` behind), and
/// sleeps forever every later time: one restart, then quiet.
fn exits_once(marker: &str, code: &str) -> String {
    let sleeper = [
        fixture_bin().to_str().expect("UTF-8 path"),
        "sleep",
        "forever",
    ]
    .map(shell_quote)
    .join(" ");
    let marker = shell_quote(marker);
    let script = format!("test -e {marker} && exec {sleeper}; touch {marker}; exit {code}");
    yaml_quote(&format!("sh -c {}", shell_quote(&script)))
}

#[test]
fn log_says_why_a_process_is_restarted() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          always:
            cmd: {}
            starttime: 0
            autorestart: always
          unexpected:
            cmd: {}
            starttime: 0
            autorestart: unexpected
        ",
        exits_once(&sandbox.file_str("always.ran"), "0"),
        exits_once(&sandbox.file_str("unexpected.ran"), "3"),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    wait_for_event(&tm, "always: exited with code 0 (expected)");
    wait_for_event(&tm, "unexpected: exited with code 3 (not expected)");
    // The restart really happened: a second spawn, now running.
    for (name, why) in [
        ("always", "autorestart is always"),
        ("unexpected", "the exit was not expected"),
    ] {
        let pid = tm.wait_for_state(name, "RUNNING", TIMEOUT).pid();
        let pid = pid.unwrap_or_else(|| panic!("{name} RUNNING without a pid"));
        let log = tm.log();
        let restarting = event_index(&log, &format!("{name}: restarting: {why}"));
        let spawned = event_index(&log, &format!("{name}: spawned with pid {pid}"));
        assert!(restarting < spawned, "{log}");
    }
}

#[test]
fn log_says_backoff_then_gave_up_fatal() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          doomed:
            cmd: {}
            starttime: 1
            startretries: 1
        ",
        fixture_cmd(&["exit", "1"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("doomed", "FATAL", TIMEOUT);
    let log = tm.log();
    let early = events(&log)
        .into_iter()
        .filter(|t| {
            t.starts_with("doomed: exited with code 1 after ")
                && t.ends_with(", before its starttime")
        })
        .count();
    assert_eq!(early, 2, "{log}");
    let order = [
        "doomed: BACKOFF: start failed (1 of 1 retries used); next attempt in 1s",
        "doomed: start attempt 2",
        "doomed: gave up: FATAL after 2 failed start attempt(s)",
    ]
    .map(|text| event_index(&log, text));
    assert!(order.is_sorted(), "{log}");
}

#[test]
fn log_says_stop_requested_and_how_the_process_stopped() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
            stopsignal: INT
        ",
        fixture_cmd(&["sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    let log = tm.log();
    let order = [
        "command: stop web",
        "web: stop requested: sending INT",
        "web: stopped (killed by SIGINT)",
    ]
    .map(|text| event_index(&log, text));
    assert!(order.is_sorted(), "{log}");
}

#[test]
fn log_says_sigkill_was_sent_after_stoptime() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("pid");
    sandbox.write_config(&format!(
        "
        programs:
          stubborn:
            cmd: {}
            starttime: 0
            stoptime: 1
        ",
        // The pid file is written once TERM is ignored.
        fixture_cmd(&["ignore", "TERM", "pidfile", &pidfile, "sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = sandbox.wait_for_pidfile("pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(tm.command("stop stubborn", 1), ["stubborn: stopped"]);
    let log = tm.log();
    let order = [
        "stubborn: stop requested: sending TERM",
        "stubborn: still running 1s after TERM: sending SIGKILL",
        "stubborn: stopped (killed by SIGKILL)",
    ]
    .map(|text| event_index(&log, text));
    assert!(order.is_sorted(), "{log}");
}

#[test]
fn log_says_reload_and_what_changed() {
    let sandbox = Sandbox::new();
    let sleeper = fixture_cmd(&["sleep", "forever"]);
    let printer = fixture_cmd(&["print", "new", "sleep", "forever"]);
    sandbox.write_config(&format!(
        "
        programs:
          edited: {{cmd: {sleeper}, starttime: 0}}
          gone: {{cmd: {sleeper}, starttime: 0}}
        ",
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("edited", "RUNNING", TIMEOUT);
    tm.wait_for_state("gone", "RUNNING", TIMEOUT);
    sandbox.write_config(&format!(
        "
        programs:
          edited: {{cmd: {printer}, starttime: 0}}
          fresh: {{cmd: {sleeper}, starttime: 0}}
        ",
    ));
    assert_eq!(
        tm.command_all("reload"),
        ["reloaded: added fresh; changed edited; removed gone"]
    );
    wait_for_event(&tm, "command: reload");
    wait_for_event(&tm, "reload: added fresh; changed edited; removed gone");
    wait_for_event(&tm, "gone: removed");
}

#[test]
fn log_records_every_command_that_acts_but_not_status_or_pid() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
            stoptime: 1
        ",
        fixture_cmd(&["ignore", "HUP", "sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.command_all("status");
    tm.pid("web");
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);
    assert_eq!(tm.command("start web", 1), ["web: started"]);
    assert_eq!(
        tm.command("restart web", 2),
        ["web: stopped", "web: started"]
    );
    assert_eq!(tm.command("signal HUP web", 1), ["web: signalled"]);
    assert_eq!(tm.command("reload", 1), ["reloaded: nothing changed"]);
    tm.shutdown();

    let log = tm.log();
    let commands: Vec<&str> = events(&log)
        .into_iter()
        .filter_map(|t| t.strip_prefix("command: "))
        .collect();
    // `status`, `pid web` and `pid` (sent by command_all) came before `stop web`: they would
    // show here if they were logged.
    assert_eq!(
        commands,
        [
            "stop web",
            "start web",
            "restart web",
            "signal HUP web",
            "reload",
            "shutdown"
        ],
        "{log}"
    );
    event_index(&log, "web: sending HUP");
}

#[test]
fn log_says_sigterm_received_and_taskmaster_exits() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
        ",
        fixture_cmd(&["sleep", "forever"]),
    ));
    let mut tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    wait_for_event(&tm, "web: RUNNING");
    tm.signal(Signal::TERM);
    let status = tm.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}");

    let log = tm.log();
    let order = [
        "SIGTERM received: shutting down",
        "shutting down: stopping every process",
        "web: stop requested: sending TERM",
        "web: stopped (killed by SIGTERM)",
        "taskmaster exits: every process has stopped",
    ]
    .map(|text| event_index(&log, text));
    assert!(order.is_sorted(), "{log}");
    assert_eq!(
        events(&log).last().copied(),
        Some("taskmaster exits: every process has stopped"),
        "{log}"
    );
}

#[test]
fn default_logfile_is_taskmaster_log_beside_the_configuration_file() {
    let sandbox = Sandbox::new();
    // Written by hand: `Sandbox::write_config` would add a `logfile:` line.
    let text = format!(
        "programs:\n  web:\n    cmd: {}\n    starttime: 0\n",
        fixture_cmd(&["sleep", "forever"])
    );
    fs::write(sandbox.config_path(), text).expect("write the config");
    // Run from another folder, so that "beside the configuration" and "in the current
    // folder" are different places.
    let elsewhere = sandbox.file("elsewhere");
    fs::create_dir(&elsewhere).expect("create a working folder");
    let mut cmd = sandbox.taskmaster_command(&[]);
    cmd.current_dir(&elsewhere);
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.shutdown();

    // `Taskmaster::log` reads `sandbox.logfile()`: taskmaster.log beside taskmaster.yaml.
    assert_eq!(sandbox.logfile(), sandbox.file("taskmaster.log"));
    let log = tm.log();
    event_index(
        &log,
        &format!(
            "taskmaster started (pid {}, configuration {})",
            tm.daemon_pid(),
            sandbox.config_path().display()
        ),
    );
    event_index(&log, "web: RUNNING");
    assert!(!elsewhere.join("taskmaster.log").exists());
}

#[test]
fn log_lines_are_appended_across_runs() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {}
            starttime: 0
        ",
        fixture_cmd(&["sleep", "forever"]),
    ));
    let mut pids = Vec::new();
    for _ in 0..2 {
        let mut tm = Taskmaster::start(&sandbox, &[]);
        tm.wait_for_state("web", "RUNNING", TIMEOUT);
        tm.shutdown();
        pids.push(tm.daemon_pid());
    }

    let log = sandbox.read("taskmaster.log");
    let started: Vec<&str> = events(&log)
        .into_iter()
        .filter(|t| t.starts_with("taskmaster started"))
        .collect();
    let config = sandbox.config_path();
    let expected: Vec<String> = pids
        .iter()
        .map(|pid| {
            format!(
                "taskmaster started (pid {pid}, configuration {})",
                config.display()
            )
        })
        .collect();
    assert_eq!(started, expected, "{log}");
    // The first run's last line comes before the second run's first.
    let exits = event_index(&log, "taskmaster exits: every process has stopped");
    assert!(exits < event_index(&log, &expected[1]), "{log}");
}
