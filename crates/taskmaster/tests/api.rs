//! The control API, served by the real daemon on its unix socket and spoken to by a raw
//! HTTP/1.1 client of this file's own (the project's `Client` would only be tested against
//! itself): every endpoint, every kind of bad input, and the socket's rules (its mode, one
//! daemon per socket, a stale file replaced, peers checked by uid).

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::support::unix_http::dechunk;
use crate::support::{
    config, fixture_bin, fixture_cmd, idle_program, is_alive, proc_stat, program,
    run_to_completion, send_signal, taskmaster_bin, wait_dead, wait_until, wait_until_or_none,
    web_program, yaml_quote, Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// One HTTP answer: status, headers (names in lower case) and the body, de-chunked.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    /// Parses a whole answer (the connection was read to its end).
    fn parse(raw: &[u8]) -> Answer {
        let (mut answer, rest) = Answer::parse_head(raw)
            .unwrap_or_else(|| panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(raw)));
        answer.body = if answer.is_chunked() {
            dechunk(rest).0
        } else {
            match answer.header("content-length") {
                Some(length) => {
                    let length: usize = length.parse().expect("a numeric content-length");
                    rest[..length.min(rest.len())].to_vec()
                }
                None => rest.to_vec(),
            }
        };
        answer
    }

    /// The status line and headers, and the bytes after them; `None` until the head is whole.
    fn parse_head(raw: &[u8]) -> Option<(Answer, &[u8])> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let mut words = status_line.split(' ');
        assert_eq!(
            words.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = words.next()?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        Some((answer, &raw[end + 4..]))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self}"))
    }

    /// The `error` of an error answer, whose body must be `{"error": "..."}` (and JSON).
    fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self}"
        );
        match &self.json()["error"] {
            Value::String(error) if !error.is_empty() => error.clone(),
            _ => panic!("no `error` in the body: {self}"),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for (name, value) in &self.headers {
            write!(f, "\n{name}: {value}")?;
        }
        write!(f, "\n\n{}", self.text())
    }
}

/// A request's bytes, with `Connection: close` so that the answer ends with the connection.
fn request_bytes(method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: taskmaster\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if method == "POST" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn connect(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
    stream
        .set_write_timeout(Some(TIMEOUT))
        .expect("set a write timeout");
    stream
}

/// Reads until the peer closes the connection; fails the test past `TIMEOUT`.
fn read_to_close(stream: &mut UnixStream) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "the connection was not closed within {TIMEOUT:?}; read so far: {:?}",
                String::from_utf8_lossy(&raw)
            );
        }
        stream.set_read_timeout(Some(left)).expect("set a timeout");
        match stream.read(&mut buf) {
            Ok(0) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset is an end too: what was read before it counts.
            Err(_) => return raw,
        }
    }
}

/// Sends `bytes` on a new connection and returns everything answered until it is closed. A
/// write the server cut short (it answered and closed first) is not an error.
fn exchange(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(socket);
    let _ = stream.write_all(bytes);
    read_to_close(&mut stream)
}

/// A client of one daemon's control socket.
struct Api {
    socket: PathBuf,
}

impl Api {
    fn send(&self, method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let raw = exchange(
            &self.socket,
            &request_bytes(method, target, content_type, body),
        );
        Answer::parse(&raw)
    }

    fn get(&self, target: &str) -> Answer {
        self.send("GET", target, None, b"")
    }

    fn post(&self, target: &str) -> Answer {
        self.send("POST", target, None, b"")
    }

    fn post_json(&self, target: &str, body: &str) -> Answer {
        self.send("POST", target, Some("application/json"), body.as_bytes())
    }

    /// `GET /v1/processes/NAME`, which must answer 200.
    fn process(&self, name: &str) -> Value {
        let answer = self.get(&format!("/v1/processes/{name}"));
        assert_eq!(answer.status, 200, "{answer}");
        answer.json()
    }

    /// Asks for `name` until its state is `state`, and returns it.
    fn wait_for_state(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_until_or_none(TIMEOUT, || {
            last = self.process(name);
            (last["state"] == state).then(|| last.clone())
        })
        .unwrap_or_else(|| panic!("{name} not {state} within {TIMEOUT:?}; last: {last}"))
    }

    /// The pid of `name`, which must be RUNNING.
    fn running_pid(&self, name: &str) -> u32 {
        let process = self.wait_for_state(name, "RUNNING");
        pid_of(&process)
    }
}

fn pid_of(process: &Value) -> u32 {
    process["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .unwrap_or_else(|| panic!("no pid in {process}"))
}

/// A streamed answer (chunked: a followed log, server-sent events), read as it comes.
struct Streaming {
    stream: UnixStream,
    head: Answer,
    /// The body's bytes received so far, still chunked.
    raw_body: Vec<u8>,
}

impl Streaming {
    /// Sends `GET target` and reads the answer's head.
    fn open(socket: &Path, target: &str) -> Streaming {
        let mut stream = connect(socket);
        stream
            .write_all(&request_bytes("GET", target, None, b""))
            .expect("send the request");
        let mut raw = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        // Bounded by the deadline.
        loop {
            if let Some((head, rest)) = Answer::parse_head(&raw) {
                let raw_body = rest.to_vec();
                return Streaming {
                    stream,
                    head,
                    raw_body,
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no answer head within {TIMEOUT:?}: {raw:?}"
            );
            stream.set_read_timeout(Some(left)).expect("set a timeout");
            match stream.read(&mut buf) {
                Ok(0) => panic!(
                    "closed before the head: {:?}",
                    String::from_utf8_lossy(&raw)
                ),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the head: {e}"),
            }
        }
    }

    /// The body received so far.
    fn body(&self) -> Vec<u8> {
        if self.head.is_chunked() {
            dechunk(&self.raw_body).0
        } else {
            self.raw_body.clone()
        }
    }

    /// Reads until the body so far satisfies `pred`, and returns it; fails past `TIMEOUT` or
    /// when the stream ends first.
    fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let body = self.body();
            if pred(&body) {
                return body;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the stream did not bring {what} within {TIMEOUT:?}; got:\n{}",
                String::from_utf8_lossy(&body)
            );
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => panic!(
                    "the stream ended before {what}; got:\n{}",
                    String::from_utf8_lossy(&body)
                ),
                Ok(n) => self.raw_body.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the stream: {e}"),
            }
        }
    }
}

