//! supervisord's INI configuration, read into the same validated [`Config`] as the YAML.
//!
//! Theory of operation: the same two layers as the YAML. [`raw`] reads the text the way
//! supervisord's Python `RawConfigParser` does (comments, continuation lines, sections and
//! options with their positions) and interprets nothing. This module then reads the
//! `[include]` files, expands each value as supervisord does (`%(program_name)s`,
//! `%(process_num)02d`, `%(here)s`, `%(ENV_X)s`, `%(host_node_name)s`, `%%`), and translates
//! every option into the [`ProgramSpec`](crate::ProgramSpec) field it means, with the value parsers the YAML uses.
//! Every error is collected with its file, line and column, and a key such as
//! `program:web.stopsignal`; errors come grouped by file (the main file, then the included
//! ones in the order they were read), in file order within each.
//!
//! The rule, decided once: **every file supervisord accepts, taskmaster accepts with the same
//! meaning; an option that changes what a program does and that taskmaster cannot honour is an
//! error naming it, never silently ignored** (`user`, `stopasgroup = false`,
//! `stdout_events_enabled = true`, `*_capture_maxbytes`...). What supervisord itself ignores
//! or reads leniently is a **warning** with its place ([`IniConfig::warnings`]), printed by
//! `check` and written to the event log at start and at reload: an option it does not know
//! (typos, plugins' own keys such as `dependent_startup`), a section or option given twice in
//! one file (merged; the last value wins), an `[include]` pattern that matches nothing,
//! `stderr_logfile` or `stderr_syslog` beside `redirect_stderr = true`, an AUTO log without
//! rotation, `nodaemon = false` (taskmaster stays in the foreground), `strip_ansi = true`
//! (not applied). An option is accepted without a word where taskmaster, without it, already
//! does what supervisord does with it: `stopasgroup = true` (taskmaster always signals the
//! whole process group), `stdout_logfile_maxbytes = 0` (no rotation), `serverurl = AUTO`,
//! `nodaemon = true`, `silent`... The `[program:x]` decisions are tabled in `program.rs`; the
//! `[supervisord]` ones are in `sections.rs`.
//!
//! Sections: `[program:x]`, `[supervisord]`, `[include]`, `[unix_http_server]`,
//! `[inet_http_server]` and `[supervisorctl]` are read; `[rpcinterface:supervisor]` is
//! accepted with supervisord's own factory only (every supervisord.conf has it); `[group:x]`
//! (a heterogeneous group: taskmaster's groups are one program's processes),
//! `[eventlistener:x]`, `[fcgi-program:x]`, `[ctlplugin:x]`, other `[rpcinterface:x]` and
//! `[DEFAULT]` are errors naming what is missing, and any other section an error with a
//! suggestion.
//!
//! Where supervisord's default differs from taskmaster's, supervisord's applies; for every
//! program option they agree (`startsecs` 1, `startretries` 3, `stopwaitsecs` 10,
//! `autorestart` unexpected, `exitcodes` 0, `stopsignal` TERM, `autostart` true) except one:
//! an unset `stdout_logfile`/`stderr_logfile` is `AUTO` for supervisord, a file in
//! `childlogdir` (the system's temporary folder by default) named
//! `NAME-stdout---IDENTIFIER-XXXXXXXX.log`; so it is here, the file removed when taskmaster
//! exits (unless `nocleanup`). The event log defaults to `supervisord.log` beside the main
//! file (supervisord's name; taskmaster resolves relative paths against the folder of the
//! file that holds them, never against the current directory).
//!
//! Differences from supervisord worth knowing, errors where supervisord is silent: unknown
//! sections; a section given in two files (supervisord merges); `[include]` in an included
//! file (supervisord ignores it); an included file that cannot be read (supervisord skips
//! it). `[supervisord]` is optional: a file of `[program:x]` sections alone is a
//! configuration.
//!
//! Besides the [`Config`], [`IniConfig`] hands back what supervisord files say and the
//! [`Config`] does not hold: each program's `priority` as written, the `[unix_http_server]`,
//! `[inet_http_server]` and `[supervisorctl]` sections as written, and the warnings.

mod environment;
mod include;
mod program;
pub mod raw;
mod sections;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{did_you_mean, ConfigError, ConfigErrors};
use crate::expand::{expand, Value};
use crate::values::{check_env_name, check_env_value, check_path, quote};
use crate::{Accounts, Config};
use raw::{Opt, Section};

pub use crate::expand::Host;

