//! The liveness keys of a program (`stdin`, `ready`, `readytime`, `watchdog`,
//! `watchdog_paused`, `healthcheck`, `on_exit`, `on_exit_timeout`, `restart_limit`, `backoff`,
//! `alerts`): each default, each form accepted, and each rejection with its message and its
//! line:column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use taskmaster_config::{
    Alert, AlertLevel, Backoff, Config, ConfigErrors, HealthCheck, Hook, HttpProbe, Probe,
    ProgramSpec, Readiness, RestartLimit, Stdin, Stream, WatchdogPaused,
};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("t.yaml"))
}

/// A program `web` with `cmd: run` and `fields` (indented by 4), starting on line 4.
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

fn program_errors(fields: &str) -> Vec<String> {
    let text = program_text(fields);
    match parse(&text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- defaults -------------------------------------------------------------------------------

#[test]
fn every_liveness_key_has_a_default() {
    let spec = program("");
    assert_eq!(spec.stdin, Stdin::Null);
    assert_eq!(spec.ready, Readiness::Started);
    assert_eq!(spec.readytime, secs(30));
    assert_eq!(spec.watchdog, None);
    assert_eq!(spec.watchdog_paused, WatchdogPaused::Ignore);
    assert_eq!(spec.healthcheck, None);
    assert_eq!(spec.on_exit, None);
    assert_eq!(spec.restart_limit, None);
    assert_eq!(spec.backoff.as_deref(), Some(&Backoff::THROTTLE));
    assert!(spec.alerts.is_empty());
}

// ---- stdin ----------------------------------------------------------------------------------

#[test]
fn stdin_is_a_path_resolved_against_the_configuration_folder_and_not_checked() {
    let text = program_text("stdin: data/missing-input.txt");
    let config = Config::parse(&text, Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    assert_eq!(
        config.programs["web"].stdin,
        Stdin::File(PathBuf::from("/etc/tm/data/missing-input.txt"))
    );
    assert_eq!(
        program("stdin: /dev/zero").stdin,
        Stdin::File(PathBuf::from("/dev/zero"))
    );
}

#[test]
fn stdin_pipe_is_a_word_and_a_file_of_that_name_is_dot_slash_pipe() {
    assert_eq!(program("stdin: pipe").stdin, Stdin::Pipe);
    let text = program_text("stdin: ./pipe");
    let config = Config::parse(&text, Path::new("/etc/tm/taskmaster.yaml")).unwrap();
    assert_eq!(
        config.programs["web"].stdin,
        Stdin::File(PathBuf::from("/etc/tm/./pipe"))
    );
}

#[test]
fn null_stdin_means_dev_null() {
    assert_eq!(program("stdin:").stdin, Stdin::Null);
    assert_eq!(program("stdin: ~").stdin, Stdin::Null);
}

#[test]
fn stdin_rejects_empty_strings_and_lists() {
    assert_eq!(
        program_errors("stdin: \"\""),
        ["t.yaml:4:12: programs.web.stdin: expected a path, found \"\""]
    );
    assert_eq!(
        program_errors("stdin: [a]"),
        ["t.yaml:4:12: programs.web.stdin: expected a path, found a list"]
    );
}

// ---- ready, readytime -----------------------------------------------------------------------

#[test]
fn ready_is_started_or_notify_in_any_case() {
    assert_eq!(program("ready: started").ready, Readiness::Started);
    assert_eq!(program("ready: notify").ready, Readiness::Notify);
    assert_eq!(program("ready: NOTIFY").ready, Readiness::Notify);
}

#[test]
fn ready_rejects_other_words_with_a_suggestion() {
    assert_eq!(
        program_errors("ready: notfy"),
        ["t.yaml:4:12: programs.web.ready: expected started or notify, found \"notfy\" (did you mean \"notify\"?)"]
    );
    assert_eq!(
        program_errors("ready: true"),
        ["t.yaml:4:12: programs.web.ready: expected started or notify, found \"true\""]
    );
    assert_eq!(
        program_errors("ready:"),
        ["t.yaml:4:5: programs.web.ready: expected started or notify, found null"]
    );
}

#[test]
fn readytime_is_a_duration_above_zero() {
    assert_eq!(program("readytime: 5").readytime, secs(5));
    assert_eq!(
        program("readytime: 250ms").readytime,
        Duration::from_millis(250)
    );
    assert_eq!(
        program_errors("readytime: 0"),
        ["t.yaml:4:16: programs.web.readytime: expected a duration > 0, found \"0\""]
    );
    assert_eq!(
        program_errors("readytime: 0ms"),
        ["t.yaml:4:16: programs.web.readytime: expected a duration > 0, found \"0ms\""]
    );
    assert_eq!(
        program_errors("readytime: -1"),
        ["t.yaml:4:16: programs.web.readytime: invalid duration \"-1\": must not be negative"]
    );
    assert_eq!(
        program_errors("readytime:"),
        ["t.yaml:4:5: programs.web.readytime: expected a duration such as 1, 1.5s or 500ms, found null"]
    );
}

// ---- watchdog, watchdog_paused --------------------------------------------------------------

#[test]
fn watchdog_is_a_duration_above_zero_and_null_means_none() {
    assert_eq!(program("watchdog: 5s").watchdog, Some(secs(5)));
    assert_eq!(
        program("watchdog: 1.5").watchdog,
        Some(Duration::from_millis(1500))
    );
    assert_eq!(program("watchdog:").watchdog, None);
    assert_eq!(
        program_errors("watchdog: 0s"),
        ["t.yaml:4:15: programs.web.watchdog: expected a duration > 0, found \"0s\""]
    );
    assert_eq!(
        program_errors("watchdog: soon"),
        ["t.yaml:4:15: programs.web.watchdog: invalid duration \"soon\": expected a number of seconds such as 1 or 1.5, or a number with a unit ms, s, m or h such as 500ms"]
    );
}

#[test]
fn watchdog_paused_is_ignore_or_restart() {
    assert_eq!(
        program("watchdog_paused: ignore").watchdog_paused,
        WatchdogPaused::Ignore
    );
    assert_eq!(
        program("watchdog_paused: Restart").watchdog_paused,
        WatchdogPaused::Restart
    );
    assert_eq!(
        program_errors("watchdog_paused: restrat"),
        ["t.yaml:4:22: programs.web.watchdog_paused: expected ignore or restart, found \"restrat\" (did you mean \"restart\"?)"]
    );
    assert_eq!(
        program_errors("watchdog_paused: ~"),
        ["t.yaml:4:22: programs.web.watchdog_paused: expected ignore or restart, found null"]
    );
}

// ---- healthcheck ----------------------------------------------------------------------------

#[test]
fn healthcheck_cmd_takes_the_timing_defaults() {
    let check = program("healthcheck:\n  cmd: \"test -e /tmp/ok\"")
        .healthcheck
        .map(|check| *check);
    assert_eq!(
        check,
        Some(HealthCheck {
            probe: Probe::Cmd("test -e /tmp/ok".to_string()),
            interval: secs(30),
            timeout: secs(30),
            retries: 3,
            start_period: Duration::ZERO,
        })
    );
}

#[test]
fn healthcheck_timing_keys_are_read() {
    let check = program(
        "healthcheck:\n  tcp: 127.0.0.1:5432\n  interval: 5s\n  timeout: 500ms\n  retries: 1\n  start_period: 1m",
    )
    .healthcheck
    .map(|check| *check);
    assert_eq!(
        check,
        Some(HealthCheck {
            probe: Probe::Tcp("127.0.0.1:5432".to_string()),
            interval: secs(5),
            timeout: Duration::from_millis(500),
            retries: 1,
            start_period: secs(60),
        })
    );
}

#[test]
fn healthcheck_http_url_is_taken_apart() {
    let check = program("healthcheck: {http: \"http://[::1]:8080/health?deep=1\"}")
        .healthcheck
        .unwrap();
    assert_eq!(
        check.probe,
        Probe::Http(HttpProbe {
            url: "http://[::1]:8080/health?deep=1".to_string(),
            address: "[::1]:8080".to_string(),
            host: "[::1]:8080".to_string(),
            path: "/health?deep=1".to_string(),
        })
    );
    let check = program("healthcheck: {http: \"http://localhost\"}")
        .healthcheck
        .unwrap();
    let Probe::Http(http) = check.probe else {
        panic!("{check:?}")
    };
    assert_eq!(
        (
            http.address.as_str(),
            http.host.as_str(),
            http.path.as_str()
        ),
        ("localhost:80", "localhost", "/")
    );
}

#[test]
fn healthcheck_needs_exactly_one_probe() {
    assert_eq!(
        program_errors("healthcheck:\n  interval: 5s"),
        ["t.yaml:5:7: programs.web.healthcheck: missing a probe: give one of cmd, http or tcp"]
    );
    assert_eq!(
        program_errors("healthcheck: {}"),
        ["t.yaml:4:18: programs.web.healthcheck: missing a probe: give one of cmd, http or tcp"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  cmd: \"true\"\n  http: \"http://h/\""),
        ["t.yaml:5:7: programs.web.healthcheck: give only one of cmd, http or tcp, found cmd and http"]
    );
}

#[test]
fn healthcheck_probe_values_are_checked_at_the_value() {
    assert_eq!(
        program_errors("healthcheck:\n  http: \"https://127.0.0.1/health\""),
        ["t.yaml:5:13: programs.web.healthcheck.http: invalid URL \"https://127.0.0.1/health\": only plain http:// is supported, not https://"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  http: \"http://admin@h/\""),
        ["t.yaml:5:13: programs.web.healthcheck.http: invalid URL \"http://admin@h/\": a user name (user@) is not supported"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  http: \"http://h/#status\""),
        ["t.yaml:5:13: programs.web.healthcheck.http: invalid URL \"http://h/#status\": a fragment (#...) is never sent to the server: remove it"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  tcp: localhost"),
        ["t.yaml:5:12: programs.web.healthcheck.tcp: invalid address \"localhost\": expected host:port such as 127.0.0.1:5432"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  tcp: \"h:70000\""),
        ["t.yaml:5:12: programs.web.healthcheck.tcp: invalid address \"h:70000\": expected a port from 1 to 65535, found \"70000\""]
    );
    assert_eq!(
        program_errors("healthcheck:\n  cmd: \" \""),
        ["t.yaml:5:12: programs.web.healthcheck.cmd: expected a shell command, found \" \""]
    );
    assert_eq!(
        program_errors("healthcheck:\n  cmd:"),
        ["t.yaml:5:7: programs.web.healthcheck.cmd: expected a shell command, found null"]
    );
}

#[test]
fn healthcheck_timing_values_are_checked() {
    assert_eq!(
        program_errors("healthcheck:\n  cmd: x\n  retries: 0\n  interval: 0\n  timeout: 0s\n  start_period: -1"),
        [
            "t.yaml:6:16: programs.web.healthcheck.retries: expected an integer >= 1, found \"0\"",
            "t.yaml:7:17: programs.web.healthcheck.interval: expected a duration > 0, found \"0\"",
            "t.yaml:8:16: programs.web.healthcheck.timeout: expected a duration > 0, found \"0s\"",
            "t.yaml:9:21: programs.web.healthcheck.start_period: invalid duration \"-1\": must not be negative",
        ]
    );
    assert_eq!(
        program("healthcheck: {cmd: x, start_period: 0}")
            .healthcheck
            .unwrap()
            .start_period,
        Duration::ZERO
    );
}

#[test]
fn healthcheck_unknown_keys_suggest_the_closest() {
    assert_eq!(
        program_errors("healthcheck:\n  cmd: x\n  retires: 2"),
        ["t.yaml:6:7: programs.web.healthcheck: unknown key \"retires\" (did you mean \"retries\"?)"]
    );
    assert_eq!(
        program_errors("healthcheck:\n  cmd: x\n  port: 2"),
        ["t.yaml:6:7: programs.web.healthcheck: unknown key \"port\" (valid keys: cmd, http, tcp, interval, timeout, retries, start_period)"]
    );
}

#[test]
fn healthcheck_must_be_a_mapping() {
    assert_eq!(
        program_errors("healthcheck: \"curl -f localhost\""),
        ["t.yaml:4:18: programs.web.healthcheck: expected a mapping with one of cmd, http or tcp, found \"curl -f localhost\""]
    );
    assert_eq!(
        program_errors("healthcheck:"),
        ["t.yaml:4:5: programs.web.healthcheck: expected a mapping with one of cmd, http or tcp, found null"]
    );
}

// ---- on_exit, on_exit_timeout ---------------------------------------------------------------

#[test]
fn on_exit_is_a_hook_with_a_30s_timeout_by_default() {
    assert_eq!(
        program("on_exit: \"rm -f /tmp/worker.lock\"").on_exit,
        Some(Hook {
            cmd: "rm -f /tmp/worker.lock".to_string(),
            timeout: secs(30),
        })
    );
    assert_eq!(program("on_exit:").on_exit, None);
}

#[test]
fn on_exit_timeout_applies_in_either_order() {
    let expected = Some(Hook {
        cmd: "cleanup".to_string(),
        timeout: secs(5),
    });
    assert_eq!(
        program("on_exit: cleanup\non_exit_timeout: 5s").on_exit,
        expected
    );
    assert_eq!(
        program("on_exit_timeout: 5\non_exit: cleanup").on_exit,
        expected
    );
}

#[test]
fn on_exit_timeout_needs_on_exit() {
    assert_eq!(
        program_errors("on_exit_timeout: 5s"),
        ["t.yaml:4:22: programs.web.on_exit_timeout: on_exit_timeout needs on_exit"]
    );
    assert_eq!(
        program_errors("on_exit: ~\non_exit_timeout: 5s"),
        ["t.yaml:5:22: programs.web.on_exit_timeout: on_exit_timeout needs on_exit"]
    );
}

#[test]
fn on_exit_rejects_blank_commands_and_on_exit_timeout_zero() {
    assert_eq!(
        program_errors("on_exit: \"\""),
        ["t.yaml:4:14: programs.web.on_exit: expected a shell command, found \"\""]
    );
    assert_eq!(
        program_errors("on_exit: [rm, x]"),
        ["t.yaml:4:14: programs.web.on_exit: expected a shell command, found a list"]
    );
    assert_eq!(
        program_errors("on_exit: \"a\\0b\""),
        ["t.yaml:4:14: programs.web.on_exit: a command cannot contain a NUL character"]
    );
    assert_eq!(
        program_errors("on_exit: x\non_exit_timeout: 0"),
        ["t.yaml:5:22: programs.web.on_exit_timeout: expected a duration > 0, found \"0\""]
    );
    // A wrong on_exit is not a missing one: one error, not two.
    assert_eq!(
        program_errors("on_exit: \"\"\non_exit_timeout: 5"),
        ["t.yaml:4:14: programs.web.on_exit: expected a shell command, found \"\""]
    );
}

// ---- restart_limit --------------------------------------------------------------------------

#[test]
fn restart_limit_takes_count_and_within() {
    assert_eq!(
        program("restart_limit: {count: 5, within: 60s}").restart_limit,
        Some(RestartLimit {
            count: 5,
            within: secs(60),
        })
    );
    assert_eq!(
        program("restart_limit:\n  count: 0\n  within: 1m").restart_limit,
        Some(RestartLimit {
            count: 0,
            within: secs(60),
        })
    );
}

#[test]
fn restart_limit_needs_both_keys() {
    assert_eq!(
        program_errors("restart_limit: {count: 5}"),
        ["t.yaml:4:20: programs.web.restart_limit: missing required key \"within\""]
    );
    assert_eq!(
        program_errors("restart_limit:\n  within: 10s"),
        ["t.yaml:5:7: programs.web.restart_limit: missing required key \"count\""]
    );
}

#[test]
fn restart_limit_values_are_checked() {
    assert_eq!(
        program_errors("restart_limit: {count: -1, within: 0}"),
        [
            "t.yaml:4:28: programs.web.restart_limit.count: expected an integer >= 0, found \"-1\"",
            "t.yaml:4:40: programs.web.restart_limit.within: expected a duration > 0, found \"0\"",
        ]
    );
    assert_eq!(
        program_errors("restart_limit: {count: 5, within: 1m, burst: 2}"),
        ["t.yaml:4:43: programs.web.restart_limit: unknown key \"burst\" (valid keys: count, within)"]
    );
    assert_eq!(
        program_errors("restart_limit: {cuont: 5, within: 1m}"),
        [
            "t.yaml:4:20: programs.web.restart_limit: missing required key \"count\"",
            "t.yaml:4:21: programs.web.restart_limit: unknown key \"cuont\" (did you mean \"count\"?)",
        ]
    );
    assert_eq!(
        program_errors("restart_limit: 5"),
        ["t.yaml:4:20: programs.web.restart_limit: expected a mapping such as {count: 5, within: 60s}, found \"5\""]
    );
}

// ---- backoff --------------------------------------------------------------------------------

#[test]
fn backoff_keys_are_each_optional() {
    let defaults = Backoff {
        initial: secs(1),
        max: secs(60),
        factor: 2.0,
        first_at_once: false,
    };
    assert_eq!(
        program("backoff: {}").backoff.as_deref().copied(),
        Some(defaults)
    );
    assert_eq!(
        program("backoff: {initial: 500ms, max: 10s, factor: 1.5}")
            .backoff
            .as_deref()
            .copied(),
        Some(Backoff {
            initial: Duration::from_millis(500),
            max: secs(10),
            factor: 1.5,
            first_at_once: false,
        })
    );
    assert_eq!(
        program("backoff:\n  factor: 1").backoff.as_deref().copied(),
        Some(Backoff {
            factor: 1.0,
            ..defaults
        })
    );
    assert_eq!(
        program("backoff: {initial: 5s, max: 5s}")
            .backoff
            .as_deref()
            .copied(),
        Some(Backoff {
            initial: secs(5),
            max: secs(5),
            factor: 2.0,
            first_at_once: false,
        })
    );
}

#[test]
fn without_backoff_a_program_gets_the_crash_loop_throttle() {
    let throttle = *program("").backoff.expect("the default throttle");
    assert_eq!(throttle, Backoff::THROTTLE);
    assert!(throttle.first_at_once);
    // At once, then 0.1 s, 0.2 s, 0.4 s... up to 10 s.
    let delays: Vec<Duration> = (1..=10).map(|n| throttle.delay(n)).collect();
    let ms = Duration::from_millis;
    assert_eq!(
        delays,
        [
            ms(0),
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            ms(6400),
            secs(10),
            secs(10)
        ]
    );
    assert_eq!(throttle.delay(u32::MAX), secs(10));
    // Given explicitly, the same numbers wait before the first restart too.
    let explicit = program("backoff: {initial: 100ms, max: 10s}").backoff;
    assert_eq!(explicit.map(|b| b.delay(1)), Some(ms(100)));
}

#[test]
fn backoff_off_restarts_at_once() {
    for off in ["off", "false", "no", "OFF", "\"off\""] {
        assert_eq!(program(&format!("backoff: {off}")).backoff, None, "{off}");
    }
    let message = |found: &str| {
        format!("t.yaml:4:14: programs.web.backoff: expected a mapping such as {{initial: 1s, max: 60s, factor: 2}}, or off, found {found}")
    };
    assert_eq!(program_errors("backoff: on"), [message("\"on\"")]);
    assert_eq!(program_errors("backoff: 5s"), [message("\"5s\"")]);
    assert_eq!(program_errors("backoff: [1s]"), [message("a list")]);
}

#[test]
fn backoff_factor_is_a_number_of_at_least_1() {
    let message = |found: &str| {
        format!("t.yaml:4:23: programs.web.backoff.factor: expected a number >= 1 such as 2 or 1.5, found {found}")
    };
    assert_eq!(
        program_errors("backoff: {factor: 0.5}"),
        [message("\"0.5\"")]
    );
    assert_eq!(program_errors("backoff: {factor: -2}"), [message("\"-2\"")]);
    assert_eq!(
        program_errors("backoff: {factor: 1e3}"),
        [message("\"1e3\"")]
    );
    assert_eq!(
        program_errors("backoff: {factor: inf}"),
        [message("\"inf\"")]
    );
    assert_eq!(program_errors("backoff: {factor: .5}"), [message("\".5\"")]);
    assert_eq!(program_errors("backoff: {factor: ~}"), [message("null")]);
    let huge = "9".repeat(400);
    assert_eq!(
        program_errors(&format!("backoff: {{factor: {huge}}}")),
        [format!(
            "t.yaml:4:23: programs.web.backoff.factor: invalid factor {:?}...: too large",
            &huge[..60]
        )]
    );
}

#[test]
fn backoff_max_must_be_at_least_initial() {
    assert_eq!(
        program_errors("backoff: {initial: 10s, max: 5s}"),
        ["t.yaml:4:34: programs.web.backoff.max: expected a duration >= initial (10s), found \"5s\""]
    );
    assert_eq!(
        program_errors("backoff: {max: 500ms}"),
        ["t.yaml:4:20: programs.web.backoff.max: expected a duration >= initial (1s, the default), found \"500ms\""]
    );
    assert_eq!(
        program_errors("backoff: {initial: 2m}"),
        ["t.yaml:4:24: programs.web.backoff.initial: expected a duration <= max (60s, the default), found \"2m\""]
    );
}

#[test]
fn backoff_values_and_keys_are_checked() {
    assert_eq!(
        program_errors("backoff: {initial: 0}"),
        ["t.yaml:4:24: programs.web.backoff.initial: expected a duration > 0, found \"0\""]
    );
    // A wrong max is reported once, not also as lower than initial.
    assert_eq!(
        program_errors("backoff: {initial: 2m, max: x}"),
        ["t.yaml:4:33: programs.web.backoff.max: invalid duration \"x\": expected a number of seconds such as 1 or 1.5, or a number with a unit ms, s, m or h such as 500ms"]
    );
    assert_eq!(
        program_errors("backoff: {inital: 2s}"),
        ["t.yaml:4:15: programs.web.backoff: unknown key \"inital\" (did you mean \"initial\"?)"]
    );
    assert_eq!(
        program_errors("backoff:"),
        ["t.yaml:4:5: programs.web.backoff: expected a mapping such as {initial: 1s, max: 60s, factor: 2}, or off, found null"]
    );
}

// ---- alerts ---------------------------------------------------------------------------------

#[test]
fn alerts_are_a_list_with_warning_on_both_streams_by_default() {
    let spec = program(
        "alerts:\n  - match: \"Corrupted data\"\n  - match: panic\n    stream: STDERR\n    level: error\n  - {match: started, stream: stdout, level: info}",
    );
    assert_eq!(
        spec.alerts,
        [
            Alert {
                text: "Corrupted data".to_string(),
                stream: None,
                level: AlertLevel::Warning,
            },
            Alert {
                text: "panic".to_string(),
                stream: Some(Stream::Stderr),
                level: AlertLevel::Error,
            },
            Alert {
                text: "started".to_string(),
                stream: Some(Stream::Stdout),
                level: AlertLevel::Info,
            },
        ]
    );
    assert!(program("alerts:").alerts.is_empty());
    assert!(program("alerts: []").alerts.is_empty());
}

#[test]
fn alert_match_is_required_non_empty_and_one_line() {
    assert_eq!(
        program_errors("alerts:\n  - level: error"),
        ["t.yaml:5:9: programs.web.alerts[0]: missing required key \"match\""]
    );
    assert_eq!(
        program_errors("alerts:\n  - match: x\n  - match: \"\""),
        ["t.yaml:6:16: programs.web.alerts[1].match: expected the text of a line to match, found \"\""]
    );
    assert_eq!(
        program_errors("alerts:\n  - match: \"a\\nb\""),
        ["t.yaml:5:16: programs.web.alerts[0].match: \"a\\nb\" can never match: output is matched one line at a time"]
    );
    assert_eq!(
        program_errors("alerts:\n  - match:"),
        ["t.yaml:5:9: programs.web.alerts[0].match: expected the text of a line to match, found null"]
    );
}

#[test]
fn alert_stream_and_level_are_words() {
    assert_eq!(
        program_errors("alerts:\n  - {match: x, stream: stdrr, level: warn}"),
        [
            "t.yaml:5:28: programs.web.alerts[0].stream: expected stdout or stderr, found \"stdrr\" (did you mean \"stderr\"?)",
            "t.yaml:5:42: programs.web.alerts[0].level: expected info, warning or error, found \"warn\" (did you mean \"warning\"?)",
        ]
    );
    assert_eq!(
        program_errors("alerts:\n  - {match: x, stream: ~}"),
        ["t.yaml:5:28: programs.web.alerts[0].stream: expected stdout or stderr, found null"]
    );
}

#[test]
fn alerts_shape_and_unknown_keys_are_checked() {
    assert_eq!(
        program_errors("alerts:\n  - {match: x, levle: info}"),
        ["t.yaml:5:20: programs.web.alerts[0]: unknown key \"levle\" (did you mean \"level\"?)"]
    );
    assert_eq!(
        program_errors("alerts:\n  - Corrupted"),
        ["t.yaml:5:9: programs.web.alerts[0]: expected a mapping with match, stream and level, found \"Corrupted\""]
    );
    assert_eq!(
        program_errors("alerts: {match: x}"),
        ["t.yaml:4:13: programs.web.alerts: expected a list of alerts such as [{match: \"Corrupted data\"}], found a mapping"]
    );
}

// ---- the whole example ----------------------------------------------------------------------

#[test]
fn the_documented_example_reads_as_documented() {
    let spec = program(
        "stdin: data/input.txt
ready: notify
readytime: 30s
watchdog: 5s
watchdog_paused: ignore
healthcheck:
  cmd: \"test -e /tmp/ok\"
  interval: 30s
  timeout: 30s
  retries: 3
  start_period: 0s
on_exit: \"rm -f /tmp/worker.lock\"
on_exit_timeout: 30s
restart_limit: {count: 5, within: 60s}
backoff: {initial: 1s, max: 60s, factor: 2}
alerts:
  - match: \"Corrupted data\"
    stream: stderr
    level: warning",
    );
    assert_eq!(spec.stdin, Stdin::File(PathBuf::from("./data/input.txt")));
    assert_eq!(spec.ready, Readiness::Notify);
    assert_eq!(spec.watchdog, Some(secs(5)));
    assert!(spec.healthcheck.is_some());
    assert_eq!(spec.on_exit.map(|hook| hook.timeout), Some(secs(30)));
    assert_eq!(spec.restart_limit.map(|limit| limit.count), Some(5));
    assert_eq!(spec.backoff.map(|backoff| backoff.delay(3)), Some(secs(4)));
    assert_eq!(spec.alerts.len(), 1);
}

#[test]
fn pair_settings_are_read_and_default_to_200ms_times_5() {
    let config = taskmaster_config::Config::parse(
        "programs: {}\n",
        std::path::Path::new("/etc/taskmaster/taskmaster.yaml"),
    )
    .unwrap();
    assert_eq!(config.pair.silence(), std::time::Duration::from_secs(1));
    let config = taskmaster_config::Config::parse(
        "pair: {interval: 10ms, misses: 3}\nprograms: {}\n",
        std::path::Path::new("/etc/taskmaster/taskmaster.yaml"),
    )
    .unwrap();
    assert_eq!(config.pair.interval, std::time::Duration::from_millis(10));
    assert_eq!(config.pair.silence(), std::time::Duration::from_millis(30));
    let yaml = taskmaster_config::to_yaml(&config);
    let again = taskmaster_config::Config::parse(
        &yaml,
        std::path::Path::new("/etc/taskmaster/taskmaster.yaml"),
    )
    .unwrap();
    assert_eq!(again.pair, config.pair);
    let errors = taskmaster_config::Config::parse(
        "pair: {interval: 0s, misess: 3}\nprograms: {}\n",
        std::path::Path::new("/etc/taskmaster/taskmaster.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(errors.contains("pair.interval"), "{errors}");
    assert!(errors.contains("did you mean \"misses\""), "{errors}");
}
