//! Support for taskmaster's integration tests (`crate::support` in each module of `tests.rs`).
//!
//! Theory of operation. A test makes a [`Sandbox`] (a temporary folder that is also `$HOME`),
//! writes a configuration into it whose programs run `tm-fixture` (see `fixture/main.rs`; build
//! a `cmd:` with [`fixture_cmd`]), and starts the real binary:
//!
//! - [`Taskmaster`] runs `taskmaster run -c CONFIG` on pipes. Its shell then reads one command a
//!   line and prints no prompt, so the test talks to it line by line: [`Taskmaster::command`],
//!   [`Taskmaster::status`], [`Taskmaster::wait_for_state`], and reads the event log with
//!   [`Taskmaster::wait_for_log`].
//! - [`PtySession`] runs any command on a pseudo-terminal and keeps a `vt100` screen of what it
//!   shows, for what only happens on a terminal (the line editor, its history and completion).
//!
//! Three rules keep the tests honest and the machine clean:
//!
//! 1. **Time never decides a result.** Nothing sleeps a fixed time and then looks: every wait is
//!    for a condition, with a deadline ([`TIMEOUT`]) generous enough that only a hang reaches it,
//!    and reaching it fails the test with everything seen so far.
//! 2. **Every process is ended by its pid.** A [`Process`] (the base of [`Taskmaster`] and
//!    [`PtySession`]) ends what it started when dropped, even when the test panics: it first
//!    freezes the whole tree with SIGSTOP, so nothing can fork behind its back, then SIGKILLs it.
//!    Pids a test learns of (`pid NAME`, `status`) are [`Reaper::track`]ed, and SIGKILLed on drop
//!    with the process group they lead. Nothing is ever killed by name.
//! 3. **Every loop is bounded**, by a deadline or a count.
#![allow(dead_code)]

pub mod etcd;
pub mod unix_http;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// The deadline for anything a test waits for. Generous: reaching it means a hang, not slowness.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The pause between two looks at a condition.
const POLL: Duration = Duration::from_millis(20);

/// The `taskmaster` binary under test.
pub fn taskmaster_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_taskmaster"))
}

/// The `tm-fixture` binary (`tests/fixture/main.rs`).
pub fn fixture_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tm-fixture"))
}

/// What the venv of [`supervisor_venv_bin`] holds, from PyPI, as `.ci/run` installs it.
pub const VENV_PACKAGES: &str =
    "supervisor==4.3.0 superlance==2.0.0 superfsmon==1.2.3 watchdog==7.1.1 aiosmtpd==1.4.6";

/// A program of the Python venv that has PyPI's `supervisor` 4.3.0 and its ecosystem
/// ([`VENV_PACKAGES`]: `python`, `supervisord`, `supervisorctl`, `echo_supervisord_conf`,
/// superlance's `crashmail` and `memmon`, `superfsmon`): the folder of `$SUPERVISORCTL`, else
/// `target/ci-venv/bin`, which CI's `.ci/run` makes. A missing one fails the test: the tests
/// that need supervisord's own code or its clients are never silently skipped.
pub fn supervisor_venv_bin(name: &str) -> PathBuf {
    let folder = std::env::var_os("SUPERVISORCTL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv/bin"),
        |ctl| {
            Path::new(&ctl)
                .parent()
                .expect("SUPERVISORCTL names a file")
                .to_path_buf()
        },
    );
    let path = folder.join(name);
    assert!(
        path.exists(),
        "{} not found: this test needs a venv with PyPI's {VENV_PACKAGES}. `.ci/run` installs \
         them; by hand: `python3 -m venv target/ci-venv && target/ci-venv/bin/pip install \
         {VENV_PACKAGES}`, or set SUPERVISORCTL to the supervisorctl of such a venv",
        path.display()
    );
    path
}

/// A `cmd:` value running the fixture with `args`, ready to follow `cmd: ` in YAML: the words
/// are quoted for a shell, and the whole is a double-quoted YAML string.
///
/// `fixture_cmd(&["print", "hi there", "sleep", "forever"])` gives
/// `"/…/tm-fixture print 'hi there' sleep forever"`.
pub fn fixture_cmd(args: &[&str]) -> String {
    let fixture = fixture_bin();
    let words: Vec<String> = std::iter::once(fixture.to_str().expect("fixture path is UTF-8"))
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect();
    yaml_quote(&words.join(" "))
}

/// `word` quoted for a POSIX shell, left as it is when it needs no quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `text` as a double-quoted YAML scalar.
pub fn yaml_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', r"\\").replace('"', r#"\""#))
}

