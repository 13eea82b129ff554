//! Every program key: its default, each form it accepts, and each rejection with its message
//! and its line:column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use taskmaster_config::{AutoRestart, Config, ConfigErrors, ProgramSpec, Signal};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("t.yaml"))
}

/// A program `web` with `cmd: run` and `fields` (one key per line), starting on line 4.
fn program_text(fields: &str) -> String {
    let mut text = String::from("programs:\n  web:\n    cmd: run\n");
    for line in fields.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn program(fields: &str) -> ProgramSpec {
    match parse(&program_text(fields)) {
        Ok(mut config) => match config.programs.remove("web") {
            Some(spec) => spec,
            None => panic!("no program web"),
        },
        Err(e) => panic!("{fields:?}:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn program_errors(fields: &str) -> Vec<String> {
    errors(&program_text(fields))
}

// ---- defaults -------------------------------------------------------------------------------

#[test]
fn every_key_but_cmd_has_a_default() {
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
    assert_eq!(spec.stdout, None);
    assert_eq!(spec.stderr, None);
    assert_eq!(spec.stdout_syslog, None);
    assert_eq!(spec.stderr_syslog, None);
    assert!(spec.env.is_empty());
    assert_eq!(spec.workingdir, None);
    assert_eq!(spec.umask, None);
}

#[test]
fn logfile_defaults_to_taskmaster_log_beside_the_configuration() {
    let config = Config::parse("programs: {}", Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    assert_eq!(config.logfile, PathBuf::from("/etc/tm/taskmaster.log"));
    let config = Config::parse("", Path::new("taskmaster.yaml")).unwrap();
    assert_eq!(config.logfile, PathBuf::from("./taskmaster.log"));
}

#[test]
fn logfile_relative_is_resolved_against_the_configuration_folder() {
    let config = Config::parse("logfile: logs/tm.log", Path::new("/etc/tm/t.yaml")).unwrap();
    assert_eq!(config.logfile, PathBuf::from("/etc/tm/logs/tm.log"));
    let config = Config::parse("logfile: /var/log/tm.log", Path::new("/etc/tm/t.yaml")).unwrap();
    assert_eq!(config.logfile, PathBuf::from("/var/log/tm.log"));
}

#[test]
fn logfile_rejects_null_and_lists() {
    assert_eq!(
        errors("logfile:\n"),
        ["t.yaml:1:1: logfile: expected a path, found null"]
    );
    assert_eq!(
        errors("logfile: [a]\n"),
        ["t.yaml:1:10: logfile: expected a path, found a list"]
    );
}

#[test]
fn empty_file_and_missing_programs_mean_zero_programs() {
    for text in ["", "# nothing\n", "programs:\n", "programs: {}\n", "---\n"] {
        let config = parse(text).unwrap();
        assert!(config.programs.is_empty(), "{text:?}");
    }
}

// ---- cmd ------------------------------------------------------------------------------------

#[test]
fn cmd_is_required_and_reported_at_the_program_name() {
    assert_eq!(
        errors("programs:\n  web:\n    numprocs: 2\n"),
        ["t.yaml:2:3: programs.web: missing required key \"cmd\""]
    );
    assert_eq!(
        errors("programs:\n  web:\n"),
        ["t.yaml:2:3: programs.web: missing required key \"cmd\""]
    );
}

#[test]
fn cmd_is_split_like_a_shell_splits_it() {
    let spec = program_text("");
    let spec = spec.replace("cmd: run", r#"cmd: "sh -c 'echo \"hi there\"' x\\ y""#);
    let config = parse(&spec).unwrap();
    let web = &config.programs["web"];
    assert_eq!(web.cmd, r#"sh -c 'echo "hi there"' x\ y"#);
    assert_eq!(web.argv, ["sh", "-c", r#"echo "hi there""#, "x y"]);
}

#[test]
fn cmd_with_unbalanced_quote_is_an_error_naming_the_key() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: \"sh -c 'oops\"\n"),
        ["t.yaml:3:10: programs.web.cmd: cannot split \"sh -c 'oops\" into words: missing closing quote"]
    );
}

#[test]
fn cmd_must_have_at_least_one_word() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: \"  \"\n"),
        ["t.yaml:3:10: programs.web.cmd: expected a command, found \"  \""]
    );
    assert_eq!(
        errors("programs:\n  web:\n    cmd:\n"),
        ["t.yaml:3:5: programs.web.cmd: expected a command, found null"]
    );
    assert_eq!(
        errors("programs:\n  web:\n    cmd: [ls, -l]\n"),
        ["t.yaml:3:10: programs.web.cmd: expected a command, found a list"]
    );
}

// ---- numprocs, startretries -------------------------------------------------------------------

#[test]
fn numprocs_accepts_integers_from_1_to_1000_quoted_or_not() {
    assert_eq!(program("numprocs: 4").numprocs, 4);
    assert_eq!(program("numprocs: \"4\"").numprocs, 4);
    assert_eq!(program("numprocs: 1000").numprocs, 1000);
    assert_eq!(program("numprocs: 010").numprocs, 10);
}

#[test]
fn numprocs_rejects_zero_words_decimals_and_huge_numbers() {
    assert_eq!(
        program_errors("numprocs: abc"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found \"abc\""]
    );
    assert_eq!(
        program_errors("numprocs: 0"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found \"0\""]
    );
    assert_eq!(
        program_errors("numprocs: 1.5"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found \"1.5\""]
    );
    assert_eq!(
        program_errors("numprocs: -1"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found \"-1\""]
    );
    assert_eq!(
        program_errors("numprocs: 1001"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer <= 1000, found \"1001\""]
    );
    assert_eq!(
        program_errors("numprocs: 99999999999999999999999"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer <= 1000, found \"99999999999999999999999\""]
    );
    assert_eq!(
        program_errors("numprocs:"),
        ["t.yaml:4:5: programs.web.numprocs: expected an integer >= 1, found null"]
    );
    assert_eq!(
        program_errors("numprocs: {a: 1}"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found a mapping"]
    );
}

#[test]
fn startretries_accepts_zero_and_up() {
    assert_eq!(program("startretries: 0").startretries, 0);
    assert_eq!(program("startretries: 4294967295").startretries, u32::MAX);
    assert_eq!(
        program_errors("startretries: -1"),
        ["t.yaml:4:19: programs.web.startretries: expected an integer >= 0, found \"-1\""]
    );
    assert_eq!(
        program_errors("startretries: 4294967296"),
        ["t.yaml:4:19: programs.web.startretries: expected an integer <= 4294967295, found \"4294967296\""]
    );
    assert_eq!(
        program_errors("startretries: 2.0"),
        ["t.yaml:4:19: programs.web.startretries: expected an integer >= 0, found \"2.0\""]
    );
}

// ---- booleans -------------------------------------------------------------------------------

#[test]
fn autostart_accepts_true_false_yes_no_on_off_in_any_case() {
    for text in ["true", "True", "TRUE", "yes", "Yes", "on", "ON", "\"true\""] {
        assert!(program(&format!("autostart: {text}")).autostart, "{text}");
    }
    for text in ["false", "False", "no", "NO", "off", "Off", "'no'"] {
        assert!(!program(&format!("autostart: {text}")).autostart, "{text}");
    }
}

#[test]
fn autostart_rejects_other_words() {
    assert_eq!(
        program_errors("autostart: maybe"),
        ["t.yaml:4:16: programs.web.autostart: expected true or false (or yes/no, on/off, 1/0), found \"maybe\""]
    );
    // As in supervisord's files: 1 and 0 are booleans in both formats.
    assert!(program("autostart: 1").autostart);
    assert!(!program("autostart: 0").autostart);
}

// ---- autorestart ----------------------------------------------------------------------------

#[test]
fn autorestart_accepts_words_in_any_case_and_booleans() {
    let cases = [
        ("always", AutoRestart::Always),
        ("ALWAYS", AutoRestart::Always),
        ("never", AutoRestart::Never),
        ("Never", AutoRestart::Never),
        ("unexpected", AutoRestart::Unexpected),
        ("UnExpected", AutoRestart::Unexpected),
        ("true", AutoRestart::Always),
        ("yes", AutoRestart::Always),
        ("false", AutoRestart::Never),
        ("off", AutoRestart::Never),
    ];
    for (text, expected) in cases {
        assert_eq!(
            program(&format!("autorestart: {text}")).autorestart,
            expected,
            "{text}"
        );
    }
}

#[test]
fn autorestart_rejects_other_words_with_a_suggestion() {
    assert_eq!(
        program_errors("autorestart: alwyas"),
        ["t.yaml:4:18: programs.web.autorestart: expected always, never or unexpected (or true/false), found \"alwyas\" (did you mean \"always\"?)"]
    );
    assert_eq!(
        program_errors("autorestart: 5"),
        ["t.yaml:4:18: programs.web.autorestart: expected always, never or unexpected (or true/false), found \"5\""]
    );
}

// ---- exitcodes ------------------------------------------------------------------------------

#[test]
fn exitcodes_accepts_one_integer_or_a_list() {
    assert_eq!(program("exitcodes: 2").exitcodes, [2]);
    assert_eq!(program("exitcodes: [0, 2, 255]").exitcodes, [0, 2, 255]);
    assert_eq!(program("exitcodes:\n  - 1\n  - 3").exitcodes, [1, 3]);
    assert_eq!(program("exitcodes: []").exitcodes, Vec::<i32>::new());
    assert_eq!(program("exitcodes: \"7\"").exitcodes, [7]);
}

#[test]
fn exitcodes_rejects_each_code_outside_0_to_255_at_its_position() {
    assert_eq!(
        program_errors("exitcodes: [0, 256, x, -1]"),
        [
            "t.yaml:4:20: programs.web.exitcodes: expected an exit code from 0 to 255, found \"256\"",
            "t.yaml:4:25: programs.web.exitcodes: expected an exit code from 0 to 255, found \"x\"",
            "t.yaml:4:28: programs.web.exitcodes: expected an exit code from 0 to 255, found \"-1\"",
        ]
    );
    assert_eq!(
        program_errors("exitcodes: 1.0"),
        ["t.yaml:4:16: programs.web.exitcodes: expected an exit code from 0 to 255, found \"1.0\""]
    );
    assert_eq!(
        program_errors("exitcodes: {a: 1}"),
        ["t.yaml:4:16: programs.web.exitcodes: expected an exit code or a list of exit codes, found a mapping"]
    );
    assert_eq!(
        program_errors("exitcodes: [[1]]"),
        ["t.yaml:4:17: programs.web.exitcodes: expected an exit code from 0 to 255, found a list"]
    );
}

// ---- durations ------------------------------------------------------------------------------

#[test]
fn starttime_and_stoptime_accept_seconds_and_units() {
    assert_eq!(program("starttime: 0").starttime, Duration::ZERO);
    assert_eq!(
        program("starttime: 1.5").starttime,
        Duration::from_millis(1500)
    );
    assert_eq!(
        program("starttime: 500ms").starttime,
        Duration::from_millis(500)
    );
    assert_eq!(program("stoptime: 2m").stoptime, Duration::from_secs(120));
    assert_eq!(
        program("stoptime: \"30 s\"").stoptime,
        Duration::from_secs(30)
    );
    assert_eq!(program("stoptime: 1h").stoptime, Duration::from_secs(3600));
}

#[test]
fn durations_reject_negative_and_unknown_units_with_the_parsers_message() {
    assert_eq!(
        program_errors("starttime: -1"),
        ["t.yaml:4:16: programs.web.starttime: invalid duration \"-1\": must not be negative"]
    );
    assert_eq!(
        program_errors("stoptime: 10x"),
        ["t.yaml:4:15: programs.web.stoptime: invalid duration \"10x\": unknown unit \"x\" (expected ms, s, m or h)"]
    );
    assert_eq!(
        program_errors("stoptime: [1]"),
        ["t.yaml:4:15: programs.web.stoptime: expected a duration such as 1, 1.5s or 500ms, found a list"]
    );
}

// ---- stopsignal -----------------------------------------------------------------------------

#[test]
fn stopsignal_accepts_every_form() {
    for text in ["TERM", "SIGTERM", "term", "sigterm", "15", "\"15\""] {
        assert_eq!(
            program(&format!("stopsignal: {text}")).stopsignal,
            Signal::TERM,
            "{text}"
        );
    }
    assert_eq!(program("stopsignal: USR1").stopsignal, Signal::USR1);
    assert_eq!(program("stopsignal: SIGKILL").stopsignal, Signal::KILL);
    assert_eq!(program("stopsignal: RTMIN+2").stopsignal.number(), 36);
}

#[test]
fn stopsignal_rejects_unknown_names_with_a_suggestion() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: run\n    stopsignal: TERMM\n"),
        ["t.yaml:4:17: programs.web.stopsignal: unknown signal \"TERMM\" (did you mean TERM?)"]
    );
    assert_eq!(
        program_errors("stopsignal: 0"),
        ["t.yaml:4:17: programs.web.stopsignal: unknown signal \"0\" (signal numbers are 1 to 31 and 34 to 64)"]
    );
    assert_eq!(
        program_errors("stopsignal:"),
        ["t.yaml:4:5: programs.web.stopsignal: expected a signal name such as TERM, found null"]
    );
}

// ---- paths ----------------------------------------------------------------------------------

#[test]
fn stdout_and_stderr_are_paths_resolved_against_the_configuration_folder() {
    let text = program_text("stdout: out/web.log\nstderr: /var/log/web.err");
    let config = Config::parse(&text, Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    let web = &config.programs["web"];
    assert_eq!(web.stdout, Some(PathBuf::from("/etc/tm/out/web.log")));
    assert_eq!(web.stderr, Some(PathBuf::from("/var/log/web.err")));
}

#[test]
fn relative_paths_in_a_configuration_without_folder_resolve_against_dot() {
    let spec = program("stdout: web.log\nworkingdir: srv");
    assert_eq!(spec.stdout, Some(PathBuf::from("./web.log")));
    assert_eq!(spec.workingdir, Some(PathBuf::from("./srv")));
}

#[test]
fn null_stdout_stderr_and_workingdir_mean_none() {
    let spec = program("stdout: ~\nstderr:\nworkingdir: null");
    assert_eq!(spec.stdout, None);
    assert_eq!(spec.stderr, None);
    assert_eq!(spec.workingdir, None);
}

#[test]
fn workingdir_is_resolved_against_the_configuration_folder() {
    let text = program_text("workingdir: ../srv");
    let config = Config::parse(&text, Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    assert_eq!(
        config.programs["web"].workingdir,
        Some(PathBuf::from("/etc/tm/../srv"))
    );
}

#[test]
fn paths_reject_empty_strings_lists_and_nul() {
    assert_eq!(
        program_errors("stdout: \"\""),
        ["t.yaml:4:13: programs.web.stdout: expected a path, found \"\""]
    );
    assert_eq!(
        program_errors("workingdir: [a]"),
        ["t.yaml:4:17: programs.web.workingdir: expected a path, found a list"]
    );
    assert_eq!(
        program_errors("stderr: \"a\\0b\""),
        ["t.yaml:4:13: programs.web.stderr: a path cannot contain a NUL character"]
    );
}

// ---- syslog ---------------------------------------------------------------------------------

#[test]
fn stdout_and_stderr_syslog_send_the_lines_to_dev_log_and_no_file() {
    let spec = program("stdout: syslog\nstderr: SysLog");
    assert_eq!(spec.stdout, None);
    assert_eq!(spec.stdout_syslog, Some(PathBuf::from("/dev/log")));
    assert_eq!(spec.stderr, None);
    assert_eq!(spec.stderr_syslog, Some(PathBuf::from("/dev/log")));
    // A file of that name is written as a path.
    let spec = program("stdout: ./syslog");
    assert_eq!(spec.stdout, Some(PathBuf::from("././syslog")));
    assert_eq!(spec.stdout_syslog, None);
}

#[test]
fn stdout_syslog_true_sends_the_lines_to_syslog_beside_the_file() {
    let spec = program("stdout: out.log\nstdout_syslog: true\nstderr_syslog: no");
    assert_eq!(spec.stdout, Some(PathBuf::from("./out.log")));
    assert_eq!(spec.stdout_syslog, Some(PathBuf::from("/dev/log")));
    assert_eq!(spec.stderr_syslog, None);
    let spec = program("stdout: syslog\nstdout_syslog: yes");
    assert_eq!(
        (spec.stdout, spec.stdout_syslog),
        (None, Some(PathBuf::from("/dev/log")))
    );
}

#[test]
fn syslog_socket_is_a_top_level_path_that_every_syslog_stream_uses() {
    let text = "programs:\n  web: {cmd: run, stderr: syslog}\n  db: {cmd: run}\nsyslog_socket: run/log.sock\n";
    let config = Config::parse(text, Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    let socket = PathBuf::from("/etc/tm/run/log.sock");
    assert_eq!(config.syslog_socket, socket);
    assert_eq!(config.programs["web"].stderr_syslog, Some(socket));
    assert_eq!(config.programs["web"].stdout_syslog, None);
    assert_eq!(config.programs["db"].stderr_syslog, None);
    let config = parse("programs: {}\n").unwrap();
    assert_eq!(config.syslog_socket, PathBuf::from("/dev/log"));
}

#[test]
fn redirect_stderr_sends_stderr_to_syslog_with_stdout() {
    let spec = program("stdout: syslog\nredirect_stderr: true");
    assert_eq!(
        (spec.stderr, spec.stderr_syslog),
        (None, Some(PathBuf::from("/dev/log")))
    );
    let spec = program("stdout: out.log\nstdout_syslog: true\nredirect_stderr: true");
    assert_eq!(spec.stderr, spec.stdout);
    assert_eq!(spec.stderr_syslog, spec.stdout_syslog);
}

#[test]
fn syslog_keys_reject_contradictions_and_bad_values() {
    assert_eq!(
        program_errors("stdout: syslog\nstdout_syslog: false"),
        ["t.yaml:5:20: programs.web.stdout_syslog: stdout: syslog sends stdout to syslog, which stdout_syslog: false contradicts; remove one of them"]
    );
    assert_eq!(
        program_errors("stderr_syslog: sometimes"),
        ["t.yaml:4:20: programs.web.stderr_syslog: expected true or false (or yes/no, on/off, 1/0), found \"sometimes\""]
    );
    assert_eq!(
        program_errors("redirect_stderr: true\nstderr_syslog: true"),
        ["t.yaml:5:20: programs.web.stderr_syslog: give stderr_syslog or redirect_stderr: true, not both (with redirect_stderr, standard error goes where stdout goes)"]
    );
    assert_eq!(
        errors("syslog_socket: \"\"\nprograms: {}\n"),
        ["t.yaml:1:16: syslog_socket: expected a path, found \"\""]
    );
    assert_eq!(
        errors("syslog_socket: [a]\n"),
        ["t.yaml:1:16: syslog_socket: expected a path, found a list"]
    );
}

// ---- env ------------------------------------------------------------------------------------

#[test]
fn env_keeps_numbers_and_booleans_as_written() {
    let spec = program("env:\n  ANSWER: 42\n  DEBUG: true\n  RATIO: 1.50\n  NAME: web\n  EMPTY: \"\"\n  OCTAL: 022");
    let pairs: Vec<(&str, &str)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ANSWER", "42"),
            ("DEBUG", "true"),
            ("EMPTY", ""),
            ("NAME", "web"),
            ("OCTAL", "022"),
            ("RATIO", "1.50")
        ]
    );
}

#[test]
fn env_null_means_no_variables() {
    assert!(program("env:").env.is_empty());
    assert!(program("env: {}").env.is_empty());
}

#[test]
fn env_rejects_bad_names_null_values_and_nested_values() {
    assert_eq!(
        program_errors("env:\n  A=B: 1\n  \"\": 2\n  NULL_VALUE:\n  LIST: [1]"),
        [
            "t.yaml:5:7: programs.web.env: invalid variable name \"A=B\": a name is not empty and holds no \"=\" or NUL",
            "t.yaml:6:7: programs.web.env: invalid variable name \"\": a name is not empty and holds no \"=\" or NUL",
            "t.yaml:7:7: programs.web.env.NULL_VALUE: expected a value, found null (write \"\" for an empty value)",
            "t.yaml:8:13: programs.web.env.LIST: expected a string, number or boolean, found a list",
        ]
    );
    assert_eq!(
        program_errors("env: [A=1]"),
        ["t.yaml:4:10: programs.web.env: expected a mapping of variable names to values, found a list"]
    );
}

// ---- umask ----------------------------------------------------------------------------------

#[test]
fn plain_umask_022_is_octal() {
    assert_eq!(program("umask: 022").umask, Some(0o22));
}

#[test]
fn umask_digits_are_octal_however_written() {
    for text in ["022", "\"022\"", "'022'", "0o22", "22", "0022"] {
        assert_eq!(
            program(&format!("umask: {text}")).umask,
            Some(0o22),
            "{text}"
        );
    }
    assert_eq!(program("umask: '077'").umask, Some(0o77));
    assert_eq!(program("umask: 0").umask, Some(0));
    assert_eq!(program("umask: 777").umask, Some(0o777));
    assert_eq!(program("umask: ~").umask, None);
}

#[test]
fn umask_rejects_non_octal_digits_and_values_over_777() {
    let message = |found: &str| {
        format!("t.yaml:4:12: programs.web.umask: expected an octal umask from 000 to 777 such as 022, found {found}")
    };
    assert_eq!(program_errors("umask: 089"), [message("\"089\"")]);
    assert_eq!(program_errors("umask: 1000"), [message("\"1000\"")]);
    assert_eq!(program_errors("umask: 0x1f"), [message("\"0x1f\"")]);
    assert_eq!(program_errors("umask: -022"), [message("\"-022\"")]);
    assert_eq!(program_errors("umask: \"\""), [message("\"\"")]);
    assert_eq!(program_errors("umask: [1]"), [message("a list")]);
}

// ---- program names --------------------------------------------------------------------------

#[test]
fn program_names_allow_what_supervisord_allows() {
    let config =
        parse("programs:\n  a-b_c.d: {cmd: x}\n  9lives: {cmd: x}\n  \"<myapp>\": {cmd: x}\n  _x: {cmd: x}\n").unwrap();
    assert_eq!(
        config.programs.keys().collect::<Vec<_>>(),
        ["9lives", "<myapp>", "_x", "a-b_c.d"]
    );
}

#[test]
fn program_names_reject_colons_slashes_spaces_and_control_characters() {
    let message = |name: &str, col: usize| {
        format!("t.yaml:{}:3: programs: invalid program name {name:?}: a name is not empty and holds no space, \":\" (which separates a group from its process), \"/\" or control character, as supervisord's", col)
    };
    assert_eq!(
        errors("programs:\n  group:web: {cmd: x}\n  \"a b\": {cmd: x}\n  a/b: {cmd: x}\n  \"\": {cmd: x}\n  \"a\\tb\": {cmd: x}\n"),
        [
            message("group:web", 2),
            message("a b", 3),
            message("a/b", 4),
            message("", 5),
            message("a\tb", 6)
        ]
    );
}

#[test]
fn programs_whose_process_names_collide_are_rejected() {
    assert_eq!(
        errors("programs:\n  web: {cmd: x, numprocs: 2}\n  web_01: {cmd: y}\n"),
        ["t.yaml:3:3: programs.web_01: process name \"web_01\" is also a process of program \"web\""]
    );
}

#[test]
fn programs_and_programs_entries_must_be_mappings() {
    assert_eq!(
        errors("programs: [web]\n"),
        ["t.yaml:1:11: programs: expected a mapping of program names to programs, found a list"]
    );
    assert_eq!(
        errors("programs:\n  web: run\n"),
        ["t.yaml:2:8: programs.web: expected a mapping of program keys, found \"run\""]
    );
    assert_eq!(
        errors("- programs\n"),
        ["t.yaml:1:1: expected a mapping with keys such as \"programs\", found a list"]
    );
    assert_eq!(
        errors("hello\n"),
        ["t.yaml:1:1: expected a mapping with keys such as \"programs\", found \"hello\""]
    );
}

#[test]
fn keys_must_be_names_not_collections() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: x\n    ? [a]\n    : 1\n"),
        ["t.yaml:4:7: programs.web: expected a key name, found a list"]
    );
}

