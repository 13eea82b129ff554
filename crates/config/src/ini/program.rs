//! `[program:x]`: one supervisord program becomes one [`ProgramSpec`] and its processes.
//!
//! Each process is read as the YAML reads a program, through the program layer
//! ([`crate::program`]): a draft with every default, each option read into it by the same
//! readers under supervisord's name, then the same rules between options, in supervisord's
//! dialect (what supervisord ignores is a warning). What is left here is supervisord's own:
//! which options it expands per process, its log file words, its comma-separated exit codes,
//! and the options taskmaster accepts only with the value that changes nothing.
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
//! | `redirect_stderr = true` | `stderr` is `stdout`'s file (a `stderr_logfile` path or `stderr_syslog` beside it is ignored, with a warning, as supervisord ignores them: the program layer's rule) |
//! | `environment` | `env`, over `[supervisord] environment` |
//! | `directory` | `workingdir` |
//! | `priority` | validated, handed back in [`super::IniConfig::priorities`] |
//! | `stopasgroup`, `killasgroup` | `true` accepted (taskmaster always signals the whole group); `false` refused |
//! | `*_logfile_maxbytes`, `*_logfile_backups` | `stdout_maxbytes`, `stdout_backups`...: rotation by size, as in supervisord |
//! | `*_capture_maxbytes` | the same: capture mode, `PROCESS_COMMUNICATION_*` events |
//! | `*_events_enabled` | the same: `PROCESS_LOG_*` events |
//! | `serverurl` | the same: `AUTO` derives `SUPERVISOR_SERVER_URL` from the control socket, any other value is given as it is |
//! | `user` | `user`: a name or uid, looked up when the file is read (checked once every section is read: another user than taskmaster's own needs root) |
//! | (none) | `stdin: pipe`: supervisord gives every child a stdin pipe |
//! | any other | a warning: supervisord ignores options it does not know |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{Opt, Section};
use super::{At, Names, Translator};
use crate::program::{self, Context, Output, Place, ProgramDraft, ProgramRead};
use crate::values::{self, check_path, invalid_program_name, is_valid_program_name};
use crate::values::{parse_exitcode, split_command};
use crate::{ProgramSpec, Stream, DEFAULT_SYSLOG_SOCKET};

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

/// supervisord-dependent-startup's options, which taskmaster reads itself: a program with
/// `dependent_startup = true` is started once the programs of `dependent_startup_wait_for`
/// (`db:running migrate:exited`) are in those states.
const DEPENDENT_STARTUP: &[&str] = &[
    "dependent_startup",
    "dependent_startup_wait_for",
    "dependent_startup_inherit_priority",
];

/// The options of an `[fcgi-program:x]` besides a program's: its listening socket.
const FCGI_OPTIONS: &[&str] = &["socket", "socket_backlog", "socket_owner", "socket_mode"];

/// The options of an `[eventlistener:x]` besides a program's.
const LISTENER_OPTIONS: &[&str] = &["events", "buffer_size", "result_handler"];

/// What a program section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Program,
    /// `[fcgi-program:x]`: with a listening socket.
    Fcgi,
    /// `[eventlistener:x]`.
    Listener,
}

impl Kind {
    /// Its options besides a program's.
    fn own_options(self) -> &'static [&'static str] {
        match self {
            Kind::Program => &[],
            Kind::Fcgi => FCGI_OPTIONS,
            Kind::Listener => LISTENER_OPTIONS,
        }
    }
}

/// The options supervisord expands once per process (with `%(process_num)d`), besides
/// `environment` (expanded first: the others see it as `%(ENV_X)s`).
const PER_PROCESS: &[&str] = &[
    "command",
    "process_name",
    "directory",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_syslog",
];

/// The options read once for the program, before its processes: they say how many there are
/// and where the program comes in the order.
const READ_ONCE: &[&str] = &["numprocs", "numprocs_start", "priority"];

/// The per-process options whose values `convert` writes back as written when they differ
/// between the processes.
const TEMPLATED: &[&str] = &[
    "command",
    "directory",
    "stdout_logfile",
    "stderr_logfile",
    "environment",
];

type Options<'s> = BTreeMap<&'s str, &'s Opt>;

