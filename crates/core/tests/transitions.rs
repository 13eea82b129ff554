//! Every transition of the state machine, driven through a fake world.

mod world;

use taskmaster_core::{Done, Failure, Outcome, Reply, Request, Scope, Signal};
use world::{code, killed, secs, Sent, World};

const WEB: &str = "
programs:
  web:
    cmd: /bin/web
    starttime: 2
    stoptime: 5
";

fn outcomes(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Outcomes(o) => o.iter().map(Outcome::to_string).collect(),
        other => panic!("expected outcomes, got {other:?}"),
    }
}

#[test]
fn autostart_programs_are_spawned_at_once() {
    let w = World::new(WEB);
    assert_eq!(w.state("web"), "STARTING");
    assert_eq!(w.spawn_count("web"), 1);
}

#[test]
fn programs_without_autostart_stay_stopped() {
    let w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    assert_eq!(w.state("web"), "STOPPED");
    assert!(w.spawns.is_empty());
}

#[test]
fn a_process_is_running_once_up_for_starttime() {
    let mut w = World::new(WEB);
    w.advance(secs(1.9));
    assert_eq!(w.state("web"), "STARTING");
    w.advance(secs(0.1));
    assert_eq!(w.state("web"), "RUNNING");
}

#[test]
fn starttime_zero_is_running_as_soon_as_spawned() {
    let w = World::new("programs:\n  once:\n    cmd: /bin/once\n    starttime: 0\n");
    assert_eq!(w.state("once"), "RUNNING");
}

#[test]
fn failed_starts_back_off_one_two_three_seconds_then_give_up() {
    // startretries 3: the first attempt and three retries, as supervisord does.
    let mut w = World::new(WEB);
    let mut delays = Vec::new();
    for attempt in 1..=4 {
        assert_eq!(w.spawn_count("web"), attempt);
        w.exit("web", code(1));
        if attempt == 4 {
            break;
        }
        assert_eq!(w.state("web"), "BACKOFF");
        let before = w.now;
        let deadline = w.sup.next_deadline().expect("a retry is scheduled");
        delays.push(deadline.since(before).as_secs());
        w.advance(deadline.since(before));
        assert_eq!(w.state("web"), "STARTING");
    }
    assert_eq!(delays, [1, 2, 3]);
    assert_eq!(w.state("web"), "FATAL");
    assert_eq!(w.sup.next_deadline(), None, "nothing more is scheduled");
    assert!(w.logs.iter().any(|l| l.contains("gave up")), "{:?}", w.logs);
}

#[test]
fn startretries_zero_gives_up_after_the_first_failure() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    startretries: 0\n");
    w.exit("web", code(1));
    assert_eq!(w.state("web"), "FATAL");
}

#[test]
fn running_resets_the_failed_start_count() {
    let mut w = World::new(WEB);
    w.exit("web", code(1));
    w.advance(secs(1.0));
    w.advance(secs(2.0));
    assert_eq!(w.state("web"), "RUNNING");
    assert_eq!(w.sup.process("web").unwrap().backoff, 0);
}

#[test]
fn a_spawn_error_backs_off_then_is_fatal_with_the_error_as_description() {
    let mut w = World::with_failing(WEB, &[("web", "cannot execute /bin/web: No such file")]);
    assert_eq!(w.state("web"), "BACKOFF");
    w.advance(secs(10.0));
    assert_eq!(w.state("web"), "FATAL");
    assert_eq!(w.spawn_count("web"), 4);
    let Reply::Status { now, processes, .. } = w.ask(Request::Status(vec![])) else {
        panic!()
    };
    assert_eq!(
        processes[0].description(now, |_| String::new()),
        "cannot execute /bin/web: No such file"
    );
}

#[test]
fn exiting_too_quickly_is_described_like_supervisord() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    startretries: 0\n");
    w.exit("web", code(0));
    let Reply::Status { now, processes, .. } = w.ask(Request::Status(vec![])) else {
        panic!()
    };
    assert_eq!(
        processes[0].description(now, |_| String::new()),
        "Exited too quickly (process log may have details)"
    );
}

fn running(yaml_extra: &str) -> World {
    let mut w = World::new(&format!(
        "programs:\n  web:\n    cmd: /bin/web\n    starttime: 1\n{yaml_extra}"
    ));
    w.advance(secs(1.0));
    assert_eq!(w.state("web"), "RUNNING");
    w
}

#[test]
fn autorestart_unexpected_restarts_only_on_an_unexpected_code() {
    let mut w = running("    exitcodes: [0, 2]\n");
    w.exit("web", code(2));
    assert_eq!(w.state("web"), "EXITED");
    assert_eq!(w.spawn_count("web"), 1);

    let mut w = running("    exitcodes: [0, 2]\n");
    w.exit("web", code(3));
    assert_eq!(w.state("web"), "STARTING");
    assert_eq!(w.spawn_count("web"), 2);
}

#[test]
fn a_signal_death_is_never_expected() {
    let mut w = running("    exitcodes: 0\n");
    w.exit("web", killed(Signal::SEGV));
    assert_eq!(w.state("web"), "STARTING", "restarted");
    let last = w.sup.process("web").unwrap().last_exit.clone().unwrap();
    assert!(!last.expected);
}

#[test]
fn autorestart_always_restarts_even_an_expected_exit() {
    let mut w = running("    autorestart: always\n");
    w.exit("web", code(0));
    assert_eq!(w.state("web"), "STARTING");
}

#[test]
fn autorestart_never_leaves_it_exited() {
    let mut w = running("    autorestart: never\n");
    w.exit("web", code(9));
    assert_eq!(w.state("web"), "EXITED");
    assert_eq!(w.spawn_count("web"), 1);
}

#[test]
fn autorestart_true_and_false_mean_always_and_never() {
    let mut w = running("    autorestart: true\n");
    w.exit("web", code(0));
    assert_eq!(w.state("web"), "STARTING");
    let mut w = running("    autorestart: false\n");
    w.exit("web", code(1));
    assert_eq!(w.state("web"), "EXITED");
}

#[test]
fn stop_sends_stopsignal_to_the_group_then_sigkill_after_stoptime() {
    let mut w = running("    stopsignal: USR1\n    stoptime: 5\n");
    let pid = w.pid("web");
    let ticket = w.request(Request::Stop(vec!["web".into()]));
    assert_eq!(w.state("web"), "STOPPING");
    assert_eq!(
        w.signals.last(),
        Some(&Sent {
            pid,
            signal: Signal::USR1,
            scope: Scope::Group
        })
    );
    assert!(w.reply(ticket).is_none(), "stop waits for the exit");
    w.advance(secs(4.9));
    assert_eq!(w.signals.len(), 1, "no SIGKILL before stoptime");
    w.advance(secs(0.1));
    assert_eq!(
        w.signals.last(),
        Some(&Sent {
            pid,
            signal: Signal::KILL,
            scope: Scope::Group
        })
    );
    w.exit("web", killed(Signal::KILL));
    assert_eq!(w.state("web"), "STOPPED");
    assert_eq!(outcomes(w.reply(ticket).unwrap()), ["web: stopped"]);
    assert_eq!(
        w.spawn_count("web"),
        1,
        "a stopped process is not restarted"
    );
}