#[test]
fn process_names_that_do_not_collide_are_accepted() {
    let text = "programs:\n  web: {cmd: x, numprocs: 2}\n  web_02: {cmd: y}\n  web_1: {cmd: y}\n  web_01x: {cmd: y}\n  db_00: {cmd: y}\n  web_01_00: {cmd: y, numprocs: 2}\n";
    assert!(parse(text).is_ok());
    let text = "programs:\n  web_01: {cmd: y}\n  web: {cmd: x, numprocs: 1}\n";
    assert!(parse(text).is_ok());
}

#[test]
fn process_name_collision_is_reported_whatever_the_order() {
    assert_eq!(
        errors("programs:\n  w_10: {cmd: y}\n  w: {cmd: x, numprocs: 11}\n"),
        ["t.yaml:2:3: programs.w_10: process name \"w_10\" is also a process of program \"w\""]
    );
}

#[test]
fn socket_defaults_beside_the_file_and_resolves_relative_paths() {
    let config = Config::parse("programs: {}\n", Path::new("/etc/tm/t.yaml")).unwrap();
    assert_eq!(config.socket, Path::new("/etc/tm/taskmaster.sock"));
    let config = Config::parse("socket: run/tm.sock\n", Path::new("/etc/tm/t.yaml")).unwrap();
    assert_eq!(config.socket, Path::new("/etc/tm/run/tm.sock"));
}

