//! The sd_notify side against real datagram sockets: a path and an abstract name, bound by the
//! test. The functions that read the environment (`ready()`, `watchdog_interval()`, ...) run
//! in a child process given the variables: this test binary itself, started again to run only
//! [`child_process`] (the environment of a multi-threaded test process cannot safely change).

use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use taskmaster_child::{NotifySocket, Watchdog};

/// The deadline for anything a test waits for: reaching it means a hang, not slowness.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A socket bound by the test, as taskmaster binds its notify socket.
struct Listener {
    socket: UnixDatagram,
    /// What `NOTIFY_SOCKET` would say: the path, or `@name`.
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl Listener {
    /// A socket at a path in a fresh temporary folder.
    fn at_path() -> Listener {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path: PathBuf = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the socket");
        Listener::ready(
            socket,
            path.to_str().expect("a UTF-8 path").to_string(),
            Some(dir),
        )
    }

    /// A socket in the abstract namespace, with a name no other test uses.
    fn abstract_name() -> Listener {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "taskmaster-child-test/{}/{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract name");
        let socket = UnixDatagram::bind_addr(&address).expect("bind the socket");
        Listener::ready(socket, format!("@{name}"), None)
    }

    fn ready(socket: UnixDatagram, name: String, dir: Option<tempfile::TempDir>) -> Listener {
        socket
            .set_read_timeout(Some(TIMEOUT))
            .expect("a read timeout");
        Listener {
            socket,
            name,
            _dir: dir,
        }
    }

    fn notify_socket(&self) -> NotifySocket {
        NotifySocket::new(&self.name).expect("a valid socket name")
    }

    /// The next datagram; fails the test if none comes within [`TIMEOUT`].
    fn receive(&self) -> String {
        let mut buffer = [0u8; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
            Err(e) => panic!("no datagram on {} within {TIMEOUT:?}: {e}", self.name),
        }
    }

    /// The datagrams already received, without waiting.
    fn drain(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).expect("non-blocking");
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        // Bounded: a broken watchdog beating in a tight loop must not keep this test here.
        for _ in 0..10_000 {
            match self.socket.recv(&mut buffer) {
                Ok(n) => received.push(String::from_utf8_lossy(&buffer[..n]).into_owned()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv on {}: {e}", self.name),
            }
        }
        self.socket.set_nonblocking(false).expect("blocking");
        received
    }
}

// ---- the explicit socket ---------------------------------------------------------------

#[test]
fn a_message_is_one_datagram_on_a_socket_path() {
    let listener = Listener::at_path();
    let socket = listener.notify_socket();
    socket.send("READY=1\nSTATUS=up").expect("send");
    socket.send("WATCHDOG=1").expect("send");
    assert_eq!(listener.receive(), "READY=1\nSTATUS=up");
    assert_eq!(listener.receive(), "WATCHDOG=1");
}

#[test]
fn a_message_reaches_an_abstract_socket_named_with_an_at_sign() {
    let listener = Listener::abstract_name();
    listener.notify_socket().send("READY=1").expect("send");
    assert_eq!(listener.receive(), "READY=1");
}

#[test]
fn sending_to_a_socket_nobody_listens_on_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("nobody.sock");
    let socket = NotifySocket::new(&path).expect("a valid socket name");
    let error = socket.send("READY=1").expect_err("nobody listens");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

// ---- the watchdog ----------------------------------------------------------------------

#[test]
fn a_watchdog_beats_every_half_interval() {
    let listener = Listener::at_path();
    let interval = Duration::from_millis(200);
    let watchdog = Watchdog::beating(listener.notify_socket(), interval);
    assert_eq!(watchdog.interval(), interval);
    assert_eq!(
        listener.receive(),
        "WATCHDOG=1",
        "the first beat comes at once"
    );
    let first = Instant::now();
    for _ in 0..5 {
        assert_eq!(listener.receive(), "WATCHDOG=1");
    }
    let five_periods = first.elapsed();
    // Beats are never closer than half the interval: five periods take 500 ms at the least.
    // The bound is looser (by one period) only because the first receive may itself have come
    // late; a watchdog beating too often is far below it.
    assert!(
        five_periods >= interval * 2,
        "5 more beats in {five_periods:?} at a {interval:?} interval: too fast"
    );
    drop(watchdog);
}

#[test]
fn dropping_a_watchdog_stops_it_at_once() {
    let listener = Listener::at_path();
    // A long interval: a drop that waited for the next beat would take 30 seconds.
    let watchdog = Watchdog::beating(listener.notify_socket(), Duration::from_secs(60));
    assert_eq!(listener.receive(), "WATCHDOG=1");
    let dropping = Instant::now();
    drop(watchdog);
    let took = dropping.elapsed();
    assert!(took < Duration::from_secs(5), "drop took {took:?}");
}

#[test]
fn a_dropped_watchdog_sends_nothing_more() {
    let listener = Listener::at_path();
    let interval = Duration::from_millis(20);
    let watchdog = Watchdog::beating(listener.notify_socket(), interval);
    for _ in 0..3 {
        assert_eq!(listener.receive(), "WATCHDOG=1");
    }
    drop(watchdog);
    listener.drain();
    // Drop joins the thread, so a correct watchdog cannot send from here on, and this wait
    // cannot fail it; a broken one gets fifty of its periods to show itself.
    std::thread::sleep(interval * 25);
    assert_eq!(listener.drain(), Vec::<String>::new());
}

// ---- the environment, in a child process -----------------------------------------------