#[test]
fn after_a_stop_the_rest_of_the_group_is_killed_and_the_stop_waits_for_it() {
    let mut w = running("");
    let pid = w.pid("web");
    let ticket = w.request(Request::Stop(vec!["web".into()]));
    w.exit_leaving_group("web", code(0));
    assert_eq!(
        w.signals.last(),
        Some(&Sent {
            pid,
            signal: Signal::KILL,
            scope: Scope::Group
        })
    );
    assert_eq!(w.state("web"), "STOPPING");
    assert_eq!(w.watched_groups, [pid]);
    assert!(w.reply(ticket).is_none(), "stopped while its group runs");
    w.group_gone(pid);
    assert_eq!(w.state("web"), "STOPPED");
    assert_eq!(outcomes(w.reply(ticket).unwrap()), ["web: stopped"]);
}

#[test]
fn a_crash_that_leaves_its_group_stops_the_group_before_the_restart() {
    let mut w = running("    autorestart: always\n    stopsignal: INT\n    stoptime: 5\n");
    let pid = w.pid("web");
    w.exit_leaving_group("web", killed(Signal::SEGV));
    assert_eq!(w.state("web"), "STOPPING");
    assert_eq!(
        w.signals[w.signals.len() - 2..],
        [
            Sent {
                pid,
                signal: Signal::INT,
                scope: Scope::Group
            },
            Sent {
                pid,
                signal: Signal::CONT,
                scope: Scope::Group
            }
        ]
    );
    assert_eq!(w.spawn_count("web"), 1, "restarted while its group runs");
    // The group ignores the stop signal: SIGKILL after stoptime.
    w.advance(secs(5.0));
    assert_eq!(
        w.signals.last(),
        Some(&Sent {
            pid,
            signal: Signal::KILL,
            scope: Scope::Group
        })
    );
    w.group_gone(pid);
    assert_eq!(w.spawn_count("web"), 2, "restarted once its group is gone");
    assert_eq!(w.state("web"), "STARTING");
    let last = w.sup.process("web").and_then(|p| p.last_exit.clone());
    assert_eq!(
        last.map(|e| e.cause),
        Some(taskmaster_core::ExitCause::Crashed),
        "the exit is the crash, not the group's stop"
    );
}

#[test]
fn with_killgroup_false_what_is_left_of_the_group_is_left_alone() {
    let mut w = running("    autorestart: always\n    killgroup: false\n");
    let signals = w.signals.len();
    w.exit_leaving_group("web", code(1));
    assert_eq!(w.signals.len(), signals, "a signal was sent");
    assert!(w.watched_groups.is_empty());
    assert_eq!(w.spawn_count("web"), 2);
}

#[test]
fn stopping_a_process_in_backoff_cancels_its_retry() {
    let mut w = World::new(WEB);
    w.exit("web", code(1));
    assert_eq!(w.state("web"), "BACKOFF");
    assert_eq!(
        outcomes(&w.ask(Request::Stop(vec!["web".into()]))),
        ["web: stopped"]
    );
    assert_eq!(w.state("web"), "STOPPED");
    w.advance(secs(60.0));
    assert_eq!(w.spawn_count("web"), 1);
}

#[test]
fn start_answers_once_the_process_is_running() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    let ticket = w.request(Request::Start(vec!["web".into()]));
    assert_eq!(w.state("web"), "STARTING");
    assert!(w.reply(ticket).is_none());
    w.advance(secs(1.0));
    assert_eq!(outcomes(w.reply(ticket).unwrap()), ["web: started"]);
}

#[test]
fn start_reports_an_abnormal_termination_at_the_first_failed_attempt() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    let ticket = w.request(Request::Start(vec!["web".into()]));
    w.exit("web", code(1));
    assert_eq!(
        outcomes(w.reply(ticket).unwrap()),
        ["web: ERROR (abnormal termination)"]
    );
}

