//! `stdout: syslog` and `stderr: syslog`: each line a child writes is one datagram on the
//! syslog socket (here a private one, `syslog_socket:`), in glibc's format with the process's
//! name and pid as tag; a missing socket costs the lines, never the program, and is said once.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    config, fixture_cmd, program, run_to_completion, send_signal, shell_quote, wait_until,
    yaml_quote, Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;

/// More than the longest datagram taskmaster sends (a 64 KiB piece of a line and its header).
const DATAGRAM_ROOM: usize = 128 * 1024;

/// A syslog of our own: a datagram socket bound at `path`.
fn syslog_at(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).expect("bind the test's syslog socket");
    socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("a read timeout");
    socket
}

/// One datagram as glibc's syslog(3) writes it: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE`.
#[derive(Debug)]
struct Datagram {
    priority: u8,
    tag: String,
    pid: u32,
    message: Vec<u8>,
}

impl Datagram {
    fn parse(bytes: &[u8]) -> Datagram {
        let rest = bytes
            .strip_prefix(b"<")
            .unwrap_or_else(|| not_a_datagram(bytes));
        let close = rest
            .iter()
            .position(|&b| b == b'>')
            .unwrap_or_else(|| not_a_datagram(bytes));
        let priority = std::str::from_utf8(&rest[..close])
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| not_a_datagram(bytes));
        let rest = &rest[close + 1..];
        // `Mmm dd hh:mm:ss `: a month's abbreviation, the day padded with a space.
        let stamp = std::str::from_utf8(rest.get(..16).unwrap_or_else(|| not_a_datagram(bytes)))
            .unwrap_or_else(|_| not_a_datagram(bytes));
        let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
        assert!(
            months.contains(&stamp[..3]) && stamp.as_bytes()[3] == b' ',
            "timestamp {stamp:?}"
        );
        let digits = |at: std::ops::Range<usize>| stamp[at].trim_start().parse::<u32>().is_ok();
        assert!(
            digits(4..6) && digits(7..9) && digits(10..12) && digits(13..15),
            "timestamp {stamp:?}"
        );
        let rest = &rest[16..];
        let colon = rest
            .windows(2)
            .position(|w| w == b": ")
            .unwrap_or_else(|| not_a_datagram(bytes));
        let head = std::str::from_utf8(&rest[..colon]).unwrap_or_else(|_| not_a_datagram(bytes));
        let (tag, pid) = head
            .strip_suffix(']')
            .and_then(|head| head.split_once('['))
            .unwrap_or_else(|| not_a_datagram(bytes));
        Datagram {
            priority,
            tag: tag.to_string(),
            pid: pid.parse().unwrap_or_else(|_| not_a_datagram(bytes)),
            message: rest[colon + 2..].to_vec(),
        }
    }
}

fn not_a_datagram(bytes: &[u8]) -> ! {
    panic!(
        "not a syslog datagram: {:?}",
        String::from_utf8_lossy(bytes)
    )
}

/// The next `count` datagrams from `syslog`.
fn receive(syslog: &UnixDatagram, count: usize) -> Vec<Datagram> {
    let mut buffer = vec![0u8; DATAGRAM_ROOM];
    (0..count)
        .map(|i| match syslog.recv(&mut buffer) {
            Ok(read) => Datagram::parse(&buffer[..read]),
            Err(e) => panic!("datagram {i} of {count} did not come: {e}"),
        })
        .collect()
}

/// `syslog_socket: PATH` and the programs.
fn config_with_socket(socket: &Path, programs: &[String]) -> String {
    let socket = socket.to_str().expect("sandbox paths are UTF-8");
    format!(
        "syslog_socket: {}\n{}",
        yaml_quote(socket),
        config(programs)
    )
}

/// `sh -c SCRIPT` as a YAML `cmd:` value.
fn shell(script: &str) -> String {
    yaml_quote(&format!("sh -c {}", shell_quote(script)))
}

/// Facility user with severity info (stdout) and err (stderr).
const INFO: u8 = 8 + 6;
const ERR: u8 = 8 + 3;

