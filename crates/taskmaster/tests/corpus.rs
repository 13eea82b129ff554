//! Issue 12's corpus: supervisord.conf files in the patterns real projects write
//! (`tests/corpus/`, see its README), and supervisord's own sample as `echo_supervisord_conf`
//! prints it. supervisord 4.3's own parser (`scripts/supervisord-accepts`, from the venv
//! `.ci/run` makes) must accept each of them, so the test knows they are files supervisord
//! runs; then `taskmaster check` must accept them too, and the files marked `; corpus: run`
//! are run by the real binary until supervisord's processes, by supervisord's names, are
//! RUNNING, then shut down.
//!
//! The corpus is copied into a sandbox with an empty `logs/` beside it (as a deployment
//! makes), and both parsers see the same environment: `HOME` (the sandbox's `home/`),
//! `APP_ENV=production` and `PORT` (a free loopback port), which the files name as
//! `%(ENV_X)s`.
//!
//! supervisord's Python comes from the folder of `$SUPERVISORCTL`, else
//! `target/ci-venv/bin`; without it the tests fail, never skip. Files with a `user=` line are
//! checked and run only as root (CI runs the tests as root): as another user they are skipped
//! with a message on stderr.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    run_to_completion, supervisor_venv_bin, taskmaster_bin, wait_dead, Sandbox, StatusLine,
    Taskmaster,
};

/// The deadline for a whole parse or run step: generous, only a hang reaches it.
const TIMEOUT: std::time::Duration = crate::support::TIMEOUT;

/// The corpus files the run test runs: every file marked `; corpus: run`, and only those.
const RUN_SAMPLE: &[&str] = &[
    "docker-python-web.conf",
    "here-relative.conf",
    "include-main.conf",
    "pool-workers.conf",
    "user-root-and-programs.conf",
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn runs_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether the file has a `user=` line (a program's or supervisord's): checked and run only as
/// root.
fn needs_root(text: &str) -> bool {
    text.lines().any(|line| {
        line.split_once('=')
            .is_some_and(|(name, _)| name.trim() == "user")
    })
}

/// The corpus copied into `sandbox/corpus`, with `logs/` and the `home/` `HOME` names.
fn corpus_copy(sandbox: &Sandbox) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
        for entry in fs::read_dir(from).expect("read the corpus") {
            let entry = entry.expect("a corpus entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("a file type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target)
                    .unwrap_or_else(|e| panic!("copy to {}: {e}", target.display()));
            }
        }
    }
    let copied = sandbox.file("corpus");
    copy(&corpus_dir(), &copied);
    fs::create_dir_all(copied.join("logs")).expect("create logs/");
    fs::create_dir_all(sandbox.file("home")).expect("create home/");
    copied
}

/// The environment both parsers and the daemon see, besides the test's own.
fn corpus_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    vec![
        ("HOME".to_string(), sandbox.file_str("home")),
        ("APP_ENV".to_string(), "production".to_string()),
        ("PORT".to_string(), port.to_string()),
    ]
}

/// The corpus's files (its top-level `.conf` files; folders hold what they include), sorted.
fn corpus_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(folder)
        .expect("read the corpus")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// What supervisord's parser said of one file.
#[derive(Debug)]
struct Verdict {
    accepted: bool,
    error: Option<String>,
    /// `(group, process)` for each process supervisord would supervise.
    processes: Vec<(String, String)>,
}

impl Verdict {
    /// The processes as supervisorctl names them: `group:process`, or `process` alone when it
    /// is its group's name.
    fn names(&self) -> BTreeSet<String> {
        self.processes
            .iter()
            .map(|(group, name)| {
                if group == name {
                    name.clone()
                } else {
                    format!("{group}:{name}")
                }
            })
            .collect()
    }
}

/// supervisord 4.3's verdict on each of `files`, in their order.
fn supervisord_verdicts(files: &[PathBuf], env: &[(String, String)]) -> Vec<Verdict> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/supervisord-accepts");
    let mut cmd = Command::new(supervisor_venv_bin("python"));
    cmd.arg(script).args(files).envs(env.iter().cloned());
    let output = run_to_completion(cmd, TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "supervisord-accepts failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Verdict> = stdout
        .lines()
        .map(|line| {
            let json: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            Verdict {
                accepted: json["accepted"] == true,
                error: json["error"].as_str().map(str::to_string),
                processes: json["processes"]
                    .as_array()
                    .expect("processes")
                    .iter()
                    .map(|pair| {
                        let text = |i: usize| pair[i].as_str().expect("a name").to_string();
                        (text(0), text(1))
                    })
                    .collect(),
            }
        })
        .collect();
    assert_eq!(
        verdicts.len(),
        files.len(),
        "one verdict per file:\n{stdout}"
    );
    verdicts
}