/// Calls `f` until it returns `Some`, and returns that; panics naming `what` if `timeout` passes
/// first. `f` is called at least once, and once more after the deadline, so a condition that
/// became true while the test was descheduled still counts.
pub fn wait_until<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_until_or_none(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// [`wait_until`], but `None` when `timeout` passes, for callers with more to say.
pub fn wait_until_or_none<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let past_deadline = Instant::now() >= deadline;
        if let Some(value) = f() {
            return Some(value);
        }
        if past_deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// The soft RLIMIT_NOFILE of process `pid`, from /proc (`None` if unlimited or unreadable).
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs `cmd` with no stdin and its output captured, like [`Command::output`] but with a
/// deadline: fails the test if the command has not exited and closed its output within
/// `timeout` (the command and what it started are killed then).
pub fn run_to_completion(mut cmd: Command, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut process = Process::spawn(cmd);
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = sender.send(bytes);
        });
        receiver
    };
    let stdout = read_all(process.child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(process.child.stderr.take().map(|p| Box::new(p) as _));
    let pid = process.pid();
    let status = process
        .wait_exit_within(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|| panic!("pid {pid} still running after {timeout:?}"));
    let collect = |receiver: Receiver<Vec<u8>>, name: &str| {
        receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the {name} of pid {pid} still open after {timeout:?}"))
    };
    Output {
        status,
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// The fields of `/proc/PID/stat` the tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `T`, `Z`, ...
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    /// Clock ticks after boot; with the pid, it names one process even after the pid is reused.
    pub starttime: u64,
}

/// `/proc/PID/stat` of `pid`, or `None` when there is no such process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and parentheses.
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // `fields[0]` is field 3 of proc(5).
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        starttime: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` names a live process: one that exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    let Some(pid_t) = to_pid(pid) else {
        return false;
    };
    let exists = match rustix::process::test_kill_process(pid_t) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    };
    exists && proc_stat(pid).is_some_and(|stat| stat.state != 'Z')
}

/// Waits until `pid` is no longer alive (gone, or a zombie).
pub fn wait_dead(pid: u32, timeout: Duration) {
    wait_until(&format!("pid {pid} to die"), timeout, || {
        (!is_alive(pid)).then_some(())
    });
}

/// Sends `signal` to the process `pid`.
pub fn send_signal(pid: u32, signal: Signal) -> io::Result<()> {
    let pid_t = to_pid(pid).ok_or_else(|| io::Error::other(format!("bad pid {pid}")))?;
    Ok(rustix::process::kill_process(pid_t, signal)?)
}

/// The pids of every live descendant of `root` (children, their children, ...), parents first.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(stat) = proc_stat(pid) {
                children.entry(stat.ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(parent) = next.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            // /proc is not a snapshot: never follow a cycle a reused pid could make.
            if child != root && !found.contains(&child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// Reads a `report PATH` file of the fixture: `key=value` per line (`pid`, `ppid`, `pgid`,
/// `sid`, `cwd`, `umask`, `fds`, `sigblk`, `sigign`, and `env.NAME` per variable).
pub fn read_report(path: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read report {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The signal numbers in a `/proc` signal mask (a report's `sigblk` or `sigign`), ascending.
///
/// Children that std's `Command` spawns from a multi-threaded process (a test binary,
/// taskmaster) start with glibc's internal signals 32 and 33 ignored; compare `n < 32` when
/// only the classic signals matter.
pub fn signals_in_mask(hex: &str) -> Vec<i32> {
    let mask =
        u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("signal mask {hex:?}: {e}"));
    (1..=64).filter(|n| mask & (1 << (n - 1)) != 0).collect()
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// Processes a test must not leave behind. On drop (or [`Reaper::kill_all`]), each tracked
/// process that is still the same process (same pid and start time) is SIGKILLed, and so is the
/// process group it led when tracked, unless that is the test's own group.
#[derive(Debug, Default)]
pub struct Reaper {
    tracked: Vec<(u32, ProcStat)>,
}

impl Reaper {
    pub fn new() -> Reaper {
        Reaper::default()
    }

    /// Adds `pid` to the processes to kill; a pid that is already gone is ignored.
    pub fn track(&mut self, pid: u32) {
        if self.tracked.iter().any(|&(tracked, _)| tracked == pid) {
            return;
        }
        if let Some(stat) = proc_stat(pid).filter(|stat| stat.state != 'Z') {
            self.tracked.push((pid, stat));
        }
    }

    /// Tracks `root` and every descendant it has now.
    pub fn track_tree(&mut self, root: u32) {
        self.track(root);
        for pid in descendants(root) {
            self.track(pid);
        }
    }

    /// SIGKILLs every tracked process, and the groups they lead.
    pub fn kill_all(&mut self) {
        let own_group = rustix::process::getpgrp().as_raw_pid().unsigned_abs();
        for (pid, when_tracked) in self.tracked.drain(..) {
            let same_process = proc_stat(pid)
                .is_some_and(|now| now.starttime == when_tracked.starttime && now.state != 'Z');
            if same_process {
                let _ = send_signal(pid, Signal::KILL);
            }
            // A group outlives its leader, and the kernel reuses no pid while its group exists.
            let leader = when_tracked.pgid == pid;
            if leader && pid > 1 && pid != own_group {
                if let Some(group) = to_pid(pid) {
                    let _ = rustix::process::kill_process_group(group, Signal::KILL);
                }
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A child process this test started. Dropped while still running, it is ended with its whole
/// tree (see the module docs): gracefully first when made with [`Process::graceful`], then by
/// freezing and SIGKILLing every process under it, then every [`Reaper`]-tracked pid.
#[derive(Debug)]
pub struct Process {
    child: Child,
    status: Option<ExitStatus>,
    /// Signal sent first on drop; `None` kills at once.
    graceful_stop: Option<Signal>,
    reaper: Reaper,
}

impl Process {
    /// Spawns `cmd` as it is configured.
    pub fn spawn(mut cmd: Command) -> Process {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        Process {
            child,
            status: None,
            graceful_stop: None,
            reaper: Reaper::new(),
        }
    }

    /// On drop, sends `signal` and waits up to [`TIMEOUT`] for an exit before killing.
    pub fn graceful(mut self, signal: Signal) -> Process {
        self.graceful_stop = Some(signal);
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdin, when it was spawned with a pipe there (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Makes sure `pid` is killed when this process is dropped.
    pub fn track(&mut self, pid: u32) {
        self.reaper.track(pid);
    }

    /// The exit status, if the process has exited (it is reaped then).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on a child");
        }
        self.status
    }

    /// Waits for the process to exit, up to `timeout`; `None` if it is still running then.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let past_deadline = Instant::now() >= deadline;
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if past_deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits for the process to exit; panics if it does not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid();
        self.wait_exit_within(timeout)
            .unwrap_or_else(|| panic!("pid {pid} still running after {timeout:?}"))
    }

    /// Freezes the process and everything under it, then SIGKILLs them all and reaps the
    /// process. Frozen processes cannot fork, so no descendant escapes between look and kill.
    fn kill_tree(&mut self) {
        let root = self.pid();
        let _ = send_signal(root, Signal::STOP);
        let mut frozen = HashSet::from([root]);
        // Each round freezes what the last one found; a tree deeper than this is not a test's.
        for _ in 0..100 {
            let new: Vec<u32> = descendants(root)
                .into_iter()
                .filter(|pid| !frozen.contains(pid))
                .collect();
            if new.is_empty() {
                break;
            }
            for pid in new {
                self.reaper.track(pid);
                let _ = send_signal(pid, Signal::STOP);
                frozen.insert(pid);
            }
        }
        let _ = send_signal(root, Signal::KILL);
        self.reaper.kill_all();
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap pid {root}: {e}");
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            // Once the process is gone its children are reparented and no longer found under it.
            self.reaper.track_tree(self.pid());
            if let Some(signal) = self.graceful_stop {
                let _ = send_signal(self.pid(), signal);
                if self.wait_exit_within(TIMEOUT).is_none() {
                    eprintln!(
                        "pid {} ignored {signal:?} for {TIMEOUT:?}; killing it",
                        self.pid()
                    );
                }
            }
            if self.try_status().is_none() {
                self.kill_tree();
            }
        }
        self.reaper.kill_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------------------------

/// A temporary folder for one test: its configuration, event log, pid files and reports, and
/// `$HOME` for the taskmaster it starts. Removed when dropped.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("taskmaster-test-")
            .tempdir()
            .expect("create a temporary folder");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path of `name` in the sandbox (the file need not exist).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// `file(name)` as a string, for configurations and fixture arguments.
    pub fn file_str(&self, name: &str) -> String {
        self.file(name)
            .to_str()
            .expect("sandbox paths are UTF-8")
            .to_owned()
    }

    /// Where [`Sandbox::write_config`] writes: `taskmaster.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.file("taskmaster.yaml")
    }

    /// The event log [`Sandbox::write_config`] names: `taskmaster.log`.
    pub fn logfile(&self) -> PathBuf {
        self.file("taskmaster.log")
    }

    /// Writes `yaml` to `taskmaster.yaml` and returns its path. The text is dedented first (the
    /// indentation common to all its lines goes, so an indented raw string works), and a
    /// `logfile:` line naming [`Sandbox::logfile`] is put first unless the text has its own.
    pub fn write_config(&self, yaml: &str) -> PathBuf {
        let mut text = dedent(yaml);
        if !text.lines().any(|line| line.starts_with("logfile:")) {
            let logfile = self.logfile();
            let logfile = logfile.to_str().expect("sandbox paths are UTF-8");
            text = format!("logfile: {}\n{text}", yaml_quote(logfile));
        }
        let path = self.config_path();
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The contents of `name`; panics if it cannot be read.
    pub fn read(&self, name: &str) -> String {
        let path = self.file(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Waits until `name` exists, and returns its contents. The fixture writes its files
    /// atomically, so a file that exists is complete.
    pub fn wait_for_file(&self, name: &str, timeout: Duration) -> String {
        let path = self.file(name);
        wait_until(&format!("file {}", path.display()), timeout, || {
            fs::read_to_string(&path).ok()
        })
    }

    /// Waits until `name` exists and its contents satisfy `pred`, and returns them; for files
    /// that grow, such as a program's captured stdout.
    pub fn wait_for_contents(
        &self,
        name: &str,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let path = self.file(name);
        let mut last = None;
        let found = wait_until_or_none(timeout, || {
            let text = fs::read_to_string(&path).ok()?;
            if pred(&text) {
                return Some(text);
            }
            last = Some(text);
            None
        });
        found.unwrap_or_else(|| {
            panic!(
                "{} not as expected within {timeout:?}; it holds:\n{}",
                path.display(),
                last.as_deref().unwrap_or("(no such file)")
            )
        })
    }

    /// Waits for a pid file (the fixture's `pidfile`, `grandchild`) and returns the pid in it.
    pub fn wait_for_pidfile(&self, name: &str, timeout: Duration) -> u32 {
        let text = self.wait_for_file(name, timeout);
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("pid file {name} holds {text:?}: {e}"))
    }

    /// Runs `taskmaster check -c CONFIG` to its end and returns its exit status and output.
    pub fn check_config(&self) -> Output {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.arg("check")
            .arg("-c")
            .arg(self.config_path())
            .current_dir(self.path())
            .env("HOME", self.path());
        run_to_completion(cmd, TIMEOUT)
    }

    /// `taskmaster run -c CONFIG ARGS...`, run in the sandbox with `HOME` set to it. Pipes or a
    /// terminal are the caller's to choose.
    pub fn taskmaster_command(&self, extra_args: &[&str]) -> Command {
        self.taskmaster_command_on(&self.config_path(), extra_args)
    }

    /// [`Sandbox::taskmaster_command`] on another configuration file (a supervisord.conf).
    pub fn taskmaster_command_on(&self, config: &Path, extra_args: &[&str]) -> Command {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.arg("run")
            .arg("-c")
            .arg(config)
            .args(extra_args)
            .current_dir(self.path())
            .env("HOME", self.path());
        cmd
    }

    /// `taskmaster ctl -s SOCKET ARGS...` for the daemon of this sandbox, run to its end.
    pub fn ctl(&self, args: &[&str]) -> Ran {
        Ran::from(run_to_completion(self.ctl_command(args), TIMEOUT))
    }

    /// `taskmaster ctl -s SOCKET ARGS...` for the daemon of this sandbox (its socket beside
    /// the configuration), run in the sandbox with HOME there and no history taken from the
    /// environment the tests run in.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.arg("ctl")
            .arg("-s")
            .arg(self.file("taskmaster.sock"))
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .env_remove("TASKMASTER_HISTORY");
        cmd
    }
}

