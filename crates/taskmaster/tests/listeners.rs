//! Event listeners, proven with the real clients of supervisord's ecosystem, unchanged from
//! PyPI, and against supervisord 4.3 itself:
//!
//! - **Parity.** A `supervisor.childutils` listener that records every event it gets runs under
//!   supervisord and under taskmaster, on the same supervisord.conf and the same scenario
//!   (programs that start and run, one killed and restarted, one that fails to start and goes
//!   FATAL, a stop by supervisorctl, a REMOTE_COMMUNICATION after each step, then a shutdown);
//!   the two runs' events, headers and payloads must be the same, serials and pids aside.
//! - **superlance** (`crashmail`, `memmon`) and **superfsmon** do what they do under
//!   supervisord: a mail for a crash, a restart for a program past its memory limit, a restart
//!   for a file change.
//! - **The protocol's failures**: a listener that writes a bad RESULT line is UNKNOWN and its
//!   event goes to another of its pool; a FAIL sends the same event again, serials unchanged; a
//!   full buffer drops its oldest events and says so; a listener killed while busy has its event
//!   sent again to its next process; one that answers and exits at once does not.
//!
//! The Python programs come from the venv beside `$SUPERVISORCTL` (see
//! [`crate::support::supervisor_venv_bin`]; `.ci/run` makes it with supervisor, superlance and
//! superfsmon): a missing one fails these tests, never skips them. The protocol tests drive a
//! small listener of their own ([`PROTOCOL_LISTENER`]) that breaks the protocol on purpose.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    fixture_bin, fixture_cmd, run_to_completion, send_signal, shell_quote, supervisor_venv_bin,
    wait_until, wait_until_or_none, yaml_quote, Process, Sandbox, Taskmaster, TIMEOUT,
};
use rustix::process::Signal;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// What the listeners record
// ---------------------------------------------------------------------------------------------

/// One event as a listener got it: the header line's fields and the payload, and which process
/// of which pid got it.
#[derive(Debug, Clone)]
struct Got {
    headers: BTreeMap<String, String>,
    payload: String,
    pid: u32,
    process: String,
}

impl Got {
    fn header(&self, key: &str) -> &str {
        self.headers
            .get(key)
            .map_or_else(|| panic!("no {key} in {:?}", self.headers), String::as_str)
    }

    fn eventname(&self) -> &str {
        self.header("eventname")
    }

    fn serial(&self) -> u64 {
        self.header("serial").parse().expect("a numeric serial")
    }

    fn poolserial(&self) -> u64 {
        self.header("poolserial")
            .parse()
            .expect("a numeric poolserial")
    }

    /// The fields of a `PROCESS_STATE_*` payload (`processname:web groupname:web ...`).
    fn fields(&self) -> HashMap<&str, &str> {
        self.payload
            .split_whitespace()
            .filter_map(|word| word.split_once(':'))
            .collect()
    }

    /// Whether this is `eventname` about process `name`.
    fn is(&self, eventname: &str, name: &str) -> bool {
        self.eventname() == eventname && self.fields().get("processname") == Some(&name)
    }
}

