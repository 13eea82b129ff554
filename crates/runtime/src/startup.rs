//! What the daemon does to itself at start and at exit besides supervising, as supervisord
//! does with its `[supervisord]` options: resource limits raised (`minfds`, `minprocs`), its
//! umask and working directory set (`umask`, `directory`: every child that sets none inherits
//! them), its pid file written and removed (`pidfile`), and the AUTO log files removed at exit
//! (unless `nocleanup`). Also the lookup of a socket owner's names (`chown`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use taskmaster_config::{os_reason, DaemonSettings, Owner};

/// Applies `settings` to this process: limits, umask, directory. Returns what it changed, in
/// words for the event log; an error says why taskmaster cannot start, as supervisord refuses
/// to start when it cannot raise a limit to what the file asks.
pub(crate) fn apply(settings: &DaemonSettings) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let limits = [
        (
            settings.minfds,
            Resource::Nofile,
            "RLIMIT_NOFILE",
            "minfds",
            "-n",
        ),
        (
            settings.minprocs,
            Resource::Nproc,
            "RLIMIT_NPROC",
            "minprocs",
            "-u",
        ),
    ];
    for (min, resource, name, option, flag) in limits {
        if let Some(min) = min {
            done.extend(raise(resource, min, name, option, flag)?);
        }
    }
    if let Some(umask) = settings.umask {
        let mode = rustix::fs::Mode::from_bits_truncate(umask);
        let old = rustix::process::umask(mode);
        done.push(format!("umask set to {umask:03o} (was {:03o})", old.bits()));
    }
    if let Some(directory) = &settings.directory {
        std::env::set_current_dir(directory).map_err(|e| {
            format!(
                "cannot change to the directory {} (directory): {}",
                directory.display(),
                os_reason(&e)
            )
        })?;
        done.push(format!("working directory set to {}", directory.display()));
    }
    Ok(done)
}

/// Raises `resource`'s soft limit to `min` if it is lower (and its hard limit too, which only
/// root may do, when that is lower).
fn raise(
    resource: Resource,
    min: u64,
    name: &str,
    option: &str,
    flag: &str,
) -> Result<Option<String>, String> {
    let Rlimit { current, maximum } = getrlimit(resource);
    // `None` is unlimited.
    let Some(soft) = current.filter(|&soft| soft < min) else {
        return Ok(None);
    };
    let hard = maximum.map(|hard| hard.max(min));
    let wanted = Rlimit {
        current: Some(min),
        maximum: hard,
    };
    match setrlimit(resource, wanted) {
        Ok(()) => Ok(Some(format!(
            "{name} raised from {soft} to {min} ({option} = {min})"
        ))),
        Err(e) => {
            let e = os_reason(&std::io::Error::from(e));
            let hard = maximum.map_or_else(|| "unlimited".to_string(), |h| h.to_string());
            Err(format!(
                "{option} = {min} asks for {name} of at least {min}, but its hard limit is \
                 {hard} and taskmaster cannot raise it ({e}): raise the limit where taskmaster \
                 is started (ulimit {flag}, or the service manager's setting) or lower {option}"
            ))
        }
    }
}

/// How many descriptors a daemon of `config`'s processes may hold at once: a few of its own,
/// and per child up to three pipes, a pidfd when a backup took it over, and the copies a
/// hand-over to a backup makes.
fn descriptors_needed(config: &taskmaster_config::Config) -> u64 {
    let processes: usize = config.programs.values().map(|p| p.processes.len()).sum();
    64 + 6 * processes as u64
}