/// `taskmaster check -c FILE`, run in the file's folder with the corpus's environment:
/// `None` when it passes, else its exit status and errors.
fn check(file: &Path, env: &[(String, String)]) -> Option<String> {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("check")
        .arg("-c")
        .arg(file)
        .current_dir(file.parent().expect("a folder"))
        .envs(env.iter().cloned());
    let output = run_to_completion(cmd, TIMEOUT);
    if output.status.success() {
        return None;
    }
    Some(format!(
        "{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end()
    ))
}

#[test]
fn the_corpus_is_25_to_40_files_each_marked_run_runnable_or_check_only() {
    let files = corpus_files(&corpus_dir());
    assert!(
        (25..=40).contains(&files.len()),
        "{} corpus files",
        files.len()
    );
    let mut marked_run = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read a corpus file");
        let markers: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("; corpus: "))
            .collect();
        let name = file_name(file);
        match markers.as_slice() {
            ["run"] => marked_run.push(name.clone()),
            ["runnable"] => {}
            [other] if other.starts_with("check-only (") && other.ends_with(')') => {}
            _ => panic!(
                "{name}: expected one line `; corpus: run`, `; corpus: runnable` or \
                 `; corpus: check-only (why)`, found {markers:?}"
            ),
        }
        // The top comment names the style of project the file is written in.
        assert!(text.starts_with("; ") || text.starts_with("# "), "{name}");
    }
    assert_eq!(marked_run, RUN_SAMPLE, "the files marked `; corpus: run`");
}

#[test]
fn supervisord_accepts_every_corpus_file() {
    let sandbox = Sandbox::new();
    let corpus = corpus_copy(&sandbox);
    let env = corpus_env(&sandbox);
    let files = corpus_files(&corpus);
    let verdicts = supervisord_verdicts(&files, &env);
    let refused: Vec<String> = files
        .iter()
        .zip(&verdicts)
        .filter(|(_, verdict)| !verdict.accepted)
        .map(|(file, verdict)| format!("{}: {:?}", file_name(file), verdict.error))
        .collect();
    assert!(
        refused.is_empty(),
        "supervisord 4.3 refuses corpus files (the corpus must hold files it runs):\n{}",
        refused.join("\n")
    );
}

#[test]
fn check_accepts_every_corpus_file_supervisord_accepts() {
    let sandbox = Sandbox::new();
    let corpus = corpus_copy(&sandbox);
    let env = corpus_env(&sandbox);
    let files = corpus_files(&corpus);
    let verdicts = supervisord_verdicts(&files, &env);
    let mut failures = Vec::new();
    for (file, verdict) in files.iter().zip(&verdicts) {
        let name = file_name(file);
        assert!(
            verdict.accepted,
            "{name}: supervisord refuses it: {:?}",
            verdict.error
        );
        let text = fs::read_to_string(file).expect("read a corpus file");
        if needs_root(&text) && !runs_as_root() {
            eprintln!(
                "skipped checking {name}: it has user=, which taskmaster accepts only when it \
                 may become that user (as root); CI runs the tests as root"
            );
            continue;
        }
        if let Some(errors) = check(file, &env) {
            failures.push(format!("{name}: {errors}"));
        }
    }
    assert!(
        failures.is_empty(),
        "taskmaster check refuses {} of the {} corpus files supervisord accepts:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn supervisords_own_sample_passes_supervisord_and_check() {
    let sandbox = Sandbox::new();
    let output = run_to_completion(
        Command::new(supervisor_venv_bin("echo_supervisord_conf")),
        TIMEOUT,
    );
    assert!(output.status.success(), "echo_supervisord_conf failed");
    let sample = sandbox.file("supervisord.conf");
    fs::write(&sample, &output.stdout).expect("write the sample");
    let env = corpus_env(&sandbox);
    let files = [sample.clone()];
    let verdict = &supervisord_verdicts(&files, &env)[0];
    assert!(verdict.accepted, "supervisord: {:?}", verdict.error);
    if let Some(errors) = check(&sample, &env) {
        panic!("taskmaster check refuses echo_supervisord_conf's sample: {errors}");
    }
}

/// Event listeners, `*_events_enabled = true` and `*_capture_maxbytes` above 0: supervisord
/// accepts them, and so does `check`.
#[test]
fn event_listeners_events_and_capture_are_accepted_as_supervisord_accepts_them() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("events.conf");
    let text = "; superlance's crashmail watching a program whose output is sent as events
[supervisord]
logfile=%(here)s/supervisord.log

[program:app]
command=sleep 3600
stdout_events_enabled=true
stderr_capture_maxbytes=1MB

[eventlistener:crashmail]
command=crashmail -a -m ops@example.com
events=PROCESS_STATE_EXITED
";
    fs::write(&file, text).expect("write events.conf");
    let env = corpus_env(&sandbox);
    let verdict = &supervisord_verdicts(std::slice::from_ref(&file), &env)[0];
    assert!(verdict.accepted, "supervisord: {:?}", verdict.error);
    assert_eq!(check(&file, &env), None);
}