/// The variable that tells this test binary, started again, what [`child_process`] does.
const ROLE: &str = "TASKMASTER_CHILD_TEST_ROLE";
/// [`child_process`] prints each result on a line of its own after this marker.
const RESULT: &str = "CHILD-RESULT=";

/// Not a test of its own: the body of the child process the tests below start, chosen by
/// `TASKMASTER_CHILD_TEST_ROLE`. Without it (a normal test run), it does nothing.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let result = |value: String| println!("{RESULT}{value}");
    match role.as_str() {
        "notify" => {
            let sent = [
                taskmaster_child::ready(),
                taskmaster_child::status("line one\nline two"),
                taskmaster_child::stopping(),
                taskmaster_child::reloading(),
                taskmaster_child::heartbeat(),
                taskmaster_child::watchdog_trigger(),
                taskmaster_child::notify("CUSTOM=1\nSTATUS=two fields"),
            ];
            for sent in sent {
                result(format!("{sent:?}"));
            }
        }
        "interval" => result(format!("{:?}", taskmaster_child::watchdog_interval())),
        "watchdog" => {
            let watchdog = Watchdog::start();
            result(format!("{:?}", watchdog.as_ref().map(Watchdog::interval)));
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs [`child_process`] as `role` with `env` (and nothing else of the variables these
/// tests use), through `sh -c 'VAR=$$ exec ...'` when `own_pid_in` names a variable that must
/// hold the child's own pid. Returns the results it printed.
fn run_child(role: &str, env: &[(&str, &str)], own_pid_in: Option<&str>) -> Vec<String> {
    let test_binary = std::env::current_exe().expect("the test binary");
    let harness_args = [
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut command = match own_pid_in {
        Some(variable) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!(r#"{variable}=$$ exec "$0" "$@""#))
                .arg(&test_binary);
            sh
        }
        None => Command::new(&test_binary),
    };
    command
        .args(harness_args)
        .env(ROLE, role)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let Output {
        status,
        stdout,
        stderr,
    } = output_within(command);
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status.success(),
        "child {role} failed: {status}\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
        .lines()
        // The harness may print `test child_process ... ` on the same line, before the result.
        .filter_map(|line| line.split_once(RESULT))
        .map(|(_, result)| result.to_string())
        .collect()
}

/// The output of `command`, which must end within [`TIMEOUT`]; killed by its pid otherwise.
fn output_within(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let deadline = Instant::now() + TIMEOUT;
    // Bounded by the deadline. The child's output is small: it fits in the pipes meanwhile.
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} still running after {TIMEOUT:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the child's output")
}

#[test]
fn each_notification_is_sent_to_notify_socket_as_sd_notify_sends_it() {
    for listener in [Listener::at_path(), Listener::abstract_name()] {
        let results = run_child("notify", &[("NOTIFY_SOCKET", &listener.name)], None);
        assert_eq!(results, ["Ok(true)"; 7], "{}", listener.name);
        let received: Vec<String> = (0..7).map(|_| listener.receive()).collect();
        assert_eq!(
            received,
            [
                "READY=1",
                "STATUS=line one line two",
                "STOPPING=1",
                "RELOADING=1",
                "WATCHDOG=1",
                "WATCHDOG=trigger",
                "CUSTOM=1\nSTATUS=two fields",
            ],
            "{}",
            listener.name
        );
    }
}

#[test]
fn without_notify_socket_every_notification_is_a_no_op() {
    let results = run_child("notify", &[], None);
    assert_eq!(results, ["Ok(false)"; 7]);
    let results = run_child("notify", &[("NOTIFY_SOCKET", "")], None);
    assert_eq!(results, ["Ok(false)"; 7]);
}

#[test]
fn a_notify_socket_that_is_not_a_socket_name_is_an_error() {
    let results = run_child("notify", &[("NOTIFY_SOCKET", "relative.sock")], None);
    assert_eq!(results.len(), 7);
    for result in results {
        assert!(
            result.starts_with("Err(") && result.contains("InvalidInput"),
            "{result}"
        );
    }
}

#[test]
fn the_watchdog_interval_is_for_the_process_watchdog_pid_names() {
    let usec = ("WATCHDOG_USEC", "2000000");
    let two_seconds = "Some(2s)";
    assert_eq!(run_child("interval", &[usec], None), [two_seconds]);
    assert_eq!(
        run_child("interval", &[usec], Some("WATCHDOG_PID")),
        [two_seconds]
    );
    // Another process's variables, inherited: not for us. (Pid 1 is never this test's child.)
    assert_eq!(
        run_child("interval", &[usec, ("WATCHDOG_PID", "1")], None),
        ["None"]
    );
    assert_eq!(run_child("interval", &[], None), ["None"]);
    assert_eq!(
        run_child("interval", &[("WATCHDOG_USEC", "0")], None),
        ["None"]
    );
}

#[test]
fn a_watchdog_starts_only_when_the_supervisor_asks_for_heartbeats() {
    let listener = Listener::at_path();
    let socket = ("NOTIFY_SOCKET", listener.name.as_str());
    let usec = ("WATCHDOG_USEC", "500000");
    assert_eq!(
        run_child("watchdog", &[socket, usec], None),
        ["Some(500ms)"]
    );
    // The first beat goes as the thread starts, before the child drops it and exits.
    assert_eq!(listener.receive(), "WATCHDOG=1");

    assert_eq!(
        run_child("watchdog", &[socket], None),
        ["None"],
        "no interval"
    );
    assert_eq!(run_child("watchdog", &[usec], None), ["None"], "no socket");
}