/// A command run to its end: its exit code and what it printed.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Its stdout's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Asserts the exit status, showing everything printed when it differs.
    pub fn expect_code(&self, code: i32) -> &Ran {
        assert_eq!(self.code, Some(code), "{self:?}");
        self
    }

    /// Its stdout and stderr, one after the other.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// `text` without the indentation all its non-blank lines share, and without its leading and
/// trailing blank lines.
pub fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in text.lines().skip_while(|line| line.trim().is_empty()) {
        out.push_str(line.get(indent..).unwrap_or("").trim_end_matches(' '));
        out.push('\n');
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// Taskmaster on pipes
// ---------------------------------------------------------------------------------------------

/// One line of `status`: `format!("{:<33}{:<10}{}", name, state, description)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub name: String,
    pub state: String,
    pub description: String,
}

impl StatusLine {
    /// Parses a status line whose name has no spaces and is shorter than its 33-column field.
    pub fn parse(line: &str) -> Option<StatusLine> {
        let name = line.split_whitespace().next()?;
        StatusLine::parse_named(name, line)
    }

    /// Parses a status line for the process `name` (of any length); `None` if the line is not
    /// about `name` or has no state, e.g. `web: ERROR (no such process)`.
    pub fn parse_named(name: &str, line: &str) -> Option<StatusLine> {
        let rest = line.strip_prefix(name)?;
        // A name that fills its field is followed directly by the state.
        if name.len() < 33 && !rest.starts_with(' ') {
            return None;
        }
        let rest = rest.trim_start();
        let (state, description) = rest.split_once(' ').unwrap_or((rest, ""));
        let is_state = !state.is_empty() && state.chars().all(|c| c.is_ascii_uppercase());
        is_state.then(|| StatusLine {
            name: name.to_owned(),
            state: state.to_owned(),
            description: description.trim().to_owned(),
        })
    }

