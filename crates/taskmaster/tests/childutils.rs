//! A child of taskmaster reaches it as a child of supervisord reaches supervisord: through the
//! `SUPERVISOR_*` variables supervisord sets (`SUPERVISOR_SERVER_URL` above all, which
//! `serverurl` may set per program), and PyPI's `supervisor.childutils`, unchanged, on them.
//!
//! The variables are read from the fixture's `report`. The childutils tests run a small Python
//! script with the venv's Python (beside `$SUPERVISORCTL`, see
//! [`crate::support::supervisor_venv_bin`]; a missing one fails them, never skips them): it calls
//! taskmaster through `childutils.getRPCInterface(os.environ)` and writes what it got, as JSON,
//! to a file the test reads. Python's XML-RPC client reads a value without a type as a string,
//! so an integer that comes back as a JSON number was sent typed.

use std::collections::HashMap;
use std::path::Path;

use crate::support::{
    fixture_cmd, read_report, supervisor_venv_bin, wait_until_or_none, yaml_quote, Sandbox,
    Taskmaster, TIMEOUT,
};
use serde_json::Value;

/// Starts taskmaster on `yaml` in `sandbox`, without a `SUPERVISOR_SERVER_URL` of the test's
/// own environment, which a child would inherit where none is set for it.
fn start(sandbox: &Sandbox, yaml: &str) -> Taskmaster {
    sandbox.write_config(yaml);
    let mut cmd = sandbox.taskmaster_command(&[]);
    cmd.env_remove("SUPERVISOR_SERVER_URL");
    Taskmaster::spawn(sandbox, cmd)
}

/// The environment program `name` reported in `NAME.report` once RUNNING.
fn reported_env(tm: &mut Taskmaster, sandbox: &Sandbox, name: &str) -> HashMap<String, String> {
    tm.wait_for_state(name, "RUNNING", TIMEOUT);
    let file = format!("{name}.report");
    sandbox.wait_for_file(&file, TIMEOUT);
    read_report(&sandbox.file(&file))
        .into_iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("env.")?.to_string(), value)))
        .collect()
}

/// A program that reports its environment to `NAME.report`, then sleeps, with `more` keys.
fn reporting_program(sandbox: &Sandbox, name: &str, more: &str) -> String {
    let cmd = fixture_cmd(&[
        "report",
        &sandbox.file_str(&format!("{name}.report")),
        "sleep",
        "forever",
    ]);
    format!("  {name}:\n    cmd: {cmd}\n    starttime: 0\n{more}")
}

fn socket_url(sandbox: &Sandbox, socket: &str) -> String {
    format!("unix://{}", sandbox.file(socket).display())
}

#[test]
fn every_child_gets_supervisors_variables_and_the_control_socket_as_server_url() {
    let sandbox = Sandbox::new();
    let programs = reporting_program(&sandbox, "web", "");
    let mut tm = start(&sandbox, &format!("programs:\n{programs}"));
    let env = reported_env(&mut tm, &sandbox, "web");
    let url = socket_url(&sandbox, "taskmaster.sock");
    assert_eq!(env.get("SUPERVISOR_SERVER_URL"), Some(&url), "{env:?}");
    assert_eq!(env["SUPERVISOR_ENABLED"], "1");
    assert_eq!(env["SUPERVISOR_PROCESS_NAME"], "web");
    assert_eq!(env["SUPERVISOR_GROUP_NAME"], "web");
}