/// Runs one file of the run sample: `run --no-shell`, until `ctl status` shows exactly the
/// processes supervisord's parser found, by supervisorctl's names, each RUNNING; then
/// `ctl shutdown`, and every one of those processes is gone, with its process group.
fn run_sample(name: &str) {
    assert!(RUN_SAMPLE.contains(&name), "{name} is not in RUN_SAMPLE");
    let sandbox = Sandbox::new();
    let corpus = corpus_copy(&sandbox);
    let env = corpus_env(&sandbox);
    let file = corpus.join(name);
    let text = fs::read_to_string(&file).expect("read the corpus file");
    if needs_root(&text) && !runs_as_root() {
        eprintln!(
            "skipped running {name}: it runs programs as another user (user=), which needs \
             root; CI runs the tests as root"
        );
        return;
    }
    let verdict = &supervisord_verdicts(std::slice::from_ref(&file), &env)[0];
    assert!(verdict.accepted, "supervisord: {:?}", verdict.error);
    if let Some(errors) = check(&file, &env) {
        panic!("{name}: taskmaster check refuses it, so it cannot run: {errors}");
    }
    let expected = verdict.names();
    assert!(!expected.is_empty(), "{name} has no processes");

    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&file)
        .arg("--no-shell")
        .current_dir(&corpus)
        .envs(env.iter().cloned());
    let mut daemon = Taskmaster::spawn(&sandbox, cmd);
    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.arg("ctl")
            .arg("-c")
            .arg(&file)
            .args(args)
            .current_dir(&corpus)
            .envs(env.iter().cloned())
            .env_remove("TASKMASTER_HISTORY");
        run_to_completion(cmd, TIMEOUT)
    };
    let mut last = String::new();
    let running = crate::support::wait_until_or_none(TIMEOUT, || {
        let output = ctl(&["status"]);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let statuses: Vec<StatusLine> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(StatusLine::parse)
            .collect();
        let names: BTreeSet<String> = statuses.iter().map(|s| s.name.clone()).collect();
        let all_running = statuses.iter().all(|s| s.state == "RUNNING");
        (names == expected && all_running).then_some(statuses)
    });
    let Some(statuses) = running else {
        panic!(
            "{name}: not every process supervisord names ({expected:?}) RUNNING within \
             {TIMEOUT:?}; last status:\n{last}\n{}",
            daemon.diagnostics()
        );
    };
    let pids: Vec<u32> = statuses.iter().filter_map(StatusLine::pid).collect();
    assert_eq!(pids.len(), expected.len(), "a pid each: {statuses:?}");
    for &pid in &pids {
        daemon.track(pid);
    }
    // Each process leads its own group, which holds what its shell started.
    let groups: Vec<u32> = pids
        .iter()
        .filter_map(|&pid| crate::support::proc_stat(pid).map(|stat| stat.pgid))
        .collect();

    let output = ctl(&["shutdown"]);
    assert!(
        output.status.success(),
        "{name}: ctl shutdown: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let status = daemon.wait_exit(TIMEOUT);
    assert!(status.success(), "{name}: taskmaster exited with {status}");
    for pid in pids {
        wait_dead(pid, TIMEOUT);
    }
    for group in groups {
        let pgid = i32::try_from(group)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .expect("a process group id");
        crate::support::wait_until(&format!("process group {group} to empty"), TIMEOUT, || {
            rustix::process::test_kill_process_group(pgid)
                .is_err()
                .then_some(())
        });
    }
}

#[test]
fn docker_python_web_runs() {
    run_sample("docker-python-web.conf");
}

#[test]
fn here_relative_runs() {
    run_sample("here-relative.conf");
}

#[test]
fn include_main_runs() {
    run_sample("include-main.conf");
}

#[test]
fn pool_workers_runs() {
    run_sample("pool-workers.conf");
}

#[test]
fn user_root_and_programs_runs_as_root() {
    run_sample("user-root-and-programs.conf");
}
