//! # taskmaster's configuration
//!
//! Theory of operation: a configuration file goes through two layers, as ripgrep's flags do.
//!
//! 1. **Raw** ([`raw`]): the YAML text becomes a tree of nodes that remember where they stand
//!    (line and column). Nothing is interpreted yet: every scalar is kept as the text the user
//!    wrote, so `umask: 022` stays `"022"` and is read as octal, never as the integer 22.
//! 2. **Validated** ([`Config`], [`ProgramSpec`]): every key is checked, every default applied,
//!    every path resolved against the configuration file's folder and every signal resolved to
//!    its number. All errors are collected, not only the first, each naming its place:
//!    `taskmaster.yaml:12:5: programs.web.stopsignal: unknown signal "TERMM" (did you mean TERM?)`.
//!
//! Nothing past this boundary re-checks input: the supervisor trusts a [`Config`].
//! [`diff`] compares two configurations into a [`ReloadPlan`], the input of a reload.
//!
//! A file can also be a supervisord INI file ([`ini`]), which goes through the same two
//! layers (its own raw reader, then a translation) into the same [`Config`]; [`Config::load`]
//! tells the formats apart ([`detect_format`]). Both formats read a program through one
//! format-neutral layer (`program`: a draft, one table of the options both write as text,
//! one function with every rule between options) and every value through one library
//! (`values`), so the two say the same things about the same mistakes. [`to_yaml`]
//! writes any `Config` back as YAML, for `taskmaster convert`.
//!
//! I/O happens only in [`Config::load`] (and [`ini::load`]): reading the file, the files an
//! INI file includes, for INI expansions, the environment and the host name, and for `user`,
//! the password and group databases ([`Accounts`]; [`Config::parse`] reads them too when a
//! file names a user).

mod alerting;
mod cluster;
mod daemon;
mod dependencies;
mod diff;
mod duration;
mod emit;
mod error;
mod events;
mod expand;
pub mod ini;
mod instances;
mod program;
pub mod raw;
pub(crate) mod rlimits;
mod signal;
mod user;
mod values;
mod yaml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use alerting::{
    AlertEvent, AlertingSpec, EmailRoute, SmtpTls, Webhook, DEFAULT_BATCH, RESTART_STORM,
};
pub use cluster::{ClusterSpec, DEFAULT_PREFIX as DEFAULT_CLUSTER_PREFIX, DEFAULT_TTL};
pub use daemon::{
    auto_log_path, DaemonSettings, LogLevel, Owner, SocketAccess, DEFAULT_IDENTIFIER,
    DEFAULT_SOCKET_MODE,
};
pub use dependencies::{Condition, Dependency};
pub use diff::{diff, keep_fixed_settings, ChangedSettings, ReloadPlan};
pub use duration::parse_duration;
pub use emit::to_yaml;
pub use error::{os_reason, ConfigError, ConfigErrors, ConfigWarning};
pub use events::{EventType, ListenerSpec};
pub use expand::Host;
pub use ini::Credentials;
pub use rlimits::{Limit, Resource, Rlimits};
pub use signal::Signal;
pub use user::{Accounts, User};

/// A whole, validated configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The file this configuration was read from.
    pub path: PathBuf,
    /// The event log (`logfile:`), default `taskmaster.log` beside the configuration file.
    pub logfile: PathBuf,
    /// When the event log rotates (`logfile_maxbytes`, `logfile_backups`).
    #[serde(default)]
    pub log_rotation: Rotation,
    /// The control socket (`socket:`), default `taskmaster.sock` beside the configuration
    /// file.
    pub socket: PathBuf,
    /// A TCP listener for the control API (`http:`), if any.
    pub http: Option<HttpListener>,
    /// How the primary and the backup of `run --pair` keep in touch (`pair:`).
    #[serde(default)]
    pub pair: PairSettings,
    /// The local syslog socket (`syslog_socket:`, default [`DEFAULT_SYSLOG_SOCKET`]): where the
    /// lines of a stream sent to syslog go. Every program's `stdout_syslog` and
    /// `stderr_syslog` holds it too.
    #[serde(default = "default_syslog_socket")]
    pub syslog_socket: PathBuf,
    /// The daemon's own settings (`[supervisord]`'s `pidfile`, `loglevel`, `identifier`,
    /// `umask`, `directory`, `minfds`, `minprocs`, `childlogdir`...) and who may use its
    /// control socket (`[unix_http_server]`'s `chmod`, `chown`, `username`, `password`). Boxed:
    /// a `Config` travels in the supervisor's events, which stay small.
    #[serde(default)]
    pub daemon: Box<DaemonSettings>,
    /// Every program, by name, in name order.
    pub programs: BTreeMap<String, ProgramSpec>,
    /// The user taskmaster switches to once its sockets and event log are open (top-level
    /// `user`, `[supervisord] user`); `None`: it stays who it is. Boxed: a `Config` travels
    /// in the supervisor's events, which it should not make larger.
    #[serde(default)]
    pub user: Option<Box<User>>,
    /// Groups of programs (`groups:`, supervisord's `[group:x]`), by name.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupSpec>,
}

