//! A [`Config`] written back as taskmaster YAML: what `taskmaster convert` prints.
//!
//! The text is meant to be read back by [`Config::parse`] into the same programs and event
//! log, so every key supervisord also has is written, defaults included (a converted file then
//! says everything it means). The liveness keys supervisord lacks (`stdin`, `ready`,
//! `watchdog`, `healthcheck`, `on_exit`, `restart_limit`, `backoff`, `alerts`...) are written
//! only when they differ from their defaults, so a converted supervisord file does not fill
//! with settings it never had; a `healthcheck` or `backoff` that is written is written whole
//! (the default crash-loop throttle is not written; `backoff: off` is).
//! Every string is double-quoted with YAML's escapes, so that no value can be read as
//! something else (`null`, `true`, `1.0`, a comment, a flow collection). Durations are written
//! as exact decimal seconds.
//!
//! Paths in a `Config` are already resolved against the folder of the file they came from.
//! A relative one (when that file was named by a relative path) is written absolute, against
//! the current directory, so the YAML means the same wherever it is saved. Paths that are not
//! UTF-8 are written lossily: a configuration read from text never has any.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::program::{defaults, ON_EXIT_TIMEOUT};
use crate::values::Words;
use crate::{Backoff, Config, HealthCheck, Probe, ProgramSpec, Stdin, Stream};

/// `config` as taskmaster YAML, valid for [`Config::parse`].
pub fn to_yaml(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "logfile: {}", path(&config.logfile));
    if config.log_rotation != crate::Rotation::default() {
        let _ = writeln!(out, "logfile_maxbytes: {}", config.log_rotation.maxbytes);
        let _ = writeln!(out, "logfile_backups: {}", config.log_rotation.backups);
    }
    let _ = writeln!(out, "socket: {}", path(&config.socket));
    if let Some(http) = &config.http {
        out.push_str("http:\n");
        let _ = writeln!(out, "  listen: {}", string(&http.listen.to_string()));
        if let Some(credentials) = &http.credentials {
            let _ = writeln!(out, "  username: {}", string(&credentials.username));
            let _ = writeln!(out, "  password: {}", string(&credentials.password));
        }
    }
    if config.syslog_socket != Path::new(crate::DEFAULT_SYSLOG_SOCKET) {
        let _ = writeln!(out, "syslog_socket: {}", path(&config.syslog_socket));
    }
    if let Some(user) = &config.user {
        let _ = writeln!(out, "user: {}", user_name(user));
    }
    if config.pair != crate::PairSettings::default() {
        out.push_str("pair:\n");
        let _ = writeln!(out, "  interval: {}", seconds(config.pair.interval));
        let _ = writeln!(out, "  misses: {}", config.pair.misses);
    }
    socket_access(&mut out, &config.daemon.socket_access);
    daemon(&mut out, &config.daemon);
    let (listeners, programs): (Vec<_>, Vec<_>) = config
        .programs
        .iter()
        .partition(|(_, spec)| spec.listener.is_some());
    if programs.is_empty() {
        out.push_str("programs: {}\n");
    } else {
        out.push_str("programs:\n");
    }
    for (name, spec) in programs {
        let _ = writeln!(out, "  {}:", string(name));
        program(&mut out, spec, &config.daemon.auto_logs);
    }
    if !listeners.is_empty() {
        out.push_str("eventlisteners:\n");
    }
    for (name, spec) in listeners {
        let _ = writeln!(out, "  {}:", string(name));
        program(&mut out, spec, &config.daemon.auto_logs);
    }
    if !config.groups.is_empty() {
        out.push_str("groups:\n");
        for (name, group) in &config.groups {
            let programs: Vec<String> = group.programs.iter().map(|p| string(p)).collect();
            let _ = writeln!(out, "  {}:", string(name));
            let _ = writeln!(out, "    programs: [{}]", programs.join(", "));
            let _ = writeln!(out, "    priority: {}", group.priority);
        }
    }
    out
}