/// A supervisord file read: the [`Config`], and what the `Config` cannot hold yet.
#[derive(Debug, Clone, PartialEq)]
pub struct IniConfig {
    pub config: Config,
    /// Every program's `priority` (supervisord's default 999 where not given): lower starts
    /// first and stops last.
    pub priorities: BTreeMap<String, i32>,
    pub unix_http_server: Option<UnixHttpServer>,
    pub inet_http_server: Option<InetHttpServer>,
    pub supervisorctl: Option<Supervisorctl>,
    /// What the file says that taskmaster accepts without doing it as written, each at its
    /// place, in the order of the errors (see [`crate::ConfigWarning`]).
    pub warnings: Vec<crate::ConfigWarning>,
}

/// `username` and `password`, which supervisord requires together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub username: String,
    /// As written: clear text, or `{SHA}` followed by a hex SHA-1 digest.
    pub password: String,
}

/// `[unix_http_server]`: the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixHttpServer {
    /// `file`, resolved against the folder of the file that names it.
    pub file: PathBuf,
    /// `chmod`, default 0o700.
    pub chmod: u32,
    /// `chown`, not looked up (reading the user database is the runtime's business).
    pub chown: Option<Owner>,
    pub credentials: Option<Credentials>,
}

pub use crate::daemon::Owner;

/// `[inet_http_server]`: a TCP control port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetHttpServer {
    /// The address to listen on, lower-cased; `None` for every interface (`:9001`, `*:9001`).
    pub host: Option<String>,
    pub port: u16,
    pub credentials: Option<Credentials>,
}

/// `[supervisorctl]`: how the control client reaches the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supervisorctl {
    /// `unix:///absolute/path` (a relative path is resolved against the file's folder and
    /// made absolute, as supervisorctl does), or another URL as written.
    pub serverurl: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub prompt: Option<String>,
    pub history_file: Option<PathBuf>,
}

/// Reads the file at `path` and the files it includes.
pub fn load(path: &Path, host: &Host) -> Result<IniConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::single(ConfigError::file_level(path, cannot_read(&e))))?;
    parse(&text, path, host)
}

/// Reads `text` as if read from `path`; `[include]` files are read from the filesystem,
/// relative to `path`'s folder. `user` is looked up in the system's databases.
pub fn parse(text: &str, path: &Path, host: &Host) -> Result<IniConfig, ConfigErrors> {
    parse_with(text, path, host, &Accounts::system())
}

/// [`parse`] with `user` looked up in `accounts`.
pub fn parse_with(
    text: &str,
    path: &Path,
    host: &Host,
    accounts: &Accounts,
) -> Result<IniConfig, ConfigErrors> {
    let mut t = Translator {
        host,
        accounts,
        sources: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        global_env: BTreeMap::new(),
        daemon_user: None,
        program_users: Vec::new(),
        daemon: crate::DaemonSettings::default(),
        auto_streams: Vec::new(),
        group_of: BTreeMap::new(),
        dependency_places: BTreeMap::new(),
    };
    let (sections, raw_errors) = raw::parse(text);
    t.add_source(path, raw_errors);
    let mut files = vec![(0, sections)];
    let included = t.includes(&files[0].1);
    files.extend(included);
    let mut result = t.translate(&files);
    if t.errors.is_empty() {
        t.warnings.sort_by_key(|(src, e)| (*src, e.line, e.column));
        result.warnings = t.warnings.into_iter().map(|(_, e)| e).collect();
        return Ok(result);
    }
    t.errors.sort_by_key(|(src, e)| (*src, e.line, e.column));
    Err(ConfigErrors(t.errors.into_iter().map(|(_, e)| e).collect()))
}

fn cannot_read(e: &std::io::Error) -> String {
    format!("cannot read: {}", crate::os_reason(e))
}

/// A file read: the main one (index 0) or an included one.
struct Source {
    path: PathBuf,
    /// Relative paths written in this file are resolved against this folder.
    dir: PathBuf,
    /// `%(here)s`: the same folder, absolute.
    here: String,
}

// ---- what `%(name)s` may refer to -----------------------------------------------------------

/// The names available to one value.
#[derive(Clone)]
struct Names<'a> {
    here: &'a str,
    host: Option<&'a str>,
    /// Environment layers, searched last first: taskmaster's, then `[supervisord]
    /// environment`, then the program's own `environment` (per-process options only).
    env: Vec<&'a BTreeMap<String, String>>,
    /// `program_name` and `group_name`, in a `[program:x]` section.
    program: Option<&'a str>,
    /// `group_name` when the program is in a `[group:x]`.
    group: Option<&'a str>,
    /// `process_num` and `numprocs`, in an option supervisord expands per process.
    process: Option<(i64, i64)>,
    /// The option being expanded, for messages.
    option: &'a str,
}