#[test]
fn each_line_is_one_datagram_tagged_with_the_process_and_its_pid() {
    let sandbox = Sandbox::new();
    let syslog = syslog_at(&sandbox.file("log.sock"));
    let pidfile = sandbox.file_str("chatty.pid");
    // A long line (more than a datagram piece), then a last line with no newline, each stream.
    let script = format!(
        "echo $$ > {pid}.tmp && mv {pid}.tmp {pid}; echo one; echo two; echo 'err one' >&2; \
         head -c 70000 /dev/zero | tr '\\0' x; echo; printf 'no newline'; printf 'err last' >&2",
        pid = shell_quote(&pidfile)
    );
    sandbox.write_config(&config_with_socket(
        &sandbox.file("log.sock"),
        &[program(
            "chatty",
            &shell(&script),
            &[
                "starttime: 0",
                "autorestart: never",
                "stdout: syslog",
                "stderr: SYSLOG",
            ],
        )],
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let datagrams = receive(&syslog, 7);
    let pid = sandbox.wait_for_pidfile("chatty.pid", TIMEOUT);
    tm.wait_for_state("chatty", "EXITED", TIMEOUT);

    for datagram in &datagrams {
        assert_eq!(
            (datagram.tag.as_str(), datagram.pid),
            ("chatty", pid),
            "{datagram:?}"
        );
    }
    let messages = |priority: u8| -> Vec<Vec<u8>> {
        datagrams
            .iter()
            .filter(|d| d.priority == priority)
            .map(|d| d.message.clone())
            .collect()
    };
    // In order within each stream; a line past 64 KiB comes in pieces.
    let stdout = messages(INFO);
    let expected: Vec<Vec<u8>> = vec![
        b"one".to_vec(),
        b"two".to_vec(),
        vec![b'x'; 64 * 1024],
        vec![b'x'; 70000 - 64 * 1024],
        b"no newline".to_vec(),
    ];
    assert!(
        stdout == expected,
        "stdout's datagrams: {:?}",
        stdout
            .iter()
            .map(|m| (
                m.len(),
                String::from_utf8_lossy(&m[..m.len().min(12)]).into_owned()
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(messages(ERR), [b"err one".to_vec(), b"err last".to_vec()]);
    // Nothing was dropped, so nothing was said.
    let log = std::fs::read_to_string(sandbox.logfile()).expect("the event log");
    assert!(!log.contains("syslog:"), "{log}");
}

#[test]
fn stdout_syslog_true_sends_the_lines_and_keeps_the_file() {
    let sandbox = Sandbox::new();
    let syslog = syslog_at(&sandbox.file("log.sock"));
    sandbox.write_config(&config_with_socket(
        &sandbox.file("log.sock"),
        &[program(
            "both",
            &fixture_cmd(&["lines", "3", "sleep", "forever"]),
            &["starttime: 0", "stdout: both.out", "stdout_syslog: true"],
        )],
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm
        .wait_for_state("both", "RUNNING", TIMEOUT)
        .pid()
        .expect("both's pid");
    let datagrams = receive(&syslog, 3);
    let lines: Vec<&[u8]> = datagrams.iter().map(|d| d.message.as_slice()).collect();
    assert_eq!(lines, [&b"line 1"[..], b"line 2", b"line 3"]);
    assert!(datagrams.iter().all(|d| d.pid == pid && d.priority == INFO));
    sandbox.wait_for_contents(
        "both.out",
        |text| text == "line 1\nline 2\nline 3\n",
        TIMEOUT,
    );
    // The file is there, so tail reads it.
    let tail = tm.command_all("tail both");
    assert_eq!(tail, ["line 1", "line 2", "line 3"]);
}

#[test]
fn tail_of_a_stream_that_goes_only_to_syslog_says_so() {
    let sandbox = Sandbox::new();
    let _syslog = syslog_at(&sandbox.file("log.sock"));
    sandbox.write_config(&config_with_socket(
        &sandbox.file("log.sock"),
        &[program(
            "quiet",
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0", "stdout: syslog"],
        )],
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("quiet", "RUNNING", TIMEOUT);
    let said = "quiet's stdout goes to syslog; no log file";
    // In `run`'s shell.
    let answer = tm.command_all("tail quiet");
    assert_eq!(answer, [format!("error: {said}")]);
    // Through the API, with `ctl`.
    let ran = run_to_completion(sandbox.ctl_command(&["tail", "quiet"]), TIMEOUT);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains(said), "{stderr}");
}

#[test]
fn a_missing_socket_is_reported_once_and_the_program_runs_on() {
    let sandbox = Sandbox::new();
    let socket = sandbox.file("late.sock");
    // A line on each stream at start, then another each time USR1 comes.
    let script = "i=0; tick() { i=$((i+1)); echo out $i; echo err $i >&2; }; trap tick USR1; \
                  echo ready; echo ready >&2; while :; do sleep 0.1; done";
    sandbox.write_config(&config_with_socket(
        &socket,
        &[program(
            "talker",
            &shell(script),
            &[
                "starttime: 0",
                "stoptime: 1",
                "stdout: syslog",
                "stderr: syslog",
            ],
        )],
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm
        .wait_for_state("talker", "RUNNING", TIMEOUT)
        .pid()
        .expect("talker's pid");
    let reports = || -> (usize, usize, String) {
        let log = std::fs::read_to_string(sandbox.logfile()).unwrap_or_default();
        let lost = log.matches("syslog: cannot send to").count();
        let back = log.matches("takes lines again").count();
        (lost, back, log)
    };
    wait_until("the report that syslog is missing", TIMEOUT, || {
        (reports().0 > 0).then_some(())
    });
    for _ in 0..3 {
        send_signal(pid, Signal::USR1).expect("USR1 to talker");
    }
    // Still running: the child was never held up by the missing socket.
    assert_eq!(tm.status("talker").pid(), Some(pid));

    // Syslog appears: after the retry delay the lines get through again, and that is said
    // with the count of lines lost meanwhile.
    let syslog = syslog_at(&socket);
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let deadline = Instant::now() + TIMEOUT;
    let mut buffer = vec![0u8; DATAGRAM_ROOM];
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "no line reached syslog once it was there"
        );
        send_signal(pid, Signal::USR1).expect("USR1 to talker");
        if let Ok(read) = syslog.recv(&mut buffer) {
            break Datagram::parse(&buffer[..read]);
        }
    };
    assert_eq!((first.tag.as_str(), first.pid), ("talker", pid));
    let (lost, _, log) = wait_until("the report that syslog is back", TIMEOUT, || {
        let reports = reports();
        (reports.1 > 0).then_some(reports)
    });
    assert_eq!(
        lost, 1,
        "one report for the outage, both streams included:\n{log}"
    );
    let dropped: u32 = log
        .lines()
        .find_map(|line| {
            let (_, after) = line.split_once("takes lines again; ")?;
            after.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no count of dropped lines:\n{log}"));
    // At least `ready`, on each stream, was lost (the ticks' lines too, unless their turn
    // came after the socket was there).
    assert!(dropped >= 2, "{dropped} dropped:\n{log}");
    assert_eq!(tm.status("talker").pid(), Some(pid));
}

#[test]
fn a_syslog_that_stops_reading_costs_lines_not_the_program() {
    let sandbox = Sandbox::new();
    // Bound, never read: its queue fills, and then a send waits.
    let _deaf = syslog_at(&sandbox.file("log.sock"));
    let done = sandbox.file_str("done");
    let script = format!(
        "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; echo > {}",
        shell_quote(&done)
    );
    sandbox.write_config(&config_with_socket(
        &sandbox.file("log.sock"),
        &[program(
            "flood",
            &shell(&script),
            &["starttime: 0", "autorestart: never", "stdout: syslog"],
        )],
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    // The program got to its end: it was never held up for long.
    sandbox.wait_for_file("done", TIMEOUT);
    tm.wait_for_state("flood", "EXITED", TIMEOUT);
    let log = wait_until("the report that syslog takes no lines", TIMEOUT, || {
        let log = std::fs::read_to_string(sandbox.logfile()).ok()?;
        log.contains("it took no line for 1s").then_some(log)
    });
    assert_eq!(log.matches("syslog: cannot send to").count(), 1, "{log}");
}
