//! The test fixture and harness, proven on their own, without taskmaster: if these fail, no
//! other integration test's result means anything.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use crate::support::*;
use rustix::process::Signal;

/// The fixture with `args`, in its own process group (as a supervisor starts it), its output
/// discarded.
fn fixture(args: &[&str]) -> Command {
    let mut cmd = Command::new(fixture_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    cmd
}

#[test]
fn fixture_report_lists_process_attributes_and_environment() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let mut cmd = fixture(&["report", &report]);
    cmd.current_dir(sandbox.path()).env("TM_PROBE", "42=yes");
    let mut fixture = Process::spawn(cmd);
    assert!(fixture.wait_exit(TIMEOUT).success());

    let report = read_report(&sandbox.file("report"));
    for key in [
        "pid", "ppid", "pgid", "sid", "cwd", "umask", "fds", "sigblk", "sigign",
    ] {
        assert!(report.contains_key(key), "no {key} in {report:?}");
    }
    assert_eq!(report["pid"], fixture.pid().to_string());
    assert_eq!(report["pgid"], fixture.pid().to_string());
    assert_eq!(report["ppid"], std::process::id().to_string());
    let cwd = sandbox
        .path()
        .canonicalize()
        .expect("canonical sandbox path");
    assert_eq!(report["cwd"], cwd.to_str().expect("UTF-8 sandbox path"));
    assert!(
        report["umask"].len() == 4 && report["umask"].chars().all(|c| c.is_digit(8)),
        "umask {:?}",
        report["umask"]
    );
    assert!(
        report["fds"].starts_with("0,1,2"),
        "fds {:?}",
        report["fds"]
    );
    assert_eq!(signals_in_mask(&report["sigblk"]), Vec::<i32>::new());
    let ignored = signals_in_mask(&report["sigign"]);
    assert!(
        ignored.iter().all(|&n| n >= 32),
        "a fixture started by std's Command ignores no classic signal, not even SIGPIPE: \
         {ignored:?}"
    );
    assert_eq!(report["env.TM_PROBE"], "42=yes");
}

#[test]
fn fixture_report_tells_ignored_signals_and_umask() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let mut cmd = fixture(&["ignore", "TERM", "ignore", "SIGUSR1", "report", &report]);
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o027));
            Ok(())
        });
    }
    let mut fixture = Process::spawn(cmd);
    assert!(fixture.wait_exit(TIMEOUT).success());

    let report = read_report(&sandbox.file("report"));
    let ignored: Vec<i32> = signals_in_mask(&report["sigign"])
        .into_iter()
        .filter(|&n| n < 32)
        .collect();
    assert_eq!(ignored, [Signal::USR1.as_raw(), Signal::TERM.as_raw()]);
    assert_eq!(report["umask"], "0027");
}

#[test]
fn fixture_on_term_exit_7_exits_7_on_sigterm() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("pid");
    let mut fixture = Process::spawn(fixture(&[
        "on", "TERM", "exit", "7", "pidfile", &pidfile, "sleep", "forever",
    ]));
    // The pid file is written after the handler is in place.
    assert_eq!(sandbox.wait_for_pidfile("pid", TIMEOUT), fixture.pid());

    send_signal(fixture.pid(), Signal::TERM).expect("send SIGTERM");
    assert_eq!(fixture.wait_exit(TIMEOUT).code(), Some(7));
}

#[test]
fn fixture_ignore_term_survives_sigterm() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("pid");
    let mut fixture = Process::spawn(fixture(&[
        "ignore", "TERM", "on", "USR1", "exit", "9", "pidfile", &pidfile, "sleep", "forever",
    ]));
    sandbox.wait_for_pidfile("pid", TIMEOUT);

    // An ignored signal is discarded when sent; a fatal one would end the process before the
    // next signal could be delivered. So exit 9 (from USR1) proves SIGTERM did nothing.
    send_signal(fixture.pid(), Signal::TERM).expect("send SIGTERM");
    assert!(is_alive(fixture.pid()));
    send_signal(fixture.pid(), Signal::USR1).expect("send SIGUSR1");
    let status = fixture.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(9), "{status}");
}

#[test]
fn fixture_grandchild_stays_in_the_process_group() {
    let sandbox = Sandbox::new();
    let (pidfile, grandchild_pidfile) = (sandbox.file_str("pid"), sandbox.file_str("gpid"));
    let mut fixture = Process::spawn(fixture(&[
        "grandchild",
        &grandchild_pidfile,
        "pidfile",
        &pidfile,
        "sleep",
        "forever",
    ]));
    let parent = sandbox.wait_for_pidfile("pid", TIMEOUT);
    let grandchild = sandbox.wait_for_pidfile("gpid", TIMEOUT);
    fixture.track(grandchild);

    assert_eq!(parent, fixture.pid());
    assert!(is_alive(grandchild));
    let stat = proc_stat(grandchild).expect("grandchild in /proc");
    assert_eq!(stat.ppid, parent);
    assert_eq!(stat.pgid, parent, "the fixture leads its own group");
    assert_eq!(descendants(parent), vec![grandchild]);

    send_signal(grandchild, Signal::KILL).expect("kill the grandchild");
    send_signal(parent, Signal::KILL).expect("kill the fixture");
    wait_dead(grandchild, TIMEOUT);
    assert_eq!(
        fixture.wait_exit(TIMEOUT).signal(),
        Some(Signal::KILL.as_raw())
    );
}