/// Programs whose processes are addressed together, `GROUP:PROCESS` and `GROUP:*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Its programs, as listed.
    pub programs: Vec<String>,
    /// Lower starts first and stops last, before its programs' own priorities (default 999).
    pub priority: u32,
}

/// One program of the configuration, with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramSpec {
    /// The key under `programs:`.
    pub name: String,
    /// `cmd` as the user wrote it.
    pub cmd: String,
    /// `cmd` split into words the way a shell splits them; never empty.
    pub argv: Vec<String>,
    /// How many copies run; at least 1.
    pub numprocs: u32,
    /// The first process's number, `%(process_num)d` (`numprocs_start`, default 0).
    #[serde(default)]
    pub numprocs_start: u32,
    /// How each process is named, as written (`process_name`), with `%(program_name)s` and
    /// `%(process_num)d` expansions; `None`: the program's name for one process, else
    /// `NAME_00`, `NAME_01`...
    #[serde(default)]
    pub process_name: Option<String>,
    pub autostart: bool,
    pub autorestart: AutoRestart,
    /// Exit codes that count as expected.
    pub exitcodes: Vec<i32>,
    /// How long a process must stay up to count as started (RUNNING).
    pub starttime: Duration,
    /// Failed starts allowed before giving up (FATAL).
    pub startretries: u32,
    pub stopsignal: Signal,
    /// How long to wait after `stopsignal` before SIGKILL.
    pub stoptime: Duration,
    /// The file the child's stdout goes to; `None`: none (discarded, unless sent to syslog).
    pub stdout: Option<PathBuf>,
    /// The file the child's stderr goes to; `None`: none (discarded, unless sent to syslog).
    pub stderr: Option<PathBuf>,
    /// The syslog socket each stdout line is sent to, besides `stdout`'s file if any
    /// (`stdout: syslog`, or `stdout_syslog: true` beside a file); `None`: not sent. It is
    /// the top-level `syslog_socket`, kept here so that a program is all its spawn needs,
    /// and so that moving the socket changes (restarts) the programs that use it.
    #[serde(default)]
    pub stdout_syslog: Option<PathBuf>,
    /// The same for stderr (`stderr: syslog`, `stderr_syslog: true`).
    #[serde(default)]
    pub stderr_syslog: Option<PathBuf>,
    /// Variables merged over taskmaster's own environment.
    pub env: BTreeMap<String, String>,
    /// The process's `SUPERVISOR_SERVER_URL` (`serverurl`, supervisord's option): `None`
    /// (`AUTO`, the default) derives it as supervisord does, from the control socket; an
    /// empty text sets none.
    #[serde(default)]
    pub serverurl: Option<String>,
    /// The child's working directory; `None` inherits taskmaster's.
    pub workingdir: Option<PathBuf>,
    /// The child's umask; `None` inherits taskmaster's.
    pub umask: Option<u32>,
    /// Lower starts first and stops last (supervisord's `priority`, default 999).
    pub priority: u32,
    /// What stdout tells event listeners (`stdout_events_enabled`, `stdout_capture_maxbytes`).
    #[serde(default)]
    pub stdout_events: StreamEvents,
    /// The same for stderr.
    #[serde(default)]
    pub stderr_events: StreamEvents,
    /// When the stdout file is rotated (`stdout_maxbytes`, `stdout_backups`).
    pub stdout_rotation: Rotation,
    /// When the stderr file is rotated (`stderr_maxbytes`, `stderr_backups`).
    pub stderr_rotation: Rotation,
    /// Where the child's stdin comes from (`stdin:`), default /dev/null.
    pub stdin: Stdin,
    /// When a STARTING process counts as RUNNING (`ready:`).
    pub ready: Readiness,
    /// With `ready: notify`, how long to wait for READY=1 before the start fails (default 30s).
    pub readytime: Duration,
    /// A RUNNING process silent (no `WATCHDOG=1`) for longer than this is hung.
    pub watchdog: Option<Duration>,
    /// Whether time spent paused by an outside signal counts against the watchdog.
    pub watchdog_paused: WatchdogPaused,
    /// When a child exits, whatever is left of its process group is stopped (`stopsignal`,
    /// then SIGKILL after `stoptime`) before the program counts as stopped or starts again
    /// (`killgroup`, default true: systemd's `KillMode=control-group`).
    #[serde(default = "yes")]
    pub killgroup: bool,
    pub healthcheck: Option<Box<HealthCheck>>,
    /// A shell command run after every exit of a child, before it is started again.
    pub on_exit: Option<Hook>,
    /// More automatic restarts than this within the window ends FATAL; `None`: no limit.
    pub restart_limit: Option<RestartLimit>,
    /// Delays between automatic restarts after a RUNNING process exits: by default
    /// [`Backoff::THROTTLE`]; `None` (`backoff: off`): always at once.
    pub backoff: Option<Box<Backoff>>,
    /// Output lines that raise an alert.
    pub alerts: Vec<Alert>,
    /// The user the process runs as (`user`), with its groups, looked up when the file was
    /// read; `None`: taskmaster's own. Its health checks and `on_exit` hooks run as it too.
    #[serde(default)]
    pub user: Option<Box<User>>,
    /// The group the program belongs to (`groups:`, `[group:x]`); `None`: its own.
    #[serde(default)]
    pub group: Option<String>,
    /// That group's priority.
    #[serde(default)]
    pub group_priority: Option<u32>,
    /// The listening socket taskmaster opens for the program and gives each of its processes
    /// as its stdin, fd 0 (supervisord's `[fcgi-program:x]` and its `socket` options).
    #[serde(default)]
    pub fcgi_socket: Option<Box<FcgiSocket>>,
    /// When it ends for good (FATAL, or an exit not restarted), taskmaster stops everything
    /// and exits with its exit code (`critical`): a container's main program.
    #[serde(default)]
    pub critical: bool,
    /// It runs on one node of the cluster only, the one holding its key (`singleton`).
    #[serde(default)]
    pub singleton: bool,
    /// The programs it waits for before it starts (`depends_on`), in the order written.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// The resource limits its processes start with (`rlimits`), set before exec.
    #[serde(default)]
    pub rlimits: Rlimits,
    /// What makes it an event listener (`[eventlistener:x]`, `eventlisteners:`): taskmaster
    /// writes the events it subscribes to on its stdin and reads its answers on its stdout.
    #[serde(default)]
    pub listener: Option<ListenerSpec>,
    /// The program's processes, `numprocs` of them in order, each with its own settings: the
    /// program's, with every `%(process_num)d` (and the other expansions) worked out for it.
    /// The program's own values are as written; a process's are what it runs with. Empty in
    /// a process's own spec.
    #[serde(default)]
    pub processes: Vec<ProcessSpec>,
}

