//! taskmaster as a container's main process: a `critical` program's end ends the run with its
//! status, and `exit_when_done` ends it once every program has ended for good.
//!
//! The second half runs taskmaster as the pid 1 of a new pid namespace, as a container's
//! entrypoint is (`unshare --pid --fork --mount-proc taskmaster run`, [`Pid1`]): every orphan
//! of the namespace comes to it, and the kernel gives it no default action for a signal, so
//! what it does not handle never reaches it. These tests need root; without it each says so
//! on stderr and passes without running.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;

use rustix::process::Signal;

use crate::support::unix_http::Api;
use crate::support::{
    config, fixture_cmd, is_alive, proc_stat, program, send_signal, shell_quote, taskmaster_bin,
    wait_until, yaml_quote, ProcStat, Sandbox, Taskmaster, TIMEOUT,
};

#[test]
fn a_critical_program_that_ends_stops_everything_and_taskmaster_exits_with_its_status() {
    let sandbox = Sandbox::new();
    // main ends (status 7) once the test has seen side running.
    let go = sandbox.file_str("go");
    let script = format!("while [ ! -e {go} ]; do sleep 0.02; done; exit 7");
    let main =
        crate::support::yaml_quote(&format!("sh -c {}", crate::support::shell_quote(&script)));
    sandbox.write_config(&config(&[
        program(
            "main",
            &main,
            &["starttime: 0", "autorestart: never", "critical: true"],
        ),
        program(
            "side",
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0"],
        ),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    let side = api.wait_for_process("side", "RUNNING", |p| p["state"] == "RUNNING")["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .expect("side's pid");
    std::fs::write(sandbox.file("go"), "").expect("write go");
    let status = tm.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(7), "{}", tm.log());
    assert!(!is_alive(side), "side was left running");
    assert!(
        tm.log().contains("main is critical and has ended (EXITED): stopping everything, then exiting with its status 7"),
        "{}",
        tm.log()
    );
}

#[test]
fn exit_when_done_exits_0_once_every_job_has_ended() {
    let sandbox = Sandbox::new();
    let jobs = [
        program(
            "one",
            &fixture_cmd(&["sleep", "0.2", "exit", "0"]),
            &["starttime: 0", "autorestart: never"],
        ),
        program(
            "two",
            &fixture_cmd(&["sleep", "0.4", "exit", "0"]),
            &["starttime: 0", "autorestart: never"],
        ),
    ];
    sandbox.write_config(&format!("exit_when_done: true\n{}", config(&jobs)));
    let mut tm = Taskmaster::start(&sandbox, &["--no-shell"]);
    let status = tm.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", tm.log());
    assert!(
        tm.log()
            .contains("every program has ended and none will be restarted"),
        "{}",
        tm.log()
    );
}

// ---------------------------------------------------------------------------------------------
// taskmaster as PID 1
// ---------------------------------------------------------------------------------------------

/// Whether this machine lets the tests make a pid namespace (`unshare` needs root: CI is).
fn pid_namespaces_available() -> Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE
        .get_or_init(|| {
            let ran = Command::new("unshare")
                .args(["--pid", "--fork", "--mount-proc", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output();
            match ran {
                Ok(output) if output.status.success() => Ok(()),
                Ok(output) => Err(format!(
                    "`unshare --pid --fork --mount-proc true` failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )),
                Err(e) => Err(format!("cannot run unshare: {e}")),
            }
        })
        .clone()
}

/// `taskmaster run -c CONFIG --no-shell` as the pid 1 of a new pid namespace (and a new
/// mount namespace, with its own /proc): `unshare --pid --fork --mount-proc`, whose child it
/// is. Everything is seen from outside, where its processes have other pids: [`Pid1::outer`]
/// translates. Dropped while running, taskmaster is SIGKILLed by its pid, which kills every
/// process of the namespace.
struct Pid1 {
    /// taskmaster's pid outside the namespace.
    pid: u32,
    /// Its `/proc/PID/stat` when found, to never signal another process under a reused pid.
    stat: ProcStat,
    /// The namespace's `/proc/PID/ns/pid` link (`pid:[4026532…]`).
    namespace: PathBuf,
    /// The `unshare` process, on pipes; its exit status is taskmaster's.
    unshare: Taskmaster,
}

impl Pid1 {
    /// Starts taskmaster as pid 1 on the sandbox's configuration, once it says it started as
    /// pid 1; `None` (with why on stderr) when pid namespaces cannot be made here.
    fn start(sandbox: &Sandbox, test: &str) -> Option<Pid1> {
        if let Err(why) = pid_namespaces_available() {
            eprintln!("{test}: skipped, it needs root for a pid namespace: {why}");
            return None;
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc"])
            .arg(taskmaster_bin())
            .args(["run", "--no-shell", "-c"])
            .arg(sandbox.config_path())
            .current_dir(sandbox.path())
            .env("HOME", sandbox.path());
        let unshare = Taskmaster::spawn(sandbox, cmd);
        let outer_unshare = unshare.daemon_pid();
        let pid = wait_until("unshare's child", TIMEOUT, || {
            fs::read_to_string(format!(
                "/proc/{outer_unshare}/task/{outer_unshare}/children"
            ))
            .ok()?
            .split_whitespace()
            .next()?
            .parse::<u32>()
            .ok()
        });
        let stat = proc_stat(pid).expect("taskmaster's /proc/PID/stat");
        let namespace = fs::read_link(format!("/proc/{pid}/ns/pid")).expect("its pid namespace");
        let pid1 = Pid1 {
            pid,
            stat,
            namespace,
            unshare,
        };
        let own = fs::read_link("/proc/self/ns/pid").expect("the test's pid namespace");
        assert_ne!(
            pid1.namespace, own,
            "taskmaster is in the test's own pid namespace"
        );
        assert_eq!(
            ns_pid(pid),
            Some(1),
            "taskmaster is not pid 1 of its namespace"
        );
        // taskmaster's own word for it, once it runs (the child of unshare was unshare first).
        pid1.unshare
            .wait_for_log("taskmaster started (pid 1, ", TIMEOUT);
        Some(pid1)
    }

    /// Sends `signal` to taskmaster, by its pid.
    fn signal(&self, signal: Signal) {
        send_signal(self.pid, signal)
            .unwrap_or_else(|e| panic!("cannot send {signal:?} to taskmaster: {e}"));
    }

    /// Waits for taskmaster (and so unshare, which exits with its status) to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        self.unshare.wait_exit(TIMEOUT)
    }

    fn log(&self) -> String {
        self.unshare.log()
    }

    /// The pids, outside, of every process of the namespace, zombies included.
    fn members(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == self.namespace)
            })
            .collect()
    }

    /// The members of the namespace that are zombies: ended, and not reaped.
    fn zombies(&self) -> Vec<u32> {
        self.members()
            .into_iter()
            .filter(|&pid| proc_stat(pid).is_some_and(|stat| stat.state == 'Z'))
            .collect()
    }

    /// The pid outside of the process whose pid is `inner` in the namespace.
    fn outer(&self, inner: u32) -> u32 {
        wait_until(
            &format!("the process of pid {inner} in the namespace"),
            TIMEOUT,
            || {
                self.members()
                    .into_iter()
                    .find(|&pid| ns_pid(pid) == Some(inner))
            },
        )
    }

    /// Waits for the pid file `name` a fixture wrote in the namespace, and returns the pid
    /// outside of the process that wrote it.
    fn pidfile(&self, sandbox: &Sandbox, name: &str) -> u32 {
        self.outer(sandbox.wait_for_pidfile(name, TIMEOUT))
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        let same = proc_stat(self.pid)
            .is_some_and(|now| now.starttime == self.stat.starttime && now.state != 'Z');
        if same {
            // The namespace's init: the kernel kills every process of the namespace with it.
            let _ = send_signal(self.pid, Signal::KILL);
        }
        // `unshare` drops next: it exits once its child is gone.
    }
}

/// The pid of `pid` in its own (innermost) pid namespace: the last of `NSpid` in its status.
fn ns_pid(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Whether the process `stat` was taken of is gone for good: no longer there, not even as a
/// zombie (reaped), or its pid reused.
fn reaped(pid: u32, stat: ProcStat) -> bool {
    proc_stat(pid).is_none_or(|now| now.starttime != stat.starttime)
}

/// A `cmd:` for `sh -c SCRIPT`.
fn sh(script: &str) -> String {
    yaml_quote(&format!("sh -c {}", shell_quote(script)))
}

#[test]
fn as_pid_1_taskmaster_reaps_every_orphan_of_the_namespace() {
    let sandbox = Sandbox::new();
    let fixture = crate::support::fixture_bin();
    let fixture = fixture.to_str().expect("fixture path is UTF-8");
    let file = |name: &str| sandbox.file_str(name);
    // Two grandchildren orphaned at once (their subshell exits), which end when told; a third
    // (`holder`) orphaned the same way, whose own child ends at once and stays a zombie, as
    // `holder` never waits: when `holder` ends, that zombie is orphaned in turn.
    let script = format!(
        "({f} pidfile {o1} wait-for {go} &); \
         ({f} pidfile {o2} wait-for {go} &); \
         ( ({f} pidfile {z} & exec {f} pidfile {h} wait-for {release}) & ); \
         exec {f} pidfile {main} sleep forever",
        f = fixture,
        o1 = file("orphan1.pid"),
        o2 = file("orphan2.pid"),
        z = file("zombie.pid"),
        h = file("holder.pid"),
        main = file("main.pid"),
        go = file("go"),
        release = file("release"),
    );
    sandbox.write_config(&config(&[program(
        "family",
        &sh(&script),
        &["starttime: 0"],
    )]));
    let Some(mut pid1) = Pid1::start(&sandbox, "as_pid_1_taskmaster_reaps_every_orphan") else {
        return;
    };
    let main = pid1.pidfile(&sandbox, "main.pid");
    let orphans: Vec<(u32, ProcStat)> = ["orphan1.pid", "orphan2.pid", "holder.pid"]
        .iter()
        .map(|name| pid1.pidfile(&sandbox, name))
        .map(|pid| (pid, proc_stat(pid).expect("an orphan's stat")))
        .collect();
    for &(orphan, _) in &orphans {
        wait_until(
            &format!("pid {orphan} to be orphaned to taskmaster"),
            TIMEOUT,
            || {
                proc_stat(orphan)
                    .is_some_and(|stat| stat.ppid == pid1.pid)
                    .then_some(())
            },
        );
    }
    let zombie = pid1.pidfile(&sandbox, "zombie.pid");
    let zombie_stat = wait_until("the holder's child to be a zombie", TIMEOUT, || {
        proc_stat(zombie).filter(|stat| stat.state == 'Z')
    });
    assert_ne!(
        zombie_stat.ppid, pid1.pid,
        "the zombie is the holder's, not taskmaster's"
    );

    fs::write(sandbox.file("go"), "").expect("write go");
    fs::write(sandbox.file("release"), "").expect("write release");
    for (pid, stat) in orphans.into_iter().chain([(zombie, zombie_stat)]) {
        wait_until(&format!("orphan pid {pid} to be reaped"), TIMEOUT, || {
            reaped(pid, stat).then_some(())
        });
    }
    let zombies = crate::support::wait_until_or_none(TIMEOUT, || {
        let zombies = pid1.zombies();
        zombies.is_empty().then_some(())
    });
    assert!(
        zombies.is_some(),
        "zombies left in the namespace: {:?}\n{}",
        pid1.zombies(),
        pid1.log()
    );
    assert!(is_alive(main), "the program itself ended\n{}", pid1.log());

    pid1.signal(Signal::TERM);
    let status = pid1.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", pid1.log());
}

/// Runs three programs under taskmaster as pid 1 (one ignores its stop signal, one leaves a
/// child in its process group), sends signals it does not handle (ignored, and not passed on),
/// then `signal` to taskmaster, and checks that it stopped each program before it exited 0.
fn a_shutdown_signal_to_pid_1_stops_everything_and_exits_0(signal: Signal, name: &str) {
    let sandbox = Sandbox::new();
    let fixture = crate::support::fixture_bin();
    let fixture = fixture.to_str().expect("fixture path is UTF-8");
    sandbox.write_config(&config(&[
        program(
            "plain",
            &fixture_cmd(&[
                "pidfile",
                &sandbox.file_str("plain.pid"),
                "sleep",
                "forever",
            ]),
            &["starttime: 0", "stoptime: 5"],
        ),
        program(
            "stubborn",
            &fixture_cmd(&[
                "ignore",
                "TERM",
                "pidfile",
                &sandbox.file_str("stubborn.pid"),
                "sleep",
                "forever",
            ]),
            &["starttime: 0", "stoptime: 1"],
        ),
        program(
            "parent",
            &sh(&format!(
                "{fixture} pidfile {} sleep forever & exec {fixture} pidfile {} sleep forever",
                sandbox.file_str("child.pid"),
                sandbox.file_str("parent.pid"),
            )),
            &["starttime: 0", "stoptime: 5"],
        ),
    ]));
    let test = format!("a_{name}_to_pid_1_stops_everything");
    let Some(mut pid1) = Pid1::start(&sandbox, &test) else {
        return;
    };
    let pids: Vec<u32> = ["plain.pid", "stubborn.pid", "parent.pid", "child.pid"]
        .iter()
        .map(|file| pid1.pidfile(&sandbox, file))
        .collect();
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    for program in ["plain", "stubborn", "parent"] {
        api.wait_for_process(program, "RUNNING", |p| p["state"] == "RUNNING");
    }

    // Signals it has no handler for never reach pid 1: not even SIGQUIT or SIGALRM, which
    // would end any other process. The answer to a request after them shows it survived
    // them (a fatal signal is acted on before the process runs again).
    for ignored in [Signal::QUIT, Signal::ALARM] {
        pid1.signal(ignored);
    }
    assert_eq!(api.get("/v1/processes").status, 200);
    assert!(
        is_alive(pid1.pid),
        "taskmaster died of a signal it does not handle"
    );
    for &pid in &pids {
        assert!(is_alive(pid), "pid {pid} died when taskmaster got SIGQUIT");
    }

    pid1.signal(signal);
    let status = pid1.wait_exit();
    let log = pid1.log();
    assert_eq!(status.code(), Some(0), "exited with {status}\n{log}");
    assert!(
        log.contains(&format!("{name} received: shutting down")),
        "{log}"
    );
    // Each was stopped by taskmaster before it exited, not killed with the namespace after.
    assert!(
        log.contains("stubborn: still running 1s after TERM: sending SIGKILL"),
        "{log}"
    );
    for program in ["plain", "stubborn", "parent"] {
        assert!(
            log.contains(&format!("{program}: stopped (")),
            "no stop of {program}\n{log}"
        );
    }
    for pid in pids {
        assert!(!is_alive(pid), "pid {pid} outlived taskmaster\n{log}");
    }
    assert!(
        pid1.members().is_empty(),
        "the namespace outlived taskmaster"
    );
}

#[test]
fn as_pid_1_sigterm_stops_every_program_then_taskmaster_exits_0() {
    a_shutdown_signal_to_pid_1_stops_everything_and_exits_0(Signal::TERM, "SIGTERM");
}

#[test]
fn as_pid_1_sigint_stops_every_program_then_taskmaster_exits_0() {
    a_shutdown_signal_to_pid_1_stops_everything_and_exits_0(Signal::INT, "SIGINT");
}

#[test]
fn as_pid_1_a_critical_program_s_exit_code_is_taskmaster_s() {
    let sandbox = Sandbox::new();
    let go = sandbox.file_str("go");
    sandbox.write_config(&config(&[
        program(
            "main",
            &fixture_cmd(&["wait-for", &go, "exit", "7"]),
            &["starttime: 0", "autorestart: never", "critical: true"],
        ),
        program(
            "side",
            &fixture_cmd(&["pidfile", &sandbox.file_str("side.pid"), "sleep", "forever"]),
            &["starttime: 0"],
        ),
    ]));
    let Some(mut pid1) = Pid1::start(&sandbox, "as_pid_1_a_critical_program_s_exit_code") else {
        return;
    };
    let side = pid1.pidfile(&sandbox, "side.pid");
    fs::write(sandbox.file("go"), "").expect("write go");
    let status = pid1.wait_exit();
    assert_eq!(
        status.code(),
        Some(7),
        "exited with {status}\n{}",
        pid1.log()
    );
    assert!(!is_alive(side), "side outlived taskmaster");
    assert!(
        pid1.log().contains("side: stopped ("),
        "side was not stopped\n{}",
        pid1.log()
    );
}

#[test]
fn as_pid_1_a_critical_program_killed_by_sigkill_makes_taskmaster_exit_137() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[
        program(
            "main",
            &fixture_cmd(&["pidfile", &sandbox.file_str("main.pid"), "sleep", "forever"]),
            &["starttime: 0", "autorestart: never", "critical: true"],
        ),
        program(
            "side",
            &fixture_cmd(&["pidfile", &sandbox.file_str("side.pid"), "sleep", "forever"]),
            &["starttime: 0"],
        ),
    ]));
    let Some(mut pid1) = Pid1::start(&sandbox, "as_pid_1_a_critical_program_killed_by_sigkill")
    else {
        return;
    };
    let main = pid1.pidfile(&sandbox, "main.pid");
    let side = pid1.pidfile(&sandbox, "side.pid");
    send_signal(main, Signal::KILL).expect("SIGKILL main");
    let status = pid1.wait_exit();
    assert_eq!(
        status.code(),
        Some(128 + 9),
        "exited with {status}\n{}",
        pid1.log()
    );
    assert!(!is_alive(side), "side outlived taskmaster");
    assert!(
        pid1.log().contains("main is critical and has ended (EXITED): stopping everything, then exiting with its status 137"),
        "{}",
        pid1.log()
    );
}

#[test]
fn as_pid_1_exit_when_done_exits_0_once_every_job_has_ended() {
    let sandbox = Sandbox::new();
    let jobs = [
        program(
            "one",
            &fixture_cmd(&["report", &sandbox.file_str("one.report"), "exit", "0"]),
            &["starttime: 0", "autorestart: never"],
        ),
        program(
            "two",
            &fixture_cmd(&["wait-for", &sandbox.file_str("go"), "exit", "0"]),
            &["starttime: 0", "autorestart: never"],
        ),
    ];
    sandbox.write_config(&format!("exit_when_done: true\n{}", config(&jobs)));
    let Some(mut pid1) = Pid1::start(&sandbox, "as_pid_1_exit_when_done") else {
        return;
    };
    // The programs' parent is pid 1: taskmaster.
    sandbox.wait_for_file("one.report", TIMEOUT);
    let report = crate::support::read_report(&sandbox.file("one.report"));
    assert_eq!(
        report.get("ppid").map(String::as_str),
        Some("1"),
        "{report:?}"
    );
    fs::write(sandbox.file("go"), "").expect("write go");
    let status = pid1.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "exited with {status}\n{}",
        pid1.log()
    );
    assert!(
        pid1.log()
            .contains("every program has ended and none will be restarted"),
        "{}",
        pid1.log()
    );
}