impl Translator<'_> {
    /// One `[program:x]`, `[fcgi-program:x]` or `[eventlistener:x]`: its spec and its
    /// priority; `None` if the name is invalid.
    pub(super) fn program(
        &mut self,
        src: usize,
        section: &Section,
        name: &str,
        kind: Kind,
    ) -> Option<(ProgramSpec, i32)> {
        let valid_name = is_valid_program_name(name);
        if !valid_name {
            self.at_section(src, section, invalid_program_name(name));
        }
        let known: Vec<&str> = PROGRAM_OPTIONS
            .iter()
            .chain(kind.own_options())
            .chain(DEPENDENT_STARTUP)
            .copied()
            .collect();
        let options = self.options(src, section, &known);
        if kind == Kind::Fcgi && !options.contains_key("socket") {
            let message = "missing required option \"socket\": the listening socket taskmaster \
                           opens and gives each process as its stdin (tcp://HOST:PORT or \
                           unix:///PATH)"
                .to_string();
            self.at_section(src, section, message);
        }
        let scope = self.scope(src);
        let group = self.group_of.get(name).cloned();
        let constant = Names {
            program: Some(name),
            group: group.as_deref(),
            ..scope.names(self.host)
        };
        // numprocs first: the processes depend on it.
        let numprocs = self
            .read(src, section, &options, "numprocs", &constant, |t| {
                values::parse_integer(t, 1, 1000)
            })
            .unwrap_or(1);
        let start = self
            .read(src, section, &options, "numprocs_start", &constant, |t| {
                values::parse_integer(t, 0, u32::MAX - 1000)
            })
            .unwrap_or(0);
        // Listeners come first (supervisord's -1), to hear what the others do.
        let default_priority = if kind == Kind::Listener { -1 } else { 999 };
        let priority = self
            .read(
                src,
                section,
                &options,
                "priority",
                &constant,
                values::priority,
            )
            .unwrap_or(default_priority);
        let handler = self.read_text(src, section, &options, "result_handler", &constant);
        if let Some((at, text)) = handler {
            if text.trim() != "supervisor.dispatchers:default_handler" {
                let message = "taskmaster answers a listener's RESULT as supervisord's default \
                               handler does (OK accepts the event, FAIL sends it again); it \
                               cannot load a Python result handler: remove result_handler"
                    .to_string();
                self.at_value(&at, message);
            }
        }
        self.accepted_only_as_a_no_op(src, section, &options, &constant);
        let dependent_startup = self.dependent_startup(src, section, &options, &constant, name);

        let before = (self.errors.len(), self.warnings.len());
        let mut made = Vec::new();
        let mut texts = Vec::new();
        for num in start..start.saturating_add(numprocs) {
            let process = Names {
                process: Some((i64::from(num), i64::from(numprocs))),
                ..constant.clone()
            };
            let (mut read, written) = self.process(src, section, &options, name, &process, kind);
            read.spec.numprocs = numprocs;
            read.spec.numprocs_start = start;
            // Negative priorities (allowed by supervisord) all come first.
            read.spec.priority = u32::try_from(priority).unwrap_or(0);
            if let Some(dependencies) = &dependent_startup {
                // The plugin starts it (its autostart is false for supervisord): taskmaster
                // starts it, once what it waits for is there.
                read.spec.autostart = true;
                read.spec.depends_on.clone_from(dependencies);
            }
            let first = num == start;
            if first {
                self.settle_once_read(src, section, &read);
            }
            let process_name = written
                .get("process_name")
                .cloned()
                .unwrap_or_else(|| name.to_string());
            made.push((process_name, num, read.spec));
            texts.push(written);
        }
        self.say_each_once(before);
        self.check_process_names(src, section, &options, name, numprocs, &made);
        let mut spec = template(&options, &texts, &made, &self.global_env)?;
        spec.processes = crate::instances::processes(made);
        valid_name.then_some((spec, priority))
    }

    /// One process: every option read with its values (`process` names its number), through
    /// the program layer; and the expanded text of each option, for its name and `convert`.
    fn process(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        name: &str,
        process: &Names,
        kind: Kind,
    ) -> (ProgramRead, BTreeMap<&'static str, String>) {
        let dir = self.sources[src].dir.clone();
        let place = self.place_of_section(src, section);
        let mut draft = match kind {
            Kind::Listener => ProgramDraft::listener(name, place),
            Kind::Program | Kind::Fcgi => ProgramDraft::new(name, place),
        };
        // supervisord gives every child a pipe for stdin (`sendProcessStdin` writes to it).
        draft.spec.stdin = crate::Stdin::Pipe;
        for option in options.keys() {
            if let Some(shared) = program::supervisord_option(option) {
                draft.written.insert(shared.name);
            }
        }
        let mut written = BTreeMap::new();
        // `environment` first: the other options see it as %(ENV_X)s.
        let mut own_env = BTreeMap::new();
        if let Some((at, text)) = self.read_text(src, section, options, "environment", process) {
            if let Some(env) = self.environment(&at, &text) {
                own_env = env;
            }
            written.insert("environment", text);
        }
        draft.spec.env = self.global_env.clone();
        draft.spec.env.extend(own_env.clone());
        let mut with_env = process.clone();
        with_env.env.push(&own_env);
        for &option in PROGRAM_OPTIONS.iter().chain(kind.own_options()) {
            let names = if PER_PROCESS.contains(&option) {
                &with_env
            } else {
                &Names {
                    process: None,
                    ..with_env.clone()
                }
            };
            if option == "environment" || option == "result_handler" || READ_ONCE.contains(&option)
            {
                continue;
            }
            let Some((at, text)) = self.read_text(src, section, options, option, names) else {
                continue;
            };
            let place = self.place_of_value(&at);
            if let Some(shared) = program::supervisord_option(option) {
                let context = Context {
                    dir: &dir,
                    accounts: self.accounts,
                };
                let result = draft.read(shared, &text, &place, &context);
                self.check(&at, result);
            } else if let Some(stream) = log_stream(option) {
                let output = self.logfile(&at, &text, &dir);
                match stream {
                    Stream::Stdout => draft.stdout = output.map(|o| (o, place)),
                    Stream::Stderr => draft.stderr = output.map(|o| (o, place)),
                }
            } else if option == "exitcodes" {
                if let Some(codes) = self.exitcodes(&at, &text) {
                    draft.spec.exitcodes = codes;
                }
            }
            if TEMPLATED.contains(&option) || option == "process_name" {
                written.insert(option, text);
            }
        }
        // Without a log file option, supervisord's default: AUTO.
        let section_place = self.place_of_section(src, section);
        draft
            .stdout
            .get_or_insert_with(|| (Output::Auto, section_place.clone()));
        draft.stderr.get_or_insert((Output::Auto, section_place));
        let (mut read, remarks) = draft.finish(&program::INI);
        for remark in remarks {
            let entry = (src, remark.error);
            match remark.warning {
                true => self.warnings.push(entry),
                false => self.errors.push(entry),
            }
        }
        // The pattern, not this process's name: the same in every process.
        read.spec.process_name = options.get("process_name").map(|opt| opt.value.clone());
        let syslog = Some(PathBuf::from(DEFAULT_SYSLOG_SOCKET));
        for stream in &read.to_syslog {
            match stream {
                Stream::Stdout => read.spec.stdout_syslog.clone_from(&syslog),
                Stream::Stderr => read.spec.stderr_syslog.clone_from(&syslog),
            }
        }
        (read, written)
    }

    /// What is said once per program however many processes it has: who it runs as, and
    /// its AUTO log files (named once the whole file is read).
    fn settle_once_read(&mut self, src: usize, section: &Section, read: &ProgramRead) {
        if let (Some(user), Some(place)) = (&read.spec.user, &read.user) {
            let placed = super::PlacedUser {
                user: (**user).clone(),
                place: place.clone(),
            };
            self.program_users.push(placed);
        }
        let [stdout, stderr] = read.auto;
        let streams = [
            (stdout, Stream::Stdout, read.redirect_stderr),
            (stderr, Stream::Stderr, false),
        ];
        for (_, stream, with_stderr) in streams.into_iter().filter(|(auto, ..)| *auto) {
            self.auto_streams.push(super::AutoStream {
                program: read.spec.name.clone(),
                stream,
                with_stderr,
                src,
                position: (section.line, section.column),
                section: section.name.clone(),
            });
        }
    }

    /// The same error or warning, made by every process, is said once.
    fn say_each_once(&mut self, (errors, warnings): (usize, usize)) {
        for (list, before) in [(&mut self.errors, errors), (&mut self.warnings, warnings)] {
            let found: Vec<_> = list.drain(before..).collect();
            for said in found {
                if !list[before..].contains(&said) {
                    list.push(said);
                }
            }
        }
    }

    /// With numprocs > 1, `process_name` must tell the processes apart, as supervisord
    /// requires.
    fn check_process_names(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        program: &str,
        numprocs: u32,
        made: &[(String, u32, ProgramSpec)],
    ) {
        if numprocs > 1 && !options.contains_key("process_name") {
            let message = "with numprocs > 1, process_name must use %(process_num) to tell the \
                           processes apart (as supervisord requires), such as process_name = \
                           %(program_name)s_%(process_num)02d"
                .to_string();
            match options.get("numprocs") {
                Some(opt) => self.at_name(&At::new(src, section, opt), message),
                None => self.at_section(src, section, message),
            }
        }
        let names: Vec<&str> = made.iter().map(|(name, _, _)| name.as_str()).collect();
        for problem in crate::instances::check_names(program, &names) {
            match options.get("process_name") {
                Some(opt) => self.at_value(&At::new(src, section, opt), problem),
                None => self.at_section(src, section, problem),
            }
        }
    }

    /// The options taskmaster accepts only with the value that changes nothing: each says
    /// what taskmaster does instead.
    fn accepted_only_as_a_no_op(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        names: &Names,
    ) {
        let read = |t: &mut Self, option: &str| t.read_text(src, section, options, option, names);
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
    }

    /// supervisord-dependent-startup's options: with `dependent_startup = true`, what the
    /// program waits for (nothing when `dependent_startup_wait_for` is not given); `None`
    /// when the plugin does not start it (its `wait_for` is then ignored, as by the plugin).
    fn dependent_startup(
        &mut self,
        src: usize,
        section: &Section,
        options: &Options,
        names: &Names,
        program: &str,
    ) -> Option<Vec<crate::Dependency>> {
        let enabled = self
            .read(
                src,
                section,
                options,
                "dependent_startup",
                names,
                values::boolean,
            )
            .unwrap_or(false);
        let wait_for = self.read_text(src, section, options, "dependent_startup_wait_for", names);
        let inherit = "dependent_startup_inherit_priority";
        if let Some((at, _)) = self.read_text(src, section, options, inherit, names) {
            let message = "ignored: the order of starts follows the dependencies, and priority \
                           orders the rest"
                .to_string();
            self.warning_at_value(&at, message);
        }
        if !enabled {
            if let Some((at, _)) = wait_for {
                let message = "ignored without dependent_startup = true (as \
                               supervisord-dependent-startup ignores it)"
                    .to_string();
                self.warning_at_value(&at, message);
            }
            return None;
        }
        let Some((at, text)) = wait_for else {
            return Some(Vec::new());
        };
        let dependencies = self.check(&at, crate::dependencies::parse_wait_for(&text))?;
        let place = self.place_of_value(&at);
        self.dependency_places.insert(program.to_string(), place);
        Some(dependencies)
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

    /// Where an option's value is, for the program layer.
    fn place_of_value(&self, at: &At) -> Place {
        let (line, column) = at.opt.value_position();
        Place {
            src: at.src,
            file: self.sources[at.src].path.clone(),
            line,
            column,
            key: at.key.clone(),
        }
    }

    /// Where a section's header is, for the program layer.
    fn place_of_section(&self, src: usize, section: &Section) -> Place {
        Place {
            src,
            file: self.sources[src].path.clone(),
            line: section.line,
            column: section.column,
            key: section.name.clone(),
        }
    }

    /// `NONE`/`OFF` (discard), `syslog`, `AUTO`, or a path.
    fn logfile(&mut self, at: &At, text: &str, dir: &Path) -> Option<Output> {
        match text.to_lowercase().as_str() {
            "none" | "off" => Some(Output::File(None)),
            "auto" => Some(Output::Auto),
            // supervisord 4 reads it as `stdout_syslog = true` with no file.
            "syslog" => Some(Output::Syslog),
            _ => {
                let text = self.check(at, super::expand_user(text, self.host))?;
                self.check(at, check_path(&text))?;
                Some(Output::File(Some(dir.join(text))))
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

/// The stream whose log file `option` names.
fn log_stream(option: &str) -> Option<Stream> {
    match option {
        "stdout_logfile" => Some(Stream::Stdout),
        "stderr_logfile" => Some(Stream::Stderr),
        _ => None,
    }
}

/// The program's own view, for `convert`: its first process, but an option's text as written
/// where its value differs between the processes. `None` when no process was made.
fn template(
    options: &Options,
    texts: &[BTreeMap<&'static str, String>],
    made: &[(String, u32, ProgramSpec)],
    global_env: &BTreeMap<String, String>,
) -> Option<ProgramSpec> {
    let (_, _, first) = made.first()?;
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
    if view.stderr.is_none() || differs("stdout_logfile") {
        // redirect_stderr: stderr is stdout's file, as written.
        if first.stderr == first.stdout {
            view.stderr = view.stdout.clone();
        }
    }
    if differs("environment") {
        let written = raw("environment").and_then(|text| super::environment::parse(&text).ok());
        if let Some(pairs) = written {
            view.env = global_env.clone();
            view.env
                .extend(pairs.into_iter().map(|(key, value, _)| (key, value)));
        }
    }
    view.process_name = options.get("process_name").map(|opt| opt.value.clone());
    Some(view)
}
