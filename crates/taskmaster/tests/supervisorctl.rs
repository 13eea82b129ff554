//! The real `supervisorctl` (from PyPI's `supervisor`) drives taskmaster through its control
//! socket: XML-RPC on `/RPC2`, and `/logtail` and `/mainlogtail` for `tail -f`.
//!
//! supervisorctl comes from `$SUPERVISORCTL`, else `target/ci-venv/bin/supervisorctl` (CI's
//! `.ci/run` makes that venv). A missing supervisorctl fails every test here: it is never
//! silently skipped. Each run gets `-c` naming an empty `[supervisorctl]` file in the sandbox,
//! so no `supervisord.conf` of the machine is read.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{
    fixture_cmd, is_alive, run_to_completion, wait_dead, wait_until, Process, Sandbox, StatusLine,
    Taskmaster, TIMEOUT,
};
use rustix::process::Signal;

/// The supervisorctl under test.
fn supervisorctl_bin() -> PathBuf {
    let path = std::env::var_os("SUPERVISORCTL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv/bin/supervisorctl"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "supervisorctl not found at {}: these tests need the real one. `.ci/run` installs it; \
         by hand: `python3 -m venv target/ci-venv && target/ci-venv/bin/pip install \
         supervisor==4.3.0`, or set SUPERVISORCTL to one",
        path.display()
    );
    path
}

/// What a supervisorctl run printed, and its exit status.
#[derive(Debug)]
struct Answer {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Answer {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A taskmaster (`run --no-shell`) and the means to run supervisorctl against its socket.
struct Supervised {
    sandbox: Sandbox,
    daemon: Taskmaster,
    /// `-s URL` and, over TCP, `-u USER -p PASSWORD`.
    server: Vec<String>,
}

impl Supervised {
    /// Writes `yaml` as the configuration and starts taskmaster on it.
    fn start(yaml: &str) -> Supervised {
        Supervised::start_with(|_| yaml.to_string())
    }

    /// Like [`Supervised::start`], with a configuration that names files of the sandbox.
    fn start_with(yaml: impl FnOnce(&Sandbox) -> String) -> Supervised {
        let sandbox = Sandbox::new();
        sandbox.write_config(&yaml(&sandbox));
        std::fs::write(sandbox.file("supervisorctl.conf"), "[supervisorctl]\n")
            .expect("write supervisorctl.conf");
        let daemon = Taskmaster::start(&sandbox, &["--no-shell"]);
        let socket = sandbox.file("taskmaster.sock");
        wait_until("the control socket", TIMEOUT, || {
            socket.exists().then_some(())
        });
        let server = vec!["-s".to_string(), format!("unix://{}", socket.display())];
        Supervised {
            sandbox,
            daemon,
            server,
        }
    }

    /// Like [`Supervised::start_with`], with supervisorctl going through taskmaster's `http:`
    /// listener (on a free loopback port) with a username and a password.
    fn start_tcp(yaml: impl FnOnce(&Sandbox) -> String) -> Supervised {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut supervised = Supervised::start_with(|sandbox| {
            format!(
                "http:\n  listen: 127.0.0.1:{port}\n  username: admin\n  password: s3cret\n{}",
                yaml(sandbox)
            )
        });
        supervised.server = [
            "-s",
            &format!("http://127.0.0.1:{port}"),
            "-u",
            "admin",
            "-p",
            "s3cret",
        ]
        .map(str::to_string)
        .to_vec();
        supervised
    }

    fn socket(&self) -> PathBuf {
        self.sandbox.file("taskmaster.sock")
    }

    /// `supervisorctl -s unix://SOCKET ARGS...`, not yet started.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(supervisorctl_bin());
        cmd.arg("-c")
            .arg(self.sandbox.file("supervisorctl.conf"))
            .args(&self.server)
            .args(args)
            .current_dir(self.sandbox.path())
            .env("HOME", self.sandbox.path())
            .env("PYTHONUNBUFFERED", "1");
        cmd
    }