/// A listening socket shared by a program's processes, as supervisord's `[fcgi-program:x]`
/// opens it: once for the first process started, closed when the last one is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcgiSocket {
    pub address: SocketAddress,
    /// `listen`'s backlog (`socket_backlog`); `None`: the system's maximum (SOMAXCONN).
    pub backlog: Option<u32>,
    /// A Unix socket's owner (`socket_owner`); `None`: taskmaster's own, or the program's
    /// `user` when it has one.
    pub owner: Option<Owner>,
    /// A Unix socket's mode (`socket_mode`, default 0700).
    pub mode: u32,
}

/// What one output stream of a program tells event listeners, as supervisord's options say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvents {
    /// `*_events_enabled`: each chunk of output is a `PROCESS_LOG_*` event.
    pub log: bool,
    /// `*_capture_maxbytes`: output between `<!--XSUPERVISOR:BEGIN-->` and
    /// `<!--XSUPERVISOR:END-->` is a `PROCESS_COMMUNICATION_*` event (its last this many
    /// bytes), and stays out of the log file; 0: no capture mode.
    pub capture_maxbytes: u64,
}

impl StreamEvents {
    /// Whether the stream's bytes must be read by taskmaster for events.
    pub fn any(self) -> bool {
        self.log || self.capture_maxbytes > 0
    }
}