/// The events recorded in `file` so far, one JSON object a line; a line still being written
/// (no newline yet) is left for the next look.
fn recorded(file: &Path) -> Vec<Got> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            let headers = value["headers"]
                .as_object()
                .unwrap_or_else(|| panic!("no headers in {line}"))
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_string()))
                .collect();
            Got {
                headers,
                payload: value["payload"].as_str().unwrap_or("").to_string(),
                pid: value["pid"].as_u64().map_or(0, |pid| pid as u32),
                process: value["process"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// Waits until the events recorded in `file` satisfy `done`, and returns them; on timeout,
/// fails with them and with `context()` (the daemon's log...).
fn wait_for_events(
    file: &Path,
    what: &str,
    mut done: impl FnMut(&[Got]) -> bool,
    context: impl Fn() -> String,
) -> Vec<Got> {
    let mut last = Vec::new();
    wait_until_or_none(TIMEOUT, || {
        last = recorded(file);
        done(&last).then(|| last.clone())
    })
    .unwrap_or_else(|| {
        let seen: Vec<String> = last
            .iter()
            .map(|got| format!("{} {} {:?}", got.process, got.eventname(), got.payload))
            .collect();
        panic!(
            "timed out after {TIMEOUT:?} waiting for {what}; recorded so far:\n{}\n{}",
            seen.join("\n"),
            context()
        )
    })
}

/// The contents of the files `names` of `folder`, for a failure's message.
fn files_of(folder: &Path, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            let text = fs::read_to_string(folder.join(name))
                .unwrap_or_else(|e| format!("(cannot read: {e})"));
            format!("--- {name} ---\n{text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The venv's Python running `script` (a file of the sandbox) with `args`, as one shell line.
fn python_line(script: &Path, args: &[&str]) -> String {
    let python = supervisor_venv_bin("python");
    std::iter::once(python.to_str().expect("UTF-8 path"))
        .chain(std::iter::once(script.to_str().expect("UTF-8 path")))
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The environment every daemon of these tests runs in: none of the test's own supervisord
/// variables, Python unbuffered and in UTF-8 whatever the locale, temporary files in the
/// sandbox.
fn isolate(cmd: &mut Command, sandbox: &Sandbox) {
    cmd.current_dir(sandbox.path())
        .env("HOME", sandbox.path())
        .env("TMPDIR", sandbox.path())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONUTF8", "1")
        .env_remove("SUPERVISOR_SERVER_URL")
        .env_remove("SUPERVISOR_ENABLED")
        .env_remove("SUPERVISOR_PROCESS_NAME")
        .env_remove("SUPERVISOR_GROUP_NAME");
}

// ---------------------------------------------------------------------------------------------
// Parity with supervisord 4.3
// ---------------------------------------------------------------------------------------------

/// The listener of the parity test: PyPI's `supervisor.childutils`, recording every event it
/// gets to a file, one JSON line each (the header's fields and the payload).
///
/// It reads the event itself after `childutils.listener.ready` (as `listener.wait` does:
/// the header line, then `len` characters) so that it can wait for an event and for its stop at
/// once: on SIGTERM it finishes the event already sent to it, then exits. Both supervisors
/// send a listener SUPERVISOR_STATE_CHANGE_STOPPING before they stop it.
const RECORDER: &str = r#"import json, os, select, signal, sys
from supervisor import childutils

out = sys.argv[1]
stopping = False

def stop(signum, frame):
    global stopping
    stopping = True

signal.signal(signal.SIGTERM, stop)
while True:
    childutils.listener.ready(sys.stdout)
    while not select.select([sys.stdin], [], [], 0.05)[0]:
        if stopping:
            sys.exit(0)
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    headers = childutils.get_headers(line)
    payload = sys.stdin.read(int(headers["len"]))
    with open(out, "a") as f:
        f.write(json.dumps({"headers": headers, "payload": payload, "pid": os.getpid(),
                            "process": os.environ["SUPERVISOR_PROCESS_NAME"]}) + "\n")
    childutils.listener.ok(sys.stdout)
"#;

/// Sends REMOTE_COMMUNICATION through `childutils.getRPCInterface`, as a client would:
/// `remote.py URL TYPE DATA`.
const REMOTE: &str = r#"import sys
from supervisor import childutils

rpc = childutils.getRPCInterface({"SUPERVISOR_SERVER_URL": sys.argv[1]})
assert rpc.supervisor.sendRemoteCommEvent(sys.argv[2], sys.argv[3]) is True
"#;

/// The parity test's configuration: the recorder hears every event; `steady` runs, `crasher`
/// runs until the test kills it, `failer` exits at once and goes FATAL after one retry.
/// Every restart here is the first of its row, which taskmaster's crash-loop throttle makes at
/// once, as supervisord does: the throttle, a deliberate difference, does not show.
///
/// `failer`'s `startsecs` is long: supervisord reaps a child in its loop, which may sleep up
/// to a second after the exit, and an exit it reaps later than `startsecs` after the spawn
/// counts as RUNNING then EXITED, not as a failed start.
fn parity_conf(python: &Path) -> String {
    let fixture = fixture_bin();
    let fixture = fixture.display();
    let python = python.display();
    format!(
        "[unix_http_server]\n\
         file=%(here)s/supervisor.sock\n\
         \n\
         [supervisord]\n\
         logfile=%(here)s/daemon.log\n\
         pidfile=%(here)s/daemon.pid\n\
         childlogdir=%(here)s\n\
         \n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
         \n\
         [supervisorctl]\n\
         serverurl=unix://%(here)s/supervisor.sock\n\
         \n\
         [eventlistener:recorder]\n\
         command={python} %(here)s/recorder.py %(here)s/events.jsonl\n\
         events=EVENT\n\
         buffer_size=100\n\
         stderr_logfile=%(here)s/recorder.err\n\
         \n\
         [program:steady]\n\
         command={fixture} sleep forever\n\
         \n\
         [program:crasher]\n\
         command={fixture} sleep forever\n\
         \n\
         [program:failer]\n\
         command={fixture} exit 1\n\
         startsecs=5\n\
         startretries=1\n"
    )
}

#[derive(Debug, Clone, Copy)]
enum Supervisor {
    Supervisord,
    Taskmaster,
}

/// Runs the parity scenario under `supervisor` in a sandbox of its own, and returns every
/// event the recorder got.
fn parity_run(supervisor: Supervisor) -> Vec<Got> {
    let sandbox = Sandbox::new();
    let python = supervisor_venv_bin("python");
    fs::write(sandbox.file("recorder.py"), RECORDER).expect("write recorder.py");
    fs::write(sandbox.file("remote.py"), REMOTE).expect("write remote.py");
    let conf = sandbox.file("supervisord.conf");
    fs::write(&conf, parity_conf(&python)).expect("write supervisord.conf");
    let mut cmd = match supervisor {
        Supervisor::Supervisord => {
            let mut cmd = Command::new(supervisor_venv_bin("supervisord"));
            cmd.arg("-n").arg("-c").arg(&conf);
            cmd
        }
        Supervisor::Taskmaster => sandbox.taskmaster_command_on(&conf, &["--no-shell"]),
    };
    isolate(&mut cmd, &sandbox);
    let out = fs::File::create(sandbox.file("daemon.out")).expect("create daemon.out");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup daemon.out"))
        .stderr(out);
    let mut daemon = Process::spawn(cmd).graceful(Signal::TERM);

    let events = sandbox.file("events.jsonl");
    let context = || {
        format!(
            "under {supervisor:?}\n{}",
            files_of(
                sandbox.path(),
                &["daemon.log", "daemon.out", "recorder.err"]
            )
        )
    };
    let wait =
        |what: &str, done: &dyn Fn(&[Got]) -> bool| wait_for_events(&events, what, done, context);
    let url = format!("unix://{}", sandbox.file_str("supervisor.sock"));
    let remote = |kind: &str| {
        let mut cmd = Command::new(&python);
        cmd.arg(sandbox.file("remote.py")).args([
            url.as_str(),
            kind,
            &format!("after {kind}\nnaïve café ✓"),
        ]);
        isolate(&mut cmd, &sandbox);
        let output = run_to_completion(cmd, TIMEOUT);
        assert!(
            output.status.success(),
            "sendRemoteCommEvent {kind}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            context()
        );
        wait(&format!("the {kind} remote event"), &|got| {
            got.iter()
                .any(|g| g.payload.starts_with(&format!("type:{kind}\n")))
        });
    };

    // Everything starts; failer gives up.
    let started = wait(
        "recorder, steady and crasher RUNNING, failer FATAL",
        &|got| {
            ["recorder", "steady", "crasher"]
                .iter()
                .all(|name| got.iter().any(|g| g.is("PROCESS_STATE_RUNNING", name)))
                && got.iter().any(|g| g.is("PROCESS_STATE_FATAL", "failer"))
        },
    );
    remote("started");

    // crasher dies unexpectedly and comes back.
    let crasher = started
        .iter()
        .find(|g| g.is("PROCESS_STATE_RUNNING", "crasher"))
        .map(|g| g.fields()["pid"].parse::<u32>().expect("a pid"))
        .expect("crasher's RUNNING");
    daemon.track(crasher);
    send_signal(crasher, Signal::KILL).expect("kill crasher");
    wait("crasher RUNNING again", &|got| {
        got.iter()
            .filter(|g| g.is("PROCESS_STATE_RUNNING", "crasher"))
            .count()
            == 2
    });
    remote("restarted");

    // A stop by supervisorctl.
    let mut ctl = Command::new(supervisor_venv_bin("supervisorctl"));
    ctl.arg("-c").arg(&conf).args(["stop", "steady"]);
    isolate(&mut ctl, &sandbox);
    let output = run_to_completion(ctl, TIMEOUT);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "steady: stopped",
        "{}",
        context()
    );
    wait("steady STOPPED", &|got| {
        got.iter().any(|g| g.is("PROCESS_STATE_STOPPED", "steady"))
    });
    remote("stopped");

    // The shutdown.
    send_signal(daemon.pid(), Signal::TERM).expect("SIGTERM the daemon");
    let status = daemon.wait_exit(TIMEOUT);
    assert!(
        status.success(),
        "{supervisor:?} exited {status}\n{}",
        context()
    );
    recorded(&events)
}

/// One run's events as they are compared: every event but the ticks (their times are the
/// clock's), up to SUPERVISOR_STATE_CHANGE_STOPPING. Those that are not about a process open
/// a section, in order; within a section each process's events are in their order, the
/// processes by name (two processes' events are as concurrent under one supervisor as under
/// the other). Pids become `NAME#N`, the N-th pid seen of that process. What a run got after
/// SUPERVISOR_STATE_CHANGE_STOPPING depends on when its listener was stopped; it is checked
/// on its own.
fn comparable(supervisor: Supervisor, got: &[Got]) -> Vec<String> {
    // Nothing lost, nothing twice, each header as supervisord writes it.
    for (n, event) in got.iter().enumerate() {
        assert_eq!(event.poolserial(), n as u64, "{supervisor:?}: {event:?}");
        assert_eq!(
            event.serial(),
            event.poolserial(),
            "{supervisor:?}: {event:?}"
        );
        assert_eq!(event.header("ver"), "3.0");
        assert_eq!(event.header("server"), "supervisor");
        assert_eq!(event.header("pool"), "recorder");
        let len: usize = event.header("len").parse().expect("a numeric len");
        assert_eq!(
            len,
            event.payload.chars().count(),
            "{supervisor:?}: {event:?}"
        );
    }
    let got: Vec<&Got> = got
        .iter()
        .filter(|g| !g.eventname().starts_with("TICK_"))
        .collect();
    let stopping = got
        .iter()
        .position(|g| g.eventname() == "SUPERVISOR_STATE_CHANGE_STOPPING")
        .unwrap_or_else(|| panic!("{supervisor:?}: no SUPERVISOR_STATE_CHANGE_STOPPING"));
    for late in &got[stopping + 1..] {
        assert!(
            ["PROCESS_STATE_STOPPING", "PROCESS_STATE_STOPPED"].contains(&late.eventname()),
            "{supervisor:?}: after SUPERVISOR_STATE_CHANGE_STOPPING: {late:?}"
        );
    }

    let mut pids: HashMap<(String, String), usize> = HashMap::new();
    let mut lines = Vec::new();
    let mut section: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let close = |section: &mut BTreeMap<String, Vec<String>>, lines: &mut Vec<String>| {
        for (_, events) in std::mem::take(section) {
            lines.extend(events);
        }
    };
    for event in &got[..=stopping] {
        let fields = event.fields();
        let Some(process) = fields
            .get("processname")
            .filter(|_| event.eventname().starts_with("PROCESS_STATE_"))
        else {
            close(&mut section, &mut lines);
            lines.push(format!("== {} {:?}", event.eventname(), event.payload));
            continue;
        };
        let payload: Vec<String> = event
            .payload
            .split(' ')
            .map(|word| match word.strip_prefix("pid:") {
                Some(pid) if pid != "0" => {
                    let next = pids.keys().filter(|(p, _)| p == process).count() + 1;
                    let key = (process.to_string(), pid.to_string());
                    let n = *pids.entry(key).or_insert(next);
                    format!("pid:{process}#{n}")
                }
                _ => word.to_string(),
            })
            .collect();
        section
            .entry(process.to_string())
            .or_default()
            .push(format!("   {} {}", event.eventname(), payload.join(" ")));
    }
    close(&mut section, &mut lines);
    lines
}

#[test]
fn a_childutils_listener_gets_the_events_supervisord_sends_for_the_same_scenario() {
    // The two runs are independent: side by side, the test takes as long as the slower one.
    let (supervisord, taskmaster) = std::thread::scope(|scope| {
        let supervisord = scope.spawn(|| parity_run(Supervisor::Supervisord));
        let taskmaster = parity_run(Supervisor::Taskmaster);
        let supervisord = supervisord
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (supervisord, taskmaster)
    });
    let expected = comparable(Supervisor::Supervisord, &supervisord);
    let actual = comparable(Supervisor::Taskmaster, &taskmaster);
    assert!(
        actual == expected,
        "taskmaster and supervisord differ:\n--- taskmaster\n{}\n--- supervisord\n{}",
        actual.join("\n"),
        expected.join("\n")
    );
    // The scenario happened: a sanity check of the comparison itself.
    for line in [
        "== SUPERVISOR_STATE_CHANGE_RUNNING \"\"",
        "   PROCESS_STATE_EXITED processname:crasher groupname:crasher from_state:RUNNING expected:0 pid:crasher#1",
        "   PROCESS_STATE_FATAL processname:failer groupname:failer from_state:BACKOFF",
        "   PROCESS_STATE_STOPPED processname:steady groupname:steady from_state:STOPPING pid:steady#1",
        "== REMOTE_COMMUNICATION \"type:stopped\\nafter stopped\\nnaïve café ✓\"",
    ] {
        assert!(actual.iter().any(|l| l == line), "no {line:?} in\n{}", actual.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// superlance and superfsmon, unchanged from PyPI
// ---------------------------------------------------------------------------------------------

/// The head of a supervisord.conf whose control socket and event log are in the sandbox (the
/// event log where [`Taskmaster`] reads it).
const CONF_HEAD: &str = "[unix_http_server]\n\
                         file=%(here)s/supervisor.sock\n\
                         \n\
                         [supervisord]\n\
                         logfile=%(here)s/taskmaster.log\n\
                         childlogdir=%(here)s\n\
                         \n\
                         [rpcinterface:supervisor]\n\
                         supervisor.rpcinterface_factory = \
                         supervisor.rpcinterface:make_main_rpcinterface\n\n";

/// Starts taskmaster, its shell on pipes, on the supervisord.conf `text` written in `sandbox`.
fn start_conf(sandbox: &Sandbox, text: &str) -> Taskmaster {
    let conf = sandbox.file("supervisord.conf");
    fs::write(&conf, text).expect("write supervisord.conf");
    let mut cmd = sandbox.taskmaster_command_on(&conf, &[]);
    isolate(&mut cmd, sandbox);
    Taskmaster::spawn(sandbox, cmd)
}

/// Starts taskmaster, its shell on pipes, on the YAML `text` written in `sandbox`.
fn start_yaml(sandbox: &Sandbox, text: &str) -> Taskmaster {
    sandbox.write_config(text);
    let mut cmd = sandbox.taskmaster_command(&[]);
    isolate(&mut cmd, sandbox);
    Taskmaster::spawn(sandbox, cmd)
}

/// Waits until `name` is RUNNING with another pid than `old`, and returns the new one.
fn wait_for_new_pid(tm: &mut Taskmaster, name: &str, old: u32, timeout: Duration) -> u32 {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let status = tm.status(name);
        if let Some(pid) = status
            .pid()
            .filter(|&pid| pid != old && status.state == "RUNNING")
        {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} still {status:?} after {timeout:?}\n{}",
            tm.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn superlance_crashmail_mails_a_crash_through_its_sendmail() {
    let sandbox = Sandbox::new();
    // The stand-in for sendmail: keeps the mail crashmail pipes to it.
    let sendmail = sandbox.file("sendmail.sh");
    fs::write(
        &sendmail,
        "#!/bin/sh\ncat >> \"$(dirname \"$0\")/mail.txt\"\n",
    )
    .expect("write");
    fs::set_permissions(
        &sendmail,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod sendmail.sh");
    let text = format!(
        "{CONF_HEAD}\
         [eventlistener:crashmail]\n\
         command={} -a -m ops@example.com -s \"%(here)s/sendmail.sh -t -i\"\n\
         events=PROCESS_STATE_EXITED\n\
         stderr_logfile=%(here)s/crashmail.err\n\
         \n\
         [program:crashy]\n\
         command={} wait-for %(here)s/crash-now raise SEGV\n\
         autorestart=false\n",
        supervisor_venv_bin("crashmail").display(),
        fixture_bin().display(),
    );
    let mut tm = start_conf(&sandbox, &text);
    tm.wait_for_state("crashmail", "RUNNING", TIMEOUT);
    let pid = tm.running_pid("crashy");
    fs::write(sandbox.file("crash-now"), "").expect("write crash-now");
    let expected = format!(
        "Process crashy in group crashy exited unexpectedly (pid {pid}) from state RUNNING"
    );
    let mail = wait_until_or_none(TIMEOUT, || {
        fs::read_to_string(sandbox.file("mail.txt"))
            .ok()
            .filter(|mail| mail.contains(&expected))
    })
    .unwrap_or_else(|| {
        panic!(
            "no mail about crashy's crash\n{}\n{}",
            files_of(sandbox.path(), &["mail.txt", "crashmail.err"]),
            tm.diagnostics()
        )
    });
    assert!(mail.starts_with("To: ops@example.com\n"), "{mail}");
    assert!(mail.contains(" crashy crashed at "), "{mail}");
}

#[test]
fn superlance_memmon_restarts_a_program_past_its_memory_limit() {
    let sandbox = Sandbox::new();
    // 64 MiB, every page touched, against memmon's 32 MB.
    fs::write(
        sandbox.file("hog.py"),
        "import time\nhog = b'x' * (64 << 20)\ntime.sleep(3600)\n",
    )
    .expect("write hog.py");
    let memmon = supervisor_venv_bin("memmon");
    let memmon = format!("{} -p hog=32MB", memmon.display());
    let hog = python_line(&sandbox.file("hog.py"), &[]);
    let yaml = format!(
        "eventlisteners:\n  memmon:\n    cmd: {}\n    events: [TICK_5]\n    stderr: {}\n\
         programs:\n  hog:\n    cmd: {}\n    starttime: 0\n",
        yaml_quote(&memmon),
        yaml_quote(&sandbox.file_str("memmon.err")),
        yaml_quote(&hog),
    );
    let mut tm = start_yaml(&sandbox, &yaml);
    tm.wait_for_state("memmon", "RUNNING", TIMEOUT);
    let first = tm.running_pid("hog");
    // memmon looks at the next TICK_5 (at most 5 s away), and restarts hog through XML-RPC.
    wait_for_new_pid(&mut tm, "hog", first, TIMEOUT);
    let said = sandbox.wait_for_contents(
        "memmon.err",
        |text| text.contains("Restarting hog:hog"),
        TIMEOUT,
    );
    assert!(said.contains("RSS of hog:hog is "), "{said}");
}

#[test]
fn superfsmon_restarts_a_program_when_a_watched_file_changes() {
    let sandbox = Sandbox::new();
    let watched = sandbox.file("src");
    fs::create_dir(&watched).expect("create src/");
    let superfsmon = supervisor_venv_bin("superfsmon");
    let superfsmon = format!("{} {} web", superfsmon.display(), watched.display());
    let yaml = format!(
        "programs:\n  web:\n    cmd: {}\n    starttime: 0\n  \
         superfsmon:\n    cmd: {}\n    starttime: 0\n    stdout: {}\n    stderr: {}\n",
        fixture_cmd(&["sleep", "forever"]),
        yaml_quote(&superfsmon),
        yaml_quote(&sandbox.file_str("superfsmon.out")),
        yaml_quote(&sandbox.file_str("superfsmon.err")),
    );
    let mut tm = start_yaml(&sandbox, &yaml);
    let first = tm.running_pid("web");
    let monitor = tm.running_pid("superfsmon");
    // It watches once its inotify descriptor has a watch.
    wait_until("superfsmon's inotify watch", TIMEOUT, || {
        let fds = fs::read_dir(format!("/proc/{monitor}/fdinfo")).ok()?;
        fds.filter_map(Result::ok)
            .filter_map(|fd| fs::read_to_string(fd.path()).ok())
            .any(|info| info.contains("inotify wd:"))
            .then_some(())
    });
    fs::write(watched.join("app.py"), "print('v2')\n").expect("write src/app.py");
    wait_for_new_pid(&mut tm, "web", first, TIMEOUT);
    let said = sandbox.read("superfsmon.out");
    assert!(said.contains("superfsmon: restarting programs"), "{said}");
}

// ---------------------------------------------------------------------------------------------
// The protocol's failures
// ---------------------------------------------------------------------------------------------

/// A listener that keeps or breaks the protocol as told: `listener.py FOLDER NAME=MODE...`,
/// each process by its `SUPERVISOR_PROCESS_NAME` (`*` for any other). It records each event
/// it gets (header fields, payload, its pid and name) to `FOLDER/events.jsonl` before it
/// answers. Modes: `ok`; `fail-once` (FAIL to its name's first event, then OK); `bad-result`
/// (a RESULT line without a length, then silence); `hang-once` (its name's first event is
/// never answered); `exit-after-ok` (OK, then exits at once). `late-MODE` says READY only once
/// `FOLDER/go` exists.
const PROTOCOL_LISTENER: &str = r#"import json, os, sys, time

folder = sys.argv[1]
name = os.environ["SUPERVISOR_PROCESS_NAME"]
modes = dict(arg.split("=", 1) for arg in sys.argv[2:])
mode = modes.get(name, modes.get("*", "ok"))

def first_time(what):
    marker = os.path.join(folder, name + "." + what)
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True

def answer(text):
    sys.stdout.write("RESULT %d\n%s" % (len(text), text))
    sys.stdout.flush()

if mode.startswith("late-"):
    mode = mode[len("late-"):]
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.01)
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    headers = dict(word.split(":", 1) for word in line.split())
    payload = sys.stdin.read(int(headers["len"]))
    with open(os.path.join(folder, "events.jsonl"), "a") as f:
        f.write(json.dumps({"headers": headers, "payload": payload, "pid": os.getpid(),
                            "process": name}) + "\n")
    if mode == "bad-result":
        sys.stdout.write("RESULT two\n")
        sys.stdout.flush()
        sys.stdin.read()
        sys.exit(0)
    elif mode == "fail-once" and first_time("failed"):
        answer("FAIL")
    elif mode == "hang-once" and first_time("hung"):
        sys.stdin.read()
        sys.exit(0)
    elif mode == "exit-after-ok":
        answer("OK")
        os._exit(0)
    else:
        answer("OK")
"#;

/// Starts taskmaster on a pool `l` of [`PROTOCOL_LISTENER`]s with `modes` (`NAME=MODE`
/// words) and the YAML lines `settings` (indented for the listener), listening to
/// PROCESS_GROUP, beside the programs `programs` (each runs and stays up). Returns taskmaster
/// and where the listeners record.
fn start_pool(
    sandbox: &Sandbox,
    modes: &[&str],
    settings: &str,
    programs: &[&str],
) -> (Taskmaster, std::path::PathBuf) {
    let script = sandbox.file("listener.py");
    fs::write(&script, PROTOCOL_LISTENER).expect("write listener.py");
    let mut args = vec![sandbox.file_str("")];
    args.extend(modes.iter().map(|mode| (*mode).to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut yaml = format!(
        "eventlisteners:\n  l:\n    cmd: {}\n    events: [PROCESS_GROUP]\n    starttime: 0\n    \
         stderr: {}\n{settings}",
        yaml_quote(&python_line(&script, &args)),
        yaml_quote(&sandbox.file_str("listener.err")),
    );
    if !programs.is_empty() {
        yaml.push_str("programs:\n");
        for name in programs {
            yaml.push_str(&format!(
                "  {name}:\n    cmd: {}\n    starttime: 0\n",
                fixture_cmd(&["sleep", "forever"])
            ));
        }
    }
    let tm = start_yaml(sandbox, &yaml);
    (tm, sandbox.file("events.jsonl"))
}

/// `(serial, poolserial, payload)` of each event.
fn serials(got: &[Got]) -> Vec<(u64, u64, &str)> {
    got.iter()
        .map(|g| (g.serial(), g.poolserial(), g.payload.as_str()))
        .collect()
}

#[test]
fn a_bad_result_line_puts_the_listener_in_unknown_and_its_event_goes_to_another() {
    let sandbox = Sandbox::new();
    let (mut tm, events) = start_pool(
        &sandbox,
        &["l_00=bad-result", "l_01=late-ok"],
        "    numprocs: 2\n    process_name: \"%(program_name)s_%(process_num)02d\"\n",
        &["web"],
    );
    let context = || tm.diagnostics();
    let first = wait_for_events(&events, "l_00's event", |got| !got.is_empty(), context);
    assert_eq!(first[0].process, "l_00");
    assert_eq!(serials(&first), [(0, 0, "groupname:l\n")]);
    let unknown = tm.wait_for_log("has entered the UNKNOWN state", TIMEOUT);
    assert!(unknown.contains("l:l_00"), "{unknown}");
    assert!(
        unknown.contains(r#"bad result line "RESULT two""#),
        "{unknown}"
    );
    fs::write(sandbox.file("go"), "").expect("write go");
    let got = wait_for_events(
        &events,
        "both events at l_01",
        |got| got.len() == 3,
        context,
    );
    // The same event, with its serials, then the next; nothing more for the UNKNOWN one.
    assert!(got[1..].iter().all(|g| g.process == "l_01"), "{got:?}");
    assert_eq!(
        serials(&got[1..]),
        [(0, 0, "groupname:l\n"), (1, 1, "groupname:web\n")]
    );
    // UNKNOWN is where it is in the protocol: its process runs on, as under supervisord.
    assert_eq!(tm.status("l:l_00").state, "RUNNING");
}

#[test]
fn a_failed_event_is_sent_again_with_the_same_serials() {
    let sandbox = Sandbox::new();
    let (tm, events) = start_pool(&sandbox, &["*=fail-once"], "", &["web"]);
    let got = wait_for_events(
        &events,
        "the failed event again, then the next",
        |got| got.len() == 3,
        || tm.diagnostics(),
    );
    assert_eq!(
        serials(&got),
        [
            (0, 0, "groupname:l\n"),
            (0, 0, "groupname:l\n"),
            (1, 1, "groupname:web\n")
        ]
    );
    assert!(
        got.iter().all(|g| g.pid == got[0].pid),
        "one listener: {got:?}"
    );
    tm.wait_for_log("l: event was rejected", TIMEOUT);
}

#[test]
fn a_full_buffer_drops_its_oldest_events_and_says_so() {
    let sandbox = Sandbox::new();
    // Five PROCESS_GROUP_ADDED at start (l, a, b, c, d) for a buffer of two, before the
    // listener can be ready.
    let (tm, events) = start_pool(
        &sandbox,
        &["*=late-ok"],
        "    buffer_size: 2\n",
        &["a", "b", "c", "d"],
    );
    for dropped in 0..3 {
        tm.wait_for_log(
            &format!("pool l event buffer overflowed, discarding event {dropped}"),
            TIMEOUT,
        );
    }
    fs::write(sandbox.file("go"), "").expect("write go");
    let got = wait_for_events(
        &events,
        "the last two events",
        |got| got.iter().any(|g| g.serial() == 4),
        || tm.diagnostics(),
    );
    assert_eq!(
        serials(&got),
        [(3, 3, "groupname:c\n"), (4, 4, "groupname:d\n")]
    );
    assert!(!tm.log().contains("discarding event 3"), "{}", tm.log());
}

#[test]
fn a_listener_killed_while_busy_has_its_event_sent_to_its_next_process() {
    let sandbox = Sandbox::new();
    let (mut tm, events) = start_pool(
        &sandbox,
        &["*=hang-once"],
        "    autorestart: true\n",
        &["web"],
    );
    let first = wait_for_events(
        &events,
        "the first event",
        |got| !got.is_empty(),
        || tm.diagnostics(),
    );
    let busy = first[0].pid;
    tm.track(busy);
    send_signal(busy, Signal::KILL).expect("kill the busy listener");
    let got = wait_for_events(
        &events,
        "the event again at the next process, then the next",
        |got| got.len() == 3,
        || tm.diagnostics(),
    );
    assert_eq!(
        serials(&got),
        [
            (0, 0, "groupname:l\n"),
            (0, 0, "groupname:l\n"),
            (1, 1, "groupname:web\n")
        ]
    );
    assert!(got[1].pid != busy && got[2].pid == got[1].pid, "{got:?}");
}

/// Regression: the loop could hear of such a listener's exit before its capture thread handed
/// over its answer, and sent the answered event again to the next process.
#[test]
fn a_listener_that_answers_and_exits_at_once_does_not_get_its_event_again() {
    let sandbox = Sandbox::new();
    let programs: Vec<String> = (0..30).map(|n| format!("p{n:02}")).collect();
    let programs: Vec<&str> = programs.iter().map(String::as_str).collect();
    let (tm, events) = start_pool(
        &sandbox,
        &["*=exit-after-ok"],
        "    autorestart: true\n    backoff: off\n    buffer_size: 100\n",
        &programs,
    );
    let got = wait_for_events(
        &events,
        "every group's event",
        |got| got.iter().any(|g| g.serial() == 30),
        || tm.diagnostics(),
    );
    let got_serials: Vec<u64> = got.iter().map(Got::serial).collect();
    assert_eq!(got_serials, (0..=30).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------------------------------------
// The example
// ---------------------------------------------------------------------------------------------

/// `examples/supervisord/listeners.conf` runs as it says: its listeners start (superlance's
/// from the venv, found on `PATH` as a user's would be), and a crash is written down by its sh
/// listener and mailed by crashmail (to a stand-in for sendmail).
#[test]
fn the_listeners_example_writes_down_and_mails_a_crash() {
    let sandbox = Sandbox::new();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/supervisord/listeners.conf");
    let text = fs::read_to_string(&example).expect("read the example");
    let sendmail = "/usr/sbin/sendmail -t -i";
    assert!(
        text.contains("/tmp/taskmaster-listeners.log") && text.contains(sendmail),
        "the example changed shape; update this test:\n{text}"
    );
    let stand_in = sandbox.file("sendmail.sh");
    fs::write(
        &stand_in,
        "#!/bin/sh\ncat >> \"$(dirname \"$0\")/mail.txt\"\n",
    )
    .expect("write");
    fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod sendmail.sh");
    // Its files in the sandbox, its event log where the harness reads it.
    let copy = text
        .replace("/tmp/", &format!("{}/", sandbox.path().display()))
        .replace("taskmaster-listeners.log", "taskmaster.log")
        .replace(sendmail, &stand_in.display().to_string());
    let conf = sandbox.file("listeners.conf");
    fs::write(&conf, copy).expect("write the copy");
    let venv = supervisor_venv_bin("crashmail");
    let venv = venv.parent().expect("the venv's bin folder");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut folders = vec![venv.to_path_buf()];
    folders.extend(std::env::split_paths(&path));
    let mut cmd = sandbox.taskmaster_command_on(&conf, &[]);
    isolate(&mut cmd, &sandbox);
    cmd.env("PATH", std::env::join_paths(folders).expect("a PATH"));
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    for listener in ["crashlog", "crashmail", "memmon"] {
        tm.wait_for_state(listener, "RUNNING", TIMEOUT);
    }
    let web = tm.running_pid("web");
    send_signal(web, Signal::KILL).expect("kill web");
    let line = format!("processname:web groupname:web from_state:RUNNING expected:0 pid:{web}");
    sandbox.wait_for_contents(
        "taskmaster-crashes.log",
        |text| text.contains(&line),
        TIMEOUT,
    );
    let mail = sandbox.wait_for_contents(
        "mail.txt",
        |text| text.contains("from state RUNNING"),
        TIMEOUT,
    );
    assert!(
        mail.contains("Subject: [web-01]: web crashed at "),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "Process web in group web exited unexpectedly (pid {web}) from state RUNNING"
        )),
        "{mail}"
    );
}
