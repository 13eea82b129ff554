//! `reload` (in the shell) and SIGHUP: the configuration file is read again and only the
//! difference is applied. Unchanged programs keep their processes, changed ones restart with
//! their new settings, removed ones stop and go, added ones start when `autostart`; a file with
//! errors changes nothing at all.

use std::fs;

use crate::support::*;
use rustix::process::Signal;

/// A program block for `programs:`. `starttime: 0` and `stoptime: 1` are added unless `extra`
/// (lines such as `"numprocs: 2"`) sets them.
fn program(name: &str, cmd: &str, extra: &[&str]) -> String {
    let mut block = format!("  {name}:\n    cmd: {cmd}\n");
    for (key, default) in [("starttime", "0"), ("stoptime", "1")] {
        if !extra.iter().any(|line| line.starts_with(key)) {
            block.push_str(&format!("    {key}: {default}\n"));
        }
    }
    for line in extra {
        block.push_str(&format!("    {line}\n"));
    }
    block
}

/// A configuration of these program blocks.
fn config(programs: &[String]) -> String {
    format!("programs:\n{}", programs.concat())
}

/// A fixture that sleeps forever.
fn sleeper() -> String {
    fixture_cmd(&["sleep", "forever"])
}

/// Waits until `name` is RUNNING with another pid than `old`, and returns it.
fn wait_for_new_pid(tm: &mut Taskmaster, name: &str, old: u32) -> u32 {
    let found = wait_until_or_none(TIMEOUT, || {
        let status = tm.status(name);
        status
            .pid()
            .filter(|&pid| status.state == "RUNNING" && pid != old)
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} not RUNNING with a new pid (old {old}) within {TIMEOUT:?}\n{}",
            tm.diagnostics()
        )
    })
}

/// The status lines of every process, as (name, state, pid).
fn snapshot(tm: &mut Taskmaster) -> Vec<(String, String, Option<u32>)> {
    tm.status_all()
        .into_iter()
        .map(|s| {
            let pid = s.pid();
            (s.name, s.state, pid)
        })
        .collect()
}

/// The processes the event log says a stop was requested for, in order.
fn stop_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split_once(": stop requested"))
        // The timestamp is two words: `2024-05-01 12:00:00.000 NAME: stop requested...`.
        .filter_map(|(head, _)| head.splitn(3, ' ').nth(2))
        .map(str::to_owned)
        .collect()
}

/// The index of the first line of `log` containing `needle`; panics if there is none.
fn line_index(log: &str, needle: &str) -> usize {
    log.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no log line containing {needle:?} in:\n{log}"))
}

#[test]
fn reload_keeps_unchanged_programs_running_with_the_same_pids() {
    let sandbox = Sandbox::new();
    let write = |word: &str| {
        sandbox.write_config(&config(&[
            program("steady", &sleeper(), &[]),
            program("pool", &sleeper(), &["numprocs: 2"]),
            program(
                "edited",
                &fixture_cmd(&["print", word, "sleep", "forever"]),
                &[],
            ),
        ]))
    };
    write("one");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let unchanged = ["steady", "pool:pool_00", "pool:pool_01"];
    let before: Vec<u32> = unchanged.iter().map(|n| tm.running_pid(n)).collect();
    let edited = tm.running_pid("edited");

    write("two");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed edited"]);
    // The changed program coming back is the last act of the reload: any stop of the others
    // would be in the log by then.
    wait_for_new_pid(&mut tm, "edited", edited);

    let after: Vec<u32> = unchanged.iter().map(|n| tm.running_pid(n)).collect();
    assert_eq!(after, before, "unchanged programs got new processes");
    for pid in after {
        assert!(is_alive(pid), "pid {pid} of an unchanged program died");
    }
    assert_eq!(stop_requests(&tm.log()), ["edited"], "{}", tm.log());
}

