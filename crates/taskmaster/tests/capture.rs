//! Output capture: children write into pipes taskmaster holds, drained into the log files with
//! splice. Every byte arrives, in each writer's order, however many processes share a file, and
//! a process's last lines are in its file by the time its exit is known.

// What `tm-fixture pattern` writes, made again to compare (`Kind::parse` is the fixture's).
#[allow(dead_code)]
use crate::pattern;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pattern::{Kind, Pattern};

use crate::support::{
    config, fixture_cmd, program, wait_until, wait_until_or_none, yaml_quote, Sandbox, Taskmaster,
    TIMEOUT,
};

fn fd_target(pid: u32, fd: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default()
}

/// Runs program `name` once (`tm-fixture ARGS...`, its stdout to `NAME.out` in the sandbox,
/// with `extra` keys), and returns once it has EXITED.
fn run_once(sandbox: &Sandbox, name: &str, args: &[&str], extra: &[&str]) -> Taskmaster {
    run_once_within(sandbox, name, args, extra, TIMEOUT)
}

/// [`run_once`], for a program that takes longer than [`TIMEOUT`] to end when the machine is
/// busy: it has until `deadline` to reach EXITED.
fn run_once_within(
    sandbox: &Sandbox,
    name: &str,
    args: &[&str],
    extra: &[&str],
    deadline: Duration,
) -> Taskmaster {
    let out = sandbox.file_str(&format!("{name}.out"));
    let stdout = format!("stdout: {}", yaml_quote(&out));
    let mut keys = vec!["starttime: 0", "autorestart: never", stdout.as_str()];
    keys.extend_from_slice(extra);
    sandbox.write_config(&config(&[program(name, &fixture_cmd(args), &keys)]));
    let mut tm = Taskmaster::start(sandbox, &[]);
    tm.wait_for_state(name, "EXITED", deadline);
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

/// A file that is never rotated, with nothing reading the stream on its way: the child's own
/// descriptor is the file, opened for appending; `tail` and `alerts` read it all the same.
#[test]
fn a_file_never_rotated_is_written_by_the_process_itself() {
    let sandbox = Sandbox::new();
    let out = sandbox.file_str("web.out");
    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["lines", "3000", "print", "ready", "sleep", "forever"]),
        &[
            "starttime: 0",
            &format!("stdout: {}", yaml_quote(&out)),
            "stdout_maxbytes: 0",
            "redirect_stderr: true",
            "alerts: [{match: \"ready\"}]",
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm
        .wait_for_state("web", "RUNNING", TIMEOUT)
        .pid()
        .expect("web's pid");
    assert_eq!(fd_target(pid, 1), PathBuf::from(&out), "stdout is the file");
    assert_eq!(
        fd_target(pid, 2),
        PathBuf::from(&out),
        "stderr too (redirected)"
    );
    let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/1")).unwrap_or_default();
    let flags = flags
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|octal| u32::from_str_radix(octal.trim(), 8).ok())
        .unwrap_or(0);
    assert_ne!(flags & libc::O_APPEND as u32, 0, "opened for appending");
    let expected: String = (1..=3000)
        .map(|i| format!("line {i}\n"))
        .chain(["ready\n".to_string()])
        .collect();
    sandbox.wait_for_contents("web.out", |text| text == expected, TIMEOUT);
    tm.wait_for_log("web: alert (warning) on stdout: ready", TIMEOUT);
    let tail = sandbox.ctl(&["tail", "-n", "2", "web"]);
    assert_eq!(tail.stdout, "line 3000\nready\n", "{tail:?}");
}