/// Where a socket listens: `tcp://HOST:PORT` or `unix:///PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketAddress {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            SocketAddress::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// One process of a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Its name within the program (`process_name` expanded): `web`, `web_00`, `worker-8001`.
    pub name: String,
    /// Its `%(process_num)d`.
    pub num: u32,
    /// Everything it runs with.
    pub spec: std::sync::Arc<ProgramSpec>,
}

/// Rotation of a log file by size, supervisord's way: `x.log` is renamed `x.log.1` (and
/// `x.log.1` `x.log.2`... up to `backups`) once it holds `maxbytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// 0: never rotated.
    pub maxbytes: u64,
    /// 0: the file is emptied (truncated) instead of kept.
    pub backups: u32,
}

impl Default for Rotation {
    /// supervisord's defaults: 50 MB, 10 backups.
    fn default() -> Rotation {
        Rotation {
            maxbytes: 50 << 20,
            backups: 10,
        }
    }
}

/// serde's default for a flag that is on unless said otherwise.
fn yes() -> bool {
    true
}

/// Where a child's stdin comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stdin {
    /// /dev/null (the default).
    Null,
    /// A file, read from its start at every spawn (`stdin: PATH`).
    File(PathBuf),
    /// A pipe taskmaster keeps open, for `sendstdin` and `attach` (`stdin: pipe`; what
    /// supervisord gives every child).
    Pipe,
}

/// When a process that was spawned counts as started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readiness {
    /// Up for `starttime` (supervisord's rule; `ready: started`, the default).
    Started,
    /// It sent `READY=1` on the notify socket (`ready: notify`).
    Notify,
}

/// What the watchdog does with time a process spends paused by SIGSTOP/SIGTSTP from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchdogPaused {
    /// Paused time does not count: paused is not hung (`watchdog_paused: ignore`, the default).
    Ignore,
    /// Paused time counts: a process paused for longer than `watchdog` is restarted
    /// (`watchdog_paused: restart`).
    Restart,
}

/// A periodic check of a process that cannot report its own health (Docker's HEALTHCHECK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: Probe,
    /// Time between the end of one check and the start of the next (default 30s).
    pub interval: Duration,
    /// A check not finished by then has failed (default 30s).
    pub timeout: Duration,
    /// Consecutive failures that make the process unhealthy (default 3).
    pub retries: u32,
    /// Failures this soon after the spawn do not count (default 0s).
    pub start_period: Duration,
}

/// What a health check does; each is healthy on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// `cmd: "..."`: run with `/bin/sh -c`; exit status 0 is healthy.
    Cmd(String),
    /// `http: "http://host:port/path"`: a GET answered with a 2xx status is healthy.
    Http(HttpProbe),
    /// `tcp: "host:port"`: a connection accepted is healthy.
    Tcp(String),
}

/// An `http://` URL taken apart. Only plain HTTP: a health endpoint is local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// The URL as written.
    pub url: String,
    /// `host:port` to connect to (port 80 when the URL has none).
    pub address: String,
    /// The Host header: the URL's authority as written.
    pub host: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl HttpProbe {
    /// The host alone, the name a TLS certificate is checked against: the authority without
    /// its port, an IPv6 address without its brackets.
    pub fn host_name(&self) -> &str {
        if let Some(bracketed) = self.host.strip_prefix('[') {
            return bracketed.split(']').next().unwrap_or(bracketed);
        }
        self.host
            .rsplit_once(':')
            .map_or(&self.host, |(host, _)| host)
    }
}

/// A command run after a child exits (`on_exit:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Run with `/bin/sh -c`.
    pub cmd: String,
    /// Killed (its whole process group) when it runs longer (`on_exit_timeout:`, default 30s).
    pub timeout: Duration,
}

