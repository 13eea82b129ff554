//! The validated layer: a raw tree becomes a [`Config`] the supervisor can trust.
//!
//! Every key is checked here and nowhere else; every default is applied, every relative path
//! resolved against the configuration file's folder (without touching the filesystem: a
//! missing folder is the supervisor's error to report when it starts the program), and every
//! signal resolved to its number.
//!
//! Validation never stops at the first problem. Each check records its error and moves on,
//! so a single run reports everything wrong with a file, sorted in file order. A bad value is
//! reported at the value; an unknown or misplaced key at the key.
//!
//! Keys are tables ([`TOP_LEVEL_KEYS`], [`PROGRAM_KEYS`]) mapping a name to the function that
//! reads it: adding a key is one entry (plus the field it fills), and the tables are also what
//! "did you mean" and "valid keys" are computed from, so they can never fall out of step.
//!
//! Leniency, decided once for every key of its kind:
//! - Scalars are read from their text whatever their quoting: `numprocs: "4"` is 4 and
//!   `autostart: "yes"` is true; `umask` digits are always octal.
//! - A null (`~`, or nothing) means "absent" only where absence has a meaning of its own:
//!   `programs`, `env` and `alerts` (empty), `stdout`, `stderr`, `workingdir`, `umask`,
//!   `watchdog` and `on_exit` (`None`), `stdin` (/dev/null), a program (no keys, so `cmd` is
//!   missing). Anywhere else a null is an error, because `numprocs:` with nothing after it is
//!   more likely a slip than a wish for the default. That includes `healthcheck`,
//!   `restart_limit` and `backoff`: settings with nothing in them are more likely settings
//!   left out, and `backoff:` alone could as well mean "with its defaults" (`backoff: {}`) as
//!   "none" (which is written `backoff: off`); and every key inside them and inside an alert.
//! - Words (`autorestart`, `ready`, `watchdog_paused`, an alert's `stream` and `level`, and
//!   `syslog` as the value of `stdout` or `stderr`) are read in any case. A file named
//!   `syslog` is written `./syslog`.

mod alerting;
mod cluster;
pub(crate) mod probe;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{did_you_mean, ConfigError, ConfigErrors};
use crate::expand::Expansions;
use crate::program::{self, Context, Output, Place, ProgramDraft, ProgramRead};
use crate::raw::{Node, Value};
use crate::values::{
    boolean, check_alert_text, check_env_name, check_env_value, check_path, check_shell_command,
    event_types, invalid_program_name, is_valid_program_name, one_of, parse_bool, parse_exitcode,
    parse_factor, parse_integer, parse_umask, quote, Words, FACTOR_EXPECTED, UMASK_EXPECTED,
};
use crate::{
    parse_duration, Accounts, Alert, AlertLevel, Backoff, Condition, Config, Credentials,
    Dependency, GroupSpec, HealthCheck, HttpListener, PairSettings, Probe, ProcessSpec,
    ProgramSpec, RestartLimit, Stdin, Stream, User,
};

/// Validates a raw tree read from `path`; `user` values are looked up in `accounts`, and
/// `%(ENV_X)s` and `%(host_node_name)s` in `host`.
/// The top-level keys a control client reads ([`control_client`]).
const CONTROL_KEYS: [&str; 3] = ["socket", "socket_username", "socket_password"];

/// How `taskmaster ctl -c FILE` reaches the daemon: the file's `socket` (default
/// `taskmaster.sock` beside it) and socket credentials, each checked as [`validate`] checks
/// it. Nothing else in the file is read: a client starts fast (no user or program lookups),
/// and reaches a daemon whose file has since been edited into an invalid one.
pub(crate) fn control_client(
    tree: &Node,
    path: &Path,
) -> Result<(PathBuf, crate::SocketAccess), ConfigErrors> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let accounts = Accounts::system();
    let host = crate::Host::current();
    let mut checker = Checker {
        file: path,
        dir,
        accounts: &accounts,
        errors: Vec::new(),
        host: &host,
        group_of: BTreeMap::new(),
    };
    let mut top = TopLevel::default();
    if let Value::Mapping(pairs) = &tree.value {
        let wanted: Vec<(Node, Node)> = pairs
            .iter()
            .filter(|(key, _)| {
                matches!(&key.value, Value::Scalar { text, .. } if CONTROL_KEYS.contains(&text.as_str()))
            })
            .cloned()
            .collect();
        checker.keys(&wanted, "", TOP_LEVEL_KEYS, &mut top);
    }
    let access = checker.socket_access(&mut top);
    if !checker.errors.is_empty() {
        return Err(ConfigErrors::sorted(checker.errors));
    }
    let socket = top
        .socket
        .unwrap_or_else(|| checker.dir.join("taskmaster.sock"));
    Ok((socket, access))
}

pub(crate) fn validate(
    tree: &Node,
    path: &Path,
    host: &crate::Host,
    accounts: &Accounts,
) -> Result<Config, ConfigErrors> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut checker = Checker {
        file: path,
        dir,
        accounts,
        errors: Vec::new(),
        host,
        group_of: groups_of(tree),
    };
    let mut top = TopLevel::default();
    match &tree.value {
        Value::Mapping(pairs) => checker.keys(pairs, "", TOP_LEVEL_KEYS, &mut top),
        _ => checker.error(
            tree,
            "",
            format!(
                "expected a mapping with keys such as \"programs\", found {}",
                describe(tree)
            ),
        ),
    }
    for (group, message) in crate::instances::join_groups(&mut top.programs, &top.groups) {
        if let Some(node) = top.group_nodes.get(&group) {
            checker.error(node, &join("groups", &group), message);
        }
    }
    // Known only now: the top-level `user` may come after `programs`.
    let daemon = top.user.as_ref().and_then(|(user, node)| {
        let refusal = accounts.daemon_refusal(user);
        let refused = refusal.is_some();
        if let Some(message) = refusal {
            checker.error(node, "user", message);
        }
        (!refused).then_some(user)
    });
    for (place, user) in &top.program_users {
        if let Some(message) = accounts.program_refusal(daemon, user) {
            checker.errors.push(place.say(message));
        }
    }
    let socket_access = checker.socket_access(&mut top);
    let graph = crate::dependencies::check(&top.programs, &top.dependency_places);
    checker
        .errors
        .extend(graph.into_iter().map(|(_, error)| error));
    // Known only now: `cluster` may come after `programs`.
    let cluster = top.daemon.cluster.as_deref();
    for (name, place) in &top.singleton_places {
        let stoptime = top.programs.get(name).map(|spec| spec.stoptime);
        if let Some(refusal) = stoptime.and_then(|t| crate::cluster::singleton_refusal(cluster, t))
        {
            checker.errors.push(place.say(refusal));
        }
    }
    if !checker.errors.is_empty() {
        return Err(ConfigErrors::sorted(checker.errors));
    }
    let logfile = top
        .logfile
        .unwrap_or_else(|| checker.dir.join("taskmaster.log"));
    let socket = top
        .socket
        .unwrap_or_else(|| checker.dir.join("taskmaster.sock"));
    let syslog_socket = top
        .syslog_socket
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_SYSLOG_SOCKET));
    // Known only now: `childlogdir`, `identifier` and `socket` may come after `programs`.
    let childlogdir = top
        .daemon
        .childlogdir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    for (name, stream, with_stderr) in &top.auto_streams {
        let identifier = &top.daemon.identifier;
        let path_for = |process: &str| {
            crate::auto_log_path(&childlogdir, process, *stream, identifier, &socket)
        };
        if let Some(spec) = top.programs.get_mut(name) {
            let files = crate::instances::set_auto_log(spec, *stream, *with_stderr, path_for);
            top.daemon.auto_logs.extend(files);
        }
        top.daemon.childlogdir = Some(childlogdir.clone());
    }
    // Known only now: `syslog_socket` may come after `programs`.
    for (name, stream) in &top.syslog_streams {
        if let Some(spec) = top.programs.get_mut(name) {
            let specs = std::iter::once(spec.clone())
                .chain(spec.processes.iter().map(|p| (*p.spec).clone()))
                .map(|mut spec| {
                    match stream {
                        Stream::Stdout => spec.stdout_syslog = Some(syslog_socket.clone()),
                        Stream::Stderr => spec.stderr_syslog = Some(syslog_socket.clone()),
                    }
                    spec
                });
            let mut specs: Vec<ProgramSpec> = specs.collect();
            let program = specs.remove(0);
            for (process, with_syslog) in spec.processes.iter_mut().zip(specs) {
                process.spec = std::sync::Arc::new(with_syslog);
            }
            let processes = std::mem::take(&mut spec.processes);
            *spec = ProgramSpec {
                processes,
                ..program
            };
        }
    }
    Ok(Config {
        path: path.to_path_buf(),
        logfile,
        log_rotation: top.log_rotation,
        socket,
        http: top.http,
        pair: top.pair,
        syslog_socket,
        daemon: Box::new(crate::DaemonSettings {
            socket_access,
            ..top.daemon
        }),
        programs: top.programs,
        groups: top.groups,
        user: top.user.map(|(user, _)| Box::new(user)),
    })
}

