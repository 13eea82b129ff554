//! Alive is not enough: readiness, the watchdog, health checks, the kill button, `on_exit`
//! hooks, the restart limit and backoff, and how every exit is classified.

mod world;

use taskmaster_core::{
    Event, ExitCause, Health, Notification, ProcessInfo, Reply, Request, Scope, Signal,
};
use world::{code, killed, secs, Sent, World};

/// `web` with these extra keys, started and RUNNING (after its 1 s starttime).
fn running(extra: &str) -> World {
    let mut w = World::new(&format!(
        "programs:\n  web:\n    cmd: /bin/web\n    starttime: 1\n{extra}"
    ));
    w.advance(secs(1.0));
    assert_eq!(w.state("web"), "RUNNING");
    w
}

/// `web` with these extra keys and no starttime: RUNNING from its spawn.
fn running_now(extra: &str) -> World {
    let w = World::new(&format!(
        "programs:\n  web:\n    cmd: /bin/web\n    starttime: 0\n{extra}"
    ));
    assert_eq!(w.state("web"), "RUNNING");
    w
}

fn notify(w: &mut World, name: &str, notification: Notification) {
    let pid = w.pid(name);
    w.handle(Event::Notified {
        pid,
        notifications: vec![notification],
    });
}

fn cause(w: &World, name: &str) -> ExitCause {
    w.sup
        .process(name)
        .and_then(|p| p.last_exit.clone())
        .map(|exit| exit.cause)
        .unwrap_or_else(|| panic!("{name} has no last exit"))
}

fn logged(w: &World, line: &str) -> bool {
    w.logs.iter().any(|l| l == line)
}

fn status_line(w: &mut World, name: &str) -> String {
    let Reply::Status { now, processes, .. } = w.ask(Request::Status(vec![name.into()])) else {
        panic!("not a status reply");
    };
    let info: &ProcessInfo = &processes[0];
    format!(
        "{} {}",
        info.state,
        info.description(now, |_| "DATE".into())
    )
}

fn term(pid: u32) -> Sent {
    Sent {
        pid,
        signal: Signal::TERM,
        scope: Scope::Group,
    }
}

// ---- readiness ------------------------------------------------------------------------------

#[test]
fn ready_notify_stays_starting_until_ready() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    ready: notify\n");
    w.advance(secs(10.0));
    assert_eq!(w.state("web"), "STARTING", "starttime does not count");
    notify(&mut w, "web", Notification::Status("loading".into()));
    assert_eq!(status_line(&mut w, "web"), "STARTING status: loading");
    notify(&mut w, "web", Notification::Ready);
    assert_eq!(w.state("web"), "RUNNING");
    assert!(
        logged(&w, "web: RUNNING: ready (READY=1 after 10.0s)"),
        "{:?}",
        w.logs
    );
}

#[test]
fn no_ready_within_readytime_is_a_failed_start() {
    let mut w =
        World::new("programs:\n  web:\n    cmd: /bin/web\n    ready: notify\n    readytime: 5s\n");
    let pid = w.pid("web");
    w.advance(secs(5.0));
    assert_eq!(w.state("web"), "STOPPING");
    assert!(logged(
        &w,
        "web: not ready: no READY=1 within 5s (readytime)"
    ));
    assert_eq!(w.signals, vec![term(pid)]);
    w.exit("web", killed(Signal::TERM));
    assert_eq!(w.state("web"), "BACKOFF");
    assert_eq!(cause(&w, "web"), ExitCause::NotReady);
}

#[test]
fn extend_timeout_gives_a_slow_start_more_time() {
    let mut w =
        World::new("programs:\n  web:\n    cmd: /bin/web\n    ready: notify\n    readytime: 5s\n");
    w.advance(secs(4.0));
    notify(&mut w, "web", Notification::ExtendTimeout(secs(10.0)));
    w.advance(secs(9.0));
    assert_eq!(w.state("web"), "STARTING");
    notify(&mut w, "web", Notification::Ready);
    assert_eq!(w.state("web"), "RUNNING");
}

