//! The sd_notify protocol on real processes (issue 4: items 1, 2 and 3, and the watchdog part
//! of item 5): programs written for systemd tell taskmaster, with the real
//! `/usr/bin/systemd-notify`, that they are ready, what their status is and that they are
//! alive, and taskmaster acts on what they say and on their silence.
//!
//! Sections, in order:
//! 1. readiness: `ready: notify` stays STARTING until `READY=1`; `STATUS=` is shown; `readytime`
//!    expiry is a failed start;
//! 2. the watchdog: `WATCHDOG=1` keeps a program RUNNING, silence is `hung` and restarted,
//!    `WATCHDOG=trigger` is `hung` at once, `WATCHDOG_USEC` and `WATCHDOG_PID` are handed down;
//! 3. paused is not hung: a SIGSTOPped program with a watchdog, and `watchdog_paused: restart`;
//! 4. who may speak: a stranger's datagram, a malformed one, one from a grandchild.
//!
//! The supervised programs are small `/bin/sh` scripts written into the sandbox (a file spares
//! one layer of quoting), calling `systemd-notify` as a systemd service's scripts do. A script
//! moves on when a file the test creates appears, so the test decides when things happen, and
//! every loop in a script is bounded ([`SCRIPT_PRELUDE`]).
//!
//! `systemd-notify` sends `BARRIER=1` with a descriptor after its message and waits until that
//! descriptor is closed: it fails after 5 s without an answer. The scripts record its exit
//! status, so a 0 proves that taskmaster answered the barrier. As root it sends with its parent's
//! pid (the script), as another user with its own: either way the sender is the supervised
//! child or one of its descendants.
//!
//! Two observations need time to pass rather than a condition to become true: that heartbeats
//! keep a program alive across several watchdog periods (the test waits for a number of beats
//! the script counts) and that a paused program is not restarted ([`PAUSED_WINDOW`]).

use std::fs;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    config, fixture_cmd, program, read_report, send_signal, shell_quote, wait_until,
    wait_until_or_none, yaml_quote, Sandbox, StatusLine, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::Value;

/// The real `systemd-notify`, from Debian's `systemd` package.
const SYSTEMD_NOTIFY: &str = "/usr/bin/systemd-notify";

/// The watchdog period of the watchdog tests: `watchdog: 1s`.
const WATCHDOG: Duration = Duration::from_secs(1);

/// The stoptime of the hung program, which ignores its stop signal, so the stop needs SIGKILL.
const STOPTIME: Duration = Duration::from_secs(1);

/// Slack on top of watchdog + stoptime for a hung program to be seen, killed and replaced:
/// generous, since this is a liveness bound (it happens, in bounded time), not a measure of
/// timing precision.
const HUNG_MARGIN: Duration = Duration::from_secs(5);

/// How long a SIGSTOPped program with `watchdog: 1s` is watched to see that it is NOT
/// restarted. Nothing becomes true to end this wait early: "not restarted" can only be seen
/// over a span of time, so it is a bounded observation window of three watchdog periods, in
/// which a watchdog that counted paused time would have fired (it fires after one).
const PAUSED_WINDOW: Duration = Duration::from_secs(3);

/// How many beats a beating script must have sent, at one every 0.2 s, for several watchdog
/// periods to have passed: 15 beats take at least 3 s, three periods of [`WATCHDOG`].
const BEATS_OVER_SEVERAL_PERIODS: u32 = 15;

