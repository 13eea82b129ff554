//! supervisord's own configuration files, read by the real binary: `run`, `ctl`, `check` and
//! `convert` on a supervisord.conf, and `priority` deciding the order of starts and stops.

mod support;

use std::process::Command;

use support::{
    fixture_bin, run_to_completion, shell_quote, taskmaster_bin, Sandbox, Taskmaster, TIMEOUT,
};

/// A supervisord.conf in the sandbox: a socket and an event log beside it, a pool of three
/// and two programs whose priorities order them.
fn supervisord_conf(sandbox: &Sandbox) -> std::path::PathBuf {
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    let text = format!(
        "; as supervisord users write them
[unix_http_server]
file=%(here)s/sv.sock

[supervisord]
logfile=%(here)s/taskmaster.log

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:pool]
command={fixture} sleep forever
process_name=%(program_name)s_%(process_num)02d
numprocs=3
startsecs=0
environment=ROLE=\"pool\"  ; a comment after whitespace

[program:web]
command={fixture} sleep forever
priority=20
startsecs=0

[program:db]
command={fixture} sleep forever
priority=10
startsecs=0
"
    );
    let path = sandbox.file("supervisord.conf");
    std::fs::write(&path, text).expect("write supervisord.conf");
    path
}

fn run(sandbox: &Sandbox, conf: &std::path::Path) -> Taskmaster {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(conf)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    Taskmaster::spawn(sandbox, cmd)
}

#[test]
fn run_supervises_the_programs_of_a_supervisord_conf() {
    let sandbox = Sandbox::new();
    let conf = supervisord_conf(&sandbox);
    let mut tm = run(&sandbox, &conf);
    for name in ["pool:pool_00", "pool:pool_01", "pool:pool_02", "web", "db"] {
        tm.wait_for_state(name, "RUNNING", TIMEOUT);
    }
    // [unix_http_server] file is the control socket, found by ctl through the file.
    let output = run_to_completion(
        {
            let mut ctl = Command::new(taskmaster_bin());
            ctl.args(["ctl", "-c"]).arg(&conf).arg("status");
            ctl
        },
        TIMEOUT,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(sandbox.file("sv.sock").exists());
}

#[test]
fn priority_orders_the_starts_and_the_stops() {
    let sandbox = Sandbox::new();
    let conf = supervisord_conf(&sandbox);
    let mut tm = run(&sandbox, &conf);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.shutdown();
    let log = tm.log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
    };
    // db (10) before web (20) before pool (999, supervisord's default).
    assert!(at("db: spawned") < at("web: spawned"), "{log}");
    assert!(at("web: spawned") < at("pool:pool_00: spawned"), "{log}");
    // Stopped the other way round, each level once the one before is down.
    assert!(
        at("pool:pool_02: stopped") < at("web: stop requested"),
        "{log}"
    );
    assert!(at("web: stopped") < at("db: stop requested"), "{log}");
}

#[test]
fn check_names_an_unsupported_option_and_its_place() {
    let sandbox = Sandbox::new();
    let conf = sandbox.file("bad.conf");
    std::fs::write(&conf, "[program:web]\ncommand=sleep 1\nstopasgroup=false\n").expect("write");
    let output = run_to_completion(
        {
            let mut check = Command::new(taskmaster_bin());
            check.args(["check", "-c"]).arg(&conf);
            check
        },
        TIMEOUT,
    );
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert!(
        errors.contains("bad.conf:3:13: program:web.stopasgroup"),
        "{errors}"
    );
}