    /// Runs supervisorctl to its end.
    fn ctl(&self, args: &[&str]) -> Answer {
        let output = run_to_completion(self.command(args), TIMEOUT);
        Answer {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs supervisorctl and fails, showing everything, unless its output is `expected` and its
    /// exit status `code`.
    fn expect(&self, args: &[&str], expected: &[&str], code: i32) -> Answer {
        let answer = self.ctl(args);
        assert_eq!(
            (answer.lines(), answer.code),
            (expected.to_vec(), code),
            "supervisorctl {args:?}: {answer:?}\n{}",
            self.daemon.diagnostics()
        );
        answer
    }

    /// `supervisorctl status`, parsed; every pid shown is tracked. Lines that are no status
    /// line (an error while taskmaster restarts) are left out.
    fn status(&mut self) -> Vec<StatusLine> {
        let answer = self.ctl(&["status"]);
        let statuses: Vec<StatusLine> = answer
            .lines()
            .iter()
            .filter_map(|line| StatusLine::parse(line))
            .collect();
        for pid in statuses.iter().filter_map(StatusLine::pid) {
            self.daemon.track(pid);
        }
        statuses
    }

    /// Asks `status` until `name` is in `state`; returns its line.
    fn wait_for_state(&mut self, name: &str, state: &str) -> StatusLine {
        let mut last = Vec::new();
        let found = crate::support::wait_until_or_none(TIMEOUT, || {
            last = self.status();
            last.iter()
                .find(|s| s.name == name && s.state == state)
                .cloned()
        });
        found.unwrap_or_else(|| {
            panic!(
                "{name} not {state} within {TIMEOUT:?}; last status: {last:#?}\n{}",
                self.daemon.diagnostics()
            )
        })
    }

    /// The pid `status` shows for `name`, once it is RUNNING.
    fn running_pid(&mut self, name: &str) -> u32 {
        let line = self.wait_for_state(name, "RUNNING");
        line.pid().unwrap_or_else(|| panic!("no pid in {line:?}"))
    }
}

/// A status line as supervisorctl lays it out.
fn status_line(name: &str, state: &str, description: &str) -> String {
    format!("{name:<33}{state:<10}{description}")
}

/// A program that runs until stopped, writing its pid to `NAME.pid` in the sandbox.
fn sleeper(sandbox: &Sandbox, name: &str) -> String {
    fixture_cmd(&[
        "pidfile",
        &sandbox.file_str(&format!("{name}.pid")),
        "sleep",
        "forever",
    ])
}

// ---- status -------------------------------------------------------------------------------

#[test]
fn status_shows_every_process_in_supervisorctl_layout_and_exits_3_when_one_is_stopped() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        r#"
        programs:
          idle:
            cmd: {cmd}
            autostart: false
          web:
            cmd: {cmd}
            starttime: 0
          workers:
            cmd: {cmd}
            numprocs: 2
            starttime: 0
        "#
    ));
    let web = s.running_pid("web");
    let w0 = s.running_pid("workers:workers_00");
    let w1 = s.running_pid("workers:workers_01");
    let answer = s.ctl(&["status"]);
    assert_eq!(answer.code, 3, "{answer:?}");
    let lines = answer.lines();
    assert_eq!(lines.len(), 4, "{answer:?}");
    assert_eq!(lines[0], status_line("idle", "STOPPED", "Not started"));
    for (line, name, pid) in [
        (lines[1], "web", web),
        (lines[2], "workers:workers_00", w0),
        (lines[3], "workers:workers_01", w1),
    ] {
        let prefix = status_line(name, "RUNNING", &format!("pid {pid}, uptime 0:00:"));
        assert!(line.starts_with(&prefix), "{line:?} is not {prefix:?}..");
        assert!(is_alive(pid), "{name}'s pid {pid} is not a live process");
    }
}

#[test]
fn status_exits_0_when_every_process_is_running() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n"
    ));
    s.running_pid("web");
    let answer = s.ctl(&["status", "web"]);
    assert_eq!(answer.code, 0, "{answer:?}");
    let nope = s.ctl(&["status", "nope"]);
    assert_eq!(nope.lines(), ["nope: ERROR (no such process)"], "{nope:?}");
    assert_eq!(nope.code, 4, "{nope:?}");
}

// ---- start, stop, restart, signal, pid -----------------------------------------------------

#[test]
fn start_runs_the_program_and_waits_until_it_is_running() {
    let mut s = Supervised::start_with(|sandbox| {
        let cmd = sleeper(sandbox, "web");
        format!("programs:\n  web:\n    cmd: {cmd}\n    autostart: false\n    starttime: 200ms\n")
    });
    s.expect(&["start", "web"], &["web: started"], 0);
    // Answered only once RUNNING: the child is up and the status says so at once.
    let pid = s.sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    s.daemon.track(pid);
    assert!(is_alive(pid));
    let status = s.status();
    assert_eq!(status[0].state, "RUNNING", "{status:?}");
    assert_eq!(status[0].pid(), Some(pid));
    s.expect(&["start", "web"], &["web: ERROR (already started)"], 0);
    s.expect(&["start", "nope"], &["nope: ERROR (no such process)"], 1);
}

#[test]
fn start_reports_missing_commands_and_abnormal_termination_as_supervisord_does() {
    let early_exit = fixture_cmd(&["exit", "1"]);
    let sandbox_file = tempfile::NamedTempFile::new().expect("a file that is not executable");
    let plain = sandbox_file.path().display();
    let s = Supervised::start(&format!(
        r#"
        programs:
          missing:
            cmd: /nonexistent/program
            autostart: false
            startretries: 0
          plain:
            cmd: {plain}
            autostart: false
            startretries: 0
          quitter:
            cmd: {early_exit}
            autostart: false
            starttime: 10
            startretries: 0
        "#
    ));
    // supervisord looks at the command before it spawns: NO_FILE, NOT_EXECUTABLE (exit 1).
    s.expect(&["start", "missing"], &["missing: ERROR (no such file)"], 1);
    s.expect(
        &["start", "plain"],
        &["plain: ERROR (file is not executable)"],
        1,
    );
    // supervisorctl's exit status for ABNORMAL_TERMINATION (and SPAWN_ERROR) is 7.
    s.expect(
        &["start", "quitter"],
        &["quitter: ERROR (abnormal termination)"],
        7,
    );
}

#[test]
fn stop_ends_the_process_and_answers_once_it_is_gone() {
    let mut s = Supervised::start_with(|sandbox| {
        let cmd = sleeper(sandbox, "web");
        format!("programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 2\n")
    });
    let pid = s.sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    s.daemon.track(pid);
    s.running_pid("web");
    s.expect(&["stop", "web"], &["web: stopped"], 0);
    // Answered after the exit: the child is gone already (reaped by taskmaster).
    assert!(
        !is_alive(pid),
        "pid {pid} still alive after `stop` answered"
    );
    assert_eq!(s.status()[0].state, "STOPPED");
    s.expect(&["stop", "web"], &["web: ERROR (not running)"], 0);
}

