//! `[program:x]`: one supervisord program becomes one [`ProgramSpec`].
//!
//! supervisord builds a program's processes one by one, expanding some options once per
//! process (`%(process_num)d`): `command`, `process_name`, `environment`, `directory` and the
//! log options. taskmaster runs every process of a program with one spec, so those values
//! are expanded for every process and must come out the same, `process_name` excepted: it
//! must give taskmaster's names, `NAME` for one process and `NAME_00`, `NAME_01`... for more,
//! which `%(program_name)s` and `%(program_name)s_%(process_num)02d` (or anything that
//! expands to the same) do. `numprocs_start` is accepted when the names still come out so
//! (a single process whose name does not use `%(process_num)`).
//!
//! What each option becomes:
//!
//! | option | taskmaster |
//! |---|---|
//! | `command` | `cmd` (expanded, then split like the YAML's) |
//! | `process_name`, `numprocs`, `numprocs_start` | `numprocs`, names checked as above |
//! | `autostart`, `autorestart`, `exitcodes`, `startretries`, `stopsignal`, `umask` | the same |
//! | `startsecs`, `stopwaitsecs` | `starttime`, `stoptime` (taskmaster's durations: `1`, `1.5`, `500ms`) |
//! | `stdout_logfile`, `stderr_logfile` | `stdout`, `stderr`; `NONE`/`OFF` discard; `syslog` (supervisord 3's way) is `stdout: syslog`; `AUTO`, and no option at all (supervisord's default), a file in `childlogdir` named as supervisord names it |
//! | `stdout_syslog`, `stderr_syslog` | the same: `true` sends the lines to syslog too, beside the file |
//! | `redirect_stderr = true` | `stderr` is `stdout`'s file (a `stderr_logfile` path or `stderr_syslog` beside it is ignored, with a warning, as supervisord ignores them) |
//! | `environment` | `env`, over `[supervisord] environment` |
//! | `directory` | `workingdir` |
//! | `priority` | validated, handed back in [`super::IniConfig::priorities`] |
//! | `stopasgroup`, `killasgroup` | `true` accepted (taskmaster always signals the whole group); `false` refused |
//! | `*_logfile_maxbytes`, `*_logfile_backups` | `stdout_maxbytes`, `stdout_backups`...: rotation by size, as in supervisord |
//! | `*_capture_maxbytes` | `0` accepted (no capture); else refused |
//! | `*_events_enabled` | `false` accepted; `true` refused |
//! | `serverurl` | `AUTO` accepted; else refused |
//! | `user` | refused: taskmaster does not switch users |
//! | (none) | `stdin: pipe`: supervisord gives every child a stdin pipe |
//! | any other | a warning: supervisord ignores options it does not know |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{Opt, Section};
use super::{expand, values, At, Names, Translator};
use crate::validate::{
    check_path, defaults, invalid_program_name, is_valid_program_name, parse_exitcode,
    parse_integer, parse_umask, quote, split_command,
};
use crate::{parse_duration, ProgramSpec, Signal, Stream, DEFAULT_SYSLOG_SOCKET};

/// Every `[program:x]` option supervisord knows (eventlistener and fcgi ones aside).
const PROGRAM_OPTIONS: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "startsecs",
    "startretries",
    "autorestart",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "environment",
    "directory",
    "umask",
    "serverurl",
];

/// The options whose value supervisord may expand differently for each process, besides
/// `environment` (expanded first: the others see it as `%(ENV_X)s`).
const PER_PROCESS: &[&str] = &[
    "command",
    "process_name",
    "directory",
    "stdout_logfile",
    "stderr_logfile",
];

/// The log options supervisord also reads per process (with `%(process_num)d` available),
/// though only constant values are accepted here.
const LOG_OPTIONS: &[&str] = &[
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_syslog",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_syslog",
];

/// The supervisord option for a taskmaster YAML key, for "did you mean".
pub(super) fn yaml_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "cmd" => "command",
        "starttime" => "startsecs",
        "stoptime" => "stopwaitsecs",
        "workingdir" => "directory",
        "env" => "environment",
        "stdout" => "stdout_logfile",
        "stderr" => "stderr_logfile",
        _ => return None,
    })
}

