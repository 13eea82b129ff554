//! supervisord's own configuration files, read by the real binary: `run`, `ctl`, `check` and
//! `convert` on a supervisord.conf, and `priority` deciding the order of starts and stops.

use std::process::Command;

use crate::support::{
    fixture_bin, open_files_limit, run_to_completion, shell_quote, taskmaster_bin, wait_until,
    Sandbox, Taskmaster, TIMEOUT,
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
        .env("HOME", sandbox.path())
        // AUTO log files (supervisord's default) go to the temporary folder.
        .env("TMPDIR", sandbox.path());
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
        crate::support::wait_until(&format!("{name} to listen on {address}"), TIMEOUT, || {
            std::net::TcpStream::connect(&address).ok()
        });
        let log = sandbox.file(&format!("web_{num:02}.log"));
        crate::support::wait_until(&format!("{name}'s own log file"), TIMEOUT, || {
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

#[test]
fn a_program_named_as_supervisord_allows_is_run_and_controlled() {
    let sandbox = Sandbox::new();
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    let text = format!(
        "[unix_http_server]\nfile=%(here)s/sv.sock\n\n[supervisord]\nlogfile=%(here)s/taskmaster.log\n\n\
         [program:<myapp>]\ncommand={fixture} print 'hello from myapp' sleep forever\nstartsecs=0\n\
         stdout_logfile=%(here)s/myapp.log\n"
    );
    let conf = sandbox.file("supervisord.conf");
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let mut tm = run(&sandbox, &conf);
    tm.wait_for_state("<myapp>", "RUNNING", TIMEOUT);
    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.args(["ctl", "-c"]).arg(&conf).args(args);
        let output = run_to_completion(cmd, TIMEOUT);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(ctl(&["stop", "<myapp>"]), "<myapp>: stopped\n");
    assert_eq!(ctl(&["start", "<myapp>"]), "<myapp>: started\n");
    assert!(ctl(&["tail", "<myapp>"]).contains("hello from myapp"));
}

/// A FastCGI-style server in the sandbox (`server.py`): accepts on its stdin (the socket
/// taskmaster opened) and answers each connection with its process name.
fn socket_server(sandbox: &Sandbox) {
    let script = "import os, socket\n\
                  s = socket.socket(fileno=0)\n\
                  while True:\n    \
                      c, _ = s.accept()\n    \
                      c.sendall(os.environ['SUPERVISOR_PROCESS_NAME'].encode())\n    \
                      c.close()\n";
    std::fs::write(sandbox.file("server.py"), script).expect("write server.py");
}

/// What the server at `connect` answers, once it answers.
fn answer_of<S: std::io::Read>(connect: impl Fn() -> std::io::Result<S>) -> Option<String> {
    let mut stream = connect().ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    (!text.is_empty()).then_some(text)
}

/// `[fcgi-program:x]` with a TCP socket: taskmaster opens it once, every process accepts on
/// it as its stdin; stopping every process closes it (the port is free), starting opens it
/// again.
#[test]
fn an_fcgi_program_shares_the_tcp_socket_taskmaster_opens_for_it() {
    let sandbox = Sandbox::new();
    socket_server(&sandbox);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let text = format!(
        "[unix_http_server]\nfile=%(here)s/sv.sock\n\n[supervisord]\nlogfile=%(here)s/taskmaster.log\n\n\
         [fcgi-program:echo]\nsocket=tcp://127.0.0.1:{port}\nsocket_backlog=16\n\
         command=python3 %(here)s/server.py\nprocess_name=%(program_name)s_%(process_num)d\n\
         numprocs=2\nstartsecs=0\n"
    );
    let conf = sandbox.file("supervisord.conf");
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let check = check(&sandbox, &conf);
    assert!(check.status.success(), "{check:?}");
    let mut tm = run(&sandbox, &conf);
    for name in ["echo:echo_0", "echo:echo_1"] {
        if let Some(pid) = tm.wait_for_state(name, "RUNNING", TIMEOUT).pid() {
            tm.track(pid);
        }
    }
    let address = format!("127.0.0.1:{port}");
    let connect = || std::net::TcpStream::connect(&address);
    let answer = wait_until("an answer on the socket", TIMEOUT, || answer_of(connect));
    assert!(answer == "echo_0" || answer == "echo_1", "{answer}");
    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(taskmaster_bin());
        cmd.args(["ctl", "-c"]).arg(&conf).args(args);
        String::from_utf8_lossy(&run_to_completion(cmd, TIMEOUT).stdout).into_owned()
    };
    assert_eq!(ctl(&["stop", "echo:echo_0"]), "echo:echo_0: stopped\n");
    // One process left: the socket stays open and it answers every connection.
    for _ in 0..3 {
        assert_eq!(
            wait_until("echo_1's answer", TIMEOUT, || answer_of(connect)),
            "echo_1"
        );
    }
    assert_eq!(ctl(&["stop", "echo:*"]), "echo:echo_1: stopped\n");
    wait_until("the port to be closed", TIMEOUT, || {
        std::net::TcpListener::bind(&address).ok()
    });
    assert_eq!(ctl(&["start", "echo:echo_1"]), "echo:echo_1: started\n");
    assert_eq!(
        wait_until("an answer again", TIMEOUT, || answer_of(connect)),
        "echo_1"
    );
}

/// With a Unix socket: its mode from socket_mode, and its file removed once no process
/// holds it.
#[test]
fn an_fcgi_program_with_a_unix_socket_gets_its_mode_and_the_file_goes_with_the_last_process() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    socket_server(&sandbox);
    let text = concat!(
        "[unix_http_server]\nfile=%(here)s/sv.sock\n\n[supervisord]\nlogfile=%(here)s/taskmaster.log\n\n",
        "[fcgi-program:echo]\nsocket=unix://%(here)s/echo.sock\nsocket_mode=0660\n\
         command=python3 %(here)s/server.py\nstartsecs=0\n"
    );
    let conf = sandbox.file("supervisord.conf");
    std::fs::write(&conf, text).expect("write supervisord.conf");
    let mut tm = run(&sandbox, &conf);
    if let Some(pid) = tm.wait_for_state("echo", "RUNNING", TIMEOUT).pid() {
        tm.track(pid);
    }
    let path = sandbox.file("echo.sock");
    let connect = || std::os::unix::net::UnixStream::connect(&path);
    assert_eq!(
        wait_until("an answer on the socket", TIMEOUT, || answer_of(connect)),
        "echo"
    );
    let mode = std::fs::metadata(&path)
        .expect("the socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o660);
    let mut stop = Command::new(taskmaster_bin());
    stop.args(["ctl", "-c"]).arg(&conf).args(["stop", "echo"]);
    run_to_completion(stop, TIMEOUT);
    wait_until("the socket file to go", TIMEOUT, || {
        (!path.exists()).then_some(())
    });
}

// ---- [supervisord] and [unix_http_server] as people write them ------------------------------

/// `taskmaster run -c conf` in the sandbox, with its temporary folder there too, so that AUTO
/// log files (supervisord's default) land in the sandbox whatever happens to the test.
fn run_in_sandbox(sandbox: &Sandbox, conf: &std::path::Path, extra_args: &[&str]) -> Taskmaster {
    let mut cmd = Command::new(taskmaster_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(conf)
        .args(extra_args)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path())
        .env("TMPDIR", sandbox.path());
    Taskmaster::spawn(sandbox, cmd)
}

/// `taskmaster check -c conf`, run to its end.
fn check(sandbox: &Sandbox, conf: &std::path::Path) -> std::process::Output {
    let mut check = Command::new(taskmaster_bin());
    check
        .args(["check", "-c"])
        .arg(conf)
        .current_dir(sandbox.path())
        .env("TMPDIR", sandbox.path());
    run_to_completion(check, TIMEOUT)
}

/// `taskmaster ctl ARGS...`, run to its end.
fn ctl(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut ctl = Command::new(taskmaster_bin());
    ctl.arg("ctl")
        .args(args)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    run_to_completion(ctl, TIMEOUT)
}

/// A supervisord.conf in the sandbox: its event log there, `sections` after `[supervisord]`'s
/// first line, and a program `web` that prints a line and sleeps.
fn conf_with(sandbox: &Sandbox, supervisord: &str, rest: &str) -> std::path::PathBuf {
    let fixture = shell_quote(fixture_bin().to_str().expect("UTF-8 path"));
    let text = format!(
        "[supervisord]\nlogfile=%(here)s/taskmaster.log\n{supervisord}\n\
         [program:web]\ncommand={fixture} print 'hello from web' sleep forever\nstartsecs=0\n\
         {rest}"
    );
    let path = sandbox.file("supervisord.conf");
    std::fs::write(&path, text).expect("write supervisord.conf");
    path
}

#[test]
fn check_warns_of_unknown_and_repeated_options_with_their_places_and_exits_0() {
    let sandbox = Sandbox::new();
    let conf = sandbox.file("plugins.conf");
    std::fs::write(
        &conf,
        "[supervisord]\nlogfile=%(here)s/tm.log\nlogfile_maxbytes=1MB\nlogfile_maxbytes=2MB\n\n\
         [program:web]\ncommand=sleep 1\nstartup_delay=5\nstartsecs=0\n\
         [include]\nfiles=conf.d/*.conf\n",
    )
    .expect("write");
    let output = check(&sandbox, &conf);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("valid (1 program(s), 3 warning(s))"),
        "{stdout}"
    );
    let file = conf.display();
    let expected = [
        format!("warning: {file}:4:1: supervisord: option \"logfile_maxbytes\" again (first at line 3, column 1): the last value is used, as supervisord does"),
        format!("warning: {file}:8:1: program:web: unknown option \"startup_delay\", ignored as supervisord ignores it"),
        format!("warning: {file}:11:7: include.files: no file matches"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for (line, expected) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(expected.as_str()),
            "{line}\nexpected {expected}"
        );
    }
}

#[test]
fn the_pidfile_holds_the_daemons_pid_while_it_runs_and_is_gone_after() {
    let sandbox = Sandbox::new();
    let conf = conf_with(&sandbox, "pidfile=%(here)s/run/supervisord.pid", "");
    std::fs::create_dir(sandbox.file("run")).expect("mkdir run");
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let pidfile = sandbox.file("run/supervisord.pid");
    let text = std::fs::read_to_string(&pidfile).expect("the pid file exists while it runs");
    assert_eq!(text, format!("{}\n", tm.daemon_pid()));
    // Written atomically: nothing else in its folder.
    assert_eq!(
        std::fs::read_dir(sandbox.file("run")).expect("ls").count(),
        1
    );
    tm.shutdown();
    assert!(!pidfile.exists(), "the pid file is removed at exit");
}

#[test]
fn auto_log_files_go_to_childlogdir_named_as_supervisord_names_them_and_are_removed_at_exit() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.file("logs")).expect("mkdir logs");
    // No stdout_logfile at all: supervisord's default, AUTO.
    let conf = conf_with(&sandbox, "childlogdir=%(here)s/logs\n", "");
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(sandbox.file("logs"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let stdout = wait_until("web's AUTO stdout file with its line", TIMEOUT, || {
        let name = files()
            .into_iter()
            .find(|n| n.starts_with("web-stdout---supervisor-") && n.ends_with(".log"))?;
        let text = std::fs::read_to_string(sandbox.file("logs").join(&name)).ok()?;
        text.contains("hello from web").then_some(name)
    });
    let names = files();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("web-stderr---supervisor-"),
        "{names:?}"
    );
    assert_eq!(names[1], stdout);
    // tail reads it, as supervisorctl's tail reads supervisord's.
    let conf_arg = conf.to_str().expect("UTF-8 path");
    let tail = ctl(&sandbox, &["-c", conf_arg, "tail", "web"]);
    assert!(
        String::from_utf8_lossy(&tail.stdout).contains("hello from web"),
        "{tail:?}"
    );
    tm.shutdown();
    assert_eq!(files(), Vec::<String>::new(), "removed at exit");
}