#[test]
fn reload_of_an_identical_file_says_nothing_changed_and_touches_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[
        program("steady", &sleeper(), &[]),
        program("pool", &sleeper(), &["numprocs: 2"]),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    for name in ["steady", "pool:pool_00", "pool:pool_01"] {
        tm.running_pid(name);
    }
    let before = snapshot(&mut tm);

    assert_eq!(tm.command_all("reload"), ["reloaded: nothing changed"]);
    tm.wait_for_log("reload: nothing changed", TIMEOUT);
    assert_eq!(snapshot(&mut tm), before);
    assert_eq!(stop_requests(&tm.log()), Vec::<String>::new());
}

#[test]
fn reload_restarts_a_program_whose_cmd_changed_with_the_new_arguments() {
    let sandbox = Sandbox::new();
    let write = |report: &str| {
        let report = sandbox.file_str(report);
        sandbox.write_config(&config(&[program(
            "web",
            &fixture_cmd(&["report", &report, "sleep", "forever"]),
            &[],
        )]))
    };
    write("old.report");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let old = tm.running_pid("web");
    sandbox.wait_for_file("old.report", TIMEOUT);

    write("new.report");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed web"]);
    let new = wait_for_new_pid(&mut tm, "web", old);
    wait_dead(old, TIMEOUT);
    sandbox.wait_for_file("new.report", TIMEOUT);
    assert_eq!(
        read_report(&sandbox.file("new.report"))["pid"],
        new.to_string()
    );
}

#[test]
fn reload_restarts_a_program_whose_env_changed_with_the_new_env() {
    let sandbox = Sandbox::new();
    let report = sandbox.file_str("report");
    let write = |value: &str| {
        sandbox.write_config(&config(&[program(
            "web",
            &fixture_cmd(&["report", &report, "sleep", "forever"]),
            &[&format!("env: {{COLOUR: {value}}}")],
        )]))
    };
    write("red");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let old = tm.running_pid("web");
    let old_pid_line = format!("pid={old}\n");
    sandbox.wait_for_contents("report", |t| t.contains(&old_pid_line), TIMEOUT);
    assert_eq!(read_report(&sandbox.file("report"))["env.COLOUR"], "red");

    write("blue");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed web"]);
    let new = wait_for_new_pid(&mut tm, "web", old);
    wait_dead(old, TIMEOUT);
    let new_pid_line = format!("pid={new}\n");
    sandbox.wait_for_contents("report", |t| t.contains(&new_pid_line), TIMEOUT);
    assert_eq!(read_report(&sandbox.file("report"))["env.COLOUR"], "blue");
}

/// A pool that grows and shrinks keeps the processes it still has, with their pids
/// (supervisord restarts the whole group, its issue #1154): 3 to 5 starts two, 5 to 2 stops
/// three, and the first two never stop.
#[test]
fn reload_from_numprocs_3_to_5_and_back_to_2_leaves_the_kept_processes_alone() {
    let sandbox = Sandbox::new();
    let write = |numprocs: u32| {
        sandbox.write_config(&config(&[program(
            "pool",
            &sleeper(),
            &[&format!("numprocs: {numprocs}")],
        )]))
    };
    let name = |i: u32| format!("pool:pool_{i:02}");
    let running = |tm: &mut Taskmaster, count: u32| {
        wait_until(&format!("{count} pool processes RUNNING"), TIMEOUT, || {
            let all = snapshot(tm);
            let ready = all.len() == count as usize
                && all.iter().zip(0..).all(|((process, state, pid), i)| {
                    *process == name(i) && state == "RUNNING" && pid.is_some()
                });
            ready.then(|| {
                all.iter()
                    .filter_map(|(_, _, pid)| *pid)
                    .collect::<Vec<u32>>()
            })
        })
    };
    write(3);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let three = running(&mut tm, 3);

    write(5);
    assert_eq!(tm.command_all("reload"), ["reloaded: changed pool"]);
    let five = running(&mut tm, 5);
    assert_eq!(five[..3], three[..], "the first three kept their pids");
    for &pid in &five {
        tm.track(pid);
    }

    write(2);
    assert_eq!(tm.command_all("reload"), ["reloaded: changed pool"]);
    let two = running(&mut tm, 2);
    assert_eq!(two[..], three[..2], "the first two kept their pids");
    for &pid in &five[2..] {
        wait_dead(pid, TIMEOUT);
    }
    assert!(two.iter().all(|&pid| is_alive(pid)));
    let log = tm.log();
    for i in 0..2 {
        assert_eq!(
            log.matches(&format!("{}: spawned with pid", name(i)))
                .count(),
            1,
            "{} was started again:\n{log}",
            name(i)
        );
    }
}

