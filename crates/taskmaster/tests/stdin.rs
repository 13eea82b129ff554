//! Input to a process: `stdin: pipe`, `taskmaster ctl sendstdin`, `POST .../stdin`, and
//! `taskmaster ctl attach` driven through a real pseudo-terminal.

use crate::support::unix_http;

use crate::support::{
    fixture_cmd, is_alive, send_signal, wait_until, PtySession, Sandbox, Taskmaster, ENTER, TIMEOUT,
};
use rustix::process::Signal;
use unix_http::Api;

/// `echo` copies its stdin to its stdout file (`echo.log`) line by line; `deaf` has a stdin
/// pipe it never reads; `plain` has the default stdin (/dev/null); `idle` is not started.
fn config(sandbox: &Sandbox) -> String {
    format!(
        "
        programs:
          echo:
            cmd: {echo}
            stdin: pipe
            stdout: {echo_log}
            starttime: 0
          deaf:
            cmd: {sleep}
            stdin: pipe
            starttime: 0
          plain:
            cmd: {sleep}
            starttime: 0
          idle:
            cmd: {sleep}
            stdin: pipe
            autostart: false
        ",
        echo = fixture_cmd(&["stdin-echo"]),
        echo_log = sandbox.file_str("echo.log"),
        sleep = fixture_cmd(&["sleep", "forever"]),
    )
}