/// Shell functions every script starts with. `wait_for FILE` waits at most 20 s (400 rounds of
/// 50 ms) for FILE to exist; `put FILE TEXT` writes TEXT to FILE atomically, so a test that
/// sees the file sees all of it. Scripts run in the sandbox, so file names are relative to it.
const SCRIPT_PRELUDE: &str = r#"
SYSTEMD_NOTIFY=/usr/bin/systemd-notify
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; }
put() { printf '%s\n' "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }
"#;

/// The beating loop: `WATCHDOG=1` every 0.2 s (a fifth of [`WATCHDOG`]), the number of beats
/// sent so far in the file `beats`; at most 1000 beats (200 s, beyond any test).
const BEAT_LOOP: &str = r#"
n=0
while [ $n -lt 1000 ]; do
    $SYSTEMD_NOTIFY WATCHDOG=1
    n=$((n+1)); put beats $n
    sleep 0.2
done
"#;

// ---------------------------------------------------------------------------------------------
// Programs, the daemon, and what it says
// ---------------------------------------------------------------------------------------------

/// Fails the test, saying what to install, when the real `systemd-notify` is missing.
fn require_systemd_notify() {
    assert!(
        Path::new(SYSTEMD_NOTIFY).exists(),
        "{SYSTEMD_NOTIFY} is missing: these tests run the real systemd-notify; install Debian's \
         `systemd` package (`apt-get install systemd`; CI installs it)"
    );
}

/// A program `name` running `/bin/sh NAME.sh`, a script of [`SCRIPT_PRELUDE`] and `body`
/// written into the sandbox, with more `key: value` lines.
fn script_program(sandbox: &Sandbox, name: &str, body: &str, keys: &[&str]) -> String {
    let path = sandbox.file(&format!("{name}.sh"));
    let cd = format!("cd {}\n", shell_quote(&sandbox.file_str("")));
    let script = format!("{SCRIPT_PRELUDE}{cd}{body}");
    fs::write(&path, script).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let cmd = format!(
        "/bin/sh {}",
        shell_quote(path.to_str().expect("UTF-8 path"))
    );
    program(name, &yaml_quote(&cmd), keys)
}

/// Writes a configuration of `programs` and starts `taskmaster run` on it, once its control
/// socket takes connections (the API is asked through `ctl`).
fn start(sandbox: &Sandbox, programs: &[String]) -> Taskmaster {
    require_systemd_notify();
    sandbox.write_config(&config(programs));
    let tm = Taskmaster::start(sandbox, &[]);
    let socket = sandbox.file("taskmaster.sock");
    if wait_until_or_none(TIMEOUT, || UnixStream::connect(&socket).ok()).is_none() {
        panic!(
            "{} never took a connection\n{}",
            socket.display(),
            tm.diagnostics()
        );
    }
    tm
}

/// The API's JSON for process `name` (`ctl --json status NAME`, which prints the API's answer).
fn api_process(sandbox: &Sandbox, name: &str) -> Value {
    let text = sandbox.ctl(&["--json", "status", name]).stdout;
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("`ctl --json status {name}` printed no JSON ({e}): {text}"));
    answer["processes"][0].clone()
}

/// Waits until `status NAME` shows RUNNING with a pid other than `old`, and returns the line.
fn wait_for_new_pid(tm: &mut Taskmaster, name: &str, old: u32) -> StatusLine {
    wait_until(
        &format!("{name} RUNNING with a pid other than {old}"),
        TIMEOUT,
        || {
            let status = tm.status(name);
            (status.state == "RUNNING" && status.pid().is_some_and(|pid| pid != old))
                .then_some(status)
        },
    )
}