#[test]
fn reload_from_numprocs_3_to_1_runs_one_process_named_after_the_program() {
    let sandbox = Sandbox::new();
    let write = |numprocs: &str| {
        sandbox.write_config(&config(&[program(
            "pool",
            &sleeper(),
            &[&format!("numprocs: {numprocs}")],
        )]))
    };
    write("3");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let old: Vec<u32> = ["pool:pool_00", "pool:pool_01", "pool:pool_02"]
        .iter()
        .map(|n| tm.running_pid(n))
        .collect();

    write("1");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed pool"]);
    wait_until("pool alone and RUNNING", TIMEOUT, || {
        let all = snapshot(&mut tm);
        let alone = all.len() == 1 && all[0].0 == "pool" && all[0].1 == "RUNNING";
        alone.then_some(())
    });
    for pid in old {
        wait_dead(pid, TIMEOUT);
    }
    assert_eq!(
        tm.command("status pool:pool_00", 1),
        ["pool:pool_00: ERROR (no such process)"]
    );
}

#[test]
fn reload_stops_and_forgets_a_program_removed_from_the_file() {
    let sandbox = Sandbox::new();
    let stays = program("stays", &sleeper(), &[]);
    sandbox.write_config(&config(&[program("gone", &sleeper(), &[]), stays.clone()]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let gone = tm.running_pid("gone");
    let kept = tm.running_pid("stays");

    sandbox.write_config(&config(&[stays]));
    assert_eq!(tm.command_all("reload"), ["reloaded: removed gone"]);
    wait_dead(gone, TIMEOUT);
    tm.wait_for_log("gone: removed", TIMEOUT);
    assert_eq!(
        tm.command("status gone", 1),
        ["gone: ERROR (no such process)"]
    );
    let all = snapshot(&mut tm);
    assert_eq!(
        all,
        [("stays".to_owned(), "RUNNING".to_owned(), Some(kept))]
    );
}

#[test]
fn reload_starts_an_added_autostart_program() {
    let sandbox = Sandbox::new();
    let stays = program("stays", &sleeper(), &[]);
    sandbox.write_config(&config(std::slice::from_ref(&stays)));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("stays");

    let pidfile = sandbox.file_str("fresh.pid");
    sandbox.write_config(&config(&[
        stays,
        program(
            "fresh",
            &fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
            &[],
        ),
    ]));
    assert_eq!(tm.command_all("reload"), ["reloaded: added fresh"]);
    let pid = tm.running_pid("fresh");
    assert_eq!(sandbox.wait_for_pidfile("fresh.pid", TIMEOUT), pid);
}

#[test]
fn reload_adds_a_program_without_autostart_as_stopped_not_started() {
    let sandbox = Sandbox::new();
    let stays = program("stays", &sleeper(), &[]);
    sandbox.write_config(&config(std::slice::from_ref(&stays)));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("stays");

    let pidfile = sandbox.file_str("lazy.pid");
    sandbox.write_config(&config(&[
        stays,
        program(
            "lazy",
            &fixture_cmd(&["pidfile", &pidfile, "sleep", "forever"]),
            &["autostart: false"],
        ),
    ]));
    assert_eq!(tm.command_all("reload"), ["reloaded: added lazy"]);
    // A process that had been spawned would show STARTING, RUNNING or a stop date instead.
    let status = tm.status("lazy");
    assert_eq!(
        (status.state.as_str(), status.description.as_str()),
        ("STOPPED", "Not started")
    );
    assert!(!tm.log().contains("lazy: spawned"), "{}", tm.log());

    // It is a real program: it starts on request.
    assert_eq!(tm.command("start lazy", 1), ["lazy: started"]);
    let pid = tm.running_pid("lazy");
    assert_eq!(sandbox.wait_for_pidfile("lazy.pid", TIMEOUT), pid);
}

#[test]
fn reload_reply_and_log_name_what_was_added_changed_and_removed() {
    let sandbox = Sandbox::new();
    let write = |word: &str, programs: &[&str]| {
        let cmd = fixture_cmd(&["print", word, "sleep", "forever"]);
        let blocks: Vec<String> = programs.iter().map(|n| program(n, &cmd, &[])).collect();
        sandbox.write_config(&config(&blocks));
    };
    write("v1", &["beta", "delta", "gamma"]);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    for name in ["beta", "delta", "gamma"] {
        tm.running_pid(name);
    }

    // beta and delta change (new argument), gamma goes, alpha and omega come.
    write("v2", &["alpha", "beta", "delta", "omega"]);
    assert_eq!(
        tm.command_all("reload"),
        ["reloaded: added alpha, omega; changed beta, delta; removed gamma"]
    );
    tm.wait_for_log(
        "reload: added alpha, omega; changed beta, delta; removed gamma",
        TIMEOUT,
    );
}

#[test]
fn sighup_reloads_the_configuration_like_the_reload_command() {
    let sandbox = Sandbox::new();
    let steady = program("steady", &sleeper(), &[]);
    let edited = |word: &str| {
        program(
            "edited",
            &fixture_cmd(&["print", word, "sleep", "forever"]),
            &[],
        )
    };
    sandbox.write_config(&config(&[
        edited("one"),
        program("gone", &sleeper(), &[]),
        steady.clone(),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let steady_pid = tm.running_pid("steady");
    let edited_pid = tm.running_pid("edited");
    let gone_pid = tm.running_pid("gone");

    sandbox.write_config(&config(&[
        edited("two"),
        program("fresh", &sleeper(), &[]),
        steady,
    ]));
    tm.signal(Signal::HUP);
    tm.wait_for_log("SIGHUP received: reloading the configuration", TIMEOUT);
    tm.wait_for_log("reload: added fresh; changed edited; removed gone", TIMEOUT);

    wait_for_new_pid(&mut tm, "edited", edited_pid);
    tm.running_pid("fresh");
    wait_dead(gone_pid, TIMEOUT);
    tm.wait_for_log("gone: removed", TIMEOUT);
    assert_eq!(tm.running_pid("steady"), steady_pid);
    assert!(is_alive(steady_pid));
    let names: Vec<String> = snapshot(&mut tm).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["edited", "fresh", "steady"]);
    let mut stopped = stop_requests(&tm.log());
    stopped.sort();
    assert_eq!(stopped, ["edited", "gone"], "{}", tm.log());
}

#[test]
fn reload_rejects_a_file_that_is_not_yaml_and_keeps_the_running_configuration() {
    let sandbox = Sandbox::new();
    let keep = program("keep", &sleeper(), &[]);
    let edited = |word: &str| {
        program(
            "edited",
            &fixture_cmd(&["print", word, "sleep", "forever"]),
            &[],
        )
    };
    sandbox.write_config(&config(&[edited("one"), keep.clone()]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("keep");
    let edited_pid = tm.running_pid("edited");
    let before = snapshot(&mut tm);

    // An unclosed quote: the error is at the end of the file, line 3 column 10.
    let path = sandbox.config_path();
    fs::write(&path, "programs:\n  keep:\n    cmd: \"unclosed\n").expect("write the config");
    let reply = tm.command_all("reload");
    let place = format!("{}:3:10: ", path.display());
    assert_eq!(
        reply.first().map(String::as_str),
        Some("error: the configuration has errors; nothing was changed:"),
        "{reply:?}"
    );
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(
        reply[1].starts_with(&format!("  {place}YAML syntax error")),
        "{reply:?}"
    );
    tm.wait_for_log(
        &format!("reload rejected: {place}YAML syntax error"),
        TIMEOUT,
    );
    assert_eq!(snapshot(&mut tm), before);

    // The baseline is still the old file: only `edited` differs from it.
    sandbox.write_config(&config(&[edited("two"), keep]));
    assert_eq!(tm.command_all("reload"), ["reloaded: changed edited"]);
    wait_for_new_pid(&mut tm, "edited", edited_pid);
}

#[test]
fn reload_rejects_an_invalid_file_listing_every_error_and_keeps_the_running_configuration() {
    let sandbox = Sandbox::new();
    let old = config(&[
        program("keep", &sleeper(), &[]),
        program("other", &sleeper(), &[]),
    ]);
    sandbox.write_config(&old);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("keep");
    tm.running_pid("other");
    let before = snapshot(&mut tm);

    // A valid new program, and two errors: a misspelt key and a bad value.
    let path = sandbox.config_path();
    let bad = format!(
        "programs:\n  keep:\n    cmd: {s}\n    stoptimee: 3\n  other:\n    cmd: {s}\n    numprocs: abc\n  extra:\n    cmd: {s}\n",
        s = sleeper()
    );
    fs::write(&path, bad).expect("write the config");
    let reply = tm.command_all("reload");
    let file = path.display();
    let errors = [
        format!(
            "{file}:4:5: programs.keep: unknown key \"stoptimee\" (did you mean \"stoptime\"?)"
        ),
        format!("{file}:7:15: programs.other.numprocs: expected an integer >= 1, found \"abc\""),
    ];
    let expected: Vec<String> =
        std::iter::once("error: the configuration has errors; nothing was changed:".to_owned())
            .chain(errors.iter().map(|e| format!("  {e}")))
            .collect();
    assert_eq!(reply, expected);
    for error in &errors {
        tm.wait_for_log(&format!("reload rejected: {error}"), TIMEOUT);
    }
    assert_eq!(snapshot(&mut tm), before);
    assert!(!tm.log().contains("extra"), "{}", tm.log());

    // Had the rejected file been applied even in part, `extra` would already be there.
    let with_extra = format!("{old}{}", program("extra", &sleeper(), &[]));
    sandbox.write_config(&with_extra);
    assert_eq!(tm.command_all("reload"), ["reloaded: added extra"]);
    tm.running_pid("extra");
}

#[test]
fn reload_without_a_configuration_file_is_rejected_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let text = config(&[
        program("keep", &sleeper(), &[]),
        program("pool", &sleeper(), &["numprocs: 2"]),
    ]);
    sandbox.write_config(&text);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    for name in ["keep", "pool:pool_00", "pool:pool_01"] {
        tm.running_pid(name);
    }
    let before = snapshot(&mut tm);

    let path = sandbox.config_path();
    fs::remove_file(&path).expect("remove the config");
    let reply = tm.command_all("reload");
    assert_eq!(
        reply,
        [
            "error: the configuration has errors; nothing was changed:".to_owned(),
            format!(
                "  {}: cannot read: No such file or directory",
                path.display()
            ),
        ]
    );
    tm.wait_for_log("reload rejected: ", TIMEOUT);
    assert_eq!(snapshot(&mut tm), before);

    sandbox.write_config(&text);
    assert_eq!(tm.command_all("reload"), ["reloaded: nothing changed"]);
    assert_eq!(snapshot(&mut tm), before);
}

/// `logfile` is bound at start, as the README says: a reload that changes it keeps the event
/// log where it is (written, rotated and read by `maintail` from the same file) and says the
/// new path takes effect at the next start.
#[test]
fn reload_with_a_new_logfile_keeps_the_event_log_where_it_is_until_a_restart() {
    let sandbox = Sandbox::new();
    let programs = config(&[program("web", &sleeper(), &[])]);
    sandbox.write_config(&programs);
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.running_pid("web");

    let new_log = sandbox.file("moved.log");
    sandbox.write_config(&format!(
        "logfile: {}\n{programs}",
        yaml_quote(&sandbox.file_str("moved.log"))
    ));
    assert_eq!(tm.command_all("reload"), ["reloaded: nothing changed"]);
    assert_eq!(tm.command("stop web", 1), ["web: stopped"]);

    assert!(
        !new_log.exists(),
        "the event log moved to {}",
        new_log.display()
    );
    let log = tm.log();
    assert!(
        log.contains(
            "reload: `logfile` changed in the file; it takes effect when taskmaster restarts"
        ),
        "{log}"
    );
    assert!(log.contains("command: stop web"), "{log}");
    assert!(log.contains("web: stop requested: sending TERM"), "{log}");
    // What maintail reads is the file written.
    let maintail = run_to_completion(sandbox.ctl_command(&["maintail"]), TIMEOUT);
    let shown = String::from_utf8_lossy(&maintail.stdout);
    assert!(
        shown.contains("web: stop requested: sending TERM"),
        "{shown}"
    );
}

#[test]
fn reload_of_a_program_in_backoff_replaces_it_with_the_new_settings() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program(
        "flaky",
        &fixture_cmd(&["exit", "1"]),
        &["starttime: 1", "startretries: 20"],
    )]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    tm.wait_for_state("flaky", "BACKOFF", TIMEOUT);

    let report = sandbox.file_str("report");
    sandbox.write_config(&config(&[program(
        "flaky",
        &fixture_cmd(&["report", &report, "sleep", "forever"]),
        &[],
    )]));
    assert_eq!(tm.command_all("reload"), ["reloaded: changed flaky"]);
    let pid = tm.running_pid("flaky");
    sandbox.wait_for_file("report", TIMEOUT);
    assert_eq!(read_report(&sandbox.file("report"))["pid"], pid.to_string());

    // The old record (and its pending retry) went before the new process was spawned.
    let log = tm.log();
    let removed = line_index(&log, "flaky: removed");
    let spawned = line_index(&log, &format!("flaky: spawned with pid {pid}"));
    assert!(removed < spawned, "{log}");
    let names: Vec<String> = snapshot(&mut tm).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["flaky"]);
}

#[test]
fn reload_of_a_program_ignoring_term_kills_it_after_stoptime_then_starts_the_new_one() {
    let sandbox = Sandbox::new();
    let write = |report: &str| {
        let report = sandbox.file_str(report);
        sandbox.write_config(&config(&[program(
            "stubborn",
            &fixture_cmd(&["ignore", "TERM", "report", &report, "sleep", "forever"]),
            &["stoptime: 1"],
        )]))
    };
    write("old.report");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let old = tm.running_pid("stubborn");
    // Once the report exists, TERM is ignored.
    sandbox.wait_for_file("old.report", TIMEOUT);

    write("new.report");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed stubborn"]);
    let new = wait_for_new_pid(&mut tm, "stubborn", old);
    assert!(!is_alive(old), "old pid {old} still alive");
    sandbox.wait_for_file("new.report", TIMEOUT);
    assert_eq!(
        read_report(&sandbox.file("new.report"))["pid"],
        new.to_string()
    );

    let log = tm.log();
    let kill = line_index(
        &log,
        "stubborn: still running 1s after TERM: sending SIGKILL",
    );
    let stopped = line_index(&log, "stubborn: stopped (killed by SIGKILL)");
    let spawned = line_index(&log, &format!("stubborn: spawned with pid {new}"));
    assert!(kill < stopped && stopped < spawned, "{log}");
}

#[test]
fn reload_while_the_old_process_is_still_stopping_starts_only_the_latest_settings() {
    let sandbox = Sandbox::new();
    let write = |version: &str| {
        let report = sandbox.file_str(&format!("{version}.report"));
        // TERM ignored and a stoptime longer than any wait here: the process stays STOPPING
        // until the test makes it exit with USR1.
        sandbox.write_config(&config(&[program(
            "slow",
            &fixture_cmd(&[
                "ignore", "TERM", "on", "USR1", "exit", "0", "report", &report, "sleep", "forever",
            ]),
            &["stoptime: 60"],
        )]))
    };
    write("v1");
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let old = tm.running_pid("slow");
    sandbox.wait_for_file("v1.report", TIMEOUT);

    write("v2");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed slow"]);
    assert_eq!(tm.status("slow").state, "STOPPING");
    write("v3");
    assert_eq!(tm.command_all("reload"), ["reloaded: changed slow"]);
    assert_eq!(tm.status("slow").state, "STOPPING");
    assert!(is_alive(old));

    send_signal(old, Signal::USR1).expect("send SIGUSR1 to the old process");
    let new = wait_for_new_pid(&mut tm, "slow", old);
    sandbox.wait_for_file("v3.report", TIMEOUT);
    assert_eq!(
        read_report(&sandbox.file("v3.report"))["pid"],
        new.to_string()
    );
    // Every spawn is logged when it happens: two means v2 was never started.
    let log = tm.log();
    assert_eq!(log.matches("slow: spawned with pid").count(), 2, "{log}");
    assert!(!sandbox.file("v2.report").exists());
    let names: Vec<String> = snapshot(&mut tm).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["slow"]);

    // The new process ignores TERM too: end it before the shutdown rather than wait 60 s.
    send_signal(new, Signal::USR1).expect("send SIGUSR1 to the new process");
    tm.wait_for_state("slow", "EXITED", TIMEOUT);
    tm.shutdown();
}

#[test]
fn a_reload_applies_autorestart_and_stoptime_in_place_and_restarts_for_a_new_cmd() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[program("web", &sleeper(), &[])]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm.running_pid("web");
    sandbox.write_config(&config(&[program(
        "web",
        &sleeper(),
        &["autorestart: never", "stoptime: 3"],
    )]));
    assert_eq!(tm.command_all("reload"), ["reloaded: changed web"]);
    tm.wait_for_log(
        "web: autorestart, stoptime changed in place, no restart",
        TIMEOUT,
    );
    assert_eq!(tm.running_pid("web"), pid);
    assert!(is_alive(pid));
    // autorestart: never is in force for the process that was already running.
    send_signal(pid, Signal::KILL).expect("SIGKILL to web");
    tm.wait_for_state("web", "EXITED", TIMEOUT);
    tm.command_all("start web");
    let pid = tm.running_pid("web");
    sandbox.write_config(&config(&[program(
        "web",
        &fixture_cmd(&["sleep", "100000"]),
        &["autorestart: never", "stoptime: 3"],
    )]));
    assert_eq!(tm.command_all("reload"), ["reloaded: changed web"]);
    tm.wait_for_log("web: restarted: cmd changed", TIMEOUT);
    wait_for_new_pid(&mut tm, "web", pid);
}