/// A key and the function that reads its value into `T`: `(checker, value, dotted key, T)`.
type Key<T> = (&'static str, fn(&mut Checker, &Node, &str, &mut T));

/// What the top level collects before it becomes a [`Config`].
#[derive(Default)]
struct TopLevel {
    logfile: Option<PathBuf>,
    log_rotation: crate::Rotation,
    socket: Option<PathBuf>,
    http: Option<HttpListener>,
    pair: PairSettings,
    syslog_socket: Option<PathBuf>,
    programs: BTreeMap<String, ProgramSpec>,
    /// The streams sent to syslog, by program: their socket is set once the file is read.
    syslog_streams: Vec<(String, Stream)>,
    groups: BTreeMap<String, GroupSpec>,
    /// Where each group is written, for its errors.
    group_nodes: BTreeMap<String, Node>,
    /// `user`: taskmaster's own, and where it was written.
    user: Option<(User, Node)>,
    /// Each program's `user` and where it was written: checked against taskmaster's own
    /// once the file is read.
    program_users: Vec<(Place, User)>,
    /// Where each program's `depends_on` is written: the graph is checked once all are read.
    dependency_places: BTreeMap<String, Place>,
    /// Where each program's `singleton: true` is written: checked against `cluster:` once
    /// the file is read.
    singleton_places: Vec<(String, Place)>,
    /// The daemon's settings (`pidfile`, `loglevel`...).
    daemon: crate::DaemonSettings,
    /// `socket_mode` and `socket_owner`; the credentials come from the two below.
    socket_access: crate::SocketAccess,
    socket_username: Option<(String, Node)>,
    socket_password: Option<(String, Node)>,
    /// The streams whose file is `auto` (and whether stderr is redirected there too), named
    /// once the file is read.
    auto_streams: Vec<(String, Stream, bool)>,
}

const TOP_LEVEL_KEYS: &[Key<TopLevel>] = &[
    ("programs", |c, node, key, top| {
        c.programs(node, key, top, false)
    }),
    ("eventlisteners", |c, node, key, top| {
        c.programs(node, key, top, true)
    }),
    ("groups", |c, node, key, top| c.groups(node, key, top)),
    ("logfile", |c, node, key, top| {
        top.logfile = c.path(node, key)
    }),
    ("logfile_maxbytes", |c, node, key, top| {
        if let Some(size) = c.byte_size(node, key) {
            top.log_rotation.maxbytes = size;
        }
    }),
    ("logfile_backups", |c, node, key, top| {
        if let Some(n) = c.integer(node, key, 0, 1000) {
            top.log_rotation.backups = n;
        }
    }),
    ("socket", |c, node, key, top| top.socket = c.path(node, key)),
    ("syslog_socket", |c, node, key, top| {
        top.syslog_socket = c.path(node, key)
    }),
    ("http", |c, node, key, top| top.http = c.http(node, key)),
    ("alerting", |c, node, key, top| {
        top.daemon.alerting = c.alerting(node, key).map(Box::new)
    }),
    ("cluster", |c, node, key, top| {
        top.daemon.cluster = c.cluster(node, key).map(Box::new)
    }),
    ("pair", |c, node, key, top| {
        if let Some(pairs) = c.mapping(node, key, "a mapping such as {interval: 200ms, misses: 5}")
        {
            c.keys(pairs, key, PAIR_KEYS, &mut top.pair);
        }
    }),
    ("user", |c, node, key, top| {
        top.user = c.user(node, key).map(|user| (user, node.clone()));
    }),
    // The daemon's own settings, named as supervisord's [supervisord] options.
    ("pidfile", |c, node, key, top| {
        top.daemon.pidfile = c.path(node, key)
    }),
    ("loglevel", |c, node, key, top| {
        let text = c.scalar(node, key, "a level such as info");
        if let Some(level) = text.and_then(|t| c.check(node, key, crate::daemon::parse_loglevel(t)))
        {
            top.daemon.loglevel = level;
        }
    }),
    ("identifier", |c, node, key, top| {
        let text = c.scalar(node, key, "a name such as supervisor");
        if let Some(text) = text {
            if c.check(node, key, crate::daemon::check_identifier(text))
                .is_some()
            {
                top.daemon.identifier = text.to_string();
            }
        }
    }),
    ("umask", |c, node, key, top| {
        if let Some(umask) = c.umask(node, key) {
            top.daemon.umask = umask;
        }
    }),
    ("directory", |c, node, key, top| {
        top.daemon.directory = c.optional_path(node, key)
    }),
    ("minfds", |c, node, key, top| {
        top.daemon.minfds = c.integer(node, key, 0, u32::MAX).map(u64::from)
    }),
    ("minprocs", |c, node, key, top| {
        top.daemon.minprocs = c.integer(node, key, 0, u32::MAX).map(u64::from)
    }),
    ("strip_ansi", |c, node, key, top| {
        top.daemon.strip_ansi = c.boolean(node, key).unwrap_or(false)
    }),
    ("childlogdir", |c, node, key, top| {
        top.daemon.childlogdir = c.path(node, key)
    }),
    ("nocleanup", |c, node, key, top| {
        top.daemon.nocleanup = c.boolean(node, key).unwrap_or(false)
    }),
    ("exit_when_done", |c, node, key, top| {
        top.daemon.exit_when_done = c.boolean(node, key).unwrap_or(false)
    }),
    // [unix_http_server]'s chmod, chown, username and password.
    ("socket_mode", |c, node, key, top| {
        let text = c.scalar(node, key, "an octal mode such as 0660");
        if let Some(mode) = text.and_then(|t| c.check(node, key, crate::values::file_mode(t))) {
            top.socket_access.mode = mode;
        }
    }),
    ("socket_owner", |c, node, key, top| {
        let text = c.scalar(node, key, "user or user:group");
        top.socket_access.owner = text.and_then(|t| c.check(node, key, crate::values::owner(t)));
    }),
    ("socket_username", |c, node, key, top| {
        let text = c.scalar(node, key, "a user name");
        top.socket_username = text.map(|t| (t.to_string(), node.clone()));
    }),
    ("socket_password", |c, node, key, top| {
        let text = c.scalar(node, key, "a password");
        top.socket_password = text.map(|t| (t.to_string(), node.clone()));
    }),
];

const PAIR_KEYS: &[Key<PairSettings>] = &[
    ("interval", |c, node, key, pair| {
        if let Some(interval) = c.positive_duration(node, key) {
            pair.interval = interval;
        }
    }),
    ("misses", |c, node, key, pair| {
        if let Some(misses) = c.integer(node, key, 1, 1000) {
            pair.misses = misses;
        }
    }),
];

/// `http:` being read.
#[derive(Default)]
struct HttpDraft {
    listen: Option<SocketAddr>,
    username: Option<String>,
    password: Option<String>,
}

const HTTP_KEYS: &[Key<HttpDraft>] = &[
    ("listen", |c, node, key, d| {
        let text = c.scalar(node, key, "an address such as 127.0.0.1:9001");
        if let Some(text) = text {
            d.listen = c.check(
                node,
                key,
                text.parse::<SocketAddr>().map_err(|_| {
                    format!("expected an address such as 127.0.0.1:9001, found {text:?}")
                }),
            );
        }
    }),
    ("username", |c, node, key, d| {
        d.username = c.scalar(node, key, "a user name").map(str::to_string);
    }),
    ("password", |c, node, key, d| {
        d.password = c.scalar(node, key, "a password").map(str::to_string);
    }),
];

/// The program keys whose value is not one piece of text (or may be null), read by the YAML
/// alone; the others are the program layer's [`program::OPTIONS`].
const PROGRAM_KEYS: &[Key<ProgramDraft>] = &[
    ("depends_on", |c, node, key, d| {
        d.spec.depends_on = c.depends_on(node, key);
        d.depends_on = Some(c.place(node, key));
    }),
    ("singleton", |c, node, key, d| {
        d.spec.singleton = c.boolean(node, key).unwrap_or(false);
        d.singleton = d.spec.singleton.then(|| c.place(node, key));
    }),
    ("exitcodes", |c, node, key, d| {
        if let Some(codes) = c.exitcodes(node, key) {
            d.spec.exitcodes = codes;
        }
    }),
    ("stdout", |c, node, key, d| {
        d.stdout = c
            .output(node, key)
            .map(|output| (output, c.place(node, key)));
    }),
    ("stderr", |c, node, key, d| {
        d.stderr = c
            .output(node, key)
            .map(|output| (output, c.place(node, key)));
    }),
    ("env", |c, node, key, d| c.env(node, key, &mut d.spec.env)),
    ("stdin", |c, node, key, d| {
        d.stdin = Some(c.place(node, key));
        // `pipe` is a word; a file of that name is `./pipe`.
        d.spec.stdin = match &node.value {
            Value::Scalar { text, .. } if text == "pipe" => Stdin::Pipe,
            _ => c.optional_path(node, key).map_or(Stdin::Null, Stdin::File),
        };
    }),
    ("healthcheck", |c, node, key, d| {
        d.spec.healthcheck = c.healthcheck(node, key).map(Box::new);
    }),
    ("restart_limit", |c, node, key, d| {
        d.spec.restart_limit = c.restart_limit(node, key);
    }),
    ("backoff", |c, node, key, d| {
        d.spec.backoff = c.backoff(node, key).map(Box::new);
    }),
    ("alerts", |c, node, key, d| {
        d.spec.alerts = c.alerts(node, key)
    }),
    ("rlimits", |c, node, key, d| {
        d.spec.rlimits = c.rlimits(node, key);
    }),
    ("events", |c, node, key, d| {
        let items = match &node.value {
            Value::Sequence(items) => items.iter().collect(),
            _ => vec![node],
        };
        if items.is_empty() {
            let message = "expected at least one event type such as PROCESS_STATE".to_string();
            c.error(node, key, message);
        }
        let mut events = Vec::new();
        for item in items {
            let text = c.scalar(item, key, "an event type such as PROCESS_STATE");
            if let Some(kinds) = text.and_then(|text| c.check(item, key, event_types(text))) {
                events.extend(kinds);
            }
        }
        d.events = Some((events, c.place(node, key)));
    }),
];

/// The keys of [`program::OPTIONS`] for which null means "none", as if the key were absent.
const NULL_MEANS_NONE: &[&str] = &["workingdir", "umask", "watchdog", "on_exit"];

/// `healthcheck:` being read: its probe keys in file order (exactly one is allowed), the
/// probe when right, and the other keys with their defaults.
struct HealthCheckDraft {
    probe_keys: Vec<&'static str>,
    probe: Option<Probe>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
}

/// The keys of `healthcheck:` that name a probe.
const PROBE_KEYS: [&str; 3] = ["cmd", "http", "tcp"];

const HEALTHCHECK_KEYS: &[Key<HealthCheckDraft>] = &[
    ("cmd", |c, node, key, d| {
        d.probe_keys.push("cmd");
        d.probe = c.shell_command(node, key).map(Probe::Cmd);
    }),
    ("http", |c, node, key, d| {
        d.probe_keys.push("http");
        let url = c.scalar(node, key, "a URL such as http://127.0.0.1:8080/health");
        d.probe = url.and_then(|url| {
            c.check(node, key, probe::parse_http_probe(url))
                .map(Probe::Http)
        });
    }),
    ("tcp", |c, node, key, d| {
        d.probe_keys.push("tcp");
        let address = c.scalar(node, key, "host:port such as 127.0.0.1:5432");
        d.probe = address.and_then(|address| {
            c.check(node, key, probe::check_tcp_address(address))
                .map(|()| Probe::Tcp(address.to_string()))
        });
    }),
    ("interval", |c, node, key, d| {
        if let Some(t) = c.positive_duration(node, key) {
            d.interval = t;
        }
    }),
    ("timeout", |c, node, key, d| {
        if let Some(t) = c.positive_duration(node, key) {
            d.timeout = t;
        }
    }),
    ("retries", |c, node, key, d| {
        if let Some(n) = c.integer(node, key, 1, u32::MAX) {
            d.retries = n;
        }
    }),
    ("start_period", |c, node, key, d| {
        if let Some(t) = c.duration(node, key) {
            d.start_period = t;
        }
    }),
];

const GROUP_KEYS: &[Key<GroupSpec>] = &[
    ("programs", |c, node, key, group| match &node.value {
        Value::Sequence(items) => {
            for item in items {
                if let Some(name) = c.scalar(item, key, "a program name") {
                    group.programs.push(name.to_string());
                }
            }
        }
        _ => c.error(
            node,
            key,
            format!("expected a list of program names, found {}", describe(node)),
        ),
    }),
    ("priority", |c, node, key, group| {
        if let Some(n) = c.integer(node, key, 0, u32::MAX) {
            group.priority = n;
        }
    }),
];

/// `restart_limit:` being read; both keys are required.
#[derive(Default)]
struct RestartLimitDraft {
    count: Option<u32>,
    within: Option<Duration>,
}

const RESTART_LIMIT_KEYS: &[Key<RestartLimitDraft>] = &[
    ("count", |c, node, key, d| {
        d.count = c.integer(node, key, 0, u32::MAX);
    }),
    ("within", |c, node, key, d| {
        d.within = c.positive_duration(node, key);
    }),
];

/// `backoff:` being read: the values with their defaults, the nodes of `initial` and `max`
/// when given and right, to say where `max < initial` is, and whether a value was wrong.
struct BackoffDraft {
    backoff: Backoff,
    initial_node: Option<Node>,
    max_node: Option<Node>,
    has_wrong_value: bool,
}

/// `backoff:`'s defaults, for each key left out.
const BACKOFF_DEFAULTS: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
    factor: 2.0,
    first_at_once: false,
};