#[test]
fn an_exit_before_ready_is_a_failed_start() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    ready: notify\n");
    w.advance(secs(3.0));
    w.exit("web", code(0));
    assert_eq!(w.state("web"), "BACKOFF");
}

// ---- the watchdog ---------------------------------------------------------------------------

#[test]
fn a_silent_process_is_hung_stopped_and_restarted() {
    let mut w = running("    watchdog: 5s\n");
    let pid = w.pid("web");
    w.advance(secs(4.9));
    assert!(w.signals.is_empty());
    w.advance(secs(0.2));
    assert!(
        logged(&w, "web: hung: no heartbeat for 5.0s"),
        "{:?}",
        w.logs
    );
    assert_eq!(w.state("web"), "STOPPING");
    assert_eq!(w.signals, vec![term(pid)]);
    w.exit("web", killed(Signal::TERM));
    assert_eq!(
        cause(&w, "web"),
        ExitCause::Hung("no heartbeat for 5.0s".into())
    );
    assert_eq!(w.state("web"), "STARTING", "restarted by its policy");
    assert_eq!(w.spawn_count("web"), 2);
}

#[test]
fn heartbeats_keep_a_process_alive() {
    let mut w = running("    watchdog: 5s\n");
    for _ in 0..10 {
        w.advance(secs(4.0));
        notify(&mut w, "web", Notification::Heartbeat);
    }
    assert!(w.signals.is_empty());
    assert_eq!(w.state("web"), "RUNNING");
}

#[test]
fn a_hung_process_that_ignores_its_stopsignal_is_killed_after_stoptime() {
    let mut w = running("    watchdog: 1s\n    stoptime: 3s\n    autorestart: never\n");
    let pid = w.pid("web");
    w.advance(secs(1.0));
    w.advance(secs(3.0));
    assert_eq!(w.signals.last().map(|s| s.signal), Some(Signal::KILL));
    w.handle(Event::Exited {
        pid,
        status: killed(Signal::KILL),
        leftovers: false,
    });
    // Hung is why it was stopped; the SIGKILL is how.
    assert_eq!(
        cause(&w, "web"),
        ExitCause::Hung("no heartbeat for 1.0s".into())
    );
    assert_eq!(w.state("web"), "EXITED", "autorestart never: not restarted");
}

#[test]
fn time_spent_paused_does_not_count_against_the_watchdog() {
    let mut w = running("    watchdog: 5s\n");
    let pid = w.pid("web");
    w.advance(secs(3.0));
    w.handle(Event::Paused {
        pid,
        signal: Signal::STOP,
    });
    w.advance(secs(60.0));
    assert_eq!(w.state("web"), "RUNNING", "paused is not hung");
    w.handle(Event::Resumed { pid });
    w.advance(secs(1.9));
    assert_eq!(w.state("web"), "RUNNING");
    w.advance(secs(0.2));
    assert_eq!(
        w.state("web"),
        "STOPPING",
        "2 s were left when it was paused"
    );
}

#[test]
fn watchdog_paused_restart_counts_paused_time() {
    let mut w = running("    watchdog: 5s\n    watchdog_paused: restart\n");
    let pid = w.pid("web");
    w.handle(Event::Paused {
        pid,
        signal: Signal::STOP,
    });
    w.advance(secs(5.0));
    assert_eq!(w.state("web"), "STOPPING");
    // Stopping a paused process continues it so that it can obey.
    assert!(w.signals.contains(&Sent {
        pid,
        signal: Signal::CONT,
        scope: Scope::Group
    }));
}

#[test]
fn watchdog_trigger_is_hung_at_once() {
    let mut w = running("    watchdog: 30s\n");
    notify(&mut w, "web", Notification::WatchdogTrigger);
    assert_eq!(w.state("web"), "STOPPING");
    w.exit("web", killed(Signal::TERM));
    assert!(matches!(cause(&w, "web"), ExitCause::Hung(how) if how.contains("WATCHDOG=trigger")));
}

