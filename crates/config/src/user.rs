//! `user`: the account a program (or taskmaster itself) runs as, looked up once, when the
//! configuration is read.
//!
//! A [`User`] holds everything a switch needs, so that nothing past the configuration looks
//! anything up: the uid, the primary group, every group the account belongs to (what
//! `initgroups` would set), and the home folder and shell its children are told about.
//! [`Accounts`] is where names are looked up: the system's password and group databases
//! ([`Accounts::system`]), or a list a test gives.
//!
//! Only root can run something as another user. A file that asks for another user when
//! taskmaster does not run as root is refused when it is read, with the reason (supervisord
//! says "Can't drop privilege as nonroot user" when it spawns); so is a program whose `user`
//! differs from the one taskmaster itself switches to (top-level `user`, `[supervisord]
//! user`), unless that is root: once taskmaster has given up root it cannot switch again.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::values::quote;

/// An account, as the password and group databases describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The login name (`nobody`), also when the file gave a uid.
    pub name: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Every group the account is in, the primary one included: the supplementary groups a
    /// process running as it gets (`getgrouplist`, what `initgroups` sets).
    pub groups: Vec<u32>,
    /// Its home folder: the child's `HOME`.
    pub home: PathBuf,
    /// Its login shell: the child's `SHELL`.
    pub shell: PathBuf,
}

/// Where `user` values are looked up, and who taskmaster runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// The effective uid of the process reading the configuration.
    own_uid: u32,
    source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The system's databases (NSS: /etc/passwd, /etc/group, LDAP...).
    System,
    /// These accounts and no others.
    Listed(Vec<User>),
}

impl Accounts {
    /// The system's password and group databases, as the process reading the configuration
    /// (its effective uid) sees them.
    pub fn system() -> Accounts {
        Accounts {
            own_uid: nix::unistd::geteuid().as_raw(),
            source: Source::System,
        }
    }

    /// Only `users`, read by a process whose effective uid is `own_uid`: for tests.
    pub fn listed(own_uid: u32, users: Vec<User>) -> Accounts {
        Accounts {
            own_uid,
            source: Source::Listed(users),
        }
    }

    /// Whether the process reading the configuration is root (which may raise any limit).
    pub(crate) fn is_root(&self) -> bool {
        self.own_uid == 0
    }

    /// The same accounts, for a configuration meant to be run by `uid` rather than by this
    /// process (`taskmaster convert` checks as root would).
    pub fn as_uid(self, uid: u32) -> Accounts {
        Accounts {
            own_uid: uid,
            ..self
        }
    }

    /// The effective uid the configuration is checked for.
    pub fn own_uid(&self) -> u32 {
        self.own_uid
    }

    /// The account `text` names: a login name, or a uid in decimal digits (as supervisord,
    /// digits are a uid). The error is the message to show at the value.
    pub fn find(&self, text: &str) -> Result<User, String> {
        if text.is_empty() {
            return Err("expected a user name or uid, found \"\"".to_string());
        }
        let uid = text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse::<u32>().ok())
            .flatten();
        let found = match &self.source {
            Source::System => system_lookup(text, uid)?,
            Source::Listed(users) => users
                .iter()
                .find(|user| match uid {
                    Some(uid) => user.uid == uid,
                    None => user.name == text,
                })
                .cloned(),
        };
        found.ok_or_else(|| match uid {
            Some(uid) => format!("no user with uid {uid} on this system"),
            None => format!("no user {} on this system", quote(text)),
        })
    }

    /// `uid 1000 (ann)`, or `uid 1000` for a uid without an account.
    fn describe(&self, uid: u32) -> String {
        match self.find(&uid.to_string()) {
            Ok(user) => format!("uid {uid} ({})", user.name),
            Err(_) => format!("uid {uid}"),
        }
    }

    /// Why taskmaster cannot switch itself to `user` (top-level `user`, `[supervisord]
    /// user`), if it cannot: only root can switch, and naming one's own user is no switch.
    pub(crate) fn daemon_refusal(&self, user: &User) -> Option<String> {
        if self.own_uid == 0 || self.own_uid == user.uid {
            return None;
        }
        let start_as = match user.uid {
            0 => "root".to_string(),
            _ => format!("root or as {}", user.name),
        };
        Some(format!(
            "taskmaster runs as {}, not as root, so it cannot switch to {} (supervisord: \
             \"Can't drop privilege as nonroot user\"); start taskmaster as {start_as}",
            self.describe(self.own_uid),
            quote(&user.name),
        ))
    }

    /// Why a program cannot run as `user` under a taskmaster that runs as itself, or as
    /// `daemon` once it has switched to it, if it cannot.
    pub(crate) fn program_refusal(&self, daemon: Option<&User>, user: &User) -> Option<String> {
        let runs_as = daemon.map_or(self.own_uid, |daemon| daemon.uid);
        if runs_as == 0 || runs_as == user.uid {
            return None;
        }
        Some(match daemon {
            Some(daemon) if daemon.uid != self.own_uid => format!(
                "taskmaster switches to {} (its own user) when it starts, and then cannot run \
                 programs as {}: only root can; remove one of the two",
                quote(&daemon.name),
                quote(&user.name)
            ),
            _ => format!(
                "taskmaster runs as {}, not as root, so it cannot run programs as {} \
                 (supervisord: \"Can't drop privilege as nonroot user\"); start taskmaster as \
                 root, or remove user",
                self.describe(runs_as),
                quote(&user.name)
            ),
        })
    }
}

