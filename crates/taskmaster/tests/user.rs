//! `user` on real processes: a program (and its health check and `on_exit` hook) running as
//! `nobody` with nobody's groups and login variables, its log file still written; the same
//! from a supervisord.conf, with `[supervisord] user=root`; taskmaster itself switching to
//! nobody (top-level `user`); and the errors `check` gives for a user that does not exist or
//! that taskmaster may not become.
//!
//! Running something as another user needs root. CI runs the tests as root; a test that needs
//! root says so on stderr and passes without checking anything when it does not run as root.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    fixture_bin, read_report, run_to_completion, shell_quote, taskmaster_bin, yaml_quote, Sandbox,
    Taskmaster, TIMEOUT,
};

/// Whether the test runs as root; if not, says that `test` is skipped, and why.
fn runs_as_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!(
        "skipped {test}: running a program as another user needs root, and these tests do not \
         run as root (CI runs them as root)"
    );
    false
}

/// What the system's databases say of `nobody`, asked through `getent` and `id`.
struct Account {
    uid: u32,
    gid: u32,
    /// Every group it is in, sorted: what the child's supplementary groups must be.
    groups: Vec<u32>,
    home: String,
    shell: String,
}

fn nobody() -> Account {
    let output = |program: &str, args: &[&str]| -> String {
        let mut command = Command::new(program);
        command.args(args);
        let output = run_to_completion(command, TIMEOUT);
        assert!(output.status.success(), "{program} {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let entry = output("getent", &["passwd", "nobody"]);
    let fields: Vec<&str> = entry.split(':').collect();
    assert_eq!(fields.len(), 7, "a passwd entry: {entry:?}");
    let number = |text: &str| -> u32 { text.parse().expect("a number") };
    let mut groups: Vec<u32> = output("id", &["-G", "nobody"])
        .split_whitespace()
        .map(number)
        .collect();
    groups.sort_unstable();
    Account {
        uid: number(fields[2]),
        gid: number(fields[3]),
        groups,
        home: fields[5].to_string(),
        shell: fields[6].to_string(),
    }
}

/// A sandbox nobody can work in: the sandbox itself is root's, and nobody may pass through it
/// but not write in it (0711); `shared/` is open to everyone, for what nobody's processes
/// write; `bin/tm-fixture` is a copy of the fixture that nobody may run, wherever the build
/// put the original. Returns the sandbox and the fixture's path.
fn sandbox_for_nobody() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    let mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    };
    mode(sandbox.path(), 0o711);
    for (folder, folder_mode) in [("shared", 0o777), ("bin", 0o755)] {
        fs::create_dir(sandbox.file(folder)).expect("create a folder");
        mode(&sandbox.file(folder), folder_mode);
    }
    let fixture = sandbox.file("bin/tm-fixture");
    fs::copy(fixture_bin(), &fixture).expect("copy the fixture");
    mode(&fixture, 0o755);
    (sandbox, fixture)
}

/// A `cmd:` value running `fixture` with `args`, as a double-quoted YAML string.
fn cmd(fixture: &Path, args: &[&str]) -> String {
    yaml_quote(&shell_command(fixture, args))
}

