//! `Control` against the real taskmaster: `taskmaster run` on a configuration of `sleep`
//! programs, in a temporary folder, driven through its control socket.
//!
//! The binary is another package's, so cargo does not build it for this test: [`taskmaster`]
//! asks cargo to (once per run of this file; up to date, it costs a fraction of a second). It
//! builds where this test binary was built, with the same profile, and with the options of
//! `cargo test --workspace` (bins and examples of the whole workspace, so that dependencies get
//! the same features), so it finds what the outer cargo built and builds nothing twice. cargo
//! releases its lock on the target folder before it runs tests: the nested cargo does not wait.

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use taskmaster_child::{ClientError, Control, ControlError, Done, Event, Failure, Outcome, State};

/// The deadline for anything a test waits for: reaching it means a hang, not slowness.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The pause between two looks at a condition.
const POLL: Duration = Duration::from_millis(20);

/// Calls `f` until it returns `Some`, and returns that; panics naming `what` after [`TIMEOUT`].
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let past_deadline = Instant::now() >= deadline;
        if let Some(value) = f() {
            return value;
        }
        assert!(
            !past_deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// The `taskmaster` binary, built now if it is not up to date.
fn taskmaster() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let profile_folder = test_binary
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in <target>/<profile>/deps/");
        let target_folder = profile_folder.parent().expect("the target folder");
        let profile = match profile_folder.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // Its progress goes to a file: a pipe nobody reads while waiting could fill and stall it.
        let log = tempfile::tempfile().expect("a file for cargo's messages");
        let mut build = Command::new(cargo)
            .args(["build", "--workspace", "--bins", "--examples"])
            .args(["--profile", profile])
            .arg("--target-dir")
            .arg(target_folder)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("the file again"))
            .spawn()
            .expect("run cargo build");
        // Generous: a first build compiles everything.
        let deadline = Instant::now() + Duration::from_secs(600);
        let status = loop {
            if let Some(status) = build.try_wait().expect("wait for cargo") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = build.kill();
                let _ = build.wait();
                panic!("cargo build still running after 600s");
            }
            std::thread::sleep(POLL);
        };
        // The file's offset is shared with cargo's copy: back to the start to read it.
        let mut messages = String::new();
        let _ = (&log)
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&log).read_to_string(&mut messages));
        assert!(status.success(), "cargo build failed: {status}\n{messages}");
        profile_folder.join("taskmaster")
    })
}

/// `taskmaster run` in a temporary folder, its shell on a pipe it keeps open. Dropped, it gets
/// end of file on that pipe, which its shell takes as `shutdown`: every process stops, then
/// the daemon exits. If it has not within [`TIMEOUT`], its children, then itself, are killed by
/// their pids.
struct Taskmaster {
    daemon: Child,
    shell: Option<ChildStdin>,
    folder: tempfile::TempDir,
}

impl Taskmaster {
    /// Starts taskmaster on `programs` (the YAML under `programs:`), and waits until its
    /// socket answers.
    fn start(programs: &str) -> Taskmaster {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let config = folder_config(folder.path(), programs);
        fs::write(folder.path().join("taskmaster.yaml"), config).expect("write the config");
        let output =
            |name: &str| fs::File::create(folder.path().join(name)).expect("create an output file");
        let mut daemon = Command::new(taskmaster())
            .arg("run")
            .arg("-c")
            .arg(folder.path().join("taskmaster.yaml"))
            .current_dir(folder.path())
            .env("HOME", folder.path())
            .stdin(Stdio::piped())
            .stdout(output("taskmaster.stdout"))
            .stderr(output("taskmaster.stderr"))
            .spawn()
            .expect("start taskmaster");
        let tm = Taskmaster {
            shell: daemon.stdin.take(),
            daemon,
            folder,
        };
        wait_until("taskmaster's socket to answer", || {
            Control::connect(tm.socket()).ok()
        });
        tm
    }

    fn socket(&self) -> PathBuf {
        self.folder.path().join("taskmaster.sock")
    }

    fn control(&self) -> Control {
        Control::connect(self.socket()).expect("connect to taskmaster")
    }

