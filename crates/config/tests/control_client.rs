//! `ControlClient::load`: how `taskmaster ctl -c FILE` finds the daemon, reading only the keys
//! it needs of a YAML file, checked as the daemon checks them.

use taskmaster_config::{ControlClient, Credentials};

/// `text` written as `name` in a fresh folder, loaded as a control client.
fn load(name: &str, text: &str) -> (tempfile::TempDir, Result<ControlClient, String>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the file");
    let loaded = ControlClient::load(&path).map_err(|e| e.to_string());
    (dir, loaded)
}

#[test]
fn the_socket_defaults_to_the_files_folder_and_follows_socket() {
    let (dir, loaded) = load("t.yaml", "programs:\n  web: {cmd: run}\n");
    let client = loaded.expect("loaded");
    assert_eq!(client.socket, dir.path().join("taskmaster.sock"));
    assert_eq!(client.credentials, None);
    let (dir, loaded) = load(
        "t.yaml",
        "socket: run/tm.sock\nsocket_username: ops\nsocket_password: s3cret\n",
    );
    let client = loaded.expect("loaded");
    assert_eq!(client.socket, dir.path().join("run/tm.sock"));
    let expected = Credentials {
        username: "ops".to_string(),
        password: "s3cret".to_string(),
    };
    assert_eq!(client.credentials, Some(expected));
}

#[test]
fn the_rest_of_the_file_is_not_validated() {
    // A program the daemon would refuse (unknown key, unknown user) does not stop a client.
    let text =
        "socket: tm.sock\nprograms:\n  web: {cmd: run, colour: blue, user: no-such-user-here}\n";
    let (dir, loaded) = load("t.yaml", text);
    assert_eq!(loaded.expect("loaded").socket, dir.path().join("tm.sock"));
    // Hashed passwords are the daemon's to check, not sent.
    let text = "socket_username: ops\nsocket_password: \"{SHA}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4\"\n";
    let (_dir, loaded) = load("t.yaml", text);
    assert_eq!(loaded.expect("loaded").credentials, None);
}

#[test]
fn the_keys_it_reads_are_checked_at_their_place() {
    let (_dir, loaded) = load("t.yaml", "socket: \"\"\n");
    let error = loaded.expect_err("an empty socket path");
    assert!(
        error.contains("t.yaml:1:9: socket: expected a path"),
        "{error}"
    );
    let (_dir, loaded) = load("t.yaml", "socket_username: ops\n");
    let error = loaded.expect_err("half the credentials");
    assert!(error.contains("socket_password is missing"), "{error}");
    let (_dir, loaded) = load("t.yaml", "programs: [\n");
    assert!(loaded.is_err(), "YAML syntax is still checked");
}