    /// The pid in a description like `pid 4242, uptime 0:01:02`.
    pub fn pid(&self) -> Option<u32> {
        let digits: String = self
            .description
            .strip_prefix("pid ")?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok().filter(|&pid| pid != 0)
    }
}

/// A running `taskmaster run -c CONFIG`, its shell on pipes. Every line read from its stdout is
/// kept, and shown with its stderr and event log when a wait fails or the test panics. Dropped
/// while running, it gets SIGTERM (a graceful shutdown), then, after [`TIMEOUT`], SIGKILL with
/// every process under it; tracked pids are SIGKILLed in any case.
pub struct Taskmaster {
    process: Process,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    transcript: Vec<String>,
    stderr: Arc<Mutex<String>>,
    logfile: PathBuf,
}

impl Taskmaster {
    /// Starts `taskmaster run -c CONFIG EXTRA_ARGS...` in `sandbox` (see
    /// [`Sandbox::taskmaster_command`]).
    pub fn start(sandbox: &Sandbox, extra_args: &[&str]) -> Taskmaster {
        Taskmaster::spawn(sandbox, sandbox.taskmaster_command(extra_args))
    }

    /// [`Taskmaster::start`], returning once the control socket beside the configuration
    /// takes connections (for tests that talk to it with ctl or the API first).
    pub fn start_serving(sandbox: &Sandbox, extra_args: &[&str]) -> Taskmaster {
        let tm = Taskmaster::start(sandbox, extra_args);
        let socket = sandbox.file("taskmaster.sock");
        let connect = || std::os::unix::net::UnixStream::connect(&socket).ok();
        if wait_until_or_none(TIMEOUT, connect).is_none() {
            panic!(
                "the control socket never took a connection\n{}",
                tm.diagnostics()
            );
        }
        tm
    }