#[test]
fn fixture_spew_1m_writes_exactly_one_mebibyte() {
    let sandbox = Sandbox::new();
    let out = File::create(sandbox.file("out")).expect("create the output file");
    let mut cmd = fixture(&["spew", "1M"]);
    cmd.stdout(out);
    assert!(Process::spawn(cmd).wait_exit(TIMEOUT).success());

    let written = sandbox.read("out");
    assert_eq!(written.len(), 1 << 20);
    assert!(written.lines().all(|line| line.len() == 63));
}

#[test]
fn fixture_prints_lines_and_rejects_unknown_steps() {
    let output = run_to_completion(
        fixture(&[
            "print", "hello", "eprint", "oops", "lines", "3", "exit", "4",
        ]),
        TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(output.stdout, b"hello\nline 1\nline 2\nline 3\n");
    assert_eq!(output.stderr, b"oops\n");

    let output = run_to_completion(fixture(&["print", "never", "frobnicate"]), TIMEOUT);
    assert_eq!(output.status.code(), Some(100));
    assert_eq!(
        output.stdout, b"",
        "arguments are checked before any step runs"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown step `frobnicate`"), "{stderr}");
}

#[test]
fn fixture_stdin_echo_copies_lines_until_eof() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.file("in"), "one\ntwo\n").expect("write the input");
    let mut cmd = fixture(&["stdin-echo", "print", "eof"]);
    cmd.stdin(File::open(sandbox.file("in")).expect("open the input"))
        .stdout(File::create(sandbox.file("out")).expect("create the output file"));
    assert!(Process::spawn(cmd).wait_exit(TIMEOUT).success());
    let out = sandbox.wait_for_contents("out", |text| text.ends_with("eof\n"), TIMEOUT);
    assert_eq!(out, "one\ntwo\neof\n");
}

#[test]
fn fixture_raise_segv_dies_of_segv_and_stamp_appends() {
    let sandbox = Sandbox::new();
    let stamps = sandbox.file_str("stamps");
    let mut cmd = fixture(&["stamp", &stamps, "stamp", &stamps, "raise", "SEGV"]);
    cmd.stderr(Stdio::null());
    let status = Process::spawn(cmd).wait_exit(TIMEOUT);
    assert_eq!(status.signal(), Some(Signal::SEGV.as_raw()), "{status}");

    let stamps: Vec<u128> = sandbox
        .read("stamps")
        .lines()
        .map(|line| line.parse().expect("a stamp is a number"))
        .collect();
    assert_eq!(stamps.len(), 2);
    assert!(stamps[0] <= stamps[1]);
}

#[test]
fn pty_session_shows_typed_text_and_command_output() {
    let mut cmd = Command::new("/bin/sh");
    cmd.env("PS1", "$ ");
    let mut session = PtySession::spawn(cmd);
    let leader = proc_stat(session.pid()).expect("shell in /proc");
    assert_eq!(
        leader.sid,
        session.pid(),
        "the command leads its own session"
    );
    session.wait_for_screen(|s| s.starts_with("$ "), TIMEOUT);

    session.send_line("echo tm-$((6 * 7))");
    let screen = session.wait_for_screen(|s| s.lines().any(|l| l == "tm-42"), TIMEOUT);
    assert!(
        screen.starts_with("$ echo tm-$((6 * 7))\n"),
        "typed text echoed:\n{screen}"
    );

    session.send_line("test -t 0 && tty");
    session.wait_for_screen(|s| s.contains("\n/dev/pts/"), TIMEOUT);
    session.send_line("exit 3");
    assert_eq!(session.wait_exit(TIMEOUT).code(), Some(3));
}

#[test]
fn pty_session_answers_cursor_position_requests() {
    // Moves the cursor to row 3, column 5, asks where it is, and shows the answer with ESC
    // spelled `E`.
    let script = r#"stty raw -echo
printf '\033[2J\033[3;5H\033[6n'
answer=$(dd bs=1 count=6 2>/dev/null)
stty sane
printf '\r\n%s\r\n' "$answer" | tr '\033' E"#;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    let mut session = PtySession::spawn(cmd);
    session.wait_for_screen(|s| s.contains("E[3;5R"), TIMEOUT);
    assert!(session.wait_exit(TIMEOUT).success());
}

