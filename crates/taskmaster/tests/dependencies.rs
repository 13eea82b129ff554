//! `depends_on` on real processes: a program starts once every process of what it depends on
//! is where its condition says (`running`, `healthy`, `exited`, `ready`), and waits STOPPED,
//! saying for what, until then; dependents stop before what they depend on; `restart: true`
//! takes a dependent down and up with its dependency; a FATAL dependency holds its dependents
//! with the reason; `check` refuses cycles, unknown names and impossible conditions; and
//! supervisord-dependent-startup's INI keys do the same in a supervisord.conf.
//!
//! The test decides when each dependency is there: programs that must be seen waiting wait
//! for a file the test creates (a `ready: notify` script says READY=1 once it exists, a health
//! check passes once it exists), so no result depends on how long anything takes.

use std::fs;
use std::path::Path;
use std::process::Command;

use rustix::process::Signal;
use serde_json::Value;

use crate::support::unix_http::Api;
use crate::support::{
    config, fixture_bin, fixture_cmd, is_alive, program, run_to_completion, send_signal,
    shell_quote, taskmaster_bin, wait_until, yaml_quote, Ran, Sandbox, StatusLine, Taskmaster,
    TIMEOUT,
};

/// The real `systemd-notify`, as the `ready: notify` programs of notify.rs use it.
const SYSTEMD_NOTIFY: &str = "/usr/bin/systemd-notify";

// ---------------------------------------------------------------------------------------------
// Programs, the daemon, and what it says
// ---------------------------------------------------------------------------------------------

/// A fixture that sleeps until stopped.
fn sleeper() -> String {
    fixture_cmd(&["sleep", "forever"])
}

/// A `ready: notify` program `name`: a script that stamps its start (CLOCK_MONOTONIC, in
/// `NAME.stamp`), waits for the file `NAME.go`, says READY=1 with the real systemd-notify, and
/// becomes a sleeping fixture. It stays STARTING until the test creates `NAME.go`.
fn notify_program(sandbox: &Sandbox, name: &str, keys: &[&str]) -> String {
    assert!(
        Path::new(SYSTEMD_NOTIFY).exists(),
        "{SYSTEMD_NOTIFY} is missing: install Debian's `systemd` package (CI installs it)"
    );
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    let stamp = shell_quote(&sandbox.file_str(&format!("{name}.stamp")));
    let go = shell_quote(&sandbox.file_str(&format!("{name}.go")));
    // At most 2400 rounds of 50 ms (120 s): beyond any test's deadline.
    let script = format!(
        "{fixture} stamp {stamp}\n\
         i=0; while [ ! -e {go} ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\n\
         {SYSTEMD_NOTIFY} --ready\n\
         exec {fixture} sleep forever\n"
    );
    let path = sandbox.file(&format!("{name}.sh"));
    fs::write(&path, script).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let cmd = format!(
        "/bin/sh {}",
        shell_quote(&sandbox.file_str(&format!("{name}.sh")))
    );
    let mut all = vec!["ready: notify", "readytime: 120s", "stoptime: 1"];
    all.extend_from_slice(keys);
    program(name, &yaml_quote(&cmd), &all)
}

/// Writes a configuration of `programs`, starts `taskmaster run --no-shell` on it, and
/// connects to its API.
fn start(sandbox: &Sandbox, programs: &[String]) -> (Taskmaster, Api) {
    sandbox.write_config(&config(programs));
    let tm = Taskmaster::start(sandbox, &["--no-shell"]);
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    (tm, api)
}

/// Creates the file `name` in the sandbox.
fn touch(sandbox: &Sandbox, name: &str) {
    let path = sandbox.file(name);
    fs::write(&path, "").unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of the fixture's `stamp`.
fn monotonic_now() -> u128 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::try_from(ts.tv_sec).expect("a monotonic clock is not negative") * 1_000_000_000
        + u128::try_from(ts.tv_nsec).expect("nanoseconds are not negative")
}

/// Waits for the stamp file `name` and returns its time (CLOCK_MONOTONIC, ns).
fn wait_for_stamp(sandbox: &Sandbox, name: &str) -> u128 {
    let text = sandbox.wait_for_contents(name, |text| text.ends_with('\n'), TIMEOUT);
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("stamp {name} holds {text:?}: {e}"))
}