    /// Starts `cmd` as the daemon, on pipes; its event log is `sandbox.logfile()`.
    pub fn spawn(sandbox: &Sandbox, mut cmd: Command) -> Taskmaster {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = Process::spawn(cmd).graceful(Signal::TERM);
        let stdin = process.child.stdin.take();
        let stdout = process.child.stdout.take().expect("piped stdout");
        let stderr_pipe = process.child.stderr.take().expect("piped stderr");

        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in read_lines(stdout) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in read_lines(stderr_pipe) {
                let mut sink = sink.lock().expect("stderr buffer lock");
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        Taskmaster {
            process,
            stdin,
            lines,
            transcript: Vec::new(),
            stderr,
            logfile: sandbox.logfile(),
        }
    }

    /// The daemon's own pid.
    pub fn daemon_pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin was closed by close_stdin");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot send {line:?}: {e}"));
        }
    }

    /// Closes the daemon's stdin: end of file, which its shell takes as `shutdown`.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads stdout lines until one satisfies `pred`, and returns it; the lines before it are
    /// skipped (they stay in the transcript). Fails the test if `timeout` passes or stdout ends.
    pub fn expect_line(&mut self, mut pred: impl FnMut(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no matching stdout line within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail("stdout closed before a matching line")
                }
            }
        }
    }

    /// The next stdout line.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        self.expect_line(|_| true, timeout)
    }

    /// Sends `cmd` and returns the next `n_lines` lines of output.
    pub fn command(&mut self, cmd: &str, n_lines: usize) -> Vec<String> {
        self.send(cmd);
        (0..n_lines).map(|_| self.next_line(TIMEOUT)).collect()
    }

    /// Sends `cmd` and returns all its output, however many lines: `pid` is sent right after it,
    /// and its answer (the daemon's own pid) marks where the output of `cmd` ends.
    pub fn command_all(&mut self, cmd: &str) -> Vec<String> {
        self.send(cmd);
        self.send("pid");
        let fence = self.daemon_pid().to_string();
        let mut output = Vec::new();
        // Bounded: each line read either ends the loop or comes within TIMEOUT.
        loop {
            let line = self.next_line(TIMEOUT);
            if line.trim() == fence {
                return output;
            }
            output.push(line);
        }
    }

    /// `status NAME`, parsed; its pid, if any, is tracked. Fails the test if the answer is not
    /// a status line for `name`.
    pub fn status(&mut self, name: &str) -> StatusLine {
        let line = self.command(&format!("status {name}"), 1).remove(0);
        let status = StatusLine::parse_named(name, &line)
            .unwrap_or_else(|| self.fail(&format!("`status {name}` answered {line:?}")));
        if let Some(pid) = status.pid() {
            self.track(pid);
        }
        status
    }

    /// `status` for every process, parsed; every pid shown is tracked.
    pub fn status_all(&mut self) -> Vec<StatusLine> {
        let lines = self.command_all("status");
        let statuses: Vec<StatusLine> = lines
            .iter()
            .map(|line| {
                StatusLine::parse(line)
                    .unwrap_or_else(|| self.fail(&format!("`status` answered {line:?}")))
            })
            .collect();
        for pid in statuses.iter().filter_map(StatusLine::pid) {
            self.track(pid);
        }
        statuses
    }

    /// Asks `status NAME` until the state is `state`, and returns that status line.
    /// Waits until `name` is RUNNING, and returns its pid.
    pub fn running_pid(&mut self, name: &str) -> u32 {
        let status = self.wait_for_state(name, "RUNNING", TIMEOUT);
        status
            .pid()
            .unwrap_or_else(|| panic!("{name} RUNNING without a pid: {status:?}"))
    }

    pub fn wait_for_state(&mut self, name: &str, state: &str, timeout: Duration) -> StatusLine {
        let deadline = Instant::now() + timeout;
        loop {
            let past_deadline = Instant::now() >= deadline;
            let status = self.status(name);
            if status.state == state {
                return status;
            }
            if past_deadline {
                self.fail(&format!(
                    "{name} not {state} within {timeout:?}; last: {status:?}"
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// `pid NAME`: the pid, or `None` for 0 (not running). The pid is tracked.
    pub fn pid(&mut self, name: &str) -> Option<u32> {
        let line = self.command(&format!("pid {name}"), 1).remove(0);
        let pid: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("`pid {name}` answered {line:?}")));
        if pid == 0 {
            return None;
        }
        self.track(pid);
        Some(pid)
    }

    /// Makes sure `pid` is SIGKILLed when this taskmaster is dropped.
    pub fn track(&mut self, pid: u32) {
        self.process.track(pid);
    }

    /// What the daemon (and whatever shares its stderr) wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The event log as it is now ("" if it does not exist yet).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.logfile).unwrap_or_default()
    }

    /// Waits until a line of the event log contains `needle`, and returns the first such line.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let past_deadline = Instant::now() >= deadline;
            if let Some(line) = self.log().lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            if past_deadline {
                self.fail(&format!(
                    "no log line containing {needle:?} within {timeout:?}"
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        if let Err(e) = send_signal(self.daemon_pid(), signal) {
            self.fail(&format!("cannot send {signal:?} to the daemon: {e}"));
        }
    }

    /// Waits for the daemon to exit, and returns how it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.process.wait_exit_within(timeout) {
            Some(status) => status,
            None => self.fail(&format!("taskmaster still running after {timeout:?}")),
        }
    }

    /// `shutdown`: expects `Shut down` and a successful exit, and returns the exit status.
    pub fn shutdown(&mut self) -> ExitStatus {
        self.send("shutdown");
        self.expect_line(|line| line == "Shut down", TIMEOUT);
        let status = self.wait_exit(TIMEOUT);
        if !status.success() {
            self.fail(&format!("shutdown exited with {status}"));
        }
        status
    }

    /// Everything known of the daemon: stdout read so far, stderr and the event log.
    pub fn diagnostics(&self) -> String {
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!(
            "--- taskmaster stdout (read so far) ---\n{}\n--- taskmaster stderr ---\n{stderr}\n\
             --- event log {} ---\n{}",
            self.transcript.join("\n"),
            self.logfile.display(),
            self.log(),
        )
    }

    fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.diagnostics())
    }
}