#[test]
fn restart_replaces_the_process_with_a_new_one() {
    let mut s = Supervised::start_with(|sandbox| {
        let cmd = sleeper(sandbox, "web");
        format!("programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 2\n")
    });
    let old = s.running_pid("web");
    s.expect(&["restart", "web"], &["web: stopped", "web: started"], 0);
    let new = s.running_pid("web");
    assert_ne!(old, new);
    wait_dead(old, TIMEOUT);
    assert!(is_alive(new));
}

#[test]
fn group_and_all_names_act_on_each_process() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  workers:\n    cmd: {cmd}\n    numprocs: 2\n    starttime: 0\n    stoptime: 2\n"
    ));
    s.running_pid("workers:workers_01");
    s.expect(
        &["stop", "workers:*"],
        &["workers:workers_00: stopped", "workers:workers_01: stopped"],
        0,
    );
    s.expect(
        &["start", "all"],
        &["workers:workers_00: started", "workers:workers_01: started"],
        0,
    );
    // As supervisord: a bare group name is a process name, and names no process here.
    s.expect(
        &["stop", "workers"],
        &["workers: ERROR (no such process)"],
        1,
    );
}

#[test]
fn signal_delivers_the_signal_to_the_process() {
    let cmd = fixture_cmd(&["on", "HUP", "exit", "42", "sleep", "forever"]);
    let idle = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    autorestart: never\n  idle:\n    cmd: {idle}\n    autostart: false\n"
    ));
    s.running_pid("web");
    s.expect(&["signal", "HUP", "web"], &["web: signalled"], 0);
    // The fixture exits 42 on SIGHUP: the signal reached it.
    s.daemon.wait_for_log("web: exited with code 42", TIMEOUT);
    s.expect(
        &["signal", "HUP", "idle"],
        &["idle: ERROR (not running)"],
        7,
    );
    s.expect(
        &["signal", "NOPE", "idle"],
        &["idle: ERROR (bad signal name)"],
        1,
    );
}

#[test]
fn pid_prints_taskmasters_pid_and_each_processs() {
    let idle = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start_with(|sandbox| {
        let cmd = sleeper(sandbox, "web");
        format!(
            "programs:\n  idle:\n    cmd: {idle}\n    autostart: false\n  web:\n    cmd: {cmd}\n    starttime: 0\n"
        )
    });
    let web = s.sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    s.daemon.track(web);
    s.running_pid("web");
    let daemon = s.daemon.daemon_pid().to_string();
    s.expect(&["pid"], &[daemon.as_str()], 0);
    s.expect(&["pid", "web"], &[web.to_string().as_str()], 0);
    s.expect(&["pid", "all"], &["0", web.to_string().as_str()], 0);
    // A process without a child has pid 0, which supervisorctl reports with status 7.
    s.expect(&["pid", "idle"], &["0"], 7);
    s.expect(&["pid", "nope"], &["No such process nope"], 1);
}

// ---- logs ---------------------------------------------------------------------------------

#[test]
fn tail_prints_the_end_of_stdout_or_stderr() {
    let cmd = fixture_cmd(&["lines", "500", "eprint", "oops", "sleep", "forever"]);
    let s = Supervised::start_with(|sandbox| {
        let (out, err) = (sandbox.file_str("web.out"), sandbox.file_str("web.err"));
        format!(
            "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stdout: {out}\n    stderr: {err}\n"
        )
    });
    s.sandbox
        .wait_for_contents("web.err", |t| t.contains("oops"), TIMEOUT);
    let tail = s.ctl(&["tail", "web"]);
    assert_eq!(tail.code, 0, "{tail:?}");
    // The last 1600 bytes: the end of the file, not its start.
    assert!(tail.stdout.contains("line 500\n"), "{tail:?}");
    assert!(!tail.stdout.contains("line 1\n"), "{tail:?}");
    assert!(tail.stdout.len() <= 1600 + 1, "{} bytes", tail.stdout.len());
    let stderr = s.ctl(&["tail", "web", "stderr"]);
    assert_eq!(stderr.stdout, "oops\n\n", "{stderr:?}");
    let nope = s.ctl(&["tail", "nope"]);
    assert_eq!(
        nope.lines(),
        ["nope: ERROR (no such process name)"],
        "{nope:?}"
    );
    // `tail -f` of an unknown process: /logtail answers 404, and supervisorctl says so.
    let nope = s.ctl(&["tail", "-f", "nope"]);
    assert!(
        nope.stderr.contains("Cannot read, status code 404"),
        "{nope:?}"
    );
}

#[test]
fn tail_f_streams_what_the_process_writes_next() {
    let cmd = fixture_cmd(&["print", "hello from a child", "sleep", "forever"]);
    let mut s = Supervised::start_with(|sandbox| {
        let out = sandbox.file_str("web.out");
        format!(
            "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 2\n    stdout: {out}\n"
        )
    });
    let first = s.running_pid("web");
    s.sandbox
        .wait_for_contents("web.out", |t| t.contains("hello"), TIMEOUT);
    let sink = File::create(s.sandbox.file("tail-f.out")).expect("create tail-f.out");
    let mut cmd = s.command(&["tail", "-f", "web"]);
    cmd.stdin(Stdio::null()).stdout(sink).stderr(Stdio::null());
    let mut tail = Process::spawn(cmd).graceful(Signal::INT);
    // What was there already: the last KiB.
    s.sandbox.wait_for_contents(
        "tail-f.out",
        |t| t.matches("hello from a child").count() == 1,
        TIMEOUT,
    );
    // The next child writes the same line again: tail -f shows it as it comes.
    s.expect(&["restart", "web"], &["web: stopped", "web: started"], 0);
    let second = s.running_pid("web");
    assert_ne!(first, second);
    s.sandbox.wait_for_contents(
        "tail-f.out",
        |t| t.matches("hello from a child").count() == 2,
        TIMEOUT,
    );
    assert!(tail.try_status().is_none(), "tail -f ended on its own");
    // Ctrl-C, by pid: supervisorctl leaves the tail.
    crate::support::send_signal(tail.pid(), Signal::INT).expect("SIGINT to supervisorctl");
    tail.wait_exit(TIMEOUT);
}