#[test]
fn watchdog_usec_changes_the_period() {
    let mut w = running("    watchdog: 5s\n");
    notify(&mut w, "web", Notification::WatchdogPeriod(secs(20.0)));
    w.advance(secs(19.0));
    assert_eq!(w.state("web"), "RUNNING");
    w.advance(secs(1.5));
    assert_eq!(w.state("web"), "STOPPING");
}

#[test]
fn the_watchdog_starts_when_running_and_ends_when_it_stops() {
    let mut w =
        World::new("programs:\n  web:\n    cmd: /bin/web\n    starttime: 10\n    watchdog: 1s\n");
    w.advance(secs(9.0));
    assert_eq!(w.state("web"), "STARTING", "not hung while starting");
    w.advance(secs(1.0));
    assert_eq!(w.state("web"), "RUNNING");
    w.request(Request::Stop(vec!["web".into()]));
    w.exit("web", killed(Signal::TERM));
    assert_eq!(
        w.sup.next_deadline(),
        None,
        "no timer left for a stopped process"
    );
}

// ---- health checks --------------------------------------------------------------------------

const CHECKED: &str =
    "    healthcheck:\n      cmd: \"true\"\n      interval: 10s\n      retries: 3\n";

fn probe(w: &mut World, ok: bool) {
    let (process, pid) = w.probes.pop().expect("a health check was asked for");
    assert!(w.probes.is_empty(), "one check at a time");
    let result = if ok {
        Ok("exit status 0".into())
    } else {
        Err("exit status 1".into())
    };
    w.handle(Event::ProbeDone {
        process,
        pid,
        result,
    });
}

#[test]
fn health_checks_run_every_interval_and_show_in_status() {
    let mut w = running(CHECKED);
    assert!(w.probes.is_empty());
    assert!(status_line(&mut w, "web").ends_with("health unknown"));
    w.advance(secs(10.0));
    probe(&mut w, true);
    assert!(
        status_line(&mut w, "web").ends_with(", healthy"),
        "{}",
        status_line(&mut w, "web")
    );
    w.advance(secs(9.0));
    assert!(
        w.probes.is_empty(),
        "the next check is an interval after the last one ended"
    );
    w.advance(secs(1.0));
    assert_eq!(w.probes.len(), 1);
}

#[test]
fn retries_failures_in_a_row_are_unhealthy_and_restarted() {
    let mut w = running(CHECKED);
    let pid = w.pid("web");
    for failures in 1..=2 {
        w.advance(secs(10.0));
        probe(&mut w, false);
        assert_eq!(
            w.sup.process("web").unwrap().health,
            Some(Health::Failing {
                failures,
                detail: "exit status 1".into()
            })
        );
    }
    assert_eq!(w.state("web"), "RUNNING");
    w.advance(secs(10.0));
    probe(&mut w, false);
    assert!(logged(&w, "web: unhealthy: exit status 1"));
    assert_eq!(w.signals, vec![term(pid)]);
    w.exit("web", killed(Signal::TERM));
    assert_eq!(
        cause(&w, "web"),
        ExitCause::Unhealthy("exit status 1".into())
    );
    assert_eq!(w.state("web"), "STARTING");
}

#[test]
fn a_success_between_failures_recovers() {
    let mut w = running(CHECKED);
    for ok in [false, false, true, false, false, true] {
        w.advance(secs(10.0));
        probe(&mut w, ok);
    }
    assert_eq!(w.state("web"), "RUNNING");
    assert!(logged(&w, "web: healthy again (exit status 0)"));
}

#[test]
fn failures_within_start_period_do_not_count() {
    let mut w = running(
        "    healthcheck:\n      cmd: \"true\"\n      interval: 1s\n      retries: 1\n      start_period: 5s\n",
    );
    for _ in 0..3 {
        w.advance(secs(1.0));
        probe(&mut w, false);
    }
    assert_eq!(w.state("web"), "RUNNING");
    w.advance(secs(1.0));
    probe(&mut w, false);
    assert_eq!(w.state("web"), "STOPPING");
}