/// Where something must read the stream as it comes (syslog, output events) or taskmaster
/// rotates the file, the child writes into taskmaster's pipe, as before.
#[test]
fn a_stream_that_is_read_on_its_way_or_rotated_still_goes_through_a_pipe() {
    let sandbox = Sandbox::new();
    let socket = sandbox.file_str("log.sock");
    let _syslog = std::os::unix::net::UnixDatagram::bind(&socket).expect("bind a syslog socket");
    let sleeper = |name: &str, extra: &str| {
        let out = format!(
            "stdout: {}",
            yaml_quote(&sandbox.file_str(&format!("{name}.out")))
        );
        program(
            name,
            &fixture_cmd(&["sleep", "forever"]),
            &["starttime: 0", &out, extra],
        )
    };
    let yaml = format!(
        "syslog_socket: {}\n{}",
        yaml_quote(&socket),
        config(&[
            sleeper("direct", "stdout_maxbytes: 0"),
            sleeper("rotated", "stdout_maxbytes: 1MB"),
            sleeper("syslogged", "stdout_syslog: true\n    stdout_maxbytes: 0"),
            sleeper(
                "heard",
                "stdout_events_enabled: true\n    stdout_maxbytes: 0"
            ),
        ])
    );
    sandbox.write_config(&yaml);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    for (name, piped) in [
        ("direct", false),
        ("rotated", true),
        ("syslogged", true),
        ("heard", true),
    ] {
        let pid = tm
            .wait_for_state(name, "RUNNING", TIMEOUT)
            .pid()
            .expect("a pid");
        let target = fd_target(pid, 1).to_string_lossy().into_owned();
        assert_eq!(
            target.starts_with("pipe:["),
            piped,
            "{name}'s stdout is {target}"
        );
    }
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

/// `x.log`'s rotated files, oldest first, then `x.log` itself: where what was written is, in
/// order.
fn log_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut numbered: Vec<u32> = std::fs::read_dir(dir)
        .expect("list the sandbox")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let file = entry.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&format!("{name}."))?.parse().ok()
        })
        .collect();
    numbered.sort_unstable_by(|a, b| b.cmp(a));
    numbered
        .iter()
        .map(|n| dir.join(format!("{name}.{n}")))
        .chain(std::iter::once(dir.join(name)))
        .collect()
}