const BACKOFF_KEYS: &[Key<BackoffDraft>] = &[
    ("initial", |c, node, key, d| {
        match c.positive_duration(node, key) {
            Some(t) => {
                d.backoff.initial = t;
                d.initial_node = Some(node.clone());
            }
            None => d.has_wrong_value = true,
        }
    }),
    ("max", |c, node, key, d| match c.duration(node, key) {
        Some(t) => {
            d.backoff.max = t;
            d.max_node = Some(node.clone());
        }
        None => d.has_wrong_value = true,
    }),
    ("factor", |c, node, key, d| {
        let text = c.scalar(node, key, FACTOR_EXPECTED);
        match text.and_then(|text| c.check(node, key, parse_factor(text))) {
            Some(factor) => d.backoff.factor = factor,
            None => d.has_wrong_value = true,
        }
    }),
];

/// An alert being read; `match` is required.
struct AlertDraft {
    text: Option<String>,
    stream: Option<Stream>,
    level: AlertLevel,
}

const ALERT_KEYS: &[Key<AlertDraft>] = &[
    ("match", |c, node, key, d| {
        let text = c.scalar(node, key, "the text of a line to match");
        d.text = text.and_then(|text| {
            c.check(node, key, check_alert_text(text))
                .map(|()| text.to_string())
        });
    }),
    ("stream", |c, node, key, d| {
        d.stream = c.word(node, key);
    }),
    ("level", |c, node, key, d| {
        if let Some(level) = c.word(node, key) {
            d.level = level;
        }
    }),
];

