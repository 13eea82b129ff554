//! The daemon's own settings, supervisord's `[supervisord]` and `[unix_http_server]` ones: what
//! taskmaster does at start and at exit besides supervising (a pid file, resource limits, its
//! umask and directory), how much its event log says (`loglevel`), its name over XML-RPC
//! (`identifier`), where AUTO log files go (`childlogdir`), and who may use the control socket.
//!
//! Both formats fill them: the YAML with top-level keys named as supervisord names the options
//! (`pidfile`, `loglevel`, `identifier`, `umask`, `directory`, `minfds`, `minprocs`,
//! `strip_ansi`, `childlogdir`, `nocleanup`, and `socket_mode`, `socket_owner`,
//! `socket_username`, `socket_password` for `[unix_http_server]`'s `chmod`, `chown`,
//! `username`, `password`), the INI with the options themselves. The runtime applies them; a
//! reload keeps those bound at start (see [`crate::keep_fixed_settings`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Credentials, Stream};

/// What `[supervisord]` says of the daemon itself, every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSettings {
    /// `pidfile`: written (the daemon's pid and a newline) at start, removed at exit; `None`:
    /// no pid file.
    pub pidfile: Option<PathBuf>,
    /// `loglevel`: which lines the event log writes (default `info`).
    pub loglevel: LogLevel,
    /// `identifier`: what XML-RPC's `supervisor.getIdentification` answers, and the middle of
    /// AUTO log files' names (default `supervisor`).
    pub identifier: String,
    /// `umask`: the daemon's own, set at start and inherited by every child that sets none;
    /// `None`: the one taskmaster was started with.
    pub umask: Option<u32>,
    /// `directory`: the daemon's working directory from its start (and every child's that
    /// sets none); `None`: the one it was started in. Paths in the file are resolved against
    /// the file's folder all the same.
    pub directory: Option<PathBuf>,
    /// `minfds`: RLIMIT_NOFILE's soft limit is raised to this at start if it is lower.
    pub minfds: Option<u64>,
    /// `minprocs`: the same for RLIMIT_NPROC.
    pub minprocs: Option<u64>,
    /// `strip_ansi`: accepted; the output is kept as the programs write it.
    pub strip_ansi: bool,
    /// `childlogdir`: where AUTO log files go, by default the system's temporary folder
    /// (`$TMPDIR`, else `/tmp`), resolved when a program has one; `None` when the file names
    /// none and no program has an AUTO file.
    pub childlogdir: Option<PathBuf>,
    /// `nocleanup`: AUTO log files are kept at exit.
    pub nocleanup: bool,
    /// `exit_when_done`: taskmaster exits (0) once every program has ended and none will be
    /// restarted, as a batch job's supervisor.
    #[serde(default)]
    pub exit_when_done: bool,
    /// The AUTO log files of the programs (`stdout_logfile = AUTO`, supervisord's default):
    /// removed at exit unless `nocleanup`.
    pub auto_logs: BTreeSet<PathBuf>,
    /// Who may use the control socket.
    pub socket_access: SocketAccess,
    /// `alerting:`: where taskmaster tells people what went wrong; `None`: nowhere but the
    /// event log. Boxed: rarely there, and a `Config` travels in the supervisor's events.
    #[serde(default)]
    pub alerting: Option<Box<crate::AlertingSpec>>,
    /// `cluster:`: the etcd this node shares with the others, for `singleton` programs;
    /// `None`: no cluster. Boxed as `alerting` is.
    #[serde(default)]
    pub cluster: Option<Box<crate::ClusterSpec>>,
}

impl Default for DaemonSettings {
    fn default() -> DaemonSettings {
        DaemonSettings {
            pidfile: None,
            loglevel: LogLevel::Info,
            identifier: DEFAULT_IDENTIFIER.to_string(),
            umask: None,
            directory: None,
            minfds: None,
            minprocs: None,
            strip_ansi: false,
            childlogdir: None,
            nocleanup: false,
            exit_when_done: false,
            auto_logs: BTreeSet::new(),
            socket_access: SocketAccess::default(),
            alerting: None,
            cluster: None,
        }
    }
}

/// supervisord's default `identifier`.
pub const DEFAULT_IDENTIFIER: &str = "supervisor";

/// Who may use the control socket: `[unix_http_server]`'s `chmod`, `chown`, `username` and
/// `password` (`socket_mode`, `socket_owner`, `socket_username`, `socket_password`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketAccess {
    /// The socket file's mode (default 0600).
    pub mode: u32,
    /// Its owner, looked up when taskmaster starts; `None`: taskmaster's user.
    pub owner: Option<Owner>,
    /// With credentials, every request on the socket needs them (HTTP basic auth).
    pub credentials: Option<Credentials>,
}

/// The control socket's mode when the file does not say.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

impl Default for SocketAccess {
    fn default() -> SocketAccess {
        SocketAccess {
            mode: DEFAULT_SOCKET_MODE,
            owner: None,
            credentials: None,
        }
    }
}

impl SocketAccess {
    /// Whether the file's permissions, rather than taskmaster's own check of the peer's uid,
    /// decide who may connect: the mode lets the group or others in, or the file has another
    /// owner. Otherwise only taskmaster's user and root may.
    pub fn opened_to_others(&self) -> bool {
        self.mode & 0o077 != 0 || self.owner.is_some()
    }
}

/// A file's owner as written: a user and maybe a group, names or numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub user: String,
    pub group: Option<String>,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

