//! The program layer: one program as either front end read it, and the one function that
//! applies every rule and default to it.
//!
//! Both front ends (the YAML in [`crate::yaml`], supervisord's INI in [`crate::ini`]) read a
//! program the same way: a [`ProgramDraft`] starts with every default, each option is read
//! into it, then [`ProgramDraft::finish`] applies the rules between options (`redirect_stderr`
//! against `stderr`, `on_exit_timeout` without `on_exit`, `cmd` required...) and returns the
//! program. The options whose value is one piece of text in both formats are read by one
//! table, [`OPTIONS`], under taskmaster's name and supervisord's: adding such an option is one
//! entry there, one field in [`ProgramSpec`], and one line in `convert`'s writer.
//!
//! What differs between the formats is their syntax (a YAML list, an INI `%(process_num)d`),
//! their names for an option, and one policy, held by a [`Dialect`]: what supervisord itself
//! ignores (a `stderr_logfile` beside `redirect_stderr = true`) is a warning in its INI files,
//! which must load as supervisord loads them, and an error in taskmaster's own YAML, which has
//! no warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::values::{
    boolean, byte_size, check_path, check_shell_command, event_types, file_mode, owner,
    parse_integer, parse_umask, priority, socket_address, split_command, Words, UMASK_EXPECTED,
};
use crate::{
    parse_duration, Accounts, AutoRestart, Hook, ProgramSpec, Readiness, Signal, Stream,
    WatchdogPaused,
};

/// A FastCGI Unix socket's mode when `socket_mode` is not given, as supervisord's.
const DEFAULT_SOCKET_MODE: u32 = 0o700;

/// How long `on_exit`'s command may run when `on_exit_timeout` is not given.
pub(crate) const ON_EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an option was written: its file (and that file's rank among the files read), its
/// 1-based line and column, and its dotted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub src: usize,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
}

impl Place {
    /// `message`, said at this place.
    pub(crate) fn say(&self, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            key: self.key.clone(),
            message,
        }
    }
}

/// Something [`ProgramDraft::finish`] says about a program: an error, or a warning.
pub(crate) struct Remark {
    pub error: ConfigError,
    pub warning: bool,
}

/// What differs between the front ends, for the rules between options.
pub(crate) struct Dialect {
    /// What an option is called: "key" (YAML) or "option" (INI).
    pub noun: &'static str,
    /// The front end's name for an option of taskmaster's (`cmd` is INI's `command`).
    pub name_of: fn(&'static str) -> &'static str,
    /// What sets an option to a value: `": "` (YAML) or `" = "` (INI).
    pub set: &'static str,
    /// Whether what supervisord ignores is a warning (INI) rather than an error (YAML).
    pub lenient: bool,
}

/// taskmaster's YAML: its own names, and no warnings.
pub(crate) const YAML: Dialect = Dialect {
    noun: "key",
    name_of: |name| name,
    set: ": ",
    lenient: false,
};

/// supervisord's INI: its names, and what supervisord ignores is a warning.
pub(crate) const INI: Dialect = Dialect {
    noun: "option",
    name_of: |name| supervisord_name(name).unwrap_or(name),
    set: " = ",
    lenient: true,
};

/// Where a stream's output goes, as `stdout`/`stdout_logfile` says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// A file, or `None` to discard.
    File(Option<PathBuf>),
    /// Syslog, and no file.
    Syslog,
    /// `AUTO`: a file in `childlogdir`, named once the whole file is read.
    Auto,
}

/// What options are read against: the folder relative paths start from, and the accounts
/// `user` names.
pub(crate) struct Context<'a> {
    pub dir: &'a Path,
    pub accounts: &'a Accounts,
}

