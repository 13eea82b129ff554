//! The three places a user learns how a process ended, for the tests of exit causes
//! (`mod views;` next to `mod support;`): the text of `taskmaster ctl status NAME`, the JSON of
//! `GET /v1/processes/NAME` on the control socket, and the event log ([`Taskmaster::log`]).
//!
//! Also the paths of the C fixtures `build.rs` compiles from `fixture/c/*.c`.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::support::{
    run_to_completion, taskmaster_bin, wait_until_or_none, Sandbox, StatusLine, Taskmaster, TIMEOUT,
};

/// `fixture/c/segfault.c`: writes through a null pointer and dies of SIGSEGV.
pub const SEGFAULT: &str = env!("TM_C_FIXTURE_SEGFAULT");
/// `fixture/c/exit3.c`: exits with status 3.
pub const EXIT3: &str = env!("TM_C_FIXTURE_EXIT3");
/// `fixture/c/worker.c`: the failure-types worker (see its header comment).
pub const WORKER: &str = env!("TM_C_FIXTURE_WORKER");

/// `path` of a C fixture, after checking that `build.rs` did build it.
pub fn c_fixture(path: &str) -> &str {
    assert!(
        Path::new(path).is_file(),
        "the C fixture {path} was not built: see the warnings of `cargo build -p taskmaster`"
    );
    path
}

/// The control socket of a daemon started on `sandbox`'s configuration.
pub fn socket(sandbox: &Sandbox) -> PathBuf {
    sandbox.file("taskmaster.sock")
}

/// Writes `yaml` and starts `taskmaster run` on it, once its control socket takes connections.
pub fn start(sandbox: &Sandbox, yaml: &str) -> Taskmaster {
    sandbox.write_config(yaml);
    let tm = Taskmaster::start(sandbox, &[]);
    if wait_until_or_none(TIMEOUT, || UnixStream::connect(socket(sandbox)).ok()).is_none() {
        panic!(
            "the control socket never took a connection\n{}",
            tm.diagnostics()
        );
    }
    tm
}

/// `taskmaster ctl -s SOCKET status NAME`: its one line of output, parsed.
pub fn ctl_status(sandbox: &Sandbox, name: &str) -> StatusLine {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("ctl")
        .arg("-s")
        .arg(socket(sandbox))
        .args(["status", name])
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let output = run_to_completion(cmd, TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().next().unwrap_or("");
    StatusLine::parse_named(name, line).unwrap_or_else(|| {
        panic!(
            "`ctl status {name}` printed {stdout:?} ({}); stderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `GET /v1/processes/NAME`: the process as the API shows it. Fails the test unless the
/// answer is 200 with a JSON body.
pub fn api_process(sandbox: &Sandbox, name: &str) -> Value {
    let target = format!("/v1/processes/{name}");
    let (status, body) = http_get(&socket(sandbox), &target);
    assert_eq!(status, 200, "GET {target}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {target}: not JSON ({e}): {body}"))
}

/// Asks the API for `name` until its state is `state`, and returns what it showed then.
pub fn api_wait_for_state(sandbox: &Sandbox, name: &str, state: &str) -> Value {
    let mut last = Value::Null;
    wait_until_or_none(TIMEOUT, || {
        last = api_process(sandbox, name);
        (last["state"] == state).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("{name} not {state} within {TIMEOUT:?}; the API shows {last}"))
}

/// The event-log lines that contain `needle`.
pub fn log_lines(tm: &Taskmaster, needle: &str) -> Vec<String> {
    tm.log()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// One `GET target` on a new connection to `socket` (HTTP/1.1, `Connection: close`): the
/// status code and the body, de-chunked.
fn http_get(socket: &Path, target: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
    let request = format!("GET {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("GET {target}: {e}"));
    let raw = read_to_close(&mut stream);
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "GET {target}: not an HTTP answer: {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: no status in {head:?}"));
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    (status, body)
}

/// Reads until the peer closes the connection; fails the test past [`TIMEOUT`].
fn read_to_close(stream: &mut UnixStream) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the connection was not closed within {TIMEOUT:?}; read so far: {:?}",
            String::from_utf8_lossy(&raw)
        );
        stream.set_read_timeout(Some(left)).expect("set a timeout");
        match stream.read(&mut buf) {
            Ok(0) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading an answer: {e}"),
        }
    }
}

/// The data of a chunked body (`SIZE\r\nDATA\r\n` ... `0\r\n\r\n`).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    // Bounded: each round consumes a chunk or returns.
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return data;
        };
        let size = String::from_utf8_lossy(&body[..line_end]);
        let size = size.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .unwrap_or_else(|e| panic!("bad chunk size {size:?}: {e}"));
        let rest = &body[line_end + 2..];
        if size == 0 || rest.len() < size {
            return data;
        }
        data.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
}
