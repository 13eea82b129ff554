//! taskmaster as a container's main process: a `critical` program's end ends the run with its
//! status, and `exit_when_done` ends it once every program has ended for good.

use crate::support::unix_http::Api;
use crate::support::{config, fixture_cmd, is_alive, program, Sandbox, Taskmaster, TIMEOUT};

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