impl Drop for Taskmaster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        // `process` drops next: graceful stop, then the tree and tracked pids are killed.
    }
}

/// Lines of `reader`, lossily decoded, without their line ending.
fn read_lines(reader: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(reader);
    std::iter::from_fn(move || {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    line.pop();
                }
                Some(String::from_utf8_lossy(&line).into_owned())
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Pseudo-terminal
// ---------------------------------------------------------------------------------------------

/// Keys, as a terminal sends them.
pub const UP: &str = "\x1b[A";
pub const DOWN: &str = "\x1b[B";
pub const TAB: &str = "\t";
pub const ENTER: &str = "\r";
pub const CTRL_C: &str = "\x03";
pub const CTRL_D: &str = "\x04";

/// The size of a [`PtySession`]'s terminal.
pub const PTY_ROWS: u16 = 40;
pub const PTY_COLS: u16 = 120;

/// Answers what a real terminal answers and `vt100` does not: the cursor position report
/// (`ESC [ 6 n`), which line editors such as rustyline ask for before each prompt. Without an
/// answer rustyline waits 100 ms and may take the next key typed for the answer.
#[derive(Default)]
struct TerminalReplies {
    pending: Vec<u8>,
}

impl vt100::Callbacks for TerminalReplies {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        if c == 'n' && i1.is_none() && params.len() == 1 && params[0] == [6] {
            let (row, col) = screen.cursor_position();
            self.pending
                .extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
        }
    }
}

/// A command running on a new pseudo-terminal of [`PTY_ROWS`]x[`PTY_COLS`], as its session
/// leader with the terminal as controlling terminal and as stdin, stdout and stderr. A reader
/// thread feeds all output to a `vt100` screen. Dropped while running, the command is killed
/// with every process under it.
pub struct PtySession {
    process: Process,
    /// The terminal's master side; `None` once [`PtySession::hang_up`] closed it.
    master: Option<Arc<File>>,
    parser: Arc<Mutex<vt100::Parser<TerminalReplies>>>,
    /// Set when the terminal has no writer left (the command and its children are gone).
    closed: Arc<AtomicBool>,
    /// Tells the reader thread to let go of the master, for [`PtySession::hang_up`].
    hanging_up: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
}

impl PtySession {
    /// Spawns `cmd` on a new terminal; `TERM` is set to `xterm` unless `cmd` sets it.
    pub fn spawn(mut cmd: Command) -> PtySession {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pseudo-terminal master");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let slave_name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = rustix::fs::open(
            std::ffi::OsStr::from_bytes(slave_name.as_bytes()),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open the pseudo-terminal slave");
        let size = rustix::termios::Winsize {
            ws_row: PTY_ROWS,
            ws_col: PTY_COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, size).expect("set the terminal size");

        if !cmd.get_envs().any(|(key, _)| key == "TERM") {
            cmd.env("TERM", "xterm");
        }
        let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().expect("dup the terminal slave");
        cmd.stdin(dup(&slave)).stdout(dup(&slave)).stderr(slave);
        // SAFETY: the closure runs in the child between fork and exec, and only makes two
        // system calls (rustix calls the kernel directly: no allocation, no lock).
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        // `cmd` holds the parent's copies of the slave; they close when it drops, so that
        // reading the master ends once the command's side is gone.
        let process = Process::spawn(cmd);

        let master = Arc::new(File::from(master));
        let nonzero = |n| std::num::NonZeroU16::new(n).expect("a terminal size is not 0");
        let parser = Arc::new(Mutex::new(vt100::Parser::new_with_callbacks(
            nonzero(PTY_ROWS),
            nonzero(PTY_COLS),
            0,
            TerminalReplies::default(),
        )));
        let closed = Arc::new(AtomicBool::new(false));
        let hanging_up = Arc::new(AtomicBool::new(false));
        let reader = {
            let (master, parser) = (master.clone(), parser.clone());
            let (closed, hanging_up) = (closed.clone(), hanging_up.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Ends on EIO (no process holds the slave any more), or when told to hang up:
                // it waits for output a moment at a time to look at that.
                let poll_time = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: POLL.as_nanos() as _,
                };
                while !hanging_up.load(Ordering::SeqCst) {
                    let mut fds = [rustix::event::PollFd::new(
                        &*master,
                        rustix::event::PollFlags::IN,
                    )];
                    match rustix::event::poll(&mut fds, Some(&poll_time)) {
                        Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    let Ok(n @ 1..) = (&*master).read(&mut buf) else {
                        break;
                    };
                    let replies = {
                        let mut parser = parser.lock().expect("screen lock");
                        parser.process(&buf[..n]);
                        std::mem::take(&mut parser.callbacks_mut().pending)
                    };
                    if !replies.is_empty() && (&*master).write_all(&replies).is_err() {
                        break;
                    }
                }
                closed.store(true, Ordering::SeqCst);
            })
        };
        PtySession {
            process,
            master: Some(master),
            parser,
            closed,
            hanging_up,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Makes sure `pid` is SIGKILLed when this session is dropped.
    pub fn track(&mut self, pid: u32) {
        self.process.track(pid);
    }

    /// Types `bytes` (keys like [`UP`] included).
    pub fn send(&self, bytes: impl AsRef<[u8]>) {
        let Some(master) = &self.master else {
            panic!(
                "cannot type on a terminal that was hung up\n{}",
                self.dump()
            );
        };
        if let Err(e) = (&**master).write_all(bytes.as_ref()) {
            panic!("cannot type on the terminal: {e}\n{}", self.dump());
        }
    }

    /// Closes the terminal as a terminal emulator's window closes: the master side is closed,
    /// and the kernel hangs the terminal up (SIGHUP to the session leader, the command). The
    /// screen keeps what it showed.
    pub fn hang_up(&mut self) {
        self.hanging_up.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            // The reader looks at `hanging_up` at least every POLL.
            let _ = reader.join();
        }
        self.master = None;
    }

    /// Types `line` and Enter.
    pub fn send_line(&self, line: &str) {
        self.send(format!("{line}{ENTER}"));
    }

    /// The text on the screen, rows separated by newlines, trailing blanks trimmed.
    pub fn screen(&self) -> String {
        self.parser.lock().expect("screen lock").screen().contents()
    }

    /// The cursor's (row, column), from 0.
    pub fn cursor(&self) -> (u16, u16) {
        self.parser
            .lock()
            .expect("screen lock")
            .screen()
            .cursor_position()
    }

    /// Waits until `pred` holds for the screen, and returns the screen. Fails the test with
    /// the screen shown if `timeout` passes first.
    pub fn wait_for_screen(&self, mut pred: impl FnMut(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let past_deadline = Instant::now() >= deadline;
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if past_deadline {
                panic!("screen not as expected within {timeout:?}\n{}", self.dump());
            }
            thread::sleep(POLL);
        }
    }

    /// Waits for the command to exit, and returns how it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.process.wait_exit_within(timeout) {
            Some(status) => status,
            None => panic!(
                "pid {} still running after {timeout:?}\n{}",
                self.pid(),
                self.dump()
            ),
        }
    }

    /// Whether every process holding the terminal has closed it.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn dump(&self) -> String {
        format!(
            "--- screen ({PTY_ROWS}x{PTY_COLS}, cursor at {:?}) ---\n{}\n--- end of screen ---",
            self.cursor(),
            self.screen()
        )
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.dump());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small configurations
// ---------------------------------------------------------------------------------------------