/// `fixture args...` quoted for a shell (and for supervisord's `command`).
fn shell_command(fixture: &Path, args: &[&str]) -> String {
    let fixture = fixture.to_str().expect("UTF-8 path");
    std::iter::once(fixture)
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that `report` (the fixture's) is of a process running as `account`: every uid and
/// gid (real, effective, saved, filesystem) and the supplementary groups.
fn assert_runs_as(report: &HashMap<String, String>, account: &Account, what: &str) {
    let four = |id: u32| [id; 4].map(|id| id.to_string()).join(" ");
    assert_eq!(report["uid"], four(account.uid), "{what}: {report:?}");
    assert_eq!(report["gid"], four(account.gid), "{what}: {report:?}");
    let mut groups: Vec<u32> = report["groups"]
        .split_whitespace()
        .map(|gid| gid.parse().expect("a gid"))
        .collect();
    groups.sort_unstable();
    assert_eq!(groups, account.groups, "{what}: {report:?}");
}

/// Asserts that `report` shows `HOME`, `USER`, `LOGNAME` and `SHELL` as given.
fn assert_login(report: &HashMap<String, String>, [home, user, logname, shell]: [&str; 4]) {
    let var = |name: &str| report.get(&format!("env.{name}")).map(String::as_str);
    assert_eq!(
        [var("HOME"), var("USER"), var("LOGNAME"), var("SHELL")],
        [Some(home), Some(user), Some(logname), Some(shell)],
        "{report:?}"
    );
}

#[test]
fn a_program_runs_as_its_user_with_its_groups_and_login_and_so_do_its_check_and_hook() {
    if !runs_as_root(
        "a_program_runs_as_its_user_with_its_groups_and_login_and_so_do_its_check_and_hook",
    ) {
        return;
    }
    let nobody = nobody();
    let (sandbox, fixture) = sandbox_for_nobody();
    let shared = |name: &str| sandbox.file_str(&format!("shared/{name}"));
    let report_then_sleep = |name: &str| {
        cmd(
            &fixture,
            &[
                "report",
                &shared(name),
                "print",
                "hello",
                "sleep",
                "forever",
            ],
        )
    };
    let check = cmd(&fixture, &["report", &shared("check.report")]);
    let hook = cmd(&fixture, &["report", &shared("hook.report")]);
    sandbox.write_config(&format!(
        "
        programs:
          web:
            cmd: {web}
            user: nobody
            starttime: 0
            stdout: web.out
            healthcheck: {{cmd: {check}, interval: 100ms, timeout: 10s, retries: 3}}
          custom:
            cmd: {custom}
            user: {uid}
            starttime: 0
            env: {{HOME: /srv/custom, USER: someone}}
            on_exit: {hook}
        ",
        web = report_then_sleep("web.report"),
        custom = report_then_sleep("custom.report"),
        uid = nobody.uid,
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);

    sandbox.wait_for_file("shared/web.report", TIMEOUT);
    let web = read_report(&sandbox.file("shared/web.report"));
    tm.track(web["pid"].parse().expect("a pid"));
    assert_runs_as(&web, &nobody, "web");
    assert_login(&web, [&nobody.home, "nobody", "nobody", &nobody.shell]);
    // The program's own env wins over the password database; a uid gives the account's name.
    sandbox.wait_for_file("shared/custom.report", TIMEOUT);
    let custom = read_report(&sandbox.file("shared/custom.report"));
    tm.track(custom["pid"].parse().expect("a pid"));
    assert_runs_as(&custom, &nobody, "custom");
    assert_login(&custom, ["/srv/custom", "someone", "nobody", &nobody.shell]);

    // web.out is in a folder nobody cannot write to: taskmaster opened it before the switch.
    sandbox.wait_for_contents("web.out", |text| text == "hello\n", TIMEOUT);
    let out = fs::metadata(sandbox.file("web.out")).expect("web.out");
    assert_eq!(out.uid(), 0, "web.out is taskmaster's (root's) file");

    let line = tm.wait_for_log("web: spawned with pid", TIMEOUT);
    assert!(
        line.ends_with(&format!("web: spawned with pid {} as nobody", web["pid"])),
        "{line}"
    );
    let line = tm.wait_for_log("custom: spawned with pid", TIMEOUT);
    assert!(line.ends_with(" as nobody"), "{line}");

    sandbox.wait_for_file("shared/check.report", TIMEOUT);
    let check = read_report(&sandbox.file("shared/check.report"));
    assert_runs_as(&check, &nobody, "web's health check");
    assert_login(&check, [&nobody.home, "nobody", "nobody", &nobody.shell]);

    assert_eq!(tm.command("stop custom", 1), ["custom: stopped"]);
    sandbox.wait_for_file("shared/hook.report", TIMEOUT);
    let hook = read_report(&sandbox.file("shared/hook.report"));
    assert_runs_as(&hook, &nobody, "custom's on_exit hook");
    assert_login(&hook, ["/srv/custom", "someone", "nobody", &nobody.shell]);
    tm.shutdown();
}

#[test]
fn a_supervisord_conf_runs_its_programs_as_their_user_and_keeps_supervisord_user_root() {
    if !runs_as_root(
        "a_supervisord_conf_runs_its_programs_as_their_user_and_keeps_supervisord_user_root",
    ) {
        return;
    }
    let nobody = nobody();
    let (sandbox, fixture) = sandbox_for_nobody();
    let report = sandbox.file_str("shared/web.report");
    let conf = sandbox.file("supervisord.conf");
    let text = format!(
        "[supervisord]
logfile=%(here)s/taskmaster.log
user=root

[unix_http_server]
file=%(here)s/sv.sock

[program:web]
command={command}
user=nobody
startsecs=0
stdout_logfile=%(here)s/web.out
",
        command = shell_command(
            &fixture,
            &["report", &report, "print", "hello", "sleep", "forever"]
        ),
    );
    fs::write(&conf, text).expect("write supervisord.conf");
    let mut run = Command::new(taskmaster_bin());
    run.arg("run")
        .arg("-c")
        .arg(&conf)
        .current_dir(sandbox.path())
        .env("HOME", sandbox.path());
    let mut tm = Taskmaster::spawn(&sandbox, run);

    sandbox.wait_for_file("shared/web.report", TIMEOUT);
    let web = read_report(&sandbox.file("shared/web.report"));
    tm.track(web["pid"].parse().expect("a pid"));
    assert_runs_as(&web, &nobody, "web");
    assert_login(&web, [&nobody.home, "nobody", "nobody", &nobody.shell]);
    sandbox.wait_for_contents("web.out", |text| text == "hello\n", TIMEOUT);
    tm.wait_for_log("web: spawned with pid", TIMEOUT);
    assert!(tm.log().contains(" as nobody"), "{}", tm.log());
    // user=root as root: nothing to switch.
    assert!(!tm.log().contains("running as"), "{}", tm.log());
    let daemon = fs::read_to_string(format!("/proc/{}/status", tm.daemon_pid())).expect("status");
    assert!(daemon.lines().any(|line| line.split_whitespace().collect::<Vec<_>>() == ["Uid:", "0", "0", "0", "0"]), "{daemon}");
    tm.shutdown();
}

#[test]
fn taskmaster_switches_to_its_own_user_once_its_sockets_and_log_are_open() {
    if !runs_as_root("taskmaster_switches_to_its_own_user_once_its_sockets_and_log_are_open") {
        return;
    }
    let nobody = nobody();
    let (sandbox, fixture) = sandbox_for_nobody();
    let report = sandbox.file_str("shared/web.report");
    sandbox.write_config(&format!(
        "
        user: nobody
        programs:
          web:
            cmd: {web}
            starttime: 0
            stdout: shared/web.out
        ",
        web = cmd(
            &fixture,
            &["report", &report, "print", "hello", "sleep", "forever"]
        ),
    ));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_log(
        &format!(
            "running as nobody (uid {}, gid {}) from now on",
            nobody.uid, nobody.gid
        ),
        TIMEOUT,
    );
    let status = fs::read_to_string(format!("/proc/{}/status", tm.daemon_pid())).expect("status");
    let field = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_default()
            .split_whitespace()
            .map(|id| id.parse().expect("an id"))
            .collect()
    };
    assert_eq!(field("Uid:"), [nobody.uid; 4], "{status}");
    assert_eq!(field("Gid:"), [nobody.gid; 4], "{status}");
    let mut groups = field("Groups:");
    groups.sort_unstable();
    assert_eq!(groups, nobody.groups, "{status}");

    // A program without a user of its own runs as taskmaster does now, with its login.
    sandbox.wait_for_file("shared/web.report", TIMEOUT);
    let web = read_report(&sandbox.file("shared/web.report"));
    tm.track(web["pid"].parse().expect("a pid"));
    assert_runs_as(&web, &nobody, "web");
    assert_login(&web, [&nobody.home, "nobody", "nobody", &nobody.shell]);
    sandbox.wait_for_contents("shared/web.out", |text| text == "hello\n", TIMEOUT);
    // The shell still answers, and the daemon still stops its programs and exits.
    assert_eq!(tm.status("web").state, "RUNNING");
    tm.shutdown();
}

#[test]
fn check_names_a_user_that_does_not_exist_and_its_place() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "
        programs:
          web:
            cmd: sleep 1
            user: nbody
        ",
    );
    let output = sandbox.check_config();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert_eq!(
        errors.trim(),
        format!(
            "{}:5:11: programs.web.user: no user \"nbody\" on this system",
            config.display()
        )
    );

    let conf = sandbox.file("bad.conf");
    fs::write(&conf, "[program:web]\ncommand=sleep 1\nuser=nbody\n").expect("write");
    let mut check = Command::new(taskmaster_bin());
    check.args(["check", "-c"]).arg(&conf);
    let output = run_to_completion(check, TIMEOUT);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert_eq!(
        errors.trim(),
        format!(
            "{}:3:6: program:web.user: no user \"nbody\" on this system",
            conf.display()
        )
    );
}