/// The pid of `name` once it is RUNNING.
fn running_pid(api: &Api, name: &str) -> u32 {
    pid_of(&api.wait_for_process(name, "RUNNING", |p| p["state"] == "RUNNING"))
}

fn pid_of(process: &Value) -> u32 {
    process["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|&pid| pid != 0)
        .unwrap_or_else(|| panic!("no pid: {process}"))
}

/// Waits until `name` is RUNNING with a pid other than `old`, and returns it.
fn new_running_pid(api: &Api, name: &str, old: u32) -> u32 {
    pid_of(&api.wait_for_process(name, "a new RUNNING pid", |p| {
        p["state"] == "RUNNING" && p["pid"].as_u64() != Some(u64::from(old))
    }))
}

/// The API's `waiting_for` of a process.
fn waiting_for(process: &Value) -> Vec<String> {
    process["waiting_for"]
        .as_array()
        .unwrap_or_else(|| panic!("no waiting_for list: {process}"))
        .iter()
        .map(|item| item.as_str().expect("a text").to_owned())
        .collect()
}

/// Waits until `name` is STOPPED and waits for exactly `expected`, and returns the process.
fn wait_waiting_for(api: &Api, name: &str, expected: &[&str]) -> Value {
    api.wait_for_process(name, &format!("STOPPED, waiting for {expected:?}"), |p| {
        p["state"] == "STOPPED" && waiting_for(p) == expected
    })
}

/// `ctl status NAME`, parsed.
fn ctl_status(sandbox: &Sandbox, name: &str) -> StatusLine {
    let ran = sandbox.ctl(&["status", name]);
    ran.lines()
        .iter()
        .find_map(|line| StatusLine::parse_named(name, line))
        .unwrap_or_else(|| panic!("`ctl status {name}` showed no status of it: {ran:?}"))
}

/// The index of the first line of `log` containing `needle`; fails with the log if none does.
fn line_of(log: &str, needle: &str) -> usize {
    nth_line_of(log, needle, 1)
}

/// The index of the `n`-th line (from 1) of `log` containing `needle`.
fn nth_line_of(log: &str, needle: &str, n: usize) -> usize {
    log.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle))
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no line #{n} containing {needle:?} in the event log:\n{log}"))
}

/// Asserts that the first line containing `first` comes before the first containing `then`.
fn assert_before(log: &str, first: &str, then: &str) {
    assert!(
        line_of(log, first) < line_of(log, then),
        "{first:?} does not come before {then:?} in the event log:\n{log}"
    );
}