#[test]
fn loglevel_warn_leaves_the_info_lines_out_of_the_event_log() {
    let sandbox = Sandbox::new();
    // The unknown option gives a warning, which a warn log keeps.
    let conf = conf_with(&sandbox, "loglevel=warn\nplugin_key=1", "");
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.wait_for_log("unknown option \"plugin_key\"", TIMEOUT);
    tm.shutdown();
    let log = tm.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    for info in [
        "taskmaster started",
        "spawned",
        "RUNNING",
        "stopped",
        "exits",
    ] {
        assert!(!log.contains(info), "{info:?} is info:\n{log}");
    }
    // The same file at info (the default) has them all.
    let sandbox = Sandbox::new();
    let conf = conf_with(&sandbox, "plugin_key=1", "");
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    tm.shutdown();
    let log = tm.log();
    for line in [
        "unknown option",
        "taskmaster started",
        "web: spawned",
        "exits",
    ] {
        assert!(log.contains(line), "{line:?} missing:\n{log}");
    }
}

#[test]
fn the_socket_gets_the_chmod_of_unix_http_server() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    socket_server(&sandbox);
    let conf = conf_with(
        &sandbox,
        "",
        "[unix_http_server]\nfile=%(here)s/sv.sock\nchmod=0660\n",
    );
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let socket = sandbox.file("sv.sock");
    let mode = std::fs::metadata(&socket)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o660);
    tm.shutdown();
}