/// A program being read: its spec with every default and each option read so far, and, for
/// the rules between options, what was written where.
#[derive(Clone)]
pub(crate) struct ProgramDraft {
    pub spec: ProgramSpec,
    /// Where the program is written (its name in YAML, its section in INI).
    pub place: Place,
    /// The options written, by taskmaster's name, with a right value or not: only an option
    /// not written at all is "missing".
    pub written: std::collections::BTreeSet<&'static str>,
    pub stdout: Option<(Output, Place)>,
    pub stderr: Option<(Output, Place)>,
    pub stdout_syslog: Option<(bool, Place)>,
    pub stderr_syslog: Option<(bool, Place)>,
    pub redirect_stderr: bool,
    /// `on_exit`: its command when right, and where it was written.
    pub on_exit: Option<(Option<String>, Place)>,
    /// `on_exit_timeout`: its value when right, and where it was written.
    pub on_exit_timeout: Option<(Option<Duration>, Place)>,
    /// Where `user` was written, when it names an account.
    pub user: Option<Place>,
    /// `socket` and the options that go with it, with where each was written.
    pub socket: Option<(crate::SocketAddress, Place)>,
    pub socket_backlog: Option<(u32, Place)>,
    pub socket_owner: Option<(crate::Owner, Place)>,
    pub socket_mode: Option<(u32, Place)>,
    /// Where `stdin` was written (the YAML's key): a socket is the stdin of its processes.
    pub stdin: Option<Place>,
    /// It is an event listener (`[eventlistener:x]`, `eventlisteners:`).
    pub listener: bool,
    /// A listener's `events` and `buffer_size`, with where each was written.
    pub events: Option<(Vec<crate::EventType>, Place)>,
    pub buffer_size: Option<(u32, Place)>,
    /// Where `redirect_stderr = true` was written.
    pub redirect_place: Option<Place>,
    /// Where the program's dependencies were written (`depends_on`,
    /// `dependent_startup_wait_for`).
    pub depends_on: Option<Place>,
    /// Where `singleton: true` was written.
    pub singleton: Option<Place>,
}

/// A program with its rules applied.
pub(crate) struct ProgramRead {
    pub spec: ProgramSpec,
    /// The streams it sends to syslog (their socket is known once the whole file is read).
    pub to_syslog: Vec<Stream>,
    /// Where its `user` was written.
    pub user: Option<Place>,
    /// `stdout` and `stderr` are `AUTO` (stderr's never with `redirect_stderr`).
    pub auto: [bool; 2],
    pub redirect_stderr: bool,
    /// Where its dependencies were written: the graph is checked once every program is read.
    pub depends_on: Option<Place>,
    /// Where `singleton: true` was written: checked against `cluster:` once the file is read.
    pub singleton: Option<Place>,
}

/// One option both formats write as one piece of text: its name in taskmaster's YAML, in
/// supervisord's INI (when supervisord has it), what a value looks like, and its reader.
pub(crate) struct ProgramOption {
    pub name: &'static str,
    pub supervisord: Option<&'static str>,
    pub expected: &'static str,
    read: fn(&mut ProgramDraft, &str, &Place, &Context) -> Result<(), String>,
}

const BOOLEAN: &str = "true or false";
const DURATION: &str = "a duration such as 1, 1.5s or 500ms";