impl<'a> Names<'a> {
    fn lookup(&self, name: &str) -> Result<Value<'a>, String> {
        match name {
            "here" => Ok(Value::Text(Cow::Borrowed(self.here))),
            "host_node_name" => self
                .host
                .map(|host| Value::Text(Cow::Borrowed(host)))
                .ok_or_else(|| {
                    "the host name for %(host_node_name)s is unknown (cannot read \
                     /proc/sys/kernel/hostname)"
                        .to_string()
                }),
            "program_name" | "group_name" => match self.program {
                Some(program) if name == "group_name" => {
                    Ok(Value::Text(Cow::Borrowed(self.group.unwrap_or(program))))
                }
                Some(program) => Ok(Value::Text(Cow::Borrowed(program))),
                None => Err(format!(
                    "%({name})s is only available in [program:x] sections"
                )),
            },
            "process_num" | "numprocs" => match (self.process, self.program) {
                (Some((num, _)), _) if name == "process_num" => Ok(Value::Number(num)),
                (Some((_, count)), _) => Ok(Value::Number(count)),
                (None, Some(_)) => Err(format!(
                    "%({name})d is not available in {}: supervisord expands it only in \
                     command, process_name, environment, directory and the stdout_* and \
                     stderr_* log options",
                    self.option
                )),
                (None, None) => Err(format!(
                    "%({name})d is only available in [program:x] sections"
                )),
            },
            _ => {
                if let Some(variable) = name.strip_prefix("ENV_") {
                    return self
                        .env
                        .iter()
                        .rev()
                        .find_map(|layer| layer.get(variable))
                        .map(|value| Value::Text(Cow::Borrowed(value.as_str())))
                        .ok_or_else(|| {
                            format!("environment variable {variable} is not set (for %({name})s)")
                        });
                }
                let mut available = vec!["here", "host_node_name", "ENV_<variable>"];
                if self.program.is_some() {
                    available.extend(["program_name", "group_name"]);
                }
                if self.process.is_some() {
                    available.extend(["process_num", "numprocs"]);
                }
                Err(format!(
                    "unknown name %({name}) (available: {})",
                    available.join(", ")
                ))
            }
        }
    }
}

/// What a section's values may refer to, owned so that it can be lent to [`Names`] while the
/// translator records errors.
struct Scope {
    here: String,
    global_env: BTreeMap<String, String>,
}

impl Scope {
    /// The names of a section that is not a program: `here`, `host_node_name` and `ENV_X`.
    fn names<'a>(&'a self, host: &'a Host) -> Names<'a> {
        Names {
            here: &self.here,
            host: host.node_name.as_deref(),
            env: vec![&host.env, &self.global_env],
            program: None,
            group: None,
            process: None,
            option: "",
        }
    }
}

// ---- the translation ------------------------------------------------------------------------

struct Translator<'h> {
    host: &'h Host,
    /// Where `user` values are looked up.
    accounts: &'h Accounts,
    sources: Vec<Source>,
    /// Each error with the index of its source, for sorting.
    errors: Vec<(usize, ConfigError)>,
    /// Each warning with the index of its source.
    warnings: Vec<(usize, ConfigError)>,
    /// `[supervisord] environment`: every program's base environment, and `%(ENV_X)s`.
    global_env: BTreeMap<String, String>,
    /// `[supervisord] user`, when it names an account.
    daemon_user: Option<PlacedUser>,
    /// Each program's `user`: checked against taskmaster's own once every section is read.
    program_users: Vec<PlacedUser>,
    /// The rest of `[supervisord]`: the daemon's settings (`childlogdir` and `identifier` name
    /// the AUTO log files).
    daemon: crate::DaemonSettings,
    /// The streams whose log file is AUTO, named once the whole file is read.
    auto_streams: Vec<AutoStream>,
    /// The `[group:x]` each program is in, by program name: `%(group_name)s`.
    group_of: BTreeMap<String, String>,
    /// Where each program's `dependent_startup_wait_for` is written: the graph is checked
    /// once every section is read.
    dependency_places: BTreeMap<String, crate::program::Place>,
}

/// A `user` value looked up, and where its value was written, for the errors that need
/// every section read first.
struct PlacedUser {
    user: crate::User,
    place: crate::program::Place,
}

impl PlacedUser {
    /// `user`, written as the value of the option `at` in `file`.
    fn new(user: crate::User, at: &At, file: &Path) -> PlacedUser {
        let (line, column) = at.opt.value_position();
        PlacedUser {
            user,
            place: crate::program::Place {
                src: at.src,
                file: file.to_path_buf(),
                line,
                column,
                key: at.key.clone(),
            },
        }
    }
}