/// Ends the daemon with SIGTERM (a graceful shutdown) and waits for its exit.
fn terminate(tm: &mut Taskmaster) {
    tm.signal(Signal::TERM);
    let status = tm.wait_exit(TIMEOUT);
    assert!(
        status.success(),
        "taskmaster exited with {status}\n{}",
        tm.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Order: a three-level graph
// ---------------------------------------------------------------------------------------------

#[test]
fn a_three_level_graph_starts_in_order_with_its_branches_in_parallel_and_stops_in_reverse() {
    let sandbox = Sandbox::new();
    // base <- mid_a, mid_b <- top. Each of base, mid_a and mid_b stays STARTING until the test
    // creates its `.go` file; top is RUNNING as soon as it is spawned.
    let (mut tm, api) = start(
        &sandbox,
        &[
            notify_program(&sandbox, "base", &[]),
            notify_program(&sandbox, "mid_a", &["depends_on: [base]"]),
            notify_program(&sandbox, "mid_b", &["depends_on: [base]"]),
            program(
                "top",
                &fixture_cmd(&["stamp", &sandbox.file_str("top.stamp"), "sleep", "forever"]),
                &["starttime: 0", "stoptime: 1", "depends_on: [mid_a, mid_b]"],
            ),
        ],
    );

    // Level 0 starts; levels 1 and 2 wait, STOPPED, saying for what.
    let base_spawned = wait_for_stamp(&sandbox, "base.stamp");
    wait_waiting_for(&api, "mid_a", &["base (STARTING)"]);
    wait_waiting_for(&api, "mid_b", &["base (STARTING)"]);
    wait_waiting_for(
        &api,
        "top",
        &["mid_a (STOPPED, waiting)", "mid_b (STOPPED, waiting)"],
    );
    assert_eq!(
        ctl_status(&sandbox, "top").description,
        "waiting for mid_a (STOPPED, waiting), mid_b (STOPPED, waiting)"
    );

    // base RUNNING: both mids are spawned, and both are STARTING at once: neither waited for
    // the other to be RUNNING.
    let base_released = monotonic_now();
    touch(&sandbox, "base.go");
    running_pid(&api, "base");
    let mid_a_spawned = wait_for_stamp(&sandbox, "mid_a.stamp");
    let mid_b_spawned = wait_for_stamp(&sandbox, "mid_b.stamp");
    for mid in ["mid_a", "mid_b"] {
        let p = api.process(mid);
        assert_eq!(
            p["state"], "STARTING",
            "{mid} while neither mid is ready: {p}"
        );
    }
    assert!(mid_a_spawned > base_released && mid_b_spawned > base_released);
    wait_waiting_for(&api, "top", &["mid_a (STARTING)", "mid_b (STARTING)"]);

    // One branch RUNNING is not enough for top.
    touch(&sandbox, "mid_b.go");
    running_pid(&api, "mid_b");
    wait_waiting_for(&api, "top", &["mid_a (STARTING)"]);
    assert_eq!(api.process("mid_a")["state"], "STARTING");

    // Both RUNNING: top starts.
    let mid_a_released = monotonic_now();
    touch(&sandbox, "mid_a.go");
    running_pid(&api, "top");
    let top_spawned = wait_for_stamp(&sandbox, "top.stamp");
    assert!(top_spawned > mid_a_released);

    let ms = |t: u128| (t - base_spawned) as f64 / 1e6;
    eprintln!(
        "spawn times after base's: mid_a {:.1} ms, mid_b {:.1} ms (base released at {:.1} ms), \
         top {:.1} ms (mid_a released at {:.1} ms)",
        ms(mid_a_spawned),
        ms(mid_b_spawned),
        ms(base_released),
        ms(top_spawned),
        ms(mid_a_released)
    );
    let log = tm.log();
    assert!(log.contains("mid_a: waiting for base (STARTING)"), "{log}");
    for mid in ["mid_a", "mid_b"] {
        assert_before(
            &log,
            "base: RUNNING",
            &format!("{mid}: what it waits for is there"),
        );
        assert_before(&log, "base: RUNNING", &format!("{mid}: spawned"));
        assert_before(&log, &format!("{mid}: RUNNING"), "top: spawned");
    }
    // Both mids spawned before either was RUNNING.
    for (spawned, running) in [("mid_a", "mid_b"), ("mid_b", "mid_a")] {
        assert_before(
            &log,
            &format!("{spawned}: spawned"),
            &format!("{running}: RUNNING"),
        );
    }

    // Shutdown: dependents first, each level once the one above it is down.
    terminate(&mut tm);
    let log = tm.log();
    for mid in ["mid_a", "mid_b"] {
        assert_before(&log, "top: stopped", &format!("{mid}: stop requested"));
        assert_before(&log, &format!("{mid}: stopped"), "base: stop requested");
    }
}

// ---------------------------------------------------------------------------------------------
// Each condition
// ---------------------------------------------------------------------------------------------

#[test]
fn running_waits_through_a_dependencys_failed_starts_and_says_so() {
    let sandbox = Sandbox::new();
    // db fails its starts (BACKOFF) until db.ok exists, then stays up for its starttime.
    let ok = sandbox.file_str("db.ok");
    let script = format!(
        "test -e {} || exit 1; exec {} sleep forever",
        shell_quote(&ok),
        shell_quote(fixture_bin().to_str().expect("UTF-8 path"))
    );
    let db = yaml_quote(&format!("sh -c {}", shell_quote(&script)));
    let (mut tm, api) = start(
        &sandbox,
        &[
            program(
                "db",
                &db,
                &["starttime: 1", "startretries: 100", "stoptime: 1"],
            ),
            program(
                "web",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [db]"],
            ),
        ],
    );
    wait_waiting_for(&api, "web", &["db (BACKOFF)"]);
    wait_until(
        "`status web` to show it waiting for db in BACKOFF",
        TIMEOUT,
        || {
            let status = ctl_status(&sandbox, "web");
            (status.state == "STOPPED" && status.description == "waiting for db (BACKOFF)")
                .then_some(())
        },
    );

    touch(&sandbox, "db.ok");
    running_pid(&api, "web");
    let log = tm.log();
    assert!(log.contains("web: waiting for db (STARTING)"), "{log}");
    assert_before(
        &log,
        "db: RUNNING",
        "web: what it waits for is there: starting",
    );
    assert_before(
        &log,
        "web: what it waits for is there: starting",
        "web: spawned",
    );
    terminate(&mut tm);
}

#[test]
fn healthy_waits_for_the_dependencys_health_check_to_pass() {
    let sandbox = Sandbox::new();
    let file = sandbox.file_str("db.healthy");
    let check = format!(
        "healthcheck: {{cmd: {}, interval: 500ms, timeout: 1s, retries: 3}}",
        yaml_quote(&format!("test -e {file}"))
    );
    let (mut tm, api) = start(
        &sandbox,
        &[
            program("db", &sleeper(), &["starttime: 0", "stoptime: 1", &check]),
            program(
                "web",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "depends_on: {db: {condition: healthy}}",
                ],
            ),
        ],
    );
    running_pid(&api, "db");
    wait_waiting_for(&api, "web", &["db (RUNNING, not yet healthy)"]);
    assert_eq!(
        ctl_status(&sandbox, "web").description,
        "waiting for db (RUNNING, not yet healthy)"
    );

    touch(&sandbox, "db.healthy");
    running_pid(&api, "web");
    let log = tm.log();
    assert_before(
        &log,
        "db: healthy",
        "web: what it waits for is there: starting",
    );
    assert_before(
        &log,
        "web: what it waits for is there: starting",
        "web: spawned",
    );
    terminate(&mut tm);
}

#[test]
fn exited_waits_for_a_one_shot_to_end_with_an_expected_code() {
    let sandbox = Sandbox::new();
    let go = sandbox.file_str("migrate.go");
    let (mut tm, api) = start(
        &sandbox,
        &[
            // A migration that ends well once the test says so.
            program(
                "migrate",
                &fixture_cmd(&["wait-for", &go, "exit", "0"]),
                &["starttime: 0", "autorestart: never"],
            ),
            program(
                "app",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "depends_on: {migrate: {condition: exited}}",
                ],
            ),
            // One that ends with 3, which its exitcodes (0) do not expect.
            program(
                "broken",
                &fixture_cmd(&["exit", "3"]),
                &["starttime: 0", "autorestart: never"],
            ),
            program(
                "held",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "depends_on: {broken: {condition: exited}}",
                ],
            ),
        ],
    );
    // RUNNING is not enough for `exited`.
    running_pid(&api, "migrate");
    wait_waiting_for(&api, "app", &["migrate (RUNNING)"]);
    api.wait_for_process("broken", "EXITED", |p| p["state"] == "EXITED");
    wait_waiting_for(&api, "held", &["broken (EXITED with an unexpected code)"]);
    assert_eq!(
        ctl_status(&sandbox, "held").description,
        "waiting for broken (EXITED with an unexpected code)"
    );

    touch(&sandbox, "migrate.go");
    running_pid(&api, "app");
    assert_eq!(api.process("migrate")["state"], "EXITED");
    let log = tm.log();
    assert_before(
        &log,
        "migrate: exited",
        "app: what it waits for is there: starting",
    );
    // broken's end held its dependent, and still does.
    wait_waiting_for(&api, "held", &["broken (EXITED with an unexpected code)"]);
    assert!(!log.contains("held: spawned"), "{log}");
    terminate(&mut tm);
}