#[test]
fn a_programs_env_overrides_every_supervisor_variable_but_not_taskmasters() {
    let sandbox = Sandbox::new();
    let env = "    env:\n      SUPERVISOR_ENABLED: \"0\"\n      SUPERVISOR_SERVER_URL: http://elsewhere:9001\n      SUPERVISOR_PROCESS_NAME: alias\n      SUPERVISOR_GROUP_NAME: aliases\n      TASKMASTER_PROCESS_NAME: alias\n      TASKMASTER_SOCKET: /nowhere\n";
    let programs = reporting_program(&sandbox, "web", env);
    let mut tm = start(&sandbox, &format!("programs:\n{programs}"));
    let env = reported_env(&mut tm, &sandbox, "web");
    // supervisord sets its variables first, then the program's `environment`.
    assert_eq!(env["SUPERVISOR_ENABLED"], "0");
    assert_eq!(env["SUPERVISOR_SERVER_URL"], "http://elsewhere:9001");
    assert_eq!(env["SUPERVISOR_PROCESS_NAME"], "alias");
    assert_eq!(env["SUPERVISOR_GROUP_NAME"], "aliases");
    // What taskmaster tells its children is taskmaster's.
    assert_eq!(env["TASKMASTER_PROCESS_NAME"], "web");
    assert_eq!(
        env["TASKMASTER_SOCKET"],
        sandbox.file_str("taskmaster.sock")
    );
}

#[test]
fn serverurl_gives_a_program_its_own_server_url_and_an_empty_one_none() {
    let sandbox = Sandbox::new();
    let programs = [
        reporting_program(&sandbox, "own", "    serverurl: http://127.0.0.1:9001\n"),
        reporting_program(&sandbox, "auto", "    serverurl: auto\n"),
        reporting_program(&sandbox, "none", "    serverurl: \"\"\n"),
    ]
    .concat();
    let mut tm = start(&sandbox, &format!("programs:\n{programs}"));
    let own = reported_env(&mut tm, &sandbox, "own");
    assert_eq!(own["SUPERVISOR_SERVER_URL"], "http://127.0.0.1:9001");
    let auto = reported_env(&mut tm, &sandbox, "auto");
    assert_eq!(
        auto["SUPERVISOR_SERVER_URL"],
        socket_url(&sandbox, "taskmaster.sock")
    );
    let none = reported_env(&mut tm, &sandbox, "none");
    assert_eq!(none.get("SUPERVISOR_SERVER_URL"), None, "{none:?}");
    assert_eq!(none["SUPERVISOR_ENABLED"], "1");
}

#[test]
fn a_supervisord_conf_gives_its_programs_its_socket_or_their_serverurl() {
    let sandbox = Sandbox::new();
    let fixture = |name: &str| {
        let cmd = fixture_cmd(&[
            "report",
            &sandbox.file_str(&format!("{name}.report")),
            "sleep",
            "forever",
        ]);
        // A YAML string as fixture_cmd gives it; INI takes the words as they are.
        cmd.trim_matches('"').to_string()
    };
    let conf = sandbox.file("supervisord.conf");
    let text = format!(
        "[unix_http_server]\nfile=%(here)s/sv.sock\n\n\
         [supervisord]\nlogfile=%(here)s/taskmaster.log\n\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
         [program:auto]\ncommand={}\nstartsecs=0\n\n\
         [program:own]\ncommand={}\nstartsecs=0\nserverurl=unix://%(here)s/%(program_name)s.sock\n",
        fixture("auto"),
        fixture("own"),
    );
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let mut cmd = sandbox.taskmaster_command_on(&conf, &[]);
    cmd.env_remove("SUPERVISOR_SERVER_URL")
        // AUTO log files (supervisord's default) go to the temporary folder.
        .env("TMPDIR", sandbox.path());
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    let auto = reported_env(&mut tm, &sandbox, "auto");
    assert_eq!(
        auto["SUPERVISOR_SERVER_URL"],
        socket_url(&sandbox, "sv.sock")
    );
    let own = reported_env(&mut tm, &sandbox, "own");
    assert_eq!(
        own["SUPERVISOR_SERVER_URL"],
        socket_url(&sandbox, "own.sock")
    );
}

// ---- supervisor.childutils ------------------------------------------------------------------

/// The child: `probe.py MODE OUT` calls taskmaster through childutils, unchanged, and writes
/// the results to OUT as JSON (atomically: a file that exists is complete).
const PROBE: &str = r#"import json, os, sys
from supervisor import childutils