/// Reads values and records every error it meets.
///
/// Each reader returns `None` after recording an error, so callers just skip the field.
struct Checker<'a> {
    file: &'a Path,
    /// Relative paths are resolved against this folder.
    dir: PathBuf,
    /// Where `user` values are looked up.
    accounts: &'a Accounts,
    errors: Vec<ConfigError>,
    /// The environment and host name, for `%(ENV_X)s` and `%(host_node_name)s`.
    host: &'a crate::Host,
    /// The group each program is in (`groups:`, which may come after `programs:`), for its
    /// `%(group_name)s`.
    group_of: BTreeMap<String, String>,
}

impl Checker<'_> {
    fn error(&mut self, node: &Node, key: &str, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: node.line,
            column: node.column,
            key: key.to_string(),
            message,
        });
    }

    /// Where `node` is, for the program layer.
    fn place(&self, node: &Node, key: &str) -> Place {
        Place {
            src: 0,
            file: self.file.to_path_buf(),
            line: node.line,
            column: node.column,
            key: key.to_string(),
        }
    }

    /// Reads each pair of a mapping with the reader the table names for its key.
    fn keys<T>(&mut self, pairs: &[(Node, Node)], path: &str, table: &[Key<T>], target: &mut T) {
        for (key_node, value) in pairs {
            let Some(name) = self.key_name(key_node, path) else {
                continue;
            };
            match table.iter().find(|(known, _)| *known == name) {
                Some((_, read)) => read(self, value, &join(path, name), target),
                None => {
                    let names: Vec<&str> = table.iter().map(|(known, _)| *known).collect();
                    self.error(key_node, path, unknown_key(name, &names));
                }
            }
        }
    }

    /// A mapping key's text; keys must be scalars.
    fn key_name<'n>(&mut self, key: &'n Node, path: &str) -> Option<&'n str> {
        match &key.value {
            Value::Scalar { text, .. } => Some(text),
            _ => {
                self.error(
                    key,
                    path,
                    format!("expected a key name, found {}", describe(key)),
                );
                None
            }
        }
    }

    /// A scalar's text, or an error saying what was expected instead.
    fn scalar<'n>(&mut self, node: &'n Node, key: &str, expected: &str) -> Option<&'n str> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text),
            _ => {
                self.error(
                    node,
                    key,
                    format!("expected {expected}, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// `programs:`, or `eventlisteners:` (`listeners`): each is read as a program.
    fn programs(&mut self, node: &Node, key: &str, top: &mut TopLevel, listeners: bool) {
        let pairs = match &node.value {
            Value::Null => return,
            Value::Mapping(pairs) => pairs,
            _ => {
                let message = format!(
                    "expected a mapping of program names to programs, found {}",
                    describe(node)
                );
                return self.error(node, key, message);
            }
        };
        let mut names_in_file_order: Vec<(&Node, &str)> = Vec::new();
        // Collected, then made a map at once: a map filled one insertion at a time moves whole
        // programs at every split of its nodes, and leaves them half empty.
        let mut read_programs: Vec<(String, ProgramSpec)> = Vec::with_capacity(pairs.len());
        let mut read_names: std::collections::HashSet<&str> =
            std::collections::HashSet::with_capacity(pairs.len());
        for (name_node, program) in pairs {
            let Some(name) = self.key_name(name_node, key) else {
                continue;
            };
            let path = join(key, name);
            if top.programs.contains_key(name) || read_names.contains(name) {
                let message = format!(
                    "a program named {name:?} is already defined (programs and eventlisteners \
                     share their names)"
                );
                self.error(name_node, key, message);
                continue;
            }
            names_in_file_order.push((name_node, name));
            if !is_valid_program_name(name) {
                self.error(name_node, key, invalid_program_name(name));
            }
            // As written: the program's own view, a template when it uses expansions.
            let templated = values_have_expansions(program);
            let before = self.errors.len();
            let Some(read) = self.program(name_node, name, program, &path, listeners) else {
                continue;
            };
            if templated {
                // Its errors are its processes', found below with their values.
                self.errors.truncate(before);
            }
            let mut spec = read.spec;
            spec.processes = self.instances(name_node, program, &path, &spec, templated);
            for &stream in &read.to_syslog {
                top.syslog_streams.push((name.to_string(), stream));
            }
            if read.auto[0] {
                top.auto_streams
                    .push((name.to_string(), Stream::Stdout, read.redirect_stderr));
            }
            if read.auto[1] && !read.redirect_stderr {
                top.auto_streams
                    .push((name.to_string(), Stream::Stderr, false));
            }
            if let (Some(user), Some(place)) = (&spec.user, read.user) {
                top.program_users.push((place, (**user).clone()));
            }
            if let Some(place) = read.depends_on {
                top.dependency_places.insert(name.to_string(), place);
            }
            if let Some(place) = read.singleton {
                top.singleton_places.push((name.to_string(), place));
            }
            read_names.insert(name);
            read_programs.push((name.to_string(), spec));
        }
        // Those of the other section (`eventlisteners` or `programs`) too, if it came first.
        read_programs.extend(std::mem::take(&mut top.programs));
        top.programs = read_programs.into_iter().collect();
        for (name, message) in crate::instances::clashes(&top.programs) {
            if let Some(&(name_node, _)) = names_in_file_order.iter().find(|(_, n)| *n == name) {
                self.error(name_node, &join(key, &name), message);
            }
        }
        let names = names_in_file_order.iter().map(|&(_, name)| name);
        for (name, message) in crate::instances::rotation_conflicts(names, &top.programs) {
            if let Some(&(name_node, _)) = names_in_file_order.iter().find(|(_, n)| *n == name) {
                self.error(name_node, &join(key, name), message);
            }
        }
    }

    /// `groups: {NAME: {programs: [a, b], priority: 10}}`.
    fn groups(&mut self, node: &Node, key: &str, top: &mut TopLevel) {
        let pairs = match &node.value {
            Value::Null => return,
            Value::Mapping(pairs) => pairs,
            _ => {
                let message = format!(
                    "expected a mapping of group names to groups, found {}",
                    describe(node)
                );
                return self.error(node, key, message);
            }
        };
        for (name_node, group) in pairs {
            let Some(name) = self.key_name(name_node, key) else {
                continue;
            };
            let path = join(key, name);
            let mut draft = GroupSpec {
                programs: Vec::new(),
                priority: 999,
            };
            if let Some(fields) =
                self.mapping(group, &path, "a mapping such as {programs: [web, api]}")
            {
                self.keys(fields, &path, GROUP_KEYS, &mut draft);
                self.require(group, fields, &path, "programs");
            }
            top.group_nodes.insert(name.to_string(), name_node.clone());
            top.groups.insert(name.to_string(), draft);
        }
    }

    /// One program's spec from its mapping, and the streams it sends to syslog; `None` when
    /// it is not a mapping at all.
    fn program(
        &mut self,
        name_node: &Node,
        name: &str,
        program: &Node,
        path: &str,
        listener: bool,
    ) -> Option<ProgramRead> {
        let place = self.place(name_node, path);
        let mut draft = match listener {
            true => ProgramDraft::listener(name, place),
            false => ProgramDraft::new(name, place),
        };
        match &program.value {
            Value::Null => {}
            Value::Mapping(fields) => self.program_keys(fields, path, &mut draft),
            _ => {
                let message = format!(
                    "expected a mapping of program keys, found {}",
                    describe(program)
                );
                self.error(program, path, message);
                return None;
            }
        }
        let (read, remarks) = draft.finish(&program::YAML);
        // taskmaster's own format has no warnings: its dialect makes none.
        self.errors
            .extend(remarks.into_iter().map(|remark| remark.error));
        Some(read)
    }

    /// Reads a program's keys: those of the program layer from their text, the others with
    /// the YAML's own readers.
    fn program_keys(&mut self, pairs: &[(Node, Node)], path: &str, draft: &mut ProgramDraft) {
        for (key_node, value) in pairs {
            let Some(name) = self.key_name(key_node, path) else {
                continue;
            };
            let key = join(path, name);
            if let Some((_, read)) = PROGRAM_KEYS.iter().find(|(known, _)| *known == name) {
                read(self, value, &key, draft);
            } else if let Some(option) = program::option(name) {
                draft.written.insert(option.name);
                if value.value == Value::Null && NULL_MEANS_NONE.contains(&name) {
                    continue;
                }
                let Some(text) = self.scalar(value, &key, option.expected) else {
                    continue;
                };
                let place = self.place(value, &key);
                let context = Context {
                    dir: &self.dir,
                    accounts: self.accounts,
                };
                let result = draft.read(option, text, &place, &context);
                self.check(value, &key, result);
            } else {
                let names: Vec<&str> = program::OPTIONS
                    .iter()
                    .map(|option| option.name)
                    .chain(PROGRAM_KEYS.iter().map(|(known, _)| *known))
                    .collect();
                let message = match program::yaml_name(name).filter(|yaml| *yaml != name) {
                    Some(yaml) => format!(
                        "unknown key {name:?} (did you mean {yaml:?}? {name} is supervisord's \
                         name for it)"
                    ),
                    None => unknown_key(name, &names),
                };
                self.error(key_node, path, message);
            }
        }
    }

    /// The processes of program `spec`: each named by its `process_name`, and, when the
    /// program uses expansions (`templated`), each validated with its own values, the same
    /// error once however many processes make it.
    fn instances(
        &mut self,
        name_node: &Node,
        program: &Node,
        path: &str,
        spec: &ProgramSpec,
        templated: bool,
    ) -> Vec<ProcessSpec> {
        let pattern = spec
            .process_name
            .clone()
            .unwrap_or_else(|| crate::instances::default_process_name(spec.numprocs).to_string());
        let here = self.dir.to_string_lossy().into_owned();
        let before = self.errors.len();
        let mut made = Vec::new();
        for num in crate::instances::numbers(spec) {
            let group = self.group_of.get(&spec.name).map_or(&spec.name, |g| g);
            let names = Expansions {
                program: &spec.name,
                group,
                num,
                numprocs: spec.numprocs,
                here: &here,
                host: self.host,
            };
            let name = match names.expand(&pattern) {
                Ok(name) => name,
                Err(message) => {
                    let node = value_of(program, "process_name").unwrap_or(name_node);
                    self.error(node, &join(path, "process_name"), message);
                    break;
                }
            };
            let process = if templated {
                match expand_node(program, path, &names) {
                    Ok(node) => {
                        let listener = spec.listener.is_some();
                        self.program(name_node, &spec.name, &node, path, listener)
                    }
                    Err((node, key, message)) => {
                        self.error(&node, &key, message);
                        None
                    }
                }
                .map(|read| read.spec)
            } else {
                Some(spec.clone())
            };
            if let Some(mut process) = process {
                // The pattern, not this process's name: the same in every process.
                process.process_name.clone_from(&spec.process_name);
                made.push(crate::instances::process(name, num, process));
            }
        }
        // The same mistake in every process is said once.
        let mut seen = Vec::new();
        let found: Vec<ConfigError> = self.errors.drain(before..).collect();
        for error in found {
            if !seen.contains(&error) {
                seen.push(error);
            }
        }
        self.errors.extend(seen);
        let names: Vec<&str> = made.iter().map(|process| process.name.as_str()).collect();
        for problem in crate::instances::check_names(&spec.name, &names) {
            let node = value_of(program, "process_name").unwrap_or(name_node);
            self.error(node, &join(path, "process_name"), problem);
        }
        made
    }

    /// Records the error of a shared value parser, if any.
    fn check<T>(&mut self, node: &Node, key: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(node, key, message);
                None
            }
        }
    }

    /// A decimal integer from `min` to `max`.
    fn integer(&mut self, node: &Node, key: &str, min: u32, max: u32) -> Option<u32> {
        let text = self.scalar(node, key, &format!("an integer >= {min}"))?;
        self.check(node, key, parse_integer(text, min, max))
    }

    /// A size in bytes: `1024`, `10KB`, `50MB`, `1GB` (units of 1024, in any case).
    fn byte_size(&mut self, node: &Node, key: &str) -> Option<u64> {
        let text = self.scalar(node, key, "a size such as 50MB")?;
        self.check(node, key, crate::values::byte_size(text))
    }

    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        let text = self.scalar(node, key, "true or false")?;
        self.check(node, key, boolean(text))
    }

    /// One exit code, or a list of them.
    fn exitcodes(&mut self, node: &Node, key: &str) -> Option<Vec<i32>> {
        match &node.value {
            Value::Scalar { .. } => self.exitcode(node, key).map(|code| vec![code]),
            Value::Sequence(items) => {
                let codes: Vec<Option<i32>> =
                    items.iter().map(|item| self.exitcode(item, key)).collect();
                codes.into_iter().collect()
            }
            Value::Null | Value::Mapping(_) => {
                let message = format!(
                    "expected an exit code or a list of exit codes, found {}",
                    describe(node)
                );
                self.error(node, key, message);
                None
            }
        }
    }

    fn exitcode(&mut self, node: &Node, key: &str) -> Option<i32> {
        let text = self.scalar(node, key, "an exit code from 0 to 255")?;
        self.check(node, key, parse_exitcode(text))
    }

    /// A list, or one item alone (`etcd: http://...`), each item read by `read` under its own
    /// key (`etcd[1]`): `None`, with every error said, unless each was read and there is one
    /// at least. `expected` says what the list looks like, `needed` what an empty one lacks.
    fn one_or_more<T>(
        &mut self,
        node: &Node,
        key: &str,
        (expected, needed): (&str, &str),
        mut read: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items: Vec<&Node> = match &node.value {
            Value::Sequence(items) => items.iter().collect(),
            Value::Scalar { .. } => vec![node],
            _ => {
                let message = format!("expected {expected}, found {}", describe(node));
                self.error(node, key, message);
                return None;
            }
        };
        let errors = self.errors.len();
        let values: Vec<T> = items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| read(self, item, &format!("{key}[{i}]")))
            .collect();
        if values.is_empty() && errors == self.errors.len() {
            self.error(node, key, needed.to_string());
        }
        (errors == self.errors.len() && !values.is_empty()).then_some(values)
    }

    fn duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        let text = self.scalar(node, key, "a duration such as 1, 1.5s or 500ms")?;
        self.check(node, key, parse_duration(text))
    }

    /// `http:`: `listen`, and `username` with `password`.
    fn http(&mut self, node: &Node, key: &str) -> Option<HttpListener> {
        let Value::Mapping(pairs) = &node.value else {
            let message = format!(
                "expected a mapping with listen, username and password, found {}",
                describe(node)
            );
            self.error(node, key, message);
            return None;
        };
        let mut draft = HttpDraft::default();
        self.keys(pairs, key, HTTP_KEYS, &mut draft);
        let Some(listen) = draft.listen else {
            self.require(node, pairs, key, "listen");
            return None;
        };
        let credentials = match (draft.username, draft.password) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            _ => {
                self.error(
                    node,
                    key,
                    "username and password go together: give both or neither".to_string(),
                );
                return None;
            }
        };
        let listener = HttpListener::check(listen, credentials);
        self.check(node, key, listener)
    }

    /// A path, resolved against the configuration file's folder.
    fn path(&mut self, node: &Node, key: &str) -> Option<PathBuf> {
        let text = self.scalar(node, key, "a path")?;
        self.check(node, key, check_path(text))?;
        Some(self.dir.join(text))
    }

    /// A path, or null for none.
    fn optional_path(&mut self, node: &Node, key: &str) -> Option<PathBuf> {
        match node.value {
            Value::Null => None,
            _ => self.path(node, key),
        }
    }

    /// `stdout`'s value: a file, null (discarded), the word `syslog` or `auto` (a file in
    /// `childlogdir`), in any case: files of those names are written `./syslog`, `./auto`.
    fn output(&mut self, node: &Node, key: &str) -> Option<Output> {
        match &node.value {
            Value::Scalar { text, .. } if text.eq_ignore_ascii_case("syslog") => {
                Some(Output::Syslog)
            }
            Value::Scalar { text, .. } if text.eq_ignore_ascii_case("auto") => Some(Output::Auto),
            Value::Null => Some(Output::File(None)),
            _ => self.path(node, key).map(|path| Output::File(Some(path))),
        }
    }

    /// The control socket's access, with `socket_username` and `socket_password` together.
    fn socket_access(&mut self, top: &mut TopLevel) -> crate::SocketAccess {
        let mut access = top.socket_access.clone();
        match (top.socket_username.take(), top.socket_password.take()) {
            (Some((username, _)), Some((password, _))) => {
                access.credentials = Some(Credentials { username, password });
            }
            (Some((_, node)), None) => self.error(
                &node,
                "socket_username",
                "socket_password is missing: give both socket_username and socket_password, \
                 or neither"
                    .to_string(),
            ),
            (None, Some((_, node))) => self.error(
                &node,
                "socket_password",
                "socket_username is missing: give both socket_username and socket_password, \
                 or neither"
                    .to_string(),
            ),
            (None, None) => {}
        }
        access
    }

    /// `NAME: value` pairs; values are kept as written, numbers and booleans included.
    fn env(&mut self, node: &Node, key: &str, env: &mut BTreeMap<String, String>) {
        let pairs = match &node.value {
            Value::Null => return,
            Value::Mapping(pairs) => pairs,
            _ => {
                let message = format!(
                    "expected a mapping of variable names to values, found {}",
                    describe(node)
                );
                return self.error(node, key, message);
            }
        };
        for (name_node, value) in pairs {
            let Some(name) = self.key_name(name_node, key) else {
                continue;
            };
            if self.check(name_node, key, check_env_name(name)).is_none() {
                continue;
            }
            let path = join(key, name);
            let text = match &value.value {
                Value::Scalar { text, .. } => text,
                Value::Null => {
                    let message =
                        "expected a value, found null (write \"\" for an empty value)".to_string();
                    self.error(value, &path, message);
                    continue;
                }
                _ => {
                    let message = format!(
                        "expected a string, number or boolean, found {}",
                        describe(value)
                    );
                    self.error(value, &path, message);
                    continue;
                }
            };
            if self.check(value, &path, check_env_value(text)).is_none() {
                continue;
            }
            env.insert(name.to_string(), text.clone());
        }
    }

    /// Octal digits however written (`022`, `"022"`, `0o22`, `22`), at most 777; null = none.
    fn umask(&mut self, node: &Node, key: &str) -> Option<Option<u32>> {
        if node.value == Value::Null {
            return Some(None);
        }
        let text = self.scalar(node, key, UMASK_EXPECTED)?;
        self.check(node, key, parse_umask(text)).map(Some)
    }

    /// One of the words of `T`, in any case.
    fn word<T: Words>(&mut self, node: &Node, key: &str) -> Option<T> {
        let names: Vec<&str> = T::WORDS.iter().map(|(name, _)| *name).collect();
        let text = self.scalar(node, key, &one_of(&names))?;
        self.check(node, key, T::parse(text))
    }

    /// A duration of more than 0: what a timeout, a period or a window must be.
    fn positive_duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        let text = self.scalar(node, key, "a duration such as 1, 1.5s or 500ms")?;
        self.check(node, key, program::positive_duration(text))
    }

    /// `user`: an account's name or uid, looked up.
    fn user(&mut self, node: &Node, key: &str) -> Option<User> {
        let text = self.scalar(node, key, "a user name or uid")?;
        let found = self.accounts.find(text);
        self.check(node, key, found)
    }

    /// A command for `/bin/sh -c`, kept as written.
    fn shell_command(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.scalar(node, key, "a shell command")?;
        self.check(node, key, check_shell_command(text))?;
        Some(text.to_string())
    }

    /// A mapping's pairs, or an error saying what was expected instead.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        expected: &str,
    ) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Mapping(pairs) => Some(pairs),
            _ => {
                let message = format!("expected {expected}, found {}", describe(node));
                self.error(node, key, message);
                None
            }
        }
    }

    /// `missing required key "NAME"` at a mapping without that key. A key written with a
    /// wrong value is not missing: its own error says what is wrong.
    fn require(&mut self, node: &Node, pairs: &[(Node, Node)], key: &str, name: &str) {
        if !has_key(pairs, name) {
            self.error(node, key, format!("missing required key {name:?}"));
        }
    }

    /// `healthcheck:`: exactly one probe, and its timing.
    fn healthcheck(&mut self, node: &Node, key: &str) -> Option<HealthCheck> {
        let expected = "a mapping with one of cmd, http or tcp";
        let pairs = self.mapping(node, key, expected)?;
        let mut draft = HealthCheckDraft {
            probe_keys: Vec::new(),
            probe: None,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
        };
        self.keys(pairs, key, HEALTHCHECK_KEYS, &mut draft);
        match draft.probe_keys.as_slice() {
            [] => {
                let message = format!("missing a probe: give one of {}", one_of(&PROBE_KEYS));
                self.error(node, key, message);
                return None;
            }
            [_] => {}
            several => {
                let message = format!(
                    "give only one of {}, found {}",
                    one_of(&PROBE_KEYS),
                    several.join(" and ")
                );
                self.error(node, key, message);
                return None;
            }
        }
        Some(HealthCheck {
            probe: draft.probe?,
            interval: draft.interval,
            timeout: draft.timeout,
            retries: draft.retries,
            start_period: draft.start_period,
        })
    }

    /// `restart_limit: {count, within}`.
    fn restart_limit(&mut self, node: &Node, key: &str) -> Option<RestartLimit> {
        let expected = "a mapping such as {count: 5, within: 60s}";
        let pairs = self.mapping(node, key, expected)?;
        let mut draft = RestartLimitDraft::default();
        self.keys(pairs, key, RESTART_LIMIT_KEYS, &mut draft);
        self.require(node, pairs, key, "count");
        self.require(node, pairs, key, "within");
        Some(RestartLimit {
            count: draft.count?,
            within: draft.within?,
        })
    }

    /// `backoff: {initial, max, factor}`, each with its default, and `max >= initial`; or
    /// `backoff: off` (`false`, `no`): no delay at all, `None`. A wrong value is `None` too,
    /// after its error.
    fn backoff(&mut self, node: &Node, key: &str) -> Option<Backoff> {
        let expected = "a mapping such as {initial: 1s, max: 60s, factor: 2}, or off";
        if let Value::Scalar { text, .. } = &node.value {
            if parse_bool(text) != Some(false) {
                let message = format!("expected {expected}, found {}", describe(node));
                self.error(node, key, message);
            }
            return None;
        }
        let pairs = self.mapping(node, key, expected)?;
        let mut draft = BackoffDraft {
            backoff: BACKOFF_DEFAULTS,
            initial_node: None,
            max_node: None,
            has_wrong_value: false,
        };
        self.keys(pairs, key, BACKOFF_KEYS, &mut draft);
        let backoff = draft.backoff;
        if draft.has_wrong_value {
            return None;
        }
        if backoff.max >= backoff.initial {
            return Some(backoff);
        }
        // Said at `max` when it was written, else at `initial` (the default `max` is too low).
        match (&draft.max_node, &draft.initial_node) {
            (Some(max), initial) => {
                let default = format!("{}s, the default", BACKOFF_DEFAULTS.initial.as_secs());
                let initial = initial.as_ref().map_or(default, text_of);
                let message = format!(
                    "expected a duration >= initial ({initial}), found {}",
                    describe(max)
                );
                self.error(max, &join(key, "max"), message);
            }
            (None, Some(initial)) => {
                let message = format!(
                    "expected a duration <= max ({}s, the default), found {}",
                    BACKOFF_DEFAULTS.max.as_secs(),
                    describe(initial)
                );
                self.error(initial, &join(key, "initial"), message);
            }
            // The defaults are in order.
            (None, None) => {}
        }
        None
    }

    /// `rlimits: {nofile: 4096, core: unlimited}`: each limit checked against what taskmaster
    /// may give.
    fn rlimits(&mut self, node: &Node, key: &str) -> crate::Rlimits {
        let mut limits = crate::Rlimits::new();
        let Some(pairs) = self.mapping(node, key, "a mapping such as {nofile: 4096}") else {
            return limits;
        };
        for (name_node, value) in pairs {
            let Some(name) = self.key_name(name_node, key) else {
                continue;
            };
            let Some(resource) = self.check(name_node, key, crate::Resource::parse(name)) else {
                continue;
            };
            let path = join(key, name);
            let Some(text) = self.scalar(value, &path, "a number, unlimited, or SOFT:HARD") else {
                continue;
            };
            let Some(limit) = self.check(value, &path, crate::rlimits::parse_limit(resource, text))
            else {
                continue;
            };
            let refused = crate::rlimits::refusal(resource, limit, self.accounts.is_root());
            if let Some(message) = refused {
                self.error(value, &path, message);
                continue;
            }
            limits.insert(resource, limit);
        }
        limits
    }

    /// `alerts:`: a list of alerts; null for none.
    fn alerts(&mut self, node: &Node, key: &str) -> Vec<Alert> {
        match &node.value {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.alert(item, &format!("{key}[{i}]")))
                .collect(),
            _ => {
                let message = format!(
                    "expected a list of alerts such as [{{match: \"Corrupted data\"}}], found {}",
                    describe(node)
                );
                self.error(node, key, message);
                Vec::new()
            }
        }
    }

    /// One alert: `{match, stream, level}`.
    fn alert(&mut self, node: &Node, key: &str) -> Option<Alert> {
        let pairs = self.mapping(node, key, "a mapping with match, stream and level")?;
        let mut draft = AlertDraft {
            text: None,
            stream: None,
            level: AlertLevel::Warning,
        };
        self.keys(pairs, key, ALERT_KEYS, &mut draft);
        self.require(node, pairs, key, "match");
        Some(Alert {
            text: draft.text?,
            stream: draft.stream,
            level: draft.level,
        })
    }

    /// `depends_on: [db, cache]` (each RUNNING), or `depends_on: {db: {condition: healthy,
    /// restart: true}, cache: ~}`.
    fn depends_on(&mut self, node: &Node, key: &str) -> Vec<Dependency> {
        let running = |program: &str| Dependency {
            program: program.to_string(),
            condition: Condition::Running,
            restart: false,
        };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    self.scalar(item, &format!("{key}[{i}]"), "a program name")
                        .map(running)
                })
                .collect(),
            Value::Mapping(pairs) => pairs
                .iter()
                .filter_map(|(name_node, value)| {
                    let name = self.key_name(name_node, key)?;
                    let mut dependency = running(name);
                    let path = join(key, name);
                    if value.value != Value::Null {
                        let pairs =
                            self.mapping(value, &path, "a mapping with condition and restart")?;
                        self.keys(pairs, &path, DEPENDENCY_KEYS, &mut dependency);
                    }
                    Some(dependency)
                })
                .collect(),
            _ => {
                let message = format!(
                    "expected a list of programs such as [db, cache], or a mapping such as \
                     {{db: {{condition: healthy}}}}, found {}",
                    describe(node)
                );
                self.error(node, key, message);
                Vec::new()
            }
        }
    }
}