#[test]
fn ready_waits_for_the_dependencys_ready_1() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &[
            notify_program(&sandbox, "svc", &[]),
            program(
                "client",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "depends_on: {svc: {condition: ready}}",
                ],
            ),
        ],
    );
    wait_for_stamp(&sandbox, "svc.stamp");
    wait_waiting_for(&api, "client", &["svc (STARTING)"]);

    touch(&sandbox, "svc.go");
    running_pid(&api, "client");
    let log = tm.log();
    assert_before(&log, "svc: RUNNING: ready (READY=1", "client: spawned");
    terminate(&mut tm);
}

// ---------------------------------------------------------------------------------------------
// restart: true
// ---------------------------------------------------------------------------------------------

#[test]
fn restart_true_takes_a_dependent_down_and_up_with_its_dependency_and_others_stay() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &[
            program(
                "cache",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "autorestart: always"],
            ),
            program(
                "worker",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "depends_on: {cache: {condition: running, restart: true}}",
                ],
            ),
            program(
                "bystander",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [cache]"],
            ),
        ],
    );
    let cache = running_pid(&api, "cache");
    let worker = running_pid(&api, "worker");
    let bystander = running_pid(&api, "bystander");
    for pid in [cache, worker, bystander] {
        tm.track(pid);
    }

    // cache dies and comes back: worker restarts with it, bystander is not touched.
    send_signal(cache, Signal::KILL).expect("SIGKILL cache");
    let cache = new_running_pid(&api, "cache", cache);
    let worker_again = new_running_pid(&api, "worker", worker);
    tm.track(cache);
    tm.track(worker_again);
    assert!(!is_alive(worker), "the old worker still runs");
    assert_eq!(pid_of(&api.process("bystander")), bystander);
    assert!(is_alive(bystander));
    let log = tm.log();
    assert!(
        log.contains("worker: cache stopped running: stopping, to start again once it is back"),
        "{log}"
    );
    // Started again only once cache was RUNNING again.
    assert!(
        nth_line_of(&log, "cache: RUNNING", 2) < nth_line_of(&log, "worker: spawned", 2),
        "{log}"
    );
    assert!(!log.contains("bystander: stop"), "{log}");

    // A user stops cache: worker stops and waits; it does not start cache itself.
    sandbox.ctl(&["stop", "cache"]).expect_code(0);
    wait_waiting_for(&api, "worker", &["cache (STOPPED)"]);
    assert!(!is_alive(worker_again), "worker still runs without cache");
    assert_eq!(api.process("cache")["state"], "STOPPED");
    let log = tm.log();
    let since_stop = &log[log
        .find("command: stop cache")
        .expect("the stop in the log")..];
    assert!(
        !since_stop.contains("cache: starting it first") && !since_stop.contains("cache: spawned"),
        "{log}"
    );
    assert_eq!(pid_of(&api.process("bystander")), bystander);

    // Someone starts cache: worker comes back by itself.
    let started = sandbox.ctl(&["start", "cache"]);
    started.expect_code(0);
    new_running_pid(&api, "worker", worker_again);
    assert_eq!(pid_of(&api.process("bystander")), bystander);
    terminate(&mut tm);
}