/// Whether every folder above `path` lets others through and `path` lets others run it.
fn others_may_run(path: &Path) -> bool {
    let others_x = |path: &Path| fs::metadata(path).is_ok_and(|m| m.mode() & 0o001 != 0);
    others_x(path) && path.ancestors().skip(1).all(others_x)
}

#[test]
fn check_run_by_another_user_than_root_says_why_it_cannot_switch() {
    if !runs_as_root("check_run_by_another_user_than_root_says_why_it_cannot_switch") {
        return;
    }
    let binary = taskmaster_bin();
    if !others_may_run(&binary) {
        eprintln!(
            "skipped check_run_by_another_user_than_root_says_why_it_cannot_switch: nobody may \
             not run {}",
            binary.display()
        );
        return;
    }
    let nobody = nobody();
    let (sandbox, _) = sandbox_for_nobody();
    let config = sandbox.write_config(
        "
        programs:
          web:
            cmd: sleep 1
            user: root
        ",
    );
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut check = Command::new(binary);
    check
        .args(["check", "-c"])
        .arg(&config)
        .current_dir(sandbox.path())
        .uid(nobody.uid)
        .gid(nobody.gid);
    let output = run_to_completion(check, TIMEOUT);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert_eq!(
        errors.trim(),
        format!(
            "{}:5:11: programs.web.user: taskmaster runs as uid {} (nobody), not as root, so it \
             cannot run programs as \"root\" (supervisord: \"Can't drop privilege as nonroot \
             user\"); start taskmaster as root, or remove user",
            config.display(),
            nobody.uid
        )
    );
}