/// A program's stream whose log file is AUTO (supervisord's default): its name is known once
/// `childlogdir`, `identifier` and the socket are.
struct AutoStream {
    program: String,
    stream: crate::Stream,
    /// `redirect_stderr`: stderr goes to the same file.
    with_stderr: bool,
    /// Where the section is, for the warning about a file that never rotates.
    src: usize,
    position: (usize, usize),
    section: String,
}

/// An option and what errors about it need: its source and dotted key.
struct At<'a> {
    src: usize,
    opt: &'a Opt,
    key: String,
}

impl<'a> At<'a> {
    fn new(src: usize, section: &Section, opt: &'a Opt) -> At<'a> {
        At {
            src,
            opt,
            key: format!("{}.{}", section.name, opt.name),
        }
    }
}

impl Translator<'_> {
    fn add_source(&mut self, path: &Path, raw_errors: Vec<raw::RawError>) -> usize {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let here = absolute(&dir).to_string_lossy().into_owned();
        self.sources.push(Source {
            path: path.to_path_buf(),
            dir,
            here,
        });
        let src = self.sources.len() - 1;
        for e in raw_errors {
            if e.warning {
                self.warning(src, (e.line, e.column), &e.section, e.message);
            } else {
                self.error(src, (e.line, e.column), &e.section, e.message);
            }
        }
        src
    }

    fn scope(&self, src: usize) -> Scope {
        Scope {
            here: self.sources[src].here.clone(),
            global_env: self.global_env.clone(),
        }
    }

    fn error(&mut self, src: usize, place: (usize, usize), key: &str, message: String) {
        let error = self.placed(src, place, key, message);
        self.errors.push((src, error));
    }

    /// Records a warning: the file is read as supervisord reads it, but this may not be what
    /// its author meant.
    fn warning(&mut self, src: usize, place: (usize, usize), key: &str, message: String) {
        let warning = self.placed(src, place, key, message);
        self.warnings.push((src, warning));
    }

    /// `message` about `key`, at `place` in source `src`.
    fn placed(
        &self,
        src: usize,
        (line, column): (usize, usize),
        key: &str,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.sources[src].path.clone(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    fn warning_at_name(&mut self, at: &At, message: String) {
        self.warning(at.src, (at.opt.line, at.opt.column), &at.key, message);
    }

    fn at_section(&mut self, src: usize, section: &Section, message: String) {
        let position = (section.line, section.column);
        self.error(src, position, &section.name, message);
    }

    fn at_name(&mut self, at: &At, message: String) {
        self.error(at.src, (at.opt.line, at.opt.column), &at.key, message);
    }

    fn at_value(&mut self, at: &At, message: String) {
        self.error(at.src, at.opt.value_position(), &at.key, message);
    }

    fn warning_at_value(&mut self, at: &At, message: String) {
        self.warning(at.src, at.opt.value_position(), &at.key, message);
    }

    /// Records a value parser's error at the value.
    fn check<T>(&mut self, at: &At, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.at_value(at, message);
                None
            }
        }
    }

    /// The option's value with its expansions done; an error is recorded at its `%`.
    fn expanded(&mut self, at: &At, names: &Names) -> Option<String> {
        let lookup = |name: &str| names.lookup(name);
        match expand(&at.opt.value, &lookup) {
            Ok(text) => Some(text),
            Err(e) => {
                self.error(at.src, at.opt.position(e.offset), &at.key, e.message);
                None
            }
        }
    }

    /// A log or socket path: `~` expanded as supervisord does for those, then resolved
    /// against the folder of the file that holds it.
    fn log_path(&mut self, src: usize, at: &At, text: &str) -> Option<PathBuf> {
        let text = self.check(at, expand_user(text, self.host))?;
        self.check(at, check_path(&text))?;
        Some(self.sources[src].dir.join(text))
    }