/// The options read from one piece of text, in the order `valid keys` lists them.
pub(crate) const OPTIONS: &[ProgramOption] = &[
    ProgramOption {
        name: "cmd",
        supervisord: Some("command"),
        expected: "a command",
        read: |d, text, _, _| {
            d.spec.argv = split_command(text)?;
            d.spec.cmd = text.to_string();
            Ok(())
        },
    },
    ProgramOption {
        name: "numprocs",
        supervisord: Some("numprocs"),
        expected: "an integer >= 1",
        read: |d, text, _, _| parse_integer(text, 1, 1000).map(|value| d.spec.numprocs = value),
    },
    ProgramOption {
        name: "numprocs_start",
        supervisord: Some("numprocs_start"),
        expected: "an integer >= 0",
        read: |d, text, _, _| {
            parse_integer(text, 0, u32::MAX - 1000).map(|value| d.spec.numprocs_start = value)
        },
    },
    ProgramOption {
        name: "process_name",
        supervisord: Some("process_name"),
        expected: "a process name pattern",
        read: |d, text, _, _| {
            d.spec.process_name = Some(text.to_string());
            Ok(())
        },
    },
    ProgramOption {
        name: "autostart",
        supervisord: Some("autostart"),
        expected: BOOLEAN,
        read: |d, text, _, _| boolean(text).map(|value| d.spec.autostart = value),
    },
    ProgramOption {
        name: "autorestart",
        supervisord: Some("autorestart"),
        expected: "always, never or unexpected",
        read: |d, text, _, _| AutoRestart::parse(text).map(|value| d.spec.autorestart = value),
    },
    ProgramOption {
        name: "starttime",
        supervisord: Some("startsecs"),
        expected: DURATION,
        read: |d, text, _, _| parse_duration(text).map(|value| d.spec.starttime = value),
    },
    ProgramOption {
        name: "startretries",
        supervisord: Some("startretries"),
        expected: "an integer >= 0",
        read: |d, text, _, _| {
            parse_integer(text, 0, u32::MAX).map(|value| d.spec.startretries = value)
        },
    },
    ProgramOption {
        name: "stopsignal",
        supervisord: Some("stopsignal"),
        expected: "a signal name such as TERM",
        read: |d, text, _, _| {
            text.parse::<Signal>()
                .map(|value| d.spec.stopsignal = value)
        },
    },
    ProgramOption {
        name: "stoptime",
        supervisord: Some("stopwaitsecs"),
        expected: DURATION,
        read: |d, text, _, _| parse_duration(text).map(|value| d.spec.stoptime = value),
    },
    ProgramOption {
        name: "killgroup",
        supervisord: None,
        expected: BOOLEAN,
        read: |d, text, _, _| boolean(text).map(|value| d.spec.killgroup = value),
    },
    ProgramOption {
        name: "stdout_syslog",
        supervisord: Some("stdout_syslog"),
        expected: BOOLEAN,
        read: |d, text, place, _| {
            boolean(text).map(|on| d.stdout_syslog = Some((on, place.clone())))
        },
    },
    ProgramOption {
        name: "stderr_syslog",
        supervisord: Some("stderr_syslog"),
        expected: BOOLEAN,
        read: |d, text, place, _| {
            boolean(text).map(|on| d.stderr_syslog = Some((on, place.clone())))
        },
    },
    ProgramOption {
        name: "redirect_stderr",
        supervisord: Some("redirect_stderr"),
        expected: BOOLEAN,
        read: |d, text, place, _| {
            d.redirect_stderr = boolean(text)?;
            d.redirect_place = d.redirect_stderr.then(|| place.clone());
            Ok(())
        },
    },
    ProgramOption {
        name: "stdout_maxbytes",
        supervisord: Some("stdout_logfile_maxbytes"),
        expected: "a size such as 50MB",
        read: |d, text, _, _| byte_size(text).map(|value| d.spec.stdout_rotation.maxbytes = value),
    },
    ProgramOption {
        name: "stdout_backups",
        supervisord: Some("stdout_logfile_backups"),
        expected: "an integer >= 0",
        read: |d, text, _, _| {
            parse_integer(text, 0, 1000).map(|value| d.spec.stdout_rotation.backups = value)
        },
    },
    ProgramOption {
        name: "stderr_maxbytes",
        supervisord: Some("stderr_logfile_maxbytes"),
        expected: "a size such as 50MB",
        read: |d, text, _, _| byte_size(text).map(|value| d.spec.stderr_rotation.maxbytes = value),
    },
    ProgramOption {
        name: "stderr_backups",
        supervisord: Some("stderr_logfile_backups"),
        expected: "an integer >= 0",
        read: |d, text, _, _| {
            parse_integer(text, 0, 1000).map(|value| d.spec.stderr_rotation.backups = value)
        },
    },
    ProgramOption {
        name: "stdout_events_enabled",
        supervisord: Some("stdout_events_enabled"),
        expected: BOOLEAN,
        read: |d, text, _, _| boolean(text).map(|on| d.spec.stdout_events.log = on),
    },
    ProgramOption {
        name: "stderr_events_enabled",
        supervisord: Some("stderr_events_enabled"),
        expected: BOOLEAN,
        read: |d, text, _, _| boolean(text).map(|on| d.spec.stderr_events.log = on),
    },
    ProgramOption {
        name: "stdout_capture_maxbytes",
        supervisord: Some("stdout_capture_maxbytes"),
        expected: "a size such as 1MB",
        read: |d, text, _, _| byte_size(text).map(|n| d.spec.stdout_events.capture_maxbytes = n),
    },
    ProgramOption {
        name: "stderr_capture_maxbytes",
        supervisord: Some("stderr_capture_maxbytes"),
        expected: "a size such as 1MB",
        read: |d, text, _, _| byte_size(text).map(|n| d.spec.stderr_events.capture_maxbytes = n),
    },
    ProgramOption {
        name: "workingdir",
        supervisord: Some("directory"),
        expected: "a path",
        read: |d, text, _, context| {
            check_path(text).map(|()| d.spec.workingdir = Some(context.dir.join(text)))
        },
    },
    ProgramOption {
        name: "umask",
        supervisord: Some("umask"),
        expected: UMASK_EXPECTED,
        read: |d, text, _, _| parse_umask(text).map(|umask| d.spec.umask = Some(umask)),
    },
    ProgramOption {
        name: "priority",
        supervisord: Some("priority"),
        expected: "an integer",
        // Negative priorities (supervisord allows them) all come first.
        read: |d, text, _, _| {
            priority(text).map(|n| d.spec.priority = u32::try_from(n).unwrap_or(0))
        },
    },
    ProgramOption {
        name: "ready",
        supervisord: None,
        expected: "started or notify",
        read: |d, text, _, _| Readiness::parse(text).map(|value| d.spec.ready = value),
    },
    ProgramOption {
        name: "readytime",
        supervisord: None,
        expected: DURATION,
        read: |d, text, _, _| positive_duration(text).map(|value| d.spec.readytime = value),
    },
    ProgramOption {
        name: "watchdog",
        supervisord: None,
        expected: DURATION,
        read: |d, text, _, _| positive_duration(text).map(|t| d.spec.watchdog = Some(t)),
    },
    ProgramOption {
        name: "watchdog_paused",
        supervisord: None,
        expected: "ignore or restart",
        read: |d, text, _, _| {
            WatchdogPaused::parse(text).map(|value| d.spec.watchdog_paused = value)
        },
    },
    ProgramOption {
        name: "on_exit",
        supervisord: None,
        expected: "a shell command",
        read: |d, text, place, _| {
            let checked = check_shell_command(text);
            let cmd = checked.as_ref().ok().map(|()| text.to_string());
            d.on_exit = Some((cmd, place.clone()));
            checked
        },
    },
    ProgramOption {
        name: "on_exit_timeout",
        supervisord: None,
        expected: DURATION,
        read: |d, text, place, _| {
            let timeout = positive_duration(text);
            d.on_exit_timeout = Some((timeout.as_ref().ok().copied(), place.clone()));
            timeout.map(|_| ())
        },
    },
    ProgramOption {
        name: "socket",
        supervisord: Some("socket"),
        expected: "tcp://HOST:PORT or unix:///PATH",
        read: |d, text, place, context| {
            let address = socket_address(text, context.dir)?;
            d.socket = Some((address, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "socket_backlog",
        supervisord: Some("socket_backlog"),
        expected: "an integer from 1 to 65535",
        read: |d, text, place, _| {
            let backlog = parse_integer(text, 1, 65535)?;
            d.socket_backlog = Some((backlog, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "socket_owner",
        supervisord: Some("socket_owner"),
        expected: "user or user:group",
        read: |d, text, place, _| {
            d.socket_owner = Some((owner(text)?, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "socket_mode",
        supervisord: Some("socket_mode"),
        expected: "an octal mode such as 0700",
        read: |d, text, place, _| {
            d.socket_mode = Some((file_mode(text)?, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "events",
        supervisord: Some("events"),
        expected: "event types such as PROCESS_STATE,TICK_60",
        read: |d, text, place, _| {
            d.events = Some((event_types(text)?, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "buffer_size",
        supervisord: Some("buffer_size"),
        expected: "an integer >= 1",
        read: |d, text, place, _| {
            d.buffer_size = Some((parse_integer(text, 1, 1_000_000)?, place.clone()));
            Ok(())
        },
    },
    ProgramOption {
        name: "critical",
        supervisord: None,
        expected: BOOLEAN,
        read: |d, text, _, _| boolean(text).map(|on| d.spec.critical = on),
    },
    ProgramOption {
        name: "user",
        supervisord: Some("user"),
        expected: "a user name or uid",
        read: |d, text, place, context| {
            d.spec.user = Some(Box::new(context.accounts.find(text)?));
            d.user = Some(place.clone());
            Ok(())
        },
    },
    ProgramOption {
        name: "serverurl",
        supervisord: Some("serverurl"),
        expected: "AUTO or a URL such as http://127.0.0.1:9001",
        // AUTO (in any case) is derived at the spawn; any other text is the program's own.
        read: |d, text, _, _| {
            d.spec.serverurl = (!text.trim().eq_ignore_ascii_case("auto")).then(|| text.into());
            Ok(())
        },
    },
];

/// The option of [`OPTIONS`] that YAML names `name`.
pub(crate) fn option(name: &str) -> Option<&'static ProgramOption> {
    OPTIONS.iter().find(|option| option.name == name)
}

/// The option of [`OPTIONS`] that supervisord names `name`.
pub(crate) fn supervisord_option(name: &str) -> Option<&'static ProgramOption> {
    OPTIONS
        .iter()
        .find(|option| option.supervisord == Some(name))
}

/// supervisord's name for a key of taskmaster's YAML, when they differ or are the same.
pub(crate) fn supervisord_name(name: &str) -> Option<&'static str> {
    match name {
        "stdout" => Some("stdout_logfile"),
        "stderr" => Some("stderr_logfile"),
        "env" => Some("environment"),
        _ => option(name).and_then(|option| option.supervisord),
    }
}

/// taskmaster's YAML key for a supervisord option, when it has one.
pub(crate) fn yaml_name(supervisord: &str) -> Option<&'static str> {
    match supervisord {
        "stdout_logfile" => Some("stdout"),
        "stderr_logfile" => Some("stderr"),
        "environment" => Some("env"),
        _ => supervisord_option(supervisord).map(|option| option.name),
    }
}

/// A duration of more than 0: what a timeout, a period or a window must be.
pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "expected a duration > 0, found {}",
            crate::values::quote(text)
        ));
    }
    Ok(duration)
}

impl ProgramDraft {
    /// A program named `name` with every default, written at `place`.
    pub(crate) fn new(name: &str, place: Place) -> ProgramDraft {
        ProgramDraft {
            spec: defaults(name),
            place,
            written: Default::default(),
            stdout: None,
            stderr: None,
            stdout_syslog: None,
            stderr_syslog: None,
            redirect_stderr: false,
            on_exit: None,
            on_exit_timeout: None,
            user: None,
            socket: None,
            socket_backlog: None,
            socket_owner: None,
            socket_mode: None,
            stdin: None,
            listener: false,
            events: None,
            buffer_size: None,
            redirect_place: None,
            depends_on: None,
            singleton: None,
        }
    }

    /// An event listener named `name`, with every default: supervisord's priority -1 (0 here:
    /// listeners start before the programs whose events they hear), and stdin a pipe (the
    /// events come that way).
    pub(crate) fn listener(name: &str, place: Place) -> ProgramDraft {
        let mut draft = ProgramDraft::new(name, place);
        draft.listener = true;
        draft.spec.priority = 0;
        draft.spec.stdin = crate::Stdin::Pipe;
        draft
    }

    /// Reads `text` as the value of `option`, written at `place`.
    pub(crate) fn read(
        &mut self,
        option: &ProgramOption,
        text: &str,
        place: &Place,
        context: &Context,
    ) -> Result<(), String> {
        (option.read)(self, text, place, context)
    }

    /// The program, with the rules between its options applied, and what they found.
    pub(crate) fn finish(mut self, dialect: &Dialect) -> (ProgramRead, Vec<Remark>) {
        let mut remarks = Vec::new();
        let name = dialect.name_of;
        if !self.written.contains("cmd") {
            let message = format!("missing required {} {:?}", dialect.noun, name("cmd"));
            remarks.push(error(&self.place, message));
        }
        self.hook(&mut remarks);
        self.fcgi_socket(&mut remarks, dialect);
        self.event_listener(&mut remarks, dialect);
        let mut to_syslog = Vec::new();
        let mut auto = [false; 2];
        let stdout = self.stdout.take();
        if self.output(Stream::Stdout, stdout, &mut auto, &mut remarks, dialect) {
            to_syslog.push(Stream::Stdout);
        }
        let stderr = self.stderr.take();
        if self.redirect_stderr {
            // Its standard error is in stdout's pipe, as under supervisord.
            self.spec.stderr_events = self.spec.stdout_events;
            // supervisord ignores what says where stderr goes beside redirect_stderr.
            let ignored = [
                stderr
                    .filter(|(output, _)| !matches!(output, Output::File(None) | Output::Auto))
                    .map(|(_, place)| (place, "stderr", "to stdout's file")),
                self.stderr_syslog
                    .take()
                    .filter(|(to_syslog, _)| *to_syslog)
                    .map(|(_, place)| (place, "stderr_syslog", "where stdout goes")),
            ];
            for (place, option, where_to) in ignored.into_iter().flatten() {
                let message = if dialect.lenient {
                    format!(
                        "ignored beside redirect_stderr = true, as supervisord ignores it: \
                         standard error goes {where_to}"
                    )
                } else {
                    format!(
                        "give {option} or redirect_stderr: true, not both (with \
                         redirect_stderr, standard error goes {where_to})"
                    )
                };
                remarks.push(Remark {
                    error: place.say(message),
                    warning: dialect.lenient,
                });
            }
            self.spec.stderr = self.spec.stdout.clone();
            self.spec.stderr_rotation = self.spec.stdout_rotation;
            if to_syslog.contains(&Stream::Stdout) {
                to_syslog.push(Stream::Stderr);
            }
        } else if self.output(Stream::Stderr, stderr, &mut auto, &mut remarks, dialect) {
            to_syslog.push(Stream::Stderr);
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.spec.events(stream).any() && to_syslog.contains(&stream) {
                let name = stream.name();
                let message = format!(
                    "{name} is sent to syslog and read for event listeners \
                     ({name}_events_enabled or {name}_capture_maxbytes): taskmaster does one or \
                     the other with a stream; choose one"
                );
                remarks.push(error(&self.place, message));
            }
        }
        let read = ProgramRead {
            spec: self.spec,
            to_syslog,
            user: self.user,
            auto,
            redirect_stderr: self.redirect_stderr,
            depends_on: self.depends_on,
            singleton: self.singleton,
        };
        (read, remarks)
    }

    /// Sets where `stream` goes; whether it goes to syslog. `stdout: syslog` with
    /// `stdout_syslog: false` contradict each other.
    fn output(
        &mut self,
        stream: Stream,
        output: Option<(Output, Place)>,
        auto: &mut [bool; 2],
        remarks: &mut Vec<Remark>,
        dialect: &Dialect,
    ) -> bool {
        let flag = match stream {
            Stream::Stdout => self.stdout_syslog.take(),
            Stream::Stderr => self.stderr_syslog.take(),
        };
        let mut word = false;
        match output {
            Some((Output::File(file), _)) => match stream {
                Stream::Stdout => self.spec.stdout = file,
                Stream::Stderr => self.spec.stderr = file,
            },
            Some((Output::Syslog, _)) => word = true,
            Some((Output::Auto, _)) => auto[usize::from(stream == Stream::Stderr)] = true,
            None => {}
        }
        match flag {
            Some((false, place)) if word => {
                let stream = stream.name();
                let option = (dialect.name_of)(stream);
                let set = dialect.set;
                let message = format!(
                    "{option}{set}syslog sends {stream} to syslog, which {stream}_syslog{set}false \
                     contradicts; remove one of them"
                );
                remarks.push(error(&place, message));
                false
            }
            Some((flag, _)) => flag || word,
            None => word,
        }
    }

    /// Makes `socket` and the options that go with it one [`crate::FcgiSocket`]: those
    /// options need `socket`, and `socket_owner` and `socket_mode` a Unix socket.
    fn fcgi_socket(&mut self, remarks: &mut Vec<Remark>, dialect: &Dialect) {
        let Some((address, _)) = self.socket.take() else {
            let given = [
                self.socket_backlog.take().map(|(_, place)| place),
                self.socket_owner.take().map(|(_, place)| place),
                self.socket_mode.take().map(|(_, place)| place),
            ];
            for place in given.into_iter().flatten() {
                let message = format!(
                    "{} needs socket (the listening socket of a FastCGI program)",
                    place.key.rsplit('.').next().unwrap_or_default()
                );
                remarks.push(error(&place, message));
            }
            return;
        };
        if let Some(place) = self.stdin.take() {
            let message = "give stdin or socket, not both: the socket is each process's stdin \
                           (fd 0), as FastCGI wants it"
                .to_string();
            remarks.push(error(&place, message));
        }
        // The socket is each process's stdin.
        self.spec.stdin = crate::Stdin::Null;
        let owner = self.socket_owner.take();
        let mode = self.socket_mode.take();
        if let crate::SocketAddress::Tcp { .. } = address {
            for place in [owner.map(|(_, p)| p), mode.map(|(_, p)| p)]
                .into_iter()
                .flatten()
            {
                let message = format!(
                    "{} applies only to a Unix socket (socket{}unix:///PATH), as in supervisord",
                    place.key.rsplit('.').next().unwrap_or_default(),
                    dialect.set
                );
                remarks.push(error(&place, message));
            }
            self.spec.fcgi_socket = Some(Box::new(crate::FcgiSocket {
                address,
                backlog: self.socket_backlog.take().map(|(n, _)| n),
                owner: None,
                mode: DEFAULT_SOCKET_MODE,
            }));
            return;
        }
        // As supervisord: the program's user owns the socket unless socket_owner says.
        let program_user = self.spec.user.as_ref().map(|user| crate::Owner {
            user: user.uid.to_string(),
            group: Some(user.gid.to_string()),
        });
        self.spec.fcgi_socket = Some(Box::new(crate::FcgiSocket {
            address,
            backlog: self.socket_backlog.take().map(|(n, _)| n),
            owner: owner.map(|(owner, _)| owner).or(program_user),
            mode: mode.map_or(DEFAULT_SOCKET_MODE, |(mode, _)| mode),
        }));
    }

    /// Makes a listener's `events` and `buffer_size` its [`crate::ListenerSpec`]: `events` is
    /// required; neither belongs to another program; a listener's stderr stays out of the
    /// protocol on its stdout, and its stdin is where the events come.
    fn event_listener(&mut self, remarks: &mut Vec<Remark>, dialect: &Dialect) {
        let events = self.events.take();
        let buffer_size = self.buffer_size.take();
        if !self.listener {
            for place in [events.map(|(_, p)| p), buffer_size.map(|(_, p)| p)]
                .into_iter()
                .flatten()
            {
                let message = format!(
                    "{} belongs to an event listener ([eventlistener:x] in supervisord's files, \
                     eventlisteners: in taskmaster's)",
                    place.key.rsplit('.').next().unwrap_or_default()
                );
                remarks.push(error(&place, message));
            }
            return;
        }
        if let Some(place) = self.redirect_place.take() {
            let message = "an event listener's stdout carries the protocol: redirect_stderr would \
                           mix standard error into it (supervisord refuses it too)"
                .to_string();
            remarks.push(error(&place, message));
        }
        if let Some(place) = self.stdin.take() {
            let message = "an event listener's stdin is where its events come: stdin may not be \
                           given"
                .to_string();
            remarks.push(error(&place, message));
        }
        self.spec.stdin = crate::Stdin::Pipe;
        let Some((events, _)) = events else {
            if self.written.contains("events") {
                return; // its error is said
            }
            let message = format!(
                "missing required {} {:?}: the event types it listens to (PROCESS_STATE, \
                 TICK_60...)",
                dialect.noun,
                (dialect.name_of)("events")
            );
            remarks.push(error(&self.place, message));
            return;
        };
        self.spec.listener = Some(crate::ListenerSpec {
            events,
            buffer_size: buffer_size.map_or(10, |(n, _)| n),
        });
    }

    /// Makes `on_exit` and `on_exit_timeout` one [`Hook`]; a timeout alone is an error.
    fn hook(&mut self, remarks: &mut Vec<Remark>) {
        let timeout = match self.on_exit_timeout.take() {
            Some((_, place)) if self.on_exit.is_none() => {
                remarks.push(error(&place, "on_exit_timeout needs on_exit".to_string()));
                return;
            }
            Some((timeout, _)) => timeout,
            None => Some(ON_EXIT_TIMEOUT),
        };
        if let (Some((Some(cmd), _)), Some(timeout)) = (self.on_exit.take(), timeout) {
            self.spec.on_exit = Some(Hook { cmd, timeout });
        }
    }
}

fn error(place: &Place, message: String) -> Remark {
    Remark {
        error: place.say(message),
        warning: false,
    }
}

/// A program with nothing but defaults (and no command yet).
pub(crate) fn defaults(name: &str) -> ProgramSpec {
    ProgramSpec {
        name: name.to_string(),
        cmd: String::new(),
        argv: Vec::new(),
        numprocs: 1,
        numprocs_start: 0,
        process_name: None,
        autostart: true,
        autorestart: AutoRestart::Unexpected,
        exitcodes: vec![0],
        starttime: Duration::from_secs(1),
        startretries: 3,
        stopsignal: Signal::TERM,
        stoptime: Duration::from_secs(10),
        stdout: None,
        stderr: None,
        stdout_syslog: None,
        stderr_syslog: None,
        env: Default::default(),
        serverurl: None,
        workingdir: None,
        umask: None,
        priority: 999,
        stdin: crate::Stdin::Null,
        stdout_events: crate::StreamEvents::default(),
        stderr_events: crate::StreamEvents::default(),
        stdout_rotation: crate::Rotation::default(),
        stderr_rotation: crate::Rotation::default(),
        ready: Readiness::Started,
        readytime: Duration::from_secs(30),
        watchdog: None,
        watchdog_paused: WatchdogPaused::Ignore,
        killgroup: true,
        healthcheck: None,
        on_exit: None,
        restart_limit: None,
        backoff: Some(Box::new(crate::Backoff::THROTTLE)),
        alerts: Vec::new(),
        group: None,
        group_priority: None,
        processes: Vec::new(),
        user: None,
        fcgi_socket: None,
        listener: None,
        rlimits: Default::default(),
        critical: false,
        singleton: false,
        depends_on: Vec::new(),
    }
}
