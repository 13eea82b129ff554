//! The example programs of `taskmaster-child` (`crates/child/examples/`), each under the real
//! taskmaster with a copy of the configuration shipped beside it: `worker_pool` sizes a group of
//! workers through the control API and follows its events; `heartbeat_worker` hangs on SIGUSR1
//! and is restarted by the watchdog.
//!
//! The examples are another package's, so cargo builds them for these tests only in a
//! `cargo test` of the whole workspace, and a `cargo test -p taskmaster` could run stale ones.
//! [`example`] therefore asks cargo to build them (once per run of this file): up to date, that
//! costs a fraction of a second. cargo releases its lock on the target folder before it runs
//! the tests, so the nested cargo does not wait for the outer one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::*;
use rustix::process::Signal;

/// The folder of the examples and their configurations.
fn examples_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../child/examples")
}

/// The example `name`, built now if it is not up to date.
///
/// The build goes where this test binary was built (`<target>/<profile>/deps/`), with the same
/// profile, and with the options of `cargo test --workspace` (bins and examples of the whole
/// workspace, so that dependencies get the same features), so it finds what the outer cargo
/// built and builds nothing twice.
fn example(name: &str) -> PathBuf {
    static PROFILE_FOLDER: OnceLock<PathBuf> = OnceLock::new();
    let profile_folder = PROFILE_FOLDER.get_or_init(|| {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let profile_folder = test_binary
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in <target>/<profile>/deps/")
            .to_path_buf();
        let target_folder = profile_folder.parent().expect("the target folder");
        let profile = match profile_folder.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--workspace",
                "--bins",
                "--examples",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target_folder)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        // Generous: a first build compiles everything.
        let output = run_to_completion(build, std::time::Duration::from_secs(600));
        assert!(
            output.status.success(),
            "cargo build --examples failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        profile_folder
    });
    let path = profile_folder.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Writes, as the sandbox's `taskmaster.yaml`, the configuration shipped with example `name`,
/// changed only where the sandbox needs it: the command runs the example built by
/// [`example`], and the event log is the sandbox's own, where [`Taskmaster`] reads it.
fn copy_example_config(sandbox: &Sandbox, name: &str) {
    let shipped = examples_folder().join(format!("{name}.yaml"));
    let text =
        fs::read_to_string(&shipped).unwrap_or_else(|e| panic!("read {}: {e}", shipped.display()));
    let cmd = format!("../../../target/debug/examples/{name}");
    let logfile = format!("logfile: {name}.log");
    assert!(
        text.contains(&cmd) && text.contains(&logfile),
        "{} changed shape; update this test:\n{text}",
        shipped.display()
    );
    let built = example(name);
    let copy = text
        .replace(&cmd, built.to_str().expect("a UTF-8 path"))
        .replace(
            &logfile,
            &format!("logfile: {}", sandbox.logfile().display()),
        );
    fs::write(sandbox.config_path(), copy).expect("write the configuration");
}

// ---- worker_pool ---------------------------------------------------------------------------

const WORKERS: [&str; 4] = [
    "workers:workers_00",
    "workers:workers_01",
    "workers:workers_02",
    "workers:workers_03",
];

/// Tells the pool how many workers to keep, the way a person would: by writing the file. The
/// file is replaced whole (rename), so the pool never reads half of it.
fn want_workers(sandbox: &Sandbox, count: usize) {
    let draft = sandbox.file("wanted_workers.draft");
    fs::write(&draft, format!("{count}\n")).expect("write the wanted count");
    fs::rename(&draft, sandbox.file("wanted_workers")).expect("replace the wanted count");
}

/// The RUNNING workers' (name, pid), once every worker is settled: RUNNING, STOPPED or EXITED,
/// none on its way up or down. `None` while one is not.
fn settled_running_workers(tm: &mut Taskmaster) -> Option<Vec<(String, u32)>> {
    let statuses = tm.status_all();
    let workers: Vec<&StatusLine> = statuses
        .iter()
        .filter(|s| WORKERS.contains(&s.name.as_str()))
        .collect();
    let settled = workers.len() == WORKERS.len()
        && workers
            .iter()
            .all(|s| ["RUNNING", "STOPPED", "EXITED"].contains(&s.state.as_str()));
    settled.then(|| {
        workers
            .iter()
            .filter(|s| s.state == "RUNNING")
            .filter_map(|s| Some((s.name.clone(), s.pid()?)))
            .collect()
    })
}

/// Waits until exactly `count` workers are RUNNING, and every other one is at rest, and
/// returns the running ones' (name, pid).
fn wait_for_running_workers(tm: &mut Taskmaster, count: usize) -> Vec<(String, u32)> {
    wait_until(&format!("exactly {count} workers running"), TIMEOUT, || {
        settled_running_workers(tm).filter(|running| running.len() == count)
    })
}

#[test]
fn worker_pool_keeps_as_many_workers_running_as_wanted() {
    let sandbox = Sandbox::new();
    copy_example_config(&sandbox, "worker_pool");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("pool", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("pool.out", |out| out.contains("pool up"), TIMEOUT);

    want_workers(&sandbox, 2);
    let running = wait_for_running_workers(&mut tm, 2);
    let names: Vec<&str> = running.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, WORKERS[..2], "the lowest numbers first");

    // A worker killed from outside: the pool sees it die in the events and replaces it.
    let (victim, victim_pid) = running[0].clone();
    send_signal(victim_pid, Signal::KILL).expect("kill a worker");
    sandbox.wait_for_contents(
        "pool.out",
        |out| out.contains(&format!("{victim} died (RUNNING -> EXITED)")),
        TIMEOUT,
    );
    wait_until(
        "2 workers running, the killed one replaced",
        TIMEOUT,
        || {
            settled_running_workers(&mut tm).filter(|running| {
                running.len() == 2 && running.iter().all(|(_, pid)| *pid != victim_pid)
            })
        },
    );

    want_workers(&sandbox, 0);
    wait_for_running_workers(&mut tm, 0);
    let out = sandbox.read("pool.out");
    assert!(out.contains("2 up, 0 wanted: stopping"), "{out}");
    assert_eq!(tm.status("pool").state, "RUNNING", "{out}");
    tm.shutdown();
}

// ---- heartbeat_worker ----------------------------------------------------------------------

#[test]
fn heartbeat_worker_that_hangs_is_restarted_by_the_watchdog() {
    let sandbox = Sandbox::new();
    copy_example_config(&sandbox, "heartbeat_worker");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    // RUNNING only once it has sent READY=1 (`ready: notify`).
    let first_pid = tm
        .wait_for_state("heartbeat_worker", "RUNNING", TIMEOUT)
        .pid()
        .expect("heartbeat_worker's pid");
    sandbox.wait_for_contents(
        "heartbeat_worker.out",
        |out| out.contains("work unit 1 done"),
        TIMEOUT,
    );

    assert_eq!(
        tm.command("signal USR1 heartbeat_worker", 1),
        ["heartbeat_worker: signalled"]
    );
    sandbox.wait_for_contents(
        "heartbeat_worker.out",
        |out| out.contains("hanging"),
        TIMEOUT,
    );
    // Silent for its `watchdog: 2s`: declared hung, stopped, and started again.
    let second_pid = wait_until("heartbeat_worker restarted", TIMEOUT, || {
        let status = tm.status("heartbeat_worker");
        let pid = status.pid()?;
        (status.state == "RUNNING" && pid != first_pid).then_some(pid)
    });
    assert!(!is_alive(first_pid), "the hung process {first_pid} is gone");
    assert_ne!(second_pid, first_pid);
    tm.shutdown();
}