/// At most `count` automatic restarts `within` a sliding window (Erlang/OTP's intensity and
/// period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartLimit {
    pub count: u32,
    pub within: Duration,
}

/// Exponential delays between automatic restarts: `initial`, then times `factor` for each
/// restart that follows, never more than `max`. A process that stays up for `max` starts
/// again from `initial`.
///
/// A program without a `backoff:` key gets [`Backoff::THROTTLE`], the crash-loop throttle:
/// the same rule, except that the first restart of a row is at once (`first_at_once`).
/// `backoff: off` is `None`: every restart at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// At least 1.
    pub factor: f64,
    /// The first restart of a row is at once, and the n-th (n >= 2) waits what the n-1-th
    /// would wait otherwise. Only the default throttle has it; it is not a key of the file.
    /// Defaulted, so that a state saved before it existed still loads.
    #[serde(default)]
    pub first_at_once: bool,
}

impl Backoff {
    /// The default crash-loop throttle of a program without `backoff:`: a program that keeps
    /// dying at once is restarted at 0, +0.1, +0.2, +0.4 s... then every 10 s; one that
    /// crashes once, or ran for 10 s before it died, is restarted at once.
    pub const THROTTLE: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
        factor: 2.0,
        first_at_once: true,
    };

    /// The delay before the `n`-th restart in a row (`n` from 1).
    pub fn delay(&self, n: u32) -> Duration {
        let n = match self.first_at_once {
            true if n <= 1 => return Duration::ZERO,
            true => n - 1,
            false => n,
        };
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if seconds.is_finite() && seconds < self.max.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            self.max
        }
    }
}

/// An output line that raises an alert (`alerts:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// A line containing this text matches (`match:`; plain text, not a pattern).
    pub text: String,
    /// The stream watched; `None` watches both (`stream:`).
    pub stream: Option<Stream>,
    pub level: AlertLevel,
}

/// One of a child's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How loud an alert is (`level:`, default `warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertLevel {
    Info,
    Warning,
    Error,
}

impl AlertLevel {
    pub fn name(self) -> &'static str {
        match self {
            AlertLevel::Info => "info",
            AlertLevel::Warning => "warning",
            AlertLevel::Error => "error",
        }
    }
}

/// Where `syslog_socket` is when the configuration does not say: glibc's `_PATH_LOG`, the
/// socket syslog(3) writes to.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

fn default_syslog_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SYSLOG_SOCKET)
}

/// `pair: {interval, misses}`: a primary of `run --pair` that says nothing for `misses`
/// heartbeat intervals in a row is taken over (one that dies is taken over at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSettings {
    /// Between two heartbeats (default 200ms).
    pub interval: Duration,
    /// Missed in a row before the backup takes over (default 5).
    pub misses: u32,
}

impl Default for PairSettings {
    fn default() -> PairSettings {
        PairSettings {
            interval: Duration::from_millis(200),
            misses: 5,
        }
    }
}

impl PairSettings {
    /// How long a backup waits for a word before it takes over.
    pub fn silence(&self) -> Duration {
        self.interval.saturating_mul(self.misses)
    }
}

/// The control API on a TCP address, with HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpListener {
    pub listen: SocketAddr,
    /// Required, unless `listen` is a loopback address.
    pub credentials: Option<Credentials>,
}

impl HttpListener {
    /// Checks that a listener is safe to open: an address other machines can reach needs
    /// credentials.
    pub(crate) fn check(
        listen: SocketAddr,
        credentials: Option<Credentials>,
    ) -> Result<HttpListener, String> {
        if credentials.is_none() && !listen.ip().is_loopback() {
            return Err(format!(
                "{listen} can be reached from other machines: give a username and a password, or listen on 127.0.0.1"
            ));
        }
        Ok(HttpListener {
            listen,
            credentials,
        })
    }
}

/// When a process that exited from RUNNING is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoRestart {
    Always,
    Never,
    /// Only when the exit code is not one of `exitcodes` (or the process was killed by a signal).
    Unexpected,
}

impl ProgramSpec {
    /// The file `stream` goes to, if any.
    pub fn file(&self, stream: Stream) -> Option<&Path> {
        match stream {
            Stream::Stdout => self.stdout.as_deref(),
            Stream::Stderr => self.stderr.as_deref(),
        }
    }