#[test]
fn the_socket_gets_the_chown_of_unix_http_server_as_root() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving the socket to another user needs root (CI runs as root)");
        return;
    }
    let sandbox = Sandbox::new();
    // nobody's uid and nogroup's gid, by number: no user database needed.
    let conf = conf_with(
        &sandbox,
        "",
        "[unix_http_server]\nfile=%(here)s/sv.sock\nchmod=0600\nchown=65534:65534\n",
    );
    let mut tm = run_in_sandbox(&sandbox, &conf, &[]);
    tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let metadata = std::fs::metadata(sandbox.file("sv.sock")).expect("the socket");
    assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    // Given away, the file's permissions decide who connects: root still may.
    let conf_arg = conf.to_str().expect("UTF-8 path");
    let status = ctl(&sandbox, &["-c", conf_arg, "status", "web"]);
    assert!(status.status.success(), "{status:?}");
    tm.shutdown();
}

#[test]
fn a_username_on_the_unix_socket_makes_ctl_send_the_credentials() {
    let sandbox = Sandbox::new();
    let conf = conf_with(
        &sandbox,
        "",
        "[unix_http_server]\nfile=%(here)s/sv.sock\nusername=admin\n\
         password={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n\n\
         [supervisorctl]\nserverurl=unix://%(here)s/sv.sock\nusername=admin\npassword=thepassword\n",
    );
    let mut tm = run_in_sandbox(&sandbox, &conf, &["--no-shell"]);
    let socket = sandbox.file("sv.sock");
    wait_until("the control socket", TIMEOUT, || {
        socket.exists().then_some(())
    });
    let socket_arg = socket.to_str().expect("UTF-8 path");
    let conf_arg = conf.to_str().expect("UTF-8 path");
    // With -c, ctl takes [supervisorctl]'s username and password.
    let status = wait_until("web RUNNING through ctl -c", TIMEOUT, || {
        let output = ctl(&sandbox, &["-c", conf_arg, "status", "web"]);
        String::from_utf8_lossy(&output.stdout)
            .contains("RUNNING")
            .then_some(output)
    });
    assert!(status.status.success(), "{status:?}");
    // With -s alone, it has none: refused, with the way out.
    let refused = ctl(&sandbox, &["-s", socket_arg, "status"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("-u USER -p"),
        "{stderr}"
    );
    let wrong = ctl(
        &sandbox,
        &["-s", socket_arg, "-u", "admin", "-p", "nope", "status"],
    );
    assert_eq!(wrong.status.code(), Some(1));
    let given = ctl(
        &sandbox,
        &[
            "-s",
            socket_arg,
            "-u",
            "admin",
            "-p",
            "thepassword",
            "status",
            "web",
        ],
    );
    assert!(given.status.success(), "{given:?}");
    tm.signal(rustix::process::Signal::TERM);
    assert!(tm.wait_exit(TIMEOUT).success());
}

/// A client that sends its body after its headers (Python's http.client, so supervisorctl)
/// gets its 401, not a connection closed under it: the refused request is read whole first.
#[test]
fn a_refused_request_is_read_whole_before_the_401() {
    use std::io::{Read, Write};
    let sandbox = Sandbox::new();
    let conf = conf_with(
        &sandbox,
        "",
        "[unix_http_server]\nfile=%(here)s/sv.sock\nusername=admin\npassword=secret\n",
    );
    let mut tm = run_in_sandbox(&sandbox, &conf, &["--no-shell"]);
    let socket = sandbox.file("sv.sock");
    wait_until("the control socket", TIMEOUT, || {
        socket.exists().then_some(())
    });
    let body = "<?xml version='1.0'?><methodCall><methodName>supervisor.getVersion</methodName>\
                <params></params></methodCall>";
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    // admin:wrong
    write!(
        stream,
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Basic YWRtaW46d3Jvbmc=\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("send the headers");
    // Time for a server that answers at once to answer and close: this pause only widens the
    // window in which the fault shows; the outcome decides.
    std::thread::sleep(std::time::Duration::from_millis(200));
    stream
        .write_all(body.as_bytes())
        .expect("the body is taken, not refused with a broken pipe");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    tm.signal(rustix::process::Signal::TERM);
    assert!(tm.wait_exit(TIMEOUT).success());
}

/// `minfds` raises RLIMIT_NOFILE at start, for taskmaster and its children; a limit that
/// cannot be had stops the start with the reason, as supervisord's does.
#[test]
fn minfds_raises_the_open_files_limit_or_refuses_to_start() {
    use rustix::process::{getrlimit, Resource};
    let Some(soft) = getrlimit(Resource::Nofile).current else {
        eprintln!("skipped: RLIMIT_NOFILE is unlimited here, nothing to raise");
        return;
    };
    // taskmaster starts 100 below this test's own soft limit, which it may raise back.
    let lowered = soft - 100;
    let sandbox = Sandbox::new();
    let conf = conf_with(&sandbox, &format!("minfds={soft}"), "");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("ulimit -S -n {lowered} && exec \"$0\" \"$@\""))
        .arg(taskmaster_bin())
        .args(["run", "-c"])
        .arg(&conf)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path())
        .env("TMPDIR", sandbox.path());
    let mut tm = Taskmaster::spawn(&sandbox, cmd);
    let web = tm.wait_for_state("web", "RUNNING", TIMEOUT);
    let pid = web.pid().expect("web's pid");
    tm.track(pid);
    tm.wait_for_log(
        &format!("RLIMIT_NOFILE raised from {lowered} to {soft} (minfds = {soft})"),
        TIMEOUT,
    );
    assert_eq!(
        open_files_limit(pid),
        Some(soft),
        "the child inherits minfds"
    );
    tm.shutdown();

    // More than the kernel allows anyone (fs.nr_open is at most 2^30).
    let conf = conf_with(&sandbox, "minfds=4294967295", "");
    let mut run = Command::new(taskmaster_bin());
    run.args(["run", "--no-shell", "-c"])
        .arg(&conf)
        .current_dir(sandbox.path())
        .env("TMPDIR", sandbox.path());
    let output = run_to_completion(run, TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "minfds = 4294967295 asks for RLIMIT_NOFILE of at least 4294967295, but its hard \
             limit is"
        ) && stderr.contains("taskmaster cannot raise it"),
        "{stderr}"
    );
}

/// Every example in examples/supervisord/ passes `check`, without an error or a warning (as
/// root: site.conf runs a program as nobody, which only root may).
#[test]
fn every_supervisord_example_is_clean_for_check() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: site.conf's user=nobody needs root to check (CI runs as root)");
        return;
    }
    let folder =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/supervisord");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).expect("read examples/supervisord") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        let mut check = Command::new(taskmaster_bin());
        check.args(["check", "-c"]).arg(&path);
        let output = run_to_completion(check, TIMEOUT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty(),
            "{}: {}\n{stderr}",
            path.display(),
            output.status
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} examples");
}
