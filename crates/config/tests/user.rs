//! `user`, in a program and for taskmaster itself, in YAML and in supervisord's INI: looked up
//! when the file is read (here in a list of accounts, for any uid the tests run as), refused
//! with its place when it names no account, or another account than taskmaster's own while
//! taskmaster is not root, and written back by `convert`.

use std::path::{Path, PathBuf};

use taskmaster_config::ini::{self, Host};
use taskmaster_config::{to_yaml, Accounts, Config, ConfigErrors, User};

fn user(name: &str, uid: u32, groups: &[u32]) -> User {
    User {
        name: name.to_string(),
        uid,
        gid: uid,
        groups: groups.to_vec(),
        home: PathBuf::from(format!("/home/{name}")),
        shell: PathBuf::from("/bin/bash"),
    }
}

/// The accounts of these tests, for a reader whose effective uid is `own_uid`.
fn accounts(own_uid: u32) -> Accounts {
    Accounts::listed(
        own_uid,
        vec![
            user("root", 0, &[0]),
            user("ann", 1000, &[1000, 27]),
            user("www-data", 33, &[33]),
        ],
    )
}

fn yaml(text: &str, own_uid: u32) -> Result<Config, ConfigErrors> {
    Config::parse_with(text, Path::new("t.yaml"), &accounts(own_uid))
}

fn ini(text: &str, own_uid: u32) -> Result<Config, ConfigErrors> {
    ini::parse_with(
        text,
        Path::new("/sv/t.conf"),
        &Host::default(),
        &accounts(own_uid),
    )
    .map(|ini| ini.config)
}