#[test]
fn a_paused_process_is_not_checked() {
    let mut w = running(CHECKED);
    let pid = w.pid("web");
    w.handle(Event::Paused {
        pid,
        signal: Signal::TSTP,
    });
    w.advance(secs(100.0));
    assert!(w.probes.is_empty());
    w.handle(Event::Resumed { pid });
    w.advance(secs(10.0));
    assert_eq!(w.probes.len(), 1);
}

#[test]
fn a_late_result_for_an_earlier_child_is_ignored() {
    let mut w = running(CHECKED);
    w.advance(secs(10.0));
    let (process, old_pid) = w.probes.pop().unwrap();
    w.exit("web", killed(Signal::KILL));
    w.advance(secs(1.0));
    assert_eq!(w.state("web"), "RUNNING");
    w.handle(Event::ProbeDone {
        process,
        pid: old_pid,
        result: Err("refused".into()),
    });
    assert_eq!(w.sup.process("web").unwrap().health, Some(Health::Unknown));
}

// ---- exit causes ----------------------------------------------------------------------------

#[test]
fn every_exit_is_classified() {
    let mut w = running("    autorestart: never\n");
    w.exit("web", code(3));
    assert_eq!(cause(&w, "web"), ExitCause::Exited);
    assert!(status_line(&mut w, "web").ends_with("exited with code 3 (not expected)"));

    let mut w = running("    autorestart: never\n");
    w.exit(
        "web",
        taskmaster_core::ExitStatus::Signal {
            signal: Signal::SEGV,
            core_dumped: true,
        },
    );
    assert_eq!(cause(&w, "web"), ExitCause::Crashed);
    assert_eq!(
        status_line(&mut w, "web"),
        "EXITED DATE, crashed: SIGSEGV (core dumped)"
    );

    let mut w = running("    autorestart: never\n");
    w.exit("web", killed(Signal::TERM));
    assert_eq!(cause(&w, "web"), ExitCause::Killed);

    let mut w = running("");
    w.request(Request::Stop(vec!["web".into()]));
    w.exit("web", killed(Signal::TERM));
    assert_eq!(cause(&w, "web"), ExitCause::Stopped);
    assert_eq!(
        status_line(&mut w, "web"),
        "STOPPED DATE, stopped by request (killed by SIGTERM)"
    );

    let mut w = running("    stoptime: 2s\n");
    w.request(Request::Stop(vec!["web".into()]));
    w.advance(secs(2.0));
    w.exit("web", killed(Signal::KILL));
    assert_eq!(cause(&w, "web"), ExitCause::KilledAfterStoptime);

    let w = World::with_failing(
        "programs:\n  web:\n    cmd: /bin/web\n    startretries: 0\n",
        &[("web", "cannot execute /bin/web: Permission denied")],
    );
    assert_eq!(w.state("web"), "FATAL");
    assert_eq!(
        cause(&w, "web"),
        ExitCause::SpawnFailed("cannot execute /bin/web: Permission denied".into())
    );
}

// ---- the kill button ------------------------------------------------------------------------

#[test]
fn kill_sends_sigkill_to_the_group_and_restarts_by_policy() {
    let mut w = running("    stoptime: 60s\n");
    let pid = w.pid("web");
    let reply = w.ask(Request::Kill {
        targets: vec!["web".into()],
        restart: true,
        by: "uid 1000 pid 42".into(),
    });
    assert!(matches!(reply, Reply::Outcomes(ref o) if o[0].to_string() == "web: killed"));
    assert_eq!(
        w.signals,
        vec![Sent {
            pid,
            signal: Signal::KILL,
            scope: Scope::Group
        }]
    );
    assert!(
        logged(&w, "command: kill web (by uid 1000 pid 42)"),
        "{:?}",
        w.logs
    );
    w.exit("web", killed(Signal::KILL));
    assert_eq!(cause(&w, "web"), ExitCause::KilledByRequest);
    assert_eq!(w.state("web"), "STARTING");
}