/// What `stdout_logfile` or `stderr_logfile` says.
enum LogFile {
    /// A file, or `None` to discard.
    File(Option<PathBuf>),
    /// supervisord 3's `syslog`: the lines go to syslog, and to no file.
    Syslog,
    /// `AUTO`, supervisord's default: a file in `childlogdir`, named once the file is read.
    Auto,
}

/// The per-process values of one process.
#[derive(Default)]
struct ProcessValues {
    /// The expanded text of `environment` and each [`PER_PROCESS`] option given.
    texts: BTreeMap<&'static str, String>,
    /// The program's own `environment`.
    env: BTreeMap<String, String>,
}

type Options<'s> = BTreeMap<&'s str, &'s Opt>;

impl Translator<'_> {
    /// One `[program:x]`: its spec and its priority; `None` if the name is invalid.
    pub(super) fn program(
        &mut self,
        src: usize,
        section: &Section,
        name: &str,
    ) -> Option<(ProgramSpec, i32)> {
        let valid_name = is_valid_program_name(name);
        if !valid_name {
            self.at_section(src, section, invalid_program_name(name));
        }
        let options = self.options(src, section, PROGRAM_OPTIONS);
        if let Some(opt) = options.get("user") {
            let at = At::new(src, section, opt);
            let message = "taskmaster does not switch users: it runs every program as the user \
                           it runs as"
                .to_string();
            self.at_name(&at, message);
        }
        let scope = self.scope(src);
        let constant = Names {
            program: Some(name),
            ..scope.names(self.host)
        };
        let mut spec = defaults(name);
        // supervisord gives every child a pipe for stdin (`sendProcessStdin` writes to it).
        spec.stdin = crate::Stdin::Pipe;

        // numprocs first: the per-process values depend on it.
        let numprocs = self.read(src, section, &options, "numprocs", &constant, |t| {
            parse_integer(t, 1, 1000)
        });
        spec.numprocs = numprocs.unwrap_or(1);
        let start = self
            .read(src, section, &options, "numprocs_start", &constant, |t| {
                parse_integer(t, 0, u32::MAX - 1000)
            })
            .unwrap_or(0);
        let first_process = Names {
            process: Some((i64::from(start), i64::from(spec.numprocs))),
            ..constant.clone()
        };

        let priority = self
            .read(
                src,
                section,
                &options,
                "priority",
                &constant,
                values::priority,
            )
            .unwrap_or(999);
        // The expanded value of a constant option, if given.
        let read =
            |t: &mut Self, option: &str| t.read_text(src, section, &options, option, &constant);
        if let Some((at, text)) = read(self, "autostart") {
            spec.autostart = self
                .check(&at, values::boolean(&text))
                .unwrap_or(spec.autostart);
        }
        if let Some((at, text)) = read(self, "autorestart") {
            let value = self.check(&at, values::autorestart(&text));
            spec.autorestart = value.unwrap_or(spec.autorestart);
        }
        if let Some((at, text)) = read(self, "startsecs") {
            spec.starttime = self
                .check(&at, parse_duration(&text))
                .unwrap_or(spec.starttime);
        }
        if let Some((at, text)) = read(self, "startretries") {
            let value = self.check(&at, parse_integer(&text, 0, u32::MAX));
            spec.startretries = value.unwrap_or(spec.startretries);
        }
        if let Some((at, text)) = read(self, "stopsignal") {
            let value = self.check(&at, text.parse::<Signal>());
            spec.stopsignal = value.unwrap_or(spec.stopsignal);
        }
        if let Some((at, text)) = read(self, "stopwaitsecs") {
            spec.stoptime = self
                .check(&at, parse_duration(&text))
                .unwrap_or(spec.stoptime);
        }
        if let Some((at, text)) = read(self, "exitcodes") {
            if let Some(codes) = self.exitcodes(&at, &text) {
                spec.exitcodes = codes;
            }
        }
        if let Some((at, text)) = read(self, "umask") {
            spec.umask = self.check(&at, parse_umask(&text)).or(spec.umask);
        }
        for (option, what) in [("stopasgroup", "stopsignal"), ("killasgroup", "SIGKILL")] {
            if let Some((at, text)) = read(self, option) {
                if self.check(&at, values::boolean(&text)) == Some(false) {
                    let message = format!(
                        "taskmaster always sends {what} to the whole process group of the \
                         program, as supervisord does with {option} = true; remove this line or \
                         set it to true"
                    );
                    self.at_value(&at, message);
                }
            }
        }
        let redirect_stderr = match read(self, "redirect_stderr") {
            Some((at, text)) => self.check(&at, values::boolean(&text)).unwrap_or(false),
            None => false,
        };
        if let Some((at, text)) = read(self, "serverurl") {
            if !text.trim().eq_ignore_ascii_case("auto") {
                let message = "taskmaster gives programs no SUPERVISOR_SERVER_URL; remove \
                               serverurl or set it to AUTO"
                    .to_string();
                self.at_value(&at, message);
            }
        }
        for option in ["stdout_capture_maxbytes", "stderr_capture_maxbytes"] {
            if let Some((at, text)) = read(self, option) {
                if self
                    .check(&at, values::byte_size(&text))
                    .is_some_and(|n| n != 0)
                {
                    let message = format!(
                        "taskmaster has no capture mode (it sends no events); remove {option} \
                         or set it to 0"
                    );
                    self.at_value(&at, message);
                }
            }
        }
        for option in ["stdout_events_enabled", "stderr_events_enabled"] {
            if let Some((at, text)) = read(self, option) {
                if self.check(&at, values::boolean(&text)) == Some(true) {
                    let message = format!(
                        "taskmaster sends no event notifications; remove {option} or set it to \
                         false"
                    );
                    self.at_value(&at, message);
                }
            }
        }
        let mut log_texts = BTreeMap::new();
        for option in LOG_OPTIONS {
            if let Some(read) = self.read_text(src, section, &options, option, &first_process) {
                log_texts.insert(*option, read);
            }
        }
        for (option, (at, text)) in &log_texts {
            let rotation = if option.starts_with("stdout") {
                &mut spec.stdout_rotation
            } else {
                &mut spec.stderr_rotation
            };
            if option.ends_with("_maxbytes") {
                if let Some(size) = self.check(at, values::byte_size(text)) {
                    rotation.maxbytes = size;
                }
            } else if option.ends_with("_backups") {
                if let Some(backups) = self.check(at, parse_integer(text, 0, 1000)) {
                    rotation.backups = backups;
                }
            } else if self.check(at, values::boolean(text)) == Some(true) {
                let socket = Some(PathBuf::from(DEFAULT_SYSLOG_SOCKET));
                if option.starts_with("stdout") {
                    spec.stdout_syslog = socket;
                } else if redirect_stderr {
                    let message = "ignored beside redirect_stderr = true, as supervisord ignores \
                                   it: standard error goes where stdout goes"
                        .to_string();
                    self.warning_at_name(at, message);
                } else {
                    spec.stderr_syslog = socket;
                }
            }
        }

        self.per_process(
            src,
            section,
            &options,
            &constant,
            start,
            redirect_stderr,
            &mut spec,
        );
        if !options.contains_key("command") {
            self.at_section(
                src,
                section,
                "missing required option \"command\"".to_string(),
            );
        }
        valid_name.then_some((spec, priority))
    }

    /// An option's expanded value, if given.
    fn read_text<'s>(
        &mut self,
        src: usize,
        section: &'s Section,
        options: &Options<'s>,
        option: &str,
        names: &Names,
    ) -> Option<(At<'s>, String)> {
        let opt = options.get(option)?;
        let at = At::new(src, section, opt);
        let mut names = names.clone();
        names.option = option;
        let text = self.expanded(&at, &names)?;
        Some((at, text))
    }

    /// An option's value, expanded and parsed, if given and valid.
    fn read<T>(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        option: &str,
        names: &Names,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (at, text) = self.read_text(src, section, options, option, names)?;
        self.check(&at, parse(&text))
    }

    /// The per-process options, which must come out the same for every process.
    #[allow(clippy::too_many_arguments)]
    fn per_process(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        names: &Names,
        start: u32,
        redirect_stderr: bool,
        spec: &mut ProgramSpec,
    ) {
        let count = spec.numprocs;
        let first = self.process_values(src, section, options, names, start, count);
        let mut process_names = vec![first.texts.get("process_name").cloned()];
        let mut reported: Vec<&str> = Vec::new();
        for i in 1..count {
            // Only compared: the errors are the first process's, already reported.
            let kept = self.errors.len();
            let other = self.process_values(src, section, options, names, start + i, count);
            self.errors.truncate(kept);
            process_names.push(other.texts.get("process_name").cloned());
            for (option, value) in &other.texts {
                let Some(first_value) = first.texts.get(option) else {
                    continue;
                };
                if *option == "process_name" || value == first_value || reported.contains(option) {
                    continue;
                }
                reported.push(option);
                let Some(opt) = options.get(option) else {
                    continue;
                };
                let message = format!(
                    "this value differs between the processes of {} ({} for process 0, {} for \
                     process {i}); taskmaster runs every process of a program with the same \
                     settings",
                    spec.name,
                    quote(first_value),
                    quote(value),
                );
                let at = At::new(src, section, opt);
                self.at_name(&at, message);
            }
        }

        let dir = self.sources[src].dir.clone();
        let at = |option: &str| options.get(option).map(|opt| At::new(src, section, opt));
        if let (Some(text), Some(at)) = (first.texts.get("command"), at("command")) {
            if let Some(argv) = self.check(&at, split_command(text)) {
                spec.cmd = text.clone();
                spec.argv = argv;
            }
        }
        spec.env = self.global_env.clone();
        spec.env.extend(first.env);
        if let (Some(text), Some(at)) = (first.texts.get("directory"), at("directory")) {
            if self.check(&at, check_path(text)).is_some() {
                spec.workingdir = Some(dir.join(text));
            }
        }
        let syslog = || Some(PathBuf::from(DEFAULT_SYSLOG_SOCKET));
        // Without the option, supervisord's default: AUTO.
        let stdout = match (first.texts.get("stdout_logfile"), at("stdout_logfile")) {
            (Some(text), Some(at)) => self.logfile(&at, text, &dir),
            _ => Some(LogFile::Auto),
        };
        match stdout {
            Some(LogFile::Syslog) => spec.stdout_syslog = syslog(),
            Some(LogFile::File(file)) => spec.stdout = file,
            Some(LogFile::Auto) => {
                self.auto_log(src, section, spec, Stream::Stdout, redirect_stderr)
            }
            None => {}
        }
        let stderr_text = first.texts.get("stderr_logfile");
        if !redirect_stderr {
            let stderr = match (stderr_text, at("stderr_logfile")) {
                (Some(text), Some(at)) => self.logfile(&at, text, &dir),
                _ => Some(LogFile::Auto),
            };
            match stderr {
                Some(LogFile::Syslog) => spec.stderr_syslog = syslog(),
                Some(LogFile::File(file)) => spec.stderr = file,
                Some(LogFile::Auto) => self.auto_log(src, section, spec, Stream::Stderr, false),
                None => {}
            }
        } else if let (Some(text), Some(at)) = (stderr_text, at("stderr_logfile")) {
            if !matches!(
                text.to_lowercase().as_str(),
                "none" | "off" | "auto" | "syslog"
            ) {
                let message = "ignored beside redirect_stderr = true, as supervisord ignores \
                               it: standard error goes to stdout_logfile"
                    .to_string();
                self.warning_at_name(&at, message);
            }
        }
        if redirect_stderr {
            spec.stderr = spec.stdout.clone();
            spec.stderr_rotation = spec.stdout_rotation;
            spec.stderr_syslog = spec.stdout_syslog.clone();
        }
        self.check_process_names(src, section, options, names, start, count, &process_names);
    }

    /// The per-process options' values for process `num`.
    fn process_values(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        names: &Names,
        num: u32,
        count: u32,
    ) -> ProcessValues {
        let mut values = ProcessValues::default();
        let process = Some((i64::from(num), i64::from(count)));
        // `environment` first: the other options see it as %(ENV_X)s.
        if let Some(opt) = options.get("environment") {
            let at = At::new(src, section, opt);
            let names = Names {
                process,
                option: "environment",
                ..names.clone()
            };
            if let Some(text) = self.expanded(&at, &names) {
                if let Some(env) = self.environment(&at, &text) {
                    values.env = env;
                }
                values.texts.insert("environment", text);
            }
        }
        let own = values.env.clone();
        let mut names = Names {
            process,
            ..names.clone()
        };
        names.env.push(&own);
        for &option in PER_PROCESS {
            let Some(opt) = options.get(option) else {
                continue;
            };
            let at = At::new(src, section, opt);
            names.option = option;
            if let Some(text) = self.expanded(&at, &names) {
                values.texts.insert(option, text);
            }
        }
        values
    }

    /// A stream whose log file is AUTO: named once the whole file is read.
    fn auto_log(
        &mut self,
        src: usize,
        section: &Section,
        spec: &ProgramSpec,
        stream: Stream,
        with_stderr: bool,
    ) {
        self.auto_streams.push(super::AutoStream {
            program: spec.name.clone(),
            stream,
            with_stderr,
            src,
            position: (section.line, section.column),
            section: section.name.clone(),
        });
    }

    /// `NONE`/`OFF` (discard), `syslog`, `AUTO`, or a path.
    fn logfile(&mut self, at: &At, text: &str, dir: &Path) -> Option<LogFile> {
        match text.to_lowercase().as_str() {
            "none" | "off" => Some(LogFile::File(None)),
            "auto" => Some(LogFile::Auto),
            // supervisord 4 reads it as `stdout_syslog = true` with no file.
            "syslog" => Some(LogFile::Syslog),
            _ => {
                let text = self.check(at, super::expand_user(text, self.host))?;
                self.check(at, check_path(&text))?;
                Some(LogFile::File(Some(dir.join(text))))
            }
        }
    }

    /// Checks that the processes get taskmaster's names, `NAME` or `NAME_00`, `NAME_01`...
    /// `actual[i]` is process i's expanded `process_name` (`None`: not given, or an error
    /// already reported).
    #[allow(clippy::too_many_arguments)]
    fn check_process_names(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        names: &Names,
        start: u32,
        count: u32,
        actual: &[Option<String>],
    ) {
        let name = names.program.unwrap_or_default();
        let expected = |i: u32| {
            if count == 1 {
                name.to_string()
            } else {
                format!("{name}_{i:02}")
            }
        };
        let given = options.get("process_name");
        // Without process_name, supervisord names every process after the program.
        let got = |i: u32| -> Option<String> {
            match given {
                Some(_) => actual.get(i as usize).cloned().flatten(),
                None => Some(name.to_string()),
            }
        };
        let Some((mismatch, wrong)) = (0..count)
            .filter_map(|i| got(i).map(|g| (i, g)))
            .find(|(i, g)| *g != expected(*i))
        else {
            return;
        };
        let ours = if count == 1 {
            format!("taskmaster names a program's single process after the program ({name:?})")
        } else {
            format!(
                "taskmaster names the processes of {name} {}, {}, ... (process_name = \
                 %(program_name)s_%(process_num)02d)",
                expected(0),
                expected(1)
            )
        };
        let from_zero = |i: u32| -> Option<String> {
            let opt = given?;
            let names = Names {
                process: Some((i64::from(i), i64::from(count))),
                option: "process_name",
                ..names.clone()
            };
            let lookup = |n: &str| names.lookup(n);
            expand(&opt.value, &lookup).ok()
        };
        let start_is_the_cause =
            start != 0 && given.is_some() && (0..count).all(|i| from_zero(i) == Some(expected(i)));
        let (option, message) = if start_is_the_cause {
            (
                "numprocs_start",
                format!("numprocs_start = {start} names process 0 {wrong:?}; {ours}"),
            )
        } else if given.is_some() {
            let which = if count == 1 {
                "the process".to_string()
            } else {
                format!("process {mismatch}")
            };
            (
                "process_name",
                format!("this names {which} {wrong:?}; {ours}"),
            )
        } else {
            (
                "numprocs",
                format!("with numprocs > 1, process_name must use %(process_num); {ours}"),
            )
        };
        match options.get(option) {
            Some(opt) => {
                let at = At::new(src, section, opt);
                self.at_name(&at, message);
            }
            None => self.at_section(src, section, message),
        }
    }

    /// `0,2`: exit codes separated by commas; nothing means none.
    fn exitcodes(&mut self, at: &At, text: &str) -> Option<Vec<i32>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        let mut codes = Vec::new();
        let mut ok = true;
        let mut offset = 0;
        for item in text.split(',') {
            match parse_exitcode(super::raw::strip(item)) {
                Ok(code) => codes.push(code),
                Err(message) => {
                    ok = false;
                    let lead = item.len() - item.trim_start_matches(super::raw::is_space).len();
                    // Positions are the value's own when nothing was expanded.
                    let position = if at.opt.value == text {
                        at.opt.position(offset + lead)
                    } else {
                        at.opt.value_position()
                    };
                    self.error(at.src, position, &at.key, message);
                }
            }
            offset += item.len() + 1;
        }
        ok.then_some(codes)
    }
}