#[test]
fn clear_empties_the_log_files_of_a_running_process() {
    let cmd = fixture_cmd(&[
        "print",
        "to stdout",
        "eprint",
        "to stderr",
        "sleep",
        "forever",
    ]);
    let mut s = Supervised::start_with(|sandbox| {
        let (out, err) = (sandbox.file_str("web.out"), sandbox.file_str("web.err"));
        format!(
            "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stdout: {out}\n    stderr: {err}\n"
        )
    });
    s.sandbox
        .wait_for_contents("web.err", |t| t.contains("to stderr"), TIMEOUT);
    s.sandbox
        .wait_for_contents("web.out", |t| t.contains("to stdout"), TIMEOUT);
    let pid = s.running_pid("web");
    s.expect(&["clear", "web"], &["web: cleared"], 0);
    assert_eq!(s.sandbox.read("web.out"), "");
    assert_eq!(s.sandbox.read("web.err"), "");
    // Clearing does not touch the process.
    assert_eq!(s.running_pid("web"), pid);
    s.expect(&["clear", "nope"], &["nope: ERROR (no such process)"], 1);
}

#[test]
fn maintail_prints_the_end_of_the_event_log() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n"
    ));
    let pid = s.running_pid("web");
    let answer = s.ctl(&["maintail"]);
    assert_eq!(answer.code, 0, "{answer:?}");
    assert!(
        answer
            .stdout
            .contains(&format!("web: spawned with pid {pid}")),
        "{answer:?}"
    );
}

#[test]
fn maintail_f_streams_the_event_log() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 2\n"
    ));
    s.running_pid("web");
    let sink = File::create(s.sandbox.file("maintail.out")).expect("create maintail.out");
    let mut cmd = s.command(&["maintail", "-f"]);
    cmd.stdin(Stdio::null()).stdout(sink).stderr(Stdio::null());
    let mut tail = Process::spawn(cmd).graceful(Signal::INT);
    s.sandbox
        .wait_for_contents("maintail.out", |t| t.contains("web: RUNNING"), TIMEOUT);
    s.expect(&["stop", "web"], &["web: stopped"], 0);
    s.sandbox.wait_for_contents(
        "maintail.out",
        |t| t.contains("web: stop requested: sending TERM"),
        TIMEOUT,
    );
    crate::support::send_signal(tail.pid(), Signal::INT).expect("SIGINT to supervisorctl");
    tail.wait_exit(TIMEOUT);
}

// ---- configuration: reread, update, avail, add, remove -----------------------------------

/// The configuration the reread tests start with, and the one they edit it to: `web` changes,
/// `old` goes, `fresh` comes.
fn before_and_after(sandbox_cmd: &str) -> (String, String) {
    let before = format!(
        r#"
        programs:
          old:
            cmd: {sandbox_cmd}
            starttime: 0
            stoptime: 2
          web:
            cmd: {sandbox_cmd}
            starttime: 0
            stoptime: 2
        "#
    );
    let after = format!(
        r#"
        programs:
          fresh:
            cmd: {sandbox_cmd}
            starttime: 0
            stoptime: 2
          web:
            cmd: {sandbox_cmd}
            starttime: 0
            stoptime: 1
        "#
    );
    (before, after)
}

#[test]
fn reread_reports_the_differences_and_changes_nothing() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let (before, after) = before_and_after(&cmd);
    let mut s = Supervised::start(&before);
    let web = s.running_pid("web");
    let old = s.running_pid("old");
    s.expect(&["reread"], &["No config updates to processes"], 0);
    s.sandbox.write_config(&after);
    s.expect(
        &["reread"],
        &["fresh: available", "old: disappeared", "web: changed"],
        0,
    );
    // Nothing applied: the same processes run, and nothing new.
    let status = s.status();
    let names: Vec<&str> = status.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["old", "web"], "{status:?}");
    assert_eq!(status[0].pid(), Some(old));
    assert_eq!(status[1].pid(), Some(web));
}

#[test]
fn reread_refuses_a_configuration_with_errors() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let s = Supervised::start(&format!("programs:\n  web:\n    cmd: {cmd}\n"));
    s.sandbox
        .write_config("programs:\n  web:\n    cmd: x\n    stoptimee: 1\n");
    let answer = s.ctl(&["reread"]);
    assert_eq!(answer.code, 1, "{answer:?}");
    assert!(
        answer.stdout.starts_with("ERROR: CANT_REREAD: ") && answer.stdout.contains("stoptimee"),
        "{answer:?}"
    );
}

#[test]
fn update_applies_added_changed_and_removed_programs() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let (before, after) = before_and_after(&cmd);
    let mut s = Supervised::start(&before);
    let web = s.running_pid("web");
    let old = s.running_pid("old");
    s.sandbox.write_config(&after);
    s.expect(
        &["update"],
        &[
            "old: stopped",
            "old: removed process group",
            "web: stopped",
            "web: updated process group",
            "fresh: added process group",
        ],
        0,
    );
    wait_dead(old, TIMEOUT);
    wait_dead(web, TIMEOUT);
    let new_web = s.running_pid("web");
    let fresh = s.running_pid("fresh");
    assert!(is_alive(new_web) && is_alive(fresh));
    let names: Vec<String> = s.status().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["fresh", "web"]);
}