    /// When `stream`'s file is rotated.
    pub fn rotation(&self, stream: Stream) -> Rotation {
        match stream {
            Stream::Stdout => self.stdout_rotation,
            Stream::Stderr => self.stderr_rotation,
        }
    }

    /// What `stream` tells event listeners.
    pub fn events(&self, stream: Stream) -> StreamEvents {
        match stream {
            Stream::Stdout => self.stdout_events,
            Stream::Stderr => self.stderr_events,
        }
    }

    /// The syslog socket `stream`'s lines are sent to, if they are.
    pub fn syslog(&self, stream: Stream) -> Option<&Path> {
        match stream {
            Stream::Stdout => self.stdout_syslog.as_deref(),
            Stream::Stderr => self.stderr_syslog.as_deref(),
        }
    }

    /// Whether the process writes `stream`'s file itself (opened by taskmaster with
    /// O_APPEND, given as the child's descriptor), rather than into a pipe taskmaster drains:
    /// when the stream goes to a file that is never rotated and nothing reads the stream in
    /// passing (no syslog, no output events, not a listener's protocol). taskmaster then
    /// spends nothing on the stream, and no crash of its can lose a byte; whatever needs the
    /// output after it is written (`tail`, `alerts`) reads the file.
    pub fn writes_own_file(&self, stream: Stream) -> bool {
        self.file(stream).is_some()
            && self.rotation(stream).maxbytes == 0
            && self.syslog(stream).is_none()
            && !self.events(stream).any()
            && !(self.listener.is_some() && stream == Stream::Stdout)
    }

    /// Whether an exit with this code counts as expected.
    pub fn is_expected_exit(&self, code: i32) -> bool {
        self.exitcodes.contains(&code)
    }

    /// The names of this program's processes, in order.
    pub fn process_names(&self) -> Vec<String> {
        self.processes.iter().map(|p| p.name.clone()).collect()
    }

    /// The name users address process `process` of this program by: the program's name when
    /// it has one process named like it (`web`), else `PROGRAM:PROCESS` (`workers:workers_00`),
    /// as supervisorctl shows them.
    pub fn full_name(&self, process: &str) -> String {
        match &self.group {
            Some(group) => format!("{group}:{process}"),
            None if self.numprocs == 1 && process == self.name => process.to_string(),
            None => format!("{}:{process}", self.name),
        }
    }