/// Raises this process's own RLIMIT_NOFILE soft limit to its hard limit when it is below what
/// `config` needs ([`descriptors_needed`]), as Go programs and systemd's advice do: 10,000
/// programs need more than the usual soft 1,024. The limit it had (after `minfds`) is returned, for the children: they get it
/// back before their exec (a program that still uses select() breaks above 1,024), which
/// costs each spawn a fork instead of posix_spawn; so a configuration that fits the limit
/// changes nothing. `None` if nothing changed.
pub(crate) fn raise_own_nofile(config: &taskmaster_config::Config) -> Option<Rlimit> {
    let needed = descriptors_needed(config);
    let before = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (before.current, before.maximum) else {
        return None;
    };
    if soft >= needed || soft >= hard {
        return None;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    setrlimit(Resource::Nofile, raised).ok()?;
    Some(before)
}

/// A socket owner's uid and gid: `user` (a name or a number) and `group` (likewise), the
/// user's primary group when no group is given, as supervisord's `chown` reads them.
pub fn owner_ids(owner: &Owner) -> Result<(u32, u32), String> {
    use nix::unistd::{Gid, Group, Uid, User};
    let lookup = |e: nix::Error| {
        let e = std::io::Error::from(e);
        format!("cannot read the user database: {}", os_reason(&e))
    };
    let (uid, primary) = match owner.user.parse::<u32>() {
        Ok(uid) => {
            let user = User::from_uid(Uid::from_raw(uid)).map_err(lookup)?;
            (uid, user.map(|user| user.gid.as_raw()))
        }
        Err(_) => match User::from_name(&owner.user).map_err(lookup)? {
            Some(user) => (user.uid.as_raw(), Some(user.gid.as_raw())),
            None => return Err(format!("no user named {:?}", owner.user)),
        },
    };
    let gid = match &owner.group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => Gid::from_raw(gid).as_raw(),
            Err(_) => match Group::from_name(group).map_err(lookup)? {
                Some(group) => group.gid.as_raw(),
                None => return Err(format!("no group named {group:?}")),
            },
        },
        None => primary.ok_or_else(|| {
            format!("uid {uid} is not in the user database, so it has no group: write {uid}:GROUP")
        })?,
    };
    Ok((uid, gid))
}

/// The pid file: written at start with this process's pid, removed at exit if it still
/// holds it.
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the pid (and a newline) to `path` atomically: into a file beside it, then
    /// renamed over it, so that a reader never sees it half written.
    pub(crate) fn write(path: &Path) -> std::io::Result<PidFile> {
        let pid = std::process::id();
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{pid}.tmp"));
        let temporary = PathBuf::from(temporary);
        let written = std::fs::File::create(&temporary)
            .and_then(|mut file| file.write_all(format!("{pid}\n").as_bytes()))
            .and_then(|()| std::fs::rename(&temporary, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written.map(|()| PidFile {
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still names this process (a pair's new primary may have
    /// written its own since).
    pub(crate) fn remove(self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes AUTO log files and their rotated copies (`x.log.1`, `x.log.2`...). Returns what
/// could not be removed, in words.
pub(crate) fn remove_auto_logs(files: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let entry_name = entry.file_name();
            let entry_name = entry_name.to_string_lossy();
            let rotated = entry_name
                .strip_prefix(&*name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if entry_name != name && !rotated {
                continue;
            }
            let path = entry.path();
            if let Err(e) = std::fs::remove_file(&path) {
                failures.push(format!(
                    "cannot remove the AUTO log file {}: {}",
                    path.display(),
                    os_reason(&e)
                ));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_pid_and_is_removed_only_while_it_does() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("tm.pid");
        let pidfile = PidFile::write(&path).expect("written");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{}\n", std::process::id())
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
        pidfile.remove();
        assert!(!path.exists());
        // Another process's pid (a pair's new primary) stays.
        let pidfile = PidFile::write(&path).expect("written");
        std::fs::write(&path, "1\n").expect("write");
        pidfile.remove();
        assert!(path.exists());
    }

    #[test]
    fn auto_logs_go_with_their_rotated_copies_only() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("web-stdout---supervisor-abc.log");
        for name in [
            "web-stdout---supervisor-abc.log",
            "web-stdout---supervisor-abc.log.1",
            "web-stdout---supervisor-abc.log.12",
            "web-stdout---supervisor-abc.log.old",
            "web-stdout---supervisor-abcd.log",
        ] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        assert_eq!(remove_auto_logs(&[file].into()), Vec::<String>::new());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "web-stdout---supervisor-abc.log.old",
                "web-stdout---supervisor-abcd.log"
            ]
        );
    }

    #[test]
    fn an_owner_is_looked_up_by_name_or_number() {
        let root = Owner {
            user: "root".to_string(),
            group: None,
        };
        assert_eq!(owner_ids(&root), Ok((0, 0)));
        let numbers = Owner {
            user: "0".to_string(),
            group: Some("0".to_string()),
        };
        assert_eq!(owner_ids(&numbers), Ok((0, 0)));
        let nobody = Owner {
            user: "no-such-user-here".to_string(),
            group: None,
        };
        assert_eq!(
            owner_ids(&nobody),
            Err("no user named \"no-such-user-here\"".to_string())
        );
    }
}