/// Looks `text` up in the system's databases: by uid when it is one, else by name.
fn system_lookup(text: &str, uid: Option<u32>) -> Result<Option<User>, String> {
    use nix::unistd::{getgrouplist, Uid};
    let found = match uid {
        Some(uid) => nix::unistd::User::from_uid(Uid::from_raw(uid)),
        None => nix::unistd::User::from_name(text),
    };
    let entry = match found {
        Ok(Some(entry)) => entry,
        Ok(None) => return Ok(None),
        Err(errno) => {
            return Err(format!(
                "cannot look up user {}: {}",
                quote(text),
                errno.desc()
            ))
        }
    };
    // A name from the database holds no NUL; refused rather than trusted all the same.
    let name = std::ffi::CString::new(entry.name.as_bytes())
        .map_err(|_| format!("the user database names {} with a NUL", quote(text)))?;
    let groups = getgrouplist(&name, entry.gid).map_err(|errno| {
        format!(
            "cannot list the groups of user {}: {}",
            quote(&entry.name),
            errno.desc()
        )
    })?;
    Ok(Some(User {
        name: entry.name,
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
        groups: groups.into_iter().map(|gid| gid.as_raw()).collect(),
        home: entry.dir,
        shell: entry.shell,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u32) -> User {
        User {
            name: name.to_string(),
            uid,
            gid: uid,
            groups: vec![uid],
            home: PathBuf::from(format!("/home/{name}")),
            shell: PathBuf::from("/bin/sh"),
        }
    }

    fn accounts(own_uid: u32) -> Accounts {
        Accounts::listed(
            own_uid,
            vec![user("root", 0), user("ann", 1000), user("bob", 1001)],
        )
    }

    #[test]
    fn a_user_is_found_by_name_or_by_uid() {
        let accounts = accounts(0);
        assert_eq!(accounts.find("ann"), Ok(user("ann", 1000)));
        assert_eq!(accounts.find("1001"), Ok(user("bob", 1001)));
        assert_eq!(
            accounts.find("nbody"),
            Err("no user \"nbody\" on this system".to_string())
        );
        assert_eq!(
            accounts.find("4242"),
            Err("no user with uid 4242 on this system".to_string())
        );
        assert_eq!(
            accounts.find(""),
            Err("expected a user name or uid, found \"\"".to_string())
        );
    }

    #[test]
    fn root_may_run_anything_as_anyone() {
        let accounts = accounts(0);
        assert_eq!(accounts.daemon_refusal(&user("ann", 1000)), None);
        assert_eq!(accounts.daemon_refusal(&user("root", 0)), None);
        assert_eq!(accounts.program_refusal(None, &user("bob", 1001)), None);
        let root = user("root", 0);
        assert_eq!(
            accounts.program_refusal(Some(&root), &user("bob", 1001)),
            None
        );
    }

    #[test]
    fn another_user_than_ones_own_needs_root() {
        let accounts = accounts(1000);
        assert_eq!(accounts.daemon_refusal(&user("ann", 1000)), None);
        assert_eq!(accounts.program_refusal(None, &user("ann", 1000)), None);
        assert_eq!(
            accounts
                .program_refusal(None, &user("bob", 1001))
                .as_deref(),
            Some(
                "taskmaster runs as uid 1000 (ann), not as root, so it cannot run programs as \
                 \"bob\" (supervisord: \"Can't drop privilege as nonroot user\"); start \
                 taskmaster as root, or remove user"
            )
        );
        assert_eq!(
            accounts.daemon_refusal(&user("root", 0)).as_deref(),
            Some(
                "taskmaster runs as uid 1000 (ann), not as root, so it cannot switch to \
                 \"root\" (supervisord: \"Can't drop privilege as nonroot user\"); start \
                 taskmaster as root"
            )
        );
    }

    #[test]
    fn once_switched_away_from_root_taskmaster_runs_programs_only_as_itself() {
        let accounts = accounts(0);
        let ann = user("ann", 1000);
        assert_eq!(
            accounts.program_refusal(Some(&ann), &user("ann", 1000)),
            None
        );
        assert_eq!(
            accounts
                .program_refusal(Some(&ann), &user("bob", 1001))
                .as_deref(),
            Some(
                "taskmaster switches to \"ann\" (its own user) when it starts, and then cannot \
                 run programs as \"bob\": only root can; remove one of the two"
            )
        );
    }

    #[test]
    fn the_system_database_knows_root() {
        let accounts = Accounts::system();
        let root = accounts.find("root").expect("root has an account");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
        assert_eq!(accounts.find("0").map(|user| user.name), Ok(root.name));
        assert!(accounts.find("no-such-user-here").is_err());
    }
}