    /// The section's options by name; unknown ones are warnings, with a suggestion: supervisord
    /// ignores an option it does not know (a plugin's own, such as supervisord-dependent-
    /// startup's `dependent_startup`), and configurations carry them.
    fn options<'s>(
        &mut self,
        src: usize,
        section: &'s Section,
        known: &[&str],
    ) -> BTreeMap<&'s str, &'s Opt> {
        let mut map = BTreeMap::new();
        for opt in &section.options {
            if known.contains(&opt.name.as_str()) {
                map.insert(opt.name.as_str(), opt);
                continue;
            }
            let close = crate::program::supervisord_name(&opt.name)
                .filter(|ini| known.contains(ini))
                .or_else(|| did_you_mean(&opt.name, known));
            let message = match close {
                Some(close) => format!(
                    "unknown option {:?}, ignored as supervisord ignores it (did you mean \
                     {close:?}?)",
                    opt.name
                ),
                None => format!(
                    "unknown option {:?}, ignored as supervisord ignores it (the options of \
                     [{}] are {})",
                    opt.name,
                    section_kind(&section.name),
                    known.join(", ")
                ),
            };
            self.warning(src, (opt.line, opt.column), &section.name, message);
        }
        map
    }

    /// `KEY="val",KEY2=val2` (expanded), every name and value checked.
    fn environment(&mut self, at: &At, text: &str) -> Option<BTreeMap<String, String>> {
        let pairs = match environment::parse(text) {
            Ok(pairs) => pairs,
            Err((offset, message)) => {
                // The offset is in the expanded text; it is the value's own when nothing
                // before it was expanded.
                let position = if at.opt.value.get(..offset) == text.get(..offset) {
                    at.opt.position(offset)
                } else {
                    at.opt.value_position()
                };
                self.error(at.src, position, &at.key, message);
                return None;
            }
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (name, value, _) in pairs {
            let checked = check_env_name(&name).and_then(|()| check_env_value(&value));
            if self.check(at, checked).is_none() {
                ok = false;
            }
            env.insert(name, value);
        }
        ok.then_some(env)
    }

    /// Reads the files `[include] files` names. Only the main file may include.
    fn includes(&mut self, sections: &[Section]) -> Vec<(usize, Vec<Section>)> {
        let mut files = Vec::new();
        let Some(section) = sections.iter().find(|s| s.name == "include") else {
            return files;
        };
        let options = self.options(0, section, &["files"]);
        let Some(opt) = options.get("files") else {
            self.at_section(0, section, "missing required option \"files\"".to_string());
            return files;
        };
        let at = At::new(0, section, opt);
        let scope = Scope {
            here: self.sources[0].here.clone(),
            // [supervisord] environment is not read yet, as in supervisord.
            global_env: BTreeMap::new(),
        };
        let Some(patterns) = self.expanded(&at, &scope.names(self.host)) else {
            return files;
        };
        let dir = self.sources[0].dir.clone();
        let mut seen = vec![identity(&self.sources[0].path)];
        for pattern in patterns.split(raw::is_space).filter(|p| !p.is_empty()) {
            let literal = !include::has_magic(pattern);
            let matched = include::glob(&dir.join(pattern));
            let exists = |path: &PathBuf| std::fs::symlink_metadata(path).is_ok();
            if !matched.iter().any(exists) {
                // supervisord only says so in its log.
                let message = format!(
                    "no file matches {}, as supervisord warns too; nothing is included for it",
                    quote(&dir.join(pattern).to_string_lossy())
                );
                self.warning_at_value(&at, message);
                continue;
            }
            for path in matched {
                let metadata = std::fs::metadata(&path);
                if literal {
                    let problem = match &metadata {
                        Err(e) => Some(cannot_read(e)),
                        Ok(m) if !m.is_file() => Some("not a regular file".to_string()),
                        Ok(_) => None,
                    };
                    if let Some(problem) = problem {
                        let message = format!("included file {}: {problem}", path.display());
                        self.at_value(&at, message);
                        continue;
                    }
                } else if !metadata.is_ok_and(|m| m.is_file()) {
                    // A wildcard also matches folders and the like; supervisord skips them.
                    continue;
                }
                let id = identity(&path);
                if seen.contains(&id) {
                    // Read already; supervisord reads it again, to the same effect.
                    continue;
                }
                seen.push(id);
                match read_included(&path) {
                    Ok(text) => {
                        let (sections, raw_errors) = raw::parse(&text);
                        let src = self.add_source(&path, raw_errors);
                        files.push((src, sections));
                    }
                    Err(message) => {
                        let src = self.add_source(&path, Vec::new());
                        self.errors
                            .push((src, ConfigError::file_level(&path, message)));
                    }
                }
            }
        }
        files
    }

    fn translate(&mut self, files: &[(usize, Vec<Section>)]) -> IniConfig {
        // Each section once, in file order. A name given again in the same file is reported
        // by the raw layer; in another file, here.
        let mut sections: Vec<(usize, &Section)> = Vec::new();
        for (src, list) in files {
            for section in list.iter().filter(|s| !s.name.is_empty()) {
                if section.name == "include" && *src != 0 {
                    self.at_section(
                        *src,
                        section,
                        "an included file cannot include others: supervisord reads [include] \
                         only in the main file"
                            .to_string(),
                    );
                    continue;
                }
                match sections.iter().find(|(_, s)| s.name == section.name) {
                    Some(&(first_src, first)) if first_src != *src => {
                        let message = format!(
                            "duplicate section [{}] (first in {} at line {}, column {})",
                            section.name,
                            self.sources[first_src].path.display(),
                            first.line,
                            first.column
                        );
                        self.error(*src, (section.line, section.column), "", message);
                    }
                    Some(_) => {}
                    None => sections.push((*src, section)),
                }
            }
        }
        // Which group each program is in, for its %(group_name)s: [group:x] may come after.
        for (_, section) in &sections {
            let Some(group) = section.name.strip_prefix("group:") else {
                continue;
            };
            let programs = section.options.iter().filter(|o| o.name == "programs");
            for program in programs.flat_map(|o| o.value.split(',')) {
                self.group_of
                    .insert(program.trim().to_string(), raw::strip(group).to_string());
            }
        }
        // [supervisord] first: its environment is every program's.
        let (logfile, log_rotation) = match sections.iter().find(|(_, s)| s.name == "supervisord") {
            Some(&(src, section)) => self.supervisord(src, section),
            None => (None, crate::Rotation::default()),
        };
        let mut result = IniConfig {
            config: Config {
                path: self.sources[0].path.clone(),
                logfile: logfile.unwrap_or_else(|| self.sources[0].dir.join("supervisord.log")),
                log_rotation,
                socket: self.sources[0].dir.join("taskmaster.sock"),
                http: None,
                pair: crate::PairSettings::default(),
                syslog_socket: PathBuf::from(crate::DEFAULT_SYSLOG_SOCKET),
                daemon: Box::new(self.daemon.clone()),
                programs: BTreeMap::new(),
                groups: BTreeMap::new(),
                user: None,
            },
            priorities: BTreeMap::new(),
            unix_http_server: None,
            inet_http_server: None,
            supervisorctl: None,
            warnings: Vec::new(),
        };
        let mut headers = Vec::new();
        let mut group_sections = Vec::new();
        for &(src, section) in &sections {
            let name = section.name.as_str();
            let (kind, rest) = match name.split_once(':') {
                Some((kind, rest)) => (kind, Some(rest)),
                None => (name, None),
            };
            match (kind, rest) {
                ("supervisord", None) | ("include", None) => {}
                ("program" | "fcgi-program" | "eventlistener", Some(program)) => {
                    let program = raw::strip(program);
                    if result.config.programs.contains_key(program) {
                        let message = format!(
                            "a program named {program:?} is already defined ([program:x], \
                             [fcgi-program:x] and [eventlistener:x] share their names)"
                        );
                        self.at_section(src, section, message);
                        continue;
                    }
                    if kind == "eventlistener" && runs_dependent_startup(section) {
                        let message = "taskmaster starts programs in dependency order itself \
                                       (dependent_startup, dependent_startup_wait_for): this \
                                       listener, supervisord-dependent-startup, is not run"
                            .to_string();
                        self.warning(src, (section.line, section.column), &section.name, message);
                        continue;
                    }
                    let kind = match kind {
                        "fcgi-program" => program::Kind::Fcgi,
                        "eventlistener" => program::Kind::Listener,
                        _ => program::Kind::Program,
                    };
                    if let Some((spec, priority)) = self.program(src, section, program, kind) {
                        headers.push((src, section, program));
                        result.priorities.insert(program.to_string(), priority);
                        result.config.programs.insert(program.to_string(), spec);
                    }
                }
                ("unix_http_server", None) => {
                    result.unix_http_server = self.unix_http_server(src, section);
                    if let Some(server) = &result.unix_http_server {
                        result.config.socket = server.file.clone();
                        // Without chmod, taskmaster's 0600 (supervisord's 0700 means the
                        // same for a socket).
                        let chmod_given = section.options.iter().any(|o| o.name == "chmod");
                        result.config.daemon.socket_access = crate::SocketAccess {
                            mode: if chmod_given {
                                server.chmod
                            } else {
                                crate::DEFAULT_SOCKET_MODE
                            },
                            owner: server.chown.clone(),
                            credentials: server.credentials.clone(),
                        };
                    }
                }
                ("inet_http_server", None) => {
                    result.inet_http_server = self.inet_http_server(src, section);
                    if let Some(server) = &result.inet_http_server {
                        match inet_listener(server) {
                            Ok(listener) => {
                                if listener.credentials.is_none()
                                    && !listener.listen.ip().is_loopback()
                                {
                                    let message = format!(
                                        "{} can be reached from other machines without a \
                                         password: anyone who reaches it controls every program \
                                         (supervisord accepts it too, and warns); give a username \
                                         and a password, or listen on 127.0.0.1",
                                        listener.listen
                                    );
                                    let place = (section.line, section.column);
                                    self.warning(src, place, &section.name, message);
                                }
                                result.config.http = Some(listener);
                            }
                            Err(message) => self.at_section(src, section, message),
                        }
                    }
                }
                ("supervisorctl", None) => {
                    result.supervisorctl = Some(self.supervisorctl(src, section));
                }
                ("rpcinterface", Some(_)) => self.rpcinterface(src, section),
                ("group", Some(group)) => {
                    let group = raw::strip(group);
                    if let Some(spec) = self.group(src, section) {
                        group_sections.push((src, section, group));
                        result.config.groups.insert(group.to_string(), spec);
                    }
                }
                ("ctlplugin", Some(_)) => self.at_section(
                    src,
                    section,
                    "supervisorctl plugins are not supported".to_string(),
                ),
                ("DEFAULT", None) => self.at_section(
                    src,
                    section,
                    "[DEFAULT] (options shared by every section) is not supported: write each \
                     option in its section"
                        .to_string(),
                ),
                _ => {
                    let message = unknown_section(name);
                    self.error(src, (section.line, section.column), "", message);
                }
            }
        }
        let groups = result.config.groups.clone();
        for (group, message) in crate::instances::join_groups(&mut result.config.programs, &groups)
        {
            if let Some(&(src, section, _)) = group_sections.iter().find(|(_, _, g)| *g == group) {
                self.at_section(src, section, message);
            }
        }
        for (name, message) in crate::instances::clashes(&result.config.programs) {
            if let Some(&(src, section, _)) = headers.iter().find(|(_, _, n)| *n == name) {
                self.at_section(src, section, message);
            }
        }
        self.name_auto_logs(&mut result.config);
        let names = headers.iter().map(|&(_, _, name)| name);
        for (name, message) in crate::instances::rotation_conflicts(names, &result.config.programs)
        {
            if let Some(&(src, section, _)) = headers.iter().find(|(_, _, n)| *n == name) {
                self.at_section(src, section, message);
            }
        }
        let graph = crate::dependencies::check(&result.config.programs, &self.dependency_places);
        for (place, error) in graph {
            self.errors.push((place.src, error));
        }
        result.config.user = self.check_users();
        result
    }

    /// Checks every `user` against who taskmaster runs as, once `[supervisord] user` is
    /// known; returns taskmaster's own.
    fn check_users(&mut self) -> Option<Box<crate::User>> {
        let accounts = self.accounts;
        let mut refusals = Vec::new();
        let daemon = self.daemon_user.as_ref().and_then(|placed| {
            let refusal = accounts.daemon_refusal(&placed.user);
            let refused = refusal.is_some();
            if let Some(message) = refusal {
                refusals.push((placed.place.src, placed.place.say(message)));
            }
            (!refused).then_some(&placed.user)
        });
        for placed in &self.program_users {
            if let Some(message) = accounts.program_refusal(daemon, &placed.user) {
                refusals.push((placed.place.src, placed.place.say(message)));
            }
        }
        self.errors.extend(refusals);
        self.daemon_user
            .as_ref()
            .map(|placed| Box::new(placed.user.clone()))
    }
}