// ---------------------------------------------------------------------------------------------
// A FATAL dependency
// ---------------------------------------------------------------------------------------------

#[test]
fn a_fatal_dependency_holds_its_dependents_with_the_reason_and_start_is_refused() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &[
            program(
                "bad",
                &fixture_cmd(&["exit", "1"]),
                &["starttime: 1", "startretries: 1"],
            ),
            program(
                "app",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [bad]"],
            ),
        ],
    );
    api.wait_for_process("bad", "FATAL", |p| p["state"] == "FATAL");
    wait_waiting_for(&api, "app", &["bad (FATAL)"]);
    let status = ctl_status(&sandbox, "app");
    assert_eq!(
        (status.state.as_str(), status.description.as_str()),
        ("STOPPED", "waiting for bad (FATAL)")
    );

    // `start app` tries bad once more, and answers with the reason once bad is FATAL again.
    let ran = sandbox.ctl(&["start", "app"]);
    ran.expect_code(3);
    assert_eq!(
        ran.lines(),
        ["app: ERROR (waiting for bad (FATAL))"],
        "{ran:?}"
    );
    let log = tm.log();
    assert!(
        log.contains("bad: starting it first: app depends on it"),
        "{log}"
    );
    assert!(!log.contains("app: spawned"), "{log}");
    wait_waiting_for(&api, "app", &["bad (FATAL)"]);
    terminate(&mut tm);
}

// ---------------------------------------------------------------------------------------------
// Starts that pull in their dependencies
// ---------------------------------------------------------------------------------------------