/// The events of a server-sent-events body: (`event:` name, `data:` as JSON), whole ones only.
fn sse_events(body: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(body);
    let Some(complete) = text.rfind("\n\n") else {
        return Vec::new();
    };
    text[..complete]
        .split("\n\n")
        .filter_map(|block| {
            let mut kind = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    kind = Some(name.trim().to_string());
                } else if let Some(line) = line.strip_prefix("data:") {
                    data.push_str(line.trim_start());
                }
            }
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data:?}"));
            Some((kind?, data))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Daemons and configurations
// ---------------------------------------------------------------------------------------------

/// `workers`: two processes that sleep, output discarded.
fn workers() -> String {
    program(
        "workers",
        &fixture_cmd(&["sleep", "forever"]),
        &["numprocs: 2", "starttime: 0", "stoptime: 1"],
    )
}

/// Writes `yaml` and starts `taskmaster run` on it (its shell on pipes, a second way in), once
/// its control socket takes connections.
fn start(sandbox: &Sandbox, yaml: &str) -> (Taskmaster, Api) {
    sandbox.write_config(yaml);
    let tm = Taskmaster::start(sandbox, &[]);
    let api = Api {
        socket: sandbox.file("taskmaster.sock"),
    };
    if wait_until_or_none(TIMEOUT, || UnixStream::connect(&api.socket).ok()).is_none() {
        panic!(
            "{} never took a connection\n{}",
            api.socket.display(),
            tm.diagnostics()
        );
    }
    (tm, api)
}

/// The pid of `web`, from its own pid file, once the API shows it RUNNING with that pid.
fn web_pid(sandbox: &Sandbox, tm: &mut Taskmaster, api: &Api) -> u32 {
    let pid = sandbox.wait_for_pidfile("web.pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(api.running_pid("web"), pid);
    pid
}

/// A daemon with `web` and `workers`, and web's pid.
fn web_and_workers() -> (Sandbox, Taskmaster, Api, u32) {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(&sandbox, &config(&[web_program(&sandbox), workers()]));
    let pid = web_pid(&sandbox, &mut tm, &api);
    (sandbox, tm, api, pid)
}

/// The daemon shrugged off whatever came before: `name` is still RUNNING with `pid`, by the API
/// and by `run`'s own shell.
fn assert_unaffected(tm: &mut Taskmaster, api: &Api, name: &str, pid: u32) {
    let process = api.process(name);
    assert_eq!(process["state"], "RUNNING", "{process}");
    assert_eq!(pid_of(&process), pid, "{process}");
    let status = tm.status(name);
    assert_eq!(status.state, "RUNNING");
    assert_eq!(status.pid(), Some(pid));
    assert!(is_alive(pid));
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// A timestamp of the API that should be "now": within a minute of the test's clock.
fn assert_recent(value: &Value, what: &str) {
    let at = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    let now = unix_now();
    assert!((now - at).abs() < 60.0, "{what} is {at}, now is {now}");
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_string())
        .collect()
}

fn results(answer: &Answer) -> Value {
    answer.json()["results"].clone()
}

fn ok(process: &str, result: &str) -> Value {
    json!({"process": process, "ok": true, "result": result})
}

fn failed(process: &str, result: &str) -> Value {
    json!({"process": process, "ok": false, "result": result})
}

// ---------------------------------------------------------------------------------------------
// Reading processes
// ---------------------------------------------------------------------------------------------

#[test]
fn processes_lists_every_process_with_its_real_pid_state_and_files() {
    let (sandbox, mut tm, api, pid) = web_and_workers();
    let answer = api.get("/v1/processes");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let status = answer.json();
    assert_recent(&status["now"], "now");
    assert_eq!(status["errors"], json!([]));
    assert_eq!(
        names(&status["processes"]),
        ["web", "workers:workers_00", "workers:workers_01"]
    );

    let web = &status["processes"][0];
    assert_eq!(web["group"], "web");
    assert_eq!(web["state"], "RUNNING");
    assert_eq!(pid_of(web), pid);
    let description = web["description"].as_str().expect("a description");
    assert!(
        description.starts_with(&format!("pid {pid}, uptime 0:")),
        "{description}"
    );
    assert_recent(&web["start"], "web's start");
    assert_eq!(web["stop"], Value::Null);
    assert_eq!(web["last_exit"], Value::Null);
    assert_eq!(web["spawn_error"], Value::Null);
    assert_eq!(web["stdout"], sandbox.file_str("web.out"));
    assert_eq!(web["stderr"], Value::Null);

    for worker in &status["processes"].as_array().expect("a list")[1..] {
        assert_eq!(worker["group"], "workers");
        assert_eq!(worker["state"], "RUNNING");
        assert_eq!(worker["stdout"], Value::Null);
        // The pid shown is a real child of the daemon.
        let pid = pid_of(worker);
        tm.track(pid);
        let stat = proc_stat(pid).unwrap_or_else(|| panic!("pid {pid} does not exist"));
        assert_eq!(stat.ppid, tm.daemon_pid(), "{worker}");
    }
}

#[test]
fn processes_names_selects_processes_and_groups_and_reports_unknown_names() {
    let (_sandbox, _tm, api, _) = web_and_workers();
    let answer = api.get("/v1/processes?names=web,workers:*,nope");
    assert_eq!(answer.status, 200, "{answer}");
    let status = answer.json();
    assert_eq!(
        names(&status["processes"]),
        ["web", "workers:workers_00", "workers:workers_01"]
    );
    assert_eq!(status["errors"], json!([failed("nope", "no_such_process")]));

    // A group by its bare name, and one process of it by its short name.
    let status = api.get("/v1/processes?names=workers").json();
    assert_eq!(
        names(&status["processes"]),
        ["workers:workers_00", "workers:workers_01"]
    );
    let status = api.get("/v1/processes?names=workers_01").json();
    assert_eq!(names(&status["processes"]), ["workers:workers_01"]);
}

#[test]
fn one_process_is_found_by_name_and_an_unknown_name_or_a_group_is_404() {
    let (_sandbox, _tm, api, pid) = web_and_workers();
    let web = api.process("web");
    assert_eq!(web["name"], "web");
    assert_eq!(pid_of(&web), pid);
    assert_eq!(
        api.process("workers:workers_00")["name"],
        "workers:workers_00"
    );
    assert_eq!(api.process("workers_01")["name"], "workers:workers_01");

    let unknown = api.get("/v1/processes/nope");
    assert_eq!(unknown.status, 404, "{unknown}");
    assert!(unknown.error().contains("nope"), "{unknown}");
    // A name that names several processes is not one process.
    let group = api.get("/v1/processes/workers");
    assert_eq!(group.status, 404, "{group}");
    assert!(group.error().contains("workers"), "{group}");
}

#[test]
fn last_exit_gives_the_exit_code_and_whether_it_was_expected() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(
        &sandbox,
        &config(&[
            program(
                "fails",
                &fixture_cmd(&["exit", "3"]),
                &["starttime: 0", "autorestart: never"],
            ),
            program(
                "succeeds",
                &fixture_cmd(&["exit", "0"]),
                &["starttime: 0", "autorestart: never"],
            ),
        ]),
    );
    let fails = api.wait_for_state("fails", "EXITED");
    assert_eq!(
        fails["last_exit"],
        json!({"code": 3, "signal": null, "core_dumped": false, "expected": false,
               "cause": "exited", "text": "exited with code 3 (not expected)"})
    );
    assert_eq!(fails["pid"], Value::Null);
    assert_recent(&fails["stop"], "fails' stop");
    let succeeds = api.wait_for_state("succeeds", "EXITED");
    assert_eq!(
        succeeds["last_exit"],
        json!({"code": 0, "signal": null, "core_dumped": false, "expected": true,
               "cause": "exited", "text": "exited with code 0 (expected)"})
    );
}