#[test]
fn kill_no_restart_leaves_it_stopped() {
    let mut w = running("    autorestart: always\n");
    w.ask(Request::Kill {
        targets: vec!["web".into()],
        restart: false,
        by: "uid 0".into(),
    });
    w.exit("web", killed(Signal::KILL));
    assert_eq!(w.state("web"), "STOPPED");
    assert_eq!(w.spawn_count("web"), 1);
}

#[test]
fn kill_during_a_stop_finishes_the_stop() {
    let mut w = running("    stoptime: 30s\n");
    let stop = w.request(Request::Stop(vec!["web".into()]));
    w.ask(Request::Kill {
        targets: vec!["web".into()],
        restart: true,
        by: "uid 0".into(),
    });
    w.exit("web", killed(Signal::KILL));
    assert_eq!(w.state("web"), "STOPPED");
    assert!(
        matches!(w.reply(stop), Some(Reply::Outcomes(o)) if o[0].to_string() == "web: stopped")
    );
    assert_eq!(cause(&w, "web"), ExitCause::KilledByRequest);
}

#[test]
fn kill_of_a_process_without_a_child_says_not_running() {
    let mut w = World::new("programs:\n  web:\n    cmd: /bin/web\n    autostart: false\n");
    let reply = w.ask(Request::Kill {
        targets: vec!["web".into()],
        restart: true,
        by: "uid 0".into(),
    });
    assert!(
        matches!(reply, Reply::Outcomes(ref o) if o[0].to_string() == "web: ERROR (not running)")
    );
}

// ---- on_exit hooks --------------------------------------------------------------------------

#[test]
fn the_restart_waits_for_the_on_exit_hook() {
    let mut w = running("    on_exit: \"rm -f /tmp/web.lock\"\n");
    w.exit(
        "web",
        taskmaster_core::ExitStatus::Signal {
            signal: Signal::SEGV,
            core_dumped: false,
        },
    );
    let (process, env) = w.hooks.pop().expect("the hook runs");
    assert_eq!(process, "web");
    assert!(env.contains(&("TASKMASTER_EXIT_CAUSE".into(), "crashed".into())));
    assert!(env.contains(&("TASKMASTER_EXIT_SIGNAL".into(), "SIGSEGV".into())));
    assert_eq!(w.state("web"), "EXITED");
    assert_eq!(w.spawn_count("web"), 1, "no restart while the hook runs");
    w.handle(Event::HookDone {
        process,
        result: Ok(()),
    });
    assert_eq!(w.state("web"), "STARTING");
    assert_eq!(w.spawn_count("web"), 2);
}

#[test]
fn a_hook_gets_the_exit_code() {
    let mut w = running("    on_exit: \"true\"\n");
    w.exit("web", code(3));
    let (_, env) = w.hooks.pop().unwrap();
    assert!(env.contains(&("TASKMASTER_EXIT_CODE".into(), "3".into())));
    assert!(env.contains(&("TASKMASTER_EXIT_CAUSE".into(), "exited".into())));
}

#[test]
fn a_stop_cancels_a_restart_that_waits_for_its_hook() {
    let mut w = running("    on_exit: \"true\"\n");
    w.exit("web", code(1));
    let ticket = w.request(Request::Stop(vec!["web".into()]));
    assert!(w.reply(ticket).is_some());
    assert_eq!(w.state("web"), "STOPPED");
    w.handle(Event::HookDone {
        process: "web".into(),
        result: Err("exit status 1".into()),
    });
    assert_eq!(w.state("web"), "STOPPED");
    assert!(logged(&w, "web: on_exit hook failed: exit status 1"));
}

#[test]
fn a_start_waits_for_the_hook_and_is_answered_when_running() {
    let mut w = running("    on_exit: \"true\"\n    autorestart: never\n");
    w.exit("web", code(0));
    let ticket = w.request(Request::Start(vec!["web".into()]));
    assert!(w.reply(ticket).is_none());
    w.handle(Event::HookDone {
        process: "web".into(),
        result: Ok(()),
    });
    w.advance(secs(1.0));
    assert!(
        matches!(w.reply(ticket), Some(Reply::Outcomes(o)) if o[0].to_string() == "web: started")
    );
}

