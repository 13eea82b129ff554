//! Output capture: children write into pipes taskmaster holds, drained into the log files with
//! splice. Every byte arrives, in each writer's order, however many processes share a file, and
//! a process's last lines are in its file by the time its exit is known.

mod support;

use std::path::PathBuf;

use support::{config, fixture_cmd, program, wait_until, yaml_quote, Sandbox, Taskmaster, TIMEOUT};

fn fd_target(pid: u32, fd: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default()
}

/// Runs program `name` once (`tm-fixture ARGS...`, its stdout to `NAME.out` in the sandbox,
/// with `extra` keys), and returns once it has EXITED.
fn run_once(sandbox: &Sandbox, name: &str, args: &[&str], extra: &[&str]) -> Taskmaster {
    let out = sandbox.file_str(&format!("{name}.out"));
    let stdout = format!("stdout: {}", yaml_quote(&out));
    let mut keys = vec!["starttime: 0", "autorestart: never", stdout.as_str()];
    keys.extend_from_slice(extra);
    sandbox.write_config(&config(&[program(name, &fixture_cmd(args), &keys)]));
    let mut tm = Taskmaster::start(sandbox, &[]);
    tm.wait_for_state(name, "EXITED", TIMEOUT);
    tm
}

#[test]
fn a_child_writes_into_a_pipe_taskmaster_holds() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("web.out");
    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["print", "hello", "sleep", "forever"]),
        &["starttime: 0", &format!("stdout: {}", yaml_quote(&out))],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm
        .wait_for_state("web", "RUNNING", TIMEOUT)
        .pid()
        .expect("web's pid");
    let target = fd_target(pid, 1);
    assert!(
        target.to_string_lossy().starts_with("pipe:["),
        "stdout is {target:?}"
    );
    sandbox.wait_for_contents("web.out", |text| text == "hello\n", TIMEOUT);
}

#[test]
fn the_last_lines_are_in_the_file_when_the_exit_is_known() {
    let sandbox = Sandbox::new();
    let _tm = run_once(&sandbox, "burst", &["lines", "20000", "exit", "0"], &[]);
    // No waiting here: the runtime moves what is left in a child's pipes into the file before
    // it reports the exit, so this holds whatever the capture thread's timing.
    let text = sandbox.read("burst.out");
    let expected: String = (1..=20000).map(|i| format!("line {i}\n")).collect();
    assert!(
        text == expected,
        "{} bytes, expected {}",
        text.len(),
        expected.len()
    );
}

/// Lines each writer writes whole (one write per line, as a line-buffered program does).
const LINES: usize = 3000;

#[test]
fn processes_sharing_a_file_lose_no_line() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("pool.out");
    // sh's echo writes each line with one write(2): a pipe keeps such a write whole.
    let writer = format!(
        "sh -c 'i=1; while [ $i -le {LINES} ]; do echo \"line $i\"; i=$((i+1)); done; exec sleep 1000'"
    );
    sandbox.write_config(&config(&[program(
        "pool",
        &writer,
        &[
            "numprocs: 4",
            "starttime: 0",
            &format!("stdout: {}", yaml_quote(&out)),
        ],
    )]));
    let _tm = Taskmaster::start(&sandbox, &[]);
    let text = wait_until("4 writers' lines in pool.out", TIMEOUT, || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        (text.lines().count() >= 4 * LINES).then_some(text)
    });
    assert_eq!(text.lines().count(), 4 * LINES, "no line twice");
    // Every line whole, and each number from each of the 4 writers.
    let mut counts = vec![0u32; LINES + 1];
    for line in text.lines() {
        let n: usize = line
            .strip_prefix("line ")
            .and_then(|n| n.parse().ok())
            .filter(|&n| n <= LINES)
            .unwrap_or_else(|| panic!("a torn line: {line:?}"));
        counts[n] += 1;
    }
    assert!(counts[1..].iter().all(|&c| c == 4), "every line 4 times");
}

#[test]
fn a_hook_writes_into_the_same_file_without_overwriting() {
    let sandbox = Sandbox::new();
    let _tm = run_once(
        &sandbox,
        "job",
        &["lines", "1000", "exit", "0"],
        &["on_exit: \"echo hook ran\""],
    );
    let text = sandbox.wait_for_contents("job.out", |t| t.ends_with("hook ran\n"), TIMEOUT);
    assert_eq!(text.lines().count(), 1001, "{text}");
    assert!(text.starts_with("line 1\n"));
}

/// `x.log` and its rotated files, oldest first: what was written, in order.
fn rotated_contents(dir: &std::path::Path, name: &str) -> (Vec<u64>, Vec<u8>) {
    let mut numbered: Vec<u32> = std::fs::read_dir(dir)
        .expect("list the sandbox")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let file = entry.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&format!("{name}."))?.parse().ok()
        })
        .collect();
    numbered.sort_unstable_by(|a, b| b.cmp(a));
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    let paths = numbered
        .iter()
        .map(|n| dir.join(format!("{name}.{n}")))
        .chain(std::iter::once(dir.join(name)));
    for path in paths {
        let bytes = std::fs::read(&path).unwrap_or_default();
        sizes.push(bytes.len() as u64);
        all.extend(bytes);
    }
    (sizes, all)
}