#[test]
fn avail_lists_processes_in_use_and_available_to_add() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let (before, after) = before_and_after(&cmd);
    let s = Supervised::start(&before);
    let row = |name: &str, in_use: &str| format!("{name:<32} {in_use:<9} {:<9} 999:999", "auto");
    s.expect(
        &["avail"],
        &[row("old", "in use").as_str(), row("web", "in use").as_str()],
        0,
    );
    s.sandbox.write_config(&after);
    s.expect(
        &["reread"],
        &["fresh: available", "old: disappeared", "web: changed"],
        0,
    );
    // supervisord lists the configuration it read last, each marked by whether it runs.
    s.expect(
        &["avail"],
        &[
            row("fresh", "avail").as_str(),
            row("web", "in use").as_str(),
        ],
        0,
    );
}

#[test]
fn add_and_remove_apply_one_program_of_the_reread_configuration() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let (before, after) = before_and_after(&cmd);
    let mut s = Supervised::start(&before);
    s.running_pid("old");
    s.sandbox.write_config(&after);
    s.expect(
        &["reread"],
        &["fresh: available", "old: disappeared", "web: changed"],
        0,
    );
    s.expect(&["add", "fresh"], &["fresh: added process group"], 0);
    let fresh = s.running_pid("fresh");
    assert!(is_alive(fresh));
    s.expect(
        &["add", "fresh"],
        &["ERROR: process group already active"],
        0,
    );
    s.expect(&["add", "nope"], &["ERROR: no such process/group: nope"], 1);
    s.expect(
        &["remove", "old"],
        &["ERROR: process/group still running: old"],
        1,
    );
    s.expect(&["stop", "old"], &["old: stopped"], 0);
    s.expect(&["remove", "old"], &["old: removed process group"], 0);
    let names: Vec<String> = s.status().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["fresh", "web"]);
}

// ---- the daemon ---------------------------------------------------------------------------

#[test]
fn shutdown_stops_every_process_and_taskmaster_exits_0() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n    stoptime: 2\n"
    ));
    let pid = s.running_pid("web");
    s.expect(&["shutdown"], &["Shut down"], 0);
    let status = s.daemon.wait_exit(TIMEOUT);
    assert!(status.success(), "taskmaster exited with {status}");
    assert!(!is_alive(pid), "web (pid {pid}) outlived taskmaster");
    assert!(!s.socket().exists(), "the socket is left behind");
}

#[test]
fn shutdown_with_nothing_running_still_answers() {
    // With no process to stop the daemon exits at once: the answer must get out first.
    let idle = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  idle:\n    cmd: {idle}\n    autostart: false\n"
    ));
    s.expect(&["shutdown"], &["Shut down"], 0);
    assert!(s.daemon.wait_exit(TIMEOUT).success());
}

#[test]
fn reload_restarts_every_process_on_the_file_as_it_is_now() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let (before, after) = before_and_after(&cmd);
    let mut s = Supervised::start(&before);
    let web = s.running_pid("web");
    s.sandbox.write_config(&after);
    s.expect(&["reload"], &["Restarted supervisord"], 0);
    // As supervisord restarting: every process stops, the file is read, autostart ones start.
    wait_dead(web, TIMEOUT);
    let fresh = s.running_pid("fresh");
    let new_web = s.running_pid("web");
    assert_ne!(web, new_web);
    assert!(is_alive(fresh) && is_alive(new_web));
    let names: Vec<String> = s.status().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["fresh", "web"]);
}

// ---- XML-RPC on the wire ------------------------------------------------------------------

/// POSTs `body` to `/RPC2` on the socket; returns the status line and the body.
fn post_rpc2(s: &Supervised, body: &str) -> (String, String) {
    let mut stream = UnixStream::connect(s.socket()).expect("connect to the socket");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    write!(
        stream,
        "POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

fn call(method: &str, params: &[&str]) -> String {
    let params: String = params
        .iter()
        .map(|p| format!("<param><value>{p}</value></param>"))
        .collect();
    format!(
        "<?xml version='1.0'?>\n<methodCall><methodName>{method}</methodName>\
         <params>{params}</params></methodCall>"
    )
}

/// The fault code and string in a fault answer; fails the test when it is none.
fn fault(body: &str) -> (i32, String) {
    let value_after = |name: &str| {
        let tail = body.split(&format!("<name>{name}</name>")).nth(1)?;
        let inner = tail.split("<value>").nth(1)?.split("</value>").next()?;
        Some(
            inner
                .trim_start_matches("<int>")
                .trim_end_matches("</int>")
                .trim_start_matches("<string>")
                .trim_end_matches("</string>")
                .to_string(),
        )
    };
    assert!(body.contains("<fault>"), "not a fault: {body}");
    let code = value_after("faultCode")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no faultCode in {body}"));
    let text = value_after("faultString").unwrap_or_else(|| panic!("no faultString in {body}"));
    (code, text)
}

/// The daemon still answers, and still supervises: `status` shows `web` running.
fn assert_unaffected(s: &mut Supervised, pid: u32) {
    assert_eq!(s.running_pid("web"), pid);
}

fn one_program() -> Supervised {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n"
    ))
}

#[test]
fn malformed_xml_gets_a_fault_and_the_daemon_carries_on() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    for body in ["", "not xml at all", "<methodCall><methodName>x", "<a></b>"] {
        let (status, answer) = post_rpc2(&s, body);
        assert_eq!(status, "HTTP/1.1 200 OK", "{body:?}: {answer}");
        let (code, text) = fault(&answer);
        assert_eq!(code, 2, "{body:?}: {text}");
        assert!(text.starts_with("INCORRECT_PARAMETERS: "), "{text}");
    }
    assert_unaffected(&mut s, pid);
}