impl Translator<'_> {
    /// Names the AUTO log files, now that `childlogdir`, `identifier` and the socket are known,
    /// as supervisord names them (`web-stdout---supervisor-XXXXXXXX.log` in `childlogdir`).
    fn name_auto_logs(&mut self, config: &mut Config) {
        let dir = config
            .daemon
            .childlogdir
            .clone()
            .unwrap_or_else(|| crate::daemon::default_childlogdir(&self.host.env));
        for auto in std::mem::take(&mut self.auto_streams) {
            let Some(spec) = config.programs.get_mut(&auto.program) else {
                continue;
            };
            let identifier = &config.daemon.identifier;
            let socket = &config.socket;
            let path_for = |process: &str| {
                crate::auto_log_path(&dir, process, auto.stream, identifier, socket)
            };
            let files =
                crate::instances::set_auto_log(spec, auto.stream, auto.with_stderr, path_for);
            let rotation = match auto.stream {
                crate::Stream::Stdout => spec.stdout_rotation,
                crate::Stream::Stderr => spec.stderr_rotation,
            };
            if rotation.maxbytes == 0 {
                let name = auto.stream.name();
                let message = format!(
                    "{name}_logfile is AUTO (supervisord's default) and {name}_logfile_maxbytes \
                     is 0: the file in {} grows without end while taskmaster runs, as \
                     supervisord warns too; set maxbytes > 0",
                    dir.display()
                );
                self.warning(auto.src, auto.position, &auto.section, message);
            }
            config.daemon.auto_logs.extend(files);
            config.daemon.childlogdir = Some(dir.clone());
        }
    }
}