/// The control socket's mode, owner and credentials, where they are not the defaults.
fn socket_access(out: &mut String, access: &crate::SocketAccess) {
    if access.mode != crate::DEFAULT_SOCKET_MODE {
        let _ = writeln!(out, "socket_mode: \"{:04o}\"", access.mode);
    }
    if let Some(owner) = &access.owner {
        let _ = writeln!(out, "socket_owner: {}", string(&owner.to_string()));
    }
    if let Some(credentials) = &access.credentials {
        let _ = writeln!(out, "socket_username: {}", string(&credentials.username));
        let _ = writeln!(out, "socket_password: {}", string(&credentials.password));
    }
}

/// The daemon's settings, where they are not the defaults. `childlogdir` is resolved whenever
/// a program has an AUTO file, so that the YAML names the same files wherever it is read.
fn daemon(out: &mut String, daemon: &crate::DaemonSettings) {
    if let Some(pidfile) = &daemon.pidfile {
        let _ = writeln!(out, "pidfile: {}", path(pidfile));
    }
    if daemon.loglevel != crate::LogLevel::Info {
        let _ = writeln!(out, "loglevel: {}", daemon.loglevel.name());
    }
    if daemon.identifier != crate::DEFAULT_IDENTIFIER {
        let _ = writeln!(out, "identifier: {}", string(&daemon.identifier));
    }
    if let Some(umask) = daemon.umask {
        let _ = writeln!(out, "umask: \"{umask:03o}\"");
    }
    if let Some(directory) = &daemon.directory {
        let _ = writeln!(out, "directory: {}", path(directory));
    }
    if let Some(minfds) = daemon.minfds {
        let _ = writeln!(out, "minfds: {minfds}");
    }
    if let Some(minprocs) = daemon.minprocs {
        let _ = writeln!(out, "minprocs: {minprocs}");
    }
    if daemon.strip_ansi {
        out.push_str("strip_ansi: true\n");
    }
    if let Some(dir) = &daemon.childlogdir {
        let _ = writeln!(out, "childlogdir: {}", path(dir));
    }
    if daemon.nocleanup {
        out.push_str("nocleanup: true\n");
    }
    if daemon.exit_when_done {
        out.push_str("exit_when_done: true\n");
    }
    if let Some(alerting) = &daemon.alerting {
        self::alerting(out, alerting);
    }
}

/// `alerting:`, whole.
fn alerting(out: &mut String, spec: &crate::AlertingSpec) {
    out.push_str("alerting:\n");
    let events: Vec<&str> = spec.events.iter().map(|event| event.name()).collect();
    let _ = writeln!(out, "  events: [{}]", events.join(", "));
    let _ = writeln!(out, "  batch: {}", seconds(spec.batch));
    if !spec.webhooks.is_empty() {
        out.push_str("  webhooks:\n");
        for webhook in &spec.webhooks {
            let _ = writeln!(out, "    - url: {}", string(&webhook.url.url));
            if !webhook.headers.is_empty() {
                out.push_str("      headers:\n");
                for (name, value) in &webhook.headers {
                    let _ = writeln!(out, "        {}: {}", string(name), string(value));
                }
            }
        }
    }
    if let Some(email) = &spec.email {
        out.push_str("  email:\n");
        let _ = writeln!(out, "    smtp: {}", string(&email.smtp));
        if email.tls != crate::SmtpTls::None {
            let _ = writeln!(out, "    tls: {}", email.tls.name());
        }
        if let Some((username, password)) = &email.credentials {
            let _ = writeln!(out, "    username: {}", string(username));
            let _ = writeln!(out, "    password: {}", string(password));
        }
        let _ = writeln!(out, "    from: {}", string(&email.from));
        let to: Vec<String> = email.to.iter().map(|to| string(to)).collect();
        let _ = writeln!(out, "    to: [{}]", to.join(", "));
    }
    if spec.syslog {
        out.push_str("  syslog: true\n");
    }
    if let Some(ca_file) = &spec.ca_file {
        let _ = writeln!(out, "  ca_file: {}", path(ca_file));
    }
}