    /// Replaces the configuration file (for a reread).
    fn rewrite_config(&self, programs: &str) {
        let config = folder_config(self.folder.path(), programs);
        fs::write(self.folder.path().join("taskmaster.yaml"), config).expect("write the config");
    }

    /// The daemon's stderr and event log, for a failure's message.
    fn diagnostics(&self) -> String {
        let read =
            |name: &str| fs::read_to_string(self.folder.path().join(name)).unwrap_or_default();
        format!(
            "--- taskmaster stderr ---\n{}\n--- event log ---\n{}",
            read("taskmaster.stderr"),
            read("taskmaster.log")
        )
    }
}

/// A configuration with its event log in `folder`.
fn folder_config(folder: &Path, programs: &str) -> String {
    format!(
        "logfile: {}\nprograms:\n{programs}",
        folder.join("taskmaster.log").display()
    )
}

impl Drop for Taskmaster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        let daemon_pid = self.daemon.id();
        drop(self.shell.take());
        let deadline = Instant::now() + TIMEOUT;
        // Bounded by the deadline.
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.daemon.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        eprintln!("taskmaster {daemon_pid} still running after {TIMEOUT:?}; killing it");
        for pid in children_of(daemon_pid) {
            kill(pid);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The pids whose parent is `parent` now (from `/proc`; a pid found so is not reused).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .collect()
}

/// The parent pid, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and parentheses.
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Two programs that do nothing for a long time, started on request.
const TWO_SLEEPERS: &str = "
  one:
    cmd: sleep 1000
    autostart: false
    starttime: 0
    stoptime: 2
  two:
    cmd: sleep 1000
    autostart: false
    starttime: 0
    stoptime: 2
";

fn outcome(process: &str, result: Result<Done, Failure>) -> Outcome {
    Outcome {
        process: process.to_string(),
        result,
    }
}

/// The one process `name` names: its state and pid.
fn state_of(control: &Control, name: &str) -> (State, Option<u32>) {
    match control.status_of([name]).expect("status").as_slice() {
        [process] => (process.state, process.pid),
        other => panic!("{name} names {other:?}"),
    }
}

#[test]
fn status_start_stop_and_restart_answer_with_plain_results() {
    let tm = Taskmaster::start(TWO_SLEEPERS);
    let control = tm.control();
    assert_eq!(control.socket(), tm.socket());

    let all = control.status().expect("status");
    let names: Vec<(&str, State)> = all.iter().map(|p| (p.name.as_str(), p.state)).collect();
    assert_eq!(names, [("one", State::Stopped), ("two", State::Stopped)]);

    assert_eq!(
        control.start(["one"]).expect("start one"),
        [outcome("one", Ok(Done::Started))]
    );
    let (state, first_pid) = state_of(&control, "one");
    assert_eq!(state, State::Running);
    let first_pid = first_pid.expect("a running process has a pid");

    let restarted = control.restart(["one"]).expect("restart one");
    assert_eq!(
        restarted,
        [
            outcome("one", Ok(Done::Stopped)),
            outcome("one", Ok(Done::Started))
        ]
    );
    let (state, second_pid) = state_of(&control, "one");
    assert_eq!(state, State::Running);
    assert_ne!(second_pid, Some(first_pid), "a new process");

    assert_eq!(
        control.stop(["one".to_string()]).expect("stop one"),
        [outcome("one", Ok(Done::Stopped))]
    );
    assert_eq!(state_of(&control, "one"), (State::Stopped, None));
}

#[test]
fn a_request_that_fails_for_any_process_is_an_error_holding_every_outcome() {
    let tm = Taskmaster::start(TWO_SLEEPERS);
    let control = tm.control();

    match control.start(["one", "nope"]) {
        Err(ControlError::Failed(outcomes)) => assert_eq!(
            outcomes,
            [
                outcome("one", Ok(Done::Started)),
                outcome("nope", Err(Failure::NoSuchProcess))
            ]
        ),
        other => panic!("start one nope: {other:?}"),
    }
    let error = control.start(["one"]).expect_err("already started");
    assert_eq!(error.to_string(), "one: ERROR (already started)");
    control.stop(["one"]).expect("stop one");
    let error = control.stop(["one"]).expect_err("not running");
    assert_eq!(error.to_string(), "one: ERROR (not running)");

    match control.status_of(["two", "nope"]) {
        Err(ControlError::Failed(outcomes)) => {
            assert_eq!(outcomes, [outcome("nope", Err(Failure::NoSuchProcess))])
        }
        other => panic!("status two nope: {other:?}"),
    }
}