/// The number of beats the script has sent so far (its file `beats`), if it has sent any.
fn beats_sent(sandbox: &Sandbox) -> Option<u32> {
    fs::read_to_string(sandbox.file("beats"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Waits until the script has sent `count` beats, and returns how many it has sent.
fn wait_for_beats(sandbox: &Sandbox, count: u32) -> u32 {
    wait_until(&format!("{count} heartbeats"), TIMEOUT, || {
        beats_sent(sandbox).filter(|&beats| beats >= count)
    })
}

/// Creates the file `name` in the sandbox: the signal a script waits for.
fn touch(sandbox: &Sandbox, name: &str) {
    let path = sandbox.file(name);
    fs::write(&path, "").unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// How many lines of the event log contain `needle`.
fn count_log_lines(tm: &Taskmaster, needle: &str) -> usize {
    tm.log()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

// ---------------------------------------------------------------------------------------------
// 1. Readiness and STATUS=
// ---------------------------------------------------------------------------------------------

#[test]
fn ready_notify_stays_starting_until_systemd_notify_ready_and_status_shows_its_text() {
    let sandbox = Sandbox::new();
    // Waits for `go`, then says it is ready, records systemd-notify's exit status once it has
    // returned (0 only if its barrier was answered), and goes on as the same process.
    let body = r#"
put waiting yes
wait_for go
$SYSTEMD_NOTIFY --ready --status='warming up done'
put notify_status $?
exec sleep 1000
"#;
    let web = script_program(
        &sandbox,
        "web",
        body,
        &["ready: notify", "readytime: 60s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[web]);

    sandbox.wait_for_file("waiting", TIMEOUT);
    let before = tm.status("web");
    assert_eq!(before.state, "STARTING", "not ready yet: {before:?}");
    assert!(
        !sandbox.file("notify_status").exists(),
        "systemd-notify has not run yet"
    );

    touch(&sandbox, "go");
    let running = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.wait_for_log("web: RUNNING: ready (READY=1 after ", TIMEOUT);
    assert!(
        running.description.ends_with(", status: warming up done"),
        "{running:?}"
    );
    assert_eq!(
        sandbox.wait_for_file("notify_status", TIMEOUT).trim(),
        "0",
        "systemd-notify failed: its BARRIER=1 was not answered"
    );

    let ctl_line = sandbox.ctl(&["status", "web"]).stdout;
    assert!(
        ctl_line.contains("RUNNING") && ctl_line.contains("status: warming up done"),
        "ctl status: {ctl_line:?}"
    );
    let api = api_process(&sandbox, "web");
    assert_eq!(api["status_text"], "warming up done", "{api}");
    assert_eq!(api["state"], "RUNNING", "{api}");
    // The script went on as the same process, which is the one RUNNING.
    assert_eq!(running.pid(), api["pid"].as_u64().map(|pid| pid as u32));
}

#[test]
fn a_program_that_never_says_ready_fails_its_start_after_readytime_and_ends_fatal() {
    let sandbox = Sandbox::new();
    let mute = program(
        "mute",
        &fixture_cmd(&["sleep", "forever"]),
        &[
            "ready: notify",
            "readytime: 1s",
            "startretries: 1",
            "stoptime: 1",
        ],
    );
    let mut tm = start(&sandbox, &[mute]);

    tm.wait_for_log("mute: not ready: no READY=1 within 1s (readytime)", TIMEOUT);
    tm.wait_for_state("mute", "BACKOFF", TIMEOUT);
    let fatal = tm.wait_for_state("mute", "FATAL", TIMEOUT);
    assert_eq!(tm.pid("mute"), None, "{fatal:?}");
    // The first start and its one retry, each given up after readytime.
    assert_eq!(
        count_log_lines(&tm, "mute: spawned with pid "),
        2,
        "{}",
        tm.log()
    );
    assert_eq!(
        count_log_lines(&tm, "mute: not ready: no READY=1 within 1s (readytime)"),
        2,
        "{}",
        tm.log()
    );
    let api = api_process(&sandbox, "mute");
    assert_eq!(api["state"], "FATAL", "{api}");
    assert_eq!(api["last_exit"]["cause"], "not_ready", "{api}");
}

// ---------------------------------------------------------------------------------------------
// 2. The watchdog
// ---------------------------------------------------------------------------------------------

#[test]
fn heartbeats_from_systemd_notify_keep_a_program_running_across_watchdog_periods() {
    let sandbox = Sandbox::new();
    let beat = script_program(
        &sandbox,
        "beat",
        BEAT_LOOP,
        &["starttime: 0", "watchdog: 1s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[beat]);
    let pid = tm.running_pid("beat");

    wait_for_beats(&sandbox, BEATS_OVER_SEVERAL_PERIODS);
    let status = tm.status("beat");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    assert_eq!(status.pid(), Some(pid), "the same process all along");
    let log = tm.log();
    assert!(!log.contains("hung"), "{log}");
    assert_eq!(count_log_lines(&tm, "beat: spawned with pid "), 1, "{log}");
}

#[test]
fn a_program_that_stops_beating_is_hung_and_restarted_within_watchdog_plus_stoptime() {
    let sandbox = Sandbox::new();
    // Beats until `stop` appears, takes it away (so that the next child beats on), then ignores
    // TERM and sleeps: the stop needs SIGKILL after stoptime.
    let body = r#"
n=0
while [ ! -e stop ] && [ $n -lt 1000 ]; do
    $SYSTEMD_NOTIFY WATCHDOG=1
    n=$((n+1)); put beats $n
    sleep 0.2
done
rm -f stop
trap '' TERM
exec sleep 1000
"#;
    let beat = script_program(
        &sandbox,
        "beat",
        body,
        &["starttime: 0", "watchdog: 1s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[beat]);
    let old = tm.running_pid("beat");
    wait_for_beats(&sandbox, 2);

    // The beats stop at most one beat interval after this, so the time from here is an upper
    // bound of the time from the last beat.
    let beats_stop = Instant::now();
    touch(&sandbox, "stop");
    let new = wait_for_new_pid(&mut tm, "beat", old);
    let elapsed = beats_stop.elapsed();

    tm.wait_for_log("beat: hung: no heartbeat for 1.0s", TIMEOUT);
    tm.wait_for_log(
        "beat: still running 1s after TERM: sending SIGKILL",
        TIMEOUT,
    );
    assert!(
        elapsed < WATCHDOG + STOPTIME + HUNG_MARGIN,
        "restarted {elapsed:?} after the beats stopped, beyond watchdog + stoptime + {HUNG_MARGIN:?}\n{}",
        tm.log()
    );
    let api = api_process(&sandbox, "beat");
    assert_eq!(api["last_exit"]["cause"], "hung", "{api}");
    assert_eq!(api["pid"].as_u64(), new.pid().map(u64::from), "{api}");
    assert!(
        !sandbox.file("stop").exists(),
        "the hung child took `stop` away, so that its successor beats"
    );
}

#[test]
fn watchdog_trigger_declares_the_program_hung_at_once() {
    let sandbox = Sandbox::new();
    // A watchdog far longer than the test: only WATCHDOG=trigger can make it hung. The trigger
    // file is taken away, so that the next child just sleeps.
    let body = r#"
put waiting yes
wait_for trigger
if [ -e trigger ]; then rm -f trigger; $SYSTEMD_NOTIFY WATCHDOG=trigger; fi
exec sleep 1000
"#;
    let web = script_program(
        &sandbox,
        "web",
        body,
        &["starttime: 0", "watchdog: 300s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[web]);
    let old = tm.running_pid("web");
    sandbox.wait_for_file("waiting", TIMEOUT);

    touch(&sandbox, "trigger");
    tm.wait_for_log(
        "web: hung: the program triggered its watchdog (WATCHDOG=trigger)",
        TIMEOUT,
    );
    wait_for_new_pid(&mut tm, "web", old);
    let api = api_process(&sandbox, "web");
    assert_eq!(api["last_exit"]["cause"], "hung", "{api}");
}

#[test]
fn the_child_gets_watchdog_usec_and_its_own_pid_as_watchdog_pid_only_with_a_watchdog() {
    let sandbox = Sandbox::new();
    let watched_report = sandbox.file_str("watched.report");
    let plain_report = sandbox.file_str("plain.report");
    let watched = program(
        "watched",
        &fixture_cmd(&["report", &watched_report, "sleep", "forever"]),
        &["starttime: 0", "watchdog: 2500ms", "stoptime: 1"],
    );
    let plain = program(
        "plain",
        &fixture_cmd(&["report", &plain_report, "sleep", "forever"]),
        &["starttime: 0", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[watched, plain]);

    let watched_pid = tm.running_pid("watched");
    sandbox.wait_for_file("watched.report", TIMEOUT);
    let report = read_report(&sandbox.file("watched.report"));
    assert_eq!(report["pid"], watched_pid.to_string());
    assert_eq!(report["env.WATCHDOG_USEC"], "2500000", "{report:?}");
    assert_eq!(report["env.WATCHDOG_PID"], watched_pid.to_string());
    assert_eq!(
        report["env.NOTIFY_SOCKET"],
        sandbox.file_str("taskmaster.notify")
    );

    tm.running_pid("plain");
    sandbox.wait_for_file("plain.report", TIMEOUT);
    let report = read_report(&sandbox.file("plain.report"));
    assert!(!report.contains_key("env.WATCHDOG_USEC"), "{report:?}");
    assert!(!report.contains_key("env.WATCHDOG_PID"), "{report:?}");
    assert_eq!(
        report["env.NOTIFY_SOCKET"],
        sandbox.file_str("taskmaster.notify")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Paused is not hung
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sigstopped_program_is_paused_not_hung_and_beats_again_after_sigcont() {
    let sandbox = Sandbox::new();
    let beat = script_program(
        &sandbox,
        "beat",
        BEAT_LOOP,
        &["starttime: 0", "watchdog: 1s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[beat]);
    let pid = tm.running_pid("beat");
    wait_for_beats(&sandbox, 2);

    // The script (the supervised child) stops; what it started may finish, but no more beats.
    send_signal(pid, Signal::STOP).expect("SIGSTOP beat");
    tm.wait_for_log("beat: paused by SIGSTOP", TIMEOUT);
    let window = Instant::now();
    while window.elapsed() < PAUSED_WINDOW {
        let status = tm.status("beat");
        assert_eq!(status.state, "RUNNING", "paused is not hung: {status:?}");
        assert_eq!(status.pid(), Some(pid), "not restarted: {status:?}");
        assert!(
            status.description.contains("paused (SIGSTOP)"),
            "{status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!tm.log().contains("hung"), "{}", tm.log());

    send_signal(pid, Signal::CONT).expect("SIGCONT beat");
    tm.wait_for_log("beat: resumed (SIGCONT)", TIMEOUT);
    let beats_before = beats_sent(&sandbox).expect("beats before the pause");
    wait_for_beats(&sandbox, beats_before + BEATS_OVER_SEVERAL_PERIODS);
    let status = tm.status("beat");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    assert_eq!(status.pid(), Some(pid), "the same process all along");
    assert!(!status.description.contains("paused"), "{status:?}");
    assert!(!tm.log().contains("hung"), "{}", tm.log());
}

#[test]
fn with_watchdog_paused_restart_a_sigstopped_program_is_hung_and_restarted() {
    let sandbox = Sandbox::new();
    let beat = script_program(
        &sandbox,
        "beat",
        BEAT_LOOP,
        &[
            "starttime: 0",
            "watchdog: 1s",
            "watchdog_paused: restart",
            "stoptime: 1",
        ],
    );
    let mut tm = start(&sandbox, &[beat]);
    let old = tm.running_pid("beat");
    wait_for_beats(&sandbox, 2);

    send_signal(old, Signal::STOP).expect("SIGSTOP beat");
    tm.wait_for_log("beat: paused by SIGSTOP", TIMEOUT);
    tm.wait_for_log("beat: hung: no heartbeat for 1.0s", TIMEOUT);
    wait_for_new_pid(&mut tm, "beat", old);
    let api = api_process(&sandbox, "beat");
    assert_eq!(api["last_exit"]["cause"], "hung", "{api}");
    assert_eq!(
        api["paused"],
        Value::Null,
        "the new child is not paused: {api}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Who may speak
// ---------------------------------------------------------------------------------------------

#[test]
fn a_datagram_from_a_process_taskmaster_does_not_supervise_is_dropped_and_logged() {
    let sandbox = Sandbox::new();
    // Waits for a READY=1 that only a stranger sends.
    let waiting = program(
        "waiting",
        &fixture_cmd(&["sleep", "forever"]),
        &["ready: notify", "readytime: 300s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[waiting]);
    tm.wait_for_state("waiting", "STARTING", TIMEOUT);

    let stranger = UnixDatagram::unbound().expect("a datagram socket");
    stranger
        .send_to(b"READY=1", sandbox.file("taskmaster.notify"))
        .expect("send READY=1 to the notify socket");
    let me = std::process::id();
    let line = tm.wait_for_log(&format!("notify: a datagram from pid {me} (uid "), TIMEOUT);
    assert!(
        line.ends_with("), which taskmaster does not supervise: dropped"),
        "{line}"
    );
    // Handled (logged) and not taken for the child's READY=1.
    let status = tm.status("waiting");
    assert_eq!(status.state, "STARTING", "{status:?}");
}

#[test]
fn a_malformed_datagram_from_a_child_is_logged_and_ignored() {
    let sandbox = Sandbox::new();
    // systemd-notify sends a bare word as it is: `garbage`, no `KEY=VALUE`.
    let body = r#"
$SYSTEMD_NOTIFY garbage
put notify_status $?
exec sleep 1000
"#;
    let web = script_program(&sandbox, "web", body, &["starttime: 0", "stoptime: 1"]);
    let mut tm = start(&sandbox, &[web]);
    let pid = tm.running_pid("web");

    let line = tm.wait_for_log("notify: a malformed datagram from pid ", TIMEOUT);
    assert!(
        line.ends_with(": \"garbage\" is not KEY=VALUE; ignored"),
        "{line}"
    );
    // Its BARRIER=1, a datagram of its own, was still answered.
    assert_eq!(sandbox.wait_for_file("notify_status", TIMEOUT).trim(), "0");
    let status = tm.status("web");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    assert_eq!(status.pid(), Some(pid), "the child runs on: {status:?}");
    assert_eq!(
        count_log_lines(&tm, "web: spawned with pid "),
        1,
        "{}",
        tm.log()
    );
}

#[test]
fn a_notification_from_a_grandchild_is_attributed_to_the_supervised_child() {
    let sandbox = Sandbox::new();
    // sh (supervised) -> sh -> systemd-notify. The inner shell records its own pid, and
    // `; exit $?` keeps it from exec'ing systemd-notify, so the sender is two levels down.
    let body = r#"
sh -c 'echo $$ > inner.pid.tmp && mv inner.pid.tmp inner.pid; /usr/bin/systemd-notify --ready --status=from-a-grandchild; exit $?'
put notify_status $?
exec sleep 1000
"#;
    let web = script_program(
        &sandbox,
        "web",
        body,
        &["ready: notify", "readytime: 60s", "stoptime: 1"],
    );
    let mut tm = start(&sandbox, &[web]);

    let running = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.wait_for_log("web: RUNNING: ready (READY=1 after ", TIMEOUT);
    assert!(
        running.description.ends_with(", status: from-a-grandchild"),
        "{running:?}"
    );
    assert_eq!(sandbox.wait_for_file("notify_status", TIMEOUT).trim(), "0");
    let inner = sandbox.wait_for_pidfile("inner.pid", TIMEOUT);
    assert_ne!(
        running.pid(),
        Some(inner),
        "the sender's parent is not the supervised child itself"
    );
    assert!(!tm.log().contains("does not supervise"), "{}", tm.log());
}