#[test]
fn an_unknown_method_gets_unknown_method() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    for method in [
        "supervisor.nope",
        "nope.getPID",
        "supervisor._update",
        "a.b.c",
        "getPID",
    ] {
        let (_, answer) = post_rpc2(&s, &call(method, &[]));
        assert_eq!(
            fault(&answer),
            (1, "UNKNOWN_METHOD".to_string()),
            "{method}"
        );
    }
    assert_unaffected(&mut s, pid);
}

#[test]
fn wrong_parameters_get_supervisords_faults() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    let cases: [(&str, &[&str], i32, &str); 6] = [
        ("supervisor.getProcessInfo", &[], 2, "INCORRECT_PARAMETERS"),
        (
            "supervisor.getPID",
            &["<int>1</int>"],
            2,
            "INCORRECT_PARAMETERS",
        ),
        (
            "supervisor.getProcessInfo",
            &["<int>3</int>"],
            2,
            "INCORRECT_PARAMETERS: name must be a string, not an int",
        ),
        ("supervisor.getProcessInfo", &["nope"], 10, "BAD_NAME: nope"),
        (
            "supervisor.readProcessStdoutLog",
            &["web", "<int>0</int>", "<int>0</int>"],
            20,
            "NO_FILE",
        ),
        (
            "supervisor.signalProcess",
            &["web", "NOPE"],
            11,
            "BAD_SIGNAL: NOPE",
        ),
    ];
    for (method, params, code, text) in cases {
        let (_, answer) = post_rpc2(&s, &call(method, params));
        assert_eq!(
            fault(&answer),
            (code, text.to_string()),
            "{method} {params:?}"
        );
    }
    assert_unaffected(&mut s, pid);
}

#[test]
fn a_good_call_gets_supervisords_values() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    let (status, answer) = post_rpc2(&s, &call("supervisor.getProcessInfo", &["web"]));
    assert_eq!(status, "HTTP/1.1 200 OK");
    for member in [
        "<name>name</name>\n<value><string>web</string></value>".to_string(),
        "<name>group</name>\n<value><string>web</string></value>".to_string(),
        "<name>state</name>\n<value><int>20</int></value>".to_string(),
        "<name>statename</name>\n<value><string>RUNNING</string></value>".to_string(),
        format!("<name>pid</name>\n<value><int>{pid}</int></value>"),
    ] {
        assert!(answer.contains(&member), "no {member:?} in {answer}");
    }
    let (_, version) = post_rpc2(&s, &call("supervisor.getAPIVersion", &[]));
    assert!(version.contains("<string>3.0</string>"), "{version}");
    let (_, state) = post_rpc2(&s, &call("supervisor.getState", &[]));
    assert!(
        state.contains("<name>statecode</name>\n<value><int>1</int></value>")
            && state.contains("<string>RUNNING</string>"),
        "{state}"
    );
}

/// The values of an answer that carry no type element (bare text, which Go's clients refuse
/// where they expect an int, and Python's read as a string).
fn untyped_values(body: &str) -> Vec<String> {
    body.split("<value>")
        .skip(1)
        .filter(|value| !value.starts_with('<') || value.starts_with("</value>"))
        .map(|value| value.chars().take(40).collect())
        .collect()
}

#[test]
fn a_call_without_params_is_answered_with_every_value_typed() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    for method in [
        "supervisor.getAllProcessInfo",
        "supervisor.getAllConfigInfo",
        "supervisor.getState",
        "supervisor.getPID",
        "supervisor.getAPIVersion",
        "system.listMethods",
    ] {
        // As Go's clients send a call without parameters: no <params> at all.
        let body = format!(
            "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName></methodCall>"
        );
        let (status, answer) = post_rpc2(&s, &body);
        assert_eq!(status, "HTTP/1.1 200 OK", "{method}: {answer}");
        assert!(!answer.contains("<fault>"), "{method}: {answer}");
        assert!(answer.contains("<value>"), "{method}: {answer}");
        assert_eq!(
            untyped_values(&answer),
            Vec::<String>::new(),
            "{method}: {answer}"
        );
    }
    let (_, answer) = post_rpc2(&s, &call("supervisor.getAllProcessInfo", &[]));
    assert!(
        answer.contains(&format!(
            "<name>pid</name>\n<value><int>{pid}</int></value>"
        )),
        "{answer}"
    );
    let (_, sent) = post_rpc2(
        &s,
        &call(
            "supervisor.sendRemoteCommEvent",
            &["<string>t</string>", "<string>d</string>"],
        ),
    );
    assert!(
        sent.contains("<value><boolean>1</boolean></value>"),
        "{sent}"
    );
    assert_unaffected(&mut s, pid);
}

#[test]
fn a_shutdown_inside_a_multicall_shuts_down_after_answering() {
    let mut s = one_program();
    let pid = s.running_pid("web");
    let calls = "<array><data>\
        <value><struct><member><name>methodName</name><value>supervisor.getPID</value></member></struct></value>\
        <value><struct><member><name>methodName</name><value>supervisor.shutdown</value></member></struct></value>\
        <value><struct><member><name>methodName</name><value>supervisor.getPID</value></member></struct></value>\
        </data></array>";
    let (status, answer) = post_rpc2(&s, &call("system.multicall", &[calls]));
    assert_eq!(status, "HTTP/1.1 200 OK", "{answer}");
    // Each result in order: the pid, true, then SHUTDOWN_STATE as every call after a shutdown.
    let daemon = s.daemon.daemon_pid();
    let pid_at = answer.find(&format!("<value><int>{daemon}</int></value>"));
    let true_at = answer.find("<value><boolean>1</boolean></value>");
    let fault_at = answer.find("<value><string>SHUTDOWN_STATE</string></value>");
    assert!(
        pid_at.is_some() && pid_at < true_at && true_at < fault_at,
        "{answer}"
    );
    assert!(s.daemon.wait_exit(TIMEOUT).success());
    assert!(!is_alive(pid));
}