#[test]
fn last_exit_names_the_signal_that_killed_the_process() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("victim.pid");
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "victim",
            &fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
            &["starttime: 0", "autorestart: never"],
        )]),
    );
    let pid = sandbox.wait_for_pidfile("victim.pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(api.running_pid("victim"), pid);
    send_signal(pid, Signal::KILL).expect("kill the process");
    let victim = api.wait_for_state("victim", "EXITED");
    assert_eq!(
        victim["last_exit"],
        json!({"code": null, "signal": "SIGKILL", "core_dumped": false, "expected": false,
               "cause": "killed", "text": "killed by SIGKILL (not expected)"})
    );
    assert_recent(&victim["stop"], "victim's stop");
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

#[test]
fn start_answers_only_once_the_process_is_running() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("slow.pid");
    // RUNNING only after a second up: an answer at spawn time would find it STARTING.
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "slow",
            &fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
            &["starttime: 1", "autostart: false"],
        )]),
    );
    assert_eq!(api.process("slow")["state"], "STOPPED");
    let answer = api.post("/v1/processes/slow/start");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), json!({"results": [ok("slow", "started")]}));
    let slow = api.process("slow");
    assert_eq!(slow["state"], "RUNNING", "{slow}");
    let pid = sandbox.wait_for_pidfile("slow.pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(pid_of(&slow), pid);
}

#[test]
fn stop_answers_only_once_the_process_is_gone() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("stubborn.pid");
    // It ignores TERM, so it stays STOPPING until the SIGKILL a second later.
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "stubborn",
            &fixture_cmd(&["ignore", "TERM", "pidfile", &pidfile, "sleep", "forever"]),
            &["starttime: 0", "stoptime: 1"],
        )]),
    );
    let pid = sandbox.wait_for_pidfile("stubborn.pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(api.running_pid("stubborn"), pid);
    let answer = api.post("/v1/processes/stubborn/stop");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(
        answer.json(),
        json!({"results": [ok("stubborn", "stopped")]})
    );
    let stubborn = api.process("stubborn");
    assert_eq!(stubborn["state"], "STOPPED", "{stubborn}");
    assert_eq!(stubborn["pid"], Value::Null);
    assert_eq!(stubborn["last_exit"]["signal"], "SIGKILL");
    assert!(!is_alive(pid), "pid {pid} outlived the stop's answer");
}

#[test]
fn restart_stops_then_starts_with_a_new_pid() {
    let (_sandbox, mut tm, api, old) = web_and_workers();
    let answer = api.post("/v1/processes/web/restart");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(
        answer.json(),
        json!({"results": [ok("web", "stopped"), ok("web", "started")]})
    );
    let web = api.process("web");
    assert_eq!(web["state"], "RUNNING", "{web}");
    let new = pid_of(&web);
    tm.track(new);
    assert_ne!(new, old);
    assert!(is_alive(new));
    assert!(!is_alive(old), "the old pid {old} survived the restart");
}

#[test]
fn group_actions_answer_for_each_process_of_the_group() {
    let (_sandbox, _tm, api, web) = web_and_workers();
    let stopped = api.post("/v1/processes/workers:*/stop");
    assert_eq!(stopped.status, 200, "{stopped}");
    assert_eq!(
        results(&stopped),
        json!([
            ok("workers:workers_00", "stopped"),
            ok("workers:workers_01", "stopped")
        ])
    );
    let status = api.get("/v1/processes?names=workers").json();
    for worker in status["processes"].as_array().expect("a list") {
        assert_eq!(worker["state"], "STOPPED", "{worker}");
    }

    let started = api.post("/v1/processes/workers/start");
    assert_eq!(started.status, 200, "{started}");
    assert_eq!(
        results(&started),
        json!([
            ok("workers:workers_00", "started"),
            ok("workers:workers_01", "started")
        ])
    );
    let status = api.get("/v1/processes?names=workers").json();
    for worker in status["processes"].as_array().expect("a list") {
        assert_eq!(worker["state"], "RUNNING", "{worker}");
    }
    // The group's neighbour was not touched.
    assert_eq!(pid_of(&api.process("web")), web);
}

#[test]
fn all_acts_on_every_process_and_leaves_out_those_with_nothing_to_do() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(
        &sandbox,
        &config(&[web_program(&sandbox), workers(), idle_program()]),
    );
    api.running_pid("web");
    api.running_pid("workers_01");
    let stopped = api.post("/v1/processes/all/stop");
    assert_eq!(stopped.status, 200, "{stopped}");
    // `idle` was never started: nothing to stop, so it is left out.
    assert_eq!(
        results(&stopped),
        json!([
            ok("web", "stopped"),
            ok("workers:workers_00", "stopped"),
            ok("workers:workers_01", "stopped")
        ])
    );
    let started = api.post("/v1/processes/all/start");
    assert_eq!(started.status, 200, "{started}");
    assert_eq!(
        results(&started),
        json!([
            ok("idle", "started"),
            ok("web", "started"),
            ok("workers:workers_00", "started"),
            ok("workers:workers_01", "started")
        ])
    );
    let status = api.get("/v1/processes").json();
    for process in status["processes"].as_array().expect("a list") {
        assert_eq!(process["state"], "RUNNING", "{process}");
    }
}

#[test]
fn start_of_a_missing_program_is_a_spawn_error_with_its_cause() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("no-such-program");
    let (_tm, api) = start(
        &sandbox,
        &config(&[program(
            "missing",
            &yaml_quote(&missing),
            &["autostart: false", "startretries: 0"],
        )]),
    );
    let answer = api.post("/v1/processes/missing/start");
    assert_eq!(answer.status, 200, "{answer}");
    let detail = format!("cannot execute {missing}: No such file or directory");
    assert_eq!(
        results(&answer),
        json!([{"process": "missing", "ok": false, "result": "spawn_error", "detail": detail}])
    );
    let process = api.process("missing");
    assert_eq!(process["spawn_error"], detail.as_str());
    assert_eq!(process["pid"], Value::Null);
}