fn program(out: &mut String, spec: &ProgramSpec, auto_logs: &BTreeSet<PathBuf>) {
    let mut key = |key: &str, value: String| {
        let _ = writeln!(out, "    {key}: {value}");
    };
    key("cmd", string(&spec.cmd));
    key("numprocs", spec.numprocs.to_string());
    if spec.numprocs_start != 0 {
        key("numprocs_start", spec.numprocs_start.to_string());
    }
    if let Some(pattern) = &spec.process_name {
        key("process_name", string(pattern));
    }
    key("autostart", spec.autostart.to_string());
    key("autorestart", spec.autorestart.word().to_string());
    let codes: Vec<String> = spec.exitcodes.iter().map(i32::to_string).collect();
    key("exitcodes", format!("[{}]", codes.join(", ")));
    key("starttime", seconds(spec.starttime));
    key("startretries", spec.startretries.to_string());
    key("stopsignal", string(spec.stopsignal.name()));
    key("stoptime", seconds(spec.stoptime));
    key("priority", spec.priority.to_string());
    for stream in [Stream::Stdout, Stream::Stderr] {
        let name = stream.name();
        // The socket itself is the top-level `syslog_socket`.
        match (spec.file(stream), spec.syslog(stream).is_some()) {
            // `auto` for a stream's own AUTO file; stderr redirected into stdout's is written
            // as the path it is (`redirect_stderr` is not a field of its own).
            (Some(file), to_syslog) => {
                let auto = auto_logs.contains(file)
                    && file.file_name().is_some_and(|f| {
                        f.to_string_lossy()
                            .starts_with(&format!("{}-{name}---", spec.name))
                    });
                key(name, if auto { "auto".to_string() } else { path(file) });
                if to_syslog {
                    key(&format!("{name}_syslog"), "true".to_string());
                }
            }
            (None, true) => key(name, "syslog".to_string()),
            (None, false) => {}
        }
    }
    for (name, rotation) in [
        ("stdout", spec.stdout_rotation),
        ("stderr", spec.stderr_rotation),
    ] {
        if rotation != crate::Rotation::default() {
            key(&format!("{name}_maxbytes"), rotation.maxbytes.to_string());
            key(&format!("{name}_backups"), rotation.backups.to_string());
        }
    }
    if let Some(dir) = &spec.workingdir {
        key("workingdir", path(dir));
    }
    if let Some(umask) = spec.umask {
        key("umask", format!("\"{umask:03o}\""));
    }
    if let Some(user) = &spec.user {
        key("user", user_name(user));
    }
    if spec.singleton {
        key("singleton", "true".to_string());
    }
    if spec.critical {
        key("critical", "true".to_string());
    }
    if !spec.depends_on.is_empty() {
        key("depends_on", depends_on(&spec.depends_on));
    }
    if !spec.rlimits.is_empty() {
        let limits: Vec<String> = spec
            .rlimits
            .iter()
            .map(|(resource, limit)| format!("{}: {}", resource.name(), string(&limit.to_string())))
            .collect();
        key("rlimits", format!("{{{}}}", limits.join(", ")));
    }
    if let Some(url) = &spec.serverurl {
        key("serverurl", string(url));
    }
    if let Some(listener) = &spec.listener {
        let events: Vec<&str> = listener.events.iter().map(|kind| kind.name()).collect();
        key("events", format!("[{}]", events.join(", ")));
        key("buffer_size", listener.buffer_size.to_string());
    }
    if let Some(socket) = &spec.fcgi_socket {
        key("socket", string(&socket.address.to_string()));
        if let Some(backlog) = socket.backlog {
            key("socket_backlog", backlog.to_string());
        }
        if let crate::SocketAddress::Unix(_) = socket.address {
            if let Some(owner) = &socket.owner {
                key("socket_owner", string(&owner.to_string()));
            }
            key("socket_mode", format!("\"{:04o}\"", socket.mode));
        }
    }
    liveness(out, spec);
    if spec.env.is_empty() {
        return;
    }
    let _ = writeln!(out, "    env:");
    for (name, value) in &spec.env {
        let _ = writeln!(out, "      {}: {}", string(name), string(value));
    }
}