/// supervisord's log levels, most severe first. A line is written when its level is at least
/// as severe as `loglevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    Blather,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    /// Every level, as the files write them, most severe first.
    pub const NAMES: &'static [&'static str] = &[
        "critical", "error", "warn", "info", "debug", "trace", "blather",
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Critical => "critical",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
            LogLevel::Blather => "blather",
        }
    }

    /// A level by its name, in any case.
    pub fn from_name(name: &str) -> Option<LogLevel> {
        let level = match name.to_ascii_lowercase().as_str() {
            "critical" => LogLevel::Critical,
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            "blather" => LogLevel::Blather,
            _ => return None,
        };
        Some(level)
    }

    /// Whether a log at this level writes a line of level `line`.
    pub fn writes(self, line: LogLevel) -> bool {
        line >= self
    }
}

/// The name supervisord gives an AUTO log file, `NAME-stdout---IDENTIFIER-XXXXXXXX.log`, in
/// `dir`. supervisord's eight characters are random (mkstemp); taskmaster's are a digest of the
/// control socket's path and the name, so that they stay the same across reloads and
/// restarts, for the backup of a pair, and in a converted file, while two taskmasters (which
/// cannot share a socket) never share a file.
pub fn auto_log_path(
    dir: &Path,
    process: &str,
    stream: Stream,
    identifier: &str,
    socket: &Path,
) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    // FNV-1a, 64 bits: stable across Rust releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts: [&[u8]; 3] = [
        socket.as_os_str().as_bytes(),
        process.as_bytes(),
        stream.name().as_bytes(),
    ];
    for part in parts {
        for &byte in part.iter().chain(&[0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // mkstemp's alphabet, as Python's tempfile uses it.
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let suffix: String = (0..8)
        .map(|i| {
            let index = (hash >> (i * 7)) % ALPHABET.len() as u64;
            char::from(ALPHABET[index as usize])
        })
        .collect();
    dir.join(format!(
        "{process}-{}---{identifier}-{suffix}.log",
        stream.name()
    ))
}

/// The folder AUTO log files go to when `childlogdir` is not given: Python's
/// `tempfile.gettempdir()` as supervisord calls it, from `env` (the first of `TMPDIR`, `TEMP`
/// and `TMP` that is set), else `/tmp`.
pub(crate) fn default_childlogdir(env: &std::collections::BTreeMap<String, String>) -> PathBuf {
    ["TMPDIR", "TEMP", "TMP"]
        .iter()
        .filter_map(|name| env.get(*name))
        .find(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// An `identifier`: it is part of file names (AUTO logs), so no `/`, NUL or line break.
pub(crate) fn check_identifier(text: &str) -> Result<(), String> {
    if text.contains(['/', '\0', '\n', '\r']) {
        return Err(format!(
            "{}: an identifier is part of AUTO log files' names, so it holds no \"/\", NUL or \
             line break",
            crate::values::quote(text)
        ));
    }
    Ok(())
}

/// `loglevel`'s value.
pub(crate) fn parse_loglevel(text: &str) -> Result<LogLevel, String> {
    LogLevel::from_name(text).ok_or_else(|| {
        format!(
            "expected one of {}, found {}{}",
            LogLevel::NAMES.join(", "),
            crate::values::quote(text),
            crate::values::hint(&text.to_lowercase(), LogLevel::NAMES)
        )
    })
}

/// `minfds` or `minprocs`: a count of at most 2^32 - 1.
pub(crate) fn parse_limit(text: &str) -> Result<u64, String> {
    crate::values::parse_integer(text, 0, u32::MAX).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_names_are_supervisords_with_a_stable_suffix() {
        let socket = Path::new("/run/tm.sock");
        let path = auto_log_path(
            Path::new("/tmp"),
            "web",
            Stream::Stdout,
            "supervisor",
            socket,
        );
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(name.starts_with("web-stdout---supervisor-"), "{name}");
        assert!(name.ends_with(".log") && name.len() == "web-stdout---supervisor-".len() + 12);
        assert_eq!(
            path,
            auto_log_path(
                Path::new("/tmp"),
                "web",
                Stream::Stdout,
                "supervisor",
                socket
            )
        );
        let other = auto_log_path(
            Path::new("/tmp"),
            "web",
            Stream::Stdout,
            "supervisor",
            Path::new("/run/other.sock"),
        );
        assert_ne!(path, other);
        let stderr = auto_log_path(
            Path::new("/tmp"),
            "web",
            Stream::Stderr,
            "supervisor",
            socket,
        );
        assert_ne!(path.with_extension(""), stderr.with_extension(""));
    }

    #[test]
    fn levels_order_as_supervisords() {
        assert!(LogLevel::Warn.writes(LogLevel::Error));
        assert!(!LogLevel::Warn.writes(LogLevel::Info));
        assert!(LogLevel::Debug.writes(LogLevel::Info));
        assert!(!LogLevel::Info.writes(LogLevel::Debug));
        assert_eq!(LogLevel::from_name("WARN"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::from_name("warning"), None);
    }

    #[test]
    fn the_default_childlogdir_is_pythons_gettempdir() {
        let mut env = std::collections::BTreeMap::new();
        assert_eq!(default_childlogdir(&env), PathBuf::from("/tmp"));
        env.insert("TMP".to_string(), "/var/tmp".to_string());
        env.insert("TMPDIR".to_string(), "/scratch".to_string());
        assert_eq!(default_childlogdir(&env), PathBuf::from("/scratch"));
    }
}
