//! The shipped example, `examples/taskmaster.yaml`, stays valid and runs as it says: a web
//! server, four workers, and a program that runs once on request.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

/// The example as shipped.
fn example_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/taskmaster.yaml"
    ))
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Runs a copy of the example in `sandbox`: its `/tmp/` files in the sandbox instead, its web
/// server on a free port (returned). The copy keeps the example's lack of `logfile:`, so the
/// event log is `taskmaster.log` beside it, which is where [`Taskmaster::log`] reads.
fn start_example(sandbox: &Sandbox) -> (Taskmaster, u16) {
    let text = fs::read_to_string(example_path()).expect("read the example");
    assert!(
        text.contains("8081") && text.contains("/tmp/"),
        "the example changed shape; update this test:\n{text}"
    );
    let port = free_port();
    let folder = format!("{}/", sandbox.path().display());
    let copy = text
        .replace("/tmp/", &folder)
        .replace("8081", &port.to_string());
    fs::write(sandbox.config_path(), copy).expect("write the copy");
    (Taskmaster::start(sandbox, &[]), port)
}

const WORKERS: [&str; 4] = [
    "workers:workers_00",
    "workers:workers_01",
    "workers:workers_02",
    "workers:workers_03",
];

/// The `Umask:` of a process, from `/proc/PID/status`.
fn umask_of(pid: u32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .map(|umask| umask.trim().to_owned())
        .unwrap_or_else(|| panic!("no Umask in /proc/{pid}/status"))
}

/// The environment of a process, from `/proc/PID/environ`, as `NAME=value` entries.
fn environ_of(pid: u32) -> Vec<String> {
    let bytes = fs::read(format!("/proc/{pid}/environ")).expect("read /proc environ");
    bytes
        .split(|&b| b == 0)
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect()
}

/// One HTTP/1.0 GET of `/` on 127.0.0.1:`port`: the whole response, or `None` if the
/// connection failed or nothing came back.
fn http_get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    (!response.is_empty()).then(|| String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn shipped_example_passes_check() {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("check").arg("-c").arg(example_path());
    let output = run_to_completion(cmd, TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert!(stdout.contains("valid (3 program(s))"), "{stdout}");
}

#[test]
fn shipped_example_runs_web_and_four_workers_and_leaves_once_stopped() {
    let sandbox = Sandbox::new();
    let (mut tm, _port) = start_example(&sandbox);
    let web = tm.running_pid("web");
    let workers: Vec<u32> = WORKERS.iter().map(|n| tm.running_pid(n)).collect();
    let once = tm.status("once");
    assert_eq!(
        (once.state.as_str(), once.description.as_str()),
        ("STOPPED", "Not started")
    );
    let names: Vec<String> = tm.status_all().into_iter().map(|s| s.name).collect();
    let mut expected = vec!["once", "web"];
    expected.extend(WORKERS);
    assert_eq!(names, expected);

    // Each setting reached the processes.
    assert_eq!(umask_of(web), "0022");
    let env = environ_of(web);
    for var in ["STARTED_BY=taskmaster", "ANSWER=42"] {
        assert!(env.iter().any(|e| e == var), "{var} not in {env:?}");
    }
    for &pid in &workers {
        assert_eq!(umask_of(pid), "0077");
    }
    for pid in std::iter::once(web).chain(workers.iter().copied()) {
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).expect("read /proc cwd");
        assert_eq!(cwd, PathBuf::from("/tmp"), "cwd of {pid}");
    }
    // Every worker says `working` at once; their stdout goes to the sandbox's copy of
    // /tmp/workers.stdout.
    sandbox.wait_for_contents(
        "workers.stdout",
        |text| text.matches("working").count() >= WORKERS.len(),
        TIMEOUT,
    );

    tm.shutdown();
    for pid in std::iter::once(web).chain(workers) {
        assert!(!is_alive(pid), "pid {pid} outlived the shutdown");
    }
}

#[test]
fn shipped_example_web_server_answers_http() {
    let sandbox = Sandbox::new();
    let (mut tm, port) = start_example(&sandbox);
    tm.running_pid("web");
    // RUNNING means up for a second, not necessarily listening yet: ask until it answers.
    let response = wait_until(&format!("an HTTP answer on port {port}"), TIMEOUT, || {
        http_get(port)
    });
    assert!(
        response.starts_with("HTTP/1.0 200 "),
        "{}",
        response.lines().next().unwrap_or("")
    );
    // http.server logs each request on stderr: the sandbox's copy of /tmp/web.stderr.
    sandbox.wait_for_contents(
        "web.stderr",
        |text| text.contains("\"GET / HTTP/1.0\" 200"),
        TIMEOUT,
    );
    tm.shutdown();
}

#[test]
fn shipped_example_once_runs_on_request_then_is_exited() {
    let sandbox = Sandbox::new();
    let (mut tm, _port) = start_example(&sandbox);
    tm.running_pid("web");
    assert!(!tm.log().contains("once: spawned"), "{}", tm.log());

    // starttime 0: started as soon as spawned; `echo` then exits 0 and, with autorestart
    // never, stays EXITED.
    assert_eq!(tm.command("start once", 1), ["once: started"]);
    let status = tm.wait_for_state("once", "EXITED", TIMEOUT);
    assert!(
        !status.description.is_empty() && status.description != "Not started",
        "{status:?}"
    );
    let log = tm.log();
    let spawned = log
        .lines()
        .position(|l| l.contains("once: spawned with pid "))
        .unwrap_or_else(|| panic!("once never spawned:\n{log}"));
    let running = log
        .lines()
        .position(|l| l.ends_with("once: RUNNING"))
        .unwrap_or_else(|| panic!("once never RUNNING:\n{log}"));
    let exited = log
        .lines()
        .position(|l| l.ends_with("once: exited with code 0 (expected)"))
        .unwrap_or_else(|| panic!("once never exited with 0:\n{log}"));
    assert!(spawned < running && running < exited, "{log}");
    assert!(!log.contains("once: restarting"), "{log}");
    assert_eq!(log.matches("once: spawned").count(), 1, "{log}");

    tm.shutdown();
}
