//! A hostile client cannot hurt the daemon or the programs it supervises: connections held
//! open by the hundred, a client that sends its request a byte at a time, oversized and
//! malformed requests, garbage. Each gets its answer (or its connection closed) and the rest of
//! the world is served as before.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::support::unix_http::Api;
use crate::support::{config, fixture_cmd, program, wait_until, Sandbox, Taskmaster, TIMEOUT};

/// The limits the daemon documents (`taskmaster_api::limits`).
const MAX_CONNECTIONS: usize = 1024;

fn daemon(sandbox: &Sandbox) -> (Taskmaster, Api) {
    let web = program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0"],
    );
    sandbox.write_config(&config(&[web]));
    let mut tm = Taskmaster::start(sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    (tm, api)
}

/// How many descriptors process `pid` has open.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// Sends `bytes` on a new connection, then reads the answer to its end (or until the daemon
/// closes): the status line's code.
fn raw(sandbox: &Sandbox, bytes: &[u8]) -> Option<u16> {
    let mut stream = UnixStream::connect(sandbox.file("taskmaster.sock")).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn connections_held_open_by_the_hundred_do_not_stop_others_and_one_too_many_hears_why() {
    let sandbox = Sandbox::new();
    let (tm, api) = daemon(&sandbox);
    let pid = tm.daemon_pid();
    let before = descriptors(pid);
    let socket = sandbox.file("taskmaster.sock");
    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(UnixStream::connect(&socket).expect("a connection"));
    }
    // Others are still answered, beside a thousand idle connections.
    assert_eq!(api.get("/v1/processes/web").status, 200);
    // Fill every place (the daemon counts its connections as it accepts them).
    for _ in held.len()..MAX_CONNECTIONS {
        held.push(UnixStream::connect(&socket).expect("a connection"));
    }
    let answer = wait_until("a connection over the limit to be shed", TIMEOUT, || {
        let mut stream = UnixStream::connect(&socket).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 503").then_some(text)
    });
    assert!(answer.contains("too many connections"), "{answer}");
    drop(held);
    assert_eq!(api.get("/v1/processes/web").status, 200);
    // Every descriptor the connections took is given back.
    wait_until("the daemon's descriptors to come back", TIMEOUT, || {
        (descriptors(pid) <= before + 2).then_some(())
    });
}

#[test]
fn a_client_that_sends_its_request_a_byte_at_a_time_is_closed_and_others_are_served() {
    let sandbox = Sandbox::new();
    let (_tm, api) = daemon(&sandbox);
    let mut slow = UnixStream::connect(sandbox.file("taskmaster.sock")).expect("a connection");
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    slow.write_all(b"GET /v1/processes HTTP/1.1\r\nHost: taskmaster\r\nX-Slow: ")
        .expect("the start of a request");
    wait_until("the daemon to close the slow client", TIMEOUT * 2, || {
        // One byte each round: the head never ends.
        if slow.write_all(b"x").is_err() {
            return Some(());
        }
        assert_eq!(api.get("/v1/processes/web").status, 200);
        let mut buffer = [0u8; 64];
        match slow.read(&mut buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
            // Closed (or answered 408 and closed).
            _ => Some(()),
        }
    });
}

#[test]
fn oversized_malformed_and_garbage_requests_get_their_4xx_and_nothing_else_moves() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = daemon(&sandbox);
    let web = tm.running_pid("web");
    let huge_header = format!(
        "GET /v1/processes HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many_headers = format!(
        "GET /v1/processes HTTP/1.1\r\nHost: t\r\n{}\r\n",
        (0..200)
            .map(|n| format!("X-{n}: y\r\n"))
            .collect::<String>()
    );
    let big_body = format!(
        "POST /v1/processes/web/signal HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        1 << 20,
        " ".repeat(1 << 20)
    );
    let cases: [(&str, Vec<u8>, &[u16]); 8] = [
        ("a header of 64 KiB", huge_header.into_bytes(), &[431]),
        ("200 headers", many_headers.into_bytes(), &[431]),
        ("a body of 1 MiB", big_body.into_bytes(), &[413]),
        ("garbage", b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n".to_vec(), &[400]),
        ("a bad request line", b"GET\r\n\r\n".to_vec(), &[400]),
        (
            "an unknown route",
            b"GET /v1/nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
            &[404],
        ),
        (
            "a wrong method",
            b"DELETE /v1/processes HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
            &[405],
        ),
        (
            "JSON of the wrong shape",
            b"POST /v1/processes/web/signal HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n[1,2,{}]]".to_vec(),
            &[400, 422],
        ),
    ];
    for (what, bytes, expected) in cases {
        let status = raw(&sandbox, &bytes);
        assert!(
            status.is_some_and(|s| expected.contains(&s)),
            "{what}: answered {status:?}, expected one of {expected:?}"
        );
    }
    // XML-RPC with an entity bomb, deep nesting, and invalid UTF-8: a fault or a 4xx, at once.
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><methodCall><methodName>&c;</methodName></methodCall>";
    let deep = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>x</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(5000),
        "</data></array></value>".repeat(5000)
    );
    for body in [
        bomb.as_bytes(),
        deep.as_bytes(),
        b"<methodCall>\xff\xfe</methodCall>",
    ] {
        let request = [
            format!(
                "POST /RPC2 HTTP/1.1\r\nHost: t\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body.to_vec(),
        ]
        .concat();
        let status = raw(&sandbox, &request);
        assert!(
            status.is_some_and(|s| s == 200 || (400..500).contains(&s)),
            "{status:?}"
        );
    }
    // Nothing else moved: the daemon answers, the program runs with the same pid.
    assert_eq!(api.get("/v1/processes/web").status, 200);
    assert_eq!(tm.running_pid("web"), web);
}

