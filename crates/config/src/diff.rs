//! Comparing two configurations into a reload plan.
//!
//! A reload (SIGHUP, or `reload` in the shell) must leave unchanged programs running, so the
//! supervisor needs to know, per program name, what happened between the configuration it
//! runs and the one just read. The comparison is the whole [`ProgramSpec`]: any field that
//! differs, however small (`stoptime` included), makes the program `changed`; for each changed
//! program the plan also says which of its settings a reload applies in place and which
//! restart it ([`ProgramSpec::changes`], which the supervisor applies process by process), so
//! that `reread` can tell before a reload what the reload will do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Config, ProgramSpec};

/// What a reload does, by program name; each list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadPlan {
    /// In the new configuration only.
    pub added: Vec<String>,
    /// In both, with a different [`crate::ProgramSpec`].
    pub changed: Vec<String>,
    /// In the old configuration only.
    pub removed: Vec<String>,
    /// In both, identical.
    pub unchanged: Vec<String>,
    /// For each program of `changed`: the settings that changed, sorted as a reload applies
    /// them.
    #[serde(default)]
    pub settings: BTreeMap<String, ChangedSettings>,
}

/// The settings of a changed program, as a reload applies them to its running processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedSettings {
    /// Applied to the running processes in place, without a restart.
    pub in_place: Vec<String>,
    /// Settings that restart the processes.
    pub restart: Vec<String>,
}

impl ChangedSettings {
    /// What changes from the program `old` to the program `new`: [`ProgramSpec::changes`],
    /// and its processes: a pool that grows or shrinks (`numprocs`) leaves those it keeps
    /// alone, while a new `numprocs_start` renames, and so replaces, each one.
    pub fn between(old: &ProgramSpec, new: &ProgramSpec) -> ChangedSettings {
        let change = old.changes(new);
        let mut settings = ChangedSettings {
            in_place: change.in_place.iter().map(|s| s.to_string()).collect(),
            restart: change.restart.iter().map(|s| s.to_string()).collect(),
        };
        if old.numprocs != new.numprocs {
            settings.in_place.push("numprocs".to_string());
        }
        if old.numprocs_start != new.numprocs_start {
            settings.restart.push("numprocs_start".to_string());
        }
        settings
    }

    /// In words, as `reread` says it: `in place: autorestart, stoptime; restart: cmd`, each
    /// part only when it has settings ("" for none).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [("in place", &self.in_place), ("restart", &self.restart)]
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(how, names)| format!("{how}: {}", names.join(", ")))
            .collect();
        parts.join("; ")
    }
}

impl ReloadPlan {
    /// Whether the reload changes nothing: no program added, changed or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// What the reload changes, in words: `added api; changed web, db; removed old`, or
    /// `nothing changed`. The event log and the shell both say it this way.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "nothing changed".to_string();
        }
        let parts: Vec<String> = [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(what, names)| format!("{what} {}", names.join(", ")))
        .collect();
        parts.join("; ")
    }
}

/// Compares the running configuration `old` with the freshly read `new`.
pub fn diff(old: &Config, new: &Config) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    // Both maps are BTreeMaps, so every list comes out in name order.
    for (name, spec) in &new.programs {
        match old.programs.get(name) {
            None => plan.added.push(name.clone()),
            Some(old_spec) if old_spec != spec => {
                plan.changed.push(name.clone());
                plan.settings
                    .insert(name.clone(), ChangedSettings::between(old_spec, spec));
            }
            Some(_) => plan.unchanged.push(name.clone()),
        }
    }
    plan.removed = old
        .programs
        .keys()
        .filter(|name| !new.programs.contains_key(*name))
        .cloned()
        .collect();
    plan
}

/// Keeps in `new` the settings of `old` that a reload cannot change: the control socket, who may
/// use it, and the TCP listener (bound once), the event log, its rotation and level (opened
/// once), the pair's heartbeat (agreed with the backup), taskmaster's own `user` (switched to
/// once), and what the daemon did to itself at start (pid file, umask, directory, resource
/// limits). Returns the keys the file changed, whose new values
/// wait for a restart, so that what `new` says is what is in force.
pub fn keep_fixed_settings(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut waiting = Vec::new();
    let mut keep = |key| waiting.push(key);
    keep_old(&mut new.socket, &old.socket, "socket", &mut keep);
    keep_old(&mut new.http, &old.http, "http", &mut keep);
    keep_old(&mut new.logfile, &old.logfile, "logfile", &mut keep);
    let rotation = "logfile_maxbytes/logfile_backups";
    keep_old(
        &mut new.log_rotation,
        &old.log_rotation,
        rotation,
        &mut keep,
    );
    keep_old(&mut new.pair, &old.pair, "pair", &mut keep);
    keep_old(&mut new.user, &old.user, "user", &mut keep);
    let (daemon, old_daemon) = (&mut new.daemon, &old.daemon);
    let access = "socket_mode/socket_owner/socket_username/socket_password";
    keep_old(
        &mut daemon.socket_access,
        &old_daemon.socket_access,
        access,
        &mut keep,
    );
    // What the daemon did to itself at start, and its event log's level.
    keep_old(
        &mut daemon.pidfile,
        &old_daemon.pidfile,
        "pidfile",
        &mut keep,
    );
    keep_old(
        &mut daemon.loglevel,
        &old_daemon.loglevel,
        "loglevel",
        &mut keep,
    );
    // The store client and this node's name are the daemon's from its start.
    keep_old(
        &mut daemon.cluster,
        &old_daemon.cluster,
        "cluster",
        &mut keep,
    );
    keep_old(&mut daemon.umask, &old_daemon.umask, "umask", &mut keep);
    keep_old(
        &mut daemon.directory,
        &old_daemon.directory,
        "directory",
        &mut keep,
    );
    let limits = (old_daemon.minfds, old_daemon.minprocs);
    let mut new_limits = (daemon.minfds, daemon.minprocs);
    keep_old(&mut new_limits, &limits, "minfds/minprocs", &mut keep);
    (daemon.minfds, daemon.minprocs) = new_limits;
    waiting
}