#[test]
fn names_are_read_as_supervisord_reads_them() {
    let cmd = fixture_cmd(&["sleep", "forever"]);
    let mut s = Supervised::start(&format!(
        "programs:\n  web:\n    cmd: {cmd}\n    starttime: 0\n  \
         workers:\n    cmd: {cmd}\n    numprocs: 2\n    starttime: 0\n"
    ));
    let pid = s.running_pid("web");
    s.running_pid("workers:workers_01");
    for name in ["web", "web:web", "workers:workers_01"] {
        let (_, answer) = post_rpc2(&s, &call("supervisor.getProcessInfo", &[name]));
        assert!(!answer.contains("<fault>"), "{name}: {answer}");
    }
    let (_, answer) = post_rpc2(&s, &call("supervisor.getProcessInfo", &["web:web"]));
    assert!(
        answer.contains("<name>name</name>\n<value><string>web</string></value>"),
        "{answer}"
    );
    // A bare group name is a process name; a process needs its group; a group is no process.
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "supervisor.getProcessInfo",
            &["workers"],
            "BAD_NAME: workers",
        ),
        (
            "supervisor.getProcessInfo",
            &["workers_00"],
            "BAD_NAME: workers_00",
        ),
        (
            "supervisor.getProcessInfo",
            &["workers:*"],
            "BAD_NAME: workers:*",
        ),
        (
            "supervisor.getProcessInfo",
            &["web:workers_00"],
            "BAD_NAME: web:workers_00",
        ),
        ("supervisor.stopProcess", &["nope:*"], "BAD_NAME: nope:*"),
        ("supervisor.stopProcessGroup", &["nope"], "BAD_NAME: nope"),
    ];
    for (method, params, text) in cases {
        let (_, answer) = post_rpc2(&s, &call(method, params));
        assert_eq!(
            fault(&answer),
            (10, text.to_string()),
            "{method} {params:?}"
        );
    }
    // `workers:` is the group, as `workers:*`: its processes run, so nothing is started.
    let (_, answer) = post_rpc2(&s, &call("supervisor.startProcess", &["workers:"]));
    assert!(
        answer.contains("<array>") && !answer.contains("<fault>"),
        "{answer}"
    );
    assert_unaffected(&mut s, pid);
}

// ---- over TCP -----------------------------------------------------------------------------

/// The same commands through the `http:` listener, with basic authentication.
#[test]
fn supervisorctl_works_the_same_over_tcp_with_basic_auth() {
    let mut s = Supervised::start_tcp(|sandbox| {
        format!(
            "programs:\n  web:\n    cmd: {}\n    starttime: 0\n    stdout: web.out\n",
            fixture_cmd(&[
                "print",
                "hello over tcp",
                "pidfile",
                &sandbox.file_str("web.pid"),
                "sleep",
                "forever"
            ])
        )
    });
    let first = s.running_pid("web");
    s.expect(&["stop", "web"], &["web: stopped"], 0);
    s.expect(&["start", "web"], &["web: started"], 0);
    let second = s.running_pid("web");
    assert_ne!(first, second);
    s.expect(&["restart", "web"], &["web: stopped", "web: started"], 0);
    let third = s.running_pid("web");
    s.expect(&["pid", "web"], &[third.to_string().as_str()], 0);
    s.expect(&["signal", "HUP", "web"], &["web: signalled"], 0);
    let tail = s.ctl(&["tail", "web"]);
    assert!(tail.stdout.contains("hello over tcp"), "{tail:?}");
    // Without the password: refused.
    let mut refused = Command::new(supervisorctl_bin());
    refused
        .arg("-c")
        .arg(s.sandbox.file("supervisorctl.conf"))
        .args(&s.server[..2])
        .arg("status")
        .env("HOME", s.sandbox.path());
    let output = run_to_completion(refused, TIMEOUT);
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("Server requires authentication"), "{text}");
    s.expect(&["shutdown"], &["Shut down"], 0);
    assert!(s.daemon.wait_exit(TIMEOUT).success());
}

// ---- supervisord's own files --------------------------------------------------------------

/// A program of the venv supervisorctl comes from (`echo_supervisord_conf`, `supervisord`).
fn venv_bin(name: &str) -> PathBuf {
    supervisorctl_bin().with_file_name(name)
}

/// taskmaster running a supervisord.conf of the sandbox, and supervisorctl reading the same
/// file (its `[supervisorctl]` section), as with supervisord.
struct FromConf {
    sandbox: Sandbox,
    daemon: Taskmaster,
    conf: PathBuf,
}

impl FromConf {
    fn start(sandbox: Sandbox, text: &str) -> FromConf {
        let conf = sandbox.file("supervisord.conf");
        std::fs::write(&conf, text).expect("write supervisord.conf");
        let mut cmd = Command::new(crate::support::taskmaster_bin());
        cmd.arg("run")
            .arg("-c")
            .arg(&conf)
            .arg("--no-shell")
            .current_dir(sandbox.path())
            .env("HOME", sandbox.path())
            .env("TMPDIR", sandbox.path());
        let daemon = Taskmaster::spawn(&sandbox, cmd);
        FromConf {
            sandbox,
            daemon,
            conf,
        }
    }