/// The keys of one dependency in `depends_on`'s mapping form.
const DEPENDENCY_KEYS: &[Key<Dependency>] = &[
    ("condition", |c, node, key, d| {
        if let Some(text) = c.scalar(node, key, "running, healthy, exited or ready") {
            if let Some(condition) = c.check(node, key, Condition::parse(text)) {
                d.condition = condition;
            }
        }
    }),
    ("restart", |c, node, key, d| {
        if let Some(restart) = c.boolean(node, key) {
            d.restart = restart;
        }
    }),
];

/// Whether a mapping has the key `name`.
fn has_key(pairs: &[(Node, Node)], name: &str) -> bool {
    pairs
        .iter()
        .any(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == name))
}

/// A scalar's text as written, for messages that name a value given elsewhere.
fn text_of(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, .. } => text.clone(),
        _ => describe(node),
    }
}

/// `unknown key "x"`, with the closest valid key or the list of them.
fn unknown_key(name: &str, names: &[&str]) -> String {
    match did_you_mean(name, names) {
        Some(close) => format!("unknown key {name:?} (did you mean {close:?}?)"),
        None => format!("unknown key {name:?} (valid keys: {})", names.join(", ")),
    }
}

/// `parent.name`, or `name` at the top level.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// What a node is, for "found ..." in messages.
fn describe(node: &Node) -> String {
    match &node.value {
        Value::Null => "null".to_string(),
        Value::Scalar { text, .. } => quote(text),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
    }
}