/// The daemon, once `echo`, `deaf` and `plain` are RUNNING (their pids tracked), and a client
/// of its socket.
fn start(sandbox: &Sandbox, yaml: &str) -> (Taskmaster, Api) {
    sandbox.write_config(yaml);
    let mut tm = Taskmaster::start(sandbox, &[]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    for name in ["echo", "deaf", "plain"] {
        if yaml.contains(&format!("  {name}:")) {
            let pid = tm.wait_for_state(name, "RUNNING", TIMEOUT).pid();
            tm.track(pid.expect("a RUNNING process has a pid"));
        }
    }
    (tm, api)
}

/// `taskmaster ctl ARGS...` run to its end: exit code and stdout+stderr.
fn ctl(sandbox: &Sandbox, args: &[&str]) -> (i32, String) {
    let ran = sandbox.ctl(args);
    (ran.code.unwrap_or(-1), ran.output())
}

fn pid_of(api: &Api, name: &str) -> u32 {
    let pid = api.process(name)["pid"].as_u64().expect("a pid");
    u32::try_from(pid).expect("a pid fits")
}

#[test]
fn sendstdin_writes_a_line_to_the_process() {
    let sandbox = Sandbox::new();
    let (_tm, _api) = start(&sandbox, &config(&sandbox));
    assert_eq!(
        ctl(&sandbox, &["sendstdin", "echo", "hello", "world"]),
        (0, "echo: sent\n".to_string())
    );
    sandbox.wait_for_contents("echo.log", |text| text == "hello world\n", TIMEOUT);
    // -n: no newline; the next line completes it.
    assert_eq!(ctl(&sandbox, &["sendstdin", "-n", "echo", "abc"]).0, 0);
    assert_eq!(ctl(&sandbox, &["sendstdin", "echo", "def"]).0, 0);
    sandbox.wait_for_contents("echo.log", |text| text == "hello world\nabcdef\n", TIMEOUT);
}

#[test]
fn sendstdin_says_why_a_process_takes_no_input() {
    let sandbox = Sandbox::new();
    let (_tm, _api) = start(&sandbox, &config(&sandbox));
    let (code, text) = ctl(&sandbox, &["sendstdin", "plain", "x"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("plain: ERROR (no stdin: its stdin is not a pipe"),
        "{text}"
    );
    let (code, text) = ctl(&sandbox, &["sendstdin", "idle", "x"]);
    assert_eq!((code, text.as_str()), (3, "idle: ERROR (not running)\n"));
    let (code, text) = ctl(&sandbox, &["sendstdin", "nope", "x"]);
    assert_eq!(
        (code, text.as_str()),
        (3, "nope: ERROR (no such process)\n")
    );
    let (code, text) = ctl(&sandbox, &["sendstdin", "echo"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("usage: sendstdin"), "{text}");
}

#[test]
fn the_api_writes_the_body_as_it_is_binary_included() {
    let sandbox = Sandbox::new();
    let yaml = format!(
        "
        programs:
          cat:
            cmd: cat
            stdin: pipe
            stdout: {}
            starttime: 0
        ",
        sandbox.file_str("cat.out")
    );
    let (mut tm, api) = start(&sandbox, &yaml);
    let pid = tm.wait_for_state("cat", "RUNNING", TIMEOUT).pid();
    tm.track(pid.expect("a pid"));
    // Every byte value, NUL and invalid UTF-8 included, in two requests.
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    for half in bytes.chunks(256) {
        let answer = api.post_bytes("/v1/processes/cat/stdin", half);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["results"][0]["result"], "sent", "{answer:?}");
    }
    let file = sandbox.file("cat.out");
    wait_until("cat to copy every byte", TIMEOUT, || {
        (std::fs::read(&file).ok()? == bytes).then_some(())
    });
    let empty = api.post_bytes("/v1/processes/cat/stdin", b"");
    assert_eq!(empty.status, 400, "{empty:?}");
    assert!(empty.body.contains("the body is empty"), "{empty:?}");
}

#[test]
fn input_a_process_does_not_read_is_refused_past_a_mebibyte_and_nothing_waits() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let deaf = pid_of(&api, "deaf");
    // The pipe (64 KiB) and the queue (1 MiB) fill up; 40 pieces of 64 KiB are more than both.
    let piece = vec![b'x'; 32 * 1024];
    let mut refused = None;
    for sent in 0..80 {
        let answer = api.post_bytes("/v1/processes/deaf/stdin", &piece);
        assert_eq!(answer.status, 200, "{answer:?}");
        let result = &answer.json()["results"][0];
        if result["ok"] == false {
            refused = Some((sent, result["detail"].as_str().unwrap_or("").to_string()));
            break;
        }
    }
    let (sent, why) = refused.expect("input past the limit is refused");
    assert!(sent >= 32, "refused after {sent} pieces: {why}");
    assert!(why.contains("its stdin is full"), "{why}");
    // The daemon goes on answering, and the process is as it was.
    assert_eq!(api.process("deaf")["state"], "RUNNING");
    assert_eq!(pid_of(&api, "deaf"), deaf);
}

#[test]
fn a_process_that_closed_its_stdin_is_said_to_have_closed_it() {
    let sandbox = Sandbox::new();
    let yaml = "
        programs:
          closer:
            cmd: /bin/sh -c 'exec 0<&-; exec sleep 1000'
            stdin: pipe
            starttime: 0
        ";
    let (mut tm, api) = start(&sandbox, yaml);
    let pid = tm.wait_for_state("closer", "RUNNING", TIMEOUT).pid();
    tm.track(pid.expect("a pid"));
    // The first input may be queued before the write fails: ask until it is refused.
    let why = wait_until("input to be refused", TIMEOUT, || {
        let answer = api.post_bytes("/v1/processes/closer/stdin", b"hello\n");
        let result = answer.json()["results"][0].clone();
        (result["ok"] == false).then(|| result["detail"].as_str().unwrap_or("").to_string())
    });
    assert_eq!(why, "the process closed its stdin");
}

#[test]
fn xml_rpc_send_process_stdin_writes_or_faults_like_supervisord() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let call = |name: &str, chars: &str| {
        let body = format!(
            "<?xml version='1.0'?><methodCall><methodName>supervisor.sendProcessStdin\
             </methodName><params><param><value><string>{name}</string></value></param>\
             <param><value><string>{chars}</string></value></param></params></methodCall>"
        );
        let answer = api.post_bytes("/RPC2", body.as_bytes());
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body
    };
    let answer = call("echo", "over xml-rpc\n");
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    sandbox.wait_for_contents("echo.log", |text| text == "over xml-rpc\n", TIMEOUT);
    let answer = call("plain", "x");
    assert!(
        answer.contains("<int>20</int>"),
        "NO_FILE expected: {answer}"
    );
    let answer = call("idle", "x");
    assert!(
        answer.contains("<int>70</int>"),
        "NOT_RUNNING expected: {answer}"
    );
    let answer = call("nope", "x");
    assert!(
        answer.contains("<int>10</int>"),
        "BAD_NAME expected: {answer}"
    );
}

// ---- attach, on a terminal ----------------------------------------------------------------

/// `taskmaster ctl attach NAME` on a new terminal, once it says it is attached.
fn attach(sandbox: &Sandbox, name: &str) -> PtySession {
    let session = PtySession::spawn(sandbox.ctl_command(&["attach", name]));
    session.wait_for_screen(|s| s.contains(&format!("attached to {name}")), TIMEOUT);
    session
}

#[test]
fn attach_shows_output_sends_lines_and_detaches_with_ctrl_bracket() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let echo = pid_of(&api, "echo");
    let mut session = attach(&sandbox, "echo");
    // What is typed shows once (the terminal's echo), and once more as echo's output.
    session.send(format!("typed here{ENTER}"));
    session.wait_for_screen(|s| s.matches("typed here").count() == 2, TIMEOUT);
    sandbox.wait_for_contents("echo.log", |text| text == "typed here\n", TIMEOUT);
    // Output that does not come from typing shows too.
    assert_eq!(ctl(&sandbox, &["sendstdin", "echo", "from elsewhere"]).0, 0);
    session.wait_for_screen(|s| s.contains("from elsewhere"), TIMEOUT);
    // A line left unfinished at Ctrl-] is not sent.
    session.send("unfinished\x1d");
    session.wait_for_screen(
        |s| s.contains("detached from echo; it keeps running"),
        TIMEOUT,
    );
    assert!(session.wait_exit(TIMEOUT).success());
    assert_eq!(pid_of(&api, "echo"), echo);
    assert!(is_alive(echo));
    assert_eq!(ctl(&sandbox, &["sendstdin", "echo", "after"]).0, 0);
    sandbox.wait_for_contents(
        "echo.log",
        |text| text == "typed here\nfrom elsewhere\nafter\n",
        TIMEOUT,
    );
}

