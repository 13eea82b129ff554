//! The taskmaster under test: finding the binaries cargo built, starting the daemon, and
//! ending it and everything the run started, each by its pid.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_send_signal, Signal};
use taskmaster_core::Request;

use crate::control::TimedClient;
use crate::procfs;
use crate::programs::Paths;

/// The programs the run needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub taskmaster: PathBuf,
    /// `tm-fixture`, the test program of the taskmaster crate.
    pub fixture: PathBuf,
    /// A `chaos` binary, for its `heartbeat` mode.
    pub worker: PathBuf,
}

impl Binaries {
    /// `taskmaster` and `tm-fixture` as cargo builds them in `profile_dir` (`target/release`),
    /// built first: `cargo build -p taskmaster --bins` with that profile, which does nothing
    /// when they are up to date (so the run never tests a stale daemon).
    pub fn built_by_cargo(profile_dir: &Path, worker: &Path) -> Result<Binaries, String> {
        let target_dir = profile_dir
            .parent()
            .ok_or_else(|| format!("{} is not in a target folder", profile_dir.display()))?;
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => return Err(format!("no profile in {}", profile_dir.display())),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(&cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "taskmaster",
                "--bins",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(&workspace)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
        if !status.success() {
            return Err(format!("cargo build -p taskmaster failed: {status}"));
        }
        Ok(Binaries {
            taskmaster: profile_dir.join("taskmaster"),
            fixture: profile_dir.join("tm-fixture"),
            worker: worker.to_path_buf(),
        })
    }

    /// Checks that each binary is there.
    pub fn check(&self) -> Result<(), String> {
        for path in [&self.taskmaster, &self.fixture, &self.worker] {
            if !path.is_file() {
                return Err(format!("{} does not exist", path.display()));
            }
        }
        Ok(())
    }
}

/// A running `taskmaster run --no-shell`.
pub struct Daemon {
    child: Child,
    pub pid: u32,
}

impl Daemon {
    /// Starts taskmaster on the configuration in `paths` and waits (at most `timeout`) until
    /// it answers `status`.
    pub fn start(taskmaster: &Path, paths: &Paths, timeout: Duration) -> Result<Daemon, String> {
        // A SIGSEGV to a child must not write a core file: none for taskmaster and its children.
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Core,
            rustix::process::Rlimit {
                current: Some(0),
                maximum: core.maximum,
            },
        );
        let output = |name: &str| {
            File::create(paths.dir.join(name)).map_err(|e| format!("cannot create {name}: {e}"))
        };
        let child = Command::new(taskmaster)
            .args(["run", "--no-shell", "-c"])
            .arg(paths.config())
            .current_dir(&paths.dir)
            .stdin(Stdio::null())
            .stdout(output("taskmaster.stdout")?)
            .stderr(output("taskmaster.stderr")?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", taskmaster.display()))?;
        let mut daemon = Daemon {
            pid: child.id(),
            child,
        };
        let mut client = TimedClient::new(&paths.socket(), timeout);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = daemon.exited() {
                let stderr =
                    fs::read_to_string(paths.dir.join("taskmaster.stderr")).unwrap_or_default();
                return Err(format!("taskmaster exited at start ({exit}): {stderr}"));
            }
            if paths.socket().exists() && client.call(Request::Status(Vec::new())).is_ok() {
                return Ok(daemon);
            }
            if Instant::now() >= deadline {
                daemon.kill();
                return Err(format!("taskmaster did not answer within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// How taskmaster ended, if it has.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot tell: {e}")),
        }
    }

    /// Asks taskmaster to shut down (every program stopped) and waits at most `timeout` for
    /// its exit; SIGKILL by its pid after that. Whether it went by itself.
    pub fn shut_down(&mut self, socket: &Path, timeout: Duration) -> bool {
        if self.exited().is_some() {
            return false;
        }
        let mut client = TimedClient::new(socket, timeout);
        let _ = client.call(Request::Shutdown);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn kill(&mut self) {
        // std's kill is kill(2) on this child's own pid; then it is reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

/// Ends every process of the run still alive (a child of taskmaster's, or anything that
/// escaped it), each by a pidfd opened for its pid: continued, then SIGKILL. Says which there
/// were.
pub fn end_stragglers(token_assignment: &str) -> Vec<String> {
    let mut ended = Vec::new();
    // A process forking as it dies may leave another: a few passes.
    for _ in 0..5 {
        let mut found = false;
        for pid in procfs::all_pids() {
            let Some(raw) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            else {
                continue;
            };
            let Ok(fd) = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
            else {
                continue;
            };
            let zombie = procfs::stat(pid).is_none_or(|s| s.is_zombie());
            if zombie || !procfs::has_variable(pid, token_assignment) {
                continue;
            }
            found = true;
            let args = procfs::cmdline(pid).unwrap_or_default().join(" ");
            ended.push(format!("pid {pid} ({args})"));
            let _ = pidfd_send_signal(&fd, Signal::KILL);
            let _ = pidfd_send_signal(&fd, Signal::CONT);
        }
        if !found {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    ended
}