/// Each program's group, from the raw `groups:` mapping (only names: the mapping itself is
/// checked where it is read).
fn groups_of(tree: &Node) -> BTreeMap<String, String> {
    let mut group_of = BTreeMap::new();
    let groups = value_of(tree, "groups").map(|node| &node.value);
    let Some(Value::Mapping(groups)) = groups else {
        return group_of;
    };
    for (name, group) in groups {
        let (Value::Scalar { text: name, .. }, Some(programs)) =
            (&name.value, value_of(group, "programs"))
        else {
            continue;
        };
        if let Value::Sequence(programs) = &programs.value {
            for program in programs {
                if let Value::Scalar { text, .. } = &program.value {
                    group_of.insert(text.clone(), name.clone());
                }
            }
        }
    }
    group_of
}

/// Whether a program's values (its `process_name` pattern aside) use expansions (`%(`): then
/// each of its processes gets its own values.
fn values_have_expansions(program: &Node) -> bool {
    match &program.value {
        Value::Mapping(pairs) => pairs.iter().any(|(key, value)| {
            !matches!(&key.value, Value::Scalar { text, .. } if text == "process_name")
                && has_expansion(value)
        }),
        _ => has_expansion(program),
    }
}

/// Whether any value under `node` uses an expansion (`%(`).
fn has_expansion(node: &Node) -> bool {
    match &node.value {
        Value::Scalar { text, .. } => text.contains("%("),
        Value::Sequence(items) => items.iter().any(has_expansion),
        Value::Mapping(pairs) => pairs.iter().any(|(_, value)| has_expansion(value)),
        Value::Null => false,
    }
}

/// The value of `key` in mapping `node`, if there.
fn value_of<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Mapping(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == key))
            .map(|(_, value)| value),
        _ => None,
    }
}

/// A copy of `node` with every scalar value expanded for one process (keys stay as written);
/// the first value that cannot be, with why.
fn expand_node(
    node: &Node,
    path: &str,
    names: &Expansions,
) -> Result<Node, (Node, String, String)> {
    let value = match &node.value {
        Value::Scalar { text, quoted } => Value::Scalar {
            text: names
                .expand(text)
                .map_err(|why| (node.clone(), path.to_string(), why))?,
            quoted: *quoted,
        },
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|item| expand_node(item, path, names))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(pairs) => Value::Mapping(
            pairs
                .iter()
                .map(|(key, value)| {
                    let path = match &key.value {
                        Value::Scalar { text, .. } => join(path, text),
                        _ => path.to_string(),
                    };
                    Ok((key.clone(), expand_node(value, &path, names)?))
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Null => Value::Null,
    };
    Ok(Node {
        line: node.line,
        column: node.column,
        value,
    })
}