    /// The group its processes are addressed by: its group's, or its own name.
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }

    /// Where it comes in the order of starts (lowest first) and stops (highest first): its
    /// group's priority, then its own, as supervisord orders groups and then their programs.
    pub fn order(&self) -> (u32, u32) {
        (self.group_priority.unwrap_or(self.priority), self.priority)
    }

    /// What changes from `self` to `other` for a process running with `self`: the settings
    /// taskmaster applies in place (how it watches the process), and those that restart it
    /// (what the process is, or what it was given at its start). `numprocs` aside: a pool
    /// that grows or shrinks leaves the processes it keeps alone.
    pub fn changes(&self, other: &ProgramSpec) -> SettingsChange {
        let (a, b) = (self, other);
        // A rotation turned on or off changes who writes the file (the process or taskmaster).
        let output_way_changes = [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .any(|stream| a.writes_own_file(stream) != b.writes_own_file(stream));
        let in_place = [
            ("autostart", a.autostart != b.autostart),
            ("autorestart", a.autorestart != b.autorestart),
            ("exitcodes", a.exitcodes != b.exitcodes),
            ("starttime", a.starttime != b.starttime),
            ("startretries", a.startretries != b.startretries),
            ("stopsignal", a.stopsignal != b.stopsignal),
            ("stoptime", a.stoptime != b.stoptime),
            (
                "priority",
                a.priority != b.priority || a.group_priority != b.group_priority,
            ),
            ("killgroup", a.killgroup != b.killgroup),
            ("ready", a.ready != b.ready || a.readytime != b.readytime),
            ("watchdog_paused", a.watchdog_paused != b.watchdog_paused),
            ("healthcheck", a.healthcheck != b.healthcheck),
            ("on_exit", a.on_exit != b.on_exit),
            ("restart_limit", a.restart_limit != b.restart_limit),
            ("backoff", a.backoff != b.backoff),
            ("events", a.listener != b.listener),
            ("process_name", a.process_name != b.process_name),
            ("critical", a.critical != b.critical),
            ("depends_on", a.depends_on != b.depends_on),
            // The capture's sink takes the new sizes for its next write.
            (
                "rotation",
                (a.stdout_rotation != b.stdout_rotation || a.stderr_rotation != b.stderr_rotation)
                    && !output_way_changes,
            ),
        ];
        let mut same = other.clone();
        same.numprocs = self.numprocs;
        same.numprocs_start = self.numprocs_start;
        same.processes.clone_from(&self.processes);
        same.autostart = self.autostart;
        same.autorestart = self.autorestart;
        same.exitcodes.clone_from(&self.exitcodes);
        same.starttime = self.starttime;
        same.startretries = self.startretries;
        same.stopsignal = self.stopsignal;
        same.stoptime = self.stoptime;
        same.priority = self.priority;
        same.group_priority = self.group_priority;
        same.killgroup = self.killgroup;
        same.ready = self.ready;
        same.readytime = self.readytime;
        same.watchdog_paused = self.watchdog_paused;
        same.healthcheck.clone_from(&self.healthcheck);
        same.on_exit.clone_from(&self.on_exit);
        same.restart_limit = self.restart_limit;
        same.backoff = self.backoff.clone();
        same.listener.clone_from(&self.listener);
        same.depends_on.clone_from(&self.depends_on);
        same.process_name.clone_from(&self.process_name);
        same.critical = self.critical;
        same.stdout_rotation = self.stdout_rotation;
        same.stderr_rotation = self.stderr_rotation;
        let restart = [
            ("cmd", a.cmd != b.cmd || a.argv != b.argv),
            ("env", a.env != b.env || a.serverurl != b.serverurl),
            ("workingdir", a.workingdir != b.workingdir),
            ("umask", a.umask != b.umask),
            ("user", a.user != b.user),
            (
                "stdout",
                a.stdout != b.stdout || a.stdout_syslog != b.stdout_syslog,
            ),
            (
                "stderr",
                a.stderr != b.stderr || a.stderr_syslog != b.stderr_syslog,
            ),
            ("stdin", a.stdin != b.stdin),
            ("rotation", output_way_changes),
            // The child is told its period (WATCHDOG_USEC) when it starts.
            ("watchdog", a.watchdog != b.watchdog),
            ("singleton", a.singleton != b.singleton),
            // Its output is watched for them from its start.
            ("alerts", a.alerts != b.alerts),
            ("rlimits", a.rlimits != b.rlimits),
            ("socket", a.fcgi_socket != b.fcgi_socket),
            (
                "output events",
                a.stdout_events != b.stdout_events || a.stderr_events != b.stderr_events,
            ),
        ];
        let mut change = SettingsChange {
            in_place: in_place
                .iter()
                .filter(|(_, c)| *c)
                .map(|(n, _)| *n)
                .collect(),
            restart: restart
                .iter()
                .filter(|(_, c)| *c)
                .map(|(n, _)| *n)
                .collect(),
        };
        // Whatever else differs (a setting added later and not listed above) restarts.
        if *self != same && change.restart.is_empty() {
            change.restart.push("other settings");
        }
        change
    }
}

/// What a reload changes for a running process: [`ProgramSpec::changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Settings applied to the running process, without a restart.
    pub in_place: Vec<&'static str>,
    /// Settings that restart it.
    pub restart: Vec<&'static str>,
}

/// The two formats a configuration file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// taskmaster's own YAML.
    Yaml,
    /// supervisord's INI (`supervisord.conf`).
    Ini,
}

/// The format of a file named `path` holding `text`: INI for a name ending in `.conf` or
/// `.ini` (in any case), or for a file whose first line that is neither blank nor a comment
/// (`#` or `;`) is a `[section]` header; YAML otherwise. A YAML configuration is a mapping,
/// so it never starts with `[`.
pub fn detect_format(path: &Path, text: &str) -> Format {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("conf" | "ini")) {
        return Format::Ini;
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with(['#', ';']));
    // A header is `[name]`, maybe followed by a comment; `[a]: x` is YAML.
    let is_header = first.is_some_and(|line| {
        line.starts_with('[')
            && line.rfind(']').is_some_and(|end| {
                let after = line[end + 1..].trim_start();
                end > 1 && (after.is_empty() || after.starts_with([';', '#']))
            })
    });
    if is_header {
        Format::Ini
    } else {
        Format::Yaml
    }
}