#[test]
fn http_on_loopback_needs_no_credentials() {
    let config = Config::parse("http:\n  listen: 127.0.0.1:9001\n", Path::new("/t.yaml")).unwrap();
    let http = config.http.expect("an http listener");
    assert_eq!(http.listen.to_string(), "127.0.0.1:9001");
    assert_eq!(http.credentials, None);
}

#[test]
fn http_on_a_reachable_address_without_credentials_is_refused() {
    let errors =
        Config::parse("http:\n  listen: 0.0.0.0:9001\n", Path::new("/t.yaml")).unwrap_err();
    let text = errors.to_string();
    assert!(text.starts_with("/t.yaml:2:3: http:"), "{text}");
    assert!(text.contains("give a username and a password"), "{text}");
    let config = Config::parse(
        "http:\n  listen: 0.0.0.0:9001\n  username: admin\n  password: s3cret\n",
        Path::new("/t.yaml"),
    )
    .unwrap();
    let credentials = config.http.unwrap().credentials.unwrap();
    assert_eq!(
        (credentials.username.as_str(), credentials.password.as_str()),
        ("admin", "s3cret")
    );
}

#[test]
fn http_errors_name_the_place_and_the_cause() {
    for (yaml, needle) in [
        (
            "http:\n  listen: nine\n",
            "expected an address such as 127.0.0.1:9001",
        ),
        ("http:\n  username: a\n", "missing required key \"listen\""),
        (
            "http:\n  listen: 127.0.0.1:1\n  username: a\n",
            "username and password go together",
        ),
        ("http: 9001\n", "expected a mapping with listen"),
        (
            "http:\n  listen: 127.0.0.1:1\n  user: a\n",
            "unknown key \"user\"",
        ),
    ] {
        let text = Config::parse(yaml, Path::new("/t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(text.contains(needle), "{yaml:?}: {text}");
    }
}

#[test]
fn priority_defaults_to_999_and_takes_an_integer() {
    let config = Config::parse(
        "programs:\n  a:\n    cmd: x\n  b:\n    cmd: x\n    priority: 5\n",
        Path::new("/t.yaml"),
    )
    .unwrap();
    assert_eq!(config.programs["a"].priority, 999);
    assert_eq!(config.programs["b"].priority, 5);
    let text = Config::parse(
        "programs:\n  a:\n    cmd: x\n    priority: high\n",
        Path::new("/t.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(text.contains("programs.a.priority"), "{text}");
}

// ---- processes of a program ------------------------------------------------------------------

#[test]
fn a_pool_gives_each_process_its_own_expanded_settings() {
    let text = "programs:\n  api:\n    cmd: \"serve --port=80%(process_num)02d\"\n    numprocs: 3\n    numprocs_start: 1\n    stdout: \"/var/log/api_%(process_num)02d.log\"\n    env: {SLOT: \"%(process_name)s\", GROUP: \"%(group_name)s\"}\n";
    let errors = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
    // %(process_name)s is not one of supervisord's names for a value: said with its place.
    assert!(errors.contains("unknown name %(process_name)"), "{errors}");
    let text = text.replace("%(process_name)s", "%(program_name)s-%(process_num)d");
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let api = &config.programs["api"];
    assert_eq!(api.process_names(), ["api_01", "api_02", "api_03"]);
    let process = |i: usize| &api.processes[i].spec;
    assert_eq!(process(0).argv, ["serve", "--port=8001"]);
    assert_eq!(process(2).argv, ["serve", "--port=8003"]);
    assert_eq!(
        process(1).stdout.as_deref(),
        Some(Path::new("/var/log/api_02.log"))
    );
    assert_eq!(process(1).env["SLOT"], "api-2");
    assert_eq!(process(1).env["GROUP"], "api");
    // The program as written: what `convert` writes back.
    assert_eq!(api.cmd, "serve --port=80%(process_num)02d");
    let yaml = taskmaster_config::to_yaml(&config);
    let again = Config::parse(&yaml, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{yaml}\n{e}"));
    assert_eq!(again.programs, config.programs, "{yaml}");
}

#[test]
fn process_name_takes_any_pattern_and_the_names_must_differ() {
    let spec = program("numprocs: 2\nprocess_name: \"worker-%(process_num)d\"");
    assert_eq!(spec.process_names(), ["worker-0", "worker-1"]);
    assert_eq!(spec.full_name("worker-0"), "web:worker-0");
    assert_eq!(
        program_errors("numprocs: 2\nprocess_name: same"),
        ["t.yaml:5:19: programs.web.process_name: processes 0 and 1 of web are both named \"same\": process_name must tell them apart (use %(process_num)d in it)"]
    );
    // Without process_name: NAME, or NAME_00, NAME_01...
    assert_eq!(program("").process_names(), ["web"]);
    assert_eq!(program("numprocs: 2").process_names(), ["web_00", "web_01"]);
}

#[test]
fn a_value_without_expansions_keeps_its_percent_signs() {
    let spec = program("env: {FORMAT: \"+%s\"}");
    assert_eq!(spec.env["FORMAT"], "+%s");
    // In a value that uses expansions, a lone % is an error at its place, as in supervisord.
    let errors = program_errors("env: {FORMAT: \"+%s %(process_num)d\"}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("t.yaml:4:19: programs.web.env.FORMAT: \"%\" must start an expansion"),
        "{errors:?}"
    );
}

#[test]
fn an_error_in_every_process_is_said_once() {
    let errors = program_errors("numprocs: 3\nstopsignal: \"%(program_name)s\"");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("programs.web.stopsignal"), "{errors:?}");
}

#[test]
fn groups_put_programs_under_one_name() {
    let config = parse("programs:\n  web: {cmd: run}\n  api: {cmd: run, numprocs: 2}\ngroups:\n  site: {programs: [web, api], priority: 10}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = config
        .programs
        .values()
        .flat_map(|spec| {
            spec.process_names()
                .into_iter()
                .map(|p| spec.full_name(&p))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, ["site:api_00", "site:api_01", "site:web"]);
    assert_eq!(
        errors("programs:\n  web: {cmd: run}\ngroups:\n  site: {programs: [web, nope]}\n  web: {programs: []}\n"),
        [
            "t.yaml:4:3: groups.site: no program \"nope\" to put in it",
            "t.yaml:5:3: groups.web: group \"web\" has the name of a program that is not in it",
        ]
    );
}

#[test]
fn group_name_is_the_groups_name_in_a_group() {
    let config = parse("programs:\n  web: {cmd: run, env: {G: \"%(group_name)s\"}}\n  db: {cmd: run, env: {G: \"%(group_name)s\"}}\ngroups:\n  site: {programs: [web]}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.programs["web"].processes[0].spec.env["G"], "site");
    assert_eq!(config.programs["db"].processes[0].spec.env["G"], "db");
}

// ---- socket (FastCGI) -------------------------------------------------------------------------

#[test]
fn socket_makes_a_fastcgi_program_whose_stdin_is_the_socket() {
    let spec = program("socket: unix://php.sock\nsocket_mode: \"0660\"");
    let socket = spec.fcgi_socket.expect("a socket");
    assert_eq!(
        socket.address,
        taskmaster_config::SocketAddress::Unix("./php.sock".into())
    );
    assert_eq!(socket.mode, 0o660);
    assert_eq!(
        program_errors("socket_backlog: 5"),
        ["t.yaml:4:21: programs.web.socket_backlog: socket_backlog needs socket (the listening socket of a FastCGI program)"]
    );
    assert_eq!(
        program_errors("socket: tcp://127.0.0.1:9000\nstdin: pipe"),
        ["t.yaml:5:12: programs.web.stdin: give stdin or socket, not both: the socket is each process's stdin (fd 0), as FastCGI wants it"]
    );
}

#[test]
fn serverurl_is_auto_by_default_and_otherwise_the_programs_own() {
    assert_eq!(program("").serverurl, None);
    assert_eq!(program("serverurl: AUTO").serverurl, None);
    assert_eq!(program("serverurl: auto").serverurl, None);
    assert_eq!(
        program("serverurl: http://127.0.0.1:9001")
            .serverurl
            .as_deref(),
        Some("http://127.0.0.1:9001")
    );
    // supervisord's empty value: no SUPERVISOR_SERVER_URL at all.
    assert_eq!(program("serverurl: \"\"").serverurl.as_deref(), Some(""));
    assert_eq!(
        program_errors("serverurl: [a]"),
        ["t.yaml:4:16: programs.web.serverurl: expected AUTO or a URL such as http://127.0.0.1:9001, found a list"]
    );
}

// ---- eventlisteners ------------------------------------------------------------------------

#[test]
fn eventlisteners_are_programs_with_the_events_they_hear() {
    let config = parse(
        "eventlisteners:\n  mail:\n    cmd: crashmail -a\n    events: [PROCESS_STATE_EXITED, tick_60]\n    buffer_size: 3\n  all: {cmd: rec, events: \"EVENT\"}\nprograms:\n  web: {cmd: run}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mail = config.programs["mail"]
        .listener
        .clone()
        .expect("a listener");
    assert_eq!(
        mail.events,
        [
            taskmaster_config::EventType::ProcessStateExited,
            taskmaster_config::EventType::Tick60
        ]
    );
    assert_eq!(mail.buffer_size, 3);
    assert_eq!(
        config.programs["all"]
            .listener
            .as_ref()
            .map(|l| l.buffer_size),
        Some(10)
    );
    // Listeners start first, and their stdin is where the events come.
    assert_eq!(config.programs["mail"].priority, 0);
    assert_eq!(
        config.programs["mail"].stdin,
        taskmaster_config::Stdin::Pipe
    );
    assert!(config.programs["web"].listener.is_none());
    let yaml = taskmaster_config::to_yaml(&config);
    let again = parse(&yaml).unwrap_or_else(|e| panic!("{yaml}\n{e}"));
    assert_eq!(again.programs, config.programs, "{yaml}");
}

#[test]
fn eventlisteners_say_what_is_wrong_with_their_events() {
    assert_eq!(
        errors("eventlisteners:\n  mail: {cmd: x}\n"),
        ["t.yaml:2:3: eventlisteners.mail: missing required key \"events\": the event types it listens to (PROCESS_STATE, TICK_60...)"]
    );
    assert_eq!(
        errors("eventlisteners:\n  mail: {cmd: x, events: [PROCES_STATE]}\n"),
        ["t.yaml:2:27: eventlisteners.mail.events: unknown event type \"PROCES_STATE\" (did you mean PROCESS_STATE?)"]
    );
    assert_eq!(
        errors("programs:\n  web: {cmd: x, events: [TICK_5]}\n"),
        ["t.yaml:2:25: programs.web.events: events belongs to an event listener ([eventlistener:x] in supervisord's files, eventlisteners: in taskmaster's)"]
    );
    assert_eq!(
        errors("eventlisteners:\n  mail: {cmd: x, events: [TICK_5], redirect_stderr: true}\n"),
        ["t.yaml:2:53: eventlisteners.mail.redirect_stderr: an event listener's stdout carries the protocol: redirect_stderr would mix standard error into it (supervisord refuses it too)"]
    );
    assert_eq!(
        errors("programs:\n  web: {cmd: x}\neventlisteners:\n  web: {cmd: x, events: [TICK_5]}\n"),
        ["t.yaml:4:3: eventlisteners: a program named \"web\" is already defined (programs and eventlisteners share their names)"]
    );
}

// ---- rlimits -----------------------------------------------------------------------------------

#[test]
fn rlimits_are_resource_limits_by_their_ulimit_names() {
    let spec = program("rlimits: {nofile: 256, core: unlimited, stack: \"8MB:16MB\"}");
    let limits: Vec<String> = spec
        .rlimits
        .iter()
        .map(|(resource, limit)| format!("{} {limit}", resource.name()))
        .collect();
    assert_eq!(
        limits,
        ["core unlimited", "nofile 256", "stack 8388608:16777216"]
    );
    assert_eq!(
        program_errors("rlimits: {nofiles: 1, nofile: lots, nproc: \"5:2\"}"),
        [
            "t.yaml:4:15: programs.web.rlimits: unknown resource \"nofiles\" (did you mean \"nofile\"?) (the resources are as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
            "t.yaml:4:35: programs.web.rlimits.nofile: expected a number such as 1024, unlimited, or SOFT:HARD, found \"lots\"",
            "t.yaml:4:48: programs.web.rlimits.nproc: the soft limit is above the hard one in \"5:2\"",
        ]
    );
}

#[test]
fn an_rlimit_above_taskmasters_own_hard_limit_is_refused_unless_root() {
    let text = "programs:\n  web:\n    cmd: run\n    rlimits: {nofile: unlimited}\n";
    let path = std::path::Path::new("/etc/taskmaster/t.yaml");
    // RLIMIT_NOFILE is never unlimited: no process but root may ask for it.
    let user = taskmaster_config::Accounts::listed(1000, Vec::new());
    let errors = taskmaster_config::Config::parse_with(text, path, &user)
        .expect_err("refused as another user than root");
    assert!(
        errors
            .to_string()
            .contains("nofile unlimited is above taskmaster's own hard limit"),
        "{errors}"
    );
    let root = taskmaster_config::Accounts::listed(0, Vec::new());
    assert!(taskmaster_config::Config::parse_with(text, path, &root).is_ok());
}

// ---------------------------------------------------------------------------------------------
// depends_on
// ---------------------------------------------------------------------------------------------

const DEPENDENCIES: &str = "programs:
  db:
    cmd: run
    healthcheck: {cmd: check}
  cache:
    cmd: run
  web:
    cmd: run
    depends_on: [db, cache]
  worker:
    cmd: run
    depends_on:
      db: {condition: healthy}
      cache: {condition: running, restart: true}
      web: ~
";

#[test]
fn depends_on_is_a_list_of_programs_or_a_mapping_with_conditions() {
    use taskmaster_config::{Condition, Dependency};
    let config = parse(DEPENDENCIES).unwrap_or_else(|e| panic!("{e}"));
    let running = |program: &str| Dependency {
        program: program.into(),
        condition: Condition::Running,
        restart: false,
    };
    assert_eq!(
        config.programs["web"].depends_on,
        [running("db"), running("cache")]
    );
    assert_eq!(
        config.programs["worker"].depends_on,
        [
            Dependency {
                condition: Condition::Healthy,
                ..running("db")
            },
            Dependency {
                restart: true,
                ..running("cache")
            },
            running("web"),
        ]
    );
    assert!(config.programs["db"].depends_on.is_empty());
    // `convert` writes them back as read.
    let again = parse(&taskmaster_config::to_yaml(&config)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again.programs["worker"].depends_on,
        config.programs["worker"].depends_on
    );
    assert_eq!(
        again.programs["web"].depends_on,
        config.programs["web"].depends_on
    );
}

#[test]
fn a_dependency_graph_with_a_cycle_an_unknown_name_or_an_impossible_condition_is_refused() {
    let text = "programs:
  a:
    cmd: run
    depends_on: [b]
  b:
    cmd: run
    depends_on: [c]
  c:
    cmd: run
    depends_on: [a, dbb]
  d:
    cmd: run
    depends_on: {c: {condition: healthy}, a: {condition: ready}, b: {condition: soon}}
  e:
    cmd: run
    depends_on: [e]
  f:
    cmd: run
    depends_on: web
";
    assert_eq!(
        errors(text),
        [
            "t.yaml:4:17: programs.a.depends_on: a cycle of dependencies: a -> b -> c -> a",
            "t.yaml:10:17: programs.c.depends_on: depends on \"dbb\", which is no program",
            "t.yaml:13:17: programs.d.depends_on: waits for c to be healthy, but it has no healthcheck: it never will be",
            "t.yaml:13:17: programs.d.depends_on: waits for a to be ready, but it has no `ready: notify`: it never will be",
            "t.yaml:13:81: programs.d.depends_on.b.condition: expected running, healthy, exited or ready, found \"soon\"",
            "t.yaml:16:17: programs.e.depends_on: e depends on itself",
            "t.yaml:19:17: programs.f.depends_on: expected a list of programs such as [db, cache], or a mapping such as {db: {condition: healthy}}, found \"web\"",
        ]
    );
}
