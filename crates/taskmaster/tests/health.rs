//! Health checks (issue 4, item 4) on real processes: each kind of check (`cmd`, `http`, `tcp`)
//! against a target the test switches between healthy and failing. A check that fails fewer
//! times in a row than `retries` recovers without a restart; `retries` failures in a row make
//! the process unhealthy: logged, stopped and restarted by its policy. Failures within
//! `start_period` do not count, and a paused process is not checked at all.

use crate::support::unix_http;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::support::{
    config, fixture_cmd, is_alive, program, send_signal, wait_dead, wait_until, yaml_quote,
    Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::Value;
use unix_http::Api;

/// Checks every 500 ms: two checks in a row, the window a test has to make a failing target
/// healthy again before the third failure restarts the process, are a second apart.
const INTERVAL: &str = "500ms";
const RETRIES: u32 = 3;

// ---------------------------------------------------------------------------------------------
// What the checks look at
// ---------------------------------------------------------------------------------------------

/// An HTTP server on 127.0.0.1 answering every request `200 OK` or `503 Service Unavailable`
/// as the test says, one connection after the other, until it is shut down (or dropped): from
/// then on its port refuses connections.
struct HealthServer {
    port: u16,
    healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthServer {
    fn start(healthy: bool) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a local address").port();
        let healthy = Arc::new(AtomicBool::new(healthy));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (healthy, stop) = (Arc::clone(&healthy), Arc::clone(&stop));
            thread::spawn(move || {
                // Ends when `shut_down` sets `stop` and connects to wake the accept.
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        answer(stream, healthy.load(Ordering::SeqCst));
                    }
                }
                // `listener` is closed here: the port refuses connections from now on.
            })
        };
        HealthServer {
            port,
            healthy,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Closes the listener, and returns once it is closed.
    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        thread.join().expect("the health server's thread");
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Reads one request's head (bounded in size and time) and answers it, closing the connection.
fn answer(mut stream: TcpStream, healthy: bool) {
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = if healthy {
        ("200 OK", "ok")
    } else {
        ("503 Service Unavailable", "sick")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// What a test's health check looks at, and the switch the test flips.
enum Target {
    /// `cmd: test -e FILE`: healthy while the file exists.
    Cmd { file: std::path::PathBuf },
    /// `http:` the server's URL: healthy while it answers 200.
    Http(HealthServer),
    /// `tcp:` a port on 127.0.0.1: healthy while a listener is bound to it.
    Tcp {
        port: u16,
        listener: Option<TcpListener>,
    },
}

impl Target {
    fn cmd(sandbox: &Sandbox) -> Target {
        Target::Cmd {
            file: sandbox.file("ok"),
        }
    }

    fn http() -> Target {
        Target::Http(HealthServer::start(false))
    }

    /// A port that was free a moment ago, with no listener yet.
    fn tcp() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a local address").port();
        Target::Tcp {
            port,
            listener: None,
        }
    }

    /// The probe's key of the `healthcheck` mapping.
    fn probe(&self) -> String {
        match self {
            Target::Cmd { file } => {
                let file = file.to_str().expect("sandbox paths are UTF-8");
                format!("cmd: {}", yaml_quote(&format!("test -e {file}")))
            }
            Target::Http(server) => format!("http: {}", yaml_quote(&server.url())),
            Target::Tcp { port, .. } => {
                format!("tcp: {}", yaml_quote(&format!("127.0.0.1:{port}")))
            }
        }
    }

    /// What a passing check says in the log (`healthy (...)`).
    fn passing(&self) -> &'static str {
        match self {
            Target::Cmd { .. } => "exit status 0",
            Target::Http(_) => "HTTP 200",
            Target::Tcp { .. } => "connected",
        }
    }

    /// What a failing check says in the log and the status.
    fn failing(&self) -> &'static str {
        match self {
            Target::Cmd { .. } => "exit status 1",
            Target::Http(_) => "HTTP 503",
            Target::Tcp { .. } => "connection refused",
        }
    }

    fn set_healthy(&mut self, healthy: bool) {
        match self {
            Target::Cmd { file } if healthy => {
                fs::write(&*file, "").unwrap_or_else(|e| panic!("create {}: {e}", file.display()))
            }
            Target::Cmd { file } => {
                fs::remove_file(&*file)
                    .unwrap_or_else(|e| panic!("remove {}: {e}", file.display()));
            }
            Target::Http(server) => server.set_healthy(healthy),
            Target::Tcp { port, listener } if healthy => {
                let port = *port;
                // The port was this test's a moment ago; a closing connection may hold it a
                // little longer.
                *listener = Some(wait_until(
                    &format!("bind 127.0.0.1:{port}"),
                    TIMEOUT,
                    || TcpListener::bind(("127.0.0.1", port)).ok(),
                ));
            }
            Target::Tcp { listener, .. } => *listener = None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Daemons and configurations
// ---------------------------------------------------------------------------------------------

/// A `healthcheck:` line checking `probe` every [`INTERVAL`], `retries` [`RETRIES`], plus
/// `extra` keys of the mapping.
fn healthcheck(probe: &str, extra: &str) -> String {
    format!(
        "healthcheck: {{{probe}, interval: {INTERVAL}, timeout: 1s, retries: {RETRIES}{extra}}}"
    )
}

/// A program `name` that sleeps, with `healthcheck`.
fn sleeper(name: &str, healthcheck: &str) -> String {
    program(
        name,
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", "stoptime: 2", healthcheck],
    )
}

/// Writes `yaml`, starts `taskmaster run` on it, and connects to its API.
fn start(sandbox: &Sandbox, yaml: &str) -> (Taskmaster, Api) {
    sandbox.write_config(yaml);
    let tm = Taskmaster::start(sandbox, &[]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    (tm, api)
}

/// Waits until `status NAME` shows it RUNNING with `health` last in its description, and
/// returns its pid.
fn wait_for_health(tm: &mut Taskmaster, name: &str, health: &str) -> u32 {
    let suffix = format!(", {health}");
    let status = wait_until(&format!("{name} RUNNING and {health}"), TIMEOUT, || {
        let status = tm.status(name);
        (status.state == "RUNNING" && status.description.ends_with(&suffix)).then_some(status)
    });
    status.pid().expect("a RUNNING process has a pid")
}

/// The event log from byte `offset` on: what happened after a moment the test noted.
fn log_since(tm: &Taskmaster, offset: usize) -> String {
    tm.log().get(offset..).unwrap_or_default().to_string()
}

/// The position of the first line of `text` containing `needle`; fails the test without one.
fn line_index(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line containing {needle:?} in:\n{text}"))
}

fn pid_of(process: &Value) -> Option<u32> {
    process["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
}

// ---------------------------------------------------------------------------------------------
// Each kind of check failing and recovering
// ---------------------------------------------------------------------------------------------

/// The whole story for one kind of check:
///
/// 1. the target is healthy: `web` becomes healthy in status and the log;
/// 2. it fails once: counted and shown, then it passes again: "healthy again", same pid;
/// 3. it keeps failing: after `retries` failures in a row `web` is logged unhealthy, stopped
///    and restarted (a new pid, `last_exit.cause` "unhealthy" in the API);
/// 4. healthy again, the new child is healthy too.
fn fails_recovers_then_is_restarted_when_unhealthy(sandbox: &Sandbox, mut target: Target) {
    target.set_healthy(true);
    let (mut tm, api) = start(
        sandbox,
        &config(&[sleeper("web", &healthcheck(&target.probe(), ""))]),
    );
    let (passing, failing) = (target.passing(), target.failing());

    // 1. Healthy.
    let pid = wait_for_health(&mut tm, "web", "healthy");
    tm.wait_for_log(&format!("web: healthy ({passing})"), TIMEOUT);
    let process = api.process("web");
    assert_eq!(process["health"]["state"], "healthy", "{process}");

    // 2. One failure, then success: no restart.
    let mark = tm.log().len();
    target.set_healthy(false);
    tm.wait_for_log(
        &format!("web: health check failed (1 of {RETRIES} in a row): {failing}"),
        TIMEOUT,
    );
    // The next check is an interval away; a slow test may see two failures, never three.
    let status = tm.status("web");
    assert!(
        status.description.contains(", health check failing (")
            && status
                .description
                .ends_with(&format!(" in a row): {failing}")),
        "the failure shows in status: {status:?}"
    );
    let process = api.process("web");
    assert_eq!(process["health"]["state"], "failing", "{process}");
    assert!(
        process["health"]["failures"].as_u64() < Some(u64::from(RETRIES)),
        "{process}"
    );
    assert_eq!(process["health"]["detail"], failing, "{process}");
    target.set_healthy(true);
    tm.wait_for_log(&format!("web: healthy again ({passing})"), TIMEOUT);
    assert_eq!(wait_for_health(&mut tm, "web", "healthy"), pid);
    let recovered = log_since(&tm, mark);
    assert!(!recovered.contains("unhealthy"), "{recovered}");
    assert!(!recovered.contains("spawned"), "{recovered}");

    // 3. `retries` failures in a row: unhealthy, restarted.
    let mark = tm.log().len();
    target.set_healthy(false);
    tm.wait_for_log(&format!("web: unhealthy: {failing}"), TIMEOUT);
    let process = api.wait_for_process("web", "new RUNNING child", |p| {
        p["state"] == "RUNNING" && pid_of(p).is_some_and(|new| new != pid)
    });
    let new_pid = pid_of(&process).expect("a RUNNING process has a pid");
    tm.track(new_pid);
    wait_dead(pid, TIMEOUT);
    // The verdict on the old child is not the new one's: a RUNNING process is never seen
    // with `retries` failures, unless they were carried over.
    let health = &process["health"];
    assert!(
        health["state"] == "unknown" || health["failures"].as_u64() < Some(u64::from(RETRIES)),
        "{process}"
    );
    let last_exit = &process["last_exit"];
    assert_eq!(last_exit["cause"], "unhealthy", "{process}");
    assert_eq!(last_exit["detail"], failing, "{process}");
    assert_eq!(
        last_exit["signal"], "SIGTERM",
        "stopped with its stopsignal: {process}"
    );
    let failed = log_since(&tm, mark);
    let unhealthy = line_index(&failed, &format!("web: unhealthy: {failing}"));
    for n in 1..=RETRIES {
        let nth = format!("web: health check failed ({n} of {RETRIES} in a row): {failing}");
        assert!(line_index(&failed, &nth) < unhealthy, "{failed}");
    }
    assert!(
        line_index(&failed, "web: stopping: sending TERM") > unhealthy,
        "{failed}"
    );
    assert!(
        line_index(&failed, &format!("web: spawned with pid {new_pid}")) > unhealthy,
        "{failed}"
    );

    // 4. The new child is checked afresh.
    target.set_healthy(true);
    let healthy_pid = wait_for_health(&mut tm, "web", "healthy");
    assert!(is_alive(healthy_pid));
    assert_ne!(healthy_pid, pid);
}

#[test]
fn a_cmd_check_fails_recovers_and_restarts_an_unhealthy_process() {
    let sandbox = Sandbox::new();
    let target = Target::cmd(&sandbox);
    fails_recovers_then_is_restarted_when_unhealthy(&sandbox, target);
}

#[test]
fn an_http_check_fails_recovers_and_restarts_an_unhealthy_process() {
    let sandbox = Sandbox::new();
    fails_recovers_then_is_restarted_when_unhealthy(&sandbox, Target::http());
}

#[test]
fn a_tcp_check_fails_recovers_and_restarts_an_unhealthy_process() {
    let sandbox = Sandbox::new();
    fails_recovers_then_is_restarted_when_unhealthy(&sandbox, Target::tcp());
}

// ---------------------------------------------------------------------------------------------
// start_period and pauses
// ---------------------------------------------------------------------------------------------

#[test]
fn failures_within_the_start_period_are_not_counted() {
    let sandbox = Sandbox::new();
    let missing = sandbox.file_str("never-created");
    // A check that always fails; the start period spans several intervals.
    let probe = format!("cmd: {}", yaml_quote(&format!("test -e {missing}")));
    let (tm, _api) = start(
        &sandbox,
        &config(&[sleeper("web", &healthcheck(&probe, ", start_period: 3s"))]),
    );
    tm.wait_for_log("web: unhealthy: exit status 1", TIMEOUT);
    let log = tm.log();
    let not_counted =
        "web: health check failed within its start_period, not counted: exit status 1";
    let first_counted = line_index(&log, "web: health check failed (1 of 3 in a row)");
    let uncounted_before = log
        .lines()
        .take(first_counted)
        .filter(|line| line.contains(not_counted))
        .count();
    // More failures than `retries` went by without making the process unhealthy.
    assert!(
        uncounted_before > RETRIES as usize,
        "{uncounted_before} failures within the start period:\n{log}"
    );
    assert!(
        !log.lines()
            .skip(first_counted)
            .any(|line| line.contains(not_counted)),
        "a failure after the start period is counted:\n{log}"
    );
    assert!(line_index(&log, "web: unhealthy") > first_counted, "{log}");
}

/// `sleeper` and `witness` are checked against the same HTTP server. Once `sleeper` is
/// paused by SIGSTOP the server goes away: `witness` is found unhealthy and restarted, twice,
/// while `sleeper`, paused, is not checked at all. Resumed, it is checked again, and found
/// unhealthy in turn.
#[test]
fn a_paused_process_is_not_declared_unhealthy_while_paused() {
    let sandbox = Sandbox::new();
    let mut server = HealthServer::start(true);
    let check = healthcheck(&format!("http: {}", yaml_quote(&server.url())), "");
    let (mut tm, api) = start(
        &sandbox,
        &config(&[sleeper("sleeper", &check), sleeper("witness", &check)]),
    );
    let sleeper = wait_for_health(&mut tm, "sleeper", "healthy");
    let witness = wait_for_health(&mut tm, "witness", "healthy");

    send_signal(sleeper, Signal::STOP).expect("SIGSTOP sleeper");
    tm.wait_for_log("sleeper: paused by SIGSTOP", TIMEOUT);
    let mark = tm.log().len();
    server.shut_down();

    // Enough time for `retries` failed checks, twice over, as the witness shows.
    tm.wait_for_log("witness: unhealthy: connection refused", TIMEOUT);
    let process = api.wait_for_process("witness", "a second unhealthy restart", |p| {
        // The verdict's line; the exit's own line adds how it ended.
        let verdicts = log_since(&tm, mark)
            .lines()
            .filter(|line| line.ends_with("witness: unhealthy: connection refused"))
            .count();
        verdicts >= 2 && p["state"] == "RUNNING"
    });
    tm.track(pid_of(&process).expect("witness's pid"));
    wait_dead(witness, TIMEOUT);

    let while_paused = log_since(&tm, mark);
    assert!(
        !while_paused.contains("sleeper: health check failed")
            && !while_paused.contains("sleeper: unhealthy"),
        "{while_paused}"
    );
    let process = api.process("sleeper");
    assert_eq!(process["state"], "RUNNING", "{process}");
    assert_eq!(pid_of(&process), Some(sleeper), "{process}");
    assert_eq!(process["paused"], "SIGSTOP", "{process}");
    assert_eq!(process["health"]["state"], "healthy", "{process}");
    let status = tm.status("sleeper");
    assert!(
        status.description.ends_with(", paused (SIGSTOP), healthy"),
        "{status:?}"
    );

    // Resumed, it is checked again: the server is still gone.
    send_signal(sleeper, Signal::CONT).expect("SIGCONT sleeper");
    tm.wait_for_log("sleeper: resumed (SIGCONT)", TIMEOUT);
    tm.wait_for_log(
        &format!("sleeper: health check failed (1 of {RETRIES} in a row): connection refused"),
        TIMEOUT,
    );
    tm.wait_for_log("sleeper: unhealthy: connection refused", TIMEOUT);
    wait_dead(sleeper, TIMEOUT);
}