/// The liveness keys, each only when it differs from its default.
fn liveness(out: &mut String, spec: &ProgramSpec) {
    let default = defaults(&spec.name);
    match &spec.stdin {
        // A listener's stdin is always its events' pipe.
        _ if spec.listener.is_some() => {}
        Stdin::Null => {}
        Stdin::File(file) => program_key(out, "stdin", path(file)),
        Stdin::Pipe => program_key(out, "stdin", "pipe".to_string()),
    }
    if spec.ready != default.ready {
        program_key(out, "ready", spec.ready.word().to_string());
    }
    if spec.readytime != default.readytime {
        program_key(out, "readytime", seconds(spec.readytime));
    }
    if let Some(watchdog) = spec.watchdog {
        program_key(out, "watchdog", seconds(watchdog));
    }
    if spec.watchdog_paused != default.watchdog_paused {
        program_key(
            out,
            "watchdog_paused",
            spec.watchdog_paused.word().to_string(),
        );
    }
    if !spec.killgroup {
        program_key(out, "killgroup", "false".to_string());
    }
    if let Some(check) = &spec.healthcheck {
        healthcheck(out, check);
    }
    if let Some(hook) = &spec.on_exit {
        program_key(out, "on_exit", string(&hook.cmd));
        if hook.timeout != ON_EXIT_TIMEOUT {
            program_key(out, "on_exit_timeout", seconds(hook.timeout));
        }
    }
    if let Some(limit) = &spec.restart_limit {
        let value = format!(
            "{{count: {}, within: {}}}",
            limit.count,
            seconds(limit.within)
        );
        program_key(out, "restart_limit", value);
    }
    match &spec.backoff {
        // The default throttle is what no `backoff:` key reads as.
        Some(backoff) if **backoff == Backoff::THROTTLE => {}
        Some(backoff) => {
            // f64's Display is the shortest text that reads back as the same number, never
            // with an exponent: what `factor` accepts.
            let value = format!(
                "{{initial: {}, max: {}, factor: {}}}",
                seconds(backoff.initial),
                seconds(backoff.max),
                backoff.factor
            );
            program_key(out, "backoff", value);
        }
        None => program_key(out, "backoff", "off".to_string()),
    }
    if !spec.alerts.is_empty() {
        out.push_str("    alerts:\n");
    }
    for alert in &spec.alerts {
        let _ = writeln!(out, "      - match: {}", string(&alert.text));
        if let Some(stream) = alert.stream {
            let _ = writeln!(out, "        stream: {}", stream.name());
        }
        let _ = writeln!(out, "        level: {}", alert.level.name());
    }
}

/// `    key: value`: one key of a program.
fn program_key(out: &mut String, key: &str, value: String) {
    let _ = writeln!(out, "    {key}: {value}");
}

fn healthcheck(out: &mut String, check: &HealthCheck) {
    out.push_str("    healthcheck:\n");
    let mut key = |key: &str, value: String| {
        let _ = writeln!(out, "      {key}: {value}");
    };
    match &check.probe {
        Probe::Cmd(cmd) => key("cmd", string(cmd)),
        Probe::Http(http) => key("http", string(&http.url)),
        Probe::Tcp(address) => key("tcp", string(address)),
    }
    key("interval", seconds(check.interval));
    key("timeout", seconds(check.timeout));
    key("retries", check.retries.to_string());
    key("start_period", seconds(check.start_period));
}

/// Exact decimal seconds: `1`, `0.5`, `0.000000001`.
fn seconds(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return duration.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", duration.as_secs(), fraction.trim_end_matches('0'))
}