/// `program:web` as `program:x`, for messages about a kind of section.
fn section_kind(name: &str) -> String {
    match name.split_once(':') {
        Some((kind, _)) => format!("{kind}:x"),
        None => name.to_string(),
    }
}

/// `path` made absolute against the current directory and normalized without touching the
/// filesystem (`.` dropped, `..` removing the previous component), as Python's
/// `os.path.abspath`, which gives supervisord's `%(here)s`.
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// `~` or `~/...` at the start of a log or socket path replaced by `$HOME`, as supervisord's
/// `expanduser` does for those. `~user` is refused: it needs the user database.
fn expand_user(text: &str, host: &Host) -> Result<String, String> {
    let Some(rest) = text.strip_prefix('~') else {
        return Ok(text.to_string());
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(format!(
            "{}: ~user is not supported; write the folder in full",
            quote(text)
        ));
    }
    match host.env.get("HOME") {
        Some(home) => Ok(format!("{home}{rest}")),
        None => Err(format!(
            "{}: HOME is not set, so ~ means nothing",
            quote(text)
        )),
    }
}

/// Included files larger than this are refused: a configuration is small, and a stray
/// wildcard must not read some huge file.
const MAX_INCLUDED_SIZE: u64 = 16 << 20;

/// An included file's text, refusing files over [`MAX_INCLUDED_SIZE`].
fn read_included(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| cannot_read(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_INCLUDED_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot_read(&e))?;
    if bytes.len() as u64 > MAX_INCLUDED_SIZE {
        return Err(format!(
            "too large for a configuration (more than {} MiB)",
            MAX_INCLUDED_SIZE >> 20
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| "cannot read: stream did not contain valid UTF-8".to_string())
}

/// A path naming the same file however it is written, where that can be known.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The message for a section this reader does not know, with a suggestion when one is close.
fn unknown_section(name: &str) -> String {
    const WITH_NAME: &[&str] = &[
        "program",
        "group",
        "rpcinterface",
        "eventlistener",
        "fcgi-program",
        "ctlplugin",
    ];
    const ALONE: &[&str] = &[
        "supervisord",
        "supervisorctl",
        "unix_http_server",
        "inet_http_server",
        "include",
    ];
    let close = match name.split_once(':') {
        Some((kind, rest)) => did_you_mean(kind, WITH_NAME).map(|kind| format!("{kind}:{rest}")),
        None => did_you_mean(name, ALONE).map(str::to_string),
    };
    match close {
        Some(close) => format!("unknown section [{name}] (did you mean [{close}]?)"),
        None => format!(
            "unknown section [{name}] (taskmaster reads [program:x], [supervisord], [include], \
             [fcgi-program:x], [eventlistener:x], [group:x], [unix_http_server], \
             [inet_http_server], \
             [supervisorctl] and [rpcinterface:supervisor])"
        ),
    }
}

/// `[inet_http_server]` as taskmaster's listener: `port = :9001` (every interface) is
/// 0.0.0.0, `localhost` is 127.0.0.1; other host names must be written as addresses.
fn inet_listener(server: &InetHttpServer) -> Result<crate::HttpListener, String> {
    let ip: std::net::IpAddr = match server.host.as_deref() {
        None => std::net::Ipv4Addr::UNSPECIFIED.into(),
        Some("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
        Some(host) => host.trim_matches(['[', ']']).parse().map_err(|_| {
            format!("port: {host:?} is not an IP address; taskmaster listens on addresses, not host names")
        })?,
    };
    // supervisord's rule, not YAML's: open to other machines without a password is accepted,
    // with a warning (said by the caller).
    Ok(crate::HttpListener {
        listen: (ip, server.port).into(),
        credentials: server.credentials.clone(),
    })
}

/// Whether an `[eventlistener:x]` runs supervisord-dependent-startup, whose work taskmaster
/// does itself.
fn runs_dependent_startup(section: &Section) -> bool {
    section
        .options
        .iter()
        .any(|o| o.name == "command" && o.value.contains("supervisord_dependent_startup"))
}