fn messages(result: Result<Config, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(config) => panic!("accepted as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn accepted(result: Result<Config, ConfigErrors>) -> Config {
    result.unwrap_or_else(|errors| panic!("{errors}"))
}

#[test]
fn a_programs_user_is_looked_up_by_name_or_uid() {
    let text = "programs:\n  web: {cmd: run, user: www-data}\n  api: {cmd: run, user: 1000}\n";
    let config = accepted(yaml(text, 0));
    assert_eq!(
        config.programs["web"].user.as_deref(),
        Some(&user("www-data", 33, &[33]))
    );
    assert_eq!(
        config.programs["api"].user.as_deref(),
        Some(&user("ann", 1000, &[1000, 27]))
    );
    assert_eq!(config.user, None);
    let config = accepted(yaml("programs:\n  web: {cmd: run}\n", 0));
    assert_eq!(config.programs["web"].user, None);
}

#[test]
fn a_user_that_does_not_exist_is_an_error_at_its_value() {
    assert_eq!(
        messages(yaml(
            "programs:\n  web:\n    cmd: run\n    user: nbody\n",
            0
        )),
        ["t.yaml:4:11: programs.web.user: no user \"nbody\" on this system"]
    );
    assert_eq!(
        messages(yaml("programs:\n  web:\n    cmd: run\n    user: 4242\n", 0)),
        ["t.yaml:4:11: programs.web.user: no user with uid 4242 on this system"]
    );
    assert_eq!(
        messages(yaml("programs:\n  web:\n    cmd: run\n    user:\n", 0)),
        ["t.yaml:4:5: programs.web.user: expected a user name or uid, found null"]
    );
    assert_eq!(
        messages(yaml("user: [ann]\nprograms: {}\n", 0)),
        ["t.yaml:1:7: user: expected a user name or uid, found a list"]
    );
}

#[test]
fn another_user_than_its_own_needs_taskmaster_to_run_as_root() {
    // ann may name herself, by name or by uid.
    let config = accepted(yaml(
        "programs:\n  web: {cmd: run, user: ann}\n  api: {cmd: run, user: 1000}\n",
        1000,
    ));
    assert_eq!(
        config.programs["web"].user.as_ref().map(|u| u.uid),
        Some(1000)
    );
    assert_eq!(
        messages(yaml("programs:\n  web:\n    cmd: run\n    user: www-data\n", 1000)),
        ["t.yaml:4:11: programs.web.user: taskmaster runs as uid 1000 (ann), not as root, so it \
          cannot run programs as \"www-data\" (supervisord: \"Can't drop privilege as nonroot \
          user\"); start taskmaster as root, or remove user"]
    );
}

#[test]
fn taskmasters_own_user_is_a_top_level_key() {
    let config = accepted(yaml("user: www-data\nprograms: {}\n", 0));
    assert_eq!(config.user, Some(Box::new(user("www-data", 33, &[33]))));
    // Root naming root, and anyone naming themselves, switch nothing: accepted.
    assert_eq!(
        accepted(yaml("user: root\n", 0)).user.map(|u| u.uid),
        Some(0)
    );
    assert_eq!(
        accepted(yaml("user: ann\n", 1000)).user.map(|u| u.uid),
        Some(1000)
    );
    assert_eq!(
        messages(yaml("user: root\n", 1000)),
        ["t.yaml:1:7: user: taskmaster runs as uid 1000 (ann), not as root, so it cannot switch \
          to \"root\" (supervisord: \"Can't drop privilege as nonroot user\"); start taskmaster \
          as root"]
    );
    assert_eq!(
        messages(yaml("user: www-data\n", 1000)),
        ["t.yaml:1:7: user: taskmaster runs as uid 1000 (ann), not as root, so it cannot switch \
          to \"www-data\" (supervisord: \"Can't drop privilege as nonroot user\"); start \
          taskmaster as root or as www-data"]
    );
}

#[test]
fn once_taskmaster_has_switched_away_from_root_its_programs_run_as_it() {
    // The top-level key may come after the programs.
    let text = "programs:\n  web: {cmd: run, user: www-data}\n  api: {cmd: run, user: ann}\n\
                user: ann\n";
    assert_eq!(
        messages(yaml(text, 0)),
        ["t.yaml:2:25: programs.web.user: taskmaster switches to \"ann\" (its own user) when it \
          starts, and then cannot run programs as \"www-data\": only root can; remove one of the \
          two"]
    );
    let config = accepted(yaml(
        "user: root\nprograms:\n  web: {cmd: run, user: ann}\n",
        0,
    ));
    assert_eq!(
        config.programs["web"].user.as_ref().map(|u| u.uid),
        Some(1000)
    );
}

#[test]
fn ini_user_is_a_programs_user() {
    let config = accepted(ini("[program:web]\ncommand=run\nuser=www-data\n", 0));
    assert_eq!(
        config.programs["web"].user.as_deref(),
        Some(&user("www-data", 33, &[33]))
    );
    // Expanded as supervisord expands it, once for the program.
    let config = accepted(ini(
        "[program:ann]\ncommand=run\nuser=%(program_name)s\n",
        0,
    ));
    assert_eq!(
        config.programs["ann"].user.as_ref().map(|u| u.uid),
        Some(1000)
    );
    assert_eq!(
        messages(ini("[program:web]\ncommand=run\nuser=nbody\n", 0)),
        ["/sv/t.conf:3:6: program:web.user: no user \"nbody\" on this system"]
    );
    assert_eq!(
        messages(ini("[program:web]\ncommand=run\nuser=www-data\n", 1000)),
        ["/sv/t.conf:3:6: program:web.user: taskmaster runs as uid 1000 (ann), not as root, so it \
          cannot run programs as \"www-data\" (supervisord: \"Can't drop privilege as nonroot \
          user\"); start taskmaster as root, or remove user"]
    );
}

#[test]
fn ini_supervisord_user_is_taskmasters_own() {
    let config = accepted(ini(
        "[supervisord]\nuser=root\n[program:web]\ncommand=run\n",
        0,
    ));
    assert_eq!(config.user.map(|u| u.name), Some("root".to_string()));
    assert_eq!(
        messages(ini("[supervisord]\nuser=root\n", 1000)),
        [
            "/sv/t.conf:2:6: supervisord.user: taskmaster runs as uid 1000 (ann), not as root, so \
          it cannot switch to \"root\" (supervisord: \"Can't drop privilege as nonroot user\"); \
          start taskmaster as root"
        ]
    );
    // [supervisord] comes after the program here: the check waits for every section.
    let text = "[program:web]\ncommand=run\nuser=www-data\n[supervisord]\nuser=ann\n";
    assert_eq!(
        messages(ini(text, 0)),
        ["/sv/t.conf:3:6: program:web.user: taskmaster switches to \"ann\" (its own user) when it \
          starts, and then cannot run programs as \"www-data\": only root can; remove one of the \
          two"]
    );
}

#[test]
fn convert_writes_user_back() {
    let config = accepted(ini(
        "[supervisord]\nuser=root\n[program:web]\ncommand=run\nuser=33\n",
        0,
    ));
    let text = to_yaml(&config);
    assert!(text.contains("\nuser: \"root\"\n"), "{text}");
    assert!(text.contains("\n    user: \"www-data\"\n"), "{text}");
    let back = Config::parse_with(&text, Path::new("/sv/t.conf"), &accounts(0))
        .unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    assert_eq!(back.user, config.user);
    assert_eq!(back.programs["web"].user, config.programs["web"].user);
}

#[test]
fn the_system_accounts_know_root() {
    let text = "programs:\n  web: {cmd: run, user: root}\n";
    let config = Config::parse_with(text, Path::new("t.yaml"), &Accounts::system().as_uid(0))
        .unwrap_or_else(|errors| panic!("{errors}"));
    let root = config.programs["web"].user.clone().expect("a user");
    assert_eq!((root.name.as_str(), root.uid, root.gid), ("root", 0, 0));
    assert!(root.groups.contains(&0), "{root:?}");
}
