//! `[program:x]`: one supervisord program becomes one [`ProgramSpec`] and its processes.
//!
//! supervisord builds a program's processes one by one, expanding some options once per
//! process (`%(process_num)d`): `command`, `process_name`, `environment`, `directory` and the
//! log files. So does taskmaster: each process gets its own values of those options
//! ([`ProgramSpec::processes`]), named by its expanded `process_name` (any pattern; the names
//! must differ, and with `numprocs` > 1 `process_name` is required, as supervisord requires
//! it). `numprocs_start` numbers the first process.
//!
//! What each option becomes:
//!
//! | option | taskmaster |
//! |---|---|
//! | `command` | `cmd` (expanded, then split like the YAML's) |
//! | `process_name`, `numprocs`, `numprocs_start` | the same |
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
//! | `user` | `user`: a name or uid, looked up when the file is read (checked once every section is read: another user than taskmaster's own needs root) |
//! | (none) | `stdin: pipe`: supervisord gives every child a stdin pipe |
//! | any other | a warning: supervisord ignores options it does not know |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{Opt, Section};
use super::{At, Names, Translator};
use crate::values;
use crate::values::{
    check_path, invalid_program_name, is_valid_program_name, parse_exitcode, parse_integer,
    parse_umask, split_command,
};
use crate::yaml::defaults;
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
        let scope = self.scope(src);
        let group = self.group_of.get(name).cloned();
        let constant = Names {
            program: Some(name),
            group: group.as_deref(),
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
        spec.numprocs_start = start;
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
        // Negative priorities (allowed by supervisord) all come first.
        spec.priority = u32::try_from(priority).unwrap_or(0);
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
        // Read once for the program, as supervisord reads it.
        if let Some((at, text)) = read(self, "user") {
            let found = self.accounts.find(&text);
            spec.user = self.check(&at, found);
            if let Some(user) = &spec.user {
                self.program_users
                    .push(super::PlacedUser::new(user.clone(), &at));
            }
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

    /// The program's processes, each with its own values of the options supervisord expands
    /// per process (`command`, `process_name`, `environment`, `directory`, the log files), and
    /// the program's own view: process 0's values, but an option's text as written where it
    /// differs between the processes (for `convert`).
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
        let program = names.program.unwrap_or_default().to_string();
        spec.process_name = options.get("process_name").map(|opt| opt.value.clone());
        let before = self.errors.len();
        let mut made = Vec::new();
        let mut texts: Vec<BTreeMap<&'static str, String>> = Vec::new();
        for num in start..start.saturating_add(count) {
            let values = self.process_values(src, section, options, names, num, count);
            let mut process = spec.clone();
            let first = num == start;
            self.apply_values(
                src,
                section,
                options,
                &values,
                redirect_stderr,
                first,
                &mut process,
            );
            let name = values
                .texts
                .get("process_name")
                .cloned()
                .unwrap_or_else(|| program.clone());
            texts.push(values.texts);
            made.push((name, num, process));
        }
        // The same mistake in every process is said once.
        let found: Vec<_> = self.errors.drain(before..).collect();
        for error in found {
            if !self.errors[before..].contains(&error) {
                self.errors.push(error);
            }
        }
        if count > 1 && !options.contains_key("process_name") {
            let message = "with numprocs > 1, process_name must use %(process_num) to tell the \
                           processes apart (as supervisord requires), such as process_name = \
                           %(program_name)s_%(process_num)02d"
                .to_string();
            match options.get("numprocs") {
                Some(opt) => self.at_name(&At::new(src, section, opt), message),
                None => self.at_section(src, section, message),
            }
        }
        let names: Vec<String> = made.iter().map(|(name, _, _)| name.clone()).collect();
        for problem in crate::instances::check_names(&program, &names) {
            match options.get("process_name") {
                Some(opt) => self.at_value(&At::new(src, section, opt), problem),
                None => self.at_section(src, section, problem),
            }
        }
        if let Some((_, _, first)) = made.first() {
            let mut view = first.clone();
            let differs = |option: &str| {
                texts
                    .iter()
                    .any(|t| t.get(option) != texts.first().and_then(|first| first.get(option)))
            };
            let raw = |option: &str| options.get(option).map(|opt| opt.value.clone());
            if differs("command") {
                if let Some(text) = raw("command") {
                    view.argv = split_command(&text).unwrap_or_default();
                    view.cmd = text;
                }
            }
            for (option, field) in [
                ("directory", &mut view.workingdir),
                ("stdout_logfile", &mut view.stdout),
                ("stderr_logfile", &mut view.stderr),
            ] {
                if differs(option) {
                    *field = raw(option).map(PathBuf::from);
                }
            }
            if redirect_stderr {
                view.stderr = view.stdout.clone();
            }
            if differs("environment") {
                let written =
                    raw("environment").and_then(|text| super::environment::parse(&text).ok());
                if let Some(pairs) = written {
                    view.env = self.global_env.clone();
                    view.env
                        .extend(pairs.into_iter().map(|(key, value, _)| (key, value)));
                }
            }
            *spec = view;
        }
        spec.processes = crate::instances::processes(made);
    }

    /// Sets what process values say in `spec`: its command, environment, directory and log
    /// files.
    #[allow(clippy::too_many_arguments)]
    fn apply_values(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        values: &ProcessValues,
        redirect_stderr: bool,
        first: bool,
        spec: &mut ProgramSpec,
    ) {
        let dir = self.sources[src].dir.clone();
        let at = |option: &str| options.get(option).map(|opt| At::new(src, section, opt));
        if let (Some(text), Some(at)) = (values.texts.get("command"), at("command")) {
            if let Some(argv) = self.check(&at, split_command(text)) {
                spec.cmd = text.clone();
                spec.argv = argv;
            }
        }
        spec.env = self.global_env.clone();
        spec.env.extend(values.env.clone());
        if let (Some(text), Some(at)) = (values.texts.get("directory"), at("directory")) {
            if self.check(&at, check_path(text)).is_some() {
                spec.workingdir = Some(dir.join(text));
            }
        }
        let syslog = || Some(PathBuf::from(DEFAULT_SYSLOG_SOCKET));
        // Without the option, supervisord's default: AUTO.
        let stdout = match (values.texts.get("stdout_logfile"), at("stdout_logfile")) {
            (Some(text), Some(at)) => self.logfile(&at, text, &dir),
            _ => Some(LogFile::Auto),
        };
        match stdout {
            Some(LogFile::Syslog) => spec.stdout_syslog = syslog(),
            Some(LogFile::File(file)) => spec.stdout = file,
            // Named once the whole file is read, for the program and each of its processes.
            Some(LogFile::Auto) if first => {
                self.auto_log(src, section, spec, Stream::Stdout, redirect_stderr)
            }
            Some(LogFile::Auto) => {}
            None => {}
        }
        let stderr_text = values.texts.get("stderr_logfile");
        if !redirect_stderr {
            let stderr = match (stderr_text, at("stderr_logfile")) {
                (Some(text), Some(at)) => self.logfile(&at, text, &dir),
                _ => Some(LogFile::Auto),
            };
            match stderr {
                Some(LogFile::Syslog) => spec.stderr_syslog = syslog(),
                Some(LogFile::File(file)) => spec.stderr = file,
                Some(LogFile::Auto) if first => {
                    self.auto_log(src, section, spec, Stream::Stderr, false)
                }
                Some(LogFile::Auto) => {}
                None => {}
            }
        } else if let (Some(text), Some(at), true) = (stderr_text, at("stderr_logfile"), first) {
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