/// One program of a configuration: `name`, its `cmd` (already a YAML value, as
/// [`fixture_cmd`] gives) and more `key: value` lines.
pub fn program(name: &str, cmd: &str, keys: &[&str]) -> String {
    let mut yaml = format!("  {name}:\n    cmd: {cmd}\n");
    for key in keys {
        yaml.push_str(&format!("    {key}\n"));
    }
    yaml
}

/// A configuration of the programs [`program`] gives.
pub fn config(programs: &[String]) -> String {
    format!("programs:\n{}", programs.concat())
}

/// `web`: writes its pid to web.pid and `hello` to web.out, then sleeps.
pub fn web_program(sandbox: &Sandbox) -> String {
    let pidfile = sandbox.file_str("web.pid");
    program(
        "web",
        &fixture_cmd(&["pidfile", &pidfile, "print", "hello", "sleep", "forever"]),
        &["starttime: 0", "stoptime: 1", "stdout: web.out"],
    )
}

/// `idle`: sleeps, never started unless asked.
pub fn idle_program() -> String {
    program(
        "idle",
        &fixture_cmd(&["sleep", "forever"]),
        &["starttime: 0", "autostart: false"],
    )
}

/// The last line of a terminal screen that holds anything: where the cursor's prompt is.
pub fn current_line(screen: &str) -> String {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
        .to_string()
}