#[test]
fn rotation_by_size_keeps_every_byte_in_order() {
    let sandbox = Sandbox::new();
    let _tm = run_once(
        &sandbox,
        "big",
        &["lines", "100000", "exit", "0"],
        &["stdout_maxbytes: 64KB", "stdout_backups: 100"],
    );
    let (sizes, all) = rotated_contents(sandbox.path(), "big.out");
    let expected: String = (1..=100000).map(|i| format!("line {i}\n")).collect();
    assert!(
        all == expected.as_bytes(),
        "{} bytes, expected {}",
        all.len(),
        expected.len()
    );
    assert!(sizes.len() > 5, "rotated: {sizes:?}");
    // Every rotated file holds exactly maxbytes; only the current one may hold less.
    let (current, rotated) = sizes.split_last().expect("files");
    assert!(rotated.iter().all(|&size| size == 64 * 1024), "{sizes:?}");
    assert!(*current <= 64 * 1024);
}

#[test]
fn only_backups_rotated_files_are_kept() {
    let sandbox = Sandbox::new();
    let _tm = run_once(
        &sandbox,
        "few",
        &["lines", "100000", "exit", "0"],
        &["stdout_maxbytes: 64KB", "stdout_backups: 3"],
    );
    let (sizes, all) = rotated_contents(sandbox.path(), "few.out");
    assert_eq!(sizes.len(), 4, "few.out and 3 backups: {sizes:?}");
    // The newest bytes are kept: the file ends with the last line.
    assert!(all.ends_with(b"line 100000\n"));
}

#[test]
fn redirect_stderr_sends_stderr_into_stdouts_file() {
    let sandbox = Sandbox::new();
    let _tm = run_once(
        &sandbox,
        "both",
        &["print", "to stdout", "eprint", "to stderr", "exit", "0"],
        &["redirect_stderr: true"],
    );
    let text = sandbox.read("both.out");
    assert!(
        text.contains("to stdout\n") && text.contains("to stderr\n"),
        "{text:?}"
    );
}

/// A writer that prints `ready`, waits for the file `go`, then writes `line 1` to `line N`,
/// each line in one write, with a short pause every 50 lines (a busy log, not a flood: a
/// follower gets to read between most rotations), and sleeps.
fn paced_writer(lines: u32) -> String {
    let script = format!(
        "echo ready; while [ ! -e go ]; do sleep 0.02; done; \
         i=1; while [ $i -le {lines} ]; do echo \"line $i\"; \
         [ $((i % 50)) -eq 0 ] && sleep 0.005; i=$((i+1)); done; exec sleep 1000"
    );
    yaml_quote(&format!("sh -c {}", support::shell_quote(&script)))
}

#[test]
fn tail_f_follows_across_rotations_and_alerts_keep_watching() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "writer",
        &paced_writer(3000),
        &[
            "starttime: 0",
            "stdout: writer.out",
            "stdout_maxbytes: 2KB",
            "stdout_backups: 1000",
            "alerts: [{match: \"line 2999\"}]",
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("writer", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("writer.out", |text| text == "ready\n", TIMEOUT);

    let tail_out = std::fs::File::create(sandbox.file("tail.out")).expect("create tail.out");
    let mut cmd = std::process::Command::new(support::taskmaster_bin());
    cmd.args(["ctl", "-s", &sandbox.file_str("taskmaster.sock")])
        .args(["tail", "-f", "writer"])
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path())
        .stdin(std::process::Stdio::null())
        .stdout(tail_out)
        .stderr(std::process::Stdio::null());
    let mut tail = support::Process::spawn(cmd);
    sandbox.wait_for_contents("tail.out", |text| text == "ready\n", TIMEOUT);

    std::fs::write(sandbox.file("go"), "").expect("create go");
    let followed =
        sandbox.wait_for_contents("tail.out", |text| text.ends_with("line 3000\n"), TIMEOUT);
    let expected: String = std::iter::once("ready\n".to_string())
        .chain((1..=3000).map(|i| format!("line {i}\n")))
        .collect();
    if followed != expected {
        let got: Vec<&str> = followed.lines().collect();
        let want: Vec<&str> = expected.lines().collect();
        let first = got.iter().zip(&want).position(|(g, w)| g != w);
        let around = |lines: &[&str], i: usize| {
            lines[i.saturating_sub(2)..(i + 3).min(lines.len())].join(" | ")
        };
        let detail = first.map(|i| (around(&got, i), around(&want, i)));
        panic!(
            "tail -f lost or repeated lines across rotations: {} lines, expected {}; \
             first difference: {detail:?}",
            got.len(),
            want.len()
        );
    }
    assert!(
        std::fs::metadata(sandbox.file("writer.out.10")).is_ok(),
        "the file was rotated many times"
    );
    tm.wait_for_log("writer: alert (warning) on stdout: line 2999", TIMEOUT);
    support::send_signal(tail.pid(), rustix::process::Signal::INT).expect("interrupt ctl");
    tail.wait_exit(TIMEOUT);
}