#[test]
fn reread_says_per_changed_program_what_a_reload_changes_in_place_and_what_restarts_it() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&config(&[
        program("api", &sleeper(), &[]),
        program("old", &sleeper(), &[]),
        program("web", &sleeper(), &[]),
    ]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pids: Vec<u32> = ["api", "old", "web"]
        .iter()
        .map(|name| tm.running_pid(name))
        .collect();
    sandbox.write_config(&config(&[
        program("api", &fixture_cmd(&["sleep", "100000"]), &["stoptime: 2"]),
        program("fresh", &sleeper(), &[]),
        program("web", &sleeper(), &["autorestart: never", "stoptime: 3"]),
    ]));
    let expected = [
        "api: changed (in place: stoptime; restart: cmd)",
        "web: changed (in place: autorestart, stoptime)",
        "fresh: available",
        "old: disappeared",
    ];
    // The shell of `run`, and `ctl`, which renders the API's JSON.
    assert_eq!(tm.command_all("reread"), expected);
    let ctl = sandbox.ctl(&["reread"]);
    assert_eq!(ctl.lines(), expected, "{ctl:?}");
    let api = crate::support::unix_http::Api::connect(sandbox.file("taskmaster.sock"));
    let answer = api.post("/v1/reread", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "added": ["fresh"],
            "changed": ["api", "web"],
            "removed": ["old"],
            "settings": {
                "api": {"in_place": ["stoptime"], "restart": ["cmd"]},
                "web": {"in_place": ["autorestart", "stoptime"], "restart": []},
            },
        })
    );
    // A reread changes nothing.
    for (name, pid) in ["api", "old", "web"].iter().zip(pids) {
        assert_eq!(tm.running_pid(name), pid, "{name}");
    }
    // The reload then does what the reread said.
    assert_eq!(
        tm.command_all("reload"),
        ["reloaded: added fresh; changed api, web; removed old"]
    );
    tm.wait_for_log(
        "web: autorestart, stoptime changed in place, no restart",
        TIMEOUT,
    );
    tm.wait_for_log("api: restarted: cmd changed", TIMEOUT);
    tm.shutdown();
}