#[test]
fn dropping_a_pty_session_kills_its_whole_tree() {
    let sandbox = Sandbox::new();
    let script = format!(
        "{} grandchild {} pidfile {} sleep forever &\nwait",
        shell_quote(fixture_bin().to_str().expect("UTF-8 fixture path")),
        shell_quote(&sandbox.file_str("gpid")),
        shell_quote(&sandbox.file_str("pid")),
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    let session = PtySession::spawn(cmd);
    let shell = session.pid();
    let fixture = sandbox.wait_for_pidfile("pid", TIMEOUT);
    let grandchild = sandbox.wait_for_pidfile("gpid", TIMEOUT);
    assert!(is_alive(fixture) && is_alive(grandchild));

    drop(session);
    for pid in [shell, fixture, grandchild] {
        wait_dead(pid, TIMEOUT);
    }
}

/// A stand-in for taskmaster that speaks the contract of its shell on pipes, to test
/// [`Taskmaster`] itself: it starts one fixture (`web`) and answers `pid`, `status`, `pid web`
/// and `shutdown`, logging to the event log.
fn fake_daemon(sandbox: &Sandbox, stop_child_on_shutdown: bool) -> Command {
    let script = format!(
        r#"log={log}
{fixture} sleep forever &
child=$!
echo "2026-01-01 00:00:00.000 web: spawned with pid $child" >> "$log"
row() {{ printf '%-33s%-10s%s\n' "$1" "$2" "$3"; }}
while IFS= read -r line; do
  case "$line" in
    pid) echo $$ ;;
    "pid web") echo $child ;;
    "pid workers:workers_00") echo 0 ;;
    "status web") row web RUNNING "pid $child, uptime 0:00:01" ;;
    status)
      row web RUNNING "pid $child, uptime 0:00:01"
      row workers:workers_00 STOPPED "Not started" ;;
    shutdown) {stop} echo "Shut down"; exit 0 ;;
    *) echo "$line: unknown command" ;;
  esac
done"#,
        log = shell_quote(sandbox.logfile().to_str().expect("UTF-8 log path")),
        fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 fixture path")),
        stop = if stop_child_on_shutdown {
            r#"kill $child; wait $child;"#
        } else {
            ""
        },
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).current_dir(sandbox.path());
    cmd
}

#[test]
fn taskmaster_harness_reads_commands_status_pids_and_log() {
    let sandbox = Sandbox::new();
    let mut daemon = Taskmaster::spawn(&sandbox, fake_daemon(&sandbox, true));

    let spawned = daemon.wait_for_log("web: spawned with pid", TIMEOUT);
    let web = daemon.pid("web").expect("web runs");
    assert!(spawned.ends_with(&format!("pid {web}")), "{spawned}");
    assert!(is_alive(web));
    assert_eq!(daemon.pid("workers:workers_00"), None);

    let status = daemon.wait_for_state("web", "RUNNING", TIMEOUT);
    assert_eq!(status.pid(), Some(web));
    assert_eq!(status.description, format!("pid {web}, uptime 0:00:01"));

    let all = daemon.status_all();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].name, "workers:workers_00");
    assert_eq!(all[1].state, "STOPPED");
    assert_eq!(all[1].description, "Not started");

    let answer = daemon.command("frobnicate", 1);
    assert_eq!(answer, ["frobnicate: unknown command"]);
    assert_eq!(daemon.command_all("pid web"), [web.to_string()]);

    assert!(daemon.shutdown().success());
    wait_dead(web, TIMEOUT);
}

#[test]
fn dropping_taskmaster_kills_the_children_it_left_behind() {
    let sandbox = Sandbox::new();
    let mut daemon = Taskmaster::spawn(&sandbox, fake_daemon(&sandbox, false));
    let web = daemon.pid("web").expect("web runs");
    daemon.shutdown();
    assert!(is_alive(web), "the fake daemon leaves web running");

    drop(daemon);
    wait_dead(web, TIMEOUT);
}

#[test]
fn status_lines_parse_names_states_and_pids() {
    let line = format!(
        "{:<33}{:<10}{}",
        "web", "RUNNING", "pid 4242, uptime 0:01:02"
    );
    let status = StatusLine::parse(&line).expect("a status line");
    assert_eq!(
        (status.name.as_str(), status.state.as_str(), status.pid()),
        ("web", "RUNNING", Some(4242))
    );

    let long_name = "a_program_name_of_exactly_33_char";
    let line = format!("{:<33}{:<10}{}", long_name, "FATAL", "Exited too quickly");
    let status = StatusLine::parse_named(long_name, &line).expect("a status line");
    assert_eq!(status.state, "FATAL");
    assert_eq!(status.description, "Exited too quickly");
    assert_eq!(status.pid(), None);

    assert_eq!(
        StatusLine::parse_named("foo", "foo: ERROR (no such process)"),
        None
    );
}

#[test]
fn fixture_cmd_quotes_for_yaml_and_shell() {
    let cmd = fixture_cmd(&["print", "it's \"here\"", "sleep", "0.5"]);
    let fixture = fixture_bin();
    assert_eq!(
        cmd,
        format!(
            r#""{} print 'it'\\''s \"here\"' sleep 0.5""#,
            fixture.display()
        )
    );
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "
        programs:
          web:
            cmd: x
        ",
    );
    let text = std::fs::read_to_string(config).expect("read the config back");
    assert_eq!(
        text,
        format!(
            "logfile: \"{}\"\nprograms:\n  web:\n    cmd: x\n",
            sandbox.logfile().display()
        )
    );
}