/// A writer that prints `before`, waits for the file `go`, prints `after` and sleeps.
fn before_and_after() -> String {
    let script = "echo before; while [ ! -e go ]; do sleep 0.02; done; echo after; exec sleep 1000";
    yaml_quote(&format!("sh -c {}", support::shell_quote(script)))
}

fn ctl(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(support::taskmaster_bin());
    cmd.args(["ctl", "-s", &sandbox.file_str("taskmaster.sock")])
        .args(args)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    support::run_to_completion(cmd, TIMEOUT)
}

#[test]
fn logrotate_reopens_files_an_outside_logrotate_renamed() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "job",
        &before_and_after(),
        &["starttime: 0", "stdout: job.out"],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("job", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("job.out", |text| text == "before\n", TIMEOUT);
    // What logrotate does: rename, then ask the writer to reopen.
    std::fs::rename(sandbox.file("job.out"), sandbox.file("job.out.old")).expect("rename");
    std::fs::rename(sandbox.logfile(), sandbox.file("taskmaster.log.old")).expect("rename");
    let answer = ctl(&sandbox, &["logrotate"]);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        "reopened 2 log file(s)\n"
    );
    std::fs::write(sandbox.file("go"), "").expect("create go");
    sandbox.wait_for_contents("job.out", |text| text == "after\n", TIMEOUT);
    assert_eq!(sandbox.read("job.out.old"), "before\n");
    let log = std::fs::read_to_string(sandbox.logfile()).unwrap_or_default();
    assert!(log.contains("log files reopened: 2, errors: 0"), "{log}");
}

#[test]
fn sigusr1_reopens_the_log_files() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "job",
        &before_and_after(),
        &["starttime: 0", "stdout: job.out"],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("job", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("job.out", |text| text == "before\n", TIMEOUT);
    std::fs::rename(sandbox.file("job.out"), sandbox.file("job.out.1")).expect("rename");
    support::send_signal(tm.daemon_pid(), rustix::process::Signal::USR1).expect("SIGUSR1");
    wait_until("the event log reopened", TIMEOUT, || {
        std::fs::read_to_string(sandbox.logfile())
            .ok()?
            .contains("log files reopened")
            .then_some(())
    });
    std::fs::write(sandbox.file("go"), "").expect("create go");
    sandbox.wait_for_contents("job.out", |text| text == "after\n", TIMEOUT);
}

#[test]
fn the_event_log_rotates_too() {
    let sandbox = Sandbox::new();
    let yaml = format!(
        "logfile_maxbytes: 2KB\nlogfile_backups: 2\n{}",
        config(&[program(
            "flapper",
            &fixture_cmd(&["exit", "1"]),
            &["starttime: 0", "autorestart: always"],
        )])
    );
    sandbox.write_config(&yaml);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    // Each restart writes a few lines: the log fills and rotates again and again.
    wait_until("taskmaster.log rotated twice", TIMEOUT, || {
        std::fs::metadata(sandbox.file("taskmaster.log.2")).ok()
    });
    assert_eq!(tm.command("stop flapper", 1), ["flapper: stopped"]);
    assert!(
        std::fs::metadata(sandbox.file("taskmaster.log.3")).is_err(),
        "only 2 backups are kept"
    );
    let rotated = std::fs::read_to_string(sandbox.file("taskmaster.log.1")).expect("log.1");
    assert!(
        rotated.len() >= 2048,
        "rotated once full: {} bytes",
        rotated.len()
    );
    assert!(rotated.ends_with('\n'), "whole lines");
}

#[test]
fn a_file_size_limit_is_an_error_the_capture_recovers_from() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("big.out");
    sandbox.write_config(&config(&[program(
        "big",
        &fixture_cmd(&["lines", "10000", "sleep", "forever"]),
        &[
            "starttime: 0",
            "stdout_maxbytes: 0",
            &format!("stdout: {}", yaml_quote(&out)),
        ],
    )]));
    // A disk that is full, as far as taskmaster can tell: files may not grow past 32 KiB
    // (64 blocks of 512 bytes), so the capture's writes fail with EFBIG.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -S -f 64 && exec \"$0\" run -c \"$1\"")
        .arg(support::taskmaster_bin())
        .arg(sandbox.config_path())
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    let line = tm.wait_for_log("cannot write output to", TIMEOUT);
    assert!(line.contains("File too large"), "{line}");
    // The supervisor lives, and so does the writer (it waits on its full pipe).
    let status = tm.wait_for_state("big", "RUNNING", TIMEOUT);
    assert!(status.pid().is_some_and(support::is_alive));
    // The disk has room again: capture goes on where it stopped, nothing lost.
    let unlimited = rustix::process::Rlimit {
        current: None,
        maximum: None,
    };
    let daemon = rustix::process::Pid::from_raw(tm.daemon_pid() as i32).expect("a pid");
    rustix::process::prlimit(Some(daemon), rustix::process::Resource::Fsize, unlimited)
        .expect("raise the daemon's file size limit");
    let expected: String = (1..=10000).map(|i| format!("line {i}\n")).collect();
    sandbox.wait_for_contents("big.out", |text| text == expected, TIMEOUT);
}