#[test]
fn a_reload_applies_new_rotation_sizes_to_the_running_process_s_log_without_a_restart() {
    let sandbox = Sandbox::new();
    let talker = |maxbytes: &str| {
        let stop = sandbox.file_str("stop");
        program(
            "talker",
            &fixture_cmd(&["lines-until", &stop, "0.002"]),
            &[
                "stdout: talker.log",
                &format!("stdout_maxbytes: {maxbytes}"),
                "stdout_backups: 3",
            ],
        )
    };
    // Not rotated yet at first (a file never rotated, `0`, the process writes itself, and
    // turning rotation on restarts it: the unit test of `changes` covers that).
    sandbox.write_config(&config(&[talker("100MB")]));
    let mut tm = Taskmaster::start(&sandbox, &[]);
    let pid = tm.running_pid("talker");
    sandbox.wait_for_contents("talker.log", |text| text.contains("line 2\n"), TIMEOUT);

    sandbox.write_config(&config(&[talker("1KB")]));
    assert_eq!(
        tm.command_all("reread"),
        ["talker: changed (in place: rotation)"]
    );
    assert_eq!(tm.command_all("reload"), ["reloaded: changed talker"]);
    tm.wait_for_log("talker: rotation changed in place, no restart", TIMEOUT);
    // The running process's file rotates by the new size: the first rotated file holds what
    // was there, each after it exactly 1KB.
    wait_until("talker.log.2", TIMEOUT, || {
        sandbox.file("talker.log.2").exists().then_some(())
    });
    let size = fs::metadata(sandbox.file("talker.log.1"))
        .expect("talker.log.1")
        .len();
    assert_eq!(size, 1024);
    assert_eq!(tm.running_pid("talker"), pid, "talker was restarted");
    fs::write(sandbox.file("stop"), "").expect("write stop");
    tm.shutdown();
}