#[test]
fn reread_add_and_remove_change_the_programs_in_force() {
    let tm = Taskmaster::start(TWO_SLEEPERS);
    let control = tm.control();

    tm.rewrite_config(&format!(
        "{TWO_SLEEPERS}  extra:\n    cmd: sleep 1000\n    starttime: 0\n    stoptime: 2\n"
    ));
    let plan = control.reread().expect("reread");
    assert_eq!(
        (plan.added, plan.changed, plan.removed),
        (vec!["extra".to_string()], vec![], vec![])
    );
    assert!(
        control.status_of(["extra"]).is_err(),
        "a reread changes nothing"
    );

    assert_eq!(
        control.add(["extra"]).expect("add extra"),
        [outcome("extra", Ok(Done::Added))]
    );
    // `extra` has autostart (the default): added, it starts.
    wait_until("extra running", || {
        (state_of(&control, "extra").0 == State::Running).then_some(())
    });
    let error = control.add(["extra"]).expect_err("added twice");
    assert_eq!(error.to_string(), "extra: ERROR (already added)");
    let error = control.remove(["extra"]).expect_err("running");
    assert_eq!(
        error.to_string(),
        "extra: ERROR (process group still running)"
    );

    control.stop(["extra"]).expect("stop extra");
    assert_eq!(
        control.remove(["extra"]).expect("remove extra"),
        [outcome("extra", Ok(Done::Removed))]
    );
    assert!(control.status_of(["extra"]).is_err(), "removed");

    tm.rewrite_config("  broken:\n    autostart: false\n");
    match control.reread() {
        Err(ControlError::Rejected(errors)) => {
            assert!(
                errors.iter().any(|e| e.contains("programs.broken")),
                "{errors:?}"
            );
        }
        other => panic!("reread of a broken file: {other:?}"),
    }
}

#[test]
fn events_report_state_changes_and_log_lines_as_they_happen() {
    let tm = Taskmaster::start(TWO_SLEEPERS);
    let control = tm.control();
    let events = control.events().expect("subscribe");
    // Read on a thread of their own, as a program would, so that waits have a deadline.
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for event in events {
            if sender.send(event).is_err() {
                return;
            }
        }
    });

    control.start(["one"]).expect("start one");
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let wanted = |seen: &[Event]| {
        let changed = |from, to| {
            seen.iter().any(|event| {
                matches!(event, Event::StateChanged { process, from: f, to: t, .. }
                    if process == "one" && *f == from && *t == to)
            })
        };
        let logged = seen.iter().any(|event| {
            matches!(event, Event::Log { process: Some(process), message, .. }
                if process == "one" && message.starts_with("spawned with pid"))
        });
        changed(State::Stopped, State::Starting)
            && changed(State::Starting, State::Running)
            && logged
    };
    // Bounded by the deadline.
    while !wanted(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(event) => seen.push(event.expect("a readable event")),
            Err(e) => panic!("{e} before every event came; seen: {seen:#?}"),
        }
    }
}

#[test]
fn a_socket_nobody_listens_on_is_an_error_at_connect() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let socket = folder.path().join("taskmaster.sock");
    match Control::connect(&socket) {
        Err(ControlError::Client(ClientError::Connect { path, .. })) => assert_eq!(path, socket),
        Err(other) => panic!("connect to nothing: {other}"),
        Ok(_) => panic!("connect to nothing succeeded"),
    }
    let message = ControlError::NotSupervised.to_string();
    assert!(
        message.starts_with("TASKMASTER_SOCKET is not set"),
        "{message}"
    );
    assert_eq!(
        fs::metadata(&socket).map_err(|e| e.kind()).err(),
        Some(ErrorKind::NotFound),
        "connect creates nothing"
    );
}