#[test]
fn start_of_a_dependent_starts_its_stopped_dependency_first() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &[
            program(
                "db",
                &sleeper(),
                &["starttime: 1", "stoptime: 1", "autostart: false"],
            ),
            program(
                "web",
                &sleeper(),
                &[
                    "starttime: 0",
                    "stoptime: 1",
                    "autostart: false",
                    "depends_on: [db]",
                ],
            ),
        ],
    );
    let web = api.process("web");
    assert_eq!(
        (web["state"].as_str(), waiting_for(&web).len()),
        (Some("STOPPED"), 0)
    );

    let ran = sandbox.ctl(&["start", "web"]);
    ran.expect_code(0);
    assert_eq!(ran.lines(), ["web: started"], "{ran:?}");
    assert_eq!(api.process("db")["state"], "RUNNING");
    assert_eq!(api.process("web")["state"], "RUNNING");
    let log = tm.log();
    assert_before(
        &log,
        "db: starting it first: web depends on it",
        "db: spawned",
    );
    assert!(log.contains("web: waiting for db (STARTING)"), "{log}");
    assert_before(&log, "db: RUNNING", "web: spawned");
    terminate(&mut tm);
}

#[test]
fn at_boot_a_dependency_that_does_not_autostart_is_started_first() {
    let sandbox = Sandbox::new();
    let (mut tm, api) = start(
        &sandbox,
        &[
            program(
                "web",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [db]"],
            ),
            program(
                "db",
                &sleeper(),
                &["starttime: 1", "stoptime: 1", "autostart: false"],
            ),
        ],
    );
    running_pid(&api, "web");
    let log = tm.log();
    assert!(
        log.contains("db: starting it first: web depends on it"),
        "{log}"
    );
    assert_before(&log, "db: RUNNING", "web: spawned");
    terminate(&mut tm);
}

// ---------------------------------------------------------------------------------------------
// Stops
// ---------------------------------------------------------------------------------------------