/// Puts `old` back in `new` when the file changed it, and says `key` waits for a restart.
fn keep_old<T: PartialEq + Clone>(
    new: &mut T,
    old: &T,
    key: &'static str,
    waiting: &mut impl FnMut(&'static str),
) {
    if new != old {
        new.clone_from(old);
        waiting(key);
    }
}

#[cfg(test)]
mod fixed_settings_tests {
    use super::*;

    fn config(text: &str) -> Config {
        let root = crate::User {
            name: "root".to_string(),
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: "/root".into(),
            shell: "/bin/sh".into(),
        };
        let accounts = crate::Accounts::listed(0, vec![root]);
        Config::parse_with(text, std::path::Path::new("/etc/tm/t.yaml"), &accounts)
            .expect("a valid configuration")
    }

    #[test]
    fn settings_bound_at_start_keep_their_old_values_and_are_named() {
        let old = config("programs:\n  web: {cmd: a}\n");
        let mut new = config(
            "socket: /run/other.sock\nlogfile: /var/log/tm.log\nlogfile_backups: 3\n\
             pair: {interval: 1s}\nhttp: {listen: \"127.0.0.1:9001\"}\nuser: root\n\
             programs:\n  web: {cmd: b}\n",
        );
        let waiting = keep_fixed_settings(&old, &mut new);
        assert_eq!(
            waiting,
            [
                "socket",
                "http",
                "logfile",
                "logfile_maxbytes/logfile_backups",
                "pair",
                "user"
            ]
        );
        let mut expected = old.clone();
        expected.programs = new.programs.clone();
        assert_eq!(new, expected, "everything but the programs is as it was");
        assert!(keep_fixed_settings(&old, &mut old.clone()).is_empty());
    }

    #[test]
    fn what_the_daemon_did_to_itself_at_start_waits_for_a_restart_and_identifier_does_not() {
        let old = config("programs:\n  web: {cmd: a}\n");
        let mut new = config(
            "pidfile: /run/tm.pid\nloglevel: warn\numask: 077\ndirectory: /srv\nminfds: 4096\n\
             socket_mode: \"0660\"\nidentifier: shop\nprograms:\n  web: {cmd: a}\n",
        );
        let waiting = keep_fixed_settings(&old, &mut new);
        assert_eq!(
            waiting,
            [
                "socket_mode/socket_owner/socket_username/socket_password",
                "pidfile",
                "loglevel",
                "umask",
                "directory",
                "minfds/minprocs"
            ]
        );
        assert_eq!(new.daemon.identifier, "shop");
        new.daemon.identifier = old.daemon.identifier.clone();
        assert_eq!(new, old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        match Config::parse(text, Path::new("/etc/taskmaster.yaml")) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn diff_sorts_programs_into_added_changed_removed_and_unchanged() {
        let old = config(
            "programs:\n  web: {cmd: a}\n  zeta: {cmd: z}\n  gone: {cmd: g}\n  alpha: {cmd: x}\n",
        );
        let new = config(
            "programs:\n  zeta: {cmd: z, stoptime: 11}\n  web: {cmd: a}\n  new: {cmd: n}\n  alpha: {cmd: x, numprocs: 2}\n  beta: {cmd: b}\n",
        );
        let plan = diff(&old, &new);
        assert_eq!(plan.added, ["beta", "new"]);
        assert_eq!(plan.changed, ["alpha", "zeta"]);
        assert_eq!(plan.removed, ["gone"]);
        assert_eq!(plan.unchanged, ["web"]);
        assert!(!plan.is_empty());
    }

    #[test]
    fn the_plan_says_per_changed_program_what_changes_in_place_and_what_restarts_it() {
        let old =
            config("programs:\n  web: {cmd: a, stoptime: 1}\n  db: {cmd: b}\n  pool: {cmd: p}\n");
        let new = config(
            "programs:\n  web: {cmd: a2, stoptime: 2, autorestart: never}\n  db: {cmd: b, stoptime: 3}\n  pool: {cmd: p, numprocs: 2, process_name: \"p%(process_num)d\"}\n",
        );
        let plan = diff(&old, &new);
        let settings = |name: &str| plan.settings.get(name).cloned().unwrap_or_default();
        assert_eq!(settings("web").in_place, ["autorestart", "stoptime"]);
        assert_eq!(settings("web").restart, ["cmd"]);
        assert_eq!(
            settings("web").describe(),
            "in place: autorestart, stoptime; restart: cmd"
        );
        assert_eq!(settings("db").describe(), "in place: stoptime");
        assert_eq!(settings("pool").in_place, ["process_name", "numprocs"]);
        assert_eq!(plan.settings.len(), plan.changed.len());
    }

    #[test]
    fn a_rotation_turned_on_or_off_restarts_and_a_new_size_does_not() {
        let with = |maxbytes: &str| {
            config(&format!(
                "programs:\n  web: {{cmd: a, stdout: web.log, stdout_maxbytes: {maxbytes}}}\n"
            ))
        };
        let settings = |old: &str, new: &str| {
            let plan = diff(&with(old), &with(new));
            plan.settings.get("web").cloned().unwrap_or_default()
        };
        // 1MB to 2MB: taskmaster's capture rotates at the new size.
        assert_eq!(settings("1MB", "2MB").describe(), "in place: rotation");
        // 0 to 1MB and back: the process wrote the file itself, or will.
        assert_eq!(settings("0", "1MB").describe(), "restart: rotation");
        assert_eq!(settings("1MB", "0").describe(), "restart: rotation");
    }

    #[test]
    fn identical_configurations_give_an_empty_plan() {
        let text = "programs:\n  web: {cmd: a}\n  db: {cmd: b}\n";
        let plan = diff(&config(text), &config(text));
        assert!(plan.is_empty());
        assert_eq!(plan.unchanged, ["db", "web"]);
    }

    #[test]
    fn any_field_change_makes_a_program_changed() {
        let base = "programs:\n  web:\n    cmd: a\n";
        for extra in [
            "    env: {A: b}\n",
            "    umask: 077\n",
            "    stopsignal: INT\n",
            "    stdout: out.log\n",
            "    autostart: false\n",
        ] {
            let text = format!("{base}{extra}");
            let Ok(new) = Config::parse(&text, Path::new("/etc/taskmaster.yaml")) else {
                continue;
            };
            assert_eq!(diff(&config(base), &new).changed, ["web"], "{extra}");
        }
    }

    #[test]
    fn changing_the_watchdog_makes_a_program_changed() {
        let old = config("programs:\n  web: {cmd: a, watchdog: 5s}\n  db: {cmd: b}\n");
        let new = config("programs:\n  web: {cmd: a, watchdog: 6s}\n  db: {cmd: b}\n");
        let plan = diff(&old, &new);
        assert_eq!(plan.changed, ["web"]);
        assert_eq!(plan.unchanged, ["db"]);
        let without = config("programs:\n  web: {cmd: a}\n  db: {cmd: b}\n");
        assert_eq!(diff(&old, &without).changed, ["web"]);
    }

    #[test]
    fn sending_a_stream_to_syslog_or_moving_the_socket_makes_its_programs_changed() {
        let old = config("programs:\n  web: {cmd: a, stdout: syslog}\n  db: {cmd: b}\n");
        let to_syslog =
            config("programs:\n  web: {cmd: a, stdout: syslog}\n  db: {cmd: b, stderr: syslog}\n");
        assert_eq!(diff(&old, &to_syslog).changed, ["db"]);
        let moved = config(
            "syslog_socket: /run/log\nprograms:\n  web: {cmd: a, stdout: syslog}\n  db: {cmd: b}\n",
        );
        let plan = diff(&old, &moved);
        assert_eq!(plan.changed, ["web"]);
        assert_eq!(plan.unchanged, ["db"]);
        let beside = config(
            "programs:\n  web: {cmd: a, stdout: syslog, stdout_syslog: true}\n  db: {cmd: b}\n",
        );
        assert!(diff(&old, &beside).is_empty());
    }

    #[test]
    fn empty_plan_when_only_unchanged() {
        let plan = ReloadPlan {
            unchanged: vec!["web".into()],
            ..ReloadPlan::default()
        };
        assert!(plan.is_empty());
    }
}

#[cfg(test)]
mod summary_tests {
    use super::ReloadPlan;

    #[test]
    fn summary_names_each_kind_of_change_present() {
        let plan = ReloadPlan {
            added: vec!["api".into()],
            changed: vec!["db".into(), "web".into()],
            removed: vec![],
            unchanged: vec!["x".into()],
            ..ReloadPlan::default()
        };
        assert_eq!(plan.summary(), "added api; changed db, web");
        assert_eq!(ReloadPlan::default().summary(), "nothing changed");
    }
}