#[test]
fn shutdown_waits_for_running_hooks() {
    let mut w = running("    on_exit: \"true\"\n");
    w.request(Request::Shutdown);
    w.exit("web", killed(Signal::TERM));
    assert!(!w.exited, "the hook still runs");
    w.handle(Event::HookDone {
        process: "web".into(),
        result: Ok(()),
    });
    assert!(w.exited);
    assert_eq!(w.spawn_count("web"), 1);
}

// ---- restart limit and backoff --------------------------------------------------------------

#[test]
fn more_restarts_than_the_limit_within_the_window_is_fatal() {
    let mut w = running_now("    restart_limit: {count: 3, within: 60s}\n    backoff: off\n");
    for _ in 0..3 {
        w.advance(secs(1.0));
        w.exit("web", code(1));
        assert_eq!(w.state("web"), "RUNNING", "restarted");
    }
    w.advance(secs(1.0));
    w.exit(
        "web",
        taskmaster_core::ExitStatus::Signal {
            signal: Signal::SEGV,
            core_dumped: false,
        },
    );
    assert_eq!(w.state("web"), "FATAL");
    let line = status_line(&mut w, "web");
    assert!(
        line.starts_with("FATAL restart limit reached: 4 restarts within 60s"),
        "{line}"
    );
    assert!(line.ends_with("last exit: crashed: SIGSEGV"), "{line}");
}

#[test]
fn restarts_outside_the_window_do_not_count() {
    let mut w = running_now("    restart_limit: {count: 2, within: 10s}\n    backoff: off\n");
    for _ in 0..10 {
        w.advance(secs(6.0));
        w.exit("web", code(1));
        assert_eq!(w.state("web"), "RUNNING");
    }
}