#[test]
fn stop_all_stops_dependents_before_what_they_depend_on() {
    let sandbox = Sandbox::new();
    // Names in alphabetical order are the reverse of the stop order.
    let (mut tm, api) = start(
        &sandbox,
        &[
            program("base", &sleeper(), &["starttime: 0", "stoptime: 1"]),
            program(
                "mid",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [base]"],
            ),
            program(
                "top",
                &sleeper(),
                &["starttime: 0", "stoptime: 1", "depends_on: [mid]"],
            ),
        ],
    );
    let pids: Vec<u32> = ["base", "mid", "top"]
        .iter()
        .map(|name| running_pid(&api, name))
        .collect();
    for &pid in &pids {
        tm.track(pid);
    }

    sandbox.ctl(&["stop", "all"]).expect_code(0);
    for name in ["base", "mid", "top"] {
        assert_eq!(api.process(name)["state"], "STOPPED", "{name}");
    }
    for pid in pids {
        assert!(!is_alive(pid), "pid {pid} still runs after stop all");
    }
    let log = tm.log();
    assert!(
        log.contains("mid: stop waits for the processes that depend on it"),
        "{log}"
    );
    assert!(
        log.contains("base: stop waits for the processes that depend on it"),
        "{log}"
    );
    assert_before(&log, "top: stopped", "mid: stop requested");
    assert_before(&log, "mid: stopped", "base: stop requested");
    terminate(&mut tm);
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

/// The line (from 1) of the written configuration that holds `needle`, and the column (from
/// 1) where `needle` starts.
fn place_of(sandbox: &Sandbox, needle: &str) -> (usize, usize) {
    let text = fs::read_to_string(sandbox.config_path()).expect("read the configuration");
    text.lines()
        .enumerate()
        .find_map(|(i, line)| line.find(needle).map(|col| (i + 1, col + 1)))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
}

#[test]
fn check_refuses_a_cycle_an_unknown_name_and_a_condition_that_can_never_hold() {
    let sandbox = Sandbox::new();
    let cmd = yaml_quote("sleep 1");
    sandbox.write_config(&config(&[
        program("a", &cmd, &["depends_on: [b]"]),
        program("b", &cmd, &["depends_on: [c]"]),
        program("c", &cmd, &["depends_on: [a]"]),
        program("web", &cmd, &["depends_on: [nosuch]"]),
        program("worker", &cmd, &["depends_on: {web: {condition: healthy}}"]),
        program("client", &cmd, &["depends_on: {web: {condition: ready}}"]),
    ]));
    let ran = Ran::from(sandbox.check_config());
    ran.expect_code(2);
    let config = sandbox.config_path();
    let config = config.to_str().expect("UTF-8 path");
    let at = |needle: &str| {
        let (line, column) = place_of(&sandbox, needle);
        format!("{config}:{line}:{column}")
    };
    let expected = [
        format!(
            "{}: programs.a.depends_on: a cycle of dependencies: a -> b -> c -> a",
            at("[b]")
        ),
        format!(
            "{}: programs.web.depends_on: depends on \"nosuch\", which is no program",
            at("[nosuch]")
        ),
        format!(
            "{}: programs.worker.depends_on: waits for web to be healthy, but it has no \
             healthcheck: it never will be",
            at("{web: {condition: healthy}}")
        ),
        format!(
            "{}: programs.client.depends_on: waits for web to be ready, but it has no \
             `ready: notify`: it never will be",
            at("{web: {condition: ready}}")
        ),
    ];
    for line in &expected {
        assert!(
            ran.stderr.lines().any(|l| l == line),
            "expected the line\n{line}\nin:\n{}",
            ran.output()
        );
    }
    assert_eq!(
        ran.stderr.lines().count(),
        expected.len(),
        "{}",
        ran.output()
    );
}

// ---------------------------------------------------------------------------------------------
// supervisord-dependent-startup's keys in a supervisord.conf
// ---------------------------------------------------------------------------------------------

#[test]
fn supervisord_dependent_startup_keys_start_a_supervisord_conf_in_order() {
    let sandbox = Sandbox::new();
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    // web's priority would start it first; its dependency on db decides. Both have autostart
    // false, as the plugin asks: the plugin (here taskmaster) starts them.
    let text = format!(
        "[unix_http_server]
file=%(here)s/taskmaster.sock

[supervisord]
logfile=%(here)s/taskmaster.log

[program:db]
command={fixture} sleep forever
autostart=false
startsecs=1
stopwaitsecs=1
priority=999
dependent_startup=true

[program:web]
command={fixture} sleep forever
autostart=false
startsecs=0
stopwaitsecs=1
priority=1
dependent_startup=true
dependent_startup_wait_for=db:running

[eventlistener:dependentstartup]
command=python -m supervisord_dependent_startup -c %(here)s/supervisord.conf
autostart=true
events=PROCESS_STATE
"
    );
    let conf = sandbox.file("supervisord.conf");
    fs::write(&conf, &text).expect("write supervisord.conf");
    let listener_line = text
        .lines()
        .position(|line| line == "[eventlistener:dependentstartup]")
        .expect("the listener's section")
        + 1;

    let mut check = Command::new(taskmaster_bin());
    check
        .args(["check", "-c"])
        .arg(&conf)
        .current_dir(sandbox.path());
    let ran = Ran::from(run_to_completion(check, TIMEOUT));
    ran.expect_code(0);
    let warning = format!(
        "warning: {}:{listener_line}:1: eventlistener:dependentstartup: taskmaster starts \
         programs in dependency order itself",
        conf.display()
    );
    assert!(ran.stderr.contains(&warning), "{}", ran.output());
    assert!(
        ran.stdout.contains("valid (2 program(s), 1 warning(s))"),
        "{ran:?}"
    );

    let mut tm = Taskmaster::spawn(
        &sandbox,
        sandbox.taskmaster_command_on(&conf, &["--no-shell"]),
    );
    let api = Api::connect(sandbox.file("taskmaster.sock"));
    running_pid(&api, "web");
    assert_eq!(api.process("db")["state"], "RUNNING");
    let listener = api.get("/v1/processes/dependentstartup");
    assert_eq!(
        listener.status, 404,
        "the plugin's listener was run: {listener:?}"
    );
    let log = tm.log();
    assert!(log.contains("web: waiting for db (STARTING)"), "{log}");
    assert_before(&log, "db: spawned", "web: spawned");
    assert_before(&log, "db: RUNNING", "web: spawned");
    terminate(&mut tm);
    let log = tm.log();
    assert_before(&log, "web: stopped", "db: stop requested");
}