/// A reload reads the file beside the loop, which goes on meanwhile: with the configuration a
/// FIFO whose writer has not come yet (as a slow disk or a huge file would keep a read), the
/// reload waits and `status` still answers; once the file comes, the reload is answered.
#[test]
fn the_loop_answers_while_a_reload_reads_the_file() {
    let sandbox = Sandbox::new();
    let text =
        fs::read_to_string(sandbox.write_config(&config(&[program("steady", &sleeper(), &[])])))
            .expect("read the configuration back");
    let path = sandbox.config_path();
    fs::remove_file(&path).expect("remove the file");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    // Each read of the FIFO takes what one writer writes, once a reader has opened it.
    let write_once = || {
        let (path, text) = (path.clone(), text.clone());
        std::thread::spawn(move || fs::write(&path, text).expect("write the FIFO"))
    };
    let first = write_once();
    let mut tm = Taskmaster::start_serving(&sandbox, &[]);
    first.join().expect("the first writer");
    let steady = tm.running_pid("steady");

    let reload = {
        let command = sandbox.ctl_command(&["reload"]);
        std::thread::spawn(move || run_to_completion(command, TIMEOUT))
    };
    tm.wait_for_log("command: reload", TIMEOUT);
    // The read is waiting for a writer: the loop is not.
    let status = sandbox.ctl(&["status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(status.stdout.contains("RUNNING"), "{status:?}");
    assert!(
        !reload.is_finished(),
        "the reload answered before its file came"
    );

    let writer = write_once();
    let answer = reload.join().expect("the reload");
    writer.join().expect("the second writer");
    assert_eq!(answer.status.code(), Some(0), "{answer:?}");
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("reloaded: nothing changed"),
        "{answer:?}"
    );
    assert_eq!(tm.running_pid("steady"), steady);
}