#[test]
fn backoff_delays_grow_exponentially_up_to_max() {
    let mut w = running_now("    backoff: {initial: 1s, max: 10s, factor: 2}\n");
    let mut delays = Vec::new();
    for _ in 0..6 {
        w.exit("web", code(1));
        assert_eq!(w.state("web"), "EXITED");
        let due = w.sup.next_deadline().expect("a restart is scheduled");
        delays.push(due.since(w.now).as_secs());
        w.advance(due.since(w.now));
        assert_eq!(w.state("web"), "RUNNING");
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
    // Up for `max`: recovered, the delays start over.
    w.advance(secs(10.0));
    w.exit("web", code(1));
    assert_eq!(
        w.sup.next_deadline().map(|d| d.since(w.now).as_secs()),
        Some(1)
    );
}

#[test]
fn without_backoff_a_crash_loop_is_throttled_but_the_first_restart_is_at_once() {
    let mut w = running_now("    autorestart: always\n");
    // Dying at once, again and again: at once, then 0.1 s, 0.2 s... up to 10 s.
    let mut delays = Vec::new();
    for _ in 0..10 {
        w.exit("web", code(1));
        match w.state("web") {
            "RUNNING" => delays.push(0),
            "EXITED" => {
                let due = w.sup.next_deadline().expect("a restart is scheduled");
                delays.push(due.since(w.now).as_millis());
                w.advance(due.since(w.now));
                assert_eq!(w.state("web"), "RUNNING");
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        delays,
        vec![0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
    );
    assert_eq!(w.spawn_count("web"), 11);
    assert!(logged(&w, "web: restarting: autorestart is always"));
    assert!(logged(
        &w,
        "web: restarting in 100.0ms (backoff): autorestart is always"
    ));
    assert!(logged(
        &w,
        "web: restarting in 10.0s (backoff): autorestart is always"
    ));
    // Up for 10 s (the throttle's max): recovered, restarted at once.
    w.advance(secs(10.0));
    w.exit("web", code(1));
    assert_eq!(w.state("web"), "RUNNING");
    assert_eq!(w.spawn_count("web"), 12);
    // ... and the next quick death waits again, from the start of the row.
    w.advance(secs(1.0));
    w.exit("web", code(1));
    assert_eq!(w.state("web"), "EXITED");
    assert_eq!(
        w.sup.next_deadline().map(|d| d.since(w.now).as_millis()),
        Some(100)
    );
}

#[test]
fn backoff_off_restarts_at_once_every_time() {
    let mut w = running_now("    autorestart: always\n    backoff: off\n");
    for n in 0..50 {
        w.exit("web", code(1));
        assert_eq!(w.state("web"), "RUNNING", "restart {n}");
    }
    assert_eq!(w.spawn_count("web"), 51);
    assert!(!w.logs.iter().any(|l| l.contains("(backoff)")));
}

#[test]
fn a_state_saved_before_the_throttle_existed_still_loads() {
    let w = running_now("    backoff: {initial: 1s}\n");
    let mut json: serde_json::Value = serde_json::to_value(&w.sup).expect("plain data");
    // Take `first_at_once` out of every saved backoff, as an older taskmaster wrote them.
    fn strip(v: &mut serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(map) => {
                let here = usize::from(map.remove("first_at_once").is_some());
                here + map.values_mut().map(strip).sum::<usize>()
            }
            serde_json::Value::Array(items) => items.iter_mut().map(strip).sum(),
            _ => 0,
        }
    }
    assert!(strip(&mut json) > 0);
    let copy: taskmaster_core::Supervisor = serde_json::from_value(json).expect("read back");
    assert_eq!(copy, w.sup);
}

#[test]
fn a_stop_during_a_backoff_delay_cancels_the_restart() {
    let mut w = running_now("    backoff: {initial: 5s}\n");
    w.exit("web", code(1));
    w.request(Request::Stop(vec!["web".into()]));
    assert_eq!(w.state("web"), "STOPPED");
    w.advance(secs(10.0));
    assert_eq!(w.spawn_count("web"), 1);
}

// ---- a hot backup taking over ---------------------------------------------------------------

#[test]
fn a_copy_of_the_state_takes_over_with_the_same_children() {
    let mut w = running("    on_exit: \"true\"\n    healthcheck: {cmd: \"true\", interval: 1s}\n");
    w.exit("web", code(1)); // a hook runs, the restart waits for it
    let pid_before = w.sup.process("web").and_then(|p| p.pid);
    let json = serde_json::to_string(&w.sup).expect("the state is plain data");
    let mut copy: taskmaster_core::Supervisor = serde_json::from_str(&json).expect("read back");
    assert_eq!(copy, w.sup);
    let actions = copy.take_over(4242, w.now);
    // The hook died with the primary: counted done, the waiting restart goes ahead.
    assert!(actions
        .iter()
        .any(|a| matches!(a, taskmaster_core::Action::Spawn { process, .. } if process == "web")));
    assert_eq!(pid_before, None);
    let reply = copy.handle(
        Event::Request {
            ticket: Some(taskmaster_core::Ticket(1)),
            request: Request::Pid(vec![]),
        },
        w.now,
    );
    assert!(reply.iter().any(|a| matches!(
        a,
        taskmaster_core::Action::Reply {
            reply: Reply::DaemonPid(4242),
            ..
        }
    )));
}

#[test]
fn a_start_by_request_begins_the_crash_loop_throttle_afresh() {
    let mut w = running_now("");
    // Quick deaths: at once, then 100 ms, 200 ms, 400 ms...
    for _ in 0..4 {
        w.exit("web", code(1));
        let due = w.sup.next_deadline().map_or(secs(0.0), |d| d.since(w.now));
        w.advance(due);
    }
    w.exit("web", code(1));
    assert!(w.sup.next_deadline().is_some(), "a delayed restart is due");
    w.request(Request::Stop(vec!["web".into()]));
    let spawns = w.spawn_count("web");
    w.request(Request::Start(vec!["web".into()]));
    assert_eq!(w.spawn_count("web"), spawns + 1);
    // Its first quick death after the user's start is restarted at once again.
    w.exit("web", code(1));
    assert_eq!(w.spawn_count("web"), spawns + 2, "not restarted at once");
}