/// `x.log` and its rotated files, oldest first: what was written, in order.
fn rotated_contents(dir: &Path, name: &str) -> (Vec<u64>, Vec<u8>) {
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    for path in log_files(dir, name) {
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
    yaml_quote(&format!("sh -c {}", crate::support::shell_quote(&script)))
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
    let mut cmd = sandbox.ctl_command(&["tail", "-f", "writer"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(tail_out)
        .stderr(std::process::Stdio::null());
    let mut tail = crate::support::Process::spawn(cmd);
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
    crate::support::send_signal(tail.pid(), rustix::process::Signal::INT).expect("interrupt ctl");
    tail.wait_exit(TIMEOUT);
}

/// A thread that keeps a CPU busy until dropped.
struct Busy {
    busy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start() -> Busy {
        let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let spinning = busy.clone();
        let thread = std::thread::spawn(move || {
            let mut x = 0u64;
            while spinning.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        });
        Busy {
            busy,
            thread: Some(thread),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.busy.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A writer that prints `ready`, waits for the file `go`, then writes `line 1` to `line N` as
/// fast as the shell goes, each line in one write, with a pause every 100 lines (followers
/// catch up, and are at the file's end when the next burst fills and rotates it), and sleeps.
fn fast_writer(lines: u32) -> String {
    let script = format!(
        "echo ready; while [ ! -e go ]; do sleep 0.02; done; \
         i=1; while [ $i -le {lines} ]; do echo \"line $i\"; \
         [ $((i % 100)) -eq 0 ] && sleep 0.01; i=$((i+1)); done; exec sleep 1000"
    );
    yaml_quote(&format!("sh -c {}", crate::support::shell_quote(&script)))
}

/// Several `tail -f` (by bytes, and by lines: the window and what follows in one answer)
/// follow a writer that fills a 300-byte file as fast as it can, rotating it hundreds of times,
/// while a thread of the test keeps a CPU busy: each must show every line once, in order.
#[test]
fn several_tail_f_under_load_lose_no_line_across_rapid_rotations() {
    const LINES: u32 = 12_000;
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "writer",
        &fast_writer(LINES),
        &[
            "starttime: 0",
            "stdout: writer.out",
            "stdout_maxbytes: 300",
            "stdout_backups: 1000",
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("writer", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("writer.out", |text| text == "ready\n", TIMEOUT);

    let ways: [&[&str]; 6] = [
        &["tail", "-f", "writer"],
        &["tail", "-f", "writer"],
        &["tail", "-f", "writer"],
        &["tail", "-f", "-n", "1", "writer"],
        &["tail", "-f", "-n", "1", "writer"],
        &["tail", "-f", "-n", "1", "writer"],
    ];
    let mut tails: Vec<(String, crate::support::Process)> = Vec::new();
    for (n, args) in ways.iter().enumerate() {
        let name = format!("tail{n}.out");
        let out = File::create(sandbox.file(&name)).expect("create a tail's output");
        let mut cmd = sandbox.ctl_command(args);
        cmd.stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(std::process::Stdio::null());
        tails.push((name, crate::support::Process::spawn(cmd)));
    }
    for (name, _) in &tails {
        sandbox.wait_for_contents(name, |text| text == "ready\n", TIMEOUT);
    }

    let hog = Busy::start();
    std::fs::write(sandbox.file("go"), "").expect("create go");
    let expected: String = std::iter::once("ready\n".to_string())
        .chain((1..=LINES).map(|i| format!("line {i}\n")))
        .collect();
    let last = format!("line {LINES}\n");
    // Done when the last line is there, or when more than everything is: a tail that lost
    // lines still ends with the last one, one that repeats lines may never show it. Six tails
    // through hundreds of rotations take a while on a busy machine (about 20 s beside two
    // builds on two cores): the deadline is for all of them together.
    let read = |name: &str| std::fs::read_to_string(sandbox.file(name)).unwrap_or_default();
    let over = |text: &str| text.ends_with(&last) || text.len() > expected.len();
    let all_done = wait_until_or_none(3 * TIMEOUT, || {
        tails
            .iter()
            .all(|(name, _)| over(&read(name)))
            .then_some(())
    });
    let mut failures = Vec::new();
    for (name, _) in &tails {
        let followed = read(name);
        if all_done.is_none() && !over(&followed) {
            let writer_at = read("writer.out")
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            failures.push(format!(
                "{name}: stopped at {} bytes, after {:?}; the writer at {writer_at:?}",
                followed.len(),
                followed.lines().last().unwrap_or_default()
            ));
            continue;
        }
        if followed != expected {
            let got: Vec<&str> = followed.lines().collect();
            let want: Vec<&str> = expected.lines().collect();
            let first = got.iter().zip(&want).position(|(g, w)| g != w);
            let around = |lines: &[&str], i: usize| {
                lines[i.saturating_sub(2)..(i + 3).min(lines.len())].join(" | ")
            };
            let detail = first.map(|i| (around(&got, i), around(&want, i)));
            failures.push(format!(
                "{name}: {} lines, expected {}; first difference: {detail:?}",
                got.len(),
                want.len()
            ));
        }
    }
    drop(hog);
    for (_, tail) in &mut tails {
        crate::support::send_signal(tail.pid(), rustix::process::Signal::INT)
            .expect("interrupt ctl");
        tail.wait_exit(TIMEOUT);
    }
    assert!(
        failures.is_empty(),
        "tail -f lost or repeated lines across rotations:\n{}",
        failures.join("\n")
    );
    assert!(
        std::fs::metadata(sandbox.file("writer.out.100")).is_ok(),
        "the file was rotated hundreds of times"
    );
}

/// A writer that prints `before`, waits for the file `go`, prints `after` and sleeps.
fn before_and_after() -> String {
    let script = "echo before; while [ ! -e go ]; do sleep 0.02; done; echo after; exec sleep 1000";
    yaml_quote(&format!("sh -c {}", crate::support::shell_quote(script)))
}

fn ctl(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    crate::support::run_to_completion(sandbox.ctl_command(args), TIMEOUT)
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

/// A file the process writes itself cannot be reopened by taskmaster: `logrotate` says so,
/// and logrotate's `copytruncate` is the way (the file is opened for appending, so the
/// process's next line lands at the start of the emptied file, not after a hole).
#[test]
fn logrotate_names_the_files_processes_write_themselves_and_copytruncate_keeps_them() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "job",
        &before_and_after(),
        &["starttime: 0", "stdout: job.out", "stdout_maxbytes: 0"],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("job", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("job.out", |text| text == "before\n", TIMEOUT);
    // What logrotate's copytruncate does: copy, then empty the file in place.
    std::fs::copy(sandbox.file("job.out"), sandbox.file("job.out.1")).expect("copy");
    std::fs::File::options()
        .write(true)
        .open(sandbox.file("job.out"))
        .and_then(|file| file.set_len(0))
        .expect("truncate");
    let answer = ctl(&sandbox, &["logrotate"]);
    assert!(answer.status.success(), "{answer:?}");
    let warning = tm.wait_for_log("written by the processes themselves", TIMEOUT);
    assert!(
        warning.contains(&format!(
            "logrotate: {} written by the processes themselves (never rotated by taskmaster): \
             not reopened; an outside logrotate needs copytruncate for them",
            sandbox.file("job.out").display()
        )),
        "{warning}"
    );
    std::fs::write(sandbox.file("go"), "").expect("create go");
    sandbox.wait_for_contents("job.out", |text| text == "after\n", TIMEOUT);
    assert_eq!(sandbox.read("job.out.1"), "before\n");
}

#[test]
fn logrotate_with_names_reopens_only_their_files() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[
        program("a", &before_and_after(), &["starttime: 0", "stdout: a.out"]),
        program("b", &before_and_after(), &["starttime: 0", "stdout: b.out"]),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    for name in ["a", "b"] {
        tm.wait_for_state(name, "RUNNING", TIMEOUT);
        sandbox.wait_for_contents(&format!("{name}.out"), |text| text == "before\n", TIMEOUT);
        let out = sandbox.file(&format!("{name}.out"));
        std::fs::rename(&out, sandbox.file(&format!("{name}.out.old"))).expect("rename");
    }
    let answer = ctl(&sandbox, &["logrotate", "a"]);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        "reopened 1 log file(s)\n"
    );
    // A name that matches nothing reopens nothing, and says so.
    let answer = ctl(&sandbox, &["logrotate", "a", "nope"]);
    assert_eq!(answer.status.code(), Some(3), "{answer:?}");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        "reopened 0 log file(s)\nerror: nope: ERROR (no such process)\n"
    );
    std::fs::write(sandbox.file("go"), "").expect("create go");
    sandbox.wait_for_contents("a.out", |text| text == "after\n", TIMEOUT);
    sandbox.wait_for_contents("b.out.old", |text| text == "before\nafter\n", TIMEOUT);
    assert!(!sandbox.file("b.out").exists(), "b's file was not reopened");
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
    crate::support::send_signal(tm.daemon_pid(), rustix::process::Signal::USR1).expect("SIGUSR1");
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
    // Each restart writes a few lines, but a crash loop is throttled and its repeats are held
    // back; each command (a query aside) writes a line, never held back: with both the log
    // fills and rotates again and again.
    wait_until("taskmaster.log rotated twice", TIMEOUT, || {
        assert_eq!(
            tm.command("start nosuch", 1),
            ["nosuch: ERROR (no such process)"]
        );
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
            // Rotated, so captured by taskmaster (a file never rotated the child writes).
            "stdout_maxbytes: 1MB",
            &format!("stdout: {}", yaml_quote(&out)),
        ],
    )]));
    // A disk that is full, as far as taskmaster can tell: files may not grow past 32 KiB
    // (64 blocks of 512 bytes), so the capture's writes fail with EFBIG.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -S -f 64 && exec \"$0\" run -c \"$1\"")
        .arg(crate::support::taskmaster_bin())
        .arg(sandbox.config_path())
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    let line = tm.wait_for_log("cannot write output to", TIMEOUT);
    assert!(line.contains("File too large"), "{line}");
    // The supervisor lives, and so does the writer (it waits on its full pipe).
    let status = tm.wait_for_state("big", "RUNNING", TIMEOUT);
    assert!(status.pid().is_some_and(crate::support::is_alive));
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

// ---------------------------------------------------------------------------------------------
// Every byte, whatever the writer writes: checked against the stream it wrote
// ---------------------------------------------------------------------------------------------

/// The first `len` bytes of a `kind` stream of `pattern.rs`: what `tm-fixture pattern KIND LEN`
/// writes, made again here a slice at a time.
struct PatternReader {
    pattern: Pattern,
    left: u64,
}

impl PatternReader {
    fn new(kind: Kind, len: u64) -> PatternReader {
        PatternReader {
            pattern: Pattern::new(kind),
            left: len,
        }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        let slice = self.pattern.next_slice(max);
        buf[..slice.len()].copy_from_slice(slice);
        self.left -= slice.len() as u64;
        Ok(slice.len())
    }
}

/// Reads from `reader` until `buf` is full or the reader ends; how much it read.
fn read_full(reader: &mut impl Read, buf: &mut [u8], what: &str) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("cannot read {what}: {e}"),
        }
    }
    filled
}

/// Checks that `name` in `dir` and its rotated files, oldest first, hold exactly what
/// `expected` yields, a MiB at a time (a GiB is never in memory). A difference is reported at
/// its first byte, with its offset in the stream and in the file that holds it.
fn assert_log_files_hold(dir: &Path, name: &str, mut expected: impl Read) {
    const CHUNK: usize = 1 << 20;
    let (mut got, mut want) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut offset = 0u64;
    for path in log_files(dir, name) {
        let what = path.display().to_string();
        let mut file = File::open(&path).unwrap_or_else(|e| panic!("open {what}: {e}"));
        let mut in_file = 0u64;
        loop {
            let read = read_full(&mut file, &mut got, &what);
            if read == 0 {
                break;
            }
            let wanted = read_full(&mut expected, &mut want[..read], "the expected stream");
            if got[..read] != want[..wanted] {
                let at = (0..read)
                    .find(|&i| i >= wanted || got[i] != want[i])
                    .unwrap_or(read);
                if at >= wanted {
                    panic!(
                        "the log files hold more than was written ({} bytes): {what} goes on \
                         at its byte {}",
                        offset + wanted as u64,
                        in_file + wanted as u64
                    );
                }
                let window = |bytes: &[u8], len: usize| bytes[at..(at + 16).min(len)].to_vec();
                panic!(
                    "the log files differ from what was written at byte {} ({what}, byte {}): \
                     {:02x?} where {:02x?} was written",
                    offset + at as u64,
                    in_file + at as u64,
                    window(&got, read),
                    window(&want, wanted)
                );
            }
            offset += read as u64;
            in_file += read as u64;
        }
    }
    let mut rest = [0u8; 1];
    assert!(
        read_full(&mut expected, &mut rest, "the expected stream") == 0,
        "the log files end at byte {offset}: the rest of what was written is missing"
    );
}

/// The bytes free for an unprivileged user on the file system of `dir`.
fn free_space(dir: &Path) -> u64 {
    let stat = rustix::fs::statvfs(dir).expect("statvfs of the sandbox");
    stat.f_bavail.saturating_mul(stat.f_frsize)
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[test]
fn a_gib_written_flat_out_is_in_the_rotated_files_byte_for_byte() {
    let sandbox = Sandbox::new();
    let free = free_space(sandbox.path());
    if free < 3 * GIB {
        eprintln!(
            "skipped: {} has {} MiB free; writing 1 GiB wants 3 GiB",
            sandbox.path().display(),
            free / MIB
        );
        return;
    }
    // Writing takes a second or two; the deadline is for a hang on a very busy machine.
    let _tm = run_once_within(
        &sandbox,
        "flood",
        &["pattern", "binary", "1G", "exit", "0"],
        &["stdout_maxbytes: 200MB", "stdout_backups: 10"],
        Duration::from_secs(120),
    );
    let sizes: Vec<u64> = log_files(sandbox.path(), "flood.out")
        .iter()
        .map(|path| std::fs::metadata(path).map_or(0, |meta| meta.len()))
        .collect();
    let mut expected_sizes = vec![200 * MIB; 5];
    expected_sizes.push(GIB - 5 * 200 * MIB);
    assert_eq!(
        sizes, expected_sizes,
        "five full files of 200 MiB, then the rest"
    );
    assert_log_files_hold(
        sandbox.path(),
        "flood.out",
        PatternReader::new(Kind::Binary, GIB),
    );
}

#[test]
fn output_without_a_newline_is_kept_byte_for_byte_across_rotations() {
    let sandbox = Sandbox::new();
    // One line of 6 MB, no newline anywhere: a file is rotated in the middle of it, five times.
    let _tm = run_once(
        &sandbox,
        "oneline",
        &["pattern", "text", "6000000", "exit", "0"],
        &["stdout_maxbytes: 1MB", "stdout_backups: 10"],
    );
    let files = log_files(sandbox.path(), "oneline.out");
    assert_eq!(files.len(), 6, "rotated five times: {files:?}");
    assert_log_files_hold(
        sandbox.path(),
        "oneline.out",
        PatternReader::new(Kind::Text, 6_000_000),
    );
}

#[test]
fn binary_output_is_kept_byte_for_byte() {
    let mut seen = [false; 256];
    for &byte in Pattern::new(Kind::Binary).next_slice(pattern::PERIOD) {
        seen[usize::from(byte)] = true;
    }
    assert!(seen.iter().all(|&seen| seen), "every byte value is written");
    let sandbox = Sandbox::new();
    let _tm = run_once(
        &sandbox,
        "bin",
        &["pattern", "binary", "3M", "exit", "0"],
        &["stdout_maxbytes: 1MB", "stdout_backups: 10"],
    );
    assert_log_files_hold(
        sandbox.path(),
        "bin.out",
        PatternReader::new(Kind::Binary, 3 * MIB),
    );
}

#[test]
fn a_slow_writer_loses_no_line_while_a_fast_one_rotates_many_times() {
    let sandbox = Sandbox::new();
    let stop = sandbox.file_str("stop");
    sandbox.write_config(&config(&[
        // A line every 10 ms, until `stop` exists: its file rotates every 20 lines or so.
        program(
            "slow",
            &fixture_cmd(&["lines-until", &stop, "0.01"]),
            &[
                "starttime: 0",
                "autorestart: never",
                "stdout: slow.out",
                "stdout_maxbytes: 200",
                "stdout_backups: 1000",
            ],
        ),
        // 64 MiB as fast as it can, into files of 256 KiB: 255 rotations at least (256 if the
        // full last file is rotated at the end, before a write that does not come).
        program(
            "fast",
            &fixture_cmd(&["pattern", "binary", "64M"]),
            &[
                "autostart: false",
                "starttime: 0",
                "autorestart: never",
                "stdout: fast.out",
                "stdout_maxbytes: 256KB",
                "stdout_backups: 300",
            ],
        ),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    // The slow writer is under way before the fast one starts, and goes on after it ended,
    // rotating its own file on the way.
    let slow_files = || log_files(sandbox.path(), "slow.out").len();
    wait_until("slow.out rotated", TIMEOUT, || {
        (slow_files() > 1).then_some(())
    });
    let slow_files_before = slow_files();
    assert_eq!(tm.command("start fast", 1), ["fast: started"]);
    tm.wait_for_state("fast", "EXITED", Duration::from_secs(120));
    wait_until("slow.out rotated again", TIMEOUT, || {
        (slow_files() > slow_files_before).then_some(())
    });
    std::fs::write(&stop, "").expect("create stop");
    tm.wait_for_state("slow", "EXITED", TIMEOUT);

    let fast_files = log_files(sandbox.path(), "fast.out").len();
    assert!(
        fast_files >= 256,
        "fast.out rotated {} times",
        fast_files - 1
    );
    assert_log_files_hold(
        sandbox.path(),
        "fast.out",
        PatternReader::new(Kind::Binary, 64 * MIB),
    );

    let (_, slow) = rotated_contents(sandbox.path(), "slow.out");
    let slow = String::from_utf8_lossy(&slow);
    let lines: u32 = slow
        .lines()
        .last()
        .and_then(|last| last.strip_prefix("stopped after "))
        .and_then(|rest| rest.strip_suffix(" lines"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("slow.out does not end with its count: {slow:?}"));
    let expected: String = (1..=lines)
        .map(|i| format!("line {i}\n"))
        .chain(std::iter::once(format!("stopped after {lines} lines\n")))
        .collect();
    assert_log_files_hold(sandbox.path(), "slow.out", expected.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// A log directory taskmaster may not write to
// ---------------------------------------------------------------------------------------------

/// `cmd`, made to run without the capabilities that let root write anywhere (when the tests
/// run as root): the daemon then obeys a folder's mode bits like any user.
fn without_dac_override(mut cmd: std::process::Command) -> std::process::Command {
    use rustix::thread::{remove_capability_from_bounding_set, CapabilitySet};
    use std::os::unix::process::CommandExt;
    if !rustix::process::geteuid().is_root() {
        return cmd;
    }
    // SAFETY: the closure runs in the child between fork and exec and only makes prctl calls
    // (rustix calls the kernel directly: no allocation, no lock). Dropped from the bounding
    // set, the capabilities are gone from the daemon's effective set once it is exec'd.
    unsafe {
        cmd.pre_exec(|| {
            for capability in [
                CapabilitySet::DAC_OVERRIDE,
                CapabilitySet::DAC_READ_SEARCH,
                CapabilitySet::FOWNER,
            ] {
                remove_capability_from_bounding_set(capability)?;
            }
            Ok(())
        });
    }
    cmd
}

/// The effective capabilities of `pid` (`CapEff` in /proc/PID/status), as a bit mask.
fn effective_capabilities(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapEff for pid {pid}"))
}

/// How many times the daemon's capture threads have gone to sleep so far: their voluntary
/// context switches, summed. A capture whose file refuses its writes sleeps once per retry; an
/// idle one stays asleep in poll and adds nothing.
fn capture_thread_sleeps(daemon: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{daemon}/task")).expect("list the threads");
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("capture"))
        })
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let count = status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))?;
            count.trim().parse::<u64>().ok()
        })
        .sum()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

#[test]
fn an_unwritable_log_folder_is_reported_once_and_capture_resumes_once_writable() {
    let sandbox = Sandbox::new();
    let logs = sandbox.file("logs");
    std::fs::create_dir(&logs).expect("create logs/");
    let out = logs.join("w.out");
    let go = sandbox.file_str("go");
    sandbox.write_config(&config(&[program(
        "w",
        &fixture_cmd(&[
            "print", "ready", "wait-for", &go, "pattern", "binary", "4M", "sleep", "forever",
        ]),
        &[
            "starttime: 0",
            &format!("stdout: {}", yaml_quote(&out.to_string_lossy())),
            "stdout_maxbytes: 64KB",
            "stdout_backups: 100",
        ],
    )]));
    let mut tm = Taskmaster::spawn(
        &sandbox,
        without_dac_override(sandbox.taskmaster_command(&[])),
    );
    const DAC_OVERRIDE: u64 = 1 << 1;
    assert!(
        effective_capabilities(tm.daemon_pid()) & DAC_OVERRIDE == 0,
        "the daemon can still write anywhere: the test would prove nothing"
    );
    let pid = tm
        .wait_for_state("w", "RUNNING", TIMEOUT)
        .pid()
        .expect("w's pid");
    sandbox.wait_for_contents("logs/w.out", |text| text == "ready\n", TIMEOUT);

    // The open file can still grow, but not be rotated: nothing may be renamed or created in
    // the folder. The writer fills w.out to maxbytes, then its pipe, then blocks.
    set_mode(&logs, 0o500);
    std::fs::write(&go, "").expect("create go");
    let line = tm.wait_for_log("cannot rotate", TIMEOUT);
    assert!(
        line.contains(&format!(
            "w: cannot rotate {}: Permission denied; the writer waits",
            out.display()
        )),
        "{line}"
    );
    let sleeps = capture_thread_sleeps(tm.daemon_pid());
    wait_until("the capture to retry three times", TIMEOUT, || {
        (capture_thread_sleeps(tm.daemon_pid()) >= sleeps + 3).then_some(())
    });
    let errors = |log: &str| log.matches("cannot rotate").count();
    assert_eq!(errors(&tm.log()), 1, "said once, not at each retry");
    let status = tm.status("w");
    assert_eq!(
        (status.state.as_str(), status.pid()),
        ("RUNNING", Some(pid))
    );
    assert!(crate::support::is_alive(pid), "the writer waits, alive");
    let size = std::fs::metadata(&out).map_or(0, |meta| meta.len());
    assert_eq!(size, 64 * 1024, "w.out holds maxbytes, no more");

    // Writable again: the next retry rotates, and the rest follows.
    set_mode(&logs, 0o700);
    let total = 6 + 4 * MIB;
    wait_until("every byte in the log files", TIMEOUT, || {
        let (sizes, _) = rotated_contents(&logs, "w.out");
        (sizes.iter().sum::<u64>() >= total).then_some(())
    });
    assert_log_files_hold(
        &logs,
        "w.out",
        b"ready\n".chain(PatternReader::new(Kind::Binary, 4 * MIB)),
    );
    assert_eq!(errors(&tm.log()), 1, "said once");
    let back = tm.wait_for_log("output goes to", TIMEOUT);
    assert!(
        back.contains(&format!("w: output goes to {} again", out.display())),
        "{back}"
    );
}

#[test]
fn a_log_file_deleted_by_hand_is_made_again_at_the_next_rotation() {
    let sandbox = Sandbox::new();
    let go = sandbox.file_str("go");
    sandbox.write_config(&config(&[program(
        "w",
        &fixture_cmd(&[
            "print", "ready", "wait-for", &go, "pattern", "binary", "1M", "sleep", "forever",
        ]),
        &[
            "starttime: 0",
            "stdout: w.out",
            "stdout_maxbytes: 64KB",
            "stdout_backups: 100",
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("w", "RUNNING", TIMEOUT);
    sandbox.wait_for_contents("w.out", |text| text == "ready\n", TIMEOUT);
    // What an operator short of disk space does. Taskmaster still holds the file, and fills
    // it to maxbytes; then it is rotated: there is nothing to rename, and a new w.out is made.
    std::fs::remove_file(sandbox.file("w.out")).expect("delete w.out");
    std::fs::write(&go, "").expect("create go");
    let in_deleted_file = 64 * 1024 - "ready\n".len() as u64;
    wait_until("the rest of the output in the files", TIMEOUT, || {
        let (sizes, _) = rotated_contents(sandbox.path(), "w.out");
        (sizes.iter().sum::<u64>() >= MIB - in_deleted_file).then_some(())
    });
    let mut expected = PatternReader::new(Kind::Binary, MIB);
    std::io::copy(
        &mut (&mut expected).take(in_deleted_file),
        &mut std::io::sink(),
    )
    .expect("skip what went to the deleted file");
    assert_log_files_hold(sandbox.path(), "w.out", expected);
    let log = tm.log();
    assert!(!log.contains("cannot "), "{log}");
}

/// A tmpfs of `size` mounted at `dir` for one test, unmounted when dropped (lazily: a process
/// still holding a file there does not keep it mounted). `None` where mounting is not allowed.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|output| output.status.success());
        mounted.then(|| SmallDisk(dir.to_path_buf()))
    }

    /// Gives the filesystem `size` in all.
    fn resize(&self, size: &str) {
        let output = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert!(output.status.success(), "remount: {output:?}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

#[test]
fn a_full_disk_is_reported_once_and_capture_resumes_when_there_is_room() {
    let sandbox = Sandbox::new();
    let logs = sandbox.file("logs");
    let Some(disk) = SmallDisk::mount(&logs, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (the file size limit test stands in)");
        return;
    };
    let out = logs.join("w.out");
    let go = sandbox.file_str("go");
    sandbox.write_config(&config(&[program(
        "w",
        &fixture_cmd(&[
            "print", "ready", "wait-for", &go, "pattern", "binary", "3M", "sleep", "forever",
        ]),
        &[
            "starttime: 0",
            &format!("stdout: {}", yaml_quote(&out.to_string_lossy())),
            // Rotated (past the disk's size), so captured: a file never rotated the writer
            // writes itself, and would hear of the full disk itself.
            "stdout_maxbytes: 100MB",
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm
        .wait_for_state("w", "RUNNING", TIMEOUT)
        .pid()
        .expect("w's pid");
    sandbox.wait_for_contents("logs/w.out", |text| text == "ready\n", TIMEOUT);

    // 3 MiB into a 1 MiB disk: the file fills it, and the writer waits on its full pipe.
    std::fs::write(&go, "").expect("create go");
    let line = tm.wait_for_log("cannot write output to", TIMEOUT);
    assert!(
        line.contains(&format!(
            "w: cannot write output to {}: No space left on device; the writer waits",
            out.display()
        )),
        "{line}"
    );
    let sleeps = capture_thread_sleeps(tm.daemon_pid());
    wait_until("the capture to retry twice", TIMEOUT, || {
        (capture_thread_sleeps(tm.daemon_pid()) >= sleeps + 2).then_some(())
    });
    assert_eq!(
        tm.log().matches("cannot write output to").count(),
        1,
        "said once"
    );
    let status = tm.status("w");
    assert_eq!(
        (status.state.as_str(), status.pid()),
        ("RUNNING", Some(pid))
    );
    assert!(crate::support::is_alive(pid), "the writer waits, alive");

    // Room again: the next retry goes on where the capture stopped.
    disk.resize("8m");
    let total = 6 + 3 * MIB;
    wait_until("every byte in w.out", TIMEOUT, || {
        let size = std::fs::metadata(&out).map_or(0, |meta| meta.len());
        (size >= total).then_some(())
    });
    assert_log_files_hold(
        &logs,
        "w.out",
        b"ready\n".chain(PatternReader::new(Kind::Binary, 3 * MIB)),
    );
    tm.wait_for_log("w: output goes to", TIMEOUT);
    // The daemon and its child end (by pid) before the disk is unmounted.
    drop(tm);
    drop(disk);
}