mode, out = sys.argv[1], sys.argv[2]
rpc = childutils.getRPCInterface(os.environ)
if mode == "state":
    result = {
        "pid": os.getpid(),
        "state": rpc.supervisor.getState(),
        "processes": rpc.supervisor.getAllProcessInfo(),
    }
else:
    result = {"sent": rpc.supervisor.sendRemoteCommEvent("deploy", "v2 is live\nall good")}
with open(out + ".tmp", "w") as f:
    json.dump(result, f)
os.replace(out + ".tmp", out)
"#;

/// Runs the probe in `mode` as program `probe` (started once `web` is RUNNING) beside `web`,
/// and returns taskmaster, what the probe wrote, and `web`'s pid.
fn run_probe(sandbox: &Sandbox, mode: &str) -> (Taskmaster, Value, u32) {
    let script = sandbox.file("probe.py");
    std::fs::write(&script, PROBE).expect("write probe.py");
    let python = supervisor_venv_bin("python");
    let out = sandbox.file("probe.json");
    let words = [python.as_path(), &script, Path::new(mode), &out]
        .map(|word| crate::support::shell_quote(word.to_str().expect("UTF-8 paths")));
    let yaml = format!(
        "programs:\n  web:\n    cmd: {}\n    starttime: 0\n  probe:\n    cmd: {}\n    \
         autostart: false\n    autorestart: false\n    starttime: 0\n    stderr: {}\n",
        fixture_cmd(&["sleep", "forever"]),
        yaml_quote(&words.join(" ")),
        yaml_quote(&sandbox.file_str("probe.err")),
    );
    let mut tm = start(sandbox, &yaml);
    let web = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let web = web.pid().expect("web's pid");
    assert_eq!(tm.command("start probe", 1), ["probe: started"]);
    let text =
        wait_until_or_none(TIMEOUT, || std::fs::read_to_string(&out).ok()).unwrap_or_else(|| {
            let err = std::fs::read_to_string(sandbox.file("probe.err")).unwrap_or_default();
            panic!("the probe wrote nothing within {TIMEOUT:?}; its stderr:\n{err}")
        });
    let result = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (tm, result, web)
}

/// The entry of process `name` in a `getAllProcessInfo` answer.
fn process<'a>(processes: &'a Value, name: &str) -> &'a Value {
    processes
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {processes}"))
}

#[test]
fn childutils_get_rpc_interface_reaches_taskmaster_from_a_child_unchanged() {
    let sandbox = Sandbox::new();
    let (_tm, result, web_pid) = run_probe(&sandbox, "state");
    assert_eq!(
        result["state"],
        serde_json::json!({"statecode": 1, "statename": "RUNNING"})
    );
    let processes = &result["processes"];
    let web = process(processes, "web");
    assert_eq!(web["group"], "web");
    assert_eq!(web["statename"], "RUNNING");
    assert_eq!(web["state"], 20);
    assert_eq!(web["pid"], web_pid);
    // The probe sees itself, running, with its own pid.
    let probe = process(processes, "probe");
    assert_eq!(probe["statename"], "RUNNING");
    assert_eq!(probe["pid"], result["pid"]);
    // Typed on the wire: integers arrive as integers, text as text.
    for info in [web, probe] {
        for key in ["pid", "state", "start", "stop", "now", "exitstatus"] {
            assert!(info[key].is_i64(), "{key} of {info}");
        }
        for key in ["name", "group", "statename", "description", "spawnerr"] {
            assert!(info[key].is_string(), "{key} of {info}");
        }
    }
}

#[test]
fn send_remote_comm_event_from_a_child_is_answered_true_and_recorded_in_the_event_log() {
    let sandbox = Sandbox::new();
    let (tm, result, _) = run_probe(&sandbox, "remotecomm");
    assert_eq!(result["sent"], true, "{result}");
    tm.wait_for_log(
        r#"remote communication event "deploy": "v2 is live\nall good""#,
        TIMEOUT,
    );
}