#[test]
fn start_reports_a_spawn_error() {
    let mut w = World::with_failing(
        "programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n",
        &[("web", "cannot execute")],
    );
    let reply = w.ask(Request::Start(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: ERROR (spawn error)"]);
}

#[test]
fn errors_name_the_process_like_supervisorctl() {
    let mut w = running("");
    // In the order named, as supervisorctl prints them.
    let reply = w.ask(Request::Start(vec!["web".into(), "nope".into()]));
    assert_eq!(
        outcomes(&reply),
        [
            "web: ERROR (already started)",
            "nope: ERROR (no such process)"
        ]
    );
    let reply = w.ask(Request::Start(vec!["nope".into(), "web".into()]));
    assert_eq!(
        outcomes(&reply),
        [
            "nope: ERROR (no such process)",
            "web: ERROR (already started)"
        ]
    );
    w.request(Request::Stop(vec!["web".into()]));
    w.exit("web", code(0));
    let reply = w.ask(Request::Stop(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: ERROR (not running)"]);
}

#[test]
fn restart_stops_then_starts() {
    let mut w = running("");
    let first = w.pid("web");
    let ticket = w.request(Request::Restart(vec!["web".into()]));
    w.exit("web", killed(Signal::TERM));
    assert_eq!(w.state("web"), "STARTING");
    assert_ne!(w.pid("web"), first);
    w.advance(secs(1.0));
    assert_eq!(
        outcomes(w.reply(ticket).unwrap()),
        ["web: stopped", "web: started"]
    );
}

#[test]
fn restart_of_a_stopped_process_just_starts_it() {
    let mut w = World::new(
        "programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n    starttime: 0\n",
    );
    let reply = w.ask(Request::Restart(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: started"]);
}

#[test]
fn start_while_stopping_starts_again_once_stopped() {
    let mut w = running("");
    w.request(Request::Stop(vec!["web".into()]));
    let ticket = w.request(Request::Start(vec!["web".into()]));
    w.exit("web", code(0));
    assert_eq!(w.state("web"), "STARTING");
    w.advance(secs(1.0));
    assert_eq!(outcomes(w.reply(ticket).unwrap()), ["web: started"]);
}

#[test]
fn signal_goes_to_the_process_alone() {
    let mut w = running("");
    let pid = w.pid("web");
    let reply = w.ask(Request::Signal {
        signal: Signal::HUP,
        targets: vec!["web".into()],
    });
    assert_eq!(outcomes(&reply), ["web: signalled"]);
    assert_eq!(
        w.signals.last(),
        Some(&Sent {
            pid,
            signal: Signal::HUP,
            scope: Scope::Process
        })
    );
}

#[test]
fn signal_to_a_stopped_process_is_not_running() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    let reply = w.ask(Request::Signal {
        signal: Signal::HUP,
        targets: vec!["web".into()],
    });
    assert_eq!(outcomes(&reply), ["web: ERROR (not running)"]);
}

const INPUT: &str = "
programs:
  reader:
    cmd: /bin/reader
    stdin: pipe
    numprocs: 2
    starttime: 0
  web:
    cmd: /bin/web
    starttime: 0
  idle:
    cmd: /bin/idle
    stdin: pipe
    autostart: false
";

fn send_stdin(w: &mut World, target: &str, data: &[u8]) -> Vec<String> {
    outcomes(&w.ask(Request::SendStdin {
        targets: vec![target.into()],
        data: data.to_vec(),
    }))
}

#[test]
fn sendstdin_queues_the_data_for_the_child_of_each_process_with_a_pipe() {
    let mut w = World::new(INPUT);
    let first = w.pid("reader:reader_00");
    assert_eq!(
        send_stdin(&mut w, "reader:reader_00", b"hi\n"),
        ["reader:reader_00: sent"]
    );
    assert_eq!(
        w.stdin_writes,
        [("reader:reader_00".to_string(), first, b"hi\n".to_vec())]
    );
    // A group: each of its processes.
    assert_eq!(
        send_stdin(&mut w, "reader", b"x"),
        ["reader:reader_00: sent", "reader:reader_01: sent"]
    );
    // `all`: the processes without a pipe are left out, not errors.
    assert_eq!(
        send_stdin(&mut w, "all", b"y"),
        ["reader:reader_00: sent", "reader:reader_01: sent"]
    );
}

#[test]
fn sendstdin_says_why_a_process_named_alone_takes_nothing() {
    let mut w = World::new(INPUT);
    let web = send_stdin(&mut w, "web", b"x");
    assert_eq!(
        web,
        ["web: ERROR (no stdin: its stdin is not a pipe (set `stdin: pipe` in its program))"]
    );
    assert_eq!(
        send_stdin(&mut w, "idle", b"x"),
        ["idle: ERROR (not running)"]
    );
    assert_eq!(
        send_stdin(&mut w, "nope", b"x"),
        ["nope: ERROR (no such process)"]
    );
    // A process being stopped takes no more input (supervisord: `killing`).
    w.request(Request::Stop(vec!["reader:reader_00".into()]));
    assert_eq!(w.state("reader:reader_00"), "STOPPING");
    assert_eq!(
        send_stdin(&mut w, "reader:reader_00", b"x"),
        ["reader:reader_00: ERROR (not running)"]
    );
    assert!(w.stdin_writes.is_empty());
    // Input is not a command line of the event log: an attach sends one per line typed.
    assert!(
        !w.logs.iter().any(|line| line.contains("sendstdin")),
        "{:?}",
        w.logs
    );
}

#[test]
fn a_remote_communication_event_is_recorded_in_the_event_log_on_one_line() {
    let mut w = World::new(INPUT);
    let before = w.logs.len();
    let reply = w.ask(Request::RemoteCommEvent {
        kind: "deploy".into(),
        data: "done\nnext".into(),
    });
    assert_eq!(reply, Reply::Recorded);
    assert_eq!(
        w.logs[before..],
        ["remote communication event \"deploy\": \"done\\nnext\""]
    );
    // Long data is cut, and its size said.
    w.ask(Request::RemoteCommEvent {
        kind: "bulk".into(),
        data: "x".repeat(1000),
    });
    assert_eq!(
        w.logs.last().map(String::as_str),
        Some(&*format!(
            "remote communication event \"bulk\": \"{}\"... (1000 bytes)",
            "x".repeat(200)
        ))
    );
}

const WORKERS: &str = "
programs:
  workers:
    cmd: /bin/worker
    numprocs: 3
    starttime: 0
  web:
    cmd: /bin/web
    starttime: 0
";

#[test]
fn numprocs_makes_a_group_of_numbered_processes() {
    let w = World::new(WORKERS);
    let names: Vec<&str> = w.sup.processes().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "web",
            "workers:workers_00",
            "workers:workers_01",
            "workers:workers_02"
        ]
    );
}

#[test]
fn a_group_is_addressed_by_name_by_star_or_each_process() {
    let mut w = World::new(WORKERS);
    for target in ["workers:*", "workers"] {
        let Reply::Pids { pids, errors } = w.ask(Request::Pid(vec![target.into()])) else {
            panic!()
        };
        assert!(errors.is_empty());
        assert_eq!(pids.len(), 3, "{target}");
    }
    for target in ["workers:workers_01", "workers_01"] {
        let Reply::Pids { pids, .. } = w.ask(Request::Pid(vec![target.into()])) else {
            panic!()
        };
        assert_eq!(pids[0].0, "workers:workers_01");
    }
    let Reply::Pids { pids, .. } = w.ask(Request::Pid(vec!["all".into()])) else {
        panic!()
    };
    assert_eq!(pids.len(), 4);
    let Reply::Pids { errors, .. } = w.ask(Request::Pid(vec!["workers:nope".into()])) else {
        panic!()
    };
    assert_eq!(errors.len(), 1);
}

#[test]
fn group_colon_process_names_a_lone_program_too_as_supervisord_reads_it() {
    let mut w = World::new(WORKERS);
    for (target, process) in [
        ("web:web", "web"),
        ("workers:workers_02", "workers:workers_02"),
    ] {
        let Reply::Pids { pids, errors } = w.ask(Request::Pid(vec![target.into()])) else {
            panic!()
        };
        assert!(errors.is_empty(), "{target}");
        assert_eq!(pids.len(), 1, "{target}");
        assert_eq!(pids[0].0, process, "{target}");
    }
    // The group must be the process's own.
    for target in ["web:workers_00", "workers:web", "nope:web", "web:"] {
        let Reply::Pids { pids, errors } = w.ask(Request::Pid(vec![target.into()])) else {
            panic!()
        };
        assert!(pids.is_empty(), "{target}: {pids:?}");
        assert_eq!(errors.len(), 1, "{target}");
    }
    // Named alone: a start of the running process is refused, not passed over.
    let again = w.ask(Request::Start(vec!["web:web".into()]));
    assert_eq!(outcomes(&again), ["web: ERROR (already started)"]);
}

#[test]
fn pid_without_a_name_is_the_daemons() {
    let mut w = World::new(WORKERS);
    assert_eq!(w.ask(Request::Pid(vec![])), Reply::DaemonPid(1));
}

#[test]
fn the_pid_of_an_unknown_child_is_ignored() {
    let mut w = running("");
    let before = w.logs.len();
    w.handle(taskmaster_core::Event::Exited {
        pid: 99_999,
        status: code(0),
        leftovers: false,
    });
    assert_eq!(w.state("web"), "RUNNING");
    assert_eq!(w.logs.len(), before);
}

#[test]
fn an_unchanged_reload_touches_nothing() {
    let mut w = World::new(WORKERS);
    let (spawns, signals) = (w.spawns.len(), w.signals.len());
    let reply = w.reload(WORKERS);
    assert!(matches!(reply, Reply::Reloaded(plan) if plan.is_empty()));
    assert_eq!((w.spawns.len(), w.signals.len()), (spawns, signals));
}

#[test]
fn reload_restarts_changed_stops_removed_starts_added_and_leaves_the_rest() {
    let mut w = World::new(WORKERS);
    let web_pid = w.pid("web");
    let new = "
programs:
  workers:
    cmd: /bin/worker --fast
    numprocs: 2
    starttime: 0
  api:
    cmd: /bin/api
    starttime: 0
";
    let Reply::Reloaded(plan) = w.reload(new) else {
        panic!()
    };
    assert_eq!(plan.added, ["api"]);
    assert_eq!(plan.changed, ["workers"]);
    assert_eq!(plan.removed, ["web"]);
    assert_eq!(w.state("api"), "RUNNING");
    assert_eq!(w.state("web"), "STOPPING");
    // Each old worker stops; its replacement waits until it is gone, and the third goes.
    let old: Vec<u32> = (0..3)
        .map(|i| w.pid(&format!("workers:workers_0{i}")))
        .collect();
    w.handle(taskmaster_core::Event::Exited {
        pid: old[0],
        status: code(0),
        leftovers: false,
    });
    assert_eq!(w.spawn_count("workers:workers_00"), 2, "workers_00 is back");
    assert_eq!(
        w.spawn_count("workers:workers_01"),
        1,
        "waits for its own old process"
    );
    for pid in &old[1..] {
        w.handle(taskmaster_core::Event::Exited {
            pid: *pid,
            status: code(0),
            leftovers: false,
        });
    }
    let names: Vec<&str> = w.sup.processes().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["api", "web", "workers:workers_00", "workers:workers_01"]
    );
    assert_eq!(w.spawn_count("workers:workers_01"), 2);
    assert_eq!(
        w.sup.process("workers:workers_00").unwrap().spec.cmd,
        "/bin/worker --fast"
    );
    w.handle(taskmaster_core::Event::Exited {
        pid: web_pid,
        status: code(0),
        leftovers: false,
    });
    assert!(w.sup.process("web").is_none(), "removed once stopped");
}

#[test]
fn processes_still_stopping_from_a_reload_come_back_with_the_newest_file() {
    let mut w = World::new(WORKERS);
    let web_pid = w.pid("web");
    let worker_pid = w.pid("workers:workers_00");
    // web goes; the workers change.
    w.reload(
        &WORKERS
            .replace("/bin/worker", "/bin/worker --v2")
            .replace("  web:\n    cmd: /bin/web\n    starttime: 0\n", ""),
    );
    assert_eq!(w.state("web"), "STOPPING");
    assert_eq!(w.state("workers:workers_00"), "STOPPING");
    // Before they are gone, a file that wants web again and the workers changed once more.
    w.reload(&WORKERS.replace("/bin/worker", "/bin/worker --v3"));
    for pid in [web_pid, worker_pid] {
        w.handle(taskmaster_core::Event::Exited {
            pid,
            status: code(0),
            leftovers: false,
        });
    }
    assert_eq!(w.state("web"), "RUNNING", "web came back");
    assert_eq!(w.spawn_count("web"), 2);
    assert_eq!(w.spawn_count("workers:workers_00"), 2);
    assert_eq!(
        w.sup
            .process("workers:workers_00")
            .expect("workers_00")
            .spec
            .cmd,
        "/bin/worker --v3"
    );
}

#[test]
fn a_process_a_reload_leaves_alone_holds_the_new_settings_and_is_not_a_change() {
    let mut w = World::new(WORKERS);
    w.sup.keep_changes();
    let Reply::Reloaded(plan) = w.reload(WORKERS) else {
        panic!()
    };
    assert!(plan.changed.is_empty() && plan.added.is_empty() && plan.removed.is_empty());
    // One copy of the settings, the configuration's, not the old one beside it.
    let web = w.sup.process("web").expect("web");
    let configured = &w.sup.config().programs["web"].processes[0].spec;
    assert!(std::sync::Arc::ptr_eq(&web.spec, configured));
    let changes = w.sup.take_changes();
    assert_eq!(changes.names().count(), 0, "no record changed");
}

#[test]
fn an_unchanged_program_keeps_the_running_copy_of_its_settings() {
    let mut w = World::new(WORKERS);
    let running = std::sync::Arc::clone(&w.sup.process("web").expect("web").spec);
    w.reload(WORKERS);
    // Kept, not swapped for the file's equal copy: nothing of it was compared twice.
    let web = w.sup.process("web").expect("web");
    assert!(std::sync::Arc::ptr_eq(&web.spec, &running));
}

#[test]
fn a_rejected_reload_changes_nothing() {
    let mut w = World::new(WORKERS);
    let before = w.sup.clone();
    let ticket = w.request(Request::Reload);
    w.handle(taskmaster_core::Event::ConfigLoaded {
        ticket: Some(ticket),
        purpose: taskmaster_core::LoadPurpose::Apply,
        result: Err(vec!["taskmaster.yaml:3:5: programs.web.cmd: missing".into()]),
    });
    assert!(matches!(w.reply(ticket), Some(Reply::ReloadRejected(e)) if e.len() == 1));
    // Nothing but the count of refused reloads (for the metrics).
    assert_eq!(w.sup.config(), before.config());
    assert!(w.sup.processes().eq(before.processes()));
    assert!(w.logs.iter().any(|l| l.contains("reload rejected")));
}

#[test]
fn a_reload_without_a_ticket_still_applies() {
    let mut w = World::new(WORKERS);
    w.handle(taskmaster_core::Event::Request {
        ticket: None,
        request: Request::Reload,
    });
    assert_eq!(w.loads, [None]);
    w.handle(taskmaster_core::Event::ConfigLoaded {
        ticket: None,
        purpose: taskmaster_core::LoadPurpose::Apply,
        result: Ok(Box::new(world::config("programs: {}\n"))),
    });
    assert!(w.replies.is_empty());
    assert!(w.sup.processes().all(|p| p.state.name() == "STOPPING"));
}

#[test]
fn shutdown_stops_everything_and_exits_when_the_last_is_gone() {
    let mut w = World::new(WORKERS);
    w.exit("web", code(1)); // an unexpected exit: restarted before the shutdown
    assert_eq!(w.ask(Request::Shutdown), Reply::ShuttingDown);
    let pids: Vec<u32> = w.sup.processes().filter_map(|p| p.pid).collect();
    assert_eq!(pids.len(), 4);
    for (i, pid) in pids.iter().enumerate() {
        assert!(!w.exited, "exit before every process stopped");
        w.handle(taskmaster_core::Event::Exited {
            pid: *pid,
            status: code(i as i32),
            leftovers: false,
        });
    }
    assert!(w.exited);
    assert!(w.sup.processes().all(|p| p.state.name() == "STOPPED"));
}

#[test]
fn nothing_starts_during_a_shutdown() {
    let mut w = running("    autorestart: always\n");
    w.ask(Request::Shutdown);
    let reply = w.ask(Request::Start(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: ERROR (shutting down)"]);
    w.exit("web", code(0));
    assert_eq!(w.spawn_count("web"), 1);
    let reply = w.ask(Request::Start(vec!["web".into()]));
    assert_eq!(outcomes(&reply), ["web: ERROR (shutting down)"]);
}

#[test]
fn shutdown_with_nothing_running_exits_at_once() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    w.ask(Request::Shutdown);
    assert!(w.exited);
}

#[test]
fn commands_are_written_to_the_event_log() {
    let mut w = running("");
    w.ask(Request::Signal {
        signal: Signal::HUP,
        targets: vec!["web".into()],
    });
    assert!(
        w.logs.iter().any(|l| l == "command: signal HUP web"),
        "{:?}",
        w.logs
    );
}

#[test]
fn exits_are_logged_with_code_signal_and_verdict() {
    let mut w = running("    autorestart: never\n");
    w.exit("web", code(3));
    assert!(
        w.logs
            .iter()
            .any(|l| l == "web: exited with code 3 (not expected)"),
        "{:?}",
        w.logs
    );
    let mut w = running("    autorestart: never\n");
    w.exit(
        "web",
        taskmaster_core::ExitStatus::Signal {
            signal: Signal::SEGV,
            core_dumped: true,
        },
    );
    assert!(
        w.logs
            .iter()
            .any(|l| l == "web: crashed: SIGSEGV (core dumped)"),
        "{:?}",
        w.logs
    );
}

#[test]
fn the_supervisor_state_round_trips_through_serde() {
    // What a hot backup needs: the whole state as plain data.
    let mut w = running("");
    w.request(Request::Stop(vec!["web".into()])); // a waiting request and a deadline
    let text = serde_json::to_string(&w.sup).expect("serializes");
    let copy: taskmaster_core::Supervisor = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(copy, w.sup);
    assert_eq!(copy.next_deadline(), w.sup.next_deadline());
    let _ = (Done::Started, Failure::Removed);
}

#[test]
fn a_copy_kept_up_to_date_by_changes_is_the_original() {
    // What a hot backup gets after every turn: what changed, not the whole state.
    let mut w = running("  db:\n    cmd: /bin/db\n    starttime: 0\n");
    let text = serde_json::to_string(&w.sup).expect("serializes");
    let mut copy: taskmaster_core::Supervisor = serde_json::from_str(&text).expect("reads");
    w.sup.keep_changes();
    let apply = |w: &mut World, copy: &mut taskmaster_core::Supervisor| {
        let changes = w.sup.take_changes();
        let text = serde_json::to_string(&changes).expect("serializes");
        copy.apply_changes(serde_json::from_str(&text).expect("reads"));
        assert_eq!(*copy, w.sup);
        assert_eq!(copy.next_deadline(), w.sup.next_deadline());
    };
    w.request(Request::Stop(vec!["web".into()])); // a waiting request and a deadline
    apply(&mut w, &mut copy);
    let changes = w.sup.take_changes();
    assert_eq!(changes.names().count(), 0, "nothing changed since");
    copy.apply_changes(changes);
    w.exit("web", code(0));
    w.request(Request::RemoveGroup(vec!["web".into()]));
    apply(&mut w, &mut copy);
    assert!(copy.process("web").is_none());
    w.request(Request::Shutdown);
    apply(&mut w, &mut copy);
}

#[test]
fn a_second_shutdown_is_answered_but_not_logged_again() {
    let mut w = running("");
    w.ask(Request::Shutdown);
    let logged = w.logs.len();
    assert_eq!(w.ask(Request::Shutdown), Reply::ShuttingDown);
    assert_eq!(w.logs.len(), logged);
}

const MIXED: &str = "
programs:
  web:
    cmd: /bin/web
    starttime: 0
  idle:
    cmd: /bin/idle
    autostart: false
  workers:
    cmd: /bin/worker
    numprocs: 2
    starttime: 0
";

#[test]
fn stop_all_stops_what_runs_and_says_nothing_of_the_rest() {
    let mut w = World::new(MIXED);
    let ticket = w.request(Request::Stop(vec!["all".into()]));
    for name in ["web", "workers:workers_00", "workers:workers_01"] {
        w.exit(name, killed(Signal::TERM));
    }
    assert_eq!(
        outcomes(w.reply(ticket).unwrap()),
        [
            "web: stopped",
            "workers:workers_00: stopped",
            "workers:workers_01: stopped"
        ]
    );
}

#[test]
fn start_of_a_group_starts_what_is_stopped_and_says_nothing_of_the_rest() {
    let mut w = World::new(MIXED);
    w.request(Request::Stop(vec!["workers:workers_01".into()]));
    w.exit("workers:workers_01", killed(Signal::TERM));
    let reply = w.ask(Request::Start(vec!["workers:*".into()]));
    assert_eq!(outcomes(&reply), ["workers:workers_01: started"]);
}

#[test]
fn a_process_named_alone_still_gets_its_error() {
    let mut w = World::new(MIXED);
    let ticket = w.request(Request::Stop(vec!["idle".into(), "all".into()]));
    for name in ["web", "workers:workers_00", "workers:workers_01"] {
        w.exit(name, killed(Signal::TERM));
    }
    let reply = outcomes(w.reply(ticket).unwrap());
    assert_eq!(reply[0], "idle: ERROR (not running)");
    assert_eq!(reply.len(), 4, "{reply:?}");
}

#[test]
fn signal_all_signals_what_runs() {
    let mut w = World::new(MIXED);
    let reply = w.ask(Request::Signal {
        signal: Signal::HUP,
        targets: vec!["all".into()],
    });
    assert_eq!(outcomes(&reply).len(), 3, "idle is skipped: {reply:?}");
}

#[test]
fn requests_from_signals_are_not_logged_as_commands() {
    let mut w = running("");
    w.handle(taskmaster_core::Event::Request {
        ticket: None,
        request: Request::Reload,
    });
    assert!(
        !w.logs.iter().any(|l| l.starts_with("command:")),
        "{:?}",
        w.logs
    );
}

const TWO: &str = "
programs:
  web:
    cmd: /bin/web
    starttime: 0
  old:
    cmd: /bin/old
    starttime: 0
";

const TWO_NEXT: &str = "
programs:
  web:
    cmd: /bin/web --new
    starttime: 0
  api:
    cmd: /bin/api
    starttime: 0
";

#[test]
fn reread_reports_the_difference_and_changes_nothing() {
    let mut w = World::new(TWO);
    let (spawns, signals) = (w.spawns.len(), w.signals.len());
    let Reply::Compared(plan) = w.reread(TWO_NEXT) else {
        panic!()
    };
    assert_eq!(
        (plan.added, plan.changed, plan.removed),
        (
            vec!["api".to_string()],
            vec!["web".to_string()],
            vec!["old".to_string()]
        )
    );
    assert_eq!((w.spawns.len(), w.signals.len()), (spawns, signals));
    assert!(w.sup.process("api").is_none());
}

#[test]
fn add_takes_a_program_from_the_reread_file_and_starts_it() {
    let mut w = World::new(TWO);
    w.reread(TWO_NEXT);
    let reply = w.ask(Request::AddGroup(vec!["api".into()]));
    assert_eq!(outcomes(&reply), ["api: added process group"]);
    assert_eq!(w.state("api"), "RUNNING");
    assert!(w.sup.config().programs.contains_key("api"));
    // Now in force, so a second add is refused, and an unknown name too.
    let reply = w.ask(Request::AddGroup(vec!["api".into(), "nope".into()]));
    assert_eq!(
        outcomes(&reply),
        [
            "api: ERROR (already added)",
            "nope: ERROR (no such process)"
        ]
    );
}

#[test]
fn remove_refuses_a_running_program_and_forgets_a_stopped_one() {
    let mut w = World::new(TWO);
    let reply = w.ask(Request::RemoveGroup(vec!["old".into()]));
    assert_eq!(
        outcomes(&reply),
        ["old: ERROR (process group still running)"]
    );
    w.request(Request::Stop(vec!["old".into()]));
    w.exit("old", killed(Signal::TERM));
    let reply = w.ask(Request::RemoveGroup(vec!["old".into()]));
    assert_eq!(outcomes(&reply), ["old: removed process group"]);
    assert!(w.sup.process("old").is_none());
    assert!(!w.sup.config().programs.contains_key("old"));
}

#[test]
fn a_reload_forgets_what_a_reread_staged() {
    let mut w = World::new(TWO);
    w.reread(TWO_NEXT);
    w.reload(TWO);
    let Reply::Config { staged, .. } = w.ask(Request::Config) else {
        panic!()
    };
    assert!(staged.is_none());
}

const PRIORITIES: &str = "
programs:
  db:
    cmd: /bin/db
    priority: 1
    starttime: 0
  web:
    cmd: /bin/web
    priority: 500
    starttime: 0
  cache:
    cmd: /bin/cache
    priority: 1
    starttime: 0
  worker:
    cmd: /bin/worker
    starttime: 0
";

#[test]
fn programs_start_in_ascending_priority() {
    let w = World::new(PRIORITIES);
    let order: Vec<&str> = w.spawns.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(order, ["cache", "db", "web", "worker"]);
}

#[test]
fn shutdown_stops_in_descending_priority_one_level_at_a_time() {
    let mut w = World::new(PRIORITIES);
    w.ask(Request::Shutdown);
    let stopping = |w: &World| -> Vec<String> {
        w.sup
            .processes()
            .filter(|p| p.state.name() == "STOPPING")
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(stopping(&w), ["worker"], "priority 999 first");
    w.exit("worker", killed(Signal::TERM));
    assert_eq!(stopping(&w), ["web"]);
    w.exit("web", killed(Signal::TERM));
    assert_eq!(stopping(&w), ["cache", "db"], "one level together");
    w.exit("db", killed(Signal::TERM));
    assert_eq!(stopping(&w), ["cache"]);
    assert!(!w.exited);
    w.exit("cache", killed(Signal::TERM));
    assert!(w.exited);
}

#[test]
fn a_level_that_will_not_stop_is_killed_and_the_shutdown_goes_on() {
    let mut w = World::new(PRIORITIES);
    w.ask(Request::Shutdown);
    let worker = w.pid("worker");
    w.advance(secs(10.0)); // stoptime: SIGKILL
    assert!(w
        .signals
        .iter()
        .any(|s| s.pid == worker && s.signal == Signal::KILL));
    w.exit("worker", killed(Signal::KILL));
    assert_eq!(w.state("web"), "STOPPING");
}

/// Regression: a restart whose stop was followed, within the same event, by another request's
/// start never saw the process STOPPED and waited forever.
#[test]
fn restart_answers_when_a_concurrent_start_restarts_the_process_first() {
    let mut w = running("");
    let restart = w.request(Request::Restart(vec!["web".into()]));
    let start = w.request(Request::Start(vec!["web".into()]));
    w.exit("web", killed(Signal::TERM));
    assert_eq!(w.state("web"), "STARTING", "the start took it up again");
    w.advance(secs(1.0));
    assert_eq!(
        outcomes(w.reply(restart).unwrap()),
        ["web: stopped", "web: started"]
    );
    assert_eq!(outcomes(w.reply(start).unwrap()), ["web: started"]);
}

#[test]
fn a_paused_process_is_still_running_and_described_as_paused() {
    let mut w = running("");
    let pid = w.pid("web");
    w.handle(taskmaster_core::Event::Paused {
        pid,
        signal: Signal::STOP,
    });
    assert_eq!(w.state("web"), "RUNNING");
    assert!(
        w.logs.iter().any(|l| l == "web: paused by SIGSTOP"),
        "{:?}",
        w.logs
    );
    let Reply::Status { now, processes, .. } = w.ask(Request::Status(vec![])) else {
        panic!()
    };
    let description = processes[0].description(now, |_| String::new());
    assert!(description.ends_with(", paused (SIGSTOP)"), "{description}");
    assert!(
        description.starts_with(&format!("pid {pid}, uptime ")),
        "{description}"
    );

    w.handle(taskmaster_core::Event::Resumed { pid });
    assert!(
        w.logs.iter().any(|l| l == "web: resumed (SIGCONT)"),
        "{:?}",
        w.logs
    );
    assert_eq!(w.sup.process("web").unwrap().paused, None);
}

#[test]
fn stopping_a_paused_process_continues_it_so_it_can_obey() {
    let mut w = running("");
    let pid = w.pid("web");
    w.handle(taskmaster_core::Event::Paused {
        pid,
        signal: Signal::TSTP,
    });
    w.request(Request::Stop(vec!["web".into()]));
    let sent: Vec<Signal> = w.signals.iter().map(|s| s.signal).collect();
    assert_eq!(sent, [Signal::TERM, Signal::CONT]);
}

#[test]
fn an_exit_clears_the_pause_and_stray_pauses_are_ignored() {
    let mut w = running("    autorestart: never\n");
    let pid = w.pid("web");
    w.handle(taskmaster_core::Event::Paused {
        pid,
        signal: Signal::STOP,
    });
    w.handle(taskmaster_core::Event::Paused {
        pid: 99_999,
        signal: Signal::STOP,
    });
    w.exit("web", killed(Signal::KILL));
    assert_eq!(w.sup.process("web").unwrap().paused, None);
}

#[test]
fn a_reload_says_which_settings_wait_for_a_restart_and_keeps_them() {
    let mut w = World::new(WEB);
    let socket_before = match w.ask(Request::Config) {
        Reply::Config { active, .. } => active.socket,
        other => panic!("{other:?}"),
    };
    w.reload(&format!("socket: /run/elsewhere.sock\n{WEB}"));
    assert!(
        w.logs.iter().any(|line| line
            == "reload: `socket` changed in the file; it takes effect when taskmaster restarts \
                (the old value stays in force)"),
        "{:?}",
        w.logs
    );
    match w.ask(Request::Config) {
        Reply::Config { active, .. } => assert_eq!(active.socket, socket_before),
        other => panic!("{other:?}"),
    }
}

const POOL: &str = "
programs:
  pool:
    cmd: /bin/server --port=80%(process_num)02d
    process_name: \"%(program_name)s_%(process_num)02d\"
    numprocs: NUMPROCS
    starttime: 0
";

fn pool(numprocs: u32) -> String {
    POOL.replace("NUMPROCS", &numprocs.to_string())
}

fn pool_pids(w: &World) -> Vec<(String, u32)> {
    w.sup
        .processes()
        .filter_map(|p| Some((p.name.clone(), p.pid?)))
        .collect()
}

#[test]
fn each_process_of_a_pool_runs_with_its_own_expanded_settings() {
    let w = World::new(&pool(3));
    let cmds: Vec<String> = w.sup.processes().map(|p| p.spec.cmd.clone()).collect();
    assert_eq!(
        cmds,
        [
            "/bin/server --port=8000",
            "/bin/server --port=8001",
            "/bin/server --port=8002"
        ]
    );
}

#[test]
fn a_pool_that_grows_then_shrinks_leaves_the_processes_it_keeps_alone() {
    let mut w = World::new(&pool(3));
    let before = pool_pids(&w);
    w.reload(&pool(5));
    let grown = pool_pids(&w);
    assert_eq!(grown.len(), 5);
    assert_eq!(&grown[..3], &before[..], "the first three kept their pids");
    assert_eq!(w.spawns.len(), 5, "only the two new ones were started");
    assert!(w.signals.is_empty(), "nothing was stopped");

    w.reload(&pool(2));
    for name in ["pool:pool_02", "pool:pool_03", "pool:pool_04"] {
        assert_eq!(w.state(name), "STOPPING");
    }
    for (name, pid) in &grown[2..] {
        assert!(name.as_str() >= "pool:pool_02");
        w.handle(taskmaster_core::Event::Exited {
            pid: *pid,
            status: code(0),
            leftovers: false,
        });
    }
    assert_eq!(pool_pids(&w), before[..2], "the first two untouched");
    assert_eq!(w.spawns.len(), 5);
}

#[test]
fn a_template_change_restarts_only_the_processes_whose_settings_changed() {
    let mut w = World::new(&pool(3));
    let before = pool_pids(&w);
    // Process 0's port stays 8000; the others' change.
    let changed = pool(3).replace("--port=80%(process_num)02d", "--port=80%(process_num)d0");
    w.reload(&changed);
    assert_eq!(w.state("pool:pool_00"), "RUNNING");
    assert_eq!(w.pid("pool:pool_00"), before[0].1, "pool_00 untouched");
    for name in ["pool:pool_01", "pool:pool_02"] {
        assert_eq!(w.state(name), "STOPPING");
    }
}

#[test]
fn a_group_is_removed_and_added_whole_as_supervisorctl_does() {
    let yaml = "
programs:
  web: {cmd: /bin/web, starttime: 0}
  api: {cmd: /bin/api, starttime: 0}
  db: {cmd: /bin/db, starttime: 0}
groups:
  site: {programs: [web, api]}
";
    let mut w = World::new(yaml);
    w.request(Request::Stop(vec!["site".into()]));
    for name in ["site:web", "site:api"] {
        let pid = w.pid(name);
        w.handle(taskmaster_core::Event::Exited {
            pid,
            status: code(0),
            leftovers: false,
        });
    }
    let removed = w.ask(Request::RemoveGroup(vec!["site".into()]));
    assert_eq!(outcomes(&removed), ["site: removed process group"]);
    let names: Vec<&str> = w.sup.processes().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["db"]);
    // As supervisorctl's `update`: reread, then add what the file has and taskmaster not.
    w.reread(yaml);
    let ticket = w.request(Request::AddGroup(vec!["site".into()]));
    assert!(w.reply(ticket).is_some());
    let names: Vec<&str> = w.sup.processes().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["db", "site:api", "site:web"]);
}

// ---- what event listeners hear ---------------------------------------------------------------

#[test]
fn at_start_every_group_is_added_then_it_runs_then_the_processes_start() {
    let w = World::new(
        "programs:\n  web: {cmd: /bin/web, priority: 2}\n  db: {cmd: /bin/db, priority: 1}\n  \
         off: {cmd: /bin/off, autostart: false}\n  pool: {cmd: /bin/p, numprocs: 2}\n",
    );
    assert_eq!(
        w.announced,
        [
            "added db",
            "added web",
            "added off",
            "added pool",
            "running",
            "STARTING db pid:0 tries:0 expected:true",
            "STARTING web pid:0 tries:0 expected:true",
            "STARTING pool:pool_00 pid:0 tries:0 expected:true",
            "STARTING pool:pool_01 pid:0 tries:0 expected:true",
        ]
    );
}

#[test]
fn state_changes_carry_the_pid_the_failed_starts_and_whether_the_exit_was_expected() {
    let mut w = World::new(WEB);
    w.announced.clear();
    let pid = w.pid("web");
    w.exit("web", code(1));
    assert_eq!(
        w.announced,
        [format!("BACKOFF web pid:{pid} tries:1 expected:false")]
    );
    w.advance(secs(1.0));
    let second = w.pid("web");
    w.advance(secs(2.0));
    w.exit("web", code(0));
    assert_eq!(
        w.announced[1..],
        [
            format!("STARTING web pid:{pid} tries:1 expected:false"),
            format!("RUNNING web pid:{second} tries:1 expected:false"),
            format!("EXITED web pid:{second} tries:0 expected:true"),
        ]
    );
}

#[test]
fn a_reload_announces_the_groups_it_removes_and_adds_and_a_shutdown_stopping() {
    let mut w = World::new("programs:\n  web: {cmd: /bin/web, starttime: 0}\n");
    w.announced.clear();
    w.reload("programs:\n  api: {cmd: /bin/api, starttime: 0}\n");
    w.exit("web", killed(Signal::TERM));
    assert!(
        w.announced.contains(&"removed web".to_string()),
        "{:?}",
        w.announced
    );
    let added = w.announced.iter().position(|a| a == "added api");
    let removed = w.announced.iter().position(|a| a == "removed web");
    assert!(added.is_some() && removed.is_some(), "{:?}", w.announced);
    w.announced.clear();
    w.request(Request::Shutdown);
    assert_eq!(w.announced.first().map(String::as_str), Some("stopping"));
}

#[test]
fn the_last_failed_start_goes_through_backoff_to_fatal_as_supervisord_does() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    startretries: 1\n");
    w.announced.clear();
    let first = w.pid("web");
    w.exit("web", code(1));
    w.advance(secs(1.0));
    let second = w.pid("web");
    w.exit("web", code(1));
    assert_eq!(
        w.announced,
        [
            format!("BACKOFF web pid:{first} tries:1 expected:false"),
            format!("STARTING web pid:{first} tries:1 expected:false"),
            format!("BACKOFF web pid:{second} tries:2 expected:false"),
            format!("FATAL web pid:{second} tries:2 expected:false"),
        ]
    );
    assert_eq!(w.sup.process("web").unwrap().backoff, 0);
}

// ---- reloads that restart only what must restart ---------------------------------------------

#[test]
fn a_reload_applies_watching_settings_in_place_and_restarts_for_the_process_itself() {
    let mut w = World::new("programs:\n  web: {cmd: /bin/web, starttime: 0}\n");
    let pid = w.pid("web");
    w.reload("programs:\n  web: {cmd: /bin/web, starttime: 0, autorestart: never, stoptime: 3}\n");
    assert_eq!(w.pid("web"), pid, "no restart for autorestart and stoptime");
    assert_eq!(w.spawn_count("web"), 1);
    assert!(
        w.logs
            .iter()
            .any(|l| l == "web: autorestart, stoptime changed in place, no restart"),
        "{:?}",
        w.logs
    );
    // In force at once: an exit is not restarted any more.
    w.exit("web", killed(Signal::KILL));
    assert_eq!(w.state("web"), "EXITED");
    assert_eq!(w.spawn_count("web"), 1);
    w.request(Request::Start(vec!["web".into()]));
    let pid = w.pid("web");
    w.reload(
        "programs:\n  web: {cmd: /bin/web --new, starttime: 0, autorestart: never, stoptime: 3}\n",
    );
    assert!(
        w.logs.iter().any(|l| l == "web: restarted: cmd changed"),
        "{:?}",
        w.logs
    );
    assert_eq!(w.signals.last().map(|s| s.pid), Some(pid));
    w.exit("web", killed(Signal::TERM));
    assert_ne!(w.pid("web"), pid);
}

// ---- a container's rules: critical, exit_when_done ------------------------------------------

#[test]
fn a_critical_program_that_ends_for_good_stops_everything_with_its_exit_code() {
    let mut w = World::new(
        "programs:\n  main: {cmd: /bin/main, starttime: 0, autorestart: never, critical: true}\n  \
         side: {cmd: /bin/side, starttime: 0}\n",
    );
    let side = w.pid("side");
    w.exit("main", code(7));
    assert!(w.sup.is_shutting_down());
    assert_eq!(w.sup.exit_code(), 7);
    assert!(w
        .logs
        .iter()
        .any(|l| l.starts_with("main is critical and has ended (EXITED)")));
    assert!(w.signals.iter().any(|s| s.pid == side));
    // A death by signal is 128 + the signal, as a shell says it.
    let mut w = World::new(
        "programs:\n  main: {cmd: /bin/main, starttime: 0, autorestart: never, critical: true}\n",
    );
    w.exit("main", killed(Signal::KILL));
    assert_eq!(w.sup.exit_code(), 137);
}

#[test]
fn a_critical_program_restarted_by_its_policy_ends_nothing() {
    let mut w = World::new("programs:\n  main: {cmd: /bin/main, starttime: 0, critical: true}\n");
    w.exit("main", code(3));
    assert!(!w.sup.is_shutting_down());
    assert_eq!(w.spawn_count("main"), 2);
}

#[test]
fn exit_when_done_ends_the_run_once_every_program_has_ended_for_good() {
    let mut w = World::new(
        "exit_when_done: true\nprograms:\n  a: {cmd: /bin/a, starttime: 0, autorestart: never}\n  \
         b: {cmd: /bin/b, starttime: 0, autorestart: never}\n",
    );
    w.exit("a", code(0));
    assert!(!w.sup.is_shutting_down(), "b still runs");
    w.exit("b", code(0));
    assert!(w.sup.is_shutting_down());
    assert_eq!(w.sup.exit_code(), 0);
    assert!(w.exited);
}

#[test]
fn alerts_test_is_answered_with_each_destination_and_deliveries_are_counted() {
    let mut w = World::new(INPUT);
    let reply = w.ask(Request::TestAlerts);
    assert_eq!(
        reply,
        Reply::AlertsTested(vec![("syslog".to_string(), Ok("sent".to_string()))])
    );
    assert!(w.logs.iter().any(|line| line == "command: alerts test"));
    for ok in [true, true, false] {
        w.handle(taskmaster_core::Event::AlertDelivered {
            destination: "webhook http://127.0.0.1:9/".to_string(),
            ok,
        });
    }
    let Reply::Metrics(metrics) = w.ask(Request::Metrics) else {
        panic!("no metrics");
    };
    let counts = metrics.alerts_sent["webhook http://127.0.0.1:9/"];
    assert_eq!((counts.sent, counts.failed), (2, 1));
}