#[test]
fn convert_prints_yaml_that_means_the_same() {
    let sandbox = Sandbox::new();
    let conf = supervisord_conf(&sandbox);
    let output = run_to_completion(
        {
            let mut convert = Command::new(taskmaster_bin());
            convert.arg("convert").arg(&conf);
            convert
        },
        TIMEOUT,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        yaml.contains("numprocs: 3") && yaml.contains("priority: 10"),
        "{yaml}"
    );
    assert!(yaml.contains("sv.sock"), "the socket is kept: {yaml}");
    std::fs::write(sandbox.file("converted.yaml"), &yaml).expect("write");
    let output = run_to_completion(
        {
            let mut check = Command::new(taskmaster_bin());
            check
                .args(["check", "-c"])
                .arg(sandbox.file("converted.yaml"));
            check
        },
        TIMEOUT,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// supervisord's most common pool: each process listens on a port of its own
/// (`80%(process_num)02d`-style) and logs to a file of its own, and `numprocs_start` numbers
/// them from 1.
#[test]
fn a_pool_whose_processes_listen_on_their_own_ports_and_log_to_their_own_files() {
    let sandbox = Sandbox::new();
    // Ports BASE01, BASE02, BASE03 on loopback; BASE from the test's pid, to keep clear of
    // other runs.
    let base = 400 + std::process::id() % 200;
    let server = "import http.server as h, sys; port = int(sys.argv[1]); \
                  print('listening on', port, flush=True); \
                  h.HTTPServer(('127.0.0.1', port), h.SimpleHTTPRequestHandler).serve_forever()";
    let text = format!(
        "[unix_http_server]
file=%(here)s/sv.sock

[supervisord]
logfile=%(here)s/taskmaster.log

[program:web]
command=python3 -c \"{server}\" {base}%(process_num)02d
process_name=%(program_name)s_%(process_num)02d
numprocs=3
numprocs_start=1
startsecs=0
stdout_logfile=%(here)s/web_%(process_num)02d.log
redirect_stderr=true
"
    );
    let conf = sandbox.file("supervisord.conf");
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let mut tm = run(&sandbox, &conf);
    for num in 1..=3u32 {
        let name = format!("web:web_{num:02}");
        let status = tm.wait_for_state(&name, "RUNNING", TIMEOUT);
        if let Some(pid) = status.pid() {
            tm.track(pid);
        }
        let port = format!("{base}{num:02}");
        let address = format!("127.0.0.1:{port}");
        support::wait_until(&format!("{name} to listen on {address}"), TIMEOUT, || {
            std::net::TcpStream::connect(&address).ok()
        });
        let log = sandbox.file(&format!("web_{num:02}.log"));
        support::wait_until(&format!("{name}'s own log file"), TIMEOUT, || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains(&format!("listening on {port}")).then_some(())
        });
    }
    assert!(!sandbox.file("web_00.log").exists());
}

/// `[group:site]` puts web and api under one name: addressed `site:web`, `site:*` and
/// `site`, shown so by `status`; the group starts before a program of a higher priority, its
/// members in their own priorities' order, and `stop site` stops the group alone.
#[test]
fn a_group_addresses_its_programs_under_its_name_and_orders_them() {
    let sandbox = Sandbox::new();
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    let text = format!(
        "[unix_http_server]
file=%(here)s/sv.sock

[supervisord]
logfile=%(here)s/taskmaster.log

[group:site]
programs=web,api
priority=10

[program:web]
command={fixture} sleep forever
priority=2
startsecs=0

[program:api]
command={fixture} sleep forever
priority=1
startsecs=0

[program:cron]
command={fixture} sleep forever
priority=5
startsecs=0
"
    );
    let conf = sandbox.file("supervisord.conf");
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let mut tm = run(&sandbox, &conf);
    for name in ["site:web", "site:api", "cron"] {
        tm.wait_for_state(name, "RUNNING", TIMEOUT);
    }
    let log = tm.log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
    };
    // cron (5) before the group (10); in the group, api (1) before web (2).
    assert!(at("cron: spawned") < at("site:api: spawned"), "{log}");
    assert!(at("site:api: spawned") < at("site:web: spawned"), "{log}");
    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.args(["ctl", "-c"]).arg(&conf).args(args);
        let output = run_to_completion(cmd, TIMEOUT);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let status = ctl(&["status"]);
    let names: Vec<&str> = status
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names, ["cron", "site:api", "site:web"], "{status}");
    assert_eq!(
        ctl(&["stop", "site"]),
        "site:api: stopped\nsite:web: stopped\n"
    );
    assert!(ctl(&["status", "cron"]).contains("RUNNING"));
    assert_eq!(
        ctl(&["start", "site:*"]),
        "site:api: started\nsite:web: started\n"
    );
    assert_eq!(ctl(&["stop", "site:web"]), "site:web: stopped\n");
}
