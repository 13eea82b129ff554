//! supervisord INI files: the examples field by field, every option's mapping, every
//! expansion, supervisord's comment and continuation rules, every refusal with its place,
//! includes, format detection and the YAML round trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use taskmaster_config::ini::{self, Credentials, Host, IniConfig, Owner};
use taskmaster_config::{
    detect_format, to_yaml, AutoRestart, Config, ConfigErrors, FcgiSocket, Format, ProgramSpec,
    Signal, SocketAddress,
};

const FILE: &str = "/sv/t.conf";

/// The environment and host name the expansions see in these tests.
fn host() -> Host {
    Host {
        env: map(&[("HOME", "/home/ann"), ("APP", "shop"), ("EMPTY", "")]),
        node_name: Some("box".to_string()),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Result<IniConfig, ConfigErrors> {
    ini::parse(text, Path::new(FILE), &host())
}

fn read(text: &str) -> IniConfig {
    match parse(text) {
        Ok(config) => config,
        Err(e) => panic!("{text}\n---\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The warnings of a valid file, as printed.
fn warnings(text: &str) -> Vec<String> {
    read(text)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// supervisord's AUTO file of `web`'s `stream` as the test host names it: in /tmp (no TMPDIR
/// in its environment), with the default identifier and socket.
fn auto(stream: taskmaster_config::Stream) -> PathBuf {
    taskmaster_config::auto_log_path(
        Path::new("/tmp"),
        "web",
        stream,
        "supervisor",
        Path::new("/sv/taskmaster.sock"),
    )
}

/// `[program:web]` with `command=run`, then `fields` from line 3 on.
fn program_text(fields: &str) -> String {
    format!("[program:web]\ncommand=run\n{fields}")
}

fn program(fields: &str) -> ProgramSpec {
    let mut config = read(&program_text(fields)).config;
    match config.programs.remove("web") {
        Some(spec) => spec,
        None => panic!("no program web"),
    }
}

fn program_errors(fields: &str) -> Vec<String> {
    errors(&program_text(fields))
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/supervisord")
        .join(name)
}

/// The examples' folder as `%(here)s` gives it: absolute, without `..`.
fn examples_here() -> PathBuf {
    let mut here = PathBuf::new();
    for component in example("").components() {
        match component {
            std::path::Component::ParentDir => {
                here.pop();
            }
            other => here.push(other),
        }
    }
    here
}

fn load_example(name: &str) -> IniConfig {
    match ini::load(&example(name), &host()) {
        Ok(config) => config,
        Err(e) => panic!("{name}:\n{e}"),
    }
}

// ---- the examples ---------------------------------------------------------------------------

#[test]
fn webapp_example_gives_web_workers_and_beat_with_every_value_written() {
    let ini = load_example("webapp.conf");
    let config = &ini.config;
    let names: Vec<&str> = config.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["beat", "web", "worker"]);
    assert_eq!(config.logfile, PathBuf::from("/tmp/taskmaster-webapp.log"));
    let here = examples_here().display().to_string();
    let global = [("APP_ENV", "production"), ("APP_ROOT", here.as_str())];

    let web = &config.programs["web"];
    assert_eq!(
        web.cmd,
        "sh -c 'echo \"web: listening on 127.0.0.1:$PORT (production)\"; exec sleep 3600'"
    );
    assert_eq!(
        web.argv,
        [
            "sh",
            "-c",
            "echo \"web: listening on 127.0.0.1:$PORT (production)\"; exec sleep 3600"
        ]
    );
    assert_eq!(web.numprocs, 1);
    assert_eq!(web.process_names(), ["web"]);
    assert!(web.autostart);
    assert_eq!(web.autorestart, AutoRestart::Always);
    assert_eq!(web.exitcodes, [0]);
    assert_eq!(web.starttime, Duration::from_secs(2));
    assert_eq!(web.startretries, 5);
    assert_eq!(web.stopsignal, Signal::INT);
    assert_eq!(web.stoptime, Duration::from_secs(30));
    assert_eq!(web.stdout, Some(PathBuf::from("/tmp/webapp-web.log")));
    assert_eq!(web.stderr, web.stdout, "redirect_stderr");
    assert_eq!(web.workingdir, Some(PathBuf::from("/tmp")));
    assert_eq!(web.umask, None);
    let mut env = map(&global);
    env.extend(map(&[
        ("PORT", "8000"),
        ("WORKERS", "4"),
        ("DATABASE_URL", "postgres://app@localhost/app"),
    ]));
    assert_eq!(web.env, env);

    let worker = &config.programs["worker"];
    assert_eq!(
        worker.argv,
        [
            "sh",
            "-c",
            "while true; do echo \"worker: polling the queue\"; sleep 5; done"
        ]
    );
    assert_eq!(worker.numprocs, 3);
    assert_eq!(
        worker.process_names(),
        ["worker_00", "worker_01", "worker_02"]
    );
    assert_eq!(worker.autorestart, AutoRestart::Unexpected);
    assert_eq!(worker.exitcodes, [0, 2]);
    assert_eq!(worker.starttime, Duration::from_secs(1));
    assert_eq!(worker.startretries, 3);
    assert_eq!(worker.stopsignal, Signal::TERM);
    assert_eq!(worker.stoptime, Duration::from_secs(60));
    assert_eq!(worker.stdout, Some(PathBuf::from("/tmp/webapp-worker.log")));
    assert_eq!(worker.stderr, Some(PathBuf::from("/tmp/webapp-worker.err")));
    assert_eq!(worker.umask, Some(0o22));
    assert_eq!(worker.workingdir, None);
    let mut env = map(&global);
    env.insert("QUEUE".into(), "default;high".into());
    assert_eq!(worker.env, env);

    let beat = &config.programs["beat"];
    assert_eq!(beat.argv, ["sleep", "3600"]);
    assert!(!beat.autostart);
    assert_eq!(beat.autorestart, AutoRestart::Never);
    assert_eq!(beat.starttime, Duration::ZERO);
    assert_eq!(beat.stdout, None);
    assert_eq!(beat.stderr, None);
    assert_eq!(beat.env, map(&global));

    assert_eq!(
        ini.priorities,
        [("beat", 999), ("web", 100), ("worker", 200)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>()
    );
    let server = ini.unix_http_server.expect("unix_http_server");
    assert_eq!(server.file, PathBuf::from("/tmp/taskmaster-webapp.sock"));
    assert_eq!(server.chmod, 0o700);
    assert_eq!(server.chown, None);
    assert_eq!(
        server.credentials,
        Some(Credentials {
            username: "admin".into(),
            password: "{SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d".into()
        })
    );
    assert_eq!(ini.inet_http_server, None);
    let ctl = ini.supervisorctl.expect("supervisorctl");
    assert_eq!(
        ctl.serverurl.as_deref(),
        Some("unix:///tmp/taskmaster-webapp.sock")
    );
    assert_eq!(ctl.username.as_deref(), Some("admin"));
    assert_eq!(ctl.password.as_deref(), Some("thepassword"));
}

#[test]
fn pool_example_gives_eight_processes_named_as_taskmaster_names_them() {
    let ini = load_example("pool.conf");
    let here = examples_here();
    assert_eq!(ini.config.logfile, here.join("pool.log"));
    let pool = &ini.config.programs["pool"];
    assert_eq!(pool.numprocs, 8);
    assert_eq!(
        pool.process_names(),
        (0..8).map(|i| format!("pool_{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(
        pool.argv,
        [
            "sh",
            "-c",
            "echo \"pool of 8 started on box\"; exec sleep 3600"
        ]
    );
    assert!(pool.autostart);
    assert_eq!(pool.autorestart, AutoRestart::Always);
    assert_eq!(pool.starttime, Duration::ZERO);
    assert_eq!(pool.startretries, 10);
    assert_eq!(pool.stopsignal, Signal::QUIT);
    assert_eq!(pool.stoptime, Duration::from_secs(5));
    let dir = example("");
    assert_eq!(pool.stdout, Some(dir.join("logs/pool.log")));
    assert_eq!(pool.stderr, Some(dir.join("logs/pool.err")));
    assert_eq!(pool.env, map(&[("POOL_SIZE", "8"), ("POOL", "pool")]));
    assert_eq!(ini.priorities["pool"], 999);
    assert_eq!(ini.unix_http_server, None);
    assert_eq!(ini.supervisorctl, None);
}

#[test]
fn main_example_includes_conf_d_files_with_their_own_here_and_folder() {
    let ini = load_example("supervisord.conf");
    let here = examples_here();
    let config = &ini.config;
    assert_eq!(config.path, example("supervisord.conf"));
    assert_eq!(config.logfile, PathBuf::from("/tmp/taskmaster-main.log"));
    let names: Vec<&str> = config.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["api", "cron"]);

    let api = &config.programs["api"];
    let conf_d = here.join("conf.d");
    assert_eq!(
        api.argv,
        [
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "echo \"api: serving from {}\"; exec sleep 3600",
                conf_d.display()
            )
        ]
    );
    assert_eq!(api.workingdir, Some(conf_d.clone()));
    assert_eq!(api.stdout, Some(example("conf.d/api.log")));
    assert_eq!(api.stderr, Some(example("conf.d/api.err")));
    assert_eq!(api.autorestart, AutoRestart::Unexpected);
    assert_eq!(api.exitcodes, [0]);
    assert_eq!(api.stoptime, Duration::from_secs(15));
    assert_eq!(api.env, map(&[("API_PORT", "9100")]));

    let cron = &config.programs["cron"];
    assert_eq!(
        cron.argv,
        ["sh", "-c", "while sleep 60; do echo tick; done"]
    );
    assert_eq!(cron.autorestart, AutoRestart::Always);
    assert_eq!(cron.starttime, Duration::ZERO);
    assert_eq!(cron.stopsignal, Signal::HUP);
    assert_eq!(cron.stoptime, Duration::from_secs(2));
    assert_eq!(cron.stdout, None);
    assert_eq!(cron.stderr, None, "redirected into a discarded stdout");
    assert_eq!(ini.priorities["cron"], 50);
    assert_eq!(ini.priorities["api"], 999);

    let server = ini.unix_http_server.expect("unix_http_server");
    assert_eq!(server.file, here.join("taskmaster.sock"));
    assert_eq!(server.chmod, 0o770);
    assert_eq!(
        server.chown,
        Some(Owner {
            user: "nobody".into(),
            group: Some("nogroup".into())
        })
    );
    assert_eq!(server.credentials, None);
    let inet = ini.inet_http_server.expect("inet_http_server");
    assert_eq!(inet.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(inet.port, 9001);
    let ctl = ini.supervisorctl.expect("supervisorctl");
    assert_eq!(
        ctl.serverurl,
        Some(format!("unix://{}/taskmaster.sock", here.display()))
    );
    assert_eq!(ctl.prompt.as_deref(), Some("main"));
}

#[test]
fn config_load_reads_the_examples_as_ini() {
    for name in ["webapp.conf", "pool.conf", "supervisord.conf"] {
        let path = example(name);
        let loaded = match Config::load(&path) {
            Ok(config) => config,
            Err(e) => panic!("{name}:\n{e}"),
        };
        // Only pool.conf uses %(host_node_name)s, which differs from the test host's.
        if name != "pool.conf" {
            assert_eq!(loaded, load_example(name).config, "{name}");
        }
    }
}

// ---- defaults -------------------------------------------------------------------------------

#[test]
fn a_program_with_only_a_command_gets_supervisords_defaults() {
    let spec = program("");
    assert_eq!(spec.name, "web");
    assert_eq!(spec.cmd, "run");
    assert_eq!(spec.argv, ["run"]);
    assert_eq!(spec.numprocs, 1);
    assert!(spec.autostart);
    assert_eq!(spec.autorestart, AutoRestart::Unexpected);
    assert_eq!(spec.exitcodes, [0]);
    assert_eq!(spec.starttime, Duration::from_secs(1));
    assert_eq!(spec.startretries, 3);
    assert_eq!(spec.stopsignal, Signal::TERM);
    assert_eq!(spec.stoptime, Duration::from_secs(10));
    // supervisord's AUTO: a file in childlogdir (the temporary folder) for each stream.
    let stdout = auto(taskmaster_config::Stream::Stdout);
    let name = stdout.file_name().map(|n| n.to_string_lossy().into_owned());
    assert!(
        name.as_deref()
            .is_some_and(|n| n.starts_with("web-stdout---supervisor-") && n.ends_with(".log")),
        "{name:?}"
    );
    assert_eq!(spec.stdout, Some(stdout));
    assert_eq!(spec.stderr, Some(auto(taskmaster_config::Stream::Stderr)));
    assert!(spec.env.is_empty());
    assert_eq!(spec.workingdir, None);
    assert_eq!(spec.umask, None);
    assert_eq!(
        spec.stdin,
        taskmaster_config::Stdin::Pipe,
        "supervisord gives every child a stdin pipe"
    );
    assert_eq!(
        spec.backoff.as_deref(),
        Some(&taskmaster_config::Backoff::THROTTLE),
        "a crash loop is throttled as in YAML, though supervisord has no such option"
    );
    let ini = read(&program_text(""));
    assert_eq!(ini.priorities["web"], 999);
    assert_eq!(ini.config.logfile, PathBuf::from("/sv/supervisord.log"));
    assert_eq!(ini.unix_http_server, None);
    assert_eq!(ini.inet_http_server, None);
    assert_eq!(ini.supervisorctl, None);
    assert_eq!(ini.warnings, []);
    assert_eq!(
        *ini.config.daemon,
        taskmaster_config::DaemonSettings {
            auto_logs: [
                auto(taskmaster_config::Stream::Stdout),
                auto(taskmaster_config::Stream::Stderr),
            ]
            .into(),
            childlogdir: Some(PathBuf::from("/tmp")),
            ..Default::default()
        }
    );
    assert_eq!(
        ini.config.daemon.socket_access,
        taskmaster_config::SocketAccess::default()
    );
}

#[test]
fn a_file_without_programs_or_without_supervisord_section_is_valid() {
    for text in [
        "",
        "; nothing\n",
        "[supervisord]\n",
        "[program:a]\ncommand=x\n",
    ] {
        assert!(parse(text).is_ok(), "{text:?}");
    }
}

// ---- every option ---------------------------------------------------------------------------

#[test]
fn command_is_expanded_then_split_like_the_yaml_cmd() {
    let spec = read("[program:web]\ncommand=/bin/sh -c \"echo 'a b'\" %(program_name)s\n")
        .config
        .programs
        .remove("web")
        .unwrap();
    assert_eq!(spec.cmd, "/bin/sh -c \"echo 'a b'\" web");
    assert_eq!(spec.argv, ["/bin/sh", "-c", "echo 'a b'", "web"]);
}

#[test]
fn command_is_required_and_must_split() {
    assert_eq!(
        errors("[program:web]\nautostart=true\n"),
        ["/sv/t.conf:1:1: program:web: missing required option \"command\""]
    );
    assert_eq!(
        errors("[program:web]\ncommand=sh -c 'oops\n"),
        ["/sv/t.conf:2:9: program:web.command: cannot split \"sh -c 'oops\" into words: missing closing quote"]
    );
    assert_eq!(
        errors("[program:web]\ncommand=\n"),
        ["/sv/t.conf:2:9: program:web.command: expected a command, found \"\""]
    );
}

#[test]
fn autostart_takes_supervisords_booleans() {
    for (text, expected) in [
        ("true", true),
        ("yes", true),
        ("on", true),
        ("1", true),
        ("TRUE", true),
        ("false", false),
        ("no", false),
        ("off", false),
        ("0", false),
    ] {
        assert_eq!(
            program(&format!("autostart={text}\n")).autostart,
            expected,
            "{text}"
        );
    }
    assert_eq!(
        program_errors("autostart=maybe\n"),
        ["/sv/t.conf:3:11: program:web.autostart: expected true or false (or yes/no, on/off, 1/0), found \"maybe\""]
    );
}

#[test]
fn autorestart_takes_true_false_and_unexpected() {
    for (text, expected) in [
        ("true", AutoRestart::Always),
        ("1", AutoRestart::Always),
        ("false", AutoRestart::Never),
        ("off", AutoRestart::Never),
        ("unexpected", AutoRestart::Unexpected),
        ("UNEXPECTED", AutoRestart::Unexpected),
    ] {
        assert_eq!(
            program(&format!("autorestart={text}\n")).autorestart,
            expected,
            "{text}"
        );
    }
    assert_eq!(
        program_errors("autorestart=unexpectd\n"),
        ["/sv/t.conf:3:13: program:web.autorestart: expected always, never or unexpected (or true/false), found \"unexpectd\" (did you mean \"unexpected\"?)"]
    );
}

#[test]
fn startsecs_and_stopwaitsecs_become_starttime_and_stoptime() {
    let spec = program("startsecs=0\nstopwaitsecs=30\n");
    assert_eq!(spec.starttime, Duration::ZERO);
    assert_eq!(spec.stoptime, Duration::from_secs(30));
    // taskmaster's durations are accepted too.
    let spec = program("startsecs=1.5\nstopwaitsecs=500ms\n");
    assert_eq!(spec.starttime, Duration::from_millis(1500));
    assert_eq!(spec.stoptime, Duration::from_millis(500));
    assert_eq!(
        program_errors("startsecs=-1\nstopwaitsecs=ten\n"),
        [
            "/sv/t.conf:3:11: program:web.startsecs: invalid duration \"-1\": must not be negative",
            "/sv/t.conf:4:14: program:web.stopwaitsecs: invalid duration \"ten\": expected a number of seconds such as 1 or 1.5, or a number with a unit ms, s, m or h such as 500ms",
        ]
    );
}

#[test]
fn startretries_is_an_integer_from_zero() {
    assert_eq!(program("startretries=0\n").startretries, 0);
    assert_eq!(program("startretries=7\n").startretries, 7);
    assert_eq!(
        program_errors("startretries=-1\n"),
        ["/sv/t.conf:3:14: program:web.startretries: expected an integer >= 0, found \"-1\""]
    );
}

#[test]
fn exitcodes_are_a_comma_separated_list_and_nothing_means_none() {
    assert_eq!(program("exitcodes=0,2\n").exitcodes, [0, 2]);
    assert_eq!(program("exitcodes= 1 , 3 ,255\n").exitcodes, [1, 3, 255]);
    assert_eq!(program("exitcodes=\n").exitcodes, Vec::<i32>::new());
    assert_eq!(
        program_errors("exitcodes=0, 256,x\n"),
        [
            "/sv/t.conf:3:14: program:web.exitcodes: expected an exit code from 0 to 255, found \"256\"",
            "/sv/t.conf:3:18: program:web.exitcodes: expected an exit code from 0 to 255, found \"x\"",
        ]
    );
}

#[test]
fn stopsignal_takes_names_and_numbers() {
    for text in ["INT", "SIGINT", "int", "2"] {
        assert_eq!(
            program(&format!("stopsignal={text}\n")).stopsignal,
            Signal::INT,
            "{text}"
        );
    }
    assert_eq!(program("stopsignal=USR1\n").stopsignal, Signal::USR1);
    assert_eq!(
        program_errors("stopsignal=TERMM\n"),
        ["/sv/t.conf:3:12: program:web.stopsignal: unknown signal \"TERMM\" (did you mean TERM?)"]
    );
}

#[test]
fn stopasgroup_and_killasgroup_are_accepted_true_and_refused_false() {
    let spec = program("stopasgroup=true\nkillasgroup=true\n");
    assert_eq!(spec, program(""));
    assert_eq!(
        program_errors("stopasgroup=false\nkillasgroup=0\n"),
        [
            "/sv/t.conf:3:13: program:web.stopasgroup: taskmaster always sends stopsignal to the whole process group of the program, as supervisord does with stopasgroup = true; remove this line or set it to true",
            "/sv/t.conf:4:13: program:web.killasgroup: taskmaster always sends SIGKILL to the whole process group of the program, as supervisord does with killasgroup = true; remove this line or set it to true",
        ]
    );
}

#[test]
fn stdout_and_stderr_logfiles_are_paths_none_or_off() {
    let spec = program("stdout_logfile=out.log\nstderr_logfile=/var/log/err.log\n");
    assert_eq!(spec.stdout, Some(PathBuf::from("/sv/out.log")));
    assert_eq!(spec.stderr, Some(PathBuf::from("/var/log/err.log")));
    for none in ["NONE", "none", "OFF", "off"] {
        let spec = program(&format!("stdout_logfile={none}\nstderr_logfile={none}\n"));
        assert_eq!((spec.stdout, spec.stderr), (None, None), "{none}");
    }
    let spec = program("stdout_logfile=~/logs/web.log\n");
    assert_eq!(spec.stdout, Some(PathBuf::from("/home/ann/logs/web.log")));
}

#[test]
fn auto_logfiles_go_to_childlogdir_named_as_supervisord_names_them() {
    use taskmaster_config::Stream;
    let spec = program("stdout_logfile=AUTO\nstderr_logfile=auto\n");
    assert_eq!(spec.stdout, Some(auto(Stream::Stdout)));
    assert_eq!(spec.stderr, Some(auto(Stream::Stderr)));
    let text = "\
[supervisord]
childlogdir=%(here)s/logs
identifier=shop

[unix_http_server]
file=/run/shop.sock

[program:web]
command=run
redirect_stderr=true
";
    let config = read(text).config;
    let expected = taskmaster_config::auto_log_path(
        Path::new("/sv/logs"),
        "web",
        Stream::Stdout,
        "shop",
        Path::new("/run/shop.sock"),
    );
    assert!(expected
        .to_string_lossy()
        .starts_with("/sv/logs/web-stdout---shop-"));
    let spec = &config.programs["web"];
    assert_eq!(spec.stdout.as_ref(), Some(&expected));
    assert_eq!(
        spec.stderr.as_ref(),
        Some(&expected),
        "redirected into stdout's"
    );
    assert_eq!(config.daemon.auto_logs, [expected.clone()].into());
    assert_eq!(config.daemon.childlogdir, Some(PathBuf::from("/sv/logs")));
    // The temporary folder is Python's gettempdir(): $TMPDIR first.
    let mut host = host();
    host.env
        .insert("TMPDIR".to_string(), "/scratch".to_string());
    let config = ini::parse(&program_text(""), Path::new(FILE), &host)
        .expect("valid")
        .config;
    let stdout = config.programs["web"].stdout.clone().unwrap_or_default();
    assert!(stdout.starts_with("/scratch"), "{stdout:?}");
    // A file that grows without end is worth a word, as supervisord says too.
    assert_eq!(
        warnings(&program_text("stdout_logfile_maxbytes=0\nstderr_logfile=NONE\n")),
        ["/sv/t.conf:1:1: program:web: stdout_logfile is AUTO (supervisord's default) and stdout_logfile_maxbytes is 0: the file in /tmp grows without end while taskmaster runs, as supervisord warns too; set maxbytes > 0"]
    );
}

#[test]
fn tilde_user_is_refused() {
    assert_eq!(
        program_errors("stdout_logfile=~bob/web.log\n"),
        ["/sv/t.conf:3:16: program:web.stdout_logfile: \"~bob/web.log\": ~user is not supported; write the folder in full"]
    );
}

#[test]
fn syslog_options_send_the_lines_to_dev_log_beside_the_file() {
    let dev_log = || Some(PathBuf::from("/dev/log"));
    // supervisord 4: the file and syslog both.
    let spec =
        program("stdout_logfile=o\nstdout_syslog=true\nstderr_logfile=e\nstderr_syslog=yes\n");
    assert_eq!(spec.stdout, Some(PathBuf::from("/sv/o")));
    assert_eq!(spec.stdout_syslog, dev_log());
    assert_eq!(spec.stderr, Some(PathBuf::from("/sv/e")));
    assert_eq!(spec.stderr_syslog, dev_log());
    // supervisord 3's magic file name, in any case: syslog and no file.
    let spec = program("stdout_logfile=syslog\nstderr_logfile=SYSLOG\n");
    assert_eq!((spec.stdout, spec.stdout_syslog), (None, dev_log()));
    assert_eq!((spec.stderr, spec.stderr_syslog), (None, dev_log()));
    // With redirect_stderr, stderr goes where stdout goes.
    let spec = program("redirect_stderr=true\nstdout_logfile=NONE\nstdout_syslog=true\n");
    assert_eq!((spec.stderr, spec.stderr_syslog), (None, dev_log()));
    let text = program_text("redirect_stderr=true\nstdout_logfile=NONE\nstderr_syslog=true\n");
    assert_eq!(read(&text).config.programs["web"].stderr_syslog, None);
    assert_eq!(
        warnings(&text),
        ["/sv/t.conf:5:15: program:web.stderr_syslog: ignored beside redirect_stderr = true, as supervisord ignores it: standard error goes where stdout goes"]
    );
    // The YAML says the same.
    let config = read(&program_text(
        "stdout_logfile=o\nstdout_syslog=true\nstderr_logfile=syslog\n",
    ))
    .config;
    let yaml = to_yaml(&config);
    assert!(yaml.contains("    stdout_syslog: true\n"), "{yaml}");
    assert!(yaml.contains("    stderr: syslog\n"), "{yaml}");
    let back = Config::parse(&yaml, Path::new("/elsewhere/t.yaml")).expect("the YAML reads back");
    assert_eq!(back.programs, config.programs);
}

#[test]
fn redirect_stderr_sends_stderr_to_the_stdout_file() {
    let spec = program("redirect_stderr=true\nstdout_logfile=/l/out.log\n");
    assert_eq!(spec.stdout, Some(PathBuf::from("/l/out.log")));
    assert_eq!(spec.stderr, Some(PathBuf::from("/l/out.log")));
    let spec = program("redirect_stderr=true\nstdout_logfile=NONE\n");
    assert_eq!((spec.stdout, spec.stderr), (None, None));
    let spec = program("redirect_stderr=true\n");
    let stdout = auto(taskmaster_config::Stream::Stdout);
    assert_eq!(
        (spec.stdout, spec.stderr),
        (Some(stdout.clone()), Some(stdout))
    );
    let spec = program("redirect_stderr=true\nstdout_logfile=o\nstderr_logfile=NONE\n");
    assert_eq!(spec.stderr, Some(PathBuf::from("/sv/o")));
    let spec = program("redirect_stderr=false\nstdout_logfile=o\nstderr_logfile=e\n");
    assert_eq!(spec.stderr, Some(PathBuf::from("/sv/e")));
    // supervisord ignores stderr_logfile then, and says so in its log: a warning here.
    let text = program_text("redirect_stderr=true\nstdout_logfile=o\nstderr_logfile=e\n");
    assert_eq!(
        read(&text).config.programs["web"].stderr,
        Some(PathBuf::from("/sv/o"))
    );
    assert_eq!(
        warnings(&text),
        ["/sv/t.conf:5:16: program:web.stderr_logfile: ignored beside redirect_stderr = true, as supervisord ignores it: standard error goes to stdout's file"]
    );
}

#[test]
fn environment_uses_supervisords_quoting_over_the_global_environment() {
    let text = "\
[supervisord]
environment=LANG=C,SHARED=\"global\"

[program:web]
command=run
environment=SHARED='mine',A=\"x, y\",B=/usr/bin:/bin,C=\"\",D=a\\ b
";
    let spec = read(text).config.programs.remove("web").unwrap();
    assert_eq!(
        spec.env,
        map(&[
            ("LANG", "C"),
            ("SHARED", "mine"),
            ("A", "x, y"),
            ("B", "/usr/bin:/bin"),
            ("C", ""),
            ("D", "a b"),
        ])
    );
}

#[test]
fn environment_refuses_what_supervisord_would_misread_at_its_place() {
    assert_eq!(
        program_errors("environment=URL=http://x?y=1\n"),
        ["/sv/t.conf:3:25: program:web.environment: expected \",\" after the value of URL, found '?' (quote values that hold characters other than letters, digits and _ / . + - ( ) :, as in KEY=\"a value\")"]
    );
    assert_eq!(
        program_errors("environment=A=1 B=2\n"),
        ["/sv/t.conf:3:17: program:web.environment: expected \",\" after the value of A, found \"B\" (pairs are separated by commas)"]
    );
    assert_eq!(
        program_errors("environment=A=1,A=2\n"),
        ["/sv/t.conf:3:17: program:web.environment: variable A is given twice"]
    );
    assert_eq!(
        program_errors("environment=A=\"unclosed\n"),
        ["/sv/t.conf:3:15: program:web.environment: missing closing quote"]
    );
}

#[test]
fn directory_becomes_workingdir_resolved_against_the_files_folder() {
    assert_eq!(
        program("directory=/srv/app\n").workingdir,
        Some(PathBuf::from("/srv/app"))
    );
    assert_eq!(
        program("directory=app\n").workingdir,
        Some(PathBuf::from("/sv/app"))
    );
    assert_eq!(
        program_errors("directory=\n"),
        ["/sv/t.conf:3:11: program:web.directory: expected a path, found \"\""]
    );
}

#[test]
fn umask_is_octal() {
    assert_eq!(program("umask=022\n").umask, Some(0o22));
    assert_eq!(program("umask=0o77\n").umask, Some(0o77));
    assert_eq!(program("umask=777\n").umask, Some(0o777));
    assert_eq!(
        program_errors("umask=089\n"),
        ["/sv/t.conf:3:7: program:web.umask: expected an octal umask from 000 to 777 such as 022, found \"089\""]
    );
}

#[test]
fn priority_is_a_signed_integer_handed_back_beside_the_config() {
    let ini = read("[program:a]\ncommand=x\npriority=-5\n[program:b]\ncommand=x\npriority=100\n");
    assert_eq!(ini.priorities["a"], -5);
    assert_eq!(ini.priorities["b"], 100);
    assert_eq!(
        program_errors("priority=high\n"),
        ["/sv/t.conf:3:10: program:web.priority: expected an integer from -2147483648 to 2147483647, found \"high\""]
    );
}

#[test]
fn numprocs_needs_process_num_in_process_name() {
    let spec = program("numprocs=3\nprocess_name=%(program_name)s_%(process_num)02d\n");
    assert_eq!(spec.numprocs, 3);
    assert_eq!(spec.process_names(), ["web_00", "web_01", "web_02"]);
    let spec = program("numprocs=2\nprocess_name=%(group_name)s_%(process_num)02d\n");
    assert_eq!(spec.process_names(), ["web_00", "web_01"]);
    // supervisord refuses it too: every process would be named "web".
    assert_eq!(
        program_errors("numprocs=2\n"),
        [
            "/sv/t.conf:1:1: program:web: processes 0 and 1 of web are both named \"web\": process_name must tell them apart (use %(process_num)d in it)",
            "/sv/t.conf:3:1: program:web.numprocs: with numprocs > 1, process_name must use %(process_num) to tell the processes apart (as supervisord requires), such as process_name = %(program_name)s_%(process_num)02d",
        ]
    );
    assert_eq!(
        program_errors("numprocs=0\n"),
        ["/sv/t.conf:3:10: program:web.numprocs: expected an integer >= 1, found \"0\""]
    );
}

#[test]
fn any_process_name_pattern_names_the_processes() {
    assert_eq!(
        program("process_name=%(program_name)s\n").process_names(),
        ["web"]
    );
    let spec = program("numprocs=2\nprocess_name=%(program_name)s-%(process_num)d\n");
    assert_eq!(spec.process_names(), ["web-0", "web-1"]);
    assert_eq!(spec.full_name("web-0"), "web:web-0");
    // One process named otherwise than its program is addressed in its group, as supervisorctl
    // shows it.
    let spec = program("process_name=worker\n");
    assert_eq!(spec.process_names(), ["worker"]);
    assert_eq!(spec.full_name("worker"), "web:worker");
    assert_eq!(
        program_errors("numprocs=2\nprocess_name=w/%(process_num)d\n"),
        ["/sv/t.conf:4:14: program:web.process_name: process 0 gets an invalid name \"w/0\": a name is not empty and holds no space, \":\" (which separates a group from its process), \"/\" or control character, as supervisord's"]
    );
}

#[test]
fn numprocs_start_numbers_the_first_process() {
    // One process: process_num is simply 5.
    let text = "[program:web]\nnumprocs_start=5\ncommand=run --port=80%(process_num)02d\n";
    let spec = read(text).config.programs.remove("web").unwrap();
    assert_eq!(spec.argv, ["run", "--port=8005"]);
    assert_eq!(spec.numprocs_start, 5);
    let spec =
        program("numprocs=2\nnumprocs_start=1\nprocess_name=%(program_name)s_%(process_num)02d\n");
    assert_eq!(spec.process_names(), ["web_01", "web_02"]);
    let nums: Vec<u32> = spec.processes.iter().map(|p| p.num).collect();
    assert_eq!(nums, [1, 2]);
}

#[test]
fn log_options_are_accepted_only_with_the_values_taskmaster_honours() {
    let accepted = "\
stdout_capture_maxbytes=0
stderr_capture_maxbytes=0
stdout_events_enabled=false
stderr_events_enabled=0
stdout_syslog=false
stderr_syslog=no
serverurl=AUTO
";
    assert_eq!(program(accepted), program(""));
    // Rotation is supervisord's: the sizes and counts are taken as they are.
    let rotated = program(
        "stdout_logfile_maxbytes=1MB\nstdout_logfile_backups=3\nstderr_logfile_maxbytes=0\n",
    );
    assert_eq!(
        rotated.stdout_rotation,
        taskmaster_config::Rotation {
            maxbytes: 1 << 20,
            backups: 3
        }
    );
    assert_eq!(rotated.stderr_rotation.maxbytes, 0);
    assert_eq!(
        program_errors(
            "stdout_logfile_maxbytes=lots\n\
             stdout_capture_maxbytes=1KB\nstdout_events_enabled=true\nstderr_syslog=maybe\n"
        ),
        [
            "/sv/t.conf:3:25: program:web.stdout_logfile_maxbytes: expected a size such as 0, 1024 or 50MB, found \"lots\"",
            "/sv/t.conf:6:15: program:web.stderr_syslog: expected true or false (or yes/no, on/off, 1/0), found \"maybe\"",
        ]
    );
}

#[test]
fn events_and_capture_options_say_what_each_stream_tells_listeners() {
    let spec = program(
        "stdout_events_enabled=true\nstdout_capture_maxbytes=1KB\nstderr_events_enabled=1\n",
    );
    assert_eq!(
        (spec.stdout_events.log, spec.stdout_events.capture_maxbytes),
        (true, 1024)
    );
    assert!(spec.stderr_events.log);
    // With redirect_stderr, standard error is in stdout's pipe, and says what stdout says.
    let redirected = program("redirect_stderr=true\nstdout_events_enabled=true\n");
    assert!(redirected.stderr_events.log);
    assert_eq!(
        program_errors("stdout_events_enabled=true\nstdout_syslog=true\n"),
        ["/sv/t.conf:1:1: program:web: stdout is sent to syslog and read for event listeners (stdout_events_enabled or stdout_capture_maxbytes): taskmaster does one or the other with a stream; choose one"]
    );
}

#[test]
fn serverurl_is_the_programs_own_unless_auto() {
    assert_eq!(program("").serverurl, None);
    assert_eq!(program("serverurl = auto\n").serverurl, None);
    let spec = program("serverurl=http://127.0.0.1:9001\n");
    assert_eq!(spec.serverurl.as_deref(), Some("http://127.0.0.1:9001"));
    // Each process runs with it.
    assert_eq!(
        spec.processes[0].spec.serverurl.as_deref(),
        Some("http://127.0.0.1:9001")
    );
    // Expanded as supervisord expands it.
    let spec = program("serverurl=unix://%(here)s/%(program_name)s.sock\n");
    assert_eq!(spec.serverurl.as_deref(), Some("unix:///sv/web.sock"));
}

#[test]
fn option_names_are_case_insensitive_as_in_supervisord() {
    let spec = read("[program:web]\nCommand = run\nAutoStart : false\n")
        .config
        .programs
        .remove("web")
        .unwrap();
    assert_eq!(spec.argv, ["run"]);
    assert!(!spec.autostart);
}

#[test]
fn program_names_follow_taskmasters_rules_and_may_not_clash() {
    assert!(read("[program: web ]\ncommand=x\n")
        .config
        .programs
        .contains_key("web"));
    assert_eq!(
        errors("[program:a b]\ncommand=x\n"),
        ["/sv/t.conf:1:1: program:a b: invalid program name \"a b\": a name is not empty and holds no space, \":\" (which separates a group from its process), \"/\" or control character, as supervisord's"]
    );
    assert_eq!(
        errors("[program:web]\ncommand=x\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\n[program:web_01]\ncommand=x\n"),
        ["/sv/t.conf:5:1: program:web_01: process name \"web_01\" is also a process of program \"web\""]
    );
}

// ---- expansions -----------------------------------------------------------------------------

#[test]
fn every_expansion_is_replaced() {
    let text = "\
[program:web]
command=run %(program_name)s %(group_name)s %(here)s %(host_node_name)s %(ENV_APP)s [%(ENV_EMPTY)s] %(process_num)d %(numprocs)d 100%%
";
    let spec = read(text).config.programs.remove("web").unwrap();
    assert_eq!(spec.cmd, "run web web /sv box shop [] 0 1 100%");
}

#[test]
fn here_is_the_folder_of_the_file_absolute_and_normalized() {
    let ini = ini::parse(
        "[program:web]\ncommand=run %(here)s\n",
        Path::new("/a/./b/../c/t.conf"),
        &host(),
    )
    .unwrap();
    assert_eq!(ini.config.programs["web"].argv, ["run", "/a/c"]);
}

#[test]
fn env_expansions_see_the_global_then_the_programs_own_environment() {
    let text = "\
[supervisord]
environment=ROOT=/srv
logfile=%(ENV_HOME)s/sv.log

[program:web]
environment=PORT=80%(process_num)02d
command=run --root %(ENV_ROOT)s --port %(ENV_PORT)s
directory=%(ENV_ROOT)s/web
stdout_logfile=%(ENV_ROOT)s/%(program_name)s-%(ENV_PORT)s.log
";
    let ini = read(text);
    assert_eq!(ini.config.logfile, PathBuf::from("/home/ann/sv.log"));
    let web = &ini.config.programs["web"];
    assert_eq!(web.argv, ["run", "--root", "/srv", "--port", "8000"]);
    assert_eq!(web.workingdir, Some(PathBuf::from("/srv/web")));
    assert_eq!(web.stdout, Some(PathBuf::from("/srv/web-8000.log")));
}

#[test]
fn a_missing_environment_variable_is_an_error_naming_it() {
    assert_eq!(
        program_errors("directory=/x/%(ENV_NOPE)s\n"),
        ["/sv/t.conf:3:14: program:web.directory: environment variable NOPE is not set (for %(ENV_NOPE)s)"]
    );
    // The [supervisord] section sees taskmaster's environment only, as in supervisord.
    assert_eq!(
        errors("[supervisord]\nenvironment=A=1\nlogfile=%(ENV_A)s\n"),
        ["/sv/t.conf:3:9: supervisord.logfile: environment variable A is not set (for %(ENV_A)s)"]
    );
}

#[test]
fn process_num_is_only_where_supervisord_expands_it() {
    assert_eq!(
        program_errors("startsecs=%(process_num)d\n"),
        ["/sv/t.conf:3:11: program:web.startsecs: %(process_num)d is not available in startsecs: supervisord expands it only in command, process_name, environment, directory and the stdout_* and stderr_* log options"]
    );
    assert_eq!(
        errors("[supervisord]\nlogfile=%(program_name)s.log\n"),
        ["/sv/t.conf:2:9: supervisord.logfile: %(program_name)s is only available in [program:x] sections"]
    );
}

#[test]
fn each_process_gets_its_own_values_of_the_options_supervisord_expands_per_process() {
    let spec = read("[program:w]\ncommand=run --port=80%(process_num)02d\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\nstdout_logfile=/l/%(process_num)d.log\nenvironment=N=%(process_num)d\ndirectory=/srv/%(process_num)d\n")
        .config
        .programs
        .remove("w")
        .unwrap();
    let process = |i: usize| &spec.processes[i].spec;
    assert_eq!(process(0).argv, ["run", "--port=8000"]);
    assert_eq!(process(1).argv, ["run", "--port=8001"]);
    assert_eq!(process(1).stdout.as_deref(), Some(Path::new("/l/1.log")));
    assert_eq!(process(1).env["N"], "1");
    assert_eq!(process(1).workingdir.as_deref(), Some(Path::new("/srv/1")));
    // The program's own view keeps what differs as written, for `convert`.
    assert_eq!(spec.cmd, "run --port=80%(process_num)02d");
    assert_eq!(
        spec.stdout.as_deref(),
        Some(Path::new("/l/%(process_num)d.log"))
    );
    // The same value for every process is simply that value.
    let spec = read("[program:w]\ncommand=run %(numprocs)d %(program_name)s\nnumprocs=4\nprocess_name=%(program_name)s_%(process_num)02d\n")
        .config
        .programs
        .remove("w")
        .unwrap();
    assert_eq!(spec.argv, ["run", "4", "w"]);
}

#[test]
fn double_percent_is_a_literal_and_a_lone_percent_is_an_error_at_its_place() {
    let spec = read("[program:web]\ncommand=printf 100%%\n")
        .config
        .programs
        .remove("web");
    assert_eq!(spec.unwrap().argv, ["printf", "100%"]);
    assert_eq!(
        errors("[program:web]\ncommand=printf 100%\n"),
        ["/sv/t.conf:2:19: program:web.command: \"%\" must start an expansion such as %(program_name)s; write %% for a literal %"]
    );
    assert_eq!(
        errors("[program:web]\ncommand=x %(nope)s\n"),
        ["/sv/t.conf:2:11: program:web.command: unknown name %(nope) (available: here, host_node_name, ENV_<variable>, program_name, group_name, process_num, numprocs)"]
    );
    assert_eq!(
        errors("[program:web]\ncommand=x %(program_name)d\n"),
        ["/sv/t.conf:2:11: program:web.command: %(program_name)d needs a number, and program_name is text (write %(program_name)s)"]
    );
}

#[test]
fn host_node_name_without_a_known_host_name_is_an_error() {
    let host = Host {
        node_name: None,
        ..host()
    };
    let Err(errors) = ini::parse(
        "[program:a]\ncommand=x %(host_node_name)s\n",
        Path::new(FILE),
        &host,
    ) else {
        panic!("accepted");
    };
    assert_eq!(
        errors.to_string(),
        "/sv/t.conf:2:11: program:a.command: the host name for %(host_node_name)s is unknown (cannot read /proc/sys/kernel/hostname)"
    );
}

// ---- comments and continuation lines --------------------------------------------------------

#[test]
fn semicolon_and_hash_comment_only_after_whitespace() {
    let text = "\
; a comment
# another
[program:web] ; comment after a header
command=sh -c 'a;b' ; the first ; is kept, the second starts a comment
stdout_logfile=/l/a#b.log   # likewise for #
environment=A=\"x;y\",B=\"p#q\"	;	a tab is whitespace too
";
    let spec = read(text).config.programs.remove("web").unwrap();
    assert_eq!(spec.argv, ["sh", "-c", "a;b"]);
    assert_eq!(spec.stdout, Some(PathBuf::from("/l/a#b.log")));
    assert_eq!(spec.env, map(&[("A", "x;y"), ("B", "p#q")]));
}

#[test]
fn a_comment_inside_quotes_still_ends_the_value_as_in_supervisord() {
    // supervisord's own documentation warns about this: command=bash -c 'foo ; bar' is cut.
    assert_eq!(
        errors("[program:web]\ncommand=bash -c 'foo ; bar'\n"),
        ["/sv/t.conf:2:9: program:web.command: cannot split \"bash -c 'foo\" into words: missing closing quote"]
    );
}

#[test]
fn deeper_indented_lines_continue_a_value() {
    let text = "\
[program:web]
command=sh -c
    'echo started; exec sleep 60'
environment=
    A=\"1\",
    ; a comment line inside a value is skipped
    B=\"2\"
autostart=false
";
    let spec = read(text).config.programs.remove("web").unwrap();
    assert_eq!(spec.cmd, "sh -c\n'echo started; exec sleep 60'");
    assert_eq!(spec.argv, ["sh", "-c", "echo started; exec sleep 60"]);
    assert_eq!(spec.env, map(&[("A", "1"), ("B", "2")]));
    assert!(!spec.autostart);
}

#[test]
fn an_indented_option_after_a_header_starts_a_new_option() {
    let spec = read("[program:web]\n  command=run\n  autostart=false\n")
        .config
        .programs
        .remove("web")
        .unwrap();
    assert_eq!(spec.argv, ["run"]);
    assert!(!spec.autostart);
}

#[test]
fn errors_in_continued_values_point_into_the_right_line() {
    assert_eq!(
        errors("[program:web]\ncommand=run\nexitcodes=0,\n  1,\n  x\n"),
        ["/sv/t.conf:5:3: program:web.exitcodes: expected an exit code from 0 to 255, found \"x\""]
    );
    assert_eq!(
        errors("[program:web]\ncommand=run\n  %(nope)s\n"),
        ["/sv/t.conf:3:3: program:web.command: unknown name %(nope) (available: here, host_node_name, ENV_<variable>, program_name, group_name, process_num, numprocs)"]
    );
}

// ---- [fcgi-program:x] --------------------------------------------------------------------------

#[test]
fn an_fcgi_program_is_a_program_with_its_listening_socket() {
    let config = read(
        "[fcgi-program:php]\ncommand=php-cgi\nsocket=unix:///run/php.sock\nsocket_owner=www-data\n\
         socket_mode=0660\nsocket_backlog=64\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)d\n\
         [fcgi-program:py]\ncommand=flup\nsocket=tcp://LocalHost:9000\n",
    )
    .config;
    let php = &config.programs["php"];
    assert_eq!(
        php.fcgi_socket.as_deref(),
        Some(&FcgiSocket {
            address: SocketAddress::Unix(PathBuf::from("/run/php.sock")),
            backlog: Some(64),
            owner: Some(Owner {
                user: "www-data".to_string(),
                group: None
            }),
            mode: 0o660,
        })
    );
    // The socket is each process's stdin, never a pipe.
    assert_eq!(php.processes[1].spec.stdin, taskmaster_config::Stdin::Null);
    assert_eq!(php.processes[1].spec.fcgi_socket, php.fcgi_socket);
    let py = config.programs["py"]
        .fcgi_socket
        .as_ref()
        .expect("a socket");
    assert_eq!(
        py.address,
        SocketAddress::Tcp {
            host: "localhost".to_string(),
            port: 9000
        }
    );
    assert_eq!((py.backlog, py.mode), (None, 0o700));
    assert_round_trip(
        &read(
            "[fcgi-program:php]\ncommand=php-cgi\nsocket=unix:///run/php.sock\nsocket_mode=0660\n",
        )
        .config,
    );
}

#[test]
fn an_fcgi_programs_socket_is_required_and_checked() {
    assert_eq!(
        errors("[fcgi-program:php]\ncommand=php-cgi\n"),
        ["/sv/t.conf:1:1: fcgi-program:php: missing required option \"socket\": the listening socket taskmaster opens and gives each process as its stdin (tcp://HOST:PORT or unix:///PATH)"]
    );
    assert_eq!(
        errors("[fcgi-program:php]\ncommand=php-cgi\nsocket=tcp://127.0.0.1:9000\nsocket_mode=0600\nsocket_backlog=0\n"),
        [
            "/sv/t.conf:4:13: fcgi-program:php.socket_mode: socket_mode applies only to a Unix socket (socket = unix:///PATH), as in supervisord",
            "/sv/t.conf:5:16: fcgi-program:php.socket_backlog: expected an integer >= 1, found \"0\"",
        ]
    );
    assert_eq!(
        errors("[fcgi-program:php]\ncommand=php-cgi\nsocket=http://x\n"),
        ["/sv/t.conf:3:8: fcgi-program:php.socket: expected tcp://HOST:PORT or unix:///PATH, found \"http://x\""]
    );
    assert_eq!(
        errors("[program:php]\ncommand=x\n[fcgi-program:php]\ncommand=php-cgi\nsocket=tcp://127.0.0.1:9000\n"),
        ["/sv/t.conf:3:1: fcgi-program:php: a program named \"php\" is already defined ([program:x], [fcgi-program:x] and [eventlistener:x] share their names)"]
    );
    // A [program:x] has no socket: supervisord ignores the option there, so does taskmaster.
    let warned = warnings("[program:web]\ncommand=x\nsocket=tcp://127.0.0.1:9000\n");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("unknown option \"socket\""),
        "{warned:?}"
    );
}

// ---- [eventlistener:x] -----------------------------------------------------------------------

#[test]
fn an_eventlistener_is_a_program_with_its_events_first_in_line() {
    let ini = read(
        "[eventlistener:mail]\ncommand=crashmail -a -m ops@example.com\nevents=PROCESS_STATE_EXITED, tick_60\nbuffer_size=25\nresult_handler=supervisor.dispatchers:default_handler\n",
    );
    let mail = &ini.config.programs["mail"];
    let listener = mail.listener.as_ref().expect("a listener");
    assert_eq!(
        listener.events,
        [
            taskmaster_config::EventType::ProcessStateExited,
            taskmaster_config::EventType::Tick60
        ]
    );
    assert_eq!(listener.buffer_size, 25);
    // supervisord's default priority for listeners, -1: first.
    assert_eq!(ini.priorities["mail"], -1);
    assert_eq!(mail.priority, 0);
    assert_round_trip(&ini.config);
}

#[test]
fn an_eventlistener_refuses_what_supervisord_refuses_and_a_python_result_handler() {
    assert_eq!(
        errors("[eventlistener:mail]\ncommand=x\n"),
        ["/sv/t.conf:1:1: eventlistener:mail: missing required option \"events\": the event types it listens to (PROCESS_STATE, TICK_60...)"]
    );
    assert_eq!(
        errors("[eventlistener:mail]\ncommand=x\nevents=PROCESS_STATE,NOPE\nbuffer_size=0\nredirect_stderr=true\nresult_handler=my.module:handler\n"),
        [
            "/sv/t.conf:3:8: eventlistener:mail.events: unknown event type \"NOPE\" (the types are EVENT, PROCESS_STATE, PROCESS_STATE_STOPPED, PROCESS_STATE_EXITED, PROCESS_STATE_STARTING, PROCESS_STATE_STOPPING, PROCESS_STATE_BACKOFF, PROCESS_STATE_FATAL, PROCESS_STATE_RUNNING, PROCESS_STATE_UNKNOWN, PROCESS_COMMUNICATION, PROCESS_COMMUNICATION_STDOUT, PROCESS_COMMUNICATION_STDERR, PROCESS_LOG, PROCESS_LOG_STDOUT, PROCESS_LOG_STDERR, REMOTE_COMMUNICATION, SUPERVISOR_STATE_CHANGE, SUPERVISOR_STATE_CHANGE_RUNNING, SUPERVISOR_STATE_CHANGE_STOPPING, TICK, TICK_5, TICK_60, TICK_3600, PROCESS_GROUP, PROCESS_GROUP_ADDED, PROCESS_GROUP_REMOVED)",
            "/sv/t.conf:4:13: eventlistener:mail.buffer_size: expected an integer >= 1, found \"0\"",
            "/sv/t.conf:5:17: eventlistener:mail.redirect_stderr: an event listener's stdout carries the protocol: redirect_stderr would mix standard error into it (supervisord refuses it too)",
            "/sv/t.conf:6:16: eventlistener:mail.result_handler: taskmaster answers a listener's RESULT as supervisord's default handler does (OK accepts the event, FAIL sends it again); it cannot load a Python result handler: remove result_handler",
        ]
    );
}

// ---- sections and options taskmaster does not take ------------------------------------------

#[test]
fn unsupported_sections_are_errors_naming_them() {
    let text = "\
[group:site]
programs=web,api

[eventlistener:mail]
command=x
events=PROCESS_STATE

[fcgi-program:php]
command=x
socket=tcp://127.0.0.1:9000

[ctlplugin:wait]
supervisor.ctl_factory = x

[rpcinterface:custom]
supervisor.rpcinterface_factory = my:make

[DEFAULT]
x=1

[porgram:web]
command=x

[supervisor]

[nonsense]
";
    assert_eq!(
        errors(text),
        [
            "/sv/t.conf:1:1: group:site: no program \"web\" to put in it",
            "/sv/t.conf:1:1: group:site: no program \"api\" to put in it",
            "/sv/t.conf:12:1: ctlplugin:wait: supervisorctl plugins are not supported",
            "/sv/t.conf:15:1: rpcinterface:custom: custom RPC interfaces are not supported; only [rpcinterface:supervisor] is accepted",
            "/sv/t.conf:18:1: DEFAULT: [DEFAULT] (options shared by every section) is not supported: write each option in its section",
            "/sv/t.conf:21:1: unknown section [porgram:web] (did you mean [program:web]?)",
            "/sv/t.conf:24:1: unknown section [supervisor] (did you mean [supervisord]?)",
            "/sv/t.conf:26:1: unknown section [nonsense] (taskmaster reads [program:x], [supervisord], [include], [fcgi-program:x], [eventlistener:x], [group:x], [unix_http_server], [inet_http_server], [supervisorctl] and [rpcinterface:supervisor])",
        ]
    );
}

#[test]
fn rpcinterface_supervisor_is_accepted_only_as_every_supervisord_conf_has_it() {
    let text = "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n";
    assert!(parse(text).is_ok());
    assert_eq!(
        errors("[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = my.pkg:make\nretries = 1\n"),
        [
            "/sv/t.conf:2:35: rpcinterface:supervisor.supervisor.rpcinterface_factory: custom RPC interfaces are not supported; expected supervisor.rpcinterface:make_main_rpcinterface",
            "/sv/t.conf:3:1: rpcinterface:supervisor.retries: unknown option \"retries\": options besides supervisor.rpcinterface_factory configure a custom RPC interface, which taskmaster does not support",
        ]
    );
}

#[test]
fn unknown_options_are_warnings_with_a_suggestion_as_supervisord_ignores_them() {
    // A typo, a YAML name, and nonsense (supervisord-dependent-startup's keys are known: see
    // dependent_startup_keys_become_depends_on_and_the_plugin_is_not_run).
    let text = program_text("stoptime=5\ncomand=x\nstartsecs=1\nbogus=1\n");
    let spec = &read(&text).config.programs["web"];
    assert_eq!(
        (spec.cmd.as_str(), spec.starttime),
        ("run", Duration::from_secs(1))
    );
    assert_eq!(
        warnings(&text),
        [
            "/sv/t.conf:3:1: program:web: unknown option \"stoptime\", ignored as supervisord ignores it (did you mean \"stopwaitsecs\"?)",
            "/sv/t.conf:4:1: program:web: unknown option \"comand\", ignored as supervisord ignores it (did you mean \"command\"?)",
            "/sv/t.conf:6:1: program:web: unknown option \"bogus\", ignored as supervisord ignores it (the options of [program:x] are command, process_name, numprocs, numprocs_start, priority, autostart, startsecs, startretries, autorestart, exitcodes, stopsignal, stopwaitsecs, stopasgroup, killasgroup, user, redirect_stderr, stdout_logfile, stdout_logfile_maxbytes, stdout_logfile_backups, stdout_capture_maxbytes, stdout_events_enabled, stdout_syslog, stderr_logfile, stderr_logfile_maxbytes, stderr_logfile_backups, stderr_capture_maxbytes, stderr_events_enabled, stderr_syslog, environment, directory, umask, serverurl, dependent_startup, dependent_startup_wait_for, dependent_startup_inherit_priority)",
        ]
    );
    assert_eq!(
        warnings("[supervisord]\nlogfil=x\n[unix_http_server]\nfile=/s\nchmode=0700\n[include]\nfiles=/nothing/*.conf\nmore=1\n"),
        [
            "/sv/t.conf:2:1: supervisord: unknown option \"logfil\", ignored as supervisord ignores it (did you mean \"logfile\"?)",
            "/sv/t.conf:5:1: unix_http_server: unknown option \"chmode\", ignored as supervisord ignores it (did you mean \"chmod\"?)",
            "/sv/t.conf:7:7: include.files: no file matches \"/nothing/*.conf\", as supervisord warns too; nothing is included for it",
            "/sv/t.conf:8:1: include: unknown option \"more\", ignored as supervisord ignores it (the options of [include] are files)",
        ]
    );
    // An option that changes what a program does and cannot be honoured is still an error.
    assert_eq!(
        program_errors("stopasgroup=false\nbogus=1\n"),
        ["/sv/t.conf:3:13: program:web.stopasgroup: taskmaster always sends stopsignal to the whole process group of the program, as supervisord does with stopasgroup = true; remove this line or set it to true"]
    );
}

#[test]
fn supervisord_section_accepts_what_means_nothing_for_taskmaster() {
    let text = "\
[supervisord]
logfile=/tmp/supervisord.log ; main log file; default $CWD/supervisord.log
logfile_maxbytes=0
logfile_backups=10
loglevel=info
nodaemon=true
silent=false
minfds=1024
minprocs=200
nocleanup=true
strip_ansi=false
";
    let ini = read(text);
    assert_eq!(ini.config.logfile, PathBuf::from("/tmp/supervisord.log"));
    assert!(ini.config.programs.is_empty());
    assert_eq!(ini.warnings, []);
}

#[test]
fn supervisord_options_become_the_daemons_settings() {
    let text = "\
[supervisord]
logfile_maxbytes=1MB
logfile_backups=10
loglevel=WARN
minfds=65536
minprocs=201
pidfile=run/supervisord.pid
umask=027
directory=/srv
identifier=shop-1
childlogdir=~/logs
nocleanup=true
";
    let config = read(text).config;
    let daemon = config.daemon;
    assert_eq!(daemon.loglevel, taskmaster_config::LogLevel::Warn);
    assert_eq!((daemon.minfds, daemon.minprocs), (Some(65536), Some(201)));
    assert_eq!(
        daemon.pidfile,
        Some(PathBuf::from("/sv/run/supervisord.pid"))
    );
    assert_eq!(daemon.umask, Some(0o27));
    assert_eq!(daemon.directory, Some(PathBuf::from("/srv")));
    assert_eq!(daemon.identifier, "shop-1");
    assert_eq!(daemon.childlogdir, Some(PathBuf::from("/home/ann/logs")));
    assert!(daemon.nocleanup);
    assert!(!daemon.strip_ansi);
    // Accepted with a word: taskmaster does not do quite what they ask.
    assert_eq!(
        warnings("[supervisord]\nnodaemon=false\nstrip_ansi=true\n"),
        [
            "/sv/t.conf:2:1: supervisord.nodaemon: taskmaster does not go into the background: it stays in the foreground (as with nodaemon = true), for a service manager or a shell's & to run it",
            "/sv/t.conf:3:12: supervisord.strip_ansi: accepted, not applied: taskmaster writes the output of programs as they write it, escape sequences included",
        ]
    );
    assert_eq!(
        errors("[supervisord]\nlogfile_maxbytes=lots\nloglevel=loud\nminfds=-1\numask=9\nidentifier=a/b\n"),
        [
            "/sv/t.conf:2:18: supervisord.logfile_maxbytes: expected a size such as 0, 1024 or 50MB, found \"lots\"",
            "/sv/t.conf:3:10: supervisord.loglevel: expected one of critical, error, warn, info, debug, trace, blather, found \"loud\"",
            "/sv/t.conf:4:8: supervisord.minfds: expected an integer >= 0, found \"-1\"",
            "/sv/t.conf:5:7: supervisord.umask: expected an octal umask from 000 to 777 such as 022, found \"9\"",
            "/sv/t.conf:6:12: supervisord.identifier: \"a/b\": an identifier is part of AUTO log files' names, so it holds no \"/\", NUL or line break",
        ]
    );
}

#[test]
fn unix_http_server_gives_the_sockets_mode_owner_and_credentials() {
    let text = "\
[unix_http_server]
file=/run/tm.sock
chmod=0770
chown=app:staff
username=admin
password={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d
";
    let access = read(text).config.daemon.socket_access;
    assert_eq!(access.mode, 0o770);
    assert_eq!(
        access.owner,
        Some(Owner {
            user: "app".to_string(),
            group: Some("staff".to_string())
        })
    );
    assert_eq!(
        access.credentials.map(|c| c.username),
        Some("admin".to_string())
    );
    // Without chmod, taskmaster's 0600: for a socket, the same as supervisord's 0700.
    let access = read("[unix_http_server]\nfile=/run/tm.sock\n")
        .config
        .daemon
        .socket_access;
    assert_eq!(access, taskmaster_config::SocketAccess::default());
}

#[test]
fn server_sections_are_read_and_checked() {
    let text = "\
[unix_http_server]
file=run/tm.sock
chmod=0770
chown=app

[inet_http_server]
port=*:9001
username=u
password=p

[supervisorctl]
serverurl=http://localhost:9001
history_file=~/.tm_history
";
    let ini = read(text);
    let unix = ini.unix_http_server.unwrap();
    assert_eq!(unix.file, PathBuf::from("/sv/run/tm.sock"));
    assert_eq!(unix.chmod, 0o770);
    assert_eq!(
        unix.chown,
        Some(Owner {
            user: "app".into(),
            group: None
        })
    );
    let inet = ini.inet_http_server.unwrap();
    assert_eq!((inet.host, inet.port), (None, 9001));
    assert_eq!(
        inet.credentials,
        Some(Credentials {
            username: "u".into(),
            password: "p".into()
        })
    );
    let ctl = ini.supervisorctl.unwrap();
    assert_eq!(ctl.serverurl.as_deref(), Some("http://localhost:9001"));
    assert_eq!(
        ctl.history_file,
        Some(PathBuf::from("/home/ann/.tm_history"))
    );

    let text = "\
[unix_http_server]
chmod=0999
username=u

[inet_http_server]
port=localhost:99999
password=p

[supervisorctl]
serverurl=localhost
";
    assert_eq!(
        errors(text),
        [
            "/sv/t.conf:1:1: unix_http_server: missing required option \"file\"",
            "/sv/t.conf:2:7: unix_http_server.chmod: expected an octal mode such as 0700, found \"0999\"",
            "/sv/t.conf:3:1: unix_http_server.username: password is missing: give both username and password, or neither",
            "/sv/t.conf:6:6: inet_http_server.port: expected a port from 1 to 65535, or host:port, found \"localhost:99999\"",
            "/sv/t.conf:7:1: inet_http_server.password: username is missing: give both username and password, or neither",
            "/sv/t.conf:10:11: supervisorctl.serverurl: expected unix:///path/to/socket or http://host:port, found \"localhost\"",
        ]
    );
    assert_eq!(
        errors("[inet_http_server]\n"),
        ["/sv/t.conf:1:1: inet_http_server: missing required option \"port\""]
    );
}

// ---- the file's structure -------------------------------------------------------------------

#[test]
fn malformed_lines_are_errors() {
    let text = "\
command=orphan
[program:web]
command=run
not an option
[include]junk
";
    assert_eq!(
        errors(text),
        [
            "/sv/t.conf:1:1: an option must come after a [section] header",
            "/sv/t.conf:4:1: program:web: expected \"name = value\", a [section] header or a comment, found \"not an option\"",
            "/sv/t.conf:5:1: include: missing required option \"files\"",
            "/sv/t.conf:5:10: unexpected text \"junk\" after the section header",
        ]
    );
}

#[test]
fn repeated_options_and_sections_are_read_as_supervisord_reads_them_with_warnings() {
    let text = "\
[program:web]
command=run
startsecs=5
command=again --twice
[program:db]
command=db
[program:web]
startsecs=7
";
    let config = read(text).config;
    let web = &config.programs["web"];
    assert_eq!(web.argv, ["again", "--twice"], "the last value wins");
    assert_eq!(web.starttime, Duration::from_secs(7));
    assert_eq!(config.programs.len(), 2);
    assert_eq!(
        warnings(text),
        [
            "/sv/t.conf:4:1: program:web: option \"command\" again (first at line 2, column 1): the last value is used, as supervisord does",
            "/sv/t.conf:7:1: section [program:web] again (first at line 1, column 1): its options are added to the first's, as supervisord reads it",
            "/sv/t.conf:8:1: program:web: option \"startsecs\" again (first at line 3, column 1): the last value is used, as supervisord does",
        ]
    );
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = "\
[supervisord]
pidfile=

[program:a]
command=run
numprocs=abc
stopsignal=TERMM

[program:b]
umask=999
stopasgroup=false
";
    assert_eq!(
        errors(text),
        [
            "/sv/t.conf:2:9: supervisord.pidfile: expected a path, found \"\"",
            "/sv/t.conf:6:10: program:a.numprocs: expected an integer >= 1, found \"abc\"",
            "/sv/t.conf:7:12: program:a.stopsignal: unknown signal \"TERMM\" (did you mean TERM?)",
            "/sv/t.conf:9:1: program:b: missing required option \"command\"",
            "/sv/t.conf:10:7: program:b.umask: expected an octal umask from 000 to 777 such as 022, found \"999\"",
            "/sv/t.conf:11:13: program:b.stopasgroup: taskmaster always sends stopsignal to the whole process group of the program, as supervisord does with stopasgroup = true; remove this line or set it to true",
        ]
    );
}

// ---- includes -------------------------------------------------------------------------------

/// A fresh folder for one test, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let path =
            std::env::temp_dir().join(format!("taskmaster-ini-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Folder(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(path: &Path) -> Result<IniConfig, ConfigErrors> {
    ini::load(path, &host())
}

#[test]
fn includes_are_read_in_sorted_order_relative_to_the_including_file() {
    let dir = Folder::new("sorted");
    dir.write("conf.d/b.conf", "[program:b]\ncommand=b\n");
    dir.write("conf.d/a.conf", "[program:a]\ncommand=a %(here)s\n");
    dir.write("conf.d/.hidden.conf", "[program:hidden]\ncommand=x\n");
    dir.write("conf.d/notes.txt", "not a configuration\n");
    std::fs::create_dir_all(dir.0.join("conf.d/folder.conf")).unwrap();
    dir.write("extra.ini", "[program:extra]\ncommand=e\n");
    let main = dir.write(
        "main.conf",
        "[include]\nfiles = conf.d/*.conf extra.ini conf.d/?.conf nothing/*.conf\n",
    );
    let ini = load(&main).unwrap();
    let names: Vec<&str> = ini.config.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "extra"]);
    assert_eq!(
        ini.config.programs["a"].argv,
        ["a".to_string(), dir.0.join("conf.d").display().to_string()]
    );
}

#[test]
fn errors_in_included_files_name_the_included_file_after_the_main_ones() {
    let dir = Folder::new("errors");
    dir.write("conf.d/a.conf", "[program:a]\ncommand=a\nstopsignal=99\n");
    dir.write(
        "conf.d/b.conf",
        "[include]\nfiles=x\n[program:main]\ncommand=dup\n",
    );
    let main = dir.write(
        "main.conf",
        "[include]\nfiles=conf.d/*.conf missing.conf\n[program:main]\ncommand=x\nstopasgroup=false\n",
    );
    let Err(errors) = load(&main) else {
        panic!("accepted");
    };
    let d = dir.0.display();
    assert_eq!(
        errors.to_string(),
        format!(
            "{d}/main.conf:5:13: program:main.stopasgroup: taskmaster always sends stopsignal to the whole process group of the program, as supervisord does with stopasgroup = true; remove this line or set it to true\n\
             {d}/conf.d/a.conf:3:12: program:a.stopsignal: unknown signal \"99\" (signal numbers are 1 to 31 and 34 to 64)\n\
             {d}/conf.d/b.conf:1:1: include: an included file cannot include others: supervisord reads [include] only in the main file\n\
             {d}/conf.d/b.conf:3:1: duplicate section [program:main] (first in {d}/main.conf at line 3, column 1)"
        )
    );
}

#[test]
fn an_include_that_matches_nothing_is_a_warning_as_in_supervisord() {
    let dir = Folder::new("nothing");
    dir.write("conf.d/a.conf", "[program:a]\ncommand=a\n");
    let main = dir.write(
        "main.conf",
        "[include]\nfiles=conf.d/*.conf missing.conf none.d/*.ini\n",
    );
    let ini = load(&main).expect("valid");
    assert_eq!(ini.config.programs.len(), 1);
    let d = dir.0.display();
    assert_eq!(
        ini.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            format!("{d}/main.conf:2:7: include.files: no file matches \"{d}/missing.conf\", as supervisord warns too; nothing is included for it"),
            format!("{d}/main.conf:2:7: include.files: no file matches \"{d}/none.d/*.ini\", as supervisord warns too; nothing is included for it"),
        ]
    );
}

#[test]
fn an_unreadable_included_file_is_a_file_level_error() {
    let dir = Folder::new("unreadable");
    dir.write("bad.conf", "");
    std::fs::write(dir.0.join("bad.conf"), [0xff, 0xfe, b'\n']).unwrap();
    let main = dir.write("main.conf", "[include]\nfiles=*.conf\n");
    let Err(errors) = load(&main) else {
        panic!("accepted");
    };
    assert_eq!(
        errors.to_string(),
        format!(
            "{}/bad.conf: cannot read: stream did not contain valid UTF-8",
            dir.0.display()
        )
    );
}

#[test]
fn a_file_matched_twice_or_the_main_file_itself_is_read_once() {
    let dir = Folder::new("once");
    dir.write("a.conf", "[program:a]\ncommand=a\n");
    let main = dir.write(
        "main.conf",
        "[include]\nfiles=*.conf a.conf\n[program:m]\ncommand=m\n",
    );
    let ini = load(&main).unwrap();
    assert_eq!(ini.config.programs.len(), 2);
}

// ---- format detection -----------------------------------------------------------------------

#[test]
fn format_is_ini_by_extension_or_by_a_leading_section_header() {
    for name in [
        "x.conf",
        "x.ini",
        "X.CONF",
        "/etc/supervisor/supervisord.conf",
    ] {
        assert_eq!(
            detect_format(Path::new(name), "programs: {}"),
            Format::Ini,
            "{name}"
        );
    }
    for text in [
        "[supervisord]\n",
        "\n; comment\n# comment\n  [program:web] ; trailing\ncommand=x\n",
        "\u{feff}[program:web]\n",
    ] {
        assert_eq!(
            detect_format(Path::new("x.yaml"), text),
            Format::Ini,
            "{text:?}"
        );
    }
    for text in [
        "programs: {}\n",
        "# [program:web]\nprograms: {}\n",
        "[a]: 1\n",
        "[]\n",
        "",
    ] {
        assert_eq!(
            detect_format(Path::new("x.yaml"), text),
            Format::Yaml,
            "{text:?}"
        );
    }
}

#[test]
fn config_load_reads_either_format() {
    let dir = Folder::new("detect");
    let ini = dir.write("by-content.yaml", "[program:web]\ncommand=run\n");
    let yaml = dir.write("tm.yaml", "programs:\n  web:\n    cmd: run\n");
    let by_content = Config::load(&ini).unwrap();
    let from_yaml = Config::load(&yaml).unwrap();
    let mut web = from_yaml.programs["web"].clone();
    // The differences: supervisord gives every child a stdin pipe, and AUTO log files.
    web.stdin = taskmaster_config::Stdin::Pipe;
    for process in &mut web.processes {
        std::sync::Arc::make_mut(&mut process.spec).stdin = taskmaster_config::Stdin::Pipe;
    }
    let auto_logs = &by_content.daemon.auto_logs;
    let auto = |stream: &str| {
        auto_logs
            .iter()
            .find(|f| f.to_string_lossy().contains(stream))
            .cloned()
    };
    web.stdout = auto("stdout");
    web.stderr = auto("stderr");
    for process in &mut web.processes {
        let process = std::sync::Arc::make_mut(&mut process.spec);
        process.stdout = auto("stdout");
        process.stderr = auto("stderr");
    }
    assert_eq!(by_content.programs["web"], web);
    assert_eq!(by_content.logfile, dir.0.join("supervisord.log"));
    assert_eq!(from_yaml.logfile, dir.0.join("taskmaster.log"));
    let bad = dir.write("bad.conf", "[program:web]\nstoptime=1\n");
    let Err(errors) = Config::load(&bad) else {
        panic!("accepted");
    };
    assert_eq!(errors.len(), 1, "{errors}");
    let warned = dir.write("warned.conf", "[program:web]\ncommand=x\nstoptime=1\n");
    let (_, warnings) = Config::load_with_warnings(&warned).unwrap();
    assert_eq!(
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!("{}:3:1: program:web: unknown option \"stoptime\", ignored as supervisord ignores it (did you mean \"stopwaitsecs\"?)", warned.display())]
    );
    let (_, none) = Config::load_with_warnings(&yaml).unwrap();
    assert_eq!(none, []);
}

// ---- YAML ------------------------------------------------------------------------------------

/// INI -> Config -> YAML -> Config gives the same programs and event log.
fn assert_round_trip(config: &Config) {
    let yaml = to_yaml(config);
    let path = config.path.with_extension("yaml");
    let again = match Config::parse(&yaml, &path) {
        Ok(again) => again,
        Err(e) => panic!("{yaml}\n---\n{e}"),
    };
    assert_eq!(again.programs, config.programs, "{yaml}");
    assert_eq!(again.logfile, config.logfile, "{yaml}");
    assert_eq!(again.socket, config.socket, "{yaml}");
    assert_eq!(again.http, config.http, "{yaml}");
    assert_eq!(again.daemon, config.daemon, "{yaml}");
}

#[test]
fn daemon_settings_and_auto_logs_survive_the_yaml_round_trip() {
    let text = "\
[unix_http_server]
file=/run/shop.sock
chmod=0660
chown=app:staff
username=admin
password=secret

[supervisord]
pidfile=/run/shop.pid
loglevel=debug
identifier=shop
umask=077
directory=/srv/shop
minfds=4096
minprocs=300
strip_ansi=true
childlogdir=/var/log/shop
nocleanup=true

[program:web]
command=run
redirect_stderr=true

[program:worker]
command=work
stdout_logfile=AUTO
stderr_logfile=/var/log/worker.err
";
    let config = read(text).config;
    assert_eq!(config.daemon.auto_logs.len(), 2);
    let yaml = to_yaml(&config);
    for line in [
        "socket_mode: \"0660\"\n",
        "socket_owner: \"app:staff\"\n",
        "socket_username: \"admin\"\n",
        "pidfile: \"/run/shop.pid\"\n",
        "loglevel: debug\n",
        "identifier: \"shop\"\n",
        "umask: \"077\"\n",
        "directory: \"/srv/shop\"\n",
        "minfds: 4096\n",
        "minprocs: 300\n",
        "childlogdir: \"/var/log/shop\"\n",
        "nocleanup: true\n",
        "    stdout: auto\n",
    ] {
        assert!(yaml.contains(line), "{line:?} in\n{yaml}");
    }
    assert_round_trip(&config);
}

#[test]
fn yaml_names_the_daemons_settings_as_supervisord_does() {
    let yaml = "\
pidfile: tm.pid
loglevel: ERROR
identifier: shop
umask: 022
directory: /srv
minfds: 2048
childlogdir: logs
socket_mode: \"0770\"
socket_owner: app
socket_username: u
socket_password: p
programs:
  web: {cmd: run, stdout: auto, stderr: AUTO}
  one: {cmd: run, stdout: auto, redirect_stderr: true}
";
    let config = Config::parse(yaml, Path::new("/etc/tm/tm.yaml")).expect("valid");
    assert_eq!(config.daemon.pidfile, Some(PathBuf::from("/etc/tm/tm.pid")));
    assert_eq!(config.daemon.loglevel, taskmaster_config::LogLevel::Error);
    assert_eq!(config.daemon.identifier, "shop");
    assert_eq!(config.daemon.umask, Some(0o22));
    assert_eq!(config.daemon.minfds, Some(2048));
    assert_eq!(config.daemon.socket_access.mode, 0o770);
    let web = &config.programs["web"];
    let named = |file: &Option<PathBuf>, prefix: &str| {
        file.as_ref()
            .is_some_and(|f| f.to_string_lossy().starts_with(prefix))
    };
    assert!(
        named(&web.stdout, "/etc/tm/logs/web-stdout---shop-"),
        "{web:?}"
    );
    assert!(
        named(&web.stderr, "/etc/tm/logs/web-stderr---shop-"),
        "{web:?}"
    );
    let one = &config.programs["one"];
    assert_eq!(one.stderr, one.stdout);
    assert_eq!(config.daemon.auto_logs.len(), 3);
    let errors = Config::parse(
        "socket_username: u\nloglevel: loud\nprograms: {}\n",
        Path::new("t.yaml"),
    )
    .expect_err("refused")
    .to_string();
    assert_eq!(
        errors,
        "t.yaml:1:18: socket_username: socket_password is missing: give both socket_username and socket_password, or neither\n\
         t.yaml:2:11: loglevel: expected one of critical, error, warn, info, debug, trace, blather, found \"loud\""
    );
}

#[test]
fn every_example_survives_the_yaml_round_trip() {
    for name in ["webapp.conf", "pool.conf", "supervisord.conf"] {
        assert_round_trip(&load_example(name).config);
    }
}

#[test]
fn awkward_values_survive_the_yaml_round_trip() {
    let text = "\
[supervisord]
logfile=logs/tm log.log

[program:null]
command=sh -c 'echo \"quoted\" \\\\ back; printf \"%%s\\n\" tab' # comment
environment=EMPTY=\"\",COLON=\"a: b\",HASH=\"# not a comment\",TRUE=true,NUM=\"010\",
    UNICODE=\"é☃\",NL=\"a\\nb\",QUOTE='say \"hi\"'
startsecs=0.25
stopwaitsecs=1.000000001
exitcodes=
umask=007
directory=relative dir
stdout_logfile=/dev/null
stopsignal=RTMIN+3

[program:1.5]
command=true
autostart=off
autorestart=false
serverurl=unix:///run/other supervisor.sock
";
    let ini = read(text);
    assert_eq!(ini.config.programs["null"].env["NL"], "a\\nb");
    assert_round_trip(&ini.config);
}

#[test]
fn to_yaml_writes_every_key() {
    let config = read(
        "[program:web]\ncommand=run\numask=022\nenvironment=A=1\nstdout_logfile=NONE\n\
         stderr_logfile=NONE\n",
    )
    .config;
    assert_eq!(
        to_yaml(&config),
        "\
logfile: \"/sv/supervisord.log\"
socket: \"/sv/taskmaster.sock\"
programs:
  \"web\":
    cmd: \"run\"
    numprocs: 1
    autostart: true
    autorestart: unexpected
    exitcodes: [0]
    starttime: 1
    startretries: 3
    stopsignal: \"TERM\"
    stoptime: 10
    priority: 999
    umask: \"022\"
    stdin: pipe
    env:
      \"A\": \"1\"
"
    );
    let empty = read("").config;
    assert_eq!(
        to_yaml(&empty),
        "logfile: \"/sv/supervisord.log\"\nsocket: \"/sv/taskmaster.sock\"\nprograms: {}\n"
    );
}

#[test]
fn yaml_configurations_survive_the_round_trip_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/taskmaster.yaml");
    assert_round_trip(&Config::load(&path).unwrap());
}

#[test]
fn ini_servers_and_priorities_become_the_configuration() {
    let config = taskmaster_config::Config::parse_ini(
        "[unix_http_server]\nfile=/run/sv.sock\n\n[inet_http_server]\nport=127.0.0.1:9001\n\n[program:a]\ncommand=x\npriority=10\n",
        std::path::Path::new("/sv/t.conf"),
    )
    .unwrap();
    assert_eq!(config.socket, std::path::Path::new("/run/sv.sock"));
    assert_eq!(config.http.unwrap().listen.to_string(), "127.0.0.1:9001");
    assert_eq!(config.programs["a"].priority, 10);
}

#[test]
fn ini_inet_server_on_every_interface_without_credentials_is_a_warning_as_in_supervisord() {
    let text = "[inet_http_server]\nport=:9001\n";
    assert_eq!(
        warnings(text),
        ["/sv/t.conf:1:1: inet_http_server: 0.0.0.0:9001 can be reached from other machines without a password: anyone who reaches it controls every program (supervisord accepts it too, and warns); give a username and a password, or listen on 127.0.0.1"]
    );
    assert_eq!(
        read(text).config.http.map(|http| http.listen.to_string()),
        Some("0.0.0.0:9001".to_string())
    );
}

#[test]
fn the_event_logs_rotation_is_supervisords() {
    let ini = read("[supervisord]\nlogfile_maxbytes=1MB\nlogfile_backups=2\n");
    assert_eq!(
        ini.config.log_rotation,
        taskmaster_config::Rotation {
            maxbytes: 1 << 20,
            backups: 2
        }
    );
    let yaml = taskmaster_config::to_yaml(&ini.config);
    assert!(
        yaml.contains("logfile_maxbytes: 1048576\nlogfile_backups: 2\n"),
        "{yaml}"
    );
}

#[test]
fn programs_sharing_a_log_file_must_rotate_it_alike() {
    let text = "[program:a]\ncommand=x\nstdout_logfile=/var/log/shared.log\n\n\
                [program:b]\ncommand=y\nstdout_logfile=/var/log/shared.log\n\
                stdout_logfile_maxbytes=1MB\n";
    let found = errors(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("program:b")
            && found[0].contains("a file shared by streams must rotate alike"),
        "{found:?}"
    );
}

#[test]
fn a_group_puts_its_programs_processes_under_its_name() {
    let config = read("[group:site]\nprograms=web, api\npriority=5\n\n[program:web]\ncommand=run\n\n[program:api]\ncommand=run\nnumprocs=2\nprocess_name=api_%(process_num)d\n\n[program:db]\ncommand=run\n").config;
    let web = &config.programs["web"];
    assert_eq!(web.group.as_deref(), Some("site"));
    assert_eq!(web.full_name("web"), "site:web");
    assert_eq!(web.order(), (5, 999));
    let api = &config.programs["api"];
    assert_eq!(api.full_name(&api.process_names()[1]), "site:api_1");
    assert_eq!(api.processes[0].spec.group.as_deref(), Some("site"));
    assert_eq!(config.programs["db"].full_name("db"), "db");
    assert_eq!(config.groups["site"].programs, ["web", "api"]);
    assert_round_trip(&config);
    assert_eq!(
        errors(
            "[group:site]\nprograms=web\n[group:other]\nprograms=web\n[program:web]\ncommand=run\n"
        ),
        ["/sv/t.conf:1:1: group:site: program \"web\" is in group \"other\" already"]
    );
}

/// site.conf, the example of a pool with a port and a log file per process, a group and a
/// program run as another user, is read as root reads it.
#[test]
fn the_site_example_has_a_pool_a_group_and_a_user() {
    let nobody = taskmaster_config::User {
        name: "nobody".to_string(),
        uid: 65534,
        gid: 65534,
        groups: vec![65534],
        home: PathBuf::from("/nonexistent"),
        shell: PathBuf::from("/usr/sbin/nologin"),
    };
    let accounts = taskmaster_config::Accounts::listed(0, vec![nobody]);
    let config = Config::load_with(&example("site.conf"), &accounts)
        .unwrap_or_else(|e| panic!("site.conf:\n{e}"));
    let web = &config.programs["web"];
    let names: Vec<String> = web
        .process_names()
        .iter()
        .map(|name| web.full_name(name))
        .collect();
    assert_eq!(names, ["site:web_8001", "site:web_8002", "site:web_8003"]);
    assert_eq!(
        web.processes[1].spec.argv,
        [
            "python3",
            "-m",
            "http.server",
            "8002",
            "--bind",
            "127.0.0.1"
        ]
    );
    assert_eq!(
        web.processes[2].spec.stdout.as_deref(),
        Some(Path::new("/tmp/site-web-03.log"))
    );
    assert_eq!(
        config.programs["worker"].processes[1].spec.env["WORKER_ID"],
        "1"
    );
    let mailer = &config.programs["mailer"];
    assert_eq!(mailer.user.as_ref().map(|u| u.uid), Some(65534));
    assert_eq!(mailer.full_name("mailer"), "mailer");
    let yaml = to_yaml(&config);
    let again = Config::parse_with(&yaml, &config.path.with_extension("yaml"), &accounts)
        .unwrap_or_else(|e| panic!("{yaml}\n---\n{e}"));
    assert_eq!(again.programs, config.programs, "{yaml}");
    assert_eq!(again.groups, config.groups, "{yaml}");
}

#[test]
fn a_stream_sent_to_a_device_is_never_rotated() {
    // As in many container images: two programs on /dev/stdout, one with supervisord's
    // default maxbytes.
    let config = read("[program:web]\ncommand=run\nstdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n[program:php]\ncommand=run\nstdout_logfile=/dev/stdout\nredirect_stderr=true\n").config;
    for program in ["web", "php"] {
        let process = &config.programs[program].processes[0].spec;
        assert_eq!(process.stdout.as_deref(), Some(Path::new("/dev/stdout")));
        assert_eq!(process.stdout_rotation.maxbytes, 0, "{program}");
    }
}

#[test]
fn group_name_is_the_groups_name_in_a_group_as_in_supervisord() {
    let config = read("[program:web]\ncommand=run %(group_name)s\nenvironment=G=\"%(group_name)s\"\n[program:db]\ncommand=run %(group_name)s\n[group:site]\nprograms=web\n").config;
    assert_eq!(config.programs["web"].argv, ["run", "site"]);
    assert_eq!(config.programs["web"].processes[0].spec.env["G"], "site");
    assert_eq!(config.programs["db"].argv, ["run", "db"]);
}

// ---------------------------------------------------------------------------------------------
// supervisord-dependent-startup
// ---------------------------------------------------------------------------------------------

#[test]
fn dependent_startup_keys_become_depends_on_and_the_plugin_is_not_run() {
    use taskmaster_config::{Condition, Dependency};
    let text = "[eventlistener:dependentstartup]
command=python -m supervisord_dependent_startup
events=PROCESS_STATE

[program:db]
command=/bin/db
autostart=false
dependent_startup=true

[program:migrate]
command=/bin/migrate
autostart=false
dependent_startup=true
dependent_startup_wait_for=db:running

[program:web]
command=/bin/web
autostart=false
dependent_startup=true
dependent_startup_wait_for=db:RUNNING migrate:exited

[program:plain]
command=/bin/plain
autostart=false
dependent_startup_wait_for=db:running
";
    let ini = read(text);
    let programs = &ini.config.programs;
    assert!(!programs.contains_key("dependentstartup"));
    assert!(
        programs["db"].autostart,
        "the plugin would start it: taskmaster does"
    );
    assert!(programs["db"].depends_on.is_empty());
    assert_eq!(
        programs["web"].depends_on,
        [
            Dependency {
                program: "db".into(),
                condition: Condition::Running,
                restart: false
            },
            Dependency {
                program: "migrate".into(),
                condition: Condition::Exited,
                restart: false
            },
        ]
    );
    assert!(!programs["plain"].autostart);
    assert!(programs["plain"].depends_on.is_empty());
    assert_eq!(
        warnings(text),
        [
            "/sv/t.conf:1:1: eventlistener:dependentstartup: taskmaster starts programs in dependency order itself (dependent_startup, dependent_startup_wait_for): this listener, supervisord-dependent-startup, is not run",
            "/sv/t.conf:25:28: program:plain.dependent_startup_wait_for: ignored without dependent_startup = true (as supervisord-dependent-startup ignores it)",
        ]
    );
}

#[test]
fn dependent_startup_wait_for_refuses_other_states_and_unknown_programs() {
    let text = "[program:web]
command=/bin/web
dependent_startup=true
dependent_startup_wait_for=db:fatal cache:running
";
    let found = errors(text);
    assert_eq!(
        found,
        ["/sv/t.conf:4:28: program:web.dependent_startup_wait_for: \"db:fatal\": taskmaster waits for the states running and exited, found \"fatal\""]
    );
    let text = "[program:web]
command=/bin/web
dependent_startup=true
dependent_startup_wait_for=cache:running
";
    assert_eq!(
        errors(text),
        ["/sv/t.conf:4:28: program:web.dependent_startup_wait_for: depends on \"cache\", which is no program"]
    );
}
