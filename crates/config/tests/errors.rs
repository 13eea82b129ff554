//! Errors: all of them, in file order, each at its place; and what the YAML layer refuses.

use std::path::Path;

use taskmaster_config::{Config, ConfigErrors};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("t.yaml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = "\
programs:
  zeta:
    cmd: run
    numprocs: abc
  alpha:
    stopsignal: TERMM
    umask: 999
  web:
    cmd: \"sh -c 'oops\"
    stoptimee: 3
logfile: [x]
bogus: 1
";
    assert_eq!(
        errors(text),
        [
            "t.yaml:4:15: programs.zeta.numprocs: expected an integer >= 1, found \"abc\"",
            "t.yaml:5:3: programs.alpha: missing required key \"cmd\"",
            "t.yaml:6:17: programs.alpha.stopsignal: unknown signal \"TERMM\" (did you mean TERM?)",
            "t.yaml:7:12: programs.alpha.umask: expected an octal umask from 000 to 777 such as 022, found \"999\"",
            "t.yaml:9:10: programs.web.cmd: cannot split \"sh -c 'oops\" into words: missing closing quote",
            "t.yaml:10:5: programs.web: unknown key \"stoptimee\" (did you mean \"stoptime\"?)",
            "t.yaml:11:10: logfile: expected a path, found a list",
            "t.yaml:12:1: unknown key \"bogus\" (valid keys: programs, eventlisteners, groups, logfile, logfile_maxbytes, logfile_backups, socket, syslog_socket, http, alerting, cluster, pair, user, pidfile, loglevel, identifier, umask, directory, minfds, minprocs, strip_ansi, childlogdir, nocleanup, exit_when_done, socket_mode, socket_owner, socket_username, socket_password)",
        ]
    );
}

#[test]
fn the_display_of_all_errors_is_one_per_line() {
    let Err(errors) = parse("a: 1\nprograms:\n  web: {}\n") else {
        panic!("accepted");
    };
    assert_eq!(
        errors.to_string(),
        "t.yaml:1:1: unknown key \"a\" (valid keys: programs, eventlisteners, groups, logfile, logfile_maxbytes, logfile_backups, socket, syslog_socket, http, alerting, cluster, pair, user, pidfile, loglevel, identifier, umask, directory, minfds, minprocs, strip_ansi, childlogdir, nocleanup, exit_when_done, socket_mode, socket_owner, socket_username, socket_password)\n\
         t.yaml:3:3: programs.web: missing required key \"cmd\""
    );
}

#[test]
fn unknown_top_level_key_suggests_the_closest() {
    assert_eq!(
        errors("programz:\n  web: {cmd: x}\n"),
        ["t.yaml:1:1: unknown key \"programz\" (did you mean \"programs\"?)"]
    );
    assert_eq!(
        errors("log_file: x\n"),
        ["t.yaml:1:1: unknown key \"log_file\" (did you mean \"logfile\"?)"]
    );
}

#[test]
fn unknown_program_key_suggests_the_closest_or_lists_all() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: x\n    stoptimee: 3\n"),
        ["t.yaml:4:5: programs.web: unknown key \"stoptimee\" (did you mean \"stoptime\"?)"]
    );
    assert_eq!(
        errors("programs:\n  web:\n    command: x\n"),
        [
            "t.yaml:2:3: programs.web: missing required key \"cmd\"",
            "t.yaml:3:5: programs.web: unknown key \"command\" (did you mean \"cmd\"? command is supervisord's name for it)",
        ]
    );
    let far_off = errors("programs:\n  web:\n    cmd: x\n    qqqqqqqq: 1\n");
    assert_eq!(far_off.len(), 1);
    let valid = far_off[0]
        .split("(valid keys: ")
        .nth(1)
        .expect("the valid keys are listed");
    for key in [
        "cmd",
        "numprocs",
        "exitcodes",
        "stdout",
        "env",
        "healthcheck",
        "user",
        "alerts",
        "events)",
    ] {
        assert!(valid.contains(key), "{key} in {valid}");
    }
    assert_eq!(
        errors("programs:\n  web:\n    cmd: x\n    Umask: 022\n"),
        ["t.yaml:4:5: programs.web: unknown key \"Umask\" (did you mean \"umask\"?)"]
    );
}

#[test]
fn errors_in_several_programs_are_all_reported() {
    let text = "programs:\n  a: {cmd: x, numprocs: 0}\n  b: {cmd: x, numprocs: 0}\n  c: {cmd: x, numprocs: 0}\n";
    assert_eq!(parse(text).err().map(|e| e.len()), Some(3));
}

// ---- the YAML layer -------------------------------------------------------------------------

