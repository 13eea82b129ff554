//! The sections other than `[program:x]` and `[include]`: `[supervisord]` (the event log, the
//! environment of every program, and the daemon's own settings: the pid file, resource limits,
//! umask, directory, log level, identifier, AUTO logs' folder), the control servers and client
//! (`[unix_http_server]`, `[inet_http_server]`, `[supervisorctl]`, handed back in
//! [`IniConfig`](super::IniConfig)), and `[rpcinterface:supervisor]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::raw::Section;
use super::{
    absolute, At, Credentials, InetHttpServer, Scope, Supervisorctl, Translator, UnixHttpServer,
};
use crate::daemon;
use crate::values;
use crate::values::{parse_integer, parse_umask};

impl Translator<'_> {
    /// `[supervisord]`: the event log's path, if given, and its rotation; sets the global
    /// environment and the daemon's settings.
    pub(super) fn supervisord(
        &mut self,
        src: usize,
        section: &Section,
    ) -> (Option<PathBuf>, crate::Rotation) {
        let options = self.options(src, section, SUPERVISORD_OPTIONS);
        // Its own values see taskmaster's environment only, as in supervisord.
        let scope = Scope {
            here: self.sources[src].here.clone(),
            global_env: BTreeMap::new(),
        };
        let mut texts: BTreeMap<&str, (At, String)> = BTreeMap::new();
        for (&option, opt) in &options {
            let at = At::new(src, section, opt);
            let mut names = scope.names(self.host);
            names.option = option;
            if let Some(text) = self.expanded(&at, &names) {
                texts.insert(option, (at, text));
            }
        }
        let mut logfile = None;
        let mut rotation = crate::Rotation::default();
        for (option, (at, text)) in &texts {
            match *option {
                "logfile" => logfile = self.log_path(src, at, text),
                "environment" => {
                    if let Some(env) = self.environment(at, text) {
                        self.global_env = env;
                    }
                }
                "nodaemon" => {
                    let daemonize = self.check(at, values::boolean(text)) == Some(false);
                    if daemonize {
                        let message = "taskmaster does not go into the background: it stays in \
                                       the foreground (as with nodaemon = true), for a service \
                                       manager or a shell's & to run it"
                            .to_string();
                        self.warning_at_name(at, message);
                    }
                }
                // taskmaster prints its event log on stderr only with -v: silent already.
                "silent" => {
                    self.check(at, values::boolean(text));
                }
                "nocleanup" => {
                    if let Some(keep) = self.check(at, values::boolean(text)) {
                        self.daemon.nocleanup = keep;
                    }
                }
                "minfds" => self.daemon.minfds = self.check(at, daemon::parse_limit(text)),
                "minprocs" => self.daemon.minprocs = self.check(at, daemon::parse_limit(text)),
                "loglevel" => {
                    if let Some(level) = self.check(at, daemon::parse_loglevel(text)) {
                        self.daemon.loglevel = level;
                    }
                }
                "logfile_maxbytes" => {
                    if let Some(size) = self.check(at, values::byte_size(text)) {
                        rotation.maxbytes = size;
                    }
                }
                "logfile_backups" => {
                    if let Some(backups) = self.check(at, parse_integer(text, 0, 1000)) {
                        rotation.backups = backups;
                    }
                }
                // taskmaster switches once its sockets and event log are open; whether it may
                // is checked once every section is read.
                "user" => {
                    let found = self.accounts.find(text);
                    if let Some(user) = self.check(at, found) {
                        let file = self.sources[at.src].path.clone();
                        self.daemon_user = Some(super::PlacedUser::new(user, at, &file));
                    }
                }
                "strip_ansi" => {
                    let strips = self.check(at, values::boolean(text)) == Some(true);
                    self.daemon.strip_ansi = strips;
                    if strips {
                        let message = "accepted, not applied: taskmaster writes the output of \
                                       programs as they write it, escape sequences included"
                            .to_string();
                        self.warning_at_value(at, message);
                    }
                }
                "pidfile" => self.daemon.pidfile = self.log_path(src, at, text),
                "umask" => self.daemon.umask = self.check(at, parse_umask(text)),
                "directory" => self.daemon.directory = self.log_path(src, at, text),
                "identifier" => {
                    let valid = self.check(at, daemon::check_identifier(text)).is_some();
                    if valid {
                        self.daemon.identifier = text.clone();
                    }
                }
                "childlogdir" => self.daemon.childlogdir = self.log_path(src, at, text),
                _ => {}
            }
        }
        (logfile, rotation)
    }

    /// `username` and `password` of a server section: both or neither.
    fn credentials(&mut self, texts: &BTreeMap<&str, (At, String)>) -> Option<Credentials> {
        match (texts.get("username"), texts.get("password")) {
            (Some((_, username)), Some((_, password))) => Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }),
            (Some((at, _)), None) | (None, Some((at, _))) => {
                let missing = if at.opt.name == "username" {
                    "password"
                } else {
                    "username"
                };
                let message =
                    format!("{missing} is missing: give both username and password, or neither");
                self.at_name(at, message);
                None
            }
            (None, None) => None,
        }
    }

    /// A plain section's options, expanded.
    fn texts<'s>(
        &mut self,
        src: usize,
        section: &'s Section,
        known: &[&str],
    ) -> BTreeMap<&'s str, (At<'s>, String)> {
        let options = self.options(src, section, known);
        let scope = self.scope(src);
        let mut texts = BTreeMap::new();
        for (option, opt) in options {
            let at = At::new(src, section, opt);
            let mut names = scope.names(self.host);
            names.option = option;
            if let Some(text) = self.expanded(&at, &names) {
                texts.insert(option, (at, text));
            }
        }
        texts
    }

    pub(super) fn unix_http_server(
        &mut self,
        src: usize,
        section: &Section,
    ) -> Option<UnixHttpServer> {
        let known = ["file", "chmod", "chown", "username", "password"];
        let texts = self.texts(src, section, &known);
        let credentials = self.credentials(&texts);
        let mut file = None;
        let mut chmod = 0o700;
        let mut chown = None;
        for (option, (at, text)) in &texts {
            match *option {
                "file" => file = self.log_path(src, at, text),
                "chmod" => chmod = self.check(at, values::file_mode(text)).unwrap_or(chmod),
                "chown" => chown = self.check(at, values::owner(text)),
                _ => {}
            }
        }
        if !section.options.iter().any(|o| o.name == "file") {
            self.at_section(src, section, "missing required option \"file\"".to_string());
        }
        Some(UnixHttpServer {
            file: file?,
            chmod,
            chown,
            credentials,
        })
    }

    pub(super) fn inet_http_server(
        &mut self,
        src: usize,
        section: &Section,
    ) -> Option<InetHttpServer> {
        let texts = self.texts(src, section, &["port", "username", "password"]);
        let credentials = self.credentials(&texts);
        if !section.options.iter().any(|o| o.name == "port") {
            self.at_section(src, section, "missing required option \"port\"".to_string());
        }
        let (at, text) = texts.get("port")?;
        let (host, port) = self.check(at, values::inet_address(text))?;
        Some(InetHttpServer {
            host,
            port,
            credentials,
        })
    }

    pub(super) fn supervisorctl(&mut self, src: usize, section: &Section) -> Supervisorctl {
        let known = [
            "serverurl",
            "username",
            "password",
            "prompt",
            "history_file",
        ];
        let texts = self.texts(src, section, &known);
        let mut ctl = Supervisorctl::default();
        for (option, (at, text)) in texts {
            match option {
                "serverurl" => match self.check(&at, values::server_url(&text)) {
                    Some(values::ServerUrl::Unix(path)) => {
                        if let Some(path) = self.log_path(src, &at, path) {
                            ctl.serverurl = Some(format!("unix://{}", absolute(&path).display()));
                        }
                    }
                    Some(values::ServerUrl::Other) => ctl.serverurl = Some(text),
                    None => {}
                },
                "username" => ctl.username = Some(text),
                "password" => ctl.password = Some(text),
                "prompt" => ctl.prompt = Some(text),
                "history_file" => ctl.history_file = self.log_path(src, &at, &text),
                _ => {}
            }
        }
        ctl
    }

    /// `[group:x]`: `programs` (a comma-separated list) and `priority`.
    pub(super) fn group(&mut self, src: usize, section: &Section) -> Option<crate::GroupSpec> {
        let options = self.options(src, section, &["programs", "priority"]);
        let names = self.scope(src);
        let names = names.names(self.host);
        let Some(opt) = options.get("programs") else {
            self.at_section(
                src,
                section,
                "missing required option \"programs\"".to_string(),
            );
            return None;
        };
        let at = At::new(src, section, opt);
        let programs: Vec<String> = self
            .expanded(&at, &names)?
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        let priority = match options.get("priority") {
            Some(opt) => {
                let at = At::new(src, section, opt);
                let text = self.expanded(&at, &names)?;
                self.check(&at, crate::values::priority(&text))
                    .map_or(999, |p| u32::try_from(p).unwrap_or(0))
            }
            None => 999,
        };
        Some(crate::GroupSpec { programs, priority })
    }

    /// Only supervisord's own interface, which every supervisord.conf names, is accepted.
    pub(super) fn rpcinterface(&mut self, src: usize, section: &Section) {
        const FACTORY: &str = "supervisor.rpcinterface_factory";
        const MAIN: &str = "supervisor.rpcinterface:make_main_rpcinterface";
        if section.name != "rpcinterface:supervisor" {
            let message = "custom RPC interfaces are not supported; only \
                           [rpcinterface:supervisor] is accepted"
                .to_string();
            self.at_section(src, section, message);
            return;
        }
        let scope = self.scope(src);
        for opt in &section.options {
            let at = At::new(src, section, opt);
            if opt.name != FACTORY {
                let message = format!(
                    "unknown option {:?}: options besides {FACTORY} configure a custom RPC \
                     interface, which taskmaster does not support",
                    opt.name
                );
                self.at_name(&at, message);
                continue;
            }
            let text = self.expanded(&at, &scope.names(self.host));
            if text.is_some_and(|text| text != MAIN) {
                let message = format!("custom RPC interfaces are not supported; expected {MAIN}");
                self.at_value(&at, message);
            }
        }
    }
}

const SUPERVISORD_OPTIONS: &[&str] = &[
    "logfile",
    "environment",
    "nodaemon",
    "silent",
    "nocleanup",
    "minfds",
    "minprocs",
    "loglevel",
    "logfile_maxbytes",
    "logfile_backups",
    "strip_ansi",
    "pidfile",
    "umask",
    "user",
    "directory",
    "identifier",
    "childlogdir",
];
