//! The control API on TCP (supervisord's `[inet_http_server]`), driven by the real
//! supervisorctl with a username and password, and refused without them.
//!
//! The daemon runs in this test's process (the binary has no configuration key for TCP yet), on
//! a configuration whose only program does not autostart: nothing is spawned. supervisorctl
//! comes from `$SUPERVISORCTL`, else `target/ci-venv/bin/supervisorctl` (made by `.ci/run`); a
//! missing one fails the test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskmaster_api::{ControlTcp, TcpSettings};
use taskmaster_core::{Config, Reply, Request};
use taskmaster_runtime::Daemon;

const TIMEOUT: Duration = Duration::from_secs(20);

fn supervisorctl_bin() -> PathBuf {
    let path = std::env::var_os("SUPERVISORCTL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv/bin/supervisorctl"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "supervisorctl not found at {}: `.ci/run` installs it; by hand: `python3 -m venv \
         target/ci-venv && target/ci-venv/bin/pip install supervisor==4.3.0`, or set SUPERVISORCTL",
        path.display()
    );
    path
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("taskmaster-api-tcp-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs supervisorctl with `args` to its end: exit status and stdout. The daemon in this
/// process reaps every child it has, so supervisorctl runs under `sh`, which waits for it and
/// writes its exit status to a file; `sh` is killed by pid past the deadline.
// The daemon in this process reaps `sh` if we do not: no zombie is left either way.
#[allow(clippy::zombie_processes)]
fn supervisorctl(dir: &Path, args: &[&str]) -> (i32, String) {
    let conf = dir.join("supervisorctl.conf");
    std::fs::write(&conf, "[supervisorctl]\n").expect("write supervisorctl.conf");
    let (out, code) = (
        dir.join("supervisorctl.out"),
        dir.join("supervisorctl.code"),
    );
    let _ = std::fs::remove_file(&code);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$@" > "$OUT"; echo $? > "$CODE.tmp" && mv "$CODE.tmp" "$CODE""#)
        .arg("sh")
        .arg(supervisorctl_bin())
        .arg("-c")
        .arg(&conf)
        .args(args)
        .env("OUT", &out)
        .env("CODE", &code)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run supervisorctl");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&code) {
            // Reaped by whichever of us and the daemon comes first; nothing is lost either way.
            let _ = child.wait();
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("supervisorctl {args:?} still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out).expect("read supervisorctl.out");
    (status.trim().parse().expect("an exit status"), stdout)
}

/// A raw `GET /v1/pid` with `authorization`, if any: the status line and the headers.
fn get_pid(addr: SocketAddr, authorization: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        stream,
        "GET /v1/pid HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn supervisorctl_drives_taskmaster_over_tcp_with_a_password_and_nothing_without() {
    let dir = TempDir::new();
    let config_path = dir.0.join("taskmaster.yaml");
    std::fs::write(
        &config_path,
        format!(
            "logfile: {}\nprograms:\n  idle:\n    cmd: sleep 1000\n    autostart: false\n",
            dir.0.join("taskmaster.log").display()
        ),
    )
    .expect("write the configuration");
    let config = Config::load(&config_path).expect("a valid configuration");
    let (daemon, handle) = Daemon::new(config, false).expect("a daemon");
    let tcp = ControlTcp::bind(&TcpSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        username: Some("admin".to_string()),
        password: Some("s3cret".to_string()),
    })
    .expect("bind");
    let addr = tcp.local_addr().expect("address");
    let served = handle.clone();
    let running =
        std::thread::spawn(move || daemon.run_blocking_with(|exiting| tcp.serve(served, exiting)));

    let url = format!("http://{addr}");
    let (code, out) = supervisorctl(
        &dir.0,
        &["-s", &url, "-u", "admin", "-p", "s3cret", "status"],
    );
    assert_eq!(
        (code, out.as_str()),
        (
            3,
            format!("{:<33}{:<10}{}\n", "idle", "STOPPED", "Not started").as_str()
        )
    );
    // supervisorctl says so, then (its own quirk) tries again and prints the 401 as an error.
    let wrong = ["-s", url.as_str(), "-u", "admin", "-p", "wrong", "status"];
    let none = ["-s", url.as_str(), "status"];
    for args in [&wrong[..], &none[..]] {
        let (code, out) = supervisorctl(&dir.0, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(
            out.starts_with("Server requires authentication\n") && out.contains("401"),
            "{args:?}: {out}"
        );
    }

    let refused = get_pid(addr, None);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{refused}"
    );
    // admin:s3cret
    let allowed = get_pid(addr, Some("Basic YWRtaW46czNjcmV0"));
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(
        allowed.contains(&format!("{{\"pid\":{}}}", std::process::id())),
        "{allowed}"
    );

    assert!(matches!(
        handle.call(Request::Shutdown),
        Ok(Reply::ShuttingDown)
    ));
    running
        .join()
        .expect("the daemon thread")
        .expect("the daemon ran");
}