#[test]
fn tcp_without_the_right_credentials_is_refused_and_the_peer_is_in_the_event_log() {
    let sandbox = Sandbox::new();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let web = program(
        "web",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0"],
    );
    sandbox.write_config(&format!(
        "http:\n  listen: 127.0.0.1:{port}\n  username: admin\n  password: s3cret\n{}",
        config(&[web])
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let ask = |authorization: &str| -> Option<u16> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        let request = format!(
            "GET /v1/processes HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{authorization}\r\n"
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    };
    // admin:wrong, admin:s3cret in base64.
    assert_eq!(ask(""), Some(401));
    assert_eq!(ask("Authorization: Basic YWRtaW46d3Jvbmc=\r\n"), Some(401));
    assert_eq!(ask("Authorization: Basic YWRtaW46czNjcmV0\r\n"), Some(200));
    tm.wait_for_log(
        "refused a request without the right username and password from 127.0.0.1:",
        TIMEOUT,
    );
}

// ---- hostile children ------------------------------------------------------------------------

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// How much the daemon's memory may grow under a hostile child: far below what the child
/// sends, so that growing with it would show.
const GROWTH_KIB: u64 = 16 * 1024;

#[test]
fn a_child_flooding_the_notify_socket_with_datagrams_and_descriptors_grows_nothing() {
    let sandbox = Sandbox::new();
    // 20,000 datagrams, every tenth with 253 descriptors (the most one may carry), as fast as
    // the socket takes them, then a file saying it is done.
    let script = "import os, socket\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  addr = os.environ['NOTIFY_SOCKET']\n\
                  fd = os.open('/dev/null', os.O_RDONLY)\n\
                  for n in range(20000):\n    \
                      try:\n        \
                          if n % 10 == 0:\n            \
                              socket.send_fds(s, [b'STATUS=flood %d' % n], [fd] * 253, addr)\n        \
                          else:\n            \
                              s.sendto(b'WATCHDOG=1\\nSTATUS=x' + b'y' * 4000, addr)\n    \
                      except (BlockingIOError, ConnectionRefusedError, OSError):\n        \
                          pass\n\
                  open('done', 'w').close()\n\
                  import time\n\
                  time.sleep(1000)\n";
    std::fs::write(sandbox.file("flood.py"), script).expect("write flood.py");
    let calm = program(
        "calm",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0"],
    );
    let flood = program(
        "flood",
        &crate::support::yaml_quote(&format!("python3 {}", sandbox.file_str("flood.py"))),
        &[
            "starttime: 0",
            &format!("workingdir: {}", sandbox.file_str("")),
        ],
    );
    sandbox.write_config(&config(&[calm, flood]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let calm_pid = tm.running_pid("calm");
    let pid = tm.daemon_pid();
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    let (fds, rss) = (descriptors(pid), rss_kib(pid));
    sandbox.wait_for_file("done", TIMEOUT);
    // The other program and the daemon are untouched; what the flood sent is gone.
    assert_eq!(api.get("/v1/processes/calm").status, 200);
    assert_eq!(tm.running_pid("calm"), calm_pid);
    wait_until("the flood's descriptors to be closed", TIMEOUT, || {
        (descriptors(pid) <= fds + 2).then_some(())
    });
    let grown = rss_kib(pid).saturating_sub(rss);
    assert!(grown < GROWTH_KIB, "the daemon grew by {grown} KiB");
}

#[test]
fn a_child_writing_a_line_that_never_ends_to_syslog_grows_nothing() {
    let sandbox = Sandbox::new();
    let syslog = sandbox.file("syslog.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&syslog).expect("a syslog socket");
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    // 32 MiB without a newline, then a file saying it is done.
    let script = "import sys\nchunk = b'x' * 65536\nfor _ in range(512):\n    sys.stdout.buffer.write(chunk)\nsys.stdout.flush()\nopen('done', 'w').close()\nimport time\ntime.sleep(1000)\n";
    std::fs::write(sandbox.file("long.py"), script).expect("write long.py");
    let long = program(
        "long",
        &crate::support::yaml_quote(&format!("python3 {}", sandbox.file_str("long.py"))),
        &[
            "starttime: 0",
            "stdout: syslog",
            &format!("workingdir: {}", sandbox.file_str("")),
        ],
    );
    sandbox.write_config(&format!(
        "syslog_socket: {}\n{}",
        crate::support::yaml_quote(syslog.to_str().expect("UTF-8")),
        config(&[long])
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("long");
    let pid = tm.daemon_pid();
    let rss = rss_kib(pid);
    // Syslog reads as it may: the daemon must not keep what it could not send.
    let mut datagram = vec![0u8; 128 * 1024];
    let mut received = 0usize;
    wait_until("the long line to be written", TIMEOUT, || {
        while let Ok(n) = receiver.recv(&mut datagram) {
            received += n;
        }
        sandbox.file("done").exists().then_some(())
    });
    let grown = rss_kib(pid).saturating_sub(rss);
    assert!(
        grown < GROWTH_KIB,
        "the daemon grew by {grown} KiB (syslog got {received} bytes)"
    );
}
