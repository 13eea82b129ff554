//! Output capture: children write into pipes taskmaster holds, drained into the log files with
//! splice. Every byte arrives, in each writer's order, however many processes share a file, and
//! a process's last lines are in its file by the time its exit is known.

mod support;

use std::path::PathBuf;

use support::{config, fixture_cmd, program, wait_until, yaml_quote, Sandbox, Taskmaster, TIMEOUT};

fn fd_target(pid: u32, fd: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default()
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
    let out = sandbox.file_str("burst.out");
    sandbox.write_config(&config(&[program(
        "burst",
        &fixture_cmd(&["lines", "20000", "exit", "0"]),
        &[
            "starttime: 0",
            "autorestart: never",
            &format!("stdout: {}", yaml_quote(&out)),
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("burst", "EXITED", TIMEOUT);
    // No waiting here: the runtime moves what is left in a child's pipes into the file before
    // it reports the exit, so this holds whatever the capture thread's timing.
    let text = std::fs::read_to_string(&out).expect("read burst.out");
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
    let out = sandbox.file_str("job.out");
    sandbox.write_config(&config(&[program(
        "job",
        &fixture_cmd(&["lines", "1000", "exit", "0"]),
        &[
            "starttime: 0",
            "autorestart: never",
            "on_exit: \"echo hook ran\"",
            &format!("stdout: {}", yaml_quote(&out)),
        ],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("job", "EXITED", TIMEOUT);
    let text = sandbox.wait_for_contents("job.out", |t| t.ends_with("hook ran\n"), TIMEOUT);
    assert_eq!(text.lines().count(), 1001, "{text}");
    assert!(text.starts_with("line 1\n"));
}