#[test]
fn yaml_syntax_error_is_reported_at_the_parsers_position() {
    assert_eq!(
        errors("programs:\n  web: [1, 2\n  db: 3\n"),
        ["t.yaml:3:5: YAML syntax error: illegal placement of ':' indicator"]
    );
    assert_eq!(
        errors("programs:\n\tweb: {}\n"),
        ["t.yaml:2:2: YAML syntax error: tabs disallowed within this context (block indentation)"]
    );
}

#[test]
fn duplicate_keys_are_reported_at_the_second_key() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: a\n    cmd: b\n"),
        ["t.yaml:4:5: programs.web: duplicate key \"cmd\" (first at line 3, column 5)"]
    );
    assert_eq!(
        errors("programs: {}\nprograms: {}\n"),
        ["t.yaml:2:1: duplicate key \"programs\" (first at line 1, column 1)"]
    );
}

#[test]
fn a_second_document_is_rejected() {
    assert_eq!(
        errors("programs: {}\n---\nprograms: {}\n"),
        ["t.yaml:2:1: a configuration file holds one YAML document; found a second one"]
    );
}

#[test]
fn aliases_copy_the_anchored_value() {
    let text = "\
programs:
  web:
    cmd: run
    env: &common
      A: 1
      B: two
    stopsignal: &sig INT
  db:
    cmd: run
    env: *common
    stopsignal: *sig
";
    let config = parse(text).unwrap();
    assert_eq!(config.programs["db"].env, config.programs["web"].env);
    assert_eq!(config.programs["db"].env["B"], "two");
    assert_eq!(config.programs["db"].stopsignal.name(), "INT");
}

#[test]
fn errors_in_an_alias_are_reported_where_the_alias_is_used() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: &c run\n    numprocs: *c\n"),
        ["t.yaml:4:15: programs.web.numprocs: expected an integer >= 1, found \"run\""]
    );
}

#[test]
fn recursive_alias_is_rejected() {
    assert_eq!(
        errors("programs: &a\n  web: *a\n"),
        ["t.yaml:2:8: programs.web: this alias refers to a value that contains it; recursive aliases are not allowed"]
    );
}

#[test]
fn unknown_alias_is_a_syntax_error() {
    assert_eq!(
        errors("programs: *nope\n"),
        ["t.yaml:1:11: YAML syntax error: while parsing node, found unknown anchor"]
    );
}

#[test]
fn alias_bombs_are_stopped_by_the_size_limit() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        let items = [prev.as_str(); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("the document is too large (more than 100000 values, aliases expanded)"),
        "{errors:?}"
    );
}

#[test]
fn deep_nesting_is_stopped_by_the_depth_limit() {
    let text = format!("programs: {}{}\n", "[".repeat(200), "]".repeat(200));
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("nested more than 64 levels deep"),
        "{errors:?}"
    );
    let text = "- ".repeat(5000) + "x\n";
    let errors = self::errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("nested more than 64 levels deep"),
        "{errors:?}"
    );
}

#[test]
fn quoted_null_is_a_string_not_nothing() {
    assert_eq!(
        errors("programs:\n  web:\n    cmd: x\n    stdout: \"null\"\n    umask: 'null'\n"),
        ["t.yaml:5:12: programs.web.umask: expected an octal umask from 000 to 777 such as 022, found \"null\""]
    );
}

#[test]
fn block_scalars_and_str_tags_are_strings() {
    let config = parse(
        "programs:\n  web:\n    cmd: >\n      sh -c\n      'echo hi'\n    stdout: !!str null\n",
    )
    .unwrap();
    let web = &config.programs["web"];
    assert_eq!(web.argv, ["sh", "-c", "echo hi"]);
    assert_eq!(web.stdout, Some(Path::new("./null").to_path_buf()));
}

#[test]
fn streams_sharing_a_file_must_rotate_alike() {
    let text = "programs:
  a: {cmd: x, stdout: /var/log/shared.log}
  b: {cmd: y, stdout: /var/log/shared.log, stdout_maxbytes: 1MB}
  c: {cmd: z, stderr: /var/log/shared.log, stderr_backups: 10}
";
    assert_eq!(
        errors(text),
        [
            "t.yaml:3:3: programs.b: stdout goes to /var/log/shared.log as a's stdout does, with \
          other rotation settings (stdout_maxbytes 1048576 and stdout_backups 10 here, 52428800 \
          and 10 there): a file shared by streams must rotate alike"
        ]
    );
    // Alike, or one program's two streams redirected into one file: accepted.
    let alike = "programs:
  a: {cmd: x, stdout: /var/log/shared.log, stdout_maxbytes: 1MB}
  b: {cmd: y, stderr: /var/log/shared.log, stderr_maxbytes: 1MB}
  c: {cmd: z, stdout: /var/log/c.log, stdout_maxbytes: 2MB, redirect_stderr: true}
";
    assert!(parse(alike).is_ok());
}