fn path(path: &Path) -> String {
    let absolute = if path.is_relative() {
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    string(&absolute.to_string_lossy())
}

/// A YAML double-quoted string: `\` and `"` escaped, and every character YAML would not
/// keep as is (controls, line and paragraph separators, the byte-order mark).
/// A user by name, which reads back as the same account; by uid when the name is digits,
/// which would read back as a uid.
fn user_name(user: &crate::User) -> String {
    if user.name.bytes().all(|b| b.is_ascii_digit()) {
        string(&user.uid.to_string())
    } else {
        string(&user.name)
    }
}

fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `depends_on` as a flow list when every dependency is a plain "running", as a flow mapping
/// otherwise.
fn depends_on(dependencies: &[crate::Dependency]) -> String {
    let plain = |d: &crate::Dependency| d.condition == crate::Condition::Running && !d.restart;
    if dependencies.iter().all(plain) {
        let names: Vec<String> = dependencies.iter().map(|d| string(&d.program)).collect();
        return format!("[{}]", names.join(", "));
    }
    let entries: Vec<String> = dependencies
        .iter()
        .map(|d| {
            let restart = if d.restart { ", restart: true" } else { "" };
            format!(
                "{}: {{condition: {}{restart}}}",
                string(&d.program),
                d.condition.word()
            )
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        match Config::parse(text, Path::new("/etc/tm/taskmaster.yaml")) {
            Ok(config) => config,
            Err(e) => panic!("{text}\n---\n{e}"),
        }
    }

    /// `to_yaml` reads back as the same configuration.
    fn assert_round_trip(config: &Config) {
        let yaml = to_yaml(config);
        assert_eq!(&parse(&yaml), config, "{yaml}");
    }

    const LIVENESS: &str = "\
programs:
  worker:
    cmd: ./worker
    stdin: data/input.txt
    ready: notify
    readytime: 2.5s
    watchdog: 5s
    watchdog_paused: restart
    healthcheck:
      http: \"http://[::1]:8080/health?deep=1\"
      interval: 10s
      timeout: 500ms
      retries: 1
      start_period: 1m
    on_exit: \"rm -f '/tmp/worker.lock' # \\\"quoted\\\"\"
    on_exit_timeout: 0.25
    restart_limit: {count: 0, within: 60s}
    backoff: {initial: 0.1s, max: 1h, factor: 1.1}
    alerts:
      - match: \"Corrupted: data\"
        stream: stderr
        level: error
      - match: \"null\"
  cmdcheck:
    cmd: x
    healthcheck: {cmd: \"test -e /tmp/ok\"}
    on_exit: cleanup
    alerts: [{match: \"#1\", stream: stdout}]
  tcpcheck:
    cmd: x
    healthcheck: {tcp: \"localhost:5432\"}
    backoff: {}
";

    #[test]
    fn every_liveness_key_survives_the_round_trip() {
        let config = parse(LIVENESS);
        assert_round_trip(&config);
        // Each key was read, so the round trip proves something.
        let worker = &config.programs["worker"];
        assert_ne!(worker, &defaults("worker"));
        assert_eq!(worker.backoff.as_ref().map(|b| b.factor), Some(1.1));
    }

    #[test]
    fn the_default_throttle_is_not_written_and_backoff_off_is() {
        let config = parse(
            "programs:\n  throttled: {cmd: x}\n  off: {cmd: x, backoff: off}\n  \
             no: {cmd: x, backoff: false}\n  custom: {cmd: x, backoff: {initial: 100ms, max: 10s}}\n",
        );
        assert_eq!(
            config.programs["throttled"].backoff,
            Some(Box::new(Backoff::THROTTLE))
        );
        assert_eq!(config.programs["off"].backoff, None);
        assert_eq!(config.programs["no"].backoff, None);
        // Written as a map, it is a backoff with the same numbers whose first restart waits.
        let custom = config.programs["custom"].backoff.as_deref();
        assert_eq!(custom.map(|b| b.first_at_once), Some(false));
        assert_round_trip(&config);
        let yaml = to_yaml(&config);
        let backoff_lines: Vec<&str> = yaml.lines().filter(|l| l.contains("backoff")).collect();
        assert_eq!(
            backoff_lines,
            [
                "    backoff: {initial: 0.1, max: 10, factor: 2}",
                "    backoff: off",
                "    backoff: off"
            ],
            "{yaml}"
        );
    }

    #[test]
    fn liveness_keys_are_written_only_when_not_defaults() {
        let yaml = to_yaml(&parse("programs:\n  web: {cmd: run, readytime: 30, on_exit: x, on_exit_timeout: 30, watchdog_paused: ignore, ready: started, alerts: []}\n"));
        let keys: Vec<&str> = yaml
            .lines()
            .skip_while(|line| !line.contains("\"web\":"))
            .skip(1)
            .filter_map(|line| line.trim().split(':').next())
            .collect();
        assert_eq!(
            keys,
            [
                "cmd",
                "numprocs",
                "autostart",
                "autorestart",
                "exitcodes",
                "starttime",
                "startretries",
                "stopsignal",
                "stoptime",
                "priority",
                "on_exit"
            ]
        );
    }

    #[test]
    fn liveness_keys_are_written_as_yaml_that_says_what_it_means() {
        let yaml = to_yaml(&parse(LIVENESS));
        // The worker's lines after the ten keys every program has (cmd to priority).
        let worker: Vec<&str> = yaml
            .lines()
            .skip_while(|line| *line != "  \"worker\":")
            .skip(11)
            .take_while(|line| line.starts_with("   "))
            .collect();
        assert_eq!(
            worker,
            [
                "    stdin: \"/etc/tm/data/input.txt\"",
                "    ready: notify",
                "    readytime: 2.5",
                "    watchdog: 5",
                "    watchdog_paused: restart",
                "    healthcheck:",
                "      http: \"http://[::1]:8080/health?deep=1\"",
                "      interval: 10",
                "      timeout: 0.5",
                "      retries: 1",
                "      start_period: 60",
                r#"    on_exit: "rm -f '/tmp/worker.lock' # \"quoted\"""#,
                "    on_exit_timeout: 0.25",
                "    restart_limit: {count: 0, within: 60}",
                "    backoff: {initial: 0.1, max: 3600, factor: 1.1}",
                "    alerts:",
                "      - match: \"Corrupted: data\"",
                "        stream: stderr",
                "        level: error",
                "      - match: \"null\"",
                "        level: warning",
            ],
            "{yaml}"
        );
    }

    #[test]
    fn syslog_keys_survive_the_round_trip() {
        let config = parse(
            "syslog_socket: run/log\nprograms:\n  \
             only: {cmd: x, stdout: syslog, stderr: SYSLOG}\n  \
             both: {cmd: x, stdout: out.log, stdout_syslog: true, stderr: err.log}\n  \
             redirected: {cmd: x, stdout: syslog, redirect_stderr: true}\n",
        );
        assert_round_trip(&config);
        let yaml = to_yaml(&config);
        assert!(
            yaml.contains("syslog_socket: \"/etc/tm/run/log\"\n"),
            "{yaml}"
        );
        let lines = |name: &str| -> Vec<String> {
            yaml.lines()
                .skip_while(|line| *line != format!("  \"{name}\":"))
                .skip(11)
                .take_while(|line| line.starts_with("   "))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(lines("only"), ["    stdout: syslog", "    stderr: syslog"]);
        assert_eq!(
            lines("both"),
            [
                "    stdout: \"/etc/tm/out.log\"",
                "    stdout_syslog: true",
                "    stderr: \"/etc/tm/err.log\""
            ]
        );
        // The default socket is not written.
        let yaml = to_yaml(&parse("programs:\n  web: {cmd: x, stdout: syslog}\n"));
        assert!(!yaml.contains("syslog_socket"), "{yaml}");
    }

    #[test]
    fn strings_are_double_quoted_with_escapes() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            string("l1\nl2\t\r\x1b\u{7f}"),
            "\"l1\\nl2\\t\\r\\x1b\\x7f\""
        );
        assert_eq!(string("\u{2028}é"), "\"\\u2028é\"");
    }

    #[test]
    fn durations_are_exact_decimal_seconds() {
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::from_nanos(1)), "0.000000001");
        assert_eq!(seconds(Duration::ZERO), "0");
    }
}