    /// `supervisorctl -c supervisord.conf ARGS...`, run to its end.
    fn ctl(&self, args: &[&str]) -> Answer {
        let mut cmd = Command::new(supervisorctl_bin());
        cmd.arg("-c")
            .arg(&self.conf)
            .args(args)
            .current_dir(self.sandbox.path())
            .env("HOME", self.sandbox.path());
        let output = run_to_completion(cmd, TIMEOUT);
        Answer {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Waits until `status NAME` says RUNNING.
    fn wait_running(&self, args: &[&str], name: &str) -> Answer {
        let mut last = None;
        let found = crate::support::wait_until_or_none(TIMEOUT, || {
            let mut all = args.to_vec();
            all.extend(["status", name]);
            let answer = self.ctl(&all);
            let running = answer.code == 0 && answer.stdout.contains("RUNNING");
            last = Some(answer);
            running.then(|| last.take()).flatten()
        });
        found.unwrap_or_else(|| {
            panic!(
                "{name} not RUNNING: {last:?}\n{}",
                self.daemon.diagnostics()
            )
        })
    }
}

/// A `[program:web]` that prints a line and sleeps, for a supervisord.conf.
fn web_program() -> String {
    format!(
        "[program:web]\ncommand={} print 'hello' sleep forever\nstartsecs=0\n",
        crate::support::shell_quote(crate::support::fixture_bin().to_str().expect("UTF-8 path"))
    )
}

#[test]
fn the_unix_socket_asks_for_the_username_and_password_of_unix_http_server() {
    let sandbox = Sandbox::new();
    let text = format!(
        "[unix_http_server]\nfile=%(here)s/sv.sock\nchmod=0700\nusername=admin\n\
         password={{SHA}}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n\n\
         [supervisord]\nlogfile=%(here)s/taskmaster.log\n\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
         [supervisorctl]\nserverurl=unix://%(here)s/sv.sock\n\n{}",
        web_program()
    );
    let s = FromConf::start(sandbox, &text);
    // The real supervisorctl, given -u and -p, as with supervisord.
    let credentials = ["-u", "admin", "-p", "thepassword"];
    s.wait_running(&credentials, "web");
    let mut pid = credentials.to_vec();
    pid.push("pid");
    let answer = s.ctl(&pid);
    assert_eq!(
        answer.stdout.trim(),
        s.daemon.daemon_pid().to_string(),
        "{answer:?}"
    );
    // Without them, or with a wrong password: refused.
    let refused = s.ctl(&["status"]);
    assert!(
        refused.stdout.contains("Server requires authentication"),
        "{refused:?}"
    );
    let wrong = s.ctl(&["-u", "admin", "-p", "wrong", "status"]);
    assert!(
        wrong.stdout.contains("Server requires authentication"),
        "{wrong:?}"
    );
    let mut shutdown = credentials.to_vec();
    shutdown.push("shutdown");
    assert_eq!(s.ctl(&shutdown).stdout.trim(), "Shut down");
    let mut daemon = s.daemon;
    assert!(daemon.wait_exit(TIMEOUT).success());
}

#[test]
fn get_identification_answers_the_identifier_supervisor_by_default() {
    let s = Supervised::start("identifier: shop-7\nprograms: {}\n");
    let (status, body) = post_rpc2(&s, &call("supervisor.getIdentification", &[]));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("<string>shop-7</string>"), "{body}");
    let s = Supervised::start("programs: {}\n");
    let (_, body) = post_rpc2(&s, &call("supervisor.getIdentification", &[]));
    assert!(body.contains("<string>supervisor</string>"), "{body}");
}

/// supervisord's own sample file, as `echo_supervisord_conf` prints it, passes `check` as it
/// is, and runs: with its `/tmp` paths moved into the sandbox and a program added, taskmaster
/// serves it and supervisorctl drives it through the file's `[supervisorctl]`.
#[test]
fn echo_supervisord_conf_passes_check_and_runs() {
    let sandbox = Sandbox::new();
    let echo = Command::new(venv_bin("echo_supervisord_conf"));
    let output = run_to_completion(echo, TIMEOUT);
    assert!(output.status.success(), "{output:?}");
    let sample = String::from_utf8(output.stdout).expect("UTF-8");
    let verbatim = sandbox.file("sample.conf");
    std::fs::write(&verbatim, &sample).expect("write");
    let mut check = Command::new(crate::support::taskmaster_bin());
    check.args(["check", "-c"]).arg(&verbatim);
    let checked = run_to_completion(check, TIMEOUT);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("valid (0 program(s)"),
        "{checked:?}"
    );
    // Its nodaemon=false is the one thing taskmaster does differently: it stays in the
    // foreground.
    assert!(stderr.contains("supervisord.nodaemon"), "{stderr}");

    let dir = format!("{}/", sandbox.path().display());
    let text = format!("{}\n{}", sample.replace("/tmp/", &dir), web_program());
    let s = FromConf::start(sandbox, &text);
    s.wait_running(&[], "web");
    let pidfile = s.sandbox.file("supervisord.pid");
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("the pid file"),
        format!("{}\n", s.daemon.daemon_pid())
    );
    let tail = s.ctl(&["tail", "web"]);
    assert!(tail.stdout.contains("hello"), "{tail:?}");
    assert_eq!(s.ctl(&["shutdown"]).stdout.trim(), "Shut down");
    let mut daemon = s.daemon;
    assert!(daemon.wait_exit(TIMEOUT).success());
    assert!(!pidfile.exists());
}