#[test]
fn start_of_a_program_that_exits_before_its_starttime_is_an_abnormal_termination() {
    let sandbox = Sandbox::new();
    let (_tm, api) = start(
        &sandbox,
        &config(&[program(
            "quitter",
            &fixture_cmd(&["exit", "1"]),
            &["starttime: 5", "autostart: false", "startretries: 0"],
        )]),
    );
    let answer = api.post("/v1/processes/quitter/start");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(
        results(&answer),
        json!([failed("quitter", "abnormal_termination")])
    );
    let quitter = api.process("quitter");
    assert_eq!(quitter["last_exit"]["code"], 1, "{quitter}");
}

#[test]
fn start_of_a_running_process_is_already_started_and_stop_of_a_stopped_one_not_running() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &config(&[
            web_program(&sandbox),
            program(
                "idle",
                &fixture_cmd(&["sleep", "forever"]),
                &["autostart: false"],
            ),
        ]),
    );
    let pid = web_pid(&sandbox, &mut tm, &api);
    let again = api.post("/v1/processes/web/start");
    assert_eq!(again.status, 200, "{again}");
    assert_eq!(results(&again), json!([failed("web", "already_started")]));
    let idle = api.post("/v1/processes/idle/stop");
    assert_eq!(idle.status, 200, "{idle}");
    assert_eq!(results(&idle), json!([failed("idle", "not_running")]));
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn actions_on_an_unknown_name_answer_404_with_the_result() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    for verb in ["start", "stop", "restart"] {
        let answer = api.post(&format!("/v1/processes/nope/{verb}"));
        assert_eq!(answer.status, 404, "{verb}: {answer}");
        assert_eq!(
            answer.json(),
            json!({"results": [failed("nope", "no_such_process")]})
        );
    }
    let answer = api.post_json("/v1/processes/nope/signal", r#"{"signal": "HUP"}"#);
    assert_eq!(answer.status, 404, "{answer}");
    assert_eq!(results(&answer), json!([failed("nope", "no_such_process")]));
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn one_post_acts_on_every_process_its_body_names() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &config(&[web_program(&sandbox), workers(), idle_program()]),
    );
    let web = web_pid(&sandbox, &mut tm, &api);
    api.running_pid("workers_01");
    let stopped = api.post_json(
        "/v1/processes/stop",
        r#"{"processes": ["workers:*", "nope"]}"#,
    );
    assert_eq!(stopped.status, 200, "{stopped}");
    assert_eq!(
        results(&stopped),
        json!([
            ok("workers:workers_00", "stopped"),
            ok("workers:workers_01", "stopped"),
            failed("nope", "no_such_process")
        ])
    );
    let started = api.post_json(
        "/v1/processes/start",
        r#"{"processes": ["workers:workers_01", "idle"]}"#,
    );
    assert_eq!(started.status, 200, "{started}");
    assert_eq!(
        results(&started),
        json!([ok("workers:workers_01", "started"), ok("idle", "started")])
    );
    assert_eq!(api.process("idle")["state"], "RUNNING");
    assert_eq!(api.process("workers:workers_00")["state"], "STOPPED");
    // SIGCONT changes nothing for a process that is not paused.
    let signalled = api.post_json(
        "/v1/processes/signal",
        r#"{"signal": "CONT", "processes": ["web", "idle"]}"#,
    );
    assert_eq!(signalled.status, 200, "{signalled}");
    assert_eq!(
        results(&signalled),
        json!([ok("web", "signalled"), ok("idle", "signalled")])
    );
    let nothing = api.post_json(
        "/v1/processes/restart",
        r#"{"processes": ["nope", "nada"]}"#,
    );
    assert_eq!(nothing.status, 404, "{nothing}");
    assert_eq!(
        results(&nothing),
        json!([
            failed("nope", "no_such_process"),
            failed("nada", "no_such_process")
        ])
    );
    assert_unaffected(&mut tm, &api, "web", web);
}