impl Config {
    /// Reads and validates the file at `path`, YAML or supervisord INI ([`detect_format`]),
    /// for this process: `user` is looked up in the system's databases and checked against
    /// who runs it ([`Accounts::system`]). Its warnings are dropped: see
    /// [`Config::load_with_warnings`].
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_with_warnings(path).map(|(config, _)| config)
    }

    /// [`Config::load`] with `user` looked up in `accounts`.
    pub fn load_with(path: &Path, accounts: &Accounts) -> Result<Config, ConfigErrors> {
        Config::read(path, accounts).map(|(config, _)| config)
    }

    /// Reads and validates the file at `path`, with the warnings about what it says that
    /// taskmaster accepts but does not do as written (an option supervisord does not know
    /// either, a repeated option, an `[include]` that matches nothing...), each with its place.
    /// A YAML file has none: its unknown keys are errors.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<ConfigWarning>), ConfigErrors> {
        Config::read(path, &Accounts::system())
    }

    /// [`Config::load_with_warnings`] with `user` looked up in `accounts`.
    pub fn read(
        path: &Path,
        accounts: &Accounts,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::file_level(
                path,
                format!("cannot read: {}", os_reason(&e)),
            ))
        })?;
        match detect_format(path, &text) {
            Format::Yaml => {
                Config::parse_with(&text, path, accounts).map(|config| (config, Vec::new()))
            }
            Format::Ini => ini::parse_with(text.as_str(), path, &ini::Host::current(), accounts)
                .map(|ini| (ini.config, ini.warnings)),
        }
    }

    /// Validates supervisord INI `text` as if it had been read from `path`, with taskmaster's
    /// environment and host name for the expansions. Its `[include]` files are read. What the
    /// `Config` cannot hold (priorities, the HTTP servers) is in [`ini::parse`]'s result.
    pub fn parse_ini(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        ini::parse(text, path, &ini::Host::current()).map(|ini| ini.config)
    }

    /// Validates YAML `text` as if it had been read from `path` (used in errors, and to
    /// resolve relative paths against the file's folder). A `user` is looked up in the
    /// system's databases ([`Accounts::system`]).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_with(text, path, &Accounts::system())
    }

    /// [`Config::parse`] with `user` looked up in `accounts`.
    pub fn parse_with(
        text: &str,
        path: &Path,
        accounts: &Accounts,
    ) -> Result<Config, ConfigErrors> {
        let tree = raw::parse(text, path)?;
        yaml::validate(&tree, path, &Host::current(), accounts)
    }
}

/// How a control client (`taskmaster ctl`) reaches the daemon of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlClient {
    /// The control socket.
    pub socket: PathBuf,
    /// The credentials to send, when the socket asks for some: `[supervisorctl]`'s `username`
    /// and `password` in a supervisord file, else the socket's own when its password is
    /// written in clear.
    pub credentials: Option<Credentials>,
}

impl ControlClient {
    /// How to reach the daemon of the file at `path`.
    pub fn load(path: &Path) -> Result<ControlClient, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::file_level(
                path,
                format!("cannot read: {}", os_reason(&e)),
            ))
        })?;
        let (socket, access, ctl) = match detect_format(path, &text) {
            // Only the keys a client needs: see `yaml::control_client`.
            Format::Yaml => {
                let (socket, access) = yaml::control_client(&raw::parse(&text, path)?, path)?;
                (socket, access, None)
            }
            Format::Ini => {
                let ini = ini::parse(&text, path, &ini::Host::current())?;
                let access = ini.config.daemon.socket_access;
                (ini.config.socket, access, ini.supervisorctl)
            }
        };
        let from_ctl = ctl.and_then(|ctl| match (ctl.username, ctl.password) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            _ => None,
        });
        let own = access
            .credentials
            .filter(|c| !c.password.starts_with("{SHA}"));
        Ok(ControlClient {
            socket,
            credentials: from_ctl.or(own),
        })
    }
}