#[test]
fn ctrl_c_detaches_and_leaves_the_process_running() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let echo = pid_of(&api, "echo");
    let mut session = attach(&sandbox, "echo");
    session.send("\x03");
    session.wait_for_screen(|s| s.contains("detached from echo"), TIMEOUT);
    assert!(session.wait_exit(TIMEOUT).success());
    assert_eq!(api.process("echo")["state"], "RUNNING");
    assert_eq!(pid_of(&api, "echo"), echo);
}

#[test]
fn attach_ends_when_the_process_exits() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let echo = pid_of(&api, "echo");
    let mut session = attach(&sandbox, "echo");
    send_signal(echo, Signal::KILL).expect("kill echo");
    session.wait_for_screen(
        |s| s.contains(&format!("echo (pid {echo}) exited; detached")),
        TIMEOUT,
    );
    assert!(session.wait_exit(TIMEOUT).success());
}

#[test]
fn attach_shows_both_streams_and_says_once_when_input_is_not_taken() {
    let sandbox = Sandbox::new();
    let yaml = format!(
        "
        programs:
          talker:
            cmd: {}
            stdout: {}
            stderr: {}
            starttime: 0
        ",
        fixture_cmd(&["sleep", "forever"]),
        sandbox.file_str("talker.out"),
        sandbox.file_str("talker.err"),
    );
    let (mut tm, _api) = start(&sandbox, &yaml);
    let pid = tm.wait_for_state("talker", "RUNNING", TIMEOUT).pid();
    tm.track(pid.expect("a pid"));
    let mut session = attach(&sandbox, "talker");
    // Written to the files as a process would: both streams show.
    append(&sandbox, "talker.out", "to stdout\n");
    append(&sandbox, "talker.err", "to stderr\n");
    session.wait_for_screen(
        |s| s.contains("to stdout") && s.contains("to stderr"),
        TIMEOUT,
    );
    session.send(format!("one{ENTER}"));
    session.send(format!("two{ENTER}"));
    session.wait_for_screen(|s| s.contains("two"), TIMEOUT);
    let screen = session.wait_for_screen(|s| s.contains("input is not sent to talker"), TIMEOUT);
    assert_eq!(screen.matches("input is not sent").count(), 1, "{screen}");
    assert!(screen.contains("its stdin is not a pipe"), "{screen}");
    session.send("\x1d");
    assert!(session.wait_exit(TIMEOUT).success());
}

#[test]
fn attach_to_a_stopped_or_unknown_process_is_an_error() {
    let sandbox = Sandbox::new();
    let (_tm, _api) = start(&sandbox, &config(&sandbox));
    let (code, text) = ctl(&sandbox, &["attach", "idle"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("idle is not running"), "{text}");
    let (code, text) = ctl(&sandbox, &["attach", "nope"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no single process named nope"), "{text}");
}

fn append(sandbox: &Sandbox, name: &str, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(sandbox.file(name))
        .expect("open to append");
    file.write_all(text.as_bytes()).expect("append");
}

#[test]
fn attach_in_ctls_shell_returns_to_its_prompt() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(&sandbox, &config(&sandbox));
    let echo = pid_of(&api, "echo");
    let mut session = PtySession::spawn(sandbox.ctl_command(&[]));
    session.wait_for_screen(|s| s.contains("taskmaster> "), TIMEOUT);
    session.send(format!("attach echo{ENTER}"));
    session.wait_for_screen(|s| s.contains("attached to echo"), TIMEOUT);
    session.send(format!("in the shell{ENTER}"));
    session.wait_for_screen(|s| s.matches("in the shell").count() == 2, TIMEOUT);
    session.send("\x1d");
    session.wait_for_screen(|s| s.contains("detached from echo"), TIMEOUT);
    // The shell has its terminal back: a command typed now is the shell's, not echo's.
    session.send(format!("pid echo{ENTER}"));
    session.wait_for_screen(|s| s.contains(&format!("\n{echo}")), TIMEOUT);
    sandbox.wait_for_contents("echo.log", |text| text == "in the shell\n", TIMEOUT);
    session.send(format!("quit{ENTER}"));
    assert!(session.wait_exit(TIMEOUT).success());
}