#[test]
fn a_post_on_several_processes_must_name_them_in_its_body() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // An empty list would be every process to the core: it is refused, not taken for `all`.
    let empty = api.post_json("/v1/processes/stop", r#"{"processes": []}"#);
    assert_eq!(empty.status, 422, "{empty}");
    assert!(empty.error().contains("processes"), "{empty}");
    let missing = api.post_json("/v1/processes/stop", r#"{"names": ["web"]}"#);
    assert_eq!(missing.status, 422, "{missing}");
    let no_body = api.post("/v1/processes/stop");
    assert_eq!(no_body.status, 400, "{no_body}");
    assert!(no_body.error().contains("processes"), "{no_body}");
    let signal = api.post_json("/v1/processes/signal", r#"{"signal": "HUP"}"#);
    assert_eq!(signal.status, 422, "{signal}");
    // The route with a name in its path takes no list.
    let both = api.post_json(
        "/v1/processes/web/signal",
        r#"{"signal": "HUP", "processes": ["workers:*"]}"#,
    );
    assert_eq!(both.status, 422, "{both}");
    let unknown = api.post_json("/v1/processes/frobnicate", r#"{"processes": ["web"]}"#);
    assert_eq!(unknown.status, 404, "{unknown}");
    unknown.error();
    // GET still reads a process of that name: the action is POST's alone.
    let get = api.get("/v1/processes/start");
    assert_eq!(get.status, 404, "{get}");
    assert!(get.error().contains("no such process: start"), "{get}");
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn signal_is_delivered_to_the_process() {
    let sandbox = Sandbox::new();
    let pidfile = sandbox.file_str("usr1.pid");
    let (mut tm, api) = start(
        &sandbox,
        &config(&[program(
            "usr1",
            &fixture_cmd(&[
                "on", "USR1", "exit", "9", "pidfile", &pidfile, "sleep", "forever",
            ]),
            &["starttime: 0", "autorestart: never"],
        )]),
    );
    let pid = sandbox.wait_for_pidfile("usr1.pid", TIMEOUT);
    tm.track(pid);
    assert_eq!(api.running_pid("usr1"), pid);
    let answer = api.post_json("/v1/processes/usr1/signal", r#"{"signal": "USR1"}"#);
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), json!({"results": [ok("usr1", "signalled")]}));
    // Only the fixture's USR1 handler exits with 9.
    let usr1 = api.wait_for_state("usr1", "EXITED");
    assert_eq!(usr1["last_exit"]["code"], 9, "{usr1}");
}

#[test]
fn an_unknown_signal_is_400_naming_it() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let answer = api.post_json("/v1/processes/web/signal", r#"{"signal": "SIGFROB"}"#);
    assert_eq!(answer.status, 400, "{answer}");
    assert!(answer.error().contains("SIGFROB"), "{answer}");
    assert_unaffected(&mut tm, &api, "web", pid);
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/// A daemon with `lines`, which wrote `line 1` .. `line 100` to lines.out; and those bytes.
fn lines_daemon() -> (Sandbox, Taskmaster, Api, Vec<u8>) {
    let sandbox = Sandbox::new();
    let (tm, api) = start(
        &sandbox,
        &config(&[program(
            "lines",
            &fixture_cmd(&["lines", "100", "sleep", "forever"]),
            &["starttime: 0", "stdout: lines.out"],
        )]),
    );
    sandbox.wait_for_contents("lines.out", |text| text.ends_with("line 100\n"), TIMEOUT);
    let bytes = std::fs::read(sandbox.file("lines.out")).expect("read lines.out");
    (sandbox, tm, api, bytes)
}

#[test]
fn log_answers_the_file_or_a_range_of_it_with_offset_and_size_headers() {
    let (_sandbox, _tm, api, file) = lines_daemon();
    let size = file.len().to_string();
    let whole = api.get("/v1/processes/lines/log/stdout");
    assert_eq!(whole.status, 200, "{whole}");
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(whole.body, file);
    assert_eq!(whole.header("x-log-offset"), Some("0"));
    assert_eq!(whole.header("x-log-size"), Some(size.as_str()));

    // `line 1\n` is 7 bytes.
    let range = api.get("/v1/processes/lines/log/stdout?offset=7&length=7");
    assert_eq!(range.status, 200, "{range}");
    assert_eq!(range.text(), "line 2\n");
    assert_eq!(range.header("x-log-offset"), Some("7"));
    assert_eq!(range.header("x-log-size"), Some(size.as_str()));

    let past_the_end = api.get("/v1/processes/lines/log/stdout?offset=1000000");
    assert_eq!(past_the_end.status, 200, "{past_the_end}");
    assert_eq!(past_the_end.body, b"");
    assert_eq!(past_the_end.header("x-log-offset"), Some(size.as_str()));
}

#[test]
fn log_negative_offset_counts_from_the_end() {
    let (_sandbox, _tm, api, file) = lines_daemon();
    let last = api.get("/v1/processes/lines/log/stdout?offset=-9");
    assert_eq!(last.status, 200, "{last}");
    assert_eq!(last.text(), "line 100\n");
    let offset = (file.len() - 9).to_string();
    assert_eq!(last.header("x-log-offset"), Some(offset.as_str()));

    // `line 99\nline 100\n` is 17 bytes; take the first 8 of them.
    let middle = api.get("/v1/processes/lines/log/stdout?offset=-17&length=8");
    assert_eq!(middle.text(), "line 99\n");

    let more_than_all = api.get("/v1/processes/lines/log/stdout?offset=-1000000");
    assert_eq!(more_than_all.body, file);
    assert_eq!(more_than_all.header("x-log-offset"), Some("0"));
}

#[test]
fn log_of_a_discarded_stream_is_404_and_of_a_stream_other_than_stdout_or_stderr_400() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let discarded = api.get("/v1/processes/workers_00/log/stdout");
    assert_eq!(discarded.status, 404, "{discarded}");
    assert!(discarded.error().contains("discarded"), "{discarded}");
    let no_stderr = api.get("/v1/processes/web/log/stderr");
    assert_eq!(no_stderr.status, 404, "{no_stderr}");
    assert!(no_stderr.error().contains("stderr"), "{no_stderr}");
    let stdin = api.get("/v1/processes/web/log/stdin");
    assert_eq!(stdin.status, 400, "{stdin}");
    assert!(stdin.error().contains("stdin"), "{stdin}");
    let unknown = api.get("/v1/processes/nope/log/stdout");
    assert_eq!(unknown.status, 404, "{unknown}");
    unknown.error();
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn log_follow_streams_what_the_process_writes_after_the_request() {
    let sandbox = Sandbox::new();
    // A shell that writes a numbered line each time it gets USR1: the test decides when the
    // process writes, so every `tick` line is written after the request.
    let script = "i=0; tick() { i=$((i+1)); echo tick $i; }; trap tick USR1; echo ready; \
                  while :; do sleep 0.1; done";
    let (_tm, api) = start(
        &sandbox,
        &config(&[program(
            "ticker",
            &yaml_quote(&format!("sh -c '{script}'")),
            &["starttime: 0", "stoptime: 1", "stdout: ticker.out"],
        )]),
    );
    sandbox.wait_for_contents("ticker.out", |text| text == "ready\n", TIMEOUT);
    api.running_pid("ticker");

    let mut follow = Streaming::open(
        &api.socket,
        "/v1/processes/ticker/log/stdout?follow=true&offset=0",
    );
    assert_eq!(follow.head.status, 200, "{}", follow.head);
    assert_eq!(follow.head.header("x-log-offset"), Some("0"));
    assert_eq!(follow.head.header("x-log-size"), Some("6"));
    follow.wait_for("ready", |body| body == b"ready\n");
    for n in 1..=2 {
        let answer = api.post_json("/v1/processes/ticker/signal", r#"{"signal": "USR1"}"#);
        assert_eq!(results(&answer), json!([ok("ticker", "signalled")]));
        let line = format!("tick {n}\n");
        follow.wait_for(&line, |body| String::from_utf8_lossy(body).ends_with(&line));
    }
    assert_eq!(follow.body(), b"ready\ntick 1\ntick 2\n");
    drop(follow);
    // The daemon goes on once the follower has gone.
    api.running_pid("ticker");
}

// ---------------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------------

#[test]
fn reload_answers_what_was_added_changed_and_removed() {
    let sandbox = Sandbox::new();
    let sleeper =
        |name: &str, keys: &[&str]| program(name, &fixture_cmd(&["sleep", "forever"]), keys);
    let (mut tm, api) = start(
        &sandbox,
        &config(&[
            web_program(&sandbox),
            sleeper("changes", &["starttime: 0", "stoptime: 1"]),
            sleeper("goes", &["starttime: 0", "stoptime: 1"]),
        ]),
    );
    let pid = web_pid(&sandbox, &mut tm, &api);
    api.running_pid("goes");
    sandbox.write_config(&config(&[
        web_program(&sandbox),
        sleeper("changes", &["starttime: 0", "stoptime: 2"]),
        sleeper("comes", &["starttime: 0"]),
    ]));
    let answer = api.post("/v1/reload");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(
        answer.json(),
        json!({
            "added": ["comes"],
            "changed": ["changes"],
            "removed": ["goes"],
            "settings": {"changes": {"in_place": ["stoptime"], "restart": []}},
        })
    );
    api.running_pid("comes");
    wait_until("goes to be removed", TIMEOUT, || {
        (api.get("/v1/processes/goes").status == 404).then_some(())
    });
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn reload_of_a_file_with_errors_is_422_with_every_error_and_changes_nothing() {
    let (sandbox, mut tm, api, pid) = web_and_workers();
    let workers_before = api.get("/v1/processes?names=workers").json()["processes"].clone();
    let config_path = sandbox.config_path();
    let config_path = config_path.to_str().expect("UTF-8");
    // Two mistakes, and a new program that must not appear.
    sandbox.write_config(&config(&[
        program(
            "web",
            &fixture_cmd(&["sleep", "forever"]),
            &["stoptimee: 1"],
        ),
        program(
            "workers",
            &fixture_cmd(&["sleep", "forever"]),
            &["numprocs: 0"],
        ),
        program("newcomer", &fixture_cmd(&["sleep", "forever"]), &[]),
    ]));
    let answer = api.post("/v1/reload");
    assert_eq!(answer.status, 422, "{answer}");
    let body = answer.json();
    assert_eq!(
        body["error"],
        "the configuration has errors; nothing was changed"
    );
    let errors = body["errors"].as_array().expect("a list of errors");
    assert_eq!(errors.len(), 2, "{body}");
    for error in errors {
        let error = error.as_str().expect("a string");
        // FILE:LINE:COL: what is wrong
        let rest = error
            .strip_prefix(&format!("{config_path}:"))
            .unwrap_or_else(|| panic!("{error:?} does not start with the file"));
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let column = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("");
        assert!(line.parse::<u32>().is_ok(), "{error:?}: no line");
        assert!(column.parse::<u32>().is_ok(), "{error:?}: no column");
        assert!(message.starts_with(' ') && message.len() > 1, "{error:?}");
    }
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap_or("").contains("stoptimee")),
        "{body}"
    );
    assert_unaffected(&mut tm, &api, "web", pid);
    assert_eq!(
        api.get("/v1/processes?names=workers").json()["processes"]
            .as_array()
            .expect("a list")
            .iter()
            .map(pid_of)
            .collect::<Vec<_>>(),
        workers_before
            .as_array()
            .expect("a list")
            .iter()
            .map(pid_of)
            .collect::<Vec<_>>()
    );
    assert_eq!(api.get("/v1/processes/newcomer").status, 404);
}

#[test]
fn pid_is_the_daemons_own() {
    let sandbox = Sandbox::new();
    let (tm, api) = start(&sandbox, &config(&[workers()]));
    let answer = api.get("/v1/pid");
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), json!({"pid": tm.daemon_pid()}));
}

#[test]
fn shutdown_answers_202_then_stops_every_process_exits_0_and_removes_the_socket() {
    let (_sandbox, mut tm, api, web) = web_and_workers();
    let workers: Vec<u32> = api.get("/v1/processes?names=workers").json()["processes"]
        .as_array()
        .expect("a list")
        .iter()
        .map(pid_of)
        .collect();
    for &pid in &workers {
        tm.track(pid);
    }
    let answer = api.post("/v1/shutdown");
    assert_eq!(answer.status, 202, "{answer}");
    assert_eq!(answer.json(), json!({"shutting_down": true}));
    let status = tm.wait_exit(TIMEOUT);
    assert!(status.success(), "{status:?}\n{}", tm.diagnostics());
    for pid in std::iter::once(web).chain(workers) {
        assert!(!is_alive(pid), "pid {pid} outlived the shutdown");
    }
    assert!(
        !api.socket.exists(),
        "{} is still there",
        api.socket.display()
    );
}

#[test]
fn events_stream_state_changes_and_log_lines() {
    let (_sandbox, _tm, api, _) = web_and_workers();
    let mut events = Streaming::open(&api.socket, "/v1/events");
    assert_eq!(events.head.status, 200, "{}", events.head);
    assert_eq!(
        events.head.header("content-type"),
        Some("text/event-stream")
    );
    // The stream is subscribed once its head is sent; what follows happens after.
    let stopped = api.post("/v1/processes/web/stop");
    assert_eq!(results(&stopped), json!([ok("web", "stopped")]));
    let is_state = |event: &(String, Value), from: &str, to: &str| {
        event.0 == "state"
            && event.1["process"] == "web"
            && event.1["from"] == from
            && event.1["to"] == to
    };
    let body = events.wait_for("web's STOPPING -> STOPPED", |body| {
        sse_events(body)
            .iter()
            .any(|e| is_state(e, "STOPPING", "STOPPED"))
    });
    let all = sse_events(&body);
    let stopping = all
        .iter()
        .position(|e| is_state(e, "RUNNING", "STOPPING"))
        .unwrap_or_else(|| panic!("no RUNNING -> STOPPING in {all:?}"));
    let stopped = all
        .iter()
        .position(|e| is_state(e, "STOPPING", "STOPPED"))
        .expect("seen above");
    assert!(stopping < stopped, "{all:?}");
    assert_eq!(all[stopping].1["type"], "state");
    assert_recent(&all[stopping].1["at"], "the event's time");
    let log = all
        .iter()
        .find(|(kind, data)| {
            kind == "log"
                && data["process"] == "web"
                && data["message"] == "stop requested: sending TERM"
        })
        .unwrap_or_else(|| panic!("no log event for the stop in {all:?}"));
    assert_eq!(log.1["type"], "log");
    assert_recent(&log.1["at"], "the log event's time");
    assert!(
        all.iter().any(|(kind, data)| kind == "log"
            && data["process"].is_null()
            && data["message"] == "command: stop web"),
        "{all:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear 4xx, and the daemon unaffected. The bodies ask for HUP, which kills the
// fixture: had any of them been carried out, web's pid would have changed.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_malformed_json_body_is_400() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let answer = api.post_json("/v1/processes/web/signal", r#"{"signal": "HUP""#);
    assert_eq!(answer.status, 400, "{answer}");
    answer.error();
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_json_body_of_the_wrong_shape_is_refused_naming_the_missing_field() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    for body in [r#"{"sig": 1}"#, r#"{"signal": ["HUP"]}"#, r#""HUP""#, "17"] {
        let answer = api.post_json("/v1/processes/web/signal", body);
        assert!(
            answer.status == 400 || answer.status == 422,
            "{body}: {answer}"
        );
        answer.error();
    }
    let missing = api.post_json("/v1/processes/web/signal", r#"{"sig": 1}"#);
    assert!(missing.error().contains("signal"), "{missing}");
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_json_array_is_not_taken_for_the_signal_object() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // The body is `{"signal": ...}`; a list is the wrong shape, however its items line up.
    let answer = api.post_json("/v1/processes/web/signal", r#"["HUP"]"#);
    assert!(
        answer.status == 400 || answer.status == 422,
        "a list was accepted: {answer}"
    );
    answer.error();
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_body_that_is_not_json_by_its_content_type_is_415() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let body = br#"{"signal": "HUP"}"#;
    for content_type in [Some("text/plain"), None] {
        let answer = api.send("POST", "/v1/processes/web/signal", content_type, body);
        assert_eq!(answer.status, 415, "{content_type:?}: {answer}");
        answer.error();
    }
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_body_over_64_kib_is_413() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // Valid JSON of the right shape, but too big.
    let body = format!(
        r#"{{"signal": "HUP", "padding": "{}"}}"#,
        "x".repeat(65 * 1024)
    );
    let answer = api.post_json("/v1/processes/web/signal", &body);
    assert_eq!(answer.status, 413, "{answer}");
    answer.error();
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_wrong_method_is_405_with_the_allowed_ones() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let delete = api.send("DELETE", "/v1/processes", None, b"");
    assert_eq!(delete.status, 405, "{delete}");
    let allow = delete.header("allow").unwrap_or_else(|| panic!("{delete}"));
    assert!(allow.split(',').any(|m| m.trim() == "GET"), "{delete}");
    let get_stop = api.get("/v1/processes/web/stop");
    assert_eq!(get_stop.status, 405, "{get_stop}");
    let allow = get_stop
        .header("allow")
        .unwrap_or_else(|| panic!("{get_stop}"));
    assert!(allow.split(',').any(|m| m.trim() == "POST"), "{get_stop}");
    let post_pid = api.post("/v1/pid");
    assert_eq!(post_pid.status, 405, "{post_pid}");
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn an_unknown_endpoint_is_404() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // `/` is the web page (page.rs).
    for target in [
        "/index.html",
        "/v1",
        "/v1/nope",
        "/v2/processes",
        "/v1/processes/web/frobnicate",
    ] {
        let answer = api.get(target);
        assert_eq!(answer.status, 404, "{target}: {answer}");
        answer.error();
    }
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_request_that_is_not_http_is_closed_or_answered_400() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let garbage: [&[u8]; 3] = [
        b"hello there, this is not HTTP\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET /v1/processes HTTP/9.9 and more\r\n\r\n",
    ];
    for bytes in garbage {
        let raw = exchange(&api.socket, bytes);
        assert!(
            raw.is_empty() || raw.starts_with(b"HTTP/1.1 400"),
            "{bytes:?} was answered {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_client_that_leaves_mid_request_does_not_disturb_the_daemon() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // Half a request line; then headers that promise a body that never fully comes.
    let mut half_line = connect(&api.socket);
    half_line.write_all(b"GET /v1/proc").expect("send");
    drop(half_line);
    let mut half_body = connect(&api.socket);
    half_body
        .write_all(
            b"POST /v1/processes/web/signal HTTP/1.1\r\nHost: t\r\nContent-Type: \
              application/json\r\nContent-Length: 100\r\n\r\n{\"signal\": \"HU",
        )
        .expect("send");
    drop(half_body);
    // And one that asks and leaves without reading the answer.
    let mut no_reader = connect(&api.socket);
    no_reader
        .write_all(&request_bytes("GET", "/v1/processes", None, b""))
        .expect("send");
    drop(no_reader);
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn a_silent_client_does_not_hold_up_the_others() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    // Connected, sends nothing, and stays until the end of the test.
    let mut silent = connect(&api.socket);
    silent.write_all(b"GET /v1/pro").expect("send");
    assert_unaffected(&mut tm, &api, "web", pid);
    assert_eq!(api.get("/v1/pid").json(), json!({"pid": tm.daemon_pid()}));
    drop(silent);
}

#[test]
fn fifty_concurrent_clients_are_all_answered() {
    let (_sandbox, mut tm, api, pid) = web_and_workers();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let socket = api.socket.clone();
            std::thread::spawn(move || Api { socket }.get("/v1/processes"))
        })
        .collect();
    for thread in threads {
        let answer = thread.join().expect("a client thread");
        assert_eq!(answer.status, 200, "{answer}");
        assert_eq!(
            names(&answer.json()["processes"]),
            ["web", "workers:workers_00", "workers:workers_01"]
        );
    }
    assert_unaffected(&mut tm, &api, "web", pid);
}

// ---------------------------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------------------------

#[test]
fn the_socket_is_beside_the_configuration_with_mode_0600() {
    let (sandbox, _tm, api, _) = web_and_workers();
    assert_eq!(
        api.socket,
        sandbox.config_path().with_file_name("taskmaster.sock")
    );
    let metadata = std::fs::metadata(&api.socket).expect("the socket file");
    assert!(metadata.file_type().is_socket(), "{metadata:?}");
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn a_second_taskmaster_on_the_same_socket_refuses_to_start() {
    let (sandbox, mut tm, api, pid) = web_and_workers();
    let second = run_to_completion(sandbox.taskmaster_command(&["--no-shell"]), TIMEOUT);
    assert!(!second.status.success(), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(api.socket.to_str().expect("UTF-8")),
        "{stderr}"
    );
    // The first one is untouched: same socket file, same processes, started once.
    assert!(api.socket.exists());
    assert_unaffected(&mut tm, &api, "web", pid);
    assert_eq!(api.get("/v1/pid").json(), json!({"pid": tm.daemon_pid()}));
    assert_eq!(
        tm.log().matches("taskmaster started").count(),
        1,
        "{}",
        tm.log()
    );
}

#[test]
fn the_socket_in_use_advice_names_a_setting_that_exists() {
    let (sandbox, _tm, _api, _) = web_and_workers();
    let second = run_to_completion(sandbox.taskmaster_command(&["--no-shell"]), TIMEOUT);
    let stderr = String::from_utf8_lossy(&second.stderr);
    if stderr.contains("`socket:`") {
        // The message sends the user to a `socket:` key: the configuration must take one.
        let other = Sandbox::new();
        other.write_config(&format!(
            "socket: {}\n{}",
            yaml_quote(&other.file_str("other.sock")),
            config(&[workers()])
        ));
        let check = other.check_config();
        assert!(
            check.status.success(),
            "`run` said {stderr:?}, but `check` refuses `socket:`: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn a_stale_socket_left_by_a_killed_daemon_is_replaced() {
    let sandbox = Sandbox::new();
    let yaml = config(&[web_program(&sandbox)]);
    let (mut first, api) = start(&sandbox, &yaml);
    let old_web = web_pid(&sandbox, &mut first, &api);
    send_signal(first.daemon_pid(), Signal::KILL).expect("kill the daemon");
    first.wait_exit(TIMEOUT);
    assert!(api.socket.exists(), "a SIGKILLed daemon cannot remove it");
    // Its orphan is the test's to end.
    send_signal(old_web, Signal::KILL).expect("kill the orphan");
    wait_dead(old_web, TIMEOUT);
    std::fs::remove_file(sandbox.file("web.pid")).expect("remove the old pid file");

    let (mut second, api) = start(&sandbox, &yaml);
    assert_eq!(
        api.get("/v1/pid").json(),
        json!({"pid": second.daemon_pid()})
    );
    let new_web = web_pid(&sandbox, &mut second, &api);
    assert_ne!(new_web, old_web);
}

/// `GET /v1/pid` sent from a child process running as `uid` (and gid `uid`), and the raw answer
/// it read. The child does the exchange between fork and exec (so its credentials are the
/// peer's), writes the answer to its stdout, then runs `tm-fixture exit 0`.
fn raw_pid_request_as(uid: u32, socket: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;

    // SAFETY: sockaddr_un is plain data, for which all zeroes is a valid value.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < address.sun_path.len(), "socket path too long");
    for (to, &from) in address.sun_path.iter_mut().zip(path) {
        *to = from as libc::c_char;
    }
    let request = request_bytes("GET", "/v1/pid", None, b"");
    let mut cmd = Command::new(fixture_bin());
    cmd.args(["exit", "0"]).uid(uid).gid(uid).current_dir("/");
    // SAFETY: between fork and exec the closure makes only async-signal-safe system calls
    // (socket, connect, send, read, write, close) on memory prepared before the fork; it
    // allocates nothing. std has switched to `uid` before it runs.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let length = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, (&raw const address).cast(), length) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut sent = 0;
            while sent < request.len() {
                let n = libc::send(
                    fd,
                    request[sent..].as_ptr().cast(),
                    request.len() - sent,
                    libc::MSG_NOSIGNAL,
                );
                if n <= 0 {
                    break;
                }
                sent += n as usize;
            }
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    break;
                }
                libc::write(1, buf.as_ptr().cast(), n as usize);
            }
            libc::close(fd);
            Ok(())
        });
    }
    let output = run_to_completion(cmd, TIMEOUT);
    assert!(output.status.success(), "the peer failed: {output:?}");
    output.stdout
}

/// Lets anyone reach the socket, so that only the daemon's own check can refuse a peer.
fn open_the_socket_to_everyone(sandbox: &Sandbox, socket: &Path) {
    let mode = |m| std::fs::Permissions::from_mode(m);
    std::fs::set_permissions(sandbox.path(), mode(0o711)).expect("chmod the sandbox");
    std::fs::set_permissions(socket, mode(0o666)).expect("chmod the socket");
}

/// The uid of `nobody`, which is neither root nor taskmaster's.
const FOREIGN_UID: u32 = 65534;

#[test]
fn a_peer_of_another_uid_is_answered_403_and_root_is_served() {
    let (sandbox, mut tm, api, pid) = web_and_workers();
    open_the_socket_to_everyone(&sandbox, &api.socket);
    let foreign = raw_pid_request_as(FOREIGN_UID, &api.socket);
    let answer = Answer::parse(&foreign);
    assert_eq!(answer.status, 403, "{answer}");
    assert!(answer.error().contains("refused"), "{answer}");
    // The same request from root (the test's uid) is served: the 403 was the uid's doing.
    let root = Answer::parse(&raw_pid_request_as(0, &api.socket));
    assert_eq!(root.status, 200, "{root}");
    assert_eq!(root.json(), json!({"pid": tm.daemon_pid()}));
    assert_unaffected(&mut tm, &api, "web", pid);
}

#[test]
fn ctl_run_by_another_uid_is_refused_and_says_so() {
    let (sandbox, mut tm, api, pid) = web_and_workers();
    open_the_socket_to_everyone(&sandbox, &api.socket);
    let mut ctl = Command::new(taskmaster_bin());
    ctl.arg("ctl")
        .arg("-s")
        .arg(&api.socket)
        .arg("status")
        .uid(FOREIGN_UID)
        .gid(FOREIGN_UID)
        .current_dir("/")
        .env("HOME", "/nonexistent");
    let output = run_to_completion(ctl, TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr.contains("refused") || stderr.contains("403"),
        "the message does not say the daemon refused: {stderr:?}"
    );
    assert_unaffected(&mut tm, &api, "web", pid);
}

/// Regression: with nothing running the daemon exits at once after a shutdown, and it used to
/// close the connection before the answer was written.
#[test]
fn shutdown_with_nothing_running_is_still_answered() {
    let sandbox = Sandbox::new();
    let idle = program(
        "idle",
        &fixture_cmd(&["sleep", "forever"]),
        &["autostart: false"],
    );
    let (mut tm, api) = start(&sandbox, &config(&[idle]));
    let answer = api.post("/v1/shutdown");
    assert_eq!(answer.status, 202, "{answer}");
    assert_eq!(answer.json(), json!({"shutting_down": true}));
    assert!(tm.wait_exit(TIMEOUT).success());
}

#[test]
fn state_says_whether_the_daemon_is_shutting_down() {
    let (_sandbox, _tm, api, _web) = web_and_workers();
    assert_eq!(api.get("/v1/state").json(), json!({"shutting_down": false}));
}

/// The `http:` key serves the same API on TCP, behind basic authentication.
#[test]
fn the_http_key_serves_the_api_on_tcp_with_basic_auth() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let sandbox = Sandbox::new();
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:{port}\n  username: admin\n  password: s3cret\n{}",
        config(&[web_program(&sandbox)])
    );
    let (_tm, api) = start(&sandbox, &yaml);
    let ask = |authorization: Option<&str>| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
        let request = format!("GET /v1/pid HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Answer::parse(&raw)
    };
    assert_eq!(ask(None).status, 401);
    // base64("admin:wrong") and base64("admin:s3cret")
    assert_eq!(ask(Some("YWRtaW46d3Jvbmc=")).status, 401);
    let answer = ask(Some("YWRtaW46czNjcmV0"));
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), api.get("/v1/pid").json());
}
